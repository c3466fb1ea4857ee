/* eval: metrics and the zero-shot transfer tables (DESIGN.md §3, §5).
 *
 *  - metrics (metrics.c): accuracy and macro-F1 for classification; span-level precision, recall
 *    and F1 for BIO tagging with exact-match spans (conlleval / seqeval default mode: a span is a
 *    maximal run B-X I-X ... of one type; an I-X that does not continue a span of type X starts
 *    one);
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
