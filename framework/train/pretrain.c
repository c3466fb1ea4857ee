/* train/pretrain: MLM pretraining of a whole encoder (all parameters train), resumable.
 * Loop per step: next masked batch -> encoder forward (dropout on) -> MLM head on the masked rows
 * -> backward -> clip -> AdamW with linear warmup and decay. Weight decay skips biases and
 * LayerNorms (as HF Trainer). See train.h for the checkpoint format and the resume guarantee. */
#include "train/train.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "optim/optim.h"
#include "tokenizer/spm.h"


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
    return o;
}

static int no_decay(int enc_tensor) {
    switch (enc_tensor) {
    case XA_ENC_LNE_W: case XA_ENC_LNE_B: case XA_ENC_QB: case XA_ENC_KB: case XA_ENC_VB:
    case XA_ENC_AOB: case XA_ENC_LN1_W: case XA_ENC_LN1_B: case XA_ENC_FCB: case XA_ENC_FOB:
    case XA_ENC_LN2_W: case XA_ENC_LN2_B:
        return 1;
    default:
        return 0;
    }
}

/* One optimizer group per tensor (so weight decay can differ), views into the flat buffers. */
static xa_status build_optim(xa_optim *opt, xa_encoder *enc, xa_mlm_head *head, double wd) {
    xa_status st = xa_optim_init(opt, 0.9, 0.999, 1e-8);
    char name[128];
    for (int i = 0; i < XA_ENC_N_TENSORS && !st; i++) {
        int64_t shape[2];
        char tn[128];
        xa_encoder_tensor_name(enc, i, 0, tn, sizeof tn, shape);
        snprintf(name, sizeof name, "encoder.%d", i);
        st = xa_optim_add_group(opt, name, enc->t[i], enc->g[i], enc->numel[i], 1.0,
                                no_decay(i) ? 0.0 : wd, 1, NULL);
    }
    for (int i = 0; i < XA_MLM_N_TENSORS && !st; i++) {
        snprintf(name, sizeof name, "mlm_head.%d", i);
        st = xa_optim_add_group(opt, name, head->t[i], head->g[i], head->numel[i], 1.0,
                                i == XA_MLM_DW ? wd : 0.0, 1, NULL);
    }
    return st;
}

static xa_status copy_file(const char *dst, const char *src) {
    char *data = NULL;
    size_t n = 0;
    xa_status st = xa_file_read(&data, &n, src, 0);
    if (!st) st = xa_file_write_atomic(dst, data, n);
    free(data);
    return st;
}

static void remove_tree(const char *dir) {
    static const char *const files[] = {"config.json", "model.safetensors", "trainer_state.safetensors"};
    char p[XA_PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!xa_path_join(p, sizeof p, dir, files[i])) unlink(p);
    }
    rmdir(dir);
}

typedef struct run_state {
    int64_t step, epoch, pos;
    xa_rng rng;
} run_state;

