/* eval/report: the per-class reports of an eval run as files (eval.h, "per-class reports").
 *
 * Implements: the set of per-cell reports (one per language x setup x seed, keyed by the cell's
 * identity) read from and written to per_class.jsonl; the seeds of each (language, setup) pooled
 * by summing counts (the confusion matrix of 3 seeds is the sum of 3 matrices, so its rates are
 * those of all 3 x n predictions); and the renderings of the pooled reports: per_class.json,
 * per_class.csv, confusion.csv (long form), per_class.md (per language: F1 per class for every
 * setup side by side, the classes a setup never predicts and its most predicted class, then
 * precision / recall / F1 / support and the confusion matrix of the detailed setups) and one SVG
 * heat map per setup with a panel per language (rows gold, columns predicted, the shade is the
 * share of the gold row, i.e. the recall of the diagonal cell; counts written in the cells).
 * Averages follow scikit-learn's classification_report with labels = the classes present in gold
 * (the results tables' macro-F1 rule), zero_division = 0.
 *
 * Does not: pool reports whose class lists differ (a cell over other classes than the first of
 * its group is left out of the pooled numbers and named in per_class.md), draw tagging heat maps
 * (span errors have no square confusion matrix), or measure text for the SVG (7 px a character).
 */
#include "eval/eval.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eval/text.h"
#include "io/file.h"

#define EM_DASH "\xE2\x80\x94"
#define TIMES "\xC3\x97"

/* ---- the set ---------------------------------------------------------------------------------- */

xa_status xa_report_set_add(xa_report_set *s, const char *cell, const char *language, const char *setup,
                            const char *label, uint64_t seed, const xa_class_report *rep) {
    XA_ASSERT(s != NULL && rep != NULL);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 32;
        xa_report_cell *g = realloc(s->c, (size_t)cap * sizeof *g);
        if (!g) return xa_error_set(XA_STATUS_NOMEM, "xa_report_set_add", NULL, NULL, "out of memory");
        s->c = g;
        s->cap = cap;
    }
    xa_report_cell *c = &s->c[s->n];
    memset(c, 0, sizeof *c);
    copy_name(c->cell, sizeof c->cell, cell);
    copy_name(c->language, sizeof c->language, language);
    copy_name(c->setup, sizeof c->setup, setup);
    copy_name(c->label, sizeof c->label, label ? label : setup);
    c->seed = seed;
    xa_status st = xa_class_report_copy(&c->rep, rep);
    if (!st) s->n++;
    return st;
}

const xa_report_cell *xa_report_set_find(const xa_report_set *s, const char *cell) {
    for (int i = 0; s && cell && i < s->n; i++)
        if (!strcmp(s->c[i].cell, cell)) return &s->c[i];
    return NULL;
}

void xa_report_set_free(xa_report_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) xa_class_report_free(&s->c[i].rep);
    free(s->c);
    memset(s, 0, sizeof *s);
}

/* ---- JSON ------------------------------------------------------------------------------------- */

/* An array of the n values item(ctx, i) makes; NULL when the array or one of them cannot be made
 * (json_string gives NULL for text that is not UTF-8). */
typedef json_t *(*json_item_fn)(const void *ctx, int i);
static json_t *json_list(const void *ctx, int n, json_item_fn item) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, item(ctx, i))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *count_item(const void *v, int i) { return json_integer((json_int_t)((const int64_t *)v)[i]); }
static json_t *name_item(const void *r, int i) { return json_string(((const xa_class_report *)r)->names[i]); }
static json_t *f1_item(const void *r, int i) { return json_real(xa_class_report_score(r, i).f1); }

static json_t *json_counts(const int64_t *v, int n) { return json_list(v, n, count_item); }

/* Row g of the confusion matrix. */
static json_t *row_item(const void *rv, int g) {
    const xa_class_report *r = rv;
    return json_counts(r->confusion + (size_t)g * r->n, r->n);
}

/* The confusion matrix as an array of rows. */
static json_t *json_confusion(const xa_class_report *r) { return json_list(r, r->n, row_item); }

/* A seed as a JSON integer (a string above INT64_MAX, which json_int_t cannot hold). */
static json_t *json_seed(uint64_t seed) {
    char s[32];
    if (seed <= (uint64_t)INT64_MAX) return json_integer((json_int_t)seed);
    snprintf(s, sizeof s, "%" PRIu64, seed);
    return json_string(s);
}

/* set(o, k, v) that reports failure (v NULL or no memory) as nonzero. */
static int jset(json_t *o, const char *k, json_t *v) { return !v || json_object_set_new(o, k, v); }

/* The last step of building object o: arr goes under key (set_new takes it, also when it fails;
 * key NULL: nothing to add) unless an earlier step failed (bad); on any failure o and arr are
 * freed and NULL returned. */
