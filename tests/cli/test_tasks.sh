#!/usr/bin/env bash
# End-to-end test of the issue-16 task types through recipes: sentence-pair classification
# (tests/data/recipe/tiny-pair.yaml: a tiny base, en/de/fr language adapters, a task adapter on
# Stack(en, pairtask) from a TSV pair file, dev/test JSON lines with mapped keys and integer labels)
# and multiple choice (tiny-copa.yaml: COPA JSON lines, AdapterHub's multiple_choice head, on the
# same output) and extractive question answering (tiny-qa.yaml: SQuAD JSON / HF JSON lines, windows
# with a stride, AdapterHub's question_answering head). Each trains, evaluates zero-shot on de/fr
# (accuracy; macro-F1 for pairs; SQuAD exact match and F1 for QA) and saves its head in AdapterHub's
# format; predict answers COPA and QA JSON lines as eval scores them (SQuAD 2.0's null answer too).
# Fixtures: tests/golden/gen_task_fixtures.py and gen_qa_fixtures.py (real gettext text).
# usage: test_tasks.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_tasks.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/tasks-$$
mkdir -p "$tmp"
[[ -n "${XA_KEEP_TMP:-}" ]] || trap 'rm -rf "$tmp"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"
out_dir="$tmp/run"
sets=(--set "output=$out_dir" --set "model.base=$out_dir/base")
check_file() { [[ -s "$1" ]] || { echo "FAIL: missing $1"; fails=$((fails + 1)); }; }

# 1. sentence pairs: every phase, the eval tables, the head
if expect 0 "pair_classification recipe runs" -- "$xa" run "$data/recipe/tiny-pair.yaml" "${sets[@]}"; then
  contains "$out" "pairtask: accuracy" "pair eval: accuracy table"
  contains "$out" "macro-F1" "pair eval: macro-F1 table"
  contains "$out" "| de" "pair eval: de row"
  contains "$out" "| fr" "pair eval: fr row"
  check_file "$out_dir/eval/pairtask/results.md"
  check_file "$out_dir/eval/pairtask/results_macro_f1.md"
  hc="$out_dir/task/pairtask/seed3/final/head/head_config.json"
  check_file "$hc"
  contains "$(cat "$hc")" '"head_type": "classification"' "pair head is a classification head"
  contains "$(cat "$hc")" '"aligned": 0' "pair head names the recipe's labels in their order"
  contains "$(cat "$out_dir/resolved-pairtask.yaml")" 'type: pair_classification' "resolved recipe keeps the type"
  contains "$(cat "$out_dir/resolved-pairtask.yaml")" 'text_pair: "hypothesis"' "resolved recipe keeps the fields"
  awk -F'"loss": ' '/"type": "train"/ {split($2,a,","); if (!n++) first=a[1]; last=a[1]} END{exit !(n > 1 && last < first)}' \
    "$out_dir/task/pairtask/seed3/metrics.jsonl" || { echo "FAIL: pair task loss did not fall"; fails=$((fails + 1)); }
fi

# 1a. predict reads TEXT<TAB>TEXT_PAIR lines for a pair_classification recipe
stdin="$tmp/pairs.in"
printf 'Drucker nicht bereit\tprinter not ready\n' >"$stdin"
if expect 0 "predict on a sentence pair" -- "$xa" predict --model "$out_dir" --stack lang:de,task:pairtask; then
  contains "$out" '"probs": {"aligned": ' "pair prediction names the labels"
