/* eval/plot: loss curves from a run's metrics.jsonl as a standalone SVG 1.1 chart (plot.h).
 *
 * Implements: reading both row formats (typed rows, and the untyped rows of runs made before
 * them), removing rows of a step written twice (the last one stays), the smoothing of the
 * training loss, "nice" axis ticks (1, 2, 5 x 10^k), two panels (losses and scores over the steps;
 * the learning rate below) and the legend. Rows go through jansson, one line at a time.
 * Does not: draw a log-scale axis, measure text (labels are estimated at 7 px a character), or
 * draw more than 8 evaluation series (further metrics are left out and counted in the legend). */
#include "eval/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eval/svg.h"
#include "io/file.h"

#define MAX_EVAL 8
#define MAX_POINTS 4000 /* points drawn per line: longer series are thinned evenly */

typedef struct pt {
    double x, y;
    int64_t ord;  /* the line it came from: the later of two rows of one step wins */
    int best;     /* an evaluation row that marked a new best */
} pt;

typedef struct series {
    char name[96];
    pt *p;
    int64_t n, cap;
    int loss;     /* drawn on the loss axis (else the score axis) */
} series;

typedef struct plot_data {
    series train, align, lr, eval[MAX_EVAL];
    int n_eval, n_eval_dropped;
    int64_t skipped, first_skipped;
} plot_data;

static xa_status add(series *s, double x, double y, int64_t ord, int best) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        pt *p = realloc(s->p, (size_t)cap * sizeof *p);
        if (!p) return xa_error_set(XA_STATUS_NOMEM, "xa_plot_metrics", NULL, NULL, "out of memory");
        s->p = p;
        s->cap = cap;
    }
    s->p[s->n++] = (pt){x, y, ord, best};
    return XA_STATUS_OK;
}

static int num(const json_t *o, const char *key, double *out) {
    const json_t *v = json_object_get(o, key);
    if (!v || !json_is_number(v)) return 0;
    *out = json_number_value(v);
    return isfinite(*out);
}

static const char *str(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return v && json_is_string(v) ? json_string_value(v) : NULL;
}

