/* Tests of the trainer's record and knobs (train/trainer.c and the phases that use it): the
 * checkpoint identities of runs with default settings (unchanged, so a run started by an older
 * xadapt resumes), metrics.jsonl rows, resume without duplicate rows, train.log, the loss-curve
 * SVG, held-out MLM validation, the learning-rate schedules, AdamW's betas and epsilon, weight
 * decay that skips biases and norms, metric_for_best_model and the checkpoint history. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "train/trainer.h"

static FILE *g_null;

static int group_setup(void **state) {
    (void)state;
    g_null = fopen("/dev/null", "w");
    return g_null ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    if (g_null) fclose(g_null);
    return 0;
}

static char g_base[4096], g_tok[4200];

/* A small base (L2 d32), pretrained once for the whole file. */
static void need_base(void) {
    if (g_base[0]) return;
    xa_pretrain_opts o = xa_pretrain_opts_default();
    snprintf(g_base, sizeof g_base, "%.4000s", xt_tmp_path("trainer-base"));
    xa_file_remove_tree(g_base);
    o.out_dir = g_base;
    o.corpus = xt_data_path("spm/corpus.txt");
    o.tokenizer = xt_data_path("spm/fixture.model");
    o.model.L = 2;
    o.model.C = 32;
    o.model.NH = 2;
    o.model.FF = 64;
    o.B = 8;
    o.T = 32;
    o.steps = 4;
    o.lr = 5e-3;
    o.warmup = 1;
    o.ckpt_every = 0;
    o.seed = 11;
    o.progress = g_null;
    xa_pretrain_result r;
    assert_int_equal(xa_pretrain(&o, &r), XA_STATUS_OK);
    snprintf(g_tok, sizeof g_tok, "%s/sentencepiece.bpe.model", g_base);
}

/* The identity string a checkpoint holds (DIR/checkpoint/trainer_state.safetensors). */
static void read_identity(const char *dir, char *out, size_t n) {
    char p[4400];
    snprintf(p, sizeof p, "%s/checkpoint/trainer_state.safetensors", dir);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, p), XA_STATUS_OK);
    const char *id = xa_st_metadata_get(f, "identity");
    assert_non_null(id);
    snprintf(out, n, "%s", id);
    xa_st_close(f);
}

static xa_phase_opts small_phase(int64_t steps) {
    xa_phase_opts o = xa_phase_opts_default();
    o.B = 8;
    o.T = 32;
    o.steps = steps;
    o.lr = 1e-2;
    o.warmup = 1;
    o.ckpt_every = 0;
    o.log_every = 1;
    o.seed = 5;
    o.progress = g_null;
    return o;
}

/* Checkpoint identities of pretraining, a language adapter, a task adapter and full fine-tuning
 * with default settings are those written before the trainer keys of issue 16 existed
 * (tests/data/train/identity-default.txt; XA_WRITE_GOLDEN=1 rewrites it): a checkpoint of a run
 * started by the older binary is resumed by this one. */
static void test_identity_stable(void **state) {
    (void)state;
    need_base();
    char got[8192], id[2048], dir[4200];
    size_t n = 0;
    snprintf(dir, sizeof dir, "%s", g_base);
    read_identity(dir, id, sizeof id);
    n += (size_t)snprintf(got + n, sizeof got - n, "%s\n", id);

    xa_bn_config cfg;
    assert_int_equal(xa_bn_config_preset(&cfg, "seq_bn_inv"), XA_STATUS_OK);
    xa_phase_opts o = small_phase(2);
    xa_phase_result r;
    char lang[4200];
    snprintf(lang, sizeof lang, "%s", xt_tmp_path("trainer-id-lang"));
    xa_file_remove_tree(lang);
    assert_int_equal(xa_train_lang(g_base, g_tok, lang, "en", &cfg, xt_data_path("spm/corpus.txt"), &o, &r),
                     XA_STATUS_OK);
    read_identity(lang, id, sizeof id);
    n += (size_t)snprintf(got + n, sizeof got - n, "%s\n", id);

    xa_bn_config tcfg;
    assert_int_equal(xa_bn_config_preset(&tcfg, "seq_bn"), XA_STATUS_OK);
    const char *frozen[1] = {lang};
    xa_task_spec spec = {frozen, 1, "pkg", &tcfg, NULL, NULL, 0, NULL, "Stack(en, pkg)", 0, "pkg", NULL,
                         xt_data_path("recipe/pkg/en.train.tsv"), xt_data_path("recipe/pkg/en.dev.tsv"), 0};
    char task[4200];
    snprintf(task, sizeof task, "%s", xt_tmp_path("trainer-id-task"));
    xa_file_remove_tree(task);
    assert_int_equal(xa_train_task(g_base, g_tok, task, &spec, &o, &r), XA_STATUS_OK);
    read_identity(task, id, sizeof id);
    n += (size_t)snprintf(got + n, sizeof got - n, "%s\n", id);

    xa_task_spec ft = {NULL, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, "pkg", NULL,
                       xt_data_path("recipe/pkg/en.train.tsv"), xt_data_path("recipe/pkg/en.dev.tsv"), 1};
    snprintf(task, sizeof task, "%s", xt_tmp_path("trainer-id-ft"));
    xa_file_remove_tree(task);
    assert_int_equal(xa_train_task(g_base, g_tok, task, &ft, &o, &r), XA_STATUS_OK);
    read_identity(task, id, sizeof id);
    n += (size_t)snprintf(got + n, sizeof got - n, "%s\n", id);

    const char *golden = xt_data_path("train/identity-default.txt");
    if (getenv("XA_WRITE_GOLDEN")) {
        xt_write_file(golden, got, n);
        return;
    }
    char *want = xt_read_file(golden, NULL);
    assert_non_null(want);
    if (strcmp(got, want)) fail_msg("checkpoint identities changed with default settings:\n%s\nexpected:\n%s", got, want);
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_stable),
    };
    return cmocka_run_group_tests_name("trainer", tests, group_setup, group_teardown);
}
