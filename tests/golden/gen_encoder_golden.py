#!/usr/bin/python3
"""PyTorch reference of the xadapt encoder: a tiny XLM-R / BERT post-LayerNorm encoder with random
weights, written for this project with plain torch (Hugging Face transformers is not installed
here); it follows modeling_roberta / modeling_bert: embeddings (word + position + token type) ->
LayerNorm -> dropout; per layer self-attention (additive padding mask) -> output dense -> dropout ->
LayerNorm(x + h); FFN dense -> exact GELU -> dense -> dropout -> LayerNorm(x + h); MLM head dense ->
GELU -> LayerNorm -> decoder tied to the word embeddings + bias; sequence classification head
(<s> -> dense -> tanh -> dense, XLM-R style); token classification head (linear per token).

It writes, per variant (xlmr, bert), into tests/data/encoder/<variant>/:
  config.json, model.safetensors    a Hugging Face layout (XLMRobertaForMaskedLM / BertForMaskedLM
                                    tensor names, decoder tied and left out of the file)
  golden.safetensors                inputs, every layer's hidden states, MLM / classification /
                                    tagging logits and losses, and the gradients of every
                                    parameter and of the embedding output for each loss

Run once with Debian's torch:  /usr/bin/python3 tests/golden/gen_encoder_golden.py
The tests read the committed fixtures and need no Python.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "encoder")


def write_safetensors(path, tensors, metadata=None):
    """The safetensors format by hand (no safetensors package on Debian 12): u64 LE header length,
    JSON header padded with spaces to a multiple of 8, then the raw little-endian data."""
    dtypes = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def config_for(variant):
    common = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=32, hidden_act="gelu", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, initializer_range=0.02,
                  position_embedding_type="absolute")
    if variant == "xlmr":
        return dict(common, architectures=["XLMRobertaForMaskedLM"], model_type="xlm-roberta",
                    max_position_embeddings=16, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return dict(common, architectures=["BertForMaskedLM"], model_type="bert",
                max_position_embeddings=16, type_vocab_size=2, layer_norm_eps=1e-12,
                pad_token_id=0)


def make_params(cfg, gen):
    """Random weights, larger than a trained model's init so every path carries signal."""
    H, FF, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    P = cfg["max_position_embeddings"]
    prefix = "roberta." if cfg["model_type"] == "xlm-roberta" else "bert."

    def rnd(*shape, std=0.3):
        return (torch.randn(*shape, generator=gen) * std).requires_grad_()

    def ln(n):
        return (1.0 + 0.1 * torch.randn(n, generator=gen)).requires_grad_(), rnd(n, std=0.1)

    p = {}
    p[prefix + "embeddings.word_embeddings.weight"] = rnd(V, H)
    p[prefix + "embeddings.position_embeddings.weight"] = rnd(P, H)
    p[prefix + "embeddings.token_type_embeddings.weight"] = rnd(cfg["type_vocab_size"], H)
    g, b = ln(H)
    p[prefix + "embeddings.LayerNorm.weight"], p[prefix + "embeddings.LayerNorm.bias"] = g, b
    for i in range(cfg["num_hidden_layers"]):
        L = f"{prefix}encoder.layer.{i}."
        for m in ("query", "key", "value"):
            p[L + f"attention.self.{m}.weight"] = rnd(H, H)
            p[L + f"attention.self.{m}.bias"] = rnd(H, std=0.1)
        p[L + "attention.output.dense.weight"] = rnd(H, H)
        p[L + "attention.output.dense.bias"] = rnd(H, std=0.1)
        g, b = ln(H)
        p[L + "attention.output.LayerNorm.weight"], p[L + "attention.output.LayerNorm.bias"] = g, b
        p[L + "intermediate.dense.weight"] = rnd(FF, H)
        p[L + "intermediate.dense.bias"] = rnd(FF, std=0.1)
        p[L + "output.dense.weight"] = rnd(H, FF)
        p[L + "output.dense.bias"] = rnd(H, std=0.1)
        g, b = ln(H)
        p[L + "output.LayerNorm.weight"], p[L + "output.LayerNorm.bias"] = g, b
    if cfg["model_type"] == "xlm-roberta":
        names = ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")
    else:
        names = ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                 "cls.predictions.bias")
    p[names[0] + ".weight"] = rnd(H, H)
    p[names[0] + ".bias"] = rnd(H, std=0.1)
    g, b = ln(H)
    p[names[1] + ".weight"], p[names[1] + ".bias"] = g, b
    p[names[2]] = rnd(V, std=0.1)
    return p, prefix, names


