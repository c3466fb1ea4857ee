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
 * Micro-kernels: AVX-512F 12 x 32 (24 zmm accumulators, gemm_avx512.c), AVX2+FMA 6 x 16 (12 ymm
 * accumulators, gemm_avx2.c), one body (gemm_body.inc) compiled once per instruction set with its
 * own -m flags, so a portable build (baseline x86-64) still has them. This file picks one at run
 * time from the CPU (__builtin_cpu_supports); XA_GEMM_ISA=avx2 caps it (for tests and
 * benchmarks). The bf16 products' kernel is picked here too: AMX (gemm_amx.c) where CPUID, XCR0
 * and Linux's tile-data permission allow it (xa_gemm_amx_unavailable: the one AMX check, peak.c's
 * too), else AVX512-BF16 (gemm_bf16.c); XA_GEMM_ISA=avx512-bf16 keeps AMX out for comparisons.
 * On a CPU with neither fp32 kernel, or on a non-x86 build, xa_gemm_available() == 0 and BLAS
 * does the work. The pack buffers are per thread, allocated on first use and kept (about 1.2 MB a
 * thread) until the thread exits (a pthread key's destructor frees them). */
#include "tensor/gemm.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#if XA_GEMM_X86
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

void xa_gemm_packed_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C,
                           int ldc);
void xa_gemm_packed_avx2(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);
#endif

/* 512, 256 or 0: the widest micro-kernel this CPU runs; g_cap (-1: from XA_GEMM_ISA) caps it. */
static int g_cpu_isa = -1, g_cap = -1;

static int gemm_isa(void) {
    if (g_cpu_isa < 0) {
        int isa = 0;
#if XA_GEMM_X86
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = 256;
        if (isa && __builtin_cpu_supports("avx512f")) isa = 512;
#endif
        g_cpu_isa = isa;
    }
    if (g_cap < 0) {
        const char *cap = getenv("XA_GEMM_ISA");
        g_cap = cap && !strcmp(cap, "avx2");
    }
    return g_cap && g_cpu_isa > 256 ? 256 : g_cpu_isa;
}

int xa_gemm_cap_avx2(int cap_avx2) {
    g_cap = cap_avx2 != 0;
    return gemm_isa() != 0;
}

int xa_gemm_available(void) { return gemm_isa() != 0; }

int xa_gemm_bf16_available(void) {
    static int avail = -1;
    if (avail < 0) {
        avail = 0;
#if XA_GEMM_X86
        /* AVX512_BF16: CPUID leaf 7 sub-leaf 1, EAX bit 5 (read directly: not every compiler's
         * __builtin_cpu_supports knows the name); the OS's zmm state is what avx512f checks */
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx))
            avail = (eax >> 5) & 1u;
#endif
    }
    return avail;
}

/* ---- AMX: detection, the OS's permission, the cap ------------------------------------------- */

#if XA_GEMM_X86
static const char *g_amx_why = "AMX not checked";
static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;

/* Once per process, under pthread_once (the first product may come from several OpenMP threads).
 * Linux 5.16+ keeps AMX tile data (XFEATURE_XTILEDATA, 8 KB of XSAVE state) off until a process
 * asks; the grant covers every thread of the process. */
static void amx_check_once(void) {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !((edx >> 24) & 1u) || !((edx >> 22) & 1u)) {
        g_amx_why = "this CPU has no AMX (CPUID.(7,0):EDX amx_tile bit 24 / amx_bf16 bit 22 clear)";
        return;
    }
    /* XCR0 (xgetbv, valid once the OS set CR4.OSXSAVE: CPUID.1:ECX bit 27): bits 17 XTILECFG and
     * 18 XTILEDATA say the OS manages the tile state */
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !((ecx >> 27) & 1u)) {
        g_amx_why = "the OS has not enabled XSAVE (CPUID.1:ECX OSXSAVE clear): no AMX state";
        return;
    }
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if (((xcr0_lo >> 17) & 3u) != 3u) {
        g_amx_why = "the OS does not enable the AMX tile state (XCR0 bits 17-18 clear)";
        return;
    }
    if (!xa_gemm_bf16_available()) {
        g_amx_why = "AMX without AVX512-BF16 (the AMX kernel packs with it)";
        return;
    }
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        static char why[160];
        snprintf(why, sizeof why, "the kernel refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM: %s; needs Linux 5.16+)",
                 strerror(errno));
        g_amx_why = why;
        return;
    }
    g_amx_why = NULL;
}
#endif

