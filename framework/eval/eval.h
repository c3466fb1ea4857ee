/* eval: metrics and the zero-shot transfer tables (DESIGN.md §3, §5).
 *
 *  - metrics (metrics.c): accuracy and macro-F1 for classification; span-level precision, recall
 *    and F1 for BIO tagging with exact-match spans (conlleval / seqeval default mode: a span is a
 *    maximal run B-X I-X ... of one type; an I-X that does not continue a span of type X starts
 *    one);
 *  - per-class reports (metrics.c counts them, report.c writes them): per class or entity type
 *    precision / recall / F1 / support and the confusion matrix, per language and setup;
 *  - extractive question answering (squad.c): SQuAD v1.1 exact match and F1 with the official
 *    answer normalization, and HF run_qa's postprocessing from start/end logits to answer text;
 *  - tables (table.c): a (row = language) x (column = setup) table of a metric with an optional
 *    spread (std over seeds), written as Markdown, JSON and CSV, and drawn as an SVG grouped bar
 *    chart that the project writes itself (no plotting library).
 * The driver that trains nothing and evaluates setups over languages lives with the trainer. */
#ifndef XA_EVAL_H
#define XA_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- classification -------------------------------------------------------------------------- */

typedef struct xa_cls_metrics {
    int64_t n;          /* examples */
    double accuracy;    /* correct / n (0 when n = 0) */
    double macro_f1;    /* mean over the labels that occur in gold of per-label F1 (sklearn
                           f1_score(average="macro", labels=sorted(set(gold)))): the same class
                           set for every setup scored on one test file */
} xa_cls_metrics;

/* gold, pred (n) label ids in [0, n_labels). */
void xa_metrics_classification(xa_cls_metrics *out, const int32_t *gold, const int32_t *pred,
                               int64_t n, int n_labels);

/* ---- extractive question answering (squad.c) ---------------------------------------------------
 * Scoring is the official SQuAD v1.1 evaluate script's (evaluate-v1.1.py, which XQuAD uses for
 * every language): normalize_answer = lower case, drop ASCII punctuation (string.punctuation),
 * replace the words a / an / the (regex \b(a|an|the)\b) by a space, collapse whitespace; exact
 * match = equal normalized strings; F1 = token F1 over the normalized whitespace tokens (bag
 * intersection), 0 when no token is shared; each the maximum over the gold answers. MLQA's
 * per-language variant (its Unicode punctuation, per-language articles, Chinese segmentation) is
 * not implemented. Lower-casing, word characters (\w) and whitespace follow Python's str for the
 * code points glibc's C.UTF-8 locale classifies as Python does; known differences: Python's
 * multi-character lower-case mappings ("İ" -> "i̇") and the final-sigma rule ("Σ" -> "ς") become
 * the single-character ones. A question without gold answers (SQuAD 2.0's is_impossible) is
 * scored as evaluate-v2.0.py scores it against "" (a non-empty prediction scores 0). */

/* normalize_answer(s[0..n)) into a malloc'ed NUL-terminated string (*out); NOMEM. */
xa_status xa_squad_normalize(const char *s, size_t n, char **out);
/* exact_match_score and f1_score of one prediction against one gold answer (NUL-terminated);
 * both -1 when out of memory. */
double xa_squad_exact(const char *pred, const char *gold);
double xa_squad_f1(const char *pred, const char *gold);
/* The maximum of each over golds[0..n_gold) (metric_max_over_ground_truths); n_gold 0: against
 * "" with SQuAD 2.0's rule. Errors: NOMEM. */
xa_status xa_squad_score(double *em, double *f1, const char *pred, const char *const *golds, int n_gold);

/* HF postprocess_qa_predictions (SQuAD v1: no null answer): over the windows of one question,
 * the n_best highest start and end logits of each window (ties: the lower position first) form
 * candidate spans; a span counts when both ends are context tokens of that window, end >= start
 * and end - start + 1 <= max_answer_length; the best has the highest start + end logit (the
 * first seen on a tie, windows in order). */
typedef struct xa_qa_window {
    const float *logits;    /* (len, 2) start and end logits of each token */
    const int32_t *offsets; /* (len, 2) byte span of each token in the context, -1 outside it */
    int len;
} xa_qa_window;
/* *begin, *end: the best span's bytes [begin, end) in the context and *score its logit sum;
 * returns 1, or 0 when no span counts (HF then answers the text "empty"). n_best >= 1,
 * max_answer_length >= 1. */
