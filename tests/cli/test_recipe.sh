#!/usr/bin/env bash
# End-to-end recipe test: the tiny recipe (tests/data/recipe/tiny.yaml, real gettext messages from
# Debian) through every phase with `xadapt run`: pretrain a tiny base, language adapters for en/de/fr,
# a task adapter on Stack(en, pkg), a fusion, and the eval table with all setups (Markdown, JSON,
# CSV, SVG). Then: a language-adapter run killed mid-way (kill -9 right after its first checkpoint)
# and resumed ends with the same adapter bytes as an uninterrupted run; predict over stdin, with
# --per-line-stack and --hidden-states; the per-class reports, predict's default seq_len and class
# weights (issue 16); recipe errors exit 2 with path:line:col.
# usage: test_recipe.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_recipe.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/recipe-$$
mkdir -p "$tmp"
[[ -n "${XA_KEEP_TMP:-}" ]] || trap 'rm -rf "$tmp"' EXIT
fails=0
recipe="$data/recipe/tiny.yaml"
out_dir="$tmp/run"
sets=(--set "output=$out_dir" --set "model.base=$out_dir/base")

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check_file() { [[ -s "$1" ]] || fail "missing $1"; }

# 1. every phase
if ! "$xa" run "$recipe" "${sets[@]}" >"$tmp/run.out" 2>"$tmp/run.err"; then
  fail "xadapt run: exit $?"; tail -20 "$tmp/run.err"
else
  echo "ok: xadapt run (every phase)"
fi
for f in resolved-pkg.yaml base/config.json base/model.safetensors base/sentencepiece.bpe.model \
         lang/en/adapter_config.json lang/de/adapter.safetensors lang/fr/adapter_config.json \
         task/pkg/seed3/final/adapter/adapter_config.json task/pkg/seed3/final/head/head_config.json \
         task/pkg/seed3/final/adapter_setup.json task/pkg/seed3/metrics.jsonl task/pkg/seed3/dev.json \
         fusion/pkg/seed3/final/fusion/adapter_fusion_config.json \
         eval/pkg/results.md eval/pkg/results.json eval/pkg/results.csv eval/pkg/results.svg eval/pkg/raw.jsonl eval/pkg/results_macro_f1.md eval/pkg/results_macro_f1.svg; do
  check_file "$out_dir/$f"
done
for s in "task adapter alone" "Stack(lang:src, task)" "MAD-X Stack(lang:tgt, task)" "MAD-X 2.0" "Fuse(langs)"; do
  grep -qF "$s" "$tmp/run.out" || fail "eval table lacks the setup '$s'"
done
for l in "en (src)" "de" "fr" "mean (targets)"; do
  grep -qF "| $l" "$tmp/run.out" || fail "eval table lacks the row '$l'"
done
grep -q "<svg" "$out_dir/eval/pkg/results.svg" || fail "results.svg is not an SVG"
# the held-out MLM table (data.mlm_heldout): every language scored alone and with its own adapter
# (targets also with the source adapter); on the adapters' own training text their loss is lower
check_file "$out_dir/eval/mlm/results.md"
grep -qF "held-out MLM" "$tmp/run.out" || fail "eval printed no held-out MLM table"
[[ $(grep -c '"setup"' "$out_dir/eval/mlm/raw.jsonl") == 8 ]] || fail "mlm raw.jsonl: expected 8 lines"
awk -F'"' '{ for (i = 1; i < NF; i++) { if ($i == "language") l = $(i + 2); if ($i == "setup") s = $(i + 2) }
             match($0, /"loss": [0-9.]+/); v = substr($0, RSTART + 8, RLENGTH - 8) + 0; loss[l, s] = v; langs[l] = 1 }
     END { for (l in langs) if (!(loss[l, "own"] < loss[l, "base"])) { print "not lower: " l; bad = 1 } exit bad }' \
  "$out_dir/eval/mlm/raw.jsonl" || fail "a language adapter did not lower the MLM loss on its own text"
# the pretraining loss fell
awk -F'"loss": ' 'NR==1{split($2,a,","); first=a[1]} {split($2,b,","); last=b[1]} END{exit !(last < first)}' \
  "$out_dir/base/metrics.jsonl" || fail "pretraining loss did not fall"

