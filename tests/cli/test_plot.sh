#!/usr/bin/env bash
# xadapt plot (the loss curves of a run) and the recipe answers to Hugging Face key names, on
# committed fixtures, without training: a metrics.jsonl of the older untyped format (duplicate
# steps from a resume, "nan" lines, a cut last line) plots to a standalone SVG beside it or to -o;
# bad arguments and missing files exit 2 / 1 with a message; HF spellings of phase keys exit 2
# naming xadapt's key.
# usage: test_plot.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_plot.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/plot-$$
mkdir -p "$tmp/run"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$xa" plot --help | grep -q "usage: xadapt plot RUN_DIR" || fail "plot --help"
"$xa" --help | grep -q "^  plot " || fail "xadapt --help does not list plot"
cp "$data/train/metrics-old.jsonl" "$tmp/run/metrics.jsonl"
if "$xa" plot "$tmp/run" >"$tmp/out" 2>"$tmp/err"; then
  grep -q "5 training windows, 3 evaluations in 1 series" "$tmp/out" || fail "plot: counts: $(cat "$tmp/out")"
  grep -q "2 line(s) that are not JSON objects skipped (the first: line 10)" "$tmp/err" || fail "plot: no warning"
  head -c 5 "$tmp/run/metrics.svg" | grep -q "<svg" && tail -c 7 "$tmp/run/metrics.svg" | grep -q "</svg>" ||
    fail "plot: RUN_DIR/metrics.svg is not a whole SVG"
  grep -q "<polyline" "$tmp/run/metrics.svg" || fail "plot: no curve"
  echo "ok: plot of an older metrics.jsonl (duplicates, nan, a cut line) beside it"
else
  fail "plot: exit $?"; cat "$tmp/err"
fi
"$xa" plot "$tmp/run/metrics.jsonl" -o "$tmp/x.svg" --title "a & b" >/dev/null 2>&1 || fail "plot FILE -o: exit $?"
grep -q "<title>a &amp; b</title>" "$tmp/x.svg" || fail "plot --title: not in the SVG (escaped)"
"$xa" plot >/dev/null 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "plot without RUN_DIR: exit $rc, expected 2"
"$xa" plot "$tmp/none" >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -eq 1 ]] && grep -q "metrics.jsonl" "$tmp/err" || fail "plot of a missing run: exit $rc"
echo "ok: plot usage and errors"

# Hugging Face names of phase keys: exit 2 at file:line:col, the hint names xadapt's key
mk() { printf 'name: x\noutput: %s/o\nmodel: {base: b}\nlanguages: {source: en}\ndata: {mlm: m}\nadapters: {lang: {preset: seq_bn_inv}}\nphases:\n  - lang: {steps: 10, %s}\n' "$tmp" "$1" >"$tmp/hf.yaml"; }
for pair in "learning_rate: 1e-4|'lr'" "num_train_epochs: 2|'epochs'" "max_steps: 5|'steps'" \
            "per_device_train_batch_size: 8|'batch_size'" "gradient_accumulation_steps: 2|'grad_accum'"; do
  mk "${pair%%|*}"
  "$xa" train "$tmp/hf.yaml" --phase lang >/dev/null 2>"$tmp/err"; rc=$?
  [[ $rc -eq 2 ]] || fail "${pair%%|*}: exit $rc, expected 2"
  grep -q "hf.yaml:8:23" "$tmp/err" || fail "${pair%%|*}: no file:line:col: $(head -1 "$tmp/err")"
  grep -qF "${pair#*|}" "$tmp/err" || fail "${pair%%|*}: hint: $(grep hint "$tmp/err")"
done
mk "lr_scheduler: cosin"
"$xa" train "$tmp/hf.yaml" --phase lang >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -eq 2 ]] && grep -q "did you mean 'cosine'" "$tmp/err" || fail "lr_scheduler typo: exit $rc"
echo "ok: Hugging Face key names and bad trainer values exit 2 with xadapt's key"

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all plot tests passed"
