#!/usr/bin/python3
"""Independent PyTorch reference of AdapterHub bottleneck adapters (adapters v1.2.0 code behaviour,
ADAPTERHUB.md §1.1-1.10) on the tiny frozen encoders of tests/data/encoder/{xlmr,bert}, written
with plain torch (no transformers / adapters / safetensors packages on this machine).

It writes one folder per case under tests/data/adapters/<case>/:
  <adapter_name>/adapter_config.json + adapter.safetensors      AdapterHub layout (§1.10)
  fusion_<a_b_c>/adapter_fusion_config.json + model_adapter_fusion.safetensors
  golden.safetensors      inputs, outputs, loss and gradients (names below)

Golden tensors (all F32 except the I64 indices):
  input_ids (B,T) the UNREPLICATED batch; lens (B); proj (B',T,C) with B' = replicas*B;
  emb_out (B',T,C) embedding output after the invertible adapter; hidden.0 .. hidden.{L-1} layer
  outputs; hidden (B',T,C) the last hidden state; loss (1);
  grad.<tensor name as in the adapter / fusion file WITHOUT the model prefix> for every parameter
  of every trainable adapter / fusion (the ln_before LayerNorm only under adapter_norm_before.*);
  MLM cases: mlm_rows (M) = b*T+t, mlm_targets (M), mlm_logits (M,V).
Metadata: base, setup, adapters (comma list), fusions (";" list: fusion names contain commas),
  trainable (comma list of ADAPTER names), trainable_fusions (";" list of fusion names),
  loss ("proj" | "mlm"), skip_layers, prefix, replicas, leave_out_at_load (applies to every adapter
  of the case), token_type_ids ("zeros": every case uses token type 0), dtype, generator.

Numerics: everything is computed in float64 from the float32 values that are written (base and
adapter weights), then written as float32; gradients are float64 autograd, written as float32.
Eval mode everywhere (no dropout). The loss "proj" is sum over valid rows (t < lens[b]) of
hidden * proj (all replicas for Parallel); "mlm" is the mean cross-entropy over mlm_rows of the
encoder's MLM head (dense -> erf GELU -> LayerNorm(model eps) -> inverse invertible adapter of the
setup's first() adapter -> decoder tied to the word embeddings + bias). The dynamic fusion
regulariser is NOT part of the loss.

xadapt definitions used where AdapterHub differs (compose.h, adapters.h):
  - gating: the per-sequence gate is the mean of sigmoid(gate(z)) over the lens[b] real tokens only
    (AdapterHub averages over all T positions, pads included). Inside a Split child it is the mean
    over the real tokens of that child's token slice.
  - Average: sum_i w_i h_i with weights normalised to sum 1 (AdapterHub divides again by n, Q2).
  - Parallel: the whole batch is replicated n times at the embedding input (replica i = rows
    [i*B, (i+1)*B)); AdapterHub replicates at the first layer that meets the block (same output in
    eval mode).
  - GLOW: the standard affine coupling of adapters.h (AdapterHub's GLOW does not run, Q1).

Run: /usr/bin/python3 tests/golden/gen_adapter_golden.py   (deterministic; a few seconds)
"""
import copy
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
ENC_DIR = os.path.join(ROOT, "tests", "data", "encoder")
OUT = os.path.join(ROOT, "tests", "data", "adapters")
DT = torch.float64
ADAPTER_LN_EPS = 1e-5
VERSION = "adapters.1.2.0"