int xa_qa_best_span(const xa_qa_window *w, int n_windows, int n_best, int max_answer_length, int32_t *begin,
                    int32_t *end, double *score);

/* SQuAD 2.0 (HF run_qa's version_2_with_negative, postprocess_qa_predictions): the null answer ""
 * competes with the spans. Its score is start_logit[0] + end_logit[0] (<s>) of the window where
 * that sum is smallest; with the best span in the n_best highest of (spans, null), the answer is
 * "" when null score - span score > null_score_diff_threshold, else the span. When no span counts,
 * or the only one in the n_best is the null (n_best 1 with the null above the best span), HF
 * compares against its placeholder "empty" of score 0: "" when null score > threshold, else the
 * text "empty". Without version_2_with_negative: xa_qa_best_span. */
typedef struct xa_qa_post {
    int n_best_size;                  /* start / end candidates per window (HF: 20), >= 1 */
    int max_answer_length;            /* the longest span in tokens (HF: 30), >= 1 */
    int version_2_with_negative;      /* 1: SQuAD 2.0's null answer */
    double null_score_diff_threshold; /* HF: 0.0 */
} xa_qa_post;
typedef enum xa_qa_answer {
    XA_QA_ANSWER_NONE = 0, /* no span counts: HF's text "empty" */
    XA_QA_ANSWER_SPAN,     /* bytes [*begin, *end) of the context */
    XA_QA_ANSWER_NULL,     /* SQuAD 2.0: unanswerable, the text "" */
} xa_qa_answer;
/* The answer to one question over its windows; *score (may be NULL): the span's logit sum (SPAN),
 * the null score (NULL), 0 (NONE). *begin, *end are set for SPAN only. */
xa_qa_answer xa_qa_postprocess(const xa_qa_window *w, int n_windows, const xa_qa_post *pp, int32_t *begin,
                               int32_t *end, double *score);
/* The official evaluate-v2.0.py's scores of one prediction: gold answers that normalize to ""
 * are dropped, none left means the gold [""]; exact match as v1.1; F1 1 when both token lists are
 * empty, 0 when one is, else v1.1's; each the maximum over the golds. Errors: NOMEM. */
xa_status xa_squad_score_v2(double *em, double *f1, const char *pred, const char *const *golds, int n_gold);

/* ---- tagging (BIO spans) ------------------------------------------------------------------------ */

typedef struct xa_span_counts {
    int64_t n_gold, n_pred, n_correct;  /* spans */
    int64_t n_tokens, n_tokens_correct; /* tagged tokens (token accuracy, for context) */
} xa_span_counts;

typedef struct xa_span_metrics {
    double precision, recall, f1;       /* 0 when undefined */
    double token_accuracy;
    xa_span_counts counts;
} xa_span_metrics;

/* Add one sentence: gold and pred tag ids (n words) into names[] ("O", "B-X", "I-X"). */
void xa_span_count(xa_span_counts *c, const int32_t *gold, const int32_t *pred, int n,
                   const char (*names)[64], int n_labels);
void xa_span_finish(xa_span_metrics *out, const xa_span_counts *c);

/* ---- per-class reports (counting: metrics.c; files: report.c) --------------------------------------
 * What a table's one number hides: per class (classification) or per entity type (tagging, exact
 * BIO spans as above, seqeval's classification_report) the support, the predictions, the true
 * positives, precision, recall and F1, and for classification the confusion matrix. The averages
 * follow the tables: macro over the classes present in gold (support > 0), so a report's macro-F1
 * is xa_metrics_classification's (and a class without support is listed but not averaged). */

typedef struct xa_class_report {
    int tagging;          /* 0: the classes of a classification head; 1: the entity types of BIO tags */
    int n;                /* classes, or entity types */
    char (*names)[64];    /* (n) class names / entity types */
    int64_t *confusion;   /* (n, n) classification: [gold][predicted] counts; NULL for tagging */
    int64_t *n_gold;      /* (n) support: gold examples, or gold spans of the type */
    int64_t *n_pred;      /* (n) predicted examples / spans */
    int64_t *n_correct;   /* (n) true positives (exactly matching spans for tagging) */
    int n_labels;         /* tagging: the tag set type_of maps */
    int *type_of;         /* (n_labels) tagging: tag id -> entity type, -1 for O; NULL in a report
                             read back from a file (it can be merged and written, not counted into) */
} xa_class_report;

