/* Tests of pipeline/: the plan of a recipe (artefacts, states, provenance) and the validation of a
 * whole recipe, without training: finished outputs are faked by writing their marker files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "config/config.h"
#include "io/file.h"
#include "pipeline/cells.h"
#include "pipeline/pipeline.h"

static char g_dir[1024];

static const char *at(const char *name) {
    static char buf[8][2048];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void put(const char *name, const char *text) {
    const char *p = at(name);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", p);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(xa_file_mkdirs(dir), XA_STATUS_OK);
    xt_write_file(p, text, strlen(text));
}

/* A recipe over data files in a fresh directory: en source, de and fr targets, every phase. */
static int setup(void **state) {
    static int n;
    snprintf(g_dir, sizeof g_dir, "%s/pipeline-%d", xt_tmp_dir(), n++);
    xa_file_remove_tree(g_dir);
    put("data/multi.txt", "one two three\n");
    put("data/mono/en.txt", "hello world\n");
    put("data/mono/de.txt", "hallo welt\n");
    put("data/mono/fr.txt", "bonjour monde\n");
    put("data/pkg/en.train.tsv", "a\tfirst text\nb\tsecond text\n");
    put("data/pkg/en.dev.tsv", "a\tdev text\n");
    put("data/pkg/en.test.tsv", "b\ttest text\n");
    put("data/pkg/de.test.tsv", "a\ttest text\n");
    put("recipe.yaml",
        "name: t\noutput: out\nseed: 3\nseeds: [3]\n"
        "model: {base: out/base, arch: tiny, vocab_size: 100}\n"
        "languages: {source: en, targets: [de, fr]}\n"
        "data:\n  pretrain: data/multi.txt\n  mlm: data/mono/{lang}.txt\n"
        "  task:\n    name: pkg\n    train: data/pkg/en.train.tsv\n    dev: data/pkg/en.dev.tsv\n"
        "    test: data/pkg/{lang}.test.tsv\n"
        "adapters:\n  lang: {preset: seq_bn_inv}\n  task: {preset: seq_bn}\n  fusion: {preset: dynamic}\n"
        "phases:\n  - pretrain: {steps: 10}\n  - lang: {steps: 10}\n  - task: {epochs: 1}\n  - fusion: {epochs: 1}\n"
        "  - eval: {setups: [task_only, madx, fusion]}\n");
    *state = calloc(1, sizeof(xa_recipe));
    return *state ? 0 : -1;
}

static int teardown(void **state) {
    free(*state);
    xa_file_remove_tree(g_dir);
    return 0;
}

static void load(xa_recipe *r, const char *const *sets, int n_sets) {
    xa_status st = xa_recipe_load(r, at("recipe.yaml"), sets, n_sets);
    if (st) {
        char buf[4096];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("xa_recipe_load: %s", buf);
    }
}

static void plan(xa_plan *pl, const xa_recipe *r, xa_phase_kind force) {
    xa_plan_opts o = xa_plan_opts_default();
    o.force = force;
    assert_int_equal(xa_plan_build(pl, r, &o), XA_STATUS_OK);
}

static xa_art_state state_of(const xa_plan *pl, xa_art_kind k, const char *lang, uint64_t seed) {
    int i = xa_plan_find(pl, k, lang, seed);
    assert_true(i >= 0);
    return pl->a[i].state;
}

/* Fake a finished artefact (its completion marker) and record its provenance. */
static void finish(xa_plan *pl, xa_art_kind k, const char *lang, uint64_t seed) {
    int i = xa_plan_find(pl, k, lang, seed);
    assert_true(i >= 0);
    char p[4096];
    snprintf(p, sizeof p, "%s", pl->a[i].done);
    *strrchr(p, '/') = '\0';
    assert_int_equal(xa_file_mkdirs(p), XA_STATUS_OK);
    xt_write_file(pl->a[i].done, "{}", 2);
    assert_int_equal(xa_plan_commit(pl, i), XA_STATUS_OK);
}

static void finish_all(const xa_recipe *r) {
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    finish(&pl, XA_ART_BASE, NULL, 0);
    finish(&pl, XA_ART_LANG, "en", 0);
    finish(&pl, XA_ART_LANG, "de", 0);
    finish(&pl, XA_ART_LANG, "fr", 0);
    finish(&pl, XA_ART_TASK, NULL, 3);
    finish(&pl, XA_ART_FUSION, NULL, 3);
    xa_plan_free(&pl);
}

