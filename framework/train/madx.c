/* train/madx: the MAD-X phases on a frozen base (ADAPTERHUB.md §1.6, §2.1).
 *  - xa_train_lang: a language adapter (with its invertible adapter) trained with MLM, the base
 *    and its MLM head frozen: loss on the masked rows only, the inverse invertible adapter before
 *    the tied decoder, backward through the frozen layers down to the embedding site.
 *    Aligned language adapters (opts.align > 0): each step also draws align_pairs pairs of the
 *    adapter's language (data/pairs.c, a function of (seed, step)), embeds the English sides with
 *    the base and the frozen source adapter (evaluation mode, no backward: the representation
 *    the task adapter is trained on, Stack(lang:src)) and the other sides with the base and the
 *    trained adapter (its invertible adapter included), mean-pools the last layer and adds
 *    align x the symmetric in-batch contrastive loss (tensor/contrastive.c, as pretraining's
 *    alignment), so that the adapter learns its language without leaving the space the source
 *    adapter shares with it. Only the target side's gradient flows, into the adapter.
 *  - xa_train_task: a task adapter (or a fusion layer) and a head on a setup of frozen adapters,
 *    e.g. Stack(lang:src, task); dev evaluation at a cadence, the best weights kept, early
 *    stopping.
 *  - full fine-tuning (xa_train_task with spec.train_base): the standard zero-shot baseline the
 *    MAD-X paper compares with (Pfeiffer et al. 2020, XLM-R fine-tuned): no adapters, the whole
 *    encoder (embeddings included) and a fresh head train on the source task data with the same
 *    loop, dev selection and early stopping; the encoder's weight decay skips biases and
 *    LayerNorms as in pretraining (train/trainer.h), and the fine-tuned encoder is saved as a
 *    base directory.
 *  - xa_eval_setup: one setup on one test file (setup NULL: the plain encoder).
 * Both trainers run on the loop skeleton of train/trainer.c (this file supplies their setup, the
 * step, the dev evaluation and the outputs) and checkpoint to OUT/checkpoint (AdapterHub
 * directories + trainer_state.safetensors) through a .tmp directory swapped into place; they
 * resume bit-identically: the batches, masks, dropout and AdamW state of a resumed run are those
 * of an uninterrupted one.
 * Weight decay applies to each whole parameter group (one group per adapter, fusion and head) by
 * default (weight_decay_all, xadapt's behaviour before the key existed); with weight_decay_all
 * false their biases and LayerNorm weights are excluded by tensor name, as HF Trainer does (the
 * encoder's groups under full fine-tuning always exclude them).
 * Validation during training: the task phases score the dev set at their cadence (the metric of
 * metric_for_best_model selects the best weights); a language adapter can score held-out MLM
 * loss every eval_every steps (opts.heldout). Both write "eval" rows to metrics.jsonl. */
#include "train/train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compose/compose.h"
#include "data/data.h"
#include "eval/eval.h"
#include "heads/heads.h"
#include "hub/hub.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/evalcache.h"
#include "train/trainer.h"
#include "train/dist.h"
#include "tokenizer/tok.h"

/* metric_for_best_model (train.h): extend here; config.c lists the same names per task type. */
static const xa_best_metric g_best_metrics[] = {
    {"accuracy", 1u, 1, offsetof(xa_eval_metrics, accuracy)},
    {"macro_f1", 1u, 1, offsetof(xa_eval_metrics, macro_f1)},
    {"span_f1", 2u, 1, offsetof(xa_eval_metrics, f1)},
    {"f1", 4u, 1, offsetof(xa_eval_metrics, f1)},
    {"exact_match", 4u, 1, offsetof(xa_eval_metrics, exact_match)},
    {"loss", 7u, 0, offsetof(xa_eval_metrics, loss)},
};

const xa_best_metric *xa_best_metric_find(const char *name, int task_type) {
    if (!name || !name[0]) name = task_type == XA_BEST_FOR_TAGGING ? "span_f1" : task_type == XA_BEST_FOR_QA ? "f1" : "accuracy";
    for (size_t i = 0; i < sizeof g_best_metrics / sizeof *g_best_metrics; i++)
        if (!strcmp(g_best_metrics[i].name, name) && (g_best_metrics[i].task_types >> task_type) & 1u)
            return &g_best_metrics[i];
    return NULL;
}

/* The metric family of a spec (xa_best_metric_find). */
static int best_type(const xa_task_spec *spec) {
    return spec->tagging ? XA_BEST_FOR_TAGGING : spec->kind == XA_TASK_KIND_QA ? XA_BEST_FOR_QA : XA_BEST_FOR_CLASSIFICATION;
}

static double metric_value(const xa_best_metric *m, const xa_eval_metrics *em) {
    return *(const double *)((const char *)em + m->offset);
}

/* A JSON number (null when not finite) into buf[32]. */
static const char *jnum(char *buf, double v) {
    if (isfinite(v)) snprintf(buf, 32, "%.6f", v); else snprintf(buf, 32, "null");
    return buf;
}

xa_phase_opts xa_phase_opts_default(void) {
    xa_phase_opts o;
    memset(&o, 0, sizeof o);
    o.k = xa_train_knobs_default();
    o.B = 16;
    o.T = 128;
    o.steps = 1000;
    o.lr = 1e-4;
    o.warmup = -1;
    o.warmup_ratio = 0.06;
    o.weight_decay = 0.01;
    o.clip = 1.0;
    o.ckpt_every = 200;
    o.log_every = 10;
    o.mlm_prob = 0.15;
    o.seed = 42;
    return o;
}

/* ---- shared pieces ------------------------------------------------------------------------------ */

static int64_t warmup_steps(const xa_phase_opts *o, int64_t steps) {
    return o->warmup >= 0 ? o->warmup : (int64_t)(o->warmup_ratio * (double)steps);
}

/* Remove a directory this file owns (a checkpoint, best/, final/ or their .tmp): everything in it.
 * Only rank 0 of a data-parallel run touches the outputs. */
static void remove_tree(const char *dir) {
    if (xa_dist_rank() == 0 && xa_file_remove_tree(dir)) {
        XA_LOG_WARN("%s", xa_error_last()->what);
        xa_error_clear();
    }
}

/* The fingerprint of an MLM corpus as read (blocks of T ids) for a checkpoint's identity. */
static uint64_t mlm_fingerprint(const xa_mlm_data *d) {
    uint64_t h = xa_ckpt_hash(XA_FNV_INIT, &d->n_blocks, sizeof d->n_blocks);
    return xa_ckpt_hash(h, d->blocks, (size_t)d->n_blocks * (size_t)d->T * sizeof(int32_t));
}

/* The fingerprint of task data (ids and labels of every example). */
static uint64_t task_fingerprint(uint64_t h, const xa_task_data *d) {
    h = xa_ckpt_hash(h, &d->n, sizeof d->n);
    for (int i = 0; i < d->n; i++) {
        const xa_task_example *e = &d->ex[i];
        h = xa_ckpt_hash(h, e->ids, (size_t)e->len * sizeof(int32_t));
        if (e->tags) h = xa_ckpt_hash(h, e->tags, (size_t)e->len * sizeof(int32_t));
        h = xa_ckpt_hash(h, &e->label, sizeof e->label);
    }
    return h;
}

/* Copy the parameters of adapter `name` from an adapter directory into `into` (same config). */
static xa_status load_params_into(const xa_encoder_config *enc, const char *dir, xa_adapter *into) {
    xa_composer *tmp = NULL;
    xa_status st = xa_composer_init(&tmp, enc);
    xa_adapter *a = NULL;
    if (!st) st = xa_hub_load_adapter(tmp, dir, into->name, NULL, 0, 0, &a);
    if (!st && a->n_params != into->n_params)
        st = xa_error_set(XA_STATUS_SHAPE, dir, "the adapter of this run", "delete the checkpoint",
                          "checkpointed adapter has %zu parameters, this run %zu", a->n_params,
                          into->n_params);
    if (!st) memcpy(into->params, a->params, a->n_params * sizeof(float));
    xa_composer_free(tmp);
    return st;
}

/* ---- language adapters ---------------------------------------------------------------------------- */

/* A language-adapter run: the frozen base with its MLM head, the one trained adapter, the corpus. */
typedef struct lang_run {
    const xa_phase_opts *o;
    const char *base_dir;
    int T;
    xa_encoder *enc;
    xa_encoder_acts *acts;
    xa_mlm_head *head;
    xa_composer *cp;
    xa_hook hook;
    xa_adapter *ad;
    xa_mlm_data *data;
    xa_mlm_batch *batch;
    float *dlast;              /* (max(B, n_al), T, C) */
    /* the alignment term (n_al > 0) */
    int n_al, al_lang;         /* pairs per step; the language's index in pd */
    float al_weight, al_scale; /* align; 1 / align_temp */
    const xa_pair_data *pd;
    xa_composer *cp_src;       /* the frozen source adapter, planned for inference */
    xa_hook hook_src;
    xa_encoder_acts *acts_src; /* (n_al, T) rows, inference */
    int32_t *al_ids, *al_lens; /* (2 n_al, T), (2 n_al): English rows first */
    float *al_pooled, *al_dpooled; /* (2 n_al, C) */
    float *al_scratch;         /* xa_contrastive_scratch_bytes(n_al, C) */
    xa_align_window al_win;   /* the alignment term's window means */
    /* held-out MLM validation (o->heldout and eval_every > 0) */
    xa_mlm_data *hd;           /* the held-out text, or NULL */
    double val_loss;           /* of the last evaluation, NAN before the first */
    xa_trainer_micro micro;    /* the step's batch in grad_accum pieces */
} lang_run;

static xa_status lang_init(void *ctx, xa_train_state *ts) {
    lang_run *L = ctx;
    xa_rng init;
    xa_rng_seed(&init, L->o->seed, 11);
    xa_adapter_init_weights(L->ad, &init);
    xa_rng_seed(&ts->rng, L->o->seed, 12);
    return XA_STATUS_OK;
}

static xa_status lang_load(void *ctx, const char *dir) {
    lang_run *L = ctx;
    char p[XA_PATH_MAX];
    xa_status st = xa_path_join(p, sizeof p, dir, "adapter");
    return st ? st : load_params_into(&L->enc->cfg, p, L->ad);
}

static xa_status lang_seek(void *ctx, const char *path, xa_trainer *t) {
    lang_run *L = ctx;
    return xa_trainer_seek_mlm(&t->ts, L->data, path);
}

/* The alignment pass of one step, after the MLM pass (gradients add up in the adapter's):
 * n pairs of the language -> English rows through base + source adapter (no dropout, no
 * backward) and target rows through base + the trained adapter -> mean pool of the last layer ->
 * contrastive loss -> backward of the target side only, scaled by the weight. */
