/* data/task: labelled task data (see data.h) — sentence classification from TSV or JSON lines,
 * BIO token tagging from CoNLL or JSON lines — encoded with the base's tokenizer (tokenizer/tok.h:
 * XLM-R <s> X </s>, or BERT [CLS] X [SEP] with WordPiece, a tagging word encoded on its own), and a
 * length-bucketed, deterministic, resumable batcher over it.
 *
 * Alignment follows Hugging Face run_ner.py with label_all_tokens=False: every word is encoded on
 * its own (XLMRobertaTokenizer with is_split_into_words=True encodes " word", i.e. SentencePiece's
 * dummy "▁" prefix), the word's tag goes on its first piece and -100 (XA_IGNORE_INDEX) on its other
 * pieces and on <s> / </s>. Batching follows the usual "bucket by length within a window" scheme
 * (fairseq / HF group_by_length): a per-epoch permutation is cut into chunks of 50 batches, each
 * chunk is sorted by length and cut into batches, and the batch order is shuffled.
 *
 * Decisions:
 *  - JSON lines are parsed with jansson, included directly: data/ may depend on tokenizer/ and
 *    core/ only, so io/hfjson is out of reach, jansson is already a public dependency of the
 *    library, and a hand-written JSON parser is not wanted.
 *  - XA_IGNORE_INDEX lives in tensor/tensor.h, which data/ may not include; TASK_IGNORE below must
 *    equal it (-100, also HF's ignore_index). test_data checks that the two agree.
 *  - Format by extension (XA_TASK_FORMAT_AUTO): .jsonl/.json -> JSON lines; .conll/.bio -> CoNLL;
 *    .tsv -> TSV for classification and CoNLL for tagging (WORD<TAB>TAG lines are TSV too); .txt ->
 *    CoNLL for tagging, TSV for classification. An explicit format must suit the kind (CoNLL is
 *    tagging-only, TSV classification-only).
 *  - CoNLL lines with more than two columns (CoNLL-2003 "EU NNP B-NP B-ORG") take the first column
 *    as the word and the last as the tag.
 *  - JSON classification labels may be strings or integers (an integer becomes its decimal name,
 *    as HF datasets store class ids); tagging tags must be strings.
 *  - Blank lines in TSV and JSON lines files are skipped; a file without a single example is a
 *    CONFIG error.
 *
 * Pairs and multiple choice (issue 16): HF's pair encoding and "longest_first" truncation
 * (tokenization_utils_base.truncate_sequences: while too long, drop the last token of the longer
 * side, of the second side on a tie). A multiple-choice example stores its N choices as N rows of
 * the example's longest choice, padded, so one example is always N encoder rows; the batcher lays
 * B examples out as B*N rows (AdapterHub's MultipleChoiceHead views the scores as (B, N)). The
 * COPA question prompts are jiant's (tasks/lib/copa.py), the usual way of giving the encoder the
 * cause / effect direction.
 *
 * Not here: label_all_tokens=True, sliding windows over long inputs (they are truncated and
 * counted), a varying number of choices per example.
 */
#include "data/data.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TASK_IGNORE   (-100) /* == XA_IGNORE_INDEX (tensor/tensor.h), checked by test_data */
#define CHUNK_BATCHES 50     /* batches per length-sorted chunk */

/* ---- labels ---------------------------------------------------------------------------------- */

int xa_labels_find(const xa_labels *l, const char *name) {
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->names[i], name) == 0) return i;
    }
    return -1;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* ---- the loader's state ---------------------------------------------------------------------- */

typedef struct loader {
    xa_task_data *d;
    const xa_tok *tok;
    xa_tok_special sp;
    int max_len;
    int fixed; /* 1: labels come from *user (a label outside is an error) */
    const xa_labels *user;
    xa_labels seen; /* collecting: names as first seen; ids stored temporarily index this */
    size_t ex_cap;
    /* the sentence being built (tagging) or encoded (classification): (n) each */
    int32_t *ids, *tags, *word;
    size_t n, cap;
    int n_words;
    int64_t first_line;
    /* pairs and multiple choice */
    int bert_pairs;
    int32_t *types;                 /* (cap) scratch beside ids */
    const char *k_text, *k_pair, *k_label, *k_tokens, *k_tags, *k_premise, *k_question;
    const char *k_choices[XA_TASK_MAX_CHOICES];
    int n_choices;
    int has_names;                  /* integer labels / tags are named by names */
    xa_labels names;
    xa_labels fixed_set;            /* multiple choice "0".."N-1", or the label list */
} loader;

static xa_status nomem(void) {
    return xa_error_set(XA_STATUS_NOMEM, "xa_task_data_load", NULL, NULL, "out of memory");
}

static xa_status line_error(const loader *L, int64_t line, const char *expected, const char *hint,
                            const char *what) {
    /* "path:LINE"; a path too long for the field keeps its tail, so the line survives. */
    char where[XA_ERROR_FIELD], num[32];
    int k = snprintf(num, sizeof num, ":%lld", (long long)line);
    size_t n_num = k > 0 ? (size_t)k : 0, n_path = strlen(L->d->path),
           room = sizeof where - 1 - n_num;
    const char *p = L->d->path;
    size_t at = 0;
    if (n_path > room) {
        memcpy(where, "...", 3);
        at = 3;
        p += n_path - (room - 3);
        n_path = room - 3;
    }
    memcpy(where + at, p, n_path);
    memcpy(where + at + n_path, num, n_num + 1);
    return xa_error_set(XA_STATUS_CONFIG, where, expected, hint, "%s", what);
}

/* "known labels: a, b, c" (cut to fit an error field). */
static void known_hint(const xa_labels *l, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "known labels:");
    for (int i = 0; i < l->n && k < n; i++) {
        k += (size_t)snprintf(buf + k, n - k, "%s %s", i ? "," : "", l->names[i]);
    }
    if (k >= n && n > 4) memcpy(buf + n - 4, "...", 4);
}

/* Map a label name to an id: the fixed set's index, or (collecting) its index in L->seen. */
static xa_status label_id(loader *L, int64_t line, const char *name, int32_t *id) {
    char what[XA_ERROR_FIELD];
    if (strlen(name) >= sizeof L->seen.names[0]) {
        snprintf(what, sizeof what, "label '%.40s...' is longer than %zu bytes", name,
                 sizeof L->seen.names[0] - 1);
        return line_error(L, line, "a label name of at most 63 bytes", NULL, what);
    }
    size_t bad = 0;
    if (!xa_utf8_valid(name, strlen(name), &bad)) { /* saved into head_config.json later */
        snprintf(what, sizeof what, "label is not valid UTF-8 (byte 0x%02x at offset %zu)",
                 (unsigned char)name[bad], bad);
        return line_error(L, line, "a UTF-8 label name", "is the file in another encoding?", what);
    }
    if (L->fixed) {
        int k = xa_labels_find(L->user, name);
        if (k < 0) {
            char hint[XA_ERROR_FIELD];
            known_hint(L->user, hint, sizeof hint);
            snprintf(what, sizeof what, "unknown label '%s'", name);
            return line_error(L, line, "a label of the fixed label set", hint, what);
        }
        *id = k;
        return XA_STATUS_OK;
    }
    int k = xa_labels_find(&L->seen, name);
    if (k < 0) {
        if (L->seen.n >= XA_MAX_LABELS) {
            snprintf(what, sizeof what, "label '%s' is one more than %d distinct labels", name,
                     XA_MAX_LABELS);
            return line_error(L, line, "at most 256 labels", "is this the label column?", what);
        }
        k = L->seen.n++;
        snprintf(L->seen.names[k], sizeof L->seen.names[k], "%s", name);
    }
    *id = k;
    return XA_STATUS_OK;
}

