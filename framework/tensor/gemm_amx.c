/* tensor/gemm_amx: the bf16 product (bf16 operands, fp32 accumulation) on Intel AMX tiles
 * (Sapphire Rapids and later: AMX-TILE + AMX-BF16), with xa_gemm_packed_bf16's contract: C = alpha
 * op(A) op(B) + beta C, any transposes, any M, N, K, single thread (xa_sgemm splits over threads).
 *
 * Structure: gemm_bf16.c's BLIS blocking (NC = 2048, KC = 256, MC = 256) around a 32 x 32
 * micro-tile held in four accumulator tiles:
 *
 *   tiles 0-3  C  16 rows x 16 fp32 each: (rows 0-15 | 16-31) x (columns 0-15 | 16-31)
 *   tiles 4-5  A  16 rows x 16 bf16 pairs (64 bytes): rows 0-15 and 16-31 of the A panel
 *   tiles 6-7  B  16 pair rows x 16 lanes (64 bytes): lanes 0-15 and 16-31 of the B panel
 *
 * one tile step = 16 k pairs = 32 k values: four TDPBF16PS (Intel SDM vol. 2, TDPBF16PS:
 * C[m][n] += A[m].bf16[2k] B[k].bf16[2n] + A[m].bf16[2k+1] B[k].bf16[2n+1], k over the pairs of
 * the step, fp32 accumulation, bf16 subnormal inputs read as 0, subnormal results flushed,
 * round to nearest even, MXCSR ignored).
 *
 *   packed A panel (the body's pack_a): MR = 32 rows, row-major, kq pairs a row (ceil(kc / 2)
 *     rounded up to 16), pair q of row i = bf16(A(i, 2q)) | bf16(A(i, 2q+1)) << 16: the A tile is
 *     16 of those rows from pair 16s, stride 4 kq bytes. A row of memory is converted with
 *     VCVTNE2PS2BF16 (xa_gemm_amx_row_bf16, below), a transposed A with it and 16 x 16 transposes
 *     in registers (xa_gemm_amx_cols_bf16, below).
 *   packed B panel (gemm_bf16.c's xa_gemm_bf16_pack_b_block, shared): kp = ceil(kc / 2) pair rows
 *     of 32 lanes, bf16(B(2q, j)) | bf16(B(2q+1, j)) << 16, 128 bytes a pair row: the VNNI pair
 *     layout AMX wants, two B tiles side by side (base and base + 64 bytes, stride 128). It is the
 *     layout of a K block of the frozen weights' whole packs (xa_gemm_bf16_pack_b, gemm_frozen.c),
 *     so xa_gemm_packed_amx_pre reads those packs in place of packing B.
 *
 * Edges are zero-padded (rows of A past M, lanes of B past N, an odd K's pad half, A's pairs up to
 * a whole tile step), so one tile configuration (every tile 16 x 64 bytes) serves every call;
 * partial micro-tiles only copy fewer elements out. B panels are not padded to a whole tile step (a
 * pack has no room for it): whole steps load B straight from the panel, and a K block's partial
 * last step (kp % 16 pair rows) from a per-thread 16 x 32 copy of those rows, zero below them
 * (b_tail in the body: the rows after them are the next panel's, or past the end of a pack, and
 * 0 * inf = NaN). Per-call packing and a pack run this same code on the same words: same bits.
 * Each call loads the configuration (LDTILECFG: an OpenMP worker configures its own tiles) and
 * ends with TILERELEASE. Tile data needs
 * Linux's permission (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), asked once per process
 * by xa_gemm_amx_unavailable (gemm.c), which blas.c checks before it calls this.
 *
 * The body (gemm_amx_body.inc) is written over six tile operations and compiled twice: here with
 * the intrinsics (-mamx-tile -mamx-bf16 -mavx512f -mavx512bf16, CMakeLists.txt), and in
 * gemm_amx_emu.c with a scalar emulation of the SDM's semantics that asserts the configuration's
 * limits, each load's stride and every TDPBF16PS's shapes. What is verified where:
 *   - every machine: the emulated kernel against xa_sgemm_amx_ref (the same arithmetic element by
 *     element, no tiles) bit for bit, and against fp64 and xa_sgemm_bf16_ref within the bf16
 *     bounds, over edges, odd K, K > KC, every transpose, alpha, beta and strides (test_tensor);
 *     products on a whole pack against the emulation packing per call and xa_sgemm_amx_ref, bit
 *     for bit; on AVX512-BF16 machines the emulation also checks the shared B packing,
 *     xa_gemm_amx_row_bf16 and xa_gemm_amx_cols_bf16 against its own scalar packing bit for bit
 *     (and test_tensor xa_gemm_amx_cols_bf16 against xa_bf16_round, edges and special values);
 *   - AMX machines only: this kernel against the emulation (xa_sgemm in bf16 precision), and on a
 *     pack against itself packing B (bit for bit). Until this has run on one, the hardware path
 *     is compiled but unexecuted; the project's AMD EPYC (AVX512-BF16, no AMX) skips it and says
 *     why.
 * Not here: tuning of the blocking (none measured: no AMX machine yet). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "tensor/gemm.h"
#include "tensor/bf16_simd.h"

/* row_bf16 (gemm_amx_body.inc) 32 values at a time: two masked loads and one VCVTNE2PS2BF16 (low
 * half from the first 16 values: memory order), which rounds and quiets NaNs as
 * xa_gemm_bf16_bits does but flushes subnormal inputs, so a chunk holding one is redone in scalar
 * code, as gemm_bf16.c does. AVX512-BF16 only, no tile instruction: gemm_amx_emu.c runs it on any
 * AVX512-BF16 machine and checks it against the scalar form. */
