/* model/encoder: the post-LN Transformer encoder of BERT / RoBERTa / XLM-R, forward and backward,
 * with the hook sites of model.h. Follows HF modeling_bert / modeling_roberta:
 *   embeddings  e = Dropout(LN_e(wte[id] + wpe[pos] + wtt[type]))
 *   layer       y = LN1(Dropout(MHA(x) Wao^T + bao) + x);  z = LN2(Dropout(GELU(y Wi^T + bi) Wo^T + bo) + y)
 * Does not implement: pre-LN variants, relative position embeddings, cross-attention, the pooler
 * (the classification head has its own dense + tanh, XLM-R style).
 * Backward computes weight gradients only when the encoder owns gradient memory (trainable);
 * frozen, it propagates input gradients only, and only as deep as something trainable needs.
 * Activation recomputation (XA_ACTS_RECOMPUTE, HF's gradient checkpointing; Chen et al. 2016,
 * "Training deep nets with sublinear memory cost", one checkpoint per layer): the forward keeps
 * each layer's input and the dropout generator's state before the layer; the backward re-runs
 * that layer's forward (layer_forward, hook sites included) with the generator rewound, which
 * redraws the same masks, so results are bit-identical to keeping every layer's tensors. */
#include "model/model.h"

#include <math.h>
#include <string.h>

/* ---- config and parameters ------------------------------------------------------------------- */

xa_status xa_encoder_config_check(const xa_encoder_config *c, const char *where) {
    const char *w = where ? where : "encoder config";
    /* upper bounds keep every size product (V * C, B * NH * T * T, ...) inside size_t and every
     * row count inside int: far above any real encoder (XLM-R large: V 250002, C 1024, FF 4096) */
    struct { const char *key; int value; int min, max; } ints[] = {
        {"vocab_size", c->V, 5, 1 << 24},          {"max_position_embeddings", c->P, 2, 1 << 20},
        {"type_vocab_size", c->TV, 1, 1 << 16},    {"hidden_size", c->C, 1, 1 << 16},
        {"num_hidden_layers", c->L, 1, 1 << 10},   {"num_attention_heads", c->NH, 1, 1 << 10},
        {"intermediate_size", c->FF, 1, 1 << 18},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (ints[i].value < ints[i].min) {
            return xa_error_set(XA_STATUS_CONFIG, w, "a positive size", NULL, "%s is %d",
                                ints[i].key, ints[i].value);
        }
        if (ints[i].value > ints[i].max) {
            return xa_error_set(XA_STATUS_CONFIG, w, "a size xadapt can hold", NULL,
                                "%s is %d (at most %d)", ints[i].key, ints[i].value, ints[i].max);
        }
    }
    if (c->C % c->NH != 0) {
        return xa_error_set(XA_STATUS_CONFIG, w, "hidden_size divisible by num_attention_heads", NULL,
                            "hidden_size %d, num_attention_heads %d", c->C, c->NH);
    }
    if (c->pad_id < 0 || c->pad_id >= c->V) {
        return xa_error_set(XA_STATUS_CONFIG, w, "0 <= pad_token_id < vocab_size", NULL,
                            "pad_token_id is %d (vocab_size %d)", c->pad_id, c->V);
    }
    if (!(c->eps > 0.0f) || !(c->p_hidden >= 0.0f && c->p_hidden < 1.0f) ||
        !(c->p_attn >= 0.0f && c->p_attn < 1.0f)) {
        return xa_error_set(XA_STATUS_CONFIG, w, "layer_norm_eps > 0 and dropout in [0, 1)", NULL,
                            "layer_norm_eps %g, hidden_dropout_prob %g, attention_probs_dropout_prob %g",
                            (double)c->eps, (double)c->p_hidden, (double)c->p_attn);
    }
    return XA_STATUS_OK;
}

xa_status xa_encoder_preset(xa_encoder_config *cfg, const char *name) {
    static const struct { const char *name; int L, C, NH, FF, V; } presets[] = {
        {"tiny", 2, 128, 2, 512, 8000},
        {"small", 4, 256, 4, 1024, 16000},
        {"base", 12, 768, 12, 3072, 32000},
        {"xlmr-base", 12, 768, 12, 3072, 250002}, /* XLM-R base's shape and vocabulary */
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        cfg->arch = XA_ARCH_XLMR;
        cfg->L = presets[i].L;
        cfg->C = presets[i].C;
        cfg->NH = presets[i].NH;
        cfg->FF = presets[i].FF;
        cfg->V = presets[i].V;
        cfg->P = 514;
        cfg->TV = 1;
        cfg->pad_id = 1;
        cfg->eps = 1e-5f;
        cfg->p_hidden = cfg->p_attn = 0.1f;
        cfg->act = XA_ACT_GELU;
        return XA_STATUS_OK;
    }
    return xa_error_set(XA_STATUS_NOT_FOUND, "model preset", "tiny, small, base or xlmr-base",
                        "or give the path of a Hugging Face config.json", "unknown model '%s'", name);
}

