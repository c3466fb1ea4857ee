/* adapters/fusion: an AdapterFusion layer (BertFusion, ADAPTERHUB.md §1.7), forward, backward and
 * the dynamic preset's value regulariser.
 *
 * Per token t, with the n adapter values u_i (N, C), query q (N, C) and residual r (N, C):
 *     v_i  = u_i + r                       if residual_before, else u_i
 *     ql   = q Wq^T + bq                   (q itself without `query`)
 *     k_i  = v_i Wk^T + bk                 (v_i without `key`)
 *     w_i  = v_i Wv^T                      (v_i without `value`; no bias)
 *     s_i  = ql . k_i
 *     s    = Dropout(s)                    (on the logits, quirk Q10; train only)
 *     p    = softmax_i(s / T)
 *     ctx  = sum_i p_i w_i,  out = ctx + r (out = ctx with residual_before)
 * value_before_softmax = False applies V after the weighting; without a bias that is the same
 * linear map, so both orders run the same code.
 *
 * The values are stacked into one (n*N, C) matrix so that K and V (and their backward) are a single
 * product over all n*N rows each; only the n-way dot products and weighted sums are per token.
 * Gradients: with ds_i = dL/ds_i after the softmax and dropout backward,
 *     dp_i = dout . w_i,   dw_i = p_i dout,   dql = sum_i ds_i k_i,   dk_i = ds_i ql
 *     dv_i = dk_i Wk + dw_i Wv   (or dk_i + dw_i without key / value)
 *     du_i += dv_i;  dr += dout (or sum_i dv_i with residual_before)
 *
 * Not here: temperature annealing (AdapterHub temperature=True), the unused `dense` layer of a
 * fusion without query, key and value.
 */
#include "adapters/adapters.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

xa_status xa_fusion_spec_check(const xa_fusion_spec *s, const char *where) {
    if (s->C < 1) {
        return xa_error_set(XA_STATUS_USAGE, where, "a hidden size C >= 1", NULL,
                            "xa_fusion_spec_check: C is %d", s->C);
    }
    if (s->n < 2) {
        return xa_error_set(XA_STATUS_USAGE, where, "at least 2 fused adapters",
                            "hint: use Stack for one adapter",
                            "xa_fusion_spec_check: %d adapter(s)", s->n);
    }
    if (!(s->T > 0.0f) || !isfinite(s->T)) {
        return xa_error_set(XA_STATUS_USAGE, where, "a temperature T > 0", NULL,
                            "xa_fusion_spec_check: T is %g", (double)s->T);
    }
    if (!(s->dropout >= 0.0f && s->dropout < 1.0f)) {
        return xa_error_set(XA_STATUS_USAGE, where, "dropout_prob in [0, 1)", NULL,
                            "xa_fusion_spec_check: dropout is %g", (double)s->dropout);
    }
    return XA_STATUS_OK;
}

size_t xa_fusion_sizes(const xa_fusion_spec *s, size_t numel[XA_FUSION_N_TENSORS]) {
    size_t CC = (size_t)s->C * s->C, C = (size_t)s->C;
    numel[XA_FUSION_QW] = s->query ? CC : 0;
    numel[XA_FUSION_QB] = s->query ? C : 0;
    numel[XA_FUSION_KW] = s->key ? CC : 0;
    numel[XA_FUSION_KB] = s->key ? C : 0;
    numel[XA_FUSION_VW] = s->value ? CC : 0;
    size_t total = 0;
    for (int i = 0; i < XA_FUSION_N_TENSORS; i++)
        total += numel[i];
    return total;
}

void xa_fusion_bind(xa_fusion *m, const xa_fusion_spec *s, float *params, float *grads) {
    memset(m, 0, sizeof *m);
    m->spec = *s;
    xa_fusion_sizes(s, m->numel);
    xa_params_carve(params, m->numel, XA_FUSION_N_TENSORS, m->t);
    xa_params_carve(grads, m->numel, XA_FUSION_N_TENSORS, m->g);
}

