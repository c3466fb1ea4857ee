/* Tests of extractive question answering: the data (data/qa.c: SQuAD JSON and HF JSON lines,
 * answer checks, windows with a stride, offsets, training targets) and the scoring (eval/squad.c:
 * SQuAD v1.1 normalization, exact match and F1 against hand-worked values and against the
 * official script's logic in tests/golden/gen_squad_golden.py, and HF's postprocessing).
 *
 * The encoding tests use the committed tokenizer fixture tests/data/spm/fixture.model; the expected
 * windows are built from xa_spm_encode_offsets on the same texts, so they check the windowing and
 * the targets, not SentencePiece.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"
#include "data/data.h"
#include "eval/eval.h"
#include "tokenizer/spm.h"
#include "tokenizer/tok.h"

static xa_tok *g_tok;  /* the SentencePiece fixture (xt_fixture_tok) */
static xa_spm *g_spm;  /* g_tok's model */

static int group_setup(void **state) {
    (void)state;
    g_tok = xt_fixture_tok();
    g_spm = g_tok ? xa_tok_spm(g_tok) : NULL;
    return g_tok ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    xa_tok_free(g_tok);
    return 0;
}

static xa_status load(xa_task_data *d, const char *path, int max_len, int stride, int bert) {
    xa_task_input in = {XA_TASK_KIND_QA, XA_TASK_FORMAT_AUTO, NULL, NULL, 0, bert, stride};
    xa_labels labels;
    memset(&labels, 0, sizeof labels);
    return xa_task_data_load_input(d, g_tok, path, &in, max_len, &labels);
}

static void test_char_offsets(void **state) {
    (void)state;
    const char *s = "Größe é€x"; /* G r ö ß e ' ' é € x */
    const size_t n = strlen(s);
    assert_int_equal(xa_qa_char_to_byte(s, n, 0), 0);
    assert_int_equal(xa_qa_char_to_byte(s, n, 3), 4);  /* after "Grö" */
    assert_int_equal(xa_qa_char_to_byte(s, n, 8), 13); /* "x" */
    assert_int_equal(xa_qa_char_to_byte(s, n, 9), (int64_t)n);
    assert_int_equal(xa_qa_char_to_byte(s, n, 10), -1);
    assert_int_equal(xa_qa_byte_to_char(s, n), 9);
}

/* A long context in windows: the layout of every window, the stride, offsets, and the targets. */
static const char *CTX = "The old mill stood by the river for two hundred years. The miller ground wheat and "
                         "barley for the whole valley. When the river changed its course, the wheel stopped and "
                         "the mill was closed. Today it is a small museum about bread.";
static const char *QUESTION = "  What did the miller grind?";

static void check_windows(const xa_task_data *d, int max_len, int stride, const char *answer) {
    int32_t *q = NULL, *c = NULL;
    xa_spm_span *qs = NULL, *cs = NULL;
    size_t nq = 0, nc = 0;
    const char *qtext = QUESTION + 2; /* HF lstrips the question */
    assert_int_equal(xa_spm_encode_offsets(g_spm, qtext, strlen(qtext), 0, &q, &qs, &nq), XA_STATUS_OK);
    assert_int_equal(xa_spm_encode_offsets(g_spm, CTX, strlen(CTX), 0, &c, &cs, &nc), XA_STATUS_OK);
    if (nq > (size_t)(max_len - 4) / 2) nq = (size_t)(max_len - 4) / 2; /* a long question is cut */
    const size_t W = (size_t)max_len - 4 - nq, step = W - (size_t)stride;
    assert_int_equal(d->n_qa, 1);
    const xa_qa_example *ex = &d->qa[0];
    const size_t a0 = (size_t)(strstr(CTX, answer) - CTX), a1 = a0 + strlen(answer);
    size_t start = 0;
    int seen_answer = 0;
    for (int f = 0; f < d->n; f++, start += step) {
        const xa_task_example *e = &d->ex[f];
        const size_t stop = start + W < nc ? start + W : nc;
        assert_int_equal(e->qa_index, 0);
        assert_int_equal(e->len, (int)(4 + nq + stop - start));
        assert_true(e->len <= max_len);
        assert_int_equal(e->ids[0], 0);
        assert_memory_equal(e->ids + 1, q, nq * sizeof *q);
        assert_int_equal(e->ids[1 + nq], 2);
        assert_int_equal(e->ids[2 + nq], 2);
        assert_memory_equal(e->ids + 3 + nq, c + start, (stop - start) * sizeof *c);
        assert_int_equal(e->ids[e->len - 1], 2);
        for (int t = 0; t < e->len; t++) {
            const int ctx = t >= (int)(3 + nq) && t < e->len - 1;
            if (!ctx) {
                assert_int_equal(e->offsets[2 * t], -1);
                continue;
            }
            xa_spm_span sp = cs[start + (size_t)t - 3 - nq];
            while (sp.begin < sp.end && CTX[sp.begin] == ' ') sp.begin++;
            assert_int_equal(e->offsets[2 * t], (int32_t)sp.begin);
            assert_int_equal(e->offsets[2 * t + 1], (int32_t)sp.end);
        }
        /* the answer's tokens when the window holds it whole, else <s> */
        const int32_t *o = e->offsets;
        const int inside = o[2 * (3 + nq)] <= (int32_t)a0 && o[2 * (e->len - 2) + 1] >= (int32_t)a1;
        if (inside) {
            seen_answer = 1;
            assert_true(e->start > 0 && e->end >= e->start);
            assert_int_equal(o[2 * e->start], (int32_t)a0);
            assert_int_equal(o[2 * e->end + 1], (int32_t)a1);
        } else {
            assert_int_equal(e->start, 0);
            assert_int_equal(e->end, 0);
        }
        if (f == d->n - 1) assert_int_equal(stop, nc);
    }
    assert_true(seen_answer);
    assert_int_equal(ex->first_feature, 0);
    assert_int_equal(ex->n_features, d->n);
    free(q);
    free(qs);
    free(c);
    free(cs);
}

