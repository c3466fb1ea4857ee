#!/usr/bin/python3
"""Prepare xadapt's real multilingual benchmark from Debian packages (../../shared/DATA.md).

Fetches LibreOffice help (libreoffice-help-<lang>) and man pages (manpages, manpages-<lang>) with
`apt-get download` into a cache directory, unpacks them with `dpkg-deb -x` (nothing is installed),
extracts paragraph-aligned help records and rendered man-page paragraphs, and writes:

  lo-mod/{en.train,en.dev,<lang>.test,<lang>.train}.tsv   module classification (8 classes)
  lo-ui/{en.train,en.dev,<lang>.test,<lang>.train}.conll  span tagging MENU / EMPH / CODE (BIO)
  mono/<lang>.txt, mono/<lang>.heldout.txt                language-adapter corpora / held-out text
  multi.txt                                               base-model pretraining corpus
  pairs.tsv                                               aligned train-split paragraphs (TLM, alignment)
  lang-pairs.tsv                                          pairs.tsv + the unseen targets' pairs (lang align)
  retrieval/<lang>.tsv                                    aligned test-split paragraphs (retrieval probe)
  manifest.json                                           counts, sha256 of every file, packages

Standard library only (run with /usr/bin/python3); groff renders the man pages. Deterministic:
the same packages, options and seed give byte-identical outputs. See recipes/data/README.md.
Not done here: debian-handbook, installation-guide and gnome-user-docs (DATA.md "more prose").
"""
import argparse
import concurrent.futures as cf
import gzip
import hashlib
import html.parser
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata

EXTRACT_VERSION = 1  # bump when the extraction of cached records changes
MODULES = ("swriter", "scalc", "simpress", "sdraw", "smath", "schart", "sdatabase", "sbasic")
LO_LANGS = ("ca", "cs", "da", "de", "dz", "el", "es", "et", "eu", "fi", "fr", "gl", "hi", "hu", "id",
            "it", "ja", "km", "ko", "nl", "om", "pl", "pt", "pt-br", "ru", "sl", "sv", "tr", "vi",
            "zh-cn", "zh-tw")
QUICK_LANGS = ("de", "fr", "el", "ru", "tr", "ja")
# man-page packages and the locale directory under usr/share/man/ (None = the English man1..man8)
MAN_L10N = ("cs", "da", "de", "el", "es", "fi", "fr", "hu", "id", "it", "nl", "pl", "pt-br", "ru",
            "sv", "vi", "ja", "tr")
NOSPACE = ("ja", "zh-cn", "zh-tw", "km", "dz")   # languages written without spaces between words
SCRIPTS = {"el": ("GREEK",), "ru": ("CYRILLIC",), "ja": ("CJK", "HIRAGANA", "KATAKANA",
           "KATAKANA-HIRAGANA", "HALFWIDTH"), "zh-cn": ("CJK",), "zh-tw": ("CJK",),
           "ko": ("HANGUL", "CJK"), "km": ("KHMER",), "dz": ("TIBETAN",), "hi": ("DEVANAGARI",)}
# one token per character (with its combining marks) for these scripts in NOSPACE languages
SPLIT_SCRIPTS = {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HALFWIDTH", "KHMER",
                 "TIBETAN", "IDEOGRAPHIC", "FULLWIDTH"}
EN_FUNCTION = set("""the of and is are you your that this these those it its for with from by which
will can not have has or when if into there they was would should been also only such than then
them an on to in at as be all but does must other how what where may""".split())
# English function words that are also frequent words of the language: not counted there
FUNCTION_CLASH = {
    "nl": "of is in was an then", "de": "in an was also will so", "da": "for at in", "sv": "for in",
    "fr": "on a as or an but", "it": "a in", "es": "a", "ca": "a", "gl": "a", "pt": "a as do",
    "pt-br": "a as do", "pl": "a to on by", "cs": "a to on by", "sl": "a to on by", "hu": "a is",
    "fi": "on", "et": "on", "eu": "on", "tr": "on", "id": "at", "om": "is", "vi": "an"}
SPAN_TAGS = {"menuitem": "MENU", "emph": "EMPH", "input": "CODE", "literal": "CODE",
             "keycode": "CODE"}
PROFILES = {
    # caps: per file; mono/multi in characters. man_pages: per man package (hash order).
    "quick": dict(mod_train=4000, mod_dev=600, mod_test=1000, mod_tgt_train=2000,
                  ui_train=3000, ui_dev=500, ui_test=800, ui_tgt_train=1500,
                  mono_chars=1_000_000, heldout_lines=1000, multi_chars=4_000_000, man_pages=150,
                  pairs_per_lang=0, retrieval_lines=500, unseen=()),
    "full": dict(mod_train=0, mod_dev=0, mod_test=0, mod_tgt_train=0,
                 ui_train=0, ui_dev=0, ui_test=0, ui_tgt_train=0,
                 mono_chars=20_000_000, heldout_lines=0, multi_chars=40_000_000, man_pages=0,
                 pairs_per_lang=0, retrieval_lines=1000, unseen=()),
    # every language of full, task files capped so recipes/madx-libreoffice.yaml (15 targets x
    # 3 seeds x 5 setups, both tasks) runs in about two hours on 2 cores
    "bench": dict(mod_train=8000, mod_dev=800, mod_test=1000, mod_tgt_train=2000,
                  ui_train=6000, ui_dev=600, ui_test=800, ui_tgt_train=1500,
                  mono_chars=4_000_000, heldout_lines=1000, multi_chars=40_000_000, man_pages=0,
                  pairs_per_lang=20000, retrieval_lines=1000,
                  # unseen by the base: kept out of multi.txt (hence the tokenizer) and pairs.tsv;
                  # four scripts and four families (Khmer, Hangul, Tibetan, Latin: Cushitic, Uralic)
                  unseen=("km", "ko", "dz", "om", "et")),
}
SPLIT_RATIOS = (70, 80)   # md5(path) % 100: < 70 train, < 80 dev, else test
UI_NOSPAN_KEEP = 3        # keep 1 in 3 LO-UI paragraphs without spans (by key hash)


