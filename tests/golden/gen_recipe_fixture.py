#!/usr/bin/python3
"""Small real multilingual fixtures for the end-to-end recipe test (tests/cli/test_recipe.sh),
from the gettext catalogues Debian installs under /usr/share/locale (apt, coreutils, gtk30, git,
...): the English msgid and its professional translations are aligned by construction.

Writes tests/data/recipe/:
  multi.txt               pretraining text: English msgids and en/de/fr translations, shuffled
  mono/{en,de,fr}.txt     language-adapter text (messages outside the task's test split)
  pkg/en.{train,dev}.tsv  "package<TAB>message": which package a message comes from (4 classes)
  pkg/{en,de,fr}.test.tsv the test split's messages in each language (untranslated ones dropped)
  code/en.{train,dev}.conll, code/{en,de,fr}.test.conll
                          word<TAB>tag: printf conversions and command-line options are B-CODE
  pairs.tsv               "lang<TAB>en<TAB>text": aligned messages of the mono packages (TLM, alignment)
  retrieval/{de,fr}.tsv   "en<TAB>text": the task's test messages and their translations (retrieval)
The split is by a hash of the English msgid (70/10/20), the same for every language.
Run with Debian's python (no third-party modules):  /usr/bin/python3 tests/golden/gen_recipe_fixture.py
"""
import gettext
import hashlib
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "recipe")
PACKAGES = ["apt", "coreutils", "gtk30", "git"]
LANGS = ["de", "fr"]
PER_CLASS = 90        # English task messages per package
MONO = 400            # lines per language-adapter corpus
CODE_RE = re.compile(r"^(%[-+ #0-9.*]*[a-zA-Z]+|--?[a-zA-Z][-a-zA-Z0-9=]*)[,.:;)]*$")


def catalog(lang, pkg):
    path = f"/usr/share/locale/{lang}/LC_MESSAGES/{pkg}.mo"
    with open(path, "rb") as f:
        return gettext.GNUTranslations(f)._catalog


def clean(s):
    s = " ".join(s.replace("\t", " ").split())
    return s


def split_of(msgid):
    h = int(hashlib.md5(msgid.encode()).hexdigest(), 16) % 10
    return "train" if h < 7 else ("dev" if h < 8 else "test")


def main():
    rng = random.Random(7)
    cats = {(l, p): catalog(l, p) for l in LANGS for p in PACKAGES}
    rows = []  # (package, msgid, {lang: msgstr})
    for p in PACKAGES:
        keys = sorted(k for k in cats[(LANGS[0], p)] if isinstance(k, str) and k)
        keys = [k for k in keys if 20 <= len(clean(k)) <= 160 and len(clean(k).split()) >= 3]
        rng.shuffle(keys)
        n = 0
        for k in keys:
            tr = {l: clean(cats[(l, p)].get(k, "")) for l in LANGS}
            if any(not v or v == clean(k) for v in tr.values()):
                continue
            rows.append((p, clean(k), tr))
            n += 1
            if n == PER_CLASS:
                break
    os.makedirs(os.path.join(OUT, "mono"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "pkg"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "code"), exist_ok=True)
    split = {s: [r for r in rows if split_of(r[1]) == s] for s in ("train", "dev", "test")}
    for s in ("train", "dev"):
        with open(os.path.join(OUT, "pkg", f"en.{s}.tsv"), "w") as f:
            f.write("label\ttext\n")
            for p, m, _ in split[s]:
                f.write(f"{p}\t{m}\n")
    for l in ["en"] + LANGS:
        with open(os.path.join(OUT, "pkg", f"{l}.test.tsv"), "w") as f:
            f.write("label\ttext\n")
            for p, m, tr in split["test"]:
                f.write(f"{p}\t{m if l == 'en' else tr[l]}\n")

    def conll(text):
        out = []
        for w in text.split():
            out.append(f"{w}\t{'B-CODE' if CODE_RE.match(w) else 'O'}")
        return "\n".join(out) + "\n\n"

    for s in ("train", "dev"):
        with open(os.path.join(OUT, "code", f"en.{s}.conll"), "w") as f:
            for _, m, _ in split[s]:
                f.write(conll(m))
    for l in ["en"] + LANGS:
        with open(os.path.join(OUT, "code", f"{l}.test.conll"), "w") as f:
            for _, m, tr in split["test"]:
                f.write(conll(m if l == "en" else tr[l]))

    # language-adapter and pretraining text: other messages of other packages (no test text)
    test_ids = {m for _, m, _ in split["test"]}
    mono = {l: [] for l in ["en"] + LANGS}
    pairs = []
    for p in ["dpkg", "tar", "grep", "sed", "findutils", "diffutils", "bash", "glib20", "systemd", "wget"]:
        try:
            c = {l: catalog(l, p) for l in LANGS}
        except OSError:
            continue
        for k in sorted(x for x in c[LANGS[0]] if isinstance(x, str) and x):
            if clean(k) in test_ids or len(clean(k)) < 20:
                continue
            mono["en"].append(clean(k))
            for l in LANGS:
                v = clean(c[l].get(k, ""))
                if v and v != clean(k):
                    mono[l].append(v)
                    pairs.append((l, clean(k), v))
    multi = []
    for l, lines in mono.items():
        lines = sorted(set(lines))
        rng.shuffle(lines)
        lines = lines[:MONO]
        with open(os.path.join(OUT, "mono", f"{l}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        multi += lines
    multi += [m for _, m, _ in split["train"]]
    rng.shuffle(multi)
    with open(os.path.join(OUT, "multi.txt"), "w") as f:
        f.write("\n".join(multi) + "\n")
    pairs = sorted(set(pairs))
    rng.shuffle(pairs)
    with open(os.path.join(OUT, "pairs.tsv"), "w") as f:
        f.write("lang\ten\ttext\n")
        f.write("".join(f"{l}\t{a}\t{b}\n" for l, a, b in pairs[:2 * MONO]))
    os.makedirs(os.path.join(OUT, "retrieval"), exist_ok=True)
    for l in LANGS:
        with open(os.path.join(OUT, "retrieval", f"{l}.tsv"), "w") as f:
            f.write("en\ttext\n")
            seen = set()
            for _, m, tr in split["test"]:
                if m not in seen and tr[l] not in seen:
                    seen.update((m, tr[l]))
                    f.write(f"{m}\t{tr[l]}\n")
    print({s: len(v) for s, v in split.items()}, {l: min(len(v), MONO) for l, v in mono.items()}, len(multi))


if __name__ == "__main__":
    main()