static xa_status lang_align_pass(lang_run *L, xa_trainer *t, xa_rng *rng, float *loss, float *acc) {
    const xa_encoder_config *ec = &L->enc->cfg;
    const int n = L->n_al, C = ec->C;
    const int T = xa_pair_align_batch_lang(L->pd, L->al_lang, t->ts.step, n, L->al_ids, L->al_lens, ec->pad_id, L->T);
    float *pooled_en = L->al_pooled, *pooled_x = L->al_pooled + (size_t)n * C; /* (n, C) each */
    float *dpooled_x = L->al_dpooled + (size_t)n * C;
    xa_batch be = {L->al_ids, NULL, L->al_lens, n, T};
    xa_composer_set_mode(L->cp_src, 0, NULL);
    xa_status st = xa_encoder_forward(L->enc, L->acts_src, &be, &L->hook_src, 0, NULL);
    if (st) return st;
    xa_mean_pool_forward(pooled_en, xa_encoder_hidden(L->enc, L->acts_src, ec->L - 1), L->al_lens, n, T, C);
    xa_batch bx = {L->al_ids + (size_t)n * T, NULL, L->al_lens + n, n, T};
    xa_composer_set_mode(L->cp, 1, rng);
    L->acts->row0 = 0; /* a batch of its own, not rows of the step's */
    if ((st = xa_encoder_forward(L->enc, L->acts, &bx, &L->hook, 1, rng))) return st;
    xa_mean_pool_forward(pooled_x, xa_encoder_hidden(L->enc, L->acts, ec->L - 1), L->al_lens + n, n, T, C);
    *loss = xa_contrastive_loss(NULL, dpooled_x, acc, L->al_scratch, pooled_en, pooled_x, n, C, L->al_scale);
    xa_scale(dpooled_x, L->al_weight, (size_t)n * C);
    memset(L->dlast, 0, (size_t)n * T * C * sizeof(float));
    xa_mean_pool_backward(L->dlast, dpooled_x, L->al_lens + n, n, T, C);
    xa_encoder_backward(L->enc, L->acts, &bx, &L->hook, L->dlast, NULL);
    return XA_STATUS_OK;
}

/* Hot loop: masked batch, drawn whole (its masks, so its masked count) -> per micro-batch
 * (grad_accum pieces of its rows) forward through the frozen base and the adapter -> MLM loss on
 * the piece's masked rows, weighted by its share of the batch's -> backward down to the lowest
 * adapter site; then the alignment pass, if any, once per step (AdapterDrop too: one draw a step). */
static xa_status lang_step(void *ctx, xa_trainer *t, float *loss, double *tokens) {
    lang_run *L = ctx;
    const xa_phase_opts *o = L->o;
    xa_mlm_data_next(L->data, L->batch);
    if (o->adapter_drop > 0) xa_composer_adapterdrop(L->cp, o->adapter_drop, &t->ts.rng);
    xa_status st = XA_STATUS_OK;
    const xa_encoder_config *ec = &L->enc->cfg;
    const int pieces = xa_trainer_micro_count(&L->micro, o->B), M = L->batch->m;
    int k0, k1; /* this rank's pieces */
    xa_trainer_micro_mine(&L->micro, o->B, &k0, &k1);
    xa_trainer_micro_begin(&L->micro, &t->ts.rng);
    double sum = 0;
    for (int k = k0; k < k1; k++) {
        xa_mlm_batch v;
        const int m = xa_trainer_micro_mlm(&L->micro, L->batch, L->T, k, &v);
        xa_batch b = {v.ids, NULL, v.lens, v.B, L->T};
        L->acts->row0 = k * L->micro.rows; /* the piece's rows of the batch's dropout masks */
        xa_rng *rng = xa_trainer_micro_rng(&L->micro, &t->ts.rng, k);
        xa_composer_set_mode(L->cp, 1, rng);
        if ((st = xa_mlm_head_reserve(L->head, m))) return st;
        if ((st = xa_encoder_forward(L->enc, L->acts, &b, &L->hook, 1, rng))) return st;
        *loss = xa_mlm_head_forward(L->head, xa_encoder_hidden(L->enc, L->acts, ec->L - 1), v.rows, v.targets, m,
                                    L->enc->t[XA_ENC_WTE], &L->hook, NULL);
        memset(L->dlast, 0, (size_t)v.B * L->T * ec->C * sizeof(float));
        xa_mlm_head_backward(L->head, L->dlast, NULL, L->enc->t[XA_ENC_WTE], &L->hook, M > 0 ? (float)m / (float)M : 1.0f);
        xa_encoder_backward(L->enc, L->acts, &b, &L->hook, L->dlast, NULL);
        sum += (double)*loss * m;
    }
    if (pieces > 1 && M > 0) *loss = (float)(sum / M); /* this rank's share of the batch's mean */
    if (L->n_al > 0 && k0 == 0) { /* once a step, on rank 0: on from where the batch's draws end */
        float al_loss = 0, al_acc = 0;
        if ((st = lang_align_pass(L, t, &t->ts.rng, &al_loss, &al_acc)))
            return st;
        xa_align_window_add(&L->al_win, al_loss, al_acc);
    }
    *tokens = (double)o->B * L->T;
    return XA_STATUS_OK;
}

static void lang_extra(void *ctx, const xa_trainer *t, char *buf, size_t n) {
    const lang_run *L = ctx;
    (void)t;
    if (L->n_al > 0) xa_align_window_extra(&L->al_win, buf, n);
}

/* Held-out MLM validation at its cadence (an "eval" row), with the adapter in evaluation mode and
 * every layer active; the next step sets the training mode again. */
static xa_status lang_validate(lang_run *L, xa_trainer *t) {
    const xa_phase_opts *o = L->o;
    if (!L->hd || o->eval_every <= 0 || (t->ts.step % o->eval_every && t->ts.step != o->steps)) return XA_STATUS_OK;
    if (!t->writer) return XA_STATUS_OK; /* rank 0 validates (it draws no random numbers) */
    int64_t n = 0;
    double sum = 0;
    xa_composer_skip_lowest(L->cp, 0);
    xa_composer_set_mode(L->cp, 0, NULL);
    xa_status st = xa_trainer_mlm_heldout(L->enc, L->acts, L->head, &L->hook, L->hd, L->batch, &L->micro,
                                          o->eval_batches > 0 ? o->eval_batches : 8, &n, &sum);
    if (st) return st;
    L->val_loss = n ? sum / (double)n : NAN;
    char extra[64];
    snprintf(extra, sizeof extra, "\"n_masked\": %" PRId64, n);
    xa_trainer_log_eval(t, "heldout", "mlm_loss", L->val_loss, extra);
    return XA_STATUS_OK;
}

/* After a written metrics window the alignment means start again; the progress line shows the
 * last window's alignment loss, and the last held-out loss once there is one. */
static xa_status lang_after(void *ctx, xa_trainer *t, float loss, double lr, char *line, size_t n) {
    lang_run *L = ctx;
    xa_status st = lang_validate(L, t);
    if (st) return st;
    if (L->n_al > 0) xa_align_window_after(&L->al_win, t, loss, lr, line, n);
    if (!isnan(L->val_loss)) {
        size_t k = strlen(line);
        snprintf(line + k, n - k, " | val %.4f", L->val_loss);
    }
    return XA_STATUS_OK;
}

static void lang_position(void *ctx, xa_train_state *ts) {
    lang_run *L = ctx;
    xa_trainer_position_mlm(ts, L->data);
}

static xa_status lang_save(void *ctx, const char *dir) {
    lang_run *L = ctx;
    char p[XA_PATH_MAX];
    xa_status st = xa_path_join(p, sizeof p, dir, "adapter");
    return st ? st : xa_hub_save_adapter(p, L->ad, &L->enc->cfg, L->base_dir);
}

static const xa_trainer_ops g_lang_ops = {lang_init, lang_load, lang_seek, lang_step, lang_extra, lang_after,
                                          lang_position, lang_save};

/* The alignment term's pieces (o->align > 0): the pairs of language `name`, the frozen source
 * adapter in its own composer (inference plan) and activations, the batch and pooling buffers.
 * Appends the checkpoint identity's alignment items (the pairs as read, the source adapter's
 * weights) to id. */
static xa_status align_open(lang_run *L, xa_tok *tok, xa_pair_data *pd, xa_encoder_acts *acts_src, const char *name,
                            char *id, size_t id_n) {
    const xa_phase_opts *o = L->o;
    const xa_encoder_config *ec = &L->enc->cfg;
    const int n = o->align_pairs > 0 ? o->align_pairs : (o->B + 1) / 2;
    if (!o->align_pairs_path || !o->align_pairs_path[0] || !o->align_src_dir)
        return xa_error_set(XA_STATUS_USAGE, "xa_train_lang", "align_pairs_path and align_src_dir with align > 0",
                            "set data.lang_pairs (or data.pairs), or align to 0", "align %g without pairs", o->align);
    if (n > XA_PAIR_MAX_BATCH / 2 || L->T < 6)
        return xa_error_set(XA_STATUS_USAGE, "xa_train_lang", "align_pairs <= 512 and seq_len >= 6", NULL,
                            "align_pairs %d, seq_len %d", n, L->T);
    /* sides of at most T/2 pieces, as the base's alignment in pretraining */
    xa_status st = xa_pair_data_load(pd, tok, o->align_pairs_path, L->T / 2, 0.3, o->seed);
    if (st) return st;
    const int li = xa_pair_data_lang(pd, name);
    if (li < 0)
        return xa_error_set(XA_STATUS_CONFIG, o->align_pairs_path, "aligned pairs of the adapter's language",
                            "data.lang_pairs must hold LANG<TAB>en<TAB>text rows of every aligned target "
                            "(prepare.py writes lang-pairs.tsv)", "no pair of language '%s'", name);
    if (pd->lang_count[li] < n)
        XA_LOG_WARN("lang %s: %lld pairs for %d per step: some in-batch negatives repeat", name,
                    (long long)pd->lang_count[li], n);
    char cfg_path[XA_PATH_MAX];
    st = xa_path_join(cfg_path, sizeof cfg_path, o->align_src_dir, "adapter_config.json");
    if (st) return st;
    if (access(cfg_path, F_OK) != 0)
        return xa_error_set(XA_STATUS_CONFIG, o->align_src_dir, "the finished source language adapter",
                            "the lang phase trains the source adapter first; train it (--lang SRC) before "
                            "an aligned target", "no adapter_config.json: the source adapter is missing");
    xa_adapter *src = NULL;
    st = xa_composer_init(&L->cp_src, ec);
    if (!st) st = xa_hub_load_adapter(L->cp_src, o->align_src_dir, NULL, NULL, 0, 0, &src);
    xa_setup *setup = NULL;
    if (!st && !(setup = xa_setup_single(src->name))) st = XA_STATUS_NOMEM;
    if (!st) st = xa_composer_activate(L->cp_src, setup, src->name);
    xa_setup_free(setup);
    if (!st) st = xa_composer_plan(L->cp_src, n, L->T, n * L->T, 0);
    if (!st) st = xa_encoder_acts_init(acts_src, ec, n, L->T, 0);
    if (st) return st;
    xa_composer_hook(L->cp_src, &L->hook_src);
    L->al_ids = malloc((size_t)2 * n * L->T * sizeof *L->al_ids);
    L->al_lens = malloc((size_t)2 * n * sizeof *L->al_lens);
    L->al_pooled = malloc((size_t)2 * n * ec->C * sizeof *L->al_pooled);
    L->al_dpooled = malloc((size_t)2 * n * ec->C * sizeof *L->al_dpooled);
    L->al_scratch = xa_aligned_alloc(xa_contrastive_scratch_bytes(n, ec->C), 64);
    if (!L->al_ids || !L->al_lens || !L->al_pooled || !L->al_dpooled || !L->al_scratch)
        return xa_error_set(XA_STATUS_NOMEM, "xa_train_lang", NULL, NULL, "out of memory");
    L->n_al = n;
    L->al_lang = li;
    L->al_weight = (float)o->align;
    L->al_scale = (float)(1.0 / (o->align_temp > 0 ? o->align_temp : 0.05));
    L->pd = pd;
    L->acts_src = acts_src;
    /* the pairs as read (ids of the language's pairs) and the source adapter's weights */
    uint64_t h = XA_FNV_INIT;
    for (int64_t k = 0; k < pd->lang_count[li]; k++) {
        const xa_pair *q = &pd->pairs[pd->by_lang[pd->lang_start[li] + k]];
        for (int sd = 0; sd < 2; sd++) h = xa_ckpt_hash(h, pd->pool + q->off[sd], (size_t)q->len[sd] * sizeof(int32_t));
    }
    const uint64_t hs = xa_ckpt_hash(XA_FNV_INIT, src->params, src->n_params * sizeof(float));
    const size_t k = strlen(id);
    snprintf(id + k, id_n - k, " align=%g align_pairs=%d align_temp=%g pairs=%" PRId64 ":%016" PRIx64 " src=%016" PRIx64,
             o->align, n, 1.0 / L->al_scale, pd->lang_count[li], h, hs);
    XA_LOG_INFO("lang %s: aligned to %s on %lld pairs of %s (align %g x %d pairs, temp %g)", name, src->name,
                (long long)pd->lang_count[li], o->align_pairs_path, o->align, n, 1.0 / L->al_scale);
    return XA_STATUS_OK;
}

