/* io/hfjson: Hugging Face config.json and AdapterHub adapter_config.json <-> plain structs.
 *
 * Implements:
 *  - config.json for BERT / RoBERTa / XLM-R (transformers' BertConfig / RobertaConfig /
 *    XLMRobertaConfig keys), with per-type defaults from ADAPTERHUB.md §1.11 for absent optional
 *    keys, value validation, and a writer in save_pretrained's layout (sorted keys, indent 2).
 *  - adapter_config.json of AdapterHub `adapters` (ADAPTERHUB.md §1.10): every BnConfig flag of
 *    §1.2, the presets of §1.3, the legacy forms (preset string as config, nested
 *    "invertible_adapter", the gelu -> gelu_new rename when "version" is absent), and a writer that
 *    produces what AdapterHub's save_adapter writes.
 * Both sides are table-driven: one table of keys per struct, shared by the reader and the writer,
 * so a key cannot be read and forgotten on write.
 *
 * Does not: keep unknown config.json keys (they are ignored), read non-bottleneck adapter configs
 * (LoRA, prefix tuning, unions: UNSUPPORTED), parse "seq_bn[reduction_factor=2]" config strings,
 * or compute AdapterHub's config_id hash.
 */
#include "io/hfjson.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/jsonutil.h"

/* ---- shared helpers ------------------------------------------------------------------------------ */


static void set_str(char *dst, size_t cap, const char *s) {
    snprintf(dst, cap, "%s", s);
}

static void lowercase(char *s) {
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++) {
        if (strcmp(s, *list) == 0) return 1;
    }
    return 0;
}

static void join_list(char *buf, size_t n, const char *const *list) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; list[i] && len < n; i++) {
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", list[i]);
    }
}

/* A JSON number for a double: integral values as integers (Python writes 16, not 16.0, for the
 * int defaults of AdapterHub's configs), others as reals. */
static json_t *json_num_int_if_integral(double v) {
    if (v == floor(v) && fabs(v) < 1e15) return json_integer((json_int_t)v);
    return xa_io_json_real(v);
}

/* ---- table-driven fields --------------------------------------------------------------------------- */

typedef enum field_kind {
    F_BOOL,     /* int, JSON true/false */
    F_INT,      /* int64_t, JSON integer */
    F_INT_NULL, /* int64_t, JSON integer or null (-1) */
    F_REAL,     /* double, JSON number */
    F_REAL_NULL,/* double, JSON number or null (-1) */
    F_STR,      /* char[len], JSON string */
    F_SPECIAL,  /* handled by hand */
} field_kind;

typedef struct field {
    const char *key;
    field_kind kind;
    size_t offset;
    size_t len; /* F_STR: capacity of the char array */
} field;

#define FIELD(T, kind, member) {#member, kind, offsetof(T, member), sizeof(((T *)0)->member)}

static xa_status read_field(void *obj, const field *fd, const json_t *v, const char *file,
                            const char *prefix) {
    char *p = (char *)obj + fd->offset;
    switch (fd->kind) {
    case F_BOOL:
        if (!json_is_boolean(v))
            return xa_io_json_type_error(file, prefix, fd->key, v, "true or false");
        *(int *)p = json_is_true(v);
        return XA_STATUS_OK;
    case F_INT_NULL:
        if (json_is_null(v)) {
            *(int64_t *)p = -1;
            return XA_STATUS_OK;
        }
        /* fall through */
    case F_INT:
        if (!json_is_integer(v)) {
            return xa_io_json_type_error(file, prefix, fd->key, v,
                                         fd->kind == F_INT ? "an integer" : "an integer or null");
        }
        *(int64_t *)p = (int64_t)json_integer_value(v);
        return XA_STATUS_OK;
    case F_REAL_NULL:
        if (json_is_null(v)) {
            *(double *)p = -1.0;
            return XA_STATUS_OK;
        }
        /* fall through */
    case F_REAL:
        if (!json_is_number(v)) {
            return xa_io_json_type_error(file, prefix, fd->key, v,
                                         fd->kind == F_REAL ? "a number" : "a number or null");
        }
        *(double *)p = json_number_value(v);
        return XA_STATUS_OK;
    case F_STR: return xa_io_json_copy_str(p, fd->len, file, prefix, fd->key, v);
    case F_SPECIAL:
        break;
    }
    XA_ASSERT(0);
    return XA_STATUS_RUNTIME;
}

/* Add obj's field to a JSON object. Returns 0 on success. */
static int write_field(json_t *out, const void *obj, const field *fd) {
    const char *p = (const char *)obj + fd->offset;
    json_t *v = NULL;
    switch (fd->kind) {
    case F_BOOL: v = json_boolean(*(const int *)p); break;
    case F_INT: v = json_integer((json_int_t) * (const int64_t *)p); break;
    case F_INT_NULL: {
        int64_t x = *(const int64_t *)p;
        /* null, not omitted: an absent id would read back as the model type's default */
        v = x < 0 ? json_null() : json_integer((json_int_t)x);
        break;
    }
    case F_REAL: v = xa_io_json_real(*(const double *)p); break;
    case F_REAL_NULL: {
        double x = *(const double *)p;
        v = x < 0 ? json_null() : xa_io_json_real(x);
        break;
    }
    case F_STR: v = json_string(p); break;
    case F_SPECIAL: return 0;
    }
    return json_object_set_new(out, fd->key, v);
}

/* ==== Hugging Face config.json ========================================================================= */

static const field g_hf_fields[] = {
    FIELD(xa_hf_config, F_STR, model_type),
    {"architectures", F_SPECIAL, 0, 0},
    FIELD(xa_hf_config, F_INT, vocab_size),
    FIELD(xa_hf_config, F_INT, hidden_size),
    FIELD(xa_hf_config, F_INT, num_hidden_layers),
    FIELD(xa_hf_config, F_INT, num_attention_heads),
    FIELD(xa_hf_config, F_INT, intermediate_size),
    FIELD(xa_hf_config, F_STR, hidden_act),
    FIELD(xa_hf_config, F_REAL, hidden_dropout_prob),
    FIELD(xa_hf_config, F_REAL, attention_probs_dropout_prob),
    FIELD(xa_hf_config, F_INT, max_position_embeddings),
    FIELD(xa_hf_config, F_INT, type_vocab_size),
    FIELD(xa_hf_config, F_REAL, initializer_range),
    FIELD(xa_hf_config, F_REAL, layer_norm_eps),
    FIELD(xa_hf_config, F_INT_NULL, pad_token_id),
    FIELD(xa_hf_config, F_INT_NULL, bos_token_id),
    FIELD(xa_hf_config, F_INT_NULL, eos_token_id),
    FIELD(xa_hf_config, F_STR, position_embedding_type),
    FIELD(xa_hf_config, F_REAL_NULL, classifier_dropout),
    FIELD(xa_hf_config, F_STR, transformers_version),
};
#define N_HF_FIELDS (sizeof g_hf_fields / sizeof *g_hf_fields)

