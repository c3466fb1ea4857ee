/* Tests of tokenizer/spm: the C API over SentencePiece.
 *
 * The fixture model tests/data/spm/fixture.model (unigram, 1000 pieces) and the reference output
 * tests/data/spm/golden.tsv come from python3-sentencepiece 0.1.97 through
 * tests/golden/gen_spm_golden.py (run once, committed); these tests need no Python. They check:
 * ids, ids with bos/eos, XLM-R ids, pieces and byte spans identical to python's; round trips of
 * German, Greek, Russian, Japanese, Chinese, Basque (and English, French) sentences that the model
 * did not see; the XLM-R convention; clear errors for missing, empty and corrupt models; and
 * training of unigram and BPE models (vocab size, user symbols, determinism, silence, bad options).
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "tokenizer/spm.h"

/* ---- the golden file ------------------------------------------------------------------------- */

typedef struct golden_line {
    const char *lang;
    int rt; /* python's decode(encode(text)) == text */
    const char *text;
    int32_t *ids;
    size_t n_ids;
    int32_t *ids_be; /* with bos/eos */
    size_t n_be;
    int32_t *xlmr; /* XLM-R with <s> ... </s> */
    size_t n_xlmr;
    xa_spm_span *spans;
    size_t n_spans;
    char **pieces;
    size_t n_pieces;
} golden_line;

typedef struct fixture {
    xa_spm *spm;
    char *golden_buf; /* golden.tsv, split in place */
    golden_line *lines;
    size_t n_lines;
} fixture;

static size_t count_words(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

static int32_t *parse_ids(const char *s, size_t *n) {
    *n = count_words(s);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    assert_non_null(v);
    char *end = NULL;
    for (size_t i = 0; i < *n; i++) {
        v[i] = (int32_t)strtol(s, &end, 10);
        assert_true(end != s);
        s = end;
    }
    return v;
}

static xa_spm_span *parse_spans(const char *s, size_t *n) {
    *n = count_words(s);
    xa_spm_span *v = malloc((*n + 1) * sizeof *v);
    assert_non_null(v);
    char *end = NULL;
    for (size_t i = 0; i < *n; i++) {
        v[i].begin = (size_t)strtoul(s, &end, 10);
        assert_int_equal(*end, ':');
        s = end + 1;
        v[i].end = (size_t)strtoul(s, &end, 10);
        s = end;
    }
    return v;
}

static char **split_pieces(char *s, size_t *n) {
    *n = count_words(s);
    char **v = malloc((*n + 1) * sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " "))
        v[k++] = tok;
    assert_int_equal(k, *n);
    return v;
}

static void load_golden(fixture *fx) {
    size_t size = 0;
    fx->golden_buf = xt_read_file(xt_data_path("spm/golden.tsv"), &size);
    assert_non_null(fx->golden_buf);
    size_t cap = 64;
    fx->lines = calloc(cap, sizeof *fx->lines);
    assert_non_null(fx->lines);
    for (char *line = fx->golden_buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (line[0] != '#' && line[0]) {
            char *f[8] = {0};
            int nf = 0;
            for (char *p = line; nf < 8; nf++) {
                f[nf] = p;
                char *tab = strchr(p, '\t');
                if (!tab) {
                    nf++;
                    break;
                }
                *tab = '\0';
                p = tab + 1;
            }
            assert_int_equal(nf, 8);
            if (fx->n_lines == cap) {
                cap *= 2;
                fx->lines = realloc(fx->lines, cap * sizeof *fx->lines);
                assert_non_null(fx->lines);
            }
            golden_line *g = &fx->lines[fx->n_lines++];
            g->lang = f[0];
            g->rt = atoi(f[1]);
            g->text = f[2];
            g->ids = parse_ids(f[3], &g->n_ids);
            g->ids_be = parse_ids(f[4], &g->n_be);
            g->xlmr = parse_ids(f[5], &g->n_xlmr);
            g->spans = parse_spans(f[6], &g->n_spans);
            g->pieces = split_pieces(f[7], &g->n_pieces);
            assert_int_equal(g->n_spans, g->n_ids);
            assert_int_equal(g->n_pieces, g->n_ids);
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_true(fx->n_lines >= 32);
}

static int group_setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    if (xa_spm_load(&fx->spm, xt_data_path("spm/fixture.model")) != XA_STATUS_OK) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
        free(fx);
        return -1;
    }
    load_golden(fx);
    *state = fx;
    return 0;
}

static int group_teardown(void **state) {
    fixture *fx = *state;
    if (!fx) return 0;
    for (size_t i = 0; i < fx->n_lines; i++) {
        golden_line *g = &fx->lines[i];
        free(g->ids);
        free(g->ids_be);
        free(g->xlmr);
        free(g->spans);
        free(g->pieces);
    }
    free(fx->lines);
    free(fx->golden_buf);
    xa_spm_free(fx->spm);
    free(fx);
    return 0;
}

