/* model/hf: Hugging Face model directories (config.json + model.safetensors, or pytorch_model.bin
 * when there is no safetensors file: io/tensorfile.h) in and out.
 * Loads XLM-R / RoBERTa / BERT encoders with or without the "roberta." / "bert." prefix and the
 * MLM head (lm_head.* or cls.predictions.*); tensors in F32, F16 or BF16 (converted to F32).
 * Saves the XLMRobertaForMaskedLM / BertForMaskedLM layout with the decoder tied (left out).
 * Other tensors in a file (pooler, classifier, position_ids buffer) are ignored and logged.
 * LayerNorm parameters under the TensorFlow-era names "gamma" / "beta" (older pytorch_model.bin
 * files, e.g. the original mBERT) are read as "weight" / "bias", as transformers renames them. */
#include "model/model.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/safetensors.h"
#include "io/tensorfile.h"


static const char *arch_prefix(xa_arch arch) { return arch == XA_ARCH_BERT ? "bert." : "roberta."; }

xa_status xa_encoder_config_from_hf(xa_encoder_config *out, const xa_hf_config *hf, const char *where) {
    memset(out, 0, sizeof *out);
    if (!strcmp(hf->model_type, "xlm-roberta") || !strcmp(hf->model_type, "roberta")) {
        out->arch = XA_ARCH_XLMR;
    } else if (!strcmp(hf->model_type, "bert")) {
        out->arch = XA_ARCH_BERT;
    } else {
        return xa_error_set(XA_STATUS_UNSUPPORTED, where, "model_type xlm-roberta, roberta or bert",
                            NULL, "model_type '%s'", hf->model_type);
    }
    if (strcmp(hf->position_embedding_type, "absolute") != 0) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, where, "position_embedding_type \"absolute\"",
                            NULL, "position_embedding_type '%s'", hf->position_embedding_type);
    }
    /* the HF values are int64: check them before they are narrowed to the encoder's int sizes */
    const struct { const char *key; int64_t v; } sizes[] = {
        {"vocab_size", hf->vocab_size}, {"max_position_embeddings", hf->max_position_embeddings},
        {"type_vocab_size", hf->type_vocab_size}, {"hidden_size", hf->hidden_size},
        {"num_hidden_layers", hf->num_hidden_layers}, {"num_attention_heads", hf->num_attention_heads},
        {"intermediate_size", hf->intermediate_size}, {"pad_token_id", hf->pad_token_id},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (sizes[i].v < INT_MIN || sizes[i].v > INT_MAX)
            return xa_error_set(XA_STATUS_CONFIG, where, "a size that fits in 32 bits", NULL,
                                "%s is %" PRId64, sizes[i].key, sizes[i].v);
    out->V = (int)hf->vocab_size;
    out->P = (int)hf->max_position_embeddings;
    out->TV = (int)hf->type_vocab_size;
    out->C = (int)hf->hidden_size;
    out->L = (int)hf->num_hidden_layers;
    out->NH = (int)hf->num_attention_heads;
    out->FF = (int)hf->intermediate_size;
    out->pad_id = hf->pad_token_id >= 0 ? (int)hf->pad_token_id : 0;
    out->eps = (float)hf->layer_norm_eps;
    out->p_hidden = (float)hf->hidden_dropout_prob;
    out->p_attn = (float)hf->attention_probs_dropout_prob;
    xa_status st = xa_act_parse(hf->hidden_act, &out->act);
    if (st) {
        xa_error_prefix("%s: hidden_act", where);
        return st;
    }
    return xa_encoder_config_check(out, where);
}