fi
# --model takes the recipe's pair type: the same as the setup directory (Stack(en, pairtask)) with --pair
if expect 0 "predict --model on a pair, lang:en" -- "$xa" predict --model "$out_dir" --stack lang:en,task:pairtask; then
  by_model=$out
  if expect 0 "predict --setup-dir --pair" -- "$xa" predict --base "$out_dir/base" \
      --setup-dir "$out_dir/task/pairtask/seed3/final" --pair; then
    [[ "$out" == "$by_model" ]] || { echo "FAIL: --model pair line [$by_model] != --pair [$out]"; fails=$((fails + 1)); }
  fi
  # --ids: the same pair as token ids, <s> A </s></s> B </s>; softmax of the raw logits = the probs
  tok="$out_dir/base/sentencepiece.bpe.model"
  a=$("$xa" tokenizer encode --model "$tok" --xlmr "Drucker nicht bereit")
  b=$("$xa" tokenizer encode --model "$tok" --xlmr "printer not ready")
  printf '%s 2%s\n' "${a}" "${b#0}" >"$tmp/pair.ids"
  stdin="$tmp/pair.ids"
  if expect 0 "predict --ids on a pair" -- "$xa" predict --base "$out_dir/base" --ids \
      --setup-dir "$out_dir/task/pairtask/seed3/final"; then
    probs=$(tr -d '{}[]",' <<<"$out" | awk '{e0 = exp($2 - $3); printf "%.4f %.4f", e0 / (e0 + 1), 1 / (e0 + 1)}')
    want=$(sed 's/.*"aligned": \([0-9.]*\), "unaligned": \([0-9.]*\).*/\1 \2/' <<<"$by_model")
    [[ "$probs" == "$want" ]] || { echo "FAIL: softmax of --ids logits [$probs] != text probs [$want] ($out)"; fails=$((fails + 1)); }
  fi
fi
unset stdin
# --ids errors: text, an id past the vocabulary, two rows for a classification head: exit 2
for bad in "0 hello 2" "0 99999999 2" "0 5 2 | 0 6 2"; do
  printf '%s\n' "$bad" >"$tmp/bad.ids"
  stdin="$tmp/bad.ids"
  expect 2 "predict --ids refuses '$bad'" -- "$xa" predict --base "$out_dir/base" --ids \
    --setup-dir "$out_dir/task/pairtask/seed3/final"
  contains "$err" "line 1" "--ids error names the line ('$bad')"
done
unset stdin

# 2. multiple choice on the same output (base and language adapters reused)
if expect 0 "multiple_choice recipe runs" -- "$xa" run "$data/recipe/tiny-copa.yaml" "${sets[@]}"; then
  contains "$out" "copa: accuracy" "copa eval: accuracy table"
  contains "$out" "| fr" "copa eval: fr row"
  check_file "$out_dir/eval/copa/results.md"
  hc="$out_dir/task/copa/seed3/final/head/head_config.json"
  check_file "$hc"
  contains "$(cat "$hc")" '"head_type": "multiple_choice"' "copa head type"
  contains "$(cat "$hc")" '"num_choices": 2' "copa head num_choices"
  if grep -q '"num_labels"\|"bias"' "$hc"; then echo "FAIL: multiple_choice head_config.json has num_labels or bias"; fails=$((fails + 1)); fi
  awk -F'"loss": ' '/"type": "train"/ {split($2,a,","); if (!n++) first=a[1]; last=a[1]} END{exit !(n > 1 && last < first)}' \
    "$out_dir/task/copa/seed3/metrics.jsonl" || { echo "FAIL: copa task loss did not fall"; fails=$((fails + 1)); }
fi
# 2b. predict reads COPA JSON lines (labels optional): one {"choice", "probs"} per line, and its
# accuracy on the de test file is eval's madx de accuracy (the same encoding and head)
stdin="$data/recipe/copa/de.test.jsonl"
if expect 0 "predict on COPA lines" -- "$xa" predict --model "$out_dir" --stack lang:de,task:copa; then
  [[ $(printf '%s\n' "$out" | grep -c '^{"choice": [01], "probs": \[0\.[0-9]*, 0\.[0-9]*\]}$') -eq $(wc -l <"$stdin") ]] ||
    { echo "FAIL: predict: not one {choice, probs} line per COPA line"; fails=$((fails + 1)); }
  acc=$(paste -d'\t' <(printf '%s\n' "$out") "$stdin" | awk -F'\t' '{ match($1, /"choice": [0-9]+/); c = substr($1, RSTART + 10, RLENGTH - 10)
        match($2, /"label": [0-9]+/); l = substr($2, RSTART + 9, RLENGTH - 9); n++; ok += (c == l) } END { printf "%.6f", ok / n }')
  contains "$(grep '"language": "de", "setup": "madx"' "$out_dir/eval/copa/raw.jsonl")" "\"accuracy\": $acc," \
    "predict's accuracy ($acc) is eval's madx de accuracy"
