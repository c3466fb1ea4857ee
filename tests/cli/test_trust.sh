#!/usr/bin/env bash
# Results you can trust (issue 14): every reproduction of the issue gives a clear error or the right
# result. Provenance (changed settings, inputs or bases are errors naming what changed; reruns of
# the same settings skip), no silent overwrite (--force, run --force PHASE, pretrain --out/--resume),
# fail-fast validation and --dry-run, exit code 2 with one place for configuration errors, a failed
# eval that keeps the previous results, log_every and mlm_prob of pretraining, and the warning for
# an adapter or head used on another base.
# usage: test_trust.sh PATH/TO/xadapt
set -u
xa=${1:?usage: test_trust.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/trust-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
seen=0   # failures already reported by an earlier section
ok() { if [[ $fails -eq $seen ]]; then echo "ok: $*"; else echo "not ok: $*"; fi; seen=$fails; }
recipe="$data/recipe/tiny.yaml"
O="$tmp/run"
small=(--set "phases.pretrain.steps=40" --set "phases.pretrain.log_every=10")
sets=(--set "output=$O" --set "model.base=$O/base" "${small[@]}")
# expect CODE NAME -- CMD...: run CMD (stdout and stderr to $tmp/out, $tmp/err), check the exit code
expect() {
  local want=$1 name=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -ne $want ]]; then fail "$name: exit $rc, expected $want"; tail -5 "$tmp/err"; return 1; fi
}
mentions() { grep -qF -- "$2" "$tmp/$1" || { fail "$3: $1 lacks '$2'"; sed 's/^/    /' "$tmp/$1" | tail -8; }; }

# ---- a finished run, then reruns --------------------------------------------------------------
expect 0 "first run" -- "$xa" run "$recipe" "${sets[@]}" || exit 1
[[ -s $O/resolved-pkg.yaml ]] || fail "no resolved-pkg.yaml"
for d in base lang/en lang/de task/pkg/seed3 fusion/pkg/seed3 eval/pkg; do
  [[ -s $O/$d/xadapt-provenance.txt ]] || fail "no provenance in $d"
done
[[ $(wc -l <"$O/base/metrics.jsonl") -eq 4 ]] || fail "pretrain log_every=10 over 40 steps: $(wc -l <"$O/base/metrics.jsonl") lines, expected 4"
[[ $(grep -c '"inputs": "[0-9a-f]\{16\}"' "$O/eval/pkg/raw.jsonl") -eq $(wc -l <"$O/eval/pkg/raw.jsonl") ]] ||
  fail "eval cells without the id of their inputs"
cp "$O/resolved-pkg.yaml" "$tmp/resolved.before"
cp "$O/eval/pkg/raw.jsonl" "$tmp/raw.before"
cp "$O/base/xadapt-provenance.txt" "$tmp/base.prov"
[[ $(grep -c '"cell": "[0-9a-f]\{16\}"' "$O/eval/pkg/raw.jsonl") -eq 15 && $(wc -l <"$O/eval/pkg/cells.tsv") -eq 15 &&
   $(grep -c '"cell": "[0-9a-f]\{16\}"' "$O/eval/mlm/raw.jsonl") -eq 8 && $(grep -c '"cell"' "$O/eval/retrieval/raw.jsonl") -eq 4 ]] ||
  fail "eval cells without their identity (raw.jsonl \"cell\", cells.tsv)"
cp "$O/eval/pkg/results.json" "$tmp/results.before"
expect 0 "identical rerun" -- "$xa" run "$recipe" "${sets[@]}" && mentions out "skipped" "identical rerun" &&
  { mentions out "eval: 15 cells reused, 0 computed (pkg)" "identical rerun"; mentions out "eval: 8 cells reused, 0 computed (mlm)" "identical rerun";
    mentions out "eval: 4 cells reused, 0 computed (retrieval)" "identical rerun"; }
