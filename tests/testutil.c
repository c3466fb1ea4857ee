/* Shared helpers for the cmocka tests (see testutil.h). */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "tensor/tensor.h"
#include "tokenizer/spm.h"

static char g_paths[8][4096];
static int g_slot;

static char *next_slot(void) {
    char *p = g_paths[g_slot];
    g_slot = (g_slot + 1) % 8;
    return p;
}

const char *xt_data_path(const char *name) {
    const char *root = getenv("XA_TEST_DATA");
    char *p = next_slot();
    int n = snprintf(p, sizeof g_paths[0], "%s/%s", root ? root : "tests/data", name);
    if (n < 0 || (size_t)n >= sizeof g_paths[0]) fail_msg("path too long: %s", name);
    return p;
}

static void mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *s = tmp + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(tmp, 0777);
            *s = '/';
        }
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
        fail_msg("cannot create %s: %s", tmp, strerror(errno));
    }
}

const char *xt_tmp_dir(void) {
    static char dir[4096];
    if (!dir[0]) {
        const char *root = getenv("XA_TEST_TMP");
        extern char *program_invocation_short_name;
        snprintf(dir, sizeof dir, "%s/%s-%ld", root ? root : "/tmp/xadapt-test",
                 program_invocation_short_name, (long)getpid());
        mkdir_p(dir);
    }
    return dir;
}

const char *xt_tmp_path(const char *name) {
    char *p = next_slot();
    int n = snprintf(p, sizeof g_paths[0], "%s/%s", xt_tmp_dir(), name);
    if (n < 0 || (size_t)n >= sizeof g_paths[0]) fail_msg("path too long: %s", name);
    return p;
}

void xt_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write to %s", path);
    fclose(f);
}

char *xt_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[len] = '\0';
        if (n) *n = (size_t)len;
    }
    return buf;
}

void xt_assert_close(const char *label, const float *got, const float *ref, size_t n, float atol,
                     float rtol) {
    size_t worst = 0;
    double worst_ratio = -1.0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)ref[i]);
        double allowed = atol + rtol * fabs((double)ref[i]);
        double ratio = isnan(err) ? INFINITY : err / allowed;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    if (n && worst_ratio > 1.0) {
        double err = fabs((double)got[worst] - (double)ref[worst]);
        fail_msg("%s: %zu elements, worst at [%zu]: got %.9g ref %.9g |err| %.3g > allowed %.3g "
                 "(atol %g + rtol %g*|ref|)",
                 label, n, worst, (double)got[worst], (double)ref[worst], err,
                 atol + rtol * fabs((double)ref[worst]), (double)atol, (double)rtol);
    }
}

void xt_assert_error_mentions(const char *needle) {
    const xa_error *e = xa_error_last();
    if (e->status == XA_STATUS_OK) fail_msg("expected an error mentioning '%s', got none", needle);
    if (strstr(e->where, needle) || strstr(e->what, needle) || strstr(e->expected, needle) ||
        strstr(e->hint, needle)) {
        return;
    }
    char buf[4096];
    xa_error_format(e, buf, sizeof buf);
    fail_msg("error does not mention '%s':\n%s", needle, buf);
}

#define XT_MAX_ALLOCS 4096
static void *g_allocs[XT_MAX_ALLOCS];
static int g_n_allocs;

void *xt_alloc(size_t bytes) {
    if (g_n_allocs == XT_MAX_ALLOCS) fail_msg("xt_alloc: too many allocations");
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) fail_msg("xt_alloc: out of memory");
    g_allocs[g_n_allocs++] = p;
    return p;
}

float *xt_fzeros(size_t n) {
    return xt_alloc(n * sizeof(float));
}

double *xt_dzeros(size_t n) {
    return xt_alloc(n * sizeof(double));
}

float *xt_fcopy(const float *x, size_t n) {
    return memcpy(xt_fzeros(n), x, n * sizeof(float));
}

float *xt_frandn(xa_rng *rng, size_t n, float std) {
    float *x = xt_fzeros(n);
    xa_rng_fill_normal(rng, x, n, 0.0f, std);
    return x;
}

void xt_free_all(void) {
    for (int i = 0; i < g_n_allocs; i++)
        free(g_allocs[i]);
    g_n_allocs = 0;
}

int xt_teardown(void **state) {
    (void)state;
    xt_free_all();
    xa_threads_set(1);
    return 0;
}

double xt_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

void xt_check_fd(const char *label, xt_loss_fn loss, void *ctx, float *x, const float *grad,
                 size_t n, float h, float atol, float rtol) {
    float *fd = xt_fzeros(n);
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = loss(ctx);
        x[i] = xm;
        double lm = loss(ctx);
        x[i] = x0;
        fd[i] = (float)((lp - lm) / ((double)xp - (double)xm));
    }
    xt_assert_close(label, grad, fd, n, atol, rtol);
}

xa_st_file *xt_open_golden(const char *name) {
    const char *path = xt_data_path(name);
    xa_st_file *st = NULL;
    if (xa_st_open(&st, path) != XA_STATUS_OK) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "cannot open the golden fixture %s:\n%s\n", path, buf);
        return NULL;
    }
    return st;
}

void xt_gold_f32(const xa_st_file *st, const char *name, float *dst, size_t n) {
    const xa_st_tensor *t = xa_st_find(st, name);
    if (!t) fail_msg("fixture has no tensor '%s' (regenerate it with gen_tensor_golden.py)", name);
    if ((size_t)t->n_elems != n)
        fail_msg("'%s': %lld elements, expected %zu", name, (long long)t->n_elems, n);
    assert_int_equal(xa_st_tensor_to_f32(t, dst), XA_STATUS_OK);
}

float *xt_read_f32(const xa_st_file *f, const char *name, size_t *n) {
    const xa_st_tensor *t = xa_st_find(f, name);
    if (!t) fail_msg("golden tensor %s missing", name);
    float *buf = malloc((size_t)t->n_elems * sizeof(float));
    assert_int_equal(xa_st_tensor_to_f32(t, buf), XA_STATUS_OK);
    if (n) *n = (size_t)t->n_elems;
    return buf;
}

const char *xt_write_tmp(const char *name, const char *text) {
    const char *p = xt_tmp_path(name);
    xt_write_file(p, text, strlen(text));
    return p;
}

xa_tok *xt_fixture_tok(void) {
    xa_spm *spm = NULL;
    xa_tok *tok = NULL;
    if (xa_spm_load(&spm, xt_data_path("spm/fixture.model")) != XA_STATUS_OK ||
        xa_tok_from_spm(&tok, spm, "fixture.model") != XA_STATUS_OK || xa_spm_get_ids(spm) != XA_SPM_IDS_XLMR) {
        fprintf(stderr, "xt_fixture_tok: %s\n", xa_error_last()->what);
        xa_tok_free(tok);
        return NULL;
    }
    return tok;
}

xa_pretrain_opts xt_tiny_pretrain_opts(const char *out, int64_t steps) {
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