static void test_windows_and_targets(void **state) {
    (void)state;
    char json[2048];
    const char *answer = "wheat and barley";
    const int a = (int)(strstr(CTX, answer) - CTX);
    snprintf(json, sizeof json,
             "{\"id\": \"q1\", \"context\": \"%s\", \"question\": \"%s\", \"answers\": {\"text\": [\"%s\"], "
             "\"answer_start\": [%d]}}\n",
             CTX, QUESTION, answer, a);
    const char *p = xt_write_tmp("win.jsonl", json);
    for (int stride = 4; stride <= 12; stride += 8) {
        xa_task_data d;
        assert_int_equal(load(&d, p, 48, stride, 0), XA_STATUS_OK);
        assert_true(d.n >= 3);
        assert_int_equal(d.doc_stride, stride);
        assert_int_equal(d.n_truncated, 1);
        assert_string_equal(d.qa[0].id, "q1");
        assert_int_equal(d.qa[0].n_answers, 1);
        assert_int_equal(d.qa[0].answer_start[0], a);
        check_windows(&d, 48, stride, answer);
        xa_task_data_free(&d);
    }
    /* one window when it fits; the default stride min(128, max_len / 3) */
    xa_task_data d;
    assert_int_equal(load(&d, p, 256, 0, 0), XA_STATUS_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.doc_stride, 85);
    assert_int_equal(d.n_truncated, 0);
    assert_true(d.ex[0].start > 0);
    xa_task_data_free(&d);
    /* the batcher carries start and end as the labels */
    assert_int_equal(load(&d, p, 32, 8, 0), XA_STATUS_OK);
    xa_task_batcher bt;
    xa_task_batch b;
    assert_int_equal(xa_task_batcher_init(&bt, &d, 8, 0, 0, 1), XA_STATUS_OK);
    assert_int_equal(xa_task_batch_init(&b, 8, 32), XA_STATUS_OK);
    assert_int_equal(xa_task_batcher_next(&bt, &b), 1);
    for (int r = 0; r < b.n_ex; r++) {
        assert_int_equal(b.labels[2 * r], d.ex[b.index[r]].start);
        assert_int_equal(b.labels[2 * r + 1], d.ex[b.index[r]].end);
    }
    xa_task_batch_free(&b);
    xa_task_batcher_free(&bt);
    xa_task_data_free(&d);
}

