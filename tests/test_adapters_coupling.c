/* Tests of the invertible adapters (NICE, GLOW; invertible.c) and the AdapterFusion layer
 * (fusion.c): every forward against a naive double-precision reference written here from the
 * formulas in adapters.h, every backward (input and parameter gradients, in both directions)
 * against central finite differences of that double reference, round trips, NULL and frozen
 * variants, initialisation, names, shapes and spec checks.
 *
 * Finite differences: L = sum(out * dout) for a fixed random dout, computed by the double
 * reference; each element is moved by +-1e-5 in double, so the FD error is far below the float
 * error of the analytic gradients (about 1e-6 relative), and the tolerances (atol + rtol*|ref|,
 * stated at each check) are set by the float side. Gradients start at random values and the start
 * is subtracted afterwards, so a kernel that overwrites instead of adding fails.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapters.h"
#include "core/core.h"
#include "tensor/tensor.h"

/* ---- allocation and helpers ----------------------------------------------------------------- */

/* Scratch memory comes from xt_alloc (testutil.h); calloc's 16-byte alignment also exercises the
 * 64-byte align-up of the cache binds. */
static double *to_double(const float *x, size_t n) {
    double *d = xt_dzeros(n);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}
static float *to_float(const double *x, size_t n) {
    float *f = xt_fzeros(n);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}
/* got - start, elementwise (the part a backward added). */
static float *added(const float *got, const float *start, size_t n) {
    float *d = xt_fzeros(n);
    for (size_t i = 0; i < n; i++)
        d[i] = got[i] - start[i];
    return d;
}

static int test_setup(void **state) {
    (void)state;
    xa_threads_set(1);
    xa_error_clear();
    return 0;
}

/* Compare grad[0..n) with double central differences of loss() over x[0..n) (x is restored). */
static void check_fd(const char *label, xt_loss_fn loss, void *ctx, double *x, const float *grad,
                     size_t n, float atol, float rtol) {
    const double h = 1e-5;
    float *fd = xt_fzeros(n);
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = loss(ctx);
        x[i] = x0 - h;
        double lm = loss(ctx);
        x[i] = x0;
        fd[i] = (float)((lp - lm) / (2.0 * h));
    }
    xt_assert_close(label, grad, fd, n, atol, rtol);
}

static double act_d(double x, xa_act act) {
    switch (act) {
    case XA_ACT_LINEAR: return x;
    case XA_ACT_RELU: return x > 0.0 ? x : 0.0;
    case XA_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case XA_ACT_TANH: return tanh(x);
    case XA_ACT_SILU: return x / (1.0 + exp(-x));
    default: fail_msg("act_d: activation %d not in the test reference", (int)act);
    }
    return 0.0;
}

/* out (N, O) = in (N, I) W^T (O, I) + b (O or NULL) */
static void linear_d(double *out, const double *in, const double *W, const double *b, int N, int I,
                     int O) {
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < O; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < I; i++)
                acc += in[(size_t)n * I + i] * W[(size_t)o * I + i];
            out[(size_t)n * O + o] = acc;
        }
    }
}

/* ---- invertible adapters: the double reference ------------------------------------------------
 */

/* Independent of invertible.c: c1 = C/2, c2 = C - c1, h = max(1, floor(k / rf)) (rf integral here).
 */
typedef struct inv_ref {
    xa_inv_spec spec;
    int N;
    double *P[XA_INV_N_TENSORS]; /* parameters in double, perturbed by the FD loop */
    double *inp, *dout;          /* (N, C) */
    int inverse;
} inv_ref;

static int ref_hidden(int k, double rf) {
    int h = (int)floor(k / rf);
    return h < 1 ? 1 : h;
}

/* Subnet Linear(I -> H) . act . Linear(H -> O) on N rows, parameters P[k..k+3]. */
static void subnet_d(double *out, const double *in, double *const *P, int N, int I, int H, int O,
                     xa_act act) {
    double *mid = malloc((size_t)N * H * sizeof(double));
    assert_non_null(mid);
    linear_d(mid, in, P[0], P[1], N, I, H);
    for (size_t i = 0; i < (size_t)N * H; i++)
        mid[i] = act_d(mid[i], act);
    linear_d(out, mid, P[2], P[3], N, H, O);
    free(mid);
}

static double soft_clamp_d(double s) {
    return exp(5.0 * 0.636 * atan(s / 5.0));
}

static void inv_ref_run(const inv_ref *r, double *out) {
    const int C = r->spec.C, N = r->N, c1 = C / 2, c2 = C - c1;
    const int h1 = ref_hidden(c1, r->spec.rf), h2 = ref_hidden(c2, r->spec.rf);
    const xa_act act = r->spec.act;
    double *a = malloc((size_t)N * c1 * sizeof(double)),
           *b = malloc((size_t)N * c2 * sizeof(double));
    double *sa = malloc((size_t)N * 2 * C * sizeof(double)),
           *sb = malloc((size_t)N * 2 * C * sizeof(double));
    assert_true(a && b && sa && sb);
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < c1; j++)
            a[(size_t)n * c1 + j] = r->inp[(size_t)n * C + j];
        for (int j = 0; j < c2; j++)
            b[(size_t)n * c2 + j] = r->inp[(size_t)n * C + c1 + j];
    }
    double *const *F = r->P, *const *G = r->P + 4; /* NICE F, G / GLOW s1, s2 */
    if (r->spec.kind == XA_INV_NICE) {
        if (!r->inverse) { /* a = e1 + F(e2); b = e2 + G(a) */
            subnet_d(sa, b, F, N, c2, h2, c1, act);
            for (size_t i = 0; i < (size_t)N * c1; i++)
                a[i] += sa[i];
            subnet_d(sb, a, G, N, c1, h1, c2, act);
            for (size_t i = 0; i < (size_t)N * c2; i++)
                b[i] += sb[i];
        } else { /* b = o2 - G(o1); a = o1 - F(b) */
            subnet_d(sb, a, G, N, c1, h1, c2, act);
            for (size_t i = 0; i < (size_t)N * c2; i++)
                b[i] -= sb[i];
            subnet_d(sa, b, F, N, c2, h2, c1, act);
            for (size_t i = 0; i < (size_t)N * c1; i++)
                a[i] -= sa[i];
        }
    } else {
        if (!r->inverse) { /* [s,t] = s2(e2); o1 = E(s) e1 + t; [s,t] = s1(o1); o2 = E(s) e2 + t */
            subnet_d(sb, b, G, N, c2, h2, 2 * c1, act);
            for (int n = 0; n < N; n++)
                for (int j = 0; j < c1; j++) {
                    double s = sb[(size_t)n * 2 * c1 + j], t = sb[(size_t)n * 2 * c1 + c1 + j];
                    a[(size_t)n * c1 + j] = soft_clamp_d(s) * a[(size_t)n * c1 + j] + t;
                }
            subnet_d(sa, a, F, N, c1, h1, 2 * c2, act);
            for (int n = 0; n < N; n++)
                for (int j = 0; j < c2; j++) {
                    double s = sa[(size_t)n * 2 * c2 + j], t = sa[(size_t)n * 2 * c2 + c2 + j];
                    b[(size_t)n * c2 + j] = soft_clamp_d(s) * b[(size_t)n * c2 + j] + t;
                }
        } else { /* [s,t] = s1(o1); e2 = (o2 - t)/E(s); [s,t] = s2(e2); e1 = (o1 - t)/E(s) */
            subnet_d(sa, a, F, N, c1, h1, 2 * c2, act);
            for (int n = 0; n < N; n++)
                for (int j = 0; j < c2; j++) {
                    double s = sa[(size_t)n * 2 * c2 + j], t = sa[(size_t)n * 2 * c2 + c2 + j];
                    b[(size_t)n * c2 + j] = (b[(size_t)n * c2 + j] - t) / soft_clamp_d(s);
                }
            subnet_d(sb, b, G, N, c2, h2, 2 * c1, act);
            for (int n = 0; n < N; n++)
                for (int j = 0; j < c1; j++) {
                    double s = sb[(size_t)n * 2 * c1 + j], t = sb[(size_t)n * 2 * c1 + c1 + j];
                    a[(size_t)n * c1 + j] = (a[(size_t)n * c1 + j] - t) / soft_clamp_d(s);
                }
        }
    }
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < c1; j++)
            out[(size_t)n * C + j] = a[(size_t)n * c1 + j];
        for (int j = 0; j < c2; j++)
            out[(size_t)n * C + c1 + j] = b[(size_t)n * c2 + j];
    }
    free(a);
    free(b);
    free(sa);
    free(sb);
}

