/* tensor/gemm_amx_emu: the AMX kernel's body (gemm_amx_body.inc) on a scalar C emulation of the
 * six tile operations it uses, so that its layout (VNNI pairs, strides, edges, the configuration)
 * is tested on every machine, AMX or not; and xa_sgemm_amx_ref, the same arithmetic element by
 * element without tiles, its reference twin.
 *
 * The emulation follows Intel's SDM vol. 2 (LDTILECFG, TILELOADD, TILESTORED, TILEZERO,
 * TDPBF16PS, TILERELEASE) and asserts (XA_ASSERT: always on) what the hardware would fault on or
 * what can only be a layout bug here:
 *   - LDTILECFG: palette 1 (8 tiles, at most 16 rows of at most 64 bytes), start_row and the
 *     reserved bytes 0, rows and colsb both 0 or both set, tiles 8-15 unused; loading it zeroes
 *     every tile;
 *   - every tile operation: a configuration loaded in this thread (per-thread state: an OpenMP
 *     worker that skipped LDTILECFG fails) and the tile configured;
 *   - TILELOADD / TILESTORED: a stride of at least colsb (rows that overlap are a layout bug);
 *     bytes past colsb and rows past `rows` read as 0, as on the hardware;
 *   - TDPBF16PS: three different tiles, dst.rows == a.rows, a.colsb / 4 == b.rows, b.colsb ==
 *     dst.colsb, colsb multiples of 4.
 * TDPBF16PS's arithmetic, per row m, pair k (in order) and lane n: c = c + a.bf16[2k] b.bf16[2n],
 * then c = c + a.bf16[2k+1] b.bf16[2n+1], each an exact product added with one fp32 rounding to
 * nearest even (fmaf), bf16 subnormal inputs and an fp32 subnormal accumulator read as 0, a
 * subnormal result flushed to a zero of its sign. Whether real hardware rounds exactly so is only
 * known once test_tensor has compared the two on an AMX machine.
 *
 * Packing: where the CPU has AVX512-BF16 the emulation also runs the vectorised packing gemm_amx.c
 * uses (gemm_bf16.c's xa_gemm_bf16_pack_b_block for B, xa_gemm_amx_row_bf16 for rows of A,
 * xa_gemm_amx_cols_bf16 for a transposed A) and asserts it equals the scalar packing bit for bit;
 * elsewhere the scalar packing alone. xa_sgemm_amx_emu_pre is the body's product on a whole pack
 * of op(B) (xa_gemm_packed_amx_pre's twin), and xa_sgemm_amx_emu_pack_b makes that pack from the
 * scalar packing, so tests of products on a pack run on every machine. Slow (about 2 ns a
 * multiply-add on this project's AMD EPYC, some 200 times the AVX512-BF16 kernel's time): tests
 * only. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "tensor/gemm.h"
#include "tensor/tensor.h"

/* ---- the tile state of this thread ----------------------------------------------------------- */

enum { EMU_TILES = 8, EMU_ROWS = 16, EMU_COLSB = 64 };

typedef struct emu_tiles {
    int configured;
    uint8_t rows[EMU_TILES];
    uint16_t colsb[EMU_TILES];
    uint8_t data[EMU_TILES][EMU_ROWS * EMU_COLSB];
} emu_tiles;

static _Thread_local emu_tiles g_emu;

/* The 64 bytes as the hardware reads them: palette, start_row, 14 reserved, colsb[16] (little
 * endian uint16), rows[16]. */
