/* compose/adapter: named AdapterHub bottleneck adapters and AdapterFusion layers as parameter
 * groups (ADAPTERHUB.md §1.1, §1.2, §1.5, §1.7, §1.8, §1.9).
 *
 * An xa_adapter owns ONE parameter buffer (and one gradient buffer while it trains) laid out as
 *     for l in 0..L-1, loc in {ATTN, FFN}: the module's tensors (xa_bneck_sizes), if present
 *     then the invertible adapter (xa_inv_sizes), if inv_adapter != none
 *     then the shared PHM rule (n, n, n), if phm_layer
 * A module is present at (l, loc) when its location flag is set (mh_adapter for ATTN,
 * output_adapter for FFN) and l is not in leave_out. Load-time leave_out compacts the buffer in
 * place, so the layout always equals that of a fresh adapter built from the merged config.
 * An xa_fusion_layer owns one buffer of xa_fusion modules, one per (layer, loc) where every fused
 * adapter has a module.
 *
 * Not supported (UNSUPPORTED with the key named): cross_adapter (decoders), stochastic_depth > 0
 * (AdapterPlus DropPath), a per-layer or factorised PHM rule, shared_W_phm, fusion temperature
 * annealing, value_before_softmax false.
 */
#include "compose/compose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- adapter specs ------------------------------------------------------------------------------
 */

xa_status xa_adapter_spec(const xa_bn_config *cfg, int layer, int C, xa_bneck_spec *out,
                          const char *where) {
    const char *w = where ? where : "xa_adapter_spec";
    memset(out, 0, sizeof *out);
    int64_t d = xa_bn_config_bottleneck_size(cfg, layer, C);
    if (d < 1) {
        return xa_error_set(XA_STATUS_CONFIG, w, "a reduction_factor for every layer",
                            "give reduction_factor a \"default\" entry",
                            "layer %d has no reduction factor", layer);
    }
    xa_status st = xa_act_parse(cfg->non_linearity, &out->act);
    if (st) {
        xa_error_prefix("%s: non_linearity", w);
        return st;
    }
    out->C = C;
    out->d = (int)d;
    out->ln_before = cfg->ln_before;
    out->ln_after = cfg->ln_after;
    out->adapter_residual_before_ln = cfg->adapter_residual_before_ln;
    out->parallel = cfg->is_parallel;
    switch (cfg->scaling) {
    case XA_BN_SCALING_LEARNED: out->scaling = XA_BNECK_SCALING_LEARNED; break;
    case XA_BN_SCALING_CHANNEL: out->scaling = XA_BNECK_SCALING_CHANNEL; break;
    default: out->scaling = XA_BNECK_SCALING_CONSTANT; break;
    }
    out->scaling_value = (float)cfg->scaling_value;
    out->use_gating = cfg->use_gating;
    out->dropout = (float)cfg->dropout;
    out->phm = cfg->phm_layer;
    out->phm_spec.n = (int)cfg->phm_dim;
    out->phm_spec.rank = (int)cfg->phm_rank;
    out->phm_spec.factorized_W = cfg->factorized_phm_W;
    out->phm_spec.bias = cfg->phm_bias;
    if (out->phm) {
        int n = out->phm_spec.n;
        if (n < 1 || C % n != 0 || out->d % n != 0) {
            return xa_error_set(XA_STATUS_CONFIG, w,
                                "phm_dim dividing the hidden size and the bottleneck size",
                                "change phm_dim or reduction_factor",
                                "phm_dim %d does not divide hidden size %d and bottleneck %d "
                                "(layer %d)",
                                n, C, out->d, layer);
        }
    }
    st = xa_bneck_spec_check(out, w);
    if (st && st != XA_STATUS_CONFIG) { /* a config value, not an API misuse: report it as CONFIG */
        xa_error e = *xa_error_last();
        st = xa_error_set(XA_STATUS_CONFIG, e.where, e.expected[0] ? e.expected : NULL,
                          e.hint[0] ? e.hint : NULL, "%s", e.what);
    }
    return st;
}

