/* core/progress: the progress line of long loops.
 *
 *   pretrain  120/1000  12.0% | 3.41 step/s | ETA 4m18s | loss 3.2104
 *
 * On a terminal the line is redrawn in place with '\r' at most 10 times a second, cut to the
 * terminal's width; elsewhere (logs, CI, pipes) one plain line is written every `interval` seconds
 * and for the first and last step, so a log file stays readable. The rate counts from the first
 * reported step (resumed runs are fair). The line shown on a terminal is remembered (one per
 * process: the loops that show one do not nest), so that core/log can erase it before a message
 * and draw it again after, and a message never ends up glued to the progress text.
 * Does not: handle wide (East Asian) characters in the width (the line is ASCII but for labels). */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define XA_TTY_REDRAW_S 0.1

static int g_quiet;
static xa_progress *g_shown; /* the progress line drawn on a terminal now, or NULL */

void xa_progress_set_quiet(int quiet) { g_quiet = quiet != 0; }
int xa_progress_quiet(void) { return g_quiet; }

/* Columns of the terminal behind out: TIOCGWINSZ, else $COLUMNS, else 80. */
static int term_width(FILE *out) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    long v = c ? strtol(c, NULL, 10) : 0;
    return v > 0 && v < 10000 ? (int)v : 80;
}

/* Cut line to at most `cols` characters (UTF-8 aware); returns its length in bytes. */
static size_t fit(char *line, int cols) {
    int chars = 0;
    size_t i = 0;
    for (; line[i]; i++) {
        if (((unsigned char)line[i] & 0xC0) == 0x80) continue;
        if (chars == cols) break;
        chars++;
    }
    line[i] = '\0';
    return i;
}

char *xa_format_duration(double seconds, char *buf, size_t n) {
    if (!(seconds >= 0.0) || seconds > 1e9) {
        snprintf(buf, n, "?");
    } else if (seconds < 60.0) {
        snprintf(buf, n, "%.1fs", seconds);
    } else if (seconds < 3600.0) {
        long s = (long)(seconds + 0.5);
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    } else {
        long m = (long)(seconds / 60.0 + 0.5);
        snprintf(buf, n, "%ldh%02ldm", m / 60, m % 60);
    }
    return buf;
}

void xa_progress_init(xa_progress *p, FILE *out, const char *label, const char *unit, int64_t start,
                      int64_t total) {
    memset(p, 0, sizeof *p);
    p->out = out ? out : stderr;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "step");
    p->start_step = start;
    p->last_step = start;
    p->total = total;
    p->is_tty = isatty(fileno(p->out));
    p->interval = 10.0;
    p->t_start = xa_time_now();
    p->t_last = -1.0;
    p->cur_step = start;
}

static void write_line(xa_progress *p, int64_t step, double amount, const char *extra, double now) {
    char line[512];
    int len = snprintf(line, sizeof line, "%s%s%lld", p->label, p->label[0] ? " " : "", (long long)step);
    if (p->total > 0) {
        len += snprintf(line + len, sizeof line - (size_t)len, "/%lld %5.1f%%", (long long)p->total,
                        100.0 * (double)step / (double)p->total);
    }
    double elapsed = now - p->t_start;
    int64_t done = step - p->start_step;
    if (done > 0 && elapsed > 0.0) {
        double rate = (double)done * amount / elapsed;
        len += snprintf(line + len, sizeof line - (size_t)len, " | %.*f %s/s", rate < 100.0 ? 2 : 0,
                        rate, p->unit);
        if (p->total > 0 && step < p->total) {
            char eta[32];
            double remaining = (double)(p->total - step) * elapsed / (double)done;
            len += snprintf(line + len, sizeof line - (size_t)len, " | ETA %s",
                            xa_format_duration(remaining, eta, sizeof eta));
        } else {
            char el[32];
            len += snprintf(line + len, sizeof line - (size_t)len, " | %s",
                            xa_format_duration(elapsed, el, sizeof el));
        }
    }
    if (extra && extra[0] && len >= 0 && (size_t)len < sizeof line) {
        len += snprintf(line + len, sizeof line - (size_t)len, " | %s", extra);
    }
    if (len < 0) return;
    size_t n = strlen(line);
    if (p->is_tty) {
        /* One column short of the width: a line that fills it would wrap on some terminals. */
        int cols = term_width(p->out) - 1;
        n = fit(line, cols > 8 ? cols : 8);
        /* Blank what a longer previous line left behind. */
        size_t pad = p->last_len > n ? p->last_len - n : 0;
        if ((int)(n + pad) > cols) pad = cols > (int)n ? (size_t)(cols - (int)n) : 0;
        fprintf(p->out, "\r%s%*s", line, (int)pad, "");
        p->last_len = n;
        memcpy(p->shown, line, n + 1);
        g_shown = p;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->t_last = now;
    p->last_step = step;
}

void xa_progress_update(xa_progress *p, int64_t step, double amount, const char *extra, ...) {
    char buf[sizeof p->cur_extra] = "";
    if (extra) {
        va_list ap;
        va_start(ap, extra);
        vsnprintf(buf, sizeof buf, extra, ap);
        va_end(ap);
    }
    p->cur_step = step;
    p->cur_amount = amount;
    memcpy(p->cur_extra, buf, sizeof buf);
    if (g_quiet) return;
    double now = xa_time_now();
    int first = p->t_last < 0.0;
    int last = p->total > 0 && step >= p->total;
    double gap = p->is_tty ? XA_TTY_REDRAW_S : p->interval;
    if (!first && !last && now - p->t_last < gap) return;
    write_line(p, step, amount, buf, now);
}

void xa_progress_erase(void) {
    xa_progress *p = g_shown;
    if (!p || !p->last_len) return;
    fprintf(p->out, "\r%*s\r", (int)p->last_len, "");
    fflush(p->out);
}

void xa_progress_redraw(void) {
    xa_progress *p = g_shown;
    if (!p || !p->last_len) return;
    fprintf(p->out, "\r%s", p->shown);
    fflush(p->out);
}

void xa_progress_finish(xa_progress *p) {
    if (g_quiet || (p->t_last < 0.0 && p->cur_step == p->start_step)) { /* nothing shown */
        if (g_shown == p) g_shown = NULL;
        return;
    }
    if (p->t_last < 0.0 || p->cur_step != p->last_step) {
        write_line(p, p->cur_step, p->cur_amount, p->cur_extra, xa_time_now());
    }
    if (g_shown == p) g_shown = NULL;
    if (p->is_tty) {
        fputc('\n', p->out);
        fflush(p->out);
    }
}
