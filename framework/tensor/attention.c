/* tensor/attention: row softmax and the multi-head self-attention core of a BERT / XLM-R layer
 * (Vaswani et al. 2017, sec. 3.2; HF BertSelfAttention between the Q/K/V projections and the
 * output dense).
 *
 * Per batch row b and head h, with L = lens[b] valid (left-aligned) tokens and s = 1/sqrt(HS):
 *     S  = s Q K^T                  (L, L)  only the valid block is computed
 *     P  = softmax_rows(S)          keys >= L get exactly 0, as HF's additive dtype-min mask
 *     Pd = P * keep / (1 - p)       dropout on the probabilities (HF attention_probs_dropout)
 *     ctx = Pd V                    (L, HS) written into the head's columns of (B, T, C)
 * Backward:
 *     dV += Pd^T dctx,  dPd = dctx V^T,  dP = dPd * keep / (1 - p),
 *     dS = P * (dP - rowsum(dP * P)),  dQ += s dS K,  dK += s dS^T Q.
 * Padded query rows produce nothing and receive nothing: no valid position attends to a padded key,
 * so their values can never reach a valid output (the loss ignores padded outputs).
 *
 * Parallelism: the (b, h) blocks are independent (each writes its own columns of ctx, dq, dk, dv
 * and its own block of att and scratch); one block per OpenMP thread, each product a serial sgemm.
 * Not here: causal masks, relative position biases, fused flash-style tiling (T <= 512 here).
 */
#include "tensor/tensor.h"
#include "tensor/fastmath.h"

#include <math.h>
#include <string.h>

/* ---- softmax ---- */

static void softmax_row(float *y, const float *x, int C) {
    float mx = x[0];
    for (int c = 1; c < C; c++)
        mx = x[c] > mx ? x[c] : mx;
    float sum = 0.0f;
    XA_OMP("omp simd reduction(+:sum)")
    for (int c = 0; c < C; c++) {
        y[c] = xa_fast_expf(x[c] - mx);
        sum += y[c];
    }
    float inv = 1.0f / sum;
    for (int c = 0; c < C; c++)
        y[c] *= inv;
}

/* dx += y * (dy - sum(dy * y)) */
static void softmax_row_backward(float *dx, const float *dy, const float *y, int C) {
    float dot = 0.0f;
    for (int c = 0; c < C; c++)
        dot += dy[c] * y[c];
    for (int c = 0; c < C; c++)
        dx[c] += y[c] * (dy[c] - dot);
}

void xa_softmax_forward(float *out, const float *inp, int N, int C) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 32768)")
    for (int n = 0; n < N; n++)
        softmax_row(out + (size_t)n * C, inp + (size_t)n * C, C);
}

void xa_softmax_backward(float *dinp, const float *dout, const float *out, int N, int C) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 32768)")
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        softmax_row_backward(dinp + o, dout + o, out + o, C);
    }
}

void xa_softmax_forward_ref(float *out, const float *inp, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double mx = x[0], sum = 0.0;
        for (int c = 1; c < C; c++)
            mx = x[c] > mx ? x[c] : mx;
        for (int c = 0; c < C; c++)
            sum += exp(x[c] - mx);
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = (float)(exp(x[c] - mx) / sum);
    }
}

void xa_softmax_backward_ref(float *dinp, const float *dout, const float *out, int N, int C) {
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++)
            dot += (double)dout[o + c] * out[o + c];
        for (int c = 0; c < C; c++)
            dinp[o + c] += (float)(out[o + c] * (dout[o + c] - dot));
    }
}

/* ---- attention ---- */

static int valid_len(const int32_t *lens, int b, int T) {
    if (!lens) return T;
    XA_ASSERT(lens[b] >= 0 && lens[b] <= T);
    return lens[b];
}

/* dst = src * keep * inv_keep over the valid (L, L) block of a (T, T) block. */
static void apply_keep(float *dst, const float *src, const uint8_t *keep, float inv_keep, int L,
                       int T) {
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < L; j++) {
            size_t o = (size_t)i * T + j;
            dst[o] = keep[o] ? src[o] * inv_keep : 0.0f;
        }
    }
}