/* BERT's pair layout: <s> Q </s> C </s>, types 1 from the context on. */
static void test_bert_layout(void **state) {
    (void)state;
    const char *p = xt_write_tmp("bert.jsonl", "{\"context\": \"The river runs north.\", \"question\": \"Where?\", "
                                            "\"answers\": {\"text\": [\"north\"], \"answer_start\": [15]}}\n");
    xa_task_data d;
    assert_int_equal(load(&d, p, 64, 0, 1), XA_STATUS_OK);
    const xa_task_example *e = &d.ex[0];
    int sep = 0;
    while (e->ids[sep] != 2) sep++;
    for (int t = 0; t < e->len; t++) assert_int_equal(e->types[t], t > sep);
    assert_int_equal(e->offsets[2 * (sep + 1)], 0);
    assert_true(e->start > sep);
    assert_int_equal(e->offsets[2 * e->start], 15);
    assert_int_equal(e->offsets[2 * e->end + 1], 20);
    xa_task_data_free(&d);
}

/* SQuAD JSON and the HF export of the same questions give the same features. */
static void test_squad_and_jsonl_agree(void **state) {
    (void)state;
    const char *squad =
        "{\"version\": \"1.1\", \"data\": [{\"title\": \"Brot\", \"paragraphs\": [\n"
        " {\"context\": \"Die Größe des Brotes ändert sich. Das Brot ist groß.\", \"qas\": [\n"
        "  {\"id\": \"a\", \"question\": \"Was ändert sich?\", \"answers\": [{\"text\": \"Die Größe\", "
        "\"answer_start\": 0}, {\"text\": \"Größe\", \"answer_start\": 4}]},\n"
        "  {\"id\": \"b\", \"question\": \"Wie ist das Brot?\", \"answers\": [{\"text\": \"groß\", \"answer_start\": 47}]}]},\n"
        " {\"context\": \"Un autre texte.\", \"qas\": [{\"id\": \"c\", \"question\": \"Quoi?\", \"is_impossible\": true, "
        "\"answers\": []}]}]}]}\n";
    const char *jsonl =
        "{\"id\": \"a\", \"context\": \"Die Größe des Brotes ändert sich. Das Brot ist groß.\", \"question\": \"Was ändert "
        "sich?\", \"answers\": {\"text\": [\"Die Größe\", \"Größe\"], \"answer_start\": [0, 4]}}\n"
        "\n"
        "{\"id\": \"b\", \"context\": \"Die Größe des Brotes ändert sich. Das Brot ist groß.\", \"question\": \"Wie ist "
        "das Brot?\", \"answers\": {\"text\": [\"groß\"], \"answer_start\": [47]}}\n"
        "{\"id\": \"c\", \"context\": \"Un autre texte.\", \"question\": \"Quoi?\", \"answers\": {\"text\": [], "
        "\"answer_start\": []}}\n";
    xa_task_data a, b;
    assert_int_equal(load(&a, xt_write_tmp("sq.json", squad), 64, 0, 0), XA_STATUS_OK);
    assert_int_equal(load(&b, xt_write_tmp("sq.jsonl", jsonl), 64, 0, 0), XA_STATUS_OK);
    assert_int_equal(a.n_qa, 3);
    assert_int_equal(b.n_qa, 3);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n_qa; i++) {
        assert_string_equal(a.qa[i].id, b.qa[i].id);
        assert_int_equal(a.qa[i].n_answers, b.qa[i].n_answers);
        for (int k = 0; k < a.qa[i].n_answers; k++) {
            assert_string_equal(a.qa[i].answers[k], b.qa[i].answers[k]);
            assert_int_equal(a.qa[i].answer_start[k], b.qa[i].answer_start[k]);
        }
    }
    assert_int_equal(a.qa[1].answer_start[0], 50); /* 47 characters: "ö", "ß" and "ä" are two bytes each */
    assert_int_equal(a.qa[2].n_answers, 0);
    assert_int_equal(a.qa[2].is_impossible, 1);
    for (int i = 0; i < a.n; i++) {
        assert_int_equal(a.ex[i].len, b.ex[i].len);
        assert_memory_equal(a.ex[i].ids, b.ex[i].ids, (size_t)a.ex[i].len * sizeof(int32_t));
        assert_memory_equal(a.ex[i].offsets, b.ex[i].offsets, 2 * (size_t)a.ex[i].len * sizeof(int32_t));
        assert_int_equal(a.ex[i].start, b.ex[i].start);
        assert_int_equal(a.ex[i].end, b.ex[i].end);
    }
    assert_int_equal(a.ex[2].start, 0); /* unanswerable: <s> */
    assert_int_equal(a.ex[2].end, 0);
    assert_int_equal(a.qa[0].line, 1);
    assert_int_equal(b.qa[2].line, 4);
    xa_task_data_free(&a);
    xa_task_data_free(&b);
}

