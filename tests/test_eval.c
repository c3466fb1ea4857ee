/* Tests of framework/eval: classification accuracy and macro-F1 against values worked out by hand
 * (and, where stated, scikit-learn's documented examples), BIO span F1 against conlleval /
 * seqeval semantics case by case (exact match, boundary and type errors, I- without B-, adjacent
 * B-X B-X, all-O, empty, counting across sentences, seqeval's README example), and the transfer
 * table: indexing, the mean row, the exact Markdown and CSV text, JSON read back with jansson,
 * SVG structure (balanced tags, one rect per bar, legend, escaping) and atomic writes. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
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
        cmocka_unit_test(test_table_mean_row),
        cmocka_unit_test(test_table_mean_row_seeds),
        cmocka_unit_test(test_table_markdown_text),
        cmocka_unit_test(test_table_csv_text),
        cmocka_unit_test(test_table_json_roundtrip),
        cmocka_unit_test(test_table_svg),
        cmocka_unit_test(test_table_atomic_and_errors),
    };
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
