/* pipeline: the plan of a recipe (artefacts, their provenance and state) and the validation of the
 * whole recipe before training (pipeline.h). Training itself stays in train/; the CLI walks the
 * plan. Does not: hash file contents (size and mtime stand for a data file; the artefacts' own
 * provenance files are hashed), or lock an output against two concurrent runs. */
#include "pipeline/pipeline.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compose/compose.h"
#include "data/data.h"
#include "eval/eval.h"
#include "pipeline/cells.h"
#include "train/dist.h"

/* ---- a growable text buffer ----------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) XA_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + (size_t)w + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static xa_status sb_finish(sbuf *b, char **out) {
    if (b->oom || !b->s) {
        free(b->s);
        *out = NULL;
        return xa_error_set(XA_STATUS_NOMEM, "pipeline", NULL, NULL, "out of memory");
    }
    *out = b->s;
    return XA_STATUS_OK;
}

/* ---- names ---------------------------------------------------------------------------------- */

const char *xa_art_state_name(xa_art_state s) {
    switch (s) {
    case XA_ART_TRAIN: return "train";
    case XA_ART_SKIP: return "skip";
    case XA_ART_FORCE: return "retrain";
    case XA_ART_STALE: return "stale";
    }
    return "?";
}

static const char *const g_setups[] = {"task_only", "src_stack", "madx", "madx2", "fusion", "in_language", "full_ft"};

int xa_pipeline_setup_known(const char *name) {
    for (size_t i = 0; i < sizeof g_setups / sizeof *g_setups; i++)
        if (!strcmp(name, g_setups[i])) return 1;
    return 0;
}

int xa_plan_forces(xa_phase_kind force, xa_phase_kind k) {
    if (force == XA_PHASE_N) return 0;
    if (k == XA_PHASE_FINETUNE || force == XA_PHASE_FINETUNE) return k == force || force == XA_PHASE_PRETRAIN;
    return k >= force;
}

xa_plan_opts xa_plan_opts_default(void) {
    xa_plan_opts o;
    memset(&o, 0, sizeof o);
    o.only = XA_PHASE_N;
    o.force = XA_PHASE_N;
    return o;
}

/* ---- paths ---------------------------------------------------------------------------------- */

static xa_status join_parts(char *out, size_t n, const char *const *parts, int k) {
    int w = snprintf(out, n, "%s", parts[0]);
    for (int i = 1; i < k && w >= 0 && (size_t)w < n; i++) w += snprintf(out + w, n - (size_t)w, "/%s", parts[i]);
    if (w < 0 || (size_t)w >= n)
        return xa_error_set(XA_STATUS_USAGE, parts[0], "a path shorter than XA_PATH_MAX", NULL, "output path too long");
    return XA_STATUS_OK;
}

static int file_exists(const char *dir, const char *name) {
    char p[XA_PATH_MAX];
    return !xa_path_join(p, sizeof p, dir, name) && access(p, F_OK) == 0;
}

xa_status xa_pipeline_resolved_path(const xa_recipe *r, char *out, size_t n) {
    char name[XA_CFG_NAME + 32];
    snprintf(name, sizeof name, "resolved-%s.yaml", r->task_name);
    return xa_path_join(out, n, r->output, name);
}

/* ---- provenance text ------------------------------------------------------------------------ */

/* "path size=N mtime=S.N", or "path (missing)". */
static void sb_file(sbuf *b, const char *key, const char *path) {
    char id[128];
    if (xa_file_stat_id(path, id, sizeof id)) {
        xa_error_clear();
        snprintf(id, sizeof id, "(missing)");
    }
    sb_printf(b, "%s: %s %s\n", key, path, id);
}

static void sb_adapter(sbuf *b, const char *key, const xa_cfg_adapter *a) {
    sb_printf(b, "%s: %s", key, a->present ? a->preset : "(default)");
    for (int i = 0; i < a->n_overrides; i++) sb_printf(b, " %s=%s", a->overrides[i].key, a->overrides[i].json);
    sb_printf(b, "\n");
}

/* The metric an unset metric_for_best_model means for a recipe task type (train.h's table). */
static const char *default_best_metric(xa_task_type t) {
    const int family = t == XA_TASK_TAGGING ? XA_BEST_FOR_TAGGING
                       : t == XA_TASK_QUESTION_ANSWERING ? XA_BEST_FOR_QA
                                                         : XA_BEST_FOR_CLASSIFICATION;
    const xa_best_metric *m = xa_best_metric_find(NULL, family);
    XA_ASSERT(m);
    return m->name;
}

/* The settings of a phase that change what it makes (ckpt_every, log_every, save_total_limit,
 * eval_batches and the validation of MLM phases do not). */