static json_t *jfinish(json_t *o, int bad, const char *key, json_t *arr) {
    if (bad) json_decref(arr);
    else if (key) bad = jset(o, key, arr);
    if (!bad) return o;
    json_decref(o);
    return NULL;
}

/* One per_class.jsonl object: coordinates, names, counts and per-class F1. */
static json_t *cell_json(const xa_report_cell *c) {
    const xa_class_report *r = &c->rep;
    json_t *o = json_object(), *f1 = json_list(r, r->n, f1_item);
    int bad = !o || !f1 || jset(o, "cell", json_string(c->cell)) || jset(o, "language", json_string(c->language)) ||
          jset(o, "setup", json_string(c->setup)) || jset(o, "label", json_string(c->label)) ||
          jset(o, "seed", json_seed(c->seed)) ||
          jset(o, "kind", json_string(r->tagging ? "tagging" : "classification")) ||
          jset(o, "names", json_list(r, r->n, name_item));
    if (!bad && !r->tagging) bad = jset(o, "confusion", json_confusion(r));
    bad = bad || jset(o, "support", json_counts(r->n_gold, r->n)) || jset(o, "predicted", json_counts(r->n_pred, r->n)) ||
          jset(o, "correct", json_counts(r->n_correct, r->n));
    return jfinish(o, bad, "f1", f1);
}

/* n counts from a JSON array of integers >= 0; 0 when it is not one. */
static int read_counts(const json_t *a, int64_t *out, int n) {
    if (!json_is_array(a) || (int)json_array_size(a) != n) return 0;
    for (int i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
        out[i] = (int64_t)json_integer_value(v);
    }
    return 1;
}

/* Parse one per_class.jsonl object into c; 1 on success, 0 for a line to skip, -1 out of memory. */
static int cell_from_json(const json_t *o, xa_report_cell *c) {
    const json_t *names = json_object_get(o, "names"), *kind = json_object_get(o, "kind");
    const json_t *seed = json_object_get(o, "seed");
    const char *k = json_string_value(kind);
    if (!json_is_array(names) || !k || (strcmp(k, "tagging") && strcmp(k, "classification"))) return 0;
    const char *fields[4] = {"cell", "language", "setup", "label"};
    char *dst[4] = {c->cell, c->language, c->setup, c->label};
    const size_t cap[4] = {sizeof c->cell, sizeof c->language, sizeof c->setup, sizeof c->label};
    for (int i = 0; i < 4; i++) {
        const char *v = json_string_value(json_object_get(o, fields[i]));
        if (!v) return 0;
        copy_name(dst[i], cap[i], v);
    }
    if (json_is_integer(seed) && json_integer_value(seed) >= 0) c->seed = (uint64_t)json_integer_value(seed);
    else if (json_is_string(seed)) c->seed = strtoull(json_string_value(seed), NULL, 10);
    else return 0;
    xa_class_report *r = &c->rep;
    const int n = (int)json_array_size(names);
    if (n > 65536) return 0;
    char (*lab)[64] = calloc((size_t)(n ? n : 1), sizeof *lab);
    if (!lab) return -1;
    for (int i = 0; i < n; i++) copy_name(lab[i], sizeof lab[i], json_string_value(json_array_get(names, (size_t)i)));
    /* tagging: the names are entity types; init with "B-<type>" tags gives the same types */
    if (!strcmp(k, "tagging"))
        for (int i = 0; i < n; i++) {
            char t[64];
            snprintf(t, sizeof t, "B-%.60s", lab[i]);
            memcpy(lab[i], t, sizeof t);
        }
    int ok = xa_class_report_init(r, !strcmp(k, "tagging"), (const char(*)[64])lab, n) == XA_STATUS_OK;
    free(lab);
    if (!ok) return -1;
    ok = r->n == n;
    if (ok && !r->tagging) { /* the matrix defines the counts */
        const json_t *m = json_object_get(o, "confusion");
        ok = json_is_array(m) && (int)json_array_size(m) == n;
        for (int g = 0; ok && g < n; g++) ok = read_counts(json_array_get(m, (size_t)g), r->confusion + (size_t)g * n, n);
        for (int g = 0; ok && g < n; g++)
            for (int p = 0; p < n; p++) {
                int64_t v = r->confusion[(size_t)g * n + p];
                r->n_gold[g] += v;
                r->n_pred[p] += v;
                if (g == p) r->n_correct[g] += v;
            }
    } else if (ok) {
        ok = read_counts(json_object_get(o, "support"), r->n_gold, n) &&
             read_counts(json_object_get(o, "predicted"), r->n_pred, n) &&
             read_counts(json_object_get(o, "correct"), r->n_correct, n);
        free(r->type_of); /* read back: merged and written, never counted into */
        r->type_of = NULL;
        r->n_labels = 0;
    }
    if (!ok) xa_class_report_free(r);
    return ok;
}