/* BIO check: "O", "B-X" or "I-X" with X non-empty. */
static xa_status check_bio(const loader *L, int64_t line, const char *tag) {
    if (strcmp(tag, "O") == 0) return XA_STATUS_OK;
    if ((tag[0] == 'B' || tag[0] == 'I') && tag[1] == '-' && tag[2] != '\0') return XA_STATUS_OK;
    char what[XA_ERROR_FIELD];
    snprintf(what, sizeof what, "tag '%.200s' is not a BIO tag", tag);
    return line_error(L, line, "O, B-TYPE or I-TYPE", "convert IOBES/IO tags to BIO", what);
}

/* ---- building examples ----------------------------------------------------------------------- */

static xa_status sent_reserve(loader *L, size_t need) {
    if (need <= L->cap) return XA_STATUS_OK;
    size_t n = L->cap ? L->cap : 256;
    while (n < need)
        n *= 2;
    int32_t *a = realloc(L->ids, n * sizeof *a);
    if (a) L->ids = a;
    int32_t *b = a ? realloc(L->tags, n * sizeof *b) : NULL;
    if (b) L->tags = b;
    int32_t *c = b ? realloc(L->word, n * sizeof *c) : NULL;
    if (c) L->word = c;
    int32_t *t = c ? realloc(L->types, n * sizeof *t) : NULL;
    if (t) L->types = t;
    if (!t) return nomem();
    L->cap = n;
    return XA_STATUS_OK;
}

/* Start a sentence: <s>. */
static xa_status sent_begin(loader *L, int64_t line) {
    xa_status st = sent_reserve(L, 1);
    if (st) return st;
    L->ids[0] = L->sp.cls;
    L->tags[0] = TASK_IGNORE;
    L->word[0] = -1;
    L->n = 1;
    L->n_words = 0;
    L->first_line = line;
    return XA_STATUS_OK;
}

/* Append one word: its pieces, the tag on the first one. */
static xa_status sent_word(loader *L, int64_t line, const char *text, size_t len, int32_t tag) {
    int32_t *ids = NULL;
    size_t n = 0;
    xa_status st = L->tok ? xa_tok_encode(L->tok, text, len, 0, &ids, &n) : XA_STATUS_OK; /* check mode: <unk> */
    if (st) {
        xa_error_prefix("%s:%lld", L->d->path, (long long)line);
        return st;
    }
    const int32_t unk = L->sp.unk;
    const int32_t *pieces = n ? ids : &unk; /* a word with no pieces becomes <unk> */
    if (n == 0) n = 1;
    st = sent_reserve(L, L->n + n);
    if (!st) {
        for (size_t i = 0; i < n; i++) {
            L->ids[L->n + i] = pieces[i];
            L->tags[L->n + i] = i == 0 ? tag : TASK_IGNORE;
            L->word[L->n + i] = i == 0 ? L->n_words : -1;
        }
        L->n += n;
        L->n_words++;
    }
    free(ids);
    return st;
}

static xa_status pool_reserve(xa_task_data *d, size_t need) {
    if (need <= d->pool_cap) return XA_STATUS_OK;
    size_t n = d->pool_cap ? d->pool_cap : 1 << 16;
    while (n < need)
        n *= 2;
    int32_t *p = realloc(d->pool, n * sizeof *p);
    if (!p) return nomem();
    d->pool = p;
    d->pool_cap = n;
    return XA_STATUS_OK;
}

/* Finish the sentence in L (ids[0] = <s>): append </s>, truncate to max_len keeping </s>, and store
 * it as a new example. Pointers into the pool are set once loading is done (the pool moves). */
static xa_status sent_end(loader *L, int32_t label) {
    xa_task_data *d = L->d;
    int tagging = d->kind == XA_TASK_KIND_TAGGING;
    xa_status st = sent_reserve(L, L->n + 1);
    if (st) return st;
    L->ids[L->n] = L->sp.sep;
    L->tags[L->n] = TASK_IGNORE;
    L->word[L->n] = -1;
    L->n++;
    if (L->n > (size_t)L->max_len) { /* keep max_len - 1 tokens, then </s> */
        size_t k = (size_t)L->max_len - 1;
        L->ids[k] = L->sp.sep;
        L->tags[k] = TASK_IGNORE;
        L->word[k] = -1;
        L->n = (size_t)L->max_len;
        d->n_truncated++;
    }
    if ((size_t)d->n == L->ex_cap) {
        size_t cap = L->ex_cap ? 2 * L->ex_cap : 1024;
        xa_task_example *ex = realloc(d->ex, cap * sizeof *ex);
        if (!ex) return nomem();
        d->ex = ex;
        L->ex_cap = cap;
    }
    size_t per = tagging ? 3 : 1;
    st = pool_reserve(d, d->pool_n + per * L->n);
    if (st) return st;
    int32_t *p = d->pool + d->pool_n;
    memcpy(p, L->ids, L->n * sizeof *p);
    if (tagging) {
        memcpy(p + L->n, L->tags, L->n * sizeof *p);
        memcpy(p + 2 * L->n, L->word, L->n * sizeof *p);
    }
    d->pool_n += per * L->n;
    xa_task_example *e = &d->ex[d->n++];
    memset(e, 0, sizeof *e);
    e->len = (int)L->n;
    e->n_choices = 1;
    e->n_words = tagging ? L->n_words : 0;
    e->label = tagging ? -1 : label;
    e->line = L->first_line;
    return XA_STATUS_OK;
}

/* Classification: <s> text </s> with the label. */
static xa_status add_text(loader *L, int64_t line, const char *text, size_t len,
                          const char *label) {
    int32_t id = 0;
    xa_status st = label_id(L, line, label, &id);
    if (st) return st;
    int32_t *ids = NULL;
    size_t n = 0;
    if (L->tok) {
        st = xa_tok_encode(L->tok, text, len, 1, &ids, &n);
    } else if ((ids = malloc(3 * sizeof *ids))) { /* check mode: <s> <unk> </s> */
        ids[0] = L->sp.cls;
        ids[1] = L->sp.unk;
        ids[2] = L->sp.sep;
        n = 3;
    } else {
        st = nomem();
    }
    if (st) {
        xa_error_prefix("%s:%lld", L->d->path, (long long)line);
        return st;
    }
    st = sent_reserve(L, n + 1);
    if (!st) {
        /* sent_end appends </s> itself: copy <s> X and drop the encoder's </s>. */
        memcpy(L->ids, ids, (n - 1) * sizeof *ids);
        for (size_t i = 0; i + 1 < n; i++) {
            L->tags[i] = TASK_IGNORE;
            L->word[i] = -1;
        }
        L->n = n - 1;
        L->first_line = line;
    }
    free(ids);
    return st ? st : sent_end(L, id);
}

