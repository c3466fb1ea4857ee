/* train/trainer: the one training loop of every phase (private to train/): checkpoint recovery,
 * resume or fresh start, the linear schedule, metrics.jsonl, the progress line, and per step
 * zero_grad -> the phase's loss and gradients -> clip -> AdamW -> metrics -> the phase's
 * evaluation -> checkpoint every ckpt_every steps (and at the end, at stop_after, at an early
 * stop). The phase supplies its model, data and outputs through xa_trainer_ops; the numerics of
 * a phase (the order of its RNG draws, batches and optimizer steps) are the phase's own. */
#ifndef XA_TRAIN_TRAINER_H
#define XA_TRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "data/data.h"
#include "io/file.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/ckpt.h"

typedef struct xa_trainer xa_trainer;

/* What a phase plugs into the loop; ctx is the phase's own state. NULL entries are skipped. */
typedef struct xa_trainer_ops {
    /* Fresh run: initialise the trained weights and ts->rng. */
    xa_status (*init)(void *ctx, xa_train_state *ts);
    /* Resume: read the trained weights from checkpoint directory dir (the skeleton then reads the
     * optimizer state, checking the identity). */
    xa_status (*load)(void *ctx, const char *dir);
    /* Resume: check t->ts's data position (FORMAT naming path when it does not fit the data) and
     * move the data there; set t->stop when the checkpointed run had already stopped early. */
    xa_status (*seek)(void *ctx, const char *path, xa_trainer *t);
    /* One step's loss and gradients (zeroed before) at t->ts; *tokens: the batch's tokens, 0 when
     * there was no batch (the end of an epoch: nothing is stepped, the loop asks again). */
    xa_status (*step)(void *ctx, xa_trainer *t, float *loss, double *tokens);
    /* After the optimizer step (t->ts.step counts it): the metrics line's extra JSON fragment. */
    void (*extra)(void *ctx, const xa_trainer *t, char *buf, size_t n);
    /* After the metrics line: evaluation (may set t->stop for an early stop) and the progress
     * text into line (default "loss L | lr LR"). */
    xa_status (*after)(void *ctx, xa_trainer *t, float loss, double lr, char *line, size_t n);
    /* The data position into ts, before a checkpoint. */
    void (*position)(void *ctx, xa_train_state *ts);
    /* Write the trained weights of a checkpoint into dir (emptied; created by the callee). */
    xa_status (*save)(void *ctx, const char *dir);
} xa_trainer_ops;

typedef struct xa_trainer_opts {
    const char *label;         /* progress label and log prefix */
    const char *out_dir;       /* OUT: OUT/checkpoint, and OUT/metrics.jsonl unless metrics_path */
    const char *metrics_path;  /* or NULL */
    const char *identity;      /* the checkpoint identity (xa_ckpt_load_state) */
    int64_t steps, warmup;     /* optimizer steps; linear warmup, then linear decay to 0 */
    double lr, clip;           /* peak learning rate; gradient-norm clip, 0 = off */
    int64_t ckpt_every;        /* 0: only at the end */
    int64_t log_every;         /* metrics window (steps) */
    int64_t stop_after;        /* testing aid: return after this many steps of this call (0: off) */
    int resume;                /* continue from OUT/checkpoint when it exists */
    FILE *progress;
} xa_trainer_opts;

struct xa_trainer {
    xa_trainer_opts o;
    xa_optim *opt;             /* borrowed: the groups that train */
    xa_train_state ts;
    xa_sched sched;
    char ckpt[XA_PATH_MAX], tmp[XA_PATH_MAX], metrics[XA_PATH_MAX];
    FILE *mf;                  /* metrics.jsonl (the phase may add lines in ops.after) */
    xa_loss_log log;           /* first / last window means */
    xa_progress prog;
    int64_t done_here;         /* steps of this call */
    double tokens;             /* tokens of this call */
    double seconds;            /* wall time of the loop */
    int stop;                  /* set by ops.after: checkpoint and stop (early stopping) */
};

/* Run the loop to t->o.steps (or stop_after, or an early stop). t is caller-owned; close it with
 * xa_trainer_close (also after an error). Errors: those of the callbacks, the checkpoint and
 * the metrics file. */
xa_status xa_trainer_run(xa_trainer *t, const xa_trainer_opts *o, xa_optim *opt, const xa_trainer_ops *ops,
                         void *ctx);
void xa_trainer_close(xa_trainer *t);

/* The seek and position callbacks of a phase that reads an MLM corpus: a checkpoint's data
 * position must lie within the corpus (else an error naming `path`); the state records the
 * corpus's epoch and position. */
xa_status xa_trainer_seek_mlm(const xa_train_state *ts, xa_mlm_data *d, const char *path);
void xa_trainer_position_mlm(xa_train_state *ts, const xa_mlm_data *d);

/* ---- what the phases that train the whole encoder share (pretraining, full fine-tuning) ---- */

/* One optimizer group per encoder tensor ("encoder.<i>", views into enc's flat buffers; enc must
 * be trainable), weight decay wd except on biases and LayerNorms (as HF Trainer). */
xa_status xa_trainer_add_encoder_groups(xa_optim *opt, xa_encoder *enc, double wd);
/* Resume: copy the encoder weights of checkpoint directory dir (config.json + model.safetensors)
 * into enc; CONFIG when the checkpoint holds another architecture. */
xa_status xa_trainer_load_encoder(xa_encoder *enc, const char *dir);

/* The in-batch alignment term's means over a metrics window (pretraining and aligned language
 * adapters): add each step's loss and accuracy; `extra` writes the window's metrics.jsonl fields
 * (nothing before a step was added); `after` starts a new window after a written one (t->log.n
 * == 0) and writes the progress line with the last window's loss. */
typedef struct xa_align_window {
    double sum, acc_sum;        /* over the current metrics window */
    int64_t n;
    double last_loss, last_acc; /* of the last written window */
} xa_align_window;
void xa_align_window_add(xa_align_window *w, float loss, float acc);
void xa_align_window_extra(const xa_align_window *w, char *buf, size_t n);
void xa_align_window_after(xa_align_window *w, const xa_trainer *t, float loss, double lr, char *line, size_t n);

#endif
