/* train: training loops: MLM pretraining of a whole encoder from scratch (xa_pretrain) and the
 * MAD-X phases (language, task, fusion; below), all on one loop skeleton (train/trainer.h).
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
#include "optim/optim.h"
#include "data/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Trainer settings every phase shares (recipe keys of the same names, config.h). The defaults
 * are xadapt's behaviour before these keys existed: a setting at its default changes neither what
 * a run makes nor its checkpoint identity, so a run started by an older xadapt resumes. */
typedef struct xa_train_knobs {
    xa_sched_kind sched;       /* lr_scheduler: linear (default), cosine, constant,
                                  constant_with_warmup (HF's get_*_schedule) */
    double adam_beta1;         /* 0.9 */
    double adam_beta2;         /* 0.999 */
    double adam_epsilon;       /* 1e-8 */
    double hidden_dropout;     /* overrides the encoder's (and the head's) hidden dropout; < 0: the
                                  base's config.json (pretraining: the architecture's) */
    double attention_dropout;  /* overrides the attention-probability dropout; < 0: as above */
    int weight_decay_all;      /* 1 (default): adapters, fusion layers and heads decay every
                                  parameter; 0: as HF Trainer, not their biases and LayerNorm
                                  weights (the encoder's groups always skip them) */
    int save_total_limit;      /* checkpoints kept: checkpoint/ (the latest, which resumes) and
                                  up to N - 1 older ones as checkpoint-<step>/; 1 (default): only
                                  the latest; 0: every one */
    xa_precision precision;    /* the matrix products (recipe key precision): FP32 (default) or
                                  BF16 (tensor.h: bf16 operands, fp32 accumulation, where the CPU
                                  has the kernel; elsewhere fp32, and the identity says fp32) */
    int grad_accum;            /* micro-batches per optimizer step (recipe key grad_accum): the
                                  step's batch of B rows runs as grad_accum forward/backward passes
                                  of B / grad_accum rows (the activations planned for those), their
                                  gradients summed before the clip and AdamW, each weighted by its
                                  share of the step's loss count (task: labels; MLM: masked
                                  pieces), so that it equals one batch of B, dropout included
                                  (each micro-batch draws the batch's masks at its rows,
                                  trainer.h). Must divide B; 1 (default):
                                  one pass, exactly as before the key existed */
    int gradient_checkpointing; /* recipe key gradient_checkpointing (HF's name): 1 plans the
                                  encoder's activations as XA_ACTS_RECOMPUTE (and the composer's
                                  as XA_COMPOSE_RECOMPUTE): forward keeps each layer's input,
                                  backward recomputes one layer at a time. The same weights bit
                                  for bit, so it is no part of the checkpoint identity or the
                                  provenance (like the thread count); train.log records it. 0
                                  (default): every layer's activations are kept */
} xa_train_knobs;

