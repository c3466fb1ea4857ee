/* Tests of tokenizer/wordpiece and tokenizer/tok.
 *
 * The references are tests/data/wordpiece/golden.tsv and unicode.tsv, written by
 * tests/golden/gen_wordpiece_goldens.py (an independent Python re-implementation of transformers'
 * BertTokenizer and of the tokenizers library's BertNormalizer / BertPreTokenizer / WordPiece, with
 * Python's unicodedata; run once, committed). They check: ids of held-out sentences in 7 languages
 * and of edge cases (accents composed and decomposed, CJK, Hangul, Thai, Devanagari, Arabic,
 * punctuation, specials inside text, long words, unknown characters, control and invalid bytes) in
 * six settings (lowercase or cased, strip_accents forced either way, BertTokenizer or
 * tokenizer.json); pairs with token types and longest_first truncation; the basic tokenizer on
 * every code point of Unicode 14.0 (utf8proc against unicodedata); tokenizer_config.json and
 * tokenizer.json reading; the choice of tokenizer in a directory; XLM-R inputs through the same
 * interface; byte spans; and clear errors for malformed vocab.txt / tokenizer.json, huge and
 * random inputs.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "tokenizer/tok.h"
#include "tokenizer/wordpiece.h"

static char *unhex(const char *h, size_t *n) {
    size_t k = strlen(h) / 2;
    char *s = malloc(k + 1);
    assert_non_null(s);
    for (size_t i = 0; i < k; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        s[i] = (char)v;
    }
    s[k] = '\0';
    *n = k;
    return s;
}

static size_t parse_ids(const char *s, int32_t *out, size_t cap) {
    size_t n = 0;
    char *end = NULL;
    while (*s) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        assert_true(n < cap);
        out[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

/* Split a line at tabs in place; returns the field count. */
static int fields(char *line, char **f, int cap) {
    int n = 0;
    line[strcspn(line, "\n")] = '\0';
    f[n++] = line;
    for (char *p = line; *p && n < cap; p++) {
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    }
    return n;
}