xa_status xa_report_set_read(xa_report_set *s, const char *path) {
    memset(s, 0, sizeof *s);
    char *text = NULL;
    if (xa_file_read(&text, NULL, path, 0)) { /* no previous reports: every cell is evaluated */
        xa_error_clear();
        return XA_STATUS_OK;
    }
    xa_status st = XA_STATUS_OK;
    for (char *line = text, *next; line && *line && !st; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        xa_report_cell c;
        memset(&c, 0, sizeof c);
        int ok = cell_from_json(o, &c);
        json_decref(o);
        if (ok < 0) st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
        if (ok <= 0) continue;
        st = xa_report_set_add(s, c.cell, c.language, c.setup, c.label, c.seed, &c.rep);
        xa_class_report_free(&c.rep);
    }
    free(text);
    if (st) xa_report_set_free(s);
    return st;
}

/* ---- pooling ---------------------------------------------------------------------------------- */

/* The cells of one (language, setup), pooled. */
typedef struct group {
    const xa_report_cell *first;
    xa_class_report rep;            /* counts summed over the pooled cells */
    int n_seeds;                    /* cells pooled */
    int n_left_out;                 /* cells over other classes than the first */
    char seeds[160];                /* "3, 4, 5" */
} group;

typedef struct pooled {
    int n;
    group *g;                       /* (n) in order of first appearance */
    int n_langs, n_setups;
    const char **langs, **setups;   /* (n_langs), (n_setups) pointers into the set */
    const char **labels;            /* (n_setups) */
} pooled;

static void pooled_free(pooled *p) {
    for (int i = 0; i < p->n; i++) xa_class_report_free(&p->g[i].rep);
    free(p->g);
    free(p->langs);
    free(p->setups);
    free(p->labels);
    memset(p, 0, sizeof *p);
}

/* Index of name in list[0..*n), appended when missing. */
static int intern(const char **list, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], name)) return i;
    list[*n] = name;
    return (*n)++;
}

static group *find_group(const pooled *p, const char *lang, const char *setup) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->g[i].first->language, lang) && !strcmp(p->g[i].first->setup, setup)) return &p->g[i];
    return NULL;
}

static xa_status pool(pooled *p, const xa_report_set *s) {
    memset(p, 0, sizeof *p);
    const size_t n = (size_t)(s->n ? s->n : 1);
    p->g = calloc(n, sizeof *p->g);
    p->langs = calloc(n, sizeof *p->langs);
    p->setups = calloc(n, sizeof *p->setups);
    p->labels = calloc(n, sizeof *p->labels);
    xa_status st = p->g && p->langs && p->setups && p->labels
                       ? XA_STATUS_OK
                       : xa_error_set(XA_STATUS_NOMEM, "xa_report_set_write", NULL, NULL, "out of memory");
    for (int i = 0; !st && i < s->n; i++) {
        const xa_report_cell *c = &s->c[i];
        intern(p->langs, &p->n_langs, c->language);
        int k = p->n_setups;
        if (intern(p->setups, &p->n_setups, c->setup) == k) p->labels[k] = c->label;
        group *g = find_group(p, c->language, c->setup);
        if (!g) {
            g = &p->g[p->n++];
            g->first = c;
            st = xa_class_report_copy(&g->rep, &c->rep);
        } else if (xa_class_report_merge(&g->rep, &c->rep)) {
            xa_error_clear();
            g->n_left_out++;
            continue;
        }
        size_t len = strlen(g->seeds);
        if (!st && len + 24 < sizeof g->seeds)
            snprintf(g->seeds + len, sizeof g->seeds - len, "%s%" PRIu64, len ? ", " : "", c->seed);
        if (!st) g->n_seeds++;
    }
    if (st) pooled_free(p);
    return st;
}

/* ---- per_class.json, per_class.csv, confusion.csv ------------------------------------------------- */

/* Class k of a report: its counts and scores, and whether macro-F1 averages it. */
static json_t *class_item(const void *rv, int k) {
    const xa_class_report *r = rv;
    const xa_class_score sc = xa_class_report_score(r, k);
    json_t *c = json_object();
    const int bad = !c || jset(c, "name", json_string(r->names[k])) || jset(c, "support", json_integer(sc.support)) ||
                    jset(c, "predicted", json_integer(sc.predicted)) || jset(c, "correct", json_integer(sc.correct)) ||
                    jset(c, "precision", json_real(sc.precision)) || jset(c, "recall", json_real(sc.recall)) ||
                    jset(c, "f1", json_real(sc.f1)) || jset(c, "in_macro_f1", json_boolean(sc.support > 0));
    return jfinish(c, bad, NULL, NULL);
}

