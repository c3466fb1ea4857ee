/* Tests of framework/model and framework/heads against the PyTorch reference
 * (tests/golden/gen_encoder_golden.py -> tests/data/encoder/{xlmr,bert}/): every layer's hidden
 * states, MLM logits and loss on the masked rows, classification and tagging logits and losses, and
 * the gradients of every parameter and of the embedding output for each loss, in train mode with
 * dropout off and padding in the batch. Plus finite differences of the whole encoder backward, a
 * frozen encoder giving the same input gradients, and a save/load round trip that is bit-identical.
 * The class-weighted head loss against F.cross_entropy(weight=...) and finite differences
 * (tests/golden/gen_class_weight_golden.py), and scikit-learn's "balanced" weights. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "heads/heads.h"
#include "io/safetensors.h"
#include "model/model.h"

/* Tolerances (float32 against float32 PyTorch; different summation orders). */
#define ATOL_FWD 2e-5f
#define RTOL_FWD 1e-4f
#define ATOL_GRAD 2e-5f
#define RTOL_GRAD 2e-3f

typedef struct fixture {
    const char *variant;
    xa_encoder enc;
    xa_hf_config hf;
    xa_mlm_head mlm;
    xa_st_file *gold;
    int B, T;
    int32_t ids[64], types[64], mask[64], mlm_labels[64], cls_labels[8], tag_labels[64], lens[8];
    int32_t rows[64], targets[64];
    int m;
} fixture;

static void read_i32(const xa_st_file *f, const char *name, int32_t *out, size_t n) {
    const xa_st_tensor *t = xa_st_find(f, name);
    if (!t) fail_msg("golden tensor %s missing", name);
    assert_int_equal(t->dtype, XA_DTYPE_I64);
    assert_int_equal((size_t)t->n_elems, n);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * i, 8);
        out[i] = (int32_t)v;
    }
}

static int setup_variant(void **state, const char *variant) {
    fixture *fx = calloc(1, sizeof *fx);
    fx->variant = variant;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", xt_data_path("encoder"));
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", variant);
    if (xa_encoder_load(&fx->enc, &fx->hf, dir, 1) != XA_STATUS_OK) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("%s", buf);
    }
    /* Train mode with dropout off: the golden was computed without dropout. */
    fx->enc.cfg.p_hidden = fx->enc.cfg.p_attn = 0.0f;
    assert_int_equal(xa_mlm_head_init(&fx->mlm, fx->enc.cfg.C, fx->enc.cfg.V, fx->enc.cfg.eps, 64, 1), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_load(&fx->mlm, fx->enc.cfg.arch, dir), XA_STATUS_OK);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    assert_int_equal(xa_st_open(&fx->gold, path), XA_STATUS_OK);
    const xa_st_tensor *ids = xa_st_find(fx->gold, "input_ids");
    fx->B = (int)ids->shape[0];
    fx->T = (int)ids->shape[1];
    size_t N = (size_t)fx->B * fx->T;
    read_i32(fx->gold, "input_ids", fx->ids, N);
    read_i32(fx->gold, "token_type_ids", fx->types, N);
    read_i32(fx->gold, "attention_mask", fx->mask, N);
    read_i32(fx->gold, "mlm_labels", fx->mlm_labels, N);
    read_i32(fx->gold, "cls_labels", fx->cls_labels, (size_t)fx->B);
    read_i32(fx->gold, "tag_labels", fx->tag_labels, N);
    for (int b = 0; b < fx->B; b++) {
        fx->lens[b] = 0;
        for (int t = 0; t < fx->T; t++) fx->lens[b] += fx->mask[b * fx->T + t];
    }
    fx->m = 0;
    for (size_t i = 0; i < N; i++) {
        if (fx->mlm_labels[i] != XA_IGNORE_INDEX) {
            fx->rows[fx->m] = (int32_t)i;
            fx->targets[fx->m++] = fx->mlm_labels[i];
        }
    }
    *state = fx;
    return 0;
}

static int setup_xlmr(void **state) { return setup_variant(state, "xlmr"); }
static int setup_bert(void **state) { return setup_variant(state, "bert"); }

static int teardown(void **state) {
    fixture *fx = *state;
    xa_encoder_free(&fx->enc);
    xa_mlm_head_free(&fx->mlm);
    xa_st_close(fx->gold);
    free(fx);
    return 0;
}

/* Compare only the rows of real tokens (padded rows carry no meaning). */
static void assert_rows_close(const char *label, const fixture *fx, const float *got, const float *ref,
                              int C, float atol, float rtol) {
    for (int b = 0; b < fx->B; b++) {
        char l[256];
        snprintf(l, sizeof l, "%s (%s, row %d)", label, fx->variant, b);
        xt_assert_close(l, got + (size_t)b * fx->T * C, ref + (size_t)b * fx->T * C,
                        (size_t)fx->lens[b] * C, atol, rtol);
    }
}

static xa_batch make_batch(fixture *fx) {
    xa_batch b = {fx->ids, fx->types, fx->lens, fx->B, fx->T};
    return b;
}

static void test_forward_hidden_states(void **state) {
    fixture *fx = *state;
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &fx->enc.cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    xa_rng rng;
    xa_rng_seed(&rng, 1, 0);
    assert_int_equal(xa_encoder_forward(&fx->enc, &a, &b, NULL, 1, &rng), XA_STATUS_OK);
    for (int l = -1; l < fx->enc.cfg.L; l++) {
        char name[32];
        snprintf(name, sizeof name, "hidden.%d", l + 1);
        float *ref = xt_read_f32(fx->gold, name, NULL);
        assert_rows_close(name, fx, xa_encoder_hidden(&fx->enc, &a, l), ref, fx->enc.cfg.C, ATOL_FWD, RTOL_FWD);
        free(ref);
    }
    /* Inference activations give the same result. */
    xa_encoder_acts ai;
    assert_int_equal(xa_encoder_acts_init(&ai, &fx->enc.cfg, fx->B, fx->T, 0), XA_STATUS_OK);
    assert_int_equal(xa_encoder_forward(&fx->enc, &ai, &b, NULL, 0, NULL), XA_STATUS_OK);
    size_t NC = (size_t)fx->B * fx->T * fx->enc.cfg.C;
    assert_memory_equal(xa_encoder_hidden(&fx->enc, &ai, fx->enc.cfg.L - 1),
                        xa_encoder_hidden(&fx->enc, &a, fx->enc.cfg.L - 1), NC * sizeof(float));
    /* A forward with dropout on inference activations (a frozen encoder under a trained head) gives
     * the training forward's result for the same rng, in far less memory. */
    fx->enc.cfg.p_hidden = fx->enc.cfg.p_attn = 0.1f;
    xa_rng r1, r2;
    xa_rng_seed(&r1, 5, 0);
    xa_rng_seed(&r2, 5, 0);
    assert_int_equal(xa_encoder_forward(&fx->enc, &a, &b, NULL, 1, &r1), XA_STATUS_OK);
    assert_int_equal(xa_encoder_forward(&fx->enc, &ai, &b, NULL, 1, &r2), XA_STATUS_OK);
    for (int l = 0; l < fx->enc.cfg.L; l++) {
        assert_memory_equal(xa_encoder_hidden(&fx->enc, &ai, l), xa_encoder_hidden(&fx->enc, &a, l), NC * sizeof(float));
    }
    fx->enc.cfg.p_hidden = fx->enc.cfg.p_attn = 0.0f;
    assert_true(xa_encoder_acts_bytes(&fx->enc.cfg, 32, 128, 0) < xa_encoder_acts_bytes(&fx->enc.cfg, 32, 128, 1));
    xa_encoder_config base;
    assert_int_equal(xa_encoder_preset(&base, "base"), XA_STATUS_OK);
    assert_true(xa_encoder_acts_bytes(&base, 8, 128, 0) * 3 < xa_encoder_acts_bytes(&base, 8, 128, 1));
    xa_encoder_config xb; /* the benchmark's XLM-R base: base's shape, XLM-R's vocabulary */
    assert_int_equal(xa_encoder_preset(&xb, "xlmr-base"), XA_STATUS_OK);
    assert_true(xb.L == 12 && xb.C == 768 && xb.NH == 12 && xb.FF == 3072 && xb.V == 250002);
    xa_encoder_acts_free(&ai);
    xa_encoder_acts_free(&a);
}

