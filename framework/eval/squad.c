/* eval/squad: SQuAD v1.1 answer normalization, exact match and F1 (the official evaluate-v1.1.py,
 * re-implemented over UTF-8), and Hugging Face run_qa's postprocessing of start/end logits
 * (utils_qa.postprocess_qa_predictions, with and without version_2_with_negative) and the
 * official evaluate-v2.0.py scoring of unanswerable questions. See eval.h for the rules and the
 * known differences from Python's Unicode handling.
 *
 * Unicode classes come from glibc's C.UTF-8 locale (newlocale once; towlower_l, iswalnum_l), so
 * the library needs no Unicode tables of its own and no process-wide setlocale; where that locale
 * is missing only ASCII and Latin-1 letters are lower-cased and treated as word characters.
 * Whitespace is Python's str.isspace() list, written out (glibc's iswspace leaves out no-break
 * spaces that Python splits on).
 * Not here: MLQA's per-language normalization; evaluate-v2.0.py's HasAns / NoAns breakdown and
 * its best-threshold search (the threshold is the recipe's). */
#include "eval/eval.h"

#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

static locale_t g_utf8 = (locale_t)0;
static pthread_once_t g_utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_init(void) {
    g_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static locale_t utf8_locale(void) {
    pthread_once(&g_utf8_once, utf8_locale_init);
    return g_utf8;
}

/* One code point from s[0..n) into *cp; returns its bytes (>= 1; a bad byte is itself). */
static size_t next_cp(const char *s, size_t n, uint32_t *cp) {
    size_t k = xa_utf8_char(s, n);
    const unsigned char *u = (const unsigned char *)s;
    if (k == 0 || k == 1) {
        *cp = u[0];
        return 1;
    }
    uint32_t c = u[0] & (0xFFu >> (k + 1));
    for (size_t i = 1; i < k; i++) c = (c << 6) | (u[i] & 0x3Fu);
    *cp = c;
    return k;
}

static size_t put_cp(char *o, uint32_t c) {
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static uint32_t lower_cp(uint32_t c) {
    locale_t l = utf8_locale();
    if (l) return (uint32_t)towlower_l((wint_t)c, l);
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    return c;
}

/* Python's str.isspace() */
static int is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Python's \w on str: alphanumeric or the underscore */
static int is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    locale_t l = utf8_locale();
    if (l) return iswalnum_l((wint_t)c, l) != 0;
    return c >= 0xC0 && c <= 0xFF && c != 0xD7 && c != 0xF7;
}

static int is_ascii_punct(uint32_t c) {
    return c < 0x80 && c > 0x20 && c != 0x7F && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

xa_status xa_squad_normalize(const char *s, size_t n, char **out) {
    *out = NULL;
    /* lower() and remove_punc() as code points (lower-casing at most doubles a UTF-8 length) */
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    char *o = malloc(4 * n + 1);
    if (!cp || !o) {
        free(cp);
        free(o);
        return xa_error_set(XA_STATUS_NOMEM, "xa_squad_normalize", NULL, NULL, "out of memory");
    }
    size_t m = 0;
    for (size_t at = 0; at < n;) {
        uint32_t c;
        at += next_cp(s + at, n - at, &c);
        c = lower_cp(c);
        if (!is_ascii_punct(c)) cp[m++] = c;
    }
    /* remove_articles: \b(a|an|the)\b -> " " (a boundary: the neighbour is not \w, or the end) */
    for (size_t i = 0; i < m; i++) {
        if (i > 0 && is_word(cp[i - 1])) continue;
        size_t k = 0;
        if (cp[i] == 'a') k = i + 1 < m && cp[i + 1] == 'n' && (i + 2 == m || !is_word(cp[i + 2])) ? 2 : 1;
        else if (cp[i] == 't' && i + 2 < m && cp[i + 1] == 'h' && cp[i + 2] == 'e') k = 3;
        if (!k || (i + k < m && is_word(cp[i + k]))) continue;
        cp[i] = ' ';
        for (size_t j = 1; j < k; j++) cp[i + j] = 0; /* dropped */
        i += k - 1;
    }
    /* white_space_fix: ' '.join(text.split()) */
    size_t len = 0;
    int pending = 0;
    for (size_t i = 0; i < m; i++) {
        if (cp[i] == 0) continue;
        if (is_space(cp[i])) {
            pending = len > 0;
            continue;
        }
        if (pending) o[len++] = ' ';
        pending = 0;
        len += put_cp(o + len, cp[i]);
    }
    o[len] = '\0';
    free(cp);
    *out = o;
    return XA_STATUS_OK;
}

double xa_squad_exact(const char *pred, const char *gold) {
    char *a = NULL, *b = NULL;
    double r = -1;
    if (!xa_squad_normalize(pred, strlen(pred), &a) && !xa_squad_normalize(gold, strlen(gold), &b))
        r = strcmp(a, b) == 0;
    free(a);
    free(b);
    return r;
}

/* Split a normalized string (single spaces) into tokens in place: pointers into s. */
static int split_tokens(char *s, char **tok) {
    int n = 0;
    for (char *p = s; *p;) {
        tok[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp) break;
        *sp = '\0';
        p = sp + 1;
    }
    return n;
}

double xa_squad_f1(const char *pred, const char *gold) {
    char *a = NULL, *b = NULL, **ta = NULL, **tb = NULL;
    unsigned char *used = NULL;
    double r = -1;
    if (xa_squad_normalize(pred, strlen(pred), &a) || xa_squad_normalize(gold, strlen(gold), &b)) goto done;
    ta = malloc((strlen(a) / 2 + 2) * sizeof *ta);
    tb = malloc((strlen(b) / 2 + 2) * sizeof *tb);
    used = calloc(strlen(b) / 2 + 2, 1);
    if (!ta || !tb || !used) goto done;
    const int na = split_tokens(a, ta), nb = split_tokens(b, tb);
    int same = 0; /* Counter(pred) & Counter(gold): each gold token matched once */
    for (int i = 0; i < na; i++) {
        for (int j = 0; j < nb; j++) {
            if (!used[j] && strcmp(ta[i], tb[j]) == 0) {
                used[j] = 1;
                same++;
                break;
            }
        }
    }
    if (same == 0) {
        r = 0;
    } else {
        const double p = (double)same / na, rc = (double)same / nb;
        r = 2 * p * rc / (p + rc);
    }
done:
    free(a);
    free(b);
    free(ta);
    free(tb);
    free(used);
    return r;
}

xa_status xa_squad_score(double *em, double *f1, const char *pred, const char *const *golds, int n_gold) {
    *em = *f1 = 0;
    if (n_gold == 0) { /* evaluate-v2.0.py: gold [""]; F1 is 1 only when both are empty */
        char *a = NULL;
        if (xa_squad_normalize(pred, strlen(pred), &a))
            return xa_error_set(XA_STATUS_NOMEM, "xa_squad_score", NULL, NULL, "out of memory");
        *em = *f1 = a[0] == '\0';
        free(a);
        return XA_STATUS_OK;
    }
    for (int i = 0; i < n_gold; i++) {
        const double e = xa_squad_exact(pred, golds[i]), f = xa_squad_f1(pred, golds[i]);
        if (e < 0 || f < 0) return xa_error_set(XA_STATUS_NOMEM, "xa_squad_score", NULL, NULL, "out of memory");
        if (e > *em) *em = e;
        if (f > *f1) *f1 = f;
    }
    return XA_STATUS_OK;
}

/* The k highest of x[0..n) by value (ties: the lower index first) into idx; returns the count. */
static int top_k(int *idx, const float *x, int stride, int n, int k) {
    int m = 0;
    for (int t = 0; t < n; t++) {
        const float v = x[(size_t)t * stride];
        int at = m; /* insertion into the sorted list, after equal values */
        while (at > 0 && x[(size_t)idx[at - 1] * stride] < v) at--;
        if (at >= k) continue;
        if (m < k) m++;
        for (int j = m - 1; j > at; j--) idx[j] = idx[j - 1];
        idx[at] = t;
    }
    return m;
}

int xa_qa_best_span(const xa_qa_window *w, int n_windows, int n_best, int max_answer_length, int32_t *begin,
                    int32_t *end, double *score) {
    XA_ASSERT(n_best >= 1 && max_answer_length >= 1);
    int found = 0;
    double best = 0;
    int *si = malloc(2 * (size_t)n_best * sizeof *si);
    XA_ASSERT(si); /* n_best is small (HF: 20) */
    int *ei = si + n_best;
    for (int f = 0; f < n_windows; f++) {
        const xa_qa_window *x = &w[f];
        const int ns = top_k(si, x->logits, 2, x->len, n_best), ne = top_k(ei, x->logits + 1, 2, x->len, n_best);
        for (int a = 0; a < ns; a++) {
            for (int b = 0; b < ne; b++) {
                const int s = si[a], e = ei[b];
                if (x->offsets[2 * s] < 0 || x->offsets[2 * e] < 0) continue; /* not context tokens */
                if (e < s || e - s + 1 > max_answer_length) continue;
                const double v = (double)x->logits[2 * s] + (double)x->logits[2 * e + 1];
                if (!found || v > best) {
                    found = 1;
                    best = v;
                    *begin = x->offsets[2 * s];
                    *end = x->offsets[2 * e + 1];
                }
            }
        }
    }
    free(si);
    if (found && *end < *begin) *end = *begin; /* a span of empty pieces */
    if (score) *score = found ? best : 0;
    return found;
}

xa_qa_answer xa_qa_postprocess(const xa_qa_window *w, int n_windows, const xa_qa_post *pp, int32_t *begin,
                               int32_t *end, double *score) {
    double span = 0;
    const int found = xa_qa_best_span(w, n_windows, pp->n_best_size, pp->max_answer_length, begin, end, &span);
    if (!pp->version_2_with_negative) {
        if (score) *score = found ? span : 0;
        return found ? XA_QA_ANSWER_SPAN : XA_QA_ANSWER_NONE;
    }
    /* min_null_prediction: the smallest <s> score over the windows (the first on a tie); the
     * sums in float, as HF adds two float32 logits */
    double null = 0;
    for (int f = 0; f < n_windows; f++) {
        const double v = (double)(w[f].logits[0] + w[f].logits[1]);
        if (f == 0 || v < null) null = v;
    }
    if (score) *score = null;
    /* predictions = the n_best highest of prelim + [null] (a stable sort: a span ties ahead of
     * the null, appended last); the best non-null is the best span when it is among them, else
     * the placeholder "empty" (logits 0) */
    const int kept = found && (pp->n_best_size >= 2 || span >= null);
    const double diff = null - (kept ? span : 0.0);
    if (diff > pp->null_score_diff_threshold) return XA_QA_ANSWER_NULL;
    if (kept) {
        if (score) *score = span;
        return XA_QA_ANSWER_SPAN;
    }
    if (score) *score = 0;
    return XA_QA_ANSWER_NONE;
}

xa_status xa_squad_score_v2(double *em, double *f1, const char *pred, const char *const *golds, int n_gold) {
    *em = *f1 = 0;
    char *p = NULL;
    if (xa_squad_normalize(pred, strlen(pred), &p))
        return xa_error_set(XA_STATUS_NOMEM, "xa_squad_score_v2", NULL, NULL, "out of memory");
    int used = 0;
    xa_status st = XA_STATUS_OK;
    for (int i = 0; i < n_gold; i++) {
        char *g = NULL;
        if (xa_squad_normalize(golds[i], strlen(golds[i]), &g)) {
            st = xa_error_set(XA_STATUS_NOMEM, "xa_squad_score_v2", NULL, NULL, "out of memory");
            break;
        }
        const int empty = g[0] == '\0';
        free(g);
        if (empty) continue; /* gold_answers = [a for a in answers if normalize_answer(a)] */
        used++;
        /* compute_f1: a gold with tokens against an empty prediction scores 0 */
        const double e = xa_squad_exact(pred, golds[i]), f = p[0] ? xa_squad_f1(pred, golds[i]) : 0;
        if (e < 0 || f < 0) {
            st = xa_error_set(XA_STATUS_NOMEM, "xa_squad_score_v2", NULL, NULL, "out of memory");
            break;
        }
        if (e > *em) *em = e;
        if (f > *f1) *f1 = f;
    }
    if (!st && !used) *em = *f1 = p[0] == '\0'; /* the gold [""] */
    free(p);
    return st;
}
