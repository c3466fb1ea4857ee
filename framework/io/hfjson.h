/* io/hfjson: the two JSON files of the ecosystem, read into and written from plain structs:
 *  - Hugging Face `config.json` for XLM-R, RoBERTa and BERT encoders (xa_hf_config);
 *  - AdapterHub `adapter_config.json` for bottleneck adapters (xa_adapter_file_config holding an
 *    xa_bn_config with every BnConfig flag), with the named presets of AdapterHub.
 * Both are parsed with jansson; no JSON type appears in this header. Structs are caller-owned,
 * fixed-size values (strings are char arrays): copy them freely, nothing to free.
 *
 * Errors: IO / NOT_FOUND for unreadable files, FORMAT for invalid JSON (with line and column) or a
 * top level that is not an object, CONFIG for a wrong key, type or value (naming the file, the key,
 * the bad value and what was expected), UNSUPPORTED for valid files of a kind xadapt does not
 * handle (another model_type, a LoRA or prefix-tuning adapter).
 * Writers validate first and write atomically (io/file.h); JSON is indented by 2 with sorted keys,
 * like Python's json.dump(indent=2, sort_keys=True), and reals are printed with 15 significant
 * digits, enough for any value typed in decimal (jansson spells 1e-05 as "1e-5").
 */
#ifndef XA_IO_HFJSON_H
#define XA_IO_HFJSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The jansson version in use ("2.14"). */
const char *xa_io_json_library_version(void);

/* ---- Hugging Face config.json ---------------------------------------------------------------- */

#define XA_HF_MAX_ARCHS 4
#define XA_HF_NAME_LEN 64

/* Field names are the config.json keys. Integers that HF allows to be null (the token ids) use -1
 * for null (written as null); classifier_dropout uses a negative value for null. */
typedef struct xa_hf_config {
    char model_type[XA_HF_NAME_LEN];              /* "xlm-roberta", "roberta" or "bert" */
    int n_architectures;                          /* 0 .. XA_HF_MAX_ARCHS */
    char architectures[XA_HF_MAX_ARCHS][XA_HF_NAME_LEN]; /* e.g. "XLMRobertaForMaskedLM" */
    int64_t vocab_size;                           /* V */
    int64_t hidden_size;                          /* C, divisible by num_attention_heads */
    int64_t num_hidden_layers;                    /* L */
    int64_t num_attention_heads;                  /* NH */
    int64_t intermediate_size;                    /* FFN width */
    char hidden_act[XA_HF_NAME_LEN];              /* "gelu" (erf), "gelu_new" (tanh), "relu", ... */
    double hidden_dropout_prob;                   /* [0, 1) */
    double attention_probs_dropout_prob;          /* [0, 1) */
    int64_t max_position_embeddings;              /* XLM-R: 514 = 512 usable + pad + 1 */
    int64_t type_vocab_size;                      /* XLM-R 1, BERT 2 */
    double initializer_range;                     /* std of the normal init, > 0 */
    double layer_norm_eps;                        /* XLM-R 1e-5, BERT 1e-12 */
    int64_t pad_token_id;                         /* -1: null */
    int64_t bos_token_id;                         /* -1: null (BERT has none) */
    int64_t eos_token_id;                         /* -1: null */
    char position_embedding_type[XA_HF_NAME_LEN]; /* "absolute" (or relative_key[_query]) */
    double classifier_dropout;                    /* < 0: null (use hidden_dropout_prob) */
    char transformers_version[XA_HF_NAME_LEN];    /* written back as HF writes it */
} xa_hf_config;

/* Fill cfg with the base-size defaults of a model type ("xlm-roberta": xlm-roberta-base,
 * eps 1e-5, pad 1 / bos 0 / eos 2, 514 positions, 1 token type; "roberta": roberta-base;
 * "bert": bert-base, eps 1e-12, pad 0, no bos/eos, 512 positions, 2 token types).
 * Returns UNSUPPORTED (with the known types as hint) for another model type; cfg is then zeroed. */
xa_status xa_hf_config_default(xa_hf_config *cfg, const char *model_type);

/* Read config.json. Required keys: model_type, vocab_size, hidden_size, num_hidden_layers,
 * num_attention_heads, intermediate_size; the others take xa_hf_config_default(model_type)'s
 * values when absent. Unknown keys are ignored (HF files carry many). The result is validated. */
