/* Tests of the tensor module: every kernel against the PyTorch golden values in
 * tests/data/tensor/ops.safetensors (made by tests/golden/gen_tensor_golden.py), every backward
 * against central finite differences, and every fast kernel against its _ref twin on odd sizes,
 * with 1 and several threads. Tolerances are stated at each check as atol + rtol*|ref|.
 *
 * The class-weighted cross-entropy has its own golden, tests/data/tensor/class_weights.safetensors
 * (tests/golden/gen_class_weight_golden.py: F.cross_entropy(weight=...)).
 *
 * Finite differences: the loss is L = sum(out * dout) for a fixed random dout, accumulated in
 * double; each input element is moved by +-h (h = 1e-2 or 1e-3) and (L+ - L-)/(x+ - x-) is
 * compared elementwise with the analytic gradient. The float forward pass limits this to about
 * 1e-3 absolute, hence the FD tolerances.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"
#include "tensor/gemm.h"

#ifdef XA_HAVE_OPENMP
#include <omp.h>
#endif

/* ---- fixture and helpers ------------------------------------------------------------------- */

static xa_st_file *g_st;

static int group_setup(void **state) {
    (void)state;
    xa_threads_set(1);
    g_st = xt_open_golden("tensor/ops.safetensors");
    return g_st ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    xa_st_close(g_st);
    return 0;
}

/* A golden F32 tensor with exactly n elements, copied into test memory. */
static float *gold(const char *name, size_t n) {
    float *x = xt_fzeros(n);
    xt_gold_f32(g_st, name, x, n);
    return x;
}

static int32_t *gold_i32(const char *name, size_t n) {
    const xa_st_tensor *t = xa_st_find(g_st, name);
    if (!t) fail_msg("fixture has no tensor '%s'", name);
    if (t->dtype != XA_DTYPE_I32 || (size_t)t->n_elems != n)
        fail_msg("'%s': expected I32 (%zu)", name, n);
    int32_t *x = xt_alloc(n * sizeof(int32_t));
    memcpy(x, t->data, n * sizeof(int32_t));
    return x;
}

/* Threads for the multi-thread comparisons: more than the cores is fine, it tests the split. */
#define MANY_THREADS 3

/* ---- sgemm -------------------------------------------------------------------------------- */

static void sgemm_case(xa_rng *rng, int ta, int tb, int M, int N, int K, float alpha, float beta) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5; /* strided sub-matrices */
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = xt_frandn(rng, na, 1.0f), *B = xt_frandn(rng, nb, 1.0f),
          *C0 = xt_frandn(rng, nc, 1.0f);
    float *C = xt_fcopy(C0, nc), *R = xt_fcopy(C0, nc);
    xa_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    xa_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    char label[128];
    snprintf(label, sizeof label, "sgemm %s ta=%d tb=%d %dx%dx%d threads %d", xa_gemm_engine(), ta, tb,
             M, N, K, xa_threads_get());
    /* float products of K terms of size ~1: error ~ sqrt(K) * 6e-8 * |terms| */
    xt_assert_close(label, C, R, nc, 1e-4f, 1e-5f);
}

static void test_sgemm_vs_ref(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 1, 0);
    /* Every engine: OpenBLAS and, where the CPU has them, xadapt's packed AVX-512 and AVX2 kernels
     * (picked at run time, so a portable build tests them too). */
    const char *engines[3] = {"openblas", "xadapt", "xadapt-avx2"};
    for (int e = 0; e < 3; e++) {
        if (xa_gemm_set_engine(engines[e]) != XA_STATUS_OK) {
            print_message("sgemm engine %s not in this build: skipped\n", engines[e]);
            continue;
        }
        for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
            xa_threads_set(threads);
            for (int ta = 0; ta < 2; ta++) {
                for (int tb = 0; tb < 2; tb++) {
                    sgemm_case(&rng, ta, tb, 7, 5, 13, 1.0f, 0.0f);
                    sgemm_case(&rng, ta, tb, 9, 11, 3, 0.5f, 1.0f);
                    sgemm_case(&rng, ta, tb, 1, 1, 1, 2.0f, 0.0f);
                    sgemm_case(&rng, ta, tb, 4, 3, 0, 1.0f, 0.5f); /* K = 0: C = beta C */
                    /* large enough to be split over threads: rows (M >= N) and columns (N > M) */
                    sgemm_case(&rng, ta, tb, 97, 61, 53, 1.0f, 0.0f);
                    sgemm_case(&rng, ta, tb, 45, 131, 47, -0.7f, 0.3f);
                    /* across every blocking boundary of the packed kernel (KC 256, NC >= 1024) */
                    if (threads == 1) sgemm_case(&rng, ta, tb, 70, 2100, 300, 0.9f, 0.4f);
                }
            }
        }
    }
    xa_gemm_set_engine(NULL);
}

static void test_threads_and_blas_info(void **state) {
    (void)state;
    assert_int_equal(xa_threads_set(2), 2);
    assert_int_equal(xa_threads_get(), 2);
    assert_true(xa_threads_set(0) >= 1);
    assert_int_equal(xa_threads_get(), xa_threads_available());
    const char *info = xa_blas_info();
    assert_non_null(strstr(info, "OpenBLAS"));
    assert_non_null(strstr(info, "core "));
    assert_non_null(strstr(info, xa_gemm_engine())); /* the engine in use is reported */
    const char *hint = xa_blas_suggested_coretype();
    /* the advice reaches the benchmark logs when OpenBLAS does the products */
    if (hint && !strcmp(xa_gemm_engine(), "openblas")) assert_non_null(strstr(info, hint));
}

/* ---- linear ------------------------------------------------------------------------------- */

typedef struct lin_ctx {
    float *out;
    const float *inp, *w, *b, *dout;
    int N, C, OC;
} lin_ctx;

static double lin_loss(void *p) {
    lin_ctx *c = p;
    xa_linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return xt_dot(c->out, c->dout, (size_t)c->N * c->OC);
}

static void test_linear_golden(void **state) {
    (void)state;
    const int N = 7, C = 13, OC = 5;
    float *inp = gold("linear.inp", N * C), *w = gold("linear.weight", OC * C);
    float *b = gold("linear.bias", OC), *dout = gold("linear.dout", N * OC);
    float *out = xt_fzeros(N * OC);
    xa_linear_forward(out, inp, w, b, N, C, OC);
    xt_assert_close("linear out vs torch", out, gold("linear.out", N * OC), N * OC, 1e-5f, 1e-5f);

    /* backward accumulates: start every gradient at 0.5 and subtract it afterwards */
    float *dinp = xt_fzeros(N * C), *dw = xt_fzeros(OC * C), *db = xt_fzeros(OC);
    for (int i = 0; i < N * C; i++)
        dinp[i] = 0.5f;
    for (int i = 0; i < OC * C; i++)
        dw[i] = 0.5f;
    for (int i = 0; i < OC; i++)
        db[i] = 0.5f;
    xa_linear_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    for (int i = 0; i < N * C; i++)
        dinp[i] -= 0.5f;
    for (int i = 0; i < OC * C; i++)
        dw[i] -= 0.5f;
    for (int i = 0; i < OC; i++)
        db[i] -= 0.5f;
    xt_assert_close("linear dinp vs torch", dinp, gold("linear.dinp", N * C), N * C, 1e-5f, 1e-4f);
    xt_assert_close("linear dweight vs torch", dw, gold("linear.dweight", OC * C), OC * C, 1e-5f,
                    1e-4f);
    xt_assert_close("linear dbias vs torch", db, gold("linear.dbias", OC), OC, 1e-5f, 1e-4f);

    /* frozen: NULL weight gradients give the same dinp */
    float *dinp2 = xt_fzeros(N * C);
    xa_linear_backward(dinp2, NULL, NULL, dout, inp, w, N, C, OC);
    xt_assert_close("linear frozen dinp", dinp2, dinp, N * C, 1e-6f, 0.0f);
    /* no input gradient (lowest trainable layer): weights only, inp/weight NULL where unused */
    float *dw2 = xt_fzeros(OC * C);
    xa_linear_backward(NULL, dw2, NULL, dout, inp, NULL, N, C, OC);
    xt_assert_close("linear dweight without dinp", dw2, dw, OC * C, 1e-6f, 0.0f);

    /* finite differences on inputs, weights and bias */
    lin_ctx c = {out, inp, w, b, dout, N, C, OC};
    xt_check_fd("linear dinp vs FD", lin_loss, &c, inp, dinp, N * C, 1e-2f, 1e-3f, 1e-2f);
    xt_check_fd("linear dweight vs FD", lin_loss, &c, w, dw, OC * C, 1e-2f, 1e-3f, 1e-2f);
    xt_check_fd("linear dbias vs FD", lin_loss, &c, b, db, OC, 1e-2f, 1e-3f, 1e-2f);
}

static void linear_vs_ref_case(xa_rng *rng, int N, int C, int OC, int with_bias) {
    float *inp = xt_frandn(rng, (size_t)N * C, 1.0f), *w = xt_frandn(rng, (size_t)OC * C, 0.3f);
    float *b = with_bias ? xt_frandn(rng, OC, 0.1f) : NULL;
    float *dout = xt_frandn(rng, (size_t)N * OC, 1.0f);
    float *out = xt_fzeros((size_t)N * OC), *out_r = xt_fzeros((size_t)N * OC);
    xa_linear_forward(out, inp, w, b, N, C, OC);
    xa_linear_forward_ref(out_r, inp, w, b, N, C, OC);
    xt_assert_close("linear fwd vs ref", out, out_r, (size_t)N * OC, 1e-5f, 1e-5f);
    float *g[6];
    for (int i = 0; i < 6; i++)
        g[i] = xt_frandn(rng, (size_t)(i % 3 == 0 ? N * C : i % 3 == 1 ? OC * C : OC), 1.0f);
    memcpy(g[3], g[0], sizeof(float) * N * C);
    memcpy(g[4], g[1], sizeof(float) * OC * C);
    memcpy(g[5], g[2], sizeof(float) * OC);
    xa_linear_backward(g[0], g[1], g[2], dout, inp, w, N, C, OC);
    xa_linear_backward_ref(g[3], g[4], g[5], dout, inp, w, N, C, OC);
    xt_assert_close("linear dinp vs ref", g[0], g[3], (size_t)N * C, 1e-4f, 1e-5f);
    xt_assert_close("linear dweight vs ref", g[1], g[4], (size_t)OC * C, 1e-4f, 1e-5f);
    xt_assert_close("linear dbias vs ref", g[2], g[5], OC, 1e-4f, 1e-5f);
}

static void test_linear_vs_ref(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 2, 0);
    for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
        xa_threads_set(threads);
        linear_vs_ref_case(&rng, 7, 13, 5, 1);
        linear_vs_ref_case(&rng, 7, 13, 5, 0);
        linear_vs_ref_case(&rng, 131, 67, 93, 1); /* big enough for the threaded paths */
    }
}

/* ---- layernorm ----------------------------------------------------------------------------- */

typedef struct ln_ctx {
    float *out, *mean, *rstd;
    const float *inp, *w, *b, *dout;
    int N, C;
    float eps;
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = p;
    xa_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, c->eps);
    return xt_dot(c->out, c->dout, (size_t)c->N * c->C);
}

static void test_layernorm_golden(void **state) {
    (void)state;
    const int N = 6, C = 11;
    const float eps = 1e-5f;
    float *inp = gold("layernorm.inp", N * C), *w = gold("layernorm.weight", C);
    float *b = gold("layernorm.bias", C), *dout = gold("layernorm.dout", N * C);
    float *out = xt_fzeros(N * C), *mean = xt_fzeros(N), *rstd = xt_fzeros(N);
    xa_layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps);
    xt_assert_close("layernorm out vs torch", out, gold("layernorm.out", N * C), N * C, 1e-5f,
                    1e-5f);
    xt_assert_close("layernorm mean vs torch", mean, gold("layernorm.mean", N), N, 1e-6f, 1e-5f);
    xt_assert_close("layernorm rstd vs torch", rstd, gold("layernorm.rstd", N), N, 1e-6f, 1e-5f);

    float *dinp = xt_fzeros(N * C), *dw = xt_fzeros(C), *db = xt_fzeros(C);
    xa_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    xt_assert_close("layernorm dinp vs torch", dinp, gold("layernorm.dinp", N * C), N * C, 1e-5f,
                    1e-4f);
    xt_assert_close("layernorm dweight vs torch", dw, gold("layernorm.dweight", C), C, 1e-5f,
                    1e-4f);
    xt_assert_close("layernorm dbias vs torch", db, gold("layernorm.dbias", C), C, 1e-5f, 1e-4f);

    float *dinp2 = xt_fzeros(N * C);
    xa_layernorm_backward(dinp2, NULL, NULL, dout, inp, w, mean, rstd, N, C);
    xt_assert_close("layernorm frozen dinp", dinp2, dinp, N * C, 0.0f, 0.0f);

    /* in-place forward, no saved statistics (inference) */
    float *x = xt_fcopy(inp, N * C);
    xa_layernorm_forward(x, NULL, NULL, x, w, b, N, C, eps);
    xt_assert_close("layernorm in place", x, out, N * C, 0.0f, 0.0f);

    ln_ctx c = {xt_fzeros(N * C), xt_fzeros(N), xt_fzeros(N), inp, w, b, dout, N, C, eps};
    xt_check_fd("layernorm dinp vs FD", ln_loss, &c, inp, dinp, N * C, 1e-2f, 2e-3f, 2e-2f);
    xt_check_fd("layernorm dweight vs FD", ln_loss, &c, w, dw, C, 1e-2f, 1e-3f, 1e-2f);
    xt_check_fd("layernorm dbias vs FD", ln_loss, &c, b, db, C, 1e-2f, 1e-3f, 1e-2f);
}

static void test_layernorm_vs_ref(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 3, 0);
    const int sizes[][2] = {{7, 13}, {5, 1}, {301, 129}};
    for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
        xa_threads_set(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            int N = sizes[s][0], C = sizes[s][1];
            size_t NC = (size_t)N * C;
            float *inp = xt_frandn(&rng, NC, 3.0f), *w = xt_frandn(&rng, C, 1.0f),
                  *b = xt_frandn(&rng, C, 1.0f);
            for (size_t i = 0; i < NC; i++)
                inp[i] += 2.0f; /* non-zero mean */
            float *dout = xt_frandn(&rng, NC, 1.0f);
            float *o1 = xt_fzeros(NC), *m1 = xt_fzeros(N), *r1 = xt_fzeros(N);
            float *o2 = xt_fzeros(NC), *m2 = xt_fzeros(N), *r2 = xt_fzeros(N);
            xa_layernorm_forward(o1, m1, r1, inp, w, b, N, C, 1e-12f);
            xa_layernorm_forward_ref(o2, m2, r2, inp, w, b, N, C, 1e-12f);
            xt_assert_close("layernorm fwd vs ref", o1, o2, NC, 1e-5f, 1e-5f);
            xt_assert_close("layernorm mean vs ref", m1, m2, N, 1e-6f, 1e-6f);
            xt_assert_close("layernorm rstd vs ref", r1, r2, N, 1e-6f, 1e-5f);
            float *d1 = xt_fzeros(NC), *dw1 = xt_fzeros(C), *db1 = xt_fzeros(C);
            float *d2 = xt_fzeros(NC), *dw2 = xt_fzeros(C), *db2 = xt_fzeros(C);
            xa_layernorm_backward(d1, dw1, db1, dout, inp, w, m1, r1, N, C);
            xa_layernorm_backward_ref(d2, dw2, db2, dout, inp, w, m1, r1, N, C);
            xt_assert_close("layernorm dinp vs ref", d1, d2, NC, 1e-5f, 1e-4f);
            xt_assert_close("layernorm dweight vs ref", dw1, dw2, C, 1e-4f, 1e-4f);
            xt_assert_close("layernorm dbias vs ref", db1, db2, C, 1e-4f, 1e-4f);
        }
    }
}

