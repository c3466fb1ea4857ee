/* eval/metrics: the scores of the zero-shot transfer tables.
 *
 * Implements:
 *  - classification accuracy and macro-F1 with scikit-learn's semantics for
 *    f1_score(average="macro", labels=sorted(set(y_true))): the labels averaged over are those that
 *    occur in the gold labels, so every setup scored on one test file averages over the same class
 *    set (with the union of gold and predicted labels, a zero-shot head that predicts a class the
 *    language's test set lacks would average over one class more than an in-language head that
 *    never saw it); a prediction of such a class still costs the gold class its recall. A label's
 *    F1 is 2PR / (P + R), written here as the equivalent 2 tp / (2 tp + fp + fn), and 0 where it is
 *    undefined (zero_division=0);
 *  - span-level precision / recall / F1 for tagging, following conlleval.pl (CoNLL-2000 shared
 *    task script) and seqeval's default (non-strict) mode, which copies it: a chunk is a maximal
 *    run B-X I-X ...; an I-X after O or after a tag of another type starts a chunk; a chunk is
 *    correct when gold and prediction have the same type, start and end. The counting is
 *    conlleval's streaming automaton (startOfChunk / endOfChunk and the "inCorrect" flag), so no
 *    span list is built and nothing is allocated. It also understands the E- and S- tags of IOBES
 *    the way conlleval does, which costs nothing.
 *
 * Does not: weight labels (no "weighted"/"micro" averages), do seqeval's strict (IOB2 scheme) mode,
 * or parse conlleval's "[" / "]" chunk brackets. Label ids out of range are programmer errors
 * (always-on assertions): the heads produce ids by argmax and the data module validates gold ids.
 */
#include "eval/eval.h"

#include <stdlib.h>
#include <string.h>

/* ---- classification ------------------------------------------------------------------------- */

/* 2 tp / (2 tp + fp + fn), the F1 of one label; 0 when the label has no tp, fp or fn. */
static double label_f1(int64_t tp, int64_t fp, int64_t fn) {
    int64_t den = 2 * tp + fp + fn;
    return den > 0 ? (double)(2 * tp) / (double)den : 0.0;
}

void xa_metrics_classification(xa_cls_metrics *out, const int32_t *gold, const int32_t *pred,
                               int64_t n, int n_labels) {
    XA_ASSERT(out != NULL);
    XA_ASSERT(n >= 0 && n_labels >= 0);
    XA_ASSERT(n == 0 || (gold != NULL && pred != NULL));
    out->n = n;
    out->accuracy = 0.0;
    out->macro_f1 = 0.0;
    if (n == 0) return;

    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        XA_ASSERT(gold[i] >= 0 && gold[i] < n_labels);
        XA_ASSERT(pred[i] >= 0 && pred[i] < n_labels);
        correct += gold[i] == pred[i];
    }
    out->accuracy = (double)correct / (double)n;

    /* Per-label tallies in one pass: tp[l], fp[l] (predicted l, gold other), fn[l] (gold l,
     * predicted other). If the tally buffer cannot be allocated, fall back to one pass per label
     * (O(n * n_labels), no memory) rather than fail a function that has no error path. */
    int64_t *tally = calloc((size_t)n_labels * 3, sizeof *tally); /* (3, n_labels) */
    double sum = 0.0;
    int present = 0;
    if (tally) {
        int64_t *tp = tally, *fp = tally + n_labels, *fn = tally + 2 * (size_t)n_labels;
        for (int64_t i = 0; i < n; i++) {
            if (gold[i] == pred[i]) {
                tp[gold[i]]++;
            } else {
                fp[pred[i]]++;
                fn[gold[i]]++;
            }
        }
        for (int l = 0; l < n_labels; l++) {
            if (tp[l] + fn[l] == 0) continue; /* absent from the gold labels */
            sum += label_f1(tp[l], fp[l], fn[l]);
            present++;
        }
        free(tally);
    } else {
        for (int l = 0; l < n_labels; l++) {
            int64_t tp = 0, fp = 0, fn = 0;
            for (int64_t i = 0; i < n; i++) {
                tp += gold[i] == l && pred[i] == l;
                fp += gold[i] != l && pred[i] == l;
                fn += gold[i] == l && pred[i] != l;
            }
            if (tp + fn == 0) continue;
            sum += label_f1(tp, fp, fn);
            present++;
        }
    }
    out->macro_f1 = present > 0 ? sum / present : 0.0;
}

/* ---- tagging (BIO spans) --------------------------------------------------------------------- */

