/* adapters: the trainable modules that attach to a frozen encoder (ADAPTERHUB.md §1.1, §1.5, §1.7,
 * §1.9), forward and backward over raw float buffers. No module here knows the encoder, the
 * composition or any file format: `compose` resolves an AdapterHub config into the specs below,
 * owns the parameter buffers, and decides where each module runs (DESIGN.md §3).
 *
 *  - xa_bneck (bneck.c): the bottleneck module `Adapter` (or `ParallelAdapter`), with ln_before,
 *    Linear or PHM down/up projections, activation, scaling (constant, learned, channel), dropout,
 *    gating, ln_after and the internal residual;
 *  - PHM / Compacter layers (phm.c): H = sum_i kron(C_i, W_i), y = x H + b;
 *  - xa_inv (invertible.c): NICE and GLOW invertible embedding adapters, forward and inverse;
 *  - xa_fusion (fusion.c): an AdapterFusion layer (query, key, value, softmax over adapters).
 *
 * Conventions are tensor.h's: outputs first, then saved buffers, then inputs, weights, dimensions;
 * backward ADDS into every gradient; a NULL parameter-gradient pointer means frozen; a NULL input
 * gradient means not wanted. Modules do not own memory: a module is a set of views into a
 * parameter buffer (and a gradient buffer when it trains) carved by *_bind in enum order, and a
 * cache is a set of views into caller memory of *_cache_bytes bytes. Nothing allocates in
 * forward or backward. Rows are N = B*T tokens of C channels.
 */
#ifndef XA_ADAPTERS_H
#define XA_ADAPTERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* LayerNorms created inside adapters use torch's default eps, not the model's (§1.1). */
#define XA_ADAPTER_LN_EPS 1e-5f

/* ---- PHM (Compacter) layer (phm.c), §1.9 ---------------------------------------------------------
 * For a PHM layer in -> out with n = phm_dim (in % n == 0, out % n == 0):
 *     H = sum_{i<n} kron(C_i, W_i)          (in, out);   C_i (n, n) the rule, W_i (in/n, out/n)
 *     H[a*(in/n) + p, b*(out/n) + q] = sum_i C[i][a][b] * W[i][p][q]
 *     y = x H + b                           (note: no transpose, unlike nn.Linear)
 * Factorised W (the default): W_i = W_left[i] (in/n, r) · W_right[i] (r, out/n). */

typedef struct xa_phm_spec {
    int n;            /* phm_dim, >= 1 */
    int rank;         /* phm_rank r of the factorised W, >= 1 */
    int factorized_W; /* 1: W_left (n, in/n, r) and W_right (n, r, out/n); 0: W (n, in/n, out/n) */
    int bias;         /* phm_bias: a bias (out) */
} xa_phm_spec;

/* Build H (in, out) from the rule (n, n, n) and W: W (n, in/n, out/n) when wl is NULL, else
 * W_i = wl[i] (in/n, r) wr[i] (r, out/n). scratch: (in/n * out/n) floats for the factorised form
 * (NULL otherwise). */
void xa_phm_build(float *H, float *scratch, const float *rule, const float *w, const float *wl,
                  const float *wr, const xa_phm_spec *s, int in, int out);
/* Backward of xa_phm_build for dH (in, out): adds into drule (n, n, n) and dw or dwl / dwr (each
 * may be NULL: frozen). scratch: 2 * (in/n * out/n) floats. */
void xa_phm_build_backward(float *drule, float *dw, float *dwl, float *dwr, float *scratch,
                           const float *dH, const float *rule, const float *w, const float *wl,
                           const float *wr, const xa_phm_spec *s, int in, int out);
void xa_phm_build_ref(float *H, const float *rule, const float *w, const float *wl,
                      const float *wr, const xa_phm_spec *s, int in, int out);

