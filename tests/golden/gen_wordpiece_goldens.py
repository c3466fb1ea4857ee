#!/usr/bin/python3
"""Generate the WordPiece fixtures of tests/test_wordpiece.c and tests/cli/test_wordpiece.sh.

Hugging Face transformers is not installed here, so the reference is this file: an independent
re-implementation, with Python's unicodedata, of what transformers' slow BertTokenizer does
(PreTrainedTokenizer.tokenize + BasicTokenizer + WordpieceTokenizer, transformers 4.3x/4.4x) and of
what a tokenizer.json with a BertNormalizer / BertPreTokenizer / WordPiece model does in the
tokenizers library (BertTokenizerFast). Written from the algorithms, not from either library's code:

  slow (vocab.txt, BertTokenizer):
    1. special tokens ([PAD] [UNK] [CLS] [SEP] [MASK]) found in the raw text, leftmost-longest,
       case-sensitive, are kept whole (tokens_trie.split); with do_lower_case every other character
       is lowercased on its own (the re.sub over "(.+?)" in PreTrainedTokenizer.tokenize: no
       Final_Sigma, U+0130 -> "i" + U+0307);
    2. BasicTokenizer per remaining chunk: clean_text (drop U+0000, U+FFFD and category C* except
       \\t \\n \\r; Zs and \\t \\n \\r become a space), a space around every CJK ideograph (the
       8 ranges of _is_chinese_char), NFC, split on whitespace (str.split: also U+2028, U+2029),
       per token lowercase (do_lower_case) and accent stripping (NFD, drop Mn) when do_lower_case and
       strip_accents is not False, or when strip_accents is True; split off every punctuation
       character (ASCII 33-47, 58-64, 91-96, 123-126 and category P*);
    3. WordpieceTokenizer per word: more than 100 characters -> [UNK]; else greedy longest match
       first from the left, continuation pieces prefixed "##"; a word with an unmatched rest is one
       [UNK].
  fast (tokenizer.json, BertNormalizer + BertPreTokenizer + WordPiece): the same without NFC, and
    the normalizer strips accents before it lowercases (per character).
  inputs: [CLS] A [SEP] and [CLS] A [SEP] B [SEP], token_type_ids 0 for [CLS] A [SEP], 1 for
    B [SEP]; truncation to max_length: single: A[:max_length-2]; pairs "longest_first": one token at
    a time from A while len(A) > len(B), else from B.

What it writes under tests/data/wordpiece/:
  corpus.txt      (only with --corpus) real multilingual UI text: tests/data/spm/corpus.txt (en de fr
                  el ru eu ja zh) plus 24 parallel messages each in Korean, Turkish, Vietnamese,
                  Hindi, Thai and Arabic from the gettext catalogues of Debian packages
                  (/usr/share/locale/<lang>/LC_MESSAGES/*.mo), NFC, one a line.
  heldout.txt     (only with --corpus) "lang<TAB>sentence" messages of those catalogues not in the
                  corpus: the test sentences.
  vocab.txt       built from corpus.txt (below): specials, characters, frequent words, frequent
                  subwords. Deterministic.
  tokenizer_config.json absent on purpose (do_lower_case defaults to true); the C test writes its own.
  tokenizer.json  the same vocabulary as a tokenizers-library WordPiece file (BertNormalizer
                  lowercase, strip_accents null).
  golden.tsv      reference outputs (format in its header).
  unicode.tsv     per code point assigned in Python's Unicode (14.0), except private use,
                  surrogates and the CJK ideograph blocks (sampled), when the basic tokenizer does
                  anything to it: "CP<TAB>slow-lower<TAB>slow-cased<TAB>fast-lower", each the basic
                  tokens of "0" + chr(CP) + "0" joined by spaces ("=": unchanged). Hangul
                  syllables are sampled like the ideographs.
  tiny-bert/      base/: a tiny BertForMaskedLM base (with its MLM head) on that vocabulary (config.json,
                  model.safetensors with deterministic weights, vocab.txt); adapter/ and head/: the
                  tiny XLM-R fixture's (tests/data/torchbin/tiny) renamed for BERT; for the CLI test.

Run once from the repository root (the outputs are committed; tests need no Python):
    /usr/bin/python3 tests/golden/gen_wordpiece_goldens.py --corpus
Without --corpus it keeps corpus.txt and heldout.txt and rewrites the rest (the same bytes).
"""

