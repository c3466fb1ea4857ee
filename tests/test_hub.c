/* Tests of framework/hub (AdapterHub directories), framework/compose/adapter.c (adapter and fusion
 * parameter groups) and framework/io/hubjson.c (fusion and head configs):
 *  - adapter save -> load round trips, bit-identical, for the presets and a config with
 *    ln_before, gating, channel scaling, a per-layer reduction factor and leave_out, on XLM-R and
 *    BERT layouts;
 *  - files without the model prefix, adapter-transformers v1 names, load_as, load-time leave_out,
 *    the legacy invertible-adapter fix;
 *  - errors: wrong hidden size, wrong model type, wrong shape, unknown / missing tensors, a
 *    truncated file, a missing config: the status and an error naming the file and the tensor;
 *  - fusion, head and adapter_setup.json round trips, fusion and head config errors, the exact
 *    head_config.json keys per head type (AdapterHub's head constructors' parameters).
 * Files are made by the code under test and edited by the helpers below (rename, drop, reshape). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compose/compose.h"
#include "core/core.h"
#include "hub/hub.h"
#include "io/file.h"
#include "io/hfjson.h"
#include "io/safetensors.h"
#include "model/model.h"

/* ---- helpers ----------------------------------------------------------------------------------
 */

static xa_encoder_config tiny(xa_arch arch) {
    xa_encoder_config c;
    assert_int_equal(xa_encoder_preset(&c, "tiny"), XA_STATUS_OK);
    c.arch = arch;
    return c;
}

static xa_composer *composer(xa_arch arch) {
    xa_encoder_config c = tiny(arch);
    xa_composer *cp = NULL;
    assert_int_equal(xa_composer_init(&cp, &c), XA_STATUS_OK);
    return cp;
}

/* A heap adapter with random weights everywhere (biases and LayerNorms included). */
static xa_adapter *random_adapter(const char *name, const xa_bn_config *cfg, xa_arch arch,
                                  uint64_t seed) {
    xa_encoder_config c = tiny(arch);
    xa_adapter *a = calloc(1, sizeof *a);
    assert_non_null(a);
    assert_int_equal(xa_adapter_init(a, name, cfg, c.L, c.C, 0, "test"), XA_STATUS_OK);
    xa_rng rng;
    xa_rng_seed(&rng, seed, 1);
    xa_rng_fill_normal(&rng, a->params, a->n_params, 0.0f, 1.0f);
    return a;
}

static void free_adapter(xa_adapter *a) {
    xa_adapter_free(a);
    free(a);
}

static xa_bn_config preset(const char *name) {
    xa_bn_config c;
    assert_int_equal(xa_bn_config_preset(&c, name), XA_STATUS_OK);
    return c;
}

/* ln_before, ln_after, gating, channel scaling, rf map {"1": 8, default 16}, leave_out [0],
 * both locations. */
static xa_bn_config custom_config(void) {
    xa_bn_config c = preset("double_seq_bn");
    c.ln_before = 1;
    c.ln_after = 1;
    c.use_gating = 1;
    c.scaling = XA_BN_SCALING_CHANNEL;
    c.has_reduction_factor_map = 1;
    c.reduction_factor_map[1] = 8;
    c.reduction_factor = 16;
    c.n_leave_out = 1;
    c.leave_out[0] = 0;
    return c;
}

static void assert_same_adapter(const xa_adapter *a, const xa_adapter *b) {
    assert_int_equal(a->L, b->L);
    assert_int_equal(a->C, b->C);
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->has_inv, b->has_inv);
    assert_memory_equal(a->present, b->present, (size_t)(2 * a->L));
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(a->cfg.mh_adapter, b->cfg.mh_adapter);
    assert_int_equal(a->cfg.n_leave_out, b->cfg.n_leave_out);
    assert_int_equal(a->cfg.phm_layer, b->cfg.phm_layer);
    assert_string_equal(a->cfg.non_linearity, b->cfg.non_linearity);
}

static const char *dir_path(const char *name) {
    return xt_tmp_path(name);
}

static const char *file_in(const char *dir, const char *file) {
    static char buf[4][XA_PATH_MAX];
    static int slot;
    char *p = buf[slot++ & 3];
    assert_int_equal(xa_path_join(p, XA_PATH_MAX, dir, file), XA_STATUS_OK);
    return p;
}

/* Rewrite a safetensors file: edit(name buffer, shape, &n_dims) may rename a tensor, change its
 * shape (the data is cut or padded), or return 0 to drop it. extra != NULL appends one tensor. */
typedef int (*edit_fn)(char *name, int64_t *shape, int *n_dims, const void *arg);

static void rewrite(const char *path, edit_fn edit, const void *arg, const char *extra) {
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, path), XA_STATUS_OK);
    size_t n = xa_st_count(f);
    xa_st_entry *e = calloc(n + 1, sizeof *e);
    char(*names)[512] = calloc(n + 1, sizeof *names);
    float **data = calloc(n + 1, sizeof *data);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        snprintf(names[k], sizeof names[k], "%s", t->name);
        e[k].n_dims = t->n_dims;
        for (int d = 0; d < t->n_dims; d++)
            e[k].shape[d] = t->shape[d];
        if (edit && !edit(names[k], e[k].shape, &e[k].n_dims, arg)) continue;
        size_t numel = 1;
        for (int d = 0; d < e[k].n_dims; d++)
            numel *= (size_t)e[k].shape[d];
        data[k] = calloc(numel + (size_t)t->n_elems + 1, sizeof(float));
        xa_st_tensor_to_f32(t, data[k]);
        e[k].name = names[k];
        e[k].dtype = XA_DTYPE_F32;
        e[k].f32 = data[k];
        k++;
    }
    if (extra) {
        snprintf(names[k], sizeof names[k], "%s", extra);
        data[k] = calloc(4, sizeof(float));
        e[k] = (xa_st_entry){
            .name = names[k], .dtype = XA_DTYPE_F32, .n_dims = 1, .shape = {4}, .f32 = data[k]};
        k++;
    }
    xa_st_close(f);
    assert_int_equal(xa_st_write(path, e, k, NULL, 0), XA_STATUS_OK);
    for (size_t i = 0; i <= n; i++)
        free(data[i]);
    free(data);
    free(names);
    free(e);
}

static int strip_prefix(char *name, int64_t *shape, int *nd, const void *arg) {
    (void)shape, (void)nd;
    const char *prefix = arg;
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) == 0) memmove(name, name + n, strlen(name + n) + 1);
    return 1;
}

static void replace_in(char *name, const char *from, const char *to) {
    char *p = strstr(name, from);
    if (!p) return;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(p - name), name, to, p + strlen(from));
    strcpy(name, tmp);
}

static int to_legacy(char *name, int64_t *shape, int *nd, const void *arg) {
    (void)shape, (void)nd, (void)arg;
    if (strstr(name, "attention.output.adapters.")) {
        replace_in(name, ".adapters.", ".attention_text_lang_adapters.");
    } else {
        replace_in(name, ".adapters.", ".layer_text_lang_adapters.");
    }
    replace_in(name, "invertible_adapters.", "invertible_lang_adapters.");
    return 1;
}

static int drop_named(char *name, int64_t *shape, int *nd, const void *arg) {
    (void)shape, (void)nd;
    return strcmp(name, (const char *)arg) != 0;
}

