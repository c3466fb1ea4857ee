/* hub: AdapterHub adapter, fusion, head and setup files (ADAPTERHUB.md §1.10) in and out.
 *
 * Loading binds every tensor of a file to an expected name, llama.cpp's LoRA loader style: the
 * expected names come from the config (the modules it implies, with AdapterHub's parameter
 * paths), each file tensor is normalised (model prefix stripped, adapter-transformers v1 names
 * renamed), looked up, shape-checked and converted to F32; a tensor that matches nothing, a
 * missing tensor and a wrong shape are errors that name the file and the tensor. The ln_before
 * duplicate of quirk Q4 (adapter_down.0.* holding the LayerNorm again) is written on save and only
 * shape-checked on load. Adapters keep the name their tensors were saved under (the config's
 * "name"), so load_as needs no renaming of tensors.
 *
 * Weights are read from the safetensors file, else from the pytorch_*.bin twin (io/tensorfile.h).
 *
 * Does not: keep tensors of other adapters found in the same file
 * (they are errors), or write model-level config.json "adapters" maps.
 */
#include "hub/hub.h"

#include <inttypes.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "io/file.h"
#include "io/jsonutil.h"
#include "io/safetensors.h"
#include "io/tensorfile.h"

#define NAME_CAP 1280 /* a tensor name: prefix, layer, fusion names of up to 1023 characters */

const char *xa_hub_model_class(xa_arch arch) {
    return arch == XA_ARCH_BERT ? "BertAdapterModel" : "XLMRobertaAdapterModel";
}
const char *xa_hub_model_type(xa_arch arch) {
    return arch == XA_ARCH_BERT ? "bert" : "xlm-roberta";
}
const char *xa_hub_prefix(xa_arch arch) {
    return arch == XA_ARCH_BERT ? "bert." : "roberta.";
}

/* ---- small helpers
 * -------------------------------------------------------------------------------- */

static void format_shape(char *buf, size_t n, const int64_t *shape, int n_dims) {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < n_dims && len < n; d++) {
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    }
    if (len < n) snprintf(buf + len, n - len, "]");
}

/* The last path component of dir, trailing slashes ignored. */
static void base_name(char *buf, size_t n, const char *dir) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    snprintf(buf, n, "%.*s", (int)(len - start), dir + start);
}

static const char *loc_path(int loc) {
    return loc == XA_LOC_ATTN ? "attention.output." : "output.";
}

uint64_t xa_hub_base_fingerprint(const xa_encoder *enc) {
    const xa_encoder_config *c = &enc->cfg;
    const int32_t dims[] = {(int32_t)c->arch, c->V, c->P, c->TV, c->C, c->L, c->NH, c->FF};
    uint64_t h = 14695981039346656037ull;
    const unsigned char *p = (const unsigned char *)dims;
    for (size_t i = 0; i < sizeof dims; i++) h = (h ^ p[i]) * 1099511628211ull;
    const size_t stride = enc->n_params > 65536 ? enc->n_params / 65536 : 1;
    for (size_t i = 0; i < enc->n_params; i += stride) {
        p = (const unsigned char *)&enc->params[i];
        for (size_t k = 0; k < sizeof(float); k++) h = (h ^ p[k]) * 1099511628211ull;
    }
    return h ? h : 1;
}

int xa_hub_check_fingerprint(const char *path, const char *fp, const xa_encoder_config *enc) {
    char want[24];
    if (!fp[0] || !enc->fingerprint) return 0;
    snprintf(want, sizeof want, "%016" PRIx64, enc->fingerprint);
    if (!strcmp(fp, want)) return 0;
    XA_LOG_WARN("%s: made on another base (base fingerprint %s, this base %s); wrong base model?", path, fp, want);
    return 1;
}

/* Check the file's hidden_size and model_type against the encoder. */
static xa_status check_base(const char *path, int64_t hidden_size, const char *model_type,
                            const xa_encoder_config *enc) {
    if (hidden_size != 0 && hidden_size != enc->C) {
        return xa_error_set(XA_STATUS_CONFIG, path, "the encoder's hidden size",
                            "wrong base model? the file was saved for another model size",
                            "hidden_size is %lld, the encoder's is %d", (long long)hidden_size,
                            enc->C);
    }
    if (model_type[0]) {
        int xlmr = strcmp(model_type, "xlm-roberta") == 0 || strcmp(model_type, "roberta") == 0;
        int bert = strcmp(model_type, "bert") == 0;
        if ((enc->arch == XA_ARCH_BERT && !bert) || (enc->arch == XA_ARCH_XLMR && !xlmr)) {
            return xa_error_set(XA_STATUS_CONFIG, path,
                                enc->arch == XA_ARCH_BERT
                                    ? "model_type \"bert\""
                                    : "model_type \"xlm-roberta\" or \"roberta\"",
                                "wrong base model? the file was saved for another architecture",
                                "model_type is '%s'", model_type);
        }
    }
    return XA_STATUS_OK;
}

/* The weights file of dir: the safetensors form when present (as Hugging Face prefers it), else
 * the PyTorch pickle form (io/torchbin.h). */
static xa_status check_weights_file(const char *dir, const char *st_name, const char *bin_name,
                                    char *path, size_t cap) {
    return xa_tensorfile_pick(path, cap, dir, st_name, bin_name,
                              "is this an AdapterHub directory (saved by save_adapter, "
                              "save_adapter_fusion or save_head)?");
}

/* ---- writing: a list of tensors
 * ------------------------------------------------------------------ */

typedef struct entry_list {
    xa_st_entry *e;
    char (*names)[NAME_CAP];
    size_t n, cap;
} entry_list;

static xa_status el_add(entry_list *l, const char *name, const float *data, const int64_t *shape,
                        int nd) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        xa_st_entry *e = realloc(l->e, cap * sizeof *e);
        if (e) l->e = e;
        char(*names)[NAME_CAP] = realloc(l->names, cap * sizeof *names);
        if (names) l->names = names;
        if (!e || !names) return xa_error_set(XA_STATUS_NOMEM, "hub", NULL, NULL, "out of memory");
        l->cap = cap;
    }
    xa_st_entry *e = &l->e[l->n];
    memset(e, 0, sizeof *e);
    snprintf(l->names[l->n], NAME_CAP, "%s", name);
    e->dtype = XA_DTYPE_F32;
    e->n_dims = nd;
    for (int d = 0; d < nd; d++)
        e->shape[d] = shape[d];
    e->f32 = data;
    l->n++;
    return XA_STATUS_OK;
}

static xa_status el_write(entry_list *l, const char *path) {
    for (size_t i = 0; i < l->n; i++)
        l->e[i].name = l->names[i];
    xa_st_kv meta = {"format", "pt"};
    return xa_st_write(path, l->e, l->n, &meta, 1);
}

static void el_free(entry_list *l) {
    free(l->e);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* ---- reading: a table of expected tensors ------------------------------------------------------
 */

typedef struct expect {
    char name[NAME_CAP]; /* without the model prefix */
    float *dst;          /* NULL: an alias, shape-checked only */
    int n_dims;
    int64_t shape[3];
    int seen;
} expect;

typedef struct expect_set {
    expect *e;
    size_t n, cap;
} expect_set;

static xa_status ex_add(expect_set *s, const char *name, float *dst, const int64_t *shape, int nd) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        expect *e = realloc(s->e, cap * sizeof *e);
        if (!e) return xa_error_set(XA_STATUS_NOMEM, "hub", NULL, NULL, "out of memory");
        s->e = e;
        s->cap = cap;
    }
    expect *x = &s->e[s->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->dst = dst;
    x->n_dims = nd;
    for (int d = 0; d < nd && d < 3; d++)
        x->shape[d] = shape[d];
    return XA_STATUS_OK;
}

