/* config: YAML recipes -> xa_recipe (config.h). The only file of libxadapt that includes <yaml.h>.
 *
 * Pipeline of xa_recipe_load:
 *  1. libyaml's loader reads each file into a yaml_document_t, which is copied into a small tree of
 *     our own (mapping / sequence / scalar, each node with its file, 1-based line and column) and
 *     the document is freed at once. Everything the tree holds lives in one pool freed at the end.
 *  2. `extends` (a path or a list of paths, relative to the file that names them) are loaded
 *     recursively and merged in order, then the extending file over them: mappings deep-merged,
 *     everything else (lists included) replaced by the extending side. Cycles are errors.
 *  3. --set "a.b.c=value" overrides edit the merged tree; the value is parsed as YAML; list items
 *     are addressed by index, phases also by kind name (phases.task.lr). Nodes made by --set carry
 *     the --set string as their "file", so an error about them names it.
 *  4. A schema walk fills xa_recipe: unknown keys (with a did-you-mean hint and the allowed keys),
 *     wrong types and out-of-range values are CONFIG errors naming path:line:col; paths are
 *     resolved against the directory of the file that declared them, or the working directory for
 *     --set values, and normalised lexically to absolute paths.
 * xa_recipe_write prints the resolved struct back as YAML (every key, strings double-quoted, reals
 * in the shortest form that reads back exactly) and renames it into place.
 *
 * Does not: validate BnConfig / AdapterFusionConfig override keys (io's xa_bn_config_set does that;
 * config may not call io, DESIGN.md §3), support YAML merge keys (<<), tags or several documents
 * in one file, or follow symlinks when normalising paths (only cycle detection uses realpath).
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#define MAX_DEPTH   64      /* nesting of YAML collections */
#define MAX_EXTENDS 16      /* depth of the extends chain */
#define MAX_NODES   1000000 /* YAML nodes in all (alias bombs) */
#define JSON_CAP    ((int)sizeof(((xa_cfg_kv *)0)->json))

/* ==== small helpers ==== */

static xa_status oom(void) {
    return xa_error_set(XA_STATUS_NOMEM, "config", NULL, NULL, "out of memory");
}

/* Levenshtein distance of two short strings (64 when either is over 63 characters). */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of the NULL-terminated list to s when close enough to suggest, else NULL. */
static const char *closest(const char *s, const char *const *list) {
    const char *best = NULL;
    size_t best_d = 64;
    for (; *list; list++) {
        size_t d = edit_distance(s, *list);
        if (d < best_d) {
            best_d = d;
            best = *list;
        }
    }
    return best && best_d <= strlen(s) / 3 + 1 && best_d < 4 ? best : NULL;
}

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++) {
        if (strcmp(s, *list) == 0) return 1;
    }
    return 0;
}

static void join_list(char *buf, size_t n, const char *prefix, const char *const *list) {
    size_t len = (size_t)snprintf(buf, n, "%s", prefix);
    for (int i = 0; list[i] && len < n; i++) {
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", list[i]);
    }
}

/* ==== the pool and the tree ==== */

typedef struct pool_blk {
    struct pool_blk *next;
    void *pad; /* keeps the payload 16-byte aligned */
} pool_blk;

typedef struct cfg_ctx {
    pool_blk *blocks;
    long n_nodes; /* YAML nodes copied so far: aliases could otherwise multiply them */
} cfg_ctx;

static void *ctx_alloc(cfg_ctx *c, size_t n) {
    pool_blk *b = calloc(1, sizeof *b + n);
    if (!b) return NULL;
    b->next = c->blocks;
    c->blocks = b;
    return b + 1;
}

static void ctx_free(cfg_ctx *c) {
    while (c->blocks) {
        pool_blk *next = c->blocks->next;
        free(c->blocks);
        c->blocks = next;
    }
}

static char *ctx_strndup(cfg_ctx *c, const char *s, size_t n) {
    char *d = ctx_alloc(c, n + 1);
    if (d) memcpy(d, s, n);
    return d;
}

static char *ctx_strdup(cfg_ctx *c, const char *s) {
    return ctx_strndup(c, s, strlen(s));
}

typedef enum node_kind { N_SCALAR, N_SEQ, N_MAP } node_kind;

typedef struct cnode cnode;

/* A mapping entry (key != NULL) or a sequence item (key == NULL). */
typedef struct centry {
    const char *key;
    const char *kfile; /* where the key was written */
    int kline, kcol;
    cnode *val;
} centry;

struct cnode {
    node_kind kind;
    const char *file; /* the file, or the --set string for nodes made by --set (line 0) */
    int line, col;    /* 1-based; 0 for --set */
    const char *text; /* scalar */
    int quoted;       /* scalar written quoted or as a block: always a string */
    int n, cap;
    centry *items;
};

static cnode *new_node(cfg_ctx *c, node_kind kind, const char *file, int line, int col) {
    cnode *n = ctx_alloc(c, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    n->text = "";
    return n;
}

static centry *node_append(cfg_ctx *c, cnode *n, const char *key, const char *kfile, int kline,
                           int kcol, cnode *val) {
    if (n->n == n->cap) {
        int cap = n->cap ? 2 * n->cap : 8;
        centry *items = ctx_alloc(c, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        if (n->n) memcpy(items, n->items, (size_t)n->n * sizeof *items);
        n->items = items;
        n->cap = cap;
    }
    centry *e = &n->items[n->n++];
    e->key = key;
    e->kfile = kfile;
    e->kline = kline;
    e->kcol = kcol;
    e->val = val;
    return e;
}

static centry *map_find(const cnode *m, const char *key) {
    if (!m || m->kind != N_MAP) return NULL;
    for (int i = 0; i < m->n; i++) {
        if (strcmp(m->items[i].key, key) == 0) return &m->items[i];
    }
    return NULL;
}

/* YAML 1.1 null: an unquoted empty scalar, ~ or null. */
static int is_null(const cnode *v) {
    if (!v) return 1;
    if (v->kind != N_SCALAR || v->quoted) return 0;
    const char *t = v->text;
    return !t[0] || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

static const char *kind_word(const cnode *v) {
    if (is_null(v)) return "empty (null)";
    return v->kind == N_MAP ? "a mapping" : v->kind == N_SEQ ? "a list" : "a scalar";
}

/* "file:line:col", or the --set string for line 0. */
static const char *fmt_pos(char *buf, size_t n, const char *file, int line, int col) {
    if (line > 0) {
        snprintf(buf, n, "%s:%d:%d", file, line, col);
    } else {
        snprintf(buf, n, "%s", file && file[0] ? file : "default");
    }
    return buf;
}

static const char *npos(const cnode *v, char *buf, size_t n) {
    return fmt_pos(buf, n, v->file, v->line, v->col);
}

static const char *kpos(const centry *e, char *buf, size_t n) {
    return fmt_pos(buf, n, e->kfile, e->kline, e->kcol);
}

static void set_pos(xa_cfg_pos *p, const char *file, int line, int col) {
    snprintf(p->file, sizeof p->file, "%s", file ? file : "");
    p->line = line;
    p->col = col;
}

/* A short rendering of a node for messages: the scalar text, or "a list" / "a mapping". */
static const char *shown(const cnode *v, char *buf, size_t n) {
    if (v->kind == N_SCALAR) {
        snprintf(buf, n, "'%s'", v->text);
        if (strlen(v->text) + 2 >= n && n > 5) memcpy(buf + n - 5, "...'", 5);
    } else {
        snprintf(buf, n, "%s", kind_word(v));
    }
    return buf;
}

/* ==== YAML -> tree ==== */

static xa_status from_yaml(cfg_ctx *c, yaml_document_t *doc, yaml_node_t *yn, const char *file,
                           int depth, cnode **out) {
    char where[XA_ERROR_FIELD];
    int line = (int)yn->start_mark.line + 1, col = (int)yn->start_mark.column + 1;
    if (depth > MAX_DEPTH) {
        return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, file, line, col),
                            "at most 64 nested levels", NULL, "the YAML is nested too deeply");
    }
    if (++c->n_nodes > MAX_NODES) {
        return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, file, line, col),
                            "at most a million YAML nodes", "are aliases (*name) multiplying it?",
                            "the recipe is too large");
    }
    cnode *n = NULL;
    switch (yn->type) {
    case YAML_SCALAR_NODE:
        n = new_node(c, N_SCALAR, file, line, col);
        if (!n) return oom();
        if (memchr(yn->data.scalar.value, '\0', yn->data.scalar.length)) {
            return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, file, line, col),
                                "text without NUL characters", NULL, "a scalar holds a NUL byte");
        }
        n->text = ctx_strndup(c, (const char *)yn->data.scalar.value, yn->data.scalar.length);
        if (!n->text) return oom();
        n->quoted = yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
                    yn->data.scalar.style != YAML_ANY_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_NODE:
        n = new_node(c, N_SEQ, file, line, col);
        if (!n) return oom();
        for (yaml_node_item_t *it = yn->data.sequence.items.start; it < yn->data.sequence.items.top;
             it++) {
            cnode *item = NULL;
            xa_status st =
                from_yaml(c, doc, yaml_document_get_node(doc, *it), file, depth + 1, &item);
            if (st) return st;
            if (!node_append(c, n, NULL, file, item->line, item->col, item)) return oom();
        }
        break;
    case YAML_MAPPING_NODE:
        n = new_node(c, N_MAP, file, line, col);
        if (!n) return oom();
        for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top;
             p++) {
            yaml_node_t *yk = yaml_document_get_node(doc, p->key);
            int kl = (int)yk->start_mark.line + 1, kc = (int)yk->start_mark.column + 1;
            if (yk->type != YAML_SCALAR_NODE) {
                return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, file, kl, kc),
                                    "a plain key", NULL, "a mapping key is a collection");
            }
            char *key = ctx_strndup(c, (const char *)yk->data.scalar.value, yk->data.scalar.length);
            if (!key) return oom();
            const centry *dup = map_find(n, key);
            if (dup) {
                return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, file, kl, kc),
                                    "each key once per mapping", NULL,
                                    "duplicate key '%s' (first at line %d)", key, dup->kline);
            }
            cnode *val = NULL;
            xa_status st =
                from_yaml(c, doc, yaml_document_get_node(doc, p->value), file, depth + 1, &val);
            if (st) return st;
            if (!node_append(c, n, key, file, kl, kc, val)) return oom();
        }
        break;
    default:
        return xa_error_set(XA_STATUS_FORMAT, fmt_pos(where, sizeof where, file, line, col), NULL,
                            NULL, "empty YAML node");
    }
    *out = n;
    return XA_STATUS_OK;
}

/* Parse one YAML document from `f` (a file) or `text` (a string) into a tree. `label` names the
 * source in positions. An empty document gives NULL. */
static xa_status parse_yaml(cfg_ctx *c, const char *label, FILE *f, const char *text, cnode **out) {
    yaml_parser_t parser;
    yaml_document_t doc;
    char where[XA_ERROR_FIELD];
    xa_status st = XA_STATUS_OK;
    int have_doc = 0;
    *out = NULL;
    if (!yaml_parser_initialize(&parser)) return oom();
    if (f) {
        yaml_parser_set_input_file(&parser, f);
    } else {
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    }
    if (!yaml_parser_load(&parser, &doc)) goto yaml_fail;
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && (st = from_yaml(c, &doc, root, label, 0, out))) goto done;
    /* A second document is a mistake ("---" in the middle of a recipe). */
    yaml_document_t doc2;
    if (!yaml_parser_load(&parser, &doc2)) goto yaml_fail;
    int more = yaml_document_get_root_node(&doc2) != NULL;
    int line2 = (int)doc2.start_mark.line + 1, col2 = (int)doc2.start_mark.column + 1;
    yaml_document_delete(&doc2);
    if (more) {
        st = xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, label, line2, col2),
                          "one YAML document", "remove the '---' line", "a second YAML document");
    }
    goto done;

yaml_fail:
    if (parser.error == YAML_MEMORY_ERROR) {
        st = oom();
    } else {
        fmt_pos(where, sizeof where, label, (int)parser.problem_mark.line + 1,
                (int)parser.problem_mark.column + 1);
        /* one place: libyaml's problem mark (the context mark, where the construct began, is
         * named by its kind only); a configuration error (exit code 2) */
        if (parser.context) {
            st = xa_error_set(XA_STATUS_CONFIG, where, "valid YAML", NULL, "YAML syntax error: %s %s",
                              parser.problem ? parser.problem : "error", parser.context);
        } else {
            st = xa_error_set(XA_STATUS_CONFIG, where, "valid YAML", NULL, "YAML syntax error: %s",
                              parser.problem ? parser.problem : "error");
        }
    }
