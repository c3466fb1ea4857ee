/* Tests of gradient accumulation (grad_accum, train/trainer.h's micro-batches): a run whose steps
 * take batch B in 4 micro-batches of B / 4 ends with the weights, and logs the losses, of a run
 * with one batch of B, for pretraining (with TLM steps and the alignment term), a language
 * adapter (with held-out validation), a task adapter with its head (classification, weighted
 * classes, tagging, multiple choice: 2 rows an example) and full fine-tuning; a run stopped and resumed with grad_accum 4 ends with
 * the bytes of an uninterrupted one; the identity names grad_accum (a resume with another value
 * is refused) and a bad grad_accum is a USAGE error.
 *
 * Dropout is on in these comparisons (hidden_dropout, attention_dropout, the adapters' dropout
 * and so the heads', 0.1 each): the masks are the global batch's, each micro-batch laying them at
 * its rows (train/trainer.h, "micro-batches"; tensor.h xa_dropout_mask_at), so 4 pieces of B / 4
 * compute the step of one batch of B, masks included. Pieces that each laid their masks at row 0
 * (every piece the same mask) move a pretrained weight by 4.7e-2 (measured), 900x the bound.
 *
 * Tolerance: the runs differ only in the order of float sums (the gradient of a weight is a sum
 * over 4 micro-batches of sums over their rows instead of one sum over the rows; the loss weights
 * m_k / M are rounded once). That is ~1e-7 relative per gradient, and AdamW's update
 * lr * m / (sqrt(v) + eps) carries it over 12-16 steps at about that size. Measured here (this
 * file prints them; with dropout on, 2026-12-03): 1.9e-6 on the pretrained encoder (all weights
 * train, lr 5e-3, 16 steps), 5e-9 to 3.7e-7 on adapters, heads and the fully fine-tuned encoder,
 * and 5e-7 relative on the logged losses (%.6f in metrics.jsonl). The bounds, atol 5e-5 + rtol
 * 1e-4 on weights and 1e-4 relative on losses, are 25x above the largest and far below what a
 * wrong weighting does (each micro-batch's own mean instead of its share of the batch's masked
 * pieces moves an adapter weight by 3e-2 in the language test). Multiple choice has its own
 * atol (4e-4, 4.4x the 9.1e-5 measured with dropout, 2.5e-5 without), explained at its check.
 * The sanitizer build (portable kernels, other rounding) measured 2.9e-6 and, multiple choice,
 * 1.4e-5. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/hfjson.h"
#include "io/safetensors.h"
#include "train/train.h"

#define W_ATOL 5e-5f
#define W_RTOL 1e-4f
#define MC_ATOL 4e-4f /* multiple choice, see test_task_accum */
#define L_RTOL 1e-4

/* Every tensor of DIR_A/NAME within atol + W_RTOL * |DIR_B/NAME's| (same names); prints the
 * largest absolute difference. */
static void assert_close_weights(const char *dir_a, const char *dir_b, const char *name, float atol) {
    char pa[4400], pb[4400];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    xa_st_file *fa = NULL, *fb = NULL;
    assert_int_equal(xa_st_open(&fa, pa), XA_STATUS_OK);
    assert_int_equal(xa_st_open(&fb, pb), XA_STATUS_OK);
    assert_int_equal(xa_st_count(fa), xa_st_count(fb));
    double worst = 0;
    for (size_t i = 0; i < xa_st_count(fa); i++) {
        const xa_st_tensor *ta = xa_st_at(fa, i), *tb = xa_st_find(fb, ta->name);
        assert_non_null(tb);
        assert_int_equal(ta->n_elems, tb->n_elems);
        float *a = xt_fzeros((size_t)ta->n_elems), *b = xt_fzeros((size_t)tb->n_elems);
        assert_int_equal(xa_st_tensor_to_f32(ta, a), XA_STATUS_OK);
        assert_int_equal(xa_st_tensor_to_f32(tb, b), XA_STATUS_OK);
        for (size_t k = 0; k < (size_t)ta->n_elems; k++) {
            const double d = fabs((double)a[k] - (double)b[k]);
            if (d > worst) worst = d;
        }
        xt_assert_close(ta->name, a, b, (size_t)ta->n_elems, atol, W_RTOL);
    }
    print_message("  %s: largest weight difference %.3g\n", name, worst);
    xa_st_close(fa);
    xa_st_close(fb);
}