const char *xa_gemm_amx_unavailable(void) {
#if XA_GEMM_X86
    pthread_once(&g_amx_once, amx_check_once);
    return g_amx_why;
#else
    return "not an x86-64 build with GCC or clang (no AMX kernel compiled)";
#endif
}

static int g_bf16_cap = -1; /* 1: no AMX; -1: from XA_GEMM_ISA */

int xa_gemm_bf16_amx(void) {
    if (xa_gemm_amx_unavailable() != NULL) return 0;
    if (g_bf16_cap < 0) {
        const char *cap = getenv("XA_GEMM_ISA");
        g_bf16_cap = cap && !strcmp(cap, "avx512-bf16");
    }
    return !g_bf16_cap;
}

int xa_gemm_cap_bf16_avx512(int cap) {
    g_bf16_cap = cap != 0;
    return xa_gemm_bf16_amx();
}

const char *xa_gemm_bf16_kernel_name(void) { return xa_gemm_bf16_amx() ? "amx-bf16 32x32" : "avx512-bf16 12x32"; }

void xa_gemm_packed_bf16_best(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta, float *C,
                              int ldc) {
#if XA_GEMM_X86
    if (xa_gemm_bf16_amx()) {
        xa_gemm_packed_amx(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    xa_gemm_packed_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    (void)trans_a; (void)trans_b; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    XA_ASSERT(0 && "bf16 product in a build without the x86 kernels (blas.c never calls it)");
#endif
}

const char *xa_gemm_kernel_name(void) {
    switch (gemm_isa()) {
    case 512: return "avx512 12x32";
    case 256: return "avx2 6x16";
    default: return "none";
    }
}

void xa_gemm_packed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
#if XA_GEMM_X86
    switch (gemm_isa()) {
    case 512:
        xa_gemm_packed_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    case 256:
        xa_gemm_packed_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    default: break;
    }
#else
    (void)trans_a; (void)trans_b; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
#endif
    XA_ASSERT(0 && "xa_gemm_packed on a CPU without AVX2+FMA or AVX-512F (blas.c never calls it)");
}

#if !XA_GEMM_X86
/* No bf16 kernel in this build (xa_gemm_bf16_available() == 0): blas.c never calls these. */
void xa_gemm_packed_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)trans_a; (void)trans_b; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    XA_ASSERT(0 && "xa_gemm_packed_bf16 without the bf16 kernel");
}
size_t xa_gemm_bf16_pack_b_size(int K, int N) { return (size_t)(K + 1) / 2 * (size_t)N; }
int xa_gemm_bf16_panel(void) { return 32; }
int xa_gemm_bf16_pack_b_chunks(int K, int N) { (void)K; (void)N; return 0; }
void xa_gemm_bf16_pack_b(uint32_t *dst, int trans_b, const float *B, int ldb, int K, int N, int chunk) {
    (void)dst; (void)trans_b; (void)B; (void)ldb; (void)K; (void)N; (void)chunk;
    XA_ASSERT(0 && "xa_gemm_bf16_pack_b without the bf16 kernel");
}
void xa_gemm_packed_bf16_pre(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                             const uint32_t *pre, int n_pre, int j0, float beta, float *C, int ldc) {
    (void)trans_a; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda; (void)pre;
    (void)n_pre; (void)j0; (void)beta; (void)C; (void)ldc;
    XA_ASSERT(0 && "xa_gemm_packed_bf16_pre without the bf16 kernel");
}
#endif
