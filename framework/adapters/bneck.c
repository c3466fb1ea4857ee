/* adapters/bneck: the bottleneck module, AdapterHub's `Adapter` and `ParallelAdapter`
 * (adapters v1.2.0 methods/modeling.py; ADAPTERHUB.md §1.1, §1.2, §1.9), forward and backward.
 *
 *     zn  = LN_before(z)                      pre = zn W_d^T + b_d   (PHM: zn H_d + b_d)
 *     mid = act(pre)                          up  = (mid W_u^T + b_u) * scaling
 *     a   = Dropout(up) * g[b]                g[b] = mean_{t < lens[b]} sigmoid(z[b,t] W_g^T + b_g)
 *     o   = LN_after(a + r)  or  LN_after(a) + r   (adapter_residual_before_ln)
 *     ParallelAdapter: a = up * g[b] (no dropout), o = LN_after(a)
 *
 * Backward, with dA = dL/da and D = Dropout(up):
 *     dD = dA * g[b];   dg[b] = sum over the T rows of b of <dA, D>;
 *     dlogit[n] = dg[b] / lens[b] * s (1 - s) for the lens[b] real rows (0 on pads)
 *     dup = Dropout'(dD) + dup_fusion;  dupraw = dup * scaling;  then the two projections, the
 *     activation and LN_before through the tensor kernels.
 *
 * Every product goes through xa_sgemm (xa_linear_* or a direct call when the input gradient is
 * overwritten rather than accumulated). PHM layers rebuild H_d (C, d) and H_u (d, C) in the cache
 * on each forward (phm.c), so the products are the same as for Linear layers, without the
 * transpose. Memory: the cache is one caller block carved by cache_plan below; pieces that a
 * configuration does not need alias others (mid = pre and upraw = up in a forward-only cache,
 * a = up without dropout and gate). Backward scratch: three (N, max(C, d)) blocks whose roles
 * rotate (see xa_bneck_backward), plus one (C, d) block for the PHM dH.
 *
 * The cache records whether the last forward applied dropout: c->keep is NULL after a forward
 * without it (evaluation, p = 0, ParallelAdapter, fusion-only), else it points at the saved mask.
 *
 * Deliberate differences from AdapterHub: the gate mean runs over the real tokens (lens) only;
 * stochastic depth (DropPath) is not implemented; PHM layers are always Xavier-initialised
 * (AdapterHub's mam_adapter / houlsby inits would fail on a PHM layer: it has no .weight).
 */
#include "adapters/adapters.h"

#include <math.h>
#include <string.h>

/* ---- spec, sizes, binding ------------------------------------------------------------------ */

xa_status xa_bneck_spec_check(const xa_bneck_spec *s, const char *where) {
    const char *w = where ? where : "xa_bneck_spec_check";
    if (s->C < 1 || s->d < 1) {
        return xa_error_set(XA_STATUS_USAGE, w, "hidden size C >= 1 and bottleneck d >= 1",
                            "reduction_factor too large for the hidden size?",
                            "bottleneck module: C %d, d %d", s->C, s->d);
    }
    if ((unsigned)s->act >= XA_ACT_COUNT) {
        return xa_error_set(XA_STATUS_USAGE, w, "an xa_act value", NULL,
                            "bottleneck module: activation %d", (int)s->act);
    }
    if ((unsigned)s->scaling > XA_BNECK_SCALING_CHANNEL) {
        return xa_error_set(XA_STATUS_USAGE, w, "constant, learned or channel scaling", NULL,
                            "bottleneck module: scaling kind %d", (int)s->scaling);
    }
    if (s->scaling == XA_BNECK_SCALING_CONSTANT && !isfinite(s->scaling_value)) {
        return xa_error_set(XA_STATUS_USAGE, w, "a finite scaling", NULL,
                            "bottleneck module: scaling %g", (double)s->scaling_value);
    }
    if (!(s->dropout >= 0.0f && s->dropout < 1.0f)) {
        return xa_error_set(XA_STATUS_USAGE, w, "dropout in [0, 1)", NULL,
                            "bottleneck module: dropout %g", (double)s->dropout);
    }
    if (s->phm) {
        const xa_phm_spec *p = &s->phm_spec;
        if (p->n < 1 || p->rank < 1) {
            return xa_error_set(XA_STATUS_USAGE, w, "phm_dim >= 1 and phm_rank >= 1", NULL,
                                "PHM layer: phm_dim %d, phm_rank %d", p->n, p->rank);
        }
        if (s->C % p->n || s->d % p->n) {
            return xa_error_set(XA_STATUS_USAGE, w,
                                "hidden size and bottleneck divisible by phm_dim",
                                "choose a reduction_factor that gives a multiple of phm_dim",
                                "PHM layer: C %d, d %d, phm_dim %d", s->C, s->d, p->n);
        }
    }
    return XA_STATUS_OK;
}

