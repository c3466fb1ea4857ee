/* core/log: levelled logging through a settable sink (default: stderr). Never writes to stdout.
 * The level threshold comes from xa_log_set_level() or, on first use, from $XA_LOG_LEVEL. A
 * progress line shown on a terminal is erased before a message and drawn again after it, so the
 * message gets a line of its own. An optional log file (xa_log_set_file) receives every message
 * at INFO or above with a UTC timestamp, whatever the console level. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static xa_log_fn g_fn;
static void *g_user;
static int g_level = -1; /* -1: not read from the environment yet */
static FILE *g_file;

void xa_log_set_file(FILE *f) { g_file = f; }

static const char *level_name(xa_log_level level) {
    switch (level) {
    case XA_LOG_LEVEL_DEBUG: return "debug";
    case XA_LOG_LEVEL_INFO: return "info";
    case XA_LOG_LEVEL_WARN: return "warning";
    case XA_LOG_LEVEL_ERROR: return "error";
    case XA_LOG_LEVEL_SILENT: return "silent";
    }
    return "?";
}

static xa_log_level level_from_env(void) {
    const char *s = getenv("XA_LOG_LEVEL");
    if (!s) return XA_LOG_LEVEL_INFO;
    if (!strcasecmp(s, "debug")) return XA_LOG_LEVEL_DEBUG;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return XA_LOG_LEVEL_WARN;
    if (!strcasecmp(s, "error")) return XA_LOG_LEVEL_ERROR;
    if (!strcasecmp(s, "silent")) return XA_LOG_LEVEL_SILENT;
    return XA_LOG_LEVEL_INFO;
}

void xa_log_set_callback(xa_log_fn fn, void *user) {
    g_fn = fn;
    g_user = user;
}

void xa_log_set_level(xa_log_level level) { g_level = (int)level; }

xa_log_level xa_log_get_level(void) {
    if (g_level < 0) g_level = (int)level_from_env();
    return (xa_log_level)g_level;
}

void xa_logv(xa_log_level level, const char *fmt, va_list ap) {
    const xa_log_level threshold = xa_log_get_level();
    const int console = level < XA_LOG_LEVEL_SILENT && level >= threshold;
    const int file = g_file && level < XA_LOG_LEVEL_SILENT &&
                     level >= (threshold < XA_LOG_LEVEL_INFO ? threshold : XA_LOG_LEVEL_INFO);
    if (!console && !file) return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
    if (file) {
        char when[32];
        time_t t = time(NULL);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm)) when[0] = '\0';
        fprintf(g_file, "%s %s: %s\n", when, level_name(level), msg);
        fflush(g_file);
    }
    if (!console) return;
    xa_progress_erase();
    if (g_fn) {
        g_fn(level, msg, g_user);
    } else {
        fprintf(stderr, "[xadapt] %s: %s\n", level_name(level), msg);
    }
    xa_progress_redraw();
}

void xa_log(xa_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    xa_logv(level, fmt, ap);
    va_end(ap);
}
