#!/usr/bin/python3
"""xadapt against the real AdapterHub library (adapters 1.2.0 on transformers 4.51.x), both ways.

    PYTHONPATH=ENV /usr/bin/python3 tests/golden/check_with_adapterhub.py --xadapt build/xadapt \
        [--work DIR] [--keep] [--tol 1e-4]
    /usr/bin/python3 tests/golden/check_with_adapterhub.py --env ENV --xadapt build/xadapt ...

Needs (run by hand; CI has none of it): Debian's torch, numpy, PyYAML, regex, requests, filelock,
tqdm, packaging, and on PYTHONPATH (or --env ENV, which re-executes with PYTHONPATH=ENV) the
packages `adapters` 1.2.0, `transformers` 4.51.x and `huggingface_hub` 0.30.x with their
dist-info, plus pure-Python stand-ins for the Rust packages `safetensors` (the file format) and
`tokenizers` (import only); on torch 1.13 also the run-time patches that transformers 4.51 needs.
docs/ADAPTERS.md ("Checked against the real library") says how such an ENV was built here.

1. xadapt -> library. The xadapt CLI pretrains a tiny XLM-R-layout base on the test recipes'
   data (tests/data/recipe), trains en/de language adapters and a task adapter + head for every
   head type (classification, tagging, pair classification, multiple_choice,
   question_answering), a few steps each. For each task's final/ setup directory the library
   loads, on XLMRobertaAdapterModel.from_pretrained(base):
     a. load_adapter_setup(final, use_safetensors=True) (the setup and its head), and
     b. load_adapter(final/<lang>), load_adapter(final/<task>, with_head=True), and
        load_head(final/head) as a second head,
   and its logits on random token ids are compared with `xadapt predict --ids --setup-dir final`
   (and the heads of a. and b. with each other); a control without the adapters must differ by
   more than 10 x --tol. Then the library writes the loaded setup with save_adapter_setup (.bin
   files), and xadapt's --setup-dir output from that directory must match the library's.
2. library -> xadapt. The library saves the base with save_pretrained(safe_serialization=False)
   (pytorch_model.bin) and an ln_before + ln_after seq_bn adapter with a classification head
   (random weights) with save_adapter (pytorch_adapter.bin, pytorch_model_head.bin); `xadapt
   convert` makes the safetensors twins. xadapt's logits and last hidden states from the .bin
   files, from the twins, and the library's must agree.
Every comparison prints its max abs difference; exit 1 if one exceeds --tol, 2 on a setup error.
"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECIPES = os.path.join(ROOT, "tests", "data", "recipe")
SEED = 3  # the test recipes' seed: task outputs are OUT/task/NAME/seed3/final

# name, recipe, AdapterHub head type; one shared output (base and language adapters trained once)
TASKS = [
    ("pkg", "tiny.yaml", "classification"),
    ("code", "tiny-code.yaml", "tagging"),
    ("pairtask", "tiny-pair.yaml", "pair"),
    ("copa", "tiny-copa.yaml", "multiple_choice"),
    ("qa", "tiny-qa.yaml", "question_answering"),
]
# short phases, the same in every recipe that declares them (a phase's settings are part of the
# provenance of what it made): the base and the language adapters are trained once, with
# tiny.yaml, and every recipe's task phase builds on them
SHORT = {
    "pretrain": "phases.pretrain={steps: 60, batch_size: 8, seq_len: 32, lr: 1e-3, ckpt_every: 60}",
    "lang": "phases.lang={steps: 8, batch_size: 8, seq_len: 32, lr: 1e-2, ckpt_every: 8}",
    "task": "phases.task={steps: 8, batch_size: 8, seq_len: 48, lr: 1e-2, eval_every: 8, ckpt_every: 8}",
}

failures = []


def need(msg):
    print(f"check_with_adapterhub: {msg}", file=sys.stderr)
    sys.exit(2)


def report(what, diff, tol):
    ok = diff <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {what}: max abs diff {diff:.3e} (tol {tol:g})")
    if not ok:
        failures.append(what)


def run(cmd, stdin=None):
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        need(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p.stdout


def read_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    hdr = json.loads(buf[8:8 + n])
    hdr.pop("__metadata__", None)
    dt = {"F32": "<f4", "I64": "<i8", "I32": "<i4"}
    out = {}
    for k, v in hdr.items():
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(buf[8 + n + b:8 + n + e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out


def xadapt_logits(xa, args, rows_per_line, hidden=None):
    """`xadapt predict --ids`: a list of (rows, K) arrays, one per input line."""
    import numpy as np
    text = "".join(" | ".join(" ".join(map(str, r)) for r in rows) + "\n" for rows in rows_per_line)
    cmd = [xa, "predict", "--ids", "--threads", "1", "--seq-len", "64"] + args
    if hidden:
        cmd += ["--hidden-states", hidden]
    out = run(cmd, text)
    return [np.array(json.loads(line)["logits"], dtype=np.float64) for line in out.splitlines()]


def random_rows(kind, V, rng):
    """Token-id rows of one input, XLM-R specials: <s>=0 </s>=2, pieces 4..V-2 (not <mask>)."""
    piece = lambda n: [rng.randrange(4, V - 1) for _ in range(n)]  # noqa: E731
    if kind in ("pair", "question_answering"):
        return [[0] + piece(rng.randrange(3, 9)) + [2, 2] + piece(rng.randrange(3, 12)) + [2]]
    if kind == "multiple_choice":
        return [[0] + piece(rng.randrange(3, 8)) + [2, 2] + piece(rng.randrange(2, 6)) + [2] for _ in range(2)]
    return [[0] + piece(rng.randrange(3, 20)) + [2]]


def library_logits(model, kind, rows, head):
    """The library's head output for one input, as (rows, K) like `xadapt predict --ids`."""
    import torch
    with torch.no_grad():
        if kind == "multiple_choice":
            T = max(len(r) for r in rows)
            ids = torch.tensor([[r + [1] * (T - len(r)) for r in rows]])  # (1, N, T), <pad>=1
            mask = torch.tensor([[[1] * len(r) + [0] * (T - len(r)) for r in rows]])
            out = model(input_ids=ids, attention_mask=mask, head=head)
            return out.logits[0:1].double().numpy()  # (1, N)
        ids = torch.tensor(rows)
        out = model(input_ids=ids, head=head)
        if kind == "question_answering":
            return torch.stack([out.start_logits[0], out.end_logits[0]], -1).double().numpy()  # (T, 2)
        if kind == "tagging":
            return out.logits[0].double().numpy()  # (T, K)
        return out.logits.double().numpy()  # (1, K)


