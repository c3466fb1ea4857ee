/* Tests of framework/config (YAML recipes -> xa_recipe) and of the recipe-override setters of io
 * (xa_bn_config_set, xa_fusion_config_set). Fixtures are written by the tests into the scratch
 * directory, line by line, so every asserted "file:line:col" can be read off the fixture text.
 * Covered: a full recipe, per-kind defaults, extends (deep merge, list replace, relative paths,
 * nesting, a cycle, a missing file), --set (scalars, nested keys, phases by kind and index, lists,
 * new keys, adapter overrides) and its errors, one test per kind of mistake with its exact
 * position, the write -> load round trip, xa_cfg_expand and the io setters. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/core.h"
#include "io/hfjson.h"

/* ---- helpers */

/* Write text to xt_tmp_dir()/rel, creating the directories on the way; returns the path. */
static const char *fixture(const char *rel, const char *text) {
    const char *path = xt_tmp_path(rel);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *s = dir + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) fail_msg("mkdir %s", dir);
            *s = '/';
        }
    }
    xt_write_file(path, text, strlen(text));
    return path;
}

/* The absolute form of xt_tmp_dir()/rel as config resolves it. */
static const char *abs_tmp(const char *rel) {
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ % 4];
    const char *dir = xt_tmp_dir();
    if (dir[0] == '/') {
        snprintf(p, sizeof buf[0], "%s/%s", dir, rel);
    } else {
        char cwd[2048];
        assert_non_null(getcwd(cwd, sizeof cwd));
        snprintf(p, sizeof buf[0], "%s/%s/%s", cwd, dir, rel);
    }
    return p;
}

static xa_recipe *recipe_new(void) {
    xa_recipe *r = calloc(1, sizeof *r);
    assert_non_null(r);
    return r;
}

/* Load expecting success; prints the error record otherwise. */
static void load_ok(xa_recipe *r, const char *path, const char *const *sets, int n_sets) {
    xa_status st = xa_recipe_load(r, path, sets, n_sets);
    if (st) {
        char buf[4096];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("xa_recipe_load(%s) failed: %s", path, buf);
    }
}

/* Load expecting status `want`; returns nothing, the error record stays for the assertions. */
static void load_fails(const char *path, const char *const *sets, int n_sets, xa_status want) {
    xa_recipe *r = recipe_new();
    xa_status st = xa_recipe_load(r, path, sets, n_sets);
    if (st != want) {
        char buf[4096];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("xa_recipe_load(%s): status %s, wanted %s; %s", path, xa_status_name(st),
                 xa_status_name(want), st ? buf : "");
    }
    free(r);
}

/* Load a one-file recipe text, expecting a CONFIG error that mentions every needle. */
static void assert_recipe_error(const char *name, const char *text, xa_status want,
                                const char *const *needles) {
    const char *path = fixture(name, text);
    load_fails(path, NULL, 0, want);
    for (; *needles; needles++)
        xt_assert_error_mentions(*needles);
}

static void assert_adapter_equal(const xa_cfg_adapter *a, const xa_cfg_adapter *b) {
    assert_int_equal(a->present, b->present);
    assert_string_equal(a->preset, b->preset);
    assert_int_equal(a->n_overrides, b->n_overrides);
    for (int i = 0; i < a->n_overrides; i++) {
        assert_string_equal(a->overrides[i].key, b->overrides[i].key);
        assert_string_equal(a->overrides[i].json, b->overrides[i].json);
    }
}

static void assert_phase_equal(const xa_cfg_phase *a, const xa_cfg_phase *b) {
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->steps, b->steps);
    assert_true(a->epochs == b->epochs);
    assert_int_equal(a->batch_size, b->batch_size);
    assert_int_equal(a->seq_len, b->seq_len);
    assert_true(a->lr == b->lr);
    assert_int_equal(a->warmup_steps, b->warmup_steps);
    assert_true(a->warmup_ratio == b->warmup_ratio);
    assert_true(a->weight_decay == b->weight_decay);
    assert_true(a->clip == b->clip);
    assert_int_equal(a->eval_every, b->eval_every);
    assert_int_equal(a->early_stopping, b->early_stopping);
    assert_int_equal(a->reference_seeds, b->reference_seeds);
    assert_int_equal(a->class_weights, b->class_weights);
    assert_int_equal(a->n_class_weights, b->n_class_weights);
    for (int i = 0; i < a->n_class_weights; i++)
        assert_true(a->class_weight_list[i] == b->class_weight_list[i]);
    assert_int_equal(a->ckpt_every, b->ckpt_every);
    assert_int_equal(a->log_every, b->log_every);
    assert_int_equal(a->adapter_drop, b->adapter_drop);
    assert_int_equal(a->max_docs, b->max_docs);
    assert_true(a->mlm_prob == b->mlm_prob);
    assert_int_equal(a->whole_word_mask, b->whole_word_mask);
    assert_int_equal(a->seed, b->seed);
    assert_int_equal(a->n_languages, b->n_languages);
    for (int i = 0; i < a->n_languages; i++)
        assert_string_equal(a->languages[i], b->languages[i]);
    assert_int_equal(a->n_setups, b->n_setups);
    for (int i = 0; i < a->n_setups; i++)
        assert_string_equal(a->setups[i], b->setups[i]);
    assert_string_equal(a->lr_scheduler, b->lr_scheduler);
    assert_true(a->adam_beta1 == b->adam_beta1 && a->adam_beta2 == b->adam_beta2 && a->adam_epsilon == b->adam_epsilon);
    assert_true(a->hidden_dropout == b->hidden_dropout && a->attention_dropout == b->attention_dropout);
    assert_int_equal(a->weight_decay_all, b->weight_decay_all);
    assert_int_equal(a->save_total_limit, b->save_total_limit);
    assert_int_equal(a->grad_accum, b->grad_accum);
    assert_int_equal(a->gradient_checkpointing, b->gradient_checkpointing);
    assert_string_equal(a->metric_for_best_model, b->metric_for_best_model);
    assert_int_equal(a->eval_batches, b->eval_batches);
}

/* Every field but the pos fields (and path, the file each was read from). */
static void assert_recipe_equal(const xa_recipe *a, const xa_recipe *b) {
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->output, b->output);
    assert_int_equal(a->seed, b->seed);
    assert_int_equal(a->n_seeds, b->n_seeds);
    for (int i = 0; i < a->n_seeds; i++)
        assert_int_equal(a->seeds[i], b->seeds[i]);
    assert_int_equal(a->threads, b->threads);
    assert_string_equal(a->base, b->base);
    assert_string_equal(a->tokenizer, b->tokenizer);
    assert_string_equal(a->arch, b->arch);
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_string_equal(a->source, b->source);
    assert_int_equal(a->n_targets, b->n_targets);
    for (int i = 0; i < a->n_targets; i++)
        assert_string_equal(a->targets[i], b->targets[i]);
    assert_string_equal(a->pretrain_corpus, b->pretrain_corpus);
    assert_string_equal(a->mlm_corpus, b->mlm_corpus);
    assert_string_equal(a->task_name, b->task_name);
    assert_int_equal(a->task_type, b->task_type);
    assert_string_equal(a->task_train, b->task_train);
    assert_string_equal(a->task_dev, b->task_dev);
    assert_string_equal(a->task_test, b->task_test);
    assert_string_equal(a->task_target_train, b->task_target_train);
    assert_adapter_equal(&a->lang_adapter, &b->lang_adapter);
    assert_adapter_equal(&a->task_adapter, &b->task_adapter);
    assert_adapter_equal(&a->fusion, &b->fusion);
    assert_int_equal(a->n_phases, b->n_phases);
    for (int i = 0; i < a->n_phases; i++)
        assert_phase_equal(&a->phases[i], &b->phases[i]);
}

static const char *pos_str(const xa_cfg_pos *p) {
    static char buf[4][2048];
    static int slot;
    return xa_cfg_pos_format(p, buf[slot++ % 4], sizeof buf[0]);
}

/* ---- fixtures */