static void align_close(lang_run *L) {
    xa_composer_free(L->cp_src);
    free(L->al_ids);
    free(L->al_lens);
    free(L->al_pooled);
    free(L->al_dpooled);
    xa_aligned_free(L->al_scratch);
}

/* The trainer options of a phase. */
static xa_trainer_opts trainer_opts(const xa_phase_opts *o, const char *label, const char *phase, const char *out_dir,
                                    const char *identity, int64_t steps) {
    xa_trainer_opts t = {label, out_dir, NULL, identity, steps, warmup_steps(o, steps), o->lr, o->clip,
                         o->ckpt_every, o->log_every > 0 ? o->log_every : 10, o->stop_after, o->resume, o->progress,
                         phase, &o->k};
    return t;
}

/* The held-out text of a language adapter's validation (opts.heldout), blocks of T; a text too
 * short for one block is a warning and no validation. */
static xa_status open_heldout(const xa_phase_opts *o, xa_tok *tok, int T, xa_mlm_data *hd, xa_mlm_data **out) {
    *out = NULL;
    if (!o->heldout || !o->heldout[0] || o->eval_every <= 0) return XA_STATUS_OK;
    xa_status st = xa_mlm_data_load(hd, tok, o->heldout, T, o->seed, 0);
    if (st == XA_STATUS_USAGE || st == XA_STATUS_NOT_FOUND) {
        XA_LOG_WARN("no held-out validation: %s", xa_error_last()->what);
        xa_error_clear();
        return XA_STATUS_OK;
    }
    if (st) return st;
    hd->mask_prob = (float)o->mlm_prob;
    if (o->whole_word && (st = xa_mlm_data_set_whole_word(hd, tok))) return st;
    *out = hd;
    return XA_STATUS_OK;
}

xa_status xa_train_lang(const char *base_dir, const char *tokenizer, const char *out_dir,
                        const char *name, const xa_bn_config *cfg, const char *corpus,
                        const xa_phase_opts *o, xa_phase_result *res) {
    xa_tok *tok = NULL;
    xa_mlm_data data;
    xa_mlm_batch batch;
    xa_encoder enc;
    xa_mlm_head head;
    xa_encoder_acts acts;
    xa_optim opt;
    xa_composer *cp = NULL;
    xa_trainer tr;
    float *dlast = NULL;
    char identity[768];
    lang_run L;
    xa_pair_data pd;
    xa_encoder_acts acts_src;
    xa_mlm_data hd;
    memset(&hd, 0, sizeof hd);
    memset(&L, 0, sizeof L);
    memset(&pd, 0, sizeof pd);
    memset(&acts_src, 0, sizeof acts_src);
    memset(&data, 0, sizeof data);
    memset(&batch, 0, sizeof batch);
    memset(&enc, 0, sizeof enc);
    memset(&head, 0, sizeof head);
    memset(&acts, 0, sizeof acts);
    memset(&opt, 0, sizeof opt);
    memset(&tr, 0, sizeof tr);
    memset(res, 0, sizeof *res);
    res->best_dev = -1;

    xa_status st = xa_eval_base_open(&tok, &enc, base_dir, tokenizer);
    if (st) goto done;
    xa_trainer_apply_dropout(&enc.cfg, &o->k);
    const xa_encoder_config *ec = &enc.cfg;
    int T = o->T;
    if (ec->arch == XA_ARCH_XLMR && T > ec->P - ec->pad_id - 1) T = ec->P - ec->pad_id - 1;
    st = xa_mlm_data_load(&data, tok, corpus, T, o->seed, o->max_docs);
    if (!st) {
        data.mask_prob = (float)o->mlm_prob;
        if (o->whole_word) st = xa_mlm_data_set_whole_word(&data, tok);
    }
    /* activations for one micro-batch of the step's batch (grad_accum) */
    if (!st) st = xa_trainer_micro_init(&L.micro, o->B, o->k.grad_accum, T, 1, "xa_train_lang");
    if (!st) st = xa_mlm_batch_init(&batch, o->B, T);
    /* the head's buffers for the masked rows of a micro-batch, not its every position */
    if (!st) st = xa_mlm_head_init(&head, ec->C, ec->V, ec->eps, xa_mlm_rows_bound((int64_t)L.micro.rows * T, data.mask_prob), 0);
    if (!st) st = xa_mlm_head_load(&head, ec->arch, base_dir);
    if (!st) st = xa_mlm_head_set_packed(&head, 1); /* frozen in this phase */
    /* with alignment the trained side's n pairs run as one more batch: rows for max(B, n) */
    const int n_al = o->align > 0 ? (o->align_pairs > 0 ? o->align_pairs : (o->B + 1) / 2) : 0;
    const int rows = L.micro.rows > n_al ? L.micro.rows : n_al;
    if (!st) st = xa_encoder_acts_init(&acts, ec, rows, T, xa_trainer_acts_mode(&o->k));
    if (!st) st = xa_composer_init(&cp, ec);
    xa_adapter *ad = NULL;
    if (!st) st = xa_composer_add_adapter(cp, name, cfg, 1, &ad);
    xa_setup *setup = NULL;
    if (!st) setup = xa_setup_single(name);
    if (!st && !setup) st = XA_STATUS_NOMEM;
    if (!st) st = xa_composer_activate(cp, setup, name);
    xa_setup_free(setup);
    if (!st) st = xa_composer_plan(cp, rows, T, rows * T, xa_trainer_compose_mode(&o->k));
    if (!st) st = xa_trainer_optim_init(&opt, &o->k);
    if (!st) st = xa_optim_add_group(&opt, name, ad->params, ad->grads, ad->n_params, 1.0, o->weight_decay, 1, NULL);
    if (!st && !o->k.weight_decay_all) st = xa_trainer_no_decay_adapter(&opt, name, ad);
    if (!st) st = open_heldout(o, tok, T, &hd, &L.hd);
    if (st) goto done;
    dlast = xa_aligned_alloc((size_t)rows * T * ec->C * sizeof(float), 64);
    if (!dlast) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_train_lang", NULL, NULL, "out of memory");
        goto done;
    }
    L.o = o;
    L.base_dir = base_dir;
    L.T = T;
    L.enc = &enc;
    L.acts = &acts;
    L.head = &head;
    L.cp = cp;
    L.ad = ad;
    L.data = &data;
    L.batch = &batch;
    L.dlast = dlast;
    L.val_loss = NAN;
    xa_composer_hook(cp, &L.hook);
    snprintf(identity, sizeof identity, "lang %s B=%d T=%d steps=%" PRId64 " seed=%" PRIu64 " lr=%g data=%" PRId64
             ":%016" PRIx64, name, o->B, T, o->steps, o->seed, o->lr, data.n_blocks, mlm_fingerprint(&data));
    xa_trainer_identity_knobs(identity, sizeof identity, &o->k);
    if (n_al > 0 && (st = align_open(&L, tok, &pd, &acts_src, name, identity, sizeof identity))) goto done;
    char label[96];
    snprintf(label, sizeof label, "lang %s", name);
    const xa_trainer_opts to = trainer_opts(o, label, "lang", out_dir, identity, o->steps);
    st = xa_trainer_run(&tr, &to, &opt, &g_lang_ops, &L);
    if (st) goto done;
    xa_composer_skip_lowest(cp, 0);
    res->first_loss = tr.log.first;
    res->last_loss = tr.log.last;
    res->steps_done = tr.ts.step;
    res->last_align_loss = L.al_win.last_loss;
    res->last_align_acc = L.al_win.last_acc;
    res->seconds = tr.seconds;
    res->tokens_per_s = res->seconds > 0 ? tr.tokens / res->seconds : 0;
    if (tr.ts.step == o->steps) {
        /* The adapter directory: weights, then adapter_config.json (the completion marker). */
        if (xa_dist_rank() == 0) st = xa_hub_save_adapter(out_dir, ad, ec, base_dir);
        res->finished = !st;
    }
    if (!st) st = xa_dist_barrier("xa_train_lang"); /* the adapter is on disk before any rank goes on */
done:
    xa_trainer_close(&tr);
    xa_mlm_data_free(&hd);
    xa_trainer_micro_free(&L.micro);
    align_close(&L);
    xa_encoder_acts_free(&acts_src);
    xa_pair_data_free(&pd);
    xa_aligned_free(dlast);
    xa_optim_free(&opt);
    xa_composer_free(cp);
    xa_encoder_acts_free(&acts);
    xa_mlm_head_free(&head);
    xa_encoder_free(&enc);
    xa_mlm_batch_free(&batch);
    xa_mlm_data_free(&data);
    xa_tok_free(tok);
    return st;
}

/* ---- held-out MLM -------------------------------------------------------------------------------- */

xa_status xa_eval_mlm(const char *base_dir, const char *tokenizer, const char *adapter_dir, const char *text,
                      int B, int T, uint64_t seed, int64_t max_batches, xa_mlm_metrics *out) {
    return xa_eval_mlm_cached(NULL, base_dir, tokenizer, adapter_dir, text, B, T, seed, max_batches, out);
}