done:
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return st;
}

static xa_status parse_yaml_file(cfg_ctx *c, const char *path, cnode **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return xa_error_set(e == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path,
                            "a readable YAML file", NULL, "cannot open '%s': %s", path,
                            strerror(e));
    }
    const char *label = ctx_strdup(c, path);
    xa_status st = label ? parse_yaml(c, label, f, NULL, out) : oom();
    fclose(f);
    return st;
}

/* ==== paths ==== */

/* Lexical normalisation: collapse "//", "." and "dir/.."; keeps leading ".." of relative paths. */
static void path_normalize(char *p) {
    int abs = p[0] == '/';
    char *segs[512];
    int ns = 0;
    char *save = NULL;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *s = strtok_r(buf, "/", &save); s && ns < 512; s = strtok_r(NULL, "/", &save)) {
        if (strcmp(s, ".") == 0) continue;
        if (strcmp(s, "..") == 0) {
            if (ns > 0 && strcmp(segs[ns - 1], "..") != 0) {
                ns--;
                continue;
            }
            if (abs) continue; /* "/.." is "/" */
        }
        segs[ns++] = s;
    }
    size_t len = 0, cap = strlen(p) + 1; /* the result is never longer than the input */
    if (abs) p[len++] = '/';
    for (int i = 0; i < ns; i++) {
        len += (size_t)snprintf(p + len, cap - len, "%s%s", i ? "/" : "", segs[i]);
    }
    if (len == 0) p[len++] = '.';
    p[len] = '\0';
}

/* dir_of("a/b/c.yaml") = "a/b"; dir_of("c.yaml") = ".". */
static void dir_of(char *dst, size_t n, const char *file) {
    const char *slash = strrchr(file, '/');
    if (!slash) {
        snprintf(dst, n, ".");
    } else if (slash == file) {
        snprintf(dst, n, "/");
    } else {
        snprintf(dst, n, "%.*s", (int)(slash - file), file);
    }
}

/* out = normalize(base_dir / rel), absolute when `absolute` (the working directory prefixed).
 * Returns 0 when it does not fit. */
static int path_join(char *out, size_t n, const char *base_dir, const char *rel, int absolute) {
    char tmp[4 * XA_CFG_PATH];
    int w;
    if (rel[0] == '/') {
        w = snprintf(tmp, sizeof tmp, "%s", rel);
    } else if (base_dir[0] == '/' || !absolute) {
        w = snprintf(tmp, sizeof tmp, "%s/%s", base_dir, rel);
    } else {
        char cwd[XA_CFG_PATH];
        if (!getcwd(cwd, sizeof cwd)) return 0;
        w = snprintf(tmp, sizeof tmp, "%s/%s/%s", cwd, base_dir, rel);
    }
    if (w < 0 || (size_t)w >= sizeof tmp) return 0;
    path_normalize(tmp);
    if (strlen(tmp) >= n) return 0;
    memcpy(out, tmp, strlen(tmp) + 1);
    return 1;
}

/* ==== extends ==== */

/* A new mapping: base's entries, then over's (deep-merging mapping into mapping, replacing the
 * rest). Neither input is modified. */
static cnode *merge(cfg_ctx *c, const cnode *base, const cnode *over) {
    cnode *m = new_node(c, N_MAP, over->file, over->line, over->col);
    if (!m) return NULL;
    for (int i = 0; i < base->n; i++) {
        const centry *e = &base->items[i];
        if (!node_append(c, m, e->key, e->kfile, e->kline, e->kcol, e->val)) return NULL;
    }
    for (int i = 0; i < over->n; i++) {
        const centry *e = &over->items[i];
        centry *d = map_find(m, e->key);
        cnode *val = e->val;
        if (d && d->val->kind == N_MAP && val->kind == N_MAP) {
            if (!(val = merge(c, d->val, val))) return NULL;
        }
        if (d) {
            d->val = val;
            d->kfile = e->kfile;
            d->kline = e->kline;
            d->kcol = e->kcol;
        } else if (!node_append(c, m, e->key, e->kfile, e->kline, e->kcol, val)) {
            return NULL;
        }
    }
    return m;
}

static xa_status load_tree(cfg_ctx *c, const char *path, char **chain, int depth, cnode **out);

static xa_status extend_one(cfg_ctx *c, const char *path, const cnode *v, char **chain, int depth,
                            cnode **out) {
    char where[XA_ERROR_FIELD], dir[XA_CFG_PATH], file[XA_CFG_PATH], sv[XA_ERROR_FIELD];
    npos(v, where, sizeof where);
    if (v->kind != N_SCALAR || is_null(v)) {
        return xa_error_set(XA_STATUS_CONFIG, where, "a file path or a list of file paths", NULL,
                            "'extends' holds %s", shown(v, sv, sizeof sv));
    }
    dir_of(dir, sizeof dir, path);
    if (!path_join(file, sizeof file, dir, v->text, 0)) {
        return xa_error_set(XA_STATUS_CONFIG, where, "a shorter path", NULL,
                            "'extends' path '%s' is too long", v->text);
    }
    char *real = realpath(file, NULL);
    if (!real) {
        int e = errno;
        /* name the absolute path tried: the directory of the including file, resolved */
        char tried[XA_CFG_PATH];
        char *rdir = realpath(dir[0] ? dir : ".", NULL);
        if (!rdir || !path_join(tried, sizeof tried, rdir, v->text, 0)) snprintf(tried, sizeof tried, "%s", file);
        free(rdir);
        return xa_error_set(e == ENOENT ? XA_STATUS_CONFIG : XA_STATUS_IO, where,
                            "an existing YAML file, relative to the file that names it",
                            "a copied recipe? extends paths are relative to the file that names them",
                            "extends file '%s' %s: tried %s", v->text,
                            e == ENOENT ? "not found" : "cannot be read", tried);
    }
    for (int i = 0; i <= depth; i++) {
        if (strcmp(chain[i], real) == 0) {
            char cyc[XA_ERROR_FIELD];
            size_t len = 0;
            for (int k = i; k <= depth && len < sizeof cyc; k++) {
                len += (size_t)snprintf(cyc + len, sizeof cyc - len, "%s -> ", chain[k]);
            }
            if (len < sizeof cyc) snprintf(cyc + len, sizeof cyc - len, "%s", real);
            free(real);
            return xa_error_set(XA_STATUS_CONFIG, where,
                                "extends files that do not include "
                                "each other",
                                NULL, "extends cycle: %s", cyc);
        }
    }
    free(real);
    if (depth + 1 >= MAX_EXTENDS) {
        return xa_error_set(XA_STATUS_CONFIG, where, "at most 16 levels of extends", NULL,
                            "extends nested too deeply at '%s'", v->text);
    }
    return load_tree(c, file, chain, depth + 1, out);
}

/* Load `path` with its extends applied. chain[0..depth) hold the real paths of the including
 * files; chain[depth] is set here. */
static xa_status load_tree(cfg_ctx *c, const char *path, char **chain, int depth, cnode **out) {
    char where[XA_ERROR_FIELD];
    cnode *root = NULL;
    xa_status st = parse_yaml_file(c, path, &root);
    if (st) return st;
    if (!root) {
        const char *label = ctx_strdup(c, path);
        if (!label || !(root = new_node(c, N_MAP, label, 1, 1))) return oom();
    }
    if (root->kind != N_MAP) {
        return xa_error_set(XA_STATUS_CONFIG, npos(root, where, sizeof where),
                            "a mapping of recipe keys (name: ..., model: ...)", NULL,
                            "the top level of '%s' is %s", path, kind_word(root));
    }
    const centry *ext = map_find(root, "extends");
    if (!ext) {
        *out = root;
        return XA_STATUS_OK;
    }
    char *real = realpath(path, NULL);
    chain[depth] = real ? ctx_strdup(c, real) : ctx_strdup(c, path);
    free(real);
    if (!chain[depth]) return oom();

    cnode *acc = NULL;
    const cnode *ev = ext->val;
    int n = ev->kind == N_SEQ ? ev->n : 1;
    for (int i = 0; i < n; i++) {
        cnode *base = NULL;
        st = extend_one(c, path, ev->kind == N_SEQ ? ev->items[i].val : ev, chain, depth, &base);
        if (st) return st;
        if (acc && !(base = merge(c, acc, base))) return oom();
        acc = base;
    }
    /* root without its extends key, merged over the bases */
    cnode *own = new_node(c, N_MAP, root->file, root->line, root->col);
    if (!own) return oom();
    for (int i = 0; i < root->n; i++) {
        const centry *e = &root->items[i];
        if (e == ext) continue;
        if (!node_append(c, own, e->key, e->kfile, e->kline, e->kcol, e->val)) return oom();
    }
    if (acc && !(own = merge(c, acc, own))) return oom();
    *out = own;
    return XA_STATUS_OK;
}

/* ==== --set ==== */

static int parse_index(const char *s, long *out) {
    if (!s[0] || strlen(s) > 6) return 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return 0;
    }
    *out = strtol(s, NULL, 10);
    return 1;
}

/* Re-stamp a --set value tree with the --set label (line 0). */
static void stamp(cnode *v, const char *label) {
    v->file = label;
    v->line = v->col = 0;
    for (int i = 0; i < v->n; i++) {
        v->items[i].kfile = label;
        v->items[i].kline = v->items[i].kcol = 0;
        stamp(v->items[i].val, label);
    }
}

