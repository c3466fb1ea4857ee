/* io/safetensors: reader (mmap, validation, look-up, F16/BF16 -> F32) and atomic writer.
 *
 * Implements the safetensors format as specified by huggingface/safetensors (README "Format" and
 * the Rust crate's validation): u64 LE header length N (at most 100,000,000), a JSON object of
 * tensor entries plus an optional "__metadata__" string->string map, then a byte buffer that the
 * tensors tile exactly: sorted by offset, the first begins at 0, each begins where the previous
 * ends, the last ends at the end of the file, and each spans n_elems * dtype_size bytes.
 * The JSON is parsed by jansson (JSON_REJECT_DUPLICATES); no jansson type leaves this file.
 *
 * Conversions follow IEEE 754-2008 binary16 (1-5-10, bias 15) and bfloat16 (the top half of a
 * binary32). Narrowing rounds to nearest, ties to even, as torch's Tensor.half()/.bfloat16() do.
 *
 * Does not: support big-endian hosts (refused at compile time), write through the mapping
 * (it is PROT_READ), convert integer dtypes to F32 (xa_st_tensor.data gives the raw bytes), or
 * keep data aligned: files from other writers may put a tensor at any byte offset, so every read
 * of tensor data goes through memcpy.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "io/jsonutil.h"

#include "io/file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io/safetensors assumes a little-endian host (safetensors data is little-endian)"
#endif

#define ST_MAX_HEADER 100000000u /* the reference implementation's limit, in bytes */

struct xa_st_file {
    char *path;                   /* owned copy of the path given to xa_st_open */
    void *map;                    /* PROT_READ mapping of the whole file */
    size_t map_size;              /* file size in bytes */
    size_t n;                     /* number of tensors */
    xa_st_tensor *tensors;        /* (n) in file order; names owned (malloc'ed) */
    const xa_st_tensor **by_name; /* (n) pointers into tensors, sorted by strcmp of name */
    size_t n_meta;
    char **meta_keys;             /* (n_meta) owned */
    char **meta_values;           /* (n_meta) owned */
    void **owned;                 /* (n_owned) buffers of copied tensors (xa_st_wrap), freed */
    size_t n_owned;
};

/* ---- dtypes ------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} g_dtypes[XA_DTYPE_COUNT] = {
    [XA_DTYPE_F32] = {"F32", 4},     [XA_DTYPE_F16] = {"F16", 2},
    [XA_DTYPE_BF16] = {"BF16", 2},   [XA_DTYPE_F64] = {"F64", 8},
    [XA_DTYPE_I64] = {"I64", 8},     [XA_DTYPE_I32] = {"I32", 4},
    [XA_DTYPE_I16] = {"I16", 2},     [XA_DTYPE_I8] = {"I8", 1},
    [XA_DTYPE_U8] = {"U8", 1},       [XA_DTYPE_BOOL] = {"BOOL", 1},
    [XA_DTYPE_U16] = {"U16", 2},     [XA_DTYPE_U32] = {"U32", 4},
    [XA_DTYPE_U64] = {"U64", 8},     [XA_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [XA_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *xa_dtype_name(xa_dtype dt) {
    return (unsigned)dt < XA_DTYPE_COUNT ? g_dtypes[dt].name : "?";
}

size_t xa_dtype_size(xa_dtype dt) {
    return (unsigned)dt < XA_DTYPE_COUNT ? g_dtypes[dt].size : 0;
}

int xa_dtype_parse(const char *name, xa_dtype *out) {
    for (int i = 0; i < XA_DTYPE_COUNT; i++) {
        if (strcmp(name, g_dtypes[i].name) == 0) {
            *out = (xa_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* ---- scalar conversions --------------------------------------------------------------------------- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float xa_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) { /* inf; NaN keeps its payload and becomes quiet, as F16C's vcvtph2ps does */
        return bits_f32(sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u));
    }
    if (exp != 0) return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13)); /* rebias 15 -> 127 */
    if (mant == 0) return bits_f32(sign); /* +-0 */
    /* Subnormal: value = mant * 2^-24. Normalise so the leading 1 sits at bit 10; the binary32
     * exponent of 1.m * 2^(p-24) with p = 10 - shifts is 127 - 14 - shifts = 113 - shifts. */
    uint32_t e32 = 113;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e32--;
    }
    return bits_f32(sign | (e32 << 23) | ((mant & 0x3FFu) << 13));
}

