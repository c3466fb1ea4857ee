/* tensor/peak: register-only peak rates of the arithmetic paths the matrix products can use, and
 * the CPU they run on. Each loop keeps its operands in registers (no loads or stores in the timed
 * part), with enough independent accumulators to cover the instruction's latency on any current
 * x86 core (latency 4-6 cycles, up to 2 issues a cycle: 16 chains of zmm, 12 of ymm), so it
 * measures what the
 * execution units deliver and nothing else:
 *
 *   fp32-avx512  VFMADD231PS zmm: 16 lanes x 2 flops             = 32 flops an instruction
 *   fp32-avx2    VFMADD231PS ymm:  8 lanes x 2 flops             = 16
 *   bf16-avx512  VDPBF16PS zmm: 16 lanes x 2 bf16 multiply-adds  = 64
 *   bf16-amx     TDPBF16PS: (16 x 16 fp32) += (16 x 32 bf16)(32 x 16 bf16) = 16384
 *
 * The ISA-specific loops are compiled per function (target attributes) and called only after a
 * run-time check of CPUID (and, for AMX, XCR0 and the kernel's permission: arch_prctl
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16+, asked once per process by
 * xa_gemm_amx_unavailable in gemm.c, which the AMX GEMM kernel shares), so the default portable
 * build keeps them. A path this CPU (or build) cannot run is skipped and xa_peak_unavailable says why.
 * What this does not measure: memory or cache bandwidth, packing, or anything a real product
 * needs besides the multiply-adds; it is the ceiling that bench rows are compared with. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "tensor/gemm.h"
#include "tensor/tensor.h"

#if XA_GEMM_X86
#include <cpuid.h>
#include <immintrin.h>
#endif

#ifdef XA_HAVE_OPENMP
#include <omp.h>
#endif

static const char *const g_names[XA_PEAK_N_PATHS] = {"fp32-avx512", "fp32-avx2", "bf16-avx512", "bf16-amx"};
static const double g_flops_per_insn[XA_PEAK_N_PATHS] = {32.0, 16.0, 64.0, 16384.0};

const char *xa_peak_path_name(xa_peak_path p) {
    return p >= 0 && p < XA_PEAK_N_PATHS ? g_names[p] : "?";
}

const char *xa_peak_path_instruction(xa_peak_path p) {
    static const char *const insn[XA_PEAK_N_PATHS] = {"vfmadd231ps zmm", "vfmadd231ps ymm", "vdpbf16ps zmm",
                                                      "tdpbf16ps"};
    return p >= 0 && p < XA_PEAK_N_PATHS ? insn[p] : "?";
}

#if XA_GEMM_X86
#define CHAINS 16  /* zmm: 16 accumulators + 2 constants of the 32 registers */
#define CHAINS2 12 /* ymm: 12 + 2 of the 16 registers AVX2 has */

/* Each loop runs `iters` rounds of CHAINS independent instructions and returns a value that
 * depends on every accumulator, so nothing is optimised away. The multipliers keep the values
 * normal and bounded (x -> 0.999 x + 1e-3 converges to 1). */
__attribute__((target("avx512f,fma"))) static float loop_fp32_avx512(int64_t iters) {
    __m512 acc[CHAINS];
    const __m512 m = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, b);
    }
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float loop_fp32_avx2(int64_t iters) {
    __m256 acc[CHAINS2];
    const __m256 m = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
    for (int i = 0; i < CHAINS2; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS2; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, b);
    }
    for (int i = 1; i < CHAINS2; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    float out[8];
    _mm256_storeu_ps(out, acc[0]);
    return out[0] + out[7];
}

/* acc += a . b over bf16 pairs; a = (2^-12, 2^-12) and b = (1, 1) add 2^-11 a round to each lane,
 * far from overflow in any run length. */
__attribute__((target("avx512f,avx512bf16"))) static float loop_bf16_avx512(int64_t iters) {
    __m512 acc[CHAINS];
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x39803980), b = (__m512bh)_mm512_set1_epi32(0x3f803f80);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    }
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

/* AMX: tiles 0-3 accumulate (16 rows x 16 fp32), 4-5 hold A (16 rows x 32 bf16), 6-7 hold B
 * (16 rows of 32 bf16 = 2 x 16 pairs), loaded once; four independent TDPBF16PS a round. */
typedef struct amx_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

__attribute__((target("amx-tile,amx-bf16"))) static float loop_bf16_amx(int64_t iters) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    static _Thread_local uint16_t ops[16 * 32] __attribute__((aligned(64)));
    static _Thread_local float out[16 * 16] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) ops[i] = 0x3980; /* 2^-12 */
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ops, 64);
    _tile_loadd(5, ops, 64);
    _tile_loadd(6, ops, 64);
    _tile_loadd(7, ops, 64);
    for (int64_t it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    float s = out[0];
    _tile_stored(3, out, 64);
    _tile_release();
    return s + out[255];
}