static xa_status apply_set(cfg_ctx *c, cnode *root, const char *set) {
    char label_buf[XA_ERROR_FIELD];
    snprintf(label_buf, sizeof label_buf, "--set '%s'", set);
    const char *label = ctx_strdup(c, label_buf);
    if (!label) return oom();
    const char *eq = strchr(set, '=');
    if (!eq || eq == set) {
        return xa_error_set(XA_STATUS_USAGE, label, "KEY.PATH=VALUE, e.g. phases.task.lr=3e-4",
                            NULL, "--set '%s' has no %s", set, eq ? "key before '='" : "'='");
    }
    char *path = ctx_strndup(c, set, (size_t)(eq - set));
    if (!path) return oom();
    cnode *val = NULL;
    xa_status st = parse_yaml(c, label, NULL, eq + 1, &val);
    if (st) {
        xa_error e = *xa_error_last();
        return xa_error_set(XA_STATUS_USAGE, label,
                            "a YAML value: a scalar or a flow collection "
                            "like [de, fr] or {a: 1}",
                            NULL, "bad value in --set: %s", e.what);
    }
    if (!val && !(val = new_node(c, N_SCALAR, label, 0, 0))) return oom();
    stamp(val, label);

    /* split the key path */
    char *segs[32];
    int ns = 0;
    for (char *s = path;; ns++) {
        if (ns == 32) {
            return xa_error_set(XA_STATUS_USAGE, label, "a shorter key path", NULL,
                                "--set key path '%s' is too deep", path);
        }
        char *dot = strchr(s, '.');
        if (dot) *dot = '\0';
        segs[ns] = s;
        if (!s[0]) {
            return xa_error_set(XA_STATUS_USAGE, label, "KEY.PATH=VALUE with non-empty keys", NULL,
                                "--set '%s' has an empty key", set);
        }
        if (!dot) {
            ns++;
            break;
        }
        s = dot + 1;
    }

    cnode **slot = NULL; /* the value being walked, as a writable slot */
    cnode *cur = root;
    for (int i = 0; i < ns; i++) {
        const char *seg = segs[i];
        int last = i == ns - 1;
        if (slot && is_null(cur)) {
            /* an empty section (phase params, "model:") becomes a mapping */
            if (!(cur = new_node(c, N_MAP, label, 0, 0))) return oom();
            *slot = cur;
        }
        if (cur->kind == N_MAP) {
            centry *e = map_find(cur, seg);
            if (!e) {
                cnode *nv = last ? val : new_node(c, N_MAP, label, 0, 0);
                if (!nv || !(e = node_append(c, cur, seg, label, 0, 0, nv))) return oom();
            } else if (last) {
                e->val = val;
                e->kfile = label;
                e->kline = e->kcol = 0;
            }
            slot = &e->val;
            cur = e->val;
            continue;
        }
        if (cur->kind == N_SEQ) {
            long idx;
            centry *item = NULL;
            if (parse_index(seg, &idx)) {
                if (idx >= cur->n) {
                    return xa_error_set(XA_STATUS_CONFIG, label, "an existing list index", NULL,
                                        "--set index %ld is out of range: the list has %d items",
                                        idx, cur->n);
                }
                item = &cur->items[idx];
                /* phases.2.lr means the params of phase 2; phases.2.task.lr works too */
                if (!last && item->val->kind == N_MAP && item->val->n == 1) {
                    if (strcmp(segs[i + 1], item->val->items[0].key) == 0) i++;
                    if (i == ns - 1) {
                        item->val->items[0].val = val;
                        return XA_STATUS_OK;
                    }
                    slot = &item->val->items[0].val;
                    cur = *slot;
                    continue;
                }
            } else {
                for (int k = 0; k < cur->n && !item; k++) {
                    cnode *iv = cur->items[k].val;
                    if ((iv->kind == N_MAP && iv->n == 1 && strcmp(iv->items[0].key, seg) == 0) ||
                        (iv->kind == N_SCALAR && !iv->quoted && strcmp(iv->text, seg) == 0)) {
                        item = &cur->items[k];
                    }
                }
                if (!item) {
                    return xa_error_set(XA_STATUS_CONFIG, label,
                                        "a list index, or the kind of a declared phase", NULL,
                                        "--set names '%s' but no list item has that name", seg);
                }
                if (item->val->kind == N_SCALAR) { /* "- eval" -> {eval: null} */
                    cnode *m = new_node(c, N_MAP, item->val->file, item->val->line, item->val->col);
                    cnode *nul = new_node(c, N_SCALAR, label, 0, 0);
                    if (!m || !nul ||
                        !node_append(c, m, item->val->text, item->val->file, item->val->line,
                                     item->val->col, nul)) {
                        return oom();
                    }
                    item->val = m;
                }
                if (last) {
                    item->val->items[0].val = val;
                    return XA_STATUS_OK;
                }
                slot = &item->val->items[0].val;
                cur = *slot;
                continue;
            }
            if (last) {
                item->val = val;
                return XA_STATUS_OK;
            }
            slot = &item->val;
            cur = item->val;
            continue;
        }
        return xa_error_set(XA_STATUS_CONFIG, label, "a key path through mappings and lists", NULL,
                            "--set goes into '%s', which is a scalar", i ? segs[i - 1] : seg);
    }
    return XA_STATUS_OK;
}

/* ==== schema walk: typed readers ==== */

/* A section being read: its node (NULL when absent), its dotted name for messages, and where to
 * point when one of its required keys is missing. */
typedef struct section {
    const cnode *map;
    const char *name; /* "" for the top level */
    const char *file;
    int line, col;
} section;

static xa_status unknown_key(const centry *e, const char *name, const char *const *allowed) {
    char where[XA_ERROR_FIELD], expected[XA_ERROR_FIELD], hint[XA_ERROR_FIELD];
    join_list(expected, sizeof expected, "one of: ", allowed);
    const char *best = closest(e->key, allowed);
    if (best) snprintf(hint, sizeof hint, "did you mean '%s'?", best);
    if (name[0]) {
        return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where), expected,
                            best ? hint : NULL, "unknown key '%s' in '%s'", e->key, name);
    }
    return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where), expected,
                        best ? hint : NULL, "unknown key '%s' at the top level", e->key);
}

/* Check that the section is a mapping (or absent / null) holding only allowed keys. */
static xa_status check_section(section *s, const centry *owner, const char *name,
                               const char *const *allowed) {
    char where[XA_ERROR_FIELD];
    s->name = name;
    if (owner) {
        s->file = owner->kfile;
        s->line = owner->kline;
        s->col = owner->kcol;
    }
    if (!s->map || is_null(s->map)) {
        s->map = NULL;
        return XA_STATUS_OK;
    }
    if (s->map->kind != N_MAP) {
        char sv[128];
        return xa_error_set(XA_STATUS_CONFIG, npos(s->map, where, sizeof where),
                            "a mapping of keys", NULL, "'%s' is %s, not a mapping", name,
                            shown(s->map, sv, sizeof sv));
    }
    for (int i = 0; i < s->map->n; i++) {
        if (!in_list(s->map->items[i].key, allowed))
            return unknown_key(&s->map->items[i], name, allowed);
    }
    return XA_STATUS_OK;
}

/* The value of key in s, or NULL when absent or null. */
static const cnode *sget(const section *s, const char *key) {
    const centry *e = map_find(s->map, key);
    return e && !is_null(e->val) ? e->val : NULL;
}

static const centry *sentry(const section *s, const char *key) {
    return map_find(s->map, key);
}

static xa_status missing(const section *s, const char *key, const char *expected) {
    char where[XA_ERROR_FIELD];
    const centry *e = map_find(s->map, key);
    if (e) { /* present but empty */
        return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where), expected, NULL,
                            "required key '%s%s%s' is empty", s->name, s->name[0] ? "." : "", key);
    }
    return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, s->file, s->line, s->col),
                        expected, NULL, "missing required key '%s%s%s'", s->name,
                        s->name[0] ? "." : "", key);
}

static xa_status bad_value(const cnode *v, const char *label, const char *expected,
                           const char *hint) {
    char where[XA_ERROR_FIELD], sv[160];
    return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where), expected, hint,
                        "'%s' is %s", label, shown(v, sv, sizeof sv));
}

static xa_status rd_str(const cnode *v, const char *label, char *dst, size_t cap) {
    if (v->kind != N_SCALAR) return bad_value(v, label, "a string", NULL);
    if (strlen(v->text) >= cap) {
        char where[XA_ERROR_FIELD];
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where), "a shorter string",
                            NULL, "'%s' is %zu characters long, over %zu", label, strlen(v->text),
                            cap - 1);
    }
    memcpy(dst, v->text, strlen(v->text) + 1);
    return XA_STATUS_OK;
}

/* A plain scalar that is an integer (decimal, optional sign). */
static int scalar_i64(const cnode *v, int64_t *out) {
    if (v->kind != N_SCALAR || v->quoted || !v->text[0]) return 0;
    errno = 0;
    char *end = NULL;
    long long x = strtoll(v->text, &end, 10);
    if (errno || *end || isspace((unsigned char)v->text[0])) return 0;
    *out = (int64_t)x;
    return 1;
}

static int scalar_real(const cnode *v, double *out) {
    if (v->kind != N_SCALAR || v->quoted || !v->text[0]) return 0;
    const char *t = v->text;
    /* strtod also reads "inf", "nan" and hex: accept decimal numbers only */
    for (const char *p = t; *p; p++) {
        if (!strchr("0123456789+-.eE", *p)) return 0;
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(t, &end);
    if (*end || errno == ERANGE || !isfinite(x)) return 0;
    *out = x;
    return 1;
}

static xa_status rd_i64(const cnode *v, const char *label, int64_t lo, int64_t hi,
                        const char *expected, int64_t *out) {
    int64_t x;
    if (!scalar_i64(v, &x) || x < lo || x > hi) return bad_value(v, label, expected, NULL);
    *out = x;
    return XA_STATUS_OK;
}

static xa_status rd_int(const cnode *v, const char *label, int lo, int hi, const char *expected,
                        int *out) {
    int64_t x;
    xa_status st = rd_i64(v, label, lo, hi, expected, &x);
    if (!st) *out = (int)x;
    return st;
}

static xa_status rd_u64(const cnode *v, const char *label, uint64_t *out) {
    const char *expected = "a non-negative integer (a seed)";
    if (v->kind != N_SCALAR || v->quoted || !isdigit((unsigned char)v->text[0])) {
        return bad_value(v, label, expected, NULL);
    }
    errno = 0;
    char *end = NULL;
    unsigned long long x = strtoull(v->text, &end, 10);
    if (errno || *end) return bad_value(v, label, expected, NULL);
    *out = (uint64_t)x;
    return XA_STATUS_OK;
}

/* A real in the interval lo..hi; lo_open / hi_open exclude the bound. */
static xa_status rd_real(const cnode *v, const char *label, double lo, double hi, int lo_open,
                         int hi_open, const char *expected, double *out) {
    double x;
    if (!scalar_real(v, &x)) return bad_value(v, label, expected, NULL);
    if (x < lo || (lo_open && x == lo) || x > hi || (hi_open && x == hi)) {
        return bad_value(v, label, expected, NULL);
    }
    *out = x;
    return XA_STATUS_OK;
}

static xa_status rd_bool(const cnode *v, const char *label, int *out) {
    static const char *const t[] = {"true", "True", "TRUE", NULL};
    static const char *const f[] = {"false", "False", "FALSE", NULL};
    if (v->kind == N_SCALAR && !v->quoted && in_list(v->text, t)) {
        *out = 1;
    } else if (v->kind == N_SCALAR && !v->quoted && in_list(v->text, f)) {
        *out = 0;
    } else {
        return bad_value(v, label, "true or false", NULL);
    }
    return XA_STATUS_OK;
}

static int lang_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 15) return 0;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return 0;
    }
    return 1;
}

static xa_status rd_lang(const cnode *v, const char *label, char *dst) {
    const char *expected = "a language code: 1 to 15 of A-Z a-z 0-9 _ -";
    if (v->kind != N_SCALAR || is_null(v) || !lang_ok(v->text)) {
        return bad_value(v, label, expected, "e.g. en, de, sw, zh-yue");
    }
    snprintf(dst, 16, "%s", v->text);
    return XA_STATUS_OK;
}

/* A list of language codes, no duplicates. */
static xa_status rd_langs(const cnode *v, const char *label, char (*dst)[16], int *n) {
    char where[XA_ERROR_FIELD];
    if (v->kind != N_SEQ) {
        return bad_value(v, label, "a list of language codes, e.g. [de, fr]",
                         v->kind == N_SCALAR ? "write a one-item list as [de]" : NULL);
    }
    if (v->n > XA_CFG_MAX_LANGS) {
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where), "at most 64 languages",
                            NULL, "'%s' lists %d languages", label, v->n);
    }
    *n = 0;
    for (int i = 0; i < v->n; i++) {
        const cnode *it = v->items[i].val;
        xa_status st = rd_lang(it, label, dst[i]);
        if (st) return st;
        for (int k = 0; k < i; k++) {
            if (strcmp(dst[k], dst[i]) == 0) {
                return xa_error_set(XA_STATUS_CONFIG, npos(it, where, sizeof where),
                                    "each language once", NULL, "duplicate language '%s' in '%s'",
                                    dst[i], label);
            }
        }
        *n = i + 1;
    }
    return XA_STATUS_OK;
}

/* A path, resolved against the directory of the file that declared it (the working directory
 * for --set values) and made absolute. "" / null stay empty. */
static xa_status rd_path(const cnode *v, const char *label, char *dst) {
    char where[XA_ERROR_FIELD], dir[XA_CFG_PATH];
    if (is_null(v)) {
        dst[0] = '\0';
        return XA_STATUS_OK;
    }
    if (v->kind != N_SCALAR) return bad_value(v, label, "a path", NULL);
    if (!v->text[0]) {
        dst[0] = '\0';
        return XA_STATUS_OK;
    }
    if (v->line > 0) {
        dir_of(dir, sizeof dir, v->file);
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    if (!path_join(dst, XA_CFG_PATH, dir, v->text, 1)) {
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where),
                            "a path under 1024 characters once resolved", NULL,
                            "'%s' path '%s' is too long", label, v->text);
    }
    return XA_STATUS_OK;
}

/* ==== JSON rendering of adapter overrides ==== */

typedef struct jbuf {
    char *s;
    int n, cap, overflow;
} jbuf;

static void jput(jbuf *b, const char *fmt, ...) XA_PRINTF(2, 3);
static void jput(jbuf *b, const char *fmt, ...) {
    if (b->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->s + b->n, (size_t)(b->cap - b->n), fmt, ap);
    va_end(ap);
    if (w < 0 || w >= b->cap - b->n) {
        b->overflow = 1;
        return;
    }
    b->n += w;
}