/* Group i of the pooled set: its coordinates, averages, matrix and classes. */
static json_t *group_item(const void *pv, int i) {
    const group *g = &((const pooled *)pv)->g[i];
    const xa_class_report *r = &g->rep;
    xa_report_summary sum;
    xa_class_report_summary(r, &sum);
    json_t *o = json_object(), *classes = json_list(r, r->n, class_item);
    int bad = !o || !classes || jset(o, "language", json_string(g->first->language)) || jset(o, "setup", json_string(g->first->setup)) ||
          jset(o, "label", json_string(g->first->label)) || jset(o, "seeds", json_string(g->seeds)) ||
          jset(o, "n_seeds", json_integer(g->n_seeds)) || jset(o, "macro_f1", json_real(sum.macro_f1)) ||
          jset(o, "macro_precision", json_real(sum.macro_precision)) ||
          jset(o, "macro_recall", json_real(sum.macro_recall)) || jset(o, "n_macro", json_integer(sum.n_macro)) ||
          jset(o, "weighted_f1", json_real(sum.weighted_f1)) ||
          jset(o, r->tagging ? "span_precision" : "accuracy", json_real(r->tagging ? sum.micro_precision : sum.micro_f1));
    if (!bad && r->tagging)
        bad = jset(o, "span_recall", json_real(sum.micro_recall)) || jset(o, "span_f1", json_real(sum.micro_f1));
    if (!bad && !r->tagging) bad = jset(o, "confusion", json_confusion(r));
    return jfinish(o, bad, "classes", classes);
}

