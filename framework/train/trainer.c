/* train/trainer: the training loop skeleton shared by pretraining, language adapters, task
 * adapters and fusion (trainer.h). One step: zero the gradients, the phase's forward and backward
 * (ops.step), the global-norm clip, AdamW at the linear schedule's rate, the metrics window, the
 * phase's evaluation (ops.after), the progress line, and the checkpoint (train/ckpt.h: built as
 * OUT/checkpoint.tmp and swapped in). Resuming reads the weights (ops.load), the optimizer state
 * and run state with the identity check, and the data position (ops.seek), so a resumed run
 * continues with the same batches, masks, dropout and moments as an uninterrupted one.
 * Does not: own the model or the data, or write a phase's final outputs (the caller does, from
 * t->ts after the run). */
#include "train/trainer.h"

#include <inttypes.h>
#include <string.h>

/* Recover and resume the checkpoint, or start fresh; open the metrics and the progress line. */
static xa_status start(xa_trainer *t, const xa_trainer_ops *ops, void *ctx) {
    const xa_trainer_opts *o = &t->o;
    xa_status st = xa_file_mkdirs(o->out_dir);
    if (!st) st = xa_path_join(t->ckpt, sizeof t->ckpt, o->out_dir, "checkpoint");
    if (!st) st = xa_path_join(t->tmp, sizeof t->tmp, o->out_dir, "checkpoint.tmp");
    if (!st) st = xa_ckpt_recover(t->ckpt);
    if (st) return st;
    t->ts = (xa_train_state){0, 0, 0, {0, 0}, -1, 0, 0};
    if (o->resume && xa_file_is_dir(t->ckpt)) {
        char p[XA_PATH_MAX];
        st = ops->load(ctx, t->ckpt);
        if (!st) st = xa_path_join(p, sizeof p, t->ckpt, "trainer_state.safetensors");
        if (!st) st = xa_ckpt_load_state(p, t->opt, &t->ts, o->identity);
        if (!st && ops->seek) st = ops->seek(ctx, p, t);
        if (st) return st;
        XA_LOG_INFO("%s: resuming at step %lld", o->label, (long long)t->ts.step);
    } else if ((st = ops->init(ctx, &t->ts))) {
        return st;
    }
    t->sched = (xa_sched){XA_SCHED_KIND_LINEAR, o->lr, o->warmup, o->steps, 0.5};
    if (o->metrics_path) {
        if (snprintf(t->metrics, sizeof t->metrics, "%s", o->metrics_path) >= (int)sizeof t->metrics)
            return xa_error_set(XA_STATUS_USAGE, o->metrics_path, NULL, NULL, "path too long");
    } else if ((st = xa_path_join(t->metrics, sizeof t->metrics, o->out_dir, "metrics.jsonl"))) {
        return st;
    }
    if ((st = xa_metrics_open(&t->mf, t->metrics, t->ts.step > 0))) return st;
    xa_progress_init(&t->prog, o->progress, o->label, "tok", t->ts.step, o->steps);
    xa_loss_log_init(&t->log, t->mf, o->log_every);
    return XA_STATUS_OK;
}

static xa_status checkpoint(xa_trainer *t, const xa_trainer_ops *ops, void *ctx) {
    ops->position(ctx, &t->ts);
    xa_status st = xa_file_remove_tree(t->tmp);
    if (!st) st = ops->save(ctx, t->tmp);
    if (!st) st = xa_ckpt_commit(t->tmp, t->ckpt, t->opt, &t->ts, t->o.identity, t->metrics);
    return st;
}

/* One optimizer step (or none at the end of an epoch); *end when the run stops here. */
static xa_status one_step(xa_trainer *t, const xa_trainer_ops *ops, void *ctx, int *end) {
    const xa_trainer_opts *o = &t->o;
    float loss = 0;
    double tokens = 0;
    xa_optim_zero_grad(t->opt);
    xa_status st = ops->step(ctx, t, &loss, &tokens);
    if (st || tokens == 0) return st;
    double gnorm = o->clip > 0 ? xa_optim_clip_grad_norm(t->opt, o->clip) : xa_optim_grad_norm(t->opt);
    double lr = xa_sched_lr(&t->sched, t->ts.step);
    xa_optim_step(t->opt, lr);
    const int64_t step = ++t->ts.step;
    t->done_here++;
    t->tokens += tokens;
    char extra[192] = "", line[160];
    if (ops->extra) ops->extra(ctx, t, extra, sizeof extra);
    xa_loss_log_step(&t->log, step, loss, lr, gnorm, tokens, step == o->steps, extra[0] ? extra : NULL);
    snprintf(line, sizeof line, "loss %.4f | lr %.2e", loss, lr);
    if (ops->after && (st = ops->after(ctx, t, loss, lr, line, sizeof line))) return st;
    xa_progress_update(&t->prog, step, tokens, "%s", line);
    const int paused = o->stop_after > 0 && t->done_here >= o->stop_after;
    if (step == o->steps || paused || t->stop || (o->ckpt_every > 0 && step % o->ckpt_every == 0))
        st = checkpoint(t, ops, ctx);
    *end = paused || t->stop;
    return st;
}

