/* Fuzz adapter_fusion_config.json: parse. */
#include "fuzz.h"
#include "io/hfjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    xa_fusion_file_config cfg;
    xa_fuzz_check_error(
        xa_fusion_config_parse(&cfg, (const char *)data, size, "adapter_fusion_config.json"));
    return 0;
}