grep -q "from scratch\|resuming" "$tmp/out" "$tmp/err" && fail "identical rerun trained something"
grep -q "^eval: .* seed 3: " "$tmp/err" && fail "identical rerun evaluated a cell"
cmp -s "$O/eval/pkg/raw.jsonl" "$tmp/raw.before" && cmp -s "$O/eval/pkg/results.json" "$tmp/results.before" ||
  fail "reused cells changed raw.jsonl or results.json"
ok "first run, provenance of every artefact and eval cell, identical rerun skips and reuses every cell (log_every honoured by pretraining)"

# changed phase settings: an error naming the change and the way on; nothing rewritten
expect 2 "changed lang steps and task lr" -- "$xa" run "$recipe" "${sets[@]}" --set phases.lang.steps=60 --set phases.task.lr=3e-4 &&
  { mentions err "steps: was '30', now '60'" "changed settings"; mentions err "lr: was '0.001', now '0.0003'" "changed settings";
    mentions err "--force lang" "changed settings"; mentions err "another output" "changed settings"; }
cmp -s "$O/resolved-pkg.yaml" "$tmp/resolved.before" || fail "resolved-pkg.yaml rewritten by a refused run"
cmp -s "$O/eval/pkg/raw.jsonl" "$tmp/raw.before" || fail "eval results changed by a refused run"
# pretrain steps 40 -> 80 and another lr: refused (no resume of a finished schedule), base untouched
expect 2 "more pretrain steps" -- "$xa" run "$recipe" "${sets[@]}" --set phases.pretrain.steps=80 &&
  { mentions err "base" "more pretrain steps"; mentions err "--force pretrain" "more pretrain steps"; }
expect 2 "other pretrain lr" -- "$xa" train "$recipe" "${sets[@]}" --phase pretrain --set phases.pretrain.lr=2e-3
cmp -s "$O/base/xadapt-provenance.txt" "$tmp/base.prov" || fail "base provenance rewritten by a refused run"
# a second recipe (another output) pointing at the same base with other pretrain settings
expect 2 "second recipe on the same base" -- "$xa" run "$recipe" --set "output=$tmp/other" --set "model.base=$O/base" \
  --set phases.pretrain.steps=30
grep -q "steps: was '40', now '30'" "$tmp/err" || { fail "second recipe: the change is not named"; tail -3 "$tmp/err"; }
cmp -s "$O/base/xadapt-provenance.txt" "$tmp/base.prov" || fail "second recipe rewrote the base provenance"
[[ -e $tmp/other ]] && fail "a refused run created its output directory"
ok "changed settings (lang, task, pretrain steps/lr, a second recipe) are refused with what changed; nothing rewritten"

# a changed data file
cp -r "$data/recipe/mono" "$tmp/mono"
expect 0 "lang on copied corpora" -- "$xa" train "$recipe" "${sets[@]}" --set "output=$tmp/c" --set "data.mlm=$tmp/mono/{lang}.txt" --phase lang
echo "Eine neue Zeile." >>"$tmp/mono/de.txt"
expect 2 "changed corpus" -- "$xa" train "$recipe" "${sets[@]}" --set "output=$tmp/c" --set "data.mlm=$tmp/mono/{lang}.txt" --phase lang &&
  { mentions err "lang de" "changed corpus"; mentions err "corpus: was" "changed corpus"; }
ok "a rewritten corpus makes its adapter stale"

# ---- dry run ---------------------------------------------------------------------------------
expect 0 "dry run, fresh" -- "$xa" run "$recipe" --set "output=$tmp/dry" --set "model.base=$tmp/dry/base" --dry-run &&
  { mentions out "train    base" "dry run"; mentions out "train    lang fr" "dry run"; mentions out "evaluate pkg" "dry run"; }
[[ -e $tmp/dry ]] && fail "--dry-run wrote its output"
expect 0 "dry run, finished" -- "$xa" run "$recipe" "${sets[@]}" --dry-run && mentions out "skip     task pkg seed 3" "dry run"
expect 2 "dry run, stale" -- "$xa" run "$recipe" "${sets[@]}" --dry-run --set phases.lang.steps=60 &&
  mentions out "stale    lang de" "dry run stale"