/* Encode one side of a pair without specials into *ids (malloc'ed; check mode: one <unk>). */
static xa_status encode_side(const loader *L, int64_t line, const char *text, size_t len, int32_t **ids,
                             size_t *n) {
    *ids = NULL;
    *n = 0;
    xa_status st = XA_STATUS_OK;
    if (L->tok) st = xa_tok_encode(L->tok, text, len, 0, ids, n);
    if (st) {
        xa_error_prefix("%s:%lld", L->d->path, (long long)line);
        return st;
    }
    if (*n == 0) { /* no pieces (check mode, or only spaces): one <unk> */
        free(*ids);
        if (!(*ids = malloc(sizeof **ids))) return nomem();
        (*ids)[0] = L->sp.unk;
        *n = 1;
    }
    return XA_STATUS_OK;
}

/* Build the pair (a, b) into L->ids / L->types (L->n tokens): XLM-R <s> A </s></s> B </s>, BERT
 * <s> A </s> B </s> with types 1 after the first </s>; "longest_first" truncation to max_len.
 * *cut: 1 when tokens were dropped. */
static xa_status build_pair(loader *L, int64_t line, const char *a, size_t alen, const char *b, size_t blen,
                            int *cut) {
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    xa_status st = encode_side(L, line, a, alen, &ia, &na);
    if (!st) st = encode_side(L, line, b, blen, &ib, &nb);
    const size_t specials = L->bert_pairs ? 3 : 4, budget = (size_t)L->max_len - specials;
    *cut = 0;
    while (!st && na + nb > budget) { /* HF longest_first: the longer side, the second on a tie */
        if (na > nb) na--;
        else nb--;
        *cut = 1;
    }
    if (!st) st = sent_reserve(L, na + nb + specials);
    if (!st) {
        size_t k = 0;
        L->ids[k++] = L->sp.cls;
        memcpy(L->ids + k, ia, na * sizeof *ia);
        k += na;
        L->ids[k++] = L->sp.sep;
        const size_t second = k;
        if (!L->bert_pairs) L->ids[k++] = L->sp.sep;
        memcpy(L->ids + k, ib, nb * sizeof *ib);
        k += nb;
        L->ids[k++] = L->sp.sep;
        for (size_t i = 0; i < k; i++) L->types[i] = L->bert_pairs && i >= second ? 1 : 0;
        L->n = k;
    }
    free(ia);
    free(ib);
    return st;
}

static xa_status add_example_slot(loader *L) {
    xa_task_data *d = L->d;
    if ((size_t)d->n < L->ex_cap) return XA_STATUS_OK;
    size_t cap = L->ex_cap ? 2 * L->ex_cap : 1024;
    xa_task_example *ex = realloc(d->ex, cap * sizeof *ex);
    if (!ex) return nomem();
    d->ex = ex;
    L->ex_cap = cap;
    return XA_STATUS_OK;
}

/* Sentence pair: "<s> A </s></s> B </s>" with the label. */
static xa_status add_pair(loader *L, int64_t line, const char *a, size_t alen, const char *b, size_t blen,
                          const char *label) {
    xa_task_data *d = L->d;
    int32_t id = 0;
    int cut = 0;
    xa_status st = label_id(L, line, label, &id);
    if (!st) st = build_pair(L, line, a, alen, b, blen, &cut);
    if (!st) st = add_example_slot(L);
    if (!st) st = pool_reserve(d, d->pool_n + 2 * L->n);
    if (st) return st;
    int32_t *p = d->pool + d->pool_n;
    memcpy(p, L->ids, L->n * sizeof *p);
    memcpy(p + L->n, L->types, L->n * sizeof *p);
    d->pool_n += 2 * L->n;
    d->n_truncated += cut;
    xa_task_example *e = &d->ex[d->n++];
    memset(e, 0, sizeof *e);
    e->len = (int)L->n;
    e->n_choices = 1;
    e->label = id;
    e->line = line;
    return XA_STATUS_OK;
}

/* Multiple choice: the pairs (context, choice[i]) of one example, stored as n rows of the
 * longest one (padded), then their types, then their lengths. */
static xa_status add_choices(loader *L, int64_t line, const char *ctx, size_t clen, const char *const *ch,
                             const size_t *chlen, int n, const char *label) {
    xa_task_data *d = L->d;
    int32_t id = 0;
    xa_status st = label_id(L, line, label, &id);
    int32_t *rows[XA_TASK_MAX_CHOICES] = {0}, *types[XA_TASK_MAX_CHOICES] = {0};
    int lens[XA_TASK_MAX_CHOICES] = {0}, longest = 0, any_cut = 0;
    for (int i = 0; !st && i < n; i++) {
        int cut = 0;
        st = build_pair(L, line, ctx, clen, ch[i], chlen[i], &cut);
        if (st) break;
        rows[i] = malloc(L->n * sizeof *rows[i]);
        types[i] = malloc(L->n * sizeof *types[i]);
        if (!rows[i] || !types[i]) {
            st = nomem();
            break;
        }
        memcpy(rows[i], L->ids, L->n * sizeof *rows[i]);
        memcpy(types[i], L->types, L->n * sizeof *types[i]);
        lens[i] = (int)L->n;
        if (lens[i] > longest) longest = lens[i];
        any_cut |= cut;
    }
    const size_t per = 2 * (size_t)n * (size_t)longest + (size_t)n;
    if (!st) st = add_example_slot(L);
    if (!st) st = pool_reserve(d, d->pool_n + per);
    if (!st) {
        int32_t *p = d->pool + d->pool_n, *pt = p + (size_t)n * longest, *pl = pt + (size_t)n * longest;
        for (int i = 0; i < n; i++) {
            for (int t = 0; t < longest; t++) {
                p[(size_t)i * longest + t] = t < lens[i] ? rows[i][t] : L->sp.pad;
                pt[(size_t)i * longest + t] = t < lens[i] ? types[i][t] : 0;
            }
            pl[i] = lens[i];
        }
        d->pool_n += per;
        d->n_truncated += any_cut;
        xa_task_example *e = &d->ex[d->n++];
        memset(e, 0, sizeof *e);
        e->len = longest;
        e->n_choices = n;
        e->label = id;
        e->line = line;
    }
    for (int i = 0; i < n; i++) {
        free(rows[i]);
        free(types[i]);
    }
    return st;
}

/* Tagging: one word with its tag (BIO-checked, mapped). */
static xa_status add_word(loader *L, int64_t line, const char *w, size_t wlen, const char *tag) {
    xa_status st = check_bio(L, line, tag);
    if (st) return st;
    int32_t id = 0;
    st = label_id(L, line, tag, &id);
    return st ? st : sent_word(L, line, w, wlen, id);
}

/* ---- formats --------------------------------------------------------------------------------- */

static size_t chomp(char *s, size_t n) {
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return n;
}

static int is_blank(const char *s) {
    for (; *s; s++) {
        if (*s != ' ' && *s != '\t') return 0;
    }
    return 1;
}