static int ex_cmp(const void *a, const void *b) {
    return strcmp(((const expect *)a)->name, ((const expect *)b)->name);
}

/* Replace the first `from` in s by `to` (in place, s has NAME_CAP bytes). */
static void replace_once(char *s, const char *from, const char *to) {
    char *p = strstr(s, from);
    if (!p) return;
    char tmp[NAME_CAP];
    snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    snprintf(s, NAME_CAP, "%s", tmp);
}

/* The tensor's name without the model prefix and with v1 names renamed (§1.10). */
static void normalise(char *out, const char *name, const char *prefix) {
    static const char *const legacy[][2] = {
        {"layer_text_lang_adapters.", "adapters."},
        {"layer_text_task_adapters.", "adapters."},
        {"attention_text_lang_adapters.", "adapters."},
        {"attention_text_task_adapters.", "adapters."},
        {"invertible_lang_adapters.", "invertible_adapters."},
    };
    size_t pl = strlen(prefix);
    snprintf(out, NAME_CAP, "%s", strncmp(name, prefix, pl) == 0 ? name + pl : name);
    for (size_t i = 0; i < sizeof legacy / sizeof *legacy; i++) {
        replace_once(out, legacy[i][0], legacy[i][1]);
    }
}

/* Bind every tensor of an open file to the expected set. `what` names the object in hints. */
static xa_status ex_load(expect_set *s, const xa_st_file *f, const char *prefix, const char *what) {
    const char *path = xa_st_path(f);
    char want[96], got[96];
    qsort(s->e, s->n, sizeof *s->e, ex_cmp);
    for (size_t i = 0; i < xa_st_count(f); i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        expect key;
        normalise(key.name, t->name, prefix);
        expect *x = bsearch(&key, s->e, s->n, sizeof *s->e, ex_cmp);
        if (!x) {
            int other = strncmp(t->name, "roberta.", 8) == 0 || strncmp(t->name, "bert.", 5) == 0;
            return xa_error_set(XA_STATUS_CONFIG, path, NULL,
                                other ? "wrong base model? the tensor has another model's prefix"
                                      : "the config and the weights do not match: was the file "
                                        "saved with another config, or does it hold another "
                                        "adapter?",
                                "unknown tensor '%s': no part of %s has this name", t->name, what);
        }
        if (x->seen) {
            return xa_error_set(XA_STATUS_FORMAT, path, "each tensor once", NULL,
                                "tensor '%s' appears twice (with and without the prefix, or under "
                                "a v1 name)",
                                t->name);
        }
        x->seen = 1;
        int same = t->n_dims == x->n_dims;
        for (int d = 0; same && d < x->n_dims; d++)
            same = t->shape[d] == x->shape[d];
        if (!same) {
            format_shape(want, sizeof want, x->shape, x->n_dims);
            format_shape(got, sizeof got, t->shape, t->n_dims);
            return xa_error_set(XA_STATUS_SHAPE, path, want,
                                "wrong base model, or a config that does not match the weights "
                                "(reduction_factor, phm_dim)?",
                                "tensor '%s' has shape %s", t->name, got);
        }
        if (x->dst) {
            xa_status st = xa_st_tensor_to_f32(t, x->dst);
            if (st) return st;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!s->e[i].seen && s->e[i].dst) {
            return xa_error_set(XA_STATUS_NOT_FOUND, path, NULL,
                                "the config and the weights do not match: was the file saved with "
                                "another config, or is it truncated?",
                                "tensor '%s%s' of %s is missing", prefix, s->e[i].name, what);
        }
    }
    return XA_STATUS_OK;
}

/* ---- adapters ----------------------------------------------------------------------------------
 */

typedef xa_status (*tensor_fn)(void *ctx, const char *name, float *data, const int64_t *shape,
                               int nd);

/* Visit every tensor of a (names without the model prefix, under adapter name `aname`), the
 * ln_before alias with data NULL. */
static xa_status adapter_walk(const xa_adapter *a, const char *aname, tensor_fn fn, void *ctx) {
    char name[NAME_CAP];
    int64_t shape[3];
    xa_status st;
    for (int l = 0; l < a->L; l++) {
        for (int loc = 0; loc < 2; loc++) {
            const xa_bneck *m = &a->mods[2 * l + loc];
            if (!a->present[2 * l + loc]) continue;
            for (int i = 0; i < XA_BNECK_N_TENSORS; i++) {
                const char *tn = xa_bneck_tensor_name(m, i);
                if (!tn) continue;
                int nd = xa_bneck_tensor_shape(m, i, shape);
                snprintf(name, sizeof name, "encoder.layer.%d.%sadapters.%s.%s", l, loc_path(loc),
                         aname, tn);
                if ((st = fn(ctx, name, m->t[i], shape, nd))) return st;
                const char *alias = xa_bneck_tensor_alias(m, i);
                if (alias) {
                    snprintf(name, sizeof name, "encoder.layer.%d.%sadapters.%s.%s", l,
                             loc_path(loc), aname, alias);
                    if ((st = fn(ctx, name, NULL, shape, nd))) return st;
                }
            }
        }
    }
    if (a->has_inv) {
        for (int i = 0; i < XA_INV_N_TENSORS; i++) {
            const char *tn = xa_inv_tensor_name(&a->inv, i);
            if (!tn) continue;
            int64_t s2[2];
            int nd = xa_inv_tensor_shape(&a->inv, i, s2);
            shape[0] = s2[0];
            shape[1] = s2[1];
            snprintf(name, sizeof name, "invertible_adapters.%s.%s", aname, tn);
            if ((st = fn(ctx, name, a->inv.t[i], shape, nd))) return st;
        }
    }
    if (a->phm_rule) {
        shape[0] = shape[1] = shape[2] = a->phm_n;
        snprintf(name, sizeof name, "shared_parameters.%s.phm_rule", aname);
        if ((st = fn(ctx, name, a->phm_rule, shape, 3))) return st;
    }
    return XA_STATUS_OK;
}

typedef struct save_ctx {
    entry_list list;
    const char *prefix;
    /* the alias duplicates the LayerNorm visited just before it */
    const float *last;
} save_ctx;

static xa_status save_visit(void *p, const char *name, float *data, const int64_t *shape, int nd) {
    save_ctx *c = p;
    char full[NAME_CAP];
    snprintf(full, sizeof full, "%s%s", c->prefix, name);
    const float *d = data ? data : c->last;
    c->last = data;
    return el_add(&c->list, full, d, shape, nd);
}

static xa_status expect_visit(void *p, const char *name, float *data, const int64_t *shape,
                              int nd) {
    return ex_add(p, name, data, shape, nd);
}