size_t xa_encoder_sizes(const xa_encoder_config *c, size_t n[XA_ENC_N_TENSORS]) {
    size_t C = (size_t)c->C, L = (size_t)c->L, FF = (size_t)c->FF;
    n[XA_ENC_WTE] = (size_t)c->V * C;
    n[XA_ENC_WPE] = (size_t)c->P * C;
    n[XA_ENC_WTT] = (size_t)c->TV * C;
    n[XA_ENC_LNE_W] = n[XA_ENC_LNE_B] = C;
    n[XA_ENC_QW] = n[XA_ENC_KW] = n[XA_ENC_VW] = n[XA_ENC_AOW] = L * C * C;
    n[XA_ENC_QB] = n[XA_ENC_KB] = n[XA_ENC_VB] = n[XA_ENC_AOB] = L * C;
    n[XA_ENC_LN1_W] = n[XA_ENC_LN1_B] = n[XA_ENC_LN2_W] = n[XA_ENC_LN2_B] = L * C;
    n[XA_ENC_FCW] = L * FF * C;
    n[XA_ENC_FCB] = L * FF;
    n[XA_ENC_FOW] = L * C * FF;
    n[XA_ENC_FOB] = L * C;
    size_t total = 0;
    for (int i = 0; i < XA_ENC_N_TENSORS; i++) total += n[i];
    return total;
}

xa_status xa_encoder_init(xa_encoder *enc, const xa_encoder_config *cfg, int trainable) {
    memset(enc, 0, sizeof *enc);
    xa_status st = xa_encoder_config_check(cfg, NULL);
    if (st) return st;
    enc->cfg = *cfg;
    enc->n_params = xa_encoder_sizes(cfg, enc->numel);
    enc->params = xa_aligned_alloc(enc->n_params * sizeof(float), XA_ARENA_ALIGN);
    if (!enc->params) {
        return xa_error_set(XA_STATUS_NOMEM, "xa_encoder_init", NULL, NULL,
                            "cannot allocate %zu parameters", enc->n_params);
    }
    xa_params_carve(enc->params, enc->numel, XA_ENC_N_TENSORS, enc->t);
    st = xa_encoder_set_trainable(enc, trainable);
    if (st) xa_encoder_free(enc);
    return st;
}

void xa_encoder_free(xa_encoder *enc) {
    if (!enc) return;
    xa_encoder_set_packed(enc, 0);
    xa_aligned_free(enc->params);
    xa_aligned_free(enc->grads);
    memset(enc, 0, sizeof *enc);
}

xa_status xa_encoder_set_trainable(xa_encoder *enc, int trainable) {
    if (trainable) xa_encoder_set_packed(enc, 0);
    return xa_params_set_trainable(&enc->grads, enc->n_params, enc->numel, XA_ENC_N_TENSORS, enc->g,
                                   trainable, "xa_encoder_set_trainable");
}

/* The layers' matrices that go through xa_sgemm as a whole B operand (xa_linear_*), besides wte. */
static const int g_packed[] = {XA_ENC_QW, XA_ENC_KW, XA_ENC_VW, XA_ENC_AOW, XA_ENC_FCW, XA_ENC_FOW};

xa_status xa_encoder_set_packed(xa_encoder *enc, int on) {
    const xa_encoder_config *c = &enc->cfg;
    const size_t n = sizeof g_packed / sizeof g_packed[0];
    if (!on || enc->packed) {
        if (!on && enc->packed) {
            xa_gemm_frozen_remove(enc->t[XA_ENC_WTE]);
            for (int l = 0; l < c->L; l++)
                for (size_t k = 0; k < n; k++) xa_gemm_frozen_remove(xa_encoder_slice(enc, g_packed[k], l, 0));
            enc->packed = 0;
        }
        return XA_STATUS_OK;
    }
    XA_ASSERT(!enc->grads && "bf16 packs of a trainable encoder");
    char name[96];
    int64_t shape[2];
    xa_encoder_tensor_name(enc, XA_ENC_WTE, 0, name, sizeof name, shape);
    xa_status st = xa_gemm_frozen_add(enc->t[XA_ENC_WTE], c->V, c->C, name);
    enc->packed = 1; /* from here on set_packed(enc, 0) undoes what was added */
    for (int l = 0; l < c->L && !st; l++) {
        for (size_t k = 0; k < n && !st; k++) {
            xa_encoder_tensor_name(enc, g_packed[k], l, name, sizeof name, shape);
            st = xa_gemm_frozen_add(xa_encoder_slice(enc, g_packed[k], l, 0), (int)shape[0], (int)shape[1], name);
        }
    }
    if (st) xa_encoder_set_packed(enc, 0);
    return st;
}

void xa_encoder_init_weights(xa_encoder *enc, xa_rng *rng, float std) {
    const xa_encoder_config *c = &enc->cfg;
    XA_ASSERT(!enc->packed && "writing weights registered for bf16 packs");
    for (int i = 0; i < XA_ENC_N_TENSORS; i++) {
        float *t = enc->t[i];
        size_t n = enc->numel[i];
        switch (i) {
        case XA_ENC_LNE_W: case XA_ENC_LN1_W: case XA_ENC_LN2_W:
            for (size_t j = 0; j < n; j++) t[j] = 1.0f;
            break;
        case XA_ENC_WTE: case XA_ENC_WPE: case XA_ENC_WTT: case XA_ENC_QW: case XA_ENC_KW:
        case XA_ENC_VW: case XA_ENC_AOW: case XA_ENC_FCW: case XA_ENC_FOW:
            xa_rng_fill_normal(rng, t, n, 0.0f, std);
            break;
        default:
            memset(t, 0, n * sizeof *t);
        }
    }
    /* nn.Embedding(padding_idx=pad) zeroes the padding row (word embeddings; RoBERTa also the
     * position embeddings). */
    memset(enc->t[XA_ENC_WTE] + (size_t)c->pad_id * c->C, 0, (size_t)c->C * sizeof(float));
    if (c->arch == XA_ARCH_XLMR && c->pad_id < c->P) {
        memset(enc->t[XA_ENC_WPE] + (size_t)c->pad_id * c->C, 0, (size_t)c->C * sizeof(float));
    }
}