static xa_status parse_tsv_pair_line(loader *L, int64_t line, char *s, size_t len) {
    if (line == 1 && strcasecmp(s, "label\ttext\ttext_pair") == 0) return XA_STATUS_OK; /* header */
    char *t1 = memchr(s, '\t', len), *t2 = t1 ? memchr(t1 + 1, '\t', len - (size_t)(t1 + 1 - s)) : NULL;
    if (!t1 || !t2) {
        return line_error(L, line, "LABEL<TAB>TEXT<TAB>TEXT_PAIR", "a pair line has three tab-separated fields",
                          t1 ? "missing tab between text and text_pair" : "missing tab between label and text");
    }
    if (memchr(t2 + 1, '\t', len - (size_t)(t2 + 1 - s))) {
        return line_error(L, line, "LABEL<TAB>TEXT<TAB>TEXT_PAIR", "texts may not hold a tab (use JSON lines)",
                          "more than three tab-separated fields");
    }
    *t1 = *t2 = '\0';
    const char *a = t1 + 1, *b = t2 + 1;
    if (t1 == s) return line_error(L, line, "LABEL<TAB>TEXT<TAB>TEXT_PAIR", NULL, "empty label");
    if (is_blank(a)) return line_error(L, line, "LABEL<TAB>TEXT<TAB>TEXT_PAIR", NULL, "empty text");
    if (is_blank(b)) return line_error(L, line, "LABEL<TAB>TEXT<TAB>TEXT_PAIR", NULL, "empty text_pair");
    return add_pair(L, line, a, strlen(a), b, len - (size_t)(b - s), s);
}

static xa_status parse_tsv_line(loader *L, int64_t line, char *s, size_t len) {
    if (L->d->kind == XA_TASK_KIND_PAIR) return parse_tsv_pair_line(L, line, s, len);
    if (line == 1 && strcasecmp(s, "label\ttext") == 0) return XA_STATUS_OK; /* header */
    char *tab = memchr(s, '\t', len);
    if (!tab) {
        return line_error(L, line, "LABEL<TAB>TEXT", "the label comes first, then one tab",
                          "missing tab between label and text");
    }
    *tab = '\0';
    const char *text = tab + 1;
    size_t tlen = len - (size_t)(text - s);
    if (tab == s) return line_error(L, line, "LABEL<TAB>TEXT", NULL, "empty label");
    if (is_blank(text)) return line_error(L, line, "LABEL<TAB>TEXT", NULL, "empty text");
    return add_text(L, line, text, tlen, s);
}

static xa_status json_error(const loader *L, int64_t line, const char *what) {
    char expected[XA_ERROR_FIELD];
    switch (L->d->kind) {
    case XA_TASK_KIND_TAGGING:
        snprintf(expected, sizeof expected, "an object {\"%s\": [strings], \"%s\": [strings or integers]}",
                 L->k_tokens, L->k_tags ? L->k_tags : "tags");
        break;
    case XA_TASK_KIND_PAIR:
        snprintf(expected, sizeof expected, "an object {\"%s\": string, \"%s\": string, \"%s\": string or integer}",
                 L->k_text, L->k_pair, L->k_label);
        break;
    case XA_TASK_KIND_CHOICE:
        snprintf(expected, sizeof expected, "an object {\"%s\": string, \"%s\": string, ..., \"%s\": choice index}",
                 L->k_premise, L->k_choices[0], L->k_label);
        break;
    default:
        snprintf(expected, sizeof expected, "an object {\"%s\": string, \"%s\": string or integer}", L->k_text,
                 L->k_label);
    }
    return line_error(L, line, expected, "one JSON object per line", what);
}

/* The name of a JSON label: a string, or an integer named through the label list (or by its
 * decimal text without one). NULL with *st set on error, or with *st OK when absent/mistyped. */
static const char *json_label_name(loader *L, int64_t line, const json_t *v, char *num, size_t n, int ints_need_names,
                                   xa_status *st) {
    char what[XA_ERROR_FIELD];
    *st = XA_STATUS_OK;
    if (json_is_string(v)) return json_string_value(v);
    if (!json_is_integer(v)) return NULL;
    const json_int_t k = json_integer_value(v);
    if (L->has_names) {
        if (k < 0 || k >= L->names.n) {
            snprintf(what, sizeof what, "label id %lld is outside the %d names of the label list", (long long)k,
                     L->names.n);
            *st = line_error(L, line, "an id 0 .. number of names - 1", "check data.task.labels or labels.json", what);
            return NULL;
        }
        return L->names.names[k];
    }
    if (ints_need_names) {
        snprintf(what, sizeof what, "integer tag %lld without a label list", (long long)k);
        *st = line_error(L, line, "string tags, or integer tags with a label list",
                         "give data.task.labels or a labels.json beside the file", what);
        return NULL;
    }
    snprintf(num, n, "%lld", (long long)k);
    return num;
}

/* A non-empty string field of root, or an error naming it. */
static xa_status json_text(const loader *L, int64_t line, json_t *root, const char *key, const char **text,
                           size_t *len) {
    char what[XA_ERROR_FIELD];
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v)) {
        snprintf(what, sizeof what, v ? "\"%.200s\" is not a string" : "no \"%.200s\" key", key);
        return json_error(L, line, what);
    }
    if (is_blank(json_string_value(v))) {
        snprintf(what, sizeof what, "empty %.200s", key);
        return json_error(L, line, what);
    }
    *text = json_string_value(v);
    *len = json_string_length(v);
    return XA_STATUS_OK;
}

static xa_status parse_json_choice(loader *L, int64_t line, json_t *root) {
    char what[XA_ERROR_FIELD], num[32];
    const char *ctx = NULL, *ch[XA_TASK_MAX_CHOICES];
    size_t clen = 0, chlen[XA_TASK_MAX_CHOICES];
    xa_status st = json_text(L, line, root, L->k_premise, &ctx, &clen);
    for (int i = 0; !st && i < L->n_choices; i++) st = json_text(L, line, root, L->k_choices[i], &ch[i], &chlen[i]);
    if (st) return st;
    json_t *q = json_object_get(root, L->k_question), *label = json_object_get(root, L->k_label);
    if (q && !json_is_string(q) && !json_is_null(q)) {
        snprintf(what, sizeof what, "\"%.200s\" is not a string", L->k_question);
        return json_error(L, line, what);
    }
    const char *name = json_is_integer(label) ? (snprintf(num, sizeof num, "%lld", (long long)json_integer_value(label)), num)
                       : json_is_string(label) ? json_string_value(label)
                                               : NULL;
    if (!name) {
        snprintf(what, sizeof what, label ? "\"%.200s\" is not a choice index" : "no \"%.200s\" key", L->k_label);
        return json_error(L, line, what);
    }
    /* the context: premise, then the question prompt (jiant's COPA wording for cause / effect) */
    const char *qs = json_is_string(q) ? json_string_value(q) : "";
    const char *prompt = !strcmp(qs, "cause") ? "What was the cause?" : !strcmp(qs, "effect") ? "What happened as a result?" : qs;
    size_t plen = strlen(prompt);
    char *full = malloc(clen + plen + 2);
    if (!full) return nomem();
    memcpy(full, ctx, clen);
    size_t n = clen;
    if (plen) {
        full[n++] = ' ';
        memcpy(full + n, prompt, plen);
        n += plen;
    }
    full[n] = '\0';
    st = add_choices(L, line, full, n, ch, chlen, L->n_choices, name);
    free(full);
    return st;
}