static const char *const g_hf_model_types[] = {"xlm-roberta", "roberta", "bert", NULL};

/* transformers' ACT2FN names (activations.py). The model module decides which ones it runs. */
static const char *const g_hf_acts[] = {
    "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "gelu_accurate",
    "gelu_10", "quick_gelu", "relu", "relu6", "relu2", "leaky_relu", "silu", "swish", "tanh",
    "sigmoid", "mish", "linear", "laplace", NULL};

static const char *const g_hf_pos_types[] = {"absolute", "relative_key", "relative_key_query",
                                             NULL};

/* Written by xa_hf_config_write when the struct holds no version (a transformers release that
 * reads and writes every key used here; from_pretrained only logs the value). */
#define XA_HF_TRANSFORMERS_VERSION "4.30.2"

xa_status xa_hf_config_default(xa_hf_config *cfg, const char *model_type) {
    memset(cfg, 0, sizeof *cfg);
    const char *t = model_type ? model_type : "";
    int xlmr = strcmp(t, "xlm-roberta") == 0, roberta = strcmp(t, "roberta") == 0;
    int bert = strcmp(t, "bert") == 0;
    if (!xlmr && !roberta && !bert) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, "xa_hf_config_default",
                            "xlm-roberta, roberta or bert", NULL, "unsupported model_type '%s'", t);
    }
    set_str(cfg->model_type, sizeof cfg->model_type, t);
    cfg->n_architectures = 1;
    set_str(cfg->architectures[0], sizeof cfg->architectures[0],
            xlmr ? "XLMRobertaForMaskedLM" : roberta ? "RobertaForMaskedLM" : "BertForMaskedLM");
    /* Base-size encoders (xlm-roberta-base, roberta-base, bert-base-uncased). */
    cfg->vocab_size = xlmr ? 250002 : roberta ? 50265 : 30522;
    cfg->hidden_size = 768;
    cfg->num_hidden_layers = 12;
    cfg->num_attention_heads = 12;
    cfg->intermediate_size = 3072;
    set_str(cfg->hidden_act, sizeof cfg->hidden_act, "gelu");
    cfg->hidden_dropout_prob = 0.1;
    cfg->attention_probs_dropout_prob = 0.1;
    cfg->initializer_range = 0.02;
    cfg->classifier_dropout = -1.0;
    set_str(cfg->position_embedding_type, sizeof cfg->position_embedding_type, "absolute");
    set_str(cfg->transformers_version, sizeof cfg->transformers_version,
            XA_HF_TRANSFORMERS_VERSION);
    if (bert) {
        cfg->max_position_embeddings = 512;
        cfg->type_vocab_size = 2;
        cfg->layer_norm_eps = 1e-12;
        cfg->pad_token_id = 0;
        cfg->bos_token_id = -1;
        cfg->eos_token_id = -1;
    } else {
        /* RoBERTa family: positions start at pad + 1 = 2, so 512 usable need 514. */
        cfg->max_position_embeddings = 514;
        cfg->type_vocab_size = 1;
        cfg->layer_norm_eps = 1e-5;
        cfg->pad_token_id = 1;
        cfg->bos_token_id = 0;
        cfg->eos_token_id = 2;
    }
    return XA_STATUS_OK;
}

xa_status xa_hf_config_validate(const xa_hf_config *c, const char *name) {
    const char *file = name ? name : "config.json";
    char where[XA_ERROR_FIELD], list[XA_ERROR_FIELD];
    if (!in_list(c->model_type, g_hf_model_types)) {
        return xa_error_set(
            XA_STATUS_UNSUPPORTED, xa_io_json_kwhere(where, sizeof where, file, "", "model_type"),
            "xlm-roberta, roberta or bert", "xadapt runs post-LN BERT-family encoders",
            "model_type '%s' is not supported", c->model_type);
    }
    const struct {
        const char *key;
        int64_t v;
        int64_t min;
    } ints[] = {
        {"vocab_size", c->vocab_size, 1},
        {"hidden_size", c->hidden_size, 1},
        {"num_hidden_layers", c->num_hidden_layers, 1},
        {"num_attention_heads", c->num_attention_heads, 1},
        {"intermediate_size", c->intermediate_size, 1},
        {"max_position_embeddings", c->max_position_embeddings, 1},
        {"type_vocab_size", c->type_vocab_size, 1},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        if (ints[i].v < ints[i].min) {
            return xa_error_set(
                XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "", ints[i].key),
                "a positive integer", NULL, "'%s' is %lld", ints[i].key, (long long)ints[i].v);
        }
    }
    if (c->hidden_size % c->num_attention_heads != 0) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "", "hidden_size"),
                            "a multiple of num_attention_heads", NULL,
                            "'hidden_size' is %lld, not divisible by num_attention_heads (%lld)",
                            (long long)c->hidden_size, (long long)c->num_attention_heads);
    }
    const struct {
        const char *key;
        double v;
    } probs[] = {
        {"hidden_dropout_prob", c->hidden_dropout_prob},
        {"attention_probs_dropout_prob", c->attention_probs_dropout_prob},
    };
    for (size_t i = 0; i < 2; i++) {
        if (!(probs[i].v >= 0.0 && probs[i].v < 1.0)) {
            return xa_error_set(
                XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "", probs[i].key),
                "a probability in [0, 1)", NULL, "'%s' is %g", probs[i].key, probs[i].v);
        }
    }
    if (c->classifier_dropout >= 1.0 || isnan(c->classifier_dropout)) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "", "classifier_dropout"),
                            "null or a probability in [0, 1)", NULL, "'classifier_dropout' is %g",
                            c->classifier_dropout);
    }
    if (!(c->initializer_range > 0.0) || !isfinite(c->initializer_range)) {
        return xa_error_set(
            XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "", "initializer_range"),
            "a positive number", NULL, "'initializer_range' is %g", c->initializer_range);
    }
    if (!(c->layer_norm_eps > 0.0) || !(c->layer_norm_eps < 1.0)) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "", "layer_norm_eps"),
                            "a small positive number (1e-5 for XLM-R, 1e-12 for BERT)", NULL,
                            "'layer_norm_eps' is %g", c->layer_norm_eps);
    }
    const struct {
        const char *key;
        int64_t v;
    } ids[] = {{"pad_token_id", c->pad_token_id},
               {"bos_token_id", c->bos_token_id},
               {"eos_token_id", c->eos_token_id}};
    for (size_t i = 0; i < 3; i++) {
        if (ids[i].v < -1 || ids[i].v >= c->vocab_size) {
            return xa_error_set(
                XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "", ids[i].key),
                "null or an id in [0, vocab_size)", NULL, "'%s' is %lld with vocab_size %lld",
                ids[i].key, (long long)ids[i].v, (long long)c->vocab_size);
        }
    }
    if (!in_list(c->hidden_act, g_hf_acts)) {
        join_list(list, sizeof list, g_hf_acts);
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "", "hidden_act"), list,
                            NULL, "'hidden_act' is '%s', not a known activation", c->hidden_act);
    }
    if (!in_list(c->position_embedding_type, g_hf_pos_types)) {
        join_list(list, sizeof list, g_hf_pos_types);
        return xa_error_set(
            XA_STATUS_CONFIG,
            xa_io_json_kwhere(where, sizeof where, file, "", "position_embedding_type"), list, NULL,
            "'position_embedding_type' is '%s'", c->position_embedding_type);
    }
    if (c->n_architectures < 0 || c->n_architectures > XA_HF_MAX_ARCHS) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "", "architectures"),
                            "at most 4 entries", NULL, "n_architectures is %d", c->n_architectures);
    }
    return XA_STATUS_OK;
}