def control(model, kind, inputs, head, mine, tol, what):
    """The check must be able to fail: without its adapters the library's output must differ from
    xadapt's by much more than the tolerance."""
    model.set_active_adapters(None)
    d = max(max_diff(library_logits(model, kind, rows, head), x) for rows, x in zip(inputs, mine))
    ok = d > 10 * tol
    print(f"{'ok  ' if ok else 'FAIL'} {what} control: the same without adapters differs by {d:.3e} (must be > {10 * tol:g})")
    if not ok:
        failures.append(f"{what}: insensitive check (the adapters change the output by only {d:.3e})")


def max_diff(a, b):
    import numpy as np
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def declared_phases(path):
    """The phase kinds a recipe runs: its own `phases` list, else its `extends` parent's (a list
    in an extending recipe replaces the parent's)."""
    import yaml
    with open(path) as f:
        r = yaml.safe_load(f)
    if "phases" in r:
        return [next(iter(p)) for p in r["phases"]]
    return declared_phases(os.path.join(os.path.dirname(path), r["extends"]))


def train_with_xadapt(xa, out):
    sets = ["--set", f"output={out}", "--set", f"model.base={out}/base", "--quiet"]
    for i, (name, recipe, kind) in enumerate(TASKS):
        path = os.path.join(RECIPES, recipe)
        short = [a for k in declared_phases(path) if k in SHORT for a in ("--set", SHORT[k])]
        for phase in (("pretrain", "lang") if i == 0 else ()) + ("task",):
            print(f"xadapt train {recipe} --phase {phase}" + (f" ({kind})" if phase == "task" else ""), flush=True)
            run([xa, "train", path, "--phase", phase] + sets + short)