xa_status xa_hub_save_adapter(const char *dir, const xa_adapter *a, const xa_encoder_config *enc,
                              const char *model_name) {
    char path[XA_PATH_MAX];
    xa_adapter_file_config fc;
    memset(&fc, 0, sizeof fc);
    fc.config = a->cfg;
    fc.hidden_size = a->C;
    snprintf(fc.model_class, sizeof fc.model_class, "%s", xa_hub_model_class(enc->arch));
    snprintf(fc.model_type, sizeof fc.model_type, "%s", xa_hub_model_type(enc->arch));
    snprintf(fc.model_name, sizeof fc.model_name, "%s", model_name ? model_name : "");
    snprintf(fc.name, sizeof fc.name, "%s", a->name);
    if (enc->fingerprint) snprintf(fc.base_fingerprint, sizeof fc.base_fingerprint, "%016" PRIx64, enc->fingerprint);
    xa_status st = xa_bn_config_validate(&a->cfg, dir);
    if (st) return st;
    if (a->C != enc->C || a->L != enc->L) {
        return xa_error_set(XA_STATUS_USAGE, "xa_hub_save_adapter", NULL, NULL,
                            "adapter '%s' is built for L %d, C %d; the encoder has L %d, C %d",
                            a->name, a->L, a->C, enc->L, enc->C);
    }
    save_ctx c = {.prefix = xa_hub_prefix(enc->arch)};
    if ((st = xa_file_mkdirs(dir))) return st;
    if ((st = adapter_walk(a, a->name, save_visit, &c))) goto done;
    if ((st = xa_path_join(path, sizeof path, dir, "adapter.safetensors"))) goto done;
    if ((st = el_write(&c.list, path))) goto done;
    if ((st = xa_path_join(path, sizeof path, dir, "adapter_config.json"))) goto done;
    st = xa_adapter_config_write(&fc, path);
done:
    el_free(&c.list);
    return st;
}

/* The adapter name the tensors of f were saved under, when the config does not say. */
static void detect_name(char *out, size_t n, const xa_st_file *f, const char *prefix) {
    static const char *const marks[] = {".adapters.", "invertible_adapters.", "shared_parameters."};
    char norm[NAME_CAP];
    out[0] = '\0';
    for (size_t i = 0; i < xa_st_count(f); i++) {
        normalise(norm, xa_st_at(f, i)->name, prefix);
        for (size_t k = 0; k < sizeof marks / sizeof *marks; k++) {
            const char *p = strstr(norm, marks[k]);
            if (!p || (k > 0 && p != norm)) continue;
            p += strlen(marks[k]);
            const char *dot = strchr(p, '.');
            if (dot) {
                snprintf(out, n, "%.*s", (int)(dot - p), p);
                return;
            }
        }
    }
}

static int has_inv_tensors(const xa_st_file *f, const char *prefix) {
    char norm[NAME_CAP];
    for (size_t i = 0; i < xa_st_count(f); i++) {
        normalise(norm, xa_st_at(f, i)->name, prefix);
        if (strncmp(norm, "invertible_adapters.", 20) == 0) return 1;
    }
    return 0;
}

xa_status xa_hub_load_adapter(xa_composer *cp, const char *dir, const char *load_as,
                              const int *leave_out, int n_leave_out, int trainable,
                              xa_adapter **out) {
    const xa_encoder_config *enc = xa_composer_encoder_config(cp);
    const char *prefix = xa_hub_prefix(enc->arch);
    char cpath[XA_PATH_MAX], wpath[XA_PATH_MAX], name[XA_NAME_MAX], fname[XA_NAME_MAX];
    xa_adapter_file_config *fc = malloc(sizeof *fc);
    xa_adapter *a = calloc(1, sizeof *a);
    xa_st_file *f = NULL;
    expect_set ex = {0};
    xa_status st;
    if (out) *out = NULL;
    if (!fc || !a) {
        st = xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
        goto fail;
    }
    if ((st = xa_path_join(cpath, sizeof cpath, dir, "adapter_config.json"))) goto fail;
    if ((st = xa_adapter_config_read(fc, cpath))) {
        if (st == XA_STATUS_NOT_FOUND) {
            st = xa_error_set(st, cpath, NULL,
                              "is this an AdapterHub adapter directory (adapter_config.json + "
                              "adapter.safetensors)?",
                              "missing file adapter_config.json");
        }
        goto fail;
    }
    if ((st = check_base(cpath, fc->hidden_size, fc->model_type, enc))) goto fail;
    xa_hub_check_fingerprint(cpath, fc->base_fingerprint, enc);
    for (int k = 0; k < n_leave_out; k++) {
        if (leave_out[k] < 0 || leave_out[k] >= enc->L) {
            st =
                xa_error_set(XA_STATUS_USAGE, "xa_hub_load_adapter", "layer ids in [0, L)", NULL,
                             "leave_out holds %d; the encoder has %d layers", leave_out[k], enc->L);
            goto fail;
        }
    }
    if ((st = check_weights_file(dir, "adapter.safetensors", "pytorch_adapter.bin", wpath,
                                 sizeof wpath))) {
        goto fail;
    }
    if ((st = xa_tensorfile_open(&f, wpath))) goto fail;

    const char *nm = load_as && load_as[0] ? load_as : fc->name;
    char base[XA_PATH_MAX];
    base_name(base, sizeof base, dir);
    if (!nm[0]) nm = base;
    if (strlen(nm) >= sizeof name) {
        st = xa_error_set(XA_STATUS_USAGE, cpath, "an adapter name under 64 characters",
                          "give a shorter name with load_as", "adapter name '%s' is too long", nm);
        goto fail;
    }
    if ((st = xa_name_check(nm, 0, "adapter name", cpath))) goto fail;
    memcpy(name, nm, strlen(nm) + 1);
    /* the name inside the tensor names: the config's (the name at save time), else the file's */
    if (fc->name[0]) {
        snprintf(fname, sizeof fname, "%.*s", (int)sizeof fname - 1, fc->name);
    } else {
        detect_name(fname, sizeof fname, f, prefix);
        if (!fname[0]) snprintf(fname, sizeof fname, "%s", name);
    }

    if (fc->config.inv_adapter != XA_BN_INV_NONE && !has_inv_tensors(f, prefix)) {
        /* legacy v1 task adapters: "pfeiffer" implied an invertible adapter they never had */
        XA_LOG_WARN("%s: the config names an invertible adapter (inv_adapter) but %s holds none%s; "
                    "loading adapter '%s' without it",
                    cpath, wpath,
                    strcmp(fc->type, "text_task") == 0 ? " (a legacy text_task adapter)" : "",
                    name);
        fc->config.inv_adapter = XA_BN_INV_NONE;
        fc->config.inv_adapter_reduction_factor = 0;
    }
    if ((st = xa_adapter_init(a, name, &fc->config, enc->L, enc->C, trainable, cpath))) goto fail;
    if ((st = adapter_walk(a, fname, expect_visit, &ex))) goto fail;
    char what[XA_NAME_MAX + 32];
    snprintf(what, sizeof what, "adapter '%s'", fname);
    if ((st = ex_load(&ex, f, prefix, what))) goto fail;
    if (n_leave_out > 0) xa_adapter_leave_out(a, leave_out, n_leave_out);
    xa_st_close(f);
    free(ex.e);
    free(fc);
    st = xa_composer_take_adapter(cp, a); /* frees a on failure */
    if (!st && out) *out = a;
    return st;
fail:
    xa_st_close(f);
    free(ex.e);
    free(fc);
    xa_adapter_free(a);
    free(a);
    return st;
}

