#!/usr/bin/python3
"""Reverse check: an adapter directory WRITTEN BY XADAPT, read back by the independent PyTorch
reference of gen_adapter_golden.py, must reproduce the hidden state xadapt computed.

    /usr/bin/python3 tests/golden/check_xadapt_adapter.py --base xlmr --adapter DIR \
        --setup NAME --golden FILE [--adapter DIR2 ...] [--fusion FDIR ...] \
        [--skip-layers 0,1] [--leave-out 1] [--tol 1e-4]

- --base: the encoder under tests/data/encoder/<base>/ (xlmr or bert).
- --adapter: an AdapterHub adapter directory (adapter_config.json + adapter.safetensors); tensor
  names with or without the model prefix ("roberta." / "bert." / ""); repeatable.
- --fusion: an AdapterHub fusion directory (adapter_fusion_config.json +
  model_adapter_fusion.safetensors); repeatable.
- --setup: xadapt setup text ("name", "Stack(a, b)", "Fuse(a, b)", "Parallel(a, b)", ...);
  default: the single adapter's name.
- --golden: a safetensors file xadapt wrote with input_ids (B,T) I64/I32, lens (B) and hidden
  (B',T,C) (B' = replicas * B for Parallel); token_type_ids (B,T) is used when present (else 0).
  When the file also holds hidden.<i> or emb_out they are compared too.
Prints the max abs difference over the valid rows (t < lens[b]); exit 1 if it exceeds --tol.
"""
import argparse
import json
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_adapter_golden as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, choices=["xlmr", "bert"])
    ap.add_argument("--adapter", action="append", required=True)
    ap.add_argument("--fusion", action="append", default=[])
    ap.add_argument("--setup")
    ap.add_argument("--golden", required=True)
    ap.add_argument("--skip-layers", default="")
    ap.add_argument("--leave-out", default="", help="load-time leave_out for every adapter")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    base = ref.Base(args.base)
    lo = [int(x) for x in args.leave_out.split(",") if x.strip()]
    adapters = {}
    for d in args.adapter:
        with open(os.path.join(d, "adapter_config.json")) as f:
            mt = json.load(f).get("model_type")
        if mt and mt != base.cfg["model_type"]:
            print(f"warning: {d} was saved for model_type {mt!r}, base is {base.cfg['model_type']!r}")
        a = ref.Adapter.load(d, base.L, base.C, lo)
        adapters[a.name] = a
    fusions = {}
    for d in args.fusion:
        f = ref.Fusion.load(d, adapters, base.L, base.C)
        fusions[f.name] = f
    setup_text = args.setup
    if not setup_text:
        if len(adapters) != 1:
            sys.exit("--setup is required with several adapters")
        setup_text = next(iter(adapters))
    setup = ref.parse_setup(setup_text)
    for n in ref.s_flatten(setup):
        if n not in adapters:
            sys.exit(f"setup names adapter {n!r}, not loaded")

    g, _ = ref.read_safetensors(args.golden)
    ids = g["input_ids"].long()
    lens = g["lens"].long() if "lens" in g else (ids != base.pad).long().sum(1)
    skip = [int(x) for x in args.skip_layers.split(",") if x.strip()]
    comp = ref.Composer(adapters, fusions, setup, skip)
    n = comp.replicas()
    tt = g["token_type_ids"].long().repeat(n, 1) if "token_type_ids" in g else None
    if tt is not None:
        orig = base.embed
        base.embed = lambda i, _t: orig(i, tt)
    with torch.no_grad():
        res = ref.run_model(base, comp, ids, lens)
    valid = comp.mask.unsqueeze(-1).to(ref.DT)
    want = {"hidden": res["hidden"][-1], "emb_out": res["emb_out"]}
    for i, h in enumerate(res["hidden"]):
        want[f"hidden.{i}"] = h
    worst = 0.0
    for k, w in want.items():
        if k not in g:
            continue
        got = g[k].to(ref.DT)
        if tuple(got.shape) != tuple(w.shape):
            print(f"{k}: shape {tuple(got.shape)}, reference {tuple(w.shape)}")
            return 1
        diff = ((got - w) * valid).abs().max().item()
        print(f"{k}: max abs diff {diff:.3e}")
        worst = max(worst, diff)
    if "hidden" not in g:
        print("golden has no 'hidden'")
        return 1
    print(f"setup {setup_text!r}, replicas {n}: max abs diff {worst:.3e} (tol {args.tol:g})")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
