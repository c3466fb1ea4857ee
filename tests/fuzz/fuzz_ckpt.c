/* Fuzz checkpoints (train/ckpt.c): trainer_state.safetensors read into an optimizer of two groups
 * ("adapter.en" of 6 floats, "head" of 3), as a resume does. The identity must be "fuzz" to get
 * past the identity check (the seed has it). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "optim/optim.h"
#include "train/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    const char *path = xa_fuzz_file("trainer_state.safetensors", data, size);
    static float p[9], g[9];
    xa_optim opt;
    if (xa_optim_init(&opt, 0.9, 0.999, 1e-8) != XA_STATUS_OK ||
        xa_optim_add_group(&opt, "adapter.en", p, g, 6, 1.0, 0.01, 1, NULL) != XA_STATUS_OK ||
        xa_optim_add_group(&opt, "head", p + 6, g + 6, 3, 1.0, 0.0, 1, NULL) != XA_STATUS_OK)
        abort();
    xa_train_state ts;
    memset(&ts, 0, sizeof ts);
    xa_fuzz_check_error(xa_ckpt_load_state(path, &opt, &ts, "fuzz"));
    xa_optim_free(&opt);
    return 0;
}