static xa_status write_json(const pooled *p, const char *path, const char *title, int tagging) {
    json_t *root = json_object(), *blocks = json_list(p, p->n, group_item);
    int bad = !root || !blocks || jset(root, "title", json_string(title)) ||
              jset(root, "kind", json_string(tagging ? "tagging" : "classification")) ||
              jset(root, "macro_f1_over", json_string("the classes present in the test set (support > 0)")) ||
              jset(root, "pooling", json_string("counts summed over the seeds"));
    root = jfinish(root, bad, "blocks", blocks);
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(root);
    if (!text) return xa_error_set(XA_STATUS_NOMEM, path, "class names in UTF-8", NULL, "cannot build the JSON report");
    xa_status st = xa_file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

static void render_csv(FILE *f, const pooled *p) {
    fputs("language,setup,seeds,class,support,predicted,correct,precision,recall,f1,in_macro_f1\n", f);
    for (int i = 0; i < p->n; i++) {
        const group *g = &p->g[i];
        for (int k = 0; k < g->rep.n; k++) {
            xa_class_score sc = xa_class_report_score(&g->rep, k);
            csv_field(f, g->first->language);
            fputc(',', f);
            csv_field(f, g->first->label);
            fputc(',', f);
            csv_field(f, g->seeds);
            fputc(',', f);
            csv_field(f, g->rep.names[k]);
            fprintf(f, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.10g,%.10g,%.10g,%s\n", sc.support, sc.predicted,
                    sc.correct, sc.precision, sc.recall, sc.f1, sc.support > 0 ? "true" : "false");
        }
    }
}

static void render_confusion_csv(FILE *f, const pooled *p) {
    fputs("language,setup,seeds,gold,predicted,count\n", f);
    for (int i = 0; i < p->n; i++) {
        const xa_class_report *r = &p->g[i].rep;
        for (int gi = 0; gi < r->n; gi++)
            for (int pi = 0; pi < r->n; pi++) {
                csv_field(f, p->g[i].first->language);
                fputc(',', f);
                csv_field(f, p->g[i].first->label);
                fputc(',', f);
                csv_field(f, p->g[i].seeds);
                fputc(',', f);
                csv_field(f, r->names[gi]);
                fputc(',', f);
                csv_field(f, r->names[pi]);
                fprintf(f, ",%" PRId64 "\n", r->confusion[(size_t)gi * r->n + pi]);
            }
    }
}

/* ---- per_class.md ------------------------------------------------------------------------------- */

static void md_pct(FILE *f, double x) {
    char b[32];
    fmt_pct(b, sizeof b, x);
    fputs(b, f);
}

/* "P | R | F1" cells, x 100. */
static void md_prf(FILE *f, double p, double r, double f1) {
    md_pct(f, p);
    fputs(" | ", f);
    md_pct(f, r);
    fputs(" | ", f);
    md_pct(f, f1);
}

/* The side-by-side table of one language: F1 per class for every setup. Support is per test file
 * (the pooled support over the seeds of the first setup measured). */
static void md_language_table(FILE *f, const pooled *p, const char *lang) {
    const group *ref = NULL;
    for (int s = 0; s < p->n_setups && !ref; s++) ref = find_group(p, lang, p->setups[s]);
    if (!ref) return;
    const xa_class_report *r0 = &ref->rep;
    fprintf(f, "| %s | support |", r0->tagging ? "entity type" : "class");
    for (int s = 0; s < p->n_setups; s++) {
        fputc(' ', f);
        md_text(f, p->labels[s]);
        fputs(" |", f);
    }
    fputs("\n|:---|---:|", f);
    for (int s = 0; s < p->n_setups; s++) fputs("---:|", f);
    fputc('\n', f);
    for (int k = 0; k < r0->n; k++) {
        fputs("| ", f);
        md_text(f, r0->names[k]);
        fprintf(f, " | %" PRId64 " |", r0->n_gold[k] / (ref->n_seeds ? ref->n_seeds : 1));
        for (int s = 0; s < p->n_setups; s++) {
            const group *g = find_group(p, lang, p->setups[s]);
            fputc(' ', f);
            if (!g || g->rep.n != r0->n || strcmp(g->rep.names[k], r0->names[k])) fputs(EM_DASH, f);
            else md_pct(f, xa_class_report_score(&g->rep, k).f1);
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    const char *rows[2] = {r0->tagging ? "macro-F1 (types with support)" : "macro-F1 (classes with support)",
                           r0->tagging ? "span F1 (micro)" : "accuracy"};
    for (int row = 0; row < 2; row++) {
        fprintf(f, "| %s | |", rows[row]);
        for (int s = 0; s < p->n_setups; s++) {
            const group *g = find_group(p, lang, p->setups[s]);
            xa_report_summary sum;
            fputc(' ', f);
            if (!g) {
                fputs(EM_DASH " |", f);
                continue;
            }
            xa_class_report_summary(&g->rep, &sum);
            md_pct(f, row == 0 ? sum.macro_f1 : sum.micro_f1);
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    fputc('\n', f);
}

/* What a setup does wrong at a glance: the classes with support it never predicts, and the
 * class it predicts most often against that class's share of the gold labels. */
static void md_collapse_notes(FILE *f, const pooled *p, const char *lang) {
    for (int s = 0; s < p->n_setups; s++) {
        const group *g = find_group(p, lang, p->setups[s]);
        if (!g || g->rep.n == 0) continue;
        const xa_class_report *r = &g->rep;
        xa_report_summary sum;
        xa_class_report_summary(r, &sum);
        int never = 0, top = 0;
        for (int k = 0; k < r->n; k++) {
            never += r->n_gold[k] > 0 && r->n_pred[k] == 0;
            if (r->n_pred[k] > r->n_pred[top]) top = k;
        }
        fputs("- ", f);
        md_text(f, p->labels[s]);
        fputs(": ", f);
        if (never) {
            fprintf(f, "never predicts %d of the %d %s with support (", never, sum.n_macro,
                    r->tagging ? "entity types" : "classes");
            for (int k = 0, shown = 0; k < r->n; k++) {
                if (!(r->n_gold[k] > 0 && r->n_pred[k] == 0)) continue;
                fputs(shown++ ? ", " : "", f);
                md_text(f, r->names[k]);
            }
            fputs("); ", f);
        } else {
            fputs(r->tagging ? "predicts every entity type with support; " : "predicts every class with support; ", f);
        }
        if (sum.n_pred > 0) {
            fputs("most predicted: ", f);
            md_text(f, r->names[top]);
            fputs(" (", f);
            md_pct(f, (double)r->n_pred[top] / (double)sum.n_pred);
            fputs("% of the predictions, ", f);
            md_pct(f, sum.n_gold ? (double)r->n_gold[top] / (double)sum.n_gold : 0.0);
            fputs("% of the gold)", f);
        }
        if (g->n_left_out) fprintf(f, "; %d seed(s) over other classes left out", g->n_left_out);
        fputs("\n", f);
    }
    fputc('\n', f);
}

/* The detailed block of one (language, setup): the classification_report and the matrix. */
static void md_detail(FILE *f, const group *g, const char *svg) {
    const xa_class_report *r = &g->rep;
    xa_report_summary sum;
    xa_class_report_summary(r, &sum);
    fputs("### ", f);
    md_text(f, g->first->language);
    fputs(": ", f);
    md_text(f, g->first->label);
    fprintf(f, " (seed%s %s%s)\n\n", g->n_seeds > 1 ? "s" : "", g->seeds, g->n_seeds > 1 ? ", counts summed" : "");
    fprintf(f, "| %s | precision | recall | F1 | support | predicted |\n|:---|---:|---:|---:|---:|---:|\n",
            r->tagging ? "entity type" : "class");
    for (int k = 0; k < r->n; k++) {
        xa_class_score sc = xa_class_report_score(r, k);
        fputs("| ", f);
        md_text(f, r->names[k]);
        if (sc.support == 0) fputs(" (no support: not in macro-F1)", f);
        fputs(" | ", f);
        md_prf(f, sc.precision, sc.recall, sc.f1);
        fprintf(f, " | %" PRId64 " | %" PRId64 " |\n", sc.support, sc.predicted);
    }
    fprintf(f, "| macro avg (%d with support) | ", sum.n_macro);
    md_prf(f, sum.macro_precision, sum.macro_recall, sum.macro_f1);
    fprintf(f, " | %" PRId64 " | %" PRId64 " |\n| weighted avg | | | ", sum.n_gold, sum.n_pred);
    md_pct(f, sum.weighted_f1);
    fprintf(f, " | %" PRId64 " | |\n", sum.n_gold);
    if (r->tagging) {
        fputs("| micro (the table's span F1) | ", f);
        md_prf(f, sum.micro_precision, sum.micro_recall, sum.micro_f1);
        fprintf(f, " | %" PRId64 " | %" PRId64 " |\n\n", sum.n_gold, sum.n_pred);
        return;
    }
    fputs("| accuracy | | | ", f);
    md_pct(f, sum.micro_f1);
    fprintf(f, " | %" PRId64 " | |\n\n", sum.n_gold);
    fputs("Confusion matrix (rows: gold, columns: predicted; heat map: [", f);
    md_text(f, svg);
    fputs("](", f);
    md_text(f, svg);
    fputs(")):\n\n| gold \\ predicted |", f);
    for (int k = 0; k < r->n; k++) {
        fputc(' ', f);
        md_text(f, r->names[k]);
        fputs(" |", f);
    }
    fputs(" support |\n|:---|", f);
    for (int k = 0; k <= r->n; k++) fputs("---:|", f);
    fputc('\n', f);
    for (int gi = 0; gi < r->n; gi++) {
        fputs("| ", f);
        md_text(f, r->names[gi]);
        fputs(" |", f);
        for (int pi = 0; pi < r->n; pi++) {
            int64_t v = r->confusion[(size_t)gi * r->n + pi];
            fprintf(f, gi == pi && v ? " **%" PRId64 "** |" : " %" PRId64 " |", v);
        }
        fprintf(f, " %" PRId64 " |\n", r->n_gold[gi]);
    }
    fputc('\n', f);
}

/* confusion_<setup>.svg: the setup key with anything but [A-Za-z0-9_.-] as '_'. */
static void svg_name(char *out, size_t n, const char *setup) {
    int len = snprintf(out, n, "confusion_");
    for (const char *c = setup; *c && (size_t)len + 5 < n; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("_.-", *c);
        out[len++] = ok ? *c : '_';
    }
    snprintf(out + len, n - (size_t)len, ".svg");
}

typedef struct md_args {
    const pooled *p;
    const char *title;
    const char *const *detail;
} md_args;

static int is_detail(const md_args *a, const char *setup) {
    int any = 0;
    for (int i = 0; a->detail && a->detail[i]; i++) {
        for (int s = 0; s < a->p->n_setups; s++) any |= !strcmp(a->p->setups[s], a->detail[i]);
        if (!strcmp(a->detail[i], setup)) return 1;
    }
    return !any && a->p->n_setups > 0 && !strcmp(setup, a->p->setups[0]); /* none present: the first */
}

static void render_md(FILE *f, const md_args *a) {
    const pooled *p = a->p;
    const int tagging = p->n > 0 && p->g[0].rep.tagging;
    fputs("# ", f);
    md_text(f, a->title);
    fprintf(f, ": per-%s report\n\n", tagging ? "entity-type" : "class");
    if (tagging)
        fputs("Span precision, recall and F1 per entity type (exact BIO spans, as seqeval's classification_report) "
              "for every language and setup (x 100), the seeds of a cell pooled (counts summed). The results table's "
              "span F1 is the micro row (all spans pooled); macro-F1 averages over the entity types present in the "
              "language's test set (support > 0), the rule of the classification tables' macro-F1 (scikit-learn's "
              "labels=sorted(set(y_true))); a type without support is listed, not averaged.\n\n",
              f);
    else
        fputs("Precision, recall and F1 per class for every language and setup (x 100), the seeds of a cell pooled "
              "(counts summed). Macro-F1 averages over the classes present in the language's test set (support > 0), "
              "as the results tables do (scikit-learn's labels=sorted(set(y_true))); a class without support is "
              "listed, not averaged, and its predictions count as errors of the gold classes. Confusion matrices: "
              "rows are the gold class, columns the predicted class; heat maps in confusion_<setup>.svg.\n\n",
              f);
    if (p->n == 0) fputs("No cell was evaluated.\n", f);
    for (int l = 0; l < p->n_langs; l++) {
        fputs("## ", f);
        md_text(f, p->langs[l]);
        fputs(tagging ? "\n\nF1 per entity type:\n\n" : "\n\nF1 per class:\n\n", f);
        md_language_table(f, p, p->langs[l]);
        md_collapse_notes(f, p, p->langs[l]);
        for (int s = 0; s < p->n_setups; s++) {
            const group *g = find_group(p, p->langs[l], p->setups[s]);
            if (!g || !is_detail(a, p->setups[s])) continue;
            char svg[256];
            svg_name(svg, sizeof svg, p->setups[s]);
            md_detail(f, g, svg);
        }
    }
}

/* ---- confusion_<setup>.svg ---------------------------------------------------------------------- */

#define HM_CHAR_W 7.0
#define HM_NAME_MAX 14 /* characters of a class name on an axis (then "...") */

/* A class name for an axis: at most HM_NAME_MAX characters. */
static void axis_name(FILE *f, const char *s) {
    if (utf8_len(s) <= HM_NAME_MAX) {
        xml_text(f, s);
        return;
    }
    char b[64];
    size_t i = 0;
    for (int chars = 0; s[i] && i + 4 < sizeof b; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == HM_NAME_MAX - 1) break;
        b[i] = s[i];
    }
    b[i] = '\0';
    xml_text(f, b);
    fputs("\xE2\x80\xA6", f);
}

/* One panel at (x0, y0): the matrix of group g with cells of cs px. */
static void svg_panel(FILE *f, const group *g, double x0, double y0, double cs, double lab_w, double top_h) {
    const xa_class_report *r = &g->rep;
    int64_t total = 0;
    for (int k = 0; k < r->n; k++) total += r->n_gold[k];
    fprintf(f, "<g class=\"panel\"><text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">", x0, y0 + 14.0);
    xml_text(f, g->first->language);
    fprintf(f, " (n = %" PRId64 ")</text>\n", total);
    const double mx = x0 + lab_w, my = y0 + 20.0 + top_h;
    for (int k = 0; k < r->n; k++) { /* predicted (top, turned) and gold (left) names */
        double cx = mx + (k + 0.5) * cs;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-45 %.1f %.1f)\">", cx, my - 4.0, cx, my - 4.0);
        axis_name(f, r->names[k]);
        fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"end\">", mx - 4.0, my + (k + 0.5) * cs);
        axis_name(f, r->names[k]);
        fputs("</text>\n", f);
    }
    /* hot loop of the drawing: one rect per cell, shade = count / gold row total */
    for (int gi = 0; gi < r->n; gi++)
        for (int pi = 0; pi < r->n; pi++) {
            int64_t v = r->confusion[(size_t)gi * r->n + pi];
            double share = r->n_gold[gi] > 0 ? (double)v / (double)r->n_gold[gi] : 0.0;
            int cr = (int)lround(255.0 + (8.0 - 255.0) * share), cg = (int)lround(255.0 + (81.0 - 255.0) * share),
                cb = (int)lround(255.0 + (156.0 - 255.0) * share);
            double x = mx + pi * cs, y = my + gi * cs;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\" stroke=\"%s\"><title>gold ",
                    x, y, cs, cs, cr, cg, cb, gi == pi ? "#000000" : "#d0d0d0");
            xml_text(f, r->names[gi]);
            fputs(", predicted ", f);
            xml_text(f, r->names[pi]);
            fprintf(f, ": %" PRId64 " (%.1f%% of the gold row)</title></rect>\n", v, 100.0 * share);
            if (cs >= 14.0 && v > 0)
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\" text-anchor=\"middle\" font-size=\"%.0f\" fill=\"%s\">%" PRId64 "</text>\n",
                        x + cs / 2.0, y + cs / 2.0, cs >= 24.0 ? 10.0 : 8.0, share > 0.5 ? "#ffffff" : "#222222", v);
        }
    fputs("</g>\n", f);
}

