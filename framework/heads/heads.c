/* heads: sequence classification (XLM-R style), token classification, multiple choice and
 * extractive question answering, forward, loss and backward (see heads.h for the formulas). Multiple choice is the classification
 * body with one output per row; its (R, 1) scores are the (R / K, K) logits of the cross-entropy,
 * in the same memory, so the loss and its gradient need no copy. Question answering is the tagging
 * body with two outputs per token; its two cross-entropies run over positions (a row's tokens),
 * in double, and leave their gradient in the logits as the other kinds do. Not implemented:
 * pooler-based BERT classification (use_pooler), a question-answering head of more than one
 * layer. */
#include "heads/heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

xa_status xa_head_init(xa_head *head, xa_head_kind kind, int C, int K, float p_drop, int max_batch,
                       int max_T, int trainable) {
    memset(head, 0, sizeof *head);
    if (kind != XA_HEAD_CLASSIFICATION && kind != XA_HEAD_TAGGING && kind != XA_HEAD_MULTIPLE_CHOICE &&
        kind != XA_HEAD_QUESTION_ANSWERING) {
        return xa_error_set(XA_STATUS_USAGE, "xa_head_init", "a xa_head_kind", NULL, "unknown kind %d", (int)kind);
    }
    if (C < 1 || K < 1 || max_batch < 1 || max_T < 1 || !(p_drop >= 0.0f && p_drop < 1.0f)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_head_init", "C, K, batch, T >= 1 and dropout in [0, 1)",
                            NULL, "C %d, K %d, batch %d, T %d, dropout %g", C, K, max_batch, max_T,
                            (double)p_drop);
    }
    if (kind == XA_HEAD_QUESTION_ANSWERING && K != 2) {
        return xa_error_set(XA_STATUS_USAGE, "xa_head_init", "K = 2 (start, end) for question answering", NULL,
                            "K is %d", K);
    }
    if ((int64_t)max_batch * max_T > XA_MAX_BATCH_TOKENS) { /* R = max_batch * max_T rows is int */
        return xa_error_set(XA_STATUS_USAGE, "xa_head_init", "at most 16777216 tokens a batch",
                            "lower the batch size or the sequence length", "batch %d x %d tokens",
                            max_batch, max_T);
    }
    head->kind = kind;
    head->C = C;
    head->K = K;
    head->p_drop = p_drop;
    if (kind == XA_HEAD_CLASSIFICATION || kind == XA_HEAD_MULTIPLE_CHOICE) {
        const int out = kind == XA_HEAD_MULTIPLE_CHOICE ? 1 : K;
        head->numel[XA_HEAD_W1] = (size_t)C * C;
        head->numel[XA_HEAD_B1] = (size_t)C;
        head->numel[XA_HEAD_W2] = (size_t)out * C;
        head->numel[XA_HEAD_B2] = (size_t)out;
        head->R = max_batch;
    } else {
        head->numel[XA_HEAD_W1] = (size_t)K * C;
        head->numel[XA_HEAD_B1] = (size_t)K;
        head->R = max_batch * max_T;
    }
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) head->n_params += head->numel[i];
    head->params = xa_aligned_alloc(head->n_params * sizeof(float), XA_ARENA_ALIGN);
    if (!head->params) return xa_error_set(XA_STATUS_NOMEM, "xa_head_init", NULL, NULL, "out of memory");
    xa_params_carve(head->params, head->numel, XA_HEAD_N_TENSORS, head->t);
    size_t R = (size_t)head->R, RC = R * C * sizeof(float);
    size_t sizes[] = {RC, R * C, R * C, RC, RC, R * K * sizeof(float), R * sizeof(int32_t), RC, RC};
    void *v[9];
    xa_status st = xa_arena_init(&head->arena, sizes, 9, XA_ARENA_ALIGN, v);
    if (!st) st = xa_head_set_trainable(head, trainable);
    if (st) {
        xa_head_free(head);
        return st;
    }
    head->x = v[0];
    head->keep1 = v[1];
    head->keep2 = v[2];
    head->pre = v[3];
    head->pooled = v[4];
    head->logits = v[5];
    head->labels = v[6];
    head->d1 = v[7];
    head->d2 = v[8];
    return XA_STATUS_OK;
}