static void jstring(jbuf *b, const char *s) {
    jput(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            jput(b, "\\%c", *p);
        } else if (*p == '\n') {
            jput(b, "\\n");
        } else if (*p == '\t') {
            jput(b, "\\t");
        } else if (*p < 0x20) {
            jput(b, "\\u%04x", *p);
        } else {
            jput(b, "%c", *p);
        }
    }
    jput(b, "\"");
}

/* The shortest %g form of x that reads back exactly. */
static void fmt_real(char *buf, size_t n, double x) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* A JSON number literal as JSON spells it: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
static int is_json_number(const char *s) {
    const char *p = s;
    if (*p == '-') p++;
    if (*p == '0') {
        p++;
    } else if (isdigit((unsigned char)*p)) {
        while (isdigit((unsigned char)*p))
            p++;
    } else {
        return 0;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

static void jscalar(jbuf *b, const cnode *v) {
    static const char *const t[] = {"true", "True", "TRUE", NULL};
    static const char *const f[] = {"false", "False", "FALSE", NULL};
    double x;
    if (v->quoted) {
        jstring(b, v->text);
    } else if (is_null(v)) {
        jput(b, "null");
    } else if (in_list(v->text, t)) {
        jput(b, "true");
    } else if (in_list(v->text, f)) {
        jput(b, "false");
    } else if (is_json_number(v->text)) {
        jput(b, "%s", v->text);
    } else if (scalar_real(v, &x)) {
        char num[40];
        fmt_real(num, sizeof num, x);
        jput(b, "%s", num);
    } else {
        jstring(b, v->text);
    }
}

/* Render an override value (a scalar, a list of scalars or a mapping of scalars) as compact
 * JSON with ", " and ": " separators, which is also valid YAML flow for xa_recipe_write. */
static xa_status render_json(const cnode *v, const char *label, char *dst) {
    char where[XA_ERROR_FIELD];
    jbuf b = {dst, 0, JSON_CAP, 0};
    dst[0] = '\0';
    if (v->kind == N_SCALAR) {
        jscalar(&b, v);
    } else {
        jput(&b, v->kind == N_SEQ ? "[" : "{");
        for (int i = 0; i < v->n; i++) {
            const cnode *it = v->items[i].val;
            if (it->kind != N_SCALAR) {
                return bad_value(it, label,
                                 "a scalar, a list of scalars or a mapping of scalars "
                                 "(a BnConfig value)",
                                 NULL);
            }
            if (i) jput(&b, ", ");
            if (v->kind == N_MAP) {
                jstring(&b, v->items[i].key);
                jput(&b, ": ");
            }
            jscalar(&b, it);
        }
        jput(&b, v->kind == N_SEQ ? "]" : "}");
    }
    if (b.overflow) {
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where),
                            "a value under 256 characters as JSON", NULL, "'%s' is too long",
                            label);
    }
    return XA_STATUS_OK;
}

/* ==== schema walk: the sections ==== */

static const char *const g_top_keys[] = {"extends", "name",     "output", "seed",
                                         "seeds",   "threads",  "precision", "model",  "languages",
                                         "data",    "adapters", "phases", NULL};
/* precision: the matrix products (tensor.h), fp32 or bf16 (bf16 operands, fp32 accumulation) */
static const char *const g_precisions[] = {"fp32", "bf16", NULL};
static const char *const g_model_keys[] = {"base", "tokenizer", "arch", "vocab_size", NULL};
static const char *const g_lang_keys[] = {"source", "targets", "unseen", NULL};
static const char *const g_data_keys[] = {"pretrain", "pairs", "lang_pairs", "mlm", "mlm_heldout", "retrieval", "task", NULL};
static const char *const g_task_keys[] = {"name",   "type",       "train",             "dev",
                                          "test",   "target_train", "fields",          "labels",
                                          "doc_stride", "max_answer_length", "n_best_size",
                                          "version_2_with_negative", "null_score_diff_threshold", NULL};
static const char *const g_field_keys[] = {"text",    "text_pair", "label",   "tokens", "tags",
                                           "premise", "question",  "choices", NULL};
static const char *const g_adapter_keys[] = {"lang", "task", "fusion", NULL};
static const char *const g_task_types[] = {"classification", "tagging", "pair_classification", "multiple_choice",
                                           "question_answering", NULL};
static const char *const g_archs[] = {"tiny", "small", "base", NULL};
static const char *const g_phase_names[] = {"pretrain", "lang", "task", "fusion", "eval", "finetune", NULL};

static xa_status read_model(xa_recipe *r, const cnode *root) {
    section s = {NULL, "", root->file, root->line, root->col};
    const centry *owner = map_find(root, "model");
    xa_status st;
    s.map = owner ? owner->val : NULL;
    if ((st = check_section(&s, owner, "model", g_model_keys))) return st;
    const cnode *v;
    if (!(v = sget(&s, "base"))) return missing(&s, "base", "a Hugging Face model directory");
    if ((st = rd_path(v, "model.base", r->base))) return st;
    if (!r->base[0]) return bad_value(v, "model.base", "a non-empty path", NULL);
    if ((v = sget(&s, "tokenizer"))) {
        if ((st = rd_path(v, "model.tokenizer", r->tokenizer))) return st;
    } else if (snprintf(r->tokenizer, sizeof r->tokenizer, "%s/sentencepiece.bpe.model", r->base) >=
               (int)sizeof r->tokenizer) {
        return missing(&s, "tokenizer", "a tokenizer path (model.base is too long to derive one)");
    } else if (access(r->tokenizer, F_OK) != 0) {
        /* a BERT / mBERT base: its WordPiece vocabulary (tokenizer/tok.h), when it has one and no
         * SentencePiece model; otherwise the SentencePiece path stays (a pretrain phase makes it) */
        char alt[sizeof r->tokenizer + 16];
        snprintf(alt, sizeof alt, "%s/vocab.txt", r->base);
        if (access(alt, F_OK) == 0 && strlen(alt) < sizeof r->tokenizer) memcpy(r->tokenizer, alt, strlen(alt) + 1);
    }
    snprintf(r->arch, sizeof r->arch, "tiny");
    if ((v = sget(&s, "arch"))) {
        size_t n = v->kind == N_SCALAR ? strlen(v->text) : 0;
        if (n > 5 && strcmp(v->text + n - 5, ".json") == 0) {
            if ((st = rd_path(v, "model.arch", r->arch))) return st;
        } else if (v->kind != N_SCALAR || !in_list(v->text, g_archs)) {
            return bad_value(v, "model.arch", "tiny, small, base or a config.json path",
                             v->kind == N_SCALAR && closest(v->text, g_archs)
                                 ? "check the spelling of the preset"
                                 : NULL);
        } else {
            snprintf(r->arch, sizeof r->arch, "%s", v->text);
        }
    }
    r->vocab_size = 8000;
    if ((v = sget(&s, "vocab_size")) &&
        (st = rd_int(v, "model.vocab_size", 8, 1 << 24, "an integer in [8, 16777216]",
                     &r->vocab_size))) {
        return st;
    }
    return XA_STATUS_OK;
}

static xa_status read_languages(xa_recipe *r, const cnode *root) {
    char where[XA_ERROR_FIELD];
    section s = {NULL, "", root->file, root->line, root->col};
    const centry *owner = map_find(root, "languages");
    xa_status st;
    s.map = owner ? owner->val : NULL;
    if ((st = check_section(&s, owner, "languages", g_lang_keys))) return st;
    const cnode *v;
    if (!(v = sget(&s, "source"))) return missing(&s, "source", "a language code, e.g. en");
    if ((st = rd_lang(v, "languages.source", r->source))) return st;
    if ((v = sget(&s, "targets"))) {
        if ((st = rd_langs(v, "languages.targets", r->targets, &r->n_targets))) return st;
        for (int i = 0; i < r->n_targets; i++) {
            if (strcmp(r->targets[i], r->source) == 0) {
                return xa_error_set(XA_STATUS_CONFIG, npos(v->items[i].val, where, sizeof where),
                                    "target languages other than the source", NULL,
                                    "source language '%s' is also listed in languages.targets",
                                    r->source);
            }
        }
    }
    if ((v = sget(&s, "unseen"))) {
        char list[XA_CFG_MAX_LANGS][16];
        int n = 0;
        if ((st = rd_langs(v, "languages.unseen", list, &n))) return st;
        for (int i = 0; i < n; i++) {
            int found = 0;
            for (int k = 0; k < r->n_targets && !found; k++) found = !strcmp(list[i], r->targets[k]);
            if (!found) {
                return xa_error_set(XA_STATUS_CONFIG, npos(v->items[i].val, where, sizeof where),
                                    "a language of languages.targets",
                                    "list the language in targets too: unseen marks targets that the base never saw",
                                    "unseen language '%s' is not a target", list[i]);
            }
            snprintf(r->unseen[r->n_unseen++], sizeof r->unseen[0], "%s", list[i]);
        }
        /* Seen targets first, then the unseen ones (each group in the recipe's order): tables
         * list the two groups one after the other, each with its mean row. */
        char order[XA_CFG_MAX_LANGS][16];
        int k = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < r->n_targets; i++) {
                int u = 0;
                for (int j = 0; j < r->n_unseen; j++) u |= !strcmp(r->unseen[j], r->targets[i]);
                if (u == pass) memcpy(order[k++], r->targets[i], sizeof order[0]);
            }
        }
        memcpy(r->targets, order, sizeof order[0] * (size_t)r->n_targets);
    }
    return XA_STATUS_OK;
}

