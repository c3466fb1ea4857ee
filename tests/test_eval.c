/* Tests of framework/eval: classification accuracy and macro-F1 against values worked out by hand
 * (and, where stated, scikit-learn's documented examples), BIO span F1 against conlleval /
 * seqeval semantics case by case (exact match, boundary and type errors, I- without B-, adjacent
 * B-X B-X, all-O, empty, counting across sentences, seqeval's README example), and the transfer
 * table: indexing, the mean row, the exact Markdown and CSV text, JSON read back with jansson,
 * SVG structure (balanced tags, one rect per bar, legend, escaping) and atomic writes. Per-class
 * reports: counts, scores and averages against an independent numpy / seqeval-algorithm reference
 * (tests/golden/gen_per_class_golden.py -> tests/data/eval/per_class_golden.json), a confusion
 * matrix counted by hand, pooling, and the report files (read back, Markdown, SVG, CSV). */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "config/config.h"
#include "eval/eval.h"
#include "io/file.h"

#define TOL 1e-12

static void assert_near(double got, double want, const char *what) {
    if (!(fabs(got - want) <= TOL)) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

/* ---- classification ------------------------------------------------------------------------- */

static void test_cls_hand_values(void **state) {
    (void)state;
    /* gold 0 0 1 1 2 2, pred 0 1 1 1 2 0; label 3 exists but occurs nowhere, so it is not averaged.
     *   label 0: tp 1 (i0), fp 1 (i5), fn 1 (i1) -> F1 = 2/(2+1+1) = 1/2
     *   label 1: tp 2 (i2,i3), fp 1 (i1), fn 0  -> F1 = 4/5
     *   label 2: tp 1 (i4), fp 0, fn 1 (i5)     -> F1 = 2/3
     * macro = (1/2 + 4/5 + 2/3) / 3 = 59/90; accuracy = 4/6. */
    const int32_t gold[] = {0, 0, 1, 1, 2, 2}, pred[] = {0, 1, 1, 1, 2, 0};
    xa_cls_metrics m;
    xa_metrics_classification(&m, gold, pred, 6, 4);
    assert_int_equal(m.n, 6);
    assert_near(m.accuracy, 4.0 / 6.0, "accuracy");
    assert_near(m.macro_f1, 59.0 / 90.0, "macro_f1");
}

static void test_cls_sklearn_doc_example(void **state) {
    (void)state;
    /* scikit-learn's f1_score docstring: y_true [0,1,2,0,1,2], y_pred [0,2,1,0,0,1],
     * average="macro" -> 0.26666...: label 0 F1 = 4/5 (tp 2, fp 1), labels 1 and 2 have no tp. */
    const int32_t gold[] = {0, 1, 2, 0, 1, 2}, pred[] = {0, 2, 1, 0, 0, 1};
    xa_cls_metrics m;
    xa_metrics_classification(&m, gold, pred, 6, 3);
    assert_near(m.macro_f1, 0.8 / 3.0, "macro_f1");
    assert_near(m.accuracy, 2.0 / 6.0, "accuracy");
}

static void test_cls_label_only_predicted(void **state) {
    (void)state;
    /* Label 1 is never gold but predicted once: the average is over the gold labels only
     * (sklearn f1_score(average="macro", labels=sorted(set(gold))), zero_division=0), so every
     * setup scored on this test file averages over the same classes. Label 0: tp 2, fn 1 -> 4/5;
     * the wrong prediction still costs label 0 its recall. */
    const int32_t gold[] = {0, 0, 0}, pred[] = {0, 0, 1};
    xa_cls_metrics m;
    xa_metrics_classification(&m, gold, pred, 3, 5);
    assert_near(m.macro_f1, 0.8, "macro_f1");
    assert_near(m.accuracy, 2.0 / 3.0, "accuracy");
    /* Two heads on one test set (gold 0, 0, 2, 2): one predicts an extra class 1, one cannot; both
     * average over {0, 2} (the union rule would give head a three classes and 5/9).
     * Head a: label 0 tp 1 fn 1 -> 2/3, label 2 tp 2 -> 1; mean 5/6.
     * Head b: label 0 tp 2 fp 1 -> 4/5, label 2 tp 1 fn 1 -> 2/3; mean 11/15. */
    const int32_t g2[] = {0, 0, 2, 2}, pa[] = {0, 1, 2, 2}, pb[] = {0, 0, 0, 2};
    xa_metrics_classification(&m, g2, pa, 4, 3);
    assert_near(m.macro_f1, 5.0 / 6.0, "macro_f1 extra class");
    xa_metrics_classification(&m, g2, pb, 4, 3);
    assert_near(m.macro_f1, 11.0 / 15.0, "macro_f1 no extra class");
}

static void test_cls_edges(void **state) {
    (void)state;
    xa_cls_metrics m;
    xa_metrics_classification(&m, NULL, NULL, 0, 3);
    assert_int_equal(m.n, 0);
    assert_true(m.accuracy == 0.0 && m.macro_f1 == 0.0);
    const int32_t same[] = {2, 0, 1, 2};
    xa_metrics_classification(&m, same, same, 4, 3);
    assert_near(m.accuracy, 1.0, "accuracy");
    assert_near(m.macro_f1, 1.0, "macro_f1");
    /* One label only, always right: a single F1 of 1. */
    const int32_t ones[] = {1, 1};
    xa_metrics_classification(&m, ones, ones, 2, 2);
    assert_near(m.macro_f1, 1.0, "macro_f1 single label");
}

/* ---- spans ----------------------------------------------------------------------------------- */

enum { O, BP, IP, BL, IL, BM, IM, SP, EP, N_NAMES };
static const char k_names[N_NAMES][64] = {"O",      "B-PER",  "I-PER",  "B-LOC", "I-LOC",
                                          "B-MISC", "I-MISC", "S-PER", "E-PER"};

static xa_span_counts count1(const int32_t *gold, const int32_t *pred, int n) {
    xa_span_counts c = {0};
    xa_span_count(&c, gold, pred, n, k_names, N_NAMES);
    return c;
}

static void assert_counts(xa_span_counts c, int64_t n_gold, int64_t n_pred, int64_t n_correct,
                          const char *what) {
    if (c.n_gold != n_gold || c.n_pred != n_pred || c.n_correct != n_correct) {
        fail_msg("%s: gold/pred/correct = %lld/%lld/%lld, want %lld/%lld/%lld", what,
                 (long long)c.n_gold, (long long)c.n_pred, (long long)c.n_correct,
                 (long long)n_gold, (long long)n_pred, (long long)n_correct);
    }
}

static void test_span_exact_match(void **state) {
    (void)state;
    const int32_t g[] = {BP, IP, O, BL, IL, IL, O, BM};
    xa_span_counts c = count1(g, g, 8);
    assert_counts(c, 3, 3, 3, "exact");
    assert_int_equal(c.n_tokens, 8);
    assert_int_equal(c.n_tokens_correct, 8);
    xa_span_metrics m;
    xa_span_finish(&m, &c);
    assert_near(m.precision, 1.0, "P");
    assert_near(m.recall, 1.0, "R");
    assert_near(m.f1, 1.0, "F1");
    assert_near(m.token_accuracy, 1.0, "token accuracy");
    assert_int_equal(m.counts.n_gold, 3);
}

static void test_span_boundary_errors(void **state) {
    (void)state;
    /* Predicted span too short, then too long, then shifted: no span matches. */
    const int32_t g1[] = {BP, IP, O}, p1[] = {BP, O, O};
    assert_counts(count1(g1, p1, 3), 1, 1, 0, "too short");
    const int32_t g2[] = {BP, O, O}, p2[] = {BP, IP, O};
    assert_counts(count1(g2, p2, 3), 1, 1, 0, "too long");
    const int32_t g3[] = {O, BL, IL, O}, p3[] = {O, O, BL, IL};
    assert_counts(count1(g3, p3, 4), 1, 1, 0, "shifted");
    /* One right, one with a wrong end: P = R = 1/2. */
    const int32_t g4[] = {BP, IP, O, BL, IL}, p4[] = {BP, IP, O, BL, O};
    xa_span_counts c = count1(g4, p4, 5);
    assert_counts(c, 2, 2, 1, "half");
    assert_int_equal(c.n_tokens_correct, 4);
    xa_span_metrics m;
    xa_span_finish(&m, &c);
    assert_near(m.f1, 0.5, "F1");
    assert_near(m.token_accuracy, 0.8, "token accuracy");
}

static void test_span_type_errors(void **state) {
    (void)state;
    const int32_t g1[] = {BP, IP}, p1[] = {BL, IL};
    assert_counts(count1(g1, p1, 2), 1, 1, 0, "wrong type");
    /* B-PER I-LOC is two spans (PER 0..0, LOC 1..1): the I-LOC does not continue a PER. */
    const int32_t p2[] = {BP, IL};
    assert_counts(count1(g1, p2, 2), 1, 2, 0, "type switch inside a span");
    /* Gold has the same split: both spans match. */
    assert_counts(count1(p2, p2, 2), 2, 2, 2, "type switch in both");
}

static void test_span_i_without_b(void **state) {
    (void)state;
    /* conlleval: an I-X after O (or at the start) opens a span, so I-PER I-PER = PER 1..2. */
    const int32_t g1[] = {O, IP, IP, O}, p1[] = {O, BP, IP, O};
    assert_counts(count1(g1, p1, 4), 1, 1, 1, "I after O");
    const int32_t g2[] = {IL}, p2[] = {BL};
    assert_counts(count1(g2, p2, 1), 1, 1, 1, "I at the start");
    /* I-LOC after B-PER: a new LOC span. */
    const int32_t g3[] = {BP, IL, IL}, p3[] = {BP, BL, IL};
    assert_counts(count1(g3, p3, 3), 2, 2, 2, "I of another type");
}

static void test_span_adjacent_same_type(void **state) {
    (void)state;
    /* B-X B-X is two one-word spans; B-X I-X one two-word span. */
    const int32_t g1[] = {BP, BP}, p1[] = {BP, IP};
    assert_counts(count1(g1, p1, 2), 2, 1, 0, "B B vs B I");
    assert_counts(count1(g1, g1, 2), 2, 2, 2, "B B vs B B");
    /* gold PER 0..0, PER 1..2; pred PER 0..0, PER 1..1: the first matches. */
    const int32_t g2[] = {BP, BP, IP}, p2[] = {BP, BP, O};
    assert_counts(count1(g2, p2, 3), 2, 2, 1, "B B I vs B B O");
}

static void test_span_all_o_and_empty(void **state) {
    (void)state;
    const int32_t g[] = {O, O, O};
    xa_span_counts c = count1(g, g, 3);
    assert_counts(c, 0, 0, 0, "all O");
    assert_int_equal(c.n_tokens, 3);
    xa_span_metrics m;
    xa_span_finish(&m, &c);
    assert_true(m.precision == 0.0 && m.recall == 0.0 && m.f1 == 0.0); /* undefined -> 0 */
    assert_near(m.token_accuracy, 1.0, "token accuracy");
    /* Predicting a span where gold has none: P = 0, R undefined = 0. */
    const int32_t p[] = {O, BL, O};
    assert_counts(count1(g, p, 3), 0, 1, 0, "spurious");

    xa_span_counts e = count1(NULL, NULL, 0);
    assert_counts(e, 0, 0, 0, "empty");
    assert_int_equal(e.n_tokens, 0);
    xa_span_finish(&m, &e);
    assert_true(m.precision == 0.0 && m.recall == 0.0 && m.f1 == 0.0 && m.token_accuracy == 0.0);
}

static void test_span_across_sentences(void **state) {
    (void)state;
    /* Counts add up over sentences (conlleval's totals, i.e. micro average, not a mean of
     * per-sentence F1s):
     *   s1: gold PER 0..1, pred PER 0..1               -> gold 1, pred 1, correct 1, tokens 3/3
     *   s2: gold LOC 0..0, pred LOC 0..0 + LOC 1..1    -> gold 1, pred 2, correct 1, tokens 2/3
     * P = 2/3, R = 1, F1 = 2 * (2/3) / (5/3) = 4/5; token accuracy 5/6. */
    xa_span_counts c = {0};
    const int32_t g1[] = {BP, IP, O}, g2[] = {BL, O, O}, p2[] = {BL, BL, O};
    xa_span_count(&c, g1, g1, 3, k_names, N_NAMES);
    xa_span_count(&c, g2, p2, 3, k_names, N_NAMES);
    assert_counts(c, 2, 3, 2, "two sentences");
    xa_span_metrics m;
    xa_span_finish(&m, &c);
    assert_near(m.precision, 2.0 / 3.0, "P");
    assert_near(m.recall, 1.0, "R");
    assert_near(m.f1, 0.8, "F1");
    assert_near(m.token_accuracy, 5.0 / 6.0, "token accuracy");

    /* A span never continues into the next sentence: PER at the end of s1 and I-PER at the start
     * of s2 are two spans (one if the sentences were concatenated). */
    xa_span_counts d = {0};
    const int32_t s1[] = {O, BP}, s2[] = {IP, O};
    xa_span_count(&d, s1, s1, 2, k_names, N_NAMES);
    xa_span_count(&d, s2, s2, 2, k_names, N_NAMES);
    assert_counts(d, 2, 2, 2, "sentence boundary");
}

static void test_span_seqeval_readme(void **state) {
    (void)state;
    /* seqeval's README: y_true [[O O O B-MISC I-MISC I-MISC O], [B-PER I-PER O]],
     * y_pred [[O O B-MISC I-MISC I-MISC I-MISC O], [B-PER I-PER O]]:
     * f1_score = 0.50 (MISC 3..5 vs 2..5 misses, PER matches), accuracy_score = 0.80 (8/10). */
    xa_span_counts c = {0};
    const int32_t g1[] = {O, O, O, BM, IM, IM, O}, p1[] = {O, O, BM, IM, IM, IM, O};
    const int32_t g2[] = {BP, IP, O};
    xa_span_count(&c, g1, p1, 7, k_names, N_NAMES);
    xa_span_count(&c, g2, g2, 3, k_names, N_NAMES);
    xa_span_metrics m;
    xa_span_finish(&m, &c);
    assert_near(m.f1, 0.5, "F1");
    assert_near(m.precision, 0.5, "P");
    assert_near(m.recall, 0.5, "R");
    assert_near(m.token_accuracy, 0.8, "token accuracy");
}

static void test_span_iobes(void **state) {
    (void)state;
    /* conlleval also reads IOBES: B-PER E-PER is one span, S-PER S-PER two. */
    const int32_t g[] = {BP, EP, SP, SP}, p[] = {BP, EP, SP, O};
    assert_counts(count1(g, p, 4), 3, 2, 2, "iobes");
}

/* ---- tables: building ------------------------------------------------------------------------ */

static void test_table_indexing(void **state) {
    (void)state;
    xa_table *t = malloc(sizeof *t);
    assert_non_null(t);
    xa_table_init(t, "topic: accuracy", "accuracy");
    assert_string_equal(t->title, "topic: accuracy");
    assert_string_equal(t->metric, "accuracy");
    assert_int_equal(t->n_rows, 0);
    assert_int_equal(t->n_cols, 0);
    for (int r = 0; r < XA_TABLE_MAX_ROWS; r++) {
        for (int c = 0; c < XA_TABLE_MAX_COLS; c++) {
            assert_true(isnan(t->value[r][c]) && isnan(t->spread[r][c]));
        }
    }
    assert_int_equal(xa_table_row(t, "en"), 0);
    assert_int_equal(xa_table_row(t, "de"), 1);
    assert_int_equal(xa_table_row(t, "en"), 0);
    assert_int_equal(xa_table_col(t, "mad-x"), 0);
    assert_int_equal(xa_table_col(t, "en"), 1); /* rows and columns are separate name spaces */
    assert_int_equal(xa_table_col(t, "mad-x"), 0);
    assert_int_equal(t->n_rows, 2);
    assert_int_equal(t->n_cols, 2);

    /* Full: -1 for a new name, existing names are still found. */
    for (int i = 2; i < XA_TABLE_MAX_ROWS; i++) {
        char name[16];
        snprintf(name, sizeof name, "l%d", i);
        assert_int_equal(xa_table_row(t, name), i);
    }
    assert_int_equal(xa_table_row(t, "one-too-many"), -1);
    assert_int_equal(xa_table_row(t, "de"), 1);
    for (int i = 2; i < XA_TABLE_MAX_COLS; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(xa_table_col(t, name), i);
    }
    assert_int_equal(xa_table_col(t, "extra"), -1);
    assert_int_equal(t->n_cols, XA_TABLE_MAX_COLS);

    /* Long names are truncated, at a UTF-8 boundary, and find their own entry again. */
    xa_table_init(t, NULL, NULL);
    assert_string_equal(t->title, "");
    char longname[64];
    memset(longname, 'a', 30);
    memcpy(longname + 30, "\xC3\xA9xyz", 6); /* 30 x 'a', "é", "xyz": 35 bytes */
    assert_int_equal(xa_table_row(t, longname), 0);
    assert_int_equal((int)strlen(t->rows[0]), 30); /* "é" would need bytes 30..31 */
    assert_int_equal(xa_table_row(t, longname), 0);
    assert_int_equal(t->n_rows, 1);
    free(t);
}

/* Issue 14: with the most targets a recipe accepts, the source and the mean rows still fit (a
 * 65th row was -1 and cmd_recipe.c wrote value[-1]). */
static void test_table_max_targets(void **state) {
    (void)state;
    xa_table *t = malloc(sizeof *t);
    assert_non_null(t);
    xa_table_init(t, "topic: accuracy", "accuracy");
    int c = xa_table_col(t, "madx");
    assert_int_equal(xa_table_row(t, "en (src)"), 0);
    for (int i = 0; i < XA_CFG_MAX_LANGS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        int r = xa_table_row(t, name);
        assert_int_equal(r, i + 1);
        t->value[r][c] = i;
    }
    xa_table_add_mean_row(t, "mean (targets)");
    assert_int_equal(t->n_rows, XA_CFG_MAX_LANGS + 2);
    int m = xa_table_row(t, "mean (targets)");
    assert_int_equal(m, XA_CFG_MAX_LANGS + 1);
    assert_true(fabs(t->value[m][c] - (XA_CFG_MAX_LANGS - 1) / 2.0) < 1e-12);
    free(t);
}

static void test_table_mean_row(void **state) {
    (void)state;
    xa_table *t = malloc(sizeof *t);
    assert_non_null(t);
    xa_table_init(t, "t", "accuracy");
    int en = xa_table_row(t, "en"), de = xa_table_row(t, "de"), sw = xa_table_row(t, "sw");
    int a = xa_table_col(t, "a"), b = xa_table_col(t, "b"), c = xa_table_col(t, "c");
    t->value[en][a] = 0.8;
    t->value[de][a] = 0.6;
    t->value[sw][a] = 0.4;
    t->spread[en][a] = 0.01;
    t->value[de][b] = 0.5; /* b: only de measured */
    /* c: nothing measured */
    xa_table_add_mean_row(t, "mean");
    assert_int_equal(t->n_rows, 4);
    assert_string_equal(t->rows[3], "mean");
    assert_near(t->value[3][a], 0.6, "mean a");
    assert_near(t->value[3][b], 0.5, "mean b (NaN ignored)");
    assert_true(isnan(t->value[3][c]));
    assert_true(isnan(t->spread[3][a]));
    /* Adding it again recomputes the same row without counting itself. */
    t->value[sw][b] = 0.3;
    xa_table_add_mean_row(t, "mean");
    assert_int_equal(t->n_rows, 4);
    assert_near(t->value[3][a], 0.6, "mean a again");
    assert_near(t->value[3][b], 0.4, "mean b again");
    free(t);
}

/* The mean over target rows with its spread over seeds: the std of each seed's mean over the
 * targets (hand values), NaN when a seed misses a target or there is one seed. */
static void test_table_mean_row_seeds(void **state) {
    (void)state;
    xa_table *t = malloc(sizeof *t);
    xa_seed_sums *ss = calloc(1, sizeof *ss);
    assert_non_null(t);
    assert_non_null(ss);
    xa_table_init(t, "t", "accuracy");
    int en = xa_table_row(t, "en (src)"), de = xa_table_row(t, "de"), sw = xa_table_row(t, "sw");
    int a = xa_table_col(t, "a"), b = xa_table_col(t, "b");
    /* a: de 0.6 / 0.8, sw 0.4 / 0.4 over seeds 0 / 1: seed means 0.5 and 0.6 */
    const double da[2] = {0.6, 0.8}, sa[2] = {0.4, 0.4};
    for (int k = 0; k < 2; k++) xa_seed_sums_add(ss, a, k, da[k]), xa_seed_sums_add(ss, a, k, sa[k]);
    t->value[en][a] = 0.9; /* the source row is not averaged */
    t->value[de][a] = 0.7;
    t->value[sw][a] = 0.4;
    /* b: sw has no value for seed 1 */
    xa_seed_sums_add(ss, b, 0, 0.5), xa_seed_sums_add(ss, b, 1, 0.7), xa_seed_sums_add(ss, b, 0, 0.3);
    t->value[de][b] = 0.6;
    t->value[sw][b] = 0.3;
    xa_seed_sums_add(ss, b, 99, 1.0); /* out of range: ignored */
    xa_table_add_mean_row_seeds(t, "mean (targets)", 1, ss, 2);
    assert_int_equal(t->n_rows, 4);
    assert_near(t->value[3][a], 0.55, "mean a");
    assert_near(t->spread[3][a], sqrt(0.005), "spread a: std of 0.5 and 0.6");
    assert_near(t->value[3][b], 0.45, "mean b");
    assert_true(isnan(t->spread[3][b]));
    /* re-added: the same row, recomputed; with one seed there is no spread */
    xa_table_add_mean_row_seeds(t, "mean (targets)", 1, ss, 1);
    assert_int_equal(t->n_rows, 4);
    assert_near(t->value[3][a], 0.55, "mean a again");
    assert_true(isnan(t->spread[3][a]));
    free(ss);
    free(t);
}

/* ---- tables: renderings ---------------------------------------------------------------------- */

/* rows en de sw; columns "mad-x" and "full|ft" (a pipe to escape in Markdown);
 * en: 0.853 ± 0.012, 0.861        (best: full|ft)
 * de: 0.7 ± 0.0049, not measured  (one value: no bold)
 * sw: 0.5, 0.5                    (a tie: both bold) */
static xa_table *make_table(void) {
    xa_table *t = malloc(sizeof *t);
    assert_non_null(t);
    xa_table_init(t, "xnli: accuracy", "accuracy");
    t->n_seeds = 3;
    int en = xa_table_row(t, "en"), de = xa_table_row(t, "de"), sw = xa_table_row(t, "sw");
    int a = xa_table_col(t, "mad-x"), b = xa_table_col(t, "full|ft");
    t->value[en][a] = 0.853;
    t->spread[en][a] = 0.012;
    t->value[en][b] = 0.861;
    t->value[de][a] = 0.7;
    t->spread[de][a] = 0.0049;
    t->value[sw][a] = 0.5;
    t->value[sw][b] = 0.5;
    return t;
}

static const char k_markdown[] = "### xnli: accuracy\n"
                                 "\n"
                                 "| language | mad-x | full\\|ft |\n"
                                 "|:---|---:|---:|\n"
                                 "| en | 85.3 \xC2\xB1 1.2 | **86.1** |\n"
                                 "| de | 70.0 \xC2\xB1 0.5 | \xE2\x80\x93 |\n"
                                 "| sw | **50.0** | **50.0** |\n";

static void test_table_markdown_text(void **state) {
    (void)state;
    xa_table *t = make_table();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    xa_table_print_markdown(t, f);
    fclose(f);
    if (strcmp(buf, k_markdown) != 0) fail_msg("markdown:\n%s\nwant:\n%s", buf, k_markdown);
    free(buf);

    const char *path = xt_tmp_path("table.md");
    assert_int_equal(xa_table_write_markdown(t, path), XA_STATUS_OK);
    char *text = xt_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, k_markdown);
    free(text);
    free(t);
}