static void test_plan_fresh(void **state) {
    xa_recipe *r = *state;
    load(r, NULL, 0);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_OK);
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(pl.n, 6); /* base, 3 languages, task, fusion */
    for (int i = 0; i < pl.n; i++) {
        assert_int_equal(pl.a[i].state, XA_ART_TRAIN);
        assert_true(pl.a[i].selected);
    }
    int it = xa_plan_find(&pl, XA_ART_TASK, NULL, 3);
    assert_non_null(strstr(pl.a[it].dir, "out/task/pkg/seed3"));
    assert_string_equal(pl.a[it].label, "task pkg seed 3");
    assert_int_equal(pl.a[it].n_deps, 1); /* the source language adapter */
    assert_int_equal(pl.a[it].deps[0], xa_plan_find(&pl, XA_ART_LANG, "en", 0));
    int fu = xa_plan_find(&pl, XA_ART_FUSION, NULL, 3);
    assert_int_equal(pl.a[fu].n_deps, 4); /* three language adapters and the task adapter */
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_OK);
    /* the provenance names the settings, the data files and what it is built on */
    char *text = NULL;
    assert_int_equal(xa_plan_provenance(&pl, it, 0, &text), XA_STATUS_OK);
    assert_non_null(strstr(text, "epochs: 1\n"));
    assert_non_null(strstr(text, "en.train.tsv size=27 mtime="));
    assert_non_null(strstr(text, "on lang en: (to be trained again)\n"));
    assert_null(strstr(text, "run:"));
    free(text);
    xa_plan_free(&pl);
}

static void test_plan_skip_and_stale(void **state) {
    xa_recipe *r = *state;
    load(r, NULL, 0);
    finish_all(r);
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    for (int i = 0; i < pl.n; i++) assert_int_equal(pl.a[i].state, XA_ART_SKIP);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_OK);
    xa_plan_free(&pl);

    /* other lang steps: the language adapters are stale, with what changed and how to proceed */
    const char *sets[] = {"phases.lang.steps=60", "phases.task.lr=3e-4"};
    load(r, sets, 2);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_BASE, NULL, 0), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "de", 0), XA_ART_STALE);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_STALE);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("steps: was '10', now '60'");
    xt_assert_error_mentions("lr: was '0.0001', now '0.0003'");
    xt_assert_error_mentions("--force lang");
    xt_assert_error_mentions("another output");
    xa_plan_free(&pl);

    /* --force lang: the language adapters and everything after them retrain, the base stays */
    plan(&pl, r, XA_PHASE_LANG);
    assert_int_equal(state_of(&pl, XA_ART_BASE, NULL, 0), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "en", 0), XA_ART_FORCE);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_FORCE);
    assert_int_equal(state_of(&pl, XA_ART_FUSION, NULL, 3), XA_ART_FORCE);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_OK);
    xa_plan_free(&pl);
}

static void test_plan_inputs_change(void **state) {
    xa_recipe *r = *state;
    load(r, NULL, 0);
    finish_all(r);
    /* a data file rewritten: the artefact that read it is stale */
    put("data/mono/fr.txt", "bonjour le monde\n");
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "fr", 0), XA_ART_STALE);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "de", 0), XA_ART_SKIP);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("lang fr");
    xt_assert_error_mentions("corpus: was");
    /* the fusion was built on lang fr: it must be retrained too once fr is */
    assert_int_equal(state_of(&pl, XA_ART_FUSION, NULL, 3), XA_ART_STALE);
    xa_plan_free(&pl);

    /* a retrained input (same settings, new provenance id) makes what was built on it stale */
    load(r, NULL, 0);
    xa_file_remove_tree(at("out"));
    finish_all(r);
    plan(&pl, r, XA_PHASE_N);
    int ie = xa_plan_find(&pl, XA_ART_LANG, "en", 0);
    assert_int_equal(xa_plan_begin(&pl, ie), XA_STATUS_OK);
    sleep(1); /* the "run:" line has a one-second clock */
    assert_int_equal(xa_plan_commit(&pl, ie), XA_STATUS_OK);
    xa_plan_free(&pl);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "en", 0), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_STALE);
    int it = xa_plan_find(&pl, XA_ART_TASK, NULL, 3);
    assert_non_null(strstr(pl.a[it].why, "on lang en: was 'provenance"));
    xa_plan_free(&pl);
}

static void test_plan_no_provenance(void **state) {
    xa_recipe *r = *state;
    load(r, NULL, 0);
    /* a base that this recipe did not make, and a hand-made language adapter */
    put("out/base/config.json", "{}");
    put("out/lang/de/adapter_config.json", "{}");
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_BASE, NULL, 0), XA_ART_STALE);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "de", 0), XA_ART_STALE);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "fr", 0), XA_ART_TRAIN);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("did not make");
    xt_assert_error_mentions("without provenance");
    xt_assert_error_mentions("--force pretrain");
    /* a run killed between its last output and its provenance (its pending provenance is this
     * plan's): trained again, which resumes its checkpoint, not stale */
    assert_int_equal(xa_plan_begin(&pl, xa_plan_find(&pl, XA_ART_LANG, "de", 0)), XA_STATUS_OK);
    xa_plan_free(&pl);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "de", 0), XA_ART_TRAIN);
    xa_plan_free(&pl);
    const char *steps11[] = {"phases.lang.steps=11"};
    load(r, steps11, 1); /* other settings: the pending provenance does not match */
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "de", 0), XA_ART_STALE);
    xa_plan_free(&pl);
    load(r, NULL, 0);
    /* an unfinished base (a checkpoint) continues */
    put("out/base/checkpoint/x", "");
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_BASE, NULL, 0), XA_ART_TRAIN);
    xa_plan_free(&pl);
}

