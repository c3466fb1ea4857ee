/* train/trainer: the training loop skeleton shared by pretraining, language adapters, task
 * adapters and fusion (trainer.h). One step: zero the gradients, the phase's forward and backward
 * (ops.step), the global-norm clip, AdamW at the schedule's rate (lr_scheduler), the metrics
 * window, the phase's evaluation (ops.after), the progress line, and the checkpoint (train/ckpt.h:
 * built as OUT/checkpoint.tmp and swapped in; with save_total_limit the previous one is kept as
 * checkpoint-<step>). Resuming reads the weights (ops.load), the optimizer state and run state with
 * the identity check, and the data position (ops.seek), so a resumed run continues with the same
 * batches, masks, dropout and moments as an uninterrupted one; its metrics rows after the
 * checkpoint are dropped first. Every run appends to train.log and, at the end of each call that
 * stepped, draws metrics.svg (eval/plot.h).
 * Also here: what several phases share (the optimizer from the knobs, the knobs' identity items,
 * HF-style weight-decay exclusion by tensor name, the held-out MLM loss, the encoder groups).
 * Does not: own the model or the data, or write a phase's final outputs (the caller does, from
 * t->ts after the run). */
#include "train/trainer.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/plot.h"
#include "hub/hub.h"
#include "train/dist.h"

#define SMOOTH_BETA 0.95 /* the progress line's loss: about the last 20 steps */

xa_train_knobs xa_train_knobs_default(void) {
    const xa_train_knobs k = {.sched = XA_SCHED_KIND_LINEAR,
                              .adam_beta1 = 0.9,
                              .adam_beta2 = 0.999,
                              .adam_epsilon = 1e-8,
                              .hidden_dropout = -1.0,
                              .attention_dropout = -1.0,
                              .weight_decay_all = 1,
                              .save_total_limit = 1,
                              .precision = XA_PRECISION_FP32,
                              .grad_accum = 1,
                              .gradient_checkpointing = 0};
    return k;
}

static xa_train_knobs knobs_of(const xa_trainer *t) {
    return t->o.knobs ? *t->o.knobs : xa_train_knobs_default();
}

/* A line of train.log: a UTC timestamp, then the text. */
static void log_line(xa_trainer *t, const char *fmt, ...) XA_PRINTF(2, 3);
static void log_line(xa_trainer *t, const char *fmt, ...) {
    if (!t->logf) return;
    char when[32];
    xa_time_format(xa_time_wall(), when, sizeof when);
    fprintf(t->logf, "%s ", when);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(t->logf, fmt, ap);
    va_end(ap);
    fputc('\n', t->logf);
    fflush(t->logf);
}

/* The directory of path (its metrics file) joined with name. */
static xa_status beside(char *out, size_t n, const char *path, const char *name) {
    char dir[XA_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".") >= (int)sizeof dir)
        return xa_error_set(XA_STATUS_USAGE, path, NULL, NULL, "path too long");
    return xa_path_join(out, n, dir[0] ? dir : "/", name);
}

/* The SVG beside the metrics file: NAME.jsonl -> NAME.svg. */
static xa_status svg_path(char *out, size_t n, const char *metrics) {
    size_t len = strlen(metrics);
    const int jl = len > 6 && !strcmp(metrics + len - 6, ".jsonl");
    if (snprintf(out, n, "%.*s.svg", (int)(jl ? len - 6 : len), metrics) >= (int)n)
        return xa_error_set(XA_STATUS_USAGE, metrics, NULL, NULL, "path too long");
    return XA_STATUS_OK;
}

/* Recover and resume the checkpoint, or start fresh; open the metrics, train.log and the progress
 * line. */
