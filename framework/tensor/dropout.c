/* tensor/dropout: inverted dropout (Srivastava et al. 2014; torch.nn.Dropout): in training each
 * element is kept with probability 1 - p and scaled by 1/(1 - p), so evaluation is the identity.
 *
 * The keep mask is made once per use and saved (one byte per element) for backward. To fill large
 * masks in parallel and still get the same mask for every thread count, xa_dropout_mask draws one
 * 64-bit seed from the caller's generator and gives each block of 4096 elements 8 interleaved
 * PCG32 streams (seed, 8 * block index + lane). An element is dropped when its u32 draw is below p * 2^32.
 * Not here: torch's exact random stream (masks never match torch bit for bit; the golden tests
 * feed the same mask to both sides instead).
 */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

#define DROPOUT_BLOCK 4096
#define DROPOUT_LANES 8

void xa_dropout_mask(uint8_t *keep, size_t n, float p, xa_rng *rng) {
    XA_ASSERT(p >= 0.0f && p < 1.0f);
    if (p == 0.0f) {
        memset(keep, 1, n);
        return;
    }
    double t = ldexp((double)p, 32);
    const uint32_t threshold = t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t;
    const uint64_t seed = xa_rng_u64(rng);
    const size_t n_blocks = (n + DROPOUT_BLOCK - 1) / DROPOUT_BLOCK;
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n_blocks > 4) schedule(static)")
    for (size_t blk = 0; blk < n_blocks; blk++) {
        /* DROPOUT_LANES interleaved streams per block: the LCG's multiply chains run side by side
         * instead of one after another (element i of the block uses lane i % DROPOUT_LANES). */
        xa_rng r[DROPOUT_LANES];
        for (int j = 0; j < DROPOUT_LANES; j++) xa_rng_seed(&r[j], seed, (uint64_t)blk * DROPOUT_LANES + (uint64_t)j);
        size_t lo = blk * DROPOUT_BLOCK, hi = lo + DROPOUT_BLOCK < n ? lo + DROPOUT_BLOCK : n;
        size_t i = lo;
        for (; i + DROPOUT_LANES <= hi; i += DROPOUT_LANES) {
            for (int j = 0; j < DROPOUT_LANES; j++) keep[i + (size_t)j] = xa_rng_next(&r[j]) >= threshold;
        }
        for (int j = 0; i < hi; i++, j++) keep[i] = xa_rng_next(&r[j]) >= threshold;
    }
}

void xa_dropout_forward(float *out, const float *inp, const uint8_t *keep, size_t n, float p) {
    if (!keep || p == 0.0f) {
        if (out != inp) memmove(out, inp, sizeof(float) * n);
        return;
    }
    const float inv_keep = 1.0f / (1.0f - p);
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 65536) schedule(static)")
    for (size_t i = 0; i < n; i++)
        out[i] = keep[i] ? inp[i] * inv_keep : 0.0f;
}

void xa_dropout_backward(float *dinp, const float *dout, const uint8_t *keep, size_t n, float p) {
    if (!keep || p == 0.0f) {
        xa_axpy(dinp, dout, 1.0f, n);
        return;
    }
    const float inv_keep = 1.0f / (1.0f - p);
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 65536) schedule(static)")
    for (size_t i = 0; i < n; i++)
        dinp[i] += keep[i] ? dout[i] * inv_keep : 0.0f;
}