void xa_attention_forward(float *ctx, float *att, float *scratch, const float *q, const float *k,
                          const float *v, const int32_t *lens, const uint8_t *keep, float p, int B,
                          int T, int C, int NH) {
    XA_ASSERT(NH > 0 && C % NH == 0);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    const int dropout = keep != NULL && p > 0.0f;
    XA_ASSERT(!dropout || (scratch != NULL && p < 1.0f));
    const float inv_keep = dropout ? 1.0f / (1.0f - p) : 1.0f;
    const size_t TT = (size_t)T * T;

    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(B * NH > 1) schedule(dynamic, 1)")
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        int L = valid_len(lens, b, T);
        size_t row0 = (size_t)b * T * C + (size_t)h * HS; /* (b, 0, h*HS) in (B, T, C) */
        float *P = att + (size_t)bh * TT;
        float *ctx_h = ctx + row0;
        /* S = s Q K^T into the valid block, then softmax in place; zero the rest of the block */
        xa_sgemm(0, 1, L, L, HS, scale, q + row0, C, k + row0, C, 0.0f, P, T);
        for (int i = 0; i < L; i++) {
            float *row = P + (size_t)i * T;
            softmax_row(row, row, L);
            memset(row + L, 0, sizeof(float) * (size_t)(T - L));
        }
        memset(P + (size_t)L * T, 0, sizeof(float) * (size_t)(T - L) * T);
        const float *Pd = P;
        if (dropout) {
            float *S = scratch + (size_t)bh * TT;
            apply_keep(S, P, keep + (size_t)bh * TT, inv_keep, L, T);
            Pd = S;
        }
        xa_sgemm(0, 0, L, HS, L, 1.0f, Pd, T, v + row0, C, 0.0f, ctx_h, C);
        for (int i = L; i < T; i++)
            memset(ctx_h + (size_t)i * C, 0, sizeof(float) * (size_t)HS);
    }
}

void xa_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dctx,
                           const float *att, const float *q, const float *k, const float *v,
                           const int32_t *lens, const uint8_t *keep, float p, int B, int T, int C,
                           int NH) {
    XA_ASSERT(NH > 0 && C % NH == 0 && scratch != NULL);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    const int dropout = keep != NULL && p > 0.0f;
    const float inv_keep = dropout ? 1.0f / (1.0f - p) : 1.0f;
    const size_t TT = (size_t)T * T;

    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(B * NH > 1) schedule(dynamic, 1)")
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH;
        int L = valid_len(lens, b, T);
        if (L == 0) continue;
        size_t row0 = (size_t)b * T * C + (size_t)(bh % NH) * HS;
        const float *P = att + (size_t)bh * TT;
        const uint8_t *kp = dropout ? keep + (size_t)bh * TT : NULL;
        float *S = scratch + (size_t)bh * TT;
        const float *dctx_h = dctx + row0;
        if (dv) {
            const float *Pd = P;
            if (dropout) {
                apply_keep(S, P, kp, inv_keep, L, T);
                Pd = S;
            }
            xa_sgemm(1, 0, L, HS, L, 1.0f, Pd, T, dctx_h, C, 1.0f, dv + row0, C);
        }
        if (!dq && !dk) continue;
        /* dP = dctx V^T (through the dropout), then dS = P * (dP - rowsum(dP * P)) in place */
        xa_sgemm(0, 1, L, L, HS, 1.0f, dctx_h, C, v + row0, C, 0.0f, S, T);
        for (int i = 0; i < L; i++) {
            float *ds = S + (size_t)i * T;
            const float *pr = P + (size_t)i * T;
            if (dropout) {
                const uint8_t *kr = kp + (size_t)i * T;
                for (int j = 0; j < L; j++)
                    ds[j] = kr[j] ? ds[j] * inv_keep : 0.0f;
            }
            float dot = 0.0f;
            for (int j = 0; j < L; j++)
                dot += ds[j] * pr[j];
            for (int j = 0; j < L; j++)
                ds[j] = pr[j] * (ds[j] - dot);
        }
        if (dq) xa_sgemm(0, 0, L, HS, L, scale, S, T, k + row0, C, 1.0f, dq + row0, C);
        if (dk) xa_sgemm(1, 0, L, HS, L, scale, S, T, q + row0, C, 1.0f, dk + row0, C);
    }
}

/* ---- reference twins: direct loops in double, no sgemm ---- */