/* ---- fusion layers ------------------------------------------------------------------------------
 */

/* Visit the fusion tensors (names without the model prefix). */
static xa_status fusion_walk(const xa_fusion_layer *fl, tensor_fn fn, void *ctx) {
    char name[NAME_CAP];
    xa_status st;
    for (int l = 0; l < fl->L; l++) {
        for (int loc = 0; loc < 2; loc++) {
            const xa_fusion *m = &fl->mods[2 * l + loc];
            if (!fl->present[2 * l + loc]) continue;
            for (int i = 0; i < XA_FUSION_N_TENSORS; i++) {
                const char *tn = xa_fusion_tensor_name(m, i);
                if (!tn || !m->t[i]) continue;
                int64_t shape[2] = {fl->C, fl->C};
                int nd = strstr(tn, "bias") ? 1 : 2;
                snprintf(name, sizeof name, "encoder.layer.%d.%sadapter_fusion_layer.%s.%s", l,
                         loc_path(loc), fl->name, tn);
                if ((st = fn(ctx, name, m->t[i], shape, nd))) return st;
            }
        }
    }
    return XA_STATUS_OK;
}

xa_status xa_hub_save_fusion(const char *dir, const xa_fusion_layer *fl,
                             const xa_encoder_config *enc, const char *model_name) {
    char path[XA_PATH_MAX], joined[sizeof fl->name];
    xa_fusion_file_config *fc = calloc(1, sizeof *fc);
    if (!fc) return xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
    fc->config = fl->cfg;
    fc->hidden_size = fl->C;
    snprintf(fc->model_class, sizeof fc->model_class, "%s", xa_hub_model_class(enc->arch));
    snprintf(fc->model_type, sizeof fc->model_type, "%s", xa_hub_model_type(enc->arch));
    snprintf(fc->model_name, sizeof fc->model_name, "%s", model_name ? model_name : "");
    snprintf(fc->name, sizeof fc->name, "%s", fl->name);
    if (enc->fingerprint) snprintf(fc->base_fingerprint, sizeof fc->base_fingerprint, "%016" PRIx64, enc->fingerprint);
    size_t k = 0;
    for (int i = 0; i < fl->n; i++) {
        k += (size_t)snprintf(joined + k, sizeof joined - k, "%s%s", i ? "," : "", fl->adapters[i]);
    }
    if (strcmp(joined, fl->name) != 0) { /* an explicit name: keep the adapter list beside it */
        fc->n_adapters = fl->n;
        for (int i = 0; i < fl->n; i++) {
            snprintf(fc->adapters[i], sizeof fc->adapters[i], "%s", fl->adapters[i]);
        }
    }
    save_ctx c = {.prefix = xa_hub_prefix(enc->arch)};
    xa_status st = xa_file_mkdirs(dir);
    if (!st) st = fusion_walk(fl, save_visit, &c);
    if (!st) st = xa_path_join(path, sizeof path, dir, "model_adapter_fusion.safetensors");
    if (!st) st = el_write(&c.list, path);
    if (!st) st = xa_path_join(path, sizeof path, dir, "adapter_fusion_config.json");
    if (!st) st = xa_fusion_config_write(fc, path);
    el_free(&c.list);
    free(fc);
    return st;
}

xa_status xa_hub_load_fusion(xa_composer *cp, const char *dir, int trainable,
                             xa_fusion_layer **out) {
    const xa_encoder_config *enc = xa_composer_encoder_config(cp);
    const char *prefix = xa_hub_prefix(enc->arch);
    char cpath[XA_PATH_MAX], wpath[XA_PATH_MAX];
    xa_fusion_file_config *fc = calloc(1, sizeof *fc);
    xa_fusion_layer *fl = calloc(1, sizeof *fl);
    xa_st_file *f = NULL;
    expect_set ex = {0};
    xa_status st;
    if (out) *out = NULL;
    if (!fc || !fl) {
        st = xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
        goto fail;
    }
    if ((st = xa_path_join(cpath, sizeof cpath, dir, "adapter_fusion_config.json"))) goto fail;
    if ((st = xa_fusion_config_read(fc, cpath))) goto fail;
    if ((st = check_base(cpath, fc->hidden_size, fc->model_type, enc))) goto fail;
    xa_hub_check_fingerprint(cpath, fc->base_fingerprint, enc);
    if (!fc->name[0]) base_name(fc->name, sizeof fc->name, dir);
    if ((st = xa_name_check(fc->name, 1, "fusion name", cpath))) goto fail;
    /* the fused adapters: adapter_names, else the comma-separated name */
    char names[XA_SETUP_MAX_CHILDREN][XA_NAME_MAX];
    int n = 0;
    if (fc->n_adapters > 0) {
        for (int i = 0; i < fc->n_adapters && i < XA_SETUP_MAX_CHILDREN; i++, n++) {
            snprintf(names[i], sizeof names[i], "%.*s", XA_NAME_MAX - 1, fc->adapters[i]);
        }
    } else {
        const char *p = fc->name;
        while (*p && n < XA_SETUP_MAX_CHILDREN) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            snprintf(names[n++], XA_NAME_MAX, "%.*s",
                     (int)(len < XA_NAME_MAX ? len : XA_NAME_MAX - 1), p);
            p += len + (comma ? 1 : 0);
        }
    }
    const xa_adapter *ads[XA_SETUP_MAX_CHILDREN];
    for (int i = 0; i < n; i++) {
        ads[i] = xa_composer_adapter(cp, names[i]);
        if (!ads[i]) {
            st = xa_error_set(XA_STATUS_NOT_FOUND, cpath, NULL,
                              "load the fused adapters before their fusion layer",
                              "fusion '%s' fuses adapter '%s', which is not loaded", fc->name,
                              names[i]);
            goto fail;
        }
    }
    if ((st = xa_fusion_layer_init(fl, fc->name, ads, n, &fc->config, enc->L, enc->C, enc->p_attn,
                                   trainable, cpath))) {
        goto fail;
    }
    if ((st = check_weights_file(dir, "model_adapter_fusion.safetensors",
                                 "pytorch_model_adapter_fusion.bin", wpath, sizeof wpath))) {
        goto fail;
    }
    if ((st = xa_tensorfile_open(&f, wpath))) goto fail;
    if ((st = fusion_walk(fl, expect_visit, &ex))) goto fail;
    char what[1100];
    snprintf(what, sizeof what, "fusion '%s'", fl->name);
    if ((st = ex_load(&ex, f, prefix, what))) goto fail;
    xa_st_close(f);
    free(ex.e);
    free(fc);
    st = xa_composer_take_fusion(cp, fl);
    if (!st && out) *out = fl;
    return st;
fail:
    xa_st_close(f);
    free(ex.e);
    free(fc);
    xa_fusion_layer_free(fl);
    free(fl);
    return st;
}

/* ---- heads
 * ---------------------------------------------------------------------------------------- */

static xa_status head_walk(const xa_head *h, const char *name, tensor_fn fn, void *ctx) {
    char tn[NAME_CAP];
    xa_status st;
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        if (!h->t[i] || !h->numel[i]) continue;
        int weight = i == XA_HEAD_W1 || i == XA_HEAD_W2;
        int64_t shape[2] = {weight ? (int64_t)(h->numel[i] / (size_t)h->C) : (int64_t)h->numel[i],
                            h->C};
        snprintf(tn, sizeof tn, "heads.%s.%d.%s", name, xa_head_module_index(h, i),
                 weight ? "weight" : "bias");
        if ((st = fn(ctx, tn, h->t[i], shape, weight ? 2 : 1))) return st;
    }
    return XA_STATUS_OK;
}

