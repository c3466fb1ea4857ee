/* model: the XLM-R / RoBERTa / BERT post-LayerNorm Transformer encoder, forward and backward, with
 * the hook sites where adapters attach (DESIGN.md §3, ADAPTERHUB.md §1.4).
 *
 * Three structs tell the story (llm.c, llama2.c):
 *  - xa_encoder_config: the architecture (from a Hugging Face config.json);
 *  - xa_encoder: the weights in ONE contiguous buffer carved into named views, and, only when the
 *    encoder trains, a gradient buffer with the same layout (frozen = no gradient memory at all);
 *  - xa_encoder_acts: the activations for a fixed (B, T), one arena planned before the first step.
 *
 * Layer l, with x its input (post-LN form, as in HF BertLayer / XLMRobertaLayer):
 *     q,k,v = x Wq^T + bq, ...           ctx = MHA(q, k, v, padding)      (attention.self)
 *     h1 = Dropout(ctx Wao^T + bao)      y = LN1(h1 + x)   <- hook site ATTN replaces this LN
 *     f = GELU(y Wi^T + bi)              h2 = Dropout(f Wo^T + bo)
 *     z = LN2(h2 + y)                    <- hook site FFN replaces this LN
 * Embeddings: e = Dropout(LN_e(wte[id] + wpe[pos] + wtt[type])), then hook site EMBED (rows).
 * XLM-R / RoBERTa positions: pad_id + 1 + t for real tokens, pad_id for pads; BERT: t.
 * Padding is on the right: lens[b] real tokens in row b. Rows at padded positions are computed
 * but carry no meaning (attention gives them a zero context); never read them.
 */
#ifndef XA_MODEL_H
#define XA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "io/hfjson.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xa_arch {
    XA_ARCH_XLMR = 0, /* xlm-roberta and roberta: positions from pad_id + 1, tensor prefix roberta. */
    XA_ARCH_BERT,     /* bert: positions from 0, tensor prefix bert. */
} xa_arch;

typedef struct xa_encoder_config {
    xa_arch arch;
    int V;          /* vocab_size */
    int P;          /* max_position_embeddings */
    int TV;         /* type_vocab_size */
    int C;          /* hidden_size */
    int L;          /* num_hidden_layers */
    int NH;         /* num_attention_heads (C % NH == 0) */
    int FF;         /* intermediate_size */
    int pad_id;     /* pad_token_id */
    float eps;      /* layer_norm_eps */
    float p_hidden; /* hidden_dropout_prob */
    float p_attn;   /* attention_probs_dropout_prob */
    xa_act act;     /* hidden_act */
    uint64_t fingerprint; /* of the loaded weights (xa_hub_base_fingerprint), 0 = unknown: what
                             adapters and heads saved on this base record (hub/) */
} xa_encoder_config;

/* Named architectures of the benchmark (XLM-R layout, gelu, eps 1e-5, dropout 0.1, 514 positions,
 * pad 1): "tiny" L2 d128 h2 ff512 V8k, "small" L4 d256 h4 ff1024 V16k, "base" L12 d768 h12 ff3072
 * V32k, "xlmr-base" as "base" with XLM-R's 250002-piece vocabulary. NOT_FOUND (hint: the names) for
 * another name. V is a default: a tokenizer overrides it. */
xa_status xa_encoder_preset(xa_encoder_config *cfg, const char *name);

/* Check sizes and consistency; XA_STATUS_CONFIG naming `where` (a file) and the bad key. */
xa_status xa_encoder_config_check(const xa_encoder_config *cfg, const char *where);

