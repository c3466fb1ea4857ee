#!/usr/bin/env bash
# Crash safety of the checkpoint protocol (train/ckpt.c): training is killed with SIGKILL at random
# moments, the checkpoint swap widened by the XA_TEST_CKPT_SLEEP_MS hook so that many kills land
# inside it, and after every kill a copy of the output is resumed to the end and must hold exactly
# the adapter bytes of an uninterrupted run. Then the deterministic cases: a swap interrupted
# between its two renames (only checkpoint.old left), left-over temporaries, a run killed between
# its final outputs and its provenance, and a corpus that shrank or grew since the checkpoint (a
# clear error, exit 2). After every resume, metrics.jsonl holds each row once (those written after
# the checkpoint and before the kill are dropped when the run resumes).
# usage: test_kill.sh PATH/TO/xadapt   (XA_KILL_ROUNDS=N changes the number of kills per phase)
set -u
xa=${1:?usage: test_kill.sh XADAPT}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/kill-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
rounds=${XA_KILL_ROUNDS:-12}
recipe="$data/recipe/tiny.yaml"
mkdir -p "$tmp/mono"
cp "$data/recipe/mono/"*.txt "$tmp/mono/"
# a small base shared by every output; checkpoints after every step
common=(--set "model.base=$tmp/base" --set "phases.pretrain.steps=40" --set "data.mlm=$tmp/mono/{lang}.txt"
        --set "phases.lang.ckpt_every=1" --set "phases.task.ckpt_every=1" --set "phases.task.epochs=1")
at() { echo --set "output=$1"; }

"$xa" train "$recipe" $(at "$tmp/ref") "${common[@]}" --phase pretrain >/dev/null 2>"$tmp/pre.err" ||
  { fail "pretrain: exit $?"; tail -5 "$tmp/pre.err"; exit 1; }
"$xa" train "$recipe" $(at "$tmp/ref") "${common[@]}" --phase lang >/dev/null 2>&1 || fail "reference lang: exit $?"
"$xa" train "$recipe" $(at "$tmp/ref") "${common[@]}" --phase task >/dev/null 2>&1 || fail "reference task: exit $?"
ref_lang="$tmp/ref/lang/de/adapter.safetensors"
ref_task="$tmp/ref/task/pkg/seed3/final/adapter/adapter.safetensors"
[[ -s $ref_lang && -s $ref_task ]] || { fail "reference outputs missing"; exit 1; }

# The (type, step) of every metrics.jsonl row, as one line.
rows() { grep -o '"type": "[a-z]*", "phase": "[a-z]*", "step": [0-9]*' "$1" | sed 's/"phase": "[a-z]*", //' | tr '\n' ';'; }

# kill_rounds PHASE ARGS... : kill a run of the phase in $tmp/k at a random moment, resume a copy
# to the end and compare; continue the killed output until it finishes by itself.
kill_rounds() {
  local phase=$1 want=$2 got=$3; shift 3
  rm -rf "$tmp/k"; mkdir -p "$tmp/k"
  [[ $phase == task ]] && cp -a "$tmp/ref/lang" "$tmp/k/lang"
  local n=0 inside=0 before=$fails
  for ((i = 0; i < rounds; i++)); do
    XA_TEST_CKPT_SLEEP_MS=25 "$xa" train "$recipe" $(at "$tmp/k") "${common[@]}" --phase "$phase" "$@" \
      >/dev/null 2>>"$tmp/k.err" &
    local pid=$!
    sleep "0.$(printf '%03d' $((RANDOM % 900)))"
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    n=$((n + 1))
    compgen -G "$tmp/k/$got.old" >/dev/null && inside=$((inside + 1))
    rm -rf "$tmp/c"; cp -a "$tmp/k" "$tmp/c"
    local had=0   # a checkpoint to continue from (also one left as .old by a swap cut in half)
    compgen -G "$tmp/c/$got" >/dev/null || compgen -G "$tmp/c/$got.old" >/dev/null && had=1
    if ! "$xa" train "$recipe" $(at "$tmp/c") "${common[@]}" --phase "$phase" "$@" >"$tmp/c.out" 2>"$tmp/c.err"; then
      fail "$phase kill $n: the resumed run failed"; tail -3 "$tmp/c.err"; continue
    fi
    cmp -s "$tmp/c/$want" "$tmp/ref/$want" || fail "$phase kill $n: resumed adapter differs from the uninterrupted one"
    # metrics.jsonl holds each window and evaluation once, in order, as the uninterrupted run's
    local m=${got%/checkpoint}/metrics.jsonl
    [[ "$(rows "$tmp/c/$m")" == "$(rows "$tmp/ref/$m")" ]] ||
      fail "$phase kill $n: metrics rows $(rows "$tmp/c/$m"), uninterrupted: $(rows "$tmp/ref/$m")"
    # the same bytes also come from a silent restart at step 0: the run must have resumed
    if [[ $had == 1 ]] && ! grep -q "resuming at step\|exists; skipped" "$tmp/c.err" "$tmp/c.out" 2>/dev/null; then
      fail "$phase kill $n: a checkpoint existed but the run started over"
    fi
  done
  [[ $fails -eq $before ]] && echo "ok: $phase: $n kills (${inside} inside a checkpoint swap), every resume byte-identical, no metrics row twice"
}
kill_rounds lang lang/de/adapter.safetensors lang/de/checkpoint --lang de
kill_rounds task task/pkg/seed3/final/adapter/adapter.safetensors task/pkg/seed3/checkpoint