# 1a. the record of every run: typed metrics.jsonl rows, train.log and metrics.svg beside them,
# and the eval's results.md links every run's loss curves
for d in base lang/de task/pkg/seed3 fusion/pkg/seed3; do
  check_file "$out_dir/$d/train.log"
  head -c 5 "$out_dir/$d/metrics.svg" | grep -q "<svg" || fail "$d/metrics.svg is not an SVG"
  tail -c 7 "$out_dir/$d/metrics.svg" | grep -q "</svg>" || fail "$d/metrics.svg is cut"
  awk '!/"type": "(train|eval)", "phase": "[a-z]+", "step": [0-9]+, "time": [0-9.]+, / { bad = 1; print }
       END { exit bad }' "$out_dir/$d/metrics.jsonl" || fail "$d/metrics.jsonl: a row without type, phase, step or time"
  grep -q "finished at step" "$out_dir/$d/train.log" || fail "$d/train.log does not record the end of the run"
done
grep -q '"type": "eval", "phase": "task", .*"split": "dev", "metric": "accuracy", "value": ' \
  "$out_dir/task/pkg/seed3/metrics.jsonl" || fail "task metrics: no dev evaluation row naming its metric"
grep -qF "](../../lang/de/metrics.svg)" "$out_dir/eval/pkg/results.md" || fail "results.md does not link lang de's loss curves"
grep -qF "](../../task/pkg/seed3/metrics.svg)" "$out_dir/eval/pkg/results.md" || fail "results.md does not link the task run"
echo "ok: typed metrics rows, train.log and loss curves of every run, linked from results.md"

# 1b. the tagging task on the same output (base and language adapters reused)
if "$xa" run "$data/recipe/tiny-code.yaml" "${sets[@]}" >"$tmp/code.out" 2>"$tmp/code.err"; then
  grep -q "span F1" "$tmp/code.out" || fail "tagging eval: no span F1 table"
  check_file "$out_dir/eval/code/results.md"
  check_file "$out_dir/task/code/seed3/final/head/head_config.json"
  grep -q '"tagging"' "$out_dir/task/code/seed3/final/head/head_config.json" || fail "tagging head config"
  echo "ok: tagging task (CoNLL, BIO spans) on the shared output"
else
  fail "tagging recipe: exit $?"; tail -5 "$tmp/code.err"
fi