xa_status xa_trainer_run(xa_trainer *t, const xa_trainer_opts *o, xa_optim *opt, const xa_trainer_ops *ops,
                         void *ctx) {
    memset(t, 0, sizeof *t);
    t->o = *o;
    t->opt = opt;
    xa_status st = start(t, ops, ctx);
    int end = 0;
    while (!st && !end && !t->stop && t->ts.step < o->steps) st = one_step(t, ops, ctx, &end);
    if (st) return st;
    xa_progress_finish(&t->prog);
    t->seconds = xa_time_now() - t->log.t0;
    return XA_STATUS_OK;
}

void xa_trainer_close(xa_trainer *t) {
    if (t->mf) fclose(t->mf);
    t->mf = NULL;
}

xa_status xa_trainer_seek_mlm(const xa_train_state *ts, xa_mlm_data *d, const char *path) {
    if (ts->pos < 0 || ts->pos > d->n_blocks || ts->epoch < 0)
        return xa_error_set(XA_STATUS_FORMAT, path, "a data position within the corpus", "delete the checkpoint",
                            "position %" PRId64 " of %" PRId64 " blocks", ts->pos, d->n_blocks);
    xa_mlm_data_seek(d, ts->epoch, ts->pos);
    return XA_STATUS_OK;
}

void xa_trainer_position_mlm(xa_train_state *ts, const xa_mlm_data *d) {
    ts->epoch = d->epoch;
    ts->pos = d->pos;
}

/* ---- whole-encoder training ---------------------------------------------------------------------- */

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

xa_status xa_trainer_add_encoder_groups(xa_optim *opt, xa_encoder *enc, double wd) {
    XA_ASSERT(enc->grads);
    xa_status st = XA_STATUS_OK;
    char name[32];
    for (int i = 0; i < XA_ENC_N_TENSORS && !st; i++) {
        snprintf(name, sizeof name, "encoder.%d", i);
        st = xa_optim_add_group(opt, name, enc->t[i], enc->g[i], enc->numel[i], 1.0, no_decay(i) ? 0.0 : wd, 1, NULL);
    }
    return st;
}

xa_status xa_trainer_load_encoder(xa_encoder *enc, const char *dir) {
    xa_encoder loaded;
    xa_status st = xa_encoder_load(&loaded, NULL, dir, 0);
    if (st) return st;
    if (loaded.n_params != enc->n_params || loaded.cfg.C != enc->cfg.C || loaded.cfg.L != enc->cfg.L) {
        xa_encoder_free(&loaded);
        return xa_error_set(XA_STATUS_CONFIG, dir, "the architecture of this run",
                            "delete the checkpoint or use the options it was made with",
                            "the checkpoint holds another architecture");
    }
    memcpy(enc->params, loaded.params, enc->n_params * sizeof(float));
    xa_encoder_free(&loaded);
    return XA_STATUS_OK;
}

void xa_align_window_add(xa_align_window *w, float loss, float acc) {
    w->sum += loss;
    w->acc_sum += acc;
    w->n++;
}

void xa_align_window_extra(const xa_align_window *w, char *buf, size_t n) {
    if (w->n > 0)
        snprintf(buf, n, "\"align_loss\": %.5f, \"align_acc\": %.4f", w->sum / (double)w->n,
                 w->acc_sum / (double)w->n);
}

void xa_align_window_after(xa_align_window *w, const xa_trainer *t, float loss, double lr, char *line, size_t n) {
    if (t->log.n == 0) {
        w->last_loss = w->sum / (double)w->n;
        w->last_acc = w->acc_sum / (double)w->n;
        w->sum = w->acc_sum = 0;
        w->n = 0;
    }
    snprintf(line, n, "loss %.4f | align %.3f | lr %.2e", loss, w->last_loss, lr);
}
