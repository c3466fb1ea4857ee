/* Tests of the bottleneck adapter module (bneck.c) and the PHM layer (phm.c):
 *  - xa_phm_build against xa_phm_build_ref, xa_phm_build_backward by finite differences;
 *  - xa_bneck_forward against a plain double-precision reference written from the AdapterHub
 *    formulas (ADAPTERHUB.md §1.1), and xa_bneck_backward by finite differences (dz, dr, every
 *    parameter gradient and the PHM rule) over many flag combinations;
 *  - the sizes, names and shapes tables, the initialisation statistics and spec_check.
 *
 * Finite differences: L = sum(o * dout) (+ sum(up * dup) on the fusion path), accumulated in
 * double from the float forward; each element moves by +-h (h = 1e-3) and (L+ - L-)/(2h) is
 * compared with the analytic gradient elementwise with atol + rtol*|ref| (3e-3 + 1e-2*|ref|).
 * With h = 1e-3 the float forward contributes ~3e-4 of noise; the curvature term is ~1e-6.
 * Dropout cases reseed the generator before each forward, so every evaluation sees one mask;
 * relu / leakyrelu cases redraw z until no pre-activation lies within 0.02 of the kink.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapters.h"
#include "core/core.h"
#include "tensor/tensor.h"

/* ---- fixture and helpers ------------------------------------------------------------------- */

static int group_setup(void **state) {
    (void)state;
    xa_threads_set(1);
    return 0;
}

#define FD_H    1e-3f
#define FD_ATOL 3e-3f
#define FD_RTOL 1e-2f

/* ---- PHM build --------------------------------------------------------------------------------
 */

typedef struct phm_ctx {
    float *H, *scratch;
    const float *rule, *w, *wl, *wr, *G;
    xa_phm_spec s;
    int in, out;
} phm_ctx;

static double phm_loss(void *p) {
    phm_ctx *c = p;
    xa_phm_build(c->H, c->scratch, c->rule, c->w, c->wl, c->wr, &c->s, c->in, c->out);
    return xt_dot(c->H, c->G, (size_t)c->in * c->out);
}

static void phm_case(xa_rng *rng, int in, int out, int n, int rank, int fact) {
    const int P = in / n, Q = out / n;
    xa_phm_spec s = {n, rank, fact, 1};
    float *rule = xt_frandn(rng, (size_t)n * n * n, 1.0f);
    float *w = fact ? NULL : xt_frandn(rng, (size_t)n * P * Q, 1.0f);
    float *wl = fact ? xt_frandn(rng, (size_t)n * P * rank, 1.0f) : NULL;
    float *wr = fact ? xt_frandn(rng, (size_t)n * rank * Q, 1.0f) : NULL;
    float *H = xt_fzeros((size_t)in * out), *Hr = xt_fzeros((size_t)in * out);
    float *scratch = xt_fzeros((size_t)2 * P * Q);
    /* garbage in H: build must overwrite, not accumulate */
    for (size_t i = 0; i < (size_t)in * out; i++)
        H[i] = 1e3f;
    xa_phm_build(H, scratch, rule, w, wl, wr, &s, in, out);
    xa_phm_build_ref(Hr, rule, w, wl, wr, &s, in, out);
    char label[160];
    snprintf(label, sizeof label, "phm build vs ref in %d out %d n %d r %d fact %d threads %d", in,
             out, n, rank, fact, xa_threads_get());
    /* sums of n * rank products of N(0,1) terms in float */
    xt_assert_close(label, H, Hr, (size_t)in * out, 1e-5f, 1e-5f);

    /* the explicit formula at one element, independent of the ref's loop order */
    if (!fact && in > 1 && out > 1 && n > 1) {
        const int a = 1, p = P - 1, b = n - 1, q = Q > 1 ? 1 : 0;
        double e = 0.0;
        for (int i = 0; i < n; i++)
            e += (double)rule[(i * n + a) * n + b] * w[((size_t)i * P + p) * Q + q];
        float ef = (float)e;
        xt_assert_close("phm H[a*P+p, b*Q+q] formula", &Hr[(size_t)(a * P + p) * out + b * Q + q],
                        &ef, 1, 1e-5f, 1e-5f);
    }

    float *G = xt_frandn(rng, (size_t)in * out, 1.0f);
    size_t nw = (size_t)n * P * Q, nl = (size_t)n * P * rank, nr = (size_t)n * rank * Q;
    if (in * out > 4096) {
        /* large: the threaded backward against the single-threaded one */
        const int threads = xa_threads_get();
        float *g1[4], *g2[4];
        size_t sz[4] = {(size_t)n * n * n, nw, nl, nr};
        for (int j = 0; j < 4; j++) {
            g1[j] = xt_fzeros(sz[j]);
            g2[j] = xt_fzeros(sz[j]);
        }
        xa_phm_build_backward(g1[0], fact ? NULL : g1[1], fact ? g1[2] : NULL, fact ? g1[3] : NULL,
                              scratch, G, rule, w, wl, wr, &s, in, out);
        xa_threads_set(1);
        xa_phm_build_backward(g2[0], fact ? NULL : g2[1], fact ? g2[2] : NULL, fact ? g2[3] : NULL,
                              scratch, G, rule, w, wl, wr, &s, in, out);
        xa_threads_set(threads);
        for (int j = 0; j < 4; j++) {
            snprintf(label, sizeof label, "phm backward grad %d, %d threads vs 1", j, threads);
            xt_assert_close(label, g1[j], g2[j], sz[j], 1e-4f, 1e-5f);
        }
        return;
    }
    /* backward by finite differences of L = <H, G>; start gradients at 0.25 (accumulation) */
    float *drule = xt_fzeros((size_t)n * n * n), *dw = fact ? NULL : xt_fzeros(nw);
    float *dwl = fact ? xt_fzeros(nl) : NULL, *dwr = fact ? xt_fzeros(nr) : NULL;
    for (int i = 0; i < n * n * n; i++)
        drule[i] = 0.25f;
    if (dw)
        for (size_t i = 0; i < nw; i++)
            dw[i] = 0.25f;
    if (dwl)
        for (size_t i = 0; i < nl; i++)
            dwl[i] = 0.25f;
    if (dwr)
        for (size_t i = 0; i < nr; i++)
            dwr[i] = 0.25f;
    xa_phm_build_backward(drule, dw, dwl, dwr, scratch, G, rule, w, wl, wr, &s, in, out);
    for (int i = 0; i < n * n * n; i++)
        drule[i] -= 0.25f;
    if (dw)
        for (size_t i = 0; i < nw; i++)
            dw[i] -= 0.25f;
    if (dwl)
        for (size_t i = 0; i < nl; i++)
            dwl[i] -= 0.25f;
    if (dwr)
        for (size_t i = 0; i < nr; i++)
            dwr[i] -= 0.25f;
    phm_ctx c = {H, scratch, rule, w, wl, wr, G, s, in, out};
    /* H is linear in rule and W and bilinear in (W_left, W_right): the differences are exact up
     * to float rounding of L (~1e-5 relative) */
    snprintf(label, sizeof label, "phm drule vs FD (%dx%d n %d fact %d)", in, out, n, fact);
    xt_check_fd(label, phm_loss, &c, rule, drule, (size_t)n * n * n, 1e-2f, 2e-3f, 2e-3f);
    if (fact) {
        xt_check_fd("phm dW_left vs FD", phm_loss, &c, wl, dwl, nl, 1e-2f, 2e-3f, 2e-3f);
        xt_check_fd("phm dW_right vs FD", phm_loss, &c, wr, dwr, nr, 1e-2f, 2e-3f, 2e-3f);
    } else {
        xt_check_fd("phm dW vs FD", phm_loss, &c, w, dw, nw, 1e-2f, 2e-3f, 2e-3f);
    }
    /* frozen W, rule only; and W only: each piece alone gives the same numbers */
    float *drule2 = xt_fzeros((size_t)n * n * n);
    xa_phm_build_backward(drule2, NULL, NULL, NULL, scratch, G, rule, w, wl, wr, &s, in, out);
    xt_assert_close("phm drule alone", drule2, drule, (size_t)n * n * n, 1e-6f, 1e-6f);
}