static void test_plan_selection(void **state) {
    xa_recipe *r = *state;
    load(r, NULL, 0);
    xa_plan_opts o = xa_plan_opts_default();
    o.only = XA_PHASE_LANG;
    o.lang = "de";
    o.force = XA_PHASE_LANG;
    xa_plan pl;
    assert_int_equal(xa_plan_build(&pl, r, &o), XA_STATUS_OK);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "de", 0), XA_ART_FORCE);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "fr", 0), XA_ART_TRAIN); /* not selected: not forced */
    assert_false(pl.a[xa_plan_find(&pl, XA_ART_LANG, "fr", 0)].selected);
    assert_false(pl.a[xa_plan_find(&pl, XA_ART_TASK, NULL, 3)].selected);
    xa_plan_free(&pl);

    /* train --phase task --force: the fusion built on the old task adapter goes stale, which is
     * an error for the commands that use it, not for this one */
    finish_all(r);
    o = xa_plan_opts_default();
    o.only = XA_PHASE_TASK;
    o.force = XA_PHASE_TASK;
    assert_int_equal(xa_plan_build(&pl, r, &o), XA_STATUS_OK);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_FORCE);
    assert_int_equal(state_of(&pl, XA_ART_FUSION, NULL, 3), XA_ART_STALE);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_OK);
    xa_plan_free(&pl);
    o.force = XA_PHASE_N;
    o.only = XA_PHASE_FUSION; /* uses the task adapter, fine; the fusion itself is fine too */
    assert_int_equal(xa_plan_build(&pl, r, &o), XA_STATUS_OK);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_OK);
    xa_plan_free(&pl);
    /* a stale language adapter blocks the task phase that uses it, not the lang phase of another language */
    put("data/mono/en.txt", "hello new world\n");
    o.only = XA_PHASE_TASK;
    assert_int_equal(xa_plan_build(&pl, r, &o), XA_STATUS_OK);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("lang en");
    xa_plan_free(&pl);
    o.only = XA_PHASE_LANG;
    o.lang = "de";
    assert_int_equal(xa_plan_build(&pl, r, &o), XA_STATUS_OK);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_OK);
    xa_plan_free(&pl);
}

static void validate_fails(xa_recipe *r, const char *set, xa_status want, const char *needle) {
    const char *sets[1] = {set};
    load(r, set ? sets : NULL, set ? 1 : 0);
    xa_status st = xa_pipeline_validate(r);
    if (st != want) fail_msg("validate with %s: %s, wanted %s", set ? set : "(none)", xa_status_name(st), xa_status_name(want));
    xt_assert_error_mentions(needle);
}

/* class_weights: the default (none) and an explicit `none` leave the provenance as it was before
 * the key existed (finished artefacts are skipped); a set value is a setting of the task
 * artefact; a list is validated against the training file's labels. */
static void test_plan_class_weights(void **state) {
    xa_recipe *r = *state;
    load(r, NULL, 0);
    finish_all(r);
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    char *text = NULL;
    assert_int_equal(xa_plan_provenance(&pl, xa_plan_find(&pl, XA_ART_TASK, NULL, 3), 0, &text), XA_STATUS_OK);
    assert_null(strstr(text, "class_weights"));
    free(text);
    xa_plan_free(&pl);
    const char *none[] = {"phases.task.class_weights=none", "phases.fusion.class_weights=none"};
    load(r, none, 2);
    plan(&pl, r, XA_PHASE_N);
    for (int i = 0; i < pl.n; i++) assert_int_equal(pl.a[i].state, XA_ART_SKIP);
    xa_plan_free(&pl);

    const char *bal[] = {"phases.task.class_weights=balanced"};
    load(r, bal, 1);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_OK);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "en", 0), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_STALE);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("class_weights");
    xa_plan_free(&pl);

    const char *list[] = {"phases.task.class_weights=[1, 2.5]"};
    load(r, list, 1);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_OK);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(xa_plan_provenance(&pl, xa_plan_find(&pl, XA_ART_TASK, NULL, 3), 0, &text), XA_STATUS_OK);
    assert_non_null(strstr(text, "class_weights: 1 2.5\n"));
    free(text);
    xa_plan_free(&pl);
    validate_fails(r, "phases.task.class_weights=[1, 2, 3]", XA_STATUS_CONFIG, "lists 3 weight(s)");
    xt_assert_error_mentions("has 2 labels");
    xt_assert_error_mentions("a, b"); /* the labels in the head's order */
    xt_assert_error_mentions("balanced");
}

