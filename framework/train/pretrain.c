/* train/pretrain: MLM pretraining of a whole encoder (all parameters train), resumable.
 * Loop per step: next masked batch -> encoder forward (dropout on) -> MLM head on the masked rows
 * -> backward -> clip -> AdamW with linear warmup and decay. Weight decay skips biases and
 * LayerNorms (as HF Trainer). See train.h for the checkpoint format and the resume guarantee.
 *
 * With aligned pairs (opts.pairs) two cross-lingual objectives join (data/pairs.c):
 *  - TLM (Conneau & Lample 2019): a share tlm_ratio of the steps, chosen by a hash of
 *    (seed, step), takes a batch of whole pairs "<s> A </s></s> B </s>" instead of MLM blocks;
 *  - alignment (LaBSE; Pan et al. 2021): every step also runs align_pairs pairs as 2 x align_pairs
 *    separate rows, mean-pools the last hidden states over the real tokens and adds
 *    align_weight x the symmetric in-batch contrastive loss (tensor/contrastive.c); both passes'
 *    gradients add up before the one clip and optimizer step.
 * Pair sampling depends only on (seed, step), so resuming needs no extra state. The loop itself
 * (schedule, clip, AdamW, metrics, checkpoints, resume) is train/trainer.c; this file supplies the
 * steps. */
#include "train/train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "optim/optim.h"
#include "tokenizer/tok.h"
#include "train/ckpt.h"
#include "train/trainer.h"
#include "train/dist.h"


xa_pretrain_opts xa_pretrain_opts_default(void) {
    xa_pretrain_opts o;
    memset(&o, 0, sizeof o);
    o.model.arch = XA_ARCH_XLMR;
    o.model.P = 514;
    o.model.TV = 1;
    o.model.C = 128;
    o.model.L = 2;
    o.model.NH = 2;
    o.model.FF = 512;
    o.model.pad_id = 1;
    o.model.eps = 1e-5f;
    o.model.p_hidden = 0.1f;
    o.model.p_attn = 0.1f;
    o.model.act = XA_ACT_GELU;
    o.B = 8;
    o.T = 128;
    o.steps = 1000;
    o.lr = 5e-4;
    o.warmup = -1; /* -1: 6% of the steps */
    o.weight_decay = 0.01;
    o.clip = 1.0;
    o.seed = 42;
    o.ckpt_every = 200;
    o.pair_alpha = 0.3;
    o.align_temp = 0.05;
    o.mlm_prob = 0.15;
    o.k = xa_train_knobs_default();
    return o;
}

/* One optimizer group per tensor (so weight decay can differ), views into the flat buffers: the
 * encoder's (train/trainer.c), then the MLM head's (decay on its dense weight only). */
static xa_status build_optim(xa_optim *opt, xa_encoder *enc, xa_mlm_head *head, double wd, const xa_train_knobs *k) {
    xa_status st = xa_trainer_optim_init(opt, k);
    if (!st) st = xa_trainer_add_encoder_groups(opt, enc, wd);
    char name[32];
    for (int i = 0; i < XA_MLM_N_TENSORS && !st; i++) {
        snprintf(name, sizeof name, "mlm_head.%d", i);
        st = xa_optim_add_group(opt, name, head->t[i], head->g[i], head->numel[i], 1.0,
                                i == XA_MLM_DW ? wd : 0.0, 1, NULL);
    }
    return st;
}

/* The settings and data a checkpoint must have been made with: the schedule (steps, lr, warmup)
 * too, since a resumed run must end as an uninterrupted one. */
static void identity_of(const xa_pretrain_opts *o, const xa_mlm_data *d, char *buf, size_t n) {
    uint64_t h = xa_ckpt_hash(XA_FNV_INIT, d->blocks, (size_t)d->n_blocks * (size_t)d->T * sizeof(int32_t));
    int k = snprintf(buf, n, "pretrain batch_size=%d seq_len=%d seed=%llu steps=%lld lr=%g warmup=%lld mlm_prob=%g "
                     "whole_word=%d data=%lld:%016llx", o->B, o->T, (unsigned long long)o->seed, (long long)o->steps,
                     o->lr, (long long)o->warmup, o->mlm_prob, o->whole_word_mask, (long long)d->n_blocks,
                     (unsigned long long)h);
    if (o->pairs && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, " tlm=%g align=%g align_pairs=%d temp=%g alpha=%g", o->tlm_ratio,
                 o->align_weight, o->align_pairs, o->align_temp, o->pair_alpha);
    xa_train_knobs k2 = o->k;
    k2.weight_decay_all = xa_train_knobs_default().weight_decay_all; /* not a pretraining setting */
    xa_trainer_identity_knobs(buf, n, &k2);
}

