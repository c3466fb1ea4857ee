#!/usr/bin/env bash
# Data-parallel training over MPI (issue 13) on the tiny recipe, 2 ranks on one machine
# (mpirun --oversubscribe). Added by CMake only in a -DXA_MPI=ON build where mpirun exists.
#  - pretrain, lang and task: 2 ranks with batch B (B/2 rows each) end with the weights of one
#    process with batch B in grad_accum 2 pieces, dropout on (the pieces draw their dropout masks
#    from per-piece streams, so both runs use the same masks), and, dropout 0, of one process
#    with one batch of B;
#  - a bad split (batch_size not divisible by grad_accum x ranks) exits 2 on every rank;
#  - kill -9 of one rank stops the run (mpirun names the rank), leaves no final output or
#    provenance, and the run resumes with 2 ranks to the bytes of an uninterrupted 2-rank run,
#    and with 1 process (another number of ranks) to a finished adapter within the tolerance.
# Tolerance: the runs differ only in the order of float sums (a gradient is the sum of two
# half-batch sums, added by MPI, instead of one accumulation), as tests/test_accum.c explains for
# grad_accum: ~1e-7 relative per gradient, carried by AdamW over the steps. Measured here: 1.4e-6
# on the pretrained encoder (every weight trains, 20 steps at lr 1e-3), 1e-8 to 5e-7 on the
# adapters and the head. Bounds: atol 2e-5 + rtol 1e-4 on weights (14x the largest), far below
# what a wrong split does (one rank's half alone, or a doubled gradient, moves weights by ~1e-3).
# usage: test_mpi.sh PATH/TO/xadapt PATH/TO/st_close PATH/TO/mpirun
set -u
xa=${1:?usage: test_mpi.sh XADAPT ST_CLOSE MPIRUN}
st_close=${2:?usage}
mpirun=${3:?usage}
data=${XA_TEST_DATA:-$(dirname "$0")/../data}
tmp=${XA_TEST_TMP:-/tmp}/mpi-$$
mkdir -p "$tmp"
[[ -n "${XA_KEEP_TMP:-}" ]] || trap 'rm -rf "$tmp"' EXIT
fails=0
. "$(dirname "$0")/../cli/lib.sh"
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none # containers without ptrace rights (CMA)
mpi2=("$mpirun" -np 2 --oversubscribe --bind-to none)
recipe="$data/recipe/tiny.yaml"
common=(--set "model.base=$tmp/base" --set phases.pretrain.steps=20 -j 1 -q)
at() { echo --set "output=$tmp/$1"; }
close() { # A B WHAT: safetensors A within the tolerance of B
  local r
  r=$("$st_close" "$1" "$2" 2e-5 1e-4); local rc=$?
  if [[ $rc == 0 ]]; then echo "ok: $3 ($r)"; else fail "$3: $r"; fi
}
ptdrop=(--set phases.pretrain.hidden_dropout=0 --set phases.pretrain.attention_dropout=0)
nodrop=(--set phases.lang.hidden_dropout=0 --set phases.lang.attention_dropout=0
        --set phases.task.hidden_dropout=0 --set phases.task.attention_dropout=0)

# ---- pretrain: 2 ranks = grad_accum 2 (dropout on); = batch B (dropout 0) ----
pt=(--phase pretrain --set "model.base=$tmp/PT/base")
expect 0 "pretrain, 2 ranks" -- "${mpi2[@]}" "$xa" train "$recipe" $(at r2) "${common[@]}" "${pt[@]/PT/r2}"
expect 0 "pretrain, 1 process, grad_accum 2" -- "$xa" train "$recipe" $(at a2) "${common[@]}" "${pt[@]/PT/a2}" \
  --set phases.pretrain.grad_accum=2
close "$tmp/r2/base/model.safetensors" "$tmp/a2/base/model.safetensors" "pretrain: 2 ranks = grad_accum 2, dropout on"
for f in metrics.jsonl train.log checkpoint; do [[ -e "$tmp/r2/base/$f" ]] || fail "pretrain, 2 ranks: no $f"; done
grep -q "data-parallel over 2 ranks" "$tmp/r2/base/train.log" || fail "train.log does not say the run was data-parallel"
[[ $(grep -c '"type": "train"' "$tmp/r2/base/metrics.jsonl") == $(grep -c '"type": "train"' "$tmp/a2/base/metrics.jsonl") ]] \
  || fail "pretrain metrics rows differ in number (one writer expected)"