/* Each test starts in the native convention. */
static int test_setup(void **state) {
    fixture *fx = *state;
    return xa_spm_set_ids(fx->spm, XA_SPM_IDS_NATIVE) == XA_STATUS_OK ? 0 : -1;
}

static void assert_ids_equal(const char *label, const char *text, const int32_t *got, size_t n_got,
                             const int32_t *ref, size_t n_ref) {
    size_t n = n_got < n_ref ? n_got : n_ref;
    for (size_t i = 0; i < n; i++) {
        if (got[i] != ref[i]) {
            fail_msg("%s: '%s': id %zu is %d, python says %d", label, text, i, got[i], ref[i]);
        }
    }
    if (n_got != n_ref) fail_msg("%s: '%s': %zu ids, python has %zu", label, text, n_got, n_ref);
}

/* Fail with the error record when a call did not succeed. */
static void assert_ok(xa_status st) {
    if (st != XA_STATUS_OK) {
        char buf[4096];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("status %s: %s", xa_status_name(st), buf);
    }
}

static char *decode_ids(const xa_spm *spm, const int32_t *ids, size_t n) {
    char *out = NULL;
    assert_int_equal(xa_spm_decode(spm, ids, n, &out), XA_STATUS_OK);
    assert_non_null(out);
    return out;
}

/* ---- the fixture model ----------------------------------------------------------------------- */

static void test_spm_fixture_native_specials(void **state) {
    fixture *fx = *state;
    assert_int_equal(xa_spm_get_ids(fx->spm), XA_SPM_IDS_NATIVE);
    assert_int_equal(xa_spm_vocab_size(fx->spm), 1000);
    xa_spm_special s = xa_spm_special_ids(fx->spm);
    assert_int_equal(s.unk, 0);
    assert_int_equal(s.bos, 1);
    assert_int_equal(s.eos, 2);
    assert_int_equal(s.pad, -1); /* the model has no pad and no <mask> piece */
    assert_int_equal(s.mask, -1);
    assert_string_equal(xa_spm_id_to_piece(fx->spm, 0), "<unk>");
    assert_string_equal(xa_spm_id_to_piece(fx->spm, 1), "<s>");
    assert_string_equal(xa_spm_id_to_piece(fx->spm, 2), "</s>");
    assert_null(xa_spm_id_to_piece(fx->spm, 1000));
    assert_null(xa_spm_id_to_piece(fx->spm, -1));
    assert_int_equal(xa_spm_piece_to_id(fx->spm, "<s>"), 1);
    assert_int_equal(xa_spm_piece_to_id(fx->spm, "no-such-piece-anywhere"), 0);
    assert_int_equal(xa_spm_piece_to_id(fx->spm, NULL), 0);
    assert_int_equal(xa_spm_piece_to_id(fx->spm, "<mask>"), 0);
}

static void test_spm_golden_native_ids(void **state) {
    fixture *fx = *state;
    for (size_t i = 0; i < fx->n_lines; i++) {
        const golden_line *g = &fx->lines[i];
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(xa_spm_encode(fx->spm, g->text, strlen(g->text), 0, &ids, &n),
                         XA_STATUS_OK);
        assert_ids_equal("native", g->text, ids, n, g->ids, g->n_ids);
        free(ids);
        assert_int_equal(xa_spm_encode(fx->spm, g->text, strlen(g->text), 1, &ids, &n),
                         XA_STATUS_OK);
        assert_ids_equal("native bos/eos", g->text, ids, n, g->ids_be, g->n_be);
        free(ids);
        /* Pieces, both ways. */
        for (size_t k = 0; k < g->n_ids; k++) {
            const char *p = xa_spm_id_to_piece(fx->spm, g->ids[k]);
            assert_non_null(p);
            if (strcmp(p, g->pieces[k]) != 0 && g->ids[k] != 0) {
                fail_msg("'%s': piece %zu of id %d is '%s', python says '%s'", g->text, k,
                         g->ids[k], p, g->pieces[k]);
            }
            if (g->ids[k] != 0) assert_int_equal(xa_spm_piece_to_id(fx->spm, p), g->ids[k]);
        }
    }
}

static void test_spm_golden_xlmr_ids(void **state) {
    fixture *fx = *state;
    assert_int_equal(xa_spm_set_ids(fx->spm, XA_SPM_IDS_XLMR), XA_STATUS_OK);
    for (size_t i = 0; i < fx->n_lines; i++) {
        const golden_line *g = &fx->lines[i];
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(xa_spm_encode(fx->spm, g->text, strlen(g->text), 1, &ids, &n),
                         XA_STATUS_OK);
        assert_ids_equal("xlmr", g->text, ids, n, g->xlmr, g->n_xlmr);
        free(ids);
        /* Without specials: the inner part. */
        assert_int_equal(xa_spm_encode(fx->spm, g->text, strlen(g->text), 0, &ids, &n),
                         XA_STATUS_OK);
        assert_ids_equal("xlmr inner", g->text, ids, n, g->xlmr + 1, g->n_xlmr - 2);
        free(ids);
    }
}