static const char *const g_names[XA_ENC_N_TENSORS] = {
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
    "attention.self.query.weight",
    "attention.self.query.bias",
    "attention.self.key.weight",
    "attention.self.key.bias",
    "attention.self.value.weight",
    "attention.self.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
};

static int is_layered(int i) { return i >= XA_ENC_QW; }

int xa_encoder_tensor_name(const xa_encoder *enc, int i, int l, char *buf, size_t n, int64_t shape[2]) {
    XA_ASSERT(i >= 0 && i < XA_ENC_N_TENSORS);
    const xa_encoder_config *c = &enc->cfg;
    if (is_layered(i)) {
        snprintf(buf, n, "encoder.layer.%d.%s", l, g_names[i]);
    } else {
        snprintf(buf, n, "%s", g_names[i]);
    }
    int64_t rows;
    switch (i) {
    case XA_ENC_WTE: rows = c->V; break;
    case XA_ENC_WPE: rows = c->P; break;
    case XA_ENC_WTT: rows = c->TV; break;
    case XA_ENC_QW: case XA_ENC_KW: case XA_ENC_VW: case XA_ENC_AOW: case XA_ENC_FOW: rows = c->C; break;
    case XA_ENC_FCW: rows = c->FF; break;
    default: rows = 0;
    }
    if (rows) {
        shape[0] = rows;
        shape[1] = i == XA_ENC_FOW ? c->FF : c->C;
        return 2;
    }
    shape[0] = i == XA_ENC_FCB ? c->FF : c->C;
    return 1;
}

float *xa_encoder_slice(const xa_encoder *enc, int i, int l, int grad) {
    float *base = grad ? enc->g[i] : enc->t[i];
    if (!base) return NULL;
    if (!is_layered(i)) return base;
    XA_ASSERT(l >= 0 && l < enc->cfg.L);
    return base + (size_t)l * (enc->numel[i] / (size_t)enc->cfg.L);
}

/* ---- activations -------------------------------------------------------------------------------- */

enum {
    A_POS, A_LENS, A_EMB_SUM, A_EMB_MEAN, A_EMB_RSTD, A_EMB_LN, A_EMB_OUT, A_EMB_KEEP,
    A_Q, A_K, A_V, A_ATT, A_ATT_KEEP, A_CTX, A_H1, A_H1_KEEP, A_S1, A_LN1_MEAN, A_LN1_RSTD, A_Y,
    A_FC, A_FA, A_H2, A_H2_KEEP, A_S2, A_LN2_MEAN, A_LN2_RSTD, A_Z, A_HOOKED,
    A_DZ, A_DY, A_DX, A_DH, A_DCTX, A_DQ, A_DK, A_DV, A_DFA, A_DFC, A_DATT, A_RNG_AT, A_COUNT
};

/* Training activations keep every layer's tensors for backward; inference and recomputation
 * activations keep one layer's worth, reused by every layer (only the layer outputs z, each
 * layer's input, are kept for all layers). Recomputation adds the backward scratch and one rng
 * state a layer. */
static void acts_sizes(const xa_encoder_config *c, int B, int T, int train, size_t s[A_COUNT]) {
    size_t N = (size_t)B * (size_t)T, C = (size_t)c->C, L = (size_t)c->L, FF = (size_t)c->FF;
    size_t LS = train == XA_ACTS_TRAIN ? L : 1; /* layers whose tensors are kept */
    size_t TT = (size_t)B * (size_t)c->NH * (size_t)T * (size_t)T;
    size_t f = sizeof(float);
    memset(s, 0, A_COUNT * sizeof *s);
    s[A_POS] = N * sizeof(int32_t);
    s[A_LENS] = (size_t)B * sizeof(int32_t);
    s[A_EMB_SUM] = s[A_EMB_LN] = s[A_EMB_OUT] = N * C * f;
    s[A_EMB_MEAN] = s[A_EMB_RSTD] = N * f;
    s[A_Q] = s[A_K] = s[A_V] = s[A_CTX] = s[A_H1] = s[A_S1] = s[A_Y] = LS * N * C * f;
    s[A_H2] = s[A_S2] = LS * N * C * f;
    s[A_Z] = L * N * C * f;
    s[A_ATT] = LS * TT * f;
    s[A_LN1_MEAN] = s[A_LN1_RSTD] = s[A_LN2_MEAN] = s[A_LN2_RSTD] = LS * N * f;
    s[A_FC] = s[A_FA] = LS * N * FF * f;
    s[A_HOOKED] = L * 2;
    /* dropout masks: a forward with dropout also runs on inference activations (a frozen encoder
     * under a trained head needs no backward), so the masks always exist */
    s[A_EMB_KEEP] = N * C;
    s[A_ATT_KEEP] = LS * TT;
    s[A_H1_KEEP] = s[A_H2_KEEP] = LS * N * C;
    if (train) {
        s[A_DZ] = s[A_DY] = s[A_DX] = s[A_DH] = s[A_DCTX] = s[A_DQ] = s[A_DK] = s[A_DV] = N * C * f;
        s[A_DFA] = s[A_DFC] = N * FF * f;
        s[A_DATT] = TT * f;
        if (train == XA_ACTS_RECOMPUTE) s[A_RNG_AT] = L * sizeof(xa_rng);
    } else {
        s[A_DATT] = TT * f; /* attention-dropout scratch */
    }
}