/* The row-at-a-time LayerNorm as it stood before the blocked kernel, and the residual sums as
 * xa_residual_forward forms them: xa_layernorm_residual_forward must reproduce these bit for bit
 * (the composer's fused passes rely on it to leave every output unchanged). */
static void ln_rowwise(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double s = 0.0;
        for (int c = 0; c < C; c++)
            s += x[c];
        float m = (float)(s / C);
        double v = 0.0;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += (double)d * d;
        }
        float r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int c = 0; c < C; c++)
            y[c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

static void assert_same_bits(const char *label, const float *got, const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(got + i, ref + i, sizeof(float)))
            fail_msg("%s: element %zu is %.9g, expected %.9g bit for bit", label, i, (double)got[i],
                     (double)ref[i]);
}

static void test_layernorm_residual(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 11, 0);
    /* row counts around the blocks of 8 and 16 (tails of 1, 7, 8 and 15 rows), C from 1 to past
     * 128, multiples of 8 and not (the 16-row kernel's column tail) */
    const int sizes[][2] = {{1, 1},   {7, 13},   {8, 128},  {9, 129},   {17, 3},  {301, 128},
                            {64, 1024}, {16, 128}, {16, 13}, {31, 40}, {32, 768}, {40, 7}, {47, 257}};
    for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
        xa_threads_set(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            const int N = sizes[s][0], C = sizes[s][1];
            const size_t NC = (size_t)N * C;
            float *a = xt_frandn(&rng, NC, 3.0f), *b = xt_frandn(&rng, NC, 1.0f);
            float *c = xt_frandn(&rng, NC, 2.0f), *w = xt_frandn(&rng, C, 1.0f);
            float *bias = xt_frandn(&rng, C, 1.0f);
            for (size_t i = 0; i < NC; i++)
                a[i] += 5.0f; /* a large mean: the two-pass variance matters */
            /* references: ab = a + b, sum = ab + c, then the row-wise LN */
            float *ab = xt_fzeros(NC), *sum2 = xt_fzeros(NC), *ref = xt_fzeros(NC);
            float *rm = xt_fzeros(N), *rr = xt_fzeros(N);
            xa_residual_forward(ab, a, b, NC);
            xa_residual_forward(sum2, ab, c, NC);
            for (int mode = 0; mode < 3; mode++) { /* a; a + b; a + b + c */
                const float *x = mode == 0 ? a : mode == 1 ? ab : sum2;
                ln_rowwise(ref, rm, rr, x, w, bias, N, C, 1e-5f);
                const float *pb = mode ? b : NULL, *pc = mode == 2 ? c : NULL;
                char label[96];
                /* everything kept */
                float *out = xt_fzeros(NC), *gab = xt_fzeros(NC), *gsum = xt_fzeros(NC);
                float *gm = xt_fzeros(N), *gr = xt_fzeros(N);
                xa_layernorm_residual_forward(out, mode == 2 ? gab : NULL, gsum, gm, gr, a, pb, pc,
                                              w, bias, N, C, 1e-5f);
                snprintf(label, sizeof label, "ln+residual mode %d %dx%d threads %d", mode, N, C,
                         threads);
                assert_same_bits(label, out, ref, NC);
                assert_same_bits(label, gsum, x, NC);
                assert_same_bits(label, gm, rm, (size_t)N);
                assert_same_bits(label, gr, rr, (size_t)N);
                if (mode == 2) assert_same_bits(label, gab, ab, NC);
                /* nothing kept, out over an input (in place) */
                float *inpl = xt_fcopy(mode == 2 ? c : a, NC);
                xa_layernorm_residual_forward(inpl, NULL, NULL, NULL, NULL, mode == 2 ? a : inpl,
                                              pb, mode == 2 ? inpl : NULL, w, bias, N, C, 1e-5f);
                assert_same_bits(label, inpl, ref, NC);
            }
            /* the plain twin (double-precision statistics): close, not the same bits */
            {
                float *o3 = xt_fzeros(NC), *ab3 = xt_fzeros(NC), *s3 = xt_fzeros(NC);
                float *o4 = xt_fzeros(NC), *ab4 = xt_fzeros(NC), *s4 = xt_fzeros(NC);
                xa_layernorm_residual_forward(o3, ab3, s3, NULL, NULL, a, b, c, w, bias, N, C, 1e-5f);
                xa_layernorm_residual_forward_ref(o4, ab4, s4, NULL, NULL, a, b, c, w, bias, N, C,
                                                  1e-5f);
                xt_assert_close("ln+residual vs ref", o3, o4, NC, 1e-5f, 1e-5f);
                xt_assert_close("ln+residual ab vs ref", ab3, ab4, NC, 0.0f, 0.0f);
                xt_assert_close("ln+residual sum vs ref", s3, s4, NC, 0.0f, 0.0f);
            }
            /* the plain LayerNorm is the same kernel */
            float *o2 = xt_fzeros(NC), *m2 = xt_fzeros(N), *r2 = xt_fzeros(N);
            ln_rowwise(ref, rm, rr, a, w, bias, N, C, 1e-12f);
            xa_layernorm_forward(o2, m2, r2, a, w, bias, N, C, 1e-12f);
            assert_same_bits("layernorm forward vs row-wise", o2, ref, NC);
            assert_same_bits("layernorm mean vs row-wise", m2, rm, (size_t)N);
            assert_same_bits("layernorm rstd vs row-wise", r2, rr, (size_t)N);
        }
    }
}

/* ---- activations ---------------------------------------------------------------------------- */

typedef struct act_ctx {
    float *out;
    const float *inp, *dout;
    size_t n;
    xa_act act;
} act_ctx;

static double act_loss(void *p) {
    act_ctx *c = p;
    xa_act_forward(c->out, c->inp, c->n, c->act);
    return xt_dot(c->out, c->dout, c->n);
}

static void test_act_golden(void **state) {
    (void)state;
    const size_t n = 48;
    for (int a = 0; a < XA_ACT_COUNT; a++) {
        const char *name = xa_act_name((xa_act)a);
        char key[96], label[96];
        snprintf(key, sizeof key, "act.%s.inp", name);
        float *inp = gold(key, n);
        snprintf(key, sizeof key, "act.%s.dout", name);
        float *dout = gold(key, n);
        snprintf(key, sizeof key, "act.%s.out", name);
        float *ref_out = gold(key, n);
        snprintf(key, sizeof key, "act.%s.dinp", name);
        float *ref_dinp = gold(key, n);

        float *out = xt_fzeros(n), *dinp = xt_fzeros(n);
        xa_act_forward(out, inp, n, (xa_act)a);
        snprintf(label, sizeof label, "act %s out vs torch", name);
        xt_assert_close(label, out, ref_out, n, 1e-6f, 1e-5f);
        xa_act_backward(dinp, dout, inp, n, (xa_act)a);
        snprintf(label, sizeof label, "act %s dinp vs torch", name);
        xt_assert_close(label, dinp, ref_dinp, n, 1e-5f, 1e-4f);

        float *out_r = xt_fzeros(n), *dinp_r = xt_fzeros(n);
        xa_act_forward_ref(out_r, inp, n, (xa_act)a);
        xa_act_backward_ref(dinp_r, dout, inp, n, (xa_act)a);
        snprintf(label, sizeof label, "act %s out vs ref", name);
        xt_assert_close(label, out, out_r, n, 1e-6f, 1e-5f);
        snprintf(label, sizeof label, "act %s dinp vs ref", name);
        xt_assert_close(label, dinp, dinp_r, n, 1e-6f, 1e-5f);

        /* FD away from the kinks of relu / leakyrelu at 0 */
        float *xs = xt_fzeros(n), *gs = xt_fzeros(n), *ds = xt_fzeros(n);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (fabsf(inp[i]) < 0.05f) continue;
            xs[m] = inp[i];
            ds[m] = dout[i];
            gs[m++] = dinp[i];
        }
        act_ctx c = {xt_fzeros(m), xs, ds, m, (xa_act)a};
        snprintf(label, sizeof label, "act %s dinp vs FD", name);
        xt_check_fd(label, act_loss, &c, xs, gs, m, 1e-2f, 2e-3f, 1e-2f);
    }
}

static void test_act_parse(void **state) {
    (void)state;
    static const struct {
        const char *name;
        xa_act act;
    } cases[] = {
        {"gelu", XA_ACT_GELU},
        {"GELU", XA_ACT_GELU},
        {"gelu_new", XA_ACT_GELU_NEW},
        {"relu", XA_ACT_RELU},
        {"swish", XA_ACT_SILU},
        {"silu", XA_ACT_SILU},
        {"tanh", XA_ACT_TANH},
        {"sigmoid", XA_ACT_SIGMOID},
        {"leakyrelu", XA_ACT_LEAKYRELU},
        {"linear", XA_ACT_LINEAR},
        {"quick_gelu", XA_ACT_QUICK_GELU},
        {"gelu_pytorch_tanh", XA_ACT_GELU_NEW},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xa_act a = XA_ACT_COUNT;
        assert_int_equal(xa_act_parse(cases[i].name, &a), XA_STATUS_OK);
        assert_int_equal(a, cases[i].act);
    }
    for (int a = 0; a < XA_ACT_COUNT; a++) {
        xa_act back = XA_ACT_COUNT;
        assert_int_equal(xa_act_parse(xa_act_name((xa_act)a), &back), XA_STATUS_OK);
        assert_int_equal(back, a);
    }
    assert_string_equal(xa_act_name(XA_ACT_SILU), "silu");
    assert_string_equal(xa_act_name(XA_ACT_COUNT), "?");
    xa_act a;
    assert_int_equal(xa_act_parse("gelu2", &a), XA_STATUS_CONFIG);
    xt_assert_error_mentions("gelu2");
    xt_assert_error_mentions("gelu_new");
    assert_int_equal(xa_act_parse(NULL, &a), XA_STATUS_CONFIG);
}

static void test_act_vs_ref_threads(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 4, 0);
    const size_t n = 40001; /* odd, and past the parallel threshold */
    float *inp = xt_frandn(&rng, n, 4.0f), *dout = xt_frandn(&rng, n, 1.0f);
    xa_threads_set(MANY_THREADS);
    /* atol 1e-5: for x < -5 the float forms 0.5 x (1 + erf) and 0.5 x (1 + tanh) cancel to 0
     * where the double twin keeps ~1e-6 (torch computes them in float the same way) */
    for (int a = 0; a < XA_ACT_COUNT; a++) {
        float *o1 = xt_fzeros(n), *o2 = xt_fzeros(n), *d1 = xt_fzeros(n), *d2 = xt_fzeros(n);
        xa_act_forward(o1, inp, n, (xa_act)a);
        xa_act_forward_ref(o2, inp, n, (xa_act)a);
        xt_assert_close(xa_act_name((xa_act)a), o1, o2, n, 1e-5f, 1e-5f);
        xa_act_backward(d1, dout, inp, n, (xa_act)a);
        xa_act_backward_ref(d2, dout, inp, n, (xa_act)a);
        xt_assert_close(xa_act_name((xa_act)a), d1, d2, n, 1e-5f, 1e-5f);
        /* in place forward */
        float *x = xt_fcopy(inp, n);
        xa_act_forward(x, x, n, (xa_act)a);
        xt_assert_close("act in place", x, o1, n, 0.0f, 0.0f);
    }
}

/* ---- softmax -------------------------------------------------------------------------------- */

typedef struct sm_ctx {
    float *out;
    const float *inp, *dout;
    int N, C;
} sm_ctx;

static double sm_loss(void *p) {
    sm_ctx *c = p;
    xa_softmax_forward(c->out, c->inp, c->N, c->C);
    return xt_dot(c->out, c->dout, (size_t)c->N * c->C);
}

static void test_softmax(void **state) {
    (void)state;
    const int N = 5, C = 9;
    float *inp = gold("softmax.inp", N * C), *dout = gold("softmax.dout", N * C);
    float *out = xt_fzeros(N * C), *dinp = xt_fzeros(N * C);
    xa_softmax_forward(out, inp, N, C);
    xt_assert_close("softmax out vs torch", out, gold("softmax.out", N * C), N * C, 1e-6f, 1e-5f);
    xa_softmax_backward(dinp, dout, out, N, C);
    xt_assert_close("softmax dinp vs torch", dinp, gold("softmax.dinp", N * C), N * C, 1e-6f,
                    1e-4f);
    sm_ctx c = {xt_fzeros(N * C), inp, dout, N, C};
    xt_check_fd("softmax dinp vs FD", sm_loss, &c, inp, dinp, N * C, 1e-2f, 1e-3f, 1e-2f);

    xa_rng rng;
    xa_rng_seed(&rng, 5, 0);
    const int N2 = 37, C2 = 1031;
    size_t n2 = (size_t)N2 * C2;
    float *x = xt_frandn(&rng, n2, 5.0f), *g = xt_frandn(&rng, n2, 1.0f);
    float *o1 = xt_fzeros(n2), *o2 = xt_fzeros(n2), *d1 = xt_fzeros(n2), *d2 = xt_fzeros(n2);
    xa_threads_set(MANY_THREADS);
    xa_softmax_forward(o1, x, N2, C2);
    xa_softmax_forward_ref(o2, x, N2, C2);
    xt_assert_close("softmax vs ref", o1, o2, n2, 1e-7f, 1e-5f);
    xa_softmax_backward(d1, g, o1, N2, C2);
    xa_softmax_backward_ref(d2, g, o1, N2, C2);
    xt_assert_close("softmax backward vs ref", d1, d2, n2, 1e-6f, 1e-4f);
}

/* ---- attention ------------------------------------------------------------------------------ */

typedef struct att_ctx {
    float *ctx, *att, *scratch;
    const float *q, *k, *v, *dctx;
    const int32_t *lens;
    const uint8_t *keep;
    float p;
    int B, T, C, NH;
} att_ctx;

static double att_loss(void *ptr) {
    att_ctx *c = ptr;
    xa_attention_forward(c->ctx, c->att, c->scratch, c->q, c->k, c->v, c->lens, c->keep, c->p, c->B,
                         c->T, c->C, c->NH);
    return xt_dot(c->ctx, c->dctx, (size_t)c->B * c->T * c->C);
}

/* Zero the padded query rows of x (B, T, C) and of a (B, NH, T, T): they carry no meaning. */
static void zero_padded_rows(float *x, float *a, const int32_t *lens, int B, int T, int C, int NH) {
    for (int b = 0; b < B; b++) {
        for (int i = lens[b]; i < T; i++) {
            if (x) memset(x + ((size_t)b * T + i) * C, 0, sizeof(float) * C);
            for (int h = 0; a && h < NH; h++)
                memset(a + (((size_t)b * NH + h) * T + i) * T, 0, sizeof(float) * T);
        }
    }
}