static double inv_ref_loss(void *p) {
    inv_ref *r = p;
    size_t n = (size_t)r->N * r->spec.C;
    double *out = malloc(n * sizeof(double));
    assert_non_null(out);
    inv_ref_run(r, out);
    double L = 0.0;
    for (size_t i = 0; i < n; i++)
        L += out[i] * r->dout[i];
    free(out);
    return L;
}

/* A bound module with random parameters (weights std wstd, biases std 0.1) and a gradient buffer
 * holding random start values; *gstart gets a copy of that start. */
static void inv_make(xa_inv *m, const xa_inv_spec *s, xa_rng *rng, float wstd, float **params,
                     float **grads, float **gstart) {
    assert_int_equal(xa_inv_spec_check(s, "test"), XA_STATUS_OK);
    size_t numel[XA_INV_N_TENSORS];
    size_t total = xa_inv_sizes(s, numel);
    *params = xt_frandn(rng, total, wstd);
    size_t off = 0;
    for (int i = 0; i < XA_INV_N_TENSORS; i++) { /* biases (odd indices) smaller */
        if (i % 2) xa_rng_fill_normal(rng, *params + off, numel[i], 0.0f, 0.1f);
        off += numel[i];
    }
    *grads = xt_frandn(rng, total, 1.0f);
    if (gstart) *gstart = xt_fcopy(*grads, total);
    xa_inv_bind(m, s, *params, *grads);
}

static void *cache_mem(size_t bytes) {
    return xt_alloc(bytes);
}

/* Forward (or inverse) and its backward against the double reference and FD. */
static void inv_grad_case(xa_rng *rng, xa_inv_kind kind, int C, xa_act act, int inverse) {
    const int N = 5, cap = N + 3; /* the cache holds more rows than used */
    xa_inv_spec s = {kind, C, 2.0, act};
    xa_inv m;
    float *params, *grads, *gstart;
    inv_make(&m, &s, rng, 0.4f, &params, &grads, &gstart);
    const size_t NC = (size_t)N * C;
    float *inp = xt_frandn(rng, NC, 1.0f), *dout = xt_frandn(rng, NC, 1.0f), *out = xt_fzeros(NC);
    xa_inv_cache cache;
    xa_inv_cache_bind(&cache, &s, cache_mem(xa_inv_cache_bytes(&s, cap, 1)), cap, 1);
    if (inverse) {
        xa_inv_inverse(&m, &cache, out, inp, N);
    } else {
        xa_inv_forward(&m, &cache, out, inp, N);
    }
    char label[160];
    const char *dir = inverse ? "inverse" : "forward";
    const char *kn = kind == XA_INV_NICE ? "NICE" : "GLOW";

    inv_ref r = {s, N, {0}, to_double(inp, NC), to_double(dout, NC), inverse};
    for (int i = 0; i < XA_INV_N_TENSORS; i++)
        r.P[i] = to_double(m.t[i], m.numel[i]);
    double *ref_out = xt_dzeros(NC);
    inv_ref_run(&r, ref_out);
    snprintf(label, sizeof label, "%s %s C=%d %s out vs double reference", kn, dir, C,
             xa_act_name(act));
    xt_assert_close(label, out, to_float(ref_out, NC), NC, 1e-5f, 1e-5f);

    float *dstart = xt_frandn(rng, NC, 1.0f), *dinp = xt_fcopy(dstart, NC);
    if (inverse) {
        xa_inv_inverse_backward(&m, &cache, dinp, dout, inp, N);
    } else {
        xa_inv_forward_backward(&m, &cache, dinp, dout, inp, N);
    }
    float *dx = added(dinp, dstart, NC);
    snprintf(label, sizeof label, "%s %s C=%d %s dinp vs FD", kn, dir, C, xa_act_name(act));
    check_fd(label, inv_ref_loss, &r, r.inp, dx, NC, 1e-4f, 1e-3f);
    size_t off = 0;
    float *gdiff[XA_INV_N_TENSORS];
    for (int i = 0; i < XA_INV_N_TENSORS; i++) {
        gdiff[i] = added(m.g[i], gstart + off, m.numel[i]);
        snprintf(label, sizeof label, "%s %s C=%d %s d%s vs FD", kn, dir, C, xa_act_name(act),
                 xa_inv_tensor_name(&m, i));
        check_fd(label, inv_ref_loss, &r, r.P[i], gdiff[i], m.numel[i], 1e-4f, 1e-3f);
        off += m.numel[i];
    }

    /* Frozen (no gradient buffer): the same input gradient. */
    xa_inv mf;
    xa_inv_bind(&mf, &s, params, NULL);
    for (int i = 0; i < XA_INV_N_TENSORS; i++)
        assert_null(mf.g[i]);
    xa_inv_cache cf;
    xa_inv_cache_bind(&cf, &s, cache_mem(xa_inv_cache_bytes(&s, N, 1)), N, 1);
    float *out2 = xt_fzeros(NC), *dinp2 = xt_fzeros(NC);
    if (inverse) {
        xa_inv_inverse(&mf, &cf, out2, inp, N);
        xa_inv_inverse_backward(&mf, &cf, dinp2, dout, inp, N);
    } else {
        xa_inv_forward(&mf, &cf, out2, inp, N);
        xa_inv_forward_backward(&mf, &cf, dinp2, dout, inp, N);
    }
    snprintf(label, sizeof label, "%s %s frozen dinp", kn, dir);
    xt_assert_close(label, dinp2, dx, NC, 1e-6f, 1e-6f);

    /* No input gradient wanted: parameter gradients only, and they are the same. */
    memset(grads, 0, xa_inv_sizes(&s, m.numel) * sizeof(float));
    if (inverse) {
        xa_inv_inverse(&m, &cache, out, inp, N);
        xa_inv_inverse_backward(&m, &cache, NULL, dout, inp, N);
    } else {
        xa_inv_forward(&m, &cache, out, inp, N);
        xa_inv_forward_backward(&m, &cache, NULL, dout, inp, N);
    }
    for (int i = 0; i < XA_INV_N_TENSORS; i++) {
        snprintf(label, sizeof label, "%s %s d%s without dinp", kn, dir, xa_inv_tensor_name(&m, i));
        xt_assert_close(label, m.g[i], gdiff[i], m.numel[i], 1e-6f, 1e-5f);
    }
}