static xa_status start(xa_trainer *t, const xa_trainer_ops *ops, void *ctx) {
    const xa_trainer_opts *o = &t->o;
    xa_status st = xa_file_mkdirs(o->out_dir);
    if (!st) st = xa_path_join(t->ckpt, sizeof t->ckpt, o->out_dir, "checkpoint");
    if (!st) st = xa_path_join(t->tmp, sizeof t->tmp, o->out_dir, "checkpoint.tmp");
    if (!st && t->writer) st = xa_ckpt_recover(t->ckpt);
    if (!st) st = xa_dist_barrier(o->label); /* the other ranks read what rank 0 recovered */
    if (st) return st;
    t->ts = (xa_train_state){0, 0, 0, {0, 0}, -1, 0, 0};
    char state[XA_PATH_MAX] = "";
    if (o->resume && xa_file_is_dir(t->ckpt)) {
        st = ops->load(ctx, t->ckpt);
        if (!st) st = xa_path_join(state, sizeof state, t->ckpt, "trainer_state.safetensors");
        if (!st) st = xa_ckpt_load_state(state, t->opt, &t->ts, o->identity);
        if (!st && ops->seek) st = ops->seek(ctx, state, t);
        if (st) return st;
        XA_LOG_INFO("%s: resuming at step %lld", o->label, (long long)t->ts.step);
        t->last_ckpt = t->ts.step;
    } else if ((st = ops->init(ctx, &t->ts))) {
        return st;
    }
    const xa_train_knobs k = knobs_of(t);
    t->sched = (xa_sched){k.sched, o->lr, o->warmup, o->steps, 0.5};
    if (o->metrics_path) {
        if (snprintf(t->metrics, sizeof t->metrics, "%s", o->metrics_path) >= (int)sizeof t->metrics)
            return xa_error_set(XA_STATUS_USAGE, o->metrics_path, NULL, NULL, "path too long");
    } else if ((st = xa_path_join(t->metrics, sizeof t->metrics, o->out_dir, "metrics.jsonl"))) {
        return st;
    }
    char logp[XA_PATH_MAX];
    if ((st = beside(logp, sizeof logp, t->metrics, "train.log"))) return st;
    if (t->writer) { /* ranks other than 0 write no files: metrics and the log are rank 0's */
        t->logf = fopen(logp, "a");
        if (!t->logf) XA_LOG_WARN("%s: cannot write %s; the run goes on without it", o->label, logp);
        xa_log_set_file(t->logf);
        if ((st = xa_metrics_open(&t->mf, t->metrics, t->ts.step, state[0] ? state : NULL))) return st;
    }
    if (t->ts.step > 0)
        log_line(t, "=== %s: resuming at step %lld of %lld (%s)", o->label, (long long)t->ts.step, (long long)o->steps,
                 o->identity);
    else
        log_line(t, "=== %s: starting, %lld steps, lr %g, %s schedule, %s products (%s)", o->label,
                 (long long)o->steps, o->lr, xa_sched_kind_name(k.sched), xa_precision_name(xa_gemm_precision()),
                 o->identity);
    if (k.gradient_checkpointing)
        log_line(t, "%s: gradient checkpointing: each layer's forward is recomputed in backward "
                 "(less memory, one more forward a step; the same results)", o->label);
    if (xa_dist_size() > 1 && t->writer)
        log_line(t, "%s: data-parallel over %d ranks (each runs its share of every global batch)", o->label,
                 xa_dist_size());
    xa_progress_init(&t->prog, o->progress, o->label, "tok", t->ts.step, o->steps);
    xa_loss_log_init(&t->log, t->mf, o->log_every);
    t->log.phase = o->phase ? o->phase : o->label;
    return XA_STATUS_OK;
}

