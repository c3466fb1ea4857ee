/* tensor/layernorm: LayerNorm over the last dimension (Ba, Kiros, Hinton 2016; PyTorch
 * nn.LayerNorm with elementwise affine).
 *
 * Forward, per row x (C):  mu = mean(x), var = mean((x - mu)^2) (biased), rstd = 1/sqrt(var + eps),
 *                          xhat = (x - mu) rstd,  y = xhat * w + b.
 * Backward (llm.c layernorm_backward): with g = dy * w,
 *     dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *     dw += sum_rows dy * xhat,  db += sum_rows dy.
 * The mean and variance use two passes per row, accumulated in double: rows are short
 * (C <= a few thousand) and this keeps the result close to PyTorch's Welford.
 * Forward runs blocks of 8 rows whose sums interleave (see ln_block); built with AVX-512, blocks of
 * 16 whose columns are transposed into register lanes (ln_block16: two vector chains of 8 rows,
 * the transposed columns kept for the variance pass; 1024 x 128 on one thread 65 -> 50 us, 1024
 * x 768 370 -> 270 us). It can form the residual sum before the LayerNorm in the same pass
 * (xa_layernorm_residual_forward).
 * Rows run in parallel; dw/db are column sums, each thread owning a block of columns, so the
 * results do not depend on the thread count.
 * Not here: RMSNorm, LayerNorm without the affine weight and bias.
 */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* The per-row statistics are sequential double sums, so a row's additions form one dependency
 * chain (about 4 cycles each). The forward therefore works on blocks of LN_BLOCK rows and runs
 * their chains side by side: every row still adds its elements in index order, so the results are
 * bit for bit those of the row-at-a-time loop (ln_rows below, which the tail rows use), only
 * LN_BLOCK times less latency-bound. */
#define LN_BLOCK 8

/* y = LN(x) for nr rows (one row at a time); y may equal x. */
static void ln_rows(float *y, float *mean, float *rstd, const float *x, const float *weight,
                    const float *bias, int nr, int C, float eps) {
    for (int k = 0; k < nr; k++) {
        const float *xr = x + (size_t)k * C;
        float *yr = y + (size_t)k * C;
        double s = 0.0;
        for (int c = 0; c < C; c++)
            s += xr[c];
        float m = (float)(s / C);
        double v = 0.0;
        for (int c = 0; c < C; c++) {
            float d = xr[c] - m;
            v += (double)d * d;
        }
        float r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int c = 0; c < C; c++)
            yr[c] = (xr[c] - m) * r * weight[c] + bias[c];
        if (mean) mean[k] = m;
        if (rstd) rstd[k] = r;
    }
}

/* ln_rows for exactly LN_BLOCK rows, the rows' chains interleaved. */
static void ln_block(float *y, float *mean, float *rstd, const float *x, const float *weight,
                     const float *bias, int C, float eps) {
    double s[LN_BLOCK] = {0}, v[LN_BLOCK] = {0};
    float m[LN_BLOCK], r[LN_BLOCK];
    for (int c = 0; c < C; c++)
        for (int k = 0; k < LN_BLOCK; k++)
            s[k] += x[(size_t)k * C + c];
    for (int k = 0; k < LN_BLOCK; k++)
        m[k] = (float)(s[k] / C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < LN_BLOCK; k++) {
            float d = x[(size_t)k * C + c] - m[k];
            v[k] += (double)d * d;
        }
    for (int k = 0; k < LN_BLOCK; k++)
        r[k] = (float)(1.0 / sqrt(v[k] / C + (double)eps));
    for (int k = 0; k < LN_BLOCK; k++) {
        const float *xr = x + (size_t)k * C;
        float *yr = y + (size_t)k * C;
        const float mk = m[k], rk = r[k];
        for (int c = 0; c < C; c++)
            yr[c] = (xr[c] - mk) * rk * weight[c] + bias[c];
        if (mean) mean[k] = mk;
        if (rstd) rstd[k] = rk;
    }
}

