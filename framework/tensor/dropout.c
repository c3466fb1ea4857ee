/* tensor/dropout: inverted dropout (Srivastava et al. 2014; torch.nn.Dropout): in training each
 * element is kept with probability 1 - p and scaled by 1/(1 - p), so evaluation is the identity.
 *
 * The keep mask is made once per use and saved (one byte per element) for backward. To fill large
 * masks in parallel and still get the same mask for every thread count, xa_dropout_mask draws one
 * 64-bit seed from the caller's generator and gives each block of 4096 elements 8 interleaved
 * PCG32 streams (seed, 8 * block index + lane). An element is dropped when its u32 draw is below p * 2^32.
 * A mask is defined over element indices, not over a buffer: xa_dropout_mask_at fills elements
 * [off, off + n) of the mask that a buffer of off + n or more elements would get from the same
 * generator state, jumping each stream ahead to its first element (xa_rng_advance). A micro-batch
 * that holds rows [r0, r0 + b) of a step's global batch thus draws exactly the global batch's
 * mask over its rows (train/trainer.h, "micro-batches").
 * Not here: torch's exact random stream (masks never match torch bit for bit; the golden tests
 * feed the same mask to both sides instead).
 */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

#define DROPOUT_BLOCK 4096
#define DROPOUT_LANES 8

void xa_dropout_mask(uint8_t *keep, size_t n, float p, xa_rng *rng) { xa_dropout_mask_at(keep, n, 0, p, rng); }

void xa_dropout_mask_at(uint8_t *keep, size_t n, uint64_t off, float p, xa_rng *rng) {
    XA_ASSERT(p >= 0.0f && p < 1.0f);
    if (p == 0.0f) {
        memset(keep, 1, n);
        return;
    }
    double t = ldexp((double)p, 32);
    const uint32_t threshold = t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t;
    const uint64_t seed = xa_rng_u64(rng);
    if (n == 0) return;
    /* the blocks of the whole mask that elements [off, off + n) touch */
    const uint64_t blk0 = off / DROPOUT_BLOCK, blk1 = (off + n - 1) / DROPOUT_BLOCK + 1;
    const size_t n_blocks = (size_t)(blk1 - blk0);
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n_blocks > 4) schedule(static)")
    for (size_t bi = 0; bi < n_blocks; bi++) {
        const uint64_t blk = blk0 + bi, start = blk * DROPOUT_BLOCK;
        /* this block's part of the range, in block coordinates [lo, hi) */
        const size_t lo = off > start ? (size_t)(off - start) : 0;
        const size_t hi = off + n < start + DROPOUT_BLOCK ? (size_t)(off + n - start) : DROPOUT_BLOCK;
        uint8_t *out = keep + (size_t)(start + lo - off); /* element lo of the block */
        /* DROPOUT_LANES interleaved streams per block: the LCG's multiply chains run side by side
         * instead of one after another (element w of the block is draw w / DROPOUT_LANES of lane
         * w % DROPOUT_LANES). A range starting inside the block skips each lane past the draws of
         * elements [0, lo): ceil((lo - j) / DROPOUT_LANES) of lane j. */
        xa_rng r[DROPOUT_LANES];
        for (int j = 0; j < DROPOUT_LANES; j++) {
            xa_rng_seed(&r[j], seed, blk * DROPOUT_LANES + (uint64_t)j);
            if (lo) xa_rng_advance(&r[j], (uint64_t)(lo + DROPOUT_LANES - 1 - (size_t)j) / DROPOUT_LANES);
        }
        size_t w = lo;
        for (; w < hi && w % DROPOUT_LANES; w++) out[w - lo] = xa_rng_next(&r[w % DROPOUT_LANES]) >= threshold;
        for (; w + DROPOUT_LANES <= hi; w += DROPOUT_LANES) {
            for (int j = 0; j < DROPOUT_LANES; j++) out[w - lo + (size_t)j] = xa_rng_next(&r[j]) >= threshold;
        }
        for (; w < hi; w++) out[w - lo] = xa_rng_next(&r[w % DROPOUT_LANES]) >= threshold;
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