static xa_status hf_read_architectures(xa_hf_config *cfg, const json_t *v, const char *file) {
    cfg->n_architectures = 0;
    if (json_is_null(v)) return XA_STATUS_OK;
    if (!json_is_array(v))
        return xa_io_json_type_error(file, "", "architectures", v, "an array of strings");
    if (json_array_size(v) > XA_HF_MAX_ARCHS) {
        char where[XA_ERROR_FIELD];
        return xa_error_set(
            XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "", "architectures"),
            "at most 4 entries", NULL, "'architectures' has %zu entries", json_array_size(v));
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        xa_status st = xa_io_json_copy_str(cfg->architectures[i], sizeof cfg->architectures[i],
                                           file, "", "architectures[]", json_array_get(v, i));
        if (st) return st;
        cfg->n_architectures++;
    }
    return XA_STATUS_OK;
}

/* Read a loaded config.json into dst, an xa_hf_config (zeroed). */
static xa_status hf_read_root(void *dst, const json_t *root, const char *file) {
    xa_hf_config *cfg = dst;
    static const char *const required[] = {"model_type", "vocab_size", "hidden_size",
                                           "num_hidden_layers", "num_attention_heads",
                                           "intermediate_size"};
    char where[XA_ERROR_FIELD];
    xa_status st;
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (!json_object_get(root, required[i])) {
            return xa_error_set(XA_STATUS_CONFIG,
                                xa_io_json_kwhere(where, sizeof where, file, "", required[i]), NULL,
                                "is this a Hugging Face config.json of a BERT/XLM-R model?",
                                "missing required key '%s'", required[i]);
        }
    }
    const json_t *jtype = json_object_get(root, "model_type");
    if (!json_is_string(jtype)) {
        return xa_io_json_type_error(file, "", "model_type", jtype, "a string");
    }
    if ((st = xa_hf_config_default(cfg, json_string_value(jtype)))) {
        return xa_error_set(st, xa_io_json_kwhere(where, sizeof where, file, "", "model_type"),
                            "xlm-roberta, roberta or bert",
                            "xadapt runs post-LN BERT-family encoders",
                            "model_type '%s' is not supported", json_string_value(jtype));
    }
    for (size_t i = 0; i < N_HF_FIELDS; i++) {
        const json_t *v = json_object_get(root, g_hf_fields[i].key);
        if (!v) continue;
        if (g_hf_fields[i].kind == F_SPECIAL) {
            st = hf_read_architectures(cfg, v, file);
        } else {
            st = read_field(cfg, &g_hf_fields[i], v, file, "");
        }
        if (st) return st;
    }
    return xa_hf_config_validate(cfg, file);
}

xa_status xa_hf_config_parse(xa_hf_config *cfg, const char *json, size_t n, const char *name) {
    return xa_io_json_parse_object(cfg, sizeof *cfg, json, n, name ? name : "config.json",
                                   hf_read_root);
}

xa_status xa_hf_config_read(xa_hf_config *cfg, const char *path) {
    return xa_io_json_read_file(cfg, sizeof *cfg, path, hf_read_root);
}

xa_status xa_hf_config_write(const xa_hf_config *cfg, const char *path) {
    xa_status st = xa_hf_config_validate(cfg, path);
    if (st) return st;
    json_t *root = json_object();
    json_t *archs = json_array();
    int bad = !root || !archs;
    for (int i = 0; !bad && i < cfg->n_architectures; i++) {
        bad = json_array_append_new(archs, json_string(cfg->architectures[i])) != 0;
    }
    bad = bad || json_object_set(root, "architectures", archs) != 0;
    for (size_t i = 0; !bad && i < N_HF_FIELDS; i++) {
        const field *fd = &g_hf_fields[i];
        if (fd->kind == F_SPECIAL) continue;
        if (strcmp(fd->key, "transformers_version") == 0 && !cfg->transformers_version[0]) {
            bad = json_object_set_new(root, fd->key, json_string(XA_HF_TRANSFORMERS_VERSION)) != 0;
            continue;
        }
        bad = write_field(root, cfg, fd) != 0;
    }
    /* Keys every save_pretrained writes for these classes. */
    bad = bad || json_object_set_new(root, "torch_dtype", json_string("float32")) != 0 ||
          json_object_set_new(root, "use_cache", json_true()) != 0;
    json_decref(archs);
    return xa_io_json_write_root(root, bad, path,
                                 "cannot build config.json (out of memory or invalid string)");
}

/* ==== AdapterHub adapter_config.json ==================================================================== */

static const field g_bn_fields[] = {
    FIELD(xa_bn_config, F_BOOL, mh_adapter),
    FIELD(xa_bn_config, F_BOOL, output_adapter),
    {"reduction_factor", F_SPECIAL, 0, 0},
    FIELD(xa_bn_config, F_STR, non_linearity),
    FIELD(xa_bn_config, F_BOOL, original_ln_before),
    FIELD(xa_bn_config, F_BOOL, original_ln_after),
    {"residual_before_ln", F_SPECIAL, 0, 0},
    FIELD(xa_bn_config, F_BOOL, adapter_residual_before_ln),
    FIELD(xa_bn_config, F_BOOL, ln_before),
    FIELD(xa_bn_config, F_BOOL, ln_after),
    FIELD(xa_bn_config, F_STR, init_weights),
    {"init_weights_seed", F_SPECIAL, 0, 0},
    FIELD(xa_bn_config, F_BOOL, is_parallel),
    {"scaling", F_SPECIAL, 0, 0},
    FIELD(xa_bn_config, F_BOOL, use_gating),
    {"inv_adapter", F_SPECIAL, 0, 0},
    {"inv_adapter_reduction_factor", F_SPECIAL, 0, 0},
    FIELD(xa_bn_config, F_BOOL, cross_adapter),
    {"leave_out", F_SPECIAL, 0, 0},
    FIELD(xa_bn_config, F_REAL, dropout),
    FIELD(xa_bn_config, F_BOOL, phm_layer),
    FIELD(xa_bn_config, F_INT, phm_dim),
    FIELD(xa_bn_config, F_BOOL, factorized_phm_W),
    FIELD(xa_bn_config, F_BOOL, shared_W_phm),
    FIELD(xa_bn_config, F_BOOL, shared_phm_rule),
    FIELD(xa_bn_config, F_BOOL, factorized_phm_rule),
    FIELD(xa_bn_config, F_STR, phm_c_init),
    FIELD(xa_bn_config, F_REAL, phm_init_range),
    FIELD(xa_bn_config, F_BOOL, learn_phm),
    FIELD(xa_bn_config, F_STR, hypercomplex_nonlinearity),
    FIELD(xa_bn_config, F_INT, phm_rank),
    FIELD(xa_bn_config, F_BOOL, phm_bias),
    FIELD(xa_bn_config, F_REAL, stochastic_depth),
};
#define N_BN_FIELDS (sizeof g_bn_fields / sizeof *g_bn_fields)