static void sb_phase(sbuf *b, const xa_cfg_phase *p, uint64_t seed, xa_task_type task_type) {
    sb_printf(b, "phase: %s\nsteps: %" PRId64 "\nepochs: %g\nbatch_size: %d\nseq_len: %d\nlr: %.10g\n",
              xa_phase_kind_name(p->kind), p->steps, p->epochs, p->batch_size, p->seq_len, p->lr);
    sb_printf(b, "warmup_steps: %" PRId64 "\nwarmup_ratio: %g\nweight_decay: %g\nclip: %g\nseed: %" PRIu64 "\n",
              p->warmup_steps, p->warmup_ratio, p->weight_decay, p->clip, seed);
    if (p->kind == XA_PHASE_TASK || p->kind == XA_PHASE_FUSION || p->kind == XA_PHASE_FINETUNE)
        sb_printf(b, "eval_every: %" PRId64 "\nearly_stopping: %d\n", p->eval_every, p->early_stopping);
    if (p->kind != XA_PHASE_EVAL && p->kind != XA_PHASE_FINETUNE)
        sb_printf(b, "adapter_drop: %d\nmax_docs: %" PRId64 "\n", p->adapter_drop, p->max_docs);
    if (p->kind == XA_PHASE_LANG || p->kind == XA_PHASE_PRETRAIN)
        sb_printf(b, "mlm_prob: %g\nwhole_word_mask: %d\n", p->mlm_prob, p->whole_word_mask);
    if (p->class_weights != XA_CFG_CLASS_WEIGHTS_NONE) { /* only when used: other artefacts keep their provenance */
        sb_printf(b, "class_weights:");
        if (p->class_weights == XA_CFG_CLASS_WEIGHTS_BALANCED) sb_printf(b, " balanced");
        for (int k = 0; k < p->n_class_weights; k++) sb_printf(b, " %.10g", p->class_weight_list[k]);
        sb_printf(b, "\n");
    }
    if (p->kind == XA_PHASE_PRETRAIN) /* the cross-lingual objectives on aligned pairs */
        sb_printf(b, "tlm: %g\nalign: %g\nalign_pairs: %d\nalign_temp: %g\npair_alpha: %g\n", p->tlm, p->align,
                  p->align_pairs, p->align_temp, p->pair_alpha);
    /* keys added after outputs existed: only when they differ from their defaults, so that the
     * provenance of what an older xadapt made (and of recipes that do not set them) is unchanged */
    const xa_train_knobs k = xa_pipeline_knobs(p), d = xa_train_knobs_default();
    if (k.sched != d.sched) sb_printf(b, "lr_scheduler: %s\n", p->lr_scheduler);
    if (k.adam_beta1 != d.adam_beta1) sb_printf(b, "adam_beta1: %.10g\n", k.adam_beta1);
    if (k.adam_beta2 != d.adam_beta2) sb_printf(b, "adam_beta2: %.10g\n", k.adam_beta2);
    if (k.adam_epsilon != d.adam_epsilon) sb_printf(b, "adam_epsilon: %.10g\n", k.adam_epsilon);
    if (k.hidden_dropout >= 0) sb_printf(b, "hidden_dropout: %.10g\n", k.hidden_dropout);
    if (k.attention_dropout >= 0) sb_printf(b, "attention_dropout: %.10g\n", k.attention_dropout);
    if (p->kind != XA_PHASE_PRETRAIN && k.weight_decay_all != d.weight_decay_all)
        sb_printf(b, "weight_decay_all: %s\n", k.weight_decay_all ? "true" : "false");
    /* config resolves an unset metric_for_best_model to the task type's primary metric: only
     * another metric is a setting (QA's default is f1, tagging's span_f1, the others' accuracy) */
    if (p->metric_for_best_model[0] && strcmp(p->metric_for_best_model, default_best_metric(task_type)))
        sb_printf(b, "metric_for_best_model: %s\n", p->metric_for_best_model);
    /* the precision in effect (a bf16 recipe on a CPU without the kernel computes in fp32) */
    if (k.precision != d.precision) sb_printf(b, "precision: %s\n", xa_precision_name(k.precision));
    if (k.grad_accum != d.grad_accum) sb_printf(b, "grad_accum: %d\n", k.grad_accum);
}

xa_train_knobs xa_pipeline_knobs(const xa_cfg_phase *p) {
    xa_train_knobs k = xa_train_knobs_default();
    if (xa_sched_parse_kind(p->lr_scheduler, &k.sched)) { /* config checked the name */
        xa_error_clear();
        k.sched = XA_SCHED_KIND_LINEAR;
    }
    k.adam_beta1 = p->adam_beta1;
    k.adam_beta2 = p->adam_beta2;
    k.adam_epsilon = p->adam_epsilon;
    k.hidden_dropout = p->hidden_dropout;
    k.attention_dropout = p->attention_dropout;
    k.weight_decay_all = p->weight_decay_all;
    k.save_total_limit = p->save_total_limit;
    k.precision = xa_pipeline_precision(p);
    k.grad_accum = p->grad_accum > 0 ? p->grad_accum : 1;
    k.gradient_checkpointing = p->gradient_checkpointing != 0; /* not in the provenance: same results */
    return k;
}

xa_precision xa_pipeline_precision(const xa_cfg_phase *p) {
    xa_precision want = XA_PRECISION_FP32;
    if (p->precision[0] && xa_precision_parse(p->precision, "precision", &want)) { /* config checked the name */
        xa_error_clear();
        want = XA_PRECISION_FP32;
    }
    return xa_precision_effective(want);
}

int xa_plan_lang_aligned(const xa_plan *pl, int i) {
    const xa_artefact *a = &pl->a[i];
    return a->kind == XA_ART_LANG && a->phase->align > 0 && strcmp(a->lang, pl->r->source) != 0;
}

/* The id of a provenance file: FNV-1a of its bytes. */
static int prov_id(const char *dir, char *id, size_t n) {
    char p[XA_PATH_MAX], *text = NULL;
    size_t len = 0;
    if (xa_path_join(p, sizeof p, dir, XA_PROV_FILE) || xa_file_read(&text, &len, p, 1 << 20)) {
        xa_error_clear();
        return 0;
    }
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 1099511628211ull;
    }
    free(text);
    snprintf(id, n, "provenance %016" PRIx64, h);
    return 1;
}

/* The line naming an input: its provenance id, else the stat of its weights, else "(to be trained again)"
 * (it is made by this run, or missing). */
static void sb_input(sbuf *b, const char *label, const char *dir, const char *weights, int pending) {
    char id[160], p[XA_PATH_MAX];
    if (pending) {
        snprintf(id, sizeof id, "(to be trained again)");
    } else if (!prov_id(dir, id, sizeof id)) {
        const char *twin = !strcmp(weights, "model.safetensors")     ? "pytorch_model.bin"
                           : !strcmp(weights, "adapter.safetensors") ? "pytorch_adapter.bin"
                                                                     : NULL;
        if (xa_path_join(p, sizeof p, dir, weights) || xa_file_stat_id(p, id, sizeof id)) {
            xa_error_clear();
            /* a downloaded base or adapter may hold only the PyTorch form (io/tensorfile.h) */
            if (!twin || xa_path_join(p, sizeof p, dir, twin) || xa_file_stat_id(p, id, sizeof id)) {
                xa_error_clear();
                snprintf(id, sizeof id, "(missing)");
            }
        }
    }
    sb_printf(b, "on %s: %s\n", label, id);
}

static int pending(const xa_plan *pl, int i) {
    return pl->a[i].state == XA_ART_TRAIN || pl->a[i].state == XA_ART_FORCE || pl->a[i].state == XA_ART_STALE;
}

/* The weights file that identifies an artefact without provenance. */
static const char *weights_of(xa_art_kind k) {
    switch (k) {
    case XA_ART_BASE: return "model.safetensors";
    case XA_ART_LANG: return "adapter.safetensors";
    default: return "final/adapter_setup.json";
    }
}

/* The base and the tokenizer: from the plan when the recipe pretrains them, else their files. */
static void sb_base(sbuf *b, const xa_plan *pl) {
    const xa_recipe *r = pl->r;
    int ib = xa_plan_find(pl, XA_ART_BASE, NULL, 0);
    sb_input(b, "base", r->base, "model.safetensors", ib >= 0 && pending(pl, ib));
    if (ib < 0) sb_file(b, "tokenizer", r->tokenizer);
}

static void sb_dep(sbuf *b, const xa_plan *pl, int d) {
    const xa_artefact *a = &pl->a[d];
    sb_input(b, a->label, a->dir, weights_of(a->kind), pending(pl, d));
}