static void test_table_csv_text(void **state) {
    (void)state;
    xa_table *t = make_table();
    const char *path = xt_tmp_path("table.csv");
    assert_int_equal(xa_table_write_csv(t, path), XA_STATUS_OK);
    char *text = xt_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, "language,mad-x,full|ft,mad-x std,full|ft std\n"
                              "en,0.853,0.861,0.012,\n"
                              "de,0.7,,0.0049,\n"
                              "sw,0.5,0.5,,\n");
    free(text);

    /* No spreads: no std columns. Quotes and commas are quoted (RFC 4180). */
    xa_table_init(t, "q", "f1");
    t->value[xa_table_row(t, "x")][xa_table_col(t, "a,\"b\"")] = 0.25;
    assert_int_equal(xa_table_write_csv(t, path), XA_STATUS_OK);
    text = xt_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, "language,\"a,\"\"b\"\"\"\nx,0.25\n");
    free(text);
    free(t);
}

static void test_table_json_roundtrip(void **state) {
    (void)state;
    xa_table *t = make_table();
    const char *path = xt_tmp_path("table.json");
    assert_int_equal(xa_table_write_json(t, path), XA_STATUS_OK);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) fail_msg("%s:%d: %s", path, err.line, err.text);
    assert_string_equal(json_string_value(json_object_get(root, "title")), "xnli: accuracy");
    assert_string_equal(json_string_value(json_object_get(root, "metric")), "accuracy");
    assert_int_equal(json_integer_value(json_object_get(root, "n_seeds")), 3);
    json_t *rows = json_object_get(root, "rows"), *cols = json_object_get(root, "cols");
    assert_int_equal(json_array_size(rows), 3);
    assert_string_equal(json_string_value(json_array_get(rows, 2)), "sw");
    assert_int_equal(json_array_size(cols), 2);
    assert_string_equal(json_string_value(json_array_get(cols, 1)), "full|ft");
    json_t *value = json_object_get(root, "value"), *spread = json_object_get(root, "spread");
    assert_int_equal(json_array_size(value), 3);
    for (int r = 0; r < 3; r++) {
        json_t *vr = json_array_get(value, (size_t)r), *sr = json_array_get(spread, (size_t)r);
        assert_int_equal(json_array_size(vr), 2);
        assert_int_equal(json_array_size(sr), 2);
        for (int c = 0; c < 2; c++) {
            json_t *v = json_array_get(vr, (size_t)c), *s = json_array_get(sr, (size_t)c);
            if (isnan(t->value[r][c])) {
                assert_true(json_is_null(v));
            } else {
                assert_true(json_is_number(v));
                assert_near(json_number_value(v), t->value[r][c], "value");
            }
            if (isnan(t->spread[r][c])) {
                assert_true(json_is_null(s));
            } else {
                assert_near(json_number_value(s), t->spread[r][c], "spread");
            }
        }
    }
    assert_true(json_is_null(json_array_get(json_array_get(value, 1), 1)));
    json_decref(root);

    /* A name that is not UTF-8 cannot become a JSON string: FORMAT, and nothing is written. */
    const char *bad = xt_tmp_path("bad.json");
    xa_table_row(t, "\xFF\xFE");
    assert_int_equal(xa_table_write_json(t, bad), XA_STATUS_FORMAT);
    xt_assert_error_mentions("UTF-8");
    assert_null(xt_read_file(bad, NULL));
    free(t);
}

