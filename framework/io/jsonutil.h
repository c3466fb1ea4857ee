/* io/jsonutil: small jansson helpers shared by the io module's JSON readers (internal to io:
 * no other module includes jansson). */
#ifndef XA_IO_JSONUTIL_H
#define XA_IO_JSONUTIL_H

#include <jansson.h>

#include "core/core.h"

/* "an object", "an array", "a string", "an integer", "a real number", "a boolean" or "null":
 * what a value is, for "expected X, found Y" messages. */
const char *xa_io_json_kind(const json_t *v);

/* Parse a JSON text of n bytes into an object (*out, owned by the caller: json_decref); FORMAT
 * naming `name:line:col` for invalid JSON, FORMAT for a top level that is not an object. */
xa_status xa_io_json_load_object(json_t **out, const char *json, size_t n, const char *name);
/* Dump with sorted keys, indent 2, 15 significant digits and a trailing newline, atomically
 * (io/file.h); NOMEM / IO naming path. */
xa_status xa_io_json_dump_file(const json_t *root, const char *path);
/* The compact JSON text of v, shortened to fit buf ("..." at the end); returns buf. */
const char *xa_io_json_show(const json_t *v, char *buf, size_t n);
/* Levenshtein distance of two short strings (64 for strings over 63 characters). */
size_t xa_io_json_edit_distance(const char *a, const char *b);
/* The closest of keys[0..n) to key when close enough for a "did you mean" hint, else NULL. */
const char *xa_io_json_closest(const char *key, const char *const *keys, size_t n);
/* A JSON real that prints a float-valued double as its shortest float decimal (1e-05, not
 * 9.99999974737875e-06). */
json_t *xa_io_json_real(double v);

#endif