/* The series of evaluation metric `name`, added when missing; NULL when MAX_EVAL are in use. */
static series *eval_series(plot_data *d, const char *name) {
    for (int i = 0; i < d->n_eval; i++)
        if (!strcmp(d->eval[i].name, name)) return &d->eval[i];
    if (d->n_eval == MAX_EVAL) return NULL;
    series *s = &d->eval[d->n_eval++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->loss = strstr(name, "loss") != NULL;
    return s;
}

/* One row of metrics.jsonl into the series. */
static xa_status take_row(plot_data *d, const json_t *row, int64_t ord) {
    double step, v;
    if (!num(row, "step", &step)) return XA_STATUS_OK;
    const char *type = str(row, "type");
    xa_status st = XA_STATUS_OK;
    if (type ? !strcmp(type, "eval") : json_object_get(row, "dev") != NULL) {
        char name[96];
        const char *metric = type ? str(row, "metric") : NULL;
        const char *split = type ? str(row, "split") : "dev";
        if (type && (!metric || !num(row, "value", &v))) return XA_STATUS_OK;
        if (!type && !num(row, "dev", &v)) return XA_STATUS_OK;
        snprintf(name, sizeof name, "%s%s%s", split ? split : "", split ? " " : "", metric ? metric : "metric");
        if (!type) snprintf(name, sizeof name, "dev"); /* an older run: accuracy or span F1, unnamed */
        series *s = eval_series(d, name);
        if (!s) {
            d->n_eval_dropped++;
            return XA_STATUS_OK;
        }
        const json_t *nb = json_object_get(row, "new_best");
        return add(s, step, v, ord, nb && json_is_true(nb));
    }
    if (type && strcmp(type, "train")) return XA_STATUS_OK; /* a row type of a later xadapt */
    if (num(row, "loss", &v)) st = add(&d->train, step, v, ord, 0);
    if (!st && num(row, "align_loss", &v)) st = add(&d->align, step, v, ord, 0);
    if (!st && num(row, "lr", &v)) st = add(&d->lr, step, v, ord, 0);
    return st;
}

static int pt_cmp(const void *a, const void *b) {
    const pt *x = a, *y = b;
    if (x->x != y->x) return x->x < y->x ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Sort by step; of several rows of one step keep the last written. */
static void dedupe(series *s) {
    if (s->n < 2) return;
    qsort(s->p, (size_t)s->n, sizeof *s->p, pt_cmp);
    int64_t k = 0;
    for (int64_t i = 0; i < s->n; i++) {
        if (k && s->p[k - 1].x == s->p[i].x) k--;
        s->p[k++] = s->p[i];
    }
    s->n = k;
}

static xa_status read_metrics(plot_data *d, const char *path) {
    char *text = NULL;
    size_t len = 0;
    xa_status st = xa_file_read(&text, &len, path, (size_t)1 << 30);
    if (st) return st;
    int64_t line_no = 0;
    for (char *line = text; !st && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        line_no++;
        size_t k = strspn(line, " \t\r");
        if (line[k]) {
            json_error_t err;
            json_t *row = json_loads(line, JSON_DECODE_ANY, &err);
            if (row && json_is_object(row)) {
                st = take_row(d, row, line_no);
            } else if (!d->skipped++) {
                d->first_skipped = line_no;
            }
            json_decref(row);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    if (st) return st;
    dedupe(&d->train);
    dedupe(&d->align);
    dedupe(&d->lr);
    for (int i = 0; i < d->n_eval; i++) dedupe(&d->eval[i]);
    return XA_STATUS_OK;
}

/* The debiased exponential moving average of the training loss (TensorBoard's smoothing). */
static void smooth(const series *in, series *out) {
    const double n = (double)in->n, w = n <= 30 ? 0.6 : fmin(0.95, 1.0 - 12.0 / n);
    double m = 0, wt = 0;
    out->n = 0;
    for (int64_t i = 0; i < in->n; i++) {
        m = w * m + (1 - w) * in->p[i].y;
        wt = w * wt + (1 - w);
        out->p[out->n++] = (pt){in->p[i].x, m / wt, 0, 0};
    }
}

/* ---- axes ---- */

typedef struct axis {
    double lo, hi, step; /* tick range and spacing */
} axis;

/* Ticks at multiples of 1, 2 or 5 x 10^k covering [lo, hi] in about n intervals. */
static axis nice_axis(double lo, double hi, int n, int from_zero) {
    if (from_zero && lo > 0) lo = 0;
    if (!(hi > lo)) {
        double pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
        if (from_zero && lo < 0 && hi > 0) lo = 0;
    }
    double raw = (hi - lo) / n, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    axis a = {floor(lo / step + 1e-9) * step, ceil(hi / step - 1e-9) * step, step};
    if (a.hi <= a.lo) a.hi = a.lo + step;
    return a;
}

static void range_of(const series *s, double *lo, double *hi) {
    for (int64_t i = 0; i < s->n; i++) {
        if (s->p[i].y < *lo) *lo = s->p[i].y;
        if (s->p[i].y > *hi) *hi = s->p[i].y;
    }
}

/* A tick label: as few digits as the spacing needs. */
static void tick_label(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    if (step < 1e-3 || fabs(v) >= 1e6) { /* compact: 5e-4, 2.5e-5 */
        char m[16];
        int e = v == 0 ? 0 : (int)floor(log10(fabs(v)) + 1e-9);
        snprintf(m, sizeof m, "%.2g", v / pow(10.0, e));
        if (v == 0) snprintf(buf, n, "0"); else snprintf(buf, n, "%se%d", m, e);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, n, "%.*f", dec, v);
}

/* ---- drawing ---- */

#define W 820.0
#define ML 72.0      /* left margin: the loss axis */
#define MR 72.0      /* right margin: the score axis */
#define PW (W - ML - MR)

typedef struct frame {
    double top, h;   /* the panel's y and height */
    axis x;          /* the step axis */
} frame;

static double fx(const frame *f, double x) { return ML + PW * (x - f->x.lo) / (f->x.hi - f->x.lo); }
static double fy(const frame *f, const axis *a, double y) { return f->top + f->h * (1 - (y - a->lo) / (a->hi - a->lo)); }

/* A series as a polyline (thinned to MAX_POINTS). */
static void polyline(FILE *out, const frame *f, const axis *a, const series *s, const char *color, double width,
                     const char *dash, double opacity) {
    if (s->n == 0) return;
    int64_t stride = s->n > MAX_POINTS ? (s->n + MAX_POINTS - 1) / MAX_POINTS : 1;
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\"%s%s%s points=\"",
            color, width, opacity, dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
    for (int64_t i = 0; i < s->n; i += stride) fprintf(out, "%s%.1f,%.1f", i ? " " : "", fx(f, s->p[i].x), fy(f, a, s->p[i].y));
    if ((s->n - 1) % stride) fprintf(out, " %.1f,%.1f", fx(f, s->p[s->n - 1].x), fy(f, a, s->p[s->n - 1].y));
    fputs("\"/>\n", out);
}

/* Horizontal grid lines and the tick labels of axis a, at the left or right. */
static void y_ticks(FILE *out, const frame *f, const axis *a, int right, int grid) {
    char lab[32];
    fprintf(out, "<g class=\"%s-ticks\" fill=\"#333333\" text-anchor=\"%s\">\n", right ? "right" : "left",
            right ? "start" : "end");
    for (double v = a->lo; v <= a->hi + a->step * 1e-6; v += a->step) {
        double y = fy(f, a, v);
        if (grid) fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", ML, y, ML + PW, y);
        tick_label(lab, sizeof lab, v, a->step);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">%s</text>\n", right ? ML + PW + 6 : ML - 6, y, lab);
    }
    fputs("</g>\n", out);
}

static void x_grid(FILE *out, const frame *f, int labels) {
    char lab[32];
    fputs("<g class=\"x-ticks\" fill=\"#333333\" text-anchor=\"middle\">\n", out);
    for (double v = f->x.lo; v <= f->x.hi + f->x.step * 1e-6; v += f->x.step) {
        double x = fx(f, v);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eeeeee\"/>\n", x, f->top, x, f->top + f->h);
        if (!labels) continue;
        tick_label(lab, sizeof lab, v, f->x.step);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x, f->top + f->h + 16, lab);
    }
    fputs("</g>\n", out);
}

static void frame_box(FILE *out, const frame *f) {
    fprintf(out, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"#000000\"/>\n", ML, f->top, PW, f->h);
}

static void axis_title(FILE *out, double x, double y, const char *text) {
    fprintf(out, "<text class=\"axis-title\" transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">", x, y);
    xa_svg_text(out, text);
    fputs("</text>\n", out);
}

/* Markers of an evaluation series, each with a tooltip, and a ring around its best value. */
static void markers(FILE *out, const frame *f, const axis *a, const series *s, const char *color) {
    int64_t best = 0;
    for (int64_t i = 1; i < s->n; i++)
        if (s->loss ? s->p[i].y < s->p[best].y : s->p[i].y > s->p[best].y) best = i;
    fprintf(out, "<g class=\"markers\" fill=\"%s\">\n", color);
    int64_t stride = s->n > 400 ? (s->n + 399) / 400 : 1;
    for (int64_t i = 0; i < s->n; i++) {
        if (i % stride && i != best) continue;
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"><title>", fx(f, s->p[i].x), fy(f, a, s->p[i].y));
        xa_svg_text(out, s->name);
        fprintf(out, " %.4f at step %.0f</title></circle>\n", s->p[i].y, s->p[i].x);
    }
    if (s->n) {
        fprintf(out, "<circle class=\"best\" cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\">"
                     "<title>best ", fx(f, s->p[best].x), fy(f, a, s->p[best].y), color);
        xa_svg_text(out, s->name);
        fprintf(out, " %.4f at step %.0f</title></circle>\n", s->p[best].y, s->p[best].x);
    }
    fputs("</g>\n", out);
}

typedef struct legend_item {
    const char *label, *color, *dash;
    double width;
} legend_item;

/* The legend in rows under the title; returns its height. */
static double legend(FILE *out, const legend_item *it, int n, double y0) {
    double x = ML, y = y0;
    fputs("<g class=\"legend\">\n", out);
    for (int i = 0; i < n; i++) {
        double w = 44 + 7.0 * xa_svg_utf8_len(it[i].label);
        if (x + w > W - MR && x > ML) {
            x = ML;
            y += 18;
        }
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s%s%s/>",
                x, y - 4, x + 22, y - 4, it[i].color, it[i].width, it[i].dash ? " stroke-dasharray=\"" : "",
                it[i].dash ? it[i].dash : "", it[i].dash ? "\"" : "");
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", x + 27, y);
        xa_svg_text(out, it[i].label);
        fputs("</text>\n", out);
        x += w;
    }
    fputs("</g>\n", out);
    return y - y0 + 18;
}