static void attention_golden_case(const char *tag, int with_dropout) {
    const int B = 2, T = 9, C = 12, NH = 3;
    const size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    const float p = with_dropout ? 0.25f : 0.0f;
    char key[96];
#define G(name, count) (snprintf(key, sizeof key, "%s.%s", tag, name), gold(key, count))
    float *q = G("q", n), *k = G("k", n), *v = G("v", n), *dctx = G("dctx", n);
    float *ref_ctx = G("ctx", n), *ref_att = G("att", na);
    float *ref_dq = G("dq", n), *ref_dk = G("dk", n), *ref_dv = G("dv", n);
    snprintf(key, sizeof key, "%s.lens", tag);
    int32_t *lens = gold_i32(key, B);
    uint8_t *keep = NULL;
    if (with_dropout) {
        float *kf = G("keep", na);
        keep = xt_alloc(na);
        for (size_t i = 0; i < na; i++)
            keep[i] = kf[i] != 0.0f;
    }
#undef G
    zero_padded_rows(ref_ctx, ref_att, lens, B, T, C, NH);

    float *ctx = xt_fzeros(n), *att = xt_fzeros(na), *scratch = xt_fzeros(na);
    xa_attention_forward(ctx, att, scratch, q, k, v, lens, keep, p, B, T, C, NH);
    xt_assert_close("attention ctx vs torch", ctx, ref_ctx, n, 1e-5f, 1e-4f);
    xt_assert_close("attention probs vs torch", att, ref_att, na, 1e-6f, 1e-4f);

    float *dq = xt_fzeros(n), *dk = xt_fzeros(n), *dv = xt_fzeros(n);
    xa_attention_backward(dq, dk, dv, scratch, dctx, att, q, k, v, lens, keep, p, B, T, C, NH);
    xt_assert_close("attention dq vs torch", dq, ref_dq, n, 1e-5f, 1e-4f);
    xt_assert_close("attention dk vs torch", dk, ref_dk, n, 1e-5f, 1e-4f);
    xt_assert_close("attention dv vs torch", dv, ref_dv, n, 1e-5f, 1e-4f);

    /* only some gradients wanted */
    float *dq2 = xt_fzeros(n), *dv2 = xt_fzeros(n);
    xa_attention_backward(dq2, NULL, NULL, scratch, dctx, att, q, k, v, lens, keep, p, B, T, C, NH);
    xa_attention_backward(NULL, NULL, dv2, scratch, dctx, att, q, k, v, lens, keep, p, B, T, C, NH);
    xt_assert_close("attention dq alone", dq2, dq, n, 0.0f, 0.0f);
    xt_assert_close("attention dv alone", dv2, dv, n, 0.0f, 0.0f);

    att_ctx c = {
        xt_fzeros(n), xt_fzeros(na), xt_fzeros(na), q, k, v, dctx, lens, keep, p, B, T, C, NH};
    xt_check_fd("attention dq vs FD", att_loss, &c, q, dq, n, 1e-2f, 2e-3f, 1e-2f);
    xt_check_fd("attention dk vs FD", att_loss, &c, k, dk, n, 1e-2f, 2e-3f, 1e-2f);
    xt_check_fd("attention dv vs FD", att_loss, &c, v, dv, n, 1e-2f, 2e-3f, 1e-2f);
}

static void test_attention_golden(void **state) {
    (void)state;
    attention_golden_case("attention", 0);
}

static void test_attention_dropout_golden(void **state) {
    (void)state;
    attention_golden_case("attention_drop", 1);
}

static void attention_vs_ref_case(xa_rng *rng, int B, int T, int C, int NH, const int32_t *lens,
                                  float p) {
    const size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *q = xt_frandn(rng, n, 1.0f), *k = xt_frandn(rng, n, 1.0f), *v = xt_frandn(rng, n, 1.0f);
    float *dctx = xt_frandn(rng, n, 1.0f);
    uint8_t *keep = NULL;
    if (p > 0.0f) {
        keep = xt_alloc(na);
        xa_dropout_mask(keep, na, p, rng);
    }
    float *c1 = xt_fzeros(n), *a1 = xt_fzeros(na), *s1 = xt_fzeros(na);
    float *c2 = xt_fzeros(n), *a2 = xt_fzeros(na), *s2 = xt_fzeros(na);
    xa_attention_forward(c1, a1, s1, q, k, v, lens, keep, p, B, T, C, NH);
    xa_attention_forward_ref(c2, a2, s2, q, k, v, lens, keep, p, B, T, C, NH);
    xt_assert_close("attention ctx vs ref", c1, c2, n, 1e-5f, 1e-4f);
    xt_assert_close("attention probs vs ref", a1, a2, na, 1e-6f, 1e-4f);
    float *g1[3], *g2[3];
    for (int i = 0; i < 3; i++) {
        g1[i] = xt_frandn(rng, n, 1.0f); /* backward accumulates onto whatever is there */
        g2[i] = xt_fcopy(g1[i], n);
    }
    xa_attention_backward(g1[0], g1[1], g1[2], s1, dctx, a1, q, k, v, lens, keep, p, B, T, C, NH);
    xa_attention_backward_ref(g2[0], g2[1], g2[2], s2, dctx, a1, q, k, v, lens, keep, p, B, T, C,
                              NH);
    xt_assert_close("attention dq vs ref", g1[0], g2[0], n, 1e-5f, 1e-4f);
    xt_assert_close("attention dk vs ref", g1[1], g2[1], n, 1e-5f, 1e-4f);
    xt_assert_close("attention dv vs ref", g1[2], g2[2], n, 1e-5f, 1e-4f);
}

static void test_attention_vs_ref(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 6, 0);
    const int32_t lens3[] = {9, 4, 1}, lens0[] = {0, 9}, lens_big[] = {67, 33, 50};
    for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
        xa_threads_set(threads);
        attention_vs_ref_case(&rng, 3, 9, 12, 3, lens3, 0.0f);
        attention_vs_ref_case(&rng, 3, 9, 12, 3, lens3, 0.3f);
        attention_vs_ref_case(&rng, 2, 9, 12, 4, NULL, 0.1f);
        attention_vs_ref_case(&rng, 2, 9, 10, 2, lens0, 0.0f); /* an empty row */
        attention_vs_ref_case(&rng, 3, 67, 40, 5, lens_big, 0.1f);
    }
}

/* ---- dropout -------------------------------------------------------------------------------- */

static void test_dropout(void **state) {
    (void)state;
    const size_t n = 100003;
    const float p = 0.3f;
    xa_rng data_rng, rng, rng2, after;
    xa_rng_seed(&data_rng, 7, 0);
    float *x = xt_frandn(&data_rng, n, 1.0f);
    xa_rng_seed(&rng, 7, 1);
    rng2 = rng;
    after = rng;
    xa_rng_u64(&after); /* the state after exactly one u64 draw */

    uint8_t *keep = xt_alloc(n), *keep2 = xt_alloc(n);
    xa_dropout_mask(keep, n, p, &rng);
    assert_memory_equal(&rng, &after, sizeof rng); /* one u64 draw, whatever n is */
    xa_threads_set(MANY_THREADS);
    xa_dropout_mask(keep2, n, p, &rng2);
    assert_memory_equal(keep, keep2, n); /* same mask for any thread count */

    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        kept += keep[i];
    double frac = (double)kept / n; /* binomial sd = sqrt(p(1-p)/n) = 0.0014 */
    if (fabs(frac - (1.0 - p)) > 0.01)
        fail_msg("dropout kept %.4f, expected %.4f +- 0.01", frac, 1.0 - p);

    float *out = xt_fzeros(n), *ref = xt_fzeros(n), *g = xt_frandn(&data_rng, n, 1.0f);
    xa_dropout_forward(out, x, keep, n, p);
    for (size_t i = 0; i < n; i++)
        ref[i] = keep[i] ? x[i] / (1.0f - p) : 0.0f;
    xt_assert_close("dropout forward", out, ref, n, 0.0f, 1e-6f);
    float *din = xt_fcopy(g, n);
    xa_dropout_backward(din, x, keep, n, p); /* din = g + dropout'(x) */
    for (size_t i = 0; i < n; i++)
        ref[i] += g[i];
    xt_assert_close("dropout backward", din, ref, n, 1e-6f, 1e-6f);

    /* evaluation (p = 0 or no mask) is the identity, also in place */
    xa_dropout_forward(out, x, NULL, n, p);
    xt_assert_close("dropout eval", out, x, n, 0.0f, 0.0f);
    xa_dropout_forward(out, out, keep, n, 0.0f);
    xt_assert_close("dropout p=0", out, x, n, 0.0f, 0.0f);
    xa_dropout_mask(keep, n, 0.0f, &rng);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(keep[i], 1);
    float *d0 = xt_fzeros(n);
    xa_dropout_backward(d0, g, NULL, n, p);
    xt_assert_close("dropout eval backward", d0, g, n, 0.0f, 0.0f);
}

/* A mask's element e from first principles (tensor.h): block e / 4096, lane e % 8 of it, the
 * (e % 4096) / 8-th draw of PCG32 stream (seed, 8 x block + lane), stepped one draw at a time. */
static uint8_t mask_element_ref(uint64_t seed, uint64_t e, uint32_t threshold) {
    const uint64_t blk = e / 4096, w = e % 4096;
    xa_rng r;
    xa_rng_seed(&r, seed, blk * 8 + w % 8);
    for (uint64_t k = 0; k < w / 8; k++) xa_rng_u32(&r);
    return xa_rng_u32(&r) >= threshold;
}

/* xa_dropout_mask_at: any slice [off, off + n) of a mask is the full mask's slice (odd offsets and
 * lengths, inside one block, across block boundaries, exactly on them), from the same generator
 * state and with the same single draw; far offsets agree with the element-wise reference; and
 * the result does not depend on the thread count. */
static void test_dropout_mask_at(void **state) {
    (void)state;
    const size_t n = 5 * 4096 + 333;
    const float p = 0.37f;
    xa_rng rng0;
    xa_rng_seed(&rng0, 11, 4);
    uint8_t *full = xt_alloc(n), *part = xt_alloc(n + 1); /* + 1: a guard byte */
    xa_rng r = rng0, after = rng0;
    xa_dropout_mask(full, n, p, &r);
    xa_rng_u64(&after);
    const struct { size_t off, len; } cut[] = {
        {0, n}, {1, 7}, {3, 4093}, {4095, 2}, {4096, 4096}, {4097, 8191}, {5, 5 * 4096 + 300},
        {8191, 1}, {12289, 7777}, {n - 1, 1}, {4100, 13}, {2 * 4096 - 3, 4096 + 6},
    };
    for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
        xa_threads_set(threads);
        for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
            xa_rng q = rng0;
            memset(part, 0xee, n + 1);
            xa_dropout_mask_at(part, cut[i].len, cut[i].off, p, &q);
            assert_memory_equal(&q, &after, sizeof q); /* one u64 draw, as the whole mask's */
            for (size_t j = 0; j < cut[i].len; j++)
                if (part[j] != full[cut[i].off + j])
                    fail_msg("mask_at(off %zu, n %zu), %d thread(s): element %zu is %d, the full mask's %d",
                             cut[i].off, cut[i].len, threads, j, part[j], full[cut[i].off + j]);
            assert_int_equal(part[cut[i].len], 0xee); /* nothing written past n */
        }
    }
    xa_threads_set(1);
    /* far into a large tensor (block 244140), against the stepping reference */
    xa_rng q = rng0, s0 = rng0;
    const uint64_t seed = xa_rng_u64(&s0), off = 1000000007ull;
    const uint32_t threshold = (uint32_t)ldexp((double)p, 32);
    xa_dropout_mask_at(part, 4099, off, p, &q);
    for (size_t j = 0; j < 4099; j++)
        if (part[j] != mask_element_ref(seed, off + j, threshold))
            fail_msg("mask_at(off %llu): element %zu differs from the stepping reference", (unsigned long long)off, j);
    for (size_t j = 0; j < n; j += 977) assert_int_equal(full[j], mask_element_ref(seed, j, threshold));
}

/* ---- embedding and residual ------------------------------------------------------------------ */

static void test_embedding(void **state) {
    (void)state;
    const int V = 10, C = 6, N = 8;
    float *table = gold("embedding.table", V * C), *dout = gold("embedding.dout", N * C);
    int32_t *ids = gold_i32("embedding.ids", N);
    float *out = xt_fzeros(N * C), *dtable = xt_fzeros(V * C);
    xa_embedding_forward(out, ids, table, N, C, V);
    xt_assert_close("embedding out vs torch", out, gold("embedding.out", N * C), N * C, 0.0f, 0.0f);
    xa_embedding_backward(dtable, dout, ids, N, C, V);
    xt_assert_close("embedding dtable vs torch", dtable, gold("embedding.dtable", V * C), V * C,
                    1e-6f, 1e-6f);
    xa_embedding_backward(NULL, dout, ids, N, C, V); /* frozen: no-op */

    /* add variant: out += table[ids], twice gives 2x */
    float *acc = xt_fcopy(out, N * C), *twice = xt_fzeros(N * C);
    xa_embedding_add_forward(acc, ids, table, N, C, V);
    for (int i = 0; i < N * C; i++)
        twice[i] = 2.0f * out[i];
    xt_assert_close("embedding add", acc, twice, N * C, 0.0f, 0.0f);

    /* threaded scatter-add with many repeats equals the serial one */
    xa_rng rng;
    xa_rng_seed(&rng, 8, 0);
    const int N2 = 2000, C2 = 203, V2 = 17;
    int32_t *ids2 = xt_alloc(sizeof(int32_t) * N2);
    for (int i = 0; i < N2; i++)
        ids2[i] = (int32_t)xa_rng_below(&rng, V2);
    float *d2 = xt_frandn(&rng, (size_t)N2 * C2, 1.0f);
    float *t1 = xt_fzeros((size_t)V2 * C2), *t2 = xt_fzeros((size_t)V2 * C2);
    xa_embedding_backward(t1, d2, ids2, N2, C2, V2);
    xa_threads_set(MANY_THREADS);
    xa_embedding_backward(t2, d2, ids2, N2, C2, V2);
    xt_assert_close("embedding backward threads", t2, t1, (size_t)V2 * C2, 0.0f, 0.0f);
}

static void test_residual_and_blas1(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 9, 0);
    const size_t n = 1001;
    float *a = xt_frandn(&rng, n, 1.0f), *b = xt_frandn(&rng, n, 1.0f), *out = xt_fzeros(n),
          *ref = xt_fzeros(n);
    xa_residual_forward(out, a, b, n);
    for (size_t i = 0; i < n; i++)
        ref[i] = a[i] + b[i];
    xt_assert_close("residual", out, ref, n, 0.0f, 0.0f);
    float *da = xt_fcopy(a, n), *db = xt_fzeros(n);
    xa_residual_backward(da, db, b, n);
    xt_assert_close("residual da", da, ref, n, 0.0f, 0.0f);
    xt_assert_close("residual db", db, b, n, 0.0f, 0.0f);
    xa_residual_backward(NULL, db, b, n);
    xa_scale(db, 0.5f, n);
    xt_assert_close("scale", db, b, n, 0.0f, 0.0f);
    xa_axpy(db, b, -1.0f, n);
    for (size_t i = 0; i < n; i++)
        assert_true(db[i] == 0.0f);
}

/* ---- cross-entropy ------------------------------------------------------------------------- */

typedef struct ce_ctx {
    const float *logits;
    const int32_t *targets;
    int N, V;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    return xa_cross_entropy_fused(NULL, NULL, c->logits, c->targets, c->N, c->V, XA_IGNORE_INDEX);
}

