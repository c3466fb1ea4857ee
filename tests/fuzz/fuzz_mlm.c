/* Fuzz MLM corpora (data/mlm.c): load with a short block length, draw and mask a few batches, with
 * token and whole-word masking. */
#include <stdlib.h>

#include "data/data.h"
#include "fuzz.h"
#include "tokenizer/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static xa_tok *spm;
    xa_fuzz_quiet();
    if (!spm && xa_tok_load(&spm, xa_fuzz_data("spm/fixture.model")) != XA_STATUS_OK) abort();
    const char *path = xa_fuzz_file("corpus.txt", data, size);
    xa_mlm_data d;
    xa_status st = xa_mlm_data_load(&d, spm, path, 8, 1, 0);
    xa_fuzz_check_error(st);
    if (st) return 0;
    xa_mlm_batch b;
    if (xa_mlm_batch_init(&b, 3, 8) == XA_STATUS_OK) {
        for (int i = 0; i < 3; i++) xa_mlm_data_next(&d, &b);
        if (xa_mlm_data_set_whole_word(&d, spm) == XA_STATUS_OK)
            for (int i = 0; i < 2; i++) xa_mlm_data_next(&d, &b);
        xa_mlm_data_seek(&d, 1, d.n_blocks);
        xa_mlm_data_next(&d, &b);
        xa_mlm_batch_free(&b);
    }
    xa_mlm_data_free(&d);
    return 0;
}