/* Write OUT/checkpoint.tmp completely, then swap it in for OUT/checkpoint. */
static xa_status save_checkpoint(const xa_pretrain_opts *o, const xa_encoder *enc,
                                 const xa_mlm_head *head, const xa_optim *opt, const run_state *rs) {
    char tmp[XA_PATH_MAX], fin[XA_PATH_MAX], old[XA_PATH_MAX], p[XA_PATH_MAX];
    xa_status st = xa_path_join(tmp, sizeof tmp, o->out_dir, "checkpoint.tmp");
    if (!st) st = xa_path_join(fin, sizeof fin, o->out_dir, "checkpoint");
    if (!st) st = xa_path_join(old, sizeof old, o->out_dir, "checkpoint.old");
    if (st) return st;
    remove_tree(tmp);
    st = xa_model_save(tmp, enc, head, NULL);
    if (st) return st;
    size_t n = 2 * opt->n_groups;
    xa_st_entry *e = calloc(n, sizeof *e);
    char (*names)[128] = calloc(n, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return xa_error_set(XA_STATUS_NOMEM, "save_checkpoint", NULL, NULL, "out of memory");
    }
    for (size_t g = 0; g < opt->n_groups; g++) {
        for (int k = 0; k < 2; k++) {
            xa_st_entry *x = &e[2 * g + (size_t)k];
            snprintf(names[2 * g + (size_t)k], sizeof names[0], "%s.%s", k ? "v" : "m", opt->groups[g].name);
            x->name = names[2 * g + (size_t)k];
            x->dtype = XA_DTYPE_F32;
            x->n_dims = 1;
            x->shape[0] = (int64_t)opt->groups[g].n;
            x->f32 = k ? opt->groups[g].v : opt->groups[g].m;
        }
    }
    char v_step[32], v_epoch[32], v_pos[32], v_state[32], v_inc[32], v_gstep[32], v_B[16], v_T[16], v_seed[32];
    snprintf(v_step, sizeof v_step, "%" PRId64, rs->step);
    snprintf(v_epoch, sizeof v_epoch, "%" PRId64, rs->epoch);
    snprintf(v_pos, sizeof v_pos, "%" PRId64, rs->pos);
    snprintf(v_state, sizeof v_state, "%" PRIu64, rs->rng.state);
    snprintf(v_inc, sizeof v_inc, "%" PRIu64, rs->rng.inc);
    snprintf(v_gstep, sizeof v_gstep, "%" PRId64, opt->n_groups ? opt->groups[0].step : 0);
    snprintf(v_B, sizeof v_B, "%d", o->B);
    snprintf(v_T, sizeof v_T, "%d", o->T);
    snprintf(v_seed, sizeof v_seed, "%" PRIu64, o->seed);
    xa_st_kv meta[] = {{"step", v_step},   {"epoch", v_epoch}, {"pos", v_pos},
                       {"rng_state", v_state}, {"rng_inc", v_inc}, {"adam_step", v_gstep},
                       {"batch_size", v_B}, {"seq_len", v_T}, {"seed", v_seed}};
    st = xa_path_join(p, sizeof p, tmp, "trainer_state.safetensors");
    if (!st) st = xa_st_write(p, e, n, meta, sizeof meta / sizeof meta[0]);
    free(e);
    free(names);
    if (st) return st;
    /* Swap: the old checkpoint stays complete until the new one is in place. */
    remove_tree(old);
    if (xa_file_is_dir(fin) && rename(fin, old) != 0) {
        return xa_error_set(XA_STATUS_IO, fin, NULL, NULL, "cannot move the old checkpoint aside: %s", strerror(errno));
    }
    if (rename(tmp, fin) != 0) {
        return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot move the checkpoint into place: %s", strerror(errno));
    }
    remove_tree(old);
    return XA_STATUS_OK;
}

static xa_status meta_i64(const xa_st_file *f, const char *key, int64_t *out) {
    const char *v = xa_st_metadata_get(f, key);
    char *end = NULL;
    if (v) {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!errno && end != v && *end == '\0') {
            *out = x;
            return XA_STATUS_OK;
        }
    }
    return xa_error_set(XA_STATUS_FORMAT, xa_st_path(f), "an integer", "the checkpoint is damaged: delete it to start over",
                        "metadata '%s' is %s", key, v ? v : "missing");
}

static xa_status load_checkpoint(const xa_pretrain_opts *o, const char *dir, xa_encoder *enc,
                                 xa_mlm_head *head, xa_optim *opt, run_state *rs) {
    char p[XA_PATH_MAX];
    xa_encoder loaded;
    xa_status st = xa_encoder_load(&loaded, NULL, dir, 1);
    if (st) return st;
    if (loaded.n_params != enc->n_params || loaded.cfg.C != enc->cfg.C || loaded.cfg.L != enc->cfg.L) {
        xa_encoder_free(&loaded);
        return xa_error_set(XA_STATUS_CONFIG, dir, "the architecture of this run",
                            "delete the checkpoint or use the options it was made with",
                            "the checkpoint holds another architecture");
    }
    memcpy(enc->params, loaded.params, enc->n_params * sizeof(float));
    xa_encoder_free(&loaded);
    st = xa_mlm_head_load(head, enc->cfg.arch, dir);
    if (!st) st = xa_path_join(p, sizeof p, dir, "trainer_state.safetensors");
    xa_st_file *f = NULL;
    if (!st) st = xa_st_open(&f, p);
    if (st) return st;
    int64_t B = 0, T = 0, seed = 0, adam_step = 0;
    st = meta_i64(f, "step", &rs->step);
    if (!st) st = meta_i64(f, "epoch", &rs->epoch);
    if (!st) st = meta_i64(f, "pos", &rs->pos);
    if (!st) st = meta_i64(f, "batch_size", &B);
    if (!st) st = meta_i64(f, "seq_len", &T);
    if (!st) st = meta_i64(f, "seed", &seed);
    if (!st) st = meta_i64(f, "adam_step", &adam_step);
    if (!st) {
        /* 64-bit unsigned state words: parse as unsigned. */
        const char *s1 = xa_st_metadata_get(f, "rng_state"), *s2 = xa_st_metadata_get(f, "rng_inc");
        if (!s1 || !s2) {
            st = xa_error_set(XA_STATUS_FORMAT, p, "rng_state and rng_inc", NULL, "RNG state missing");
        } else {
            rs->rng.state = strtoull(s1, NULL, 10);
            rs->rng.inc = strtoull(s2, NULL, 10);
        }
    }
    if (!st && (B != o->B || T != o->T || (uint64_t)seed != o->seed)) {
        st = xa_error_set(XA_STATUS_CONFIG, p, "the batch size, sequence length and seed of the checkpoint",
                          "resume with the options the run started with, or delete the checkpoint",
                          "checkpoint has batch %lld, length %lld, seed %lld; this run %d, %d, %llu",
                          (long long)B, (long long)T, (long long)seed, o->B, o->T, (unsigned long long)o->seed);
    }
    for (size_t g = 0; g < opt->n_groups && !st; g++) {
        char name[160];
        int64_t shape[1] = {(int64_t)opt->groups[g].n};
        snprintf(name, sizeof name, "m.%s", opt->groups[g].name);
        st = xa_st_read_f32(f, name, shape, 1, opt->groups[g].m);
        snprintf(name, sizeof name, "v.%s", opt->groups[g].name);
        if (!st) st = xa_st_read_f32(f, name, shape, 1, opt->groups[g].v);
        opt->groups[g].step = adam_step;
    }
    xa_st_close(f);
    return st;
}

