#!/usr/bin/env python3
"""Print the bf16 rounding goldens of tests/test_tensor.c (test_bf16_round) from PyTorch:
torch.Tensor.to(torch.bfloat16) rounds fp32 to nearest even, the contract of xa_bf16_round.
Run with Debian's /usr/bin/python3 (python3-torch) and paste the output into the test."""
import struct
import torch

vals = [1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 1.0 + 2**-8 + 2**-20, -1.0 - 2**-8, 3.14159265, -2.71828,
        1e-3, 65504.0, 3.3895314e38, 3.4028235e38, -3.4028235e38, 1e-38, 0.0, -0.0,
        float("inf"), float("-inf"), 0.1, 123456.789, -7.5e-5]
bits = []
for v in vals:
    b = torch.tensor([v], dtype=torch.float32).to(torch.bfloat16).view(torch.int16).item() & 0xFFFF
    bits.append(b)
f32 = [struct.unpack("<I", struct.pack("<f", v))[0] for v in vals]
print("static const uint32_t in_bits[] = {" + ", ".join(f"0x{x:08x}u" for x in f32) + "};")
print("static const uint16_t want[] = {" + ", ".join(f"0x{x:04x}" for x in bits) + "};")
