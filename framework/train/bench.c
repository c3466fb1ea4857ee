/* train/bench: throughput of training and inference steps on synthetic batches, for `xadapt bench`.
 * A step is what a real run does: forward, loss, backward, gradient clipping and AdamW over the
 * groups that train (the optimizer holds no state for frozen groups). Data is random ids with 15%
 * of the positions (never the first) selected for MLM, so no tokenizer or corpus is needed.
 * The adapter modes (lang-adapter, task-adapter, infer-stack) run the encoder frozen with the
 * composer in its hook, as the MAD-X phases do: AdamW over the adapter's group (and the head's). */
#include "train/train.h"

#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "heads/heads.h"
#include "optim/optim.h"

/* --gradient-checkpointing: the training rows plan recomputation activations (model.h) */
static int g_recompute;

void xa_bench_set_gradient_checkpointing(int on) { g_recompute = on != 0; }

/* The activation mode of a training row (train != 0) or an inference row. */
static int acts_mode(int train) {
    return !train ? XA_ACTS_INFER : g_recompute ? XA_ACTS_RECOMPUTE : XA_ACTS_TRAIN;
}

static const char *const g_mode_names[XA_BENCH_N_MODES] = {
    "mlm-full", "mlm-frozen", "cls-frozen", "infer", "lang-adapter", "task-adapter", "infer-stack"};

const char *xa_bench_mode_name(xa_bench_mode m) {
    return (unsigned)m < XA_BENCH_N_MODES ? g_mode_names[m] : "?";
}

xa_status xa_bench_mode_parse(const char *name, xa_bench_mode *out) {
    for (int i = 0; i < XA_BENCH_N_MODES; i++) {
        if (!strcmp(name, g_mode_names[i])) {
            *out = (xa_bench_mode)i;
            return XA_STATUS_OK;
        }
    }
    return xa_error_set(XA_STATUS_USAGE, "bench mode", "mlm-full, mlm-frozen, cls-frozen, infer, lang-adapter, task-adapter or infer-stack", NULL,
                        "unknown mode '%s'", name);
}

#define BENCH_CLASSES 8

/* Throughput of `timed` steps that took el seconds. */
static void fill_result(xa_bench_result *r, xa_bench_mode mode, const xa_encoder_config *cfg, int B,
                        int T, int m, int timed, double el) {
    r->steps = timed;
    r->step_ms = 1e3 * el / timed;
    r->tokens_per_s = (double)B * T * timed / el;
    r->flops_per_step = xa_bench_flops(mode, cfg, B, T, m);
    r->gflops = r->flops_per_step * timed / el / 1e9;
}

/* Synthetic batch: random ids, 15% of the positions selected for MLM (never position 0), full
 * lengths, random class labels. Returns the number of selected positions. */
static int synth_batch(xa_rng *rng, int32_t *ids, int32_t *rows, int32_t *targets, int32_t *lens,
                       int32_t *labels, int B, int T, int V) {
    int m = 0;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        ids[i] = 4 + (int32_t)xa_rng_below(rng, (uint32_t)(V - 4));
        if (i % (size_t)T != 0 && xa_rng_uniform(rng) < 0.15f) {
            rows[m] = (int32_t)i;
            targets[m++] = 4 + (int32_t)xa_rng_below(rng, (uint32_t)(V - 4));
        }
    }
    for (int b = 0; b < B; b++) {
        lens[b] = T;
        labels[b] = (int32_t)xa_rng_below(rng, BENCH_CLASSES);
    }
    return m;
}

#define BENCH_LANG_RF 2.0  /* the published MAD-X language adapters: seq_bn_inv, rf 2, inv rf 2 */
#define BENCH_TASK_RF 16.0 /* seq_bn's default */

/* Bottleneck width d = max(1, C // rf) (AdapterHub's int(H // rf)). */
static double bneck_d(int C, double rf) {
    double d = (double)(long long)(C / rf);
    return d < 1.0 ? 1.0 : d;
}

/* Forward FLOPs of one NICE coupling (inv rf 2) on one row: F c2 -> h2 -> c1, G c1 -> h1 -> c2. */
static double nice_row_flops(int C) {
    double c1 = C / 2, c2 = C - C / 2;
    double h1 = (double)(long long)(c1 / 2.0), h2 = (double)(long long)(c2 / 2.0);
    h1 = h1 < 1.0 ? 1.0 : h1;
    h2 = h2 < 1.0 ? 1.0 : h2;
    return 2.0 * (c2 * h2 + h2 * c1 + c1 * h1 + h1 * c2);
}

