#!/usr/bin/python3
"""Expected SQuAD v1.1 scores for tests/test_qa.c, from the official evaluation logic.

Run with Debian's python3 from the repository root (no third-party module is needed):

    /usr/bin/python3 tests/golden/gen_squad_golden.py

and commit the output, tests/data/qa/squad_golden.jsonl. The C tests need no Python.

normalize_answer, f1_score, exact_match_score and metric_max_over_ground_truths below are the
logic of the official SQuAD v1.1 script (evaluate-v1.1.py, Rajpurkar et al. 2016; XQuAD scores
every language with it), written out again here: Python's own lower(), re's Unicode \\b and
str.split() decide what the C code must reproduce. Each output line holds a prediction, its
gold answers, the normalized prediction and the two scores (fractions, the script's values / 100).
The cases are English, German and French answer strings (with the punctuation, articles,
whitespace and non-ASCII letters that matter), and a few unusual ones; the two known differences
of the C code (multi-character lower-case mappings and Greek final sigma, see eval.h) are left out.
"""
import json
import os
import re
import string
from collections import Counter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "qa", "squad_golden.jsonl")


def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    return max(metric_fn(prediction, gt) for gt in ground_truths)


CASES = [
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"]),
    ("the Denver Broncos!", ["Denver Broncos"]),
    ("Broncos", ["Denver Broncos"]),
    ("Carolina Panthers", ["Denver Broncos"]),
    ("a cat and an owl", ["cat owl"]),
    ("theory of the atom", ["atom theory"]),
    ("The  cat's   hat", ["the cats hat"]),
    ("an", ["a"]),
    ("a-an-the", ["aanthe"]),
    ("a.b", ["ab"]),
    ("the the the", ["the"]),
    ("Santa Clara, California", ["Santa Clara", "Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area"]),
    ("1,000 euros", ["1000 Euros"]),
    ("cat cat dog", ["cat dog dog"]),
    ("Die Größe des Brotes", ["Größe"]),
    ("ÄNDERUNGEN DER EINSTELLUNGEN", ["Änderungen der Einstellungen"]),
    ("der Dateiname", ["Dateiname"]),
    ("«the» hat", ["hat"]),
    ("l'année dernière", ["l’année dernière"]),
    ("L’ÉTÉ", ["l’été"]),
    ("à la une", ["a la une"]),
    ("Les paramètres (Outils > Options)", ["paramètres Outils Options"]),
    ("naïve café", ["NAÏVE CAFÉ"]),
    ("the\u00a0hat", ["hat"]),
    ("x\u2003y", ["x y"]),
    ("the_hat", ["the hat"]),
    ("thé café", ["the cafe"]),
    ("éa b", ["b"]),
    ("", ["something"]),
    ("...", ["?!"]),
    ("Straße", ["STRASSE"]),
    ("Ærø", ["ærø"]),
    ("München–Berlin", ["München Berlin"]),
    ("a 1 an 2 the 3", ["1 2 3"]),
    ("Menü Extras ▸ Optionen", ["Menü Extras Optionen"]),
    ("Пример текста", ["пример текста"]),
]


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        for pred, golds in CASES:
            row = {
                "prediction": pred,
                "golds": golds,
                "normalized": normalize_answer(pred),
                "exact_match": float(metric_max_over_ground_truths(exact_match_score, pred, golds)),
                "f1": float(metric_max_over_ground_truths(f1_score, pred, golds)),
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print("wrote", OUT, len(CASES), "cases")


if __name__ == "__main__":
    main()
