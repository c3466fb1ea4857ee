/* tensor/gemm: xadapt's own packed single-precision matrix product (internal to tensor).
 * Used by xa_sgemm when it is faster than the BLAS in use (see blas.c). */
#ifndef XA_TENSOR_GEMM_H
#define XA_TENSOR_GEMM_H

/* 1 when this build has a SIMD micro-kernel (AVX-512F or AVX2+FMA), else 0. */
int xa_gemm_available(void);
/* The micro-kernel in use: "avx512 12x32", "avx2 6x16" or "none". */
const char *xa_gemm_kernel_name(void);

/* C(M,N) = alpha op(A) op(B) + beta C, row-major, single thread; same contract as xa_sgemm. */
void xa_gemm_packed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
