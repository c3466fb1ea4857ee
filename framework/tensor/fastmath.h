/* tensor/fastmath: branch-free float exp and erf that the compiler can vectorize (libm's expf and
 * erff are scalar calls and were a quarter of the encoder's inference time).
 *  - xa_fast_expf: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, then Cephes' degree-6
 *    polynomial for e^r, scaled by 2^n through the exponent bits. Relative error ~2 ulp on
 *    [-87.3, 88.7]; inputs outside are clamped (e^-87.3 ~ 1.2e-38 instead of 0).
 *  - xa_fast_erff: Abramowitz & Stegun 7.1.26, erf x = 1 - (a1 t + ... + a5 t^5) e^{-x^2} with
 *    t = 1 / (1 + p|x|); absolute error <= 1.5e-7. PyTorch's vectorized CPU erf uses the same
 *    formula, so GELU here rounds like PyTorch's.
 * Internal to the tensor module; the reference twins keep libm in double precision. */
#ifndef XA_TENSOR_FASTMATH_H
#define XA_TENSOR_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float xa_fast_expf(float x) {
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.72283f ? 88.72283f : x;
    /* n = round(x / ln2) with the 1.5 * 2^23 trick (no libm floor, SSE2-friendly). */
    const float shifter = 12582912.0f;
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float xa_fast_erff(float x) {
    float ax = x < 0.0f ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = 1.061405429f;
    poly = poly * t - 1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t - 0.284496736f;
    poly = poly * t + 0.254829592f;
    float y = 1.0f - poly * t * xa_fast_expf(-ax * ax);
    return x < 0.0f ? -y : y;
}

#endif