/* The recipe's phases with the full fine-tuning reference (finetune, its full_ft eval column). */
static const char *const k_ft_phases =
    "phases=[{pretrain: {steps: 10}}, {lang: {steps: 10}}, {task: {epochs: 1}}, {finetune: {epochs: 1}}, "
    "{eval: {setups: [madx, full_ft]}}]";

/* The finetune phase: one artefact per seed built on the base alone, with its settings and no
 * adapter in its provenance; stale on its own settings without touching the adapters; --force
 * finetune retrains only it, --force pretrain retrains it too, --force lang does not; the
 * validation refuses full_ft without a finetune phase or with eval before it. */
static void test_plan_finetune(void **state) {
    xa_recipe *r = *state;
    const char *sets[] = {k_ft_phases};
    load(r, sets, 1);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_OK);
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(pl.n, 6); /* base, 3 languages, task, finetune */
    int ift = xa_plan_find(&pl, XA_ART_FINETUNE, NULL, 3);
    assert_true(ift >= 0);
    assert_non_null(strstr(pl.a[ift].dir, "out/finetune/pkg/seed3"));
    assert_string_equal(pl.a[ift].label, "finetune pkg seed 3");
    assert_int_equal(pl.a[ift].n_deps, 0);
    assert_int_equal(pl.a[ift].state, XA_ART_TRAIN);
    char *text = NULL;
    assert_int_equal(xa_plan_provenance(&pl, ift, 0, &text), XA_STATUS_OK);
    assert_non_null(strstr(text, "phase: finetune\n"));
    assert_non_null(strstr(text, "trains: encoder"));
    assert_non_null(strstr(text, "lr: 5e-05\n"));
    assert_non_null(strstr(text, "eval_every: 0\n"));
    assert_non_null(strstr(text, "en.dev.tsv size="));
    assert_non_null(strstr(text, "on base: (to be trained again)\n"));
    assert_null(strstr(text, "adapter:"));
    assert_null(strstr(text, "on lang"));
    free(text);
    finish(&pl, XA_ART_BASE, NULL, 0);
    finish(&pl, XA_ART_LANG, "en", 0);
    finish(&pl, XA_ART_LANG, "de", 0);
    finish(&pl, XA_ART_LANG, "fr", 0);
    finish(&pl, XA_ART_TASK, NULL, 3);
    finish(&pl, XA_ART_FINETUNE, NULL, 3);
    xa_plan_free(&pl);
    plan(&pl, r, XA_PHASE_N);
    for (int i = 0; i < pl.n; i++) assert_int_equal(pl.a[i].state, XA_ART_SKIP);
    xa_plan_free(&pl);

    /* --force: finetune alone; pretrain forces it; lang and task do not */
    plan(&pl, r, XA_PHASE_FINETUNE);
    assert_int_equal(state_of(&pl, XA_ART_FINETUNE, NULL, 3), XA_ART_FORCE);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_LANG, "en", 0), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_BASE, NULL, 0), XA_ART_SKIP);
    xa_plan_free(&pl);
    plan(&pl, r, XA_PHASE_LANG);
    assert_int_equal(state_of(&pl, XA_ART_FINETUNE, NULL, 3), XA_ART_SKIP);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_FORCE);
    xa_plan_free(&pl);
    plan(&pl, r, XA_PHASE_PRETRAIN);
    assert_int_equal(state_of(&pl, XA_ART_FINETUNE, NULL, 3), XA_ART_FORCE);
    xa_plan_free(&pl);
    assert_true(xa_plan_forces(XA_PHASE_TASK, XA_PHASE_FUSION));
    assert_false(xa_plan_forces(XA_PHASE_FUSION, XA_PHASE_FINETUNE));
    assert_false(xa_plan_forces(XA_PHASE_FINETUNE, XA_PHASE_FUSION));
    assert_false(xa_plan_forces(XA_PHASE_N, XA_PHASE_FINETUNE));

    /* its own settings changed: stale alone, with the way on */
    const char *lr[] = {k_ft_phases, "phases.finetune.lr=2e-5"};
    load(r, lr, 2);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_FINETUNE, NULL, 3), XA_ART_STALE);
    assert_int_equal(state_of(&pl, XA_ART_TASK, NULL, 3), XA_ART_SKIP);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("finetune pkg seed 3");
    xt_assert_error_mentions("lr: was '5e-05', now '2e-05'");
    xt_assert_error_mentions("--force finetune");
    xa_plan_free(&pl);
    /* with a stale language adapter too, the hint names both forces (lang does not force finetune) */
    const char *both[] = {k_ft_phases, "phases.finetune.lr=2e-5", "phases.lang.steps=11"};
    load(r, both, 3);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(xa_plan_check(&pl), XA_STATUS_CONFIG);
    xt_assert_error_mentions("--force lang' and 'xadapt run RECIPE --force finetune'");
    xa_plan_free(&pl);
    /* a retrained base makes it stale (it is built on the base) */
    load(r, sets, 1);
    plan(&pl, r, XA_PHASE_N);
    int ib = xa_plan_find(&pl, XA_ART_BASE, NULL, 0);
    assert_int_equal(xa_plan_begin(&pl, ib), XA_STATUS_OK);
    sleep(1); /* the "run:" line has a one-second clock */
    assert_int_equal(xa_plan_commit(&pl, ib), XA_STATUS_OK);
    xa_plan_free(&pl);
    plan(&pl, r, XA_PHASE_N);
    assert_int_equal(state_of(&pl, XA_ART_FINETUNE, NULL, 3), XA_ART_STALE);
    assert_non_null(strstr(pl.a[xa_plan_find(&pl, XA_ART_FINETUNE, NULL, 3)].why, "on base: was 'provenance"));
    xa_plan_free(&pl);

    /* validation: full_ft needs the finetune phase, before the eval phase */
    assert_true(xa_pipeline_setup_known("full_ft"));
    validate_fails(r, "phases.eval.setups=[madx, full_ft]", XA_STATUS_CONFIG, "without a finetune phase");
    xt_assert_error_mentions("- finetune:");
    const char *late[] = {"phases=[{task: {epochs: 1}}, {eval: {setups: [full_ft]}}, {finetune: {epochs: 1}}]"};
    load(r, late, 1);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("before the finetune phase");
    /* a finetune phase alone parses the task files (a bad dev label is found before training) */
    put("data/pkg/en.dev.tsv", "z\tunknown label\n");
    const char *alone[] = {"phases=[{finetune: {epochs: 1}}]"};
    load(r, alone, 1);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_CONFIG);
    xt_assert_error_mentions("en.dev.tsv:1");
}