# a swap interrupted between its renames: only checkpoint.old, with a left-over temporary inside,
# and a left-over checkpoint.tmp
rm -rf "$tmp/s"
"$xa" train "$recipe" $(at "$tmp/s") "${common[@]}" --phase lang --lang de --set phases.lang.steps=15 >/dev/null 2>&1
ck="$tmp/s/lang/de/checkpoint"
rm -f "$tmp/s/lang/de/adapter_config.json" "$tmp/s/lang/de/xadapt-provenance.txt"
mv "$ck" "$ck.old"; echo junk >"$ck.old/adapter.safetensors.tmp.999"
mkdir -p "$ck.tmp/adapter"; echo junk >"$ck.tmp/adapter/adapter.safetensors.tmp.123"
if "$xa" train "$recipe" $(at "$tmp/s") "${common[@]}" --phase lang --lang de --set phases.lang.steps=15 \
     >/dev/null 2>"$tmp/s.err"; then
  grep -q "restored from" "$tmp/s.err" || fail "checkpoint.old: no 'restored' message"
  grep -q "resuming at step 15" "$tmp/s.err" || fail "checkpoint.old: did not resume at step 15"
  [[ -e $ck.old || -e $ck.tmp ]] && fail "left-over checkpoint.old / checkpoint.tmp not removed"
  echo "ok: resume from checkpoint.old (swap interrupted between its renames), left-overs removed"
else
  fail "resume from checkpoint.old: exit $?"; cat "$tmp/s.err"
fi

# killed after its final outputs, before its provenance (found by the random kills under ASan):
# the pending provenance marks the run as this recipe's, so the next run resumes and commits
rm -rf "$tmp/p"; cp -a "$tmp/ref" "$tmp/p"
pv="$tmp/p/task/pkg/seed3/xadapt-provenance"
grep -v '^run:' "$pv.txt" >"$pv.pending" && rm "$pv.txt"
if "$xa" train "$recipe" $(at "$tmp/p") "${common[@]}" --phase task >/dev/null 2>"$tmp/p.err"; then
  grep -q "resuming at step" "$tmp/p.err" || fail "killed before its provenance: did not resume"
  cmp -s "$tmp/p/task/pkg/seed3/final/adapter/adapter.safetensors" "$ref_task" ||
    fail "killed before its provenance: the adapter changed"
  [[ -s $pv.txt && ! -e $pv.pending ]] || fail "killed before its provenance: not committed"
  echo "ok: a run killed between its final outputs and its provenance resumes and commits"
else
  fail "killed before its provenance: exit $?"; cat "$tmp/p.err"
fi

# the corpus changed under an unfinished run: a clear error, not an assert or other data
rm -rf "$tmp/d"
"$xa" train "$recipe" $(at "$tmp/d") "${common[@]}" --phase lang --lang de >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do [[ -d $tmp/d/lang/de/checkpoint ]] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
cp "$tmp/mono/de.txt" "$tmp/de.orig"
head -n 3 "$tmp/de.orig" >"$tmp/mono/de.txt"   # shrank
"$xa" train "$recipe" $(at "$tmp/d") "${common[@]}" --phase lang --lang de >/dev/null 2>"$tmp/d.err"; rc=$?
[[ $rc -eq 2 ]] || { fail "shrunk corpus: exit $rc, expected 2"; cat "$tmp/d.err"; }
grep -q "training data changed" "$tmp/d.err" || { fail "shrunk corpus: message"; cat "$tmp/d.err"; }
cat "$tmp/de.orig" "$tmp/de.orig" >"$tmp/mono/de.txt"   # grew
"$xa" train "$recipe" $(at "$tmp/d") "${common[@]}" --phase lang --lang de >/dev/null 2>"$tmp/d.err"; rc=$?
[[ $rc -eq 2 ]] || { fail "grown corpus: exit $rc, expected 2"; cat "$tmp/d.err"; }
grep -q "data=" "$tmp/d.err" || { fail "grown corpus: the message does not name the data"; cat "$tmp/d.err"; }
cp "$tmp/de.orig" "$tmp/mono/de.txt"
echo "ok: a corpus that shrank or grew since the checkpoint is refused (exit 2)"

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all kill tests passed"
