#!/usr/bin/env bash
# Offline test of the benchmark preparation (recipes/data/prepare.py): tiny fixture help pages
# (tests/data/prep/help/{en-US,de,ja}) and man pages (tests/data/prep/man/{C,de}) are packed into
# .deb files with dpkg-deb and fed through --local-debs, so no network and no apt are used. Checks:
# the extraction rules (chrome, div.embedded, code, hidden MAC/WIN variants and id-less paragraphs
# skipped; spans -> BIO; character words for ja), the splits (test only translated paragraphs, the
# English test paragraph found verbatim in a training document dropped, no test text in mono or
# multi), the manifest (line counts and sha256), byte-identical outputs with a cold and a warm
# cache, and the errors (unknown language, missing package, foreign --out). Needs no xadapt build.
# usage: test_prepare.sh [XADAPT]   (the argument is ignored; the CLI tests all receive it)
set -u
here="$(cd "$(dirname "$0")" && pwd)"
data=${XA_TEST_DATA:-$here/../data}
prep="$here/../../recipes/data/prepare.py"
py=/usr/bin/python3
[[ -x $py ]] || py=python3
tmp=${XA_TEST_TMP:-/tmp}/prepare-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2'"; }
hasnt() { ! grep -qF -- "$2" "$1" || fail "$1 holds '$2'"; }

if ! command -v dpkg-deb >/dev/null; then echo "skip: dpkg-deb not found"; exit 0; fi

# 1. fixture packages
mkdeb() {  # NAME SRC_DIR DEST_DIR_IN_PACKAGE
  local root="$tmp/pkg/$1"
  mkdir -p "$root/DEBIAN" "$root/$3"
  cp -r "$2/." "$root/$3/"
  printf 'Package: %s\nVersion: 1.0-1\nArchitecture: all\nMaintainer: xadapt tests <t@example.org>\nDescription: fixture\n' \
    "$1" >"$root/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$tmp/debs/$1_1.0-1_all.deb" >/dev/null \
    || fail "dpkg-deb --build $1"
}
mkdir -p "$tmp/debs"
mkdeb libreoffice-help-en-us "$data/prep/help/en-US" usr/share/libreoffice/help/en-US
mkdeb libreoffice-help-de "$data/prep/help/de" usr/share/libreoffice/help/de
mkdeb libreoffice-help-ja "$data/prep/help/ja" usr/share/libreoffice/help/ja
mkdeb manpages "$data/prep/man/C" usr/share/man
mkdeb manpages-de "$data/prep/man/de" usr/share/man/de

man_opt=()
with_man=1
if ! command -v groff >/dev/null; then
  echo "note: groff not found (.ci/setup --data installs it): man pages left out"
  man_opt=(--man-pages -1); with_man=0
fi
run_prep() {  # OUT CACHE [extra args]
  local out=$1 cache=$2; shift 2
  "$py" "$prep" --out "$out" --cache "$cache" --langs en,de,ja --local-debs "$tmp/debs" \
    --jobs 1 "${man_opt[@]}" "$@"
}

# 2. a cold run
if run_prep "$tmp/o1" "$tmp/c1" 2>"$tmp/o1.err"; then
  echo "ok: prepare.py on the fixture"
else
  fail "prepare.py exit $?"; cat "$tmp/o1.err"
fi
o=$tmp/o1
for f in lo-mod/en.train.tsv lo-mod/en.dev.tsv lo-mod/en.test.tsv lo-mod/de.test.tsv lo-mod/de.train.tsv \
         lo-mod/ja.test.tsv lo-mod/ja.train.tsv lo-ui/en.train.conll lo-ui/en.dev.conll lo-ui/en.test.conll \
         lo-ui/de.test.conll lo-ui/ja.test.conll lo-ui/ja.train.conll mono/en.txt mono/de.txt mono/ja.txt \
         mono/de.heldout.txt multi.txt manifest.json; do
  [[ -f $o/$f ]] || fail "missing $f"
done

# extraction rules
[[ $(head -1 "$o/lo-mod/en.train.tsv") == $'label\ttext' ]] || fail "lo-mod header"
has "$o/lo-mod/en.train.tsv" $'swriter\tChoose Tools - AutoCorrect Options and click New.'
has "$o/lo-mod/en.train.tsv" "press Ctrl+Z right after"
for s in Command "embedded here" "without an id" "SELECT field1" "Dim aPicker" "Help for LibreOffice" \
         "This page is" "Short" "Choosing Menus"; do
  hasnt "$o/lo-mod/en.train.tsv" "$s"
