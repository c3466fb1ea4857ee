/* Shared helpers for the cmocka tests: paths to fixtures and scratch space, file helpers, and
 * float comparisons that print the worst element. Tests include <cmocka.h> after this header. */
#ifndef XA_TESTUTIL_H
#define XA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* $XA_TEST_DATA/<name> (the committed fixtures in tests/data), in a static buffer per call slot. */
const char *xt_data_path(const char *name);
/* A fresh scratch directory for this test binary: $XA_TEST_TMP/<prog>-<pid>/, created on first use. */
const char *xt_tmp_dir(void);
/* xt_tmp_dir()/<name>, in a rotating static buffer (8 slots). */
const char *xt_tmp_path(const char *name);
/* Write n bytes to path (creating or truncating it); fails the test on error. */
void xt_write_file(const char *path, const void *data, size_t n);
/* Read a whole file into a malloc'ed buffer (NUL-terminated); *n gets the size. NULL if missing. */
char *xt_read_file(const char *path, size_t *n);

/* Compare got[0..n) with ref[0..n): |got-ref| <= atol + rtol*|ref| for every element. On failure
 * print the label, the worst element (index, got, ref, error, allowed) and fail the test. */
void xt_assert_close(const char *label, const float *got, const float *ref, size_t n, float atol,
                     float rtol);

/* Assert that the calling thread's error record mentions `needle` (in where, what, expected or
 * hint); prints the record on failure. */
void xt_assert_error_mentions(const char *needle);

#endif