static void test_phm_build(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 11, 0);
    phm_case(&rng, 12, 8, 4, 3, 1);
    phm_case(&rng, 12, 8, 4, 3, 0);
    phm_case(&rng, 6, 9, 3, 1, 1);
    phm_case(&rng, 6, 9, 3, 1, 0);
    phm_case(&rng, 5, 7, 1, 2, 1); /* n = 1: H = W */
    phm_case(&rng, 5, 7, 1, 2, 0);
    phm_case(&rng, 8, 4, 4, 1, 1); /* out/n = 1 */
    /* large enough for the threaded split, with 1 and several threads */
    for (int threads = 1; threads <= 3; threads += 2) {
        xa_threads_set(threads);
        phm_case(&rng, 512, 192, 4, 2, 1);
        phm_case(&rng, 384, 256, 8, 1, 0);
    }
}

/* ---- reference forward (double, naive loops, straight from the formulas) -------------------- */

static void ref_layernorm(double *y, const double *x, const float *w, const float *b, int C) {
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < C; j++)
        mean += x[j];
    mean /= C;
    for (int j = 0; j < C; j++)
        var += (x[j] - mean) * (x[j] - mean);
    var /= C;
    const double rstd = 1.0 / sqrt(var + 1e-5);
    for (int j = 0; j < C; j++)
        y[j] = (x[j] - mean) * rstd * w[j] + b[j];
}

static double ref_act(double x, xa_act act) {
    switch (act) {
    case XA_ACT_LINEAR: return x;
    case XA_ACT_RELU: return x > 0 ? x : 0;
    case XA_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case XA_ACT_GELU_NEW:
        return 0.5 * x *
               (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case XA_ACT_SILU: return x / (1.0 + exp(-x));
    case XA_ACT_TANH: return tanh(x);
    case XA_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case XA_ACT_LEAKYRELU: return x > 0 ? x : 0.01 * x;
    case XA_ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    case XA_ACT_COUNT: break;
    }
    fail_msg("bad act %d", (int)act);
    return 0;
}

/* o (N, C) (NULL: skip) and up (N, C) of the module, with an optional dropout mask. */
static void ref_forward(const xa_bneck *m, float *o, float *up_out, const float *z, const float *r,
                        const int32_t *lens, int B, int T, const uint8_t *keep) {
    const xa_bneck_spec *s = &m->spec;
    const int C = s->C, d = s->d, N = B * T;
    float *Hd = NULL, *Hu = NULL;
    if (s->phm) {
        Hd = xt_fzeros((size_t)C * d);
        Hu = xt_fzeros((size_t)d * C);
        xa_phm_build_ref(Hd, m->phm_rule, m->t[XA_BNECK_DOWN_W], m->t[XA_BNECK_DOWN_WL],
                         m->t[XA_BNECK_DOWN_WR], &s->phm_spec, C, d);
        xa_phm_build_ref(Hu, m->phm_rule, m->t[XA_BNECK_UP_W], m->t[XA_BNECK_UP_WL],
                         m->t[XA_BNECK_UP_WR], &s->phm_spec, d, C);
    }
    double *up = xt_alloc(sizeof(double) * (size_t)N * C);
    double *x = xt_alloc(sizeof(double) * C), *zn = xt_alloc(sizeof(double) * C);
    double *mid = xt_alloc(sizeof(double) * d);
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < C; j++)
            x[j] = z[(size_t)n * C + j];
        if (s->ln_before)
            ref_layernorm(zn, x, m->t[XA_BNECK_LNB_W], m->t[XA_BNECK_LNB_B], C);
        else
            memcpy(zn, x, sizeof(double) * C);
        for (int k = 0; k < d; k++) {
            double acc = m->t[XA_BNECK_DOWN_B] ? m->t[XA_BNECK_DOWN_B][k] : 0.0;
            for (int j = 0; j < C; j++)
                acc += zn[j] *
                       (s->phm ? Hd[(size_t)j * d + k] : m->t[XA_BNECK_DOWN_W][(size_t)k * C + j]);
            mid[k] = ref_act(acc, s->act);
        }
        for (int j = 0; j < C; j++) {
            double acc = m->t[XA_BNECK_UP_B] ? m->t[XA_BNECK_UP_B][j] : 0.0;
            for (int k = 0; k < d; k++)
                acc += mid[k] *
                       (s->phm ? Hu[(size_t)k * C + j] : m->t[XA_BNECK_UP_W][(size_t)j * d + k]);
            double sc = s->scaling == XA_BNECK_SCALING_CONSTANT  ? s->scaling_value
                        : s->scaling == XA_BNECK_SCALING_LEARNED ? m->t[XA_BNECK_SCALING][0]
                                                                 : m->t[XA_BNECK_SCALING][j];
            up[(size_t)n * C + j] = acc * sc;
            up_out[(size_t)n * C + j] = (float)(acc * sc);
        }
    }
    if (!o) return;
    double *a = xt_alloc(sizeof(double) * (size_t)N * C), *y = xt_alloc(sizeof(double) * C);
    for (size_t i = 0; i < (size_t)N * C; i++) {
        a[i] = up[i];
        if (keep && !s->parallel) a[i] = keep[i] ? up[i] / (1.0 - s->dropout) : 0.0;
    }
    for (int b = 0; b < B; b++) {
        double g = 1.0;
        if (s->use_gating) {
            const int L = lens ? lens[b] : T;
            double acc = 0.0;
            for (int t = 0; t < L; t++) {
                double l = m->t[XA_BNECK_GATE_B][0];
                for (int j = 0; j < C; j++)
                    l += (double)z[((size_t)b * T + t) * C + j] * m->t[XA_BNECK_GATE_W][j];
                acc += 1.0 / (1.0 + exp(-l));
            }
            g = L > 0 ? acc / L : 0.0;
        }
        for (int t = 0; t < T; t++) {
            const size_t n = (size_t)b * T + t;
            for (int j = 0; j < C; j++)
                a[n * C + j] *= g;
        }
    }
    for (int n = 0; n < N; n++) {
        const double *an = a + (size_t)n * C;
        const float *rn = r ? r + (size_t)n * C : NULL;
        if (s->parallel) {
            if (s->ln_after)
                ref_layernorm(y, an, m->t[XA_BNECK_LNA_W], m->t[XA_BNECK_LNA_B], C);
            else
                memcpy(y, an, sizeof(double) * C);
        } else if (s->adapter_residual_before_ln) {
            for (int j = 0; j < C; j++)
                x[j] = an[j] + rn[j];
            if (s->ln_after)
                ref_layernorm(y, x, m->t[XA_BNECK_LNA_W], m->t[XA_BNECK_LNA_B], C);
            else
                memcpy(y, x, sizeof(double) * C);
        } else {
            if (s->ln_after)
                ref_layernorm(y, an, m->t[XA_BNECK_LNA_W], m->t[XA_BNECK_LNA_B], C);
            else
                memcpy(y, an, sizeof(double) * C);
            for (int j = 0; j < C; j++)
                y[j] += rn[j];
        }
        for (int j = 0; j < C; j++)
            o[(size_t)n * C + j] = (float)y[j];
    }
}