ok "run --dry-run prints the plan (train / skip / stale / evaluate) and writes nothing"

# ---- --force --------------------------------------------------------------------------------
cp "$O/resolved-pkg.yaml" "$tmp/resolved.before"
expect 0 "train --force" -- "$xa" train "$recipe" "${sets[@]}" --phase task --force &&
  mentions out "from scratch" "train --force"
# the fusion built on the old task adapter is stale now: resolved-pkg.yaml must not claim it
mentions err "not rewritten" "train --force"
cmp -s "$O/resolved-pkg.yaml" "$tmp/resolved.before" || fail "resolved-pkg.yaml rewritten while the fusion is stale"
grep -q "resuming" "$tmp/err" && fail "train --force resumed its checkpoint"
# the fusion was built on the old task adapter: now stale
expect 2 "fusion after a retrained task" -- "$xa" run "$recipe" "${sets[@]}" && mentions err "fusion pkg seed 3" "stale fusion"
expect 0 "run --force lang" -- "$xa" run "$recipe" "${sets[@]}" --set phases.lang.steps=20 --force lang &&
  { mentions out "pretrain: $O/base exists; skipped" "run --force lang"; mentions out "lang de: " "run --force lang";
    grep -q "task pkg seed 3: .*from scratch" "$tmp/out" || fail "run --force lang did not retrain the task adapter"
    grep -q "fusion pkg seed 3: Stack" "$tmp/out" || fail "run --force lang did not retrain the fusion"; }
grep -q "^steps: 20" "$O/lang/de/xadapt-provenance.txt" || fail "lang provenance does not hold the new steps"
cell() { grep '"language": "de", "setup": "madx"' "$1" | sed 's/.*"inputs": "\([0-9a-f]*\)".*/\1/'; }
[[ -n $(cell "$tmp/raw.before") && $(cell "$tmp/raw.before") != $(cell "$O/eval/pkg/raw.jsonl") ]] ||
  fail "an eval cell on retrained adapters kept the id of the old ones"
# every task cell ran on retrained adapters; the MLM and retrieval cells of the bare base are reused
mentions out "eval: 0 cells reused, 15 computed (pkg)" "run --force lang"
mentions out "eval: 3 cells reused, 5 computed (mlm)" "run --force lang"
mentions out "eval: 2 cells reused, 2 computed (retrieval)" "run --force lang"
expect 0 "rerun after --force" -- "$xa" run "$recipe" "${sets[@]}" --set phases.lang.steps=20
grep -q "from scratch" "$tmp/out" && fail "rerun after --force trained again"
mentions out "eval: 15 cells reused, 0 computed (pkg)" "rerun after --force"
ok "train --force retrains; run --force lang retrains lang and what is built on it, not the base"

# a fusion records its base and is built on every language adapter: retraining one target's
# adapter (not an input of the task adapter, which sits on lang en) makes only the fusion stale
L20=(--set phases.lang.steps=20)
fcfg="$O/fusion/pkg/seed3/final/fusion/adapter_fusion_config.json"
grep -q '"xadapt_base_fingerprint": "[0-9a-f]\{16\}"' "$fcfg" || fail "adapter_fusion_config.json lacks the base fingerprint"
grep -q "^on lang de: provenance [0-9a-f]\{16\}$" "$O/fusion/pkg/seed3/xadapt-provenance.txt" &&
  grep -q "^on task pkg seed 3: provenance " "$O/fusion/pkg/seed3/xadapt-provenance.txt" ||
  fail "the fusion's provenance does not name its language and task adapters"
expect 0 "retrain lang de" -- "$xa" train "$recipe" "${sets[@]}" "${L20[@]}" --phase lang --lang de --force &&
  mentions out "lang de: " "retrain lang de"
