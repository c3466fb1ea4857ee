/* Fuzz extractive question-answering files (data/qa.c): the SQuAD JSON layout and the flat HF JSON
 * lines export (the reader tells them apart by content), answers checked at answer_start, windows
 * with a stride at max_len 16. */
#define FUZZ_TASK_FILE "task.json"
#include "fuzz_task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_task(data, size, XA_TASK_KIND_QA, XA_TASK_FORMAT_AUTO);
    return 0;
}
