/* data/qa: extractive question answering data (see data.h) — SQuAD JSON or the flat HF JSON lines
 * export, every answer checked at its answer_start, and each question encoded into one or more
 * windows ("features") over its context as Hugging Face run_qa.py prepares them
 * (prepare_train_features / prepare_validation_features, tokenizer(question, context,
 * truncation="only_second", stride=doc_stride, return_overflowing_tokens=True,
 * return_offsets_mapping=True)).
 *
 * Decisions:
 *  - Offsets are byte offsets into the context (the tokenizer's spans); answer_start, a code point
 *    offset in the files, is converted once on load. Token spans lose leading and trailing
 *    whitespace (SentencePiece's "▁word" after a space covers the space; HF's offsets with
 *    trim_offsets do not), so an answer read back from a span has no outer spaces.
 *  - The windows follow the tokenizers library's overflow rule (Encoding::truncate with a
 *    stride): window W = max_len - |Q| - specials, step W - stride, the last window ends at the
 *    end of the context.
 *  - HF stops with an error when the question leaves no room for the context or the stride is not
 *    below W; here the question is cut to (max_len - specials) / 2 tokens and the stride lowered to
 *    W - 1, and the load goes on.
 *  - The default stride is HF's 128 at its max_seq_length 384, scaled: min(128, max_len / 3).
 *  - An unanswerable question (is_impossible, or no answers) trains to <s> for start and end,
 *    as HF does for SQuAD 2.0; scoring it is eval/squad.c's business.
 * Not here: the question and context keys are fixed (id, question, context, answers), SQuAD 2.0's
 * plausible_answers are ignored, and only the first answer is a training target (as HF).
 */
#include "data/data.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QA_MIN_LEN 8 /* <s> q </s></s> c </s> with room to spare */

int64_t xa_qa_char_to_byte(const char *s, size_t n, int64_t chars) {
    size_t at = 0;
    for (int64_t c = 0; c < chars; c++) {
        if (at >= n) return -1;
        size_t k = xa_utf8_char(s + at, n - at);
        at += k ? k : 1;
    }
    return at <= n ? (int64_t)at : -1;
}

int64_t xa_qa_byte_to_char(const char *s, size_t n) {
    int64_t c = 0;
    for (size_t at = 0; at < n; c++) {
        size_t k = xa_utf8_char(s + at, n - at);
        at += k ? k : 1;
    }
    return c;
}

/* ---- the loader's state ---------------------------------------------------------------------- */

typedef struct qa_loader {
    xa_task_data *d;
    const xa_tok *tok;
    xa_tok_special sp;
    int max_len, stride, bert;
    size_t ex_cap, qa_cap;
    int squad;   /* 1: SQuAD JSON (places are JSON paths), 0: JSON lines (places are lines) */
    int unlabelled; /* questions without "answers" are read as having none (prediction input) */
    int64_t line;
    char place[160]; /* SQuAD: "data[i].paragraphs[j].qas[k]" */
} qa_loader;

static xa_status nomem(void) {
    return xa_error_set(XA_STATUS_NOMEM, "xa_qa_data_load", NULL, NULL, "out of memory");
}

/* A CONFIG error at the current place: "path:LINE" or "path: data[i]...". */
static xa_status qa_error(const qa_loader *L, const char *expected, const char *hint, const char *fmt, ...)
    XA_PRINTF(4, 5);
