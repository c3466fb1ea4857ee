/* Fuzz the safetensors reader: open, every tensor converted to F32, every metadata pair read. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    const char *path = xa_fuzz_file("model.safetensors", data, size);
    xa_st_file *f = NULL;
    xa_status st = xa_st_open(&f, path);
    xa_fuzz_check_error(st);
    if (st) return 0;
    for (size_t i = 0; i < xa_st_count(f); i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        if (xa_st_find(f, t->name) != t) abort(); /* names are unique: the index must find it */
        if (t->n_elems > (1 << 20)) continue;      /* the bytes are in the file: bounded by size */
        float *dst = malloc((size_t)(t->n_elems ? t->n_elems : 1) * sizeof *dst);
        if (!dst) continue;
        xa_fuzz_check_error(xa_st_tensor_to_f32(t, dst));
        xa_fuzz_check_error(xa_st_read_f32(f, t->name, t->shape, t->n_dims, dst));
        free(dst);
    }
    for (size_t i = 0; i < xa_st_metadata_count(f); i++) {
        const char *k = xa_st_metadata_key(f, i), *v = xa_st_metadata_value(f, i);
        if (!k || !v || xa_st_metadata_get(f, k) == NULL) abort();
    }
    /* a missing name is an error with a message (the fuzzer can name a tensor "no.such.tensor":
     * found by the 10-minute campaign, when the harness then copied it into NULL) */
    if (!xa_st_find(f, "no.such.tensor")) xa_fuzz_check_error(xa_st_read_f32(f, "no.such.tensor", NULL, 0, NULL));
    xa_st_close(f);
    return 0;
}
