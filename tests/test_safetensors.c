/* Tests of framework/io/safetensors: one test per malformed-file rule, F16/BF16 conversions
 * against PyTorch (tests/data/io/io_golden.safetensors, made by tests/golden/gen_io_fixtures.py),
 * listing, look-up and metadata, and writer round trips (bit-identical data, 8-byte aligned
 * header, failed writes that leave the old file in place). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "io/safetensors.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Write a safetensors file by hand: u64 header length (or `len_override` when not ~0), the header
 * text as given (no padding), then n_data bytes. Returns the path (a rotating static buffer). */
static const char *write_raw_st(const char *name, const char *header, const void *data,
                                size_t n_data, uint64_t len_override) {
    const char *path = xt_tmp_path(name);
    size_t nh = strlen(header);
    size_t total = 8 + nh + n_data;
    unsigned char *buf = malloc(total);
    assert_non_null(buf);
    uint64_t len = len_override != ~(uint64_t)0 ? len_override : (uint64_t)nh;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, header, nh);
    if (n_data) memcpy(buf + 8 + nh, data, n_data);
    xt_write_file(path, buf, total);
    free(buf);
    return path;
}

static const char *write_st(const char *name, const char *header, size_t n_data) {
    unsigned char zeros[64] = {0};
    assert_true(n_data <= sizeof zeros);
    return write_raw_st(name, header, zeros, n_data, ~(uint64_t)0);
}

/* Open must fail with `st`, and the error must mention the file name and `needle`. */
static void expect_open_error(const char *path, xa_status st, const char *needle) {
    xa_st_file *f = (xa_st_file *)1;
    xa_error_clear();
    assert_int_equal(xa_st_open(&f, path), st);
    assert_null(f);
    const char *base = strrchr(path, '/');
    xt_assert_error_mentions(base ? base + 1 : path);
    xt_assert_error_mentions(needle);
}

static uint32_t bits32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static int path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- fixture: the golden file, opened once for the group --------------------------------------- */

static int group_setup(void **state) {
    xa_st_file *f = NULL;
    if (xa_st_open(&f, xt_data_path("io/io_golden.safetensors")) != XA_STATUS_OK) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state) {
    xa_st_close(*state);
    return 0;
}

/* Read a named tensor of the golden file as F32 into a malloc'ed buffer. */
static float *golden_f32(const xa_st_file *f, const char *name, size_t *n) {
    const xa_st_tensor *t = xa_st_find(f, name);
    assert_non_null(t);
    float *v = malloc((size_t)t->n_elems * sizeof *v + 1);
    assert_non_null(v);
    assert_int_equal(xa_st_read_f32(f, name, t->shape, t->n_dims, v), XA_STATUS_OK);
    *n = (size_t)t->n_elems;
    return v;
}

static const uint16_t *golden_u16(const xa_st_file *f, const char *name, size_t *n, uint16_t **own) {
    const xa_st_tensor *t = xa_st_find(f, name);
    assert_non_null(t);
    assert_int_equal(xa_dtype_size(t->dtype), 2);
    *own = malloc(t->nbytes + 1);
    assert_non_null(*own);
    memcpy(*own, t->data, t->nbytes); /* data may be unaligned */
    *n = (size_t)t->n_elems;
    return *own;
}

/* ---- malformed files: one test per rule ---------------------------------------------------------- */

static void test_st_reject_short_file(void **state) {
    (void)state;
    const char *path = xt_tmp_path("short.safetensors");
    xt_write_file(path, "\x05\x00\x00", 3);
    expect_open_error(path, XA_STATUS_FORMAT, "8 bytes");
}

static void test_st_reject_header_past_end(void **state) {
    (void)state;
    const char *path = write_raw_st("past_end.safetensors", "{}", NULL, 0, 100);
    expect_open_error(path, XA_STATUS_FORMAT, "past the end");
}

static void test_st_reject_header_over_100mb(void **state) {
    (void)state;
    const char *path = write_raw_st("huge_header.safetensors", "{}", NULL, 0, 200000000u);
    expect_open_error(path, XA_STATUS_FORMAT, "100000000");
}

static void test_st_reject_invalid_json(void **state) {
    (void)state;
    const char *path = write_st("bad_json.safetensors", "{\"a\":\n {\"dtype\": }", 0);
    expect_open_error(path, XA_STATUS_FORMAT, "line 2 column");
}

