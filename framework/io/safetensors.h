/* io/safetensors: a read-only, memory-mapped safetensors reader with F32/F16/BF16 -> F32
 * conversion, and an atomic safetensors writer.
 *
 * Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes
 * of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
 * then the tensor bytes, little-endian, offsets relative to the end of the header. The tensors
 * must tile the byte buffer exactly (from 0, no gaps, no overlap, nothing after the last one).
 *
 * Little-endian hosts only (x86-64, aarch64): the build refuses big-endian targets.
 */
#ifndef XA_IO_SAFETENSORS_H
#define XA_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dtypes ------------------------------------------------------------------------------------ */

/* The first ten are the dtypes the project uses; the last five complete the safetensors set so
 * that any valid file can be listed. Only F32, F16 and BF16 convert to F32. */
typedef enum xa_dtype {
    XA_DTYPE_F32,
    XA_DTYPE_F16,
    XA_DTYPE_BF16,
    XA_DTYPE_F64,
    XA_DTYPE_I64,
    XA_DTYPE_I32,
    XA_DTYPE_I16,
    XA_DTYPE_I8,
    XA_DTYPE_U8,
    XA_DTYPE_BOOL,
    XA_DTYPE_U16,
    XA_DTYPE_U32,
    XA_DTYPE_U64,
    XA_DTYPE_F8_E4M3,
    XA_DTYPE_F8_E5M2,
    XA_DTYPE_COUNT /* not a dtype */
} xa_dtype;

/* The safetensors spelling ("F32", "BF16", ...); "?" for an invalid value. Never NULL. */
const char *xa_dtype_name(xa_dtype dt);
/* Bytes per element; 0 for an invalid value. */
size_t xa_dtype_size(xa_dtype dt);
/* Parse a safetensors dtype name (exact, case-sensitive). Returns 1 and sets *out, or 0. */
int xa_dtype_parse(const char *name, xa_dtype *out);

/* Scalar conversions (IEEE 754 binary16 and bfloat16 bit patterns). F16 -> F32 and BF16 -> F32
 * are exact for every number (subnormals and infinities included); an F16 NaN keeps its payload
 * and gets the quiet bit, as the F16C instructions do. F32 -> F16 and F32 -> BF16
 * round to nearest, ties to even; overflow gives infinity; NaN gives a quiet NaN with the sign kept
 * (F16 0x7E00|sign like torch; BF16 keeps the top payload bits and sets the quiet bit). */
float xa_f16_to_f32(uint16_t h);
uint16_t xa_f32_to_f16(float f);
float xa_bf16_to_f32(uint16_t b);
uint16_t xa_f32_to_bf16(float f);

/* ---- reader ------------------------------------------------------------------------------------ */

#define XA_ST_MAX_DIMS 8

/* One tensor of an open file. All pointers are owned by the xa_st_file and live until close. */
typedef struct xa_st_tensor {
    const char *name;
    xa_dtype dtype;
    int n_dims;                     /* 0 (scalar) .. XA_ST_MAX_DIMS */
    int64_t shape[XA_ST_MAX_DIMS];  /* shape[0..n_dims); the rest are 0 */
    int64_t n_elems;                /* product of the shape (1 for a scalar) */
    size_t nbytes;                  /* n_elems * xa_dtype_size(dtype) */
    const void *data;               /* (nbytes) into the read-only mapping; may be unaligned */
    size_t offset;                  /* byte offset of data in the file (8 + N + begin); for a
                                     * PyTorch file (io/torchbin.h) 0 when the tensor was copied */
} xa_st_tensor;

typedef struct xa_st_file xa_st_file; /* opaque: the mapping, the tensors, the metadata */

/* Map and validate `path`. On success *out owns the mapping; free it with xa_st_close.
 * Errors: NOT_FOUND / IO if the file cannot be opened or mapped; FORMAT (naming the file, and
 * the tensor where relevant) for a malformed file: shorter than 8 bytes, header length past the
 * end of the file or over 100 MB, invalid JSON (line/column), header not an object, unknown
 * dtype, missing or ill-typed fields, negative or non-integer shape values, more than
 * XA_ST_MAX_DIMS dimensions, shape/size mismatch, offsets out of bounds or begin > end,
 * overlapping or non-contiguous data, duplicate names, size overflow, non-string metadata. */
