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
 * only on a CPU with AVX512-BF16 (xa_gemm_bf16_available). The contract it implements is
 * xa_sgemm_bf16_ref's (blas.c): the test compares the two. Packing is vectorised (VCVTNE2PS2BF16,
 * 16 x 16 transposes in registers where k runs along a row) and gives exactly xa_bf16_round's bits,
 * subnormals and NaNs included (test_tensor's bf16 packing test). One departure from the contract
 * is the instruction's own: VDPBF16PS treats subnormal bf16 operands as zero and flushes subnormal
 * results whatever MXCSR says (Intel SDM; the operand side checked on this project's AMD EPYC),
 * so terms below 2^-126 may differ. A B operand that does not change (a frozen weight, gemm_frozen.c)
 * can be packed once, whole (xa_gemm_bf16_pack_b: pack_b's panels for every K block), and the
 * product then reads it instead of packing (xa_gemm_packed_bf16_pre). When C is large the K blocks
 * run innermost (product_pre: C stays in cache instead of going to memory once per K block), on
 * the pack or, without one, on op(B) packed whole into a scratch first: same bits. */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tensor/gemm.h"
#include "tensor/bf16_simd.h"

#define MR 12
#define NR 32
#define KC 256 /* k per block, even: 128 pairs */
#define MC (MR * 16)
#define NC (NR * 64)

void xa_gemm_packed_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);

/* ---- packing: fp32 -> bf16 pairs, vectorised (bf16_simd.h: VCVTNE2PS2BF16 with the scalar
 * rounding for subnormal lanes, pairs of two rows, the 16 x 16 transpose) ------------------------ */

/* 16 pairs from 2n consecutive floats of one row (f[2t] low half, f[2t+1] high half: the memory
 * order of the bf16 values); floats from n_f on read as 0 (an odd K's pad half, a short chunk). */
static inline __m512i pairs_of_row(const float *f, int n_f) {
    __mmask32 m = n_f >= 32 ? 0xFFFFFFFFu : (((__mmask32)1 << n_f) - 1u);
    return cvt32(_mm512_maskz_loadu_ps((__mmask16)m, f), _mm512_maskz_loadu_ps((__mmask16)(m >> 16), f + 16));
}

/* Panels of `lanes` (MR or NR) rows whose k runs along memory (row r at src + r * ld, k from p0):
 * dst[q * lanes + r] = pair q of row r, for kp = ceil(kc / 2) pairs; rows from nrows on are 0.
 * 16 rows x 16 pairs at a time: one masked load and VCVTNE2PS2BF16 per row, a 16 x 16 transpose,
 * one (masked) store per pair. */
static void pack_rows(uint32_t *dst, int lanes, const float *src, int ld, int nrows, int p0, int kc) {
    const int kp = (kc + 1) / 2;
    for (int q0 = 0; q0 < kp; q0 += 16) {
        int nq = kp - q0 < 16 ? kp - q0 : 16;
        for (int g = 0; g < lanes; g += 16) {
            int ng = lanes - g < 16 ? lanes - g : 16; /* lanes of this store group */
            __m512i v[16];
            for (int r = 0; r < 16; r++) {
                v[r] = g + r < nrows && r < ng
                           ? pairs_of_row(src + (size_t)(g + r) * ld + p0 + 2 * q0, kc - 2 * q0)
                           : _mm512_setzero_si512();
            }
            transpose16(v);
            __mmask16 m = (__mmask16)((1u << ng) - 1u);
            for (int t = 0; t < nq; t++) _mm512_mask_storeu_epi32(dst + (size_t)(q0 + t) * lanes + g, m, v[t]);
        }
    }
}

/* Panels of `lanes` rows whose k runs across rows (element (r, k) at src[k * ld + r]): pair q of
 * all lanes from two rows of memory, 16 lanes at a time. */
static void pack_cols(uint32_t *dst, int lanes, const float *src, int ld, int nrows, int p0, int kc) {
    const int kp = (kc + 1) / 2;
    for (int q = 0; q < kp; q++) {
        const float *r0 = src + (size_t)(p0 + 2 * q) * ld, *r1 = 2 * q + 1 < kc ? r0 + ld : NULL;
        for (int g = 0; g < lanes; g += 16) {
            int ng = lanes - g < 16 ? lanes - g : 16, nv = nrows - g < ng ? nrows - g : ng;
            __mmask16 mv = nv > 0 ? (__mmask16)((1u << nv) - 1u) : 0, ms = (__mmask16)((1u << ng) - 1u);
            _mm512_mask_storeu_epi32(dst + (size_t)q * lanes + g, ms,
                                     pairs_of_two_rows(r0 + g, r1 ? r1 + g : NULL, mv));
        }
    }
}

/* op(A)(i0:i0+mc, p0:p0+kc) as ceil(mc/MR) panels of kp = ceil(kc/2) pairs x MR lanes. */
static void pack_a(uint32_t *dst, int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc) {
    const int kp = (kc + 1) / 2;
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        if (trans_a) {
            pack_cols(dst, MR, A + i0 + ir, lda, mr, p0, kc);
        } else {
            pack_rows(dst, MR, A + (size_t)(i0 + ir) * lda, lda, mr, p0, kc);
        }
        dst += (size_t)kp * MR;
    }
}

/* op(B)(p0:p0+kc, j0:j0+nc) as ceil(nc/NR) panels of kp pairs x NR lanes. */
static void pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc) {
    const int kp = (kc + 1) / 2;
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        if (trans_b) {
            pack_rows(dst, NR, B + (size_t)(j0 + jr) * ldb, ldb, nr, p0, kc);
        } else {
            pack_cols(dst, NR, B + j0 + jr, ldb, nr, p0, kc);
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

void xa_gemm_bf16_pack_b_block(uint32_t *dst, int trans_b, const float *B, int ldb, int p0, int kc, int j0,
                               int nc) {
    pack_b(dst, trans_b, B, ldb, p0, kc, j0, nc);
}

typedef struct pack_buffers {
    uint32_t *a;    /* (MC, KC / 2) pairs */
    uint32_t *b;    /* (KC / 2, NC) pairs */
    uint32_t *ak;   /* product_pre's A rows over the whole K: ak_cap pairs */
    size_t ak_cap;
    uint32_t *bk;   /* a whole op(B) packed for product_pre by product(): bk_cap pairs */
    size_t bk_cap;
} pack_buffers;

static _Thread_local pack_buffers g_pack;

static pthread_key_t g_pack_key;
static pthread_once_t g_pack_once = PTHREAD_ONCE_INIT;

/* A thread's buffers are freed when it exits (an OpenMP pool that shrinks ends its surplus
 * workers, whose buffers would otherwise be lost); the main thread's live until the process ends. */
static void pack_buffers_free(void *p) {
    pack_buffers *pb = p;
    xa_aligned_free(pb->a);
    xa_aligned_free(pb->b);
    xa_aligned_free(pb->ak);
    xa_aligned_free(pb->bk);
    pb->a = pb->b = pb->ak = pb->bk = NULL;
    pb->ak_cap = pb->bk_cap = 0;
}

static void pack_key_init(void) { XA_ASSERT(pthread_key_create(&g_pack_key, pack_buffers_free) == 0); }

static int ensure_buffers(void) {
    if (g_pack.a) return 1;
    pthread_once(&g_pack_once, pack_key_init);
    XA_ASSERT(pthread_setspecific(g_pack_key, &g_pack) == 0);
    g_pack.a = xa_aligned_alloc((size_t)MC * (KC / 2) * sizeof(uint32_t), 64);
    g_pack.b = xa_aligned_alloc((size_t)(KC / 2) * NC * sizeof(uint32_t), 64);
    return g_pack.a && g_pack.b;
}

/* One MR x NR micro-tile of C (mr x nr of it inside C) += one K block: C = alpha acc + bk C, a
 * full tile straight into C, an edge tile through a buffer. */
static inline void tile_step(int kp, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr,
                             int nr, float alpha, float bk) {
    if (mr == MR && nr == NR) {
        micro_kernel(kp, ap, bp, c, ldc, alpha, bk);
        return;
    }
    float tile[MR * NR];
    micro_kernel(kp, ap, bp, tile, NR, alpha, 0.0f);
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *ti = tile + (size_t)i * NR;
        for (int j = 0; j < nr; j++) ci[j] = bk == 0.0f ? ti[j] : ti[j] + bk * ci[j];
    }
}

/* Pairs of A that product_pre keeps packed at once (its rows over the whole K): 384 KiB, within
 * the L2 of the project's cores with the B panel and a column of C beside it. */
#define PRE_A_PAIRS (96 * 1024)
#define PRE_MIN_ROWS (4 * MR)
/* product() takes product_pre's order when C is larger than this (bytes) and K spans blocks: a
 * C that stays in cache anyway gains nothing from it. */
#define PRE_C_BYTES ((size_t)512 * 1024)
/* A product without a pack takes that order too when its whole op(B) packs into at most this
 * (pairs; 8 MiB a thread): B is then packed once, whole, as a pack would be, and A once per block
 * of rows, the same work as in product()'s order. */
#define PRE_SCRATCH_PAIRS ((size_t)2 * 1024 * 1024)

/* *buf holds at least `pairs` words (a per-thread scratch that only grows). */
static void scratch(uint32_t **buf, size_t *cap, size_t pairs) {
    if (*cap >= pairs) return;
    xa_aligned_free(*buf);
    *buf = xa_aligned_alloc(pairs * sizeof(uint32_t), 64);
    XA_ASSERT(*buf);
    *cap = pairs;
}

/* Pairs of a whole K in pack_a / pack_b blocks: KC / 2 per block, ceil(kc / 2) the last. */
static size_t k_pairs_of(int K) {
    const int n_kb = (K + KC - 1) / KC;
    return (size_t)(n_kb - 1) * (KC / 2) + (size_t)(K - (n_kb - 1) * KC + 1) / 2;
}

/* Rows of A a block of product_pre: as many micro-rows over the whole K as fit PRE_A_PAIRS, at most
 * MC; 0 when that is under PRE_MIN_ROWS (a long K: each block of rows would stream the whole pack
 * of B from memory once more). */
static int pre_rows(int K) {
    int mcb = (int)(PRE_A_PAIRS / (k_pairs_of(K) * MR)) * MR;
    return mcb < PRE_MIN_ROWS ? 0 : mcb > MC ? MC : mcb;
}

/* The product on a whole pre-packed op(B) (columns j0.. of a pack of n_pre columns made by
 * xa_gemm_bf16_pack_b, j0 a multiple of NR), in an order that keeps C in cache: for a block of
 * rows of A packed over the whole K at once, each column panel runs its K blocks back to back over
 * the rows' micro-tiles, so a column of C tiles (mc x NR) stays in L1/L2 across the K blocks
 * instead of the whole (M x NC) C going out to memory and back once per K block, which the order of
 * product() below does (an encoder's 1024 x 3072 output is 12 MiB). Every micro-tile still sums
 * each K block in the same order into the same accumulators and adds the blocks to C in
 * ascending k, so C is the same bit for bit as in product()'s order (test_tensor's packs test).
 * mcb: rows of A a block, pre_rows(K). */
static void product_pre(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                        const uint32_t *pre, int n_pre, int j0, float beta, float *C, int ldc, int mcb) {
    const size_t pre_lanes = (size_t)(n_pre + NR - 1) / NR * NR; /* lanes of one pair of pre */
    XA_ASSERT(mcb >= MR);
    scratch(&g_pack.ak, &g_pack.ak_cap, (size_t)mcb * k_pairs_of(K));
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int ic = 0; ic < M; ic += mcb) {
            int mc = M - ic < mcb ? M - ic : mcb;
            const size_t mcr = (size_t)(mc + MR - 1) / MR * MR; /* lanes of one pair of the A block */
            /* K block b of the rows at pair offset b (KC / 2) mcr: pack_a's panels of that block */
            for (int pc = 0; pc < K; pc += KC)
                pack_a(g_pack.ak + (size_t)(pc / 2) * mcr, trans_a, A, lda, ic, mc, pc, K - pc < KC ? K - pc : KC);
            for (int jr = 0; jr < nc; jr += NR) {
                int nr = nc - jr < NR ? nc - jr : NR;
                for (int pc = 0; pc < K; pc += KC) {
                    int kp = ((K - pc < KC ? K - pc : KC) + 1) / 2;
                    float bk = pc == 0 ? beta : 1.0f; /* later K blocks accumulate */
                    const uint32_t *bp = pre + (size_t)(pc / 2) * pre_lanes + (size_t)(j0 + jc + jr) * kp;
                    const uint32_t *ab = g_pack.ak + (size_t)(pc / 2) * mcr;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        tile_step(kp, ab + (size_t)(ir / MR) * kp * MR, bp, C + (size_t)(ic + ir) * ldc + jc + jr,
                                  ldc, mr, nr, alpha, bk);
                    }
                }
            }
        }
    }
}

