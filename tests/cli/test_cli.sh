#!/usr/bin/env bash
# End-to-end tests of the xadapt CLI: help on every command, exit codes (0 ok, 1 runtime, 2 usage),
# inspect on a fixture and on bad files, tokenizer train -> encode -> decode.
# usage: test_cli.sh PATH/TO/xadapt   (CTest passes it; XA_TEST_DATA and XA_TEST_TMP are set)
set -u
xa=${1:?usage: test_cli.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/cli-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect CODE DESCRIPTION -- COMMAND...: run, compare the exit code, keep stdout/stderr in $out/$err.
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local got=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
  if [[ $got -ne $want ]]; then
    echo "FAIL: $what: exit $got, expected $want"; echo "  stdout: ${out:0:400}"; echo "  stderr: ${err:0:400}"
    fails=$((fails + 1))
    return 1
  fi
  echo "ok: $what"
}
# contains HAYSTACK NEEDLE DESCRIPTION
contains() {
  if [[ "$1" != *"$2"* ]]; then echo "FAIL: $3: output lacks '$2'"; echo "  got: ${1:0:600}"; fails=$((fails + 1)); fi
}

expect 0 "xadapt --help" -- "$xa" --help;             contains "$out" "commands:" "top-level help"
expect 2 "xadapt without a command" -- "$xa"
expect 2 "unknown command" -- "$xa" frobnicate;       contains "$err" "unknown command 'frobnicate'" "unknown command"
expect 0 "version" -- "$xa" version;                  contains "$out" "xadapt 0." "version"
for cmd in "version" "inspect" "tokenizer" "tokenizer train" "tokenizer encode" "tokenizer decode" "pretrain" "bench"; do
  # shellcheck disable=SC2086
  expect 0 "$cmd --help" -- "$xa" $cmd --help;        contains "$out" "usage: xadapt" "$cmd --help"
done

# inspect
fixture="$data/encoder/xlmr/model.safetensors"
expect 0 "inspect a fixture" -- "$xa" inspect "$fixture"
contains "$out" "total:" "inspect totals"; contains "$out" "F32" "inspect dtypes"
expect 2 "inspect without a file" -- "$xa" inspect
expect 2 "inspect with an unknown option" -- "$xa" inspect --bogus "$fixture"
contains "$err" "unknown option '--bogus'" "unknown option named"
expect 1 "inspect a missing file" -- "$xa" inspect "$tmp/nope.safetensors"
contains "$err" "nope.safetensors" "missing file named"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":' > "$tmp/trunc.safetensors"
expect 1 "inspect a truncated file" -- "$xa" inspect "$tmp/trunc.safetensors"
contains "$err" "trunc.safetensors" "truncated file named"

# tokenizer: train on the multilingual fixture corpus, then encode and decode
corpus="$data/spm/corpus.txt"
expect 0 "tokenizer train" -- "$xa" tokenizer train --input "$corpus" --vocab 1000 --out "$tmp/tok"
contains "$out" "tok.model" "train output"
[[ -s "$tmp/tok.model" && -s "$tmp/tok.vocab" ]] || { echo "FAIL: tok.model/tok.vocab missing"; fails=$((fails + 1)); }
expect 2 "tokenizer train without --vocab" -- "$xa" tokenizer train --input "$corpus" --out "$tmp/x"
expect 2 "tokenizer train with a bad --vocab" -- "$xa" tokenizer train --input "$corpus" --vocab ten --out "$tmp/x"
contains "$err" "--vocab" "bad vocab named"
expect 2 "tokenizer train with a missing input" -- "$xa" tokenizer train --input "$tmp/none.txt" --vocab 1000 --out "$tmp/x"
contains "$err" "none.txt" "missing input named"

text="Αδύνατο το κλείδωμα του καταλόγου μεταφόρτωσης"
expect 0 "tokenizer encode (XLM-R ids)" -- "$xa" tokenizer encode --model "$tmp/tok.model" --xlmr "$text"
ids=$out
[[ "$ids" == "0 "*" 2" ]] || { echo "FAIL: XLM-R ids should start with 0 and end with 2: $ids"; fails=$((fails + 1)); }
expect 0 "tokenizer decode (XLM-R ids)" -- "$xa" tokenizer decode --model "$tmp/tok.model" --xlmr "$ids"
[[ "$out" == "$text" ]] || { echo "FAIL: round trip: '$out' != '$text'"; fails=$((fails + 1)); }
printf 'eins zwei\ndrei\n' | "$xa" tokenizer encode --model "$tmp/tok.model" --pieces > "$tmp/pieces" 2>&1
[[ $(wc -l < "$tmp/pieces") -eq 2 ]] || { echo "FAIL: stdin encode should give 2 lines"; cat "$tmp/pieces"; fails=$((fails + 1)); }
expect 2 "tokenizer decode with an out-of-range id" -- "$xa" tokenizer decode --model "$tmp/tok.model" "5 999999"
expect 1 "tokenizer encode with a missing model" -- "$xa" tokenizer encode --model "$tmp/none.model" "x"
contains "$err" "none.model" "missing model named"
expect 2 "tokenizer unknown subcommand" -- "$xa" tokenizer frob

