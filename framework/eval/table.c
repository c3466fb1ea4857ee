/* eval/table: the zero-shot transfer table (row = target language, column = setup) and its four
 * renderings.
 *
 * Implements:
 *  - building: rows and columns found or added by name, a "mean" row over the measured rows;
 *  - Markdown: values x 100 with one decimal, "± s" for a spread, "–" for a cell not measured, the
 *    best value of each row in bold (ties at the shown precision are all bold; a row with a single
 *    measured value has nothing to compare and shows no bold), a "### title" line;
 *  - JSON (jansson): the raw values (fractions, not x 100) with null for NaN;
 *  - CSV (RFC 4180 quoting, LF line ends): raw values, empty fields for NaN, "<setup> std" columns
 *    when any spread exists;
 *  - SVG 1.1: a grouped bar chart, one group per language and one bar per setup, y axis 0..100 with
 *    labelled grid lines every 20, error bars of +- one spread, a legend, the title, a white
 *    background, and a <title> tooltip on each bar, in the colours of eval/svg.c.
 * Every text that reaches a file is escaped for its format (Markdown "|", CSV quotes, XML
 * entities, JSON through jansson). Files go through io/file's atomic writers.
 *
 * Does not: sort rows or columns (the caller's order is kept), handle metrics where lower is
 * better (the bold marks the maximum), or measure text for the SVG layout: label widths are
 * estimated at 7 px per character of a 12 px sans-serif font.
 */
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eval/svg.h"
#include "eval/text.h"
#include "io/file.h"

#define EN_DASH "\xE2\x80\x93"
#define PLUS_MINUS "\xC2\xB1"
#define TIMES "\xC3\x97"

/* ---- building -------------------------------------------------------------------------------- */

void xa_table_init(xa_table *t, const char *title, const char *metric) {
    XA_ASSERT(t != NULL);
    memset(t, 0, sizeof *t);
    copy_name(t->title, sizeof t->title, title);
    copy_name(t->metric, sizeof t->metric, metric);
    for (int r = 0; r < XA_TABLE_MAX_ROWS; r++) {
        for (int c = 0; c < XA_TABLE_MAX_COLS; c++) {
            t->value[r][c] = NAN;
            t->spread[r][c] = NAN;
        }
    }
}

/* Index of `name` among names[0..*n) (each `width` bytes), appended when missing; -1 when full.
 * The name is compared as it would be stored, so a long name finds its own truncated row. */
static int find_or_add(char *names, size_t width, int *n, int max, const char *name) {
    char key[64];
    XA_ASSERT(width <= sizeof key);
    copy_name(key, width, name);
    for (int i = 0; i < *n; i++) {
        if (strcmp(names + (size_t)i * width, key) == 0) return i;
    }
    if (*n >= max) return -1;
    memcpy(names + (size_t)*n * width, key, width);
    return (*n)++;
}

int xa_table_row(xa_table *t, const char *name) {
    XA_ASSERT(t != NULL && name != NULL);
    XA_ASSERT(t->n_rows >= 0 && t->n_rows <= XA_TABLE_MAX_ROWS);
    return find_or_add(&t->rows[0][0], sizeof t->rows[0], &t->n_rows, XA_TABLE_MAX_ROWS, name);
}

int xa_table_col(xa_table *t, const char *name) {
    XA_ASSERT(t != NULL && name != NULL);
    XA_ASSERT(t->n_cols >= 0 && t->n_cols <= XA_TABLE_MAX_COLS);
    return find_or_add(&t->cols[0][0], sizeof t->cols[0], &t->n_cols, XA_TABLE_MAX_COLS, name);
}

void xa_table_add_mean_row(xa_table *t, const char *name) {
    int m = xa_table_row(t, name);
    if (m < 0) return; /* the table is full */
    for (int c = 0; c < t->n_cols; c++) {
        double sum = 0.0;
        int k = 0;
        for (int r = 0; r < t->n_rows; r++) {
            if (r == m || isnan(t->value[r][c])) continue; /* a re-added mean row is recomputed */
            sum += t->value[r][c];
            k++;
        }
        t->value[m][c] = k > 0 ? sum / k : NAN;
        t->spread[m][c] = NAN; /* a std of the mean over seeds would need the per-seed values */
    }
}

void xa_seed_sums_add(xa_seed_sums *ss, int c, int k, double v) {
    XA_ASSERT(ss != NULL);
    if (c < 0 || c >= XA_TABLE_MAX_COLS || k < 0 || k >= XA_TABLE_MAX_SEEDS) return;
    ss->sum[c][k] += v;
    ss->cnt[c][k]++;
}