static int drop_inv(char *name, int64_t *shape, int *nd, const void *arg) {
    (void)shape, (void)nd, (void)arg;
    return strstr(name, "invertible_adapters.") == NULL;
}

static int reshape_named(char *name, int64_t *shape, int *nd, const void *arg) {
    if (strcmp(name, (const char *)arg) == 0) {
        shape[0] += 1;
        (void)nd;
    }
    return 1;
}

/* Save a, then load it back into a fresh composer; returns the composer (the loaded adapter in *b).
 */
static xa_composer *save_load(const xa_adapter *a, xa_arch arch, const char *dir, xa_adapter **b) {
    xa_encoder_config enc = tiny(arch);
    assert_int_equal(xa_hub_save_adapter(dir, a, &enc, "tiny-test"), XA_STATUS_OK);
    xa_composer *cp = composer(arch);
    xa_status st = xa_hub_load_adapter(cp, dir, NULL, NULL, 0, 0, b);
    if (st) {
        char buf[4096];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("load failed:\n%s", buf);
    }
    return cp;
}

/* ---- adapters
 * ------------------------------------------------------------------------------------ */

static void roundtrip(const xa_bn_config *cfg, xa_arch arch, const char *tag) {
    xa_adapter *a = random_adapter("lang", cfg, arch, 7);
    xa_adapter *b = NULL;
    char d[64];
    snprintf(d, sizeof d, "rt-%s-%d", tag, (int)arch);
    xa_composer *cp = save_load(a, arch, dir_path(d), &b);
    assert_non_null(b);
    assert_ptr_equal(b, xa_composer_adapter(cp, "lang"));
    assert_same_adapter(a, b);
    free_adapter(a);
    xa_composer_free(cp);
}

static void test_adapter_roundtrip_presets(void **state) {
    (void)state;
    const char *names[] = {"seq_bn",    "seq_bn_inv",  "double_seq_bn", "par_bn",
                           "compacter", "compacter++", "scaled_par_bn"};
    for (int arch = 0; arch < 2; arch++) {
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            xa_bn_config c = preset(names[i]);
            roundtrip(&c, (xa_arch)arch, names[i]);
        }
        xa_bn_config c = custom_config();
        roundtrip(&c, (xa_arch)arch, "custom");
    }
}

static void test_adapter_file_layout(void **state) {
    (void)state;
    xa_bn_config c = custom_config();
    c.inv_adapter = XA_BN_INV_NICE;
    c.inv_adapter_reduction_factor = 2;
    xa_adapter *a = random_adapter("de", &c, XA_ARCH_XLMR, 3);
    xa_encoder_config enc = tiny(XA_ARCH_XLMR);
    const char *dir = dir_path("layout");
    assert_int_equal(xa_hub_save_adapter(dir, a, &enc, NULL), XA_STATUS_OK);
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, file_in(dir, "adapter.safetensors")), XA_STATUS_OK);
    /* layer 0 is left out; layer 1 has rf 8 -> d = 16; ln_before moves the Linear to .1 */
    const xa_st_tensor *t =
        xa_st_find(f, "roberta.encoder.layer.1.output.adapters.de.adapter_down.1.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 16);
    assert_int_equal(t->shape[1], 128);
    assert_non_null(xa_st_find(
        f, "roberta.encoder.layer.1.attention.output.adapters.de.adapter_down.0.weight"));
    assert_non_null(
        xa_st_find(f, "roberta.encoder.layer.1.output.adapters.de.adapter_norm_before.bias"));
    assert_non_null(xa_st_find(f, "roberta.encoder.layer.1.output.adapters.de.gate.weight"));
    assert_non_null(xa_st_find(f, "roberta.invertible_adapters.de.F.0.weight"));
    assert_null(xa_st_find(f, "roberta.encoder.layer.0.output.adapters.de.adapter_up.weight"));
    /* the alias holds the LayerNorm again (quirk Q4) */
    const xa_st_tensor *ln =
        xa_st_find(f, "roberta.encoder.layer.1.output.adapters.de.adapter_norm_before.weight");
    const xa_st_tensor *al =
        xa_st_find(f, "roberta.encoder.layer.1.output.adapters.de.adapter_down.0.weight");
    assert_non_null(ln);
    assert_non_null(al);
    assert_memory_equal(ln->data, al->data, ln->nbytes);
    xa_st_close(f);
    xa_adapter_file_config fc;
    assert_int_equal(xa_adapter_config_read(&fc, file_in(dir, "adapter_config.json")),
                     XA_STATUS_OK);
    assert_string_equal(fc.model_class, "XLMRobertaAdapterModel");
    assert_string_equal(fc.model_type, "xlm-roberta");
    assert_string_equal(fc.name, "de");
    assert_int_equal(fc.hidden_size, 128);
    free_adapter(a);
}

static void test_adapter_load_without_prefix_and_legacy_names(void **state) {
    (void)state;
    xa_bn_config c = preset("double_seq_bn_inv");
    for (int legacy = 0; legacy < 2; legacy++) {
        xa_adapter *a = random_adapter("hi", &c, XA_ARCH_XLMR, 11);
        xa_encoder_config enc = tiny(XA_ARCH_XLMR);
        const char *dir = dir_path(legacy ? "legacy-names" : "no-prefix");
        assert_int_equal(xa_hub_save_adapter(dir, a, &enc, NULL), XA_STATUS_OK);
        const char *w = file_in(dir, "adapter.safetensors");
        rewrite(w, legacy ? to_legacy : strip_prefix, "roberta.", NULL);
        xa_composer *cp = composer(XA_ARCH_XLMR);
        xa_adapter *b = NULL;
        assert_int_equal(xa_hub_load_adapter(cp, dir, NULL, NULL, 0, 1, &b), XA_STATUS_OK);
        assert_same_adapter(a, b);
        assert_non_null(b->grads);
        free_adapter(a);
        xa_composer_free(cp);
    }
}

static void test_adapter_load_as_and_leave_out(void **state) {
    (void)state;
    xa_bn_config c = preset("double_seq_bn");
    xa_adapter *a = random_adapter("task", &c, XA_ARCH_BERT, 5);
    xa_encoder_config enc = tiny(XA_ARCH_BERT);
    const char *dir = dir_path("load-as");
    assert_int_equal(xa_hub_save_adapter(dir, a, &enc, NULL), XA_STATUS_OK);
    xa_composer *cp = composer(XA_ARCH_BERT);
    xa_adapter *b = NULL, *b2 = NULL;
    assert_int_equal(xa_hub_load_adapter(cp, dir, "task2", NULL, 0, 0, &b), XA_STATUS_OK);
    assert_string_equal(b->name, "task2");
    assert_same_adapter(a, b);
    /* the same directory again under the same name is refused by the composer */
    assert_int_not_equal(xa_hub_load_adapter(cp, dir, "task2", NULL, 0, 0, NULL), XA_STATUS_OK);
    /* load-time leave_out: layer 1 goes, layer 0 keeps its weights, the layout equals a fresh one
     */
    int drop[] = {1};
    assert_int_equal(xa_hub_load_adapter(cp, dir, "task3", drop, 1, 1, &b2), XA_STATUS_OK);
    assert_int_equal(b2->cfg.n_leave_out, 1);
    assert_int_equal(b2->cfg.leave_out[0], 1);
    assert_int_equal(b2->present[2] + b2->present[3], 0);
    assert_int_equal(b2->present[0] + b2->present[1], 2);
    xa_bn_config c2 = c;
    c2.n_leave_out = 1;
    c2.leave_out[0] = 1;
    xa_adapter fresh;
    assert_int_equal(xa_adapter_init(&fresh, "x", &c2, a->L, a->C, 0, "test"), XA_STATUS_OK);
    assert_int_equal(fresh.n_params, b2->n_params);
    assert_memory_equal(a->params, b2->params, b2->n_params * sizeof(float));
    assert_ptr_equal(b2->mods[0].t[XA_BNECK_DOWN_W], b2->params);
    xa_adapter_free(&fresh);
    /* a directory without a name in the config takes the directory's name */
    xa_adapter_file_config fc;
    assert_int_equal(xa_adapter_config_read(&fc, file_in(dir, "adapter_config.json")),
                     XA_STATUS_OK);
    fc.name[0] = '\0';
    assert_int_equal(xa_adapter_config_write(&fc, file_in(dir, "adapter_config.json")),
                     XA_STATUS_OK);
    xa_adapter *b3 = NULL;
    assert_int_equal(xa_hub_load_adapter(cp, dir, NULL, NULL, 0, 0, &b3), XA_STATUS_OK);
    assert_string_equal(b3->name, "load-as");
    assert_same_adapter(a, b3);
    free_adapter(a);
    xa_composer_free(cp);
}