xa_train_knobs xa_train_knobs_default(void);

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
    int resume;                /* continue from OUT/checkpoint if it exists (CONFIG when it was made
                                  with other settings, schedule included, or another corpus) */
    int64_t max_docs;          /* read at most this many corpus lines, 0 = all */
    FILE *progress;            /* progress line stream (NULL: stderr) */
    const char *metrics_path;  /* JSON lines, one per logged step (NULL: OUT/metrics.jsonl) */
    int64_t stop_after;        /* testing aid: return after this many steps of this call (0: off) */
    int64_t log_every;         /* steps per metrics line (0: 10, fewer for short runs) */
    /* Cross-lingual objectives on aligned pairs (data/pairs.c); all off without `pairs`. */
    const char *pairs;         /* "lang<TAB>en<TAB>text" pairs of train-split documents, or NULL */
    double pair_alpha;         /* language sampling exponent over the pairs: q_l ~ n_l^alpha (0.3) */
    double tlm_ratio;          /* share of steps whose MLM batch is a TLM batch of whole pairs */
    double align_weight;       /* weight of the in-batch contrastive loss added to every step */
    int align_pairs;           /* pairs per alignment batch (2 x this many rows; default B / 2) */
    double align_temp;         /* its temperature (cosine scores / temp), 0.05 */
    double mlm_prob;           /* masking probability, 0.15 */
    int whole_word_mask;       /* mask whole words (pieces after a "▁" start) */
    xa_train_knobs k;          /* schedule, AdamW, dropout, checkpoint history (weight_decay_all
                                  does not apply: the encoder and MLM head skip biases and norms) */
    /* Held-out MLM validation (off when eval_every is 0 or n_heldout is 0): every eval_every steps
     * and at the end, the MLM loss on the first eval_batches batches of each held-out text (the
     * same blocks and masks every time, no dropout), pooled over the texts, as an "eval" row of
     * metrics.jsonl (metric mlm_loss, split heldout, by_language). */
    int64_t eval_every;
    int eval_batches;          /* 0: 8 */
    int n_heldout;
    const char *const *heldout;       /* (n_heldout) text files */
    const char *const *heldout_names; /* (n_heldout) their languages */
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
    double last_align_loss;    /* mean contrastive loss / in-batch accuracy of the last window */
    double last_align_acc;
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
    /* MAD-X adapters on the frozen encoder (compose/): lang = seq_bn_inv with reduction factor 2
     * (NICE invertible adapter, inv rf 2), task = seq_bn with reduction factor 16 */
    XA_BENCH_LANG_ADAPTER, /* MLM with only `lang` training (the MLM head and tied decoder frozen) */
    XA_BENCH_TASK_ADAPTER, /* classification on Stack(lang, task): lang frozen, task + head train */
    XA_BENCH_INFER_STACK,  /* forward of Stack(lang, task) + classification head, evaluation mode */
    XA_BENCH_N_MODES
} xa_bench_mode;

/* "mlm-full", "mlm-frozen", "cls-frozen", "infer", "lang-adapter", "task-adapter", "infer-stack" */
const char *xa_bench_mode_name(xa_bench_mode m);
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
 * for what trains, 1x input gradients through frozen parts that must be crossed). m = masked rows.
 * Adapter modes add the bottleneck products (4 N C d per layer and adapter) and the NICE coupling
 * products (on the B*T embedding rows, and the inverse on the m masked rows in lang-adapter). */
double xa_bench_flops(xa_bench_mode mode, const xa_encoder_config *cfg, int B, int T, int m);
/* Activation recomputation (model.h XA_ACTS_RECOMPUTE) for the training rows of the following
 * xa_bench_run calls: on != 0 (xadapt bench --gradient-checkpointing), 0 (default) keeps every
 * layer's activations. Same FLOPs counted: the recomputed forward is overhead, not model work. */
void xa_bench_set_gradient_checkpointing(int on);


/* ---- MAD-X phases (train/madx.c) ---------------------------------------------------------------
 * Adapters on a frozen base: a language adapter with MLM (xa_train_lang), a task adapter or a
 * fusion layer on a setup of frozen adapters with a task head (xa_train_task), and evaluation of a
 * setup on a test file (xa_eval_setup). Outputs are AdapterHub directories (hub/).
 * Checkpoints: OUT/checkpoint/ holds the trained weights as AdapterHub directories and
 * trainer_state.safetensors (AdamW moments, step, data position, RNG state, best dev metric and
 * patience in the metadata), built as OUT/checkpoint.tmp and swapped in (train/ckpt.h: one
 * protocol for every trainer, recovery of an interrupted swap from checkpoint.old, a corpus
 * fingerprint in the identity); `resume` continues from it and ends with the same adapters as an
 * uninterrupted run. */