# 1c. two seeds: a second task adapter (seed 4), then the eval table has mean +- std per cell, and the
# "mean (targets)" row's spread is the std over seeds of each seed's mean over the targets
two=(--set "seeds=[3, 4]")
if "$xa" train "$recipe" "${sets[@]}" "${two[@]}" --phase task >"$tmp/seed4.out" 2>"$tmp/seed4.err" &&
   "$xa" eval "$recipe" "${sets[@]}" "${two[@]}" >"$tmp/eval2.out" 2>"$tmp/eval2.err"; then
  grep -q "seed 3: .*exists; skipped" "$tmp/seed4.out" || fail "two seeds: seed 3 was not reused"
  grep -F "| mean (targets)" "$tmp/eval2.out" | grep -qF "±" || fail "two seeds: the mean row has no spread"
  # expected std of the task-only target mean over seeds 3 and 4, from raw.jsonl
  want=$(awk -F'"' '/"setup": "task_only"/ && $4 != "en" {
           split($0, a, "\"seed\": "); split(a[2], b, ","); split($0, c, "\"accuracy\": "); split(c[2], d, ",");
           sum[b[1]] += d[1]; n[b[1]]++ }
         END { k = 0; for (s in sum) { m[k++] = sum[s] / n[s] }
               if (k != 2) { print "bad"; exit } mu = (m[0] + m[1]) / 2;
               printf "%.6f", sqrt(((m[0] - mu)^2 + (m[1] - mu)^2) / 1) }' "$out_dir/eval/pkg/raw.jsonl")
  # (a real CSV reader: setup names such as "Stack(lang:src, task)" are quoted and hold commas)
  got=$(python3 -c 'import csv, sys
rows = {r["language"]: r for r in csv.DictReader(open(sys.argv[1]))}
print(rows["mean (targets)"]["task adapter alone std"])' "$out_dir/eval/pkg/results.csv")
  awk -v w="$want" -v g="$got" 'BEGIN { exit !(w != "bad" && g != "" && (w - g < 1e-5 && g - w < 1e-5)) }' ||
    fail "two seeds: mean-row std $got, expected $want from raw.jsonl"
  echo "ok: two seeds: mean +- std per cell, target-mean spread over seeds ($got)"
else
  fail "two seeds: exit $?"; tail -5 "$tmp/seed4.err" "$tmp/eval2.err"
fi

# 1d. the base's cross-lingual objectives and the retrieval table: the pretraining metrics carry the
# alignment loss, which fell; the base retrieves held-out translations far above chance (1/80);
# unseen targets get their own group and mean rows
grep -q '"align_loss"' "$out_dir/base/metrics.jsonl" || fail "pretraining metrics lack align_loss"
awk -F'"align_loss": ' 'NR==1{split($2,a,","); first=a[1]} {split($2,b,","); last=b[1]} END{exit !(last < first - 0.3)}' \
  "$out_dir/base/metrics.jsonl" || fail "the alignment loss did not fall"
check_file "$out_dir/eval/retrieval/results.md"
grep -qF "cross-lingual retrieval" "$tmp/run.out" || fail "eval printed no retrieval table"
[[ $(grep -c '"setup"' "$out_dir/eval/retrieval/raw.jsonl") == 4 ]] || fail "retrieval raw.jsonl: expected 4 lines"
awk -F'"accuracy": ' '/"setup": "base"/ { split($2, a, ","); if (!(a[1] > 0.2)) bad = 1; n++ } END { exit bad || n != 2 }' \
  "$out_dir/eval/retrieval/raw.jsonl" || fail "retrieval accuracy of the base not far above chance"
# the mean row is the mean of the target rows (the retrieval table has no source row: a mean taken
# from row 1 on averaged fr with the mean row itself)
awk -F, '$1 == "de" { d = $2 } $1 == "fr" { f = $2 } $1 == "mean (targets)" { m = $2 }
         END { exit !(d != "" && f != "" && m - (d + f) / 2 < 1e-4 && (d + f) / 2 - m < 1e-4) }' \
  "$out_dir/eval/retrieval/results.csv" || fail "retrieval table: mean row is not the mean of de and fr"
"$xa" retrieval --base "$out_dir/base" --pairs "$data/recipe/retrieval/de.tsv" >"$tmp/ret.out" 2>"$tmp/ret.err" \
  || fail "xadapt retrieval: exit $?"
grep -q "accuracy@1" "$tmp/ret.out" || fail "xadapt retrieval printed no accuracy"
if "$xa" eval "$recipe" "${sets[@]}" --set "languages.unseen=[fr]" >"$tmp/unseen.out" 2>"$tmp/unseen.err"; then
  for l in "fr (unseen)" "mean (seen targets)" "mean (unseen targets)" "mean (targets)"; do
    grep -qF "| $l" "$tmp/unseen.out" || fail "unseen group: no row '$l'"
  done
  # the group means are the rows' values: de alone, fr alone
  awk -F, '$1 == "de" { d = $2 } $1 == "fr (unseen)" { f = $2 } $1 == "mean (seen targets)" { s = $2 }
           $1 == "mean (unseen targets)" { u = $2 } END { exit !(d == s && f == u && d != "") }' \
    "$out_dir/eval/pkg/results.csv" || fail "unseen group: mean rows differ from their rows"
else
  fail "eval with languages.unseen: exit $?"; tail -5 "$tmp/unseen.err"
fi
"$xa" eval "$recipe" "${sets[@]}" --set "languages.unseen=[km]" >/dev/null 2>"$tmp/unseen2.err"; rc=$?
[[ $rc -eq 2 ]] && grep -q "not a target" "$tmp/unseen2.err" || fail "unseen language that is not a target: exit $rc"
echo "ok: alignment in pretraining, retrieval table, unseen group rows"

# 2. a second run skips everything that exists
"$xa" run "$recipe" "${sets[@]}" >"$tmp/run2.out" 2>"$tmp/run2.err" || fail "second run: exit $?"
grep -q "skipped" "$tmp/run2.out" || fail "second run did not skip finished phases"

# 3. kill -9 a language-adapter run after its first checkpoint, resume, compare with the uninterrupted adapter
"$xa" train "$recipe" "${sets[@]}" --phase lang --lang de --force \
  --set "output=$tmp/killed" --set "model.base=$out_dir/base" >/dev/null 2>"$tmp/kill.err" &
pid=$!
for _ in $(seq 1 600); do
  [[ -f "$tmp/killed/lang/de/checkpoint/trainer_state.safetensors" ]] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [[ -f "$tmp/killed/lang/de/adapter_config.json" ]]; then
  echo "note: the run finished before the kill; the resume check is weaker"
fi
"$xa" train "$recipe" --set "output=$tmp/killed" --set "model.base=$out_dir/base" --phase lang --lang de \
  --quiet >/dev/null 2>"$tmp/resume.err" || fail "resume: exit $?"
if cmp -s "$tmp/killed/lang/de/adapter.safetensors" "$out_dir/lang/de/adapter.safetensors"; then
  echo "ok: killed + resumed language adapter is byte-identical to the uninterrupted one"
else
  fail "killed + resumed adapter differs from the uninterrupted one"
fi
# its metrics hold every window once, as the uninterrupted run's; --quiet printed no progress line
steps() { grep -o '"type": "train", "phase": "[a-z]*", "step": [0-9]*' "$1" | grep -o '[0-9]*$' | tr '\n' ' '; }
[[ "$(steps "$tmp/killed/lang/de/metrics.jsonl")" == "$(steps "$out_dir/lang/de/metrics.jsonl")" ]] ||
  fail "killed + resumed metrics rows: $(steps "$tmp/killed/lang/de/metrics.jsonl"), uninterrupted: $(steps "$out_dir/lang/de/metrics.jsonl")"
grep -q "100.0%\|resuming" "$tmp/resume.err" && fail "--quiet: progress or info lines on stderr: $(head -3 "$tmp/resume.err")"

# 4. predict
printf 'Unable to locate package %%s\nDie folgenden Pakete werden aktualisiert:\n' >"$tmp/in.txt"
if "$xa" predict --model "$out_dir" --stack lang:de,task:pkg --hidden-states "$tmp/h.safetensors" \
     <"$tmp/in.txt" >"$tmp/pred.out" 2>"$tmp/pred.err"; then
  [[ $(grep -c '"label": ' "$tmp/pred.out") -eq 2 ]] || fail "predict: expected 2 JSON lines with a label"
  "$xa" inspect "$tmp/h.safetensors" >"$tmp/h.txt" 2>&1 || fail "predict --hidden-states: not a safetensors file"
  grep -q "pooled" "$tmp/h.txt" || fail "hidden states lack the pooled vectors"
  echo "ok: predict with --stack and --hidden-states"
else
  fail "predict: exit $?"; cat "$tmp/pred.err"
fi
printf 'lang:de,task:pkg\tDie folgenden Pakete werden aktualisiert:\nlang:fr,task:pkg\tLes paquets suivants seront mis à jour :\ntask:pkg\tUnable to locate package\n' \
  | "$xa" predict --model "$out_dir" --per-line-stack >"$tmp/pl.out" 2>"$tmp/pl.err" || fail "predict --per-line-stack: exit $?"
[[ $(grep -c '"label": ' "$tmp/pl.out") -eq 3 ]] || { fail "predict --per-line-stack: expected 3 lines"; cat "$tmp/pl.err"; }

# 4a. setup directories both ways (issue 15): final/ also holds AdapterHub's save_adapter_setup
# layout, one directory per adapter of adapter_setup.json (the frozen language adapter too) and
# the head under its head_setup name, which is what load_adapter_setup(final/) opens: each
# flattened name -> final/<name>/ loaded with load_adapter; head_setup -> final/<name>/ with load_head.
fin=$out_dir/task/pkg/seed3/final
grep -q '"type": "single"' "$fin/adapter_setup.json" || fail "adapter_setup.json: no AdapterHub 'single' children"
for name in $(grep -o '"children": \[ *"[^"]*"' "$fin/adapter_setup.json" | sed 's/.*"\([^"]*\)"$/\1/'); do
  check_file "$fin/$name/adapter_config.json"
  grep -q "\"name\": \"$name\"" "$fin/$name/adapter_config.json" || fail "final/$name/ holds another adapter"
done
check_file "$fin/en/adapter.safetensors"
cmp -s "$fin/en/adapter.safetensors" "$out_dir/lang/en/adapter.safetensors" || fail "final/en/ is not the language adapter en"
head_name=$(sed -n 's/.*"head_setup": "\([^"]*\)".*/\1/p' "$fin/adapter_setup.json")
[[ -n "$head_name" ]] || fail "adapter_setup.json names no head_setup"
check_file "$fin/$head_name/head_config.json"
cmp -s "$fin/$head_name/model_head.safetensors" "$fin/head/model_head.safetensors" || fail "final/$head_name/ is not the head"
# xadapt reads it back: predict --setup-dir gives what --model --stack gives (Stack(en, pkg) both)
printf 'Unable to locate package %%s\nDie folgenden Pakete werden aktualisiert:\n' >"$tmp/in.txt"
"$xa" predict --model "$out_dir" --stack lang:en,task:pkg <"$tmp/in.txt" >"$tmp/sd-model.out" 2>"$tmp/sd.err" \
  || fail "predict --stack lang:en,task:pkg: exit $?"
if "$xa" predict --base "$out_dir/base" --setup-dir "$fin" <"$tmp/in.txt" >"$tmp/sd-dir.out" 2>"$tmp/sd.err"; then
  cmp -s "$tmp/sd-model.out" "$tmp/sd-dir.out" && echo "ok: predict --setup-dir final/ = predict --model --stack" \
    || fail "predict --setup-dir differs from --model --stack"
else
  fail "predict --setup-dir: exit $?"; cat "$tmp/sd.err"
fi
# the library's own layout without xadapt's adapter/ and head/: a copy of only what
# save_adapter_setup writes loads the same; the older xadapt layout (adapter/ + head/ only) needs
# the language adapter given with --adapter, and says so without it
mkdir -p "$tmp/hubsetup" "$tmp/oldfinal"
cp -r "$fin/adapter_setup.json" "$fin/en" "$fin/$head_name" "$tmp/hubsetup/"
"$xa" predict --base "$out_dir/base" --setup-dir "$tmp/hubsetup" <"$tmp/in.txt" >"$tmp/sd-hub.out" 2>"$tmp/sd.err" \
  && cmp -s "$tmp/sd-model.out" "$tmp/sd-hub.out" || { fail "predict --setup-dir on the AdapterHub layout alone"; cat "$tmp/sd.err"; }
cp -r "$fin/adapter_setup.json" "$fin/adapter" "$fin/head" "$tmp/oldfinal/"
"$xa" predict --base "$out_dir/base" --setup-dir "$tmp/oldfinal" <"$tmp/in.txt" >/dev/null 2>"$tmp/sd.err" \
  && fail "predict --setup-dir on an old final/ without the language adapter succeeded"
grep -q "adapter 'en' of the setup has no directory" "$tmp/sd.err" || { fail "old final/: no message naming 'en'"; cat "$tmp/sd.err"; }
"$xa" predict --base "$out_dir/base" --adapter "$out_dir/lang/en" --setup-dir "$tmp/oldfinal" <"$tmp/in.txt" \
  >"$tmp/sd-old.out" 2>"$tmp/sd.err" && cmp -s "$tmp/sd-model.out" "$tmp/sd-old.out" \
  || { fail "predict --adapter lang/en --setup-dir old final/"; cat "$tmp/sd.err"; }
"$xa" predict --base "$out_dir/base" --setup-dir "$fin" --setup "Stack(en, pkg)" </dev/null >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "--setup-dir with --setup: expected exit 2"
# 4c. error analysis (issue 16): eval writes the per-class reports; each agrees with its cell's
# raw.jsonl line; predict's default seq_len is the eval phase's, so its predictions on a test file
# give the eval's confusion matrix; a rerun reuses cells only with their reports; class weights
ev="$out_dir/eval/pkg"
for f in per_class.md per_class.json per_class.csv per_class.jsonl confusion.csv confusion_madx.svg \
         confusion_src_stack.svg; do
  check_file "$ev/$f"
done
grep -qF "## de" "$ev/per_class.md" && grep -qF "### de: MAD-X Stack(lang:tgt, task)" "$ev/per_class.md" &&
  grep -qF "### fr: Stack(lang:src, task)" "$ev/per_class.md" && grep -qF "| gold \\ predicted |" "$ev/per_class.md" ||
  fail "per_class.md lacks the per-language blocks or the confusion matrices"
grep -q "</svg>" "$ev/confusion_madx.svg" || fail "confusion_madx.svg is not a whole SVG"
grep -q "per-class report: " "$tmp/run2.out" || fail "eval did not print where the per-class report is"
[[ $(grep -c '"cell"' "$ev/per_class.jsonl") == $(grep -c '"cell"' "$ev/raw.jsonl") ]] ||
  fail "per_class.jsonl: not one report per raw.jsonl cell"
# joined on the cell id: accuracy = sum(correct) / sum(support), macro-F1 = mean F1 over the classes with support
awk 'function arr(name, out,    s) {
       if (!match($0, "\"" name "\":\\[[^]]*\\]")) return 0
       s = substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 5); return split(s, out, ",") }
     function str(name,    s) {
       if (!match($0, "\"" name "\": ?\"[^\"]*\"")) return ""
       s = substr($0, RSTART, RLENGTH); sub(/^"[^"]*": ?"/, "", s); sub(/"$/, "", s); return s }
     function num(name,    s) {
       if (!match($0, "\"" name "\": ?[-0-9.e]+")) return ""
       s = substr($0, RSTART, RLENGTH); sub(/^"[^"]*": ?/, "", s); return s + 0 }
     FNR == NR { acc[str("cell")] = num("accuracy"); mf1[str("cell")] = num("macro_f1"); next }
     { c = str("cell"); n = arr("support", sup); arr("correct", cor); arr("f1", f1)
       if (!(c in acc)) { print "no raw.jsonl line for cell " c; bad = 1; next }
       ts = 0; tc = 0; m = 0; k = 0
       for (i = 1; i <= n; i++) { ts += sup[i]; tc += cor[i]; if (sup[i] > 0) { m += f1[i]; k++ } }
       a = ts ? tc / ts : 0; m = k ? m / k : 0
       if (a - acc[c] > 1e-5 || acc[c] - a > 1e-5 || m - mf1[c] > 1e-5 || mf1[c] - m > 1e-5) {
         print "cell " c ": report accuracy " a ", macro-F1 " m "; raw.jsonl " acc[c] ", " mf1[c]; bad = 1 }
       cells++ }
     END { if (!cells) { print "no reports"; bad = 1 } exit bad }' "$ev/raw.jsonl" "$ev/per_class.jsonl" ||
  fail "per-class reports disagree with raw.jsonl"
# predict on de's test texts with the defaults: the eval phase's seq_len (48, not 256), and the
# confusion matrix of its labels against gold is the eval's MAD-X matrix for de
tail -n +2 "$data/recipe/pkg/de.test.tsv" | cut -f2 >"$tmp/de.txt"
tail -n +2 "$data/recipe/pkg/de.test.tsv" | cut -f1 >"$tmp/de.gold"
"$xa" predict --model "$out_dir" --stack lang:de,task:pkg <"$tmp/de.txt" >"$tmp/de.pred" 2>"$tmp/de.err" ||
  fail "predict on de.test: exit $?"
grep -q "seq_len 48 (phases.eval.seq_len of " "$tmp/de.err" || { fail "predict did not default to the eval's seq_len"; cat "$tmp/de.err"; }
sed 's/^{"label": "\([^"]*\)".*/\1/' "$tmp/de.pred" | paste -d, "$tmp/de.gold" - | sort | uniq -c |
  awk '{ split($2, a, ","); print a[1] "," a[2] "," $1 }' | sort >"$tmp/de.got"
grep -F 'de,"MAD-X Stack(lang:tgt, task)",3,' "$ev/confusion.csv" | cut -d, -f5- | awk -F, '$3 > 0' | sort >"$tmp/de.want"
if [[ -s "$tmp/de.want" ]] && cmp -s "$tmp/de.got" "$tmp/de.want"; then
  echo "ok: predict's default seq_len is the eval's: its labels give eval's confusion matrix for de"
else
  fail "predict's labels on de.test differ from eval's confusion matrix"; diff "$tmp/de.got" "$tmp/de.want" | head
fi
"$xa" predict --model "$out_dir" --stack lang:de,task:pkg --seq-len 256 <"$tmp/de.txt" >/dev/null 2>"$tmp/de256.err"
grep -q "seq_len 256 (--seq-len)" "$tmp/de256.err" || fail "an explicit --seq-len does not win"
run_dir="$out_dir/task/pkg/seed3/final"
echo "Die folgenden Pakete werden aktualisiert:" | "$xa" predict --base "$out_dir/base" --adapter "$out_dir/lang/de" \
  --adapter "$run_dir/adapter" --head "$run_dir/head" --setup "Stack(de, pkg)" >/dev/null 2>"$tmp/head.err" ||
  fail "predict --head: exit $?"
grep -q "seq_len 48 (seq_len of .*seed3/xadapt-provenance.txt)" "$tmp/head.err" ||
  { fail "predict --head did not take the training run's seq_len"; cat "$tmp/head.err"; }
# an eval set without per-class reports (written before they existed) is evaluated again, once
cp "$ev/per_class.jsonl" "$tmp/per_class.jsonl"
rm "$ev/per_class.jsonl"
"$xa" eval "$recipe" "${sets[@]}" >"$tmp/ev3.out" 2>"$tmp/ev3.err" || fail "eval without per_class.jsonl: exit $?"
grep -q "eval: 0 cells reused, 15 computed (pkg)" "$tmp/ev3.out" || fail "cells without reports were reused"
"$xa" eval "$recipe" "${sets[@]}" >"$tmp/ev4.out" 2>"$tmp/ev4.err" || fail "eval rerun: exit $?"
grep -q "eval: 15 cells reused, 0 computed (pkg)" "$tmp/ev4.out" || fail "cells with reports were not reused"
cmp -s "$tmp/per_class.jsonl" "$ev/per_class.jsonl" || fail "recomputed or reused reports differ from the first"
# class weights: balanced weights are logged and recorded in the provenance, the head differs;
# a list of the wrong length is a recipe error naming the labels in order
cw="$tmp/cw"
cp -r "$out_dir" "$cw"
cws=(--set "output=$cw" --set "model.base=$cw/base")
if "$xa" train "$recipe" "${cws[@]}" --set phases.task.class_weights=balanced --phase task --force \
     >"$tmp/cw.out" 2>"$tmp/cw.err"; then
  grep -q "pkg: class weights (balanced): apt [0-9.]*, coreutils" "$tmp/cw.err" || fail "class weights not logged"
  grep -q "^class_weights: balanced$" "$cw/task/pkg/seed3/xadapt-provenance.txt" || fail "class weights not in the provenance"
  cmp -s "$cw/task/pkg/seed3/final/head/model_head.safetensors" "$run_dir/head/model_head.safetensors" &&
    fail "balanced class weights left the head unchanged"
  echo "ok: class_weights: balanced trains a different head, logged and in the provenance"
else
  fail "train with class_weights: exit $?"; tail -5 "$tmp/cw.err"
fi
"$xa" train "$recipe" "${cws[@]}" --set "phases.task.class_weights=[1, 2]" --phase task --force >/dev/null 2>"$tmp/cw2.err"; rc=$?
[[ $rc -eq 2 ]] && grep -q "apt, coreutils, git, gtk30" "$tmp/cw2.err" ||
  { fail "class_weights of the wrong length: exit $rc"; cat "$tmp/cw2.err"; }
rm -rf "$cw"

# 4b. inputs that once aborted or printed invalid JSON (issue 14)
printf 'Z\xfcrich caf\xc3\xa9 \xff\xfe ok\n' \
  | "$xa" predict --model "$out_dir" --stack lang:de,task:code >"$tmp/u8.out" 2>"$tmp/u8.err" || fail "predict on invalid UTF-8: exit $?"
/usr/bin/python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]' "$tmp/u8.out" \
  || { fail "predict on invalid UTF-8: the output is not UTF-8 JSON"; cat "$tmp/u8.out"; }
grep -q '"caf' "$tmp/u8.out" || fail "predict on invalid UTF-8: valid words lost"
cp -r "$out_dir" "$tmp/nolabel"
/usr/bin/python3 - "$tmp/nolabel/task/pkg/seed3/final/head/head_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
del c["config"]["label2id"]
json.dump(c, open(sys.argv[1], "w"))
PY
"$xa" eval "$recipe" --set "output=$tmp/nolabel" --set "model.base=$tmp/nolabel/base" \
  --set "phases.eval.setups=[task_only]" >/dev/null 2>"$tmp/nolabel.err"; rc=$?
[[ $rc -eq 2 ]] || { fail "eval with a head without label2id: exit $rc, expected 2"; tail -5 "$tmp/nolabel.err"; }
grep -q "label2id" "$tmp/nolabel.err" || { fail "eval with a head without label2id: message"; tail -5 "$tmp/nolabel.err"; }
rm -rf "$tmp/nolabel"

# 5. recipe errors: exit 2, path:line:col
printf 'name: x\noutput: o\nmodel: {base: b}\nlanguages: {source: en}\nphases:\n  - lang: {steps: 10, batchsize: 4}\n' >"$tmp/bad.yaml"
"$xa" train "$tmp/bad.yaml" --phase lang >/dev/null 2>"$tmp/bad.err"; rc=$?
[[ $rc -eq 2 ]] || fail "bad recipe: exit $rc, expected 2"
grep -q "bad.yaml:6:" "$tmp/bad.err" || { fail "bad recipe: no path:line:col"; cat "$tmp/bad.err"; }
grep -q "batch_size" "$tmp/bad.err" || fail "bad recipe: no did-you-mean"
"$xa" eval "$recipe" "${sets[@]}" --set "phases.task.lr=-1" >/dev/null 2>"$tmp/bad2.err"; rc=$?
[[ $rc -eq 2 ]] || fail "--set with a bad value: exit $rc, expected 2"
mkdir -p "$tmp/foreign" && cp "$data/encoder/xlmr/config.json" "$data/encoder/xlmr/model.safetensors" "$tmp/foreign/"
"$xa" train "$recipe" --set "output=$tmp/f" --set "model.base=$tmp/foreign" --phase pretrain >/dev/null 2>"$tmp/foreign.err"; rc=$?
[[ $rc -eq 2 ]] || fail "pretrain over a foreign base: exit $rc, expected 2"
grep -q "did not make" "$tmp/foreign.err" || { fail "pretrain over a foreign base: message"; cat "$tmp/foreign.err"; }
# --quiet: the tables print, the per-cell lines (progress) do not; the eval is computed again
cp -r "$out_dir" "$tmp/quiet" && rm -rf "$tmp/quiet/eval"
if "$xa" eval "$recipe" --set "output=$tmp/quiet" --set "model.base=$tmp/quiet/base" -q >"$tmp/quiet.out" 2>"$tmp/quiet.err"; then
  grep -qF "MAD-X Stack(lang:tgt, task)" "$tmp/quiet.out" || fail "eval -q printed no table"
  grep -q "eval: 0 cells reused, [1-9][0-9]* computed (pkg)" "$tmp/quiet.out" || fail "eval -q did not compute the cells"
  grep -q "^eval: " "$tmp/quiet.err" && { fail "eval -q printed per-cell lines:"; head -3 "$tmp/quiet.err"; }
  grep -q "^eval: .* seed 3: " "$tmp/run.err" || fail "eval without -q printed no per-cell line (the -q check proves nothing)"
else
  fail "eval -q: exit $?"; tail -5 "$tmp/quiet.err"
fi
for cmd in train run eval predict; do
  "$xa" $cmd --help | grep -q "usage: xadapt $cmd" || fail "$cmd --help"
done

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all recipe tests passed"
