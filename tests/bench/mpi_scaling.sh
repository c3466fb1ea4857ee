#!/usr/bin/env bash
# Data-parallel scaling on one machine (README "Scale-out"): 1 rank x 2 threads against 2 ranks x
# 1 thread on the tiny recipe's pretrain, lang and task phases, ROUNDS interleaved rounds. Prints
# per phase and round the training tokens/s (the mean of metrics.jsonl's windows after the first)
# and, for 2 ranks, the allreduce size and its time per step (train.log).
# usage: tests/bench/mpi_scaling.sh BUILD/xadapt [ROUNDS=2] [OUT=/tmp/xa-mpi-bench]
set -euo pipefail
xa=${1:?usage: mpi_scaling.sh XADAPT [ROUNDS] [OUT]}
rounds=${2:-2}
out=${3:-/tmp/xa-mpi-bench}
recipe="$(dirname "$0")/../data/recipe/tiny.yaml"
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
sizes=(--set phases.pretrain.steps=60 --set phases.pretrain.batch_size=32 --set phases.pretrain.seq_len=64
       --set phases.pretrain.ckpt_every=0 --set phases.lang.steps=60 --set phases.lang.batch_size=32
       --set phases.lang.seq_len=64 --set phases.lang.ckpt_every=0 --set phases.task.epochs=2
       --set phases.task.batch_size=32 --set phases.task.ckpt_every=0 --set phases.task.eval_every=1000
       --set phases.lang.log_every=10 --set phases.pretrain.log_every=10 --set phases.task.log_every=5)
tps() { # metrics.jsonl: mean tokens_per_s of the train windows after the first
  grep '"type": "train"' "$1" | sed -n 's/.*"tokens_per_s": \([0-9.e+]*\).*/\1/p' |
    awk 'NR > 1 { s += $1; n++ } END { if (n) printf "%.0f", s / n; else printf "-" }'
}
red() { sed -n 's/.*allreduce of \([0-9]*\) floats per step: \([0-9.]*\) ms.*/\1 floats, \2 ms\/step/p' "$1" | tail -n 1; }
printf '| round | layout | phase | tokens/s | allreduce per step |\n|---:|---|---|---:|---|\n'
for ((r = 1; r <= rounds; r++)); do
  for layout in 1x2 2x1; do
    o="$out/r$r-$layout"
    rm -rf "$o"
    if [[ $layout == 1x2 ]]; then run=("$xa"); j=2; else run=(mpirun -np 2 --oversubscribe --bind-to none "$xa"); j=1; fi
    for phase in pretrain lang task; do
      extra=()
      [[ $phase == lang ]] && extra=(--lang en)
      "${run[@]}" train "$recipe" --set "output=$o" --set "model.base=$o/base" "${sizes[@]}" -j $j -q \
        --phase $phase "${extra[@]}" >/dev/null
      case $phase in pretrain) d="$o/base" ;; lang) d="$o/lang/en" ;; task) d="$o/task/pkg/seed3" ;; esac
      a=$([[ $layout == 2x1 ]] && red "$d/train.log" || echo "-")
      printf '| %d | %s | %s | %s | %s |\n' "$r" "$layout" "$phase" "$(tps "$d/metrics.jsonl")" "$a"
    done
  done
done