/* The parameter tensors, in buffer order. Layered tensors hold all L layers back to back. */
enum {
    XA_ENC_WTE = 0, /* (V, C)     word_embeddings */
    XA_ENC_WPE,     /* (P, C)     position_embeddings */
    XA_ENC_WTT,     /* (TV, C)    token_type_embeddings */
    XA_ENC_LNE_W,   /* (C)        embeddings.LayerNorm */
    XA_ENC_LNE_B,   /* (C) */
    XA_ENC_QW,      /* (L, C, C)  attention.self.query */
    XA_ENC_QB,      /* (L, C) */
    XA_ENC_KW,      /* (L, C, C)  attention.self.key */
    XA_ENC_KB,      /* (L, C) */
    XA_ENC_VW,      /* (L, C, C)  attention.self.value */
    XA_ENC_VB,      /* (L, C) */
    XA_ENC_AOW,     /* (L, C, C)  attention.output.dense */
    XA_ENC_AOB,     /* (L, C) */
    XA_ENC_LN1_W,   /* (L, C)     attention.output.LayerNorm */
    XA_ENC_LN1_B,   /* (L, C) */
    XA_ENC_FCW,     /* (L, FF, C) intermediate.dense */
    XA_ENC_FCB,     /* (L, FF) */
    XA_ENC_FOW,     /* (L, C, FF) output.dense */
    XA_ENC_FOB,     /* (L, C) */
    XA_ENC_LN2_W,   /* (L, C)     output.LayerNorm */
    XA_ENC_LN2_B,   /* (L, C) */
    XA_ENC_N_TENSORS
};

typedef struct xa_encoder {
    xa_encoder_config cfg;
    float *params;                   /* owned: all weights, carved into t[] */
    float *grads;                    /* owned: same layout, or NULL when frozen */
    float *t[XA_ENC_N_TENSORS];      /* weight views */
    float *g[XA_ENC_N_TENSORS];      /* gradient views, all NULL when frozen */
    size_t numel[XA_ENC_N_TENSORS];  /* elements per tensor (all layers) */
    size_t n_params;
    int packed;                      /* its matrices are registered for bf16 packs (set_packed) */
} xa_encoder;

/* Element counts per tensor for cfg; returns the total. */
size_t xa_encoder_sizes(const xa_encoder_config *cfg, size_t numel[XA_ENC_N_TENSORS]);
/* Allocate the weights (zeroed). trainable != 0 also allocates gradients. */
xa_status xa_encoder_init(xa_encoder *enc, const xa_encoder_config *cfg, int trainable);
/* Free weights and gradients; accepts NULL. */
void xa_encoder_free(xa_encoder *enc);
/* Make the encoder trainable (allocate zeroed gradients) or frozen (free them). Trainable drops
 * the bf16 packs (xa_encoder_set_packed). */
xa_status xa_encoder_set_trainable(xa_encoder *enc, int trainable);
/* on != 0: register the frozen encoder's matrices (wte (V, C), the tied MLM decoder too, and every
 * layer's Wq, Wk, Wv, Wao, Wi, Wo) for bf16 packs made once (tensor.h, xa_gemm_frozen_add), for
 * as long as their values are final: called by the owner that keeps them frozen (a phase, an
 * inference model after loading); nothing is packed until a bf16 product uses one, nothing at all
 * in fp32. 0 drops them (xa_encoder_free does too). ASSERT that the encoder is frozen (no
 * gradients); NOMEM. Writing the weights while packed is a programmer error (init_weights
 * asserts; XA_BF16_PACKS_CHECK=1 catches the rest). A struct copy (borrowed) shares the packs and
 * must not call this. */
xa_status xa_encoder_set_packed(xa_encoder *enc, int on);
/* Random init as BERT / HF do: N(0, std) weights, zero biases, LayerNorm weight 1 bias 0, and the
 * padding row of the position and word embeddings zeroed (as nn.Embedding(padding_idx)). */
void xa_encoder_init_weights(xa_encoder *enc, xa_rng *rng, float std);
/* Hugging Face name (without the model prefix) and shape of tensor i, layer l (l ignored for the
 * embeddings); writes the name into buf. Returns the number of dims (1 or 2) and fills shape. */
int xa_encoder_tensor_name(const xa_encoder *enc, int i, int l, char *buf, size_t n, int64_t shape[2]);
/* Pointer to layer l's slice of tensor i (weights, or gradients when grad != 0; NULL if frozen). */
float *xa_encoder_slice(const xa_encoder *enc, int i, int l, int grad);

/* ---- hooks: where adapters attach ------------------------------------------------------------ */

typedef enum xa_hook_site {
    XA_HOOK_EMBED = 0, /* rows: after the embedding LayerNorm and dropout (invertible adapter) */
    XA_HOOK_ATTN,      /* sub-layer: after attention.output.dense + dropout (mh_adapter) */
    XA_HOOK_FFN,       /* sub-layer: after output.dense + dropout (output_adapter) */
    XA_HOOK_MLM,       /* rows: before the tied MLM decoder (inverse invertible adapter) */
} xa_hook_site;

