#!/usr/bin/python3
"""The extractive question-answering fixtures of tests/cli/test_tasks.sh (issue 16), made from real
text: the aligned Debian gettext messages of tests/data/recipe/pairs.tsv (LANG<TAB>en<TAB>text,
written by gen_recipe_fixture.py). Standard library only; run from the repository root:

    /usr/bin/python3 tests/golden/gen_qa_fixtures.py

and commit tests/data/recipe/qa/.

The rule (cloze questions with a definite answer span, the same in every language):
  - a message qualifies when it has 3 to 14 words and a word of 4 or more letters (str.isalpha);
    its answer is its longest such word (the first on a tie);
  - a context is 4 qualifying messages of one language, each ended by a full stop when it has no
    final punctuation, joined by spaces;
  - each of the first 3 messages of a context gives a question: the message with its answer word
    replaced by "___" (the question is left out when the answer occurs more than once in the
    context, so every answer_start is definite).
Splits: the German rows of pairs.tsv give the English training contexts (50), the English dev
contexts (10) and 20 held-out contexts written twice, from the English sides (en.test) and from
their German translations (de.test: the same messages, aligned); the French rows give fr.test
(20 contexts). Messages qualify only when both sides do (German rows) or the French side does.
Formats: en.train.json is the SQuAD JSON layout (data / paragraphs / qas, answers with
answer_start in characters), en.dev.jsonl and {en,de,fr}.test.jsonl the flat HF datasets export
({"id", "title", "context", "question", "answers": {"text": [...], "answer_start": [...]}}).
"""
import json
import os
import random

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "recipe")


def answer_word(msg):
    words = msg.split()
    if not 3 <= len(words) <= 14:
        return None
    best = None
    for w in words:
        if w.isalpha() and len(w) >= 4 and (best is None or len(w) > len(best)):
            best = w
    return best


def context_of(msgs):
    out = []
    for m in msgs:
        m = m.strip()
        out.append(m if m[-1] in ".!?:" else m + ".")
    return " ".join(out)


def questions(msgs, tag, k):
    """SQuAD-style questions of one context; k numbers the context."""
    ctx = context_of(msgs)
    qas, at = [], 0
    for i, m in enumerate(msgs):
        m = m.strip()
        start = ctx.index(m, at)
        at = start + len(m)
        if i >= 3:
            continue
        a = answer_word(m)
        if ctx.count(a) != 1:
            continue
        pos = m.index(a)
        q = m[:pos] + "___" + m[pos + len(a):]
        qas.append({"id": "%s-%d-%d" % (tag, k, i), "question": q,
                    "answers": [{"text": a, "answer_start": start + pos}]})
        assert ctx[start + pos:start + pos + len(a)] == a
    return ctx, qas


rows = []
with open(os.path.join(ROOT, "pairs.tsv"), encoding="utf-8") as f:
    next(f)
    for line in f:
        lang, en, text = line.rstrip("\n").split("\t")
        rows.append((lang, en, text))
rng = random.Random(1616)
de = [(e, t) for (l, e, t) in rows if l == "de" and answer_word(e) and answer_word(t)]
fr = [t for (l, e, t) in rows if l == "fr" and answer_word(t)]
rng.shuffle(de)
rng.shuffle(fr)
train, dev, test = de[:200], de[200:240], de[240:320]
assert len(test) == 80 and len(fr) >= 80, (len(de), len(fr))


def groups(items):
    return [items[i:i + 4] for i in range(0, len(items) - 3, 4)]


def flat(tag, contexts):
    out = []
    for k, msgs in enumerate(contexts):
        ctx, qas = questions(msgs, tag, k)
        for qa in qas:
            a = qa["answers"][0]
            out.append({"id": qa["id"], "title": tag, "context": ctx, "question": qa["question"],
                        "answers": {"text": [a["text"]], "answer_start": [a["answer_start"]]}})
    return out


def write_jsonl(path, objs):
    with open(path, "w", encoding="utf-8") as f:
        for o in objs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")


out = os.path.join(ROOT, "qa")
os.makedirs(out, exist_ok=True)
paras = []
for k, msgs in enumerate(groups([e for e, _ in train])):
    ctx, qas = questions(msgs, "train", k)
    paras.append({"context": ctx, "qas": qas})
with open(os.path.join(out, "en.train.json"), "w", encoding="utf-8") as f:
    json.dump({"version": "1.1", "data": [{"title": "gettext", "paragraphs": paras}]}, f, ensure_ascii=False, indent=1)
    f.write("\n")
write_jsonl(os.path.join(out, "en.dev.jsonl"), flat("dev", groups([e for e, _ in dev])))
write_jsonl(os.path.join(out, "en.test.jsonl"), flat("test", groups([e for e, _ in test])))
write_jsonl(os.path.join(out, "de.test.jsonl"), flat("test", groups([t for _, t in test])))
write_jsonl(os.path.join(out, "fr.test.jsonl"), flat("test", groups(fr[:80])))
n_train = sum(len(p["qas"]) for p in paras)
print("wrote", out, n_train, "training questions")