/* Eval cells: cells.tsv keeps exact values (hex floats) by identity; a line that does not parse
 * or a wrong number of values is never reused; the identity follows the provenance of an
 * artefact, its weight files and the data file. */
static void test_cells(void **state) {
    (void)state;
    const double v[3] = {80, 0.1 + 0.2, 1.0 / 3.0}, w[1] = {-0.0};
    FILE *f = fopen(at("cells.tsv"), "w");
    assert_non_null(f);
    xa_cells_write(f, 0x0123456789abcdefull, v, 3);
    fputs("zz\t3\t1 2 3\n0000000000000001\t2\t1\n0000000000000002\t1\t1 junk\n", f); /* damaged lines */
    xa_cells_write(f, 7, w, 1);
    fclose(f);
    xa_cells c;
    assert_int_equal(xa_cells_read(&c, at("cells.tsv")), XA_STATUS_OK);
    assert_int_equal(c.n, 2);
    const double *got = xa_cells_find(&c, 0x0123456789abcdefull, 3);
    assert_non_null(got);
    assert_memory_equal(got, v, sizeof v); /* bit-exact */
    assert_null(xa_cells_find(&c, 0x0123456789abcdefull, 2));
    assert_null(xa_cells_find(&c, 1, 2));
    assert_null(xa_cells_find(&c, 2, 1));
    assert_non_null(xa_cells_find(&c, 7, 1));
    xa_cells_free(&c);
    assert_int_equal(xa_cells_read(&c, at("no-such-cells.tsv")), XA_STATUS_OK);
    assert_int_equal(c.n, 0);
    xa_cells_free(&c);

    /* identities */
    put("out/task/pkg/seed3/final/head/model_head.safetensors", "w1");
    put("out/task/pkg/seed3/xadapt-provenance.txt", "artefact: task\nrun: 1\n");
    put("data/t.tsv", "a\tx\n");
    const char *head = at("out/task/pkg/seed3/final/head");
    const uint64_t h0 = xa_cell_file(xa_cell_dir(xa_cell_begin("pkg"), head), at("data/t.tsv"));
    assert_true(h0 == xa_cell_file(xa_cell_dir(xa_cell_begin("pkg"), head), at("data/t.tsv")));
    assert_true(h0 != xa_cell_file(xa_cell_dir(xa_cell_begin("mlm"), head), at("data/t.tsv")));
    char inputs0[17], inputs1[17];
    const char *dirs[1] = {head};
    xa_pipeline_inputs_id(dirs, 1, inputs0);
    put("out/task/pkg/seed3/xadapt-provenance.txt", "artefact: task\nrun: 2\n"); /* retrained */
    const uint64_t h1 = xa_cell_file(xa_cell_dir(xa_cell_begin("pkg"), head), at("data/t.tsv"));
    xa_pipeline_inputs_id(dirs, 1, inputs1);
    assert_true(h1 != h0);
    assert_string_not_equal(inputs0, inputs1);
    usleep(20000);
    put("out/task/pkg/seed3/final/head/model_head.safetensors", "w2"); /* rewritten by hand */
    const uint64_t h2 = xa_cell_file(xa_cell_dir(xa_cell_begin("pkg"), head), at("data/t.tsv"));
    assert_true(h2 != h1);
    usleep(20000);
    put("data/t.tsv", "a\ty\n"); /* the test file */
    assert_true(xa_cell_file(xa_cell_dir(xa_cell_begin("pkg"), head), at("data/t.tsv")) != h2);
    assert_true(xa_cell_dir(xa_cell_begin("pkg"), NULL) == xa_cell_dir(xa_cell_begin("pkg"), ""));
}