xa_status xa_hf_config_read(xa_hf_config *cfg, const char *path);
/* Same from a JSON text of n bytes; `name` stands for the file in messages. */
xa_status xa_hf_config_parse(xa_hf_config *cfg, const char *json, size_t n, const char *name);

/* Check values: positive sizes, hidden_size % num_attention_heads == 0, probabilities in [0, 1),
 * positive eps and initializer_range, token ids in [-1, vocab_size), known hidden_act and
 * position_embedding_type. `name` (the file, or NULL) prefixes the messages. */
xa_status xa_hf_config_validate(const xa_hf_config *cfg, const char *name);

/* Validate, then write config.json as transformers' save_pretrained does (all keys above plus
 * "torch_dtype": "float32" and "use_cache": true), loadable by XLMRobertaForMaskedLM /
 * BertForMaskedLM.from_pretrained. */
xa_status xa_hf_config_write(const xa_hf_config *cfg, const char *path);

/* ---- AdapterHub bottleneck adapter config ----------------------------------------------------- */

#define XA_BN_MAX_LAYERS 128 /* layer indices in leave_out / the reduction_factor map */
#define XA_BN_NAME_LEN 64

/* residual_before_ln: which tensor the adapter adds back (ADAPTERHUB.md §1.4). */
typedef enum xa_bn_residual {
    XA_BN_RESIDUAL_FALSE,    /* false: the adapter input (after LN_o when original_ln_before) */
    XA_BN_RESIDUAL_TRUE,     /* true: h, the sub-layer output before the residual add and LN */
    XA_BN_RESIDUAL_POST_ADD, /* "post_add": h + x; needs original_ln_before */
} xa_bn_residual;

/* scaling: a constant (scaling_value), or a trainable scalar / per-channel vector (init 1). */
typedef enum xa_bn_scaling {
    XA_BN_SCALING_CONSTANT,
    XA_BN_SCALING_LEARNED, /* "learned": shape [1] */
    XA_BN_SCALING_CHANNEL, /* "channel": shape [H] */
} xa_bn_scaling;

typedef enum xa_bn_inv {
    XA_BN_INV_NONE,
    XA_BN_INV_NICE,
    XA_BN_INV_GLOW, /* parsed for completeness; AdapterHub's GLOW does not run (§1.5, Q1) */
} xa_bn_inv;

/* Every BnConfig flag (ADAPTERHUB.md §1.2), named as in the JSON. */
typedef struct xa_bn_config {
    int mh_adapter;                 /* adapter after attention.output */
    int output_adapter;             /* adapter after the FFN output */
    double reduction_factor;        /* H/d; 0 when only a per-layer map without "default" is given */
    int has_reduction_factor_map;   /* 1: the JSON value was a {"0": .., "default": ..} map */
    double reduction_factor_map[XA_BN_MAX_LAYERS]; /* per layer, 0 = not listed (use default) */
    char non_linearity[XA_BN_NAME_LEN]; /* lowercased; legacy gelu renames applied on read */
    int original_ln_before;
    int original_ln_after;
    xa_bn_residual residual_before_ln;
    int adapter_residual_before_ln;
    int ln_before;
    int ln_after;
    char init_weights[XA_BN_NAME_LEN]; /* "bert", "mam_adapter" or "houlsby" */
    int has_init_weights_seed;      /* 0: null */
    int64_t init_weights_seed;
    int is_parallel;
    xa_bn_scaling scaling;
    double scaling_value;           /* the constant when scaling == XA_BN_SCALING_CONSTANT */
    int use_gating;
    xa_bn_inv inv_adapter;
    double inv_adapter_reduction_factor; /* 0: null */
    int cross_adapter;
    int n_leave_out;
    int leave_out[XA_BN_MAX_LAYERS]; /* (n_leave_out) layer ids, from 0, in file order */
    double dropout;                 /* [0, 1) */
    int phm_layer;
    int64_t phm_dim;
    int factorized_phm_W;
    int shared_W_phm;
    int shared_phm_rule;
    int factorized_phm_rule;
    char phm_c_init[XA_BN_NAME_LEN]; /* "normal" or "uniform" */
    double phm_init_range;
    int learn_phm;
    char hypercomplex_nonlinearity[XA_BN_NAME_LEN]; /* "glorot-uniform", "glorot-normal", "normal" */
    int64_t phm_rank;
    int phm_bias;
    double stochastic_depth;        /* [0, 1) */
} xa_bn_config;