xa_status xa_eval_mlm_cached(xa_eval_cache *cache, const char *base_dir, const char *tokenizer,
                             const char *adapter_dir, const char *text, int B, int T, uint64_t seed,
                             int64_t max_batches, xa_mlm_metrics *out) {
    /* what this call owns (without a cache hit: everything) and what it uses */
    xa_tok *own_tok = NULL;
    xa_encoder own_enc;
    xa_mlm_head own_head;
    xa_mlm_data own_data;
    xa_tok *tok = NULL;
    const xa_encoder *enc = &own_enc;
    xa_mlm_head *head = &own_head;
    xa_mlm_data *data = &own_data;
    xa_mlm_batch batch;
    xa_encoder_acts acts;
    xa_composer *cp = NULL;
    float *logits = NULL;
    int hit = 0;
    memset(&own_data, 0, sizeof own_data);
    memset(&batch, 0, sizeof batch);
    memset(&own_enc, 0, sizeof own_enc);
    memset(&own_head, 0, sizeof own_head);
    memset(&acts, 0, sizeof acts);
    memset(out, 0, sizeof *out);
    if (B < 1 || T < 4)
        return xa_error_set(XA_STATUS_USAGE, "xa_eval_mlm", "B >= 1, T >= 4", NULL, "B %d, T %d", B, T);

    xa_status st = xa_eval_cache_base(cache, base_dir, tokenizer, &tok, &enc, &hit);
    if (!st && !hit) {
        enc = &own_enc;
        st = xa_eval_base_open(&own_tok, &own_enc, base_dir, tokenizer);
        tok = own_tok;
    }
    if (st) goto done;
    const xa_encoder_config *ec = &enc->cfg;
    if (ec->arch == XA_ARCH_XLMR && T > ec->P - ec->pad_id - 1) T = ec->P - ec->pad_id - 1;
    if (hit) st = xa_eval_cache_mlm_data(cache, tok, text, T, seed, &data);
    else st = xa_mlm_data_load(&own_data, tok, text, T, seed, 0);
    if (!st) st = xa_mlm_batch_init(&batch, B, T);
    const int M = st ? 1 : xa_mlm_rows_bound((int64_t)B * T, data->mask_prob); /* masked rows, not B*T */
    if (!st && hit) st = xa_eval_cache_mlm_head(cache, M, &head);
    if (!st && !hit) st = xa_mlm_head_init(&own_head, ec->C, ec->V, ec->eps, M, 0);
    if (!st && !hit) st = xa_mlm_head_load(&own_head, ec->arch, base_dir);
    if (!st && !hit) st = xa_mlm_head_set_packed(&own_head, 1);
    if (!st) st = xa_encoder_acts_init(&acts, ec, B, T, 0);
    if (!st) st = xa_composer_init(&cp, ec);
    xa_adapter *ad = NULL;
    if (!st && adapter_dir) st = xa_hub_load_adapter(cp, adapter_dir, NULL, NULL, 0, 0, &ad);
    if (!st && ad) {
        xa_setup *setup = xa_setup_single(ad->name);
        if (!setup) st = XA_STATUS_NOMEM;
        if (!st) st = xa_composer_activate(cp, setup, ad->name);
        xa_setup_free(setup);
    }
    if (!st && ad) st = xa_composer_plan(cp, B, T, B * T, 0);
    if (st) goto done;
    int logits_rows = 0; /* (logits_rows, V): the head's planned rows, grown with it */
    xa_hook hook;
    if (ad) {
        xa_composer_hook(cp, &hook);
        xa_composer_set_mode(cp, 0, NULL);
    }
    int64_t n_batches = data->n_blocks / B > 0 ? data->n_blocks / B : 1;
    if (max_batches > 0 && n_batches > max_batches) n_batches = max_batches;
    double loss_sum = 0;
    int64_t hits = 0, n = 0;
    xa_batch b = {batch.ids, NULL, batch.lens, B, T};
    for (int64_t i = 0; i < n_batches; i++) {
        xa_mlm_data_next(data, &batch);
        if (batch.m == 0) continue;
        if ((st = xa_mlm_head_reserve(head, batch.m))) goto done;
        if (head->M > logits_rows) {
            xa_aligned_free(logits);
            logits_rows = head->M;
            logits = xa_aligned_alloc((size_t)logits_rows * ec->V * sizeof(float), 64);
            if (!logits) {
                st = xa_error_set(XA_STATUS_NOMEM, "xa_eval_mlm", NULL, "lower the batch size", "out of memory");
                goto done;
            }
        }
        st = xa_encoder_forward(enc, &acts, &b, ad ? &hook : NULL, 0, NULL);
        if (st) goto done;
        float loss = xa_mlm_head_forward(head, xa_encoder_hidden(enc, &acts, ec->L - 1), batch.rows, batch.targets,
                                         batch.m, enc->t[XA_ENC_WTE], ad ? &hook : NULL, logits);
        loss_sum += (double)loss * batch.m;
        for (int r = 0; r < batch.m; r++) {
            const float *z = logits + (size_t)r * ec->V;
            int best = 0;
            for (int v = 1; v < ec->V; v++)
                if (z[v] > z[best]) best = v;
            hits += best == batch.targets[r];
        }
        n += batch.m;
    }
    out->n_masked = n;
    out->loss = n ? loss_sum / (double)n : NAN;
    out->accuracy = n ? (double)hits / (double)n : NAN;
done:
    xa_aligned_free(logits);
    xa_composer_free(cp);
    xa_encoder_acts_free(&acts);
    xa_mlm_head_free(&own_head);
    xa_encoder_free(&own_enc);
    xa_mlm_batch_free(&batch);
    xa_mlm_data_free(&own_data);
    xa_tok_free(own_tok);
    return st;
}

/* ---- task adapters and fusion ---------------------------------------------------------------------- */

/* A loaded model for task training or evaluation: base, composer, head, tokenizer. */
typedef struct task_model {
    xa_tok *tok;
    const char *tokenizer;     /* its path */
    xa_encoder enc;            /* frozen, or trainable under full fine-tuning */
    xa_composer *cp;
    xa_head head;
    xa_encoder_acts acts;
    xa_hook hook;
    const xa_hook *hk;         /* &hook, or NULL for the plain encoder (no setup) */
    xa_mlm_head mlm;           /* full fine-tuning: the base's MLM head, saved unchanged beside the
                                  fine-tuned encoder (has_mlm: the base has one) */
    int has_mlm;
    xa_labels labels;
    int tagging;
    int n_choices;             /* multiple choice: rows per example; 1 otherwise */
    int B, T;                  /* planned encoder rows (examples x n_choices) and length */
    int qa;                    /* a question-answering head: windows, spans, EM / F1 */
    int max_answer_length, n_best_size; /* QA scoring (30, 20) */
    int version_2_with_negative;        /* QA scoring: SQuAD 2.0's null answer */
    double null_score_diff_threshold;
    int borrowed;              /* tok and enc are an eval cache's (read only): not freed here */
} task_model;

/* The data-loading description of a spec (or of an eval input) for model m. */
static xa_task_input task_input_of(const task_model *m, xa_task_kind kind, const xa_task_fields *fields,
                                   const char *const *names, int n_names, int doc_stride) {
    xa_task_input in = {kind, XA_TASK_FORMAT_AUTO, fields, names, n_names, 0, doc_stride};
    in.bert_pairs = m->enc.cfg.arch == XA_ARCH_BERT && m->enc.cfg.TV >= 2;
    return in;
}

static void task_model_free(task_model *m) {
    xa_mlm_head_free(&m->mlm);
    xa_encoder_acts_free(&m->acts);
    xa_head_free(&m->head);
    xa_composer_free(m->cp);
    if (!m->borrowed) {
        xa_encoder_free(&m->enc);
        xa_tok_free(m->tok);
    }
    memset(m, 0, sizeof *m);
}

static xa_status task_model_open(task_model *m, const char *base_dir, const char *tokenizer) {
    memset(m, 0, sizeof *m);
    m->tokenizer = tokenizer;
    xa_status st = xa_eval_base_open(&m->tok, &m->enc, base_dir, tokenizer);
    if (!st) st = xa_composer_init(&m->cp, &m->enc.cfg);
    return st;
}

/* task_model_open on the eval cache's base when it is this one (m->enc is then a copy of the
 * cache's encoder struct: the same weights, read only, never freed here); else a base of its own. */
static xa_status task_model_open_cached(task_model *m, xa_eval_cache *c, const char *base_dir, const char *tokenizer) {
    xa_tok *tok = NULL;
    const xa_encoder *enc = NULL;
    int hit = 0;
    memset(m, 0, sizeof *m);
    xa_status st = xa_eval_cache_base(c, base_dir, tokenizer, &tok, &enc, &hit);
    if (st) return st;
    if (!hit) return task_model_open(m, base_dir, tokenizer);
    m->tokenizer = tokenizer;
    m->tok = tok;
    m->enc = *enc;
    m->borrowed = 1;
    return xa_composer_init(&m->cp, &m->enc.cfg);
}

static int max_len(const task_model *m, int T) {
    const xa_encoder_config *c = &m->enc.cfg;
    int lim = c->arch == XA_ARCH_XLMR ? c->P - c->pad_id - 1 : c->P;
    return T < lim ? T : lim;
}

/* Activate the setup and plan for (B, T); setup_text NULL: the plain encoder, no hook. train is
 * an activation mode (model.h: XA_ACTS_INFER, _TRAIN, _RECOMPUTE). */
static xa_status task_model_plan(task_model *m, const char *setup_text, int B, int T, int train) {
    xa_status st = XA_STATUS_OK;
    m->B = B;
    m->T = T;
    m->hk = NULL;
    if (setup_text) {
        xa_setup *s = NULL;
        st = xa_setup_parse(&s, setup_text, "setup");
        if (!st) st = xa_composer_activate(m->cp, s, setup_text);
        xa_setup_free(s);
        if (!st) st = xa_composer_plan(m->cp, B, T, 0, train == XA_ACTS_RECOMPUTE ? XA_COMPOSE_RECOMPUTE : train);
        xa_composer_hook(m->cp, &m->hook);
        m->hk = &m->hook;
    }
    if (!st) st = xa_encoder_acts_init(&m->acts, &m->enc.cfg, B, T, train);
    return st;
}

/* Forward a batch (dropout with rng when train, its masks at encoder rows [row0, row0 + B) of
 * the step's batch) and the head; returns the loss. */
static float task_forward(task_model *m, const xa_task_batch *tb, int row0, int train, xa_rng *rng,
                          float *logits, xa_status *st) {
    xa_batch b = {tb->ids, tb->has_types ? tb->types : NULL, tb->lens, tb->B, tb->T};
    m->acts.row0 = row0;
    m->head.row0 = row0;
    if (m->hk) xa_composer_set_mode(m->cp, train, rng);
    *st = xa_encoder_forward(&m->enc, &m->acts, &b, m->hk, train, rng);
    if (*st) return 0;
    const float *hidden = xa_encoder_hidden(&m->enc, &m->acts, m->enc.cfg.L - 1);
    if (m->qa) /* the softmax over each window's own tokens */
        return xa_head_forward_qa(&m->head, hidden, tb->labels, tb->lens, tb->B, tb->T, logits, train, rng);
    return xa_head_forward(&m->head, hidden, tb->labels, tb->B, tb->T, logits, train, rng);
}

static int argmax(const float *x, int n) {
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k]) k = i;
    return k;
}

/* Question answering: every window's start / end logits, then per question the best span
 * (eval/squad.c) against its gold answers: mean exact match and F1 over the questions, the mean
 * loss over the windows. pred (NULL: not wanted) gets each question's answer text, malloc'ed. */