expect 2 "fusion after a retrained lang de" -- "$xa" run "$recipe" "${sets[@]}" "${L20[@]}" &&
  { mentions err "fusion pkg seed 3" "stale fusion after lang de"; mentions err "on lang de: was 'provenance" "stale fusion after lang de"; }
grep -q "task pkg seed 3 (" "$tmp/err" && fail "retraining lang de made the task adapter (on lang en) stale"
cp "$O/eval/pkg/raw.jsonl" "$tmp/raw.before"
expect 0 "run --force fusion" -- "$xa" run "$recipe" "${sets[@]}" "${L20[@]}" --force fusion &&
  { grep -q "fusion pkg seed 3: Stack" "$tmp/out" || fail "run --force fusion did not retrain the fusion"; }
grep -q "task pkg seed 3: .*from scratch" "$tmp/out" && fail "run --force fusion retrained the task adapter"
ok "a fusion records its base fingerprint; a retrained language adapter makes it stale"

# per-cell reuse: exactly the cells on lang de (madx, madx2) and on the retrained fusion are
# computed again; every other cell (and its values) is reused
recomputed() { # OLD NEW: the cells whose identity changed, as sorted "lang_setup" words
  local key='s/.*"language": "\([^"]*\)", "setup": "\([^"]*\)".*"cell": "\([0-9a-f]*\)".*/\1_\2 \3/'
  sed "$key" "$1" | LC_ALL=C sort >"$tmp/c.old"
  sed "$key" "$2" | LC_ALL=C sort >"$tmp/c.new"
  LC_ALL=C comm -13 "$tmp/c.old" "$tmp/c.new" | cut -d' ' -f1 | LC_ALL=C sort | tr '\n' ' '
}
got=$(recomputed "$tmp/raw.before" "$O/eval/pkg/raw.jsonl")
[[ $got == "de_fusion de_madx de_madx2 en_fusion fr_fusion " ]] ||
  fail "after retraining lang de and the fusion, the cells computed again were '$got'"
mentions out "eval: 10 cells reused, 5 computed (pkg)" "per-cell reuse"
mentions out "eval: 7 cells reused, 1 computed (mlm)" "per-cell reuse"
mentions out "eval: 3 cells reused, 1 computed (retrieval)" "per-cell reuse"
[[ $(grep -c "^eval: .* seed 3: " "$tmp/err") -eq 5 ]] || fail "per-cell reuse: $(grep -c "^eval: .* seed 3: " "$tmp/err") task cells evaluated, expected 5"
# a changed test file: that language's cells, and only them
cp -r "$data/recipe/pkg" "$tmp/pkgt"
TT=(--set "data.task.test=$tmp/pkgt/{lang}.test.tsv")
expect 0 "eval on copied test files" -- "$xa" eval "$recipe" "${sets[@]}" "${L20[@]}" "${TT[@]}" &&
  mentions out "eval: 0 cells reused, 15 computed (pkg)" "eval on copied test files"
cp "$O/eval/pkg/raw.jsonl" "$tmp/raw.before"
sed -n 2p "$tmp/pkgt/fr.test.tsv" >>"$tmp/pkgt/fr.test.tsv"
expect 0 "eval after a changed test file" -- "$xa" eval "$recipe" "${sets[@]}" "${L20[@]}" "${TT[@]}" &&
  { mentions out "eval: 10 cells reused, 5 computed (pkg)" "changed test file"; mentions out "eval: 8 cells reused, 0 computed (mlm)" "changed test file"; }
got=$(recomputed "$tmp/raw.before" "$O/eval/pkg/raw.jsonl")
[[ $got == "fr_fusion fr_madx fr_madx2 fr_src_stack fr_task_only " ]] || fail "a changed fr test file recomputed '$got'"
grep -q '"language": "fr", "setup": "madx", "seed": 3, "n": 81,' "$O/eval/pkg/raw.jsonl" || fail "the fr cells do not count the added test line"
ok "eval cells: a rerun computes exactly the cells whose inputs changed (a retrained adapter, a changed test file)"