static void test_adapter_legacy_inv_fix(void **state) {
    (void)state;
    xa_bn_config c = preset("seq_bn_inv");
    xa_adapter *a = random_adapter("task", &c, XA_ARCH_XLMR, 9);
    xa_encoder_config enc = tiny(XA_ARCH_XLMR);
    const char *dir = dir_path("legacy-inv");
    assert_int_equal(xa_hub_save_adapter(dir, a, &enc, NULL), XA_STATUS_OK);
    rewrite(file_in(dir, "adapter.safetensors"), drop_inv, NULL, NULL);
    xa_composer *cp = composer(XA_ARCH_XLMR);
    xa_adapter *b = NULL;
    assert_int_equal(xa_hub_load_adapter(cp, dir, NULL, NULL, 0, 0, &b), XA_STATUS_OK);
    assert_int_equal(b->has_inv, 0);
    assert_int_equal(b->cfg.inv_adapter, XA_BN_INV_NONE);
    assert_memory_equal(a->params, b->params, b->n_params * sizeof(float));
    free_adapter(a);
    xa_composer_free(cp);
}

/* Save a seq_bn adapter "en" into dir and return the path of its weights. */
static const char *saved(const char *dir, xa_arch arch) {
    xa_bn_config c = preset("seq_bn");
    xa_adapter *a = random_adapter("en", &c, arch, 1);
    xa_encoder_config enc = tiny(arch);
    assert_int_equal(xa_hub_save_adapter(dir, a, &enc, NULL), XA_STATUS_OK);
    free_adapter(a);
    return file_in(dir, "adapter.safetensors");
}

static xa_status load_into_fresh(const char *dir, xa_arch arch) {
    xa_composer *cp = composer(arch);
    xa_adapter *b = (xa_adapter *)1;
    xa_status st = xa_hub_load_adapter(cp, dir, NULL, NULL, 0, 0, &b);
    if (st) assert_null(b);
    assert_int_equal(xa_composer_n_adapters(cp), st ? 0 : 1);
    xa_composer_free(cp);
    return st;
}

static void test_adapter_load_errors(void **state) {
    (void)state;
    const char *T1 = "roberta.encoder.layer.1.output.adapters.en.adapter_up.weight";
    /* wrong hidden size */
    const char *dir = dir_path("err-hidden");
    saved(dir, XA_ARCH_XLMR);
    xa_adapter_file_config fc;
    const char *cfgp = file_in(dir, "adapter_config.json");
    assert_int_equal(xa_adapter_config_read(&fc, cfgp), XA_STATUS_OK);
    fc.hidden_size = 768;
    assert_int_equal(xa_adapter_config_write(&fc, cfgp), XA_STATUS_OK);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_CONFIG);
    xt_assert_error_mentions("adapter_config.json");
    xt_assert_error_mentions("768");
    xt_assert_error_mentions("wrong base model");
    /* wrong model type: an XLM-R adapter into a BERT composer */
    dir = dir_path("err-type");
    saved(dir, XA_ARCH_XLMR);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_BERT), XA_STATUS_CONFIG);
    xt_assert_error_mentions("model_type");
    xt_assert_error_mentions("wrong base model");
    /* wrong shape */
    dir = dir_path("err-shape");
    rewrite(saved(dir, XA_ARCH_XLMR), reshape_named, T1, NULL);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_SHAPE);
    xt_assert_error_mentions(T1);
    xt_assert_error_mentions("adapter.safetensors");
    xt_assert_error_mentions("[128, 8]");
    /* a name in adapter_config.json that would name a directory outside a setup directory */
    dir = dir_path("err-name");
    saved(dir, XA_ARCH_XLMR);
    assert_int_equal(xa_adapter_config_read(&fc, cfgp = file_in(dir, "adapter_config.json")),
                     XA_STATUS_OK);
    snprintf(fc.name, sizeof fc.name, "../../outside");
    assert_int_equal(xa_adapter_config_write(&fc, cfgp), XA_STATUS_OK);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_CONFIG);
    xt_assert_error_mentions("adapter name '../../outside'");
    xt_assert_error_mentions("adapter_config.json");
    /* unknown tensor */
    dir = dir_path("err-unknown");
    rewrite(saved(dir, XA_ARCH_XLMR), NULL, NULL,
            "roberta.encoder.layer.0.output.adapters.en.adapter_norm_after.weight");
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_CONFIG);
    xt_assert_error_mentions("adapter_norm_after.weight");
    xt_assert_error_mentions("adapter.safetensors");
    /* missing tensor */
    dir = dir_path("err-missing");
    rewrite(saved(dir, XA_ARCH_XLMR), drop_named, T1, NULL);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions(T1);
    xt_assert_error_mentions("adapter.safetensors");
    /* truncated weights */
    dir = dir_path("err-trunc");
    const char *w = saved(dir, XA_ARCH_XLMR);
    size_t n = 0;
    char *bytes = xt_read_file(w, &n);
    assert_non_null(bytes);
    xt_write_file(w, bytes, n / 2);
    free(bytes);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_FORMAT);
    xt_assert_error_mentions("adapter.safetensors");
    /* missing config / missing weights / a .bin only directory */
    dir = dir_path("err-noconfig");
    saved(dir, XA_ARCH_XLMR);
    remove(file_in(dir, "adapter_config.json"));
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("adapter_config.json");
    dir = dir_path("err-bin");
    saved(dir, XA_ARCH_XLMR);
    /* the .bin twin is read when there is no safetensors file, by its content (this one holds
     * safetensors bytes under the .bin name; real torch files are tests/test_torchbin.c's) */
    rename(file_in(dir, "adapter.safetensors"), file_in(dir, "pytorch_adapter.bin"));
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_OK);
    /* a torch file that is refused names the .bin file */
    xt_write_file(file_in(dir, "pytorch_adapter.bin"), "PK\5\6", 4);
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_FORMAT);
    xt_assert_error_mentions("pytorch_adapter.bin");
    remove(file_in(dir, "pytorch_adapter.bin"));
    assert_int_equal(load_into_fresh(dir, XA_ARCH_XLMR), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("adapter.safetensors");
    xt_assert_error_mentions("pytorch_adapter.bin");
}