static xa_status qa_score(task_model *m, const xa_task_data *d, xa_eval_metrics *out, char **pred) {
    xa_task_batcher bt;
    xa_task_batch tb;
    memset(&tb, 0, sizeof tb);
    size_t total = 0;
    size_t *at = malloc((size_t)d->n * sizeof *at); /* (n) offset of each window's logits */
    for (int i = 0; at && i < d->n; i++) {
        at[i] = total;
        total += 2 * (size_t)d->ex[i].len;
    }
    float *all = malloc((total ? total : 1) * sizeof *all);           /* (sum len, 2) */
    float *logits = malloc((size_t)m->B * m->T * 2 * sizeof *logits); /* (B, T, 2) */
    xa_qa_window *w = malloc((size_t)d->n * sizeof *w);
    xa_status st = (!at || !all || !logits || !w) ? xa_error_set(XA_STATUS_NOMEM, "task_score", NULL, NULL, "out of memory")
                                                  : XA_STATUS_OK;
    const int32_t pad = xa_tok_special_ids(m->tok).pad;
    if (!st) st = xa_task_batcher_init(&bt, d, m->B, 0, 0, pad);
    int bt_open = !st;
    if (!st) st = xa_task_batch_init(&tb, m->B, m->T);
    double loss_sum = 0;
    while (!st && xa_task_batcher_next(&bt, &tb)) {
        const float loss = task_forward(m, &tb, 0, 0, NULL, logits, &st);
        if (st) break;
        loss_sum += (double)loss * tb.n_ex;
        for (int r = 0; r < tb.n_ex; r++) {
            const xa_task_example *e = &d->ex[tb.index[r]];
            memcpy(all + at[tb.index[r]], logits + (size_t)r * tb.T * 2, 2 * (size_t)e->len * sizeof *all);
        }
    }
    double em_sum = 0, f1_sum = 0;
    for (int q = 0; !st && q < d->n_qa; q++) {
        const xa_qa_example *ex = &d->qa[q];
        for (int f = 0; f < ex->n_features; f++) {
            const xa_task_example *e = &d->ex[ex->first_feature + f];
            w[f] = (xa_qa_window){all + at[ex->first_feature + f], e->offsets, e->len};
        }
        int32_t b = 0, en = 0;
        const xa_qa_post pp = {m->n_best_size, m->max_answer_length, m->version_2_with_negative,
                               m->null_score_diff_threshold};
        const xa_qa_answer a = xa_qa_postprocess(w, ex->n_features, &pp, &b, &en, NULL);
        /* HF answers "empty" when no span counts, "" for SQuAD 2.0's null answer */
        const char *lit = a == XA_QA_ANSWER_NULL ? "" : "empty";
        const size_t tn = a == XA_QA_ANSWER_SPAN ? (size_t)(en - b) : strlen(lit);
        char *text = malloc(tn + 1);
        if (!text) {
            st = xa_error_set(XA_STATUS_NOMEM, "task_score", NULL, NULL, "out of memory");
            break;
        }
        memcpy(text, a == XA_QA_ANSWER_SPAN ? ex->context + b : lit, tn);
        text[tn] = '\0';
        double em = 0, f1 = 0;
        /* SQuAD 2.0: the official v2 script's scoring; v1.1's otherwise */
        st = (m->version_2_with_negative ? xa_squad_score_v2 : xa_squad_score)(
            &em, &f1, text, (const char *const *)ex->answers, ex->n_answers);
        em_sum += em;
        f1_sum += f1;
        if (pred) pred[q] = text;
        else free(text);
    }
    if (!st) {
        out->n = d->n_qa;
        out->loss = d->n ? loss_sum / d->n : NAN;
        out->exact_match = d->n_qa ? em_sum / d->n_qa : NAN;
        out->f1 = d->n_qa ? f1_sum / d->n_qa : NAN;
        out->primary = out->f1;
        out->accuracy = out->macro_f1 = out->precision = out->recall = NAN;
    }
    if (bt_open) xa_task_batcher_free(&bt);
    xa_task_batch_free(&tb);
    free(w);
    free(logits);
    free(all);
    free(at);
    return st;
}

/* Score a data set with the current weights (dropout off); with rep (may be NULL), also the
 * per-class counts (classification: the confusion matrix; tagging: spans per entity type;
 * question answering: none, an empty report). */
static xa_status task_score(task_model *m, const xa_task_data *d, xa_eval_metrics *out, xa_class_report *rep) {
    memset(out, 0, sizeof *out);
    out->exact_match = NAN;
    if (m->qa) {
        xa_status st = rep ? xa_class_report_init(rep, 0, NULL, 0) : XA_STATUS_OK;
        return st ? st : qa_score(m, d, out, NULL);
    }
    xa_task_batcher bt;
    xa_task_batch tb;
    memset(&tb, 0, sizeof tb);
    const int K = m->head.K;
    /* examples a batch holds: the planned rows over the rows per example */
    const int B_ex = m->B / (m->n_choices > 0 ? m->n_choices : 1);
    float *logits = malloc((size_t)m->B * m->T * K * sizeof(float));
    int32_t *gold = malloc((size_t)(d->n ? d->n : 1) * sizeof(int32_t));
    int32_t *pred = malloc((size_t)(d->n ? d->n : 1) * sizeof(int32_t));
    xa_status st = (!logits || !gold || !pred) ? xa_error_set(XA_STATUS_NOMEM, "task_score", NULL, NULL, "out of memory")
                                               : XA_STATUS_OK;
    int32_t pad = xa_tok_special_ids(m->tok).pad;
    if (!st) st = xa_task_batcher_init(&bt, d, B_ex, 0, 0, pad);
    if (!st) st = xa_task_batch_init(&tb, m->B, m->T);
    if (!st && rep) st = xa_class_report_init(rep, m->tagging, (const char(*)[64])m->labels.names, m->labels.n);
    if (st) {
        free(logits);
        free(gold);
        free(pred);
        return st;
    }
    xa_span_counts sc;
    memset(&sc, 0, sizeof sc);
    int32_t *wg = NULL, *wp = NULL;
    int wcap = 0;
    double loss_sum = 0;
    int64_t loss_n = 0;
    while (!st && xa_task_batcher_next(&bt, &tb)) {
        const float loss = task_forward(m, &tb, 0, 0, NULL, logits, &st);
        if (st) break;
        int64_t counted = 0; /* the labels the head's mean loss is over */
        if (!m->tagging) {
            counted = tb.n_ex;
        } else {
            for (size_t k = 0; k < (size_t)tb.B * tb.T; k++) counted += tb.labels[k] != XA_IGNORE_INDEX;
        }
        loss_sum += (double)loss * (double)counted;
        loss_n += counted;
        for (int r = 0; r < tb.n_ex; r++) {
            const xa_task_example *ex = &d->ex[tb.index[r]];
            if (!m->tagging) {
                gold[tb.index[r]] = ex->label;
                pred[tb.index[r]] = argmax(logits + (size_t)r * K, K);
                continue;
            }
            /* word-level tags: the first piece of each word; words cut by truncation predict O */
            if (ex->n_words > wcap) {
                wcap = ex->n_words * 2;
                free(wg);
                free(wp);
                wg = malloc((size_t)wcap * sizeof *wg);
                wp = malloc((size_t)wcap * sizeof *wp);
                if (!wg || !wp) {
                    st = xa_error_set(XA_STATUS_NOMEM, "task_score", NULL, NULL, "out of memory");
                    break;
                }
            }
            for (int w = 0; w < ex->n_words; w++) wg[w] = wp[w] = 0; /* "O" is label 0 */
            for (int t = 0; t < ex->len; t++) {
                int w = ex->word[t];
                if (w < 0) continue;
                wg[w] = ex->tags[t];
                wp[w] = argmax(logits + ((size_t)r * tb.T + t) * K, K);
            }
            xa_span_count(&sc, wg, wp, ex->n_words, (const char(*)[64])m->labels.names, m->labels.n);
            if (rep) xa_class_report_add_spans(rep, wg, wp, ex->n_words, (const char(*)[64])m->labels.names);
        }
    }
    /* Gold tags of truncated words are not in ex->tags: the data keeps them out of the count, so
     * spans cut by truncation are not scored (documented in data.h). */
    if (!st) {
        out->n = d->n;
        out->loss = loss_n ? loss_sum / (double)loss_n : NAN;
        if (m->tagging) {
            xa_span_metrics sm;
            xa_span_finish(&sm, &sc);
            out->precision = sm.precision;
            out->recall = sm.recall;
            out->f1 = sm.f1;
            out->primary = sm.f1;
        } else {
            xa_cls_metrics cm;
            xa_metrics_classification(&cm, gold, pred, d->n, K);
            if (rep) xa_class_report_add(rep, gold, pred, d->n);
            out->accuracy = cm.accuracy;
            out->macro_f1 = cm.macro_f1;
            out->primary = cm.accuracy;
        }
    }
    free(wg);
    free(wp);
    free(logits);
    free(gold);
    free(pred);
    xa_task_batch_free(&tb);
    xa_task_batcher_free(&bt);
    return st;
}

/* Write the trained pieces of the model into DIR: the head, the new adapter, the fusion, the
 * fine-tuned encoder (full fine-tuning: the head then records its fingerprint), the setup with
 * the AdapterHub setup-directory copies. */
static xa_status save_trained(const char *dir, task_model *m, xa_adapter *ad, xa_fusion_layer *fu,
                              const xa_task_spec *spec, const char *base_name) {
    char p[XA_PATH_MAX];
    xa_status st = xa_file_mkdirs(dir);
    if (!st && spec->train_base) {
        m->enc.cfg.fingerprint = xa_hub_base_fingerprint(&m->enc);
        st = xa_path_join(p, sizeof p, dir, "encoder");
        if (!st) st = xa_model_save(p, &m->enc, m->has_mlm ? &m->mlm : NULL, NULL);
    }
    const char *label_ptrs[XA_MAX_LABELS];
    for (int i = 0; i < m->labels.n; i++) label_ptrs[i] = m->labels.names[i];
    const int n_names = m->qa ? 0 : m->labels.n; /* QuestionAnsweringHead's default id2label None */
    if (!st) st = xa_path_join(p, sizeof p, dir, "head");
    if (!st) st = xa_hub_save_head(p, &m->head, spec->head_name, label_ptrs, n_names, &m->enc.cfg, base_name);
    if (!st && ad) st = xa_path_join(p, sizeof p, dir, "adapter");
    if (!st && ad) st = xa_hub_save_adapter(p, ad, &m->enc.cfg, base_name);
    if (!st && fu) st = xa_path_join(p, sizeof p, dir, "fusion");
    if (!st && fu) st = xa_hub_save_fusion(p, fu, &m->enc.cfg, base_name);
    /* adapter_setup.json and AdapterHub's setup layout beside (hub.h): DIR/<adapter>/ for every
     * adapter of the setup (the frozen language adapter too), DIR/<head>/, so that the library's
     * load_adapter_setup(DIR) loads the whole model */
    if (!st) st = xa_hub_save_setup_dir(dir, m->cp, xa_composer_active(m->cp), &m->head, spec->head_name,
                                        label_ptrs, n_names, &m->enc.cfg, base_name);
    return st;
}

static xa_status load_trained(const char *dir, task_model *m, xa_adapter *ad, xa_fusion_layer *fu) {
    char p[XA_PATH_MAX];
    xa_status st = XA_STATUS_OK;
    if (m->enc.grads) { /* full fine-tuning */
        st = xa_path_join(p, sizeof p, dir, "encoder");
        if (!st) st = xa_trainer_load_encoder(&m->enc, p);
    }
    if (!st && ad) {
        st = xa_path_join(p, sizeof p, dir, "adapter");
        if (!st) st = load_params_into(&m->enc.cfg, p, ad);
    }
    if (!st && fu) {
        xa_composer *tmp = NULL;
        xa_fusion_layer *f2 = NULL;
        st = xa_composer_init(&tmp, &m->enc.cfg);
        for (int k = 0; !st && k < fu->n; k++) { /* the fused adapters must exist to load a fusion */
            xa_adapter *src = xa_composer_adapter(m->cp, fu->adapters[k]);
            xa_adapter *copy = NULL;
            st = xa_composer_add_adapter(tmp, src->name, &src->cfg, 0, &copy);
        }
        if (!st) st = xa_path_join(p, sizeof p, dir, "fusion");
        if (!st) st = xa_hub_load_fusion(tmp, p, 0, &f2);
        if (!st) memcpy(fu->params, f2->params, fu->n_params * sizeof(float));
        xa_composer_free(tmp);
    }
    if (!st) {
        xa_head h2;
        st = xa_path_join(p, sizeof p, dir, "head");
        if (!st) st = xa_hub_load_head(p, &h2, 1, 1, 0, NULL);
        if (!st) {
            if (h2.n_params != m->head.n_params)
                st = xa_error_set(XA_STATUS_SHAPE, p, "the head of this run", "delete the checkpoint",
                                  "checkpointed head has %zu parameters, this run %zu", h2.n_params, m->head.n_params);
            else
                memcpy(m->head.params, h2.params, h2.n_params * sizeof(float));
            xa_head_free(&h2);
        }
    }
    return st;
}