static void test_nice_gradients(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 11, 0);
    const xa_act acts[] = {XA_ACT_RELU, XA_ACT_GELU, XA_ACT_TANH};
    const int Cs[] = {7, 8};
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 2; c++)
            for (int inv = 0; inv < 2; inv++)
                inv_grad_case(&rng, XA_INV_NICE, Cs[c], acts[a], inv);
}

static void test_glow_gradients(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 12, 0);
    const xa_act acts[] = {XA_ACT_RELU, XA_ACT_GELU, XA_ACT_TANH};
    const int Cs[] = {7, 8};
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 2; c++)
            for (int inv = 0; inv < 2; inv++)
                inv_grad_case(&rng, XA_INV_GLOW, Cs[c], acts[a], inv);
    /* a small odd C = 3 (c1 = 1) and the smallest C = 2 */
    inv_grad_case(&rng, XA_INV_GLOW, 3, XA_ACT_SILU, 0);
    inv_grad_case(&rng, XA_INV_GLOW, 2, XA_ACT_GELU, 1);
    inv_grad_case(&rng, XA_INV_NICE, 3, XA_ACT_SILU, 1);
}

/* inverse(forward(x)) = x and forward(inverse(x)) = x, on a larger shape. */
static void roundtrip_case(xa_rng *rng, xa_inv_kind kind, int C, xa_act act, float wstd,
                           float atol) {
    const int N = 33;
    xa_inv_spec s = {kind, C, 2.0, act};
    xa_inv m;
    float *params, *grads;
    inv_make(&m, &s, rng, wstd, &params, &grads, NULL);
    const size_t NC = (size_t)N * C;
    float *x = xt_frandn(rng, NC, 1.0f), *y = xt_fzeros(NC), *z = xt_fzeros(NC);
    xa_inv_cache cf, ci;
    xa_inv_cache_bind(&cf, &s, cache_mem(xa_inv_cache_bytes(&s, N, 0)), N, 0);
    xa_inv_cache_bind(&ci, &s, cache_mem(xa_inv_cache_bytes(&s, N, 0)), N, 0);
    char label[128];
    xa_inv_forward(&m, &cf, y, x, N);
    /* the block must change its input, or the round trip proves nothing */
    double moved = 0.0;
    for (size_t i = 0; i < NC; i++)
        moved = fmax(moved, fabs((double)y[i] - x[i]));
    assert_true(moved > 0.05);
    xa_inv_inverse(&m, &ci, z, y, N);
    snprintf(label, sizeof label, "%s C=%d inverse(forward(x))",
             kind == XA_INV_NICE ? "NICE" : "GLOW", C);
    xt_assert_close(label, z, x, NC, atol, atol);
    xa_inv_inverse(&m, &ci, y, x, N);
    xa_inv_forward(&m, &cf, z, y, N);
    snprintf(label, sizeof label, "%s C=%d forward(inverse(x))",
             kind == XA_INV_NICE ? "NICE" : "GLOW", C);
    xt_assert_close(label, z, x, NC, atol, atol);
}

static void test_inv_roundtrip(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 13, 0);
    for (int C = 7; C <= 8; C++) {
        roundtrip_case(&rng, XA_INV_NICE, C, XA_ACT_RELU, 0.5f, 1e-6f);
        roundtrip_case(&rng, XA_INV_NICE, C, XA_ACT_GELU, 0.5f, 1e-6f);
        roundtrip_case(&rng, XA_INV_GLOW, C, XA_ACT_TANH, 0.5f, 1e-5f);
        /* larger weights: scales E(s) far from 1 (with std 3 the float round trip itself is
         * ill-conditioned, errors ~0.2, so that is not a usable check) */
        roundtrip_case(&rng, XA_INV_GLOW, C, XA_ACT_RELU, 1.0f, 1e-4f);
    }
    /* MAD-X shape: XLM-R base embedding, relu, rf 2, AdapterHub's init */
    const int C = 768, N = 4;
    xa_inv_spec s = {XA_INV_NICE, C, 2.0, XA_ACT_RELU};
    size_t numel[XA_INV_N_TENSORS];
    float *params = xt_fzeros(xa_inv_sizes(&s, numel));
    xa_inv m;
    xa_inv_bind(&m, &s, params, NULL);
    xa_inv_init_weights(&m, &rng);
    float *x = xt_frandn(&rng, (size_t)N * C, 1.0f), *y = xt_fzeros((size_t)N * C),
          *z = xt_fzeros((size_t)N * C);
    xa_inv_cache c;
    xa_inv_cache_bind(&c, &s, cache_mem(xa_inv_cache_bytes(&s, N, 0)), N, 0);
    xa_inv_forward(&m, &c, y, x, N);
    xa_inv_inverse(&m, &c, z, y, N);
    xt_assert_close("NICE XLM-R inverse(forward(x))", z, x, (size_t)N * C, 1e-6f, 1e-6f);
}

