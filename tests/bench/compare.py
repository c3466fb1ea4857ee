#!/usr/bin/python3
"""Side-by-side benchmark: `xadapt bench` against the PyTorch reference (bench_torch.py) on the same
machine in one run, row by row and interleaved (this machine is shared and noisy), each side at 1
and 2 threads and R repetitions, keeping each side's best. PyTorch runs as a skilled user runs it:
OMP_WAIT_POLICY=passive, best thread count, MLM loss on masked rows only, frozen parts under
no_grad. Neither side gets OPENBLAS_CORETYPE changed: both use the BLAS core the environment gives,
which is printed. Prints a Markdown table with the ratio xadapt / PyTorch per row.

usage: /usr/bin/python3 tests/bench/compare.py [--xadapt build/xadapt] [--models tiny,small]
           [--modes ...] [--batch 8,32] [--seq 128] [--reps 3] [--min-seconds 1.5] [--threads 1,2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    a = ap.parse_args()

    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    info = subprocess.run([a.xadapt, "bench", "--models", "tiny", "--modes", "infer", "--batch", "1",
                           "--seq", "8", "--steps", "1", "--min-seconds", "0"],
                          capture_output=True, text=True, env=env).stdout.splitlines()[0]
    torch_info = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                capture_output=True, text=True, env=env).stdout.strip()
    print(f"xadapt {info}")
    print(f"PyTorch {torch_info}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          f"OMP_WAIT_POLICY=passive; threads tried: {a.threads}; best of {a.reps} interleaved runs\n")
    print("| model | mode | B | xadapt tok/s | PyTorch tok/s | ratio | xadapt GFLOP/s | PyTorch GFLOP/s "
          "| xadapt MB | PyTorch MB | threads (xa/pt) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    sys.stdout.flush()
    jf = open(a.json_out, "w") if a.json_out else None
    t_start = time.time()
    for model in a.models.split(","):
        for mode in a.modes.split(","):
            for b in a.batch.split(","):
                best = {}
                for rep in range(a.reps):
                    for th in a.threads.split(","):
                        xa = run_json([a.xadapt, "bench", "--json", "--models", model, "--modes", mode,
                                       "--batch", b, "--seq", str(a.seq), "--steps", str(a.steps),
                                       "--min-seconds", str(a.min_seconds), "-j", th], env)
                        pt = run_json([sys.executable, os.path.join(HERE, "bench_torch.py"), "--row",
                                       "--models", model, "--modes", mode, "--batch", b,
                                       "--seq", str(a.seq), "--steps", str(a.steps),
                                       "--min-seconds", str(a.min_seconds), "--threads", th], env)
                        for r in (xa, pt):
                            if jf:
                                jf.write(json.dumps(r) + "\n")
                            k = r["impl"]
                            if k not in best or r["tokens_per_s"] > best[k]["tokens_per_s"]:
                                best[k] = r
                x, p = best["xadapt"], best["torch"]
                print(f"| {model} | {mode} | {b} | {x['tokens_per_s']:.0f} | {p['tokens_per_s']:.0f} | "
                      f"**{x['tokens_per_s'] / p['tokens_per_s']:.2f}x** | {x['gflops']:.1f} | {p['gflops']:.1f} | "
                      f"{x['peak_mb']:.0f} | {p['peak_mb']:.0f} | {x['threads']}/{p['threads']} |")
                sys.stdout.flush()
    print(f"\n(measured in {time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