uint16_t xa_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u; /* NaN -> canonical quiet NaN, sign kept */
    /* 65520 = 0x477FF000 is halfway between 65504 (max half, odd mantissa) and 65536: ties to
     * even round it up, so everything from there on (and inf) becomes inf. */
    if (a >= 0x477FF000u) return sign | 0x7C00u;
    if (a >= 0x38800000u) { /* >= 2^-14: a normal half. Rebias and round the 13 dropped bits. */
        uint32_t r = a + 0x0FFFu + ((a >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    /* Subnormal half: round(x * 2^24). x = m * 2^(e-150) with m the 24-bit significand, so
     * x * 2^24 = m >> (126 - e). At or below 2^-25 (e <= 102 with m = 2^23) it rounds to 0. */
    uint32_t e = a >> 23;
    if (e < 102) return sign;
    uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14 .. 24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++; /* q may reach 0x400: the smallest normal */
    return (uint16_t)(sign | q);
}

float xa_bf16_to_f32(uint16_t b) {
    return bits_f32((uint32_t)b << 16);
}

uint16_t xa_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest even; overflow carries into inf */
    return (uint16_t)(u >> 16);
}

/* ---- reader --------------------------------------------------------------------------------------- */

static void format_shape(char *buf, size_t n, const int64_t *shape, int n_dims) {
    size_t len = 0;
    len += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < n_dims && len < n; i++) {
        len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    }
    if (len < n) snprintf(buf + len, n - len, "]");
}

static void tensor_where(char *buf, size_t n, const char *path, const char *name) {
    snprintf(buf, n, "%s: tensor '%s'", path, name);
}

void xa_st_close(xa_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    if (f->tensors) {
        for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    }
    free(f->tensors);
    free(f->by_name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    for (size_t i = 0; i < f->n_owned; i++) free(f->owned[i]);
    free(f->owned);
    free(f->path);
    free(f);
}

/* Parse "__metadata__": an object whose values are all strings. */
static xa_status parse_metadata(xa_st_file *f, json_t *meta) {
    if (!json_is_object(meta)) {
        return xa_error_set(XA_STATUS_FORMAT, f->path, "an object of string values", NULL,
                            "'__metadata__' is not an object");
    }
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) {
        return xa_error_set(XA_STATUS_NOMEM, f->path, NULL, NULL, "cannot allocate metadata");
    }
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value)) {
            return xa_error_set(XA_STATUS_FORMAT, f->path, "a string value", NULL,
                                "'__metadata__' key '%s' has a non-string value", key);
        }
        f->meta_keys[f->n_meta] = strdup(key);
        f->meta_values[f->n_meta] = strdup(json_string_value(value));
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1]) {
            return xa_error_set(XA_STATUS_NOMEM, f->path, NULL, NULL, "cannot allocate metadata");
        }
    }
    return XA_STATUS_OK;
}

/* Read a non-negative JSON integer, or explain why it is not one. */
static int json_to_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    if (x < 0) return 0;
    *out = (uint64_t)x;
    return 1;
}


