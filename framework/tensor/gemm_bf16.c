/* tensor/gemm_bf16: the packed product with bf16 operands and fp32 accumulation on AVX512-BF16
 * (Intel Cooper Lake / Sapphire Rapids, AMD Zen 4 and later): the same BLIS structure as gemm.c
 * (NC / KC / MC blocking, MR x NR micro-tiles in registers), with the operands converted to bf16
 * (round to nearest even) while they are packed, two consecutive k values per 32-bit lane:
 *
 *   packed A panel:  for each k pair kp: MR lanes  (A[i][2kp] | A[i][2kp+1] << 16)
 *   packed B panel:  for each k pair kp: NR lanes  (B[2kp][j] | B[2kp+1][j] << 16)
 *
 * so one VDPBF16PS (acc[j] += a_odd * b_odd[j], then + a_even * b_even[j], each bf16 product exact in fp32) does two
 * k steps of a 16-wide row. Micro-kernel 12 x 32: 24 zmm accumulators, two B vectors, one
 * broadcast A pair per row. An odd K is padded with a zero pair half. Compiled with
 * -mavx512f -mavx512bf16 (CMakeLists.txt) whatever the rest of the build targets; blas.c calls it
 * only on a CPU with AVX512-BF16 (xa_gemm_bf16_available). The contract it implements, exactly, is
 * xa_sgemm_bf16_ref's (blas.c): the test compares the two. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tensor/gemm.h"

#define MR 12
#define NR 32
#define KC 256 /* k per block, even: 128 pairs */
#define MC (MR * 16)
#define NC (NR * 64)

void xa_gemm_packed_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);

static inline uint32_t bf16_bits(float f) { return xa_gemm_bf16_bits(f); }

#define AT(i, p) (trans_a ? A[(size_t)(p) * lda + (i)] : A[(size_t)(i) * lda + (p)])
#define BT(p, j) (trans_b ? B[(size_t)(j) * ldb + (p)] : B[(size_t)(p) * ldb + (j)])

/* op(A)(i0:i0+mc, p0:p0+kc) as ceil(mc/MR) panels of kp = ceil(kc/2) pairs x MR lanes. */
static void pack_a(uint32_t *dst, int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc) {
    const int kp = (kc + 1) / 2;
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        for (int q = 0; q < kp; q++) {
            int p = p0 + 2 * q;
            int has2 = 2 * q + 1 < kc;
            uint32_t *d = dst + (size_t)q * MR;
            int i = 0;
            for (; i < mr; i++) {
                uint32_t lo = bf16_bits(AT(i0 + ir + i, p));
                uint32_t hi = has2 ? bf16_bits(AT(i0 + ir + i, p + 1)) : 0u;
                d[i] = lo | hi << 16;
            }
            for (; i < MR; i++) d[i] = 0u;
        }
        dst += (size_t)kp * MR;
    }
}

/* op(B)(p0:p0+kc, j0:j0+nc) as ceil(nc/NR) panels of kp pairs x NR lanes. The common case (B not
 * transposed, a full panel) converts two rows of 16 floats per instruction pair. */
static void pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc) {
    const int kp = (kc + 1) / 2;
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        for (int q = 0; q < kp; q++) {
            int p = p0 + 2 * q;
            int has2 = 2 * q + 1 < kc;
            uint32_t *d = dst + (size_t)q * NR;
            if (!trans_b && nr == NR && has2) {
                const float *r0 = B + (size_t)p * ldb + j0 + jr, *r1 = r0 + ldb;
                for (int h = 0; h < NR; h += 16) {
                    /* cvtne2ps: lanes 0-15 from the second argument, 16-31 from the first, both RNE */
                    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r1 + h), _mm512_loadu_ps(r0 + h));
                    __m256i lo = _mm512_castsi512_si256(both), hi = _mm512_extracti64x4_epi64(both, 1);
                    __m512i lo32 = _mm512_cvtepu16_epi32(lo), hi32 = _mm512_cvtepu16_epi32(hi);
                    _mm512_storeu_si512(d + h, _mm512_or_si512(lo32, _mm512_slli_epi32(hi32, 16)));
                }
                continue;
            }
            int j = 0;
            for (; j < nr; j++) {
                uint32_t lo = bf16_bits(BT(p, j0 + jr + j));
                uint32_t hi = has2 ? bf16_bits(BT(p + 1, j0 + jr + j)) : 0u;
                d[j] = lo | hi << 16;
            }
            for (; j < NR; j++) d[j] = 0u;
        }
        dst += (size_t)kp * NR;
    }
}

/* acc(MR x NR) = sum over kp pairs; C = alpha acc + beta C (beta == 0: C is not read). */
static void micro_kernel(int kp, const uint32_t *a, const uint32_t *b, float *C, int ldc, float alpha,
                         float beta) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int q = 0; q < kp; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        for (int i = 0; i < MR; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
        a += MR;
        b += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR; i++) {
        float *c = C + (size_t)i * ldc;
        for (int h = 0; h < 2; h++) {
            __m512 r = _mm512_mul_ps(acc[i][h], va);
            if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16 * h), r);
            _mm512_storeu_ps(c + 16 * h, r);
        }
    }
}

typedef struct pack_buffers {
    uint32_t *a; /* (MC, KC / 2) pairs */
    uint32_t *b; /* (KC / 2, NC) pairs */
} pack_buffers;

static _Thread_local pack_buffers g_pack;

static int ensure_buffers(void) {
    if (g_pack.a) return 1;
    g_pack.a = xa_aligned_alloc((size_t)MC * (KC / 2) * sizeof(uint32_t), 64);
    g_pack.b = xa_aligned_alloc((size_t)(KC / 2) * NC * sizeof(uint32_t), 64);
    return g_pack.a && g_pack.b;
}

void xa_gemm_packed_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        }
        return;
    }
    XA_ASSERT(ensure_buffers());
    float tile[MR * NR];
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int kp = (kc + 1) / 2;
            float bk = pc == 0 ? beta : 1.0f; /* later K blocks accumulate */
            pack_b(g_pack.b, trans_b, B, ldb, pc, kc, jc, nc);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                pack_a(g_pack.a, trans_a, A, lda, ic, mc, pc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const uint32_t *bp = g_pack.b + (size_t)(jr / NR) * kp * NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        const uint32_t *ap = g_pack.a + (size_t)(ir / MR) * kp * MR;
                        float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                        if (mr == MR && nr == NR) {
                            micro_kernel(kp, ap, bp, c, ldc, alpha, bk);
                            continue;
                        }
                        micro_kernel(kp, ap, bp, tile, NR, alpha, 0.0f);
                        for (int i = 0; i < mr; i++) {
                            float *ci = c + (size_t)i * ldc;
                            const float *ti = tile + (size_t)i * NR;
                            for (int j = 0; j < nr; j++) ci[j] = bk == 0.0f ? ti[j] : ti[j] + bk * ci[j];
                        }
                    }
                }
            }
        }
    }
}