/* One sub-layer call: the hook writes out, which replaces LN_o(h + x). */
typedef struct xa_hook_sublayer {
    float *out;           /* (N, C) written by the hook */
    const float *h;       /* (N, C) the sub-layer's projected output after dropout */
    const float *x;       /* (N, C) the sub-layer input, the residual */
    const float *ln_w;    /* (C) the frozen LN_o */
    const float *ln_b;    /* (C) */
    float eps;            /* LN_o's eps */
    const int32_t *lens;  /* (B) valid lengths */
    int B, T, C;          /* N = B * T */
    int row0;             /* the activations' row0 (xa_encoder_acts): where the hook's dropout
                           * masks lie in the global batch's */
} xa_hook_sublayer;

/* The encoder's only view of adapters (DESIGN.md §3). compose implements it; NULL = plain encoder.
 * Any callback may be NULL (the site is plain). */
typedef struct xa_hook {
    void *ctx;
    /* Return 1 when the hook computed s->out, 0 when this (site, layer) is plain. The same answer
     * must hold for the matching backward call. */
    int (*sublayer_forward)(void *ctx, xa_hook_site site, int layer, const xa_hook_sublayer *s);
    /* dh += dL/dh, dx += dL/dx for dout = dL/dout; dln_w/dln_b (C) += the LN_o gradients, or NULL
     * when the base is frozen. Also accumulates the hook's own parameter gradients. */
    void (*sublayer_backward)(void *ctx, xa_hook_site site, int layer, const xa_hook_sublayer *s,
                              const float *dout, float *dh, float *dx, float *dln_w, float *dln_b);
    /* Rows sites (EMBED: B*T rows; MLM: the masked rows): out = f(inp); return 0 when plain. */
    int (*rows_forward)(void *ctx, xa_hook_site site, float *out, const float *inp, int N, int C);
    /* dinp += d/dinp for dout; accumulates the hook's own parameter gradients. */
    void (*rows_backward)(void *ctx, xa_hook_site site, float *dinp, const float *dout,
                          const float *inp, int N, int C);
    /* The lowest site that holds trainable hook parameters, as a position: -1 the EMBED site, 2l
     * the ATTN site of layer l, 2l+1 its FFN site, 2L (or more) when nothing below the head
     * trains. A frozen encoder's backward stops there. NULL callback: 2L. */
    int (*lowest_trainable)(void *ctx);
    /* Called by xa_encoder_forward before any site, with the batch shape: an error stops the
     * forward with that status (compose: BatchSplit sizes or a Parallel width that do not fit a
     * shorter last batch). NULL callback: every shape is accepted. */
    xa_status (*prepare)(void *ctx, int B, int T);
    /* 1 when the hook keeps one layer's saved state for all layers (compose's
     * XA_COMPOSE_RECOMPUTE plan): only an XA_ACTS_RECOMPUTE encoder, which rebuilds each layer
     * right before its backward, can train through it; a training forward on other activations
     * is refused. NULL callback: per-layer state. */
    int (*shares_layers)(void *ctx);
} xa_hook;

/* ---- activations -------------------------------------------------------------------------------- */

/* What activations keep (the `train` argument of xa_encoder_acts_init / xa_encoder_acts_bytes). */
enum {
    XA_ACTS_INFER = 0,     /* one layer's tensors, reused by every layer; no backward */
    XA_ACTS_TRAIN = 1,     /* every layer's tensors, kept for backward */
    XA_ACTS_RECOMPUTE = 2, /* activation recomputation (HF gradient_checkpointing): forward keeps
                              every layer's input (the layer outputs z) and the random generator's
                              state before each layer; backward re-runs one layer's forward (its
                              hook sites included) right before back-propagating through it, into
                              one layer's tensors. Results are bit-identical to XA_ACTS_TRAIN. */
};