void xa_encoder_config_to_hf(xa_hf_config *hf, const xa_encoder_config *c) {
    int bert = c->arch == XA_ARCH_BERT;
    xa_hf_config_default(hf, bert ? "bert" : "xlm-roberta");
    hf->n_architectures = 1;
    snprintf(hf->architectures[0], sizeof hf->architectures[0], "%s",
             bert ? "BertForMaskedLM" : "XLMRobertaForMaskedLM");
    hf->vocab_size = c->V;
    hf->max_position_embeddings = c->P;
    hf->type_vocab_size = c->TV;
    hf->hidden_size = c->C;
    hf->num_hidden_layers = c->L;
    hf->num_attention_heads = c->NH;
    hf->intermediate_size = c->FF;
    hf->pad_token_id = c->pad_id;
    hf->layer_norm_eps = c->eps;
    hf->hidden_dropout_prob = c->p_hidden;
    hf->attention_probs_dropout_prob = c->p_attn;
    snprintf(hf->hidden_act, sizeof hf->hidden_act, "%s", xa_act_name(c->act));
}

/* The prefix the file uses for encoder tensors: "roberta.", "bert." or "". */
static const char *find_prefix(const xa_st_file *f, xa_arch arch) {
    char name[256];
    snprintf(name, sizeof name, "%sembeddings.word_embeddings.weight", arch_prefix(arch));
    if (xa_st_find(f, name)) return arch_prefix(arch);
    return "";
}

/* "[a, b, ...]" into buf. */
static void format_shape(char *buf, size_t n, const int64_t *shape, int n_dims) {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < n_dims && len < n; d++) {
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    }
    if (len < n) snprintf(buf + len, n - len, "]");
}

/* Read one tensor (prefix + name) into dst, checking its shape. */
static xa_status read_tensor(const xa_st_file *f, const char *prefix, const char *name,
                             const int64_t *shape, int n_dims, float *dst) {
    char full[320];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const xa_st_tensor *t = xa_st_find(f, full);
    size_t len = strlen(full);
    if (!t && strstr(full, "LayerNorm.") && len > 7 && len < sizeof full - 2) {
        char old[320];
        int w = len > 7 && !strcmp(full + len - 7, ".weight"), b = len > 5 && !strcmp(full + len - 5, ".bias");
        if (w || b) {
            snprintf(old, sizeof old, "%.*s.%s", (int)(len - (w ? 7 : 5)), full, w ? "gamma" : "beta");
            t = xa_st_find(f, old);
        }
    }
    if (!t) {
        return xa_error_set(XA_STATUS_NOT_FOUND, xa_st_path(f), NULL,
                            "is this a Hugging Face XLM-R / RoBERTa / BERT checkpoint?",
                            "tensor '%s' is missing", full);
    }
    int same = t->n_dims == n_dims;
    for (int d = 0; same && d < n_dims; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[160], got[160];
        format_shape(want, sizeof want, shape, n_dims);
        format_shape(got, sizeof got, t->shape, t->n_dims);
        return xa_error_set(XA_STATUS_SHAPE, xa_st_path(f), want,
                            "wrong base model? config.json and the weights file must match",
                            "tensor '%s' has shape %s", full, got);
    }
    return xa_st_tensor_to_f32(t, dst);
}

xa_status xa_encoder_load(xa_encoder *enc, xa_hf_config *hf_out, const char *dir, int trainable) {
    char path[XA_PATH_MAX];
    xa_hf_config hf;
    xa_encoder_config cfg;
    xa_st_file *f = NULL;
    memset(enc, 0, sizeof *enc);
    xa_status st = xa_path_join(path, sizeof path, dir, "config.json");
    if (!st) st = xa_hf_config_read(&hf, path);
    if (!st) st = xa_encoder_config_from_hf(&cfg, &hf, path);
    if (!st) st = xa_tensorfile_pick(path, sizeof path, dir, "model.safetensors", "pytorch_model.bin",
                                     "a Hugging Face model directory holds config.json and one of them");
    if (!st) st = xa_tensorfile_open(&f, path);
    if (!st) st = xa_encoder_init(enc, &cfg, trainable);
    if (st) goto fail;
    const char *prefix = find_prefix(f, cfg.arch);
    for (int i = 0; i < XA_ENC_N_TENSORS && !st; i++) {
        int layers = i >= XA_ENC_QW ? cfg.L : 1;
        for (int l = 0; l < layers && !st; l++) {
            char name[256];
            int64_t shape[2];
            int nd = xa_encoder_tensor_name(enc, i, l, name, sizeof name, shape);
            st = read_tensor(f, prefix, name, shape, nd, xa_encoder_slice(enc, i, l, 0));
        }
    }
    if (st) goto fail;
    if (hf_out) *hf_out = hf;
    xa_st_close(f);
    return XA_STATUS_OK;
fail:
    xa_st_close(f);
    xa_encoder_free(enc);
    return st;
}