void xa_attention_forward_ref(float *ctx, float *att, float *scratch, const float *q,
                              const float *k, const float *v, const int32_t *lens,
                              const uint8_t *keep, float p, int B, int T, int C, int NH) {
    (void)scratch;
    XA_ASSERT(NH > 0 && C % NH == 0);
    const int HS = C / NH;
    const double scale = 1.0 / sqrt((double)HS);
    const int dropout = keep != NULL && p > 0.0f;
    const double inv_keep = dropout ? 1.0 / (1.0 - (double)p) : 1.0;
    for (int b = 0; b < B; b++) {
        int L = valid_len(lens, b, T);
        for (int h = 0; h < NH; h++) {
            size_t bh = (size_t)b * NH + h;
            for (int i = 0; i < T; i++) {
                float *P = att + (bh * T + i) * T;
                float *out = ctx + ((size_t)b * T + i) * C + (size_t)h * HS;
                for (int j = 0; j < T; j++)
                    P[j] = 0.0f;
                for (int d = 0; d < HS; d++)
                    out[d] = 0.0f;
                if (i >= L) continue;
                const float *qi = q + ((size_t)b * T + i) * C + (size_t)h * HS;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < L; j++) {
                    const float *kj = k + ((size_t)b * T + j) * C + (size_t)h * HS;
                    double acc = 0.0;
                    for (int d = 0; d < HS; d++)
                        acc += (double)qi[d] * kj[d];
                    P[j] = (float)(acc * scale);
                    mx = P[j] > mx ? P[j] : mx;
                }
                for (int j = 0; j < L; j++)
                    sum += exp(P[j] - mx);
                for (int j = 0; j < L; j++)
                    P[j] = (float)(exp(P[j] - mx) / sum);
                for (int d = 0; d < HS; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < L; j++) {
                        double pd = P[j];
                        if (dropout) pd = keep[(bh * T + i) * T + j] ? pd * inv_keep : 0.0;
                        acc += pd * v[((size_t)b * T + j) * C + (size_t)h * HS + d];
                    }
                    out[d] = (float)acc;
                }
            }
        }
    }
}

void xa_attention_backward_ref(float *dq, float *dk, float *dv, float *scratch, const float *dctx,
                               const float *att, const float *q, const float *k, const float *v,
                               const int32_t *lens, const uint8_t *keep, float p, int B, int T,
                               int C, int NH) {
    XA_ASSERT(NH > 0 && C % NH == 0 && scratch != NULL);
    const int HS = C / NH;
    const double scale = 1.0 / sqrt((double)HS);
    const int dropout = keep != NULL && p > 0.0f;
    const double inv_keep = dropout ? 1.0 / (1.0 - (double)p) : 1.0;
    for (int b = 0; b < B; b++) {
        int L = valid_len(lens, b, T);
        for (int h = 0; h < NH; h++) {
            size_t bh = (size_t)b * NH + h;
            for (int i = 0; i < L; i++) {
                const float *P = att + (bh * T + i) * T;
                const uint8_t *kr = dropout ? keep + (bh * T + i) * T : NULL;
                float *dS = scratch + (bh * T + i) * T;
                const float *g = dctx + ((size_t)b * T + i) * C + (size_t)h * HS;
                double dot = 0.0;
                for (int j = 0; j < L; j++) {
                    const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * HS;
                    double m = kr ? (kr[j] ? inv_keep : 0.0) : 1.0;
                    double dp = 0.0;
                    for (int d = 0; d < HS; d++) {
                        dp += (double)g[d] * vj[d];
                        if (dv)
                            dv[((size_t)b * T + j) * C + (size_t)h * HS + d] +=
                                (float)(P[j] * m * g[d]);
                    }
                    dS[j] = (float)(dp * m);
                    dot += dp * m * P[j];
                }
                for (int j = 0; j < L; j++)
                    dS[j] = (float)(P[j] * (dS[j] - dot));
                for (int j = 0; j < L; j++) {
                    for (int d = 0; d < HS; d++) {
                        size_t oi = ((size_t)b * T + i) * C + (size_t)h * HS + d;
                        size_t oj = ((size_t)b * T + j) * C + (size_t)h * HS + d;
                        if (dq) dq[oi] += (float)(scale * dS[j] * k[oj]);
                        if (dk) dk[oj] += (float)(scale * dS[j] * q[oi]);
                    }
                }
            }
        }
    }
}