void xa_fusion_init_weights(xa_fusion *m, xa_rng *rng) {
    const int C = m->spec.C;
    if (m->t[XA_FUSION_QW]) {
        xa_rng_fill_normal(rng, m->t[XA_FUSION_QW], m->numel[XA_FUSION_QW], 0.0f, 0.02f);
        memset(m->t[XA_FUSION_QB], 0, m->numel[XA_FUSION_QB] * sizeof(float));
    }
    if (m->t[XA_FUSION_KW]) {
        xa_rng_fill_normal(rng, m->t[XA_FUSION_KW], m->numel[XA_FUSION_KW], 0.0f, 0.02f);
        memset(m->t[XA_FUSION_KB], 0, m->numel[XA_FUSION_KB] * sizeof(float));
    }
    float *v = m->t[XA_FUSION_VW];
    if (!v) return;
    if (m->spec.value_initialized) {
        /* AdapterHub: (zeros(H, H) + 1e-6).fill_diagonal_(1.0) */
        for (size_t i = 0; i < m->numel[XA_FUSION_VW]; i++)
            v[i] = 1e-6f;
        for (int i = 0; i < C; i++)
            v[(size_t)i * C + i] = 1.0f;
    } else {
        xa_rng_fill_normal(rng, v, m->numel[XA_FUSION_VW], 0.0f, 0.02f);
    }
}

const char *xa_fusion_tensor_name(const xa_fusion *m, int i) {
    static const char *const names[XA_FUSION_N_TENSORS] = {
        "query.weight", "query.bias", "key.weight", "key.bias", "value.weight"};
    if (i < 0 || i >= XA_FUSION_N_TENSORS || m->numel[i] == 0) return NULL;
    return names[i];
}

/* ---- cache ------------------------------------------------------------------------------------
 */

typedef struct fusion_views {
    float *meta;   /* (16) [0]: the dropout p the last forward applied (0: none) */
    float *vin;    /* (n*N, C) stacked values v_i (u_i, + r with residual_before) */
    float *ql;     /* (N, C) query layer (query only) */
    float *kl;     /* (n*N, C) key layer (key only) */
    float *vl;     /* (n*N, C) value layer (value only) */
    float *probs;  /* (N, n) softmax output (logits before it) */
    uint8_t *keep; /* (N*n) dropout mask (dropout > 0 only) */
    /* training only: */
    float *dx;   /* (n*N, C) gradient of the value or key layer */
    float *dvin; /* (n*N, C) gradient of the stacked values */
    float *dql;  /* (N, C) */
    float *dp;   /* (N, n) */
} fusion_views;

static size_t fusion_plan(const xa_fusion_spec *s, int N, int train, float *base, fusion_views *v) {
    size_t nN = (size_t)s->n * N, C = (size_t)s->C, off = 0;
    size_t keep_floats = s->dropout > 0.0f ? (nN + sizeof(float) - 1) / sizeof(float) : 0;
    float **views[] = {&v->meta, &v->vin, &v->ql,   &v->kl,  &v->vl, &v->probs,
                       NULL,     &v->dx,  &v->dvin, &v->dql, &v->dp};
    size_t sizes[] = {16,
                      nN * C,
                      s->query ? (size_t)N * C : 0,
                      s->key ? nN * C : 0,
                      s->value ? nN * C : 0,
                      nN,
                      keep_floats,
                      train ? nN * C : 0,
                      train ? nN * C : 0,
                      train ? (size_t)N * C : 0,
                      train ? nN : 0};
    for (int i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++) {
        float *p = base && sizes[i] ? base + off : NULL;
        if (views[i]) {
            *views[i] = p;
        } else {
            v->keep = (uint8_t *)p;
        }
        off += (sizes[i] + 15) & ~(size_t)15; /* 16 floats = 64 bytes */
    }
    return off;
}

size_t xa_fusion_cache_bytes(const xa_fusion_spec *s, int N, int train) {
    fusion_views v;
    return fusion_plan(s, N, train, NULL, &v) * sizeof(float) + XA_ARENA_ALIGN;
}

void xa_fusion_cache_bind(xa_fusion_cache *c, const xa_fusion_spec *s, void *mem, int N,
                          int train) {
    XA_ASSERT(mem != NULL && N >= 1);
    fusion_views v;
    uintptr_t a = ((uintptr_t)mem + XA_ARENA_ALIGN - 1) & ~(uintptr_t)(XA_ARENA_ALIGN - 1);
    c->N = N;
    c->train = train != 0;
    c->row0 = 0;
    c->buf = (float *)a;
    c->n_buf = fusion_plan(s, N, c->train, NULL, &v);
    c->buf[0] = 0.0f;
}

static fusion_views fusion_views_of(const xa_fusion *m, const xa_fusion_cache *c) {
    fusion_views v;
    fusion_plan(&m->spec, c->N, c->train, c->buf, &v);
    return v;
}

/* ---- forward and backward ---------------------------------------------------------------------
 */

static float dotf(const float *a, const float *b, int C) {
    float s = 0.0f;
    for (int j = 0; j < C; j++)
        s += a[j] * b[j];
    return s;
}