/* Fill c with a named AdapterHub preset (§1.3): seq_bn / pfeiffer, seq_bn_inv / pfeiffer+inv,
 * double_seq_bn / houlsby, double_seq_bn_inv / houlsby+inv, par_bn / parallel,
 * scaled_par_bn / scaled_parallel, compacter, compacter++. Unlisted flags take BnConfig defaults.
 * Returns NOT_FOUND (hint: the known names) for an unknown name, UNSUPPORTED for a known
 * non-bottleneck method (lora, prefix_tuning, ...). c is left as seq_bn on failure. */
xa_status xa_bn_config_preset(xa_bn_config *c, const char *name);

/* Check values: positive reduction factors, known activation / init / phm_c_init, dropout and
 * stochastic_depth in [0, 1), post_add only with original_ln_before, an inv_adapter with its
 * reduction factor, leave_out ids in [0, XA_BN_MAX_LAYERS), phm_dim and phm_rank >= 1. */
xa_status xa_bn_config_validate(const xa_bn_config *c, const char *name);

/* Set one BnConfig key from its value as JSON text (a recipe override: "reduction_factor" = "2",
 * "leave_out" = "[11]", "non_linearity" = "\"gelu\"", "reduction_factor" = "{\"default\": 16,
 * \"11\": 2}"), with the same key names, types and value checks as adapter_config.json. CONFIG
 * naming `where` (e.g. "recipe.yaml:12:7"), the key and the value, with a did-you-mean hint for an
 * unknown key. c is unchanged on failure. */
xa_status xa_bn_config_set(xa_bn_config *c, const char *key, const char *json_value,
                           const char *where);

/* The reduction factor of layer `layer` (the map entry, else the default), 0 if neither exists. */
double xa_bn_config_reduction_factor(const xa_bn_config *c, int layer);
/* The bottleneck width d = max(1, int(H // rf)) with Python's float floor division, or -1 when
 * the layer has no reduction factor. */
int64_t xa_bn_config_bottleneck_size(const xa_bn_config *c, int layer, int64_t hidden_size);
/* 1 if `layer` is in leave_out. */
int xa_bn_config_leaves_out(const xa_bn_config *c, int layer);

/* adapter_config.json: the config plus the metadata AdapterHub stores beside it (§1.10).
 * Empty strings stand for null / absent. */
typedef struct xa_adapter_file_config {
    xa_bn_config config;
    int64_t hidden_size;
    char model_class[128]; /* e.g. "XLMRobertaAdapterModel" */
    char model_name[256];  /* e.g. "xlm-roberta-base" */
    char model_type[64];   /* e.g. "xlm-roberta" */
    char name[128];        /* the adapter name */
    char version[64];      /* "adapters.1.2.0"; "" for legacy files that had none */
    char type[32];         /* legacy "text_task" / "text_lang", usually "" */
    char base_fingerprint[24]; /* xadapt's "xadapt_base_fingerprint": the base it was trained on
                                  (xa_hub_base_fingerprint), "" = unknown; AdapterHub ignores it */
} xa_adapter_file_config;

/* The version string xa_adapter_config_write stores when cfg->version is empty. */
#define XA_ADAPTERS_VERSION "adapters.1.2.0"

/* Read adapter_config.json. `config` may be a full BnConfig dict (missing optional keys take the
 * BnConfig defaults; mh_adapter, output_adapter, reduction_factor and non_linearity are required)
 * or a preset name string. Legacy forms: no "version" key renames gelu -> gelu_new and
 * gelu_orig -> gelu; a nested "invertible_adapter" {block_type, reduction_factor} object maps to
 * inv_adapter / inv_adapter_reduction_factor. An unknown key inside `config` is CONFIG (naming
 * the key, with a did-you-mean hint); an `architecture` other than bottleneck is UNSUPPORTED.
 * Unknown top-level keys (config_id, meta entries) are ignored. */
xa_status xa_adapter_config_read(xa_adapter_file_config *out, const char *path);
xa_status xa_adapter_config_parse(xa_adapter_file_config *out, const char *json, size_t n,
                                  const char *name);

/* Validate and write adapter_config.json as AdapterHub saves it: every BnConfig key under
 * "config", then hidden_size, model_class, model_name, model_type, name, version (and type when
 * set). */
