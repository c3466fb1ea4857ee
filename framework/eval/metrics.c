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

void xa_span_count(xa_span_counts *c, const int32_t *gold, const int32_t *pred, int n,
                   const char (*names)[64], int n_labels) {
    XA_ASSERT(c != NULL);
    XA_ASSERT(n >= 0);
    XA_ASSERT(n == 0 || (gold != NULL && pred != NULL && names != NULL));
    const tag outside = {'O', ""};
    tag prev_g = outside, prev_p = outside;
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
                c->n_correct++;
            } else if (end_g != end_p || !same_type(g, p)) {
                in_correct = 0;
            }
        }
        if (start_g && start_p && same_type(g, p)) in_correct = 1;
        c->n_gold += start_g;
        c->n_pred += start_p;
        if (i < n) {
            c->n_tokens++;
            c->n_tokens_correct += gold[i] == pred[i];
        }
        prev_g = g;
        prev_p = p;
    }
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
