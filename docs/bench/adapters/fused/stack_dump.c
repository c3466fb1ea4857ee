/* stack_dump: the outputs of xadapt bench's infer-stack row (framework/train/bench.c: lang =
 * seq_bn_inv rf 2, task = seq_bn rf 16, a classification head, T 128, random ids) written raw to a
 * file, to compare two builds byte for byte (cmp): the last layer's hidden states, the head's
 * logits, then every layer's hidden-state buffer, after a second forward on the same batch.
 * SETUP is any setup of those two adapters ("Stack(lang, task)", "lang", "task"); a 6th
 * argument draws ragged lengths (1 to T) instead of full ones.
 *
 * Build against a library (link it twice to compare two builds):
 *   cc -O2 -std=c11 -fopenmp -Iframework stack_dump.c build/libxadapt.a -lopenblas -ljansson \
 *      -lyaml -lsentencepiece -lutf8proc -lstdc++ -lm
 * usage: OMP_WAIT_POLICY=passive stack_dump MODEL B THREADS SETUP OUT [ragged] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "heads/heads.h"
#include "model/model.h"

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
    if (argc < 6) return fprintf(stderr, "usage: %s MODEL B THREADS SETUP OUT [ragged]\n", argv[0]), 2;
    const int B = atoi(argv[2]), T = 128;
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
        xa_setup_parse(&setup, argv[4], "stack_dump") ||
        xa_composer_activate(cp, setup, "stack_dump") || xa_composer_plan(cp, B, T, 0, 0))
        return fprintf(stderr, "setup failed\n"), 1;
    xa_encoder_init_weights(&enc, &rng, 0.02f);
    xa_head_init_weights(&cls, &rng, 0.02f);
    xa_composer_hook(cp, &hook);
    xa_composer_set_mode(cp, 0, NULL);
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *lens = malloc((size_t)B * sizeof *lens);
    for (int i = 0; i < B * T; i++) ids[i] = 4 + (int32_t)xa_rng_below(&rng, (uint32_t)cfg.V - 4);
    for (int b = 0; b < B; b++) lens[b] = argc > 6 ? 1 + (int)xa_rng_below(&rng, T) : T;
    xa_batch batch = {ids, NULL, lens, B, T};
    FILE *f = fopen(argv[5], "wb");
    float *logits = malloc((size_t)B * 8 * sizeof(float));
    for (int rep = 0; rep < 2; rep++) {
        xa_encoder_forward(&enc, &acts, &batch, &hook, 0, NULL);
        const float *h = xa_encoder_hidden(&enc, &acts, cfg.L - 1);
        xa_head_forward(&cls, h, NULL, B, T, logits, 0, NULL);
        if (rep == 1) {
            fwrite(h, sizeof(float), (size_t)B * T * cfg.C, f);
            fwrite(logits, sizeof(float), (size_t)B * 8, f);
            for (int l = 0; l < cfg.L; l++) fwrite(xa_encoder_hidden(&enc, &acts, l), sizeof(float), (size_t)B * T * cfg.C, f);
        }
    }
    fclose(f);
    return 0;
}
