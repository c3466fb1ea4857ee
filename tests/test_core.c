/* Tests of framework/core: status codes, the error record, logging, checked sizes, the arena, the
 * PCG32 generator (against the reference outputs of O'Neill's pcg32-demo), the timer and the
 * progress line. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void test_status_exit_codes(void **state) {
    (void)state;
    assert_int_equal(xa_status_exit_code(XA_STATUS_OK), 0);
    assert_int_equal(xa_status_exit_code(XA_STATUS_CONFIG), 2);
    assert_int_equal(xa_status_exit_code(XA_STATUS_USAGE), 2);
    assert_int_equal(xa_status_exit_code(XA_STATUS_IO), 1);
    assert_int_equal(xa_status_exit_code(XA_STATUS_FORMAT), 1);
    assert_int_equal(xa_status_exit_code(XA_STATUS_RUNTIME), 1);
    assert_string_equal(xa_status_name(XA_STATUS_FORMAT), "format");
    assert_string_equal(xa_status_name((xa_status)999), "unknown");
}

static void test_error_record(void **state) {
    (void)state;
    xa_error_clear();
    assert_int_equal(xa_error_last()->status, XA_STATUS_OK);
    xa_status st = xa_error_set(XA_STATUS_CONFIG, "recipe.yaml:3:7", "a positive integer",
                                "did you mean 'batch_size'?", "key 'bach_size' is unknown (%d)", 42);
    assert_int_equal(st, XA_STATUS_CONFIG);
    const xa_error *e = xa_error_last();
    assert_int_equal(e->status, XA_STATUS_CONFIG);
    assert_string_equal(e->where, "recipe.yaml:3:7");
    assert_string_equal(e->what, "key 'bach_size' is unknown (42)");
    char buf[2048];
    size_t n = xa_error_format(e, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf, "error: recipe.yaml:3:7: key 'bach_size' is unknown (42)\n"
                             "  expected: a positive integer\n"
                             "  hint: did you mean 'batch_size'?");
    /* Context added while the error propagates. */
    xa_error_prefix("loading %s", "recipes/x.yaml");
    assert_string_equal(xa_error_last()->what, "loading recipes/x.yaml: key 'bach_size' is unknown (42)");
    /* Re-raising with the record's own fields as arguments must not corrupt them. */
    xa_error_set(XA_STATUS_IO, xa_error_last()->where, NULL, NULL, "%s", xa_error_last()->what);
    assert_string_equal(xa_error_last()->where, "recipe.yaml:3:7");
    assert_string_equal(xa_error_last()->expected, "");
    /* Small buffers truncate but stay terminated. */
    char small[8];
    size_t want = xa_error_format(xa_error_last(), small, sizeof small);
    assert_true(want > sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    /* Overlong fields are truncated, not overflowed. */
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    xa_error_set(XA_STATUS_FORMAT, big, big, big, "%s", big);
    assert_int_equal(strlen(xa_error_last()->where), XA_ERROR_FIELD - 1);
    assert_int_equal(strlen(xa_error_last()->what), 2 * XA_ERROR_FIELD - 1);
    xa_error_clear();
    xa_error_format(xa_error_last(), buf, sizeof buf);
    assert_string_equal(buf, "error: ok");
}

typedef struct log_capture {
    int count;
    xa_log_level level;
    char msg[256];
} log_capture;

static void capture_log(xa_log_level level, const char *msg, void *user) {
    log_capture *c = user;
    c->count++;
    c->level = level;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static void test_log_callback_and_level(void **state) {
    (void)state;
    log_capture c = {0};
    xa_log_level saved = xa_log_get_level();
    xa_log_set_callback(capture_log, &c);
    xa_log_set_level(XA_LOG_LEVEL_INFO);
    XA_LOG_DEBUG("hidden %d", 1);
    assert_int_equal(c.count, 0);
    XA_LOG_WARN("shown %d\n", 2);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.level, XA_LOG_LEVEL_WARN);
    assert_string_equal(c.msg, "shown 2"); /* trailing newline stripped */
    xa_log_set_level(XA_LOG_LEVEL_SILENT);
    XA_LOG_ERROR("dropped");
    assert_int_equal(c.count, 1);
    xa_log_set_level(saved);
    xa_log_set_callback(NULL, NULL);
}