/* Compare every encoder gradient and the head gradients with grad_<tag>.* of the golden. */
static void compare_encoder_grads(const fixture *fx, const char *tag) {
    const xa_encoder *enc = &fx->enc;
    const char *prefix = enc->cfg.arch == XA_ARCH_BERT ? "bert." : "roberta.";
    for (int i = 0; i < XA_ENC_N_TENSORS; i++) {
        int layers = i >= XA_ENC_QW ? enc->cfg.L : 1;
        for (int l = 0; l < layers; l++) {
            char name[200], gname[300];
            int64_t shape[2];
            xa_encoder_tensor_name(enc, i, l, name, sizeof name, shape);
            snprintf(gname, sizeof gname, "grad_%s.%s%s", tag, prefix, name);
            size_t n = 0;
            float *ref = xt_read_f32(fx->gold, gname, &n);
            char label[400];
            snprintf(label, sizeof label, "%s (%s)", gname, fx->variant);
            xt_assert_close(label, xa_encoder_slice(enc, i, l, 1), ref, n, ATOL_GRAD, RTOL_GRAD);
            free(ref);
        }
    }
}

static void test_mlm_loss_logits_and_grads(void **state) {
    fixture *fx = *state;
    xa_encoder *enc = &fx->enc;
    const int C = enc->cfg.C, V = enc->cfg.V;
    const size_t NC = (size_t)fx->B * fx->T * C;
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &enc->cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    assert_int_equal(xa_encoder_forward(enc, &a, &b, NULL, 1, NULL), XA_STATUS_OK);
    float *logits = malloc((size_t)fx->m * V * sizeof(float));
    float loss = xa_mlm_head_forward(&fx->mlm, xa_encoder_hidden(enc, &a, enc->cfg.L - 1), fx->rows,
                                     fx->targets, fx->m, enc->t[XA_ENC_WTE], NULL, logits);
    float *ref = xt_read_f32(fx->gold, "mlm_logits_masked", NULL);
    xt_assert_close("mlm logits", logits, ref, (size_t)fx->m * V, ATOL_FWD, RTOL_FWD);
    free(ref);
    ref = xt_read_f32(fx->gold, "mlm_loss", NULL);
    xt_assert_close("mlm loss", &loss, ref, 1, 1e-5f, 1e-5f);
    free(ref);

    memset(enc->grads, 0, enc->n_params * sizeof(float));
    memset(fx->mlm.grads, 0, fx->mlm.n_params * sizeof(float));
    float *dlast = calloc(NC, sizeof(float)), *demb = calloc(NC, sizeof(float));
    xa_mlm_head_backward(&fx->mlm, dlast, enc->g[XA_ENC_WTE], enc->t[XA_ENC_WTE], NULL, 1.0f);
    xa_encoder_backward(enc, &a, &b, NULL, dlast, demb);
    compare_encoder_grads(fx, "mlm");
    const char *hp = enc->cfg.arch == XA_ARCH_BERT ? "grad_mlm." : "grad_mlm.";
    for (int i = 0; i < XA_MLM_N_TENSORS; i++) {
        char gname[300];
        snprintf(gname, sizeof gname, "%s%s", hp, xa_mlm_head_tensor_name(enc->cfg.arch, i));
        size_t n;
        ref = xt_read_f32(fx->gold, gname, &n);
        xt_assert_close(gname, fx->mlm.g[i], ref, n, ATOL_GRAD, RTOL_GRAD);
        free(ref);
    }
    ref = xt_read_f32(fx->gold, "grad_mlm.embedding_output", NULL);
    assert_rows_close("d embedding output (mlm)", fx, demb, ref, C, ATOL_GRAD, RTOL_GRAD);
    free(ref);

    /* Frozen encoder: no weight gradients, the same gradient at the embedding output. */
    float *demb2 = calloc(NC, sizeof(float));
    float *snapshot = malloc(enc->n_params * sizeof(float));
    memcpy(snapshot, enc->params, enc->n_params * sizeof(float));
    assert_int_equal(xa_encoder_set_trainable(enc, 0), XA_STATUS_OK);
    assert_null(enc->g[XA_ENC_QW]);
    memset(dlast, 0, NC * sizeof(float));
    xa_mlm_head_forward(&fx->mlm, xa_encoder_hidden(enc, &a, enc->cfg.L - 1), fx->rows, fx->targets,
                        fx->m, enc->t[XA_ENC_WTE], NULL, NULL);
    xa_mlm_head_backward(&fx->mlm, dlast, NULL, enc->t[XA_ENC_WTE], NULL, 1.0f);
    xa_encoder_backward(enc, &a, &b, NULL, dlast, demb2);
    xt_assert_close("frozen d embedding output", demb2, demb, NC, 1e-6f, 1e-5f);
    /* A frozen backward never writes the weights. */
    assert_memory_equal(snapshot, enc->params, enc->n_params * sizeof(float));
    free(snapshot);
    assert_int_equal(xa_encoder_set_trainable(enc, 1), XA_STATUS_OK);
    free(demb2);
    free(dlast);
    free(demb);
    free(logits);
    xa_encoder_acts_free(&a);
}