/* The provenance of every artefact of a recipe that uses none of the trainer keys added after
 * 2026-12-02 (lr_scheduler, adam_*, dropout overrides, weight_decay_all, metric_for_best_model,
 * save_total_limit, eval_batches) is byte for byte what xadapt wrote before them
 * (tests/data/recipe/provenance-default.txt, written by this test with XA_WRITE_GOLDEN=1 on the
 * code before those keys existed), so outputs made by the older binary stay valid. Paths and
 * mtimes are replaced by placeholders. Keys set to their defaults change nothing either. */
static void normalise_prov(char *dst, size_t cap, const char *text) {
    size_t n = 0, gl = strlen(g_dir);
    for (const char *s = text; *s && n + 16 < cap;) {
        if (!strncmp(s, g_dir, gl)) {
            n += (size_t)snprintf(dst + n, cap - n, "DIR");
            s += gl;
        } else if (!strncmp(s, "mtime=", 6)) {
            n += (size_t)snprintf(dst + n, cap - n, "mtime=T");
            s += 6;
            while (*s && *s != '\n' && *s != ' ') s++;
        } else {
            dst[n++] = *s++;
        }
    }
    dst[n] = '\0';
}

static void all_provenance(const char *const *sets, int n_sets, char *out, size_t cap) {
    static xa_recipe r;
    put("recipe-prov.yaml",
        "name: t\noutput: out\nseed: 3\nseeds: [3]\n"
        "model: {base: out/base, arch: tiny, vocab_size: 100}\n"
        "languages: {source: en, targets: [de, fr]}\n"
        "data:\n  pretrain: data/multi.txt\n  mlm: data/mono/{lang}.txt\n  mlm_heldout: data/mono/{lang}.txt\n"
        "  task:\n    name: pkg\n    train: data/pkg/en.train.tsv\n    dev: data/pkg/en.dev.tsv\n"
        "    test: data/pkg/{lang}.test.tsv\n"
        "adapters:\n  lang: {preset: seq_bn_inv}\n  task: {preset: seq_bn}\n  fusion: {preset: dynamic}\n"
        "phases:\n  - pretrain: {steps: 10}\n  - lang: {steps: 10}\n  - task: {epochs: 1, eval_every: 5}\n"
        "  - fusion: {epochs: 1}\n  - finetune: {epochs: 1}\n  - eval: {setups: [task_only, madx, fusion, full_ft]}\n");
    xa_status st = xa_recipe_load(&r, at("recipe-prov.yaml"), sets, n_sets);
    if (st) {
        char buf[4096];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("xa_recipe_load: %s", buf);
    }
    xa_plan pl;
    plan(&pl, &r, XA_PHASE_N);
    size_t n = 0;
    for (int i = 0; i < pl.n; i++) {
        char *text = NULL, norm[8192];
        assert_int_equal(xa_plan_provenance(&pl, i, 0, &text), XA_STATUS_OK);
        normalise_prov(norm, sizeof norm, text);
        free(text);
        n += (size_t)snprintf(out + n, cap - n, "%s---\n", norm);
        assert_true(n < cap);
    }
    char *text = NULL, norm[8192];
    assert_int_equal(xa_plan_eval_provenance(&pl, &r.phases[xa_recipe_phase(&r, XA_PHASE_EVAL)], &text), XA_STATUS_OK);
    normalise_prov(norm, sizeof norm, text);
    free(text);
    n += (size_t)snprintf(out + n, cap - n, "%s---\n", norm);
    assert_int_equal(xa_plan_table_provenance(&pl, "mlm", r.mlm_heldout, 16, 128, &text), XA_STATUS_OK);
    normalise_prov(norm, sizeof norm, text);
    free(text);
    n += (size_t)snprintf(out + n, cap - n, "%s", norm);
    assert_true(n < cap);
    xa_plan_free(&pl);
}

