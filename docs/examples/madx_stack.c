/* madx_stack: the README's "Adapters from C" example as a whole program, built against an
 * installed libxadapt:
 *
 *     cc -std=c11 madx_stack.c $(pkg-config --cflags --libs xadapt) -o madx_stack
 *     ./madx_stack BASE_DIR LANG_ADAPTER_DIR TASK_ADAPTER_DIR [REFERENCE.safetensors]
 *
 * It loads a frozen Hugging Face base and two AdapterHub adapter directories, activates
 * Stack(lang, task) (MAD-X: swap the language adapter for zero-shot transfer) and runs the encoder
 * with the adapters in its hook. Without a reference it encodes a fixed toy sequence and prints
 * the first values of the <s> state. With a reference (a safetensors file holding `input_ids`,
 * `lens` and the expected last hidden state `hidden`, such as one written by a PyTorch run of
 * AdapterHub) it encodes those ids and prints the largest difference, exiting 1 above 1e-4.
 * tests/cli/test_install.sh builds it this way from a temporary install prefix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xadapt/xadapt.h>

static int fail(const char *what) {
    char buf[4096];
    xa_error_format(xa_error_last(), buf, sizeof buf);
    fprintf(stderr, "madx_stack: %s\n%s\n", what, buf);
    return 1;
}

/* An integer tensor of the reference file as int32 (NULL when absent or not I64). */
static int32_t *read_ids(const xa_st_file *f, const char *name, int64_t *n) {
    const xa_st_tensor *t = xa_st_find(f, name);
    if (!t || t->dtype != XA_DTYPE_I64) return NULL;
    int32_t *out = malloc((size_t)t->n_elems * sizeof *out);
    if (!out) return NULL;
    for (int64_t i = 0; i < t->n_elems; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + i * 8, 8);
        out[i] = (int32_t)v;
    }
    *n = t->n_elems;
    return out;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s BASE_DIR LANG_ADAPTER_DIR TASK_ADAPTER_DIR [REFERENCE.safetensors]\n",
                argv[0]);
        return 2;
    }
    xa_encoder enc = {0};
    xa_composer *cp = NULL;
    xa_setup *setup = NULL;
    xa_encoder_acts acts = {0};
    xa_st_file *ref = NULL;
    int32_t toy_ids[5] = {0, 5, 6, 7, 2}, toy_lens[1] = {5};
    int32_t *ids = toy_ids, *lens = toy_lens;
    int rc = 1;
    if (xa_encoder_load(&enc, NULL, argv[1], /*trainable=*/0)) { fail("loading the base"); goto done; }
    if (xa_composer_init(&cp, &enc.cfg)) { fail("composer"); goto done; }
    if (xa_hub_load_adapter(cp, argv[2], "lang", NULL, 0, 0, NULL)) { fail("language adapter"); goto done; }
    if (xa_hub_load_adapter(cp, argv[3], "task", NULL, 0, 0, NULL)) { fail("task adapter"); goto done; }
    if (xa_setup_parse(&setup, "Stack(lang, task)", NULL)) { fail("setup"); goto done; }
    if (xa_composer_activate(cp, setup, NULL)) { fail("activate"); goto done; }

    /* the batch: the reference's ids, or one toy sequence <s> 5 6 7 </s> */
    int B = 1, T = 5;
    if (argc == 5) {
        int64_t n_ids = 0, n_lens = 0;
        if (xa_st_open(&ref, argv[4])) { fail("reference file"); goto done; }
        ids = read_ids(ref, "input_ids", &n_ids);
        lens = read_ids(ref, "lens", &n_lens);
        if (!ids || !lens || n_lens == 0) {
            fprintf(stderr, "madx_stack: %s: expected I64 tensors input_ids (B, T) and lens (B)\n", argv[4]);
            rc = 2;
            goto done;
        }
        B = (int)n_lens;
        T = (int)(n_ids / n_lens);
    }

    if (xa_encoder_acts_init(&acts, &enc.cfg, B, T, /*train=*/0)) { fail("activations"); goto done; }
    if (xa_composer_plan(cp, B, T, 0, /*train=*/0)) { fail("plan"); goto done; }
    xa_hook hook;
    xa_composer_hook(cp, &hook);
    xa_batch batch = {ids, NULL, lens, B, T};
    if (xa_encoder_forward(&enc, &acts, &batch, &hook, 0, NULL)) { fail("forward"); goto done; }
    const float *hidden = xa_encoder_hidden(&enc, &acts, enc.cfg.L - 1);
    const int C = enc.cfg.C;

    rc = 0;
    if (ref) {
        const xa_st_tensor *t = xa_st_find(ref, "hidden");
        if (!t || t->n_elems != (int64_t)B * T * C) {
            fprintf(stderr, "madx_stack: %s: expected `hidden` of %d x %d x %d floats\n", argv[4], B, T, C);
            rc = 2;
            goto done;
        }
        float *want = malloc((size_t)t->n_elems * sizeof *want);
        if (!want || xa_st_tensor_to_f32(t, want)) {
            free(want);
            rc = fail("reading `hidden`");
            goto done;
        }
        double worst = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < lens[b] * C; i++) { /* padded positions are not compared */
                size_t k = (size_t)b * T * C + (size_t)i;
                double d = fabs((double)hidden[k] - want[k]);
                if (d > worst) worst = d;
            }
        printf("Stack(lang, task) on %d x %d ids: max |xadapt - reference| = %.3g\n", B, T, worst);
        rc = worst <= 1e-4 ? 0 : 1;
        free(want);
    } else {
        printf("Stack(lang, task) <s> state:");
        for (int c = 0; c < C && c < 4; c++) printf(" %.5f", hidden[c]);
        printf(" ...\n");
    }
done:
    if (ids != toy_ids) free(ids);
    if (lens != toy_lens) free(lens);
    xa_st_close(ref);
    xa_setup_free(setup);
    xa_encoder_acts_free(&acts);
    xa_composer_free(cp);
    xa_encoder_free(&enc);
    return rc;
}