size_t xa_bneck_sizes(const xa_bneck_spec *s, size_t numel[XA_BNECK_N_TENSORS]) {
    const size_t C = (size_t)s->C, d = (size_t)s->d;
    memset(numel, 0, sizeof(size_t) * XA_BNECK_N_TENSORS);
    if (s->ln_before) numel[XA_BNECK_LNB_W] = numel[XA_BNECK_LNB_B] = C;
    if (s->phm) {
        const size_t n = (size_t)s->phm_spec.n, r = (size_t)s->phm_spec.rank;
        if (s->phm_spec.factorized_W) {
            numel[XA_BNECK_DOWN_WL] = C * r; /* n * (C/n) * r */
            numel[XA_BNECK_DOWN_WR] = n * r * (d / n);
            numel[XA_BNECK_UP_WL] = d * r;
            numel[XA_BNECK_UP_WR] = n * r * (C / n);
        } else {
            numel[XA_BNECK_DOWN_W] = C * (d / n); /* n * (C/n) * (d/n) */
            numel[XA_BNECK_UP_W] = d * (C / n);
        }
        if (s->phm_spec.bias) {
            numel[XA_BNECK_DOWN_B] = d;
            numel[XA_BNECK_UP_B] = C;
        }
    } else {
        numel[XA_BNECK_DOWN_W] = d * C;
        numel[XA_BNECK_DOWN_B] = d;
        numel[XA_BNECK_UP_W] = C * d;
        numel[XA_BNECK_UP_B] = C;
    }
    if (s->ln_after) numel[XA_BNECK_LNA_W] = numel[XA_BNECK_LNA_B] = C;
    if (s->scaling == XA_BNECK_SCALING_LEARNED) numel[XA_BNECK_SCALING] = 1;
    if (s->scaling == XA_BNECK_SCALING_CHANNEL) numel[XA_BNECK_SCALING] = C;
    if (s->use_gating) {
        numel[XA_BNECK_GATE_W] = C;
        numel[XA_BNECK_GATE_B] = 1;
    }
    size_t total = 0;
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++)
        total += numel[i];
    return total;
}

void xa_bneck_bind(xa_bneck *m, const xa_bneck_spec *s, float *params, float *grads) {
    memset(m, 0, sizeof *m);
    m->spec = *s;
    xa_bneck_sizes(s, m->numel);
    xa_params_carve(params, m->numel, XA_BNECK_N_TENSORS, m->t);
    xa_params_carve(grads, m->numel, XA_BNECK_N_TENSORS, m->g);
}

/* ---- initialisation -------------------------------------------------------------------------- */

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* torch.nn.init.trunc_normal_(mean 0, std, a = -cut, b = cut): redraw outside the cut. */
static void fill_trunc_normal(xa_rng *rng, float *x, size_t n, float std, float cut) {
    for (size_t i = 0; i < n; i++) {
        float v;
        do {
            v = xa_rng_normal(rng) * std;
        } while (!(v >= -cut && v <= cut));
        x[i] = v;
    }
}

/* Xavier-normal on each (rows, cols) slice of an (n, rows, cols) tensor (quirk Q7). */
static void fill_xavier_slices(xa_rng *rng, float *x, int n, int rows, int cols) {
    const float std = sqrtf(2.0f / (float)(rows + cols));
    xa_rng_fill_normal(rng, x, (size_t)n * rows * cols, 0.0f, std);
}

/* A Linear weight (out, in) by the module's init scheme (down and up differ only for mam). */
static void init_linear_weight(xa_rng *rng, float *w, size_t numel, int fan_in, xa_bneck_init init,
                               int is_up) {
    switch (init) {
    case XA_BNECK_INIT_BERT: xa_rng_fill_normal(rng, w, numel, 0.0f, 0.02f); break;
    case XA_BNECK_INIT_MAM:
        if (is_up) {
            fill_const(w, numel, 0.0f);
        } else {
            /* kaiming_uniform_(a = sqrt 5): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
             * = 1 / sqrt(fan_in). */
            const float bound = 1.0f / sqrtf((float)fan_in);
            xa_rng_fill_uniform(rng, w, numel, -bound, bound);
        }
        break;
    case XA_BNECK_INIT_HOULSBY: fill_trunc_normal(rng, w, numel, 0.01f, 0.02f); break;
    }
}

void xa_bneck_init_weights(xa_bneck *m, xa_bneck_init init, xa_rng *rng) {
    const xa_bneck_spec *s = &m->spec;
    XA_ASSERT((unsigned)init <= XA_BNECK_INIT_HOULSBY);
    const int C = s->C, d = s->d;
    const int n = s->phm ? s->phm_spec.n : 1, r = s->phm ? s->phm_spec.rank : 1;
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++) {
        float *t = m->t[i];
        const size_t k = m->numel[i];
        if (!t || !k) continue;
        switch (i) {
        case XA_BNECK_LNB_W:
        case XA_BNECK_LNA_W:
        case XA_BNECK_SCALING: fill_const(t, k, 1.0f); break;
        case XA_BNECK_DOWN_W:
            if (s->phm)
                fill_xavier_slices(rng, t, n, C / n, d / n);
            else
                init_linear_weight(rng, t, k, C, init, 0);
            break;
        case XA_BNECK_UP_W:
            if (s->phm)
                fill_xavier_slices(rng, t, n, d / n, C / n);
            else
                init_linear_weight(rng, t, k, d, init, 1);
            break;
        case XA_BNECK_DOWN_WL: fill_xavier_slices(rng, t, n, C / n, r); break;
        case XA_BNECK_DOWN_WR: fill_xavier_slices(rng, t, n, r, d / n); break;
        case XA_BNECK_UP_WL: fill_xavier_slices(rng, t, n, d / n, r); break;
        case XA_BNECK_UP_WR: fill_xavier_slices(rng, t, n, r, C / n); break;
        case XA_BNECK_GATE_W:
            if (init == XA_BNECK_INIT_HOULSBY) {
                /* AdapterHub's houlsby branch leaves the gate at torch's nn.Linear default:
                 * kaiming-uniform(a = sqrt 5) weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias.
                 */
                const float bound = 1.0f / sqrtf((float)C);
                xa_rng_fill_uniform(rng, t, k, -bound, bound);
                xa_rng_fill_uniform(rng, m->t[XA_BNECK_GATE_B], 1, -bound, bound);
            } else {
                xa_rng_fill_normal(rng, t, k, 0.0f, 0.02f); /* init_bert_weights */
                m->t[XA_BNECK_GATE_B][0] = 0.0f;
            }
            break;
        case XA_BNECK_GATE_B: break;            /* with the weight */
        default: fill_const(t, k, 0.0f); break; /* biases, LayerNorm biases */
        }
    }
}