xa_status xa_st_open(xa_st_file **out, const char *path);
/* Unmap and free. Accepts NULL. */
void xa_st_close(xa_st_file *f);

/* For io's other tensor readers (io/torchbin.c): present tensors[0..n) (in this order), whose
 * data point into `map` (a PROT_READ mapping of map_size bytes, or NULL with 0) or into one of
 * owned[0..n_owned) (malloc'ed), as an xa_st_file without metadata. Takes ownership of map
 * (munmap'ed at close), of tensors and their malloc'ed names, of owned and its buffers (freed at
 * close), on success and on failure alike. FORMAT naming the duplicate when two tensors share a
 * name; NOMEM. */
xa_status xa_st_wrap(xa_st_file **out, const char *path, void *map, size_t map_size,
                     xa_st_tensor *tensors, size_t n, void **owned, size_t n_owned);

/* The path given to xa_st_open (owned by f). */
const char *xa_st_path(const xa_st_file *f);

/* Tensors in file order (by data offset): i in [0, xa_st_count). */
size_t xa_st_count(const xa_st_file *f);
const xa_st_tensor *xa_st_at(const xa_st_file *f, size_t i);
/* Look-up by exact name (binary search over a sorted index); NULL if absent. */
const xa_st_tensor *xa_st_find(const xa_st_file *f, const char *name);

/* Convert a tensor to F32 into dst[0..t->n_elems). F32, F16 and BF16 only; any other dtype gives
 * XA_STATUS_SHAPE naming the tensor and its dtype. */
xa_status xa_st_tensor_to_f32(const xa_st_tensor *t, float *dst);

/* Find `name`, check that its shape is shape[0..n_dims), and convert it into dst (n_elems floats).
 * shape NULL skips the shape check (dst must then hold t->n_elems floats).
 * Errors: NOT_FOUND (naming the tensor and the file, with a hint if the name exists with or
 * without a "roberta."/"bert." prefix); SHAPE for a shape mismatch (expected vs found) or a
 * dtype that does not convert. */
xa_status xa_st_read_f32(const xa_st_file *f, const char *name, const int64_t *shape, int n_dims,
                         float *dst);

/* `__metadata__` pairs in file order. Strings are owned by f. Out-of-range i gives NULL. */
size_t xa_st_metadata_count(const xa_st_file *f);
const char *xa_st_metadata_key(const xa_st_file *f, size_t i);
const char *xa_st_metadata_value(const xa_st_file *f, size_t i);
/* Value for `key`, or NULL if absent. */
const char *xa_st_metadata_get(const xa_st_file *f, const char *key);

/* ---- writer ------------------------------------------------------------------------------------ */

/* One tensor to write. Exactly one of f32 / raw is used:
 *  - f32 != NULL: n_elems floats converted to `dtype`, which must be F32, F16 or BF16;
 *  - f32 == NULL: `raw` holds n_elems * xa_dtype_size(dtype) bytes already in `dtype`,
 *    little-endian (any dtype). raw may be NULL only for an empty tensor. */
typedef struct xa_st_entry {
    const char *name;               /* non-empty, unique, not "__metadata__" */
    xa_dtype dtype;                 /* dtype stored in the file */
    int n_dims;                     /* 0 .. XA_ST_MAX_DIMS */
    int64_t shape[XA_ST_MAX_DIMS];  /* shape[0..n_dims), each >= 0 */
    const float *f32;               /* (n_elems) float input, or NULL */
    const void *raw;                /* (nbytes) bytes in dtype, used when f32 is NULL */
} xa_st_entry;

typedef struct xa_st_kv {
    const char *key;   /* non-empty, unique */
    const char *value;
} xa_st_kv;

/* Write entries[0..n) (in this order, contiguous from offset 0) and the metadata pairs
 * meta[0..n_meta) (meta may be NULL when n_meta == 0) to `path`, atomically (io/file.h): the
 * header JSON is padded with spaces to a multiple of 8 bytes so data starts 8-byte aligned.
 * Errors: USAGE for an invalid entry (empty or duplicate name, bad dtype or shape, missing data),
 * NOMEM on size overflow, IO when writing fails. On any error the target is untouched. */
xa_status xa_st_write(const char *path, const xa_st_entry *entries, size_t n, const xa_st_kv *meta,
                      size_t n_meta);

#ifdef __cplusplus
}
#endif
#endif /* XA_IO_SAFETENSORS_H */