static void run_head(fixture *fx, xa_head_kind kind, const char *tag) {
    xa_encoder *enc = &fx->enc;
    const int C = enc->cfg.C;
    const size_t NC = (size_t)fx->B * fx->T * C;
    const char *w1 = kind == XA_HEAD_CLASSIFICATION ? "heads.cls.1.weight" : "heads.tag.1.weight";
    const xa_st_tensor *tw = xa_st_find(fx->gold, kind == XA_HEAD_CLASSIFICATION ? "heads.cls.4.weight" : w1);
    int K = (int)tw->shape[0];
    xa_head h;
    assert_int_equal(xa_head_init(&h, kind, C, K, 0.1f, fx->B, fx->T, 1), XA_STATUS_OK);
    const char *names[4] = {"heads.cls.1.weight", "heads.cls.1.bias", "heads.cls.4.weight", "heads.cls.4.bias"};
    const char *tnames[2] = {"heads.tag.1.weight", "heads.tag.1.bias"};
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        if (!h.t[i]) continue;
        float *ref =
            xt_read_f32(fx->gold, kind == XA_HEAD_CLASSIFICATION ? names[i] : tnames[i], NULL);
        memcpy(h.t[i], ref, h.numel[i] * sizeof(float));
        free(ref);
    }
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &enc->cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    assert_int_equal(xa_encoder_forward(enc, &a, &b, NULL, 1, NULL), XA_STATUS_OK);
    const int32_t *labels = kind == XA_HEAD_CLASSIFICATION ? fx->cls_labels : fx->tag_labels;
    size_t n_logits = kind == XA_HEAD_CLASSIFICATION ? (size_t)fx->B * K : (size_t)fx->B * fx->T * K;
    float *logits = malloc(n_logits * sizeof(float));
    /* train = 0: the heads' dropout is off, as in the golden. */
    float loss = xa_head_forward(&h, xa_encoder_hidden(enc, &a, enc->cfg.L - 1), labels, fx->B, fx->T, logits, 0, NULL);
    char name[64];
    snprintf(name, sizeof name, "%s_logits", tag);
    float *ref = xt_read_f32(fx->gold, name, NULL);
    if (kind == XA_HEAD_CLASSIFICATION) {
        xt_assert_close(name, logits, ref, n_logits, ATOL_FWD, RTOL_FWD);
    } else {
        assert_rows_close(name, fx, logits, ref, K, ATOL_FWD, RTOL_FWD);
    }
    free(ref);
    snprintf(name, sizeof name, "%s_loss", tag);
    ref = xt_read_f32(fx->gold, name, NULL);
    xt_assert_close(name, &loss, ref, 1, 1e-5f, 1e-5f);
    free(ref);

    memset(enc->grads, 0, enc->n_params * sizeof(float));
    float *dlast = calloc(NC, sizeof(float)), *demb = calloc(NC, sizeof(float));
    xa_head_backward(&h, dlast, 1.0f);
    xa_encoder_backward(enc, &a, &b, NULL, dlast, demb);
    compare_encoder_grads(fx, tag);
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        if (!h.g[i]) continue;
        char gname[300];
        snprintf(gname, sizeof gname, "grad_%s.%s", tag, kind == XA_HEAD_CLASSIFICATION ? names[i] : tnames[i]);
        size_t n;
        ref = xt_read_f32(fx->gold, gname, &n);
        xt_assert_close(gname, h.g[i], ref, n, ATOL_GRAD, RTOL_GRAD);
        free(ref);
    }
    snprintf(name, sizeof name, "grad_%s.embedding_output", tag);
    ref = xt_read_f32(fx->gold, name, NULL);
    assert_rows_close(name, fx, demb, ref, C, ATOL_GRAD, RTOL_GRAD);
    free(ref);
    free(dlast);
    free(demb);
    free(logits);
    xa_encoder_acts_free(&a);
    xa_head_free(&h);
}

static void test_classification_head(void **state) { run_head(*state, XA_HEAD_CLASSIFICATION, "cls"); }
static void test_tagging_head(void **state) { run_head(*state, XA_HEAD_TAGGING, "tag"); }