static void emu_loadconfig(const void *cfg) {
    const uint8_t *m = cfg;
    XA_ASSERT(m[0] == 1 && "LDTILECFG: palette 1");
    XA_ASSERT(m[1] == 0 && "LDTILECFG: start_row 0");
    for (int i = 2; i < 16; i++)
        XA_ASSERT(m[i] == 0 && "LDTILECFG: reserved bytes 0");
    for (int t = 0; t < 16; t++) {
        unsigned colsb = m[16 + 2 * t] | (unsigned)m[17 + 2 * t] << 8, rows = m[48 + t];
        if (t >= EMU_TILES) {
            XA_ASSERT(colsb == 0 && rows == 0 && "LDTILECFG: palette 1 has 8 tiles");
            continue;
        }
        XA_ASSERT(rows <= EMU_ROWS && colsb <= EMU_COLSB &&
                  "LDTILECFG: at most 16 rows of 64 bytes");
        XA_ASSERT((rows == 0) == (colsb == 0) && "LDTILECFG: rows and colsb both 0 or both set");
        g_emu.rows[t] = (uint8_t)rows;
        g_emu.colsb[t] = (uint16_t)colsb;
    }
    memset(g_emu.data, 0, sizeof g_emu.data);
    g_emu.configured = 1;
}

static void emu_release(void) {
    XA_ASSERT(g_emu.configured && "TILERELEASE without a configuration");
    memset(&g_emu, 0, sizeof g_emu);
}

static uint8_t *emu_tile(int t) {
    XA_ASSERT(g_emu.configured && "tile operation before LDTILECFG in this thread");
    XA_ASSERT(t >= 0 && t < EMU_TILES && g_emu.rows[t] > 0 && "tile not configured");
    return g_emu.data[t];
}

static void emu_zero(int t) {
    memset(emu_tile(t), 0, EMU_ROWS * EMU_COLSB);
}

static void emu_load(int t, const void *base, size_t stride) {
    uint8_t *d = emu_tile(t);
    XA_ASSERT(stride >= g_emu.colsb[t] &&
              "TILELOADD: stride below the row's bytes (overlapping rows)");
    memset(d, 0, EMU_ROWS * EMU_COLSB);
    for (int r = 0; r < g_emu.rows[t]; r++)
        memcpy(d + r * EMU_COLSB, (const uint8_t *)base + r * stride, g_emu.colsb[t]);
}

static void emu_store(int t, void *base, size_t stride) {
    const uint8_t *s = emu_tile(t);
    XA_ASSERT(stride >= g_emu.colsb[t] && "TILESTORED: stride below the row's bytes");
    for (int r = 0; r < g_emu.rows[t]; r++)
        memcpy((uint8_t *)base + r * stride, s + r * EMU_COLSB, g_emu.colsb[t]);
}