void xa_gemm_amx_row_bf16(uint32_t *d, const float *a, int n, int nq) {
    XA_ASSERT(nq % 16 == 0 && 2 * nq >= n);
    for (int q0 = 0; q0 < nq; q0 += 16) {
        int left = n - 2 * q0;
        if (left <= 0) {
            _mm512_storeu_si512(d + q0, _mm512_setzero_si512());
            continue;
        }
        __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __mmask16 m1 = left >= 32  ? (__mmask16)0xFFFF
                       : left > 16 ? (__mmask16)((1u << (left - 16)) - 1u)
                                   : 0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, a + 2 * q0),
               x1 = _mm512_maskz_loadu_ps(m1, a + 2 * q0 + 16);
        if (subnormal_lanes(x0) | subnormal_lanes(x1)) {
            uint16_t w[32];
            for (int i = 0; i < 32; i++)
                w[i] = i < left ? xa_gemm_bf16_bits(a[2 * q0 + i]) : 0;
            memcpy(d + q0, w, sizeof w);
            continue;
        }
        _mm512_storeu_si512(d + q0, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
    }
}

/* ---- a transposed A: 16 x 16 transposes in registers ------------------------------------------
 * cols_bf16 (gemm_amx_body.inc) reads a transposed A, whose rows of memory hold one k for 16
 * consecutive rows of the panel: two such rows (k = 2q, 2q + 1) give pair q of 16 panel rows, one
 * per lane (pairs_of_two_rows), and 16 of those, transposed, give 16 pairs of each of the 16 rows:
 * one store of 64 bytes per row, as gemm_bf16.c's pack_cols and pack_rows do (bf16_simd.h). */

/* cols_bf16 (gemm_amx_body.inc): one 32-row A panel of kq pairs from a transposed A, 16 rows x 16
 * pairs at a time; every word written (rows from mr on and pairs from ceil(kc/2) on 0).
 * AVX512-BF16 only, no tile instruction: gemm_amx_emu.c runs it on any AVX512-BF16 machine and
 * checks it against the scalar form. */
void xa_gemm_amx_cols_bf16(uint32_t *d, const float *a, int lda, int mr, int kc, int kq) {
    XA_ASSERT(kq % 16 == 0 && 2 * kq >= kc && mr >= 0 && mr <= 32);
    const int kp = (kc + 1) / 2;
    for (int g = 0; g < 32; g += 16) {
        int ng = mr - g < 16 ? mr - g : 16; /* rows of this group */
        __mmask16 m = ng > 0 ? (__mmask16)((1u << ng) - 1u) : 0;
        for (int q0 = 0; q0 < kq; q0 += 16) {
            __m512i v[16];
            if (ng <= 0 || q0 >= kp) {
                for (int r = 0; r < 16; r++)
                    _mm512_storeu_si512(d + (size_t)(g + r) * kq + q0, _mm512_setzero_si512());
                continue;
            }
            for (int t = 0; t < 16; t++) {
                int q = q0 + t;
                if (q >= kp) {
                    v[t] = _mm512_setzero_si512();
                    continue;
                }
                const float *r0 = a + (size_t)(2 * q) * lda + g;
                v[t] = pairs_of_two_rows(r0, 2 * q + 1 < kc ? r0 + lda : NULL, m);
            }
            transpose16(v); /* v[r]: pairs q0 .. q0 + 15 of row g + r */
            for (int r = 0; r < 16; r++)
                _mm512_storeu_si512(d + (size_t)(g + r) * kq + q0, v[r]);
        }
    }
}

/* GCC's TILELOADD / LDTILECFG intrinsics are asm statements that do not tell the compiler they read
 * memory: the barrier before them makes every store to the panels (and the configuration) happen
 * first. */
#define XA_AMX_FENCE()                __asm__ volatile("" ::: "memory")
#define XA_AMX_CONFIG(cfg)            _tile_loadconfig(cfg)
#define XA_AMX_ZERO(t)                _tile_zero(t)
#define XA_AMX_LOAD(t, base, stride)  _tile_loadd(t, base, stride)
#define XA_AMX_DP(c, a, b)            _tile_dpbf16ps(c, a, b)
#define XA_AMX_STORE(t, base, stride) _tile_stored(t, base, stride)
#define XA_AMX_RELEASE()              _tile_release()
#define XA_AMX_PACK_B                 xa_gemm_bf16_pack_b_block
#define XA_AMX_ROW_BF16               xa_gemm_amx_row_bf16
#define XA_AMX_COLS_BF16              xa_gemm_amx_cols_bf16
#define XA_AMX_FN                     xa_gemm_packed_amx
#define XA_AMX_FN_PRE                 xa_gemm_packed_amx_pre

#include "tensor/gemm_amx_body.inc"
