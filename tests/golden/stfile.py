"""A safetensors writer for the golden scripts (the safetensors package is not installed here):
u64 LE header length, the JSON header padded with spaces to a multiple of 8, then the raw
little-endian bytes. Tensors are numpy arrays, float ones stored as F32 and integer ones as I32.
"""
import json
import os
import struct

import numpy as np


class Tensors:
    """Named arrays in insertion order."""

    def __init__(self):
        self.t = {}

    def put(self, name, x):
        if hasattr(x, "detach"):  # a torch tensor
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        x = x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int32)
        assert name not in self.t, name
        self.t[name] = np.ascontiguousarray(x)

    def write(self, path, metadata):
        header, blobs, off = {}, [], 0
        for name, arr in self.t.items():
            raw = arr.astype("<f4" if arr.dtype == np.float32 else "<i4").tobytes()
            header[name] = {"dtype": "F32" if arr.dtype == np.float32 else "I32",
                            "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
            blobs.append(raw)
            off += len(raw)
        header["__metadata__"] = metadata
        hjson = json.dumps(header, separators=(",", ":")).encode()
        hjson += b" " * ((8 - len(hjson) % 8) % 8)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for raw in blobs:
                f.write(raw)
        print("wrote %s: %d tensors, %d bytes" % (os.path.normpath(path), len(self.t), 8 + len(hjson) + off))