static void test_inv_sizes_names_init(void **state) {
    (void)state;
    /* XLM-R base, MAD-X: F.0 is [192, 384], 296,064 parameters (ADAPTERHUB.md §1.5) */
    xa_inv_spec s = {XA_INV_NICE, 768, 2.0, XA_ACT_RELU};
    size_t numel[XA_INV_N_TENSORS];
    assert_int_equal(xa_inv_sizes(&s, numel), 296064);
    xa_inv m;
    xa_inv_bind(&m, &s, NULL, NULL);
    int64_t sh[2];
    assert_int_equal(xa_inv_tensor_shape(&m, XA_INV_A0_W, sh), 2);
    assert_true(sh[0] == 192 && sh[1] == 384);

    /* C = 7: c1 = 3, c2 = 4, h1 = 3 // 2 = 1, h2 = 2 */
    struct {
        xa_inv_kind kind;
        const char *names[XA_INV_N_TENSORS];
        int64_t shapes[XA_INV_N_TENSORS][2];
    } cases[2] = {
        {XA_INV_NICE,
         {"F.0.weight", "F.0.bias", "F.2.weight", "F.2.bias", "G.0.weight", "G.0.bias",
          "G.2.weight", "G.2.bias"},
         {{2, 4}, {2, 0}, {3, 2}, {3, 0}, {1, 3}, {1, 0}, {4, 1}, {4, 0}}},
        {XA_INV_GLOW,
         {"s1.0.weight", "s1.0.bias", "s1.2.weight", "s1.2.bias", "s2.0.weight", "s2.0.bias",
          "s2.2.weight", "s2.2.bias"},
         {{1, 3}, {1, 0}, {8, 1}, {8, 0}, {2, 4}, {2, 0}, {6, 2}, {6, 0}}},
    };
    for (int k = 0; k < 2; k++) {
        xa_inv_spec s7 = {cases[k].kind, 7, 2.0, XA_ACT_GELU};
        size_t total = xa_inv_sizes(&s7, numel), want = 0;
        float *p = xt_fzeros(total), *g = xt_fzeros(total);
        xa_inv_bind(&m, &s7, p, g);
        assert_int_equal(m.c1, 3);
        assert_int_equal(m.c2, 4);
        assert_int_equal(m.h1, 1);
        assert_int_equal(m.h2, 2);
        for (int i = 0; i < XA_INV_N_TENSORS; i++) {
            assert_string_equal(xa_inv_tensor_name(&m, i), cases[k].names[i]);
            int nd = xa_inv_tensor_shape(&m, i, sh);
            int64_t prod = sh[0] * (nd == 2 ? sh[1] : 1);
            assert_int_equal(nd, cases[k].shapes[i][1] ? 2 : 1);
            assert_int_equal(sh[0], cases[k].shapes[i][0]);
            if (nd == 2) assert_int_equal(sh[1], cases[k].shapes[i][1]);
            assert_int_equal((size_t)prod, m.numel[i]);
            /* views carved in enum order, gradients mirror them */
            assert_ptr_equal(m.t[i], p + want);
            assert_ptr_equal(m.g[i], g + want);
            want += m.numel[i];
        }
        assert_int_equal(total, want);
        assert_null(xa_inv_tensor_name(&m, XA_INV_N_TENSORS));
    }

    /* Python's int(k // rf): 1 // 0.1 == 9 (not 10); hidden sizes are at least 1 */
    xa_inv_spec s2 = {XA_INV_NICE, 2, 0.1, XA_ACT_RELU};
    xa_inv_bind(&m, &s2, NULL, NULL);
    assert_int_equal(m.h1, 9);
    assert_int_equal(m.h2, 9);
    xa_inv_spec s3 = {XA_INV_NICE, 5, 3.0, XA_ACT_RELU};
    xa_inv_bind(&m, &s3, NULL, NULL);
    assert_int_equal(m.h1, 1); /* 2 // 3 = 0 -> 1 */
    assert_int_equal(m.h2, 1); /* 3 // 3 = 1 */
    xa_inv_spec s4 = {XA_INV_GLOW, 10, 1.5, XA_ACT_RELU};
    xa_inv_bind(&m, &s4, NULL, NULL);
    assert_int_equal(m.h1, 3); /* 5 // 1.5 */

    /* init: N(0, 0.02) weights, zero biases */
    xa_rng rng;
    xa_rng_seed(&rng, 14, 0);
    size_t total = xa_inv_sizes(&s, numel);
    float *p = xt_frandn(&rng, total, 1.0f);
    xa_inv_bind(&m, &s, p, NULL);
    xa_inv_init_weights(&m, &rng);
    for (int i = 0; i < XA_INV_N_TENSORS; i++) {
        double s1 = 0.0, s2s = 0.0;
        for (size_t j = 0; j < m.numel[i]; j++) {
            s1 += m.t[i][j];
            s2s += (double)m.t[i][j] * m.t[i][j];
        }
        double mean = s1 / m.numel[i], sd = sqrt(s2s / m.numel[i] - mean * mean);
        if (i % 2) {
            assert_true(s2s == 0.0);
        } else {
            if (fabs(mean) > 1e-3 || fabs(sd - 0.02) > 1e-3)
                fail_msg("%s init: mean %g std %g, expected N(0, 0.02)", xa_inv_tensor_name(&m, i),
                         mean, sd);
        }
    }
}

static void test_inv_spec_check(void **state) {
    (void)state;
    xa_inv_spec ok = {XA_INV_GLOW, 2, 2.0, XA_ACT_RELU};
    assert_int_equal(xa_inv_spec_check(&ok, "t"), XA_STATUS_OK);
    xa_inv_spec bad = ok;
    bad.C = 1;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    xt_assert_error_mentions("C is 1");
    bad = ok;
    bad.rf = 0.0;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    xt_assert_error_mentions("reduction_factor");
    bad.rf = -2.0;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    bad.rf = NAN;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    bad.rf = INFINITY;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    bad.rf = 1e-30; /* hidden sizes beyond any memory */
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    bad = ok;
    bad.kind = (xa_inv_kind)7;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    xt_assert_error_mentions("nice");
    bad = ok;
    bad.act = XA_ACT_COUNT;
    assert_int_equal(xa_inv_spec_check(&bad, "t"), XA_STATUS_USAGE);
    /* a forward-only cache is smaller than a training one */
    assert_true(xa_inv_cache_bytes(&ok, 16, 0) < xa_inv_cache_bytes(&ok, 16, 1));
}

/* ---- AdapterFusion: the double reference --------------------------------------------------------
 */

#define MAX_N 4

typedef struct fus_ref {
    xa_fusion_spec spec;
    int N;
    double *P[XA_FUSION_N_TENSORS]; /* NULL where absent */
    double *q, *u[MAX_N], *r, *dout;
    const uint8_t *keep; /* (N, n) or NULL */
} fus_ref;

static void fus_ref_run(const fus_ref *f, double *out, double *probs) {
    const xa_fusion_spec *s = &f->spec;
    const int C = s->C, n = s->n;
    double *v = malloc((size_t)C * sizeof(double)), *k = malloc((size_t)C * sizeof(double));
    double *w = malloc((size_t)n * C * sizeof(double)), *ql = malloc((size_t)C * sizeof(double));
    double sc[MAX_N];
    assert_true(v && k && w && ql);
    for (int t = 0; t < f->N; t++) {
        const double *qt = f->q + (size_t)t * C, *rt = f->r + (size_t)t * C;
        if (s->query) {
            linear_d(ql, qt, f->P[XA_FUSION_QW], f->P[XA_FUSION_QB], 1, C, C);
        } else {
            memcpy(ql, qt, (size_t)C * sizeof(double));
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < C; j++)
                v[j] = f->u[i][(size_t)t * C + j] + (s->residual_before ? rt[j] : 0.0);
            if (s->key) {
                linear_d(k, v, f->P[XA_FUSION_KW], f->P[XA_FUSION_KB], 1, C, C);
            } else {
                memcpy(k, v, (size_t)C * sizeof(double));
            }
            if (s->value) {
                linear_d(w + (size_t)i * C, v, f->P[XA_FUSION_VW], NULL, 1, C, C);
            } else {
                memcpy(w + (size_t)i * C, v, (size_t)C * sizeof(double));
            }
            double d = 0.0;
            for (int j = 0; j < C; j++)
                d += ql[j] * k[j];
            if (f->keep) d *= f->keep[(size_t)t * n + i] ? 1.0 / (1.0 - s->dropout) : 0.0;
            sc[i] = d / s->T;
        }
        double mx = sc[0], z = 0.0;
        for (int i = 1; i < n; i++)
            mx = fmax(mx, sc[i]);
        for (int i = 0; i < n; i++)
            z += (sc[i] = exp(sc[i] - mx));
        for (int j = 0; j < C; j++) {
            double o = s->residual_before ? 0.0 : rt[j];
            for (int i = 0; i < n; i++)
                o += sc[i] / z * w[(size_t)i * C + j];
            out[(size_t)t * C + j] = o;
        }
        if (probs)
            for (int i = 0; i < n; i++)
                probs[(size_t)t * n + i] = sc[i] / z;
    }
    free(v);
    free(k);
    free(w);
    free(ql);
}