/* The checkpoint-<step> directories of OUT (the history), oldest first, beyond `keep` removed. */
static void prune_history(const xa_trainer *t, int keep) {
    DIR *d = opendir(t->o.out_dir);
    if (!d) return;
    int64_t steps[256];
    int n = 0, more = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long long s;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) != 1 || s < 0) continue;
        if (n < 256) steps[n++] = (int64_t)s; else more = 1;
    }
    closedir(d);
    if (more) XA_LOG_WARN("%s: over 256 checkpoint-<step> directories; only 256 are considered", t->o.out_dir);
    for (int i = 1; i < n; i++) /* few entries: insertion sort */
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            int64_t x = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = x;
        }
    for (int i = 0; i < n - keep; i++) {
        char name[64], p[XA_PATH_MAX];
        snprintf(name, sizeof name, "checkpoint-%" PRId64, steps[i]);
        if (!xa_path_join(p, sizeof p, t->o.out_dir, name) && xa_file_remove_tree(p)) {
            XA_LOG_WARN("%s", xa_error_last()->what);
            xa_error_clear();
        }
    }
}

static xa_status checkpoint(xa_trainer *t, const xa_trainer_ops *ops, void *ctx) {
    const int limit = knobs_of(t).save_total_limit;
    char keep[XA_PATH_MAX];
    const char *kp = NULL;
    ops->position(ctx, &t->ts);
    if (!t->writer) { /* rank 0 writes the checkpoint; the others keep its step */
        t->last_ckpt = t->ts.step;
        return XA_STATUS_OK;
    }
    xa_status st = xa_file_remove_tree(t->tmp);
    if (!st) st = ops->save(ctx, t->tmp);
    if (st) return st;
    if (t->last_ckpt == 0) {
        prune_history(t, 0); /* a fresh run's first checkpoint: any history is another run's */
    } else if (limit != 1) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%" PRId64, t->last_ckpt);
        if ((st = xa_path_join(keep, sizeof keep, t->o.out_dir, name))) return st;
        kp = keep;
    }
    st = xa_ckpt_commit(t->tmp, t->ckpt, t->opt, &t->ts, t->o.identity, t->metrics, kp);
    if (st) return st;
    t->last_ckpt = t->ts.step;
    if (limit >= 1) prune_history(t, limit - 1);
    return XA_STATUS_OK;
}

/* Data-parallel runs: the ranks' gradients of every trainable group and their loss shares, summed
 * in one flat allreduce (every rank then holds the global batch's gradient and mean loss, and
 * takes the same clip and AdamW step), with rank 0's step generator carried along. */
static xa_status reduce(xa_trainer *t, float *loss) {
    const double t0 = xa_time_now();
    size_t off = 0;
    for (size_t g = 0; g < t->opt->n_groups; g++) {
        const xa_param_group *pg = &t->opt->groups[g];
        if (!pg->trainable || !pg->grads) continue;
        memcpy(t->red + off, pg->grads, pg->n * sizeof(float));
        off += pg->n;
    }
    t->red[off++] = *loss;
    /* rank 0's generator in 16-bit pieces (exact in a float, and so in a sum with the others'
     * zeros): every rank goes on from where the global batch's draws end, which only rank 0
     * knows when it alone ran the once-a-step alignment pass or the others ran no piece */
    const uint64_t words[2] = {t->ts.rng.state, t->ts.rng.inc};
    for (int w = 0; w < 2; w++)
        for (int j = 0; j < 4; j++) t->red[off++] = t->writer ? (float)((words[w] >> (16 * j)) & 0xffffu) : 0.0f;
    XA_ASSERT(off == t->n_red);
    xa_status st = xa_dist_allreduce_sum(t->red, t->n_red, t->o.label);
    if (st) return st;
    off = 0;
    for (size_t g = 0; g < t->opt->n_groups; g++) {
        xa_param_group *pg = &t->opt->groups[g];
        if (!pg->trainable || !pg->grads) continue;
        memcpy(pg->grads, t->red + off, pg->n * sizeof(float));
        off += pg->n;
    }
    *loss = t->red[off++];
    uint64_t got[2] = {0, 0};
    for (int w = 0; w < 2; w++)
        for (int j = 0; j < 4; j++) got[w] |= (uint64_t)t->red[off++] << (16 * j);
    t->ts.rng.state = got[0];
    t->ts.rng.inc = got[1];
    t->red_seconds += xa_time_now() - t0;
    return XA_STATUS_OK;
}