void xa_fusion_forward(const xa_fusion *m, xa_fusion_cache *c, float *out, float *probs_out,
                       const float *query, const float *const *ups, const float *r, int N,
                       int train, xa_rng *rng) {
    const xa_fusion_spec *s = &m->spec;
    const int C = s->C, n = s->n;
    XA_ASSERT(N >= 1 && N <= c->N);
    fusion_views v = fusion_views_of(m, c);
    const size_t NC = (size_t)N * C;
    const int nN = n * N;

    /* Stacked values: rows [i*N, (i+1)*N) are adapter i. */
    for (int i = 0; i < n; i++) {
        float *vi = v.vin + i * NC;
        if (s->residual_before) {
            xa_residual_forward(vi, ups[i], r, NC);
        } else {
            memcpy(vi, ups[i], NC * sizeof(float));
        }
    }
    const float *ql = query, *kl = v.vin, *vl = v.vin;
    if (s->query) {
        xa_linear_forward(v.ql, query, m->t[XA_FUSION_QW], m->t[XA_FUSION_QB], N, C, C);
        ql = v.ql;
    }
    if (s->key) {
        xa_linear_forward(v.kl, v.vin, m->t[XA_FUSION_KW], m->t[XA_FUSION_KB], nN, C, C);
        kl = v.kl;
    }
    if (s->value) {
        xa_linear_forward(v.vl, v.vin, m->t[XA_FUSION_VW], NULL, nN, C, C);
        vl = v.vl;
    }

    /* Logits, dropout on them, softmax over the n adapters. */
    const int drop = train && s->dropout > 0.0f;
    if (drop) {
        XA_ASSERT(rng != NULL);
        xa_dropout_mask_at(v.keep, (size_t)nN, (uint64_t)c->row0 * (uint64_t)n, s->dropout, rng);
    }
    v.meta[0] = drop ? s->dropout : 0.0f;
    const float inv_T = 1.0f / s->T, keep_scale = drop ? 1.0f / (1.0f - s->dropout) : 1.0f;
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * n * C > 65536)")
    for (int t = 0; t < N; t++) {
        float *p = v.probs + (size_t)t * n;
        const float *qt = ql + (size_t)t * C;
        for (int i = 0; i < n; i++) {
            float sc = dotf(qt, kl + (i * NC + (size_t)t * C), C);
            if (drop) sc *= v.keep[(size_t)t * n + i] ? keep_scale : 0.0f;
            p[i] = sc * inv_T;
        }
    }
    xa_softmax_forward(v.probs, v.probs, N, n);
    if (probs_out) memcpy(probs_out, v.probs, (size_t)nN * sizeof(float));

    /* ctx = sum_i p_i w_i (+ r) */
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * n * C > 65536)")
    for (int t = 0; t < N; t++) {
        float *o = out + (size_t)t * C;
        const float *p = v.probs + (size_t)t * n;
        if (s->residual_before) {
            memset(o, 0, (size_t)C * sizeof(float));
        } else {
            memcpy(o, r + (size_t)t * C, (size_t)C * sizeof(float));
        }
        for (int i = 0; i < n; i++) {
            const float *w = vl + (i * NC + (size_t)t * C);
            for (int j = 0; j < C; j++)
                o[j] += p[i] * w[j];
        }
    }
}

