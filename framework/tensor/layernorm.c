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
 * Rows run in parallel; dw/db are column sums, each thread owning a block of columns, so the
 * results do not depend on the thread count.
 * Not here: RMSNorm, LayerNorm without the affine weight and bias.
 */
#include "tensor/tensor.h"

#include <math.h>

void xa_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 32768)")
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
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
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