/* ---- SVG checks ---- */

static int count_substr(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* A small well-formedness check: every tag closes in order (a stack of names), no '<' or '&' in
 * text or attributes except as markup or one of the five entities, attributes quoted. Returns NULL
 * when fine, else a message in a static buffer. */
static const char *xml_check(const char *s) {
    static char msg[256];
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    while (*p) {
        if (*p == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int i = 0; i < 5; i++) ok |= strncmp(p, ents[i], strlen(ents[i])) == 0;
            if (!ok) return snprintf(msg, sizeof msg, "bare '&' at %d", (int)(p - s)), msg;
            p++;
            continue;
        }
        if (*p == '>') return snprintf(msg, sizeof msg, "bare '>' at %d", (int)(p - s)), msg;
        if (*p != '<') {
            if (depth == 0 && *p != '\n' && *p != ' ')
                return snprintf(msg, sizeof msg, "text outside the root at %d", (int)(p - s)), msg;
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nlen = strcspn(name, " \t\n/>");
        if (nlen == 0 || nlen >= 32) {
            return snprintf(msg, sizeof msg, "bad tag at %d", (int)(p - s)), msg;
        }
        /* scan to the end of the tag, honouring quoted attribute values */
        const char *q = name + nlen;
        char quote = 0;
        for (; *q && (quote || *q != '>'); q++) {
            if (quote) {
                if (*q == quote) {
                    quote = 0;
                } else if (*q == '<') {
                    return snprintf(msg, sizeof msg, "'<' in attribute"), msg;
                }
            } else if (*q == '"' || *q == '\'') {
                quote = *q;
            } else if (*q == '=' && q[1] != '"' && q[1] != '\'') {
                return snprintf(msg, sizeof msg, "unquoted attribute at %d", (int)(q - s)), msg;
            }
        }
        if (!*q) return "unterminated tag";
        int self_closing = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != nlen ||
                strncmp(stack[depth - 1], name, nlen) != 0) {
                return snprintf(msg, sizeof msg, "</%.*s> does not close <%s>", (int)nlen, name,
                                depth ? stack[depth - 1] : "(nothing)"),
                       msg;
            }
            depth--;
        } else if (!self_closing) {
            if (depth == 0) roots++;
            if (depth == 64) return "too deep";
            memcpy(stack[depth], name, nlen);
            stack[depth][nlen] = '\0';
            depth++;
        } else if (depth == 0) {
            roots++;
        }
        p = q + 1;
    }
    if (depth != 0) return snprintf(msg, sizeof msg, "<%s> not closed", stack[depth - 1]), msg;
    if (roots != 1) return snprintf(msg, sizeof msg, "%d root elements", roots), msg;
    return NULL;
}