typedef struct xa_phase_opts {
    int B, T;                  /* batch size, max sequence length */
    int64_t steps;             /* optimizer steps; 0 with epochs > 0: epochs over the train set */
    double epochs;
    double lr;                 /* peak learning rate (linear warmup, then linear decay) */
    int64_t warmup;            /* warmup steps; < 0: warmup_ratio of the steps */
    double warmup_ratio;
    double weight_decay;       /* AdamW decay over the whole adapter group */
    double clip;               /* gradient-norm clip, 0 = off */
    int64_t eval_every;        /* task: steps between dev evaluations, 0 = once per epoch */
    int early_stopping;        /* task: patience in evaluations, 0 = off */
    int64_t ckpt_every;        /* steps between checkpoints, 0 = only at the end */
    int64_t log_every;         /* steps per metrics line */
    int adapter_drop;          /* AdapterDrop k_max: skip the lowest k ~ U{0..k_max} layers per step */
    int64_t max_docs;          /* lang: read at most this many corpus lines, 0 = all */
    double mlm_prob;           /* lang: masking probability */
    int whole_word;            /* lang: whole-word masking */
    uint64_t seed;
    int resume;                /* continue from OUT/checkpoint when it exists (CONFIG when it was
                                  made with other settings or on other data) */
    FILE *progress;            /* progress line stream (NULL: stderr) */
    int64_t stop_after;        /* testing aid: return after this many steps of this call (0: off) */
    /* lang, aligned language adapters (0 / NULL: MLM alone, as before): each step also embeds
     * align_pairs pairs of this language from align_pairs_path, the English sides under the frozen
     * source adapter align_src_dir (no gradient, no dropout), the others under the trained adapter,
     * and adds align x the symmetric in-batch contrastive loss (tensor/contrastive.c). */
    double align;              /* weight, 0 = off */
    int align_pairs;           /* pairs per step (0: batch_size / 2) */
    double align_temp;         /* temperature (0: 0.05) */
    const char *align_pairs_path; /* "lang<TAB>en<TAB>text" (data/pairs.c) */
    const char *align_src_dir;    /* the source language's finished adapter directory */
    xa_train_knobs k;          /* schedule, AdamW, dropout, weight decay, checkpoint history */
    const char *best_metric;   /* task: metric_for_best_model (xa_best_metric_find); NULL: the
                                  task's primary metric (accuracy, span_f1) */
    /* lang: held-out MLM validation every eval_every steps (and at the end) on the first
     * eval_batches batches (0: 8) of `heldout`, an "eval" row of metrics.jsonl; NULL: off */
    const char *heldout;
    int eval_batches;
    /* task: the loss weight of each label (XA_CLASS_WEIGHTS_NONE, the default: unweighted, and the
     * checkpoint identity is what it was before the option existed) */
    int class_weights;            /* XA_CLASS_WEIGHTS_* */
    int n_class_weights;          /* _LIST: one weight per label, in the head's label order */
    const double *class_weight_list; /* (n_class_weights) */
} xa_phase_opts;

/* xa_phase_opts.class_weights: none; scikit-learn's "balanced" over the run's own training labels
 * (n_samples / (n_classes * count_c), tagging: over the counted first pieces); the given list. */
enum { XA_CLASS_WEIGHTS_NONE = 0, XA_CLASS_WEIGHTS_BALANCED, XA_CLASS_WEIGHTS_LIST };

xa_phase_opts xa_phase_opts_default(void);

typedef struct xa_phase_result {
    int64_t steps_done;
    double first_loss, last_loss; /* mean training loss of the first and last logged windows */
    double best_dev;             /* task: best dev value of the selecting metric (metric_for_best_model),
                                    -1 without dev */
    int64_t best_step;
    double seconds, tokens_per_s;
    int finished;                /* the phase reached its end (outputs written) */
    double last_align_loss, last_align_acc; /* lang with align > 0: the last metrics window's */
} xa_phase_result;

/* Train language adapter `name` (config cfg) with MLM on `corpus` over the frozen base in
 * base_dir (its MLM head frozen too; the invertible adapter's inverse sits before the tied
 * decoder). Writes OUT (an AdapterHub adapter directory: adapter_config.json last) and
 * OUT/../<name>.metrics.jsonl. With o->align > 0 the alignment term of xa_phase_opts joins (the
 * pairs of language `name`); its loss and in-batch accuracy go to metrics.jsonl as align_loss /
 * align_acc, the logged `loss` stays the MLM loss. Errors besides the loaders': CONFIG when the
 * pair file has no pair of `name` or the source adapter is missing. */
