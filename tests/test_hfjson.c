/* Tests of framework/io/hfjson: Hugging Face config.json (fixtures in the shape of
 * xlm-roberta-base's and bert-base-multilingual-cased's files, per-type defaults, validation
 * errors, write -> read round trips) and AdapterHub adapter_config.json (fixtures in the shapes
 * AdapterHub writes: a seq_bn_inv language adapter, a double_seq_bn task adapter with a
 * per-layer reduction factor, a legacy v1 file and a legacy preset-string file; presets; unknown
 * keys; LoRA configs; round trips). Fixtures live in tests/data/io/, written by hand from
 * ADAPTERHUB.md §1.10 / §1.11. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/hfjson.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static void assert_hf_equal(const xa_hf_config *a, const xa_hf_config *b) {
    assert_string_equal(a->model_type, b->model_type);
    assert_int_equal(a->n_architectures, b->n_architectures);
    for (int i = 0; i < a->n_architectures; i++) {
        assert_string_equal(a->architectures[i], b->architectures[i]);
    }
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_int_equal(a->hidden_size, b->hidden_size);
    assert_int_equal(a->num_hidden_layers, b->num_hidden_layers);
    assert_int_equal(a->num_attention_heads, b->num_attention_heads);
    assert_int_equal(a->intermediate_size, b->intermediate_size);
    assert_string_equal(a->hidden_act, b->hidden_act);
    assert_true(a->hidden_dropout_prob == b->hidden_dropout_prob);
    assert_true(a->attention_probs_dropout_prob == b->attention_probs_dropout_prob);
    assert_int_equal(a->max_position_embeddings, b->max_position_embeddings);
    assert_int_equal(a->type_vocab_size, b->type_vocab_size);
    assert_true(a->initializer_range == b->initializer_range);
    assert_true(a->layer_norm_eps == b->layer_norm_eps);
    assert_int_equal(a->pad_token_id, b->pad_token_id);
    assert_int_equal(a->bos_token_id, b->bos_token_id);
    assert_int_equal(a->eos_token_id, b->eos_token_id);
    assert_string_equal(a->position_embedding_type, b->position_embedding_type);
    assert_true(a->classifier_dropout == b->classifier_dropout);
    assert_string_equal(a->transformers_version, b->transformers_version);
}

static void assert_bn_equal(const xa_bn_config *a, const xa_bn_config *b) {
    assert_int_equal(a->mh_adapter, b->mh_adapter);
    assert_int_equal(a->output_adapter, b->output_adapter);
    assert_true(a->reduction_factor == b->reduction_factor);
    assert_int_equal(a->has_reduction_factor_map, b->has_reduction_factor_map);
    for (int i = 0; i < XA_BN_MAX_LAYERS; i++) {
        assert_true(a->reduction_factor_map[i] == b->reduction_factor_map[i]);
    }
    assert_string_equal(a->non_linearity, b->non_linearity);
    assert_int_equal(a->original_ln_before, b->original_ln_before);
    assert_int_equal(a->original_ln_after, b->original_ln_after);
    assert_int_equal(a->residual_before_ln, b->residual_before_ln);
    assert_int_equal(a->adapter_residual_before_ln, b->adapter_residual_before_ln);
    assert_int_equal(a->ln_before, b->ln_before);
    assert_int_equal(a->ln_after, b->ln_after);
    assert_string_equal(a->init_weights, b->init_weights);
    assert_int_equal(a->has_init_weights_seed, b->has_init_weights_seed);
    assert_int_equal(a->init_weights_seed, b->init_weights_seed);
    assert_int_equal(a->is_parallel, b->is_parallel);
    assert_int_equal(a->scaling, b->scaling);
    assert_true(a->scaling_value == b->scaling_value);
    assert_int_equal(a->use_gating, b->use_gating);
    assert_int_equal(a->inv_adapter, b->inv_adapter);
    assert_true(a->inv_adapter_reduction_factor == b->inv_adapter_reduction_factor);
    assert_int_equal(a->cross_adapter, b->cross_adapter);
    assert_int_equal(a->n_leave_out, b->n_leave_out);
    for (int i = 0; i < a->n_leave_out; i++) assert_int_equal(a->leave_out[i], b->leave_out[i]);
    assert_true(a->dropout == b->dropout);
    assert_int_equal(a->phm_layer, b->phm_layer);
    assert_int_equal(a->phm_dim, b->phm_dim);
    assert_int_equal(a->factorized_phm_W, b->factorized_phm_W);
    assert_int_equal(a->shared_W_phm, b->shared_W_phm);
    assert_int_equal(a->shared_phm_rule, b->shared_phm_rule);
    assert_int_equal(a->factorized_phm_rule, b->factorized_phm_rule);
    assert_string_equal(a->phm_c_init, b->phm_c_init);
    assert_true(a->phm_init_range == b->phm_init_range);
    assert_int_equal(a->learn_phm, b->learn_phm);
    assert_string_equal(a->hypercomplex_nonlinearity, b->hypercomplex_nonlinearity);
    assert_int_equal(a->phm_rank, b->phm_rank);
    assert_int_equal(a->phm_bias, b->phm_bias);
    assert_true(a->stochastic_depth == b->stochastic_depth);
}

/* Parse a config.json text; expect status st and (if st != OK) an error mentioning needle. */
static void expect_hf(const char *json, xa_status st, const char *needle) {
    xa_hf_config c;
    xa_error_clear();
    xa_status got = xa_hf_config_parse(&c, json, strlen(json), "cfg.json");
    if (got != st) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("expected status %s, got %s for %s\n%s", xa_status_name(st), xa_status_name(got),
                 json, buf);
    }
    if (st != XA_STATUS_OK) {
        xt_assert_error_mentions("cfg.json");
        xt_assert_error_mentions(needle);
    }
}