/* An empty report over labels (n_labels names; tagging: the tag names, "O" / "B-X" / "I-X" /
 * "E-X" / "S-X", whose entity types become the report's classes in order of first appearance).
 * Free with xa_class_report_free (NULL-safe, also on a zeroed report). Errors: USAGE, NOMEM. */
xa_status xa_class_report_init(xa_class_report *r, int tagging, const char (*labels)[64], int n_labels);
void xa_class_report_free(xa_class_report *r);
/* Classification: count n examples (ids in [0, r->n)). */
void xa_class_report_add(xa_class_report *r, const int32_t *gold, const int32_t *pred, int64_t n);
/* Tagging: count one sentence of n tag ids into names (the labels of init) per entity type, with
 * the automaton of xa_span_count (so the per-type counts sum to its totals). */
void xa_class_report_add_spans(xa_class_report *r, const int32_t *gold, const int32_t *pred, int n,
                               const char (*names)[64]);
/* dst = a deep copy of src (dst's old contents are not freed). NOMEM. */
xa_status xa_class_report_copy(xa_class_report *dst, const xa_class_report *src);
/* Add the counts of `add` into `into` (pooling seeds); CONFIG when their classes differ. */
xa_status xa_class_report_merge(xa_class_report *into, const xa_class_report *add);

typedef struct xa_class_score {
    int64_t support, predicted, correct;
    double precision, recall, f1; /* 0 where undefined (scikit-learn's zero_division=0) */
} xa_class_score;
xa_class_score xa_class_report_score(const xa_class_report *r, int c);

typedef struct xa_report_summary {
    int n_macro;                        /* classes averaged: those with support > 0 */
    double macro_precision, macro_recall, macro_f1;
    double weighted_f1;                 /* support-weighted mean over every class */
    double micro_precision, micro_recall, micro_f1; /* pooled counts: classification = accuracy;
                                                       tagging = the table's span P / R / F1 */
    int64_t n_gold, n_pred, n_correct;
} xa_report_summary;
void xa_class_report_summary(const xa_class_report *r, xa_report_summary *out);

/* The reports of one eval run: one per cell (language x setup x seed), keyed by the cell's
 * identity so that a rerun reuses them with the cell's values (pipeline/cells.h). */
typedef struct xa_report_cell {
    char cell[17];         /* the eval cell's identity, 16 hex digits */
    char language[40];     /* the table row, e.g. "de" or "en (src)" */
    char setup[128];       /* the setup's key, e.g. "madx" */
    char label[64];        /* its column label, e.g. "MAD-X Stack(lang:tgt, task)" */
    uint64_t seed;
    xa_class_report rep;   /* owned */
} xa_report_cell;

typedef struct xa_report_set {
    int n, cap;
    xa_report_cell *c;     /* (n) owned */
} xa_report_set;

/* Append a copy of rep with its coordinates. NOMEM. */
xa_status xa_report_set_add(xa_report_set *s, const char *cell, const char *language, const char *setup,
                            const char *label, uint64_t seed, const xa_class_report *rep);
/* The cell with this identity, or NULL. */
const xa_report_cell *xa_report_set_find(const xa_report_set *s, const char *cell);
void xa_report_set_free(xa_report_set *s);
/* Read a per_class.jsonl written by xa_report_set_write into *s (zeroed first). A missing file gives
 * an empty set; a line that does not parse is skipped (its cell is evaluated again). NOMEM only. */
xa_status xa_report_set_read(xa_report_set *s, const char *path);

/* Write the set into dir, atomically file by file:
 *   per_class.jsonl   one line per cell: its coordinates, the class names and the counts
 *                     (classification: "confusion"; tagging: "gold", "pred", "correct"), per-class F1
 *   per_class.json    per (language, setup), the seeds pooled (counts summed): per-class support,
 *                     predicted, correct, precision, recall, F1, whether it is in macro-F1, the
 *                     averages, and the confusion matrix
 *   per_class.csv     the same per class, one row each
 *   confusion.csv     classification: language, setup, seeds, gold, predicted, count (long form)
 *   per_class.md      one section per language: F1 per class for every setup side by side, then
 *                     for each setup of `detail` (NULL-terminated keys; none present: the first
 *                     setup) precision / recall / F1 / support / predicted and the confusion matrix
 *   confusion_<setup>.svg  classification: a heat map per language for each setup (rows gold,
 *                     columns predicted, shade = share of the gold row, counts written in)
 * title names the task (e.g. "pkg"). Errors: USAGE (no dir), IO / NOMEM of the writers. */