static double svg_width(const char *text) {
    const char *w = strstr(text, "width=\"");
    assert_non_null(w);
    return atof(w + 7);
}

static void test_table_svg(void **state) {
    (void)state;
    xa_table *t = make_table();
    snprintf(t->title, sizeof t->title, "%s", "<&> \"quoted\" 'single'");
    xa_table_col(t, "a<b"); /* a third setup, measured nowhere */
    const char *path = xt_tmp_path("table.svg");
    assert_int_equal(xa_table_write_svg(t, path), XA_STATUS_OK);
    char *text = xt_read_file(path, NULL);
    assert_non_null(text);
    assert_true(strncmp(text, "<svg", 4) == 0);
    size_t len = strlen(text);
    assert_true(len > 7 && strcmp(text + len - 7, "</svg>\n") == 0);
    const char *bad = xml_check(text);
    if (bad) fail_msg("SVG not well formed: %s\n%s", bad, text);
    assert_non_null(strstr(text, "xmlns=\"http://www.w3.org/2000/svg\""));

    /* one rect per measured cell (5), one swatch per setup (3), the background */
    assert_int_equal(count_substr(text, "<rect class=\"bar\""), 5);
    assert_int_equal(count_substr(text, "<rect"), 5 + 3 + 1);
    /* error bars for the two cells with a spread */
    assert_int_equal(count_substr(text, "<path d="), 2);
    /* legend and x labels */
    assert_non_null(strstr(text, ">mad-x</text>"));
    assert_non_null(strstr(text, ">full|ft</text>"));
    assert_non_null(strstr(text, ">a&lt;b</text>"));
    assert_non_null(strstr(text, ">en</text>"));
    assert_non_null(strstr(text, ">sw</text>"));
    /* the title, escaped, as a heading and as the document's <title> */
    const char *esc = "&lt;&amp;&gt; &quot;quoted&quot; &apos;single&apos;";
    assert_int_equal(count_substr(text, esc), 2);
    assert_null(strstr(text, "<&>"));
    /* the y axis: grid labels 0..100 */
    for (int k = 0; k <= 100; k += 20) {
        char lab[32];
        snprintf(lab, sizeof lab, "dy=\"0.35em\">%d</text>", k);
        assert_non_null(strstr(text, lab));
    }
    /* the palette: first setup in Okabe-Ito orange */
    assert_non_null(strstr(text, "fill=\"#E69F00\""));
    double w_small = svg_width(text);
    free(text);

    /* More rows make a wider chart; long labels still produce a well-formed file. */
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "language-%02d-long", i);
        t->value[xa_table_row(t, name)][0] = 0.01 * i;
    }
    assert_int_equal(xa_table_write_svg(t, path), XA_STATUS_OK);
    text = xt_read_file(path, NULL);
    assert_non_null(text);
    bad = xml_check(text);
    if (bad) fail_msg("SVG not well formed: %s", bad);
    assert_true(svg_width(text) > w_small + 20 * 60);
    assert_int_equal(count_substr(text, "<rect class=\"bar\""), 5 + 20);
    assert_non_null(strstr(text, "rotate(-45"));
    free(text);

    /* An empty table is still a valid chart. */
    xa_table_init(t, "", "");
    assert_int_equal(xa_table_write_svg(t, path), XA_STATUS_OK);
    text = xt_read_file(path, NULL);
    assert_non_null(text);
    bad = xml_check(text);
    if (bad) fail_msg("empty SVG not well formed: %s\n%s", bad, text);
    assert_int_equal(count_substr(text, "<rect class=\"bar\""), 0);
    assert_non_null(strstr(text, ">no data</text>"));
    free(text);
    free(t);
}