static xa_status check_supported(const xa_bn_config *c, const char *w) {
    const char *key = NULL, *why = NULL;
    if (c->cross_adapter) {
        key = "cross_adapter", why = "cross-attention adapters exist only in decoders";
    } else if (c->stochastic_depth > 0) {
        key = "stochastic_depth", why = "DropPath (AdapterPlus) is not implemented; set it to 0";
    } else if (c->phm_layer && !c->shared_phm_rule) {
        key = "shared_phm_rule",
        why = "only the shared PHM rule (the Compacter default) is implemented";
    } else if (c->phm_layer && c->factorized_phm_rule) {
        key = "factorized_phm_rule", why = "only the full (n, n, n) rule is implemented";
    } else if (c->phm_layer && c->shared_W_phm) {
        key = "shared_W_phm",
        why = "per-layer PHM weights only (AdapterHub's shared-W path does not run, quirk Q7)";
    }
    if (!key) return XA_STATUS_OK;
    char where[XA_ERROR_FIELD];
    snprintf(where, sizeof where, "%s: key 'config.%s'", w, key);
    return xa_error_set(XA_STATUS_UNSUPPORTED, where, NULL, why,
                        "'%s' is set: not supported by xadapt", key);
}

static xa_bneck_init parse_init(const char *s) {
    if (strcmp(s, "mam_adapter") == 0) return XA_BNECK_INIT_MAM;
    if (strcmp(s, "houlsby") == 0) return XA_BNECK_INIT_HOULSBY;
    return XA_BNECK_INIT_BERT;
}

/* ---- the adapter's buffer layout --------------------------------------------------------------
 */

static size_t inv_numel(const xa_adapter *a) {
    if (!a->has_inv) return 0;
    size_t numel[XA_INV_N_TENSORS];
    return xa_inv_sizes(&a->inv.spec, numel);
}

static size_t rule_numel(const xa_adapter *a) {
    return a->cfg.phm_layer ? (size_t)a->phm_n * a->phm_n * a->phm_n : 0;
}

/* Offsets of every present module, of the inv adapter and of the rule under the current present[];
 * returns the total. mod_off may be NULL. */
static size_t adapter_layout(const xa_adapter *a, size_t *mod_off, size_t *inv_off,
                             size_t *rule_off) {
    size_t off = 0;
    for (int i = 0; i < 2 * a->L; i++) {
        if (mod_off) mod_off[i] = off;
        if (!a->present[i]) continue;
        size_t numel[XA_BNECK_N_TENSORS];
        off += xa_bneck_sizes(&a->mods[i].spec, numel);
    }
    *inv_off = off;
    off += inv_numel(a);
    *rule_off = off;
    return off + rule_numel(a);
}

/* Carve every view from params / grads (specs already in mods[i].spec and inv.spec). */
static void adapter_bind(xa_adapter *a) {
    size_t inv_off, rule_off;
    adapter_layout(a, NULL, &inv_off, &rule_off);
    size_t off = 0;
    a->phm_rule = a->cfg.phm_layer ? a->params + rule_off : NULL;
    a->phm_rule_grad =
        a->cfg.phm_layer && a->grads && a->cfg.learn_phm ? a->grads + rule_off : NULL;
    for (int i = 0; i < 2 * a->L; i++) {
        xa_bneck_spec spec = a->mods[i].spec;
        memset(&a->mods[i], 0, sizeof a->mods[i]);
        a->mods[i].spec = spec;
        if (!a->present[i]) continue;
        size_t numel[XA_BNECK_N_TENSORS];
        size_t n = xa_bneck_sizes(&spec, numel);
        xa_bneck_bind(&a->mods[i], &spec, a->params + off, a->grads ? a->grads + off : NULL);
        a->mods[i].spec = spec;
        a->mods[i].phm_rule = a->phm_rule;
        a->mods[i].phm_rule_grad = a->phm_rule_grad;
        off += n;
    }
    if (a->has_inv) {
        xa_inv_spec spec = a->inv.spec;
        xa_inv_bind(&a->inv, &spec, a->params + inv_off, a->grads ? a->grads + inv_off : NULL);
        a->inv.spec = spec;
    }
}

