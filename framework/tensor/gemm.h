/* tensor/gemm: xadapt's own packed single-precision matrix product (internal to tensor).
 * Used by xa_sgemm when it is faster than the BLAS in use (see blas.c). */
#ifndef XA_TENSOR_GEMM_H
#define XA_TENSOR_GEMM_H

#include <stdint.h>
#include <string.h>

/* XA_GEMM_X86: 1 where the micro-kernels are compiled (x86-64 with GCC or clang; CMakeLists.txt
 * defines it with the -m flags of gemm_avx512.c and gemm_avx2.c), else 0. */
#ifndef XA_GEMM_X86
#define XA_GEMM_X86 0
#endif

/* 1 when this CPU runs one of the SIMD micro-kernels (AVX-512F or AVX2+FMA), else 0. */
int xa_gemm_available(void);
/* Cap the micro-kernel at AVX2 (cap_avx2 != 0) or lift the cap (0), for tests and benchmarks
 * (XA_GEMM_ISA=avx2 in the environment sets the cap at start). Returns 1 when the capped choice
 * still has a kernel. */
int xa_gemm_cap_avx2(int cap_avx2);
/* The micro-kernel in use: "avx512 12x32", "avx2 6x16" or "none". */
const char *xa_gemm_kernel_name(void);

/* C(M,N) = alpha op(A) op(B) + beta C, row-major, single thread; same contract as xa_sgemm. */
void xa_gemm_packed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* fp32 -> bf16 bits, round to nearest even, a NaN stays a quiet NaN: the one rounding of the bf16
 * kernel's packing and of xa_bf16_round / xa_sgemm_bf16_ref (blas.c). */
static inline uint16_t xa_gemm_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 operands, fp32 accumulation (gemm_bf16.c): 1 when this CPU has AVX512-BF16. */
int xa_gemm_bf16_available(void);
/* The bf16 micro-kernel in use: "amx-bf16 32x32" or "avx512-bf16 12x32". */
const char *xa_gemm_bf16_kernel_name(void);
/* C = alpha op(A) op(B) + beta C with op(A) and op(B) rounded to bf16 (nearest even) and fp32
 * accumulation; single thread; only on a CPU where xa_gemm_bf16_available(). */
void xa_gemm_packed_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);

/* op(B) (K, N) packed whole for the bf16 kernels, once, for a matrix that does not change (the bf16
 * packs of frozen weights, gemm_frozen.c). The pack holds exactly the bits either kernel packs at
 * each product (AVX512-BF16: xa_gemm_packed_bf16_pre, AMX: xa_gemm_packed_amx_pre), so a product on
 * it gives the same C bit for bit. */
/* uint32 words of the pack of a (K, N) op(B): about K N / 2 (bf16 pairs, N rounded up to a panel). */
size_t xa_gemm_bf16_pack_b_size(int K, int N);
/* Columns per panel (NR, 32, both kernels'): products on a pack start at a multiple of it. */
int xa_gemm_bf16_panel(void);
/* The pack is written in independent chunks 0 .. xa_gemm_bf16_pack_b_chunks(K, N) - 1 (one K block
 * by one column block each), so threads can share the work; dst holds xa_gemm_bf16_pack_b_size. */
int xa_gemm_bf16_pack_b_chunks(int K, int N);
void xa_gemm_bf16_pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int K, int N, int chunk);
/* C (M, N) = alpha op(A) op(B)(:, j0 : j0 + N) + beta C with op(B) (K, n_pre) given as its pack;
 * j0 a multiple of the panel. Same bits as xa_gemm_packed_bf16 on the fp32 op(B). Single thread. */
void xa_gemm_packed_bf16_pre(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                             const uint32_t *pre, int n_pre, int j0, float beta, float *C, int ldc);

/* The pack of op(B) for a product whose B operand is a registered frozen weight (gemm_frozen.c),
 * made on first use of that orientation; NULL when B is not one (or the packs are off, or the
 * shapes are not the weight's whole matrix). Only in bf16 precision. */
const uint32_t *xa_gemm_frozen_find(const float *B, int trans_b, int K, int N, int ldb);