def xadapt_to_library(xa, out, tol, rng):
    from adapters import XLMRobertaAdapterModel
    base = os.path.join(out, "base")
    with open(os.path.join(base, "config.json")) as f:
        V = json.load(f)["vocab_size"]
    for name, _, kind in TASKS:
        final = os.path.join(out, "task", name, f"seed{SEED}", "final")
        with open(os.path.join(final, "adapter_setup.json")) as f:
            setup_json = json.load(f)
        inputs = [random_rows(kind, V, rng) for _ in range(4)]
        mine = xadapt_logits(xa, ["--base", base, "--setup-dir", final], inputs)

        # a. the whole setup directory
        m = XLMRobertaAdapterModel.from_pretrained(base)
        m.eval()
        adapter_setup, head_setup = m.load_adapter_setup(final, use_safetensors=True)
        m.active_adapters = adapter_setup
        print(f"{name} ({kind}): load_adapter_setup -> adapters {adapter_setup}, head {head_setup!r}; "
              f"heads {sorted(m.heads)} ({type(m.heads[head_setup]).__name__}); "
              f"adapter_setup.json {json.dumps(setup_json['adapter_setup'])}")
        a = [library_logits(m, kind, rows, head_setup) for rows in inputs]
        report(f"{name} ({kind}) load_adapter_setup(final) vs xadapt predict --setup-dir",
               max(max_diff(x, y) for x, y in zip(a, mine)), tol)
        control(m, kind, inputs, head_setup, mine, tol, name)
        m.active_adapters = adapter_setup
        # and back: the library's save_adapter_setup (.bin files) read by xadapt --setup-dir
        lib_dir = os.path.join(os.path.dirname(out), f"lib-setup-{name}")
        shutil.rmtree(lib_dir, ignore_errors=True)
        m.save_adapter_setup(lib_dir, adapter_setup, head_setup)
        theirs = xadapt_logits(xa, ["--base", base, "--setup-dir", lib_dir], inputs)
        report(f"{name} ({kind}) library save_adapter_setup ({', '.join(sorted(os.listdir(lib_dir)))}) "
               f"read by xadapt --setup-dir vs the library", max(max_diff(x, y) for x, y in zip(a, theirs)), tol)

        # b. adapter by adapter, the head with with_head=True, and load_head
        m2 = XLMRobertaAdapterModel.from_pretrained(base)
        m2.eval()
        lang = [c for c in os.listdir(final) if c not in (name, "adapter", "head")
                and os.path.isfile(os.path.join(final, c, "adapter_config.json"))]
        if len(lang) != 1:
            failures.append(f"{name}: expected one language adapter directory in {final}, found {lang}")
            continue
        m2.load_adapter(os.path.join(final, lang[0]), use_safetensors=True)
        tn = m2.load_adapter(os.path.join(final, name), with_head=True, use_safetensors=True)
        if tn not in m2.heads:
            failures.append(f"{name}: load_adapter(final/{name}, with_head=True) loaded no head")
            continue
        _, hn = m2.load_head(os.path.join(final, "head"), load_as="xadapt_head", use_safetensors=True)  # (dir, name)
        m2.active_adapters = adapter_setup
        b = [library_logits(m2, kind, rows, tn) for rows in inputs]
        c = [library_logits(m2, kind, rows, hn) for rows in inputs]
        report(f"{name} ({kind}) load_adapter({lang[0]}, {name}, with_head=True) vs load_adapter_setup",
               max(max_diff(x, y) for x, y in zip(a, b)), tol)
        report(f"{name} ({kind}) load_head(final/head) vs with_head=True",
               max(max_diff(x, y) for x, y in zip(b, c)), tol)