double xa_bench_flops(xa_bench_mode mode, const xa_encoder_config *c, int B, int T, int m) {
    double N = (double)B * T, C = c->C, FF = c->FF, V = c->V, L = c->L;
    double enc = c->L * (2.0 * N * (4.0 * C * C + 2.0 * C * FF) + 4.0 * B * (double)T * T * C);
    double mlm = 2.0 * m * C * C + 2.0 * m * C * V;
    double cls = 2.0 * B * C * C + 2.0 * B * C * BENCH_CLASSES;
    /* one adapter at the FFN site of every layer, forward: down and up products */
    double lang = L * 4.0 * N * C * bneck_d(c->C, BENCH_LANG_RF);
    double task = L * 4.0 * N * C * bneck_d(c->C, BENCH_TASK_RF);
    double inv = N * nice_row_flops(c->C), inv_m = m * nice_row_flops(c->C);
    double above0 = (L - 1.0) / L; /* task-adapter: layers 1..L-1 are crossed, layer 0 is not */
    switch (mode) {
    case XA_BENCH_MLM_FULL: return 3.0 * enc + 3.0 * mlm;
    /* head backward: decoder input gradient (its weight is frozen) + the dense's weight gradient */
    case XA_BENCH_MLM_FROZEN: return enc + mlm + 2.0 * m * C * V + 2.0 * m * C * C;
    case XA_BENCH_CLS_FROZEN: return enc + 3.0 * cls;
    case XA_BENCH_INFER: return enc;
    /* encoder and frozen head crossed (input gradients) down to the embedding hook; lang trains */
    case XA_BENCH_LANG_ADAPTER: return 2.0 * enc + 2.0 * mlm + 3.0 * (lang + inv + inv_m);
    /* backward stops at layer 0's FFN hook: the frozen layers and lang adapters above it are crossed */
    case XA_BENCH_TASK_ADAPTER: return enc * (1.0 + above0) + lang * (1.0 + above0) + inv + 3.0 * task + 3.0 * cls;
    case XA_BENCH_INFER_STACK: return enc + lang + task + inv + cls;
    default: return 0.0;
    }
}

double xa_bench_sgemm_peak(double min_seconds) {
    const int M = 4096, K = 768, N = 3072;
    float *x = xa_aligned_alloc((size_t)M * K * sizeof(float), XA_ARENA_ALIGN);
    float *w = xa_aligned_alloc((size_t)N * K * sizeof(float), XA_ARENA_ALIGN);
    float *y = xa_aligned_alloc((size_t)M * N * sizeof(float), XA_ARENA_ALIGN);
    if (!x || !w || !y) {
        xa_aligned_free(x);
        xa_aligned_free(w);
        xa_aligned_free(y);
        return 0.0;
    }
    xa_rng rng;
    xa_rng_seed(&rng, 5, 5);
    xa_rng_fill_uniform(&rng, x, (size_t)M * K, -1.0f, 1.0f);
    xa_rng_fill_uniform(&rng, w, (size_t)N * K, -1.0f, 1.0f);
    xa_sgemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N); /* warm-up */
    double best = 0.0, t_end = xa_time_now() + min_seconds;
    do {
        double t0 = xa_time_now();
        xa_sgemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
        double g = 2.0 * M * N * K / (xa_time_now() - t0) / 1e9;
        best = g > best ? g : best;
    } while (xa_time_now() < t_end);
    xa_aligned_free(x);
    xa_aligned_free(w);
    xa_aligned_free(y);
    return best;
}

/* Add adapter `name` from AdapterHub preset `preset` with reduction factor rf, initialised as
 * AdapterHub does. */
static xa_status bench_add_adapter(xa_composer *cp, const char *name, const char *preset, double rf,
                                   int trainable, xa_rng *rng, xa_adapter **out) {
    xa_bn_config bc;
    xa_status st = xa_bn_config_preset(&bc, preset);
    if (st) return st;
    bc.reduction_factor = rf;
    st = xa_composer_add_adapter(cp, name, &bc, trainable, out);
    if (!st) xa_adapter_init_weights(*out, rng);
    return st;
}

