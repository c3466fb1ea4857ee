#!/usr/bin/python3
"""The sentence-pair and multiple-choice fixtures of tests/cli/test_tasks.sh (issue 16), made from
real text: the aligned Debian gettext messages of tests/data/recipe/pairs.tsv (LANG<TAB>en<TAB>text,
written by gen_recipe_fixture.py). Standard library only; run from the repository root:

    /usr/bin/python3 tests/golden/gen_task_fixtures.py

and commit tests/data/recipe/pairtask/ and tests/data/recipe/copa/.

pairtask/ (pair_classification, "is B the translation of A?"): every example is a message and
either its own translation ("aligned") or the translation of another message of the same
language ("unaligned"), half each, drawn with a fixed seed. en.train.tsv (TSV, English first side,
German second), en.dev.jsonl and {de,fr,en}.test.jsonl as JSON lines with the keys
premise / hypothesis / label and integer labels (0 aligned, 1 unaligned), the form an HF data-set
export has; the recipe maps the keys and names the labels (data.task.fields, data.task.labels).
de.test / fr.test put the German / French message first and the English one second; en.test is
held-out English-German.

copa/ (multiple_choice, COPA's JSON lines): premise = a message, choice1 / choice2 = its
translation and the translation of another message (the right one's position drawn), question
"effect", label = the index of the translation. en.* have English premises and German choices;
de.test / fr.test German / French premises and English choices.
"""
import json
import os
import random

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "recipe")
rows = []
with open(os.path.join(ROOT, "pairs.tsv"), encoding="utf-8") as f:
    next(f)
    for line in f:
        lang, en, text = line.rstrip("\n").split("\t")
        if "\t" in en or "\t" in text or not en.strip() or not text.strip():
            continue
        rows.append((lang, en, text))
by = {l: [(e, t) for (ll, e, t) in rows if ll == l] for l in ("de", "fr")}
rng = random.Random(16)
for l in by:
    rng.shuffle(by[l])
de_train, de_dev, de_test = by["de"][:160], by["de"][160:200], by["de"][200:260]
fr_test = by["fr"][:60]


def pair_examples(items, first_en):
    out = []
    for i, (en, x) in enumerate(items):
        a, b = (en, x) if first_en else (x, en)
        if rng.random() < 0.5:
            out.append((a, b, 0))
        else:
            j = (i + 1 + rng.randrange(len(items) - 1)) % len(items)
            other = items[j][1] if first_en else items[j][0]
            out.append((a, other, 1))
    return out


def copa_examples(items, first_en):
    out = []
    for i, (en, x) in enumerate(items):
        prem, right = (en, x) if first_en else (x, en)
        j = (i + 1 + rng.randrange(len(items) - 1)) % len(items)
        wrong = items[j][1] if first_en else items[j][0]
        lab = rng.randrange(2)
        ch = [right, wrong] if lab == 0 else [wrong, right]
        out.append({"premise": prem, "choice1": ch[0], "choice2": ch[1], "question": "effect", "label": lab})
    return out


def write_jsonl(path, objs):
    with open(path, "w", encoding="utf-8") as f:
        for o in objs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")


names = ["aligned", "unaligned"]
pdir, cdir = os.path.join(ROOT, "pairtask"), os.path.join(ROOT, "copa")
os.makedirs(pdir, exist_ok=True)
os.makedirs(cdir, exist_ok=True)
with open(os.path.join(pdir, "en.train.tsv"), "w", encoding="utf-8") as f:
    f.write("label\ttext\ttext_pair\n")
    for a, b, y in pair_examples(de_train, True):
        f.write("%s\t%s\t%s\n" % (names[y], a, b))
for name, items, first_en in (("en.dev", de_dev, True), ("en.test", de_test, True), ("de.test", de_test, False),
                              ("fr.test", fr_test, False)):
    write_jsonl(os.path.join(pdir, name + ".jsonl"),
                [{"premise": a, "hypothesis": b, "label": y} for a, b, y in pair_examples(items, first_en)])
for name, items, first_en in (("en.train", de_train, True), ("en.dev", de_dev, True), ("en.test", de_test, True),
                              ("de.test", de_test, False), ("fr.test", fr_test, False)):
    write_jsonl(os.path.join(cdir, name + ".jsonl"), copa_examples(items, first_en))
print("wrote", pdir, cdir)