/* ---- names and shapes --------------------------------------------------------------------- */

const char *xa_bneck_tensor_name(const xa_bneck *m, int i) {
    if (i < 0 || i >= XA_BNECK_N_TENSORS || !m->numel[i]) return NULL;
    const int lnb = m->spec.ln_before, phm = m->spec.phm;
    switch (i) {
    case XA_BNECK_LNB_W: return "adapter_norm_before.weight";
    case XA_BNECK_LNB_B: return "adapter_norm_before.bias";
    case XA_BNECK_DOWN_W:
        if (phm) return lnb ? "adapter_down.1.W" : "adapter_down.0.W";
        return lnb ? "adapter_down.1.weight" : "adapter_down.0.weight";
    case XA_BNECK_DOWN_WL: return lnb ? "adapter_down.1.W_left" : "adapter_down.0.W_left";
    case XA_BNECK_DOWN_WR: return lnb ? "adapter_down.1.W_right" : "adapter_down.0.W_right";
    case XA_BNECK_DOWN_B:
        if (phm) return lnb ? "adapter_down.1.b" : "adapter_down.0.b";
        return lnb ? "adapter_down.1.bias" : "adapter_down.0.bias";
    case XA_BNECK_UP_W: return phm ? "adapter_up.W" : "adapter_up.weight";
    case XA_BNECK_UP_WL: return "adapter_up.W_left";
    case XA_BNECK_UP_WR: return "adapter_up.W_right";
    case XA_BNECK_UP_B: return phm ? "adapter_up.b" : "adapter_up.bias";
    case XA_BNECK_LNA_W: return "adapter_norm_after.weight";
    case XA_BNECK_LNA_B: return "adapter_norm_after.bias";
    case XA_BNECK_SCALING: return "scaling";
    case XA_BNECK_GATE_W: return "gate.weight";
    case XA_BNECK_GATE_B: return "gate.bias";
    }
    return NULL;
}

const char *xa_bneck_tensor_alias(const xa_bneck *m, int i) {
    if (i < 0 || i >= XA_BNECK_N_TENSORS || !m->numel[i]) return NULL;
    if (i == XA_BNECK_LNB_W) return "adapter_down.0.weight";
    if (i == XA_BNECK_LNB_B) return "adapter_down.0.bias";
    return NULL;
}

static int shape3(int64_t shape[3], int64_t a, int64_t b, int64_t c) {
    shape[0] = a;
    shape[1] = b;
    shape[2] = c;
    return 3;
}

int xa_bneck_tensor_shape(const xa_bneck *m, int i, int64_t shape[3]) {
    shape[0] = shape[1] = shape[2] = 0;
    if (i < 0 || i >= XA_BNECK_N_TENSORS || !m->numel[i]) return 0;
    const xa_bneck_spec *s = &m->spec;
    const int64_t C = s->C, d = s->d;
    const int64_t n = s->phm ? s->phm_spec.n : 1, r = s->phm ? s->phm_spec.rank : 1;
    switch (i) {
    case XA_BNECK_DOWN_W:
        if (s->phm) return shape3(shape, n, C / n, d / n);
        shape[0] = d;
        shape[1] = C;
        return 2;
    case XA_BNECK_UP_W:
        if (s->phm) return shape3(shape, n, d / n, C / n);
        shape[0] = C;
        shape[1] = d;
        return 2;
    case XA_BNECK_DOWN_WL: return shape3(shape, n, C / n, r);
    case XA_BNECK_DOWN_WR: return shape3(shape, n, r, d / n);
    case XA_BNECK_UP_WL: return shape3(shape, n, d / n, r);
    case XA_BNECK_UP_WR: return shape3(shape, n, r, C / n);
    case XA_BNECK_GATE_W:
        shape[0] = 1;
        shape[1] = C;
        return 2;
    default: shape[0] = (int64_t)m->numel[i]; return 1; /* LayerNorms, biases, scaling, gate.bias */
    }
}

/* ---- cache ------------------------------------------------------------------------------------
 */

/* The cache's pieces in carve order. PRE comes first: its address is the base of the block, from
 * which forward finds the keep mask again (cache_keep). A size of 0 means "absent or an alias". */
enum {
    SLOT_PRE = 0,  /* (N, d) */
    SLOT_MID,      /* (N, d) train; else mid = pre (activation in place) */
    SLOT_ZN,       /* (N, C) ln_before */
    SLOT_LNB_MEAN, /* (N) ln_before, train */
    SLOT_LNB_RSTD, /* (N) */
    SLOT_UPRAW,    /* (N, C) train with learned / channel scaling; else upraw = up */
    SLOT_UP,       /* (N, C) */
    SLOT_KEEP,     /* (N, C) bytes: train with dropout (not parallel) */
    SLOT_A,        /* (N, C) train with dropout or gating; else a = up (or o in evaluation) */
    SLOT_GATE_PRE, /* (N) gating */
    SLOT_GATE,     /* (N) gating */
    SLOT_SUM,      /* (N, C) train, ln_after, adapter_residual_before_ln; else the LN input is a */
    SLOT_LNA_MEAN, /* (N) ln_after, train */
    SLOT_LNA_RSTD, /* (N) */
    SLOT_HD,       /* (C, d) PHM */
    SLOT_HU,       /* (d, C) PHM */
    SLOT_S1,       /* (N, max(C, d)) train */
    SLOT_S2,
    SLOT_S3,
    SLOT_PHM, /* PHM: (C/n)(d/n) build scratch; train: + (C/n)(d/n) + a (C, d) dH */
    SLOT_COUNT
};

