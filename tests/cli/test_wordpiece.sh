#!/usr/bin/env bash
# End-to-end tests of WordPiece (BERT / mBERT) bases through the CLI, on the tiny BERT fixture of
# tests/data/wordpiece/tiny-bert (tests/golden/gen_wordpiece_goldens.py: a BertForMaskedLM base
# with vocab.txt, an adapter and a head): predict chooses the tokenizer from the base directory;
# its inputs are the golden ids of BertTokenizer ([CLS] ... [SEP], checked through `tokenizer
# encode` and the hidden-state row counts); vocab.txt and a WordPiece tokenizer.json give the same
# predictions; tokenizer_config.json's do_lower_case is read; --seq-len truncates keeping [SEP];
# a recipe's language adapters, task adapter and eval table run on the BERT base (model.tokenizer
# defaulting to BASE/vocab.txt) and predict --model serves its output;
# a base without a tokenizer, a Unigram tokenizer.json alone, a malformed vocab.txt and a vocabulary
# of the wrong size fail with clear messages.
# usage: test_wordpiece.sh PATH/TO/xadapt   (CTest passes it; XA_TEST_DATA and XA_TEST_TMP are set)
set -u
xa=${1:?usage: test_wordpiece.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/wordpiece-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

wp=$data/wordpiece
tiny=$wp/tiny-bert
cp -r "$tiny/base" "$tmp/base"
printf 'Hello, World!\nCafé crème brûlée à Noël\n中文分词测试\n' >"$tmp/in.txt"
stdin=$tmp/in.txt

# 1. tokenizer encode on the base directory: the golden ids of "Hello, World!" (lowercased)
want=$(awk -F'\t' -v h="$(printf 'Hello, World!' | od -An -tx1 | tr -d ' \n')" '$1 == "enc" && $2 == "lower" && $3 == h {print $4}' "$wp/golden.tsv")
[[ -n $want ]] || fail "golden ids of 'Hello, World!' not found"
expect 0 "tokenizer encode --model BASE_DIR (vocab.txt)" -- "$xa" tokenizer encode --model "$tmp/base" --no-special "Hello, World!"
[[ $out == "$want" ]] && echo "ok: ids are BertTokenizer's" || fail "tokenizer encode: '$out', want '$want'"
expect 0 "tokenizer encode with specials" -- "$xa" tokenizer encode --model "$tmp/base" --pieces "Hello, World!"
[[ $out == "[CLS] h ##el ##lo , w ##or ##ld ! [SEP]" ]] && echo "ok: [CLS] ... [SEP]" || fail "pieces: '$out'"

# 2. predict on the BERT base: one JSON line per input; hidden-state rows = the encoded lengths
predict() { # predict BASE OUT_PREFIX [ARGS...]
  local b=$1 o=$2; shift 2
  "$xa" predict --base "$b" --adapter "$tiny/adapter" --head "$tiny/head" --setup seq_bn \
    --hidden-states "$o.hs.safetensors" "$@" <"$tmp/in.txt" >"$o.json" 2>"$o.err"
}
rows() { "$xa" inspect "$1" 2>/dev/null | awk '$1 == "hidden" {gsub(/[^0-9]/, "", $3); print $3}'; }
if predict "$tmp/base" "$tmp/p-vocab"; then
  [[ $(grep -c '"label": ' "$tmp/p-vocab.json") -eq 3 ]] && echo "ok: predict on a BERT base with vocab.txt" \
    || fail "predict: expected 3 JSON lines"
  n=0
  while IFS= read -r line; do
    k=$("$xa" tokenizer encode --model "$tmp/base" "$line" | wc -w)
    n=$((n + k))
  done <"$tmp/in.txt"
  got=$(rows "$tmp/p-vocab.hs.safetensors")
  [[ $got == "$n" ]] && echo "ok: predict's inputs are the WordPiece encodings ($n tokens)" \
    || fail "hidden rows $got, encodings $n"
else
  fail "predict on the BERT base: exit $?"; cat "$tmp/p-vocab.err"
fi

# 3. the same vocabulary as a tokenizer.json (no vocab.txt): the same predictions on NFC text
mkdir -p "$tmp/base-tj"
cp "$tmp/base/config.json" "$tmp/base/model.safetensors" "$tmp/base-tj/"
cp "$wp/tokenizer.json" "$tmp/base-tj/"
if predict "$tmp/base-tj" "$tmp/p-tj"; then
  cmp -s "$tmp/p-vocab.json" "$tmp/p-tj.json" && cmp -s "$tmp/p-vocab.hs.safetensors" "$tmp/p-tj.hs.safetensors" \
    && echo "ok: tokenizer.json (WordPiece) = vocab.txt" || fail "tokenizer.json predictions differ from vocab.txt's"
else
  fail "predict with tokenizer.json: exit $?"; cat "$tmp/p-tj.err"
fi

# 4. tokenizer_config.json: do_lower_case false changes the ids (cased), and so the predictions
mkdir -p "$tmp/base-cased"
cp "$tmp/base/"* "$tmp/base-cased/"
printf '{"do_lower_case": false}\n' >"$tmp/base-cased/tokenizer_config.json"
expect 0 "tokenizer encode, cased" -- "$xa" tokenizer encode --model "$tmp/base-cased" --pieces "Hello"
[[ $out == "[CLS] H ##el ##lo [SEP]" ]] && echo "ok: do_lower_case false keeps the case" || fail "cased pieces: '$out'"
predict "$tmp/base-cased" "$tmp/p-cased" || fail "predict, cased: exit $?"
cmp -s "$tmp/p-vocab.hs.safetensors" "$tmp/p-cased.hs.safetensors" && fail "cased and uncased hidden states are equal"

# 5. --seq-len 4: every input is [CLS] x y [SEP]
if predict "$tmp/base" "$tmp/p-short" --seq-len 4; then
  [[ $(rows "$tmp/p-short.hs.safetensors") == 12 ]] && echo "ok: --seq-len 4 truncates to 4 tokens" \
    || fail "--seq-len 4: $(rows "$tmp/p-short.hs.safetensors") rows, want 12"
else
  fail "predict --seq-len 4: exit $?"; cat "$tmp/p-short.err"
fi

# 6. the MAD-X phases on the BERT base: language adapters (MLM with [MASK]), a task adapter and the
# eval table, with model.tokenizer defaulting to BASE/vocab.txt; then predict --model on the output
rd=$data/recipe
cat >"$tmp/bert.yaml" <<YAML
extends: $(cd "$(dirname "$0")/../.." && pwd)/configs/training/madx.yaml
name: bert
output: $tmp/run
seed: 3
seeds: [3]
threads: 1
model: {base: $tmp/base}
languages: {source: en, targets: [de, fr]}
data:
  mlm: $rd/mono/{lang}.txt
  task:
    name: pkg
    type: classification
    train: $rd/pkg/en.train.tsv
    dev: $rd/pkg/en.dev.tsv
    test: $rd/pkg/{lang}.test.tsv
adapters:
  lang: {preset: seq_bn_inv, reduction_factor: 4}
  task: {preset: seq_bn, reduction_factor: 8}
phases:
  - lang: {steps: 6, batch_size: 8, seq_len: 32, lr: 1e-3, ckpt_every: 3}
  - task: {epochs: 1, batch_size: 16, seq_len: 48, lr: 1e-3, eval_every: 10, ckpt_every: 10}
  - eval: {setups: [task_only, madx], batch_size: 32, seq_len: 48}
YAML
stdin=/dev/null
expect 0 "xadapt run: lang, task and eval phases on a BERT base" -- "$xa" run "$tmp/bert.yaml"
[[ -f $tmp/run/eval/pkg/results.md ]] && echo "ok: the eval table" || fail "no eval/pkg/results.md"
grep -q "tokenizer: \"$tmp/base/vocab.txt\"" "$tmp/run/resolved-pkg.yaml" && echo "ok: model.tokenizer defaults to vocab.txt" \
  || fail "resolved recipe: $(grep tokenizer "$tmp/run/resolved-pkg.yaml")"
stdin=$tmp/in.txt
expect 0 "predict --model on the BERT output" -- "$xa" predict --model "$tmp/run" --stack lang:de,task:pkg
[[ $(grep -c '"label": ' <<<"$out") -eq 3 ]] || fail "predict --model: expected 3 lines"

# 7. clear errors
mkdir -p "$tmp/none" "$tmp/unigram" "$tmp/badvocab" "$tmp/small"
cp "$tmp/base/config.json" "$tmp/base/model.safetensors" "$tmp/none/"
expect 1 "a base without a tokenizer" -- predict "$tmp/none" "$tmp/e1"
contains "$(cat "$tmp/e1.err")" "vocab.txt" "the missing tokenizer's message lists vocab.txt"
cp "$tmp/base/config.json" "$tmp/base/model.safetensors" "$tmp/unigram/"
printf '{"model": {"type": "Unigram", "unk_id": 3, "vocab": [["<s>", 0.0]]}}\n' >"$tmp/unigram/tokenizer.json"
expect 1 "a Unigram tokenizer.json alone" -- predict "$tmp/unigram" "$tmp/e2"
contains "$(cat "$tmp/e2.err")" "Unigram" "the message names the model type"
cp "$tmp/base/config.json" "$tmp/base/model.safetensors" "$tmp/badvocab/"
{ head -5 "$tmp/base/vocab.txt"; printf 'bad\xff\n'; } >"$tmp/badvocab/vocab.txt"
expect 1 "a vocab.txt with invalid UTF-8" -- predict "$tmp/badvocab" "$tmp/e3"
contains "$(cat "$tmp/e3.err")" "vocab.txt:6" "the message names file:line"
cp "$tmp/base/config.json" "$tmp/base/model.safetensors" "$tmp/small/"
head -100 "$tmp/base/vocab.txt" >"$tmp/small/vocab.txt"
expect 2 "a vocab.txt of the wrong size" -- predict "$tmp/small" "$tmp/e4"
contains "$(cat "$tmp/e4.err")" "vocab_size" "the message names the base's vocab_size"

echo "$fails failure(s)"
[[ $fails -eq 0 ]]
