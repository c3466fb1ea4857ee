/* Tests of activation recomputation (model.h XA_ACTS_RECOMPUTE, compose.h XA_COMPOSE_RECOMPUTE,
 * the recipe key gradient_checkpointing): it must change nothing but memory. Every check here is
 * exact (memcmp), with dropout ON everywhere (the encoder's hidden and attention dropout, the
 * adapters' and the fusion's), because the recomputed forward replays the generator from its
 * per-layer states and so redraws the same masks:
 *  - the encoder with and without a hook (plain, Stack(lang, task) with the invertible adapter,
 *    Fuse(lang, task), a double_seq_bn adapter at both sites with the encoder training too,
 *    AdapterDrop skipping layer 0): two steps of forward, backward and an SGD update give the same
 *    parameters and gradients bit for bit, and leave the generator in the same state;
 *  - the training phases (pretraining: every weight trains; a seq_bn_inv language adapter; a task
 *    adapter on Stack(en, pkg) with its head; full fine-tuning; a fusion layer on
 *    Stack(Fuse(en, de), pkg)) end with byte-identical weight
 *    files and the same logged losses, and train.log says which mode ran;
 *  - the key is no part of the checkpoint identity: a run resumed with it switched off ends with
 *    the bytes of an uninterrupted run;
 *  - the memory accounting: at XLM-R base's shape (B 16, T 256) the recomputation activations are
 *    under a fifth of the kept ones (xa_encoder_acts_bytes, deterministic), and a language
 *    adapter's composer plan under a quarter (xa_composer_plan_bytes).
 * The finite-difference checks of the backward itself are test_model.c's and test_compose.c's. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "io/file.h"
#include "model/model.h"
#include "train/train.h"

/* ---- the encoder and the composer ------------------------------------------------------------- */

enum { E_B = 3, E_T = 9, E_STEPS = 2 };

typedef struct run_out {
    float *params;     /* every trainable parameter after E_STEPS steps, concatenated */
    float *grads;      /* the last step's gradients, same order */
    size_t n;
    float *hidden;     /* (B, T, C) the last forward's output */
    xa_rng rng_end;    /* the generator after the last backward */
} run_out;

static void append(run_out *o, const float *p, const float *g, size_t n) {
    o->params = realloc(o->params, (o->n + n) * sizeof(float));
    o->grads = realloc(o->grads, (o->n + n) * sizeof(float));
    assert_non_null(o->params);
    assert_non_null(o->grads);
    memcpy(o->params + o->n, p, n * sizeof(float));
    memcpy(o->grads + o->n, g, n * sizeof(float));
    o->n += n;
}

static void sgd(float *p, const float *g, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] -= 0.05f * g[i];
}

/* E_STEPS training steps on a tiny encoder: setup NULL = no hook; train_base: the encoder trains.
 * The loss is sum(proj * hidden) over the real tokens, so dlast = proj there. */
/* recompute: 0 every layer's activations kept, 1 recomputed (encoder and composer), 2 the mismatch
 * the encoder refuses (a composer planned for recomputation under activations that keep every
 * layer: its shared regions would hand backward another layer's state); out->n = 0 then. */