typedef struct xa_encoder_acts {
    xa_arena arena;
    int B, T, train;      /* train: the backward scratch exists (XA_ACTS_TRAIN or _RECOMPUTE) */
    int row0;             /* dropout placement, set by the caller before a training forward: its
                           * batch is rows [row0, row0 + B) of a global batch of the same T (a
                           * micro-batch of a step, train/trainer.h), and every dropout mask is
                           * that batch's over these rows; 0 after init: a whole batch */
    int recompute;        /* XA_ACTS_RECOMPUTE: one layer's tensors (li = 0), rebuilt in backward */
    xa_rng *rng;          /* recompute: the generator of the last training forward (borrowed) */
    xa_rng *rng_at;       /* recompute: (L) its state before each layer's first draw */
    int live_layer;       /* recompute: the layer whose tensors the buffers hold, -1 none */
    int32_t *pos;         /* (B, T) position ids */
    int32_t *lens;        /* (B) valid lengths of the current batch */
    float *emb_sum;       /* (B, T, C) word + position + type, before LN_e */
    float *emb_mean;      /* (B, T) */
    float *emb_rstd;      /* (B, T) */
    float *emb_ln;        /* (B, T, C) after LN_e and dropout */
    float *emb_out;       /* (B, T, C) after the EMBED hook: the input of layer 0 */
    uint8_t *emb_keep;    /* (B, T, C) */
    /* per layer, each (L, ...) */
    float *q, *k, *v;     /* (L, B, T, C) */
    float *att;           /* (L, B, NH, T, T) */
    uint8_t *att_keep;    /* (L, B, NH, T, T) */
    float *ctx;           /* (L, B, T, C) */
    float *h1;            /* (L, B, T, C) after dropout */
    uint8_t *h1_keep;     /* (L, B, T, C) */
    float *s1;            /* (L, B, T, C) h1 + x: the LN1 input */
    float *ln1_mean, *ln1_rstd; /* (L, B, T) */
    float *y;             /* (L, B, T, C) attention sub-layer output */
    float *fc;            /* (L, B, T, FF) before the activation */
    float *fa;            /* (L, B, T, FF) after it */
    float *h2;            /* (L, B, T, C) after dropout */
    uint8_t *h2_keep;     /* (L, B, T, C) */
    float *s2;            /* (L, B, T, C) h2 + y */
    float *ln2_mean, *ln2_rstd; /* (L, B, T) */
    float *z;             /* (L, B, T, C) layer outputs; z + (L-1)*B*T*C is the last hidden state */
    uint8_t *hooked;      /* (L, 2) which sub-layers the hook computed in the last forward */
    int dropout_applied;  /* the last forward ran with train != 0 (backward uses its masks) */
    int cur_B, cur_T;     /* the last forward's batch shape: every (L, B, T, X) view uses it */
    int emb_hooked;
    /* backward scratch (train only), one layer's worth, reused */
    float *dz, *dy, *dx;  /* (B, T, C) */
    float *dh, *dctx;     /* (B, T, C) */
    float *dq, *dk, *dv;  /* (B, T, C) */
    float *dfa, *dfc;     /* (B, T, FF) */
    float *datt;          /* (B, NH, T, T) attention scratch */
} xa_encoder_acts;

/* Plan and allocate activations for batches of at most B rows of T tokens. train is XA_ACTS_TRAIN
 * (1: every layer's tensors and the backward scratch), XA_ACTS_RECOMPUTE (2: one layer's tensors,
 * the backward scratch, recomputation in backward) or XA_ACTS_INFER (0: inference, or a frozen
 * encoder under a trained head: one layer's tensors, reused by all layers); every mode keeps every
 * layer's output. */
xa_status xa_encoder_acts_init(xa_encoder_acts *a, const xa_encoder_config *cfg, int B, int T,
                               int train);
void xa_encoder_acts_free(xa_encoder_acts *a);
/* Bytes the activations of (cfg, B, T, train) take. */
size_t xa_encoder_acts_bytes(const xa_encoder_config *cfg, int B, int T, int train);
/* The last hidden state (B, T, C) and the output of layer l (l = -1: the embedding output), for
 * the (B, T) of the last forward. */
float *xa_encoder_hidden(const xa_encoder *enc, const xa_encoder_acts *a, int l);

/* A batch of right-padded sequences. */
typedef struct xa_batch {
    const int32_t *ids;   /* (B, T) token ids; pads hold pad_id */
    const int32_t *types; /* (B, T) token type ids, or NULL (all 0) */
    const int32_t *lens;  /* (B) real tokens per row, 1..T */
    int B, T;             /* B <= acts B, T <= acts T (shorter batches reuse the planned memory) */
} xa_batch;