/* Whether step s takes a TLM batch: a hash of (seed, step) below the ratio. */
static int tlm_step(const xa_pretrain_opts *o, int64_t step) {
    if (!o->pairs || o->tlm_ratio <= 0) return 0;
    xa_rng r;
    xa_rng_seed(&r, o->seed ^ ((uint64_t)step * 0xD1B54A32D192ED03ULL), 0x71a5);
    return xa_rng_uniform(&r) < o->tlm_ratio;
}

/* The alignment pass of one step: forward 2n rows, mean-pool, contrastive loss, backward into
 * the encoder's gradients (added to the MLM pass'). */
static xa_status align_pass(const xa_pretrain_opts *o, xa_encoder *enc, xa_encoder_acts *acts,
                            const xa_pair_data *pd, int64_t step, int32_t *ids, int32_t *lens,
                            float *pooled, float *dpooled, float *scratch, float *dlast,
                            xa_rng *rng, float *loss, float *acc) {
    const int n = o->align_pairs, C = enc->cfg.C;
    int T = xa_pair_align_batch(pd, step, n, ids, lens, enc->cfg.pad_id, o->T);
    xa_batch b = {ids, NULL, lens, 2 * n, T};
    acts->row0 = 0; /* a batch of its own, not rows of the step's */
    xa_status st = xa_encoder_forward(enc, acts, &b, NULL, 1, rng);
    if (st) return st;
    const float *h = xa_encoder_hidden(enc, acts, enc->cfg.L - 1);
    xa_mean_pool_forward(pooled, h, lens, 2 * n, T, C);
    *loss = xa_contrastive_loss(dpooled, dpooled + (size_t)n * C, acc, scratch, pooled,
                                pooled + (size_t)n * C, n, C, (float)(1.0 / o->align_temp));
    xa_scale(dpooled, (float)o->align_weight, (size_t)2 * n * C);
    memset(dlast, 0, (size_t)2 * n * T * C * sizeof(float));
    xa_mean_pool_backward(dlast, dpooled, lens, 2 * n, T, C);
    xa_encoder_backward(enc, acts, &b, NULL, dlast, NULL);
    return XA_STATUS_OK;
}

/* A pretraining run: the encoder and MLM head (all train), the corpus, the pairs and the
 * alignment buffers, and the running means of the alignment loss for the metrics window. */
typedef struct pretrain_run {
    const xa_pretrain_opts *o;
    xa_encoder *enc;
    xa_encoder_acts *acts;
    xa_mlm_head *head;
    xa_mlm_data *data;
    xa_mlm_batch *batch;
    const xa_pair_data *pd;
    float *dlast;              /* (max(B, 2 n_al), T, C) */
    int n_al;                  /* alignment pairs per step, 0 = off */
    int32_t *al_ids, *al_lens; /* (2 n_al, T), (2 n_al) */
    float *al_pooled, *al_dpooled, *al_scratch;
    xa_align_window al_win;   /* the alignment term's window means */
    xa_mlm_data *heldout;      /* (o->n_heldout) held-out texts for validation; entries with
                                  n_blocks 0 were too short and are skipped */
    double val_loss;           /* the last validation's pooled loss, NAN before the first */
    xa_trainer_micro *micro;   /* the step's batch in grad_accum pieces */
} pretrain_run;

static xa_status pt_init(void *ctx, xa_train_state *ts) {
    pretrain_run *P = ctx;
    xa_rng init;
    xa_rng_seed(&init, P->o->seed, 1);
    xa_encoder_init_weights(P->enc, &init, 0.02f);
    xa_mlm_head_init_weights(P->head, &init, 0.02f);
    xa_rng_seed(&ts->rng, P->o->seed, 2);
    return XA_STATUS_OK;
}

