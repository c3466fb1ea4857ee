#!/usr/bin/env bash
# End-to-end tests of PyTorch .bin files through the CLI (fixtures written by torch.save:
# tests/data/torchbin/, tests/golden/gen_torchbin_fixtures.py): predict with a base, an adapter and
# a head saved as .bin gives the same output and the same hidden states, byte for byte, as with
# their safetensors twins; safetensors is preferred when both exist; xadapt convert (file and
# directory forms, --dtype, --force) round trips, writes atomically and refuses hostile files
# without leaving output; inspect lists a .bin.
# usage: test_torchbin.sh PATH/TO/xadapt   (CTest passes it; XA_TEST_DATA and XA_TEST_TMP are set)
set -u
xa=${1:?usage: test_torchbin.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/torchbin-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
same() { # same FILE_A FILE_B DESCRIPTION
  if cmp -s "$1" "$2"; then echo "ok: $3"; else echo "FAIL: $3: $1 and $2 differ"; fails=$((fails + 1)); fi
}

tiny=$data/torchbin/tiny
for form in st bin; do
  mkdir -p "$tmp/$form"
  sfx=; [[ $form == bin ]] && sfx=_bin
  for d in base adapter head; do cp -r "$tiny/$d$sfx" "$tmp/$form/$d"; done
  cp "$data/spm/fixture.model" "$tmp/$form/base/sentencepiece.bpe.model"
done
printf 'hello world\nthe quick brown fox jumps\nein kleiner Test\n' >"$tmp/in.txt"
stdin=$tmp/in.txt

# MALLOC_PERTURB_=255: glibc hands out memory filled with 0xff bytes (NaN as floats), so a score
# read from memory the head never wrote fails every time instead of once in ~60 runs
predict() { # predict FORM_DIR OUT_PREFIX
  MALLOC_PERTURB_=255 "$xa" predict --base "$1/base" --adapter "$1/adapter" --head "$1/head" --setup seq_bn \
    --hidden-states "$2.hs.safetensors" <"$tmp/in.txt" >"$2.json" 2>"$2.err"
}

# 1. the same predictions and hidden states from .bin as from safetensors
if predict "$tmp/st" "$tmp/p-st" && predict "$tmp/bin" "$tmp/p-bin"; then
  [[ $(grep -c '"label": ' "$tmp/p-st.json") -eq 3 ]] || { echo "FAIL: predict: expected 3 lines"; fails=$((fails + 1)); }
  same "$tmp/p-st.json" "$tmp/p-bin.json" "predict: .bin base, adapter and head give the safetensors predictions"
  same "$tmp/p-st.hs.safetensors" "$tmp/p-bin.hs.safetensors" "predict: identical hidden states"
else
  echo "FAIL: predict: exit $?"; cat "$tmp"/p-*.err; fails=$((fails + 1))
fi

# 2. safetensors first when both exist (a broken .bin beside a good safetensors is not read)
printf 'PK\3\4garbage' >"$tmp/st/adapter/pytorch_adapter.bin"
if predict "$tmp/st" "$tmp/p-both"; then
  same "$tmp/p-st.json" "$tmp/p-both.json" "predict: adapter.safetensors preferred over pytorch_adapter.bin"
else
  echo "FAIL: predict with both files: exit $?"; cat "$tmp/p-both.err"; fails=$((fails + 1))
fi
rm "$tmp/st/adapter/pytorch_adapter.bin"

# 3. inspect a .bin
expect 0 "inspect a .bin" -- "$xa" inspect "$tmp/bin/base/pytorch_model.bin"
contains "$out" "roberta.embeddings.position_ids" "inspect lists the int64 buffer"
contains "$out" "I64" "inspect shows the dtype"

# 4. convert: --help, usage errors
expect 0 "convert --help" -- "$xa" convert --help; contains "$out" "atomically" "convert help"
expect 2 "convert without arguments" -- "$xa" convert
expect 2 "convert with a bad --dtype" -- "$xa" convert --dtype f8 a b
expect 2 "convert of a file without OUT" -- "$xa" convert "$tmp/bin/base/pytorch_model.bin"

# 5. convert a directory in place: the .bin files gain their safetensors twins, which predict the same
cp -r "$tmp/bin" "$tmp/conv"
for d in base adapter head; do
  expect 0 "convert directory $d" -- "$xa" convert "$tmp/conv/$d"
done
contains "$out" "model_head.safetensors" "convert names what it wrote"
rm "$tmp/conv"/*/pytorch_*.bin
if predict "$tmp/conv" "$tmp/p-conv"; then
  same "$tmp/p-st.json" "$tmp/p-conv.json" "predict on converted files"
  same "$tmp/p-st.hs.safetensors" "$tmp/p-conv.hs.safetensors" "hidden states on converted files"
else
  echo "FAIL: predict on converted files: exit $?"; cat "$tmp/p-conv.err"; fails=$((fails + 1))
fi
cp "$tmp/st/base/model.safetensors" "$tmp/bin/base/"
expect 0 "convert a directory whose twin exists" -- "$xa" convert "$tmp/bin/base"
contains "$err" "left as it is" "an existing twin is kept without --force"
rm "$tmp/bin/base/model.safetensors"
expect 1 "convert a directory without .bin files" -- "$xa" convert "$tmp/st/head"

# 6. convert IN OUT round trip: .bin -> safetensors -> safetensors is a fixed point
expect 0 "convert IN OUT" -- "$xa" convert "$tmp/bin/adapter/pytorch_adapter.bin" "$tmp/a1.safetensors"
expect 0 "convert safetensors -> safetensors" -- "$xa" convert "$tmp/a1.safetensors" "$tmp/a2.safetensors"
same "$tmp/a1.safetensors" "$tmp/a2.safetensors" "convert is a fixed point on its own output"
expect 2 "convert refuses to replace OUT" -- "$xa" convert "$tmp/a1.safetensors" "$tmp/a2.safetensors"
expect 0 "convert --force replaces OUT" -- "$xa" convert --force "$tmp/a1.safetensors" "$tmp/a2.safetensors"
expect 0 "convert --dtype f16" -- "$xa" convert --dtype f16 "$tmp/bin/adapter/pytorch_adapter.bin" "$tmp/a16.safetensors"
expect 0 "inspect the f16 file" -- "$xa" inspect "$tmp/a16.safetensors"; contains "$out" "F16" "--dtype f16 stored F16"
expect 0 "convert the legacy format" -- "$xa" convert "$data/torchbin/state_legacy.bin" "$tmp/legacy.safetensors"
expect 0 "convert the zip format" -- "$xa" convert "$data/torchbin/state.bin" "$tmp/zip.safetensors"
same "$tmp/legacy.safetensors" "$tmp/zip.safetensors" "legacy and zip files of one state dict convert to the same bytes"

# 7. refused inputs leave no output and no temporary file
expect 1 "convert refuses a pickle that calls os.system" -- "$xa" convert "$data/torchbin/evil_system.bin" "$tmp/evil.safetensors"
contains "$err" "posix.system" "the refused global is named"
head -c 3000 "$data/torchbin/state.bin" >"$tmp/cut.bin"
expect 1 "convert a truncated .bin" -- "$xa" convert "$tmp/cut.bin" "$tmp/cut.safetensors"
contains "$err" "cut.bin" "the error names the file"
left=$(find "$tmp" -maxdepth 1 -name 'evil.safetensors*' -o -maxdepth 1 -name 'cut.safetensors*' | wc -l)
[[ $left -eq 0 ]] && echo "ok: no output left behind" || { echo "FAIL: refused conversions left $left files"; fails=$((fails + 1)); }

# 8. a base directory with neither weights file names both
mkdir -p "$tmp/empty"; cp "$tiny/base/config.json" "$tmp/empty/"; cp "$data/spm/fixture.model" "$tmp/empty/sentencepiece.bpe.model"
expect 1 "predict on a base without weights" -- "$xa" predict --base "$tmp/empty" --adapter "$tmp/st/adapter" --head "$tmp/st/head" --setup seq_bn
contains "$err" "pytorch_model.bin" "missing base names the .bin too"

if [[ $fails -ne 0 ]]; then echo "$fails check(s) failed"; exit 1; fi
echo "all torchbin CLI checks passed"