static void test_checked_sizes(void **state) {
    (void)state;
    size_t out = 0;
    assert_true(xa_size_mul(3, 5, &out));
    assert_int_equal(out, 15);
    assert_false(xa_size_mul(SIZE_MAX / 2 + 1, 2, &out));
    assert_true(xa_size_mul(0, SIZE_MAX, &out));
    assert_int_equal(out, 0);
    assert_true(xa_size_add(SIZE_MAX - 1, 1, &out));
    assert_false(xa_size_add(SIZE_MAX, 1, &out));
}

static void test_arena(void **state) {
    (void)state;
    size_t sizes[] = {10, 0, 64, 65, 3 << 20};
    size_t offsets[5];
    size_t total = xa_arena_plan(sizes, 5, 64, offsets);
    assert_int_equal(offsets[0], 0);
    assert_int_equal(offsets[1], 64);
    assert_int_equal(offsets[2], 64);
    assert_int_equal(offsets[3], 128);
    assert_int_equal(offsets[4], 256);
    assert_int_equal(total, 256 + (3 << 20));
    xa_arena a;
    void *views[5];
    assert_int_equal(xa_arena_init(&a, sizes, 5, 64, views), XA_STATUS_OK);
    assert_int_equal(a.size, total);
    for (int i = 0; i < 5; i++) {
        assert_int_equal((uintptr_t)views[i] % 64, 0);
        assert_true((char *)views[i] >= (char *)a.base);
        assert_true((char *)views[i] + sizes[i] <= (char *)a.base + a.size);
    }
    const unsigned char *bytes = views[4];
    for (size_t i = 0; i < sizes[4]; i += 4093) assert_int_equal(bytes[i], 0);
    memset(views[4], 0xab, sizes[4]); /* the whole view is writable */
    xa_arena_free(&a);
    assert_null(a.base);
    xa_arena_free(&a); /* double free of an emptied arena is fine */
    xa_arena_free(NULL);

    size_t huge[] = {SIZE_MAX - 8, 100};
    assert_int_equal(xa_arena_plan(huge, 2, 64, NULL), SIZE_MAX);
    assert_int_equal(xa_arena_init(&a, huge, 2, 64, views), XA_STATUS_NOMEM);
    assert_null(a.base);
    assert_int_equal(xa_arena_init(&a, sizes, 2, 48, views), XA_STATUS_USAGE);
}

static void test_param_buffers(void **state) {
    (void)state;
    size_t numel[4] = {6, 0, 3, 5};
    float *views[4], *gviews[4];
    float *data = xa_aligned_alloc(14 * sizeof(float), XA_ARENA_ALIGN);
    xa_params_carve(data, numel, 4, views);
    assert_ptr_equal(views[0], data);
    assert_null(views[1]); /* empty tensor */
    assert_ptr_equal(views[2], data + 6);
    assert_ptr_equal(views[3], data + 9);
    float *grads = NULL;
    assert_int_equal(xa_params_set_trainable(&grads, 14, numel, 4, gviews, 1, "test"), XA_STATUS_OK);
    assert_non_null(grads);
    assert_ptr_equal(gviews[3], grads + 9);
    for (int i = 0; i < 14; i++) assert_true(grads[i] == 0.0f);
    float *same = grads;
    assert_int_equal(xa_params_set_trainable(&grads, 14, numel, 4, gviews, 1, "test"), XA_STATUS_OK);
    assert_ptr_equal(grads, same); /* already trainable: kept */
    assert_int_equal(xa_params_set_trainable(&grads, 14, numel, 4, gviews, 0, "test"), XA_STATUS_OK);
    assert_null(grads);
    for (int i = 0; i < 4; i++) assert_null(gviews[i]);
    xa_aligned_free(data);
}