static xa_status read_data(xa_recipe *r, const cnode *root) {
    section s = {NULL, "", root->file, root->line, root->col}, t;
    const centry *owner = map_find(root, "data");
    xa_status st;
    s.map = owner ? owner->val : NULL;
    if ((st = check_section(&s, owner, "data", g_data_keys))) return st;
    const cnode *v;
    if ((v = sget(&s, "pretrain")) && (st = rd_path(v, "data.pretrain", r->pretrain_corpus))) {
        return st;
    }
    if ((v = sget(&s, "mlm")) && (st = rd_path(v, "data.mlm", r->mlm_corpus))) return st;
    if ((v = sget(&s, "mlm_heldout")) && (st = rd_path(v, "data.mlm_heldout", r->mlm_heldout))) return st;
    if ((v = sget(&s, "pairs")) && (st = rd_path(v, "data.pairs", r->pairs))) return st;
    if ((v = sget(&s, "lang_pairs")) && (st = rd_path(v, "data.lang_pairs", r->lang_pairs))) return st;
    if (!r->lang_pairs[0]) memcpy(r->lang_pairs, r->pairs, sizeof r->lang_pairs); /* default: data.pairs */
    if ((v = sget(&s, "retrieval")) && (st = rd_path(v, "data.retrieval", r->retrieval))) return st;
    const centry *towner = sentry(&s, "task");
    t = s;
    t.map = towner ? towner->val : NULL;
    if ((st = check_section(&t, towner, "data.task", g_task_keys))) return st;
    snprintf(r->task_name, sizeof r->task_name, "task");
    if ((v = sget(&t, "name")) &&
        (st = rd_str(v, "data.task.name", r->task_name, sizeof r->task_name))) {
        return st;
    }
    r->task_type = XA_TASK_CLASSIFICATION;
    if ((v = sget(&t, "type"))) {
        if (v->kind != N_SCALAR || !in_list(v->text, g_task_types)) {
            const char *best = v->kind == N_SCALAR ? closest(v->text, g_task_types) : NULL;
            char hint[128];
            snprintf(hint, sizeof hint, "did you mean '%s'?", best ? best : "");
            return bad_value(v, "data.task.type",
                             "classification, tagging, pair_classification, multiple_choice or question_answering",
                             best ? hint : NULL);
        }
        for (int i = 0; g_task_types[i]; i++)
            if (!strcmp(v->text, g_task_types[i])) r->task_type = (xa_task_type)i;
    }
    const centry *fowner = sentry(&t, "fields");
    section fs = t;
    fs.map = fowner ? fowner->val : NULL;
    if ((st = check_section(&fs, fowner, "data.task.fields", g_field_keys))) return st;
    xa_cfg_task_fields *tf = &r->task_fields;
    memset(tf, 0, sizeof *tf);
    char *const fdst[] = {tf->text, tf->text_pair, tf->label, tf->tokens, tf->tags, tf->premise, tf->question};
    for (int i = 0; i < 7; i++) {
        char label[64];
        snprintf(label, sizeof label, "data.task.fields.%s", g_field_keys[i]);
        if ((v = sget(&fs, g_field_keys[i])) && (st = rd_str(v, label, fdst[i], sizeof tf->text))) return st;
    }
    if ((v = sget(&fs, "choices"))) {
        char where[XA_ERROR_FIELD];
        if (v->kind != N_SEQ || v->n < 2 || v->n > XA_CFG_MAX_CHOICES)
            return bad_value(v, "data.task.fields.choices", "a list of 2 to 16 keys, e.g. [choice1, choice2]", NULL);
        for (int i = 0; i < v->n; i++) {
            if ((st = rd_str(v->items[i].val, "data.task.fields.choices", tf->choices[i], sizeof tf->choices[i])))
                return st;
            if (!tf->choices[i][0])
                return xa_error_set(XA_STATUS_CONFIG, npos(v->items[i].val, where, sizeof where), "a key", NULL,
                                    "empty key in data.task.fields.choices");
        }
        tf->n_choices = v->n;
    }
    r->n_task_labels = 0;
    if ((v = sget(&t, "labels"))) {
        char where[XA_ERROR_FIELD];
        if (v->kind != N_SEQ || v->n < 1 || v->n > XA_CFG_MAX_TASK_LABELS)
            return bad_value(v, "data.task.labels", "a list of 1 to 256 label names in id order, e.g. [neg, pos]",
                             v->kind == N_SCALAR ? "write a list: [a, b]" : NULL);
        for (int i = 0; i < v->n; i++) {
            const cnode *it = v->items[i].val;
            if ((st = rd_str(it, "data.task.labels", r->task_labels[i], sizeof r->task_labels[i]))) return st;
            if (!r->task_labels[i][0])
                return xa_error_set(XA_STATUS_CONFIG, npos(it, where, sizeof where), "a label name", NULL,
                                    "empty name in data.task.labels");
            for (int k = 0; k < i; k++)
                if (!strcmp(r->task_labels[k], r->task_labels[i]))
                    return xa_error_set(XA_STATUS_CONFIG, npos(it, where, sizeof where), "each name once", NULL,
                                        "duplicate label '%s' in data.task.labels", r->task_labels[i]);
        }
        r->n_task_labels = v->n;
    }
    /* question answering: windows and the postprocessing (HF run_qa's doc_stride,
     * max_answer_length, n_best_size) */
    r->qa_doc_stride = 0;
    r->qa_max_answer_length = XA_CFG_QA_MAX_ANSWER_LENGTH;
    r->qa_n_best_size = XA_CFG_QA_N_BEST_SIZE;
    {
        const struct {
            const char *key, *label, *expected;
            int lo, hi;
            int *dst;
        } qk[] = {{"doc_stride", "data.task.doc_stride", "an integer in [1, 4096] (tokens shared by windows)", 1, 4096,
                   &r->qa_doc_stride},
                  {"max_answer_length", "data.task.max_answer_length", "an integer in [1, 4096] (tokens)", 1, 4096,
                   &r->qa_max_answer_length},
                  {"n_best_size", "data.task.n_best_size", "an integer in [1, 1000]", 1, 1000, &r->qa_n_best_size}};
        for (size_t i = 0; i < sizeof qk / sizeof *qk; i++) {
            if (!(v = sget(&t, qk[i].key))) continue;
            if (r->task_type != XA_TASK_QUESTION_ANSWERING)
                return bad_value(v, qk[i].label, "no such key for this task type",
                                 "data.task.doc_stride, max_answer_length and n_best_size are question_answering keys");
            if ((st = rd_int(v, qk[i].label, qk[i].lo, qk[i].hi, qk[i].expected, qk[i].dst))) return st;
        }
    }
    /* SQuAD 2.0's null answer at evaluation (HF run_qa's version_2_with_negative and
     * null_score_diff_threshold) */
    r->qa_version_2_with_negative = 0;
    r->qa_null_score_diff_threshold = 0.0;
    if ((v = sget(&t, "version_2_with_negative"))) {
        if (r->task_type != XA_TASK_QUESTION_ANSWERING)
            return bad_value(v, "data.task.version_2_with_negative", "no such key for this task type",
                             "version_2_with_negative is a question_answering key");
        if ((st = rd_bool(v, "data.task.version_2_with_negative", &r->qa_version_2_with_negative))) return st;
    }
    if ((v = sget(&t, "null_score_diff_threshold"))) {
        if (r->task_type != XA_TASK_QUESTION_ANSWERING)
            return bad_value(v, "data.task.null_score_diff_threshold", "no such key for this task type",
                             "null_score_diff_threshold is a question_answering key");
        if ((st = rd_real(v, "data.task.null_score_diff_threshold", -1e6, 1e6, 0, 0,
                          "a number in [-1e6, 1e6] (logits; HF's default 0.0)", &r->qa_null_score_diff_threshold)))
            return st;
        if (!r->qa_version_2_with_negative)
            return bad_value(v, "data.task.null_score_diff_threshold", "a key that goes with version_2_with_negative: true",
                             "set data.task.version_2_with_negative: true (the threshold has no effect without it)");
    }
    const struct {
        const char *key, *label;
        char *dst;
    } paths[] = {{"train", "data.task.train", r->task_train},
                 {"dev", "data.task.dev", r->task_dev},
                 {"test", "data.task.test", r->task_test},
                 {"target_train", "data.task.target_train", r->task_target_train}};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        if ((v = sget(&t, paths[i].key)) && (st = rd_path(v, paths[i].label, paths[i].dst))) {
            return st;
        }
    }
    return XA_STATUS_OK;
}

static xa_status read_adapter(xa_cfg_adapter *a, const centry *owner, const char *role) {
    char where[XA_ERROR_FIELD], label[128];
    const cnode *m = owner->val;
    xa_status st;
    if (is_null(m)) return XA_STATUS_OK; /* "fusion:" alone: not declared */
    a->present = 1;
    set_pos(&a->pos, owner->kfile, owner->kline, owner->kcol);
    snprintf(label, sizeof label, "adapters.%s", role);
    if (m->kind == N_SCALAR) { /* shorthand "lang: seq_bn_inv" */
        return rd_str(m, label, a->preset, sizeof a->preset);
    }
    if (m->kind != N_MAP) {
        return bad_value(m, label, "a mapping {preset: NAME, KEY: VALUE, ...} or a preset name",
                         NULL);
    }
    const centry *pe = map_find(m, "preset");
    if (!pe || is_null(pe->val)) {
        section s = {m, label, owner->kfile, owner->kline, owner->kcol};
        return missing(&s, "preset",
                       role[0] == 'f'
                           ? "a fusion preset: dynamic or static"
                           : "an adapter preset: seq_bn, seq_bn_inv, double_seq_bn, ...");
    }
    snprintf(label, sizeof label, "adapters.%s.preset", role);
    if ((st = rd_str(pe->val, label, a->preset, sizeof a->preset))) return st;
    for (int i = 0; i < m->n; i++) {
        const centry *e = &m->items[i];
        if (e == pe) continue;
        if (a->n_overrides == XA_CFG_MAX_OVERRIDES) {
            return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where),
                                "at most 48 overrides per adapter", NULL,
                                "too many keys in 'adapters.%s'", role);
        }
        xa_cfg_kv *kv = &a->overrides[a->n_overrides];
        if (strlen(e->key) >= sizeof kv->key) {
            return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where), "a BnConfig key",
                                NULL, "key '%.80s...' is too long", e->key);
        }
        snprintf(kv->key, sizeof kv->key, "%s", e->key);
        snprintf(label, sizeof label, "adapters.%s.%s", role, e->key);
        if ((st = render_json(e->val, label, kv->json))) return st;
        set_pos(&kv->pos, e->kfile, e->kline, e->kcol);
        a->n_overrides++;
    }
    return XA_STATUS_OK;
}

static xa_status read_adapters(xa_recipe *r, const cnode *root) {
    section s = {NULL, "", root->file, root->line, root->col};
    const centry *owner = map_find(root, "adapters");
    xa_status st;
    s.map = owner ? owner->val : NULL;
    if ((st = check_section(&s, owner, "adapters", g_adapter_keys))) return st;
    xa_cfg_adapter *roles[] = {&r->lang_adapter, &r->task_adapter, &r->fusion};
    for (int i = 0; i < 3; i++) {
        const centry *e = sentry(&s, g_adapter_keys[i]);
        if (e && (st = read_adapter(roles[i], e, g_adapter_keys[i]))) return st;
    }
    return XA_STATUS_OK;
}

/* ---- phases */

enum {
    K_PRE = 1 << XA_PHASE_PRETRAIN,
    K_LANG = 1 << XA_PHASE_LANG,
    K_TASK = 1 << XA_PHASE_TASK,
    K_FUS = 1 << XA_PHASE_FUSION,
    K_EVAL = 1 << XA_PHASE_EVAL,
    K_FT = 1 << XA_PHASE_FINETUNE,
    K_TRAIN = K_PRE | K_LANG | K_TASK | K_FUS | K_FT,
    K_ALL = K_TRAIN | K_EVAL
};

typedef enum ptype { P_I64, P_INT, P_REAL, P_BOOL, P_U64, P_LANGS, P_SETUPS, P_CHOICE, P_WEIGHTS } ptype;

/* One phase parameter: type, the phase kinds that take it, its range and the text saying so;
 * P_CHOICE: one of `choices` (a char[24] field). A P_REAL with lo >= 0 whose value is negative is
 * unset (null in the resolved recipe). */
typedef struct pfield {
    const char *key;
    ptype type;
    size_t off;
    unsigned kinds;
    double lo, hi;
    int lo_open, hi_open;
    const char *expected;
    const char *const *choices;
} pfield;

