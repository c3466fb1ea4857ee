/* pipeline/run: the recipe runner (pipeline.h): each phase trains what the plan says (skip,
 * train continuing a checkpoint, retrain from scratch), records the provenance of what finished,
 * and the eval phase writes the transfer tables. Progress and tables go to the caller's stream;
 * the trainers' progress lines go to stderr. Output layout under the recipe's `output`:
 *   resolved-<task>.yaml          the fully resolved recipe (one per task of a shared output)
 *   <artefact>/xadapt-provenance.txt   what made each finished artefact
 *   tokenizer/spm.model           trained when the recipe's tokenizer does not exist (pretrain)
 *   lang/<code>/                  language adapters (AdapterHub directories)
 *   task/<task>/seed<k>/final/    adapter/, head/, adapter_setup.json (best dev weights)
 *   fusion/<task>/seed<k>/final/  fusion/, head/, adapter_setup.json
 *   target/<task>/<code>/seed<k>/final/   in-language references (data.task.target_train)
 *   finetune/<task>/seed<k>/final/        full fine-tuning: encoder/ (a base directory: config.json,
 *                                 model.safetensors, sentencepiece.bpe.model), head/, adapter_setup.json
 *   eval/<task>/                  results.md, results.json, results.csv, results.svg, raw.jsonl,
 *                                 cells.tsv, per_class.{md,json,csv,jsonl} (classification also
 *                                 confusion.csv, confusion_<setup>.svg) (written in
 *                                 eval/<task>.tmp/ and swapped in when complete; eval/mlm/ and
 *                                 eval/retrieval/ likewise)
 * Eval cells: each cell's identity (pipeline/cells.h) goes into its raw.jsonl line ("cell") and,
 * with its exact values, into cells.tsv; a rerun reuses the previous set's value of a cell whose
 * identity is unchanged and computes the others ("eval: N cells reused, M computed"); a task
 * cell is reused only with its per-class report (per_class.jsonl of the previous set), so a set
 * written before the reports existed is evaluated again once.
 * Recipes for several tasks may share one output: the base and the language adapters are then
 * trained once (the second recipe finds them and skips those phases).
 * Does not: run phases in parallel, or print anything to stdout itself. */
#include "pipeline/pipeline.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/eval.h"
#include "eval/plot.h"
#include "io/file.h"
#include "io/hfjson.h"
#include "pipeline/cells.h"
#include "tokenizer/spm.h"
#include "train/ckpt.h"
#include "train/dist.h"
#include "train/train.h"