static xa_status qa_error(const qa_loader *L, const char *expected, const char *hint, const char *fmt, ...) {
    char what[XA_ERROR_FIELD], where[XA_ERROR_FIELD];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *p = L->d->path;
    size_t n = strlen(p);
    const int room = (int)sizeof where - 200; /* the place keeps its room; the path keeps its tail */
    const char *dots = (int)n > room ? "..." : "";
    if ((int)n > room) p += n - (size_t)room;
    if (L->squad)
        snprintf(where, sizeof where, "%s%.*s: %.160s", dots, room, p, L->place);
    else
        snprintf(where, sizeof where, "%s%.*s:%lld", dots, room, p, (long long)L->line);
    return xa_error_set(XA_STATUS_CONFIG, where, expected, hint, "%s", what);
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void qa_example_free(xa_qa_example *q) {
    free(q->id);
    free(q->question);
    free(q->context);
    for (int i = 0; i < q->n_answers; i++) free(q->answers ? q->answers[i] : NULL);
    free(q->answers);
    free(q->answer_start);
    memset(q, 0, sizeof *q);
}

/* ---- encoding -------------------------------------------------------------------------------- */

static xa_status pool_reserve(xa_task_data *d, size_t need) {
    if (need <= d->pool_cap) return XA_STATUS_OK;
    size_t n = d->pool_cap ? d->pool_cap : 1 << 16;
    while (n < need) n *= 2;
    int32_t *p = realloc(d->pool, n * sizeof *p);
    if (!p) return nomem();
    d->pool = p;
    d->pool_cap = n;
    return XA_STATUS_OK;
}

/* Tokens of text without specials, with byte spans (check mode: one piece over the trimmed text). */
static xa_status encode(const qa_loader *L, const char *text, size_t len, int32_t **ids, xa_spm_span **sp,
                        size_t *n) {
    *ids = NULL;
    *sp = NULL;
    *n = 0;
    if (L->tok) {
        xa_status st = xa_tok_encode_offsets(L->tok, text, len, 0, ids, sp, n);
        if (st) {
            xa_error_prefix("%s", L->d->path);
            return st;
        }
    } else {
        *ids = malloc(sizeof **ids);
        *sp = malloc(sizeof **sp);
        if (!*ids || !*sp) {
            free(*ids);
            free(*sp);
            *ids = NULL;
            *sp = NULL;
            return nomem();
        }
        (*ids)[0] = L->sp.unk;
        (*sp)[0].begin = 0;
        (*sp)[0].end = len;
        *n = 1;
    }
    for (size_t i = 0; i < *n; i++) { /* trim whitespace from each span */
        size_t b = (*sp)[i].begin, e = (*sp)[i].end;
        while (b < e && is_space(text[b])) b++;
        while (e > b && is_space(text[e - 1])) e--;
        (*sp)[i].begin = b;
        (*sp)[i].end = e;
    }
    return XA_STATUS_OK;
}

/* The windows of question q (its index qi) as features. */
static xa_status add_features(qa_loader *L, xa_qa_example *q, int qi) {
    xa_task_data *d = L->d;
    const char *qs = q->question;
    while (is_space(*qs)) qs++; /* HF: examples["question"].lstrip() */
    int32_t *qid = NULL, *cid = NULL;
    xa_spm_span *qsp = NULL, *csp = NULL;
    size_t nq = 0, nc = 0;
    xa_status st = encode(L, qs, strlen(qs), &qid, &qsp, &nq);
    if (!st) st = encode(L, q->context, q->context_len, &cid, &csp, &nc);
    if (st) goto done;
    if (nq == 0 || nc == 0) {
        st = qa_error(L, "a question and a context with text", NULL, "the %s encodes to no tokens",
                      nq == 0 ? "question" : "context");
        goto done;
    }
    const int specials = L->bert ? 3 : 4;
    const size_t q_max = (size_t)(L->max_len - specials) / 2;
    if (nq > q_max) nq = q_max;
    const size_t W = (size_t)L->max_len - (size_t)specials - nq;
    const size_t stride = (size_t)L->stride < W ? (size_t)L->stride : W - 1;
    /* the first answer in bytes (training target) */
    const int answered = q->n_answers > 0 && !q->is_impossible;
    const int64_t a_begin = answered ? q->answer_start[0] : 0,
                  a_end = answered ? a_begin + (int64_t)strlen(q->answers[0]) : 0;
    q->first_feature = d->n;
    q->n_features = 0;
    for (size_t start = 0;; start += W - stride) {
        const size_t stop = start + W < nc ? start + W : nc, len = (size_t)specials + nq + (stop - start);
        if ((size_t)d->n == L->ex_cap) {
            size_t cap = L->ex_cap ? 2 * L->ex_cap : 1024;
            xa_task_example *ex = realloc(d->ex, cap * sizeof *ex);
            if (!ex) {
                st = nomem();
                goto done;
            }
            d->ex = ex;
            L->ex_cap = cap;
        }
        if ((st = pool_reserve(d, d->pool_n + 4 * len))) goto done;
        int32_t *ids = d->pool + d->pool_n, *types = ids + len, *off = types + len;
        size_t k = 0;
        ids[k++] = L->sp.cls;
        memcpy(ids + k, qid, nq * sizeof *ids);
        k += nq;
        ids[k++] = L->sp.sep;
        if (!L->bert) ids[k++] = L->sp.sep;
        const size_t c0 = k; /* the window's first context token */
        memcpy(ids + k, cid + start, (stop - start) * sizeof *ids);
        k += stop - start;
        ids[k++] = L->sp.sep;
        XA_ASSERT(k == len);
        for (size_t t = 0; t < len; t++) {
            types[t] = L->bert && t >= c0; /* BERT: segment 1 from the context to the last [SEP] */
            const int ctx = t >= c0 && t < c0 + (stop - start);
            off[2 * t] = ctx ? (int32_t)csp[start + t - c0].begin : -1;
            off[2 * t + 1] = ctx ? (int32_t)csp[start + t - c0].end : -1;
        }
        /* the target: HF's walk, kept inside the window's context tokens */
        int32_t s_tok = 0, e_tok = 0;
        const size_t c1 = c0 + (stop - start) - 1; /* the window's last context token */
        if (answered && off[2 * c0] <= a_begin && off[2 * c1 + 1] >= a_end) {
            size_t ts = c0, te = c1;
            while (ts <= c1 && off[2 * ts] <= a_begin) ts++;
            while (te >= c0 && off[2 * te + 1] >= a_end) te--;
            s_tok = (int32_t)(ts - 1);
            e_tok = (int32_t)(te + 1);
            if (e_tok < s_tok) e_tok = s_tok; /* an answer inside one token's trimmed span */
        }
        d->pool_n += 4 * len;
        xa_task_example *e = &d->ex[d->n++];
        memset(e, 0, sizeof *e);
        e->len = (int)len;
        e->n_choices = 1;
        e->label = s_tok;
        e->start = s_tok;
        e->end = e_tok;
        e->qa_index = qi;
        e->line = q->line;
        q->n_features++;
        if (stop == nc) break;
    }
    d->n_truncated += q->n_features > 1;
done:
    free(qid);
    free(qsp);
    free(cid);
    free(csp);
    return st;
}

/* ---- reading --------------------------------------------------------------------------------- */

/* A non-empty string member, or an error naming it. */
static xa_status get_text(const qa_loader *L, const json_t *o, const char *key, int required, const char **s,
                          size_t *n) {
    json_t *v = json_object_get(o, key);
    *s = NULL;
    *n = 0;
    if (!v && !required) return XA_STATUS_OK;
    if (!json_is_string(v))
        return qa_error(L, "a string", NULL, v ? "\"%s\" is not a string" : "no \"%s\" key", key);
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (required && strspn(*s, " \t\r\n") == *n) return qa_error(L, "a non-empty string", NULL, "empty %s", key);
    if (memchr(*s, '\0', *n)) return qa_error(L, "UTF-8 text", NULL, "NUL character in %s", key);
    return XA_STATUS_OK;
}

/* Check one answer against the context and store it (answer_start: code points). */
static xa_status add_answer(qa_loader *L, xa_qa_example *q, const json_t *text, const json_t *start, int i) {
    if (!json_is_string(text) || json_string_length(text) == 0)
        return qa_error(L, "answers with a non-empty text", NULL, "answer %d: text is %s", i,
                        json_is_string(text) ? "empty" : text ? "not a string" : "missing");
    if (!json_is_integer(start) || json_integer_value(start) < 0)
        return qa_error(L, "answers with an answer_start >= 0 (characters into the context)", NULL,
                        "answer %d: answer_start is %s", i, start ? "not an integer >= 0" : "missing");
    const char *t = json_string_value(text);
    const size_t tn = json_string_length(text);
    const int64_t c = json_integer_value(start), b = xa_qa_char_to_byte(q->context, q->context_len, c);
    if (b < 0 || (size_t)b + tn > q->context_len || memcmp(q->context + b, t, tn) != 0) {
        char got[64] = "";
        if (b >= 0) { /* what the context holds there, cut at a character boundary */
            size_t k = 0, m = q->context_len - (size_t)b;
            while (k < m && k < tn && k < 40) {
                size_t w = xa_utf8_char(q->context + b + k, m - k);
                if (k + (w ? w : 1) > 40) break;
                k += w ? w : 1;
            }
            snprintf(got, sizeof got, "%.*s", (int)k, q->context + b);
        }
        return qa_error(L, "answer_start: the character offset of the answer text in the context",
                        "answer_start counts characters (code points), not bytes",
                        "answer %d '%.60s' is not at answer_start %lld (the context %s%s%s)", i, t, (long long)c,
                        b < 0 ? "is shorter" : got[0] ? "has '" : "ends there", got, got[0] ? "' there" : "");
    }
    q->answers[q->n_answers] = dup_n(t, tn);
    if (!q->answers[q->n_answers]) return nomem();
    q->answer_start[q->n_answers++] = (int32_t)b;
    return XA_STATUS_OK;
}

/* A question from its JSON object (qa) and context; answers as a list of {text, answer_start} or
 * HF's {text: [...], answer_start: [...]}. */
static xa_status add_question(qa_loader *L, const json_t *qa, const char *ctx, size_t ctx_len) {
    xa_task_data *d = L->d;
    const char *id = NULL, *question = NULL;
    size_t idn = 0, qn = 0;
    xa_status st = get_text(L, qa, "question", 1, &question, &qn);
    if (st) return st;
    json_t *jid = json_object_get(qa, "id");
    char num[32];
    if (json_is_integer(jid)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(jid));
        id = num;
        idn = strlen(num);
    } else if (jid && (st = get_text(L, qa, "id", 0, &id, &idn))) {
        return st;
    }
    json_t *imp = json_object_get(qa, "is_impossible");
    if (imp && !json_is_boolean(imp)) return qa_error(L, "is_impossible: true or false", NULL, "is_impossible is not a boolean");
    json_t *ans = json_object_get(qa, "answers");
    json_t *texts = NULL, *starts = NULL;
    size_t n_ans = 0;
    if (json_is_array(ans)) {
        n_ans = json_array_size(ans);
    } else if (json_is_object(ans)) {
        texts = json_object_get(ans, "text");
        starts = json_object_get(ans, "answer_start");
        if (!json_is_array(texts) || !json_is_array(starts) || json_array_size(texts) != json_array_size(starts))
            return qa_error(L, "answers: {\"text\": [strings], \"answer_start\": [integers]} of one length", NULL,
                            "answers' text and answer_start are not two lists of one length");
        n_ans = json_array_size(texts);
    } else if (ans) {
        return qa_error(L, "answers: a list of {\"text\", \"answer_start\"} or {\"text\": [...], \"answer_start\": [...]}",
                        NULL, "answers is neither a list nor an object");
    } else if (!json_is_true(imp) && !L->unlabelled) {
        return qa_error(L, "an \"answers\" key", "SQuAD 2.0 marks a question without answer with is_impossible",
                        "no \"answers\" key");
    }
    if (d->n_qa == (int)L->qa_cap) {
        size_t cap = L->qa_cap ? 2 * L->qa_cap : 256;
        xa_qa_example *qq = realloc(d->qa, cap * sizeof *qq);
        if (!qq) return nomem();
        d->qa = qq;
        L->qa_cap = cap;
    }
    xa_qa_example *q = &d->qa[d->n_qa];
    memset(q, 0, sizeof *q);
    q->id = dup_n(id ? id : "", idn);
    q->question = dup_n(question, qn);
    q->context = dup_n(ctx, ctx_len);
    q->context_len = ctx_len;
    q->answers = calloc(n_ans ? n_ans : 1, sizeof *q->answers);
    q->answer_start = calloc(n_ans ? n_ans : 1, sizeof *q->answer_start);
    q->is_impossible = json_is_true(imp);
    q->line = L->line;
    if (!q->id || !q->question || !q->context || !q->answers || !q->answer_start) {
        qa_example_free(q);
        return nomem();
    }
    d->n_qa++; /* owned by d from here: freed with it on error */
    if (!q->is_impossible) {
        for (size_t i = 0; !st && i < n_ans; i++) {
            if (texts) {
                st = add_answer(L, q, json_array_get(texts, i), json_array_get(starts, i), (int)i);
            } else {
                const json_t *a = json_array_get(ans, i);
                if (!json_is_object(a))
                    st = qa_error(L, "answers: a list of {\"text\", \"answer_start\"} objects", NULL,
                                  "answer %zu is not an object", i);
                else
                    st = add_answer(L, q, json_object_get(a, "text"), json_object_get(a, "answer_start"), (int)i);
            }
        }
    }
    return st ? st : add_features(L, q, d->n_qa - 1);
}