static int has_dropout(const xa_bneck_spec *s) {
    return s->dropout > 0.0f && !s->parallel;
}

static size_t cache_plan(const xa_bneck_spec *s, int N, int train, size_t off[SLOT_COUNT]) {
    const size_t NC = (size_t)N * s->C, Nd = (size_t)N * s->d, Nn = (size_t)N, F = sizeof(float);
    const size_t Cd = (size_t)s->C * s->d, Nm = (size_t)N * (s->C > s->d ? s->C : s->d);
    size_t b[SLOT_COUNT] = {0};
    b[SLOT_PRE] = Nd * F;
    if (train) b[SLOT_MID] = Nd * F;
    if (s->ln_before) {
        b[SLOT_ZN] = NC * F;
        if (train) b[SLOT_LNB_MEAN] = b[SLOT_LNB_RSTD] = Nn * F;
    }
    if (train && s->scaling != XA_BNECK_SCALING_CONSTANT) b[SLOT_UPRAW] = NC * F;
    b[SLOT_UP] = NC * F;
    if (train && has_dropout(s)) b[SLOT_KEEP] = NC;
    if (train && (has_dropout(s) || s->use_gating)) b[SLOT_A] = NC * F;
    if (s->use_gating) b[SLOT_GATE_PRE] = b[SLOT_GATE] = Nn * F;
    if (train && s->ln_after) {
        if (s->adapter_residual_before_ln && !s->parallel) b[SLOT_SUM] = NC * F;
        b[SLOT_LNA_MEAN] = b[SLOT_LNA_RSTD] = Nn * F;
    }
    if (s->phm) {
        const size_t pq = (size_t)(s->C / s->phm_spec.n) * (size_t)(s->d / s->phm_spec.n);
        b[SLOT_HD] = b[SLOT_HU] = Cd * F;
        b[SLOT_PHM] = (train ? 2 * pq + Cd : pq) * F;
    }
    if (train) b[SLOT_S1] = b[SLOT_S2] = b[SLOT_S3] = Nm * F;
    size_t total = xa_arena_plan(b, SLOT_COUNT, XA_ARENA_ALIGN, off);
    XA_ASSERT(total != SIZE_MAX);
    for (int i = 0; i < SLOT_COUNT; i++)
        if (!b[i]) off[i] = SIZE_MAX; /* absent */
    return total;
}

size_t xa_bneck_cache_bytes(const xa_bneck_spec *s, int N, int train) {
    size_t off[SLOT_COUNT];
    XA_ASSERT(N >= 1);
    return cache_plan(s, N, train, off);
}

static void *slot(void *mem, const size_t off[SLOT_COUNT], int i) {
    return off[i] == SIZE_MAX ? NULL : (char *)mem + off[i];
}

void xa_bneck_cache_bind(xa_bneck_cache *c, const xa_bneck_spec *s, void *mem, int N, int train) {
    size_t off[SLOT_COUNT];
    XA_ASSERT(N >= 1);
    cache_plan(s, N, train, off);
    memset(c, 0, sizeof *c);
    c->N = N;
    c->train = train != 0;
    c->pre = slot(mem, off, SLOT_PRE);
    c->mid = train ? slot(mem, off, SLOT_MID) : c->pre;
    c->zn = slot(mem, off, SLOT_ZN);
    c->lnb_mean = slot(mem, off, SLOT_LNB_MEAN);
    c->lnb_rstd = slot(mem, off, SLOT_LNB_RSTD);
    c->up = slot(mem, off, SLOT_UP);
    c->upraw = off[SLOT_UPRAW] != SIZE_MAX ? slot(mem, off, SLOT_UPRAW) : c->up;
    c->keep = slot(mem, off, SLOT_KEEP);
    c->a = off[SLOT_A] != SIZE_MAX ? slot(mem, off, SLOT_A) : c->up;
    c->gate_pre = slot(mem, off, SLOT_GATE_PRE);
    c->gate = slot(mem, off, SLOT_GATE);
    c->sum = off[SLOT_SUM] != SIZE_MAX ? slot(mem, off, SLOT_SUM) : (s->ln_after ? c->a : NULL);
    c->lna_mean = slot(mem, off, SLOT_LNA_MEAN);
    c->lna_rstd = slot(mem, off, SLOT_LNA_RSTD);
    c->Hd = slot(mem, off, SLOT_HD);
    c->Hu = slot(mem, off, SLOT_HU);
    c->s1 = slot(mem, off, SLOT_S1);
    c->s2 = slot(mem, off, SLOT_S2);
    c->s3 = slot(mem, off, SLOT_S3);
    c->phm_scratch = slot(mem, off, SLOT_PHM);
}

/* The keep mask's place in a bound cache (NULL when the cache has none). */
static uint8_t *cache_keep(const xa_bneck_cache *c, const xa_bneck_spec *s) {
    size_t off[SLOT_COUNT];
    cache_plan(s, c->N, c->train, off);
    return slot(c->pre, off, SLOT_KEEP);
}

/* The dH block of a training cache: after the two W_i slices of the PHM scratch. */
static float *cache_phm_dH(const xa_bneck_cache *c, const xa_bneck_spec *s) {
    const size_t pq = (size_t)(s->C / s->phm_spec.n) * (size_t)(s->d / s->phm_spec.n);
    return c->phm_scratch + 2 * pq;
}

/* ---- forward ----------------------------------------------------------------------------------
 */

static inline float sigmoidf_(float x) {
    return 1.0f / (1.0f + expf(-x));
}