xa_status xa_plan_provenance(const xa_plan *pl, int i, int with_run, char **out) {
    const xa_recipe *r = pl->r;
    const xa_artefact *a = &pl->a[i];
    const xa_cfg_phase *p = a->phase;
    sbuf b = {0};
    sb_printf(&b, "artefact: %s\n", a->label);
    char path[XA_PATH_MAX];
    switch (a->kind) {
    case XA_ART_BASE:
        sb_printf(&b, "arch: %s\nvocab_size: %d\n", r->arch, r->vocab_size);
        if (strstr(r->arch, ".json")) sb_file(&b, "arch_file", r->arch);
        sb_file(&b, "corpus", r->pretrain_corpus);
        if (r->pairs[0]) sb_file(&b, "pairs", r->pairs);
        sb_phase(&b, p, p->seed, r->task_type);
        break;
    case XA_ART_LANG:
        if (xa_cfg_expand(path, sizeof path, r->mlm_corpus, a->lang)) return XA_STATUS_USAGE;
        sb_printf(&b, "language: %s\n", a->lang);
        sb_adapter(&b, "adapter", &r->lang_adapter);
        sb_file(&b, "corpus", path);
        sb_phase(&b, p, p->seed, r->task_type);
        sb_base(&b, pl);
        if (xa_plan_lang_aligned(pl, i)) { /* aligned to the source adapter: its id follows as a dep */
            sb_printf(&b, "align: %g\nalign_pairs: %d\nalign_temp: %g\n", p->align, p->align_pairs, p->align_temp);
            sb_file(&b, "lang_pairs", r->lang_pairs);
        }
        break;
    case XA_ART_TASK:
    case XA_ART_TARGET:
    case XA_ART_FUSION:
    case XA_ART_FINETUNE:
        {
            static const char *const types[] = {"classification", "tagging", "pair_classification", "multiple_choice",
                                                "question_answering"};
            sb_printf(&b, "task: %s\ntype: %s\n", r->task_name, types[r->task_type]);
            /* QA: the windows the training data is cut into (the scoring keys only change eval) */
            if (r->task_type == XA_TASK_QUESTION_ANSWERING && r->qa_doc_stride)
                sb_printf(&b, "doc_stride: %d\n", r->qa_doc_stride);
            /* the answer decoding (HF run_qa's max_answer_length, n_best_size) scores the dev set
             * that picks the best weights: recorded when not the defaults, so outputs of
             * recipes that never set them keep their provenance */
            if (r->task_type == XA_TASK_QUESTION_ANSWERING && r->qa_max_answer_length != XA_CFG_QA_MAX_ANSWER_LENGTH)
                sb_printf(&b, "max_answer_length: %d\n", r->qa_max_answer_length);
            if (r->task_type == XA_TASK_QUESTION_ANSWERING && r->qa_n_best_size != XA_CFG_QA_N_BEST_SIZE)
                sb_printf(&b, "n_best_size: %d\n", r->qa_n_best_size);
            /* SQuAD 2.0's null answer changes the dev scores that pick the best weights: only
             * when set, so v1 outputs keep their provenance */
            if (r->task_type == XA_TASK_QUESTION_ANSWERING && r->qa_version_2_with_negative)
                sb_printf(&b, "version_2_with_negative: true\nnull_score_diff_threshold: %.17g\n",
                          r->qa_null_score_diff_threshold);
            /* only when set: the provenance of older recipes stays as it was */
            const xa_cfg_task_fields *tf = &r->task_fields;
            const char *const fk[] = {"text", "text_pair", "label", "tokens", "tags", "premise", "question"};
            const char *const fv[] = {tf->text, tf->text_pair, tf->label, tf->tokens, tf->tags, tf->premise, tf->question};
            for (int j = 0; j < 7; j++)
                if (fv[j][0]) sb_printf(&b, "field %s: %s\n", fk[j], fv[j]);
            for (int j = 0; j < tf->n_choices; j++) sb_printf(&b, "field choice %d: %s\n", j, tf->choices[j]);
            for (int j = 0; j < r->n_task_labels; j++) sb_printf(&b, "label %d: %s\n", j, r->task_labels[j]);
        }
        if (a->kind == XA_ART_FINETUNE) /* the whole encoder and the head train, no adapters */
            sb_printf(&b, "trains: encoder (embeddings included) + head\n");
        else
            sb_adapter(&b, "adapter", &r->task_adapter);
        if (a->kind == XA_ART_FUSION) sb_adapter(&b, "fusion", &r->fusion);
        if (a->kind == XA_ART_TARGET) {
            if (xa_cfg_expand(path, sizeof path, r->task_target_train, a->lang)) return XA_STATUS_USAGE;
            sb_printf(&b, "language: %s\n", a->lang);
            sb_file(&b, "train", path);
        } else {
            sb_file(&b, "train", r->task_train);
            if (r->task_dev[0]) sb_file(&b, "dev", r->task_dev);
        }
        sb_phase(&b, p, a->seed, r->task_type);
        sb_base(&b, pl);
        break;
    }
    for (int d = 0; d < a->n_deps; d++) sb_dep(&b, pl, a->deps[d]);
    /* inputs made outside this recipe's phases (a shared output): named by their files. A
     * fusion is built on every language adapter and on its seed's task adapter. */
    const int n_l = a->kind == XA_ART_FUSION                ? 1 + r->n_targets
                    : a->kind == XA_ART_BASE || a->kind == XA_ART_FINETUNE ? 0
                    : a->kind == XA_ART_LANG                ? xa_plan_lang_aligned(pl, i)
                                                            : 1;
    for (int k = 0; k < n_l; k++) {
        const char *l = a->kind == XA_ART_TARGET ? a->lang : k ? r->targets[k - 1] : r->source; /* LANG: the source */
        if (xa_plan_find(pl, XA_ART_LANG, l, 0) >= 0) continue;
        char dir[XA_PATH_MAX], label[64];
        const char *parts[] = {r->output, "lang", l};
        if (join_parts(dir, sizeof dir, parts, 3)) return XA_STATUS_USAGE;
        snprintf(label, sizeof label, "lang %s", l);
        sb_input(&b, label, dir, "adapter.safetensors", 0);
    }
    if (a->kind == XA_ART_FUSION && xa_plan_find(pl, XA_ART_TASK, NULL, a->seed) < 0) {
        char dir[XA_PATH_MAX], label[160], seed_dir[32];
        snprintf(seed_dir, sizeof seed_dir, "seed%" PRIu64, a->seed);
        const char *parts[] = {r->output, "task", r->task_name, seed_dir};
        if (join_parts(dir, sizeof dir, parts, 4)) return XA_STATUS_USAGE;
        snprintf(label, sizeof label, "task %s seed %" PRIu64, r->task_name, a->seed);
        sb_input(&b, label, dir, "final/adapter_setup.json", 0);
    }
    if (with_run) sb_printf(&b, "run: %lld.%ld\n", (long long)time(NULL), (long)getpid());
    return sb_finish(&b, out);
}