/* ---- bottleneck: one gradient case ------------------------------------------------------------
 */

typedef struct bn_case {
    xa_bneck_spec spec;
    int B, T;
    const int32_t *lens; /* NULL: all T */
    int train;           /* forward in training mode (dropout) */
    int fusion;          /* forward without o; backward with dout NULL and dup */
    int with_dup;        /* an extra dup beside dout */
} bn_case;

typedef struct bn_fix {
    const bn_case *k;
    xa_bneck m;
    xa_bneck_cache c;
    float *z, *r, *o, *dout, *dup, *rule;
    int N;
} bn_fix;

static void bn_forward(bn_fix *f) {
    xa_rng rng;
    xa_rng_seed(&rng, 1234, 7); /* one dropout mask for every evaluation */
    xa_bneck_forward(&f->m, &f->c, f->k->fusion ? NULL : f->o, f->z,
                     f->k->spec.parallel ? NULL : f->r, f->k->lens, f->k->B, f->k->T, f->k->train,
                     &rng);
}

static double bn_loss(void *p) {
    bn_fix *f = p;
    const size_t NC = (size_t)f->N * f->k->spec.C;
    bn_forward(f);
    double L = 0.0;
    if (!f->k->fusion) L += xt_dot(f->o, f->dout, NC);
    if (f->k->fusion || f->k->with_dup) L += xt_dot(f->c.up, f->dup, NC);
    return L;
}

static void spec_str(char *buf, size_t n, const bn_case *k) {
    const xa_bneck_spec *s = &k->spec;
    snprintf(buf, n,
             "[%s lnb %d lna %d rbl %d par %d scal %d/%g gate %d drop %g phm %d(n %d r %d fact %d "
             "bias %d)%s%s%s]",
             xa_act_name(s->act), s->ln_before, s->ln_after, s->adapter_residual_before_ln,
             s->parallel, (int)s->scaling, (double)s->scaling_value, s->use_gating,
             (double)s->dropout, s->phm, s->phm_spec.n, s->phm_spec.rank, s->phm_spec.factorized_W,
             s->phm_spec.bias, k->train ? " train" : "", k->fusion ? " fusion" : "",
             k->lens ? " lens" : "");
}

/* Everything about one configuration: forward vs reference, every gradient vs FD, the frozen
 * module's dz, and parameter gradients without dz / dr. */
static void bn_check(const bn_case *k, uint64_t seed) {
    const xa_bneck_spec *s = &k->spec;
    char tag[256], label[384];
    spec_str(tag, sizeof tag, k);
    assert_int_equal(xa_bneck_spec_check(s, "test"), XA_STATUS_OK);
    xa_rng rng;
    xa_rng_seed(&rng, seed, 3);
    const int C = s->C, N = k->B * k->T;
    const size_t NC = (size_t)N * C;
    size_t numel[XA_BNECK_N_TENSORS];
    const size_t total = xa_bneck_sizes(s, numel);
    float *params = xt_fzeros(total), *grads = xt_fzeros(total);
    bn_fix f = {.k = k, .N = N};
    xa_bneck_bind(&f.m, s, params, grads);
    /* random parameters of size O(1) so every path carries signal; LN weights and scaling near 1 */
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++) {
        if (!numel[i]) continue;
        float mean =
            (i == XA_BNECK_LNB_W || i == XA_BNECK_LNA_W || i == XA_BNECK_SCALING) ? 1.0f : 0.0f;
        float std = (i == XA_BNECK_DOWN_WL || i == XA_BNECK_DOWN_WR || i == XA_BNECK_UP_WL ||
                     i == XA_BNECK_UP_WR)
                        ? 0.6f
                        : 0.4f;
        xa_rng_fill_normal(&rng, f.m.t[i], numel[i], mean, std);
    }
    const int nn = s->phm ? s->phm_spec.n : 0;
    float *rule_grad = NULL;
    if (s->phm) {
        f.rule = xt_frandn(&rng, (size_t)nn * nn * nn, 0.7f);
        rule_grad = xt_fzeros((size_t)nn * nn * nn);
        f.m.phm_rule = f.rule;
        f.m.phm_rule_grad = rule_grad;
    }
    f.z = xt_frandn(&rng, NC, 1.0f);
    f.r = xt_frandn(&rng, NC, 1.0f);
    f.o = xt_fzeros(NC);
    f.dout = xt_frandn(&rng, NC, 1.0f);
    f.dup = xt_frandn(&rng, NC, 1.0f);
    /* a cache for more rows than used, exactly cache_bytes long */
    const size_t cbytes = xa_bneck_cache_bytes(s, N + 2, 1);
    xa_bneck_cache_bind(&f.c, s, xt_alloc(cbytes), N + 2, 1);

    /* relu and leakyrelu have a kink at 0: redraw z until every pre-activation is at least 0.02
     * away from it, so that no difference quotient (which moves pre by < 5e-3) straddles it */
    const int kinked = s->act == XA_ACT_RELU || s->act == XA_ACT_LEAKYRELU;
    for (int tries = 0;; tries++) {
        bn_forward(&f);
        float mn = INFINITY;
        for (size_t i = 0; i < (size_t)N * s->d; i++)
            mn = fminf(mn, fabsf(f.c.pre[i]));
        if (!kinked || mn > 0.02f) break;
        if (tries == 200) fail_msg("%s: no z keeps the pre-activations off the kink", tag);
        xa_rng_fill_normal(&rng, f.z, NC, 0.0f, 1.0f);
    }

    /* forward vs the double reference */
    float *o_ref = xt_fzeros(NC), *up_ref = xt_fzeros(NC);
    ref_forward(&f.m, k->fusion ? NULL : o_ref, up_ref, f.z, f.r, k->lens, k->B, k->T, f.c.keep);
    snprintf(label, sizeof label, "bneck up vs reference %s", tag);
    xt_assert_close(label, f.c.up, up_ref, NC, 1e-5f, 1e-4f);
    if (!k->fusion) {
        snprintf(label, sizeof label, "bneck o vs reference %s", tag);
        xt_assert_close(label, f.o, o_ref, NC, 2e-5f, 1e-4f);
    }
    if (k->train && s->dropout > 0.0f && !s->parallel && !k->fusion) {
        size_t dropped = 0;
        for (size_t i = 0; i < NC; i++)
            dropped += f.c.keep[i] == 0;
        assert_true(dropped > 0 && dropped < NC); /* the mask really applies */
    } else {
        assert_null(f.c.keep);
    }

    /* analytic gradients: start dz, dr at 0.5 to check accumulation */
    float *dz = xt_fzeros(NC), *dr = xt_fzeros(NC);
    for (size_t i = 0; i < NC; i++)
        dz[i] = dr[i] = 0.5f;
    xa_bneck_backward(&f.m, &f.c, dz, dr, k->fusion ? NULL : f.dout,
                      (k->fusion || k->with_dup) ? f.dup : NULL, f.z, s->parallel ? NULL : f.r,
                      k->lens, k->B, k->T);
    for (size_t i = 0; i < NC; i++) {
        dz[i] -= 0.5f;
        dr[i] -= 0.5f;
    }
    float *grads_copy = xt_fzeros(total);
    memcpy(grads_copy, grads, total * sizeof(float));

    snprintf(label, sizeof label, "bneck dz vs FD %s", tag);
    xt_check_fd(label, bn_loss, &f, f.z, dz, NC, FD_H, FD_ATOL, FD_RTOL);
    snprintf(label, sizeof label, "bneck dr vs FD %s", tag);
    xt_check_fd(label, bn_loss, &f, f.r, dr, NC, FD_H, FD_ATOL, FD_RTOL);
    int n_checked = 0;
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++) {
        if (!numel[i]) continue;
        snprintf(label, sizeof label, "bneck d[%s] vs FD %s", xa_bneck_tensor_name(&f.m, i), tag);
        xt_check_fd(label, bn_loss, &f, f.m.t[i], f.m.g[i], numel[i], FD_H, FD_ATOL, FD_RTOL);
        n_checked++;
    }
    assert_true(n_checked >= 2);
    if (s->phm) {
        snprintf(label, sizeof label, "bneck d[phm_rule] vs FD %s", tag);
        xt_check_fd(label, bn_loss, &f, f.rule, rule_grad, (size_t)nn * nn * nn, FD_H, FD_ATOL,
                    FD_RTOL);
    }

    /* the same parameter gradients without dz and dr (lowest trainable module) */
    float *grads2 = xt_fzeros(total), *rule_grad2 = s->phm ? xt_fzeros((size_t)nn * nn * nn) : NULL;
    xa_bneck m2;
    xa_bneck_bind(&m2, s, params, grads2);
    m2.phm_rule = f.rule;
    m2.phm_rule_grad = rule_grad2;
    f.m = m2;
    bn_forward(&f);
    xa_bneck_backward(&f.m, &f.c, NULL, NULL, k->fusion ? NULL : f.dout,
                      (k->fusion || k->with_dup) ? f.dup : NULL, f.z, s->parallel ? NULL : f.r,
                      k->lens, k->B, k->T);
    snprintf(label, sizeof label, "bneck param grads without dz/dr %s", tag);
    xt_assert_close(label, grads2, grads_copy, total, 1e-6f, 1e-5f);
    if (s->phm) xt_assert_close(label, rule_grad2, rule_grad, (size_t)nn * nn * nn, 1e-6f, 1e-5f);

    /* frozen module (no gradient views, rule frozen): dz and dr still flow */
    xa_bneck_bind(&f.m, s, params, NULL);
    f.m.phm_rule = f.rule;
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++)
        assert_null(f.m.g[i]);
    bn_forward(&f);
    float *dz2 = xt_fzeros(NC), *dr2 = xt_fzeros(NC);
    xa_bneck_backward(&f.m, &f.c, dz2, dr2, k->fusion ? NULL : f.dout,
                      (k->fusion || k->with_dup) ? f.dup : NULL, f.z, s->parallel ? NULL : f.r,
                      k->lens, k->B, k->T);
    snprintf(label, sizeof label, "bneck frozen dz %s", tag);
    xt_assert_close(label, dz2, dz, NC, 1e-5f, 1e-5f);
    snprintf(label, sizeof label, "bneck frozen dr %s", tag);
    xt_assert_close(label, dr2, dr, NC, 1e-5f, 1e-5f);

    /* a forward-only cache gives the same outputs */
    xa_bneck_cache ce;
    const size_t ebytes = xa_bneck_cache_bytes(s, N, 0);
    assert_true(ebytes <= cbytes);
    xa_bneck_cache_bind(&ce, s, xt_alloc(ebytes), N, 0);
    assert_null(ce.s1);
    float *o2 = xt_fzeros(NC);
    bn_forward(&f); /* the train cache's o (in eval mode below, so compare with a fresh eval run) */
    if (!k->train) {
        xa_bneck_forward(&f.m, &ce, k->fusion ? NULL : o2, f.z, s->parallel ? NULL : f.r, k->lens,
                         k->B, k->T, 0, NULL);
        snprintf(label, sizeof label, "bneck forward-only cache up %s", tag);
        xt_assert_close(label, ce.up, f.c.up, NC, 0.0f, 0.0f);
        if (!k->fusion) {
            snprintf(label, sizeof label, "bneck forward-only cache o %s", tag);
            xt_assert_close(label, o2, f.o, NC, 0.0f, 0.0f);
        }
    }
}

