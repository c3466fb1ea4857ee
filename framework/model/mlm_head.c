/* model/mlm_head: the masked-language-model head, on the masked rows only (DESIGN.md §6).
 *   t = LN(GELU(h Wd^T + bd)) -> MLM hook (inverse invertible adapter) -> logits = t wte^T + bias
 * Matches HF XLMRobertaLMHead / BertLMPredictionHead with the decoder tied to the word embeddings.
 * The loss is the mean cross-entropy over the masked rows (torch F.cross_entropy).
 * Memory: the activations (the (M, V) logits, which hold their gradient after forward, above all)
 * are planned for M masked rows, not for every position of the batch: callers plan M with
 * xa_mlm_rows_bound (about 15% of B*T plus six standard deviations) and call xa_mlm_head_reserve
 * before a forward, which re-plans in the rare batch with more masked rows. */
#include "model/model.h"

#include <math.h>
#include <string.h>

static const char *const g_xlmr_names[XA_MLM_N_TENSORS] = {
    "lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias", "lm_head.bias",
};
static const char *const g_bert_names[XA_MLM_N_TENSORS] = {
    "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.bias",
};

const char *xa_mlm_head_tensor_name(xa_arch arch, int i) {
    XA_ASSERT(i >= 0 && i < XA_MLM_N_TENSORS);
    return arch == XA_ARCH_BERT ? g_bert_names[i] : g_xlmr_names[i];
}

int xa_mlm_rows_bound(int64_t N, double p) {
    if (N < 1) return 1;
    if (!(p > 0.0)) return 1;
    if (p >= 1.0 || N > XA_MAX_BATCH_TOKENS) return (int)(N < XA_MAX_BATCH_TOKENS ? N : XA_MAX_BATCH_TOKENS);
    const double mean = (double)N * p, sd = sqrt((double)N * p * (1.0 - p));
    const double b = ceil(mean + 6.0 * sd) + 8.0; /* P(Binomial > b) < 1e-9 */
    return b >= (double)N ? (int)N : (int)b;
}

/* Carve the activation arena for M rows; on error the head's previous arena is kept. */
static xa_status plan_rows(xa_mlm_head *head, int M) {
    const int C = head->C, V = head->V;
    size_t MC = (size_t)M * C * sizeof(float);
    size_t sizes[] = {(size_t)M * sizeof(int32_t), (size_t)M * sizeof(int32_t), MC, MC, MC,
                      (size_t)M * sizeof(float), (size_t)M * sizeof(float), MC, MC,
                      (size_t)M * V * sizeof(float), MC, MC};
    void *v[12];
    xa_arena a;
    xa_status st = xa_arena_init(&a, sizes, 12, XA_ARENA_ALIGN, v);
    if (st) return st;
    xa_arena_free(&head->arena);
    head->arena = a;
    head->M = M;
    head->rows = v[0];
    head->targets = v[1];
    head->h = v[2];
    head->pre = v[3];
    head->act = v[4];
    head->mean = v[5];
    head->rstd = v[6];
    head->ln = v[7];
    head->dec_in = v[8];
    head->logits = v[9];
    head->d1 = v[10];
    head->d2 = v[11];
    return XA_STATUS_OK;
}