fi
stdin="$tmp/mc.in"
printf '%s\n' '{"premise": "Datei nicht gefunden", "choice1": "file not found"}' >"$stdin"
expect 2 "a COPA line without choice2" -- "$xa" predict --model "$out_dir" --stack lang:de,task:copa
contains "$err" 'stdin line 1:1: no "choice2" key' "predict names the line and the missing key"
# --ids scores a multiple-choice example: one row per choice, one score per choice
printf '0 5 6 2 2 7 2 | 0 5 6 2 2 8 9 2\n0 5 2\n' >"$tmp/mc.ids"
stdin="$tmp/mc.ids"
expect 2 "predict --ids: a multiple-choice line needs a row per choice" -- "$xa" predict --base "$out_dir/base" \
  --ids --setup-dir "$out_dir/task/copa/seed3/final"
contains "$out" '{"logits": [[' "multiple-choice --ids: the first line is scored"
[[ $(grep -o '\[\[[^]]*\]\]' <<<"$out" | tr -cd ',' | wc -c) -eq 1 ]] ||
  { echo "FAIL: multiple-choice --ids: not 2 scores: $out"; fails=$((fails + 1)); }
contains "$err" "line 2: 1 row(s), the head has 2 choices" "multiple-choice --ids row count"
unset stdin

# 2a. extractive question answering on the same output: SQuAD JSON training file, HF JSON lines
# dev/test, contexts longer than seq_len (windows with doc_stride), EM / F1 per language
if expect 0 "question_answering recipe runs" -- "$xa" run "$data/recipe/tiny-qa.yaml" "${sets[@]}"; then
  contains "$out" "qa: F1 (SQuAD)" "qa eval: F1 table"
  contains "$out" "qa: exact match (SQuAD)" "qa eval: exact-match table"
  contains "$out" "| de" "qa eval: de row"
  contains "$out" "| fr" "qa eval: fr row"
  check_file "$out_dir/eval/qa/results.md"
  check_file "$out_dir/eval/qa/results_exact_match.md"
  contains "$(cat "$out_dir/eval/qa/raw.jsonl")" '"exact_match": ' "qa raw rows hold exact_match"
  contains "$(cat "$out_dir/eval/qa/results.json")" '"f1"' "qa results name f1"
  hc="$out_dir/task/qa/seed3/final/head/head_config.json"
  check_file "$hc"
  # exactly QuestionAnsweringHead's constructor keys (adapters 1.2.0), label2id null (id2label None)
  keys=$(grep -o '^    "[a-z_0-9]*"' "$hc" | tr -d ' "' | sort | paste -sd, -)
  [[ "$keys" == "activation_function,dropout_prob,head_type,label2id,layers,num_labels" ]] ||
    { echo "FAIL: qa head_config.json keys [$keys]"; fails=$((fails + 1)); }
  contains "$(cat "$hc")" '"head_type": "question_answering"' "qa head type"
  contains "$(cat "$hc")" '"num_labels": 2' "qa head num_labels"
  contains "$(cat "$hc")" '"label2id": null' "qa head label2id null"
  contains "$(cat "$out_dir/resolved-qa.yaml")" 'doc_stride: 16' "resolved recipe keeps doc_stride"
  contains "$(cat "$out_dir/resolved-qa.yaml")" 'max_answer_length: 8' "resolved recipe keeps max_answer_length"
  m="$out_dir/task/qa/seed3/metrics.jsonl"
  awk -F'"loss": ' '/"type": "train"/ {split($2,a,","); if (!n++) first=a[1]; last=a[1]} END{exit !(n > 1 && last < first)}' \
    "$m" || { echo "FAIL: qa task loss did not fall"; fails=$((fails + 1)); }
  contains "$(grep '"type": "eval"' "$m" | tail -1)" '"metric": "f1"' "qa dev rows select by f1"
  contains "$(grep '"type": "eval"' "$m" | tail -1)" '"exact_match": ' "qa dev rows hold exact_match"