static void expect_error(const char *name, const char *text, xa_status want, const char *needle, const char *needle2) {
    xa_task_data d;
    assert_int_equal(load(&d, xt_write_tmp(name, text), 64, 0, 0), want);
    xt_assert_error_mentions(needle);
    if (needle2) xt_assert_error_mentions(needle2);
    assert_null(d.ex);
    assert_null(d.qa);
}

static void test_errors(void **state) {
    (void)state;
    /* an answer not at its answer_start: the first mismatch, named with both texts */
    expect_error("e1.jsonl",
                 "{\"context\": \"abc def\", \"question\": \"q\", \"answers\": {\"text\": [\"def\"], \"answer_start\": [4]}}\n"
                 "{\"context\": \"Größe\", \"question\": \"q\", \"answers\": {\"text\": [\"ße\"], \"answer_start\": [4]}}\n",
                 XA_STATUS_CONFIG, "e1.jsonl:2", "answer 0 'ße' is not at answer_start 4");
    expect_error("e2.json",
                 "{\"data\": [{\"paragraphs\": [{\"context\": \"abc\", \"qas\": [{\"id\": \"x\", \"question\": \"q\", "
                 "\"answers\": [{\"text\": \"abcd\", \"answer_start\": 0}]}]}]}]}",
                 XA_STATUS_CONFIG, "data[0].paragraphs[0].qas[0]", "has 'abc' there");
    expect_error("e3.json", "{\"data\": [{\"paragraphs\": [{\"qas\": []}]}]}", XA_STATUS_CONFIG,
                 "data[0].paragraphs[0]", "no \"context\" key");
    expect_error("e4.jsonl", "{\"context\": \"abc\", \"question\": \"\", \"answers\": []}\n", XA_STATUS_CONFIG,
                 "e4.jsonl:1", "empty question");
    expect_error("e5.jsonl", "{\"context\": \"abc\", \"question\": \"q\"}\n", XA_STATUS_CONFIG, "e5.jsonl:1",
                 "no \"answers\" key");
    expect_error("e6.jsonl", "{\"context\": \"abc\", \"question\": \"q\", \"answers\": {\"text\": [\"a\"]}}\n",
                 XA_STATUS_CONFIG, "e6.jsonl:1", "two lists of one length");
    expect_error("e7.jsonl", "{\"context\": \"abc\", \"question\": \"q\", \"answers\": [] \n", XA_STATUS_CONFIG,
                 "e7.jsonl:1", "bad JSON");
    expect_error("e8.jsonl", "\n\n", XA_STATUS_CONFIG, "e8.jsonl", "no questions");
    expect_error("e9.jsonl",
                 "{\"context\": \"abc\", \"question\": \"q\", \"answers\": {\"text\": [\"a\"], \"answer_start\": [-1]}}\n",
                 XA_STATUS_CONFIG, "e9.jsonl:1", "answer_start");
    expect_error("e10.json", "{\"data\": 3}", XA_STATUS_CONFIG, "e10.json: data", "not a list");
    expect_error("missing.jsonl", "", XA_STATUS_CONFIG, "missing.jsonl", "no questions");
    xa_task_data d;
    assert_int_equal(load(&d, "/nonexistent/qa.jsonl", 64, 0, 0), XA_STATUS_NOT_FOUND);
    assert_int_equal(load(&d, xt_write_tmp("ok.jsonl", "{\"context\": \"a\", \"question\": \"q\", \"answers\": []}\n"), 7, 0, 0),
                     XA_STATUS_USAGE);
    /* a long question is cut to half the room, a stride too large for the window is lowered */
    char json[2048], q[1200] = "";
    for (int i = 0; i < 60; i++) strcat(q, "why ");
    snprintf(json, sizeof json, "{\"context\": \"%s\", \"question\": \"%s\", \"answers\": []}\n", CTX, q);
    assert_int_equal(load(&d, xt_write_tmp("longq.jsonl", json), 24, 100, 0), XA_STATUS_OK);
    for (int i = 0; i < d.n; i++) assert_true(d.ex[i].len <= 24);
    assert_true(d.n > 1);
    xa_task_data_free(&d);
}

/* ---- SQuAD v1.1 scoring ------------------------------------------------------------------------ */