static xa_bneck_spec base_spec(void) {
    xa_bneck_spec s;
    memset(&s, 0, sizeof s);
    s.C = 8;
    s.d = 4;
    s.act = XA_ACT_RELU;
    s.scaling = XA_BNECK_SCALING_CONSTANT;
    s.scaling_value = 1.0f;
    return s;
}

static bn_case base_case(void) {
    bn_case k;
    memset(&k, 0, sizeof k);
    k.spec = base_spec();
    k.B = 2;
    k.T = 3;
    return k;
}

static const int32_t g_lens[2] = {3, 1};
static const int32_t g_lens0[2] = {2, 0}; /* an empty sequence: gate 0, no gradient */

static void test_bneck_grad_basic(void **state) {
    (void)state;
    bn_case k = base_case(); /* plain: relu, no LN, residual after */
    bn_check(&k, 1);
    k.spec.ln_before = k.spec.ln_after = 1; /* ln_before + ln_after, residual after LN */
    k.spec.act = XA_ACT_GELU;
    bn_check(&k, 2);
    k.spec.adapter_residual_before_ln = 1; /* o = LN(a + r) */
    bn_check(&k, 3);
    k = base_case();
    k.spec.adapter_residual_before_ln = 1; /* no LN after: o = a + r */
    k.spec.act = XA_ACT_TANH;
    bn_check(&k, 4);
    k = base_case();
    k.spec.ln_before = 1;
    k.spec.d = 11; /* d > C: the scratch blocks are (N, d) wide */
    bn_check(&k, 5);
    k = base_case();
    k.B = 1;
    k.T = 1; /* a single row */
    k.spec.ln_after = 1;
    bn_check(&k, 6);
}

static void test_bneck_grad_scaling_gating(void **state) {
    (void)state;
    bn_case k = base_case();
    k.spec.scaling_value = 0.5f; /* constant */
    k.spec.act = XA_ACT_SILU;
    bn_check(&k, 10);
    k.spec.scaling = XA_BNECK_SCALING_LEARNED;
    bn_check(&k, 11);
    k.spec.scaling = XA_BNECK_SCALING_CHANNEL;
    k.spec.ln_after = 1;
    bn_check(&k, 12);
    /* gating, with a padded batch */
    k = base_case();
    k.spec.use_gating = 1;
    k.spec.act = XA_ACT_GELU_NEW;
    bn_check(&k, 13);
    k.lens = g_lens;
    bn_check(&k, 14);
    k.spec.ln_after = 1;
    k.spec.ln_before = 1;
    k.spec.scaling = XA_BNECK_SCALING_CHANNEL;
    bn_check(&k, 15);
    k.spec.adapter_residual_before_ln = 1;
    k.spec.scaling = XA_BNECK_SCALING_LEARNED;
    bn_check(&k, 16);
    k.lens = g_lens0;
    bn_check(&k, 17);
}

static void test_bneck_grad_parallel_dropout(void **state) {
    (void)state;
    bn_case k = base_case();
    k.spec.parallel = 1; /* o = up, r unused (NULL) and dr untouched */
    k.spec.act = XA_ACT_SIGMOID;
    bn_check(&k, 20);
    k.spec.ln_after = 1;
    k.spec.use_gating = 1;
    k.lens = g_lens;
    k.spec.dropout = 0.3f; /* ParallelAdapter: no dropout even in training */
    k.train = 1;
    bn_check(&k, 21);
    /* dropout in training: one fixed mask */
    k = base_case();
    k.spec.dropout = 0.3f;
    k.train = 1;
    k.spec.ln_after = 1;
    bn_check(&k, 22);
    k.spec.use_gating = 1;
    k.lens = g_lens;
    k.spec.scaling = XA_BNECK_SCALING_CHANNEL;
    bn_check(&k, 23);
    k.spec.adapter_residual_before_ln = 1;
    k.spec.ln_after = 0;
    bn_check(&k, 24);
    /* the same spec in evaluation: no dropout, keep NULL */
    k.train = 0;
    bn_check(&k, 25);
}