/* Activations AdapterHub resolves (transformers' get_activation, lowercased, plus its own
 * "leakyrelu"). */
static const char *const g_bn_acts[] = {
    "relu", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "gelu_accurate",
    "gelu_10", "quick_gelu", "swish", "silu", "tanh", "sigmoid", "linear", "leakyrelu",
    "leaky_relu", "relu6", "mish", NULL};
static const char *const g_bn_inits[] = {"bert", "mam_adapter", "houlsby", NULL};
static const char *const g_bn_phm_inits[] = {"normal", "uniform", NULL};
static const char *const g_bn_hyper[] = {"glorot-uniform", "glorot-normal", "normal", NULL};

/* BnConfig's defaults for the optional keys (§1.2); the required ones get seq_bn's values. */
static void bn_defaults(xa_bn_config *c) {
    memset(c, 0, sizeof *c);
    c->mh_adapter = 0;
    c->output_adapter = 1;
    c->reduction_factor = 16;
    set_str(c->non_linearity, sizeof c->non_linearity, "relu");
    c->original_ln_before = 0;
    c->original_ln_after = 1;
    c->residual_before_ln = XA_BN_RESIDUAL_TRUE;
    set_str(c->init_weights, sizeof c->init_weights, "bert");
    c->scaling = XA_BN_SCALING_CONSTANT;
    c->scaling_value = 1.0;
    c->inv_adapter = XA_BN_INV_NONE;
    c->phm_dim = 4;
    c->factorized_phm_W = 1;
    c->shared_phm_rule = 1;
    set_str(c->phm_c_init, sizeof c->phm_c_init, "normal");
    c->phm_init_range = 1e-4;
    c->learn_phm = 1;
    set_str(c->hypercomplex_nonlinearity, sizeof c->hypercomplex_nonlinearity, "glorot-uniform");
    c->phm_rank = 1;
    c->phm_bias = 1;
}

typedef enum preset_kind { P_SEQ, P_SEQ_INV, P_DOUBLE, P_DOUBLE_INV, P_PAR, P_SCALED_PAR,
                           P_COMPACTER, P_COMPACTER_PP } preset_kind;

static const struct {
    const char *name;
    preset_kind kind;
} g_presets[] = {
    {"seq_bn", P_SEQ},
    {"pfeiffer", P_SEQ},
    {"seq_bn_inv", P_SEQ_INV},
    {"pfeiffer+inv", P_SEQ_INV},
    {"double_seq_bn", P_DOUBLE},
    {"houlsby", P_DOUBLE},
    {"double_seq_bn_inv", P_DOUBLE_INV},
    {"houlsby+inv", P_DOUBLE_INV},
    {"par_bn", P_PAR},
    {"parallel", P_PAR},
    {"scaled_par_bn", P_SCALED_PAR},
    {"scaled_parallel", P_SCALED_PAR},
    {"compacter", P_COMPACTER},
    {"compacter++", P_COMPACTER_PP},
};

/* Ids of AdapterHub's ADAPTER_CONFIG_MAP that are not (pure) bottleneck adapters. */
static const char *const g_other_methods[] = {
    "lora", "ia3", "vera", "dora", "dvora", "mtl_lora", "prefix_tuning", "prefix_tuning_flat",
    "prompt_tuning", "loreft", "noreft", "direft", "mam", "unipelt", NULL};

xa_status xa_bn_config_preset(xa_bn_config *c, const char *name) {
    bn_defaults(c);
    const char *n = name ? name : "";
    size_t i = 0, np = sizeof g_presets / sizeof *g_presets;
    while (i < np && strcmp(n, g_presets[i].name) != 0) i++;
    if (i == np) {
        if (in_list(n, g_other_methods)) {
            return xa_error_set(XA_STATUS_UNSUPPORTED, "xa_bn_config_preset",
                                "a bottleneck adapter preset",
                                "xadapt implements bottleneck adapters only (seq_bn, double_seq_bn, "
                                "par_bn, compacter, ...)",
                                "'%s' is not a bottleneck adapter", n);
        }
        char list[XA_ERROR_FIELD];
        size_t len = 0;
        for (size_t k = 0; k < np && len < sizeof list; k++) {
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "",
                                    g_presets[k].name);
        }
        return xa_error_set(XA_STATUS_NOT_FOUND, "xa_bn_config_preset", NULL, list,
                            "unknown adapter preset '%s'; known presets are listed in the hint", n);
    }
    preset_kind k = g_presets[i].kind;
    switch (k) {
    case P_SEQ:
    case P_SEQ_INV:
    case P_COMPACTER_PP: /* Pfeiffer position: after the FFN, input LN_o(h + x) */
        c->mh_adapter = 0;
        c->output_adapter = 1;
        c->original_ln_before = 1;
        break;
    case P_DOUBLE:
    case P_DOUBLE_INV:
    case P_COMPACTER: /* Houlsby positions: both sub-layers, input h */
        c->mh_adapter = 1;
        c->output_adapter = 1;
        c->original_ln_before = 0;
        break;
    case P_PAR:
    case P_SCALED_PAR:
        c->mh_adapter = 0;
        c->output_adapter = 1;
        c->original_ln_before = 0;
        break;
    }
    c->original_ln_after = 1;
    c->residual_before_ln = XA_BN_RESIDUAL_TRUE;
    c->reduction_factor = 16;
    set_str(c->non_linearity, sizeof c->non_linearity, "relu");
    if (k == P_DOUBLE || k == P_DOUBLE_INV) set_str(c->non_linearity, sizeof c->non_linearity, "swish");
    if (k == P_SEQ_INV || k == P_DOUBLE_INV) {
        c->inv_adapter = XA_BN_INV_NICE;
        c->inv_adapter_reduction_factor = 2;
    }
    if (k == P_PAR || k == P_SCALED_PAR) {
        c->reduction_factor = 2;
        c->is_parallel = 1;
        set_str(c->init_weights, sizeof c->init_weights, "mam_adapter");
        c->scaling = k == P_PAR ? XA_BN_SCALING_CONSTANT : XA_BN_SCALING_LEARNED;
        c->scaling_value = k == P_PAR ? 4.0 : 1.0;
    }
    if (k == P_COMPACTER || k == P_COMPACTER_PP) {
        c->reduction_factor = 32;
        c->phm_layer = 1;
        set_str(c->non_linearity, sizeof c->non_linearity, "gelu");
    }
    return XA_STATUS_OK;
}

