/* optim: AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019, Alg. 2) as
 * torch.optim.AdamW 1.13 computes it, gradient clipping as torch.nn.utils.clip_grad_norm_, and the
 * learning-rate lambdas of HF transformers' optimization.py.
 *
 * Matching torch to the last bits: its scalar factors are Python doubles (1 - lr*wd, lr/bc1,
 * sqrt(bc2), 1 - beta) that reach the float kernels rounded to float; the tensor arithmetic is
 * float, in this order:
 *     p *= (1 - lr*wd);  m = m*b1 + (1-b1)*g;  v = v*b2 + (1-b2)*g*g;
 *     p += -(lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
 * The element loop is elementwise and runs in parallel when OpenMP is on; the gradient norm is a
 * serial double sum (the result must not depend on the thread count).
 * Not here: amsgrad, maximize, fused/foreach variants, per-parameter (non-group) options.
 */
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void xa_optim_free(xa_optim *opt) {
    if (!opt) return;
    for (size_t i = 0; i < opt->n_groups; i++) {
        xa_aligned_free(opt->groups[i].m); /* m, v: one block */
        free(opt->groups[i].no_decay);
    }
    free(opt->groups);
    opt->groups = NULL;
    opt->n_groups = opt->cap = 0;
}

xa_status xa_optim_init(xa_optim *opt, double beta1, double beta2, double eps) {
    memset(opt, 0, sizeof *opt);
    if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0) || !(eps >= 0.0)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_optim_init", "0 <= beta1, beta2 < 1 and eps >= 0",
                            NULL, "xa_optim_init: bad AdamW parameters beta1 %g beta2 %g eps %g",
                            beta1, beta2, eps);
    }
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    return XA_STATUS_OK;
}

xa_param_group *xa_optim_find(xa_optim *opt, const char *name) {
    for (size_t i = 0; i < opt->n_groups; i++) {
        if (strcmp(opt->groups[i].name, name) == 0) return &opt->groups[i];
    }
    return NULL;
}

xa_status xa_optim_add_group(xa_optim *opt, const char *name, float *params, float *grads, size_t n,
                             double lr_scale, double weight_decay, int trainable,
                             xa_param_group **out) {
    if (!name || !name[0] || strlen(name) >= XA_PARAM_GROUP_NAME) {
        return xa_error_set(XA_STATUS_USAGE, "xa_optim_add_group", "a name of 1..95 characters",
                            NULL, "xa_optim_add_group: bad group name '%s'",
                            name ? name : "(null)");
    }
    if (xa_optim_find(opt, name)) {
        return xa_error_set(XA_STATUS_USAGE, name, "a unique group name", NULL,
                            "xa_optim_add_group: group '%s' is already in the table", name);
    }
    if ((n > 0 && !params) || (trainable && n > 0 && !grads)) {
        return xa_error_set(XA_STATUS_USAGE, name, "params (and grads when trainable)", NULL,
                            "xa_optim_add_group: group '%s' has no %s buffer", name,
                            params ? "gradient" : "parameter");
    }
    if (opt->n_groups == opt->cap) {
        size_t cap = opt->cap ? 2 * opt->cap : 8;
        xa_param_group *g = realloc(opt->groups, cap * sizeof *g);
        if (!g)
            return xa_error_set(XA_STATUS_NOMEM, name, NULL, NULL,
                                "xa_optim_add_group: out of memory");
        opt->groups = g;
        opt->cap = cap;
    }
    xa_param_group g;
    memset(&g, 0, sizeof g);
    snprintf(g.name, sizeof g.name, "%s", name);
    g.params = params;
    g.n = n;
    g.lr_scale = lr_scale;
    g.weight_decay = weight_decay;
    g.trainable = trainable != 0;
    if (g.trainable) {
        size_t bytes;
        if (!xa_size_mul(n, 2 * sizeof(float), &bytes)) {
            return xa_error_set(XA_STATUS_NOMEM, name, NULL, NULL,
                                "xa_optim_add_group: %zu parameters overflow", n);
        }
        g.m = xa_aligned_alloc(bytes, XA_ARENA_ALIGN); /* zeroed */
        if (!g.m) {
            return xa_error_set(XA_STATUS_NOMEM, name, NULL, NULL,
                                "xa_optim_add_group: cannot allocate AdamW moments (%zu bytes)",
                                bytes);
        }
        g.v = g.m + n;
        g.grads = grads;
    }
    opt->groups[opt->n_groups] = g;
    if (out) *out = &opt->groups[opt->n_groups];
    opt->n_groups++;
    return XA_STATUS_OK;
}