static void test_save_load_bit_identical(void **state) {
    fixture *fx = *state;
    const char *dir = xt_tmp_path(fx->variant);
    assert_int_equal(xa_model_save(dir, &fx->enc, &fx->mlm, NULL), XA_STATUS_OK);
    xa_encoder e2;
    xa_hf_config hf2;
    assert_int_equal(xa_encoder_load(&e2, &hf2, dir, 0), XA_STATUS_OK);
    assert_string_equal(hf2.model_type, fx->hf.model_type);
    e2.cfg.p_hidden = e2.cfg.p_attn = 0.0f;
    assert_memory_equal(e2.params, fx->enc.params, fx->enc.n_params * sizeof(float));
    xa_mlm_head m2;
    assert_int_equal(xa_mlm_head_init(&m2, e2.cfg.C, e2.cfg.V, e2.cfg.eps, 64, 0), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_load(&m2, e2.cfg.arch, dir), XA_STATUS_OK);
    xa_encoder_acts a1, a2;
    assert_int_equal(xa_encoder_acts_init(&a1, &e2.cfg, fx->B, fx->T, 0), XA_STATUS_OK);
    assert_int_equal(xa_encoder_acts_init(&a2, &e2.cfg, fx->B, fx->T, 0), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    assert_int_equal(xa_encoder_forward(&fx->enc, &a1, &b, NULL, 0, NULL), XA_STATUS_OK);
    assert_int_equal(xa_encoder_forward(&e2, &a2, &b, NULL, 0, NULL), XA_STATUS_OK);
    size_t NC = (size_t)fx->B * fx->T * e2.cfg.C;
    assert_memory_equal(xa_encoder_hidden(&e2, &a2, e2.cfg.L - 1), xa_encoder_hidden(&fx->enc, &a1, e2.cfg.L - 1),
                        NC * sizeof(float));
    float l1 = xa_mlm_head_forward(&fx->mlm, xa_encoder_hidden(&fx->enc, &a1, e2.cfg.L - 1), fx->rows,
                                   fx->targets, fx->m, fx->enc.t[XA_ENC_WTE], NULL, NULL);
    float l2 = xa_mlm_head_forward(&m2, xa_encoder_hidden(&e2, &a2, e2.cfg.L - 1), fx->rows, fx->targets,
                                   fx->m, e2.t[XA_ENC_WTE], NULL, NULL);
    assert_memory_equal(&l1, &l2, sizeof l1);
    xa_encoder_acts_free(&a1);
    xa_encoder_acts_free(&a2);
    xa_mlm_head_free(&m2);
    xa_encoder_free(&e2);
}

/* Finite differences of the whole model (encoder + MLM head) with dropout ON (fixed masks: the
 * same rng seed for every forward), on a handful of parameters of every tensor. */
static double mlm_loss_at(xa_encoder *enc, xa_mlm_head *mlm, xa_encoder_acts *a, const xa_batch *b,
                          const fixture *fx) {
    xa_rng rng;
    xa_rng_seed(&rng, 99, 0);
    assert_int_equal(xa_encoder_forward(enc, a, b, NULL, 1, &rng), XA_STATUS_OK);
    return xa_mlm_head_forward(mlm, xa_encoder_hidden(enc, a, enc->cfg.L - 1), fx->rows, fx->targets,
                               fx->m, enc->t[XA_ENC_WTE], NULL, NULL);
}

static void test_finite_differences_with_dropout(void **state) {
    fixture *fx = *state;
    xa_encoder *enc = &fx->enc;
    enc->cfg.p_hidden = 0.1f;
    enc->cfg.p_attn = 0.1f;
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &enc->cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    const size_t NC = (size_t)fx->B * fx->T * enc->cfg.C;
    memset(enc->grads, 0, enc->n_params * sizeof(float));
    memset(fx->mlm.grads, 0, fx->mlm.n_params * sizeof(float));
    mlm_loss_at(enc, &fx->mlm, &a, &b, fx);
    float *dlast = calloc(NC, sizeof(float));
    xa_mlm_head_backward(&fx->mlm, dlast, enc->g[XA_ENC_WTE], enc->t[XA_ENC_WTE], NULL, 1.0f);
    xa_encoder_backward(enc, &a, &b, NULL, dlast, NULL);
    const float h = 1e-2f;
    int checked = 0;
    for (int i = 0; i < XA_ENC_N_TENSORS; i++) {
        for (int k = 0; k < 3; k++) {
            size_t j = (size_t)(k * 7919 + i * 131) % enc->numel[i];
            float *p = enc->t[i] + j;
            float saved = *p;
            *p = saved + h;
            double lp = mlm_loss_at(enc, &fx->mlm, &a, &b, fx);
            *p = saved - h;
            double lm = mlm_loss_at(enc, &fx->mlm, &a, &b, fx);
            *p = saved;
            double num = (lp - lm) / (2.0 * h), ana = enc->g[i][j];
            if (fabs(num - ana) > 2e-3 + 2e-2 * fabs(num)) {
                fail_msg("%s: tensor %d element %zu: finite difference %.6g, backward %.6g", fx->variant, i, j, num, ana);
            }
            checked++;
        }
    }
    assert_true(checked >= 3 * XA_ENC_N_TENSORS);
    enc->cfg.p_hidden = enc->cfg.p_attn = 0.0f;
    free(dlast);
    xa_encoder_acts_free(&a);
}

/* Finite differences of the full fine-tuning loss: the encoder with dropout ON under a
 * classification head with its own dropout (fixed masks: the same rng seed for every forward), on
 * a handful of parameters of every encoder tensor and of every head tensor, so the gradient path
 * head -> <s> row -> every layer -> embeddings is checked beside the golden comparison above. */
static double cls_loss_at(xa_encoder *enc, xa_head *h, xa_encoder_acts *a, const xa_batch *b, const fixture *fx) {
    xa_rng rng;
    xa_rng_seed(&rng, 99, 0);
    assert_int_equal(xa_encoder_forward(enc, a, b, NULL, 1, &rng), XA_STATUS_OK);
    return xa_head_forward(h, xa_encoder_hidden(enc, a, enc->cfg.L - 1), fx->cls_labels, fx->B, fx->T, NULL, 1, &rng);
}

static void test_finite_differences_cls_full(void **state) {
    fixture *fx = *state;
    xa_encoder *enc = &fx->enc;
    enc->cfg.p_hidden = 0.1f;
    enc->cfg.p_attn = 0.1f;
    const int K = (int)xa_st_find(fx->gold, "heads.cls.4.weight")->shape[0];
    xa_head h;
    assert_int_equal(xa_head_init(&h, XA_HEAD_CLASSIFICATION, enc->cfg.C, K, 0.1f, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_rng init;
    xa_rng_seed(&init, 5, 1);
    xa_head_init_weights(&h, &init, 0.3f); /* large enough that the encoder's gradients are not tiny */
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &enc->cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    const size_t NC = (size_t)fx->B * fx->T * enc->cfg.C;
    memset(enc->grads, 0, enc->n_params * sizeof(float));
    memset(h.grads, 0, h.n_params * sizeof(float));
    cls_loss_at(enc, &h, &a, &b, fx);
    float *dlast = calloc(NC, sizeof(float));
    xa_head_backward(&h, dlast, 1.0f);
    xa_encoder_backward(enc, &a, &b, NULL, dlast, NULL);
    const float eps = 1e-2f;
    int checked = 0, nonzero = 0;
    for (int i = 0; i < XA_ENC_N_TENSORS + XA_HEAD_N_TENSORS; i++) {
        const int in_head = i >= XA_ENC_N_TENSORS, ti = in_head ? i - XA_ENC_N_TENSORS : i;
        float *t = in_head ? h.t[ti] : enc->t[ti];
        const float *g = in_head ? h.g[ti] : enc->g[ti];
        const size_t n = in_head ? h.numel[ti] : enc->numel[ti];
        if (!t) continue;
        for (int k = 0; k < 3; k++) {
            size_t j = (size_t)(k * 7919 + i * 131) % n;
            if (!in_head && ti == XA_ENC_WTE) j = (size_t)fx->ids[k] * enc->cfg.C + (size_t)k; /* rows in the batch */
            float saved = t[j];
            t[j] = saved + eps;
            double lp = cls_loss_at(enc, &h, &a, &b, fx);
            t[j] = saved - eps;
            double lm = cls_loss_at(enc, &h, &a, &b, fx);
            t[j] = saved;
            double num = (lp - lm) / (2.0 * eps), ana = g[j];
            if (fabs(num - ana) > 2e-3 + 2e-2 * fabs(num))
                fail_msg("%s: %s tensor %d element %zu: finite difference %.6g, backward %.6g", fx->variant,
                         in_head ? "head" : "encoder", ti, j, num, ana);
            checked++;
            nonzero += fabs(ana) > 1e-4;
        }
    }
    assert_true(checked >= 3 * XA_ENC_N_TENSORS);
    assert_true(nonzero >= checked / 2); /* the check is not vacuous */
    enc->cfg.p_hidden = enc->cfg.p_attn = 0.0f;
    free(dlast);
    xa_encoder_acts_free(&a);
    xa_head_free(&h);
}

static void test_bad_batches(void **state) {
    fixture *fx = *state;
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &fx->enc.cfg, fx->B, fx->T, 0), XA_STATUS_OK);
    int32_t ids[64];
    memcpy(ids, fx->ids, sizeof ids);
    ids[3] = fx->enc.cfg.V; /* out of range */
    xa_batch b = {ids, NULL, fx->lens, fx->B, fx->T};
    assert_int_equal(xa_encoder_forward(&fx->enc, &a, &b, NULL, 0, NULL), XA_STATUS_USAGE);
    xt_assert_error_mentions("position 3");
    int32_t lens[8] = {0};
    xa_batch b2 = {fx->ids, NULL, lens, fx->B, fx->T};
    assert_int_equal(xa_encoder_forward(&fx->enc, &a, &b2, NULL, 0, NULL), XA_STATUS_USAGE);
    xa_batch b3 = {fx->ids, NULL, fx->lens, fx->B, fx->T};
    fx->enc.cfg.p_hidden = 0.1f;
    assert_int_equal(xa_encoder_forward(&fx->enc, &a, &b3, NULL, 1, NULL), XA_STATUS_USAGE);
    xt_assert_error_mentions("rng");
    fx->enc.cfg.p_hidden = 0.0f;
    xa_encoder_acts_free(&a);
    /* A config.json that does not match model.safetensors names the tensor and hints. */
    const char *dir = xt_tmp_path("mismatch");
    assert_int_equal(xa_model_save(dir, &fx->enc, NULL, NULL), XA_STATUS_OK);
    xa_hf_config hf = fx->hf;
    hf.intermediate_size *= 2;
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(xa_hf_config_write(&hf, path), XA_STATUS_OK);
    xa_encoder e2;
    assert_int_equal(xa_encoder_load(&e2, NULL, dir, 0), XA_STATUS_SHAPE);
    xt_assert_error_mentions("intermediate.dense.weight");
    xt_assert_error_mentions("wrong base model");
    assert_int_equal(xa_encoder_load(&e2, NULL, xt_tmp_path("no-such-dir"), 0) != XA_STATUS_OK, 1);
    xt_assert_error_mentions("config.json");
}


/* ---- the hook contract --------------------------------------------------------------------------
 * A test hook at the FFN site of the last layer: out = LN_o(h + x + a * h) with a trainable vector a
 * (C), the shape of a scaled adapter. Its gradient is checked by finite differences, and a frozen
 * encoder whose backward stops at that site gives the same gradient as a full backward. */
typedef struct test_hook {
    int layer, C;
    float *a, *da;              /* (C) */
    float *s, *mean, *rstd;     /* saved: (N, C), (N), (N) */
    int lowest;                 /* what lowest_trainable reports */
    int calls_fwd, calls_bwd;
} test_hook;

static int th_forward(void *ctx, xa_hook_site site, int layer, const xa_hook_sublayer *sl) {
    test_hook *th = ctx;
    if (site != XA_HOOK_FFN || layer != th->layer) return 0;
    int N = sl->B * sl->T, C = sl->C;
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)i * C + c;
            th->s[k] = sl->h[k] * (1.0f + th->a[c]) + sl->x[k];
        }
    }
    xa_layernorm_forward(sl->out, th->mean, th->rstd, th->s, sl->ln_w, sl->ln_b, N, C, sl->eps);
    th->calls_fwd++;
    return 1;
}