/* Parse one tensor entry into t (name already set). data_size: bytes of the byte buffer. */
static xa_status parse_tensor(xa_st_tensor *t, const xa_st_file *f, const json_t *entry,
                              size_t data_off, size_t data_size) {
    char where[XA_ERROR_FIELD];
    tensor_where(where, sizeof where, f->path, t->name);
    if (!json_is_object(entry)) {
        return xa_error_set(XA_STATUS_FORMAT, where,
                            "an object with dtype, shape and data_offsets", NULL,
                            "entry is %s", xa_io_json_kind(entry));
    }
    const json_t *jdt = json_object_get(entry, "dtype");
    const json_t *jshape = json_object_get(entry, "shape");
    const json_t *joff = json_object_get(entry, "data_offsets");
    if (!jdt || !jshape || !joff) {
        return xa_error_set(XA_STATUS_FORMAT, where, "keys dtype, shape and data_offsets", NULL,
                            "missing field '%s'",
                            !jdt ? "dtype" : !jshape ? "shape" : "data_offsets");
    }
    if (!json_is_string(jdt)) {
        return xa_error_set(XA_STATUS_FORMAT, where, "a dtype string such as \"F32\"", NULL,
                            "dtype is %s", xa_io_json_kind(jdt));
    }
    if (!xa_dtype_parse(json_string_value(jdt), &t->dtype)) {
        return xa_error_set(XA_STATUS_FORMAT, where,
                            "one of F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL U16 U32 U64 F8_E4M3 "
                            "F8_E5M2",
                            NULL, "unknown dtype '%s'", json_string_value(jdt));
    }
    if (!json_is_array(jshape)) {
        return xa_error_set(XA_STATUS_FORMAT, where, "an array of non-negative integers", NULL,
                            "shape is %s", xa_io_json_kind(jshape));
    }
    size_t nd = json_array_size(jshape);
    if (nd > XA_ST_MAX_DIMS) {
        return xa_error_set(XA_STATUS_FORMAT, where, "at most 8 dimensions", NULL,
                            "shape has %zu dimensions", nd);
    }
    t->n_dims = (int)nd;
    size_t n_elems = 1;
    for (size_t i = 0; i < nd; i++) {
        const json_t *d = json_array_get(jshape, i);
        uint64_t v;
        if (!json_to_u64(d, &v)) {
            if (json_is_integer(d)) {
                return xa_error_set(XA_STATUS_FORMAT, where, "non-negative integer dimensions",
                                    NULL, "shape[%zu] is negative (%lld)", i,
                                    (long long)json_integer_value(d));
            }
            return xa_error_set(XA_STATUS_FORMAT, where, "non-negative integer dimensions", NULL,
                                "shape[%zu] is %s, not an integer", i, xa_io_json_kind(d));
        }
        if (v > (uint64_t)INT64_MAX || v > SIZE_MAX || !xa_size_mul(n_elems, (size_t)v, &n_elems) ||
            n_elems > (size_t)INT64_MAX) {
            return xa_error_set(XA_STATUS_FORMAT, where, "a shape whose size fits in 64 bits", NULL,
                                "shape product overflows at dimension %zu", i);
        }
        t->shape[i] = (int64_t)v;
    }
    t->n_elems = (int64_t)n_elems;
    if (!xa_size_mul(n_elems, xa_dtype_size(t->dtype), &t->nbytes)) {
        return xa_error_set(XA_STATUS_FORMAT, where, "a byte size that fits in 64 bits", NULL,
                            "%zu elements of %s overflow the byte size", n_elems,
                            xa_dtype_name(t->dtype));
    }
    uint64_t begin, end;
    if (!json_is_array(joff) || json_array_size(joff) != 2 ||
        !json_to_u64(json_array_get(joff, 0), &begin) ||
        !json_to_u64(json_array_get(joff, 1), &end)) {
        return xa_error_set(XA_STATUS_FORMAT, where,
                            "data_offsets as [begin, end], two non-negative integers", NULL,
                            "data_offsets is malformed");
    }
    if (begin > end) {
        return xa_error_set(XA_STATUS_FORMAT, where, "begin <= end", NULL,
                            "data_offsets [%" PRIu64 ", %" PRIu64 "] has begin > end", begin, end);
    }
    if (end > data_size) {
        return xa_error_set(XA_STATUS_FORMAT, where, NULL, "truncated file?",
                            "data_offsets [%" PRIu64 ", %" PRIu64
                            "] out of bounds: the data buffer has %zu bytes",
                            begin, end, data_size);
    }
    if (end - begin != t->nbytes) {
        char sh[256];
        format_shape(sh, sizeof sh, t->shape, t->n_dims);
        return xa_error_set(XA_STATUS_FORMAT, where, NULL, NULL,
                            "shape %s of %s needs %zu bytes but data_offsets [%" PRIu64
                            ", %" PRIu64 "] span %" PRIu64 " bytes",
                            sh, xa_dtype_name(t->dtype), t->nbytes, begin, end, end - begin);
    }
    t->offset = data_off + (size_t)begin;
    t->data = (const char *)f->map + t->offset;
    return XA_STATUS_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const xa_st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b) {
    const xa_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Fill the sorted name index; FORMAT naming a duplicate name. */
static xa_status index_names(xa_st_file *f) {
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->n, sizeof *f->by_name, cmp_name);
    for (size_t i = 1; i < f->n; i++) {
        if (strcmp(f->by_name[i]->name, f->by_name[i - 1]->name) == 0) {
            return xa_error_set(XA_STATUS_FORMAT, f->path, "unique tensor names", NULL,
                                "duplicate tensor '%s'", f->by_name[i]->name);
        }
    }
    return XA_STATUS_OK;
}