/* ---- bottleneck module (bneck.c), §1.1 -------------------------------------------------------
 * Forward for adapter input z and residual r (both (N, C), chosen by compose, §1.4):
 *     zn   = LN_before(z)                    if ln_before, else z
 *     pre  = zn W_d^T + b_d                  (N, d)   (PHM: zn H_d + b_d)
 *     mid  = act(pre)
 *     up   = (mid W_u^T + b_u) * scaling     (N, C)   the value AdapterFusion consumes
 *     a    = Dropout(up)
 *     a   *= g[b]                            if use_gating: g[b] = mean over the lens[b] valid
 *                                            tokens of sigmoid(z W_g^T + b_g)   (one per sequence)
 *     o    = LN_after(a + r)                 if adapter_residual_before_ln
 *     o    = LN_after(a) + r                 otherwise (LN_after = identity without ln_after)
 * ParallelAdapter (spec.parallel): no dropout, and no residual inside: o = LN_after(a), a = up * g;
 * its post-forward (compose) adds the sub-layer's h before LN_o(. + x).
 * Gating differs from AdapterHub on padded batches only: AdapterHub averages over all T positions,
 * pads included; xadapt over the real tokens (padded rows carry no meaning here, see model.h). */

typedef enum xa_bneck_scaling {
    XA_BNECK_SCALING_CONSTANT = 0, /* scaling_value */
    XA_BNECK_SCALING_LEARNED,      /* trainable (1), init 1 */
    XA_BNECK_SCALING_CHANNEL,      /* trainable (C), init 1 */
} xa_bneck_scaling;

typedef enum xa_bneck_init {
    XA_BNECK_INIT_BERT = 0, /* W ~ N(0, 0.02), b = 0 (down, up, gate) */
    XA_BNECK_INIT_MAM,      /* down: kaiming-uniform(a = sqrt 5), b = 0; up: W = 0, b = 0 */
    XA_BNECK_INIT_HOULSBY,  /* W ~ truncated normal(std 0.01, cut at +-0.02), b = 0 */
} xa_bneck_init;

typedef struct xa_bneck_spec {
    int C, d;                   /* hidden size, bottleneck size (>= 1) */
    xa_act act;                 /* non_linearity */
    int ln_before, ln_after;    /* trainable LayerNorms inside the adapter (eps 1e-5) */
    int adapter_residual_before_ln;
    int parallel;               /* ParallelAdapter: o = LN_after(up * g), r unused */
    xa_bneck_scaling scaling;
    float scaling_value;        /* the constant for XA_BNECK_SCALING_CONSTANT */
    int use_gating;
    float dropout;              /* on the scaled up-projection, [0, 1) */
    int phm;                    /* PHM layers for down and up (then phm_spec applies) */
    xa_phm_spec phm_spec;
} xa_bneck_spec;

/* The tensors of one module, in buffer order. Absent ones have numel 0 and NULL views. */
enum {
    XA_BNECK_LNB_W = 0, /* (C)   adapter_norm_before.weight (ln_before) */
    XA_BNECK_LNB_B,     /* (C)   adapter_norm_before.bias */
    XA_BNECK_DOWN_W,    /* (d, C) Linear weight; PHM: W (n, C/n, d/n) when not factorised */
    XA_BNECK_DOWN_WL,   /* PHM factorised: W_left (n, C/n, r) */
    XA_BNECK_DOWN_WR,   /* PHM factorised: W_right (n, r, d/n) */
    XA_BNECK_DOWN_B,    /* (d)   bias (PHM: only with phm_bias) */
    XA_BNECK_UP_W,      /* (C, d) Linear weight; PHM: W (n, d/n, C/n) */
    XA_BNECK_UP_WL,     /* PHM: W_left (n, d/n, r) */
    XA_BNECK_UP_WR,     /* PHM: W_right (n, r, C/n) */
    XA_BNECK_UP_B,      /* (C) */
    XA_BNECK_LNA_W,     /* (C)   adapter_norm_after.weight (ln_after) */
    XA_BNECK_LNA_B,     /* (C) */
    XA_BNECK_SCALING,   /* (1) learned or (C) channel */
    XA_BNECK_GATE_W,    /* (1, C) gate.weight (use_gating) */
    XA_BNECK_GATE_B,    /* (1) */
    XA_BNECK_N_TENSORS
};