/* One optimizer step (or none at the end of an epoch); *end when the run stops here. */
static xa_status one_step(xa_trainer *t, const xa_trainer_ops *ops, void *ctx, int *end) {
    const xa_trainer_opts *o = &t->o;
    float loss = 0;
    double tokens = 0;
    xa_optim_zero_grad(t->opt);
    xa_status st = ops->step(ctx, t, &loss, &tokens);
    if (st || tokens == 0) return st;
    if (t->red && (st = reduce(t, &loss))) return st;
    double gnorm = o->clip > 0 ? xa_optim_clip_grad_norm(t->opt, o->clip) : xa_optim_grad_norm(t->opt);
    double lr = xa_sched_lr(&t->sched, t->ts.step);
    xa_optim_step(t->opt, lr);
    const int64_t step = ++t->ts.step;
    t->done_here++;
    t->tokens += tokens;
    if (isfinite(loss)) { /* the progress line's loss: a debiased moving average */
        t->smooth_m = SMOOTH_BETA * t->smooth_m + (1 - SMOOTH_BETA) * loss;
        t->smooth_w = SMOOTH_BETA * t->smooth_w + (1 - SMOOTH_BETA);
        t->loss_smooth = t->smooth_m / t->smooth_w;
    }
    const float shown = t->smooth_w > 0 ? (float)t->loss_smooth : loss;
    char extra[192] = "", line[160];
    if (ops->extra) ops->extra(ctx, t, extra, sizeof extra);
    if (xa_loss_log_step(&t->log, step, loss, lr, gnorm, tokens, step == o->steps, extra[0] ? extra : NULL))
        log_line(t, "step %lld/%lld: loss %.4f (window mean) | lr %.3e | grad norm %.4f%s%s", (long long)step,
                 (long long)o->steps, t->log.last, lr, gnorm, extra[0] ? " | " : "", extra);
    snprintf(line, sizeof line, "loss %.4f | lr %.2e", shown, lr);
    if (ops->after && (st = ops->after(ctx, t, shown, lr, line, sizeof line))) return st;
    if (t->red) { /* rank 0 evaluates: its early-stop decision is every rank's */
        float stop = t->writer ? (float)t->stop : 0.0f;
        if ((st = xa_dist_allreduce_sum(&stop, 1, o->label))) return st;
        t->stop = stop > 0;
    }
    xa_progress_update(&t->prog, step, tokens, "%s", line);
    const int paused = o->stop_after > 0 && t->done_here >= o->stop_after;
    if (step == o->steps || paused || t->stop || (o->ckpt_every > 0 && step % o->ckpt_every == 0))
        st = checkpoint(t, ops, ctx);
    *end = paused || t->stop;
    return st;
}

/* The loss curves beside the metrics (a failure is a warning: the run's outputs are what count). */
static void draw(xa_trainer *t) {
    char svg[XA_PATH_MAX], title[160];
    if (access(t->metrics, F_OK) != 0 || svg_path(svg, sizeof svg, t->metrics)) {
        xa_error_clear();
        return;
    }
    snprintf(title, sizeof title, "%s: training curves", t->o.label);
    if (xa_plot_metrics(t->metrics, svg, title, NULL)) {
        XA_LOG_WARN("%s: no loss curves: %s", t->o.label, xa_error_last()->what);
        xa_error_clear();
    }
}

