/* Shared helpers of the xadapt subcommands: error printing and option-value parsing. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/dist.h"

int cli_fail(void) {
    char buf[4096];
    const xa_error *e = xa_error_last();
    xa_error_format(e, buf, sizeof buf);
    if (xa_dist_size() > 1) fprintf(stderr, "xadapt: rank %d: %s\n", xa_dist_rank(), buf); /* which rank says it */
    else fprintf(stderr, "xadapt: %s\n", buf);
    int code = xa_status_exit_code(e->status);
    return code ? code : CLI_EXIT_RUNTIME;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    /* Under mpirun every rank parses the same command line and fails alike: rank 0 says it once. */
    if (xa_dist_rank() > 0) return CLI_EXIT_USAGE;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "xadapt %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'xadapt %s --help'.\n", cmd);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_parse_i64(const char *cmd, const char *opt, const char *text, int64_t lo, int64_t hi,
                  int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects an integer in [%lld, %lld], got '%s'", opt, (long long)lo,
                        (long long)hi, text);
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

int cli_parse_f64(const char *cmd, const char *opt, const char *text, double lo, double hi,
                  double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects a number in [%g, %g], got '%s'", opt, lo, hi, text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_precision(const char *cmd, const char *text, xa_precision *out) {
    if (xa_precision_parse(text, "--precision", out)) {
        xa_error_clear();
        cli_usage_error(cmd, "--precision: '%s' is not fp32 or bf16", text);
        return 0;
    }
    if (xa_precision_effective(*out) != *out)
        XA_LOG_WARN("%s: --precision bf16, but this CPU has no bf16 kernel (AVX512-BF16): fp32 products", cmd);
    return 1;
}

int cli_is_help(const char *arg) {
    return !strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help");
}

void cli_set_quiet(void) {
    xa_progress_set_quiet(1);
    if (!getenv("XA_LOG_LEVEL")) xa_log_set_level(XA_LOG_LEVEL_WARN);
}
