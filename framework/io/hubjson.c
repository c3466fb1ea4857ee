/* io/hubjson: the AdapterHub JSON files beside adapter_config.json (ADAPTERHUB.md §1.7, §1.10):
 *  - adapter_fusion_config.json: an AdapterFusionConfig ("static" / "dynamic" presets, or a full
 *    dict) plus the model metadata;
 *  - head_config.json of a flex head: head_type, num_labels (multiple_choice: num_choices), layers, activation_function,
 *    label2id, dropout_prob, and for classification heads also use_pooler and bias, plus the model
 *    metadata. AdapterHub passes the "config" keys to the head class's constructor as keyword
 *    arguments (label2id turned into id2label), so the writer emits exactly the keys that head
 *    type's constructor takes: TaggingHead has no use_pooler / bias parameter and raises
 *    TypeError on them. The reader still accepts those two keys in a tagging head (older xadapt
 *    files wrote them). HF static heads (config null, num_labels / label2id at the top level) are
 *    read by their model_class.
 * Readers reject unknown keys inside "config" (CONFIG, with a did-you-mean hint) and ignore
 * unknown top-level keys (config_id and meta entries); absent fusion keys take the dynamic preset.
 * Writers validate first and write atomically with sorted keys and an indent of 2.
 *
 * Does not: read head types other than classification (layers 2, tanh) and tagging (layers 1),
 * pooler-based classification, or bias-free heads (UNSUPPORTED: heads/ implements neither).
 */
#include "io/hfjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/jsonutil.h"

/* ---- shared helpers
 * ------------------------------------------------------------------------------ */

static xa_status read_bool(int *dst, const char *file, const char *pfx, const char *key,
                           const json_t *v) {
    if (!json_is_boolean(v)) return xa_io_json_type_error(file, pfx, key, v, "true or false");
    *dst = json_is_true(v);
    return XA_STATUS_OK;
}

static xa_status unknown_key_pfx(const char *file, const char *pfx, const char *key,
                                 const char *const *keys, size_t n, const char *what) {
    char where[XA_ERROR_FIELD], hint[XA_ERROR_FIELD];
    const char *best = xa_io_json_closest(key, keys, n);
    if (best) {
        snprintf(hint, sizeof hint, "did you mean '%s'?", best);
    } else {
        size_t len = (size_t)snprintf(hint, sizeof hint, "known keys:");
        for (size_t i = 0; i < n && len < sizeof hint; i++) {
            len += (size_t)snprintf(hint + len, sizeof hint - len, " %s", keys[i]);
        }
    }
    return xa_error_set(XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, pfx, key),
                        what, hint, "unknown key '%s'", key);
}

static xa_status unknown_key(const char *file, const char *key, const char *const *keys, size_t n,
                             const char *what) {
    return unknown_key_pfx(file, "config.", key, keys, n, what);
}

/* ==== adapter_fusion_config.json
 * ======================================================================= */

static const char *const g_fusion_keys[] = {"key",
                                            "query",
                                            "value",
                                            "query_before_ln",
                                            "regularization",
                                            "residual_before",
                                            "temperature",
                                            "value_before_softmax",
                                            "value_initialized",
                                            "dropout_prob"};
#define N_FUSION_KEYS (sizeof g_fusion_keys / sizeof *g_fusion_keys)

xa_status xa_fusion_config_preset(xa_fusion_config *c, const char *name) {
    const char *n = name ? name : "";
    int stat = strcmp(n, "static") == 0;
    memset(c, 0, sizeof *c);
    c->key = 1;
    c->query = 1;
    c->value = !stat;
    c->query_before_ln = 0;
    c->regularization = !stat;
    c->residual_before = 0;
    c->temperature = 0;
    c->value_before_softmax = 1;
    c->value_initialized = !stat;
    c->dropout_prob = -1.0;
    if (!stat && strcmp(n, "dynamic") != 0) {
        return xa_error_set(XA_STATUS_NOT_FOUND, "xa_fusion_config_preset",
                            "\"static\" or \"dynamic\"", NULL, "unknown fusion preset '%s'", n);
    }
    return XA_STATUS_OK;
}

