#!/usr/bin/env bash
# recipes/summarize.py on hand-made raw.jsonl files (tests/data/summarize/eval/{t,mlm}): paired
# differences per target, the mean with the std over seeds, the count above zero, the MLM-gain
# table and the Pearson correlation, all worked out by hand (see the numbers below); and the error
# for a missing directory. Needs /usr/bin/python3 (or python3), no xadapt build.
# usage: test_summarize.sh [XADAPT]   (ignored; the CLI tests all receive it)
set -u
here="$(cd "$(dirname "$0")" && pwd)"
data=${XA_TEST_DATA:-$here/../data}
py=/usr/bin/python3
[[ -x $py ]] || py=python3
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
out=$("$py" "$here/../../recipes/summarize.py" "$data/summarize/eval/t" 2>&1) || fail "exit $?: $out"
# seed 1: de +2, fr -2, el +10 (mean 3.33); seed 2: de +6, fr 0, el +6 (mean 4.00)
for want in "| de | +4.0 |" "| fr | -1.0 |" "| el | +8.0 |" "| mean (targets; ± std over seeds) | +3.7 ± 0.5 |" \
            "| targets above zero | 2/3 |" "| el | 10.0 | 18.0 | +8.0 | +8.0 |" \
            "Pearson r (MLM gain, MAD-X gain) over 3 targets: +0.95"; do
  grep -qF -- "$want" <<<"$out" || fail "output lacks '$want'"
done
# el as the unseen group: seen de, fr per seed (2 - 2) / 2 = 0 and (6 + 0) / 2 = 3 -> 1.5 ± 2.1
# (std of 0 and 3: sqrt(4.5)); unseen el 10 and 6 -> 8.0 ± 2.8 (sqrt(8))
out=$("$py" "$here/../../recipes/summarize.py" "$data/summarize/eval/t" --unseen el 2>&1) || fail "--unseen: exit $?: $out"
for want in "| mean (seen targets; ± std over seeds) | +1.5 ± 2.1 |" "| seen targets above zero | 1/2 |" \
            "| mean (unseen targets; ± std over seeds) | +8.0 ± 2.8 |" "| unseen targets above zero | 1/1 |"; do
  grep -qF -- "$want" <<<"$out" || fail "--unseen output lacks '$want'"
done
if err=$("$py" "$here/../../recipes/summarize.py" "$data/summarize/none" 2>&1); then
  fail "a missing directory exited 0"
else
  grep -q "no such file" <<<"$err" || fail "missing directory: unclear error: $err"
fi
[[ $fails == 0 ]] && echo "all summarize tests passed"
exit $((fails > 0))
