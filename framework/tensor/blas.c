/* tensor/blas: the only file that includes <cblas.h>. It owns the thread policy and the sgemm
 * wrapper every matrix product of xadapt goes through.
 *
 * Thread policy: OpenBLAS is pinned to 1 thread and xa_sgemm splits a large product over our own
 * OpenMP threads (row blocks of C when M >= N, else column blocks), each block one single-threaded
 * cblas_sgemm. So there is exactly one pool of worker threads (OpenMP's): BLAS workers never spin
 * against OpenMP kernels or the other way round, and OMP_WAIT_POLICY=passive governs all waiting.
 * Called inside an OpenMP parallel region (attention runs one (b, h) block per thread), xa_sgemm
 * runs serially in the calling thread. Without OpenMP, OpenBLAS gets the threads instead.
 *
 * OpenBLAS's DYNAMIC_ARCH picks its kernels from cpuid when it is loaded; 0.3.21 takes recent Xeons
 * for a Prescott (SSE3) and runs sgemm 3-5x slower. xa_blas_suggested_coretype spots that so the
 * CLI can say (or re-exec with) OPENBLAS_CORETYPE=SkylakeX.
 *
 * In bf16 precision the products run on gemm_amx.c's kernel where AMX runs, else gemm_bf16.c's
 * (gemm.c picks); a B operand that is a registered frozen weight comes pre-packed (gemm_frozen.c),
 * and both kernels read that pack.
 *
 * Not here: batched or strided products (attention loops over blocks itself).
 */
#include "tensor/tensor.h"
#include "tensor/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef XA_HAVE_OPENMP
#include <omp.h>
#endif

static int g_threads = 1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* First use: OpenBLAS starts with all cores (or OPENBLAS_NUM_THREADS); bring both pools to the
 * xadapt default of g_threads. */
static void threads_init_once(void) {
#ifdef XA_HAVE_OPENMP
    openblas_set_num_threads(1);
    omp_set_num_threads(g_threads);
#else
    openblas_set_num_threads(g_threads);
#endif
}

int xa_threads_available(void) {
#ifdef XA_HAVE_OPENMP
    int n = omp_get_num_procs();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n >= 1 ? (int)n : 1;
}

static int g_sharers = 1;

void xa_threads_set_sharers(int n) { g_sharers = n >= 1 ? n : 1; }

int xa_threads_set(int n) {
    pthread_once(&g_once, threads_init_once);
    if (n <= 0) n = xa_threads_available() / g_sharers > 0 ? xa_threads_available() / g_sharers : 1;
    g_threads = n;
#ifdef XA_HAVE_OPENMP
    omp_set_num_threads(n);
#else
    openblas_set_num_threads(n);
#endif
    return n;
}

int xa_threads_get(void) {
    return g_threads;
}

const char *xa_blas_suggested_coretype(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* OpenBLAS cores that have AVX2+FMA sgemm kernels (0.3.21 names) */
    static const char *const modern[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                         "SapphireRapids"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; i < sizeof modern / sizeof modern[0]; i++) {
        if (strcasecmp(core, modern[i]) == 0) return NULL;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

/* Which engine runs the products: OpenBLAS, or xadapt's packed kernel (gemm.c). The packed kernel
 * is chosen when this build has one and OpenBLAS runs a generic pre-AVX2 core (its CPU detection
 * fails on some VMs and falls back to Prescott, 5x slower); XA_GEMM=openblas|xadapt overrides. */
static int g_use_packed = -1;
static int g_bf16_asked = 0; /* bf16 was asked (xa_gemm_set_precision) */
static xa_precision g_precision = XA_PRECISION_FP32; /* in effect */

static int generic_blas_core(void) {
    static const char *const generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                          "Atom", "Opteron", "Barcelona", "Katmai", "Coppermine",
                                          "Northwood", "Banias", "Athlon", "Bobcat", "generic"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++) {
        if (core && !strcasecmp(core, generic[i])) return 1;
    }
    return 0;
}

static int use_packed(void) {
    if (g_use_packed < 0) {
        const char *env = getenv("XA_GEMM");
        if (env && !strcmp(env, "openblas")) {
            g_use_packed = 0;
        } else if (env && !strcmp(env, "xadapt")) {
            g_use_packed = xa_gemm_available();
        } else {
            g_use_packed = xa_gemm_available() && generic_blas_core();
        }
    }
    return g_use_packed;
}

xa_status xa_gemm_set_engine(const char *name) {
    xa_gemm_cap_avx2(0);
    xa_gemm_cap_bf16_avx512(0);
    if (!name) {
        g_use_packed = -1;
    } else if (!strcmp(name, "openblas")) {
        g_use_packed = 0;
    } else if (!strcmp(name, "xadapt") && xa_gemm_available()) {
        g_use_packed = 1;
    } else if (!strcmp(name, "xadapt-avx2") && xa_gemm_cap_avx2(1)) {
        g_use_packed = 1;
    } else if (!strcmp(name, "bf16-avx512") && xa_gemm_bf16_available()) {
        g_use_packed = -1;
        xa_gemm_cap_bf16_avx512(1);
    } else {
        xa_gemm_cap_avx2(0);
        return xa_error_set(XA_STATUS_USAGE, "xa_gemm_set_engine",
                            "openblas, or xadapt / xadapt-avx2 on a CPU with AVX2+FMA or AVX-512F, or "
                            "bf16-avx512 on a CPU with AVX512-BF16",
                            NULL, "engine '%s' is not available", name);
    }
    return XA_STATUS_OK;
}

const char *xa_gemm_engine(void) {
    if (g_precision == XA_PRECISION_BF16) return xa_gemm_bf16_kernel_name();
    if (g_bf16_asked) return use_packed() ? "fp32 (no bf16 kernel on this CPU), xadapt" : "fp32 (no bf16 kernel on this CPU), openblas";
    return use_packed() ? xa_gemm_kernel_name() : "openblas";
}

const char *xa_blas_info(void) {
    static char buf[640];
    const char *mode = "?";
    switch (openblas_get_parallel()) {
    case 0: mode = "serial"; break;
    case 1: mode = "pthread"; break;
    case 2: mode = "openmp"; break;
    }
    snprintf(buf, sizeof buf, "%s (core %s, %s build); matrix products: %s; xadapt threads %d%s",
             openblas_get_config(), openblas_get_corename(), mode, xa_gemm_engine(), g_threads,
#ifdef XA_HAVE_OPENMP
             ", OpenMP split, BLAS at 1 thread"
#else
             ", BLAS threads"
#endif
    );
    const char *hint = xa_blas_suggested_coretype();
    if (hint && !use_packed()) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len,
                 "; slow kernels for this CPU: start with OPENBLAS_CORETYPE=%s", hint);
    }
    return buf;
}

