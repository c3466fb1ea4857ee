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

/* Largest JSON file the io readers accept: config files are a few KB; refuse anything absurd. */
#define XA_IO_JSON_MAX_BYTES (16u << 20)

/* Reads a top-level object, loaded from file, into out (zeroed before the call). */
typedef xa_status (*xa_io_json_read_fn)(void *out, const json_t *root, const char *file);
/* Zero out (size bytes), load the JSON text of n bytes as an object (xa_io_json_load_object,
 * naming file) and read it into out; out is zeroed again on any failure. */
xa_status xa_io_json_parse_object(void *out, size_t size, const char *json, size_t n,
                                  const char *file, xa_io_json_read_fn read);
/* xa_io_json_parse_object on the text of the file at path (at most XA_IO_JSON_MAX_BYTES); out is
 * zeroed when the file cannot be read. */
xa_status xa_io_json_read_file(void *out, size_t size, const char *path, xa_io_json_read_fn read);

/* ---- reading keys of a config file: CONFIG errors naming "<file>: key '<prefix><key>'" ---- */

/* "<file>: key '<prefix><key>'" into buf; returns buf. */
const char *xa_io_json_kwhere(char *buf, size_t n, const char *file, const char *prefix,
                              const char *key);
/* CONFIG: "'<prefix><key>' is <kind> (<value>)", expected as given. */
xa_status xa_io_json_type_error(const char *file, const char *prefix, const char *key,
                                const json_t *v, const char *expected);
/* Copy the JSON string v into dst[cap]; CONFIG for a non-string or one of cap characters or more.
 */
xa_status xa_io_json_copy_str(char *dst, size_t cap, const char *file, const char *prefix,
                              const char *key, const json_t *v);

/* The metadata strings every AdapterHub file carries beside "config". */
typedef struct xa_io_json_meta {
    const char *key;
    char *dst;
    size_t cap;
} xa_io_json_meta;
/* The five entries model_class, model_name, model_type, name, version of a struct s with char
 * arrays of those names, for an initializer: xa_io_json_meta m[] = {XA_IO_JSON_META(*cfg)}. */
#define XA_IO_JSON_META(s)                                                                         \
    {"model_class", (s).model_class, sizeof(s).model_class},                                       \
        {"model_name", (s).model_name, sizeof(s).model_name},                                      \
        {"model_type", (s).model_type, sizeof(s).model_type}, {"name", (s).name, sizeof(s).name},  \
    {                                                                                              \
        "version", (s).version, sizeof(s).version                                                  \
    }
/* Read m[0..n) (absent or null keys leave dst as it is) and a positive "hidden_size". */
xa_status xa_io_json_read_meta(const json_t *root, const xa_io_json_meta *m, size_t n,
                               int64_t *hidden_size, const char *file);
/* Add hidden_size and m[0..n): empty strings as null, an empty "version" as XA_ADAPTERS_VERSION.
 * Returns nonzero when jansson fails. */
int xa_io_json_write_meta(json_t *root, const xa_io_json_meta *m, size_t n, int64_t hidden_size);

/* Parse json_value, the JSON text of one value for key (xa_*_config_set overrides; NULL reads as
 * ""), into *out (json_decref); CONFIG naming "<file>: key '<key>'" with expected (an example of
 * valid values) when it is not valid JSON. */
xa_status xa_io_json_parse_value(json_t **out, const char *json_value, const char *file,
                                 const char *key, const char *expected);
/* Finish a writer: unless bad (a jansson call failed), xa_io_json_dump_file(root, path); when bad,
 * CONFIG naming path with the message what. Releases root either way. */
xa_status xa_io_json_write_root(json_t *root, int bad, const char *path, const char *what);

#endif
