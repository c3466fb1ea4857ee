#!/usr/bin/env bash
# README command 1: install what is missing, build, prepare the quick-start data from Debian
# packages, and run the default recipe end to end (pretrain a tiny base, language adapters for
# en + 6 targets, a task adapter, a fusion, the zero-shot transfer tables), printing the results.
#   bash recipes/quickstart.sh            # everything; finished steps are skipped on a rerun
# Outputs: data/quickstart/ (the prepared data), out/quickstart/ (models, adapters, eval/).
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup
.ci/setup --data
jobs=$(nproc 2>/dev/null || echo 2)
# built for this machine (-march=native: 1.6x faster training than the portable default build)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DXA_NATIVE=ON >/dev/null
cmake --build build -j "$jobs" --target xadapt >/dev/null
xa=build/xadapt
start=$(date +%s)

echo "== 1. data: LibreOffice help and man pages from Debian packages (en + de fr el ru tr ja)"
bash recipes/data/prepare.sh --profile quick --out data/quickstart

echo
echo "== 2. recipes/quickstart.yaml: pretrain, language adapters, task adapter (LO-MOD), fusion, eval"
$xa run recipes/quickstart.yaml

echo
echo "== 3. recipes/quickstart-ui.yaml: the tagging task (LO-UI spans) on the same base and adapters"
$xa run recipes/quickstart-ui.yaml

echo
echo "== 4. predict with MAD-X: German input through Stack(lang:de, task:lo-mod)"
printf '%s\n' "Wählen Sie Format - Zellen und klicken Sie auf das Register Zahlen." \
              "Die Funktion SUMME addiert alle Zahlen in einem Zellbereich." \
  | $xa predict --model out/quickstart --stack lang:de,task:lo-mod

end=$(date +%s)
echo
echo "quick start done in $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s;"
echo "tables and charts: out/quickstart/eval/{lo-mod,lo-ui}/results.{md,json,csv,svg}"