xa_status xa_hub_save_head(const char *dir, const xa_head *h, const char *name,
                           const char *const *labels, int n_labels, const xa_encoder_config *enc,
                           const char *model_name) {
    char path[XA_PATH_MAX];
    if (!name || !name[0] || strlen(name) >= 128 || (n_labels && n_labels != h->K) ||
        n_labels > XA_HEAD_MAX_LABELS) {
        return xa_error_set(XA_STATUS_USAGE, "xa_hub_save_head",
                            "a head name of 1 to 127 characters and 0 or K labels", NULL,
                            "name '%s', %d labels for %d classes", name ? name : "(null)", n_labels,
                            h->K);
    }
    xa_head_file_config *fc = calloc(1, sizeof *fc);
    if (!fc) return xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
    int cls = h->kind != XA_HEAD_TAGGING && h->kind != XA_HEAD_QUESTION_ANSWERING; /* two layers */
    snprintf(fc->head_type, sizeof fc->head_type, "%s",
             h->kind == XA_HEAD_MULTIPLE_CHOICE      ? "multiple_choice"
             : h->kind == XA_HEAD_QUESTION_ANSWERING ? "question_answering"
             : cls                                   ? "classification"
                                                     : "tagging");
    fc->num_labels = h->K;
    fc->layers = cls ? 2 : 1;
    snprintf(fc->activation_function, sizeof fc->activation_function, "tanh");
    fc->use_pooler = 0;
    fc->bias = 1;
    fc->dropout_prob = h->p_drop;
    fc->n_labels = n_labels;
    for (int i = 0; i < n_labels; i++) {
        if (strlen(labels[i]) >= sizeof fc->labels[i]) {
            free(fc);
            return xa_error_set(XA_STATUS_USAGE, "xa_hub_save_head", "labels under 64 characters",
                                NULL, "label %d is %zu characters", i, strlen(labels[i]));
        }
        snprintf(fc->labels[i], sizeof fc->labels[i], "%s", labels[i]);
    }
    fc->hidden_size = h->C;
    snprintf(fc->model_class, sizeof fc->model_class, "%s", xa_hub_model_class(enc->arch));
    snprintf(fc->model_type, sizeof fc->model_type, "%s", xa_hub_model_type(enc->arch));
    snprintf(fc->model_name, sizeof fc->model_name, "%s", model_name ? model_name : "");
    snprintf(fc->name, sizeof fc->name, "%s", name);
    if (enc->fingerprint) snprintf(fc->base_fingerprint, sizeof fc->base_fingerprint, "%016" PRIx64, enc->fingerprint);
    save_ctx c = {.prefix = ""};
    xa_status st = xa_file_mkdirs(dir);
    if (!st) st = head_walk(h, name, save_visit, &c);
    if (!st) st = xa_path_join(path, sizeof path, dir, "model_head.safetensors");
    if (!st) st = el_write(&c.list, path);
    if (!st) st = xa_path_join(path, sizeof path, dir, "head_config.json");
    if (!st) st = xa_head_config_write(fc, path);
    el_free(&c.list);
    free(fc);
    return st;
}

xa_status xa_hub_load_head(const char *dir, xa_head *head, int max_batch, int max_T, int trainable,
                           xa_head_file_config *cfg_out) {
    char cpath[XA_PATH_MAX], wpath[XA_PATH_MAX], name[128];
    xa_head_file_config *fc = calloc(1, sizeof *fc);
    xa_st_file *f = NULL;
    expect_set ex = {0};
    xa_status st;
    memset(head, 0, sizeof *head);
    if (!fc) return xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
    if ((st = xa_path_join(cpath, sizeof cpath, dir, "head_config.json"))) goto fail;
    if ((st = xa_head_config_read(fc, cpath))) goto fail;
    if ((st = check_weights_file(dir, "model_head.safetensors", "pytorch_model_head.bin", wpath,
                                 sizeof wpath))) {
        goto fail;
    }
    if ((st = xa_tensorfile_open(&f, wpath))) goto fail;
    snprintf(name, sizeof name, "%s", fc->name);
    if (!name[0] && xa_st_count(f) > 0) { /* "heads.NAME.k.weight" */
        const char *t = xa_st_at(f, 0)->name;
        const char *dot = strncmp(t, "heads.", 6) == 0 ? strrchr(t, '.') : NULL;
        if (dot) { /* drop ".k.weight" */
            const char *p = dot - 1;
            while (p > t + 6 && *p != '.')
                p--;
            snprintf(name, sizeof name, "%.*s", (int)(p - (t + 6)), t + 6);
        }
    }
    const xa_head_kind kind = !strcmp(fc->head_type, "classification")       ? XA_HEAD_CLASSIFICATION
                              : !strcmp(fc->head_type, "multiple_choice")    ? XA_HEAD_MULTIPLE_CHOICE
                              : !strcmp(fc->head_type, "question_answering") ? XA_HEAD_QUESTION_ANSWERING
                                                                              : XA_HEAD_TAGGING;
    if (kind == XA_HEAD_MULTIPLE_CHOICE && fc->n_labels == 0) { /* AdapterHub's default id2label None */
        fc->n_labels = (int)fc->num_labels;
        for (int i = 0; i < fc->n_labels; i++) snprintf(fc->labels[i], sizeof fc->labels[i], "%d", i);
    }
    if (kind == XA_HEAD_QUESTION_ANSWERING && fc->n_labels == 0) { /* label2id None: the two logits */
        fc->n_labels = 2;
        snprintf(fc->labels[0], sizeof fc->labels[0], "start");
        snprintf(fc->labels[1], sizeof fc->labels[1], "end");
    }
    int64_t C = fc->hidden_size;
    if (C <= 0) { /* no hidden_size in the file: the first dense layer's input width */
        char wn[NAME_CAP];
        snprintf(wn, sizeof wn, "heads.%s.1.weight", name);
        const xa_st_tensor *t = xa_st_find(f, wn);
        if (!t || t->n_dims != 2) {
            st = xa_error_set(XA_STATUS_NOT_FOUND, wpath, NULL,
                              "the head config has no hidden_size either", "tensor '%s' is missing",
                              wn);
            goto fail;
        }
        C = t->shape[1];
    }
    float p = fc->dropout_prob >= 0 ? (float)fc->dropout_prob : 0.1f;
    if ((st = xa_head_init(head, kind, (int)C,
                           (int)fc->num_labels, p, max_batch, max_T, trainable))) {
        goto fail;
    }
    if ((st = head_walk(head, name, expect_visit, &ex))) goto fail;
    char what[160];
    snprintf(what, sizeof what, "head '%s'", name);
    if ((st = ex_load(&ex, f, "", what))) goto fail;
    if (cfg_out) *cfg_out = *fc;
    xa_st_close(f);
    free(ex.e);
    free(fc);
    return XA_STATUS_OK;
fail:
    xa_st_close(f);
    free(ex.e);
    free(fc);
    xa_head_free(head);
    return st;
}

/* ---- adapter_setup.json -----------------------------------------------------------------------
 */

