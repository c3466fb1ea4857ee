/* Fuzz adapter_config.json: parse, then resolve every layer's bottleneck spec as loading does. */
#include "compose/compose.h"
#include "fuzz.h"
#include "io/hfjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    xa_adapter_file_config cfg;
    xa_status st = xa_adapter_config_parse(&cfg, (const char *)data, size, "adapter_config.json");
    xa_fuzz_check_error(st);
    if (st) return 0;
    st = xa_bn_config_validate(&cfg.config, "adapter_config.json");
    xa_fuzz_check_error(st);
    if (st) return 0;
    for (int l = 0; l < 12; l++) {
        xa_bneck_spec spec;
        (void)xa_bn_config_leaves_out(&cfg.config, l);
        (void)xa_bn_config_bottleneck_size(&cfg.config, l, 768);
        xa_fuzz_check_error(xa_adapter_spec(&cfg.config, l, 768, &spec, "adapter_config.json"));
    }
    return 0;
}
