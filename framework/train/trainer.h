/* train/trainer: the one training loop of every phase (private to train/): checkpoint recovery,
 * resume or fresh start, the learning-rate schedule, metrics.jsonl, train.log, the loss-curve SVG,
 * the progress line, and per step zero_grad -> the phase's loss and gradients -> clip -> AdamW ->
 * metrics -> the phase's evaluation -> checkpoint every ckpt_every steps (and at the end, at
 * stop_after, at an early stop). The phase supplies its model, data and outputs through
 * xa_trainer_ops; the numerics of a phase (the order of its RNG draws, batches and optimizer
 * steps) are the phase's own.
 *
 * The record of a run, beside its metrics file (OUT/metrics.jsonl unless metrics_path):
 *  - metrics.jsonl, one JSON object a line, every row with "type" ("train" or "eval"), "phase",
 *    "step" and "time" (Unix seconds, UTC):
 *      {"type": "train", "phase": "lang", "step": 10, "time": 1764670272.5, <extra>,
 *       "loss": 6.91, "lr": 0.0001, "grad_norm": 0.5, "tokens_per_s": 1234.5}
 *    one per window of log_every steps (windows end at multiples of log_every, and at the last
 *    step), and
 *      {"type": "eval", "phase": "task", "step": 100, "time": ..., "split": "dev",
 *       "metric": "accuracy", "value": 0.71, <the phase's fields>}
 *    per evaluation (xa_trainer_log_eval). A resumed run first drops the rows after its
 *    checkpoint's step (written before the kill, and written again now), atomically.
 *  - train.log: the run's log messages (INFO and up), its start / resume / end and a line per
 *    metrics row, appended across resumes, with UTC timestamps.
 *  - metrics.svg: the loss curves (eval/plot.h), rewritten at the end of every call that stepped. */
#ifndef XA_TRAIN_TRAINER_H
#define XA_TRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "compose/compose.h"
#include "core/core.h"
#include "data/data.h"
#include "heads/heads.h"
#include "io/file.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/train.h"

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
     * there was no batch (the end of an epoch: nothing is stepped, the loop asks again). With
     * grad_accum the phase runs the step's batch in micro-batches here (xa_trainer_micro). */
    xa_status (*step)(void *ctx, xa_trainer *t, float *loss, double *tokens);
    /* After the optimizer step (t->ts.step counts it): the metrics line's extra JSON fragment. */
    void (*extra)(void *ctx, const xa_trainer *t, char *buf, size_t n);
    /* After the metrics line: evaluation (may set t->stop for an early stop) and the progress
     * text into line (default "loss L | lr LR"); `loss` is the smoothed training loss
     * (t->loss_smooth) that the progress line shows. */
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
    const char *phase;         /* "pretrain", "lang", "task", ...: the rows' "phase" (NULL: label) */
    const xa_train_knobs *knobs; /* schedule and checkpoint history; NULL: defaults */
} xa_trainer_opts;

struct xa_trainer {
    xa_trainer_opts o;
    xa_optim *opt;             /* borrowed: the groups that train */
    xa_train_state ts;
    xa_sched sched;
    char ckpt[XA_PATH_MAX], tmp[XA_PATH_MAX], metrics[XA_PATH_MAX];
    FILE *mf;                  /* metrics.jsonl (rows of the phase: xa_trainer_log_eval) */
    FILE *logf;                /* train.log */
    xa_loss_log log;           /* first / last window means */
    xa_progress prog;
    int64_t done_here;         /* steps of this call */
    double tokens;             /* tokens of this call */
    double seconds;            /* wall time of the loop */
    int stop;                  /* set by ops.after: checkpoint and stop (early stopping) */
    double loss_smooth;        /* debiased moving average of the step losses (about 20 steps) */
    double smooth_m, smooth_w; /* its running sums */
    int64_t last_ckpt;         /* step of the checkpoint in OUT/checkpoint made by this run (0: none) */
    int writer;                /* this rank writes the run's files (rank 0; always without MPI) */
    float *red;                /* (n_red) data-parallel runs: the trainable gradients + the loss, flat */
    size_t n_red;
    double red_seconds;        /* time in the per-step allreduce (this call) */
};