typedef struct svg_args {
    const pooled *p;
    int setup;                      /* index into p->setups */
    const char *title;
} svg_args;

static void render_svg(FILE *f, const svg_args *a) {
    const pooled *p = a->p;
    const group *gs[XA_TABLE_MAX_ROWS];
    int n = 0, kmax = 1, chars = 1;
    for (int l = 0; l < p->n_langs && n < XA_TABLE_MAX_ROWS; l++) {
        const group *g = find_group(p, p->langs[l], p->setups[a->setup]);
        if (!g) continue;
        gs[n++] = g;
        if (g->rep.n > kmax) kmax = g->rep.n;
        for (int k = 0; k < g->rep.n; k++) {
            int c = utf8_len(g->rep.names[k]);
            if (c > chars) chars = c > HM_NAME_MAX ? HM_NAME_MAX + 1 : c;
        }
    }
    double cs = floor(240.0 / kmax);
    cs = cs < 6.0 ? 6.0 : cs > 28.0 ? 28.0 : cs;
    const double lab_w = chars * HM_CHAR_W + 8.0, top_h = 0.71 * chars * HM_CHAR_W + 8.0;
    const double pw = lab_w + kmax * cs + 24.0, ph = 20.0 + top_h + kmax * cs + 24.0;
    const int cols = n < 4 ? (n ? n : 1) : 4, rows = (n + cols - 1) / cols;
    double width = cols * pw + 16.0, height = 70.0 + (rows ? rows : 1) * ph;
    char title[512];
    snprintf(title, sizeof title, "%s: confusion, %s (rows gold, columns predicted)", a->title, p->labels[a->setup]);
    const double title_w = utf8_len(title) * 8.0 + 32.0;
    if (title_w > width) width = title_w;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n<title>",
            ceil(width), ceil(height), ceil(width), ceil(height));
    xml_text(f, title);
    fputs("</title>\n<rect class=\"background\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", f);
    fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">",
            width / 2.0);
    xml_text(f, title);
    /* the legend: the shade scale */
    fputs("</text>\n<defs><linearGradient id=\"shade\"><stop offset=\"0\" stop-color=\"#ffffff\"/>"
          "<stop offset=\"1\" stop-color=\"#08519c\"/></linearGradient></defs>\n"
          "<g class=\"legend\"><rect x=\"16\" y=\"34\" width=\"120\" height=\"10\" fill=\"url(#shade)\" stroke=\"#333333\" "
          "stroke-width=\"0.5\"/><text x=\"16\" y=\"56\">0%</text><text x=\"136\" y=\"56\" text-anchor=\"end\">100%</text>"
          "<text x=\"146\" y=\"43\">share of the gold class's examples (the diagonal: recall)</text></g>\n",
          f);
    for (int i = 0; i < n; i++) svg_panel(f, gs[i], 8.0 + (i % cols) * pw, 64.0 + (i / cols) * ph, cs, lab_w, top_h);
    if (!n) fputs("<text x=\"16\" y=\"90\" fill=\"#666666\">no data</text>\n", f);
    fputs("</svg>\n", f);
}