static int seq_len(const int32_t *lens, int b, int T) {
    if (!lens) return T;
    XA_ASSERT(lens[b] >= 0 && lens[b] <= T);
    return lens[b];
}

/* gate_pre = z W_g^T + b_g; gate[b*T + t] = mean of sigmoid(gate_pre) over the lens[b] real
 * tokens of sequence b (0 for an empty sequence). */
static void gate_forward(const xa_bneck *m, xa_bneck_cache *c, const float *z, const int32_t *lens,
                         int B, int T) {
    const int C = m->spec.C, N = B * T;
    const float *w = m->t[XA_BNECK_GATE_W], bias = m->t[XA_BNECK_GATE_B][0];
    /* one dot product per row: a (N, C) x (C, 1) product would waste a GEMM micro-kernel */
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 65536)")
    for (int n = 0; n < N; n++) {
        const float *zr = z + (size_t)n * C;
        float acc = 0.0f;
        for (int j = 0; j < C; j++)
            acc += zr[j] * w[j];
        c->gate_pre[n] = acc + bias;
    }
    for (int b = 0; b < B; b++) {
        const int L = seq_len(lens, b, T);
        const float *gp = c->gate_pre + (size_t)b * T;
        double acc = 0.0;
        for (int t = 0; t < L; t++)
            acc += sigmoidf_(gp[t]);
        const float g = L > 0 ? (float)(acc / L) : 0.0f;
        for (int t = 0; t < T; t++)
            c->gate[(size_t)b * T + t] = g;
    }
}

int xa_bneck_output_is_residual_sum(const xa_bneck *m, int train) {
    const xa_bneck_spec *s = &m->spec;
    return !s->parallel && !s->ln_after && !s->use_gating && !(train && has_dropout(s));
}

int xa_bneck_rows_local(const xa_bneck *m) {
    return !m->spec.use_gating && !m->spec.phm;
}

/* p + r0 rows of width w, NULL staying NULL */
static float *rows_at(float *p, int64_t r0, int w) {
    return p ? p + r0 * w : NULL;
}

void xa_bneck_forward_rows(const xa_bneck *m, xa_bneck_cache *c, float *o, const float *z,
                           const float *r, int64_t r0, int n) {
    const int C = m->spec.C, d = m->spec.d;
    XA_ASSERT(xa_bneck_rows_local(m) && r0 >= 0 && n >= 1 && r0 + n <= c->N);
    /* a view of the cache at row r0: its per-row pieces shifted, nothing else (no dropout mask
     * in inference, no PHM matrices, no backward scratch) */
    xa_bneck_cache v = {0};
    v.N = c->N - (int)r0;
    v.train = c->train;
    v.row0 = c->row0 + r0;
    v.zn = rows_at(c->zn, r0, C);
    v.lnb_mean = rows_at(c->lnb_mean, r0, 1);
    v.lnb_rstd = rows_at(c->lnb_rstd, r0, 1);
    v.pre = rows_at(c->pre, r0, d);
    v.mid = rows_at(c->mid, r0, d);
    v.upraw = rows_at(c->upraw, r0, C);
    v.up = rows_at(c->up, r0, C);
    v.a = rows_at(c->a, r0, C);
    v.sum = rows_at(c->sum, r0, C);
    v.lna_mean = rows_at(c->lna_mean, r0, 1);
    v.lna_rstd = rows_at(c->lna_rstd, r0, 1);
    xa_bneck_forward(m, &v, o, z, r, NULL, 1, n, 0, NULL);
    /* what the whole forward leaves in the cache: no mask (one block writes it, none reads it) */
    if (r0 == 0) c->keep = NULL;
}

