/* tests/fuzz: the task-file harnesses (TSV, JSONL, CoNLL) share this body; each includes it after
 * defining FUZZ_TASK_FILE (the scratch name, whose extension selects the reader) and the format. */
#include <stdlib.h>

#include "data/data.h"
#include "fuzz.h"
#include "tokenizer/tok.h"

static xa_tok *fuzz_spm(void) {
    static xa_tok *spm;
    if (!spm && xa_tok_load(&spm, xa_fuzz_data("spm/fixture.model")) != XA_STATUS_OK) abort();
    return spm;
}

/* Read the file twice: labels collected from it, then fixed to a set without its last label (the
 * unknown-label path); batch the examples when it loads. */
static void fuzz_task(const uint8_t *data, size_t size, xa_task_kind kind, xa_task_format fmt) {
    xa_fuzz_quiet();
    const char *path = xa_fuzz_file(FUZZ_TASK_FILE, data, size);
    static xa_task_data d;
    static xa_labels labels;
    labels.n = 0;
    xa_status st = xa_task_data_load(&d, fuzz_spm(), path, kind, fmt, 16, &labels);
    xa_fuzz_check_error(st);
    if (st) return;
    xa_task_batcher bt;
    xa_task_batch b;
    if (xa_task_batch_init(&b, 4 * (d.n_choices > 0 ? d.n_choices : 1), 16) == XA_STATUS_OK) {
        if (xa_task_batcher_init(&bt, &d, 4, 1, 7, 1) == XA_STATUS_OK) {
            while (xa_task_batcher_next(&bt, &b)) {
            }
            xa_task_batcher_free(&bt);
        }
        xa_task_batch_free(&b);
    }
    xa_task_data_free(&d);
    if (labels.n > 1) {
        labels.n--;
        xa_fuzz_check_error(xa_task_data_load(&d, fuzz_spm(), path, kind, fmt, 16, &labels));
        xa_task_data_free(&d);
    }
}