static void th_backward(void *ctx, xa_hook_site site, int layer, const xa_hook_sublayer *sl,
                        const float *dout, float *dh, float *dx, float *dln_w, float *dln_b) {
    test_hook *th = ctx;
    assert_int_equal(site, XA_HOOK_FFN);
    assert_int_equal(layer, th->layer);
    int N = sl->B * sl->T, C = sl->C;
    float *ds = calloc((size_t)N * C, sizeof(float));
    xa_layernorm_backward(ds, dln_w, dln_b, dout, th->s, sl->ln_w, th->mean, th->rstd, N, C);
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)i * C + c;
            dh[k] += ds[k] * (1.0f + th->a[c]);
            dx[k] += ds[k];
            th->da[c] += ds[k] * sl->h[k];
        }
    }
    free(ds);
    th->calls_bwd++;
}

static int th_lowest(void *ctx) { return ((test_hook *)ctx)->lowest; }

static double hooked_loss(fixture *fx, xa_encoder_acts *a, const xa_batch *b, const xa_hook *hook) {
    assert_int_equal(xa_encoder_forward(&fx->enc, a, b, hook, 1, NULL), XA_STATUS_OK);
    return xa_mlm_head_forward(&fx->mlm, xa_encoder_hidden(&fx->enc, a, fx->enc.cfg.L - 1), fx->rows,
                               fx->targets, fx->m, fx->enc.t[XA_ENC_WTE], hook, NULL);
}

static void test_hook_contract(void **state) {
    fixture *fx = *state;
    xa_encoder *enc = &fx->enc;
    const int C = enc->cfg.C, L = enc->cfg.L;
    const size_t N = (size_t)fx->B * fx->T, NC = N * C;
    test_hook th = {L - 1, C, calloc(C, 4), calloc(C, 4), calloc(NC, 4), calloc(N, 4), calloc(N, 4), 2 * (L - 1) + 1, 0, 0};
    for (int c = 0; c < C; c++) th.a[c] = 0.1f + 0.01f * (float)c;
    xa_hook hook = {.ctx = &th, .sublayer_forward = th_forward, .sublayer_backward = th_backward, .lowest_trainable = th_lowest};
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &enc->cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);

    /* With a = 0 the hook is exactly the plain sub-layer. */
    float *a_saved = calloc(C, 4);
    memcpy(a_saved, th.a, C * sizeof(float));
    memset(th.a, 0, C * sizeof(float));
    double plain = hooked_loss(fx, &a, &b, NULL), zero = hooked_loss(fx, &a, &b, &hook);
    assert_true(fabs(plain - zero) < 1e-6);
    memcpy(th.a, a_saved, C * sizeof(float));

    /* Frozen encoder: backward stops at the hooked site; the hook still gets its gradient. */
    assert_int_equal(xa_encoder_set_trainable(enc, 0), XA_STATUS_OK);
    float *dlast = calloc(NC, sizeof(float));
    hooked_loss(fx, &a, &b, &hook);
    xa_mlm_head_backward(&fx->mlm, dlast, NULL, enc->t[XA_ENC_WTE], &hook, 1.0f);
    xa_encoder_backward(enc, &a, &b, &hook, dlast, NULL);
    assert_int_equal(th.calls_bwd, 1);
    float *da_stop = calloc(C, 4);
    memcpy(da_stop, th.da, C * sizeof(float));

    /* The same gradient from a backward that goes all the way down (demb requested). */
    memset(th.da, 0, C * sizeof(float));
    memset(dlast, 0, NC * sizeof(float));
    float *demb = calloc(NC, sizeof(float));
    hooked_loss(fx, &a, &b, &hook);
    xa_mlm_head_backward(&fx->mlm, dlast, NULL, enc->t[XA_ENC_WTE], &hook, 1.0f);
    xa_encoder_backward(enc, &a, &b, &hook, dlast, demb);
    xt_assert_close("hook gradient, stopped vs full backward", da_stop, th.da, (size_t)C, 1e-7f, 1e-5f);

    /* Finite differences of the hook parameter. */
    const float h = 1e-2f;
    for (int c = 0; c < C; c += 5) {
        float saved = th.a[c];
        th.a[c] = saved + h;
        double lp = hooked_loss(fx, &a, &b, &hook);
        th.a[c] = saved - h;
        double lm = hooked_loss(fx, &a, &b, &hook);
        th.a[c] = saved;
        double num = (lp - lm) / (2.0 * h);
        if (fabs(num - th.da[c]) > 1e-4 + 1e-2 * fabs(num)) {
            fail_msg("%s: hook parameter %d: finite difference %.6g, backward %.6g", fx->variant, c, num, (double)th.da[c]);
        }
    }
    assert_int_equal(xa_encoder_set_trainable(enc, 1), XA_STATUS_OK);
    free(demb);
    free(da_stop);
    free(dlast);
    free(a_saved);
    free(th.a);
    free(th.da);
    free(th.s);
    free(th.mean);
    free(th.rstd);
    xa_encoder_acts_free(&a);
}

/* A Hugging Face file without the "roberta." / "bert." prefix (a bare XLMRobertaModel) loads the
 * same weights. */
static void test_load_without_prefix(void **state) {
    fixture *fx = *state;
    xa_encoder *enc = &fx->enc;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", xt_tmp_path("bare"));
    assert_int_equal(xa_model_save(dir, enc, NULL, NULL), XA_STATUS_OK);
    /* Rewrite model.safetensors with the prefix stripped from every name. */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    size_t n = xa_st_count(f);
    xa_st_entry *e = calloc(n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        const char *dot = strchr(t->name, '.');
        e[i].name = dot + 1;
        e[i].dtype = t->dtype;
        e[i].n_dims = t->n_dims;
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
        e[i].raw = t->data;
    }
    char path2[700];
    snprintf(path2, sizeof path2, "%s/model2.safetensors", dir);
    assert_int_equal(xa_st_write(path2, e, n, NULL, 0), XA_STATUS_OK);
    xa_st_close(f);
    free(e);
    assert_int_equal(rename(path2, path), 0);
    xa_encoder e2;
    assert_int_equal(xa_encoder_load(&e2, NULL, dir, 0), XA_STATUS_OK);
    assert_memory_equal(e2.params, enc->params, enc->n_params * sizeof(float));
    xa_encoder_free(&e2);
}

/* Issue 14: sizes from config.json were narrowed from int64 to int, and B * T (* H) products of
 * user values could wrap; both are errors at the entry points now. */