#define HF_MIN(extra)                                                                              \
    "{\"model_type\": \"xlm-roberta\", \"vocab_size\": 1000, \"hidden_size\": 64, "                \
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128" extra "}"

static void expect_adapter(const char *json, xa_status st, const char *needle) {
    xa_adapter_file_config c;
    xa_error_clear();
    xa_status got = xa_adapter_config_parse(&c, json, strlen(json), "adapter_config.json");
    if (got != st) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fail_msg("expected status %s, got %s for %s\n%s", xa_status_name(st), xa_status_name(got),
                 json, buf);
    }
    if (st != XA_STATUS_OK) {
        xt_assert_error_mentions("adapter_config.json");
        xt_assert_error_mentions(needle);
    }
}

#define BN_REQ "\"mh_adapter\": false, \"output_adapter\": true, \"reduction_factor\": 16, "        \
               "\"non_linearity\": \"relu\""
#define ADAPTER(cfg) "{\"config\": {" BN_REQ cfg "}, \"version\": \"adapters.1.2.0\"}"

/* ---- config.json ------------------------------------------------------------------------------ */

static void test_hf_defaults_per_model_type(void **state) {
    (void)state;
    xa_hf_config c;
    assert_int_equal(xa_hf_config_default(&c, "xlm-roberta"), XA_STATUS_OK);
    assert_true(c.layer_norm_eps == 1e-5);
    assert_int_equal(c.pad_token_id, 1);
    assert_int_equal(c.bos_token_id, 0);
    assert_int_equal(c.eos_token_id, 2);
    assert_int_equal(c.max_position_embeddings, 514);
    assert_int_equal(c.type_vocab_size, 1);
    assert_int_equal(c.vocab_size, 250002);
    assert_string_equal(c.architectures[0], "XLMRobertaForMaskedLM");
    assert_int_equal(xa_hf_config_validate(&c, NULL), XA_STATUS_OK);
    assert_int_equal(xa_hf_config_default(&c, "bert"), XA_STATUS_OK);
    assert_true(c.layer_norm_eps == 1e-12);
    assert_int_equal(c.pad_token_id, 0);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.type_vocab_size, 2);
    assert_int_equal(c.max_position_embeddings, 512);
    assert_int_equal(xa_hf_config_default(&c, "roberta"), XA_STATUS_OK);
    assert_int_equal(c.vocab_size, 50265);
    assert_int_equal(xa_hf_config_default(&c, "gpt2"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("gpt2");
    xt_assert_error_mentions("xlm-roberta, roberta or bert");
}

/* The real xlm-roberta-base config.json: old keys (output_past) ignored, absent keys defaulted. */
static void test_hf_read_xlmr_base_fixture(void **state) {
    (void)state;
    xa_hf_config c;
    assert_int_equal(xa_hf_config_read(&c, xt_data_path("io/xlm-roberta-base.config.json")),
                     XA_STATUS_OK);
    assert_string_equal(c.model_type, "xlm-roberta");
    assert_int_equal(c.n_architectures, 1);
    assert_string_equal(c.architectures[0], "XLMRobertaForMaskedLM");
    assert_int_equal(c.vocab_size, 250002);
    assert_int_equal(c.hidden_size, 768);
    assert_int_equal(c.num_hidden_layers, 12);
    assert_int_equal(c.num_attention_heads, 12);
    assert_int_equal(c.intermediate_size, 3072);
    assert_string_equal(c.hidden_act, "gelu");
    assert_true(c.hidden_dropout_prob == 0.1);
    assert_true(c.attention_probs_dropout_prob == 0.1);
    assert_int_equal(c.max_position_embeddings, 514);
    assert_int_equal(c.type_vocab_size, 1);
    assert_true(c.initializer_range == 0.02);
    assert_true(c.layer_norm_eps == 1e-5);
    assert_int_equal(c.pad_token_id, 1);
    assert_int_equal(c.bos_token_id, 0);
    assert_int_equal(c.eos_token_id, 2);
    assert_string_equal(c.position_embedding_type, "absolute"); /* absent: default */
    assert_true(c.classifier_dropout < 0);                       /* absent: null */
}

static void test_hf_read_mbert_fixture(void **state) {
    (void)state;
    xa_hf_config c;
    assert_int_equal(
        xa_hf_config_read(&c, xt_data_path("io/bert-base-multilingual-cased.config.json")),
        XA_STATUS_OK);
    assert_string_equal(c.model_type, "bert");
    assert_int_equal(c.vocab_size, 119547);
    assert_true(c.layer_norm_eps == 1e-12);
    assert_int_equal(c.pad_token_id, 0);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.eos_token_id, -1);
    assert_int_equal(c.type_vocab_size, 2);
    assert_int_equal(c.max_position_embeddings, 512);
}

