/* train: training loops. For now MLM pretraining of a whole encoder from scratch (xa_pretrain);
 * the adapter phases (language, task, fusion) come with the composition engine.
 *
 * Checkpoints: OUT/checkpoint/ holds the model (config.json, model.safetensors) and
 * trainer_state.safetensors (AdamW moments per parameter group, and in the metadata the step, the
 * data position, the dropout RNG state and the options that must not change on resume). The
 * directory is built as OUT/checkpoint.tmp and renamed into place, so a crash never leaves a
 * half-written checkpoint where a good one stood. A resumed run ends with the same weights as an
 * uninterrupted one (same batches, same masks, same dropout, same optimizer state). */
#ifndef XA_TRAIN_H
#define XA_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xa_pretrain_opts {
    const char *out_dir;       /* the model is saved here (HF layout) with the tokenizer */
    const char *corpus;        /* plain text, one document per line */
    const char *tokenizer;     /* SentencePiece model (XLM-R ids are used) */
    xa_encoder_config model;   /* architecture; V is taken from the tokenizer */
    int B, T;                  /* batch size and sequence length */
    int64_t steps;             /* optimizer steps */
    double lr;                 /* peak learning rate */
    int64_t warmup;            /* linear warmup steps, then linear decay to 0 */
    double weight_decay;       /* AdamW decoupled decay (not on biases and LayerNorms) */
    double clip;               /* global gradient-norm clip, 0 = off */
    uint64_t seed;             /* init, data order, masking and dropout */
    int64_t ckpt_every;        /* steps between checkpoints, 0 = only at the end */
    int resume;                /* continue from OUT/checkpoint if it exists */
    int64_t max_docs;          /* read at most this many corpus lines, 0 = all */
    FILE *progress;            /* progress line stream (NULL: stderr) */
    const char *metrics_path;  /* JSON lines, one per logged step (NULL: OUT/metrics.jsonl) */
    int64_t stop_after;        /* testing aid: return after this many steps of this call (0: off) */
} xa_pretrain_opts;

/* Defaults: B 8, T 128, 1000 steps, lr 5e-4, warmup 6%, weight decay 0.01, clip 1.0, seed 42,
 * checkpoint every 200 steps, and the tiny architecture (L2 d128 h2 ff512). */
xa_pretrain_opts xa_pretrain_opts_default(void);

typedef struct xa_pretrain_result {
    int64_t steps_done;        /* the step the run reached */
    double first_loss;         /* mean MLM loss of the first logged window */
    double last_loss;          /* mean MLM loss of the last logged window */
    double tokens_per_s;       /* training throughput of this call */
    double seconds;
} xa_pretrain_result;

xa_status xa_pretrain(const xa_pretrain_opts *o, xa_pretrain_result *res);

/* ---- benchmark (train/bench.c) -----------------------------------------------------------------
 * Steady-state throughput of one training or inference step on synthetic data (random ids, 15%
 * of the positions masked for MLM), the same work as the PyTorch reference of tests/bench/. */

typedef enum xa_bench_mode {
    XA_BENCH_MLM_FULL = 0, /* MLM pretraining, every parameter trains */
    XA_BENCH_MLM_FROZEN,   /* MLM with the base frozen: only the head's transform (and bias) trains */
    XA_BENCH_CLS_FROZEN,   /* sequence classification with the base frozen: only the head trains */
    XA_BENCH_INFER,        /* forward pass, evaluation mode */
    XA_BENCH_N_MODES
} xa_bench_mode;

const char *xa_bench_mode_name(xa_bench_mode m); /* "mlm-full", "mlm-frozen", "cls-frozen", "infer" */
xa_status xa_bench_mode_parse(const char *name, xa_bench_mode *out);

typedef struct xa_bench_result {
    double tokens_per_s;   /* B*T / mean step time */
    double gflops;         /* model FLOPs of a step (xa_bench_flops) / mean step time */
    double step_ms;        /* mean step time */
    double flops_per_step;
    int steps;             /* timed steps */
    size_t peak_rss;       /* bytes; the caller measures it (a child process per row) */
} xa_bench_result;

/* FLOPs a step of `mode` needs (matrix products and attention only; backward counts 2x forward
 * for what trains, 1x input gradients through frozen parts that must be crossed). m = masked rows. */
double xa_bench_flops(xa_bench_mode mode, const xa_encoder_config *cfg, int B, int T, int m);

/* GFLOP/s of xa_sgemm on the base-size FFN product x(N=4096, 768) W(3072, 768)^T with the current
 * engine and threads: the peak the benchmark's GFLOP/s are compared with. */
double xa_bench_sgemm_peak(double min_seconds);

/* Run `warmup` untimed and then `steps` timed steps (at least min_seconds in all when > 0). */
xa_status xa_bench_run(xa_bench_mode mode, const xa_encoder_config *cfg, int B, int T, int warmup,
                       int steps, double min_seconds, uint64_t seed, xa_bench_result *r);

#ifdef __cplusplus
}
#endif
#endif /* XA_TRAIN_H */
