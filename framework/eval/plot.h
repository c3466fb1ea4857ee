/* eval/plot: the loss curves of a training run, drawn as a standalone SVG from its metrics.jsonl.
 *
 * Reads both row formats xadapt has written:
 *  - typed rows (since issue 16): {"type": "train", "step", "loss", "lr", ...} and
 *    {"type": "eval", "step", "metric": NAME, "value": V, "split": "dev" | "heldout", ...};
 *  - untyped rows of older runs: a row with "loss" is a training window, a row with "dev" a dev
 *    evaluation (its metric unnamed: "dev").
 * Lines that are not JSON objects (a line cut by a kill, "nan" written by an older binary) are
 * skipped with a warning; rows of one step written twice (an older run resumed after a kill) keep
 * the last one.
 *
 * The chart: the training loss per logged window (thin) and smoothed (thick; a debiased
 * exponential moving average, weight 0.6 for up to 30 windows, then 1 - 12/n up to 0.95), with
 * align_loss when present, and every evaluation metric on the same step axis: losses (a metric
 * name containing "loss") on the loss axis at the left, scores (accuracy, F1) on an axis of their
 * own at the right, the best evaluation ringed; the learning rate in a panel of its own below. */
#ifndef XA_EVAL_PLOT_H
#define XA_EVAL_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a plot drew. */
typedef struct xa_plot_info {
    int64_t n_train;   /* training windows (after removing duplicate steps) */
    int64_t n_eval;    /* evaluations, all metrics */
    int n_metrics;     /* distinct evaluation series */
    int64_t n_skipped; /* lines that were not JSON objects */
} xa_plot_info;

/* Read metrics_path and write the chart to svg_path (atomically), titled `title` (NULL: the
 * metrics file's path). info may be NULL. Errors: NOT_FOUND / IO for the metrics file, FORMAT when
 * it holds no training row and no evaluation (naming the file), the writer's errors. */
xa_status xa_plot_metrics(const char *metrics_path, const char *svg_path, const char *title, xa_plot_info *info);

#ifdef __cplusplus
}
#endif
#endif /* XA_EVAL_PLOT_H */
