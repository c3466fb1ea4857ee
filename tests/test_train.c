/* Tests of framework/data (MLM packing and masking) and framework/train (pretraining): the loss of
 * a 30-step run falls, and a run interrupted and resumed from its checkpoint ends with exactly the
 * weights of an uninterrupted run. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "model/model.h"
#include "io/file.h"
#include "io/hfjson.h"
#include "optim/optim.h"
#include "train/ckpt.h"
#include "train/train.h"
#include "train/trainer.h"

#include <unistd.h>

static xa_spm *load_tok(void) {
    xa_spm *spm = NULL;
    assert_int_equal(xa_spm_load(&spm, xt_data_path("spm/fixture.model")), XA_STATUS_OK);
    assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_XLMR), XA_STATUS_OK);
    return spm;
}

static void test_mlm_packing_and_masking(void **state) {
    (void)state;
    xa_spm *spm = load_tok();
    xa_mlm_data d;
    assert_int_equal(xa_mlm_data_load(&d, spm, xt_data_path("spm/corpus.txt"), 32, 7, 0), XA_STATUS_OK);
    assert_true(d.n_docs > 300);
    assert_int_equal(d.n_blocks, d.n_tokens / 32);
    /* Documents are <s> ... </s>: the stream starts with <s>=0 and holds as many </s>=2. */
    assert_int_equal(d.blocks[0], 0);
    int64_t n_bos = 0, n_eos = 0;
    for (int64_t i = 0; i < d.n_blocks * 32; i++) {
        n_bos += d.blocks[i] == 0;
        n_eos += d.blocks[i] == 2;
        assert_true(d.blocks[i] >= 0 && d.blocks[i] < d.vocab && d.blocks[i] != 1);
    }
    assert_true(n_bos > 300 && llabs(n_bos - n_eos) <= 1);
    assert_int_equal(d.mask_id, d.vocab - 1);

    /* Masking statistics over many blocks: 15% selected; 80% <mask>, 10% random, 10% kept. */
    int64_t selected = 0, eligible = 0, masked = 0, kept = 0;
    xa_rng rng;
    xa_rng_seed(&rng, 3, 0);
    int32_t ids[32], labels[32];
    for (int rep = 0; rep < 40; rep++) {
        for (int64_t blk = 0; blk < d.n_blocks; blk++) {
            memcpy(ids, d.blocks + blk * 32, sizeof ids);
            int m = xa_mlm_mask(&d, ids, labels, 32, &rng);
            int counted = 0;
            for (int t = 0; t < 32; t++) {
                int32_t orig = d.blocks[blk * 32 + t];
                int special = orig == 0 || orig == 2;
                eligible += !special;
                if (labels[t] == -100) {
                    assert_int_equal(ids[t], orig); /* unselected tokens are untouched */
                    continue;
                }
                assert_false(special);
                assert_int_equal(labels[t], orig);
                counted++;
                masked += ids[t] == d.mask_id;
                kept += ids[t] == orig;
            }
            assert_int_equal(m, counted);
            selected += counted;
        }
    }
    double p = (double)selected / (double)eligible;
    assert_true(fabs(p - 0.15) < 0.01);
    assert_true(fabs((double)masked / selected - 0.8) < 0.02);
    assert_true(fabs((double)kept / selected - 0.1) < 0.02); /* a random id may also hit the original */

    /* Batches are deterministic and seeking reproduces them. */
    xa_mlm_batch b1, b2;
    assert_int_equal(xa_mlm_batch_init(&b1, 4, 32), XA_STATUS_OK);
    assert_int_equal(xa_mlm_batch_init(&b2, 4, 32), XA_STATUS_OK);
    for (int i = 0; i < 5; i++) xa_mlm_data_next(&d, &b1);
    int64_t epoch = d.epoch, pos = d.pos;
    xa_mlm_data_next(&d, &b1);
    xa_mlm_data_seek(&d, epoch, pos);
    xa_mlm_data_next(&d, &b2);
    assert_memory_equal(b1.ids, b2.ids, 4 * 32 * sizeof(int32_t));
    assert_memory_equal(b1.labels, b2.labels, 4 * 32 * sizeof(int32_t));
    assert_int_equal(b1.m, b2.m);
    /* Walking past the end moves to the next epoch with a new order. */
    for (int64_t i = 0; i < d.n_blocks; i++) xa_mlm_data_next(&d, &b1);
    assert_true(d.epoch >= 1);
    xa_mlm_batch_free(&b1);
    xa_mlm_batch_free(&b2);
    xa_mlm_data_free(&d);

    /* Errors: a missing corpus names the file; too little text for one block says so. */
    assert_int_not_equal(xa_mlm_data_load(&d, spm, xt_tmp_path("missing.txt"), 32, 1, 0), XA_STATUS_OK);
    xt_assert_error_mentions("missing.txt");
    const char *small = xt_tmp_path("small.txt");
    xt_write_file(small, "Hallo Welt\n", 11);
    assert_int_equal(xa_mlm_data_load(&d, spm, small, 512, 1, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("shorter sequence length");
    xa_spm_free(spm);
}

static xa_pretrain_opts small_opts(const char *out, int64_t steps) {
    xa_pretrain_opts o = xa_pretrain_opts_default();
    o.out_dir = out;
    o.corpus = xt_data_path("spm/corpus.txt");
    o.tokenizer = xt_data_path("spm/fixture.model");
    o.model.L = 2;
    o.model.C = 32;
    o.model.NH = 2;
    o.model.FF = 64;
    o.B = 8;
    o.T = 32;
    o.steps = steps;
    o.lr = 5e-3;
    o.warmup = 3;
    o.ckpt_every = 0;
    o.seed = 11;
    o.progress = fopen("/dev/null", "w");
    return o;
}

static void test_pretrain_lowers_loss(void **state) {
    (void)state;
    xa_pretrain_opts o = small_opts(xt_tmp_path("pt30"), 30);
    xa_pretrain_result r;
    assert_int_equal(xa_pretrain(&o, &r), XA_STATUS_OK);
    fclose(o.progress);
    assert_int_equal(r.steps_done, 30);
    /* ln(1002) = 6.9 at the start; 30 steps must bring the windowed loss down clearly. */
    print_message("pretrain: loss %.4f -> %.4f\n", r.first_loss, r.last_loss);
    assert_true(r.first_loss > 6.0);
    assert_true(r.last_loss < r.first_loss - 0.5);
    /* The saved model loads (HF layout) with the tokenizer beside it. */
    xa_encoder enc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o.out_dir);
    assert_int_equal(xa_encoder_load(&enc, NULL, dir, 0), XA_STATUS_OK);
    assert_int_equal(enc.cfg.C, 32);
    xa_encoder_free(&enc);
    char tok[4200];
    snprintf(tok, sizeof tok, "%s/sentencepiece.bpe.model", dir);
    size_t n = 0;
    char *bytes = xt_read_file(tok, &n);
    assert_non_null(bytes);
    free(bytes);
}

