#!/usr/bin/python3
"""Golden values for the question-answering head of tests/test_model.c (issue 16).

Run once with Debian's python3 (torch 1.13), from the repository root:

    /usr/bin/python3 tests/golden/gen_qa_head_golden.py

and commit the output, tests/data/tensor/qa_head.safetensors (a few kB). The C tests need no
Python.

The reference is PyTorch written as AdapterHub's QuestionAnsweringHead builds and runs it
(adapters 1.2.0, src/adapters/heads/base.py: PredictionHead.build with layers 1 and num_labels 2
gives Dropout, Linear(H, 2); forward splits the logits into start and end, clamps the positions
to [0, T] and takes (CrossEntropyLoss(ignore_index=T)(start) + ...(end)) / 2), in evaluation mode:
  qa.*   B=3 rows of T=6 tokens, C=8, every position counted; row 2's end position is T (outside:
         ignored, as AdapterHub's clamp does); logits (B, T, 2), loss, gradients of W, b, hidden.
  qa2.*  B=4 rows of T=5, C=6, with lens (4): each row's softmax over its own tokens t < lens[b]
         (xadapt's rule for padded batches; HF pads to max_seq_length and lets the pads into the
         softmax): the reference computes every row on its unpadded slice.
The safetensors file is written by stfile.py beside this script.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stfile import Tensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tensor", "qa_head.safetensors")

torch.manual_seed(20261217)
T = Tensors()


def head_of(C):
    head = nn.Sequential(nn.Dropout(0.1), nn.Linear(C, 2))
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    head.eval()
    return head


def put_common(tag, head, hidden, labels, logits, loss):
    loss.backward()
    T.put(tag + ".hidden", hidden)
    T.put(tag + ".labels", labels)
    T.put(tag + ".W", head[1].weight)
    T.put(tag + ".b", head[1].bias)
    T.put(tag + ".logits", logits)
    T.put(tag + ".loss", loss.reshape(1))
    T.put(tag + ".dhidden", hidden.grad)
    T.put(tag + ".dW", head[1].weight.grad)
    T.put(tag + ".db", head[1].bias.grad)


def case_full(tag, B, TT, C):
    head = head_of(C)
    hidden = torch.randn(B, TT, C).requires_grad_(True)
    labels = torch.randint(0, TT, (B, 2))
    labels[2, 1] = TT  # outside the sequence: ignored
    logits = head(hidden)
    start, end = logits.split(1, dim=-1)
    start, end = start.squeeze(-1), end.squeeze(-1)
    ignored = start.size(1)
    sp, ep = labels[:, 0].clamp(0, ignored), labels[:, 1].clamp(0, ignored)
    ce = nn.CrossEntropyLoss(ignore_index=ignored)
    loss = (ce(start, sp) + ce(end, ep)) / 2
    put_common(tag, head, hidden, labels, logits, loss)


def case_lens(tag, B, TT, C, lens):
    head = head_of(C)
    hidden = torch.randn(B, TT, C).requires_grad_(True)
    labels = torch.stack([torch.randint(0, n, (2,)) for n in lens])
    logits = head(hidden)
    ls, le = [], []
    for b, n in enumerate(lens):
        ls.append(F.cross_entropy(logits[b, :n, 0].unsqueeze(0), labels[b, 0:1]))
        le.append(F.cross_entropy(logits[b, :n, 1].unsqueeze(0), labels[b, 1:2]))
    loss = (torch.stack(ls).mean() + torch.stack(le).mean()) / 2
    put_common(tag, head, hidden, labels, logits, loss)
    T.put(tag + ".lens", torch.tensor(lens, dtype=torch.int32))


case_full("qa", 3, 6, 8)
case_lens("qa2", 4, 5, 6, [5, 3, 4, 2])
T.write(OUT, {"generator": "tests/golden/gen_qa_head_golden.py", "torch": torch.__version__})