static void test_squad_hand_worked(void **state) {
    (void)state;
    char *n = NULL;
    assert_int_equal(xa_squad_normalize("The  Cat's, hat!", 16, &n), XA_STATUS_OK);
    assert_string_equal(n, "cats hat"); /* lower, no punctuation, no "the", one space */
    free(n);
    assert_int_equal(xa_squad_normalize("  An apple a day\tthe end  ", 26, &n), XA_STATUS_OK);
    assert_string_equal(n, "apple day end");
    free(n);
    assert_int_equal(xa_squad_normalize("theory anthem", 13, &n), XA_STATUS_OK);
    assert_string_equal(n, "theory anthem"); /* only whole words */
    free(n);
    assert_int_equal(xa_squad_normalize("Änderung der Größe", strlen("Änderung der Größe"), &n), XA_STATUS_OK);
    assert_string_equal(n, "änderung der größe");
    free(n);
    assert_true(xa_squad_exact("the Broncos.", "Broncos") == 1.0);
    assert_true(xa_squad_exact("Broncos", "Denver Broncos") == 0.0);
    /* one shared token of 1 and 2: P 1, R 1/2, F1 2/3 */
    assert_true(fabs(xa_squad_f1("Broncos", "Denver Broncos") - 2.0 / 3.0) < 1e-12);
    /* bags: {cat 2, dog 1} & {cat 1, dog 2} = 2 shared of 3 and 3: F1 2/3 */
    assert_true(fabs(xa_squad_f1("cat cat dog", "cat dog dog") - 2.0 / 3.0) < 1e-12);
    assert_true(xa_squad_f1("a", "the") == 0.0); /* both normalize to nothing: no shared token */
    double em, f1;
    const char *golds[] = {"Santa Clara", "Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area"};
    assert_int_equal(xa_squad_score(&em, &f1, "Levi's Stadium", golds, 3), XA_STATUS_OK);
    assert_true(em == 1.0 && f1 == 1.0);
    /* "stadium in san francisco": all 4 shared with gold 3's 7 tokens: P 1, R 4/7, F1 8/11 */
    assert_int_equal(xa_squad_score(&em, &f1, "Stadium in San Francisco", golds, 3), XA_STATUS_OK);
    assert_true(em == 0.0);
    assert_true(fabs(f1 - 8.0 / 11.0) < 1e-12);
    /* no gold answer: SQuAD 2.0's rule against "" */
    assert_int_equal(xa_squad_score(&em, &f1, "", NULL, 0), XA_STATUS_OK);
    assert_true(em == 1.0 && f1 == 1.0);
    assert_int_equal(xa_squad_score(&em, &f1, "empty", NULL, 0), XA_STATUS_OK);
    assert_true(em == 0.0 && f1 == 0.0);
}

/* Every case of tests/data/qa/squad_golden.jsonl (the official script's logic in Python). */
static void test_squad_official_golden(void **state) {
    (void)state;
    size_t n = 0;
    char *text = xt_read_file(xt_data_path("qa/squad_golden.jsonl"), &n);
    assert_non_null(text);
    int cases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        assert_non_null(o);
        const char *pred = json_string_value(json_object_get(o, "prediction"));
        const json_t *g = json_object_get(o, "golds");
        const char *golds[8];
        const int ng = (int)json_array_size(g);
        for (int i = 0; i < ng; i++) golds[i] = json_string_value(json_array_get(g, i));
        char *norm = NULL;
        assert_int_equal(xa_squad_normalize(pred, strlen(pred), &norm), XA_STATUS_OK);
        double em, f1;
        assert_int_equal(xa_squad_score(&em, &f1, pred, golds, ng), XA_STATUS_OK);
        const char *want = json_string_value(json_object_get(o, "normalized"));
        const double wem = json_real_value(json_object_get(o, "exact_match")),
                     wf1 = json_real_value(json_object_get(o, "f1"));
        if (strcmp(norm, want) != 0 || em != wem || fabs(f1 - wf1) > 1e-12)
            fail_msg("case %d '%s': normalized '%s' EM %g F1 %.15g; the official logic: '%s' EM %g F1 %.15g", cases,
                     pred, norm, em, f1, want, wem, wf1);
        free(norm);
        json_decref(o);
        cases++;
    }
    assert_true(cases >= 30);
    free(text);
}

/* ---- postprocessing ------------------------------------------------------------------------- */

