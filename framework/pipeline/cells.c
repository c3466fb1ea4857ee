/* pipeline/cells: eval cell identities and the cells.tsv file of exact values (cells.h).
 * Does not: hash data file contents (size and mtime stand for them, as in provenance), or lock
 * the file (it lives in the eval results directory, replaced whole by the runner). */
#include "pipeline/cells.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "pipeline/pipeline.h"

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t xa_cell_str(uint64_t h, const char *s) {
    if (!s) s = "(none)";
    return fnv(h, s, strlen(s) + 1); /* the NUL separates the pieces */
}

uint64_t xa_cell_begin(const char *table) {
    return xa_cell_str(xa_cell_str(14695981039346656037ull, XA_CELL_VERSION), table);
}

uint64_t xa_cell_int(uint64_t h, int64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    return xa_cell_str(h, s);
}

uint64_t xa_cell_file(uint64_t h, const char *path) {
    char id[128];
    if (xa_file_stat_id(path, id, sizeof id)) {
        xa_error_clear();
        snprintf(id, sizeof id, "missing");
    }
    return xa_cell_str(xa_cell_str(h, path), id);
}

/* The files that stand for an artefact directory without provenance. */
static const char *const g_known[] = {"adapter_config.json", "adapter.safetensors", "head_config.json",
                                      "model_head.safetensors", "adapter_fusion_config.json",
                                      "model_adapter_fusion.safetensors", "config.json", "model.safetensors"};

/* Hash the provenance file found in dir or one of its two parents; 0 when there is none. */
static int prov_hash(uint64_t *h, const char *dir) {
    char d[XA_PATH_MAX], p[XA_PATH_MAX], *text = NULL;
    size_t len = 0;
    snprintf(d, sizeof d, "%s", dir);
    for (int up = 0; up < 3; up++) {
        if (!xa_path_join(p, sizeof p, d, XA_PROV_FILE) && !xa_file_read(&text, &len, p, 1 << 20)) {
            *h = fnv(*h, text, len);
            free(text);
            return 1;
        }
        xa_error_clear();
        char *slash = strrchr(d, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return 0;
}

/* The PyTorch weights files read when their safetensors twin is absent (io/tensorfile.h): hashed
 * only when present, so the identity of every cell without them stays what it was. */
static const char *const g_known_bin[] = {"pytorch_adapter.bin", "pytorch_model_head.bin",
                                          "pytorch_model_adapter_fusion.bin", "pytorch_model.bin"};

static uint64_t known_files(uint64_t h, const char *dir) {
    char p[XA_PATH_MAX];
    for (size_t i = 0; i < sizeof g_known / sizeof *g_known; i++)
        if (!xa_path_join(p, sizeof p, dir, g_known[i])) h = xa_cell_file(h, p);
    for (size_t i = 0; i < sizeof g_known_bin / sizeof *g_known_bin; i++) {
        char id[128];
        if (!xa_path_join(p, sizeof p, dir, g_known_bin[i]) && !xa_file_stat_id(p, id, sizeof id)) {
            h = xa_cell_str(xa_cell_str(h, p), id);
        }
        xa_error_clear();
    }
    return h;
}

uint64_t xa_cell_dir(uint64_t h, const char *dir) {
    if (!dir || !dir[0]) return xa_cell_str(h, NULL);
    if (!prov_hash(&h, dir)) h = xa_cell_str(h, dir);
    return known_files(h, dir); /* a weight file rewritten by hand changes the cell too */
}

uint64_t xa_cell_inputs(uint64_t h, const char *dir) {
    if (!dir || !dir[0]) return h;
    if (prov_hash(&h, dir)) return h;
    return known_files(xa_cell_str(h, dir), dir);
}

void xa_cell_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016" PRIx64, h); }

/* ---- cells.tsv ---------------------------------------------------------------------------------- */

void xa_cells_free(xa_cells *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->c[i].v);
    free(c->c);
    memset(c, 0, sizeof *c);
}

/* Parse "ID<TAB>NV<TAB>values" into *out (values malloc'ed); 0 for a line that does not parse. */
static int parse_line(char *line, xa_cell *out) {
    char *end = NULL;
    out->id = strtoull(line, &end, 16);
    if (end != line + 16 || *end != '\t') return 0;
    long nv = strtol(end + 1, &end, 10);
    if (nv < 0 || nv > 4096 || *end != '\t') return 0;
    out->nv = (int)nv;
    out->v = malloc((size_t)(nv ? nv : 1) * sizeof *out->v);
    if (!out->v) return -1;
    char *s = end + 1;
    for (long k = 0; k < nv; k++) {
        out->v[k] = strtod(s, &end);
        if (end == s) {
            free(out->v);
            return 0;
        }
        s = end;
    }
    if (*s != '\0') {
        free(out->v);
        return 0;
    }
    return 1;
}

xa_status xa_cells_read(xa_cells *c, const char *path) {
    memset(c, 0, sizeof *c);
    char *text = NULL;
    if (xa_file_read(&text, NULL, path, 0)) { /* no previous cells: every cell is computed */
        xa_error_clear();
        return XA_STATUS_OK;
    }
    xa_status st = XA_STATUS_OK;
    for (char *line = text, *next; line && *line && !st; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        xa_cell cell;
        int ok = parse_line(line, &cell);
        if (ok < 0) st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
        if (ok <= 0) continue;
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 64;
            xa_cell *g = realloc(c->c, (size_t)cap * sizeof *g);
            if (!g) {
                free(cell.v);
                st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
                break;
            }
            c->c = g;
            c->cap = cap;
        }
        c->c[c->n++] = cell;
    }
    free(text);
    if (st) xa_cells_free(c);
    return st;
}

const double *xa_cells_find(const xa_cells *c, uint64_t id, int nv) {
    for (int i = 0; i < c->n; i++)
        if (c->c[i].id == id && c->c[i].nv == nv) return c->c[i].v;
    return NULL;
}

void xa_cells_write(FILE *f, uint64_t id, const double *v, int nv) {
    fprintf(f, "%016" PRIx64 "\t%d\t", id, nv);
    for (int k = 0; k < nv; k++) fprintf(f, "%s%a", k ? " " : "", v[k]);
    fputc('\n', f);
}
