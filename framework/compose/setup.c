/* compose/setup.c: composition trees (AdapterHub's composition blocks, ADAPTERHUB.md §1.6):
 * parsing the text form, printing it back, and the nesting rules of the reference library
 * (ALLOWED_NESTINGS plus its depth rules). The tree is plain data; compose.c compiles it into a
 * per-layer program. Not here: anything about adapters' existence (xa_composer_activate checks). */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compose/compose.h"

static const char *const BLOCK_NAMES[] = {"adapter", "Stack",    "Fuse",   "Split",
                                          "BatchSplit", "Parallel", "Average"};

static const char *block_name(xa_block k) { return BLOCK_NAMES[k]; }

xa_setup *xa_setup_single(const char *name) {
    xa_setup *leaf = calloc(1, sizeof *leaf), *st = calloc(1, sizeof *st);
    if (!leaf || !st || strlen(name) >= XA_NAME_MAX) {
        free(leaf);
        free(st);
        xa_error_set(XA_STATUS_NOMEM, "xa_setup_single", NULL, NULL, "cannot build Stack(%s)", name);
        return NULL;
    }
    leaf->kind = XA_BLOCK_ADAPTER;
    snprintf(leaf->name, sizeof leaf->name, "%s", name);
    st->kind = XA_BLOCK_STACK;
    st->n = 1;
    st->child[0] = leaf;
    return st;
}

void xa_setup_free(xa_setup *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) xa_setup_free(s->child[i]);
    free(s);
}

xa_setup *xa_setup_clone(const xa_setup *s) {
    if (!s) return NULL;
    xa_setup *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *s;
    for (int i = 0; i < s->n; i++) {
        c->child[i] = xa_setup_clone(s->child[i]);
        if (!c->child[i]) {
            c->n = i;
            xa_setup_free(c);
            return NULL;
        }
    }
    return c;
}

/* ---- parser ------------------------------------------------------------------------------------ */

typedef struct parser {
    const char *text, *p, *where;
    xa_status st;
    int depth; /* blocks open at p */
} parser;

static void skip_ws(parser *ps) {
    while (*ps->p && isspace((unsigned char)*ps->p)) ps->p++;
}

static int fail(parser *ps, const char *expected, const char *fmt, ...) XA_PRINTF(3, 4);
static int fail(parser *ps, const char *expected, const char *fmt, ...) {
    if (ps->st == XA_STATUS_OK) {
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        /* a long setup is shown by its start: the column and the problem must fit the record */
        int len = (int)strlen(ps->text);
        xa_error_set(XA_STATUS_CONFIG, ps->where, expected,
                     "blocks are Stack, Fuse, Split, BatchSplit, Parallel, Average, e.g. "
                     "\"Stack(lang_de, task)\" or \"Split(a, b, splits=[64, 64])\"",
                     "adapter setup \"%.*s%s\", column %d: %s", len > 80 ? 60 : len, ps->text,
                     len > 80 ? "..." : "", (int)(ps->p - ps->text) + 1, what);
        ps->st = XA_STATUS_CONFIG;
    }
    return 0;
}

static int is_name_char(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == ':' || c == '-';
}

xa_status xa_name_check(const char *name, int list, const char *what, const char *where) {
    size_t seg = 0, n = strlen(name);
    int ok = 1;
    for (size_t i = 0; ok && i <= n; i++) {
        if (i == n || (list && name[i] == ',')) { /* end of one name: 1-63 characters, not . or .. */
            size_t len = i - seg;
            ok = len > 0 && len < XA_NAME_MAX && !(len <= 2 && strspn(name + seg, ".") >= len);
            seg = i + 1;
        } else {
            ok = is_name_char(name[i]);
        }
    }
    if (ok) return XA_STATUS_OK;
    return xa_error_set(XA_STATUS_CONFIG, where,
                        list ? "names of 1 to 63 characters of [A-Za-z0-9_.:-] joined by ',', "
                               "none of them . or .."
                             : "1 to 63 characters of [A-Za-z0-9_.:-], not . or ..",
                        NULL, "%s '%.*s'%s", what, 80, name, n > 80 ? "..." : "");
}

