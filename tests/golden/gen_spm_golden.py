#!/usr/bin/python3
"""Generate the SentencePiece fixtures of tests/test_spm.c with python3-sentencepiece (the reference).

What it writes, all under tests/data/spm/:
  corpus.txt     the multilingual training text (only with --corpus; otherwise the committed file is
                 reused): real UI sentences in English, German, French, Greek, Russian, Basque,
                 Japanese and Simplified Chinese, taken in parallel (same msgid) from the gettext
                 catalogues of Debian packages (/usr/share/locale/<lang>/LC_MESSAGES/*.mo), NFKC
                 normalised, one sentence a line, 48 per language (the language is not marked).
  heldout.txt    "lang<TAB>sentence" lines from the same catalogues that are NOT in corpus.txt but
                 use only characters that occur in it (also only with --corpus): the test sentences.
  fixture.model  a small unigram model (vocab 1000, character coverage 1.0, <unk>=0 <s>=1 </s>=2,
                 no pad) trained on corpus.txt by the python trainer with one thread, so a rerun
                 gives the same bytes (md5 eba6fe2c69d37c8e990c801530295277 with 0.1.97).
  golden.tsv     for every held-out sentence and a few hand-written edge cases, the reference output
                 of python3-sentencepiece on fixture.model; the C test reads it without Python.

golden.tsv format: lines starting with '#' are comments; every other line has 8 TAB-separated fields
  lang  rt  text  ids  ids_bos_eos  xlmr_ids  spans  pieces
  rt           1 if sp.decode(sp.encode(text)) == text (the C test checks the round trip only then)
  ids          sp.encode(text): native ids, space-separated ("" for none)
  ids_bos_eos  sp.encode(text, add_bos=True, add_eos=True)
  xlmr_ids     the XLM-R (fairseq) convention with add_special, computed here exactly as Hugging Face
               transformers' XLMRobertaTokenizer does (build_inputs_with_special_tokens and
               _convert_token_to_id): [0] + [3 if i == unk_id else i + 1 for i in ids] + [2]
  spans        "begin:end" byte offsets of each piece in the UTF-8 text, from
               sp.encode_as_immutable_proto(text).pieces (no specials); python reports character
               offsets there, converted here to UTF-8 byte offsets
  pieces       sp.encode(text, out_type=str), space-separated (pieces never contain a space: the
               model's whitespace is U+2581)

How it was run (once; the outputs are committed and the C tests need no Python):
    /usr/bin/python3 tests/golden/gen_spm_golden.py --corpus    # from the repository root
It is rerunnable: without --corpus it keeps corpus.txt and heldout.txt, retrains fixture.model (the
same bytes with python3-sentencepiece 0.1.97) and rewrites golden.tsv. Use /usr/bin/python3 (Debian's
python3-sentencepiece 0.1.97, the same version as libsentencepiece-dev), not another python3 on PATH.
"""

import argparse
import gettext
import os
import sys
import unicodedata

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "data", "spm"))

# Languages in the corpus: "en" is the msgid itself, the others are gettext locale names.
LANGS = ["en", "de", "fr", "el", "ru", "eu", "ja", "zh_CN"]
# Catalogues translated into all of those languages, in a fixed order.
DOMAINS = ["apt", "libapt-pkg6.0", "dpkg", "glib20", "gtk30", "gtk20", "gdk-pixbuf",
           "gsettings-desktop-schemas", "gstreamer-1.0", "gst-plugins-base-1.0", "PackageKit",
           "shadow", "psmisc", "software-properties"]
N_TRAIN = 48   # parallel messages per language in corpus.txt (8 languages -> 384 lines)
N_HELDOUT = 4  # parallel messages per language kept out of the corpus for the tests

MODEL_ARGS = dict(
    model_type="unigram",
    vocab_size=1000,
    character_coverage=1.0,
    num_threads=1,
    input_sentence_size=0,
    shuffle_input_sentence=False,
    minloglevel=2,
)
SEED = 1234

# Hand-written edge cases: (lang, text). Unknown characters (emoji, rare Han) and digits.
EXTRA = [
    ("xx", "Hallo 🙂 Welt"),           # an emoji the model has never seen -> unknown id
    ("xx", "Version 2.0.1 (2024)"),
    ("xx", "Ελληνικά, русский, euskara, 日本語, 中文."),
]


def clean(s):
    s = unicodedata.normalize("NFKC", s)
    return " ".join(s.split())


def catalog(lang, domain):
    path = f"/usr/share/locale/{lang}/LC_MESSAGES/{domain}.mo"
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        return gettext.GNUTranslations(f)._catalog


def usable(msgid, translations):
    if not isinstance(msgid, str) or not (30 <= len(msgid) <= 160):
        return False
    bad = ("%", "{", "}", "<", ">", "_", "\\", "\t", "\n", "&", "$", "`", "|")
    for t in [msgid] + translations:
        if not isinstance(t, str) or any(b in t for b in bad) or len(t) < 8:
            return False
    if any(t == msgid for t in translations):
        return False
    return msgid[0].isupper() and len(msgid.split()) >= 4