static xa_status read_squad(qa_loader *L, json_t *root) {
    L->squad = 1;
    json_t *data = json_object_get(root, "data");
    snprintf(L->place, sizeof L->place, "data");
    if (!json_is_array(data)) return qa_error(L, "SQuAD JSON: {\"data\": [articles]}", NULL, "\"data\" is not a list");
    xa_status st = XA_STATUS_OK;
    for (size_t i = 0; !st && i < json_array_size(data); i++) {
        json_t *art = json_array_get(data, i), *paras = json_object_get(art, "paragraphs");
        snprintf(L->place, sizeof L->place, "data[%zu].paragraphs", i);
        if (!json_is_array(paras)) {
            st = qa_error(L, "an article {\"title\", \"paragraphs\": [...]}", NULL, "no list \"paragraphs\"");
            break;
        }
        for (size_t j = 0; !st && j < json_array_size(paras); j++) {
            json_t *p = json_array_get(paras, j), *qas = json_object_get(p, "qas");
            const char *ctx = NULL;
            size_t cn = 0;
            snprintf(L->place, sizeof L->place, "data[%zu].paragraphs[%zu]", i, j);
            if (!json_is_object(p)) {
                st = qa_error(L, "a paragraph {\"context\", \"qas\": [...]}", NULL, "not an object");
                break;
            }
            if ((st = get_text(L, p, "context", 1, &ctx, &cn))) break;
            if (!json_is_array(qas)) {
                st = qa_error(L, "a paragraph {\"context\", \"qas\": [...]}", NULL, "no list \"qas\"");
                break;
            }
            for (size_t k = 0; !st && k < json_array_size(qas); k++) {
                json_t *qa = json_array_get(qas, k);
                snprintf(L->place, sizeof L->place, "data[%zu].paragraphs[%zu].qas[%zu]", i, j, k);
                L->line = L->d->n_qa + 1;
                st = json_is_object(qa) ? add_question(L, qa, ctx, cn)
                                        : qa_error(L, "a question {\"id\", \"question\", \"answers\"}", NULL,
                                                   "not an object");
            }
        }
    }
    return st;
}