expect 0 "pretrain, 2 ranks, dropout 0" -- "${mpi2[@]}" "$xa" train "$recipe" $(at r2z) "${common[@]}" "${pt[@]/PT/r2z}" "${ptdrop[@]}"
expect 0 "pretrain, 1 process, dropout 0" -- "$xa" train "$recipe" $(at a1z) "${common[@]}" "${pt[@]/PT/a1z}" "${ptdrop[@]}"
close "$tmp/r2z/base/model.safetensors" "$tmp/a1z/base/model.safetensors" "pretrain: 2 ranks = batch B, dropout 0"

# ---- a shared single-process base for the adapter phases ----
expect 0 "pretrain the shared base" -- "$xa" train "$recipe" $(at base) "${common[@]}" --phase pretrain
lang=(--phase lang --lang en --set phases.lang.ckpt_every=2)

# ---- lang and task: 2 ranks = grad_accum 2 (dropout on) ----
expect 0 "lang en, 2 ranks" -- "${mpi2[@]}" "$xa" train "$recipe" $(at l2) "${common[@]}" "${lang[@]}"
expect 0 "lang en, grad_accum 2" -- "$xa" train "$recipe" $(at g2) "${common[@]}" "${lang[@]}" --set phases.lang.grad_accum=2
close "$tmp/l2/lang/en/adapter.safetensors" "$tmp/g2/lang/en/adapter.safetensors" "lang: 2 ranks = grad_accum 2, dropout on"
task=(--phase task --set phases.task.epochs=1 --set phases.task.eval_every=5)
expect 0 "task, 2 ranks" -- "${mpi2[@]}" "$xa" train "$recipe" $(at l2) "${common[@]}" "${task[@]}" \
  --set phases.lang.ckpt_every=2
expect 0 "task, grad_accum 2" -- "$xa" train "$recipe" $(at g2) "${common[@]}" "${task[@]}" \
  --set phases.lang.ckpt_every=2 --set phases.lang.grad_accum=2 --set phases.task.grad_accum=2
fin2="$tmp/l2/task/pkg/seed3/final" fing="$tmp/g2/task/pkg/seed3/final"
n=0
while IFS= read -r f; do
  close "$f" "$fing/${f#"$fin2"/}" "task: 2 ranks = grad_accum 2: ${f#"$fin2"/}"; n=$((n + 1))
done < <(find "$fin2" -name '*.safetensors' | sort)
[[ $n -ge 2 ]] || fail "task: only $n weight files in $fin2"
cmp -s "$tmp/l2/task/pkg/seed3/dev.json" "$tmp/g2/task/pkg/seed3/dev.json" || fail "task: dev.json differs"
# evaluation under mpirun: rank 0 evaluates and writes the tables, the table is printed once
expect 0 "eval, 2 ranks" -- "${mpi2[@]}" "$xa" eval "$recipe" $(at l2) "${common[@]}" \
  --set phases.task.epochs=1 --set phases.task.eval_every=5 --set phases.lang.ckpt_every=2 --set "phases.eval.setups=[task_only]"
[[ -s "$tmp/l2/eval/pkg/results.json" ]] || fail "eval with 2 ranks wrote no results.json"
[[ $(grep -c "computed (pkg)" <<<"$out") == 1 ]] || fail "the eval table was not printed exactly once: $(head -c 400 <<<"$out")"
# dropout 0: 2 ranks = one batch of B (lang and task on the same language adapter)
expect 0 "lang en, 2 ranks, dropout 0" -- "${mpi2[@]}" "$xa" train "$recipe" $(at z2) "${common[@]}" "${lang[@]}" "${nodrop[@]}"
expect 0 "lang en, 1 process, dropout 0" -- "$xa" train "$recipe" $(at z1) "${common[@]}" "${lang[@]}" "${nodrop[@]}"
close "$tmp/z2/lang/en/adapter.safetensors" "$tmp/z1/lang/en/adapter.safetensors" "lang: 2 ranks = batch B, dropout 0"
expect 0 "task, 2 ranks, dropout 0" -- "${mpi2[@]}" "$xa" train "$recipe" $(at z2) "${common[@]}" "${task[@]}" "${nodrop[@]}" \
  --set phases.lang.ckpt_every=2