/* Reference outputs of pcg32-demo (pcg-c-basic) for pcg32_srandom_r(&rng, 42u, 54u). */
static void test_rng_reference_stream(void **state) {
    (void)state;
    static const uint32_t expect[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                       0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    xa_rng r;
    xa_rng_seed(&r, 42u, 54u);
    for (int i = 0; i < 6; i++) assert_int_equal(xa_rng_u32(&r), expect[i]);
}

static void test_rng_determinism_and_resume(void **state) {
    (void)state;
    xa_rng a, b, c;
    xa_rng_seed(&a, 1234, 0);
    xa_rng_seed(&b, 1234, 0);
    xa_rng_seed(&c, 1234, 1);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t x = xa_rng_u32(&a);
        assert_int_equal(x, xa_rng_u32(&b));
        differ += x != xa_rng_u32(&c);
    }
    assert_true(differ > 90); /* another stream is another sequence */
    /* A copied state (a checkpoint) continues the exact stream, normals included. */
    xa_rng saved = a;
    float first[16], again[16];
    for (int i = 0; i < 16; i++) first[i] = xa_rng_normal(&a);
    a = saved;
    for (int i = 0; i < 16; i++) again[i] = xa_rng_normal(&a);
    assert_memory_equal(first, again, sizeof first);
}

/* Jump-ahead: advancing by n equals n draws (checked by stepping, for small n and n across
 * powers of two), jumps compose, and a jump of 2^64 - 1 followed by one draw is the LCG's full
 * period: the starting state again. */
static void test_rng_advance(void **state) {
    (void)state;
    const uint64_t ns[] = {0, 1, 2, 3, 7, 8, 255, 256, 511, 4095, 4097, 100003};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        xa_rng a, b;
        xa_rng_seed(&a, 99, 17 + i);
        b = a;
        for (uint64_t k = 0; k < ns[i]; k++) xa_rng_u32(&a);
        xa_rng_advance(&b, ns[i]);
        if (a.state != b.state || a.inc != b.inc)
            fail_msg("advance(%llu) left state %016llx, %llu draws %016llx", (unsigned long long)ns[i],
                     (unsigned long long)b.state, (unsigned long long)ns[i], (unsigned long long)a.state);
        assert_int_equal(xa_rng_u32(&a), xa_rng_u32(&b));
    }
    xa_rng a, b, c;
    xa_rng_seed(&a, 5, 3);
    b = a;
    c = a;
    xa_rng_advance(&a, (1ull << 40) + 12345);
    xa_rng_advance(&b, 1ull << 40);
    xa_rng_advance(&b, 12345);
    assert_true(a.state == b.state);
    xa_rng_advance(&c, UINT64_MAX);
    xa_rng_u32(&c);
    xa_rng d;
    xa_rng_seed(&d, 5, 3);
    assert_true(c.state == d.state);
}