xa_status xa_plan_eval_provenance(const xa_plan *pl, const xa_cfg_phase *eval, char **out) {
    const xa_recipe *r = pl->r;
    sbuf b = {0};
    sb_printf(&b, "artefact: eval %s\nbatch_size: %d\nseq_len: %d\nsetups:", r->task_name, eval->batch_size,
              eval->seq_len);
    for (int s = 0; s < eval->n_setups; s++) sb_printf(&b, " %s", eval->setups[s]);
    sb_printf(&b, "\nseeds:");
    for (int k = 0; k < r->n_seeds; k++) sb_printf(&b, " %" PRIu64, r->seeds[k]);
    sb_printf(&b, "\n");
    for (int i = 0; i <= r->n_targets; i++) {
        char test[XA_PATH_MAX];
        const char *l = i ? r->targets[i - 1] : r->source;
        if (xa_cfg_expand(test, sizeof test, r->task_test, l)) return XA_STATUS_USAGE;
        char key[40];
        snprintf(key, sizeof key, "test %s", l);
        sb_file(&b, key, test);
    }
    sb_base(&b, pl);
    for (int i = 0; i < pl->n; i++)
        if (pl->a[i].kind != XA_ART_BASE && file_exists(pl->a[i].dir, XA_PROV_FILE)) sb_dep(&b, pl, i);
    return sb_finish(&b, out);
}

xa_status xa_plan_table_provenance(const xa_plan *pl, const char *name, const char *pattern, int B, int T,
                                   char **out) {
    const xa_recipe *r = pl->r;
    sbuf b = {0};
    sb_printf(&b, "artefact: eval %s\nbatch_size: %d\nseq_len: %d\nseed: %" PRIu64 "\n", name, B, T, r->seed);
    sb_base(&b, pl);
    for (int i = 0; i <= r->n_targets; i++) {
        const char *l = i ? r->targets[i - 1] : r->source;
        char text[XA_PATH_MAX], key[40], dir[XA_PATH_MAX], label[40];
        if (xa_cfg_expand(text, sizeof text, pattern, l)) return XA_STATUS_USAGE;
        snprintf(key, sizeof key, "file %s", l);
        sb_file(&b, key, text);
        const char *parts[] = {r->output, "lang", l};
        if (join_parts(dir, sizeof dir, parts, 3)) return XA_STATUS_USAGE;
        snprintf(label, sizeof label, "lang %s", l);
        sb_input(&b, label, dir, "adapter.safetensors", 0);
    }
    return sb_finish(&b, out);
}

void xa_pipeline_inputs_id(const char *const *dirs, int n, char id[17]) {
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < n; i++) h = xa_cell_inputs(h, dirs[i]);
    xa_cell_hex(h, id);
}

/* ---- the plan ------------------------------------------------------------------------------- */

static xa_artefact *add(xa_plan *pl, xa_art_kind k, const xa_cfg_phase *p, const char *lang, uint64_t seed) {
    xa_artefact *a = &pl->a[pl->n++];
    memset(a, 0, sizeof *a);
    a->kind = k;
    a->phase = p;
    a->seed = seed;
    if (lang) snprintf(a->lang, sizeof a->lang, "%s", lang);
    return a;
}

int xa_plan_find(const xa_plan *pl, xa_art_kind k, const char *lang, uint64_t seed) {
    for (int i = 0; i < pl->n; i++) {
        const xa_artefact *a = &pl->a[i];
        if (a->kind != k) continue;
        if ((k == XA_ART_LANG || k == XA_ART_TARGET) && (!lang || strcmp(a->lang, lang))) continue;
        if (k != XA_ART_BASE && k != XA_ART_LANG && a->seed != seed) continue;
        return i;
    }
    return -1;
}

/* Compare the file's provenance with want line by line (the "run:" line aside); the differing
 * lines go into why. Returns 1 when identical. */
static int same_provenance(const char *have, const char *want, char *why, size_t n) {
    size_t len = 0;
    int same = 1;
    why[0] = '\0';
    for (const char *w = want; *w;) {
        size_t k = strcspn(w, "\n");
        const char *colon = memchr(w, ':', k);
        size_t key = colon ? (size_t)(colon - w) : k;
        /* the line of have with the same key */
        const char *h = have, *match = NULL;
        size_t mk = 0;
        while (*h) {
            size_t hk = strcspn(h, "\n");
            if (hk > key && !strncmp(h, w, key) && h[key] == ':') {
                match = h;
                mk = hk;
                break;
            }
            h += hk + (h[hk] == '\n');
        }
        if (!match || mk != k || strncmp(match, w, k)) {
            same = 0;
            if (len < n)
                len += (size_t)snprintf(why + len, n - len, "%s%.*s: was '%.*s', now '%.*s'", len ? "; " : "",
                                        (int)key, w, match ? (int)(mk - key - 2) : 6,
                                        match ? match + key + 2 : "(none)", (int)(k - key - 2), w + key + 2);
        }
        w += k + (w[k] == '\n');
    }
    /* a line of have whose key want lacks (a setting written only when it differs from its
     * default, set then and back at its default now): another setting too */
    for (const char *h = have; *h;) {
        size_t hk = strcspn(h, "\n");
        const char *colon = memchr(h, ':', hk);
        size_t key = colon ? (size_t)(colon - h) : hk;
        int found = key == 3 && !strncmp(h, "run", 3); /* the run line is not a setting */
        for (const char *w = want; *w && !found;) {
            size_t k = strcspn(w, "\n");
            if (k > key && !strncmp(w, h, key) && w[key] == ':') found = 1;
            w += k + (w[k] == '\n');
        }
        if (!found) {
            same = 0;
            if (len < n)
                len += (size_t)snprintf(why + len, n - len, "%s%.*s: was '%.*s', now (not set)", len ? "; " : "",
                                        (int)key, h, hk > key + 2 ? (int)(hk - key - 2) : 0,
                                        hk > key + 2 ? h + key + 2 : "");
        }
        h += hk + (h[hk] == '\n');
    }
    return same;
}

/* A finished output without provenance whose XA_PROV_PENDING (written when its training began)
 * is the provenance it would have now: the run that made it was killed between its last output
 * and its provenance, so training it again resumes its last checkpoint and commits. */
