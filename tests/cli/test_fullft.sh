#!/usr/bin/env bash
# The full fine-tuning reference (phases.finetune, eval setup full_ft) through the CLI on the tiny
# recipe: recipe errors exit 2 before anything trains (full_ft without a finetune phase, an
# unknown setup, an adapter key in the finetune phase), --dry-run lists it, a run writes the
# fine-tuned encoder as a base directory and the head, the eval table gets a "full fine-tuning"
# column in every language (accuracy and macro-F1, per-cell provenance), a rerun skips it and
# reuses its cells, a changed finetune setting is a stale error naming it while the adapters stay
# valid, --force finetune retrains it alone and re-evaluates exactly its cells, and a finetune run
# killed with SIGKILL and resumed ends with the bytes of an uninterrupted one.
# usage: test_fullft.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_fullft.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/fullft-$$
mkdir -p "$tmp"
[[ -n "${XA_KEEP_TMP:-}" ]] || trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
seen=0
ok() { if [[ $fails -eq $seen ]]; then echo "ok: $*"; else echo "not ok: $*"; fi; seen=$fails; }
recipe="$data/recipe/tiny-fullft.yaml"
O="$tmp/run"
sets=(--set "output=$O" --set "model.base=$O/base" --set phases.pretrain.steps=60 -j 1)
# expect CODE NAME -- CMD...: run CMD (stdout, stderr to $tmp/out, $tmp/err), check the exit code
expect() {
  local want=$1 name=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -ne $want ]]; then fail "$name: exit $rc, expected $want"; tail -5 "$tmp/err"; return 1; fi
}
mentions() { grep -qF -- "$2" "$tmp/$1" || { fail "$3: $1 lacks '$2'"; sed 's/^/    /' "$tmp/$1" | tail -8; }; }

# ---- recipe errors: exit 2, nothing trained ------------------------------------------------------
expect 2 "full_ft without finetune" -- "$xa" run "$data/recipe/tiny.yaml" "${sets[@]}" \
  --set "phases.eval.setups=[madx, full_ft]" && mentions err "without a finetune phase" "full_ft without finetune"
expect 2 "unknown setup" -- "$xa" run "$recipe" "${sets[@]}" --set "phases.eval.setups=[full_tf]" &&
  { mentions err "unknown eval setup 'full_tf'" "unknown setup"; mentions err "full_ft" "unknown setup"; }
expect 2 "adapter key in finetune" -- "$xa" run "$recipe" "${sets[@]}" --set phases.finetune.adapter_drop=1 &&
  mentions err "unknown key 'adapter_drop' in 'phases[3].finetune'" "adapter key in finetune"
expect 2 "finetune typo" -- "$xa" train "$recipe" "${sets[@]}" --phase finetune --set phases.finetune.lrr=1 &&
  mentions err "did you mean 'lr'?" "finetune typo"
expect 2 "eval before finetune" -- "$xa" run "$recipe" "${sets[@]}" \
  --set "phases=[{pretrain: {steps: 60}}, {eval: {setups: [full_ft]}}, {finetune: {epochs: 1}}]" &&
  mentions err "before the finetune phase" "eval before finetune"
[[ -e $O/base || -e $O/finetune ]] && fail "a refused recipe trained something"
ok "recipe errors exit 2 before anything trains"

# ---- the plan, the run, its outputs ----------------------------------------------------------------
expect 0 "dry run" -- "$xa" run "$recipe" "${sets[@]}" --dry-run &&
  { mentions out "finetune pkg seed 3" "dry run"; mentions out "$O/finetune/pkg/seed3" "dry run";
    mentions out "src_stack madx full_ft" "dry run"; }
[[ -e $O/finetune ]] && fail "--dry-run trained"
expect 0 "run" -- "$xa" run "$recipe" "${sets[@]}" || { echo "$fails failure(s)"; exit 1; }
mentions out "finetune pkg seed 3: the whole encoder + head" "run"
F="$O/finetune/pkg/seed3"
for f in final/encoder/config.json final/encoder/model.safetensors final/encoder/sentencepiece.bpe.model \
         final/head/head_config.json final/head/model_head.safetensors final/adapter_setup.json dev.json \
         metrics.jsonl xadapt-provenance.txt; do
  [[ -s $F/$f ]] || fail "no $F/$f"
done
[[ -e $F/final/adapter ]] && fail "full fine-tuning wrote an adapter"
grep -q "^phase: finetune$" "$F/xadapt-provenance.txt" && grep -q "^on base: provenance" "$F/xadapt-provenance.txt" ||
  fail "finetune provenance lacks its phase or its base"