/* The product behind both entries: op(B) packed here per (NC, KC) block from B, or, when pre is
 * not NULL, read from pre, the whole op(B) of n_pre columns packed by xa_gemm_bf16_pack_b, whose
 * columns j0.. (j0 a multiple of NR) are this product's N. A large C takes product_pre's order
 * (with a pack, or on op(B) packed whole into g_pack.bk when that fits PRE_SCRATCH_PAIRS). The
 * bits of C are the same every way: pre holds exactly what pack_b writes, and neither the K
 * blocking nor the order in which a micro-tile adds its blocks (the only things the sums depend
 * on) changes. */
static void product(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, const uint32_t *pre, int n_pre, int j0, float beta, float *C,
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
    XA_ASSERT(!pre || (j0 % NR == 0 && j0 + N <= n_pre));
    const int mcb = K > KC && (size_t)M * N * sizeof(float) > PRE_C_BYTES ? pre_rows(K) : 0;
    if (mcb && pre) {
        product_pre(trans_a, M, N, K, alpha, A, lda, pre, n_pre, j0, beta, C, ldc, mcb);
        return;
    }
    if (mcb && xa_gemm_bf16_pack_b_size(K, N) <= PRE_SCRATCH_PAIRS) {
        scratch(&g_pack.bk, &g_pack.bk_cap, xa_gemm_bf16_pack_b_size(K, N));
        for (int ch = 0; ch < xa_gemm_bf16_pack_b_chunks(K, N); ch++)
            xa_gemm_bf16_pack_b(g_pack.bk, trans_b, B, ldb, K, N, ch);
        product_pre(trans_a, M, N, K, alpha, A, lda, g_pack.bk, N, 0, beta, C, ldc, mcb);
        return;
    }
    const size_t pre_lanes = (size_t)(n_pre + NR - 1) / NR * NR; /* lanes of one pair of pre */
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int kp = (kc + 1) / 2;
            float bk = pc == 0 ? beta : 1.0f; /* later K blocks accumulate */
            const uint32_t *bpack = g_pack.b;
            if (pre) {
                bpack = pre + (size_t)(pc / 2) * pre_lanes + (size_t)(j0 + jc) * kp;
            } else {
                pack_b(g_pack.b, trans_b, B, ldb, pc, kc, jc, nc);
            }
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                pack_a(g_pack.a, trans_a, A, lda, ic, mc, pc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const uint32_t *bp = bpack + (size_t)(jr / NR) * kp * NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        tile_step(kp, g_pack.a + (size_t)(ir / MR) * kp * MR, bp,
                                  C + (size_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, bk);
                    }
                }
            }
        }
    }
}