static void hf_roundtrip(const char *model_type, const char *file) {
    xa_hf_config c, back;
    assert_int_equal(xa_hf_config_default(&c, model_type), XA_STATUS_OK);
    c.vocab_size = 8002;
    c.hidden_size = 256;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.intermediate_size = 1024;
    c.hidden_dropout_prob = 0.05;
    c.classifier_dropout = 0.2;
    c.initializer_range = 0.015;
    c.n_architectures = 2;
    snprintf(c.architectures[1], sizeof c.architectures[1], "%s", "SomethingElse");
    const char *path = xt_tmp_path(file);
    assert_int_equal(xa_hf_config_write(&c, path), XA_STATUS_OK);
    assert_int_equal(xa_hf_config_read(&back, path), XA_STATUS_OK);
    assert_hf_equal(&c, &back);
    /* Nulls survive too. */
    c.classifier_dropout = -1;
    c.eos_token_id = -1;
    assert_int_equal(xa_hf_config_write(&c, path), XA_STATUS_OK);
    assert_int_equal(xa_hf_config_read(&back, path), XA_STATUS_OK);
    assert_hf_equal(&c, &back);
}

static void test_hf_roundtrip_xlmr(void **state) {
    (void)state;
    hf_roundtrip("xlm-roberta", "xlmr.config.json");
}

static void test_hf_roundtrip_bert(void **state) {
    (void)state;
    hf_roundtrip("bert", "bert.config.json");
}

/* What the writer emits looks like save_pretrained's output. */
static void test_hf_written_text(void **state) {
    (void)state;
    xa_hf_config c;
    assert_int_equal(xa_hf_config_default(&c, "xlm-roberta"), XA_STATUS_OK);
    const char *path = xt_tmp_path("text.config.json");
    assert_int_equal(xa_hf_config_write(&c, path), XA_STATUS_OK);
    size_t n;
    char *text = xt_read_file(path, &n);
    assert_non_null(text);
    static const char *const expect[] = {
        "{\n  \"architectures\": [\n    \"XLMRobertaForMaskedLM\"\n  ],\n",
        "\"layer_norm_eps\": 1e-5,", "\"model_type\": \"xlm-roberta\",",
        "\"hidden_dropout_prob\": 0.1,", "\"initializer_range\": 0.02,",
        "\"classifier_dropout\": null,", "\"transformers_version\": \"", "\"torch_dtype\": \"float32\"",
        "\"use_cache\": true", "\"bos_token_id\": 0,", "\"position_embedding_type\": \"absolute\"",
        "\"vocab_size\": 250002\n}\n"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
        if (!strstr(text, expect[i])) fail_msg("missing '%s' in:\n%s", expect[i], text);
    }
    /* Keys sorted, as json.dump(sort_keys=True) writes them. */
    assert_true(strstr(text, "\"attention_probs") < strstr(text, "\"bos_token_id"));
    assert_true(strstr(text, "\"type_vocab_size") < strstr(text, "\"use_cache"));
    free(text);
    /* BERT has no bos/eos: written as null (None for transformers). */
    assert_int_equal(xa_hf_config_default(&c, "bert"), XA_STATUS_OK);
    assert_int_equal(xa_hf_config_write(&c, path), XA_STATUS_OK);
    text = xt_read_file(path, &n);
    assert_non_null(strstr(text, "\"bos_token_id\": null,"));
    assert_non_null(strstr(text, "\"layer_norm_eps\": 1e-12,"));
    free(text);
    /* Values that come from float fields are written as the short decimal of that float. */
    c.layer_norm_eps = (double)1e-5f;
    c.initializer_range = (double)0.02f;
    c.hidden_dropout_prob = (double)0.1f;
    assert_int_equal(xa_hf_config_write(&c, path), XA_STATUS_OK);
    text = xt_read_file(path, &n);
    assert_non_null(strstr(text, "\"layer_norm_eps\": 1e-5,"));
    assert_non_null(strstr(text, "\"initializer_range\": 0.02,"));
    assert_non_null(strstr(text, "\"hidden_dropout_prob\": 0.1,"));
    free(text);
    xa_hf_config back;
    assert_int_equal(xa_hf_config_read(&back, path), XA_STATUS_OK);
    assert_true((float)back.layer_norm_eps == 1e-5f);
}