/* ---- atomic writes and argument errors ---- */

/* ---- per-class reports --------------------------------------------------------------------------- */

/* An int or double array of a golden JSON case. */
static int64_t jint(const json_t *o, const char *k, size_t i) {
    const json_t *a = json_object_get(o, k);
    if (!json_is_array(a) || i >= json_array_size(a)) fail_msg("golden: no %s[%zu]", k, i);
    return json_integer_value(json_array_get(a, i));
}

static double jreal(const json_t *o, const char *k, size_t i) {
    const json_t *a = json_object_get(o, k), *v = json_is_array(a) ? json_array_get(a, i) : a;
    if (!v) fail_msg("golden: no %s", k);
    return json_number_value(v);
}

/* label names of a case into names[][64]; returns the count */
static int jlabels(const json_t *c, const char *key, char (*names)[64]) {
    const json_t *a = json_object_get(c, key);
    int n = (int)json_array_size(a);
    assert_true(n > 0 && n <= 16);
    for (int i = 0; i < n; i++) snprintf(names[i], 64, "%s", json_string_value(json_array_get(a, (size_t)i)));
    return n;
}

static json_t *golden_reports(void) {
    json_error_t err;
    json_t *g = json_load_file(xt_data_path("eval/per_class_golden.json"), 0, &err);
    if (!g) fail_msg("eval/per_class_golden.json: %s (tests/golden/gen_per_class_golden.py writes it)", err.text);
    return g;
}

/* Per-class counts, scores and averages against the numpy re-implementation of scikit-learn's
 * confusion_matrix / classification_report (tests/golden/gen_per_class_golden.py); the report's
 * macro-F1 is xa_metrics_classification's. */
