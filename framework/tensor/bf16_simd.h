/* tensor/bf16_simd: the AVX-512 pieces of fp32 -> bf16 packing that gemm_bf16.c (the AVX512-BF16
 * kernel's packing) and gemm_amx.c (the AMX kernel's A panels) share: VCVTNE2PS2BF16 with the
 * scalar rounding where a lane is subnormal, pairs of two rows of memory, and a 16 x 16 transpose
 * in registers. Internal to tensor/, included only by files compiled with -mavx512f -mavx512bf16
 * (CMakeLists.txt); every function is static inline.
 *
 * VCVTNE2PS2BF16 rounds to nearest even and quiets a NaN exactly as xa_gemm_bf16_bits does
 * ((bits >> 16) | 0x40), but it flushes subnormal inputs to a signed zero where
 * xa_gemm_bf16_bits rounds them (0x007fffff becomes 0x0080, the smallest normal bf16). A chunk that
 * holds a subnormal (rare: the test of exponent bits is two mask instructions) is redone with the
 * scalar rounding, so the packed bits are xa_bf16_round's in every case. */
#ifndef XA_TENSOR_BF16_SIMD_H
#define XA_TENSOR_BF16_SIMD_H

#include <immintrin.h>
#include <stdint.h>

#include "tensor/gemm.h"

/* 1 in the lanes of x whose value is subnormal (exponent 0, mantissa not 0). */
static inline __mmask16 subnormal_lanes(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    return _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7F800000)) &
           _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007FFFFF));
}

/* bf16 of x0 (words 0-15) and x1 (words 16-31), in that memory order. */
static inline __m512i cvt32(__m512 x0, __m512 x1) {
    __m512i r = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
    if (subnormal_lanes(x0) | subnormal_lanes(x1)) {
        float f[32];
        uint16_t w[32];
        _mm512_storeu_ps(f, x0);
        _mm512_storeu_ps(f + 16, x1);
        for (int i = 0; i < 32; i++) w[i] = xa_gemm_bf16_bits(f[i]);
        r = _mm512_loadu_si512(w);
    }
    return r;
}

/* lane l: bf16(r0[l]) | bf16(r1[l]) << 16 for the lanes in m (others 0); r1 NULL: high halves 0. */
static inline __m512i pairs_of_two_rows(const float *r0, const float *r1, __mmask16 m) {
    __m512 x1 = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
    __m512i both = cvt32(_mm512_maskz_loadu_ps(m, r0), x1);
    __m512i lo = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(both));
    __m512i hi = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(both, 1));
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

/* In-register transpose of a 16 x 16 matrix of 32-bit elements (v[r] = row r). */
static inline void transpose16(__m512i v[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* v[4b + c], 128-bit block k: column 4k + c of rows 4b..4b+3. Output column 4k + c is block k of
     * v[c], v[4 + c], v[8 + c], v[12 + c]: two rounds of 128-bit block shuffles gather them. */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0x88);      /* blocks 0, 2 of each */
        t[i + 4] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0xDD);  /* blocks 1, 3 */
        t[i + 8] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        v[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
        v[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        v[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

#endif