static int *fusion_bool(xa_fusion_config *c, size_t i) {
    int *p[] = {&c->key,
                &c->query,
                &c->value,
                &c->query_before_ln,
                &c->regularization,
                &c->residual_before,
                &c->temperature,
                &c->value_before_softmax,
                &c->value_initialized};
    return i < sizeof p / sizeof *p ? p[i] : NULL;
}

/* Apply one AdapterFusionConfig key: shared by the file reader and xa_fusion_config_set. pfx
 * prefixes the key in messages ("config." or ""). */
static xa_status fusion_apply_key(xa_fusion_config *c, const char *key, const json_t *v,
                                  const char *file, const char *pfx) {
    size_t i = 0;
    while (i < N_FUSION_KEYS && strcmp(key, g_fusion_keys[i]) != 0)
        i++;
    if (i == N_FUSION_KEYS) {
        return unknown_key_pfx(file, pfx, key, g_fusion_keys, N_FUSION_KEYS,
                               "an AdapterFusionConfig key");
    }
    if (strcmp(key, "dropout_prob") == 0) {
        if (json_is_null(v)) {
            c->dropout_prob = -1.0;
        } else if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 1) {
            c->dropout_prob = json_number_value(v);
        } else {
            return xa_io_json_type_error(file, pfx, key, v, "null or a number in [0, 1)");
        }
        return XA_STATUS_OK;
    }
    if (strcmp(key, "value_initialized") == 0 && json_is_string(v)) {
        /* AdapterHub types it as a string defaulting to False: "" means off */
        c->value_initialized = json_string_value(v)[0] != '\0';
        return XA_STATUS_OK;
    }
    return read_bool(fusion_bool(c, i), file, pfx, key, v);
}

static xa_status fusion_parse_config(xa_fusion_config *c, const json_t *cfg, const char *file) {
    char where[XA_ERROR_FIELD];
    xa_status st;
    if (json_is_string(cfg)) {
        if ((st = xa_fusion_config_preset(c, json_string_value(cfg)))) {
            return xa_error_set(st, xa_io_json_kwhere(where, sizeof where, file, "", "config"),
                                "a fusion preset \"static\" or \"dynamic\", or an object", NULL,
                                "unknown fusion preset '%s'", json_string_value(cfg));
        }
        return XA_STATUS_OK;
    }
    if (!json_is_object(cfg))
        return xa_io_json_type_error(file, "", "config", cfg, "an object or a preset name");
    xa_fusion_config_preset(c, "dynamic");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)cfg, key, v) {
        if ((st = fusion_apply_key(c, key, v, file, "config."))) return st;
    }
    return XA_STATUS_OK;
}

xa_status xa_fusion_config_set(xa_fusion_config *c, const char *key, const char *json_value,
                               const char *where) {
    const char *file = where ? where : "xa_fusion_config_set";
    json_t *v = NULL;
    xa_status st =
        xa_io_json_parse_value(&v, json_value, file, key, "a JSON value (true, false, null, 0.1)");
    if (st) return st;
    xa_fusion_config tmp = *c; /* c stays unchanged on failure */
    st = fusion_apply_key(&tmp, key ? key : "", v, file, "");
    json_decref(v);
    if (st) return st;
    *c = tmp;
    return XA_STATUS_OK;
}

/* Read a loaded adapter_fusion_config.json into dst, an xa_fusion_file_config (zeroed). */
static xa_status fusion_read_root(void *dst, const json_t *root, const char *file) {
    xa_fusion_file_config *out = dst;
    char where[XA_ERROR_FIELD];
    xa_io_json_meta meta[] = {XA_IO_JSON_META(*out),
                              {"xadapt_base_fingerprint", out->base_fingerprint, sizeof out->base_fingerprint}};
    xa_status st =
        xa_io_json_read_meta(root, meta, sizeof meta / sizeof *meta, &out->hidden_size, file);
    if (st) return st;
    const json_t *cfg = json_object_get(root, "config");
    if (!cfg) {
        return xa_error_set(
            XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "", "config"),
            "an AdapterFusionConfig object or a preset name", NULL, "missing key 'config'");
    }
    if ((st = fusion_parse_config(&out->config, cfg, file))) return st;
    const json_t *names = json_object_get(root, "adapter_names");
    if (names && !json_is_null(names)) {
        if (!json_is_array(names) || json_array_size(names) < 2 ||
            json_array_size(names) > XA_FUSION_MAX_ADAPTERS) {
            return xa_io_json_type_error(file, "", "adapter_names", names,
                                         "an array of 2 to 16 adapter names");
        }
        for (size_t i = 0; i < json_array_size(names); i++) {
            if ((st = xa_io_json_copy_str(out->adapters[i], sizeof out->adapters[i], file, "",
                                          "adapter_names", json_array_get(names, i)))) {
                return st;
            }
        }
        out->n_adapters = (int)json_array_size(names);
    }
    return XA_STATUS_OK;
}