/* A tag split as conlleval splits it: the prefix letter ('B', 'I', 'E', 'S' or 'O') and the type
 * after the first '-' ("" for O). A name that is not "O" and has no recognised "P-" prefix counts
 * as O. */
typedef struct tag {
    char prefix;
    const char *type;
} tag;

static tag tag_parse(const char *name) {
    tag t = {'O', ""};
    if (name[0] != '\0' && name[1] == '-' && strchr("BIES", name[0]) != NULL) {
        t.prefix = name[0];
        t.type = name + 2;
    }
    return t;
}

static int same_type(tag a, tag b) {
    return strcmp(a.type, b.type) == 0;
}

/* conlleval endOfChunk: does a chunk end between `prev` and `cur`? */
static int chunk_ends(tag prev, tag cur) {
    char p = prev.prefix, c = cur.prefix;
    if (p == 'E' || p == 'S') return 1;
    if ((p == 'B' || p == 'I') && (c == 'B' || c == 'S' || c == 'O')) return 1;
    if (p != 'O' && !same_type(prev, cur)) return 1;
    return 0;
}

/* conlleval startOfChunk: does a chunk start at `cur`? */
static int chunk_starts(tag prev, tag cur) {
    char p = prev.prefix, c = cur.prefix;
    if (c == 'B' || c == 'S') return 1;
    if ((p == 'E' || p == 'S' || p == 'O') && (c == 'E' || c == 'I')) return 1;
    if (c != 'O' && !same_type(prev, cur)) return 1;
    return 0;
}

/* The conlleval automaton over one sentence. Adds the totals into c (may be NULL) and, with
 * type_of (tag id -> entity type index, -1 for O), the per-type chunk counts into tg (gold), tp
 * (predicted) and tc (correct). */
static void span_walk(xa_span_counts *c, int64_t *tg, int64_t *tp, int64_t *tc, const int *type_of,
                      const int32_t *gold, const int32_t *pred, int n, const char (*names)[64], int n_labels) {
    XA_ASSERT(n >= 0);
    XA_ASSERT(n == 0 || (gold != NULL && pred != NULL && names != NULL));
    const tag outside = {'O', ""};
    tag prev_g = outside, prev_p = outside;
    int32_t prev_gid = -1;
    int in_correct = 0; /* gold and predicted chunks started together, same type, still in step */

    /* Position n is a sentinel O: it closes the chunks still open at the end of the sentence, as
     * conlleval's sentence-boundary line does. */
    for (int i = 0; i <= n; i++) {
        tag g = outside, p = outside;
        if (i < n) {
            XA_ASSERT(gold[i] >= 0 && gold[i] < n_labels);
            XA_ASSERT(pred[i] >= 0 && pred[i] < n_labels);
            g = tag_parse(names[gold[i]]);
            p = tag_parse(names[pred[i]]);
        }
        int end_g = chunk_ends(prev_g, g), end_p = chunk_ends(prev_p, p);
        int start_g = chunk_starts(prev_g, g), start_p = chunk_starts(prev_p, p);

        if (in_correct) {
            if (end_g && end_p && same_type(prev_g, prev_p)) {
                in_correct = 0;
                if (c) c->n_correct++;
                if (type_of) tc[type_of[prev_gid]]++; /* the chunk that closed, of prev_g's type */
            } else if (end_g != end_p || !same_type(g, p)) {
                in_correct = 0;
            }
        }
        if (start_g && start_p && same_type(g, p)) in_correct = 1;
        if (c) {
            c->n_gold += start_g;
            c->n_pred += start_p;
            if (i < n) {
                c->n_tokens++;
                c->n_tokens_correct += gold[i] == pred[i];
            }
        }
        /* a chunk starts only at a tag with a type (never at O or the sentinel) */
        if (type_of && start_g) tg[type_of[gold[i]]]++;
        if (type_of && start_p) tp[type_of[pred[i]]]++;
        prev_g = g;
        prev_p = p;
        prev_gid = i < n ? gold[i] : -1;
    }
}

void xa_span_count(xa_span_counts *c, const int32_t *gold, const int32_t *pred, int n,
                   const char (*names)[64], int n_labels) {
    XA_ASSERT(c != NULL);
    span_walk(c, NULL, NULL, NULL, NULL, gold, pred, n, names, n_labels);
}