static void test_best_span(void **state) {
    (void)state;
    /* window 0: tokens 0..2 the question and specials (offsets -1), 3..7 context */
    float lg0[8 * 2] = {
        9, 9,  /* <s>: the highest logits, outside the context */
        8, 8,  /* question */
        0, 0,  /* </s> */
        1, 0,  /* ctx 3 */
        5, 0,  /* ctx 4: the best start */
        0, 2,  /* ctx 5 */
        0, 6,  /* ctx 6: the best end */
        0, 7,  /* ctx 7: a higher end, too far for max_answer_length 3 */
    };
    int32_t off0[8 * 2] = {-1, -1, -1, -1, -1, -1, 0, 3, 4, 8, 9, 12, 13, 17, 18, 30};
    xa_qa_window w[2] = {{lg0, off0, 8}, {NULL, NULL, 0}};
    int32_t b = -1, e = -1;
    double score = 0;
    assert_int_equal(xa_qa_best_span(w, 1, 20, 3, &b, &e, &score), 1);
    assert_int_equal(b, 4); /* tokens 4..6 */
    assert_int_equal(e, 17);
    assert_true(score == 11.0);
    /* a longer limit takes token 7's end */
    assert_int_equal(xa_qa_best_span(w, 1, 20, 30, &b, &e, &score), 1);
    assert_int_equal(e, 30);
    assert_true(score == 12.0);
    /* end before start is refused: the best start moves after every good end */
    float lg1[8 * 2];
    memcpy(lg1, lg0, sizeof lg1);
    lg1[2 * 7] = 20; /* start at token 7: ends 5 and 6 come before it */
    lg1[2 * 7 + 1] = -50;
    assert_int_equal(xa_qa_best_span(w + 0, 1, 20, 30, &b, &e, &score), 1);
    xa_qa_window w1 = {lg1, off0, 8};
    assert_int_equal(xa_qa_best_span(&w1, 1, 20, 30, &b, &e, &score), 1);
    assert_int_equal(b, 4); /* 7..7 scores 20 - 50 < 5 + 6 */
    assert_int_equal(e, 17);
    /* n_best 1: only the top start (7) and top end (6): 6 < 7, nothing counts */
    assert_int_equal(xa_qa_best_span(&w1, 1, 1, 30, &b, &e, &score), 0);
    /* two windows: the best over both, mapped through each window's offsets */
    float lg2[6 * 2] = {0, 0, 0, 0, 0, 0, 9, 1, 1, 9, 0, 0};
    int32_t off2[6 * 2] = {-1, -1, -1, -1, -1, -1, 13, 17, 18, 30, 31, 35};
    xa_qa_window two[2] = {{lg0, off0, 8}, {lg2, off2, 6}};
    assert_int_equal(xa_qa_best_span(two, 2, 20, 3, &b, &e, &score), 1);
    assert_int_equal(b, 13); /* window 1 tokens 3..4: 18 > 11 */
    assert_int_equal(e, 30);
    assert_true(score == 18.0);
    /* spans that touch the question or the specials never count, however high */
    float lg3[4 * 2] = {50, 50, 40, 40, 0, 0, 1, 1};
    int32_t off3[4 * 2] = {-1, -1, -1, -1, -1, -1, 5, 9};
    xa_qa_window w3 = {lg3, off3, 4};
    assert_int_equal(xa_qa_best_span(&w3, 1, 20, 30, &b, &e, &score), 1);
    assert_int_equal(b, 5);
    assert_int_equal(e, 9);
    assert_int_equal(xa_qa_best_span(&w3, 1, 2, 30, &b, &e, &score), 0); /* the top 2 are both outside */
}

/* SQuAD 2.0: every case of tests/data/qa/squad_v2_golden.jsonl (HF's postprocess_qa_predictions
 * with version_2_with_negative and the official evaluate-v2.0.py, transcribed in
 * tests/golden/gen_squad_v2_golden.py): the answer text and the v2 exact match and F1. */