xa_status xa_mlm_head_init(xa_mlm_head *head, int C, int V, float eps, int M, int trainable) {
    memset(head, 0, sizeof *head);
    if (C < 1 || V < 1 || M < 1 || M > XA_MAX_BATCH_TOKENS) {
        return xa_error_set(XA_STATUS_USAGE, "xa_mlm_head_init", "C, V >= 1 and M in [1, 16777216]",
                            NULL, "C %d, V %d, M %d", C, V, M);
    }
    head->C = C;
    head->V = V;
    head->eps = eps;
    head->numel[XA_MLM_DW] = (size_t)C * C;
    head->numel[XA_MLM_DB] = head->numel[XA_MLM_LN_W] = head->numel[XA_MLM_LN_B] = (size_t)C;
    head->numel[XA_MLM_BIAS] = (size_t)V;
    for (int i = 0; i < XA_MLM_N_TENSORS; i++) head->n_params += head->numel[i];
    head->params = xa_aligned_alloc(head->n_params * sizeof(float), XA_ARENA_ALIGN);
    if (!head->params) {
        return xa_error_set(XA_STATUS_NOMEM, "xa_mlm_head_init", NULL, NULL, "out of memory");
    }
    xa_params_carve(head->params, head->numel, XA_MLM_N_TENSORS, head->t);
    xa_status st = plan_rows(head, M);
    if (!st) st = xa_mlm_head_set_trainable(head, trainable);
    if (st) {
        xa_mlm_head_free(head);
        return st;
    }
    return XA_STATUS_OK;
}

xa_status xa_mlm_head_reserve(xa_mlm_head *head, int m) {
    if (m <= head->M) return XA_STATUS_OK;
    if (m > XA_MAX_BATCH_TOKENS)
        return xa_error_set(XA_STATUS_USAGE, "xa_mlm_head_reserve", "at most 16777216 masked rows", NULL, "%d rows", m);
    /* an eighth more than asked, so that a run of slightly larger batches grows it once */
    int64_t want = (int64_t)m + m / 8;
    return plan_rows(head, (int)(want < XA_MAX_BATCH_TOKENS ? want : XA_MAX_BATCH_TOKENS));
}

void xa_mlm_head_free(xa_mlm_head *head) {
    if (!head) return;
    xa_mlm_head_set_packed(head, 0);
    xa_aligned_free(head->params);
    xa_aligned_free(head->grads);
    xa_arena_free(&head->arena);
    memset(head, 0, sizeof *head);
}

xa_status xa_mlm_head_set_trainable(xa_mlm_head *head, int trainable) {
    if (trainable) xa_mlm_head_set_packed(head, 0);
    return xa_params_set_trainable(&head->grads, head->n_params, head->numel, XA_MLM_N_TENSORS, head->g,
                                   trainable, "xa_mlm_head_set_trainable");
}

xa_status xa_mlm_head_set_packed(xa_mlm_head *head, int on) {
    if (!on || head->packed) {
        if (!on && head->packed) xa_gemm_frozen_remove(head->t[XA_MLM_DW]);
        head->packed = head->packed && on;
        return XA_STATUS_OK;
    }
    XA_ASSERT(!head->grads && "a bf16 pack of a trainable MLM head");
    xa_status st = xa_gemm_frozen_add(head->t[XA_MLM_DW], head->C, head->C, "lm_head.dense.weight");
    head->packed = !st;
    return st;
}

void xa_mlm_head_init_weights(xa_mlm_head *head, xa_rng *rng, float std) {
    XA_ASSERT(!head->packed && "writing weights registered for bf16 packs");
    xa_rng_fill_normal(rng, head->t[XA_MLM_DW], head->numel[XA_MLM_DW], 0.0f, std);
    memset(head->t[XA_MLM_DB], 0, head->numel[XA_MLM_DB] * sizeof(float));
    for (size_t i = 0; i < head->numel[XA_MLM_LN_W]; i++) head->t[XA_MLM_LN_W][i] = 1.0f;
    memset(head->t[XA_MLM_LN_B], 0, head->numel[XA_MLM_LN_B] * sizeof(float));
    memset(head->t[XA_MLM_BIAS], 0, head->numel[XA_MLM_BIAS] * sizeof(float));
}