xa_status xa_fusion_config_parse(xa_fusion_file_config *out, const char *json, size_t n,
                                 const char *name) {
    return xa_io_json_parse_object(out, sizeof *out, json, n,
                                   name ? name : "adapter_fusion_config.json", fusion_read_root);
}

xa_status xa_fusion_config_read(xa_fusion_file_config *out, const char *path) {
    return xa_io_json_read_file(out, sizeof *out, path, fusion_read_root);
}

xa_status xa_fusion_config_write(const xa_fusion_file_config *cfg, const char *path) {
    const xa_fusion_config *c = &cfg->config;
    if (!(c->dropout_prob < 1)) {
        char where[XA_ERROR_FIELD];
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, path, "config.", "dropout_prob"),
                            "null (< 0) or a number in [0, 1)", NULL, "dropout_prob is %g",
                            c->dropout_prob);
    }
    xa_fusion_file_config m = *cfg; /* writable copies for the meta table */
    xa_io_json_meta meta[] = {XA_IO_JSON_META(m)};
    json_t *root = json_object(), *o = json_object();
    int bad = !root || !o;
    for (size_t i = 0; !bad && i < N_FUSION_KEYS; i++) {
        int *p = fusion_bool(&m.config, i);
        json_t *v = p                     ? json_boolean(*p)
                    : c->dropout_prob < 0 ? json_null()
                                          : xa_io_json_real(c->dropout_prob);
        bad = json_object_set_new(o, g_fusion_keys[i], v) != 0;
    }
    if (!bad) {
        bad = json_object_set_new(root, "config", o) != 0; /* steals o, even on failure */
    } else {
        json_decref(o);
    }
    o = NULL;
    bad = bad || xa_io_json_write_meta(root, meta, sizeof meta / sizeof *meta, cfg->hidden_size);
    if (!bad && cfg->n_adapters > 0) {
        json_t *a = json_array();
        for (int i = 0; a && !bad && i < cfg->n_adapters; i++) {
            bad = json_array_append_new(a, json_string(cfg->adapters[i])) != 0;
        }
        bad = bad || json_object_set_new(root, "adapter_names", a) != 0;
    }
    if (!bad && cfg->base_fingerprint[0])
        bad = json_object_set_new(root, "xadapt_base_fingerprint", json_string(cfg->base_fingerprint));
    return xa_io_json_write_root(root, bad, path, "cannot build adapter_fusion_config.json");
}

/* ==== head_config.json
 * ================================================================================= */

static const char *const g_head_keys[] = {
    "head_type", "num_labels",   "layers",   "activation_function", "label2id", "use_pooler",
    "bias",      "dropout_prob", "id2label", "num_choices"};
#define N_HEAD_KEYS (sizeof g_head_keys / sizeof *g_head_keys)