static void test_provenance_stable(void **state) {
    (void)state;
    static char got[65536];
    all_provenance(NULL, 0, got, sizeof got);
    const char *golden = xt_data_path("recipe/provenance-default.txt");
    if (getenv("XA_WRITE_GOLDEN")) {
        xt_write_file(golden, got, strlen(got));
        return;
    }
    char *want = xt_read_file(golden, NULL);
    assert_non_null(want);
    if (strcmp(got, want)) fail_msg("provenance changed for a recipe with default settings:\n%s\nexpected:\n%s", got, want);
    /* the new keys set to their defaults, and the output-neutral ones to other values
     * (gradient_checkpointing changes no weight: not provenance): the same text */
    const char *defaults[] = {"phases.pretrain.gradient_checkpointing=true", "phases.lang.gradient_checkpointing=true",
                              "phases.task.gradient_checkpointing=true", "phases.fusion.gradient_checkpointing=true",
                              "phases.finetune.gradient_checkpointing=true","phases.lang.lr_scheduler=linear", "phases.task.adam_beta1=0.9",
                              "phases.task.adam_beta2=0.999", "phases.task.adam_epsilon=1e-8",
                              "phases.task.weight_decay_all=true", "phases.task.metric_for_best_model=accuracy",
                              "phases.lang.hidden_dropout=null", "phases.lang.save_total_limit=4",
                              "phases.lang.eval_every=5", "phases.lang.eval_batches=2",
                              "phases.pretrain.eval_every=5"};
    all_provenance(defaults, (int)(sizeof defaults / sizeof *defaults), got, sizeof got);
    if (strcmp(got, want)) fail_msg("provenance changed by keys set to their defaults:\n%s", got);
    /* other values are recorded, in the phases that set them */
    const char *other[] = {"phases.lang.lr_scheduler=cosine", "phases.task.adam_beta2=0.98",
                           "phases.finetune.hidden_dropout=0", "phases.fusion.weight_decay_all=false",
                           "phases.task.metric_for_best_model=loss"};
    all_provenance(other, (int)(sizeof other / sizeof *other), got, sizeof got);
    static const char *const added[] = {"lr_scheduler: cosine\n", "adam_beta2: 0.98\n", "hidden_dropout: 0\n",
                                        "weight_decay_all: false\n", "metric_for_best_model: loss\n"};
    static const char *const where[] = {"artefact: lang de", "artefact: task pkg", "artefact: finetune pkg",
                                        "artefact: fusion pkg", "artefact: task pkg"};
    for (int i = 0; i < 5; i++) {
        const char *a = strstr(got, where[i]), *end = a ? strstr(a, "---") : NULL, *at = a ? strstr(a, added[i]) : NULL;
        if (!at || at > end) fail_msg("'%s' not in the provenance of '%s'", added[i], where[i]);
    }
    const char *ld = strstr(got, "artefact: lang de"), *ab = strstr(ld, "adam_beta2");
    assert_true(ab > strstr(ld, "---")); /* set for the task phase: not in the language adapter's */
    free(want);
    /* the knobs the runner hands to train/ */
    static xa_recipe r;
    load(&r, NULL, 0);
    xa_train_knobs k = xa_pipeline_knobs(&r.phases[1]), d = xa_train_knobs_default();
    assert_true(k.sched == d.sched && k.adam_beta1 == d.adam_beta1 && k.adam_beta2 == d.adam_beta2 &&
                k.adam_epsilon == d.adam_epsilon && k.hidden_dropout == d.hidden_dropout &&
                k.attention_dropout == d.attention_dropout && k.weight_decay_all == d.weight_decay_all &&
                k.save_total_limit == d.save_total_limit);
    const char *sets[] = {"phases.lang.lr_scheduler=constant", "phases.lang.adam_epsilon=1e-6",
                          "phases.lang.attention_dropout=0.25", "phases.lang.weight_decay_all=false",
                          "phases.lang.save_total_limit=0", "phases.lang.gradient_checkpointing=true"};
    load(&r, sets, 6);
    k = xa_pipeline_knobs(&r.phases[1]);
    assert_int_equal(k.sched, XA_SCHED_KIND_CONSTANT);
    assert_true(k.adam_epsilon == 1e-6 && k.adam_beta1 == 0.9 && k.attention_dropout == 0.25 && k.hidden_dropout < 0);
    assert_int_equal(k.weight_decay_all, 0);
    assert_int_equal(k.save_total_limit, 0);
    assert_int_equal(k.gradient_checkpointing, 1);
    assert_int_equal(d.gradient_checkpointing, 0);
}