import argparse
import collections
import gettext
import json
import os
import random
import struct
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "wordpiece")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_CHARS = 100

# ---- the BERT basic tokenizer -----------------------------------------------------------------

def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c).startswith("C")


def is_punct(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
       (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_cjk(c):
    cp = ord(c)
    return any(a <= cp <= b for a, b in CJK)


def clean(text):
    out = []
    for c in text:
        if ord(c) == 0 or ord(c) == 0xFFFD or is_control(c):
            continue
        out.append(" " if is_whitespace(c) else c)
    return "".join(out)


def space_cjk(text):
    return "".join(" " + c + " " if is_cjk(c) else c for c in text)


def strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def lower_chars(text):
    return "".join(c.lower() for c in text)  # per character: no Final_Sigma


def split_punct(tok):
    out, cur = [], []
    for c in tok:
        if is_punct(c):
            if cur:
                out.append("".join(cur))
                cur = []
            out.append(c)
        else:
            cur.append(c)
    if cur:
        out.append("".join(cur))
    return out


def do_strip(lower, strip):
    return strip is True or (lower and strip is not False)


def basic(text, lower, strip, fast):
    """The basic tokens of one chunk (no specials in it)."""
    text = clean(text)
    text = space_cjk(text)
    if not fast:
        text = unicodedata.normalize("NFC", text)
    words = []
    for tok in text.split():
        if fast:
            if do_strip(lower, strip):
                tok = strip_accents(tok)
            if lower:
                tok = lower_chars(tok)
        else:
            if lower:
                tok = tok.lower()
                if strip is not False:
                    tok = strip_accents(tok)
            elif strip:
                tok = strip_accents(tok)
        words.extend(split_punct(tok))
    return " ".join(words).split()


def split_specials(text, specials):
    """Leftmost-longest matches of the special strings; [(is_special, text)]."""
    out, i, start = [], 0, 0
    while i < len(text):
        best = None
        for s in specials:
            if text.startswith(s, i) and (best is None or len(s) > len(best)):
                best = s
        if best:
            if start < i:
                out.append((False, text[start:i]))
            out.append((True, best))
            i += len(best)
            start = i
        else:
            i += 1
    if start < len(text):
        out.append((False, text[start:]))
    return out


def wordpiece(word, vocab):
    if len(word) > MAX_CHARS:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        pieces.append(cur)
        start = end
    return pieces


def tokenize(text, vocab, lower=True, strip=None, fast=False):
    out = []
    for special, chunk in split_specials(text, SPECIALS):
        if special:
            out.append(chunk)
            continue
        if lower and not fast:
            chunk = lower_chars(chunk)
        for w in basic(chunk, lower, strip, fast):
            out.extend(wordpiece(w, vocab))
    return out


def ids_of(pieces, vocab):
    return [vocab.get(p, vocab["[UNK]"]) for p in pieces]


def encode_input(a, b, max_len, vocab, **kw):
    ia = ids_of(tokenize(a, vocab, **kw), vocab)
    ib = None if b is None else ids_of(tokenize(b, vocab, **kw), vocab)
    if max_len:
        extra = len(ia) + (0 if ib is None else len(ib)) + (2 if ib is None else 3) - max_len
        for _ in range(max(extra, 0)):
            if ib is None or len(ia) > len(ib):
                ia = ia[:-1]
            else:
                ib = ib[:-1]
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    ids = [cls] + ia + [sep]
    types = [0] * len(ids)
    if ib is not None:
        ids += ib + [sep]
        types += [1] * (len(ib) + 1)
    return ids, types


# ---- corpus and vocabulary --------------------------------------------------------------------

EXTRA_LANGS = ["ko", "tr", "vi", "hi", "th", "ar"]
DOMAINS = ["apt", "dpkg", "glib20", "gtk30", "coreutils", "grep", "findutils", "bash", "git",
           "gettext-runtime", "PackageKit", "Linux-PAM", "adduser", "avahi"]
N_TRAIN, N_HELDOUT = 24, 3


def catalogue_messages():
    """Parallel (msgid -> {lang: msgstr}) over DOMAINS, in a fixed order."""
    rows = []
    for dom in DOMAINS:
        cats = {}
        for lang in EXTRA_LANGS:
            path = "/usr/share/locale/%s/LC_MESSAGES/%s.mo" % (lang, dom)
            if not os.path.exists(path):
                break
            with open(path, "rb") as f:
                cats[lang] = gettext.GNUTranslations(f)._catalog
        if len(cats) != len(EXTRA_LANGS):
            continue
        for msgid in sorted(k for k in cats[EXTRA_LANGS[0]] if isinstance(k, str)):
            if not (20 <= len(msgid) <= 120) or "%" in msgid or "\n" in msgid or "_" in msgid:
                continue
            tr = {}
            for lang in EXTRA_LANGS:
                s = cats[lang].get(msgid)
                if not isinstance(s, str) or not s or s == msgid or "\n" in s or "\t" in s:
                    break
                tr[lang] = unicodedata.normalize("NFC", s)
            if len(tr) == len(EXTRA_LANGS):
                rows.append((msgid, tr))
    return rows


def write_corpus():
    with open(os.path.join(ROOT, "tests", "data", "spm", "corpus.txt"), encoding="utf-8") as f:
        base = [l.rstrip("\n") for l in f if l.strip()]
    rows = catalogue_messages()
    if len(rows) < N_TRAIN + N_HELDOUT:
        sys.exit("gen_wordpiece_goldens: only %d parallel messages found" % len(rows))
    rng = random.Random(15)
    rng.shuffle(rows)
    train, held = rows[:N_TRAIN], rows[N_TRAIN:N_TRAIN + N_HELDOUT]
    lines = list(base)
    for lang in EXTRA_LANGS:
        lines += [tr[lang] for _, tr in train]
    with open(os.path.join(OUT, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, "heldout.txt"), "w", encoding="utf-8") as f:
        for msgid, tr in held:
            f.write("en\t%s\n" % msgid)
            for lang in EXTRA_LANGS:
                f.write("%s\t%s\n" % (lang, tr[lang]))


def build_vocab(lines):
    words = collections.Counter()
    for line in lines:
        for lower in (True, False):
            for w in basic(line, lower, None, False):
                words[w] += 1
    chars = collections.Counter()
    for w, n in words.items():
        for c in w:
            chars[c] += n
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(vocab)

    def add(p):
        if p not in seen:
            seen.add(p)
            vocab.append(p)

    # characters seen at least twice (the others stay unknown), as word starts and continuations;
    # digits never as continuations (so "x1" style words are one [UNK])
    for c, n in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= 2:
            add(c)
            if not c.isdigit():
                add("##" + c)
    for w, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:500]:
        if len(w) >= 2 and all(ch in seen for ch in w):
            add(w)
    subs = collections.Counter()
    for w, n in words.items():
        for i in range(len(w)):
            for j in range(i + 2, min(len(w), i + 6) + 1):
                subs[(w[i:j] if i == 0 else "##" + w[i:j])] += n
    for s, n in sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))[:700]:
        add(s)
    return vocab