static void test_bneck_grad_phm(void **state) {
    (void)state;
    bn_case k = base_case();
    k.spec.phm = 1;
    k.spec.phm_spec = (xa_phm_spec){2, 2, 1, 1}; /* n 2, rank 2, factorised, bias */
    k.spec.act = XA_ACT_GELU;
    bn_check(&k, 30);
    k.spec.phm_spec = (xa_phm_spec){2, 1, 0, 0}; /* non-factorised, no bias */
    bn_check(&k, 31);
    k.spec.phm_spec = (xa_phm_spec){4, 1, 1, 1}; /* d/n = 1 */
    k.spec.ln_before = k.spec.ln_after = 1;
    k.spec.use_gating = 1;
    k.lens = g_lens;
    bn_check(&k, 32);
    k.spec.phm_spec = (xa_phm_spec){4, 3, 0, 1};
    k.spec.scaling = XA_BNECK_SCALING_CHANNEL;
    k.spec.dropout = 0.2f;
    k.train = 1;
    bn_check(&k, 33);
    k.spec.parallel = 1;
    k.train = 0;
    bn_check(&k, 34);
}

static void test_bneck_grad_activations(void **state) {
    (void)state;
    for (int a = 0; a < XA_ACT_COUNT; a++) {
        bn_case k = base_case();
        k.spec.act = (xa_act)a;
        k.spec.ln_after = 1;
        bn_check(&k, 40 + (uint64_t)a);
    }
}

static void test_bneck_grad_fusion(void **state) {
    (void)state;
    bn_case k = base_case();
    k.fusion = 1; /* forward without o, backward with dout NULL: only dup */
    k.spec.ln_before = 1;
    k.spec.scaling = XA_BNECK_SCALING_LEARNED;
    k.spec.use_gating = 1; /* the gate does not touch up: its gradient is 0 */
    bn_check(&k, 50);
    k.spec.phm = 1;
    k.spec.phm_spec = (xa_phm_spec){2, 1, 1, 1};
    k.spec.dropout = 0.4f;
    k.train = 1; /* the fusion forward applies no dropout to up */
    bn_check(&k, 51);
    /* dout and an extra dup together */
    k = base_case();
    k.with_dup = 1;
    k.spec.ln_after = 1;
    k.spec.dropout = 0.25f;
    k.train = 1;
    k.spec.scaling_value = 2.0f;
    bn_check(&k, 52);
}

/* Backward follows the most recent forward: a training forward, then an evaluation forward,
 * then backward gives the evaluation gradient. */
static void test_bneck_last_forward_wins(void **state) {
    (void)state;
    xa_bneck_spec s = base_spec();
    s.dropout = 0.5f;
    s.ln_after = 1;
    const int B = 2, T = 3, N = B * T, C = s.C;
    const size_t NC = (size_t)N * C;
    size_t numel[XA_BNECK_N_TENSORS];
    size_t total = xa_bneck_sizes(&s, numel);
    xa_rng rng;
    xa_rng_seed(&rng, 5, 5);
    float *params = xt_frandn(&rng, total, 0.5f), *g1 = xt_fzeros(total), *g2 = xt_fzeros(total);
    float *z = xt_frandn(&rng, NC, 1.0f), *r = xt_frandn(&rng, NC, 1.0f),
          *dout = xt_frandn(&rng, NC, 1.0f);
    float *o = xt_fzeros(NC), *dz1 = xt_fzeros(NC), *dz2 = xt_fzeros(NC);
    xa_bneck m1, m2;
    xa_bneck_bind(&m1, &s, params, g1);
    xa_bneck_bind(&m2, &s, params, g2);
    xa_bneck_cache c;
    xa_bneck_cache_bind(&c, &s, xt_alloc(xa_bneck_cache_bytes(&s, N, 1)), N, 1);
    xa_bneck_forward(&m1, &c, o, z, r, NULL, B, T, 0, NULL);
    xa_bneck_backward(&m1, &c, dz1, NULL, dout, NULL, z, r, NULL, B, T);
    xa_bneck_forward(&m2, &c, o, z, r, NULL, B, T, 1, &rng);
    assert_non_null(c.keep);
    xa_bneck_forward(&m2, &c, o, z, r, NULL, B, T, 0, NULL);
    assert_null(c.keep);
    xa_bneck_backward(&m2, &c, dz2, NULL, dout, NULL, z, r, NULL, B, T);
    xt_assert_close("eval-after-train dz", dz2, dz1, NC, 0.0f, 0.0f);
    xt_assert_close("eval-after-train grads", g2, g1, total, 0.0f, 0.0f);
}

/* Sizes large enough for every threaded split (N*C > 65536): forward against the reference, and
 * the same forward and backward with 1 and 3 threads. */
static void bneck_threads_case(const xa_bneck_spec *s, uint64_t seed) {
    const int B = 4, T = 64, N = B * T, C = s->C;
    const size_t NC = (size_t)N * C;
    static const int32_t lens[4] = {64, 17, 1, 40};
    xa_rng rng;
    xa_rng_seed(&rng, seed, 1);
    size_t numel[XA_BNECK_N_TENSORS];
    const size_t total = xa_bneck_sizes(s, numel);
    float *params = xt_frandn(&rng, total, 0.1f);
    const int n = s->phm ? s->phm_spec.n : 1;
    float *rule = xt_frandn(&rng, (size_t)n * n * n, 0.5f);
    float *z = xt_frandn(&rng, NC, 1.0f), *r = xt_frandn(&rng, NC, 1.0f),
          *dout = xt_frandn(&rng, NC, 1.0f);
    float *dup = xt_frandn(&rng, NC, 1.0f);
    xa_bneck_cache c;
    xa_bneck_cache_bind(&c, s, xt_alloc(xa_bneck_cache_bytes(s, N, 1)), N, 1);
    float *o[2], *up[2], *dz[2], *dr[2], *g[2], *rg[2];
    for (int k = 0; k < 2; k++) {
        xa_threads_set(k == 0 ? 1 : 3);
        o[k] = xt_fzeros(NC);
        up[k] = xt_fzeros(NC);
        dz[k] = xt_fzeros(NC);
        dr[k] = xt_fzeros(NC);
        g[k] = xt_fzeros(total);
        rg[k] = xt_fzeros((size_t)n * n * n);
        xa_bneck m;
        xa_bneck_bind(&m, s, params, g[k]);
        m.phm_rule = rule;
        m.phm_rule_grad = rg[k];
        xa_rng drop;
        xa_rng_seed(&drop, 3, 3);
        xa_bneck_forward(&m, &c, o[k], z, r, lens, B, T, 1, &drop);
        memcpy(up[k], c.up, NC * sizeof(float));
        if (k == 0) {
            float *o_ref = xt_fzeros(NC), *up_ref = xt_fzeros(NC);
            ref_forward(&m, o_ref, up_ref, z, r, lens, B, T, c.keep);
            xt_assert_close("bneck large up vs reference", up[0], up_ref, NC, 1e-4f, 1e-4f);
            xt_assert_close("bneck large o vs reference", o[0], o_ref, NC, 1e-4f, 1e-4f);
        }
        xa_bneck_backward(&m, &c, dz[k], dr[k], dout, dup, z, r, lens, B, T);
    }
    xt_assert_close("bneck o, 3 threads vs 1", o[1], o[0], NC, 1e-5f, 1e-5f);
    xt_assert_close("bneck up, 3 threads vs 1", up[1], up[0], NC, 1e-5f, 1e-5f);
    xt_assert_close("bneck dz, 3 threads vs 1", dz[1], dz[0], NC, 1e-4f, 1e-4f);
    xt_assert_close("bneck dr, 3 threads vs 1", dr[1], dr[0], NC, 1e-4f, 1e-4f);
    xt_assert_close("bneck param grads, 3 threads vs 1", g[1], g[0], total, 1e-3f, 1e-4f);
    xt_assert_close("bneck rule grad, 3 threads vs 1", rg[1], rg[0], (size_t)n * n * n, 1e-3f,
                    1e-4f);
}