static void run_steps(const char *setup, int train_base, int skip, int recompute, run_out *out) {
    xa_encoder_config cfg;
    assert_int_equal(xa_encoder_preset(&cfg, "tiny"), XA_STATUS_OK);
    cfg.L = 3;
    cfg.C = 16;
    cfg.NH = 2;
    cfg.FF = 32;
    cfg.V = 64;
    cfg.P = 40;
    xa_encoder enc;
    assert_int_equal(xa_encoder_init(&enc, &cfg, train_base), XA_STATUS_OK);
    xa_rng rng;
    xa_rng_seed(&rng, 42, 3);
    xa_encoder_init_weights(&enc, &rng, 0.2f);
    xa_composer *cp = NULL;
    xa_hook hook;
    memset(&hook, 0, sizeof hook);
    xa_adapter *ad[3] = {NULL, NULL, NULL};
    xa_fusion_layer *fu = NULL;
    const int fuse = setup && strstr(setup, "Fuse") != NULL;
    if (setup) {
        assert_int_equal(xa_composer_init(&cp, &cfg), XA_STATUS_OK);
        xa_bn_config lang, task, both;
        assert_int_equal(xa_bn_config_preset(&lang, "seq_bn_inv"), XA_STATUS_OK);
        assert_int_equal(xa_bn_config_preset(&task, "seq_bn"), XA_STATUS_OK);
        assert_int_equal(xa_bn_config_preset(&both, "double_seq_bn"), XA_STATUS_OK);
        lang.dropout = task.dropout = both.dropout = 0.2;
        lang.reduction_factor = 2;
        task.reduction_factor = 4;
        both.reduction_factor = 4;
        assert_int_equal(xa_composer_add_adapter(cp, "lang", &lang, !fuse, &ad[0]), XA_STATUS_OK);
        assert_int_equal(xa_composer_add_adapter(cp, "task", &task, !fuse, &ad[1]), XA_STATUS_OK);
        assert_int_equal(xa_composer_add_adapter(cp, "a", &both, !fuse, &ad[2]), XA_STATUS_OK);
        for (int i = 0; i < 3; i++) {
            xa_adapter_init_weights(ad[i], &rng);
            /* non-zero up-projections, so that every adapter changes its sub-layer */
            xa_rng_fill_normal(&rng, ad[i]->params, ad[i]->n_params, 0.0f, 0.2f);
        }
        if (fuse) {
            xa_fusion_config fc;
            assert_int_equal(xa_fusion_config_preset(&fc, "dynamic"), XA_STATUS_OK);
            fc.dropout_prob = 0.2;
            const char *names[2] = {"lang", "task"};
            assert_int_equal(xa_composer_add_fusion(cp, NULL, names, 2, &fc, 1, &fu), XA_STATUS_OK);
            xa_fusion_layer_init_weights(fu, &rng);
            xa_rng_fill_normal(&rng, fu->params, fu->n_params, 0.0f, 0.2f);
        }
        xa_setup *s = NULL;
        assert_int_equal(xa_setup_parse(&s, setup, "test"), XA_STATUS_OK);
        assert_int_equal(xa_composer_activate(cp, s, "test"), XA_STATUS_OK);
        xa_setup_free(s);
        assert_int_equal(xa_composer_plan(cp, E_B, E_T, 0, recompute ? XA_COMPOSE_RECOMPUTE : 1), XA_STATUS_OK);
        xa_composer_hook(cp, &hook);
        if (skip) xa_composer_skip_lowest(cp, skip);
    }
    xa_encoder_acts acts;
    assert_int_equal(xa_encoder_acts_init(&acts, &cfg, E_B, E_T, recompute == 1 ? XA_ACTS_RECOMPUTE : XA_ACTS_TRAIN),
                     XA_STATUS_OK);
    int32_t ids[E_B * E_T], lens[E_B] = {E_T, 5, 7};
    for (int i = 0; i < E_B * E_T; i++) ids[i] = (int32_t)(3 + xa_rng_below(&rng, 60));
    const size_t NC = (size_t)E_B * E_T * cfg.C;
    float *proj = calloc(NC, sizeof(float)), *dlast = calloc(NC, sizeof(float));
    assert_true(proj && dlast);
    xa_rng_fill_normal(&rng, proj, NC, 0.0f, 1.0f);
    xa_batch b = {ids, NULL, lens, E_B, E_T};
    xa_rng drop;
    xa_rng_seed(&drop, 7, 1);
    for (int step = 0; step < E_STEPS && recompute == 2; step++) {
        xa_composer_set_mode(cp, 1, &drop);
        assert_int_equal(xa_encoder_forward(&enc, &acts, &b, &hook, 1, &drop), XA_STATUS_USAGE);
        assert_non_null(strstr(xa_error_last()->what, "planned for recomputation"));
        xa_error_clear();
        /* an inference forward through it is not refused (it keeps no state for backward) */
        xa_composer_set_mode(cp, 0, NULL);
        assert_int_equal(xa_encoder_forward(&enc, &acts, &b, &hook, 0, NULL), XA_STATUS_OK);
        memset(out, 0, sizeof *out);
        free(proj);
        free(dlast);
        xa_encoder_acts_free(&acts);
        xa_composer_free(cp);
        xa_encoder_free(&enc);
        return;
    }
    for (int step = 0; step < E_STEPS; step++) {
        if (train_base) memset(enc.grads, 0, enc.n_params * sizeof(float));
        if (cp) {
            xa_composer_zero_grad(cp);
            xa_composer_set_mode(cp, 1, &drop);
        }
        assert_int_equal(xa_encoder_forward(&enc, &acts, &b, cp ? &hook : NULL, 1, &drop), XA_STATUS_OK);
        memset(dlast, 0, NC * sizeof(float));
        for (int r = 0; r < E_B; r++)
            memcpy(dlast + (size_t)r * E_T * cfg.C, proj + (size_t)r * E_T * cfg.C, (size_t)lens[r] * cfg.C * sizeof(float));
        xa_rng_u32(&drop); /* a draw between forward and backward (a head's dropout) */
        xa_encoder_backward(&enc, &acts, &b, cp ? &hook : NULL, dlast, NULL);
        if (train_base) sgd(enc.params, enc.grads, enc.n_params);
        for (int i = 0; i < 3 && cp && !fuse; i++) sgd(ad[i]->params, ad[i]->grads, ad[i]->n_params);
        if (fu) sgd(fu->params, fu->grads, fu->n_params);
    }
    memset(out, 0, sizeof *out);
    if (train_base) append(out, enc.params, enc.grads, enc.n_params);
    for (int i = 0; i < 3 && cp && !fuse; i++) append(out, ad[i]->params, ad[i]->grads, ad[i]->n_params);
    if (fu) append(out, fu->params, fu->grads, fu->n_params);
    out->hidden = calloc(NC, sizeof(float));
    assert_non_null(out->hidden);
    memcpy(out->hidden, xa_encoder_hidden(&enc, &acts, cfg.L - 1), NC * sizeof(float));
    out->rng_end = drop;
    free(proj);
    free(dlast);
    xa_encoder_acts_free(&acts);
    xa_composer_free(cp);
    xa_encoder_free(&enc);
}

