#!/bin/bash
# Wall clock, old and new binary interleaved: R reps of xadapt bench's infer and infer-stack rows.
# usage: OLDX=path/xadapt NEWX=path/xadapt R=3 wall.sh NAME   (rows in NAME.jsonl, loads in NAME.log)
R=${R:-3}
out=$1.jsonl; : > $out
for rep in $(seq 1 $R); do
  for bin in base fuse; do
    x=$OLDX; [ $bin = fuse ] && x=$NEWX
    echo "# rep $rep $bin $(uptime)" >> $1.log
    $x bench -m ${MODELS:-tiny,small} -M infer,infer-stack -b 8,32 -j ${J:-2} --min-seconds ${MS:-1.5} --json 2>>$1.log | sed "s/^{/{\"bin\":\"$bin\",\"rep\":$rep,/" >> $out
  done
done