def library_to_xadapt(xa, out, work, tol, rng):
    import torch
    from adapters import SeqBnConfig, XLMRobertaAdapterModel
    from transformers import XLMRobertaForMaskedLM
    src = os.path.join(out, "base")
    base_bin = os.path.join(work, "lib-base-bin")
    XLMRobertaForMaskedLM.from_pretrained(src).save_pretrained(base_bin, safe_serialization=False)
    shutil.copy(os.path.join(src, "sentencepiece.bpe.model"), base_bin)
    print(f"library wrote {sorted(os.listdir(base_bin))}")
    m = XLMRobertaAdapterModel.from_pretrained(base_bin)
    m.add_adapter("lnb", config=SeqBnConfig(reduction_factor=4, ln_before=True, ln_after=True))
    m.add_classification_head("lnb", num_labels=3)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # random weights: the default init is near the identity
        for n, p in m.named_parameters():
            if ".adapters.lnb." in n or n.startswith("heads.lnb."):
                p.add_(torch.randn(p.shape, generator=g) * 0.3)
    lnb_bin = os.path.join(work, "lib-lnb-bin")
    m.save_adapter(lnb_bin, "lnb")
    print(f"library wrote {sorted(os.listdir(lnb_bin))}")
    if not os.path.exists(os.path.join(lnb_bin, "pytorch_adapter.bin")):
        failures.append("the library did not write pytorch_adapter.bin")
        return
    # the safetensors twins, made by xadapt convert on copies
    base_st, lnb_st = base_bin + "-st", lnb_bin + "-st"
    for s, d in ((base_bin, base_st), (lnb_bin, lnb_st)):
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(s, d)
        run([xa, "convert", d])
        for f in os.listdir(d):
            if f.endswith(".bin"):
                os.remove(os.path.join(d, f))
    print(f"xadapt convert made {sorted(os.listdir(base_st))} and {sorted(os.listdir(lnb_st))}")

    m.set_active_adapters("lnb")
    m.eval()
    V = m.config.vocab_size
    inputs = [random_rows("classification", V, rng) for _ in range(4)]
    lib = [library_logits(m, "classification", rows, "lnb") for rows in inputs]
    with torch.no_grad():
        lib_h = [m.roberta(input_ids=torch.tensor(rows)).last_hidden_state[0].double().numpy() for rows in inputs]
    res = {}
    for tag, b, a in (("bin", base_bin, lnb_bin), ("safetensors", base_st, lnb_st)):
        hs = os.path.join(work, f"hidden-{tag}.safetensors")
        res[tag] = (xadapt_logits(xa, ["--base", b, "--adapter", a, "--head", a, "--setup", "lnb"], inputs, hs),
                    read_safetensors(hs))
    control(m, "classification", inputs, "lnb", res["bin"][0], tol, "library ln_before adapter")
    for tag in res:
        logits, hs = res[tag]
        off = hs["offsets"]
        report(f"library ln_before adapter + head, xadapt from {tag} files: logits",
               max(max_diff(x, y) for x, y in zip(lib, logits)), tol)
        report(f"library ln_before adapter, xadapt from {tag} files: last hidden states",
               max(max_diff(lib_h[i], hs["hidden"][off[i]:off[i + 1]]) for i in range(len(inputs))), tol)
    report("xadapt: .bin files vs their safetensors twins (logits)",
           max(max_diff(x, y) for x, y in zip(res["bin"][0], res["safetensors"][0])), 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xadapt", required=True, help="the xadapt binary (e.g. build/xadapt)")
    ap.add_argument("--env", help="directory with adapters, transformers, huggingface_hub and the shims; "
                                  "re-executes with PYTHONPATH=ENV")
    ap.add_argument("--work", help="work directory (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--reuse", action="store_true", help="with --work: reuse the xadapt outputs already there")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs difference of logits and hidden states")
    args = ap.parse_args()
    if args.env and os.environ.get("XA_HUBCHECK_ENV") != args.env:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.env), XA_HUBCHECK_ENV=args.env)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    try:
        import torch  # noqa: F401
        import transformers
        import adapters
    except Exception as e:  # noqa: BLE001
        need(f"cannot import the library ({type(e).__name__}: {e}); needs adapters 1.2.0 and transformers "
             "4.51.x on PYTHONPATH (see the docstring and docs/ADAPTERS.md)")
    if adapters.__version__ != "1.2.0" or not transformers.__version__.startswith("4.51."):
        need(f"found adapters {adapters.__version__}, transformers {transformers.__version__}; "
             "expected adapters 1.2.0 on transformers 4.51.x")
    print(f"adapters {adapters.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")
    xa = os.path.abspath(args.xadapt)
    if not os.access(xa, os.X_OK):
        need(f"--xadapt {args.xadapt}: not an executable")
    transformers.logging.set_verbosity_error()
    import logging
    logging.getLogger("adapters").setLevel(logging.ERROR)  # the control's "none are activated" warning
    torch.manual_seed(0)
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="hubcheck-")
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "out")
    rng = random.Random(7)
    try:
        if not (args.reuse and os.path.isdir(os.path.join(out, "task"))):
            train_with_xadapt(xa, out)
        xadapt_to_library(xa, out, args.tol, rng)
        library_to_xadapt(xa, out, work, args.tol, rng)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s):\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
