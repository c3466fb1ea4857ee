/* config: YAML recipes (the only user of libyaml, DESIGN.md §3). A recipe declares an experiment:
 * the base model and tokenizer, the languages, the data paths (with a {lang} placeholder), the
 * adapters per role and the phases in order with their hyperparameters. config reads it into the
 * plain structs below; nobody else sees YAML.
 *
 *     extends: ../configs/training/defaults.yaml   # optional (a path or a list of paths)
 *     name: quickstart
 *     output: ../out/quickstart                     # relative paths: to the file that says them
 *     seed: 42
 *     seeds: [1, 2, 3]                              # task/eval repetitions (default [seed])
 *     threads: 0                                    # 0 = all cores
 *     model:
 *       base: ../out/quickstart/base                # Hugging Face directory (pretrain writes it)
 *       tokenizer: ../out/quickstart/base/sentencepiece.bpe.model   # default: base/sentencepiece.bpe.model
 *       arch: tiny                                  # pretrain: tiny | small | base | config.json
 *       vocab_size: 8000                            # pretrain: tokenizer trained when missing
 *     languages: {source: en, targets: [de, fr, km], unseen: [km]}   # unseen: a group of targets
 *     data:
 *       pretrain: ../data/multi.txt
 *       mlm: ../data/mono/{lang}.txt
 *       mlm_heldout: ../data/mono/{lang}.heldout.txt   # optional: eval's held-out MLM table
 *       pairs: ../data/pairs.tsv                    # optional: aligned pairs (pretrain tlm / align)
 *       lang_pairs: ../data/lang-pairs.tsv          # optional: pairs for phases.lang.align (default: pairs)
 *       retrieval: ../data/retrieval/{lang}.tsv     # optional: eval's cross-lingual retrieval table
 *       task:
 *         name: topic                               # the task adapter's name
 *         type: classification                      # or tagging
 *         train: ../data/topic/en.train.tsv
 *         dev: ../data/topic/en.dev.tsv
 *         test: ../data/topic/{lang}.test.tsv
 *         target_train: ../data/topic/{lang}.train.tsv   # optional: in-language reference
 *         # type: question_answering also takes doc_stride, max_answer_length: 30, n_best_size: 20,
 *         # version_2_with_negative: true (SQuAD 2.0's null answer at evaluation; default false)
 *         # and null_score_diff_threshold: 0.0 (with it: "" when null - best span > this)
 *     adapters:
 *       lang: {preset: seq_bn_inv, reduction_factor: 2}     # any BnConfig key overrides the preset
 *       task: {preset: seq_bn, reduction_factor: 16}
 *       fusion: {preset: dynamic}                           # optional
 *     phases:                                       # in order; each item is {kind: {params}}
 *       - pretrain: {steps: 300, batch_size: 16, seq_len: 64, lr: 5e-4}
 *       - lang: {steps: 200, batch_size: 16, seq_len: 64, lr: 1e-4}
 *       - task: {epochs: 3, batch_size: 16, seq_len: 64, lr: 1e-4, eval_every: 50, early_stopping: 3,
 *                class_weights: balanced}        # or none (default), or [w0, w1, ...] per label
 *       - finetune: {epochs: 3, lr: 5e-5}   # optional: the full fine-tuning reference (no adapters)
 *       - eval: {setups: [task_only, src_stack, madx, madx2, full_ft]}
 *
 * The trainer keys of every training phase (defaults: xadapt's behaviour before they existed, so a
 * recipe that does not set them makes exactly what it made before, with the same provenance):
 *
 *       - lang:
 *           lr_scheduler: cosine        # linear (default) | cosine | constant | constant_with_warmup
 *           adam_beta1: 0.9             # AdamW (defaults 0.9, 0.999, 1e-8)
 *           adam_beta2: 0.98
 *           adam_epsilon: 1e-6
 *           hidden_dropout: 0.1         # default null: the base's config.json (pretrain: the arch's)
 *           attention_dropout: 0.0      #   (hidden_dropout also sets the task head's dropout)
 *           weight_decay_all: false     # lang/task/fusion/finetune; default true: adapters,
 *                                       #   fusion and heads decay every parameter; false: not
 *                                       #   biases and LayerNorm weights (HF Trainer)
 *           save_total_limit: 3         # checkpoints kept: checkpoint/ + 2 older checkpoint-<step>/;
 *                                       #   default 1 (the latest only), 0 = all
 *           eval_every: 100             # pretrain/lang: the held-out MLM loss on data.mlm_heldout
 *                                       #   every 100 steps (default 0: off)
 *           eval_batches: 8             #   on its first 8 batches of blocks (default 8)
 *           grad_accum: 4               # every phase: each step's batch_size rows run as 4
 *                                       #   micro-batches of batch_size / 4 whose gradients add
 *                                       #   up before the clip and AdamW (default 1; must divide
 *                                       #   batch_size); steps count optimizer steps
 *           gradient_checkpointing: true # every training phase: keep only each encoder layer's
 *                                       #   input and recompute the layer (adapters included) in
 *                                       #   backward; less memory, one more forward a step, the
 *                                       #   same weights bit for bit (default false)
 *       - task:
 *           metric_for_best_model: macro_f1   # classification: accuracy (default), macro_f1, loss;
 *                                             # tagging: span_f1 (default), loss;
 *                                             # question_answering: f1 (default), exact_match, loss
 *
 * Hugging Face's TrainingArguments names (learning_rate, num_train_epochs, max_steps,
 * per_device_train_batch_size, max_grad_norm, logging_steps, eval_steps, save_steps,
 * lr_scheduler_type, max_seq_length, mlm_probability, early_stopping_patience,
 * hidden_dropout_prob, attention_probs_dropout_prob, gradient_accumulation_steps) are not
 * aliases: each is an error (exit 2) whose hint names xadapt's key, so that a recipe has one
 * spelling per setting (HF's per_device_train_batch_size is the micro-batch: xadapt's batch_size
 * is the whole step's, batch_size / grad_accum rows per micro-batch). warmup_ratio, warmup_steps,
 * weight_decay, seed, save_total_limit, adam_* and metric_for_best_model are spelled as in HF.
 *
 * Rules: unknown keys and wrong types are errors; every error names path:line:col, the key, the
 * bad value and what is allowed (XA_STATUS_CONFIG, also for YAML syntax errors at libyaml's problem
 * line and column and for a missing `extends` file, named by the absolute path tried; IO /
 * NOT_FOUND for an unreadable or missing recipe). `extends` files are merged first
 * (mappings deep-merged, the including file wins; lists replaced), then `--set a.b.c=value`
 * overrides, addressed by key path; list items by index (phases.2.lr) or, for phases, by kind
 * (phases.task.lr). A value given with --set is parsed as a YAML scalar or flow collection.
 */