static const char *const k_eval_colors[MAX_EVAL] = {"#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                                    "#332288", "#882255", "#117733", "#999933"};

static void render(FILE *out, const plot_data *d, const series *sm, const char *title) {
    /* the step axis of both panels */
    double x0 = 0, x1 = 0, llo = INFINITY, lhi = -INFINITY, slo = INFINITY, shi = -INFINITY, rlo = 0, rhi = 0;
    const series *all[3 + MAX_EVAL] = {&d->train, &d->align, &d->lr};
    int n_all = 3;
    for (int i = 0; i < d->n_eval; i++) all[n_all++] = &d->eval[i];
    for (int i = 0; i < n_all; i++)
        for (int64_t k = 0; k < all[i]->n; k++) x1 = fmax(x1, all[i]->p[k].x);
    range_of(&d->train, &llo, &lhi);
    range_of(&d->align, &llo, &lhi);
    int n_scores = 0;
    for (int i = 0; i < d->n_eval; i++) {
        if (d->eval[i].loss) {
            range_of(&d->eval[i], &llo, &lhi);
        } else {
            range_of(&d->eval[i], &slo, &shi);
            n_scores++;
        }
    }
    range_of(&d->lr, &rlo, &rhi);
    const int has_loss = llo <= lhi, has_lr = d->lr.n > 0;
    frame top = {0, 280, nice_axis(x0, x1 > 0 ? x1 : 1, 8, 1)};
    axis la = has_loss ? nice_axis(llo, lhi, 6, 0) : (axis){0, 1, 0.2};
    axis sa = n_scores ? nice_axis(slo, shi, 6, 0) : (axis){0, 1, 0.2};

    legend_item it[4 + MAX_EVAL];
    int ni = 0;
    char labels[MAX_EVAL][128];
    if (d->train.n) {
        it[ni++] = (legend_item){"training loss (window mean)", "#56B4E9", NULL, 1.0};
        it[ni++] = (legend_item){"smoothed", "#0072B2", NULL, 2.5};
    }
    if (d->align.n) it[ni++] = (legend_item){"align_loss", "#56B4E9", "5 3", 1.5};
    for (int i = 0; i < d->n_eval; i++) {
        snprintf(labels[i], sizeof labels[i], "%s%s", d->eval[i].name, d->eval[i].loss || !has_loss ? "" : " (right axis)");
        it[ni++] = (legend_item){labels[i], k_eval_colors[i], NULL, 2.0};
    }
    if (has_lr) it[ni++] = (legend_item){"learning rate (lower panel)", "#999999", NULL, 1.5};

    /* the height: title, legend rows (estimated), the panels */
    double lw = 0, rows = 1;
    for (int i = 0; i < ni; i++) {
        double w = 44 + 7.0 * xa_svg_utf8_len(it[i].label);
        if (lw + w > PW && lw > 0) rows++, lw = 0;
        lw += w;
    }
    top.top = 44 + 18 * rows + 8;
    frame low = {top.top + top.h + 28, 100, top.x};
    axis ra = nice_axis(rlo, rhi, 3, 1);
    const double height = (has_lr ? low.top + low.h : top.top + top.h) + 44;

    xa_svg_begin(out, W, height, title);
    legend(out, it, ni, 50);

    x_grid(out, &top, !has_lr);
    if (has_loss) y_ticks(out, &top, &la, 0, 1);
    if (n_scores) y_ticks(out, &top, &sa, 1, !has_loss);
    frame_box(out, &top);
    if (has_loss) axis_title(out, 16, top.top + top.h / 2, "loss");
    if (n_scores) {
        char t[256];
        size_t k = 0;
        t[0] = '\0';
        for (int i = 0; i < d->n_eval && k < sizeof t; i++)
            if (!d->eval[i].loss) k += (size_t)snprintf(t + k, sizeof t - k, "%s%s", k ? ", " : "", d->eval[i].name);
        axis_title(out, W - 14, top.top + top.h / 2, t);
    }
    if (d->train.n) {
        polyline(out, &top, &la, &d->train, "#56B4E9", 1.0, NULL, 0.8);
        polyline(out, &top, &la, sm, "#0072B2", 2.5, NULL, 1.0);
    }
    if (d->align.n) polyline(out, &top, &la, &d->align, "#56B4E9", 1.5, "5 3", 1.0);
    for (int i = 0; i < d->n_eval; i++) {
        const axis *a = d->eval[i].loss ? &la : &sa;
        polyline(out, &top, a, &d->eval[i], k_eval_colors[i], 2.0, NULL, 1.0);
        markers(out, &top, a, &d->eval[i], k_eval_colors[i]);
    }
    if (d->n_eval_dropped)
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#666666\">%d evaluation rows of further "
                     "metrics not drawn</text>\n", ML + PW - 4, top.top + 14, d->n_eval_dropped);
    if (has_lr) {
        x_grid(out, &low, 1);
        y_ticks(out, &low, &ra, 0, 1);
        frame_box(out, &low);
        axis_title(out, 16, low.top + low.h / 2, "learning rate");
        polyline(out, &low, &ra, &d->lr, "#999999", 1.5, NULL, 1.0);
    }
    const frame *b = has_lr ? &low : &top;
    fprintf(out, "<text class=\"x-title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">optimizer step</text>\n",
            ML + PW / 2, b->top + b->h + 34);
    fputs("</svg>\n", out);
}