/* Spans equal python's, and the bytes they cover rebuild the text. */
static void test_spm_golden_offsets(void **state) {
    fixture *fx = *state;
    for (int conv = 0; conv < 2; conv++) {
        assert_int_equal(xa_spm_set_ids(fx->spm, (xa_spm_ids)conv), XA_STATUS_OK);
        for (size_t i = 0; i < fx->n_lines; i++) {
            const golden_line *g = &fx->lines[i];
            const size_t len = strlen(g->text);
            int32_t *ids = NULL, *plain = NULL;
            xa_spm_span *spans = NULL;
            size_t n = 0, n_plain = 0;
            assert_int_equal(xa_spm_encode_offsets(fx->spm, g->text, len, 1, &ids, &spans, &n),
                             XA_STATUS_OK);
            assert_int_equal(xa_spm_encode(fx->spm, g->text, len, 1, &plain, &n_plain),
                             XA_STATUS_OK);
            assert_ids_equal("offsets ids", g->text, ids, n, plain, n_plain);
            assert_int_equal(n, g->n_spans + 2);
            /* Specials: empty spans at the ends. */
            assert_int_equal(spans[0].begin, 0);
            assert_int_equal(spans[0].end, 0);
            assert_int_equal(spans[n - 1].begin, len);
            assert_int_equal(spans[n - 1].end, len);
            char *rebuilt = calloc(len + 1, 1);
            assert_non_null(rebuilt);
            size_t pos = 0;
            for (size_t k = 0; k < g->n_spans; k++) {
                const xa_spm_span *s = &spans[k + 1];
                if (s->begin != g->spans[k].begin || s->end != g->spans[k].end) {
                    fail_msg("'%s': span %zu is [%zu,%zu), python says [%zu,%zu)", g->text, k,
                             s->begin, s->end, g->spans[k].begin, g->spans[k].end);
                }
                assert_true(s->begin <= s->end && s->end <= len);
                assert_int_equal(s->begin, pos); /* ordered, contiguous */
                memcpy(rebuilt + pos, g->text + s->begin, s->end - s->begin);
                pos = s->end;
                /* A piece without the boundary marker covers exactly its own bytes. */
                const char *piece = g->pieces[k];
                if (g->ids[k] != 0 && strncmp(piece, "\xe2\x96\x81", 3) != 0) {
                    assert_int_equal(s->end - s->begin, strlen(piece));
                    assert_memory_equal(g->text + s->begin, piece, strlen(piece));
                }
            }
            assert_int_equal(pos, len);
            assert_string_equal(rebuilt, g->text);
            free(rebuilt);
            free(ids);
            free(plain);
            free(spans);
        }
    }
}

static void test_spm_round_trip_languages(void **state) {
    fixture *fx = *state;
    const char *langs[] = {"de", "el", "ru", "ja", "zh_CN", "eu", "en", "fr"};
    for (int conv = 0; conv < 2; conv++) {
        assert_int_equal(xa_spm_set_ids(fx->spm, (xa_spm_ids)conv), XA_STATUS_OK);
        for (size_t l = 0; l < sizeof langs / sizeof langs[0]; l++) {
            int seen = 0;
            for (size_t i = 0; i < fx->n_lines; i++) {
                const golden_line *g = &fx->lines[i];
                if (strcmp(g->lang, langs[l]) != 0) continue;
                assert_int_equal(g->rt, 1); /* the generator keeps only covered sentences */
                for (int special = 0; special < 2; special++) {
                    int32_t *ids = NULL;
                    size_t n = 0;
                    assert_int_equal(
                        xa_spm_encode(fx->spm, g->text, strlen(g->text), special, &ids, &n),
                        XA_STATUS_OK);
                    char *back = decode_ids(fx->spm, ids, n);
                    if (strcmp(back, g->text) != 0) {
                        fail_msg("%s round trip (%s ids, specials %d):\n  in:  %s\n  out: %s",
                                 langs[l], conv ? "xlmr" : "native", special, g->text, back);
                    }
                    free(back);
                    free(ids);
                }
                seen++;
            }
            assert_true(seen >= 4);
        }
    }
}

