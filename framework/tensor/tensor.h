/* tensor: the numeric kernels of the encoder, forward and backward, over raw float buffers.
 *
 * Conventions (llm.c):
 *  - Argument order: outputs, saved-for-backward buffers, const inputs, const weights, dimensions.
 *  - Every buffer is row-major and contiguous; its shape is written beside it. Dimension letters:
 *    N rows (= B*T tokens), C channels, OC output channels, B batch, T sequence, NH heads,
 *    HS = C/NH head size, V vocabulary or table rows.
 *  - Kernels never allocate and never fail: wrong dimensions are programmer errors (XA_ASSERT).
 *    Callers plan scratch space and pass it in.
 *  - Backward kernels ADD into gradients (they accumulate, the caller zeroes). A NULL weight
 *    gradient means the weight is frozen: only the input gradient is computed. A NULL input
 *    gradient means it is not wanted (the lowest trainable layer).
 *  - Every fast kernel has a plain reference twin `<name>_ref` (naive loops, double accumulation
 *    where it matters) with the same signature; the tests compare the two.
 *  - Threads: kernels use xa_threads_get() threads (OpenMP when built with it). Matrix products run
 *    OpenBLAS single-threaded inside our own OpenMP split, so the two pools never compete.
 */
#ifndef XA_TENSOR_H
#define XA_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- threads and BLAS (blas.c) --------------------------------------------------------------- */

/* XA_OMP("omp parallel for ...") expands to the pragma when built with OpenMP, else to nothing,
 * so kernels compile warning-free either way. Use num_threads(xa_threads_get()). */
#ifdef XA_HAVE_OPENMP
#define XA_OMP(directive) _Pragma(directive)
#else
#define XA_OMP(directive)
#endif

/* Set the number of threads every kernel and matrix product uses; n <= 0 means all cores.
 * Returns the count now in effect. OpenBLAS itself is kept at 1 thread: xa_sgemm splits large
 * products over our OpenMP threads, so BLAS and OpenMP threads never oversubscribe. Call it from
 * the main thread, outside any kernel. Default: 1 until set (tests), the CLI sets it. */
int xa_threads_set(int n);
/* Processes sharing this machine's cores (data-parallel ranks on one host; default 1): from then
 * on, "all cores" in xa_threads_set means the cores divided by it (at least 1). */
void xa_threads_set_sharers(int n);
/* The count set by xa_threads_set (1 before any call). */
int xa_threads_get(void);
/* Cores this process may use (omp_get_num_procs, which honours the affinity mask; online CPUs
 * without OpenMP), >= 1. */
int xa_threads_available(void);

/* A one-line description of the BLAS in use for benchmarks and logs, e.g.
 * "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64 (core Haswell, pthread build;
 * xadapt threads 1, ...)", plus the advice of xa_blas_suggested_coretype when there is one.
 * Static storage, rewritten by each call; never NULL. */
const char *xa_blas_info(void);
/* OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know recent Xeons (e.g. family 6 model 0xCF) and falls
 * back to its SSE3 "Prescott" kernels, 3-5x slower. When the CPU has AVX-512 (or AVX2+FMA) but
 * the selected core is older, this returns the OPENBLAS_CORETYPE value to use ("SkylakeX" or
 * "Haswell"); else NULL. OpenBLAS reads that variable only when it is loaded, so it must be in
 * the environment before the process starts (the CLI may re-exec itself with it). */
const char *xa_blas_suggested_coretype(void);
/* The engine of xa_sgemm: "openblas", or xadapt's packed kernel ("avx512 12x32", "avx2 6x16"),
 * which is used when OpenBLAS runs a generic pre-AVX2 core on a CPU with AVX2 or AVX-512
 * (XA_GEMM=openblas or XA_GEMM=xadapt in the environment forces one). */
