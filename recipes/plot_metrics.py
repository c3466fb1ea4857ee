#!/usr/bin/python3
"""Loss curves as a standalone SVG from xadapt's metrics.jsonl files (standard library only).

    python3 recipes/plot_metrics.py OUT/base/metrics.jsonl [MORE.jsonl ...] -o curve.svg \
        [--keys loss,align_loss] [--labels NAME,...] [--title TEXT] [--smooth 0.9]

Every file gives one curve per key (the windowed means xadapt writes: one line per logged window,
{"type": "train", "step", "loss", "align_loss", ...}); the raw curve is drawn thin and an exponential
moving average (--smooth, 0 = off) thick. The y axis is linear from 0 to the largest value plotted;
the x axis is the optimizer step. Lines without a key are skipped (other phases' fields), and so are
"type": "eval" rows for the training keys (loss, lr, ...). One run with its evaluations and learning
rate: `xadapt plot RUN_DIR`.
"""
import argparse
import html
import json
import sys

TRAIN_KEYS = ("loss", "lr", "grad_norm", "tokens_per_s")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def read(path, key):
    pts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"plot_metrics: {path}:{n}: not JSON ({e.msg})")
            if row.get("type", "train") != "train" and key in TRAIN_KEYS:
                continue  # an evaluation row: its "loss" is a dev loss
            if key in row and "step" in row and isinstance(row[key], (int, float)):
                pts.append((float(row["step"]), float(row[key])))
    return pts


def ema(pts, a):
    out, m = [], None
    for x, y in pts:
        m = y if m is None else a * m + (1 - a) * y
        out.append((x, m))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--keys", default="loss")
    ap.add_argument("--labels", default=None)
    ap.add_argument("--title", default="training loss")
    ap.add_argument("--smooth", type=float, default=0.9)
    a = ap.parse_args(argv)
    keys = [k for k in a.keys.split(",") if k]
    labels = a.labels.split(",") if a.labels else a.files
    if len(labels) != len(a.files):
        ap.error("--labels needs one name per file")
    curves = []
    for f, lab in zip(a.files, labels):
        for k in keys:
            try:
                pts = read(f, k)
            except OSError as e:
                raise SystemExit(f"plot_metrics: {f}: {e.strerror}")
            if pts:
                curves.append((f"{lab} {k}" if len(keys) > 1 or len(a.files) == 1 else lab, pts))
    if not curves:
        raise SystemExit("plot_metrics: no data: no line has the keys " + ", ".join(keys))
    W, H, L, R, T, B = 760, 420, 60, 20, 40, 90
    xmax = max(x for _, p in curves for x, _ in p) or 1.0
    ymax = max(y for _, p in curves for _, y in p) or 1.0
    sx = lambda x: L + (W - L - R) * x / xmax
    sy = lambda y: T + (H - T - B) * (1 - y / ymax)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{html.escape(a.title)}</text>']
    for i in range(6):
        y = ymax * i / 5
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    for i in range(6):
        x = xmax * i / 5
        out.append(f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:.0f}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - B + 34}" text-anchor="middle">step</text>')
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="black"/>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="black"/>')
    for i, (name, pts) in enumerate(curves):
        c = COLORS[i % len(COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-opacity="0.35" stroke-width="1" points="{path}"/>')
        if a.smooth > 0:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ema(pts, a.smooth))
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        ly = H - B + 52 + 16 * (i // 3)
        lx = L + 230 * (i % 3)
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="14" height="4" fill="{c}"/>')
        out.append(f'<text x="{lx + 20}" y="{ly - 4}">{html.escape(name)} (last {pts[-1][1]:.3f})</text>')
    out.append("</svg>")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {a.out}: {len(curves)} curve(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