# ---- golden cases -----------------------------------------------------------------------------

MODES = {  # name: (lower, strip_accents, fast)
    "lower": (True, None, False),
    "cased": (False, None, False),
    "lower_keep": (True, False, False),
    "cased_strip": (False, True, False),
    "fast_lower": (True, None, True),
    "fast_cased": (False, None, True),
}

EDGE = [
    "", " ", "\t\n ", "Hello, World!", "HELLO world", "Café crème brûlée à Noël",
    "cafe\u0301 e\u0301le\u0300ve",                 # decomposed accents (NFC in slow, not in fast)
    "Ångström \u212bngstr\u00f6m",                   # U+212B ANGSTROM SIGN (NFC -> U+00C5)
    "İstanbul'da ıslak IŞIK",                        # Turkish dotted/dotless i
    "ΟΔΟΣ Σίσυφος ΣΑΣ.",                             # Greek sigma (no final-sigma rule)
    "Straße STRASSE ẞ",                              # sharp s, capital sharp s
    "中文分词测试：你好，世界！", "日本語のテキスト、カタカナとひらがな。",
    "한국어 문장입니다. 대한민국", "𠀀𠀁 𪜀 丽",           # CJK extension B, D, compatibility
    "Tiếng Việt có dấu", "हिन्दी पाठ का उदाहरण", "ภาษาไทยไม่มีช่องว่าง", "النص العربي هنا",
    "a\u00adb soft\u00adhyphen", "zero\u200bwidth joiner\u200d", "\ufeffBOM at start",
    "tab\there", "line\u2028sep\u2029para", "nbsp\u00a0space\u3000ideographic",
    "ctrl\x01\x07chars\x1f", "nul\x00byte", "repl\ufffdchar",
    "emoji 😀 👍🏽 family 👨\u200d👩\u200d👧", "math ∑ ≤ ∞ ± ×", "$100 + 50% = ¥5,000 & €3.50",
    "quotes «guillemets» „deutsch“ 'single' \"double\" `back`", "dashes a—b a–b a-b",
    "brackets (a) [b] {c} <d>", "punct!!!???...;;;", "under_score snake_case CONST_VALUE",
    "e-mail user@example.com http://example.org/path?q=1#frag",
    "[CLS] [SEP] [MASK] [PAD] [UNK]", "a[MASK]b", "[mask] [Mask] [MASK", "x[CLS]y[SEP]z",
    "numbers 123 4.56 7,890 1st 2nd x1 42x",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a" * 100, "b" * 101, "ab" * 60, "é" * 100 + " " + "é" * 101,
    "Ωmega ǅ ǈ ǋ ǲ Ǳ",                                # titlecase digraphs
    "ﬁ ﬂ ﬀ ligatures ＡＢＣ ｆｕｌｌ",                   # compatibility characters (not NFKC)
    "Ǎ ǎ Ǘ ǘ Ḕ ḕ Ṩ ṩ", "ᾈ ᾼ ῼ", "ı̇ i̇",
    "Ⅻ ⅻ Ⓐ ⓐ", "\U0001d400\U0001d41a", "\ue000\uf8ff private",
]

