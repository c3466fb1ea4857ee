/* tensor/elementwise: embedding lookup (a row gather) and its scatter-add backward, the residual
 * add, and the small BLAS-1 helpers (axpy, scale) the other modules accumulate gradients with.
 *
 * The embedding backward splits the columns of the table over threads: every thread walks all ids
 * but only touches its own columns, so repeated ids need no atomics and the sums are added in id
 * order for any thread count. Not here: sparse gradients, padding_idx handling (HF zeroes the pad
 * row's gradient only when training the embeddings from scratch with padding_idx set; callers that
 * want it skip those ids).
 */
#include "tensor/tensor.h"

#include <string.h>

void xa_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C, int V) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 65536)")
    for (int n = 0; n < N; n++) {
        XA_ASSERT(ids[n] >= 0 && ids[n] < V);
        memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, sizeof(float) * (size_t)C);
    }
}

void xa_embedding_add_forward(float *out, const int32_t *ids, const float *table, int N, int C,
                              int V) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)N * C > 65536)")
    for (int n = 0; n < N; n++) {
        XA_ASSERT(ids[n] >= 0 && ids[n] < V);
        float *o = out + (size_t)n * C;
        const float *row = table + (size_t)ids[n] * C;
        for (int c = 0; c < C; c++)
            o[c] += row[c];
    }
}

void xa_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C,
                           int V) {
    if (!dtable) return;
    int nt = xa_threads_get();
    int blk = (C + nt - 1) / nt;
    blk = blk < 64 ? 64 : blk;
    int n_blk = (C + blk - 1) / blk;
    XA_OMP("omp parallel for num_threads(nt) if((size_t)N * C > 65536)")
    for (int b = 0; b < n_blk; b++) {
        int c0 = b * blk, c1 = c0 + blk < C ? c0 + blk : C;
        for (int n = 0; n < N; n++) {
            XA_ASSERT(ids[n] >= 0 && ids[n] < V);
            float *row = dtable + (size_t)ids[n] * C;
            const float *d = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++)
                row[c] += d[c];
        }
    }
}

void xa_residual_forward(float *out, const float *a, const float *b, size_t n) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 65536) schedule(static)")
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void xa_residual_backward(float *da, float *db, const float *dout, size_t n) {
    if (da) xa_axpy(da, dout, 1.0f, n);
    if (db) xa_axpy(db, dout, 1.0f, n);
}

void xa_axpy(float *y, const float *x, float alpha, size_t n) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 65536) schedule(static)")
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

void xa_scale(float *x, float alpha, size_t n) {
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 65536) schedule(static)")
    for (size_t i = 0; i < n; i++)
        x[i] *= alpha;
}