static void test_st_reject_header_not_object(void **state) {
    (void)state;
    const char *path = write_st("array_header.safetensors", "[1, 2]", 0);
    expect_open_error(path, XA_STATUS_FORMAT, "not an object");
}

static void test_st_reject_entry_not_object(void **state) {
    (void)state;
    const char *path = write_st("entry_array.safetensors", "{\"w\": [1]}", 0);
    expect_open_error(path, XA_STATUS_FORMAT, "tensor 'w'");
}

static void test_st_reject_unknown_dtype(void **state) {
    (void)state;
    const char *path = write_st("dtype.safetensors",
                                "{\"w\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "unknown dtype 'F7'");
    xt_assert_error_mentions("tensor 'w'");
}

static void test_st_reject_missing_field(void **state) {
    (void)state;
    const char *path =
        write_st("missing.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "missing field 'data_offsets'");
}

static void test_st_reject_bad_field_type(void **state) {
    (void)state;
    const char *path = write_st("type.safetensors",
                                "{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "dtype is an integer");
    path = write_st("shape_type.safetensors",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "shape is a string");
    path = write_st("offsets_type.safetensors",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "data_offsets");
}

static void test_st_reject_negative_shape(void **state) {
    (void)state;
    const char *path = write_st("neg.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}",
                                4);
    expect_open_error(path, XA_STATUS_FORMAT, "shape[1] is negative");
}

static void test_st_reject_non_integer_shape(void **state) {
    (void)state;
    const char *path = write_st("real.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}",
                                4);
    expect_open_error(path, XA_STATUS_FORMAT, "not an integer");
}

static void test_st_reject_too_many_dims(void **state) {
    (void)state;
    const char *path = write_st(
        "dims.safetensors",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "9 dimensions");
}

static void test_st_reject_size_mismatch(void **state) {
    (void)state;
    const char *path = write_st("size.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(path, XA_STATUS_FORMAT, "needs 12 bytes");
}

static void test_st_reject_offsets_out_of_bounds(void **state) {
    (void)state;
    const char *path = write_st("oob.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_open_error(path, XA_STATUS_FORMAT, "out of bounds");
}

static void test_st_reject_begin_after_end(void **state) {
    (void)state;
    const char *path = write_st("order.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    expect_open_error(path, XA_STATUS_FORMAT, "begin > end");
}

static void test_st_reject_overlap(void **state) {
    (void)state;
    const char *path = write_st("overlap.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                                12);
    expect_open_error(path, XA_STATUS_FORMAT, "overlapping 'a'");
    xt_assert_error_mentions("tensor 'b'");
}

static void test_st_reject_gap(void **state) {
    (void)state;
    const char *path = write_st("gap.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                                12);
    expect_open_error(path, XA_STATUS_FORMAT, "gap of 4 bytes");
    path = write_st("gap_start.safetensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_open_error(path, XA_STATUS_FORMAT, "gap of 4 bytes after the header");
}

static void test_st_reject_trailing_bytes(void **state) {
    (void)state;
    const char *path = write_st("trailing.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    expect_open_error(path, XA_STATUS_FORMAT, "4 bytes after the last tensor");
}

static void test_st_reject_duplicate_names(void **state) {
    (void)state;
    const char *path = write_st("dup.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                                8);
    expect_open_error(path, XA_STATUS_FORMAT, "duplicate");
}

static void test_st_reject_size_overflow(void **state) {
    (void)state;
    /* 2^62 * 8 elements overflow 64 bits; 2^62 F32 elements overflow the byte size. */
    const char *path = write_st(
        "overflow.safetensors",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(path, XA_STATUS_FORMAT, "overflows");
    path = write_st("overflow_bytes.safetensors",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                    "\"data_offsets\":[0,4]}}",
                    4);
    expect_open_error(path, XA_STATUS_FORMAT, "overflow");
}

static void test_st_reject_metadata_not_string(void **state) {
    (void)state;
    const char *path = write_st("meta.safetensors", "{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", 0);
    expect_open_error(path, XA_STATUS_FORMAT, "key 'n' has a non-string value");
    path = write_st("meta_obj.safetensors", "{\"__metadata__\":[\"pt\"]}", 0);
    expect_open_error(path, XA_STATUS_FORMAT, "'__metadata__' is not an object");
}

/* ---- golden conversions ------------------------------------------------------------------------- */

/* F16 -> F32 must be exact for every pattern, NaN payloads included: compare bit patterns. */
static void test_st_golden_f16_to_f32(void **state) {
    const xa_st_file *f = *state;
    size_t n, nref;
    float *got = golden_f32(f, "f16_in", &n);
    float *ref = golden_f32(f, "f16_as_f32", &nref);
    assert_int_equal(n, nref);
    assert_true(n > 4000);
    for (size_t i = 0; i < n; i++) {
        if (bits32(got[i]) != bits32(ref[i])) {
            fail_msg("f16_in[%zu]: got 0x%08x (%.9g), torch 0x%08x (%.9g)", i, bits32(got[i]),
                     (double)got[i], bits32(ref[i]), (double)ref[i]);
        }
    }
    free(got);
    free(ref);
}

static void test_st_golden_bf16_to_f32(void **state) {
    const xa_st_file *f = *state;
    size_t n, nref;
    float *got = golden_f32(f, "bf16_in", &n);
    float *ref = golden_f32(f, "bf16_as_f32", &nref);
    assert_int_equal(n, nref);
    for (size_t i = 0; i < n; i++) {
        if (bits32(got[i]) != bits32(ref[i])) {
            fail_msg("bf16_in[%zu]: got 0x%08x, torch 0x%08x", i, bits32(got[i]), bits32(ref[i]));
        }
    }
    free(got);
    free(ref);
}

/* F32 -> F16 / BF16 rounding (nearest, ties to even) against torch's .half() / .bfloat16().
 * NaN encodings differ between torch's code paths, so for NaN only NaN-ness is compared. */
static void check_narrowing(const xa_st_file *f, const char *ref_name, uint16_t (*conv)(float),
                            float (*widen)(uint16_t)) {
    size_t n, nref;
    uint16_t *own;
    float *src = golden_f32(f, "f32_src", &n);
    const uint16_t *ref = golden_u16(f, ref_name, &nref, &own);
    assert_int_equal(n, nref);
    size_t n_nan = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t got = conv(src[i]);
        if (isnan(src[i])) {
            n_nan++;
            if (!isnan(widen(got))) fail_msg("%s[%zu]: NaN became 0x%04x", ref_name, i, got);
            continue;
        }
        if (got != ref[i]) {
            fail_msg("%s[%zu]: f32 0x%08x (%.9g): got 0x%04x, torch 0x%04x", ref_name, i,
                     bits32(src[i]), (double)src[i], got, ref[i]);
        }
    }
    assert_true(n_nan > 0);
    free(src);
    free(own);
}

static void test_st_golden_f32_to_f16(void **state) {
    check_narrowing(*state, "f32_to_f16", xa_f32_to_f16, xa_f16_to_f32);
}

static void test_st_golden_f32_to_bf16(void **state) {
    check_narrowing(*state, "f32_to_bf16", xa_f32_to_bf16, xa_bf16_to_f32);
}

/* A few conversions by hand, so a broken fixture cannot hide a broken converter. */
static void test_st_conversion_spot_values(void **state) {
    (void)state;
    assert_true(xa_f16_to_f32(0x3C00) == 1.0f);
    assert_true(xa_f16_to_f32(0xC000) == -2.0f);
    assert_true(xa_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(xa_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(xa_f16_to_f32(0x03FF) == ldexpf(1023.0f, -24)); /* largest subnormal */
    assert_true(isinf(xa_f16_to_f32(0xFC00)) && xa_f16_to_f32(0xFC00) < 0);
    assert_true(isnan(xa_f16_to_f32(0x7E00)));
    assert_int_equal(bits32(xa_f16_to_f32(0x8000)), 0x80000000u); /* -0 */
    assert_int_equal(xa_f32_to_f16(65520.0f), 0x7C00);             /* tie rounds up to inf */
    assert_int_equal(xa_f32_to_f16(65519.0f), 0x7BFF);
    assert_int_equal(xa_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);    /* tie to even: 0 */
    assert_int_equal(xa_f32_to_f16(ldexpf(3.0f, -26)), 0x0001);    /* 0.75 ulp -> 1 */
    assert_int_equal(xa_f32_to_f16(ldexpf(3.0f, -25)), 0x0002);    /* 1.5 ulp: tie to even 2 */
    assert_int_equal(xa_f32_to_f16(ldexpf(5.0f, -25)), 0x0002);    /* 2.5 ulp: tie to even 2 */
    assert_int_equal(xa_f32_to_f16(-ldexpf(1.0f, -14)), 0x8400);   /* smallest normal */
    assert_true(xa_bf16_to_f32(0x3F80) == 1.0f);
    assert_int_equal(xa_f32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(xa_f32_to_bf16(3.4028235e38f), 0x7F80); /* max float rounds to inf */
    assert_true(isnan(xa_bf16_to_f32(xa_f32_to_bf16(NAN))));
}

/* ---- listing, look-up, metadata, read_f32 errors ---------------------------------------------------- */

static void test_st_golden_listing_and_metadata(void **state) {
    const xa_st_file *f = *state;
    static const char *const order[] = {"f32_src", "f32_to_f16", "f32_to_bf16", "f16_in",
                                        "f16_as_f32", "bf16_in", "bf16_as_f32", "ids",
                                        "scalar", "empty"};
    assert_int_equal(xa_st_count(f), 10);
    for (size_t i = 0; i < 10; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        assert_non_null(t);
        assert_string_equal(t->name, order[i]); /* file order = offset order, not name order */
        assert_ptr_equal(xa_st_find(f, order[i]), t);
        if (i) assert_true(t->offset >= xa_st_at(f, i - 1)->offset);
    }
    assert_null(xa_st_at(f, 10));
    assert_null(xa_st_find(f, "nope"));
    assert_true(strstr(xa_st_path(f), "io_golden.safetensors") != NULL);

    const xa_st_tensor *ids = xa_st_find(f, "ids");
    assert_int_equal(ids->dtype, XA_DTYPE_I64);
    assert_string_equal(xa_dtype_name(ids->dtype), "I64");
    assert_int_equal(ids->n_dims, 1);
    assert_int_equal(ids->shape[0], 5);
    int64_t last;
    memcpy(&last, (const char *)ids->data + 32, 8);
    assert_int_equal(last, 250001);
    const xa_st_tensor *sc = xa_st_find(f, "scalar");
    assert_int_equal(sc->n_dims, 0);
    assert_int_equal(sc->n_elems, 1);
    float v = 0;
    assert_int_equal(xa_st_read_f32(f, "scalar", NULL, 0, &v), XA_STATUS_OK);
    assert_true(v == 2.5f);
    const xa_st_tensor *em = xa_st_find(f, "empty");
    assert_int_equal(em->n_dims, 2);
    assert_int_equal(em->n_elems, 0);
    assert_int_equal(em->nbytes, 0);
    assert_int_equal(xa_st_find(f, "f16_in")->dtype, XA_DTYPE_F16);
    assert_int_equal(xa_st_find(f, "bf16_in")->dtype, XA_DTYPE_BF16);

    assert_int_equal(xa_st_metadata_count(f), 3);
    assert_string_equal(xa_st_metadata_key(f, 0), "format");
    assert_string_equal(xa_st_metadata_value(f, 0), "pt");
    assert_string_equal(xa_st_metadata_get(f, "generator"), "tests/golden/gen_io_fixtures.py");
    assert_null(xa_st_metadata_get(f, "absent"));
    assert_null(xa_st_metadata_key(f, 3));
}

static void test_st_read_f32_rejects_integer_dtype(void **state) {
    const xa_st_file *f = *state;
    float buf[5];
    int64_t shape[1] = {5};
    assert_int_equal(xa_st_read_f32(f, "ids", shape, 1, buf), XA_STATUS_SHAPE);
    xt_assert_error_mentions("I64");
    xt_assert_error_mentions("ids");
}

static void test_st_read_f32_shape_mismatch(void **state) {
    const xa_st_file *f = *state;
    const xa_st_tensor *t = xa_st_find(f, "empty");
    int64_t want[2] = {3, 0};
    float dummy;
    assert_int_equal(xa_st_read_f32(f, t->name, want, 2, &dummy), XA_STATUS_SHAPE);
    xt_assert_error_mentions("tensor 'empty'");
    xt_assert_error_mentions("io_golden.safetensors");
    xt_assert_error_mentions("[0, 3]"); /* found */
    xt_assert_error_mentions("[3, 0]"); /* expected */
    int64_t rank1[1] = {0};
    assert_int_equal(xa_st_read_f32(f, t->name, rank1, 1, &dummy), XA_STATUS_SHAPE);
}

static void test_st_read_f32_not_found(void **state) {
    const xa_st_file *f = *state;
    float dummy;
    assert_int_equal(xa_st_read_f32(f, "encoder.layer.0.output.dense.weight", NULL, 0, &dummy),
                     XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("encoder.layer.0.output.dense.weight");
    xt_assert_error_mentions("io_golden.safetensors");
}

/* A missing name that exists with the "roberta." prefix gets a hint naming the stored tensor. */
static void test_st_read_f32_prefix_hint(void **state) {
    (void)state;
    float one = 1.0f;
    xa_st_entry e = {.name = "roberta.embeddings.LayerNorm.weight", .dtype = XA_DTYPE_F32,
                     .n_dims = 1, .shape = {1}, .f32 = &one};
    const char *path = xt_tmp_path("prefix.safetensors");
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_OK);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    float v = 0;
    assert_int_equal(xa_st_read_f32(f, "embeddings.LayerNorm.weight", NULL, 0, &v),
                     XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("the file has 'roberta.embeddings.LayerNorm.weight'");
    xa_st_close(f);
}

/* Look-up in a file with many tensors goes through the sorted index. */
static void test_st_find_many_tensors(void **state) {
    (void)state;
    enum { N = 3000 };
    xa_st_entry *e = calloc(N, sizeof *e);
    char(*names)[48] = calloc(N, sizeof *names);
    float *vals = calloc(N, sizeof *vals);
    assert_non_null(e);
    assert_non_null(names);
    assert_non_null(vals);
    for (int i = 0; i < N; i++) {
        /* Names in reverse order of the data, so file order and name order differ. */
        snprintf(names[i], sizeof names[i], "encoder.layer.%d.weight", N - i);
        vals[i] = (float)i;
        e[i] = (xa_st_entry){.name = names[i], .dtype = XA_DTYPE_F32, .n_dims = 1, .shape = {1},
                             .f32 = &vals[i]};
    }
    const char *path = xt_tmp_path("many.safetensors");
    assert_int_equal(xa_st_write(path, e, N, NULL, 0), XA_STATUS_OK);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_int_equal(xa_st_count(f), N);
    for (int i = 0; i < N; i++) {
        const xa_st_tensor *t = xa_st_find(f, names[i]);
        assert_non_null(t);
        assert_ptr_equal(t, xa_st_at(f, (size_t)i));
        float v;
        assert_int_equal(xa_st_tensor_to_f32(t, &v), XA_STATUS_OK);
        assert_true(v == (float)i);
    }
    assert_null(xa_st_find(f, "encoder.layer.0.weight"));
    assert_null(xa_st_find(f, ""));
    xa_st_close(f);
    free(e);
    free(names);
    free(vals);
}

/* Files from other writers may leave the header unpadded: data at odd addresses must read. */
static void test_st_unaligned_data(void **state) {
    (void)state;
    float vals[3] = {1.5f, -2.25f, 1e-3f};
    unsigned char data[12 + 4];
    memcpy(data, vals, 12);
    uint16_t h = 0x3C00; /* 1.0 in F16 */
    memcpy(data + 12, &h, 2);
    h = 0xC000; /* -2.0 in BF16 */
    memcpy(data + 14, &h, 2);
    char header[256];
    snprintf(header, sizeof header, "%s",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
             "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[12,14]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[14,16]}}");
    while ((8 + strlen(header)) % 4 != 1) strcat(header, " "); /* data at an odd address */
    const char *path = write_raw_st("unaligned.safetensors", header, data, sizeof data,
                                    ~(uint64_t)0);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_true(((uintptr_t)xa_st_find(f, "a")->data & 3) != 0);
    float got[3];
    int64_t shape[1] = {3};
    assert_int_equal(xa_st_read_f32(f, "a", shape, 1, got), XA_STATUS_OK);
    xt_assert_close("unaligned f32", got, vals, 3, 0.0f, 0.0f);
    assert_int_equal(xa_st_read_f32(f, "h", NULL, 0, got), XA_STATUS_OK);
    assert_true(got[0] == 1.0f);
    assert_int_equal(xa_st_read_f32(f, "b", NULL, 0, got), XA_STATUS_OK);
    assert_true(got[0] == -2.0f);
    xa_st_close(f);
}

static void test_st_empty_file_and_zero_sized_tensors(void **state) {
    (void)state;
    xa_st_file *f = NULL;
    const char *path = write_st("empty_header.safetensors", "{}", 0);
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_int_equal(xa_st_count(f), 0);
    assert_int_equal(xa_st_metadata_count(f), 0);
    xa_st_close(f);
    /* Zero-sized tensors may sit at any offset inside or at the end of the buffer. */
    path = write_st("zero_sized.safetensors",
                    "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"y\":{\"dtype\":\"I8\",\"shape\":[2,0],\"data_offsets\":[4,4]}}",
                    4);
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_int_equal(xa_st_count(f), 3);
    assert_string_equal(xa_st_at(f, 0)->name, "a");
    xa_st_close(f);
    xa_st_close(NULL);
}

/* ---- writer ---------------------------------------------------------------------------------------- */

static void test_st_roundtrip_bit_identical(void **state) {
    (void)state;
    float w[2][3] = {{1.0f, -0.0f, 3.5e-40f}, {INFINITY, -INFINITY, 1e30f}};
    uint32_t qnan = 0x7FC12345u;
    memcpy(&w[1][2], &qnan, 4); /* a NaN with payload survives a raw F32 round trip */
    int64_t ids[4] = {0, -1, INT64_MAX, 250001};
    uint8_t mask[5] = {1, 0, 1, 1, 0};
    uint16_t bf[2] = {0x3F80, 0xFF81};
    float scalar = 7.0f;
    xa_st_entry e[] = {
        {.name = "w", .dtype = XA_DTYPE_F32, .n_dims = 2, .shape = {2, 3}, .f32 = &w[0][0]},
        {.name = "ids", .dtype = XA_DTYPE_I64, .n_dims = 1, .shape = {4}, .raw = ids},
        {.name = "mask", .dtype = XA_DTYPE_BOOL, .n_dims = 1, .shape = {5}, .raw = mask},
        {.name = "bf", .dtype = XA_DTYPE_BF16, .n_dims = 2, .shape = {1, 2}, .raw = bf},
        {.name = "s", .dtype = XA_DTYPE_F32, .n_dims = 0, .f32 = &scalar},
        {.name = "nothing", .dtype = XA_DTYPE_F16, .n_dims = 1, .shape = {0}},
    };
    xa_st_kv meta[] = {{"format", "pt"}, {"xadapt.phase", "lang \"de\" \xc3\xa9"}};
    const char *path = xt_tmp_path("roundtrip.safetensors");
    assert_int_equal(xa_st_write(path, e, 6, meta, 2), XA_STATUS_OK);

    size_t n = 0;
    char *bytes = xt_read_file(path, &n);
    assert_non_null(bytes);
    uint64_t nh;
    memcpy(&nh, bytes, 8);
    assert_int_equal(nh % 8, 0);
    assert_int_equal(bytes[8], '{');
    assert_int_equal(n, 8 + nh + sizeof w + sizeof ids + sizeof mask + sizeof bf + 4);
    free(bytes);

    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_int_equal(xa_st_count(f), 6);
    for (size_t i = 0; i < 6; i++) {
        const xa_st_tensor *t = xa_st_find(f, e[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, e[i].dtype);
        assert_int_equal(t->n_dims, e[i].n_dims);
        for (int d = 0; d < t->n_dims; d++) assert_int_equal(t->shape[d], e[i].shape[d]);
        const void *src = e[i].f32 ? (const void *)e[i].f32 : e[i].raw;
        if (t->nbytes) assert_memory_equal(t->data, src, t->nbytes);
    }
    assert_string_equal(xa_st_at(f, 0)->name, "w"); /* written order kept */
    assert_string_equal(xa_st_at(f, 4)->name, "s");
    assert_int_equal(xa_st_metadata_count(f), 2);
    assert_string_equal(xa_st_metadata_get(f, "xadapt.phase"), "lang \"de\" \xc3\xa9");
    assert_string_equal(xa_st_metadata_key(f, 1), "xadapt.phase");
    xa_st_close(f);
}

/* Float input written as F16 / BF16 is rounded by the converters, and reads back widened. */
static void test_st_roundtrip_f16_bf16_from_float(void **state) {
    (void)state;
    enum { N = 20000 }; /* more than one conversion chunk */
    float *src = malloc(N * sizeof *src), *back = malloc(N * sizeof *back);
    assert_non_null(src);
    assert_non_null(back);
    xa_rng rng;
    xa_rng_seed(&rng, 7, 0);
    for (int i = 0; i < N; i++) src[i] = xa_rng_normal(&rng) * 100.0f;
    src[0] = 1e-7f; /* F16 subnormal */
    xa_st_entry e[2] = {
        {.name = "h", .dtype = XA_DTYPE_F16, .n_dims = 2, .shape = {100, N / 100}, .f32 = src},
        {.name = "b", .dtype = XA_DTYPE_BF16, .n_dims = 1, .shape = {N}, .f32 = src},
    };
    const char *path = xt_tmp_path("half.safetensors");
    assert_int_equal(xa_st_write(path, e, 2, NULL, 0), XA_STATUS_OK);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_int_equal(xa_st_read_f32(f, "h", e[0].shape, 2, back), XA_STATUS_OK);
    for (int i = 0; i < N; i++) {
        float want = xa_f16_to_f32(xa_f32_to_f16(src[i]));
        if (bits32(back[i]) != bits32(want)) fail_msg("h[%d]: %g vs %g", i, back[i], want);
    }
    /* F16 keeps 11 significant bits: relative error <= 2^-11 for normal values. */
    xt_assert_close("f16 round trip", back + 1, src + 1, N - 1, 1e-4f, 4.9e-4f);
    assert_int_equal(xa_st_read_f32(f, "b", e[1].shape, 1, back), XA_STATUS_OK);
    xt_assert_close("bf16 round trip", back, src, N, 0.0f, 3.9e-3f); /* 2^-8 */
    xa_st_close(f);
    free(src);
    free(back);
}

/* Header lengths stay multiples of 8 whatever the name lengths. */
static void test_st_header_padding(void **state) {
    (void)state;
    float v = 1.0f;
    char name[16];
    for (int len = 1; len <= 9; len++) {
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        xa_st_entry e = {.name = name, .dtype = XA_DTYPE_F32, .n_dims = 1, .shape = {1}, .f32 = &v};
        const char *path = xt_tmp_path("pad.safetensors");
        assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_OK);
        size_t n;
        char *bytes = xt_read_file(path, &n);
        uint64_t nh;
        memcpy(&nh, bytes, 8);
        assert_int_equal(nh % 8, 0);
        assert_int_equal(n, 8 + nh + 4);
        free(bytes);
        xa_st_file *f = NULL;
        assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
        xa_st_close(f);
    }
}

/* A rejected write (duplicate name) leaves the previous good file byte for byte, and no
 * temporary file behind. */
static void test_st_write_failure_keeps_target(void **state) {
    (void)state;
    float v[2] = {1.0f, 2.0f};
    xa_st_entry good = {.name = "a", .dtype = XA_DTYPE_F32, .n_dims = 1, .shape = {2}, .f32 = v};
    const char *path = xt_tmp_path("keep.safetensors");
    assert_int_equal(xa_st_write(path, &good, 1, NULL, 0), XA_STATUS_OK);
    size_t n0;
    char *before = xt_read_file(path, &n0);

    xa_st_entry dup[2] = {good, good};
    dup[1].shape[0] = 1;
    assert_int_equal(xa_st_write(path, dup, 2, NULL, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("duplicate tensor name 'a'");
    xt_assert_error_mentions("keep.safetensors");

    /* Rejected after validation too: an entry without data. */
    xa_st_entry nodata[2] = {good, {.name = "b", .dtype = XA_DTYPE_F32, .n_dims = 1, .shape = {2}}};
    assert_int_equal(xa_st_write(path, nodata, 2, NULL, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("no data");

    size_t n1;
    char *after = xt_read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    char tmp[4300];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        fail_msg("path too long");
    }
    assert_false(path_exists(tmp));
    free(before);
    free(after);
}

static void test_st_write_rejects_bad_entries(void **state) {
    (void)state;
    float v = 1.0f;
    int8_t b = 1;
    const char *path = xt_tmp_path("bad_entries.safetensors");
    xa_st_entry e = {.name = "", .dtype = XA_DTYPE_F32, .n_dims = 1, .shape = {1}, .f32 = &v};
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("invalid name");
    e.name = "__metadata__";
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_USAGE);
    e.name = "x";
    e.shape[0] = -2;
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("shape[0] is -2");
    e.shape[0] = 1;
    e.n_dims = 9;
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_USAGE);
    e.n_dims = 1;
    e.dtype = XA_DTYPE_I8; /* float input cannot become I8 */
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_USAGE);
    xt_assert_error_mentions("I8");
    e.f32 = NULL;
    e.raw = &b;
    assert_int_equal(xa_st_write(path, &e, 1, NULL, 0), XA_STATUS_OK);
    xa_st_kv meta[2] = {{"k", "v"}, {"k", "w"}};
    assert_int_equal(xa_st_write(path, &e, 1, meta, 2), XA_STATUS_USAGE);
    xt_assert_error_mentions("duplicate metadata key 'k'");
    /* No tensors at all is a valid file. */
    assert_int_equal(xa_st_write(path, NULL, 0, meta, 1), XA_STATUS_OK);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    assert_int_equal(xa_st_count(f), 0);
    assert_string_equal(xa_st_metadata_get(f, "k"), "v");
    xa_st_close(f);
}

static void test_st_dtype_table(void **state) {
    (void)state;
    static const char *const names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8",
                                        "U8", "BOOL", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2"};
    static const size_t sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 2, 4, 8, 1, 1};
    for (int i = 0; i < XA_DTYPE_COUNT; i++) {
        assert_string_equal(xa_dtype_name((xa_dtype)i), names[i]);
        assert_int_equal(xa_dtype_size((xa_dtype)i), sizes[i]);
        xa_dtype d;
        assert_true(xa_dtype_parse(names[i], &d));
        assert_int_equal(d, i);
    }
    xa_dtype d;
    assert_false(xa_dtype_parse("f32", &d));
    assert_string_equal(xa_dtype_name((xa_dtype)99), "?");
    assert_int_equal(xa_dtype_size((xa_dtype)99), 0);
}

static void test_st_open_missing_file(void **state) {
    (void)state;
    expect_open_error(xt_tmp_path("absent.safetensors"), XA_STATUS_NOT_FOUND, "No such file");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_reject_short_file),
        cmocka_unit_test(test_st_reject_header_past_end),
        cmocka_unit_test(test_st_reject_header_over_100mb),
        cmocka_unit_test(test_st_reject_invalid_json),
        cmocka_unit_test(test_st_reject_header_not_object),
        cmocka_unit_test(test_st_reject_entry_not_object),
        cmocka_unit_test(test_st_reject_unknown_dtype),
        cmocka_unit_test(test_st_reject_missing_field),
        cmocka_unit_test(test_st_reject_bad_field_type),
        cmocka_unit_test(test_st_reject_negative_shape),
        cmocka_unit_test(test_st_reject_non_integer_shape),
        cmocka_unit_test(test_st_reject_too_many_dims),
        cmocka_unit_test(test_st_reject_size_mismatch),
        cmocka_unit_test(test_st_reject_offsets_out_of_bounds),
        cmocka_unit_test(test_st_reject_begin_after_end),
        cmocka_unit_test(test_st_reject_overlap),
        cmocka_unit_test(test_st_reject_gap),
        cmocka_unit_test(test_st_reject_trailing_bytes),
        cmocka_unit_test(test_st_reject_duplicate_names),
        cmocka_unit_test(test_st_reject_size_overflow),
        cmocka_unit_test(test_st_reject_metadata_not_string),
        cmocka_unit_test(test_st_open_missing_file),
        cmocka_unit_test(test_st_golden_f16_to_f32),
        cmocka_unit_test(test_st_golden_bf16_to_f32),
        cmocka_unit_test(test_st_golden_f32_to_f16),
        cmocka_unit_test(test_st_golden_f32_to_bf16),
        cmocka_unit_test(test_st_conversion_spot_values),
        cmocka_unit_test(test_st_golden_listing_and_metadata),
        cmocka_unit_test(test_st_read_f32_rejects_integer_dtype),
        cmocka_unit_test(test_st_read_f32_shape_mismatch),
        cmocka_unit_test(test_st_read_f32_not_found),
        cmocka_unit_test(test_st_read_f32_prefix_hint),
        cmocka_unit_test(test_st_find_many_tensors),
        cmocka_unit_test(test_st_unaligned_data),
        cmocka_unit_test(test_st_empty_file_and_zero_sized_tensors),
        cmocka_unit_test(test_st_roundtrip_bit_identical),
        cmocka_unit_test(test_st_roundtrip_f16_bf16_from_float),
        cmocka_unit_test(test_st_header_padding),
        cmocka_unit_test(test_st_write_failure_keeps_target),
        cmocka_unit_test(test_st_write_rejects_bad_entries),
        cmocka_unit_test(test_st_dtype_table),
    };
    return cmocka_run_group_tests_name("safetensors", tests, group_setup, group_teardown);
}
