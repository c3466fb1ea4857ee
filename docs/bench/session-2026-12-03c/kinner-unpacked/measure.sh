#!/bin/bash
# old = d147a20 (K-inner on packs only), new = working tree (K-inner also for products packing B whole)
cd /work/main
out=/tmp/kin2; mkdir -p $out; : > $out/bp.txt; : > $out/bench.jsonl
{ date -u; uptime; head -1 /proc/stat; } > $out/host.txt
for th in 2 1; do for i in 1 2 3; do for t in old new; do
  XA_BF16_PACKS=off OMP_WAIT_POLICY=passive /tmp/bp2_$t $th | awk -F'|' 'NR>3{printf "%s ", $6}' | sed "s/^/$th $t /" >> $out/bp.txt; echo >> $out/bp.txt
done; done; done
for i in 1 2 3; do for t in old new; do
  x=/tmp/old_xadapt; [ $t = new ] && x=build/xadapt
  OMP_WAIT_POLICY=passive $x bench -m base,small -M mlm-full -b 8 -n 3 --min-seconds 2 -j 2 -p bf16 --json 2>/dev/null | sed "s/^{/{\"build\": \"$t\", \"rep\": $i, /" >> $out/bench.jsonl
done; done
{ date -u; uptime; head -1 /proc/stat; } >> $out/host.txt
