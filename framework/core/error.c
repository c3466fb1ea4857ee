/* core/error: status names, exit codes, the thread-local error record and the always-on assert.
 *
 * The record follows libyaml's idea (details live in one object, the caller prints them) but is
 * thread-local instead of per object, so every module can report through one channel: a failing
 * call fills it and returns its status; the CLI prints it and maps the status to an exit code.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local xa_error g_error;

const char *xa_status_name(xa_status st) {
    switch (st) {
    case XA_STATUS_OK: return "ok";
    case XA_STATUS_IO: return "io";
    case XA_STATUS_FORMAT: return "format";
    case XA_STATUS_CONFIG: return "config";
    case XA_STATUS_USAGE: return "usage";
    case XA_STATUS_SHAPE: return "shape";
    case XA_STATUS_NOT_FOUND: return "not-found";
    case XA_STATUS_NOMEM: return "out-of-memory";
    case XA_STATUS_UNSUPPORTED: return "unsupported";
    case XA_STATUS_RUNTIME: return "runtime";
    }
    return "unknown";
}

int xa_status_exit_code(xa_status st) {
    if (st == XA_STATUS_OK) return 0;
    if (st == XA_STATUS_CONFIG || st == XA_STATUS_USAGE) return 2;
    return 1;
}

static void copy_field(char *dst, size_t cap, const char *src) {
    if (!src) {
        dst[0] = '\0';
        return;
    }
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Append src at dst[len] within cap bytes (truncating, always terminated); returns the new length. */
static size_t append(char *dst, size_t cap, size_t len, const char *src) {
    size_t n = strlen(src);
    if (len + 1 >= cap) return len;
    if (n > cap - 1 - len) n = cap - 1 - len;
    memcpy(dst + len, src, n);
    dst[len + n] = '\0';
    return len + n;
}

xa_status xa_error_set(xa_status st, const char *where, const char *expected, const char *hint,
                       const char *fmt, ...) {
    /* Arguments may point into the current record (re-raising with more context): copy first. */
    xa_error e;
    e.status = st;
    copy_field(e.where, sizeof e.where, where);
    copy_field(e.expected, sizeof e.expected, expected);
    copy_field(e.hint, sizeof e.hint, hint);
    e.what[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e.what, sizeof e.what, fmt, ap);
        va_end(ap);
    }
    g_error = e;
    return st;
}

void xa_error_prefix(const char *fmt, ...) {
    char prefix[XA_ERROR_FIELD];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char what[sizeof g_error.what];
    size_t len = 0;
    len = append(what, sizeof what, len, prefix);
    len = append(what, sizeof what, len, ": ");
    append(what, sizeof what, len, g_error.what);
    memcpy(g_error.what, what, sizeof what);
}

const xa_error *xa_error_last(void) { return &g_error; }

void xa_error_clear(void) { memset(&g_error, 0, sizeof g_error); }

size_t xa_error_format(const xa_error *e, char *buf, size_t n) {
    char tmp[sizeof(xa_error) + 64];
    size_t len = append(tmp, sizeof tmp, 0, "error: ");
    if (e->where[0]) {
        len = append(tmp, sizeof tmp, len, e->where);
        len = append(tmp, sizeof tmp, len, ": ");
    }
    len = append(tmp, sizeof tmp, len, e->what[0] ? e->what : xa_status_name(e->status));
    if (e->expected[0]) {
        len = append(tmp, sizeof tmp, len, "\n  expected: ");
        len = append(tmp, sizeof tmp, len, e->expected);
    }
    if (e->hint[0]) {
        len = append(tmp, sizeof tmp, len, "\n  hint: ");
        len = append(tmp, sizeof tmp, len, e->hint);
    }
    if (n > 0) copy_field(buf, n, tmp);
    return len;
}

XA_NORETURN void xa_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "xadapt: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    fflush(stderr);
    abort();
}

int xa_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int xa_size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}