/* Bytes of DIR/NAME equal in two directories. */
static void assert_same_file(const char *dir_a, const char *dir_b, const char *name) {
    char pa[4300], pb[4300];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    size_t na = 0, nb = 0;
    char *fa = xt_read_file(pa, &na), *fb = xt_read_file(pb, &nb);
    if (!fa || !fb) fail_msg("missing %s or %s", pa, pb);
    assert_int_equal(na, nb);
    if (memcmp(fa, fb, na)) fail_msg("%s and %s differ", pa, pb);
    free(fa);
    free(fb);
}

/* The two runs saved byte-identical DIR/model.safetensors files. */
static void assert_same_model(const char *dir_a, const char *dir_b) {
    assert_same_file(dir_a, dir_b, "model.safetensors");
}

static void test_resume_is_identical(void **state) {
    (void)state;
    /* Uninterrupted: 16 steps. */
    xa_pretrain_opts a = small_opts(xt_tmp_path("full"), 16);
    a.ckpt_every = 4;
    xa_pretrain_result r;
    assert_int_equal(xa_pretrain(&a, &r), XA_STATUS_OK);
    /* Interrupted after 6 steps (a checkpoint is written when it stops), then resumed. */
    xa_pretrain_opts b = small_opts(xt_tmp_path("resumed"), 16);
    b.ckpt_every = 4;
    b.stop_after = 6;
    assert_int_equal(xa_pretrain(&b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 6);
    b.stop_after = 0;
    b.resume = 1;
    assert_int_equal(xa_pretrain(&b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 16);
    fclose(a.progress);
    fclose(b.progress);
    assert_same_model(a.out_dir, b.out_dir);

    /* Resuming with another batch size is refused with a clear message. */
    xa_pretrain_opts c = small_opts(b.out_dir, 20);
    c.resume = 1;
    c.B = 4;
    assert_int_equal(xa_pretrain(&c, &r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("batch");
    fclose(c.progress);
}

/* Pretraining with aligned pairs (TLM steps and the contrastive alignment pass): the alignment loss
 * falls below chance, and a run stopped and resumed ends with the same bytes as an uninterrupted
 * one (pair sampling is a function of the step, so no data position is needed). */
static void test_pretrain_pairs(void **state) {
    (void)state;
    xa_pretrain_opts a = small_opts(xt_tmp_path("pairs-full"), 40);
    a.pairs = xt_data_path("recipe/pairs.tsv");
    a.tlm_ratio = 0.5;
    a.align_weight = 1.0;
    a.align_pairs = 8;
    a.ckpt_every = 10;
    xa_pretrain_result r;
    assert_int_equal(xa_pretrain(&a, &r), XA_STATUS_OK);
    print_message("pairs: MLM %.3f -> %.3f, align loss %.3f (chance %.3f), acc %.3f\n", r.first_loss,
                  r.last_loss, r.last_align_loss, log(8.0), r.last_align_acc);
    assert_true(r.last_align_loss < log(8.0) - 0.3);
    assert_true(r.last_loss < r.first_loss - 0.5);
    xa_pretrain_opts b = a;
    b.out_dir = xt_tmp_path("pairs-resumed");
    b.stop_after = 13;
    assert_int_equal(xa_pretrain(&b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 13);
    b.stop_after = 0;
    b.resume = 1;
    assert_int_equal(xa_pretrain(&b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 40);
    assert_same_model(a.out_dir, b.out_dir);
    /* alignment without a pair corpus is a usage error, not an abort */
    xa_pretrain_opts d = small_opts(xt_tmp_path("pairs-none"), 4);
    d.align_weight = 1.0;
    assert_int_equal(xa_pretrain(&d, &r), XA_STATUS_USAGE);
    fclose(d.progress);
    /* resuming with another alignment setting is refused */
    xa_pretrain_opts c = b;
    c.steps = 70;
    c.align_weight = 0.5;
    assert_int_equal(xa_pretrain(&c, &r), XA_STATUS_CONFIG);
    fclose(a.progress);
}

/* A damaged checkpoint is refused with a message naming the file; the final model of the finished
 * run is left as it was. */
static void test_damaged_checkpoint(void **state) {
    (void)state;
    xa_pretrain_opts o = small_opts(xt_tmp_path("damaged"), 4);
    o.ckpt_every = 2;
    xa_pretrain_result r;
    assert_int_equal(xa_pretrain(&o, &r), XA_STATUS_OK);
    char model[4200], trainer[4200];
    snprintf(model, sizeof model, "%s/model.safetensors", o.out_dir);
    snprintf(trainer, sizeof trainer, "%s/checkpoint/trainer_state.safetensors", o.out_dir);
    size_t n_before = 0;
    char *before = xt_read_file(model, &n_before);
    assert_non_null(before);
    /* Truncate the trainer state to its first 100 bytes. */
    size_t n = 0;
    char *state_bytes = xt_read_file(trainer, &n);
    assert_non_null(state_bytes);
    xt_write_file(trainer, state_bytes, 100);
    free(state_bytes);
    xa_pretrain_opts again = small_opts(o.out_dir, 8);
    again.resume = 1;
    assert_int_not_equal(xa_pretrain(&again, &r), XA_STATUS_OK);
    xt_assert_error_mentions("trainer_state.safetensors");
    size_t n_after = 0;
    char *after = xt_read_file(model, &n_after);
    assert_int_equal(n_before, n_after);
    assert_memory_equal(before, after, n_before);
    free(before);
    free(after);
    fclose(o.progress);
    fclose(again.progress);
}

static int is_file(const char *dir, const char *name) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void mkfile(const char *dir, const char *name) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char d[8192];
    snprintf(d, sizeof d, "%s", p);
    *strrchr(d, '/') = '\0';
    assert_int_equal(xa_file_mkdirs(d), XA_STATUS_OK);
    xt_write_file(p, name, strlen(name));
}

/* The checkpoint protocol: the swap, recovery of an interrupted one, removal of everything a
 * checkpoint directory holds (left-over temporaries included). */
static void test_ckpt_swap_and_recover(void **state) {
    (void)state;
    char root[1024], ck[2048], tmp[2048], old[2048];
    snprintf(root, sizeof root, "%s", xt_tmp_path("ckpt"));
    snprintf(ck, sizeof ck, "%s/checkpoint", root);
    snprintf(tmp, sizeof tmp, "%s/checkpoint.tmp", root);
    snprintf(old, sizeof old, "%s/checkpoint.old", root);
    assert_int_equal(xa_file_remove_tree(root), XA_STATUS_OK);
    /* the first swap, then a second over a checkpoint.old that holds a left-over temporary and a
     * subdirectory (a fixed list of names would leave them and the rename would fail) */
    mkfile(tmp, "adapter/adapter.safetensors");
    assert_int_equal(xa_ckpt_swap_dir(tmp, ck), XA_STATUS_OK);
    assert_true(is_file(ck, "adapter/adapter.safetensors"));
    mkfile(old, "adapter/adapter.safetensors.tmp.4242");
    mkfile(old, "extra/deep/file");
    mkfile(tmp, "adapter/v2");
    assert_int_equal(xa_ckpt_swap_dir(tmp, ck), XA_STATUS_OK);
    assert_true(is_file(ck, "adapter/v2"));
    assert_false(xa_file_is_dir(old));
    assert_false(xa_file_is_dir(tmp));
    /* a crash between the renames: only checkpoint.old (and a half-written checkpoint.tmp) */
    assert_int_equal(rename(ck, old), 0);
    mkfile(tmp, "adapter/half.tmp.77");
    assert_int_equal(xa_ckpt_recover(ck), XA_STATUS_OK);
    assert_true(is_file(ck, "adapter/v2"));
    assert_false(xa_file_is_dir(old));
    assert_false(xa_file_is_dir(tmp));
    /* a crash after both renames, before the cleanup: the new one stays, the old goes */
    mkfile(old, "stale");
    assert_int_equal(xa_ckpt_recover(ck), XA_STATUS_OK);
    assert_true(is_file(ck, "adapter/v2"));
    assert_false(xa_file_is_dir(old));
    /* remove_tree: everything, a link removed and not followed */
    mkfile(root, "keep/target");
    char link[4096], target[4096];
    snprintf(link, sizeof link, "%s/link", ck);
    snprintf(target, sizeof target, "%s/keep", root);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(xa_file_remove_tree(ck), XA_STATUS_OK);
    assert_false(xa_file_is_dir(ck));
    assert_true(is_file(root, "keep/target"));
    assert_int_equal(xa_file_remove_tree(ck), XA_STATUS_OK); /* missing: fine */
}

/* A checkpoint made on other data is refused, naming the items that differ. */
static void test_ckpt_identity(void **state) {
    (void)state;
    xa_optim opt;
    float p[4] = {1, 2, 3, 4}, g[4] = {0};
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "w", p, g, 4, 1.0, 0.0, 1, NULL), XA_STATUS_OK);
    xa_train_state ts = {7, 1, 3, {5, 9}, 0.5, 6, 1};
    const char *path = xt_tmp_path("ckpt-identity.safetensors");
    assert_int_equal(xa_ckpt_save_state(path, &opt, &ts, "lang de B=8 seed=3 data=100:00ff"), XA_STATUS_OK);
    xa_train_state back;
    memset(&back, 0, sizeof back);
    assert_int_equal(xa_ckpt_load_state(path, &opt, &back, "lang de B=8 seed=3 data=100:00ff"), XA_STATUS_OK);
    assert_int_equal(back.step, 7);
    assert_int_equal(back.pos, 3);
    assert_int_equal(xa_ckpt_load_state(path, &opt, &back, "lang de B=8 seed=3 data=90:0a0b"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("data=100:00ff (this run: data=90:0a0b)");
    xt_assert_error_mentions("training data changed");
    assert_int_equal(xa_ckpt_load_state(path, &opt, &back, "lang de B=16 seed=3 data=100:00ff"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("B=8 (this run: B=16)");
    xa_optim_free(&opt);
}

/* ---- the trainer skeleton (train/trainer.c) on a toy phase --------------------------------------
 * w (4 floats) descends the loss |w - target|^2 with a noisy target drawn from the run's RNG;
 * every third batch request is an epoch end (no batch). */
typedef struct toy_phase {
    float w[4], g[4];
    int64_t calls;             /* batch requests: the data position */
    int stop_at;               /* after: early stop at this step (0: never) */
} toy_phase;

static xa_status toy_init(void *ctx, xa_train_state *ts) {
    toy_phase *p = ctx;
    for (int i = 0; i < 4; i++) p->w[i] = (float)i;
    xa_rng_seed(&ts->rng, 5, 6);
    return XA_STATUS_OK;
}

static xa_status toy_load(void *ctx, const char *dir) {
    char path[XA_PATH_MAX], *data = NULL;
    size_t n = 0;
    xa_status st = xa_path_join(path, sizeof path, dir, "w.bin");
    if (!st) st = xa_file_read(&data, &n, path, 0);
    if (!st && n == sizeof((toy_phase *)ctx)->w) memcpy(((toy_phase *)ctx)->w, data, n);
    free(data);
    return st;
}

static xa_status toy_seek(void *ctx, const char *path, xa_trainer *t) {
    toy_phase *p = ctx;
    (void)path;
    p->calls = t->ts.pos;
    if (p->stop_at && t->ts.step >= p->stop_at) t->stop = 1; /* it had stopped early */
    return XA_STATUS_OK;
}

static xa_status toy_step(void *ctx, xa_trainer *t, float *loss, double *tokens) {
    toy_phase *p = ctx;
    if (++p->calls % 3 == 0) return XA_STATUS_OK;
    *loss = 0;
    for (int i = 0; i < 4; i++) {
        float d = p->w[i] - (1.0f + 0.1f * (float)xa_rng_uniform(&t->ts.rng));
        p->g[i] += 2 * d;
        *loss += d * d;
    }
    *tokens = 8;
    return XA_STATUS_OK;
}

static xa_status toy_after(void *ctx, xa_trainer *t, float loss, double lr, char *line, size_t n) {
    (void)loss, (void)lr, (void)line, (void)n;
    if (((toy_phase *)ctx)->stop_at == t->ts.step) t->stop = 1;
    return XA_STATUS_OK;
}

static void toy_position(void *ctx, xa_train_state *ts) { ts->pos = ((toy_phase *)ctx)->calls; }

static xa_status toy_save(void *ctx, const char *dir) {
    char path[XA_PATH_MAX];
    xa_status st = xa_file_mkdirs(dir);
    if (!st) st = xa_path_join(path, sizeof path, dir, "w.bin");
    if (!st) st = xa_file_write_atomic(path, ((toy_phase *)ctx)->w, sizeof((toy_phase *)ctx)->w);
    return st;
}

static const xa_trainer_ops g_toy = {toy_init, toy_load, toy_seek, toy_step, NULL, toy_after, toy_position, toy_save};

/* Run the toy phase in dir for steps (stop_after: 0 = to the end); returns the trainer's step. */
static int64_t toy_run(const char *dir, int64_t steps, int64_t stop_after, int resume, toy_phase *p) {
    xa_optim opt;
    xa_trainer t;
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "w", p->w, p->g, 4, 1.0, 0.01, 1, NULL), XA_STATUS_OK);
    xa_trainer_opts o = {"toy", dir, NULL, "toy v=1", steps, 2, 0.1, 1.0, 3, 2, stop_after, resume, NULL, "toy", NULL};
    FILE *quiet = fopen("/dev/null", "w");
    o.progress = quiet;
    assert_int_equal(xa_trainer_run(&t, &o, &opt, &g_toy, p), XA_STATUS_OK);
    xa_trainer_close(&t);
    fclose(quiet);
    xa_optim_free(&opt);
    return t.ts.step;
}

static void test_trainer_skeleton(void **state) {
    (void)state;
    char a[XA_PATH_MAX], b[XA_PATH_MAX], c[XA_PATH_MAX], path[XA_PATH_MAX];
    snprintf(a, sizeof a, "%s", xt_tmp_path("trainer-a"));
    snprintf(b, sizeof b, "%s", xt_tmp_path("trainer-b"));
    snprintf(c, sizeof c, "%s", xt_tmp_path("trainer-c"));
    xa_file_remove_tree(a);
    xa_file_remove_tree(b);
    xa_file_remove_tree(c);
    toy_phase whole = {0}, part = {0}, early = {0};
    assert_int_equal(toy_run(a, 10, 0, 1, &whole), 10);
    assert_int_equal(whole.calls, 14); /* 10 steps and 4 epoch ends */
    assert_true(fabsf(whole.w[3] - 3.0f) > 0.1f); /* it trained */
    /* stopped after 4 steps (a checkpoint there), then resumed by a fresh process state */
    assert_int_equal(toy_run(b, 10, 4, 1, &part), 4);
    toy_phase resumed = {0};
    assert_int_equal(toy_run(b, 10, 0, 1, &resumed), 10);
    assert_memory_equal(resumed.w, whole.w, sizeof whole.w);
    assert_int_equal(xa_path_join(path, sizeof path, b, "metrics.jsonl"), XA_STATUS_OK);
    char *m = NULL;
    assert_int_equal(xa_file_read(&m, NULL, path, 0), XA_STATUS_OK);
    int lines = 0;
    for (char *q = m; *q; q++) lines += *q == '\n';
    free(m);
    assert_int_equal(lines, 5); /* windows of 2 steps over 10, across the resume */
    /* another identity is refused */
    xa_optim opt;
    xa_trainer t;
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "w", resumed.w, resumed.g, 4, 1.0, 0.01, 1, NULL), XA_STATUS_OK);
    xa_trainer_opts o = {"toy", b, NULL, "toy v=2", 10, 2, 0.1, 1.0, 3, 2, 0, 1, NULL, "toy", NULL};
    assert_int_equal(xa_trainer_run(&t, &o, &opt, &g_toy, &resumed), XA_STATUS_CONFIG);
    xt_assert_error_mentions("v=2");
    xa_trainer_close(&t);
    xa_optim_free(&opt);
    xa_error_clear();
    /* an early stop checkpoints its step and ends the run */
    early.stop_at = 5;
    assert_int_equal(toy_run(c, 10, 0, 1, &early), 5);
    assert_int_equal(xa_path_join(path, sizeof path, c, "checkpoint/w.bin"), XA_STATUS_OK);
    char *w = NULL;
    size_t n = 0;
    assert_int_equal(xa_file_read(&w, &n, path, 0), XA_STATUS_OK);
    assert_int_equal(n, sizeof early.w);
    assert_memory_equal(w, early.w, n);
    free(w);
    toy_phase again = {0};
    again.stop_at = 5;
    assert_int_equal(toy_run(c, 10, 0, 1, &again), 5); /* a stopped run resumed does not train on */
    assert_memory_equal(again.w, early.w, sizeof early.w);
}

/* ---- aligned language adapters (train/madx.c, phases.lang.align) ---- */

/* The "align_loss" values of a metrics.jsonl (at most cap), in order; returns how many. */
static int read_align_losses(const char *path, double *out, int cap) {
    size_t n = 0;
    char *text = xt_read_file(path, &n);
    assert_non_null(text);
    int k = 0;
    for (const char *at = text; k < cap && (at = strstr(at, "\"align_loss\": ")); at++) out[k++] = atof(at + 14);
    free(text);
    return k;
}

/* DIR/adapter.safetensors of two runs are byte-identical. */
static void assert_same_adapter(const char *dir_a, const char *dir_b) {
    assert_same_file(dir_a, dir_b, "adapter.safetensors");
}

static xa_phase_opts lang_opts(int64_t steps, FILE *progress) {
    xa_phase_opts o = xa_phase_opts_default();
    o.B = 8;
    o.T = 32;
    o.steps = steps;
    o.lr = 1e-2;
    o.warmup = 2;
    o.ckpt_every = 10;
    o.log_every = 5;
    o.seed = 5;
    o.progress = progress;
    return o;
}

/* On a base pretrained without alignment (so the German sides start far from the English ones)
 * an aligned de adapter lowers its alignment loss against the frozen en adapter (on a pair file of
 * 8 de pairs, so that every step's batch holds the same pairs: a tiny base learns no alignment
 * that carries over to new pairs in 60 steps); a run stopped
 * and resumed ends with the bytes of an uninterrupted one; align 0 ignores the alignment
 * options (the same bytes as a plain MLM run); a pair file without the language and a missing
 * source adapter are CONFIG errors. */
static void test_lang_align(void **state) {
    (void)state;
    xa_pretrain_opts po = small_opts(xt_tmp_path("la-base"), 30);
    xa_pretrain_result pr;
    assert_int_equal(xa_pretrain(&po, &pr), XA_STATUS_OK);
    char base[4200], tok[4200]; /* copies: the path helpers' buffers rotate */
    snprintf(base, sizeof base, "%s", po.out_dir);
    snprintf(tok, sizeof tok, "%s/sentencepiece.bpe.model", po.out_dir);
    xa_bn_config cfg;
    assert_int_equal(xa_bn_config_preset(&cfg, "seq_bn_inv"), XA_STATUS_OK);
    cfg.reduction_factor = 2;
    char en_corpus[4200], de_corpus[4200], pairs[4200];
    snprintf(en_corpus, sizeof en_corpus, "%s", xt_data_path("recipe/mono/en.txt"));
    snprintf(de_corpus, sizeof de_corpus, "%s", xt_data_path("recipe/mono/de.txt"));
    snprintf(pairs, sizeof pairs, "%s", xt_tmp_path("la-pairs.tsv"));
    {
        size_t n = 0;
        char *all = xt_read_file(xt_data_path("recipe/pairs.tsv"), &n);
        assert_non_null(all);
        char buf[8192];
        size_t len = (size_t)snprintf(buf, sizeof buf, "lang\ten\ttext\n");
        int k = 0;
        for (char *line = strtok(all, "\n"); line && k < 8; line = strtok(NULL, "\n"))
            if (!strncmp(line, "de\t", 3) && len + strlen(line) + 2 < sizeof buf) {
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", line);
                k++;
            }
        assert_int_equal(k, 8);
        xt_write_file(pairs, buf, len);
        free(all);
    }
    char en_dir[4200];
    snprintf(en_dir, sizeof en_dir, "%s", xt_tmp_path("la-en"));
    xa_phase_result r;
    xa_phase_opts o = lang_opts(20, po.progress);
    assert_int_equal(xa_train_lang(base, tok, en_dir, "en", &cfg, en_corpus, &o, &r), XA_STATUS_OK);
    assert_true(r.finished);

    /* aligned: the alignment loss falls (first window vs last window) */
    xa_phase_opts a = lang_opts(60, po.progress);
    a.align = 10.0;
    a.align_pairs = 8;
    a.align_temp = 0.05;
    a.align_pairs_path = pairs;
    a.align_src_dir = en_dir;
    char full[4200], resumed[4200], metrics[4300];
    snprintf(full, sizeof full, "%s", xt_tmp_path("la-de-full"));
    assert_int_equal(xa_train_lang(base, tok, full, "de", &cfg, de_corpus, &a, &r), XA_STATUS_OK);
    assert_true(r.finished);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", full);
    double al[16];
    const int n_al = read_align_losses(metrics, al, 16);
    assert_int_equal(n_al, 12);
    print_message("lang align: align loss %.4f -> %.4f (chance %.4f), acc %.3f\n", al[0], al[n_al - 1], log(8.0),
                  r.last_align_acc);
    /* the 32-wide fixture base pools its sentences almost alike: the fall is small but steady
     * (2.075 -> 2.019 here); on the recipe's tiny base a fixed batch goes 2.28 -> 0.49 in 100 steps */
    assert_true(al[n_al - 1] < al[0] - 0.03);
    assert_true(fabs(r.last_align_loss - al[n_al - 1]) < 1e-4);

    /* stopped after 13 steps and resumed: the same adapter bytes */
    snprintf(resumed, sizeof resumed, "%s", xt_tmp_path("la-de-resumed"));
    xa_phase_opts b = a;
    b.stop_after = 13;
    assert_int_equal(xa_train_lang(base, tok, resumed, "de", &cfg, de_corpus, &b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 13);
    assert_false(r.finished);
    b.stop_after = 0;
    b.resume = 1;
    assert_int_equal(xa_train_lang(base, tok, resumed, "de", &cfg, de_corpus, &b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 60);
    assert_same_adapter(full, resumed);
    /* resuming with another alignment weight is refused (the checkpoint identity) */
    xa_phase_opts c = a;
    c.align = 0.5;
    c.resume = 1;
    c.steps = 70;
    assert_int_equal(xa_train_lang(base, tok, resumed, "de", &cfg, de_corpus, &c, &r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("align");

    /* align 0: the alignment options are not read, the adapter is the MLM-only one */
    char plain[4200], off[4200];
    snprintf(plain, sizeof plain, "%s", xt_tmp_path("la-de-plain"));
    snprintf(off, sizeof off, "%s", xt_tmp_path("la-de-off"));
    xa_phase_opts m = lang_opts(12, po.progress);
    assert_int_equal(xa_train_lang(base, tok, plain, "de", &cfg, de_corpus, &m, &r), XA_STATUS_OK);
    m.align_pairs = 8;
    m.align_temp = 0.1;
    m.align_pairs_path = "/nonexistent/pairs.tsv";
    m.align_src_dir = "/nonexistent/en";
    assert_int_equal(xa_train_lang(base, tok, off, "de", &cfg, de_corpus, &m, &r), XA_STATUS_OK);
    assert_same_adapter(plain, off);
    char mp[4300], mo[4300];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", plain);
    snprintf(mo, sizeof mo, "%s/metrics.jsonl", off);
    size_t np = 0, no = 0;
    char *tp = xt_read_file(mp, &np), *to = xt_read_file(mo, &no);
    assert_non_null(tp);
    assert_non_null(to);
    assert_null(strstr(tp, "align"));
    free(tp);
    free(to);

    /* errors: no pair of the language; no source adapter */
    xa_phase_opts e = a;
    e.steps = 4;
    assert_int_equal(xa_train_lang(base, tok, xt_tmp_path("la-ko"), "ko", &cfg, de_corpus, &e, &r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("ko");
    e.align_src_dir = xt_tmp_path("la-missing-en");
    assert_int_equal(xa_train_lang(base, tok, xt_tmp_path("la-de-nosrc"), "de", &cfg, de_corpus, &e, &r),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("source adapter");
    fclose(po.progress);
}

/* ---- full fine-tuning (xa_train_task with train_base) ---- */

static xa_phase_opts ft_opts(FILE *progress) {
    xa_phase_opts o = lang_opts(0, progress); /* B 8, T 32, lr 1e-2, warmup 2 */
    o.epochs = 20; /* 4 batches an epoch: 80 steps */
    o.eval_every = 8;
    o.ckpt_every = 5;
    o.log_every = 4;
    o.seed = 7;
    return o;
}

/* On a small pretrained base, full fine-tuning on 32 labelled messages: the training loss falls,
 * every encoder tensor (embeddings included) moves away from the base while the base directory
 * stays byte for byte as it was, the fine-tuned encoder directory loads as a base (with the
 * base's MLM head unchanged and the tokenizer) and evaluates with its head (no setup); a run
 * stopped after 11 steps and resumed writes the bytes of an uninterrupted one; a spec with a
 * setup is refused. */
static void test_full_finetune(void **state) {
    (void)state;
    xa_pretrain_opts po = small_opts(xt_tmp_path("ft-base"), 30);
    xa_pretrain_result pr;
    assert_int_equal(xa_pretrain(&po, &pr), XA_STATUS_OK);
    char base[4200], tok[4200], base_st[4300], train[4200], dev[4200];
    snprintf(base, sizeof base, "%s", po.out_dir);
    snprintf(tok, sizeof tok, "%s/sentencepiece.bpe.model", po.out_dir);
    snprintf(base_st, sizeof base_st, "%s/model.safetensors", base);
    snprintf(train, sizeof train, "%s", xt_tmp_path("ft-train.tsv"));
    snprintf(dev, sizeof dev, "%s", xt_data_path("recipe/pkg/en.dev.tsv"));
    { /* 32 messages of the recipe fixture: the first 8 of each of its 4 labels */
        size_t n = 0;
        char *all = xt_read_file(xt_data_path("recipe/pkg/en.train.tsv"), &n);
        assert_non_null(all);
        static const char *const labels[4] = {"apt\t", "coreutils\t", "git\t", "gtk30\t"};
        int count[4] = {0};
        char buf[16384];
        size_t len = (size_t)snprintf(buf, sizeof buf, "label\ttext\n");
        for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n"))
            for (int k = 0; k < 4; k++)
                if (!strncmp(line, labels[k], strlen(labels[k])) && count[k] < 8 && len + strlen(line) + 2 < sizeof buf) {
                    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", line);
                    count[k]++;
                }
        for (int k = 0; k < 4; k++) assert_int_equal(count[k], 8);
        xt_write_file(train, buf, len);
        free(all);
    }
    size_t nb0 = 0;
    char *base_bytes = xt_read_file(base_st, &nb0);
    assert_non_null(base_bytes);

    xa_task_spec spec = {NULL, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, "pkg", NULL, train, dev, 1};
    char full[4200], resumed[4200], p[4400];
    snprintf(full, sizeof full, "%s", xt_tmp_path("ft-full"));
    xa_phase_opts o = ft_opts(po.progress);
    xa_phase_result r;
    assert_int_equal(xa_train_task(base, tok, full, &spec, &o, &r), XA_STATUS_OK);
    assert_true(r.finished);
    print_message("full fine-tuning: loss %.4f -> %.4f in %lld steps, best dev %.4f at step %lld\n", r.first_loss,
                  r.last_loss, (long long)r.steps_done, r.best_dev, (long long)r.best_step);
    assert_true(r.last_loss < r.first_loss - 0.3);
    assert_true(r.best_dev >= 0);

    /* the base directory is untouched; every tensor of the fine-tuned encoder moved */
    size_t nb1 = 0;
    char *after = xt_read_file(base_st, &nb1);
    assert_non_null(after);
    assert_int_equal(nb0, nb1);
    assert_memory_equal(base_bytes, after, nb0);
    free(after);
    free(base_bytes);
    xa_encoder e0, e1;
    snprintf(p, sizeof p, "%s/final/encoder", full);
    assert_int_equal(xa_encoder_load(&e0, NULL, base, 0), XA_STATUS_OK);
    assert_int_equal(xa_encoder_load(&e1, NULL, p, 0), XA_STATUS_OK);
    assert_int_equal(e0.n_params, e1.n_params);
    for (int i = 0; i < XA_ENC_N_TENSORS; i++) {
        size_t moved = 0;
        for (size_t j = 0; j < e0.numel[i]; j++) moved += e0.t[i][j] != e1.t[i][j];
        if (!moved) fail_msg("encoder tensor %d did not change under full fine-tuning", i);
    }
    /* a whole base: the base's MLM head unchanged, the tokenizer beside it */
    xa_mlm_head h0, h1;
    assert_int_equal(xa_mlm_head_init(&h0, e0.cfg.C, e0.cfg.V, e0.cfg.eps, 1, 0), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_init(&h1, e0.cfg.C, e0.cfg.V, e0.cfg.eps, 1, 0), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_load(&h0, e0.cfg.arch, base), XA_STATUS_OK);
    assert_int_equal(xa_mlm_head_load(&h1, e0.cfg.arch, p), XA_STATUS_OK);
    assert_memory_equal(h0.params, h1.params, h0.n_params * sizeof(float));
    xa_mlm_head_free(&h0);
    xa_mlm_head_free(&h1);
    xa_encoder_free(&e0);
    xa_encoder_free(&e1);
    assert_same_file(base, p, "sentencepiece.bpe.model");

    /* the encoder with its head, no setup: the final weights are the best dev evaluation's (the
     * same dev score again), and they score the training messages above chance (1/4) */
    char head[4400];
    snprintf(head, sizeof head, "%s/final/head", full);
    xa_eval_metrics em;
    assert_int_equal(xa_eval_setup(p, tok, NULL, NULL, 0, NULL, NULL, head, dev, o.B, o.T, &em), XA_STATUS_OK);
    assert_true(fabs(em.accuracy - r.best_dev) < 1e-9);
    assert_int_equal(xa_eval_setup(p, tok, NULL, NULL, 0, NULL, NULL, head, train, o.B, o.T, &em), XA_STATUS_OK);
    print_message("full fine-tuning: train accuracy %.3f on %lld messages\n", em.accuracy, (long long)em.n);
    assert_int_equal(em.n, 32);
    assert_true(em.accuracy > 0.35);
    /* the base itself with that head scores differently: the encoder, not only the head, learned */
    xa_eval_metrics eb;
    assert_int_equal(xa_eval_setup(base, tok, NULL, NULL, 0, NULL, NULL, head, train, o.B, o.T, &eb), XA_STATUS_OK);
    assert_true(eb.accuracy != em.accuracy || eb.macro_f1 != em.macro_f1);

    /* stopped after 11 steps, resumed: the same bytes */
    snprintf(resumed, sizeof resumed, "%s", xt_tmp_path("ft-resumed"));
    xa_phase_opts b = o;
    b.stop_after = 11; /* after the first dev evaluation (best/ exists) and a checkpoint */
    assert_int_equal(xa_train_task(base, tok, resumed, &spec, &b, &r), XA_STATUS_OK);
    assert_int_equal(r.steps_done, 11);
    assert_false(r.finished);
    b.stop_after = 0;
    b.resume = 1;
    assert_int_equal(xa_train_task(base, tok, resumed, &spec, &b, &r), XA_STATUS_OK);
    assert_true(r.finished);
    char fa[4400], fb[4400];
    snprintf(fa, sizeof fa, "%s/final", full);
    snprintf(fb, sizeof fb, "%s/final", resumed);
    assert_same_file(fa, fb, "encoder/model.safetensors");
    assert_same_file(fa, fb, "head/model_head.safetensors");
    assert_same_file(full, resumed, "dev.json");
    /* resuming with another learning rate is refused (the checkpoint identity) */
    xa_phase_opts c = o;
    c.lr = 1e-3;
    c.resume = 1;
    assert_int_equal(xa_train_task(base, tok, resumed, &spec, &c, &r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("lr");

    /* full fine-tuning takes no setup or adapters */
    xa_task_spec bad = spec;
    bad.setup = "Stack(en, pkg)";
    assert_int_equal(xa_train_task(base, tok, xt_tmp_path("ft-bad"), &bad, &o, &r), XA_STATUS_USAGE);
    xt_assert_error_mentions("train_base");
    fclose(po.progress);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlm_packing_and_masking),
        cmocka_unit_test(test_pretrain_lowers_loss),
        cmocka_unit_test(test_resume_is_identical),
        cmocka_unit_test(test_pretrain_pairs),
        cmocka_unit_test(test_damaged_checkpoint),
        cmocka_unit_test(test_ckpt_swap_and_recover),
        cmocka_unit_test(test_ckpt_identity),
        cmocka_unit_test(test_trainer_skeleton),
        cmocka_unit_test(test_lang_align),
        cmocka_unit_test(test_full_finetune),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
