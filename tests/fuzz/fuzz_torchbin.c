/* Fuzz the PyTorch .bin reader: the zip index, the legacy container and the restricted unpickler
 * (io/torchbin, io/zip, io/pickle). The input is opened as a file (xa_torch_open: every tensor
 * found by name and converted to F32 when small) and also run as a bare pickle program, so the
 * fuzzer reaches the pickle machine without building a zip around it. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/pickle.h"
#include "io/torchbin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    xa_pickle *p = NULL;
    size_t used = 0;
    xa_status st = xa_pickle_load(&p, data, size, &used, "fuzz.pkl");
    xa_fuzz_check_error(st);
    if (!st && (used > size || !xa_pickle_root(p))) abort();
    xa_pickle_free(p);

    const char *path = xa_fuzz_file("pytorch_model.bin", data, size);
    xa_st_file *f = NULL;
    st = xa_torch_open(&f, path);
    xa_fuzz_check_error(st);
    if (st) return 0;
    for (size_t i = 0; i < xa_st_count(f); i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        if (xa_st_find(f, t->name) != t) abort(); /* names are unique */
        if (t->n_elems > (1 << 20)) continue;
        float *dst = malloc((size_t)(t->n_elems ? t->n_elems : 1) * sizeof *dst);
        if (!dst) continue;
        xa_fuzz_check_error(xa_st_read_f32(f, t->name, t->shape, t->n_dims, dst));
        /* every byte of the tensor is readable (ASan checks the bounds) */
        volatile unsigned char sum = 0;
        for (size_t k = 0; k < t->nbytes; k++) sum ^= ((const unsigned char *)t->data)[k];
        (void)sum;
        free(dst);
    }
    xa_st_close(f);
    return 0;
}