static void test_hf_validation_errors(void **state) {
    (void)state;
    expect_hf(HF_MIN(""), XA_STATUS_OK, NULL);
    expect_hf("{\"model_type\": \"xlm-roberta\", \"vocab_size\": 1000, \"hidden_size\": 66, "
              "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
              XA_STATUS_CONFIG, "not divisible by num_attention_heads (4)");
    xt_assert_error_mentions("66");
    xt_assert_error_mentions("key 'hidden_size'");
    expect_hf("{\"model_type\": \"bert\", \"vocab_size\": -3, \"hidden_size\": 64, "
              "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
              XA_STATUS_CONFIG, "'vocab_size' is -3");
    xt_assert_error_mentions("a positive integer");
    expect_hf(HF_MIN(", \"hidden_act\": \"geluu\""), XA_STATUS_CONFIG, "'geluu'");
    xt_assert_error_mentions("gelu_new"); /* the expected list */
    expect_hf(HF_MIN(", \"hidden_dropout_prob\": 1.5"), XA_STATUS_CONFIG, "hidden_dropout_prob");
    expect_hf(HF_MIN(", \"layer_norm_eps\": 0"), XA_STATUS_CONFIG, "layer_norm_eps");
    expect_hf(HF_MIN(", \"pad_token_id\": 1000"), XA_STATUS_CONFIG, "pad_token_id");
    expect_hf(HF_MIN(", \"position_embedding_type\": \"rotary\""), XA_STATUS_CONFIG, "rotary");
    expect_hf(HF_MIN(", \"classifier_dropout\": 0.3, \"pad_token_id\": null"), XA_STATUS_OK, NULL);
}

static void test_hf_type_and_structure_errors(void **state) {
    (void)state;
    expect_hf("{\"model_type\": \"xlm-roberta\", \"vocab_size\": 1000, \"hidden_size\": \"64\", "
              "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
              XA_STATUS_CONFIG, "'hidden_size' is a string");
    xt_assert_error_mentions("an integer");
    expect_hf("{\"model_type\": \"xlm-roberta\", \"vocab_size\": 1000, \"hidden_size\": 64, "
              "\"num_hidden_layers\": 2.5, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
              XA_STATUS_CONFIG, "'num_hidden_layers' is a real number");
    expect_hf("{\"model_type\": \"xlm-roberta\", \"vocab_size\": 1000}", XA_STATUS_CONFIG,
              "missing required key 'hidden_size'");
    expect_hf("{\"model_type\": \"gpt2\", \"vocab_size\": 1000, \"hidden_size\": 64, "
              "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
              XA_STATUS_UNSUPPORTED, "'gpt2'");
    expect_hf("{\"model_type\": \"bert\",\n \"vocab_size\": 10,,}", XA_STATUS_FORMAT, "cfg.json:2:");
    expect_hf("[1, 2]", XA_STATUS_FORMAT, "not an object");
    expect_hf(HF_MIN(", \"architectures\": \"XLMRobertaForMaskedLM\""), XA_STATUS_CONFIG,
              "architectures");
    /* Unknown keys are normal in HF files. */
    expect_hf(HF_MIN(", \"output_past\": true, \"gradient_checkpointing\": false"), XA_STATUS_OK,
              NULL);

    xa_hf_config c;
    assert_int_equal(xa_hf_config_read(&c, xt_tmp_path("absent/config.json")),
                     XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("absent/config.json");
    /* The writer validates too, and leaves nothing behind on failure. */
    assert_int_equal(xa_hf_config_default(&c, "bert"), XA_STATUS_OK);
    c.num_attention_heads = 5;
    const char *path = xt_tmp_path("invalid.config.json");
    assert_int_equal(xa_hf_config_write(&c, path), XA_STATUS_CONFIG);
    assert_null(xt_read_file(path, NULL));
}

/* ---- adapter_config.json ------------------------------------------------------------------------ */

static void test_bn_presets(void **state) {
    (void)state;
    xa_bn_config c;
    assert_int_equal(xa_bn_config_preset(&c, "seq_bn"), XA_STATUS_OK);
    assert_false(c.mh_adapter);
    assert_true(c.output_adapter);
    assert_true(c.original_ln_before);
    assert_true(c.original_ln_after);
    assert_int_equal(c.residual_before_ln, XA_BN_RESIDUAL_TRUE);
    assert_string_equal(c.non_linearity, "relu");
    assert_true(c.reduction_factor == 16);
    assert_int_equal(c.inv_adapter, XA_BN_INV_NONE);
    assert_int_equal(xa_bn_config_validate(&c, NULL), XA_STATUS_OK);

    xa_bn_config alias;
    assert_int_equal(xa_bn_config_preset(&alias, "pfeiffer"), XA_STATUS_OK);
    assert_bn_equal(&c, &alias);

    assert_int_equal(xa_bn_config_preset(&c, "seq_bn_inv"), XA_STATUS_OK);
    assert_int_equal(c.inv_adapter, XA_BN_INV_NICE);
    assert_true(c.inv_adapter_reduction_factor == 2);
    assert_int_equal(xa_bn_config_preset(&alias, "pfeiffer+inv"), XA_STATUS_OK);
    assert_bn_equal(&c, &alias);

    assert_int_equal(xa_bn_config_preset(&c, "double_seq_bn"), XA_STATUS_OK);
    assert_true(c.mh_adapter && c.output_adapter);
    assert_false(c.original_ln_before);
    assert_string_equal(c.non_linearity, "swish");
    assert_int_equal(xa_bn_config_preset(&alias, "houlsby"), XA_STATUS_OK);
    assert_bn_equal(&c, &alias);
    assert_int_equal(xa_bn_config_preset(&c, "double_seq_bn_inv"), XA_STATUS_OK);
    assert_int_equal(c.inv_adapter, XA_BN_INV_NICE);
    assert_true(c.mh_adapter);

    assert_int_equal(xa_bn_config_preset(&c, "par_bn"), XA_STATUS_OK);
    assert_true(c.is_parallel);
    assert_true(c.reduction_factor == 2);
    assert_int_equal(c.scaling, XA_BN_SCALING_CONSTANT);
    assert_true(c.scaling_value == 4.0);
    assert_string_equal(c.init_weights, "mam_adapter");
    assert_int_equal(xa_bn_config_preset(&c, "scaled_par_bn"), XA_STATUS_OK);
    assert_int_equal(c.scaling, XA_BN_SCALING_LEARNED);
    assert_true(c.is_parallel);

    assert_int_equal(xa_bn_config_preset(&c, "compacter"), XA_STATUS_OK);
    assert_true(c.phm_layer && c.mh_adapter);
    assert_true(c.reduction_factor == 32);
    assert_string_equal(c.non_linearity, "gelu");
    assert_int_equal(xa_bn_config_preset(&c, "compacter++"), XA_STATUS_OK);
    assert_true(c.phm_layer);
    assert_false(c.mh_adapter);
    assert_true(c.original_ln_before);

    assert_int_equal(xa_bn_config_preset(&c, "pfeifer"), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("'pfeifer'");
    xt_assert_error_mentions("seq_bn, pfeiffer, seq_bn_inv");
    xt_assert_error_mentions("compacter++");
    assert_int_equal(xa_bn_config_preset(&c, "lora"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("bottleneck");
}

static void test_bn_bottleneck_sizes(void **state) {
    (void)state;
    xa_bn_config c;
    assert_int_equal(xa_bn_config_preset(&c, "seq_bn"), XA_STATUS_OK);
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 0, 768), 48);
    c.reduction_factor = 2;
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 0, 768), 384);
    c.reduction_factor = 0.5; /* below 1: an up-projection */
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 0, 768), 1536);
    c.reduction_factor = 3.3; /* 768 // 3.3 = 232.0 in Python */
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 0, 768), 232);
    c.reduction_factor = 1000; /* at least 1 */
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 0, 768), 1);
    c.has_reduction_factor_map = 1;
    c.reduction_factor = 16;
    c.reduction_factor_map[3] = 8;
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 3, 768), 96);
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 4, 768), 48);
    c.reduction_factor = 0; /* a map without "default": layer 4 has no factor */
    assert_int_equal(xa_bn_config_bottleneck_size(&c, 4, 768), -1);
    c.n_leave_out = 1;
    c.leave_out[0] = 11;
    assert_true(xa_bn_config_leaves_out(&c, 11));
    assert_false(xa_bn_config_leaves_out(&c, 10));
}

