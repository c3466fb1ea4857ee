#!/usr/bin/env bash
# Aligned language adapters (phases.lang.align) through the CLI on the tiny recipe: the recipe
# errors exit 2 before any training (no pair file, a pair file without a target's pairs, the
# source after a target), an aligned run logs its alignment loss, and retraining the source
# adapter makes the aligned target adapters stale (exit 2) while align 0 keeps them independent.
# usage: test_align.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_align.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/align-$$
mkdir -p "$tmp"
[[ -n "${XA_KEEP_TMP:-}" ]] || trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
recipe="$data/recipe/tiny.yaml"
out="$tmp/run"
sets=(--set "output=$out" --set "model.base=$out/base" --set phases.pretrain.steps=60 -j 1)
al=(--set phases.lang.align=1 --set phases.lang.align_pairs=8 --set phases.lang.steps=10)

# expect_config NAME NEEDLE ARGS...: exit 2 and NEEDLE in the message, nothing trained
expect_config() {
  local name=$1 needle=$2; shift 2
  "$xa" train "$recipe" "${sets[@]}" --phase lang "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  if [[ $rc != 2 ]]; then fail "$name: exit $rc, expected 2"; tail -3 "$tmp/$name.err"; return; fi
  grep -qF -- "$needle" "$tmp/$name.err" || { fail "$name: message lacks '$needle'"; cat "$tmp/$name.err"; }
  [[ ! -e "$out/lang" ]] || fail "$name: trained before the error"
  echo "ok: $name exits 2"
}
expect_config no-file "data.lang_pairs" "${al[@]}" --set "data.lang_pairs=$tmp/none.tsv"
head -50 "$data/recipe/pairs.tsv" | grep -v "^fr" >"$tmp/de-only.tsv"
expect_config no-fr-pairs "'fr'" "${al[@]}" --set "data.lang_pairs=$tmp/de-only.tsv"
expect_config source-late "source" "${al[@]}" --set "phases.lang.languages=[de, en]"
expect_config bad-weight "align" --set phases.lang.align=-1

# pretrain, then the aligned lang phase
"$xa" train "$recipe" "${sets[@]}" --phase pretrain >/dev/null 2>"$tmp/pre.err" || fail "pretrain: exit $?"
if "$xa" train "$recipe" "${sets[@]}" --phase lang "${al[@]}" >"$tmp/lang.out" 2>"$tmp/lang.err"; then
  grep -q "lang de: alignment loss" "$tmp/lang.out" || fail "no alignment loss line for de"
  grep -q "lang en: alignment" "$tmp/lang.out" && fail "the source adapter got the alignment term"
  grep -q '"align_loss"' "$out/lang/de/metrics.jsonl" || fail "de metrics.jsonl lacks align_loss"
  grep -q '"align_loss"' "$out/lang/en/metrics.jsonl" && fail "en metrics.jsonl has align_loss"
  grep -q "^on lang en: provenance" "$out/lang/de/xadapt-provenance.txt" || fail "de provenance lacks the source adapter"
  grep -q "^lang_pairs: " "$out/lang/de/xadapt-provenance.txt" || fail "de provenance lacks the pair file"
  echo "ok: aligned lang phase"
else
  fail "aligned lang phase: exit $?"; tail -5 "$tmp/lang.err"
fi
# the same command again: every adapter skipped
"$xa" train "$recipe" "${sets[@]}" --phase lang "${al[@]}" >"$tmp/again.out" 2>&1 || fail "rerun: exit $?"
[[ $(grep -c "skipped" "$tmp/again.out") == 3 ]] || fail "rerun did not skip the 3 adapters"
# retraining the English adapter makes the aligned de adapter stale
"$xa" train "$recipe" "${sets[@]}" --phase lang "${al[@]}" --lang en --force >/dev/null 2>&1 || fail "retrain en: exit $?"
"$xa" train "$recipe" "${sets[@]}" --phase lang "${al[@]}" --lang de >/dev/null 2>"$tmp/stale.err"
rc=$?
[[ $rc == 2 ]] && grep -q "lang de" "$tmp/stale.err" && echo "ok: retrained source makes aligned de stale" \
  || { fail "de after a retrained en: exit $rc, expected 2 (stale)"; cat "$tmp/stale.err"; }

[[ $fails == 0 ]] && echo "all align tests passed" || echo "$fails failure(s)"
exit $((fails > 0))