static const char *base_name_of(const char *dir) {
    const char *s = strrchr(dir, '/');
    return s && s[1] ? s + 1 : dir;
}

/* A task-adapter or fusion run: the loaded model, what trains, the data and the best dev weights. */
typedef struct task_run {
    const xa_phase_opts *o;
    const xa_task_spec *spec;
    const char *bname;         /* the base's directory name (model_name of what is saved) */
    task_model *m;
    xa_adapter *ad;            /* trained adapter, or NULL */
    xa_fusion_layer *fu;       /* trained fusion, or NULL */
    const xa_task_data *dev;
    xa_task_batcher *bt;
    xa_task_batch *tb;
    float *dlast;              /* (B, T, C) */
    int64_t steps, per_epoch, eval_every;
    char out_dir[XA_PATH_MAX], best[XA_PATH_MAX];
    const xa_best_metric *metric; /* what selects the best dev evaluation */
    double last_dev;           /* the last evaluation's value of it, NAN before the first */
    xa_trainer_micro micro;    /* the step's batch in grad_accum pieces */
} task_run;

static xa_status task_init(void *ctx, xa_train_state *ts) {
    task_run *R = ctx;
    xa_rng init;
    xa_rng_seed(&init, R->o->seed, 21);
    if (R->ad) xa_adapter_init_weights(R->ad, &init);
    if (R->fu) xa_fusion_layer_init_weights(R->fu, &init);
    xa_head_init_weights(&R->m->head, &init, 0.02f);
    if (R->spec->head_init_dir) {
        xa_head h0;
        xa_status st = xa_hub_load_head(R->spec->head_init_dir, &h0, 1, 1, 0, NULL);
        if (st) return st;
        if (h0.n_params == R->m->head.n_params) memcpy(R->m->head.params, h0.params, h0.n_params * sizeof(float));
        xa_head_free(&h0);
    }
    xa_rng_seed(&ts->rng, R->o->seed, 22);
    remove_tree(R->best);
    return XA_STATUS_OK;
}

static xa_status task_load(void *ctx, const char *dir) {
    task_run *R = ctx;
    return load_trained(dir, R->m, R->ad, R->fu);
}

static xa_status task_seek(void *ctx, const char *path, xa_trainer *t) {
    task_run *R = ctx;
    const xa_train_state *ts = &t->ts;
    if (ts->pos < 0 || ts->pos > R->bt->n_batches || ts->epoch < 0)
        return xa_error_set(XA_STATUS_FORMAT, path, "a data position within the training data",
                            "delete the checkpoint", "batch %" PRId64 " of %" PRId64, ts->pos, R->bt->n_batches);
    xa_task_batcher_seek(R->bt, ts->epoch, ts->pos);
    /* a run that stopped early (killed before its final outputs) does not train on */
    if (R->spec->dev_path && R->o->early_stopping > 0 && ts->bad_evals >= R->o->early_stopping) t->stop = 1;
    return XA_STATUS_OK;
}

/* Hot loop: the next batch (none at the end of an epoch) -> per micro-batch (grad_accum pieces
 * of its rows) forward through the setup and the head -> loss, weighted by the piece's share of
 * the batch's labels (or their class weights) -> backward down to the lowest trained site. The
 * fusion regulariser (a function of the weights) joins once per step, after the first piece. */
static xa_status task_step(void *ctx, xa_trainer *t, float *loss, double *tokens) {
    task_run *R = ctx;
    xa_task_batch *tb = R->tb;
    if (!xa_task_batcher_next(R->bt, tb)) return XA_STATUS_OK; /* the next call starts the next epoch */
    if (R->o->adapter_drop > 0 && R->m->hk) xa_composer_adapterdrop(R->m->cp, R->o->adapter_drop, &t->ts.rng);
    xa_status st = XA_STATUS_OK;
    const int pieces = xa_trainer_micro_count(&R->micro, tb->n_ex);
    const float *cw = R->m->head.class_w;
    const int lab = R->spec->tagging ? 1 : R->m->qa ? 2 : 0; /* the labels' layout */
    const double total = pieces > 1 ? xa_trainer_task_count(tb, lab, cw) : 0;
    int k0, k1; /* this rank's pieces (none on a rank past a short batch's last) */
    xa_trainer_micro_mine(&R->micro, tb->n_ex, &k0, &k1);
    xa_trainer_micro_begin(&R->micro, &t->ts.rng);
    double sum = 0;
    float reg = 0;
    for (int k = k0; k < k1; k++) {
        xa_task_batch v;
        xa_trainer_micro_task(&R->micro, tb, lab, k, &v);
        const double c = pieces > 1 ? xa_trainer_task_count(&v, lab, cw) : 1;
        /* the piece's encoder rows in the batch's: examples k x rows on, n_choices rows each */
        const int row0 = k * R->micro.rows * (tb->n_choices > 0 ? tb->n_choices : 1);
        *loss = task_forward(R->m, &v, row0, 1, xa_trainer_micro_rng(&R->micro, &t->ts.rng, k), NULL, &st);
        if (st) return st;
        if (k == 0 && R->fu && R->fu->cfg.regularization) reg = xa_composer_fusion_regularizer(R->m->cp, 0.01f);
        memset(R->dlast, 0, (size_t)v.B * v.T * R->m->enc.cfg.C * sizeof(float));
        xa_head_backward(&R->m->head, R->dlast, pieces > 1 ? (total > 0 ? (float)(c / total) : 0.0f) : 1.0f);
        xa_batch b = {v.ids, v.has_types ? v.types : NULL, v.lens, v.B, v.T}; /* as task_forward: WTT gradients by type */
        xa_encoder_backward(&R->m->enc, &R->m->acts, &b, R->m->hk, R->dlast, NULL);
        sum += (double)*loss * c;
    }
    if (pieces > 1) *loss = total > 0 ? (float)(sum / total) : 0.0f; /* this rank's share of the batch's mean */
    if (R->fu && R->fu->cfg.regularization) *loss += reg;
    *tokens = (double)tb->B * tb->T;
    return XA_STATUS_OK;
}

static void task_extra(void *ctx, const xa_trainer *t, char *buf, size_t n) {
    const task_run *R = ctx;
    snprintf(buf, n, "\"epoch\": %.3f", (double)t->ts.step / (double)R->per_epoch);
}

/* The dev evaluation at its cadence: a new best is saved to OUT/best (swapped in); early
 * stopping after `early_stopping` evaluations without one. */
static xa_status task_after(void *ctx, xa_trainer *t, float loss, double lr, char *line, size_t n) {
    task_run *R = ctx;
    xa_train_state *ts = &t->ts;
    if (!t->writer) return XA_STATUS_OK; /* rank 0 evaluates on dev; the trainer shares its stop */
    if (R->spec->dev_path && (ts->step % R->eval_every == 0 || ts->step == R->steps)) {
        xa_composer_skip_lowest(R->m->cp, 0);
        xa_eval_metrics em;
        xa_status st = task_score(R->m, R->dev, &em, NULL);
        if (st) return st;
        const double v = metric_value(R->metric, &em);
        R->last_dev = v;
        /* the first evaluation (best_step 0: none before; an older checkpoint's best is -1 then) */
        const int better = ts->best_step == 0 || (R->metric->greater_is_better ? v > ts->best : v < ts->best);
        if (better) {
            ts->best = v;
            ts->best_step = ts->step;
            ts->bad_evals = 0;
            char btmp[XA_PATH_MAX];
            st = xa_path_join(btmp, sizeof btmp, R->out_dir, "best.tmp");
            if (!st) remove_tree(btmp);
            if (!st) st = save_trained(btmp, R->m, R->ad, R->fu, R->spec, R->bname);
            if (!st) st = xa_ckpt_swap_dir(btmp, R->best);
            if (st) return st;
        } else {
            ts->bad_evals++;
        }
        /* the metric's row, with every score of the evaluation ("dev", "dev_f1": the fields of
         * older rows: the primary metric, and macro-F1 or span F1) */
        char extra[384], a[32], b[32], c[32];
        int k = snprintf(extra, sizeof extra, "\"best\": %s%s", jnum(a, ts->best), better ? ", \"new_best\": true" : "");
        if (R->spec->tagging)
            k += snprintf(extra + k, sizeof extra - (size_t)k, ", \"span_f1\": %s, \"precision\": %s, \"recall\": %s",
                          jnum(a, em.f1), jnum(b, em.precision), jnum(c, em.recall));
        else if (R->m->qa)
            k += snprintf(extra + k, sizeof extra - (size_t)k, ", \"exact_match\": %s, \"f1\": %s", jnum(a, em.exact_match),
                          jnum(b, em.f1));
        else
            k += snprintf(extra + k, sizeof extra - (size_t)k, ", \"accuracy\": %s, \"macro_f1\": %s", jnum(a, em.accuracy),
                          jnum(b, em.macro_f1));
        snprintf(extra + k, sizeof extra - (size_t)k, ", \"loss\": %s, \"dev\": %s, \"dev_f1\": %s", jnum(a, em.loss),
                 jnum(b, em.primary), jnum(c, R->spec->tagging || R->m->qa ? em.f1 : em.macro_f1));
        xa_trainer_log_eval(t, "dev", R->metric->name, v, extra);
        if (R->o->early_stopping > 0 && ts->bad_evals >= R->o->early_stopping) {
            t->stop = 1;
            XA_LOG_INFO("%s: early stopping at step %lld (best %s %.4f at step %lld)", R->spec->head_name,
                        (long long)ts->step, R->metric->name, ts->best, (long long)ts->best_step);
        }
    }
    /* no best before the first evaluation (a resumed run shows the checkpoint's best) */
    if (ts->best_step > 0 && !isnan(R->last_dev))
        snprintf(line, n, "loss %.4f | dev %.4f (best %.4f)", loss, R->last_dev, ts->best);
    else if (ts->best_step > 0)
        snprintf(line, n, "loss %.4f | best dev %.4f", loss, ts->best);
    else
        snprintf(line, n, "loss %.4f | lr %.2e", loss, lr);
    return XA_STATUS_OK;
}

static void task_position(void *ctx, xa_train_state *ts) {
    task_run *R = ctx;
    ts->epoch = R->bt->epoch;
    ts->pos = R->bt->pos;
}

static xa_status task_save(void *ctx, const char *dir) {
    task_run *R = ctx;
    return save_trained(dir, R->m, R->ad, R->fu, R->spec, R->bname);
}

static const xa_trainer_ops g_task_ops = {task_init, task_load, task_seek, task_step, task_extra, task_after,
                                          task_position, task_save};

/* The outputs of a finished task run: OUT/final (the best dev weights when a dev set exists, else
 * the last; built as final.tmp and swapped in), then OUT/dev.json. */