void xa_fusion_backward(const xa_fusion *m, xa_fusion_cache *c, float *dquery, float *const *dups,
                        float *dr, const float *dout, const float *query, const float *const *ups,
                        const float *r, int N) {
    (void)ups;
    (void)r; /* the stacked values in the cache already hold u_i (+ r) */
    const xa_fusion_spec *s = &m->spec;
    const int C = s->C, n = s->n;
    XA_ASSERT(c->train && N >= 1 && N <= c->N);
    fusion_views v = fusion_views_of(m, c);
    const size_t NC = (size_t)N * C;
    const int nN = n * N;
    const float *ql = s->query ? v.ql : query, *kl = s->key ? v.kl : v.vin;
    const float *vl = s->value ? v.vl : v.vin;
    const float p_drop = v.meta[0];
    const float keep_scale = p_drop > 0.0f ? 1.0f / (1.0f - p_drop) : 1.0f, inv_T = 1.0f / s->T;

    int want_dups = 0;
    for (int i = 0; dups && i < n; i++)
        want_dups |= dups[i] != NULL;
    const int need_dvin = want_dups || (s->residual_before && dr);
    if (need_dvin) memset(v.dvin, 0, (size_t)nN * C * sizeof(float));

    /* dp_i = dout . w_i, then back through softmax(s / T) and the logit dropout: dp becomes dL/ds.
     */
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * n * C > 65536)")
    for (int t = 0; t < N; t++) {
        const float *d = dout + (size_t)t * C, *p = v.probs + (size_t)t * n;
        float *dp = v.dp + (size_t)t * n;
        float dot_pd = 0.0f;
        for (int i = 0; i < n; i++) {
            dp[i] = dotf(d, vl + (i * NC + (size_t)t * C), C);
            dot_pd += p[i] * dp[i];
        }
        for (int i = 0; i < n; i++) {
            float ds = p[i] * (dp[i] - dot_pd) * inv_T;
            if (p_drop > 0.0f) ds *= v.keep[(size_t)t * n + i] ? keep_scale : 0.0f;
            dp[i] = ds;
        }
    }

    /* Value path: dw_i = p_i dout. */
    float *gvw = m->g[XA_FUSION_VW];
    if (need_dvin || (s->value && gvw)) {
        float *dw = s->value ? v.dx : v.dvin; /* without V the values get dw directly */
        if (s->value || need_dvin) {
            XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * n * C > 65536)")
            for (int t = 0; t < N; t++) {
                const float *d = dout + (size_t)t * C;
                for (int i = 0; i < n; i++) {
                    float pi = v.probs[(size_t)t * n + i];
                    float *o = dw + (i * NC + (size_t)t * C);
                    if (s->value) {
                        for (int j = 0; j < C; j++)
                            o[j] = pi * d[j];
                    } else {
                        for (int j = 0; j < C; j++)
                            o[j] += pi * d[j];
                    }
                }
            }
        }
        if (s->value)
            xa_linear_backward(need_dvin ? v.dvin : NULL, gvw, NULL, v.dx, v.vin,
                               m->t[XA_FUSION_VW], nN, C, C);
    }

    /* Key path: dk_i = ds_i ql. */
    float *gkw = m->g[XA_FUSION_KW], *gkb = m->g[XA_FUSION_KB];
    if (need_dvin || (s->key && (gkw || gkb))) {
        float *dk = s->key ? v.dx : v.dvin;
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * n * C > 65536)")
        for (int t = 0; t < N; t++) {
            const float *qt = ql + (size_t)t * C;
            for (int i = 0; i < n; i++) {
                float ds = v.dp[(size_t)t * n + i];
                float *o = dk + (i * NC + (size_t)t * C);
                if (s->key) {
                    for (int j = 0; j < C; j++)
                        o[j] = ds * qt[j];
                } else {
                    for (int j = 0; j < C; j++)
                        o[j] += ds * qt[j];
                }
            }
        }
        if (s->key)
            xa_linear_backward(need_dvin ? v.dvin : NULL, gkw, gkb, v.dx, v.vin, m->t[XA_FUSION_KW],
                               nN, C, C);
    }

    /* Query path: dql = sum_i ds_i k_i. */
    float *gqw = m->g[XA_FUSION_QW], *gqb = m->g[XA_FUSION_QB];
    if (dquery || (s->query && (gqw || gqb))) {
        float *dq = s->query ? v.dql : dquery;
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * n * C > 65536)")
        for (int t = 0; t < N; t++) {
            float *o = dq + (size_t)t * C;
            if (s->query) memset(o, 0, (size_t)C * sizeof(float));
            for (int i = 0; i < n; i++) {
                float ds = v.dp[(size_t)t * n + i];
                const float *k = kl + (i * NC + (size_t)t * C);
                for (int j = 0; j < C; j++)
                    o[j] += ds * k[j];
            }
        }
        if (s->query)
            xa_linear_backward(dquery, gqw, gqb, v.dql, query, m->t[XA_FUSION_QW], N, C, C);
    }

    /* The stacked value gradient goes to each adapter, and to r with residual_before. */
    if (need_dvin) {
        for (int i = 0; i < n; i++) {
            if (dups && dups[i]) xa_axpy(dups[i], v.dvin + i * NC, 1.0f, NC);
            if (s->residual_before && dr) xa_axpy(dr, v.dvin + i * NC, 1.0f, NC);
        }
    }
    if (!s->residual_before && dr) xa_axpy(dr, dout, 1.0f, NC);
}

float xa_fusion_regularizer(const xa_fusion *m, float coef) {
    const float *w = m->t[XA_FUSION_VW];
    if (!w) return 0.0f;
    const int C = m->spec.C;
    float *g = m->g[XA_FUSION_VW];
    double acc = 0.0;
    for (int i = 0; i < C; i++) {
        for (int j = 0; j < C; j++) {
            size_t k = (size_t)i * C + j;
            float diff = (i == j ? 1.0f : 0.0f) - w[k]; /* (I - V) */
            acc += (double)diff * diff;
            if (g) g[k] += -2.0f * coef * diff;
        }
    }
    return (float)(coef * acc);
}