xa_status xa_trainer_run(xa_trainer *t, const xa_trainer_opts *o, xa_optim *opt, const xa_trainer_ops *ops,
                         void *ctx) {
    memset(t, 0, sizeof *t);
    t->o = *o;
    t->opt = opt;
    t->writer = xa_dist_rank() == 0;
    if (xa_dist_size() > 1) {
        for (size_t g = 0; g < opt->n_groups; g++)
            if (opt->groups[g].trainable && opt->groups[g].grads) t->n_red += opt->groups[g].n;
        t->n_red += 1 + 8; /* the loss, rank 0's generator (reduce) */
        t->red = malloc(t->n_red * sizeof(float));
        if (!t->red) return xa_error_set(XA_STATUS_NOMEM, o->label, NULL, NULL, "out of memory (allreduce buffer)");
    }
    /* what trains is never a frozen weight with a bf16 pack (tensor.h: xa_gemm_frozen_add) */
    for (size_t g = 0; g < opt->n_groups; g++)
        if (opt->groups[g].trainable && opt->groups[g].grads)
            XA_ASSERT(!xa_gemm_frozen_overlaps(opt->groups[g].params, opt->groups[g].n * sizeof(float)));
    /* the run's products in its precision (process-wide: the phases run one at a time) */
    const xa_precision was = xa_gemm_precision();
    xa_gemm_set_precision(knobs_of(t).precision);
    xa_status st = start(t, ops, ctx);
    int end = 0;
    while (!st && !end && !t->stop && t->ts.step < o->steps) st = one_step(t, ops, ctx, &end);
    xa_gemm_set_precision(was);
    if (st) {
        if (t->logf) log_line(t, "=== %s: stopped at step %lld by an error: %s", o->label, (long long)t->ts.step,
                              xa_error_last()->what);
        return st;
    }
    xa_progress_finish(&t->prog);
    t->seconds = xa_time_now() - t->log.t0;
    char dur[32];
    log_line(t, "=== %s: %s at step %lld of %lld (%lld steps in %s)", o->label,
             t->stop ? "stopped early" : t->ts.step >= o->steps ? "finished" : "paused", (long long)t->ts.step,
             (long long)o->steps, (long long)t->done_here, xa_format_duration(t->seconds, dur, sizeof dur));
    if (t->red && t->done_here > 0)
        log_line(t, "=== %s: allreduce of %zu floats per step: %.3f ms a step on average", o->label, t->n_red,
                 1e3 * t->red_seconds / (double)t->done_here);
    if (t->done_here > 0 && t->writer) draw(t);
    return XA_STATUS_OK;
}

void xa_trainer_close(xa_trainer *t) {
    free(t->red);
    t->red = NULL;
    if (t->mf) fclose(t->mf);
    t->mf = NULL;
    if (t->logf) {
        xa_log_set_file(NULL);
        fclose(t->logf);
    }
    t->logf = NULL;
}

void xa_trainer_log_eval(xa_trainer *t, const char *split, const char *metric, double value, const char *extra) {
    char num[32];
    if (isfinite(value)) snprintf(num, sizeof num, "%.6f", value); else snprintf(num, sizeof num, "null");
    if (t->mf) {
        fprintf(t->mf, "{\"type\": \"eval\", \"phase\": \"%s\", \"step\": %" PRId64 ", \"time\": %.3f, \"split\": \"%s\", "
                       "\"metric\": \"%s\", \"value\": %s%s%s}\n", t->log.phase ? t->log.phase : "train", t->ts.step,
                xa_time_wall(), split, metric, num, extra && extra[0] ? ", " : "", extra ? extra : "");
        fflush(t->mf);
    }
    log_line(t, "step %lld/%lld: %s %s %s%s%s", (long long)t->ts.step, (long long)t->o.steps, split, metric, num,
             extra && extra[0] ? " | " : "", extra ? extra : "");
}

xa_status xa_trainer_optim_init(xa_optim *opt, const xa_train_knobs *k) {
    const xa_train_knobs d = k ? *k : xa_train_knobs_default();
    return xa_optim_init(opt, d.adam_beta1, d.adam_beta2, d.adam_epsilon);
}