static void test_squad_v2_golden(void **state) {
    (void)state;
    char *text = xt_read_file(xt_data_path("qa/squad_v2_golden.jsonl"), NULL);
    assert_non_null(text);
    int cases = 0, nulls = 0, spans = 0, empties = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        assert_non_null(o);
        const char *context = json_string_value(json_object_get(o, "context"));
        const json_t *ws = json_object_get(o, "windows");
        const int nw = (int)json_array_size(ws);
        assert_true(nw >= 1 && nw <= 4);
        xa_qa_window w[4];
        float lg[4][64 * 2];
        int32_t off[4][64 * 2];
        for (int f = 0; f < nw; f++) {
            const json_t *x = json_array_get(ws, (size_t)f);
            const json_t *sl = json_object_get(x, "start_logits"), *el = json_object_get(x, "end_logits"),
                         *of = json_object_get(x, "offsets");
            const int len = (int)json_array_size(sl);
            assert_true(len <= 64);
            for (int t = 0; t < len; t++) {
                lg[f][2 * t] = (float)json_real_value(json_array_get(sl, (size_t)t));
                lg[f][2 * t + 1] = (float)json_real_value(json_array_get(el, (size_t)t));
                const json_t *sp = json_array_get(of, (size_t)t);
                off[f][2 * t] = json_is_array(sp) ? (int32_t)json_integer_value(json_array_get(sp, 0)) : -1;
                off[f][2 * t + 1] = json_is_array(sp) ? (int32_t)json_integer_value(json_array_get(sp, 1)) : -1;
            }
            w[f] = (xa_qa_window){lg[f], off[f], len};
        }
        const xa_qa_post pp = {(int)json_integer_value(json_object_get(o, "n_best_size")),
                               (int)json_integer_value(json_object_get(o, "max_answer_length")), 1,
                               json_real_value(json_object_get(o, "null_score_diff_threshold"))};
        int32_t b = -1, e = -1;
        const xa_qa_answer a = xa_qa_postprocess(w, nw, &pp, &b, &e, NULL);
        char got[256];
        if (a == XA_QA_ANSWER_SPAN) snprintf(got, sizeof got, "%.*s", (int)(e - b), context + b);
        else snprintf(got, sizeof got, "%s", a == XA_QA_ANSWER_NULL ? "" : "empty");
        const char *want = json_string_value(json_object_get(o, "prediction"));
        if (strcmp(got, want))
            fail_msg("case %d (n_best %d, max_answer_length %d, threshold %g): answer '%s', HF's '%s'", cases,
                     pp.n_best_size, pp.max_answer_length, pp.null_score_diff_threshold, got, want);
        nulls += a == XA_QA_ANSWER_NULL;
        spans += a == XA_QA_ANSWER_SPAN;
        empties += a == XA_QA_ANSWER_NONE;
        const json_t *g = json_object_get(o, "golds");
        const char *golds[8];
        const int ng = (int)json_array_size(g);
        for (int i = 0; i < ng; i++) golds[i] = json_string_value(json_array_get(g, (size_t)i));
        double em = -1, f1 = -1;
        assert_int_equal(xa_squad_score_v2(&em, &f1, got, golds, ng), XA_STATUS_OK);
        const double wem = json_real_value(json_object_get(o, "exact")), wf1 = json_real_value(json_object_get(o, "f1"));
        if (em != wem || fabs(f1 - wf1) > 1e-12)
            fail_msg("case %d '%s': EM %g F1 %.15g; evaluate-v2.0.py: EM %g F1 %.15g", cases, got, em, f1, wem, wf1);
        /* without version_2_with_negative: never the null answer */
        const xa_qa_post v1 = {pp.n_best_size, pp.max_answer_length, 0, 0.0};
        assert_int_not_equal(xa_qa_postprocess(w, nw, &v1, &b, &e, NULL), XA_QA_ANSWER_NULL);
        json_decref(o);
        cases++;
    }
    assert_true(cases >= 50);
    assert_true(nulls >= 5 && spans >= 5 && empties >= 1); /* every branch is exercised */
    free(text);
}

/* evaluate-v2.0.py by hand: golds that normalize to "" drop out; an empty prediction scores 1
 * only against an unanswerable gold. */
static void test_squad_v2_hand_worked(void **state) {
    (void)state;
    double em, f1;
    const char *ans[] = {"the disk", "The"};
    assert_int_equal(xa_squad_score_v2(&em, &f1, "", ans, 2), XA_STATUS_OK);
    assert_true(em == 0 && f1 == 0);
    assert_int_equal(xa_squad_score_v2(&em, &f1, "disk", ans, 2), XA_STATUS_OK);
    assert_true(em == 1 && f1 == 1);
    const char *art[] = {"the", "a"}; /* v1.1 would score "" against these 0 */
    assert_int_equal(xa_squad_score_v2(&em, &f1, "", art, 2), XA_STATUS_OK);
    assert_true(em == 1 && f1 == 1);
    assert_int_equal(xa_squad_score_v2(&em, &f1, "disk", art, 2), XA_STATUS_OK);
    assert_true(em == 0 && f1 == 0);
    assert_int_equal(xa_squad_score_v2(&em, &f1, "", NULL, 0), XA_STATUS_OK);
    assert_true(em == 1 && f1 == 1);
    assert_int_equal(xa_squad_score_v2(&em, &f1, "empty", NULL, 0), XA_STATUS_OK);
    assert_true(em == 0 && f1 == 0);
}