const char *xa_gemm_engine(void);
/* Force the engine ("openblas", "xadapt": the widest micro-kernel of this CPU, "xadapt-avx2": the
 * AVX2 one even on an AVX-512 CPU; "bf16-avx512": bf16 products on the AVX512-BF16 kernel even
 * where AMX runs, fp32 automatic, as XA_GEMM_ISA=avx512-bf16 does at start; NULL: back to the
 * automatic choice), for tests and benchmarks. The micro-kernels are picked at run time, so a
 * portable build has them too. USAGE when the CPU has no kernel for the name. */
xa_status xa_gemm_set_engine(const char *name);

/* C(M,N) = alpha * op(A) * op(B) + beta * C, row-major; op(X) = X or X^T (trans_x != 0).
 * op(A) is (M,K), op(B) is (K,N). Leading dimensions are in elements of the stored matrices.
 * beta = 0 overwrites C (NaNs in C are not propagated). */
void xa_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/* The rows at which xa_sgemm splits an (M, N, K) product over its threads: the block size (the last
 * block may be shorter), or 0 when it does not split by rows (one thread, a small product, a split
 * by columns, or a build without OpenMP). Call it outside parallel regions. */
int xa_sgemm_row_block(int M, int N, int K);
/* Product shapes and their time (tensor/gemm_trace.c): with XA_GEMM_TRACE=1 in the environment
 * (read at the first product) or after xa_gemm_trace_enable(1), every xa_sgemm is timed and
 * counted per (transposes, M, N, K, B from a bf16 pack, in a parallel region), and
 * xa_gemm_trace_report writes a Markdown table of them, the largest share first, with each
 * shape's GFLOP/s (at exit when the variable set it; `xadapt bench` rows print theirs). Enabling
 * or disabling clears the rows. xa_gemm_trace_report returns the rows written (0 when off). */