static void test_cross_entropy(void **state) {
    (void)state;
    const int N = 7, V = 11;
    float *logits = gold("xent.logits", N * V);
    int32_t *targets = gold_i32("xent.targets", N);
    float ref_loss = gold("xent.loss", 1)[0];
    float *dlogits = xt_fzeros(N * V);
    int count = -1;
    float loss = xa_cross_entropy_fused(dlogits, &count, logits, targets, N, V, XA_IGNORE_INDEX);
    assert_int_equal(count, 5);
    xt_assert_close("cross-entropy loss vs torch", &loss, &ref_loss, 1, 1e-6f, 1e-5f);
    xt_assert_close("cross-entropy dlogits vs torch", dlogits, gold("xent.dlogits", N * V), N * V,
                    1e-6f, 1e-5f);
    for (int j = 0; j < V; j++)
        assert_true(dlogits[1 * V + j] == 0.0f); /* ignored row */

    float *dref = xt_fzeros(N * V);
    int count_r = -1;
    float loss_r =
        xa_cross_entropy_fused_ref(dref, &count_r, logits, targets, N, V, XA_IGNORE_INDEX);
    assert_int_equal(count_r, 5);
    xt_assert_close("cross-entropy loss vs ref", &loss, &loss_r, 1, 1e-6f, 1e-6f);
    xt_assert_close("cross-entropy dlogits vs ref", dlogits, dref, N * V, 1e-7f, 1e-5f);

    ce_ctx c = {logits, targets, N, V};
    xt_check_fd("cross-entropy dlogits vs FD", ce_loss, &c, logits, dlogits, N * V, 1e-2f, 2e-4f,
                1e-2f);

    /* in place: dlogits == logits */
    float *x = xt_fcopy(logits, N * V);
    float loss_ip = xa_cross_entropy_fused(x, NULL, x, targets, N, V, XA_IGNORE_INDEX);
    assert_true(loss_ip == loss);
    xt_assert_close("cross-entropy in place", x, dlogits, N * V, 0.0f, 0.0f);

    /* every row ignored: loss 0, count 0, zero gradient */
    int32_t none[7];
    for (int i = 0; i < N; i++)
        none[i] = XA_IGNORE_INDEX;
    xa_rng rng;
    xa_rng_seed(&rng, 10, 0);
    float *dz = xt_frandn(&rng, N * V, 1.0f);
    assert_true(xa_cross_entropy_fused(dz, &count, logits, none, N, V, XA_IGNORE_INDEX) == 0.0f);
    assert_int_equal(count, 0);
    for (int i = 0; i < N * V; i++)
        assert_true(dz[i] == 0.0f);

    /* a large vocabulary row (XLM-R sized rows are long) with threads, against the twin */
    const int N2 = 13, V2 = 25007;
    float *l2 = xt_frandn(&rng, (size_t)N2 * V2, 4.0f);
    int32_t t2[13];
    for (int i = 0; i < N2; i++)
        t2[i] = i % 4 == 3 ? XA_IGNORE_INDEX : (int32_t)xa_rng_below(&rng, V2);
    float *g1 = xt_fzeros((size_t)N2 * V2), *g2 = xt_fzeros((size_t)N2 * V2);
    xa_threads_set(MANY_THREADS);
    float l_fast = xa_cross_entropy_fused(g1, NULL, l2, t2, N2, V2, XA_IGNORE_INDEX);
    float l_ref = xa_cross_entropy_fused_ref(g2, NULL, l2, t2, N2, V2, XA_IGNORE_INDEX);
    xt_assert_close("cross-entropy large loss vs ref", &l_fast, &l_ref, 1, 1e-6f, 1e-6f);
    xt_assert_close("cross-entropy large dlogits vs ref", g1, g2, (size_t)N2 * V2, 1e-9f, 1e-5f);
}

/* ---- class-weighted cross-entropy (tests/data/tensor/class_weights.safetensors) --------------- */

typedef struct wce_ctx {
    const float *logits, *weights;
    const int32_t *targets;
    int N, V;
} wce_ctx;

static double wce_loss(void *p) {
    wce_ctx *c = p;
    return xa_cross_entropy_weighted(NULL, NULL, c->logits, c->targets, c->weights, c->N, c->V, XA_IGNORE_INDEX);
}

static void test_cross_entropy_weighted(void **state) {
    (void)state;
    xa_st_file *st = xt_open_golden("tensor/class_weights.safetensors");
    assert_non_null(st);
    const int N = 9, V = 5;
    float *logits = xt_read_f32(st, "wce.logits", NULL), *w = xt_read_f32(st, "wce.weights", NULL);
    float *ref_d = xt_read_f32(st, "wce.dlogits", NULL), *ref_l = xt_read_f32(st, "wce.loss", NULL);
    const xa_st_tensor *tt = xa_st_find(st, "wce.targets");
    assert_non_null(tt);
    const int32_t *targets = tt->data;
    float *d = xt_fzeros((size_t)N * V);
    double wsum = -1;
    float loss = xa_cross_entropy_weighted(d, &wsum, logits, targets, w, N, V, XA_IGNORE_INDEX);
    /* sum of w[t] over the counted rows: 0.5 + 1.25 + 2 + 3 + 1.25 + 0 + 1.25 */
    assert_true(fabs(wsum - 9.25) < 1e-12);
    xt_assert_close("weighted cross-entropy loss vs torch", &loss, ref_l, 1, 1e-6f, 1e-5f);
    xt_assert_close("weighted cross-entropy dlogits vs torch", d, ref_d, (size_t)N * V, 1e-6f, 1e-5f);
    for (int j = 0; j < V; j++) assert_true(d[2 * V + j] == 0.0f && d[6 * V + j] == 0.0f); /* ignored, w 0 */

    wce_ctx c = {logits, w, targets, N, V};
    xt_check_fd("weighted cross-entropy dlogits vs FD", wce_loss, &c, logits, d, (size_t)N * V, 1e-2f, 2e-4f, 1e-2f);

    /* in place, and all weights 1: the unweighted mean (count rows) */
    float *x = xt_fcopy(logits, (size_t)N * V);
    float loss_ip = xa_cross_entropy_weighted(x, NULL, x, targets, w, N, V, XA_IGNORE_INDEX);
    assert_true(loss_ip == loss);
    xt_assert_close("weighted cross-entropy in place", x, d, (size_t)N * V, 0.0f, 0.0f);
    const float ones[5] = {1, 1, 1, 1, 1};
    float *d1 = xt_fzeros((size_t)N * V), *d0 = xt_fzeros((size_t)N * V);
    float l1 = xa_cross_entropy_weighted(d1, &wsum, logits, targets, ones, N, V, XA_IGNORE_INDEX);
    float l0 = xa_cross_entropy_fused(d0, NULL, logits, targets, N, V, XA_IGNORE_INDEX);
    assert_true(wsum == 7.0);
    xt_assert_close("unit weights = unweighted loss", &l1, &l0, 1, 1e-6f, 1e-6f);
    xt_assert_close("unit weights = unweighted dlogits", d1, d0, (size_t)N * V, 1e-7f, 1e-5f);

    /* nothing counts (every row ignored, or only rows of weight 0): loss 0, zero gradient */
    int32_t none[9], zero_class[9];
    for (int i = 0; i < N; i++) none[i] = XA_IGNORE_INDEX, zero_class[i] = 2;
    assert_true(xa_cross_entropy_weighted(d1, &wsum, logits, none, w, N, V, XA_IGNORE_INDEX) == 0.0f && wsum == 0.0);
    for (int i = 0; i < N * V; i++) assert_true(d1[i] == 0.0f);
    assert_true(xa_cross_entropy_weighted(d1, &wsum, logits, zero_class, w, N, V, XA_IGNORE_INDEX) == 0.0f);
    for (int i = 0; i < N * V; i++) assert_true(d1[i] == 0.0f);
    free(logits);
    free(w);
    free(ref_d);
    free(ref_l);
    xa_st_close(st);
}

/* ---- mean pooling and the contrastive alignment loss ---------------------------------------- */

typedef struct cl_ctx {
    const float *h;
    const int32_t *lens;
    int n, T, C;
    float scale;
    float *pooled, *scratch;
} cl_ctx;

/* The whole pooled path as one scalar: mean-pool both sides, then the contrastive loss. */
static double cl_loss(void *vc) {
    cl_ctx *c = vc;
    xa_mean_pool_forward(c->pooled, c->h, c->lens, 2 * c->n, c->T, c->C);
    return xa_contrastive_loss(NULL, NULL, NULL, c->scratch, c->pooled, c->pooled + (size_t)c->n * c->C,
                               c->n, c->C, c->scale);
}

static void test_contrastive(void **state) {
    (void)state;
    xa_st_file *st = xt_open_golden("tensor/contrastive.safetensors");
    assert_non_null(st);
    const int n = 5, T = 7, C = 6;
    float *h = xt_fzeros((size_t)2 * n * T * C);
    xt_gold_f32(st, "contrastive.h", h, (size_t)2 * n * T * C);
    const xa_st_tensor *lt = xa_st_find(st, "contrastive.lens");
    assert_non_null(lt);
    int32_t lens[10];
    memcpy(lens, lt->data, sizeof lens);
    float ref[64], scale;
    xt_gold_f32(st, "contrastive.scale", &scale, 1);
    float *pooled = xt_fzeros((size_t)2 * n * C), *dpooled = xt_fzeros((size_t)2 * n * C);
    float *scratch = xt_alloc(xa_contrastive_scratch_bytes(n, C));
    xa_mean_pool_forward(pooled, h, lens, 2 * n, T, C);
    float *gp = xt_fzeros((size_t)2 * n * C);
    xt_gold_f32(st, "contrastive.pooled", gp, (size_t)2 * n * C);
    xt_assert_close("mean pool vs torch", pooled, gp, (size_t)2 * n * C, 1e-6f, 1e-5f);

    float acc = -1;
    float loss = xa_contrastive_loss(dpooled, dpooled + (size_t)n * C, &acc, scratch, pooled,
                                     pooled + (size_t)n * C, n, C, scale);
    xt_gold_f32(st, "contrastive.loss", ref, 1);
    xt_assert_close("contrastive loss vs torch", &loss, ref, 1, 1e-5f, 1e-5f);
    xt_gold_f32(st, "contrastive.acc", ref, 1);
    xt_assert_close("contrastive accuracy vs torch", &acc, ref, 1, 0.0f, 0.0f);
    xt_gold_f32(st, "contrastive.dpooled", gp, (size_t)2 * n * C);
    xt_assert_close("contrastive dpooled vs torch", dpooled, gp, (size_t)2 * n * C, 1e-5f, 1e-4f);

    /* pooling backward adds into dh and leaves the pads alone */
    float *dh = xt_fzeros((size_t)2 * n * T * C), *gdh = xt_fzeros((size_t)2 * n * T * C);
    for (size_t i = 0; i < (size_t)2 * n * T * C; i++) dh[i] = 0.25f;
    xa_mean_pool_backward(dh, dpooled, lens, 2 * n, T, C);
    for (size_t i = 0; i < (size_t)2 * n * T * C; i++) dh[i] -= 0.25f;
    xt_gold_f32(st, "contrastive.dh", gdh, (size_t)2 * n * T * C);
    xt_assert_close("mean pool dh vs torch", dh, gdh, (size_t)2 * n * T * C, 1e-5f, 1e-4f);

    /* finite differences of the whole path (a milder scale keeps the loss smooth for FD) */
    cl_ctx c = {h, lens, n, T, C, 4.0f, xt_fzeros((size_t)2 * n * C), scratch};
    xa_mean_pool_forward(pooled, h, lens, 2 * n, T, C);
    xa_contrastive_loss(dpooled, dpooled + (size_t)n * C, NULL, scratch, pooled, pooled + (size_t)n * C,
                        n, C, 4.0f);
    memset(dh, 0, (size_t)2 * n * T * C * sizeof(float));
    xa_mean_pool_backward(dh, dpooled, lens, 2 * n, T, C);
    xt_check_fd("contrastive dh vs FD", cl_loss, &c, h, dh, (size_t)2 * n * T * C, 1e-2f, 2e-4f, 1e-2f);

    /* identical sides far apart from each other: every pair retrieves itself */
    float *U = xt_fzeros((size_t)n * C);
    for (int i = 0; i < n; i++) U[(size_t)i * C + i] = 3.0f;
    float a2 = 0;
    float l2 = xa_contrastive_loss(NULL, NULL, &a2, scratch, U, U, n, C, 20.0f);
    assert_true(a2 == 1.0f);
    assert_true(l2 < 1e-6f);
    xa_st_close(st);
}


/* ---- bf16 products ---------------------------------------------------------------------------- */

/* xa_bf16_round against PyTorch's fp32 -> bfloat16 conversion (tests/golden/gen_bf16_golden.py):
 * ties to even, the tie broken by a low bit, overflow to inf, a subnormal, signed zeros. */
static void test_bf16_round(void **state) {
    (void)state;
    static const uint32_t in_bits[] = {0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f808008u, 0xbf808000u, 0x40490fdbu, 0xc02df84du, 0x3a83126fu, 0x477fe000u, 0x7f7f0000u, 0x7f7fffffu, 0xff7fffffu, 0x006ce3eeu, 0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x3dcccccdu, 0x47f12065u, 0xb89d4952u};
    static const uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xbf80, 0x4049, 0xc02e, 0x3a83, 0x4780, 0x7f7f, 0x7f80, 0xff80, 0x006d, 0x0000, 0x8000, 0x7f80, 0xff80, 0x3dcd, 0x47f1, 0xb89d};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        float f;
        memcpy(&f, &in_bits[i], 4);
        if (xa_bf16_round(f) != want[i])
            fail_msg("bf16(%a) = 0x%04x, PyTorch 0x%04x", (double)f, xa_bf16_round(f), want[i]);
        if (want[i] != 0x7f80 && want[i] != 0xff80) /* finite: back to the rounded value exactly */
            assert_true(xa_bf16_round(xa_bf16_value(want[i])) == want[i]);
    }
    uint16_t nan = xa_bf16_round(NAN);
    assert_true((nan & 0x7f80) == 0x7f80 && (nan & 0x007f) != 0); /* a NaN stays a NaN */
}

/* max over (i, j) of |got - want| / (sum_k |a_ik b_kj| |alpha| + |beta c_ij| + tiny) */
static double rel_err(const float *got, const double *want, const double *scale, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (scale[i] + 1e-30);
        if (e > worst) worst = e;
    }
    return worst;
}

/* Element (i, j) of op(A) op(B) in fp64, and *sc = sum |a b| (the scale of its rounding errors). */
static double fp64_dot(int ta, int tb, const float *A, int lda, const float *B, int ldb, int i, int j,
                       int K, double *sc) {
    double acc = 0;
    *sc = 0;
    for (int p = 0; p < K; p++) {
        double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
        double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
        acc += a * b;
        *sc += fabs(a * b);
    }
    return acc;
}

/* One product in every form: the exact fp64 value and its scale, the bf16 contract
 * (xa_sgemm_bf16_ref), and, where the CPU has the kernel, xa_sgemm in bf16 precision. */
static void bf16_case(xa_rng *rng, int ta, int tb, int M, int N, int K, float alpha, float beta, int have_kernel) {
    int lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3;
    float *A = malloc(sizeof(float) * (size_t)M * K + 4), *B = malloc(sizeof(float) * (size_t)K * N + 4);
    float *C0 = malloc(sizeof(float) * (size_t)M * ldc), *R = malloc(sizeof(float) * (size_t)M * ldc);
    float *X = malloc(sizeof(float) * (size_t)M * ldc);
    double *E = malloc(sizeof(double) * (size_t)M * N), *S = malloc(sizeof(double) * (size_t)M * N);
    xa_rng_fill_normal(rng, A, (size_t)M * K, 0.0f, 1.0f);
    xa_rng_fill_normal(rng, B, (size_t)K * N, 0.0f, 1.0f);
    xa_rng_fill_normal(rng, C0, (size_t)M * ldc, 0.0f, 1.0f);
    float *got[2] = {R, X};
    for (int v = 0; v < 2; v++) memcpy(got[v], C0, sizeof(float) * (size_t)M * ldc);
    xa_sgemm_bf16_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    if (have_kernel) {
        xa_gemm_set_precision(XA_PRECISION_BF16);
        xa_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, X, ldc);
        xa_gemm_set_precision(XA_PRECISION_FP32);
    }
    float *Rc = malloc(sizeof(float) * (size_t)M * N), *Xc = malloc(sizeof(float) * (size_t)M * N);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double sc, acc = fp64_dot(ta, tb, A, lda, B, ldb, i, j, K, &sc);
            double c = C0[(size_t)i * ldc + j];
            E[(size_t)i * N + j] = alpha * acc + (beta == 0.0f ? 0.0 : beta * c);
            S[(size_t)i * N + j] = fabs(alpha) * sc + (beta == 0.0f ? 0.0 : fabs(beta * c));
            Rc[(size_t)i * N + j] = R[(size_t)i * ldc + j];
            Xc[(size_t)i * N + j] = X[(size_t)i * ldc + j];
        }
    }
    /* bf16 bound: each operand rounded with relative error <= 2^-8 (8 significant bits, half an
     * ulp of 2^-7), so a product is off by at most ~2^-7 of |a b|; fp32 sums add K 2^-24 at most */
    const double bound = ldexp(1.0, -7) * 1.01 + K * ldexp(1.0, -24) + ldexp(1.0, -22);
    double e_ref = rel_err(Rc, E, S, (size_t)M * N);
    if (e_ref > bound) fail_msg("bf16 contract %dx%dx%d ta=%d tb=%d: error %.3g of scale > bound %.3g", M, N, K, ta, tb, e_ref, bound);
    if (have_kernel) {
        /* the kernel computes the contract: only fp32 summation order and fused multiply-adds
         * differ, a few fp32 roundings per k block */
        double worst = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) {
            double e = fabs((double)Xc[i] - Rc[i]) / (S[i] + 1e-30);
            if (e > worst) worst = e;
        }
        double tight = (8.0 + K) * ldexp(1.0, -23);
        if (worst > tight)
            fail_msg("bf16 kernel %dx%dx%d ta=%d tb=%d: %.3g of scale from the contract (> %.3g)", M, N, K, ta, tb, worst, tight);
        /* and it is bf16, not fp32: on random data the error against fp64 is far above fp32's */
        if (K >= 64 && rel_err(Xc, E, S, (size_t)M * N) < ldexp(1.0, -16))
            fail_msg("bf16 kernel %dx%dx%d: as exact as fp32 (were the operands rounded?)", M, N, K);
    }
    free(A); free(B); free(C0); free(R); free(X); free(E); free(S); free(Rc); free(Xc);
}