/* xa_task_data_load_text (predict's input): a line in memory loads as the same line in a file
 * (windows, ids, offsets); unlabelled accepts a question without answers, a file load does not;
 * multiple-choice lines without a label get label 0 only when unlabelled. */
static void test_load_text(void **state) {
    (void)state;
    const char *line = "{\"id\": \"q1\", \"question\": \"What cannot be redirected?\", \"context\": \"Cannot "
                       "redirect files for the remote shell. Required arguments to long options are also required "
                       "for short options.\", \"answers\": {\"text\": [\"files\"], \"answer_start\": [16]}}";
    xa_task_data a, b;
    assert_int_equal(load(&a, xt_write_tmp("load_text.jsonl", line), 16, 4, 0), XA_STATUS_OK);
    xa_task_input in = {XA_TASK_KIND_QA, XA_TASK_FORMAT_JSONL, NULL, NULL, 0, 0, 4};
    xa_labels labels;
    memset(&labels, 0, sizeof labels);
    assert_int_equal(xa_task_data_load_text(&b, g_tok, "stdin", line, strlen(line), &in, 16, &labels, 0), XA_STATUS_OK);
    assert_int_equal(a.n, b.n);
    assert_true(a.n >= 2); /* a context longer than the window */
    assert_int_equal(b.n_qa, 1);
    assert_string_equal(b.qa[0].id, "q1");
    assert_int_equal(b.qa[0].n_answers, 1);
    for (int i = 0; i < a.n; i++) {
        assert_int_equal(a.ex[i].len, b.ex[i].len);
        assert_memory_equal(a.ex[i].ids, b.ex[i].ids, (size_t)a.ex[i].len * sizeof(int32_t));
        assert_memory_equal(a.ex[i].offsets, b.ex[i].offsets, 2 * (size_t)a.ex[i].len * sizeof(int32_t));
    }
    xa_task_data_free(&a);
    xa_task_data_free(&b);
    const char *bare = "{\"question\": \"What?\", \"context\": \"Cannot redirect files.\"}";
    assert_int_equal(xa_task_data_load_text(&b, g_tok, "stdin line 3", bare, strlen(bare), &in, 16, &labels, 0),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("stdin line 3:1");
    xt_assert_error_mentions("answers");
    assert_int_equal(xa_task_data_load_text(&b, g_tok, "stdin", bare, strlen(bare), &in, 16, &labels, 1), XA_STATUS_OK);
    assert_int_equal(b.n_qa, 1);
    assert_int_equal(b.qa[0].n_answers, 0);
    assert_string_equal(b.qa[0].id, "");
    xa_task_data_free(&b);
    /* multiple choice */
    const char *mc = "{\"premise\": \"The file was missing.\", \"choice1\": \"file not found\", \"choice2\": \"disk full\"}";
    xa_task_input mi = {XA_TASK_KIND_CHOICE, XA_TASK_FORMAT_JSONL, NULL, NULL, 0, 0, 0};
    xa_labels ml;
    memset(&ml, 0, sizeof ml);
    assert_int_equal(xa_task_data_load_text(&b, g_tok, "stdin", mc, strlen(mc), &mi, 32, &ml, 0), XA_STATUS_CONFIG);
    xt_assert_error_mentions("\"label\"");
    memset(&ml, 0, sizeof ml);
    assert_int_equal(xa_task_data_load_text(&b, g_tok, "stdin", mc, strlen(mc), &mi, 32, &ml, 1), XA_STATUS_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.n_choices, 2);
    assert_int_equal(b.ex[0].label, 0);
    xa_task_data_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_char_offsets),
        cmocka_unit_test(test_windows_and_targets),
        cmocka_unit_test(test_bert_layout),
        cmocka_unit_test(test_squad_and_jsonl_agree),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_squad_hand_worked),
        cmocka_unit_test(test_squad_official_golden),
        cmocka_unit_test(test_best_span),
        cmocka_unit_test(test_squad_v2_golden),
        cmocka_unit_test(test_squad_v2_hand_worked),
        cmocka_unit_test(test_load_text),
    };
    return cmocka_run_group_tests_name("qa", tests, group_setup, group_teardown);
}