xa_status xa_report_set_write(const xa_report_set *s, const char *dir, const char *title,
                              const char *const *detail);

/* ---- transfer tables ---------------------------------------------------------------------------- */

/* Rows: the source, up to 64 targets (XA_CFG_MAX_LANGS of config.h, which eval may not include;
 * pipeline/run.c asserts the relation) and the mean rows (seen, unseen, all targets). */
#define XA_TABLE_MAX_ROWS 68
#define XA_TABLE_MAX_COLS 16

typedef struct xa_table {
    char title[256];                  /* e.g. "topic: accuracy (mean over 3 seeds)" */
    char metric[64];                  /* "accuracy", "macro_f1", "span_f1" */
    int n_rows, n_cols;
    char rows[XA_TABLE_MAX_ROWS][32]; /* languages */
    char cols[XA_TABLE_MAX_COLS][64]; /* setups */
    double value[XA_TABLE_MAX_ROWS][XA_TABLE_MAX_COLS];  /* NaN = not measured */
    double spread[XA_TABLE_MAX_ROWS][XA_TABLE_MAX_COLS]; /* std over seeds; NaN = none */
    int n_seeds;
} xa_table;

/* An empty table (every value NaN). */
void xa_table_init(xa_table *t, const char *title, const char *metric);
/* Index of a row / column, added when missing; -1 when full. */
int xa_table_row(xa_table *t, const char *name);
int xa_table_col(xa_table *t, const char *name);
/* Add a "mean" row: the mean over the rows that have a value in each column. */
void xa_table_add_mean_row(xa_table *t, const char *name);

/* Per-seed sums over the rows a mean row averages: seed k's mean for column c is
 * sum[c][k] / cnt[c][k]. Zero it before use. */
#define XA_TABLE_MAX_SEEDS 16
typedef struct xa_seed_sums {
    double sum[XA_TABLE_MAX_COLS][XA_TABLE_MAX_SEEDS];
    int cnt[XA_TABLE_MAX_COLS][XA_TABLE_MAX_SEEDS];
} xa_seed_sums;

/* Adds v, the value of seed index k (< XA_TABLE_MAX_SEEDS) in column c, to the sums; ignored out of range. */
void xa_seed_sums_add(xa_seed_sums *ss, int c, int k, double v);

/* A mean row over rows [first_row, n_rows) (first_row = 1 leaves out a source row): the value is
 * the mean of the rows' values; the spread is the sample std over seeds of each seed's mean over
 * those rows, when all n_seeds seeds (>= 2) have a value in every one of the rows (cnt = rows),
 * else NaN. */
void xa_table_add_mean_row_seeds(xa_table *t, const char *name, int first_row, const xa_seed_sums *ss,
                                 int n_seeds);
/* The same over the n_avg rows [first_row, first_row + n_avg) only (a group of rows, e.g. the
 * unseen targets), whatever follows them; ss must hold that group's sums (cnt == n_avg). */
void xa_table_add_group_mean_row(xa_table *t, const char *name, int first_row, int n_avg,
                                 const xa_seed_sums *ss, int n_seeds);

/* Markdown (values x 100 with one decimal, "± s" when a spread exists, "–" for NaN, a bold
 * best value per row), to a stream. */
void xa_table_print_markdown(const xa_table *t, FILE *out);
/* Files, written atomically: Markdown, JSON ({"title", "metric", "n_seeds", "rows", "cols",
 * "value": [[...]], "spread": [[...]]} with null for NaN), CSV (header "language,<setup>,...",
 * then "<setup> std" columns when spreads exist), SVG (grouped bars per language, one colour per
 * setup with a legend, y axis 0..100 with grid lines, error bars for spreads, the title; valid
 * standalone SVG 1.1 that browsers render). */
xa_status xa_table_write_markdown(const xa_table *t, const char *path);
xa_status xa_table_write_json(const xa_table *t, const char *path);
xa_status xa_table_write_csv(const xa_table *t, const char *path);
xa_status xa_table_write_svg(const xa_table *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* XA_EVAL_H */