static void assert_same_run(const char *what, const char *setup, int train_base, int skip) {
    run_out a, b;
    run_steps(setup, train_base, skip, 0, &a);
    run_steps(setup, train_base, skip, 1, &b);
    assert_true(a.n > 0);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        if (memcmp(&a.params[i], &b.params[i], sizeof(float)) || memcmp(&a.grads[i], &b.grads[i], sizeof(float)))
            fail_msg("%s: parameter %zu of %zu: %.9g (gradient %.9g) kept, %.9g (%.9g) recomputed", what, i, a.n,
                     (double)a.params[i], (double)a.grads[i], (double)b.params[i], (double)b.grads[i]);
    }
    const size_t NC = (size_t)E_B * E_T * 16;
    if (memcmp(a.hidden, b.hidden, NC * sizeof(float))) fail_msg("%s: last hidden states differ", what);
    if (a.rng_end.state != b.rng_end.state || a.rng_end.inc != b.rng_end.inc)
        fail_msg("%s: the generator ends in another state", what);
    /* the gradients are not all zero: the comparison compares something */
    size_t nz = 0;
    for (size_t i = 0; i < a.n; i++) nz += a.grads[i] != 0.0f;
    if (nz < a.n / 4) fail_msg("%s: only %zu of %zu gradients are non-zero", what, nz, a.n);
    print_message("  %s: %zu parameters identical after %d steps\n", what, a.n, E_STEPS);
    free(a.params);
    free(a.grads);
    free(a.hidden);
    free(b.params);
    free(b.grads);
    free(b.hidden);
}