static int interrupted_commit(const xa_plan *pl, int i) {
    char p[XA_PATH_MAX], *pend = NULL, *want = NULL, why[256];
    int same = 0;
    if (!xa_path_join(p, sizeof p, pl->a[i].dir, XA_PROV_PENDING) && !xa_file_read(&pend, NULL, p, 1 << 20) &&
        !xa_plan_provenance(pl, i, 0, &want))
        same = same_provenance(pend, want, why, sizeof why);
    xa_error_clear();
    free(pend);
    free(want);
    return same;
}

static void decide(xa_plan *pl, int i, const xa_plan_opts *o) {
    xa_artefact *a = &pl->a[i];
    if (a->selected && xa_plan_forces(o->force, a->phase->kind)) {
        a->state = XA_ART_FORCE;
        return;
    }
    char p[XA_PATH_MAX], *have = NULL, *want = NULL;
    size_t n = 0;
    const int finished = access(a->done, F_OK) == 0;
    if (xa_path_join(p, sizeof p, a->dir, XA_PROV_FILE) || xa_file_read(&have, &n, p, 1 << 20)) {
        xa_error_clear();
        a->state = XA_ART_TRAIN;
        if (finished && interrupted_commit(pl, i)) return; /* finished, killed before its provenance */
        if (finished && (a->kind != XA_ART_BASE || !file_exists(a->dir, "checkpoint"))) {
            a->state = XA_ART_STALE;
            snprintf(a->why, sizeof a->why, "%s",
                     a->kind == XA_ART_BASE ? "model.base already holds a model that this recipe's pretrain phase did not make"
                                            : "a finished output without provenance (made by hand or by an older xadapt)");
        }
        return;
    }
    if (xa_plan_provenance(pl, i, 0, &want)) {
        xa_error_clear();
        free(have);
        a->state = XA_ART_STALE;
        snprintf(a->why, sizeof a->why, "out of memory");
        return;
    }
    if (!finished) {
        a->state = XA_ART_TRAIN; /* provenance without outputs: removed by hand */
    } else if (same_provenance(have, want, a->why, sizeof a->why)) {
        a->state = XA_ART_SKIP;
    } else {
        a->state = XA_ART_STALE;
    }
    free(have);
    free(want);
}

xa_status xa_plan_build(xa_plan *pl, const xa_recipe *r, const xa_plan_opts *o) {
    memset(pl, 0, sizeof *pl);
    pl->r = r;
    const int n_langs = 1 + r->n_targets;
    const size_t cap = 1 + (size_t)n_langs + (size_t)r->n_seeds * (3 + (size_t)n_langs);
    pl->a = calloc(cap, sizeof *pl->a);
    if (!pl->a) return xa_error_set(XA_STATUS_NOMEM, "xa_plan_build", NULL, NULL, "out of memory");
    const char *langs[XA_CFG_MAX_LANGS + 1];
    langs[0] = r->source;
    for (int t = 0; t < r->n_targets; t++) langs[1 + t] = r->targets[t];
    xa_status st = XA_STATUS_OK;
    char seed_dir[32];
    for (int ph = 0; ph < r->n_phases && !st; ph++) {
        const xa_cfg_phase *p = &r->phases[ph];
        const int sel_phase = o->only == XA_PHASE_N || o->only == p->kind;
        switch (p->kind) {
        case XA_PHASE_PRETRAIN: {
            if (xa_plan_find(pl, XA_ART_BASE, NULL, 0) >= 0) break;
            xa_artefact *a = add(pl, XA_ART_BASE, p, NULL, 0);
            snprintf(a->label, sizeof a->label, "base");
            snprintf(a->dir, sizeof a->dir, "%s", r->base);
            st = xa_path_join(a->done, sizeof a->done, a->dir, "config.json");
            a->selected = sel_phase;
            break;
        }
        case XA_PHASE_LANG: {
            const int n = p->n_languages ? p->n_languages : n_langs;
            for (int i = 0; i < n && !st; i++) {
                const char *l = p->n_languages ? p->languages[i] : langs[i];
                if (xa_plan_find(pl, XA_ART_LANG, l, 0) >= 0) continue;
                xa_artefact *a = add(pl, XA_ART_LANG, p, l, 0);
                snprintf(a->label, sizeof a->label, "lang %s", l);
                const char *parts[] = {r->output, "lang", l};
                st = join_parts(a->dir, sizeof a->dir, parts, 3);
                if (!st) st = xa_path_join(a->done, sizeof a->done, a->dir, "adapter_config.json");
                a->selected = sel_phase && (!o->lang || !strcmp(o->lang, l));
                int d; /* an aligned target is built on the source adapter */
                if (p->align > 0 && strcmp(l, r->source) && (d = xa_plan_find(pl, XA_ART_LANG, r->source, 0)) >= 0)
                    a->deps[a->n_deps++] = d;
            }
            break;
        }
        case XA_PHASE_TASK:
        case XA_PHASE_FUSION:
            for (int k = 0; k < r->n_seeds && !st; k++) {
                const uint64_t seed = r->seeds[k];
                const int sel = sel_phase && (!o->has_seed || o->seed == seed);
                snprintf(seed_dir, sizeof seed_dir, "seed%" PRIu64, seed);
                const int task = p->kind == XA_PHASE_TASK;
                xa_artefact *a = add(pl, task ? XA_ART_TASK : XA_ART_FUSION, p, NULL, seed);
                snprintf(a->label, sizeof a->label, "%s %s seed %" PRIu64, task ? "task" : "fusion", r->task_name, seed);
                const char *parts[] = {r->output, task ? "task" : "fusion", r->task_name, seed_dir};
                st = join_parts(a->dir, sizeof a->dir, parts, 4);
                if (!st) st = xa_path_join(a->done, sizeof a->done, a->dir, "final/adapter_setup.json");
                a->selected = sel;
                int d;
                if (task && (d = xa_plan_find(pl, XA_ART_LANG, r->source, 0)) >= 0) a->deps[a->n_deps++] = d;
                if (!task) {
                    for (int i = 0; i < n_langs; i++)
                        if ((d = xa_plan_find(pl, XA_ART_LANG, langs[i], 0)) >= 0) a->deps[a->n_deps++] = d;
                    if ((d = xa_plan_find(pl, XA_ART_TASK, NULL, seed)) >= 0) a->deps[a->n_deps++] = d;
                }
                /* in-language references: trained by the task phase after the seed's task adapter */
                if (!task || !r->task_target_train[0] || (p->reference_seeds && k >= p->reference_seeds)) continue;
                for (int t = 0; t < r->n_targets && !st; t++) {
                    char train[XA_PATH_MAX];
                    st = xa_cfg_expand(train, sizeof train, r->task_target_train, r->targets[t]);
                    if (st || access(train, F_OK) != 0) continue;
                    xa_artefact *b = add(pl, XA_ART_TARGET, p, r->targets[t], seed);
                    snprintf(b->label, sizeof b->label, "target %s %s seed %" PRIu64, r->task_name, r->targets[t], seed);
                    const char *tp[] = {r->output, "target", r->task_name, r->targets[t], seed_dir};
                    st = join_parts(b->dir, sizeof b->dir, tp, 5);
                    if (!st) st = xa_path_join(b->done, sizeof b->done, b->dir, "final/adapter_setup.json");
                    b->selected = sel;
                    if ((d = xa_plan_find(pl, XA_ART_LANG, r->targets[t], 0)) >= 0) b->deps[b->n_deps++] = d;
                }
            }
            break;
        case XA_PHASE_FINETUNE: /* one run per seed, on the base alone */
            for (int k = 0; k < r->n_seeds && !st; k++) {
                const uint64_t seed = r->seeds[k];
                if (xa_plan_find(pl, XA_ART_FINETUNE, NULL, seed) >= 0) continue;
                snprintf(seed_dir, sizeof seed_dir, "seed%" PRIu64, seed);
                xa_artefact *a = add(pl, XA_ART_FINETUNE, p, NULL, seed);
                snprintf(a->label, sizeof a->label, "finetune %s seed %" PRIu64, r->task_name, seed);
                const char *parts[] = {r->output, "finetune", r->task_name, seed_dir};
                st = join_parts(a->dir, sizeof a->dir, parts, 4);
                if (!st) st = xa_path_join(a->done, sizeof a->done, a->dir, "final/adapter_setup.json");
                a->selected = sel_phase && (!o->has_seed || o->seed == seed);
            }
            break;
        default:
            break;
        }
    }
    pl->evaluates = (o->only == XA_PHASE_N || o->only == XA_PHASE_EVAL) && xa_recipe_phase(r, XA_PHASE_EVAL) >= 0;
    if (o->only == XA_PHASE_EVAL) pl->evaluates = 1; /* eval without an eval phase: the default setups */
    for (int i = 0; i < pl->n && !st; i++) decide(pl, i, o);
    if (st) xa_plan_free(pl);
    return st;
}

