#!/usr/bin/env python3
"""Summaries of run.sh's output: stack_overhead.txt (median of the runs' median overheads per model,
B and binary) and bf16.jsonl (best tok/s of each binary per row, new / old)."""
import collections, json, re, statistics, sys
d = sys.argv[1] if len(sys.argv) > 1 else "."
ov = collections.defaultdict(list)
b = None
for line in open(f"{d}/stack_overhead.txt"):
    m = re.match(r"# run \d+ (old|new) ", line)
    if m:
        b = m.group(1)
        continue
    m = re.match(r"(\w+)\t(\d+)\t\d+\t.*overhead min ([-+\d.]+)% median ([-+\d.]+)%", line)
    if m:
        ov[(m.group(1), int(m.group(2)), b)].append(float(m.group(4)))
print("| model | B | old: overhead per run (median step) | old median | new: overhead per run | new median |")
print("|---|---:|---|---:|---|---:|")
for (mdl, B) in sorted({(k[0], k[1]) for k in ov}, key=lambda k: (["tiny", "small", "base"].index(k[0]), k[1])):
    o, n = ov[(mdl, B, "old")], ov[(mdl, B, "new")]
    f = lambda v: ", ".join(f"{x:+.1f}%" for x in v)
    print(f"| {mdl} | {B} | {f(o)} | {statistics.median(o):+.1f}% | {f(n)} | **{statistics.median(n):+.1f}%** |")
try:
    rows = [json.loads(l) for l in open(f"{d}/bf16.jsonl") if l.startswith("{")]
except FileNotFoundError:
    rows = []
best = collections.defaultdict(float)
peak = {}
for r in rows:
    k = (r["model"], r["mode"], r["batch"], r["bin"])
    best[k] = max(best[k], r["tokens_per_s"])
    peak[k] = r.get("peak_mb", r.get("peak_rss_mb"))
if rows:
    print()
    print("| model | mode | B | old best tok/s | new best tok/s | new / old | peak MB old | peak MB new |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    seen = []
    for r in rows:
        k = (r["model"], r["mode"], r["batch"])
        if k in seen: continue
        seen.append(k)
        o, n = best[k + ("old",)], best[k + ("new",)]
        print(f"| {k[0]} | {k[1]} | {k[2]} | {o:.0f} | {n:.0f} | **{n / o:.2f}x** | {peak.get(k + ('old',))} | {peak.get(k + ('new',))} |" if o and n else f"| {k} | incomplete |")