int xa_gemm_trace_on(void);
void xa_gemm_trace_enable(int on);
void xa_gemm_trace_add(int trans_a, int trans_b, int M, int N, int K, int packed, double seconds);
int xa_gemm_trace_report(FILE *f);
void xa_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Precision of xa_sgemm's products (mixed precision: LayerNorm, softmax, the losses, optimizer
 * state and master weights stay fp32 whatever this says).
 *  - XA_PRECISION_FP32 (the default): fp32 operands and accumulation.
 *  - XA_PRECISION_BF16: operands rounded to bf16 (nearest even) as they are packed, products
 *    accumulated in fp32 (xa_sgemm_bf16_ref is the contract), on AMX tiles ("amx-bf16 32x32",
 *    TDPBF16PS) where CPUID, XCR0 and Linux's tile-data permission allow them, else on the
 *    AVX512-BF16 micro-kernel ("avx512-bf16 12x32", VDPBF16PS); on a CPU without AVX512-BF16 the
 *    products stay fp32 and xa_gemm_engine() says so ("fp32: no bf16 kernel on this CPU").
 *    The AMX kernel sums each pair even k first (TDPBF16PS's order, xa_sgemm_amx_ref), the
 *    AVX512-BF16 one odd k first: the two differ by fp32 roundings, within the same bound.
 *    Activations and trainable weights are converted at each product (the fp32 master is their
 *    only copy); frozen weights that their owner registers (xa_gemm_frozen_add below: the encoder
 *    and MLM head of a phase that keeps them frozen, an inference model after loading) are
 *    converted and packed once, on their first product in each orientation, with the same bits
 *    as per-product packing (both kernels read the same packs). */
typedef enum xa_precision { XA_PRECISION_FP32 = 0, XA_PRECISION_BF16 = 1 } xa_precision;
/* "fp32" or "bf16" into *out; USAGE naming `where` otherwise. */
xa_status xa_precision_parse(const char *name, const char *where, xa_precision *out);
const char *xa_precision_name(xa_precision p);
/* Process-wide; set before any product runs in parallel. Returns the precision in effect: BF16
 * only where the CPU has the kernel, else FP32. */
xa_precision xa_gemm_set_precision(xa_precision p);
xa_precision xa_gemm_precision(void);
/* What xa_gemm_set_precision(p) would put in effect on this CPU, without setting it. */
xa_precision xa_precision_effective(xa_precision p);
/* The bf16 contract in scalar C, on every machine: op(A) and op(B) rounded to bf16 (nearest even),
 * each product exact in fp32, summed in fp32 per block of 256 k values, two k values at a time
 * (acc += a[k+1] b[k+1], then acc += a[k] b[k], as VDPBF16PS does), the blocks added into C. */
void xa_sgemm_bf16_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The AMX kernel (tensor/gemm_amx.c) on a scalar emulation of the tiles (tensor/gemm_amx_emu.c),
 * on every machine: the tile configuration, strides and shapes asserted, TDPBF16PS's arithmetic
 * as Intel's SDM states it. Tests only: about 2 ns a multiply-add on this project's AMD EPYC,
 * some 200 times the AVX512-BF16 kernel's time. */
void xa_sgemm_amx_emu(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The emulated kernel's arithmetic element by element, no tiles: per block of 256 k values (padded
 * with zeros to whole steps of 32), acc = acc + a[k] b[k] in k order, one fp32 rounding each
 * (nearest even), bf16 subnormal inputs read as 0, subnormal sums flushed; C = alpha acc + bk C as
 * xa_sgemm_bf16_ref. xa_sgemm_amx_emu must equal it bit for bit. */
void xa_sgemm_amx_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* bf16 <-> fp32 (nearest even; NaN stays a quiet NaN) as the kernels round. */
uint16_t xa_bf16_round(float f);
float xa_bf16_value(uint16_t b);

/* bf16 packs of frozen weights (gemm_frozen.c). W (rows, cols) row-major is registered by the
 * owner of its memory for as long as its values do not change; in bf16 precision, a product whose
 * B operand is all of W (xa_sgemm with B = w, ldb = cols: trans_b 1 with K = cols, N = rows, or
 * trans_b 0 with K = rows, N = cols) then reads W's pack of that orientation, made on first use
 * (2 bytes an element each). Same bits as without. Call add / remove between products, never while
 * one runs. Writing a registered weight is a programmer error that XA_BF16_PACKS_CHECK=1 catches
 * (every use re-packs and compares; a mismatch is logged as an error, counted and repaired).
 * XA_BF16_PACKS=off in the environment turns the packs off, XA_BF16_PACKS=forward keeps only the
 * W^T (forward) packs: half the memory, backward packs W per product. fp32 precision never packs. */
/* Register w; name (may be NULL) is for messages. ASSERT when w overlaps a registered weight;
 * NOMEM. Nothing is packed yet. */
xa_status xa_gemm_frozen_add(const float *w, int rows, int cols, const char *name);
/* Drop w and free its packs (no-op when w is not registered). */
void xa_gemm_frozen_remove(const float *w);
/* Free every pack, keep the registrations (xa_gemm_set_precision(FP32) does it). */
void xa_gemm_frozen_drop_packs(void);
/* 1 when [p, p + bytes) overlaps a registered weight (the trainer's check on what trains). */
int xa_gemm_frozen_overlaps(const void *p, size_t bytes);
/* Re-pack every existing pack from its source and compare: returns how many no longer matched
 * (each logged and repaired). xa_gemm_frozen_stale: all mismatches found so far. */
size_t xa_gemm_frozen_verify(void);
size_t xa_gemm_frozen_stale(void);
/* Bytes held by packs; registered weights; packs made so far (each orientation counts one). */
size_t xa_gemm_frozen_bytes(void);
int xa_gemm_frozen_count(void);
size_t xa_gemm_frozen_made(void);
/* Tests and benchmarks: packs on (1), forward only (2), off (0, packs freed), or back to
 * XA_BF16_PACKS (-1); the check on, off, or back to XA_BF16_PACKS_CHECK (-1). */
void xa_gemm_frozen_set_enabled(int on);
int xa_gemm_frozen_enabled(void);
void xa_gemm_frozen_set_check(int on);

/* ---- register-only peaks (peak.c) ------------------------------------------------------------
 * GFLOP/s of the multiply-add instruction of each arithmetic path with operands in registers: the
 * ceiling a product on that path can approach (2 flops per multiply-add). */
typedef enum xa_peak_path {
    XA_PEAK_FP32_AVX512 = 0, /* vfmadd231ps zmm: 32 flops */
    XA_PEAK_FP32_AVX2,       /* vfmadd231ps ymm: 16 flops */
    XA_PEAK_BF16_AVX512,     /* vdpbf16ps zmm: 32 bf16 multiply-adds, 64 flops (AVX512-BF16) */
    XA_PEAK_BF16_AMX,        /* tdpbf16ps: 16 x 16 x 32 multiply-adds, 16384 flops (AMX-BF16) */
    XA_PEAK_N_PATHS
} xa_peak_path;
/* "fp32-avx512", "fp32-avx2", "bf16-avx512", "bf16-amx" ("?" out of range). */
const char *xa_peak_path_name(xa_peak_path p);
/* The instruction timed, e.g. "vdpbf16ps zmm". */
const char *xa_peak_path_instruction(xa_peak_path p);
/* NULL when this CPU, OS and build run path p; else why not (static text: no such instruction in
 * CPUID, the kernel refused AMX tile data, not an x86-64 build). For AMX the first call asks Linux
 * for the tile-data permission (arch_prctl ARCH_REQ_XCOMP_PERM), process-wide. */
const char *xa_peak_unavailable(xa_peak_path p);
/* Best GFLOP/s of path p on `threads` threads at once (OpenMP; each thread runs the loop; total
 * rate), over rounds of about 20 ms for at least min_seconds. 0 when the path is unavailable, or
 * threads > 1 in a build without OpenMP. Call it outside parallel regions. */
double xa_peak_gflops(xa_peak_path p, int threads, double min_seconds);
/* The path xa_sgemm's products use now: in bf16 precision BF16_AMX on the AMX kernel, else
 * BF16_AVX512; in fp32, xadapt's kernel's width, FP32_AVX2 for OpenBLAS's AVX2 cores (Haswell,
 * Zen), else the widest fp32 FMA of this CPU (OpenBLAS SkylakeX/Cooperlake; for a generic core,
 * the ceiling it falls short of). */
xa_peak_path xa_gemm_peak_path(void);
/* "<CPUID brand string>; flags: avx2 fma avx512f ... amx_bf16" (static buffer). */
const char *xa_cpu_info(void);

/* ---- linear (linear.c) ----------------------------------------------------------------------- */

/* out = inp · weight^T + bias (PyTorch nn.Linear layout). bias may be NULL. */
void xa_linear_forward(float *out,          /* (N, OC) */
                       const float *inp,    /* (N, C) */
                       const float *weight, /* (OC, C) */
                       const float *bias,   /* (OC) or NULL */
                       int N, int C, int OC);
/* dinp += dout · weight; dweight += dout^T · inp; dbias += column sums of dout.
 * Each gradient may be NULL (not computed). */
void xa_linear_backward(float *dinp,         /* (N, C) or NULL */
                        float *dweight,      /* (OC, C) or NULL: frozen */
                        float *dbias,        /* (OC) or NULL */
                        const float *dout,   /* (N, OC) */
                        const float *inp,    /* (N, C); may be NULL when dweight is NULL */
                        const float *weight, /* (OC, C); may be NULL when dinp is NULL */
                        int N, int C, int OC);
/* Row blocks that let a caller run a chain of row-local steps, products included, as one
 * parallel region with the bits of the separate calls. xa_sgemm (blas.c) splits a product of M
 * rows over t = xa_threads_get() threads when t > 1 and M*N*K >= 2^18, by rows when M >= N: blocks
 * of ceil(M / t) rows rounded up to 16, one single-threaded product each; inside a parallel region
 * it runs the product it is given in the calling thread. So when the n products
 * (N, C[i]) . (C[i], OC[i]) of the chain all split by rows, a thread that runs rows
 * [k blk, (k + 1) blk) of each of them (xa_linear_forward on those rows, inside the region) makes
 * exactly the single-threaded products the separate calls would (xa_sgemm_row_block, the rule
 * xa_sgemm itself uses, gives each product's blocks). Returns blk (the last block may
 * be shorter), or 0 when some product would not split by rows, with one thread, or without OpenMP:
 * the caller then makes the separate calls. test_tensor checks it against xa_sgemm bit for bit. */
int xa_linear_row_block(int N, const int *C, const int *OC, int n);
void xa_linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int C, int OC);
void xa_linear_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC);