static xa_status task_finish(task_run *R, const xa_train_state *ts) {
    xa_status st = XA_STATUS_OK;
    char fin[XA_PATH_MAX], dst[XA_PATH_MAX], path[XA_PATH_MAX];
    if (R->spec->dev_path && xa_file_is_dir(R->best)) st = load_trained(R->best, R->m, R->ad, R->fu);
    if (!st) st = xa_path_join(fin, sizeof fin, R->out_dir, "final.tmp");
    if (!st) {
        remove_tree(fin);
        st = save_trained(fin, R->m, R->ad, R->fu, R->spec, R->bname);
    }
    if (!st && R->spec->train_base) { /* the fine-tuned encoder is a whole base directory */
        st = xa_path_join(dst, sizeof dst, fin, "encoder");
        if (!st) st = xa_path_join(path, sizeof path, dst, "sentencepiece.bpe.model");
        if (!st) st = xa_file_copy(path, R->m->tokenizer);
    }
    if (!st) st = xa_path_join(dst, sizeof dst, R->out_dir, "final");
    if (!st) st = xa_ckpt_swap_dir(fin, dst);
    if (st) return st;
    char j[256];
    /* "metric" only for another selection than the primary: dev.json stays as before otherwise */
    const int other = R->metric != xa_best_metric_find(NULL, best_type(R->spec));
    int n = snprintf(j, sizeof j, "{\"best_dev\": %.6f, \"best_step\": %" PRId64 ", \"steps\": %" PRId64 "%s%s%s}\n",
                     ts->best, ts->best_step, ts->step, other ? ", \"metric\": \"" : "", other ? R->metric->name : "",
                     other ? "\"" : "");
    st = xa_path_join(path, sizeof path, R->out_dir, "dev.json");
    if (!st) st = xa_file_write_atomic(path, j, (size_t)n);
    return st;
}

/* The label set of a run: from the initial head (head_init_dir) when there is one, else
 * collected from the training file. */
static xa_status task_labels(task_model *m, const xa_task_spec *spec) {
    memset(&m->labels, 0, sizeof m->labels);
    if (!spec->head_init_dir) return XA_STATUS_OK;
    xa_head_file_config hc;
    xa_head h0;
    xa_status st = xa_hub_load_head(spec->head_init_dir, &h0, 1, 1, 0, &hc);
    if (st) return st;
    xa_head_free(&h0);
    m->labels.n = hc.n_labels;
    for (int i = 0; i < hc.n_labels; i++) snprintf(m->labels.names[i], sizeof m->labels.names[i], "%s", hc.labels[i]);
    return XA_STATUS_OK;
}

/* The loss weights of the run's head (o->class_weights): scikit-learn's "balanced" over the
 * training labels, or the recipe's list (one per label, in the head's label order); logged, and
 * their hash into *hash for the checkpoint identity. */
static xa_status task_class_weights(task_model *m, const xa_task_data *train, const xa_phase_opts *o,
                                    const xa_task_spec *spec, uint64_t *hash) {
    const int K = m->head.K;
    float *w = malloc((size_t)K * sizeof *w);
    int32_t *y = NULL;
    xa_status st = w ? XA_STATUS_OK : xa_error_set(XA_STATUS_NOMEM, "xa_train_task", NULL, NULL, "out of memory");
    if (!st && o->class_weights == XA_CLASS_WEIGHTS_LIST) {
        if (o->n_class_weights != K) {
            char names[512];
            size_t len = 0;
            for (int k = 0; k < m->labels.n && len < sizeof names; k++)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "", m->labels.names[k]);
            st = xa_error_set(XA_STATUS_CONFIG, spec->train_path, "one class weight per label, in this order", names,
                              "class_weights lists %d weight(s) for the %d labels of '%s' (or use class_weights: balanced)",
                              o->n_class_weights, K, spec->head_name);
        }
        for (int k = 0; !st && k < K; k++) w[k] = (float)o->class_weight_list[k];
    } else if (!st) { /* balanced: over the labels as the loss counts them */
        size_t n = 0;
        for (int i = 0; i < train->n; i++) n += m->tagging ? (size_t)train->ex[i].len : 1;
        y = malloc((n ? n : 1) * sizeof *y);
        if (!y) st = xa_error_set(XA_STATUS_NOMEM, "xa_train_task", NULL, NULL, "out of memory");
        size_t k = 0;
        for (int i = 0; !st && i < train->n; i++) {
            const xa_task_example *e = &train->ex[i];
            if (!m->tagging) y[k++] = e->label;
            else for (int t = 0; t < e->len; t++) y[k++] = e->tags[t];
        }
        if (!st && xa_class_weights_balanced(w, y, n, K) < 0)
            st = xa_error_set(XA_STATUS_NOMEM, "xa_train_task", NULL, NULL, "out of memory");
    }
    if (!st) st = xa_head_set_class_weights(&m->head, w);
    if (!st) {
        char line[1024];
        size_t len = 0;
        for (int k = 0; k < K && len < sizeof line; k++)
            len += (size_t)snprintf(line + len, sizeof line - len, "%s%s %.4g", k ? ", " : "", m->labels.names[k], (double)w[k]);
        XA_LOG_INFO("%s: class weights (%s): %s", spec->head_name,
                    o->class_weights == XA_CLASS_WEIGHTS_LIST ? "given" : "balanced", line);
        *hash = xa_ckpt_hash(XA_FNV_INIT, w, (size_t)K * sizeof *w);
    }
    free(y);
    free(w);
    return st;
}

xa_status xa_train_task(const char *base_dir, const char *tokenizer, const char *out_dir,
                        const xa_task_spec *spec, const xa_phase_opts *o, xa_phase_result *res) {
    task_model m;
    xa_task_data train, dev;
    xa_task_batcher bt;
    xa_task_batch tb;
    xa_optim opt;
    xa_trainer tr;
    char identity[512];
    memset(&train, 0, sizeof train);
    memset(&dev, 0, sizeof dev);
    memset(&bt, 0, sizeof bt);
    memset(&tb, 0, sizeof tb);
    memset(&opt, 0, sizeof opt);
    memset(&tr, 0, sizeof tr);
    memset(res, 0, sizeof *res);
    res->best_dev = -1;
    task_run R = {o, spec, base_name_of(base_dir), &m, NULL, NULL, &dev, &bt, &tb, NULL, 0, 0, 0, "", "", NULL, NAN, {0, 0, 0, 0, NULL, NULL, {0, 0}, {0, 0}, 0}};

    const int full = spec->train_base;
    if (full && (spec->n_frozen || spec->new_adapter || spec->frozen_task_dir || spec->n_fuse || spec->setup))
        return xa_error_set(XA_STATUS_USAGE, "xa_train_task", "no adapters, fusion or setup with train_base",
                            NULL, "full fine-tuning spec for '%s' names adapters or a setup", spec->head_name);
    if (!full && !spec->setup)
        return xa_error_set(XA_STATUS_USAGE, "xa_train_task", "a setup (or train_base)", NULL, "no setup for '%s'",
                            spec->head_name);
    const int qa = spec->kind == XA_TASK_KIND_QA && !spec->tagging;
    if (!(R.metric = xa_best_metric_find(o->best_metric, best_type(spec))))
        return xa_error_set(XA_STATUS_USAGE, "xa_train_task",
                            spec->tagging ? "span_f1 or loss" : qa ? "f1, exact_match or loss" : "accuracy, macro_f1 or loss",
                            NULL, "unknown metric_for_best_model '%s' for %s", o->best_metric,
                            spec->tagging ? "tagging" : qa ? "question answering" : "classification");
    if (qa && o->class_weights != XA_CLASS_WEIGHTS_NONE)
        return xa_error_set(XA_STATUS_CONFIG, spec->train_path, "no class_weights for question answering",
                            "class weights weight labels; a QA head predicts positions", "class_weights set for '%s'",
                            spec->head_name);
    xa_status st = task_model_open(&m, base_dir, tokenizer);
    if (!st) xa_trainer_apply_dropout(&m.enc.cfg, &o->k);
    if (!st && full) st = xa_encoder_set_trainable(&m.enc, 1);
    if (!st && full) { /* kept to make the fine-tuned encoder a whole base; optional in a base */
        st = xa_mlm_head_init(&m.mlm, m.enc.cfg.C, m.enc.cfg.V, m.enc.cfg.eps, 1, 0);
        if (!st) st = xa_mlm_head_load(&m.mlm, m.enc.cfg.arch, base_dir);
        m.has_mlm = !st;
        if (st == XA_STATUS_NOT_FOUND) {
            xa_error_clear();
            st = XA_STATUS_OK;
        }
    }
    if (st) goto done;
    m.tagging = spec->tagging;
    const int T = max_len(&m, o->T);
    const xa_task_kind kind = spec->tagging ? XA_TASK_KIND_TAGGING
                              : spec->kind == XA_TASK_KIND_PAIR || spec->kind == XA_TASK_KIND_CHOICE || qa ? spec->kind
                                                                                                         : XA_TASK_KIND_CLASSIFICATION;
    const xa_task_input tin = task_input_of(&m, kind, spec->fields, spec->label_names, spec->n_label_names, spec->doc_stride);
    m.qa = qa;
    m.max_answer_length = spec->max_answer_length > 0 ? spec->max_answer_length : 30;
    m.n_best_size = spec->n_best_size > 0 ? spec->n_best_size : 20;
    m.version_2_with_negative = spec->version_2_with_negative;
    m.null_score_diff_threshold = spec->null_score_diff_threshold;
    /* frozen adapters, then what trains */
    for (int i = 0; i < spec->n_frozen && !st; i++)
        st = xa_hub_load_adapter(m.cp, spec->frozen_dirs[i], NULL, NULL, 0, 0, NULL);
    if (!st && spec->frozen_task_dir) st = xa_hub_load_adapter(m.cp, spec->frozen_task_dir, NULL, NULL, 0, 0, NULL);
    if (!st && spec->new_adapter) st = xa_composer_add_adapter(m.cp, spec->new_adapter, spec->new_cfg, 1, &R.ad);
    if (!st && spec->n_fuse) st = xa_composer_add_fusion(m.cp, NULL, spec->fuse, spec->n_fuse, spec->fusion_cfg, 1, &R.fu);
    if (!st) st = task_labels(&m, spec);
    if (!st) st = xa_task_data_load_input(&train, m.tok, spec->train_path, &tin, T, &m.labels);
    if (!st && spec->dev_path) st = xa_task_data_load_input(&dev, m.tok, spec->dev_path, &tin, T, &m.labels);
    if (st) goto done;
    m.n_choices = train.n_choices > 0 ? train.n_choices : 1;
    const int rows = o->B * m.n_choices; /* encoder rows of a batch */
    if (m.labels.n < 2) {
        st = xa_error_set(XA_STATUS_CONFIG, spec->train_path, "at least 2 labels", NULL, "the training data has %d label(s)", m.labels.n);
        goto done;
    }
    /* activations (encoder, composer, head) for one micro-batch of the step's batch (grad_accum):
     * batch_size / grad_accum examples, n_choices rows each */
    st = xa_trainer_micro_init(&R.micro, o->B, o->k.grad_accum, T, 0, "xa_train_task");
    const int micro_rows = R.micro.rows * m.n_choices;
    if (!st) st = xa_head_init(&m.head,
                               spec->tagging ? XA_HEAD_TAGGING : kind == XA_TASK_KIND_CHOICE ? XA_HEAD_MULTIPLE_CHOICE
                                                             : qa                          ? XA_HEAD_QUESTION_ANSWERING
                                                                                           : XA_HEAD_CLASSIFICATION,
                               m.enc.cfg.C, m.labels.n, m.enc.cfg.p_hidden, micro_rows, T, 1);
    uint64_t cw_hash = 0;
    if (!st && o->class_weights != XA_CLASS_WEIGHTS_NONE) st = task_class_weights(&m, &train, o, spec, &cw_hash);
    if (!st) st = task_model_plan(&m, spec->setup, micro_rows, T, xa_trainer_acts_mode(&o->k));
    if (!st) st = xa_trainer_optim_init(&opt, &o->k);
    if (!st && full) st = xa_trainer_add_encoder_groups(&opt, &m.enc, o->weight_decay);
    if (!st && R.ad) st = xa_optim_add_group(&opt, R.ad->name, R.ad->params, R.ad->grads, R.ad->n_params, 1.0, o->weight_decay, 1, NULL);
    if (!st && R.fu) st = xa_optim_add_group(&opt, "fusion", R.fu->params, R.fu->grads, R.fu->n_params, 1.0, o->weight_decay, 1, NULL);
    if (!st) st = xa_optim_add_group(&opt, "head", m.head.params, m.head.grads, m.head.n_params, 1.0, o->weight_decay, 1, NULL);
    if (!st && !o->k.weight_decay_all) { /* HF: no decay on biases and LayerNorm weights */
        if (R.ad) st = xa_trainer_no_decay_adapter(&opt, R.ad->name, R.ad);
        if (!st && R.fu) st = xa_trainer_no_decay_fusion(&opt, "fusion", R.fu);
        if (!st) st = xa_trainer_no_decay_head(&opt, "head", &m.head);
    }
    if (!st) st = xa_task_batcher_init(&bt, &train, o->B, 1, o->seed, xa_tok_special_ids(m.tok).pad);
    if (!st) st = xa_task_batch_init(&tb, rows, T);
    if (!st && snprintf(R.out_dir, sizeof R.out_dir, "%s", out_dir) >= (int)sizeof R.out_dir)
        st = xa_error_set(XA_STATUS_USAGE, out_dir, NULL, NULL, "path too long");
    if (!st) st = xa_path_join(R.best, sizeof R.best, out_dir, "best");
    if (st) goto done;
    R.dlast = xa_aligned_alloc((size_t)micro_rows * T * m.enc.cfg.C * sizeof(float), 64);
    if (!R.dlast) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_train_task", NULL, NULL, "out of memory");
        goto done;
    }
    R.per_epoch = bt.n_batches;
    R.steps = o->steps > 0 ? o->steps : (int64_t)ceil(o->epochs * (double)R.per_epoch);
    R.eval_every = o->eval_every > 0 ? o->eval_every : R.per_epoch;
    char setup_id[256]; /* the setup text without spaces: the identity's items are space-separated */
    size_t ns = 0;
    for (const char *c = full ? "none" : spec->setup; *c && ns + 1 < sizeof setup_id; c++)
        if (*c != ' ') setup_id[ns++] = *c;
    setup_id[ns] = '\0';
    snprintf(identity, sizeof identity, "%s %s setup=%s B=%d T=%d steps=%" PRId64 " seed=%" PRIu64 " lr=%g n=%d"
             " data=%016" PRIx64, full ? "finetune" : "task", spec->head_name, setup_id, o->B, T, R.steps, o->seed,
             o->lr, train.n, task_fingerprint(task_fingerprint(XA_FNV_INIT, &train), &dev));
    xa_trainer_identity_knobs(identity, sizeof identity, &o->k);
    if (R.metric != xa_best_metric_find(NULL, best_type(spec))) { /* another dev selection */
        size_t k = strlen(identity);
        snprintf(identity + k, sizeof identity - k, " best=%s", R.metric->name);
    }
    if (o->class_weights != XA_CLASS_WEIGHTS_NONE) { /* only then: older checkpoints keep their identity */
        size_t len = strlen(identity);
        snprintf(identity + len, sizeof identity - len, " class_weights=%016" PRIx64, cw_hash);
    }
    if ((st = xa_ckpt_recover(R.best))) goto done;
    char label[96];
    snprintf(label, sizeof label, "%s%s", full ? "finetune " : "", spec->head_name);
    const xa_trainer_opts to = trainer_opts(o, label, full ? "finetune" : spec->n_fuse ? "fusion" : "task", out_dir,
                                            identity, R.steps);
    if ((st = xa_trainer_run(&tr, &to, &opt, &g_task_ops, &R))) goto done;
    res->first_loss = tr.log.first;
    res->last_loss = tr.log.last;
    res->steps_done = tr.ts.step;
    res->best_dev = tr.ts.best;
    res->best_step = tr.ts.best_step;
    res->seconds = tr.seconds;
    res->tokens_per_s = res->seconds > 0 ? tr.tokens / res->seconds : 0;
    if (tr.ts.step == R.steps || tr.stop) {
        if (xa_dist_rank() == 0) st = task_finish(&R, &tr.ts);
        res->finished = !st;
    }
    if (!st) st = xa_dist_barrier("xa_train_task"); /* final/ is on disk before any rank goes on */
