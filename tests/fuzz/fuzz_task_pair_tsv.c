/* Fuzz TSV sentence-pair files, LABEL<TAB>TEXT<TAB>TEXT_PAIR (data/task.c). */
#define FUZZ_TASK_FILE "task.tsv"
#include "fuzz_task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_task(data, size, XA_TASK_KIND_PAIR, XA_TASK_FORMAT_TSV);
    return 0;
}