void xa_plan_free(xa_plan *pl) {
    if (!pl) return;
    free(pl->a);
    memset(pl, 0, sizeof *pl);
}

xa_status xa_plan_check(const xa_plan *pl) {
    char what[2 * XA_ERROR_FIELD], phases[96] = "";
    size_t len = 0;
    int n = 0, ft = 0;
    xa_phase_kind first = XA_PHASE_N; /* the earliest stale phase of the MAD-X chain */
    /* what this command uses: the selected artefacts and their inputs (deps precede them) */
    unsigned char *used = calloc((size_t)pl->n + 1, 1);
    if (!used) return xa_error_set(XA_STATUS_NOMEM, "xa_plan_check", NULL, NULL, "out of memory");
    int any = 0;
    for (int i = pl->n - 1; i >= 0; i--) {
        if (pl->a[i].selected || pl->evaluates) used[i] = 1;
        if (!used[i]) continue;
        any = 1;
        for (int d = 0; d < pl->a[i].n_deps; d++) used[pl->a[i].deps[d]] = 1;
    }
    for (int i = 0; i < pl->n; i++)
        if (pl->a[i].kind == XA_ART_BASE && (any || pl->evaluates)) used[i] = 1;
    for (int i = 0; i < pl->n; i++) {
        const xa_artefact *a = &pl->a[i];
        if (a->state != XA_ART_STALE || !used[i]) continue;
        if (a->phase->kind == XA_PHASE_FINETUNE)
            ft = 1; /* built on the base alone: forced by pretrain or by itself (xa_plan_forces) */
        else if (a->phase->kind < first)
            first = a->phase->kind;
        if (len < sizeof what)
            len += (size_t)snprintf(what + len, sizeof what - len, "%s%s (%s): %s", n ? " | " : "", a->label, a->dir,
                                    a->why);
        n++;
    }
    free(used);
    if (!n) return XA_STATUS_OK;
    if (first == XA_PHASE_N)
        snprintf(phases, sizeof phases, "%s", xa_phase_kind_name(XA_PHASE_FINETUNE));
    else if (ft && first != XA_PHASE_PRETRAIN)
        snprintf(phases, sizeof phases, "%s' and 'xadapt run RECIPE --force finetune", xa_phase_kind_name(first));
    else
        snprintf(phases, sizeof phases, "%s", xa_phase_kind_name(first));
    char hint[XA_ERROR_FIELD];
    snprintf(hint, sizeof hint,
             "retrain it and what is built on it with 'xadapt run RECIPE --force %s', or write to another "
             "output (--set output=DIR)",
             phases);
    return xa_error_set(XA_STATUS_CONFIG, pl->r->path, "outputs made from this recipe's settings", hint,
                        "%d finished output%s made from other settings or inputs: %s", n, n > 1 ? "s were" : " was",
                        what);
}

xa_status xa_plan_begin(const xa_plan *pl, int i) {
    char p[XA_PATH_MAX], *text = NULL;
    if (xa_dist_rank() > 0) return xa_dist_barrier("xa_plan_begin"); /* rank 0 writes the files */
    xa_status st = xa_path_join(p, sizeof p, pl->a[i].dir, XA_PROV_FILE);
    if (!st && unlink(p) != 0 && access(p, F_OK) == 0)
        st = xa_error_set(XA_STATUS_IO, p, NULL, NULL, "cannot remove the old provenance");
    /* what the provenance will say: a run killed after its last output is recognised by it */
    if (!st) st = xa_file_mkdirs(pl->a[i].dir);
    if (!st) st = xa_plan_provenance(pl, i, 0, &text);
    if (!st) st = xa_path_join(p, sizeof p, pl->a[i].dir, XA_PROV_PENDING);
    if (!st) st = xa_file_write_atomic(p, text, strlen(text));
    free(text);
    if (!st) st = xa_dist_barrier("xa_plan_begin");
    return st;
}

xa_status xa_plan_commit(const xa_plan *pl, int i) {
    char p[XA_PATH_MAX], *text = NULL;
    xa_status st = XA_STATUS_OK;
    if (xa_dist_rank() == 0) { /* data-parallel runs: rank 0 writes the provenance */
        st = xa_plan_provenance(pl, i, 1, &text);
        if (!st) st = xa_path_join(p, sizeof p, pl->a[i].dir, XA_PROV_FILE);
        if (!st) st = xa_file_write_atomic(p, text, strlen(text));
        free(text);
        if (!st && !xa_path_join(p, sizeof p, pl->a[i].dir, XA_PROV_PENDING)) unlink(p);
    }
    if (!st) st = xa_dist_barrier("xa_plan_commit");
    if (!st) ((xa_plan *)pl)->a[i].state = XA_ART_SKIP; /* finished: later artefacts see its id */
    return st;
}

