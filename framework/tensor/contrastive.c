/* tensor/contrastive: sentence representations and the in-batch contrastive alignment loss used to
 * give a small encoder a shared multilingual space from parallel text (LaBSE, Feng et al. 2022;
 * the post-pretraining alignment of Pan et al. 2021, "Multilingual BERT Post-Pretraining
 * Alignment"; the symmetric InfoNCE loss of CLIP / dual encoders).
 *
 * Mean pooling over the real tokens of a right-padded batch:
 *     u_b = (1 / len_b) sum_{t < len_b} h[b, t]                         (pads are never read)
 * The loss over n aligned pairs (U_i, V_i), with cosine similarity and scale s = 1 / temperature:
 *     u = U / |U|,  v = V / |V|,  S_ij = s u_i . v_j
 *     L = 1/2 [ 1/n sum_i CE(S_i., i) + 1/n sum_j CE(S_.j, j) ]
 * Every other pair of the batch is a negative. Gradients:
 *     dS = 1/(2n) [ (softmax_rows(S) - I) + (softmax_cols(S) - I) ]
 *     du = s dS v,  dv = s dS^T u,   dU = (du - u (u . du)) / |U|   (the normalisation's Jacobian)
 * Not here: additive margins (LaBSE's AMS), hard negatives, a learned temperature.
 */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

void xa_mean_pool_forward(float *out, const float *h, const int32_t *lens, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        memset(o, 0, (size_t)C * sizeof(float));
        int n = lens[b];
        XA_ASSERT(n >= 1 && n <= T);
        for (int t = 0; t < n; t++) {
            const float *x = h + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) o[c] += x[c];
        }
        float inv = 1.0f / (float)n;
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void xa_mean_pool_backward(float *dh, const float *dout, const int32_t *lens, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        int n = lens[b];
        float inv = 1.0f / (float)n;
        const float *g = dout + (size_t)b * C;
        for (int t = 0; t < n; t++) {
            float *x = dh + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) x[c] += g[c] * inv;
        }
    }
}

/* Row i of a, normalised into out; returns the norm (floored, as F.normalize's eps). */
static double normalise(float *out, const float *a, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (double)a[c] * a[c];
    double norm = sqrt(s);
    if (norm < 1e-12) norm = 1e-12;
    for (int c = 0; c < C; c++) out[c] = (float)(a[c] / norm);
    return norm;
}

float xa_contrastive_loss(float *dU, float *dV, float *acc, float *scratch, const float *U,
                          const float *V, int n, int C, float scale) {
    XA_ASSERT(n >= 1 && C >= 1);
    float *u = scratch;                        /* (n, C) */
    float *v = u + (size_t)n * C;              /* (n, C) */
    double *S = (double *)(void *)(v + (size_t)n * C); /* (n, n) scores, then dS */
    double *nu = S + (size_t)n * n, *nv = nu + n;        /* (n) norms */
    for (int i = 0; i < n; i++) {
        nu[i] = normalise(u + (size_t)i * C, U + (size_t)i * C, C);
        nv[i] = normalise(v + (size_t)i * C, V + (size_t)i * C, C);
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double d = 0.0;
            const float *a = u + (size_t)i * C, *b = v + (size_t)j * C;
            for (int c = 0; c < C; c++) d += (double)a[c] * b[c];
            S[(size_t)i * n + j] = scale * d;
        }
    }
    /* Row and column log-softmax: the loss, the accuracy and (softmax - I) / (2n) into G. */
    double loss = 0.0;
    int hits = 0;
    double *G = nv + n; /* (n, n) */
    for (int i = 0; i < n; i++) { /* rows: U_i retrieves V_j */
        double m = -INFINITY;
        int arg = 0;
        for (int j = 0; j < n; j++) {
            if (S[(size_t)i * n + j] > m) {
                m = S[(size_t)i * n + j];
                arg = j;
            }
        }
        double z = 0.0;
        for (int j = 0; j < n; j++) z += exp(S[(size_t)i * n + j] - m);
        loss += log(z) + m - S[(size_t)i * n + i];
        hits += arg == i;
        for (int j = 0; j < n; j++)
            G[(size_t)i * n + j] = (exp(S[(size_t)i * n + j] - m) / z - (i == j)) / (2.0 * n);
    }
    for (int j = 0; j < n; j++) { /* columns: V_j retrieves U_i */
        double m = -INFINITY;
        int arg = 0;
        for (int i = 0; i < n; i++) {
            if (S[(size_t)i * n + j] > m) {
                m = S[(size_t)i * n + j];
                arg = i;
            }
        }
        double z = 0.0;
        for (int i = 0; i < n; i++) z += exp(S[(size_t)i * n + j] - m);
        loss += log(z) + m - S[(size_t)j * n + j];
        hits += arg == j;
        for (int i = 0; i < n; i++)
            G[(size_t)i * n + j] += (exp(S[(size_t)i * n + j] - m) / z - (i == j)) / (2.0 * n);
    }
    if (acc) *acc = (float)hits / (float)(2 * n);
    if (dU || dV) {
        for (int i = 0; i < n; i++) { /* du_i = s sum_j G_ij v_j, then through the normalisation */
            const float *ui = u + (size_t)i * C, *vi = v + (size_t)i * C;
            for (int side = 0; side < 2; side++) {
                float *dst = side == 0 ? dU : dV;
                if (!dst) continue;
                const float *self = side == 0 ? ui : vi;
                const float *other = side == 0 ? v : u;
                double norm = side == 0 ? nu[i] : nv[i];
                double dot = 0.0;
                float *d = dst + (size_t)i * C;
                for (int c = 0; c < C; c++) {
                    double g = 0.0;
                    for (int j = 0; j < n; j++) {
                        double w = side == 0 ? G[(size_t)i * n + j] : G[(size_t)j * n + i];
                        g += w * other[(size_t)j * C + c];
                    }
                    g *= scale;
                    d[c] = (float)g; /* du, the projection follows */
                    dot += g * self[c];
                }
                for (int c = 0; c < C; c++) d[c] = (float)((d[c] - self[c] * dot) / norm);
            }
        }
    }
    return (float)(loss / (2.0 * n));
}

size_t xa_contrastive_scratch_bytes(int n, int C) {
    return 2 * (size_t)n * C * sizeof(float) + ((size_t)2 * n * n + 2 * (size_t)n) * sizeof(double) +
           sizeof(double);
}
