/* data/task: labelled task data (see data.h) — sentence classification from TSV or JSON lines,
 * BIO token tagging from CoNLL or JSON lines — encoded with the base's tokenizer (tokenizer/tok.h:
 * XLM-R <s> X </s>, or BERT [CLS] X [SEP] with WordPiece), and a length-bucketed, deterministic,
 * resumable batcher over it. A WordPiece word of a tagging file is encoded on its own, as
 * BertTokenizer with is_split_into_words does (its basic tokenizer may split it at punctuation).
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
 * Not here: pair inputs (<s> A </s></s> B </s>), integer tag ids with a separate label list,
 * label_all_tokens=True, sliding windows over long inputs (they are truncated and counted).
 */
#include "data/data.h"

#include <errno.h>
#include <jansson.h>
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
    if (!c) return nomem();
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

static xa_status parse_tsv_line(loader *L, int64_t line, char *s, size_t len) {
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
    return line_error(L, line,
                      L->d->kind == XA_TASK_KIND_TAGGING
                          ? "an object {\"tokens\": [strings], \"tags\": [strings]}"
                          : "an object {\"text\": string, \"label\": string or integer}",
                      "one JSON object per line", what);
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
    if (!json_is_object(root)) {
        st = json_error(L, line, "not a JSON object");
    } else if (L->d->kind == XA_TASK_KIND_CLASSIFICATION) {
        json_t *text = json_object_get(root, "text"), *label = json_object_get(root, "label");
        char num[32];
        const char *name = NULL;
        if (json_is_string(label)) {
            name = json_string_value(label);
        } else if (json_is_integer(label)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(label));
            name = num;
        }
        if (!json_is_string(text)) {
            st = json_error(L, line, text ? "\"text\" is not a string" : "no \"text\" key");
        } else if (!name) {
            st = json_error(L, line,
                            label ? "\"label\" is not a string or an integer" : "no \"label\" key");
        } else if (!name[0]) {
            st = json_error(L, line, "empty label");
        } else if (is_blank(json_string_value(text))) {
            st = json_error(L, line, "empty text");
        } else {
            st = add_text(L, line, json_string_value(text), json_string_length(text), name);
        }
    } else {
        json_t *tokens = json_object_get(root, "tokens"), *tags = json_object_get(root, "tags");
        if (!json_is_array(tokens)) {
            st = json_error(L, line, tokens ? "\"tokens\" is not an array" : "no \"tokens\" key");
        } else if (!json_is_array(tags)) {
            st = json_error(L, line, tags ? "\"tags\" is not an array" : "no \"tags\" key");
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
                if (!json_is_string(w) || !json_is_string(t)) {
                    snprintf(what, sizeof what, "%s %zu is not a string",
                             json_is_string(w) ? "tag" : "token", i);
                    st = json_error(L, line, what);
                } else if (json_string_length(w) == 0) {
                    snprintf(what, sizeof what, "token %zu is empty", i);
                    st = json_error(L, line, what);
                } else {
                    st = add_word(L, line, json_string_value(w), json_string_length(w),
                                  json_string_value(t));
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

static xa_status resolve_format(const char *path, xa_task_kind kind, xa_task_format *fmt) {
    int tagging = kind == XA_TASK_KIND_TAGGING;
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
            *fmt == XA_TASK_FORMAT_CONLL ? "CoNLL" : "TSV", tagging ? "tagging" : "classification");
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
    if (d->kind == XA_TASK_KIND_CLASSIFICATION) {
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
        for (int i = 0; i < types.n; i++) {
            snprintf(fin->names[fin->n++], sizeof fin->names[0], "B-%s", types.names[i]);
            snprintf(fin->names[fin->n++], sizeof fin->names[0], "I-%s", types.names[i]);
        }
    }
    for (int i = 0; i < L->seen.n; i++)
        map[i] = xa_labels_find(fin, L->seen.names[i]);
    for (int i = 0; i < d->n; i++) {
        xa_task_example *e = &d->ex[i];
        if (d->kind == XA_TASK_KIND_CLASSIFICATION) {
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

xa_status xa_task_data_load(xa_task_data *d, const xa_tok *tok, const char *path, xa_task_kind kind,
                            xa_task_format fmt, int max_len, xa_labels *labels) {
    memset(d, 0, sizeof *d);
    if (!path || !labels) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "path and labels", NULL,
                            "NULL argument");
    }
    if (max_len < 2) {
        return xa_error_set(XA_STATUS_USAGE, "xa_task_data_load", "max_len >= 2", NULL,
                            "max_len is %d", max_len);
    }
    if (kind != XA_TASK_KIND_CLASSIFICATION && kind != XA_TASK_KIND_TAGGING) {
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
        if (kind == XA_TASK_KIND_TAGGING) {
            e->tags = e->ids + e->len;
            e->word = e->ids + 2 * (size_t)e->len;
            off += 3 * (size_t)e->len;
        } else {
            off += (size_t)e->len;
        }
    }
    if (L->fixed) {
        d->labels = *labels;
    } else {
        st = finish_labels(L, labels);
        if (st) goto fail;
    }
    free(line);
    free(L->ids);
    free(L->tags);
    free(L->word);
    free(L);
    return XA_STATUS_OK;

fail:
    free(line);
    free(L->ids);
    free(L->tags);
    free(L->word);
    free(L);
    xa_task_data_free(d);
    return st;
}

void xa_task_data_free(xa_task_data *d) {
    if (!d) return;
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
    b->lens = malloc((size_t)max_B * sizeof(int32_t));
    b->labels = malloc(N * sizeof(int32_t));
    b->index = malloc((size_t)max_B * sizeof(int32_t));
    if (!b->ids || !b->lens || !b->labels || !b->index) {
        xa_task_batch_free(b);
        return xa_error_set(XA_STATUS_NOMEM, "xa_task_batch_init", NULL, NULL, "out of memory");
    }
    return XA_STATUS_OK;
}

void xa_task_batch_free(xa_task_batch *b) {
    if (!b) return;
    free(b->ids);
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
        b->B = b->T = 0;
        return 0;
    }
    const xa_task_data *d = bt->data;
    const int64_t lo = bt->starts[bt->pos], hi = bt->starts[bt->pos + 1];
    bt->pos++;
    const int B = (int)(hi - lo);
    int T = 0;
    for (int r = 0; r < B; r++) {
        int len = d->ex[bt->order[lo + r]].len;
        if (len > T) T = len;
    }
    XA_ASSERT(B <= b->cap_B && T <= b->cap_T); /* the batch must fit batch_size and max_len */
    const int tagging = d->kind == XA_TASK_KIND_TAGGING;
    b->B = B;
    b->T = T;
    for (int r = 0; r < B; r++) {
        const int32_t i = bt->order[lo + r];
        const xa_task_example *e = &d->ex[i];
        int32_t *ids = b->ids + (size_t)r * T;
        memcpy(ids, e->ids, (size_t)e->len * sizeof *ids);
        for (int t = e->len; t < T; t++)
            ids[t] = bt->pad_id;
        if (tagging) {
            int32_t *lab = b->labels + (size_t)r * T;
            memcpy(lab, e->tags, (size_t)e->len * sizeof *lab);
            for (int t = e->len; t < T; t++)
                lab[t] = TASK_IGNORE;
        } else {
            b->labels[r] = e->label;
        }
        b->lens[r] = e->len;
        b->index[r] = i;
    }
    return 1;
}