typedef struct xa_bneck {
    xa_bneck_spec spec;
    float *t[XA_BNECK_N_TENSORS];   /* weight views */
    float *g[XA_BNECK_N_TENSORS];   /* gradient views; all NULL when frozen */
    size_t numel[XA_BNECK_N_TENSORS];
    const float *phm_rule;          /* (n, n, n) the adapter's shared rule (PHM only) */
    float *phm_rule_grad;           /* (n, n, n) or NULL (frozen, or learn_phm false) */
} xa_bneck;

/* USAGE (with the reason) for an inconsistent spec: d < 1, PHM with C or d not divisible by n,
 * dropout outside [0, 1). */
xa_status xa_bneck_spec_check(const xa_bneck_spec *s, const char *where);
/* Element counts per tensor; returns the total. */
size_t xa_bneck_sizes(const xa_bneck_spec *s, size_t numel[XA_BNECK_N_TENSORS]);
/* Carve the views of m from params (and grads, when not NULL) in enum order; both hold at least
 * xa_bneck_sizes floats. phm_rule / phm_rule_grad are set by the caller afterwards. */
void xa_bneck_bind(xa_bneck *m, const xa_bneck_spec *s, float *params, float *grads);
/* Initialise as AdapterHub does (table of §1.1): Linear weights by `init`; PHM W Xavier-normal
 * (quirk Q7), biases 0; LayerNorms 1/0; learned / channel scaling 1; gate as `init` (bert: N(0, 0.02)). */
void xa_bneck_init_weights(xa_bneck *m, xa_bneck_init init, xa_rng *rng);
/* AdapterHub's name of tensor i relative to the module (§1.10): "adapter_down.0.weight" (with
 * ln_before: the Linear is "adapter_down.1.weight"), "adapter_up.weight", "adapter_norm_before.weight",
 * "adapter_norm_after.bias", "scaling", "gate.weight", PHM "adapter_down.0.W_left", "adapter_up.b",
 * ...; NULL for an absent tensor. With ln_before the file also holds a duplicate of the LayerNorm
 * as "adapter_down.0.weight"/".bias" (quirk Q4): xa_bneck_tensor_alias returns that name for
 * XA_BNECK_LNB_W / _B, NULL for every other tensor. */
const char *xa_bneck_tensor_name(const xa_bneck *m, int i);
const char *xa_bneck_tensor_alias(const xa_bneck *m, int i);
/* The shape of tensor i as AdapterHub stores it (PyTorch layout); returns the number of dims
 * (0 for an absent tensor). */
int xa_bneck_tensor_shape(const xa_bneck *m, int i, int64_t shape[3]);

/* What forward keeps for backward, for at most N rows (views into caller memory). */
typedef struct xa_bneck_cache {
    int N, train;
    int64_t row0;              /* dropout placement, set by the caller before a training forward:
                                * its N token rows are token rows [row0, row0 + N) of a global
                                * batch and the mask is that batch's over them (xa_dropout_mask_at);
                                * 0 after bind: a whole batch */
    float *zn;                 /* (N, C) LN_before output (ln_before only) */
    float *lnb_mean, *lnb_rstd; /* (N) */
    float *pre;                /* (N, d) down pre-activation */
    float *mid;                /* (N, d) after the activation */
    float *upraw;              /* (N, C) before scaling */
    float *up;                 /* (N, C) scaled: what fusion consumes */
    uint8_t *keep;             /* (N, C) dropout mask (train with dropout only) */
    float *a;                  /* (N, C) after dropout and gate */
    float *gate_pre;           /* (N) gate logits (use_gating) */
    float *gate;               /* (N) per-sequence gate value, broadcast per token (use_gating) */
    float *sum;                /* (N, C) LN_after input (ln_after) */
    float *lna_mean, *lna_rstd; /* (N) */
    float *Hd, *Hu;            /* (C, d), (d, C) PHM matrices, rebuilt every forward */
    float *s1, *s2, *s3;       /* backward scratch (N, max(C, d)) each (train only) */
    float *phm_scratch;        /* PHM build scratch */
} xa_bneck_cache;

