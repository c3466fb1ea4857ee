#!/usr/bin/python3
"""Generate tests/data/torchbin/: PyTorch .bin files written by torch.save itself (Debian's torch
1.13), their golden values, hostile files, and a tiny base + adapter + head in both formats, for
tests/test_torchbin.c and tests/cli/test_torchbin.sh. The tests need no Python: everything here is
committed.

Run once:  /usr/bin/python3 tests/golden/gen_torchbin_fixtures.py

Goldens are written by hand (struct + json, the safetensors layout: u64 LE header length, JSON,
little-endian bytes), from torch's own tensors (t.contiguous(), t.float()), never from xadapt.

Files (in tests/data/torchbin/):
  state.bin              torch.save(OrderedDict) zip: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL, a
                         scalar, an empty tensor, views sharing one storage (a storage offset, a
                         column with stride, a transpose), a stride-0 expand, an nn.Parameter
  state_p4.bin           the same, pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL)
  state_legacy.bin       the same, _use_new_zipfile_serialization=False (the legacy container)
  state.golden.safetensors   NAME: t.contiguous() in its dtype; NAME.f32: t.float() (floats)
  evil_system.bin        a state dict with an object whose __reduce__ is os.system (GLOBAL posix
                         system + REDUCE); it must be refused, never run
  evil_legacy.bin        the same in the legacy container
  evil_eval_p4.bin       builtins.eval through STACK_GLOBAL (protocol 4)
  nested.bin             a training checkpoint {"state_dict": {...}, "epoch": 3}
  compressed.bin         state.bin's records re-zipped with deflate
  bad_view.bin           a tensor whose offset/size/stride reach past its storage
  bad_numel.bin          a persistent id whose numel disagrees with the record's size
  huge_shape.bin         a tensor of shape (2^40, 2^40)
  int_key.bin            {1: tensor}
  tiny/                  base/{config.json, model.safetensors}, base_bin/{config.json,
                         pytorch_model.bin} (+ the position_ids buffer and a tied decoder, as HF
                         checkpoints hold them), adapter/ and adapter_bin/ (the seq_bn adapter of
                         tests/data/adapters/seq_bn), head/ and head_bin/ (a classification head)
"""
import collections
import json
import os
import pickle
import shutil
import struct
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
OUT = os.path.join(DATA, "torchbin")

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
             torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_st(path, tensors, meta=None):
    """tensors: list of (name, torch tensor); written in order, contiguous, as safetensors."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, t in tensors:
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_st(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32"
        b, end = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + b:8 + n + end], dtype=np.float32)
                                     .copy().reshape(e["shape"]))
    return out


def state_dict():
    g = torch.Generator().manual_seed(1513)
    base = torch.randn(4, 6, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, generator=g)
    sd["f16"] = (torch.randn(5, generator=g) * 3).half()
    sd["bf16"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["base"] = base
    sd["offset_view"] = base[1:3]         # storage offset 6, contiguous
    sd["column"] = base[:, 2]             # storage offset 2, stride (6,)
    sd["transposed"] = base.t()           # stride (1, 6)
    sd["expanded"] = torch.randn(1, 3, generator=g).expand(4, 3)  # stride (0, 1)
    sd["f64"] = torch.randn(2, generator=g, dtype=torch.float64)
    sd["i64"] = torch.arange(7) - 3
    sd["i32"] = torch.tensor([-5, 0, 7], dtype=torch.int32)
    sd["i16"] = torch.tensor([[-300, 2], [1, 32767]], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 5], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["roberta.embeddings.LayerNorm.weight"] = torch.ones(4) + 0.5 * torch.randn(4, generator=g)
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    return sd


class Evil:
    """Pickles as os.system(cmd): a loader that ran it would create the marker file."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch /tmp/xadapt-pwned-eval')",))


class FakeStorage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        s, o, size, stride = self.args
        return (torch._utils._rebuild_tensor_v2, (s, o, size, stride, False, collections.OrderedDict()))


class FakePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def fake_bin(path, obj, records):
    """A torch-like zip (Python's zipfile, stored) with obj pickled by FakePickler."""
    import io
    buf = io.BytesIO()
    FakePickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for key, data in records.items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", b"3\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(OUT, "state.bin"))
    torch.save(sd, os.path.join(OUT, "state_p4.bin"), pickle_protocol=4)
    torch.save(sd, os.path.join(OUT, "state_legacy.bin"), _use_new_zipfile_serialization=False)
    gold = []
    for name, t in sd.items():
        gold.append((name, t))
        if t.is_floating_point():
            gold.append((name + ".f32", t.detach().float()))
    write_st(os.path.join(OUT, "state.golden.safetensors"), gold)
    # torch itself reads back what it wrote (a check of this script, not of xadapt)
    for f in ("state.bin", "state_p4.bin", "state_legacy.bin"):
        back = torch.load(os.path.join(OUT, f))
        assert all(torch.equal(back[k], v) for k, v in sd.items()), f

    small = collections.OrderedDict(w=torch.ones(2))
    evil = collections.OrderedDict(w=torch.ones(2), x=Evil("touch /tmp/xadapt-pwned"))
    torch.save(evil, os.path.join(OUT, "evil_system.bin"))
    torch.save(evil, os.path.join(OUT, "evil_legacy.bin"), _use_new_zipfile_serialization=False)
    torch.save({"w": torch.ones(2), "x": EvalEvil()}, os.path.join(OUT, "evil_eval_p4.bin"),
               pickle_protocol=4)
    torch.save({"state_dict": small, "epoch": 3}, os.path.join(OUT, "nested.bin"))
    torch.save({1: torch.ones(2)}, os.path.join(OUT, "int_key.bin"))
    with zipfile.ZipFile(os.path.join(OUT, "state.bin")) as zin, \
            zipfile.ZipFile(os.path.join(OUT, "compressed.bin"), "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    twelve = np.arange(12, dtype=np.float32).tobytes()
    fake_bin(os.path.join(OUT, "bad_view.bin"),
             {"w": FakeTensor(FakeStorage("0", 12), 10, (2, 2), (2, 1))}, {"0": twelve})
    fake_bin(os.path.join(OUT, "bad_numel.bin"),
             {"w": FakeTensor(FakeStorage("0", 13), 0, (12,), (1,))}, {"0": twelve})
    fake_bin(os.path.join(OUT, "huge_shape.bin"),
             {"w": FakeTensor(FakeStorage("0", 12), 0, (2 ** 40, 2 ** 40), (2 ** 40, 1))},
             {"0": twelve})

    tiny(os.path.join(OUT, "tiny"))


def tiny(out):
    """A base (vocab for tests/data/spm/fixture.model), an adapter and a head, each as
    safetensors and as a torch.save .bin holding the same values."""
    g = torch.Generator().manual_seed(15)
    enc_dir = os.path.join(DATA, "encoder", "xlmr")
    with open(os.path.join(enc_dir, "config.json")) as f:
        cfg = json.load(f)
    V = 1002  # 1000 SentencePiece pieces + the XLM-R id offset + <mask>
    cfg["vocab_size"] = V
    base = read_st(os.path.join(enc_dir, "model.safetensors"))
    base["roberta.embeddings.word_embeddings.weight"] = torch.randn(V, cfg["hidden_size"], generator=g)
    base["lm_head.bias"] = torch.zeros(V)
    for d in ("base", "base_bin", "adapter", "adapter_bin", "head", "head_bin"):
        shutil.rmtree(os.path.join(out, d), ignore_errors=True)
        os.makedirs(os.path.join(out, d))
    for d in ("base", "base_bin"):
        with open(os.path.join(out, d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    write_st(os.path.join(out, "base", "model.safetensors"), list(base.items()), {"format": "pt"})
    hf = collections.OrderedDict(base)
    hf["roberta.embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).unsqueeze(0)
    hf["lm_head.decoder.weight"] = hf["roberta.embeddings.word_embeddings.weight"]  # tied: shared
    torch.save(hf, os.path.join(out, "base_bin", "pytorch_model.bin"))

    src = os.path.join(DATA, "adapters", "seq_bn", "seq_bn")
    for d in ("adapter", "adapter_bin"):
        shutil.copy(os.path.join(src, "adapter_config.json"), os.path.join(out, d))
    shutil.copy(os.path.join(src, "adapter.safetensors"), os.path.join(out, "adapter"))
    torch.save(read_st(os.path.join(src, "adapter.safetensors")),
               os.path.join(out, "adapter_bin", "pytorch_adapter.bin"))

    C, K = cfg["hidden_size"], 3
    head = collections.OrderedDict()
    head["heads.topic.1.weight"] = torch.randn(C, C, generator=g) * 0.5
    head["heads.topic.1.bias"] = torch.randn(C, generator=g) * 0.1
    head["heads.topic.4.weight"] = torch.randn(K, C, generator=g)
    head["heads.topic.4.bias"] = torch.randn(K, generator=g) * 0.1
    hcfg = {"config": {"head_type": "classification", "num_labels": K, "layers": 2,
                       "activation_function": "tanh", "use_pooler": False, "bias": True,
                       "label2id": {"alpha": 0, "beta": 1, "gamma": 2}},
            "hidden_size": C, "model_class": "XLMRobertaAdapterModel", "model_name": "tiny-xlmr",
            "model_type": "xlm-roberta", "name": "topic", "version": "adapters.1.2.0"}
    for d in ("head", "head_bin"):
        with open(os.path.join(out, d, "head_config.json"), "w") as f:
            json.dump(hcfg, f, indent=2)
    write_st(os.path.join(out, "head", "model_head.safetensors"), list(head.items()),
             {"format": "pt"})
    torch.save(head, os.path.join(out, "head_bin", "pytorch_model_head.bin"))


if __name__ == "__main__":
    main()