/* The tensors, sorted by offset, must tile [data_off, map_size) exactly. */
static xa_status check_tiling(const xa_st_file *f, size_t data_off) {
    size_t expect = data_off;
    char where[XA_ERROR_FIELD];
    for (size_t i = 0; i < f->n; i++) {
        const xa_st_tensor *t = &f->tensors[i];
        if (t->offset != expect) {
            tensor_where(where, sizeof where, f->path, t->name);
            if (t->offset < expect) {
                return xa_error_set(XA_STATUS_FORMAT, where, "non-overlapping tensor data", NULL,
                                    "data starts at byte %zu of the buffer, overlapping '%s' "
                                    "which ends at %zu",
                                    t->offset - data_off, f->tensors[i - 1].name,
                                    expect - data_off);
            }
            return xa_error_set(XA_STATUS_FORMAT, where,
                                "contiguous tensor data (no gaps between tensors)", NULL,
                                "data starts at byte %zu of the buffer, leaving a gap of %zu bytes "
                                "after %s%s%s",
                                t->offset - data_off, t->offset - expect, i ? "'" : "",
                                i ? f->tensors[i - 1].name : "the header", i ? "'" : "");
        }
        expect = t->offset + t->nbytes;
    }
    if (expect != f->map_size) {
        return xa_error_set(XA_STATUS_FORMAT, f->path, "tensor data that ends at the end of the file",
                            NULL, "%zu bytes after the last tensor belong to no tensor",
                            f->map_size - expect);
    }
    return XA_STATUS_OK;
}

