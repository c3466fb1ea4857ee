#!/bin/bash
# CPU time per step of the bare base (infer) and Stack(lang, task) + head (infer-stack), old and
# new binary interleaved, one thread: perf samples (1 kHz) of the bench's row process (the last
# pid), -n 1 subtracted from -n N to cancel the setup. Columns: run bin model B mode steps samples load.
# usage: OLD=path/xadapt NEW=path/xadapt cpu.sh > cpu.tsv   (base = OLD, fuse = NEW)
for cfg in "tiny 8 200" "tiny 32 40" "small 8 30" "small 32 ${SMALL32:-8}"; do
  set -- $cfg; m=$1; b=$2; n=$3
  for mode in infer infer-stack; do
    for bin in base fuse; do
      x=$OLD; [ $bin = fuse ] && x=$NEW
      for steps in 1 $n; do
        perf record -F 1000 -o p.data $x bench -m $m -M $mode -b $b -j 1 -n $steps --min-seconds 0 >/dev/null 2>&1
        s=$(perf report -i p.data --no-children -n --sort pid 2>/dev/null | grep -v '^#' | grep '%' |
            awk '{split($3,a,":"); if ($2>20) print a[1], $2}' | sort -n | tail -1 | awk '{print $2}')
        echo -e "1\t$bin\t$m\t$b\t$mode\t$steps\t$s\t$(uptime | sed 's/.*average: //')"
      done
    done
  done
done