size_t xa_encoder_acts_bytes(const xa_encoder_config *cfg, int B, int T, int train) {
    size_t s[A_COUNT];
    acts_sizes(cfg, B, T, train, s);
    return xa_arena_plan(s, A_COUNT, XA_ARENA_ALIGN, NULL);
}

xa_status xa_encoder_acts_init(xa_encoder_acts *a, const xa_encoder_config *cfg, int B, int T,
                               int train) {
    memset(a, 0, sizeof *a);
    if ((int64_t)B * T > XA_MAX_BATCH_TOKENS) {
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_acts_init", "at most 16777216 tokens a batch",
                            "lower the batch size or the sequence length",
                            "batch %d x %d tokens", B, T);
    }
    if (B < 1 || T < 1 || T > cfg->P - (cfg->arch == XA_ARCH_XLMR ? cfg->pad_id + 1 : 0)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_acts_init",
                            "B >= 1 and 1 <= T <= the usable positions of the model",
                            "lower the sequence length",
                            "batch %d x %d tokens with max_position_embeddings %d", B, T, cfg->P);
    }
    if (train < XA_ACTS_INFER || train > XA_ACTS_RECOMPUTE) {
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_acts_init",
                            "XA_ACTS_INFER, XA_ACTS_TRAIN or XA_ACTS_RECOMPUTE", NULL, "mode %d", train);
    }
    size_t s[A_COUNT];
    void *v[A_COUNT];
    acts_sizes(cfg, B, T, train, s);
    xa_status st = xa_arena_init(&a->arena, s, A_COUNT, XA_ARENA_ALIGN, v);
    if (st) return st;
    a->B = B;
    a->T = T;
    a->train = train != XA_ACTS_INFER;
    a->recompute = train == XA_ACTS_RECOMPUTE;
    a->rng_at = v[A_RNG_AT];
    a->live_layer = -1;
    a->pos = v[A_POS];
    a->lens = v[A_LENS];
    a->emb_sum = v[A_EMB_SUM];
    a->emb_mean = v[A_EMB_MEAN];
    a->emb_rstd = v[A_EMB_RSTD];
    a->emb_ln = v[A_EMB_LN];
    a->emb_out = v[A_EMB_OUT];
    a->q = v[A_Q];
    a->k = v[A_K];
    a->v = v[A_V];
    a->att = v[A_ATT];
    a->ctx = v[A_CTX];
    a->h1 = v[A_H1];
    a->s1 = v[A_S1];
    a->ln1_mean = v[A_LN1_MEAN];
    a->ln1_rstd = v[A_LN1_RSTD];
    a->y = v[A_Y];
    a->fc = v[A_FC];
    a->fa = v[A_FA];
    a->h2 = v[A_H2];
    a->s2 = v[A_S2];
    a->ln2_mean = v[A_LN2_MEAN];
    a->ln2_rstd = v[A_LN2_RSTD];
    a->z = v[A_Z];
    a->hooked = v[A_HOOKED];
    a->emb_keep = v[A_EMB_KEEP];
    a->att_keep = v[A_ATT_KEEP];
    a->h1_keep = v[A_H1_KEEP];
    a->h2_keep = v[A_H2_KEEP];
    a->datt = v[A_DATT];
    if (train) {
        a->dz = v[A_DZ];
        a->dy = v[A_DY];
        a->dx = v[A_DX];
        a->dh = v[A_DH];
        a->dctx = v[A_DCTX];
        a->dq = v[A_DQ];
        a->dk = v[A_DK];
        a->dv = v[A_DV];
        a->dfa = v[A_DFA];
        a->dfc = v[A_DFC];
    }
    return XA_STATUS_OK;
}

void xa_encoder_acts_free(xa_encoder_acts *a) {
    if (!a) return;
    xa_arena_free(&a->arena);
    memset(a, 0, sizeof *a);
}

/* Per-layer views: layer l's slice of an (L, B, T, X) activation. */
static float *lay(float *base, int l, size_t per_layer) { return base + (size_t)l * per_layer; }

float *xa_encoder_hidden(const xa_encoder *enc, const xa_encoder_acts *a, int l) {
    if (l < 0) return a->emb_out;
    size_t NC = (size_t)(a->cur_B ? a->cur_B : a->B) * (size_t)(a->cur_T ? a->cur_T : a->T) *
                (size_t)enc->cfg.C;
    return lay(a->z, l, NC);
}

/* ---- forward ------------------------------------------------------------------------------------ */

