#!/usr/bin/python3
"""Side-by-side benchmark: `xadapt bench` against the PyTorch reference (bench_torch.py) on the same
machine in one run, row by row and interleaved (this machine is shared and noisy), each side at 1
and 2 threads and R repetitions, keeping each side's best. PyTorch runs as a skilled user runs it:
OMP_WAIT_POLICY=passive, best thread count, MLM loss on masked rows only, frozen parts under
no_grad. Neither side gets OPENBLAS_CORETYPE changed: both use the BLAS core the environment gives,
which is printed (run it again under OPENBLAS_CORETYPE=SkylakeX for the second table: both sides
inherit the environment). Prints a Markdown table with the ratio xadapt / PyTorch per row, in
throughput and in peak memory (each row's process RSS high-water mark, ru_maxrss, in MiB; the
memory row of the README: --models xlmr-base --modes lang-adapter --batch 16 --seq 256).

For one model and batch size, every mode's runs are interleaved (rep 1: mode a, b, c ...; rep 2:
...), so rows that are compared with each other (infer and infer-stack: the adapter stack's overhead
at inference) see the same machine. When both infer and infer-stack are measured, a second table
gives the stack's overhead in step time, per side. Adapter modes: lang-adapter (MLM; only the
seq_bn_inv rf 2 language adapter trains, MLM head and tied decoder frozen), task-adapter
(classification on Stack(lang, task); task seq_bn rf 16 and head train, lang frozen), infer-stack.

--precision fp32,bf16 runs every row in each precision on both sides, interleaved (for one row
and thread count: xadapt fp32, PyTorch fp32, xadapt bf16, PyTorch bf16, back to back): xadapt with
`bench -p bf16` (the VDPBF16PS kernel), PyTorch under torch.autocast("cpu", dtype=torch.bfloat16)
(bench_torch.py --precision bf16; oneDNN's bf16 kernels, which --probe names). It then prints the
ratio columns xadapt bf16 / PyTorch fp32, xadapt bf16 / PyTorch bf16 and xadapt fp32 / PyTorch fp32,
and a second table with each row's arithmetic path (fp32-avx512, bf16-avx512, bf16-amx), xadapt's
engine, and the GFLOP/s of every side as a fraction of that path's register-only peak (`xadapt
bench --peak`, measured before every block of rows; the best of those measurements is the peak).

usage: /usr/bin/python3 tests/bench/compare.py [--xadapt build/xadapt] [--models tiny,small]
           [--modes ...] [--batch 8,32] [--seq 128] [--reps 3] [--min-seconds 1.5] [--threads 1,2]
           [--precision fp32[,bf16]] [--json-out FILE] [--cpu-overhead N1,N2] [--tabulate JSONL...]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_cpu():
    """CPU seconds (user + system) of every finished, waited-for descendant: the rows run in
    grandchildren (a process per row on both sides), which their parents wait for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_per_step(cmd_for, n1, n2, reps, env):
    """Single-thread CPU ms per step: (CPU(n2 steps) - CPU(n1 steps)) / (n2 - n1), each the least
    of `reps` runs; start-up, init and warm-up cancel. CPU time is much less sensitive to other
    load on a shared machine than wall time (not immune: caches and memory are shared)."""
    best = {}
    for _ in range(reps):
        for n in (n1, n2):
            c0 = child_cpu()
            run_json(cmd_for(n), env)
            c = child_cpu() - c0
            best[n] = min(best.get(n, c), c)
    return 1e3 * (best[n2] - best[n1]) / (n2 - n1)