void xa_bneck_forward(const xa_bneck *m, xa_bneck_cache *c, float *o, const float *z,
                      const float *r, const int32_t *lens, int B, int T, int train, xa_rng *rng) {
    const xa_bneck_spec *s = &m->spec;
    const int C = s->C, d = s->d, N = B * T;
    const size_t NC = (size_t)N * C;
    XA_ASSERT(N >= 1 && N <= c->N);
    XA_ASSERT(!o || s->parallel || r);
    const int drop = train && has_dropout(s) && o != NULL;
    c->keep = drop ? cache_keep(c, s) : NULL;
    XA_ASSERT(!drop || (c->keep && rng));

    /* down: pre = LN_before?(z) W_d^T + b_d (PHM: zn H_d + b_d); mid = act(pre) */
    const float *zin = z;
    if (s->ln_before) {
        xa_layernorm_forward(c->zn, c->lnb_mean, c->lnb_rstd, z, m->t[XA_BNECK_LNB_W],
                             m->t[XA_BNECK_LNB_B], N, C, XA_ADAPTER_LN_EPS);
        zin = c->zn;
    }
    if (s->phm) {
        const float *rule = m->phm_rule;
        XA_ASSERT(rule);
        xa_phm_build(c->Hd, c->phm_scratch, rule, m->t[XA_BNECK_DOWN_W], m->t[XA_BNECK_DOWN_WL],
                     m->t[XA_BNECK_DOWN_WR], &s->phm_spec, C, d);
        xa_phm_build(c->Hu, c->phm_scratch, rule, m->t[XA_BNECK_UP_W], m->t[XA_BNECK_UP_WL],
                     m->t[XA_BNECK_UP_WR], &s->phm_spec, d, C);
        /* y = x H + b: bias broadcast first, product accumulated on it (as xa_linear_forward) */
        float beta = 0.0f;
        if (m->t[XA_BNECK_DOWN_B]) {
            for (int n = 0; n < N; n++)
                memcpy(c->pre + (size_t)n * d, m->t[XA_BNECK_DOWN_B], (size_t)d * sizeof(float));
            beta = 1.0f;
        }
        xa_sgemm(0, 0, N, d, C, 1.0f, zin, C, c->Hd, d, beta, c->pre, d);
    } else {
        xa_linear_forward(c->pre, zin, m->t[XA_BNECK_DOWN_W], m->t[XA_BNECK_DOWN_B], N, C, d);
    }
    xa_act_forward(c->mid, c->pre, (size_t)N * d, s->act);

    /* up = (mid W_u^T + b_u) * scaling */
    if (s->phm) {
        float beta = 0.0f;
        if (m->t[XA_BNECK_UP_B]) {
            for (int n = 0; n < N; n++)
                memcpy(c->upraw + (size_t)n * C, m->t[XA_BNECK_UP_B], (size_t)C * sizeof(float));
            beta = 1.0f;
        }
        xa_sgemm(0, 0, N, C, d, 1.0f, c->mid, d, c->Hu, C, beta, c->upraw, C);
    } else {
        xa_linear_forward(c->upraw, c->mid, m->t[XA_BNECK_UP_W], m->t[XA_BNECK_UP_B], N, d, C);
    }
    switch (s->scaling) {
    case XA_BNECK_SCALING_CONSTANT:
        if (s->scaling_value != 1.0f) xa_scale(c->up, s->scaling_value, NC); /* upraw == up */
        break;
    case XA_BNECK_SCALING_LEARNED: {
        const float k = m->t[XA_BNECK_SCALING][0];
        for (size_t i = 0; i < NC; i++)
            c->up[i] = c->upraw[i] * k;
        break;
    }
    case XA_BNECK_SCALING_CHANNEL: {
        const float *k = m->t[XA_BNECK_SCALING];
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if(NC > 65536)")
        for (int n = 0; n < N; n++) {
            const float *u = c->upraw + (size_t)n * C;
            float *y = c->up + (size_t)n * C;
            for (int j = 0; j < C; j++)
                y[j] = u[j] * k[j];
        }
        break;
    }
    }
    if (!o) return; /* fusion: only up is wanted */

    /* a = Dropout(up) * g[b]: into the cache when backward needs it, else straight into o */
    const float *a = c->up;
    if (drop || s->use_gating) {
        float *abuf = c->a != c->up ? c->a : o;
        const float *src = c->up;
        if (drop) {
            xa_dropout_mask_at(c->keep, NC, (uint64_t)c->row0 * (uint64_t)C, s->dropout, rng);
            xa_dropout_forward(abuf, c->up, c->keep, NC, s->dropout);
            src = abuf;
        }
        if (s->use_gating) {
            gate_forward(m, c, z, lens, B, T);
            XA_OMP("omp parallel for num_threads(xa_threads_get()) if(NC > 65536)")
            for (int n = 0; n < N; n++) {
                const float *x = src + (size_t)n * C;
                float *y = abuf + (size_t)n * C;
                const float g = c->gate[n];
                for (int j = 0; j < C; j++)
                    y[j] = x[j] * g;
            }
        }
        a = abuf;
    }

    /* residual and LN_after */
    const float *lna_w = m->t[XA_BNECK_LNA_W], *lna_b = m->t[XA_BNECK_LNA_B];
    if (s->parallel) {
        if (s->ln_after) {
            xa_layernorm_forward(o, c->lna_mean, c->lna_rstd, a, lna_w, lna_b, N, C,
                                 XA_ADAPTER_LN_EPS);
        } else if (a != o) {
            memcpy(o, a, NC * sizeof(float));
        }
    } else if (s->adapter_residual_before_ln) {
        /* a training cache keeps LN_after's input; otherwise the sum is formed in o */
        float *sum = s->ln_after && c->sum != c->a ? c->sum : o;
        xa_residual_forward(sum, a, r, NC);
        if (s->ln_after)
            xa_layernorm_forward(o, c->lna_mean, c->lna_rstd, sum, lna_w, lna_b, N, C,
                                 XA_ADAPTER_LN_EPS);
    } else {
        if (s->ln_after) {
            xa_layernorm_forward(o, c->lna_mean, c->lna_rstd, a, lna_w, lna_b, N, C,
                                 XA_ADAPTER_LN_EPS);
            xa_axpy(o, r, 1.0f, NC);
        } else {
            xa_residual_forward(o, a, r, NC);
        }
    }
}

/* ---- backward ---------------------------------------------------------------------------------
 */

/* Gate backward. dA (N, C) = dL/da; writes dd = dA * g[b] (dd may equal dA) and dlogit (N), then
 * runs the gate Linear backward (dz += dlogit W_g, dW_g += dlogit^T z, db_g += sum dlogit).
 * D = Dropout(up) is recomputed from up and the mask rather than saved. */