static xa_status parse_json_line(loader *L, int64_t line, const char *s, size_t len) {
    json_error_t jerr;
    json_t *root = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    char what[XA_ERROR_FIELD];
    if (!root) {
        snprintf(what, sizeof what, "bad JSON at column %d: %s", jerr.column, jerr.text);
        return json_error(L, line, what);
    }
    xa_status st = XA_STATUS_OK;
    const xa_task_kind kind = L->d->kind;
    if (!json_is_object(root)) {
        st = json_error(L, line, "not a JSON object");
    } else if (kind == XA_TASK_KIND_CHOICE) {
        st = parse_json_choice(L, line, root);
    } else if (kind == XA_TASK_KIND_CLASSIFICATION || kind == XA_TASK_KIND_PAIR) {
        json_t *label = json_object_get(root, L->k_label);
        char num[32];
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        const char *name = json_label_name(L, line, label, num, sizeof num, 0, &st);
        if (!st) st = json_text(L, line, root, L->k_text, &a, &alen);
        if (!st && kind == XA_TASK_KIND_PAIR) st = json_text(L, line, root, L->k_pair, &b, &blen);
        if (st) {
        } else if (!name) {
            snprintf(what, sizeof what, label ? "\"%.200s\" is not a string or an integer" : "no \"%.200s\" key",
                     L->k_label);
            st = json_error(L, line, what);
        } else if (!name[0]) {
            st = json_error(L, line, "empty label");
        } else if (kind == XA_TASK_KIND_PAIR) {
            st = add_pair(L, line, a, alen, b, blen, name);
        } else {
            st = add_text(L, line, a, alen, name);
        }
    } else {
        const char *tk = L->k_tags ? L->k_tags : json_object_get(root, "tags") || !json_object_get(root, "ner_tags") ? "tags" : "ner_tags";
        json_t *tokens = json_object_get(root, L->k_tokens), *tags = json_object_get(root, tk);
        if (!json_is_array(tokens)) {
            snprintf(what, sizeof what, tokens ? "\"%.200s\" is not an array" : "no \"%.200s\" key", L->k_tokens);
            st = json_error(L, line, what);
        } else if (!json_is_array(tags)) {
            snprintf(what, sizeof what, tags ? "\"%.200s\" is not an array" : "no \"%.200s\" key", tk);
            st = json_error(L, line, what);
        } else if (json_array_size(tokens) != json_array_size(tags)) {
            snprintf(what, sizeof what, "%zu tokens but %zu tags", json_array_size(tokens),
                     json_array_size(tags));
            st = json_error(L, line, what);
        } else if (json_array_size(tokens) == 0) {
            st = json_error(L, line, "empty sentence (no tokens)");
        } else {
            st = sent_begin(L, line);
            for (size_t i = 0; !st && i < json_array_size(tokens); i++) {
                json_t *w = json_array_get(tokens, i), *t = json_array_get(tags, i);
                char num[32];
                const char *tag = json_label_name(L, line, t, num, sizeof num, 1, &st);
                if (st) break;
                if (!json_is_string(w) || !tag) {
                    snprintf(what, sizeof what, "%s %zu is not a string", json_is_string(w) ? "tag" : "token", i);
                    st = json_error(L, line, what);
                } else if (json_string_length(w) == 0) {
                    snprintf(what, sizeof what, "token %zu is empty", i);
                    st = json_error(L, line, what);
                } else {
                    st = add_word(L, line, json_string_value(w), json_string_length(w), tag);
                }
            }
            if (!st) st = sent_end(L, -1);
        }
    }
    json_decref(root);
    return st;
}

/* One CoNLL line (not blank, not -DOCSTART-): WORD<TAB>TAG or WORD TAG, extra middle columns
 * ignored. */
static xa_status parse_conll_line(loader *L, int64_t line, char *s, size_t len) {
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    const char *seps = memchr(s, '\t', len) ? "\t" : " ";
    size_t wlen = strcspn(s, seps);
    char *tag = strrchr(s, seps[0]);
    if (wlen == len || !tag) {
        return line_error(L, line, "WORD<TAB>TAG or WORD TAG", "blank lines separate sentences",
                          "missing tab (or space) between word and tag");
    }
    tag++;
    if (wlen == 0) return line_error(L, line, "WORD<TAB>TAG", NULL, "empty word");
    if (L->n == 0) {
        xa_status st = sent_begin(L, line);
        if (st) return st;
    }
    return add_word(L, line, s, wlen, tag);
}

static int has_ext(const char *path, const char *ext) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    return dot && (!slash || dot > slash) && strcasecmp(dot + 1, ext) == 0;
}

static const char *kind_name(xa_task_kind kind) {
    return kind == XA_TASK_KIND_TAGGING ? "tagging" : kind == XA_TASK_KIND_PAIR ? "pair classification"
         : kind == XA_TASK_KIND_CHOICE  ? "multiple choice" : "classification";
}

static xa_status resolve_format(const char *path, xa_task_kind kind, xa_task_format *fmt) {
    int tagging = kind == XA_TASK_KIND_TAGGING;
    if (kind == XA_TASK_KIND_CHOICE && *fmt != XA_TASK_FORMAT_JSONL &&
        (*fmt != XA_TASK_FORMAT_AUTO || !(has_ext(path, "jsonl") || has_ext(path, "json")))) {
        return xa_error_set(XA_STATUS_CONFIG, path, "a .jsonl or .json file (COPA's JSON lines)",
                            "multiple choice reads {\"premise\", \"choice1\", \"choice2\", \"label\"} lines",
                            "multiple choice data must be JSON lines");
    }
    if (*fmt == XA_TASK_FORMAT_AUTO) {
        if (has_ext(path, "jsonl") || has_ext(path, "json")) {
            *fmt = XA_TASK_FORMAT_JSONL;
        } else if (has_ext(path, "conll") || has_ext(path, "bio")) {
            *fmt = XA_TASK_FORMAT_CONLL;
        } else if (has_ext(path, "tsv") || has_ext(path, "txt")) {
            *fmt = tagging ? XA_TASK_FORMAT_CONLL : XA_TASK_FORMAT_TSV;
        } else {
            return xa_error_set(XA_STATUS_CONFIG, path,
                                "a .tsv, .jsonl, .json, .conll, .bio or .txt file",
                                "rename the file or give the format explicitly",
                                "cannot tell the task data format from the file name");
        }
    }
    if ((*fmt == XA_TASK_FORMAT_CONLL && !tagging) || (*fmt == XA_TASK_FORMAT_TSV && tagging)) {
        return xa_error_set(
            XA_STATUS_CONFIG, path,
            tagging ? "CoNLL or JSON lines for tagging" : "TSV or JSON lines for classification",
            "check the task type", "%s is not a %s format",
            *fmt == XA_TASK_FORMAT_CONLL ? "CoNLL" : "TSV", kind_name(kind));
    }
    if (*fmt != XA_TASK_FORMAT_TSV && *fmt != XA_TASK_FORMAT_JSONL &&
        *fmt != XA_TASK_FORMAT_CONLL) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "a xa_task_format", NULL,
                            "unknown format %d", (int)*fmt);
    }
    return XA_STATUS_OK;
}