float xa_mlm_head_forward(xa_mlm_head *head, const float *hidden, const int32_t *rows,
                          const int32_t *targets, int m, const float *wte, const xa_hook *hook,
                          float *logits_out) {
    XA_ASSERT(m >= 0 && m <= head->M);
    const int C = head->C, V = head->V;
    head->m = m;
    if (m == 0) return 0.0f;
    memcpy(head->rows, rows, (size_t)m * sizeof(int32_t));
    memcpy(head->targets, targets, (size_t)m * sizeof(int32_t));
    for (int i = 0; i < m; i++) {
        memcpy(head->h + (size_t)i * C, hidden + (size_t)rows[i] * C, (size_t)C * sizeof(float));
    }
    xa_linear_forward(head->pre, head->h, head->t[XA_MLM_DW], head->t[XA_MLM_DB], m, C, C);
    xa_act_forward(head->act, head->pre, (size_t)m * C, XA_ACT_GELU);
    xa_layernorm_forward(head->ln, head->mean, head->rstd, head->act, head->t[XA_MLM_LN_W],
                         head->t[XA_MLM_LN_B], m, C, head->eps);
    head->hooked = hook && hook->rows_forward &&
                   hook->rows_forward(hook->ctx, XA_HOOK_MLM, head->dec_in, head->ln, m, C);
    if (!head->hooked) memcpy(head->dec_in, head->ln, (size_t)m * C * sizeof(float));
    /* The vocabulary projection: the one large product of the head, on masked rows only. */
    xa_linear_forward(head->logits, head->dec_in, wte, head->t[XA_MLM_BIAS], m, C, V);
    if (logits_out) memcpy(logits_out, head->logits, (size_t)m * V * sizeof(float));
    return xa_cross_entropy_fused(head->logits, NULL, head->logits, head->targets, m, V, XA_IGNORE_INDEX);
}

void xa_mlm_head_backward(xa_mlm_head *head, float *dhidden, float *dwte, const float *wte,
                          const xa_hook *hook, float scale) {
    const int C = head->C, V = head->V, m = head->m;
    if (m == 0) return;
    const size_t MC = (size_t)m * C;
    float *dlogits = head->logits; /* forward left d(mean loss)/d(logits) here */
    if (scale != 1.0f) xa_scale(dlogits, scale, (size_t)m * V);
    int g = head->grads != NULL;
    /* Nothing below the decoder needs a gradient: only the tied weight and the bias. */
    int below = g || dhidden || head->hooked;
    memset(head->d1, 0, MC * sizeof(float));
    xa_linear_backward(below ? head->d1 : NULL, dwte, g ? head->g[XA_MLM_BIAS] : NULL, dlogits,
                       head->dec_in, wte, m, C, V);
    if (!below) return;
    float *dln = head->d1;
    if (head->hooked) {
        memset(head->d2, 0, MC * sizeof(float));
        hook->rows_backward(hook->ctx, XA_HOOK_MLM, head->d2, head->d1, head->ln, m, C);
        dln = head->d2;
    }
    if (!g && !dhidden) return;
    float *dact = dln == head->d1 ? head->d2 : head->d1;
    memset(dact, 0, MC * sizeof(float));
    xa_layernorm_backward(dact, g ? head->g[XA_MLM_LN_W] : NULL, g ? head->g[XA_MLM_LN_B] : NULL,
                          dln, head->act, head->t[XA_MLM_LN_W], head->mean, head->rstd, m, C);
    float *dpre = dln; /* dln is consumed: reuse it */
    memset(dpre, 0, MC * sizeof(float));
    xa_act_backward(dpre, dact, head->pre, MC, XA_ACT_GELU);
    if (!dhidden) {
        xa_linear_backward(NULL, head->g[XA_MLM_DW], head->g[XA_MLM_DB], dpre, head->h, NULL, m, C, C);
        return;
    }
    memset(dact, 0, MC * sizeof(float));
    xa_linear_backward(dact, g ? head->g[XA_MLM_DW] : NULL, g ? head->g[XA_MLM_DB] : NULL, dpre,
                       head->h, head->t[XA_MLM_DW], m, C, C);
    for (int i = 0; i < m; i++) {
        xa_axpy(dhidden + (size_t)head->rows[i] * C, dact + (size_t)i * C, 1.0f, (size_t)C);
    }
}