/* Run the loop to t->o.steps (or stop_after, or an early stop). t is caller-owned; close it with
 * xa_trainer_close (also after an error). Errors: those of the callbacks, the checkpoint and
 * the metrics file. */
xa_status xa_trainer_run(xa_trainer *t, const xa_trainer_opts *o, xa_optim *opt, const xa_trainer_ops *ops,
                         void *ctx);
void xa_trainer_close(xa_trainer *t);

/* An evaluation row of metrics.jsonl at t->ts.step: {"type": "eval", "phase", "step", "time",
 * "split", "metric", "value", <extra>} (extra: a JSON fragment of more fields, or NULL; non-finite
 * values are written as null), and its line in train.log. */
void xa_trainer_log_eval(xa_trainer *t, const char *split, const char *metric, double value, const char *extra);
/* The optimizer of a phase: AdamW with the knobs' betas and epsilon (k NULL: defaults). */
xa_status xa_trainer_optim_init(xa_optim *opt, const xa_train_knobs *k);
/* The checkpoint identity items of the knobs that differ from their defaults (" sched=cosine
 * adam_beta1=0.8 ..."), appended to id; nothing for the defaults, so an identity stays what an
 * older xadapt wrote. save_total_limit is not part of it (it changes no weights). */
void xa_trainer_identity_knobs(char *id, size_t n, const xa_train_knobs *k);
/* Encoder dropout overrides of the knobs applied to cfg (before the model's buffers are planned). */
void xa_trainer_apply_dropout(xa_encoder_config *cfg, const xa_train_knobs *k);
/* The training activations the knobs ask for: XA_ACTS_RECOMPUTE with gradient_checkpointing,
 * else XA_ACTS_TRAIN (k NULL: the defaults); xa_trainer_compose_mode is the matching
 * xa_composer_plan mode (XA_COMPOSE_RECOMPUTE or 1). */
int xa_trainer_acts_mode(const xa_train_knobs *k);
int xa_trainer_compose_mode(const xa_train_knobs *k);

/* Weight decay as HF Trainer applies it to a group that is one flat buffer: the ranges of its
 * bias and LayerNorm tensors (names ending in "bias", or of a norm module) are kept out of the
 * group's decay (xa_optim_set_no_decay), from the AdapterHub tensor names (hub.h visitors). The
 * group must hold the object's whole buffer. */
xa_status xa_trainer_no_decay_adapter(xa_optim *opt, const char *group, const xa_adapter *a);
xa_status xa_trainer_no_decay_fusion(xa_optim *opt, const char *group, const xa_fusion_layer *f);
xa_status xa_trainer_no_decay_head(xa_optim *opt, const char *group, const xa_head *h);
/* Whether weight decay skips a tensor of this (AdapterHub / HF) name: a bias, or a LayerNorm. */
int xa_trainer_skips_decay(const char *name);

/* ---- micro-batches (grad_accum) ----------------------------------------------------------------
 * A step's global batch of B rows is drawn whole first (its blocks or examples, its MLM masks, and
 * so the count its mean loss is over), then runs as pieces of `rows` = B / grad_accum rows: piece
 * k holds rows [k rows, min((k + 1) rows, B)) (a shorter last batch of an epoch has fewer
 * pieces). Each piece's gradient is weighted by its share of the global batch's count (MLM: masked
 * pieces; task: labelled rows or tokens, or their class weights), so the sum over the pieces is
 * the gradient of the global batch's mean loss. Data-parallel ranks can take the same pieces as
 * their shards. A view points into the global batch (MLM: the masked positions are copied,
 * re-based to the piece's rows, into the cutter's scratch, so one view at a time). */
typedef struct xa_trainer_micro {
    int rows;                  /* rows per piece: B / (grad_accum x ranks) */
    int n;                     /* pieces of a full batch: grad_accum x ranks */
    int k0, per_rank;          /* this rank's pieces of a full batch: [k0, k0 + per_rank) */
    int32_t *mrows, *mtargets; /* (rows * T) MLM scratch (mlm cutters only), owned */
    xa_rng start, end;         /* the step's generator at begin, and after the first piece */
    int n_ran;                 /* pieces started since begin */
} xa_trainer_micro;