/* Collected labels: the final set, and every temporary id (index into L->seen) remapped to it. */
static xa_status finish_labels(loader *L, xa_labels *out) {
    xa_task_data *d = L->d;
    xa_labels *fin = &d->labels;
    int32_t map[XA_MAX_LABELS];
    fin->n = 0;
    if (d->kind != XA_TASK_KIND_TAGGING) {
        *fin = L->seen;
        qsort(fin->names, (size_t)fin->n, sizeof fin->names[0], cmp_names);
    } else {
        /* entity types, sorted and unique */
        xa_labels types;
        types.n = 0;
        for (int i = 0; i < L->seen.n; i++) {
            const char *t = L->seen.names[i];
            if (strcmp(t, "O") != 0 && xa_labels_find(&types, t + 2) < 0) {
                snprintf(types.names[types.n++], sizeof types.names[0], "%s", t + 2);
            }
        }
        qsort(types.names, (size_t)types.n, sizeof types.names[0], cmp_names);
        if (1 + 2 * types.n > XA_MAX_LABELS) {
            return xa_error_set(XA_STATUS_CONFIG, d->path, "at most 127 entity types", NULL,
                                "%d entity types give %d BIO labels", types.n, 1 + 2 * types.n);
        }
        snprintf(fin->names[fin->n++], sizeof fin->names[0], "O");
        /* a type is a seen label less its "B-"/"I-" (names hold 63 bytes), so B-/I- + type fits */
        for (int i = 0; i < types.n; i++) {
            snprintf(fin->names[fin->n++], sizeof fin->names[0], "B-%.61s", types.names[i]);
            snprintf(fin->names[fin->n++], sizeof fin->names[0], "I-%.61s", types.names[i]);
        }
    }
    for (int i = 0; i < L->seen.n; i++)
        map[i] = xa_labels_find(fin, L->seen.names[i]);
    for (int i = 0; i < d->n; i++) {
        xa_task_example *e = &d->ex[i];
        if (d->kind != XA_TASK_KIND_TAGGING) {
            e->label = map[e->label];
        } else {
            for (int t = 0; t < e->len; t++) {
                if (e->tags[t] != TASK_IGNORE) e->tags[t] = map[e->tags[t]];
            }
        }
    }
    *out = *fin;
    return XA_STATUS_OK;
}

xa_status xa_task_labels_read(xa_labels *l, const char *path) {
    memset(l, 0, sizeof *l);
    json_error_t jerr;
    FILE *f = fopen(path, "rb");
    if (!f)
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL,
                            "cannot open the label list: %s", strerror(errno));
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    const char *expected = "a JSON array of label names, or {\"names\": [...]}";
    if (!root)
        return xa_error_set(XA_STATUS_FORMAT, path, expected, NULL, "bad JSON at line %d: %s", jerr.line, jerr.text);
    const json_t *a = json_is_object(root) ? json_object_get(root, "names") : root;
    xa_status st = XA_STATUS_OK;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > XA_MAX_LABELS) {
        st = xa_error_set(XA_STATUS_FORMAT, path, expected, "at most 256 names", "not a list of 1 to 256 names");
    }
    for (size_t i = 0; !st && i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        const char *n = json_is_string(v) ? json_string_value(v) : NULL;
        if (!n || !n[0] || strlen(n) >= sizeof l->names[0]) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "names of 1 to 63 bytes", NULL, "entry %zu is not such a name", i);
        } else if (xa_labels_find(l, n) >= 0) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "distinct names", NULL, "name '%s' appears twice", n);
        } else {
            snprintf(l->names[l->n++], sizeof l->names[0], "%s", n);
        }
    }
    json_decref(root);
    if (st) memset(l, 0, sizeof *l);
    return st;
}

xa_status xa_task_data_load(xa_task_data *d, const xa_tok *tok, const char *path, xa_task_kind kind,
                            xa_task_format fmt, int max_len, xa_labels *labels) {
    xa_task_input in = {kind, fmt, NULL, NULL, 0, 0, 0};
    return xa_task_data_load_input(d, tok, path, &in, max_len, labels);
}

/* key, or its default when NULL or empty */
static const char *key_or(const char *key, const char *def) {
    return key && key[0] ? key : def;
}

/* The label list of the load: the caller's, else labels.json beside path (none: 0). */
static xa_status load_names(loader *L, const xa_task_input *in, const char *path) {
    if (in->label_names && in->n_label_names > 0) {
        if (in->n_label_names > XA_MAX_LABELS)
            return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "at most 256 label names", NULL, "%d names",
                                in->n_label_names);
        for (int i = 0; i < in->n_label_names; i++) {
            const char *n = in->label_names[i];
            if (!n || !n[0] || strlen(n) >= sizeof L->names.names[0] || xa_labels_find(&L->names, n) >= 0)
                return xa_error_set(XA_STATUS_CONFIG, "data.task.labels", "distinct names of 1 to 63 bytes", NULL,
                                    "label name %d ('%.64s') is empty, too long or repeated", i, n ? n : "");
            snprintf(L->names.names[L->names.n++], sizeof L->names.names[0], "%s", n);
        }
        L->has_names = 1;
        return XA_STATUS_OK;
    }
    char lp[1100];
    const char *slash = strrchr(path, '/');
    int k = slash ? snprintf(lp, sizeof lp, "%.*s/labels.json", (int)(slash - path), path)
                  : snprintf(lp, sizeof lp, "labels.json");
    if (k < 0 || (size_t)k >= sizeof lp) return XA_STATUS_OK;
    FILE *f = fopen(lp, "rb");
    if (!f) return XA_STATUS_OK;
    fclose(f);
    xa_status st = xa_task_labels_read(&L->names, lp);
    L->has_names = !st;
    return st;
}

/* A label list as the label set: tagging lists need "O" first and BIO tags. */
static xa_status names_as_set(loader *L, const char *path) {
    if (L->d->kind == XA_TASK_KIND_TAGGING) {
        if (strcmp(L->names.names[0], "O") != 0)
            return xa_error_set(XA_STATUS_CONFIG, path, "a tag list with \"O\" first",
                                "HF datasets' ner_tags lists start with O", "the label list starts with '%s'",
                                L->names.names[0]);
        for (int i = 1; i < L->names.n; i++) {
            const char *t = L->names.names[i];
            if (!((t[0] == 'B' || t[0] == 'I') && t[1] == '-' && t[2]))
                return xa_error_set(XA_STATUS_CONFIG, path, "BIO tags (O, B-TYPE, I-TYPE)", NULL,
                                    "label list entry %d '%s' is not a BIO tag", i, t);
        }
    }
    L->fixed_set = L->names;
    L->fixed = 1;
    L->user = &L->fixed_set;
    return XA_STATUS_OK;
}