def print_tables(best, models, modes, batches):
    """The ratio table from each side's best row per (model, mode, batch), and the inference
    overhead of the stack when infer and infer-stack are both there."""
    print("| model | mode | B | xadapt tok/s | PyTorch tok/s | ratio | xadapt GFLOP/s | PyTorch GFLOP/s "
          "| xadapt MB | PyTorch MB | MB ratio | threads (xa/pt) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for model in models:
        for mode in modes:
            for b in batches:
                x, p = best[(model, mode, b)]["xadapt"], best[(model, mode, b)]["torch"]
                print(f"| {model} | {mode} | {b} | {x['tokens_per_s']:.0f} | {p['tokens_per_s']:.0f} | "
                      f"**{x['tokens_per_s'] / p['tokens_per_s']:.2f}x** | {x['gflops']:.1f} | {p['gflops']:.1f} | "
                      f"{x['peak_mb']:.0f} | {p['peak_mb']:.0f} | {x['peak_mb'] / p['peak_mb']:.2f}x | "
                      f"{x['threads']}/{p['threads']} |")
    if "infer" in modes and "infer-stack" in modes:
        print("\nOverhead of Stack(lang, task) + classification head at inference, in step time "
              "(infer-stack step / infer step - 1, each side's best rows):\n")
        print("| model | B | xadapt infer tok/s | xadapt infer-stack tok/s | xadapt overhead "
              "| PyTorch infer tok/s | PyTorch infer-stack tok/s | PyTorch overhead |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for model in models:
            for b in batches:
                row = [model, b]
                for impl in ("xadapt", "torch"):
                    i0 = best[(model, "infer", b)][impl]["tokens_per_s"]
                    i1 = best[(model, "infer-stack", b)][impl]["tokens_per_s"]
                    row += [f"{i0:.0f}", f"{i1:.0f}", f"{100.0 * (i0 / i1 - 1.0):+.1f}%"]
                print("| " + " | ".join(row) + " |")


def frac(r, peaks):
    """GFLOP/s of row r as a fraction of the register-only peak of its path at its thread count."""
    pk = peaks.get((r.get("path"), r["threads"]))
    return f"{100.0 * r['gflops'] / pk:.0f}%" if pk else "-"


def print_precision_tables(best, models, modes, batches, precs, peaks):
    """Both precisions on both sides: throughput and the three ratios; then paths, engines and
    the fraction of each path's register-only peak."""
    def get(key, impl, prec):
        return best.get(key, {}).get((impl, prec))

    cols = [(i, p) for p in precs for i in ("xadapt", "torch")]
    name = {"xadapt": "xadapt", "torch": "PyTorch"}
    ratios = [(("xadapt", "bf16"), ("torch", "fp32")), (("xadapt", "bf16"), ("torch", "bf16")),
              (("xadapt", "fp32"), ("torch", "fp32")), (("xadapt", "bf16"), ("xadapt", "fp32"))]
    ratios = [r for r in ratios if r[0][1] in precs and r[1][1] in precs]
    print("| model | mode | B | " + " | ".join(f"{name[i]} {p} tok/s" for i, p in cols) + " | "
          + " | ".join(f"{name[a[0]]} {a[1]} / {name[b[0]]} {b[1]}" for a, b in ratios)
          + " | threads (" + ", ".join(f"{name[i][:2]} {p}" for i, p in cols) + ") |")
    print("|---|---|---:|" + "---:|" * (len(cols) + len(ratios)) + "---|")
    for model in models:
        for mode in modes:
            for b in batches:
                key = (model, mode, b)
                rs = {c: get(key, *c) for c in cols}
                cells = [f"{rs[c]['tokens_per_s']:.0f}" if rs[c] else "-" for c in cols]
                for x, y in ratios:
                    cells.append(f"**{rs[x]['tokens_per_s'] / rs[y]['tokens_per_s']:.2f}x**" if rs[x] and rs[y] else "-")
                th = "/".join(str(rs[c]["threads"]) if rs[c] else "-" for c in cols)
                print(f"| {model} | {mode} | {b} | " + " | ".join(cells) + f" | {th} |")
    print("\nPaths and GFLOP/s against each path's register-only peak at the row's thread count "
          "(xadapt engine in brackets):\n")
    print("| model | mode | B | " + " | ".join(f"{name[i]} {p} path | GFLOP/s | of peak" for i, p in cols) + " |")
    print("|---|---|---:|" + "---|---:|---:|" * len(cols))
    for model in models:
        for mode in modes:
            for b in batches:
                key = (model, mode, b)
                cells = []
                for c in cols:
                    r = get(key, *c)
                    if not r:
                        cells += ["-", "-", "-"]
                        continue
                    path = r.get("path", "?") + (f" ({r['engine']})" if c[0] == "xadapt" else "")
                    cells += [path, f"{r['gflops']:.1f}", frac(r, peaks)]
                print(f"| {model} | {mode} | {b} | " + " | ".join(cells) + " |")


def tabulate(paths):
    """Rebuild the tables from --json-out files (several sessions: each side's best of all)."""
    best, order, peaks, precs = {}, {"model": [], "mode": [], "batch": []}, {}, []
    for path in paths:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if "peak" in r and "gflops" in r:
                    k = (r["peak"], r["threads"])
                    peaks[k] = max(peaks.get(k, 0.0), r["gflops"])
                    continue
                if "tokens_per_s" not in r:
                    continue
                if r.get("precision", "fp32") not in precs:
                    precs.append(r.get("precision", "fp32"))
                key = (r["model"], r["mode"], str(r["batch"]))
                for k, v in zip(("model", "mode", "batch"), key):
                    if v not in order[k]:
                        order[k].append(v)
                cell = best.setdefault(key, {})
                for k in (r["impl"], (r["impl"], r.get("precision", "fp32"))):
                    if k == r["impl"] and r.get("precision", "fp32") != "fp32":
                        continue  # the plain (fp32) table keeps fp32 rows only
                    if k not in cell or r["tokens_per_s"] > cell[k]["tokens_per_s"]:
                        cell[k] = r
    print(f"best of every run in: {', '.join(paths)}\n")
    if precs == ["fp32"]:
        print_tables(best, order["model"], order["mode"], order["batch"])
    else:
        print_precision_tables(best, order["model"], order["mode"], order["batch"],
                               [p for p in ("fp32", "bf16") if p in precs], peaks)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--xadapt", default=os.path.join(HERE, "..", "..", "build", "xadapt"))
    ap.add_argument("--models", default="tiny,small")
    ap.add_argument("--modes", default="mlm-full,mlm-frozen,cls-frozen,infer")
    ap.add_argument("--batch", default="8,32")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=1.5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--precision", default="fp32",
                    help="fp32, bf16 or fp32,bf16: each row in every precision on both sides, interleaved "
                         "(bf16: xadapt -p bf16, PyTorch under torch.autocast cpu bf16)")
    ap.add_argument("--torch-blas-threads", action="store_true",
                    help="run PyTorch rows with OPENBLAS_NUM_THREADS = their thread count: Debian's torch "
                         "(BLAS_INFO=generic) does not pass set_num_threads on to OpenBLAS, whose own pthread "
                         "pool then spins at full width beside torch's threads (on a loaded host its fp32 rows "
                         "run several times slower); default off, as in the earlier tables")
    ap.add_argument("--json-out", default=None, help="also write every measurement as JSON lines")
    ap.add_argument("--cpu-overhead", default=None, metavar="N1,N2",
                    help="also measure the infer-stack overhead in single-thread CPU time per step, from "
                         "runs of N1 and N2 steps (needs infer and infer-stack in --modes)")
    ap.add_argument("--tabulate", nargs="+", metavar="JSONL", default=None,
                    help="run nothing: print the tables from earlier --json-out files, best of all")
    a = ap.parse_args()
    if a.tabulate:
        return tabulate(a.tabulate)
    precs = a.precision.split(",")
    if any(p not in ("fp32", "bf16") for p in precs):
        ap.error(f"--precision: fp32 and/or bf16, not {a.precision}")
    plain = precs == ["fp32"]  # the original tables and row output

    env = dict(os.environ, OMP_WAIT_POLICY="passive")

    def env_pt(th):
        return dict(env, OPENBLAS_NUM_THREADS=th) if a.torch_blas_threads else env
    info = subprocess.run([a.xadapt, "bench", "--models", "tiny", "--modes", "infer", "--batch", "1",
                           "--seq", "8", "--steps", "1", "--min-seconds", "0"],
                          capture_output=True, text=True, env=env).stdout.splitlines()[0]
    torch_info = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                capture_output=True, text=True, env=env).stdout.strip()
    print(f"xadapt {info}")
    print(f"PyTorch {torch_info}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          f"OMP_WAIT_POLICY=passive; threads tried: {a.threads}; best of {a.reps} interleaved runs"
          + ("; PyTorch rows with OPENBLAS_NUM_THREADS = their threads" if a.torch_blas_threads else ""))
    jf = open(a.json_out, "w") if a.json_out else None
    max_th = str(max(int(t) for t in a.threads.split(",")))
    peaks = {}  # (path, threads) -> best register-only GFLOP/s seen in this run

    def measure_peaks():
        out = subprocess.run([a.xadapt, "bench", "--peak", "--json", "-j", max_th], check=True,
                             capture_output=True, text=True, env=env).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        for r in rows:
            if jf:
                jf.write(json.dumps(r) + "\n")
            if "gflops" in r:
                k = (r["peak"], r["threads"])
                peaks[k] = max(peaks.get(k, 0.0), r["gflops"])
        return rows

    if not plain:
        probe = run_json([sys.executable, os.path.join(HERE, "bench_torch.py"), "--probe"], env)
        if jf:
            jf.write(json.dumps(probe) + "\n")
        first = measure_peaks()
        print(f"CPU: {first[0]['cpu']} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start)")
        for r in first[1:]:
            print(f"register-only peak {r['peak']} ({r['instruction']}): "
                  + (f"skipped: {r['skipped']}" if "skipped" in r else f"{r['gflops']:.1f} GFLOP/s at {r['threads']} thread(s)"))
        print(f"PyTorch bf16 = torch.autocast('cpu', dtype=torch.bfloat16); its products: {probe['autocast_bf16']} "
              f"(oneDNN ISA: {probe['onednn_isa']}; output dtypes {probe['autocast_dtypes']})")
    print()
    t_start = time.time()
    models, modes, batches = a.models.split(","), a.modes.split(","), a.batch.split(",")
    best = {}  # (model, mode, batch) -> {impl (fp32 only) or (impl, precision): best row}
    torch_path = probe["path"] if not plain else "fp32"
    for model in models:
        for b in batches:
            for rep in range(a.reps):
                if not plain and (model, b, rep) != (models[0], batches[0], 0):
                    measure_peaks()  # before every block of rows: the best of them is the peak
                for mode in modes:
                    for th in a.threads.split(","):
                        line = []
                        fp32_path = None
                        for prec in precs:
                            xa = run_json([a.xadapt, "bench", "--json", "--models", model, "--modes", mode,
                                           "--batch", b, "--seq", str(a.seq), "--steps", str(a.steps),
                                           "--min-seconds", str(a.min_seconds), "-j", th, "-p", prec], env)
                            pt = run_json([sys.executable, os.path.join(HERE, "bench_torch.py"), "--row",
                                           "--models", model, "--modes", mode, "--batch", b,
                                           "--seq", str(a.seq), "--steps", str(a.steps),
                                           "--min-seconds", str(a.min_seconds), "--threads", th,
                                           "--precision", prec], env_pt(th))
                            if prec == "fp32":
                                fp32_path = xa.get("path")
                            # PyTorch's fp32 products go through the same system BLAS as xadapt's
                            # fp32 rows (OpenBLAS): the same path; bf16: what --probe found
                            pt["path"] = torch_path if prec == "bf16" else (fp32_path or xa.get("path"))
                            xa.setdefault("precision", prec)
                            cell = best.setdefault((model, mode, b), {})
                            for r in (xa, pt):
                                if jf:
                                    jf.write(json.dumps(dict(r, rep=rep)) + "\n")
                                    jf.flush()
                                for k in [(r["impl"], prec)] + ([r["impl"]] if prec == "fp32" else []):
                                    if k not in cell or r["tokens_per_s"] > cell[k]["tokens_per_s"]:
                                        cell[k] = r
                            line.append(f"{prec}: xadapt {xa['tokens_per_s']:.0f}, PyTorch {pt['tokens_per_s']:.0f}")
                        print(f"  {model} B={b} rep {rep + 1}/{a.reps} {mode} -j {th}: " + "; ".join(line)
                              + f" tok/s ({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)

    if plain:
        print_tables(best, models, modes, batches)
    else:
        print_precision_tables(best, models, modes, batches, precs, peaks)
    if a.cpu_overhead and "infer" in modes and "infer-stack" in modes:
        n1, n2 = (int(v) for v in a.cpu_overhead.split(","))
        # One thread everywhere: Debian's torch does not know its BLAS is OpenBLAS (BLAS_INFO=generic),
        # so set_num_threads(1) leaves OpenBLAS's own pthread pool at full width; pin it here.
        env1 = dict(env, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        print(f"\nThe same overhead in CPU time per step at 1 thread, OPENBLAS_NUM_THREADS=1 (steps {n1} "
              f"and {n2}, least of {a.reps} runs each, the difference):\n")
        print("| model | B | xadapt infer ms | xadapt infer-stack ms | xadapt overhead "
              "| PyTorch infer ms | PyTorch infer-stack ms | PyTorch overhead |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for model in models:
            for b in batches:
                row = [model, b]
                for impl in ("xadapt", "torch"):
                    ms = {}
                    for mode in ("infer", "infer-stack"):
                        def cmd_for(n, mode=mode):
                            if impl == "xadapt":
                                return [a.xadapt, "bench", "--json", "--models", model, "--modes", mode,
                                        "--batch", b, "--seq", str(a.seq), "--steps", str(n),
                                        "--min-seconds", "0", "-j", "1"]
                            return [sys.executable, os.path.join(HERE, "bench_torch.py"), "--row",
                                    "--models", model, "--modes", mode, "--batch", b, "--seq", str(a.seq),
                                    "--steps", str(n), "--min-seconds", "0", "--threads", "1"]
                        ms[mode] = cpu_per_step(cmd_for, n1, n2, a.reps, env1)
                        if jf:
                            jf.write(json.dumps({"impl": impl, "model": model, "mode": mode, "batch": int(b),
                                                 "seq": a.seq, "threads": 1, "cpu_ms_per_step": ms[mode],
                                                 "steps": [n1, n2]}) + "\n")
                            jf.flush()
                    row += [f"{ms['infer']:.1f}", f"{ms['infer-stack']:.1f}",
                            f"{100.0 * (ms['infer-stack'] / ms['infer'] - 1.0):+.1f}%"]
                print("| " + " | ".join(row) + " |")
                sys.stdout.flush()
    sys.stdout.flush()
    print(f"\n(measured in {time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
