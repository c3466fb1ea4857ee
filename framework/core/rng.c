/* core/rng: PCG32 (M. E. O'Neill, "PCG: A Family of Simple Fast Space-Efficient Statistically Good
 * Algorithms for Random Number Generation", 2014): a 64-bit LCG state with the XSH-RR output
 * permutation. Integer and uniform draws are exact integer arithmetic, hence bit-identical on every
 * platform. Normal draws use Box-Muller in double precision rounded to float; glibc's log/cos/sqrt
 * are correctly rounded in practice, and one ulp of double difference almost never changes the float.
 * No spare normal is cached: the two integers of the state are the whole state. */
#include "core/core.h"

#include <math.h>

uint32_t xa_rng_u32(xa_rng *rng) { return xa_rng_next(rng); }

void xa_rng_seed(xa_rng *rng, uint64_t seed, uint64_t stream) {
    rng->state = 0u;
    rng->inc = (stream << 1u) | 1u;
    xa_rng_u32(rng);
    rng->state += seed;
    xa_rng_u32(rng);
}

void xa_rng_advance(xa_rng *rng, uint64_t delta) {
    /* state_{n} = a^n state + c (a^n - 1) / (a - 1): square-and-multiply over the bits of delta,
     * carrying (multiplier, increment) pairs of the composed affine map (all mod 2^64). */
    uint64_t cur_mult = 6364136223846793005ULL, cur_plus = rng->inc;
    uint64_t acc_mult = 1u, acc_plus = 0u;
    while (delta > 0) {
        if (delta & 1u) {
            acc_mult *= cur_mult;
            acc_plus = acc_plus * cur_mult + cur_plus;
        }
        cur_plus = (cur_mult + 1u) * cur_plus;
        cur_mult *= cur_mult;
        delta >>= 1u;
    }
    rng->state = acc_mult * rng->state + acc_plus;
}

uint64_t xa_rng_u64(xa_rng *rng) {
    uint64_t hi = xa_rng_u32(rng);
    return (hi << 32) | xa_rng_u32(rng);
}

uint32_t xa_rng_below(xa_rng *rng, uint32_t n) {
    XA_ASSERT(n > 0);
    /* Reject the low values that would bias the modulo (PCG's bounded_rand). */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t r = xa_rng_u32(rng);
        if (r >= threshold) return r % n;
    }
}

float xa_rng_uniform(xa_rng *rng) { return (float)(xa_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

float xa_rng_normal(xa_rng *rng) {
    /* u1 in (0, 1] so log(u1) is finite; u2 in [0, 1). */
    double u1 = ((double)(xa_rng_u32(rng) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(xa_rng_u32(rng) >> 8) / 16777216.0;
    const double two_pi = 6.283185307179586476925286766559;
    return (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
}

void xa_rng_fill_uniform(xa_rng *rng, float *out, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * xa_rng_uniform(rng);
}

void xa_rng_fill_normal(xa_rng *rng, float *out, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++) out[i] = mean + std * xa_rng_normal(rng);
}

void xa_rng_shuffle_u32(xa_rng *rng, uint32_t *idx, size_t n) {
    XA_ASSERT(n <= UINT32_MAX);
    for (size_t i = n; i > 1; i--) {
        uint32_t j = xa_rng_below(rng, (uint32_t)i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
