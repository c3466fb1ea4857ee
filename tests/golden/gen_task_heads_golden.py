#!/usr/bin/python3
"""Golden values for the multiple-choice head of tests/test_model.c (issue 16).

Run once with Debian's python3 (torch 1.13), from the repository root:

    /usr/bin/python3 tests/golden/gen_task_heads_golden.py

and commit the output, tests/data/tensor/task_heads.safetensors (a few kB). The C tests need no
Python.

What it holds (the reference is PyTorch, written as AdapterHub's MultipleChoiceHead builds it,
adapters 1.2.0 src/adapters/heads/base.py: PredictionHead.build with layers 2 and "num_choices" in
the config gives Dropout, Linear(H, H), Tanh, Dropout, Linear(H, 1); forward takes the <s> row,
views the scores as (-1, num_choices) and applies CrossEntropyLoss), in evaluation mode:
  mc.*    G=3 examples of N=4 choices (12 rows of T=5 tokens, C=8): the logits (G, N), the mean
          loss and the gradients of every head tensor and of the hidden states.
  mc2.*   the same head body on G=4 examples of N=2 choices (COPA's shape), with its own weights.
The safetensors file is written by stfile.py beside this script.
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stfile import Tensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tensor",
                   "task_heads.safetensors")

torch.manual_seed(20261216)
T = Tensors()


def mc_case(tag, G, N, TT, C):
    head = nn.Sequential(nn.Dropout(0.1), nn.Linear(C, C), nn.Tanh(), nn.Dropout(0.1), nn.Linear(C, 1))
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn_like(p) * 0.4)
    head.eval()
    hidden = torch.randn(G * N, TT, C).requires_grad_(True)
    labels = torch.randint(0, N, (G,))
    logits = head(hidden[:, 0]).view(-1, N)
    loss = nn.CrossEntropyLoss()(logits, labels)
    loss.backward()
    T.put(tag + ".hidden", hidden)
    T.put(tag + ".labels", labels)
    T.put(tag + ".W1", head[1].weight)
    T.put(tag + ".b1", head[1].bias)
    T.put(tag + ".W2", head[4].weight)
    T.put(tag + ".b2", head[4].bias)
    T.put(tag + ".logits", logits)
    T.put(tag + ".loss", loss.reshape(1))
    T.put(tag + ".dhidden", hidden.grad)
    T.put(tag + ".dW1", head[1].weight.grad)
    T.put(tag + ".db1", head[1].bias.grad)
    T.put(tag + ".dW2", head[4].weight.grad)
    T.put(tag + ".db2", head[4].bias.grad)


mc_case("mc", 3, 4, 5, 8)
mc_case("mc2", 4, 2, 3, 6)
T.write(OUT, {"generator": "tests/golden/gen_task_heads_golden.py", "torch": torch.__version__})