static double fus_ref_loss(void *p) {
    fus_ref *f = p;
    size_t n = (size_t)f->N * f->spec.C;
    double *out = malloc(n * sizeof(double));
    assert_non_null(out);
    fus_ref_run(f, out, NULL);
    double L = 0.0;
    for (size_t i = 0; i < n; i++)
        L += out[i] * f->dout[i];
    free(out);
    return L;
}

typedef struct fus_case {
    const char *name;
    int query, key, value, residual_before;
    float T, dropout;
    int train;
} fus_case;

/* Forward vs the reference, then backward vs FD; then the NULL and frozen variants. */
static void fusion_case(xa_rng *rng, const fus_case *fc, int C, int n) {
    const int N = 5, cap = 7;
    xa_fusion_spec s = {C, n,     fc->query,  fc->key, fc->value, fc->residual_before,
                        0, fc->T, fc->dropout};
    assert_int_equal(xa_fusion_spec_check(&s, "test"), XA_STATUS_OK);
    size_t numel[XA_FUSION_N_TENSORS];
    size_t total = xa_fusion_sizes(&s, numel);
    float *params = xt_frandn(rng, total, 0.3f), *grads = xt_frandn(rng, total, 1.0f);
    float *gstart = xt_fcopy(grads, total);
    xa_fusion m;
    xa_fusion_bind(&m, &s, params, grads);
    const size_t NC = (size_t)N * C;
    float *q = xt_frandn(rng, NC, 1.0f), *r = xt_frandn(rng, NC, 1.0f),
          *dout = xt_frandn(rng, NC, 1.0f);
    float *ups[MAX_N];
    for (int i = 0; i < n; i++)
        ups[i] = xt_frandn(rng, NC, 1.0f);
    float *out = xt_fzeros(NC), *probs = xt_fzeros((size_t)N * n);
    xa_fusion_cache cache;
    xa_fusion_cache_bind(&cache, &s, cache_mem(xa_fusion_cache_bytes(&s, cap, 1)), cap, 1);
    const xa_rng rng_fwd = *rng;
    xa_rng drop_rng = rng_fwd, mask_rng = rng_fwd;
    xa_fusion_forward(&m, &cache, out, probs, q, (const float *const *)ups, r, N, fc->train,
                      &drop_rng);

    /* the same mask as the forward drew: one xa_dropout_mask over N*n bytes from the same state */
    uint8_t *keep = NULL;
    if (fc->train && fc->dropout > 0.0f) {
        keep = xt_alloc((size_t)N * n);
        xa_dropout_mask(keep, (size_t)N * n, fc->dropout, &mask_rng);
        int dropped = 0;
        for (int i = 0; i < N * n; i++)
            dropped += !keep[i];
        assert_true(dropped > 0); /* the case must exercise the mask */
    }
    fus_ref f = {s, N, {0}, to_double(q, NC), {0}, to_double(r, NC), to_double(dout, NC), keep};
    for (int i = 0; i < n; i++)
        f.u[i] = to_double(ups[i], NC);
    for (int i = 0; i < XA_FUSION_N_TENSORS; i++)
        f.P[i] = m.t[i] ? to_double(m.t[i], m.numel[i]) : NULL;
    double *ref_out = xt_dzeros(NC), *ref_probs = xt_dzeros((size_t)N * n);
    fus_ref_run(&f, ref_out, ref_probs);
    char label[160];
    snprintf(label, sizeof label, "fusion %s C=%d n=%d out vs double reference", fc->name, C, n);
    xt_assert_close(label, out, to_float(ref_out, NC), NC, 1e-5f, 1e-5f);
    snprintf(label, sizeof label, "fusion %s probs vs double reference", fc->name);
    xt_assert_close(label, probs, to_float(ref_probs, (size_t)N * n), (size_t)N * n, 1e-6f, 1e-5f);
    for (int t = 0; t < N; t++) {
        double z = 0.0;
        for (int i = 0; i < n; i++)
            z += probs[(size_t)t * n + i];
        if (fabs(z - 1.0) > 1e-6) fail_msg("fusion %s: probs row %d sums to %.9g", fc->name, t, z);
    }
    /* the products must not saturate the softmax, or the gradients test little */
    double pmax = 0.0;
    for (int i = 0; i < N * n; i++)
        pmax = fmax(pmax, probs[i]);
    assert_true(pmax < 0.9999);

    /* backward, every gradient starting at random values */
    float *dq0 = xt_frandn(rng, NC, 1.0f), *dr0 = xt_frandn(rng, NC, 1.0f), *du0[MAX_N], *du[MAX_N];
    float *dq = xt_fcopy(dq0, NC), *dr = xt_fcopy(dr0, NC);
    for (int i = 0; i < n; i++) {
        du0[i] = xt_frandn(rng, NC, 1.0f);
        du[i] = xt_fcopy(du0[i], NC);
    }
    xa_fusion_backward(&m, &cache, dq, du, dr, dout, q, (const float *const *)ups, r, N);
    float *gq = added(dq, dq0, NC), *gr = added(dr, dr0, NC), *gu[MAX_N];
    const float atol = 2e-4f, rtol = 1e-3f;
    snprintf(label, sizeof label, "fusion %s C=%d n=%d dquery vs FD", fc->name, C, n);
    check_fd(label, fus_ref_loss, &f, f.q, gq, NC, atol, rtol);
    snprintf(label, sizeof label, "fusion %s C=%d n=%d dr vs FD", fc->name, C, n);
    check_fd(label, fus_ref_loss, &f, f.r, gr, NC, atol, rtol);
    for (int i = 0; i < n; i++) {
        gu[i] = added(du[i], du0[i], NC);
        snprintf(label, sizeof label, "fusion %s C=%d n=%d dups[%d] vs FD", fc->name, C, n, i);
        check_fd(label, fus_ref_loss, &f, f.u[i], gu[i], NC, atol, rtol);
    }
    float *gp[XA_FUSION_N_TENSORS];
    size_t off = 0;
    for (int i = 0; i < XA_FUSION_N_TENSORS; i++) {
        gp[i] = NULL;
        if (!m.t[i]) {
            assert_null(m.g[i]);
            continue;
        }
        gp[i] = added(m.g[i], gstart + off, m.numel[i]);
        snprintf(label, sizeof label, "fusion %s C=%d n=%d d%s vs FD", fc->name, C, n,
                 xa_fusion_tensor_name(&m, i));
        check_fd(label, fus_ref_loss, &f, f.P[i], gp[i], m.numel[i], atol, rtol);
        off += m.numel[i];
    }
    assert_int_equal(off, total);

    /* NULL variations (forward again from the same rng state: the same mask). Each run starts
     * from zero gradients and must reproduce the parts it was asked for. */
    for (int variant = 0; variant < 5; variant++) {
        /* 0: frozen, all input grads; 1: trainable, no input grads; 2: dups NULL only;
         * 3: dups[0] NULL, dquery NULL; 4: frozen and only dr */
        int frozen = variant == 0 || variant == 4;
        float *g2 = frozen ? NULL : xt_fzeros(total);
        xa_fusion m2;
        xa_fusion_bind(&m2, &s, params, g2);
        xa_fusion_cache c2;
        xa_fusion_cache_bind(&c2, &s, cache_mem(xa_fusion_cache_bytes(&s, N, 1)), N, 1);
        xa_rng r2 = rng_fwd; /* the same dropout mask as the first forward */
        xa_fusion_forward(&m2, &c2, out, NULL, q, (const float *const *)ups, r, N, fc->train, &r2);
        float *dq2 = xt_fzeros(NC), *dr2 = xt_fzeros(NC), *du2[MAX_N];
        for (int i = 0; i < n; i++)
            du2[i] = xt_fzeros(NC);
        float *dq_arg = (variant == 1 || variant == 3 || variant == 4) ? NULL : dq2;
        float *dr_arg = variant == 1 ? NULL : dr2;
        float *du_arg[MAX_N];
        for (int i = 0; i < n; i++)
            du_arg[i] = du2[i];
        if (variant == 3) du_arg[0] = NULL;
        float *const *dups_arg = (variant == 1 || variant == 2 || variant == 4) ? NULL : du_arg;
        xa_fusion_backward(&m2, &c2, dq_arg, dups_arg, dr_arg, dout, q, (const float *const *)ups,
                           r, N);
        snprintf(label, sizeof label, "fusion %s variant %d", fc->name, variant);
        if (dq_arg) xt_assert_close(label, dq2, gq, NC, 1e-5f, 1e-4f);
        if (dr_arg) xt_assert_close(label, dr2, gr, NC, 1e-5f, 1e-4f);
        for (int i = 0; dups_arg && i < n; i++)
            if (du_arg[i]) xt_assert_close(label, du2[i], gu[i], NC, 1e-5f, 1e-4f);
        for (int i = 0; i < XA_FUSION_N_TENSORS; i++) {
            if (frozen) {
                assert_null(m2.g[i]);
            } else if (m2.g[i]) {
                xt_assert_close(label, m2.g[i], gp[i], m2.numel[i], 1e-5f, 1e-4f);
            }
        }
    }
}