static void gate_backward(const xa_bneck *m, const xa_bneck_cache *c, float *dz, float *dd,
                          float *dlogit, const float *dA, const float *z, const int32_t *lens,
                          int B, int T) {
    const int C = m->spec.C;
    const uint8_t *keep = c->keep;
    const float inv_keep = keep ? 1.0f / (1.0f - m->spec.dropout) : 1.0f;
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)B * T * C > 65536)")
    for (int b = 0; b < B; b++) {
        double dg = 0.0;
        for (int t = 0; t < T; t++) {
            const size_t n = (size_t)b * T + t;
            const float *da = dA + n * C, *u = c->up + n * C;
            float *o = dd + n * C;
            const float g = c->gate[n];
            float acc = 0.0f;
            if (keep) {
                const uint8_t *k = keep + n * C;
                for (int j = 0; j < C; j++)
                    acc += da[j] * u[j] * (float)k[j];
                acc *= inv_keep;
            } else {
                for (int j = 0; j < C; j++)
                    acc += da[j] * u[j];
            }
            dg += acc;
            for (int j = 0; j < C; j++)
                o[j] = da[j] * g;
        }
        const int L = seq_len(lens, b, T);
        const float coef = L > 0 ? (float)(dg / L) : 0.0f;
        for (int t = 0; t < T; t++) {
            const size_t n = (size_t)b * T + t;
            const float sg = sigmoidf_(c->gate_pre[n]);
            dlogit[n] = t < L ? coef * sg * (1.0f - sg) : 0.0f;
        }
    }
    /* the gate Linear (C -> 1): dz[n] += dlogit[n] W_g; dW_g += sum_n dlogit[n] z[n]; db_g */
    const int N = B * T;
    const float *w = m->t[XA_BNECK_GATE_W];
    float *gw = m->g[XA_BNECK_GATE_W], *gb = m->g[XA_BNECK_GATE_B];
    if (dz) {
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 65536)")
        for (int n = 0; n < N; n++) {
            const float l = dlogit[n];
            float *dzr = dz + (size_t)n * C;
            for (int j = 0; j < C; j++)
                dzr[j] += l * w[j];
        }
    }
    if (gw) {
        /* column blocks: no reduction, and the sums do not depend on the thread count */
        const int blk = 64, n_blk = (C + blk - 1) / blk;
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 65536)")
        for (int k = 0; k < n_blk; k++) {
            const int j0 = k * blk, j1 = j0 + blk < C ? j0 + blk : C;
            for (int n = 0; n < N; n++) {
                const float l = dlogit[n];
                const float *zr = z + (size_t)n * C;
                for (int j = j0; j < j1; j++)
                    gw[j] += l * zr[j];
            }
        }
    }
    if (gb) {
        double acc = 0.0;
        for (int n = 0; n < N; n++)
            acc += dlogit[n];
        gb[0] += (float)acc;
    }
}

/* dL/d(up) (N, C) from dout through the residual, LN_after, the gate and dropout, plus dup.
 * Returns a pointer to it: dout, dup or one of the scratch blocks s1, s2, s3. */
static const float *backward_to_up(const xa_bneck *m, xa_bneck_cache *c, float *dz, float *dr,
                                   const float *dout, const float *dup, const float *z,
                                   const int32_t *lens, int B, int T) {
    const xa_bneck_spec *s = &m->spec;
    const int C = s->C, N = B * T;
    const size_t NC = (size_t)N * C;
    float *s1 = c->s1, *s2 = c->s2, *s3 = c->s3;
    if (!dout) return dup;

    /* dA = dL/da: through LN_after (into s1) and the residual */
    const float *dA = dout;
    /* LN_after's input: a + r, or a itself (which is up when neither dropout nor gate ran) */
    const float *a = c->keep || s->use_gating ? c->a : c->up;
    const float *ln_in = s->adapter_residual_before_ln && !s->parallel ? c->sum : a;
    if (!s->parallel && !s->adapter_residual_before_ln && dr) xa_axpy(dr, dout, 1.0f, NC);
    if (s->ln_after) {
        memset(s1, 0, NC * sizeof(float));
        xa_layernorm_backward(s1, m->g[XA_BNECK_LNA_W], m->g[XA_BNECK_LNA_B], dout, ln_in,
                              m->t[XA_BNECK_LNA_W], c->lna_mean, c->lna_rstd, N, C);
        dA = s1;
    }
    if (!s->parallel && s->adapter_residual_before_ln && dr) xa_axpy(dr, dA, 1.0f, NC);

    /* dD = dA * g[b] (in place when dA is s1), the gate's own gradients on the way */
    const float *dD = dA;
    if (s->use_gating) {
        float *dd = dA == s1 ? s1 : s3, *dlogit = dA == s1 ? s3 : s1;
        gate_backward(m, c, dz, dd, dlogit, dA, z, lens, B, T);
        dD = dd;
    }

    /* dup_total = Dropout'(dD) + dup */
    if (c->keep) {
        if (dup)
            memcpy(s2, dup, NC * sizeof(float));
        else
            memset(s2, 0, NC * sizeof(float));
        xa_dropout_backward(s2, dD, c->keep, NC, s->dropout);
        return s2;
    }
    if (!dup) return dD;
    if (dD == s1 || dD == s3) {
        xa_axpy((float *)dD, dup, 1.0f, NC); /* a scratch block of ours */
        return dD;
    }
    xa_residual_forward(s2, dD, dup, NC);
    return s2;
}

/* y = x H + b backward for a PHM layer in -> out: dH = x^T dy into the dH scratch, then into the
 * W factors and the rule; db += column sums. dx is not computed here. */
static void phm_param_backward(const xa_bneck *m, xa_bneck_cache *c, int iw, int iwl, int iwr,
                               int ib, const float *x, const float *dy, int N, int in, int out) {
    const xa_bneck_spec *s = &m->spec;
    if (m->g[iw] || m->g[iwl] || m->g[iwr] || m->phm_rule_grad) {
        float *dH = cache_phm_dH(c, s);
        xa_sgemm(1, 0, in, out, N, 1.0f, x, in, dy, out, 0.0f, dH, out);
        xa_phm_build_backward(m->phm_rule_grad, m->g[iw], m->g[iwl], m->g[iwr], c->phm_scratch, dH,
                              m->phm_rule, m->t[iw], m->t[iwl], m->t[iwr], &s->phm_spec, in, out);
    }
    if (m->g[ib]) xa_linear_backward(NULL, NULL, m->g[ib], dy, NULL, NULL, N, in, out);
}