/* ---- writing ------------------------------------------------------------------------------------ */

typedef void (*render_fn)(FILE *f, const void *arg);

static void render_csv_fn(FILE *f, const void *a) { render_csv(f, a); }
static void render_confusion_fn(FILE *f, const void *a) { render_confusion_csv(f, a); }
static void render_md_fn(FILE *f, const void *a) { render_md(f, a); }
static void render_svg_fn(FILE *f, const void *a) { render_svg(f, a); }
static void render_jsonl_fn(FILE *f, const void *a) {
    const xa_report_set *s = a;
    for (int i = 0; i < s->n; i++) {
        json_t *o = cell_json(&s->c[i]);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
        if (line) fprintf(f, "%s\n", line); /* a cell whose names are not UTF-8 is left out (evaluated again) */
        free(line);
        json_decref(o);
    }
}

/* Render into dir/name through io/file's atomic writer. */
static xa_status write_file(const char *dir, const char *name, render_fn fn, const void *arg) {
    char path[XA_PATH_MAX];
    xa_file_writer *w = NULL;
    xa_status st = xa_path_join(path, sizeof path, dir, name);
    if (!st) st = xa_file_writer_open(&w, path);
    if (st) return st;
    fn(xa_file_writer_stream(w), arg);
    return xa_file_writer_commit(w);
}