static void test_fusion_gradients(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 21, 0);
    const fus_case cases[] = {
        {"static", 1, 1, 0, 0, 1.0f, 0.0f, 0},
        {"dynamic", 1, 1, 1, 0, 1.0f, 0.0f, 0},
        {"dynamic residual_before", 1, 1, 1, 1, 1.0f, 0.0f, 0},
        {"static residual_before", 1, 1, 0, 1, 1.0f, 0.0f, 0},
        {"no query", 0, 1, 1, 0, 1.0f, 0.0f, 0},
        {"no key", 1, 0, 1, 0, 1.0f, 0.0f, 0},
        {"no query no key residual_before", 0, 0, 1, 1, 1.0f, 0.0f, 0},
        {"only value T=2", 0, 0, 1, 0, 2.0f, 0.0f, 0},
        {"none", 0, 0, 0, 0, 1.0f, 0.0f, 0},
        {"dynamic T=0.5 dropout train", 1, 1, 1, 0, 0.5f, 0.3f, 1},
        {"dynamic dropout eval", 1, 1, 1, 0, 1.0f, 0.3f, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fusion_case(&rng, &cases[k], 8, 3);
        fusion_case(&rng, &cases[k], 7, 2);
    }
}

static void test_fusion_init_names_regularizer(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 22, 0);
    const int C = 64;
    xa_fusion_spec dyn = {C, 2, 1, 1, 1, 0, 1, 1.0f, 0.1f};
    size_t numel[XA_FUSION_N_TENSORS];
    size_t total = xa_fusion_sizes(&dyn, numel);
    assert_int_equal(total, (size_t)3 * C * C + 2 * C);
    float *p = xt_frandn(&rng, total, 1.0f);
    xa_fusion m;
    xa_fusion_bind(&m, &dyn, p, NULL);
    xa_fusion_init_weights(&m, &rng);
    const char *names[] = {"query.weight", "query.bias", "key.weight", "key.bias", "value.weight"};
    for (int i = 0; i < XA_FUSION_N_TENSORS; i++)
        assert_string_equal(xa_fusion_tensor_name(&m, i), names[i]);
    assert_ptr_equal(m.t[XA_FUSION_VW], p + 2 * C * C + 2 * C);
    for (int w = XA_FUSION_QW; w <= XA_FUSION_KW; w += 2) {
        double s1 = 0.0, s2 = 0.0;
        for (size_t j = 0; j < m.numel[w]; j++) {
            s1 += m.t[w][j];
            s2 += (double)m.t[w][j] * m.t[w][j];
        }
        double mean = s1 / m.numel[w], sd = sqrt(s2 / m.numel[w] - mean * mean);
        if (fabs(mean) > 2e-3 || fabs(sd - 0.02) > 2e-3)
            fail_msg("%s init: mean %g std %g", names[w], mean, sd);
        for (int j = 0; j < C; j++)
            assert_true(m.t[w + 1][j] == 0.0f);
    }
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            if (m.t[XA_FUSION_VW][(size_t)i * C + j] != (i == j ? 1.0f : 1e-6f))
                fail_msg("value.weight[%d][%d] = %g, expected identity with 1e-6 off the diagonal",
                         i, j, (double)m.t[XA_FUSION_VW][(size_t)i * C + j]);

    /* value_initialized off: N(0, 0.02) */
    dyn.value_initialized = 0;
    xa_fusion_bind(&m, &dyn, p, NULL);
    xa_fusion_init_weights(&m, &rng);
    double s2 = 0.0;
    for (size_t j = 0; j < m.numel[XA_FUSION_VW]; j++)
        s2 += (double)m.t[XA_FUSION_VW][j] * m.t[XA_FUSION_VW][j];
    assert_true(fabs(sqrt(s2 / m.numel[XA_FUSION_VW]) - 0.02) < 2e-3);

    /* static: no value tensor, no name */
    xa_fusion_spec st = {C, 3, 1, 1, 0, 0, 0, 1.0f, 0.0f};
    total = xa_fusion_sizes(&st, numel);
    assert_int_equal(total, (size_t)2 * C * C + 2 * C);
    xa_fusion ms;
    xa_fusion_bind(&ms, &st, xt_fzeros(total), xt_fzeros(total));
    assert_null(xa_fusion_tensor_name(&ms, XA_FUSION_VW));
    assert_null(ms.t[XA_FUSION_VW]);
    assert_null(ms.g[XA_FUSION_VW]);
    assert_int_equal(numel[XA_FUSION_VW], 0);
    assert_true(xa_fusion_regularizer(&ms, 0.01f) == 0.0f);

    /* regulariser: coef * ||I - V||^2, gradient -2 coef (I - V) added */
    const int c = 6;
    xa_fusion_spec sv = {c, 2, 1, 1, 1, 0, 1, 1.0f, 0.0f};
    total = xa_fusion_sizes(&sv, numel);
    float *pv = xt_frandn(&rng, total, 0.5f), *gv = xt_frandn(&rng, total, 1.0f),
          *g0 = xt_fcopy(gv, total);
    xa_fusion mv;
    xa_fusion_bind(&mv, &sv, pv, gv);
    const float coef = 0.01f;
    double want = 0.0;
    float *want_g = xt_fzeros((size_t)c * c);
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double d = (i == j) - (double)mv.t[XA_FUSION_VW][i * c + j];
            want += d * d;
            want_g[i * c + j] = (float)(-2.0 * coef * d);
        }
    want *= coef;
    float got = xa_fusion_regularizer(&mv, coef);
    float wantf = (float)want;
    xt_assert_close("fusion regulariser value", &got, &wantf, 1, 1e-7f, 1e-5f);
    float *gvw0 = g0 + 2 * c * c + 2 * c;
    xt_assert_close("fusion regulariser dV", added(mv.g[XA_FUSION_VW], gvw0, (size_t)c * c), want_g,
                    (size_t)c * c, 1e-7f, 1e-5f);
    xt_assert_close("fusion regulariser leaves dQ", mv.g[XA_FUSION_QW], g0, (size_t)c * c, 0.0f,
                    0.0f);
    /* frozen: the value, no gradient */
    xa_fusion_bind(&mv, &sv, pv, NULL);
    got = xa_fusion_regularizer(&mv, coef);
    xt_assert_close("fusion regulariser value (frozen)", &got, &wantf, 1, 1e-7f, 1e-5f);
    /* at the value_initialized start the penalty is tiny: (C^2 - C) * 1e-12 */
    xa_fusion_bind(&m, &(xa_fusion_spec){C, 2, 1, 1, 1, 0, 1, 1.0f, 0.0f}, p, NULL);
    xa_fusion_init_weights(&m, &rng);
    assert_true(xa_fusion_regularizer(&m, 1.0f) < 1e-8f);
}

