#!/usr/bin/python3
"""Bag-of-character-n-grams baseline for LO-MOD module classification.

A reference (sanity) baseline of the benchmark, NOT part of the C library; CI does not run it
(scikit-learn is not a CI dependency). Character n-gram TF-IDF (char_wb, 2-4) + logistic
regression, in two setups:

  zero-shot    fit on en.train, score every language's test file;
  in-language  for each target with a <lang>.train.tsv, fit a separate vectorizer + model on
               that language's own train split, score its test file.

C is chosen from {1, 10, 100} by English dev accuracy only (never by target data) and reused
for every model. Metrics: accuracy and macro-F1 over the test set's gold classes (the same
class set for both setups of a language, as `xadapt eval` does).

usage: baseline_bow.py DATA_DIR [--langs de,fr,...] [--json OUT.json] [--md OUT.md] [--seed 1]

DATA_DIR is an output of recipes/data/prepare.py (DIR/lo-mod/*.tsv, DIR/manifest.json).
Needs Python 3 with numpy and scikit-learn (Debian: python3-sklearn). Run it niced, e.g.
`nice -n 15 /usr/bin/python3 recipes/baseline_bow.py data/quickstart`; it uses one core.
"""

import os

# One core: keep BLAS/OpenMP from spreading over the machine (set before numpy is imported).
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import sys
import time

C_GRID = (1, 10, 100)
C_DEFAULT = 10  # preferred on a dev-accuracy tie
VEC_PARAMS = dict(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True,
                  max_features=200000)
MAX_ITER = 2000


class BowError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_tsv(path):
    """Rows of a `label<TAB>text` file with that header line: (labels, texts)."""
    if not os.path.isfile(path):
        raise BowError(f"missing file: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if not lines or lines[0].rstrip("\r") != "label\ttext":
        raise BowError(f"{path}: the first line must be the header 'label<TAB>text'")
    labels, texts = [], []
    for i, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        label, sep, text = line.partition("\t")
        if not sep or not label:
            raise BowError(f"{path}:{i}: expected 'label<TAB>text'")
        labels.append(label)
        texts.append(text)
    if not labels:
        raise BowError(f"{path}: no examples")
    return labels, texts


def load_manifest(data_dir):
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isfile(path):
        log(f"note: no {path}; languages in file-name order, none marked unseen")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise BowError(f"{path}: {e}")


def order_languages(test_langs, manifest, wanted):
    """(source row, seen targets, unseen targets) in manifest order, seen first."""
    if wanted is not None:
        missing = [l for l in wanted if l not in test_langs]
        if missing:
            raise BowError("no test file for --langs " + ", ".join(missing) +
                           " (have: " + ", ".join(sorted(test_langs)) + ")")
        pool = set(wanted)
    else:
        pool = set(test_langs)
    pool.discard("en")
    order = []
    unseen = set()
    if manifest:
        order = [l for l in (manifest.get("targets") or manifest.get("languages") or [])
                 if l != "en"]
        unseen = set(manifest.get("unseen") or [])
    known = [l for l in order if l in pool]
    extra = sorted(pool - set(known))
    if extra and manifest:
        log("note: test files for languages not among the manifest's targets: " + ", ".join(extra))
    targets = known + extra
    seen = [l for l in targets if l not in unseen]
    uns = [l for l in targets if l in unseen]
    return seen, uns


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="baseline_bow.py",
        description="Reference baseline (not part of xadapt; CI does not run it): char n-gram "
                    "TF-IDF + logistic regression on LO-MOD, zero-shot from English and "
                    "in-language. Prints a Markdown table.")
    ap.add_argument("data_dir", metavar="DATA_DIR",
                    help="output directory of recipes/data/prepare.py (holds lo-mod/)")
    ap.add_argument("--langs", help="comma-separated target languages (default: every "
                                    "<lang>.test.tsv present; en is always the source row)")
    ap.add_argument("--json", metavar="OUT.json", help="also write the raw numbers here")
    ap.add_argument("--md", metavar="OUT.md", help="also write the Markdown table here")
    ap.add_argument("--seed", type=int, default=1,
                    help="random_state of the logistic regression (default 1)")
    args = ap.parse_args(argv)

    wanted = None
    if args.langs is not None:
        wanted = [l.strip() for l in args.langs.split(",") if l.strip()]
        if not wanted:
            ap.error("--langs: no language given")
        if len(set(wanted)) != len(wanted):
            ap.error("--langs: a language is listed twice")

    try:
        return run(args, wanted)
    except BowError as e:
        print(f"baseline_bow.py: error: {e}", file=sys.stderr)
        return 1


