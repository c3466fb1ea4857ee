/* Shared helpers for the cmocka tests: paths to fixtures and scratch space, file helpers, and
 * float comparisons that print the worst element. Tests include <cmocka.h> after this header. */
#ifndef XA_TESTUTIL_H
#define XA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/core.h"
#include "io/safetensors.h"
#include "tokenizer/tok.h"
#include "train/train.h"

/* $XA_TEST_DATA/<name> (the committed fixtures in tests/data), in a static buffer per call slot. */
const char *xt_data_path(const char *name);
/* A fresh scratch directory for this test binary: $XA_TEST_TMP/<prog>-<pid>/, created on first use.
 */
const char *xt_tmp_dir(void);
/* xt_tmp_dir()/<name>, in a rotating static buffer (8 slots). */
const char *xt_tmp_path(const char *name);
/* Write n bytes to path (creating or truncating it); fails the test on error. */
void xt_write_file(const char *path, const void *data, size_t n);
/* xt_write_file of a NUL-terminated text to xt_tmp_path(name); returns that path. */
const char *xt_write_tmp(const char *name, const char *text);
/* The committed SentencePiece fixture (spm/fixture.model) as a tokenizer with XLM-R ids; NULL, with
 * the error printed, when it does not load. Free with xa_tok_free. */
xa_tok *xt_fixture_tok(void);
/* Pretraining options of the tiny test encoder (L2 C32 NH2 FF64, B8 T32, lr 5e-3, warmup 3, seed
 * 11, checkpoints only at the end) on spm/corpus.txt with spm/fixture.model; progress to a new
 * /dev/null stream that the caller closes. */
xa_pretrain_opts xt_tiny_pretrain_opts(const char *out, int64_t steps);
/* Read a whole file into a malloc'ed buffer (NUL-terminated); *n gets the size. NULL if missing. */
char *xt_read_file(const char *path, size_t *n);

/* Compare got[0..n) with ref[0..n): |got-ref| <= atol + rtol*|ref| for every element. On failure
 * print the label, the worst element (index, got, ref, error, allowed) and fail the test. */
void xt_assert_close(const char *label, const float *got, const float *ref, size_t n, float atol,
                     float rtol);

/* Assert that the calling thread's error record mentions `needle` (in where, what, expected or
 * hint); prints the record on failure. */
void xt_assert_error_mentions(const char *needle);

/* ---- scratch memory for one test ---- */

/* Zeroed scratch memory (exact sizes, so the sanitizer build catches any access past the end),
 * held until xt_free_all(); fails the test when out of memory or slots. */
void *xt_alloc(size_t bytes);
float *xt_fzeros(size_t n);
double *xt_dzeros(size_t n);
float *xt_fcopy(const float *x, size_t n);
/* n draws from N(0, std^2) of rng. */
float *xt_frandn(xa_rng *rng, size_t n, float std);
/* Free everything xt_alloc handed out: call it from the test teardown, so it also runs when a test
 * fails. */
void xt_free_all(void);
/* A cmocka teardown: xt_free_all() and xa_threads_set(1). */
int xt_teardown(void **state);

/* ---- gradients ---- */

/* sum a[i] * b[i], accumulated in double. */
double xt_dot(const float *a, const float *b, size_t n);
typedef double (*xt_loss_fn)(void *ctx);
/* Compare grad[0..n) with central differences of loss() over x[0..n) (x is restored): each element
 * moves by +-h and (L+ - L-)/(x+ - x-) is held to atol + rtol*|fd| (xt_assert_close). */
void xt_check_fd(const char *label, xt_loss_fn loss, void *ctx, float *x, const float *grad,
                 size_t n, float h, float atol, float rtol);

/* ---- golden safetensors fixtures ---- */

/* xa_st_open of xt_data_path(name); NULL, with the error printed to stderr, when it fails. */
xa_st_file *xt_open_golden(const char *name);
/* The F32 tensor `name` of st, which must hold exactly n elements, converted into dst[0..n). */
void xt_gold_f32(const xa_st_file *st, const char *name, float *dst, size_t n);
/* The tensor `name` of f as floats in a malloc'ed buffer (free it); *n gets the count if n. */
float *xt_read_f32(const xa_st_file *f, const char *name, size_t *n);

#endif