/* MAD-X language adapter as adapters 1.x saves it. */
static void test_adapter_read_seq_bn_inv_fixture(void **state) {
    (void)state;
    xa_adapter_file_config a;
    assert_int_equal(xa_adapter_config_read(&a, xt_data_path("io/adapter_config.seq_bn_inv.json")),
                     XA_STATUS_OK);
    xa_bn_config want;
    assert_int_equal(xa_bn_config_preset(&want, "seq_bn_inv"), XA_STATUS_OK);
    want.reduction_factor = 2;
    want.n_leave_out = 1;
    want.leave_out[0] = 11;
    assert_bn_equal(&a.config, &want);
    assert_int_equal(a.hidden_size, 768);
    assert_string_equal(a.model_class, "XLMRobertaAdapterModel");
    assert_string_equal(a.model_name, "xlm-roberta-base");
    assert_string_equal(a.model_type, "xlm-roberta");
    assert_string_equal(a.name, "hi");
    assert_string_equal(a.version, "adapters.1.2.0");
    assert_string_equal(a.type, "");
    assert_int_equal(xa_bn_config_bottleneck_size(&a.config, 0, a.hidden_size), 384);
}

static void test_adapter_read_double_seq_bn_fixture(void **state) {
    (void)state;
    xa_adapter_file_config a;
    assert_int_equal(
        xa_adapter_config_read(&a, xt_data_path("io/adapter_config.double_seq_bn.json")),
        XA_STATUS_OK);
    const xa_bn_config *c = &a.config;
    assert_true(c->mh_adapter && c->output_adapter);
    assert_false(c->original_ln_before);
    assert_string_equal(c->non_linearity, "swish");
    assert_int_equal(c->inv_adapter, XA_BN_INV_NONE);
    assert_true(c->inv_adapter_reduction_factor == 0);
    assert_true(c->has_reduction_factor_map);
    assert_true(c->reduction_factor == 16);
    assert_true(xa_bn_config_reduction_factor(c, 0) == 8);
    assert_true(xa_bn_config_reduction_factor(c, 11) == 32);
    assert_true(xa_bn_config_reduction_factor(c, 5) == 16);
    assert_int_equal(xa_bn_config_bottleneck_size(c, 11, 768), 24);
    assert_string_equal(a.model_class, "BertAdapterModel");
    assert_string_equal(a.name, "wikiann_ner");
}