/* One evaluated cell's line on stderr: progress, so --quiet leaves it out (the tables still print). */
XA_PRINTF(1, 2) static void cell_line(const char *fmt, ...) {
    if (xa_progress_quiet()) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int exists(const char *dir, const char *file) {
    char p[XA_PATH_MAX];
    if (xa_path_join(p, sizeof p, dir, file)) return 0;
    return access(p, F_OK) == 0;
}

static xa_status join3(char *out, size_t n, const char *a, const char *b, const char *c) {
    char tmp[XA_PATH_MAX];
    xa_status st = xa_path_join(tmp, sizeof tmp, a, b);
    if (!st) st = c ? xa_path_join(out, n, tmp, c) : (snprintf(out, n, "%s", tmp) >= (int)n ? XA_STATUS_USAGE : XA_STATUS_OK);
    return st;
}

/* Preset + the recipe's overrides (each error names recipe:line:col). */
static xa_status build_bn(const xa_cfg_adapter *a, xa_bn_config *out) {
    char where[XA_CFG_PATH + 64];
    xa_status st = xa_bn_config_preset(out, a->preset);
    if (st) {
        xa_error_prefix("%s", xa_cfg_pos_format(&a->pos, where, sizeof where));
        return XA_STATUS_CONFIG;
    }
    for (int i = 0; i < a->n_overrides && !st; i++)
        st = xa_bn_config_set(out, a->overrides[i].key, a->overrides[i].json,
                              xa_cfg_pos_format(&a->overrides[i].pos, where, sizeof where));
    return st;
}

static xa_status build_fusion(const xa_cfg_adapter *a, xa_fusion_config *out) {
    char where[XA_CFG_PATH + 64];
    xa_status st = xa_fusion_config_preset(out, a->present ? a->preset : "dynamic");
    if (st) {
        xa_error_prefix("%s", xa_cfg_pos_format(&a->pos, where, sizeof where));
        return XA_STATUS_CONFIG;
    }
    for (int i = 0; i < a->n_overrides && !st; i++)
        st = xa_fusion_config_set(out, a->overrides[i].key, a->overrides[i].json,
                                  xa_cfg_pos_format(&a->overrides[i].pos, where, sizeof where));
    return st;
}

static xa_phase_opts phase_opts(const xa_cfg_phase *p, uint64_t seed, int resume) {
    xa_phase_opts o = xa_phase_opts_default();
    o.B = p->batch_size;
    o.T = p->seq_len;
    o.steps = p->steps;
    o.epochs = p->epochs;
    o.lr = p->lr;
    o.warmup = p->warmup_steps > 0 ? p->warmup_steps : -1;
    o.warmup_ratio = p->warmup_ratio;
    o.weight_decay = p->weight_decay;
    o.clip = p->clip;
    o.eval_every = p->eval_every;
    o.early_stopping = p->early_stopping;
    o.ckpt_every = p->ckpt_every;
    o.log_every = p->log_every;
    o.adapter_drop = p->adapter_drop;
    o.max_docs = p->max_docs;
    o.mlm_prob = p->mlm_prob;
    o.whole_word = p->whole_word_mask;
    o.seed = seed;
    o.resume = resume;
    o.progress = stderr;
    o.k = xa_pipeline_knobs(p);
    o.best_metric = p->metric_for_best_model[0] ? p->metric_for_best_model : NULL;
    o.eval_batches = p->eval_batches;
    o.class_weights = p->class_weights == XA_CFG_CLASS_WEIGHTS_BALANCED ? XA_CLASS_WEIGHTS_BALANCED
                      : p->class_weights == XA_CFG_CLASS_WEIGHTS_LIST   ? XA_CLASS_WEIGHTS_LIST
                                                                        : XA_CLASS_WEIGHTS_NONE;
    o.n_class_weights = p->n_class_weights;
    o.class_weight_list = p->class_weight_list;
    return o;
}

static int is_unseen(const xa_recipe *r, const char *lang);

/* The languages whose adapters exist or are trained: source, then targets. */
static int all_languages(const xa_recipe *r, const char *out[XA_CFG_MAX_LANGS + 1]) {
    int n = 0;
    out[n++] = r->source;
    for (int i = 0; i < r->n_targets; i++) out[n++] = r->targets[i];
    return n;
}

/* ---- phases ----------------------------------------------------------------------------------------- */

/* One artefact of the plan: "skipped" when finished with this recipe's provenance; else
 * (re)trained: its provenance removed first (an interrupted run is never taken as finished),
 * resumed from its checkpoint unless forced. */
static int art_skip(FILE *out, const xa_plan *pl, int i, const char *what) {
    if (i < 0 || pl->a[i].state != XA_ART_SKIP || !pl->a[i].selected) return 0;
    fprintf(out, "%s: %s exists; skipped\n", what, pl->a[i].dir);
    return 1;
}

static int art_resume(const xa_plan *pl, int i) { return i < 0 || pl->a[i].state != XA_ART_FORCE; }

static xa_status phase_pretrain(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, xa_plan *pl) {
    const int ia = xa_plan_find(pl, XA_ART_BASE, NULL, 0);
    if (ia < 0 || art_skip(out, pl, ia, "pretrain")) return XA_STATUS_OK;
    xa_status st = xa_plan_begin(pl, ia);
    if (st) return st;
    char tok[XA_PATH_MAX], in_base[XA_PATH_MAX];
    snprintf(tok, sizeof tok, "%s", r->tokenizer);
    st = xa_path_join(in_base, sizeof in_base, r->base, "sentencepiece.bpe.model");
    if (st) return st;
    /* The tokenizer beside the base is an output of this phase: trained (or reused from
     * OUTPUT/tokenizer) unless the recipe names another existing one. */
    if ((st = xa_dist_barrier("pretrain"))) return st; /* every rank sees the same files here */
    if (access(tok, F_OK) != 0 || !strcmp(tok, in_base)) { /* train the tokenizer on the pretraining corpus */
        char dir[XA_PATH_MAX], prefix[XA_PATH_MAX];
        st = xa_path_join(dir, sizeof dir, r->output, "tokenizer");
        if (!st) st = xa_file_mkdirs(dir);
        if (!st) st = xa_path_join(prefix, sizeof prefix, dir, "spm");
        if (!st) st = xa_path_join(tok, sizeof tok, dir, "spm.model");
        if (st) return st;
        if (access(tok, F_OK) != 0 && xa_dist_rank() == 0) { /* rank 0 trains it; the others wait */
            xa_spm_train_opts so = xa_spm_train_opts_default();
            const char *inputs[1] = {r->pretrain_corpus};
            so.inputs = inputs;
            so.n_inputs = 1;
            so.model_prefix = prefix;
            so.vocab_size = r->vocab_size; /* <mask> is added by the XLM-R id convention */
            /* Byte fallback: a script the corpus never showed (the unseen languages) is still
             * represented, as UTF-8 byte pieces, instead of <unk>. */
            so.byte_fallback = 1;
            fprintf(out, "pretrain: training a %d-piece SentencePiece model on %s\n", r->vocab_size, r->pretrain_corpus);
            fflush(out);
            st = xa_spm_train(&so);
            if (st) return st;
        }
        if ((st = xa_dist_barrier("pretrain"))) return st;
    }
    xa_pretrain_opts o = xa_pretrain_opts_default();
    if (strstr(r->arch, ".json")) {
        xa_hf_config hf;
        st = xa_hf_config_read(&hf, r->arch);
        if (!st) st = xa_encoder_config_from_hf(&o.model, &hf, r->arch);
    } else {
        st = xa_encoder_preset(&o.model, r->arch);
    }
    if (st) return st;
    o.out_dir = r->base;
    o.corpus = r->pretrain_corpus;
    o.tokenizer = tok;
    o.B = p->batch_size;
    o.T = p->seq_len;
    o.steps = p->steps;
    o.lr = p->lr;
    o.warmup = p->warmup_steps > 0 ? p->warmup_steps : (int64_t)(p->warmup_ratio * (double)p->steps);
    o.weight_decay = p->weight_decay;
    o.clip = p->clip;
    o.seed = p->seed;
    o.ckpt_every = p->ckpt_every;
    o.log_every = p->log_every;
    o.pairs = r->pairs[0] ? r->pairs : NULL;
    o.tlm_ratio = p->tlm;
    o.align_weight = p->align;
    o.align_pairs = p->align_pairs;
    o.align_temp = p->align_temp;
    o.pair_alpha = p->pair_alpha;
    o.mlm_prob = p->mlm_prob;
    o.whole_word_mask = p->whole_word_mask;
    o.k = xa_pipeline_knobs(p);
    /* validation: the held-out text of every language the base is trained on (not the unseen) */
    char heldout[XA_CFG_MAX_LANGS + 1][XA_PATH_MAX];
    const char *heldout_ptrs[XA_CFG_MAX_LANGS + 1], *heldout_names[XA_CFG_MAX_LANGS + 1];
    if (p->eval_every > 0 && r->mlm_heldout[0]) {
        const char *langs[XA_CFG_MAX_LANGS + 1];
        const int n = all_languages(r, langs);
        for (int i = 0; i < n; i++) {
            if (is_unseen(r, langs[i])) continue;
            if ((st = xa_cfg_expand(heldout[o.n_heldout], sizeof heldout[0], r->mlm_heldout, langs[i]))) return st;
            heldout_ptrs[o.n_heldout] = heldout[o.n_heldout];
            heldout_names[o.n_heldout++] = langs[i];
        }
        o.heldout = heldout_ptrs;
        o.heldout_names = heldout_names;
        o.eval_every = p->eval_every;
        o.eval_batches = p->eval_batches;
    }
    if ((p->tlm > 0 || p->align > 0) && !o.pairs)
        return xa_error_set(XA_STATUS_CONFIG, r->path, "data.pairs (aligned pairs, e.g. pairs.tsv from prepare.sh)",
                            "add data.pairs or set tlm and align to 0", "the pretrain phase asks for tlm/align without pairs");
    o.resume = art_resume(pl, ia); /* an unfinished run continues (its checkpoint identity is checked) */
    o.max_docs = p->max_docs;
    o.progress = stderr;
    fprintf(out, "pretrain: %s (L%d d%d) on %s, %" PRId64 " steps of %d x %d%s\n", r->arch, o.model.L, o.model.C,
           r->pretrain_corpus, o.steps, o.B, o.T, o.resume ? "" : " (--force: from scratch)");
    fflush(out);
    xa_pretrain_result res;
    st = xa_pretrain(&o, &res);
    if (!st && res.steps_done >= o.steps) st = xa_plan_commit(pl, ia);
    if (!st) fprintf(out, "pretrain: MLM loss %.3f -> %.3f, %.0f tokens/s; base in %s\n", res.first_loss,
                    res.last_loss, res.tokens_per_s, r->base);
    if (!st && o.align_weight > 0)
        fprintf(out, "pretrain: alignment loss %.3f, in-batch retrieval accuracy %.3f (last window)\n",
                res.last_align_loss, res.last_align_acc);
    return st;
}

static xa_status phase_lang(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan_opts *a, xa_plan *pl) {
    xa_bn_config cfg;
    xa_status st = build_bn(&r->lang_adapter, &cfg);
    if (st) return st;
    const char *langs[XA_CFG_MAX_LANGS + 1];
    int n = all_languages(r, langs);
    if (p->n_languages) {
        n = p->n_languages;
        for (int i = 0; i < n; i++) langs[i] = p->languages[i];
    }
    if (a->lang) {
        int found = 0;
        for (int i = 0; i < n; i++) found |= !strcmp(a->lang, langs[i]);
        if (!found)
            return xa_error_set(XA_STATUS_USAGE, r->path, "a language of the recipe", NULL,
                                "--lang %s is not among the recipe's languages", a->lang);
    }
    for (int i = 0; i < n && !st; i++) {
        if (a->lang && strcmp(a->lang, langs[i])) continue;
        const int ia = xa_plan_find(pl, XA_ART_LANG, langs[i], 0);
        char what[32], corpus[XA_PATH_MAX];
        snprintf(what, sizeof what, "lang %s", langs[i]);
        if (ia < 0 || art_skip(out, pl, ia, what)) continue;
        const char *odir = pl->a[ia].dir;
        if ((st = xa_cfg_expand(corpus, sizeof corpus, r->mlm_corpus, langs[i]))) break;
        if ((st = xa_plan_begin(pl, ia))) break;
        xa_phase_opts o = phase_opts(p, p->seed, art_resume(pl, ia));
        char heldout[XA_PATH_MAX];
        if (p->eval_every > 0 && r->mlm_heldout[0]) { /* validation on the language's held-out text */
            if ((st = xa_cfg_expand(heldout, sizeof heldout, r->mlm_heldout, langs[i]))) break;
            o.heldout = heldout;
        }
        char src_dir[XA_PATH_MAX];
        if (xa_plan_lang_aligned(pl, ia)) { /* aligned to the source adapter, trained before it */
            if ((st = join3(src_dir, sizeof src_dir, r->output, "lang", r->source))) break;
            o.align = p->align;
            o.align_pairs = p->align_pairs;
            o.align_temp = p->align_temp;
            o.align_pairs_path = r->lang_pairs;
            o.align_src_dir = src_dir;
        }
        fprintf(out, "lang %s: %s adapter (rf %g) with MLM on %s, %" PRId64 " steps of %d x %d%s\n", langs[i],
               r->lang_adapter.preset, cfg.reduction_factor, corpus, o.steps, o.B, o.T,
               o.resume ? "" : " (--force: from scratch)");
        if (o.align > 0)
            fprintf(out, "lang %s: aligned to lang %s on %s (align %g x %d pairs, temp %g)\n", langs[i], r->source,
                    r->lang_pairs, o.align, o.align_pairs, o.align_temp);
        fflush(out);
        xa_phase_result res;
        st = xa_train_lang(r->base, r->tokenizer, odir, langs[i], &cfg, corpus, &o, &res);
        if (!st && res.finished) st = xa_plan_commit(pl, ia);
        if (!st) fprintf(out, "lang %s: MLM loss %.3f -> %.3f in %.0f s\n", langs[i], res.first_loss, res.last_loss, res.seconds);
        if (!st && o.align > 0)
            fprintf(out, "lang %s: alignment loss %.3f, in-batch retrieval accuracy %.3f (last window)\n", langs[i],
                    res.last_align_loss, res.last_align_acc);
    }
    return st;
}

/* The directory of a trained task run: task/<task>/seed<k>. */
static xa_status task_dir(char *out, size_t n, const xa_recipe *r, const char *kind, const char *lang, uint64_t seed) {
    char s[32], a[XA_PATH_MAX], b[XA_PATH_MAX];
    snprintf(s, sizeof s, "seed%" PRIu64, seed);
    xa_status st = join3(a, sizeof a, r->output, kind, r->task_name);
    if (!st && lang) {
        st = xa_path_join(b, sizeof b, a, lang);
        memcpy(a, b, sizeof a);
    }
    if (!st) st = xa_path_join(out, n, a, s);
    return st;
}

static xa_status phase_task(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan_opts *a, xa_plan *pl) {
    xa_recipe_input ri; /* how the task files are read */
    xa_recipe_input_init(&ri, r);
    xa_bn_config cfg;
    xa_status st = build_bn(&r->task_adapter, &cfg);
    if (st) return st;
    char src_dir[XA_PATH_MAX];
    if ((st = join3(src_dir, sizeof src_dir, r->output, "lang", r->source))) return st;
    if (!exists(src_dir, "adapter_config.json"))
        return xa_error_set(XA_STATUS_NOT_FOUND, src_dir, "the source language adapter",
                            "run the lang phase first: xadapt train RECIPE --phase lang", "no adapter");
    for (int k = 0; k < r->n_seeds && !st; k++) {
        uint64_t seed = r->seeds[k];
        if (a->has_seed && seed != (uint64_t)a->seed) continue;
        const int ia = xa_plan_find(pl, XA_ART_TASK, NULL, seed);
        char what[160], setup[256]; /* "task NAME seed N: reference LANG" at the longest */
        snprintf(what, sizeof what, "task %s seed %" PRIu64, r->task_name, seed);
        snprintf(setup, sizeof setup, "Stack(%s, %s)", r->source, r->task_name);
        const char *frozen[1] = {src_dir};
        xa_task_spec spec = {frozen, 1, r->task_name, &cfg, NULL, NULL, 0, NULL, setup,
                             r->task_type == XA_TASK_TAGGING, r->task_name, NULL, r->task_train,
                             r->task_dev[0] ? r->task_dev : NULL, 0, ri.kind, &ri.fields,
                             ri.n_names ? ri.names : NULL, ri.n_names,
                             ri.doc_stride, ri.max_answer_length, ri.n_best_size,
                             ri.version_2_with_negative, ri.null_score_diff_threshold};
        xa_phase_opts o = phase_opts(p, seed, art_resume(pl, ia));
        xa_phase_result res;
        if (ia >= 0 && !art_skip(out, pl, ia, what)) {
            if ((st = xa_plan_begin(pl, ia))) break;
            fprintf(out, "task %s seed %" PRIu64 ": %s adapter on %s, %s%s\n", r->task_name, seed, r->task_adapter.preset,
                   setup, r->task_train, o.resume ? "" : " (--force: from scratch)");
            fflush(out);
            st = xa_train_task(r->base, r->tokenizer, pl->a[ia].dir, &spec, &o, &res);
            if (!st && res.finished) st = xa_plan_commit(pl, ia);
            if (!st) fprintf(out, "task %s seed %" PRIu64 ": loss %.3f -> %.3f, best dev %.4f at step %" PRId64 " (%.0f s)\n",
                            r->task_name, seed, res.first_loss, res.last_loss, res.best_dev, res.best_step, res.seconds);
        }
        /* the in-language references: the task adapter trained on target-language data (the
         * plan holds those with training data, for the first reference_seeds seeds) */
        for (int t = 0; t < r->n_targets && !st; t++) {
            const int it = xa_plan_find(pl, XA_ART_TARGET, r->targets[t], seed);
            snprintf(what, sizeof what, "task %s seed %" PRIu64 ": reference %s", r->task_name, seed, r->targets[t]);
            if (it < 0 || art_skip(out, pl, it, what)) continue;
            char train[XA_PATH_MAX], tl[XA_PATH_MAX], tsetup[256];
            st = xa_cfg_expand(train, sizeof train, r->task_target_train, r->targets[t]);
            if (!st) st = join3(tl, sizeof tl, r->output, "lang", r->targets[t]);
            if (st) break;
            if (!exists(tl, "adapter_config.json")) continue;
            if ((st = xa_plan_begin(pl, it))) break;
            snprintf(tsetup, sizeof tsetup, "Stack(%s, %s)", r->targets[t], r->task_name);
            const char *tf[1] = {tl};
            xa_task_spec ts = spec;
            ts.frozen_dirs = tf;
            ts.setup = tsetup;
            ts.train_path = train;
            ts.dev_path = NULL;
            xa_phase_opts to = phase_opts(p, seed, art_resume(pl, it));
            fprintf(out, "task %s seed %" PRIu64 ": in-language reference for %s\n", r->task_name, seed, r->targets[t]);
            fflush(out);
            st = xa_train_task(r->base, r->tokenizer, pl->a[it].dir, &ts, &to, &res);
            if (!st && res.finished) st = xa_plan_commit(pl, it);
        }
    }
    return st;
}

static xa_status phase_fusion(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan_opts *a, xa_plan *pl) {
    xa_recipe_input ri; /* how the task files are read */
    xa_recipe_input_init(&ri, r);
    xa_fusion_config fc;
    xa_status st = build_fusion(&r->fusion, &fc);
    if (st) return st;
    const char *langs[XA_CFG_MAX_LANGS + 1];
    int n = all_languages(r, langs);
    char dirs[XA_CFG_MAX_LANGS + 1][XA_PATH_MAX];
    const char *dir_ptrs[XA_CFG_MAX_LANGS + 1];
    for (int i = 0; i < n && !st; i++) {
        st = join3(dirs[i], sizeof dirs[i], r->output, "lang", langs[i]);
        dir_ptrs[i] = dirs[i];
        if (!st && !exists(dirs[i], "adapter_config.json"))
            st = xa_error_set(XA_STATUS_NOT_FOUND, dirs[i], "a trained language adapter",
                              "run the lang phase first", "no adapter for %s", langs[i]);
    }
    if (n < 2 && !st) st = xa_error_set(XA_STATUS_CONFIG, r->path, "at least 2 languages to fuse", NULL, "one language");
    for (int k = 0; k < r->n_seeds && !st; k++) {
        uint64_t seed = r->seeds[k];
        if (a->has_seed && seed != (uint64_t)a->seed) continue;
        char tdir[XA_PATH_MAX], tad[XA_PATH_MAX], thead[XA_PATH_MAX], setup[2048], what[96];
        const int ia = xa_plan_find(pl, XA_ART_FUSION, NULL, seed);
        if (!st) st = task_dir(tdir, sizeof tdir, r, "task", NULL, seed);
        if (!st) st = join3(tad, sizeof tad, tdir, "final", "adapter");
        if (!st) st = join3(thead, sizeof thead, tdir, "final", "head");
        if (st) break;
        if (!exists(tad, "adapter_config.json")) {
            st = xa_error_set(XA_STATUS_NOT_FOUND, tad, "a trained task adapter", "run the task phase first", "no adapter");
            break;
        }
        snprintf(what, sizeof what, "fusion %s seed %" PRIu64, r->task_name, seed);
        if (ia < 0 || art_skip(out, pl, ia, what)) continue;
        if ((st = xa_plan_begin(pl, ia))) break;
        int len = snprintf(setup, sizeof setup, "Stack(Fuse(");
        for (int i = 0; i < n; i++) len += snprintf(setup + len, sizeof setup - (size_t)len, "%s%s", i ? ", " : "", langs[i]);
        snprintf(setup + len, sizeof setup - (size_t)len, "), %s)", r->task_name);
        xa_task_spec spec = {dir_ptrs, n, NULL, NULL, tad, langs, n, &fc, setup, r->task_type == XA_TASK_TAGGING,
                             r->task_name, thead, r->task_train, r->task_dev[0] ? r->task_dev : NULL, 0, ri.kind,
                             &ri.fields, ri.n_names ? ri.names : NULL, ri.n_names,
                             ri.doc_stride, ri.max_answer_length, ri.n_best_size,
                             ri.version_2_with_negative, ri.null_score_diff_threshold};
        xa_phase_opts o = phase_opts(p, seed, art_resume(pl, ia));
        fprintf(out, "fusion %s seed %" PRIu64 ": %s\n", r->task_name, seed, setup);
        fflush(out);
        xa_phase_result res;
        st = xa_train_task(r->base, r->tokenizer, pl->a[ia].dir, &spec, &o, &res);
        if (!st && res.finished) st = xa_plan_commit(pl, ia);
        if (!st) fprintf(out, "fusion %s seed %" PRIu64 ": best dev %.4f\n", r->task_name, seed, res.best_dev);
    }
    return st;
}

/* The full fine-tuning reference: per seed, the whole encoder and a fresh head on the source task
 * data (no adapters), the best English dev evaluation kept, as the task phase does. */
static xa_status phase_finetune(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan_opts *a,
                                xa_plan *pl) {
    xa_recipe_input ri; /* how the task files are read */
    xa_recipe_input_init(&ri, r);
    xa_status st = XA_STATUS_OK;
    for (int k = 0; k < r->n_seeds && !st; k++) {
        const uint64_t seed = r->seeds[k];
        if (a->has_seed && seed != (uint64_t)a->seed) continue;
        const int ia = xa_plan_find(pl, XA_ART_FINETUNE, NULL, seed);
        char what[96];
        snprintf(what, sizeof what, "finetune %s seed %" PRIu64, r->task_name, seed);
        if (ia < 0 || art_skip(out, pl, ia, what)) continue;
        if ((st = xa_plan_begin(pl, ia))) break;
        xa_task_spec spec = {NULL, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, r->task_type == XA_TASK_TAGGING,
                             r->task_name, NULL, r->task_train, r->task_dev[0] ? r->task_dev : NULL, 1, ri.kind,
                             &ri.fields, ri.n_names ? ri.names : NULL, ri.n_names,
                             ri.doc_stride, ri.max_answer_length, ri.n_best_size,
                             ri.version_2_with_negative, ri.null_score_diff_threshold};
        xa_phase_opts o = phase_opts(p, seed, art_resume(pl, ia));
        fprintf(out, "%s: the whole encoder + head on %s (no adapters)%s\n", what, r->task_train,
                o.resume ? "" : " (--force: from scratch)");
        fflush(out);
        xa_phase_result res;
        st = xa_train_task(r->base, r->tokenizer, pl->a[ia].dir, &spec, &o, &res);
        if (!st && res.finished) st = xa_plan_commit(pl, ia);
        if (!st) fprintf(out, "%s: loss %.3f -> %.3f, best dev %.4f at step %" PRId64 " (%.0f s)\n", what,
                         res.first_loss, res.last_loss, res.best_dev, res.best_step, res.seconds);
    }
    return st;
}

/* ---- evaluation ----------------------------------------------------------------------------------- */

typedef struct eval_run {
    const char *adapters[XA_CFG_MAX_LANGS + 2];
    char dirs[XA_CFG_MAX_LANGS + 2][XA_PATH_MAX];
    uint8_t drop_last[XA_CFG_MAX_LANGS + 2];
    int n;
    char fusion[XA_PATH_MAX];
    char head[XA_PATH_MAX];
    char base[XA_PATH_MAX];    /* full_ft: the fine-tuned encoder; "" = the recipe's base */
    char setup[2048];          /* "" = none: the plain encoder */
} eval_run;

static void add_dir(eval_run *e, const char *dir, int drop_last) {
    snprintf(e->dirs[e->n], sizeof e->dirs[e->n], "%s", dir);
    e->adapters[e->n] = e->dirs[e->n];
    e->drop_last[e->n] = (uint8_t)drop_last;
    e->n++;
}

/* Build the run of `setup` for target language tgt and seed; returns 0 when it cannot run
 * (missing outputs) with *why set. */
static int build_eval(const xa_recipe *r, const char *setup, const char *tgt, uint64_t seed, eval_run *e,
                      const char **why) {
    memset(e, 0, sizeof *e);
    char tdir[XA_PATH_MAX], lang_dir[XA_PATH_MAX], src_dir[XA_PATH_MAX], p[XA_PATH_MAX];
    if (task_dir(tdir, sizeof tdir, r, "task", NULL, seed) || join3(lang_dir, sizeof lang_dir, r->output, "lang", tgt) ||
        join3(src_dir, sizeof src_dir, r->output, "lang", r->source))
        return 0;
    join3(p, sizeof p, tdir, "final", "adapter");
    const int have_task = exists(p, "adapter_config.json");
    if (!strcmp(setup, "task_only") || !strcmp(setup, "src_stack") || !strcmp(setup, "madx") ||
        !strcmp(setup, "madx2")) {
        if (!have_task) return *why = "no trained task adapter", 0;
        join3(e->head, sizeof e->head, tdir, "final", "head");
        if (!strcmp(setup, "task_only")) {
            snprintf(e->setup, sizeof e->setup, "%s", r->task_name);
        } else {
            const char *lang = !strcmp(setup, "src_stack") ? r->source : tgt;
            const char *ldir = !strcmp(setup, "src_stack") ? src_dir : lang_dir;
            if (!exists(ldir, "adapter_config.json")) return *why = "no language adapter", 0;
            add_dir(e, ldir, !strcmp(setup, "madx2"));
            snprintf(e->setup, sizeof e->setup, "Stack(%s, %s)", lang, r->task_name);
        }
        add_dir(e, p, 0);
        return 1;
    }
    if (!strcmp(setup, "fusion")) {
        char fdir[XA_PATH_MAX];
        if (task_dir(fdir, sizeof fdir, r, "fusion", NULL, seed)) return 0;
        join3(e->fusion, sizeof e->fusion, fdir, "final", "fusion");
        if (!exists(e->fusion, "adapter_fusion_config.json")) return *why = "no trained fusion", 0;
        join3(e->head, sizeof e->head, fdir, "final", "head");
        const char *langs[XA_CFG_MAX_LANGS + 1];
        int n = all_languages(r, langs);
        int len = snprintf(e->setup, sizeof e->setup, "Stack(Fuse(");
        for (int i = 0; i < n; i++) {
            char d[XA_PATH_MAX];
            join3(d, sizeof d, r->output, "lang", langs[i]);
            add_dir(e, d, 0);
            len += snprintf(e->setup + len, sizeof e->setup - (size_t)len, "%s%s", i ? ", " : "", langs[i]);
        }
        snprintf(e->setup + len, sizeof e->setup - (size_t)len, "), %s)", r->task_name);
        add_dir(e, p, 0);
        return 1;
    }
    if (!strcmp(setup, "full_ft")) { /* the fine-tuned encoder as the base, its head, no adapters */
        char d[XA_PATH_MAX];
        if (task_dir(d, sizeof d, r, "finetune", NULL, seed) || join3(e->base, sizeof e->base, d, "final", "encoder"))
            return 0;
        if (!exists(e->base, "model.safetensors")) return *why = "no fine-tuned encoder", 0;
        join3(e->head, sizeof e->head, d, "final", "head");
        return 1;
    }
    if (!strcmp(setup, "in_language")) {
        char d[XA_PATH_MAX];
        if (task_dir(d, sizeof d, r, "target", tgt, seed)) return 0;
        join3(p, sizeof p, d, "final", "adapter");
        if (!exists(p, "adapter_config.json")) return *why = "no in-language task adapter", 0;
        join3(e->head, sizeof e->head, d, "final", "head");
        add_dir(e, lang_dir, 0);
        add_dir(e, p, 0);
        snprintf(e->setup, sizeof e->setup, "Stack(%s, %s)", tgt, r->task_name);
        return 1;
    }
    return *why = "unknown setup name", 0;
}

static const char *setup_label(const char *s) {
    if (!strcmp(s, "task_only")) return "task adapter alone";
    if (!strcmp(s, "src_stack")) return "Stack(lang:src, task)";
    if (!strcmp(s, "madx")) return "MAD-X Stack(lang:tgt, task)";
    if (!strcmp(s, "madx2")) return "MAD-X 2.0 (no last-layer lang)";
    if (!strcmp(s, "fusion")) return "Fuse(langs) + task";
    if (!strcmp(s, "in_language")) return "in-language reference";
    if (!strcmp(s, "full_ft")) return "full fine-tuning";
    return s;
}

/* Mean and sample standard deviation of vals into cell (row, col). */
static void set_cell(xa_table *t, int row, int col, const double *vals, int nv) {
    if (!nv) return;
    double mean = 0, var = 0;
    for (int k = 0; k < nv; k++) mean += vals[k] / nv;
    for (int k = 0; k < nv; k++) var += (vals[k] - mean) * (vals[k] - mean);
    t->value[row][col] = mean;
    t->spread[row][col] = nv > 1 ? sqrt(var / (nv - 1)) : NAN;
}

/* The "mean (targets)" row (row 0 is the source), with the spread over seeds of each seed's
 * mean over the targets. */
/* Every eval table row exists: 64 targets wrote value[-1] when the table held 64 rows. */
_Static_assert(XA_TABLE_MAX_ROWS >= XA_CFG_MAX_LANGS + 4, "source + targets + seen/unseen/all mean rows");

static int is_unseen(const xa_recipe *r, const char *lang) {
    for (int k = 0; k < r->n_unseen; k++)
        if (!strcmp(r->unseen[k], lang)) return 1;
    return 0;
}

/* The target mean rows: over every target, and with unseen targets (listed last, see config)
 * one for each group. The targets' rows start at `first` (1 below a source row, 0 in a table
 * without one). ss[0] sums every target, ss[1] the seen and ss[2] the unseen ones. */
static void add_target_mean(xa_table *t, const xa_recipe *r, int first, const xa_seed_sums ss[3], int n_seeds) {
    if (r->n_targets == 0) return;
    int n_seen = r->n_targets - r->n_unseen;
    if (r->n_unseen > 0 && n_seen > 0) {
        xa_table_add_group_mean_row(t, "mean (seen targets)", first, n_seen, &ss[1], n_seeds);
        xa_table_add_group_mean_row(t, "mean (unseen targets)", first + n_seen, r->n_unseen, &ss[2], n_seeds);
    }
    xa_table_add_group_mean_row(t, "mean (targets)", first, r->n_targets, &ss[0], n_seeds);
}

/* Print the table and write DIR/STEM.{md,json,csv,svg}. */
static xa_status write_table(FILE *out, const xa_table *t, const char *dir, const char *shown, const char *stem) {
    static const char *const ext[] = {"md", "json", "csv", "svg"};
    char name[64], path[XA_PATH_MAX];
    xa_status st = XA_STATUS_OK;
    fprintf(out, "\n");
    xa_table_print_markdown(t, out);
    for (int k = 0; k < 4 && !st; k++) {
        snprintf(name, sizeof name, "%s.%s", stem, ext[k]);
        st = xa_path_join(path, sizeof path, dir, name);
        if (st) break;
        st = k == 0 ? xa_table_write_markdown(t, path) : k == 1 ? xa_table_write_json(t, path)
           : k == 2 ? xa_table_write_csv(t, path) : xa_table_write_svg(t, path);
    }
    if (!st) fprintf(out, "\n%s: %s/%s.{md,json,csv,svg}\n", stem, shown, stem);
    return st;
}

/* A table shared by the recipes of an output (eval/NAME): tmp (fin.tmp) is emptied and receives
 * the table's provenance; the caller writes the results there and swaps tmp in for fin when
 * complete (cells whose identity is unchanged are reused from fin, see cell_book). */
static xa_status shared_table_begin(const xa_plan *pl, const char *name, const char *pattern, int B, int T,
                                    const char *fin, char *tmp) {
    char path[XA_PATH_MAX], *prov = NULL;
    xa_status st = xa_plan_table_provenance(pl, name, pattern, B, T, &prov);
    if (st) return st;
    if (snprintf(tmp, XA_PATH_MAX, "%s.tmp", fin) >= XA_PATH_MAX) st = XA_STATUS_USAGE;
    if (!st) st = xa_file_remove_tree(tmp);
    if (!st) st = xa_file_mkdirs(tmp);
    if (!st) st = xa_path_join(path, sizeof path, tmp, XA_PROV_FILE);
    if (!st) st = xa_file_write_atomic(path, prov, strlen(prov));
    free(prov);
    return st;
}

/* The cells of one results directory (pipeline/cells.h): the previous set's exact values, reused
 * only for an identical identity, and the new set's cells.tsv written beside its raw.jsonl. */
typedef struct cell_book {
    xa_cells old;
    FILE *f;       /* tmp/cells.tsv */
    int reused, computed;
} cell_book;

/* Read fin/cells.tsv (only from a complete set: fin/results.json exists) and open tmp/cells.tsv. */
static xa_status book_open(cell_book *cb, const char *fin, const char *tmp) {
    char path[XA_PATH_MAX];
    memset(cb, 0, sizeof *cb);
    xa_status st = xa_path_join(path, sizeof path, fin, "cells.tsv");
    if (!st && exists(fin, "results.json")) st = xa_cells_read(&cb->old, path);
    if (!st) st = xa_path_join(path, sizeof path, tmp, "cells.tsv");
    if (st) return st;
    cb->f = fopen(path, "w");
    if (!cb->f) {
        xa_cells_free(&cb->old);
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot write");
    }
    return XA_STATUS_OK;
}

/* The previous values of cell id (nv of them) into v; 1 when reused. */
static int book_reuse(cell_book *cb, uint64_t id, double *v, int nv) {
    const double *old = xa_cells_find(&cb->old, id, nv);
    if (!old) return 0;
    memcpy(v, old, (size_t)nv * sizeof *v);
    cb->reused++;
    return 1;
}

/* Record cell id with its values in the new set. */
static void book_add(cell_book *cb, uint64_t id, const double *v, int nv, int reused) {
    xa_cells_write(cb->f, id, v, nv);
    fflush(cb->f);
    cb->computed += !reused;
}

/* Close the book; with out, print how many cells were reused and computed. */
static xa_status book_close(cell_book *cb, FILE *out, const char *name) {
    int bad = 0;
    if (cb->f) {
        bad = ferror(cb->f) != 0;
        bad |= fclose(cb->f) != 0;
    }
    xa_cells_free(&cb->old);
    if (out) fprintf(out, "eval: %d cells reused, %d computed (%s)\n", cb->reused, cb->computed, name);
    cb->f = NULL;
    return bad ? xa_error_set(XA_STATUS_IO, name, NULL, NULL, "cannot write cells.tsv") : XA_STATUS_OK;
}

/* The identity of a cell of the MLM or retrieval table: base, tokenizer, the adapters it ran
 * with (NULL: none), the data file and the settings. */
static uint64_t lang_cell_id(const xa_recipe *r, const xa_cfg_phase *p, const char *table, const char *lang,
                             const char *col, const char *ad1, const char *ad2, const char *file, int B, int T,
                             uint64_t seed) {
    uint64_t h = xa_cell_begin(table);
    h = xa_cell_str(xa_cell_str(h, lang), col);
    h = xa_cell_file(xa_cell_dir(h, r->base), r->tokenizer);
    h = xa_cell_dir(xa_cell_dir(h, ad1), ad2);
    h = xa_cell_file(h, file);
    h = xa_cell_int(xa_cell_int(xa_cell_int(h, B), T), (int64_t)seed);
    /* bf16 products only (fp32 cells keep the ids they had before the key existed) */
    return xa_pipeline_precision(p) == XA_PRECISION_BF16 ? xa_cell_str(h, "bf16") : h;
}

/* The held-out MLM table (data.mlm_heldout): masked-piece accuracy of the base alone, with the
 * language's own adapter and with the source language's adapter, per language, on held-out text
 * with the same masks for every column. Written to OUTPUT/eval/mlm/ (shared by the recipes
 * of one output) and recomputed when its adapters or texts changed (its provenance). */
static xa_status eval_mlm_table(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan *pl,
                                xa_eval_cache *ec) {
    char fin[XA_PATH_MAX], edir[XA_PATH_MAX], path[XA_PATH_MAX];
    int T = p->seq_len; /* the language adapters' block length when the recipe has a lang phase */
    for (int i = 0; i < r->n_phases; i++)
        if (r->phases[i].kind == XA_PHASE_LANG) T = r->phases[i].seq_len;
    const int B = p->batch_size < 16 ? p->batch_size : 16; /* logits are (B*T, V) */
    xa_status st = join3(fin, sizeof fin, r->output, "eval", "mlm");
    if (st) return st;
    if ((st = shared_table_begin(pl, "mlm", r->mlm_heldout, B, T, fin, edir))) return st;
    cell_book cb;
    if ((st = xa_path_join(path, sizeof path, edir, "raw.jsonl"))) return st;
    if ((st = book_open(&cb, fin, edir))) return st;
    FILE *raw = fopen(path, "w");
    if (!raw) {
        book_close(&cb, NULL, "mlm");
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot write");
    }
    static xa_table tab;
    char title[256], src_dir[XA_PATH_MAX], col_src[64];
    snprintf(title, sizeof title, "held-out MLM: masked-piece accuracy (blocks of %d, seed %" PRIu64 ")", T, r->seed);
    xa_table_init(&tab, title, "mlm_accuracy");
    snprintf(col_src, sizeof col_src, "+ lang:%s adapter", r->source);
    xa_table_col(&tab, "base alone");
    xa_table_col(&tab, "+ own language adapter");
    xa_table_col(&tab, col_src);
    if ((st = join3(src_dir, sizeof src_dir, r->output, "lang", r->source))) goto out;
    for (int i = 0; i <= r->n_targets && !st; i++) {
        const char *l = i ? r->targets[i - 1] : r->source;
        char text[XA_PATH_MAX], own[XA_PATH_MAX], rowname[40];
        if ((st = xa_cfg_expand(text, sizeof text, r->mlm_heldout, l))) break;
        if ((st = join3(own, sizeof own, r->output, "lang", l))) break;
        snprintf(rowname, sizeof rowname, "%s%s", l, i == 0 ? " (src)" : is_unseen(r, l) ? " (unseen)" : "");
        int row = xa_table_row(&tab, rowname);
        if (row < 0) { /* the recipe's languages are checked against the table size at load time */
            st = xa_error_set(XA_STATUS_CONFIG, r->path, "fewer targets", NULL, "the results table is full");
            break;
        }
        if (access(text, F_OK) != 0) {
            fprintf(stderr, "eval: no held-out text %s; row %s left empty\n", text, l);
            continue;
        }
        const char *dirs[3] = {NULL, exists(own, "adapter_config.json") ? own : NULL,
                               i && exists(src_dir, "adapter_config.json") ? src_dir : NULL};
        static const char *const names[3] = {"base", "own", "source"};
        for (int c = 0; c < 3 && !st; c++) {
            if (c > 0 && !dirs[c]) continue;
            const uint64_t id = lang_cell_id(r, p, "mlm", l, names[c], dirs[c], NULL, text, B, T, r->seed);
            double v[3];
            const int reused = book_reuse(&cb, id, v, 3);
            if (!reused) {
                xa_mlm_metrics m;
                st = xa_eval_mlm_cached(ec, r->base, r->tokenizer, dirs[c], text, B, T, r->seed, 0, &m);
                if (st) break;
                v[0] = (double)m.n_masked;
                v[1] = m.loss;
                v[2] = m.accuracy;
                cell_line("eval: mlm %-6s %-6s: loss %.4f, accuracy %.4f (%" PRId64 " masked)\n", l, names[c],
                          m.loss, m.accuracy, m.n_masked);
            }
            book_add(&cb, id, v, 3, reused);
            tab.value[row][c] = v[2];
            char cell[17];
            xa_cell_hex(id, cell);
            fprintf(raw, "{\"language\": \"%s\", \"setup\": \"%s\", \"n_masked\": %" PRId64
                         ", \"loss\": %.6f, \"accuracy\": %.6f, \"cell\": \"%s\"}\n", l, names[c], (int64_t)v[0], v[1],
                    v[2], cell);
            fflush(raw);
        }
    }
out:
    fclose(raw);
    if (!st) st = book_close(&cb, out, "mlm");
    else book_close(&cb, NULL, "mlm");
    if (st) return st;
    static xa_seed_sums none[3]; /* one evaluation per cell: no spread */
    add_target_mean(&tab, r, 1, none, 1);
    st = write_table(out, &tab, edir, fin, "results");
    if (!st) st = xa_ckpt_swap_dir(edir, fin);
    return st;
}

/* A retrieval cell's values: n, n_layers, accuracy, en2x[n_layers], x2en[n_layers]. */
static void add_retrieval(cell_book *cb, uint64_t id, const xa_retrieval_metrics *m, int reused) {
    double v[3 + 2 * XA_RETRIEVAL_MAX_LAYERS];
    v[0] = (double)m->n;
    v[1] = m->n_layers;
    v[2] = m->accuracy;
    for (int k = 0; k < m->n_layers; k++) {
        v[3 + k] = m->en2x[k];
        v[3 + m->n_layers + k] = m->x2en[k];
    }
    book_add(cb, id, v, 3 + 2 * m->n_layers, reused);
}

static int reuse_retrieval(cell_book *cb, uint64_t id, xa_retrieval_metrics *m) {
    const xa_cell *c = NULL;
    for (int i = 0; i < cb->old.n && !c; i++)
        if (cb->old.c[i].id == id) c = &cb->old.c[i];
    if (!c || c->nv < 5) return 0;
    const int L = (int)c->v[1];
    if (L < 1 || L > XA_RETRIEVAL_MAX_LAYERS || c->nv != 3 + 2 * L) return 0;
    memset(m, 0, sizeof *m);
    m->n = (int64_t)c->v[0];
    m->n_layers = L;
    m->accuracy = c->v[2];
    for (int k = 0; k < L; k++) {
        m->en2x[k] = c->v[3 + k];
        m->x2en[k] = c->v[3 + L + k];
    }
    cb->reused++;
    add_retrieval(cb, id, m, 1);
    return 1;
}

/* The cross-lingual retrieval table (data.retrieval): accuracy@1 of finding the translation of a
 * held-out paragraph among all of its language's, for the bare base and with the MAD-X language
 * adapters (English under lang:src, the target under its own). */
static xa_status eval_retrieval_table(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan *pl,
                                      xa_eval_cache *ec) {
    char fin[XA_PATH_MAX], edir[XA_PATH_MAX], path[XA_PATH_MAX];
    xa_status st = join3(fin, sizeof fin, r->output, "eval", "retrieval");
    if (st) return st;
    if ((st = shared_table_begin(pl, "retrieval", r->retrieval, p->batch_size, p->seq_len, fin, edir))) return st;
    cell_book cb;
    if ((st = xa_path_join(path, sizeof path, edir, "raw.jsonl"))) return st;
    if ((st = book_open(&cb, fin, edir))) return st;
    FILE *raw = fopen(path, "w");
    if (!raw) {
        book_close(&cb, NULL, "retrieval");
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot write");
    }
    static xa_table tab;
    char src_dir[XA_PATH_MAX];
    xa_table_init(&tab, "cross-lingual retrieval: accuracy@1 of the translation among held-out paragraphs "
                        "(mean-pooled last layer, centred, cosine; both directions)", "retrieval_acc");
    xa_table_col(&tab, "base alone");
    xa_table_col(&tab, "+ language adapters");
    xa_table_col(&tab, "chance");
    if ((st = join3(src_dir, sizeof src_dir, r->output, "lang", r->source))) goto out;
    for (int i = 0; i < r->n_targets && !st; i++) {
        const char *l = r->targets[i];
        char file[XA_PATH_MAX], own[XA_PATH_MAX], rowname[40];
        if ((st = xa_cfg_expand(file, sizeof file, r->retrieval, l))) break;
        if ((st = join3(own, sizeof own, r->output, "lang", l))) break;
        int unseen = is_unseen(r, l);
        snprintf(rowname, sizeof rowname, "%s%s", l, unseen ? " (unseen)" : "");
        int row = xa_table_row(&tab, rowname);
        if (row < 0) {
            st = xa_error_set(XA_STATUS_CONFIG, r->path, "fewer targets", NULL, "the results table is full");
            break;
        }
        if (access(file, F_OK) != 0) {
            fprintf(stderr, "eval: no retrieval pairs %s; row %s left empty\n", file, l);
            continue;
        }
        int have = exists(own, "adapter_config.json") && exists(src_dir, "adapter_config.json");
        for (int c = 0; c < 2 && !st; c++) {
            if (c == 1 && !have) continue;
            const char *col = c ? "lang_adapters" : "base";
            const uint64_t id = lang_cell_id(r, p, "retrieval", l, col, c ? src_dir : NULL, c ? own : NULL, file,
                                             p->batch_size, p->seq_len, 0);
            xa_retrieval_metrics m;
            if (!reuse_retrieval(&cb, id, &m)) {
                st = xa_eval_retrieval_cached(ec, r->base, r->tokenizer, c ? src_dir : NULL, c ? own : NULL, file,
                                       p->batch_size, p->seq_len, &m);
                if (st) break;
                cell_line("eval: retrieval %-6s %-13s: acc@1 %.4f (en->x %.4f, x->en %.4f; %" PRId64 " pairs)\n",
                          l, col, m.accuracy, m.en2x[m.n_layers - 1], m.x2en[m.n_layers - 1], m.n);
                add_retrieval(&cb, id, &m, 0);
            }
            tab.value[row][c] = m.accuracy;
            tab.value[row][2] = 1.0 / (double)m.n;
            char cell[17];
            xa_cell_hex(id, cell);
            fprintf(raw, "{\"language\": \"%s\", \"unseen\": %s, \"setup\": \"%s\", \"n\": %" PRId64
                         ", \"accuracy\": %.6f, \"en2x\": [", l, unseen ? "true" : "false", col, m.n, m.accuracy);
            for (int k = 0; k < m.n_layers; k++) fprintf(raw, "%s%.4f", k ? ", " : "", m.en2x[k]);
            fputs("], \"x2en\": [", raw);
            for (int k = 0; k < m.n_layers; k++) fprintf(raw, "%s%.4f", k ? ", " : "", m.x2en[k]);
            fprintf(raw, "], \"cell\": \"%s\"}\n", cell);
            fflush(raw);
        }
    }
out:
    fclose(raw);
    if (!st) st = book_close(&cb, out, "retrieval");
    else book_close(&cb, NULL, "retrieval");
    if (st) return st;
    static xa_seed_sums none[3];
    add_target_mean(&tab, r, 0, none, 1); /* no source row */
    st = write_table(out, &tab, edir, fin, "results");
    if (!st) st = xa_ckpt_swap_dir(edir, fin);
    return st;
}

/* The identity of a task cell (pipeline/cells.h): its coordinates, the base and tokenizer, the
 * setup with every adapter (and whether its last layer is dropped), the fusion, the head, the test
 * file and the eval settings. */
static uint64_t task_cell_id(const xa_recipe *r, const xa_cfg_phase *p, const char *lang, const char *setup,
                             uint64_t seed, const eval_run *e, const char *test) {
    uint64_t h = xa_cell_begin(r->task_name);
    h = xa_cell_int(h, r->task_type);
    h = xa_cell_str(xa_cell_str(xa_cell_int(h, (int64_t)seed), lang), setup);
    h = xa_cell_file(xa_cell_dir(h, r->base), r->tokenizer);
    h = xa_cell_str(h, e->setup);
    for (int u = 0; u < e->n; u++) h = xa_cell_int(xa_cell_dir(h, e->adapters[u]), e->drop_last[u]);
    h = xa_cell_dir(xa_cell_dir(h, e->fusion), e->head);
    if (e->base[0]) h = xa_cell_dir(h, e->base); /* full_ft (absent otherwise: older cells keep their ids) */
    h = xa_cell_file(h, test);
    h = xa_cell_int(xa_cell_int(h, p->batch_size), p->seq_len);
    if (r->task_type == XA_TASK_QUESTION_ANSWERING) /* the windows and the span rules change the scores */
        h = xa_cell_int(xa_cell_int(xa_cell_int(h, r->qa_doc_stride), r->qa_max_answer_length), r->qa_n_best_size);
    if (r->task_type == XA_TASK_QUESTION_ANSWERING && r->qa_version_2_with_negative) /* absent: v1 cells keep their ids */
    {
        char thr[48];
        snprintf(thr, sizeof thr, "v2 %.17g", r->qa_null_score_diff_threshold);
        h = xa_cell_str(h, thr);
    }
    return xa_pipeline_precision(p) == XA_PRECISION_BF16 ? xa_cell_str(h, "bf16") : h; /* as lang_cell_id */
}

/* The per-class reports of a task table: those of the previous complete set (reused with their
 * cells) and the new set's, written beside raw.jsonl. */
typedef struct report_book {
    xa_report_set old, now;
} report_book;

/* One cell of the task table: reused from the previous results when its identity is unchanged
 * and the previous set has its per-class report, else evaluated; its raw.jsonl line (with
 * "inputs", the id of the adapters, fusion and head, and "cell", its whole identity), its
 * cells.tsv line and its per-class report (under the table row's name) are written. */
static xa_status eval_task_cell(FILE *raw, cell_book *cb, report_book *rb, const xa_recipe *r, const xa_cfg_phase *p,
                                const char *lang, const char *row, const char *setup, uint64_t seed, const eval_run *e,
                                const char *test, xa_eval_cache *ec, xa_eval_metrics *m) {
    const uint64_t id = task_cell_id(r, p, lang, setup, seed, e, test);
    char cell[17];
    xa_cell_hex(id, cell);
    double v[7];
    const xa_report_cell *prev = xa_report_set_find(&rb->old, cell);
    const int reused = prev && book_reuse(cb, id, v, 7);
    xa_status st = XA_STATUS_OK;
    if (reused) {
        /* slot 1 holds accuracy, or exact match for question answering (the cell keeps 7 values) */
        const int qa = r->task_type == XA_TASK_QUESTION_ANSWERING;
        *m = (xa_eval_metrics){(int64_t)v[0], qa ? NAN : v[1], v[2], v[3], v[4], v[5], v[6], NAN, qa ? v[1] : NAN};
        st = xa_report_set_add(&rb->now, cell, row, setup, setup_label(setup), seed, &prev->rep);
        if (st) return st;
    } else {
        xa_class_report rep;
        xa_recipe_input ri;
        xa_recipe_input_init(&ri, r);
        const xa_eval_input ein = {ri.kind, &ri.fields, ri.n_names ? ri.names : NULL, ri.n_names,
                             ri.doc_stride, ri.max_answer_length, ri.n_best_size,
                             ri.version_2_with_negative, ri.null_score_diff_threshold, ec};
        st = xa_eval_setup_input(e->base[0] ? e->base : r->base, r->tokenizer, e->adapters, e->drop_last, e->n,
                                 e->fusion[0] ? e->fusion : NULL, e->setup[0] ? e->setup : NULL, e->head, test,
                                 p->batch_size, p->seq_len, &ein, m, &rep);
        if (!st) st = xa_report_set_add(&rb->now, cell, row, setup, setup_label(setup), seed, &rep);
        xa_class_report_free(&rep);
        if (st) return st;
        const int qa = r->task_type == XA_TASK_QUESTION_ANSWERING;
        const double w[7] = {(double)m->n, qa ? m->exact_match : m->accuracy, m->macro_f1, m->precision, m->recall, m->f1,
                             m->primary};
        memcpy(v, w, sizeof v);
        cell_line("eval: %-6s %-12s seed %" PRIu64 ": %.4f (%s)\n", lang, setup, seed, m->primary,
                  e->setup[0] ? e->setup : e->base);
    }
    book_add(cb, id, v, 7, reused);
    const char *used[XA_CFG_MAX_LANGS + 4];
    int n_used = 0;
    for (int u = 0; u < e->n; u++) used[n_used++] = e->adapters[u];
    used[n_used++] = e->fusion;
    used[n_used++] = e->head;
    if (e->base[0]) used[n_used++] = e->base;
    char inputs[17];
    xa_pipeline_inputs_id(used, n_used, inputs);
    if (r->task_type == XA_TASK_QUESTION_ANSWERING) /* SQuAD's two scores, as fractions */
        fprintf(raw, "{\"language\": \"%s\", \"setup\": \"%s\", \"seed\": %" PRIu64 ", \"n\": %" PRId64
                     ", \"exact_match\": %.6f, \"f1\": %.6f, \"inputs\": \"%s\", \"cell\": \"%s\"}\n",
                lang, setup, seed, m->n, m->exact_match, m->f1, inputs, cell);
    else
        fprintf(raw, "{\"language\": \"%s\", \"setup\": \"%s\", \"seed\": %" PRIu64 ", \"n\": %" PRId64
                     ", \"accuracy\": %.6f, \"macro_f1\": %.6f, \"precision\": %.6f, \"recall\": %.6f, "
                     "\"f1\": %.6f, \"inputs\": \"%s\", \"cell\": \"%s\"}\n",
                lang, setup, seed, m->n, m->accuracy, m->macro_f1, m->precision, m->recall, m->f1, inputs, cell);
    fflush(raw);
    return XA_STATUS_OK;
}

/* The relative path from directory `from` to `to` (both absolute and normalised, as config makes
 * them), e.g. "../../lang/de/metrics.svg"; `to` itself when it does not fit. */
static void rel_path(char *out, size_t n, const char *from, const char *to) {
    size_t common = 0, i = 0; /* the common prefix, up to a component boundary */
    for (; from[i] && from[i] == to[i]; i++)
        if (from[i] == '/') common = i + 1;
    if (!from[i] && to[i] == '/') common = i + 1; /* `from` is a directory above `to` */
    int ups = 0;                                  /* the components of `from` below the prefix */
    if (from[common]) {
        ups = 1;
        for (const char *c = from + common; *c; c++) ups += *c == '/';
    }
    size_t len = 0;
    for (int k = 0; k < ups && len + 3 < n; k++) len += (size_t)snprintf(out + len, n - len, "../");
    if (len + 3 >= n || snprintf(out + len, n - len, "%s", to + common) >= (int)(n - len)) snprintf(out, n, "%s", to);
}

/* A Markdown link target: spaces and parentheses would end it. */
static void md_target(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == ' ') fputs("%20", f);
        else if (*s == '(') fputs("%28", f);
        else if (*s == ')') fputs("%29", f);
        else fputc(*s, f);
    }
}