static const char *const g_block_names[] = {"single",     "Stack",    "Fuse",   "Split",
                                            "BatchSplit", "Parallel", "Average"};

static json_t *setup_to_json(const xa_setup *s) {
    json_t *o = json_object(), *ch = json_array(), *kw = NULL;
    int bad = !o || !ch;
    bad = bad || json_object_set_new(o, "type", json_string(g_block_names[s->kind]));
    if (s->kind == XA_BLOCK_ADAPTER) {
        bad = bad || json_array_append_new(ch, json_string(s->name));
    } else {
        for (int i = 0; !bad && i < s->n; i++) {
            json_t *c = setup_to_json(s->child[i]);
            bad = !c || json_array_append_new(ch, c);
        }
        kw = json_object();
        bad = bad || !kw;
        json_t *arr = NULL;
        if (s->kind == XA_BLOCK_SPLIT || s->kind == XA_BLOCK_BATCHSPLIT) {
            arr = json_array();
            for (int i = 0; arr && !bad && i < s->n; i++) {
                bad = json_array_append_new(arr, json_integer(s->sizes[i]));
            }
            bad = bad || json_object_set_new(
                             kw, s->kind == XA_BLOCK_SPLIT ? "splits" : "batch_sizes", arr);
        } else if (s->kind == XA_BLOCK_AVERAGE) {
            arr = json_array();
            for (int i = 0; arr && !bad && i < s->n; i++) {
                bad = json_array_append_new(arr, xa_io_json_real(s->weights[i]));
            }
            bad = bad || json_object_set_new(kw, "weights", arr);
            bad = bad || json_object_set_new(kw, "normalize_weights", json_true());
        } else if (s->kind == XA_BLOCK_FUSE && s->name[0]) {
            bad = bad || json_object_set_new(kw, "name", json_string(s->name));
        }
        bad = bad || json_object_set_new(o, "kwargs", kw);
    }
    bad = bad || json_object_set_new(o, "children", ch);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

xa_status xa_hub_save_setup(const char *path, const xa_setup *s, const char *head) {
    xa_status st;
    if (s && (st = xa_setup_check(s, path))) return st;
    json_t *root = json_object();
    json_t *tree = s ? setup_to_json(s) : json_null();
    int bad = !root || !tree;
    if (!bad) {
        bad = json_object_set_new(root, "adapter_setup", tree) != 0;
    } else {
        json_decref(tree);
    }
    bad = bad || json_object_set_new(root, "head_setup",
                                     head && head[0] ? json_string(head) : json_null());
    bad = bad || json_object_set_new(root, "version", json_string(XA_ADAPTERS_VERSION));
    if (bad) {
        st = xa_error_set(XA_STATUS_CONFIG, path, "valid UTF-8 names", NULL,
                          "cannot build adapter_setup.json");
    } else {
        st = xa_io_json_dump_file(root, path);
    }
    json_decref(root);
    return st;
}

static xa_status setup_err(const char *path, const char *at, const char *expected,
                           const char *what) {
    char where[2 * XA_ERROR_FIELD + 4]; /* xa_error_set truncates */
    snprintf(where, sizeof where, "%s: %s", path, at);
    return xa_error_set(XA_STATUS_CONFIG, where, expected, NULL, "%s", what);
}

/* A Split / BatchSplit size: checked before it is narrowed to int. */
static xa_status setup_size(const char *path, const char *at, const json_t *x) {
    json_int_t v = json_integer_value(x);
    if (v >= 1 && v <= XA_SETUP_MAX_SIZE) return XA_STATUS_OK;
    char what[64];
    snprintf(what, sizeof what, "size %" JSON_INTEGER_FORMAT, v);
    return setup_err(path, at, "sizes from 1 to 1048576", what);
}

/* Read one node at JSON path `at` into *out (calloc'ed, freed with xa_setup_free). */
static xa_status setup_from_json(xa_setup **out, const json_t *v, const char *path, const char *at,
                                 int depth) {
    char sub[XA_ERROR_FIELD], what[XA_ERROR_FIELD];
    *out = NULL;
    if (depth > XA_SETUP_MAX_DEPTH)
        return setup_err(path, at, "at most 8 levels", "setup nested too deep");
    if (json_is_string(v)) { /* a plain adapter name */
        const char *nm = json_string_value(v);
        if (!nm[0] || strlen(nm) >= XA_NAME_MAX) {
            return setup_err(path, at, "an adapter name of 1 to 63 characters", "bad adapter name");
        }
        xa_setup *s = calloc(1, sizeof *s);
        if (!s) return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
        s->kind = XA_BLOCK_ADAPTER;
        snprintf(s->name, sizeof s->name, "%s", nm);
        *out = s;
        return XA_STATUS_OK;
    }
    if (!json_is_object(v)) {
        snprintf(what, sizeof what, "found %s", xa_io_json_kind(v));
        return setup_err(path, at, "an adapter name or {\"type\", \"children\", \"kwargs\"}", what);
    }
    const json_t *type = json_object_get(v, "type"), *ch = json_object_get(v, "children");
    const json_t *kw = json_object_get(v, "kwargs");
    int kind = -1;
    for (int k = 0; json_is_string(type) && k < (int)(sizeof g_block_names / sizeof *g_block_names);
         k++) {
        if (strcasecmp(json_string_value(type), g_block_names[k]) == 0) kind = k;
    }
    if (kind < 0) {
        char shown[64];
        snprintf(what, sizeof what, "type is %s",
                 type ? xa_io_json_show(type, shown, sizeof shown) : "missing");
        return setup_err(path, at,
                         "type single, Stack, Fuse, Split, BatchSplit, Parallel or Average", what);
    }
    if (!json_is_array(ch) || json_array_size(ch) < 1 ||
        json_array_size(ch) > XA_SETUP_MAX_CHILDREN) {
        return setup_err(path, at, "\"children\": an array of 1 to 16 entries",
                         "bad or missing children");
    }
    if (kw && !json_is_null(kw) && !json_is_object(kw)) {
        return setup_err(path, at, "\"kwargs\": an object", "bad kwargs");
    }
    if (kind == XA_BLOCK_ADAPTER) {
        if (json_array_size(ch) != 1 || !json_is_string(json_array_get(ch, 0))) {
            return setup_err(path, at, "a single block with one adapter name",
                             "bad children of a single block");
        }
        return setup_from_json(out, json_array_get(ch, 0), path, at, depth);
    }
    xa_setup *s = calloc(1, sizeof *s);
    if (!s) return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
    s->kind = (xa_block)kind;
    xa_status st = XA_STATUS_OK;
    for (size_t i = 0; i < json_array_size(ch); i++) {
        snprintf(sub, sizeof sub, "%s.children[%zu]", at, i);
        if ((st = setup_from_json(&s->child[i], json_array_get(ch, i), path, sub, depth + 1)))
            goto fail;
        s->n++;
    }
    for (int i = 0; i < s->n; i++)
        s->weights[i] = 1.0 / s->n;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)kw, key, val) {
        snprintf(sub, sizeof sub, "%s.kwargs.%s", at, key);
        int sizes = (strcmp(key, "splits") == 0 && kind == XA_BLOCK_SPLIT) ||
                    (strcmp(key, "batch_sizes") == 0 && kind == XA_BLOCK_BATCHSPLIT);
        if (sizes || (strcmp(key, "weights") == 0 && kind == XA_BLOCK_AVERAGE)) {
            if (json_is_integer(val) &&
                sizes) { /* one size for every child (AdapterHub allows it) */
                if ((st = setup_size(path, sub, val))) goto fail;
                for (int i = 0; i < s->n; i++)
                    s->sizes[i] = (int)json_integer_value(val);
                continue;
            }
            if (!json_is_array(val) || (int)json_array_size(val) != s->n) {
                st = setup_err(path, sub, "one number per child", "wrong length or type");
                goto fail;
            }
            double sum = 0;
            for (int i = 0; i < s->n; i++) {
                const json_t *x = json_array_get(val, (size_t)i);
                if (sizes ? !json_is_integer(x) : !json_is_number(x)) {
                    st = setup_err(path, sub, sizes ? "integers" : "numbers", "bad entry");
                    goto fail;
                }
                if (sizes && (st = setup_size(path, sub, x))) goto fail;
                if (sizes)
                    s->sizes[i] = (int)json_integer_value(x);
                else
                    sum += (s->weights[i] = json_number_value(x));
            }
            /* normalize_weights: the check below rejects a zero sum */
            for (int i = 0; !sizes && sum > 0 && i < s->n; i++)
                s->weights[i] /= sum;
        } else if (strcmp(key, "normalize_weights") == 0 && kind == XA_BLOCK_AVERAGE) {
            if (!json_is_true(val)) {
                st = xa_error_set(XA_STATUS_UNSUPPORTED, path, "normalize_weights true",
                                  "xadapt's Average always normalises its weights",
                                  "%s is not true", sub);
                goto fail;
            }
        } else if (strcmp(key, "name") == 0 && kind == XA_BLOCK_FUSE) {
            if (json_is_null(val)) continue;
            if (!json_is_string(val) || strlen(json_string_value(val)) >= XA_NAME_MAX) {
                st = setup_err(path, sub, "a fusion name under 64 characters", "bad name");
                goto fail;
            }
            snprintf(s->name, sizeof s->name, "%s", json_string_value(val));
        } else if (strcmp(key, "split_index") == 0) {
            st = xa_error_set(XA_STATUS_UNSUPPORTED, path, "splits=[...]",
                              "rewrite the setup as Split(a, b, splits=[n, T - n])",
                              "%s: the old Split(split_index) form is not supported", sub);
            goto fail;
        } else {
            st = setup_err(path, sub,
                           "splits (Split), batch_sizes (BatchSplit), weights and "
                           "normalize_weights (Average) or name (Fuse)",
                           "unknown keyword argument");
            goto fail;
        }
    }
    *out = s;
    return XA_STATUS_OK;