void xa_trainer_identity_knobs(char *id, size_t n, const xa_train_knobs *k) {
    const xa_train_knobs d = xa_train_knobs_default();
    if (!k) return;
    size_t len = strlen(id);
#define ITEM(...) if (len < n) len += (size_t)snprintf(id + len, n - len, __VA_ARGS__)
    if (k->sched != d.sched) ITEM(" sched=%s", xa_sched_kind_name(k->sched));
    if (k->adam_beta1 != d.adam_beta1) ITEM(" adam_beta1=%.10g", k->adam_beta1);
    if (k->adam_beta2 != d.adam_beta2) ITEM(" adam_beta2=%.10g", k->adam_beta2);
    if (k->adam_epsilon != d.adam_epsilon) ITEM(" adam_epsilon=%.10g", k->adam_epsilon);
    if (k->hidden_dropout >= 0) ITEM(" hidden_dropout=%.10g", k->hidden_dropout);
    if (k->attention_dropout >= 0) ITEM(" attention_dropout=%.10g", k->attention_dropout);
    if (k->weight_decay_all != d.weight_decay_all) ITEM(" decay=hf");
    /* the precision in effect: a bf16 checkpoint resumed where the products would be fp32 is refused */
    if (xa_precision_effective(k->precision) != d.precision) ITEM(" precision=%s", xa_precision_name(xa_precision_effective(k->precision)));
    if (k->grad_accum > 1) ITEM(" grad_accum=%d", k->grad_accum);
#undef ITEM
}

int xa_trainer_acts_mode(const xa_train_knobs *k) {
    return k && k->gradient_checkpointing ? XA_ACTS_RECOMPUTE : XA_ACTS_TRAIN;
}

int xa_trainer_compose_mode(const xa_train_knobs *k) {
    return k && k->gradient_checkpointing ? XA_COMPOSE_RECOMPUTE : 1;
}

void xa_trainer_apply_dropout(xa_encoder_config *cfg, const xa_train_knobs *k) {
    if (!k) return;
    if (k->hidden_dropout >= 0) cfg->p_hidden = (float)k->hidden_dropout;
    if (k->attention_dropout >= 0) cfg->p_attn = (float)k->attention_dropout;
}

/* ---- HF-style weight decay ------------------------------------------------------------------- */

int xa_trainer_skips_decay(const char *name) {
    /* HF Trainer: every parameter whose name holds "bias", and the weights of LayerNorm modules
     * (AdapterHub's adapter_norm_before / adapter_norm_after, BERT's LayerNorm) */
    return strstr(name, "bias") || strstr(name, "norm") || strstr(name, "LayerNorm");
}

typedef struct decay_ranges {
    const float *base;         /* the object's parameter buffer */
    size_t n;                  /* its size */
    size_t (*r)[2];
    size_t n_r, cap;
} decay_ranges;

static xa_status collect(void *p, const char *name, const float *data, size_t numel) {
    decay_ranges *d = p;
    if (!xa_trainer_skips_decay(name) || !numel) return XA_STATUS_OK;
    XA_ASSERT(data >= d->base && (size_t)(data - d->base) + numel <= d->n);
    if (d->n_r == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 32;
        size_t (*r)[2] = realloc(d->r, cap * sizeof *r);
        if (!r) return xa_error_set(XA_STATUS_NOMEM, "xa_trainer_no_decay", NULL, NULL, "out of memory");
        d->r = r;
        d->cap = cap;
    }
    d->r[d->n_r][0] = (size_t)(data - d->base);
    d->r[d->n_r][1] = (size_t)(data - d->base) + numel;
    d->n_r++;
    return XA_STATUS_OK;
}

static xa_status apply_ranges(xa_optim *opt, const char *group, decay_ranges *d, xa_status st) {
    if (!st) st = xa_optim_set_no_decay(opt, group, (const size_t(*)[2])d->r, d->n_r);
    free(d->r);
    return st;
}

xa_status xa_trainer_no_decay_adapter(xa_optim *opt, const char *group, const xa_adapter *a) {
    decay_ranges d = {a->params, a->n_params, NULL, 0, 0};
    return apply_ranges(opt, group, &d, xa_hub_visit_adapter(a, collect, &d));
}

xa_status xa_trainer_no_decay_fusion(xa_optim *opt, const char *group, const xa_fusion_layer *f) {
    decay_ranges d = {f->params, f->n_params, NULL, 0, 0};
    return apply_ranges(opt, group, &d, xa_hub_visit_fusion(f, collect, &d));
}