/* Bytes of a cache for N rows; train != 0 adds what backward needs (with train == 0 the cache
 * is forward-only scratch). */
size_t xa_bneck_cache_bytes(const xa_bneck_spec *s, int N, int train);
/* Carve the cache from mem (xa_bneck_cache_bytes bytes, 64-byte aligned). */
void xa_bneck_cache_bind(xa_bneck_cache *c, const xa_bneck_spec *s, void *mem, int N, int train);

/* Forward on N = B*T rows (lens (B) for the gate; NULL = all T valid). o (N, C) may be NULL when
 * only c->up is wanted (fusion); r may then be NULL too. train applies dropout with rng. o may
 * not alias z or r. */
void xa_bneck_forward(const xa_bneck *m, xa_bneck_cache *c, float *o, const float *z,
                      const float *r, const int32_t *lens, int B, int T, int train, xa_rng *rng);
/* 1 when the module's output is exactly o = up + r (one float addition per element) in this
 * mode: not parallel, no ln_after, no gating, and no dropout applied (train == 0 or p = 0). A
 * caller may then run xa_bneck_forward with o = NULL (up only) and form up + r itself, fused
 * with what it does next (compose fuses it with the following LayerNorm); backward is the same. */
int xa_bneck_output_is_residual_sum(const xa_bneck *m, int train);
/* 1 when an inference forward (train == 0) of the module is row-local: each output row depends
 * only on the same row of z and r (no gate, whose value is a mean over the sequence; no PHM
 * layer, whose matrices the forward rebuilds in the cache first). */
int xa_bneck_rows_local(const xa_bneck *m);
/* Rows [r0, r0 + n) of an inference forward of a row-local module (xa_bneck_rows_local): o, z
 * and r point at row r0 (o and r may be NULL as in xa_bneck_forward), the cache is the whole
 * forward's (bound for at least r0 + n rows). Every float is the one xa_bneck_forward over all
 * the rows computes, provided its products split at these rows (xa_linear_row_block) when run
 * inside a parallel region; blocks of one forward may run at once in different threads. */
void xa_bneck_forward_rows(const xa_bneck *m, xa_bneck_cache *c, float *o, const float *z,
                           const float *r, int64_t r0, int n);
/* Backward of the last forward (same z, r, lens): dout = dL/do (or NULL), dup = an extra
 * dL/d(up) from a fusion layer (or NULL). dz += dL/dz, dr += dL/dr (each may be NULL); adds
 * into m->g (when not NULL) and m->phm_rule_grad. */
void xa_bneck_backward(const xa_bneck *m, xa_bneck_cache *c, float *dz, float *dr,
                       const float *dout, const float *dup, const float *z, const float *r,
                       const int32_t *lens, int B, int T);

/* ---- invertible adapters (invertible.c), §1.5 ---------------------------------------------------
 * e = [e1 ; e2] split on the channel axis, c1 = C/2, c2 = C - c1. Subnetworks
 * Linear(k -> int(k / rf)) -> act -> Linear(int(k / rf) -> out), N(0, 0.02) weights, zero biases.
 * NICE (AdapterHub NICECouplingBlock): F: c2 -> c1, G: c1 -> c2,
 *     forward  o1 = e1 + F(e2),  o2 = e2 + G(o1);     inverse  e2 = o2 - G(o1),  e1 = o1 - F(e2).
 * GLOW (xadapt's definition; AdapterHub's GLOW does not run, quirk Q1): the standard affine
 * coupling (Kingma & Dhariwal 2018; FrEIA GLOWCouplingBlock) with the soft clamp
 *     E(s) = exp(c * 0.636 * atan(s / c)),  c = 5;  subnets s2: c2 -> 2*c1, s1: c1 -> 2*c2,
 *     [s2a, t2] = s2(e2);  o1 = E(s2a) * e1 + t2;  [s1a, t1] = s1(o1);  o2 = E(s1a) * e2 + t1
 *     inverse: [s1a, t1] = s1(o1);  e2 = (o2 - t1) / E(s1a);  [s2a, t2] = s2(e2);  e1 = (o1 - t2) / E(s2a)
 *   ([s, t] = the first and second halves of the subnet output). */