xa_status xa_train_lang(const char *base_dir, const char *tokenizer, const char *out_dir,
                        const char *name, const xa_bn_config *cfg, const char *corpus,
                        const xa_phase_opts *o, xa_phase_result *res);

/* What xa_train_task trains, on which setup. */
typedef struct xa_task_spec {
    const char *const *frozen_dirs;  /* adapter directories loaded frozen (language adapters...) */
    int n_frozen;
    const char *new_adapter;         /* name of the adapter trained from scratch, or NULL */
    const xa_bn_config *new_cfg;
    const char *frozen_task_dir;     /* fusion phase: the task adapter (frozen), or NULL */
    const char *const *fuse;         /* names fused by a new, trained fusion layer, or NULL */
    int n_fuse;
    const xa_fusion_config *fusion_cfg;
    const char *setup;               /* setup text, e.g. "Stack(en, topic)"; NULL with train_base */
    int tagging;                     /* 0 classification, 1 tagging */
    const char *head_name;           /* the head's name (= the task name) */
    const char *head_init_dir;       /* start the head from this directory's head, or NULL */
    const char *train_path, *dev_path; /* dev may be NULL */
    int train_base;                  /* full fine-tuning: the whole encoder (embeddings included)
                                        trains with the head, no adapters, no setup (every adapter
                                        and fusion field NULL / 0) */
    /* the data's form (issue 16); zero: single-text classification or, with tagging, tagging */
    xa_task_kind kind;               /* XA_TASK_KIND_PAIR or XA_TASK_KIND_CHOICE (multiple-choice
                                        head), else ignored (tagging decides) */
    const xa_task_fields *fields;    /* JSON keys, or NULL: the defaults */
    const char *const *label_names;  /* names of integer labels (data.task.labels), or NULL */
    int n_label_names;
    /* question answering (kind XA_TASK_KIND_QA: a question_answering head); 0: the defaults */
    int doc_stride;                  /* xa_task_input.doc_stride */
    int max_answer_length;           /* dev scoring: the longest answer in tokens (30) */
    int n_best_size;                 /* dev scoring: start / end candidates per window (20) */
    int version_2_with_negative;     /* dev scoring: SQuAD 2.0's null answer (eval.h xa_qa_post) */
    double null_score_diff_threshold;
} xa_task_spec;

/* Train on the task: the encoder and every loaded adapter frozen; the new adapter and/or fusion
 * and the head train (the head's loss weighted per label when o->class_weights is set; a list of
 * another length than the labels is CONFIG naming them) (with spec->train_base: the encoder and the head, with the encoder's dropout
 * as its config says; weight decay skips the encoder's biases and LayerNorms). Writes
 * OUT/final/ (head/ = head_config.json + model_head.safetensors, adapter/ for a new adapter,
 * fusion/ for a fusion, encoder/ for train_base: config.json + model.safetensors, the base's
 * unchanged MLM head included when it has one, and the tokenizer as sentencepiece.bpe.model: a
 * base directory; adapter_setup.json), OUT/metrics.jsonl and OUT/dev.json; with a dev set the
 * written weights are those of the best dev evaluation (kept in OUT/best/). Errors besides the
 * loaders' and writers': USAGE for a train_base spec with adapters or a setup. */
xa_status xa_train_task(const char *base_dir, const char *tokenizer, const char *out_dir,
                        const xa_task_spec *spec, const xa_phase_opts *o, xa_phase_result *res);

typedef struct xa_eval_metrics {
    int64_t n;                 /* examples */
    double accuracy, macro_f1; /* classification */
    double precision, recall, f1; /* tagging: exact BIO spans; question answering: f1 is SQuAD's
                                     token F1 (precision, recall NaN) */
    double primary;            /* accuracy (classification), span F1 (tagging), F1 (QA) */
    double loss;               /* mean loss of the head over the scored labels (dev selection) */
    double exact_match;        /* question answering: SQuAD exact match (fraction); NaN otherwise */
} xa_eval_metrics;