#endif

const char *xa_peak_unavailable(xa_peak_path p) {
#if XA_GEMM_X86
    __builtin_cpu_init();
    switch (p) {
    case XA_PEAK_FP32_AVX512:
        return __builtin_cpu_supports("avx512f") ? NULL : "this CPU (or its OS) has no AVX-512F";
    case XA_PEAK_FP32_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? NULL : "this CPU has no AVX2+FMA";
    case XA_PEAK_BF16_AVX512:
        return xa_gemm_bf16_available() ? NULL : "this CPU has no AVX512-BF16 (CPUID.(7,1):EAX bit 5)";
    case XA_PEAK_BF16_AMX: return xa_gemm_amx_unavailable(); /* CPUID, XCR0, Linux's permission */
    default: return "no such path";
    }
#else
    (void)p;
    return "not an x86-64 build with GCC or clang (no SIMD kernels compiled)";
#endif
}

#if XA_GEMM_X86
static float run_loop(xa_peak_path p, int64_t iters) {
    switch (p) {
    case XA_PEAK_FP32_AVX512: return loop_fp32_avx512(iters);
    case XA_PEAK_FP32_AVX2: return loop_fp32_avx2(iters);
    case XA_PEAK_BF16_AVX512: return loop_bf16_avx512(iters);
    case XA_PEAK_BF16_AMX: return loop_bf16_amx(iters);
    default: return 0.0f;
    }
}
#endif

/* Best rate over rounds of `iters` rounds on every thread at once (wall time of the slowest). */
double xa_peak_gflops(xa_peak_path p, int threads, double min_seconds) {
    if (xa_peak_unavailable(p) != NULL || threads < 1) return 0.0;
#if XA_GEMM_X86
#ifndef XA_HAVE_OPENMP
    if (threads > 1) return 0.0; /* no OpenMP in this build: one thread only */
#endif
    const double per_round = g_flops_per_insn[p] * (p == XA_PEAK_BF16_AMX ? 4 : p == XA_PEAK_FP32_AVX2 ? CHAINS2 : CHAINS);
    /* calibrate on one thread: a round of about 20 ms */
    int64_t iters = 1 << 12;
    volatile float sink = 0.0f;
    for (;;) {
        double t0 = xa_time_now();
        sink += run_loop(p, iters);
        double dt = xa_time_now() - t0;
        if (dt > 0.02 || iters > ((int64_t)1 << 40)) break;
        iters *= dt > 0.002 ? (int64_t)(0.02 / dt) + 1 : 8;
    }
    double best = 0.0, t_end = xa_time_now() + min_seconds;
    do {
        double t0 = xa_time_now();
        float s = 0.0f;
        XA_OMP("omp parallel num_threads(threads) reduction(+ : s)")
        s += run_loop(p, iters);
        double g = per_round * (double)iters * threads / (xa_time_now() - t0) / 1e9;
        sink += s;
        best = g > best ? g : best;
    } while (xa_time_now() < t_end);
    (void)sink;
    return isfinite(best) ? best : 0.0;
#else
    (void)min_seconds;
    return 0.0;
#endif
}

const char *xa_cpu_info(void) {
    static char buf[512];
    char model[49] = "unknown";
#if XA_GEMM_X86
    unsigned r[12] = {0};
    unsigned max = __get_cpuid_max(0x80000000u, NULL);
    if (max >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(model, r, 48);
        model[48] = '\0';
    }
    const char *m = model;
    while (*m == ' ') m++;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0, eax1 = 0;
    __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) eax1 = a1;
    __builtin_cpu_init();
    snprintf(buf, sizeof buf, "%s; flags:%s%s%s%s%s%s%s%s", m, __builtin_cpu_supports("avx2") ? " avx2" : "",
             __builtin_cpu_supports("fma") ? " fma" : "", __builtin_cpu_supports("avx512f") ? " avx512f" : "",
             __builtin_cpu_supports("avx512bw") ? " avx512bw" : "", (eax1 >> 5) & 1u ? " avx512_bf16" : "",
             (edx >> 24) & 1u ? " amx_tile" : "", (edx >> 22) & 1u ? " amx_bf16" : "",
             (edx >> 22) & 1u ? "" : " (no amx)");
#else
    snprintf(buf, sizeof buf, "%s; flags: (not an x86-64 build)", model);
#endif
    return buf;
}