xa_peak_path xa_gemm_peak_path(void) {
    if (g_precision == XA_PRECISION_BF16) return xa_gemm_bf16_amx() ? XA_PEAK_BF16_AMX : XA_PEAK_BF16_AVX512;
    if (use_packed()) return strstr(xa_gemm_kernel_name(), "avx512") ? XA_PEAK_FP32_AVX512 : XA_PEAK_FP32_AVX2;
    /* OpenBLAS 0.3.21 cores: the AVX2 ones, else the widest fp32 FMA of this CPU */
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX_AVX2"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; i < sizeof avx2_cores / sizeof avx2_cores[0]; i++) {
        if (core && !strcasecmp(core, avx2_cores[i])) return XA_PEAK_FP32_AVX2;
    }
    return xa_peak_unavailable(XA_PEAK_FP32_AVX512) == NULL ? XA_PEAK_FP32_AVX512 : XA_PEAK_FP32_AVX2;
}

/* ---- precision ------------------------------------------------------------------------------ */

xa_status xa_precision_parse(const char *name, const char *where, xa_precision *out) {
    if (name && !strcmp(name, "fp32")) {
        *out = XA_PRECISION_FP32;
    } else if (name && !strcmp(name, "bf16")) {
        *out = XA_PRECISION_BF16;
    } else {
        return xa_error_set(XA_STATUS_USAGE, where, "fp32 or bf16", NULL, "precision '%s'",
                            name ? name : "(null)");
    }
    return XA_STATUS_OK;
}

const char *xa_precision_name(xa_precision p) { return p == XA_PRECISION_BF16 ? "bf16" : "fp32"; }

xa_precision xa_gemm_set_precision(xa_precision p) {
    g_precision = xa_precision_effective(p);
    g_bf16_asked = p == XA_PRECISION_BF16;
    if (g_precision != XA_PRECISION_BF16) xa_gemm_frozen_drop_packs(); /* fp32 holds no packs */
    return g_precision;
}

xa_precision xa_gemm_precision(void) { return g_precision; }

xa_precision xa_precision_effective(xa_precision p) {
    return p == XA_PRECISION_BF16 && xa_gemm_bf16_available() ? XA_PRECISION_BF16 : XA_PRECISION_FP32;
}

uint16_t xa_bf16_round(float f) { return xa_gemm_bf16_bits(f); }

float xa_bf16_value(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void xa_sgemm_bf16_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    enum { KC = 256 };
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * ldc + j];
            float bk = beta;
            for (int p0 = 0; p0 < K || p0 == 0; p0 += KC) {
                float acc = 0.0f;
                int p1 = p0 + KC < K ? p0 + KC : K;
                for (int p = p0; p < p1; p += 2) {
                    float a0 = xa_bf16_value(xa_bf16_round(trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]));
                    float b0 = xa_bf16_value(xa_bf16_round(trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j]));
                    float a1 = 0.0f, b1 = 0.0f;
                    if (p + 1 < p1) {
                        a1 = xa_bf16_value(xa_bf16_round(trans_a ? A[(size_t)(p + 1) * lda + i] : A[(size_t)i * lda + p + 1]));
                        b1 = xa_bf16_value(xa_bf16_round(trans_b ? B[(size_t)j * ldb + p + 1] : B[(size_t)(p + 1) * ldb + j]));
                    }
                    volatile float t = acc + a1 * b1; /* two fp32 roundings, in VDPBF16PS's order */
                    acc = t + a0 * b0;
                }
                float r = alpha * acc;
                *c = bk == 0.0f ? r : r + bk * *c;
                bk = 1.0f;
                if (K == 0) break;
            }
        }
    }
}

