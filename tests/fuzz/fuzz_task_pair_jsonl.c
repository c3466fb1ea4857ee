/* Fuzz JSON-lines sentence-pair files, {"text", "text_pair", "label"} (data/task.c). */
#define FUZZ_TASK_FILE "task.jsonl"
#include "fuzz_task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_task(data, size, XA_TASK_KIND_PAIR, XA_TASK_FORMAT_JSONL);
    return 0;
}
