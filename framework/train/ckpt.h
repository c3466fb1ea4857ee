/* train/ckpt: the checkpoint pieces every training loop shares (private to train/).
 * trainer_state.safetensors holds the AdamW moments of every parameter group ("m.<group>",
 * "v.<group>") and, in the metadata, the run state (step, data position, dropout RNG, best dev
 * metric, patience) plus an identity string: the settings that must not change on resume. A
 * checkpoint directory is built as DIR.tmp and swapped in with xa_ckpt_swap_dir, so a crash never
 * leaves a half-written checkpoint where a good one stood. */
#ifndef XA_TRAIN_CKPT_H
#define XA_TRAIN_CKPT_H

#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "optim/optim.h"

typedef struct xa_train_state {
    int64_t step, epoch, pos;  /* optimizer steps done; the data position to continue from */
    xa_rng rng;                /* the dropout / masking generator */
    double best;               /* best dev metric so far, -1 when none */
    int64_t best_step;
    int64_t bad_evals;         /* evaluations since the best (early stopping) */
} xa_train_state;

/* Write path: the moments of every group of opt and ts, tagged with identity. */
xa_status xa_ckpt_save_state(const char *path, const xa_optim *opt, const xa_train_state *ts,
                             const char *identity);
/* Read them back into opt's groups (same names and sizes) and ts; CONFIG when the identity differs
 * (the run was started with other settings, or on other data: identities are space-separated
 * key=value items and the message names the items that differ), FORMAT for a damaged file. */
xa_status xa_ckpt_load_state(const char *path, xa_optim *opt, xa_train_state *ts,
                             const char *identity);
/* Swap directory tmp in for fin: fin is moved to fin.old, tmp renamed to fin, fin.old removed
 * (xa_file_remove_tree: everything under it, left-over temporaries included). A crash leaves fin
 * complete, or (between the two renames) only fin.old complete: xa_ckpt_recover restores it.
 * Test hook: XA_TEST_CKPT_SLEEP_MS=N sleeps N ms before and between the renames, so a test can
 * kill the process inside the swap. */
xa_status xa_ckpt_swap_dir(const char *tmp, const char *fin);
/* The same, but the old fin is kept as `keep` (renamed; an existing `keep` is removed first)
 * instead of being removed: the checkpoint history. keep NULL: xa_ckpt_swap_dir. A crash between
 * the renames leaves fin.old, which xa_ckpt_recover restores or removes (that history entry is
 * then lost, never the latest checkpoint). */
xa_status xa_ckpt_swap_dir_keep(const char *tmp, const char *fin, const char *keep);
/* The end of every trainer's checkpoint: the caller has written its weights into tmp (emptied
 * first with xa_file_remove_tree); this writes tmp/trainer_state.safetensors, swaps tmp in for
 * fin (keeping the old fin as `keep` when not NULL) and, when metrics_path is not NULL, commits a
 * fresh run's metrics (xa_metrics_commit). */
xa_status xa_ckpt_commit(const char *tmp, const char *fin, const xa_optim *opt, const xa_train_state *ts,
                         const char *identity, const char *metrics_path, const char *keep);
/* Before a trainer reads or writes checkpoint directory dir: an interrupted swap is finished
 * (dir missing and dir.old present: dir.old is renamed back to dir; both present: dir.old is
 * removed) and a left-over dir.tmp is removed. IO naming the path on failure. */
xa_status xa_ckpt_recover(const char *dir);

/* FNV-1a 64-bit hash of n bytes, continuing from h (start with XA_FNV_INIT): the corpus
 * fingerprint a checkpoint's identity carries, so a resume on a changed corpus is refused. */
#define XA_FNV_INIT 14695981039346656037ull
uint64_t xa_ckpt_hash(uint64_t h, const void *data, size_t n);

/* metrics.jsonl of a trainer. A fresh run (resume_step 0) writes path.tmp, and
 * xa_metrics_commit renames it over path once the run's first checkpoint exists, so a fresh run
 * that fails early leaves an existing path as it was. A run resumed at resume_step > 0 appends to
 * path after dropping its rows of later steps (written before the kill; they are written again)
 * and any incomplete last line, atomically; a path.tmp left by a run killed between its first
 * checkpoint and that rename (not newer than ckpt_state, the checkpoint's trainer_state file)
 * becomes path first, any other path.tmp (a fresh run that died before its first checkpoint) is
 * removed. */
xa_status xa_metrics_open(FILE **f, const char *path, int64_t resume_step, const char *ckpt_state);
/* After a checkpoint: make path.tmp (if still pending) the metrics file; the stream stays valid. */
xa_status xa_metrics_commit(const char *path);

/* The metrics.jsonl writer of every training loop: the mean loss over windows of `window` steps
 * (ending at the steps that are multiples of window, and at the last step), one JSON line per
 * window {"type": "train", "phase", "step", "time", <extra>, "loss", "lr", "grad_norm",
 * "tokens_per_s"} (train/trainer.h); a non-finite loss is written as null. */
typedef struct xa_loss_log {
    FILE *f;
    const char *phase;         /* the rows' "phase" (borrowed; NULL: "train") */
    int64_t window;
    double sum, tokens, t0;
    int64_t n;
    int logged;
    double first, last;        /* mean loss of the first and the last written window */
} xa_loss_log;

void xa_loss_log_init(xa_loss_log *L, FILE *f, int64_t window);
/* Add one step (tokens: the step's batch tokens). At the end of a window, or when `last`, write
 * the line and return 1 (else 0); extra (may be NULL) is a JSON fragment placed after "time",
 * e.g. "\"epoch\": 1.500". */
int xa_loss_log_step(xa_loss_log *L, int64_t step, double loss, double lr, double gnorm,
                     double tokens, int last, const char *extra);

#endif