/* The values of `key` in the rows of METRICS holding `with`. */
static int read_values(const char *metrics, const char *with, const char *key, double *out, int cap) {
    char *text = xt_read_file(metrics, NULL), pat[64];
    assert_non_null(text);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    int k = 0;
    for (char *line = strtok(text, "\n"); line && k < cap; line = strtok(NULL, "\n")) {
        const char *at = strstr(line, pat);
        if (strstr(line, with) && at) out[k++] = atof(at + strlen(pat));
    }
    free(text);
    return k;
}

/* The rows of the two metrics files holding `with` have the same `key` values (relative L_RTOL);
 * returns how many rows. */
static int assert_close_rows(const char *ma, const char *mb, const char *with, const char *key) {
    double a[256], b[256];
    const int na = read_values(ma, with, key, a, 256), nb = read_values(mb, with, key, b, 256);
    assert_int_equal(na, nb);
    assert_true(na > 0);
    double worst = 0;
    for (int i = 0; i < na; i++) {
        const double r = fabs(a[i] - b[i]) / fabs(b[i]);
        if (r > worst) worst = r;
        if (r > L_RTOL) fail_msg("%s row %d (%s): %s %.7f against %.7f", ma, i, with, key, a[i], b[i]);
    }
    print_message("  %d rows %s: largest relative %s difference %.3g\n", na, with, key, worst);
    return na;
}

#define TRAIN_ROWS "\"type\": \"train\""
#define EVAL_ROWS "\"type\": \"eval\""

static void assert_same_bytes(const char *pa, const char *pb) {
    size_t na = 0, nb = 0;
    char *a = xt_read_file(pa, &na), *b = xt_read_file(pb, &nb);
    if (!a || !b) fail_msg("missing %s or %s", pa, pb);
    assert_int_equal(na, nb);
    if (memcmp(a, b, na)) fail_msg("%s and %s differ", pa, pb);
    free(a);
    free(b);
}

static FILE *g_quiet;

/* Dropout on everywhere (the heads take hidden_dropout): the pieces must lay the batch's masks. */
#define P_DROP 0.1f
static void with_dropout(xa_train_knobs *k) {
    k->hidden_dropout = P_DROP;
    k->attention_dropout = P_DROP;
}

static xa_pretrain_opts pt_opts(const char *out, int64_t steps, int accum) {
    xa_pretrain_opts o = xt_tiny_pretrain_opts(out, steps);
    o.log_every = 1;
    if (o.progress) fclose(o.progress);
    o.progress = g_quiet;
    with_dropout(&o.k);
    o.k.grad_accum = accum;
    return o;
}

static char g_base[4096], g_tok[4200];

/* Pretraining (MLM steps, TLM steps and the alignment pass): grad_accum 4 equals 1; the base of
 * the adapter tests below is the grad_accum 1 run. */
static void test_pretrain_accum(void **state) {
    (void)state;
    char dir[2][4096];
    for (int i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof dir[i], "%s", xt_tmp_path(i ? "acc-pt4" : "acc-pt1"));
        xa_file_remove_tree(dir[i]);
        xa_pretrain_opts o = pt_opts(dir[i], 16, i ? 4 : 1);
        o.pairs = xt_data_path("recipe/pairs.tsv");
        o.tlm_ratio = 0.25;
        o.align_weight = 1.0;
        o.align_pairs = 4;
        xa_pretrain_result r;
        assert_int_equal(xa_pretrain(&o, &r), XA_STATUS_OK);
        assert_int_equal(r.steps_done, 16);
    }
    print_message("pretrain (TLM + alignment), batch 8 against 4 x 2:\n");
    assert_close_weights(dir[0], dir[1], "model.safetensors", W_ATOL);
    char ma[4200], mb[4200];
    snprintf(ma, sizeof ma, "%s/metrics.jsonl", dir[1]);
    snprintf(mb, sizeof mb, "%s/metrics.jsonl", dir[0]);
    assert_close_rows(ma, mb, TRAIN_ROWS, "loss");
    snprintf(g_base, sizeof g_base, "%s", dir[0]);
    snprintf(g_tok, sizeof g_tok, "%s/sentencepiece.bpe.model", dir[0]);
}