void xa_bneck_backward(const xa_bneck *m, xa_bneck_cache *c, float *dz, float *dr,
                       const float *dout, const float *dup, const float *z, const float *r,
                       const int32_t *lens, int B, int T) {
    (void)r; /* the residual enters o linearly: its gradient needs no saved value */
    const xa_bneck_spec *s = &m->spec;
    const int C = s->C, d = s->d, N = B * T;
    const size_t NC = (size_t)N * C, Nd = (size_t)N * d;
    XA_ASSERT(c->s1 && N >= 1 && N <= c->N);
    XA_ASSERT(dout || dup);
    float *s1 = c->s1, *s2 = c->s2, *s3 = c->s3;

    /* 1. dL/d(up), then dL/d(upraw) = dup * scaling (and the scaling's gradient) */
    const float *dupt = backward_to_up(m, c, dz, dr, dout, dup, z, lens, B, T);
    const float *dupraw = dupt;
    float *gs = m->g[XA_BNECK_SCALING];
    switch (s->scaling) {
    case XA_BNECK_SCALING_CONSTANT:
        if (s->scaling_value != 1.0f) {
            const float k = s->scaling_value;
            for (size_t i = 0; i < NC; i++)
                s2[i] = dupt[i] * k; /* s2 may be dupt */
            dupraw = s2;
        }
        break;
    case XA_BNECK_SCALING_LEARNED: {
        const float k = m->t[XA_BNECK_SCALING][0];
        if (gs) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) {
                const float *g = dupt + (size_t)n * C, *u = c->upraw + (size_t)n * C;
                float part = 0.0f;
                for (int j = 0; j < C; j++)
                    part += g[j] * u[j];
                acc += part;
            }
            gs[0] += (float)acc;
        }
        for (size_t i = 0; i < NC; i++)
            s2[i] = dupt[i] * k;
        dupraw = s2;
        break;
    }
    case XA_BNECK_SCALING_CHANNEL: {
        const float *k = m->t[XA_BNECK_SCALING];
        for (int n = 0; n < N; n++) {
            const float *g = dupt + (size_t)n * C, *u = c->upraw + (size_t)n * C;
            float *y = s2 + (size_t)n * C;
            if (gs)
                for (int j = 0; j < C; j++)
                    gs[j] += g[j] * u[j];
            for (int j = 0; j < C; j++)
                y[j] = g[j] * k[j];
        }
        dupraw = s2;
        break;
    }
    }

    /* 2. up projection: upraw = mid W_u^T + b_u (PHM: mid H_u + b_u) */
    const int lnb_train = s->ln_before && (m->g[XA_BNECK_LNB_W] || m->g[XA_BNECK_LNB_B]);
    const int down_train = m->g[XA_BNECK_DOWN_W] || m->g[XA_BNECK_DOWN_WL] ||
                           m->g[XA_BNECK_DOWN_WR] || m->g[XA_BNECK_DOWN_B] ||
                           (s->phm && m->phm_rule_grad);
    const int need_below = dz || lnb_train || down_train;
    float *dmid = dupraw == s1 ? s3 : s1; /* (N, d): not the block dupraw lives in */
    if (s->phm) {
        phm_param_backward(m, c, XA_BNECK_UP_W, XA_BNECK_UP_WL, XA_BNECK_UP_WR, XA_BNECK_UP_B,
                           c->mid, dupraw, N, d, C);
        if (need_below) xa_sgemm(0, 1, N, d, C, 1.0f, dupraw, C, c->Hu, C, 0.0f, dmid, d);
    } else {
        xa_linear_backward(NULL, m->g[XA_BNECK_UP_W], m->g[XA_BNECK_UP_B], dupraw, c->mid,
                           m->t[XA_BNECK_UP_W], N, d, C);
        if (need_below)
            xa_sgemm(0, 0, N, d, C, 1.0f, dupraw, C, m->t[XA_BNECK_UP_W], d, 0.0f, dmid, d);
    }
    if (!need_below) return;

    /* 3. activation: dpre = dmid * act'(pre) (dupraw is dead, s2 is free) */
    float *dpre = s2;
    memset(dpre, 0, Nd * sizeof(float));
    xa_act_backward(dpre, dmid, c->pre, Nd, s->act);

    /* 4. down projection: pre = zin W_d^T + b_d (PHM: zin H_d + b_d); dzin into dz directly, or
     *    into the free dmid block when LN_before still has to see it */
    const float *zin = s->ln_before ? c->zn : z;
    float *dzin = s->ln_before ? dmid : dz;
    const int want_dzin = s->ln_before ? (dz || lnb_train) : dz != NULL;
    const float beta = s->ln_before ? 0.0f : 1.0f;
    if (s->phm) {
        phm_param_backward(m, c, XA_BNECK_DOWN_W, XA_BNECK_DOWN_WL, XA_BNECK_DOWN_WR,
                           XA_BNECK_DOWN_B, zin, dpre, N, C, d);
        if (want_dzin) xa_sgemm(0, 1, N, C, d, 1.0f, dpre, d, c->Hd, d, beta, dzin, C);
    } else {
        xa_linear_backward(NULL, m->g[XA_BNECK_DOWN_W], m->g[XA_BNECK_DOWN_B], dpre, zin,
                           m->t[XA_BNECK_DOWN_W], N, C, d);
        if (want_dzin)
            xa_sgemm(0, 0, N, C, d, 1.0f, dpre, d, m->t[XA_BNECK_DOWN_W], C, beta, dzin, C);
    }

    /* 5. LN_before */
    if (s->ln_before && want_dzin) {
        xa_layernorm_backward(dz, m->g[XA_BNECK_LNB_W], m->g[XA_BNECK_LNB_B], dzin, z,
                              m->t[XA_BNECK_LNB_W], c->lnb_mean, c->lnb_rstd, N, C);
    }
}