# bench: a tiny run of two modes; bad arguments are usage errors
expect 0 "bench (tiny, two modes)" -- "$xa" bench --models tiny --modes infer,cls-frozen --batch 2 --seq 16 --steps 1 --min-seconds 0 -j 1
contains "$out" "| tiny | infer | 2 | fp32 |" "bench table row"; contains "$out" "fp32 peak" "bench peak line"
expect 0 "bench --precision fp32,bf16" -- "$xa" bench --models tiny --modes infer --batch 2 --seq 16 --steps 1 --min-seconds 0 -j 1 -p fp32,bf16
contains "$out" "bf16 peak" "bench bf16 peak line"; contains "$out" "| tiny | infer | 2 | " "bench bf16 rows"
# the register-only peaks: each path a positive number or "skipped: <why>"; no timing asserted
expect 0 "bench --peak" -- "$xa" bench --peak --min-seconds 0 -j 2
for path in fp32-avx512 fp32-avx2 bf16-avx512 bf16-amx; do
    line=$(printf '%s\n' "$out" | grep "register-only peak $path ")
    if ! printf '%s\n' "$line" | grep -Eq '(\): [0-9]*\.?[0-9]+ GFLOP/s with 1 thread, [0-9]*\.?[0-9]+ with 2 threads|: skipped: .{10,})$' \
        || printf '%s\n' "$line" | grep -Eq ': 0\.0 GFLOP|nan|inf '; then
        echo "FAIL: bench --peak line for $path: '$line'"; fails=$((fails + 1))
    fi
done
contains "$out" "CPU: " "bench --peak names the CPU"
expect 0 "bench --peak --json" -- "$xa" bench --peak --json --min-seconds 0 -j 1
contains "$out" '"peak": "bf16-amx"' "bench --peak json amx entry"
if printf '%s\n' "$out" | grep '"gflops"' | grep -Eq '"gflops": (0\.00|-|nan|inf)'; then
    echo "FAIL: bench --peak --json has a non-positive rate"; fails=$((fails + 1))
fi
contains "$(printf '%s\n' "$out" | grep '"peak"' | grep -c '"gflops"\|"skipped"')" "4" "bench --peak json: every path measured or skipped"
expect 0 "bench rows name their path" -- "$xa" bench --models tiny --modes infer --batch 2 --seq 16 --steps 1 --min-seconds 0 -j 1 --json
contains "$out" '"path": "fp32-' "bench json path"
expect 0 "bench --gradient-checkpointing" -- "$xa" bench --models tiny --modes mlm-full,lang-adapter --batch 2 --seq 16 --steps 1 --min-seconds 0 -j 1 --gradient-checkpointing
contains "$out" "gradient checkpointing: on" "bench recompute line"; contains "$out" "| tiny | lang-adapter | 2 | " "bench recompute rows"
expect 2 "bench --precision fp16" -- "$xa" bench --models tiny --modes infer --precision fp16
expect 0 "bench --json" -- "$xa" bench --models tiny --modes infer --batch 2 --seq 16 --steps 1 --min-seconds 0 --json -j 1
contains "$out" '"tokens_per_s"' "bench json"
expect 2 "bench with an unknown mode" -- "$xa" bench --modes fast
contains "$err" "unknown mode 'fast'" "bench bad mode named"
expect 2 "bench with an unknown model" -- "$xa" bench --models huge
contains "$err" "huge" "bench bad model named"

# pretrain: argument errors, then 3 steps on the fixture corpus
expect 2 "pretrain without --corpus" -- "$xa" pretrain --tokenizer "$tmp/tok.model" --out "$tmp/pt"
expect 1 "pretrain with a missing corpus" -- "$xa" pretrain --corpus "$tmp/none.txt" --tokenizer "$tmp/tok.model" --out "$tmp/pt"
contains "$err" "none.txt" "missing corpus named"
expect 0 "pretrain 3 steps" -- "$xa" pretrain --corpus "$corpus" --tokenizer "$tmp/tok.model" --out "$tmp/pt" --steps 3 --batch 2 --seq 32 -j 1
[[ -s "$tmp/pt/model.safetensors" && -s "$tmp/pt/config.json" && -s "$tmp/pt/metrics.jsonl" && -s "$tmp/pt/sentencepiece.bpe.model" ]] \
  || { echo "FAIL: pretrain outputs missing"; ls "$tmp/pt"; fails=$((fails + 1)); }
expect 0 "pretrain 3 steps, --gradient-checkpointing" -- "$xa" pretrain --corpus "$corpus" --tokenizer "$tmp/tok.model" \
  --out "$tmp/ptgc" --steps 3 --batch 2 --seq 32 -j 1 --gradient-checkpointing
cmp -s "$tmp/pt/model.safetensors" "$tmp/ptgc/model.safetensors" ||
  { echo "FAIL: pretrain --gradient-checkpointing changed the weights"; fails=$((fails + 1)); }
grep -q "gradient checkpointing" "$tmp/ptgc/train.log" ||
  { echo "FAIL: train.log does not say the run recomputed"; fails=$((fails + 1)); }
expect 0 "pretrain resume when complete" -- "$xa" pretrain --corpus "$corpus" --tokenizer "$tmp/tok.model" --out "$tmp/pt" --steps 3 --batch 2 --seq 32 -j 1 --resume
contains "$out" "nothing to do" "resume of a finished run"
expect 0 "inspect the pretrained model" -- "$xa" inspect "$tmp/pt/model.safetensors"
contains "$out" "roberta.encoder.layer.1.output.LayerNorm.bias" "pretrained tensor names"

if [[ $fails -ne 0 ]]; then echo "$fails check(s) failed"; exit 1; fi
echo "all CLI checks passed"