static void test_encoder_recompute(void **state) {
    (void)state;
    assert_same_run("plain encoder (every weight trains)", NULL, 1, 0);
    assert_same_run("Stack(lang, task), invertible adapter", "Stack(lang, task)", 0, 0);
    assert_same_run("Fuse(lang, task), the fusion trains", "Fuse(lang, task)", 0, 0);
    assert_same_run("double_seq_bn at both sites, encoder trains", "a", 1, 0);
    assert_same_run("Stack(lang, task) with layer 0 dropped", "Stack(lang, task)", 0, 1);
    run_out m;
    run_steps("Stack(lang, task)", 0, 0, 2, &m); /* refused, not trained on the wrong layer's state */
    assert_int_equal(m.n, 0);
}

static void test_memory_accounting(void **state) {
    (void)state;
    xa_encoder_config c;
    assert_int_equal(xa_encoder_preset(&c, "xlmr-base"), XA_STATUS_OK);
    const size_t keep = xa_encoder_acts_bytes(&c, 16, 256, XA_ACTS_TRAIN);
    const size_t rec = xa_encoder_acts_bytes(&c, 16, 256, XA_ACTS_RECOMPUTE);
    const size_t inf = xa_encoder_acts_bytes(&c, 16, 256, XA_ACTS_INFER);
    print_message("  xlmr-base B 16 T 256: %.0f MiB kept, %.0f MiB recomputed, %.0f MiB inference\n",
                  keep / 1048576.0, rec / 1048576.0, inf / 1048576.0);
    assert_true(rec * 5 < keep);
    assert_true(rec > inf); /* plus the backward scratch */
    /* the composer of a seq_bn_inv language adapter on base's 12 layers: one layer's regions */
    assert_int_equal(xa_encoder_preset(&c, "base"), XA_STATUS_OK);
    size_t plan[2];
    for (int i = 0; i < 2; i++) {
        xa_composer *cp = NULL;
        assert_int_equal(xa_composer_init(&cp, &c), XA_STATUS_OK);
        xa_bn_config lang;
        assert_int_equal(xa_bn_config_preset(&lang, "seq_bn_inv"), XA_STATUS_OK);
        lang.reduction_factor = 2;
        assert_int_equal(xa_composer_add_adapter(cp, "lang", &lang, 1, NULL), XA_STATUS_OK);
        xa_setup *s = xa_setup_single("lang");
        assert_non_null(s);
        assert_int_equal(xa_composer_activate(cp, s, "test"), XA_STATUS_OK);
        xa_setup_free(s);
        assert_int_equal(xa_composer_plan(cp, 4, 32, 20, i ? XA_COMPOSE_RECOMPUTE : 1), XA_STATUS_OK);
        plan[i] = xa_composer_plan_bytes(cp);
        xa_composer_free(cp);
    }
    print_message("  base, seq_bn_inv, B 4 T 32: composer plan %.2f MiB kept, %.2f MiB recomputed\n",
                  plan[0] / 1048576.0, plan[1] / 1048576.0);
    assert_true(plan[1] * 4 < plan[0]);
    xa_encoder_acts a;
    assert_int_equal(xa_encoder_acts_init(&a, &c, 2, 8, 3), XA_STATUS_USAGE);
    xt_assert_error_mentions("XA_ACTS_RECOMPUTE");
    xa_error_clear();
}

/* ---- the training phases ---------------------------------------------------------------------- */

static FILE *g_quiet;

static void assert_same_bytes(const char *dir_a, const char *dir_b, const char *name) {
    char pa[8400], pb[8400];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    size_t na = 0, nb = 0;
    char *a = xt_read_file(pa, &na), *b = xt_read_file(pb, &nb);
    if (!a || !b) fail_msg("missing %s or %s", pa, pb);
    assert_int_equal(na, nb);
    if (memcmp(a, b, na)) fail_msg("%s and %s differ", pa, pb);
    print_message("  %s: the same %zu bytes\n", name, na);
    free(a);
    free(b);
}