#define PF(key, type, kinds, lo, hi, lo_open, hi_open, expected)                                   \
    { #key, type, offsetof(xa_cfg_phase, key), kinds, lo, hi, lo_open, hi_open, expected, NULL }
#define PFC(key, kinds, choices, expected)                                                        \
    { #key, P_CHOICE, offsetof(xa_cfg_phase, key), kinds, 0, 0, 0, 0, expected, choices }

/* lr_scheduler: HF's SchedulerType names that optim/ implements (xa_sched_parse_kind). */
static const char *const g_schedulers[] = {"linear", "cosine", "constant", "constant_with_warmup", NULL};
/* metric_for_best_model: the names of train.h's xa_best_metric table, and per task type the ones
 * it has (extend both together). */
static const char *const g_best_metrics[] = {"accuracy", "macro_f1", "span_f1", "f1", "exact_match", "loss", NULL};
static const struct {
    const char *name;
    unsigned task_types; /* bit 0: classification, bit 1: tagging, bit 2: question answering */
} g_best_metric_types[] = {{"accuracy", 1u}, {"macro_f1", 1u}, {"span_f1", 2u}, {"f1", 4u}, {"exact_match", 4u},
                           {"loss", 7u}};

/* Hugging Face TrainingArguments / run_*.py names of phase keys: not accepted (one spelling per
 * setting in a recipe and its provenance), answered with xadapt's key; NULL: not supported. */
static const struct {
    const char *hf, *ours;
} g_hf_names[] = {
    {"learning_rate", "lr"},
    {"num_train_epochs", "epochs"},
    {"max_steps", "steps"},
    {"per_device_train_batch_size", "batch_size"},
    {"per_device_eval_batch_size", "batch_size"},
    {"train_batch_size", "batch_size"},
    {"max_grad_norm", "clip"},
    {"logging_steps", "log_every"},
    {"eval_steps", "eval_every"},
    {"save_steps", "ckpt_every"},
    {"lr_scheduler_type", "lr_scheduler"},
    {"max_seq_length", "seq_len"},
    {"mlm_probability", "mlm_prob"},
    {"early_stopping_patience", "early_stopping"},
    {"hidden_dropout_prob", "hidden_dropout"},
    {"attention_probs_dropout_prob", "attention_dropout"},
    {"gradient_accumulation_steps", "grad_accum"},
    {"bf16", "precision"},
    {"fp16", "precision"},
};
#define BIG 9.0e15 /* below 2^53: integers compare exactly as doubles */

static const pfield g_pfields[] = {
    PF(steps, P_I64, K_TRAIN, 0, BIG, 0, 0, "an integer >= 0 (0: use epochs)"),
    PF(epochs, P_REAL, K_TRAIN, 0, 1e9, 1, 0, "a number > 0"),
    PF(batch_size, P_INT, K_ALL, 1, 1 << 20, 0, 0, "an integer in [1, 1048576]"),
    PF(seq_len, P_INT, K_ALL, 4, 1 << 20, 0, 0, "an integer in [4, 1048576]"),
    PF(lr, P_REAL, K_TRAIN, 0, 1e9, 1, 0, "a number > 0"),
    PF(warmup_steps, P_I64, K_TRAIN, 0, BIG, 0, 0, "an integer >= 0"),
    PF(warmup_ratio, P_REAL, K_TRAIN, 0, 1, 0, 1, "a fraction in [0, 1)"),
    PF(weight_decay, P_REAL, K_TRAIN, 0, 1e9, 0, 0, "a number >= 0"),
    PF(clip, P_REAL, K_TRAIN, 0, 1e9, 0, 0, "a number >= 0 (0: no clipping)"),
    PF(eval_every, P_I64, K_TRAIN, 0, BIG, 0, 0, "an integer >= 0"),
    PF(early_stopping, P_INT, K_TRAIN, 0, 1 << 20, 0, 0, "an integer >= 0 (0: off)"),
    PF(ckpt_every, P_I64, K_TRAIN, 0, BIG, 0, 0, "an integer >= 0"),
    PF(log_every, P_I64, K_TRAIN, 0, BIG, 0, 0, "an integer >= 0"),
    PF(adapter_drop, P_INT, K_TRAIN & ~K_FT, 0, 1 << 10, 0, 0, "an integer >= 0 (0: off)"),
    PF(max_docs, P_I64, K_PRE | K_LANG, 0, BIG, 0, 0, "an integer >= 0 (0: all lines)"),
    PF(mlm_prob, P_REAL, K_PRE | K_LANG, 0, 1, 1, 1, "a probability in (0, 1)"),
    PF(whole_word_mask, P_BOOL, K_PRE | K_LANG, 0, 0, 0, 0, "true or false"),
    PF(seed, P_U64, K_ALL, 0, 0, 0, 0, "a non-negative integer"),
    PF(reference_seeds, P_INT, K_TASK, 0, 1 << 20, 0, 0, "an integer >= 0 (0: every seed)"),
    PF(class_weights, P_WEIGHTS, K_TASK | K_FUS | K_FT, 0, 1e9, 0, 0,
       "none, balanced, or a list of weights >= 0 (one per label, not all 0), e.g. [1.0, 4.0]"),
    PF(tlm, P_REAL, K_PRE, 0, 1, 0, 0, "a fraction in [0, 1] of the steps (needs data.pairs)"),
    PF(align, P_REAL, K_PRE | K_LANG, 0, 1e6, 0, 0, "a weight >= 0 (0: off; needs data.pairs, lang: data.lang_pairs)"),
    PF(align_pairs, P_INT, K_PRE | K_LANG, 0, 512, 0, 0, "an integer in [0, 512] (0: batch_size / 2)"),
    PF(align_temp, P_REAL, K_PRE | K_LANG, 0, 100, 1, 0, "a temperature > 0"),
    PF(pair_alpha, P_REAL, K_PRE, 0, 1, 0, 0, "an exponent in [0, 1]"),
    PF(languages, P_LANGS, K_LANG, 0, 0, 0, 0, "a list of language codes"),
    PF(setups, P_SETUPS, K_EVAL, 0, 0, 0, 0, "a list of setup names or texts"),
    PFC(lr_scheduler, K_TRAIN, g_schedulers, "linear, cosine, constant or constant_with_warmup"),
    PF(adam_beta1, P_REAL, K_TRAIN, 0, 1, 0, 1, "a number in [0, 1)"),
    PF(adam_beta2, P_REAL, K_TRAIN, 0, 1, 0, 1, "a number in [0, 1)"),
    PF(adam_epsilon, P_REAL, K_TRAIN, 0, 1, 0, 0, "a number in [0, 1]"),
    PF(hidden_dropout, P_REAL, K_TRAIN, 0, 1, 0, 1, "a probability in [0, 1), or null (the base's)"),
    PF(attention_dropout, P_REAL, K_TRAIN, 0, 1, 0, 1, "a probability in [0, 1), or null (the base's)"),
    PF(weight_decay_all, P_BOOL, K_LANG | K_TASK | K_FUS | K_FT, 0, 0, 0, 0, "true or false"),
    PF(save_total_limit, P_INT, K_TRAIN, 0, 1 << 20, 0, 0, "an integer >= 0 (0: keep every checkpoint)"),
    PF(grad_accum, P_INT, K_TRAIN, 1, 1 << 20, 0, 0, "an integer >= 1 that divides batch_size"),
    PF(gradient_checkpointing, P_BOOL, K_TRAIN, 0, 0, 0, 0, "true or false"),
    PFC(metric_for_best_model, K_TASK | K_FUS | K_FT, g_best_metrics,
        "accuracy, macro_f1 or loss (classification); span_f1 or loss (tagging); f1, exact_match or loss (question answering)"),
    PF(eval_batches, P_INT, K_PRE | K_LANG, 1, 1 << 20, 0, 0, "an integer >= 1"),
    PFC(precision, K_ALL, g_precisions, "fp32 or bf16"),
};
#define N_PFIELDS (sizeof g_pfields / sizeof *g_pfields)

static const char *const g_default_setups[] = {"task_only", "src_stack", "madx", NULL};

static void phase_defaults(xa_cfg_phase *p, xa_phase_kind k, uint64_t seed, const char *precision) {
    memset(p, 0, sizeof *p);
    p->kind = k;
    p->steps = k == XA_PHASE_PRETRAIN || k == XA_PHASE_LANG ? 1000 : 0;
    p->epochs = 3;
    p->batch_size = 16;
    p->seq_len = 128;
    p->lr = k == XA_PHASE_PRETRAIN ? 5e-4 : k == XA_PHASE_FINETUNE ? 5e-5 : 1e-4; /* full fine-tuning: BERT's range */
    p->warmup_ratio = 0.06;
    p->weight_decay = 0.01;
    p->clip = 1.0;
    p->ckpt_every = 200;
    p->log_every = 10;
    p->mlm_prob = 0.15;
    p->align_temp = 0.05;
    p->align_pairs = k == XA_PHASE_LANG ? 32 : 0;
    p->pair_alpha = 0.3;
    p->seed = seed;
    snprintf(p->lr_scheduler, sizeof p->lr_scheduler, "linear");
    p->adam_beta1 = 0.9;
    p->adam_beta2 = 0.999;
    p->adam_epsilon = 1e-8;
    p->hidden_dropout = p->attention_dropout = -1; /* the base's */
    p->weight_decay_all = 1;
    p->save_total_limit = 1;
    p->grad_accum = 1;
    p->eval_batches = 8;
    snprintf(p->precision, sizeof p->precision, "%s", precision[0] ? precision : "fp32");
    if (k == XA_PHASE_EVAL) {
        for (int i = 0; g_default_setups[i]; i++) {
            snprintf(p->setups[i], sizeof p->setups[i], "%s", g_default_setups[i]);
            p->n_setups = i + 1;
        }
    }
}

static xa_status read_setups(xa_cfg_phase *p, const cnode *v, const char *label) {
    char where[XA_ERROR_FIELD];
    if (v->kind != N_SEQ || v->n == 0) {
        return bad_value(v, label, "a non-empty list of setups, e.g. [task_only, src_stack, madx]",
                         v->kind == N_SCALAR ? "write a one-item list as [madx]" : NULL);
    }
    if (v->n > XA_CFG_MAX_SETUPS) {
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where), "at most 16 setups",
                            NULL, "'%s' lists %d setups", label, v->n);
    }
    for (int i = 0; i < v->n; i++) {
        const cnode *it = v->items[i].val;
        if (it->kind != N_SCALAR || is_null(it)) {
            return bad_value(it, label,
                             "a setup name (task_only, src_stack, madx, madx2, fusion, "
                             "in_language, full_ft) or a setup text",
                             NULL);
        }
        xa_status st = rd_str(it, label, p->setups[i], sizeof p->setups[i]);
        if (st) return st;
    }
    p->n_setups = v->n;
    return XA_STATUS_OK;
}

/* A P_CHOICE value: one of the field's names (metric_for_best_model: one of the task type's). */
static xa_status read_choice(const xa_recipe *r, const pfield *f, const cnode *v, const char *label, char *dst) {
    char hint[128];
    const char *best = v->kind == N_SCALAR ? closest(v->text, f->choices) : NULL;
    snprintf(hint, sizeof hint, "did you mean '%s'?", best ? best : "");
    if (v->kind != N_SCALAR || !in_list(v->text, f->choices)) return bad_value(v, label, f->expected, best ? hint : NULL);
    if (f->choices == g_best_metrics) {
        const unsigned type = r->task_type == XA_TASK_TAGGING ? 2u : r->task_type == XA_TASK_QUESTION_ANSWERING ? 4u : 1u;
        for (size_t i = 0; i < sizeof g_best_metric_types / sizeof *g_best_metric_types; i++)
            if (!strcmp(g_best_metric_types[i].name, v->text) && !(g_best_metric_types[i].task_types & type))
                return bad_value(v, label,
                                 type == 2u   ? "span_f1 or loss (a tagging task)"
                                 : type == 4u ? "f1, exact_match or loss (a question-answering task)"
                                              : "accuracy, macro_f1 or loss (a classification task)",
                                 "the metric must exist for data.task.type");
    }
    snprintf(dst, 24, "%s", v->text);
    return XA_STATUS_OK;
}

/* class_weights: none | balanced | [w0, w1, ...] (finite, >= 0, at least one > 0). */
static xa_status read_class_weights(xa_cfg_phase *p, const cnode *v, const char *label, const char *expected) {
    static const char *const modes[] = {"none", "balanced", NULL};
    char where[XA_ERROR_FIELD], hint[96];
    if (v->kind == N_SCALAR) {
        if (!strcmp(v->text, "none") || !strcmp(v->text, "balanced")) {
            p->class_weights = !strcmp(v->text, "none") ? XA_CFG_CLASS_WEIGHTS_NONE : XA_CFG_CLASS_WEIGHTS_BALANCED;
            p->n_class_weights = 0;
            return XA_STATUS_OK;
        }
        const char *best = closest(v->text, modes);
        snprintf(hint, sizeof hint, "did you mean '%s'?", best ? best : "");
        return bad_value(v, label, expected, best ? hint : "write one weight per label as a list: [1.0, 4.0]");
    }
    if (v->kind != N_SEQ || v->n == 0) return bad_value(v, label, expected, NULL);
    if (v->n > XA_CFG_MAX_CLASS_WEIGHTS)
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where), "at most 256 weights (one per label)",
                            NULL, "'%s' lists %d weights", label, v->n);
    double sum = 0;
    for (int i = 0; i < v->n; i++) {
        xa_status st = rd_real(v->items[i].val, label, 0, 1e9, 0, 0, "a finite weight >= 0",
                               &p->class_weight_list[i]);
        if (st) return st;
        sum += p->class_weight_list[i];
    }
    if (!(sum > 0)) return bad_value(v, label, "at least one weight > 0", NULL);
    p->class_weights = XA_CFG_CLASS_WEIGHTS_LIST;
    p->n_class_weights = v->n;
    return XA_STATUS_OK;
}