xa_status xa_adapter_init(xa_adapter *a, const char *name, const xa_bn_config *cfg, int L, int C,
                          int trainable, const char *where) {
    const char *w = where ? where : "xa_adapter_init";
    memset(a, 0, sizeof *a);
    xa_status st;
    if (!name || !name[0] || strlen(name) >= XA_NAME_MAX) {
        return xa_error_set(XA_STATUS_USAGE, w, "a name of 1 to 63 characters", NULL,
                            "bad adapter name '%s'", name ? name : "(null)");
    }
    if (L < 1 || L > XA_BN_MAX_LAYERS || C < 2) {
        return xa_error_set(XA_STATUS_USAGE, w, "1 <= L <= 128 and C >= 2", NULL,
                            "encoder of %d layers, hidden size %d", L, C);
    }
    if ((st = xa_bn_config_validate(cfg, w))) return st;
    if ((st = check_supported(cfg, w))) return st;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->cfg = *cfg;
    a->L = L;
    a->C = C;
    a->phm_n = cfg->phm_layer ? (int)cfg->phm_dim : 0;
    a->mods = calloc((size_t)(2 * L), sizeof *a->mods);
    a->present = calloc((size_t)(2 * L), 1);
    if (!a->mods || !a->present) {
        st = xa_error_set(XA_STATUS_NOMEM, w, NULL, NULL, "out of memory");
        goto fail;
    }
    for (int l = 0; l < L; l++) {
        for (int loc = 0; loc < 2; loc++) {
            int flag = loc == XA_LOC_ATTN ? cfg->mh_adapter : cfg->output_adapter;
            a->present[2 * l + loc] = (uint8_t)(flag && !xa_bn_config_leaves_out(cfg, l));
            /* every layer's spec is checked, present or not: a later leave_out never meets a bad
             * one */
            if ((st = xa_adapter_spec(cfg, l, C, &a->mods[2 * l + loc].spec, w))) goto fail;
        }
    }
    if (cfg->inv_adapter != XA_BN_INV_NONE) {
        a->has_inv = 1;
        a->inv.spec.kind = cfg->inv_adapter == XA_BN_INV_GLOW ? XA_INV_GLOW : XA_INV_NICE;
        a->inv.spec.C = C;
        a->inv.spec.rf = cfg->inv_adapter_reduction_factor;
        a->inv.spec.act = a->mods[0].spec.act;
        if ((st = xa_inv_spec_check(&a->inv.spec, w))) goto fail;
    }
    size_t inv_off, rule_off;
    a->n_params = adapter_layout(a, NULL, &inv_off, &rule_off);
    a->params = xa_aligned_alloc(a->n_params * sizeof(float), XA_ARENA_ALIGN);
    if (!a->params) {
        st = xa_error_set(XA_STATUS_NOMEM, w, NULL, NULL, "cannot allocate %zu adapter parameters",
                          a->n_params);
        goto fail;
    }
    if ((st = xa_adapter_set_trainable(a, trainable))) goto fail;
    return XA_STATUS_OK;
fail:
    xa_adapter_free(a);
    return st;
}

void xa_adapter_free(xa_adapter *a) {
    if (!a) return;
    xa_aligned_free(a->params);
    xa_aligned_free(a->grads);
    free(a->mods);
    free(a->present);
    memset(a, 0, sizeof *a);
}

xa_status xa_adapter_set_trainable(xa_adapter *a, int trainable) {
    if (!trainable) {
        xa_aligned_free(a->grads);
        a->grads = NULL;
    } else if (!a->grads) {
        a->grads = xa_aligned_alloc(a->n_params * sizeof(float), XA_ARENA_ALIGN);
        if (!a->grads) {
            return xa_error_set(XA_STATUS_NOMEM, "xa_adapter_set_trainable", NULL, NULL,
                                "cannot allocate gradients for %zu parameters of adapter '%s'",
                                a->n_params, a->name);
        }
    }
    a->trainable = trainable != 0;
    adapter_bind(a);
    return XA_STATUS_OK;
}

void xa_adapter_init_weights(xa_adapter *a, xa_rng *rng) {
    xa_bneck_init init = parse_init(a->cfg.init_weights);
    for (int i = 0; i < 2 * a->L; i++) {
        if (!a->present[i]) continue;
        /* AdapterHub calls torch.manual_seed(init_weights_seed) before building each module, so
         * every layer starts from the same weights; here the caller's rng is reseeded likewise. */
        if (a->cfg.has_init_weights_seed) xa_rng_seed(rng, (uint64_t)a->cfg.init_weights_seed, 0);
        xa_bneck_init_weights(&a->mods[i], init, rng);
    }
    if (a->has_inv) xa_inv_init_weights(&a->inv, rng);
    if (a->phm_rule) {
        size_t n = rule_numel(a);
        float r = (float)a->cfg.phm_init_range;
        if (strcmp(a->cfg.phm_c_init, "uniform") == 0) {
            xa_rng_fill_uniform(rng, a->phm_rule, n, -r, r);
        } else {
            xa_rng_fill_normal(rng, a->phm_rule, n, 0.0f, r);
        }
    }
}

