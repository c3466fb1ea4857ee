/* core/progress: the progress line of long loops.
 *
 *   pretrain  120/1000  12.0% | 3.41 step/s | ETA 4m18s | loss 3.2104
 *
 * On a terminal the line is redrawn in place with '\r' at most 10 times a second; elsewhere (logs,
 * CI, pipes) one plain line is written every `interval` seconds and for the first and last step, so
 * a log file stays readable. The rate counts from the first reported step (resumed runs are fair). */
#include "core/core.h"

#include <string.h>
#include <unistd.h>

#define XA_TTY_REDRAW_S 0.1

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
        /* Blank what a longer previous line left behind. */
        size_t pad = p->last_len > n ? p->last_len - n : 0;
        fprintf(p->out, "\r%s%*s", line, (int)pad, "");
        p->last_len = n;
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
    double now = xa_time_now();
    int first = p->t_last < 0.0;
    int last = p->total > 0 && step >= p->total;
    double gap = p->is_tty ? XA_TTY_REDRAW_S : p->interval;
    if (!first && !last && now - p->t_last < gap) return;
    write_line(p, step, amount, buf, now);
}

void xa_progress_finish(xa_progress *p) {
    if (p->t_last < 0.0 && p->cur_step == p->start_step) return; /* nothing happened */
    if (p->t_last < 0.0 || p->cur_step != p->last_step) {
        write_line(p, p->cur_step, p->cur_amount, p->cur_extra, xa_time_now());
    }
    if (p->is_tty) {
        fputc('\n', p->out);
        fflush(p->out);
    }
}
