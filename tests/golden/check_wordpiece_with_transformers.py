#!/usr/bin/python3
"""The WordPiece goldens (tests/data/wordpiece/golden.tsv, made by gen_wordpiece_goldens.py, an
independent re-implementation) against the real transformers slow BertTokenizer.

    PYTHONPATH=ENV /usr/bin/python3 tests/golden/check_wordpiece_with_transformers.py

ENV: a directory where `transformers` (4.51.x) imports, as for check_with_adapterhub.py
(docs/ADAPTERS.md, "Checked against the real library"). Only the slow modes (vocab.txt) are
checked: the fast ones (tokenizer.json) need the Rust tokenizers package. Prints every line whose
ids differ; exit 1 if any does.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WP = os.path.join(os.path.dirname(HERE), "data", "wordpiece")

try:
    import transformers.tokenization_utils_base as tub
    from transformers import BertTokenizer
except Exception as e:  # noqa: BLE001
    print(f"check_wordpiece_with_transformers: cannot import transformers ({e}); see the docstring", file=sys.stderr)
    sys.exit(2)
if getattr(tub.AddedToken, "__hash__", None) is None:
    # without the tokenizers package transformers falls back to an AddedToken dataclass with
    # eq=True and no hash, which its own slow tokenizers then put in a dict: hash by content
    tub.AddedToken.__hash__ = lambda self: hash(self.content)
transformers_logging = __import__("transformers").logging
transformers_logging.set_verbosity_error()

MODES = {"lower": dict(do_lower_case=True), "cased": dict(do_lower_case=False),
         "lower_keep": dict(do_lower_case=True, strip_accents=False),
         "cased_strip": dict(do_lower_case=False, strip_accents=True)}


def text(h):
    return bytes.fromhex(h).decode("utf-8", errors="replace")


def main():
    toks = {m: BertTokenizer(os.path.join(WP, "vocab.txt"), **kw) for m, kw in MODES.items()}
    n = bad = 0
    with open(os.path.join(WP, "golden.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            c = line.rstrip("\n").split("\t")
            if c[1] not in toks:
                continue
            tok = toks[c[1]]
            if c[0] == "enc":
                what, got = text(c[2]), tok.encode(text(c[2]), add_special_tokens=False)
                want = [int(x) for x in c[3].split()]
            else:
                ml, a, b = int(c[2]), text(c[3]), None if c[4] == "-" else text(c[4])
                e = tok(a, b, truncation="longest_first" if ml else False, max_length=ml or None)
                what, got = f"{a!r} / {b!r} max_length {ml}", e["input_ids"] + e["token_type_ids"]
                want = [int(x) for x in c[5].split()] + [int(x) for x in c[6].split()]
            n += 1
            if got != want:
                bad += 1
                print(f"differs: {c[0]} {c[1]} {what[:80]}\n  transformers {got}\n  golden       {want}")
    print(f"{n} golden lines of the slow modes, {bad} differ (transformers {__import__('transformers').__version__})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