xa_status xa_adapter_config_write(const xa_adapter_file_config *cfg, const char *path);


/* ---- AdapterHub fusion, head and setup files (hubjson.c) --------------------------------------- */

#define XA_FUSION_MAX_ADAPTERS 16

/* AdapterFusionConfig (§1.7), keys as in the JSON. */
typedef struct xa_fusion_config {
    int key, query, value;
    int query_before_ln;
    int regularization;
    int residual_before;
    int temperature;            /* T annealing; xadapt supports only false (UNSUPPORTED on use) */
    int value_before_softmax;
    int value_initialized;      /* AdapterHub stores a bool; "" / false both read as 0 */
    double dropout_prob;        /* < 0: null (the model's attention_probs_dropout_prob) */
} xa_fusion_config;

/* "static" or "dynamic" (the default of AdapterHub); NOT_FOUND for another name. */
xa_status xa_fusion_config_preset(xa_fusion_config *c, const char *name);

/* adapter_fusion_config.json: {"config": {...}, "hidden_size", "model_class", "model_name",
 * "model_type", "name", "version"}; `config` may also be a preset name. */
typedef struct xa_fusion_file_config {
    xa_fusion_config config;
    int64_t hidden_size;
    char model_class[128];
    char model_name[256];
    char model_type[64];
    char name[1024];            /* the fusion name, e.g. "a,b,c" */
    char version[64];
    /* xadapt extension, key "adapter_names" (written only when set): the fused adapters of a
     * fusion whose explicit name is not their ","-joined list. 0 = the name lists them. */
    int n_adapters;
    char adapters[XA_FUSION_MAX_ADAPTERS][64];
    char base_fingerprint[24];  /* as in xa_adapter_file_config */
} xa_fusion_file_config;

/* Set one AdapterFusionConfig key from JSON text, as xa_bn_config_set. */
xa_status xa_fusion_config_set(xa_fusion_config *c, const char *key, const char *json_value,
                               const char *where);

xa_status xa_fusion_config_read(xa_fusion_file_config *out, const char *path);
xa_status xa_fusion_config_parse(xa_fusion_file_config *out, const char *json, size_t n,
                                 const char *name);
xa_status xa_fusion_config_write(const xa_fusion_file_config *cfg, const char *path);

/* head_config.json of a flex head (§1.10): {"config": {"head_type", "num_labels", "layers",
 * "activation_function", "label2id", "use_pooler"*, "bias"*, "dropout_prob"?}, "hidden_size",
 * "model_class", "model_name", "model_type", "name", "version"}. xadapt knows the head types
 * "classification" (layers 2, tanh), "tagging" (layers 1) and "multiple_choice" (layers 2, tanh;
 * "num_choices" instead of "num_labels", no "bias", as MultipleChoiceHead.__init__ takes them)
 * and "question_answering" (layers 1, num_labels 2: start and end logits; no "use_pooler" or
 * "bias", as QuestionAnsweringHead.__init__ takes them); others are UNSUPPORTED.
 * * written for classification heads only (AdapterHub's TaggingHead takes neither keyword);
 *   read, and checked, for both. */
#define XA_HEAD_MAX_LABELS 256
typedef struct xa_head_file_config {
    char head_type[32];         /* "classification", "tagging", "multiple_choice" or
                                   "question_answering" */
    int64_t num_labels;         /* multiple_choice: num_choices */
    int64_t layers;
    char activation_function[32]; /* "tanh" for classification; "" = null */
    int use_pooler;
    int bias;
    double dropout_prob;        /* < 0: absent */
    int n_labels;               /* entries of label2id (0 = absent / null) */
    char labels[XA_HEAD_MAX_LABELS][64]; /* label names ordered by id */
    int64_t hidden_size;
    char model_class[128];
    char model_name[256];
    char model_type[64];
    char name[128];
    char version[64];
    char base_fingerprint[24];  /* as in xa_adapter_file_config */
} xa_head_file_config;

xa_status xa_head_config_read(xa_head_file_config *out, const char *path);
xa_status xa_head_config_parse(xa_head_file_config *out, const char *json, size_t n,
                               const char *name);
xa_status xa_head_config_write(const xa_head_file_config *cfg, const char *path);


#ifdef __cplusplus
}
#endif
#endif /* XA_IO_HFJSON_H */