xa_status xa_st_open(xa_st_file **out, const char *path) {
    xa_status st = XA_STATUS_OK;
    xa_st_file *f = NULL;
    json_t *root = NULL;
    int fd = -1;

    *out = NULL;
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate a safetensors file");
        goto fail;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        st = xa_error_set(e == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL,
                          "cannot open: %s", strerror(e));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = xa_error_set(XA_STATUS_IO, path, "a regular file", NULL, "cannot stat or not a file");
        goto fail;
    }
    if (sb.st_size < 8) {
        st = xa_error_set(XA_STATUS_FORMAT, path, "at least 8 bytes (the header length)",
                          "not a safetensors file, or truncated", "file is %lld bytes long",
                          (long long)sb.st_size);
        goto fail;
    }
    f->map_size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "mmap of %zu bytes failed: %s",
                          f->map_size, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;

    uint64_t n_header;
    memcpy(&n_header, f->map, 8); /* little-endian host */
    if (n_header > ST_MAX_HEADER) {
        st = xa_error_set(XA_STATUS_FORMAT, path, "a header of at most 100000000 bytes",
                          "not a safetensors file?", "header length is %" PRIu64 " bytes",
                          n_header);
        goto fail;
    }
    if (n_header > f->map_size - 8) {
        st = xa_error_set(XA_STATUS_FORMAT, path, NULL, "truncated file?",
                          "header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                          n_header, f->map_size);
        goto fail;
    }
    size_t data_off = 8 + (size_t)n_header;
    size_t data_size = f->map_size - data_off;

    json_error_t jerr;
    root = json_loadb((const char *)f->map + 8, (size_t)n_header, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = xa_error_set(XA_STATUS_FORMAT, path, "a JSON object header", NULL,
                          "invalid JSON header at line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = xa_error_set(XA_STATUS_FORMAT, path, "a JSON object header", NULL,
                          "header is %s, not an object", xa_io_json_kind(root));
        goto fail;
    }

    size_t n_entries = json_object_size(root);
    f->tensors = calloc(n_entries ? n_entries : 1, sizeof *f->tensors);
    f->by_name = calloc(n_entries ? n_entries : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) {
        st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate %zu tensors",
                          n_entries);
        goto fail;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((st = parse_metadata(f, value))) goto fail;
            continue;
        }
        xa_st_tensor *t = &f->tensors[f->n];
        if (!(t->name = strdup(key))) {
            st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate a name");
            goto fail;
        }
        f->n++;
        if ((st = parse_tensor(t, f, value, data_off, data_size))) goto fail;
    }
    json_decref(root);
    root = NULL;

    /* File order = data offset order; the tiling check needs that order too. */
    qsort(f->tensors, f->n, sizeof *f->tensors, cmp_offset);
    if ((st = check_tiling(f, data_off))) goto fail;
    if ((st = index_names(f))) goto fail; /* JSON_REJECT_DUPLICATES: no duplicates here */
    *out = f;
    return XA_STATUS_OK;

fail:
    json_decref(root);
    if (fd >= 0) close(fd);
    xa_st_close(f);
    return st;
}

xa_status xa_st_wrap(xa_st_file **out, const char *path, void *map, size_t map_size,
                     xa_st_tensor *tensors, size_t n, void **owned, size_t n_owned) {
    *out = NULL;
    xa_st_file *f = calloc(1, sizeof *f);
    xa_status st = XA_STATUS_OK;
    if (f) {
        f->map = map;
        f->map_size = map_size;
        f->tensors = tensors;
        f->n = n;
        f->owned = owned;
        f->n_owned = n_owned;
    }
    if (!f || !(f->path = strdup(path)) || !(f->by_name = calloc(n ? n : 1, sizeof *f->by_name))) {
        st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate %zu tensors", n);
        goto fail;
    }
    if ((st = index_names(f))) goto fail;
    *out = f;
    return XA_STATUS_OK;
fail:
    if (f) {
        xa_st_close(f);
    } else {
        if (map) munmap(map, map_size);
        for (size_t i = 0; i < n; i++) free((char *)tensors[i].name);
        free(tensors);
        for (size_t i = 0; i < n_owned; i++) free(owned[i]);
        free(owned);
    }
    return st;
}

const char *xa_st_path(const xa_st_file *f) {
    return f->path;
}

size_t xa_st_count(const xa_st_file *f) {
    return f->n;
}

const xa_st_tensor *xa_st_at(const xa_st_file *f, size_t i) {
    return i < f->n ? &f->tensors[i] : NULL;
}

const xa_st_tensor *xa_st_find(const xa_st_file *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

xa_status xa_st_tensor_to_f32(const xa_st_tensor *t, float *dst) {
    const unsigned char *src = t->data;
    size_t n = (size_t)t->n_elems;
    switch (t->dtype) {
    case XA_DTYPE_F32:
        if (n) memcpy(dst, src, n * sizeof(float));
        return XA_STATUS_OK;
    case XA_DTYPE_F16:
        for (size_t i = 0; i < n; i++) { /* hot loop: memcpy because data may be unaligned */
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = xa_f16_to_f32(h);
        }
        return XA_STATUS_OK;
    case XA_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, src + 2 * i, 2);
            dst[i] = xa_bf16_to_f32(b);
        }
        return XA_STATUS_OK;
    default:
        return xa_error_set(XA_STATUS_SHAPE, t->name, "dtype F32, F16 or BF16",
                            NULL, "tensor '%s' has dtype %s, which does not convert to F32",
                            t->name, xa_dtype_name(t->dtype));
    }
}