/* config.h's example, in r/recipe.yaml (line numbers on the right are the file's). */
static const char k_full[] =
    "name: quickstart\n"                                                   /* 1 */
    "output: ../out/quickstart\n"                                          /* 2 */
    "seed: 7\n"                                                            /* 3 */
    "seeds: [1, 2, 3]\n"                                                   /* 4 */
    "threads: 2\n"                                                         /* 5 */
    "model:\n"                                                             /* 6 */
    "  base: ../out/quickstart/base\n"                                     /* 7 */
    "  arch: tiny\n"                                                       /* 8 */
    "  vocab_size: 8000\n"                                                 /* 9 */
    "languages: {source: en, targets: [de, fr]}\n"                         /* 10 */
    "data:\n"                                                              /* 11 */
    "  pretrain: ../data/multi.txt\n"                                      /* 12 */
    "  mlm: ../data/mono/{lang}.txt\n"                                     /* 13 */
    "  task:\n"                                                            /* 14 */
    "    name: topic\n"                                                    /* 15 */
    "    type: tagging\n"                                                  /* 16 */
    "    train: ../data/topic/en.train.tsv\n"                              /* 17 */
    "    dev: ../data/topic/en.dev.tsv\n"                                  /* 18 */
    "    test: /abs/topic/{lang}.test.tsv\n"                               /* 19 */
    "adapters:\n"                                                          /* 20 */
    "  lang: {preset: seq_bn_inv, reduction_factor: 2, leave_out: [11]}\n" /* 21 */
    "  task: {preset: seq_bn, reduction_factor: {default: 16, '11': 2}, non_linearity: gelu}\n"
    "  fusion: {preset: dynamic, dropout_prob: 0.1}\n"                    /* 23 */
    "phases:\n"                                                           /* 24 */
    "  - pretrain: {steps: 300, batch_size: 16, seq_len: 64, lr: 5e-4}\n" /* 25 */
    "  - lang: {steps: 200, batch_size: 8, seq_len: 64, lr: 1e-4, languages: [de]}\n"
    "  - task: {epochs: 3, batch_size: 16, seq_len: 64, lr: 1e-4, eval_every: 50, "
    "early_stopping: 3, reference_seeds: 1}\n"                   /* 27 */
    "  - eval: {setups: [task_only, src_stack, madx, madx2]}\n"; /* 28 */

/* A recipe with every phase kind and no parameters: all defaults. */
static const char k_defaults[] = "name: d\n"
                                 "output: out\n"
                                 "model: {base: /models/xlmr}\n"
                                 "languages: {source: en}\n"
                                 "data:\n"
                                 "  pretrain: p.txt\n"
                                 "  mlm: m/{lang}.txt\n"
                                 "  task: {train: t.tsv, dev: d.tsv, test: '{lang}.tsv'}\n"
                                 "adapters: {lang: {preset: seq_bn_inv}, task: {preset: seq_bn}}\n"
                                 "phases:\n"
                                 "  - pretrain\n"
                                 "  - lang:\n"
                                 "  - task: {}\n"
                                 "  - fusion: null\n"
                                 "  - eval\n";

/* The smallest valid recipe, used by the mistake tests with one line changed. */
#define MIN_HEAD "name: x\noutput: out\nmodel:\n  base: m\nlanguages: {source: en}\n"

/* ---- a full recipe and the defaults */

static void test_full_recipe(void **state) {
    (void)state;
    const char *path = fixture("r/recipe.yaml", k_full);
    xa_recipe *r = recipe_new();
    load_ok(r, path, NULL, 0);
    assert_string_equal(r->path, path);
    assert_string_equal(r->name, "quickstart");
    assert_string_equal(r->output, abs_tmp("out/quickstart"));
    assert_int_equal(r->seed, 7);
    assert_int_equal(r->n_seeds, 3);
    assert_int_equal(r->seeds[2], 3);
    assert_int_equal(r->threads, 2);
    assert_string_equal(r->base, abs_tmp("out/quickstart/base"));
    assert_string_equal(r->tokenizer, abs_tmp("out/quickstart/base/sentencepiece.bpe.model"));
    assert_string_equal(r->arch, "tiny");
    assert_int_equal(r->vocab_size, 8000);
    assert_string_equal(r->source, "en");
    assert_int_equal(r->n_targets, 2);
    assert_string_equal(r->targets[0], "de");
    assert_string_equal(r->targets[1], "fr");
    assert_string_equal(r->pretrain_corpus, abs_tmp("data/multi.txt"));
    assert_string_equal(r->mlm_corpus, abs_tmp("data/mono/{lang}.txt"));
    assert_string_equal(r->task_name, "topic");
    assert_int_equal(r->task_type, XA_TASK_TAGGING);
    assert_string_equal(r->task_train, abs_tmp("data/topic/en.train.tsv"));
    assert_string_equal(r->task_dev, abs_tmp("data/topic/en.dev.tsv"));
    assert_string_equal(r->task_test, "/abs/topic/{lang}.test.tsv");
    assert_string_equal(r->task_target_train, "");

    /* adapters: preset + overrides as JSON text with the key's position */
    assert_true(r->lang_adapter.present);
    assert_string_equal(r->lang_adapter.preset, "seq_bn_inv");
    assert_int_equal(r->lang_adapter.n_overrides, 2);
    assert_string_equal(r->lang_adapter.overrides[0].key, "reduction_factor");
    assert_string_equal(r->lang_adapter.overrides[0].json, "2");
    assert_string_equal(r->lang_adapter.overrides[1].key, "leave_out");
    assert_string_equal(r->lang_adapter.overrides[1].json, "[11]");
    char want[4096];
    snprintf(want, sizeof want, "%s:21:30", path);
    assert_string_equal(pos_str(&r->lang_adapter.overrides[0].pos), want);
    snprintf(want, sizeof want, "%s:21:3", path);
    assert_string_equal(pos_str(&r->lang_adapter.pos), want);
    assert_string_equal(r->task_adapter.overrides[0].json, "{\"default\": 16, \"11\": 2}");
    assert_string_equal(r->task_adapter.overrides[1].json, "\"gelu\"");
    assert_true(r->fusion.present);
    assert_string_equal(r->fusion.preset, "dynamic");
    assert_string_equal(r->fusion.overrides[0].json, "0.1");

    /* the overrides apply through io's setters */
    xa_bn_config bn;
    assert_int_equal(xa_bn_config_preset(&bn, r->task_adapter.preset), XA_STATUS_OK);
    for (int i = 0; i < r->task_adapter.n_overrides; i++) {
        const xa_cfg_kv *kv = &r->task_adapter.overrides[i];
        assert_int_equal(xa_bn_config_set(&bn, kv->key, kv->json, pos_str(&kv->pos)), XA_STATUS_OK);
    }
    assert_int_equal(bn.has_reduction_factor_map, 1);
    assert_true(xa_bn_config_reduction_factor(&bn, 11) == 2.0);
    assert_true(xa_bn_config_reduction_factor(&bn, 3) == 16.0);
    assert_string_equal(bn.non_linearity, "gelu"); /* no legacy rename for overrides */
    xa_fusion_config fu;
    assert_int_equal(xa_fusion_config_preset(&fu, r->fusion.preset), XA_STATUS_OK);
    assert_int_equal(
        xa_fusion_config_set(&fu, r->fusion.overrides[0].key, r->fusion.overrides[0].json, NULL),
        XA_STATUS_OK);
    assert_true(fu.dropout_prob == 0.1);

    /* phases */
    assert_int_equal(r->n_phases, 4);
    const xa_cfg_phase *p = r->phases;
    assert_int_equal(p[0].kind, XA_PHASE_PRETRAIN);
    assert_int_equal(p[0].steps, 300);
    assert_int_equal(p[0].seq_len, 64);
    assert_true(p[0].lr == 5e-4);
    assert_true(p[0].mlm_prob == 0.15);
    assert_int_equal(p[0].seed, 7);
    snprintf(want, sizeof want, "%s:25:5", path);
    assert_string_equal(pos_str(&p[0].pos), want);
    assert_int_equal(p[1].kind, XA_PHASE_LANG);
    assert_int_equal(p[1].batch_size, 8);
    assert_int_equal(p[1].n_languages, 1);
    assert_string_equal(p[1].languages[0], "de");
    assert_int_equal(p[2].kind, XA_PHASE_TASK);
    assert_int_equal(p[2].steps, 0);
    assert_true(p[2].epochs == 3.0);
    assert_int_equal(p[2].eval_every, 50);
    assert_int_equal(p[2].early_stopping, 3);
    assert_int_equal(p[2].reference_seeds, 1);
    assert_true(p[2].warmup_ratio == 0.06);
    assert_int_equal(p[3].kind, XA_PHASE_EVAL);
    assert_int_equal(p[3].n_setups, 4);
    assert_string_equal(p[3].setups[3], "madx2");
    assert_int_equal(xa_recipe_phase(r, XA_PHASE_TASK), 2);
    assert_int_equal(xa_recipe_phase(r, XA_PHASE_FUSION), -1);
    free(r);
}