static xa_phase_opts phase_opts(int64_t steps, int accum) {
    xa_phase_opts o = xa_phase_opts_default();
    o.B = 8;
    o.T = 32;
    o.steps = steps;
    o.lr = 1e-2;
    o.warmup = 2;
    o.ckpt_every = 0;
    o.log_every = 1;
    o.seed = 5;
    o.progress = g_quiet;
    with_dropout(&o.k);
    o.k.grad_accum = accum;
    return o;
}

static xa_bn_config lang_cfg(void) {
    xa_bn_config cfg;
    assert_int_equal(xa_bn_config_preset(&cfg, "seq_bn_inv"), XA_STATUS_OK);
    cfg.dropout = P_DROP;
    return cfg;
}

static char g_lang[4096];

/* A language adapter with held-out validation: grad_accum 4 equals 1 (weights, training losses
 * and the validation rows, which also run in micro-batches). */
static void test_lang_accum(void **state) {
    (void)state;
    assert_true(g_base[0]);
    const xa_bn_config cfg = lang_cfg();
    char dir[2][4096];
    for (int i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof dir[i], "%s", xt_tmp_path(i ? "acc-lang4" : "acc-lang1"));
        xa_file_remove_tree(dir[i]);
        xa_phase_opts o = phase_opts(12, i ? 4 : 1);
        o.heldout = xt_data_path("spm/corpus.txt");
        o.eval_every = 4;
        o.eval_batches = 2;
        xa_phase_result r;
        assert_int_equal(xa_train_lang(g_base, g_tok, dir[i], "en", &cfg, xt_data_path("spm/corpus.txt"), &o, &r),
                         XA_STATUS_OK);
        assert_true(r.finished);
    }
    print_message("lang adapter, batch 8 against 4 x 2:\n");
    assert_close_weights(dir[0], dir[1], "adapter.safetensors", W_ATOL);
    char ma[4200], mb[4200];
    snprintf(ma, sizeof ma, "%s/metrics.jsonl", dir[1]);
    snprintf(mb, sizeof mb, "%s/metrics.jsonl", dir[0]);
    assert_close_rows(ma, mb, TRAIN_ROWS, "loss");
    assert_int_equal(assert_close_rows(ma, mb, EVAL_ROWS, "value"), 3); /* held-out loss at steps 4, 8, 12 */
    snprintf(g_lang, sizeof g_lang, "%s", dir[0]);
}

/* 32 labelled messages (the first 8 of each of the recipe fixture's 4 labels) as TSV, and the
 * same messages as BIO tagging data (CoNLL: the first word B-<LABEL>, the second I-<LABEL>, then
 * O), so that micro-batches hold different numbers of labelled tokens. */
static void write_task_files(const char *tsv, const char *conll, const char *choice) {
    size_t n = 0;
    char *all = xt_read_file(xt_data_path("recipe/pkg/en.train.tsv"), &n);
    assert_non_null(all);
    static const char *const labels[4] = {"apt", "coreutils", "git", "gtk30"};
    int count[4] = {0};
    char *cls = malloc(1 << 16), *tag = malloc(1 << 18), *mc = malloc(1 << 17);
    assert_non_null(cls);
    assert_non_null(tag);
    assert_non_null(mc);
    size_t nc = (size_t)snprintf(cls, 1 << 16, "label\ttext\n"), nt = 0, nm = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        for (int k = 0; k < 4; k++) {
            const size_t ll = strlen(labels[k]);
            if (strncmp(line, labels[k], ll) || line[ll] != '\t' || count[k] >= 8) continue;
            count[k]++;
            nc += (size_t)snprintf(cls + nc, (1 << 16) - nc, "%s\n", line);
            char text[2048];
            snprintf(text, sizeof text, "%s", line + ll + 1);
            int w = 0;
            for (char *save = NULL, *word = strtok_r(text, " ", &save); word; word = strtok_r(NULL, " ", &save), w++)
                nt += (size_t)snprintf(tag + nt, (1 << 18) - nt, "%s\t%s%s\n", word, w == 0 ? "B-" : w == 1 ? "I-" : "O",
                                       w < 2 ? labels[k] : "");
            nt += (size_t)snprintf(tag + nt, (1 << 18) - nt, "\n");
            /* multiple choice (COPA's keys): the message, its package and another one */
            char esc[4096];
            size_t ne = 0;
            for (const char *c = line + ll + 1; *c && ne + 8 < sizeof esc; c++) {
                if ((unsigned char)*c < 0x20) { /* the catalogues hold a few control characters */
                    ne += (size_t)snprintf(esc + ne, sizeof esc - ne, "\\u%04x", (unsigned char)*c);
                    continue;
                }
                if (*c == '"' || *c == '\\') esc[ne++] = '\\';
                esc[ne++] = *c;
            }
            esc[ne] = '\0';
            const int right = count[k] % 2, other = (k + 1 + count[k] % 3) % 4;
            nm += (size_t)snprintf(mc + nm, (1 << 17) - nm,
                                   "{\"premise\": \"%s\", \"choice1\": \"%s\", \"choice2\": \"%s\", \"label\": %d}\n", esc,
                                   right ? labels[other] : labels[k], right ? labels[k] : labels[other], right);
        }
    }
    for (int k = 0; k < 4; k++) assert_int_equal(count[k], 8);
    xt_write_file(tsv, cls, nc);
    xt_write_file(conll, tag, nt);
    xt_write_file(choice, mc, nm);
    free(mc);
    free(cls);
    free(tag);
    free(all);
}

