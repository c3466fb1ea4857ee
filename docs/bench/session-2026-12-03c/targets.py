#!/usr/bin/env python3
"""Issue 12's targets against one run of tests/bench/issue12.sh: for every row, the ratio each
target asks for, whether it is met, and for a missed one the GFLOP/s xadapt would need and what
fraction of its path's register-only peak (measured in the same run) that is.
  targets.py issue12-small.jsonl issue12-base.jsonl"""
import json, sys

peaks, best = {}, {}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        if "peak" in r and "gflops" in r:
            k = (r["peak"], r["threads"])
            peaks[k] = max(peaks.get(k, 0.0), r["gflops"])
        elif "tokens_per_s" in r:
            k = (r["impl"], r["model"], r["mode"], r["batch"], r.get("precision", "fp32"))
            if k not in best or r["tokens_per_s"] > best[k]["tokens_per_s"]:
                best[k] = r
training = {"mlm-full", "mlm-frozen", "cls-frozen", "lang-adapter", "task-adapter"}
rows = sorted({k[1:4] for k in best}, key=lambda k: (["tiny", "small", "base"].index(k[0]), k[2], k[1]))
# (name, xadapt precision, PyTorch precision, target on training rows, target on inference rows)
targets = [("fp32 vs PyTorch fp32", "fp32", "fp32", 2.0, None),
           ("bf16 vs PyTorch bf16", "bf16", "bf16", 1.5, 1.5)]
for name, xp, pp, t_train, t_infer in targets:
    met = total = 0
    print(f"\n{name}\n| model | mode | B | ratio | target | xadapt GFLOP/s | needed GFLOP/s | needed of peak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for model, mode, b in rows:
        t = t_train if mode in training else t_infer
        x, p = best.get(("xadapt", model, mode, b, xp)), best.get(("torch", model, mode, b, pp))
        if t is None or not x or not p: continue
        total += 1
        ratio = x["tokens_per_s"] / p["tokens_per_s"]
        if ratio >= t:
            met += 1
            continue
        need = t * p["gflops"]
        pk = peaks.get((x["path"], x["threads"]))
        print(f"| {model} | {mode} | {b} | {ratio:.2f}x | {t}x | {x['gflops']:.0f} | {need:.0f} | "
              f"{100 * need / pk:.0f}% |" if pk else "")
    print(f"met on {met} of {total} rows")