static xa_status head_validate(const xa_head_file_config *c, const char *file) {
    char where[XA_ERROR_FIELD];
    int mc = strcmp(c->head_type, "multiple_choice") == 0;
    int cls = strcmp(c->head_type, "classification") == 0 || mc; /* the same two layers */
    int qa = strcmp(c->head_type, "question_answering") == 0;
    int tag = strcmp(c->head_type, "tagging") == 0 || qa;        /* one layer */
    if (!cls && !tag) {
        return xa_error_set(XA_STATUS_UNSUPPORTED,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "head_type"),
                            "\"classification\", \"tagging\", \"multiple_choice\" or \"question_answering\"",
                            "heads/ implements these four head types",
                            "head_type '%s' is not supported", c->head_type);
    }
    if (qa && c->num_labels != 2) {
        return xa_error_set(XA_STATUS_UNSUPPORTED,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "num_labels"),
                            "2 (start and end logits) for a question-answering head", NULL, "num_labels is %lld",
                            (long long)c->num_labels);
    }
    if (c->num_labels < 1 || c->num_labels > XA_HEAD_MAX_LABELS) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", mc ? "num_choices" : "num_labels"),
                            mc ? "1 to 256 choices" : "1 to 256 labels", NULL, "%s is %lld",
                            mc ? "num_choices" : "num_labels", (long long)c->num_labels);
    }
    if (c->layers != (cls ? 2 : 1)) {
        return xa_error_set(XA_STATUS_UNSUPPORTED,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "layers"),
                            mc ? "2 for a multiple-choice head" : cls ? "2 for a classification head"
                            : qa ? "1 for a question-answering head" : "1 for a tagging head", NULL,
                            "layers is %lld", (long long)c->layers);
    }
    if (cls && strcmp(c->activation_function, "tanh") != 0) {
        return xa_error_set(
            XA_STATUS_UNSUPPORTED,
            xa_io_json_kwhere(where, sizeof where, file, "config.", "activation_function"),
            "\"tanh\"", NULL, "activation_function '%s' is not supported", c->activation_function);
    }
    if (c->use_pooler) {
        return xa_error_set(XA_STATUS_UNSUPPORTED,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "use_pooler"),
                            "false", "heads/ classifies from the first token's hidden state",
                            "use_pooler true is not supported");
    }
    if (!c->bias) {
        return xa_error_set(XA_STATUS_UNSUPPORTED,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "bias"), "true",
                            NULL, "heads without a bias are not supported");
    }
    if (!(c->dropout_prob < 1)) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "dropout_prob"),
                            "null or a number in [0, 1)", NULL, "dropout_prob is %g",
                            c->dropout_prob);
    }
    if (c->n_labels != 0 && c->n_labels != c->num_labels) {
        return xa_error_set(
            XA_STATUS_CONFIG, xa_io_json_kwhere(where, sizeof where, file, "config.", "label2id"),
            "one entry per label", NULL, "label2id has %d entries, num_labels is %lld", c->n_labels,
            (long long)c->num_labels);
    }
    for (int i = 0; i < c->n_labels; i++) {
        for (int j = 0; j < i; j++) {
            if (strcmp(c->labels[i], c->labels[j]) == 0) {
                return xa_error_set(
                    XA_STATUS_CONFIG,
                    xa_io_json_kwhere(where, sizeof where, file, "config.", "label2id"),
                    "distinct labels", NULL, "label '%s' appears twice", c->labels[i]);
            }
        }
    }
    return XA_STATUS_OK;
}

/* label2id {label: id} with ids 0 .. n-1, each once, into labels ordered by id. */
static xa_status head_read_label2id(xa_head_file_config *c, const json_t *v, const char *file,
                                    const char *prefix) {
    char where[XA_ERROR_FIELD];
    if (json_is_null(v)) return XA_STATUS_OK;
    if (!json_is_object(v))
        return xa_io_json_type_error(file, prefix, "label2id", v, "an object {label: id}");
    size_t n = json_object_size(v);
    xa_io_json_kwhere(where, sizeof where, file, prefix, "label2id");
    if (n > XA_HEAD_MAX_LABELS) {
        return xa_error_set(XA_STATUS_CONFIG, where, "at most 256 labels", NULL,
                            "label2id has %zu entries", n);
    }
    uint8_t seen[XA_HEAD_MAX_LABELS] = {0};
    const char *key;
    json_t *id;
    json_object_foreach((json_t *)v, key, id) {
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            (size_t)json_integer_value(id) >= n) {
            char shown[64];
            return xa_error_set(XA_STATUS_CONFIG, where, "ids 0 .. number of labels - 1", NULL,
                                "label '%s' has id %s", key,
                                xa_io_json_show(id, shown, sizeof shown));
        }
        size_t i = (size_t)json_integer_value(id);
        if (seen[i]) {
            return xa_error_set(XA_STATUS_CONFIG, where, "each id once", NULL,
                                "id %zu is given to two labels (one is '%s')", i, key);
        }
        if (strlen(key) >= sizeof c->labels[i]) {
            return xa_error_set(XA_STATUS_CONFIG, where, "labels under 64 characters", NULL,
                                "label '%.40s...' is too long", key);
        }
        seen[i] = 1;
        snprintf(c->labels[i], sizeof c->labels[i], "%s", key);
    }
    c->n_labels = (int)n;
    return XA_STATUS_OK;
}