/* adapter-transformers v1: no version (gelu means gelu_new), nested invertible_adapter. */
static void test_adapter_read_legacy_v1_fixture(void **state) {
    (void)state;
    xa_adapter_file_config a;
    assert_int_equal(xa_adapter_config_read(&a, xt_data_path("io/adapter_config.legacy_v1.json")),
                     XA_STATUS_OK);
    const xa_bn_config *c = &a.config;
    assert_string_equal(c->non_linearity, "gelu_new");
    assert_int_equal(c->inv_adapter, XA_BN_INV_NICE);
    assert_true(c->inv_adapter_reduction_factor == 2);
    assert_true(c->reduction_factor == 2);
    assert_true(c->original_ln_before);
    /* BnConfig defaults for keys v1 did not have. */
    assert_string_equal(c->init_weights, "bert");
    assert_true(c->scaling_value == 1.0);
    assert_true(c->phm_dim == 4);
    assert_string_equal(a.version, "");
    assert_string_equal(a.type, "text_lang");
    assert_string_equal(a.model_class, "XLMRobertaModelWithHeads");
}

static void test_adapter_read_legacy_preset_string(void **state) {
    (void)state;
    xa_adapter_file_config a;
    assert_int_equal(
        xa_adapter_config_read(&a, xt_data_path("io/adapter_config.legacy_preset.json")),
        XA_STATUS_OK);
    xa_bn_config want;
    assert_int_equal(xa_bn_config_preset(&want, "pfeiffer"), XA_STATUS_OK);
    assert_bn_equal(&a.config, &want);
    assert_string_equal(a.name, "sst-2");
    assert_string_equal(a.model_class, "");
    assert_string_equal(a.type, "text_task");
    expect_adapter("{\"config\": \"pfeifer\"}", XA_STATUS_NOT_FOUND, "pfeifer");
}

/* The gelu rename only applies to files without "version". */
static void test_adapter_gelu_rename_is_legacy_only(void **state) {
    (void)state;
    xa_adapter_file_config a;
    const char *v = "{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                    "\"reduction_factor\": 16, \"non_linearity\": \"GELU\"}, \"version\": \"3.2.1\"}";
    assert_int_equal(xa_adapter_config_parse(&a, v, strlen(v), "a.json"), XA_STATUS_OK);
    assert_string_equal(a.config.non_linearity, "gelu"); /* lowercased, not renamed */
    const char *l = "{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                    "\"reduction_factor\": 16, \"non_linearity\": \"gelu_orig\"}}";
    assert_int_equal(xa_adapter_config_parse(&a, l, strlen(l), "a.json"), XA_STATUS_OK);
    assert_string_equal(a.config.non_linearity, "gelu");
}

static void test_adapter_unknown_key(void **state) {
    (void)state;
    expect_adapter(ADAPTER(", \"reduction_factr\": 8"), XA_STATUS_CONFIG, "reduction_factr");
    xt_assert_error_mentions("did you mean 'reduction_factor'?");
    expect_adapter(ADAPTER(", \"selfattn_lora\": true"), XA_STATUS_CONFIG, "selfattn_lora");
    xt_assert_error_mentions("LoRA");
    expect_adapter(ADAPTER(", \"frobnicate\": 1"), XA_STATUS_CONFIG, "'frobnicate'");
    /* Unknown top-level keys are AdapterHub meta entries: ignored. */
    expect_adapter("{\"config\": {" BN_REQ "}, \"config_id\": \"abc\", \"prediction_head\": 1}",
                   XA_STATUS_OK, NULL);
}

static void test_adapter_lora_is_unsupported(void **state) {
    (void)state;
    expect_adapter("{\"config\": {\"architecture\": \"lora\", \"r\": 8, \"alpha\": 8, "
                   "\"selfattn_lora\": true}, \"version\": \"adapters.1.2.0\"}",
                   XA_STATUS_UNSUPPORTED, "lora adapters are not supported");
    expect_adapter("{\"config\": {\"architecture\": \"prefix_tuning\"}}", XA_STATUS_UNSUPPORTED,
                   "prefix_tuning");
    expect_adapter("{\"config\": \"lora\"}", XA_STATUS_UNSUPPORTED, "lora");
    /* An explicit bottleneck architecture is fine. */
    expect_adapter(ADAPTER(", \"architecture\": \"bottleneck\""), XA_STATUS_OK, NULL);
}