static xa_status pt_load(void *ctx, const char *dir) {
    pretrain_run *P = ctx;
    xa_status st = xa_trainer_load_encoder(P->enc, dir);
    return st ? st : xa_mlm_head_load(P->head, P->enc->cfg.arch, dir);
}

static xa_status pt_seek(void *ctx, const char *path, xa_trainer *t) {
    pretrain_run *P = ctx;
    return xa_trainer_seek_mlm(&t->ts, P->data, path);
}

/* Hot loop: an MLM (or TLM) batch, drawn whole -> per micro-batch (grad_accum pieces of its rows)
 * forward -> MLM loss on the piece's masked rows, weighted by its share of the batch's masked
 * pieces -> backward into every weight; then the alignment pass adding its gradients, once per
 * step on all its pairs (its in-batch contrastive loss couples them, so it is not cut). */
static xa_status pt_step(void *ctx, xa_trainer *t, float *loss, double *tokens) {
    pretrain_run *P = ctx;
    const xa_pretrain_opts *o = P->o;
    xa_encoder *enc = P->enc;
    xa_mlm_batch *batch = P->batch;
    const int64_t step = t->ts.step;
    xa_batch b = {batch->ids, NULL, batch->lens, o->B, o->T};
    if (tlm_step(o, step)) {
        b.T = xa_pair_tlm_batch(P->pd, P->data, step, batch);
    } else {
        for (int r = 0; r < o->B; r++) batch->lens[r] = o->T;
        xa_mlm_data_next(P->data, batch);
    }
    xa_status st = XA_STATUS_OK;
    const int pieces = xa_trainer_micro_count(P->micro, o->B), M = batch->m;
    int k0, k1; /* this rank's pieces */
    xa_trainer_micro_mine(P->micro, o->B, &k0, &k1);
    xa_trainer_micro_begin(P->micro, &t->ts.rng);
    double sum = 0;
    for (int k = k0; k < k1; k++) {
        xa_mlm_batch v;
        const int m = xa_trainer_micro_mlm(P->micro, batch, b.T, k, &v);
        xa_batch vb = {v.ids, NULL, v.lens, v.B, b.T};
        P->acts->row0 = k * P->micro->rows; /* the piece's rows of the batch's dropout masks */
        if ((st = xa_mlm_head_reserve(P->head, m))) return st;
        if ((st = xa_encoder_forward(enc, P->acts, &vb, NULL, 1, xa_trainer_micro_rng(P->micro, &t->ts.rng, k))))
            return st;
        *loss = xa_mlm_head_forward(P->head, xa_encoder_hidden(enc, P->acts, enc->cfg.L - 1), v.rows, v.targets, m,
                                    enc->t[XA_ENC_WTE], NULL, NULL);
        memset(P->dlast, 0, (size_t)v.B * b.T * enc->cfg.C * sizeof(float));
        xa_mlm_head_backward(P->head, P->dlast, enc->g[XA_ENC_WTE], enc->t[XA_ENC_WTE], NULL,
                             M > 0 ? (float)m / (float)M : 1.0f);
        xa_encoder_backward(enc, P->acts, &vb, NULL, P->dlast, NULL);
        sum += (double)*loss * m;
    }
    if (pieces > 1 && M > 0) *loss = (float)(sum / M); /* this rank's share of the batch's mean */
    if (P->n_al > 0 && k0 == 0) { /* once a step, on rank 0: on from where the batch's draws end */
        float al_loss = 0, al_acc = 0;
        st = align_pass(o, enc, P->acts, P->pd, step, P->al_ids, P->al_lens, P->al_pooled, P->al_dpooled,
                        P->al_scratch, P->dlast, &t->ts.rng, &al_loss, &al_acc);
        if (st) return st;
        xa_align_window_add(&P->al_win, al_loss, al_acc);
    }
    *tokens = (double)o->B * b.T;
    return XA_STATUS_OK;
}

static void pt_extra(void *ctx, const xa_trainer *t, char *buf, size_t n) {
    const pretrain_run *P = ctx;
    (void)t;
    if (P->n_al > 0) xa_align_window_extra(&P->al_win, buf, n);
}

