#!/usr/bin/env bash
# grad_accum through the CLI on the tiny recipe (the numerics are tests/test_accum.c's):
#  - bad values exit 2 with file:line:col before anything trains: 0, a value that does not divide
#    batch_size (the step's batch), and HF's gradient_accumulation_steps answered with xadapt's key;
#  - a language adapter with grad_accum 4 (dropout on) killed with SIGKILL at random moments and
#    resumed ends with the bytes of an uninterrupted grad_accum 4 run, and its metrics rows count
#    optimizer steps (30 steps: the same rows as grad_accum 1);
#  - grad_accum 4 is a provenance line (grad_accum 1 writes none), so the grad_accum 1 recipe finds
#    the output stale (exit 2) instead of reusing it; the task phase trains with it too;
#  - grad_accum 4 with gradient_checkpointing gives the bytes of grad_accum 4 without it.
# usage: test_accum.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_accum.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/accum-$$
mkdir -p "$tmp"
[[ -n "${XA_KEEP_TMP:-}" ]] || trap 'rm -rf "$tmp"' EXIT
fails=0
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
recipe="$data/recipe/tiny.yaml"
common=(--set "model.base=$tmp/base" --set phases.pretrain.steps=20 -j 1 -q)
at() { echo --set "output=$tmp/$1"; }

# ---- errors: exit 2 before anything trains ----
expect 2 "grad_accum 0 is a config error" -- "$xa" train "$recipe" $(at e1) "${common[@]}" --phase lang --set phases.lang.grad_accum=0
contains "$err" "an integer >= 1 that divides batch_size" "grad_accum 0 message"
expect 2 "grad_accum 3 with batch_size 8 is a config error" -- \
  "$xa" train "$recipe" $(at e2) "${common[@]}" --phase lang --set phases.lang.grad_accum=3
contains "$err" "'phases[1].lang.grad_accum' is 3, which does not divide batch_size 8" "non-divisor message"
contains "$err" "micro-batches of batch_size / grad_accum rows" "non-divisor hint"
contains "$err" "--set 'phases.lang.grad_accum=3'" "a --set value is named by its option"
printf 'extends: %s\nphases:\n  - lang: {steps: 4, batch_size: 12, grad_accum: 5}\n' "$(cd "$data/recipe" && pwd)/tiny.yaml" >"$tmp/bad.yaml"
expect 2 "grad_accum 5 with batch_size 12 in a recipe file" -- "$xa" train "$tmp/bad.yaml" $(at e4) --phase lang
contains "$err" "bad.yaml:3:50: 'phases[0].lang.grad_accum' is 5, which does not divide batch_size 12" "file:line:col"
expect 2 "HF's gradient_accumulation_steps is answered with grad_accum" -- \
  "$xa" train "$recipe" $(at e3) "${common[@]}" --phase task --set phases.task.gradient_accumulation_steps=4
contains "$err" "xadapt's key is 'grad_accum'" "HF name hint"
[[ ! -e "$tmp/e1" && ! -e "$tmp/e2" && ! -e "$tmp/e3" && ! -e "$tmp/e4" ]] || fail "an error run wrote outputs"

# ---- a small base, then the uninterrupted grad_accum 4 language adapter ----
expect 0 "pretrain a small base" -- "$xa" train "$recipe" $(at ref) "${common[@]}" --phase pretrain
lang=(--phase lang --lang de --set phases.lang.ckpt_every=2)
expect 0 "lang de, grad_accum 4" -- "$xa" train "$recipe" $(at ref) "${common[@]}" "${lang[@]}" --set phases.lang.grad_accum=4
ref="$tmp/ref/lang/de"
grep -q '^grad_accum: 4$' "$ref/xadapt-provenance.txt" || fail "provenance lacks 'grad_accum: 4'"
rows() { grep -c '"type": "train"' "$1"; }
[[ $(rows "$ref/metrics.jsonl") == 3 ]] || fail "metrics rows: $(rows "$ref/metrics.jsonl"), expected 3 windows of 10 optimizer steps"
grep -q '"step": 30,' "$ref/metrics.jsonl" || fail "the last row is not step 30"
expect 0 "lang de, grad_accum 1" -- "$xa" train "$recipe" $(at one) "${common[@]}" "${lang[@]}"
grep -q '^grad_accum' "$tmp/one/lang/de/xadapt-provenance.txt" && fail "grad_accum 1 writes a provenance line (older outputs would go stale)"
[[ $(rows "$tmp/one/lang/de/metrics.jsonl") == 3 ]] || fail "grad_accum 1 metrics rows differ in number"

# ---- with activation recomputation: the bytes of grad_accum 4 without it (micro-batches lay their
#      masks at their rows; the recomputed layers redraw them there: both at once) ----
expect 0 "lang de, grad_accum 4, gradient_checkpointing" -- "$xa" train "$recipe" $(at gc) "${common[@]}" "${lang[@]}" \
  --set phases.lang.grad_accum=4 --set phases.lang.gradient_checkpointing=true
cmp -s "$ref/adapter.safetensors" "$tmp/gc/lang/de/adapter.safetensors" ||
  fail "grad_accum 4 with gradient_checkpointing differs from grad_accum 4 without it"

# ---- killed at random moments and resumed: the uninterrupted run's bytes ----
rm -rf "$tmp/k"   # the same base ($tmp/base) as the reference
kills=0
for ((i = 0; i < 4; i++)); do
  XA_TEST_CKPT_SLEEP_MS=20 "$xa" train "$recipe" $(at k) "${common[@]}" "${lang[@]}" --set phases.lang.grad_accum=4 >/dev/null 2>>"$tmp/k.err" &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 700 + 100)))"
  kill -9 $pid 2>/dev/null && kills=$((kills + 1)); wait $pid 2>/dev/null
done
expect 0 "the killed run resumes to the end" -- "$xa" train "$recipe" $(at k) "${common[@]}" "${lang[@]}" \
  --set phases.lang.grad_accum=4
cmp -s "$tmp/k/lang/de/adapter.safetensors" "$ref/adapter.safetensors" \
  && echo "ok: after $kills kill(s), the resumed adapter has the uninterrupted run's bytes" \
  || fail "the resumed grad_accum 4 adapter differs from the uninterrupted one"
[[ $(rows "$tmp/k/lang/de/metrics.jsonl") == 3 ]] || fail "resumed metrics rows: $(rows "$tmp/k/lang/de/metrics.jsonl")"

# ---- grad_accum back to 1 over the grad_accum 4 output: stale, not reused ----
expect 2 "grad_accum 1 over a grad_accum 4 output: stale" -- "$xa" train "$recipe" $(at ref) "${common[@]}" "${lang[@]}"
contains "$err" "grad_accum: was '4', now (not set)" "stale reason"

# ---- the task phase with grad_accum (batch 16 in 4 x 4) ----
expect 0 "lang en (the task's source), grad_accum 4" -- "$xa" train "$recipe" $(at ref) "${common[@]}" "${lang[@]/de/en}" \
  --set phases.lang.grad_accum=4
expect 0 "task with grad_accum 4" -- "$xa" train "$recipe" $(at ref) "${common[@]}" --phase task \
  --set phases.lang.grad_accum=4 --set phases.lang.ckpt_every=2 --set phases.task.grad_accum=4 --set phases.task.epochs=1
grep -q '^grad_accum: 4$' "$tmp/ref/task/pkg/seed3/xadapt-provenance.txt" || fail "task provenance lacks 'grad_accum: 4'"

[[ $fails == 0 ]] && echo "all grad_accum tests passed" || echo "$fails failure(s)"
exit $((fails > 0))