static void test_adapter_value_errors(void **state) {
    (void)state;
    expect_adapter("{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                   "\"non_linearity\": \"relu\"}}",
                   XA_STATUS_CONFIG, "missing required key 'reduction_factor'");
    expect_adapter("{\"config\": {\"mh_adapter\": \"no\", \"output_adapter\": true, "
                   "\"reduction_factor\": 16, \"non_linearity\": \"relu\"}}",
                   XA_STATUS_CONFIG, "config.mh_adapter");
    xt_assert_error_mentions("true or false");
    expect_adapter(ADAPTER(", \"residual_before_ln\": \"post_add\""), XA_STATUS_CONFIG,
                   "original_ln_before");
    expect_adapter(ADAPTER(", \"residual_before_ln\": \"post_add\", \"original_ln_before\": true"),
                   XA_STATUS_OK, NULL);
    expect_adapter(ADAPTER(", \"scaling\": \"dynamic\""), XA_STATUS_CONFIG, "\"learned\"");
    expect_adapter(ADAPTER(", \"inv_adapter\": \"nice\""), XA_STATUS_CONFIG,
                   "inv_adapter_reduction_factor");
    expect_adapter(ADAPTER(", \"leave_out\": [0, -1]"), XA_STATUS_CONFIG, "leave_out");
    expect_adapter(ADAPTER(", \"dropout\": 1.0"), XA_STATUS_CONFIG, "dropout");
    expect_adapter(ADAPTER(", \"init_weights\": \"xavier\""), XA_STATUS_CONFIG, "xavier");
    expect_adapter("{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                   "\"reduction_factor\": {\"0\": 4, \"last\": 2}, \"non_linearity\": \"relu\"}}",
                   XA_STATUS_CONFIG, "'last'");
    expect_adapter("{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                   "\"reduction_factor\": {}, \"non_linearity\": \"relu\"}}",
                   XA_STATUS_CONFIG, "map is empty");
    expect_adapter("{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                   "\"reduction_factor\": -2, \"non_linearity\": \"relu\"}}",
                   XA_STATUS_CONFIG, "reduction_factor");
    expect_adapter(ADAPTER(", \"non_linearity\": \"softplus\""), XA_STATUS_FORMAT, "duplicate");
    expect_adapter("{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
                   "\"reduction_factor\": 16, \"non_linearity\": \"softplus\"}}",
                   XA_STATUS_CONFIG, "softplus");
    expect_adapter("{\"hidden_size\": 768}", XA_STATUS_CONFIG, "missing key 'config'");
    expect_adapter("{\"config\": 3}", XA_STATUS_CONFIG, "config");
    expect_adapter("{\"config\": {", XA_STATUS_FORMAT, "adapter_config.json:1:");
}

static void adapter_roundtrip(const xa_adapter_file_config *a, const char *file) {
    const char *path = xt_tmp_path(file);
    assert_int_equal(xa_adapter_config_write(a, path), XA_STATUS_OK);
    xa_adapter_file_config back;
    assert_int_equal(xa_adapter_config_read(&back, path), XA_STATUS_OK);
    assert_bn_equal(&a->config, &back.config);
    assert_int_equal(back.hidden_size, a->hidden_size);
    assert_string_equal(back.model_class, a->model_class);
    assert_string_equal(back.model_name, a->model_name);
    assert_string_equal(back.model_type, a->model_type);
    assert_string_equal(back.name, a->name);
    assert_string_equal(back.version, a->version[0] ? a->version : XA_ADAPTERS_VERSION);
    assert_string_equal(back.type, a->type);
}

static void test_adapter_write_read_roundtrip(void **state) {
    (void)state;
    xa_adapter_file_config a;
    memset(&a, 0, sizeof a);
    assert_int_equal(xa_bn_config_preset(&a.config, "seq_bn_inv"), XA_STATUS_OK);
    a.hidden_size = 768;
    snprintf(a.model_class, sizeof a.model_class, "XLMRobertaAdapterModel");
    snprintf(a.model_name, sizeof a.model_name, "xlm-roberta-base");
    snprintf(a.model_type, sizeof a.model_type, "xlm-roberta");
    snprintf(a.name, sizeof a.name, "de");
    adapter_roundtrip(&a, "rt1.adapter_config.json");

    /* Every special form: map, post_add, learned scaling, seed, leave_out, odd floats. */
    xa_bn_config *c = &a.config;
    c->has_reduction_factor_map = 1;
    c->reduction_factor = 12.5;
    c->reduction_factor_map[0] = 4;
    c->reduction_factor_map[11] = 0.75;
    c->residual_before_ln = XA_BN_RESIDUAL_POST_ADD;
    c->scaling = XA_BN_SCALING_CHANNEL;
    c->has_init_weights_seed = 1;
    c->init_weights_seed = 42;
    c->n_leave_out = 2;
    c->leave_out[0] = 11;
    c->leave_out[1] = 3;
    c->dropout = 0.1;
    c->stochastic_depth = 0.05;
    c->inv_adapter = XA_BN_INV_NONE;
    c->phm_layer = 1;
    c->phm_init_range = 3e-5;
    snprintf(c->non_linearity, sizeof c->non_linearity, "gelu");
    snprintf(a.type, sizeof a.type, "text_lang");
    snprintf(a.version, sizeof a.version, "adapters.1.1.0");
    adapter_roundtrip(&a, "rt2.adapter_config.json");

    /* A map without "default" and a constant scaling. */
    c->reduction_factor = 0;
    c->scaling = XA_BN_SCALING_CONSTANT;
    c->scaling_value = 0.5;
    c->has_init_weights_seed = 0;
    c->init_weights_seed = 0;
    a.model_name[0] = '\0';
    adapter_roundtrip(&a, "rt3.adapter_config.json");
}