/* Held-out MLM validation at its cadence: each language's loss and the pooled one in an "eval"
 * row (metric mlm_loss, split heldout, by_language). */
static xa_status pt_validate(pretrain_run *P, xa_trainer *t) {
    const xa_pretrain_opts *o = P->o;
    if (!P->heldout || o->eval_every <= 0 || (t->ts.step % o->eval_every && t->ts.step != o->steps)) return XA_STATUS_OK;
    if (!t->writer) return XA_STATUS_OK; /* rank 0 validates (it draws no random numbers) */
    char extra[1024];
    int64_t total = 0;
    double sum = 0;
    size_t k = (size_t)snprintf(extra, sizeof extra, "\"by_language\": {");
    int first = 1;
    for (int i = 0; i < o->n_heldout; i++) {
        if (P->heldout[i].n_blocks == 0) continue;
        int64_t n = 0;
        double s = 0;
        xa_status st = xa_trainer_mlm_heldout(P->enc, P->acts, P->head, NULL, &P->heldout[i], P->batch, P->micro,
                                              o->eval_batches > 0 ? o->eval_batches : 8, &n, &s);
        if (st) return st;
        total += n;
        sum += s;
        if (n && k < sizeof extra)
            k += (size_t)snprintf(extra + k, sizeof extra - k, "%s\"%s\": %.6f", first ? "" : ", ", o->heldout_names[i],
                                  s / (double)n);
        first = first && !n;
    }
    if (k < sizeof extra) k += (size_t)snprintf(extra + k, sizeof extra - k, "}, \"n_masked\": %" PRId64, total);
    P->val_loss = total ? sum / (double)total : NAN;
    xa_trainer_log_eval(t, "heldout", "mlm_loss", P->val_loss, k < sizeof extra ? extra : NULL);
    return XA_STATUS_OK;
}

/* After a written metrics window: the alignment means of that window start again; validation. */
static xa_status pt_after(void *ctx, xa_trainer *t, float loss, double lr, char *line, size_t n) {
    pretrain_run *P = ctx;
    xa_status st = pt_validate(P, t);
    if (st) return st;
    if (P->n_al > 0) xa_align_window_after(&P->al_win, t, loss, lr, line, n);
    if (!isnan(P->val_loss)) {
        size_t k = strlen(line);
        snprintf(line + k, n - k, " | val %.4f", P->val_loss);
    }
    return XA_STATUS_OK;
}

static void pt_position(void *ctx, xa_train_state *ts) {
    pretrain_run *P = ctx;
    xa_trainer_position_mlm(ts, P->data);
}

static xa_status pt_save(void *ctx, const char *dir) {
    pretrain_run *P = ctx;
    return xa_model_save(dir, P->enc, P->head, NULL);
}

static const xa_trainer_ops g_pretrain_ops = {pt_init, pt_load, pt_seek, pt_step, pt_extra, pt_after, pt_position,
                                              pt_save};