static xa_status head_parse_config(xa_head_file_config *c, const json_t *cfg, const char *file) {
    const char *key;
    json_t *v;
    xa_status st;
    json_object_foreach((json_t *)cfg, key, v) {
        size_t i = 0;
        while (i < N_HEAD_KEYS && strcmp(key, g_head_keys[i]) != 0)
            i++;
        if (i == N_HEAD_KEYS)
            return unknown_key(file, key, g_head_keys, N_HEAD_KEYS, "a head config key");
        if (strcmp(key, "head_type") == 0) {
            st = xa_io_json_copy_str(c->head_type, sizeof c->head_type, file, "config.", key, v);
        } else if (strcmp(key, "num_labels") == 0 || strcmp(key, "layers") == 0 ||
                   strcmp(key, "num_choices") == 0) { /* num_choices: kept in num_labels */
            if (!json_is_integer(v)) {
                st = xa_io_json_type_error(file, "config.", key, v, "an integer");
            } else {
                *(key[0] == 'n' ? &c->num_labels : &c->layers) = (int64_t)json_integer_value(v);
                st = XA_STATUS_OK;
            }
        } else if (strcmp(key, "activation_function") == 0) {
            st = json_is_null(v)
                     ? XA_STATUS_OK
                     : xa_io_json_copy_str(c->activation_function, sizeof c->activation_function,
                                           file, "config.", key, v);
        } else if (strcmp(key, "label2id") == 0) {
            st = head_read_label2id(c, v, file, "config.");
        } else if (strcmp(key, "use_pooler") == 0) {
            st = read_bool(&c->use_pooler, file, "config.", key, v);
        } else if (strcmp(key, "bias") == 0) {
            st = read_bool(&c->bias, file, "config.", key, v);
        } else if (strcmp(key, "dropout_prob") == 0) {
            if (json_is_null(v)) {
                c->dropout_prob = -1.0;
                st = XA_STATUS_OK;
            } else if (!json_is_number(v)) {
                st = xa_io_json_type_error(file, "config.", key, v, "null or a number in [0, 1)");
            } else {
                c->dropout_prob = json_number_value(v);
                st = XA_STATUS_OK;
            }
        } else {
            st = XA_STATUS_OK; /* id2label: label2id is authoritative */
        }
        if (st) return st;
    }
    return XA_STATUS_OK;
}

/* Read a loaded head_config.json into dst, an xa_head_file_config (zeroed). */
static xa_status head_read_root(void *dst, const json_t *root, const char *file) {
    xa_head_file_config *out = dst;
    char where[XA_ERROR_FIELD];
    xa_io_json_meta meta[] = {XA_IO_JSON_META(*out),
                              {"xadapt_base_fingerprint", out->base_fingerprint, sizeof out->base_fingerprint}};
    xa_status st =
        xa_io_json_read_meta(root, meta, sizeof meta / sizeof *meta, &out->hidden_size, file);
    if (st) return st;
    /* AdapterHub's defaults for keys a flex-head config may leave out */
    out->bias = 1;
    out->dropout_prob = -1.0;
    const json_t *cfg = json_object_get(root, "config");
    if (cfg && json_is_object(cfg)) {
        if ((st = head_parse_config(out, cfg, file))) return st;
    } else if (!cfg || json_is_null(cfg)) {
        /* an HF static head: the kind comes from the model class, the labels from the top level */
        int tag = strstr(out->model_class, "TokenClassification") != NULL;
        int cls = strstr(out->model_class, "SequenceClassification") != NULL;
        if (!tag && !cls) {
            return xa_error_set(
                XA_STATUS_UNSUPPORTED, xa_io_json_kwhere(where, sizeof where, file, "", "config"),
                "a flex-head config, or a *ForSequenceClassification / "
                "*ForTokenClassification model_class",
                NULL, "static head of model_class '%s' is not supported", out->model_class);
        }
        snprintf(out->head_type, sizeof out->head_type, "%s", tag ? "tagging" : "classification");
        out->layers = tag ? 1 : 2;
        snprintf(out->activation_function, sizeof out->activation_function, "tanh");
        const json_t *nl = json_object_get(root, "num_labels");
        if (nl && !json_is_integer(nl)) {
            return xa_io_json_type_error(file, "", "num_labels", nl, "an integer");
        }
        if (nl) out->num_labels = (int64_t)json_integer_value(nl);
        const json_t *l2i = json_object_get(root, "label2id");
        if (l2i && (st = head_read_label2id(out, l2i, file, ""))) return st;
        if (!nl) out->num_labels = out->n_labels;
    } else {
        return xa_io_json_type_error(file, "", "config", cfg,
                                     "an object (or null for a static head)");
    }
    if (!out->head_type[0]) {
        return xa_error_set(XA_STATUS_CONFIG,
                            xa_io_json_kwhere(where, sizeof where, file, "config.", "head_type"),
                            "\"classification\" or \"tagging\"", NULL, "missing key 'head_type'");
    }
    if ((st = head_validate(out, file))) return st;
    return XA_STATUS_OK;
}