static void test_defaults(void **state) {
    (void)state;
    const char *path = fixture("defaults/recipe.yaml", k_defaults);
    xa_recipe *r = recipe_new();
    load_ok(r, path, NULL, 0);
    assert_int_equal(r->seed, 42);
    assert_int_equal(r->n_seeds, 1);
    assert_int_equal(r->seeds[0], 42);
    assert_int_equal(r->threads, 0);
    assert_string_equal(r->base, "/models/xlmr");
    assert_string_equal(r->tokenizer, "/models/xlmr/sentencepiece.bpe.model");
    assert_string_equal(r->arch, "tiny");
    assert_int_equal(r->vocab_size, 8000);
    assert_int_equal(r->n_targets, 0);
    assert_string_equal(r->task_name, "task");
    assert_int_equal(r->task_type, XA_TASK_CLASSIFICATION);
    assert_string_equal(r->task_test, abs_tmp("defaults/{lang}.tsv"));
    assert_false(r->fusion.present);
    assert_int_equal(r->lang_adapter.n_overrides, 0);
    assert_int_equal(r->n_phases, 5);
    for (int i = 0; i < 5; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        assert_int_equal(p->kind, (xa_phase_kind)i);
        assert_int_equal(p->steps, i <= XA_PHASE_LANG ? 1000 : 0);
        assert_true(p->lr == (i == XA_PHASE_PRETRAIN ? 5e-4 : 1e-4));
        assert_true(p->epochs == 3.0);
        assert_int_equal(p->batch_size, 16);
        assert_int_equal(p->seq_len, 128);
        assert_int_equal(p->warmup_steps, 0);
        assert_true(p->warmup_ratio == 0.06);
        assert_true(p->weight_decay == 0.01);
        assert_true(p->clip == 1.0);
        assert_int_equal(p->eval_every, 0);
        assert_int_equal(p->early_stopping, 0);
        assert_int_equal(p->reference_seeds, 0);
        assert_int_equal(p->ckpt_every, 200);
        assert_int_equal(p->log_every, 10);
        assert_int_equal(p->adapter_drop, 0);
        assert_int_equal(p->max_docs, 0);
        assert_true(p->mlm_prob == 0.15);
        assert_int_equal(p->whole_word_mask, 0);
        assert_int_equal(p->seed, 42);
        assert_int_equal(p->n_languages, 0);
        assert_int_equal(p->n_setups, i == XA_PHASE_EVAL ? 3 : 0);
    }
    assert_string_equal(r->phases[4].setups[0], "task_only");
    assert_string_equal(r->phases[4].setups[1], "src_stack");
    assert_string_equal(r->phases[4].setups[2], "madx");
    free(r);
}

/* ---- extends */

static void write_extends_tree(void) {
    fixture("ext/configs/base.yaml", "output: ../out/base\n"
                                     "seed: 5\n"
                                     "model:\n"
                                     "  base: ../models/xlmr\n"
                                     "  vocab_size: 1000\n"
                                     "languages: {source: en, targets: [de, fr, sw]}\n"
                                     "data:\n"
                                     "  mlm: mono/{lang}.txt\n");
    fixture("ext/configs/train.yaml", "adapters:\n"
                                      "  lang: {preset: seq_bn_inv, reduction_factor: 2}\n"
                                      "phases:\n"
                                      "  - lang: {steps: 10}\n");
    fixture("ext/recipes/exp.yaml", "extends: [../configs/base.yaml, ../configs/train.yaml]\n"
                                    "name: exp\n"
                                    "model:\n"
                                    "  arch: small\n"
                                    "languages: {targets: [de]}\n"
                                    "adapters:\n"
                                    "  lang: {leave_out: [0]}\n");
    fixture("ext/nested.yaml", "extends: recipes/exp.yaml\n"
                               "name: nested\n"
                               "data: {pretrain: corpus.txt}\n");
}

static void test_extends_merge(void **state) {
    (void)state;
    write_extends_tree();
    xa_recipe *r = recipe_new();
    load_ok(r, xt_tmp_path("ext/recipes/exp.yaml"), NULL, 0);
    assert_string_equal(r->name, "exp");
    /* paths resolve against the file that declared them */
    assert_string_equal(r->output, abs_tmp("ext/out/base"));
    assert_string_equal(r->base, abs_tmp("ext/models/xlmr"));
    assert_string_equal(r->mlm_corpus, abs_tmp("ext/configs/mono/{lang}.txt"));
    /* mappings deep-merged: model keeps base and vocab_size, gets arch */
    assert_string_equal(r->arch, "small");
    assert_int_equal(r->vocab_size, 1000);
    assert_int_equal(r->seed, 5);
    /* lists replaced; the mapping around them merged */
    assert_string_equal(r->source, "en");
    assert_int_equal(r->n_targets, 1);
    assert_string_equal(r->targets[0], "de");
    /* the second base contributes, and the recipe adds to the adapter mapping */
    assert_string_equal(r->lang_adapter.preset, "seq_bn_inv");
    assert_int_equal(r->lang_adapter.n_overrides, 2);
    assert_string_equal(r->lang_adapter.overrides[1].key, "leave_out");
    assert_non_null(strstr(pos_str(&r->lang_adapter.overrides[0].pos), "configs/train.yaml:2:30"));
    assert_non_null(strstr(pos_str(&r->lang_adapter.overrides[1].pos), "recipes/exp.yaml:7:10"));
    assert_int_equal(r->n_phases, 1);
    assert_int_equal(r->phases[0].steps, 10);
    assert_non_null(strstr(pos_str(&r->phases[0].pos), "configs/train.yaml:4:5"));

    /* extends of extends: the path of each level is relative to its own file */
    load_ok(r, xt_tmp_path("ext/nested.yaml"), NULL, 0);
    assert_string_equal(r->name, "nested");
    assert_string_equal(r->pretrain_corpus, abs_tmp("ext/corpus.txt"));
    assert_string_equal(r->arch, "small");
    assert_string_equal(r->output, abs_tmp("ext/out/base"));
    free(r);
}

static void test_extends_cycle(void **state) {
    (void)state;
    fixture("cycle/a.yaml", "extends: b.yaml\nname: a\n");
    fixture("cycle/b.yaml", "name: b\nextends: a.yaml\n");
    load_fails(xt_tmp_path("cycle/a.yaml"), NULL, 0, XA_STATUS_CONFIG);
    xt_assert_error_mentions("b.yaml:2:10");
    xt_assert_error_mentions("extends cycle");
    /* a file that extends itself */
    fixture("cycle/self.yaml", "name: s\nextends: [./self.yaml]\n");
    load_fails(xt_tmp_path("cycle/self.yaml"), NULL, 0, XA_STATUS_CONFIG);
    xt_assert_error_mentions("self.yaml:2:11");
}