static void test_size_limits(void **state) {
    fixture *fx = *state;
    const xa_encoder_config *ec = &fx->enc.cfg;
    xa_hf_config hf;
    assert_int_equal(xa_hf_config_default(&hf, "xlm-roberta"), XA_STATUS_OK);
    xa_encoder_config out;
    assert_int_equal(xa_encoder_config_from_hf(&out, &hf, "config.json"), XA_STATUS_OK);
    hf.hidden_size = (int64_t)1 << 32 | 768; /* narrowed to 768 before */
    assert_int_equal(xa_encoder_config_from_hf(&out, &hf, "config.json"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("hidden_size is 4294968064");
    hf.hidden_size = 768;
    hf.vocab_size = -((int64_t)1 << 40);
    assert_int_equal(xa_encoder_config_from_hf(&out, &hf, "config.json"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("vocab_size");
    xa_encoder_config big = *ec;
    big.C = big.FF = 1 << 20; /* V * C and B * T * FF products beyond any real model */
    big.NH = 1;
    assert_int_equal(xa_encoder_config_check(&big, "cfg"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("at most");
    /* B * T = 2^40 wrapped in int: refused before any allocation or product */
    xa_encoder_acts a;
    xa_encoder_config wide = *ec;
    wide.P = 1 << 20;
    assert_int_equal(xa_encoder_acts_init(&a, &wide, 1 << 20, (1 << 20) - 2, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("16777216");
    xa_head h;
    assert_int_equal(xa_head_init(&h, XA_HEAD_TAGGING, ec->C, 3, 0.0f, 1 << 16, 1 << 16, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("16777216");
    assert_int_equal(xa_head_init(&h, XA_HEAD_TAGGING, ec->C, 3, 0.0f, 4, 8, 0), XA_STATUS_OK);
    xa_head_free(&h);
    xa_mlm_head mh;
    assert_int_equal(xa_mlm_head_init(&mh, ec->C, ec->V, 1e-5f, (1 << 24) + 1, 0), XA_STATUS_USAGE);
}

/* ---- class-weighted head loss (tests/data/tensor/class_weights.safetensors, PyTorch's
 * F.cross_entropy(weight=...) on RobertaClassificationHead / a token-classification linear) ---- */

typedef struct whead_ctx {
    xa_head *h;
    const float *hidden;
    const int32_t *labels;
    int B, T;
} whead_ctx;

static double whead_loss(void *p) {
    whead_ctx *c = p;
    return xa_head_forward(c->h, c->hidden, c->labels, c->B, c->T, NULL, 0, NULL);
}

static void weighted_head_case(xa_st_file *st, xa_head_kind kind, const char *tag, int B, int T, int C, int K) {
    char n[64];
    xa_head h;
    assert_int_equal(xa_head_init(&h, kind, C, K, 0.1f, B, T, 1), XA_STATUS_OK);
    const char *cls[4] = {"W1", "b1", "W2", "b2"}, *tg[2] = {"W", "b"};
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        if (!h.t[i]) continue;
        snprintf(n, sizeof n, "%s.%s", tag, kind == XA_HEAD_CLASSIFICATION ? cls[i] : tg[i]);
        xt_gold_f32(st, n, h.t[i], h.numel[i]);
    }
    snprintf(n, sizeof n, "%s.hidden", tag);
    float *hidden = xt_read_f32(st, n, NULL);
    snprintf(n, sizeof n, "%s.weights", tag);
    float *w = xt_read_f32(st, n, NULL);
    snprintf(n, sizeof n, "%s.labels", tag);
    const xa_st_tensor *lt = xa_st_find(st, n);
    assert_non_null(lt);
    const int32_t *labels = lt->data;
    assert_int_equal(xa_head_set_class_weights(&h, w), XA_STATUS_OK);
    float loss = xa_head_forward(&h, hidden, labels, B, T, NULL, 0, NULL);
    snprintf(n, sizeof n, "%s.loss", tag);
    float *ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, &loss, ref, 1, 1e-6f, 1e-5f);
    free(ref);
    const size_t NC = (size_t)B * T * C;
    float *dh = xt_fzeros(NC);
    xa_head_backward(&h, dh, 1.0f);
    snprintf(n, sizeof n, "%s.dhidden", tag);
    ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, dh, ref, NC, 1e-6f, 1e-4f);
    free(ref);
    const char *dcls[4] = {"dW1", "db1", "dW2", "db2"}, *dtg[2] = {"dW", "db"};
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        if (!h.g[i]) continue;
        snprintf(n, sizeof n, "%s.%s", tag, kind == XA_HEAD_CLASSIFICATION ? dcls[i] : dtg[i]);
        ref = xt_read_f32(st, n, NULL);
        xt_assert_close(n, h.g[i], ref, h.numel[i], 1e-6f, 1e-4f);
        free(ref);
    }
    /* the weighted loss's gradient w.r.t. the hidden states by central differences */
    whead_ctx c = {&h, hidden, labels, B, T};
    snprintf(n, sizeof n, "%s weighted loss dhidden vs FD", tag);
    xt_check_fd(n, whead_loss, &c, hidden, dh, NC, 1e-2f, 2e-4f, 1e-2f);
    /* clearing the weights gives the plain mean again (bit for bit the unweighted kernel) */
    assert_int_equal(xa_head_set_class_weights(&h, NULL), XA_STATUS_OK);
    assert_null(h.class_w);
    float plain = xa_head_forward(&h, hidden, labels, B, T, NULL, 0, NULL);
    float *lg = xt_fzeros((size_t)B * T * K);
    xa_head_forward(&h, hidden, NULL, B, T, lg, 0, NULL);
    int32_t lab[16];
    for (int i = 0; i < (kind == XA_HEAD_CLASSIFICATION ? B : B * T); i++) lab[i] = labels[i];
    float want = xa_cross_entropy_fused(NULL, NULL, lg, lab, kind == XA_HEAD_CLASSIFICATION ? B : B * T, K, XA_IGNORE_INDEX);
    assert_true(plain == want);
    assert_true(fabsf(plain - loss) > 1e-3f); /* the weights changed the loss */
    free(hidden);
    free(w);
    xa_head_free(&h);
}

static void test_weighted_heads(void **state) {
    (void)state;
    xa_st_file *st = xt_open_golden("tensor/class_weights.safetensors");
    assert_non_null(st);
    weighted_head_case(st, XA_HEAD_CLASSIFICATION, "cls", 6, 3, 8, 4);
    weighted_head_case(st, XA_HEAD_TAGGING, "tag", 2, 5, 6, 3);

    /* scikit-learn's "balanced": numpy's n / (n_classes * bincount) over the present classes */
    const xa_st_tensor *bl = xa_st_find(st, "bal.labels");
    assert_non_null(bl);
    float *want = xt_read_f32(st, "bal.weights", NULL), got[6];
    assert_int_equal(xa_class_weights_balanced(got, bl->data, (size_t)bl->n_elems, 6), 5);
    xt_assert_close("balanced class weights vs numpy", got, want, 6, 0.0f, 1e-6f);
    assert_true(got[4] == 0.0f); /* absent class */
    free(want);

    /* bad weights: USAGE, the head left unweighted */
    xa_head h;
    assert_int_equal(xa_head_init(&h, XA_HEAD_CLASSIFICATION, 4, 3, 0.0f, 2, 2, 0), XA_STATUS_OK);
    const float neg[3] = {1, -1, 1}, zero[3] = {0, 0, 0}, nan3[3] = {1, NAN, 1};
    assert_int_equal(xa_head_set_class_weights(&h, neg), XA_STATUS_USAGE);
    xt_assert_error_mentions(">= 0");
    assert_int_equal(xa_head_set_class_weights(&h, zero), XA_STATUS_USAGE);
    assert_int_equal(xa_head_set_class_weights(&h, nan3), XA_STATUS_USAGE);
    assert_null(h.class_w);
    xa_head_free(&h);
    xa_st_close(st);
}

/* ---- multiple-choice head (tests/data/tensor/task_heads.safetensors: AdapterHub's
 * MultipleChoiceHead written in PyTorch, evaluation mode) ------------------------------------- */

static void mc_head_case(xa_st_file *st, const char *tag, int G, int N, int T, int C) {
    char n[64];
    xa_head h;
    const int B = G * N;
    assert_int_equal(xa_head_init(&h, XA_HEAD_MULTIPLE_CHOICE, C, N, 0.1f, B, T, 1), XA_STATUS_OK);
    assert_int_equal((int)h.numel[XA_HEAD_W2], C); /* one score per row */
    assert_int_equal((int)h.numel[XA_HEAD_B2], 1);
    assert_int_equal(xa_head_module_index(&h, XA_HEAD_W2), 4);
    const char *names[4] = {"W1", "b1", "W2", "b2"}, *dn[4] = {"dW1", "db1", "dW2", "db2"};
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        snprintf(n, sizeof n, "%s.%s", tag, names[i]);
        xt_gold_f32(st, n, h.t[i], h.numel[i]);
    }
    snprintf(n, sizeof n, "%s.hidden", tag);
    float *hidden = xt_read_f32(st, n, NULL);
    snprintf(n, sizeof n, "%s.labels", tag);
    const xa_st_tensor *lt = xa_st_find(st, n);
    assert_non_null(lt);
    int32_t labels[16];
    for (int g = 0; g < G; g++) labels[g] = ((const int32_t *)lt->data)[g];
    float *lg = xt_fzeros((size_t)G * N);
    const float loss = xa_head_forward(&h, hidden, labels, B, T, lg, 0, NULL);
    snprintf(n, sizeof n, "%s.logits", tag);
    float *ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, lg, ref, (size_t)G * N, 1e-6f, 1e-5f);
    free(ref);
    snprintf(n, sizeof n, "%s.loss", tag);
    ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, &loss, ref, 1, 1e-6f, 1e-5f);
    free(ref);
    const size_t NC = (size_t)B * T * C;
    float *dh = xt_fzeros(NC);
    xa_head_backward(&h, dh, 1.0f);
    snprintf(n, sizeof n, "%s.dhidden", tag);
    ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, dh, ref, NC, 1e-6f, 1e-4f);
    free(ref);
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        snprintf(n, sizeof n, "%s.%s", tag, dn[i]);
        ref = xt_read_f32(st, n, NULL);
        xt_assert_close(n, h.g[i], ref, h.numel[i], 1e-6f, 1e-4f);
        free(ref);
    }
    /* central differences: the hidden states and every head tensor */
    whead_ctx c = {&h, hidden, labels, B, T};
    snprintf(n, sizeof n, "%s multiple-choice dhidden vs FD", tag);
    xt_check_fd(n, whead_loss, &c, hidden, dh, NC, 1e-2f, 2e-4f, 1e-2f);
    float *g[XA_HEAD_N_TENSORS];
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        g[i] = xt_fzeros(h.numel[i]);
        memcpy(g[i], h.g[i], h.numel[i] * sizeof(float));
    }
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        snprintf(n, sizeof n, "%s multiple-choice %s vs FD", tag, dn[i]);
        xt_check_fd(n, whead_loss, &c, h.t[i], g[i], h.numel[i], 1e-2f, 2e-4f, 1e-2f);
    }
    free(hidden); /* xt_fzeros buffers are freed by xt_teardown */
    xa_head_free(&h);
}

