/* tensor/gemm: a packed matrix product in the BLIS / GotoBLAS structure (Goto and van de Geijn,
 * "Anatomy of High-Performance Matrix Multiplication", TOMS 2008; Van Zee and van de Geijn, BLIS,
 * TOMS 2015), written for the shapes of an encoder on one core:
 *
 *   for jc in N by NC:  for pc in K by KC:  pack B(pc:pc+kc, jc:jc+nc) into NR-wide panels
 *     for ic in M by MC:  pack A(ic:ic+mc, pc:pc+kc) into MR-tall panels
 *       for each (MR x NR) tile: micro-kernel over kc (rank-1 updates held in registers)
 *
 * Packing reads op(A) and op(B) with their transposes, so every product of the encoder (x W^T,
 * dY W, dY^T X) runs the same micro-kernel on contiguous panels. Partial panels are zero-padded;
 * partial tiles go through a small buffer. beta == 0 overwrites C without reading it.
 * Micro-kernels: AVX-512F 12 x 32 (24 zmm accumulators), AVX2+FMA 6 x 16 (12 ymm accumulators);
 * without either this file provides nothing (xa_gemm_available() == 0) and BLAS does the work.
 * The pack buffers are per thread, allocated on first use and kept (about 1.2 MB a thread). */
#include "tensor/gemm.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#define XA_GEMM_SIMD 1
#else
#define XA_GEMM_SIMD 0
#endif

#if defined(__AVX512F__)
#define MR 12
#define NR 32
#define KERNEL_NAME "avx512 12x32"
#elif XA_GEMM_SIMD
#define MR 6
#define NR 16
#define KERNEL_NAME "avx2 6x16"
#else
#define MR 1
#define NR 1
#define KERNEL_NAME "none"
#endif

#define KC 256
#define MC (MR * 16)
#define NC (NR * 64)

int xa_gemm_available(void) { return XA_GEMM_SIMD; }
const char *xa_gemm_kernel_name(void) { return KERNEL_NAME; }

#if XA_GEMM_SIMD

/* op(A)(i, p) and op(B)(p, j) */
#define AT(i, p) (trans_a ? A[(size_t)(p) * lda + (i)] : A[(size_t)(i) * lda + (p)])
#define BT(p, j) (trans_b ? B[(size_t)(j) * ldb + (p)] : B[(size_t)(p) * ldb + (j)])

/* Pack op(A)(i0:i0+mc, p0:p0+kc) as ceil(mc/MR) panels, each kc rows of MR values. */
static void pack_a(float *dst, int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        if (!trans_a && mr == MR) {
            for (int p = 0; p < kc; p++) {
                for (int i = 0; i < MR; i++) dst[(size_t)p * MR + i] = A[(size_t)(i0 + ir + i) * lda + p0 + p];
            }
        } else {
            for (int p = 0; p < kc; p++) {
                int i = 0;
                for (; i < mr; i++) dst[(size_t)p * MR + i] = AT(i0 + ir + i, p0 + p);
                for (; i < MR; i++) dst[(size_t)p * MR + i] = 0.0f;
            }
        }
        dst += (size_t)kc * MR;
    }
}

/* Pack op(B)(p0:p0+kc, j0:j0+nc) as ceil(nc/NR) panels, each kc rows of NR values. */
static void pack_b(float *dst, int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (!trans_b && nr == NR) {
            for (int p = 0; p < kc; p++) {
                memcpy(dst + (size_t)p * NR, B + (size_t)(p0 + p) * ldb + j0 + jr, NR * sizeof(float));
            }
        } else {
            for (int p = 0; p < kc; p++) {
                int j = 0;
                for (; j < nr; j++) dst[(size_t)p * NR + j] = BT(p0 + p, j0 + jr + j);
                for (; j < NR; j++) dst[(size_t)p * NR + j] = 0.0f;
            }
        }
        dst += (size_t)kc * NR;
    }
}

/* The hot loop: acc(MR x NR) = sum_p a[p, :]^T b[p, :], then C = alpha acc + beta C (beta == 0:
 * C is not read). ldc is C's row stride. */
static void micro_kernel(int kc, const float *a, const float *b, float *C, int ldc, float alpha, float beta) {
#if defined(__AVX512F__)
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
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
#else
    __m256 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < MR; i++) {
        float *c = C + (size_t)i * ldc;
        for (int h = 0; h < 2; h++) {
            __m256 r = _mm256_mul_ps(acc[i][h], va);
            if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8 * h), r);
            _mm256_storeu_ps(c + 8 * h, r);
        }
    }
#endif
}

typedef struct pack_buffers {
    float *a; /* (MC, KC) */
    float *b; /* (KC, NC) */
} pack_buffers;

static _Thread_local pack_buffers g_pack;

static int ensure_buffers(void) {
    if (g_pack.a) return 1;
    g_pack.a = xa_aligned_alloc((size_t)MC * KC * sizeof(float), 64);
    g_pack.b = xa_aligned_alloc((size_t)KC * NC * sizeof(float), 64);
    return g_pack.a && g_pack.b;
}

void xa_gemm_packed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
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
            float bk = pc == 0 ? beta : 1.0f; /* later K blocks accumulate */
            pack_b(g_pack.b, trans_b, B, ldb, pc, kc, jc, nc);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                pack_a(g_pack.a, trans_a, A, lda, ic, mc, pc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = g_pack.b + (size_t)(jr / NR) * kc * NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        const float *ap = g_pack.a + (size_t)(ir / MR) * kc * MR;
                        float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                        if (mr == MR && nr == NR) {
                            micro_kernel(kc, ap, bp, c, ldc, alpha, bk);
                            continue;
                        }
                        /* Edge tile: compute into the buffer, then merge the valid part. */
                        micro_kernel(kc, ap, bp, tile, NR, alpha, 0.0f);
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

#else /* no SIMD micro-kernel in this build: blas.c never calls this */

void xa_gemm_packed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)trans_a; (void)trans_b; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    XA_ASSERT(0 && "xa_gemm_packed without a SIMD micro-kernel");
}

#endif