PAIRS = [  # (a, b, max_len)
    ("Hello world", "Bonjour le monde", 0),
    ("Hello world", "", 0),
    ("", "", 0),
    ("The quick brown fox jumps over the lazy dog", "short", 8),
    ("short", "The quick brown fox jumps over the lazy dog", 8),
    ("one two three four", "five six seven eight", 7),
    ("one two three four", "five six seven eight", 6),
    ("a b c", "d e f", 5),
    ("a b c", "d e f", 3),
    ("Müller straße", "中文分词测试", 10),
    ("single text only", None, 4),
    ("single text only", None, 2),
]


def hexs(s):
    return s.encode("utf-8", "surrogatepass").hex()


def write_golden(vocab_list, held):
    vocab = {p: i for i, p in enumerate(vocab_list)}
    texts = [t for _, t in held] + EDGE
    out = ["# generated by tests/golden/gen_wordpiece_goldens.py (Python %s, unicodedata %s)"
           % (sys.version.split()[0], unicodedata.unidata_version),
           "# enc<TAB>MODE<TAB>TEXT<TAB>IDS<TAB>PIECES   TEXT as UTF-8 hex; IDS and PIECES without"
           " specials, space-separated",
           "# pair<TAB>MODE<TAB>MAX_LEN<TAB>A<TAB>B<TAB>IDS<TAB>TYPES   B '-' for a single text;"
           " [CLS] A [SEP] (B [SEP]); MAX_LEN 0: none",
           "# modes: " + ", ".join("%s=(lower %s, strip_accents %s, %s)"
                                    % (k, v[0], v[1], "fast" if v[2] else "slow")
                                    for k, v in MODES.items())]
    for mode, (lower, strip, fast) in MODES.items():
        for t in texts:
            p = tokenize(t, vocab, lower=lower, strip=strip, fast=fast)
            out.append("enc\t%s\t%s\t%s\t%s" % (mode, hexs(t), " ".join(map(str, ids_of(p, vocab))),
                                                 " ".join(p)))
    # invalid UTF-8: decoded with errors="replace"; U+FFFD is then dropped by clean_text
    for raw in [b"ab\xffcd", b"\xc3", b"caf\xc3\xa9\xe2\x82", b"\xed\xa0\x80x", b"\xc0\xafz",
                b"ok \xf4\x90\x80\x80 ok", b"\xe4\xb8\xad\xe6\x96"]:
        t = raw.decode("utf-8", "replace")
        for mode in ("lower", "cased"):
            lower, strip, fast = MODES[mode]
            p = tokenize(t, vocab, lower=lower, strip=strip, fast=fast)
            out.append("enc\t%s\t%s\t%s\t%s" % (mode, raw.hex(), " ".join(map(str, ids_of(p, vocab))),
                                                 " ".join(p)))
    for mode in ("lower", "cased"):
        lower, strip, fast = MODES[mode]
        for a, b, m in PAIRS:
            ids, types = encode_input(a, b, m, vocab, lower=lower, strip=strip, fast=fast)
            out.append("pair\t%s\t%d\t%s\t%s\t%s\t%s" % (mode, m, hexs(a), "-" if b is None else hexs(b),
                                                         " ".join(map(str, ids)), " ".join(map(str, types))))
        for (l1, a), (l2, b) in zip(held[0::2], held[1::2]):
            for m in (0, 12):
                ids, types = encode_input(a, b, m, vocab, lower=lower, strip=strip, fast=fast)
                out.append("pair\t%s\t%d\t%s\t%s\t%s\t%s" % (mode, m, hexs(a), hexs(b),
                                                             " ".join(map(str, ids)), " ".join(map(str, types))))
    with open(os.path.join(OUT, "golden.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


BLOCK_ENDS = {cp for r in CJK for cp in r} | {0xAC00, 0xD7A3}


def write_unicode_table():
    lines = ["# generated by tests/golden/gen_wordpiece_goldens.py: unicodedata %s" % unicodedata.unidata_version,
             "# CP<TAB>slow lower<TAB>slow cased<TAB>fast lower: basic tokens of '0'+chr(CP)+'0' joined"
             " by spaces ('=': unchanged); only code points where one of them changes"]
    for cp in range(0x110000):
        c = chr(cp)
        cat = unicodedata.category(c)
        if cat in ("Cn", "Co", "Cs"):
            continue
        if (is_cjk(c) or 0xAC00 <= cp <= 0xD7A3) and cp % 97 != 0 and cp not in BLOCK_ENDS:
            continue  # ideographs (and Hangul syllables) behave alike: a sample and the block ends
        t = "0" + c + "0"
        cols = [" ".join(basic(t, True, None, False)), " ".join(basic(t, False, None, False)),
                " ".join(basic(t, True, None, True))]
        if any(x != t for x in cols):
            lines.append("%x\t%s" % (cp, "\t".join("=" if x == t else x for x in cols)))
    with open(os.path.join(OUT, "unicode.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_tokenizer_json(vocab_list):
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab_list.index(s), "content": s, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for s in SPECIALS],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                           "special_tokens": {s: {"id": s, "ids": [vocab_list.index(s)], "tokens": [s]}
                                              for s in ("[CLS]", "[SEP]")}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": MAX_CHARS,
                  "vocab": {p: i for i, p in enumerate(vocab_list)}},
    }
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=2)
        f.write("\n")