class PrepError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def md5int(s):
    return int(hashlib.md5(s.encode("utf-8")).hexdigest()[:12], 16)


def doc_split(path):
    h = md5int(path) % 100
    return "train" if h < SPLIT_RATIOS[0] else "dev" if h < SPLIT_RATIOS[1] else "test"


def norm_ws(s):
    return " ".join(unicodedata.normalize("NFC", s).split())


# ---- LibreOffice help HTML -------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}
SKIP_TAGS = {"header", "aside", "footer", "script", "style", "noscript", "pre", "code", "head",
             "title", "button", "nav", "label"}
SKIP_CLASSES = {"embedded", "bascode", "pycode", "code", "codeintable", "smathcode", "noteicon",
                "debug", "howtogetheader"}


class HelpParser(html.parser.HTMLParser):
    """Collects the <p>/<h1-6> blocks with an id of one help page.

    Skipped: page chrome (header, aside, footer), div.embedded (paragraphs owned by other files),
    code (pre, code, p.code, bascode, ...), hidden variants (hidden spans with a class: MAC, WIN,
    UNIX, CALC, ...; the hidden default variant without a class is the text shown). Spans
    menuitem/emph/input/literal/keycode are recorded as character offsets into the block's text
    (outermost span wins)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []       # (tag, skip, closes_block, span_type)
        self.skip = 0
        self.block = None     # [tag, id, pieces, spans, open_span]
        self.blocks = []

    def _text_len(self):
        return sum(len(p) for p in self.block[2])

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = set((a.get("class") or "").split())
        skip = (tag in SKIP_TAGS or bool(cls & SKIP_CLASSES)
                or ("hidden" in a and bool(cls)))
        if tag == "br" and self.block is not None and not self.skip:
            self.block[2].append(" ")
        if tag in VOID:
            return
        opens = False
        span_type = None
        if skip:
            self.skip += 1
        elif not self.skip:
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
                if self.block is None:
                    if a.get("id"):
                        self.block = [tag, a["id"], [], [], None]
                        opens = True
                else:
                    self.block[2].append(" ")
            elif tag == "span" and self.block is not None and self.block[4] is None:
                t = next((SPAN_TAGS[c] for c in sorted(cls) if c in SPAN_TAGS), None)
                if t:
                    self.block[4] = (t, self._text_len())
                    span_type = t
        self.stack.append((tag, skip, opens, span_type))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        # pop to the matching open tag (tolerates unclosed inner elements)
        if not any(t == tag for t, _, _, _ in self.stack):
            return
        while self.stack:
            t, skip, opens, span_type = self.stack.pop()
            if skip:
                self.skip -= 1
            if span_type and self.block is not None and self.block[4] is not None:
                st, start = self.block[4]
                self.block[3].append((start, self._text_len(), st))
                self.block[4] = None
            if opens:
                self._close_block()
            if t == tag:
                break

    def handle_data(self, data):
        if self.block is not None and not self.skip:
            self.block[2].append(data)

    def _close_block(self):
        tag, bid, pieces, spans, _ = self.block
        self.block = None
        raw = "".join(pieces)
        text, spans = normalize_with_spans(raw, spans)
        if text:
            self.blocks.append({"id": bid, "tag": tag, "text": text, "spans": spans})


def normalize_with_spans(raw, spans):
    """NFC + collapse whitespace; map span offsets onto the collapsed text, trimming spaces."""
    raw = unicodedata.normalize("NFC", raw)  # spans are rarely affected; offsets are clamped below
    out = []
    pos_map = []  # raw index -> output index
    pending_space = False
    for ch in raw:
        if ch.isspace():
            pending_space = bool(out)
            pos_map.append(len(out) + (1 if pending_space else 0))
            continue
        if pending_space:
            out.append(" ")
            pending_space = False
        pos_map.append(len(out))
        out.append(ch)
    pos_map.append(len(out))
    text = "".join(out)
    res = []
    for s, e, t in spans:
        s = min(pos_map[min(s, len(raw))], len(text))
        e = min(pos_map[min(e, len(raw))], len(text))
        while s < e and text[s] == " ":
            s += 1
        while e > s and text[e - 1] == " ":
            e -= 1
        if e > s:
            res.append([s, e, t])
    return text, res


def extract_help_tree(root, lang):
    """All records of an unpacked libreoffice-help package: sorted by (path, order). The package
    may hold several variants (libreoffice-help-ca also has ca-valencia): lang's directory
    (en-US, pt-BR, zh-CN, ...: case-insensitive) is taken."""
    help_dir = os.path.join(root, "usr/share/libreoffice/help")
    want = "en-us" if lang == "en" else lang
    dirs = [d for d in sorted(os.listdir(help_dir))
            if d.lower() == want and os.path.isdir(os.path.join(help_dir, d, "text"))]
    if len(dirs) != 1:
        raise PrepError(f"{help_dir}: no directory {want}/text (found {sorted(os.listdir(help_dir))})")
    text_dir = os.path.join(help_dir, dirs[0], "text")
    records = []
    for dirpath, dirnames, filenames in os.walk(text_dir):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(".html"):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, text_dir).replace(os.sep, "/")
            p = HelpParser()
            with open(full, encoding="utf-8", errors="replace") as f:
                p.feed(f.read())
            p.close()
            seen = set()
            for b in p.blocks:
                if b["id"] in seen:
                    continue
                seen.add(b["id"])
                b["path"] = rel
                records.append(b)
    return records


# ---- man pages ------------------------------------------------------------------------------

def render_man(data):
    """groff a man page with a huge line length: one paragraph per output line. Returns the
    indented lines (body text; headers, footers and section headings start in column 0)."""
    if data.lstrip().startswith(b".so "):
        return []
    try:
        r = subprocess.run(["groff", "-Kutf-8", "-t", "-man", "-Tutf8", "-rLL=20000n", "-rHY=0",
                            "-P-c", "-P-b", "-P-u"], input=data, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return []
    out = []
    for line in r.stdout.decode("utf-8", "replace").split("\n"):
        if line[:1] == " ":
            t = norm_ws(line)
            if t:
                out.append(t)
    return out


def man_pages_in(root, locale):
    base = os.path.join(root, "usr/share/man", locale) if locale else os.path.join(root, "usr/share/man")
    pages = []
    if not os.path.isdir(base):
        return pages
    for sec in sorted(os.listdir(base)):
        d = os.path.join(base, sec)
        if not (sec.startswith("man") and os.path.isdir(d)):
            continue
        for fn in sorted(os.listdir(d)):
            full = os.path.join(d, fn)
            if os.path.isfile(full) and not os.path.islink(full):
                pages.append(os.path.relpath(full, base).replace(os.sep, "/"))
    return pages


# ---- packages and cache ---------------------------------------------------------------------

def run(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def resolve_packages(names, required):
    """{name: (filename, size, sha256)} from `apt-get download --print-uris` (no download).
    A missing required package is an error; a missing optional one is left out."""
    names = list(names)
    info = {}
    with tempfile.TemporaryDirectory() as empty:
        while names:
            r = run(["apt-get", "download", "--print-uris"] + names, cwd=empty)
            if r.returncode == 0:
                for line in r.stdout.splitlines():
                    m = re.match(r"^'([^']+)' (\S+) (\d+) (?:SHA256:)?(\S+)", line)
                    if m:
                        fn = m.group(2)
                        pkg = fn.split("_")[0]
                        info[pkg] = (fn, int(m.group(3)), m.group(4))
                break
            missing = re.findall(r"Unable to locate package (\S+)", r.stderr)
            if not missing:
                raise PrepError("apt-get download --print-uris failed: " + r.stderr.strip()
                                + "\nhint: run `apt-get update` (as root) so apt knows the packages")
            bad = [m for m in missing if m in required]
            if bad:
                raise PrepError(f"no Debian package {', '.join(bad)} (needed for the requested "
                                "languages)\nhint: check the language code (LibreOffice help "
                                f"languages: {', '.join(LO_LANGS)}) or run `apt-get update`")
            names = [n for n in names if n not in missing]
    for n in required:
        if n not in info:
            raise PrepError(f"apt did not resolve {n}")
    return info


def local_packages(deb_dir, names, required):
    """Like resolve_packages, from NAME_VERSION_ARCH.deb files in a directory (offline tests)."""
    info = {}
    files = sorted(os.listdir(deb_dir)) if os.path.isdir(deb_dir) else []
    for n in names:
        fn = next((f for f in files if f.startswith(n + "_") and f.endswith(".deb")), None)
        if fn is None:
            if n in required:
                raise PrepError(f"no {n}_*.deb in --local-debs {deb_dir}")
            continue
        path = os.path.join(deb_dir, fn)
        info[n] = (fn, os.path.getsize(path), sha256_file(path))
    return info


def fetch(info, deb_dir):
    """Download the packages not yet in the cache (apt-get download, verified by sha256)."""
    os.makedirs(deb_dir, exist_ok=True)
    todo = [p for p, (fn, size, _) in sorted(info.items())
            if not (os.path.isfile(os.path.join(deb_dir, fn))
                    and os.path.getsize(os.path.join(deb_dir, fn)) == size)]
    if todo:
        log(f"download: {len(todo)} package(s) into {deb_dir}")
        r = run(["apt-get", "download"] + todo, cwd=deb_dir)
        if r.returncode != 0:
            raise PrepError("apt-get download failed for " + " ".join(todo) + ":\n" + r.stderr.strip())
    for p in todo:
        fn, size, sha = info[p]
        path = os.path.join(deb_dir, fn)
        if not os.path.isfile(path):
            raise PrepError(f"apt-get download did not produce {path}")
        if sha256_file(path) != sha:
            os.unlink(path)
            raise PrepError(f"{path}: sha256 mismatch after download (deleted; run again)")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def unpack(deb, dest):
    r = run(["dpkg-deb", "-x", deb, dest])
    if r.returncode != 0:
        raise PrepError(f"dpkg-deb -x {deb} failed: {r.stderr.strip()}")


def help_records(deb_path, lang, cache_dir):
    """Cached extraction of one help package (gzip JSON lines; the unpacked HTML is deleted)."""
    name = os.path.basename(deb_path)
    cpath = os.path.join(cache_dir, "lo", f"{name}.v{EXTRACT_VERSION}.jsonl.gz")
    if not os.path.isfile(cpath):
        os.makedirs(os.path.dirname(cpath), exist_ok=True)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(cpath)) as tmp:
            unpack(deb_path, tmp)
            recs = extract_help_tree(tmp, lang)
        data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in recs)
        atomic_write_bytes(cpath, gzip.compress(data.encode("utf-8"), mtime=0))
    with gzip.open(cpath, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def man_records(deb_path, locale, cap, cache_dir, workers):
    """Paragraphs of the man pages of one package, {page: [lines]}, for the first `cap` pages in
    md5 order (all when cap is 0). Rendered pages are cached per package and reused."""
    name = os.path.basename(deb_path)
    cpath = os.path.join(cache_dir, "man", f"{name}.{locale or 'C'}.v{EXTRACT_VERSION}.json.gz")
    cached = {}
    if os.path.isfile(cpath):
        with gzip.open(cpath, "rt", encoding="utf-8") as f:
            cached = json.load(f)
    pages = cached.get("__pages__")
    rendered = cached.get("pages", {})
    want = None
    if pages is not None:
        want = sorted(pages, key=lambda p: md5int(p))
        if cap:
            want = want[:cap]
        if all(p in rendered for p in want):
            return {p: rendered[p] for p in sorted(want)}
    os.makedirs(os.path.dirname(cpath), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(cpath)) as tmp:
        unpack(deb_path, tmp)
        pages = man_pages_in(tmp, locale)
        want = sorted(pages, key=lambda p: md5int(p))
        if cap:
            want = want[:cap]
        todo = [p for p in want if p not in rendered]
        base = os.path.join(tmp, "usr/share/man", locale) if locale else os.path.join(tmp, "usr/share/man")

        def one(p):
            with open(os.path.join(base, p), "rb") as f:
                data = f.read()
            if p.endswith(".gz"):
                data = gzip.decompress(data)
            return p, render_man(data)

        with cf.ThreadPoolExecutor(max_workers=workers) as ex:
            for p, lines in ex.map(one, todo):
                rendered[p] = lines
    blob = json.dumps({"__pages__": pages, "pages": rendered}, ensure_ascii=False, sort_keys=True)
    atomic_write_bytes(cpath, gzip.compress(blob.encode("utf-8"), mtime=0))
    return {p: rendered[p] for p in sorted(want)}


# ---- text tools -----------------------------------------------------------------------------

_SCRIPT = {}


def script_of(ch):
    s = _SCRIPT.get(ch)
    if s is None:
        try:
            s = unicodedata.name(ch).split(" ")[0]
        except ValueError:
            s = ""
        _SCRIPT[ch] = s
    return s


def tokenize(text, nospace):
    """Word spans (start, end) for CoNLL. Words are runs of letters, digits and combining marks;
    every other non-space character is a word of its own; whitespace and format characters
    (ZWSP, ZWJ...) separate. For languages without spaces (ja, zh, km, dz) every character of
    those scripts is a word (with its combining marks, and for Khmer the consonant subscripted by
    a coeng); Latin runs and numbers stay whole."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        cat = unicodedata.category(ch)
        if ch.isspace() or cat == "Cf":
            i += 1
            continue
        if cat[0] in "LNM" or ch == "_":
            if nospace and script_of(ch) in SPLIT_SCRIPTS:
                j = i + 1
                while j < n and (unicodedata.category(text[j])[0] == "M"
                                 or text[j - 1] == "\u17d2"):  # Khmer coeng + subscript consonant
                    j += 1
                out.append((i, j))
                i = j
                continue
            j = i + 1
            while j < n:
                c2 = text[j]
                k = unicodedata.category(c2)
                if not (k[0] in "LNM" or c2 == "_"):
                    break
                if nospace and k[0] != "M" and script_of(c2) in SPLIT_SCRIPTS:
                    break
                j += 1
            out.append((i, j))
            i = j
        else:
            out.append((i, i + 1))
            i += 1
    return out