static int range_cmp(const void *a, const void *b) {
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

xa_status xa_optim_set_no_decay(xa_optim *opt, const char *name, const size_t (*ranges)[2], size_t n) {
    xa_param_group *g = name ? xa_optim_find(opt, name) : NULL;
    if (!g)
        return xa_error_set(XA_STATUS_USAGE, "xa_optim_set_no_decay", "a group of the table", NULL,
                            "xa_optim_set_no_decay: no group '%s'", name ? name : "(null)");
    size_t (*r)[2] = NULL;
    if (n) {
        r = malloc(n * sizeof *r);
        if (!r) return xa_error_set(XA_STATUS_NOMEM, name, NULL, NULL, "xa_optim_set_no_decay: out of memory");
        memcpy(r, ranges, n * sizeof *r);
        qsort(r, n, sizeof *r, range_cmp);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i][0] >= r[i][1] || r[i][1] > g->n) {
            free(r);
            return xa_error_set(XA_STATUS_USAGE, name, "ranges lo < hi <= the group's size", NULL,
                                "xa_optim_set_no_decay: range [%zu, %zu) of a group of %zu", ranges[i][0],
                                ranges[i][1], g->n);
        }
        if (k && r[i][0] <= r[k - 1][1]) { /* overlapping or touching: merge */
            if (r[i][1] > r[k - 1][1]) r[k - 1][1] = r[i][1];
        } else {
            r[k][0] = r[i][0];
            r[k][1] = r[i][1];
            k++;
        }
    }
    free(g->no_decay);
    g->no_decay = r;
    g->n_no_decay = k;
    return XA_STATUS_OK;
}

size_t xa_optim_n_trainable(const xa_optim *opt) {
    size_t total = 0;
    for (size_t i = 0; i < opt->n_groups; i++) {
        if (opt->groups[i].trainable) total += opt->groups[i].n;
    }
    return total;
}

void xa_optim_zero_grad(xa_optim *opt) {
    for (size_t i = 0; i < opt->n_groups; i++) {
        const xa_param_group *g = &opt->groups[i];
        if (g->trainable && g->n) memset(g->grads, 0, g->n * sizeof(float));
    }
}

/* Sum of squares of one group: float partial sums over chunks of 4096 (vectorisable), added up in
 * double; chunks are split over threads. */
static double group_sumsq(const float *x, size_t n) {
    const size_t chunk = 4096, n_chunks = (n + chunk - 1) / chunk;
    double sum = 0.0;
#ifdef XA_HAVE_OPENMP
#pragma omp parallel for reduction(+ : sum) if (n > 65536) schedule(static)
#endif
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        float part = 0.0f;
#ifdef XA_HAVE_OPENMP
#pragma omp simd reduction(+ : part)
#endif
        for (size_t j = lo; j < hi; j++)
            part += x[j] * x[j];
        sum += part;
    }
    return sum;
}

double xa_optim_grad_norm(const xa_optim *opt) {
    double sum = 0.0;
    for (size_t i = 0; i < opt->n_groups; i++) {
        const xa_param_group *g = &opt->groups[i];
        if (g->trainable) sum += group_sumsq(g->grads, g->n);
    }
    return sqrt(sum);
}

double xa_optim_clip_grad_norm(xa_optim *opt, double max_norm) {
    double norm = xa_optim_grad_norm(opt);
    if (!(max_norm > 0.0) || !isfinite(norm)) return norm;
    /* torch computes the coefficient on float tensors */
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (coef < 1.0f) {
        for (size_t i = 0; i < opt->n_groups; i++) {
            const xa_param_group *g = &opt->groups[i];
            if (!g->trainable) continue;
            float *gr = g->grads;
            const size_t n = g->n;
#ifdef XA_HAVE_OPENMP
#pragma omp parallel for if (n > 65536) schedule(static)
#endif
            for (size_t j = 0; j < n; j++)
                gr[j] *= coef;
        }
    }
    return norm;
}

/* The float factors of one AdamW step of a group (torch's rounding, see the top). */
typedef struct adamw_k {
    float decay, b1, b2, eps, one_b1, one_b2, step_size, bc2_sqrt;
    int do_decay;
} adamw_k;