/* For a missing name, look for the same tensor with the "roberta."/"bert." prefix added or
 * removed, the usual difference between a bare encoder file and a file with a head. */
static const xa_st_tensor *find_prefix_variant(const xa_st_file *f, const char *name) {
    static const char *const prefixes[] = {"roberta.", "bert."};
    char buf[1024];
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t lp = strlen(prefixes[i]);
        const xa_st_tensor *t = NULL;
        if (strncmp(name, prefixes[i], lp) == 0) {
            t = xa_st_find(f, name + lp);
        } else if ((size_t)snprintf(buf, sizeof buf, "%s%s", prefixes[i], name) < sizeof buf) {
            t = xa_st_find(f, buf);
        }
        if (t) return t;
    }
    return NULL;
}

xa_status xa_st_read_f32(const xa_st_file *f, const char *name, const int64_t *shape, int n_dims,
                         float *dst) {
    char where[XA_ERROR_FIELD];
    tensor_where(where, sizeof where, f->path, name);
    const xa_st_tensor *t = xa_st_find(f, name);
    if (!t) {
        const xa_st_tensor *v = find_prefix_variant(f, name);
        char hint[XA_ERROR_FIELD];
        if (v) {
            snprintf(hint, sizeof hint, "the file has '%s': add or strip the model prefix", v->name);
        } else {
            snprintf(hint, sizeof hint, "wrong file or wrong base model? (%zu tensors in the file)",
                     f->n);
        }
        return xa_error_set(XA_STATUS_NOT_FOUND, where, NULL, hint, "no tensor '%s' in this file",
                            name);
    }
    if (shape) {
        int same = n_dims == t->n_dims;
        for (int i = 0; same && i < n_dims; i++) same = shape[i] == t->shape[i];
        if (!same) {
            char want[256], got[256];
            format_shape(want, sizeof want, shape, n_dims < 0 ? 0 : n_dims);
            format_shape(got, sizeof got, t->shape, t->n_dims);
            return xa_error_set(XA_STATUS_SHAPE, where, want, "wrong base model or config?",
                                "shape %s (%s) does not match the expected %s", got,
                                xa_dtype_name(t->dtype), want);
        }
    }
    xa_status st = xa_st_tensor_to_f32(t, dst);
    if (st) {
        xa_error_set(st, where, "dtype F32, F16 or BF16", NULL,
                     "dtype %s does not convert to F32", xa_dtype_name(t->dtype));
    }
    return st;
}

size_t xa_st_metadata_count(const xa_st_file *f) {
    return f->n_meta;
}

const char *xa_st_metadata_key(const xa_st_file *f, size_t i) {
    return i < f->n_meta ? f->meta_keys[i] : NULL;
}

const char *xa_st_metadata_value(const xa_st_file *f, size_t i) {
    return i < f->n_meta ? f->meta_values[i] : NULL;
}

const char *xa_st_metadata_get(const xa_st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++) {
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    }
    return NULL;
}