xa_status xa_report_set_write(const xa_report_set *s, const char *dir, const char *title,
                              const char *const *detail) {
    if (!s || !dir || !dir[0])
        return xa_error_set(XA_STATUS_USAGE, "xa_report_set_write", "a report set and a directory", NULL, "NULL argument");
    pooled p;
    xa_status st = pool(&p, s);
    if (st) return st;
    const int tagging = s->n > 0 && s->c[0].rep.tagging;
    const char *t = title ? title : "";
    char path[XA_PATH_MAX];
    st = write_file(dir, "per_class.jsonl", render_jsonl_fn, s);
    if (!st) st = xa_path_join(path, sizeof path, dir, "per_class.json");
    if (!st) st = write_json(&p, path, t, tagging);
    if (!st) st = write_file(dir, "per_class.csv", render_csv_fn, &p);
    md_args ma = {&p, t, detail};
    if (!st) st = write_file(dir, "per_class.md", render_md_fn, &ma);
    if (!st && !tagging) st = write_file(dir, "confusion.csv", render_confusion_fn, &p);
    for (int k = 0; !st && !tagging && k < p.n_setups; k++) {
        char name[256];
        svg_name(name, sizeof name, p.setups[k]);
        svg_args sa = {&p, k, t};
        st = write_file(dir, name, render_svg_fn, &sa);
    }
    pooled_free(&p);
    return st;
}
