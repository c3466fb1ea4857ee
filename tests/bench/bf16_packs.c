/* bf16_packs: the time of one bf16 product whose B is a frozen weight, packed at each product
 * (XA_BF16_PACKS off: what every product did before) and read from its pack (gemm_frozen.c), for
 * the encoder's shapes at B T = 1024 rows (x W^T and dout W of the attention and FFN matrices),
 * an MLM decoder on 150 masked rows of a 32000-piece vocabulary (both orientations) and adapter
 * shapes (rf 2 and rf 16 at d768: trainable, so never packed ahead; the row says what a pack would
 * save them). Interleaved off / on, best of 5 of ~2 GFLOP each. Not built by CMake:
 *   gcc -O2 -std=gnu11 -fopenmp -DXA_HAVE_OPENMP=1 -Iframework -I. tests/bench/bf16_packs.c build/libxadapt.a \
 *       $(pkg-config --libs openblas yaml-0.1 jansson sentencepiece libutf8proc) -lsentencepiece_train \
 *       -lstdc++ -lm -o /tmp/bf16_packs
 *   OMP_WAIT_POLICY=passive /tmp/bf16_packs 1; OMP_WAIT_POLICY=passive /tmp/bf16_packs 2   (threads) */
#include "tensor/tensor.h"
#include "tensor/gemm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    xa_threads_set(threads);
    xa_gemm_set_precision(XA_PRECISION_BF16);
    /* M, K, N, trans_b */
    int shapes[][4] = {{1024, 768, 768, 1}, {1024, 768, 3072, 1}, {1024, 3072, 768, 1}, {1024, 768, 768, 0},
                       {1024, 3072, 768, 0}, {256, 768, 768, 1}, {150, 768, 32000, 1}, {150, 32000, 768, 0},
                       {1024, 768, 384, 1}, {1024, 384, 768, 1}, {1024, 768, 48, 1}, {1024, 48, 768, 1}};
    int ns = sizeof shapes / sizeof shapes[0];
    printf("threads %d\n| M | K | N | trans_b | per-product pack ms | pre-packed ms | ratio | GFLOP/s pre |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n", threads);
    for (int s = 0; s < ns; s++) {
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2], tb = shapes[s][3];
        int rows = tb ? N : K, cols = tb ? K : N;
        float *A = aligned_alloc(64, (size_t)M * K * 4 + 64), *W = aligned_alloc(64, (size_t)rows * cols * 4 + 64), *C = aligned_alloc(64, (size_t)M * N * 4 + 64);
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (size_t i = 0; i < (size_t)rows * cols; i++) W[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        xa_gemm_frozen_add(W, rows, cols, "W");
        double best[2] = {1e9, 1e9};
        double flops = 2.0 * M * N * K;
        int reps = (int)(2e9 / flops) + 1;
        for (int r = 0; r < 5; r++) {
            for (int on = 0; on < 2; on++) {
                xa_gemm_frozen_set_enabled(on);
                xa_sgemm(0, tb, M, N, K, 1.0f, A, K, W, cols, 0.0f, C, N);
                double t0 = now();
                for (int i = 0; i < reps; i++) xa_sgemm(0, tb, M, N, K, 1.0f, A, K, W, cols, 0.0f, C, N);
                double t = (now() - t0) / reps;
                if (t < best[on]) best[on] = t;
            }
        }
        printf("| %d | %d | %d | %d | %.3f | %.3f | %.3f | %.1f |\n", M, K, N, tb, best[0] * 1e3, best[1] * 1e3, best[0] / best[1], flops / best[1] * 1e-9);
        xa_gemm_frozen_remove(W);
        free(A); free(W); free(C);
    }
    return 0;
}
