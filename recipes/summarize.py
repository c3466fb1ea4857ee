#!/usr/bin/env python3
"""Paired differences between the setups of an xadapt transfer evaluation.

Reads OUT/eval/<task>/raw.jsonl (one line per language, setup and seed, written by the eval
phase) and, when present, OUT/eval/mlm/raw.jsonl (the held-out MLM table), and prints Markdown:

  - per target language, the difference of two setups on the same seed (e.g. MAD-X minus
    Stack(lang:src, task)), averaged over the seeds both have, in points (x 100);
  - a mean row over the targets with the standard deviation over seeds of each seed's mean
    difference, and how many targets are above zero;
  - with the MLM table: each language adapter's held-out MLM gain (own adapter minus base alone,
    masked-piece accuracy points) beside the MAD-X gain, and their Pearson correlation.

With unseen targets (languages kept out of the base: --unseen km,ko,... or, by default, the
`unseen:` list of the resolved recipe OUT/resolved-<task>.yaml), the mean rows are also given for
the seen and the unseen targets separately.

Standard library only. usage: summarize.py EVAL_TASK_DIR [--metric accuracy|macro_f1|f1]
                                           [--unseen LANGS]
"""
import argparse
import glob
import json
import math
import os
import sys
from collections import defaultdict

PAIRS = [("madx", "src_stack", "MAD-X - Stack(src)"),
         ("madx", "task_only", "MAD-X - task alone"),
         ("madx2", "madx", "MAD-X 2.0 - MAD-X"),
         ("src_stack", "task_only", "Stack(src) - task alone"),
         ("fusion", "src_stack", "Fuse - Stack(src)"),
         ("in_language", "madx", "in-language - MAD-X")]


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"summarize: {path}:{n}: not a JSON line ({e.msg})")
    return rows


def std(xs):
    if len(xs) < 2:
        return float("nan")
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def fmt(x, spread=None):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    s = f"{x:+.1f}"
    if spread is not None and not math.isnan(spread):
        s += f" ± {spread:.1f}"
    return s