static void print_ids(const char *label, const int32_t *v, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", v[i]);
    fprintf(stderr, "\n");
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static const char *vocab_path(void) { return xt_data_path("wordpiece/vocab.txt"); }

/* The tokenizer of a golden mode. */
static xa_wordpiece *mode_wp(const char *mode) {
    xa_wordpiece_opts o = xa_wordpiece_opts_default();
    if (!strcmp(mode, "cased") || !strcmp(mode, "fast_cased") || !strcmp(mode, "cased_strip")) o.lowercase = 0;
    if (!strcmp(mode, "lower_keep")) o.strip_accents = 0;
    if (!strcmp(mode, "cased_strip")) o.strip_accents = 1;
    if (!strncmp(mode, "fast", 4)) o.fast = 1;
    xa_wordpiece *wp = NULL;
    if (xa_wordpiece_load(&wp, vocab_path(), &o)) xt_assert_error_mentions("");
    assert_non_null(wp);
    return wp;
}

/* A directory with vocab.txt and, when cfg is not NULL, tokenizer_config.json. */
static const char *bert_dir(const char *name, const char *cfg) {
    const char *dir = xt_tmp_path(name);
    mkdir(dir, 0755);
    size_t n = 0;
    char *v = xt_read_file(vocab_path(), &n);
    assert_non_null(v);
    char p[4096];
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    xt_write_file(p, v, n);
    free(v);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    if (cfg) xt_write_file(p, cfg, strlen(cfg));
    else remove(p);
    return dir;
}

/* ---- goldens --------------------------------------------------------------------------------- */

static void test_golden_encode(void **state) {
    (void)state;
    static const char *const modes[] = {"lower", "cased", "lower_keep", "cased_strip", "fast_lower", "fast_cased"};
    xa_wordpiece *wp[6];
    for (int m = 0; m < 6; m++)
        wp[m] = mode_wp(modes[m]);
    xa_tok *tj = NULL; /* fast_lower again, through tokenizer.json */
    assert_int_equal(xa_tok_load(&tj, xt_data_path("wordpiece/tokenizer.json")), XA_STATUS_OK);
    assert_int_equal(xa_tok_get_kind(tj), XA_TOK_KIND_WORDPIECE);
    FILE *f = fopen(xt_data_path("wordpiece/golden.tsv"), "r");
    assert_non_null(f);
    char *line = NULL, *fl[8];
    size_t cap = 0;
    int checked = 0, bad = 0;
    static int32_t want[1 << 14];
    while (getline(&line, &cap, f) != -1) {
        if (line[0] == '#' || fields(line, fl, 8) != 5 || strcmp(fl[0], "enc") != 0) continue;
        int m = 0;
        while (m < 6 && strcmp(modes[m], fl[1]) != 0)
            m++;
        assert_true(m < 6);
        size_t len = 0, nw = parse_ids(fl[3], want, 1 << 14), n = 0;
        char *text = unhex(fl[2], &len);
        int32_t *ids = NULL;
        xa_spm_span *sp = NULL;
        assert_int_equal(xa_wordpiece_encode(wp[m], text, len, &ids, &sp, &n), XA_STATUS_OK);
        if (!same_ids(ids, n, want, nw)) {
            fprintf(stderr, "mismatch, mode %s, text %s (pieces %s)\n", fl[1], fl[2], fl[4]);
            print_ids("got ", ids, n);
            print_ids("want", want, nw);
            bad++;
        }
        for (size_t i = 0; i < n; i++) { /* spans inside the text, ordered */
            assert_true(sp[i].begin <= sp[i].end && sp[i].end <= len);
            if (i) assert_true(sp[i].begin >= sp[i - 1].begin);
        }
        if (m == 4) {
            int32_t *t2 = NULL;
            size_t n2 = 0;
            assert_int_equal(xa_tok_encode(tj, text, len, 0, &t2, &n2), XA_STATUS_OK);
            if (!same_ids(t2, n2, want, nw)) {
                fprintf(stderr, "tokenizer.json mismatch, text %s\n", fl[2]);
                bad++;
            }
            free(t2);
        }
        free(ids);
        free(sp);
        free(text);
        checked++;
    }
    free(line);
    fclose(f);
    for (int m = 0; m < 6; m++)
        xa_wordpiece_free(wp[m]);
    xa_tok_free(tj);
    fprintf(stderr, "golden: %d encodings checked, %d differ\n", checked, bad);
    assert_true(checked > 450);
    assert_int_equal(bad, 0);
}

static void test_golden_pairs(void **state) {
    (void)state;
    xa_tok *lower = NULL, *cased = NULL;
    assert_int_equal(xa_tok_load(&lower, bert_dir("bert-lower", NULL)), XA_STATUS_OK);
    assert_int_equal(xa_tok_load(&cased, bert_dir("bert-cased", "{\"do_lower_case\": false, \"model_max_length\": 512}")),
                     XA_STATUS_OK);
    FILE *f = fopen(xt_data_path("wordpiece/golden.tsv"), "r");
    assert_non_null(f);
    char *line = NULL, *fl[8];
    size_t cap = 0;
    int checked = 0, bad = 0;
    int32_t want[4096], wtypes[4096];
    while (getline(&line, &cap, f) != -1) {
        if (line[0] == '#' || fields(line, fl, 8) != 7 || strcmp(fl[0], "pair") != 0) continue;
        xa_tok *t = !strcmp(fl[1], "lower") ? lower : cased;
        size_t na = 0, nb = 0;
        char *a = unhex(fl[3], &na), *b = strcmp(fl[4], "-") ? unhex(fl[4], &nb) : NULL;
        size_t nw = parse_ids(fl[5], want, 4096), nt = parse_ids(fl[6], wtypes, 4096);
        assert_int_equal(nw, nt);
        xa_tok_input in;
        assert_int_equal(xa_tok_encode_input(t, a, na, b, nb, atoi(fl[2]), &in), XA_STATUS_OK);
        if (!same_ids(in.ids, in.n, want, nw) || !same_ids(in.types, in.n, wtypes, nt)) {
            fprintf(stderr, "pair mismatch, mode %s, max_len %s, a %s, b %s\n", fl[1], fl[2], fl[3], fl[4]);
            print_ids("got ", in.ids, in.n);
            print_ids("want", want, nw);
            print_ids("types got ", in.types, in.n);
            print_ids("types want", wtypes, nt);
            bad++;
        }
        xa_tok_input_free(&in);
        free(a);
        free(b);
        checked++;
    }
    free(line);
    fclose(f);
    xa_tok_free(lower);
    xa_tok_free(cased);
    assert_true(checked >= 30);
    assert_int_equal(bad, 0);
}

static void test_unicode_table(void **state) {
    (void)state;
    xa_wordpiece *lo = mode_wp("lower"), *ca = mode_wp("cased"), *fl = mode_wp("fast_lower");
    xa_wordpiece *w3[3] = {lo, ca, fl};
    FILE *f = fopen(xt_data_path("wordpiece/unicode.tsv"), "r");
    assert_non_null(f);
    char *line = NULL, *fs[8];
    size_t cap = 0;
    int checked = 0, bad = 0;
    while (getline(&line, &cap, f) != -1) {
        if (line[0] == '#' || fields(line, fs, 8) != 4) continue;
        unsigned long cp = strtoul(fs[0], NULL, 16);
        char in[8];
        size_t k = 0;
        in[k++] = '0';
        if (cp < 0x80) {
            in[k++] = (char)cp;
        } else if (cp < 0x800) {
            in[k++] = (char)(0xC0 | (cp >> 6));
            in[k++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            in[k++] = (char)(0xE0 | (cp >> 12));
            in[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            in[k++] = (char)(0x80 | (cp & 0x3F));
        } else {
            in[k++] = (char)(0xF0 | (cp >> 18));
            in[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            in[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            in[k++] = (char)(0x80 | (cp & 0x3F));
        }
        in[k++] = '0';
        in[k] = '\0';
        for (int m = 0; m < 3; m++) {
            char *got = NULL;
            assert_int_equal(xa_wordpiece_basic(w3[m], in, k, &got), XA_STATUS_OK);
            const char *want = strcmp(fs[m + 1], "=") ? fs[m + 1] : in;
            if (strcmp(got, want) != 0) {
                if (bad < 20) fprintf(stderr, "U+%04lX mode %d: got '%s', want '%s'\n", cp, m, got, want);
                bad++;
            }
            free(got);
        }
        checked++;
    }
    free(line);
    fclose(f);
    xa_wordpiece_free(lo);
    xa_wordpiece_free(ca);
    xa_wordpiece_free(fl);
    fprintf(stderr, "unicode: %d code points checked, %d outputs differ\n", checked, bad);
    assert_true(checked > 5000);
    assert_int_equal(bad, 0);
}

/* ---- behaviour beyond the goldens -------------------------------------------------------------- */

static void test_spans_and_specials(void **state) {
    (void)state;
    xa_wordpiece *wp = mode_wp("lower");
    const char *text = "Caf\x65\xcc\x81, [MASK] \xe4\xb8\xad!"; /* "Cafe" + U+0301 ", [MASK] 中!" */
    int32_t *ids = NULL;
    xa_spm_span *sp = NULL;
    size_t n = 0;
    assert_int_equal(xa_wordpiece_encode(wp, text, strlen(text), &ids, &sp, &n), XA_STATUS_OK);
    assert_true(n >= 4);
    /* the last pieces: "," "[MASK]" "中" "!" */
    assert_int_equal(ids[n - 3], xa_wordpiece_piece_to_id(wp, "[MASK]"));
    assert_int_equal(sp[n - 3].begin, 8);
    assert_int_equal(sp[n - 3].end, 14);
    assert_int_equal(sp[n - 2].begin, 15);
    assert_int_equal(sp[n - 2].end, 18);
    assert_int_equal(sp[n - 1].begin, 18);
    assert_int_equal(sp[n - 1].end, 19);
    assert_int_equal(sp[n - 4].begin, 6); /* "," */
    assert_int_equal(sp[0].begin, 0);     /* the word "café" ends with the combining accent */
    size_t e = 0;
    for (size_t i = 0; i + 4 < n; i++)
        e = sp[i].end;
    assert_int_equal(e, 6);
    free(ids);
    free(sp);
    /* empty and whitespace-only texts: no ids, but a valid array */
    assert_int_equal(xa_wordpiece_encode(wp, NULL, 0, &ids, NULL, &n), XA_STATUS_OK);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(xa_wordpiece_encode(wp, " \t\n", 3, &ids, NULL, &n), XA_STATUS_OK);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(xa_wordpiece_piece_to_id(wp, "no-such-piece"), -1);
    assert_null(xa_wordpiece_id_to_piece(wp, -1));
    assert_null(xa_wordpiece_id_to_piece(wp, xa_wordpiece_vocab_size(wp)));
    assert_string_equal(xa_wordpiece_id_to_piece(wp, 3), "[UNK]");
    xa_wordpiece_free(wp);
    xa_wordpiece_free(NULL);
}

static void test_tok_interface(void **state) {
    (void)state;
    xa_tok *t = NULL;
    assert_int_equal(xa_tok_load(&t, bert_dir("bert-if", NULL)), XA_STATUS_OK);
    xa_tok_special s = xa_tok_special_ids(t);
    assert_int_equal(s.pad, 0);
    assert_int_equal(s.unk, 3);
    assert_int_equal(s.cls, 4);
    assert_int_equal(s.sep, 5);
    assert_int_equal(s.mask, 6);
    assert_int_equal(xa_tok_vocab_size(t), 2710);
    assert_null(xa_tok_spm(t));
    assert_non_null(xa_tok_wordpiece(t));
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(xa_tok_encode(t, "", 0, 1, &ids, &n), XA_STATUS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 5);
    free(ids);
    assert_false(xa_tok_is_word_start(t, s.cls));
    int32_t cont = -1;
    for (int32_t i = 0; i < xa_tok_vocab_size(t) && cont < 0; i++)
        if (!strncmp(xa_tok_id_to_piece(t, i), "##", 2)) cont = i;
    assert_true(cont > 0);
    assert_false(xa_tok_is_word_start(t, cont));
    assert_true(xa_tok_is_word_start(t, xa_tok_piece_to_id(t, "a")));
    assert_int_equal(xa_tok_piece_to_id(t, "no-such-piece"), s.unk);
    /* max_len smaller than the specials */
    xa_tok_input in;
    assert_int_equal(xa_tok_encode_input(t, "a", 1, "b", 1, 2, &in), XA_STATUS_USAGE);
    assert_null(in.ids);
    assert_int_equal(xa_tok_encode_input(t, "a b c d", 7, NULL, 0, 3, &in), XA_STATUS_OK);
    assert_int_equal(in.n, 3);
    assert_int_equal(in.n_truncated, 3);
    xa_tok_input_free(&in);
    xa_tok_free(t);

    /* tokenizer_config.json: special token objects and strip_accents */
    t = NULL;
    assert_int_equal(xa_tok_load(&t, bert_dir("bert-cfg", "{\"do_lower_case\": true, \"strip_accents\": false,"
                                              " \"unk_token\": {\"content\": \"[UNK]\", \"lstrip\": false}}")),
                     XA_STATUS_OK);
    char *basic = NULL;
    assert_int_equal(xa_wordpiece_basic(xa_tok_wordpiece(t), "Émile", 6, &basic), XA_STATUS_OK);
    assert_string_equal(basic, "émile");
    free(basic);
    xa_tok_free(t);
    t = NULL;
    assert_int_equal(xa_tok_load(&t, bert_dir("bert-cfg-bad", "{\"do_lower_case\": \"yes\"}")), XA_STATUS_FORMAT);
    xt_assert_error_mentions("do_lower_case");
    assert_int_equal(xa_tok_load(&t, bert_dir("bert-cfg-json", "{\"do_lower_case\": tru")), XA_STATUS_FORMAT);
    xt_assert_error_mentions("tokenizer_config.json:1:");
}

static void test_tok_sentencepiece(void **state) {
    (void)state;
    const char *dir = xt_tmp_path("xlmr");
    mkdir(dir, 0755);
    size_t n = 0;
    char *m = xt_read_file(xt_data_path("spm/fixture.model"), &n);
    assert_non_null(m);
    char p[4096];
    snprintf(p, sizeof p, "%s/sentencepiece.bpe.model", dir);
    xt_write_file(p, m, n);
    free(m);
    snprintf(p, sizeof p, "%s/vocab.txt", dir); /* sentencepiece.bpe.model is chosen first */
    xt_write_file(p, "garbage\n", 8);
    xa_tok *t = NULL;
    assert_int_equal(xa_tok_load(&t, dir), XA_STATUS_OK);
    assert_int_equal(xa_tok_get_kind(t), XA_TOK_KIND_SENTENCEPIECE);
    xa_tok_special s = xa_tok_special_ids(t);
    assert_int_equal(s.cls, 0);
    assert_int_equal(s.pad, 1);
    assert_int_equal(s.sep, 2);
    assert_int_equal(s.unk, 3);
    assert_int_equal(xa_tok_vocab_size(t), 1002);
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(xa_tok_encode(t, "hello world", 11, 0, &a, &na), XA_STATUS_OK);
    assert_int_equal(xa_tok_encode(t, "Bonjour", 7, 0, &b, &nb), XA_STATUS_OK);
    xa_tok_input in;
    assert_int_equal(xa_tok_encode_input(t, "hello world", 11, "Bonjour", 7, 0, &in), XA_STATUS_OK);
    assert_int_equal(in.n, na + nb + 4); /* <s> A </s></s> B </s> */
    assert_int_equal(in.ids[0], 0);
    assert_memory_equal(in.ids + 1, a, na * sizeof *a);
    assert_int_equal(in.ids[na + 1], 2);
    assert_int_equal(in.ids[na + 2], 2);
    assert_memory_equal(in.ids + na + 3, b, nb * sizeof *b);
    assert_int_equal(in.ids[in.n - 1], 2);
    for (size_t i = 0; i < in.n; i++)
        assert_int_equal(in.types[i], 0);
    xa_tok_input_free(&in);
    free(a);
    free(b);
    int32_t w = xa_tok_piece_to_id(t, "\xE2\x96\x81the");
    if (w != s.unk) assert_true(xa_tok_is_word_start(t, w));
    xa_tok_free(t);
}

static void test_tok_choice_errors(void **state) {
    (void)state;
    xa_tok *t = NULL;
    const char *dir = xt_tmp_path("empty");
    mkdir(dir, 0755);
    assert_int_equal(xa_tok_load(&t, dir), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("vocab.txt");
    assert_null(t);
    /* a Unigram tokenizer.json alone */
    dir = xt_tmp_path("unigram");
    mkdir(dir, 0755);
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    const char *uni = "{\"version\": \"1.0\", \"model\": {\"type\": \"Unigram\", \"unk_id\": 3, \"vocab\": [[\"<s>\", 0.0]]}}";
    xt_write_file(p, uni, strlen(uni));
    assert_int_equal(xa_tok_load(&t, dir), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("Unigram");
    xt_assert_error_mentions("tokenizer.json");
    static const struct {
        const char *json, *needle;
        xa_status st;
    } bad[] = {
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}", "tokenizer.json:1:", XA_STATUS_FORMAT},
        {"[1, 2]", "object", XA_STATUS_FORMAT},
        {"{\"model\": {\"vocab\": {}}}", "model type", XA_STATUS_FORMAT},
        {"{\"model\": {\"type\": \"BPE\"}}", "BPE", XA_STATUS_UNSUPPORTED},
        {"{\"normalizer\": {\"type\": \"Lowercase\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}", "Lowercase", XA_STATUS_UNSUPPORTED},
        {"{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": [\"[UNK]\"]}}", "model.vocab", XA_STATUS_FORMAT},
        {"{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 0}}}", "id 0", XA_STATUS_FORMAT},
        {"{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 99999999}}}", "2^24", XA_STATUS_FORMAT},
        {"{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "[UNK]", XA_STATUS_FORMAT},
        {"{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": 1}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}", "lowercase", XA_STATUS_FORMAT},
        {"{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1}}}", "[SEP]", XA_STATUS_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xt_write_file(p, bad[i].json, strlen(bad[i].json));
        assert_int_equal(xa_tok_load(&t, p), bad[i].st);
        xt_assert_error_mentions(bad[i].needle);
        assert_null(t);
    }
}

static void test_vocab_errors(void **state) {
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        const char *needle;
    } bad[] = {
        {"", 0, "empty"},
        {"[PAD]\r\n[UNK]\r\n", 14, ":1"},
        {"[PAD]\n[UNK]\nab\xff\n", 15, ":3"},
        {"[PAD]\n[U\0NK]\n", 13, "NUL"},
        {"[PAD]\nhello\n", 12, "[UNK]"},
    };
    const char *p = xt_tmp_path("bad-vocab.txt");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xt_write_file(p, bad[i].bytes, bad[i].n);
        xa_wordpiece *wp = NULL;
        assert_int_equal(xa_wordpiece_load(&wp, p, NULL), XA_STATUS_FORMAT);
        xt_assert_error_mentions(bad[i].needle);
        assert_null(wp);
    }
    xa_wordpiece *wp = NULL;
    assert_int_equal(xa_wordpiece_load(&wp, xt_tmp_path("missing.txt"), NULL), XA_STATUS_NOT_FOUND);
    /* a SentencePiece model given as vocab.txt */
    xa_tok *t = NULL;
    size_t n = 0;
    char *m = xt_read_file(xt_data_path("spm/fixture.model"), &n);
    xt_write_file(p, m, n);
    free(m);
    assert_int_equal(xa_tok_load(&t, p), XA_STATUS_FORMAT);
    xt_assert_error_mentions("bad-vocab.txt:");
    /* duplicates: the last line wins, as transformers' load_vocab */
    xt_write_file(p, "[UNK]\n[CLS]\n[SEP]\nx\nx\n", 21);
    assert_int_equal(xa_wordpiece_load(&wp, p, NULL), XA_STATUS_OK);
    assert_int_equal(xa_wordpiece_piece_to_id(wp, "x"), 4);
    assert_int_equal(xa_wordpiece_vocab_size(wp), 5);
    xa_wordpiece_free(wp);
}

static void test_hostile_inputs(void **state) {
    (void)state;
    xa_wordpiece *wp = mode_wp("lower");
    /* one huge word: one [UNK]; a huge line of words: as many ids as words */
    size_t big = (size_t)8 << 20;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, 'a', big);
    int32_t *ids = NULL;
    xa_spm_span *sp = NULL;
    size_t n = 0;
    assert_int_equal(xa_wordpiece_encode(wp, s, big, &ids, &sp, &n), XA_STATUS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], xa_wordpiece_unk_id(wp));
    assert_int_equal(sp[0].begin, 0);
    assert_int_equal(sp[0].end, big);
    free(ids);
    free(sp);
    for (size_t i = 0; i < big; i += 4)
        memcpy(s + i, "the ", 4);
    assert_int_equal(xa_wordpiece_encode(wp, s, big, &ids, NULL, &n), XA_STATUS_OK);
    assert_int_equal(n, big / 4);
    free(ids);
    /* random bytes: no crash, ordered spans inside the text */
    xa_rng rng;
    xa_rng_seed(&rng, 15, 0);
    for (int r = 0; r < 200; r++) {
        size_t len = 1 + xa_rng_u32(&rng) % 300;
        for (size_t i = 0; i < len; i++) {
            uint32_t u = xa_rng_u32(&rng);
            s[i] = (char)(u % 4 == 0 ? (u >> 8) : u % 4 == 1 ? 0x80 | ((u >> 8) & 0x3F) : u % 4 == 2 ? 0xE0 | ((u >> 8) & 0xF) : ' ' + (u >> 8) % 90);
        }
        assert_int_equal(xa_wordpiece_encode(wp, s, len, &ids, &sp, &n), XA_STATUS_OK);
        for (size_t i = 0; i < n; i++) {
            assert_true(ids[i] >= 0 && ids[i] < xa_wordpiece_vocab_size(wp));
            assert_true(sp[i].begin <= sp[i].end && sp[i].end <= len);
        }
        free(ids);
        free(sp);
    }
    assert_int_equal(xa_wordpiece_encode(wp, s, (size_t)1 << 31, &ids, NULL, &n), XA_STATUS_USAGE);
    assert_int_equal(xa_wordpiece_encode(wp, NULL, 3, &ids, NULL, &n), XA_STATUS_USAGE);
    free(s);
    xa_wordpiece_free(wp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_golden_encode, xt_teardown),
        cmocka_unit_test_teardown(test_golden_pairs, xt_teardown),
        cmocka_unit_test_teardown(test_unicode_table, xt_teardown),
        cmocka_unit_test_teardown(test_spans_and_specials, xt_teardown),
        cmocka_unit_test_teardown(test_tok_interface, xt_teardown),
        cmocka_unit_test_teardown(test_tok_sentencepiece, xt_teardown),
        cmocka_unit_test_teardown(test_tok_choice_errors, xt_teardown),
        cmocka_unit_test_teardown(test_vocab_errors, xt_teardown),
        cmocka_unit_test_teardown(test_hostile_inputs, xt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