/* "### Training runs" under results.md (in tmp, which becomes fin): for every trained artefact of
 * the plan with a metrics.jsonl, links to its loss curves (metrics.svg, drawn here when missing or
 * older than the metrics, e.g. for runs of an older xadapt) and its metrics, relative to fin. */
static xa_status append_runs(const char *tmp, const char *fin, const xa_plan *pl) {
    char md[XA_PATH_MAX];
    xa_status st = xa_path_join(md, sizeof md, tmp, "results.md");
    if (st) return st;
    FILE *f = fopen(md, "a");
    if (!f) return xa_error_set(XA_STATUS_IO, md, NULL, NULL, "cannot append the training runs");
    int n = 0;
    for (int i = 0; i < pl->n; i++) {
        const xa_artefact *a = &pl->a[i];
        char metrics[XA_PATH_MAX], svg[XA_PATH_MAX], rel[XA_PATH_MAX], title[192];
        struct stat sm, sv;
        if (xa_path_join(metrics, sizeof metrics, a->dir, "metrics.jsonl") ||
            xa_path_join(svg, sizeof svg, a->dir, "metrics.svg") || stat(metrics, &sm) != 0) {
            xa_error_clear();
            continue;
        }
        if (stat(svg, &sv) != 0 || sv.st_mtime < sm.st_mtime) {
            snprintf(title, sizeof title, "%s: training curves", a->label);
            if (xa_plot_metrics(metrics, svg, title, NULL)) {
                XA_LOG_WARN("eval: no loss curves for %s: %s", a->label, xa_error_last()->what);
                xa_error_clear();
                continue;
            }
        }
        if (!n++)
            fputs("\n### Training runs\n\nLoss curves of the runs behind these results (training loss and its "
                  "smoothed curve, evaluations and the learning rate over the optimizer steps):\n\n"
                  "| run | loss curves | metrics |\n|:---|:---|:---|\n", f);
        fprintf(f, "| %s | [metrics.svg](", a->label);
        rel_path(rel, sizeof rel, fin, svg);
        md_target(f, rel);
        fputs(") | [metrics.jsonl](", f);
        rel_path(rel, sizeof rel, fin, metrics);
        md_target(f, rel);
        fputs(") |\n", f);
    }
    const int bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return xa_error_set(XA_STATUS_IO, md, NULL, NULL, "cannot append the training runs");
    return XA_STATUS_OK;
}