static void test_rng_distributions(void **state) {
    (void)state;
    xa_rng r;
    xa_rng_seed(&r, 7, 3);
    enum { N = 200000, K = 10 };
    int counts[K] = {0};
    double sum = 0, sumsq = 0, usum = 0;
    for (int i = 0; i < N; i++) {
        uint32_t k = xa_rng_below(&r, K);
        assert_true(k < K);
        counts[k]++;
        float u = xa_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        usum += u;
        float z = xa_rng_normal(&r);
        assert_true(isfinite(z));
        sum += z;
        sumsq += (double)z * z;
    }
    /* Chi-square with 9 degrees of freedom: 27.9 is the 0.999 quantile. */
    double chi = 0;
    for (int k = 0; k < K; k++) {
        double d = counts[k] - (double)N / K;
        chi += d * d / ((double)N / K);
    }
    assert_true(chi < 27.9);
    double mean = sum / N, var = sumsq / N - mean * mean;
    assert_true(fabs(mean) < 0.01);
    assert_true(fabs(var - 1.0) < 0.02);
    assert_true(fabs(usum / N - 0.5) < 0.005);

    float buf[1000];
    xa_rng_fill_normal(&r, buf, 1000, 5.0f, 0.01f);
    for (int i = 0; i < 1000; i++) assert_true(fabsf(buf[i] - 5.0f) < 0.1f);
    xa_rng_fill_uniform(&r, buf, 1000, -2.0f, -1.0f);
    for (int i = 0; i < 1000; i++) assert_true(buf[i] >= -2.0f && buf[i] < -1.0f);

    uint32_t idx[50];
    for (uint32_t i = 0; i < 50; i++) idx[i] = i;
    xa_rng_shuffle_u32(&r, idx, 50);
    int seen[50] = {0}, moved = 0;
    for (uint32_t i = 0; i < 50; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 30);
}

static void test_timer_and_duration(void **state) {
    (void)state;
    double t0 = xa_time_now();
    double t1 = xa_time_now();
    assert_true(t1 >= t0);
    char buf[32];
    assert_string_equal(xa_format_duration(9.34, buf, sizeof buf), "9.3s");
    assert_string_equal(xa_format_duration(252, buf, sizeof buf), "4m12s");
    assert_string_equal(xa_format_duration(3720, buf, sizeof buf), "1h02m");
    assert_string_equal(xa_format_duration(-1, buf, sizeof buf), "?");
    assert_true(xa_peak_rss_bytes() > 0);
}

static void test_progress_plain_lines(void **state) {
    (void)state;
    const char *path = xt_tmp_path("progress.txt");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    xa_progress p;
    xa_progress_init(&p, f, "pretrain", "tok", 0, 5);
    assert_false(p.is_tty);
    for (int step = 1; step <= 5; step++) xa_progress_update(&p, step, 128.0, "loss %.2f", 5.0 - step);
    xa_progress_finish(&p);
    fclose(f);
    size_t n = 0;
    char *text = xt_read_file(path, &n);
    assert_non_null(text);
    /* The interval is 10 s: only the first and the last step are written, one line each. */
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    assert_int_equal(lines, 2);
    assert_non_null(strstr(text, "pretrain 1/5  20.0%"));
    assert_non_null(strstr(text, "loss 4.00"));
    assert_non_null(strstr(text, "pretrain 5/5 100.0%"));
    assert_non_null(strstr(text, "tok/s"));
    assert_non_null(strstr(text, "loss 0.00"));
    assert_null(strchr(text, '\r'));
    free(text);

    /* Unknown total: the last reported step is written by finish. */
    f = fopen(path, "w");
    xa_progress_init(&p, f, NULL, NULL, 10, 0);
    xa_progress_update(&p, 11, 1.0, NULL);
    xa_progress_update(&p, 12, 1.0, "x");
    xa_progress_finish(&p);
    fclose(f);
    text = xt_read_file(path, &n);
    assert_non_null(strstr(text, "11 |"));
    assert_non_null(strstr(text, "12 |"));
    assert_null(strstr(text, "%"));
    free(text);
}

