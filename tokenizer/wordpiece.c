/* tokenizer/wordpiece: BERT's basic tokenizer and WordPiece (see wordpiece.h for the exact steps).
 *
 * Every code point carries the byte range of the input it came from through all steps, so each
 * piece gets a span. The vocabulary is an open-addressing hash table (FNV-1a) over the pieces'
 * bytes; a lookup hashes the continuation prefix and the candidate bytes without copying them,
 * and candidates are bounded by the longest piece, so one word costs O(chars x longest piece).
 *
 * Decisions:
 *  - NFC (slow mode) runs per whitespace word: a space is a starter that nothing composes with, so
 *    this equals NFC of the whole text. To keep spans, a word that NFC changes is normalised again
 *    per segment (a starter and its following non-starters); when the segments' concatenation is
 *    the word's NFC, each output character spans its segment, otherwise the whole word.
 *  - Accent stripping decomposes each character (utf8proc_decompose_char, canonical), applies the
 *    canonical ordering over the word, then drops category Mn: NFD as Python's unicodedata does it.
 *  - Lowercasing is utf8proc_tolower (the simple mapping) plus U+0130 -> "i" U+0307, the one
 *    character whose full lowercase mapping (Python's str.lower) has two code points.
 *  - vocab.txt lines ending in "\r" are refused: load_vocab would keep the "\r" in every piece and
 *    nothing would match (a CRLF file), which deserves an error rather than all-[UNK] output.
 *
 * Not here (see wordpiece.h): training, decoding, never_split lists, do_basic_tokenize = false.
 *
 * References: Devlin et al. 2019 (BERT) and google-research/bert tokenization.py; transformers'
 * tokenization_bert.py (BasicTokenizer, WordpieceTokenizer); Unicode UAX #15 (normalisation).
 */
#include "tokenizer/wordpiece.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define WP_MAX_PIECES  (1 << 24)
#define WP_MAX_SPECIALS 64

struct xa_wordpiece {
    char **pieces;     /* (n) owned; NULL: a hole */
    int32_t n;
    int32_t *table;    /* (cap) ids, -1 empty */
    size_t cap;        /* power of two */
    size_t max_cps;    /* longest piece in code points (continuation prefix not counted) */
    int32_t unk_id;
    xa_wordpiece_opts o;
    char *unk, *prefix; /* owned copies behind o.unk / o.prefix */
    size_t prefix_len;
    char *specials[WP_MAX_SPECIALS];
    int32_t special_ids[WP_MAX_SPECIALS];
    size_t special_len[WP_MAX_SPECIALS];
    size_t n_specials;
};

xa_wordpiece_opts xa_wordpiece_opts_default(void) {
    xa_wordpiece_opts o = {1, -1, 1, 0, 100, "[UNK]", "##", NULL, 0};
    return o;
}

static xa_status nomem(const char *where) {
    return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL, "out of memory");
}

/* ---- the vocabulary ---------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define FNV_SEED 14695981039346656037ull

/* Id of the piece prefix[0..np) + s[0..n), or -1. */
static int32_t lookup(const xa_wordpiece *wp, const char *prefix, size_t np, const char *s, size_t n) {
    uint64_t h = fnv(fnv(FNV_SEED, prefix, np), s, n);
    for (size_t i = (size_t)h & (wp->cap - 1);; i = (i + 1) & (wp->cap - 1)) {
        int32_t id = wp->table[i];
        if (id < 0) return -1;
        const char *p = wp->pieces[id];
        if (strncmp(p, prefix, np) == 0 && strlen(p + np) == n && memcmp(p + np, s, n) == 0) return id;
    }
}

/* Insert id (its piece set); a piece already present is remapped to id (the last line wins). */
static void insert(xa_wordpiece *wp, int32_t id) {
    const char *p = wp->pieces[id];
    uint64_t h = fnv(FNV_SEED, p, strlen(p));
    for (size_t i = (size_t)h & (wp->cap - 1);; i = (i + 1) & (wp->cap - 1)) {
        int32_t old = wp->table[i];
        if (old < 0 || strcmp(wp->pieces[old], p) == 0) {
            wp->table[i] = id;
            return;
        }
    }
}

void xa_wordpiece_free(xa_wordpiece *wp) {
    if (!wp) return;
    for (int32_t i = 0; i < wp->n; i++)
        free(wp->pieces[i]);
    free(wp->pieces);
    free(wp->table);
    free(wp->unk);
    free(wp->prefix);
    for (size_t i = 0; i < wp->n_specials; i++)
        free(wp->specials[i]);
    free(wp);
}