#if defined(__AVX512F__)
/* Rows r[0..7] (8 floats each) into columns: r[j] = (row 0 col j, ..., row 7 col j). */
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);     /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
    }
    for (int k = 0; k < 2; k++) {
        u[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

/* Columns c..c+7 of 16 rows (x, row stride C) transposed: a[j] = column c + j of rows 0-7, b[j]
 * of rows 8-15. */
static inline void load_columns16(__m256 a[8], __m256 b[8], const float *x, int C, int c) {
    for (int k = 0; k < 8; k++) {
        a[k] = _mm256_loadu_ps(x + (size_t)k * C + c);
        b[k] = _mm256_loadu_ps(x + (size_t)(8 + k) * C + c);
    }
    transpose8(a);
    transpose8(b);
}

/* ln_rows for exactly 16 rows, hot loop: two groups of 8 rows, whose columns are transposed into
 * the 8 double lanes of a register, so each row's sum is one lane of a vector chain (two
 * independent chains), still in index order; the elementwise steps are the same float
 * operations as ln_rows (no fused multiply-adds: the build does not contract), so every output
 * is ln_rows' bit for bit. x may equal y. */
#define LN_KEEP_C 1024 /* 64 KB of transposed columns on the stack at most */

static void ln_block16(float *y, float *mean, float *rstd, const float *x, const float *weight,
                       const float *bias, int C, float eps) {
    enum { R = 16 };
    double s[R], v[R];
    float m[R], r[R];
    const int C8 = C / 8 * 8;
    /* the transposed columns, kept for the variance pass when they fit (C <= LN_KEEP_C) */
    __m256 keep[2 * LN_KEEP_C];
    const int kept = C8 <= LN_KEEP_C;
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int c = 0; c < C8; c += 8) {
        __m256 a[8], b[8];
        load_columns16(a, b, x, C, c);
        for (int j = 0; j < 8; j++) {
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(a[j]));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(b[j]));
            if (kept) {
                keep[2 * (c + j)] = a[j];
                keep[2 * (c + j) + 1] = b[j];
            }
        }
    }
    _mm512_storeu_pd(s, s0);
    _mm512_storeu_pd(s + 8, s1);
    for (int k = 0; k < R; k++) {
        for (int c = C8; c < C; c++)
            s[k] += x[(size_t)k * C + c];
        m[k] = (float)(s[k] / C);
    }
    const __m256 m0 = _mm256_loadu_ps(m), m1 = _mm256_loadu_ps(m + 8);
    __m512d v0 = _mm512_setzero_pd(), v1 = _mm512_setzero_pd();
    for (int c = 0; c < C8; c += 8) {
        __m256 a[8], b[8];
        if (kept) {
            for (int j = 0; j < 8; j++) {
                a[j] = keep[2 * (c + j)];
                b[j] = keep[2 * (c + j) + 1];
            }
        } else {
            load_columns16(a, b, x, C, c);
        }
        for (int j = 0; j < 8; j++) {
            const __m512d da = _mm512_cvtps_pd(_mm256_sub_ps(a[j], m0));
            const __m512d db = _mm512_cvtps_pd(_mm256_sub_ps(b[j], m1));
            v0 = _mm512_add_pd(v0, _mm512_mul_pd(da, da));
            v1 = _mm512_add_pd(v1, _mm512_mul_pd(db, db));
        }
    }
    _mm512_storeu_pd(v, v0);
    _mm512_storeu_pd(v + 8, v1);
    for (int k = 0; k < R; k++) {
        for (int c = C8; c < C; c++) {
            float d = x[(size_t)k * C + c] - m[k];
            v[k] += (double)d * d;
        }
        r[k] = (float)(1.0 / sqrt(v[k] / C + (double)eps));
    }
    const int C16 = C / 16 * 16;
    for (int k = 0; k < R; k++) {
        const float *xr = x + (size_t)k * C;
        float *yr = y + (size_t)k * C;
        const float mk = m[k], rk = r[k];
        const __m512 vm = _mm512_set1_ps(mk), vr = _mm512_set1_ps(rk);
        int c = 0;
        for (; c < C16; c += 16) {
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + c), vm), vr);
            t = _mm512_add_ps(_mm512_mul_ps(t, _mm512_loadu_ps(weight + c)), _mm512_loadu_ps(bias + c));
            _mm512_storeu_ps(yr + c, t);
        }
        for (; c < C; c++)
            yr[c] = (xr[c] - mk) * rk * weight[c] + bias[c];
        if (mean) mean[k] = mk;
        if (rstd) rstd[k] = rk;
    }
}
#define LN_BLOCK16 1
#else
#define LN_BLOCK16 0
#endif

/* nr <= 16 rows: 16 side by side, else 8 side by side, the rest one at a time; same bits. */
static void ln_some(float *y, float *mean, float *rstd, const float *x, const float *weight,
                    const float *bias, int nr, int C, float eps) {
#if LN_BLOCK16
    if (nr == 16) {
        ln_block16(y, mean, rstd, x, weight, bias, C, eps);
        return;
    }
#endif
    int k = 0;
    for (; k + LN_BLOCK <= nr; k += LN_BLOCK)
        ln_block(y + (size_t)k * C, mean ? mean + k : NULL, rstd ? rstd + k : NULL,
                 x + (size_t)k * C, weight, bias, C, eps);
    if (k < nr)
        ln_rows(y + (size_t)k * C, mean ? mean + k : NULL, rstd ? rstd + k : NULL,
                x + (size_t)k * C, weight, bias, nr - k, C, eps);
}

/* t = a + b (+ c) over n elements; ab (may be NULL) gets a + b. Written as xa_residual_forward
 * writes it, so the sums are the same floats. t may equal a or b. */
