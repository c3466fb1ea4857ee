#!/usr/bin/python3
"""Golden values for the class-weighted loss of tests/test_tensor.c and tests/test_model.c.

Run once with Debian's python3 (torch 1.13, numpy), from the repository root:

    /usr/bin/python3 tests/golden/gen_class_weight_golden.py

and commit the output, tests/data/tensor/class_weights.safetensors (a few kB). The C tests need no
Python.

What it holds (the reference is PyTorch itself, not xadapt):
  wce.*   F.cross_entropy(logits, targets, weight=w, ignore_index=-100), reduction "mean", which
          is sum_n w[t_n] loss_n / sum_n w[t_n] over the rows that count; the loss and autograd's
          d(loss)/d(logits). One weight is 0, two rows are ignored.
  cls.*   the XLM-R classification head (RobertaClassificationHead in evaluation mode: dense, tanh,
          out_proj on the <s> row) with that weighted loss: the loss and the gradients of every
          head tensor and of the hidden states.
  tag.*   the token-classification head (one linear layer per token) with the weighted loss, some
          tokens ignored.
  bal.*   scikit-learn's class_weight="balanced", n_samples / (n_classes * bincount(y)) over the
          classes that occur (sklearn.utils.class_weight.compute_class_weight, written out with
          numpy because scikit-learn is not installed), 0 for a class that never occurs, over
          labels with ignored (-100) entries left out.
The safetensors file is written by stfile.py beside this script.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stfile import Tensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tensor",
                   "class_weights.safetensors")

torch.manual_seed(20261203)
T = Tensors()
put = T.put


# ---- the kernel: N=9 rows, V=5 classes -----------------------------------------------------------
N, V = 9, 5
logits = (torch.randn(N, V) * 2.0).requires_grad_(True)
targets = torch.tensor([0, 3, -100, 1, 4, 3, 2, -100, 3])
w = torch.tensor([0.5, 2.0, 0.0, 1.25, 3.0])  # class 2 weighs nothing
loss = F.cross_entropy(logits, targets, weight=w, ignore_index=-100)
loss.backward()
put("wce.logits", logits)
put("wce.targets", targets)
put("wce.weights", w)
put("wce.loss", loss.reshape(1))
put("wce.dlogits", logits.grad)

# ---- classification head: B=6 sequences of T=3 tokens, C=8, K=4 -----------------------------------
B, TT, C, K = 6, 3, 8, 4
hidden = torch.randn(B, TT, C).requires_grad_(True)
W1 = (torch.randn(C, C) * 0.3).requires_grad_(True)
b1 = (torch.randn(C) * 0.1).requires_grad_(True)
W2 = (torch.randn(K, C) * 0.3).requires_grad_(True)
b2 = (torch.randn(K) * 0.1).requires_grad_(True)
labels = torch.tensor([0, 1, 1, 3, 1, 2])
cw = torch.tensor([2.0, 0.6, 1.5, 4.0])
out = F.linear(torch.tanh(F.linear(hidden[:, 0], W1, b1)), W2, b2)
lc = F.cross_entropy(out, labels, weight=cw)
lc.backward()
for k, v in dict(hidden=hidden, W1=W1, b1=b1, W2=W2, b2=b2, labels=labels, weights=cw,
                 loss=lc.reshape(1), dhidden=hidden.grad, dW1=W1.grad, db1=b1.grad, dW2=W2.grad,
                 db2=b2.grad).items():
    put("cls." + k, v)

# ---- tagging head: B=2, T=5, C=6, K=3 -----------------------------------------------------------------
B2, T2, C2, K2 = 2, 5, 6, 3
h2 = torch.randn(B2, T2, C2).requires_grad_(True)
Wt = (torch.randn(K2, C2) * 0.4).requires_grad_(True)
bt = (torch.randn(K2) * 0.1).requires_grad_(True)
tags = torch.tensor([[-100, 0, 1, -100, 2], [-100, 2, 2, 0, -100]])
tw = torch.tensor([0.3, 2.5, 1.0])
lt = F.cross_entropy(F.linear(h2, Wt, bt).reshape(-1, K2), tags.reshape(-1), weight=tw, ignore_index=-100)
lt.backward()
for k, v in dict(hidden=h2, W=Wt, b=bt, labels=tags, weights=tw, loss=lt.reshape(1), dhidden=h2.grad,
                 dW=Wt.grad, db=bt.grad).items():
    put("tag." + k, v)

# ---- balanced weights: 6 classes, class 4 absent, two ignored entries -------------------------------------
y = np.array([0, 0, 0, 0, 0, 0, 1, 2, 2, 3, 3, 3, 5, -100, 0, -100, 1, 0])
kept = y[y != -100]
counts = np.bincount(kept, minlength=6)
present = counts > 0
bal = np.zeros(6)
bal[present] = len(kept) / (present.sum() * counts[present])
put("bal.labels", y)
put("bal.weights", bal)

T.write(OUT, {"generator": "tests/golden/gen_class_weight_golden.py", "torch": torch.__version__})
