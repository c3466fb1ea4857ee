#!/bin/bash
# Quiet-host measurements of this session's merged speed work (old = d4080a4, new = this commit).
#  1. Stack(lang, task) overhead: stack_overhead.c (bare and stacked steps alternated in one
#     process), old and new library interleaved, 3 runs, 2 threads.
#  2. bf16 rows with the frozen-weight packs: xadapt bench, old and new binaries alternated, 2 reps.
# usage: OLDX=old/xadapt NEWX=build/xadapt SO_OLD=so.old SO_NEW=so.new run.sh OUTDIR
out=${1:?usage: run.sh OUTDIR}; mkdir -p "$out"
export OMP_WAIT_POLICY=passive
{ grep -m1 'model name' /proc/cpuinfo; uptime; } > "$out/host.txt"
: > "$out/stack_overhead.txt"
for r in 1 2 3; do
  for cfg in "tiny 8 2 200" "tiny 32 2 60" "small 8 2 40" "small 32 2 15" "base 8 2 12"; do
    for b in old new; do
      so=$SO_OLD; [ $b = new ] && so=$SO_NEW
      echo "# run $r $b $cfg $(uptime)" >> "$out/stack_overhead.txt"
      $so $cfg >> "$out/stack_overhead.txt" 2>&1
    done
  done
done
: > "$out/bf16.jsonl"
for r in 1 2; do
  for b in old new; do
    x=$OLDX; [ $b = new ] && x=$NEWX
    echo "# rep $r $b $(uptime)" >> "$out/bf16.log"
    $x bench -m tiny,small,base -M infer,infer-stack,lang-adapter,task-adapter -b 8 -j 2 --precision bf16 \
      --min-seconds 1 --json 2>>"$out/bf16.log" | sed "s/^{/{\"bin\":\"$b\",\"rep\":$r,/" >> "$out/bf16.jsonl"
  done
done
uptime >> "$out/host.txt"