/* ---- writer --------------------------------------------------------------------------------------- */

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Check entries and metadata; fill nbytes[i]. */
static xa_status check_entries(const char *path, const xa_st_entry *e, size_t n,
                               const xa_st_kv *meta, size_t n_meta, size_t *nbytes) {
    xa_status st = XA_STATUS_OK;
    const char **names = NULL;
    char where[XA_ERROR_FIELD];
    for (size_t i = 0; i < n; i++) {
        const char *name = e[i].name ? e[i].name : "";
        tensor_where(where, sizeof where, path, name);
        if (!name[0] || strcmp(name, "__metadata__") == 0) {
            return xa_error_set(XA_STATUS_USAGE, path, "a non-empty name other than __metadata__",
                                NULL, "xa_st_write: entry %zu has an invalid name '%s'", i, name);
        }
        if ((unsigned)e[i].dtype >= XA_DTYPE_COUNT) {
            return xa_error_set(XA_STATUS_USAGE, where, "a valid xa_dtype", NULL,
                                "xa_st_write: invalid dtype %d", (int)e[i].dtype);
        }
        if (e[i].n_dims < 0 || e[i].n_dims > XA_ST_MAX_DIMS) {
            return xa_error_set(XA_STATUS_USAGE, where, "0..8 dimensions", NULL,
                                "xa_st_write: n_dims is %d", e[i].n_dims);
        }
        size_t ne = 1;
        for (int d = 0; d < e[i].n_dims; d++) {
            if (e[i].shape[d] < 0) {
                return xa_error_set(XA_STATUS_USAGE, where, "non-negative dimensions", NULL,
                                    "xa_st_write: shape[%d] is %" PRId64, d, e[i].shape[d]);
            }
            if ((uint64_t)e[i].shape[d] > SIZE_MAX || !xa_size_mul(ne, (size_t)e[i].shape[d], &ne)) {
                return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL,
                                    "xa_st_write: shape product overflows");
            }
        }
        if (!xa_size_mul(ne, xa_dtype_size(e[i].dtype), &nbytes[i])) {
            return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL,
                                "xa_st_write: byte size overflows");
        }
        if (e[i].f32 && e[i].dtype != XA_DTYPE_F32 && e[i].dtype != XA_DTYPE_F16 &&
            e[i].dtype != XA_DTYPE_BF16) {
            return xa_error_set(XA_STATUS_USAGE, where, "F32, F16 or BF16 for float input", NULL,
                                "xa_st_write: cannot convert float input to %s",
                                xa_dtype_name(e[i].dtype));
        }
        if (!e[i].f32 && !e[i].raw && nbytes[i]) {
            return xa_error_set(XA_STATUS_USAGE, where, "f32 or raw data", NULL,
                                "xa_st_write: entry has no data");
        }
    }
    /* Duplicates: sort a copy of the names. */
    names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate");
    for (size_t i = 0; i < n; i++) names[i] = e[i].name;
    qsort(names, n, sizeof *names, cmp_cstr);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i], names[i - 1]) == 0) {
            tensor_where(where, sizeof where, path, names[i]);
            st = xa_error_set(XA_STATUS_USAGE, where, "unique tensor names", NULL,
                              "xa_st_write: duplicate tensor name '%s'", names[i]);
            goto done;
        }
    }
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].key[0] || !meta[i].value) {
            st = xa_error_set(XA_STATUS_USAGE, path, "non-empty metadata keys and non-NULL values",
                              NULL, "xa_st_write: metadata pair %zu is invalid", i);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(meta[i].key, meta[j].key) == 0) {
                st = xa_error_set(XA_STATUS_USAGE, path, "unique metadata keys", NULL,
                                  "xa_st_write: duplicate metadata key '%s'", meta[i].key);
                goto done;
            }
        }
    }
done:
    free(names);
    return st;
}

/* Build the header JSON (compact, in entry order, __metadata__ first). Returns a malloc'ed string
 * or NULL with the error set. */