static void test_report_classification_golden(void **state) {
    (void)state;
    json_t *g = golden_reports();
    const json_t *cases = json_object_get(g, "classification");
    assert_true(json_array_size(cases) >= 3);
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *c = json_array_get(cases, ci);
        const char *name = json_string_value(json_object_get(c, "name"));
        char labels[16][64];
        const int K = jlabels(c, "labels", labels);
        const size_t n = json_array_size(json_object_get(c, "gold"));
        int32_t gold[64], pred[64];
        assert_true(n <= 64);
        for (size_t i = 0; i < n; i++) gold[i] = (int32_t)jint(c, "gold", i), pred[i] = (int32_t)jint(c, "pred", i);
        xa_class_report r;
        assert_int_equal(xa_class_report_init(&r, 0, (const char(*)[64])labels, K), XA_STATUS_OK);
        assert_int_equal(r.n, K);
        xa_class_report_add(&r, gold, pred, (int64_t)n / 2); /* in two calls: counts add up */
        xa_class_report_add(&r, gold + n / 2, pred + n / 2, (int64_t)(n - n / 2));
        const json_t *cm = json_object_get(c, "confusion");
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (r.confusion[a * K + b] != json_integer_value(json_array_get(json_array_get(cm, (size_t)a), (size_t)b)))
                    fail_msg("%s: confusion[%d][%d] = %lld", name, a, b, (long long)r.confusion[a * K + b]);
        for (int k = 0; k < K; k++) {
            xa_class_score sc = xa_class_report_score(&r, k);
            assert_int_equal(sc.support, jint(c, "support", (size_t)k));
            assert_int_equal(sc.predicted, jint(c, "predicted", (size_t)k));
            assert_int_equal(sc.correct, jint(c, "correct", (size_t)k));
            assert_near(sc.precision, jreal(c, "precision", (size_t)k), "precision");
            assert_near(sc.recall, jreal(c, "recall", (size_t)k), "recall");
            assert_near(sc.f1, jreal(c, "f1", (size_t)k), "f1");
        }
        xa_report_summary sum;
        xa_class_report_summary(&r, &sum);
        assert_int_equal(sum.n_macro, (int)json_integer_value(json_object_get(c, "n_macro")));
        assert_near(sum.macro_f1, jreal(c, "macro_f1", 0), "macro_f1");
        assert_near(sum.macro_precision, jreal(c, "macro_precision", 0), "macro_precision");
        assert_near(sum.macro_recall, jreal(c, "macro_recall", 0), "macro_recall");
        assert_near(sum.weighted_f1, jreal(c, "weighted_f1", 0), "weighted_f1");
        assert_near(sum.micro_f1, jreal(c, "accuracy", 0), "accuracy (micro)");
        xa_cls_metrics m; /* the tables' numbers: the same class set, the same value */
        xa_metrics_classification(&m, gold, pred, (int64_t)n, K);
        assert_near(sum.macro_f1, m.macro_f1, "report macro-F1 = table macro-F1");
        assert_near(sum.micro_f1, m.accuracy, "report accuracy = table accuracy");
        xa_class_report_free(&r);
    }
    json_decref(g);
}

/* Per-entity-type span counts against seqeval's get_entities over sets of spans; their sums and
 * the micro scores are xa_span_count's totals. */
static void test_report_tagging_golden(void **state) {
    (void)state;
    json_t *g = golden_reports();
    const json_t *cases = json_object_get(g, "tagging");
    assert_true(json_array_size(cases) >= 3);
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *c = json_array_get(cases, ci);
        const char *name = json_string_value(json_object_get(c, "name"));
        char labels[16][64], types[16][64];
        const int NL = jlabels(c, "labels", labels), NT = jlabels(c, "types", types);
        xa_class_report r;
        assert_int_equal(xa_class_report_init(&r, 1, (const char(*)[64])labels, NL), XA_STATUS_OK);
        assert_int_equal(r.n, NT);
        for (int t = 0; t < NT; t++) assert_string_equal(r.names[t], types[t]);
        xa_span_counts sc = {0};
        const json_t *sents = json_object_get(c, "sentences");
        for (size_t si = 0; si < json_array_size(sents); si++) {
            const json_t *s1 = json_array_get(sents, si);
            int32_t gold[32], pred[32];
            const int n = (int)json_array_size(json_object_get(s1, "gold"));
            assert_true(n <= 32);
            for (int i = 0; i < n; i++) gold[i] = (int32_t)jint(s1, "gold", (size_t)i), pred[i] = (int32_t)jint(s1, "pred", (size_t)i);
            xa_class_report_add_spans(&r, gold, pred, n, (const char(*)[64])labels);
            xa_span_count(&sc, gold, pred, n, (const char(*)[64])labels, NL);
        }
        int64_t sg = 0, sp = 0, st = 0;
        for (int t = 0; t < NT; t++) {
            xa_class_score s1 = xa_class_report_score(&r, t);
            if (s1.support != jint(c, "support", (size_t)t) || s1.predicted != jint(c, "predicted", (size_t)t) ||
                s1.correct != jint(c, "correct", (size_t)t))
                fail_msg("%s %s: gold %lld pred %lld correct %lld", name, types[t], (long long)s1.support,
                         (long long)s1.predicted, (long long)s1.correct);
            assert_near(s1.precision, jreal(c, "precision", (size_t)t), "precision");
            assert_near(s1.recall, jreal(c, "recall", (size_t)t), "recall");
            assert_near(s1.f1, jreal(c, "f1", (size_t)t), "f1");
            sg += s1.support, sp += s1.predicted, st += s1.correct;
        }
        assert_int_equal(sg, sc.n_gold);
        assert_int_equal(sp, sc.n_pred);
        assert_int_equal(st, sc.n_correct);
        xa_report_summary sum;
        xa_class_report_summary(&r, &sum);
        xa_span_metrics sm;
        xa_span_finish(&sm, &sc);
        assert_near(sum.micro_f1, jreal(c, "micro_f1", 0), "micro f1");
        assert_near(sum.micro_precision, jreal(c, "micro_precision", 0), "micro precision");
        assert_near(sum.micro_recall, jreal(c, "micro_recall", 0), "micro recall");
        assert_near(sum.micro_f1, sm.f1, "micro f1 = the table's span F1");
        assert_near(sum.macro_f1, jreal(c, "macro_f1", 0), "macro f1");
        xa_class_report_free(&r);
    }
    json_decref(g);
}

/* A small fixture counted by hand: gold a a a b b c, pred a b c b b a (label d unused).
 *   confusion   a b c d        a: tp 1 of 3 gold, 2 predicted -> P 1/2 R 1/3 F1 2/5
 *           a [ 1 1 1 0 ]      b: tp 2, gold 2, predicted 3   -> P 2/3 R 1   F1 4/5
 *           b [ 0 2 0 0 ]      c: tp 0, gold 1, predicted 1   -> 0
 *           c [ 1 0 0 0 ]      d: no support, never predicted -> 0, not in macro
 *           d [ 0 0 0 0 ]      macro over a b c = (2/5 + 4/5) / 3 = 2/5; weighted (3*2/5 + 2*4/5) / 6 = 7/15
 * Pooling two seeds sums the matrices; merging other classes is refused. */
