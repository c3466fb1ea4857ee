#!/usr/bin/python3
"""PyTorch reference of `xadapt bench`: the same model sizes, modes, batches and FLOP accounting,
run the way a skilled user runs PyTorch on a CPU:
  - torch.set_num_threads(N) with OMP_WAIT_POLICY=passive in the environment (compare.sh sets it,
    and runs N = 1 and 2 and keeps the best);
  - the MLM loss on the masked rows only (the hidden states are gathered before the head);
  - frozen parameters have requires_grad=False and their forward runs under torch.no_grad();
  - inference under torch.inference_mode() in eval mode.
With --precision bf16, mixed precision as a skilled user does it on a CPU with bf16 support:
fp32 master weights and AdamW, torch.autocast("cpu", dtype=torch.bfloat16) around forward and loss,
backward, clipping and the optimizer step outside it; inference under inference_mode + autocast.
In torch 1.13 CPU autocast runs nn.Linear, matmul and bmm in bf16 through oneDNN (on an
AVX512-BF16 CPU its brgemm "avx512_core_bf16" kernels; --probe prints which), keeps LayerNorm,
softmax-free losses such as cross_entropy in fp32, and casts the fp32 weights to bf16 at every
forward (there is no weight cache outside torch.jit).
The model is a plain-torch XLM-R encoder (nn.Linear, exact GELU, post-LN, dropout 0.1 when
training), as in tests/golden/gen_encoder_golden.py. Each row runs in its own process (this script
calls itself with --row) so the peak RSS is that row's. Output: one JSON object per row.

Adapter modes (MAD-X, the AdapterHub semantics of ../shared/ADAPTERHUB.md §1.1-1.6, in plain torch):
  lang = seq_bn_inv (Pfeiffer at the FFN output, relu, reduction factor 2, NICE invertible adapter
  with inv rf 2 on the embedding output and its inverse before the tied decoder), task = seq_bn
  (rf 16). A Pfeiffer adapter at the FFN site: out = LN_o(h + x + A(LN_o(h + x))); Stack(lang, task)
  re-applies LN_o before the task adapter (§1.6 worked example).
  - lang-adapter: MLM, encoder, MLM head and tied decoder frozen (requires_grad=False); only the
    language adapter trains (AdamW over its parameters);
  - task-adapter: classification on Stack(lang, task); lang frozen, task and the head train;
    autograd records nothing below the lowest trainable parameter (layer 0's task adapter);
  - infer-stack: Stack(lang, task) and the head under inference_mode.

usage: /usr/bin/python3 tests/bench/bench_torch.py [--models tiny,small] [--modes ...]
           [--batch 8,32] [--seq 128] [--steps 5] [--min-seconds 2] [--threads 1] [--precision fp32|bf16]
       /usr/bin/python3 tests/bench/bench_torch.py --probe
"""
import argparse
import contextlib
import json
import os
import math
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # L, C, NH, FF, V  (as xa_encoder_preset)
    "tiny": (2, 128, 2, 512, 8000),
    "small": (4, 256, 4, 1024, 16000),
    "base": (12, 768, 12, 3072, 32000),
    "xlmr-base": (12, 768, 12, 3072, 250002),  # XLM-R base's shape and vocabulary
}
CLASSES = 8


LANG_RF, TASK_RF, INV_RF = 2.0, 16.0, 2.0  # seq_bn_inv rf 2 (published MAD-X), seq_bn rf 16