fail:
    xa_setup_free(s);
    return st;
}

xa_status xa_hub_load_setup(const char *path, xa_setup **out, char *head, size_t n_head) {
    char *text = NULL;
    size_t n = 0;
    json_t *root = NULL;
    xa_setup *s = NULL;
    *out = NULL;
    if (head && n_head) head[0] = '\0';
    xa_status st = xa_file_read(&text, &n, path, 16u << 20);
    if (!st) st = xa_io_json_load_object(&root, text, n, path);
    if (st) goto done;
    const json_t *tree = json_object_get(root, "adapter_setup");
    if (!tree) {
        st = setup_err(path, "key 'adapter_setup'", "the active composition (or null)",
                       "missing key 'adapter_setup'");
        goto done;
    }
    if (!json_is_null(tree)) {
        if ((st = setup_from_json(&s, tree, path, "adapter_setup", 0))) goto done;
        /* a bare adapter at the top means Stack(name) (compose.h) */
        if (s->kind == XA_BLOCK_ADAPTER) {
            xa_setup *top = xa_setup_single(s->name);
            xa_setup_free(s);
            s = top;
            if (!s) {
                st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
                goto done;
            }
        }
        if ((st = xa_setup_check(s, path))) goto done;
    }
    const json_t *hs = json_object_get(root, "head_setup");
    if (hs && !json_is_null(hs)) {
        if (!json_is_string(hs)) {
            st = xa_error_set(XA_STATUS_UNSUPPORTED, path, "head_setup: one head name or null",
                              "xadapt runs one head at a time", "head_setup is %s",
                              xa_io_json_kind(hs));
            goto done;
        }
        if ((st = xa_name_check(json_string_value(hs), 0, "head_setup name", path))) goto done;
        if (head && n_head) {
            if (strlen(json_string_value(hs)) >= n_head) {
                st = xa_error_set(XA_STATUS_USAGE, path, NULL, NULL, "head name '%s' is too long",
                                  json_string_value(hs));
                goto done;
            }
            snprintf(head, n_head, "%s", json_string_value(hs));
        }
    }
    *out = s;
    s = NULL;
done:
    xa_setup_free(s);
    json_decref(root);
    free(text);
    return st;
}

/* ---- setup directories (AdapterHub save_adapter_setup / load_adapter_setup) -------------------- */

/* Directory names xadapt's final/ layout already uses: a setup name equal to one of them would
 * mix two different things in one directory. */
static const char *const k_reserved_dirs[] = {"adapter", "head", "fusion", "encoder"};

static int is_reserved_dir(const char *name) {
    for (size_t i = 0; i < sizeof k_reserved_dirs / sizeof k_reserved_dirs[0]; i++)
        if (!strcmp(name, k_reserved_dirs[i])) return 1;
    return 0;
}

/* The adapter leaves and Fuse blocks of s, in tree order, each name once. */
typedef struct setup_names {
    char adapters[XA_COMPOSE_MAX_ADAPTERS][XA_NAME_MAX];
    int n_adapters;
    char fusions[XA_COMPOSE_MAX_FUSIONS][XA_NAME_MAX * XA_SETUP_MAX_CHILDREN];
    int n_fusions;
} setup_names;

static void collect_names(const xa_setup *s, setup_names *out) {
    if (s->kind == XA_BLOCK_ADAPTER) {
        for (int i = 0; i < out->n_adapters; i++)
            if (!strcmp(out->adapters[i], s->name)) return;
        if (out->n_adapters < XA_COMPOSE_MAX_ADAPTERS)
            snprintf(out->adapters[out->n_adapters++], XA_NAME_MAX, "%s", s->name);
        return;
    }
    if (s->kind == XA_BLOCK_FUSE) {
        char buf[XA_NAME_MAX * XA_SETUP_MAX_CHILDREN];
        const char *fn = xa_setup_fusion_name(s, buf, sizeof buf);
        int seen = 0;
        for (int i = 0; i < out->n_fusions; i++) seen |= !strcmp(out->fusions[i], fn);
        if (!seen && out->n_fusions < XA_COMPOSE_MAX_FUSIONS)
            snprintf(out->fusions[out->n_fusions++], sizeof out->fusions[0], "%s", fn);
    }
    for (int i = 0; i < s->n; i++) collect_names(s->child[i], out);
}