void xa_head_free(xa_head *head) {
    if (!head) return;
    xa_aligned_free(head->params);
    xa_aligned_free(head->grads);
    xa_arena_free(&head->arena);
    free(head->class_w);
    memset(head, 0, sizeof *head);
}

xa_status xa_head_set_trainable(xa_head *head, int trainable) {
    return xa_params_set_trainable(&head->grads, head->n_params, head->numel, XA_HEAD_N_TENSORS, head->g,
                                   trainable, "xa_head_set_trainable");
}

void xa_head_init_weights(xa_head *head, xa_rng *rng, float std) {
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        if (!head->t[i]) continue;
        if (i == XA_HEAD_W1 || i == XA_HEAD_W2) {
            xa_rng_fill_normal(rng, head->t[i], head->numel[i], 0.0f, std);
        } else {
            memset(head->t[i], 0, head->numel[i] * sizeof(float));
        }
    }
}

int xa_head_module_index(const xa_head *head, int i) {
    if (head->kind == XA_HEAD_TAGGING || head->kind == XA_HEAD_QUESTION_ANSWERING) return 1; /* Dropout, Linear */
    return i <= XA_HEAD_B1 ? 1 : 4; /* classification and multiple choice: modules 1 and 4 */
}

xa_status xa_head_set_class_weights(xa_head *head, const float *w) {
    free(head->class_w);
    head->class_w = NULL;
    if (!w) return XA_STATUS_OK;
    double sum = 0.0;
    for (int k = 0; k < head->K; k++) {
        if (!(isfinite(w[k]) && w[k] >= 0.0f))
            return xa_error_set(XA_STATUS_USAGE, "xa_head_set_class_weights", "finite class weights >= 0", NULL,
                                "weight %d is %g", k, (double)w[k]);
        sum += w[k];
    }
    if (!(sum > 0.0))
        return xa_error_set(XA_STATUS_USAGE, "xa_head_set_class_weights", "at least one class weight > 0", NULL,
                            "every weight is 0");
    head->class_w = malloc((size_t)head->K * sizeof *head->class_w);
    if (!head->class_w) return xa_error_set(XA_STATUS_NOMEM, "xa_head_set_class_weights", NULL, NULL, "out of memory");
    memcpy(head->class_w, w, (size_t)head->K * sizeof *w);
    return XA_STATUS_OK;
}

int xa_class_weights_balanced(float *w, const int32_t *labels, size_t n, int K) {
    XA_ASSERT(K >= 1);
    int64_t *count = calloc((size_t)K, sizeof *count); /* (K) */
    if (!count) return -1;
    int64_t total = 0;
    int present = 0;
    for (size_t i = 0; i < n; i++) {
        if (labels[i] == XA_IGNORE_INDEX) continue;
        XA_ASSERT(labels[i] >= 0 && labels[i] < K);
        present += count[labels[i]]++ == 0;
        total++;
    }
    for (int k = 0; k < K; k++)
        w[k] = count[k] > 0 ? (float)((double)total / ((double)present * (double)count[k])) : 0.0f;
    free(count);
    return present;
}

/* In-place dropout of the head's n = B x (elements per sequence) values, with the mask of the
 * global batch at the head's rows (head->row0). */
static void dropout(const xa_head *head, float *x, uint8_t *keep, size_t n, float p, int train, xa_rng *rng) {
    if (!train || p <= 0.0f) return;
    xa_dropout_mask_at(keep, n, (uint64_t)head->row0 * (uint64_t)(n / (size_t)head->B), p, rng);
    xa_dropout_forward(x, x, keep, n, p);
}