/* core/utf8.c: strict RFC 3629 checks. */
static void test_utf8(void **state) {
    (void)state;
    static const struct {
        const char *s;
        int ok;
        size_t bad;
    } cases[] = {
        {"plain", 1, 0},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 1, 0},
        {"\xef\xbf\xbd\xf4\x8f\xbf\xbf", 1, 0}, /* U+FFFD, U+10FFFF */
        {"caf\xe9", 0, 3},                          /* Latin-1 */
        {"ab\x80", 0, 2},                           /* lone continuation */
        {"\xc0\xaf", 0, 0},                         /* overlong '/' */
        {"\xc1\xbf", 0, 0},
        {"\xe0\x80\xaf", 0, 0},                     /* overlong 3-byte */
        {"\xed\xa0\x80", 0, 0},                     /* surrogate U+D800 */
        {"\xf0\x8f\xbf\xbf", 0, 0},                 /* overlong 4-byte */
        {"\xf4\x90\x80\x80", 0, 0},                 /* past U+10FFFF */
        {"\xf5\x80\x80\x80", 0, 0},
        {"x\xe2\x82", 0, 1},                        /* truncated */
        {"\xff", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t bad = 99;
        int ok = xa_utf8_valid(cases[i].s, strlen(cases[i].s), &bad);
        if (ok != cases[i].ok) fail_msg("case %zu: valid %d, expected %d", i, ok, cases[i].ok);
        if (!ok && bad != cases[i].bad) fail_msg("case %zu: bad at %zu, expected %zu", i, bad, cases[i].bad);
    }
    assert_int_equal(xa_utf8_char("\xe2\x82\xac", 3), 3);
    assert_int_equal(xa_utf8_char("\xe2\x82\xac", 2), 0); /* cut by n */
    assert_int_equal(xa_utf8_char("", 0), 0);
}

/* On a terminal (is_tty forced on a file; the width from $COLUMNS since the file has no window
 * size): the line is cut to the width minus one; a log message erases it first and draws it again
 * after, so the message starts a line of its own; quiet writes nothing. */
static void test_progress_terminal(void **state) {
    (void)state;
    const char *path = xt_tmp_path("progress-tty.txt");
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    setenv("COLUMNS", "40", 1);
    xa_progress p;
    xa_progress_init(&p, f, "lang de", "tok", 0, 100);
    p.is_tty = 1;
    xa_progress_update(&p, 1, 8.0, "loss %.4f | lr %.2e | and a long tail of text", 3.25, 1e-4);
    const long drawn = ftell(f);
    assert_true(drawn >= 2 && drawn <= 40); /* "\r" + at most 39 characters */
    assert_true(strlen(p.shown) == 39);
    FILE *saved = stderr; /* the default log sink writes to stderr: send it to the same file */
    stderr = f;
    XA_LOG_WARN("a message");
    stderr = saved;
    xa_progress_finish(&p);
    xa_progress_set_quiet(1);
    xa_progress p2;
    xa_progress_init(&p2, f, "quiet", "tok", 0, 10);
    p2.is_tty = 1;
    const long before = ftell(f);
    xa_progress_update(&p2, 1, 8.0, "loss 1");
    xa_progress_finish(&p2);
    assert_int_equal(ftell(f), before);
    xa_progress_set_quiet(0);
    fclose(f);
    unsetenv("COLUMNS");
    char *text = xt_read_file(path, NULL);
    assert_non_null(text);
    /* the line, erased ("\r" + blanks + "\r"), the message on its own line, the line again */
    char want[sizeof p.shown + 96];
    snprintf(want, sizeof want, "\r%39s\r[xadapt] warning: a message\n\r%s", "", p.shown);
    assert_non_null(strstr(text, want));
    assert_int_equal(text[strlen(text) - 1], '\n'); /* finish ends the line */
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_exit_codes),
        cmocka_unit_test(test_error_record),
        cmocka_unit_test(test_log_callback_and_level),
        cmocka_unit_test(test_checked_sizes),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_param_buffers),
        cmocka_unit_test(test_rng_reference_stream),
        cmocka_unit_test(test_rng_determinism_and_resume),
        cmocka_unit_test(test_rng_advance),
        cmocka_unit_test(test_rng_distributions),
        cmocka_unit_test(test_timer_and_duration),
        cmocka_unit_test(test_progress_plain_lines),
        cmocka_unit_test(test_progress_terminal),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