static void test_report_confusion_hand(void **state) {
    (void)state;
    const char labels[4][64] = {"a", "b", "c", "d"};
    const int32_t gold[] = {0, 0, 0, 1, 1, 2}, pred[] = {0, 1, 2, 1, 1, 0};
    const int64_t want[16] = {1, 1, 1, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    xa_class_report r, r2, other;
    assert_int_equal(xa_class_report_init(&r, 0, labels, 4), XA_STATUS_OK);
    xa_class_report_add(&r, gold, pred, 6);
    for (int i = 0; i < 16; i++) assert_int_equal(r.confusion[i], want[i]);
    xa_class_score a = xa_class_report_score(&r, 0), d = xa_class_report_score(&r, 3);
    assert_near(a.precision, 0.5, "P(a)");
    assert_near(a.recall, 1.0 / 3.0, "R(a)");
    assert_near(a.f1, 0.4, "F1(a)");
    assert_true(d.support == 0 && d.predicted == 0 && d.f1 == 0.0);
    xa_report_summary sum;
    xa_class_report_summary(&r, &sum);
    assert_int_equal(sum.n_macro, 3);
    assert_near(sum.macro_f1, 0.4, "macro");
    assert_near(sum.weighted_f1, 7.0 / 15.0, "weighted");
    assert_near(sum.micro_f1, 0.5, "accuracy");
    assert_int_equal(xa_class_report_copy(&r2, &r), XA_STATUS_OK);
    assert_int_equal(xa_class_report_merge(&r2, &r), XA_STATUS_OK);
    for (int i = 0; i < 16; i++) assert_int_equal(r2.confusion[i], 2 * want[i]);
    assert_int_equal(r2.n_gold[0], 6);
    xa_class_report_summary(&r2, &sum);
    assert_near(sum.macro_f1, 0.4, "macro of two equal seeds");
    assert_int_equal(xa_class_report_init(&other, 0, labels, 3), XA_STATUS_OK);
    assert_int_equal(xa_class_report_merge(&r2, &other), XA_STATUS_CONFIG);
    xa_class_report_free(&other);
    xa_class_report_free(&r2);
    xa_class_report_free(&r);
    xa_class_report_free(&r); /* twice: a freed report is zeroed */
}

/* The files of a report set: per_class.jsonl read back gives the same counts (a rerun reuses
 * them), two seeds pool into one block with summed counts, the Markdown names the classes a setup
 * never predicts and shows the detailed setups' matrices, the heat maps are well-formed SVG, and
 * lines that do not parse are skipped. */
static void test_report_set_files(void **state) {
    (void)state;
    const char labels[3][64] = {"apt", "dpkg", "git <&>"};
    const int32_t gold[] = {0, 0, 1, 2, 2, 2}, p1[] = {0, 0, 0, 2, 2, 0}, p2[] = {0, 1, 1, 2, 0, 0};
    xa_class_report r1, r2;
    assert_int_equal(xa_class_report_init(&r1, 0, labels, 3), XA_STATUS_OK);
    assert_int_equal(xa_class_report_init(&r2, 0, labels, 3), XA_STATUS_OK);
    xa_class_report_add(&r1, gold, p1, 6);
    xa_class_report_add(&r2, gold, p2, 6);
    xa_report_set s = {0};
    assert_int_equal(xa_report_set_add(&s, "00000000000000a1", "de", "madx", "MAD-X Stack(lang:tgt, task)", 3, &r1), XA_STATUS_OK);
    assert_int_equal(xa_report_set_add(&s, "00000000000000a2", "de", "madx", "MAD-X Stack(lang:tgt, task)", 4, &r2), XA_STATUS_OK);
    assert_int_equal(xa_report_set_add(&s, "00000000000000a3", "de", "task_only", "task adapter alone", 3, &r2), XA_STATUS_OK);
    assert_non_null(xa_report_set_find(&s, "00000000000000a2"));
    assert_null(xa_report_set_find(&s, "00000000000000ff"));
    const char *dir = xt_tmp_path("reports");
    assert_int_equal(xa_file_mkdirs(dir), XA_STATUS_OK);
    static const char *const detail[] = {"madx", NULL};
    assert_int_equal(xa_report_set_write(&s, dir, "pkg", detail), XA_STATUS_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/per_class.jsonl", dir);
    xa_report_set back;
    assert_int_equal(xa_report_set_read(&back, path), XA_STATUS_OK);
    assert_int_equal(back.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(back.c[i].cell, s.c[i].cell);
        assert_string_equal(back.c[i].label, s.c[i].label);
        assert_int_equal(back.c[i].seed, s.c[i].seed);
        assert_int_equal(back.c[i].rep.n, 3);
        assert_string_equal(back.c[i].rep.names[2], "git <&>");
        assert_memory_equal(back.c[i].rep.confusion, s.c[i].rep.confusion, 9 * sizeof(int64_t));
        assert_memory_equal(back.c[i].rep.n_pred, s.c[i].rep.n_pred, 3 * sizeof(int64_t));
    }
    xa_report_set_free(&back);
    /* pooled over seeds 3 and 4: the sum of the two matrices */
    snprintf(path, sizeof path, "%s/per_class.json", dir);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    assert_non_null(j);
    const json_t *b0 = json_array_get(json_object_get(j, "blocks"), 0);
    assert_string_equal(json_string_value(json_object_get(b0, "seeds")), "3, 4");
    const json_t *row0 = json_array_get(json_object_get(b0, "confusion"), 0);
    assert_int_equal(json_integer_value(json_array_get(row0, 0)), 3); /* 2 + 1 */
    assert_int_equal(json_integer_value(json_array_get(row0, 1)), 1); /* 0 + 1 */
    assert_int_equal(json_array_size(json_object_get(j, "blocks")), 2);
    json_decref(j);
    snprintf(path, sizeof path, "%s/per_class.md", dir);
    char *md = xt_read_file(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "## de"));
    assert_non_null(strstr(md, "### de: MAD-X Stack(lang:tgt, task) (seeds 3, 4, counts summed)"));
    assert_null(strstr(md, "### de: task adapter alone")); /* not a detailed setup */
    assert_non_null(strstr(md, "| gold \\ predicted | apt | dpkg | git <&> | support |"));
    assert_non_null(strstr(md, "- task adapter alone: predicts every class"));
    assert_non_null(strstr(md, "Macro-F1 averages over the classes present"));
    free(md);
    /* seed 3 alone never predicts dpkg: the note says so */
    xa_report_set one = {0};
    assert_int_equal(xa_report_set_add(&one, "00000000000000a1", "de", "madx", "MAD-X", 3, &r1), XA_STATUS_OK);
    assert_int_equal(xa_report_set_write(&one, dir, "pkg", NULL), XA_STATUS_OK);
    md = xt_read_file(path, NULL);
    assert_non_null(strstr(md, "- MAD-X: never predicts 1 of the 3 classes with support (dpkg); most predicted: apt"));
    assert_non_null(strstr(md, "### de: MAD-X (seed 3)")); /* no detailed setup named: the first */
    free(md);
    xa_report_set_free(&one);
    snprintf(path, sizeof path, "%s/confusion_madx.svg", dir);
    char *svg = xt_read_file(path, NULL);
    assert_non_null(svg);
    const char *bad = xml_check(svg);
    if (bad) fail_msg("confusion_madx.svg: %s", bad);
    assert_non_null(strstr(svg, "git &lt;&amp;&gt;"));
    assert_non_null(strstr(svg, "gold apt, predicted apt: 2 (100.0% of the gold row)"));
    free(svg);
    snprintf(path, sizeof path, "%s/confusion.csv", dir);
    char *csv = xt_read_file(path, NULL);
    assert_non_null(strstr(csv, "language,setup,seeds,gold,predicted,count\nde,MAD-X,3,apt,apt,2\n"));
    free(csv);
    /* a damaged line is skipped, the others read */
    snprintf(path, sizeof path, "%s/per_class.jsonl", dir);
    char *text = xt_read_file(path, NULL);
    size_t tl = strlen(text);
    char *bad2 = malloc(tl + 64);
    snprintf(bad2, tl + 64, "{\"cell\": \"x\", \"kind\": \"classification\"}\nnot json\n%s", text);
    xt_write_file(path, bad2, strlen(bad2));
    assert_int_equal(xa_report_set_read(&back, path), XA_STATUS_OK);
    assert_int_equal(back.n, 1);
    xa_report_set_free(&back);
    assert_int_equal(xa_report_set_read(&back, xt_tmp_path("no-such.jsonl")), XA_STATUS_OK);
    assert_int_equal(back.n, 0);
    free(text);
    free(bad2);
    xa_report_set_free(&s);
    xa_class_report_free(&r1);
    xa_class_report_free(&r2);
}

/* Tagging sets: per-type spans through the files, no confusion matrix or heat map. */
static void test_report_set_tagging(void **state) {
    (void)state;
    const char tags[5][64] = {"O", "B-LOC", "I-LOC", "B-PER", "I-PER"};
    const int32_t gold[] = {1, 2, 0, 3}, pred[] = {1, 2, 0, 1};
    xa_class_report r;
    assert_int_equal(xa_class_report_init(&r, 1, tags, 5), XA_STATUS_OK);
    assert_int_equal(r.n, 2);
    assert_null(r.confusion);
    xa_class_report_add_spans(&r, gold, pred, 4, tags);
    assert_int_equal(r.n_gold[0], 1);
    assert_int_equal(r.n_pred[0], 2);
    assert_int_equal(r.n_correct[0], 1);
    assert_int_equal(r.n_gold[1], 1);
    assert_int_equal(r.n_pred[1], 0);
    xa_report_set s = {0};
    assert_int_equal(xa_report_set_add(&s, "00000000000000b1", "en (src)", "madx", "MAD-X", 3, &r), XA_STATUS_OK);
    const char *dir = xt_tmp_path("reports-tag");
    assert_int_equal(xa_file_mkdirs(dir), XA_STATUS_OK);
    assert_int_equal(xa_report_set_write(&s, dir, "ner", NULL), XA_STATUS_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/per_class.jsonl", dir);
    xa_report_set back;
    assert_int_equal(xa_report_set_read(&back, path), XA_STATUS_OK);
    assert_int_equal(back.n, 1);
    assert_true(back.c[0].rep.tagging);
    assert_string_equal(back.c[0].rep.names[1], "PER");
    assert_int_equal(back.c[0].rep.n_pred[0], 2);
    xa_report_set_free(&back);
    snprintf(path, sizeof path, "%s/per_class.md", dir);
    char *md = xt_read_file(path, NULL);
    assert_non_null(strstr(md, "never predicts 1 of the 2 entity types with support (PER)"));
    assert_non_null(strstr(md, "| micro (the table's span F1) |"));
    free(md);
    snprintf(path, sizeof path, "%s/confusion_madx.svg", dir);
    assert_int_equal(access(path, F_OK), -1);
    xa_report_set_free(&s);
    xa_class_report_free(&r);
}

static void test_table_atomic_and_errors(void **state) {
    (void)state;
    xa_table *t = make_table();
    const char *dir = xt_tmp_path("atomic");
    assert_int_equal(xa_file_mkdirs(dir), XA_STATUS_OK);
    char path[4200];
    static const char *const names[] = {"t.md", "t.json", "t.csv", "t.svg"};
    for (int round = 0; round < 2; round++) { /* the second round replaces existing files */
        snprintf(path, sizeof path, "%s/%s", dir, names[0]);
        assert_int_equal(xa_table_write_markdown(t, path), XA_STATUS_OK);
        snprintf(path, sizeof path, "%s/%s", dir, names[1]);
        assert_int_equal(xa_table_write_json(t, path), XA_STATUS_OK);
        snprintf(path, sizeof path, "%s/%s", dir, names[2]);
        assert_int_equal(xa_table_write_csv(t, path), XA_STATUS_OK);
        snprintf(path, sizeof path, "%s/%s", dir, names[3]);
        assert_int_equal(xa_table_write_svg(t, path), XA_STATUS_OK);
    }
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        if (strstr(e->d_name, ".tmp")) fail_msg("temporary file left: %s", e->d_name);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 4);

    /* A directory that does not exist: IO, naming the path; nothing created. */
    snprintf(path, sizeof path, "%s/missing/t.svg", dir);
    assert_int_equal(xa_table_write_svg(t, path), XA_STATUS_IO);
    xt_assert_error_mentions("missing");
    assert_int_equal(xa_table_write_markdown(t, NULL), XA_STATUS_USAGE);
    assert_int_equal(xa_table_write_csv(t, ""), XA_STATUS_USAGE);
    t->n_rows = XA_TABLE_MAX_ROWS + 1;
    snprintf(path, sizeof path, "%s/t.json", dir);
    assert_int_equal(xa_table_write_json(t, path), XA_STATUS_USAGE);
    xt_assert_error_mentions("n_rows");
    free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cls_hand_values),
        cmocka_unit_test(test_cls_sklearn_doc_example),
        cmocka_unit_test(test_cls_label_only_predicted),
        cmocka_unit_test(test_cls_edges),
        cmocka_unit_test(test_span_exact_match),
        cmocka_unit_test(test_span_boundary_errors),
        cmocka_unit_test(test_span_type_errors),
        cmocka_unit_test(test_span_i_without_b),
        cmocka_unit_test(test_span_adjacent_same_type),
        cmocka_unit_test(test_span_all_o_and_empty),
        cmocka_unit_test(test_span_across_sentences),
        cmocka_unit_test(test_span_seqeval_readme),
        cmocka_unit_test(test_span_iobes),
        cmocka_unit_test(test_table_indexing),
        cmocka_unit_test(test_table_max_targets),
        cmocka_unit_test(test_table_mean_row),
        cmocka_unit_test(test_table_mean_row_seeds),
        cmocka_unit_test(test_table_markdown_text),
        cmocka_unit_test(test_table_csv_text),
        cmocka_unit_test(test_table_json_roundtrip),
        cmocka_unit_test(test_table_svg),
        cmocka_unit_test(test_table_atomic_and_errors),
        cmocka_unit_test(test_report_classification_golden),
        cmocka_unit_test(test_report_tagging_golden),
        cmocka_unit_test(test_report_confusion_hand),
        cmocka_unit_test(test_report_set_files),
        cmocka_unit_test(test_report_set_tagging),
    };
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