xa_status xa_hub_save_setup_dir(const char *dir, const xa_composer *cp, const xa_setup *s,
                                const xa_head *h, const char *head_name,
                                const char *const *labels, int n_labels,
                                const xa_encoder_config *enc, const char *model_name) {
    char p[XA_PATH_MAX];
    setup_names *nm = calloc(1, sizeof *nm);
    if (!nm) return xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
    if (s) collect_names(s, nm);
    xa_status st = xa_file_mkdirs(dir);
    for (int i = 0; !st && i < nm->n_adapters; i++) {
        const xa_adapter *a = xa_composer_adapter(cp, nm->adapters[i]);
        if (!a) {
            st = xa_error_set(XA_STATUS_NOT_FOUND, dir, "every adapter of the setup in the composer",
                              NULL, "adapter '%s' of the setup is not loaded", nm->adapters[i]);
        } else if (is_reserved_dir(a->name)) {
            st = xa_error_set(XA_STATUS_CONFIG, dir, "adapter names other than adapter, head, fusion, encoder",
                              "rename the adapter", "adapter '%s' would collide with xadapt's %s/ directory",
                              a->name, a->name);
        }
        if (!st) st = xa_path_join(p, sizeof p, dir, a->name);
        if (!st) st = xa_hub_save_adapter(p, a, enc, model_name);
    }
    for (int i = 0; !st && i < nm->n_fusions; i++) {
        const xa_fusion_layer *f = xa_composer_fusion(cp, nm->fusions[i]);
        if (!f) {
            st = xa_error_set(XA_STATUS_NOT_FOUND, dir, "every fusion of the setup in the composer",
                              NULL, "fusion '%s' of the setup is not loaded", nm->fusions[i]);
        }
        if (!st) st = xa_path_join(p, sizeof p, dir, nm->fusions[i]);
        if (!st) st = xa_hub_save_fusion(p, f, enc, model_name);
    }
    if (!st && h && head_name && head_name[0]) {
        if (is_reserved_dir(head_name)) {
            st = xa_error_set(XA_STATUS_CONFIG, dir, "head names other than adapter, head, fusion, encoder",
                              "rename the head", "head '%s' would collide with xadapt's %s/ directory",
                              head_name, head_name);
        }
        if (!st) st = xa_path_join(p, sizeof p, dir, head_name);
        if (!st) st = xa_hub_save_head(p, h, head_name, labels, n_labels, enc, model_name);
    }
    if (!st) st = xa_path_join(p, sizeof p, dir, "adapter_setup.json");
    if (!st) st = xa_hub_save_setup(p, s, head_name);
    free(nm);
    return st;
}

static int dir_has(const char *dir, const char *sub, const char *file) {
    char p[XA_PATH_MAX];
    int n = file ? snprintf(p, sizeof p, "%s/%s/%s", dir, sub, file) : snprintf(p, sizeof p, "%s/%s", dir, sub);
    return n > 0 && (size_t)n < sizeof p && access(p, F_OK) == 0;
}

xa_status xa_hub_load_setup_dir(xa_composer *cp, const char *dir, xa_setup **setup_out,
                                char *head_dir, size_t n_head_dir) {
    char p[XA_PATH_MAX], head[XA_NAME_MAX * 4];
    xa_setup *s = NULL;
    *setup_out = NULL;
    if (head_dir && n_head_dir) head_dir[0] = '\0';
    xa_status st = xa_path_join(p, sizeof p, dir, "adapter_setup.json");
    if (!st) st = xa_hub_load_setup(p, &s, head, sizeof head);
    if (st) return st;
    setup_names *nm = calloc(1, sizeof *nm);
    if (!nm) {
        xa_setup_free(s);
        return xa_error_set(XA_STATUS_NOMEM, dir, NULL, NULL, "out of memory");
    }
    if (s) collect_names(s, nm);
    for (int i = 0; !st && i < nm->n_adapters; i++) {
        const char *name = nm->adapters[i];
        if (xa_composer_adapter(cp, name)) continue; /* given by the caller (e.g. --adapter) */
        if (dir_has(dir, name, "adapter_config.json")) { /* AdapterHub's layout: DIR/<name>/ */
            st = xa_path_join(p, sizeof p, dir, name);
            if (!st) st = xa_hub_load_adapter(cp, p, name, NULL, 0, 0, NULL);
        } else if (dir_has(dir, "adapter", "adapter_config.json")) {
            /* xadapt's older final/ layout: the trained adapter in DIR/adapter/ under its name */
            st = xa_path_join(p, sizeof p, dir, "adapter");
            xa_adapter *a = NULL;
            if (!st) st = xa_hub_load_adapter(cp, p, NULL, NULL, 0, 0, &a);
            if (!st && strcmp(a->name, name)) {
                st = xa_error_set(XA_STATUS_NOT_FOUND, dir, "a directory per adapter of the setup",
                                  "load the other adapters first (predict: --adapter DIR)",
                                  "adapter '%s' of the setup has no directory %s/%s/ (adapter/ holds '%s')",
                                  name, dir, name, a->name);
            }
        } else {
            st = xa_error_set(XA_STATUS_NOT_FOUND, dir, "a directory per adapter of the setup",
                              "load it first (predict: --adapter DIR)",
                              "adapter '%s' of the setup has no directory %s/%s/", name, dir, name);
        }
    }
    for (int i = 0; !st && i < nm->n_fusions; i++) {
        if (xa_composer_fusion(cp, nm->fusions[i])) continue;
        if (dir_has(dir, nm->fusions[i], NULL)) {
            st = xa_path_join(p, sizeof p, dir, nm->fusions[i]);
        } else if (dir_has(dir, "fusion", NULL)) {
            st = xa_path_join(p, sizeof p, dir, "fusion");
        } else {
            st = xa_error_set(XA_STATUS_NOT_FOUND, dir, "a directory per fusion of the setup", NULL,
                              "fusion '%s' of the setup has no directory", nm->fusions[i]);
        }
        if (!st) st = xa_hub_load_fusion(cp, p, 0, NULL);
    }
    if (!st && head_dir && n_head_dir) {
        /* the head: DIR/<head_setup>/ (AdapterHub), else DIR/head/ (xadapt's layout) */
        if (head[0] && dir_has(dir, head, "head_config.json")) {
            st = xa_path_join(head_dir, n_head_dir, dir, head);
        } else if (dir_has(dir, "head", "head_config.json")) {
            st = xa_path_join(head_dir, n_head_dir, dir, "head");
        }
    }
    free(nm);
    if (st) {
        xa_setup_free(s);
        return st;
    }
    *setup_out = s;
    return XA_STATUS_OK;
}

/* ---- tensor visitors (hub.h) ---- */

typedef struct visit_ctx {
    xa_hub_tensor_fn fn;
    void *ctx;
} visit_ctx;

static xa_status visit_bridge(void *p, const char *name, float *data, const int64_t *shape, int nd) {
    const visit_ctx *v = p;
    if (!data) return XA_STATUS_OK; /* an alias of the tensor visited before it */
    size_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= (size_t)shape[i];
    return v->fn(v->ctx, name, data, numel);
}

xa_status xa_hub_visit_adapter(const xa_adapter *a, xa_hub_tensor_fn fn, void *ctx) {
    visit_ctx v = {fn, ctx};
    return adapter_walk(a, a->name, visit_bridge, &v);
}

xa_status xa_hub_visit_fusion(const xa_fusion_layer *f, xa_hub_tensor_fn fn, void *ctx) {
    visit_ctx v = {fn, ctx};
    return fusion_walk(f, visit_bridge, &v);
}

xa_status xa_hub_visit_head(const xa_head *h, const char *name, xa_hub_tensor_fn fn, void *ctx) {
    visit_ctx v = {fn, ctx};
    return head_walk(h, name, visit_bridge, &v);
}