/* ---- layernorm (layernorm.c) ----------------------------------------------------------------- */

/* out = (inp - mean) * rstd * weight + bias per row, rstd = 1/sqrt(var + eps), biased variance
 * (PyTorch nn.LayerNorm). mean and rstd are saved for backward and may be NULL (inference).
 * out may equal inp. */
void xa_layernorm_forward(float *out,          /* (N, C) */
                          float *mean,         /* (N) or NULL */
                          float *rstd,         /* (N) or NULL */
                          const float *inp,    /* (N, C) */
                          const float *weight, /* (C) */
                          const float *bias,   /* (C) */
                          int N, int C, float eps);
/* The residual sum and the LayerNorm after it in one pass over each block of rows:
 *     ab = a + b,  sum = ab + c (or a + b without c, or a alone without b),  out = LN(sum)
 * bit for bit what xa_residual_forward (once or twice) followed by xa_layernorm_forward computes.
 * ab (only with c), sum, mean and rstd may be NULL (not kept); b and c may be NULL (c needs b).
 * out may equal a, b or c; ab and sum must not overlap the inputs. */
void xa_layernorm_residual_forward(float *out,          /* (N, C) */
                                   float *ab,           /* (N, C) or NULL */
                                   float *sum,          /* (N, C) or NULL: the LN input */
                                   float *mean,         /* (N) or NULL */
                                   float *rstd,         /* (N) or NULL */
                                   const float *a,      /* (N, C) */
                                   const float *b,      /* (N, C) or NULL */
                                   const float *c,      /* (N, C) or NULL */
                                   const float *weight, /* (C) */
                                   const float *bias,   /* (C) */
                                   int N, int C, float eps);