/* The "loss" fields of the train rows of two metrics.jsonl files: the same text. */
static void assert_same_losses(const char *dir_a, const char *dir_b) {
    char pa[8400], pb[8400];
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", dir_a);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", dir_b);
    char *a = xt_read_file(pa, NULL), *b = xt_read_file(pb, NULL);
    assert_non_null(a);
    assert_non_null(b);
    int n = 0;
    const char *pat = "\"loss\": ";
    for (const char *x = strstr(a, pat), *y = strstr(b, pat); x || y; x = strstr(x + 1, pat), y = strstr(y + 1, pat), n++) {
        if (!x || !y) fail_msg("%s and %s log another number of losses", pa, pb);
        const size_t lx = strcspn(x, ",}"), ly = strcspn(y, ",}");
        if (lx != ly || memcmp(x, y, lx)) fail_msg("loss %d: %.*s against %.*s", n, (int)lx, x, (int)ly, y);
    }
    assert_true(n > 0);
    free(a);
    free(b);
}

/* train.log says whether recomputation was on */
static void assert_logged(const char *dir, int on) {
    char p[8400];
    snprintf(p, sizeof p, "%s/train.log", dir);
    char *text = xt_read_file(p, NULL);
    assert_non_null(text);
    if (!!strstr(text, "gradient checkpointing") != on)
        fail_msg("%s %s the gradient checkpointing line", p, on ? "lacks" : "has");
    free(text);
}

static char g_base[4096], g_tok[4200], g_lang[4096], g_lang_de[4096], g_task[4200], g_tsv[4200];

static void test_pretrain_recompute(void **state) {
    (void)state;
    char dir[2][4096];
    for (int i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof dir[i], "%s", xt_tmp_path(i ? "rc-pt-on" : "rc-pt-off"));
        xa_file_remove_tree(dir[i]);
        xa_pretrain_opts o = xt_tiny_pretrain_opts(dir[i], 8);
        if (o.progress) fclose(o.progress);
        o.progress = g_quiet;
        o.log_every = 1;
        o.k.hidden_dropout = 0.1; /* dropout on: the masks must be redrawn exactly */
        o.k.attention_dropout = 0.1;
        o.k.gradient_checkpointing = i;
        xa_pretrain_result r;
        assert_int_equal(xa_pretrain(&o, &r), XA_STATUS_OK);
        assert_int_equal(r.steps_done, 8);
        assert_logged(dir[i], i);
    }
    print_message("pretraining, kept against recomputed activations:\n");
    assert_same_bytes(dir[0], dir[1], "model.safetensors");
    assert_same_losses(dir[0], dir[1]);
    snprintf(g_base, sizeof g_base, "%s", dir[0]);
    snprintf(g_tok, sizeof g_tok, "%s/sentencepiece.bpe.model", dir[0]);
}

static xa_phase_opts phase_opts(int recompute) {
    xa_phase_opts o = xa_phase_opts_default();
    o.B = 8;
    o.T = 32;
    o.steps = 6;
    o.lr = 1e-2;
    o.warmup = 2;
    o.ckpt_every = 0;
    o.log_every = 1;
    o.seed = 5;
    o.progress = g_quiet;
    o.k.hidden_dropout = 0.1;
    o.k.attention_dropout = 0.1;
    o.k.gradient_checkpointing = recompute;
    return o;
}