fi
# 2b. predict answers HF JSON lines questions with eval's windows and postprocessing: one
# {"id", "answer", "start", "score", "windows"} per line; a verbatim gold answer is an exact match,
# so there are no more of them than eval's madx en exact matches
stdin="$data/recipe/qa/en.test.jsonl"
nq=$(wc -l <"$stdin")
if expect 0 "predict on QA lines" -- "$xa" predict --model "$out_dir" --stack lang:en,task:qa; then
  v1=$out
  [[ $(printf '%s\n' "$out" | grep -c '^{"id": "test-[0-9-]*", "answer": ".*", "start": [0-9]*, "score": -\?[0-9.]*, "windows": [1-9][0-9]*}$') -eq $nq ]] ||
    { echo "FAIL: predict: not one answer line per question"; fails=$((fails + 1)); }
  verbatim=$(paste -d'\t' <(printf '%s\n' "$out") "$stdin" | awk -F'\t' '{ match($1, /"answer": "[^"]*"/); a = substr($1, RSTART + 11, RLENGTH - 12)
             match($2, /"text": \["[^"]*"/); g = substr($2, RSTART + 10, RLENGTH - 11); ok += (a == g) } END { print ok + 0 }')
  em=$(grep '"language": "en", "setup": "madx"' "$out_dir/eval/qa/raw.jsonl" | sed 's/.*"exact_match": \([0-9.]*\).*/\1/')
  awk -v v="$verbatim" -v em="$em" -v n="$nq" 'BEGIN { exit !(v <= em * n + 1e-6) }' ||
    { echo "FAIL: predict: $verbatim verbatim answers, eval's exact match $em of $nq"; fails=$((fails + 1)); }
  # SQuAD 2.0: a threshold no null score reaches changes nothing; one every null score passes
  # makes every answer the null answer
  if expect 0 "predict QA, SQuAD 2.0, threshold 1e6" -- "$xa" predict --model "$out_dir" --stack lang:en,task:qa \
    --version-2-with-negative --null-score-diff-threshold 1e6; then
    [[ "$out" == "$v1" ]] || { echo "FAIL: a threshold of 1e6 changed predict's answers"; fails=$((fails + 1)); }
  fi
  if expect 0 "predict QA, SQuAD 2.0, threshold -1e6" -- "$xa" predict --model "$out_dir" --stack lang:en,task:qa \
    --version-2-with-negative --null-score-diff-threshold -1e6; then
    [[ $(printf '%s\n' "$out" | grep -c '"answer": "", "start": null') -eq $nq ]] ||
      { echo "FAIL: a threshold of -1e6 left answers that are not null"; fails=$((fails + 1)); }
  fi
fi
expect 2 "--null-score-diff-threshold without SQuAD 2.0" -- "$xa" predict --model "$out_dir" --stack lang:en,task:qa \
  --null-score-diff-threshold 1
contains "$err" "version-2-with-negative" "the threshold names the switch it needs"
stdin="$tmp/qa.in"
printf '%s\n%s\n' '{"question": "Was?", "context": "Kann Dateien nicht umleiten."}' '{"question": "Was?"}' >"$stdin"
expect 2 "a QA line without a context" -- "$xa" predict --model "$out_dir" --stack lang:de,task:qa
contains "$out" '"id": "", "answer": ' "the first line is answered before the bad one"
contains "$err" 'stdin line 2:1' "predict names the bad line"
contains "$err" 'context' "predict names the missing key"
# --ids gives the start and end logits of every token
printf '0 5 6 2 2 7 8 9 2\n' >"$tmp/qa.ids"
stdin="$tmp/qa.ids"
if expect 0 "predict --ids with a question-answering head" -- "$xa" predict --base "$out_dir/base" --ids \
    --setup-dir "$out_dir/task/qa/seed3/final"; then
  [[ $(grep -o '\[[^][]*\]' <<<"$out" | wc -l) -eq 9 ]] || { echo "FAIL: qa --ids: not 9 rows: $out"; fails=$((fails + 1)); }
  [[ $(grep -o '\[[^][]*\]' <<<"$out" | head -1 | tr -cd ',' | wc -c) -eq 1 ]] ||
    { echo "FAIL: qa --ids: rows are not (start, end): $out"; fails=$((fails + 1)); }
fi
unset stdin
# the eval phase with SQuAD 2.0 (keys set on the command line): a threshold every null score
# passes answers "" everywhere, so no answerable question of the fixtures is matched; the task is
# retrained (--force task: the key changes dev selection, so the trained task is stale) and both are recorded
if expect 0 "question_answering with version_2_with_negative" -- "$xa" run "$data/recipe/tiny-qa.yaml" "${sets[@]}" \
  --set data.task.version_2_with_negative=true --set data.task.null_score_diff_threshold=-1e6 --force task; then
  contains "$(grep '"language": "en", "setup": "madx"' "$out_dir/eval/qa/raw.jsonl")" '"exact_match": 0.000000, "f1": 0.000000' \
    "SQuAD 2.0 eval: every answer null"
  contains "$(cat "$out_dir/resolved-qa.yaml")" 'version_2_with_negative: true' "resolved recipe keeps version_2_with_negative"
  contains "$(cat "$out_dir/task/qa/seed3/xadapt-provenance.txt")" 'version_2_with_negative: true' "task provenance records it"
fi
# the answer decoding scores the dev set that picks the best weights: another n_best_size or
# max_answer_length over the trained task is stale (exit 2, the key named), not reused
v2=(--set data.task.version_2_with_negative=true --set data.task.null_score_diff_threshold=-1e6)
expect 2 "QA n_best_size changed over a trained task: stale" -- "$xa" run "$data/recipe/tiny-qa.yaml" "${sets[@]}" "${v2[@]}" \
  --set data.task.n_best_size=5
contains "$err" "n_best_size: was '(none)', now '5'" "n_best_size stale reason"
expect 2 "QA max_answer_length changed over a trained task: stale" -- "$xa" run "$data/recipe/tiny-qa.yaml" "${sets[@]}" "${v2[@]}" \
  --set data.task.max_answer_length=12
contains "$err" "max_answer_length: was '8', now '12'" "max_answer_length stale reason"
# a QA-only key on another task type, and a classification metric for QA: exit 2
cat >"$tmp/bad3.yaml" <<YAML
extends: $data/recipe/tiny-pair.yaml
data:
  task:
    doc_stride: 16
YAML
expect 2 "doc_stride outside question answering" -- "$xa" run "$tmp/bad3.yaml" "${sets[@]}" --dry-run
contains "$err" "question_answering keys" "doc_stride hint"
cat >"$tmp/bad4.yaml" <<YAML
extends: $data/recipe/tiny-qa.yaml
phases:
  - task: {steps: 1, metric_for_best_model: accuracy}
YAML
expect 2 "accuracy for question answering" -- "$xa" run "$tmp/bad4.yaml" "${sets[@]}" --dry-run
contains "$err" "f1, exact_match or loss" "QA metric list"
cat >"$tmp/bad5.yaml" <<YAML
extends: $data/recipe/tiny-qa.yaml
data:
  task:
    null_score_diff_threshold: 0.5
YAML
expect 2 "null_score_diff_threshold without version_2_with_negative" -- "$xa" run "$tmp/bad5.yaml" "${sets[@]}" --dry-run
contains "$err" "bad5.yaml:4" "threshold position"
contains "$err" "version_2_with_negative: true" "threshold hint"
cat >"$tmp/bad6.yaml" <<YAML
extends: $data/recipe/tiny-copa.yaml
data:
  task:
    version_2_with_negative: true
YAML
expect 2 "version_2_with_negative outside question answering" -- "$xa" run "$tmp/bad6.yaml" "${sets[@]}" --dry-run
contains "$err" "question_answering key" "version_2_with_negative hint"

# 3. recipe errors: a bad type and a bad field key exit 2 with the recipe position
cat >"$tmp/bad.yaml" <<YAML
extends: $data/recipe/tiny-pair.yaml
data:
  task:
    type: pair_clasification
YAML
expect 2 "misspelled task type" -- "$xa" run "$tmp/bad.yaml" "${sets[@]}" --dry-run
contains "$err" "did you mean 'pair_classification'" "task type hint"
cat >"$tmp/bad2.yaml" <<YAML
extends: $data/recipe/tiny-pair.yaml
data:
  task:
    fields: {txt: premise}
YAML
expect 2 "unknown field key" -- "$xa" run "$tmp/bad2.yaml" "${sets[@]}" --dry-run
contains "$err" "bad2.yaml:4" "field key position"

[[ $fails -eq 0 ]] || { echo "$fails failure(s)"; exit 1; }
echo "all task-type checks passed"
