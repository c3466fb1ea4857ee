#!/usr/bin/python3
"""Expected SQuAD 2.0 answers and scores for tests/test_qa.c (test_squad_v2_golden).

Run with Debian's python3 (python3-numpy) from the repository root:

    /usr/bin/python3 tests/golden/gen_squad_v2_golden.py

and commit the output, tests/data/qa/squad_v2_golden.jsonl. The C tests need no Python.

postprocess() is Hugging Face transformers' examples/pytorch/question-answering/utils_qa.py
postprocess_qa_predictions for one example with version_2_with_negative=True, written out again
(numpy float32 logits, np.argsort for the n_best candidates, the min_null_prediction, the "empty"
placeholder, the score_diff > null_score_diff_threshold rule). The scores are the official
evaluate-v2.0.py's normalize_answer, get_tokens, compute_exact, compute_f1 and the gold-answer
filter of get_raw_scores, written out again too. Each output line is one question: its windows
(start / end logits, token offsets into the context, null for the question and the specials),
the settings, the gold answers, HF's prediction text and the v2 exact match and F1.

Cases are drawn from a fixed seed over real sentences (Debian gettext messages); a case is kept
only when no decision is within 1e-3 of a tie (the C code adds the logits in double, HF in
float32), so the expected answers do not depend on rounding.
"""
import collections
import json
import os
import re
import string

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "qa", "squad_v2_golden.jsonl")

CONTEXTS = [
    "The file could not be opened because the disk is full.",
    "Select the printer and press the button to print the document.",
    "Your changes will be lost if you close the window without saving.",
    "The connection to the server was reset while the page was loading.",
]


# ---- evaluate-v2.0.py ------------------------------------------------------------------------
def normalize_answer(s):
    def remove_articles(text):
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def get_tokens(s):
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def v2_scores(golds, pred):
    gold_answers = [a for a in golds if normalize_answer(a)]
    if not gold_answers:
        gold_answers = [""]
    return max(compute_exact(a, pred) for a in gold_answers), max(compute_f1(a, pred) for a in gold_answers)


# ---- utils_qa.postprocess_qa_predictions, one example, version_2_with_negative=True ----------
def postprocess(context, features, n_best_size, max_answer_length, null_score_diff_threshold):
    """features: list of (start_logits, end_logits, offset_mapping); returns (text, margins)."""
    margins = []  # distances from every decision to its tie
    min_null_prediction = None
    prelim_predictions = []
    for start_logits, end_logits, offset_mapping in features:
        feature_null_score = start_logits[0] + end_logits[0]
        if min_null_prediction is None or min_null_prediction["score"] > feature_null_score:
            min_null_prediction = {"offsets": (0, 0), "score": feature_null_score,
                                   "start_logit": start_logits[0], "end_logit": end_logits[0]}
        start_indexes = np.argsort(start_logits)[-1: -n_best_size - 1: -1].tolist()
        end_indexes = np.argsort(end_logits)[-1: -n_best_size - 1: -1].tolist()
        for start_index in start_indexes:
            for end_index in end_indexes:
                if (start_index >= len(offset_mapping) or end_index >= len(offset_mapping)
                        or offset_mapping[start_index] is None or len(offset_mapping[start_index]) < 2
                        or offset_mapping[end_index] is None or len(offset_mapping[end_index]) < 2):
                    continue
                if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                    continue
                prelim_predictions.append({
                    "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                    "score": start_logits[start_index] + end_logits[end_index],
                    "start_logit": start_logits[start_index], "end_logit": end_logits[end_index]})
    prelim_predictions.append(min_null_prediction)
    null_score = min_null_prediction["score"]
    scores = sorted((float(p["score"]) for p in prelim_predictions), reverse=True)
    margins += [scores[i] - scores[i + 1] for i in range(min(len(scores) - 1, n_best_size))]
    predictions = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]
    if not any(p["offsets"] == (0, 0) for p in predictions):
        predictions.append(min_null_prediction)
    for pred in predictions:
        offsets = pred.pop("offsets")
        pred["text"] = context[offsets[0]: offsets[1]]
    if len(predictions) == 0 or (len(predictions) == 1 and predictions[0]["text"] == ""):
        predictions.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})
    i = 0
    while predictions[i]["text"] == "":
        i += 1
    best_non_null_pred = predictions[i]
    score_diff = null_score - best_non_null_pred["start_logit"] - best_non_null_pred["end_logit"]
    margins.append(abs(float(score_diff) - null_score_diff_threshold))
    text = "" if score_diff > null_score_diff_threshold else best_non_null_pred["text"]
    return text, margins


def word_spans(s):
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", s)]


def main():
    rng = np.random.default_rng(20261203)
    rows = []
    tries = 0
    while len(rows) < 60 and tries < 10000:
        tries += 1
        c = int(rng.integers(len(CONTEXTS)))
        context = CONTEXTS[c]
        spans = word_spans(context)
        n_q = int(rng.integers(1, 4))            # question tokens (offsets null)
        n_windows = int(rng.integers(1, 4))
        per = int(rng.integers(4, len(spans) + 1))  # context tokens per window
        stride = int(rng.integers(1, per))
        features = []
        start = 0
        for _ in range(n_windows):
            ctx = spans[start: start + per]
            offsets = [None] * (1 + n_q + 1) + [list(sp) for sp in ctx] + [None]
            L = len(offsets)
            scale = float(rng.choice([1.0, 3.0]))
            start_logits = (rng.standard_normal(L) * scale).astype(np.float32)
            end_logits = (rng.standard_normal(L) * scale).astype(np.float32)
            # sometimes a strong <s>: the null answer wins
            if rng.random() < 0.4:
                start_logits[0] += np.float32(rng.uniform(0, 6))
                end_logits[0] += np.float32(rng.uniform(0, 6))
            features.append((start_logits, end_logits, offsets))
            if start + per >= len(spans):
                break
            start += per - stride
        n_best = int(rng.choice([1, 2, 3, 20]))
        max_len = int(rng.choice([1, 3, 30]))
        thr = float(rng.choice([0.0, 0.0, -2.0, 1.5]))
        kind = rng.random()
        if kind < 0.35:
            golds = []
        elif kind < 0.45:
            golds = ["the", "a"]   # normalize to "": scored as unanswerable
        else:
            a, b = sorted(rng.integers(len(spans), size=2).tolist())
            golds = [context[spans[a][0]: spans[b][1]]]
            if rng.random() < 0.3:
                golds.append(context[spans[b][0]: spans[b][1]])
        text, margins = postprocess(context, features, n_best, max_len, thr)
        if min(margins) < 1e-3:
            continue
        em, f1 = v2_scores(golds, text)
        rows.append({
            "context": context,
            "windows": [{"start_logits": [float(x) for x in s], "end_logits": [float(x) for x in e],
                         "offsets": o} for s, e, o in features],
            "n_best_size": n_best, "max_answer_length": max_len, "null_score_diff_threshold": thr,
            "golds": golds, "prediction": text, "exact": float(em), "f1": float(f1)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, OUT)
    kinds = collections.Counter("null" if r["prediction"] == "" else "empty" if r["prediction"] == "empty" else "span"
                                for r in rows)
    print("wrote", OUT, len(rows), "cases", dict(kinds))


if __name__ == "__main__":
    main()