def bio(text, spans, nospace):
    words = tokenize(text, nospace)
    tags = []
    for ws, we in words:
        tag = "O"
        for s, e, t in spans:
            if ws < e and we > s:
                tag = ("B-" if ws <= s else "I-") + t
                break
        tags.append(tag)
    # a span whose first word started before it (rare) still opens with B
    for k in range(len(tags)):
        if tags[k].startswith("I-") and (k == 0 or tags[k - 1][2:] != tags[k][2:]):
            tags[k] = "B-" + tags[k][2:]
    return [(text[s:e], t) for (s, e), t in zip(words, tags)]


_WORD = re.compile(r"[^\W\d_]+")


def english_ratio(text, lang):
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0
    clash = set(FUNCTION_CLASH.get(lang, "").split())
    hits = sum(1 for w in words if w in EN_FUNCTION and w not in clash)
    return hits / len(words)


def script_ratio(text, lang):
    want = SCRIPTS.get(lang)
    if not want:
        return 1.0
    letters = [c for c in text if unicodedata.category(c)[0] == "L"]
    if not letters:
        return 0.0
    return sum(1 for c in letters if script_of(c) in want) / len(letters)


def clean_ok(text, lang, en_text=None):
    """DATA.md's cleaning rules for monolingual text (duplicates are removed by the caller)."""
    if len(text) < 20:
        return False
    if lang != "en":
        if en_text is not None and text == en_text:
            return False
        if english_ratio(text, lang) > 0.15:
            return False
        if script_ratio(text, lang) < 0.5:
            return False
    return True