void xa_adapter_leave_out(xa_adapter *a, const int *layers, int n) {
    size_t *old_off = malloc((size_t)(2 * a->L) * sizeof *old_off);
    XA_ASSERT(old_off); /* (2L) size_t, L <= 128: a few KB */
    size_t old_inv, old_rule, new_inv, new_rule;
    adapter_layout(a, old_off, &old_inv, &old_rule);
    uint8_t *was = malloc((size_t)(2 * a->L));
    XA_ASSERT(was);
    memcpy(was, a->present, (size_t)(2 * a->L));
    for (int k = 0; k < n; k++) {
        int l = layers[k];
        if (l < 0 || l >= XA_BN_MAX_LAYERS) continue;
        if (!xa_bn_config_leaves_out(&a->cfg, l) && a->cfg.n_leave_out < XA_BN_MAX_LAYERS) {
            a->cfg.leave_out[a->cfg.n_leave_out++] = l;
        }
        if (l < a->L) a->present[2 * l] = a->present[2 * l + 1] = 0;
    }
    /* Compact: kept blocks keep their order and only move down, so memmove front to back is safe.
     */
    size_t off = 0;
    for (int i = 0; i < 2 * a->L; i++) {
        if (!was[i]) continue;
        size_t numel[XA_BNECK_N_TENSORS];
        size_t m = xa_bneck_sizes(&a->mods[i].spec, numel);
        if (!a->present[i]) continue;
        memmove(a->params + off, a->params + old_off[i], m * sizeof(float));
        if (a->grads) memmove(a->grads + off, a->grads + old_off[i], m * sizeof(float));
        off += m;
    }
    a->n_params = adapter_layout(a, NULL, &new_inv, &new_rule);
    size_t tail = inv_numel(a) + rule_numel(a);
    memmove(a->params + new_inv, a->params + old_inv, tail * sizeof(float));
    if (a->grads) memmove(a->grads + new_inv, a->grads + old_inv, tail * sizeof(float));
    free(old_off);
    free(was);
    adapter_bind(a);
}

/* ---- fusion layers
 * -------------------------------------------------------------------------------- */

static void fusion_bind(xa_fusion_layer *f) {
    size_t off = 0;
    for (int i = 0; i < 2 * f->L; i++) {
        xa_fusion_spec spec = f->mods[i].spec;
        memset(&f->mods[i], 0, sizeof f->mods[i]);
        f->mods[i].spec = spec;
        if (!f->present[i]) continue;
        size_t numel[XA_FUSION_N_TENSORS];
        size_t m = xa_fusion_sizes(&spec, numel);
        xa_fusion_bind(&f->mods[i], &spec, f->params + off, f->grads ? f->grads + off : NULL);
        f->mods[i].spec = spec;
        off += m;
    }
}