/* Task adapters on Stack(en, pkg) with a head: classification, classification with given class
 * weights, tagging, full fine-tuning, and multiple choice (micro-batches of 2 examples = 4 rows); batch 8 in 4 micro-batches equals batch 8. The
 * epoch's last batch (32 examples: none short here) and the dev selection are the task phase's
 * own; without a dev set the final weights are the last step's. */
static void test_task_accum(void **state) {
    (void)state;
    assert_true(g_lang[0]);
    char tsv[4200], conll[4200], choice[4200];
    snprintf(tsv, sizeof tsv, "%s", xt_tmp_path("acc-task.tsv"));
    snprintf(conll, sizeof conll, "%s", xt_tmp_path("acc-task.conll"));
    snprintf(choice, sizeof choice, "%s", xt_tmp_path("acc-task-choice.jsonl"));
    write_task_files(tsv, conll, choice);
    xa_bn_config tcfg;
    assert_int_equal(xa_bn_config_preset(&tcfg, "seq_bn"), XA_STATUS_OK);
    tcfg.dropout = P_DROP;
    const char *frozen[1] = {g_lang};
    static const char *const kinds[5] = {"classification", "weighted classes", "tagging", "full fine-tuning",
                                         "multiple choice"};
    for (int v = 0; v < 5; v++) {
        const int tagging = v == 2, full = v == 3, mc = v == 4;
        xa_task_spec spec = {.frozen_dirs = frozen,
                             .n_frozen = 1,
                             .new_adapter = "pkg",
                             .new_cfg = &tcfg,
                             .setup = "Stack(en, pkg)",
                             .tagging = tagging,
                             .head_name = "pkg",
                             .train_path = tagging ? conll : mc ? choice : tsv,
                             .kind = mc ? XA_TASK_KIND_CHOICE : XA_TASK_KIND_CLASSIFICATION};
        if (full) {
            xa_task_spec ft = {.head_name = "pkg",
                               .train_path = tsv,
                               .train_base = 1};
            spec = ft;
        }
        char dir[2][4096];
        for (int i = 0; i < 2; i++) {
            char name[64];
            snprintf(name, sizeof name, "acc-task%d-%d", v, i ? 4 : 1);
            snprintf(dir[i], sizeof dir[i], "%s", xt_tmp_path(name));
            xa_file_remove_tree(dir[i]);
            xa_phase_opts o = phase_opts(12, i ? 4 : 1);
            o.lr = 3e-3;
            if (v == 1) o.class_weights = XA_CLASS_WEIGHTS_LIST;
            static const double w4[4] = {1.0, 3.0, 0.5, 2.0};
            o.n_class_weights = 4;
            o.class_weight_list = w4;
            xa_phase_result r;
            const xa_status st = xa_train_task(g_base, g_tok, dir[i], &spec, &o, &r);
            if (st) fail_msg("%s: %s: %s (expected %s)", kinds[v], xa_error_last()->where, xa_error_last()->what,
                             xa_error_last()->expected);
            assert_true(r.finished);
        }
        print_message("%s, batch 8 against 4 x 2:\n", kinds[v]);
        char fa[4300], fb[4300];
        snprintf(fa, sizeof fa, "%s/final", dir[0]);
        snprintf(fb, sizeof fb, "%s/final", dir[1]);
        /* multiple choice: the softmax over the choices ignores what all choices share, so some
         * head directions (the scorer's bias, 1 output) get a gradient that is 0 in exact
         * arithmetic and AdamW turns its rounding into lr-sized steps: measured 9.1e-5 there */
        const float atol = mc ? MC_ATOL : W_ATOL;
        assert_close_weights(fa, fb, "head/model_head.safetensors", atol);
        assert_close_weights(fa, fb, full ? "encoder/model.safetensors" : "adapter/adapter.safetensors", atol);
        snprintf(fa, sizeof fa, "%s/metrics.jsonl", dir[1]);
        snprintf(fb, sizeof fb, "%s/metrics.jsonl", dir[0]);
        assert_close_rows(fa, fb, TRAIN_ROWS, "loss");
    }
}