static void test_fusion_spec_check(void **state) {
    (void)state;
    xa_fusion_spec ok = {8, 2, 1, 1, 1, 0, 1, 1.0f, 0.1f};
    assert_int_equal(xa_fusion_spec_check(&ok, "t"), XA_STATUS_OK);
    xa_fusion_spec bad = ok;
    bad.n = 1;
    assert_int_equal(xa_fusion_spec_check(&bad, "t"), XA_STATUS_USAGE);
    xt_assert_error_mentions("adapter");
    bad = ok;
    bad.C = 0;
    assert_int_equal(xa_fusion_spec_check(&bad, "t"), XA_STATUS_USAGE);
    bad = ok;
    bad.T = 0.0f;
    assert_int_equal(xa_fusion_spec_check(&bad, "t"), XA_STATUS_USAGE);
    xt_assert_error_mentions("temperature");
    bad.T = NAN;
    assert_int_equal(xa_fusion_spec_check(&bad, "t"), XA_STATUS_USAGE);
    bad = ok;
    bad.dropout = 1.0f;
    assert_int_equal(xa_fusion_spec_check(&bad, "t"), XA_STATUS_USAGE);
    xt_assert_error_mentions("dropout");
    bad.dropout = -0.1f;
    assert_int_equal(xa_fusion_spec_check(&bad, "t"), XA_STATUS_USAGE);
    assert_true(xa_fusion_cache_bytes(&ok, 16, 0) < xa_fusion_cache_bytes(&ok, 16, 1));
}

/* Dropout on the logits only while training, from the rng; the mask changes with the rng state and
 * a forward-only cache gives the evaluation output. */
static void test_fusion_dropout(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 23, 0);
    const int C = 8, n = 3, N = 40;
    xa_fusion_spec s = {C, n, 1, 1, 1, 0, 1, 1.0f, 0.5f};
    size_t numel[XA_FUSION_N_TENSORS];
    size_t total = xa_fusion_sizes(&s, numel);
    float *p = xt_frandn(&rng, total, 0.3f);
    xa_fusion m;
    xa_fusion_bind(&m, &s, p, NULL);
    const size_t NC = (size_t)N * C;
    float *q = xt_frandn(&rng, NC, 1.0f), *r = xt_frandn(&rng, NC, 1.0f), *ups[3];
    for (int i = 0; i < n; i++)
        ups[i] = xt_frandn(&rng, NC, 1.0f);
    xa_fusion_cache ce, ct;
    xa_fusion_cache_bind(&ce, &s, cache_mem(xa_fusion_cache_bytes(&s, N, 0)), N, 0);
    xa_fusion_cache_bind(&ct, &s, cache_mem(xa_fusion_cache_bytes(&s, N, 1)), N, 1);
    float *pe = xt_fzeros((size_t)N * n), *pt = xt_fzeros((size_t)N * n),
          *pt2 = xt_fzeros((size_t)N * n);
    float *oe = xt_fzeros(NC), *ot = xt_fzeros(NC);
    xa_rng before = rng;
    xa_fusion_forward(&m, &ce, oe, pe, q, (const float *const *)ups, r, N, 0, &rng);
    assert_memory_equal(&before, &rng, sizeof rng); /* eval draws nothing */
    xa_fusion_forward(&m, &ct, ot, pt, q, (const float *const *)ups, r, N, 1, &rng);
    xa_fusion_forward(&m, &ct, ot, pt2, q, (const float *const *)ups, r, N, 1, &rng);
    int diff_eval = 0, diff_steps = 0;
    for (int i = 0; i < N * n; i++) {
        diff_eval += pe[i] != pt[i];
        diff_steps += pt[i] != pt2[i];
    }
    assert_true(diff_eval > 0);
    assert_true(diff_steps > 0);
    /* a dropped logit counts as 0: a row with every logit dropped is uniform */
    for (int t = 0; t < N; t++) {
        double z = 0.0;
        for (int i = 0; i < n; i++)
            z += pt2[t * n + i];
        assert_true(fabs(z - 1.0) < 1e-6);
    }
}