done
has "$o/lo-mod/en.dev.tsv" $'scalc\tEnter =SUM(A1:A3) in the cell'
# test: translated only; the English paragraph found verbatim in a training document is dropped
has "$o/lo-mod/en.test.tsv" $'scalc\tSelect the range and choose Data - Sort'
has "$o/lo-mod/en.test.tsv" $'swriter\tThe Print dialog lets you choose'
hasnt "$o/lo-mod/en.test.tsv" "Choose Format - Cells"
hasnt "$o/lo-mod/en.test.tsv" "Windows only"
has "$o/lo-mod/de.test.tsv" "Markieren Sie den Bereich"
hasnt "$o/lo-mod/de.test.tsv" "Each sheet"
hasnt "$o/lo-mod/de.test.tsv" "Wählen Sie Format"
has "$o/lo-mod/ja.test.tsv" "ブックの各シート"
hasnt "$o/lo-mod/ja.train.tsv" "Writer documents"   # ja train holds translated paragraphs only
has "$o/lo-mod/ja.train.tsv" "Writer ドキュメント"
# LO-UI: BIO over words; ja split into characters
grep -v '^$' "$o"/lo-ui/*.conll | grep -vqE $'^[^:]*:[^\t ]+\t(O|[BI]-(MENU|EMPH|CODE))$' \
  && fail "a CoNLL line is not WORD<TAB>TAG"
tr '\n' ' ' <"$o/lo-ui/en.train.conll" >"$tmp/en.ui"
has "$tmp/en.ui" $'Choose\tO Tools\tB-MENU -\tI-MENU AutoCorrect\tI-MENU Options\tI-MENU and\tO click\tO New\tB-EMPH .\tO'
tr '\n' ' ' <"$o/lo-ui/en.dev.conll" >"$tmp/dev.ui"
has "$tmp/dev.ui" $'Enter\tO =\tB-CODE SUM\tI-CODE (\tI-CODE A1\tI-CODE :\tI-CODE A3\tI-CODE )\tI-CODE in\tO'
has "$tmp/dev.ui" $'press\tO Enter\tB-CODE to\tO'
tr '\n' ' ' <"$o/lo-ui/ja.test.conll" >"$tmp/ja.ui"
has "$tmp/ja.ui" $'デ\tB-MENU ー\tI-MENU タ\tI-MENU →\tI-MENU 並\tI-MENU べ\tI-MENU 替\tI-MENU え\tI-MENU を\tO'
has "$tmp/ja.ui" $'印\tB-CODE 刷\tI-CODE ダ\tO'
# mono / multi: no test-document text; cleaning
has "$o/mono/de.txt" "Writer-Dokumente können Text"
has "$o/mono/de.heldout.txt" "Markieren Sie den Bereich"
hasnt "$o/mono/de.txt" "Markieren Sie den Bereich"
hasnt "$o/mono/de.txt" "Each sheet"
hasnt "$o/mono/ja.txt" "The spreadsheet recalculates"  # untranslated (identical to English)
for s in "Select the range" "Markieren Sie den Bereich" "並べ替え"; do hasnt "$o/multi.txt" "$s"; done
if [[ $with_man -eq 1 ]]; then
  has "$o/mono/de.txt" "Der zweite Absatz der Seite ist lang genug"
  hasnt "$o/mono/de.txt" "This sentence is English"
  has "$o/mono/en.txt" "The second paragraph of the page is long enough"
fi
# boilerplate that occurs in a test document and in a training document is in no corpus
for f in mono/en.txt multi.txt pairs.tsv; do hasnt "$o/$f" "Choose Format - Cells"; done
# pairs: aligned paragraphs of train-split documents only; retrieval: of test-split documents
[[ $(head -1 "$o/pairs.tsv") == $'lang\ten\ttext' ]] || fail "pairs header"
has "$o/pairs.tsv" $'\tWriter-Dokumente können Text'
hasnt "$o/pairs.tsv" "Markieren Sie den Bereich"
hasnt "$o/pairs.tsv" "The spreadsheet recalculates"   # untranslated ja: not a pair
has "$o/retrieval/de.tsv" $'Select the range and choose Data - Sort'
has "$o/retrieval/de.tsv" "Markieren Sie den Bereich"
hasnt "$o/retrieval/de.tsv" "Writer-Dokumente"
# the split rule on every output: no test-set text (task tests, held-out, retrieval) in any corpus
check_leaks() {
"$py" - "$1" <<'EOF2'
import glob, os, sys
o = sys.argv[1]
lines = lambda p: open(p, encoding="utf-8").read().splitlines()
corpus = set(lines(os.path.join(o, "multi.txt")))
for p in glob.glob(os.path.join(o, "mono", "*.txt")):
    if not p.endswith(".heldout.txt"):
        corpus |= set(lines(p))
for f in ("pairs.tsv", "lang-pairs.tsv"):
    for x in lines(os.path.join(o, f))[1:]:
        corpus |= set(x.split("\t")[1:])
tests = []
for p in glob.glob(os.path.join(o, "lo-mod", "*.test.tsv")):
    tests += [x.split("\t", 1)[1] for x in lines(p)[1:]]
for p in glob.glob(os.path.join(o, "mono", "*.heldout.txt")):
    tests += lines(p)
for p in glob.glob(os.path.join(o, "retrieval", "*.tsv")):
    tests += [t for x in lines(p)[1:] for t in x.split("\t")]
leaks = [t for t in tests if t in corpus]
assert tests and not leaks, leaks[:3]
EOF2
}
check_leaks "$o" || fail "test text found in a corpus"

# unseen languages: kept out of multi.txt and pairs.tsv, still with their own mono corpus
run_prep "$tmp/ou" "$tmp/c1" --unseen ja 2>/dev/null || fail "--unseen ja"
hasnt "$tmp/ou/multi.txt" "Writer ドキュメント"
has "$o/multi.txt" "Writer ドキュメント"
[[ -s $tmp/ou/mono/ja.txt ]] || fail "--unseen ja: no mono/ja.txt"
cut -f1 "$tmp/ou/pairs.tsv" | grep -qx ja && fail "--unseen ja: ja pairs written"
cut -f1 "$o/pairs.tsv" | grep -qx ja || fail "no ja pairs without --unseen"
# lang-pairs.tsv: pairs.tsv's rows, then the unseen targets' (train-split only: check_leaks)
cmp -s "$o/pairs.tsv" "$o/lang-pairs.tsv" || fail "lang-pairs.tsv differs from pairs.tsv without --unseen"
cut -f1 "$tmp/ou/lang-pairs.tsv" | grep -qx ja || fail "--unseen ja: no ja rows in lang-pairs.tsv"
[[ $(head -n "$(wc -l <"$tmp/ou/pairs.tsv")" "$tmp/ou/lang-pairs.tsv" | cmp - "$tmp/ou/pairs.tsv" && echo same) == same ]] \
  || fail "--unseen ja: lang-pairs.tsv does not start with pairs.tsv's rows"
check_leaks "$tmp/ou" || fail "--unseen: test text found in a corpus"

# manifest: every file with its line count and sha256
"$py" - "$o" <<'EOF' || fail "manifest does not match the files"
import hashlib, json, os, sys
o = sys.argv[1]
m = json.load(open(os.path.join(o, "manifest.json")))
listed = set(m["files"])
found = {os.path.relpath(os.path.join(d, f), o) for d, _, fs in os.walk(o) for f in fs} - {"manifest.json"}
assert listed == found, (listed ^ found)
for rel, e in m["files"].items():
    data = open(os.path.join(o, rel), "rb").read()
    assert e["sha256"] == hashlib.sha256(data).hexdigest(), rel
    assert e["lines"] == data.count(b"\n"), rel
assert m["languages"] == ["en", "de", "ja"], m["languages"]
assert m["counts"]["lo-mod"]["en"]["test_dropped_verbatim_in_train"] == 1
assert m["packages"]["libreoffice-help-de"]["file"] == "libreoffice-help-de_1.0-1_all.deb"
EOF

# 3. determinism: a second cold cache and the warm cache give byte-identical outputs
run_prep "$tmp/o2" "$tmp/c2" 2>/dev/null || fail "second cold run"
run_prep "$tmp/o1" "$tmp/c1" 2>/dev/null || fail "warm rerun"
if diff -r "$tmp/o1" "$tmp/o2" >/dev/null; then echo "ok: byte-identical outputs (cold, cold, warm)"; else fail "outputs differ between runs"; fi
ls "$tmp" | grep -q -e '\.tmp-' -e '\.old-' && fail "staging directories left behind"

# 4. errors: nonzero exit, clear message, nothing half-written
"$py" "$prep" --out "$tmp/e1" --cache "$tmp/c1" --langs en,xx --local-debs "$tmp/debs" >/dev/null 2>"$tmp/e1.err" \
  && fail "--langs en,xx: exit 0"
grep -q "no LibreOffice help for xx" "$tmp/e1.err" || { fail "--langs en,xx: message"; cat "$tmp/e1.err"; }
"$py" "$prep" --out "$tmp/e2" --cache "$tmp/c1" --langs en,fr --local-debs "$tmp/debs" >/dev/null 2>"$tmp/e2.err" \
  && fail "missing package: exit 0"
grep -q "libreoffice-help-fr" "$tmp/e2.err" || { fail "missing package: message"; cat "$tmp/e2.err"; }
[[ -e $tmp/e1 || -e $tmp/e2 ]] && fail "a failed run left an output directory"
mkdir -p "$tmp/foreign" && echo keep >"$tmp/foreign/notes.txt"
run_prep "$tmp/foreign" "$tmp/c1" 2>"$tmp/e3.err" && fail "foreign --out: exit 0"
grep -q "refusing" "$tmp/e3.err" || fail "foreign --out: message"
[[ $(cat "$tmp/foreign/notes.txt") == keep && $(ls "$tmp/foreign" | wc -l) -eq 1 ]] || fail "foreign --out was touched"

if [[ $fails -gt 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all prepare tests passed"
