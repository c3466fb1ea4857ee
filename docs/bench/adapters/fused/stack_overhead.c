/* stack_overhead: the inference overhead of Stack(lang, task) + a classification head over the
 * bare frozen base, measured step by step with the two interleaved in one process, so that both
 * see the same load on a shared host. The configurations are `xadapt bench`'s infer and
 * infer-stack rows (framework/train/bench.c): lang = seq_bn_inv rf 2, task = seq_bn rf 16, T 128,
 * random ids. Reports the minimum and the median step time of each over `steps` steps.
 *
 * Build against a library (link it twice to compare two builds):
 *   cc -O2 -std=c11 -fopenmp -Iframework stack_overhead.c build/libxadapt.a -lopenblas -lm
 * usage: stack_overhead MODEL B THREADS STEPS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "heads/heads.h"
#include "model/model.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static xa_status add(xa_composer *cp, const char *name, const char *preset, double rf, xa_rng *rng) {
    xa_bn_config bc;
    xa_adapter *a;
    xa_status st = xa_bn_config_preset(&bc, preset);
    bc.reduction_factor = rf;
    if (!st) st = xa_composer_add_adapter(cp, name, &bc, 0, &a);
    if (!st) xa_adapter_init_weights(a, rng);
    return st;
}

int main(int argc, char **argv) {
    if (argc < 5) return fprintf(stderr, "usage: %s MODEL B THREADS STEPS\n", argv[0]), 2;
    const int B = atoi(argv[2]), T = 128, steps = atoi(argv[4]);
    xa_threads_set(atoi(argv[3]));
    xa_encoder_config cfg;
    xa_encoder enc;
    xa_encoder_acts acts;
    xa_head cls;
    xa_composer *cp;
    xa_setup *setup;
    xa_hook hook;
    xa_rng rng;
    xa_rng_seed(&rng, 1, 7);
    if (xa_encoder_preset(&cfg, argv[1]) || xa_encoder_init(&enc, &cfg, 0) ||
        xa_encoder_acts_init(&acts, &cfg, B, T, 0) ||
        xa_head_init(&cls, XA_HEAD_CLASSIFICATION, cfg.C, 8, 0.1f, B, T, 0) ||
        xa_composer_init(&cp, &cfg) || add(cp, "lang", "seq_bn_inv", 2.0, &rng) ||
        add(cp, "task", "seq_bn", 16.0, &rng) ||
        xa_setup_parse(&setup, "Stack(lang, task)", "stack_overhead") ||
        xa_composer_activate(cp, setup, "stack_overhead") || xa_composer_plan(cp, B, T, 0, 0))
        return fprintf(stderr, "setup failed\n"), 1;
    xa_encoder_init_weights(&enc, &rng, 0.02f);
    xa_head_init_weights(&cls, &rng, 0.02f);
    xa_composer_hook(cp, &hook);
    xa_composer_set_mode(cp, 0, NULL);
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *lens = malloc((size_t)B * sizeof *lens);
    for (int i = 0; i < B * T; i++) ids[i] = 4 + (int32_t)xa_rng_below(&rng, (uint32_t)cfg.V - 4);
    for (int b = 0; b < B; b++) lens[b] = T;
    xa_batch batch = {ids, NULL, lens, B, T};
    double *t[2] = {malloc((size_t)steps * sizeof(double)), malloc((size_t)steps * sizeof(double))};
    for (int it = -3; it < steps; it++) { /* 3 warm-up rounds */
        for (int k = 0; k < 2; k++) {
            double t0 = xa_time_now();
            if (k == 0) {
                xa_encoder_forward(&enc, &acts, &batch, NULL, 0, NULL);
            } else {
                xa_encoder_forward(&enc, &acts, &batch, &hook, 0, NULL);
                xa_head_forward(&cls, xa_encoder_hidden(&enc, &acts, cfg.L - 1), NULL, B, T, NULL, 0, NULL);
            }
            if (it >= 0) t[k][it] = xa_time_now() - t0;
        }
    }
    qsort(t[0], (size_t)steps, sizeof(double), cmp_d);
    qsort(t[1], (size_t)steps, sizeof(double), cmp_d);
    printf("%s\t%d\t%s\tinfer min %.3f ms median %.3f ms\tinfer-stack min %.3f ms median %.3f ms\t"
           "overhead min %+.1f%% median %+.1f%%\n", argv[1], B, argv[3], 1e3 * t[0][0],
           1e3 * t[0][steps / 2], 1e3 * t[1][0], 1e3 * t[1][steps / 2],
           100.0 * (t[1][0] / t[0][0] - 1.0), 100.0 * (t[1][steps / 2] / t[0][steps / 2] - 1.0));
    return 0;
}