static void test_bneck_threads(void **state) {
    (void)state;
    xa_bneck_spec s = base_spec();
    s.C = 320;
    s.d = 48;
    s.act = XA_ACT_GELU;
    s.ln_before = s.ln_after = s.use_gating = 1;
    s.scaling = XA_BNECK_SCALING_CHANNEL;
    s.dropout = 0.1f;
    bneck_threads_case(&s, 60);
    s.phm = 1;
    s.phm_spec = (xa_phm_spec){4, 2, 1, 1};
    s.adapter_residual_before_ln = 1;
    s.scaling = XA_BNECK_SCALING_LEARNED;
    bneck_threads_case(&s, 61);
}

/* ---- sizes, names, shapes ------------------------------------------------------------------- */

static void check_shape(const xa_bneck *m, int i, int nd, int64_t a, int64_t b, int64_t c) {
    int64_t sh[3];
    int got = xa_bneck_tensor_shape(m, i, sh);
    const char *name = xa_bneck_tensor_name(m, i);
    if (got != nd || (nd > 0 && sh[0] != a) || (nd > 1 && sh[1] != b) || (nd > 2 && sh[2] != c)) {
        fail_msg("shape of %s (tensor %d): got %d dims [%lld %lld %lld], expected %d dims [%lld "
                 "%lld %lld]",
                 name ? name : "(absent)", i, got, (long long)sh[0], (long long)sh[1],
                 (long long)sh[2], nd, (long long)a, (long long)b, (long long)c);
    }
    size_t prod = 1;
    for (int j = 0; j < got; j++)
        prod *= (size_t)sh[j];
    assert_int_equal(got ? prod : 0, m->numel[i]);
}

static void test_bneck_tables(void **state) {
    (void)state;
    size_t numel[XA_BNECK_N_TENSORS];
    xa_bneck m;
    /* Pfeiffer rf 2 on XLM-R base (§1.12): 590,976 per layer */
    xa_bneck_spec s = base_spec();
    s.C = 768;
    s.d = 384;
    assert_int_equal(xa_bneck_sizes(&s, numel), 590976);
    xa_bneck_bind(&m, &s, NULL, NULL);
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_W), "adapter_down.0.weight");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_B), "adapter_down.0.bias");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_UP_W), "adapter_up.weight");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_UP_B), "adapter_up.bias");
    check_shape(&m, XA_BNECK_DOWN_W, 2, 384, 768, 0);
    check_shape(&m, XA_BNECK_UP_W, 2, 768, 384, 0);
    check_shape(&m, XA_BNECK_DOWN_B, 1, 384, 0, 0);
    check_shape(&m, XA_BNECK_UP_B, 1, 768, 0, 0);
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++) {
        if (i == XA_BNECK_DOWN_W || i == XA_BNECK_DOWN_B || i == XA_BNECK_UP_W ||
            i == XA_BNECK_UP_B)
            continue;
        assert_null(xa_bneck_tensor_name(&m, i));
        assert_null(xa_bneck_tensor_alias(&m, i));
        check_shape(&m, i, 0, 0, 0, 0);
    }
    /* ln_before: the Linear moves to adapter_down.1, the LayerNorm has two names (quirk Q4) */
    s.ln_before = s.ln_after = 1;
    s.use_gating = 1;
    s.scaling = XA_BNECK_SCALING_CHANNEL;
    assert_int_equal(xa_bneck_sizes(&s, numel), 590976 + 4 * 768 + 768 + 768 + 1);
    xa_bneck_bind(&m, &s, NULL, NULL);
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_LNB_W), "adapter_norm_before.weight");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_LNB_B), "adapter_norm_before.bias");
    assert_string_equal(xa_bneck_tensor_alias(&m, XA_BNECK_LNB_W), "adapter_down.0.weight");
    assert_string_equal(xa_bneck_tensor_alias(&m, XA_BNECK_LNB_B), "adapter_down.0.bias");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_W), "adapter_down.1.weight");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_B), "adapter_down.1.bias");
    assert_null(xa_bneck_tensor_alias(&m, XA_BNECK_DOWN_W));
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_LNA_W), "adapter_norm_after.weight");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_LNA_B), "adapter_norm_after.bias");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_SCALING), "scaling");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_GATE_W), "gate.weight");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_GATE_B), "gate.bias");
    check_shape(&m, XA_BNECK_LNB_W, 1, 768, 0, 0);
    check_shape(&m, XA_BNECK_SCALING, 1, 768, 0, 0);
    check_shape(&m, XA_BNECK_GATE_W, 2, 1, 768, 0);
    check_shape(&m, XA_BNECK_GATE_B, 1, 1, 0, 0);
    s.scaling = XA_BNECK_SCALING_LEARNED;
    xa_bneck_bind(&m, &s, NULL, NULL);
    check_shape(&m, XA_BNECK_SCALING, 1, 1, 0, 0);
    s.scaling = XA_BNECK_SCALING_CONSTANT;
    xa_bneck_bind(&m, &s, NULL, NULL);
    assert_null(xa_bneck_tensor_name(&m, XA_BNECK_SCALING));

    /* Compacter on BERT-base (§1.9): Houlsby positions, rf 32, n 4, r 1: 2,376 per module;
     * 24 modules + the 4x4x4 rule = 57,088; Compacter++ (12 modules) 28,576 */
    s = base_spec();
    s.C = 768;
    s.d = 24;
    s.phm = 1;
    s.phm_spec = (xa_phm_spec){4, 1, 1, 1};
    assert_int_equal(xa_bneck_spec_check(&s, "test"), XA_STATUS_OK);
    size_t per = xa_bneck_sizes(&s, numel);
    assert_int_equal(24 * per + 64, 57088);
    assert_int_equal(12 * per + 64, 28576);
    xa_bneck_bind(&m, &s, NULL, NULL);
    /* the PHM shapes of §1.10 */
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_WL), "adapter_down.0.W_left");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_WR), "adapter_down.0.W_right");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_B), "adapter_down.0.b");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_UP_WL), "adapter_up.W_left");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_UP_WR), "adapter_up.W_right");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_UP_B), "adapter_up.b");
    assert_null(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_W));
    assert_null(xa_bneck_tensor_name(&m, XA_BNECK_UP_W));
    check_shape(&m, XA_BNECK_DOWN_WL, 3, 4, 192, 1);
    check_shape(&m, XA_BNECK_DOWN_WR, 3, 4, 1, 6);
    check_shape(&m, XA_BNECK_DOWN_B, 1, 24, 0, 0);
    check_shape(&m, XA_BNECK_UP_WL, 3, 4, 6, 1);
    check_shape(&m, XA_BNECK_UP_WR, 3, 4, 1, 192);
    check_shape(&m, XA_BNECK_UP_B, 1, 768, 0, 0);
    /* non-factorised, no bias, ln_before: adapter_down.1.W */
    s.phm_spec = (xa_phm_spec){4, 2, 0, 0};
    s.ln_before = 1;
    xa_bneck_sizes(&s, numel);
    xa_bneck_bind(&m, &s, NULL, NULL);
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_W), "adapter_down.1.W");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_UP_W), "adapter_up.W");
    assert_null(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_B));
    assert_null(xa_bneck_tensor_name(&m, XA_BNECK_UP_B));
    assert_null(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_WL));
    check_shape(&m, XA_BNECK_DOWN_W, 3, 4, 192, 6);
    check_shape(&m, XA_BNECK_UP_W, 3, 4, 6, 192);
    s.phm_spec.factorized_W = 1;
    s.phm_spec.bias = 1;
    xa_bneck_bind(&m, &s, NULL, NULL);
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_WL), "adapter_down.1.W_left");
    assert_string_equal(xa_bneck_tensor_name(&m, XA_BNECK_DOWN_B), "adapter_down.1.b");
    check_shape(&m, XA_BNECK_DOWN_WL, 3, 4, 192, 2);
    check_shape(&m, XA_BNECK_UP_WR, 3, 4, 2, 192);

    /* bind: views in enum order, back to back; no gradient views without grads */
    s = base_spec();
    s.ln_before = s.ln_after = s.use_gating = 1;
    s.scaling = XA_BNECK_SCALING_LEARNED;
    size_t total = xa_bneck_sizes(&s, numel);
    float *p = xt_fzeros(total), *g = xt_fzeros(total);
    xa_bneck_bind(&m, &s, p, g);
    size_t off = 0;
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++) {
        if (!numel[i]) {
            assert_null(m.t[i]);
            assert_null(m.g[i]);
            continue;
        }
        assert_ptr_equal(m.t[i], p + off);
        assert_ptr_equal(m.g[i], g + off);
        off += numel[i];
    }
    assert_int_equal(off, total);
    xa_bneck_bind(&m, &s, p, NULL);
    for (int i = 0; i < XA_BNECK_N_TENSORS; i++)
        assert_null(m.g[i]);
}