static xa_status check_batch(const xa_encoder *enc, const xa_encoder_acts *a, const xa_batch *b) {
    const xa_encoder_config *c = &enc->cfg;
    if (a->row0 < 0)
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_forward", "row0 >= 0", NULL, "activations' row0 %d", a->row0);
    if (b->B < 1 || b->B > a->B || b->T < 1 || b->T > a->T) {
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_forward", "B and T at most the planned batch",
                            NULL, "batch %d x %d, activations planned for %d x %d", b->B, b->T, a->B, a->T);
    }
    for (int r = 0; r < b->B; r++) {
        if (b->lens[r] < 1 || b->lens[r] > b->T) {
            return xa_error_set(XA_STATUS_USAGE, "xa_encoder_forward", "1 <= length <= T", NULL,
                                "row %d has length %d (T = %d)", r, b->lens[r], b->T);
        }
        for (int t = 0; t < b->T; t++) {
            int32_t id = b->ids[(size_t)r * b->T + t];
            int32_t ty = b->types ? b->types[(size_t)r * b->T + t] : 0;
            if (id < 0 || id >= c->V || ty < 0 || ty >= c->TV) {
                return xa_error_set(XA_STATUS_USAGE, "xa_encoder_forward",
                                    "ids in [0, vocab_size) and token types in [0, type_vocab_size)",
                                    "was the tokenizer trained for this model?",
                                    "row %d position %d: id %d, type %d (vocab_size %d, type_vocab_size %d)",
                                    r, t, id, ty, c->V, c->TV);
            }
        }
    }
    return XA_STATUS_OK;
}

/* Apply a dropout in place when training, drawing its mask: elements [off, off + n) of the
 * global batch's (off = xa_encoder_acts.row0 x the elements of a row). */
static void dropout_fwd(float *x, uint8_t *keep, size_t n, uint64_t off, float p, int train, xa_rng *rng) {
    if (!train || p <= 0.0f) return;
    xa_dropout_mask_at(keep, n, off, p, rng);
    xa_dropout_forward(x, x, keep, n, p);
}

/* Either the hook computes the sub-layer output, or out = LN(h + x) with s = h + x saved. */
static int sublayer_forward(const xa_hook *hook, xa_hook_site site, int l, float *out, float *s,
                            float *mean, float *rstd, const float *h, const float *x,
                            const float *ln_w, const float *ln_b, const xa_encoder_config *c,
                            const xa_batch *b, int row0) {
    if (hook && hook->sublayer_forward) {
        xa_hook_sublayer sl = {out, h, x, ln_w, ln_b, c->eps, b->lens, b->B, b->T, c->C, row0};
        if (hook->sublayer_forward(hook->ctx, site, l, &sl)) return 1;
    }
    xa_layernorm_residual_forward(out, NULL, s, mean, rstd, h, x, NULL, ln_w, ln_b, b->B * b->T,
                                  c->C, c->eps);
    return 0;
}

/* Layer l on input x (B, T, C) into the buffers of slot li (the layer's own with XA_ACTS_TRAIN,
 * 0 otherwise), its output into z[l]. Draws, in this order: the attention-probability mask, the
 * attention output's mask, the ATTN site's (from the hook's generator), the FFN output's mask and
 * the FFN site's: recomputation replays exactly this sequence. */
static void layer_forward(const xa_encoder *enc, xa_encoder_acts *a, const xa_batch *b,
                          const xa_hook *hook, int l, int li, const float *x, int train, xa_rng *rng) {
    const xa_encoder_config *c = &enc->cfg;
    const int B = b->B, T = b->T, C = c->C, FF = c->FF, NH = c->NH, N = B * T;
    const size_t NC = (size_t)N * C, NF = (size_t)N * FF, TT = (size_t)B * NH * T * T;
    /* the batch's first element in the global batch's (B', T, C) and (B', NH, T, T) masks */
    const uint64_t off_c = (uint64_t)a->row0 * (uint64_t)T * (uint64_t)C;
    const uint64_t off_tt = (uint64_t)a->row0 * (uint64_t)NH * (uint64_t)T * (uint64_t)T;
    float *q = lay(a->q, li, NC), *k = lay(a->k, li, NC), *v = lay(a->v, li, NC);
    float *att = lay(a->att, li, TT), *ctx = lay(a->ctx, li, NC);
    float *h1 = lay(a->h1, li, NC), *s1 = lay(a->s1, li, NC), *y = lay(a->y, li, NC);
    float *fc = lay(a->fc, li, NF), *fa = lay(a->fa, li, NF);
    float *h2 = lay(a->h2, li, NC), *s2 = lay(a->s2, li, NC), *z = lay(a->z, l, NC);
    uint8_t *att_keep = NULL;
    if (train && c->p_attn > 0.0f) {
        att_keep = a->att_keep + (size_t)li * TT;
        xa_dropout_mask_at(att_keep, TT, off_tt, c->p_attn, rng);
    }
    xa_linear_forward(q, x, xa_encoder_slice(enc, XA_ENC_QW, l, 0), xa_encoder_slice(enc, XA_ENC_QB, l, 0), N, C, C);
    xa_linear_forward(k, x, xa_encoder_slice(enc, XA_ENC_KW, l, 0), xa_encoder_slice(enc, XA_ENC_KB, l, 0), N, C, C);
    xa_linear_forward(v, x, xa_encoder_slice(enc, XA_ENC_VW, l, 0), xa_encoder_slice(enc, XA_ENC_VB, l, 0), N, C, C);
    xa_attention_forward(ctx, att, att_keep ? a->datt : NULL, q, k, v, b->lens, att_keep,
                         c->p_attn, B, T, C, NH);
    xa_linear_forward(h1, ctx, xa_encoder_slice(enc, XA_ENC_AOW, l, 0), xa_encoder_slice(enc, XA_ENC_AOB, l, 0), N, C, C);
    dropout_fwd(h1, a->h1_keep + (size_t)li * NC, NC, off_c, c->p_hidden, train, rng);
    a->hooked[2 * l] = (uint8_t)sublayer_forward(
        hook, XA_HOOK_ATTN, l, y, s1, a->ln1_mean + (size_t)li * N, a->ln1_rstd + (size_t)li * N, h1, x,
        xa_encoder_slice(enc, XA_ENC_LN1_W, l, 0), xa_encoder_slice(enc, XA_ENC_LN1_B, l, 0), c, b, a->row0);

    xa_linear_forward(fc, y, xa_encoder_slice(enc, XA_ENC_FCW, l, 0), xa_encoder_slice(enc, XA_ENC_FCB, l, 0), N, C, FF);
    xa_act_forward(fa, fc, NF, c->act);
    xa_linear_forward(h2, fa, xa_encoder_slice(enc, XA_ENC_FOW, l, 0), xa_encoder_slice(enc, XA_ENC_FOB, l, 0), N, FF, C);
    dropout_fwd(h2, a->h2_keep + (size_t)li * NC, NC, off_c, c->p_hidden, train, rng);
    a->hooked[2 * l + 1] = (uint8_t)sublayer_forward(
        hook, XA_HOOK_FFN, l, z, s2, a->ln2_mean + (size_t)li * N, a->ln2_rstd + (size_t)li * N, h2, y,
        xa_encoder_slice(enc, XA_ENC_LN2_W, l, 0), xa_encoder_slice(enc, XA_ENC_LN2_B, l, 0), c, b, a->row0);
    a->live_layer = l;
}