double xa_bn_config_reduction_factor(const xa_bn_config *c, int layer) {
    if (c->has_reduction_factor_map && layer >= 0 && layer < XA_BN_MAX_LAYERS &&
        c->reduction_factor_map[layer] > 0) {
        return c->reduction_factor_map[layer];
    }
    return c->reduction_factor > 0 ? c->reduction_factor : 0.0;
}

/* Python's float floor division a // b (CPython float_floor_div), for a, b > 0. */
static double py_floordiv(double a, double b) {
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
    double fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
}

int64_t xa_bn_config_bottleneck_size(const xa_bn_config *c, int layer, int64_t hidden_size) {
    double rf = xa_bn_config_reduction_factor(c, layer);
    if (!(rf > 0)) return -1;
    double d = py_floordiv((double)hidden_size, rf);
    if (!(d >= 1.0)) return 1;
    if (d > (double)INT64_MAX / 2) return -1;
    return (int64_t)d;
}

int xa_bn_config_leaves_out(const xa_bn_config *c, int layer) {
    for (int i = 0; i < c->n_leave_out; i++) {
        if (c->leave_out[i] == layer) return 1;
    }
    return 0;
}

xa_status xa_bn_config_validate(const xa_bn_config *c, const char *name) {
    const char *file = name ? name : "adapter config";
    char where[XA_ERROR_FIELD], list[XA_ERROR_FIELD];
#define BN_WHERE(key) xa_io_json_kwhere(where, sizeof where, file, "config.", key)
    if (!c->has_reduction_factor_map && !(c->reduction_factor > 0 && isfinite(c->reduction_factor))) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("reduction_factor"), "a positive number",
                            "d = hidden_size / reduction_factor", "'reduction_factor' is %g",
                            c->reduction_factor);
    }
    if (c->has_reduction_factor_map) {
        if (c->reduction_factor < 0 || !isfinite(c->reduction_factor)) {
            return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("reduction_factor.default"),
                                "a positive number", NULL, "default is %g", c->reduction_factor);
        }
        int any = c->reduction_factor > 0;
        for (int i = 0; i < XA_BN_MAX_LAYERS; i++) {
            double r = c->reduction_factor_map[i];
            if (r < 0 || !isfinite(r)) {
                return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("reduction_factor"),
                                    "positive factors", NULL, "layer %d has factor %g", i, r);
            }
            any |= r > 0;
        }
        if (!any) {
            return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("reduction_factor"),
                                "a map with \"default\" or layer entries", NULL,
                                "the reduction_factor map is empty");
        }
    }
    if (!in_list(c->non_linearity, g_bn_acts)) {
        join_list(list, sizeof list, g_bn_acts);
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("non_linearity"), list, NULL,
                            "'non_linearity' is '%s', not a known activation", c->non_linearity);
    }
    if (!in_list(c->init_weights, g_bn_inits)) {
        join_list(list, sizeof list, g_bn_inits);
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("init_weights"), list, NULL,
                            "'init_weights' is '%s'", c->init_weights);
    }
    if ((unsigned)c->residual_before_ln > XA_BN_RESIDUAL_POST_ADD) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("residual_before_ln"),
                            "true, false or \"post_add\"", NULL, "invalid value %d",
                            (int)c->residual_before_ln);
    }
    if (c->residual_before_ln == XA_BN_RESIDUAL_POST_ADD && !c->original_ln_before) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("residual_before_ln"),
                            "original_ln_before: true with \"post_add\"",
                            "AdapterHub fails on this combination too (ADAPTERHUB.md Q9)",
                            "'residual_before_ln' is \"post_add\" but original_ln_before is false");
    }
    if ((unsigned)c->scaling > XA_BN_SCALING_CHANNEL ||
        (c->scaling == XA_BN_SCALING_CONSTANT && !isfinite(c->scaling_value))) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("scaling"),
                            "a number, \"learned\" or \"channel\"", NULL, "invalid scaling");
    }
    if ((unsigned)c->inv_adapter > XA_BN_INV_GLOW) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("inv_adapter"), "null, \"nice\" or \"glow\"",
                            NULL, "invalid inv_adapter %d", (int)c->inv_adapter);
    }
    if (c->inv_adapter != XA_BN_INV_NONE && !(c->inv_adapter_reduction_factor > 0)) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("inv_adapter_reduction_factor"),
                            "a positive number when inv_adapter is set", NULL,
                            "'inv_adapter_reduction_factor' is %g",
                            c->inv_adapter_reduction_factor);
    }
    const struct {
        const char *key;
        double v;
    } probs[] = {{"dropout", c->dropout}, {"stochastic_depth", c->stochastic_depth}};
    for (size_t i = 0; i < 2; i++) {
        if (!(probs[i].v >= 0.0 && probs[i].v < 1.0)) {
            return xa_error_set(XA_STATUS_CONFIG, BN_WHERE(probs[i].key), "a probability in [0, 1)",
                                NULL, "'%s' is %g", probs[i].key, probs[i].v);
        }
    }
    if (c->n_leave_out < 0 || c->n_leave_out > XA_BN_MAX_LAYERS) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("leave_out"), "at most 128 layer ids", NULL,
                            "n_leave_out is %d", c->n_leave_out);
    }
    for (int i = 0; i < c->n_leave_out; i++) {
        if (c->leave_out[i] < 0 || c->leave_out[i] >= XA_BN_MAX_LAYERS) {
            return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("leave_out"),
                                "layer ids in [0, 128)", NULL, "'leave_out' holds %d",
                                c->leave_out[i]);
        }
    }
    if (c->phm_dim < 1 || c->phm_rank < 1) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE(c->phm_dim < 1 ? "phm_dim" : "phm_rank"),
                            "a positive integer", NULL, "phm_dim %lld, phm_rank %lld",
                            (long long)c->phm_dim, (long long)c->phm_rank);
    }
    if (!in_list(c->phm_c_init, g_bn_phm_inits)) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("phm_c_init"), "\"normal\" or \"uniform\"",
                            NULL, "'phm_c_init' is '%s'", c->phm_c_init);
    }
    if (!in_list(c->hypercomplex_nonlinearity, g_bn_hyper)) {
        join_list(list, sizeof list, g_bn_hyper);
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("hypercomplex_nonlinearity"), list, NULL,
                            "'hypercomplex_nonlinearity' is '%s'", c->hypercomplex_nonlinearity);
    }
    if (!(c->phm_init_range >= 0) || !isfinite(c->phm_init_range)) {
        return xa_error_set(XA_STATUS_CONFIG, BN_WHERE("phm_init_range"), "a non-negative number",
                            NULL, "'phm_init_range' is %g", c->phm_init_range);
    }