void xa_table_add_mean_row_seeds(xa_table *t, const char *name, int first_row, const xa_seed_sums *ss,
                                 int n_seeds) {
    XA_ASSERT(t != NULL && name != NULL && ss != NULL);
    int n_avg = t->n_rows - first_row; /* the rows averaged, before the mean row is added */
    for (int r = 0; r < t->n_rows; r++)
        if (!strcmp(t->rows[r], name)) n_avg = r - first_row; /* a re-added mean row: the rows above it */
    xa_table_add_group_mean_row(t, name, first_row, n_avg, ss, n_seeds);
}

void xa_table_add_group_mean_row(xa_table *t, const char *name, int first_row, int n_avg,
                                 const xa_seed_sums *ss, int n_seeds) {
    XA_ASSERT(t != NULL && name != NULL && ss != NULL);
    if (n_avg <= 0 || first_row < 0 || first_row + n_avg > t->n_rows) return;
    int m = xa_table_row(t, name);
    if (m < 0) return;
    if (n_seeds > XA_TABLE_MAX_SEEDS) n_seeds = XA_TABLE_MAX_SEEDS;
    for (int c = 0; c < t->n_cols; c++) {
        double sum = 0;
        int cnt = 0;
        for (int r = first_row; r < first_row + n_avg; r++)
            if (!isnan(t->value[r][c])) sum += t->value[r][c], cnt++;
        t->value[m][c] = cnt ? sum / cnt : NAN;
        double means[XA_TABLE_MAX_SEEDS], mu = 0, var = 0;
        int nm = 0;
        for (int k = 0; k < n_seeds; k++)
            if (ss->cnt[c][k] == n_avg) means[nm++] = ss->sum[c][k] / n_avg;
        for (int k = 0; k < nm; k++) mu += means[k] / nm;
        for (int k = 0; k < nm; k++) var += (means[k] - mu) * (means[k] - mu);
        t->spread[m][c] = nm >= 2 && nm == n_seeds ? sqrt(var / (nm - 1)) : NAN;
    }
}

/* A table whose counts index inside its arrays (the struct is public and may be filled by hand). */
static int table_valid(const xa_table *t) {
    return t != NULL && t->n_rows >= 0 && t->n_rows <= XA_TABLE_MAX_ROWS && t->n_cols >= 0 &&
           t->n_cols <= XA_TABLE_MAX_COLS;
}

static int has_spread(const xa_table *t) {
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            if (!isnan(t->spread[r][c])) return 1;
        }
    }
    return 0;
}

/* ---- Markdown -------------------------------------------------------------------------------- */

/* The value as shown, in tenths of a percent: cells that print the same compare equal. */
static long long shown_key(double v) {
    return llround(v * 1000.0);
}

void xa_table_print_markdown(const xa_table *t, FILE *out) {
    XA_ASSERT(table_valid(t) && out != NULL);
    const char *heading = t->title[0] ? t->title : t->metric;
    if (heading[0]) {
        fputs("### ", out);
        md_text(out, heading);
        fputs("\n\n", out);
    }
    fputs("| language |", out);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', out);
        md_text(out, t->cols[c]);
        fputs(" |", out);
    }
    fputs("\n|:---|", out);
    for (int c = 0; c < t->n_cols; c++) fputs("---:|", out);
    fputc('\n', out);

    for (int r = 0; r < t->n_rows; r++) {
        int measured = 0;
        long long best = 0;
        for (int c = 0; c < t->n_cols; c++) {
            double v = t->value[r][c];
            if (isnan(v)) continue;
            if (!measured || shown_key(v) > best) best = shown_key(v);
            measured++;
        }
        fputs("| ", out);
        md_text(out, t->rows[r]);
        fputs(" |", out);
        for (int c = 0; c < t->n_cols; c++) {
            double v = t->value[r][c], s = t->spread[r][c];
            char num[64];
            if (isnan(v)) {
                fputs(" " EN_DASH " |", out);
                continue;
            }
            fmt_pct(num, sizeof num, v);
            int bold = measured > 1 && shown_key(v) == best;
            fprintf(out, bold ? " **%s**" : " %s", num);
            if (!isnan(s)) {
                fmt_pct(num, sizeof num, s);
                fprintf(out, " " PLUS_MINUS " %s", num);
            }
            fputs(" |", out);
        }
        fputc('\n', out);
    }
}