expect 0 "task, 1 process, dropout 0" -- "$xa" train "$recipe" $(at z1) "${common[@]}" "${task[@]}" "${nodrop[@]}" \
  --set phases.lang.ckpt_every=2
while IFS= read -r f; do
  close "$f" "$tmp/z1/task/pkg/seed3/final/${f#"$tmp/z2/task/pkg/seed3/final/"}" "task: 2 ranks = batch B, dropout 0: ${f#"$tmp/z2/task/pkg/seed3/final/"}"
done < <(find "$tmp/z2/task/pkg/seed3/final" -name '*.safetensors' | sort)

# ---- a batch the ranks cannot split: exit 2 ----
expect 2 "batch 8 in grad_accum 8 pieces on 2 ranks" -- "${mpi2[@]}" "$xa" train "$recipe" $(at e1) "${common[@]}" \
  --phase lang --lang de --set phases.lang.grad_accum=8
contains "$err" "batch_size 8 with grad_accum 8 on 2 ranks" "the split's message"

# ---- kill -9 of one rank, then resume (2 ranks: the same bytes; 1 process: finished, close) ----
de=(--phase lang --lang de --set phases.lang.ckpt_every=2)
expect 0 "lang de, 2 ranks, uninterrupted" -- "${mpi2[@]}" "$xa" train "$recipe" $(at ref) "${common[@]}" "${de[@]}"
kill_one() { # OUT: start 2 ranks, kill -9 one of them after its first checkpoint
  XA_TEST_CKPT_SLEEP_MS=30 "${mpi2[@]}" "$xa" train "$recipe" $(at "$1") "${common[@]}" "${de[@]}" "${@:2}" \
    >"$tmp/kill.out" 2>"$tmp/kill.err" &
  local mp=$! ranks="" i
  for ((i = 0; i < 300; i++)); do
    [[ -d "$tmp/$1/lang/de/checkpoint" ]] && break
    sleep 0.02
  done
  ranks=$(ps -o pid= --ppid "$mp" 2>/dev/null | tr -d ' ')
  local victim
  victim=$(echo "$ranks" | tail -n 1)
  if [[ -n "$victim" ]]; then kill -9 "$victim"; fi
  wait "$mp"
  killrc=$?
}
kill_one k
[[ $killrc != 0 ]] && echo "ok: the run stopped with exit $killrc" || fail "mpirun exited 0 after a rank was killed"
grep -qi "signal 9\|killed" "$tmp/kill.err" && echo "ok: mpirun names the killed rank" || fail "no clear error: $(head -c 600 "$tmp/kill.err")"
[[ ! -e "$tmp/k/lang/de/adapter.safetensors" && ! -e "$tmp/k/lang/de/xadapt-provenance.txt" ]] \
  || fail "the killed run left a final output or its provenance"
expect 0 "resume with 2 ranks" -- "${mpi2[@]}" "$xa" train "$recipe" $(at k) "${common[@]}" "${de[@]}"
grep -q "resuming at step" "$tmp/k/lang/de/train.log" || fail "the 2-rank run did not resume from a checkpoint"
cmp -s "$tmp/k/lang/de/adapter.safetensors" "$tmp/ref/lang/de/adapter.safetensors" \
  && echo "ok: the resumed 2-rank adapter has the uninterrupted run's bytes" \
  || fail "the resumed 2-rank adapter differs from the uninterrupted one"
[[ $(grep -c '"type": "train"' "$tmp/k/lang/de/metrics.jsonl") == 3 ]] || fail "resumed metrics rows: not 3 windows"
kill_one k1 "${nodrop[@]}"
expect 0 "resume the 2-rank run with 1 process" -- "$xa" train "$recipe" $(at k1) "${common[@]}" "${de[@]}" "${nodrop[@]}"
grep -q "resuming at step" "$tmp/k1/lang/de/train.log" || fail "the 1-process run did not resume the 2-rank checkpoint"
expect 0 "lang de, 1 process, dropout 0, uninterrupted" -- "$xa" train "$recipe" $(at z1) "${common[@]}" "${de[@]}" "${nodrop[@]}"
close "$tmp/k1/lang/de/adapter.safetensors" "$tmp/z1/lang/de/adapter.safetensors" "2 ranks killed, resumed by 1 process"

[[ $fails == 0 ]] && echo "all MPI tests passed" || echo "$fails failure(s)"
exit $((fails > 0))