static void test_spm_xlmr_convention(void **state) {
    fixture *fx = *state;
    xa_spm *spm = fx->spm;
    assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_XLMR), XA_STATUS_OK);
    assert_int_equal(xa_spm_get_ids(spm), XA_SPM_IDS_XLMR);
    assert_int_equal(xa_spm_vocab_size(spm), 1002);
    xa_spm_special s = xa_spm_special_ids(spm);
    assert_int_equal(s.bos, 0);
    assert_int_equal(s.pad, 1);
    assert_int_equal(s.eos, 2);
    assert_int_equal(s.unk, 3);
    assert_int_equal(s.mask, 1001);
    const char *names[] = {"<s>", "<pad>", "</s>", "<unk>"};
    for (int32_t i = 0; i < 4; i++) {
        assert_string_equal(xa_spm_id_to_piece(spm, i), names[i]);
        assert_int_equal(xa_spm_piece_to_id(spm, names[i]), i);
    }
    assert_string_equal(xa_spm_id_to_piece(spm, 1001), "<mask>");
    assert_int_equal(xa_spm_piece_to_id(spm, "<mask>"), 1001);
    assert_null(xa_spm_id_to_piece(spm, 1002));
    assert_null(xa_spm_id_to_piece(spm, -1));
    /* +1 shift of every ordinary piece, both ways, against the native ids. */
    for (int32_t id = 3; id < 1000; id++) {
        assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_NATIVE), XA_STATUS_OK);
        const char *p = xa_spm_id_to_piece(spm, id);
        assert_non_null(p);
        assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_XLMR), XA_STATUS_OK);
        assert_string_equal(xa_spm_id_to_piece(spm, id + 1), p);
        assert_int_equal(xa_spm_piece_to_id(spm, p), id + 1);
    }
    /* Unknown pieces and unknown text map to 3. */
    assert_int_equal(xa_spm_piece_to_id(spm, "no-such-piece-anywhere"), 3);
    assert_int_equal(xa_spm_piece_to_id(spm, NULL), 3);
    const char *text = "Hallo \xf0\x9f\x99\x82 Welt"; /* an emoji the model never saw */
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(xa_spm_encode(spm, text, strlen(text), 1, &ids, &n), XA_STATUS_OK);
    int unk = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < 1002);
        assert_true(ids[i] != 1 && ids[i] != 1001);
        unk += ids[i] == 3;
    }
    assert_int_equal(unk, 1);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[n - 1], 2);
    char *back = decode_ids(spm, ids, n);
    /* SentencePiece renders unk as " ⁇ " (with its own spaces). */
    assert_string_equal(back, "Hallo  \xe2\x81\x87  Welt");
    free(back);
    free(ids);
    /* Decode skips <s>, <pad>, </s>, <mask> wherever they are. */
    const char *word = "Software";
    assert_int_equal(xa_spm_encode(spm, word, strlen(word), 0, &ids, &n), XA_STATUS_OK);
    int32_t mixed[64];
    size_t m = 0;
    mixed[m++] = 0;
    mixed[m++] = 1001;
    for (size_t i = 0; i < n && m < 60; i++)
        mixed[m++] = ids[i];
    mixed[m++] = 1;
    mixed[m++] = 2;
    mixed[m++] = 1;
    back = decode_ids(spm, mixed, m);
    assert_string_equal(back, word);
    free(back);
    free(ids);
    /* Back to native: the mapping is undone. */
    assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_NATIVE), XA_STATUS_OK);
    assert_int_equal(xa_spm_vocab_size(spm), 1000);
    assert_int_equal(xa_spm_piece_to_id(spm, "<s>"), 1);
    assert_int_equal(xa_spm_set_ids(spm, (xa_spm_ids)7), XA_STATUS_USAGE);
    assert_int_equal(xa_spm_get_ids(spm), XA_SPM_IDS_NATIVE);
}