void xa_gemm_packed_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc) {
    product(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, NULL, 0, 0, beta, C, ldc);
}

/* ---- op(B) packed once (gemm_frozen.c keeps these for frozen weights) -------------------------
 * Layout: K block b (k from b KC) at pair offset b (KC / 2) lanes, lanes = N rounded up to NR;
 * inside a block, panel p (columns p NR ..) at p kp NR, kp the block's pairs: pack_b's layout
 * for the block with j0 = 0, nc = N, so a product reads panel (j0 + jc + jr) / NR of the block. */

size_t xa_gemm_bf16_pack_b_size(int K, int N) {
    size_t lanes = (size_t)(N + NR - 1) / NR * NR, pairs = 0;
    for (int pc = 0; pc < K; pc += KC) pairs += (size_t)((K - pc < KC ? K - pc : KC) + 1) / 2;
    return pairs * lanes;
}

int xa_gemm_bf16_panel(void) { return NR; }

int xa_gemm_bf16_pack_b_chunks(int K, int N) { return (K + KC - 1) / KC * ((N + NC - 1) / NC); }

void xa_gemm_bf16_pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int K, int N, int chunk) {
    const int n_jc = (N + NC - 1) / NC;
    const int pc = chunk / n_jc * KC, jc = chunk % n_jc * NC;
    const int kc = K - pc < KC ? K - pc : KC, nc = N - jc < NC ? N - jc : NC;
    const size_t lanes = (size_t)(N + NR - 1) / NR * NR;
    pack_b(dst + (size_t)(pc / 2) * lanes + (size_t)jc * ((kc + 1) / 2), trans_b, B, ldb, pc, kc, jc, nc);
}

void xa_gemm_packed_bf16_pre(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                             const uint32_t *pre, int n_pre, int j0, float beta, float *C, int ldc) {
    product(trans_a, 0, M, N, K, alpha, A, lda, NULL, 0, pre, n_pre, j0, beta, C, ldc);
}