#ifndef XA_CONFIG_H
#define XA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XA_CFG_PATH 1024
#define XA_CFG_NAME 64
#define XA_CFG_MAX_LANGS 64
#define XA_CFG_MAX_PHASES 16
#define XA_CFG_MAX_OVERRIDES 48
#define XA_CFG_MAX_SETUPS 16
#define XA_CFG_MAX_SEEDS 16
#define XA_CFG_MAX_CLASS_WEIGHTS 256 /* XA_MAX_LABELS of data.h */

/* phases.*.class_weights */
enum { XA_CFG_CLASS_WEIGHTS_NONE = 0, XA_CFG_CLASS_WEIGHTS_BALANCED, XA_CFG_CLASS_WEIGHTS_LIST };

/* Where a value came from: file, 1-based line and column (line 0 = a default or --set). */
typedef struct xa_cfg_pos {
    char file[XA_CFG_PATH];
    int line, col;
} xa_cfg_pos;

/* Format "file:line:col" (or "--set" / "default") into buf; returns buf. */
const char *xa_cfg_pos_format(const xa_cfg_pos *p, char *buf, size_t n);

/* One adapter or fusion override: a BnConfig / AdapterFusionConfig key and its value as JSON text
 * (true, 2, 0.5, "gelu", [11], null), for io's config readers to apply and validate. */