void xa_layernorm_residual_forward_ref(float *out, float *ab, float *sum, float *mean, float *rstd,
                                       const float *a, const float *b, const float *c,
                                       const float *weight, const float *bias, int N, int C,
                                       float eps);
/* dinp += dL/dinp; dweight += sum_rows(dout * xhat); dbias += sum_rows(dout). NULL = skip. */
void xa_layernorm_backward(float *dinp,         /* (N, C) or NULL */
                           float *dweight,      /* (C) or NULL: frozen */
                           float *dbias,        /* (C) or NULL: frozen */
                           const float *dout,   /* (N, C) */
                           const float *inp,    /* (N, C) */
                           const float *weight, /* (C) */
                           const float *mean,   /* (N) */
                           const float *rstd,   /* (N) */
                           int N, int C);
void xa_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps);
void xa_layernorm_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);

/* ---- activations (act.c) --------------------------------------------------------------------- */

typedef enum xa_act {
    XA_ACT_LINEAR = 0, /* identity: "linear" */
    XA_ACT_RELU,       /* "relu" */
    XA_ACT_GELU,       /* exact: 0.5 x (1 + erf(x / sqrt 2)): "gelu" */
    XA_ACT_GELU_NEW,   /* tanh approximation (HF gelu_new): "gelu_new", "gelu_pytorch_tanh" */
    XA_ACT_SILU,       /* x * sigmoid(x): "silu", "swish" */
    XA_ACT_TANH,       /* "tanh" */
    XA_ACT_SIGMOID,    /* "sigmoid" */
    XA_ACT_LEAKYRELU,  /* slope 0.01 (PyTorch default): "leakyrelu" */
    XA_ACT_QUICK_GELU, /* x * sigmoid(1.702 x): "quick_gelu" */
    XA_ACT_COUNT
} xa_act;