typedef enum xa_inv_kind { XA_INV_NICE = 0, XA_INV_GLOW } xa_inv_kind;

typedef struct xa_inv_spec {
    xa_inv_kind kind;
    int C;          /* hidden (embedding) size, >= 2 */
    double rf;      /* inv_adapter_reduction_factor, > 0 */
    xa_act act;     /* the adapter's non_linearity */
} xa_inv_spec;

/* NICE: F = subnet(c2 -> c1), G = subnet(c1 -> c2). GLOW: S1 = subnet(c1 -> 2*c2) ("s1"),
 * S2 = subnet(c2 -> 2*c1) ("s2"). Each subnet is X0 (.0, Linear in) and X2 (.2, Linear out). */
enum {
    XA_INV_A0_W = 0, /* NICE F.0.weight (h2, c2) / GLOW s1.0.weight (h1, c1) */
    XA_INV_A0_B,
    XA_INV_A2_W,     /* NICE F.2.weight (c1, h2) / GLOW s1.2.weight (2*c2, h1) */
    XA_INV_A2_B,
    XA_INV_B0_W,     /* NICE G.0.weight (h1, c1) / GLOW s2.0.weight (h2, c2) */
    XA_INV_B0_B,
    XA_INV_B2_W,     /* NICE G.2.weight (c2, h1) / GLOW s2.2.weight (2*c1, h2) */
    XA_INV_B2_B,
    XA_INV_N_TENSORS
};                   /* h1 = int(c1 / rf), h2 = int(c2 / rf), each at least 1 */

typedef struct xa_inv {
    xa_inv_spec spec;
    int c1, c2, h1, h2;
    float *t[XA_INV_N_TENSORS];
    float *g[XA_INV_N_TENSORS];     /* NULL when frozen */
    size_t numel[XA_INV_N_TENSORS];
} xa_inv;

xa_status xa_inv_spec_check(const xa_inv_spec *s, const char *where);
size_t xa_inv_sizes(const xa_inv_spec *s, size_t numel[XA_INV_N_TENSORS]);
void xa_inv_bind(xa_inv *m, const xa_inv_spec *s, float *params, float *grads);
/* N(0, 0.02) weights, zero biases (AdapterHub's init of both blocks). */
void xa_inv_init_weights(xa_inv *m, xa_rng *rng);
/* AdapterHub name relative to invertible_adapters.{name}: "F.0.weight", ..., "s1.2.bias". */
const char *xa_inv_tensor_name(const xa_inv *m, int i);
int xa_inv_tensor_shape(const xa_inv *m, int i, int64_t shape[2]);

/* The cache of one direction (forward or inverse) for at most N rows. */
typedef struct xa_inv_cache {
    int N, train;
    float *buf;     /* views carved by xa_inv_cache_bind; layout private to invertible.c */
    size_t n_buf;
} xa_inv_cache;

size_t xa_inv_cache_bytes(const xa_inv_spec *s, int N, int train);
void xa_inv_cache_bind(xa_inv_cache *c, const xa_inv_spec *s, void *mem, int N, int train);

/* out (N, C) = forward(inp); out must not alias inp. */
void xa_inv_forward(const xa_inv *m, xa_inv_cache *c, float *out, const float *inp, int N);
/* dinp += d/dinp of the last forward for dout; adds into m->g when not NULL. */
void xa_inv_forward_backward(const xa_inv *m, xa_inv_cache *c, float *dinp, const float *dout,
                             const float *inp, int N);
/* out (N, C) = inverse(inp); out must not alias inp. */
void xa_inv_inverse(const xa_inv *m, xa_inv_cache *c, float *out, const float *inp, int N);
void xa_inv_inverse_backward(const xa_inv *m, xa_inv_cache *c, float *dinp, const float *dout,
                             const float *inp, int N);