/* The packing's rounding, bit for bit: op(A) . I = bf16(op(A)) and I . op(B) = bf16(op(B)) exactly
 * (each output is one bf16 value times 1 plus zeros), so the kernel's packed operands are read
 * back and compared with xa_bf16_round (itself checked against PyTorch above), over both
 * transposes, an odd K, a K over one k block (KC = 256), partial panels, ties, a value that
 * rounds up to the smallest normal (VCVTNE2PS2BF16 alone flushes it to 0) and NaN rows (a
 * signalling NaN must stay a NaN, not become inf). VDPBF16PS reads a subnormal bf16 as 0, so
 * where the rounded value is subnormal, 0 is accepted. */
static float bf16_pack_value(xa_rng *rng, size_t n) {
    static const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f807fffu, 0x007fffffu,
                                       0x807fffffu, 0x006ce3eeu, 0x00800000u, 0x7f7f0000u, 0x80000000u,
                                       0x00000000u, 0x47f12065u, 0x3dcccccdu, 0x477fe000u};
    uint32_t u;
    if (n % 3 == 0) {
        u = special[(n / 3) % (sizeof special / sizeof special[0])];
    } else {
        float f = xa_rng_normal(rng) * 8.0f;
        memcpy(&u, &f, 4);
        if (n % 3 == 2) u = (u & 0xFFFF0000u) | 0x8000u; /* an exact tie */
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void bf16_pack_case(xa_rng *rng, int side_b, int trans, int M, int K, int N) {
    /* side_b == 0: op(A) = V (M, K) holds the values, op(B) = I (K = N), so C = V; a NaN anywhere
     * in V's row r makes C's row r NaN (NaN * 0). side_b: op(A) = I (M = K), op(B) = V (K, N),
     * C = V, and a NaN in V's column c makes C's column c NaN. V is stored transposed when trans. */
    int rows = side_b ? K : M, cols = side_b ? N : K;
    int ld = trans ? rows : cols;
#define OPV(r, c) V[trans ? (size_t)(c) * ld + (r) : (size_t)(r) * ld + (c)]
    float *V = malloc(sizeof(float) * (size_t)rows * cols), *I = calloc((size_t)K * K, sizeof(float));
    float *C = malloc(sizeof(float) * (size_t)M * N);
    for (size_t n = 0; n < (size_t)rows * cols; n++) V[n] = bf16_pack_value(rng, n);
    /* one NaN on each of three lines: a NaN packed as inf would leave inf * 1 at its own place */
    const int n_lines = side_b ? cols : rows, nan_line[3] = {1, n_lines / 2, n_lines - 2};
    static const uint32_t nans[] = {0x7f800001u, 0xffa12345u, 0x7fc00000u}; /* signalling, negative, quiet */
    for (int t = 0; t < 3; t++) {
        float f;
        memcpy(&f, &nans[t], 4);
        if (side_b) OPV((t * 7 + 3) % rows, nan_line[t]) = f;
        else OPV(nan_line[t], (t * 7 + 3) % cols) = f;
    }
    for (int k = 0; k < K; k++) I[(size_t)k * K + k] = 1.0f;
    xa_gemm_set_precision(XA_PRECISION_BF16);
    if (side_b) xa_sgemm(0, trans, M, N, K, 1.0f, I, K, V, ld, 0.0f, C, N);
    else xa_sgemm(trans, 0, M, N, K, 1.0f, V, ld, I, K, 0.0f, C, N);
    xa_gemm_set_precision(XA_PRECISION_FP32);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float v = OPV(i, j), got = C[(size_t)i * N + j];
            int line = side_b ? j : i;
            if (line == nan_line[0] || line == nan_line[1] || line == nan_line[2]) {
                if (!isnan(got)) fail_msg("bf16 pack side_b=%d trans=%d %dx%dx%d: (%d,%d) = %a, want NaN", side_b, trans, M, N, K, i, j, (double)got);
                continue;
            }
            float want = xa_bf16_value(xa_bf16_round(v));
            int sub = want != 0.0f && fabsf(want) < 0x1p-126f;
            if (!(got == want || (sub && got == 0.0f)))
                fail_msg("bf16 pack side_b=%d trans=%d %dx%dx%d: (%d,%d) of %a = %a, xa_bf16_round gives %a", side_b, trans, M, N, K, i, j, (double)v, (double)got, (double)want);
        }
    }
#undef OPV
    free(V); free(I); free(C);
}

static void test_sgemm_bf16(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 5, 0);
    int have = xa_gemm_set_precision(XA_PRECISION_BF16) == XA_PRECISION_BF16; /* the CPU has the kernel */
    xa_gemm_set_precision(XA_PRECISION_FP32);
    if (!have) print_message("no AVX512-BF16 on this CPU: the bf16 kernel is skipped, the scalar contract is tested\n");
    assert_int_equal(xa_gemm_set_precision(XA_PRECISION_BF16), have ? XA_PRECISION_BF16 : XA_PRECISION_FP32);
    assert_non_null(strstr(xa_gemm_engine(), have ? "bf16" : "no bf16 kernel"));
    xa_gemm_set_precision(XA_PRECISION_FP32);
    assert_null(strstr(xa_gemm_engine(), "bf16"));
    /* both bf16 kernels where the CPU has AMX (the automatic choice, then the AVX512-BF16 one
     * forced), else the one it has */
    xa_gemm_set_engine(NULL);
    int n_kernels = xa_peak_unavailable(XA_PEAK_BF16_AMX) == NULL ? 2 : 1;
    for (int kern = 0; kern < n_kernels; kern++) {
        if (kern == 1) assert_int_equal(xa_gemm_set_engine("bf16-avx512"), XA_STATUS_OK);
        xa_gemm_set_precision(XA_PRECISION_BF16);
        if (have) print_message("bf16 kernel: %s\n", xa_gemm_engine());
        xa_gemm_set_precision(XA_PRECISION_FP32);
        for (int threads = 1; threads <= MANY_THREADS; threads += MANY_THREADS - 1) {
            xa_threads_set(threads);
            for (int ta = 0; ta < 2; ta++) {
                for (int tb = 0; tb < 2; tb++) {
                    bf16_case(&rng, ta, tb, 7, 5, 13, 1.0f, 0.0f, have);    /* odd K: a half pair */
                    bf16_case(&rng, ta, tb, 12, 32, 64, 0.5f, 1.0f, have);  /* one full micro-tile */
                    bf16_case(&rng, ta, tb, 1, 1, 1, 2.0f, 0.0f, have);
                    bf16_case(&rng, ta, tb, 4, 3, 0, 1.0f, 0.5f, have);     /* K = 0: C = beta C */
                    bf16_case(&rng, ta, tb, 97, 61, 53, 1.0f, 0.0f, have);  /* split over threads */
                    bf16_case(&rng, ta, tb, 45, 131, 47, -0.7f, 0.3f, have);
                    if (threads == 1) bf16_case(&rng, ta, tb, 30, 1100, 301, 0.9f, 0.4f, have); /* KC, NC */
                }
            }
        }
        xa_threads_set(1);
        if (have) {
            for (int trans = 0; trans < 2; trans++) {
                bf16_pack_case(&rng, 0, trans, 13, 37, 37);   /* A: a partial panel, odd K */
                bf16_pack_case(&rng, 0, trans, 25, 300, 300); /* A: two k blocks */
                bf16_pack_case(&rng, 1, trans, 37, 37, 45);   /* B: odd K, a partial NR panel */
                bf16_pack_case(&rng, 1, trans, 300, 300, 70);
            }
        }
    }
    xa_gemm_set_engine(NULL);
    xa_precision p;
    assert_int_equal(xa_precision_parse("bf16", "test", &p), XA_STATUS_OK);
    assert_int_equal(p, XA_PRECISION_BF16);
    assert_int_equal(xa_precision_parse("fp16", "test", &p), XA_STATUS_USAGE);
    assert_non_null(strstr(xa_error_last()->expected, "fp32 or bf16"));
}

/* ---- the AMX kernel ------------------------------------------------------------------------ */

/* Bits equal, or both NaN. Returns the number of elements of C (M x N in ldc) that differ and the
 * first one in *first. */
static size_t bits_differ(const float *x, const float *y, int M, int N, int ldc, size_t *first) {
    size_t n = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            size_t at = (size_t)i * ldc + j;
            if (memcmp(&x[at], &y[at], 4) == 0 || (isnan(x[at]) && isnan(y[at]))) continue;
            if (n++ == 0) *first = at;
        }
    }
    return n;
}

/* One product on the emulated AMX kernel (xa_sgemm_amx_emu), strided (lda, ldb, ldc past the
 * matrices), checked three ways: bit for bit against its element-wise twin xa_sgemm_amx_ref (any
 * slip in pairing, strides, edges or blocking changes bits); against xa_sgemm_bf16_ref within a
 * few fp32 roundings a k block (the two sum each pair in opposite orders); against fp64 within the
 * bf16 bound (bf16_case's). Where the CPU runs AMX (hw != 0), xa_sgemm in bf16 precision on the
 * tiles is compared with the emulation too: bit for bit if the hardware rounds as the SDM's
 * pseudo-code says, which nobody here has seen yet, so the check is the fp32-rounding bound and the
 * number of elements whose bits differ is printed. */
static void amx_case(xa_rng *rng, int ta, int tb, int M, int N, int K, float alpha, float beta, int hw) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
    size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1, nc = (size_t)M * ldc;
    float *A = xt_frandn(rng, na, 1.0f), *B = xt_frandn(rng, nb, 1.0f), *C0 = xt_frandn(rng, nc, 1.0f);
    float *Em = xt_fcopy(C0, nc), *Tw = xt_fcopy(C0, nc), *Bf = xt_fcopy(C0, nc), *Hw = xt_fcopy(C0, nc);
    xa_sgemm_amx_emu(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Em, ldc);
    xa_sgemm_amx_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Tw, ldc);
    xa_sgemm_bf16_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Bf, ldc);
    size_t first = 0, n_diff = bits_differ(Em, Tw, M, N, ldc, &first);
    if (n_diff)
        fail_msg("amx emulation %dx%dx%d ta=%d tb=%d alpha=%g beta=%g: %zu of %d elements differ from "
                 "xa_sgemm_amx_ref, first (%zu,%zu) = %a, want %a", M, N, K, ta, tb, (double)alpha, (double)beta,
                 n_diff, M * N, first / ldc, first % ldc, (double)Em[first], (double)Tw[first]);
    /* scale per element: |alpha| sum |a b| + |beta c| */
    double worst_bf = 0, worst_ex = 0, *S = xt_alloc(sizeof(double) * nc);
    size_t at_bf = 0, at_ex = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double sc, acc = fp64_dot(ta, tb, A, lda, B, ldb, i, j, K, &sc);
            size_t at = (size_t)i * ldc + j;
            double c = C0[at], ex = alpha * acc + (beta == 0.0f ? 0.0 : beta * c);
            double scale = S[at] = fabs(alpha) * sc + (beta == 0.0f ? 0.0 : fabs(beta * c)) + 1e-30;
            double e_bf = fabs((double)Em[at] - Bf[at]) / scale, e_ex = fabs((double)Em[at] - ex) / scale;
            if (e_bf > worst_bf) worst_bf = e_bf, at_bf = at;
            if (e_ex > worst_ex) worst_ex = e_ex, at_ex = at;
        }
    }
    const double tight = (8.0 + K) * ldexp(1.0, -23); /* fp32 roundings: a few a k block */
    const double bound = ldexp(1.0, -7) * 1.01 + K * ldexp(1.0, -24) + ldexp(1.0, -22); /* bf16_case's */
    if (worst_bf > tight)
        fail_msg("amx emulation %dx%dx%d ta=%d tb=%d: (%zu,%zu) %.3g of scale from xa_sgemm_bf16_ref (> %.3g)", M, N, K,
                 ta, tb, at_bf / ldc, at_bf % ldc, worst_bf, tight);
    if (worst_ex > bound)
        fail_msg("amx emulation %dx%dx%d ta=%d tb=%d: (%zu,%zu) %.3g of scale from fp64 (> bf16 bound %.3g)", M, N, K, ta,
                 tb, at_ex / ldc, at_ex % ldc, worst_ex, bound);
    if (K >= 64 && worst_ex < ldexp(1.0, -16))
        fail_msg("amx emulation %dx%dx%d: as exact as fp32 (were the operands rounded?)", M, N, K);
    /* C outside the M x N product (the ldc padding) is untouched */
    for (int i = 0; i < M; i++) {
        for (int j = N; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (memcmp(&Em[at], &C0[at], 4) != 0) fail_msg("amx emulation %dx%dx%d wrote C(%d,%d) past N", M, N, K, i, j);
        }
    }
    if (hw) {
        xa_gemm_set_precision(XA_PRECISION_BF16);
        xa_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Hw, ldc);
        xa_gemm_set_precision(XA_PRECISION_FP32);
        double worst = 0;
        size_t at_hw = 0;
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                size_t at = (size_t)i * ldc + j;
                double e = fabs((double)Hw[at] - Em[at]) / S[at];
                if (!(e <= worst)) worst = e, at_hw = at; /* a NaN is the worst */
            }
        }
        n_diff = bits_differ(Hw, Em, M, N, ldc, &first);
        print_message("amx hardware %dx%dx%d ta=%d tb=%d threads %d: %zu of %d elements differ in bits from the "
                      "emulation, worst %.3g of scale\n", M, N, K, ta, tb, xa_threads_get(), n_diff, M * N, worst);
        if (!(worst <= tight))
            fail_msg("amx hardware %dx%dx%d ta=%d tb=%d: (%zu,%zu) = %a, emulation %a: %.3g of scale (> %.3g)", M, N, K,
                     ta, tb, at_hw / ldc, at_hw % ldc, (double)Hw[at_hw], (double)Em[at_hw], worst, tight);
    }
}