/* Parse an activation name as HF / AdapterHub spell it (case-insensitive). Unknown names give
 * XA_STATUS_CONFIG with the list of known names. The AdapterHub legacy rename (a config without
 * "version": "gelu" means gelu_new) is the caller's business (io). */
xa_status xa_act_parse(const char *name, xa_act *out);
/* Canonical name ("gelu", "gelu_new", "silu", ...); "?" for an out-of-range value. */
const char *xa_act_name(xa_act act);

/* out = f(inp) elementwise; out may equal inp. */
void xa_act_forward(float *out,       /* (n) */
                    const float *inp, /* (n) pre-activation */
                    size_t n, xa_act act);
/* dinp += dout * f'(inp). dinp must not alias dout. */
void xa_act_backward(float *dinp,       /* (n) */
                     const float *dout, /* (n) */
                     const float *inp,  /* (n) the saved pre-activation */
                     size_t n, xa_act act);
void xa_act_forward_ref(float *out, const float *inp, size_t n, xa_act act);
void xa_act_backward_ref(float *dinp, const float *dout, const float *inp, size_t n, xa_act act);

/* ---- softmax and attention (attention.c) ------------------------------------------------------
 */

/* out = softmax(inp) over each row of C. out may equal inp. */
void xa_softmax_forward(float *out,       /* (N, C) */
                        const float *inp, /* (N, C) */
                        int N, int C);
/* dinp += out * (dout - sum_c(dout * out)). dinp must not alias dout. */
void xa_softmax_backward(float *dinp,       /* (N, C) */
                         const float *dout, /* (N, C) */
                         const float *out,  /* (N, C) the saved forward output */
                         int N, int C);
void xa_softmax_forward_ref(float *out, const float *inp, int N, int C);
void xa_softmax_backward_ref(float *dinp, const float *dout, const float *out, int N, int C);

/* Multi-head self-attention core (the part between the Q/K/V projections and the output dense):
 *     P_h = softmax(Q_h K_h^T / sqrt(HS) + padding mask),   ctx_h = dropout(P_h) V_h
 * per batch row b and head h, where Q_h is the (T, HS) slice q[b, :, h*HS:(h+1)*HS].
 * Padding is on the right: lens[b] valid tokens (lens NULL = all T). Keys at positions >= lens[b]
 * get probability exactly 0 (as HF's additive dtype-min mask); the products run only over the
 * first lens[b] rows and columns. Rows of ctx at padded query positions are written as zeros, and
 * padded parts of att are zeroed: they hold no meaning, and backward ignores them.
 * Dropout on the probabilities (HF attention_probs_dropout_prob): keep is a mask made by
 * xa_dropout_mask over B*NH*T*T bytes, p its drop probability; keep NULL (or p == 0) = no dropout.
 * scratch (B, NH, T, T) is needed only with dropout (else it may be NULL); it can be shared by all
 * layers. */
void xa_attention_forward(float *ctx,     /* (B, T, C) */
                          float *att,     /* (B, NH, T, T) saved: probabilities before dropout */
                          float *scratch, /* (B, NH, T, T) or NULL without dropout */
                          const float *q, /* (B, T, C) */
                          const float *k, /* (B, T, C) */
                          const float *v, /* (B, T, C) */
                          const int32_t *lens, /* (B) valid lengths, or NULL */
                          const uint8_t *keep, /* (B, NH, T, T) dropout keep mask, or NULL */
                          float p,             /* dropout probability of keep */
                          int B, int T, int C, int NH);
/* dq += dL/dq, dk += dL/dk, dv += dL/dv (each may be NULL). dctx rows at padded query positions
 * are ignored. scratch (B, NH, T, T) is always needed (may be the forward's scratch). */
