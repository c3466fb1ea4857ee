/* Fuzz JSON-lines task files (data/task.c):, read as classification and as tagging. */
#define FUZZ_TASK_FILE "task.jsonl"
#include "fuzz_task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_task(data, size, XA_TASK_KIND_CLASSIFICATION, XA_TASK_FORMAT_JSONL);
    fuzz_task(data, size, XA_TASK_KIND_TAGGING, XA_TASK_FORMAT_JSONL);
    return 0;
}