def bneck_d(C, rf):
    return max(1, int(C // rf))


def nice_row_flops(C):
    c1, c2 = C // 2, C - C // 2
    h1, h2 = max(1, int(c1 / INV_RF)), max(1, int(c2 / INV_RF))
    return 2.0 * (c2 * h2 + h2 * c1 + c1 * h1 + h1 * c2)


def flops(mode, L, C, NH, FF, V, B, T, m):
    """The FLOP count of xa_bench_flops, so GFLOP/s compare like for like."""
    N = B * T
    enc = L * (2.0 * N * (4.0 * C * C + 2.0 * C * FF) + 4.0 * B * T * T * C)
    mlm = 2.0 * m * C * C + 2.0 * m * C * V
    cls = 2.0 * B * C * C + 2.0 * B * C * CLASSES
    lang = L * 4.0 * N * C * bneck_d(C, LANG_RF)
    task = L * 4.0 * N * C * bneck_d(C, TASK_RF)
    inv, inv_m = N * nice_row_flops(C), m * nice_row_flops(C)
    above0 = (L - 1.0) / L
    return {"mlm-full": 3 * enc + 3 * mlm,
            "mlm-frozen": enc + mlm + 2.0 * m * C * V + 2.0 * m * C * C,
            "cls-frozen": enc + 3 * cls,
            "infer": enc,
            "lang-adapter": 2 * enc + 2 * mlm + 3 * (lang + inv + inv_m),
            "task-adapter": enc * (1 + above0) + lang * (1 + above0) + inv + 3 * task + 3 * cls,
            "infer-stack": enc + lang + task + inv + cls}[mode]


class Layer(nn.Module):
    def __init__(self, C, NH, FF, p):
        super().__init__()
        self.NH, self.p = NH, p
        self.q, self.k, self.v, self.o = (nn.Linear(C, C) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
        self.fc, self.fo = nn.Linear(C, FF), nn.Linear(FF, C)

    def forward(self, x, adapters=()):
        B, T, C = x.shape
        HS = C // self.NH
        q = self.q(x).view(B, T, self.NH, HS).transpose(1, 2)
        k = self.k(x).view(B, T, self.NH, HS).transpose(1, 2)
        v = self.v(x).view(B, T, self.NH, HS).transpose(1, 2)
        att = (q @ k.transpose(-1, -2) / math.sqrt(HS)).softmax(-1)
        att = F.dropout(att, self.p, self.training)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, C)
        y = self.ln1(F.dropout(self.o(ctx), self.p, self.training) + x)
        f = F.gelu(self.fc(y))
        h = F.dropout(self.fo(f), self.p, self.training)
        # Pfeiffer adapters at the FFN output, stacked (ADAPTERHUB.md §1.4, §1.6): each adapter's
        # input is LN_o(current + x), its residual the current hidden; the last LN_o closes it.
        for a in adapters:
            h = h + a(self.ln2(h + y))
        return self.ln2(h + y)


class Encoder(nn.Module):
    def __init__(self, L, C, NH, FF, V, P=514):
        super().__init__()
        self.wte, self.wpe, self.wtt = nn.Embedding(V, C), nn.Embedding(P, C), nn.Embedding(1, C)
        self.ln = nn.LayerNorm(C, eps=1e-5)
        self.layers = nn.ModuleList(Layer(C, NH, FF, 0.1) for _ in range(L))

    def forward(self, ids, stack=()):
        """stack: the adapters of Stack(...) in order (Bottleneck modules); the first one's
        invertible adapter, if any, runs on the embedding output (AdapterHub: setup.first())."""
        B, T = ids.shape
        pos = torch.arange(2, T + 2).unsqueeze(0)
        x = self.ln(self.wte(ids) + self.wpe(pos) + self.wtt.weight[0])
        x = F.dropout(x, 0.1, self.training)
        if stack and stack[0].inv is not None:
            x = stack[0].inv(x)
        for l, layer in enumerate(self.layers):
            x = layer(x, [a.layers[l] for a in stack])
        return x


class Adapter(nn.Module):
    """AdapterHub `Adapter` with seq_bn flags: A(z) = Up(relu(Down(z))), scaling 1, no dropout;
    bert init (N(0, 0.02) weights, zero biases)."""

    def __init__(self, C, d):
        super().__init__()
        self.down, self.up = nn.Linear(C, d), nn.Linear(d, C)
        for lin in (self.down, self.up):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, z):
        return self.up(F.relu(self.down(z)))


class NICE(nn.Module):
    """AdapterHub NICECouplingBlock: o1 = e1 + F(e2), o2 = e2 + G(o1); inverse in reverse order."""

    def __init__(self, C, rf):
        super().__init__()
        self.c1 = C // 2
        c1, c2 = self.c1, C - self.c1

        def sub(k, out):
            net = nn.Sequential(nn.Linear(k, max(1, int(k / rf))), nn.ReLU(), nn.Linear(max(1, int(k / rf)), out))
            for lin in (net[0], net[2]):
                nn.init.normal_(lin.weight, std=0.02)
                nn.init.zeros_(lin.bias)
            return net

        self.F, self.G = sub(c2, c1), sub(c1, c2)

    def forward(self, e):
        e1, e2 = e[..., :self.c1], e[..., self.c1:]
        o1 = e1 + self.F(e2)
        return torch.cat((o1, e2 + self.G(o1)), -1)

    def inverse(self, o):
        o1, o2 = o[..., :self.c1], o[..., self.c1:]
        e2 = o2 - self.G(o1)
        return torch.cat((o1 - self.F(e2), e2), -1)


class Bottleneck(nn.Module):
    """One named adapter over all layers: a Pfeiffer module at every FFN site (+ NICE)."""

    def __init__(self, L, C, rf, inv_rf=None):
        super().__init__()
        self.layers = nn.ModuleList(Adapter(C, max(1, int(C // rf))) for _ in range(L))
        self.inv = NICE(C, inv_rf) if inv_rf else None


class MLMHead(nn.Module):
    def __init__(self, C, V, wte):
        super().__init__()
        self.dense, self.ln = nn.Linear(C, C), nn.LayerNorm(C, eps=1e-5)
        self.bias = nn.Parameter(torch.zeros(V))
        self.wte = wte

    def forward(self, h, inv=None):
        # .float(): torch 1.13's CPU LayerNorm takes no bf16 input with fp32 weights (autocast leaves
        # layer_norm alone: "expected scalar type BFloat16 but found Float"), so a bf16 user casts
        # back here; a no-op in fp32. The encoder's LayerNorms get fp32 already (bf16 + fp32 residual).
        t = self.ln(F.gelu(self.dense(h)).float())
        if inv is not None:  # the language adapter's inverse before the tied decoder (§1.5)
            t = inv.inverse(t)
        return F.linear(t, self.wte.weight, self.bias)


class ClsHead(nn.Module):
    def __init__(self, C, K):
        super().__init__()
        self.dense, self.out = nn.Linear(C, C), nn.Linear(C, K)

    def forward(self, h):
        return self.out(F.dropout(torch.tanh(self.dense(F.dropout(h[:, 0], 0.1, self.training))), 0.1, self.training))


def run_row(model, mode, B, T, steps, min_s, threads, warmup=2, precision="fp32"):
    torch.set_num_threads(threads)

    def ac():
        """autocast around forward + loss in bf16; nothing in fp32"""
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    torch.manual_seed(1234)
    L, C, NH, FF, V = PRESETS[model]
    enc = Encoder(L, C, NH, FF, V)
    ids = torch.randint(4, V, (B, T))
    sel = torch.rand(B, T) < 0.15
    sel[:, 0] = False
    rows = sel.view(-1).nonzero().squeeze(1)
    targets = torch.randint(4, V, (rows.numel(),))
    labels = torch.randint(0, CLASSES, (B,))
    if mode == "mlm-full":
        head = MLMHead(C, V, enc.wte)
        params = list(enc.parameters()) + [p for n, p in head.named_parameters() if not n.startswith("wte")]
    elif mode == "mlm-frozen":
        head = MLMHead(C, V, enc.wte)
        for p in enc.parameters():
            p.requires_grad_(False)
        params = [head.dense.weight, head.dense.bias, head.ln.weight, head.ln.bias, head.bias]
    elif mode == "cls-frozen":
        head = ClsHead(C, CLASSES)
        for p in enc.parameters():
            p.requires_grad_(False)
        params = list(head.parameters())
    elif mode in ("lang-adapter", "task-adapter", "infer-stack"):
        for p in enc.parameters():
            p.requires_grad_(False)
        lang = Bottleneck(L, C, LANG_RF, INV_RF)
        if mode == "lang-adapter":
            head = MLMHead(C, V, enc.wte)
            for p in head.parameters():  # MLM transform, its bias and the tied decoder frozen
                p.requires_grad_(False)
            params, stack = list(lang.parameters()), (lang,)
        else:
            for p in lang.parameters():
                p.requires_grad_(False)
            task = Bottleneck(L, C, TASK_RF)
            head = ClsHead(C, CLASSES)
            params, stack = list(task.parameters()) + list(head.parameters()), (lang, task)
            if mode == "infer-stack":
                for p in params:
                    p.requires_grad_(False)
                params = []
    else:
        head, params = None, []
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01) if params else None

    def step():
        if mode == "infer":
            enc.eval()
            with torch.inference_mode(), ac():
                enc(ids)
            return
        if mode == "infer-stack":
            enc.eval()
            head.eval()
            with torch.inference_mode(), ac():
                head(enc(ids, stack))
            return
        enc.train()
        with ac():  # forward and loss; backward and the optimizer below, outside autocast
            if mode == "lang-adapter":
                h = enc(ids, stack).reshape(B * T, C)[rows]
                loss = F.cross_entropy(head(h, lang.inv), targets)
            elif mode == "task-adapter":
                head.train()
                loss = F.cross_entropy(head(enc(ids, stack)), labels)
            elif mode == "mlm-full":
                h = enc(ids).reshape(B * T, C)[rows]
                loss = F.cross_entropy(head(h), targets)
            else:
                with torch.no_grad():
                    h = enc(ids)
                if mode == "mlm-frozen":
                    loss = F.cross_entropy(head(h.reshape(B * T, C)[rows]), targets)
                else:
                    head.train()
                    loss = F.cross_entropy(head(h), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    for _ in range(warmup):
        step()
    t0, timed = time.perf_counter(), 0
    while timed < steps or time.perf_counter() - t0 < min_s:
        step()
        timed += 1
    el = time.perf_counter() - t0
    f = flops(mode, L, C, NH, FF, V, B, T, rows.numel())
    return {"impl": "torch", "model": model, "mode": mode, "batch": B, "seq": T, "threads": threads,
            "tokens_per_s": B * T * timed / el, "gflops": f * timed / el / 1e9,
            "step_ms": 1e3 * el / timed,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "steps": timed,
            "torch": torch.__version__, "precision": precision,
            "engine": "autocast bf16 (oneDNN)" if precision == "bf16" else "fp32 (BLAS_INFO=generic: the system BLAS)"}


def probe():
    """Which kernels CPU autocast's bf16 products run: a Linear and a bmm under autocast in a
    child with DNNL_VERBOSE=1 (oneDNN prints each primitive's implementation). One JSON line."""
    code = ("import torch\ntorch.set_num_threads(1)\nx = torch.randn(64, 128)\nlin = torch.nn.Linear(128, 128)\n"
            "with torch.autocast('cpu', dtype=torch.bfloat16):\n"
            "    y = lin(x)\n    z = torch.bmm(y.view(1, 64, 128), y.view(1, 64, 128).transpose(1, 2))\n"
            "print('dtypes', y.dtype, z.dtype)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, DNNL_VERBOSE="1", ONEDNN_VERBOSE="1"))
    isa, impls, dtypes = "", [], ""
    for line in out.stdout.splitlines():
        f = line.split(",")
        if line.startswith(("onednn_verbose,info,cpu,isa:", "dnnl_verbose,info,cpu,isa:")):
            isa = line.split("isa:", 1)[1]
        elif len(f) > 5 and f[1] == "exec" and f[2] == "cpu":
            impls.append(f"{f[3]}:{f[4]}")
        elif line.startswith("dtypes"):
            dtypes = line[len("dtypes "):]
    impl = ",".join(sorted(set(impls))) or "none (autocast did not reach oneDNN)"
    path = "bf16-amx" if "amx" in impl else "bf16-avx512" if "bf16" in impl else "fp32"
    return {"impl": "torch", "torch": torch.__version__, "onednn_isa": isa, "autocast_bf16": impl,
            "autocast_dtypes": dtypes, "path": path}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tiny,small")
    ap.add_argument("--modes", default="mlm-full,mlm-frozen,cls-frozen,infer")
    ap.add_argument("--batch", default="8,32")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones (xadapt: 2)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss")
    ap.add_argument("--probe", action="store_true", help="print which kernels autocast's bf16 products use")
    ap.add_argument("--row", action="store_true", help="internal: run one row in this process")
    a = ap.parse_args()
    if a.probe:
        print(json.dumps(probe()))
        return 0
    if a.row:
        print(json.dumps(run_row(a.models, a.modes, int(a.batch), a.seq, a.steps, a.min_seconds, a.threads,
                                 a.warmup, a.precision)))
        return 0
    for model in a.models.split(","):
        for mode in a.modes.split(","):
            for b in a.batch.split(","):
                out = subprocess.run([sys.executable, __file__, "--row", "--models", model, "--modes", mode,
                                      "--batch", b, "--seq", str(a.seq), "--steps", str(a.steps),
                                      "--min-seconds", str(a.min_seconds), "--threads", str(a.threads),
                                      "--warmup", str(a.warmup), "--precision", a.precision],
                                     check=True, capture_output=True, text=True)
                sys.stdout.write(out.stdout)
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
