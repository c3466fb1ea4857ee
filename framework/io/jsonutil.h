/* io/jsonutil: small jansson helpers shared by the io module's JSON readers (internal to io:
 * no other module includes jansson). */
#ifndef XA_IO_JSONUTIL_H
#define XA_IO_JSONUTIL_H

#include <jansson.h>

/* "an object", "an array", "a string", "an integer", "a real number", "a boolean" or "null":
 * what a value is, for "expected X, found Y" messages. */
const char *xa_io_json_kind(const json_t *v);

#endif