# ---- a tiny BERT base for the CLI test ----------------------------------------------------------

def write_st(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, (shape, vals) in tensors.items():
        raw = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", name
        a, b = e["data_offsets"]
        out[name] = (e["shape"], list(struct.unpack("<%df" % ((b - a) // 4), data[a:b])))
    return out, meta


def write_bert_base(vocab_list):
    top = os.path.join(OUT, "tiny-bert")
    d = os.path.join(top, "base")
    os.makedirs(d, exist_ok=True)
    V, C, L, FF, P = len(vocab_list), 16, 2, 32, 64
    rng = random.Random(2018)

    def rnd(*shape):
        n = 1
        for s in shape:
            n *= s
        return (list(shape), [round(rng.gauss(0.0, 0.2), 4) for _ in range(n)])

    def const(v, *shape):
        n = 1
        for s in shape:
            n *= s
        return (list(shape), [v] * n)

    t = collections.OrderedDict()
    t["bert.embeddings.word_embeddings.weight"] = rnd(V, C)
    t["bert.embeddings.position_embeddings.weight"] = rnd(P, C)
    t["bert.embeddings.token_type_embeddings.weight"] = rnd(2, C)
    t["bert.embeddings.LayerNorm.weight"] = const(1.0, C)
    t["bert.embeddings.LayerNorm.bias"] = const(0.0, C)
    for l in range(L):
        p = "bert.encoder.layer.%d." % l
        for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            t[p + m + ".weight"] = rnd(C, C)
            t[p + m + ".bias"] = rnd(C)
        t[p + "attention.output.LayerNorm.weight"] = const(1.0, C)
        t[p + "attention.output.LayerNorm.bias"] = const(0.0, C)
        t[p + "intermediate.dense.weight"] = rnd(FF, C)
        t[p + "intermediate.dense.bias"] = rnd(FF)
        t[p + "output.dense.weight"] = rnd(C, FF)
        t[p + "output.dense.bias"] = rnd(C)
        t[p + "output.LayerNorm.weight"] = const(1.0, C)
        t[p + "output.LayerNorm.bias"] = const(0.0, C)
    t["cls.predictions.transform.dense.weight"] = rnd(C, C)  # the MLM head (decoder tied)
    t["cls.predictions.transform.dense.bias"] = rnd(C)
    t["cls.predictions.transform.LayerNorm.weight"] = const(1.0, C)
    t["cls.predictions.transform.LayerNorm.bias"] = const(0.0, C)
    t["cls.predictions.bias"] = const(0.0, V)
    write_st(os.path.join(d, "model.safetensors"), t, {"format": "pt"})
    cfg = {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
           "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": C,
           "initializer_range": 0.02, "intermediate_size": FF, "layer_norm_eps": 1e-12,
           "max_position_embeddings": P, "model_type": "bert", "num_attention_heads": 2,
           "num_hidden_layers": L, "pad_token_id": 0, "position_embedding_type": "absolute",
           "torch_dtype": "float32", "type_vocab_size": 2, "vocab_size": V}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_list) + "\n")
    # the tiny XLM-R fixture's adapter and head (C = 16, 2 layers), renamed for a BERT model
    tiny = os.path.join(ROOT, "tests", "data", "torchbin", "tiny")
    for sub, fname in (("adapter", "adapter.safetensors"), ("head", "model_head.safetensors")):
        os.makedirs(os.path.join(top, sub), exist_ok=True)
        ts, meta = read_st(os.path.join(tiny, sub, fname))
        ts = collections.OrderedDict((k.replace("roberta.", "bert.", 1), v) for k, v in ts.items())
        write_st(os.path.join(top, sub, fname), ts, meta)
        cname = "adapter_config.json" if sub == "adapter" else "head_config.json"
        with open(os.path.join(tiny, sub, cname)) as f:
            c = json.load(f)
        c["model_class"], c["model_name"], c["model_type"] = "BertAdapterModel", "tiny-bert", "bert"
        with open(os.path.join(top, sub, cname), "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", action="store_true", help="re-extract corpus.txt and heldout.txt")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.corpus:
        write_corpus()
    with open(os.path.join(OUT, "corpus.txt"), encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f]
    with open(os.path.join(OUT, "heldout.txt"), encoding="utf-8") as f:
        held = [tuple(l.rstrip("\n").split("\t", 1)) for l in f if l.strip()]
    vocab_list = build_vocab(lines)
    with open(os.path.join(OUT, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_list) + "\n")
    write_tokenizer_json(vocab_list)
    write_golden(vocab_list, held)
    write_unicode_table()
    write_bert_base(vocab_list)
    print("vocab %d pieces; wrote %s" % (len(vocab_list), OUT))


if __name__ == "__main__":
    main()