static void test_lang_recompute(void **state) {
    (void)state;
    assert_true(g_base[0]);
    xa_bn_config cfg;
    assert_int_equal(xa_bn_config_preset(&cfg, "seq_bn_inv"), XA_STATUS_OK);
    cfg.dropout = 0.1;
    char dir[2][4096];
    for (int i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof dir[i], "%s", xt_tmp_path(i ? "rc-lang-on" : "rc-lang-off"));
        xa_file_remove_tree(dir[i]);
        xa_phase_opts o = phase_opts(i);
        xa_phase_result r;
        assert_int_equal(xa_train_lang(g_base, g_tok, dir[i], "en", &cfg, xt_data_path("spm/corpus.txt"), &o, &r),
                         XA_STATUS_OK);
        assert_true(r.finished);
        assert_logged(dir[i], i);
    }
    print_message("language adapter (seq_bn_inv), kept against recomputed:\n");
    assert_same_bytes(dir[0], dir[1], "adapter.safetensors");
    assert_same_losses(dir[0], dir[1]);
    snprintf(g_lang, sizeof g_lang, "%s", dir[0]);
    /* a second language adapter ("de", on the same text) for the fusion test */
    snprintf(g_lang_de, sizeof g_lang_de, "%s", xt_tmp_path("rc-lang-de"));
    xa_file_remove_tree(g_lang_de);
    xa_phase_opts o = phase_opts(0);
    o.seed = 9;
    xa_phase_result r;
    assert_int_equal(xa_train_lang(g_base, g_tok, g_lang_de, "de", &cfg, xt_data_path("spm/corpus.txt"), &o, &r),
                     XA_STATUS_OK);
}

/* The key is not in the checkpoint identity: a language adapter stopped after 3 steps with
 * recomputation and resumed without it (checkpoint every 2 steps, dropout on) ends with the bytes
 * of the uninterrupted run of test_lang_recompute. */