def forward(cfg, p, prefix, mlm_names, ids, token_types, attn_mask):
    H, NH, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    HS = H // NH
    B, T = ids.shape
    if cfg["model_type"] == "xlm-roberta":
        pad = cfg["pad_token_id"]
        m = (ids != pad).long()
        pos = torch.cumsum(m, dim=1) * m + pad  # real tokens 2, 3, ...; pads padding_idx
    else:
        pos = torch.arange(T).unsqueeze(0).expand(B, T)
    E = prefix + "embeddings."
    x = (p[E + "word_embeddings.weight"][ids] + p[E + "position_embeddings.weight"][pos]
         + p[E + "token_type_embeddings.weight"][token_types])
    emb = F.layer_norm(x, (H,), p[E + "LayerNorm.weight"], p[E + "LayerNorm.bias"], eps)
    emb.retain_grad()
    hidden = [emb]
    additive = (1.0 - attn_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    h = emb
    for i in range(cfg["num_hidden_layers"]):
        L = f"{prefix}encoder.layer.{i}."

        def lin(t, name):
            return F.linear(t, p[L + name + ".weight"], p[L + name + ".bias"])

        q = lin(h, "attention.self.query").view(B, T, NH, HS).transpose(1, 2)
        k = lin(h, "attention.self.key").view(B, T, NH, HS).transpose(1, 2)
        v = lin(h, "attention.self.value").view(B, T, NH, HS).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(HS) + additive
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
        a = F.layer_norm(lin(ctx, "attention.output.dense") + h, (H,),
                         p[L + "attention.output.LayerNorm.weight"],
                         p[L + "attention.output.LayerNorm.bias"], eps)
        f = F.gelu(lin(a, "intermediate.dense"))
        h = F.layer_norm(lin(f, "output.dense") + a, (H,), p[L + "output.LayerNorm.weight"],
                         p[L + "output.LayerNorm.bias"], eps)
        hidden.append(h)
    return hidden


def mlm_logits(cfg, p, prefix, names, h_rows):
    t = F.gelu(F.linear(h_rows, p[names[0] + ".weight"], p[names[0] + ".bias"]))
    t = F.layer_norm(t, (cfg["hidden_size"],), p[names[1] + ".weight"], p[names[1] + ".bias"],
                     cfg["layer_norm_eps"])
    return F.linear(t, p[prefix + "embeddings.word_embeddings.weight"], p[names[2]])


def grads_of(loss, params, emb, tag):
    for t in list(params.values()) + [emb]:
        t.grad = None
    loss.backward(retain_graph=True)
    out = {f"grad_{tag}.{k}": v.grad.clone() for k, v in params.items() if v.grad is not None}
    out[f"grad_{tag}.embedding_output"] = emb.grad.clone()
    return out


def generate(variant, seed):
    cfg = config_for(variant)
    gen = torch.Generator().manual_seed(seed)
    p, prefix, names = make_params(cfg, gen)
    B, T, V = 2, 8, cfg["vocab_size"]
    lens = [8, 5]
    if variant == "xlmr":
        bos, eos, pad, first = 0, 2, 1, 4
    else:
        bos, eos, pad, first = 2, 3, 0, 5  # a BERT-like [CLS]=2 [SEP]=3 [PAD]=0
    ids = torch.full((B, T), pad, dtype=torch.int64)
    for b, n in enumerate(lens):
        ids[b, 0] = bos
        ids[b, 1:n - 1] = torch.randint(first, V, (n - 2,), generator=gen)
        ids[b, n - 1] = eos
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
    token_types = torch.zeros(B, T, dtype=torch.int64)
    if cfg["type_vocab_size"] > 1:
        token_types[0, 4:] = 1
    # MLM labels: a few positions of real tokens; -100 elsewhere (also on pads and specials).
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, t in [(0, 1), (0, 3), (0, 6), (1, 2), (1, 3)]:
        labels[b, t] = torch.randint(first, V, (1,), generator=gen).item()
    n_classes, n_tags = 3, 4
    cls_labels = torch.tensor([2, 0], dtype=torch.int64)
    tag_labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, n in enumerate(lens):
        for t in range(1, n - 1):
            if (b + t) % 3 != 0:  # the label sits on the first piece of a word; others ignored
                tag_labels[b, t] = torch.randint(0, n_tags, (1,), generator=gen).item()
    H = cfg["hidden_size"]
    head = {
        "heads.cls.1.weight": (torch.randn(H, H, generator=gen) * 0.3).requires_grad_(),
        "heads.cls.1.bias": (torch.randn(H, generator=gen) * 0.1).requires_grad_(),
        "heads.cls.4.weight": (torch.randn(n_classes, H, generator=gen) * 0.3).requires_grad_(),
        "heads.cls.4.bias": (torch.randn(n_classes, generator=gen) * 0.1).requires_grad_(),
        "heads.tag.1.weight": (torch.randn(n_tags, H, generator=gen) * 0.3).requires_grad_(),
        "heads.tag.1.bias": (torch.randn(n_tags, generator=gen) * 0.1).requires_grad_(),
    }

    hidden = forward(cfg, p, prefix, names, ids, token_types, mask)
    emb, last = hidden[0], hidden[-1]
    sel = labels.view(-1) != -100
    logits_masked = mlm_logits(cfg, p, prefix, names, last.reshape(-1, H)[sel])
    mlm_loss = F.cross_entropy(logits_masked, labels.view(-1)[sel])
    pooled = torch.tanh(F.linear(last[:, 0], head["heads.cls.1.weight"], head["heads.cls.1.bias"]))
    cls_logits = F.linear(pooled, head["heads.cls.4.weight"], head["heads.cls.4.bias"])
    cls_loss = F.cross_entropy(cls_logits, cls_labels)
    tag_logits = F.linear(last, head["heads.tag.1.weight"], head["heads.tag.1.bias"])
    tag_loss = F.cross_entropy(tag_logits.reshape(-1, n_tags), tag_labels.view(-1),
                               ignore_index=-100)

    allp = dict(p, **head)
    g = {}
    g.update(grads_of(mlm_loss, allp, emb, "mlm"))
    g.update(grads_of(cls_loss, allp, emb, "cls"))
    g.update(grads_of(tag_loss, allp, emb, "tag"))

    gold = {"input_ids": ids, "attention_mask": mask, "token_type_ids": token_types,
            "mlm_labels": labels, "cls_labels": cls_labels, "tag_labels": tag_labels}
    for i, h in enumerate(hidden):
        gold[f"hidden.{i}"] = h
    gold.update({"mlm_logits_masked": logits_masked, "mlm_loss": mlm_loss.reshape(1),
                 "cls_logits": cls_logits, "cls_loss": cls_loss.reshape(1),
                 "tag_logits": tag_logits, "tag_loss": tag_loss.reshape(1)})
    gold.update({k: v for k, v in head.items()})
    gold.update(g)

    d = os.path.join(OUT, variant)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(cfg, torch_dtype="float32", transformers_version="4.30.0"), f, indent=2,
                  sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), p, {"format": "pt"})
    write_safetensors(os.path.join(d, "golden.safetensors"), gold,
                      {"generator": "tests/golden/gen_encoder_golden.py",
                       "torch": torch.__version__, "seed": str(seed)})
    print(f"{variant}: mlm {mlm_loss.item():.6f} cls {cls_loss.item():.6f} "
          f"tag {tag_loss.item():.6f} -> {d}")


if __name__ == "__main__":
    torch.manual_seed(0)
    generate("xlmr", 1234)
    generate("bert", 4321)
    sys.exit(0)