void xa_span_finish(xa_span_metrics *out, const xa_span_counts *c) {
    XA_ASSERT(out != NULL && c != NULL);
    out->counts = *c;
    out->precision = c->n_pred > 0 ? (double)c->n_correct / (double)c->n_pred : 0.0;
    out->recall = c->n_gold > 0 ? (double)c->n_correct / (double)c->n_gold : 0.0;
    double pr = out->precision + out->recall;
    out->f1 = pr > 0 ? 2.0 * out->precision * out->recall / pr : 0.0;
    out->token_accuracy =
        c->n_tokens > 0 ? (double)c->n_tokens_correct / (double)c->n_tokens : 0.0;
}

/* ---- per-class reports ------------------------------------------------------------------------ */

void xa_class_report_free(xa_class_report *r) {
    if (!r) return;
    free(r->names);
    free(r->confusion);
    free(r->n_gold);
    free(r->n_pred);
    free(r->n_correct);
    free(r->type_of);
    memset(r, 0, sizeof *r);
}

/* Allocate the arrays of r for n classes (r->n, r->tagging set). */
static xa_status report_alloc(xa_class_report *r) {
    const size_t n = (size_t)(r->n ? r->n : 1);
    r->names = calloc(n, sizeof *r->names);
    r->n_gold = calloc(n, sizeof *r->n_gold);
    r->n_pred = calloc(n, sizeof *r->n_pred);
    r->n_correct = calloc(n, sizeof *r->n_correct);
    if (!r->tagging) r->confusion = calloc(n * n, sizeof *r->confusion);
    if (!r->names || !r->n_gold || !r->n_pred || !r->n_correct || (!r->tagging && !r->confusion)) {
        xa_class_report_free(r);
        return xa_error_set(XA_STATUS_NOMEM, "xa_class_report_init", NULL, NULL, "out of memory");
    }
    return XA_STATUS_OK;
}

xa_status xa_class_report_init(xa_class_report *r, int tagging, const char (*labels)[64], int n_labels) {
    XA_ASSERT(r != NULL);
    memset(r, 0, sizeof *r);
    if (n_labels < 0 || (n_labels > 0 && !labels))
        return xa_error_set(XA_STATUS_USAGE, "xa_class_report_init", "a label list", NULL, "%d labels", n_labels);
    r->tagging = tagging != 0;
    if (!r->tagging) {
        r->n = n_labels;
        xa_status st = report_alloc(r);
        for (int i = 0; !st && i < n_labels; i++) snprintf(r->names[i], sizeof r->names[i], "%s", labels[i]);
        return st;
    }
    /* tagging: the entity types, in the order their first tag appears (xadapt's label sets list
     * "O" and then B-/I- pairs by sorted type, so the types come sorted) */
    r->n_labels = n_labels;
    r->type_of = malloc((size_t)(n_labels ? n_labels : 1) * sizeof *r->type_of);
    char (*types)[64] = calloc((size_t)(n_labels ? n_labels : 1), sizeof *types);
    if (!r->type_of || !types) {
        free(types);
        xa_class_report_free(r);
        return xa_error_set(XA_STATUS_NOMEM, "xa_class_report_init", NULL, NULL, "out of memory");
    }
    int nt = 0;
    for (int i = 0; i < n_labels; i++) {
        tag t = tag_parse(labels[i]);
        r->type_of[i] = -1;
        if (t.prefix == 'O') continue;
        for (int k = 0; k < nt && r->type_of[i] < 0; k++)
            if (!strcmp(types[k], t.type)) r->type_of[i] = k;
        if (r->type_of[i] < 0) {
            snprintf(types[nt], sizeof types[nt], "%s", t.type);
            r->type_of[i] = nt++;
        }
    }
    int *type_of = r->type_of;
    r->type_of = NULL;
    r->n = nt;
    xa_status st = report_alloc(r); /* frees r's arrays on failure: type_of is held aside */
    if (!st) {
        memcpy(r->names, types, (size_t)nt * sizeof *types);
        r->type_of = type_of;
        r->n_labels = n_labels;
    } else {
        free(type_of);
    }
    free(types);
    return st;
}

void xa_class_report_add(xa_class_report *r, const int32_t *gold, const int32_t *pred, int64_t n) {
    XA_ASSERT(r != NULL && !r->tagging);
    XA_ASSERT(n == 0 || (gold != NULL && pred != NULL));
    for (int64_t i = 0; i < n; i++) {
        XA_ASSERT(gold[i] >= 0 && gold[i] < r->n && pred[i] >= 0 && pred[i] < r->n);
        r->confusion[(size_t)gold[i] * r->n + pred[i]]++;
        r->n_gold[gold[i]]++;
        r->n_pred[pred[i]]++;
        r->n_correct[gold[i]] += gold[i] == pred[i];
    }
}