static xa_status eval_task_table(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan *pl,
                                 xa_eval_cache *ec);

/* The eval phase: the MLM and retrieval tables (when the recipe has their data) and the task
 * table, every computed cell on one eval cache (train.h): the base and tokenizer are loaded once,
 * each test file is tokenized once, and the cache is freed when the phase ends. */
static xa_status phase_eval(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan *pl) {
    xa_eval_cache *ec = NULL;
    xa_status st = xa_eval_cache_init(&ec, r->base, r->tokenizer);
    if (!st && r->mlm_heldout[0]) st = eval_mlm_table(out, r, p, pl, ec);
    if (!st && r->retrieval[0]) st = eval_retrieval_table(out, r, p, pl, ec);
    if (!st) st = eval_task_table(out, r, p, pl, ec);
    const xa_eval_cache_stats cs = xa_eval_cache_stats_of(ec);
    if (!st && cs.base_lends > 0)
        cell_line("eval: the base loaded %d time%s for %d evaluation%s; %d data file%s tokenized, %d reused\n",
                  cs.base_loads, cs.base_loads == 1 ? "" : "s", cs.base_lends, cs.base_lends == 1 ? "" : "s",
                  cs.data_loads, cs.data_loads == 1 ? "" : "s", cs.data_reuses);
    xa_eval_cache_free(ec);
    return st;
}