/* A cutter for global batches of B rows (T: the row length of MLM batches; mlm 0: task batches,
 * no scratch), over xa_dist_size() ranks: rank r runs pieces [r grad_accum, (r + 1) grad_accum).
 * Errors: USAGE naming `who` when grad_accum < 1 or does not divide B, or when grad_accum x ranks
 * does not; NOMEM. */
xa_status xa_trainer_micro_init(xa_trainer_micro *u, int B, int grad_accum, int T, int mlm, const char *who);
void xa_trainer_micro_free(xa_trainer_micro *u);
/* This rank's pieces of a batch of B rows: [*k0, *k1) (empty on a rank past a short batch's
 * last piece; its gradient contribution is then zero). */
void xa_trainer_micro_mine(const xa_trainer_micro *u, int B, int *k0, int *k1);
/* Dropout masks of the global batch (issue 13): every piece draws from the step's generator as
 * it stood at begin (once per step, on every rank, in the same place of the step's draws), so
 * each dropout site gets the seed that the whole batch's forward would give it, and the piece
 * lays the masks at its rows of the global batch (xa_batch.row0, xa_head.row0 = k x rows:
 * tensor.h xa_dropout_mask_at). rng(k) rewinds the step's generator to begin's state and returns
 * it; after the pieces it stands where the whole batch's forward leaves it (every piece draws as
 * many seeds: checked), so what the step draws next (the alignment pass) draws as in one batch.
 * One piece: begin and rng change nothing, the draws of before pieces existed. A rank past a
 * short batch's last piece, or one that skips the once-a-step pass, stands elsewhere: the trainer
 * hands every rank rank 0's generator in the step's allreduce. */
void xa_trainer_micro_begin(xa_trainer_micro *u, xa_rng *step_rng);
xa_rng *xa_trainer_micro_rng(xa_trainer_micro *u, xa_rng *step_rng, int k);
/* Pieces of a batch of B rows (B <= the cutter's batch; task batches: their examples, n_ex):
 * ceil(B / rows). */
int xa_trainer_micro_count(const xa_trainer_micro *u, int B);
/* Piece k of MLM batch g (row length T <= the cutter's T) as `view`, returning its masked count
 * view->m; a cutter of one piece returns g itself. */
int xa_trainer_micro_mlm(xa_trainer_micro *u, const xa_mlm_batch *g, int T, int k, xa_mlm_batch *view);
/* Piece k of task batch g as `view`: examples [k rows, ...) with their n_choices rows each (its T
 * is g's; tagging (1) labels are (B, T) rows, question answering's (2) two per row (start,
 * end), the others (0) one per example). */
void xa_trainer_micro_task(const xa_trainer_micro *u, const xa_task_batch *g, int tagging, int k, xa_task_batch *view);
/* What a task head's mean loss divides by on batch b: the labels that count (not
 * XA_IGNORE_INDEX: examples for classification, multiple choice and question answering (tagging
 * 2: its rows), labelled tokens for tagging (1)),
 * or with class_w (K, may
 * be NULL) the sum of their weights (torch's weighted mean). */
double xa_trainer_task_count(const xa_task_batch *b, int tagging, const float *class_w);

/* Held-out MLM loss (validation during MLM training): the first n_batches batches of d from its
 * start (the same blocks and masks at every call: d is rewound), forward without dropout through
 * enc (with hook, the caller having set its composer to evaluation mode) and the MLM head, into
 * the masked-piece count and the loss sum (nats). b is a batch of d's T (its contents are
 * overwritten); acts must hold b's rows, or with u (may be NULL) the cutter's rows: each batch
 * then runs in u's pieces (the same blocks and masks, so the same value up to rounding). */
xa_status xa_trainer_mlm_heldout(xa_encoder *enc, xa_encoder_acts *acts, xa_mlm_head *head, const xa_hook *hook,
                                 xa_mlm_data *d, xa_mlm_batch *b, xa_trainer_micro *u, int n_batches,
                                 int64_t *n_masked, double *loss_sum);

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