/* Cache views: inside the block, 64-byte aligned, and the forward-only cache is smaller. */
static void test_bneck_cache_layout(void **state) {
    (void)state;
    xa_bneck_spec s = base_spec();
    s.C = 24;
    s.d = 8;
    s.ln_before = s.ln_after = s.use_gating = s.adapter_residual_before_ln = 1;
    s.scaling = XA_BNECK_SCALING_CHANNEL;
    s.dropout = 0.1f;
    s.phm = 1;
    s.phm_spec = (xa_phm_spec){4, 1, 1, 1};
    const int N = 13;
    size_t tb = xa_bneck_cache_bytes(&s, N, 1), eb = xa_bneck_cache_bytes(&s, N, 0);
    assert_true(eb < tb);
    assert_true(xa_bneck_cache_bytes(&s, 2 * N, 1) > tb);
    char *mem = xa_aligned_alloc(tb, 64);
    assert_non_null(mem);
    xa_bneck_cache c;
    xa_bneck_cache_bind(&c, &s, mem, N, 1);
    assert_int_equal(c.N, N);
    assert_true(c.train);
    const void *views[] = {c.zn,   c.lnb_mean, c.lnb_rstd, c.pre,  c.mid, c.upraw,      c.up,
                           c.keep, c.a,        c.gate_pre, c.gate, c.sum, c.lna_mean,   c.lna_rstd,
                           c.Hd,   c.Hu,       c.s1,       c.s2,   c.s3,  c.phm_scratch};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        if (!views[i]) {
            xa_aligned_free(mem);
            fail_msg("training cache view %zu is NULL", i);
        }
        assert_true((const char *)views[i] >= mem && (const char *)views[i] < mem + tb);
        assert_int_equal((uintptr_t)views[i] % 64, 0);
    }
    /* in training every saved piece is its own block */
    assert_true(c.mid != c.pre && c.upraw != c.up && c.a != c.up && c.sum != c.a);
    xa_aligned_free(mem);
}

/* ---- initialisation -----------------------------------------------------------------------------
 */

static void stats(const float *x, size_t n, double *mean, double *std, double *maxabs) {
    double s = 0.0, s2 = 0.0, mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        if (fabs(x[i]) > mx) mx = fabs(x[i]);
    }
    *mean = s / n;
    *std = sqrt(s2 / n - *mean * *mean);
    *maxabs = mx;
}

static void assert_all(const char *what, const float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != v)
            fail_msg("%s[%zu] = %g, expected exactly %g", what, i, (double)x[i], (double)v);
}

static void assert_between(const char *what, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) fail_msg("%s = %.6g, expected in [%.6g, %.6g]", what, v, lo, hi);
}

