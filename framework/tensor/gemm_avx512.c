/* tensor/gemm_avx512: the packed product with the AVX-512F 12 x 32 micro-kernel. Compiled with
 * -mavx512f -mfma whatever the rest of the build targets; gemm.c calls it only on a CPU that has
 * AVX-512F (run-time dispatch). */
#define XA_GEMM_ISA 512
#define XA_GEMM_FN xa_gemm_packed_avx512
#include "tensor/gemm_body.inc"
