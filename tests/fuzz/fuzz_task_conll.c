/* Fuzz CoNLL tagging files (data/task.c). */
#define FUZZ_TASK_FILE "task.conll"
#include "fuzz_task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_task(data, size, XA_TASK_KIND_TAGGING, XA_TASK_FORMAT_CONLL);
    return 0;
}