static size_t utf8_cps(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static char *dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Takes ownership of pieces[0..n) (freed on error too). */
static xa_status build(xa_wordpiece **out, char **pieces, int32_t n, const xa_wordpiece_opts *opts,
                       const char *name) {
    static const char *const bert[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    xa_wordpiece_opts o = opts ? *opts : xa_wordpiece_opts_default();
    xa_status st = XA_STATUS_OK;
    xa_wordpiece *wp = calloc(1, sizeof *wp);
    if (!wp) {
        for (int32_t i = 0; i < n; i++)
            free(pieces[i]);
        free(pieces);
        return nomem(name);
    }
    wp->pieces = pieces;
    wp->n = n;
    if (!o.unk) o.unk = "[UNK]";
    if (!o.prefix) o.prefix = "##";
    if (o.max_input_chars < 1 || o.strip_accents < -1 || o.strip_accents > 1 ||
        o.n_specials > WP_MAX_SPECIALS || (o.n_specials && !o.specials)) {
        st = xa_error_set(XA_STATUS_USAGE, name, "max_input_chars >= 1, strip_accents -1/0/1, at most 64 specials",
                          NULL, "bad WordPiece options");
        goto fail;
    }
    wp->unk = dup(o.unk);
    wp->prefix = dup(o.prefix);
    if (!wp->unk || !wp->prefix) goto oom;
    o.unk = wp->unk;
    o.prefix = wp->prefix;
    wp->prefix_len = strlen(wp->prefix);
    wp->cap = 16;
    while (wp->cap < 2 * (size_t)n)
        wp->cap *= 2;
    wp->table = malloc(wp->cap * sizeof *wp->table);
    if (!wp->table) goto oom;
    memset(wp->table, 0xff, wp->cap * sizeof *wp->table);
    for (int32_t i = 0; i < n; i++) {
        if (!pieces[i]) continue;
        insert(wp, i);
        const char *p = pieces[i];
        size_t k = utf8_cps(strncmp(p, wp->prefix, wp->prefix_len) == 0 ? p + wp->prefix_len : p);
        if (k > wp->max_cps) wp->max_cps = k;
    }
    wp->unk_id = lookup(wp, "", 0, wp->unk, strlen(wp->unk));
    if (wp->unk_id < 0) {
        st = xa_error_set(XA_STATUS_FORMAT, name, "the unknown piece in the vocabulary",
                          "is this a BERT vocab.txt? its unk_token must be one of the lines",
                          "no piece '%s' among %d", wp->unk, (int)n);
        goto fail;
    }
    const char *const *sp = o.specials ? o.specials : bert;
    size_t nsp = o.specials ? o.n_specials : 5;
    for (size_t i = 0; i < nsp; i++) {
        if (!sp[i] || !sp[i][0]) continue;
        int32_t id = lookup(wp, "", 0, sp[i], strlen(sp[i]));
        if (id < 0) continue;
        if (!(wp->specials[wp->n_specials] = dup(sp[i]))) goto oom;
        wp->special_ids[wp->n_specials] = id;
        wp->special_len[wp->n_specials] = strlen(sp[i]);
        wp->n_specials++;
    }
    o.specials = (const char *const *)wp->specials;
    o.n_specials = wp->n_specials;
    wp->o = o;
    *out = wp;
    return XA_STATUS_OK;
oom:
    st = nomem(name);
fail:
    xa_wordpiece_free(wp);
    return st;
}

xa_status xa_wordpiece_from_pieces(xa_wordpiece **out, const char *const *pieces, size_t n,
                                   const xa_wordpiece_opts *opts, const char *name) {
    if (!out) return xa_error_set(XA_STATUS_USAGE, "xa_wordpiece_from_pieces", "an out pointer", NULL, "NULL argument");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!pieces || n == 0 || n > WP_MAX_PIECES) {
        return xa_error_set(XA_STATUS_FORMAT, name, "1 to 2^24 pieces", NULL, "%zu pieces", n);
    }
    char **p = calloc(n, sizeof *p);
    if (!p) return nomem(name);
    for (size_t i = 0; i < n; i++) {
        if (pieces[i] && !(p[i] = dup(pieces[i]))) {
            for (size_t j = 0; j < i; j++)
                free(p[j]);
            free(p);
            return nomem(name);
        }
    }
    return build(out, p, (int32_t)n, opts, name);
}

xa_status xa_wordpiece_load(xa_wordpiece **out, const char *path, const xa_wordpiece_opts *opts) {
    if (!out || !path) return xa_error_set(XA_STATUS_USAGE, "xa_wordpiece_load", "path and out", NULL, "NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL,
                            "cannot open the WordPiece vocabulary: %s", strerror(errno));
    }
    char **pieces = NULL, *line = NULL, where[XA_ERROR_FIELD];
    size_t cap = 0, line_cap = 0, n = 0, bad = 0;
    ssize_t got;
    xa_status st = XA_STATUS_OK;
    while ((got = getline(&line, &line_cap, f)) != -1) {
        size_t len = (size_t)got;
        snprintf(where, sizeof where, "%s:%zu", path, n + 1);
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        if (strlen(line) != len) {
            st = xa_error_set(XA_STATUS_FORMAT, where, "one UTF-8 piece per line", "is this a vocab.txt?",
                              "NUL byte in the line");
            break;
        }
        if (len && line[len - 1] == '\r') {
            st = xa_error_set(XA_STATUS_FORMAT, where, "lines ending in \\n", "convert CRLF line ends: sed -i 's/\\r$//'",
                              "the line ends in \\r");
            break;
        }
        if (!xa_utf8_valid(line, len, &bad)) {
            st = xa_error_set(XA_STATUS_FORMAT, where, "one UTF-8 piece per line",
                              "is this a vocab.txt (a SentencePiece .model is binary)?",
                              "invalid UTF-8 (byte 0x%02x at offset %zu)", (unsigned char)line[bad], bad);
            break;
        }
        if (n == WP_MAX_PIECES) {
            st = xa_error_set(XA_STATUS_FORMAT, where, "at most 2^24 pieces", NULL, "too many lines");
            break;
        }
        if (n == cap) {
            size_t c = cap ? 2 * cap : 1024;
            char **p = realloc(pieces, c * sizeof *p);
            if (!p) {
                st = nomem(path);
                break;
            }
            pieces = p;
            cap = c;
        }
        if (!(pieces[n] = dup(line))) {
            st = nomem(path);
            break;
        }
        n++;
    }
    if (!st && ferror(f)) st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "read error: %s", strerror(errno));
    if (!st && n == 0) st = xa_error_set(XA_STATUS_FORMAT, path, "one piece per line", NULL, "the file is empty");
    fclose(f);
    free(line);
    if (st) {
        for (size_t i = 0; i < n; i++)
            free(pieces[i]);
        free(pieces);
        return st;
    }
    return build(out, pieces, (int32_t)n, opts, path);
}