static void test_spm_decode_and_encode_edge_cases(void **state) {
    fixture *fx = *state;
    xa_spm *spm = fx->spm;
    int32_t *ids = NULL;
    size_t n = 99;
    /* Empty text: no ids (but a valid array), or just the specials. */
    assert_int_equal(xa_spm_encode(spm, NULL, 0, 0, &ids, &n), XA_STATUS_OK);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(xa_spm_encode(spm, "", 0, 1, &ids, &n), XA_STATUS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    free(ids);
    /* len bounds the text: no NUL needed. */
    assert_int_equal(xa_spm_encode(spm, "Software!!!", 8, 0, &ids, &n), XA_STATUS_OK);
    char *back = decode_ids(spm, ids, n);
    assert_string_equal(back, "Software");
    free(back);
    free(ids);
    back = decode_ids(spm, NULL, 0);
    assert_string_equal(back, "");
    free(back);
    /* Invalid UTF-8 and an embedded NUL are encoded (as unknowns), not a crash. */
    const char odd[] = "ab\xff\xfe c\0d \xe2\x82";
    xa_spm_span *sp = NULL;
    assert_int_equal(xa_spm_encode_offsets(spm, odd, sizeof odd - 1, 1, &ids, &sp, &n),
                     XA_STATUS_OK);
    assert_true(n >= 4);
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < 1000);
        assert_true(sp[i].begin <= sp[i].end && sp[i].end <= sizeof odd - 1);
    }
    back = decode_ids(spm, ids, n);
    free(back);
    free(ids);
    free(sp);
    /* Out-of-range ids are a usage error naming the id and the position. */
    int32_t bad[] = {5, 6, 1000};
    xa_error_clear();
    char *out = (char *)"untouched";
    assert_int_equal(xa_spm_decode(spm, bad, 3, &out), XA_STATUS_USAGE);
    assert_null(out);
    xt_assert_error_mentions("id 1000 at position 2");
    int32_t neg[] = {-4};
    assert_int_equal(xa_spm_decode(spm, neg, 1, &out), XA_STATUS_USAGE);
    xt_assert_error_mentions("id -4");
    assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_XLMR), XA_STATUS_OK);
    int32_t xbad[] = {0, 1002, 2};
    assert_int_equal(xa_spm_decode(spm, xbad, 3, &out), XA_STATUS_USAGE);
    xt_assert_error_mentions("id 1002 at position 1");
    /* NULL arguments. */
    assert_int_equal(xa_spm_encode(spm, NULL, 3, 0, &ids, &n), XA_STATUS_USAGE);
    assert_null(ids);
    assert_int_equal(n, 0);
    assert_int_equal(xa_spm_encode(NULL, "a", 1, 0, &ids, &n), XA_STATUS_USAGE);
    xa_spm_span *spans = NULL;
    assert_int_equal(xa_spm_encode_offsets(spm, "a", 1, 0, &ids, NULL, &n), XA_STATUS_USAGE);
    assert_int_equal(xa_spm_encode_offsets(spm, "a", 1, 0, NULL, &spans, &n), XA_STATUS_USAGE);
    assert_null(spans);
    assert_int_equal(xa_spm_decode(spm, NULL, 2, &out), XA_STATUS_USAGE);
    assert_int_equal(xa_spm_set_ids(NULL, XA_SPM_IDS_XLMR), XA_STATUS_USAGE);
    xa_spm_free(NULL);
}

/* ---- loading --------------------------------------------------------------------------------- */

static void test_spm_load_from_memory(void **state) {
    fixture *fx = *state;
    size_t size = 0;
    char *bytes = xt_read_file(xt_data_path("spm/fixture.model"), &size);
    assert_non_null(bytes);
    xa_spm *mem = NULL;
    assert_int_equal(xa_spm_load_from_memory(&mem, bytes, size, "fixture-in-memory"), XA_STATUS_OK);
    free(bytes); /* the tokenizer keeps its own copy */
    assert_int_equal(xa_spm_vocab_size(mem), 1000);
    const golden_line *g = &fx->lines[0];
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(xa_spm_encode(mem, g->text, strlen(g->text), 0, &ids, &n), XA_STATUS_OK);
    assert_ids_equal("memory", g->text, ids, n, g->ids, g->n_ids);
    free(ids);
    xa_spm_free(mem);
}