static void test_validate(void **state) {
    xa_recipe *r = *state;
    validate_fails(r, "phases.eval.setups=[madx3]", XA_STATUS_CONFIG, "unknown eval setup 'madx3'");
    validate_fails(r, "data.task.name=../../escape", XA_STATUS_CONFIG, "not a plain name");
    validate_fails(r, "languages.targets=[de, xx]", XA_STATUS_CONFIG, "xx.txt");
    xt_assert_error_mentions("language xx");
    validate_fails(r, "phases.eval.setups=[in_language]", XA_STATUS_CONFIG, "target_train");
    /* a bad label in a target's test file is found before any training */
    put("data/pkg/de.test.tsv", "a\tok\nc\tbad label here\n");
    validate_fails(r, NULL, XA_STATUS_CONFIG, "de.test.tsv:2");
    put("data/pkg/de.test.tsv", "a\tok\n");
    put("data/pkg/en.dev.tsv", "no tab on this line\n");
    validate_fails(r, NULL, XA_STATUS_CONFIG, "en.dev.tsv:1");
    put("data/pkg/en.dev.tsv", "a\tdev\n");
    put("data/mono/de.txt", "");
    validate_fails(r, NULL, XA_STATUS_CONFIG, "empty");
    put("data/mono/de.txt", "hallo\n");
    load(r, NULL, 0);
    assert_int_equal(xa_pipeline_validate(r), XA_STATUS_OK);
    /* 16 languages fuse; 17 do not */
    char set[512] = "languages.targets=[";
    for (int i = 0; i < 16; i++) {
        char f[64];
        snprintf(f, sizeof f, "data/mono/l%02d.txt", i);
        put(f, "x\n");
        snprintf(set + strlen(set), sizeof set - strlen(set), "%sl%02d", i ? ", " : "", i);
    }
    strcat(set, "]");
    validate_fails(r, set, XA_STATUS_CONFIG, "at most 16 language adapters");
    /* The results table holds the source, every target config allows (64) and three mean rows
     * (seen, unseen, all), so no recipe that loads overflows it: pipeline/run.c asserts it at
     * compile time, and a 65th target is refused by config. */
    static char many[1024];
    snprintf(many, sizeof many, "languages.targets=[");
    for (int i = 0; i < 65; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "%st%02d", i ? ", " : "", i);
    strcat(many, "]");
    xa_recipe *big = calloc(1, sizeof *big);
    assert_non_null(big);
    const char *sets[1] = {many};
    assert_int_equal(xa_recipe_load(big, at("recipe.yaml"), sets, 1), XA_STATUS_CONFIG);
    free(big);
}

/* The task artefact's provenance text for the recipe with sets. */
static char *task_provenance(xa_recipe *r, const char *const *sets, int n_sets) {
    load(r, sets, n_sets);
    xa_plan pl;
    plan(&pl, r, XA_PHASE_N);
    char *text = NULL;
    assert_int_equal(xa_plan_provenance(&pl, xa_plan_find(&pl, XA_ART_TASK, NULL, 3), 0, &text), XA_STATUS_OK);
    xa_plan_free(&pl);
    return text;
}

/* metric_for_best_model: unset adds no provenance line for any task type, and the task type's
 * own default set explicitly (accuracy, span_f1, QA's f1) hashes as unset; another metric is a
 * setting. */
static void test_provenance_best_metric(void **state) {
    xa_recipe *r = *state;
    static const char *const type[] = {"data.task.type=classification", "data.task.type=tagging",
                                       "data.task.type=question_answering"};
    static const char *const dflt[] = {"phases.task.metric_for_best_model=accuracy",
                                       "phases.task.metric_for_best_model=span_f1",
                                       "phases.task.metric_for_best_model=f1"};
    static const char *const other[] = {"phases.task.metric_for_best_model=macro_f1",
                                        "phases.task.metric_for_best_model=loss",
                                        "phases.task.metric_for_best_model=exact_match"};
    for (int t = 0; t < 3; t++) {
        const char *unset[] = {type[t]}, *same[] = {type[t], dflt[t]}, *set[] = {type[t], other[t]};
        char *a = task_provenance(r, unset, 1), *b = task_provenance(r, same, 2), *c = task_provenance(r, set, 2);
        if (strstr(a, "metric_for_best_model")) fail_msg("%s: an unset metric_for_best_model in:\n%s", type[t], a);
        if (strcmp(a, b)) fail_msg("%s with %s: provenance\n%s\ndiffers from unset:\n%s", type[t], dflt[t], b, a);
        char want[64];
        snprintf(want, sizeof want, "metric_for_best_model: %s\n", strchr(other[t], '=') + 1);
        if (!strstr(c, want)) fail_msg("%s with %s: no '%s' in:\n%s", type[t], other[t], want, c);
        free(a);
        free(b);
        free(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plan_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_skip_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_inputs_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_class_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_no_provenance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_finetune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cells, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provenance_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provenance_best_metric, setup, teardown),
    };
    return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