def hash_order(items, key, seed):
    return sorted(items, key=lambda x: (hashlib.md5(f"{seed}:{key(x)}".encode("utf-8")).digest(), key(x)))


def cap_keep_order(items, cap, key, seed):
    """The first `cap` items in seeded hash order, returned in their original order."""
    if not cap or len(items) <= cap:
        return list(items)
    keep = set(id(x) for x in hash_order(items, key, seed)[:cap])
    return [x for x in items if id(x) in keep]


# ---- building the outputs -------------------------------------------------------------------

def man_packages(lang):
    """[(package, locale)] of man pages for a language; optional -dev packages included."""
    if lang == "en":
        return [("manpages", None), ("manpages-dev", None)]
    if lang in ("zh-cn", "zh-tw"):
        return [("manpages-zh", "zh_CN" if lang == "zh-cn" else "zh_TW")]
    if lang in MAN_L10N:
        loc = "pt_BR" if lang == "pt-br" else lang
        return [(f"manpages-{lang}", loc), (f"manpages-{lang}-dev", loc)]
    return []


def help_package(lang):
    return "libreoffice-help-en-us" if lang == "en" else f"libreoffice-help-{lang}"


class Out:
    """Collects the output files in memory; written to a staging directory at the end."""

    def __init__(self):
        self.files = {}

    def lines(self, rel, lines):
        self.files[rel] = "".join(l + "\n" for l in lines).encode("utf-8")


