/* tensor/gemm_avx2: the packed product with the AVX2+FMA 6 x 16 micro-kernel. Compiled with
 * -mavx2 -mfma whatever the rest of the build targets; gemm.c calls it only on a CPU that has AVX2
 * and FMA (run-time dispatch). */
#define XA_GEMM_ISA 256
#define XA_GEMM_FN xa_gemm_packed_avx2
#include "tensor/gemm_body.inc"