/* bf16 -> fp32, a subnormal read as a zero of its sign (DAZ) */
static float emu_bf16_daz(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* an fp32 subnormal as a zero of its sign (DAZ on the accumulator, FTZ on the result) */
static float emu_ftz(float x) {
    return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x;
}

/* c + a b with one rounding (the product of two bf16 is exact in fp32 unless it underflows). */
static float emu_dp_step(float c, float a, float b) {
    return emu_ftz(fmaf(a, b, emu_ftz(c)));
}

static void emu_dpbf16ps(int tc, int ta, int tb) {
    XA_ASSERT(tc != ta && tc != tb && ta != tb && "TDPBF16PS: three different tiles");
    uint8_t *c = emu_tile(tc);
    const uint8_t *a = emu_tile(ta), *b = emu_tile(tb);
    const int m_rows = g_emu.rows[tc], n_lanes = g_emu.colsb[tc] / 4, k_pairs = g_emu.colsb[ta] / 4;
    XA_ASSERT(g_emu.colsb[tc] % 4 == 0 && g_emu.colsb[ta] % 4 == 0 &&
              "TDPBF16PS: colsb a multiple of 4");
    XA_ASSERT(g_emu.rows[ta] == m_rows && "TDPBF16PS: A rows == C rows");
    XA_ASSERT(g_emu.rows[tb] == k_pairs && "TDPBF16PS: B rows == A colsb / 4 (k pairs)");
    XA_ASSERT(g_emu.colsb[tb] == g_emu.colsb[tc] && "TDPBF16PS: B colsb == C colsb");
    for (int m = 0; m < m_rows; m++) {
        float row[EMU_COLSB / 4];
        memcpy(row, c + m * EMU_COLSB, sizeof row);
        for (int k = 0; k < k_pairs; k++) {
            uint16_t ap[2], bp[2];
            memcpy(ap, a + m * EMU_COLSB + 4 * k, 4);
            for (int n = 0; n < n_lanes; n++) {
                memcpy(bp, b + k * EMU_COLSB + 4 * n, 4);
                row[n] = emu_dp_step(row[n], emu_bf16_daz(ap[0]), emu_bf16_daz(bp[0]));
                row[n] = emu_dp_step(row[n], emu_bf16_daz(ap[1]), emu_bf16_daz(bp[1]));
            }
        }
        memcpy(c + m * EMU_COLSB, row, sizeof row);
    }
}

/* ---- B packing: scalar, and the shared vector one where the CPU has it ----------------------- */

#define OPB(p, j) (trans_b ? B[(size_t)(j)*ldb + (p)] : B[(size_t)(p)*ldb + (j)])

/* xa_gemm_bf16_pack_b_block's result for nc <= 32 (one panel of ceil(kc/2) pairs x 32 lanes). */
static void emu_pack_b_scalar(uint32_t *dst, int trans_b, const float *B, int ldb, int p0, int kc,
                              int j0, int nc) {
    const int kp = (kc + 1) / 2;
    for (int q = 0; q < kp; q++) {
        for (int l = 0; l < 32; l++) {
            uint32_t lo = 0, hi = 0;
            if (l < nc) {
                lo = xa_gemm_bf16_bits(OPB(p0 + 2 * q, j0 + l));
                if (2 * q + 1 < kc) hi = xa_gemm_bf16_bits(OPB(p0 + 2 * q + 1, j0 + l));
            }
            dst[(size_t)q * 32 + l] = lo | hi << 16;
        }
    }
}
#undef OPB

static void emu_pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int p0, int kc, int j0,
                       int nc) {
    XA_ASSERT(nc >= 1 && nc <= 32 && kc >= 1 && kc <= 256);
    emu_pack_b_scalar(dst, trans_b, B, ldb, p0, kc, j0, nc);
#if XA_GEMM_X86
    if (xa_gemm_bf16_available()) {
        static _Thread_local uint32_t vec[128 * 32];
        const size_t n = (size_t)(kc + 1) / 2 * 32;
        xa_gemm_bf16_pack_b_block(vec, trans_b, B, ldb, p0, kc, j0, nc);
        XA_ASSERT(memcmp(vec, dst, n * sizeof(uint32_t)) == 0 &&
                  "xa_gemm_bf16_pack_b_block differs from the scalar B packing");
    }
#endif
}

/* row_bf16 of the body (defined there: scalar), and where the CPU has AVX512-BF16 gemm_amx.c's
 * vectorised form checked against it. */
static void emu_row_bf16(uint32_t *d, const float *a, int n, int nq);
/* cols_bf16 of the body (scalar), and gemm_amx.c's 16 x 16 transposes checked against it. */
static void emu_cols_bf16(uint32_t *d, const float *a, int lda, int mr, int kc, int kq);

/* ---- the kernel on the emulated tiles -------------------------------------------------------- */

#define XA_AMX_FENCE()                ((void)0)
#define XA_AMX_CONFIG(cfg)            emu_loadconfig(cfg)
#define XA_AMX_ZERO(t)                emu_zero(t)
#define XA_AMX_LOAD(t, base, stride)  emu_load(t, base, stride)
#define XA_AMX_DP(c, a, b)            emu_dpbf16ps(c, a, b)
#define XA_AMX_STORE(t, base, stride) emu_store(t, base, stride)
#define XA_AMX_RELEASE()              emu_release()
#define XA_AMX_PACK_B                 emu_pack_b
#define XA_AMX_ROW_BF16               emu_row_bf16
#define XA_AMX_COLS_BF16              emu_cols_bf16
#define XA_AMX_FN                     xa_sgemm_amx_emu
#define XA_AMX_FN_PRE                 xa_sgemm_amx_emu_pre