xa_status xa_encoder_forward(const xa_encoder *enc, xa_encoder_acts *a, const xa_batch *b,
                             const xa_hook *hook, int train, xa_rng *rng) {
    const xa_encoder_config *c = &enc->cfg;
    xa_status st = check_batch(enc, a, b);
    if (!st && train && !a->recompute && hook && hook->shares_layers && hook->shares_layers(hook->ctx))
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_forward", "XA_ACTS_RECOMPUTE activations",
                            "plan the encoder and the composer from one setting (gradient_checkpointing)",
                            "a composer planned for recomputation under activations that keep every layer");
    if (!st && hook && hook->prepare) st = hook->prepare(hook->ctx, b->B, b->T);
    if (st) return st;
    if (train && !rng && (c->p_hidden > 0.0f || c->p_attn > 0.0f)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_encoder_forward", "a random generator for dropout",
                            NULL, "training forward with dropout but no rng");
    }
    const int B = b->B, T = b->T, C = c->C, N = B * T; /* B*T <= XA_MAX_BATCH_TOKENS */
    const size_t NC = (size_t)N * C;
    /* the batch's first element in the global batch's (B', T, C) masks */
    const uint64_t off_c = (uint64_t)a->row0 * (uint64_t)T * (uint64_t)C;
    memcpy(a->lens, b->lens, (size_t)B * sizeof(int32_t));
    a->dropout_applied = train != 0;
    a->cur_B = B;
    a->cur_T = T;

    /* Embeddings. */
    for (int r = 0; r < B; r++) {
        for (int t = 0; t < T; t++) {
            int32_t p = t;
            if (c->arch == XA_ARCH_XLMR) p = t < b->lens[r] ? c->pad_id + 1 + t : c->pad_id;
            a->pos[(size_t)r * T + t] = p;
        }
    }
    xa_embedding_forward(a->emb_sum, b->ids, enc->t[XA_ENC_WTE], N, C, c->V);
    xa_embedding_add_forward(a->emb_sum, a->pos, enc->t[XA_ENC_WPE], N, C, c->P);
    if (b->types) {
        xa_embedding_add_forward(a->emb_sum, b->types, enc->t[XA_ENC_WTT], N, C, c->TV);
    } else {
        for (int i = 0; i < N; i++) xa_axpy(a->emb_sum + (size_t)i * C, enc->t[XA_ENC_WTT], 1.0f, (size_t)C);
    }
    xa_layernorm_forward(a->emb_ln, a->emb_mean, a->emb_rstd, a->emb_sum, enc->t[XA_ENC_LNE_W],
                         enc->t[XA_ENC_LNE_B], N, C, c->eps);
    dropout_fwd(a->emb_ln, a->emb_keep, NC, off_c, c->p_hidden, train, rng);
    a->emb_hooked = hook && hook->rows_forward &&
                    hook->rows_forward(hook->ctx, XA_HOOK_EMBED, a->emb_out, a->emb_ln, N, C);
    if (!a->emb_hooked) memcpy(a->emb_out, a->emb_ln, NC * sizeof(float));

    /* Layers. Inference and recomputation activations reuse one layer's buffers (li = 0). */
    const float *x = a->emb_out;
    for (int l = 0; l < c->L; l++) {
        if (a->recompute && rng) a->rng_at[l] = *rng; /* what backward replays to redraw the masks */
        layer_forward(enc, a, b, hook, l, a->recompute || !a->train ? 0 : l, x, train, rng);
        x = lay(a->z, l, NC);
    }
    a->rng = a->recompute && train ? rng : NULL;
    return XA_STATUS_OK;
}

/* ---- backward ----------------------------------------------------------------------------------- */