xa_status xa_pretrain(const xa_pretrain_opts *o, xa_pretrain_result *res) {
    xa_tok *tok = NULL; /* a SentencePiece model: pretraining trains and uses SentencePiece only */
    xa_mlm_data data;
    xa_mlm_batch batch;
    xa_encoder enc;
    xa_mlm_head head;
    xa_encoder_acts acts;
    xa_optim opt;
    xa_trainer tr;
    memset(&tr, 0, sizeof tr);
    memset(&data, 0, sizeof data);
    memset(&batch, 0, sizeof batch);
    memset(&enc, 0, sizeof enc);
    memset(&head, 0, sizeof head);
    memset(&acts, 0, sizeof acts);
    memset(&opt, 0, sizeof opt);
    memset(res, 0, sizeof *res);
    float *dlast = NULL;
    xa_pair_data pd;
    memset(&pd, 0, sizeof pd);
    int32_t *al_ids = NULL, *al_lens = NULL;
    float *al_pooled = NULL, *al_dpooled = NULL, *al_scratch = NULL;
    xa_mlm_data *heldout = NULL;
    xa_trainer_micro micro;
    memset(&micro, 0, sizeof micro);
    const int want_pairs = o->tlm_ratio > 0 || o->align_weight > 0;
    if (want_pairs && !(o->pairs && o->pairs[0])) {
        return xa_error_set(XA_STATUS_USAGE, "xa_pretrain", "a pair corpus (opts.pairs) for TLM or alignment",
                            "set pairs, or tlm_ratio and align_weight to 0", "tlm %g, align %g without pairs",
                            o->tlm_ratio, o->align_weight);
    }
    const int n_al = o->align_weight > 0 ? (o->align_pairs > 0 ? o->align_pairs : (o->B + 1) / 2) : 0;
    xa_pretrain_opts oo = *o;
    oo.align_pairs = n_al;
    if (!want_pairs) oo.pairs = NULL; /* pairs given but unused: not read */
    o = &oo;

    xa_spm *spm = NULL;
    xa_status st = xa_spm_load(&spm, o->tokenizer);
    if (!st) st = xa_tok_from_spm(&tok, spm, o->tokenizer);
    if (st) goto done;
    xa_encoder_config cfg = o->model;
    xa_trainer_apply_dropout(&cfg, &o->k);
    cfg.V = xa_tok_vocab_size(tok);
    cfg.pad_id = xa_tok_special_ids(tok).pad;
    if (cfg.arch == XA_ARCH_XLMR && cfg.P < o->T + cfg.pad_id + 1) cfg.P = o->T + cfg.pad_id + 1;
    st = xa_mlm_data_load(&data, tok, o->corpus, o->T, o->seed, o->max_docs);
    if (!st && o->whole_word_mask) st = xa_mlm_data_set_whole_word(&data, tok);
    if (!st && o->mlm_prob > 0) data.mask_prob = (float)o->mlm_prob;
    if (!st && o->pairs) {
        if (o->B > XA_PAIR_MAX_BATCH || n_al > XA_PAIR_MAX_BATCH / 2) {
            st = xa_error_set(XA_STATUS_USAGE, "xa_pretrain", "batch_size and align_pairs of at most 1024 / 512",
                              NULL, "batch_size %d, align_pairs %d", o->B, n_al);
        } else if (o->T < 6) {
            st = xa_error_set(XA_STATUS_USAGE, "xa_pretrain", "seq_len >= 6 with pairs", NULL, "seq_len %d", o->T);
        } else {
            st = xa_pair_data_load(&pd, tok, o->pairs, o->T / 2, o->pair_alpha, o->seed);
        }
        if (!st) {
            XA_LOG_INFO("pairs: %lld in %d languages from %s (tlm %.2f, align %.2f x %d pairs)",
                        (long long)pd.n, pd.n_langs, o->pairs, o->tlm_ratio, o->align_weight, n_al);
        }
    }
    /* activations for one micro-batch (or the alignment pass's 2 x align_pairs rows) */
    if (!st) st = xa_trainer_micro_init(&micro, o->B, o->k.grad_accum, o->T, 1, "xa_pretrain");
    const int rows = micro.rows > 2 * n_al ? micro.rows : 2 * n_al;
    if (!st) st = xa_mlm_batch_init(&batch, o->B, o->T);
    if (!st) st = xa_encoder_init(&enc, &cfg, 1);
    /* the head's buffers for the masked rows of a micro-batch, not its every position */
    if (!st) st = xa_mlm_head_init(&head, cfg.C, cfg.V, cfg.eps, xa_mlm_rows_bound((int64_t)micro.rows * o->T, data.mask_prob), 1);
    if (!st) st = xa_encoder_acts_init(&acts, &cfg, rows, o->T, xa_trainer_acts_mode(&o->k));
    if (!st) st = build_optim(&opt, &enc, &head, o->weight_decay, &o->k);
    if (!st && o->eval_every > 0 && o->n_heldout > 0) { /* validation texts, blocks of T */
        if (!(heldout = calloc((size_t)o->n_heldout, sizeof *heldout)))
            st = xa_error_set(XA_STATUS_NOMEM, "xa_pretrain", NULL, NULL, "out of memory");
        for (int i = 0; !st && i < o->n_heldout; i++) {
            st = xa_mlm_data_load(&heldout[i], tok, o->heldout[i], o->T, o->seed, 0);
            if (st == XA_STATUS_USAGE || st == XA_STATUS_NOT_FOUND) { /* too short, or missing: skipped */
                XA_LOG_WARN("pretrain: no held-out validation on %s: %s", o->heldout_names[i], xa_error_last()->what);
                xa_error_clear();
                xa_mlm_data_free(&heldout[i]);
                memset(&heldout[i], 0, sizeof heldout[i]);
                st = XA_STATUS_OK;
                continue;
            }
            if (!st) heldout[i].mask_prob = data.mask_prob;
            if (!st && o->whole_word_mask) st = xa_mlm_data_set_whole_word(&heldout[i], tok);
        }
    }
    if (st) goto done;
    dlast = xa_aligned_alloc((size_t)rows * o->T * cfg.C * sizeof(float), XA_ARENA_ALIGN);
    if (n_al > 0) {
        al_ids = malloc((size_t)2 * n_al * o->T * sizeof *al_ids);
        al_lens = malloc((size_t)2 * n_al * sizeof *al_lens);
        al_pooled = malloc((size_t)2 * n_al * cfg.C * sizeof *al_pooled);
        al_dpooled = malloc((size_t)2 * n_al * cfg.C * sizeof *al_dpooled);
        al_scratch = xa_aligned_alloc(xa_contrastive_scratch_bytes(n_al, cfg.C), XA_ARENA_ALIGN);
        if (!al_ids || !al_lens || !al_pooled || !al_dpooled || !al_scratch) {
            st = xa_error_set(XA_STATUS_NOMEM, "xa_pretrain", NULL, NULL, "out of memory");
            goto done;
        }
    }
    if (!dlast) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_pretrain", NULL, NULL, "out of memory");
        goto done;
    }

    pretrain_run P = {o, &enc, &acts, &head, &data, &batch, &pd, dlast, n_al, al_ids, al_lens, al_pooled,
                      al_dpooled, al_scratch, {0, 0, 0, 0, 0}, heldout, NAN, &micro};
    char identity[512];
    identity_of(o, &data, identity, sizeof identity);
    const int64_t window = o->log_every > 0 ? o->log_every : o->steps >= 100 ? 10 : (o->steps >= 10 ? o->steps / 10 : 1);
    const xa_trainer_opts to = {"pretrain", o->out_dir, o->metrics_path, identity, o->steps,
                                o->warmup >= 0 ? o->warmup : (int64_t)(0.06 * (double)o->steps), o->lr, o->clip,
                                o->ckpt_every, window, o->stop_after, o->resume, o->progress, "pretrain", &o->k};
    if ((st = xa_trainer_run(&tr, &to, &opt, &g_pretrain_ops, &P))) goto done;
    res->first_loss = tr.log.first;
    res->last_loss = tr.log.last;
    res->steps_done = tr.ts.step;
    res->seconds = tr.seconds;
    res->tokens_per_s = res->seconds > 0 ? tr.tokens / res->seconds : 0.0;
    res->last_align_loss = P.al_win.last_loss;
    res->last_align_acc = P.al_win.last_acc;
    if (tr.ts.step == o->steps) {
        char path[XA_PATH_MAX];
        if (xa_dist_rank() == 0) { /* rank 0 writes the base */
            st = xa_model_save(o->out_dir, &enc, &head, NULL);
            if (!st) st = xa_path_join(path, sizeof path, o->out_dir, "sentencepiece.bpe.model");
            if (!st) st = xa_file_copy(path, o->tokenizer);
        }
    }
    if (!st) st = xa_dist_barrier("xa_pretrain"); /* the base is on disk before any rank goes on */
done:
    xa_trainer_close(&tr);
    for (int i = 0; heldout && i < o->n_heldout; i++) xa_mlm_data_free(&heldout[i]);
    free(heldout);
    xa_aligned_free(dlast);
    xa_trainer_micro_free(&micro);
    xa_aligned_free(al_scratch);
    free(al_ids);
    free(al_lens);
    free(al_pooled);
    free(al_dpooled);
    xa_pair_data_free(&pd);
    xa_optim_free(&opt);
    xa_encoder_acts_free(&acts);
    xa_mlm_head_free(&head);
    xa_encoder_free(&enc);
    xa_mlm_batch_free(&batch);
    xa_mlm_data_free(&data);
    xa_tok_free(tok);
    return st;
}