xa_status xa_mlm_head_load(xa_mlm_head *head, xa_arch arch, const char *dir) {
    char path[XA_PATH_MAX];
    xa_st_file *f = NULL;
    xa_status st = xa_tensorfile_pick(path, sizeof path, dir, "model.safetensors", "pytorch_model.bin",
                                      NULL);
    if (!st) st = xa_tensorfile_open(&f, path);
    if (st) return st;
    int64_t CC[2] = {head->C, head->C}, C1[1] = {head->C}, V1[1] = {head->V};
    const int64_t *shapes[XA_MLM_N_TENSORS] = {CC, C1, C1, C1, V1};
    for (int i = 0; i < XA_MLM_N_TENSORS && !st; i++) {
        st = read_tensor(f, "", xa_mlm_head_tensor_name(arch, i), shapes[i], i == XA_MLM_DW ? 2 : 1,
                         head->t[i]);
    }
    xa_st_close(f);
    return st;
}

xa_status xa_model_save(const char *dir, const xa_encoder *enc, const xa_mlm_head *head,
                        const xa_hf_config *hf_in) {
    const xa_encoder_config *c = &enc->cfg;
    size_t n_entries = 5 + (size_t)(XA_ENC_N_TENSORS - 5) * (size_t)c->L + (head ? XA_MLM_N_TENSORS : 0);
    xa_st_entry *e = calloc(n_entries, sizeof *e);
    char (*names)[256] = calloc(n_entries, sizeof *names);
    char path[XA_PATH_MAX];
    xa_status st = XA_STATUS_OK;
    if (!e || !names) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_model_save", NULL, NULL, "out of memory");
        goto done;
    }
    const char *prefix = arch_prefix(c->arch);
    size_t k = 0;
    for (int i = 0; i < XA_ENC_N_TENSORS; i++) {
        int layers = i >= XA_ENC_QW ? c->L : 1;
        for (int l = 0; l < layers; l++, k++) {
            char name[200];
            e[k].n_dims = xa_encoder_tensor_name(enc, i, l, name, sizeof name, e[k].shape);
            snprintf(names[k], sizeof names[k], "%s%s", prefix, name);
            e[k].name = names[k];
            e[k].dtype = XA_DTYPE_F32;
            e[k].f32 = xa_encoder_slice(enc, i, l, 0);
        }
    }
    for (int i = 0; head && i < XA_MLM_N_TENSORS; i++, k++) {
        snprintf(names[k], sizeof names[k], "%s", xa_mlm_head_tensor_name(c->arch, i));
        e[k].name = names[k];
        e[k].dtype = XA_DTYPE_F32;
        e[k].n_dims = i == XA_MLM_DW ? 2 : 1;
        e[k].shape[0] = i == XA_MLM_BIAS ? head->V : head->C;
        e[k].shape[1] = head->C;
        e[k].f32 = head->t[i];
    }
    XA_ASSERT(k == n_entries);
    xa_hf_config hf;
    if (hf_in) {
        hf = *hf_in;
    } else {
        xa_encoder_config_to_hf(&hf, c);
    }
    xa_st_kv meta[] = {{"format", "pt"}, {"producer", "xadapt " XA_VERSION_STRING}};
    st = xa_file_mkdirs(dir);
    if (!st) st = xa_path_join(path, sizeof path, dir, "model.safetensors");
    if (!st) st = xa_st_write(path, e, n_entries, meta, 2);
    if (!st) st = xa_path_join(path, sizeof path, dir, "config.json");
    if (!st) st = xa_hf_config_write(&hf, path);
done:
    free(e);
    free(names);
    return st;
}