int32_t xa_wordpiece_vocab_size(const xa_wordpiece *wp) { return wp->n; }
int32_t xa_wordpiece_unk_id(const xa_wordpiece *wp) { return wp->unk_id; }
xa_wordpiece_opts xa_wordpiece_get_opts(const xa_wordpiece *wp) { return wp->o; }

int32_t xa_wordpiece_piece_to_id(const xa_wordpiece *wp, const char *piece) {
    return piece ? lookup(wp, "", 0, piece, strlen(piece)) : -1;
}

const char *xa_wordpiece_id_to_piece(const xa_wordpiece *wp, int32_t id) {
    return id >= 0 && id < wp->n ? wp->pieces[id] : NULL;
}

/* ---- code points with provenance --------------------------------------------------------------- */

typedef struct cpv {
    int32_t *cp;
    size_t *b0, *b1; /* the input bytes [b0, b1) the code point comes from */
    size_t n, cap;
} cpv;

static void cpv_free(cpv *v) {
    free(v->cp);
    free(v->b0);
    free(v->b1);
    memset(v, 0, sizeof *v);
}

static int cpv_reserve(cpv *v, size_t need) {
    if (need <= v->cap) return 1;
    size_t c = v->cap ? v->cap : 64;
    while (c < need)
        c *= 2;
    int32_t *cp = realloc(v->cp, c * sizeof *cp);
    if (cp) v->cp = cp;
    size_t *b0 = realloc(v->b0, c * sizeof *b0);
    if (b0) v->b0 = b0;
    size_t *b1 = realloc(v->b1, c * sizeof *b1);
    if (b1) v->b1 = b1;
    if (!cp || !b0 || !b1) return 0;
    v->cap = c;
    return 1;
}