# ---- validation before any training -----------------------------------------------------------
F=(--set "output=$tmp/f" --set "model.base=$tmp/f/base")
expect 2 "missing target corpus" -- "$xa" run "$recipe" "${F[@]}" --set "languages.targets=[de, xx]" &&
  mentions err "xx.txt" "missing corpus"
[[ -e $tmp/f ]] && fail "missing corpus: something was written before the error"
cp -r "$data/recipe/pkg" "$tmp/pkg"
printf 'label\ttext\n4\tUnable to locate package\n' >"$tmp/pkg/de.test.tsv"
expect 2 "bad label in a target test file" -- "$xa" run "$recipe" "${F[@]}" --set "data.task.test=$tmp/pkg/{lang}.test.tsv" &&
  { mentions err "de.test.tsv:2" "bad test label"; mentions err "'4'" "bad test label"; }
[[ -e $tmp/f ]] && fail "bad test label: something was written before the error"
expect 2 "unknown setup" -- "$xa" eval "$recipe" "${sets[@]}" --set "phases.eval.setups=[madx3]" && mentions err "madx3" "unknown setup"
expect 2 "task name with a path" -- "$xa" eval "$recipe" "${sets[@]}" --set "data.task.name=../../escape" &&
  mentions err "not a plain name" "task name"
[[ -e $tmp/escape || -e $O/../escape ]] && fail "task name escaped the output"
expect 2 "--phase fusion without a fusion phase" -- "$xa" train "$data/recipe/tiny-code.yaml" --set "output=$tmp/nf" --set "model.base=$O/base" --phase fusion
[[ -e $tmp/nf ]] && fail "--phase fusion without one wrote its output"
ok "missing corpora, bad test labels, unknown setups, path names, missing phases: exit 2 before anything is written"

# ---- configuration errors: exit 2, one place ---------------------------------------------------
printf 'name: x\noutput: o\nmodel: {base: b}\nlanguages: {source: en, targets: [de, fr}\nphases: []\n' >"$tmp/syntax.yaml"
expect 2 "YAML syntax error" -- "$xa" run "$tmp/syntax.yaml" && mentions err "syntax.yaml:4:" "syntax error"
grep -q "column" "$tmp/err" && fail "syntax error names a second place"
mkdir -p "$tmp/a/b/c/d" && cp "$recipe" "$tmp/a/b/c/d/copy.yaml"   # its extends no longer resolves
expect 2 "copied recipe" -- "$xa" run "$tmp/a/b/c/d/copy.yaml" && { mentions err "tried /" "copied recipe"; mentions err "configs/training/madx.yaml" "copied recipe"; }
ok "YAML syntax and extends errors: exit 2, one place, the path tried"

# ---- shared outputs, failed eval ---------------------------------------------------------------
expect 0 "second task on the shared output" -- "$xa" run "$data/recipe/tiny-code.yaml" --set "output=$O" --set "model.base=$O/base"
[[ -s $O/resolved-code.yaml ]] || fail "no resolved-code.yaml"
grep -q 'name: "pkg"' "$O/resolved-pkg.yaml" || fail "resolved-pkg.yaml overwritten by the second task"
grep -q 'name: "code"' "$O/resolved-code.yaml" || fail "resolved-code.yaml is not the tagging task's"
cp "$O/eval/pkg/raw.jsonl" "$tmp/raw.good"; cp "$O/eval/pkg/results.md" "$tmp/md.good"
cp "$O/task/pkg/seed3/final/head/model_head.safetensors" "$tmp/head.bak"
printf 'garbage' >"$O/task/pkg/seed3/final/head/model_head.safetensors"
"$xa" eval "$recipe" "${sets[@]}" --set phases.lang.steps=20 >"$tmp/out" 2>"$tmp/err" && fail "eval with a damaged head: exit 0"
cmp -s "$O/eval/pkg/raw.jsonl" "$tmp/raw.good" || fail "a failed eval changed raw.jsonl"
cmp -s "$O/eval/pkg/results.md" "$tmp/md.good" || fail "a failed eval changed results.md"
cp "$tmp/head.bak" "$O/task/pkg/seed3/final/head/model_head.safetensors"
ok "recipes sharing an output keep one resolved-TASK.yaml each; a failed eval keeps the previous results"