static char *build_header(const char *path, const xa_st_entry *e, size_t n, const size_t *nbytes,
                          const xa_st_kv *meta, size_t n_meta) {
    json_t *root = json_object();
    char *text = NULL;
    int bad = !root;
    const char *what = "out of memory";
    if (!bad && n_meta) {
        json_t *m = json_object();
        bad = !m || json_object_set_new(root, "__metadata__", m) != 0;
        for (size_t i = 0; !bad && i < n_meta; i++) {
            json_t *v = json_string(meta[i].value);
            if (!v) what = "a metadata key or value is not valid UTF-8";
            bad = !v || json_object_set_new(m, meta[i].key, v) != 0;
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; !bad && i < n; i++) {
        json_t *t = json_object();
        json_t *shape = json_array();
        json_t *offs = json_array();
        bad = !t || !shape || !offs;
        for (int d = 0; !bad && d < e[i].n_dims; d++) {
            bad = json_array_append_new(shape, json_integer((json_int_t)e[i].shape[d])) != 0;
        }
        bad = bad || json_array_append_new(offs, json_integer((json_int_t)off)) != 0 ||
              json_array_append_new(offs, json_integer((json_int_t)(off + nbytes[i]))) != 0;
        bad = bad || json_object_set_new(t, "dtype", json_string(xa_dtype_name(e[i].dtype))) != 0;
        bad = bad || json_object_set(t, "shape", shape) != 0 ||
              json_object_set(t, "data_offsets", offs) != 0;
        json_decref(shape);
        json_decref(offs);
        if (!bad && json_object_set_new(root, e[i].name, t) != 0) {
            what = "a tensor name is not valid UTF-8";
            t = NULL; /* json_object_set_new consumed it */
            bad = 1;
        } else if (bad) {
            json_decref(t);
        }
        off += nbytes[i];
    }
    if (!bad) text = json_dumps(root, JSON_COMPACT);
    if (!text) {
        xa_error_set(strcmp(what, "out of memory") ? XA_STATUS_USAGE : XA_STATUS_NOMEM, path, NULL,
                     NULL, "xa_st_write: cannot build the header: %s", what);
    }
    json_decref(root);
    return text;
}

/* Write one entry's bytes, converting float input in chunks (no full-size temporary). */
static xa_status write_entry(xa_file_writer *w, const xa_st_entry *e, size_t nbytes) {
    enum { CHUNK = 8192 };
    if (!e->f32) return xa_file_writer_write(w, e->raw, nbytes);
    size_t n = nbytes / xa_dtype_size(e->dtype);
    if (e->dtype == XA_DTYPE_F32) return xa_file_writer_write(w, e->f32, nbytes);
    uint16_t buf[CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < m; j++) {
            buf[j] = e->dtype == XA_DTYPE_F16 ? xa_f32_to_f16(e->f32[i + j])
                                              : xa_f32_to_bf16(e->f32[i + j]);
        }
        xa_status st = xa_file_writer_write(w, buf, m * sizeof *buf);
        if (st) return st;
    }
    return XA_STATUS_OK;
}

xa_status xa_st_write(const char *path, const xa_st_entry *entries, size_t n, const xa_st_kv *meta,
                      size_t n_meta) {
    xa_status st = XA_STATUS_OK;
    size_t *nbytes = NULL;
    char *header = NULL;
    xa_file_writer *w = NULL;

    nbytes = calloc(n ? n : 1, sizeof *nbytes);
    if (!nbytes) return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate");
    if ((st = check_entries(path, entries, n, meta, n_meta, nbytes))) goto fail;
    if (!(header = build_header(path, entries, n, nbytes, meta, n_meta))) {
        st = xa_error_last()->status;
        goto fail;
    }
    /* Pad with spaces so that the byte buffer starts at a multiple of 8 (8 + N, N % 8 == 0). */
    size_t len = strlen(header);
    size_t padded = (len + 7) & ~(size_t)7;
    static const char spaces[8] = "        ";
    uint64_t n_header = (uint64_t)padded;
    unsigned char len_le[8];
    memcpy(len_le, &n_header, 8); /* little-endian host */

    if ((st = xa_file_writer_open(&w, path))) goto fail;
    if ((st = xa_file_writer_write(w, len_le, 8)) ||
        (st = xa_file_writer_write(w, header, len)) ||
        (st = xa_file_writer_write(w, spaces, padded - len))) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = write_entry(w, &entries[i], nbytes[i]))) goto fail;
    }
    st = xa_file_writer_commit(w);
    w = NULL;
    if (st) goto fail;
    free(header);
    free(nbytes);
    return XA_STATUS_OK;

fail:
    xa_file_writer_abort(w);
    free(header);
    free(nbytes);
    return st;
}