/* op(B)(p0:p0+kc, j0:j0+nc) as ceil(nc/32) panels of ceil(kc/2) k pairs x 32 lanes (lane j of pair
 * q: bf16(B(p0+2q, j)) | bf16(B(p0+2q+1, j)) << 16; lanes from nc on and an odd kc's pad half are
 * 0), panel after panel; AVX512-BF16 only. One pair row is 128 bytes: two AMX B tiles of 16 lanes
 * side by side, so gemm_amx.c packs its B with it (gemm_bf16.c). */
void xa_gemm_bf16_pack_b_block(uint32_t *dst, int trans_b, const float *B, int ldb, int p0, int kc,
                               int j0, int nc);

/* ---- AMX (gemm_amx.c, gemm_amx_emu.c) -------------------------------------------------------- */
/* NULL when the AMX bf16 kernel can run here: CPUID.(7,0):EDX amx_tile (bit 24) and amx_bf16 (bit
 * 22), XCR0 bits 17-18 (XTILECFG, XTILEDATA) enabled by the OS (xgetbv), AVX512-BF16 (its B
 * packing), this build's x86 kernels, and Linux's grant of the tile data (arch_prctl
 * ARCH_REQ_XCOMP_PERM, asked once per process, thread-safe). Else why not (static text). peak.c's
 * AMX loop uses the same check. */
const char *xa_gemm_amx_unavailable(void);
/* Cap bf16 products at the AVX512-BF16 kernel even where AMX runs (cap != 0), or lift the cap
 * (XA_GEMM_ISA=avx512-bf16 in the environment sets it at start). Returns 1 when the capped
 * choice is AMX. */
int xa_gemm_cap_bf16_avx512(int cap);
/* 1 when bf16 products run on the AMX kernel now (available and not capped). */
int xa_gemm_bf16_amx(void);
/* The xa_gemm_packed_bf16 contract on AMX tiles; single thread; only where
 * xa_gemm_amx_unavailable() == NULL. The tile-by-tile summation order is TDPBF16PS's
 * (xa_sgemm_amx_ref), not VDPBF16PS's. */
void xa_gemm_packed_amx(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                        int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* xa_gemm_packed_bf16_pre's contract on AMX tiles: op(B) (K, n_pre) given as its
 * xa_gemm_bf16_pack_b pack, this product's N its columns j0 .. j0 + N - 1 (j0 a multiple of
 * xa_gemm_bf16_panel()). Same bits as xa_gemm_packed_amx on the fp32 op(B); only where
 * xa_gemm_amx_unavailable() == NULL. */
void xa_gemm_packed_amx_pre(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                            const uint32_t *pre, int n_pre, int j0, float beta, float *C, int ldc);
/* Rows of A for the AMX kernel: d[q] = bf16(a[2q]) | bf16(a[2q+1]) << 16 for the n values, zero
 * pairs up to nq (a multiple of 16); VCVTNE2PS2BF16, xa_gemm_bf16_bits's bits (subnormals
 * included). AVX512-BF16 only (no tile instruction), in gemm_amx.c. */
void xa_gemm_amx_row_bf16(uint32_t *d, const float *a, int n, int nq);
/* One AMX A panel (32 rows x kq pairs, row r at d + r kq) of a transposed A, element (r, k) at
 * a[k lda + r]: pair q of row r = bf16(a[2q lda + r]) | bf16(a[(2q+1) lda + r]) << 16 for the mr
 * (<= 32) rows and kc values, every other word of the panel 0; 16 x 16 transposes in registers,
 * xa_gemm_bf16_bits's bits (subnormals included). AVX512-BF16 only, in gemm_amx.c. */
void xa_gemm_amx_cols_bf16(uint32_t *d, const float *a, int lda, int mr, int kc, int kq);
/* For tests, on every machine (gemm_amx_emu.c): xa_gemm_packed_amx_pre on the emulated tiles (the
 * twin of xa_sgemm_amx_emu, tensor.h), and xa_gemm_bf16_pack_b's whole pack (every chunk, dst
 * holding xa_gemm_bf16_pack_b_size(K, N) words) from the scalar packing. */
void xa_sgemm_amx_emu_pre(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                          const uint32_t *pre, int n_pre, int j0, float beta, float *C, int ldc);
void xa_sgemm_amx_emu_pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int K, int N);
/* The bf16 product on the best kernel of this CPU: AMX, else AVX512-BF16 (blas.c's sgemm_one). */
void xa_gemm_packed_bf16_best(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta, float *C,
                              int ldc);

#endif
