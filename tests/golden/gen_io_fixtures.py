#!/usr/bin/python3
"""Generate tests/data/io/io_golden.safetensors: F16 / BF16 <-> F32 reference values for
tests/test_safetensors.c, computed by PyTorch (an implementation independent of xadapt's).

Run once with Debian's python (torch 1.13, numpy):  /usr/bin/python3 tests/golden/gen_io_fixtures.py
The safetensors package is not installed here, so the file is written by hand with struct + json,
following the format: u64 LE header length, JSON header padded with spaces to a multiple of 8,
then the little-endian tensor bytes, contiguous from offset 0.

Tensors (all 1-D unless noted):
  f16_in      F16   every F16 subnormal, zero, inf and NaN pattern (both signs), the smallest
                    normals, and random patterns
  f16_as_f32  F32   torch: f16_in.float()
  bf16_in     BF16  the same classes of BF16 patterns
  bf16_as_f32 F32   torch: bf16_in.float()
  f32_src     F32   values chosen to exercise narrowing: halfway cases, overflow, F16 subnormals
  f32_to_f16  F16   torch: f32_src.half()          (round to nearest even)
  f32_to_bf16 BF16  torch: f32_src.bfloat16()      (round to nearest even)
  ids         I64   [5] integer tensor (must list but refuse F32 conversion)
  scalar      F32   shape [] (one element)
  empty       F32   shape [0, 3] (no bytes)
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "io",
                   "io_golden.safetensors")
rng = np.random.default_rng(20240229)


def f16_patterns():
    pats = []
    for sign in (0, 0x8000):
        pats += [sign | m for m in range(0, 1024)]               # zero and subnormals
        pats += [sign | 0x7C00 | m for m in range(0, 1024, 7)]   # inf and NaNs (payloads)
        pats += [sign | 0x7C00, sign | 0x7E00, sign | 0x7C01, sign | 0x7FFF]
        pats += [sign | 0x0400 | m for m in range(0, 1024, 13)]  # smallest normals
        pats += [sign | 0x7BFF, sign | 0x3C00, sign | 0x3BFF]    # max, 1, 1 - ulp
    pats += list(rng.integers(0, 65536, 2000))
    return np.array(pats, dtype=np.uint16)


def bf16_patterns():
    pats = []
    for sign in (0, 0x8000):
        pats += [sign | m for m in range(0, 128)]                # zero and subnormals
        pats += [sign | 0x7F80 | m for m in range(0, 128, 3)]    # inf and NaNs
        pats += [sign | 0x7F80, sign | 0x7FC0, sign | 0x7F81, sign | 0x7FFF]
        pats += [sign | 0x0080 | m for m in range(128)]          # smallest normals
        pats += [sign | 0x7F7F, sign | 0x3F80]                   # max, 1
    pats += list(rng.integers(0, 65536, 1500))
    return np.array(pats, dtype=np.uint16)


def f32_sources():
    v = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, -65520.0, 65536.0, 1e9, -1e30,
         3.4028234663852886e38, float("inf"), float("-inf"), float("nan"), -float("nan"),
         2.0 ** -24, 2.0 ** -25, -(2.0 ** -25), 2.0 ** -25 * (1 + 2.0 ** -20), 3 * 2.0 ** -26,
         5 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -11), 2.0 ** -15, 1e-8, 6e-8,
         1.1754943508222875e-38, 1e-45, 0.1, 1 / 3, 2 / 3, 3.14159265, 1 + 2.0 ** -11,
         1 + 3 * 2.0 ** -11, 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 256.5, 257.5, 2049.0, 2051.0]
    bits = []
    # exact F16 / BF16 halfway points between neighbours (ties go to even) and their neighbours
    for h in rng.integers(0x0001, 0x7BFF, 300):
        lo = np.array([h], dtype=np.uint16).view(np.float16).astype(np.float32)[0]
        hi = np.array([h + 1], dtype=np.uint16).view(np.float16).astype(np.float32)[0]
        mid = np.float32((np.float64(lo) + np.float64(hi)) / 2)
        b = int(np.array([mid], dtype=np.float32).view(np.uint32)[0])
        bits += [b, b - 1, b + 1]
    for u in rng.integers(0, 0x7F7F, 300):
        b = (int(u) << 16) | 0x8000
        bits += [b, b - 1, b + 1, b | 0x80000000]
    bits += list(rng.integers(0, 2 ** 32, 1500, dtype=np.uint64).astype(np.uint32))
    scales = np.exp(rng.uniform(np.log(1e-9), np.log(1e6), 1500))
    vals = np.concatenate([np.array(v, dtype=np.float32),
                           np.array(bits, dtype=np.uint32).view(np.float32),
                           (rng.standard_normal(1500) * scales).astype(np.float32)])
    return vals


def tensor_bytes(t):
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    return t.contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def main():
    f16_in = torch.from_numpy(f16_patterns().view(np.int16).copy()).view(torch.float16)
    bf16_in = torch.from_numpy(bf16_patterns().view(np.int16).copy()).view(torch.bfloat16)
    f32_src = torch.from_numpy(f32_sources())
    tensors = [  # deliberately not in name order: file order is data-offset order
        ("f32_src", "F32", f32_src),
        ("f32_to_f16", "F16", f32_src.half()),
        ("f32_to_bf16", "BF16", f32_src.bfloat16()),
        ("f16_in", "F16", f16_in),
        ("f16_as_f32", "F32", f16_in.float()),
        ("bf16_in", "BF16", bf16_in),
        ("bf16_as_f32", "F32", bf16_in.float()),
        ("ids", "I64", torch.tensor([0, 1, 2, -5, 250001], dtype=torch.int64)),
        ("scalar", "F32", torch.tensor(2.5, dtype=torch.float32)),
        ("empty", "F32", torch.zeros(0, 3, dtype=torch.float32)),
    ]
    header = {"__metadata__": {"format": "pt", "generator": "tests/golden/gen_io_fixtures.py",
                               "torch": torch.__version__}}
    blobs, off = [], 0
    for name, dt, t in tensors:
        b = tensor_bytes(t)
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    print(f"wrote {OUT}: {8 + len(text) + off} bytes, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