typedef struct xa_cfg_kv {
    char key[XA_CFG_NAME];
    char json[256];
    xa_cfg_pos pos;
} xa_cfg_kv;

typedef struct xa_cfg_adapter {
    int present;                      /* the role is declared */
    char preset[XA_CFG_NAME];         /* "seq_bn_inv", "dynamic", ... */
    xa_cfg_pos pos;                   /* the role's mapping */
    int n_overrides;
    xa_cfg_kv overrides[XA_CFG_MAX_OVERRIDES];
} xa_cfg_adapter;

typedef enum xa_phase_kind {
    XA_PHASE_PRETRAIN = 0, /* MLM pretraining of the base (all parameters) */
    XA_PHASE_LANG,         /* one language adapter per language (source + targets), MLM, base frozen */
    XA_PHASE_TASK,         /* Stack(lang:src, task), lang frozen; the task adapter and its head */
    XA_PHASE_FUSION,       /* Fuse over trained adapters */
    XA_PHASE_EVAL,         /* zero-shot transfer table */
    XA_PHASE_FINETUNE,     /* full fine-tuning reference: the whole encoder + a head, no adapters */
    XA_PHASE_N
} xa_phase_kind;

/* "pretrain", "lang", "task", "fusion", "eval", "finetune". */
const char *xa_phase_kind_name(xa_phase_kind k);
xa_status xa_phase_kind_parse(const char *name, xa_phase_kind *out);

/* A phase's parameters. Defaults (applied for keys not given):
 *   steps 0 (task/fusion/finetune: use epochs; pretrain/lang: 1000), epochs 3, batch_size 16,
 *   seq_len 128, lr 1e-4 (pretrain 5e-4, finetune 5e-5), warmup_ratio 0.06 (warmup_steps, when
 *   > 0, wins), weight_decay 0.01, clip 1.0, eval_every 0 (= once per epoch for
 *   task/fusion/finetune; lang/pretrain: never, else the held-out MLM loss on data.mlm_heldout
 *   every N steps, on eval_batches 8 batches), lr_scheduler linear, adam_beta1 0.9, adam_beta2
 *   0.999, adam_epsilon 1e-8, hidden_dropout / attention_dropout null (the base's),
 *   weight_decay_all true, save_total_limit 1, grad_accum 1, metric_for_best_model the task's primary metric
 *   (accuracy; tagging: span_f1), early_stopping
 *   0 (off; else patience in evaluations), ckpt_every 200, log_every 10, adapter_drop 0 (AdapterDrop
 *   k_max), max_docs 0 (all lines), mlm_prob 0.15, whole_word_mask false, seed = the recipe seed,
 *   languages [] (lang phase: all of source + targets), setups (eval) [task_only, src_stack, madx],
 *   pretrain only: tlm 0 (share of steps on TLM batches), align 0 (contrastive weight),
 *   align_pairs 0 (= batch_size / 2), align_temp 0.05, pair_alpha 0.3,
 *   lang: align 0 (aligned language adapters: the weight of the target adapters' contrastive
 *   alignment to the source adapter on data.lang_pairs; the source adapter never gets it),
 *   align_pairs 32, align_temp 0.05,
 *   reference_seeds 0 (task phase: in-language references are trained for the first N of the
 *   recipe's seeds; 0 = all), class_weights none (task, fusion, finetune: the loss weight of
 *   each label, `balanced` = scikit-learn's n_samples / (n_classes * count_c) over the phase's
 *   own training file, or a list with one weight >= 0 per label in the head's label order; the
 *   weighted loss is torch's sum w[y] loss / sum w[y]). The finetune phase takes the task phase's
 *   keys except adapter_drop and reference_seeds. */
