/* Fuzz config.json: parse, validate, and turn into an encoder configuration (model/hf.c). */
#include "fuzz.h"
#include "io/hfjson.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    xa_hf_config cfg;
    xa_status st = xa_hf_config_parse(&cfg, (const char *)data, size, "config.json");
    xa_fuzz_check_error(st);
    if (st) return 0;
    st = xa_hf_config_validate(&cfg, "config.json");
    xa_fuzz_check_error(st);
    if (st) return 0;
    xa_encoder_config enc;
    xa_fuzz_check_error(xa_encoder_config_from_hf(&enc, &cfg, "config.json"));
    return 0;
}