def pearson(xs, ys):
    n = len(xs)
    if n < 3:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def resolved_unseen(eval_dir):
    """The unseen list of OUT/resolved-<task>.yaml (eval_dir is OUT/eval/<task>), else []."""
    out = os.path.dirname(os.path.dirname(os.path.normpath(eval_dir)))
    task = os.path.basename(os.path.normpath(eval_dir))
    for path in glob.glob(os.path.join(out, f"resolved-{task}.yaml")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                s = line.strip()
                if s.startswith("unseen:"):
                    items = s[len("unseen:"):].strip().strip("[]")
                    return [x.strip().strip('"') for x in items.split(",") if x.strip()]
    return []


def group_rows(pairs, val, seeds, group, name):
    """The mean row (± std over seeds of each seed's mean) and the above-zero row of a group."""
    cells, above = [], []
    for p in pairs:
        means = []
        for s in seeds:
            d = [val[(l, p[0], s)] - val[(l, p[1], s)] for l in group
                 if (l, p[0], s) in val and (l, p[1], s) in val]
            if len(d) == len(group):
                means.append(sum(d) / len(d))
        m = sum(means) / len(means) if means else None
        cells.append(fmt(m, std(means) if len(means) == len(seeds) else None))
        tgt = []
        for l in group:
            d = [val[(l, p[0], s)] - val[(l, p[1], s)] for s in seeds
                 if (l, p[0], s) in val and (l, p[1], s) in val]
            if d:
                tgt.append(sum(d) / len(d))
        above.append(f"{sum(1 for x in tgt if x > 0)}/{len(tgt)}")
    print(f"| mean ({name}; ± std over seeds) | " + " | ".join(cells) + " |")
    print(f"| {name} above zero | " + " | ".join(above) + " |")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", help="OUT/eval/<task> (holds raw.jsonl)")
    ap.add_argument("--metric", help="accuracy, macro_f1 or f1 (default: f1 for tagging "
                    "results, else accuracy)")
    ap.add_argument("--unseen", help="comma-separated unseen targets (default: the resolved "
                    "recipe's unseen list)")
    args = ap.parse_args(argv)
    raw = os.path.join(args.eval_dir, "raw.jsonl")
    if not os.path.isfile(raw):
        sys.exit(f"summarize: {raw}: no such file (run the eval phase first)")
    rows = load(raw)
    if not rows:
        sys.exit(f"summarize: {raw}: empty")
    metric = args.metric
    if metric is None:
        metric = "f1" if any(r.get("f1", 0) > 0 for r in rows) else "accuracy"
    val = {}
    langs, setups = [], set()
    for r in rows:
        if metric not in r:
            sys.exit(f"summarize: {raw}: no '{metric}' field")
        val[(r["language"], r["setup"], r["seed"])] = 100.0 * r[metric]
        if r["language"] not in langs:
            langs.append(r["language"])
        setups.add(r["setup"])
    source, targets = langs[0], langs[1:]
    seeds = sorted({k[2] for k in val})
    pairs = [p for p in PAIRS if p[0] in setups and p[1] in setups]
    print(f"Paired differences in {metric} points (same seed; mean over seeds), "
          f"{os.path.normpath(args.eval_dir)}, seeds {seeds}\n")
    print("| language | " + " | ".join(p[2] for p in pairs) + " |")
    print("|:---|" + "---:|" * len(pairs))
    per_seed = {p: defaultdict(list) for p in pairs}  # pair -> seed -> per-target deltas
    madx_gain = {}
    for l in targets:
        cells = []
        for p in pairs:
            d = [val[(l, p[0], s)] - val[(l, p[1], s)] for s in seeds
                 if (l, p[0], s) in val and (l, p[1], s) in val]
            for s in seeds:
                if (l, p[0], s) in val and (l, p[1], s) in val:
                    per_seed[p][s].append(val[(l, p[0], s)] - val[(l, p[1], s)])
            m = sum(d) / len(d) if d else None
            if p[0] == "madx" and p[1] == "src_stack" and m is not None:
                madx_gain[l] = m
            cells.append(fmt(m))
        print(f"| {l} | " + " | ".join(cells) + " |")
    cells, above = [], []
    for p in pairs:
        full = [s for s in seeds if len(per_seed[p][s]) == len(targets)]
        means = [sum(per_seed[p][s]) / len(targets) for s in full]
        m = sum(means) / len(means) if means else None
        cells.append(fmt(m, std(means) if len(full) == len(seeds) else None))
        tgt_means = []
        for l in targets:
            d = [val[(l, p[0], s)] - val[(l, p[1], s)] for s in seeds
                 if (l, p[0], s) in val and (l, p[1], s) in val]
            if d:
                tgt_means.append(sum(d) / len(d))
        above.append(f"{sum(1 for x in tgt_means if x > 0)}/{len(tgt_means)}")
    print("| mean (targets; ± std over seeds) | " + " | ".join(cells) + " |")
    print("| targets above zero | " + " | ".join(above) + " |")
    unseen = args.unseen.split(",") if args.unseen else resolved_unseen(args.eval_dir)
    unseen = [l for l in targets if l in unseen]
    if unseen and len(unseen) < len(targets):
        group_rows(pairs, val, seeds, [l for l in targets if l not in unseen], "seen targets")
        group_rows(pairs, val, seeds, unseen, "unseen targets")
    mlm = os.path.join(os.path.dirname(os.path.normpath(args.eval_dir)), "mlm", "raw.jsonl")
    if os.path.isfile(mlm) and madx_gain:
        acc = {(r["language"], r["setup"]): 100.0 * r["accuracy"] for r in load(mlm)}
        print(f"\nHeld-out MLM gain of each language adapter (masked-piece accuracy, own adapter "
              f"minus base alone) beside its MAD-X gain over Stack(src) ({metric}):\n")
        print("| language | MLM base | MLM + own adapter | MLM gain | MAD-X - Stack(src) |")
        print("|:---|---:|---:|---:|---:|")
        xs, ys = [], []
        for l in targets:
            if (l, "base") in acc and (l, "own") in acc and l in madx_gain:
                g = acc[(l, "own")] - acc[(l, "base")]
                xs.append(g)
                ys.append(madx_gain[l])
                print(f"| {l} | {acc[(l, 'base')]:.1f} | {acc[(l, 'own')]:.1f} | {g:+.1f} | "
                      f"{madx_gain[l]:+.1f} |")
        print(f"\nPearson r (MLM gain, MAD-X gain) over {len(xs)} targets: {pearson(xs, ys):+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