/* The per-token loops split over threads above 65536 elements: the same results with 3 threads. */
static void test_fusion_threads(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 24, 0);
    const int C = 8, n = 3, N = 3000;
    xa_fusion_spec s = {C, n, 1, 1, 1, 1, 1, 1.0f, 0.0f};
    size_t numel[XA_FUSION_N_TENSORS];
    size_t total = xa_fusion_sizes(&s, numel);
    float *p = xt_frandn(&rng, total, 0.3f);
    const size_t NC = (size_t)N * C;
    float *q = xt_frandn(&rng, NC, 1.0f), *r = xt_frandn(&rng, NC, 1.0f),
          *dout = xt_frandn(&rng, NC, 1.0f), *ups[3];
    for (int i = 0; i < n; i++)
        ups[i] = xt_frandn(&rng, NC, 1.0f);
    float *out[2], *g[2], *dq[2], *dr[2], *du[2][3];
    for (int k = 0; k < 2; k++) {
        xa_threads_set(k ? 3 : 1);
        g[k] = xt_fzeros(total);
        xa_fusion m;
        xa_fusion_bind(&m, &s, p, g[k]);
        xa_fusion_cache c;
        xa_fusion_cache_bind(&c, &s, cache_mem(xa_fusion_cache_bytes(&s, N, 1)), N, 1);
        out[k] = xt_fzeros(NC);
        dq[k] = xt_fzeros(NC);
        dr[k] = xt_fzeros(NC);
        for (int i = 0; i < n; i++)
            du[k][i] = xt_fzeros(NC);
        xa_fusion_forward(&m, &c, out[k], NULL, q, (const float *const *)ups, r, N, 1, &rng);
        xa_fusion_backward(&m, &c, dq[k], du[k], dr[k], dout, q, (const float *const *)ups, r, N);
    }
    xt_assert_close("fusion out 3 threads", out[1], out[0], NC, 1e-6f, 1e-5f);
    xt_assert_close("fusion dquery 3 threads", dq[1], dq[0], NC, 1e-6f, 1e-5f);
    xt_assert_close("fusion dr 3 threads", dr[1], dr[0], NC, 1e-6f, 1e-5f);
    for (int i = 0; i < n; i++)
        xt_assert_close("fusion dups 3 threads", du[1][i], du[0][i], NC, 1e-6f, 1e-5f);
    xt_assert_close("fusion param grads 3 threads", g[1], g[0], total, 1e-5f, 1e-4f);
}

/* NICE forward with 2 and 3 threads on rows enough for xa_sgemm to split its products
 * (invertible.c then runs the row blocks through every step in one parallel region) against the
 * same steps as separate kernels at the same thread count (xa_linear_forward over all rows), bit
 * for bit, with a cache larger than the rows used. */
static void test_nice_rows_in_one_region(void **state) {
    (void)state;
#ifndef XA_HAVE_OPENMP
    skip(); /* one thread only: the path under test never runs */
#endif
    xa_rng rng;
    xa_rng_seed(&rng, 31, 4);
    const int C = 128, N = 600, c1 = C / 2, c2 = C - c1, h = c2 / 2;
    xa_inv_spec spec = {XA_INV_NICE, C, 2.0, XA_ACT_RELU};
    xa_inv m;
    float *params, *grads;
    inv_make(&m, &spec, &rng, 0.3f, &params, &grads, NULL);
    float *inp = xt_frandn(&rng, (size_t)N * C, 1.0f);
    for (int threads = 2; threads <= 3; threads++) {
        xa_threads_set(threads);
        const int in[4] = {c2, h, c1, h}, outw[4] = {h, c1, h, c2};
        assert_true(xa_linear_row_block(N, in, outw, 4) > 0); /* the path under test */
        /* o1 = e1 + F(e2); o2 = e2 + G(o1), F = Linear . relu . Linear */
        float *e1 = xt_fzeros((size_t)N * c1), *e2 = xt_fzeros((size_t)N * c2);
        float *pre = xt_fzeros((size_t)N * h), *f = xt_fzeros((size_t)N * C);
        float *o1 = xt_fzeros((size_t)N * c1), *o2 = xt_fzeros((size_t)N * c2), *ref = xt_fzeros((size_t)N * C);
        for (int n = 0; n < N; n++) {
            memcpy(e1 + (size_t)n * c1, inp + (size_t)n * C, (size_t)c1 * sizeof(float));
            memcpy(e2 + (size_t)n * c2, inp + (size_t)n * C + c1, (size_t)c2 * sizeof(float));
        }
        xa_linear_forward(pre, e2, m.t[XA_INV_A0_W], m.t[XA_INV_A0_B], N, c2, h);
        xa_act_forward(pre, pre, (size_t)N * h, XA_ACT_RELU);
        xa_linear_forward(f, pre, m.t[XA_INV_A2_W], m.t[XA_INV_A2_B], N, h, c1);
        xa_residual_forward(o1, e1, f, (size_t)N * c1);
        xa_linear_forward(pre, o1, m.t[XA_INV_B0_W], m.t[XA_INV_B0_B], N, c1, h);
        xa_act_forward(pre, pre, (size_t)N * h, XA_ACT_RELU);
        xa_linear_forward(f, pre, m.t[XA_INV_B2_W], m.t[XA_INV_B2_B], N, h, c2);
        xa_residual_forward(o2, e2, f, (size_t)N * c2);
        for (int n = 0; n < N; n++) {
            memcpy(ref + (size_t)n * C, o1 + (size_t)n * c1, (size_t)c1 * sizeof(float));
            memcpy(ref + (size_t)n * C + c1, o2 + (size_t)n * c2, (size_t)c2 * sizeof(float));
        }
        xa_inv_cache c;
        xa_inv_cache_bind(&c, &spec, cache_mem(xa_inv_cache_bytes(&spec, N + 40, 0)), N + 40, 0);
        float *got = xt_fzeros((size_t)N * C);
        xa_inv_forward(&m, &c, got, inp, N);
        for (size_t j = 0; j < (size_t)N * C; j++)
            if (memcmp(got + j, ref + j, sizeof(float)))
                fail_msg("NICE forward, %d threads: element %zu (row %zu) is %.9g, the separate "
                         "kernels give %.9g", threads, j, j / (size_t)C, (double)got[j], (double)ref[j]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inv_spec_check, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_inv_sizes_names_init, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_nice_gradients, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_glow_gradients, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_inv_roundtrip, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_nice_rows_in_one_region, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_fusion_spec_check, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_fusion_init_names_regularizer, test_setup,
                                        xt_teardown),
        cmocka_unit_test_setup_teardown(test_fusion_gradients, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_fusion_dropout, test_setup, xt_teardown),
        cmocka_unit_test_setup_teardown(test_fusion_threads, test_setup, xt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