/* Backward of a sub-layer: from dout, add dL/dh into dh (zeroed here) and dL/dx into dx. */
static void sublayer_backward(const xa_hook *hook, int hooked, xa_hook_site site, int l, float *dh,
                              float *dx, const float *dout, const float *out, const float *s,
                              const float *mean, const float *rstd, const float *h, const float *x,
                              const float *ln_w, const float *ln_b, float *dln_w, float *dln_b,
                              const xa_encoder_config *c, const xa_batch *b) {
    size_t n = (size_t)b->B * b->T * c->C;
    memset(dh, 0, n * sizeof(float));
    if (hooked) {
        xa_hook_sublayer sl = {(float *)out, h, x, ln_w, ln_b, c->eps, b->lens, b->B, b->T, c->C, 0};
        hook->sublayer_backward(hook->ctx, site, l, &sl, dout, dh, dx, dln_w, dln_b);
        return;
    }
    /* out = LN(s), s = h + x: ds goes to both h and x. */
    xa_layernorm_backward(dh, dln_w, dln_b, dout, s, ln_w, mean, rstd, b->B * b->T, c->C);
    xa_axpy(dx, dh, 1.0f, n);
}

/* The lowest position backward must reach, in hook positions: -1 the embeddings, 2l the attention
 * sub-layer of layer l, 2l+1 its FFN sub-layer, 2L nothing below the head. */
static int lowest_needed(const xa_encoder *enc, const xa_hook *hook, const float *demb) {
    if (enc->grads || demb) return -1;
    if (hook && hook->lowest_trainable) {
        int lo = hook->lowest_trainable(hook->ctx);
        return lo < -1 ? -1 : lo;
    }
    return 2 * enc->cfg.L;
}

/* Recomputation: rebuild layer l's tensors (slot 0) and its hook sites' caches by running its
 * forward again on its saved input x, in the forward's mode, with the generator rewound to its
 * state before the layer, so that every mask (the encoder's and the hook's) is drawn again bit for
 * bit; the generator is then put back where the caller left it. z[l] is rewritten with the same
 * values. */
static void recompute_layer(const xa_encoder *enc, xa_encoder_acts *a, const xa_batch *b,
                            const xa_hook *hook, int l, const float *x) {
    xa_rng *rng = a->dropout_applied ? a->rng : NULL, now = {0, 0};
    if (rng) {
        now = *rng;
        *rng = a->rng_at[l];
    }
    layer_forward(enc, a, b, hook, l, 0, x, a->dropout_applied, rng);
    if (rng) *rng = now;
}