grep -q '"dev"' "$F/metrics.jsonl" || fail "no dev evaluation in the finetune metrics"
# the fine-tuned encoder is a base: inspect reads it, it differs from the base
"$xa" inspect "$F/final/encoder/model.safetensors" >"$tmp/inspect" 2>&1 || fail "inspect of the fine-tuned encoder: exit $?"
grep -q "embeddings.word_embeddings.weight" "$tmp/inspect" || fail "the fine-tuned encoder lacks the word embeddings"
cmp -s "$F/final/encoder/model.safetensors" "$O/base/model.safetensors" && fail "the fine-tuned encoder equals the base"
E="$O/eval/pkg"
for t in results results_macro_f1; do
  grep -q "| full fine-tuning |" "$E/$t.md" || fail "$t.md lacks the full fine-tuning column"
  for row in "en (src)" de fr "mean (targets)"; do
    grep "^| $row |" "$E/$t.md" | awk -F'|' '{exit !($5 ~ /[0-9]/)}' || fail "$t.md: no full fine-tuning value for $row"
  done
done
[[ $(grep -c '"setup": "full_ft"' "$E/raw.jsonl") -eq 3 ]] || fail "raw.jsonl: not 3 full_ft cells"
[[ $(grep '"setup": "full_ft"' "$E/raw.jsonl" | grep -c '"cell": "[0-9a-f]\{16\}"') -eq 3 ]] || fail "full_ft cells without identity"
[[ $(wc -l <"$E/cells.tsv") -eq 9 ]] || fail "cells.tsv: $(wc -l <"$E/cells.tsv") lines, expected 9"
grep -q "on finetune pkg seed 3: provenance" "$E/xadapt-provenance.txt" || fail "eval provenance lacks the finetune run"
ok "run: fine-tuned encoder (a base directory) and head, the full fine-tuning column in both tables with cell provenance"

# ---- rerun, stale settings, --force ----------------------------------------------------------------
expect 0 "rerun" -- "$xa" run "$recipe" "${sets[@]}" &&
  { mentions out "finetune pkg seed 3: $F exists; skipped" "rerun"; mentions out "eval: 9 cells reused, 0 computed (pkg)" "rerun"; }
expect 2 "changed finetune lr" -- "$xa" run "$recipe" "${sets[@]}" --set phases.finetune.lr=1e-4 &&
  { mentions err "finetune pkg seed 3" "changed lr"; mentions err "lr: was '0.0003', now '0.0001'" "changed lr";
    mentions err "--force finetune" "changed lr"; }
grep -q "task pkg seed 3 (" "$tmp/err" && fail "a finetune setting made the task adapter stale"
expect 0 "task phase with another finetune lr" -- "$xa" train "$recipe" "${sets[@]}" --phase task --set phases.finetune.lr=1e-4
cp "$F/final/head/model_head.safetensors" "$tmp/head.before"
expect 0 "--force finetune" -- "$xa" run "$recipe" "${sets[@]}" --set phases.finetune.lr=1e-4 --force finetune &&
  { mentions out "(--force: from scratch)" "--force finetune"; mentions out "task pkg seed 3: $O/task/pkg/seed3 exists; skipped" "--force finetune";
    mentions out "lang de: $O/lang/de exists; skipped" "--force finetune"; mentions out "eval: 6 cells reused, 3 computed (pkg)" "--force finetune"; }
cmp -s "$F/final/head/model_head.safetensors" "$tmp/head.before" && fail "--force finetune with another lr kept the head"
ok "rerun skips and reuses, a changed finetune lr is stale alone, --force finetune retrains it and re-evaluates its 3 cells"

# ---- kill -9 and resume: the bytes of an uninterrupted run --------------------------------------------
ref="$F/final/encoder/model.safetensors"
kill_ok=0
for round in 1 2 3; do
  K="$tmp/k$round"
  ks=(--set "output=$K" --set "model.base=$O/base" --set phases.pretrain.steps=60 --set phases.finetune.lr=1e-4 --set phases.finetune.ckpt_every=1 -j 1)
  "$xa" train "$recipe" "${ks[@]}" --phase finetune >/dev/null 2>"$tmp/k.err" &
  pid=$!
  sleep "0.$(printf '%03d' $((200 + RANDOM % 700)))"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  if ! "$xa" train "$recipe" "${ks[@]}" --phase finetune >"$tmp/k.out" 2>"$tmp/k.err"; then
    fail "kill $round: the resumed run failed"; tail -3 "$tmp/k.err"; continue
  fi
  cmp -s "$K/finetune/pkg/seed3/final/encoder/model.safetensors" "$ref" &&
    cmp -s "$K/finetune/pkg/seed3/final/head/model_head.safetensors" "$F/final/head/model_head.safetensors" ||
    fail "kill $round: the resumed run's encoder or head differs from the uninterrupted one"
  grep -q "resuming at step" "$tmp/k.err" && kill_ok=$((kill_ok + 1))
done
[[ $kill_ok -ge 1 ]] || fail "no kill landed after a checkpoint (nothing resumed)"
ok "finetune killed with SIGKILL and resumed: byte-identical encoder and head ($kill_ok of 3 resumed a checkpoint)"

[[ $fails == 0 ]] && echo "all full fine-tuning tests passed" || echo "$fails failure(s)"
exit $((fails > 0))