/* The written file has every BnConfig key, in AdapterHub's spelling, and its metadata. */
static void test_adapter_written_text(void **state) {
    (void)state;
    xa_adapter_file_config a;
    memset(&a, 0, sizeof a);
    assert_int_equal(xa_bn_config_preset(&a.config, "seq_bn_inv"), XA_STATUS_OK);
    a.config.reduction_factor = 2;
    a.hidden_size = 768;
    snprintf(a.name, sizeof a.name, "hi");
    const char *path = xt_tmp_path("text.adapter_config.json");
    assert_int_equal(xa_adapter_config_write(&a, path), XA_STATUS_OK);
    char *text = xt_read_file(path, NULL);
    assert_non_null(text);
    static const char *const keys[] = {
        "adapter_residual_before_ln", "cross_adapter", "dropout", "factorized_phm_W",
        "factorized_phm_rule", "hypercomplex_nonlinearity", "init_weights", "init_weights_seed",
        "inv_adapter", "inv_adapter_reduction_factor", "is_parallel", "learn_phm", "leave_out",
        "ln_after", "ln_before", "mh_adapter", "non_linearity", "original_ln_after",
        "original_ln_before", "output_adapter", "phm_bias", "phm_c_init", "phm_dim",
        "phm_init_range", "phm_layer", "phm_rank", "reduction_factor", "residual_before_ln",
        "scaling", "shared_W_phm", "shared_phm_rule", "stochastic_depth", "use_gating"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\": ", keys[i]);
        if (!strstr(text, quoted)) fail_msg("missing key %s in:\n%s", keys[i], text);
    }
    static const char *const expect[] = {
        "\"inv_adapter\": \"nice\",", "\"inv_adapter_reduction_factor\": 2,",
        "\"reduction_factor\": 2,", "\"scaling\": 1.0,", "\"dropout\": 0.0,",
        "\"phm_init_range\": 0.0001,", "\"init_weights_seed\": null,", "\"leave_out\": [],",
        "\"residual_before_ln\": true,", "\"hidden_size\": 768,", "\"model_name\": null,",
        "\"version\": \"adapters.1.2.0\"\n}\n", "{\n  \"config\": {\n"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
        if (!strstr(text, expect[i])) fail_msg("missing '%s' in:\n%s", expect[i], text);
    }
    assert_null(strstr(text, "architecture"));
    assert_null(strstr(text, "\"type\""));
    free(text);
    /* Invalid configs are not written. */
    a.config.dropout = 2;
    assert_int_equal(xa_adapter_config_write(&a, xt_tmp_path("bad.adapter_config.json")),
                     XA_STATUS_CONFIG);
    xt_assert_error_mentions("dropout");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_defaults_per_model_type),
        cmocka_unit_test(test_hf_read_xlmr_base_fixture),
        cmocka_unit_test(test_hf_read_mbert_fixture),
        cmocka_unit_test(test_hf_roundtrip_xlmr),
        cmocka_unit_test(test_hf_roundtrip_bert),
        cmocka_unit_test(test_hf_written_text),
        cmocka_unit_test(test_hf_validation_errors),
        cmocka_unit_test(test_hf_type_and_structure_errors),
        cmocka_unit_test(test_bn_presets),
        cmocka_unit_test(test_bn_bottleneck_sizes),
        cmocka_unit_test(test_adapter_read_seq_bn_inv_fixture),
        cmocka_unit_test(test_adapter_read_double_seq_bn_fixture),
        cmocka_unit_test(test_adapter_read_legacy_v1_fixture),
        cmocka_unit_test(test_adapter_read_legacy_preset_string),
        cmocka_unit_test(test_adapter_gelu_rename_is_legacy_only),
        cmocka_unit_test(test_adapter_unknown_key),
        cmocka_unit_test(test_adapter_lora_is_unsupported),
        cmocka_unit_test(test_adapter_value_errors),
        cmocka_unit_test(test_adapter_write_read_roundtrip),
        cmocka_unit_test(test_adapter_written_text),
    };
    return cmocka_run_group_tests_name("hfjson", tests, NULL, NULL);
}