static void test_sgemm_amx(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 12, 0);
    const char *why = xa_peak_unavailable(XA_PEAK_BF16_AMX); /* the same check as the dispatch's */
    xa_gemm_set_engine(NULL); /* automatic: AMX wherever it runs (XA_GEMM_ISA ignored) */
    xa_gemm_set_precision(XA_PRECISION_BF16);
    int hw = strstr(xa_gemm_engine(), "amx") != NULL;
    xa_gemm_set_precision(XA_PRECISION_FP32);
    assert_true(hw == (why == NULL));
    /* the override for comparisons: the AVX512-BF16 kernel wherever it runs, AMX or not */
    int have_bf16 = xa_precision_effective(XA_PRECISION_BF16) == XA_PRECISION_BF16;
    assert_int_equal(xa_gemm_set_engine("bf16-avx512"), have_bf16 ? XA_STATUS_OK : XA_STATUS_USAGE);
    if (have_bf16) {
        xa_gemm_set_precision(XA_PRECISION_BF16);
        assert_string_equal(xa_gemm_engine(), "avx512-bf16 12x32");
        assert_int_equal(xa_gemm_peak_path(), XA_PEAK_BF16_AVX512);
        xa_gemm_set_precision(XA_PRECISION_FP32);
    }
    xa_gemm_set_engine(NULL);
    if (hw) {
        xa_gemm_set_precision(XA_PRECISION_BF16);
        assert_string_equal(xa_gemm_engine(), "amx-bf16 32x32");
        assert_int_equal(xa_gemm_peak_path(), XA_PEAK_BF16_AMX);
        xa_gemm_set_precision(XA_PRECISION_FP32);
    } else {
        print_message("amx hardware kernel skipped: %s; the emulated AMX kernel is tested\n", why);
    }
    /* (M, N, K, alpha, beta): tile edges 15/16/17 and 31/32/33, K = 1, odd K, K > KC (256) and
     * > 2 KC, M > MC (256), N > NC (2048), K = 0 */
    static const struct { int M, N, K; float alpha, beta; } shapes[] = {
        {1, 1, 1, 1.0f, 0.0f},      {15, 17, 31, 1.0f, 0.0f},   {16, 16, 32, 0.5f, 1.0f},
        {17, 15, 33, -1.3f, 1.0f},  {31, 33, 1, 1.0f, 0.0f},    {32, 32, 64, 1.0f, 1.0f},
        {33, 31, 17, 2.0f, 0.0f},   {65, 47, 257, 0.7f, 0.3f},  {7, 129, 300, 1.0f, 1.0f},
        {270, 20, 45, 1.0f, 0.0f},  {40, 40, 513, 1.0f, 0.0f},  {3, 4, 0, 1.0f, 0.5f},
    };
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                amx_case(&rng, ta, tb, shapes[s].M, shapes[s].N, shapes[s].K, shapes[s].alpha, shapes[s].beta, hw);
            }
        }
    }
    amx_case(&rng, 0, 1, 5, 2100, 37, 1.0f, 0.5f, hw); /* N > NC */
    /* every edge of a 32 x 32 micro-tile against every k tail of a tile step (K mod 32) */
    static const int edges[] = {1, 2, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65};
    const int n_edges = (int)(sizeof edges / sizeof edges[0]);
    for (int a = 0; a < n_edges; a++) {
        for (int b = 0; b < n_edges; b++) {
            int K = 1 + (a * n_edges + b) * 7 % 97;
            amx_case(&rng, (a + b) & 1, (a >> 1 ^ b) & 1, edges[a], edges[b], K, 1.0f, (a ^ b) & 1 ? 1.0f : 0.0f, hw);
        }
    }
    /* special values (bf16_pack_value: ties, subnormals, one that rounds up to the smallest normal,
     * huge values whose products overflow, signed zeros) in both operands: the emulation's checks
     * of the vectorised packing meet subnormal-holding chunks, and the twin agrees bit for bit
     * (a NaN as any NaN) */
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            const int M = 37, N = 35, K = 77;
            float *As = xt_fzeros((size_t)M * K), *Bs = xt_fzeros((size_t)K * N);
            float *Cs = xt_fzeros((size_t)M * N), *Ts = xt_fzeros((size_t)M * N);
            for (size_t n = 0; n < (size_t)M * K; n++) As[n] = bf16_pack_value(&rng, n);
            for (size_t n = 0; n < (size_t)K * N; n++) Bs[n] = bf16_pack_value(&rng, n + 1);
            xa_sgemm_amx_emu(ta, tb, M, N, K, 1.0f, As, ta ? M : K, Bs, tb ? K : N, 0.0f, Cs, N);
            xa_sgemm_amx_ref(ta, tb, M, N, K, 1.0f, As, ta ? M : K, Bs, tb ? K : N, 0.0f, Ts, N);
            size_t first = 0, n_diff = bits_differ(Cs, Ts, M, N, N, &first);
            if (n_diff)
                fail_msg("amx emulation, special values, ta=%d tb=%d: %zu elements differ from xa_sgemm_amx_ref, "
                         "first (%zu,%zu) = %a, want %a", ta, tb, n_diff, first / N, first % N, (double)Cs[first], (double)Ts[first]);
        }
    }
    /* the zero pads of the panels are zero, not the last product's data: a product whose A and B
     * panels are all inf (kq = 32 pairs, no pad), one whose partial tile step copies 15 inf pair
     * rows of B (K = 62: 31 pairs), then one whose K leaves pad pairs (17: 9 pairs of 16) where
     * 0 * inf would make NaN */
    {
        float *Ainf = xt_fzeros(32 * 64), *Binf = xt_fzeros(64 * 32), *C1 = xt_fzeros(32 * 32);
        for (int n = 0; n < 32 * 64; n++) Ainf[n] = Binf[n] = INFINITY;
        xa_sgemm_amx_emu(0, 0, 32, 32, 64, 1.0f, Ainf, 64, Binf, 32, 0.0f, C1, 32);
        assert_true(isinf(C1[0]) && isinf(C1[32 * 32 - 1]));
        xa_sgemm_amx_emu(0, 0, 32, 32, 62, 1.0f, Ainf, 64, Binf, 32, 0.0f, C1, 32); /* a tail step of 15 inf rows */
        assert_true(isinf(C1[0]) && isinf(C1[32 * 32 - 1]));
        if (hw) {
            xa_gemm_set_precision(XA_PRECISION_BF16);
            xa_sgemm(0, 0, 32, 32, 64, 1.0f, Ainf, 64, Binf, 32, 0.0f, C1, 32);
            assert_true(isinf(C1[0]) && isinf(C1[32 * 32 - 1]));
            xa_sgemm(0, 0, 32, 32, 62, 1.0f, Ainf, 64, Binf, 32, 0.0f, C1, 32);
            xa_gemm_set_precision(XA_PRECISION_FP32);
            assert_true(isinf(C1[0]) && isinf(C1[32 * 32 - 1]));
        }
        amx_case(&rng, 0, 0, 32, 32, 17, 1.0f, 0.0f, hw);
    }
    if (hw) {
        /* split over threads: each OpenMP worker configures its own tiles */
        xa_threads_set(MANY_THREADS);
        amx_case(&rng, 0, 1, 97, 61, 53, 1.0f, 0.0f, hw);
        amx_case(&rng, 1, 0, 45, 131, 47, -0.7f, 0.3f, hw);
        xa_threads_set(1);
    }
}

/* ---- the AMX kernel on a whole pack of op(B) (the frozen weights' bf16 packs) ----------------- */

/* 1 where this build compiles the x86 kernels (gemm_amx.c, gemm_bf16.c: CMakeLists.txt's condition),
 * so that the tests may call them directly (only where the CPU has them). */
#if defined(__x86_64__) && defined(__GNUC__)
#define XT_X86_KERNELS 1
#else
#define XT_X86_KERNELS 0
#endif

/* Words of xa_gemm_bf16_pack_b's pack of a (K, N) op(B), from its layout (gemm_bf16.c): per K block
 * of 256, ceil(kc/2) pair rows of N rounded up to 32 lanes. Computed here so the emulated products
 * run on every machine. */
static size_t amx_pack_words(int K, int N) {
    size_t pairs = 0;
    for (int pc = 0; pc < K; pc += 256) pairs += (size_t)((K - pc < 256 ? K - pc : 256) + 1) / 2;
    return pairs * ((size_t)(N + 31) / 32 * 32);
}

/* op(B) (K, n_pre) packed whole (made from W stored as op(B)^T when tb, padded ldb), and a product
 * on its columns j0 .. j0 + N - 1 three ways on the emulated tiles: from the pack
 * (xa_sgemm_amx_emu_pre), packing those columns of W at the call (xa_sgemm_amx_emu), and element
 * by element (xa_sgemm_amx_ref): bit for bit, the ldc padding included. The pack is the scalar one
 * (xa_sgemm_amx_emu_pack_b); where the CPU has AVX512-BF16, xa_gemm_bf16_pack_b's (the one
 * gemm_frozen.c keeps) must equal it word for word. Where the CPU runs AMX (hw), the hardware
 * kernel on the pack must give the bits of the hardware kernel packing B itself, and stay within
 * amx_case's fp32-rounding bound of the emulation (the differing bits are printed). */
static void amx_pre_case(xa_rng *rng, int ta, int tb, int M, int N, int K, int n_pre, int j0, float alpha,
                         float beta, int hw, int special) {
    assert_true(j0 % 32 == 0 && j0 + N <= n_pre);
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : n_pre) + 2, ldc = N + 5;
    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? n_pre : K) * ldb, nc = (size_t)M * ldc;
    const size_t words = amx_pack_words(K, n_pre);
    float *A = xt_frandn(rng, na, 1.0f), *W = xt_frandn(rng, nb, 1.0f), *C0 = xt_frandn(rng, nc, 1.0f);
    float *Pre = xt_fcopy(C0, nc), *Call = xt_fcopy(C0, nc), *Tw = xt_fcopy(C0, nc);
    uint32_t *pack = xt_alloc(words * sizeof(uint32_t));
    if (special) { /* bf16_pack_value's ties, subnormals, huge values and signed zeros */
        for (size_t i = 0; i < na; i++) A[i] = bf16_pack_value(rng, i);
        for (size_t i = 0; i < nb; i++) W[i] = bf16_pack_value(rng, i + 1);
    }
    xa_sgemm_amx_emu_pack_b(pack, tb, W, ldb, K, n_pre);
    if (xa_gemm_bf16_available()) {
        assert_true(xa_gemm_bf16_pack_b_size(K, n_pre) == words);
        uint32_t *vec = xt_alloc(words * sizeof(uint32_t));
        for (int c = 0; c < xa_gemm_bf16_pack_b_chunks(K, n_pre); c++) xa_gemm_bf16_pack_b(vec, tb, W, ldb, K, n_pre, c);
        if (memcmp(vec, pack, words * sizeof(uint32_t)))
            fail_msg("amx pre %dx%d tb=%d: xa_gemm_bf16_pack_b differs from the scalar pack", K, n_pre, tb);
    }
    const float *Bj = tb ? W + (size_t)j0 * ldb : W + j0; /* op(B)(:, j0:j0+N) */
    xa_sgemm_amx_emu_pre(ta, M, N, K, alpha, A, lda, pack, n_pre, j0, beta, Pre, ldc);
    xa_sgemm_amx_emu(ta, tb, M, N, K, alpha, A, lda, Bj, ldb, beta, Call, ldc);
    xa_sgemm_amx_ref(ta, tb, M, N, K, alpha, A, lda, Bj, ldb, beta, Tw, ldc);
    const size_t bytes = nc * sizeof(float);
    if (special) { /* a NaN as any NaN */
        size_t first = 0, d_call = bits_differ(Pre, Call, M, N, ldc, &first);
        size_t d_ref = d_call ? d_call : bits_differ(Pre, Tw, M, N, ldc, &first);
        if (d_ref)
            fail_msg("amx pre, special values, %dx%dx%d ta=%d tb=%d j0=%d: %zu elements differ from %s, first "
                     "(%zu,%zu) = %a, want %a", M, N, K, ta, tb, j0, d_ref, d_call ? "per-call packing" : "xa_sgemm_amx_ref",
                     first / ldc, first % ldc, (double)Pre[first], (double)(d_call ? Call : Tw)[first]);
    } else if (memcmp(Pre, Call, bytes) || memcmp(Call, Tw, bytes)) {
        size_t first = 0, d_call = bits_differ(Pre, Call, M, ldc, ldc, &first), d_ref = bits_differ(Pre, Tw, M, ldc, ldc, &first);
        fail_msg("amx pre %dx%dx%d ta=%d tb=%d n_pre=%d j0=%d alpha=%g beta=%g: %zu elements differ from per-call "
                 "packing, %zu from xa_sgemm_amx_ref (of %zu), first (%zu,%zu) = %a, ref %a",
                 M, N, K, ta, tb, n_pre, j0, (double)alpha, (double)beta, d_call, d_ref, nc, first / ldc, first % ldc,
                 (double)Pre[first], (double)Tw[first]);
    }
#if XT_X86_KERNELS
    if (hw) {
        float *Hp = xt_fcopy(C0, nc), *Hc = xt_fcopy(C0, nc);
        uint32_t *vec = xt_alloc(words * sizeof(uint32_t));
        for (int c = 0; c < xa_gemm_bf16_pack_b_chunks(K, n_pre); c++) xa_gemm_bf16_pack_b(vec, tb, W, ldb, K, n_pre, c);
        xa_gemm_packed_amx_pre(ta, M, N, K, alpha, A, lda, vec, n_pre, j0, beta, Hp, ldc);
        xa_gemm_packed_amx(ta, tb, M, N, K, alpha, A, lda, Bj, ldb, beta, Hc, ldc);
        if (memcmp(Hp, Hc, bytes))
            fail_msg("amx hardware pre %dx%dx%d ta=%d tb=%d j0=%d: not the bits of the hardware kernel packing B", M, N, K,
                     ta, tb, j0);
        double worst = 0, tight = (8.0 + K) * ldexp(1.0, -23);
        size_t at_hw = 0, first = 0;
        for (int i = 0; i < M && !special; i++) {
            for (int j = 0; j < N; j++) {
                size_t at = (size_t)i * ldc + j;
                double sc;
                fp64_dot(ta, tb, A, lda, Bj, ldb, i, j, K, &sc);
                double e = fabs((double)Hp[at] - Pre[at]) / (fabs(alpha) * sc + (beta == 0.0f ? 0.0 : fabs(beta * C0[at])) + 1e-30);
                if (!(e <= worst)) worst = e, at_hw = at; /* a NaN is the worst */
            }
        }
        print_message("amx hardware pre %dx%dx%d ta=%d tb=%d j0=%d: %zu of %d elements differ in bits from the emulation, "
                      "worst %.3g of scale\n", M, N, K, ta, tb, j0, bits_differ(Hp, Pre, M, N, ldc, &first), M * N, worst);
        if (!(worst <= tight))
            fail_msg("amx hardware pre %dx%dx%d ta=%d tb=%d: (%zu,%zu) = %a, emulation %a: %.3g of scale (> %.3g)", M, N, K,
                     ta, tb, at_hw / ldc, at_hw % ldc, (double)Hp[at_hw], (double)Pre[at_hw], worst, tight);
    }
#else
    assert_false(hw); /* no AMX kernel in this build */
#endif
}