/* One block of a product. pre: op(B)'s whole bf16 pack (gemm_frozen.c; bf16 only), of n_pre
 * columns, this block's N starting at column j0 of it; NULL: B as given. */
static void sgemm_one(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, const uint32_t *pre, int n_pre, int j0,
                      float beta, float *C, int ldc) {
    if (pre) {
#if XA_GEMM_X86
        if (xa_gemm_bf16_amx()) {
            xa_gemm_packed_amx_pre(trans_a, M, N, K, alpha, A, lda, pre, n_pre, j0, beta, C, ldc);
            return;
        }
#endif
        xa_gemm_packed_bf16_pre(trans_a, M, N, K, alpha, A, lda, pre, n_pre, j0, beta, C, ldc);
        return;
    }
    if (g_precision == XA_PRECISION_BF16) {
        xa_gemm_packed_bf16_best(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (use_packed()) {
        xa_gemm_packed(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Below this many multiply-adds a product runs in one thread (a parallel region costs ~µs). */
#define XA_SGEMM_SPLIT_MIN (1 << 18)

/* How xa_sgemm splits an (M, N, K) product over nt threads: 0 when it runs as one product (one
 * thread, or fewer than XA_SGEMM_SPLIT_MIN multiply-adds), else the block size along M (*split_m
 * = 1, when M >= N) or N. Blocks are multiples of 16 (one AVX-512 register of floats) so every
 * block but the last runs full-width micro-kernels. In bf16 an N split keeps to the kernel's
 * panels (32 columns): a pack is read from a panel start, and with or without a pack the blocks
 * tile C as the unsplit product does, so the split changes no bit. */
static int split_block(int M, int N, int K, int nt, int *split_m) {
    *split_m = M >= N;
    if (nt <= 1 || (double)M * N * K < XA_SGEMM_SPLIT_MIN) return 0;
    int dim = *split_m ? M : N;
    int blk = (dim + nt - 1) / nt;
    int align = g_precision == XA_PRECISION_BF16 && !*split_m ? xa_gemm_bf16_panel() : 16;
    return (blk + align - 1) / align * align;
}

int xa_sgemm_row_block(int M, int N, int K) {
    pthread_once(&g_once, threads_init_once);
#ifdef XA_HAVE_OPENMP
    int split_m, blk = split_block(M, N, K, g_threads, &split_m);
    return split_m ? blk : 0;
#else
    (void)M, (void)N, (void)K;
    return 0; /* OpenBLAS threads itself: xa_sgemm never splits */
#endif
}

/* xa_sgemm's body; returns whether B came from a frozen weight's bf16 pack (for gemm_trace). */
static int sgemm_run(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

void xa_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    XA_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0) return;
    if (!xa_gemm_trace_on()) {
        sgemm_run(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = xa_time_now();
    int packed = sgemm_run(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    xa_gemm_trace_add(trans_a, trans_b, M, N, K, packed, xa_time_now() - t0);
}

static int sgemm_run(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    pthread_once(&g_once, threads_init_once);
    int nt = g_threads;
#ifdef XA_HAVE_OPENMP
    if (omp_in_parallel()) nt = 1;
#else
    nt = 1; /* OpenBLAS threads itself */
#endif
    /* bf16: a registered frozen weight as B comes packed already; both bf16 kernels read the pack
     * (the AMX one copies a K block's partial last tile step out of it, zero-padded), with the
     * bits of packing B at the product. */
    const int bf16 = g_precision == XA_PRECISION_BF16;
    const uint32_t *pre = bf16 && K > 0 ? xa_gemm_frozen_find(B, trans_b, K, N, ldb) : NULL;
    int split_m, blk = split_block(M, N, K, nt, &split_m);
    if (!blk) {
        sgemm_one(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, pre, N, 0, beta, C, ldc);
        return pre != NULL;
    }
    int dim = split_m ? M : N;
    int n_blk = (dim + blk - 1) / blk;
    XA_OMP("omp parallel for num_threads(nt) schedule(static)")
    for (int i = 0; i < n_blk; i++) {
        int lo = i * blk;
        int len = dim - lo < blk ? dim - lo : blk;
        if (split_m) {
            const float *a = trans_a ? A + lo : A + (size_t)lo * lda;
            sgemm_one(trans_a, trans_b, len, N, K, alpha, a, lda, B, ldb, pre, N, 0, beta,
                      C + (size_t)lo * ldc, ldc);
        } else {
            const float *b = trans_b ? B + (size_t)lo * ldb : B + lo;
            sgemm_one(trans_a, trans_b, M, len, K, alpha, A, lda, b, ldb, pre, N, lo, beta, C + lo, ldc);
        }
    }
    return pre != NULL;
}

void xa_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int p = 0; p < K; p++) {
                float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = beta == 0.0f ? (float)(alpha * acc) : (float)(alpha * acc + (double)beta * *c);
        }
    }
}