void xa_class_report_add_spans(xa_class_report *r, const int32_t *gold, const int32_t *pred, int n,
                               const char (*names)[64]) {
    XA_ASSERT(r != NULL && r->tagging);
    span_walk(NULL, r->n_gold, r->n_pred, r->n_correct, r->type_of, gold, pred, n, names, r->n_labels);
}

static int same_classes(const xa_class_report *a, const xa_class_report *b) {
    if (a->tagging != b->tagging || a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i])) return 0;
    return 1;
}

xa_status xa_class_report_copy(xa_class_report *dst, const xa_class_report *src) {
    XA_ASSERT(dst != NULL && src != NULL);
    memset(dst, 0, sizeof *dst);
    dst->tagging = src->tagging;
    dst->n = src->n;
    xa_status st = report_alloc(dst);
    if (st) return st;
    const size_t n = (size_t)src->n;
    memcpy(dst->names, src->names, n * sizeof *dst->names);
    memcpy(dst->n_gold, src->n_gold, n * sizeof *dst->n_gold);
    memcpy(dst->n_pred, src->n_pred, n * sizeof *dst->n_pred);
    memcpy(dst->n_correct, src->n_correct, n * sizeof *dst->n_correct);
    if (!src->tagging) memcpy(dst->confusion, src->confusion, n * n * sizeof *dst->confusion);
    if (src->type_of) {
        dst->type_of = malloc((size_t)(src->n_labels ? src->n_labels : 1) * sizeof *dst->type_of);
        if (!dst->type_of) {
            xa_class_report_free(dst);
            return xa_error_set(XA_STATUS_NOMEM, "xa_class_report_copy", NULL, NULL, "out of memory");
        }
        memcpy(dst->type_of, src->type_of, (size_t)src->n_labels * sizeof *dst->type_of);
        dst->n_labels = src->n_labels;
    }
    return XA_STATUS_OK;
}

xa_status xa_class_report_merge(xa_class_report *into, const xa_class_report *add) {
    XA_ASSERT(into != NULL && add != NULL);
    if (!same_classes(into, add))
        return xa_error_set(XA_STATUS_CONFIG, "xa_class_report_merge", "reports over the same classes", NULL,
                            "%d %s against %d", into->n, into->tagging ? "entity types" : "classes", add->n);
    for (int i = 0; i < into->n; i++) {
        into->n_gold[i] += add->n_gold[i];
        into->n_pred[i] += add->n_pred[i];
        into->n_correct[i] += add->n_correct[i];
    }
    if (!into->tagging)
        for (size_t i = 0; i < (size_t)into->n * into->n; i++) into->confusion[i] += add->confusion[i];
    return XA_STATUS_OK;
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

xa_class_score xa_class_report_score(const xa_class_report *r, int c) {
    XA_ASSERT(r != NULL && c >= 0 && c < r->n);
    xa_class_score s;
    s.support = r->n_gold[c];
    s.predicted = r->n_pred[c];
    s.correct = r->n_correct[c];
    s.precision = ratio(s.correct, s.predicted);
    s.recall = ratio(s.correct, s.support);
    /* 2 tp / (2 tp + fp + fn) = 2 tp / (predicted + support), as label_f1 */
    s.f1 = ratio(2 * s.correct, s.predicted + s.support);
    return s;
}

void xa_class_report_summary(const xa_class_report *r, xa_report_summary *out) {
    XA_ASSERT(r != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    int64_t gold = 0, pred = 0, correct = 0;
    for (int c = 0; c < r->n; c++) {
        xa_class_score s = xa_class_report_score(r, c);
        gold += s.support;
        pred += s.predicted;
        correct += s.correct;
        out->weighted_f1 += (double)s.support * s.f1;
        if (s.support == 0) continue; /* the tables' macro-F1 set: classes present in gold */
        out->macro_precision += s.precision;
        out->macro_recall += s.recall;
        out->macro_f1 += s.f1;
        out->n_macro++;
    }
    if (out->n_macro) {
        out->macro_precision /= out->n_macro;
        out->macro_recall /= out->n_macro;
        out->macro_f1 /= out->n_macro;
    }
    out->weighted_f1 = gold > 0 ? out->weighted_f1 / (double)gold : 0.0;
    out->n_gold = gold;
    out->n_pred = pred;
    out->n_correct = correct;
    out->micro_precision = ratio(correct, pred);
    out->micro_recall = ratio(correct, gold);
    out->micro_f1 = ratio(2 * correct, pred + gold);
}