static void test_sgemm_amx_pre(void **state) {
    (void)state;
    xa_rng rng;
    xa_rng_seed(&rng, 13, 0);
    const char *why = xa_peak_unavailable(XA_PEAK_BF16_AMX);
    const int hw = why == NULL;
    if (!hw) print_message("amx hardware kernel on the pack skipped: %s; the emulated AMX kernel is tested\n", why);
    /* K: a K block's partial last tile step of 1..15 pairs (K % 32 = 1, 2, 17, 31; the last block of
     * 257, 513, 600, 290, 318) or none (32, 64, 256, 512); N and n_pre not multiples of 32, j0 inside
     * the pack and N ending mid-panel; M tile edges */
    static const int Ks[] = {1, 2, 17, 31, 32, 33, 64, 95, 256, 257, 290, 318, 512, 513, 600};
    static const struct { int M, N, n_pre, j0; } cols[] = {
        {1, 1, 1, 0},     {15, 45, 45, 0},   {17, 33, 130, 32},  {33, 61, 130, 64},
        {32, 40, 130, 32}, {16, 2, 97, 64},  {31, 96, 96, 0},
    };
    static const float ab[][2] = {{1.0f, 0.0f}, {-0.7f, 1.0f}, {0.9f, 0.5f}};
    int n = 0;
    for (size_t k = 0; k < sizeof Ks / sizeof Ks[0]; k++) {
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            const int ta = (int)(k + c) & 1, tb = (int)(k + 2 * c) >> 1 & 1;
            const float *x = ab[(k * 3 + c) % 3];
            amx_pre_case(&rng, ta, tb, cols[c].M, cols[c].N, Ks[k], cols[c].n_pre, cols[c].j0, x[0], x[1], hw, 0);
            n++;
        }
    }
    /* every transpose and orientation of the pack on shapes with tails in two K blocks */
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            amx_pre_case(&rng, ta, tb, 65, 47, 318, 79, 32, 0.7f, 0.5f, hw, 0);
            amx_pre_case(&rng, ta, tb, 7, 33, 513, 129, 96, 1.0f, 1.0f, hw, 0);
        }
    }
    /* N > NC (2048): the second column block of the pack, from j0 = 0 and from a panel inside it;
     * M > MC (256); alpha 0 and K = 0 (C = beta C, the pack not read) */
    amx_pre_case(&rng, 0, 1, 5, 2100, 300, 2100, 0, 1.0f, 0.5f, hw, 0);
    amx_pre_case(&rng, 1, 0, 3, 2090, 45, 2200, 96, -1.0f, 1.0f, hw, 0);
    amx_pre_case(&rng, 0, 0, 270, 20, 45, 50, 0, 1.0f, 0.0f, hw, 0);
    amx_pre_case(&rng, 1, 1, 9, 30, 77, 64, 32, 0.0f, 0.5f, hw, 0);
    amx_pre_case(&rng, 0, 1, 4, 3, 0, 40, 32, 1.0f, 0.5f, hw, 0);
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) amx_pre_case(&rng, ta, tb, 37, 35, 77, 70, 32, 1.0f, 0.0f, hw, 1);
    }
    /* the partial last tile step reads zero rows, not the next panel's nor an earlier product's:
     * op(B) (62, 64) (31 pairs: a tail step of 15) whose columns 32-63 are inf, and A finite. The
     * product on columns 32-63 (C inf or NaN) leaves a tail copy of inf rows; one on a (2, 64) pack
     * (1 pair) would then read 15 of them, and one on columns 0-31 of the first pack the inf panel
     * next to them, and 0 (A's pad pair) times inf is NaN: both must be finite and equal the twin.
     * The product on the last panel would read past the end of the pack (the sanitizer build). */
    {
        const int M = 32;
        float *Wi = xt_frandn(&rng, 62 * 64, 1.0f), *W2 = xt_frandn(&rng, 2 * 64, 1.0f), *A = xt_frandn(&rng, M * 62, 1.0f);
        for (int k = 0; k < 62; k++)
            for (int j = 32; j < 64; j++) Wi[k * 64 + j] = INFINITY;
        uint32_t *pi = xt_alloc(amx_pack_words(62, 64) * sizeof(uint32_t)), *p2 = xt_alloc(amx_pack_words(2, 64) * sizeof(uint32_t));
        xa_sgemm_amx_emu_pack_b(pi, 0, Wi, 64, 62, 64);
        xa_sgemm_amx_emu_pack_b(p2, 0, W2, 64, 2, 64);
        float *C = xt_fzeros(M * 32), *T = xt_fzeros(M * 32);
        xa_sgemm_amx_emu_pre(0, M, 32, 62, 1.0f, A, 62, pi, 64, 32, 0.0f, C, 32);
        assert_true(isinf(C[0]) || isnan(C[0]));
        static const struct { int K, j0; } next[] = {{2, 0}, {62, 0}};
        for (int t = 0; t < 2; t++) {
            const int K = next[t].K;
            const float *Bt = K == 2 ? W2 : Wi;
            xa_sgemm_amx_emu_pre(0, M, 32, K, 1.0f, A, 62, K == 2 ? p2 : pi, 64, next[t].j0, 0.0f, C, 32);
            xa_sgemm_amx_ref(0, 0, M, 32, K, 1.0f, A, 62, Bt + next[t].j0, 64, 0.0f, T, 32);
            size_t first = 0, n_diff = bits_differ(C, T, M, 32, 32, &first);
            if (n_diff || !isfinite(C[first]))
                fail_msg("amx pre after an inf tail, K=%d j0=%d: %zu elements differ from xa_sgemm_amx_ref, (%zu,%zu) = %a, "
                         "want %a", K, next[t].j0, n_diff, first / 32, first % 32, (double)C[first], (double)T[first]);
            for (int i = 0; i < M * 32; i++)
                if (!isfinite(C[i])) fail_msg("amx pre after an inf tail, K=%d: C[%d] = %a", K, i, (double)C[i]);
        }
    }
    print_message("%d products on the pack: bits of per-call packing and xa_sgemm_amx_ref\n", n + 20);
}

/* The AMX kernel's packing of a transposed A, vectorised (xa_gemm_amx_cols_bf16: 16 x 16
 * transposes in registers), against xa_bf16_round word for word: panel heights (mr) 1 to 32 across
 * the two 16-row groups, kc odd and even across 16-pair groups up to KC, values with ties,
 * subnormals (VCVTNE2PS2BF16 flushes them: the chunk is redone in scalar code), NaNs (signalling,
 * negative, quiet: quieted as xa_bf16_round does) and infs. The words it must zero (rows from mr,
 * pairs from ceil(kc/2) to kq) start as garbage, and A holds exactly the floats the panel reads
 * (the sanitizer build catches a read past them). The emulated kernel checks the same function
 * against its scalar packing at every product (gemm_amx_emu.c); this test reaches the edges
 * directly. */
static void test_amx_cols_bf16(void **state) {
    (void)state;
    if (!XT_X86_KERNELS || !xa_gemm_bf16_available()) {
        print_message("no AVX512-BF16 on this CPU (or no x86 kernels in this build): the vectorised packing of a "
                      "transposed A is not tested (the emulation packs in scalar code)\n");
        skip();
    }
#if XT_X86_KERNELS
    xa_rng rng;
    xa_rng_seed(&rng, 14, 0);
    static const uint32_t odd[] = {0x7f800001u, 0xffa12345u, 0x7fc00000u, 0x7f800000u, 0xff800000u};
    static const int mrs[] = {1, 2, 15, 16, 17, 31, 32}, kcs[] = {1, 2, 3, 31, 32, 33, 63, 64, 65, 200, 255, 256};
    const int lda = 37;
    size_t words = 0;
    for (size_t m = 0; m < sizeof mrs / sizeof mrs[0]; m++) {
        for (size_t k = 0; k < sizeof kcs / sizeof kcs[0]; k++) {
            const int mr = mrs[m], kc = kcs[k], kp = (kc + 1) / 2, kq = (kp + 15) / 16 * 16;
            const size_t na = (size_t)(kc - 1) * lda + mr; /* the last float read: A(mr - 1, kc - 1) */
            float *a = xt_fzeros(na);
            for (size_t i = 0; i < na; i++) {
                a[i] = bf16_pack_value(&rng, i);
                if (i % 11 == 5) memcpy(&a[i], &odd[i / 11 % 5], 4);
            }
            uint32_t *d = xt_alloc((size_t)32 * kq * sizeof(uint32_t));
            memset(d, 0xAB, (size_t)32 * kq * sizeof(uint32_t));
            xa_gemm_amx_cols_bf16(d, a, lda, mr, kc, kq);
            for (int r = 0; r < 32; r++) {
                for (int q = 0; q < kq; q++) {
                    uint32_t want = 0;
                    if (r < mr && 2 * q < kc) {
                        want = xa_bf16_round(a[(size_t)(2 * q) * lda + r]);
                        if (2 * q + 1 < kc) want |= (uint32_t)xa_bf16_round(a[(size_t)(2 * q + 1) * lda + r]) << 16;
                    }
                    uint32_t got = d[(size_t)r * kq + q];
                    if (got != want)
                        fail_msg("xa_gemm_amx_cols_bf16 mr=%d kc=%d: row %d pair %d = 0x%08x, want 0x%08x (A %a, %a)", mr, kc, r,
                                 q, got, want, r < mr && 2 * q < kc ? (double)a[(size_t)(2 * q) * lda + r] : 0.0,
                                 r < mr && 2 * q + 1 < kc ? (double)a[(size_t)(2 * q + 1) * lda + r] : 0.0);
                }
            }
            words += (size_t)32 * kq;
        }
    }
    print_message("xa_gemm_amx_cols_bf16: %zu words, the bits of xa_bf16_round\n", words);
#endif
}

/* bf16 packs of frozen weights (gemm_frozen.c): a product whose B is a registered W (rows, cols)
 * reads W's pack and gives the bits of the same product packing W itself (packs off), and of the
 * single-thread kernel where the split cannot matter; odd K, K past a KC block, N not a multiple of
 * the 32-column panel, N past an NC block, both orientations, on 1 and 2 threads (M and N splits:
 * an N split reads the pack from a panel inside it). */
static void bf16_packed_case(xa_rng *rng, int ta, int tb, int M, int K, int N, float alpha, float beta) {
    const int rows = tb ? N : K, cols = tb ? K : N; /* W: op(B) = W^T (tb) or W */
    const int lda = ta ? M : K, ldc = N + 1;
    float *A = malloc(sizeof(float) * (size_t)M * K), *W = malloc(sizeof(float) * (size_t)rows * cols);
    float *C0 = malloc(sizeof(float) * (size_t)M * ldc), *X[3];
    for (int v = 0; v < 3; v++) X[v] = malloc(sizeof(float) * (size_t)M * ldc);
    xa_rng_fill_normal(rng, A, (size_t)M * K, 0.0f, 1.0f);
    xa_rng_fill_normal(rng, W, (size_t)rows * cols, 0.0f, 1.0f);
    xa_rng_fill_normal(rng, C0, (size_t)M * ldc, 0.0f, 1.0f);
    for (int v = 0; v < 3; v++) memcpy(X[v], C0, sizeof(float) * (size_t)M * ldc);
    assert_int_equal(xa_gemm_frozen_add(W, rows, cols, "W"), XA_STATUS_OK);
    xa_gemm_set_precision(XA_PRECISION_BF16);
    const size_t made = xa_gemm_frozen_made();
    xa_gemm_frozen_set_enabled(0);
    xa_sgemm(ta, tb, M, N, K, alpha, A, lda, W, cols, beta, X[0], ldc);
    assert_true(xa_gemm_frozen_made() == made);
    xa_gemm_frozen_set_enabled(1);
    xa_sgemm(ta, tb, M, N, K, alpha, A, lda, W, cols, beta, X[1], ldc);
    assert_true(xa_gemm_frozen_made() == made + 1);
    assert_true(xa_gemm_frozen_bytes() == xa_gemm_bf16_pack_b_size(K, N) * 4);
    xa_gemm_packed_bf16_best(ta, tb, M, N, K, alpha, A, lda, W, cols, beta, X[2], ldc); /* AMX where it runs */
    if (memcmp(X[0], X[1], sizeof(float) * (size_t)M * ldc))
        fail_msg("bf16 pack %dx%dx%d ta=%d tb=%d threads=%d: not the bits of per-product packing", M, N, K, ta, tb,
                 xa_threads_get());
    /* one thread, or beta 0 / 1 (a tile's epilogue is then exact): the split changes no bit either */
    if ((xa_threads_get() == 1 || beta == 0.0f || beta == 1.0f) && memcmp(X[1], X[2], sizeof(float) * (size_t)M * ldc))
        fail_msg("bf16 pack %dx%dx%d ta=%d tb=%d: not the bits of xa_gemm_packed_bf16_best", M, N, K, ta, tb);
    xa_gemm_set_precision(XA_PRECISION_FP32); /* leaving bf16 frees the packs */
    assert_true(xa_gemm_frozen_bytes() == 0);
    xa_gemm_frozen_remove(W);
    assert_int_equal(xa_gemm_frozen_count(), 0);
    free(A); free(W); free(C0);
    for (int v = 0; v < 3; v++) free(X[v]);
}

/* The K-inner order of the bf16 kernel (products whose C is over 512 KiB and whose K spans
 * blocks, with or without a pack) against its K-outer order: the same product computed in row
 * chunks whose C stays under 512 KiB, which take the other order. Chunks start at multiples of 96
 * rows (of the AVX512-BF16 kernel's 12-row tiles and the AMX kernel's 32), so every micro-tile and
 * its epilogue are the same, and one thread (no split): C must agree bit for bit. */
static void bf16_order_case(xa_rng *rng, int ta, int tb, int M, int K, int N, float alpha, float beta, int packed) {
    const int rows = tb ? N : K, cols = tb ? K : N, lda = ta ? M : K, ldc = N + 1;
    const int chunk = (int)((size_t)512 * 1024 / sizeof(float) / (size_t)N) / 96 * 96;
    assert_true(chunk >= 96 && chunk < M && (size_t)M * N * sizeof(float) > (size_t)512 * 1024);
    float *A = malloc(sizeof(float) * (size_t)M * K), *W = malloc(sizeof(float) * (size_t)rows * cols);
    float *X = malloc(sizeof(float) * (size_t)M * ldc), *Y = malloc(sizeof(float) * (size_t)M * ldc);
    xa_rng_fill_normal(rng, A, (size_t)M * K, 0.0f, 1.0f);
    xa_rng_fill_normal(rng, W, (size_t)rows * cols, 0.0f, 1.0f);
    xa_rng_fill_normal(rng, X, (size_t)M * ldc, 0.0f, 1.0f);
    memcpy(Y, X, sizeof(float) * (size_t)M * ldc);
    if (packed) assert_int_equal(xa_gemm_frozen_add(W, rows, cols, "W"), XA_STATUS_OK);
    xa_gemm_set_precision(XA_PRECISION_BF16);
    xa_sgemm(ta, tb, M, N, K, alpha, A, lda, W, cols, beta, X, ldc);
    for (int r0 = 0; r0 < M; r0 += chunk) {
        int m = M - r0 < chunk ? M - r0 : chunk;
        const float *a = ta ? A + r0 : A + (size_t)r0 * lda;
        xa_sgemm(ta, tb, m, N, K, alpha, a, lda, W, cols, beta, Y + (size_t)r0 * ldc, ldc);
    }
    if (memcmp(X, Y, sizeof(float) * (size_t)M * ldc))
        fail_msg("bf16 %dx%dx%d ta=%d tb=%d packed=%d: the K-inner order differs in bits from the K-outer one",
                 M, N, K, ta, tb, packed);
    xa_gemm_set_precision(XA_PRECISION_FP32);
    if (packed) xa_gemm_frozen_remove(W);
    free(A); free(W); free(X); free(Y);
}

static void test_bf16_k_order(void **state) {
    (void)state;
    if (xa_precision_effective(XA_PRECISION_BF16) != XA_PRECISION_BF16) {
        print_message("no AVX512-BF16 on this CPU: the bf16 kernel's orders not tested\n");
        skip();
    }
    xa_rng rng;
    xa_rng_seed(&rng, 12, 0);
    xa_threads_set(1);
    for (int packed = 0; packed < 2; packed++) {
        for (int t = 0; t < 4; t++) {
            bf16_order_case(&rng, t & 1, t >> 1, 450, 601, 520, -0.7f, 0.5f, packed); /* odd K, edges */
            bf16_order_case(&rng, t & 1, t >> 1, 250, 2049, 700, 1.0f, 1.0f, packed); /* rows of 84 */
        }
    }
}