/* Forward pass. train != 0 applies dropout with rng; with activations made with train it also keeps
 * what backward needs (with inference activations no backward may follow). Returns
 * XA_STATUS_USAGE for a batch that does not fit the activations or holds an out-of-range id
 * (naming the row and position), or for dropout without rng. */
xa_status xa_encoder_forward(const xa_encoder *enc, xa_encoder_acts *a, const xa_batch *batch,
                             const xa_hook *hook, int train, xa_rng *rng);
/* Backward pass from dlast = dL/d(last hidden state) (B, T, C) (consumed as scratch: it may be
 * overwritten). With XA_ACTS_RECOMPUTE activations it first re-runs each layer's forward below the
 * last one with the hook, replaying the forward's rng from its saved per-layer states (the hook's
 * own dropout must draw from that same generator, as compose does with xa_composer_set_mode's
 * rng); that rng must still exist, and is left in the state it had when backward was called.
 * The hook must be in the mode of the forward (same setup, skipped layers, train flag). Accumulates into enc->g (when trainable) and the hook's gradients; demb (B, T, C),
 * when not NULL, gets dL/d(embedding output) (after the EMBED hook) added. Stops at the lowest layer
 * that needs a gradient when the encoder is frozen and demb is NULL. */
void xa_encoder_backward(xa_encoder *enc, xa_encoder_acts *a, const xa_batch *batch,
                         const xa_hook *hook, float *dlast, float *demb);

/* ---- the MLM head (model/mlm_head.c) ----------------------------------------------------------
 * HF XLMRobertaLMHead / BertLMPredictionHead, computed only on the masked rows (DESIGN.md §6):
 *     t = LN(GELU(h Wd^T + bd));  t' = hook MLM site (inverse invertible adapter) or t;
 *     logits = t' wte^T + bias      (the decoder is tied to the word embeddings)
 * Its own parameters (dense, LN, bias) are one group; the tied decoder weight belongs to the
 * encoder and gets a gradient only when the encoder trains. */

enum { XA_MLM_DW = 0, XA_MLM_DB, XA_MLM_LN_W, XA_MLM_LN_B, XA_MLM_BIAS, XA_MLM_N_TENSORS };

typedef struct xa_mlm_head {
    int C, V;
    float eps;
    float *params;                  /* owned */
    float *grads;                   /* owned, NULL when frozen */
    float *t[XA_MLM_N_TENSORS];     /* dense.weight (C, C), dense.bias (C), layer_norm.weight (C),
                                       layer_norm.bias (C), bias (V) */
    float *g[XA_MLM_N_TENSORS];
    size_t numel[XA_MLM_N_TENSORS];
    size_t n_params;
    int packed;                     /* dense.weight registered for bf16 packs (set_packed) */
    /* activations for at most M masked rows */
    xa_arena arena;
    int M, m;                       /* capacity and rows of the last forward */
    int32_t *rows;                  /* (M) row index into the (B*T, C) hidden state */
    int32_t *targets;               /* (M) */
    float *h;                       /* (M, C) gathered hidden rows */
    float *pre;                     /* (M, C) dense output before GELU */
    float *act;                     /* (M, C) after GELU */
    float *mean, *rstd;             /* (M) */
    float *ln;                      /* (M, C) after LN */
    float *dec_in;                  /* (M, C) after the MLM hook: the decoder input */
    float *logits;                  /* (M, V) logits, then d(loss)/d(logits) after forward */
    float *d1, *d2;                 /* (M, C) backward scratch */
    int hooked;
} xa_mlm_head;

/* Allocate the head for hidden size C, vocabulary V, LN eps and at most M masked rows per batch
 * (plan M with xa_mlm_rows_bound: the (M, V) logits dominate, 1 MB per row at XLM-R's 250002). */
xa_status xa_mlm_head_init(xa_mlm_head *head, int C, int V, float eps, int M, int trainable);
/* Masked rows to plan a head for, for batches of N positions each masked with probability p: the
 * binomial mean plus six standard deviations plus 8 (a batch past it has probability < 1e-9 with
 * token masking; whole-word masking varies more), at most N; 1 for p <= 0. */