xa_status xa_fusion_layer_init(xa_fusion_layer *f, const char *name,
                               const xa_adapter *const *adapters, int n,
                               const xa_fusion_config *cfg, int L, int C, float model_attn_dropout,
                               int trainable, const char *where) {
    const char *w = where ? where : "xa_fusion_layer_init";
    xa_status st;
    memset(f, 0, sizeof *f);
    if (n < 2 || n > XA_SETUP_MAX_CHILDREN) {
        return xa_error_set(XA_STATUS_CONFIG, w, "2 to 16 adapters", NULL,
                            "a fusion layer over %d adapters", n);
    }
    if (cfg->temperature) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, w, "temperature false",
                            "xadapt's fusion softmax uses T = 1 (both AdapterHub presets)",
                            "fusion temperature annealing is not supported");
    }
    if (!cfg->value_before_softmax) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, w, "value_before_softmax true",
                            "both AdapterHub presets (static, dynamic) use true",
                            "value_before_softmax false is not supported");
    }
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const xa_adapter *a = adapters[i];
        if (a->C != C || a->L != L) {
            return xa_error_set(
                XA_STATUS_CONFIG, w, NULL, "wrong base model?",
                "adapter '%s' is built for L %d, hidden size %d; the fusion for L %d, "
                "hidden size %d",
                a->name, a->L, a->C, L, C);
        }
        if (a->cfg.mh_adapter != adapters[0]->cfg.mh_adapter ||
            a->cfg.output_adapter != adapters[0]->cfg.output_adapter) {
            return xa_error_set(
                XA_STATUS_CONFIG, w, "adapters with the same mh_adapter and output_adapter",
                "fuse adapters of one kind (all seq_bn, or all double_seq_bn)",
                "adapter '%s' (mh_adapter %d, output_adapter %d) and '%s' (%d, %d) "
                "sit at different locations",
                adapters[0]->name, adapters[0]->cfg.mh_adapter, adapters[0]->cfg.output_adapter,
                a->name, a->cfg.mh_adapter, a->cfg.output_adapter);
        }
        snprintf(f->adapters[i], sizeof f->adapters[i], "%s", a->name);
        len += strlen(a->name) + 1;
    }
    if (name && name[0]) {
        if (strlen(name) >= sizeof f->name) {
            return xa_error_set(XA_STATUS_CONFIG, w, "a shorter fusion name", NULL,
                                "fusion name of %zu characters", strlen(name));
        }
        snprintf(f->name, sizeof f->name, "%s", name);
    } else {
        XA_ASSERT(len <= sizeof f->name);
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            k += (size_t)snprintf(f->name + k, sizeof f->name - k, "%s%s", i ? "," : "",
                                  f->adapters[i]);
        }
    }
    f->n = n;
    f->cfg = *cfg;
    f->L = L;
    f->C = C;
    xa_fusion_spec spec = {
        .C = C,
        .n = n,
        .query = cfg->query,
        .key = cfg->key,
        .value = cfg->value,
        .residual_before = cfg->residual_before,
        .value_initialized = cfg->value_initialized,
        .T = 1.0f,
        .dropout = cfg->dropout_prob < 0 ? model_attn_dropout : (float)cfg->dropout_prob,
    };
    if ((st = xa_fusion_spec_check(&spec, w))) return st;
    f->mods = calloc((size_t)(2 * L), sizeof *f->mods);
    f->present = calloc((size_t)(2 * L), 1);
    if (!f->mods || !f->present) {
        st = xa_error_set(XA_STATUS_NOMEM, w, NULL, NULL, "out of memory");
        goto fail;
    }
    f->n_params = 0;
    for (int i = 0; i < 2 * L; i++) {
        int all = 1;
        for (int k = 0; k < n; k++)
            all = all && adapters[k]->present[i];
        f->present[i] = (uint8_t)all;
        f->mods[i].spec = spec;
        size_t numel[XA_FUSION_N_TENSORS];
        if (all) f->n_params += xa_fusion_sizes(&spec, numel);
    }
    f->params = xa_aligned_alloc(f->n_params * sizeof(float), XA_ARENA_ALIGN);
    if (!f->params) {
        st = xa_error_set(XA_STATUS_NOMEM, w, NULL, NULL, "cannot allocate %zu fusion parameters",
                          f->n_params);
        goto fail;
    }
    if ((st = xa_fusion_layer_set_trainable(f, trainable))) goto fail;
    return XA_STATUS_OK;
fail:
    xa_fusion_layer_free(f);
    return st;
}

void xa_fusion_layer_free(xa_fusion_layer *f) {
    if (!f) return;
    xa_aligned_free(f->params);
    xa_aligned_free(f->grads);
    free(f->mods);
    free(f->present);
    memset(f, 0, sizeof *f);
}

xa_status xa_fusion_layer_set_trainable(xa_fusion_layer *f, int trainable) {
    if (!trainable) {
        xa_aligned_free(f->grads);
        f->grads = NULL;
    } else if (!f->grads) {
        f->grads = xa_aligned_alloc(f->n_params * sizeof(float), XA_ARENA_ALIGN);
        if (!f->grads) {
            return xa_error_set(XA_STATUS_NOMEM, "xa_fusion_layer_set_trainable", NULL, NULL,
                                "cannot allocate gradients for %zu parameters of fusion '%s'",
                                f->n_params, f->name);
        }
    }
    f->trainable = trainable != 0;
    fusion_bind(f);
    return XA_STATUS_OK;
}

void xa_fusion_layer_init_weights(xa_fusion_layer *f, xa_rng *rng) {
    for (int i = 0; i < 2 * f->L; i++) {
        if (f->present[i]) xa_fusion_init_weights(&f->mods[i], rng);
    }
}