xa_status xa_task_data_load_input(xa_task_data *d, const xa_tok *tok, const char *path, const xa_task_input *in,
                                  int max_len, xa_labels *labels) {
    memset(d, 0, sizeof *d);
    if (!in) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "an input description", NULL, "NULL argument");
    }
    const xa_task_kind kind = in->kind;
    xa_task_format fmt = in->format;
    if (kind == XA_TASK_KIND_QA) { /* the labels are the two logits, start and end */
        xa_status st = labels ? xa_qa_data_load(d, tok, path, in, max_len)
                              : xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "labels", NULL, "NULL argument");
        if (!st && labels->n == 0) *labels = d->labels;
        return st;
    }
    if (!path || !labels) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "path and labels", NULL,
                            "NULL argument");
    }
    if (max_len < 2) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "max_len >= 2", NULL,
                            "max_len is %d", max_len);
    }
    if ((kind == XA_TASK_KIND_PAIR || kind == XA_TASK_KIND_CHOICE) && max_len < 6) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "max_len >= 6 for pairs", NULL,
                            "max_len is %d", max_len);
    }
    const xa_task_fields *fl = in->fields;
    if (fl && (fl->n_choices < 0 || fl->n_choices > XA_TASK_MAX_CHOICES || (fl->n_choices && !fl->choices))) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "1 to 16 choice keys", NULL, "%d choice keys",
                            fl->n_choices);
    }
    if (kind != XA_TASK_KIND_CLASSIFICATION && kind != XA_TASK_KIND_TAGGING && kind != XA_TASK_KIND_PAIR &&
        kind != XA_TASK_KIND_CHOICE) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "a xa_task_kind", NULL,
                            "unknown kind %d", (int)kind);
    }
    if (labels->n < 0 || labels->n > XA_MAX_LABELS) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "0..256 labels", NULL,
                            "labels->n is %d", labels->n);
    }
    d->kind = kind;
    snprintf(d->path, sizeof d->path, "%s", path);
    xa_status st = resolve_format(path, kind, &fmt);
    if (st) return st;
    loader *L = calloc(1, sizeof *L);
    if (!L) return nomem();
    L->d = d;
    L->tok = tok;
    if (tok) {
        L->sp = xa_tok_special_ids(tok);
    } else { /* check mode: the XLM-R ids */
        L->sp.cls = 0;
        L->sp.pad = 1;
        L->sp.sep = 2;
        L->sp.unk = 3;
    }
    L->max_len = max_len;
    L->fixed = labels->n > 0;
    L->user = labels;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    int64_t lineno = 0;
    L->bert_pairs = in->bert_pairs != 0;
    L->k_text = key_or(fl ? fl->text : NULL, "text");
    L->k_pair = key_or(fl ? fl->text_pair : NULL, "text_pair");
    L->k_label = key_or(fl ? fl->label : NULL, "label");
    L->k_tokens = key_or(fl ? fl->tokens : NULL, "tokens");
    L->k_tags = fl && fl->tags && fl->tags[0] ? fl->tags : NULL;
    L->k_premise = key_or(fl ? fl->premise : NULL, "premise");
    L->k_question = key_or(fl ? fl->question : NULL, "question");
    if (fl && fl->n_choices > 0) {
        L->n_choices = fl->n_choices;
        for (int i = 0; i < fl->n_choices; i++) L->k_choices[i] = key_or(fl->choices[i], "choice");
    } else {
        L->n_choices = 2;
        L->k_choices[0] = "choice1";
        L->k_choices[1] = "choice2";
    }
    d->n_choices = kind == XA_TASK_KIND_CHOICE ? L->n_choices : 1;
    if (kind == XA_TASK_KIND_CHOICE) { /* the labels are the choice indices */
        if (labels->n > 0 && labels->n != L->n_choices) {
            st = xa_error_set(XA_STATUS_CONFIG, path, "as many labels as choices", "wrong head for this data?",
                              "%d labels for %d choices", labels->n, L->n_choices);
            goto fail;
        }
        L->fixed_set.n = L->n_choices;
        for (int i = 0; i < L->n_choices; i++) snprintf(L->fixed_set.names[i], sizeof L->fixed_set.names[i], "%d", i);
        L->fixed = 1;
        L->user = &L->fixed_set;
    } else {
        if ((st = load_names(L, in, path))) goto fail;
        if (L->has_names && !L->fixed && (st = names_as_set(L, path))) goto fail;
    }

    FILE *f = fopen(path, "rb");
    if (!f) {
        st = xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL,
                          "check the task data path", "cannot open task data: %s", strerror(errno));
        goto fail;
    }
    while ((got = getline(&line, &line_cap, f)) != -1) {
        lineno++;
        size_t len = chomp(line, (size_t)got);
        char *s = line;
        if (lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 BOM */
            s += 3;
            len -= 3;
        }
        if (strlen(s) != len) {
            st = line_error(L, lineno, "UTF-8 text", NULL, "NUL byte in the line");
            break;
        }
        if (fmt == XA_TASK_FORMAT_CONLL) {
            if (is_blank(s)) {
                if (L->n > 0) st = sent_end(L, -1);
                L->n = 0;
            } else if (strncmp(s, "-DOCSTART-", 10) == 0 &&
                       (s[10] == '\0' || s[10] == ' ' || s[10] == '\t')) {
                /* document separators are not sentences */
            } else {
                st = parse_conll_line(L, lineno, s, len);
            }
        } else if (!is_blank(s)) {
            st = fmt == XA_TASK_FORMAT_TSV ? parse_tsv_line(L, lineno, s, len)
                                           : parse_json_line(L, lineno, s, len);
        }
        if (st) break;
    }
    if (!st && ferror(f))
        st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "read error: %s", strerror(errno));
    if (!st && fmt == XA_TASK_FORMAT_CONLL && L->n > 0) st = sent_end(L, -1); /* no final blank */
    fclose(f);
    if (st) goto fail;
    if (d->n == 0) {
        st = xa_error_set(XA_STATUS_CONFIG, path, "at least one example",
                          "is the file empty, or only a header?", "no examples in %lld lines",
                          (long long)lineno);
        goto fail;
    }
    /* The pool is final: point the examples into it. */
    size_t off = 0;
    for (int i = 0; i < d->n; i++) {
        xa_task_example *e = &d->ex[i];
        e->ids = d->pool + off;
        if (kind == XA_TASK_KIND_PAIR) {
            e->types = e->ids + e->len;
            off += 2 * (size_t)e->len;
        } else if (kind == XA_TASK_KIND_CHOICE) {
            const size_t rows = (size_t)e->n_choices * (size_t)e->len;
            e->types = e->ids + rows;
            e->choice_len = e->types + rows;
            off += 2 * rows + (size_t)e->n_choices;
        } else if (kind == XA_TASK_KIND_TAGGING) {
            e->tags = e->ids + e->len;
            e->word = e->ids + 2 * (size_t)e->len;
            off += 3 * (size_t)e->len;
        } else {
            off += (size_t)e->len;
        }
    }
    if (L->fixed) {
        d->labels = *L->user;
        if (labels->n == 0) *labels = *L->user;
    } else {
        st = finish_labels(L, labels);
        if (st) goto fail;
    }
    free(line);
    free(L->ids);
    free(L->tags);
    free(L->word);
    free(L->types);
    free(L);
    return XA_STATUS_OK;

fail:
    free(line);
    free(L->ids);
    free(L->tags);
    free(L->word);
    free(L->types);
    free(L);
    xa_task_data_free(d);
    return st;
}

void xa_task_data_free(xa_task_data *d) {
    if (!d) return;
    xa_qa_data_free_questions(d);
    free(d->ex);
    free(d->pool);
    memset(d, 0, sizeof *d);
}

/* ---- batches --------------------------------------------------------------------------------- */

