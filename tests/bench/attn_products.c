/* attn_products: the time of attention's per-head products (xa_attention_forward/backward run one
 * (batch, head) block per thread: L = T = 128, head size 64, row stride C = 768, as at base size)
 * on one thread, in fp32 and bf16, beside one encoder-sized product (1024 x 768 . 768 x 768), to
 * see whether the small per-head products run slower than the large ones. Best of 5. Not built
 * by CMake:
 *   gcc -O2 -std=gnu11 -fopenmp -DXA_HAVE_OPENMP=1 -Iframework -I. tests/bench/attn_products.c build/libxadapt.a \
 *       $(pkg-config --libs openblas yaml-0.1 jansson sentencepiece libutf8proc) -lsentencepiece_train \
 *       -lstdc++ -lm -o /tmp/attn_products && OMP_WAIT_POLICY=passive /tmp/attn_products */
#include "tensor/tensor.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

enum { L = 128, HS = 64, C = 768, T = 128, BT = 1024 };

static void product(int s, float *q, float *k, float *P, float *ctx) {
    switch (s) {
    case 0: xa_sgemm(0, 1, L, L, HS, 0.125f, q, C, k, C, 0.0f, P, T); break; /* Q K^T */
    case 1: xa_sgemm(0, 0, L, HS, L, 1.0f, P, T, k, C, 0.0f, ctx, C); break;  /* P V */
    case 2: xa_sgemm(1, 0, L, HS, L, 1.0f, P, T, q, C, 1.0f, ctx, C); break;  /* P^T dctx (dV) */
    default: xa_sgemm(0, 0, BT, C, C, 1.0f, q, C, k, C, 0.0f, ctx, C); break; /* x W */
    }
}

int main(void) {
    static const char *const names[] = {"Q K^T 128x128x64", "P V 128x64x128", "P^T dctx 128x64x128",
                                        "x W 1024x768x768"};
    xa_threads_set(1);
    float *q = malloc(sizeof(float) * BT * C), *k = malloc(sizeof(float) * BT * C),
          *P = malloc(sizeof(float) * L * T), *ctx = calloc((size_t)BT * C, sizeof(float));
    if (!q || !k || !P || !ctx) return 1;
    for (int i = 0; i < BT * C; i++) {
        q[i] = (float)(i % 97) / 97.0f - 0.5f;
        k[i] = (float)(i % 89) / 89.0f - 0.5f;
    }
    for (int i = 0; i < L * T; i++) P[i] = (float)(i % 83) / 83.0f;
    printf("| precision | product | us | GFLOP/s (1 thread) |\n|---|---|---:|---:|\n");
    for (int bf16 = 0; bf16 < 2; bf16++) {
        xa_gemm_set_precision(bf16 ? XA_PRECISION_BF16 : XA_PRECISION_FP32);
        for (int s = 0; s < 4; s++) {
            int reps = s == 3 ? 10 : 2000;
            double best = 1e9;
            for (int r = 0; r < 5; r++) {
                double t0 = now();
                for (int it = 0; it < reps; it++) product(s, q, k, P, ctx);
                double dt = (now() - t0) / reps;
                if (dt < best) best = dt;
            }
            double flops = s == 3 ? 2.0 * BT * C * C : 2.0 * L * L * HS;
            printf("| %s | %s | %.2f | %.1f |\n", xa_precision_name(xa_gemm_precision()), names[s], best * 1e6,
                   flops / best * 1e-9);
        }
    }
    free(q), free(k), free(P), free(ctx);
    return 0;
}
