/* io/jsonutil: jansson helpers shared by io/hfjson.c, io/hubjson.c and io/safetensors.c. */
#include "io/jsonutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"

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
    for (size_t j = 0; j <= lb; j++) row[j] = j;
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