static xa_status read_phase(xa_recipe *r, xa_cfg_phase *p, const centry *item, int index) {
    char where[XA_ERROR_FIELD], label[160];
    const cnode *iv = item->val;
    const char *kname;
    const cnode *params = NULL;
    const char *kfile;
    int kl, kc;
    if (iv->kind == N_SCALAR && !is_null(iv)) { /* "- eval" */
        kname = iv->text;
        kfile = iv->file;
        kl = iv->line;
        kc = iv->col;
    } else if (iv->kind == N_MAP && iv->n == 1) {
        kname = iv->items[0].key;
        kfile = iv->items[0].kfile;
        kl = iv->items[0].kline;
        kc = iv->items[0].kcol;
        params = iv->items[0].val;
    } else {
        return xa_error_set(XA_STATUS_CONFIG, npos(iv, where, sizeof where),
                            "a one-key mapping {KIND: {params}}, e.g. '- task: {epochs: 3}'",
                            iv->kind == N_MAP ? "indent the params under the kind" : NULL,
                            "phases[%d] is %s%s", index, kind_word(iv),
                            iv->kind == N_MAP ? " with several keys" : "");
    }
    xa_phase_kind k = XA_PHASE_N;
    for (int i = 0; i < XA_PHASE_N; i++) {
        if (strcmp(kname, g_phase_names[i]) == 0) k = (xa_phase_kind)i;
    }
    if (k == XA_PHASE_N) {
        char expected[128], hint[128];
        join_list(expected, sizeof expected, "one of: ", g_phase_names);
        const char *best = closest(kname, g_phase_names);
        snprintf(hint, sizeof hint, "did you mean '%s'?", best ? best : "");
        return xa_error_set(XA_STATUS_CONFIG, fmt_pos(where, sizeof where, kfile, kl, kc), expected,
                            best ? hint : NULL, "unknown phase kind '%s' in phases[%d]", kname,
                            index);
    }
    phase_defaults(p, k, r->seed, r->precision);
    if ((1u << k) & (K_TASK | K_FUS | K_FT)) /* the task's primary metric */
        snprintf(p->metric_for_best_model, sizeof p->metric_for_best_model, "%s",
                 r->task_type == XA_TASK_TAGGING ? "span_f1" : r->task_type == XA_TASK_QUESTION_ANSWERING ? "f1" : "accuracy");
    set_pos(&p->pos, kfile, kl, kc);
    if (is_null(params)) return XA_STATUS_OK;
    if (params->kind != N_MAP) {
        snprintf(label, sizeof label, "phases[%d].%s", index, kname);
        return bad_value(params, label,
                         "a mapping of phase parameters, e.g. {steps: 200, lr: 1e-4}", NULL);
    }
    const char *allowed[N_PFIELDS + 1];
    int na = 0;
    for (size_t i = 0; i < N_PFIELDS; i++) {
        if (g_pfields[i].kinds & (1u << k)) allowed[na++] = g_pfields[i].key;
    }
    allowed[na] = NULL;
    const cnode *accum = NULL; /* the grad_accum value, checked against batch_size below */
    snprintf(label, sizeof label, "phases[%d].%s", index, kname);
    for (int i = 0; i < params->n; i++) {
        const centry *e = &params->items[i];
        if (in_list(e->key, allowed)) continue;
        for (size_t j = 0; j < N_PFIELDS; j++) {
            if (strcmp(g_pfields[j].key, e->key) != 0) continue;
            /* a parameter of another kind of phase */
            char expected[XA_ERROR_FIELD], hint[128], kinds[96];
            size_t len = 0;
            kinds[0] = '\0';
            for (int t = 0; t < XA_PHASE_N; t++) {
                if (g_pfields[j].kinds & (1u << t)) {
                    len += (size_t)snprintf(kinds + len, sizeof kinds - len, "%s%s", len ? "/" : "",
                                            g_phase_names[t]);
                }
            }
            join_list(expected, sizeof expected, "one of: ", allowed);
            snprintf(hint, sizeof hint, "'%s' is a parameter of %s phases", e->key, kinds);
            return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where), expected, hint,
                                "unknown key '%s' in '%s'", e->key, label);
        }
        for (size_t j = 0; j < sizeof g_hf_names / sizeof *g_hf_names; j++) {
            if (strcmp(g_hf_names[j].hf, e->key) != 0) continue;
            char expected[XA_ERROR_FIELD], hint[256];
            join_list(expected, sizeof expected, "one of: ", allowed);
            if (g_hf_names[j].ours)
                snprintf(hint, sizeof hint, "'%s' is the Hugging Face name; xadapt's key is '%s'", e->key,
                         g_hf_names[j].ours);
            else
                snprintf(hint, sizeof hint, "'%s' (Hugging Face) is not supported yet: raise batch_size instead "
                         "(and lr with it)", e->key);
            return xa_error_set(XA_STATUS_CONFIG, kpos(e, where, sizeof where), expected, hint,
                                "unknown key '%s' in '%s'", e->key, label);
        }
        return unknown_key(e, label, allowed);
    }
    for (int i = 0; i < params->n; i++) {
        const centry *e = &params->items[i];
        const cnode *v = e->val;
        const pfield *f = NULL;
        for (size_t j = 0; j < N_PFIELDS && !f; j++) {
            if (strcmp(g_pfields[j].key, e->key) == 0) f = &g_pfields[j];
        }
        if (is_null(v)) continue; /* "lr:" alone keeps the default */
        snprintf(label, sizeof label, "phases[%d].%s.%s", index, kname, e->key);
        char *dst = (char *)p + f->off;
        xa_status st = XA_STATUS_OK;
        switch (f->type) {
        case P_I64:
            st = rd_i64(v, label, (int64_t)f->lo, (int64_t)f->hi, f->expected, (int64_t *)dst);
            break;
        case P_INT: st = rd_int(v, label, (int)f->lo, (int)f->hi, f->expected, (int *)dst); break;
        case P_REAL:
            st =
                rd_real(v, label, f->lo, f->hi, f->lo_open, f->hi_open, f->expected, (double *)dst);
            break;
        case P_BOOL: st = rd_bool(v, label, (int *)dst); break;
        case P_U64: st = rd_u64(v, label, (uint64_t *)dst); break;
        case P_LANGS:
            st = rd_langs(v, label, p->languages, &p->n_languages);
            for (int l = 0; !st && l < p->n_languages; l++) {
                int known = strcmp(p->languages[l], r->source) == 0;
                for (int t = 0; t < r->n_targets; t++)
                    known |= strcmp(p->languages[l], r->targets[t]) == 0;
                if (!known) {
                    st = xa_error_set(XA_STATUS_CONFIG, npos(v->items[l].val, where, sizeof where),
                                      "languages of the recipe (languages.source and .targets)",
                                      NULL, "'%s' lists '%s', which is not a recipe language",
                                      label, p->languages[l]);
                }
            }
            break;
        case P_SETUPS: st = read_setups(p, v, label); break;
        case P_CHOICE: st = read_choice(r, f, v, label, (char *)dst); break;
        case P_WEIGHTS: st = read_class_weights(p, v, label, f->expected); break;
        }
        if (st) return st;
        if (f->off == offsetof(xa_cfg_phase, grad_accum)) accum = v;
    }
    if (accum && p->batch_size % p->grad_accum) /* micro-batches of batch_size / grad_accum rows */
        return xa_error_set(XA_STATUS_CONFIG, npos(accum, where, sizeof where), "a divisor of batch_size",
                            "batch_size is the batch of one optimizer step; grad_accum cuts it into micro-batches "
                            "of batch_size / grad_accum rows (e.g. batch_size 32, grad_accum 4)",
                            "'phases[%d].%s.grad_accum' is %d, which does not divide batch_size %d", index, kname,
                            p->grad_accum, p->batch_size);
    return XA_STATUS_OK;
}

static xa_status read_phases(xa_recipe *r, const cnode *root) {
    char where[XA_ERROR_FIELD];
    const centry *owner = map_find(root, "phases");
    if (!owner || is_null(owner->val)) return XA_STATUS_OK;
    const cnode *v = owner->val;
    if (v->kind != N_SEQ) {
        return bad_value(v, "phases", "a list of phases: - KIND: {params}", NULL);
    }
    if (v->n > XA_CFG_MAX_PHASES) {
        return xa_error_set(XA_STATUS_CONFIG, npos(v, where, sizeof where), "at most 16 phases",
                            NULL, "'phases' lists %d phases", v->n);
    }
    for (int i = 0; i < v->n; i++) {
        xa_status st = read_phase(r, &r->phases[i], &v->items[i], i);
        if (st) return st;
        r->n_phases = i + 1;
    }
    return XA_STATUS_OK;
}

/* What the declared phases need (config.h: xa_recipe_load). */
static xa_status check_needs(const xa_recipe *r) {
    char where[XA_ERROR_FIELD];
    for (int i = 0; i < r->n_phases; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        const char *need = NULL, *what = NULL;
        switch (p->kind) {
        case XA_PHASE_PRETRAIN:
            if (!r->pretrain_corpus[0]) need = "data.pretrain", what = "a text corpus path";
            break;
        case XA_PHASE_LANG:
            if (!r->mlm_corpus[0])
                need = "data.mlm", what = "a corpus path with {lang}";
            else if (!r->lang_adapter.present)
                need = "adapters.lang", what = "{preset: seq_bn_inv}";
            else if (p->align > 0 && !r->lang_pairs[0])
                need = "data.lang_pairs", what = "aligned pairs (LANG<TAB>en<TAB>text) for 'align' (default: data.pairs)";
            break;
        case XA_PHASE_TASK:
        case XA_PHASE_FINETUNE:
            if (!r->task_train[0])
                need = "data.task.train", what = "a training file path";
            else if (!r->task_dev[0])
                need = "data.task.dev", what = "a dev file path";
            else if (p->kind == XA_PHASE_FINETUNE)
                break; /* no adapters */
            else if (!r->lang_adapter.present)
                need = "adapters.lang", what = "{preset: seq_bn_inv}";
            else if (!r->task_adapter.present)
                need = "adapters.task", what = "{preset: seq_bn}";
            break;
        case XA_PHASE_FUSION: break;
        case XA_PHASE_EVAL:
            if (!r->task_test[0]) need = "data.task.test", what = "a test file path with {lang}";
            break;
        default: break;
        }
        if (need) {
            return xa_error_set(XA_STATUS_CONFIG, xa_cfg_pos_format(&p->pos, where, sizeof where),
                                what, NULL, "phase '%s' needs '%s', which the recipe does not set",
                                xa_phase_kind_name(p->kind), need);
        }
    }
    return XA_STATUS_OK;
}

static xa_status read_recipe(xa_recipe *r, const cnode *root) {
    section s = {root, "", root->file, root->line, root->col};
    xa_status st;
    const cnode *v;
    char where[XA_ERROR_FIELD];
    if ((st = check_section(&s, NULL, "", g_top_keys))) return st;
    const centry *ext = map_find(root, "extends");
    if (ext) { /* extends were consumed while loading: only --set can leave one here */
        return xa_error_set(XA_STATUS_CONFIG, kpos(ext, where, sizeof where),
                            "extends in the recipe file, not in --set", NULL,
                            "'extends' cannot be set with --set");
    }
    if (!(v = sget(&s, "name"))) return missing(&s, "name", "the experiment's name");
    if ((st = rd_str(v, "name", r->name, sizeof r->name))) return st;
    if (!r->name[0]) return bad_value(v, "name", "a non-empty name", NULL);
    if (!(v = sget(&s, "output"))) return missing(&s, "output", "an output directory");
    if ((st = rd_path(v, "output", r->output))) return st;
    if (!r->output[0]) return bad_value(v, "output", "a non-empty path", NULL);
    r->seed = 42;
    if ((v = sget(&s, "seed")) && (st = rd_u64(v, "seed", &r->seed))) return st;
    r->n_seeds = 1;
    r->seeds[0] = r->seed;
    if ((v = sget(&s, "seeds"))) {
        if (v->kind != N_SEQ || v->n == 0 || v->n > XA_CFG_MAX_SEEDS) {
            return bad_value(v, "seeds", "a list of 1 to 16 seeds, e.g. [1, 2, 3]",
                             v->kind == N_SCALAR ? "for one seed write [1] or use 'seed'" : NULL);
        }
        for (int i = 0; i < v->n; i++) {
            if ((st = rd_u64(v->items[i].val, "seeds", &r->seeds[i]))) return st;
        }
        r->n_seeds = v->n;
    }
    if ((v = sget(&s, "threads")) &&
        (st = rd_int(v, "threads", 0, 4096, "an integer in [0, 4096] (0: all cores)",
                     &r->threads))) {
        return st;
    }
    if ((v = sget(&s, "precision"))) {
        char hint[64];
        const char *best = v->kind == N_SCALAR ? closest(v->text, g_precisions) : NULL;
        snprintf(hint, sizeof hint, "did you mean '%s'?", best ? best : "");
        if (v->kind != N_SCALAR || !in_list(v->text, g_precisions))
            return bad_value(v, "precision", "fp32 or bf16", best ? hint : NULL);
        snprintf(r->precision, sizeof r->precision, "%s", v->text);
    }
    if ((st = read_model(r, root)) || (st = read_languages(r, root)) || (st = read_data(r, root)) ||
        (st = read_adapters(r, root)) || (st = read_phases(r, root))) {
        return st;
    }
    return check_needs(r);
}