static int cpv_push(cpv *v, int32_t cp, size_t b0, size_t b1) {
    if (v->n == v->cap && !cpv_reserve(v, v->n + 1)) return 0;
    v->cp[v->n] = cp;
    v->b0[v->n] = b0;
    v->b1[v->n] = b1;
    v->n++;
    return 1;
}

/* ---- character classes (BERT's) ---------------------------------------------------------------- */

static int is_ws(int32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
}

static int is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN;
}

static int is_punct(int32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static int is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Python's str.split() separators that survive clean_text (which maps the others to a space). */
static int is_split(int32_t c) { return c == ' ' || c == 0x2028 || c == 0x2029; }

/* ---- per-word transformations (each reads src and appends to dst) ------------------------------ */

static int lower_into(cpv *dst, const cpv *src, size_t a, size_t b) {
    for (size_t i = a; i < b; i++) {
        int32_t c = src->cp[i];
        if (c == 0x130) { /* the full mapping: "i" + COMBINING DOT ABOVE */
            if (!cpv_push(dst, 'i', src->b0[i], src->b1[i]) || !cpv_push(dst, 0x307, src->b0[i], src->b1[i])) return 0;
        } else if (!cpv_push(dst, c < 0x80 ? (c >= 'A' && c <= 'Z' ? c + 32 : c) : utf8proc_tolower(c), src->b0[i],
                             src->b1[i])) {
            return 0;
        }
    }
    return 1;
}

/* NFD with the canonical ordering, then drop Mn. */
static int strip_into(cpv *dst, const cpv *src, size_t a, size_t b) {
    size_t start = dst->n;
    for (size_t i = a; i < b; i++) {
        int32_t c = src->cp[i], buf[32];
        utf8proc_ssize_t k = c < 0xC0 ? (buf[0] = c, 1) : utf8proc_decompose_char(c, buf, 32, UTF8PROC_DECOMPOSE, NULL);
        if (k < 1 || k > 32) { /* cannot happen for a valid code point */
            buf[0] = c;
            k = 1;
        }
        for (utf8proc_ssize_t j = 0; j < k; j++)
            if (!cpv_push(dst, buf[j], src->b0[i], src->b1[i])) return 0;
    }
    /* canonical ordering: a stable sort of each run of non-zero combining classes */
    for (size_t i = start + 1; i < dst->n; i++) {
        int ci = utf8proc_get_property(dst->cp[i])->combining_class;
        if (!ci) continue;
        for (size_t j = i; j > start; j--) {
            int cj = utf8proc_get_property(dst->cp[j - 1])->combining_class;
            if (cj <= ci) break;
            int32_t t = dst->cp[j];
            dst->cp[j] = dst->cp[j - 1];
            dst->cp[j - 1] = t;
            size_t u = dst->b0[j];
            dst->b0[j] = dst->b0[j - 1];
            dst->b0[j - 1] = u;
            u = dst->b1[j];
            dst->b1[j] = dst->b1[j - 1];
            dst->b1[j - 1] = u;
        }
    }
    size_t w = start;
    for (size_t i = start; i < dst->n; i++) {
        if (utf8proc_category(dst->cp[i]) == UTF8PROC_CATEGORY_MN) continue;
        dst->cp[w] = dst->cp[i];
        dst->b0[w] = dst->b0[i];
        dst->b1[w] = dst->b1[i];
        w++;
    }
    dst->n = w;
    return 1;
}

/* UTF-8 of cps[a..b) into a malloc'ed buffer; *n its length. */
static char *utf8_of(const int32_t *cp, size_t a, size_t b, size_t *n) {
    char *s = malloc(4 * (b - a) + 1);
    if (!s) return NULL;
    size_t k = 0;
    for (size_t i = a; i < b; i++)
        k += (size_t)utf8proc_encode_char(cp[i], (utf8proc_uint8_t *)s + k);
    s[k] = '\0';
    *n = k;
    return s;
}

/* NFC of s[0..n) appended to dst with provenance [b0, b1); returns 0 on failure. */
static int nfc_append(cpv *dst, const char *s, size_t n, size_t b0, size_t b1) {
    utf8proc_uint8_t *o = NULL;
    utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &o,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (k < 0) return 0;
    int ok = 1;
    for (utf8proc_ssize_t i = 0; i < k && ok;) {
        int32_t c;
        utf8proc_ssize_t m = utf8proc_iterate(o + i, k - i, &c);
        if (m < 1) break;
        ok = cpv_push(dst, c, b0, b1);
        i += m;
    }
    free(o);
    return ok;
}

static int nfc_into(cpv *dst, const cpv *src, size_t a, size_t b) {
    int simple = 1; /* below U+0300 nothing composes or decomposes under NFC */
    for (size_t i = a; i < b && simple; i++)
        simple = src->cp[i] < 0x300;
    if (simple) {
        for (size_t i = a; i < b; i++)
            if (!cpv_push(dst, src->cp[i], src->b0[i], src->b1[i])) return 0;
        return 1;
    }
    size_t n = 0, wb0 = src->b0[a], wb1 = src->b1[a];
    for (size_t i = a; i < b; i++) {
        if (src->b0[i] < wb0) wb0 = src->b0[i];
        if (src->b1[i] > wb1) wb1 = src->b1[i];
    }
    char *s = utf8_of(src->cp, a, b, &n);
    if (!s) return 0;
    size_t start = dst->n;
    int ok = nfc_append(dst, s, n, wb0, wb1);
    free(s);
    if (!ok) return 0;
    /* spans: the same normalisation per segment (a starter and the non-starters after it) */
    cpv seg = {0};
    for (size_t i = a; i < b && ok;) {
        size_t j = i + 1;
        while (j < b && utf8proc_get_property(src->cp[j])->combining_class != 0)
            j++;
        size_t sb0 = src->b0[i], sb1 = src->b1[i];
        for (size_t t = i; t < j; t++) {
            if (src->b0[t] < sb0) sb0 = src->b0[t];
            if (src->b1[t] > sb1) sb1 = src->b1[t];
        }
        char *ss = utf8_of(src->cp, i, j, &n);
        ok = ss && nfc_append(&seg, ss, n, sb0, sb1);
        free(ss);
        i = j;
    }
    if (ok && seg.n == dst->n - start && memcmp(seg.cp, dst->cp + start, seg.n * sizeof *seg.cp) == 0) {
        memcpy(dst->b0 + start, seg.b0, seg.n * sizeof *seg.b0);
        memcpy(dst->b1 + start, seg.b1, seg.n * sizeof *seg.b1);
    }
    cpv_free(&seg);
    return 1;
}

/* ---- the pipeline ------------------------------------------------------------------------------ */

typedef struct sink {
    const xa_wordpiece *wp;
    int32_t *ids;
    xa_spm_span *spans;
    size_t n, cap;
    char *text; /* basic mode: the words joined by spaces */
    size_t tn, tcap;
    int basic;
} sink;

static int sink_id(sink *s, int32_t id, size_t b0, size_t b1) {
    if (s->n == s->cap) {
        size_t c = s->cap ? 2 * s->cap : 64;
        int32_t *ids = realloc(s->ids, c * sizeof *ids);
        if (ids) s->ids = ids;
        xa_spm_span *sp = realloc(s->spans, c * sizeof *sp);
        if (sp) s->spans = sp;
        if (!ids || !sp) return 0;
        s->cap = c;
    }
    s->ids[s->n] = id;
    s->spans[s->n].begin = b0;
    s->spans[s->n].end = b1;
    s->n++;
    return 1;
}

static int sink_text(sink *s, const char *t, size_t n) {
    if (s->tn + n + 2 > s->tcap) {
        size_t c = s->tcap ? s->tcap : 256;
        while (c < s->tn + n + 2)
            c *= 2;
        char *p = realloc(s->text, c);
        if (!p) return 0;
        s->text = p;
        s->tcap = c;
    }
    if (s->tn) s->text[s->tn++] = ' ';
    memcpy(s->text + s->tn, t, n);
    s->tn += n;
    s->text[s->tn] = '\0';
    return 1;
}

static size_t span_lo(const cpv *w, size_t a, size_t b) {
    size_t lo = w->b0[a];
    for (size_t i = a; i < b; i++)
        if (w->b0[i] < lo) lo = w->b0[i];
    return lo;
}
static size_t span_hi(const cpv *w, size_t a, size_t b) {
    size_t hi = w->b1[a];
    for (size_t i = a; i < b; i++)
        if (w->b1[i] > hi) hi = w->b1[i];
    return hi;
}

/* WordPiece over the word w->cp[a..b) (no punctuation or space inside). */
static int emit_word(sink *s, const cpv *w, size_t a, size_t b) {
    const xa_wordpiece *wp = s->wp;
    size_t n = 0;
    char *u = utf8_of(w->cp, a, b, &n);
    if (!u) return 0;
    int ok = 1;
    if (s->basic) {
        ok = sink_text(s, u, n);
        free(u);
        return ok;
    }
    size_t k = b - a;
    if (k > (size_t)wp->o.max_input_chars) {
        free(u);
        return sink_id(s, wp->unk_id, span_lo(w, a, b), span_hi(w, a, b));
    }
    size_t *off = malloc((k + 1) * sizeof *off); /* byte offset of each code point in u */
    if (!off) {
        free(u);
        return 0;
    }
    for (size_t i = 0, o = 0; i <= k; i++) {
        off[i] = o;
        if (i < k) o += (size_t)utf8proc_encode_char(w->cp[a + i], (utf8proc_uint8_t[4]){0});
    }
    size_t mark = s->n, start = 0;
    while (start < k && ok) {
        size_t end = k - start > wp->max_cps ? start + wp->max_cps : k;
        int32_t id = -1;
        for (; end > start; end--) {
            id = start ? lookup(wp, wp->prefix, wp->prefix_len, u + off[start], off[end] - off[start])
                       : lookup(wp, "", 0, u, off[end]);
            if (id >= 0) break;
        }
        if (id < 0) { /* the whole word is unknown */
            s->n = mark;
            ok = sink_id(s, wp->unk_id, span_lo(w, a, b), span_hi(w, a, b));
            break;
        }
        ok = sink_id(s, id, span_lo(w, a + start, a + end), span_hi(w, a + start, a + end));
        start = end;
    }
    free(off);
    free(u);
    return ok;
}

/* Steps 5-7 on one whitespace word src[a..b). */
static int do_word(sink *s, const cpv *src, size_t a, size_t b, cpv *t1, cpv *t2) {
    const xa_wordpiece_opts *o = &s->wp->o;
    int strip = o->strip_accents == 1 || (o->lowercase && o->strip_accents != 0);
    t1->n = t2->n = 0;
    const cpv *w = src;
    size_t wa = a, wb = b;
    int ok = 1;
    if (!o->fast) {
        ok = nfc_into(t1, w, wa, wb);
        w = t1, wa = 0, wb = t1->n;
        if (ok && o->lowercase) {
            ok = lower_into(t2, w, wa, wb);
            w = t2, wa = 0, wb = t2->n;
        }
        if (ok && strip) {
            cpv *d = w == t1 ? t2 : t1;
            d->n = 0;
            ok = strip_into(d, w, wa, wb);
            w = d, wa = 0, wb = d->n;
        }
    } else {
        if (strip) {
            ok = strip_into(t1, w, wa, wb);
            w = t1, wa = 0, wb = t1->n;
        }
        if (ok && o->lowercase) {
            cpv *d = w == t1 ? t2 : t1;
            d->n = 0;
            ok = lower_into(d, w, wa, wb);
            w = d, wa = 0, wb = d->n;
        }
    }
    size_t i = wa;
    while (ok && i < wb) {
        if (is_punct(w->cp[i])) {
            ok = emit_word(s, w, i, i + 1);
            i++;
            continue;
        }
        size_t j = i;
        while (j < wb && !is_punct(w->cp[j]))
            j++;
        ok = emit_word(s, w, i, j);
        i = j;
    }
    return ok;
}

/* Steps 2-7 on the raw code points raw[a..b) (no specials inside). */
static int do_chunk(sink *s, const cpv *raw, size_t a, size_t b, cpv *c0, cpv *c1, cpv *t1, cpv *t2) {
    const xa_wordpiece_opts *o = &s->wp->o;
    c0->n = c1->n = 0;
    const cpv *src = raw;
    size_t sa = a, sb = b;
    if (o->lowercase && !o->fast) {
        if (!lower_into(c0, raw, a, b)) return 0;
        src = c0, sa = 0, sb = c0->n;
    }
    for (size_t i = sa; i < sb; i++) { /* clean text and CJK spacing */
        int32_t c = src->cp[i];
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        int ok;
        if (is_ws(c)) {
            ok = cpv_push(c1, ' ', src->b0[i], src->b1[i]);
        } else if (o->chinese_chars && is_cjk(c)) {
            ok = cpv_push(c1, ' ', src->b0[i], src->b0[i]) && cpv_push(c1, c, src->b0[i], src->b1[i]) &&
                 cpv_push(c1, ' ', src->b1[i], src->b1[i]);
        } else {
            ok = cpv_push(c1, c, src->b0[i], src->b1[i]);
        }
        if (!ok) return 0;
    }
    for (size_t i = 0; i < c1->n;) {
        if (is_split(c1->cp[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < c1->n && !is_split(c1->cp[j]))
            j++;
        if (!do_word(s, c1, i, j, t1, t2)) return 0;
        i = j;
    }
    return 1;
}

static xa_status run(const xa_wordpiece *wp, const char *text, size_t len, sink *s) {
    if (!wp || (!text && len)) return xa_error_set(XA_STATUS_USAGE, "xa_wordpiece_encode", "a tokenizer and text", NULL, "NULL argument");
    if (len >= ((size_t)1 << 31)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_wordpiece_encode", "text shorter than 2^31 bytes", NULL,
                            "%zu bytes", len);
    }
    s->wp = wp;
    cpv raw = {0}, c0 = {0}, c1 = {0}, t1 = {0}, t2 = {0};
    int ok = cpv_reserve(&raw, len + 1);
    /* decode; an invalid byte is dropped (as U+FFFD would be by clean_text) */
    for (size_t i = 0; ok && i < len;) {
        int32_t c;
        utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (m < 1) {
            i++;
            continue;
        }
        ok = cpv_push(&raw, c, i, i + (size_t)m);
        i += (size_t)m;
    }
    /* step 1: specials, leftmost-longest on the raw bytes, at code point boundaries */
    size_t chunk = 0;
    for (size_t i = 0; ok && i < raw.n; i++) {
        size_t best = 0, at = raw.b0[i];
        int32_t id = -1;
        for (size_t k = 0; k < wp->n_specials; k++) {
            size_t L = wp->special_len[k];
            if (L > best && L <= len - at && memcmp(text + at, wp->specials[k], L) == 0) {
                best = L;
                id = wp->special_ids[k];
            }
        }
        if (!best) continue;
        if (chunk < i) ok = do_chunk(s, &raw, chunk, i, &c0, &c1, &t1, &t2);
        if (ok) ok = s->basic ? sink_text(s, text + at, best) : sink_id(s, id, at, at + best);
        size_t j = i;
        while (j < raw.n && raw.b0[j] < at + best)
            j++;
        chunk = j;
        i = j - 1;
    }
    if (ok && chunk < raw.n) ok = do_chunk(s, &raw, chunk, raw.n, &c0, &c1, &t1, &t2);
    cpv_free(&raw);
    cpv_free(&c0);
    cpv_free(&c1);
    cpv_free(&t1);
    cpv_free(&t2);
    if (!ok) return nomem("xa_wordpiece_encode");
    return XA_STATUS_OK;
}

xa_status xa_wordpiece_encode(const xa_wordpiece *wp, const char *text, size_t len, int32_t **ids,
                              xa_spm_span **spans, size_t *n) {
    if (!ids || !n) return xa_error_set(XA_STATUS_USAGE, "xa_wordpiece_encode", "output pointers", NULL, "NULL argument");
    *ids = NULL;
    *n = 0;
    if (spans) *spans = NULL;
    sink s = {0};
    xa_status st = run(wp, text, len, &s);
    if (!st && !s.ids && !(s.ids = malloc(sizeof *s.ids))) st = nomem("xa_wordpiece_encode");
    if (!st && spans && !s.spans && !(s.spans = malloc(sizeof *s.spans))) st = nomem("xa_wordpiece_encode");
    if (st) {
        free(s.ids);
        free(s.spans);
        return st;
    }
    *ids = s.ids;
    *n = s.n;
    if (spans) *spans = s.spans;
    else free(s.spans);
    return XA_STATUS_OK;
}

xa_status xa_wordpiece_basic(const xa_wordpiece *wp, const char *text, size_t len, char **out) {
    if (!out) return xa_error_set(XA_STATUS_USAGE, "xa_wordpiece_basic", "an output pointer", NULL, "NULL argument");
    *out = NULL;
    sink s = {0};
    s.basic = 1;
    xa_status st = run(wp, text, len, &s);
    if (!st && !s.text && !(s.text = calloc(1, 1))) st = nomem("xa_wordpiece_basic");
    if (st) {
        free(s.text);
        return st;
    }
    *out = s.text;
    return XA_STATUS_OK;
}