typedef struct xa_cfg_phase {
    xa_phase_kind kind;
    xa_cfg_pos pos;
    int64_t steps;
    double epochs;
    int batch_size;
    int seq_len;
    double lr;
    int64_t warmup_steps;
    double warmup_ratio;
    double weight_decay;
    double clip;
    int64_t eval_every;
    int early_stopping;
    int64_t ckpt_every;
    int64_t log_every;
    int adapter_drop;
    int64_t max_docs;
    double mlm_prob;
    int whole_word_mask;
    uint64_t seed;
    int reference_seeds;                           /* task: first N seeds get references; 0 = all */
    int class_weights;                             /* task/fusion/finetune: XA_CFG_CLASS_WEIGHTS_* */
    int n_class_weights;                           /* _LIST: one weight per label, label order */
    double class_weight_list[XA_CFG_MAX_CLASS_WEIGHTS];
    double tlm;                                    /* pretrain: share of TLM steps (data.pairs) */
    double align;                                  /* pretrain, lang: contrastive alignment weight */
    int align_pairs;                               /* pretrain, lang: pairs per alignment batch */
    double align_temp;                             /* pretrain, lang: its temperature (0.05) */
    double pair_alpha;                             /* pretrain: language sampling exponent (0.3) */
    char lr_scheduler[24];                         /* linear, cosine, constant, constant_with_warmup */
    double adam_beta1, adam_beta2, adam_epsilon;   /* AdamW: 0.9, 0.999, 1e-8 */
    double hidden_dropout, attention_dropout;      /* < 0 (null): the base's config.json */
    int weight_decay_all;                          /* lang/task/fusion/finetune: 1 (default) decays
                                                      every adapter/fusion/head parameter; 0: HF */
    int save_total_limit;                          /* checkpoints kept (1; 0 = all) */
    int grad_accum;                                /* micro-batches per optimizer step (1); divides
                                                      batch_size, the step's (global) batch */
    int gradient_checkpointing;                    /* every training phase: recompute each layer's
                                                      forward in backward (0 = keep them all) */
    char metric_for_best_model[24];                /* task/fusion/finetune: accuracy, macro_f1,
                                                      span_f1, f1, exact_match, loss (resolved:
                                                      never empty there) */
    int eval_batches;                              /* pretrain/lang: held-out batches per eval (8) */
    char precision[24];                            /* fp32 (default) | bf16: the matrix products */
    int n_languages;                               /* lang phase: a subset, 0 = all */
    char languages[XA_CFG_MAX_LANGS][16];
    int n_setups;                                  /* eval */
    char setups[XA_CFG_MAX_SETUPS][128];           /* names (task_only, src_stack, madx, madx2,
                                                      fusion, in_language, full_ft) or setup text with
                                                      {src} / {tgt} / {task} placeholders */
} xa_cfg_phase;

typedef enum xa_task_type {
    XA_TASK_CLASSIFICATION = 0,
    XA_TASK_TAGGING,
    XA_TASK_PAIR_CLASSIFICATION, /* "pair_classification": two texts, a classification head */
    XA_TASK_MULTIPLE_CHOICE,     /* "multiple_choice": COPA-style, AdapterHub's multiple_choice head */
    XA_TASK_QUESTION_ANSWERING,  /* "question_answering": SQuAD-style extractive QA, AdapterHub's
                                    question_answering head */
} xa_task_type;

#define XA_CFG_MAX_CHOICES     16
#define XA_CFG_QA_MAX_ANSWER_LENGTH 30 /* data.task.max_answer_length default (HF run_qa) */
#define XA_CFG_QA_N_BEST_SIZE       20 /* data.task.n_best_size default (HF run_qa) */
#define XA_CFG_MAX_TASK_LABELS 256
/* data.task.fields: the JSON keys of the task files' fields ("" = the default key). */
typedef struct xa_cfg_task_fields {
    char text[64], text_pair[64], label[64], tokens[64], tags[64], premise[64], question[64];
    int n_choices;                        /* 0: the default (choice1, choice2) */
    char choices[XA_CFG_MAX_CHOICES][64];
} xa_cfg_task_fields;

