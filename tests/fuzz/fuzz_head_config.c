/* Fuzz head_config.json (prediction heads): parse. */
#include "fuzz.h"
#include "io/hfjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    xa_head_file_config cfg;
    xa_fuzz_check_error(xa_head_config_parse(&cfg, (const char *)data, size, "head_config.json"));
    return 0;
}