/* ---- validation ----------------------------------------------------------------------------- */

/* A name used as one path component: [A-Za-z0-9][A-Za-z0-9_.+-]*, no "..". */
static int plain_name(const char *s) {
    if (!s[0] || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (const char *c = s; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                 *c == '-' || *c == '.' || *c == '+';
        if (!ok) return 0;
    }
    return strstr(s, "..") == NULL;
}

static xa_status need_text(const char *path, const char *what) {
    char id[128];
    xa_status st = xa_file_stat_id(path, id, sizeof id);
    if (st) {
        xa_error_clear();
        return xa_error_set(XA_STATUS_CONFIG, path, what, "check the recipe's data paths (relative to the recipe file)",
                            "missing data file");
    }
    if (!strncmp(id, "size=0 ", 7))
        return xa_error_set(XA_STATUS_CONFIG, path, what, NULL, "the data file is empty");
    return XA_STATUS_OK;
}

/* A class_weights list has one weight per label of the head it weights (labels: the label set of
 * that head's training file, `file`), for the phases of kind `kind` (XA_PHASE_N: every phase). */
static xa_status check_class_weights(const xa_recipe *r, const xa_labels *labels, const char *file,
                                     xa_phase_kind kind) {
    char where[XA_CFG_PATH + 64], names[512];
    for (int i = 0; i < r->n_phases; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        if (p->class_weights != XA_CFG_CLASS_WEIGHTS_LIST || p->n_class_weights == labels->n) continue;
        if (kind != XA_PHASE_N && p->kind != kind) continue;
        size_t len = 0;
        for (int k = 0; k < labels->n && len < sizeof names; k++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "", labels->names[k]);
        return xa_error_set(XA_STATUS_CONFIG, xa_cfg_pos_format(&p->pos, where, sizeof where), names,
                            "one weight per label in this order, or class_weights: balanced",
                            "phases.%s.class_weights lists %d weight(s); %s has %d labels", xa_phase_kind_name(p->kind),
                            p->n_class_weights, file, labels->n);
    }
    return XA_STATUS_OK;
}

void xa_recipe_input_init(xa_recipe_input *ri, const xa_recipe *r) {
    memset(ri, 0, sizeof *ri);
    ri->kind = r->task_type == XA_TASK_TAGGING               ? XA_TASK_KIND_TAGGING
               : r->task_type == XA_TASK_PAIR_CLASSIFICATION ? XA_TASK_KIND_PAIR
               : r->task_type == XA_TASK_MULTIPLE_CHOICE     ? XA_TASK_KIND_CHOICE
               : r->task_type == XA_TASK_QUESTION_ANSWERING  ? XA_TASK_KIND_QA
                                                             : XA_TASK_KIND_CLASSIFICATION;
    ri->doc_stride = r->qa_doc_stride;
    ri->max_answer_length = r->qa_max_answer_length;
    ri->n_best_size = r->qa_n_best_size;
    ri->version_2_with_negative = r->qa_version_2_with_negative;
    ri->null_score_diff_threshold = r->qa_null_score_diff_threshold;
    const xa_cfg_task_fields *tf = &r->task_fields;
    xa_task_fields *f = &ri->fields;
    f->text = tf->text;
    f->text_pair = tf->text_pair;
    f->label = tf->label;
    f->tokens = tf->tokens;
    f->tags = tf->tags;
    f->premise = tf->premise;
    f->question = tf->question;
    for (int i = 0; i < tf->n_choices && i < XA_TASK_MAX_CHOICES; i++) ri->choices[i] = tf->choices[i];
    f->choices = ri->choices;
    f->n_choices = tf->n_choices;
    for (int i = 0; i < r->n_task_labels && i < XA_MAX_LABELS; i++) ri->names[i] = r->task_labels[i];
    ri->n_names = r->n_task_labels;
}

/* Parse a task file without a tokenizer (labels: fixed when labels->n > 0, else collected). */
static xa_status parse_task(const xa_recipe *r, const char *path, xa_labels *labels) {
    xa_task_data d;
    xa_recipe_input ri;
    xa_recipe_input_init(&ri, r);
    const xa_task_input in = {ri.kind, XA_TASK_FORMAT_AUTO, &ri.fields, ri.n_names ? ri.names : NULL, ri.n_names, 0,
                              ri.doc_stride};
    xa_status st = xa_task_data_load_input(&d, NULL, path, &in, 1 << 20, labels);
    xa_task_data_free(&d);
    return st;
}

/* The aligned language adapters' pairs (phases.lang.align > 0): the file data.lang_pairs is
 * readable and holds at least one "LANG<TAB>en<TAB>text" row of every target the phase aligns
 * (the source adapter never aligns), and the phase trains the source before them. Read by the
 * first field of each line only. */
static xa_status check_lang_pairs(const xa_recipe *r, const xa_cfg_phase *p, const char *where) {
    const int n = p->n_languages ? p->n_languages : 1 + r->n_targets;
    const char *langs[XA_CFG_MAX_LANGS + 1];
    for (int k = 0; k < n; k++) langs[k] = p->n_languages ? p->languages[k] : k ? r->targets[k - 1] : r->source;
    for (int k = 1; k < n; k++)
        if (!strcmp(langs[k], r->source))
            return xa_error_set(XA_STATUS_CONFIG, where, "the source language first in phases.lang.languages",
                                "aligned target adapters are trained against the source adapter",
                                "'%s' comes before the source '%s' with align > 0", langs[0], r->source);
    FILE *f = fopen(r->lang_pairs, "rb");
    if (!f)
        return xa_error_set(XA_STATUS_CONFIG, r->path, "data.lang_pairs: a readable pair file",
                            "prepare.py writes lang-pairs.tsv; or set phases.lang.align to 0",
                            "phases.lang.align needs aligned pairs: cannot open %s", r->lang_pairs);
    unsigned char seen[XA_CFG_MAX_LANGS + 1] = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) != -1) {
        const char *tab = memchr(line, '\t', (size_t)len);
        if (!tab) continue;
        const size_t k = (size_t)(tab - line);
        for (int i = 0; i < n; i++)
            if (strlen(langs[i]) == k && !memcmp(langs[i], line, k)) seen[i] = 1;
    }
    free(line);
    fclose(f);
    for (int i = 0; i < n; i++)
        if (!seen[i] && strcmp(langs[i], r->source))
            return xa_error_set(XA_STATUS_CONFIG, r->path, "data.lang_pairs with pairs of every aligned target",
                                "add the language's pairs (prepare.py --unseen writes lang-pairs.tsv), or set "
                                "phases.lang.align to 0",
                                "phases.lang.align (%s) needs pairs of '%s': %s has none", where, langs[i],
                                r->lang_pairs);
    return XA_STATUS_OK;
}