static xa_status read_lines(qa_loader *L, const char *buf, size_t n) {
    L->squad = 0;
    xa_status st = XA_STATUS_OK;
    L->line = 0;
    for (size_t at = 0; !st && at < n;) {
        const char *nl = memchr(buf + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (buf + at)) : n - at;
        const char *s = buf + at;
        at += len + (nl != NULL);
        L->line++;
        if (L->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            len -= 3;
        }
        while (len && (s[len - 1] == '\r' || is_space(s[len - 1]))) len--;
        size_t lead = 0;
        while (lead < len && is_space(s[lead])) lead++;
        if (lead == len) continue;
        json_error_t jerr;
        json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        const char *expected = "one JSON object per line {\"id\", \"context\", \"question\", \"answers\": "
                               "{\"text\": [...], \"answer_start\": [...]}}";
        if (!o) {
            st = qa_error(L, expected, NULL, "bad JSON at column %d: %s", jerr.column, jerr.text);
        } else if (!json_is_object(o)) {
            st = qa_error(L, expected, NULL, "not a JSON object");
        } else {
            const char *ctx = NULL;
            size_t cn = 0;
            st = get_text(L, o, "context", 1, &ctx, &cn);
            if (!st) st = add_question(L, o, ctx, cn);
        }
        json_decref(o);
    }
    return st;
}