/* The adapter modes: a frozen encoder with a composer in its hook. lang-adapter trains `lang`
 * (setup "lang") under a frozen MLM head; task-adapter trains `task` and a classification head on
 * Stack(lang, task) with lang frozen; infer-stack runs Stack(lang, task) and the head forward. */
static xa_status bench_run_adapters(xa_bench_mode mode, const xa_encoder_config *cfg, int B, int T,
                                    int warmup, int steps, double min_seconds, uint64_t seed,
                                    xa_bench_result *r) {
    const int train = mode != XA_BENCH_INFER_STACK;
    const int mlm = mode == XA_BENCH_LANG_ADAPTER;
    const int stack = mode != XA_BENCH_LANG_ADAPTER;
    const size_t N = (size_t)B * T, NC = N * (size_t)cfg->C;
    xa_encoder enc;
    xa_mlm_head head;
    xa_head cls;
    xa_encoder_acts acts;
    xa_optim opt;
    xa_composer *cp = NULL;
    xa_setup *setup = NULL;
    xa_adapter *lang = NULL, *task = NULL;
    xa_hook hook;
    memset(&enc, 0, sizeof enc);
    memset(&head, 0, sizeof head);
    memset(&cls, 0, sizeof cls);
    memset(&acts, 0, sizeof acts);
    memset(&opt, 0, sizeof opt);
    memset(&hook, 0, sizeof hook);
    int32_t *ids = malloc(N * sizeof *ids), *lens = malloc((size_t)B * sizeof *lens);
    int32_t *rows = malloc(N * sizeof *rows), *targets = malloc(N * sizeof *targets);
    int32_t *labels = malloc((size_t)B * sizeof *labels);
    float *dlast = NULL;
    xa_rng rng;
    xa_rng_seed(&rng, seed, 7);
    xa_status st = XA_STATUS_OK;
    if (!ids || !lens || !rows || !targets || !labels) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_bench_run", NULL, NULL, "out of memory");
        goto done;
    }
    /* The encoder is frozen (no gradient memory); its activations keep every layer when an adapter
     * trains, since the adapters' backward crosses the layers above them. */
    st = xa_encoder_init(&enc, cfg, 0);
    if (!st) st = xa_encoder_acts_init(&acts, cfg, B, T, acts_mode(train));
    if (!st && mlm) st = xa_mlm_head_init(&head, cfg->C, cfg->V, cfg->eps, xa_mlm_rows_bound((int64_t)N, 0.15), 0);
    if (!st && stack) st = xa_head_init(&cls, XA_HEAD_CLASSIFICATION, cfg->C, BENCH_CLASSES, 0.1f, B, T, train);
    if (!st) st = xa_optim_init(&opt, 0.9, 0.999, 1e-8);
    if (!st) st = xa_composer_init(&cp, cfg);
    if (st) goto done;
    xa_encoder_init_weights(&enc, &rng, 0.02f);
    if (mlm) xa_mlm_head_init_weights(&head, &rng, 0.02f);
    if (stack) xa_head_init_weights(&cls, &rng, 0.02f);
    st = xa_encoder_set_packed(&enc, 1); /* frozen, as in the MAD-X phases */
    if (!st && mlm) st = xa_mlm_head_set_packed(&head, 1);
    if (st) goto done;
    st = bench_add_adapter(cp, "lang", "seq_bn_inv", BENCH_LANG_RF, mode == XA_BENCH_LANG_ADAPTER, &rng, &lang);
    if (!st && stack) st = bench_add_adapter(cp, "task", "seq_bn", BENCH_TASK_RF, train, &rng, &task);
    if (!st) st = xa_setup_parse(&setup, stack ? "Stack(lang, task)" : "Stack(lang)", "xadapt bench");
    if (!st) st = xa_composer_activate(cp, setup, "xadapt bench");
    if (!st && mode == XA_BENCH_LANG_ADAPTER)
        st = xa_optim_add_group(&opt, "adapter.lang", lang->params, lang->grads, lang->n_params, 1.0, 0.01, 1, NULL);
    if (!st && mode == XA_BENCH_TASK_ADAPTER)
        st = xa_optim_add_group(&opt, "adapter.task", task->params, task->grads, task->n_params, 1.0, 0.01, 1, NULL);
    if (!st && mode == XA_BENCH_TASK_ADAPTER)
        st = xa_optim_add_group(&opt, "cls_head", cls.params, cls.grads, cls.n_params, 1.0, 0.01, 1, NULL);
    if (st) goto done;
    if (train) {
        dlast = xa_aligned_alloc(NC * sizeof(float), XA_ARENA_ALIGN);
        if (!dlast) {
            st = xa_error_set(XA_STATUS_NOMEM, "xa_bench_run", NULL, NULL, "out of memory");
            goto done;
        }
    }
    int m = synth_batch(&rng, ids, rows, targets, lens, labels, B, T, cfg->V);
    if (mlm) st = xa_mlm_head_reserve(&head, m);
    if (!st) st = xa_composer_plan(cp, B, T, mlm ? (m > 0 ? m : 1) : 0, train && g_recompute ? XA_COMPOSE_RECOMPUTE : train);
    if (st) goto done;
    xa_composer_hook(cp, &hook);
    xa_batch batch = {ids, NULL, lens, B, T};
    double t0 = 0.0;
    int timed = 0;
    for (int it = 0;; it++) {
        if (it == warmup) t0 = xa_time_now();
        if (it >= warmup) {
            double el = xa_time_now() - t0;
            if (timed >= steps && el >= min_seconds) break;
        }
        if (train) xa_optim_zero_grad(&opt);
        xa_composer_set_mode(cp, train, train ? &rng : NULL);
        st = xa_encoder_forward(&enc, &acts, &batch, &hook, train, train ? &rng : NULL);
        if (st) goto done;
        const float *h = xa_encoder_hidden(&enc, &acts, cfg->L - 1);
        if (mlm) {
            xa_mlm_head_forward(&head, h, rows, targets, m, enc.t[XA_ENC_WTE], &hook, NULL);
            memset(dlast, 0, NC * sizeof(float));
            xa_mlm_head_backward(&head, dlast, NULL, enc.t[XA_ENC_WTE], &hook, 1.0f);
            xa_encoder_backward(&enc, &acts, &batch, &hook, dlast, NULL);
        } else if (train) {
            xa_head_forward(&cls, h, labels, B, T, NULL, 1, &rng);
            memset(dlast, 0, NC * sizeof(float));
            xa_head_backward(&cls, dlast, 1.0f);
            xa_encoder_backward(&enc, &acts, &batch, &hook, dlast, NULL);
        } else {
            xa_head_forward(&cls, h, NULL, B, T, NULL, 0, NULL);
        }
        if (train) {
            xa_optim_clip_grad_norm(&opt, 1.0);
            xa_optim_step(&opt, 1e-4);
        }
        if (it >= warmup) timed++;
    }
    fill_result(r, mode, cfg, B, T, m, timed, xa_time_now() - t0);