/* ---- AdapterFusion layer (fusion.c), §1.7 -------------------------------------------------------
 * For each token n, with q the query (N, C), u_i = the scaled up-projection of adapter i (N, C),
 * r the residual (N, C):
 *     v_i  = u_i + r                 if residual_before, else u_i
 *     s_i  = (q Wq^T + bq) · (v_i Wk^T + bk)          (key = identity without `key`)
 *     s    = Dropout(s)              (on the logits, quirk Q10; p = dropout)
 *     p    = softmax_i(s / T)
 *     ctx  = sum_i p_i (v_i Wv^T)    (value = identity without `value`; no bias)
 *     out  = ctx + r                 unless residual_before (then out = ctx)
 * `query` false uses q itself. Temperature annealing (AdapterHub temperature=True) is not
 * supported: T is a constant (1 in both presets). */

typedef struct xa_fusion_spec {
    int C;
    int n;              /* number of fused adapters, >= 2 */
    int query, key, value;
    int residual_before;
    int value_initialized; /* V init: identity with 1e-6 off the diagonal (else N(0, 0.02)) */
    float T;            /* softmax temperature, > 0 */
    float dropout;      /* on the attention logits */
} xa_fusion_spec;

enum {
    XA_FUSION_QW = 0, /* (C, C) query.weight */
    XA_FUSION_QB,     /* (C) */
    XA_FUSION_KW,     /* (C, C) key.weight */
    XA_FUSION_KB,     /* (C) */
    XA_FUSION_VW,     /* (C, C) value.weight (no bias) */
    XA_FUSION_N_TENSORS
};

typedef struct xa_fusion {
    xa_fusion_spec spec;
    float *t[XA_FUSION_N_TENSORS];
    float *g[XA_FUSION_N_TENSORS];
    size_t numel[XA_FUSION_N_TENSORS];
} xa_fusion;

xa_status xa_fusion_spec_check(const xa_fusion_spec *s, const char *where);
size_t xa_fusion_sizes(const xa_fusion_spec *s, size_t numel[XA_FUSION_N_TENSORS]);
void xa_fusion_bind(xa_fusion *m, const xa_fusion_spec *s, float *params, float *grads);
/* Q and K: N(0, 0.02) weights, zero biases; V: see value_initialized. */
void xa_fusion_init_weights(xa_fusion *m, xa_rng *rng);
/* "query.weight", "query.bias", "key.weight", "key.bias", "value.weight"; NULL if absent. */
const char *xa_fusion_tensor_name(const xa_fusion *m, int i);

typedef struct xa_fusion_cache {
    int N, train;
    int64_t row0;   /* dropout placement of the N rows, as xa_bneck_cache's row0 */
    float *buf;     /* layout private to fusion.c */
    size_t n_buf;
} xa_fusion_cache;

size_t xa_fusion_cache_bytes(const xa_fusion_spec *s, int N, int train);
void xa_fusion_cache_bind(xa_fusion_cache *c, const xa_fusion_spec *s, void *mem, int N, int train);

/* out (N, C) from query (N, C), ups[i] (N, C) for i < n, residual r (N, C). train applies the
 * logit dropout with rng. probs_out (N, n), when not NULL, receives the attention probabilities. */
void xa_fusion_forward(const xa_fusion *m, xa_fusion_cache *c, float *out, float *probs_out,
                       const float *query, const float *const *ups, const float *r, int N,
                       int train, xa_rng *rng);
/* Backward of the last forward: dquery, dups[i], dr are ADDED to (each may be NULL, and dups
 * may be NULL); adds into m->g when not NULL. */
void xa_fusion_backward(const xa_fusion *m, xa_fusion_cache *c, float *dquery, float *const *dups,
                        float *dr, const float *dout, const float *query, const float *const *ups,
                        const float *r, int N);
/* The dynamic preset's regulariser coef * ||I - Wv||_F^2 (AdapterHub: coef 0.01, summed over the
 * layers by the caller); adds its gradient into m->g[XA_FUSION_VW] when not NULL. Without a
 * value matrix, 0. AdapterHub applies this gradient one optimizer step late (quirk Q6); xadapt
 * applies it in the step it belongs to. */
float xa_fusion_regularizer(const xa_fusion *m, float coef);

#ifdef __cplusplus
}
#endif
#endif /* XA_ADAPTERS_H */
