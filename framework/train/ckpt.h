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
 * (the run was started with other settings), FORMAT for a damaged file. */
xa_status xa_ckpt_load_state(const char *path, xa_optim *opt, xa_train_state *ts,
                             const char *identity);
/* Swap directory tmp in for fin: fin is moved to fin.old, tmp renamed to fin, fin.old removed.
 * remove_dir(dir) must delete a directory tree of the caller's layout. */
xa_status xa_ckpt_swap_dir(const char *tmp, const char *fin, void (*remove_dir)(const char *));

/* The metrics.jsonl writer of every training loop: the mean loss over windows of `window` steps,
 * one JSON line per window {"step", <extra>, "loss", "lr", "grad_norm", "tokens_per_s"}. */
typedef struct xa_loss_log {
    FILE *f;
    int64_t window;
    double sum, tokens, t0;
    int64_t n;
    int logged;
    double first, last;        /* mean loss of the first and the last written window */
} xa_loss_log;

void xa_loss_log_init(xa_loss_log *L, FILE *f, int64_t window);
/* Add one step (tokens: the step's batch tokens). At the end of a window, or when `last`, write
 * the line; extra (may be NULL) is a JSON fragment placed after "step", e.g. "\"epoch\": 1.500". */
void xa_loss_log_step(xa_loss_log *L, int64_t step, double loss, double lr, double gnorm,
                      double tokens, int last, const char *extra);

#endif