void xa_attention_backward(float *dq,           /* (B, T, C) or NULL */
                           float *dk,           /* (B, T, C) or NULL */
                           float *dv,           /* (B, T, C) or NULL */
                           float *scratch,      /* (B, NH, T, T) */
                           const float *dctx,   /* (B, T, C) */
                           const float *att,    /* (B, NH, T, T) from forward */
                           const float *q,      /* (B, T, C) */
                           const float *k,      /* (B, T, C) */
                           const float *v,      /* (B, T, C) */
                           const int32_t *lens, /* (B) or NULL */
                           const uint8_t *keep, /* (B, NH, T, T) or NULL */
                           float p, int B, int T, int C, int NH);
void xa_attention_forward_ref(float *ctx, float *att, float *scratch, const float *q,
                              const float *k, const float *v, const int32_t *lens,
                              const uint8_t *keep, float p, int B, int T, int C, int NH);
void xa_attention_backward_ref(float *dq, float *dk, float *dv, float *scratch, const float *dctx,
                               const float *att, const float *q, const float *k, const float *v,
                               const int32_t *lens, const uint8_t *keep, float p, int B, int T,
                               int C, int NH);

/* ---- dropout (dropout.c) ----------------------------------------------------------------------
 */

/* keep[i] = 1 with probability 1 - p, else 0 (inverted dropout, torch.nn.Dropout). One 64-bit
 * draw from rng seeds independent PCG32 streams per block of 4096 elements, so the mask depends
 * only on the rng state and n, never on the thread count; rng advances by one u64 draw.
 * p == 0 fills ones without touching rng. 0 <= p < 1. */
void xa_dropout_mask(uint8_t *keep, /* (n) */
                     size_t n, float p, xa_rng *rng);
/* Elements [off, off + n) of the mask xa_dropout_mask would make over off + n (or more)
 * elements from the same rng state (the same 64-bit draw; rng advances by it): the part of a
 * larger tensor's mask that a slice of it holds, e.g. a micro-batch's rows of a global batch.
 * off 0 is xa_dropout_mask. The cost of an offset is 8 O(log 4096) stream jumps per block. */
void xa_dropout_mask_at(uint8_t *keep, /* (n) */
                        size_t n, uint64_t off, float p, xa_rng *rng);
/* out = inp * keep / (1 - p). keep NULL or p == 0: out = inp (evaluation). out may equal inp. */
void xa_dropout_forward(float *out,          /* (n) */
                        const float *inp,    /* (n) */
                        const uint8_t *keep, /* (n) or NULL */
                        size_t n, float p);
/* dinp += dout * keep / (1 - p) (or dout when keep is NULL or p == 0). */
void xa_dropout_backward(float *dinp,         /* (n) */
                         const float *dout,   /* (n) */
                         const uint8_t *keep, /* (n) or NULL */
                         size_t n, float p);

/* ---- embedding, residual, elementwise (elementwise.c) ------------------------------------------
 */

/* out[i] = table[ids[i]] (row copy). Also gathers rows of any (V, C) matrix, e.g. the masked rows
 * of the hidden states for the MLM head. ids out of [0, V) are a programmer error (XA_ASSERT). */
void xa_embedding_forward(float *out,         /* (N, C) */
                          const int32_t *ids, /* (N) */
                          const float *table, /* (V, C) */
                          int N, int C, int V);
/* out[i] += table[ids[i]] (sums word + position + token-type embeddings). */
void xa_embedding_add_forward(float *out, const int32_t *ids, const float *table, int N, int C,
                              int V);
/* dtable[ids[i]] += dout[i] (scatter-add; repeated ids accumulate). dtable NULL (frozen) is a
 * no-op. Deterministic for any thread count. */
void xa_embedding_backward(float *dtable,      /* (V, C) or NULL */
                           const float *dout,  /* (N, C) */
                           const int32_t *ids, /* (N) */
                           int N, int C, int V);

/* out = a + b (residual connection); out may equal a or b. */
void xa_residual_forward(float *out, const float *a, const float *b, size_t n);
/* da += dout; db += dout (either may be NULL). */
void xa_residual_backward(float *da, float *db, const float *dout, size_t n);
/* y += alpha * x (gradient accumulation, scaled residuals). */
void xa_axpy(float *y, const float *x, float alpha, size_t n);
/* x *= alpha. */
void xa_scale(float *x, float alpha, size_t n);

