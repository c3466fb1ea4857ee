/* io/jsonutil: jansson helpers shared by io/hfjson.c, io/hubjson.c and io/safetensors.c. */
#include "io/jsonutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/hfjson.h"

const char *xa_io_json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

xa_status xa_io_json_load_object(json_t **out, const char *json, size_t n, const char *name) {
    json_error_t jerr;
    *out = NULL;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char where[XA_ERROR_FIELD];
        snprintf(where, sizeof where, "%s:%d:%d", name, jerr.line, jerr.column);
        return xa_error_set(XA_STATUS_FORMAT, where, "valid JSON", NULL, "invalid JSON: %s",
                            jerr.text);
    }
    if (!json_is_object(root)) {
        xa_status st = xa_error_set(XA_STATUS_FORMAT, name, "a JSON object", NULL,
                                    "top level is %s, not an object", xa_io_json_kind(root));
        json_decref(root);
        return st;
    }
    *out = root;
    return XA_STATUS_OK;
}

xa_status xa_io_json_dump_file(const json_t *root, const char *path) {
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    if (!text) return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot serialise JSON");
    size_t len = strlen(text);
    char *buf = malloc(len + 2);
    if (!buf) {
        free(text);
        return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate");
    }
    memcpy(buf, text, len);
    buf[len] = '\n';
    free(text);
    xa_status st = xa_file_write_atomic(path, buf, len + 1);
    free(buf);
    return st;
}

const char *xa_io_json_show(const json_t *v, char *buf, size_t n) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, n, "%s", s ? s : "?");
    if (s && strlen(s) >= n && n > 4) memcpy(buf + n - 4, "...", 4);
    free(s);
    return buf;
}

size_t xa_io_json_edit_distance(const char *a, const char *b) {
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

const char *xa_io_json_closest(const char *key, const char *const *keys, size_t n) {
    const char *best = NULL;
    size_t best_d = 64;
    for (size_t i = 0; i < n; i++) {
        size_t d = xa_io_json_edit_distance(key, keys[i]);
        if (d < best_d) {
            best_d = d;
            best = keys[i];
        }
    }
    return best && best_d <= strlen(key) / 3 + 1 ? best : NULL;
}

json_t *xa_io_json_real(double v) {
    if (isfinite(v) && fabs(v) < 3e38 && (double)(float)v == v) {
        char buf[32];
        for (int digits = 1; digits <= 9; digits++) {
            snprintf(buf, sizeof buf, "%.*g", digits, v);
            double d = strtod(buf, NULL);
            if ((float)d == (float)v) return json_real(d);
        }
    }
    return json_real(v);
}

xa_status xa_io_json_parse_object(void *out, size_t size, const char *json, size_t n,
                                  const char *file, xa_io_json_read_fn read) {
    json_t *root = NULL;
    memset(out, 0, size);
    xa_status st = xa_io_json_load_object(&root, json, n, file);
    if (!st) st = read(out, root, file);
    json_decref(root);
    if (st) memset(out, 0, size);
    return st;
}

xa_status xa_io_json_read_file(void *out, size_t size, const char *path, xa_io_json_read_fn read) {
    char *text = NULL;
    size_t n = 0;
    xa_status st = xa_file_read(&text, &n, path, XA_IO_JSON_MAX_BYTES);
    if (st) {
        memset(out, 0, size);
        return st;
    }
    st = xa_io_json_parse_object(out, size, text, n, path, read);
    free(text);
    return st;
}

const char *xa_io_json_kwhere(char *buf, size_t n, const char *file, const char *prefix,
                              const char *key) {
    snprintf(buf, n, "%s: key '%s%s'", file, prefix, key);
    return buf;
}

xa_status xa_io_json_type_error(const char *file, const char *prefix, const char *key,
                                const json_t *v, const char *expected) {
    char where[XA_ERROR_FIELD], shown[128];
    xa_io_json_kwhere(where, sizeof where, file, prefix, key);
    return xa_error_set(XA_STATUS_CONFIG, where, expected, NULL, "'%s%s' is %s (%s)", prefix, key,
                        xa_io_json_kind(v), xa_io_json_show(v, shown, sizeof shown));
}

xa_status xa_io_json_copy_str(char *dst, size_t cap, const char *file, const char *prefix,
                              const char *key, const json_t *v) {
    if (!json_is_string(v)) return xa_io_json_type_error(file, prefix, key, v, "a string");
    const char *s = json_string_value(v);
    if (strlen(s) >= cap) {
        char where[XA_ERROR_FIELD];
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, prefix, key),
                            "a shorter string", NULL, "'%s%s' is %zu characters, over %zu", prefix,
                            key, strlen(s), cap - 1);
    }
    memcpy(dst, s, strlen(s) + 1);
    return XA_STATUS_OK;
}

xa_status xa_io_json_read_meta(const json_t *root, const xa_io_json_meta *m, size_t n,
                               int64_t *hidden_size, const char *file) {
    xa_status st;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(root, m[i].key);
        if (!v || json_is_null(v)) continue;
        if ((st = xa_io_json_copy_str(m[i].dst, m[i].cap, file, "", m[i].key, v))) return st;
    }
    const json_t *hs = json_object_get(root, "hidden_size");
    if (hs && !json_is_null(hs)) {
        if (!json_is_integer(hs) || json_integer_value(hs) <= 0) {
            return xa_io_json_type_error(file, "", "hidden_size", hs, "a positive integer");
        }
        *hidden_size = (int64_t)json_integer_value(hs);
    }
    return XA_STATUS_OK;
}

int xa_io_json_write_meta(json_t *root, const xa_io_json_meta *m, size_t n, int64_t hidden_size) {
    int bad = json_object_set_new(root, "hidden_size", json_integer((json_int_t)hidden_size));
    for (size_t i = 0; !bad && i < n; i++) {
        const char *s = m[i].dst;
        if (strcmp(m[i].key, "version") == 0 && !s[0]) s = XA_ADAPTERS_VERSION;
        bad = json_object_set_new(root, m[i].key, s[0] ? json_string(s) : json_null());
    }
    return bad;
}

xa_status xa_io_json_parse_value(json_t **out, const char *json_value, const char *file,
                                 const char *key, const char *expected) {
    json_error_t jerr;
    *out = json_loads(json_value ? json_value : "", JSON_DECODE_ANY, &jerr);
    if (*out) return XA_STATUS_OK;
    char kw[XA_ERROR_FIELD];
    return xa_error_set(XA_STATUS_CONFIG,
                        xa_io_json_kwhere(kw, sizeof kw, file, "", key ? key : ""), expected, NULL,
                        "value '%s' of '%s' is not valid JSON: %s", json_value ? json_value : "",
                        key ? key : "", jerr.text);
}

xa_status xa_io_json_write_root(json_t *root, int bad, const char *path, const char *what) {
    xa_status st =
        bad ? xa_error_set(XA_STATUS_CONFIG, path, "valid UTF-8 strings", NULL, "%s", what)
            : xa_io_json_dump_file(root, path);
    json_decref(root);
    return st;
}