/* One row's cross-entropy over its n positions, logit z[t * 2] (stride 2: start or end), target y;
 * writes scale * (softmax - onehot) into g[t * 2] (g may be z). Returns the unscaled loss. */
static double position_ce(float *g, const float *z, int n, int y, double scale) {
    const double zy = z[2 * y];
    double mx = z[0];
    for (int t = 1; t < n; t++)
        if (z[2 * t] > mx) mx = z[2 * t];
    double sum = 0;
    for (int t = 0; t < n; t++) sum += exp((double)z[2 * t] - mx);
    const double lse = mx + log(sum);
    for (int t = 0; t < n; t++) g[2 * t] = (float)(scale * (exp((double)z[2 * t] - lse) - (t == y)));
    return lse - zy;
}

float xa_head_forward_qa(xa_head *head, const float *hidden, const int32_t *labels, const int32_t *lens, int B,
                         int T, float *logits_out, int train, xa_rng *rng) {
    XA_ASSERT(head->kind == XA_HEAD_QUESTION_ANSWERING);
    const int C = head->C, r = B * T;
    XA_ASSERT(r >= 1 && r <= head->R);
    head->r = r;
    head->B = B;
    head->T = T;
    head->train = train;
    const size_t RC = (size_t)r * C;
    memcpy(head->x, hidden, RC * sizeof(float));
    dropout(head, head->x, head->keep1, RC, head->p_drop, train, rng);
    xa_linear_forward(head->logits, head->x, head->t[XA_HEAD_W1], head->t[XA_HEAD_B1], r, C, 2);
    if (logits_out) memcpy(logits_out, head->logits, (size_t)r * 2 * sizeof(float));
    if (!labels) return 0.0f;
    /* counted rows per side: a position outside the row is ignored (HF's clamp to ignored_index) */
    int n_cnt[2] = {0, 0};
    for (int b = 0; b < B; b++) {
        const int n = lens ? lens[b] : T;
        for (int k = 0; k < 2; k++) n_cnt[k] += labels[2 * b + k] >= 0 && labels[2 * b + k] < n;
    }
    double loss = 0;
    float *g = head->logits; /* the gradient replaces the logits, row by row */
    for (int b = 0; b < B; b++) {
        const int n = lens ? lens[b] : T;
        XA_ASSERT(n >= 1 && n <= T);
        float *row = g + (size_t)b * T * 2;
        for (int k = 0; k < 2; k++) {
            const int y = labels[2 * b + k];
            if (y >= 0 && y < n) {
                const double scale = 0.5 / (double)n_cnt[k];
                loss += scale * position_ce(row + k, row + k, n, y, scale);
            } else {
                for (int t = 0; t < n; t++) row[2 * t + k] = 0.0f;
            }
        }
        for (int t = 2 * n; t < 2 * T; t++) row[t] = 0.0f; /* pads: outside the softmax */
    }
    return (float)loss;
}