/* ---- files ----------------------------------------------------------------------------------- */

static xa_status check_args(const xa_table *t, const char *path, const char *who) {
    if (!path || !path[0]) {
        return xa_error_set(XA_STATUS_USAGE, who, "a non-empty output path", NULL, "%s: no path",
                            who);
    }
    if (!table_valid(t)) {
        return xa_error_set(XA_STATUS_USAGE, path, "a table from xa_table_init", NULL,
                            "%s: bad table (n_rows %d, n_cols %d; at most %d x %d)", who,
                            t ? t->n_rows : -1, t ? t->n_cols : -1, XA_TABLE_MAX_ROWS,
                            XA_TABLE_MAX_COLS);
    }
    return XA_STATUS_OK;
}

typedef void (*render_fn)(const xa_table *t, FILE *out);

/* Render into PATH.tmp.PID and rename it over `path` (io/file's guarantee: on error the target is
 * untouched and no temporary file is left). */
static xa_status write_rendered(const xa_table *t, const char *path, render_fn render) {
    xa_file_writer *w = NULL;
    xa_status st = xa_file_writer_open(&w, path);
    if (st) return st;
    render(t, xa_file_writer_stream(w));
    return xa_file_writer_commit(w);
}

xa_status xa_table_write_markdown(const xa_table *t, const char *path) {
    xa_status st = check_args(t, path, "xa_table_write_markdown");
    if (st) return st;
    return write_rendered(t, path, xa_table_print_markdown);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static json_t *json_num_or_null(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

/* A (n_rows, n_cols) array of arrays from value or spread; NULL on allocation failure. */
static json_t *json_matrix(const xa_table *t, const double (*m)[XA_TABLE_MAX_COLS]) {
    json_t *rows = json_array();
    if (!rows) return NULL;
    for (int r = 0; r < t->n_rows; r++) {
        json_t *row = json_array();
        if (!row || json_array_append_new(rows, row)) goto fail;
        for (int c = 0; c < t->n_cols; c++) {
            if (json_array_append_new(row, json_num_or_null(m[r][c]))) goto fail;
        }
    }
    return rows;
fail:
    json_decref(rows);
    return NULL;
}

/* A string array of names; NULL on allocation failure or a name that is not valid UTF-8. */
static json_t *json_names(const char *names, size_t width, int n) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (int i = 0; i < n; i++) {
        if (json_array_append_new(a, json_string(names + (size_t)i * width))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

xa_status xa_table_write_json(const xa_table *t, const char *path) {
    xa_status st = check_args(t, path, "xa_table_write_json");
    if (st) return st;
    json_t *root = json_object();
    json_t *title = json_string(t->title), *metric = json_string(t->metric);
    json_t *rows = json_names(&t->rows[0][0], sizeof t->rows[0], t->n_rows);
    json_t *cols = json_names(&t->cols[0][0], sizeof t->cols[0], t->n_cols);
    json_t *value = json_matrix(t, t->value), *spread = json_matrix(t, t->spread);
    json_t *seeds = json_integer(t->n_seeds);
    /* json_object_set_new takes the reference even on failure, so every piece is handed over. */
    int bad = !root || !title || !metric || !rows || !cols || !value || !spread || !seeds;
    if (root) {
        bad |= json_object_set_new(root, "title", title) != 0;
        bad |= json_object_set_new(root, "metric", metric) != 0;
        bad |= json_object_set_new(root, "n_seeds", seeds) != 0;
        bad |= json_object_set_new(root, "rows", rows) != 0;
        bad |= json_object_set_new(root, "cols", cols) != 0;
        bad |= json_object_set_new(root, "value", value) != 0;
        bad |= json_object_set_new(root, "spread", spread) != 0;
    } else {
        json_t *pieces[] = {title, metric, rows, cols, value, spread, seeds};
        for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) json_decref(pieces[i]);
    }
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!text) {
        return xa_error_set(XA_STATUS_FORMAT, path, "names in valid UTF-8", NULL,
                            "xa_table_write_json: cannot build the JSON document for '%s' "
                            "(a title, metric, language or setup name that is not UTF-8, or "
                            "out of memory)",
                            t->title);
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps' terminator becomes the trailing newline */
    st = xa_file_write_atomic(path, text, len + 1);
    free(text);
    return st;
}

/* ---- CSV ------------------------------------------------------------------------------------- */

static void csv_number(FILE *out, double v) {
    if (isfinite(v)) fprintf(out, "%.10g", v);
}

static void render_csv(const xa_table *t, FILE *out) {
    int spreads = has_spread(t);
    fputs("language", out);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(',', out);
        csv_field(out, t->cols[c]);
    }
    for (int c = 0; spreads && c < t->n_cols; c++) {
        char head[80];
        snprintf(head, sizeof head, "%s std", t->cols[c]);
        fputc(',', out);
        csv_field(out, head);
    }
    fputc('\n', out);
    for (int r = 0; r < t->n_rows; r++) {
        csv_field(out, t->rows[r]);
        for (int c = 0; c < t->n_cols; c++) {
            fputc(',', out);
            csv_number(out, t->value[r][c]);
        }
        for (int c = 0; spreads && c < t->n_cols; c++) {
            fputc(',', out);
            csv_number(out, t->spread[r][c]);
        }
        fputc('\n', out);
    }
}

xa_status xa_table_write_csv(const xa_table *t, const char *path) {
    xa_status st = check_args(t, path, "xa_table_write_csv");
    if (st) return st;
    return write_rendered(t, path, render_csv);
}

/* ---- SVG ------------------------------------------------------------------------------------- */

/* The SVG helpers shared with eval/plot.c (eval/svg.c), under this file's names. */
#define k_palette xa_svg_palette
_Static_assert(XA_SVG_N_COLORS >= XA_TABLE_MAX_COLS, "a colour per setup");

#define SVG_FONT 12         /* px, labels and legend */
#define SVG_CHAR_W 7.0      /* estimated advance of one character at SVG_FONT */
#define SVG_PLOT_H 300.0    /* px, the 0..100 range */
#define SVG_MARGIN_L 64.0   /* y tick labels and the rotated axis title */
#define SVG_MARGIN_T 48.0   /* the title */

/* The y coordinate of a value in [0, 1], clamped to the axis range. */
static double svg_y(double v) {
    double p = 100.0 * v;
    if (p < 0.0) p = 0.0;
    if (p > 100.0) p = 100.0;
    return SVG_MARGIN_T + SVG_PLOT_H * (1.0 - p / 100.0);
}

static void render_svg(const xa_table *t, FILE *out) {
    int n_groups = t->n_rows > 0 ? t->n_rows : 1;
    int n_bars = t->n_cols > 0 ? t->n_cols : 1;
    double bar_w = floor(120.0 / n_bars);
    if (bar_w < 6.0) bar_w = 6.0;
    if (bar_w > 28.0) bar_w = 28.0;
    double gap = bar_w > 16.0 ? bar_w : 16.0;
    double group_w = n_bars * bar_w + gap;
    double plot_w = n_groups * group_w;

    int row_chars = 0, col_chars = 0;
    for (int r = 0; r < t->n_rows; r++) {
        int k = utf8_len(t->rows[r]);
        if (k > row_chars) row_chars = k;
    }
    for (int c = 0; c < t->n_cols; c++) {
        int k = utf8_len(t->cols[c]);
        if (k > col_chars) col_chars = k;
    }
    /* Language labels turn by 45 degrees when they would not fit under their group. */
    double row_px = row_chars * SVG_CHAR_W;
    int rotate = row_px > group_w - 4.0;
    double xlab_h = rotate ? 20.0 + 0.71 * row_px : 28.0;
    double legend_x = SVG_MARGIN_L + plot_w + 24.0;
    double legend_h = 18.0 * t->n_cols;
    double body_h = SVG_PLOT_H > legend_h ? SVG_PLOT_H : legend_h;
    double width = legend_x + 24.0 + col_chars * SVG_CHAR_W + 16.0;
    double title_w = utf8_len(t->title) * 9.0 + 32.0; /* 16 px bold */
    if (title_w > width) width = title_w;
    double height = SVG_MARGIN_T + body_h + xlab_h + 12.0;
    double base = SVG_MARGIN_T + SVG_PLOT_H; /* y of 0 */

    xa_svg_begin(out, width, height, t->title);

    /* y axis: grid lines every 20 with their labels, and the metric as the axis title */
    fputs("<g class=\"grid\" stroke=\"#d0d0d0\" stroke-width=\"1\">\n", out);
    for (int k = 0; k <= 100; k += 20) {
        double y = svg_y(k / 100.0);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", SVG_MARGIN_L, y,
                SVG_MARGIN_L + plot_w, y);
    }
    fputs("</g>\n<g class=\"y-ticks\" text-anchor=\"end\" fill=\"#333333\">\n", out);
    for (int k = 0; k <= 100; k += 20) {
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">%d</text>\n", SVG_MARGIN_L - 6.0,
                svg_y(k / 100.0), k);
    }
    fputs("</g>\n", out);
    fprintf(out,
            "<text class=\"y-title\" transform=\"translate(18 %.1f) rotate(-90)\" "
            "text-anchor=\"middle\">",
            SVG_MARGIN_T + SVG_PLOT_H / 2.0);
    xml_text(out, t->metric[0] ? t->metric : "value");
    fputs(" (" TIMES " 100)</text>\n", out);

    /* bars, hot loop of the drawing: one rect per measured cell, error bars over them */
    /* a thin dark outline keeps the yellow bar visible on white and shows a 0 as a line */
    fputs("<g class=\"bars\" stroke=\"#333333\" stroke-width=\"0.5\">\n", out);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            double v = t->value[r][c], s = t->spread[r][c];
            if (isnan(v)) continue;
            double x = SVG_MARGIN_L + r * group_w + gap / 2.0 + c * bar_w;
            double y = svg_y(v);
            char num[64];
            fprintf(out,
                    "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"%s\"><title>",
                    x, y, bar_w - 1.0, base - y, k_palette[c]);
            xml_text(out, t->rows[r]);
            fputs(" / ", out);
            xml_text(out, t->cols[c]);
            fmt_pct(num, sizeof num, v);
            fprintf(out, ": %s", num);
            if (!isnan(s)) {
                fmt_pct(num, sizeof num, s);
                fprintf(out, " " PLUS_MINUS " %s", num);
            }
            fputs("</title></rect>\n", out);
        }
    }
    fputs("</g>\n<g class=\"error-bars\" stroke=\"#000000\" stroke-width=\"1\" fill=\"none\">\n",
          out);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            double v = t->value[r][c], s = t->spread[r][c];
            if (isnan(v) || isnan(s)) continue;
            double cx = SVG_MARGIN_L + r * group_w + gap / 2.0 + c * bar_w + (bar_w - 1.0) / 2.0;
            double lo = svg_y(v - fabs(s)), hi = svg_y(v + fabs(s)), cap = bar_w / 4.0;
            fprintf(out, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\"/>\n", cx, lo,
                    hi, cx - cap, hi, cx + cap, cx - cap, lo, cx + cap);
        }
    }
    fputs("</g>\n", out);

    /* axes over the bars */
    fprintf(out,
            "<path class=\"axes\" d=\"M%.1f %.1fV%.1fH%.1f\" stroke=\"#000000\" "
            "stroke-width=\"1\" fill=\"none\"/>\n",
            SVG_MARGIN_L, SVG_MARGIN_T, base, SVG_MARGIN_L + plot_w);

    /* x labels: the languages */
    fputs("<g class=\"x-labels\" fill=\"#000000\">\n", out);
    for (int r = 0; r < t->n_rows; r++) {
        double cx = SVG_MARGIN_L + (r + 0.5) * group_w, y = base + 18.0;
        if (rotate) {
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                    "transform=\"rotate(-45 %.1f %.1f)\">",
                    cx, y, cx, y);
        } else {
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, y);
        }
        xml_text(out, t->rows[r]);
        fputs("</text>\n", out);
    }
    fputs("</g>\n", out);
    if (t->n_rows == 0 || t->n_cols == 0) {
        fprintf(out,
                "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                "fill=\"#666666\">no data</text>\n",
                SVG_MARGIN_L + plot_w / 2.0, SVG_MARGIN_T + SVG_PLOT_H / 2.0);
    }

    /* legend: one swatch per setup */
    fputs("<g class=\"legend\" stroke-width=\"0.5\">\n", out);
    for (int c = 0; c < t->n_cols; c++) {
        double y = SVG_MARGIN_T + 18.0 * c;
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\" "
                "stroke=\"#333333\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">",
                legend_x, y, k_palette[c], legend_x + 18.0, y + 10.0);
        xml_text(out, t->cols[c]);
        fputs("</text>\n", out);
    }
    fputs("</g>\n</svg>\n", out);
}

xa_status xa_table_write_svg(const xa_table *t, const char *path) {
    xa_status st = check_args(t, path, "xa_table_write_svg");
    if (st) return st;
    return write_rendered(t, path, render_svg);
}