/* The metrics that can select the best dev evaluation (metric_for_best_model): a name, which
 * task types have it (1 << xa_task_kind... : bit 0 classification, bit 1 tagging), whether higher
 * is better, and where it is in xa_eval_metrics. Extend the table for new metrics; config keeps
 * the same names (config.c: g_best_metrics). */
typedef struct xa_best_metric {
    const char *name;          /* "accuracy", "macro_f1", "span_f1", "loss" */
    unsigned task_types;       /* bit 0: classification, bit 1: tagging, bit 2: question answering */
    int greater_is_better;
    size_t offset;             /* of a double in xa_eval_metrics */
} xa_best_metric;

/* The metric called name for the task type (XA_BEST_FOR_*), or NULL (name NULL: the primary:
 * accuracy, span_f1, f1). */
enum { XA_BEST_FOR_CLASSIFICATION = 0, XA_BEST_FOR_TAGGING = 1, XA_BEST_FOR_QA = 2 };
const xa_best_metric *xa_best_metric_find(const char *name, int task_type);

/* Evaluate a setup on a test file: load the base, the adapters (frozen; drop_last[i] != 0 loads
 * adapter i without its last layer, MAD-X 2.0; drop_last may be NULL) and optionally a fusion
 * directory, activate `setup`, read the head from head_dir and score test_path. setup NULL (no
 * adapters, no fusion): the plain encoder, e.g. a fully fine-tuned one as base_dir. */
xa_status xa_eval_setup(const char *base_dir, const char *tokenizer, const char *const *adapter_dirs,
                        const uint8_t *drop_last, int n_adapters, const char *fusion_dir, const char *setup,
                        const char *head_dir, const char *test_path, int B, int T,
                        xa_eval_metrics *out);

/* ---- the eval cache of one eval phase (train/evalcache.c) ------------------------------------------
 * What the cells of an eval phase share: the base model of base_dir with the tokenizer (loaded on
 * the first call that needs them, then lent read only to every eval call given the cache whose
 * base directory and tokenizer are these two paths, strcmp-equal; a call for another base, e.g. a
 * fully fine-tuned encoder, loads its own as without a cache), the base's MLM head, and every test
 * file and held-out text read, kept under an exact key of how it was read (file, kind, field names,
 * label list, length; text: T and mask seed; a cached text restarts at its first block). A result
 * computed with the cache has the bits of one computed without it. Memory: one base, its MLM head
 * and the tokenized files until xa_eval_cache_free (free it at the end of the phase); files
 * rewritten while the cache lives are not noticed. Not thread-safe. */
typedef struct xa_eval_cache xa_eval_cache;

typedef struct xa_eval_cache_stats {
    int base_loads;    /* times the base was loaded: 0 or 1 */
    int base_lends;    /* eval calls that ran on the cached base */
    int data_loads;    /* test files and held-out texts read and tokenized */
    int data_reuses;   /* calls that found theirs already read */
} xa_eval_cache_stats;

/* A cache for base_dir and tokenizer (copied); loads nothing yet. USAGE for NULL or empty paths,
 * NOMEM. Free with xa_eval_cache_free (accepts NULL). */
xa_status xa_eval_cache_init(xa_eval_cache **out, const char *base_dir, const char *tokenizer);
void xa_eval_cache_free(xa_eval_cache *c);
/* The counts so far (all 0 for NULL). */
xa_eval_cache_stats xa_eval_cache_stats_of(const xa_eval_cache *c);

/* The input of the eval functions beyond the head: the data's kind (pairs; a multiple-choice head
 * reads multiple choice whatever this says), JSON keys and label list as in xa_task_input;
 * kind 0 with a classification head: single texts. */
typedef struct xa_eval_input {
    xa_task_kind kind;
    const xa_task_fields *fields;
    const char *const *label_names;
    int n_label_names;
    int doc_stride, max_answer_length, n_best_size; /* question answering, as in xa_task_spec */
    int version_2_with_negative;
    double null_score_diff_threshold;
    xa_eval_cache *cache;      /* the phase's base and test files (NULL: this call loads its own) */
} xa_eval_input;

