# Shared helpers of the tests/cli scripts (source it after setting $tmp and fails=0).
#   expect WANT_RC DESCRIPTION -- CMD...   run CMD (stdin from $stdin or /dev/null), sets $out/$err
#   contains TEXT NEEDLE DESCRIPTION        TEXT holds NEEDLE
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" <"${stdin:-/dev/null}"
  local got=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
  if [[ $got -ne $want ]]; then
    echo "FAIL: $what: exit $got, expected $want"; echo "  stdout: ${out:0:400}"; echo "  stderr: ${err:0:600}"
    fails=$((fails + 1))
    return 1
  fi
  echo "ok: $what"
}
contains() {
  if [[ "$1" != *"$2"* ]]; then echo "FAIL: $3: output lacks '$2'"; echo "  got: ${1:0:600}"; fails=$((fails + 1)); fi
}