static void test_spm_load_errors(void **state) {
    (void)state;
    xa_spm *spm = (xa_spm *)&spm; /* must be reset to NULL on failure */
    const char *missing = xt_tmp_path("no-such-dir/missing.model");
    xa_error_clear();
    assert_int_equal(xa_spm_load(&spm, missing), XA_STATUS_IO);
    assert_null(spm);
    xt_assert_error_mentions(missing);
    xt_assert_error_mentions("No such file");

    const char *empty = xt_tmp_path("empty.model");
    xt_write_file(empty, "", 0);
    assert_int_equal(xa_spm_load(&spm, empty), XA_STATUS_FORMAT);
    assert_null(spm);
    xt_assert_error_mentions(empty);
    xt_assert_error_mentions("empty");

    /* Random bytes (a fixed LCG stream, so the test is reproducible). */
    unsigned char noise[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1664525u + 1013904223u;
        noise[i] = (unsigned char)(x >> 24);
    }
    const char *random_path = xt_tmp_path("random.model");
    xt_write_file(random_path, noise, sizeof noise);
    assert_int_equal(xa_spm_load(&spm, random_path), XA_STATUS_FORMAT);
    assert_null(spm);
    xt_assert_error_mentions(random_path);
    xt_assert_error_mentions("not a valid SentencePiece model");

    /* A truncated model: half of the fixture, and the first 100 bytes. */
    size_t size = 0;
    char *bytes = xt_read_file(xt_data_path("spm/fixture.model"), &size);
    assert_non_null(bytes);
    const size_t cuts[] = {size / 2, 100, size - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        const char *trunc = xt_tmp_path("truncated.model");
        xt_write_file(trunc, bytes, cuts[c]);
        xa_error_clear();
        assert_int_equal(xa_spm_load(&spm, trunc), XA_STATUS_FORMAT);
        assert_null(spm);
        xt_assert_error_mentions(trunc);
    }
    /* The same from memory names the caller's label. */
    assert_int_equal(xa_spm_load_from_memory(&spm, bytes, size / 3, "blob.model"),
                     XA_STATUS_FORMAT);
    assert_null(spm);
    xt_assert_error_mentions("blob.model");
    assert_int_equal(xa_spm_load_from_memory(&spm, noise, sizeof noise, NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("<memory>");
    free(bytes);

    /* A text file (the .vocab, say) is not a model. */
    const char *vocab = xt_tmp_path("text.vocab");
    const char *text = "<unk>\t0\n<s>\t0\n</s>\t0\n\xe2\x96\x81the\t-3.2\n";
    xt_write_file(vocab, text, strlen(text));
    assert_int_equal(xa_spm_load(&spm, vocab), XA_STATUS_FORMAT);
    xt_assert_error_mentions(vocab);

    /* A directory cannot be read as a model. */
    assert_int_not_equal(xa_spm_load(&spm, xt_tmp_dir()), XA_STATUS_OK);
    assert_null(spm);
    xt_assert_error_mentions(xt_tmp_dir());

    assert_int_equal(xa_spm_load(&spm, NULL), XA_STATUS_USAGE);
    assert_int_equal(xa_spm_load(NULL, "x.model"), XA_STATUS_USAGE);
}

/* ---- training -------------------------------------------------------------------------------- */

/* The English, German, French lines of the fixture corpus (a small alphabet): a training file. */
static const char *write_training_text(void) {
    size_t size = 0;
    char *corpus = xt_read_file(xt_data_path("spm/corpus.txt"), &size);
    assert_non_null(corpus);
    size_t lines = 0, cut = 0;
    for (size_t i = 0; i < size; i++) {
        if (corpus[i] == '\n' && ++lines == 3 * 48) {
            cut = i + 1;
            break;
        }
    }
    assert_true(cut > 0);
    static char path[4096]; /* xt_tmp_path's buffers rotate: keep a copy */
    snprintf(path, sizeof path, "%s", xt_tmp_path("train-en-de-fr.txt"));
    xt_write_file(path, corpus, cut);
    free(corpus);
    return path;
}

static void check_trained(const char *prefix, int32_t vocab, const char *const *symbols,
                          size_t n_symbols) {
    char path[4096];
    snprintf(path, sizeof path, "%s.model", prefix);
    xa_spm *spm = NULL;
    assert_int_equal(xa_spm_load(&spm, path), XA_STATUS_OK);
    assert_int_equal(xa_spm_vocab_size(spm), vocab);
    xa_spm_special s = xa_spm_special_ids(spm);
    assert_int_equal(s.unk, 0);
    assert_int_equal(s.bos, 1);
    assert_int_equal(s.eos, 2);
    /* User symbols are single pieces, also inside text. */
    for (size_t i = 0; i < n_symbols; i++) {
        int32_t id = xa_spm_piece_to_id(spm, symbols[i]);
        assert_true(id > 2);
        assert_string_equal(xa_spm_id_to_piece(spm, id), symbols[i]);
        char text[256];
        snprintf(text, sizeof text, "Die Datei%swurde geladen", symbols[i]);
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(xa_spm_encode(spm, text, strlen(text), 0, &ids, &n), XA_STATUS_OK);
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found += ids[k] == id;
        assert_int_equal(found, 1);
        /* Decode skips the mask special; other user symbols come back. */
        char *back = decode_ids(spm, ids, n);
        if (id == s.mask) {
            assert_string_equal(back, "Die Dateiwurde geladen");
        } else {
            assert_string_equal(back, text);
        }
        free(back);
        free(ids);
    }
    if (n_symbols && strcmp(symbols[0], "<mask>") == 0) {
        assert_int_equal(s.mask, xa_spm_piece_to_id(spm, "<mask>"));
    }
    /* Models written by xa_spm_train accept the XLM-R convention. */
    assert_int_equal(xa_spm_set_ids(spm, XA_SPM_IDS_XLMR), XA_STATUS_OK);
    assert_int_equal(xa_spm_vocab_size(spm), vocab + 2);
    xa_spm_free(spm);
    /* The .vocab file lists one piece a line. */
    snprintf(path, sizeof path, "%s.vocab", prefix);
    size_t size = 0;
    char *v = xt_read_file(path, &size);
    assert_non_null(v);
    int32_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += v[i] == '\n';
    assert_int_equal(lines, vocab);
    free(v);
}

static void test_spm_train_unigram(void **state) {
    (void)state;
    const char *input = write_training_text();
    const char *symbols[] = {"<mask>", "[URL]"};
    xa_spm_train_opts o = xa_spm_train_opts_default();
    o.inputs = &input;
    o.n_inputs = 1;
    const char *prefix = xt_tmp_path("uni");
    o.model_prefix = prefix;
    o.model_type = "unigram";
    o.vocab_size = 400;
    o.character_coverage = 1.0;
    o.user_symbols = symbols;
    o.n_user_symbols = 2;
    assert_ok(xa_spm_train(&o));
    check_trained(prefix, 400, symbols, 2);
}

static void test_spm_train_bpe(void **state) {
    (void)state;
    const char *input = write_training_text();
    const char *symbols[] = {"[URL]"};
    xa_spm_train_opts o = xa_spm_train_opts_default();
    o.inputs = &input;
    o.n_inputs = 1;
    const char *prefix = xt_tmp_path("bpe");
    o.model_prefix = prefix;
    o.model_type = "bpe";
    o.vocab_size = 300;
    o.character_coverage = 1.0;
    o.user_symbols = symbols;
    o.n_user_symbols = 1;
    o.input_sentence_size = 120; /* sample 120 of the 144 lines */
    assert_ok(xa_spm_train(&o));
    check_trained(prefix, 300, symbols, 1);
}

static int files_equal(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = xt_read_file(a, &na), *y = xt_read_file(b, &nb);
    assert_non_null(x);
    assert_non_null(y);
    int eq = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

static void train_det(const char *input, const char *type, int32_t threads, uint32_t seed,
                      const char *name) {
    xa_spm_train_opts o = xa_spm_train_opts_default();
    o.inputs = &input;
    o.n_inputs = 1;
    o.model_prefix = xt_tmp_path(name);
    o.model_type = type;
    o.vocab_size = 300;
    o.character_coverage = 1.0;
    o.input_sentence_size = 120; /* sampled from the 144 lines */
    o.shuffle = 1;
    o.seed = seed;
    o.num_threads = threads;
    assert_ok(xa_spm_train(&o));
}

static const char *det_file(const char *name, const char *ext) {
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, sizeof buf[0], "%s.%s", xt_tmp_path(name), ext);
    return p;
}

/* The determinism that spm.h documents: identical bytes for identical options (whatever the output
 * path), BPE pieces independent of num_threads, and a seed without effect in 0.1.97. */
static void test_spm_train_deterministic(void **state) {
    (void)state;
    const char *input = write_training_text();
    const char *types[] = {"unigram", "bpe"};
    for (int t = 0; t < 2; t++) {
        const int32_t threads[] = {1, 4};
        for (int th = 0; th < 2; th++) {
            train_det(input, types[t], threads[th], 7, "det-a");
            train_det(input, types[t], threads[th], 7, "det-b");
            if (!files_equal(det_file("det-a", "model"), det_file("det-b", "model")) ||
                !files_equal(det_file("det-a", "vocab"), det_file("det-b", "vocab"))) {
                fail_msg("%s with %d threads: two runs with the same options differ", types[t],
                         threads[th]);
            }
        }
        /* Seed 7 vs 8 (1 thread): SentencePiece samples with a fixed internal seed. */
        train_det(input, types[t], 1, 7, "det-s7");
        train_det(input, types[t], 1, 8, "det-s8");
        if (!files_equal(det_file("det-s7", "model"), det_file("det-s8", "model"))) {
            fail_msg("%s: the seed changed the model; update the determinism notes in spm.h",
                     types[t]);
        }
    }
    /* BPE: the same pieces and scores with 1 and 4 threads. */
    train_det(input, "bpe", 1, 7, "det-bpe1");
    train_det(input, "bpe", 4, 7, "det-bpe4");
    assert_true(files_equal(det_file("det-bpe1", "vocab"), det_file("det-bpe4", "vocab")));
}

/* xa_spm_train with the fixture's options learns the same pieces, in the same order, as the python
 * trainer that made fixture.model (tests/golden/gen_spm_golden.py). */
static void test_spm_train_matches_python_fixture(void **state) {
    fixture *fx = *state;
    const char *input = xt_data_path("spm/corpus.txt");
    xa_spm_train_opts o = xa_spm_train_opts_default();
    o.inputs = &input;
    o.n_inputs = 1;
    const char *prefix = xt_tmp_path("like-fixture");
    o.model_prefix = prefix;
    o.model_type = "unigram";
    o.vocab_size = 1000;
    o.character_coverage = 1.0;
    o.input_sentence_size = 0;
    o.shuffle = 0;
    o.num_threads = 1;
    assert_ok(xa_spm_train(&o));
    char path[4096];
    snprintf(path, sizeof path, "%s.model", prefix);
    xa_spm *mine = NULL;
    assert_int_equal(xa_spm_load(&mine, path), XA_STATUS_OK);
    assert_int_equal(xa_spm_vocab_size(mine), xa_spm_vocab_size(fx->spm));
    for (int32_t id = 0; id < 1000; id++) {
        const char *a = xa_spm_id_to_piece(mine, id), *b = xa_spm_id_to_piece(fx->spm, id);
        if (strcmp(a, b) != 0) fail_msg("piece %d: xa_spm_train '%s', python '%s'", id, a, b);
    }
    xa_spm_free(mine);
}

/* Training is silent on stderr unless verbose (stdout is never used). */
static void test_spm_train_quiet(void **state) {
    (void)state;
    const char *input = write_training_text();
    const char *log = xt_tmp_path("train-stderr.txt");
    for (int verbose = 0; verbose < 2; verbose++) {
        fflush(stderr);
        int saved = dup(2);
        assert_true(saved >= 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        dup2(fd, 2);
        close(fd);
        xa_spm_train_opts o = xa_spm_train_opts_default();
        o.inputs = &input;
        o.n_inputs = 1;
        o.model_prefix = xt_tmp_path("quiet");
        o.vocab_size = 300;
        o.character_coverage = 1.0;
        o.verbose = verbose;
        xa_status st = xa_spm_train(&o);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        assert_int_equal(st, XA_STATUS_OK);
        size_t n = 0;
        char *text = xt_read_file(log, &n);
        assert_non_null(text);
        if (verbose) {
            assert_true(n > 0); /* the option keeps SentencePiece's log */
        } else if (n) {
            fail_msg("training printed %zu bytes on stderr:\n%.500s", n, text);
        }
        free(text);
    }
}

static void test_spm_train_errors(void **state) {
    (void)state;
    const char *input = write_training_text();
    const char *missing = xt_tmp_path("no-such-corpus.txt");
    const char *inputs[] = {input, missing};
    xa_spm_train_opts o = xa_spm_train_opts_default();
    o.inputs = inputs;
    o.n_inputs = 2;
    o.model_prefix = xt_tmp_path("err");
    o.vocab_size = 300;
    o.character_coverage = 1.0;
    xa_error_clear();
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions(missing);
    xt_assert_error_mentions("No such file");
    char path[4096];
    snprintf(path, sizeof path, "%s.model", o.model_prefix);
    assert_null(xt_read_file(path, NULL)); /* nothing written */

    o.n_inputs = 0;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("no input");
    o.n_inputs = 1;

    o.vocab_size = 3;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("vocab_size 3 is too small");
    o.vocab_size = 300;
    o.input_sentence_size = 50;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("input_sentence_size 50");
    o.input_sentence_size = 0;
    /* Fewer pieces than characters: SentencePiece refuses, as a usage error. */
    o.vocab_size = 30;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("Vocabulary size");
    /* More pieces than a tiny corpus can give (unigram, hard limit). */
    o.vocab_size = 50000;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("Vocabulary size");
    assert_null(xt_read_file(path, NULL));
    o.vocab_size = 300;

    o.model_type = "wordpiece";
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("wordpiece");
    o.model_type = "unigram";
    o.character_coverage = 1.5;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("character_coverage");
    o.character_coverage = 0.5;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    xt_assert_error_mentions("0.98");
    o.character_coverage = 1.0;
    o.max_sentence_length = 5;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    o.max_sentence_length = 4192;
    o.num_threads = 0;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    o.num_threads = 1;
    const char *comma[] = {"a,b"};
    o.user_symbols = comma;
    o.n_user_symbols = 1;
    assert_int_equal(xa_spm_train(&o), XA_STATUS_USAGE);
    o.n_user_symbols = 0;
    o.model_prefix = xt_tmp_path("no-such-dir/out");
    assert_int_equal(xa_spm_train(&o), XA_STATUS_IO);
    xt_assert_error_mentions("no-such-dir/out.model");
    assert_int_equal(xa_spm_train(NULL), XA_STATUS_USAGE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_spm_fixture_native_specials, test_setup),
        cmocka_unit_test_setup(test_spm_golden_native_ids, test_setup),
        cmocka_unit_test_setup(test_spm_golden_xlmr_ids, test_setup),
        cmocka_unit_test_setup(test_spm_golden_offsets, test_setup),
        cmocka_unit_test_setup(test_spm_round_trip_languages, test_setup),
        cmocka_unit_test_setup(test_spm_xlmr_convention, test_setup),
        cmocka_unit_test_setup(test_spm_decode_and_encode_edge_cases, test_setup),
        cmocka_unit_test_setup(test_spm_load_from_memory, test_setup),
        cmocka_unit_test_setup(test_spm_load_errors, test_setup),
        cmocka_unit_test_setup(test_spm_train_unigram, test_setup),
        cmocka_unit_test_setup(test_spm_train_bpe, test_setup),
        cmocka_unit_test_setup(test_spm_train_deterministic, test_setup),
        cmocka_unit_test_setup(test_spm_train_matches_python_fixture, test_setup),
        cmocka_unit_test_setup(test_spm_train_quiet, test_setup),
        cmocka_unit_test_setup(test_spm_train_errors, test_setup),
    };
    return cmocka_run_group_tests_name("spm", tests, group_setup, group_teardown);
}