def run(args, wanted):
    t_start = time.time()
    data_dir = args.data_dir
    task_dir = os.path.join(data_dir, "lo-mod")
    if not os.path.isdir(data_dir):
        raise BowError(f"missing directory: {data_dir}")
    if not os.path.isdir(task_dir):
        raise BowError(f"missing directory: {task_dir} (not an output of recipes/data/prepare.py?)")
    for out in (args.json, args.md):
        if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            raise BowError(f"missing directory for the output file: {out}")

    try:
        import numpy as np
        import sklearn
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
    except ImportError as e:
        raise BowError(f"{e}: needs numpy and scikit-learn (Debian: apt-get install python3-sklearn)")

    manifest = load_manifest(data_dir)
    test_langs = {fn[:-len(".test.tsv")] for fn in os.listdir(task_dir)
                  if fn.endswith(".test.tsv")}
    seen, unseen = order_languages(test_langs, manifest, wanted)
    targets = seen + unseen

    # Read everything first: a missing or malformed file fails before any training.
    en_train = read_tsv(os.path.join(task_dir, "en.train.tsv"))
    en_dev = read_tsv(os.path.join(task_dir, "en.dev.tsv"))
    rows = (["en"] if "en" in test_langs else []) + targets
    if "en" not in test_langs:
        log("note: no en.test.tsv; the source row is left out")
    tests = {l: read_tsv(os.path.join(task_dir, f"{l}.test.tsv")) for l in rows}
    trains = {}
    for l in targets:
        p = os.path.join(task_dir, f"{l}.train.tsv")
        if os.path.isfile(p):
            trains[l] = read_tsv(p)
        else:
            log(f"note: no {p}; {l} gets no in-language score")

    def fit(texts, labels, C):
        vec = TfidfVectorizer(**VEC_PARAMS)
        X = vec.fit_transform(texts)
        clf = LogisticRegression(C=C, max_iter=MAX_ITER, n_jobs=1, random_state=args.seed)
        clf.fit(X, labels)
        return vec, clf

    def score(vec, clf, data):
        y_true, texts = data
        y_pred = clf.predict(vec.transform(texts))
        return {"accuracy": float(accuracy_score(y_true, y_pred)),
                "macro_f1": float(f1_score(y_true, y_pred, average="macro",
                                           labels=sorted(set(y_true)), zero_division=0))}

    timings = {}

    # ---- C from English dev accuracy (one vectorizer, fitted on en.train)
    t0 = time.time()
    vec_en = TfidfVectorizer(**VEC_PARAMS)
    X_en = vec_en.fit_transform(en_train[1])
    X_dev = vec_en.transform(en_dev[1])
    log(f"en.train: {len(en_train[0])} examples, {len(set(en_train[0]))} classes, "
        f"{X_en.shape[1]} features")
    dev_acc, models = {}, {}
    for C in C_GRID:
        clf = LogisticRegression(C=C, max_iter=MAX_ITER, n_jobs=1, random_state=args.seed)
        clf.fit(X_en, en_train[0])
        models[C] = clf
        dev_acc[C] = float(accuracy_score(en_dev[0], clf.predict(X_dev)))
        log(f"  C={C:<4g} en dev accuracy {100 * dev_acc[C]:.1f}")
    best = max(dev_acc.values())
    ties = [C for C in C_GRID if dev_acc[C] == best]
    C = C_DEFAULT if C_DEFAULT in ties else ties[0]
    print(f"chosen C = {C} (en dev accuracy {100 * best:.1f}; "
          + ", ".join(f"C={c}: {100 * dev_acc[c]:.1f}" for c in C_GRID) + ")", flush=True)
    timings["select_C"] = time.time() - t0

    # ---- zero-shot: the English model on every test file
    t0 = time.time()
    zs = {l: score(vec_en, models[C], tests[l]) for l in rows}
    timings["zero_shot"] = time.time() - t0

    # ---- in-language: one model per target on its own train split
    t0 = time.time()
    il = {}
    for l in targets:
        if l not in trains:
            continue
        t1 = time.time()
        vec, clf = fit(trains[l][1], trains[l][0], C)
        il[l] = score(vec, clf, tests[l])
        log(f"  {l}: in-language {len(trains[l][0])} examples, "
            f"{len(vec.vocabulary_)} features, {time.time() - t1:.1f} s")
    timings["in_language"] = time.time() - t0

    # ---- mean rows (as xadapt eval: seen / unseen groups only when both exist, then all)
    def mean(langs, res, key):
        vals = [res[l][key] for l in langs if l in res]
        return (float(np.mean(vals)) if vals else None), len(vals)

    groups = []
    if seen and unseen:
        groups += [("mean (seen targets)", "seen", seen), ("mean (unseen targets)", "unseen", unseen)]
    if targets:
        groups.append(("mean (targets)", "targets", targets))
    means = {}
    for label, key, langs in groups:
        m = {"languages": langs}
        for name, res in (("zero_shot", zs), ("in_language", il)):
            acc, n = mean(langs, res, "accuracy")
            f1, _ = mean(langs, res, "macro_f1")
            m[name] = {"accuracy": acc, "macro_f1": f1, "n": n}
        means[key] = m

    # ---- table
    def cell(v):
        return "—" if v is None else f"{100 * v:.1f}"

    def pair(res):
        return (cell(None), cell(None)) if res is None else (cell(res["accuracy"]), cell(res["macro_f1"]))

    head = ["language", "zero-shot acc", "zero-shot macro-F1", "in-language acc",
            "in-language macro-F1"]
    table = [head]
    for l in rows:
        name = "en (src)" if l == "en" else (f"{l} (unseen)" if l in unseen else l)
        table.append([name, *pair(zs[l]), *pair(il.get(l))])
    for label, key, langs in groups:
        m = means[key]
        zl, il_ = m["zero_shot"], m["in_language"]
        lab = label
        if 0 < il_["n"] < len(langs):
            lab += f" [in-language over {il_['n']}]"
        table.append([lab, *pair(zl if zl["n"] else None), *pair(il_ if il_["n"] else None)])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]

    def fmt(r):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))) + " |"

    md = [fmt(table[0]),
          "|" + "|".join(("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1))
                         for i, w in enumerate(widths)) + "|"]
    md += [fmt(r) for r in table[1:]]
    md_text = (f"LO-MOD bag-of-char-n-grams baseline (TF-IDF char_wb 2-4 + logistic regression, "
               f"C={C} by en dev accuracy), {os.path.normpath(data_dir)}\n\n"
               + "\n".join(md) + "\n")
    print()
    print(md_text, end="", flush=True)

    timings["total"] = time.time() - t_start
    log(f"time: select C {timings['select_C']:.1f} s, zero-shot {timings['zero_shot']:.1f} s, "
        f"in-language {timings['in_language']:.1f} s, total {timings['total']:.1f} s")

    try:
        write_outputs(args, md_text, C, dev_acc, sklearn.__version__, seen, unseen, rows, tests,
                      trains, zs, il, means, timings)
    except OSError as e:
        raise BowError(f"cannot write: {e}")
    return 0


def write_outputs(args, md_text, C, dev_acc, sk_version, seen, unseen, rows, tests, trains, zs,
                  il, means, timings):
    if args.md:
        with open(args.md, "w", encoding="utf-8") as f:
            f.write(md_text)
    if args.json:
        out = {
            "task": "lo-mod",
            "data_dir": os.path.abspath(args.data_dir),
            "seed": args.seed,
            "C": C,
            "C_grid": list(C_GRID),
            "en_dev_accuracy": {str(c): dev_acc[c] for c in C_GRID},
            "vectorizer": {k: (list(v) if isinstance(v, tuple) else v) for k, v in VEC_PARAMS.items()},
            "max_iter": MAX_ITER,
            "sklearn_version": sk_version,
            "source": "en",
            "seen_targets": seen,
            "unseen_targets": unseen,
            "languages": {
                l: {"unseen": l in unseen,
                    "n_test": len(tests[l][0]),
                    "n_train_in_language": len(trains[l][0]) if l in trains else None,
                    "zero_shot": zs[l],
                    "in_language": il.get(l)}
                for l in rows},
            "means": means,
            "seconds": {k: round(v, 2) for k, v in timings.items()},
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