static void test_multiple_choice_head(void **state) {
    (void)state;
    xa_st_file *st = xt_open_golden("tensor/task_heads.safetensors");
    assert_non_null(st);
    mc_head_case(st, "mc", 3, 4, 5, 8);
    mc_head_case(st, "mc2", 4, 2, 3, 6);
    xa_st_close(st);
}

/* ---- question-answering head (tests/data/tensor/qa_head.safetensors: AdapterHub's
 * QuestionAnsweringHead written in PyTorch, evaluation mode) --------------------------------- */

typedef struct qhead_ctx {
    xa_head *h;
    const float *hidden;
    const int32_t *labels, *lens;
    int B, T;
} qhead_ctx;

static double qhead_loss(void *p) {
    qhead_ctx *c = p;
    return xa_head_forward_qa(c->h, c->hidden, c->labels, c->lens, c->B, c->T, NULL, 0, NULL);
}

static void qa_head_case(xa_st_file *st, const char *tag, int B, int T, int C, int with_lens) {
    char n[64];
    xa_head h;
    assert_int_equal(xa_head_init(&h, XA_HEAD_QUESTION_ANSWERING, C, 2, 0.1f, B, T, 1), XA_STATUS_OK);
    assert_int_equal((int)h.numel[XA_HEAD_W1], 2 * C);
    assert_null(h.t[XA_HEAD_W2]);
    assert_int_equal(xa_head_module_index(&h, XA_HEAD_W1), 1);
    snprintf(n, sizeof n, "%s.W", tag);
    xt_gold_f32(st, n, h.t[XA_HEAD_W1], h.numel[XA_HEAD_W1]);
    snprintf(n, sizeof n, "%s.b", tag);
    xt_gold_f32(st, n, h.t[XA_HEAD_B1], h.numel[XA_HEAD_B1]);
    snprintf(n, sizeof n, "%s.hidden", tag);
    float *hidden = xt_read_f32(st, n, NULL);
    int32_t labels[32], lens[16];
    snprintf(n, sizeof n, "%s.labels", tag);
    const xa_st_tensor *lt = xa_st_find(st, n);
    assert_non_null(lt);
    memcpy(labels, lt->data, (size_t)B * 2 * sizeof(int32_t));
    if (with_lens) {
        snprintf(n, sizeof n, "%s.lens", tag);
        lt = xa_st_find(st, n);
        assert_non_null(lt);
        memcpy(lens, lt->data, (size_t)B * sizeof(int32_t));
    }
    const int32_t *lp = with_lens ? lens : NULL;
    float *lg = xt_fzeros((size_t)B * T * 2);
    const float loss = xa_head_forward_qa(&h, hidden, labels, lp, B, T, lg, 0, NULL);
    snprintf(n, sizeof n, "%s.logits", tag);
    float *ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, lg, ref, (size_t)B * T * 2, 1e-6f, 1e-5f);
    free(ref);
    snprintf(n, sizeof n, "%s.loss", tag);
    ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, &loss, ref, 1, 1e-6f, 1e-5f);
    free(ref);
    if (!with_lens) { /* xa_head_forward on a QA head: every position */
        const float l2 = xa_head_forward(&h, hidden, labels, B, T, NULL, 0, NULL);
        assert_true(l2 == loss);
        xa_head_forward_qa(&h, hidden, labels, lp, B, T, NULL, 0, NULL);
    }
    const size_t NC = (size_t)B * T * C;
    float *dh = xt_fzeros(NC);
    xa_head_backward(&h, dh, 1.0f);
    snprintf(n, sizeof n, "%s.dhidden", tag);
    ref = xt_read_f32(st, n, NULL);
    xt_assert_close(n, dh, ref, NC, 1e-6f, 1e-4f);
    free(ref);
    const char *dn[2] = {"dW", "db"};
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "%s.%s", tag, dn[i]);
        ref = xt_read_f32(st, n, NULL);
        xt_assert_close(n, h.g[i], ref, h.numel[i], 1e-6f, 1e-4f);
        free(ref);
    }
    /* central differences: the hidden states and both head tensors */
    qhead_ctx c = {&h, hidden, labels, lp, B, T};
    snprintf(n, sizeof n, "%s qa dhidden vs FD", tag);
    xt_check_fd(n, qhead_loss, &c, hidden, dh, NC, 1e-2f, 2e-4f, 1e-2f);
    float *g[2];
    for (int i = 0; i < 2; i++) g[i] = xt_fcopy(h.g[i], h.numel[i]);
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "%s qa %s vs FD", tag, dn[i]);
        xt_check_fd(n, qhead_loss, &c, h.t[i], g[i], h.numel[i], 1e-2f, 2e-4f, 1e-2f);
    }
    /* without labels: no loss; K other than 2 is refused */
    assert_true(xa_head_forward_qa(&h, hidden, NULL, lp, B, T, NULL, 0, NULL) == 0.0f);
    free(hidden);
    xa_head_free(&h);
    xa_head h3;
    assert_int_equal(xa_head_init(&h3, XA_HEAD_QUESTION_ANSWERING, C, 3, 0.1f, B, T, 1), XA_STATUS_USAGE);
}

