#!/usr/bin/python3
"""Golden values for the sentence-alignment kernels of tests/test_tensor.c (tensor/contrastive.c).

    /usr/bin/python3 tests/golden/gen_contrastive_golden.py

writes tests/data/tensor/contrastive.safetensors (a few kB; commit it). The reference is written
independently of xadapt in plain PyTorch, as a user of a dual encoder writes it: masked mean pooling
of right-padded hidden states, F.normalize, cosine scores / temperature, and the symmetric
cross-entropy over in-batch negatives (CLIP / LaBSE without margin):

    loss = (F.cross_entropy(S, arange(n)) + F.cross_entropy(S.t(), arange(n))) / 2

The upstream of the pooled vectors is autograd's; the scalar pooled-path check is the loss itself.
Same hand-written safetensors writer as gen_tensor_golden.py (no safetensors package here).
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tensor",
                   "contrastive.safetensors")
torch.manual_seed(20261201)
T = {}


def put(name, x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    x = x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int32)
    T[name] = np.ascontiguousarray(x)


# n = 5 pairs, T = 7 positions, C = 6 channels; rows of different lengths (pads hold garbage)
n, TT, C, scale = 5, 7, 6, 1.0 / 0.05
lens = torch.tensor([7, 3, 5, 1, 6, 4, 7, 2, 5, 3], dtype=torch.int64)   # 2n rows: U then V
h = torch.randn(2 * n, TT, C, requires_grad=True)
mask = (torch.arange(TT)[None, :] < lens[:, None]).float()            # (2n, T)
pooled = (h * mask[:, :, None]).sum(1) / lens[:, None].float()         # (2n, C)
pooled.retain_grad()
u = F.normalize(pooled[:n], dim=-1, eps=1e-12)
v = F.normalize(pooled[n:], dim=-1, eps=1e-12)
S = scale * u @ v.t()
target = torch.arange(n)
loss = (F.cross_entropy(S, target) + F.cross_entropy(S.t(), target)) / 2
loss.backward()
acc = ((S.argmax(1) == target).float().sum() + (S.argmax(0) == target).float().sum()) / (2 * n)
for k, val in dict(h=h, lens=lens, pooled=pooled, loss=loss.reshape(1), acc=acc.reshape(1),
                   dpooled=pooled.grad, dh=h.grad * mask[:, :, None]).items():
    put("contrastive." + k, val)
put("contrastive.scale", torch.tensor([scale]))

header, blobs, off = {}, [], 0
for name, arr in T.items():
    raw = arr.astype("<f4" if arr.dtype == np.float32 else "<i4").tobytes()
    header[name] = {"dtype": "F32" if arr.dtype == np.float32 else "I32",
                    "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
header["__metadata__"] = {"generator": "tests/golden/gen_contrastive_golden.py",
                          "torch": torch.__version__}
hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * ((8 - len(hjson) % 8) % 8)
with open(OUT, "wb") as f:
    f.write(struct.pack("<Q", len(hjson)))
    f.write(hjson)
    for raw in blobs:
        f.write(raw)
print("wrote %s: %d tensors" % (os.path.normpath(OUT), len(T)))
