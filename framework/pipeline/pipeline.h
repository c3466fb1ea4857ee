/* pipeline: what a recipe makes, whether each piece is done, and whether the recipe can run.
 *
 * A recipe (config/) makes artefacts: the base (pretrain phase), one language adapter per language
 * (lang), one task adapter + head per seed (task) and, with data.task.target_train, in-language
 * references per target and seed, one fusion per seed (fusion), one fully fine-tuned encoder +
 * head per seed (finetune, built on the base alone), and the eval tables. The plan lists
 * them in phase order with their output directory and state; xa_pipeline_run trains what the plan
 * says (the CLI prints the plan for `xadapt run --dry-run`). The plan is built without training and
 * unit-tested. A C program runs a recipe as the CLI does:
 *     xa_recipe_load(&r, path, sets, n) -> xa_pipeline_validate(&r) -> xa_plan_build(&pl, &r, &o)
 *     -> xa_pipeline_run(&pl, &o, stdout) -> xa_plan_free(&pl)
 *
 * Provenance. Every finished artefact directory holds XA_PROV_FILE, lines "key: value": the
 * resolved settings that affect it (a setting added after the first outputs were made, such as
 * lr_scheduler or adam_beta1, only when it differs from its default, so the provenance of outputs
 * made before it existed still matches), "size=N mtime=S.N" of each data file it read, and for each
 * artefact it was built on a line "on <label>: <id>" (the id of a provenance file is its FNV-1a
 * hash, which includes its "run:" line, so a retrained input changes the id even with the same
 * settings; an input without provenance, such as a downloaded base, is named by the stat of its
 * weights). A rerun compares the text it would write (without the "run:" line) with the file:
 * identical -> SKIP; different -> STALE, an error naming the lines that changed, unless forced.
 * A finished output without provenance is STALE too (made by hand or by an older xadapt).
 * Eval cells carry their own identity (pipeline/cells.h) and are reused one by one.
 *
 * Validation (xa_pipeline_validate) reads the whole recipe's data before any training: every
 * corpus exists and is not empty, every task file parses (without a tokenizer), test and target
 * files use the training file's labels, eval setup names are known, names used as path
 * components are plain, and the limits of fusion (children) and tables (rows, columns) hold.
 */
#ifndef XA_PIPELINE_H
#define XA_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "core/core.h"
#include "io/file.h"
#include "train/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XA_PROV_FILE "xadapt-provenance.txt"
/* Written by xa_plan_begin (the provenance the artefact will have), removed by xa_plan_commit. */
#define XA_PROV_PENDING "xadapt-provenance.pending"

typedef enum xa_art_kind {
    XA_ART_BASE = 0, /* model.base, made by the pretrain phase */
    XA_ART_LANG,     /* OUTPUT/lang/<code> */
    XA_ART_TASK,     /* OUTPUT/task/<task>/seed<k> */
    XA_ART_TARGET,   /* OUTPUT/target/<task>/<code>/seed<k>: in-language reference */
    XA_ART_FUSION,   /* OUTPUT/fusion/<task>/seed<k> */
    XA_ART_FINETUNE, /* OUTPUT/finetune/<task>/seed<k>: the full fine-tuning reference */
} xa_art_kind;

typedef enum xa_art_state {
    XA_ART_TRAIN = 0, /* missing or unfinished: trained (an unfinished one continues its checkpoint) */
    XA_ART_SKIP,      /* finished with this recipe's provenance */
    XA_ART_FORCE,     /* trained again from scratch (--force) */
    XA_ART_STALE,     /* finished from other settings or inputs: an error unless forced */
} xa_art_state;

/* "train", "skip", "retrain", "stale". */
const char *xa_art_state_name(xa_art_state s);

#define XA_PLAN_MAX_DEPS (XA_CFG_MAX_LANGS + 3)

typedef struct xa_artefact {
    xa_art_kind kind;
    const xa_cfg_phase *phase;   /* the recipe phase that makes it (borrowed from the recipe) */
    char label[128];             /* "base", "lang de", "task pkg seed 3", ... */
    char lang[16];               /* lang / target: the language */
    uint64_t seed;               /* task / target / fusion: the seed */
    char dir[XA_PATH_MAX];       /* output directory; holds XA_PROV_FILE when finished */
    char done[XA_PATH_MAX];      /* the file whose presence means "finished" */
    int selected;                /* this command makes it (phase, --lang, --seed) */
    int deps[XA_PLAN_MAX_DEPS];  /* indices of planned artefacts it is built on */
    int n_deps;
    xa_art_state state;
    char why[1024];              /* STALE: what changed */
} xa_artefact;

typedef struct xa_plan {
    const xa_recipe *r;          /* borrowed */
    int evaluates;               /* the command runs the eval phase: it uses every artefact */
    int n;
    xa_artefact *a;              /* (n) owned */
} xa_plan;

/* What one command asks for. */
typedef struct xa_plan_opts {
    xa_phase_kind only;          /* the one phase to make (train), XA_PHASE_N for every phase */
    const char *lang;            /* lang phase: only this language, or NULL */
    int has_seed;                /* task / fusion / finetune: only this seed */
    uint64_t seed;
    xa_phase_kind force;         /* selected artefacts of this phase and of the phases built on it
                                    are retrained from scratch (xa_plan_forces); XA_PHASE_N: none */
} xa_plan_opts;

xa_plan_opts xa_plan_opts_default(void);

/* Whether --force `force` retrains the artefacts of phase kind k: the phase itself and those
 * built on it. The MAD-X chain pretrain -> lang -> task -> fusion is ordered (a phase forces
 * every later one); finetune is built on the base alone, so only pretrain and finetune force it,
 * and it forces nothing else. */
int xa_plan_forces(xa_phase_kind force, xa_phase_kind k);