/* The task table of the eval phase (eval/<task>). */
static xa_status eval_task_table(FILE *out, const xa_recipe *r, const xa_cfg_phase *p, const xa_plan *pl,
                                 xa_eval_cache *ec) {
    char fin[XA_PATH_MAX], edir[XA_PATH_MAX], path[XA_PATH_MAX];
    /* eval/<task> (recipes may share an output), replaced only by a complete new set of results:
     * they are written into eval/<task>.tmp with their provenance and swapped in at the end */
    xa_status st = join3(fin, sizeof fin, r->output, "eval", r->task_name);
    if (st) return st;
    if (snprintf(edir, sizeof edir, "%s.tmp", fin) >= (int)sizeof edir) return XA_STATUS_USAGE;
    if (!st) st = xa_file_remove_tree(edir);
    if (!st) st = xa_file_mkdirs(edir);
    if (!st) {
        char *prov = NULL;
        st = xa_plan_eval_provenance(pl, p, &prov);
        if (!st) st = xa_path_join(path, sizeof path, edir, XA_PROV_FILE);
        if (!st) st = xa_file_write_atomic(path, prov, strlen(prov));
        free(prov);
    }
    if (!st) st = xa_path_join(path, sizeof path, edir, "raw.jsonl");
    if (st) return st;
    cell_book cb;
    if ((st = book_open(&cb, fin, edir))) return st;
    static report_book rb; /* the per-class reports: previous complete set, this set */
    memset(&rb, 0, sizeof rb);
    char rpath[XA_PATH_MAX];
    if (!(st = xa_path_join(rpath, sizeof rpath, fin, "per_class.jsonl")) && exists(fin, "results.json"))
        st = xa_report_set_read(&rb.old, rpath);
    FILE *raw = st ? NULL : fopen(path, "w");
    if (!raw) {
        book_close(&cb, NULL, r->task_name);
        xa_report_set_free(&rb.old);
        return st ? st : xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot write");
    }
    const int tagging = r->task_type == XA_TASK_TAGGING, qa = r->task_type == XA_TASK_QUESTION_ANSWERING;
    xa_table tab;
    char title[256];
    snprintf(title, sizeof title, "%s: %s, zero-shot from %s (%d seed%s)", r->task_name,
             tagging ? "span F1" : qa ? "F1 (SQuAD)" : "accuracy", r->source, r->n_seeds, r->n_seeds > 1 ? "s" : "");
    xa_table_init(&tab, title, tagging ? "span_f1" : qa ? "f1" : "accuracy");
    tab.n_seeds = r->n_seeds;
    /* classification: macro-F1 beside accuracy (classes are unbalanced); QA: exact match beside F1 */
    static xa_table tab_f1;
    snprintf(title, sizeof title, "%s: %s, zero-shot from %s (%d seed%s)", r->task_name,
             qa ? "exact match (SQuAD)" : "macro-F1", r->source, r->n_seeds, r->n_seeds > 1 ? "s" : "");
    xa_table_init(&tab_f1, title, qa ? "exact_match" : "macro_f1");
    tab_f1.n_seeds = r->n_seeds;
    static xa_seed_sums ss[3], ss_f1[3]; /* every target, the seen ones, the unseen ones */
    memset(ss, 0, sizeof ss);
    memset(ss_f1, 0, sizeof ss_f1);
    const char *rows[XA_CFG_MAX_LANGS + 1];
    int n_rows = 0;
    rows[n_rows++] = r->source;
    for (int i = 0; i < r->n_targets; i++) rows[n_rows++] = r->targets[i];
    int ref_seeds = 0; /* the task phase's reference_seeds */
    for (int i = 0; i < r->n_phases; i++)
        if (r->phases[i].kind == XA_PHASE_TASK) ref_seeds = r->phases[i].reference_seeds;
    for (int s = 0; s < p->n_setups; s++) {
        xa_table_col(&tab, setup_label(p->setups[s]));
        xa_table_col(&tab_f1, setup_label(p->setups[s]));
    }
    for (int i = 0; i < n_rows && !st; i++) {
        char test[XA_PATH_MAX], rowname[40];
        st = xa_cfg_expand(test, sizeof test, r->task_test, rows[i]);
        if (st) break;
        snprintf(rowname, sizeof rowname, "%s%s", rows[i], i == 0 ? " (src)" : is_unseen(r, rows[i]) ? " (unseen)" : "");
        int row = xa_table_row(&tab, rowname);
        if (row < 0 || xa_table_row(&tab_f1, rowname) < 0) {
            st = xa_error_set(XA_STATUS_CONFIG, r->path, "fewer targets", NULL, "the results table is full");
            break;
        }
        if (access(test, F_OK) != 0) {
            fprintf(stderr, "eval: no test file %s; row %s left empty\n", test, rows[i]);
            continue;
        }
        for (int s = 0; s < p->n_setups && !st; s++) {
            double vals[XA_CFG_MAX_SEEDS], vals_f1[XA_CFG_MAX_SEEDS];
            int nv = 0;
            for (int k = 0; k < r->n_seeds && !st; k++) {
                eval_run e;
                const char *why = "";
                if (!build_eval(r, p->setups[s], rows[i], r->seeds[k], &e, &why)) {
                    /* expected gaps: the source has no in-language reference, and only the first
                     * reference_seeds seeds train one */
                    if (!strcmp(p->setups[s], "in_language") && (i == 0 || (ref_seeds && k >= ref_seeds))) continue;
                    fprintf(stderr, "eval: %s for %s seed %" PRIu64 " skipped: %s\n", p->setups[s], rows[i],
                            r->seeds[k], why);
                    continue;
                }
                xa_eval_metrics m;
                st = eval_task_cell(raw, &cb, &rb, r, p, rows[i], rowname, p->setups[s], r->seeds[k], &e, test, ec, &m);
                if (st) break;
                const double second = qa ? m.exact_match : m.macro_f1;
                vals_f1[nv] = second;
                vals[nv++] = m.primary;
                if (i > 0) { /* target rows: all, and their group */
                    int g = is_unseen(r, rows[i]) ? 2 : 1;
                    xa_seed_sums_add(&ss[0], s, k, m.primary);
                    xa_seed_sums_add(&ss_f1[0], s, k, second);
                    xa_seed_sums_add(&ss[g], s, k, m.primary);
                    xa_seed_sums_add(&ss_f1[g], s, k, second);
                }
            }
            set_cell(&tab, row, s, vals, nv);
            set_cell(&tab_f1, row, s, vals_f1, nv);
        }
    }
    fclose(raw);
    if (!st) st = book_close(&cb, out, r->task_name);
    else book_close(&cb, NULL, r->task_name);
    xa_report_set_free(&rb.old);
    if (st) {
        xa_report_set_free(&rb.now);
        return st;
    }
    add_target_mean(&tab, r, 1, ss, r->n_seeds);
    st = write_table(out, &tab, edir, fin, "results");
    if (!st && !tagging) {
        add_target_mean(&tab_f1, r, 1, ss_f1, r->n_seeds);
        st = write_table(out, &tab_f1, edir, fin, qa ? "results_exact_match" : "results_macro_f1");
    }
    if (!st) st = append_runs(edir, fin, pl);
    /* the per-class report and confusion matrices; MAD-X and Stack(src) in detail */
    static const char *const detail[] = {"madx", "src_stack", NULL};
    if (!st) st = xa_report_set_write(&rb.now, edir, r->task_name, detail);
    if (!st && !qa)
        fprintf(out, "per-class report: %s/per_class.{md,json,csv,jsonl}%s\n", fin,
                tagging ? "" : ", confusion.csv, confusion_<setup>.svg");
    xa_report_set_free(&rb.now);
    if (!st) st = xa_ckpt_swap_dir(edir, fin);
    return st;
}