int xa_mlm_rows_bound(int64_t N, double p);
/* Room for m masked rows: the activation buffers are re-planned (for m plus an eighth) when m >
 * head->M, their contents lost (call it before a forward); parameters and gradients are kept.
 * USAGE past 16777216 rows, NOMEM (the head is then as it was). */
xa_status xa_mlm_head_reserve(xa_mlm_head *head, int m);
void xa_mlm_head_free(xa_mlm_head *head);
/* Trainable drops the bf16 pack (xa_mlm_head_set_packed). */
xa_status xa_mlm_head_set_trainable(xa_mlm_head *head, int trainable);
/* on != 0: register the frozen head's dense.weight (C, C) for a bf16 pack made once, as
 * xa_encoder_set_packed does (the tied decoder is the encoder's wte: packed with the encoder);
 * 0 drops it (xa_mlm_head_free does too). ASSERT that the head is frozen; NOMEM. */
xa_status xa_mlm_head_set_packed(xa_mlm_head *head, int on);
/* HF init: dense N(0, std), zero biases, LN 1/0. */
void xa_mlm_head_init_weights(xa_mlm_head *head, xa_rng *rng, float std);
/* HF names of the head tensors for an architecture ("lm_head.dense.weight" / BERT's
 * "cls.predictions.transform.dense.weight", ...). */
const char *xa_mlm_head_tensor_name(xa_arch arch, int i);

/* Forward and loss on the m rows rows[0..m) of hidden (B*T, C) with targets: the mean
 * cross-entropy. The gradient of that mean w.r.t. the logits is kept for backward.
 * logits_out (m, V), when not NULL, receives the logits. */
float xa_mlm_head_forward(xa_mlm_head *head, const float *hidden, const int32_t *rows,
                          const int32_t *targets, int m, const float *wte, const xa_hook *hook,
                          float *logits_out);
/* Backward of the last forward, with the loss scaled by `scale` (1 for a plain mean): adds into
 * the head's gradients (if trainable), dwte (V, C) (NULL: frozen) and the masked rows of dhidden
 * (B*T, C) (NULL: not needed). */
void xa_mlm_head_backward(xa_mlm_head *head, float *dhidden, float *dwte, const float *wte,
                          const xa_hook *hook, float scale);

/* ---- Hugging Face directories (model/hf.c) -----------------------------------------------------
 * A model directory holds config.json and model.safetensors, or pytorch_model.bin when it has no
 * safetensors file (read without Python, io/torchbin.h) (tensor names with or without the
 * "roberta." / "bert." prefix; the decoder tied to the word embeddings, absent from the file), as
 * XLMRobertaForMaskedLM / BertForMaskedLM save_pretrained writes them. */

/* Architecture from a parsed config.json; CONFIG / UNSUPPORTED naming `where`. */
xa_status xa_encoder_config_from_hf(xa_encoder_config *out, const xa_hf_config *hf, const char *where);
/* config.json values for an encoder config (other keys at their model-type defaults). */
void xa_encoder_config_to_hf(xa_hf_config *hf, const xa_encoder_config *c);
/* Load DIR/config.json and DIR/model.safetensors (else DIR/pytorch_model.bin) into a new encoder (hf, when not NULL, gets the
 * parsed config.json). Every encoder tensor must exist with its shape; errors name the file and
 * the tensor, with a hint when the shapes say "wrong base model". */
xa_status xa_encoder_load(xa_encoder *enc, xa_hf_config *hf, const char *dir, int trainable);
/* Read the MLM head tensors of DIR/model.safetensors (else pytorch_model.bin) into an initialised head (NOT_FOUND when
 * the file has no MLM head). */
xa_status xa_mlm_head_load(xa_mlm_head *head, xa_arch arch, const char *dir);
/* Write DIR/config.json and DIR/model.safetensors (creating DIR), each atomically. head may be
 * NULL (a bare encoder); hf may be NULL (derived from enc->cfg). */
xa_status xa_model_save(const char *dir, const xa_encoder *enc, const xa_mlm_head *head,
                        const xa_hf_config *hf);

#ifdef __cplusplus
}
#endif
#endif /* XA_MODEL_H */
