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

usage: /usr/bin/python3 tests/bench/compare.py [--xadapt build/xadapt] [--models tiny,small]
           [--modes ...] [--batch 8,32] [--seq 128] [--reps 3] [--min-seconds 1.5] [--threads 1,2]
           [--json-out FILE] [--cpu-overhead N1,N2]
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


def tabulate(paths):
    """Rebuild the tables from --json-out files (several sessions: each side's best of all)."""
    best, order = {}, {"model": [], "mode": [], "batch": []}
    for path in paths:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if "tokens_per_s" not in r:
                    continue
                key = (r["model"], r["mode"], str(r["batch"]))
                for k, v in zip(("model", "mode", "batch"), key):
                    if v not in order[k]:
                        order[k].append(v)
                cell = best.setdefault(key, {})
                if r["impl"] not in cell or r["tokens_per_s"] > cell[r["impl"]]["tokens_per_s"]:
                    cell[r["impl"]] = r
    print(f"best of every run in: {', '.join(paths)}\n")
    print_tables(best, order["model"], order["mode"], order["batch"])
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
    ap.add_argument("--json-out", default=None, help="also write every measurement as JSON lines")
    ap.add_argument("--cpu-overhead", default=None, metavar="N1,N2",
                    help="also measure the infer-stack overhead in single-thread CPU time per step, from "
                         "runs of N1 and N2 steps (needs infer and infer-stack in --modes)")
    ap.add_argument("--tabulate", nargs="+", metavar="JSONL", default=None,
                    help="run nothing: print the tables from earlier --json-out files, best of all")
    a = ap.parse_args()
    if a.tabulate:
        return tabulate(a.tabulate)

    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    info = subprocess.run([a.xadapt, "bench", "--models", "tiny", "--modes", "infer", "--batch", "1",
                           "--seq", "8", "--steps", "1", "--min-seconds", "0"],
                          capture_output=True, text=True, env=env).stdout.splitlines()[0]
    torch_info = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                capture_output=True, text=True, env=env).stdout.strip()
    print(f"xadapt {info}")
    print(f"PyTorch {torch_info}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          f"OMP_WAIT_POLICY=passive; threads tried: {a.threads}; best of {a.reps} interleaved runs\n")
    jf = open(a.json_out, "w") if a.json_out else None
    t_start = time.time()
    models, modes, batches = a.models.split(","), a.modes.split(","), a.batch.split(",")
    best = {}  # (model, mode, batch) -> {impl: best row}
    for model in models:
        for b in batches:
            for rep in range(a.reps):
                for mode in modes:
                    for th in a.threads.split(","):
                        xa = run_json([a.xadapt, "bench", "--json", "--models", model, "--modes", mode,
                                       "--batch", b, "--seq", str(a.seq), "--steps", str(a.steps),
                                       "--min-seconds", str(a.min_seconds), "-j", th], env)
                        pt = run_json([sys.executable, os.path.join(HERE, "bench_torch.py"), "--row",
                                       "--models", model, "--modes", mode, "--batch", b,
                                       "--seq", str(a.seq), "--steps", str(a.steps),
                                       "--min-seconds", str(a.min_seconds), "--threads", th], env)
                        cell = best.setdefault((model, mode, b), {})
                        for r in (xa, pt):
                            if jf:
                                r = dict(r, rep=rep)
                                jf.write(json.dumps(r) + "\n")
                                jf.flush()
                            k = r["impl"]
                            if k not in cell or r["tokens_per_s"] > cell[k]["tokens_per_s"]:
                                cell[k] = r
                        print(f"  {model} B={b} rep {rep + 1}/{a.reps} {mode} -j {th}: xadapt "
                              f"{xa['tokens_per_s']:.0f} tok/s, PyTorch {pt['tokens_per_s']:.0f} tok/s "
                              f"({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)

    print_tables(best, models, modes, batches)
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