void xa_encoder_backward(xa_encoder *enc, xa_encoder_acts *a, const xa_batch *b,
                         const xa_hook *hook, float *dlast, float *demb) {
    const xa_encoder_config *c = &enc->cfg;
    XA_ASSERT(a->train);
    const int B = b->B, T = b->T, C = c->C, FF = c->FF, NH = c->NH, N = B * T; /* B*T <= XA_MAX_BATCH_TOKENS */
    const size_t NC = (size_t)N * C, NF = (size_t)N * FF, TT = (size_t)B * NH * T * T;
    const int lowest = lowest_needed(enc, hook, demb);
    /* An evaluation-mode forward made no dropout masks: its backward has no dropout either. */
    const float ph = a->dropout_applied ? c->p_hidden : 0.0f;
    const float pa = a->dropout_applied ? c->p_attn : 0.0f;
    const int g = enc->grads != NULL;
    float *dz = dlast; /* dL/d(output of the current layer) */

    for (int l = c->L - 1; l >= 0 && 2 * l + 1 >= lowest; l--) {
        const float *x = l ? lay(a->z, l - 1, NC) : a->emb_out;
        const int li = a->recompute ? 0 : l;
        if (a->recompute && a->live_layer != l) recompute_layer(enc, a, b, hook, l, x);
        const float *q = lay(a->q, li, NC), *k = lay(a->k, li, NC), *v = lay(a->v, li, NC);
        const float *att = lay(a->att, li, TT), *ctx = lay(a->ctx, li, NC);
        const float *h1 = lay(a->h1, li, NC), *s1 = lay(a->s1, li, NC), *y = lay(a->y, li, NC);
        const float *fc = lay(a->fc, li, NF), *fa = lay(a->fa, li, NF);
        const float *h2 = lay(a->h2, li, NC), *s2 = lay(a->s2, li, NC), *z = lay(a->z, l, NC);
        const float *ln1_mean = a->ln1_mean + (size_t)li * N, *ln1_rstd = a->ln1_rstd + (size_t)li * N;
        const float *ln2_mean = a->ln2_mean + (size_t)li * N, *ln2_rstd = a->ln2_rstd + (size_t)li * N;
        const uint8_t *att_keep = pa > 0.0f ? a->att_keep + (size_t)li * TT : NULL;
        const uint8_t *h1_keep = ph > 0.0f ? a->h1_keep + (size_t)li * NC : NULL;
        const uint8_t *h2_keep = ph > 0.0f ? a->h2_keep + (size_t)li * NC : NULL;

        /* FFN sub-layer: z = LN2(h2 + y) or the hook's output. */
        memset(a->dy, 0, NC * sizeof(float));
        sublayer_backward(hook, a->hooked[2 * l + 1], XA_HOOK_FFN, l, a->dh, a->dy, dz, z, s2,
                          ln2_mean, ln2_rstd, h2, y,
                          xa_encoder_slice(enc, XA_ENC_LN2_W, l, 0), xa_encoder_slice(enc, XA_ENC_LN2_B, l, 0),
                          xa_encoder_slice(enc, XA_ENC_LN2_W, l, 1), xa_encoder_slice(enc, XA_ENC_LN2_B, l, 1), c, b);
        if (!g && lowest >= 2 * l + 1) break; /* nothing below this sub-layer trains */
        if (h2_keep) xa_dropout_forward(a->dh, a->dh, h2_keep, NC, ph); /* d(pre-dropout) */
        memset(a->dfa, 0, NF * sizeof(float));
        xa_linear_backward(a->dfa, xa_encoder_slice(enc, XA_ENC_FOW, l, 1), xa_encoder_slice(enc, XA_ENC_FOB, l, 1),
                           a->dh, fa, xa_encoder_slice(enc, XA_ENC_FOW, l, 0), N, FF, C);
        memset(a->dfc, 0, NF * sizeof(float));
        xa_act_backward(a->dfc, a->dfa, fc, NF, c->act);
        xa_linear_backward(a->dy, xa_encoder_slice(enc, XA_ENC_FCW, l, 1), xa_encoder_slice(enc, XA_ENC_FCB, l, 1),
                           a->dfc, y, xa_encoder_slice(enc, XA_ENC_FCW, l, 0), N, C, FF);

        /* Attention sub-layer: y = LN1(h1 + x) or the hook's output. */
        memset(a->dx, 0, NC * sizeof(float));
        sublayer_backward(hook, a->hooked[2 * l], XA_HOOK_ATTN, l, a->dh, a->dx, a->dy, y, s1,
                          ln1_mean, ln1_rstd, h1, x,
                          xa_encoder_slice(enc, XA_ENC_LN1_W, l, 0), xa_encoder_slice(enc, XA_ENC_LN1_B, l, 0),
                          xa_encoder_slice(enc, XA_ENC_LN1_W, l, 1), xa_encoder_slice(enc, XA_ENC_LN1_B, l, 1), c, b);
        if (!g && lowest >= 2 * l) break;
        if (h1_keep) xa_dropout_forward(a->dh, a->dh, h1_keep, NC, ph);
        memset(a->dctx, 0, NC * sizeof(float));
        xa_linear_backward(a->dctx, xa_encoder_slice(enc, XA_ENC_AOW, l, 1), xa_encoder_slice(enc, XA_ENC_AOB, l, 1),
                           a->dh, ctx, xa_encoder_slice(enc, XA_ENC_AOW, l, 0), N, C, C);
        memset(a->dq, 0, NC * sizeof(float));
        memset(a->dk, 0, NC * sizeof(float));
        memset(a->dv, 0, NC * sizeof(float));
        xa_attention_backward(a->dq, a->dk, a->dv, a->datt, a->dctx, att, q, k, v, b->lens, att_keep,
                              pa, B, T, C, NH);
        xa_linear_backward(a->dx, xa_encoder_slice(enc, XA_ENC_QW, l, 1), xa_encoder_slice(enc, XA_ENC_QB, l, 1),
                           a->dq, x, xa_encoder_slice(enc, XA_ENC_QW, l, 0), N, C, C);
        xa_linear_backward(a->dx, xa_encoder_slice(enc, XA_ENC_KW, l, 1), xa_encoder_slice(enc, XA_ENC_KB, l, 1),
                           a->dk, x, xa_encoder_slice(enc, XA_ENC_KW, l, 0), N, C, C);
        xa_linear_backward(a->dx, xa_encoder_slice(enc, XA_ENC_VW, l, 1), xa_encoder_slice(enc, XA_ENC_VB, l, 1),
                           a->dv, x, xa_encoder_slice(enc, XA_ENC_VW, l, 0), N, C, C);
        /* dx is dL/d(input of layer l): the next iteration's dz. */
        memcpy(a->dz, a->dx, NC * sizeof(float));
        dz = a->dz;
    }
    if (lowest > -1) return;

    /* dz is now dL/d(emb_out). */
    if (demb) xa_axpy(demb, dz, 1.0f, NC);
    float *de = a->dx; /* dL/d(emb_ln after dropout) */
    if (a->emb_hooked) {
        memset(de, 0, NC * sizeof(float));
        hook->rows_backward(hook->ctx, XA_HOOK_EMBED, de, dz, a->emb_ln, N, C);
    } else if (de != dz) {
        memcpy(de, dz, NC * sizeof(float));
    }
    if (!enc->grads) return;
    if (ph > 0.0f) xa_dropout_forward(de, de, a->emb_keep, NC, ph);
    memset(a->dh, 0, NC * sizeof(float));
    xa_layernorm_backward(a->dh, enc->g[XA_ENC_LNE_W], enc->g[XA_ENC_LNE_B], de, a->emb_sum,
                          enc->t[XA_ENC_LNE_W], a->emb_mean, a->emb_rstd, N, C);
    xa_embedding_backward(enc->g[XA_ENC_WTE], a->dh, b->ids, N, C, c->V);
    xa_embedding_backward(enc->g[XA_ENC_WPE], a->dh, a->pos, N, C, c->P);
    if (b->types) {
        xa_embedding_backward(enc->g[XA_ENC_WTT], a->dh, b->types, N, C, c->TV);
    } else {
        for (int i = 0; i < N; i++) xa_axpy(enc->g[XA_ENC_WTT], a->dh + (size_t)i * C, 1.0f, (size_t)C);
    }
}