/* A language adapter with grad_accum 4 and dropout, stopped after 5 steps and resumed: the bytes
 * of an uninterrupted grad_accum 4 run (the dropout generator's state is the checkpoint's); the
 * identity names grad_accum=4 and a resume with grad_accum 2 is refused; grad_accum 3 with batch
 * 8 and grad_accum 0 are USAGE errors (config.c reports them at the recipe's line first). */
static void test_accum_resume_and_errors(void **state) {
    (void)state;
    assert_true(g_base[0]);
    const xa_bn_config cfg = lang_cfg();
    const char *corpus = xt_data_path("spm/corpus.txt");
    char full[4096], resumed[4096];
    snprintf(full, sizeof full, "%s", xt_tmp_path("acc-res-full"));
    snprintf(resumed, sizeof resumed, "%s", xt_tmp_path("acc-res-resumed"));
    xa_file_remove_tree(full);
    xa_file_remove_tree(resumed);
    xa_phase_opts o = phase_opts(12, 4);
    o.k.hidden_dropout = o.k.attention_dropout = 0.1;
    o.ckpt_every = 4;
    xa_phase_result r;
    assert_int_equal(xa_train_lang(g_base, g_tok, full, "en", &cfg, corpus, &o, &r), XA_STATUS_OK);
    xa_phase_opts b = o;
    b.stop_after = 5;
    assert_int_equal(xa_train_lang(g_base, g_tok, resumed, "en", &cfg, corpus, &b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 5);
    char p[4400], q[4400];
    snprintf(p, sizeof p, "%s/checkpoint/trainer_state.safetensors", resumed);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, p), XA_STATUS_OK);
    const char *id = xa_st_metadata_get(f, "identity");
    assert_non_null(id);
    if (!strstr(id, " grad_accum=4")) fail_msg("identity without grad_accum: %s", id);
    xa_st_close(f);
    xa_phase_opts c = b;
    c.stop_after = 0;
    c.resume = 1;
    c.k.grad_accum = 2;
    assert_int_equal(xa_train_lang(g_base, g_tok, resumed, "en", &cfg, corpus, &c, &r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("grad_accum");
    xa_error_clear();
    b.stop_after = 0;
    b.resume = 1;
    assert_int_equal(xa_train_lang(g_base, g_tok, resumed, "en", &cfg, corpus, &b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 12);
    snprintf(p, sizeof p, "%s/adapter.safetensors", full);
    snprintf(q, sizeof q, "%s/adapter.safetensors", resumed);
    assert_same_bytes(p, q);

    for (int bad = 0; bad < 2; bad++) {
        xa_phase_opts e = phase_opts(2, bad ? 0 : 3);
        assert_int_equal(xa_train_lang(g_base, g_tok, xt_tmp_path("acc-bad"), "en", &cfg, corpus, &e, &r),
                         XA_STATUS_USAGE);
        xt_assert_error_mentions("grad_accum");
        xa_error_clear();
        xa_pretrain_opts pe = pt_opts(xt_tmp_path("acc-bad-pt"), 2, bad ? 0 : 3);
        xa_pretrain_result pr;
        assert_int_equal(xa_pretrain(&pe, &pr), XA_STATUS_USAGE);
        xa_error_clear();
    }
}

int main(void) {
    g_quiet = fopen("/dev/null", "w");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretrain_accum),
        cmocka_unit_test(test_lang_accum),
        cmocka_unit_test(test_task_accum),
        cmocka_unit_test(test_accum_resume_and_errors),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, xt_teardown);
    fclose(g_quiet);
    return rc;
}