float xa_head_forward(xa_head *head, const float *hidden, const int32_t *labels, int B, int T,
                      float *logits_out, int train, xa_rng *rng) {
    if (head->kind == XA_HEAD_QUESTION_ANSWERING)
        return xa_head_forward_qa(head, hidden, labels, NULL, B, T, logits_out, train, rng);
    const int C = head->C, mc = head->kind == XA_HEAD_MULTIPLE_CHOICE;
    const int K = mc ? 1 : head->K; /* outputs per row */
    int r = head->kind == XA_HEAD_TAGGING ? B * T : B;
    XA_ASSERT(!mc || B % head->K == 0);
    XA_ASSERT(r >= 1 && r <= head->R);
    head->r = r;
    head->B = B;
    head->T = T;
    head->train = train;
    const size_t RC = (size_t)r * C;
    if (head->kind != XA_HEAD_TAGGING) {
        for (int b = 0; b < B; b++) {
            memcpy(head->x + (size_t)b * C, hidden + (size_t)b * T * C, (size_t)C * sizeof(float));
        }
    } else {
        memcpy(head->x, hidden, RC * sizeof(float));
    }
    dropout(head, head->x, head->keep1, RC, head->p_drop, train, rng);
    if (head->kind != XA_HEAD_TAGGING) {
        xa_linear_forward(head->pre, head->x, head->t[XA_HEAD_W1], head->t[XA_HEAD_B1], r, C, C);
        xa_act_forward(head->pooled, head->pre, RC, XA_ACT_TANH);
        dropout(head, head->pooled, head->keep2, RC, head->p_drop, train, rng);
        xa_linear_forward(head->logits, head->pooled, head->t[XA_HEAD_W2], head->t[XA_HEAD_B2], r, C, K);
    } else {
        xa_linear_forward(head->logits, head->x, head->t[XA_HEAD_W1], head->t[XA_HEAD_B1], r, C, K);
    }
    if (logits_out) memcpy(logits_out, head->logits, (size_t)r * K * sizeof(float));
    if (!labels) return 0.0f;
    /* the loss over (n, k): rows x labels, or examples x choices */
    const int n = mc ? r / head->K : r, k = mc ? head->K : K;
    memcpy(head->labels, labels, (size_t)n * sizeof(int32_t));
    if (head->class_w)
        return xa_cross_entropy_weighted(head->logits, NULL, head->logits, head->labels, head->class_w, n, k,
                                         XA_IGNORE_INDEX);
    return xa_cross_entropy_fused(head->logits, NULL, head->logits, head->labels, n, k, XA_IGNORE_INDEX);
}

void xa_head_backward(xa_head *head, float *dhidden, float scale) {
    const int C = head->C, K = head->kind == XA_HEAD_MULTIPLE_CHOICE ? 1 : head->K, r = head->r, B = head->B,
              T = head->T;
    const size_t RC = (size_t)r * C;
    const int g = head->grads != NULL;
    float *dlogits = head->logits;
    if (scale != 1.0f) xa_scale(dlogits, scale, (size_t)r * K);
    float *dx = head->d1;
    memset(dx, 0, RC * sizeof(float));
    if (head->kind != XA_HEAD_TAGGING && head->kind != XA_HEAD_QUESTION_ANSWERING) {
        float *dpooled = head->d2;
        memset(dpooled, 0, RC * sizeof(float));
        xa_linear_backward(dpooled, g ? head->g[XA_HEAD_W2] : NULL, g ? head->g[XA_HEAD_B2] : NULL,
                           dlogits, head->pooled, head->t[XA_HEAD_W2], r, C, K);
        if (head->train && head->p_drop > 0.0f) xa_dropout_forward(dpooled, dpooled, head->keep2, RC, head->p_drop);
        /* tanh backward from the saved pre-activation; then the dense. */
        float *dpre = head->pooled; /* pooled is no longer needed: reuse it */
        memset(dpre, 0, RC * sizeof(float));
        xa_act_backward(dpre, dpooled, head->pre, RC, XA_ACT_TANH);
        xa_linear_backward(dhidden ? dx : NULL, g ? head->g[XA_HEAD_W1] : NULL, g ? head->g[XA_HEAD_B1] : NULL,
                           dpre, head->x, head->t[XA_HEAD_W1], r, C, C);
    } else {
        xa_linear_backward(dhidden ? dx : NULL, g ? head->g[XA_HEAD_W1] : NULL, g ? head->g[XA_HEAD_B1] : NULL,
                           dlogits, head->x, head->t[XA_HEAD_W1], r, C, K);
    }
    if (!dhidden) return;
    if (head->train && head->p_drop > 0.0f) xa_dropout_forward(dx, dx, head->keep1, RC, head->p_drop);
    if (head->kind != XA_HEAD_TAGGING && head->kind != XA_HEAD_QUESTION_ANSWERING) {
        for (int b = 0; b < B; b++) xa_axpy(dhidden + (size_t)b * T * C, dx + (size_t)b * C, 1.0f, (size_t)C);
    } else {
        xa_axpy(dhidden, dx, 1.0f, RC);
    }
}