#undef BN_WHERE
    return XA_STATUS_OK;
}

/* ---- reading the special keys ---- */

static xa_status bn_read_positive(double *out, const json_t *v, const char *file, const char *pfx,
                                  const char *key) {
    if (!json_is_number(v)) return xa_io_json_type_error(file, pfx, key, v, "a positive number");
    double x = json_number_value(v);
    if (!(x > 0) || !isfinite(x)) {
        char where[XA_ERROR_FIELD];
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, pfx, key),
                            "a positive number", NULL, "'%s' is %g", key, x);
    }
    *out = x;
    return XA_STATUS_OK;
}

static xa_status bn_read_reduction_factor(xa_bn_config *c, const json_t *v, const char *file,
                                          const char *pfx) {
    char where[XA_ERROR_FIELD];
    if (!json_is_object(v)) {
        c->has_reduction_factor_map = 0;
        memset(c->reduction_factor_map, 0, sizeof c->reduction_factor_map);
        return bn_read_positive(&c->reduction_factor, v, file, pfx, "reduction_factor");
    }
    /* {"0": 16, "11": 8, "default": 32}: string keys, looked up as str(layer) then "default". */
    c->has_reduction_factor_map = 1;
    c->reduction_factor = 0;
    memset(c->reduction_factor_map, 0, sizeof c->reduction_factor_map);
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)v, key, x) {
        double r = 0;
        xa_status st = bn_read_positive(&r, x, file, pfx, "reduction_factor");
        if (st) return st;
        if (strcmp(key, "default") == 0) {
            c->reduction_factor = r;
            continue;
        }
        char *end = NULL;
        long layer = key[0] >= '0' && key[0] <= '9' ? strtol(key, &end, 10) : -1;
        if (layer < 0 || layer >= XA_BN_MAX_LAYERS || !end || *end) {
            return xa_error_set(
                XA_STATUS_CONFIG,
                xa_io_json_kwhere(where, sizeof where, file, pfx, "reduction_factor"),
                "layer indices \"0\"..\"127\" or \"default\" as keys", NULL,
                "map key '%s' is not a layer index", key);
        }
        c->reduction_factor_map[layer] = r;
    }
    return XA_STATUS_OK;
}

static xa_status bn_read_special(xa_bn_config *c, const char *key, const json_t *v,
                                 const char *file, const char *pfx) {
    char where[XA_ERROR_FIELD];
    if (strcmp(key, "reduction_factor") == 0) return bn_read_reduction_factor(c, v, file, pfx);
    if (strcmp(key, "residual_before_ln") == 0) {
        if (json_is_boolean(v)) {
            c->residual_before_ln = json_is_true(v) ? XA_BN_RESIDUAL_TRUE : XA_BN_RESIDUAL_FALSE;
        } else if (json_is_string(v) && strcmp(json_string_value(v), "post_add") == 0) {
            c->residual_before_ln = XA_BN_RESIDUAL_POST_ADD;
        } else {
            return xa_io_json_type_error(file, pfx, key, v, "true, false or \"post_add\"");
        }
        return XA_STATUS_OK;
    }
    if (strcmp(key, "init_weights_seed") == 0) {
        if (json_is_null(v)) {
            c->has_init_weights_seed = 0;
            c->init_weights_seed = 0;
        } else if (json_is_integer(v)) {
            c->has_init_weights_seed = 1;
            c->init_weights_seed = (int64_t)json_integer_value(v);
        } else {
            return xa_io_json_type_error(file, pfx, key, v, "an integer or null");
        }
        return XA_STATUS_OK;
    }
    if (strcmp(key, "scaling") == 0) {
        if (json_is_number(v)) {
            c->scaling = XA_BN_SCALING_CONSTANT;
            c->scaling_value = json_number_value(v);
        } else if (json_is_string(v) && strcmp(json_string_value(v), "learned") == 0) {
            c->scaling = XA_BN_SCALING_LEARNED;
            c->scaling_value = 1.0;
        } else if (json_is_string(v) && strcmp(json_string_value(v), "channel") == 0) {
            c->scaling = XA_BN_SCALING_CHANNEL;
            c->scaling_value = 1.0;
        } else {
            return xa_io_json_type_error(file, pfx, key, v, "a number, \"learned\" or \"channel\"");
        }
        return XA_STATUS_OK;
    }
    if (strcmp(key, "inv_adapter") == 0) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (json_is_null(v)) {
            c->inv_adapter = XA_BN_INV_NONE;
        } else if (s && strcmp(s, "nice") == 0) {
            c->inv_adapter = XA_BN_INV_NICE;
        } else if (s && strcmp(s, "glow") == 0) {
            c->inv_adapter = XA_BN_INV_GLOW;
        } else {
            return xa_io_json_type_error(file, pfx, key, v, "null, \"nice\" or \"glow\"");
        }
        return XA_STATUS_OK;
    }
    if (strcmp(key, "inv_adapter_reduction_factor") == 0) {
        if (json_is_null(v)) {
            c->inv_adapter_reduction_factor = 0;
            return XA_STATUS_OK;
        }
        return bn_read_positive(&c->inv_adapter_reduction_factor, v, file, pfx, key);
    }
    if (strcmp(key, "leave_out") == 0) {
        if (json_is_null(v)) {
            c->n_leave_out = 0;
            return XA_STATUS_OK;
        }
        if (!json_is_array(v))
            return xa_io_json_type_error(file, pfx, key, v, "an array of layer ids");
        if (json_array_size(v) > XA_BN_MAX_LAYERS) {
            return xa_error_set(
                XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, pfx, key),
                "at most 128 layer ids", NULL, "'leave_out' has %zu entries", json_array_size(v));
        }
        c->n_leave_out = 0;
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *x = json_array_get(v, i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                json_integer_value(x) >= XA_BN_MAX_LAYERS) {
                char shown[64];
                return xa_error_set(XA_STATUS_CONFIG,
                                    xa_io_json_kwhere(where, sizeof where, file, pfx, key),
                                    "layer ids: integers in [0, 128)", NULL, "'leave_out' holds %s",
                                    xa_io_json_show(x, shown, sizeof shown));
            }
            c->leave_out[c->n_leave_out++] = (int)json_integer_value(x);
        }
        return XA_STATUS_OK;
    }
    XA_ASSERT(0);
    return XA_STATUS_RUNTIME;
}

/* Legacy v1: "invertible_adapter": {"block_type": "nice", "non_linearity": ..,
 * "reduction_factor": 2} or null. The nested non_linearity is dropped (§1.2 back-compat). */