def build_corpus():
    rows = []  # one entry per message: [en, de, fr, ...]
    for domain in DOMAINS:
        cats = {lang: catalog(lang, domain) for lang in LANGS if lang != "en"}
        if not all(cats.values()):
            continue
        for msgid in sorted(k for k in cats["de"] if isinstance(k, str)):
            trans = [cats[lang].get(msgid) for lang in LANGS[1:]]
            if usable(msgid, trans):
                rows.append([clean(msgid)] + [clean(t) for t in trans])
    seen, uniq = set(), []
    for r in rows:
        if r[0] not in seen:
            seen.add(r[0])
            uniq.append(r)
    # Spread the training picks over the domains (every k-th message), then hold out the first
    # remaining messages whose characters all occur in the training text in every language, so a
    # held-out sentence can round-trip without unknown pieces.
    if len(uniq) < N_TRAIN + N_HELDOUT:
        sys.exit(f"only {len(uniq)} parallel messages, need {N_TRAIN + N_HELDOUT}")
    step = len(uniq) // N_TRAIN
    train = [uniq[i * step] for i in range(N_TRAIN)]
    chars = set("".join("".join(r) for r in train))
    held = [r for r in uniq if r not in train and set("".join(r)) <= chars][:N_HELDOUT]
    if len(held) < N_HELDOUT:
        sys.exit(f"only {len(held)} held-out messages are covered by the corpus' characters")
    with open(os.path.join(OUT, "corpus.txt"), "w", encoding="utf-8") as f:
        for j in range(len(LANGS)):
            for r in train:
                f.write(r[j] + "\n")
    with open(os.path.join(OUT, "heldout.txt"), "w", encoding="utf-8") as f:
        for r in held:
            for j, lang in enumerate(LANGS):
                f.write(f"{lang}\t{r[j]}\n")


def train_model():
    spm.set_random_generator_seed(SEED)
    prefix = os.path.join(OUT, "fixture")
    spm.SentencePieceTrainer.train(input=os.path.join(OUT, "corpus.txt"), model_prefix=prefix,
                                   **MODEL_ARGS)
    os.remove(prefix + ".vocab")  # not needed by the tests
    return prefix + ".model"


def xlmr_ids(sp, ids):
    # transformers XLMRobertaTokenizer: fairseq_offset = 1, unknown (spm id 0 / unk_id) -> 3,
    # <s> X </s> for a single sequence.
    return [0] + [3 if i == sp.unk_id() else i + 1 for i in ids] + [2]


def write_golden(model_path):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    sentences = []
    with open(os.path.join(OUT, "heldout.txt"), encoding="utf-8") as f:
        for line in f:
            lang, text = line.rstrip("\n").split("\t")
            sentences.append((lang, text))
    sentences += EXTRA
    j = lambda xs: " ".join(str(x) for x in xs)
    with open(os.path.join(OUT, "golden.tsv"), "w", encoding="utf-8") as f:
        f.write("# generated by tests/golden/gen_spm_golden.py with python3-sentencepiece "
                f"{spm.__version__} on fixture.model (vocab {sp.get_piece_size()}, unk {sp.unk_id()},"
                f" bos {sp.bos_id()}, eos {sp.eos_id()}, pad {sp.pad_id()})\n")
        f.write("# lang\trt\ttext\tids\tids_bos_eos\txlmr_ids\tspans\tpieces\n")
        for lang, text in sentences:
            ids = sp.encode(text)
            rt = int(sp.decode(ids) == text)
            proto = sp.encode_as_immutable_proto(text)
            # The python wrapper reports spans in Unicode characters (it calls
            # ConvertToUnicodeSpans); the C++ API reports UTF-8 bytes: convert.
            b = lambda c: len(text[:c].encode("utf-8"))
            spans = [f"{b(p.begin)}:{b(p.end)}" for p in proto.pieces]
            assert [p.id for p in proto.pieces] == ids
            pieces = sp.encode(text, out_type=str)
            assert all(" " not in p and "\t" not in p for p in pieces)
            f.write("\t".join([lang, str(rt), text, j(ids),
                               j(sp.encode(text, add_bos=True, add_eos=True)),
                               j(xlmr_ids(sp, ids)), j(spans), j(pieces)]) + "\n")
            if lang != "xx" and not rt:
                print(f"warning: no round trip for {lang}: {text}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", action="store_true",
                    help="rebuild corpus.txt and heldout.txt from the system's gettext catalogues")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.corpus:
        build_corpus()
    model = train_model()
    write_golden(model)
    print(f"wrote {OUT}/fixture.model ({os.path.getsize(model)} bytes) and golden.tsv")


if __name__ == "__main__":
    main()