/* Build the plan of recipe r (kept borrowed) and the state of every artefact from the files on
 * disk. Never fails on a STALE artefact (xa_plan_check reports those). Errors: NOMEM, USAGE (a path
 * too long). On error *pl is empty. */
xa_status xa_plan_build(xa_plan *pl, const xa_recipe *r, const xa_plan_opts *o);
void xa_plan_free(xa_plan *pl);

/* CONFIG naming every STALE artefact this command makes or uses (a selected one, an input of a
 * selected one, the base, or any when it evaluates), what changed and how to proceed (--force
 * PHASE, or another output); OK when none. An output downstream of what this command retrains
 * becomes stale without an error here: the next command that uses it reports it. */
xa_status xa_plan_check(const xa_plan *pl);

/* Index of the artefact of kind k (lang: language; task/fusion: seed; target: both), or -1. */
int xa_plan_find(const xa_plan *pl, xa_art_kind k, const char *lang, uint64_t seed);
/* Whether artefact i is an aligned language adapter (a target's, phases.lang.align > 0): built on
 * the source adapter and data.lang_pairs. */
int xa_plan_lang_aligned(const xa_plan *pl, int i);

/* The provenance text artefact i would have now (with a "run:" line when with_run), malloc'ed
 * into *out (caller frees). The inputs it was built on are read as they are now. */
xa_status xa_plan_provenance(const xa_plan *pl, int i, int with_run, char **out);

/* Before (re)training artefact i: remove its provenance file, so an interrupted run is never
 * taken as finished, and write XA_PROV_PENDING (the provenance it will have; dir is created).
 * After it finished: write its provenance (atomically) and remove XA_PROV_PENDING. A finished
 * output without provenance whose pending file matches the plan's provenance was killed between
 * its last output and its commit: the plan trains it again (TRAIN: its checkpoint resumes and
 * ends at once) instead of calling it STALE. */
xa_status xa_plan_begin(const xa_plan *pl, int i);
xa_status xa_plan_commit(const xa_plan *pl, int i);

/* The provenance of the eval outputs: the eval phase's settings, the stat of every test file, and
 * the id of every finished artefact of the plan (malloc'ed into *out). */
xa_status xa_plan_eval_provenance(const xa_plan *pl, const xa_cfg_phase *eval, char **out);

/* The provenance of a table shared by the recipes of an output (eval/mlm, eval/retrieval): its
 * name, block length T, batch B, seed, each language's file (pattern with {lang}: the held-out
 * text, the retrieval pairs) and the id of its language adapter. */
xa_status xa_plan_table_provenance(const xa_plan *pl, const char *name, const char *pattern, int B, int T,
                                   char **out);

/* Run plan pl (built with o for its recipe, after xa_pipeline_validate) to the end: CONFIG for a
 * stale output it uses (xa_plan_check); resolved-<task>.yaml (unless an output is stale); then
 * each phase of o->only (every phase for XA_PHASE_N) in recipe order: finished artefacts are
 * skipped, the others trained (continuing their checkpoint, or from scratch when forced) and
 * their provenance recorded; the eval phase writes eval/<task>/ (and eval/mlm/). Progress lines
 * and the transfer tables are printed to out (the CLI's stdout); nothing is printed to stdout by
 * the library itself. Errors: those of the trainers and writers (the first one stops the run). */
xa_status xa_pipeline_run(xa_plan *pl, const xa_plan_opts *o, FILE *out);

/* The id of what an eval cell ran on: FNV-1a over the provenance files of the artefacts that hold
 * the n directories (each dir or one of its two parents holds XA_PROV_FILE; a directory without
 * one adds its path and the size and mtime of its weight and config files), as 16 hex digits into
 * id (17 bytes). The full identity of a cell (its "cell" field) adds the base, the tokenizer, the
 * test file and the eval settings (pipeline/cells.h). */
void xa_pipeline_inputs_id(const char *const *dirs, int n, char id[17]);

/* The known eval setup names: task_only, src_stack, madx, madx2, fusion, in_language, full_ft. */
int xa_pipeline_setup_known(const char *name);

/* Check the whole recipe before any training (see the top). Errors: CONFIG (naming the recipe
 * place or the data file:line, the bad value, what is expected; a missing data file with the
 * phase and language that need it), IO, NOMEM. */
xa_status xa_pipeline_validate(const xa_recipe *r);

/* How a recipe's task files are read (data.task.type, fields, labels) as data/'s input
 * description; the pointers point into r and into ri itself (do not copy ri). */
typedef struct xa_recipe_input {
    xa_task_kind kind;
    xa_task_fields fields;
    const char *choices[XA_TASK_MAX_CHOICES];
    const char *names[XA_MAX_LABELS];
    int n_names;
    int doc_stride, max_answer_length, n_best_size; /* question answering (data.task); 0: defaults */
    int version_2_with_negative;                    /* QA: SQuAD 2.0's null answer (data.task) */
    double null_score_diff_threshold;
} xa_recipe_input;
void xa_recipe_input_init(xa_recipe_input *ri, const xa_recipe *r);

/* The trainer knobs of a recipe phase (lr_scheduler, adam_*, dropout overrides, weight_decay_all,
 * save_total_limit), as the runner hands them to train/. */
xa_train_knobs xa_pipeline_knobs(const xa_cfg_phase *p);
/* The precision of a phase's products in effect on this CPU (its `precision` key, bf16 only where
 * the CPU has the kernel: tensor.h xa_precision_effective). */
xa_precision xa_pipeline_precision(const xa_cfg_phase *p);

/* OUTPUT/resolved-<task>.yaml: the resolved recipe, one per task of a shared output. */
xa_status xa_pipeline_resolved_path(const xa_recipe *r, char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* XA_PIPELINE_H */
