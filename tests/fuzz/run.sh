#!/usr/bin/env bash
# Run the libFuzzer harnesses of tests/fuzz (README "Fuzzing").
#   tests/fuzz/run.sh HARNESS|all SECONDS   build build-fuzz/ (clang, -DXA_FUZZ=ON) and fuzz each
#                                           harness for SECONDS; print executions and crashes per
#                                           harness; exit 1 if any harness crashed
#   tests/fuzz/run.sh --list                the harness names
#   tests/fuzz/run.sh --replay NAME BINARY  (ctest) run BINARY, a replay program, on NAME's seeds
#                                           and on the committed crash inputs in crashes/NAME/
# Environment: XA_FUZZ_BUILD (default build-fuzz), XA_FUZZ_JOBS (build jobs, default 2),
# XA_FUZZ_ARGS (extra libFuzzer flags). The working corpus grows in $XA_FUZZ_BUILD/corpus/NAME
# (seeded from tests/data and tests/fuzz/seeds/NAME); crash inputs land in
# $XA_FUZZ_BUILD/artifacts/NAME/: copy each into tests/fuzz/crashes/NAME/ with the fix, so the
# replay test keeps it (a crash input must then run clean).
# The gcc build (XA_WERROR) is the warnings gate; clang's extra warnings do not stop fuzzing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=$root/tests/data
harnesses=(safetensors hf_config adapter_config head_config fusion_config adapter_setup setup recipe
           task_tsv task_jsonl task_conll task_pair_tsv task_pair_jsonl task_choice_jsonl task_qa mlm ckpt torchbin
           wordpiece tokenizer_json)

# The seed files of a harness: fixtures of tests/data (under 64 KiB) and tests/fuzz/seeds/NAME.
seeds() {
  local name=$1
  {
    case $name in
      safetensors)   find "$data" -name '*.safetensors' -size -64k ;;
      hf_config)     find "$data" -name 'config.json' -o -name '*.config.json'
                     find "$root/configs/models" -name '*.json' ;;
      adapter_config) find "$data" -name 'adapter_config*.json' ;;
      fusion_config) find "$data" -name 'adapter_fusion_config.json' ;;
      recipe)        find "$data/recipe" "$root/configs" -name '*.yaml' ;;
      task_tsv)      find "$data" -name '*.tsv' -path '*task*' -o -name '*.tsv' -path '*pkg*' ;;
      task_jsonl)    find "$data/task" -name '*.jsonl' ;;
      task_conll)    find "$data" -name '*.conll' ;;
      task_pair_tsv) find "$data/recipe/pairtask" -name '*.tsv' ;;
      task_pair_jsonl) find "$data/recipe/pairtask" "$data/task" -name '*.jsonl' ;;
      task_choice_jsonl) find "$data/recipe/copa" -name '*.jsonl' ;;
      task_qa)       find "$data/recipe/qa" -name '*.json*' ;;
      mlm)           find "$data/recipe/mono" "$data/spm" -name '*.txt' ;;
      torchbin)      find "$data/torchbin" -name '*.bin' -size -64k ;;
      wordpiece)     find "$data/wordpiece" -name 'heldout.txt'; find "$data/spm" -name 'heldout.txt' ;;
      tokenizer_json) find "$data/wordpiece" -name 'tokenizer.json' -o -name 'vocab.txt' -path '*/base/*' ;;
    esac
    if [[ -d "$here/seeds/$name" ]]; then find "$here/seeds/$name" -type f; fi
  } | sort
  return 0
}

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${harnesses[@]}"
  exit 0
fi

if [[ "${1:-}" == "--replay" ]]; then
  [[ $# -eq 3 ]] || { echo "usage: run.sh --replay NAME BINARY" >&2; exit 2; }
  name=$2 bin=$3
  mkdir -p "${TMPDIR:-/tmp}"
  mapfile -t files < <(seeds "$name"; if [[ -d "$here/crashes/$name" ]]; then find "$here/crashes/$name" -type f | sort; fi)
  [[ ${#files[@]} -gt 0 ]] || { echo "replay: no seeds for $name" >&2; exit 1; }
  exec "$bin" "${files[@]}"
fi

[[ $# -eq 2 && "$2" =~ ^[0-9]+$ ]] || { echo "usage: tests/fuzz/run.sh HARNESS|all SECONDS (harnesses: ${harnesses[*]})" >&2; exit 2; }
if [[ "$1" == all ]]; then
  run=("${harnesses[@]}")
else
  [[ " ${harnesses[*]} " == *" $1 "* ]] || { echo "run.sh: unknown harness '$1' (harnesses: ${harnesses[*]})" >&2; exit 2; }
  run=("$1")
fi
secs=$2
build=${XA_FUZZ_BUILD:-$root/build-fuzz}
[[ "$build" == /* ]] || build=$root/$build

command -v clang >/dev/null || { echo "run.sh: clang not found: run .ci/setup --fuzz" >&2; exit 1; }
mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
         -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXA_FUZZ=ON -DXA_TESTS=OFF -DXA_OPENMP=OFF &&
       cmake --build "$build" -j "${XA_FUZZ_JOBS:-2}" --target "${run[@]/#/fuzz_}"; } >"$build/build.log" 2>&1; then
  tail -30 "$build/build.log" >&2
  echo "run.sh: the fuzz build failed (log: $build/build.log)" >&2
  exit 1
fi

# Fixed, not inherited: CI exports its own ASAN_OPTIONS for the test suite.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export TMPDIR=$build/tmp
mkdir -p "$TMPDIR"
printf '%-16s %10s %12s %8s %8s\n' harness seconds executions exec/s crashes
failed=0
for name in "${run[@]}"; do
  corpus=$build/corpus/$name art=$build/artifacts/$name log=$build/logs/$name.log
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  seeds "$name" | while read -r f; do cp -f "$f" "$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")"; done
  # libFuzzer also writes slow-unit-* files (a unit over -report_slow_units, 10 s by default): on a
  # loaded host a unit that takes 0.1 s alone can cross it. Hangs are caught by -timeout (timeout-*
  # files, a failure); slow units are listed, not counted as crashes.
  failing() { find "$art" -type f ! -name 'slow-unit-*' | wc -l; }
  before=$(failing) slow_before=$(find "$art" -type f -name 'slow-unit-*' | wc -l)
  rc=0
  # shellcheck disable=SC2086
  "$build/tests/fuzz/fuzz_$name" "$corpus" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" ${XA_FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=$(( $(failing) - before ))
  slow=$(( $(find "$art" -type f -name 'slow-unit-*' | wc -l) - slow_before ))
  if (( slow > 0 )); then
    echo "  $name: $slow slow unit(s) over 10 s (not a failure; the host's load?): $art/slow-unit-*" >&2
  fi
  [[ $rc -ne 0 && $crashes -eq 0 ]] && crashes="rc=$rc"
  printf '%-16s %10s %12s %8s %8s\n' "$name" "$secs" "${execs:-?}" "$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "$crashes"
  if [[ $rc -ne 0 || "$crashes" != 0 ]]; then
    failed=1
    echo "  crash: see $log; inputs in $art/" >&2
    grep -m3 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY' "$log" >&2 || true
  fi
done
exit $failed