static xa_status bn_read_legacy_inv(xa_bn_config *c, const json_t *v, const char *file) {
    char where[XA_ERROR_FIELD];
    if (json_is_null(v)) return XA_STATUS_OK;
    if (!json_is_object(v)) {
        return xa_io_json_type_error(file, "config.", "invertible_adapter", v,
                                     "null or {\"block_type\", \"reduction_factor\", ...}");
    }
    const json_t *bt = json_object_get(v, "block_type");
    const char *s = json_is_string(bt) ? json_string_value(bt) : "";
    if (strcmp(s, "nice") == 0) {
        c->inv_adapter = XA_BN_INV_NICE;
    } else if (strcmp(s, "glow") == 0) {
        c->inv_adapter = XA_BN_INV_GLOW;
    } else {
        return xa_error_set(
            XA_STATUS_CONFIG,
            xa_io_json_kwhere(where, sizeof where, file, "config.", "invertible_adapter"),
            "block_type \"nice\" or \"glow\"", NULL,
            "legacy 'invertible_adapter' has block_type '%s'", s);
    }
    const json_t *rf = json_object_get(v, "reduction_factor");
    if (!rf) {
        return xa_error_set(
            XA_STATUS_CONFIG,
            xa_io_json_kwhere(where, sizeof where, file, "config.", "invertible_adapter"),
            "a reduction_factor", NULL, "legacy 'invertible_adapter' has no reduction_factor");
    }
    return bn_read_positive(&c->inv_adapter_reduction_factor, rf, file, "config.",
                            "invertible_adapter.reduction_factor");
}

/* Keys of other adapter methods, for a helpful hint on an unknown key. */
static const char *const g_foreign_keys[] = {
    "r", "alpha", "selfattn_lora", "intermediate_lora", "output_lora", "attn_matrices",
    "composition_mode", "prefix_length", "bottleneck_size", "flat", "encoder_prefix",
    "cross_prefix", "prompt_length", "layers", "prefix_positions", "suffix_positions", NULL};

static xa_status bn_unknown_key(const char *key, const char *file, const char *pfx) {
    char where[XA_ERROR_FIELD], hint[XA_ERROR_FIELD];
    const char *keys[N_BN_FIELDS];
    for (size_t i = 0; i < N_BN_FIELDS; i++)
        keys[i] = g_bn_fields[i].key;
    const char *best = xa_io_json_closest(key, keys, N_BN_FIELDS);
    if (best && xa_io_json_edit_distance(key, best) >= 4) best = NULL; /* within 3 edits only */
    if (in_list(key, g_foreign_keys)) {
        snprintf(hint, sizeof hint,
                 "this looks like a LoRA or prefix-tuning config; only bottleneck adapters are "
                 "supported");
    } else if (best) {
        snprintf(hint, sizeof hint, "did you mean '%s'?", best);
    } else {
        snprintf(hint, sizeof hint, "remove it; BnConfig keys are listed in ADAPTERHUB.md §1.2");
    }
    return xa_error_set(XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, pfx, key),
                        "a BnConfig key", hint, "unknown key '%s' in the adapter config", key);
}

/* Apply one BnConfig key: the per-key logic shared by adapter_config.json's "config" object and
 * xa_bn_config_set (recipe overrides). pfx prefixes the key in messages ("config." or ""). The
 * legacy forms (nested "invertible_adapter", gelu renames) are the file reader's business. */
static xa_status bn_apply_key(xa_bn_config *c, const char *key, const json_t *v, const char *file,
                              const char *pfx) {
    size_t i = 0;
    while (i < N_BN_FIELDS && strcmp(key, g_bn_fields[i].key) != 0) i++;
    if (i == N_BN_FIELDS) return bn_unknown_key(key, file, pfx);
    return g_bn_fields[i].kind == F_SPECIAL ? bn_read_special(c, key, v, file, pfx)
                                            : read_field(c, &g_bn_fields[i], v, file, pfx);
}

/* Parse the "config" object. legacy: the file has no "version" key. */
static xa_status bn_parse(xa_bn_config *c, const json_t *obj, int legacy, const char *file) {
    static const char *const required[] = {"mh_adapter", "output_adapter", "reduction_factor",
                                           "non_linearity"};
    char where[XA_ERROR_FIELD];
    xa_status st;
    bn_defaults(c);

    const json_t *arch = json_object_get(obj, "architecture");
    if (arch && !json_is_null(arch) &&
        !(json_is_string(arch) && strcmp(json_string_value(arch), "bottleneck") == 0)) {
        char shown[128];
        return xa_error_set(XA_STATUS_UNSUPPORTED,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "architecture"),
                            "a bottleneck adapter (no 'architecture' key)",
                            json_is_string(arch) && strcmp(json_string_value(arch), "lora") == 0
                                ? "lora adapters are not supported: xadapt implements bottleneck "
                                  "adapters (seq_bn, double_seq_bn, par_bn, compacter)"
                                : "only bottleneck adapters are supported",
                            "adapter architecture %s is not supported",
                            xa_io_json_show(arch, shown, sizeof shown));
    }
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (!json_object_get(obj, required[i])) {
            return xa_error_set(
                XA_STATUS_CONFIG,
                xa_io_json_kwhere(where, sizeof where, file, "config.", required[i]),
                "the four required BnConfig keys mh_adapter, output_adapter, "
                "reduction_factor, non_linearity",
                NULL, "missing required key '%s'", required[i]);
        }
    }
    const char *key;
    json_t *v;
    const json_t *legacy_inv = NULL;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "architecture") == 0) continue;
        if (strcmp(key, "invertible_adapter") == 0) {
            legacy_inv = v;
            continue;
        }
        if ((st = bn_apply_key(c, key, v, file, "config."))) return st;
    }
    if (legacy_inv && (st = bn_read_legacy_inv(c, legacy_inv, file))) return st;
    lowercase(c->non_linearity);
    if (legacy) { /* adapter-transformers before "version" existed: gelu meant the tanh form */
        if (strcmp(c->non_linearity, "gelu") == 0) {
            set_str(c->non_linearity, sizeof c->non_linearity, "gelu_new");
        } else if (strcmp(c->non_linearity, "gelu_orig") == 0) {
            set_str(c->non_linearity, sizeof c->non_linearity, "gelu");
        }
    }
    return xa_bn_config_validate(c, file);
}