def build(args):
    t0 = time.time()
    prof = dict(PROFILES[args.profile])
    if args.man_pages is not None:
        prof["man_pages"] = args.man_pages
    if args.langs:
        langs = [l.strip().lower() for l in args.langs.split(",") if l.strip()]
    else:
        langs = ["en"] + list(QUICK_LANGS if args.profile == "quick" else LO_LANGS)
    if "en" not in langs:
        langs.insert(0, "en")
    langs = ["en"] + sorted(dict.fromkeys(l for l in langs if l != "en"))
    bad = [l for l in langs if l != "en" and l not in LO_LANGS]
    if bad:
        raise PrepError(f"--langs: no LibreOffice help for {', '.join(bad)}; "
                        f"languages with help: en, {', '.join(LO_LANGS)}")
    targets = langs[1:]
    unseen_req = prof["unseen"] if args.unseen is None else \
        tuple(l.strip().lower() for l in args.unseen.split(",") if l.strip())
    bad = [l for l in unseen_req if l == "en" or l not in LO_LANGS]
    if bad:
        raise PrepError(f"--unseen: {', '.join(bad)} cannot be unseen (en is the source; "
                        f"languages with help: {', '.join(LO_LANGS)})")
    cache = args.cache
    deb_dir = os.path.join(cache, "debs")

    for tool in ("dpkg-deb",) + (("groff",) if prof["man_pages"] >= 0 else ()) + \
            (() if args.local_debs else ("apt-get",)):
        if shutil.which(tool) is None:
            raise PrepError(f"{tool} not found\nhint: run .ci/setup --data (installs groff-base, "
                            "dpkg, apt, python3), or --man-pages -1 to leave out man pages")

    # 1. packages
    required = [help_package(l) for l in langs]
    optional = [p for l in langs for p, _ in man_packages(l)] if prof["man_pages"] >= 0 else []
    optional = list(dict.fromkeys(optional))
    if args.local_debs:
        deb_dir = os.path.abspath(args.local_debs)
        info = local_packages(deb_dir, required + optional, set(required))
    else:
        info = resolve_packages(required + optional, set(required) | {"manpages"})
        fetch(info, deb_dir)
    t_fetch = time.time()
    log(f"packages: {len(info)} resolved and cached ({t_fetch - t0:.1f}s)")

    # 2. LibreOffice help records (parallel, cached)
    recs = {}
    with cf.ProcessPoolExecutor(max_workers=args.jobs) as ex:
        futs = {l: ex.submit(help_records, os.path.join(deb_dir, info[help_package(l)][0]), l, cache)
                for l in langs}
        for l in langs:
            recs[l] = futs[l].result()
    t_lo = time.time()
    log(f"help: {sum(len(v) for v in recs.values())} blocks in {len(langs)} languages "
        f"({t_lo - t_fetch:.1f}s)")

    # 3. man pages (cached per package)
    man = {l: [] for l in langs}
    man_pages_used = {}
    if prof["man_pages"] >= 0:
        for l in langs:
            for pkg, loc in man_packages(l):
                if pkg not in info:
                    continue
                pages = man_records(os.path.join(deb_dir, info[pkg][0]), loc, prof["man_pages"],
                                    cache, args.jobs)
                man_pages_used[f"{pkg}:{loc or 'C'}"] = len(pages)
                for p in sorted(pages):
                    man[l].extend(pages[p])
    t_man = time.time()
    log(f"man pages: {sum(man_pages_used.values())} pages ({t_man - t_lo:.1f}s)")

    out = Out()
    counts = {"lo-mod": {}, "lo-ui": {}, "mono": {}, "help": {}}
    seed = args.seed

    # English alignment table and splits
    en = {(r["path"], r["id"]): r for r in recs["en"]}
    en_train_text = {r["text"] for r in recs["en"] if doc_split(r["path"]) == "train"}
    # Text of any test-split document, in any language: never in a corpus (mono, multi, pairs),
    # even where the same text (boilerplate) also occurs in a train or dev document.
    test_text = {r["text"] for l in langs for r in recs[l] if doc_split(r["path"]) == "test"}
    train_text = {l: {r["text"] for r in recs[l] if doc_split(r["path"]) == "train"} for l in langs}
    for l in langs:
        c = {"blocks": len(recs[l]), "aligned": 0, "translated": 0}
        for r in recs[l]:
            e = en.get((r["path"], r["id"]))
            if e is not None:
                c["aligned"] += 1
                if l == "en" or r["text"] != e["text"]:
                    c["translated"] += 1
        counts["help"][l] = c

    def module_of(path):
        m = path.split("/", 1)[0]
        return m if m in MODULES else None

    # test keys: English test-split blocks whose text does not occur in an English train doc
    test_keys = set()
    verbatim = {"mod": 0, "ui": 0}
    for r in recs["en"]:
        if doc_split(r["path"]) == "test" and r["tag"] == "p":
            if r["text"] in en_train_text:
                if module_of(r["path"]) and len(r["text"]) >= 30:
                    verbatim["mod"] += 1
                continue
            test_keys.add((r["path"], r["id"]))

    def aligned(l, split):
        """(record, english record) of language l in a split, p blocks only, translated ones for
        targets; test only over test_keys."""
        res = []
        for r in recs[l]:
            if r["tag"] != "p" or doc_split(r["path"]) != split:
                continue
            key = (r["path"], r["id"])
            e = en.get(key)
            if e is None:
                continue
            if l != "en" and r["text"] == e["text"]:
                continue
            if split == "test" and key not in test_keys:
                continue
            if split == "test" and l != "en" and r["text"] in train_text[l]:
                continue   # as for English: a target test paragraph must not occur in its train docs
            res.append((r, e))
        return res

    # ---- LO-MOD
    def mod_rows(pairs, cap, salt):
        rows, seen = [], set()
        for r, e in pairs:   # the length rule applies to the English text: same keys everywhere
            m = module_of(r["path"])
            if m is None or len(e["text"]) < 30:
                continue
            if (m, r["text"]) in seen:
                continue
            seen.add((m, r["text"]))
            rows.append((r["path"], r["id"], m, r["text"]))
        rows = cap_keep_order(rows, cap, key=lambda x: x[0] + "#" + x[1], seed=f"{seed}:{salt}")
        return rows

    def mod_write(rel, rows):
        out.lines(rel, ["label\ttext"] + [f"{m}\t{t}" for _, _, m, t in rows])

    excluded = {}
    mod_sets = {}
    for l in langs:
        c = {}
        splits = ("train", "dev", "test") if l == "en" else ("test", "train")
        for split in splits:
            cap = {("en", "train"): prof["mod_train"], ("en", "dev"): prof["mod_dev"]}.get(
                (l, split), prof["mod_test"] if split == "test" else prof["mod_tgt_train"])
            rows = mod_rows(aligned(l, split), cap, "mod-" + split)
            mod_sets[(l, split)] = rows
            c[split] = len(rows)
            c[split + "_by_label"] = {m: sum(1 for x in rows if x[2] == m) for m in MODULES}
        counts["lo-mod"][l] = c
    for l in targets:
        if counts["lo-mod"][l]["test"] < args.min_test:
            excluded[l] = (f"{counts['lo-mod'][l]['test']} translated LO-MOD test paragraphs "
                           f"(< --min-test {args.min_test})")
    if excluded:
        for l, why in excluded.items():
            log(f"warning: leaving out {l}: {why}")
        langs = [l for l in langs if l not in excluded]
        targets = [l for l in targets if l not in excluded]
        if not targets:
            raise PrepError("no target language left after --min-test")
    counts["lo-mod"]["en"]["test_dropped_verbatim_in_train"] = verbatim["mod"]
    for (l, split), rows in sorted(mod_sets.items()):
        if l in langs:
            mod_write(f"lo-mod/{l}.{split}.tsv", rows)

    # ---- LO-UI
    def ui_rows(l, pairs, cap, salt):
        nospace = l in NOSPACE
        rows = []
        for r, e in pairs:
            if len(e["text"]) < 20:
                continue
            key = r["path"] + "#" + r["id"]
            if not r["spans"] and md5int(f"{seed}:ui:{key}") % UI_NOSPAN_KEEP:
                continue
            toks = bio(r["text"], r["spans"], nospace)
            if toks:
                rows.append((key, toks))
        return cap_keep_order(rows, cap, key=lambda x: x[0], seed=f"{seed}:{salt}")

    for l in langs:
        c = {}
        splits = ("train", "dev", "test") if l == "en" else ("test", "train")
        for split in splits:
            cap = {("en", "train"): prof["ui_train"], ("en", "dev"): prof["ui_dev"]}.get(
                (l, split), prof["ui_test"] if split == "test" else prof["ui_tgt_train"])
            rows = ui_rows(l, aligned(l, split), cap, "ui-" + split)
            lines = []
            spans = {"MENU": 0, "EMPH": 0, "CODE": 0}
            words = 0
            for _, toks in rows:
                for w, t in toks:
                    lines.append(f"{w}\t{t}")
                    if t.startswith("B-"):
                        spans[t[2:]] += 1
                words += len(toks)
                lines.append("")
            out.lines(f"lo-ui/{l}.{split}.conll", lines)
            c[split] = len(rows)
            c[split + "_words"] = words
            c[split + "_spans"] = spans
        counts["lo-ui"][l] = c

    # ---- mono and multi
    mono = {}
    for l in langs:
        seen = set()
        lines, held = [], []
        src = {"help": 0, "man": 0, "dropped_test_text": 0}
        for r in recs[l]:
            e = en.get((r["path"], r["id"]))
            t = r["text"]
            if t in seen or not clean_ok(t, l, None if l == "en" or e is None else e["text"]):
                continue
            seen.add(t)
            if doc_split(r["path"]) == "test":
                held.append(t)
            elif t in test_text:
                src["dropped_test_text"] += 1
            else:
                lines.append(t)
                src["help"] += 1
        for t in man[l]:
            if t in seen or not clean_ok(t, l):
                continue
            seen.add(t)
            if t in test_text:
                src["dropped_test_text"] += 1
                continue
            lines.append(t)
            src["man"] += 1
        lines = hash_order(lines, key=lambda x: x, seed=f"{seed}:mono:{l}")
        if prof["mono_chars"]:
            total, k = 0, 0
            for k, t in enumerate(lines):
                total += len(t) + 1
                if total > prof["mono_chars"]:
                    break
            else:
                k = len(lines)
            lines = lines[:k]
        if prof["heldout_lines"]:
            held = hash_order(held, key=lambda x: x, seed=f"{seed}:held:{l}")[:prof["heldout_lines"]]
        mono[l] = lines
        out.lines(f"mono/{l}.txt", lines)
        out.lines(f"mono/{l}.heldout.txt", held)
        kept = set(lines)
        counts["mono"][l] = {"lines": len(lines), "chars": sum(len(t) for t in lines),
                             "heldout_lines": len(held),
                             "available": src,
                             "from_help": sum(1 for r in recs[l] if r["text"] in kept)}

    # multi: temperature sampling q_l ~ n_l^alpha over the mono corpora, water-filled under the cap
    # (unseen languages get no share: their text is only in their own mono corpus)
    unseen = [l for l in unseen_req if l in langs]
    sizes = {l: (0 if l in unseen else sum(len(t) + 1 for t in mono[l])) for l in langs}
    budget = prof["multi_chars"] or sum(sizes.values())
    alloc = {l: 0 for l in langs}
    open_langs = [l for l in langs if sizes[l] > 0]
    remaining = budget
    while open_langs and remaining > 0:
        w = {l: sizes[l] ** args.alpha for l in open_langs}
        tot = sum(w.values())
        capped = []
        for l in open_langs:
            share = remaining * w[l] / tot
            if alloc[l] + share >= sizes[l]:
                capped.append(l)
        if not capped:
            for l in open_langs:
                alloc[l] += remaining * w[l] / tot
            remaining = 0
            break
        for l in capped:
            remaining -= sizes[l] - alloc[l]
            alloc[l] = sizes[l]
            open_langs.remove(l)
    multi = []
    for l in langs:
        total, n = 0, 0
        for t in mono[l]:   # already in seeded hash order
            if l in unseen or total + len(t) + 1 > alloc[l]:
                break
            multi.append(t)
            total += len(t) + 1
            n += 1
        counts["mono"][l]["multi_lines"] = n
        counts["mono"][l]["multi_chars"] = total
    rng = random.Random(seed)
    rng.shuffle(multi)
    out.lines("multi.txt", multi)

    # ---- pairs: aligned paragraphs of train-split documents (TLM and alignment of the base)
    # The unseen targets' pairs (same rules) go only to lang-pairs.tsv, for the aligned language
    # adapters (phases.lang.align): the base never sees their text, their adapters may.
    pairs, unseen_pairs = [], []
    counts["pairs"] = {}
    counts["lang_pairs_unseen"] = {}
    for l in targets:
        rows, seen = [], set()
        for r in recs[l]:
            e = en.get((r["path"], r["id"]))
            if e is None or doc_split(r["path"]) != "train":
                continue
            a, b = e["text"], r["text"]
            if (a, b) in seen or a in test_text or b in test_text:
                continue
            if not clean_ok(a, "en") or not clean_ok(b, l, a):
                continue
            seen.add((a, b))
            rows.append((l, a, b))
        rows = cap_keep_order(rows, prof["pairs_per_lang"], key=lambda x: x[1] + "\t" + x[2],
                              seed=f"{seed}:pairs:{l}")
        if l in unseen:
            counts["lang_pairs_unseen"][l] = len(rows)
            unseen_pairs.extend(rows)
            continue
        counts["pairs"][l] = len(rows)
        pairs.extend(rows)
    pairs = hash_order(pairs, key=lambda x: x[0] + "\t" + x[1] + "\t" + x[2], seed=f"{seed}:pairs")
    unseen_pairs = hash_order(unseen_pairs, key=lambda x: x[0] + "\t" + x[1] + "\t" + x[2], seed=f"{seed}:lang-pairs")
    out.lines("pairs.tsv", ["lang\ten\ttext"] + [f"{l}\t{a}\t{b}" for l, a, b in pairs])
    out.lines("lang-pairs.tsv", ["lang\ten\ttext"] + [f"{l}\t{a}\t{b}" for l, a, b in pairs + unseen_pairs])

    # ---- retrieval: aligned paragraphs of test-split documents, unique on both sides
    counts["retrieval"] = {}
    for l in targets:
        rows, seen_a, seen_b = [], set(), set()
        for r in recs[l]:
            e = en.get((r["path"], r["id"]))
            if e is None or doc_split(r["path"]) != "test":
                continue
            a, b = e["text"], r["text"]
            if a in seen_a or b in seen_b or not clean_ok(a, "en") or not clean_ok(b, l, a):
                continue
            seen_a.add(a)
            seen_b.add(b)
            rows.append((a, b))
        rows = hash_order(rows, key=lambda x: x[0] + "\t" + x[1], seed=f"{seed}:retrieval:{l}")
        rows = rows[:prof["retrieval_lines"]] if prof["retrieval_lines"] else rows
        counts["retrieval"][l] = len(rows)
        out.lines(f"retrieval/{l}.tsv", ["en\ttext"] + [f"{a}\t{b}" for a, b in rows])

    # ---- the split rule, checked on the outputs: no test text in any corpus
    corpus_text = set(multi) | {t for l in langs for t in mono[l]} | \
        {t for _, a, b in pairs + unseen_pairs for t in (a, b)}
    leaks = []
    for rel, data in out.files.items():
        if rel.startswith("lo-mod/") and rel.endswith(".test.tsv"):
            texts = [x.split("\t", 1)[1] for x in data.decode("utf-8").splitlines()[1:]]
        elif rel.startswith("retrieval/"):
            texts = [t for x in data.decode("utf-8").splitlines()[1:] for t in x.split("\t")]
        elif rel.endswith(".heldout.txt"):
            texts = data.decode("utf-8").splitlines()
        else:
            continue
        leaks.extend((rel, t) for t in texts if t in corpus_text)
    if leaks:
        raise PrepError(f"{len(leaks)} test paragraph(s) also in a corpus, e.g. {leaks[0][0]}: "
                        f"{leaks[0][1][:80]!r}\nhint: a bug in prepare.py's split rules")

    # ---- manifest and staging
    files = {}
    for rel in sorted(out.files):
        data = out.files[rel]
        files[rel] = {"lines": data.count(b"\n"), "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()}
    with open(os.path.abspath(__file__), "rb") as f:
        script_sha = hashlib.sha256(f.read()).hexdigest()
    manifest = {
        "generator": "recipes/data/prepare.py",
        "script_sha256": script_sha,
        "profile": args.profile,
        "seed": seed,
        "alpha": args.alpha,
        "unseen": unseen,
        "caps": prof,
        "min_test": args.min_test,
        "split": {"rule": "md5(help file path relative to text/) % 100: <70 train, <80 dev, else test",
                  "ui_nospan_keep": f"1/{UI_NOSPAN_KEEP}"},
        "languages": langs,
        "targets": targets,
        "excluded": excluded,
        "modules": list(MODULES),
        "packages": {p: {"file": fn, "sha256": sha} for p, (fn, _, sha) in sorted(info.items())},
        "man_pages": man_pages_used,
        "counts": counts,
        "files": files,
    }
    out.files["manifest.json"] = (json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True)
                                  + "\n").encode("utf-8")
    publish(out.files, args.out)
    t_end = time.time()
    log(f"wrote {len(out.files)} files to {args.out} ({t_end - t_man:.1f}s build, "
        f"{t_end - t0:.1f}s total)")
    return manifest