/* A weight written behind the packs' back: xa_gemm_frozen_verify reports it, and the check
 * (XA_BF16_PACKS_CHECK=1, here xa_gemm_frozen_set_check) repairs it at the next use; products on
 * part of a registered W, fp32 products and the overlap query. */
/* XA_GEMM_TRACE: each product counted and timed under its shape, the report one row a shape, in
 * the table's columns; off again, nothing is reported. */
static void test_gemm_trace(void **state) {
    (void)state;
    float A[6 * 5], B[5 * 4], Bt[4 * 5], C[6 * 4];
    for (int i = 0; i < 30; i++) A[i] = (float)i / 30.0f;
    for (int i = 0; i < 20; i++) B[i] = Bt[i] = 1.0f - (float)i / 20.0f;
    xa_gemm_trace_enable(1);
    assert_true(xa_gemm_trace_on());
    for (int r = 0; r < 3; r++) xa_sgemm(0, 0, 6, 4, 5, 1.0f, A, 5, B, 4, 0.0f, C, 4);
    xa_sgemm(0, 1, 6, 4, 5, 1.0f, A, 5, Bt, 5, 0.0f, C, 4);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(xa_gemm_trace_report(f), 2);
    fclose(f);
    assert_non_null(strstr(buf, ": 4 calls,"));
    assert_non_null(strstr(buf, " | 3 | "));
    assert_non_null(strstr(buf, " | 6 | 4 | 5 | A B | - | xa_sgemm's |"));
    assert_non_null(strstr(buf, " | 6 | 4 | 5 | A B^T | - | xa_sgemm's |"));
    free(buf);
    xa_gemm_trace_enable(0);
    assert_false(xa_gemm_trace_on());
    assert_int_equal(xa_gemm_trace_report(stderr), 0);
}

static void test_bf16_packs(void **state) {
    (void)state;
    if (xa_precision_effective(XA_PRECISION_BF16) != XA_PRECISION_BF16) {
        print_message("no AVX512-BF16 on this CPU: bf16 packs not tested (products stay fp32)\n");
        skip();
    }
    xa_rng rng;
    xa_rng_seed(&rng, 11, 0);
    for (int threads = 1; threads <= 2; threads++) {
        xa_threads_set(threads);
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                bf16_packed_case(&rng, ta, tb, 7, 13, 5, 1.0f, 0.0f);        /* odd K, one partial panel */
                bf16_packed_case(&rng, ta, tb, 45, 301, 61, -0.7f, 0.3f);    /* K past KC, N not of 32 */
                bf16_packed_case(&rng, ta, tb, 200, 517, 70, 1.0f, 1.0f);    /* M split, odd K, 3 blocks */
                bf16_packed_case(&rng, ta, tb, 20, 301, 2100, 0.5f, 0.0f);   /* N split, past NC */
                bf16_packed_case(&rng, ta, tb, 13, 256, 999, 1.0f, 0.25f);   /* one exact KC block */
                /* C past 512 KiB and K past KC: the pack is read in K-inner order (product_pre) */
                bf16_packed_case(&rng, ta, tb, 300, 601, 520, 1.0f, 0.5f);   /* odd K, 3 blocks, edges */
                bf16_packed_case(&rng, ta, tb, 200, 2049, 700, -0.7f, 1.0f); /* row blocks of 84 */
                bf16_packed_case(&rng, ta, tb, 40, 601, 3500, 1.0f, 0.0f);   /* N split, past NC */
            }
        }
    }
    xa_threads_set(1);
    const int R = 70, Cc = 301, M = 9;
    float *W = malloc(sizeof(float) * R * Cc), *A = malloc(sizeof(float) * M * Cc);
    float *Y = malloc(sizeof(float) * M * R), *Z = malloc(sizeof(float) * M * R);
    xa_rng_fill_normal(&rng, W, (size_t)R * Cc, 0.0f, 1.0f);
    xa_rng_fill_normal(&rng, A, (size_t)M * Cc, 0.0f, 1.0f);
    float other[4];
    assert_int_equal(xa_gemm_frozen_add(W, R, Cc, "test.W"), XA_STATUS_OK);
    assert_true(xa_gemm_frozen_overlaps(W + 3, 4) && !xa_gemm_frozen_overlaps(other, sizeof other));
    /* fp32: registered, never packed */
    xa_sgemm(0, 1, M, R, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Y, R);
    assert_true(xa_gemm_frozen_bytes() == 0);
    xa_gemm_set_precision(XA_PRECISION_BF16);
    /* part of W (its first R - 1 rows): not the registered matrix, packed per product */
    size_t made = xa_gemm_frozen_made();
    xa_sgemm(0, 1, M, R - 1, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Y, R);
    assert_true(xa_gemm_frozen_made() == made);
    xa_sgemm(0, 1, M, R, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Y, R); /* packs W^T */
    assert_true(xa_gemm_frozen_made() == made + 1);
    /* forward packs only (XA_BF16_PACKS=forward): dout W packs W per product */
    float *D = malloc(sizeof(float) * M * R), *G = malloc(sizeof(float) * M * Cc);
    xa_rng_fill_normal(&rng, D, (size_t)M * R, 0.0f, 1.0f);
    xa_gemm_frozen_set_enabled(2);
    xa_sgemm(0, 0, M, Cc, R, 1.0f, D, R, W, Cc, 0.0f, G, Cc);
    assert_true(xa_gemm_frozen_made() == made + 1);
    xa_gemm_frozen_set_enabled(1);
    xa_sgemm(0, 0, M, Cc, R, 1.0f, D, R, W, Cc, 0.0f, G, Cc);
    assert_true(xa_gemm_frozen_made() == made + 2);
    xa_gemm_frozen_set_enabled(2); /* frees the W pack, keeps W^T's */
    assert_true(xa_gemm_frozen_bytes() == xa_gemm_bf16_pack_b_size(Cc, R) * 4);
    xa_gemm_frozen_set_enabled(1);
    free(D);
    free(G);
    assert_true(xa_gemm_frozen_verify() == 0);
    W[5 * Cc + 17] += 1.0f; /* behind the cache's back */
    print_message("(an error about test.W follows: expected)\n");
    const size_t stale = xa_gemm_frozen_stale();
    assert_true(xa_gemm_frozen_verify() == 1); /* caught, logged and repaired */
    assert_true(xa_gemm_frozen_stale() == stale + 1);
    xa_sgemm(0, 1, M, R, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Y, R);
    xa_gemm_packed_bf16(0, 1, M, R, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Z, R);
    assert_memory_equal(Y, Z, sizeof(float) * M * R);
    /* the check at every use */
    xa_gemm_frozen_set_check(1);
    W[2 * Cc] -= 3.0f;
    print_message("(an error about test.W follows: expected)\n");
    xa_sgemm(0, 1, M, R, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Y, R);
    assert_true(xa_gemm_frozen_stale() == stale + 2);
    xa_gemm_packed_bf16(0, 1, M, R, Cc, 1.0f, A, Cc, W, Cc, 0.0f, Z, R);
    assert_memory_equal(Y, Z, sizeof(float) * M * R);
    xa_gemm_frozen_set_check(-1);
    xa_gemm_set_precision(XA_PRECISION_FP32);
    xa_gemm_frozen_remove(W);
    assert_int_equal(xa_gemm_frozen_count(), 0);
    free(W); free(A); free(Y); free(Z);
}

/* The register-only peak microbenchmark (peak.c): every path this CPU runs gives a positive,
 * finite rate on one thread and on two; every other path gives 0 and says why. No timing is
 * asserted beyond "positive and finite". */
static void test_peak(void **state) {
    (void)state;
    int ran = 0;
    for (int q = 0; q < XA_PEAK_N_PATHS; q++) {
        const char *why = xa_peak_unavailable((xa_peak_path)q);
        const char *name = xa_peak_path_name((xa_peak_path)q);
        assert_true(strcmp(name, "?") != 0 && strcmp(xa_peak_path_instruction((xa_peak_path)q), "?") != 0);
        double g1 = xa_peak_gflops((xa_peak_path)q, 1, 0.01);
        if (why) {
            assert_true(strlen(why) > 10);
            if (g1 != 0.0) fail_msg("peak %s is skipped (%s) but returned %g", name, why, g1);
            print_message("peak %s skipped: %s\n", name, why);
            continue;
        }
        if (!(g1 > 0.0 && isfinite(g1))) fail_msg("peak %s on 1 thread: %g GFLOP/s, want positive and finite", name, g1);
        double g2 = xa_peak_gflops((xa_peak_path)q, 2, 0.01);
#ifdef XA_HAVE_OPENMP
        if (!(g2 > 0.0 && isfinite(g2))) fail_msg("peak %s on 2 threads: %g GFLOP/s, want positive and finite", name, g2);
#endif
        print_message("peak %s: %.1f GFLOP/s (1 thread), %.1f (2 threads)\n", name, g1, g2);
        ran++;
    }
    assert_string_equal(xa_peak_path_name(XA_PEAK_N_PATHS), "?");
    assert_true(xa_peak_gflops(XA_PEAK_N_PATHS, 1, 0.01) == 0.0);
    assert_non_null(strstr(xa_cpu_info(), "flags:"));
#if defined(__x86_64__) && defined(__GNUC__)
    /* the CPU's own flags, read here: what it has must not be skipped */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) assert_null(xa_peak_unavailable(XA_PEAK_FP32_AVX2));
    if (__builtin_cpu_supports("avx512f")) assert_null(xa_peak_unavailable(XA_PEAK_FP32_AVX512));
#endif
    print_message("%d paths ran on %s\n", ran, xa_cpu_info());
    /* the path of the products: bf16 precision means the AMX kernel where it runs, else the
     * VDPBF16PS one, where there is one */
    if (xa_gemm_set_precision(XA_PRECISION_BF16) == XA_PRECISION_BF16) {
        assert_int_equal(xa_gemm_peak_path(), xa_peak_unavailable(XA_PEAK_BF16_AMX) ? XA_PEAK_BF16_AVX512 : XA_PEAK_BF16_AMX);
    }
    xa_gemm_set_precision(XA_PRECISION_FP32);
    assert_true(xa_gemm_peak_path() == XA_PEAK_FP32_AVX512 || xa_gemm_peak_path() == XA_PEAK_FP32_AVX2);
}

/* xa_linear_row_block: a thread that runs xa_linear_forward on its row blocks inside one parallel
 * region computes exactly what xa_linear_forward over all rows does at that thread count, with
 * the engine in use and with xadapt's own kernel (so both of xa_sgemm's engines are covered);
 * and the block is 0 where xa_sgemm would not split by rows. */
static void test_linear_row_block(void **state) {
    (void)state;
#ifndef XA_HAVE_OPENMP
    skip(); /* no threads: xa_linear_row_block is always 0 */
#else
    xa_rng rng;
    xa_rng_seed(&rng, 41, 2);
    const int shapes[][3] = {{600, 128, 64}, {333, 64, 128}, {1024, 128, 8}, {97, 256, 48}};
    for (int e = 0; e < 2; e++) {
        if (e == 1 && xa_gemm_set_engine("xadapt")) break; /* no kernel of ours on this CPU */
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int N = shapes[si][0], C = shapes[si][1], OC = shapes[si][2];
            float *inp = xt_frandn(&rng, (size_t)N * C, 1.0f), *w = xt_frandn(&rng, (size_t)OC * C, 0.2f);
            float *b = xt_frandn(&rng, (size_t)OC, 0.5f);
            for (int threads = 2; threads <= MANY_THREADS; threads++) {
                xa_threads_set(threads);
                const int blk = xa_linear_row_block(N, &C, &OC, 1);
                assert_true(blk > 0 && blk % 16 == 0);
                float *ref = xt_fzeros((size_t)N * OC), *got = xt_fzeros((size_t)N * OC);
                xa_linear_forward(ref, inp, w, b, N, C, OC);
                const int n_blk = (N + blk - 1) / blk;
                int team = 0;
#pragma omp parallel num_threads(threads)
                {
#pragma omp single
                    team = omp_get_num_threads();
                    for (int k = omp_get_thread_num(); k < n_blk; k += omp_get_num_threads()) {
                        const int r0 = k * blk, nr = N - r0 < blk ? N - r0 : blk;
                        xa_linear_forward(got + (size_t)r0 * OC, inp + (size_t)r0 * C, w, b, nr, C, OC);
                    }
                }
                if (team < 2) continue; /* no active region: nothing to compare */
                for (size_t j = 0; j < (size_t)N * OC; j++)
                    if (memcmp(got + j, ref + j, sizeof(float)))
                        fail_msg("%s: (%d, %d) . (%d, %d), %d threads, blocks of %d rows: element "
                                 "%zu is %.9g, one call gives %.9g", xa_gemm_engine(), N, C, C, OC,
                                 threads, blk, j, (double)got[j], (double)ref[j]);
            }
        }
    }
    xa_gemm_set_engine(NULL);
    xa_threads_set(1);
    const int c = 128, oc = 64, small = 8;
    assert_int_equal(xa_linear_row_block(1024, &c, &oc, 1), 0); /* one thread: no split */
    xa_threads_set(2);
    assert_int_equal(xa_linear_row_block(16, &c, &oc, 1), 0);     /* 16 x 64 x 128 < 2^18 */
    assert_int_equal(xa_linear_row_block(100, &c, &small, 1), 0); /* too small a product */
    const int wide = 4096;
    assert_int_equal(xa_linear_row_block(1024, &c, &wide, 1), 0); /* N < OC: split by columns */
    assert_int_equal(xa_linear_row_block(1024, &c, &oc, 1), 512);
    xa_threads_set(1);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_threads_and_blas_info, xt_teardown),
        cmocka_unit_test_teardown(test_sgemm_vs_ref, xt_teardown),
        cmocka_unit_test(test_bf16_round),
        cmocka_unit_test_teardown(test_sgemm_bf16, xt_teardown),
        cmocka_unit_test_teardown(test_sgemm_amx, xt_teardown),
        cmocka_unit_test_teardown(test_sgemm_amx_pre, xt_teardown),
        cmocka_unit_test_teardown(test_amx_cols_bf16, xt_teardown),
        cmocka_unit_test_teardown(test_peak, xt_teardown),
        cmocka_unit_test_teardown(test_linear_golden, xt_teardown),
        cmocka_unit_test_teardown(test_linear_vs_ref, xt_teardown),
        cmocka_unit_test_teardown(test_linear_row_block, xt_teardown),
        cmocka_unit_test_teardown(test_layernorm_golden, xt_teardown),
        cmocka_unit_test_teardown(test_layernorm_vs_ref, xt_teardown),
        cmocka_unit_test_teardown(test_layernorm_residual, xt_teardown),
        cmocka_unit_test_teardown(test_act_golden, xt_teardown),
        cmocka_unit_test_teardown(test_act_parse, xt_teardown),
        cmocka_unit_test_teardown(test_act_vs_ref_threads, xt_teardown),
        cmocka_unit_test_teardown(test_softmax, xt_teardown),
        cmocka_unit_test_teardown(test_attention_golden, xt_teardown),
        cmocka_unit_test_teardown(test_attention_dropout_golden, xt_teardown),
        cmocka_unit_test_teardown(test_attention_vs_ref, xt_teardown),
        cmocka_unit_test_teardown(test_dropout, xt_teardown),
        cmocka_unit_test_teardown(test_dropout_mask_at, xt_teardown),
        cmocka_unit_test_teardown(test_embedding, xt_teardown),
        cmocka_unit_test_teardown(test_residual_and_blas1, xt_teardown),
        cmocka_unit_test_teardown(test_cross_entropy, xt_teardown),
        cmocka_unit_test_teardown(test_cross_entropy_weighted, xt_teardown),
        cmocka_unit_test_teardown(test_contrastive, xt_teardown),
        cmocka_unit_test_teardown(test_bf16_packs, xt_teardown),
        cmocka_unit_test(test_gemm_trace),
        cmocka_unit_test_teardown(test_bf16_k_order, xt_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