typedef struct xa_recipe {
    char path[XA_CFG_PATH];           /* the recipe file as given */
    char name[XA_CFG_NAME * 2];
    char output[XA_CFG_PATH];         /* resolved path */
    uint64_t seed;
    int n_seeds;
    uint64_t seeds[XA_CFG_MAX_SEEDS];
    int threads;
    char precision[24];               /* top-level precision: every phase's default (fp32) */
    /* model (paths resolved) */
    char base[XA_CFG_PATH];
    char tokenizer[XA_CFG_PATH];
    char arch[XA_CFG_PATH];           /* a preset name, or a resolved config.json path */
    int vocab_size;
    /* languages */
    char source[16];
    int n_targets;
    char targets[XA_CFG_MAX_LANGS][16];
    int n_unseen;                     /* targets kept out of the base (a subset of targets) */
    char unseen[XA_CFG_MAX_LANGS][16];
    /* data (paths resolved; may hold {lang}) */
    char pretrain_corpus[XA_CFG_PATH];
    char mlm_corpus[XA_CFG_PATH];
    char mlm_heldout[XA_CFG_PATH];    /* optional: held-out text for the eval phase's MLM table */
    char pairs[XA_CFG_PATH];          /* optional: aligned pairs for TLM / alignment (pretrain) */
    char lang_pairs[XA_CFG_PATH];     /* aligned pairs of the lang phase's align (default: pairs) */
    char retrieval[XA_CFG_PATH];      /* optional: held-out aligned pairs per {lang} (eval) */
    char task_name[XA_CFG_NAME];
    xa_task_type task_type;
    xa_cfg_task_fields task_fields;   /* data.task.fields */
    int qa_doc_stride;                /* data.task.doc_stride (QA): 0 = min(128, seq_len / 3) */
    int qa_max_answer_length;         /* data.task.max_answer_length (QA): 30 */
    int qa_n_best_size;               /* data.task.n_best_size (QA): 20 */
    int qa_version_2_with_negative;   /* data.task.version_2_with_negative (QA): 0; 1: SQuAD 2.0's
                                         null answer at evaluation (eval.h: xa_qa_postprocess) */
    double qa_null_score_diff_threshold; /* data.task.null_score_diff_threshold (QA, with v2): 0.0 */
    int n_task_labels;                /* data.task.labels: names of integer labels / tags, in id order */
    char task_labels[XA_CFG_MAX_TASK_LABELS][64];
    char task_train[XA_CFG_PATH];
    char task_dev[XA_CFG_PATH];
    char task_test[XA_CFG_PATH];
    char task_target_train[XA_CFG_PATH];
    /* adapters */
    xa_cfg_adapter lang_adapter, task_adapter, fusion;
    /* phases, in order */
    int n_phases;
    xa_cfg_phase phases[XA_CFG_MAX_PHASES];
} xa_recipe;

/* Read a recipe, apply `extends` and the --set overrides ("a.b.c=value" strings), check it and
 * fill r. Required: name, output, model.base, languages.source; the data paths a declared phase
 * needs (pretrain: data.pretrain; lang: data.mlm; task, finetune: data.task.train/dev; eval:
 * data.task.test); a `lang` adapter for lang/task phases, a `task` adapter for task phases.
 * Language codes: [A-Za-z0-9_-]{1,15}. Errors as described at the top. */
xa_status xa_recipe_load(xa_recipe *r, const char *path, const char *const *sets, int n_sets);

/* Write the fully resolved recipe (every key with its value, defaults included) as YAML that
 * xa_recipe_load reads back to the same struct; atomically. */
xa_status xa_recipe_write(const xa_recipe *r, const char *path);

/* Index of the first phase of kind k, or -1. */
int xa_recipe_phase(const xa_recipe *r, xa_phase_kind k);

/* Replace every "{lang}" in pattern with lang (USAGE when the result does not fit). */
xa_status xa_cfg_expand(char *out, size_t n, const char *pattern, const char *lang);

#ifdef __cplusplus
}
#endif
#endif /* XA_CONFIG_H */