/* ---- the run ------------------------------------------------------------------------------------ */

xa_status xa_pipeline_run(xa_plan *pl, const xa_plan_opts *o, FILE *out) {
    const xa_recipe *r = pl->r;
    char path[XA_PATH_MAX];
    xa_status st = xa_plan_check(pl);
    /* data-parallel runs: every rank has built its plan from the files as they are before rank 0
     * writes any */
    if (!st) st = xa_dist_barrier("xa_pipeline_run");
    /* resolved-<task>.yaml claims the settings of every output: not written while an output that
     * this command does not use was made from other settings (the next command using it says so) */
    int stale = 0;
    for (int i = 0; i < pl->n; i++) stale += pl->a[i].state == XA_ART_STALE;
    if (!st) st = xa_file_mkdirs(r->output);
    if (!st) st = xa_pipeline_resolved_path(r, path, sizeof path);
    if (!st && stale)
        XA_LOG_WARN("%s not rewritten: %d output%s made from other settings (see xadapt run --dry-run)", path, stale,
                    stale > 1 ? "s were" : " was");
    if (!st && !stale && xa_dist_rank() == 0) st = xa_recipe_write(r, path);
    if (st) return st;
    int ran = 0;
    for (int i = 0; i < r->n_phases && !st; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        if (o->only != XA_PHASE_N && p->kind != o->only) continue;
        ran++;
        /* the phase's products (the trainer sets its runs' too; evaluation runs under this) */
        const xa_precision prec = xa_gemm_set_precision(xa_pipeline_precision(p));
        if (prec == XA_PRECISION_BF16 && out) fprintf(out, "%s: bf16 products (%s)\n", xa_phase_kind_name(p->kind), xa_gemm_engine());
        switch (p->kind) {
        case XA_PHASE_PRETRAIN: st = phase_pretrain(out, r, p, pl); break;
        case XA_PHASE_LANG: st = phase_lang(out, r, p, o, pl); break;
        case XA_PHASE_TASK: st = phase_task(out, r, p, o, pl); break;
        case XA_PHASE_FUSION: st = phase_fusion(out, r, p, o, pl); break;
        case XA_PHASE_EVAL: /* evaluation runs on rank 0 of a data-parallel run */
            if (xa_dist_rank() == 0) st = phase_eval(out, r, p, pl);
            break;
        case XA_PHASE_FINETUNE: st = phase_finetune(out, r, p, o, pl); break;
        default: break;
        }
        xa_gemm_set_precision(XA_PRECISION_FP32);
    }
    if (!st && !ran && o->only == XA_PHASE_EVAL) { /* eval without an eval phase: the default setups */
        static xa_cfg_phase p; /* large (setup names): off the stack */
        memset(&p, 0, sizeof p);
        p.kind = XA_PHASE_EVAL;
        p.batch_size = 32;
        p.seq_len = 128;
        p.n_setups = 3;
        snprintf(p.setups[0], sizeof p.setups[0], "task_only");
        snprintf(p.setups[1], sizeof p.setups[1], "src_stack");
        snprintf(p.setups[2], sizeof p.setups[2], "madx");
        if (xa_dist_rank() == 0) st = phase_eval(out, r, &p, pl);
    }
    return st;
}