/* ==== public API ==== */

const char *xa_cfg_pos_format(const xa_cfg_pos *p, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    if (!p) {
        snprintf(buf, n, "default");
    } else {
        fmt_pos(buf, n, p->file, p->line, p->col);
    }
    return buf;
}

const char *xa_phase_kind_name(xa_phase_kind k) {
    return (unsigned)k < XA_PHASE_N ? g_phase_names[k] : "?";
}

xa_status xa_phase_kind_parse(const char *name, xa_phase_kind *out) {
    for (int i = 0; i < XA_PHASE_N; i++) {
        if (name && strcmp(name, g_phase_names[i]) == 0) {
            *out = (xa_phase_kind)i;
            return XA_STATUS_OK;
        }
    }
    char expected[128], hint[128];
    join_list(expected, sizeof expected, "one of: ", g_phase_names);
    const char *best = name ? closest(name, g_phase_names) : NULL;
    snprintf(hint, sizeof hint, "did you mean '%s'?", best ? best : "");
    return xa_error_set(XA_STATUS_CONFIG, "phase", expected, best ? hint : NULL,
                        "unknown phase kind '%s'", name ? name : "(null)");
}

int xa_recipe_phase(const xa_recipe *r, xa_phase_kind k) {
    for (int i = 0; i < r->n_phases; i++) {
        if (r->phases[i].kind == k) return i;
    }
    return -1;
}

xa_status xa_cfg_expand(char *out, size_t n, const char *pattern, const char *lang) {
    if (!out || n == 0 || !pattern || !lang) {
        if (out && n) out[0] = '\0';
        return xa_error_set(XA_STATUS_USAGE, "xa_cfg_expand",
                            "an output buffer, a pattern and a "
                            "language",
                            NULL, "NULL argument");
    }
    size_t len = 0, ll = strlen(lang);
    for (const char *p = pattern; *p;) {
        const char *piece = p;
        size_t pl = 1;
        if (strncmp(p, "{lang}", 6) == 0) {
            piece = lang;
            pl = ll;
            p += 6;
        } else {
            p++;
        }
        if (len + pl >= n) {
            out[0] = '\0';
            return xa_error_set(XA_STATUS_USAGE, "xa_cfg_expand", "a result that fits the buffer",
                                NULL, "'%s' with {lang}=%s does not fit in %zu bytes", pattern,
                                lang, n);
        }
        memcpy(out + len, piece, pl);
        len += pl;
    }
    out[len] = '\0';
    return XA_STATUS_OK;
}

xa_status xa_recipe_load(xa_recipe *r, const char *path, const char *const *sets, int n_sets) {
    cfg_ctx c = {NULL};
    char *chain[MAX_EXTENDS];
    cnode *root = NULL;
    xa_status st;
    memset(r, 0, sizeof *r);
    if (!path || (n_sets > 0 && !sets)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_recipe_load", "a recipe path", NULL,
                            "NULL argument");
    }
    if (strlen(path) >= sizeof r->path) {
        return xa_error_set(XA_STATUS_USAGE, path, "a path under 1024 characters", NULL,
                            "recipe path too long");
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    if ((st = load_tree(&c, path, chain, 0, &root))) goto fail;
    for (int i = 0; i < n_sets; i++) {
        if ((st = apply_set(&c, root, sets[i] ? sets[i] : ""))) goto fail;
    }
    if ((st = read_recipe(r, root))) goto fail;
    ctx_free(&c);
    return XA_STATUS_OK;
fail:
    ctx_free(&c);
    memset(r, 0, sizeof *r);
    return st;
}

/* ==== writing ==== */

static void yq(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p == '\n') {
            fputs("\\n", f);
        } else if (*p == '\t') {
            fputs("\\t", f);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\x%02x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void yreal(FILE *f, double x) {
    char buf[40];
    fmt_real(buf, sizeof buf, x);
    fputs(buf, f);
}

static void write_adapter(FILE *f, const char *role, const xa_cfg_adapter *a) {
    if (!a->present) return;
    fprintf(f, "  %s:\n    preset: ", role);
    yq(f, a->preset);
    fputc('\n', f);
    for (int i = 0; i < a->n_overrides; i++) {
        const char *k = a->overrides[i].key;
        int plain = isalpha((unsigned char)k[0]) || k[0] == '_';
        for (const char *p = k; *p; p++) {
            plain &= isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '+';
        }
        fputs("    ", f);
        if (plain) {
            fputs(k, f);
        } else {
            yq(f, k);
        }
        fprintf(f, ": %s\n", a->overrides[i].json);
    }
}

static void write_phase(FILE *f, const xa_cfg_phase *p) {
    fprintf(f, "  - %s:\n", xa_phase_kind_name(p->kind));
    for (size_t i = 0; i < N_PFIELDS; i++) {
        const pfield *fd = &g_pfields[i];
        if (!(fd->kinds & (1u << p->kind))) continue;
        const char *src = (const char *)p + fd->off;
        fprintf(f, "      %s: ", fd->key);
        switch (fd->type) {
        case P_I64: fprintf(f, "%" PRId64, *(const int64_t *)src); break;
        case P_INT: fprintf(f, "%d", *(const int *)src); break;
        case P_REAL:
            if (fd->lo >= 0 && *(const double *)src < 0) /* unset: the default (the base's dropout) */
                fputs("null", f);
            else
                yreal(f, *(const double *)src);
            break;
        case P_CHOICE: yq(f, src); break;
        case P_BOOL: fputs(*(const int *)src ? "true" : "false", f); break;
        case P_U64: fprintf(f, "%" PRIu64, *(const uint64_t *)src); break;
        case P_LANGS:
        case P_SETUPS: {
            int n = fd->type == P_LANGS ? p->n_languages : p->n_setups;
            fputc('[', f);
            for (int k = 0; k < n; k++) {
                if (k) fputs(", ", f);
                yq(f, fd->type == P_LANGS ? p->languages[k] : p->setups[k]);
            }
            fputc(']', f);
            break;
        }
        case P_WEIGHTS:
            if (p->class_weights != XA_CFG_CLASS_WEIGHTS_LIST) {
                fputs(p->class_weights == XA_CFG_CLASS_WEIGHTS_BALANCED ? "balanced" : "none", f);
                break;
            }
            fputc('[', f);
            for (int k = 0; k < p->n_class_weights; k++) {
                if (k) fputs(", ", f);
                yreal(f, p->class_weight_list[k]);
            }
            fputc(']', f);
            break;
        }
        fputc('\n', f);
    }
}

static void write_recipe(FILE *f, const xa_recipe *r) {
    fprintf(f,
            "# Resolved recipe (xadapt %s): every key with its value, defaults included, paths "
            "absolute.\n",
            XA_VERSION_STRING);
    fputs("name: ", f);
    yq(f, r->name);
    fputs("\noutput: ", f);
    yq(f, r->output);
    fprintf(f, "\nseed: %" PRIu64 "\nseeds: [", r->seed);
    for (int i = 0; i < r->n_seeds; i++)
        fprintf(f, "%s%" PRIu64, i ? ", " : "", r->seeds[i]);
    fprintf(f, "]\nthreads: %d\nmodel:\n  base: ", r->threads);
    yq(f, r->base);
    fputs("\n  tokenizer: ", f);
    yq(f, r->tokenizer);
    fputs("\n  arch: ", f);
    yq(f, r->arch);
    fprintf(f, "\n  vocab_size: %d\nlanguages:\n  source: ", r->vocab_size);
    yq(f, r->source);
    fputs("\n  targets: [", f);
    for (int i = 0; i < r->n_targets; i++) {
        if (i) fputs(", ", f);
        yq(f, r->targets[i]);
    }
    fputs("]\n  unseen: [", f);
    for (int i = 0; i < r->n_unseen; i++) {
        if (i) fputs(", ", f);
        yq(f, r->unseen[i]);
    }
    fputs("]\ndata:\n  pretrain: ", f);
    yq(f, r->pretrain_corpus);
    fputs("\n  mlm: ", f);
    yq(f, r->mlm_corpus);
    if (r->mlm_heldout[0]) {
        fputs("\n  mlm_heldout: ", f);
        yq(f, r->mlm_heldout);
    }
    if (r->pairs[0]) {
        fputs("\n  pairs: ", f);
        yq(f, r->pairs);
    }
    if (r->lang_pairs[0]) {
        fputs("\n  lang_pairs: ", f);
        yq(f, r->lang_pairs);
    }
    if (r->retrieval[0]) {
        fputs("\n  retrieval: ", f);
        yq(f, r->retrieval);
    }
    fputs("\n  task:\n    name: ", f);
    yq(f, r->task_name);
    fprintf(f, "\n    type: %s", g_task_types[r->task_type]);
    {
        const xa_cfg_task_fields *tf = &r->task_fields;
        const char *const fv[] = {tf->text, tf->text_pair, tf->label, tf->tokens, tf->tags, tf->premise, tf->question};
        int any = tf->n_choices > 0;
        for (int i = 0; i < 7; i++) any |= fv[i][0] != '\0';
        if (any) {
            fputs("\n    fields:", f);
            for (int i = 0; i < 7; i++) {
                if (!fv[i][0]) continue;
                fprintf(f, "\n      %s: ", g_field_keys[i]);
                yq(f, fv[i]);
            }
            if (tf->n_choices > 0) {
                fputs("\n      choices: [", f);
                for (int i = 0; i < tf->n_choices; i++) {
                    if (i) fputs(", ", f);
                    yq(f, tf->choices[i]);
                }
                fputc(']', f);
            }
        }
        if (r->task_type == XA_TASK_QUESTION_ANSWERING) {
            if (r->qa_doc_stride) fprintf(f, "\n    doc_stride: %d", r->qa_doc_stride);
            fprintf(f, "\n    max_answer_length: %d\n    n_best_size: %d", r->qa_max_answer_length, r->qa_n_best_size);
            if (r->qa_version_2_with_negative)
                fprintf(f, "\n    version_2_with_negative: true\n    null_score_diff_threshold: %.17g",
                        r->qa_null_score_diff_threshold);
        }
        if (r->n_task_labels > 0) {
            fputs("\n    labels: [", f);
            for (int i = 0; i < r->n_task_labels; i++) {
                if (i) fputs(", ", f);
                yq(f, r->task_labels[i]);
            }
            fputc(']', f);
        }
    }
    const char *keys[] = {"train", "dev", "test", "target_train"};
    const char *vals[] = {r->task_train, r->task_dev, r->task_test, r->task_target_train};
    for (int i = 0; i < 4; i++) {
        fprintf(f, "\n    %s: ", keys[i]);
        yq(f, vals[i]);
    }
    fputc('\n', f);
    if (r->lang_adapter.present || r->task_adapter.present || r->fusion.present) {
        fputs("adapters:\n", f);
        write_adapter(f, "lang", &r->lang_adapter);
        write_adapter(f, "task", &r->task_adapter);
        write_adapter(f, "fusion", &r->fusion);
    }
    fputs(r->n_phases ? "phases:\n" : "phases: []\n", f);
    for (int i = 0; i < r->n_phases; i++)
        write_phase(f, &r->phases[i]);
}

xa_status xa_recipe_write(const xa_recipe *r, const char *path) {
    char tmp[XA_CFG_PATH + 32];
    if (!r || !path) {
        return xa_error_set(XA_STATUS_USAGE, "xa_recipe_write", "a recipe and a path", NULL,
                            "NULL argument");
    }
    /* Same-directory temporary file, flushed, fsync'ed and renamed: a crash never leaves a
     * half-written recipe where a good one stood (DESIGN.md §8). */
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        return xa_error_set(XA_STATUS_USAGE, path, "a shorter path", NULL, "path too long");
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot create '%s': %s", tmp,
                            strerror(e));
    }
    write_recipe(f, r);
    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot write '%s': %s", path,
                            strerror(e));
    }
    return XA_STATUS_OK;
}
