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
 * Forward runs blocks of 8 rows whose sums interleave (see ln_block), and can form the residual
 * sum before the LayerNorm in the same pass (xa_layernorm_residual_forward).
 * Rows run in parallel; dw/db are column sums, each thread owning a block of columns, so the
 * results do not depend on the thread count.
 * Not here: RMSNorm, LayerNorm without the affine weight and bias.
 */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

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

void xa_layernorm_residual_forward(float *out, float *ab, float *sum, float *mean, float *rstd,
                                   const float *a, const float *b, const float *c,
                                   const float *weight, const float *bias, int N, int C, float eps) {
    XA_ASSERT(N >= 0 && C >= 1 && (b || !c));
    const int n_blk = (N + LN_BLOCK - 1) / LN_BLOCK;
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 32768) schedule(static)")
    for (int blk = 0; blk < n_blk; blk++) {
        const int n0 = blk * LN_BLOCK, nr = N - n0 < LN_BLOCK ? N - n0 : LN_BLOCK;
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
        float *mo = mean ? mean + n0 : NULL, *ro = rstd ? rstd + n0 : NULL;
        if (nr == LN_BLOCK) ln_block(out + o, mo, ro, x, weight, bias, C, eps);
        else ln_rows(out + o, mo, ro, x, weight, bias, nr, C, eps);
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