def publish(files, out_dir):
    """Write every file into a staging directory next to out_dir, then swap it in: a failure
    never leaves half-written outputs. An existing out_dir must be a previous output (it has a
    manifest.json) or empty."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise PrepError(f"--out {out_dir} exists and is not a directory")
        if os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, "manifest.json")):
            raise PrepError(f"--out {out_dir} is not empty and holds no manifest.json: "
                            "refusing to replace it")
    stage = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".tmp-", dir=parent)
    try:
        for rel, data in files.items():
            p = os.path.join(stage, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        old = None
        if os.path.exists(out_dir):
            old = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".old-", dir=parent)
            os.rmdir(old)
            os.rename(out_dir, old)
        os.rename(stage, out_dir)
        stage = None
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if stage:
            shutil.rmtree(stage, ignore_errors=True)


def default_cache():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xadapt-data")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="prepare.sh",
        description="Prepare the LibreOffice-help benchmark (LO-MOD, LO-UI, mono, multi) from "
                    "Debian packages. See recipes/data/README.md.")
    ap.add_argument("--out", required=True, help="output directory (replaced as a whole)")
    ap.add_argument("--langs", help="comma-separated languages (en is always added); default: "
                    "the profile's (quick: en," + ",".join(QUICK_LANGS) + "; full, bench: all)")
    ap.add_argument("--cache", default=default_cache(),
                    help="cache for .deb files and extracted text (default $XDG_CACHE_HOME/"
                         "xadapt-data or ~/.cache/xadapt-data)")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=0.3,
                    help="multi.txt language sampling exponent: q_l ~ n_l^alpha (XLM-R: 0.3)")
    ap.add_argument("--unseen", default=None,
                    help="comma-separated targets kept out of multi.txt (so of the tokenizer) and "
                         "pairs.tsv: the 'unseen languages' condition (default by profile; "
                         "bench: km,ko,dz,om,et; '' for none)")
    ap.add_argument("--min-test", type=int, default=None,
                    help="leave out targets with fewer translated LO-MOD test paragraphs "
                         "(default 300 for full and bench, 0 for quick)")
    ap.add_argument("--man-pages", type=int, default=None,
                    help="man pages per package (0 = all, -1 = no man pages; default by profile)")
    ap.add_argument("--local-debs", metavar="DIR",
                    help="take the packages from NAME_VERSION_ARCH.deb files in DIR instead of "
                         "apt (offline; used by tests/cli/test_prepare.sh)")
    ap.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    args = ap.parse_args(argv)
    if args.min_test is None:
        args.min_test = 0 if args.profile == "quick" else 300
    args.cache = os.path.abspath(args.cache)
    try:
        build(args)
    except PrepError as e:
        log(f"prepare: error: {e}")
        return 1
    except KeyboardInterrupt:
        log("prepare: interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