#include "tensor/gemm_amx_body.inc"

static void emu_row_bf16(uint32_t *d, const float *a, int n, int nq) {
    XA_ASSERT(nq % 16 == 0 && nq <= 128 && 2 * nq >= n);
    row_bf16(d, a, n, nq);
#if XA_GEMM_X86
    if (xa_gemm_bf16_available()) {
        uint32_t vec[128];
        xa_gemm_amx_row_bf16(vec, a, n, nq);
        XA_ASSERT(memcmp(vec, d, (size_t)nq * sizeof(uint32_t)) == 0 &&
                  "xa_gemm_amx_row_bf16 differs from the scalar A packing");
    }
#endif
}

static void emu_cols_bf16(uint32_t *d, const float *a, int lda, int mr, int kc, int kq) {
    XA_ASSERT(kq % 16 == 0 && kq <= 128 && 2 * kq >= kc && mr >= 1 && mr <= 32);
    cols_bf16(d, a, lda, mr, kc, kq);
#if XA_GEMM_X86
    if (xa_gemm_bf16_available()) {
        static _Thread_local uint32_t vec[32 * 128];
        xa_gemm_amx_cols_bf16(vec, a, lda, mr, kc, kq);
        XA_ASSERT(memcmp(vec, d, (size_t)32 * kq * sizeof(uint32_t)) == 0 &&
                  "xa_gemm_amx_cols_bf16 differs from the scalar A packing");
    }
#endif
}

/* xa_gemm_bf16_pack_b's layout (gemm_bf16.c, above xa_gemm_bf16_pack_b_size), every chunk, from
 * the scalar panel packing: K block pc at pair offset pc / 2 times N rounded up to 32 lanes, its
 * panel p at p ceil(kc/2) 32. */
void xa_sgemm_amx_emu_pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int K, int N) {
    const size_t lanes = (size_t)(N + 31) / 32 * 32;
    for (int pc = 0; pc < K; pc += 256) {
        const int kc = K - pc < 256 ? K - pc : 256, kp = (kc + 1) / 2;
        for (int j = 0; j < N; j += 32) {
            uint32_t *d = dst + (size_t)(pc / 2) * lanes + (size_t)j * kp;
            emu_pack_b_scalar(d, trans_b, B, ldb, pc, kc, j, N - j < 32 ? N - j : 32);
        }
    }
}

/* ---- the reference twin ---------------------------------------------------------------------- */

void xa_sgemm_amx_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    enum { KC = 256, TK2 = 32 /* k values a tile step */ };
    if (M <= 0 || N <= 0) return;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            if (K <= 0 || alpha == 0.0f) {
                *c = beta == 0.0f ? 0.0f : beta * *c;
                continue;
            }
            float bk = beta;
            for (int p0 = 0; p0 < K; p0 += KC) {
                int p1 = p0 + KC < K ? p0 + KC : K;
                int pe = p0 + (p1 - p0 + TK2 - 1) / TK2 *
                                  TK2; /* the kernel's zero pad, whole tile steps */
                float acc = 0.0f;
                for (int p = p0; p < pe; p++) {
                    float a = 0.0f, b = 0.0f;
                    if (p < p1) {
                        a = emu_bf16_daz(xa_gemm_bf16_bits(trans_a ? A[(size_t)p * lda + i]
                                                                   : A[(size_t)i * lda + p]));
                        b = emu_bf16_daz(xa_gemm_bf16_bits(trans_b ? B[(size_t)j * ldb + p]
                                                                   : B[(size_t)p * ldb + j]));
                    }
                    acc = emu_dp_step(acc, a, b); /* even k, then odd: TDPBF16PS's order */
                }
                float r = alpha * acc;
                if (bk != 0.0f) {
                    float t = bk * *c;
                    r = r + t;
                }
                *c = r;
                bk = 1.0f;
            }
        }
    }
}