/* xa_eval_setup_report reading the test file as `in` says (NULL: xa_eval_setup_report). */
struct xa_class_report;
xa_status xa_eval_setup_input(const char *base_dir, const char *tokenizer, const char *const *adapter_dirs,
                              const uint8_t *drop_last, int n_adapters, const char *fusion_dir, const char *setup,
                              const char *head_dir, const char *test_path, int B, int T, const xa_eval_input *in,
                              xa_eval_metrics *out, struct xa_class_report *rep);

/* xa_eval_setup that also fills rep (initialised here; the caller frees it with
 * xa_class_report_free, also on error) with the per-class counts of the test file: the confusion
 * matrix (classification) or exact spans per entity type (tagging). rep NULL: xa_eval_setup. */
struct xa_class_report;
xa_status xa_eval_setup_report(const char *base_dir, const char *tokenizer, const char *const *adapter_dirs,
                               const uint8_t *drop_last, int n_adapters, const char *fusion_dir, const char *setup,
                               const char *head_dir, const char *test_path, int B, int T, xa_eval_metrics *out,
                               struct xa_class_report *rep);

/* Held-out masked language modelling: loss and top-1 accuracy over the masked pieces. */
typedef struct xa_mlm_metrics {
    int64_t n_masked;  /* masked pieces scored */
    double loss;       /* mean cross-entropy over them (nats) */
    double accuracy;   /* fraction predicted exactly (argmax of the tied decoder) */
} xa_mlm_metrics;

/* Score the base's MLM head on one pass over text (blocks of T pieces, batches of B, masked 80/10/10
 * with `seed`, so every call with the same seed sees the same masks), alone (adapter_dir NULL) or
 * with a language adapter active (its invertible adapter included, inverse before the decoder).
 * At most max_batches batches (0: the whole text once). */
xa_status xa_eval_mlm(const char *base_dir, const char *tokenizer, const char *adapter_dir, const char *text,
                      int B, int T, uint64_t seed, int64_t max_batches, xa_mlm_metrics *out);
/* xa_eval_mlm on the cache's base, MLM head and text (cache NULL: xa_eval_mlm). */
xa_status xa_eval_mlm_cached(xa_eval_cache *cache, const char *base_dir, const char *tokenizer,
                             const char *adapter_dir, const char *text, int B, int T, uint64_t seed,
                             int64_t max_batches, xa_mlm_metrics *out);

/* Cross-lingual retrieval of held-out translations (train/retrieval.c). */
#define XA_RETRIEVAL_MAX_LAYERS 65
typedef struct xa_retrieval_metrics {
    int64_t n;                               /* pairs: chance is 1/n */
    int n_layers;                            /* L + 1: the embedding output, then every layer */
    double en2x[XA_RETRIEVAL_MAX_LAYERS];    /* accuracy@1, English retrieving the target side */
    double x2en[XA_RETRIEVAL_MAX_LAYERS];    /* and the target side retrieving English */
    double accuracy;                         /* the mean of both directions at the last layer */
} xa_retrieval_metrics;

/* Embed both sides of a retrieval file ("en<TAB>text", header "en...", at most T pieces a side)
 * by the mean of each layer's hidden states, the English side under src_adapter and the other
 * under tgt_adapter (AdapterHub directories; NULL = the bare base), centre each language's
 * embeddings and score accuracy@1 by cosine nearest neighbour, in batches of B. Errors: NOT_FOUND
 * / IO / CONFIG (path:LINE of a malformed pair, fewer than 2 pairs), those of the loaders. */
xa_status xa_eval_retrieval(const char *base_dir, const char *tokenizer, const char *src_adapter,
                            const char *tgt_adapter, const char *path, int B, int T,
                            xa_retrieval_metrics *out);
/* xa_eval_retrieval on the cache's base (cache NULL: xa_eval_retrieval). */
xa_status xa_eval_retrieval_cached(xa_eval_cache *cache, const char *base_dir, const char *tokenizer,
                                   const char *src_adapter, const char *tgt_adapter, const char *path, int B,
                                   int T, xa_retrieval_metrics *out);

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