done:
    free(ids);
    free(lens);
    free(rows);
    free(targets);
    free(labels);
    xa_aligned_free(dlast);
    if (setup) xa_setup_free(setup);
    if (cp) xa_composer_free(cp);
    xa_optim_free(&opt);
    xa_encoder_acts_free(&acts);
    xa_head_free(&cls);
    xa_mlm_head_free(&head);
    xa_encoder_free(&enc);
    return st;
}

xa_status xa_bench_run(xa_bench_mode mode, const xa_encoder_config *cfg, int B, int T, int warmup,
                       int steps, double min_seconds, uint64_t seed, xa_bench_result *r) {
    memset(r, 0, sizeof *r);
    if (mode >= XA_BENCH_LANG_ADAPTER) return bench_run_adapters(mode, cfg, B, T, warmup, steps, min_seconds, seed, r);
    const int train = mode != XA_BENCH_INFER;
    const int full = mode == XA_BENCH_MLM_FULL;
    const int mlm = mode == XA_BENCH_MLM_FULL || mode == XA_BENCH_MLM_FROZEN;
    const size_t N = (size_t)B * T, NC = N * (size_t)cfg->C;
    xa_encoder enc;
    xa_mlm_head head;
    xa_head cls;
    xa_encoder_acts acts;
    xa_optim opt;
    memset(&enc, 0, sizeof enc);
    memset(&head, 0, sizeof head);
    memset(&cls, 0, sizeof cls);
    memset(&acts, 0, sizeof acts);
    memset(&opt, 0, sizeof opt);
    int32_t *ids = malloc(N * sizeof *ids), *lens = malloc((size_t)B * sizeof *lens);
    int32_t *rows = malloc(N * sizeof *rows), *targets = malloc(N * sizeof *targets);
    int32_t *labels = malloc((size_t)B * sizeof *labels);
    float *dlast = NULL;
    xa_rng rng;
    xa_rng_seed(&rng, seed, 7);
    xa_status st = XA_STATUS_OK;
    if (!ids || !lens || !rows || !targets || !labels) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_bench_run", NULL, NULL, "out of memory");
        goto done;
    }
    st = xa_encoder_init(&enc, cfg, full);
    if (!st) st = xa_encoder_acts_init(&acts, cfg, B, T, acts_mode(full)); /* frozen: nothing to save */
    if (!st && mlm) st = xa_mlm_head_init(&head, cfg->C, cfg->V, cfg->eps, xa_mlm_rows_bound((int64_t)N, 0.15), 1);
    if (!st && mode == XA_BENCH_CLS_FROZEN) st = xa_head_init(&cls, XA_HEAD_CLASSIFICATION, cfg->C, BENCH_CLASSES, 0.1f, B, T, 1);
    if (!st) st = xa_optim_init(&opt, 0.9, 0.999, 1e-8);
    if (st) goto done;
    xa_encoder_init_weights(&enc, &rng, 0.02f);
    if (mlm) xa_mlm_head_init_weights(&head, &rng, 0.02f);
    if (mode == XA_BENCH_CLS_FROZEN) xa_head_init_weights(&cls, &rng, 0.02f);
    if (!full) st = xa_encoder_set_packed(&enc, 1); /* frozen: packed once in bf16 */
    if (!st && full) st = xa_optim_add_group(&opt, "encoder", enc.params, enc.grads, enc.n_params, 1.0, 0.01, 1, NULL);
    if (!st && mlm) st = xa_optim_add_group(&opt, "mlm_head", head.params, head.grads, head.n_params, 1.0, 0.01, 1, NULL);
    if (!st && mode == XA_BENCH_CLS_FROZEN) st = xa_optim_add_group(&opt, "cls_head", cls.params, cls.grads, cls.n_params, 1.0, 0.01, 1, NULL);
    if (st) goto done;
    if (train) {
        dlast = xa_aligned_alloc(NC * sizeof(float), XA_ARENA_ALIGN);
        if (!dlast) {
            st = xa_error_set(XA_STATUS_NOMEM, "xa_bench_run", NULL, NULL, "out of memory");
            goto done;
        }
    }
    int m = synth_batch(&rng, ids, rows, targets, lens, labels, B, T, cfg->V);
    if (mlm && (st = xa_mlm_head_reserve(&head, m))) goto done;
    xa_batch batch = {ids, NULL, lens, B, T};
    double t0 = 0.0;
    int timed = 0;
    for (int it = 0;; it++) {
        if (it == warmup) t0 = xa_time_now();
        if (it >= warmup) {
            double el = xa_time_now() - t0;
            if (timed >= steps && el >= min_seconds) break;
        }
        if (train) xa_optim_zero_grad(&opt);
        st = xa_encoder_forward(&enc, &acts, &batch, NULL, train, &rng);
        if (st) goto done;
        const float *h = xa_encoder_hidden(&enc, &acts, cfg->L - 1);
        if (mlm) {
            xa_mlm_head_forward(&head, h, rows, targets, m, enc.t[XA_ENC_WTE], NULL, NULL);
            if (full) memset(dlast, 0, NC * sizeof(float));
            xa_mlm_head_backward(&head, full ? dlast : NULL, full ? enc.g[XA_ENC_WTE] : NULL, enc.t[XA_ENC_WTE], NULL, 1.0f);
            if (full) xa_encoder_backward(&enc, &acts, &batch, NULL, dlast, NULL);
        } else if (mode == XA_BENCH_CLS_FROZEN) {
            xa_head_forward(&cls, h, labels, B, T, NULL, 1, &rng);
            xa_head_backward(&cls, NULL, 1.0f);
        }
        if (train) {
            xa_optim_clip_grad_norm(&opt, 1.0);
            xa_optim_step(&opt, 1e-4);
        }
        if (it >= warmup) timed++;
    }
    fill_result(r, mode, cfg, B, T, m, timed, xa_time_now() - t0);
done:
    free(ids);
    free(lens);
    free(rows);
    free(targets);
    free(labels);
    xa_aligned_free(dlast);
    xa_optim_free(&opt);
    xa_encoder_acts_free(&acts);
    xa_head_free(&cls);
    xa_mlm_head_free(&head);
    xa_encoder_free(&enc);
    return st;
}