static void test_question_answering_head(void **state) {
    (void)state;
    xa_st_file *st = xt_open_golden("tensor/qa_head.safetensors");
    assert_non_null(st);
    qa_head_case(st, "qa", 3, 6, 8, 0);
    qa_head_case(st, "qa2", 4, 5, 6, 1);
    xa_st_close(st);
}


/* The MLM head planned for fewer rows than a batch masks (M = 1): xa_mlm_head_reserve re-plans it,
 * and its logits, loss and every gradient are then the bits of a head planned for 64 rows; the
 * rows bound sits six standard deviations above the masked-row mean, below B*T (XLM-R base's
 * 16 x 256 batch: under 800 of 4096 rows), and no simulated 15% batch of 4096 positions passes it. */
static void test_mlm_head_masked_rows(void **state) {
    fixture *fx = *state;
    xa_encoder *enc = &fx->enc;
    const int C = enc->cfg.C, V = enc->cfg.V;
    const size_t NC = (size_t)fx->B * fx->T * C;
    assert_true(fx->m > 1);
    xa_mlm_head small;
    assert_int_equal(xa_mlm_head_init(&small, C, V, enc->cfg.eps, 1, 1), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_load(&small, enc->cfg.arch, xt_data_path(fx->variant[0] == 'x' ? "encoder/xlmr" : "encoder/bert")),
                     XA_STATUS_OK);
    assert_int_equal(small.M, 1);
    const size_t bytes_1 = small.arena.size;
    assert_int_equal(xa_mlm_head_reserve(&small, fx->m - 1), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_reserve(&small, fx->m), XA_STATUS_OK);
    assert_true(small.M >= fx->m);
    assert_true(small.arena.size > bytes_1);
    assert_int_equal(xa_mlm_head_reserve(&small, 2), XA_STATUS_OK); /* never shrinks */
    assert_true(small.M >= fx->m);
    assert_int_equal(xa_mlm_head_reserve(&small, XA_MAX_BATCH_TOKENS + 1), XA_STATUS_USAGE);
    xa_error_clear();
    assert_true(small.M >= fx->m);

    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &enc->cfg, fx->B, fx->T, 1), XA_STATUS_OK);
    xa_batch b = make_batch(fx);
    assert_int_equal(xa_encoder_forward(enc, &a, &b, NULL, 1, NULL), XA_STATUS_OK);
    const float *h = xa_encoder_hidden(enc, &a, enc->cfg.L - 1);
    float *l1 = malloc((size_t)fx->m * V * sizeof(float)), *l2 = malloc((size_t)fx->m * V * sizeof(float));
    float *d1 = calloc(NC, sizeof(float)), *d2 = calloc(NC, sizeof(float));
    float *dw1 = calloc(enc->numel[XA_ENC_WTE], sizeof(float)), *dw2 = calloc(enc->numel[XA_ENC_WTE], sizeof(float));
    memset(fx->mlm.grads, 0, fx->mlm.n_params * sizeof(float));
    const float loss1 = xa_mlm_head_forward(&fx->mlm, h, fx->rows, fx->targets, fx->m, enc->t[XA_ENC_WTE], NULL, l1);
    xa_mlm_head_backward(&fx->mlm, d1, dw1, enc->t[XA_ENC_WTE], NULL, 1.0f);
    const float loss2 = xa_mlm_head_forward(&small, h, fx->rows, fx->targets, fx->m, enc->t[XA_ENC_WTE], NULL, l2);
    xa_mlm_head_backward(&small, d2, dw2, enc->t[XA_ENC_WTE], NULL, 1.0f);
    assert_memory_equal(&loss1, &loss2, sizeof loss1);
    assert_memory_equal(l1, l2, (size_t)fx->m * V * sizeof(float));
    assert_memory_equal(d1, d2, NC * sizeof(float));
    assert_memory_equal(dw1, dw2, enc->numel[XA_ENC_WTE] * sizeof(float));
    assert_memory_equal(fx->mlm.grads, small.grads, small.n_params * sizeof(float));
    float *ref = xt_read_f32(fx->gold, "mlm_logits_masked", NULL);
    xt_assert_close("mlm logits (re-planned head)", l2, ref, (size_t)fx->m * V, ATOL_FWD, RTOL_FWD);
    free(ref);
    free(l1);
    free(l2);
    free(d1);
    free(d2);
    free(dw1);
    free(dw2);
    xa_encoder_acts_free(&a);
    xa_mlm_head_free(&small);

    /* the bound */
    const int64_t N = 16 * 256;
    const int bound = xa_mlm_rows_bound(N, 0.15);
    const double mean = 0.15 * N, sd = sqrt(N * 0.15 * 0.85);
    print_message("masked rows planned for 16 x 256 at 15%%: %d of %lld (mean %.0f, sd %.1f)\n", bound, (long long)N, mean, sd);
    assert_true(bound >= mean + 6 * sd && bound < 800);
    assert_int_equal(xa_mlm_rows_bound(10, 0.15), 10); /* small batches: every position */
    assert_int_equal(xa_mlm_rows_bound(100, 1.0), 100);
    assert_int_equal(xa_mlm_rows_bound(100, 0.0), 1);
    assert_int_equal(xa_mlm_rows_bound(0, 0.15), 1);
    xa_rng rng;
    xa_rng_seed(&rng, 11, 0);
    int worst = 0;
    for (int k = 0; k < 300; k++) {
        int m = 0;
        for (int64_t i = 0; i < N; i++) m += xa_rng_uniform(&rng) < 0.15f;
        if (m > worst) worst = m;
    }
    assert_true(worst < bound);
}

#define GROUP(name, setup)                                                                         \
    const struct CMUnitTest name[] = {                                                             \
        cmocka_unit_test(test_forward_hidden_states),                                             \
        cmocka_unit_test(test_mlm_loss_logits_and_grads),                                         \
        cmocka_unit_test(test_mlm_head_masked_rows),                                              \
        cmocka_unit_test(test_classification_head),                                               \
        cmocka_unit_test(test_tagging_head),                                                      \
        cmocka_unit_test(test_save_load_bit_identical),                                           \
        cmocka_unit_test(test_finite_differences_with_dropout),                                   \
        cmocka_unit_test(test_finite_differences_cls_full),                                       \
        cmocka_unit_test(test_bad_batches),                                                       \
        cmocka_unit_test(test_hook_contract),                                                     \
        cmocka_unit_test(test_load_without_prefix),                                               \
        cmocka_unit_test(test_size_limits),                                                       \
    }

int main(void) {
    GROUP(xlmr_tests, setup_xlmr);
    GROUP(bert_tests, setup_bert);
    const struct CMUnitTest head_tests[] = {cmocka_unit_test_teardown(test_weighted_heads, xt_teardown),
                                            cmocka_unit_test_teardown(test_multiple_choice_head, xt_teardown),
                                            cmocka_unit_test_teardown(test_question_answering_head, xt_teardown)};
    int fails = cmocka_run_group_tests_name("heads-class-weights", head_tests, NULL, NULL);
    fails += cmocka_run_group_tests_name("model-xlmr", xlmr_tests, setup_xlmr, teardown);
    fails += cmocka_run_group_tests_name("model-bert", bert_tests, setup_bert, teardown);
    return fails;
}