/* ---- cross-entropy (crossentropy.c) -----------------------------------------------------------
 */

#define XA_IGNORE_INDEX (-100)

/* Fused log-softmax + negative log-likelihood, mean over counted rows (torch F.cross_entropy with
 * ignore_index and reduction "mean"). Rows whose target is ignore_index contribute nothing.
 * Returns the mean loss (0 when no row counts); *n_counted (may be NULL) gets the count.
 * dlogits (may be NULL) is OVERWRITTEN with d(mean loss)/d(logits) = (softmax - onehot) / count,
 * zero on ignored rows; multiply it by a further factor for gradient accumulation. dlogits may
 * equal logits. Targets outside [0, V) other than ignore_index are a programmer error. */
float xa_cross_entropy_fused(float *dlogits,         /* (N, V) or NULL */
                             int *n_counted,         /* (1) or NULL */
                             const float *logits,    /* (N, V) */
                             const int32_t *targets, /* (N) */
                             int N, int V, int ignore_index);
float xa_cross_entropy_fused_ref(float *dlogits, int *n_counted, const float *logits,
                                 const int32_t *targets, int N, int V, int ignore_index);

/* Class-weighted cross-entropy (torch F.cross_entropy(weight=w), reduction "mean"): the weighted
 * mean sum_n w[t_n] loss_n / sum_n w[t_n] over counted rows, for the few classes of a task head
 * (one plain double-precision pass; not meant for vocabulary-sized rows). Returns the loss (0 when
 * no row counts or the weight sum is 0); *weight_sum (may be NULL) gets sum_n w[t_n]. dlogits (may
 * be NULL, may equal logits) is OVERWRITTEN with d(loss)/d(logits) = w[t_n] (softmax - onehot) /
 * sum w, zero on ignored rows. weights (V) are finite and >= 0 (programmer error otherwise). */
float xa_cross_entropy_weighted(float *dlogits,         /* (N, V) or NULL */
                                double *weight_sum,     /* (1) or NULL */
                                const float *logits,    /* (N, V) */
                                const int32_t *targets, /* (N) */
                                const float *weights,   /* (V) */
                                int N, int V, int ignore_index);

/* ---- sentence representations and contrastive alignment (contrastive.c) ----------------------
 * Mean pooling over the real tokens of right-padded rows, and the symmetric in-batch contrastive
 * (InfoNCE) loss over n aligned pairs with cosine similarity scaled by `scale` (1/temperature):
 * row i of U must retrieve row i of V among all rows of V and vice versa (see contrastive.c). */

/* out[b] = mean of h[b, t] over t < lens[b] (1 <= lens[b] <= T). */
void xa_mean_pool_forward(float *out,          /* (B, C) */
                          const float *h,      /* (B, T, C) */
                          const int32_t *lens, /* (B) */
                          int B, int T, int C);
/* dh[b, t] += dout[b] / lens[b] for t < lens[b]; pads untouched. */
void xa_mean_pool_backward(float *dh,           /* (B, T, C) */
                           const float *dout,   /* (B, C) */
                           const int32_t *lens, /* (B) */
                           int B, int T, int C);
/* Returns the mean of the two directions' cross-entropies. dU, dV (may be NULL) are OVERWRITTEN
 * with the loss' gradients; *acc (may be NULL) gets the in-batch retrieval accuracy (both
 * directions, argmax == own pair). scratch: xa_contrastive_scratch_bytes(n, C) bytes, 8-aligned. */
float xa_contrastive_loss(float *dU,          /* (n, C) or NULL */
                          float *dV,          /* (n, C) or NULL */
                          float *acc,         /* (1) or NULL */
                          float *scratch,     /* xa_contrastive_scratch_bytes */
                          const float *U,     /* (n, C) */
                          const float *V,     /* (n, C) */
                          int n, int C, float scale);
size_t xa_contrastive_scratch_bytes(int n, int C);

#ifdef __cplusplus
}
#endif
#endif /* XA_TENSOR_H */