static void test_extends_missing_file(void **state) {
    (void)state;
    fixture("missing/recipe.yaml", "name: x\nextends: ../nope/base.yaml\n");
    load_fails(xt_tmp_path("missing/recipe.yaml"), NULL, 0, XA_STATUS_CONFIG);
    xt_assert_error_mentions("missing/recipe.yaml:2:10");
    xt_assert_error_mentions("'../nope/base.yaml' not found");
    /* the absolute path it tried, and a hint for copied recipes */
    xt_assert_error_mentions("tried /");
    xt_assert_error_mentions("/nope/base.yaml");
    xt_assert_error_mentions("copied recipe");
    /* the recipe itself missing */
    load_fails(xt_tmp_path("missing/none.yaml"), NULL, 0, XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("none.yaml");
    /* extends must be a path */
    fixture("missing/bad.yaml", "name: x\nextends: {a: 1}\n");
    load_fails(xt_tmp_path("missing/bad.yaml"), NULL, 0, XA_STATUS_CONFIG);
    xt_assert_error_mentions("bad.yaml:2:10");
}

/* ---- --set */

static void test_set_overrides(void **state) {
    (void)state;
    const char *path = fixture("set/recipe.yaml", k_full);
    const char *sets[] = {
        "seed=9",                               /* scalar */
        "name=other name",                      /* string with a space */
        "model.vocab_size=500",                 /* nested */
        "phases.task.lr=3e-4",                  /* phase by kind */
        "phases.1.steps=50",                    /* phase by index: its params */
        "phases.3.eval.setups=[madx]",          /* by index and kind */
        "languages.targets=[sw, yo]",           /* a list value */
        "data.task.target_train=tt/{lang}.tsv", /* a key the file omits; relative to cwd */
        "adapters.lang.reduction_factor=4",     /* adapter override replaced */
        "adapters.task.dropout=0.1",            /* adapter override added */
        "phases.lang.languages=[sw]",
    };
    xa_recipe *r = recipe_new();
    load_ok(r, path, sets, (int)(sizeof sets / sizeof *sets));
    assert_int_equal(r->seed, 9);
    assert_int_equal(r->phases[0].seed, 9); /* the phase default follows the recipe seed */
    assert_string_equal(r->name, "other name");
    assert_int_equal(r->vocab_size, 500);
    assert_true(r->phases[2].lr == 3e-4);
    assert_int_equal(r->phases[2].eval_every, 50); /* the rest of the phase kept */
    assert_int_equal(r->phases[1].steps, 50);
    assert_int_equal(r->phases[3].n_setups, 1);
    assert_string_equal(r->phases[3].setups[0], "madx");
    assert_int_equal(r->n_targets, 2);
    assert_string_equal(r->targets[1], "yo");
    char cwd[2048], want[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/tt/{lang}.tsv", cwd);
    assert_string_equal(r->task_target_train, want);
    assert_string_equal(r->lang_adapter.overrides[0].json, "4");
    assert_string_equal(pos_str(&r->lang_adapter.overrides[0].pos),
                        "--set 'adapters.lang.reduction_factor=4'");
    assert_int_equal(r->task_adapter.n_overrides, 3);
    assert_string_equal(r->task_adapter.overrides[2].key, "dropout");
    assert_string_equal(r->task_adapter.overrides[2].json, "0.1");

    /* --set into a phase without params, and a new key in an empty section */
    const char *path2 = fixture("set/defaults.yaml", k_defaults);
    const char *sets2[] = {"phases.eval.batch_size=4", "phases.lang.mlm_prob=0.2",
                           "phases.fusion.epochs=1.5", "threads=3"};
    load_ok(r, path2, sets2, 4);
    assert_int_equal(r->phases[4].batch_size, 4);
    assert_true(r->phases[1].mlm_prob == 0.2);
    assert_true(r->phases[3].epochs == 1.5);
    assert_int_equal(r->threads, 3);
    free(r);
}

static void test_set_errors(void **state) {
    (void)state;
    const char *path = fixture("seterr/recipe.yaml", k_full);
    const char *unknown[] = {"model.bse=x"};
    load_fails(path, unknown, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("--set 'model.bse=x'");
    xt_assert_error_mentions("unknown key 'bse' in 'model'");
    xt_assert_error_mentions("did you mean 'base'?");

    const char *top[] = {"sed=3"};
    load_fails(path, top, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("--set 'sed=3'");
    xt_assert_error_mentions("did you mean 'seed'?");

    const char *param[] = {"phases.task.lrate=1"};
    load_fails(path, param, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("--set 'phases.task.lrate=1'");

    const char *no_eq[] = {"seed"};
    load_fails(path, no_eq, 1, XA_STATUS_USAGE);
    xt_assert_error_mentions("--set 'seed'");

    const char *bad_yaml[] = {"languages.targets=[de, fr"};
    load_fails(path, bad_yaml, 1, XA_STATUS_USAGE);
    xt_assert_error_mentions("--set 'languages.targets=[de, fr'");

    const char *empty_key[] = {"model..base=x"};
    load_fails(path, empty_key, 1, XA_STATUS_USAGE);

    const char *index[] = {"phases.7.lr=1"};
    load_fails(path, index, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("out of range");

    const char *kind[] = {"phases.fusion.lr=1"};
    load_fails(path, kind, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("'fusion'");

    const char *into_scalar[] = {"name.first=x"};
    load_fails(path, into_scalar, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("scalar");

    const char *bad_value[] = {"phases.task.batch_size=-2"};
    load_fails(path, bad_value, 1, XA_STATUS_CONFIG);
    xt_assert_error_mentions("--set 'phases.task.batch_size=-2'");

    const char *ext[] = {"extends=other.yaml"};
    load_fails(path, ext, 1, XA_STATUS_CONFIG);
}

/* ---- one test per kind of mistake */

static void test_err_unknown_top_key(void **state) {
    (void)state;
    const char *needles[] = {"top.yaml:3:1", "unknown key 'sede'", "did you mean 'seed'?",
                             "name, output", NULL};
    assert_recipe_error("err/top.yaml", "name: x\noutput: out\nsede: 4\n", XA_STATUS_CONFIG,
                        needles);
}

static void test_err_unknown_model_key(void **state) {
    (void)state;
    const char *needles[] = {"model.yaml:5:3", "unknown key 'vocab_sise' in 'model'",
                             "did you mean 'vocab_size'?", "base, tokenizer, arch, vocab_size",
                             NULL};
    assert_recipe_error("err/model.yaml",
                        "name: x\noutput: out\nmodel:\n  base: m\n  vocab_sise: 10\n",
                        XA_STATUS_CONFIG, needles);
}

static void test_err_unknown_phase_key(void **state) {
    (void)state;
    const char *needles[] = {"phasekey.yaml:9:23", "unknown key 'lrr' in 'phases[0].task'",
                             "did you mean 'lr'?", NULL};
    assert_recipe_error("err/phasekey.yaml",
                        MIN_HEAD "data: {task: {train: t, dev: d}}\n"                 /* 6 */
                                 "adapters: {lang: {preset: a}, task: {preset: b}}\n" /* 7 */
                                 "phases:\n"                                          /* 8 */
                                 "  - task: {epochs: 3, lrr: 0.1}\n",                 /* 9 */
                        XA_STATUS_CONFIG, needles);
    /* a key that exists, but not for this kind of phase */
    const char *needles2[] = {"phasekind.yaml:9:12", "unknown key 'setups' in 'phases[0].lang'",
                              "a parameter of eval phases", NULL};
    assert_recipe_error("err/phasekind.yaml",
                        MIN_HEAD "data: {mlm: m}\nadapters: {lang: {preset: a}}\n"
                                 "phases:\n  - lang: {setups: [madx]}\n",
                        XA_STATUS_CONFIG, needles2);
    const char *needles3[] = {"refkind.yaml:9:12", "unknown key 'reference_seeds' in 'phases[0].lang'",
                              "a parameter of task phases", NULL};
    assert_recipe_error("err/refkind.yaml",
                        MIN_HEAD "data: {mlm: m}\nadapters: {lang: {preset: a}}\n"
                                 "phases:\n  - lang: {reference_seeds: 1}\n",
                        XA_STATUS_CONFIG, needles3);
}

static void test_err_wrong_type(void **state) {
    (void)state;
    const char *needles[] = {"type.yaml:8:24", "'phases[0].eval.batch_size' is 'sixteen'",
                             "an integer in [1, 1048576]", NULL};
    assert_recipe_error("err/type.yaml",
                        MIN_HEAD
                        "data: {task: {test: t}}\nphases:\n  - eval: {batch_size: sixteen}\n",
                        XA_STATUS_CONFIG, needles);
    /* a scalar where a list is required */
    const char *needles2[] = {"list.yaml:5:34", "'languages.targets' is 'de'", "[de]", NULL};
    assert_recipe_error(
        "err/list.yaml",
        "name: x\noutput: out\nmodel:\n  base: m\nlanguages: {source: en, targets: de}\n",
        XA_STATUS_CONFIG, needles2);
    /* a mapping where a section's scalar is required */
    const char *needles5[] = {"empty.yaml:1:7", "a non-empty name", NULL};
    assert_recipe_error("err/empty.yaml", "name: \"\"\n", XA_STATUS_CONFIG, needles5);
    const char *needles3[] = {"map.yaml:1:7", "'name' is a mapping", NULL};
    assert_recipe_error("err/map.yaml", "name: {a: 1}\n", XA_STATUS_CONFIG, needles3);
    /* a quoted number is a string */
    const char *needles4[] = {"quoted.yaml:6:7", "'seed' is '3'", NULL};
    assert_recipe_error("err/quoted.yaml", MIN_HEAD "seed: \"3\"\n", XA_STATUS_CONFIG, needles4);
}

static void test_err_negative_batch_size(void **state) {
    (void)state;
    const char *needles[] = {"neg.yaml:10:31", "'phases[0].pretrain.batch_size' is '-4'",
                             "an integer in [1, 1048576]", NULL};
    assert_recipe_error("err/neg.yaml",
                        MIN_HEAD "data:\n"                              /* 6 */
                                 "  pretrain: p.txt\n"                  /* 7 */
                                 "phases:\n"                            /* 8 */
                                 "  - pretrain:\n"                      /* 9 */
                                 "      {steps: 10, batch_size: -4}\n", /* 10 */
                        XA_STATUS_CONFIG, needles);
    /* lr must be positive, probabilities inside [0, 1) */
    const char *needles2[] = {"lr.yaml:8:20", "a number > 0", NULL};
    assert_recipe_error("err/lr.yaml",
                        MIN_HEAD "data: {pretrain: p}\nphases:\n  - pretrain: {lr: 0}\n",
                        XA_STATUS_CONFIG, needles2);
    const char *needles3[] = {"ratio.yaml:8:30", "a fraction in [0, 1)", NULL};
    assert_recipe_error("err/ratio.yaml",
                        MIN_HEAD
                        "data: {pretrain: p}\nphases:\n  - pretrain: {warmup_ratio: 1.0}\n",
                        XA_STATUS_CONFIG, needles3);
}

static void test_err_unknown_phase_kind(void **state) {
    (void)state;
    const char *needles[] = {"kind.yaml:7:5", "unknown phase kind 'tsk'", "did you mean 'task'?",
                             "pretrain, lang, task, fusion, eval", NULL};
    assert_recipe_error("err/kind.yaml", MIN_HEAD "phases:\n  - tsk: {epochs: 1}\n",
                        XA_STATUS_CONFIG, needles);
    /* two keys in one phase item: the params were not indented */
    const char *needles2[] = {"kind2.yaml:7:5", "several keys", NULL};
    assert_recipe_error("err/kind2.yaml", MIN_HEAD "phases:\n  - eval:\n    batch_size: 4\n",
                        XA_STATUS_CONFIG, needles2);
}

static void test_err_unknown_task_type(void **state) {
    (void)state;
    const char *needles[] = {"task.yaml:9:11", "'data.task.type' is 'taging'",
                             "classification, tagging, pair_classification, multiple_choice or question_answering", "did you mean 'tagging'?", NULL};
    assert_recipe_error("err/task.yaml",
                        MIN_HEAD "data:\n  task:\n    name: ner\n    type: taging\n",
                        XA_STATUS_CONFIG, needles);
}

static void test_err_bad_language_code(void **state) {
    (void)state;
    const char *needles[] = {"lang.yaml:5:39", "'languages.targets' is 'fr!'", "A-Z a-z 0-9 _ -",
                             NULL};
    assert_recipe_error("err/lang.yaml",
                        "name: x\noutput: out\nmodel:\n  base: m\n"
                        "languages: {source: en, targets: [de, fr!]}\n",
                        XA_STATUS_CONFIG, needles);
    const char *needles2[] = {"lang2.yaml:6:11", "'languages.source'", NULL};
    assert_recipe_error("err/lang2.yaml",
                        "name: x\noutput: out\nmodel:\n  base: m\nlanguages:\n  source: "
                        "english_language_x\n",
                        XA_STATUS_CONFIG, needles2);
}

static void test_err_duplicate_target(void **state) {
    (void)state;
    const char *needles[] = {"dup.yaml:10:7", "duplicate language 'de'", NULL};
    assert_recipe_error("err/dup.yaml",
                        "name: x\noutput: out\nmodel:\n  base: m\n"
                        "languages:\n  source: en\n  targets:\n    - de\n    - fr\n    - de\n",
                        XA_STATUS_CONFIG, needles);
    /* the source among the targets */
    const char *needles2[] = {"src.yaml:5:39", "source language 'en' is also listed", NULL};
    assert_recipe_error("err/src.yaml",
                        "name: x\noutput: out\nmodel:\n  base: m\n"
                        "languages: {source: en, targets: [de, en]}\n",
                        XA_STATUS_CONFIG, needles2);
}

static void test_err_missing_required_key(void **state) {
    (void)state;
    const char *needles[] = {"req.yaml:1:1", "missing required key 'output'", NULL};
    assert_recipe_error("err/req.yaml", "name: x\nmodel: {base: m}\nlanguages: {source: en}\n",
                        XA_STATUS_CONFIG, needles);
    const char *needles2[] = {"req2.yaml:3:1", "missing required key 'model.base'", NULL};
    assert_recipe_error("err/req2.yaml",
                        "name: x\noutput: o\nmodel:\n  arch: tiny\nlanguages: {source: en}\n",
                        XA_STATUS_CONFIG, needles2);
    const char *needles3[] = {"req3.yaml:3:9", "required key 'model.base' is empty", NULL};
    assert_recipe_error("err/req3.yaml",
                        "name: x\noutput: o\nmodel: {base: }\nlanguages: {source: en}\n",
                        XA_STATUS_CONFIG, needles3);
    /* what a declared phase needs */
    const char *needles4[] = {"req4.yaml:8:5", "phase 'task' needs 'data.task.dev'", NULL};
    assert_recipe_error("err/req4.yaml",
                        MIN_HEAD "data: {task: {train: t}}\nphases:\n  - task: {epochs: 1}\n",
                        XA_STATUS_CONFIG, needles4);
    const char *needles5[] = {"req5.yaml:8:5", "phase 'lang' needs 'adapters.lang'", NULL};
    assert_recipe_error("err/req5.yaml", MIN_HEAD "data: {mlm: m}\nphases:\n  - lang: {}\n",
                        XA_STATUS_CONFIG, needles5);
    const char *needles6[] = {"req6.yaml:6:12", "required key 'adapters.lang.preset'", NULL};
    assert_recipe_error("err/req6.yaml", MIN_HEAD "adapters: {lang: {reduction_factor: 2}}\n",
                        XA_STATUS_CONFIG, needles6);
}

static void test_err_yaml_syntax(void **state) {
    (void)state;
    /* libyaml: "did not find expected ',' or ']'" for the unclosed flow list */
    const char *needles[] = {"syntax.yaml:5:41", "YAML syntax error",
                             "did not find expected ',' or ']'", NULL};
    assert_recipe_error("err/syntax.yaml",
                        "name: x\noutput: out\nmodel:\n  base: m\nlanguages: {source: en, "
                        "targets: [de, fr}\nphases: []\n",
                        XA_STATUS_CONFIG, needles);
    /* one place only: no second "line L, column C" */
    assert_null(strstr(xa_error_last()->what, "column"));
    /* a mapping value where none may start */
    const char *needles3[] = {"indent2.yaml:2:10", "mapping values are not allowed", NULL};
    assert_recipe_error("err/indent2.yaml", "name: x\noutput: o: p\n", XA_STATUS_CONFIG, needles3);
    /* duplicate keys are CONFIG errors at the second one */
    const char *needles4[] = {"dupkey.yaml:3:1", "duplicate key 'name' (first at line 1)", NULL};
    assert_recipe_error("err/dupkey.yaml", "name: x\noutput: o\nname: y\n", XA_STATUS_CONFIG,
                        needles4);
    /* an alias bomb is stopped, not expanded */
    const char *needles6[] = {"bomb.yaml", "too large", NULL};
    assert_recipe_error("err/bomb.yaml",
                        "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
                        XA_STATUS_CONFIG, needles6);
    /* the top level must be a mapping */
    const char *needles5[] = {"toplist.yaml:1:1", "is a list", NULL};
    assert_recipe_error("err/toplist.yaml", "- a\n- b\n", XA_STATUS_CONFIG, needles5);
}

static void test_err_adapter_override_unknown_key(void **state) {
    (void)state;
    const char *path = fixture("err/override.yaml",
                               MIN_HEAD "adapters:\n  lang: {preset: seq_bn_inv, reduciton_factor: "
                                        "2}\n");
    xa_recipe *r = recipe_new();
    load_ok(r, path, NULL, 0); /* config does not know BnConfig keys: io does */
    const xa_cfg_kv *kv = &r->lang_adapter.overrides[0];
    assert_string_equal(kv->key, "reduciton_factor");
    xa_bn_config c;
    assert_int_equal(xa_bn_config_preset(&c, r->lang_adapter.preset), XA_STATUS_OK);
    assert_int_equal(xa_bn_config_set(&c, kv->key, kv->json, pos_str(&kv->pos)), XA_STATUS_CONFIG);
    xt_assert_error_mentions("override.yaml:7:30");
    xt_assert_error_mentions("did you mean 'reduction_factor'?");
    /* nested values deeper than one level are refused by config itself */
    const char *needles[] = {"deep.yaml:7:33", "a list of scalars", NULL};
    assert_recipe_error("err/deep.yaml",
                        MIN_HEAD "adapters:\n  lang: {preset: a, leave_out: [[1]]}\n",
                        XA_STATUS_CONFIG, needles);
    free(r);
}

/* ---- round trip */

static void roundtrip(const char *src, const char *out, const char *const *sets, int n_sets) {
    xa_recipe *a = recipe_new(), *b = recipe_new();
    load_ok(a, src, sets, n_sets);
    assert_int_equal(xa_recipe_write(a, out), XA_STATUS_OK);
    load_ok(b, out, NULL, 0);
    assert_recipe_equal(a, b);
    /* writing the reloaded recipe gives the same text */
    char out2[4096];
    snprintf(out2, sizeof out2, "%s.2", out);
    assert_int_equal(xa_recipe_write(b, out2), XA_STATUS_OK);
    char *t1 = xt_read_file(out, NULL), *t2 = xt_read_file(out2, NULL);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    free(a);
    free(b);
}

static void test_write_load_roundtrip(void **state) {
    (void)state;
    const char *full = fixture("rt/recipe.yaml", k_full);
    /* the resolved file goes elsewhere: its absolute paths must not depend on where it lies */
    roundtrip(full, xt_tmp_path("rt-resolved.yaml"), NULL, 0);
    const char *sets[] = {"name='it''s \"q\" \\ back: slash'",
                          "seed=18446744073709551615",
                          "phases.task.lr=0.1",
                          "phases.task.weight_decay=1e-7",
                          "adapters.task.non_linearity=\"tanh\"",
                          "adapters.lang.leave_out=[0, 11]",
                          "adapters.fusion.value=false",
                          "adapters.lang.init_weights_seed=null",
                          "adapters.fusion.odd: key=1",
                          "adapters.task.scaling=.5"};
    roundtrip(full, xt_tmp_path("rt-set.yaml"), sets, (int)(sizeof sets / sizeof *sets));
    const char *defaults = fixture("rt/defaults.yaml", k_defaults);
    roundtrip(defaults, xt_tmp_path("rt-defaults.yaml"), NULL, 0);
    /* no temporary file is left behind */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", xt_tmp_path("rt-set.yaml"), (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
    /* writing into a missing directory fails cleanly */
    xa_recipe *r = recipe_new();
    load_ok(r, full, NULL, 0);
    assert_int_equal(xa_recipe_write(r, xt_tmp_path("no/such/dir/r.yaml")), XA_STATUS_IO);
    free(r);
}

/* The finetune phase (the full fine-tuning reference): the task phase's keys without the adapter
 * ones, its own lr default, the task data it needs (no adapters), and the resolved round trip. */
/* The trainer keys of issue 16: defaults, values, the resolved round trip, ill-typed values and
 * Hugging Face spellings (exit-2 errors with file:line:col and xadapt's key as the hint). */
static void test_trainer_keys(void **state) {
    (void)state;
#define TK_HEAD(type) MIN_HEAD "data: {mlm: m, task: {train: t, dev: d, type: " type "}}\n" \
                             "adapters: {lang: {preset: a}, task: {preset: b}}\nphases:\n"
    char text[2048];
    snprintf(text, sizeof text, "%s", TK_HEAD("classification"));
    strcat(text, "  - lang: {steps: 5}\n"
                 "  - task: {lr_scheduler: cosine, adam_beta1: 0.8, adam_beta2: 0.98, adam_epsilon: 1e-6,\n"
                 "           hidden_dropout: 0.0, attention_dropout: 0.2, weight_decay_all: false,\n"
                 "           save_total_limit: 3, metric_for_best_model: macro_f1, grad_accum: 4,\n"
                 "           gradient_checkpointing: true}\n");
    const char *path = fixture("tk/recipe.yaml", text);
    xa_recipe *r = recipe_new();
    load_ok(r, path, NULL, 0);
    const xa_cfg_phase *l = &r->phases[0], *t = &r->phases[1];
    assert_string_equal(l->lr_scheduler, "linear");
    assert_true(l->adam_beta1 == 0.9 && l->adam_beta2 == 0.999 && l->adam_epsilon == 1e-8);
    assert_true(l->hidden_dropout < 0 && l->attention_dropout < 0);
    assert_int_equal(l->weight_decay_all, 1);
    assert_int_equal(l->save_total_limit, 1);
    assert_int_equal(l->grad_accum, 1);
    assert_int_equal(l->gradient_checkpointing, 0);
    assert_int_equal(l->eval_batches, 8);
    assert_string_equal(t->lr_scheduler, "cosine");
    assert_true(t->adam_beta1 == 0.8 && t->adam_beta2 == 0.98 && t->adam_epsilon == 1e-6);
    assert_true(t->hidden_dropout == 0.0 && t->attention_dropout == 0.2);
    assert_int_equal(t->weight_decay_all, 0);
    assert_int_equal(t->save_total_limit, 3);
    assert_int_equal(t->grad_accum, 4);
    assert_int_equal(t->gradient_checkpointing, 1);
    assert_string_equal(t->metric_for_best_model, "macro_f1");
    roundtrip(path, xt_tmp_path("tk-resolved.yaml"), NULL, 0);
    char *resolved = xt_read_file(xt_tmp_path("tk-resolved.yaml"), NULL);
    assert_non_null(strstr(resolved, "      hidden_dropout: null\n")); /* the lang phase: unset */
    free(resolved);
    /* the default metric follows the task type */
    snprintf(text, sizeof text, "%s", TK_HEAD("tagging"));
    strcat(text, "  - task: {epochs: 1}\n");
    load_ok(r, fixture("tk/tagging.yaml", text), NULL, 0);
    assert_string_equal(r->phases[0].metric_for_best_model, "span_f1");
    free(r);

    /* errors: each at its value or key, exit code 2 (CONFIG) */
    static const struct {
        const char *phase, *needle, *hint;
    } bad[] = {
        {"lr_scheduler: cosin", "'phases[0].task.lr_scheduler' is 'cosin'", "did you mean 'cosine'?"},
        {"adam_beta1: 1.0", "'phases[0].task.adam_beta1' is '1.0'", "a number in [0, 1)"},
        {"adam_epsilon: tiny", "'phases[0].task.adam_epsilon' is 'tiny'", "a number in [0, 1]"},
        {"hidden_dropout: 1.5", "'phases[0].task.hidden_dropout' is '1.5'", "a probability in [0, 1)"},
        {"weight_decay_all: 1", "'phases[0].task.weight_decay_all' is '1'", "true or false"},
        {"save_total_limit: -1", "'phases[0].task.save_total_limit' is '-1'", "an integer >= 0"},
        {"metric_for_best_model: span_f1", "'phases[0].task.metric_for_best_model' is 'span_f1'",
         "accuracy, macro_f1 or loss (a classification task)"},
        {"learning_rate: 1e-4", "unknown key 'learning_rate' in 'phases[0].task'", "xadapt's key is 'lr'"},
        {"num_train_epochs: 3", "unknown key 'num_train_epochs'", "xadapt's key is 'epochs'"},
        {"max_steps: 100", "unknown key 'max_steps'", "xadapt's key is 'steps'"},
        {"per_device_train_batch_size: 8", "unknown key 'per_device_train_batch_size'", "xadapt's key is 'batch_size'"},
        {"lr_scheduler_type: cosine", "unknown key 'lr_scheduler_type'", "xadapt's key is 'lr_scheduler'"},
        {"gradient_accumulation_steps: 4", "unknown key 'gradient_accumulation_steps'", "xadapt's key is 'grad_accum'"},
        {"grad_accum: 0", "'phases[0].task.grad_accum' is '0'", "an integer >= 1 that divides batch_size"},
        {"gradient_checkpointing: 1", "'phases[0].task.gradient_checkpointing' is '1'", "true or false"},
        {"grad_accum: 3", "'phases[0].task.grad_accum' is 3, which does not divide batch_size 16",
         "micro-batches of batch_size / grad_accum rows"},
        {"eval_batches: 2", "unknown key 'eval_batches' in 'phases[0].task'", "a parameter of pretrain/lang phases"},
        /* the corpus line limit of the MLM phases: a task phase reads its whole task file */
        {"max_docs: 100", "unknown key 'max_docs' in 'phases[0].task'", "a parameter of pretrain/lang phases"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "%s", TK_HEAD("classification"));
        size_t k = strlen(text);
        snprintf(text + k, sizeof text - k, "  - task: {%s}\n", bad[i].phase);
        char name[64];
        snprintf(name, sizeof name, "tk/bad%zu.yaml", i);
        const char *needles[] = {"bad", ".yaml:9:12", bad[i].needle, bad[i].hint, NULL}; /* the key */
        const char *needles_v[] = {".yaml:9:", bad[i].needle, bad[i].hint, NULL}; /* its value */
        assert_recipe_error(name, text, XA_STATUS_CONFIG, strstr(bad[i].needle, "unknown key") ? needles : needles_v);
        assert_int_equal(xa_status_exit_code(XA_STATUS_CONFIG), 2);
    }
    /* eval_batches and weight_decay_all belong to their phases only */
    snprintf(text, sizeof text, "%s", TK_HEAD("classification"));
    strcat(text, "  - pretrain: {weight_decay_all: false}\n");
    const char *needles[] = {"unknown key 'weight_decay_all' in 'phases[0].pretrain'", NULL};
    assert_recipe_error("tk/wdpre.yaml", text, XA_STATUS_CONFIG, needles);
#undef TK_HEAD
}

static void test_finetune_phase(void **state) {
    (void)state;
    const char *path = fixture("ft/recipe.yaml", MIN_HEAD "data: {task: {train: t, dev: d, test: '{lang}.tsv'}}\n"
                                                          "phases:\n  - finetune:\n  - eval: {setups: [full_ft]}\n");
    xa_recipe *r = recipe_new();
    load_ok(r, path, NULL, 0);
    assert_int_equal(r->n_phases, 2);
    const xa_cfg_phase *p = &r->phases[0];
    assert_int_equal(p->kind, XA_PHASE_FINETUNE);
    assert_int_equal(xa_recipe_phase(r, XA_PHASE_FINETUNE), 0);
    assert_true(p->lr == 5e-5);
    assert_true(p->epochs == 3.0);
    assert_int_equal(p->steps, 0);
    assert_int_equal(p->batch_size, 16);
    assert_int_equal(p->early_stopping, 0);
    assert_string_equal(xa_phase_kind_name(XA_PHASE_FINETUNE), "finetune");
    xa_phase_kind k;
    assert_int_equal(xa_phase_kind_parse("finetune", &k), XA_STATUS_OK);
    assert_int_equal(k, XA_PHASE_FINETUNE);
    assert_string_equal(r->phases[1].setups[0], "full_ft");
    free(r);
    roundtrip(path, xt_tmp_path("ft-resolved.yaml"), NULL, 0);
    const char *sets[] = {"phases.finetune.lr=2e-5", "phases.finetune.early_stopping=4"};
    roundtrip(path, xt_tmp_path("ft-set.yaml"), sets, 2);

    /* adapter keys belong to the adapter phases */
    const char *n1[] = {"ftkey.yaml:8:27", "unknown key 'adapter_drop' in 'phases[0].finetune'",
                        "a parameter of pretrain/lang/task/fusion phases", NULL};
    assert_recipe_error("err/ftkey.yaml",
                        MIN_HEAD "data: {task: {train: t, dev: d}}\nphases:\n  - finetune: {epochs: 1, adapter_drop: 2}\n",
                        XA_STATUS_CONFIG, n1);
    const char *n2[] = {"unknown key 'reference_seeds' in 'phases[0].finetune'", "a parameter of task phases", NULL};
    assert_recipe_error("err/ftref.yaml",
                        MIN_HEAD "data: {task: {train: t, dev: d}}\nphases:\n  - finetune: {reference_seeds: 1}\n",
                        XA_STATUS_CONFIG, n2);
    const char *n3[] = {"unknown key 'lrr' in 'phases[0].finetune'", "did you mean 'lr'?", NULL};
    assert_recipe_error("err/ftlrr.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\nphases:\n  - finetune: {lrr: 1}\n",
                        XA_STATUS_CONFIG, n3);
    /* it selects on English dev, as the task phase: dev is required; adapters are not */
    const char *n4[] = {"ftdev.yaml:8:5", "phase 'finetune' needs 'data.task.dev'", NULL};
    assert_recipe_error("err/ftdev.yaml", MIN_HEAD "data: {task: {train: t}}\nphases:\n  - finetune: {epochs: 1}\n",
                        XA_STATUS_CONFIG, n4);
    const char *n5[] = {"phase kind 'finetun'", "did you mean 'finetune'?", NULL};
    assert_recipe_error("err/ftkind.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\nphases:\n  - finetun: {}\n",
                        XA_STATUS_CONFIG, n5);
}

/* class_weights (task, fusion, finetune): none by default, balanced, or a list; bad values name
 * the place and the forms allowed; the resolved file round-trips each form. */
static void test_class_weights(void **state) {
    (void)state;
    const char *path = fixture("cw/recipe.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\n"
                                                          "adapters: {lang: {preset: a}, task: {preset: b}}\n"
                                                          "phases:\n  - task: {class_weights: balanced}\n"
                                                          "  - fusion:\n  - finetune: {class_weights: [1, 0.5, 4e-1]}\n");
    xa_recipe *r = recipe_new();
    load_ok(r, path, NULL, 0);
    assert_int_equal(r->phases[0].class_weights, XA_CFG_CLASS_WEIGHTS_BALANCED);
    assert_int_equal(r->phases[1].class_weights, XA_CFG_CLASS_WEIGHTS_NONE);
    assert_int_equal(r->phases[2].class_weights, XA_CFG_CLASS_WEIGHTS_LIST);
    assert_int_equal(r->phases[2].n_class_weights, 3);
    assert_true(r->phases[2].class_weight_list[1] == 0.5 && r->phases[2].class_weight_list[2] == 0.4);
    free(r);
    roundtrip(path, xt_tmp_path("cw-resolved.yaml"), NULL, 0);
    char *text = xt_read_file(xt_tmp_path("cw-resolved.yaml"), NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "class_weights: balanced\n"));
    assert_non_null(strstr(text, "class_weights: none\n"));
    assert_non_null(strstr(text, "class_weights: [1, 0.5, 0.4]\n"));
    free(text);
    const char *sets[] = {"phases.task.class_weights=[2, 1]", "phases.finetune.class_weights=none"};
    r = recipe_new();
    load_ok(r, path, sets, 2);
    assert_int_equal(r->phases[0].class_weights, XA_CFG_CLASS_WEIGHTS_LIST);
    assert_int_equal(r->phases[0].n_class_weights, 2);
    assert_int_equal(r->phases[2].class_weights, XA_CFG_CLASS_WEIGHTS_NONE);
    free(r);

    const char *n1[] = {"bal.yaml:9:27", "'phases[0].task.class_weights' is", "did you mean 'balanced'?",
                        "none, balanced, or a list", NULL};
    assert_recipe_error("cw/bal.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\nadapters: {lang: {preset: a}, task: {preset: b}}\nphases:\n  - task: {class_weights: balance}\n",
                        XA_STATUS_CONFIG, n1);
    const char *n2[] = {"a finite weight >= 0", NULL};
    assert_recipe_error("cw/neg.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\nadapters: {lang: {preset: a}, task: {preset: b}}\nphases:\n  - task: {class_weights: [1, -2]}\n",
                        XA_STATUS_CONFIG, n2);
    const char *n3[] = {"at least one weight > 0", NULL};
    assert_recipe_error("cw/zero.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\nadapters: {lang: {preset: a}, task: {preset: b}}\nphases:\n  - task: {class_weights: [0, 0]}\n",
                        XA_STATUS_CONFIG, n3);
    const char *n4[] = {"unknown key 'class_weights' in 'phases[0].lang'", "a parameter of task/fusion/finetune phases", NULL};
    assert_recipe_error("cw/lang.yaml", MIN_HEAD "data: {mlm: m}\nadapters: {lang: {preset: a}}\nphases:\n  - lang: {class_weights: balanced}\n",
                        XA_STATUS_CONFIG, n4);
    const char *n5[] = {"'phases[0].task.class_weights' is", NULL};
    assert_recipe_error("cw/map.yaml", MIN_HEAD "data: {task: {train: t, dev: d}}\nadapters: {lang: {preset: a}, task: {preset: b}}\nphases:\n  - task: {class_weights: {a: 1}}\n",
                        XA_STATUS_CONFIG, n5);
}

/* ---- small API */

static void test_expand_and_pos(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(xa_cfg_expand(buf, sizeof buf, "data/{lang}/x.{lang}.txt", "de"),
                     XA_STATUS_OK);
    assert_string_equal(buf, "data/de/x.de.txt");
    assert_int_equal(xa_cfg_expand(buf, sizeof buf, "plain.txt", "de"), XA_STATUS_OK);
    assert_string_equal(buf, "plain.txt");
    assert_int_equal(xa_cfg_expand(buf, sizeof buf, "{lang", "de"), XA_STATUS_OK);
    assert_string_equal(buf, "{lang");
    assert_int_equal(xa_cfg_expand(buf, 8, "ab/{lang}.txt", "de"), XA_STATUS_USAGE);
    assert_string_equal(buf, "");
    assert_int_equal(xa_cfg_expand(buf, 10, "{lang}.txt", "zh"), XA_STATUS_OK); /* 6 + NUL */

    xa_cfg_pos p = {"recipe.yaml", 7, 5};
    assert_string_equal(xa_cfg_pos_format(&p, buf, sizeof buf), "recipe.yaml:7:5");
    xa_cfg_pos d = {"", 0, 0};
    assert_string_equal(xa_cfg_pos_format(&d, buf, sizeof buf), "default");

    xa_phase_kind k;
    assert_int_equal(xa_phase_kind_parse("fusion", &k), XA_STATUS_OK);
    assert_int_equal(k, XA_PHASE_FUSION);
    assert_string_equal(xa_phase_kind_name(XA_PHASE_EVAL), "eval");
    assert_int_equal(xa_phase_kind_parse("evl", &k), XA_STATUS_CONFIG);
    xt_assert_error_mentions("did you mean 'eval'?");
}

/* ---- io's setters */

static void test_bn_config_set(void **state) {
    (void)state;
    xa_bn_config c;
    assert_int_equal(xa_bn_config_preset(&c, "seq_bn"), XA_STATUS_OK);
    assert_int_equal(xa_bn_config_set(&c, "reduction_factor", "2", "r.yaml:1:1"), XA_STATUS_OK);
    assert_true(c.reduction_factor == 2.0);
    assert_int_equal(c.has_reduction_factor_map, 0);
    assert_int_equal(xa_bn_config_set(&c, "leave_out", "[11, 10]", "r.yaml:1:1"), XA_STATUS_OK);
    assert_int_equal(c.n_leave_out, 2);
    assert_int_equal(c.leave_out[1], 10);
    assert_int_equal(xa_bn_config_set(&c, "reduction_factor", "{\"default\": 16, \"11\": 2}", NULL),
                     XA_STATUS_OK);
    assert_int_equal(c.has_reduction_factor_map, 1);
    assert_true(xa_bn_config_reduction_factor(&c, 11) == 2.0);
    assert_true(xa_bn_config_reduction_factor(&c, 0) == 16.0);
    assert_int_equal(xa_bn_config_set(&c, "reduction_factor", "8", NULL), XA_STATUS_OK);
    assert_int_equal(c.has_reduction_factor_map, 0);
    assert_true(xa_bn_config_reduction_factor(&c, 11) == 8.0);
    assert_int_equal(xa_bn_config_set(&c, "non_linearity", "\"GELU\"", NULL), XA_STATUS_OK);
    assert_string_equal(c.non_linearity, "gelu");
    assert_int_equal(xa_bn_config_set(&c, "scaling", "\"learned\"", NULL), XA_STATUS_OK);
    assert_int_equal(c.scaling, XA_BN_SCALING_LEARNED);
    assert_int_equal(xa_bn_config_set(&c, "mh_adapter", "true", NULL), XA_STATUS_OK);
    assert_int_equal(c.mh_adapter, 1);
    assert_int_equal(xa_bn_config_set(&c, "phm_dim", "8", NULL), XA_STATUS_OK);
    assert_int_equal(c.phm_dim, 8);
    /* inv_adapter alone takes the presets' factor 2; a later override replaces it */
    assert_int_equal(xa_bn_config_set(&c, "inv_adapter", "\"nice\"", NULL), XA_STATUS_OK);
    assert_int_equal(c.inv_adapter, XA_BN_INV_NICE);
    assert_true(c.inv_adapter_reduction_factor == 2.0);
    assert_int_equal(xa_bn_config_set(&c, "inv_adapter_reduction_factor", "4", NULL), XA_STATUS_OK);
    assert_true(c.inv_adapter_reduction_factor == 4.0);

    /* errors leave c unchanged */
    xa_bn_config before;
    memcpy(&before, &c, sizeof c);
    assert_int_equal(xa_bn_config_set(&c, "reduciton_factor", "2", "r.yaml:12:7"),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("r.yaml:12:7");
    xt_assert_error_mentions("did you mean 'reduction_factor'?");
    assert_int_equal(xa_bn_config_set(&c, "r", "8", "r.yaml:1:1"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("LoRA");
    assert_int_equal(xa_bn_config_set(&c, "reduction_factor", "\"two\"", "r.yaml:3:4"),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("r.yaml:3:4");
    xt_assert_error_mentions("a positive number");
    assert_int_equal(xa_bn_config_set(&c, "mh_adapter", "1", NULL), XA_STATUS_CONFIG);
    xt_assert_error_mentions("true or false");
    assert_int_equal(xa_bn_config_set(&c, "dropout", "1.5", "r.yaml:5:5"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("[0, 1)");
    assert_int_equal(xa_bn_config_set(&c, "non_linearity", "\"sparkle\"", NULL), XA_STATUS_CONFIG);
    xt_assert_error_mentions("sparkle");
    assert_int_equal(xa_bn_config_set(&c, "leave_out", "[1, ", "r.yaml:9:9"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("not valid JSON");
    assert_int_equal(xa_bn_config_set(&c, "inv_adapter_reduction_factor", "null", NULL),
                     XA_STATUS_CONFIG); /* inv_adapter set without its factor */
    assert_int_equal(memcmp(&before, &c, sizeof c), 0);
}

static void test_fusion_config_set(void **state) {
    (void)state;
    xa_fusion_config c;
    assert_int_equal(xa_fusion_config_preset(&c, "dynamic"), XA_STATUS_OK);
    assert_int_equal(xa_fusion_config_set(&c, "dropout_prob", "0.1", "r.yaml:2:3"), XA_STATUS_OK);
    assert_true(c.dropout_prob == 0.1);
    assert_int_equal(xa_fusion_config_set(&c, "dropout_prob", "null", NULL), XA_STATUS_OK);
    assert_true(c.dropout_prob < 0);
    assert_int_equal(xa_fusion_config_set(&c, "value", "false", NULL), XA_STATUS_OK);
    assert_int_equal(c.value, 0);
    assert_int_equal(xa_fusion_config_set(&c, "value_initialized", "\"\"", NULL), XA_STATUS_OK);
    assert_int_equal(c.value_initialized, 0);

    xa_fusion_config before;
    memcpy(&before, &c, sizeof c);
    assert_int_equal(xa_fusion_config_set(&c, "tempreature", "true", "r.yaml:4:5"),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("r.yaml:4:5");
    xt_assert_error_mentions("did you mean 'temperature'?");
    assert_int_equal(xa_fusion_config_set(&c, "query", "\"yes\"", "r.yaml:4:6"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("true or false");
    assert_int_equal(xa_fusion_config_set(&c, "dropout_prob", "1", NULL), XA_STATUS_CONFIG);
    assert_int_equal(xa_fusion_config_set(&c, "key", "tru", NULL), XA_STATUS_CONFIG);
    xt_assert_error_mentions("not valid JSON");
    assert_int_equal(memcmp(&before, &c, sizeof c), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_recipe),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_extends_merge),
        cmocka_unit_test(test_extends_cycle),
        cmocka_unit_test(test_extends_missing_file),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_err_unknown_top_key),
        cmocka_unit_test(test_err_unknown_model_key),
        cmocka_unit_test(test_err_unknown_phase_key),
        cmocka_unit_test(test_err_wrong_type),
        cmocka_unit_test(test_err_negative_batch_size),
        cmocka_unit_test(test_err_unknown_phase_kind),
        cmocka_unit_test(test_err_unknown_task_type),
        cmocka_unit_test(test_err_bad_language_code),
        cmocka_unit_test(test_err_duplicate_target),
        cmocka_unit_test(test_err_missing_required_key),
        cmocka_unit_test(test_err_yaml_syntax),
        cmocka_unit_test(test_err_adapter_override_unknown_key),
        cmocka_unit_test(test_write_load_roundtrip),
        cmocka_unit_test(test_finetune_phase),
        cmocka_unit_test(test_class_weights),
        cmocka_unit_test(test_expand_and_pos),
        cmocka_unit_test(test_trainer_keys),
        cmocka_unit_test(test_bn_config_set),
        cmocka_unit_test(test_fusion_config_set),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