xa_status xa_bn_config_set(xa_bn_config *c, const char *key, const char *json_value,
                           const char *where) {
    const char *file = where ? where : "xa_bn_config_set";
    json_t *v = NULL;
    xa_status st =
        xa_io_json_parse_value(&v, json_value, file, key,
                               "a JSON value (true, 2, 0.5, \"gelu\", [11], {\"default\": 16})");
    if (st) return st;
    xa_bn_config tmp = *c; /* c stays unchanged on failure */
    st = bn_apply_key(&tmp, key ? key : "", v, file, "");
    json_decref(v);
    if (st) return st;
    if (strcmp(key, "non_linearity") == 0) lowercase(tmp.non_linearity);
    /* Overrides arrive one key at a time: "inv_adapter: nice" on a preset without an invertible
     * adapter would fail validation before its factor could follow, so it takes 2, the factor of
     * every AdapterHub preset with one (seq_bn_inv, double_seq_bn_inv); a later
     * inv_adapter_reduction_factor override replaces it. */
    if (strcmp(key, "inv_adapter") == 0 && tmp.inv_adapter != XA_BN_INV_NONE &&
        !(tmp.inv_adapter_reduction_factor > 0)) {
        tmp.inv_adapter_reduction_factor = 2;
    }
    if ((st = xa_bn_config_validate(&tmp, file))) return st;
    *c = tmp;
    return XA_STATUS_OK;
}

/* Read a loaded adapter_config.json into dst, an xa_adapter_file_config (zeroed). */
static xa_status adapter_read_root(void *dst, const json_t *root, const char *file) {
    xa_adapter_file_config *out = dst;
    char where[XA_ERROR_FIELD];
    xa_io_json_meta meta[] = {XA_IO_JSON_META(*out), {"type", out->type, sizeof out->type},
                              {"xadapt_base_fingerprint", out->base_fingerprint, sizeof out->base_fingerprint}};
    xa_status st =
        xa_io_json_read_meta(root, meta, sizeof meta / sizeof *meta, &out->hidden_size, file);
    if (st) return st;
    int legacy = json_object_get(root, "version") == NULL;

    const json_t *cfg = json_object_get(root, "config");
    if (!cfg) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "", "config"),
                            "an object with the adapter's BnConfig, or a preset name", NULL,
                            "missing key 'config'");
    }
    if (json_is_string(cfg)) { /* legacy: the preset name itself, e.g. "pfeiffer" */
        if ((st = xa_bn_config_preset(&out->config, json_string_value(cfg)))) {
            xa_error last = *xa_error_last();
            return xa_error_set(st, xa_io_json_kwhere(where, sizeof where, file, "", "config"),
                                last.expected[0] ? last.expected : NULL,
                                last.hint[0] ? last.hint : NULL, "%s", last.what);
        }
    } else if (json_is_object(cfg)) {
        if ((st = bn_parse(&out->config, cfg, legacy, file))) return st;
    } else {
        return xa_io_json_type_error(file, "", "config", cfg, "an object or a preset name");
    }
    return XA_STATUS_OK;
}

xa_status xa_adapter_config_parse(xa_adapter_file_config *out, const char *json, size_t n,
                                  const char *name) {
    return xa_io_json_parse_object(out, sizeof *out, json, n, name ? name : "adapter_config.json",
                                   adapter_read_root);
}

xa_status xa_adapter_config_read(xa_adapter_file_config *out, const char *path) {
    return xa_io_json_read_file(out, sizeof *out, path, adapter_read_root);
}

/* The "config" object, with every key AdapterHub writes for a BnConfig. */
static json_t *bn_to_json(const xa_bn_config *c) {
    json_t *o = json_object();
    int bad = !o;
    for (size_t i = 0; !bad && i < N_BN_FIELDS; i++) {
        const field *fd = &g_bn_fields[i];
        if (fd->kind != F_SPECIAL) {
            bad = write_field(o, c, fd) != 0;
            continue;
        }
        json_t *v = NULL;
        if (strcmp(fd->key, "reduction_factor") == 0) {
            if (c->has_reduction_factor_map) {
                v = json_object();
                for (int l = 0; v && !bad && l < XA_BN_MAX_LAYERS; l++) {
                    if (c->reduction_factor_map[l] <= 0) continue;
                    char k[16];
                    snprintf(k, sizeof k, "%d", l);
                    bad = json_object_set_new(v, k,
                                              json_num_int_if_integral(c->reduction_factor_map[l]));
                }
                if (v && !bad && c->reduction_factor > 0) {
                    bad = json_object_set_new(v, "default",
                                              json_num_int_if_integral(c->reduction_factor));
                }
            } else {
                v = json_num_int_if_integral(c->reduction_factor);
            }
        } else if (strcmp(fd->key, "residual_before_ln") == 0) {
            v = c->residual_before_ln == XA_BN_RESIDUAL_POST_ADD
                    ? json_string("post_add")
                    : json_boolean(c->residual_before_ln == XA_BN_RESIDUAL_TRUE);
        } else if (strcmp(fd->key, "init_weights_seed") == 0) {
            v = c->has_init_weights_seed ? json_integer((json_int_t)c->init_weights_seed)
                                         : json_null();
        } else if (strcmp(fd->key, "scaling") == 0) {
            v = c->scaling == XA_BN_SCALING_LEARNED   ? json_string("learned")
                : c->scaling == XA_BN_SCALING_CHANNEL ? json_string("channel")
                                                      : xa_io_json_real(c->scaling_value);
        } else if (strcmp(fd->key, "inv_adapter") == 0) {
            v = c->inv_adapter == XA_BN_INV_NICE   ? json_string("nice")
                : c->inv_adapter == XA_BN_INV_GLOW ? json_string("glow")
                                                   : json_null();
        } else if (strcmp(fd->key, "inv_adapter_reduction_factor") == 0) {
            v = c->inv_adapter_reduction_factor > 0
                    ? json_num_int_if_integral(c->inv_adapter_reduction_factor)
                    : json_null();
        } else if (strcmp(fd->key, "leave_out") == 0) {
            v = json_array();
            for (int l = 0; v && !bad && l < c->n_leave_out; l++) {
                bad = json_array_append_new(v, json_integer(c->leave_out[l])) != 0;
            }
        }
        bad = bad || json_object_set_new(o, fd->key, v) != 0;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

xa_status xa_adapter_config_write(const xa_adapter_file_config *cfg, const char *path) {
    xa_status st = xa_bn_config_validate(&cfg->config, path);
    if (st) return st;
    json_t *root = json_object();
    int bad = !root || json_object_set_new(root, "config", bn_to_json(&cfg->config)) != 0;
    xa_adapter_file_config m = *cfg; /* writable copies for the meta table */
    xa_io_json_meta meta[] = {XA_IO_JSON_META(m)};
    bad = bad || xa_io_json_write_meta(root, meta, sizeof meta / sizeof *meta, cfg->hidden_size);
    /* legacy "type" is written only when set */
    if (!bad && cfg->type[0]) bad = json_object_set_new(root, "type", json_string(cfg->type));
    if (!bad && cfg->base_fingerprint[0])
        bad = json_object_set_new(root, "xadapt_base_fingerprint", json_string(cfg->base_fingerprint));
    return xa_io_json_write_root(
        root, bad, path, "cannot build adapter_config.json (out of memory or invalid string)");
}

const char *xa_io_json_library_version(void) { return jansson_version_str(); }