done:
    xa_trainer_close(&tr);
    xa_trainer_micro_free(&R.micro);
    xa_aligned_free(R.dlast);
    xa_optim_free(&opt);
    xa_task_batch_free(&tb);
    xa_task_batcher_free(&bt);
    xa_task_data_free(&train);
    xa_task_data_free(&dev);
    task_model_free(&m);
    return st;
}

/* ---- evaluation ------------------------------------------------------------------------------------- */

xa_status xa_eval_setup(const char *base_dir, const char *tokenizer, const char *const *adapter_dirs,
                        const uint8_t *drop_last, int n_adapters, const char *fusion_dir, const char *setup,
                        const char *head_dir, const char *test_path, int B, int T,
                        xa_eval_metrics *out) {
    return xa_eval_setup_report(base_dir, tokenizer, adapter_dirs, drop_last, n_adapters, fusion_dir, setup, head_dir,
                                test_path, B, T, out, NULL);
}

xa_status xa_eval_setup_report(const char *base_dir, const char *tokenizer, const char *const *adapter_dirs,
                               const uint8_t *drop_last, int n_adapters, const char *fusion_dir, const char *setup,
                               const char *head_dir, const char *test_path, int B, int T, xa_eval_metrics *out,
                               xa_class_report *rep) {
    return xa_eval_setup_input(base_dir, tokenizer, adapter_dirs, drop_last, n_adapters, fusion_dir, setup, head_dir,
                               test_path, B, T, NULL, out, rep);
}

xa_status xa_eval_setup_input(const char *base_dir, const char *tokenizer, const char *const *adapter_dirs,
                              const uint8_t *drop_last, int n_adapters, const char *fusion_dir, const char *setup,
                              const char *head_dir, const char *test_path, int B, int T, const xa_eval_input *in,
                              xa_eval_metrics *out, xa_class_report *rep) {
    task_model m;
    xa_task_data own; /* the test file when there is no cache */
    const xa_task_data *test = &own;
    xa_eval_cache *cache = in ? in->cache : NULL;
    memset(&own, 0, sizeof own);
    memset(out, 0, sizeof *out);
    if (rep) memset(rep, 0, sizeof *rep);
    if (!setup && (n_adapters || fusion_dir))
        return xa_error_set(XA_STATUS_USAGE, "xa_eval_setup", "a setup for the adapters", NULL,
                            "%d adapter(s)%s without a setup", n_adapters, fusion_dir ? " and a fusion" : "");
    xa_status st = task_model_open_cached(&m, cache, base_dir, tokenizer);
    for (int i = 0; i < n_adapters && !st; i++) {
        int last = m.enc.cfg.L - 1;
        int drop = drop_last && drop_last[i];
        st = xa_hub_load_adapter(m.cp, adapter_dirs[i], NULL, drop ? &last : NULL, drop, 0, NULL);
    }
    if (!st && fusion_dir) st = xa_hub_load_fusion(m.cp, fusion_dir, 0, NULL);
    xa_head_file_config hc;
    if (!st) st = xa_hub_load_head(head_dir, &m.head, B, max_len(&m, T), 0, &hc);
    m.n_choices = !st && m.head.kind == XA_HEAD_MULTIPLE_CHOICE ? m.head.K : 1;
    if (!st && m.n_choices > 1) { /* B examples are B x num_choices rows */
        xa_head_free(&m.head);
        st = xa_hub_load_head(head_dir, &m.head, B * m.n_choices, max_len(&m, T), 0, &hc);
    }
    if (!st) xa_hub_check_fingerprint(head_dir, hc.base_fingerprint, &m.enc.cfg);
    if (!st) {
        m.tagging = m.head.kind == XA_HEAD_TAGGING;
        m.labels.n = hc.n_labels;
        for (int i = 0; i < hc.n_labels; i++) snprintf(m.labels.names[i], sizeof m.labels.names[i], "%s", hc.labels[i]);
        if (m.head.C != m.enc.cfg.C)
            st = xa_error_set(XA_STATUS_SHAPE, head_dir, "the base model's hidden size", "wrong base model?",
                              "head for hidden size %d, base has %d", m.head.C, m.enc.cfg.C);
    }
    /* test labels are matched by name: without label2id they would be ids past the head's classes */
    if (!st && hc.n_labels != m.head.K)
        st = xa_error_set(XA_STATUS_CONFIG, head_dir, "head_config.json with label2id (one name per class)",
                          "add label2id to head_config.json", "the head has %d label names for %d classes",
                          hc.n_labels, m.head.K);
    const int Tm = max_len(&m, T);
    m.qa = m.head.kind == XA_HEAD_QUESTION_ANSWERING;
    m.max_answer_length = in && in->max_answer_length > 0 ? in->max_answer_length : 30;
    m.n_best_size = in && in->n_best_size > 0 ? in->n_best_size : 20;
    m.version_2_with_negative = in && in->version_2_with_negative;
    m.null_score_diff_threshold = in ? in->null_score_diff_threshold : 0.0;
    const xa_task_kind kind = m.tagging                                    ? XA_TASK_KIND_TAGGING
                              : m.head.kind == XA_HEAD_MULTIPLE_CHOICE       ? XA_TASK_KIND_CHOICE
                              : m.qa                                         ? XA_TASK_KIND_QA
                              : in && in->kind == XA_TASK_KIND_PAIR           ? XA_TASK_KIND_PAIR
                                                                            : XA_TASK_KIND_CLASSIFICATION;
    const xa_task_input tin = task_input_of(&m, kind, in ? in->fields : NULL, in ? in->label_names : NULL,
                                            in ? in->n_label_names : 0, in ? in->doc_stride : 0);
    if (!st && cache) st = xa_eval_cache_task_data(cache, m.tok, test_path, &tin, Tm, &m.labels, &test);
    else if (!st) st = xa_task_data_load_input(&own, m.tok, test_path, &tin, Tm, &m.labels);
    if (!st && test->n_choices != m.n_choices)
        st = xa_error_set(XA_STATUS_CONFIG, test_path, "as many choices as the head's num_choices", NULL,
                          "%d choices, the head has %d", test->n_choices, m.n_choices);
    if (!st) st = task_model_plan(&m, setup, B * m.n_choices, Tm, 0);
    if (!st) st = task_score(&m, test, out, rep);
    if (st && rep) xa_class_report_free(rep);
    xa_task_data_free(&own);
    task_model_free(&m);
    return st;
}