# ---- safetensors by hand ---------------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """u64 LE header length, JSON header padded with spaces to a multiple of 8, raw LE data.
    Floating tensors are written as F32."""
    dtypes = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu()
        if t.is_floating_point():
            t = t.to(torch.float32)
        t = t.contiguous()
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


def read_safetensors(path):
    """Returns ({name: torch tensor}, metadata dict)."""
    npd = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I8": np.int8, "U8": np.uint8}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode())
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        if h["dtype"] == "BF16":
            u = np.frombuffer(data[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(data[base + a:base + b], dtype=npd[h["dtype"]])
        out[name] = torch.from_numpy(arr.copy().reshape(h["shape"]))
    return out, meta


# ---- activations -----------------------------------------------------------------------------

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACTS = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact erf form
    "gelu_new": gelu_new,
    "swish": F.silu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "leakyrelu": lambda x: F.leaky_relu(x, 0.01),
    "linear": lambda x: x,
}


def act_fn(name):
    name = name.lower()
    if name not in ACTS:
        raise ValueError(f"unsupported non_linearity {name!r}")
    return ACTS[name]


def ln(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


# ---- configs ---------------------------------------------------------------------------------

BN_DEFAULTS = {
    "mh_adapter": False, "output_adapter": True, "reduction_factor": 16, "non_linearity": "relu",
    "original_ln_before": False, "original_ln_after": True, "residual_before_ln": True,
    "adapter_residual_before_ln": False, "ln_before": False, "ln_after": False,
    "init_weights": "bert", "init_weights_seed": None, "is_parallel": False, "scaling": 1.0,
    "use_gating": False, "inv_adapter": None, "inv_adapter_reduction_factor": None,
    "cross_adapter": False, "leave_out": [], "dropout": 0.0, "phm_layer": False, "phm_dim": 4,
    "factorized_phm_W": True, "shared_W_phm": False, "shared_phm_rule": True,
    "factorized_phm_rule": False, "phm_c_init": "normal", "phm_init_range": 0.0001,
    "learn_phm": True, "hypercomplex_nonlinearity": "glorot-uniform", "phm_rank": 1,
    "phm_bias": True, "stochastic_depth": 0.0,
}

PRESETS = {
    "seq_bn": dict(original_ln_before=True, non_linearity="relu", reduction_factor=16),
    "seq_bn_inv": dict(original_ln_before=True, non_linearity="relu", reduction_factor=16,
                       inv_adapter="nice", inv_adapter_reduction_factor=2),
    "double_seq_bn": dict(mh_adapter=True, non_linearity="swish", reduction_factor=16),
    "par_bn": dict(non_linearity="relu", reduction_factor=2, is_parallel=True, scaling=4.0,
                   init_weights="mam_adapter"),
    "compacter": dict(mh_adapter=True, non_linearity="gelu", reduction_factor=32, phm_layer=True),
    "compacter++": dict(original_ln_before=True, non_linearity="gelu", reduction_factor=32,
                        phm_layer=True),
}


def bn_config(preset=None, **over):
    c = copy.deepcopy(BN_DEFAULTS)
    if preset:
        c.update(copy.deepcopy(PRESETS[preset]))
    for k, v in over.items():
        if k not in c:
            raise KeyError(k)
        c[k] = v
    return c


FUSION_PRESETS = {
    "static": dict(key=True, query=True, value=False, query_before_ln=False, regularization=False,
                   residual_before=False, temperature=False, value_before_softmax=True,
                   value_initialized=False, dropout_prob=None),
    "dynamic": dict(key=True, query=True, value=True, query_before_ln=False, regularization=True,
                    residual_before=False, temperature=False, value_before_softmax=True,
                    value_initialized=True, dropout_prob=None),
}


def normalize_bn_config(cfg, has_version):
    """What AdapterHub does on load: legacy gelu rename when the file has no version, the v1
    nested invertible_adapter mapping, lowercased activation."""
    c = copy.deepcopy(BN_DEFAULTS)
    inv = cfg.get("invertible_adapter")
    for k, v in cfg.items():
        if k in c:
            c[k] = v
    if isinstance(inv, dict) and inv:
        c["inv_adapter"] = inv.get("block_type")
        c["inv_adapter_reduction_factor"] = inv.get("reduction_factor")
    act = str(c["non_linearity"]).lower()
    if not has_version:
        act = {"gelu": "gelu_new", "gelu_orig": "gelu"}.get(act, act)
    c["non_linearity"] = act
    return c


def reduction_factor(cfg, layer):
    rf = cfg["reduction_factor"]
    if isinstance(rf, dict):
        if str(layer) in rf:
            return rf[str(layer)]
        return rf["default"]
    return rf


def bottleneck(cfg, layer, C):
    return max(1, int(C // reduction_factor(cfg, layer)))


# ---- the base encoder ------------------------------------------------------------------------

class Base:
    def __init__(self, variant):
        d = os.path.join(ENC_DIR, variant)
        with open(os.path.join(d, "config.json")) as f:
            self.cfg = json.load(f)
        raw, _ = read_safetensors(os.path.join(d, "model.safetensors"))
        self.p = {k: v.to(DT) for k, v in raw.items()}
        self.variant = variant
        self.xlmr = self.cfg["model_type"] == "xlm-roberta"
        self.prefix = "roberta." if self.xlmr else "bert."
        self.C = self.cfg["hidden_size"]
        self.L = self.cfg["num_hidden_layers"]
        self.V = self.cfg["vocab_size"]
        self.eps = self.cfg["layer_norm_eps"]
        self.pad = self.cfg["pad_token_id"]
        if self.xlmr:
            self.mlm = ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")
        else:
            self.mlm = ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                        "cls.predictions.bias")

    def embed(self, ids, token_types):
        B, T = ids.shape
        if self.xlmr:
            m = (ids != self.pad).long()
            pos = torch.cumsum(m, dim=1) * m + self.pad
        else:
            pos = torch.arange(T).unsqueeze(0).expand(B, T)
        E = self.prefix + "embeddings."
        p = self.p
        x = (p[E + "word_embeddings.weight"][ids] + p[E + "position_embeddings.weight"][pos]
             + p[E + "token_type_embeddings.weight"][token_types])
        return ln(x, p[E + "LayerNorm.weight"], p[E + "LayerNorm.bias"], self.eps)

    def layer_ln(self, i, where):
        L = f"{self.prefix}encoder.layer.{i}."
        w, b, eps = self.p[L + where + ".LayerNorm.weight"], self.p[L + where + ".LayerNorm.bias"], self.eps
        return lambda t: ln(t, w, b, eps)

    def encode(self, emb, lens, hook):
        """hook(layer, loc, h, x, LN_o) -> sub-layer output; loc 0 attention, 1 FFN."""
        C, NH = self.C, self.cfg["num_attention_heads"]
        HS = C // NH
        B, T, _ = emb.shape
        mask = (torch.arange(T)[None, :] < lens[:, None]).to(DT)
        additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        h = emb
        outs = []
        for i in range(self.L):
            L = f"{self.prefix}encoder.layer.{i}."

            def lin(t, name):
                return F.linear(t, self.p[L + name + ".weight"], self.p[L + name + ".bias"])

            q = lin(h, "attention.self.query").view(B, T, NH, HS).transpose(1, 2)
            k = lin(h, "attention.self.key").view(B, T, NH, HS).transpose(1, 2)
            v = lin(h, "attention.self.value").view(B, T, NH, HS).transpose(1, 2)
            scores = q @ k.transpose(-1, -2) / math.sqrt(HS) + additive
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
            h1 = lin(ctx, "attention.output.dense")
            a = hook(i, 0, h1, h, self.layer_ln(i, "attention.output"))
            f = F.gelu(lin(a, "intermediate.dense"))
            h2 = lin(f, "output.dense")
            h = hook(i, 1, h2, a, self.layer_ln(i, "output"))
            outs.append(h)
        return outs

    def mlm_logits(self, rows, inv=None):
        p, n = self.p, self.mlm
        t = F.gelu(F.linear(rows, p[n[0] + ".weight"], p[n[0] + ".bias"]))
        t = ln(t, p[n[1] + ".weight"], p[n[1] + ".bias"], self.eps)
        if inv is not None:
            t = inv(t)
        return F.linear(t, p[self.prefix + "embeddings.word_embeddings.weight"], p[n[2]])


# ---- adapters --------------------------------------------------------------------------------

LOCS = ("attention.output", "output")
LOC_FLAG = ("mh_adapter", "output_adapter")


class Adapter:
    """One named bottleneck adapter over all layers. params: canonical names (file names without
    the model prefix) -> float64 tensors."""

    def __init__(self, name, cfg, L, C):
        self.name, self.cfg, self.L, self.C = name, cfg, L, C
        self.act = act_fn(cfg["non_linearity"])
        self.params = {}
        self.extra_leave_out = set()
        if cfg["phm_layer"]:
            if not cfg["shared_phm_rule"] or cfg["factorized_phm_rule"] or cfg["shared_W_phm"]:
                raise NotImplementedError("only a shared, non-factorised PHM rule and per-layer W")

    # structure
    def present(self, layer, loc):
        return (bool(self.cfg[LOC_FLAG[loc]]) and layer not in self.cfg["leave_out"]
                and layer not in self.extra_leave_out)

    def mod_prefix(self, layer, loc):
        return f"encoder.layer.{layer}.{LOCS[loc]}.adapters.{self.name}."

    def module_shapes(self, layer):
        """Local names -> shapes, in AdapterHub's naming; the ln_before alias is not listed."""
        c, C = self.cfg, self.C
        d = bottleneck(c, layer, C)
        s = {}
        if c["ln_before"]:
            s["adapter_norm_before.weight"] = (C,)
            s["adapter_norm_before.bias"] = (C,)
        di = 1 if c["ln_before"] else 0
        if c["phm_layer"]:
            n, r = c["phm_dim"], c["phm_rank"]
            for tag, fin, fout in ((f"adapter_down.{di}.", C, d), ("adapter_up.", d, C)):
                if c["factorized_phm_W"]:
                    s[tag + "W_left"] = (n, fin // n, r)
                    s[tag + "W_right"] = (n, r, fout // n)
                else:
                    s[tag + "W"] = (n, fin // n, fout // n)
                if c["phm_bias"]:
                    s[tag + "b"] = (fout,)
        else:
            s[f"adapter_down.{di}.weight"] = (d, C)
            s[f"adapter_down.{di}.bias"] = (d,)
            s["adapter_up.weight"] = (C, d)
            s["adapter_up.bias"] = (C,)
        if c["ln_after"]:
            s["adapter_norm_after.weight"] = (C,)
            s["adapter_norm_after.bias"] = (C,)
        if c["scaling"] == "learned":
            s["scaling"] = (1,)
        elif c["scaling"] == "channel":
            s["scaling"] = (C,)
        if c["use_gating"]:
            s["gate.weight"] = (1, C)
            s["gate.bias"] = (1,)
        return s

    def inv_shapes(self):
        c, C = self.cfg, self.C
        kind = c["inv_adapter"]
        if not kind:
            return {}
        rf = c["inv_adapter_reduction_factor"]
        c1 = C // 2
        c2 = C - c1
        h1, h2 = max(1, int(c1 // rf)), max(1, int(c2 // rf))
        P = f"invertible_adapters.{self.name}."
        if kind == "nice":
            return {P + "F.0.weight": (h2, c2), P + "F.0.bias": (h2,),
                    P + "F.2.weight": (c1, h2), P + "F.2.bias": (c1,),
                    P + "G.0.weight": (h1, c1), P + "G.0.bias": (h1,),
                    P + "G.2.weight": (c2, h1), P + "G.2.bias": (c2,)}
        if kind == "glow":
            return {P + "s1.0.weight": (h1, c1), P + "s1.0.bias": (h1,),
                    P + "s1.2.weight": (2 * c2, h1), P + "s1.2.bias": (2 * c2,),
                    P + "s2.0.weight": (h2, c2), P + "s2.0.bias": (h2,),
                    P + "s2.2.weight": (2 * c1, h2), P + "s2.2.bias": (2 * c1,)}
        raise ValueError(kind)

    def all_shapes(self):
        s = {}
        for layer in range(self.L):
            for loc in (0, 1):
                if self.present(layer, loc):
                    for k, v in self.module_shapes(layer).items():
                        s[self.mod_prefix(layer, loc) + k] = v
        if self.cfg["phm_layer"]:
            n = self.cfg["phm_dim"]
            s[f"shared_parameters.{self.name}.phm_rule"] = (n, n, n)
        s.update(self.inv_shapes())
        return s

    def random_init(self, gen):
        """Fixture weights (not AdapterHub's near-identity init): every part visibly matters.
        Drawn in float32 (what the file holds), kept as float64."""
        for k, shape in self.all_shapes().items():
            leaf = k.rsplit(".", 1)[-1]
            if "adapter_norm" in k and leaf == "weight":
                t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
            elif k.endswith(".scaling"):
                t = 1.0 + 0.3 * torch.randn(shape, generator=gen)
            elif leaf == "phm_rule":
                t = 0.5 * torch.randn(shape, generator=gen)
            elif leaf in ("W_left", "W_right"):
                t = 0.5 * torch.randn(shape, generator=gen)
            elif leaf in ("bias", "b"):
                t = 0.1 * torch.randn(shape, generator=gen)
            else:
                t = 0.3 * torch.randn(shape, generator=gen)
            self.params[k] = t.to(torch.float32).to(DT)

    def set_trainable(self, on):
        for k in self.params:
            self.params[k] = self.params[k].detach().requires_grad_(on)

    # weights by module
    def P(self, layer, loc, local):
        return self.params[self.mod_prefix(layer, loc) + local]

    def phm_H(self, W, rule):
        return sum(torch.kron(rule[i], W[i]) for i in range(rule.shape[0]))

    def proj(self, layer, loc, t, which):
        """adapter_down (which 'down') or adapter_up projection of t (no activation)."""
        c = self.cfg
        tag = (f"adapter_down.{1 if c['ln_before'] else 0}." if which == "down" else "adapter_up.")
        if c["phm_layer"]:
            rule = self.params[f"shared_parameters.{self.name}.phm_rule"]
            if c["factorized_phm_W"]:
                W = torch.bmm(self.P(layer, loc, tag + "W_left"), self.P(layer, loc, tag + "W_right"))
            else:
                W = self.P(layer, loc, tag + "W")
            y = t @ self.phm_H(W, rule)
            if c["phm_bias"]:
                y = y + self.P(layer, loc, tag + "b")
            return y
        return F.linear(t, self.P(layer, loc, tag + "weight"), self.P(layer, loc, tag + "bias"))

    def scaling(self, layer, loc):
        s = self.cfg["scaling"]
        if s in ("learned", "channel"):
            return self.P(layer, loc, "scaling")
        return float(s)

    def gate(self, layer, loc, z, mask):
        g = torch.sigmoid(F.linear(z, self.P(layer, loc, "gate.weight"), self.P(layer, loc, "gate.bias")))
        m = mask.to(DT).unsqueeze(-1)  # (B,T,1)
        # xadapt: mean over the real tokens of each sequence (AdapterHub: over all T positions)
        return (g * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)  # (B,1,1)

    # AdapterHub's three steps
    def pre_forward(self, hidden, x, LN_o, fusion_config=None):
        c = self.cfg
        if c["is_parallel"]:
            return x, (x if fusion_config is not None else None), x
        query = None
        residual = None
        rbl = c["residual_before_ln"]
        if rbl is True or rbl == "post_add":
            residual = hidden
        if fusion_config is not None and fusion_config["query_before_ln"]:
            query = hidden
        if c["original_ln_before"]:
            s = hidden + x
            if rbl == "post_add":
                residual = s
            hidden = LN_o(s)
        if rbl is False:
            residual = hidden
        if fusion_config is not None and not fusion_config["query_before_ln"]:
            query = hidden
        return hidden, query, residual

    def forward(self, layer, loc, z, r, mask):
        """Returns (out, down, up) with up the scaled up-projection (before gating)."""
        c = self.cfg
        t = z
        if c["ln_before"]:
            t = ln(t, self.P(layer, loc, "adapter_norm_before.weight"),
                   self.P(layer, loc, "adapter_norm_before.bias"), ADAPTER_LN_EPS)
        down = self.act(self.proj(layer, loc, t, "down"))
        up = self.proj(layer, loc, down, "up") * self.scaling(layer, loc)
        out = up  # dropout: identity in eval
        if c["use_gating"]:
            out = out * self.gate(layer, loc, z, mask)

        def lna(t):
            if not c["ln_after"]:
                return t
            return ln(t, self.P(layer, loc, "adapter_norm_after.weight"),
                      self.P(layer, loc, "adapter_norm_after.bias"), ADAPTER_LN_EPS)

        if c["is_parallel"]:
            return lna(out), down, up
        if c["adapter_residual_before_ln"]:
            out = out + r
        out = lna(out)
        if not c["adapter_residual_before_ln"]:
            out = out + r
        return out, down, up

    def post_forward(self, hidden, input_hidden, x, LN_o):
        if self.cfg["is_parallel"]:
            hidden = hidden + input_hidden
        if self.cfg["original_ln_after"]:
            hidden = LN_o(hidden + x)
        return hidden

    # invertible adapter
    def _sub(self, key, t):
        P = f"invertible_adapters.{self.name}.{key}."
        t = self.act(F.linear(t, self.params[P + "0.weight"], self.params[P + "0.bias"]))
        return F.linear(t, self.params[P + "2.weight"], self.params[P + "2.bias"])

    def has_inv(self):
        return bool(self.cfg["inv_adapter"])

    def inv_forward(self, e):
        c1 = self.C // 2
        e1, e2 = e[..., :c1], e[..., c1:]
        if self.cfg["inv_adapter"] == "nice":
            o1 = e1 + self._sub("F", e2)
            o2 = e2 + self._sub("G", o1)
            return torch.cat([o1, o2], -1)
        c2 = self.C - c1
        s2 = self._sub("s2", e2)
        o1 = glow_e(s2[..., :c1]) * e1 + s2[..., c1:]
        s1 = self._sub("s1", o1)
        o2 = glow_e(s1[..., :c2]) * e2 + s1[..., c2:]
        return torch.cat([o1, o2], -1)

    def inv_inverse(self, o):
        c1 = self.C // 2
        o1, o2 = o[..., :c1], o[..., c1:]
        if self.cfg["inv_adapter"] == "nice":
            e2 = o2 - self._sub("G", o1)
            e1 = o1 - self._sub("F", e2)
            return torch.cat([e1, e2], -1)
        c2 = self.C - c1
        s1 = self._sub("s1", o1)
        e2 = (o2 - s1[..., c2:]) / glow_e(s1[..., :c2])
        s2 = self._sub("s2", e2)
        e1 = (o1 - s2[..., c1:]) / glow_e(s2[..., :c1])
        return torch.cat([e1, e2], -1)

    # files
    def config_json(self, model_type, with_version=True):
        mt = {"xlm-roberta": ("XLMRobertaAdapterModel", "tiny-xlmr"),
              "bert": ("BertAdapterModel", "tiny-bert")}[model_type]
        js = {"config": self.cfg, "hidden_size": self.C, "model_class": mt[0], "model_name": mt[1],
              "model_type": model_type, "name": self.name}
        if with_version:
            js["version"] = VERSION
        return js

    def file_tensors(self, prefix):
        """Names as AdapterHub writes them (with the ln_before alias, quirk Q4)."""
        out = {}
        for k, v in self.params.items():
            out[prefix + k] = v
            if ".adapter_norm_before." in k:
                out[prefix + k.replace("adapter_norm_before.", "adapter_down.0.")] = v
        return out

    def save(self, d, prefix, model_type, with_version=True, file_cfg=None):
        os.makedirs(d, exist_ok=True)
        js = self.config_json(model_type, with_version)
        if file_cfg is not None:
            js["config"] = file_cfg
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(js, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(d, "adapter.safetensors"), self.file_tensors(prefix),
                          {"format": "pt"})

    @staticmethod
    def load(d, L, C, leave_out=()):
        """AdapterHub's reader: names with or without a model prefix; the ln_before alias is
        accepted (and must match); load-time leave_out drops those layers."""
        with open(os.path.join(d, "adapter_config.json")) as f:
            js = json.load(f)
        cfg = js["config"]
        if isinstance(cfg, str):
            cfg = bn_config(cfg)
        cfg = normalize_bn_config(cfg, "version" in js)
        a = Adapter(js["name"], cfg, L, C)
        raw, _ = read_safetensors(os.path.join(d, "adapter.safetensors"))
        tens = {}
        for k, v in raw.items():
            m = re.search(r"(encoder\.layer\.|invertible_adapters\.|shared_parameters\.)", k)
            if not m:
                raise ValueError(f"{d}: unexpected tensor {k}")
            tens[k[m.start():]] = v.to(DT)
        want = a.all_shapes()
        for k, shape in want.items():
            if k not in tens:
                raise ValueError(f"{d}: missing tensor {k}")
            if tuple(tens[k].shape) != tuple(shape):
                raise ValueError(f"{d}: {k} has shape {tuple(tens[k].shape)}, want {shape}")
            a.params[k] = tens.pop(k)
        for k in list(tens):
            if ".adapter_down.0." in k and cfg["ln_before"]:
                alias = k.replace(".adapter_down.0.", ".adapter_norm_before.")
                if alias in a.params:
                    if not torch.equal(tens[k], a.params[alias]):
                        raise ValueError(f"{d}: {k} differs from {alias}")
                    tens.pop(k)
        if tens:
            raise ValueError(f"{d}: unused tensors {sorted(tens)}")
        if leave_out:
            a.extra_leave_out |= set(leave_out)
            for k in list(a.params):
                mm = re.match(r"encoder\.layer\.(\d+)\.", k)
                if mm and int(mm.group(1)) in a.extra_leave_out:
                    del a.params[k]
        return a


def glow_e(s):
    return torch.exp(5.0 * 0.636 * torch.atan(s / 5.0))


class Fusion:
    def __init__(self, name, adapters, cfg, L, C, locs):
        self.name, self.adapters, self.cfg, self.L, self.C = name, adapters, cfg, L, C
        self.locs = locs  # {(layer, loc)} where every fused adapter has a module
        self.params = {}

    def mod_prefix(self, layer, loc):
        return f"encoder.layer.{layer}.{LOCS[loc]}.adapter_fusion_layer.{self.name}."

    def all_shapes(self):
        C, s = self.C, {}
        for (layer, loc) in sorted(self.locs):
            P = self.mod_prefix(layer, loc)
            if self.cfg["query"]:
                s[P + "query.weight"] = (C, C)
                s[P + "query.bias"] = (C,)
            if self.cfg["key"]:
                s[P + "key.weight"] = (C, C)
                s[P + "key.bias"] = (C,)
            if self.cfg["value"]:
                s[P + "value.weight"] = (C, C)
        return s

    def random_init(self, gen):
        for k, shape in self.all_shapes().items():
            if k.endswith("bias"):
                t = 0.1 * torch.randn(shape, generator=gen)
            elif ".value." in k:
                t = 0.3 * torch.randn(shape, generator=gen)
            else:
                t = 0.15 * torch.randn(shape, generator=gen)  # softer attention over adapters
            self.params[k] = t.to(torch.float32).to(DT)

    def set_trainable(self, on):
        for k in self.params:
            self.params[k] = self.params[k].detach().requires_grad_(on)

    def forward(self, layer, loc, query, ups, residual):
        """BertFusion: ups (B,T,n,C)."""
        c, P = self.cfg, self.mod_prefix(layer, loc)
        value = ups
        if c["residual_before"]:
            value = value + residual.unsqueeze(2)
        key = value  # AdapterHub passes the same tensor as key and value (in-place add)
        q = F.linear(query, self.params[P + "query.weight"], self.params[P + "query.bias"]) if c["query"] else query
        k = F.linear(key, self.params[P + "key.weight"], self.params[P + "key.bias"]) if c["key"] else key
        v = value
        if c["value"] and c["value_before_softmax"]:
            v = F.linear(value, self.params[P + "value.weight"])
        scores = (q.unsqueeze(2) * k).sum(-1)  # (B,T,n); dropout: none in eval
        T = 50.0 if c["temperature"] else 1.0
        p = torch.softmax(scores / T, dim=-1)
        ctx = (p.unsqueeze(-1) * v).sum(2)
        if c["value"] and not c["value_before_softmax"]:
            ctx = F.linear(ctx, self.params[P + "value.weight"])
        if not c["residual_before"]:
            ctx = ctx + residual
        return ctx

    def config_json(self, model_type):
        mt = {"xlm-roberta": ("XLMRobertaAdapterModel", "tiny-xlmr"),
              "bert": ("BertAdapterModel", "tiny-bert")}[model_type]
        return {"config": self.cfg, "hidden_size": self.C, "model_class": mt[0],
                "model_name": mt[1], "model_type": model_type, "name": self.name,
                "version": VERSION}

    def save(self, d, prefix, model_type):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "adapter_fusion_config.json"), "w") as f:
            json.dump(self.config_json(model_type), f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(d, "model_adapter_fusion.safetensors"),
                          {prefix + k: v for k, v in self.params.items()}, {"format": "pt"})

    @staticmethod
    def load(d, adapters, L, C):
        with open(os.path.join(d, "adapter_fusion_config.json")) as f:
            js = json.load(f)
        cfg = js["config"]
        if isinstance(cfg, str):
            cfg = FUSION_PRESETS[cfg]
        name = js["name"]
        names = name.split(",")
        locs = {(l, loc) for l in range(L) for loc in (0, 1)
                if all(adapters[n].present(l, loc) for n in names)}
        fu = Fusion(name, names, cfg, L, C, locs)
        raw, _ = read_safetensors(os.path.join(d, "model_adapter_fusion.safetensors"))
        tens = {}
        for k, v in raw.items():
            m = re.search(r"encoder\.layer\.", k)
            tens[k[m.start():]] = v.to(DT)
        for k, shape in fu.all_shapes().items():
            fu.params[k] = tens.pop(k)
            assert tuple(fu.params[k].shape) == tuple(shape), k
        if tens:
            raise ValueError(f"{d}: unused tensors {sorted(tens)}")
        return fu


# ---- composition -----------------------------------------------------------------------------

def parse_setup(text):
    """xadapt setup text -> tree: ("adapter", name) or (Kind, [children], kwargs). A bare name or a
    comma list at the top is a Stack."""
    toks = re.findall(r"\[[^\]]*\]|[A-Za-z0-9_.:\-+]+|[(),=]", text)
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else None

    def take(expect=None):
        t = toks[pos[0]]
        if expect is not None and t != expect:
            raise ValueError(f"setup {text!r}: expected {expect!r}, got {t!r}")
        pos[0] += 1
        return t

    kinds = {k.lower(): k for k in ("Stack", "Fuse", "Split", "BatchSplit", "Parallel", "Average")}

    def item():
        t = take()
        if peek() == "(" and t.lower() in kinds:
            take("(")
            kids, kw = [], {}
            while True:
                if pos[0] + 1 < len(toks) and toks[pos[0] + 1] == "=":
                    k = take()
                    take("=")
                    v = take()
                    kw[k] = json.loads(v) if v.startswith("[") else v
                else:
                    kids.append(item())
                if peek() == ",":
                    take(",")
                    continue
                take(")")
                break
            return (kinds[t.lower()], kids, kw)
        return ("adapter", t)

    first = item()
    rest = []
    while peek() == ",":
        take(",")
        rest.append(item())
    if rest or first[0] == "adapter" or first[0] != "Stack":
        return ("Stack", [first] + rest, {})
    return first


def s_first(s):
    return s[1] if s[0] == "adapter" else s_first(s[1][0])


def s_last(s):
    return s[1] if s[0] == "adapter" else s_last(s[1][-1])


def s_flatten(s):
    if s[0] == "adapter":
        return {s[1]}
    out = set()
    for c in s[1]:
        out |= s_flatten(c)
    return out


def fusion_name(s):
    return s[2].get("name") or ",".join(s_last(c) for c in s[1])


class St:
    def __init__(self, hidden, input, residual, up, last, mask):
        self.hidden, self.input, self.residual, self.up, self.last, self.mask = (
            hidden, input, residual, up, last, mask)

    def replace(self, **kw):
        s = copy.copy(self)
        for k, v in kw.items():
            setattr(s, k, v)
        return s

    def slice(self, dim, a, b):
        def sl(t):
            if t is None:
                return None
            return t[a:b] if dim == 0 else t[:, a:b]
        return St(sl(self.hidden), sl(self.input), sl(self.residual), sl(self.up), self.last,
                  sl(self.mask))


def cat_states(states, dim):
    def cat(ts):
        if any(t is None for t in ts):
            return None
        return torch.cat(ts, dim)
    return St(cat([s.hidden for s in states]), cat([s.input for s in states]),
              cat([s.residual for s in states]), cat([s.up for s in states]), states[-1].last,
              cat([s.mask for s in states]))


class Composer:
    def __init__(self, adapters, fusions, setup, skip_layers=()):
        self.adapters, self.fusions, self.setup = adapters, fusions, setup
        self.skip = set(skip_layers)
        self.trace = []  # (layer, loc, h, x, out) of every hook call
        self.mask = None

    def here(self, name):
        return name in self.adapters and self.adapters[name].present(self.layer, self.loc)

    def pre_block(self, s, st):
        first = s_first(s) if isinstance(s, tuple) else s
        hidden, _, residual = self.adapters[first].pre_forward(st.hidden, st.input, self.LN)
        return st.replace(hidden=hidden, residual=residual)

    def single(self, name, st):
        out, _, up = self.adapters[name].forward(self.layer, self.loc, st.hidden, st.residual, st.mask)
        return st.replace(hidden=out, up=up, last=name)

    def block(self, s, st, lvl):
        return getattr(self, "c_" + s[0].lower())(s, st, lvl)

    def c_stack(self, s, st, lvl):
        for c in s[1]:
            if c[0] != "adapter":
                st = self.block(c, st, lvl + 1)
            elif self.here(c[1]):
                st = self.pre_block(c[1], st)
                st = self.single(c[1], st)
        return st

    def c_fuse(self, s, st, lvl):
        fu = self.fusions[fusion_name(s)]
        last = s_last(s)
        hidden, query, residual = self.adapters[last].pre_forward(st.hidden, st.input, self.LN, fu.cfg)
        st = st.replace(hidden=hidden, residual=residual)
        kids = []
        for c in s[1]:
            if c[0] != "adapter":
                kids.append(self.c_stack(c, st, lvl + 1))
            elif self.here(c[1]):
                kids.append(self.single(c[1], st))
        if kids:
            ups = torch.stack([k.up for k in kids], 2)  # (B,T,n,C)
            hidden = fu.forward(self.layer, self.loc, query, ups, st.residual)
            st = st.replace(hidden=hidden, last=last)
        return st

    def _children(self, s, st, lvl, states):
        out = []
        for c, cs in zip(s[1], states):
            if c[0] != "adapter":
                out.append(self.block(c, cs, lvl + 1))
            elif self.here(c[1]):
                out.append(self.single(c[1], cs))
            else:
                out.append(cs)  # missing here: passes through
        return out

    def c_split(self, s, st, lvl):
        st = self.pre_block(s, st)
        sp = s[2]["splits"]
        states = [st.slice(1, sum(sp[:i]), sum(sp[:i + 1])) for i in range(len(sp))]
        return cat_states(self._children(s, st, lvl, states), 1)

    def c_batchsplit(self, s, st, lvl):
        st = self.pre_block(s, st)
        bs = s[2]["batch_sizes"]
        states = [st.slice(0, sum(bs[:i]), sum(bs[:i + 1])) for i in range(len(bs))]
        return cat_states(self._children(s, st, lvl, states), 0)

    def c_parallel(self, s, st, lvl):
        st = self.pre_block(s, st)
        n = len(s[1])
        B = st.hidden.shape[0] // n
        states = [st.slice(0, i * B, (i + 1) * B) for i in range(n)]
        return cat_states(self._children(s, st, lvl, states), 0)

    def c_average(self, s, st, lvl):
        st = self.pre_block(s, st)
        n = len(s[1])
        w = s[2].get("weights") or [1.0] * n
        w = [float(x) / sum(w) for x in w]
        kids = self._children(s, st, lvl, [st] * n)
        hidden = sum(wi * k.hidden for wi, k in zip(w, kids))  # xadapt: no extra 1/n (Q2)
        return St(hidden, kids[0].input, kids[0].residual, kids[0].up, kids[-1].last, kids[0].mask)

    def hook(self, layer, loc, h, x, LN):
        self.layer, self.loc, self.LN = layer, loc, LN
        names = s_flatten(self.setup)
        if layer in self.skip or not any(self.here(n) for n in names):
            out = LN(h + x)
        else:
            st = St(h, x, x, None, None, self.mask)
            st = self.c_stack(self.setup, st, 0)
            out = self.adapters[st.last].post_forward(st.hidden, h, st.input, LN)
        self.trace.append((layer, loc, h, x, out))
        return out

    def replicas(self):
        s = self.setup
        if s[0] == "Stack" and len(s[1]) == 1 and s[1][0][0] == "Parallel":
            return len(s[1][0][1])
        return 1


def run_model(base, comp, ids, lens, mlm_rows=None):
    """Returns dict with emb_out, hidden list, and mlm logits for mlm_rows (rows of the replicated
    batch) when given."""
    n = comp.replicas()
    ids_r = ids.repeat(n, 1)
    lens_r = lens.repeat(n)
    B, T = ids_r.shape
    comp.mask = torch.arange(T)[None, :] < lens_r[:, None]
    emb = base.embed(ids_r, torch.zeros_like(ids_r))
    first = comp.adapters.get(s_first(comp.setup))
    inv = first if (first is not None and first.has_inv()) else None
    if inv is not None:
        emb = inv.inv_forward(emb)
    hidden = base.encode(emb, lens_r, comp.hook)
    out = {"emb_out": emb, "hidden": hidden, "lens_r": lens_r}
    if mlm_rows is not None:
        rows = hidden[-1].reshape(B * T, -1)[mlm_rows]
        out["mlm_logits"] = base.mlm_logits(rows, inv.inv_inverse if inv is not None else None)
    return out


# ---- cases -----------------------------------------------------------------------------------

def make_ids(base, gen, B, T, lens):
    if base.xlmr:
        bos, eos, pad, first = 0, 2, 1, 4
    else:
        bos, eos, pad, first = 2, 3, 0, 5
    ids = torch.full((B, T), pad, dtype=torch.int64)
    for b, n in enumerate(lens):
        ids[b, 0] = bos
        ids[b, 1:n - 1] = torch.randint(first, base.V, (n - 2,), generator=gen)
        ids[b, n - 1] = eos
    return ids, first


def seq(rf=4, **kw):
    return bn_config("seq_bn", reduction_factor=rf, **kw)


CASES = [
    dict(case="seq_bn", base="xlmr", prefix="roberta.", adapters=[("seq_bn", seq(4))],
         setup="seq_bn"),
    dict(case="seq_bn_inv_mlm", base="xlmr", prefix="",
         adapters=[("lang", bn_config("seq_bn_inv", reduction_factor=2))], setup="lang",
         loss="mlm"),
    dict(case="double_seq_bn_bert", base="bert", prefix="",
         adapters=[("houlsby", bn_config("double_seq_bn", reduction_factor=4))], setup="houlsby"),
    dict(case="par_bn", base="xlmr", prefix="roberta.", adapters=[("par", bn_config("par_bn"))],
         setup="par"),
    dict(case="scaled_par_bn", base="xlmr", prefix="",
         adapters=[("spar", bn_config("par_bn", scaling="learned"))], setup="spar"),
    dict(case="compacter", base="bert", prefix="bert.",
         adapters=[("comp", bn_config("compacter", reduction_factor=2))], setup="comp"),
    dict(case="compacterpp", base="xlmr", prefix="roberta.",
         adapters=[("comppp", bn_config("compacter++", reduction_factor=2))], setup="comppp"),
    dict(case="flags_a", base="xlmr", prefix="roberta.",
         adapters=[("fa", bn_config(mh_adapter=True, output_adapter=True, ln_before=True,
                                    ln_after=True, use_gating=True, scaling="channel",
                                    original_ln_before=True, residual_before_ln="post_add",
                                    adapter_residual_before_ln=True, non_linearity="gelu_new",
                                    reduction_factor={"0": 2, "default": 4},
                                    init_weights="houlsby"))],
         setup="fa"),
    dict(case="flags_b", base="xlmr", prefix="",
         adapters=[("fb", bn_config(mh_adapter=False, output_adapter=True, original_ln_before=True,
                                    residual_before_ln=False, original_ln_after=False,
                                    scaling="learned", non_linearity="leakyrelu",
                                    reduction_factor=4, leave_out=[0]))],
         setup="fb"),
    dict(case="flags_c", base="bert", prefix="",
         adapters=[("fc", bn_config(mh_adapter=True, output_adapter=True, original_ln_before=False,
                                    ln_after=True, non_linearity="tanh",
                                    adapter_residual_before_ln=False, use_gating=True,
                                    reduction_factor=4))],
         setup="fc"),
    dict(case="legacy_gelu", base="xlmr", prefix="roberta.",
         adapters=[("old", seq(4, non_linearity="gelu"))], setup="old", no_version=["old"]),
    dict(case="stack", base="xlmr", prefix="roberta.",
         adapters=[("lang", bn_config("seq_bn_inv", reduction_factor=2)), ("task", seq(4))],
         setup="Stack(lang, task)", trainable=["task"]),
    dict(case="stack_madx2", base="xlmr", prefix="",
         adapters=[("lang", bn_config("seq_bn_inv", reduction_factor=2, leave_out=[1])),
                   ("task", seq(4))],
         setup="Stack(lang, task)", trainable=["task"]),
    dict(case="fuse_dynamic", base="xlmr", prefix="roberta.",
         adapters=[("a", seq(4)), ("b", seq(2)), ("c", seq(4, non_linearity="gelu"))],
         fusions=[("a,b,c", "dynamic")], setup="Fuse(a, b, c)", trainable=[],
         trainable_fusions=["a,b,c"]),
    dict(case="fuse_static", base="bert", prefix="bert.",
         adapters=[("a", seq(4)), ("b", seq(2)), ("c", seq(4, non_linearity="tanh"))],
         fusions=[("a,b,c", "static")], setup="Fuse(a, b, c)"),
    dict(case="stack_fuse", base="xlmr", prefix="",
         adapters=[("lang", bn_config("seq_bn_inv", reduction_factor=2)), ("b", seq(4)),
                   ("c", seq(2))],
         fusions=[("b,c", "dynamic")], setup="Stack(lang, Fuse(b, c))"),
    dict(case="parallel", base="xlmr", prefix="roberta.",
         adapters=[("a", seq(4)), ("b", seq(2))], setup="Parallel(a, b)"),
    dict(case="batchsplit", base="xlmr", prefix="",
         adapters=[("a", seq(4)), ("b", seq(2))], setup="BatchSplit(a, b, batch_sizes=[1, 2])"),
    dict(case="split", base="bert", prefix="bert.",
         adapters=[("a", seq(4)), ("b", seq(2))], setup="Split(a, b, splits=[3, 5])"),
    dict(case="average", base="xlmr", prefix="roberta.",
         adapters=[("a", seq(4)), ("b", seq(2))], setup="Average(a, b, weights=[0.25, 0.75])"),
    dict(case="skip_layers", base="xlmr", prefix="roberta.", adapters=[("seq_bn", seq(4))],
         setup="seq_bn", skip_layers=[0]),
    dict(case="glow_mlm", base="bert", prefix="bert.",
         adapters=[("glow", seq(2, inv_adapter="glow", inv_adapter_reduction_factor=2))],
         setup="glow", loss="mlm"),
    dict(case="phm_nonfactorised", base="xlmr", prefix="",
         adapters=[("phm", bn_config("compacter", reduction_factor=2, factorized_phm_W=False))],
         setup="phm"),
    dict(case="leave_out_at_load", base="xlmr", prefix="roberta.", adapters=[("seq_bn", seq(4))],
         setup="seq_bn", leave_out_at_load=[1]),
]

MLM_POSITIONS = [(0, 1), (0, 3), (0, 6), (1, 1), (1, 3), (2, 1)]


def build_case(spec, seed):
    base = Base(spec["base"])
    gen = torch.Generator().manual_seed(seed)
    B, T, lens_l = 3, 8, [8, 5, 3]
    ids, first_tok = make_ids(base, gen, B, T, lens_l)
    lens = torch.tensor(lens_l, dtype=torch.int64)
    adapters = {}
    for name, cfg in spec["adapters"]:
        a = Adapter(name, cfg, base.L, base.C)
        a.random_init(gen)
        adapters[name] = a
    fusions = {}
    for fname, preset in spec.get("fusions", []):
        names = fname.split(",")
        locs = {(l, loc) for l in range(base.L) for loc in (0, 1)
                if all(adapters[n].present(l, loc) for n in names)}
        fu = Fusion(fname, names, copy.deepcopy(FUSION_PRESETS[preset]), base.L, base.C, locs)
        fu.random_init(gen)
        fusions[fname] = fu
    return base, gen, ids, lens, first_tok, adapters, fusions


def generate(spec, seed):
    case = spec["case"]
    base, gen, ids, lens, first_tok, adapters, fusions = build_case(spec, seed)
    B, T = ids.shape
    trainable = spec.get("trainable", [n for n, _ in spec["adapters"]])
    tfus = spec.get("trainable_fusions", list(fusions))
    lol = spec.get("leave_out_at_load", [])
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    # files first (full weights), then what the reader gives back is what runs
    for name, a in adapters.items():
        a.save(os.path.join(d, name), spec["prefix"], base.cfg["model_type"],
               with_version=name not in spec.get("no_version", []))
    for fname, fu in fusions.items():
        fu.save(os.path.join(d, "fusion_" + fname.replace(",", "_")), spec["prefix"],
                base.cfg["model_type"])
    loaded = {n: Adapter.load(os.path.join(d, n), base.L, base.C, lol) for n in adapters}
    for n, a in loaded.items():
        if n not in spec.get("no_version", []):
            assert a.cfg == adapters[n].cfg or lol, n
        assert all(torch.equal(a.params[k], adapters[n].params[k]) for k in a.params)
        a.set_trainable(n in trainable)
    lfus = {f: Fusion.load(os.path.join(d, "fusion_" + f.replace(",", "_")), loaded, base.L,
                           base.C) for f in fusions}
    for f, fu in lfus.items():
        fu.set_trainable(f in tfus)
    if spec.get("no_version"):
        for n in spec["no_version"]:
            assert loaded[n].cfg["non_linearity"] == "gelu_new", "legacy gelu rename"

    setup = parse_setup(spec["setup"])
    comp = Composer(loaded, lfus, setup, spec.get("skip_layers", []))
    n_rep = comp.replicas()
    Bp = n_rep * B
    loss_kind = spec.get("loss", "proj")
    gold = {"input_ids": ids, "lens": lens}
    proj = torch.randn(Bp, T, base.C, generator=gen).to(torch.float32).to(DT)
    mlm_rows = mlm_targets = None
    if loss_kind == "mlm":
        assert n_rep == 1
        mlm_rows = torch.tensor([b * T + t for b, t in MLM_POSITIONS], dtype=torch.int64)
        mlm_targets = torch.randint(first_tok, base.V, (len(MLM_POSITIONS),), generator=gen)
        for b, t in MLM_POSITIONS:
            assert t < lens[b]
    res = run_model(base, comp, ids, lens, mlm_rows)
    hidden = res["hidden"]
    valid = comp.mask.to(DT).unsqueeze(-1)
    if loss_kind == "proj":
        loss = (hidden[-1] * proj * valid).sum()
    else:
        loss = F.cross_entropy(res["mlm_logits"], mlm_targets)
    loss.backward()

    gold["proj"] = proj
    gold["emb_out"] = res["emb_out"]
    for i, h in enumerate(hidden):
        gold[f"hidden.{i}"] = h
    gold["hidden"] = hidden[-1]
    gold["loss"] = loss.detach().reshape(1)
    if loss_kind == "mlm":
        gold["mlm_rows"] = mlm_rows
        gold["mlm_targets"] = mlm_targets
        gold["mlm_logits"] = res["mlm_logits"]
    grads = {}
    skipped = set(spec.get("skip_layers", []))
    for k, v in [kv for n in trainable for kv in loaded[n].params.items()] + \
            [kv for f in tfus for kv in lfus[f].params.items()]:
        m = re.match(r"encoder\.layer\.(\d+)\.", k)
        if m and int(m.group(1)) in skipped:
            assert v.grad is None, (case, k)  # AdapterDrop: unused this step, gradient 0
            grads["grad." + k] = torch.zeros_like(v)
            continue
        assert v.grad is not None, (case, k)
        assert torch.isfinite(v.grad).all() and v.grad.abs().max() > 0, (case, k)
        grads["grad." + k] = v.grad
    gold.update(grads)

    meta = {
        "base": spec["base"], "setup": spec["setup"],
        "adapters": ",".join(n for n, _ in spec["adapters"]),
        "fusions": ";".join(fusions), "trainable": ",".join(trainable),
        "trainable_fusions": ";".join(tfus), "loss": loss_kind,
        "skip_layers": ",".join(str(x) for x in spec.get("skip_layers", [])),
        "prefix": spec["prefix"], "replicas": str(n_rep),
        "leave_out_at_load": ",".join(str(x) for x in lol),
        "token_type_ids": "zeros", "dtype": "reference computed in float64, written as float32",
        "generator": "tests/golden/gen_adapter_golden.py", "seed": str(seed),
    }
    write_safetensors(os.path.join(d, "golden.safetensors"), gold, meta)
    sanity(spec, base, comp, res, ids, lens, loaded, lfus, loss, proj, mlm_rows, mlm_targets)
    print(f"{case:20s} loss {loss.item():+.6f}  replicas {n_rep}  grads {len(grads)}")


# ---- sanity checks ---------------------------------------------------------------------------

def A_of(a, layer, loc, z):
    """The adapter transform without residual: scaling * Up(act(Down(z)))."""
    _, _, up = a.forward(layer, loc, z, torch.zeros_like(z), torch.ones(z.shape[:2], dtype=torch.bool))
    return up


def close(x, y, tol=1e-10):
    return (x - y).abs().max().item() < tol


def rerun(base, adapters, fusions, setup, ids, lens, skip=()):
    comp = Composer(adapters, fusions, parse_setup(setup), skip)
    with torch.no_grad():
        return run_model(base, comp, ids, lens)


def sanity(spec, base, comp, res, ids, lens, ad, fu, loss, proj, mlm_rows, mlm_targets):
    case = spec["case"]
    tr = comp.trace
    with torch.no_grad():
        if case in ("seq_bn", "legacy_gelu", "compacterpp"):
            a = next(iter(ad.values()))
            for (l, loc, h, x, out) in tr:
                if loc == 1:
                    LN = base.layer_ln(l, "output")
                    assert close(out, LN(h + x + A_of(a, l, loc, LN(h + x)))), case
                else:
                    assert close(out, base.layer_ln(l, "attention.output")(h + x)), case
        if case == "double_seq_bn_bert":
            a = ad["houlsby"]
            for (l, loc, h, x, out) in tr:
                LN = base.layer_ln(l, LOCS[loc])
                assert close(out, LN(h + x + A_of(a, l, loc, h))), case
        if case in ("par_bn", "scaled_par_bn"):
            a = next(iter(ad.values()))
            for (l, loc, h, x, out) in tr:
                if loc == 1:
                    LN = base.layer_ln(l, "output")
                    assert close(out, LN(h + x + A_of(a, l, loc, x))), case
        if case == "flags_b":
            a = ad["fb"]
            for (l, loc, h, x, out) in tr:
                if loc == 1 and l == 1:
                    z = base.layer_ln(l, "output")(h + x)
                    assert close(out, A_of(a, l, loc, z) + z), case  # original_ln_after False
                elif loc == 1:
                    assert close(out, base.layer_ln(l, "output")(h + x)), case  # left out
        if case in ("stack", "stack_madx2"):
            La, Ta = ad["lang"], ad["task"]
            for (l, loc, h, x, out) in tr:
                if loc != 1:
                    continue
                LN = base.layer_ln(l, "output")
                if La.present(l, 1):
                    zl = LN(h + x)
                    oL = h + A_of(La, l, 1, zl)
                    zt = LN(oL + x)
                    want = LN(h + x + A_of(La, l, 1, zl) + A_of(Ta, l, 1, zt))
                else:
                    want = LN(h + x + A_of(Ta, l, 1, LN(h + x)))
                assert close(out, want), case
        if case == "average":
            for (l, loc, h, x, out) in tr:
                if loc == 1:
                    LN = base.layer_ln(l, "output")
                    z = LN(h + x)
                    want = LN(h + x + 0.25 * A_of(ad["a"], l, 1, z) + 0.75 * A_of(ad["b"], l, 1, z))
                    assert close(out, want), case
        if case == "skip_layers":
            for (l, loc, h, x, out) in tr:
                if l == 0:
                    assert close(out, base.layer_ln(l, LOCS[loc])(h + x)), case
        if case == "leave_out_at_load":
            for (l, loc, h, x, out) in tr:
                if l == 1:
                    assert close(out, base.layer_ln(l, LOCS[loc])(h + x)), case
        if case == "parallel":
            B = ids.shape[0]
            for i, n in enumerate(("a", "b")):
                r = rerun(base, ad, fu, n, ids, lens)
                assert close(res["hidden"][-1][i * B:(i + 1) * B], r["hidden"][-1]), case
        if case == "batchsplit":
            ra = rerun(base, ad, fu, "a", ids, lens)
            rb = rerun(base, ad, fu, "b", ids, lens)
            assert close(res["hidden"][-1][:1], ra["hidden"][-1][:1]), case
            assert close(res["hidden"][-1][1:], rb["hidden"][-1][1:]), case
        if case in ("fuse_dynamic", "fuse_static"):
            # fusion with a zero query/key is a uniform average of the values plus the residual
            f = fu["a,b,c"]
            for (l, loc, h, x, out) in tr:
                if loc != 1:
                    continue
                LN = base.layer_ln(l, "output")
                z = LN(h + x)
                ups = torch.stack([A_of(ad[n], l, 1, z) for n in "abc"], 2)
                P = f.mod_prefix(l, 1)
                q = F.linear(z, f.params[P + "query.weight"], f.params[P + "query.bias"])
                k = F.linear(ups, f.params[P + "key.weight"], f.params[P + "key.bias"])
                p = torch.softmax(torch.einsum("btc,btnc->btn", q, k), -1)
                v = ups if not f.cfg["value"] else ups @ f.params[P + "value.weight"].T
                want = LN(torch.einsum("btn,btnc->btc", p, v) + h + x)
                assert close(out, want), case
        if case == "split":
            ra = rerun(base, ad, fu, "a", ids, lens)
            # layer 0 depends only on token-wise adapters after attention: positions < 3 match "a"
            l0 = res["hidden"][0]
            assert close(l0[:, :3], ra["hidden"][0][:, :3]), case
        # invertible round trips
        for a in ad.values():
            if a.has_inv():
                e = res["emb_out"]
                assert close(a.inv_forward(a.inv_inverse(e)), e, 1e-9), case
                assert close(a.inv_inverse(a.inv_forward(e)), e, 1e-9), case
        # PHM: H against the index formula of adapters.h
        for a in ad.values():
            if a.cfg["phm_layer"]:
                rule = a.params[f"shared_parameters.{a.name}.phm_rule"]
                n = rule.shape[0]
                W = torch.randn(n, 3, 2, dtype=DT)
                H = a.phm_H(W, rule)
                for i1 in range(n * 3):
                    for j1 in range(n * 2):
                        want = sum(rule[i][i1 // 3][j1 // 2] * W[i][i1 % 3][j1 % 2] for i in range(n))
                        assert abs(H[i1, j1] - want) < 1e-12
    # a finite-difference spot check of one gradient per case
    params = [(k, v) for a in list(ad.values()) + list(fu.values()) for k, v in a.params.items()
              if v.requires_grad]
    if params:
        k, v = params[len(params) // 2]
        idx = tuple(0 for _ in v.shape)
        g = v.grad[idx].item()
        epsd = 1e-6
        vals = []
        keep = v.detach().clone()
        for sgn in (1, -1):
            with torch.no_grad():
                v.copy_(keep)
                v[idx] += sgn * epsd
                comp2 = Composer(ad, fu, comp.setup, comp.skip)
                r = run_model(base, comp2, ids, lens, mlm_rows)
                if mlm_rows is None:
                    vals.append((r["hidden"][-1] * proj * comp2.mask.to(DT).unsqueeze(-1)).sum().item())
                else:
                    vals.append(F.cross_entropy(r["mlm_logits"], mlm_targets).item())
        with torch.no_grad():
            v.copy_(keep)
        fd = (vals[0] - vals[1]) / (2 * epsd)
        assert abs(fd - g) < 1e-5 * max(1.0, abs(g)), (case, k, fd, g)


def check_base():
    """The float64 reference encoder without adapters reproduces the encoder fixtures."""
    for v in ("xlmr", "bert"):
        base = Base(v)
        g, _ = read_safetensors(os.path.join(ENC_DIR, v, "golden.safetensors"))
        ids, mask = g["input_ids"], g["attention_mask"]
        lens = mask.sum(1)
        emb = base.embed(ids, g["token_type_ids"])
        hs = base.encode(emb, lens, lambda l, loc, h, x, LN: LN(h + x))
        m = mask.to(DT).unsqueeze(-1)
        for i, h in enumerate([emb] + hs):
            diff = ((h - g[f"hidden.{i}"].to(DT)) * m).abs().max().item()
            assert diff < 1e-5, (v, i, diff)


def main():
    torch.manual_seed(0)
    check_base()
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]
    for i, spec in enumerate(CASES):
        if only and spec["case"] not in only:
            continue
        generate(spec, 1000 + 17 * i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