static void test_adapter_unsupported_configs(void **state) {
    (void)state;
    xa_adapter a;
    xa_bn_config c = preset("seq_bn");
    c.stochastic_depth = 0.1;
    assert_int_equal(xa_adapter_init(&a, "x", &c, 2, 128, 0, "cfg"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("stochastic_depth");
    c = preset("compacter");
    c.factorized_phm_rule = 1;
    assert_int_equal(xa_adapter_init(&a, "x", &c, 2, 128, 0, "cfg"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("factorized_phm_rule");
    c = preset("compacter");
    c.phm_dim = 3; /* 128 % 3 != 0 */
    assert_int_equal(xa_adapter_init(&a, "x", &c, 2, 128, 0, "cfg"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("phm_dim");
    c = preset("seq_bn");
    c.cross_adapter = 1;
    assert_int_equal(xa_adapter_init(&a, "x", &c, 2, 128, 0, "cfg"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("cross_adapter");
}

static void test_adapter_init_weights_seed(void **state) {
    (void)state;
    xa_bn_config c = preset("double_seq_bn");
    c.has_init_weights_seed = 1;
    c.init_weights_seed = 42;
    xa_adapter a;
    assert_int_equal(xa_adapter_init(&a, "x", &c, 2, 128, 1, "cfg"), XA_STATUS_OK);
    xa_rng rng;
    xa_rng_seed(&rng, 1, 1);
    xa_adapter_init_weights(&a, &rng);
    /* every module starts from the same weights */
    for (int i = 1; i < 4; i++) {
        assert_memory_equal(a.mods[0].t[XA_BNECK_DOWN_W], a.mods[i].t[XA_BNECK_DOWN_W],
                            a.mods[0].numel[XA_BNECK_DOWN_W] * sizeof(float));
    }
    assert_non_null(a.mods[3].g[XA_BNECK_UP_W]);
    assert_int_equal(xa_adapter_set_trainable(&a, 0), XA_STATUS_OK);
    assert_null(a.mods[3].g[XA_BNECK_UP_W]);
    xa_adapter_free(&a);
    /* compacter: the shared rule is bound into every module */
    c = preset("compacter");
    assert_int_equal(xa_adapter_init(&a, "x", &c, 2, 128, 1, "cfg"), XA_STATUS_OK);
    xa_adapter_init_weights(&a, &rng);
    assert_non_null(a.phm_rule);
    assert_ptr_equal(a.mods[2].phm_rule, a.phm_rule);
    assert_ptr_equal(a.mods[2].phm_rule_grad, a.phm_rule_grad);
    assert_ptr_equal(a.phm_rule + 64, a.params + a.n_params);
    xa_adapter_free(&a);
}

/* ---- fusion -------------------------------------------------------------------------------------
 */

static void test_fusion_roundtrip(void **state) {
    (void)state;
    for (int explicit_name = 0; explicit_name < 2; explicit_name++) {
        xa_composer *cp = composer(XA_ARCH_XLMR);
        xa_bn_config c = preset("seq_bn");
        xa_adapter *ads[3];
        const char *names[] = {"a", "b", "c"};
        for (int i = 0; i < 3; i++) {
            assert_int_equal(xa_composer_add_adapter(cp, names[i], &c, 0, &ads[i]), XA_STATUS_OK);
        }
        xa_fusion_config fcfg;
        assert_int_equal(xa_fusion_config_preset(&fcfg, "dynamic"), XA_STATUS_OK);
        xa_fusion_layer f;
        assert_int_equal(xa_fusion_layer_init(&f, explicit_name ? "myfuse" : NULL,
                                              (const xa_adapter *const *)ads, 3, &fcfg, 2, 128,
                                              0.1f, 0, "test"),
                         XA_STATUS_OK);
        assert_string_equal(f.name, explicit_name ? "myfuse" : "a,b,c");
        assert_int_equal(f.present[0] + f.present[2], 0); /* seq_bn: FFN only */
        assert_int_equal(f.present[1] + f.present[3], 2);
        assert_true(f.mods[1].spec.dropout == 0.1f);
        xa_rng rng;
        xa_rng_seed(&rng, 3, 3);
        xa_rng_fill_normal(&rng, f.params, f.n_params, 0.0f, 1.0f);
        xa_encoder_config enc = tiny(XA_ARCH_XLMR);
        const char *dir = dir_path(explicit_name ? "fusion-named" : "fusion");
        assert_int_equal(xa_hub_save_fusion(dir, &f, &enc, NULL), XA_STATUS_OK);
        xa_st_file *st = NULL;
        assert_int_equal(xa_st_open(&st, file_in(dir, "model_adapter_fusion.safetensors")),
                         XA_STATUS_OK);
        char tn[1400];
        snprintf(tn, sizeof tn,
                 "roberta.encoder.layer.1.output.adapter_fusion_layer.%s.value.weight", f.name);
        assert_non_null(xa_st_find(st, tn));
        xa_st_close(st);
        xa_fusion_layer *g = NULL;
        assert_int_equal(xa_hub_load_fusion(cp, dir, 1, &g), XA_STATUS_OK);
        assert_string_equal(g->name, f.name);
        assert_int_equal(g->n, 3);
        assert_int_equal(g->n_params, f.n_params);
        assert_memory_equal(g->params, f.params, f.n_params * sizeof(float));
        assert_int_equal(g->cfg.value_initialized, 1);
        assert_true(g->cfg.dropout_prob < 0);
        assert_non_null(g->grads);
        assert_ptr_equal(xa_composer_fusion(cp, f.name), g);
        xa_fusion_layer_free(&f);
        xa_composer_free(cp);
        /* the fused adapters must be loaded first */
        cp = composer(XA_ARCH_XLMR);
        assert_int_equal(xa_hub_load_fusion(cp, dir, 0, NULL), XA_STATUS_NOT_FOUND);
        xt_assert_error_mentions("adapter_fusion_config.json");
        xt_assert_error_mentions("'a'");
        xa_composer_free(cp);
    }
}

/* A fusion records the fingerprint of the base it was saved on; loading it on another base
 * warns (wrong base model?), on the same base it does not. */
typedef struct warn_count {
    int n;
    char msg[512];
} warn_count;

static void count_warning(xa_log_level level, const char *msg, void *user) {
    warn_count *w = user;
    if (level != XA_LOG_LEVEL_WARN) return;
    w->n++;
    snprintf(w->msg, sizeof w->msg, "%s", msg);
}

static xa_composer *composer_on(uint64_t fingerprint, xa_adapter **ads) {
    xa_encoder_config c = tiny(XA_ARCH_XLMR);
    c.fingerprint = fingerprint;
    xa_composer *cp = NULL;
    assert_int_equal(xa_composer_init(&cp, &c), XA_STATUS_OK);
    xa_bn_config bn = preset("seq_bn");
    const char *names[] = {"a", "b"};
    for (int i = 0; i < 2; i++) assert_int_equal(xa_composer_add_adapter(cp, names[i], &bn, 0, &ads[i]), XA_STATUS_OK);
    return cp;
}

static void test_fusion_base_fingerprint(void **state) {
    (void)state;
    xa_adapter *ads[2];
    xa_composer *cp = composer_on(0x1234, ads);
    xa_fusion_config fcfg;
    assert_int_equal(xa_fusion_config_preset(&fcfg, "dynamic"), XA_STATUS_OK);
    xa_fusion_layer f;
    assert_int_equal(xa_fusion_layer_init(&f, NULL, (const xa_adapter *const *)ads, 2, &fcfg, 2, 128, 0.1f, 0, "test"),
                     XA_STATUS_OK);
    const char *dir = dir_path("fusion-fp");
    assert_int_equal(xa_hub_save_fusion(dir, &f, xa_composer_encoder_config(cp), NULL), XA_STATUS_OK);
    xa_fusion_layer_free(&f);
    xa_fusion_file_config *fc = calloc(1, sizeof *fc);
    assert_non_null(fc);
    assert_int_equal(xa_fusion_config_read(fc, file_in(dir, "adapter_fusion_config.json")), XA_STATUS_OK);
    assert_string_equal(fc->base_fingerprint, "0000000000001234");
    free(fc);
    warn_count w = {0};
    const xa_log_level saved = xa_log_get_level();
    xa_log_set_level(XA_LOG_LEVEL_WARN);
    xa_log_set_callback(count_warning, &w);
    assert_int_equal(xa_hub_load_fusion(cp, dir, 0, NULL), XA_STATUS_OK);
    assert_int_equal(w.n, 0); /* its own base */
    xa_composer_free(cp);
    cp = composer_on(0x9999, ads);
    assert_int_equal(xa_hub_load_fusion(cp, dir, 0, NULL), XA_STATUS_OK);
    xa_log_set_callback(NULL, NULL);
    xa_log_set_level(saved);
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(w.msg, "another base"));
    assert_non_null(strstr(w.msg, "adapter_fusion_config.json"));
    xa_composer_free(cp);
}

static void test_fusion_layer_errors(void **state) {
    (void)state;
    xa_composer *cp = composer(XA_ARCH_XLMR);
    xa_bn_config s = preset("seq_bn"), h = preset("double_seq_bn");
    xa_adapter *ads[2];
    assert_int_equal(xa_composer_add_adapter(cp, "s", &s, 0, &ads[0]), XA_STATUS_OK);
    assert_int_equal(xa_composer_add_adapter(cp, "h", &h, 0, &ads[1]), XA_STATUS_OK);
    xa_fusion_config fcfg;
    xa_fusion_config_preset(&fcfg, "static");
    xa_fusion_layer f;
    assert_int_equal(xa_fusion_layer_init(&f, NULL, (const xa_adapter *const *)ads, 2, &fcfg, 2,
                                          128, 0.1f, 0, "test"),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("mh_adapter");
    ads[1] = ads[0];
    fcfg.temperature = 1;
    assert_int_equal(xa_fusion_layer_init(&f, NULL, (const xa_adapter *const *)ads, 2, &fcfg, 2,
                                          128, 0.1f, 0, "test"),
                     XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("temperature");
    xa_composer_free(cp);
}

static void test_fusion_config_json(void **state) {
    (void)state;
    xa_fusion_file_config fc;
    const char *j1 = "{\"config\": \"static\", \"hidden_size\": 768, \"name\": \"a,b\"}";
    assert_int_equal(xa_fusion_config_parse(&fc, j1, strlen(j1), "f.json"), XA_STATUS_OK);
    assert_int_equal(fc.config.value, 0);
    assert_int_equal(fc.config.regularization, 0);
    assert_int_equal(fc.config.key, 1);
    assert_true(fc.config.dropout_prob < 0);
    assert_string_equal(fc.name, "a,b");
    const char *j2 = "{\"config\": {\"key\": true, \"quer\": true}}";
    assert_int_equal(xa_fusion_config_parse(&fc, j2, strlen(j2), "f.json"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("did you mean 'query'");
    xt_assert_error_mentions("f.json");
    const char *j3 = "{\"config\": \"wild\"}";
    assert_int_equal(xa_fusion_config_parse(&fc, j3, strlen(j3), "f.json"), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("wild");
    const char *j4 = "{\"config\": {\"value\": 1}}";
    assert_int_equal(xa_fusion_config_parse(&fc, j4, strlen(j4), "f.json"), XA_STATUS_CONFIG);
    xt_assert_error_mentions("config.value");
    const char *j5 = "{\"config\": {\"dropout_prob\": 0.25, \"value_initialized\": \"\"}}";
    assert_int_equal(xa_fusion_config_parse(&fc, j5, strlen(j5), "f.json"), XA_STATUS_OK);
    assert_true(fc.config.dropout_prob == 0.25);
    assert_int_equal(fc.config.value_initialized, 0);
    assert_int_equal(fc.config.value, 1); /* absent: dynamic */
    /* write -> read */
    const char *p = xt_tmp_path("fusion_config.json");
    fc.hidden_size = 128;
    assert_int_equal(xa_fusion_config_write(&fc, p), XA_STATUS_OK);
    xa_fusion_file_config back;
    assert_int_equal(xa_fusion_config_read(&back, p), XA_STATUS_OK);
    assert_memory_equal(&back.config, &fc.config, sizeof fc.config);
    assert_string_equal(back.version, XA_ADAPTERS_VERSION);
    fc.config.dropout_prob = -1;
    assert_int_equal(xa_fusion_config_write(&fc, p), XA_STATUS_OK);
    char *text = xt_read_file(p, NULL);
    assert_non_null(strstr(text, "\"dropout_prob\": null"));
    free(text);
}

/* ---- heads
 * ---------------------------------------------------------------------------------------- */

static void test_head_roundtrip(void **state) {
    (void)state;
    const char *labels[] = {"O", "B-PER", "I-PER"};
    for (int kind = 0; kind < 2; kind++) {
        xa_head h, g;
        assert_int_equal(xa_head_init(&h, (xa_head_kind)kind, 128, 3, 0.2f, 2, 8, 0), XA_STATUS_OK);
        xa_rng rng;
        xa_rng_seed(&rng, 4, 4);
        xa_rng_fill_normal(&rng, h.params, h.n_params, 0.0f, 1.0f);
        xa_encoder_config enc = tiny(XA_ARCH_BERT);
        const char *dir = dir_path(kind ? "head-tag" : "head-cls");
        assert_int_equal(xa_hub_save_head(dir, &h, "ner", labels, 3, &enc, "bert-tiny"),
                         XA_STATUS_OK);
        xa_st_file *f = NULL;
        assert_int_equal(xa_st_open(&f, file_in(dir, "model_head.safetensors")), XA_STATUS_OK);
        assert_non_null(xa_st_find(f, "heads.ner.1.weight"));
        if (kind == XA_HEAD_CLASSIFICATION) assert_non_null(xa_st_find(f, "heads.ner.4.bias"));
        xa_st_close(f);
        xa_head_file_config fc;
        assert_int_equal(xa_hub_load_head(dir, &g, 2, 8, 1, &fc), XA_STATUS_OK);
        assert_int_equal(g.kind, h.kind);
        assert_int_equal(g.K, 3);
        assert_int_equal(g.C, 128);
        assert_true(g.p_drop == 0.2f);
        assert_non_null(g.grads);
        assert_int_equal(g.n_params, h.n_params);
        assert_memory_equal(g.params, h.params, h.n_params * sizeof(float));
        assert_int_equal(fc.n_labels, 3);
        assert_string_equal(fc.labels[1], "B-PER");
        assert_string_equal(fc.head_type, kind ? "tagging" : "classification");
        assert_string_equal(fc.model_class, "BertAdapterModel");
        xa_head_free(&g);
        /* a wrong shape is caught */
        rewrite(file_in(dir, "model_head.safetensors"), reshape_named, "heads.ner.1.bias", NULL);
        assert_int_equal(xa_hub_load_head(dir, &g, 2, 8, 0, NULL), XA_STATUS_SHAPE);
        xt_assert_error_mentions("heads.ner.1.bias");
        xa_head_free(&h);
    }
}

/* The "config" keys of a written head_config.json, sorted, joined by ','. */
static void config_keys(char *out, size_t n, const char *path) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) fail_msg("%s: %s", path, err.text);
    json_t *cfg = json_object_get(root, "config");
    assert_true(json_is_object(cfg));
    const char *keys[32];
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(cfg, key, v) {
        assert_true(k < 32);
        keys[k++] = key;
    }
    for (size_t i = 1; i < k; i++) /* insertion sort: a handful of keys */
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < k; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "," : "", keys[i]);
    json_decref(root);
}

/* AdapterHub builds a head as head_class(model, name, **config) after turning label2id into
 * id2label (adapters 1.2.0, src/adapters/heads/model_mixin.py:201-224), so the written keys must be
 * exactly the constructor's keyword parameters (id2label spelled label2id) plus head_type:
 *   ClassificationHead.__init__, src/adapters/heads/base.py:133-145: num_labels, layers,
 *     activation_function, id2label, use_pooler, bias, dropout_prob;
 *   TaggingHead.__init__, src/adapters/heads/base.py:315-325: num_labels, layers,
 *     activation_function, id2label, dropout_prob (no use_pooler, no bias: TypeError);
 *   MultipleChoiceHead.__init__, src/adapters/heads/base.py:266-277: num_choices, layers,
 *     activation_function, id2label, use_pooler, dropout_prob (no num_labels, no bias);
 *   QuestionAnsweringHead.__init__, src/adapters/heads/base.py:382-392: num_labels (2), layers,
 *     activation_function, id2label, dropout_prob (no use_pooler, no bias).
 * (snapshot 88f18ebd6c12 of adapter-hub/adapters, version 1.2.0.) */
static void test_head_config_keys(void **state) {
    (void)state;
    static const char *const expect[4] = {
        "activation_function,bias,dropout_prob,head_type,label2id,layers,num_labels,use_pooler",
        "activation_function,dropout_prob,head_type,label2id,layers,num_labels",
        "activation_function,dropout_prob,head_type,label2id,layers,num_choices,use_pooler",
        "activation_function,dropout_prob,head_type,label2id,layers,num_labels",
    };
    static const char *const kind_names[4] = {"classification", "tagging", "multiple_choice", "question_answering"};
    static const char *const dirs[4] = {"head-keys-cls", "head-keys-tag", "head-keys-mc", "head-keys-qa"};
    const char *labels[] = {"O", "B-LOC"};
    for (int kind = 0; kind < 4; kind++) {
        xa_head h, g;
        assert_int_equal(xa_head_init(&h, (xa_head_kind)kind, 128, 2, 0.1f, 2, 8, 0), XA_STATUS_OK);
        xa_rng rng;
        xa_rng_seed(&rng, 7, 7);
        xa_rng_fill_normal(&rng, h.params, h.n_params, 0.0f, 1.0f);
        xa_encoder_config enc = tiny(XA_ARCH_XLMR);
        const char *dir = dir_path(dirs[kind]);
        assert_int_equal(xa_hub_save_head(dir, &h, "pos", kind == 3 ? NULL : labels, kind == 3 ? 0 : 2, &enc, "xlmr-tiny"),
                         XA_STATUS_OK);
        char got[512];
        config_keys(got, sizeof got, file_in(dir, "head_config.json"));
        if (strcmp(got, expect[kind]) != 0)
            fail_msg("%s head: wrote keys [%s], AdapterHub's constructor takes [%s]",
                     kind_names[kind], got, expect[kind]);
        /* and xadapt reads its own file back, bit-identical */
        xa_head_file_config fc;
        assert_int_equal(xa_hub_load_head(dir, &g, 2, 8, 0, &fc), XA_STATUS_OK);
        assert_int_equal(g.kind, h.kind);
        assert_int_equal(g.K, 2);
        assert_string_equal(fc.head_type, kind_names[kind]);
        assert_int_equal(fc.bias, 1);
        assert_int_equal(fc.use_pooler, 0);
        assert_int_equal(g.n_params, h.n_params);
        assert_memory_equal(g.params, h.params, h.n_params * sizeof(float));
        xa_head_free(&g);
        xa_head_free(&h);
    }
}

static void test_head_config_json(void **state) {
    (void)state;
    xa_head_file_config c;
    const char *ok = "{\"config\": {\"head_type\": \"tagging\", \"num_labels\": 2, \"layers\": 1, "
                     "\"activation_function\": \"tanh\", \"label2id\": {\"B\": 1, \"O\": 0}}, "
                     "\"hidden_size\": 768, \"name\": \"ner\", \"version\": \"adapters.1.2.0\"}";
    assert_int_equal(xa_head_config_parse(&c, ok, strlen(ok), "h.json"), XA_STATUS_OK);
    assert_string_equal(c.labels[0], "O");
    assert_string_equal(c.labels[1], "B");
    assert_int_equal(c.bias, 1);
    /* a multiple-choice head as AdapterHub saves it (id2label None: label2id null) */
    const char *mc = "{\"config\": {\"head_type\": \"multiple_choice\", \"num_choices\": 3, \"layers\": 2, "
                     "\"activation_function\": \"tanh\", \"label2id\": null, \"use_pooler\": false, "
                     "\"dropout_prob\": null}, \"hidden_size\": 768, \"name\": \"copa\", \"version\": \"adapters.1.2.0\"}";
    assert_int_equal(xa_head_config_parse(&c, mc, strlen(mc), "h.json"), XA_STATUS_OK);
    assert_string_equal(c.head_type, "multiple_choice");
    assert_int_equal(c.num_labels, 3);
    assert_int_equal(c.n_labels, 0);
    const char *mc1 = "{\"config\": {\"head_type\": \"multiple_choice\", \"num_choices\": 2, \"layers\": 1, "
                      "\"activation_function\": \"tanh\"}, \"hidden_size\": 768, \"name\": \"copa\"}";
    assert_int_equal(xa_head_config_parse(&c, mc1, strlen(mc1), "h.json"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("2 for a multiple-choice head");
    /* a question-answering head as AdapterHub saves it (QuestionAnsweringHead's defaults) */
    const char *qa = "{\"config\": {\"head_type\": \"question_answering\", \"num_labels\": 2, \"layers\": 1, "
                     "\"activation_function\": \"tanh\", \"label2id\": null, \"dropout_prob\": null}, "
                     "\"hidden_size\": 768, \"name\": \"squad\", \"version\": \"adapters.1.2.0\"}";
    assert_int_equal(xa_head_config_parse(&c, qa, strlen(qa), "h.json"), XA_STATUS_OK);
    assert_string_equal(c.head_type, "question_answering");
    assert_int_equal(c.num_labels, 2);
    assert_int_equal(c.n_labels, 0);
    const char *qa2 = "{\"config\": {\"head_type\": \"question_answering\", \"num_labels\": 2, \"layers\": 2, "
                      "\"activation_function\": \"tanh\"}, \"hidden_size\": 768, \"name\": \"squad\"}";
    assert_int_equal(xa_head_config_parse(&c, qa2, strlen(qa2), "h.json"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("1 for a question-answering head");
    const char *qa3 = "{\"config\": {\"head_type\": \"question_answering\", \"num_labels\": 3, \"layers\": 1, "
                      "\"activation_function\": \"tanh\"}, \"hidden_size\": 768, \"name\": \"squad\"}";
    assert_int_equal(xa_head_config_parse(&c, qa3, strlen(qa3), "h.json"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("start and end logits");
    /* a tagging head written by older xadapt versions, with use_pooler and bias: still read */
    const char *old = "{\"config\": {\"head_type\": \"tagging\", \"num_labels\": 2, \"layers\": 1, "
                      "\"activation_function\": \"tanh\", \"use_pooler\": false, \"bias\": true, "
                      "\"dropout_prob\": 0.1, \"label2id\": {\"B\": 1, \"O\": 0}}, "
                      "\"hidden_size\": 768, \"name\": \"ner\"}";
    assert_int_equal(xa_head_config_parse(&c, old, strlen(old), "h.json"), XA_STATUS_OK);
    assert_string_equal(c.head_type, "tagging");
    assert_int_equal(c.bias, 1);
    assert_int_equal(c.use_pooler, 0);
    struct {
        const char *json;
        xa_status st;
        const char *needle;
    } bad[] = {
        {"{\"config\": {\"head_type\": \"tagging\", \"num_label\": 2, \"layers\": 1}}",
         XA_STATUS_CONFIG, "did you mean 'num_labels'"},
        {"{\"config\": {\"head_type\": \"dependency_parsing\", \"num_labels\": 2, \"layers\": 1}}",
         XA_STATUS_UNSUPPORTED, "question_answering"},
        {"{\"config\": {\"head_type\": \"tagging\", \"num_labels\": 2, \"layers\": 1, "
         "\"label2id\": {\"a\": 0, \"b\": 0}}}",
         XA_STATUS_CONFIG, "label2id"},
        {"{\"config\": {\"head_type\": \"tagging\", \"num_labels\": 2, \"layers\": 1, "
         "\"label2id\": {\"a\": 0, \"b\": 2}}}",
         XA_STATUS_CONFIG, "label2id"},
        {"{\"config\": {\"head_type\": \"tagging\", \"num_labels\": 3, \"layers\": 1, "
         "\"label2id\": {\"a\": 0, \"b\": 1}}}",
         XA_STATUS_CONFIG, "num_labels"},
        {"{\"config\": {\"head_type\": \"classification\", \"num_labels\": 2, \"layers\": 2, "
         "\"activation_function\": \"relu\"}}",
         XA_STATUS_UNSUPPORTED, "activation_function"},
        {"{\"config\": {\"head_type\": \"classification\", \"num_labels\": 2, \"layers\": 2, "
         "\"activation_function\": \"tanh\", \"use_pooler\": true}}",
         XA_STATUS_UNSUPPORTED, "use_pooler"},
        {"{\"config\": [1]}", XA_STATUS_CONFIG, "config"},
        {"{\"config\": {\"head_type\": ", XA_STATUS_FORMAT, "h.json:1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        xa_status st = xa_head_config_parse(&c, bad[i].json, strlen(bad[i].json), "h.json");
        if (st != bad[i].st) fail_msg("case %zu: status %s", i, xa_status_name(st));
        xt_assert_error_mentions(bad[i].needle);
        xt_assert_error_mentions("h.json");
    }
    /* an HF static head */
    const char *stat = "{\"config\": null, \"model_class\": \"XLMRobertaForTokenClassification\", "
                       "\"num_labels\": 2, \"label2id\": {\"O\": 0, \"X\": 1}}";
    assert_int_equal(xa_head_config_parse(&c, stat, strlen(stat), "h.json"), XA_STATUS_OK);
    assert_string_equal(c.head_type, "tagging");
    assert_int_equal(c.num_labels, 2);
}

/* ---- adapter_setup.json -----------------------------------------------------------------------
 */

static void test_setup_roundtrip(void **state) {
    (void)state;
    const char *setups[] = {
        "Stack(en, task)",
        "Fuse(a, b, c)",
        "Stack(en, Fuse(a, b, name=myfuse))",
        "Split(a, b, splits=[3, 5])",
        "BatchSplit(a, b, batch_sizes=[2, 2])",
        "Parallel(a, b)",
        "Average(a, b, weights=[0.25, 0.75])",
        "Stack(en, Average(a, b))",
        "Stack(de)",
    };
    const char *p = xt_tmp_path("adapter_setup.json");
    for (size_t i = 0; i < sizeof setups / sizeof *setups; i++) {
        xa_setup *s = NULL, *back = NULL;
        if (xa_setup_parse(&s, setups[i], "test")) fail_msg("cannot parse %s", setups[i]);
        assert_int_equal(xa_hub_save_setup(p, s, i % 2 ? "ner" : NULL), XA_STATUS_OK);
        char head[32] = "junk";
        xa_status st = xa_hub_load_setup(p, &back, head, sizeof head);
        if (st) {
            char buf[4096];
            xa_error_format(xa_error_last(), buf, sizeof buf);
            fail_msg("%s:\n%s", setups[i], buf);
        }
        char want[512], got[512];
        xa_setup_format(s, want, sizeof want);
        xa_setup_format(back, got, sizeof got);
        assert_string_equal(got, want);
        assert_string_equal(head, i % 2 ? "ner" : "");
        xa_setup_free(s);
        xa_setup_free(back);
    }
    /* null setup */
    assert_int_equal(xa_hub_save_setup(p, NULL, NULL), XA_STATUS_OK);
    xa_setup *s = (xa_setup *)1;
    assert_int_equal(xa_hub_load_setup(p, &s, NULL, 0), XA_STATUS_OK);
    assert_null(s);
    /* the written form */
    xa_setup *w = NULL;
    assert_int_equal(xa_setup_parse(&w, "Stack(en, Split(a, b, splits=[1, 2]))", "t"),
                     XA_STATUS_OK);
    assert_int_equal(xa_hub_save_setup(p, w, "ner"), XA_STATUS_OK);
    xa_setup_free(w);
    char *text = xt_read_file(p, NULL);
    assert_non_null(strstr(text, "\"type\": \"single\""));
    assert_non_null(strstr(text, "\"splits\": ["));
    assert_non_null(strstr(text, "\"version\": \"adapters.1.2.0\""));
    free(text);
}

static void test_setup_read_forms_and_errors(void **state) {
    (void)state;
    const char *p = xt_tmp_path("setup_forms.json");
    const char *plain = "{\"adapter_setup\": {\"type\": \"Stack\", \"children\": [\"en\", "
                        "{\"type\": \"single\", \"children\": [\"task\"]}]}, "
                        "\"head_setup\": \"ner\", \"version\": \"adapters.1.0.0\"}";
    xt_write_file(p, plain, strlen(plain));
    xa_setup *s = NULL;
    char head[16];
    assert_int_equal(xa_hub_load_setup(p, &s, head, sizeof head), XA_STATUS_OK);
    char buf[128];
    xa_setup_format(s, buf, sizeof buf);
    assert_string_equal(buf, "Stack(en, task)");
    assert_string_equal(head, "ner");
    xa_setup_free(s);
    struct {
        const char *json;
        xa_status st;
        const char *needle;
    } bad[] = {
        {"{\"adapter_setup\": {\"type\": \"Stak\", \"children\": [\"a\"]}}", XA_STATUS_CONFIG,
         "Stak"},
        {"{\"adapter_setup\": {\"type\": \"Split\", \"children\": [\"a\", \"b\"], "
         "\"kwargs\": {\"split_index\": 3}}}",
         XA_STATUS_UNSUPPORTED, "split_index"},
        {"{\"adapter_setup\": {\"type\": \"Split\", \"children\": [\"a\", \"b\"], "
         "\"kwargs\": {\"splits\": [1]}}}",
         XA_STATUS_CONFIG, "kwargs.splits"},
        {"{\"adapter_setup\": {\"type\": \"Fuse\", \"children\": [\"a\", {\"type\": \"Split\", "
         "\"children\": [\"b\", \"c\"], \"kwargs\": {\"splits\": [1, 1]}}]}}",
         XA_STATUS_CONFIG, "setup_forms.json"},
        {"{\"head_setup\": null}", XA_STATUS_CONFIG, "adapter_setup"},
        /* names become directories (DIR/<name>/): a hostile file must not reach outside DIR */
        {"{\"adapter_setup\": {\"type\": \"Stack\", \"children\": [\"en\", \"../../etc\"]}}",
         XA_STATUS_CONFIG, "adapter name '../../etc'"},
        {"{\"adapter_setup\": \"..\"}", XA_STATUS_CONFIG, "adapter name '..'"},
        {"{\"adapter_setup\": \"a b\"}", XA_STATUS_CONFIG, "[A-Za-z0-9_.:-]"},
        {"{\"adapter_setup\": {\"type\": \"Fuse\", \"children\": [\"a\", \"b\"], "
         "\"kwargs\": {\"name\": \"x,/tmp\"}}}",
         XA_STATUS_CONFIG, "fusion name 'x,/tmp'"},
        {"{\"adapter_setup\": \"en\", \"head_setup\": \"../head\"}", XA_STATUS_CONFIG,
         "head_setup name '../head'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        xt_write_file(p, bad[i].json, strlen(bad[i].json));
        xa_status st = xa_hub_load_setup(p, &s, NULL, 0);
        if (st != bad[i].st) fail_msg("case %zu: status %s", i, xa_status_name(st));
        assert_null(s);
        xt_assert_error_mentions(bad[i].needle);
    }
}


/* Setup directories (AdapterHub's save_adapter_setup layout): every adapter of the setup gets
 * DIR/<name>/, adapter_setup.json lists them; a second composer loads the directory back with
 * the same weights; a name equal to one of xadapt's final/ directories is refused; an adapter
 * missing from the directory is NOT_FOUND naming it. */
static void test_setup_dir_roundtrip(void **state) {
    (void)state;
    xa_encoder_config enc = tiny(XA_ARCH_XLMR);
    xa_bn_config cfg = preset("seq_bn");
    xa_composer *cp = composer(XA_ARCH_XLMR);
    assert_int_equal(xa_composer_take_adapter(cp, random_adapter("de", &cfg, XA_ARCH_XLMR, 11)), XA_STATUS_OK);
    assert_int_equal(xa_composer_take_adapter(cp, random_adapter("topic", &cfg, XA_ARCH_XLMR, 12)), XA_STATUS_OK);
    xa_setup *s = NULL;
    assert_int_equal(xa_setup_parse(&s, "Stack(de, topic)", "test"), XA_STATUS_OK);
    const char *dir = xt_tmp_path("setupdir");
    assert_int_equal(xa_hub_save_setup_dir(dir, cp, s, NULL, NULL, NULL, 0, &enc, "tiny"), XA_STATUS_OK);

    xa_composer *cp2 = composer(XA_ARCH_XLMR);
    xa_setup *s2 = NULL;
    char head[512];
    assert_int_equal(xa_hub_load_setup_dir(cp2, dir, &s2, head, sizeof head), XA_STATUS_OK);
    assert_non_null(s2);
    char a[128], b[128];
    xa_setup_format(s, a, sizeof a);
    xa_setup_format(s2, b, sizeof b);
    assert_string_equal(a, b);
    assert_string_equal(head, ""); /* no head saved */
    for (int i = 0; i < 2; i++) {
        const char *nm = i ? "topic" : "de";
        const xa_adapter *x = xa_composer_adapter(cp, nm), *y = xa_composer_adapter(cp2, nm);
        assert_non_null(y);
        assert_int_equal(x->n_params, y->n_params);
        assert_memory_equal(x->params, y->params, x->n_params * sizeof(float));
    }
    xa_setup_free(s2);
    xa_composer_free(cp2);

    /* an adapter of the setup without a directory */
    char p[1024];
    snprintf(p, sizeof p, "%s/de/adapter_config.json", dir);
    assert_int_equal(remove(p), 0);
    cp2 = composer(XA_ARCH_XLMR);
    assert_int_equal(xa_hub_load_setup_dir(cp2, dir, &s2, NULL, 0), XA_STATUS_NOT_FOUND);
    assert_null(s2);
    assert_non_null(strstr(xa_error_last()->what, "'de'"));
    xa_composer_free(cp2);

    /* reserved names */
    xa_setup_free(s);
    assert_int_equal(xa_composer_take_adapter(cp, random_adapter("head", &cfg, XA_ARCH_XLMR, 13)), XA_STATUS_OK);
    assert_int_equal(xa_setup_parse(&s, "Stack(head, topic)", "test"), XA_STATUS_OK);
    assert_int_equal(xa_hub_save_setup_dir(xt_tmp_path("setupdir2"), cp, s, NULL, NULL, NULL, 0, &enc, "tiny"),
                     XA_STATUS_CONFIG);
    assert_non_null(strstr(xa_error_last()->what, "collide"));
    xa_setup_free(s);
    xa_composer_free(cp);
}

int main(void) {
    xa_log_set_level(XA_LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_roundtrip_presets),
        cmocka_unit_test(test_adapter_file_layout),
        cmocka_unit_test(test_adapter_load_without_prefix_and_legacy_names),
        cmocka_unit_test(test_adapter_load_as_and_leave_out),
        cmocka_unit_test(test_adapter_legacy_inv_fix),
        cmocka_unit_test(test_adapter_load_errors),
        cmocka_unit_test(test_adapter_unsupported_configs),
        cmocka_unit_test(test_adapter_init_weights_seed),
        cmocka_unit_test(test_fusion_roundtrip),
        cmocka_unit_test(test_fusion_base_fingerprint),
        cmocka_unit_test(test_fusion_layer_errors),
        cmocka_unit_test(test_fusion_config_json),
        cmocka_unit_test(test_head_roundtrip),
        cmocka_unit_test(test_head_config_keys),
        cmocka_unit_test(test_head_config_json),
        cmocka_unit_test(test_setup_roundtrip),
        cmocka_unit_test(test_setup_read_forms_and_errors),
        cmocka_unit_test(test_setup_dir_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