/* Hot loop: elements [lo, hi) of a group, elementwise and in place; decay only when `decay`. */
static void adamw_range(float *p, float *m, float *v, const float *grad, size_t lo, size_t hi, const adamw_k *k,
                        int decay) {
    const int do_decay = decay && k->do_decay;
#ifdef XA_HAVE_OPENMP
#pragma omp parallel for if (hi - lo > 65536) schedule(static)
#endif
    for (size_t j = lo; j < hi; j++) {
        float pj = p[j];
        if (do_decay) pj *= k->decay;
        float gj = grad[j];
        float mj = m[j] * k->b1 + gj * k->one_b1;
        float vj = v[j] * k->b2 + k->one_b2 * gj * gj;
        m[j] = mj;
        v[j] = vj;
        float denom = sqrtf(vj) / k->bc2_sqrt + k->eps;
        p[j] = pj + k->step_size * mj / denom;
    }
}

static void adamw_group(xa_param_group *g, double lr, double beta1, double beta2, double eps) {
    double lr_g = lr * g->lr_scale;
    int64_t t = ++g->step;
    const double bc1 = 1.0 - pow(beta1, (double)t);
    const double bc2 = 1.0 - pow(beta2, (double)t);
    const adamw_k k = {(float)(1.0 - lr_g * g->weight_decay), (float)beta1, (float)beta2, (float)eps,
                       (float)(1.0 - beta1), (float)(1.0 - beta2), (float)(-lr_g / bc1), (float)sqrt(bc2),
                       lr_g * g->weight_decay != 0.0};
    /* the decayed stretches between the no-decay ranges, and the ranges themselves */
    size_t at = 0;
    for (size_t r = 0; r < g->n_no_decay; r++) {
        adamw_range(g->params, g->m, g->v, g->grads, at, g->no_decay[r][0], &k, 1);
        adamw_range(g->params, g->m, g->v, g->grads, g->no_decay[r][0], g->no_decay[r][1], &k, 0);
        at = g->no_decay[r][1];
    }
    adamw_range(g->params, g->m, g->v, g->grads, at, g->n, &k, 1);
}

void xa_optim_step(xa_optim *opt, double lr) {
    for (size_t i = 0; i < opt->n_groups; i++) {
        xa_param_group *g = &opt->groups[i];
        if (g->trainable) adamw_group(g, lr, opt->beta1, opt->beta2, opt->eps);
    }
}

/* ---- schedules ---- */

static const char *const k_sched_names[] = {"constant", "constant_with_warmup", "linear", "cosine"};
#define N_SCHED (sizeof k_sched_names / sizeof k_sched_names[0])

const char *xa_sched_kind_name(xa_sched_kind kind) {
    return (unsigned)kind < N_SCHED ? k_sched_names[kind] : "?";
}

xa_status xa_sched_parse_kind(const char *name, xa_sched_kind *out) {
    for (size_t i = 0; name && i < N_SCHED; i++) {
        if (strcasecmp(name, k_sched_names[i]) == 0) {
            *out = (xa_sched_kind)i;
            return XA_STATUS_OK;
        }
    }
    return xa_error_set(
        XA_STATUS_CONFIG, NULL, "one of constant, constant_with_warmup, linear, cosine",
        "names follow HF transformers' SchedulerType",
        "xa_sched_parse_kind: unknown learning-rate schedule '%s'", name ? name : "(null)");
}

static double max1(int64_t x) {
    return (double)(x > 1 ? x : 1);
}

double xa_sched_factor(const xa_sched *s, int64_t step) {
    if (s->kind == XA_SCHED_KIND_CONSTANT) return 1.0;
    if (step < s->n_warmup) return (double)step / max1(s->n_warmup);
    switch (s->kind) {
    case XA_SCHED_KIND_CONSTANT_WITH_WARMUP: return 1.0;
    case XA_SCHED_KIND_LINEAR: {
        double f = (double)(s->n_steps - step) / max1(s->n_steps - s->n_warmup);
        return f > 0.0 ? f : 0.0;
    }
    case XA_SCHED_KIND_COSINE: {
        const double pi = 3.14159265358979323846;
        double progress = (double)(step - s->n_warmup) / max1(s->n_steps - s->n_warmup);
        double f = 0.5 * (1.0 + cos(pi * s->n_cycles * 2.0 * progress));
        return f > 0.0 ? f : 0.0;
    }
    case XA_SCHED_KIND_CONSTANT: break;
    }
    XA_ASSERT(0 && "bad xa_sched_kind");
}

double xa_sched_lr(const xa_sched *s, int64_t step) {
    return s->lr_max * xa_sched_factor(s, step);
}