# ---- pretrain: mlm_prob works, no silent overwrite, --resume needs a checkpoint -------------------
B2="$tmp/b2"
expect 0 "pretrain with mlm_prob" -- "$xa" train "$recipe" --set "output=$tmp/m" --set "model.base=$B2" "${small[@]}" \
  --set phases.pretrain.mlm_prob=0.3 --phase pretrain
cmp -s "$B2/model.safetensors" "$O/base/model.safetensors" && fail "pretrain mlm_prob had no effect"
grep -q "^mlm_prob: 0.3" "$B2/xadapt-provenance.txt" || fail "pretrain provenance lacks mlm_prob"
# an adapter and a head on another base: a warning
printf 'Unable to locate package\n' | "$xa" predict --base "$B2" --adapter "$O/task/pkg/seed3/final/adapter" \
  --head "$O/task/pkg/seed3/final/head" --setup pkg >"$tmp/out" 2>"$tmp/err" || { fail "predict on another base: exit $?"; tail -3 "$tmp/err"; }
[[ $(grep -c "another base" "$tmp/err") -ge 2 ]] || { fail "predict on another base: no warning for the adapter and the head"; cat "$tmp/err"; }
printf 'Unable to locate package\n' | "$xa" predict --base "$O/base" --adapter "$O/task/pkg/seed3/final/adapter" \
  --head "$O/task/pkg/seed3/final/head" --setup pkg >"$tmp/out" 2>"$tmp/err"
grep -q "another base" "$tmp/err" && fail "predict on its own base warned"
ok "pretrain mlm_prob works; an adapter or head on another base warns"

P="$tmp/pt"; tok="$O/base/sentencepiece.bpe.model"; corpus="$data/recipe/multi.txt"
pt=(pretrain --corpus "$corpus" --tokenizer "$tok" --seq 32 --batch 4 -j 1)
expect 2 "pretrain --resume without a checkpoint" -- "$xa" "${pt[@]}" --out "$P" --steps 3 --resume &&
  mentions err "no checkpoint" "pretrain --resume"
expect 0 "pretrain" -- "$xa" "${pt[@]}" --out "$P" --steps 6 --log-every 2
[[ $(wc -l <"$P/metrics.jsonl") -eq 3 ]] || fail "pretrain --log-every 2 over 6 steps: $(wc -l <"$P/metrics.jsonl") lines"
cp "$P/model.safetensors" "$tmp/pt.model"; cp "$P/metrics.jsonl" "$tmp/pt.metrics"
expect 2 "pretrain over a finished model" -- "$xa" "${pt[@]}" --out "$P" --steps 1 && mentions err "--force" "pretrain overwrite"
cmp -s "$P/model.safetensors" "$tmp/pt.model" || fail "pretrain without --force replaced the model"
# a fresh --force run that dies before its first checkpoint leaves the old metrics.jsonl
"$xa" "${pt[@]}" --out "$P" --steps 1000000 --ckpt-every 0 --force >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 500); do [[ -s $P/metrics.jsonl.tmp ]] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
cmp -s "$P/metrics.jsonl" "$tmp/pt.metrics" || fail "a failed fresh pretrain truncated metrics.jsonl"
expect 0 "pretrain --force" -- "$xa" "${pt[@]}" --out "$P" --steps 2 --force
[[ $(wc -l <"$P/metrics.jsonl") -ge 1 ]] && ! cmp -s "$P/metrics.jsonl" "$tmp/pt.metrics" || fail "pretrain --force did not replace the run"
ok "pretrain: --resume needs a checkpoint, --out over a finished model needs --force, a failed fresh run keeps metrics.jsonl"

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all trust tests passed"