static void data_free(plot_data *d) {
    free(d->train.p);
    free(d->align.p);
    free(d->lr.p);
    for (int i = 0; i < MAX_EVAL; i++) free(d->eval[i].p);
}

xa_status xa_plot_metrics(const char *metrics_path, const char *svg_path, const char *title, xa_plot_info *info) {
    if (!metrics_path || !svg_path)
        return xa_error_set(XA_STATUS_USAGE, "xa_plot_metrics", "a metrics path and an SVG path", NULL, "NULL argument");
    plot_data *d = calloc(1, sizeof *d);
    series sm = {{0}, NULL, 0, 0, 1};
    if (!d) return xa_error_set(XA_STATUS_NOMEM, "xa_plot_metrics", NULL, NULL, "out of memory");
    xa_status st = read_metrics(d, metrics_path);
    int64_t n_eval = 0;
    for (int i = 0; i < d->n_eval; i++) n_eval += d->eval[i].n;
    if (!st && d->train.n == 0 && n_eval == 0)
        st = xa_error_set(XA_STATUS_FORMAT, metrics_path, "rows with \"step\" and \"loss\" (or an evaluation)",
                          d->skipped ? "is it a metrics.jsonl of xadapt?" : "the run has not logged a window yet",
                          "no training or evaluation rows to plot (%lld lines skipped)", (long long)d->skipped);
    if (!st && d->train.n && !(sm.p = malloc((size_t)d->train.n * sizeof *sm.p)))
        st = xa_error_set(XA_STATUS_NOMEM, "xa_plot_metrics", NULL, NULL, "out of memory");
    if (!st) {
        if (d->train.n) smooth(&d->train, &sm);
        if (d->skipped)
            XA_LOG_WARN("%s: %lld line(s) that are not JSON objects skipped (the first: line %lld)", metrics_path,
                        (long long)d->skipped, (long long)d->first_skipped);
        xa_file_writer *w = NULL;
        st = xa_file_writer_open(&w, svg_path);
        if (!st) {
            render(xa_file_writer_stream(w), d, &sm, title ? title : metrics_path);
            st = xa_file_writer_commit(w);
        }
    }
    if (!st && info) *info = (xa_plot_info){d->train.n, n_eval, d->n_eval, d->skipped};
    free(sm.p);
    data_free(d);
    free(d);
    return st;
}