xa_status xa_pipeline_validate(const xa_recipe *r) {
    char where[XA_CFG_PATH + 64], path[XA_PATH_MAX];
    if (!plain_name(r->task_name))
        return xa_error_set(XA_STATUS_CONFIG, r->path, "a plain name ([A-Za-z0-9][A-Za-z0-9_.+-]*, no '..')",
                            "data.task.name names output directories", "data.task.name '%s' is not a plain name",
                            r->task_name);
    /* the eval table: the source row, the targets and the mean rows (one, or three with an
     * unseen group: seen, unseen, all) */
    const int mean_rows = r->n_unseen > 0 && r->n_unseen < r->n_targets ? 3 : 1;
    if (1 + r->n_targets + mean_rows > XA_TABLE_MAX_ROWS)
        return xa_error_set(XA_STATUS_CONFIG, r->path, "fewer target languages", NULL,
                            "%d targets: the results table holds %d rows (source, targets, %d mean row%s)",
                            r->n_targets, XA_TABLE_MAX_ROWS, mean_rows, mean_rows > 1 ? "s" : "");
    int has[XA_PHASE_N] = {0};
    for (int i = 0; i < r->n_phases; i++) has[r->phases[i].kind] = 1;
    for (int i = 0; i < r->n_phases; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        xa_cfg_pos_format(&p->pos, where, sizeof where);
        if (p->kind == XA_PHASE_FUSION && 1 + r->n_targets > XA_SETUP_MAX_CHILDREN)
            return xa_error_set(XA_STATUS_CONFIG, where, "a fusion over at most 16 language adapters", NULL,
                                "the fusion phase fuses %d languages (source and targets)", 1 + r->n_targets);
        if (p->kind == XA_PHASE_FUSION && 1 + r->n_targets < 2)
            return xa_error_set(XA_STATUS_CONFIG, where, "at least 2 languages to fuse", NULL, "one language");
        if (p->kind == XA_PHASE_LANG)
            for (int k = 0; k < p->n_languages; k++)
                if (!plain_name(p->languages[k]))
                    return xa_error_set(XA_STATUS_CONFIG, where, "plain language codes", NULL, "language '%s'",
                                        p->languages[k]);
        if (p->kind != XA_PHASE_EVAL) continue;
        if (p->n_setups > XA_TABLE_MAX_COLS)
            return xa_error_set(XA_STATUS_CONFIG, where, "at most 16 setups", NULL, "%d setups", p->n_setups);
        for (int s = 0; s < p->n_setups; s++) {
            const char *name = p->setups[s];
            if (!xa_pipeline_setup_known(name))
                return xa_error_set(XA_STATUS_CONFIG, where,
                                    "task_only, src_stack, madx, madx2, fusion, in_language or full_ft", NULL,
                                    "unknown eval setup '%s'", name);
            if (!strcmp(name, "fusion") && !has[XA_PHASE_FUSION] && !r->fusion.present)
                return xa_error_set(XA_STATUS_CONFIG, where, "a fusion phase for the 'fusion' setup", NULL,
                                    "eval setup 'fusion' without a fusion phase");
            if (!strcmp(name, "full_ft") && !has[XA_PHASE_FINETUNE])
                return xa_error_set(XA_STATUS_CONFIG, where, "a finetune phase for the 'full_ft' setup",
                                    "add '- finetune: {epochs: 3, lr: 5e-5}' to phases (before eval)",
                                    "eval setup 'full_ft' without a finetune phase");
            if (!strcmp(name, "full_ft") && xa_recipe_phase(r, XA_PHASE_FINETUNE) > i)
                return xa_error_set(XA_STATUS_CONFIG, where, "the finetune phase before the eval phase", NULL,
                                    "eval setup 'full_ft' comes before the finetune phase that makes it");
            if (!strcmp(name, "in_language") && !r->task_target_train[0])
                return xa_error_set(XA_STATUS_CONFIG, where, "data.task.target_train for 'in_language'", NULL,
                                    "eval setup 'in_language' without in-language training data");
        }
    }
    /* data: every file a phase reads, cheaply (corpora: present and not empty; task files: parsed) */
    xa_status st = XA_STATUS_OK;
    if (has[XA_PHASE_PRETRAIN] && (st = need_text(r->pretrain_corpus, "data.pretrain (the pretrain phase's corpus)")))
        return st;
    for (int i = 0; i < r->n_phases && !st; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        if (p->kind != XA_PHASE_LANG) continue;
        if (p->align > 0 && (st = check_lang_pairs(r, p, xa_cfg_pos_format(&p->pos, where, sizeof where)))) return st;
        const int n = p->n_languages ? p->n_languages : 1 + r->n_targets;
        for (int k = 0; k < n && !st; k++) {
            const char *l = p->n_languages ? p->languages[k] : k ? r->targets[k - 1] : r->source;
            char what[96];
            snprintf(what, sizeof what, "data.mlm for language %s (the lang phase's corpus)", l);
            st = xa_cfg_expand(path, sizeof path, r->mlm_corpus, l);
            if (!st) st = need_text(path, what);
        }
    }
    if (st) return st;
    const int tasks = has[XA_PHASE_TASK] || has[XA_PHASE_FUSION] || has[XA_PHASE_EVAL] || has[XA_PHASE_FINETUNE];
    if (!tasks || !r->task_train[0]) return XA_STATUS_OK;
    static xa_labels labels; /* 16 KiB: off the stack */
    memset(&labels, 0, sizeof labels);
    if ((st = parse_task(r, r->task_train, &labels))) return st;
    if (r->task_dev[0] && (st = parse_task(r, r->task_dev, &labels))) return st;
    if ((st = check_class_weights(r, &labels, r->task_train, XA_PHASE_N))) return st;
    for (int i = 0; i <= r->n_targets && !st; i++) {
        const char *l = i ? r->targets[i - 1] : r->source;
        if (has[XA_PHASE_EVAL] && r->task_test[0]) {
            st = xa_cfg_expand(path, sizeof path, r->task_test, l);
            if (!st && access(path, F_OK) == 0) st = parse_task(r, path, &labels);
        }
        if (!st && i > 0 && r->task_target_train[0] && has[XA_PHASE_TASK]) {
            static xa_labels own; /* a reference's head takes the labels of its own training file */
            memset(&own, 0, sizeof own);
            st = xa_cfg_expand(path, sizeof path, r->task_target_train, l);
            if (!st && access(path, F_OK) == 0) st = parse_task(r, path, &own);
            if (!st && own.n) st = check_class_weights(r, &own, path, XA_PHASE_TASK); /* references: task phase */
        }
    }
    return st;
}