static void add_rows(float *t, float *ab, const float *a, const float *b, const float *c, size_t n) {
    if (!b) {
        if (t != a) memcpy(t, a, n * sizeof(float));
        return;
    }
    if (!c) {
        for (size_t i = 0; i < n; i++)
            t[i] = a[i] + b[i];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const float u = a[i] + b[i];
        if (ab) ab[i] = u;
        t[i] = u + c[i];
    }
}

/* Rows per parallel block of the forward: what ln_some runs side by side. */
#define LN_ROWS (LN_BLOCK16 ? 16 : LN_BLOCK)

void xa_layernorm_residual_forward(float *out, float *ab, float *sum, float *mean, float *rstd,
                                   const float *a, const float *b, const float *c,
                                   const float *weight, const float *bias, int N, int C, float eps) {
    XA_ASSERT(N >= 0 && C >= 1 && (b || !c));
    const int n_blk = (N + LN_ROWS - 1) / LN_ROWS;
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 32768) schedule(static)")
    for (int blk = 0; blk < n_blk; blk++) {
        const int n0 = blk * LN_ROWS, nr = N - n0 < LN_ROWS ? N - n0 : LN_ROWS;
        const size_t o = (size_t)n0 * C, n = (size_t)nr * C;
        /* the LN input: saved in sum, or formed in out and normalised in place */
        float *t = sum ? sum + o : out + o;
        const float *x = a + o;
        if (b) {
            add_rows(t, ab ? ab + o : NULL, a + o, b + o, c ? c + o : NULL, n);
            x = t;
        } else if (sum) {
            memcpy(t, x, n * sizeof(float));
        }
        ln_some(out + o, mean ? mean + n0 : NULL, rstd ? rstd + n0 : NULL, x, weight, bias, nr, C,
                eps);
    }
}

void xa_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps) {
    xa_layernorm_residual_forward(out, NULL, NULL, mean, rstd, inp, NULL, NULL, weight, bias, N, C,
                                  eps);
}

void xa_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C) {
    int nt = xa_threads_get();
    if (dinp) {
        XA_OMP("omp parallel for num_threads(nt) if((size_t)N * C > 32768)")
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            const float *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            float sum_g = 0.0f, sum_gx = 0.0f;
            for (int c = 0; c < C; c++) {
                float g = dy[c] * weight[c];
                sum_g += g;
                sum_gx += g * (x[c] - m) * r;
            }
            float mean_g = sum_g / C, mean_gx = sum_gx / C;
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * r;
                dx[c] += r * (dy[c] * weight[c] - mean_g - xhat * mean_gx);
            }
        }
    }
    if (dweight || dbias) {
        int blk = (C + nt - 1) / nt;
        blk = blk < 64 ? 64 : blk;
        int n_blk = (C + blk - 1) / blk;
        XA_OMP("omp parallel for num_threads(nt) if((size_t)N * C > 32768)")
        for (int b = 0; b < n_blk; b++) {
            int c0 = b * blk, c1 = c0 + blk < C ? c0 + blk : C;
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C;
                const float *dy = dout + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                for (int c = c0; c < c1; c++) {
                    if (dweight) dweight[c] += dy[c] * (x[c] - m) * r;
                    if (dbias) dbias[c] += dy[c];
                }
            }
        }
    }
}

void xa_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++)
            m += x[c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (x[c] - m) * (x[c] - m);
        v /= C;
        double r = 1.0 / sqrt(v + eps);
        for (int c = 0; c < C; c++) {
            out[(size_t)n * C + c] = (float)((x[c] - m) * r * weight[c] + bias[c]);
        }
        if (mean) mean[n] = (float)m;
        if (rstd) rstd[n] = (float)r;
    }
}

void xa_layernorm_residual_forward_ref(float *out, float *ab, float *sum, float *mean, float *rstd,
                                       const float *a, const float *b, const float *c,
                                       const float *weight, const float *bias, int N, int C,
                                       float eps) {
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < C; j++) {
            const size_t i = (size_t)n * C + j;
            float t = a[i];
            if (b) t = t + b[i];
            if (c) {
                if (ab) ab[i] = t;
                t = t + c[i];
            }
            if (sum) sum[i] = t;
            out[i] = t; /* normalised in place below */
        }
    }
    xa_layernorm_forward_ref(out, mean, rstd, out, weight, bias, N, C, eps);
}

void xa_layernorm_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        double sum_g = 0.0, sum_gx = 0.0;
        for (int c = 0; c < C; c++) {
            double xhat = ((double)x[c] - mean[n]) * rstd[n];
            sum_g += (double)dy[c] * weight[c];
            sum_gx += (double)dy[c] * weight[c] * xhat;
            if (dweight) dweight[c] += (float)(dy[c] * xhat);
            if (dbias) dbias[c] += dy[c];
        }
        if (!dinp) continue;
        for (int c = 0; c < C; c++) {
            double xhat = ((double)x[c] - mean[n]) * rstd[n];
            double g = (double)dy[c] * weight[c];
            dinp[(size_t)n * C + c] += (float)(rstd[n] * (g - sum_g / C - xhat * sum_gx / C));
        }
    }
}