/* xa_qa_data_load, or with text (not NULL) the file's contents text[0..text_len) named path. */
static xa_status qa_load(xa_task_data *d, const xa_tok *tok, const char *path, const xa_task_input *in, int max_len,
                         const char *text, size_t text_len, int unlabelled) {
    memset(d, 0, sizeof *d);
    if (!path || !in)
        return xa_error_set(XA_STATUS_USAGE, "xa_qa_data_load", "a path and an input description", NULL, "NULL argument");
    if (max_len < QA_MIN_LEN || in->doc_stride < 0)
        return xa_error_set(XA_STATUS_USAGE, "xa_qa_data_load", "max_len >= 8 and doc_stride >= 0", NULL,
                            "max_len %d, doc_stride %d", max_len, in->doc_stride);
    d->kind = XA_TASK_KIND_QA;
    d->n_choices = 1;
    snprintf(d->path, sizeof d->path, "%s", path);
    xa_status st = XA_STATUS_OK;
    qa_loader L;
    memset(&L, 0, sizeof L);
    L.d = d;
    L.tok = tok;
    if (tok) {
        L.sp = xa_tok_special_ids(tok);
    } else { /* check mode: the XLM-R ids */
        L.sp.cls = 0;
        L.sp.pad = 1;
        L.sp.sep = 2;
        L.sp.unk = 3;
        L.sp.mask = -1;
    }
    L.max_len = max_len;
    L.bert = in->bert_pairs != 0;
    L.stride = in->doc_stride > 0 ? in->doc_stride : (max_len / 3 < 128 ? max_len / 3 : 128);
    d->doc_stride = L.stride;
    L.unlabelled = unlabelled;
    /* the whole file: SQuAD JSON is one document */
    FILE *f = text ? fmemopen((void *)text, text_len, "rb") : fopen(path, "rb");
    if (!f)
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, "check the task data path",
                            "cannot open QA data: %s", strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t c2 = cap ? 2 * cap : 1 << 16;
            char *b2 = realloc(buf, c2 + 1);
            if (!b2) {
                st = nomem();
                break;
            }
            buf = b2;
            cap = c2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!st && ferror(f)) st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "read error: %s", strerror(errno));
    fclose(f);
    if (!st) {
        buf[n] = '\0';
        json_t *root = NULL;
        size_t lead = 0;
        while (lead < n && is_space(buf[lead])) lead++;
        if (lead < n && buf[lead] == '{') { /* one document with "data"? (JSON lines' first object is not) */
            json_error_t jerr;
            root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
            if (root && !(json_is_object(root) && json_object_get(root, "data"))) {
                json_decref(root);
                root = NULL;
            }
        }
        st = root ? read_squad(&L, root) : read_lines(&L, buf, n);
        json_decref(root);
    }
    free(buf);
    if (!st && d->n_qa == 0) {
        L.squad = 0;
        L.line = 0;
        st = xa_error_set(XA_STATUS_CONFIG, path, "at least one question", "is the file empty?", "no questions");
    }
    if (st) {
        xa_task_data_free(d);
        return st;
    }
    size_t off = 0;
    for (int i = 0; i < d->n; i++) { /* the pool is final: point the features into it */
        xa_task_example *e = &d->ex[i];
        e->ids = d->pool + off;
        e->types = e->ids + e->len;
        e->offsets = e->types + e->len;
        off += 4 * (size_t)e->len;
    }
    d->labels.n = 2;
    snprintf(d->labels.names[0], sizeof d->labels.names[0], "start");
    snprintf(d->labels.names[1], sizeof d->labels.names[1], "end");
    return XA_STATUS_OK;
}

xa_status xa_qa_data_load(xa_task_data *d, const xa_tok *tok, const char *path, const xa_task_input *in, int max_len) {
    return qa_load(d, tok, path, in, max_len, NULL, 0, 0);
}

xa_status xa_qa_data_load_text(xa_task_data *d, const xa_tok *tok, const char *name, const char *text, size_t n,
                               const xa_task_input *in, int max_len, int unlabelled) {
    if (!text) {
        memset(d, 0, sizeof *d);
        return xa_error_set(XA_STATUS_USAGE, "xa_qa_data_load_text", "a text", NULL, "NULL argument");
    }
    if (n == 0) { /* fmemopen needs a byte: an empty text reads as one empty line */
        text = "\n";
        n = 1;
    }
    return qa_load(d, tok, name, in, max_len, text, n, unlabelled);
}

void xa_qa_data_free_questions(xa_task_data *d) {
    for (int i = 0; i < d->n_qa; i++) qa_example_free(&d->qa[i]);
    free(d->qa);
    d->qa = NULL;
    d->n_qa = 0;
}