xa_status xa_trainer_no_decay_head(xa_optim *opt, const char *group, const xa_head *h) {
    decay_ranges d = {h->params, h->n_params, NULL, 0, 0};
    return apply_ranges(opt, group, &d, xa_hub_visit_head(h, "head", collect, &d));
}

/* ---- held-out MLM ---------------------------------------------------------------------------- */

xa_status xa_trainer_mlm_heldout(xa_encoder *enc, xa_encoder_acts *acts, xa_mlm_head *head, const xa_hook *hook,
                                 xa_mlm_data *d, xa_mlm_batch *b, xa_trainer_micro *u, int n_batches,
                                 int64_t *n_masked, double *loss_sum) {
    XA_ASSERT(b->T == d->T);
    *n_masked = 0;
    *loss_sum = 0;
    xa_mlm_data_seek(d, 0, 0);
    const int64_t whole = d->n_blocks / b->B > 0 ? d->n_blocks / b->B : 1; /* one pass at most */
    const int pieces = u ? xa_trainer_micro_count(u, b->B) : 1;
    for (int64_t i = 0; i < n_batches && i < whole; i++) {
        for (int r = 0; r < b->B; r++) b->lens[r] = b->T;
        xa_mlm_data_next(d, b);
        for (int k = 0; k < pieces; k++) {
            xa_mlm_batch v = *b;
            if (u) xa_trainer_micro_mlm(u, b, b->T, k, &v);
            if (v.m == 0) continue;
            xa_batch bb = {v.ids, NULL, v.lens, v.B, b->T};
            xa_status st = xa_mlm_head_reserve(head, v.m);
            if (!st) st = xa_encoder_forward(enc, acts, &bb, hook, 0, NULL);
            if (st) return st;
            float loss = xa_mlm_head_forward(head, xa_encoder_hidden(enc, acts, enc->cfg.L - 1), v.rows, v.targets,
                                             v.m, enc->t[XA_ENC_WTE], hook, NULL);
            *loss_sum += (double)loss * v.m;
            *n_masked += v.m;
        }
    }
    return XA_STATUS_OK;
}

/* ---- micro-batches ------------------------------------------------------------------------------- */

xa_status xa_trainer_micro_init(xa_trainer_micro *u, int B, int grad_accum, int T, int mlm, const char *who) {
    memset(u, 0, sizeof *u);
    const int world = xa_dist_size(), rank = xa_dist_rank();
    if (grad_accum < 1 || B < 1 || B % grad_accum)
        return xa_error_set(XA_STATUS_USAGE, who, "grad_accum >= 1 dividing batch_size",
                            "batch_size is the step's batch; grad_accum cuts it into batch_size / grad_accum rows",
                            "grad_accum %d with batch_size %d", grad_accum, B);
    if (world > 1 && B % (grad_accum * world))
        return xa_error_set(XA_STATUS_USAGE, who, "batch_size divisible by grad_accum x the number of ranks",
                            "batch_size is the global batch; each of the N ranks runs batch_size / N rows of it "
                            "(in grad_accum pieces): choose mpirun -np N accordingly",
                            "batch_size %d with grad_accum %d on %d ranks", B, grad_accum, world);
    u->rows = B / (grad_accum * world);
    u->n = grad_accum * world;
    u->k0 = rank * grad_accum;
    u->per_rank = grad_accum;
    if (mlm && u->n > 1) {
        u->mrows = malloc((size_t)u->rows * (size_t)T * sizeof *u->mrows);
        u->mtargets = malloc((size_t)u->rows * (size_t)T * sizeof *u->mtargets);
        if (!u->mrows || !u->mtargets) {
            xa_trainer_micro_free(u);
            return xa_error_set(XA_STATUS_NOMEM, who, NULL, NULL, "out of memory");
        }
    }
    return XA_STATUS_OK;
}