static void test_bneck_init(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 99, 0);
    xa_bneck_spec s = base_spec();
    s.C = 128;
    s.d = 64; /* 8192 weights per projection: std to ~1.5% */
    s.ln_before = s.ln_after = s.use_gating = 1;
    s.scaling = XA_BNECK_SCALING_CHANNEL;
    size_t numel[XA_BNECK_N_TENSORS];
    size_t total = xa_bneck_sizes(&s, numel);
    float *p = xt_fzeros(total);
    xa_bneck m;
    double mean, std, mx;

    /* bert: N(0, 0.02) weights (gate too), zero biases, LN 1 / 0, scaling 1 */
    for (size_t i = 0; i < total; i++)
        p[i] = 7.0f; /* every element must be written */
    xa_bneck_bind(&m, &s, p, NULL);
    xa_bneck_init_weights(&m, XA_BNECK_INIT_BERT, &rng);
    stats(m.t[XA_BNECK_DOWN_W], numel[XA_BNECK_DOWN_W], &mean, &std, &mx);
    assert_between("bert down std", std, 0.019, 0.021);
    assert_between("bert down mean", mean, -0.001, 0.001);
    stats(m.t[XA_BNECK_UP_W], numel[XA_BNECK_UP_W], &mean, &std, &mx);
    assert_between("bert up std", std, 0.019, 0.021);
    stats(m.t[XA_BNECK_GATE_W], numel[XA_BNECK_GATE_W], &mean, &std, &mx);
    assert_between("bert gate std", std, 0.015, 0.025);
    assert_all("bert down bias", m.t[XA_BNECK_DOWN_B], numel[XA_BNECK_DOWN_B], 0.0f);
    assert_all("bert up bias", m.t[XA_BNECK_UP_B], numel[XA_BNECK_UP_B], 0.0f);
    assert_all("bert gate bias", m.t[XA_BNECK_GATE_B], 1, 0.0f);
    assert_all("ln_before weight", m.t[XA_BNECK_LNB_W], (size_t)s.C, 1.0f);
    assert_all("ln_before bias", m.t[XA_BNECK_LNB_B], (size_t)s.C, 0.0f);
    assert_all("ln_after weight", m.t[XA_BNECK_LNA_W], (size_t)s.C, 1.0f);
    assert_all("ln_after bias", m.t[XA_BNECK_LNA_B], (size_t)s.C, 0.0f);
    assert_all("channel scaling", m.t[XA_BNECK_SCALING], (size_t)s.C, 1.0f);

    /* mam_adapter: down U(-1/sqrt(C), 1/sqrt(C)), up exactly 0, biases 0, gate bert */
    for (size_t i = 0; i < total; i++)
        p[i] = 7.0f;
    xa_bneck_init_weights(&m, XA_BNECK_INIT_MAM, &rng);
    const double bound = 1.0 / sqrt((double)s.C);
    stats(m.t[XA_BNECK_DOWN_W], numel[XA_BNECK_DOWN_W], &mean, &std, &mx);
    assert_between("mam down max |w|", mx, 0.98 * bound, bound);
    assert_between("mam down std", std, 0.97 * bound / sqrt(3.0), 1.03 * bound / sqrt(3.0));
    assert_all("mam up weight", m.t[XA_BNECK_UP_W], numel[XA_BNECK_UP_W], 0.0f);
    assert_all("mam up bias", m.t[XA_BNECK_UP_B], numel[XA_BNECK_UP_B], 0.0f);
    assert_all("mam down bias", m.t[XA_BNECK_DOWN_B], numel[XA_BNECK_DOWN_B], 0.0f);
    stats(m.t[XA_BNECK_GATE_W], numel[XA_BNECK_GATE_W], &mean, &std, &mx);
    assert_between("mam gate std", std, 0.015, 0.025);
    assert_all("mam gate bias", m.t[XA_BNECK_GATE_B], 1, 0.0f);

    /* houlsby: truncated normal, std 0.01 cut at +-0.02: |w| <= 0.02, std 0.01 * 0.8796 */
    for (size_t i = 0; i < total; i++)
        p[i] = 7.0f;
    xa_bneck_init_weights(&m, XA_BNECK_INIT_HOULSBY, &rng);
    for (int i = XA_BNECK_DOWN_W; i <= XA_BNECK_UP_W; i += XA_BNECK_UP_W - XA_BNECK_DOWN_W) {
        stats(m.t[i], numel[i], &mean, &std, &mx);
        assert_between("houlsby max |w|", mx, 0.019, 0.02);
        assert_between("houlsby std", std, 0.0085, 0.0091);
    }
    assert_all("houlsby down bias", m.t[XA_BNECK_DOWN_B], numel[XA_BNECK_DOWN_B], 0.0f);
    assert_all("houlsby up bias", m.t[XA_BNECK_UP_B], numel[XA_BNECK_UP_B], 0.0f);
    /* the gate keeps torch's nn.Linear default (AdapterHub's houlsby branch does not touch it) */
    stats(m.t[XA_BNECK_GATE_W], numel[XA_BNECK_GATE_W], &mean, &std, &mx);
    assert_true(mx <= 1.0 / sqrt((double)s.C) && mx > 0.5 / sqrt((double)s.C));

    /* PHM: Xavier-normal per W_i slice for every scheme (quirk Q7), zero biases */
    s = base_spec();
    s.C = 256;
    s.d = 64;
    s.phm = 1;
    s.phm_spec = (xa_phm_spec){4, 1, 0, 1};
    total = xa_bneck_sizes(&s, numel);
    p = xt_fzeros(total);
    xa_bneck_bind(&m, &s, p, NULL);
    for (int scheme = 0; scheme <= XA_BNECK_INIT_HOULSBY; scheme++) {
        for (size_t i = 0; i < total; i++)
            p[i] = 7.0f;
        xa_bneck_init_weights(&m, (xa_bneck_init)scheme, &rng);
        const double want = sqrt(2.0 / (64 + 16)); /* W_i (C/n, d/n) = (64, 16) */
        stats(m.t[XA_BNECK_DOWN_W], numel[XA_BNECK_DOWN_W], &mean, &std, &mx);
        assert_between("phm down W std", std, 0.95 * want, 1.05 * want);
        stats(m.t[XA_BNECK_UP_W], numel[XA_BNECK_UP_W], &mean, &std, &mx);
        assert_between("phm up W std", std, 0.95 * want, 1.05 * want);
        assert_all("phm down b", m.t[XA_BNECK_DOWN_B], numel[XA_BNECK_DOWN_B], 0.0f);
        assert_all("phm up b", m.t[XA_BNECK_UP_B], numel[XA_BNECK_UP_B], 0.0f);
    }
    /* factorised: W_left (n, C/n, r) std sqrt(2 / (C/n + r)), W_right (n, r, d/n) sqrt(2 / (r +
     * d/n)) */
    s.C = 1024;
    s.d = 256;
    s.phm_spec = (xa_phm_spec){4, 4, 1, 0};
    total = xa_bneck_sizes(&s, numel);
    p = xt_fzeros(total);
    xa_bneck_bind(&m, &s, p, NULL);
    xa_bneck_init_weights(&m, XA_BNECK_INIT_BERT, &rng);
    stats(m.t[XA_BNECK_DOWN_WL], numel[XA_BNECK_DOWN_WL], &mean, &std, &mx);
    assert_between("phm W_left std", std, 0.95 * sqrt(2.0 / 260), 1.05 * sqrt(2.0 / 260));
    stats(m.t[XA_BNECK_DOWN_WR], numel[XA_BNECK_DOWN_WR], &mean, &std, &mx);
    assert_between("phm W_right std", std, 0.93 * sqrt(2.0 / 68), 1.07 * sqrt(2.0 / 68));
    stats(m.t[XA_BNECK_UP_WR], numel[XA_BNECK_UP_WR], &mean, &std, &mx);
    assert_between("phm up W_right std", std, 0.95 * sqrt(2.0 / 260), 1.05 * sqrt(2.0 / 260));
}

/* ---- spec_check
 * ---------------------------------------------------------------------------------- */

static void expect_reject(const xa_bneck_spec *s, const char *needle) {
    xa_error_clear();
    assert_int_equal(xa_bneck_spec_check(s, "layer 3"), XA_STATUS_USAGE);
    xt_assert_error_mentions(needle);
    xt_assert_error_mentions("layer 3");
}

static void test_bneck_spec_check(void **state) {
    (void)state;
    xa_bneck_spec s = base_spec();
    assert_int_equal(xa_bneck_spec_check(&s, "x"), XA_STATUS_OK);
    s.d = 0;
    expect_reject(&s, "d 0");
    s = base_spec();
    s.C = 0;
    expect_reject(&s, "C 0");
    s = base_spec();
    s.dropout = 1.0f;
    expect_reject(&s, "dropout");
    s.dropout = -0.1f;
    expect_reject(&s, "dropout");
    s.dropout = NAN;
    expect_reject(&s, "dropout");
    s = base_spec();
    s.act = XA_ACT_COUNT;
    expect_reject(&s, "activation");
    s = base_spec();
    s.scaling = (xa_bneck_scaling)7;
    expect_reject(&s, "scaling");
    s = base_spec();
    s.scaling_value = INFINITY;
    expect_reject(&s, "scaling");
    s = base_spec();
    s.phm = 1;
    s.phm_spec = (xa_phm_spec){3, 1, 1, 1}; /* C 8 % 3 */
    expect_reject(&s, "phm_dim");
    s.C = 9;
    s.d = 4; /* d 4 % 3 */
    expect_reject(&s, "divisible");
    s.d = 6;
    assert_int_equal(xa_bneck_spec_check(&s, "x"), XA_STATUS_OK);
    s.phm_spec.rank = 0;
    expect_reject(&s, "phm_rank");
    s.phm_spec = (xa_phm_spec){0, 1, 1, 1};
    expect_reject(&s, "phm_dim");
    /* PHM flags do not matter without phm */
    s = base_spec();
    s.phm_spec = (xa_phm_spec){3, 0, 1, 1};
    assert_int_equal(xa_bneck_spec_check(&s, "x"), XA_STATUS_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_phm_build, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_grad_basic, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_grad_scaling_gating, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_grad_parallel_dropout, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_grad_phm, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_grad_activations, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_grad_fusion, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_last_forward_wins, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_threads, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_tables, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_cache_layout, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_init, xt_teardown),
        cmocka_unit_test_teardown(test_bneck_spec_check, xt_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