xa_status xa_task_batch_init(xa_task_batch *b, int max_B, int max_T) {
    memset(b, 0, sizeof *b);
    if (max_B < 1 || max_T < 1 || (int64_t)max_B * max_T > XA_MAX_BATCH_TOKENS) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_batch_init",
                            "max_B >= 1 and max_T >= 1, at most 16777216 tokens a batch",
                            "lower the batch size or the sequence length", "max_B %d, max_T %d",
                            max_B, max_T);
    }
    size_t N = (size_t)max_B * (size_t)max_T;
    b->cap_B = max_B;
    b->cap_T = max_T;
    b->ids = malloc(N * sizeof(int32_t));
    b->types = calloc(N, sizeof(int32_t));
    b->lens = malloc((size_t)max_B * sizeof(int32_t));
    b->labels = malloc(N * sizeof(int32_t));
    b->index = malloc((size_t)max_B * sizeof(int32_t));
    if (!b->ids || !b->types || !b->lens || !b->labels || !b->index) {
        xa_task_batch_free(b);
        return xa_error_set(XA_STATUS_NOMEM, "xa_task_batch_init", NULL, NULL, "out of memory");
    }
    return XA_STATUS_OK;
}

void xa_task_batch_free(xa_task_batch *b) {
    if (!b) return;
    free(b->ids);
    free(b->types);
    free(b->lens);
    free(b->labels);
    free(b->index);
    memset(b, 0, sizeof *b);
}

/* Stable merge sort of example indices a[0..n) by length (tmp: n scratch entries). Stable, so
 * equal lengths keep their order: the permutation's when shuffling, the index order otherwise. */
static void sort_by_len(int32_t *a, int32_t *tmp, size_t n, const xa_task_example *ex) {
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = ex[a[j]].len < ex[a[i]].len ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, n * sizeof *a);
    }
}

xa_status xa_task_batcher_init(xa_task_batcher *bt, const xa_task_data *d, int batch_size,
                               int shuffle, uint64_t seed, int32_t pad_id) {
    memset(bt, 0, sizeof *bt);
    if (!d || d->n < 1 || batch_size < 1) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_batcher_init",
                            "a loaded data set and batch_size >= 1", NULL,
                            "%d examples, batch_size %d", d ? d->n : 0, batch_size);
    }
    bt->data = d;
    bt->batch_size = batch_size;
    bt->shuffle = shuffle != 0;
    bt->seed = seed;
    bt->pad_id = pad_id;
    bt->n_batches = ((int64_t)d->n + batch_size - 1) / batch_size;
    /* order holds 2n entries: the second half is scratch for sorting and reordering batches. */
    bt->order = malloc(2 * (size_t)d->n * sizeof *bt->order);
    bt->starts = malloc(((size_t)bt->n_batches + 1) * sizeof *bt->starts);
    if (!bt->order || !bt->starts) {
        xa_task_batcher_free(bt);
        return xa_error_set(XA_STATUS_NOMEM, "xa_task_batcher_init", NULL, NULL, "out of memory");
    }
    xa_task_batcher_seek(bt, 0, 0);
    return XA_STATUS_OK;
}

void xa_task_batcher_free(xa_task_batcher *bt) {
    if (!bt) return;
    free(bt->order);
    free(bt->starts);
    memset(bt, 0, sizeof *bt);
}

void xa_task_batcher_seek(xa_task_batcher *bt, int64_t epoch, int64_t pos) {
    XA_ASSERT(pos >= 0 && pos <= bt->n_batches);
    const xa_task_example *ex = bt->data->ex;
    const size_t n = (size_t)bt->data->n, B = (size_t)bt->batch_size, nb = (size_t)bt->n_batches;
    int32_t *order = bt->order, *scratch = bt->order + n;
    for (size_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    if (!bt->shuffle) {
        sort_by_len(order, scratch, n, ex);
        for (size_t k = 0; k <= nb; k++)
            bt->starts[k] = (int64_t)(k * B < n ? k * B : n);
    } else {
        xa_rng rng;
        xa_rng_seed(&rng, bt->seed, 0x7a5c0000u + (uint64_t)epoch);
        xa_rng_shuffle_u32(&rng, (uint32_t *)order, n); /* int32/uint32 may alias */
        const size_t chunk = CHUNK_BATCHES * B;
        for (size_t lo = 0; lo < n; lo += chunk) {
            sort_by_len(order + lo, scratch, lo + chunk < n ? chunk : n - lo, ex);
        }
        /* Shuffle the batch order (Fisher-Yates over batch numbers kept in starts), then lay the
         * batches out in that order; starts[k] is read before it is overwritten. */
        for (size_t k = 0; k < nb; k++)
            bt->starts[k] = (int64_t)k;
        for (size_t k = nb; k > 1; k--) {
            size_t j = xa_rng_below(&rng, (uint32_t)k);
            int64_t t = bt->starts[k - 1];
            bt->starts[k - 1] = bt->starts[j];
            bt->starts[j] = t;
        }
        memcpy(scratch, order, n * sizeof *order);
        size_t at = 0;
        for (size_t k = 0; k < nb; k++) {
            size_t b = (size_t)bt->starts[k], lo = b * B, hi = lo + B < n ? lo + B : n;
            bt->starts[k] = (int64_t)at;
            memcpy(order + at, scratch + lo, (hi - lo) * sizeof *order);
            at += hi - lo;
        }
        bt->starts[nb] = (int64_t)n;
    }
    bt->epoch = epoch;
    bt->pos = pos;
}

int xa_task_batcher_next(xa_task_batcher *bt, xa_task_batch *b) {
    if (bt->pos >= bt->n_batches) {
        xa_task_batcher_seek(bt, bt->epoch + 1, 0);
        b->B = b->T = b->n_ex = 0;
        return 0;
    }
    const xa_task_data *d = bt->data;
    const int64_t lo = bt->starts[bt->pos], hi = bt->starts[bt->pos + 1];
    bt->pos++;
    const int n_ex = (int)(hi - lo), nc = d->n_choices > 0 ? d->n_choices : 1;
    const int B = n_ex * nc;
    int T = 0;
    for (int r = 0; r < n_ex; r++) {
        int len = d->ex[bt->order[lo + r]].len;
        if (len > T) T = len;
    }
    XA_ASSERT(B <= b->cap_B && T <= b->cap_T); /* the batch must fit batch_size and max_len */
    const int tagging = d->kind == XA_TASK_KIND_TAGGING;
    b->B = B;
    b->T = T;
    b->n_ex = n_ex;
    b->n_choices = nc;
    b->has_types = 0;
    for (int r = 0; r < n_ex; r++) {
        const int32_t i = bt->order[lo + r];
        const xa_task_example *e = &d->ex[i];
        for (int c = 0; c < nc; c++) {
            const size_t row = (size_t)r * nc + c;
            const int len = e->choice_len ? e->choice_len[c] : e->len;
            int32_t *ids = b->ids + row * T, *types = b->types + row * T;
            memcpy(ids, e->ids + (size_t)c * e->len, (size_t)len * sizeof *ids);
            for (int t = len; t < T; t++)
                ids[t] = bt->pad_id;
            for (int t = 0; t < T; t++) {
                types[t] = e->types && t < len ? e->types[(size_t)c * e->len + t] : 0;
                b->has_types |= types[t] != 0;
            }
            b->lens[row] = len;
        }
        if (d->kind == XA_TASK_KIND_QA) {
            b->labels[2 * r] = e->start;
            b->labels[2 * r + 1] = e->end;
        } else if (tagging) {
            int32_t *lab = b->labels + (size_t)r * T;
            memcpy(lab, e->tags, (size_t)e->len * sizeof *lab);
            for (int t = e->len; t < T; t++)
                lab[t] = TASK_IGNORE;
        } else {
            b->labels[r] = e->label;
        }
        b->index[r] = i;
    }
    return 1;
}
