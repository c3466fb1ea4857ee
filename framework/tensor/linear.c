/* tensor/linear: the fully connected layer in PyTorch's nn.Linear layout, W (OC, C).
 *
 *     out  = inp W^T + b            (N,OC) = (N,C)(C,OC)
 *     dinp += dout W                (N,C)  = (N,OC)(OC,C)
 *     dW   += dout^T inp            (OC,C) = (OC,N)(N,C)
 *     db   += sum_n dout[n, :]
 *
 * All three products go through xa_sgemm. The bias is broadcast into `out` first and the product
 * accumulates onto it (beta = 1), which saves a pass over the output. A frozen layer (dW NULL)
 * costs one product in backward instead of two.
 * Not here: fused bias + activation epilogues (callers run xa_act_forward on the output), reduced
 * precision weights.
 */
#include "tensor/tensor.h"

void xa_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int C, int OC) {
    float beta = 0.0f;
    if (bias) {
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * OC > 65536)")
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++)
                o[j] = bias[j];
        }
        beta = 1.0f;
    }
    xa_sgemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

int xa_linear_row_block(int N, const int *C, const int *OC, int n) {
    int blk = 0;
    for (int i = 0; i < n; i++) { /* every product of the chain split at the same rows */
        int b = xa_sgemm_row_block(N, OC[i], C[i]);
        if (!b || (i && b != blk)) return 0;
        blk = b;
    }
    return blk;
}

void xa_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC) {
    if (dinp) xa_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) xa_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        /* Column sums: each thread owns a block of columns and walks all rows, so no reduction
         * is needed and the result does not depend on the thread count. */
        int nt = xa_threads_get();
        int blk = (OC + nt - 1) / nt;
        blk = blk < 64 ? 64 : blk;
        int n_blk = (OC + blk - 1) / blk;
        XA_OMP("omp parallel for num_threads(nt) if((size_t)N * OC > 65536)")
        for (int b = 0; b < n_blk; b++) {
            int j0 = b * blk, j1 = j0 + blk < OC ? j0 + blk : OC;
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                for (int j = j0; j < j1; j++)
                    dbias[j] += d[j];
            }
        }
    }
}

void xa_linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int C, int OC) {
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OC; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) {
                acc += (double)inp[(size_t)n * C + c] * weight[(size_t)o * C + c];
            }
            out[(size_t)n * OC + o] = (float)acc;
        }
    }
}

void xa_linear_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC) {
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OC; o++) {
            float d = dout[(size_t)n * OC + o];
            if (dbias) dbias[o] += d;
            for (int c = 0; c < C; c++) {
                if (dinp) dinp[(size_t)n * C + c] += d * weight[(size_t)o * C + c];
                if (dweight) dweight[(size_t)o * C + c] += d * inp[(size_t)n * C + c];
            }
        }
    }
}