static void test_resume_across(void **state) {
    (void)state;
    assert_true(g_lang[0]);
    xa_bn_config cfg;
    assert_int_equal(xa_bn_config_preset(&cfg, "seq_bn_inv"), XA_STATUS_OK);
    cfg.dropout = 0.1;
    const char *corpus = xt_data_path("spm/corpus.txt");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", xt_tmp_path("rc-lang-resume"));
    xa_file_remove_tree(dir);
    xa_phase_opts o = phase_opts(1);
    o.ckpt_every = 2;
    o.stop_after = 3;
    xa_phase_result r;
    assert_int_equal(xa_train_lang(g_base, g_tok, dir, "en", &cfg, corpus, &o, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 3);
    o.k.gradient_checkpointing = 0;
    o.stop_after = 0;
    o.resume = 1;
    assert_int_equal(xa_train_lang(g_base, g_tok, dir, "en", &cfg, corpus, &o, &r), XA_STATUS_OK);
    assert_true(r.finished);
    print_message("language adapter, recomputed for 3 steps, resumed with kept activations:\n");
    assert_same_bytes(g_lang, dir, "adapter.safetensors");
}

/* spec trained twice, into NAME-off (activations kept) and NAME-on (recomputed), lr 3e-3. */
static void train_task_both(const xa_task_spec *spec, const char *name, char dir[2][4096]) {
    for (int i = 0; i < 2; i++) {
        char leaf[96];
        snprintf(leaf, sizeof leaf, "%s-%s", name, i ? "on" : "off");
        snprintf(dir[i], 4096, "%s", xt_tmp_path(leaf));
        xa_file_remove_tree(dir[i]);
        xa_phase_opts o = phase_opts(i);
        o.lr = 3e-3;
        xa_phase_result r;
        const xa_status st = xa_train_task(g_base, g_tok, dir[i], spec, &o, &r);
        if (st) fail_msg("%s: %s", xa_error_last()->where, xa_error_last()->what);
        assert_true(r.finished);
        assert_logged(dir[i], i);
    }
}

/* A task adapter on Stack(en, pkg) with its head, and full fine-tuning, on every fifth of the
 * recipe fixture's labelled messages (49, the 4 labels). */
static void test_task_recompute(void **state) {
    (void)state;
    assert_true(g_lang[0]);
    size_t n = 0;
    char *all = xt_read_file(xt_data_path("recipe/pkg/en.train.tsv"), &n);
    assert_non_null(all);
    char *some = malloc(n + 1);
    assert_non_null(some);
    size_t k = 0;
    int line = 0;
    for (char *l = strtok(all, "\n"); l; l = strtok(NULL, "\n"), line++) /* the header, every 5th */
        if (line % 5 == 0) k += (size_t)sprintf(some + k, "%s\n", l);
    char *tsv = g_tsv;
    snprintf(g_tsv, sizeof g_tsv, "%s", xt_tmp_path("rc-task.tsv"));
    xt_write_file(tsv, some, k);
    free(some);
    free(all);
    xa_bn_config tcfg;
    assert_int_equal(xa_bn_config_preset(&tcfg, "seq_bn"), XA_STATUS_OK);
    tcfg.dropout = 0.1;
    const char *frozen[1] = {g_lang};
    for (int v = 0; v < 2; v++) {
        const int full = v == 1;
        xa_task_spec spec = {.frozen_dirs = frozen,
                             .n_frozen = 1,
                             .new_adapter = "pkg",
                             .new_cfg = &tcfg,
                             .setup = "Stack(en, pkg)",
                             .head_name = "pkg",
                             .train_path = tsv};
        if (full) {
            xa_task_spec ft = {.head_name = "pkg",
                               .train_path = tsv,
                               .train_base = 1};
            spec = ft;
        }
        char dir[2][4096], name[64];
        snprintf(name, sizeof name, "rc-task%d", v);
        train_task_both(&spec, name, dir);
        print_message("%s, kept against recomputed:\n", full ? "full fine-tuning" : "task adapter on Stack(en, pkg)");
        char fa[4300], fb[4300];
        snprintf(fa, sizeof fa, "%s/final", dir[0]);
        snprintf(fb, sizeof fb, "%s/final", dir[1]);
        assert_same_bytes(fa, fb, "head/model_head.safetensors");
        assert_same_bytes(fa, fb, full ? "encoder/model.safetensors" : "adapter/adapter.safetensors");
        assert_same_losses(dir[0], dir[1]);
        if (!full) snprintf(g_task, sizeof g_task, "%s/final", dir[0]);
    }
}

/* A fusion layer on Stack(Fuse(en, de), pkg) (the fusion phase: both language adapters and the
 * task adapter frozen, the fusion and the head train; fusion dropout on). */
static void test_fusion_recompute(void **state) {
    (void)state;
    assert_true(g_task[0] && g_lang_de[0]);
    char tad[4400], thead[4400];
    snprintf(tad, sizeof tad, "%s/adapter", g_task);
    snprintf(thead, sizeof thead, "%s/head", g_task);
    const char *dirs[2] = {g_lang, g_lang_de}, *names[2] = {"en", "de"};
    xa_fusion_config fc;
    assert_int_equal(xa_fusion_config_preset(&fc, "dynamic"), XA_STATUS_OK);
    fc.dropout_prob = 0.1;
    xa_task_spec spec = {.frozen_dirs = dirs,
                         .n_frozen = 2,
                         .frozen_task_dir = tad,
                         .fuse = names,
                         .n_fuse = 2,
                         .fusion_cfg = &fc,
                         .setup = "Stack(Fuse(en, de), pkg)",
                         .head_name = "pkg",
                         .head_init_dir = thead,
                         .train_path = g_tsv};
    char dir[2][4096];
    train_task_both(&spec, "rc-fusion", dir);
    print_message("fusion on Stack(Fuse(en, de), pkg), kept against recomputed:\n");
    char fa[4300], fb[4300];
    snprintf(fa, sizeof fa, "%s/final", dir[0]);
    snprintf(fb, sizeof fb, "%s/final", dir[1]);
    assert_same_bytes(fa, fb, "head/model_head.safetensors");
    assert_same_bytes(fa, fb, "fusion/model_adapter_fusion.safetensors");
    assert_same_losses(dir[0], dir[1]);
}

int main(void) {
    g_quiet = fopen("/dev/null", "w");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder_recompute),
        cmocka_unit_test(test_memory_accounting),
        cmocka_unit_test(test_pretrain_recompute),
        cmocka_unit_test(test_lang_recompute),
        cmocka_unit_test(test_resume_across),
        cmocka_unit_test(test_task_recompute),
        cmocka_unit_test(test_fusion_recompute),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, xt_teardown);
    fclose(g_quiet);
    return rc;
}
