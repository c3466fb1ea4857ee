#!/usr/bin/python3
"""Reference values for the per-class reports of tests/test_eval.c, written independently of the C
code (scikit-learn and seqeval are not installed here; their definitions are re-implemented with
plain numpy and Python lists).

Run once from the repository root and commit the output, tests/data/eval/per_class_golden.json:

    /usr/bin/python3 tests/golden/gen_per_class_golden.py

Classification (scikit-learn's confusion_matrix and classification_report, zero_division=0):
    confusion[g, p] = #{i : gold_i = g, pred_i = p}          (np.add.at)
    precision_c = C[c, c] / sum_g C[g, c],  recall_c = C[c, c] / sum_p C[c, p]
    f1_c = 2 precision_c recall_c / (precision_c + recall_c)   (0 where undefined)
    macro = mean over the classes present in gold (labels=sorted(set(y_true)), the README's rule),
    weighted = support-weighted mean over every class, accuracy = trace / n.
Tagging (seqeval's default mode, which follows conlleval): entities are extracted as sets of
(type, start, end) with seqeval's get_entities / start_of_chunk / end_of_chunk, per sentence;
per type tp = |gold & pred|, precision = tp / |pred|, recall = tp / |gold|; micro over all types.
This is the set-of-spans algorithm, not the streaming automaton of framework/eval/metrics.c.
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "eval", "per_class_golden.json")
rng = np.random.default_rng(20261204)


def div(a, b):
    return float(a) / float(b) if b else 0.0


def cls_case(name, labels, gold, pred):
    k = len(labels)
    gold, pred = np.asarray(gold), np.asarray(pred)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (gold, pred), 1)
    support, predicted, tp = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    p = [div(tp[c], predicted[c]) for c in range(k)]
    r = [div(tp[c], support[c]) for c in range(k)]
    f = [2 * p[c] * r[c] / (p[c] + r[c]) if p[c] + r[c] > 0 else 0.0 for c in range(k)]
    present = sorted(set(gold.tolist()))
    return {
        "name": name, "labels": labels, "gold": gold.tolist(), "pred": pred.tolist(),
        "confusion": cm.tolist(), "support": support.tolist(), "predicted": predicted.tolist(),
        "correct": tp.tolist(), "precision": p, "recall": r, "f1": f,
        "macro_precision": float(np.mean([p[c] for c in present])),
        "macro_recall": float(np.mean([r[c] for c in present])),
        "macro_f1": float(np.mean([f[c] for c in present])), "n_macro": len(present),
        "weighted_f1": float(np.sum(np.array(f) * support) / support.sum()),
        "accuracy": float(np.trace(cm) / len(gold)),
    }


# ---- seqeval's chunking (seqeval/metrics/sequence_labeling.py, default mode) ---------------------
def end_of_chunk(prev_tag, tag, prev_type, type_):
    end = prev_tag in ("E", "S")
    end |= prev_tag in ("B", "I") and tag in ("B", "S", "O")
    end |= prev_tag != "O" and prev_tag != "." and prev_type != type_
    return end


def start_of_chunk(prev_tag, tag, prev_type, type_):
    start = tag in ("B", "S")
    start |= prev_tag in ("E", "S", "O") and tag in ("E", "I")
    start |= tag != "O" and tag != "." and prev_type != type_
    return start


def get_entities(seq):
    prev_tag, prev_type, begin, chunks = "O", "", 0, []
    for i, chunk in enumerate(seq + ["O"]):
        tag = chunk[0]
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        if end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def tag_case(name, labels, sentences):
    types = []
    for lab in labels:
        if lab != "O" and lab[1:2] == "-" and lab[2:] not in types:
            types.append(lab[2:])
    g_n, p_n, t_n = {t: 0 for t in types}, {t: 0 for t in types}, {t: 0 for t in types}
    for gold, pred in sentences:
        ge = set(get_entities([labels[i] for i in gold]))
        pe = set(get_entities([labels[i] for i in pred]))
        for t, _, _ in ge:
            g_n[t] += 1
        for t, _, _ in pe:
            p_n[t] += 1
        for t, _, _ in ge & pe:
            t_n[t] += 1
    p = [div(t_n[t], p_n[t]) for t in types]
    r = [div(t_n[t], g_n[t]) for t in types]
    f = [2 * a * b / (a + b) if a + b > 0 else 0.0 for a, b in zip(p, r)]
    G, P, TP = sum(g_n.values()), sum(p_n.values()), sum(t_n.values())
    mp, mr = div(TP, P), div(TP, G)
    present = [i for i, t in enumerate(types) if g_n[t] > 0]
    return {
        "name": name, "labels": labels, "sentences": [{"gold": g, "pred": q} for g, q in sentences],
        "types": types, "support": [g_n[t] for t in types], "predicted": [p_n[t] for t in types],
        "correct": [t_n[t] for t in types], "precision": p, "recall": r, "f1": f,
        "micro_precision": mp, "micro_recall": mr, "micro_f1": 2 * mp * mr / (mp + mr) if mp + mr > 0 else 0.0,
        "macro_f1": float(np.mean([f[i] for i in present])) if present else 0.0, "n_macro": len(present),
    }


cases = {"classification": [], "tagging": []}
# scikit-learn's documented example (f1_score(average="macro") = 0.2666...)
cases["classification"].append(cls_case("sklearn_doc", ["0", "1", "2"], [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]))
# 5 classes: "e" is predicted but never gold (not in macro-F1), "d" is gold but never predicted
labels = ["a", "b", "c", "d", "e"]
gold = rng.choice(4, size=60, p=[0.5, 0.25, 0.15, 0.10])
pred = np.where(rng.random(60) < 0.55, gold, rng.choice([0, 1, 2, 4], size=60))
pred[gold == 3] = rng.choice([0, 4], size=int((gold == 3).sum()))
cases["classification"].append(cls_case("lopsided", labels, gold.tolist(), pred.tolist()))
# a collapse: everything predicted as the majority class
cases["classification"].append(cls_case("collapse", ["x", "y", "z"], [0, 0, 0, 0, 1, 1, 2], [0] * 7))

bio = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-PER", "I-PER"]
hand = [  # (gold, pred) as tag ids into bio
    ([1, 2, 0, 5, 6], [1, 2, 0, 5, 0]),        # LOC right, PER cut short
    ([0, 2, 2, 0], [0, 1, 2, 0]),              # I-LOC after O starts a chunk
    ([5, 5, 0, 3], [5, 6, 0, 4]),              # adjacent B-PER B-PER against one PER; MISC from I-MISC
    ([1, 4, 0], [1, 2, 0]),                    # a type switch inside a chunk
    ([0, 0, 0], [3, 0, 0]),                    # a predicted MISC where gold has none
    ([], []),                                  # an empty sentence
]
rand = []
for _ in range(40):
    n = int(rng.integers(1, 12))
    g = rng.integers(0, len(bio), size=n)
    q = np.where(rng.random(n) < 0.6, g, rng.integers(0, len(bio), size=n))
    rand.append((g.tolist(), q.tolist()))
cases["tagging"].append(tag_case("bio_hand", bio, hand))
cases["tagging"].append(tag_case("bio_random", bio, rand))
iobes = ["O", "B-X", "I-X", "E-X", "S-X", "S-Y"]
cases["tagging"].append(tag_case("iobes", iobes, [([1, 2, 3, 0, 4, 5], [1, 2, 3, 0, 4, 4]), ([4, 1, 3], [4, 0, 3])]))

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"generator": "tests/golden/gen_per_class_golden.py", **cases}, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(OUT))
