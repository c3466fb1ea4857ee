#!/bin/bash
# The comparison of issue 12, in one command: xadapt fp32 and bf16 against PyTorch fp32 (tuned as in
# the earlier tables) and PyTorch bf16 (torch.autocast("cpu", dtype=torch.bfloat16)), every mode,
# interleaved row by row on this machine, with each row's arithmetic path and its fraction of that
# path's register-only peak (xadapt bench --peak):
#   tiny and small at B = 8, 32 (1 and 2 threads, the better kept), then base at B = 8 (2 threads).
# Estimated wall time on 2 cores: 15-20 min on a quiet host (tiny + small about 12, base about 5-6,
# from the per-step times of the earlier tables); the preliminary QUICK pass (tiny + small, B = 8)
# took 12 min (731 s) on a host shared with four other jobs, load 6-10, where PyTorch's fp32 rows
# (OpenBLAS's own thread pool, see PIN) ran several times slower than on a quiet one.
#
#   tests/bench/issue12.sh [build/xadapt] [OUTDIR]          (default OUTDIR docs/bench/bf16)
#   PIN=1 tests/bench/issue12.sh ...   also bound OpenBLAS's threads in the PyTorch rows
#                                      (compare.py --torch-blas-threads; see its help)
#   QUICK=1 tests/bench/issue12.sh ... the reduced pass: tiny + small, B = 8 only
# Writes OUTDIR/issue12-{small,base}.{jsonl,md} and OUTDIR/issue12.md (both tables, best rows).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
xa=${1:-$here/../../build/xadapt}
out=${2:-$here/../../docs/bench/bf16}
py=/usr/bin/python3
mkdir -p "$out"
extra=()
[ "${PIN:-0}" = 1 ] && extra+=(--torch-blas-threads)
modes=mlm-full,mlm-frozen,cls-frozen,infer,lang-adapter,task-adapter,infer-stack
{ date -u; uptime; } > "$out/issue12-host.txt"
t0=$(date +%s)
batch=8,32
[ "${QUICK:-0}" = 1 ] && batch=8
$py "$here/compare.py" --xadapt "$xa" --precision fp32,bf16 --models tiny,small --batch "$batch" --modes "$modes" \
    --threads 1,2 --reps 1 --steps 2 --min-seconds 0.5 "${extra[@]}" \
    --json-out "$out/issue12-small.jsonl" > "$out/issue12-small.md"
files=("$out/issue12-small.jsonl")
if [ "${QUICK:-0}" != 1 ]; then
    $py "$here/compare.py" --xadapt "$xa" --precision fp32,bf16 --models base --batch 8 --modes "$modes" \
        --threads 2 --reps 1 --steps 1 --min-seconds 0 "${extra[@]}" \
        --json-out "$out/issue12-base.jsonl" > "$out/issue12-base.md"
    files+=("$out/issue12-base.jsonl")
fi
{ uptime; echo "wall: $(( $(date +%s) - t0 )) s"; } >> "$out/issue12-host.txt"
$py "$here/compare.py" --tabulate "${files[@]}" > "$out/issue12.md"
cat "$out/issue12.md" "$out/issue12-host.txt"
