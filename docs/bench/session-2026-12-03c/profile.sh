#!/bin/bash
# Where the time of the rows that miss issue 12's targets goes: perf profiles of xadapt and PyTorch
# (the same rows as tests/bench/issue12.sh, B = 8, 2 threads), each sample classed by symbol as
# set-up (weight init, page zeroing, the register-only peak loops that every xadapt bench row
# measures), GEMM kernel, GEMM packing, scheduler / yield, other (classify.py). Run from the
# repository root; writes /tmp/prof/*.data. About 4 minutes.
set -euo pipefail
mkdir -p /tmp/prof
export OMP_WAIT_POLICY=passive
for spec in "base task-adapter fp32" "base task-adapter bf16" "base infer bf16" "small task-adapter fp32"; do
    set -- $spec
    perf record -q -F 299 -o /tmp/prof/xa-$1-$2-$3.data -- build/xadapt bench -m $1 -M $2 -b 8 -n 4 \
        --min-seconds 3 -j 2 -p $3 | tail -1
done
for spec in "base task-adapter fp32" "small task-adapter fp32"; do
    set -- $spec
    OPENBLAS_NUM_THREADS=2 perf record -q -F 299 -o /tmp/prof/pt-$1-$2-$3.data -- /usr/bin/python3 \
        tests/bench/bench_torch.py --row --models $1 --modes $2 --batch 8 --steps 4 --min-seconds 3 \
        --threads 2 --precision $3 | tail -1
done
/usr/bin/python3 "$(dirname "$0")/classify.py" /tmp/prof/*.data
