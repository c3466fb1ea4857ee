#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job.
#
# Until the recipe issues land, the main job is a smoke pipeline over what exists: it trains a
# SentencePiece tokenizer on the multilingual fixture text (de, el, ru, ja, zh, eu, en, fr),
# encodes and decodes held-out sentences with the XLM-R id convention, pretrains a tiny encoder
# with masked language modelling, and lists the saved model. Outputs go to out/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target xadapt >/dev/null
xa=build/xadapt
out=out/quickstart
mkdir -p "$out"

echo "== 1. tokenizer: train a unigram SentencePiece model on tests/data/spm/corpus.txt"
$xa tokenizer train --input tests/data/spm/corpus.txt --vocab 1000 --out "$out/tok"

echo
echo "== 2. encode and decode with the XLM-R id convention (<s>=0 <pad>=1 </s>=2 <unk>=3, +1)"
# Held-out sentences (not in the training text), one per language.
grep -E '^(de|el|ru|ja|zh_CN|eu)	' tests/data/spm/heldout.txt | head -n 6 | cut -f2 > "$out/sentences.txt"
$xa tokenizer encode --model "$out/tok.model" --xlmr < "$out/sentences.txt" > "$out/ids.txt"
$xa tokenizer encode --model "$out/tok.model" --pieces < "$out/sentences.txt" > "$out/pieces.txt"
$xa tokenizer decode --model "$out/tok.model" --xlmr < "$out/ids.txt" > "$out/decoded.txt"
paste -d '\n' "$out/sentences.txt" "$out/pieces.txt" "$out/ids.txt" /dev/null | sed 's/^/  /'
if cmp -s "$out/sentences.txt" "$out/decoded.txt"; then
  echo "round trip: all $(wc -l < "$out/sentences.txt") sentences decode to their input"
else
  echo "round trip FAILED:"; diff "$out/sentences.txt" "$out/decoded.txt"; exit 1
fi

echo
echo "== 3. pretrain a tiny XLM-R style encoder (L2 d128) with MLM on the same text, 200 steps"
$xa pretrain --corpus tests/data/spm/corpus.txt --tokenizer "$out/tok.model" --out "$out/base" \
  --model tiny --steps 200 --batch 8 --seq 64 --lr 1e-3 --ckpt-every 100

echo
echo "== 4. inspect the saved model (Hugging Face XLMRobertaForMaskedLM layout)"
$xa inspect "$out/base/model.safetensors" --filter layer.0.
