/* io/pickle: a restricted unpickler for exactly what torch.save(state_dict) writes.
 *
 * A pickle is a program for a stack machine that can import and call anything; this one never
 * imports or calls. It runs the binary opcodes of protocols 2-4 that build plain data (None,
 * bools, ints up to 64 bits, floats, strings, tuples, lists, dicts, the memo) and knows a fixed
 * vocabulary of globals, each with the one meaning torch gives it:
 *   collections.OrderedDict         REDUCE with () -> an empty dict (BUILD state is ignored:
 *                                   it is the state dict's _metadata)
 *   torch._utils._rebuild_tensor_v2 REDUCE (storage, offset, size, stride, requires_grad,
 *                                   backward_hooks[, metadata]) -> a tensor
 *   torch._utils._rebuild_parameter REDUCE (tensor, requires_grad, backward_hooks) -> the tensor
 *   torch.<Dtype>Storage            only inside a persistent id (BINPERSID): ('storage',
 *                                   torch.FloatStorage, key, location, numel[, view_metadata])
 *                                   -> a storage; Double Float Half BFloat16 Long Int Short Char
 *                                   Byte Bool
 * Any other global, opcode, or call is refused with FORMAT / UNSUPPORTED naming the byte offset,
 * the opcode and the global. The machine is iterative (no recursion on nesting); marks nest at
 * most XA_PICKLE_MAX_DEPTH deep, at most XA_PICKLE_MAX_VALUES objects are built, memo indices
 * stay under XA_PICKLE_MAX_MEMO.
 */
#ifndef XA_IO_PICKLE_H
#define XA_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "io/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XA_PICKLE_MAX_DEPTH 256
#define XA_PICKLE_MAX_VALUES (1 << 22)
#define XA_PICKLE_MAX_MEMO (1 << 22)
#define XA_PICKLE_MAX_DIMS XA_ST_MAX_DIMS

typedef enum xa_pv_kind {
    XA_PV_NONE,
    XA_PV_BOOL,
    XA_PV_INT,
    XA_PV_FLOAT,
    XA_PV_STR,
    XA_PV_TUPLE,
    XA_PV_LIST,
    XA_PV_DICT,    /* items: key, value, key, value, ... */
    XA_PV_GLOBAL,  /* one of the vocabulary above */
    XA_PV_STORAGE, /* a persistent id resolved to a storage reference */
    XA_PV_TENSOR,
} xa_pv_kind;

typedef struct xa_pv xa_pv;

typedef struct xa_pv_storage {
    xa_dtype dtype;    /* from torch.<Dtype>Storage */
    const char *key;   /* the record key ("0", "1", ... in zip files; a number in legacy files) */
    int64_t numel;     /* elements of the storage */
    int has_view;      /* legacy view_metadata was not None */
} xa_pv_storage;

typedef struct xa_pv_tensor {
    const xa_pv *storage;            /* XA_PV_STORAGE */
    int64_t offset;                  /* storage offset, in elements */
    int n_dims;
    int64_t shape[XA_PICKLE_MAX_DIMS];
    int64_t stride[XA_PICKLE_MAX_DIMS]; /* in elements */
} xa_pv_tensor;

struct xa_pv {
    xa_pv_kind kind;
    union {
        int64_t i;      /* BOOL (0/1), INT */
        double f;       /* FLOAT */
        struct {
            char *s;    /* NUL-terminated (may hold NULs: use n) */
            size_t n;
        } str;
        struct {
            xa_pv **items;
            size_t n, cap;
        } seq;          /* TUPLE, LIST, DICT */
        int global;     /* GLOBAL: an index into the vocabulary */
        xa_pv_storage storage;
        xa_pv_tensor tensor;
    } u;
};

typedef struct xa_pickle xa_pickle; /* owns every value it built */

/* Run the pickle in data[0..n) up to its STOP opcode. *consumed (may be NULL) gets the number of
 * bytes up to and including STOP (legacy torch files hold several pickles in a row).
 * `where` names the source in errors ("model.bin: archive/data.pkl").
 * Errors: FORMAT for a malformed or truncated pickle and for values of the wrong type in a known
 * call; UNSUPPORTED for a global, opcode or call outside the vocabulary; NOMEM. */
xa_status xa_pickle_load(xa_pickle **out, const void *data, size_t n, size_t *consumed,
                         const char *where);
/* The value STOP returned. */
const xa_pv *xa_pickle_root(const xa_pickle *p);
/* Every storage reference built, in order (one per persistent id). */
size_t xa_pickle_storage_count(const xa_pickle *p);
const xa_pv *xa_pickle_storage_at(const xa_pickle *p, size_t i);
/* Free every value. Accepts NULL. */
void xa_pickle_free(xa_pickle *p);

/* "None", "int", "str", "dict", "tensor", ...: for messages. */
const char *xa_pv_kind_name(xa_pv_kind k);

#ifdef __cplusplus
}
#endif
#endif /* XA_IO_PICKLE_H */