xa_status xa_head_config_parse(xa_head_file_config *out, const char *json, size_t n,
                               const char *name) {
    return xa_io_json_parse_object(out, sizeof *out, json, n, name ? name : "head_config.json",
                                   head_read_root);
}

xa_status xa_head_config_read(xa_head_file_config *out, const char *path) {
    return xa_io_json_read_file(out, sizeof *out, path, head_read_root);
}

xa_status xa_head_config_write(const xa_head_file_config *cfg, const char *path) {
    xa_status st = head_validate(cfg, path);
    if (st) return st;
    xa_head_file_config m = *cfg;
    xa_io_json_meta meta[] = {XA_IO_JSON_META(m)};
    json_t *root = json_object(), *o = json_object();
    int bad = !root || !o;
    /* MultipleChoiceHead takes num_choices, not num_labels (its last layer has one output) */
    const int mc = strcmp(cfg->head_type, "multiple_choice") == 0;
    bad = bad || json_object_set_new(o, "head_type", json_string(cfg->head_type));
    bad = bad || json_object_set_new(o, mc ? "num_choices" : "num_labels", json_integer((json_int_t)cfg->num_labels));
    bad = bad || json_object_set_new(o, "layers", json_integer((json_int_t)cfg->layers));
    bad = bad ||
          json_object_set_new(o, "activation_function",
                              cfg->activation_function[0] ? json_string(cfg->activation_function)
                                                          : json_null());
    /* Only ClassificationHead.__init__ takes use_pooler and bias (adapters 1.2.0,
     * src/adapters/heads/base.py: ClassificationHead line 133, TaggingHead line 315). */
    if (strcmp(cfg->head_type, "classification") == 0 || mc) {
        bad = bad || json_object_set_new(o, "use_pooler", json_boolean(cfg->use_pooler));
    }
    if (strcmp(cfg->head_type, "classification") == 0) { /* MultipleChoiceHead takes no bias */
        bad = bad || json_object_set_new(o, "bias", json_boolean(cfg->bias));
    }
    /* absent rather than null: older AdapterHub heads take no dropout_prob argument */
    if (cfg->dropout_prob >= 0) {
        bad = bad || json_object_set_new(o, "dropout_prob", xa_io_json_real(cfg->dropout_prob));
    }
    json_t *l2i = cfg->n_labels > 0 ? json_object() : json_null();
    for (int i = 0; l2i && !bad && i < cfg->n_labels; i++) {
        bad = json_object_set_new(l2i, cfg->labels[i], json_integer(i)) != 0;
    }
    if (!bad) {
        bad = json_object_set_new(o, "label2id", l2i) != 0;
        bad = json_object_set_new(root, "config", o) != 0 || bad;
    } else {
        json_decref(l2i);
        json_decref(o);
    }
    o = NULL;
    bad = bad || xa_io_json_write_meta(root, meta, sizeof meta / sizeof *meta, cfg->hidden_size);
    if (!bad && cfg->base_fingerprint[0])
        bad = json_object_set_new(root, "xadapt_base_fingerprint", json_string(cfg->base_fingerprint));
    return xa_io_json_write_root(root, bad, path, "cannot build head_config.json");
}
