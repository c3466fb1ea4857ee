#!/usr/bin/python3
"""Golden values for tests/test_tensor.c and tests/test_optim.c from the PyTorch reference.

Run once with Debian's python3 (torch 1.13, numpy), from the repository root:

    /usr/bin/python3 tests/golden/gen_tensor_golden.py

and commit the output, tests/data/tensor/ops.safetensors (< 100 kB). The C tests need no Python.

For every op: small random inputs (fixed seed), the forward outputs, a random upstream gradient and
the gradients autograd gives for it (the scalar is sum(out * dout)). For AdamW: a few steps of
torch.optim.AdamW under an HF-style LambdaLR schedule and torch.nn.utils.clip_grad_norm_, with the
gradients fed at each step and the parameters after it. Integer tensors (ids, lengths, targets) are
stored as I32. The safetensors file is written by hand (struct + json) because the safetensors
package is not installed here: u64 LE header length, JSON header padded with spaces to a multiple of
8, then the raw little-endian bytes.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tensor",
                   "ops.safetensors")

torch.manual_seed(20240601)
T = {}  # name -> np.ndarray (float32 or int32), in insertion order


def put(name, x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype in (np.float64, np.float32):
        x = x.astype(np.float32)
    elif x.dtype in (np.int64, np.int32):
        x = x.astype(np.int32)
    else:
        raise TypeError(name)
    assert name not in T, name
    T[name] = np.ascontiguousarray(x)


def leaf(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).requires_grad_(True)


# ---- linear: N=7, C=13, OC=5 -------------------------------------------------------------------
N, C, OC = 7, 13, 5
x, w, b = leaf(N, C), leaf(OC, C, scale=0.3), leaf(OC, scale=0.1)
y = F.linear(x, w, b)
dy = torch.randn(N, OC)
(y * dy).sum().backward()
for k, v in dict(inp=x, weight=w, bias=b, out=y, dout=dy, dinp=x.grad, dweight=w.grad,
                 dbias=b.grad).items():
    put("linear." + k, v)

# ---- layernorm: N=6, C=11, eps 1e-5, rows with offset and spread ---------------------------------
N, C, eps = 6, 11, 1e-5
x = (torch.randn(N, C) * 2.0 + 0.5).requires_grad_(True)
w, b = leaf(C, scale=0.5, shift=1.0), leaf(C, scale=0.2)
y = F.layer_norm(x, (C,), w, b, eps)
dy = torch.randn(N, C)
(y * dy).sum().backward()
with torch.no_grad():
    mean = x.mean(dim=1)
    rstd = 1.0 / torch.sqrt(x.var(dim=1, unbiased=False) + eps)
for k, v in dict(inp=x, weight=w, bias=b, out=y, mean=mean, rstd=rstd, dout=dy, dinp=x.grad,
                 dweight=w.grad, dbias=b.grad).items():
    put("layernorm." + k, v)

# ---- activations over n=48 points in [-6, 6] plus exact 0 ----------------------------------------


def gelu_new(t):  # HF NewGELUActivation
    u = math.sqrt(2.0 / math.pi) * (t + 0.044715 * torch.pow(t, 3.0))
    return 0.5 * t * (1.0 + torch.tanh(u))


ACTS = {
    "linear": lambda t: t,
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": gelu_new,
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "leakyrelu": F.leaky_relu,  # negative_slope 0.01
    "quick_gelu": lambda t: t * torch.sigmoid(1.702 * t),
}
base = torch.cat([torch.linspace(-6.0, 6.0, 40), torch.randn(7) * 1.5, torch.zeros(1)])
for name, fn in ACTS.items():
    x = base.clone().requires_grad_(True)
    y = fn(x)
    dy = torch.randn(x.shape)
    (y * dy).sum().backward()
    for k, v in dict(inp=x, out=y, dout=dy, dinp=x.grad).items():
        put("act.%s.%s" % (name, k), v)

# ---- softmax: N=5, C=9 ---------------------------------------------------------------------------
x = leaf(5, 9, scale=2.0)
y = torch.softmax(x, dim=-1)
dy = torch.randn(5, 9)
(y * dy).sum().backward()
for k, v in dict(inp=x, out=y, dout=dy, dinp=x.grad).items():
    put("softmax." + k, v)

# ---- attention: B=2, T=9, C=12, NH=3, lens {9, 4}, as HF BertSelfAttention -----------------------
B, Tq, C, NH = 2, 9, 12, 3
HS = C // NH
lens = torch.tensor([9, 4], dtype=torch.int32)
valid = (torch.arange(Tq)[None, :] < lens[:, None].long()).float()  # (B, T)
p_drop = 0.25
keep = (torch.rand(B, NH, Tq, Tq) >= p_drop).float()


def attention(q, k, v, keep_mask):
    def heads(t):
        return t.view(B, Tq, NH, HS).permute(0, 2, 1, 3)

    scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(HS)
    scores = scores + (1.0 - valid)[:, None, None, :] * torch.finfo(torch.float32).min
    probs = torch.softmax(scores, dim=-1)
    pd = probs if keep_mask is None else probs * keep_mask / (1.0 - p_drop)
    ctx = (pd @ heads(v)).permute(0, 2, 1, 3).reshape(B, Tq, C)
    return ctx, probs


for tag, km in (("attention", None), ("attention_drop", keep)):
    q, k, v = leaf(B, Tq, C), leaf(B, Tq, C), leaf(B, Tq, C)
    ctx, probs = attention(q, k, v, km)
    dctx = torch.randn(B, Tq, C) * valid[:, :, None]  # padded outputs are never used
    (ctx * dctx).sum().backward()
    d = dict(q=q, k=k, v=v, lens=lens, ctx=ctx, att=probs, dctx=dctx, dq=q.grad, dk=k.grad,
             dv=v.grad)
    if km is not None:
        d["keep"] = km
    for name, val in d.items():
        put("%s.%s" % (tag, name), val)

# ---- embedding: V=10, C=6, N=8 with repeated ids -------------------------------------------------
table = leaf(10, 6)
ids = torch.tensor([3, 0, 9, 3, 5, 3, 0, 7])
y = F.embedding(ids, table)
dy = torch.randn(8, 6)
(y * dy).sum().backward()
for k, v in dict(table=table, ids=ids, out=y, dout=dy, dtable=table.grad).items():
    put("embedding." + k, v)

# ---- cross-entropy: N=7, V=11, two ignored rows --------------------------------------------------
logits = leaf(7, 11, scale=3.0)
targets = torch.tensor([2, -100, 10, 0, 5, -100, 2])
loss = F.cross_entropy(logits, targets, ignore_index=-100)
loss.backward()
for k, v in dict(logits=logits, targets=targets, loss=loss.reshape(1),
                 dlogits=logits.grad).items():
    put("xent." + k, v)

# ---- learning-rate schedules (HF transformers optimization.py, copied) ---------------------------


def linear_lambda(step, n_warmup, n_steps):  # get_linear_schedule_with_warmup
    if step < n_warmup:
        return float(step) / float(max(1, n_warmup))
    return max(0.0, float(n_steps - step) / float(max(1, n_steps - n_warmup)))


def cosine_lambda(step, n_warmup, n_steps, n_cycles=0.5):  # get_cosine_schedule_with_warmup
    if step < n_warmup:
        return float(step) / float(max(1, n_warmup))
    progress = float(step - n_warmup) / float(max(1, n_steps - n_warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(n_cycles) * 2.0 * progress)))


def constant_warmup_lambda(step, n_warmup):  # get_constant_schedule_with_warmup
    if step < n_warmup:
        return float(step) / float(max(1.0, n_warmup))
    return 1.0


steps = range(0, 13)
put("sched.linear", [linear_lambda(s, 3, 10) for s in steps])        # warmup 3, total 10
put("sched.cosine", [cosine_lambda(s, 3, 10) for s in steps])        # warmup 3, total 10
put("sched.constant_warmup", [constant_warmup_lambda(s, 3) for s in steps])

# ---- AdamW: two groups, schedule, clipping -------------------------------------------------------
# group "w" (3, 4): lr_scale 1, weight decay 0.01; group "b" (5): lr_scale 0.5, weight decay 0.
# run "adamw": linear schedule (warmup 2, total 8), clip_grad_norm_ 1.0, lr 0.01, 6 steps.
# run "adamw_cos": cosine schedule (warmup 1, total 6), no clipping, lr 0.003, betas (0.8, 0.99),
# eps 1e-6, weight decay 0.1 on "w", 5 steps.
RUNS = {
    "adamw": dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, wd=0.01, n_warmup=2, n_total=8,
                  kind="linear", clip=1.0, n=6),
    "adamw_cos": dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, wd=0.1, n_warmup=1, n_total=6,
                      kind="cosine", clip=0.0, n=5),
}
for tag, r in RUNS.items():
    pw = torch.randn(3, 4).requires_grad_(True)
    pb = (torch.randn(5) * 0.1).requires_grad_(True)
    put(tag + ".w0", pw)
    put(tag + ".b0", pb)
    opt = torch.optim.AdamW([
        {"params": [pw], "lr": r["lr"], "weight_decay": r["wd"]},
        {"params": [pb], "lr": r["lr"] * 0.5, "weight_decay": 0.0},
    ], lr=r["lr"], betas=r["betas"], eps=r["eps"])
    if r["kind"] == "linear":
        lam = lambda s, r=r: linear_lambda(s, r["n_warmup"], r["n_total"])  # noqa: E731
    else:
        lam = lambda s, r=r: cosine_lambda(s, r["n_warmup"], r["n_total"])  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    gw, gb, ws, bs, lrs, norms = [], [], [], [], [], []
    for step in range(r["n"]):
        # gradient sizes vary so that some steps clip and others do not
        sc = [0.1, 2.0, 0.3, 1.5, 0.05, 3.0][step % 6]
        g1, g2 = torch.randn(3, 4) * sc, torch.randn(5) * sc
        gw.append(g1.clone())
        gb.append(g2.clone())
        pw.grad, pb.grad = g1.clone(), g2.clone()
        if r["clip"] > 0:
            norms.append(float(torch.nn.utils.clip_grad_norm_([pw, pb], r["clip"])))
        else:
            norms.append(float(torch.cat([g1.flatten(), g2]).norm()))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        ws.append(pw.detach().clone())
        bs.append(pb.detach().clone())
    put(tag + ".grad_w", torch.stack(gw))
    put(tag + ".grad_b", torch.stack(gb))
    put(tag + ".w", torch.stack(ws))
    put(tag + ".b", torch.stack(bs))
    put(tag + ".lr", lrs)
    put(tag + ".norm", norms)

# ---- write the safetensors file ------------------------------------------------------------------
header, blobs, off = {}, [], 0
for name, arr in T.items():
    raw = arr.astype("<f4" if arr.dtype == np.float32 else "<i4").tobytes()
    header[name] = {"dtype": "F32" if arr.dtype == np.float32 else "I32",
                    "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
header["__metadata__"] = {"generator": "tests/golden/gen_tensor_golden.py",
                          "torch": torch.__version__}
hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * ((8 - len(hjson) % 8) % 8)
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "wb") as f:
    f.write(struct.pack("<Q", len(hjson)))
    f.write(hjson)
    for raw in blobs:
        f.write(raw)
print("wrote %s: %d tensors, %d bytes" % (os.path.normpath(OUT), len(T), 8 + len(hjson) + off))