void xa_trainer_micro_mine(const xa_trainer_micro *u, int B, int *k0, int *k1) {
    const int pieces = xa_trainer_micro_count(u, B);
    *k0 = u->k0 < pieces ? u->k0 : pieces;
    *k1 = u->k0 + u->per_rank < pieces ? u->k0 + u->per_rank : pieces;
}

void xa_trainer_micro_begin(xa_trainer_micro *u, xa_rng *step_rng) {
    u->start = *step_rng;
    u->n_ran = 0;
}

xa_rng *xa_trainer_micro_rng(xa_trainer_micro *u, xa_rng *step_rng, int k) {
    XA_ASSERT(k >= 0 && k < u->n);
    /* Every piece draws the same seeds (one per dropout site, in the same order), so every piece
     * ends where the first did; one that did not would have laid other masks than the whole
     * batch's forward. */
    if (u->n_ran == 1) u->end = *step_rng;
    if (u->n_ran > 1) XA_ASSERT(step_rng->state == u->end.state && step_rng->inc == u->end.inc);
    u->n_ran++;
    *step_rng = u->start;
    return step_rng;
}

void xa_trainer_micro_free(xa_trainer_micro *u) {
    if (!u) return;
    free(u->mrows);
    free(u->mtargets);
    memset(u, 0, sizeof *u);
}

int xa_trainer_micro_count(const xa_trainer_micro *u, int B) {
    return (B + u->rows - 1) / u->rows;
}

int xa_trainer_micro_mlm(xa_trainer_micro *u, const xa_mlm_batch *g, int T, int k, xa_mlm_batch *view) {
    *view = *g;
    if (u->n == 1) return g->m;
    const int r0 = k * u->rows, r1 = r0 + u->rows < g->B ? r0 + u->rows : g->B;
    XA_ASSERT(r0 < r1 && u->mrows);
    const int lo = r0 * T, hi = r1 * T;
    view->B = r1 - r0;
    view->ids = g->ids + (size_t)lo;
    view->labels = g->labels + (size_t)lo;
    view->lens = g->lens + r0;
    view->rows = u->mrows;
    view->targets = u->mtargets;
    view->m = 0;
    for (int i = 0; i < g->m; i++) /* a filter: nothing assumed about the order of g's positions */
        if (g->rows[i] >= lo && g->rows[i] < hi) {
            view->rows[view->m] = g->rows[i] - lo;
            view->targets[view->m++] = g->targets[i];
        }
    return view->m;
}

void xa_trainer_micro_task(const xa_trainer_micro *u, const xa_task_batch *g, int tagging, int k, xa_task_batch *view) {
    *view = *g;
    if (u->n == 1) return;
    const int nc = g->n_choices > 0 ? g->n_choices : 1;
    const int e0 = k * u->rows, e1 = e0 + u->rows < g->n_ex ? e0 + u->rows : g->n_ex;
    XA_ASSERT(e0 < e1);
    const size_t r0 = (size_t)e0 * nc; /* the piece's first row */
    view->n_ex = e1 - e0;
    view->B = (e1 - e0) * nc;
    view->ids = g->ids + r0 * g->T;
    if (g->types) view->types = g->types + r0 * g->T;
    view->lens = g->lens + r0;
    view->labels = g->labels + (tagging == 1 ? r0 * g->T : tagging == 2 ? 2 * (size_t)e0 : (size_t)e0);
    view->index = g->index + e0;
}

double xa_trainer_task_count(const xa_task_batch *b, int tagging, const float *class_w) {
    if (tagging == 2) return (double)b->n_ex; /* QA: every row's start and end are inside it */
    const size_t n = tagging ? (size_t)b->B * (size_t)b->T : (size_t)b->n_ex;
    double c = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t y = b->labels[i];
        if (y != XA_IGNORE_INDEX) c += class_w ? (double)class_w[y] : 1.0;
    }
    return c;
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
    XA_ASSERT(!enc->packed && "loading weights registered for bf16 packs");
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