static int read_name(parser *ps, char *out, size_t n) {
    skip_ws(ps);
    size_t k = 0;
    while (is_name_char(*ps->p)) {
        if (k + 1 >= n) return fail(ps, "a shorter name", "name longer than %s characters", "63");
        out[k++] = *ps->p++;
    }
    out[k] = 0;
    if (!k) return fail(ps, "an adapter name or a block", "found '%s'", *ps->p ? ps->p : "end of text");
    return 1;
}

static int accept(parser *ps, char c) {
    skip_ws(ps);
    if (*ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

static int parse_kind(const char *name, xa_block *out) {
    for (int k = XA_BLOCK_STACK; k <= XA_BLOCK_AVERAGE; k++)
        if (!strcasecmp(name, BLOCK_NAMES[k])) {
            *out = (xa_block)k;
            return 1;
        }
    return 0;
}

/* [n, n, ...] into ints or doubles; returns the count or -1. */
static int parse_list(parser *ps, int *ints, double *reals, int max) {
    if (!accept(ps, '[')) return fail(ps, "'['", "found '%s'", ps->p), -1;
    int n = 0;
    if (accept(ps, ']')) return 0;
    do {
        skip_ws(ps);
        char *end;
        double v = strtod(ps->p, &end);
        if (end == ps->p) return fail(ps, "a number", "found '%s'", ps->p), -1;
        if (n >= max) return fail(ps, "at most 16 values", "too many values at '%s'", ps->p), -1;
        if (ints) {
            /* range first: converting an out-of-range double to int is undefined */
            if (!(v >= 1 && v <= XA_SETUP_MAX_SIZE) || v != floor(v))
                return fail(ps, "an integer size from 1 to 1048576", "found size '%.*s'",
                            (int)(end - ps->p), ps->p), -1;
            ints[n] = (int)v;
        }
        if (reals && !isfinite(v))
            return fail(ps, "a finite number", "found '%.*s'", (int)(end - ps->p), ps->p), -1;
        if (reals) reals[n] = v;
        n++;
        ps->p = end;
    } while (accept(ps, ','));
    if (!accept(ps, ']')) return fail(ps, "',' or ']'", "found '%s'", ps->p), -1;
    return n;
}

static xa_setup *parse_item(parser *ps);

static xa_setup *parse_block(parser *ps, xa_block kind) {
    xa_setup *s = calloc(1, sizeof *s);
    if (!s) return fail(ps, "memory", "%s", "out of memory"), NULL;
    s->kind = kind;
    int n_sizes = -1, n_weights = -1;
    double w[XA_SETUP_MAX_CHILDREN];
    do {
        skip_ws(ps);
        /* keyword argument? name '=' ... */
        const char *save = ps->p;
        char key[XA_NAME_MAX];
        if (is_name_char(*ps->p) && read_name(ps, key, sizeof key) && accept(ps, '=')) {
            if (!strcmp(key, "splits") && kind == XA_BLOCK_SPLIT)
                n_sizes = parse_list(ps, s->sizes, NULL, XA_SETUP_MAX_CHILDREN);
            else if (!strcmp(key, "batch_sizes") && kind == XA_BLOCK_BATCHSPLIT)
                n_sizes = parse_list(ps, s->sizes, NULL, XA_SETUP_MAX_CHILDREN);
            else if (!strcmp(key, "weights") && kind == XA_BLOCK_AVERAGE)
                n_weights = parse_list(ps, NULL, w, XA_SETUP_MAX_CHILDREN);
            else if (!strcmp(key, "name") && kind == XA_BLOCK_FUSE)
                read_name(ps, s->name, sizeof s->name);
            else {
                ps->p = save;
                fail(ps, kind == XA_BLOCK_SPLIT        ? "splits=[...]"
                         : kind == XA_BLOCK_BATCHSPLIT ? "batch_sizes=[...]"
                         : kind == XA_BLOCK_AVERAGE    ? "weights=[...]"
                         : kind == XA_BLOCK_FUSE       ? "name=NAME"
                                                       : "no keyword arguments",
                     "unknown keyword argument '%s'", key);
            }
            if (ps->st) goto fail;
            continue;
        }
        if (ps->st) goto fail;
        ps->p = save;
        if (s->n >= XA_SETUP_MAX_CHILDREN) {
            fail(ps, "at most 16 children", "too many children at '%s'", ps->p);
            goto fail;
        }
        xa_setup *c = parse_item(ps);
        if (!c) goto fail;
        s->child[s->n++] = c;
    } while (accept(ps, ','));
    if (!accept(ps, ')')) {
        fail(ps, "',' or ')'", "found '%s'", *ps->p ? ps->p : "end of text");
        goto fail;
    }
    if ((kind == XA_BLOCK_SPLIT || kind == XA_BLOCK_BATCHSPLIT) && n_sizes != s->n) {
        fail(ps, kind == XA_BLOCK_SPLIT ? "splits=[...] with one size per child"
                                        : "batch_sizes=[...] with one size per child",
             "%s needs one size per child", block_name(kind));
        goto fail;
    }
    if (kind == XA_BLOCK_AVERAGE) {
        if (n_weights >= 0 && n_weights != s->n) {
            fail(ps, "one weight per child", "%s", "Average weights do not match the children");
            goto fail;
        }
        double sum = 0;
        for (int i = 0; i < s->n; i++) sum += n_weights >= 0 ? w[i] : 1.0;
        /* weights that already sum to 1 (a printed setup) are kept as written, so that printing
         * and parsing again gives the same weights (renormalising moved their last digits) */
        double scale = n_weights >= 0 && fabs(sum - 1.0) <= 1e-12 ? 1.0 : sum;
        for (int i = 0; i < s->n; i++) {
            if (n_weights >= 0 && w[i] < 0) {
                fail(ps, "weights >= 0", "%s", "negative Average weight");
                goto fail;
            }
            s->weights[i] = sum > 0 ? (n_weights >= 0 ? w[i] : 1.0) / scale : 0;
        }
        if (!(sum > 0) || !isfinite(sum)) {
            fail(ps, "weights with a positive finite sum", "Average weights sum to %g", sum);
            goto fail;
        }
    }
    return s;
fail:
    xa_setup_free(s);
    return NULL;
}

static xa_setup *parse_item(parser *ps) {
    char name[XA_NAME_MAX];
    if (!read_name(ps, name, sizeof name)) return NULL;
    xa_block kind;
    if (accept(ps, '(')) {
        if (!parse_kind(name, &kind)) {
            fail(ps, "Stack, Fuse, Split, BatchSplit, Parallel or Average", "unknown block '%s'",
                 name);
            return NULL;
        }
        /* The recursion below is bounded here (adapter_setup.json stops at the same depth). */
        if (ps->depth >= XA_SETUP_MAX_DEPTH) {
            fail(ps, "at most 8 nested blocks", "%s", "setup nested too deep");
            return NULL;
        }
        ps->depth++;
        xa_setup *s = parse_block(ps, kind);
        ps->depth--;
        return s;
    }
    xa_setup *s = calloc(1, sizeof *s);
    if (!s) return fail(ps, "memory", "%s", "out of memory"), NULL;
    s->kind = XA_BLOCK_ADAPTER;
    memcpy(s->name, name, sizeof name);
    return s;
}

xa_status xa_setup_parse(xa_setup **out, const char *text, const char *where) {
    *out = NULL;
    parser ps = {text, text, where ? where : "adapter setup", XA_STATUS_OK, 0};
    xa_setup *first = parse_item(&ps);
    if (!first) return ps.st ? ps.st : XA_STATUS_CONFIG;
    xa_setup *top = first;
    if (first->kind == XA_BLOCK_ADAPTER) { /* a name or a list of names: Stack(...) */
        top = calloc(1, sizeof *top);
        if (!top) {
            xa_setup_free(first);
            return xa_error_set(XA_STATUS_NOMEM, ps.where, NULL, NULL, "out of memory");
        }
        top->kind = XA_BLOCK_STACK;
        top->child[top->n++] = first;
        while (accept(&ps, ',')) {
            if (top->n >= XA_SETUP_MAX_CHILDREN) {
                fail(&ps, "at most 16 children", "too many adapters at '%s'", ps.p);
                break;
            }
            xa_setup *c = parse_item(&ps);
            if (!c) break;
            top->child[top->n++] = c;
        }
    }
    skip_ws(&ps);
    if (!ps.st && *ps.p) fail(&ps, "end of the setup", "unexpected '%s'", ps.p);
    if (ps.st) {
        xa_setup_free(top);
        return ps.st;
    }
    xa_status st = xa_setup_check(top, ps.where);
    if (st) {
        xa_setup_free(top);
        return st;
    }
    *out = top;
    return XA_STATUS_OK;
}

/* ---- printing ---------------------------------------------------------------------------------- */

typedef struct sbuf {
    char *buf;
    size_t n, len;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) XA_PRINTF(2, 3);
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->len < b->n ? b->buf + b->len : NULL, b->len < b->n ? b->n - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (k > 0) b->len += (size_t)k;
}

static void format_rec(const xa_setup *s, sbuf *b) {
    if (s->kind == XA_BLOCK_ADAPTER) {
        put(b, "%s", s->name);
        return;
    }
    put(b, "%s(", block_name(s->kind));
    for (int i = 0; i < s->n; i++) {
        if (i) put(b, ", ");
        format_rec(s->child[i], b);
    }
    if (s->kind == XA_BLOCK_SPLIT || s->kind == XA_BLOCK_BATCHSPLIT) {
        put(b, ", %s=[", s->kind == XA_BLOCK_SPLIT ? "splits" : "batch_sizes");
        for (int i = 0; i < s->n; i++) put(b, "%s%d", i ? ", " : "", s->sizes[i]);
        put(b, "]");
    } else if (s->kind == XA_BLOCK_AVERAGE) {
        put(b, ", weights=[");
        for (int i = 0; i < s->n; i++) put(b, "%s%.17g", i ? ", " : "", s->weights[i]);
        put(b, "]");
    } else if (s->kind == XA_BLOCK_FUSE && s->name[0]) {
        put(b, ", name=%s", s->name);
    }
    put(b, ")");
}

int xa_setup_format(const xa_setup *s, char *buf, size_t n) {
    sbuf b = {buf, n, 0};
    if (n) buf[0] = 0;
    if (s) format_rec(s, &b);
    else put(&b, "(none)");
    return (int)b.len;
}

/* ---- rules -------------------------------------------------------------------------------------- */

/* ALLOWED_NESTINGS of the reference library: bit k set = child kind k allowed. */
static unsigned allowed_children(xa_block parent) {
#define B(k) (1u << (k))
    switch (parent) {
    case XA_BLOCK_STACK:
        return B(XA_BLOCK_ADAPTER) | B(XA_BLOCK_FUSE) | B(XA_BLOCK_SPLIT) | B(XA_BLOCK_PARALLEL) |
               B(XA_BLOCK_BATCHSPLIT) | B(XA_BLOCK_AVERAGE);
    case XA_BLOCK_FUSE: return B(XA_BLOCK_ADAPTER) | B(XA_BLOCK_STACK);
    case XA_BLOCK_SPLIT:
        return B(XA_BLOCK_ADAPTER) | B(XA_BLOCK_SPLIT) | B(XA_BLOCK_STACK) |
               B(XA_BLOCK_BATCHSPLIT) | B(XA_BLOCK_AVERAGE);
    case XA_BLOCK_PARALLEL:
        return B(XA_BLOCK_ADAPTER) | B(XA_BLOCK_STACK) | B(XA_BLOCK_BATCHSPLIT) |
               B(XA_BLOCK_AVERAGE);
    case XA_BLOCK_BATCHSPLIT:
        return B(XA_BLOCK_ADAPTER) | B(XA_BLOCK_STACK) | B(XA_BLOCK_SPLIT) |
               B(XA_BLOCK_BATCHSPLIT) | B(XA_BLOCK_AVERAGE);
    case XA_BLOCK_AVERAGE:
        return B(XA_BLOCK_ADAPTER) | B(XA_BLOCK_STACK) | B(XA_BLOCK_SPLIT) |
               B(XA_BLOCK_BATCHSPLIT);
    default: return 0;
    }
#undef B
}

static xa_status check_rec(const xa_setup *s, int lvl, const char *where) {
    if (s->kind == XA_BLOCK_ADAPTER) {
        return xa_name_check(s->name, 0, "adapter name", where);
    }
    if (s->kind == XA_BLOCK_FUSE && s->name[0]) {
        xa_status st = xa_name_check(s->name, 1, "fusion name", where);
        if (st) return st;
    }
    int min = s->kind == XA_BLOCK_STACK ? 1 : 2;
    if (s->n < min)
        return xa_error_set(XA_STATUS_CONFIG, where, min == 1 ? "at least 1 child" : "at least 2 children",
                            NULL, "%s has %d child(ren)", block_name(s->kind), s->n);
    for (int i = 0; i < s->n; i++) {
        const xa_setup *c = s->child[i];
        if (c->kind != XA_BLOCK_ADAPTER) {
            /* The reference library: a Stack below the top may hold only adapters, and below
             * level 1 only Stacks or adapters appear. */
            if (s->kind == XA_BLOCK_STACK && lvl >= 1)
                return xa_error_set(XA_STATUS_CONFIG, where, "only adapters inside a nested Stack",
                                    "flatten the setup, e.g. Stack(a, b) inside Fuse(...)",
                                    "setup too deep: %s inside a Stack at level %d",
                                    block_name(c->kind), lvl);
            if (!(allowed_children(s->kind) & (1u << c->kind))) {
                char allowed[160] = "";
                for (int k = XA_BLOCK_ADAPTER; k <= XA_BLOCK_AVERAGE; k++)
                    if (allowed_children(s->kind) & (1u << k)) {
                        if (allowed[0]) strcat(allowed, ", ");
                        strcat(allowed, BLOCK_NAMES[k]);
                    }
                return xa_error_set(XA_STATUS_CONFIG, where, allowed, NULL,
                                    "cannot nest %s inside %s", block_name(c->kind),
                                    block_name(s->kind));
            }
            if (lvl >= 1 && c->kind != XA_BLOCK_STACK)
                return xa_error_set(XA_STATUS_CONFIG, where, "only Stack or adapters below level 1",
                                    NULL, "setup too deep: %s at level %d", block_name(c->kind),
                                    lvl + 1);
        }
        if (s->kind == XA_BLOCK_SPLIT || s->kind == XA_BLOCK_BATCHSPLIT) {
            if (s->sizes[i] <= 0 || s->sizes[i] > XA_SETUP_MAX_SIZE)
                return xa_error_set(XA_STATUS_CONFIG, where, "sizes from 1 to 1048576", NULL,
                                    "%s size %d of child %d", block_name(s->kind), s->sizes[i], i);
        }
        if (s->kind == XA_BLOCK_AVERAGE && (!isfinite(s->weights[i]) || s->weights[i] < 0))
            return xa_error_set(XA_STATUS_CONFIG, where, "finite weights >= 0", NULL,
                                "Average weight %g of child %d", s->weights[i], i);
        xa_status st = check_rec(c, lvl + 1, where);
        if (st) return st;
    }
    return XA_STATUS_OK;
}

/* Depth first (iteratively bounded): check_rec and the printers recurse over the tree. */
static int depth_of(const xa_setup *s, int limit) {
    if (s->kind == XA_BLOCK_ADAPTER) return 0;
    if (limit <= 0) return 1;
    int d = 0;
    for (int i = 0; i < s->n; i++) {
        int k = depth_of(s->child[i], limit - 1);
        if (k > d) d = k;
    }
    return d + 1;
}

xa_status xa_setup_check(const xa_setup *s, const char *where) {
    if (!where) where = "adapter setup";
    if (!s) return xa_error_set(XA_STATUS_USAGE, where, "a setup", NULL, "no setup");
    if (depth_of(s, XA_SETUP_MAX_DEPTH) > XA_SETUP_MAX_DEPTH)
        return xa_error_set(XA_STATUS_CONFIG, where, "at most 8 nested blocks", NULL,
                            "setup nested too deep");
    return check_rec(s, 0, where);
}

const char *xa_setup_first(const xa_setup *s) {
    while (s && s->kind != XA_BLOCK_ADAPTER) s = s->n ? s->child[0] : NULL;
    return s ? s->name : NULL;
}

const char *xa_setup_last(const xa_setup *s) {
    while (s && s->kind != XA_BLOCK_ADAPTER) s = s->n ? s->child[s->n - 1] : NULL;
    return s ? s->name : NULL;
}

int xa_setup_uses(const xa_setup *s, const char *name) {
    if (!s) return 0;
    if (s->kind == XA_BLOCK_ADAPTER) return !strcmp(s->name, name);
    for (int i = 0; i < s->n; i++)
        if (xa_setup_uses(s->child[i], name)) return 1;
    return 0;
}

const char *xa_setup_fusion_name(const xa_setup *s, char *buf, size_t n) {
    if (s->name[0]) {
        snprintf(buf, n, "%s", s->name);
        return buf;
    }
    sbuf b = {buf, n, 0};
    if (n) buf[0] = 0;
    for (int i = 0; i < s->n; i++) put(&b, "%s%s", i ? "," : "", xa_setup_last(s->child[i]));
    return buf;
}