static void write_metrics(FILE *mf, int64_t step, double loss, double lr, double gnorm, double tok_s) {
    if (!mf) return;
    fprintf(mf, "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens_per_s\": %.1f}\n",
            (long long)step, loss, lr, gnorm, tok_s);
    fflush(mf);
}

xa_status xa_pretrain(const xa_pretrain_opts *o, xa_pretrain_result *res) {
    xa_spm *spm = NULL;
    xa_mlm_data data;
    xa_mlm_batch batch;
    xa_encoder enc;
    xa_mlm_head head;
    xa_encoder_acts acts;
    xa_optim opt;
    FILE *mf = NULL;
    char path[XA_PATH_MAX], ckpt[XA_PATH_MAX];
    memset(&data, 0, sizeof data);
    memset(&batch, 0, sizeof batch);
    memset(&enc, 0, sizeof enc);
    memset(&head, 0, sizeof head);
    memset(&acts, 0, sizeof acts);
    memset(&opt, 0, sizeof opt);
    memset(res, 0, sizeof *res);
    float *dlast = NULL;

    xa_status st = xa_spm_load(&spm, o->tokenizer);
    if (!st) st = xa_spm_set_ids(spm, XA_SPM_IDS_XLMR);
    if (st) goto done;
    xa_encoder_config cfg = o->model;
    cfg.V = xa_spm_vocab_size(spm);
    cfg.pad_id = xa_spm_special_ids(spm).pad;
    if (cfg.arch == XA_ARCH_XLMR && cfg.P < o->T + cfg.pad_id + 1) cfg.P = o->T + cfg.pad_id + 1;
    st = xa_mlm_data_load(&data, spm, o->corpus, o->T, o->seed, o->max_docs);
    if (!st) st = xa_mlm_batch_init(&batch, o->B, o->T);
    if (!st) st = xa_encoder_init(&enc, &cfg, 1);
    if (!st) st = xa_mlm_head_init(&head, cfg.C, cfg.V, cfg.eps, o->B * o->T, 1);
    if (!st) st = xa_encoder_acts_init(&acts, &cfg, o->B, o->T, 1);
    if (!st) st = build_optim(&opt, &enc, &head, o->weight_decay);
    if (st) goto done;
    dlast = xa_aligned_alloc((size_t)o->B * o->T * cfg.C * sizeof(float), XA_ARENA_ALIGN);
    if (!dlast) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_pretrain", NULL, NULL, "out of memory");
        goto done;
    }

    run_state rs = {0, 0, 0, {0, 0}};
    st = xa_path_join(ckpt, sizeof ckpt, o->out_dir, "checkpoint");
    if (st) goto done;
    if (o->resume && xa_file_is_dir(ckpt)) {
        st = load_checkpoint(o, ckpt, &enc, &head, &opt, &rs);
        if (st) goto done;
        xa_mlm_data_seek(&data, rs.epoch, rs.pos);
        XA_LOG_INFO("resuming from %s at step %lld", ckpt, (long long)rs.step);
    } else {
        xa_rng init;
        xa_rng_seed(&init, o->seed, 1);
        xa_encoder_init_weights(&enc, &init, 0.02f);
        xa_mlm_head_init_weights(&head, &init, 0.02f);
        xa_rng_seed(&rs.rng, o->seed, 2);
    }
    xa_sched sched = {XA_SCHED_KIND_LINEAR, o->lr,
                      o->warmup >= 0 ? o->warmup : (int64_t)(0.06 * (double)o->steps), o->steps, 0.5};

    /* The output directory, the tokenizer beside the model, and the metrics. */
    if ((st = xa_file_mkdirs(o->out_dir))) goto done;
    if (o->metrics_path) {
        snprintf(path, sizeof path, "%s", o->metrics_path);
    } else if ((st = xa_path_join(path, sizeof path, o->out_dir, "metrics.jsonl"))) {
        goto done;
    }
    mf = fopen(path, rs.step > 0 ? "a" : "w");
    if (!mf) {
        st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot write metrics: %s", strerror(errno));
        goto done;
    }

    xa_progress prog;
    xa_progress_init(&prog, o->progress, "pretrain", "tok", rs.step, o->steps);
    const size_t NC = (size_t)o->B * o->T * cfg.C;
    const int64_t window = o->steps >= 100 ? 10 : (o->steps >= 10 ? o->steps / 10 : 1);
    double win_sum = 0.0, t0 = xa_time_now();
    int64_t win_n = 0, done_here = 0, first_logged = 0;
    xa_batch b = {batch.ids, NULL, batch.lens, o->B, o->T};
    while (rs.step < o->steps) {
        xa_optim_zero_grad(&opt);
        xa_mlm_data_next(&data, &batch);
        st = xa_encoder_forward(&enc, &acts, &b, NULL, 1, &rs.rng);
        if (st) goto done;
        float loss = xa_mlm_head_forward(&head, xa_encoder_hidden(&enc, &acts, cfg.L - 1), batch.rows,
                                         batch.targets, batch.m, enc.t[XA_ENC_WTE], NULL, NULL);
        memset(dlast, 0, NC * sizeof(float));
        xa_mlm_head_backward(&head, dlast, enc.g[XA_ENC_WTE], enc.t[XA_ENC_WTE], NULL, 1.0f);
        xa_encoder_backward(&enc, &acts, &b, NULL, dlast, NULL);
        double gnorm = o->clip > 0 ? xa_optim_clip_grad_norm(&opt, o->clip) : xa_optim_grad_norm(&opt);
        double lr = xa_sched_lr(&sched, rs.step);
        xa_optim_step(&opt, lr);
        rs.step++;
        done_here++;
        win_sum += loss;
        win_n++;
        if (win_n == window || rs.step == o->steps) {
            double mean = win_sum / (double)win_n;
            if (!first_logged) {
                res->first_loss = mean;
                first_logged = 1;
            }
            res->last_loss = mean;
            double el = xa_time_now() - t0;
            write_metrics(mf, rs.step, mean, lr, gnorm, el > 0 ? (double)done_here * o->B * o->T / el : 0.0);
            win_sum = 0.0;
            win_n = 0;
        }
        xa_progress_update(&prog, rs.step, (double)o->B * o->T, "loss %.4f | lr %.2e", loss, lr);
        int stop = o->stop_after > 0 && done_here >= o->stop_after;
        if (rs.step == o->steps || stop || (o->ckpt_every > 0 && rs.step % o->ckpt_every == 0)) {
            rs.epoch = data.epoch;
            rs.pos = data.pos;
            st = save_checkpoint(o, &enc, &head, &opt, &rs);
            if (st) goto done;
        }
        if (stop) break;
    }
    xa_progress_finish(&prog);
    res->steps_done = rs.step;
    res->seconds = xa_time_now() - t0;
    res->tokens_per_s = res->seconds > 0 ? (double)done_here * o->B * o->T / res->seconds : 0.0;
    if (rs.step == o->steps) {
        st = xa_model_save(o->out_dir, &enc, &head, NULL);
        if (!st) st = xa_path_join(path, sizeof path, o->out_dir, "sentencepiece.bpe.model");
        if (!st) st = copy_file(path, o->tokenizer);
    }
done:
    if (mf) fclose(mf);
    xa_aligned_free(dlast);
    xa_optim_free(&opt);
    xa_encoder_acts_free(&acts);
    xa_mlm_head_free(&head);
    xa_encoder_free(&enc);
    xa_mlm_batch_free(&batch);
    xa_mlm_data_free(&data);
    xa_spm_free(spm);
    return st;
}
