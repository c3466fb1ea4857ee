/* compose/compose.c: the composition engine, the one implementation of the encoder's hook.
 *
 * The active setup is compiled, per (layer, location), into a short straight-line program over
 * row buffers ("slots"), following the reference library's bottleneck state machine
 * (ADAPTERHUB.md §1.4, §1.6; adapters' BottleneckLayer.compose_*):
 *   PRE     an adapter's pre_forward: z = LN_o(hid + x) when original_ln_before, the residual
 *           r chosen by residual_before_ln (h, the post-add sum, or z), the fusion query;
 *   SINGLE  one bottleneck module (adapters/bneck.c) on (z, r);
 *   FUSE    an AdapterFusion layer over the children's scaled up-projections;
 *   AVG     sum_i w_i hid_i (Average; weights sum to 1, see compose.h);
 *   GATHER / SCATTER   token-position slices for Split; ROWCAT  batch slices for BatchSplit and
 *           Parallel (their children read row ranges of the parent slots in place);
 *   POST    the last adapter's post_forward: LN_o(hid (+ h for a parallel adapter) + x).
 * Backward runs the program in reverse; every op adds into the gradient slots of its inputs, and
 * slots 0-2 are the hook's h, x and out, so their gradients land directly in the encoder's dh, dx
 * (and come from dout).
 *
 * Memory: planned once (xa_composer_plan) for (B, T, train). With train every program keeps its
 * own region (the values and bneck / fusion caches stay alive until backward); the gradient slots
 * are shared by all programs (one sub-layer's backward at a time). Inference shares one region.
 * Under the encoder's recomputation (XA_COMPOSE_RECOMPUTE) a layer's two programs keep their own
 * regions and every layer reuses the same pair: the encoder re-runs a layer's forward, hook sites
 * included, right before its backward, so only one layer's caches are ever needed.
 * Fusion attention probabilities are outputs kept for the caller (xa_composer_fusion_probs), so
 * every program has its own probs region in both modes (N x n_children floats per Fuse).
 * A batch with fewer rows recompiles the programs into the same memory (slots only shrink).
 *
 * Passes: PRE's and POST's residual sums run inside their LayerNorm's pass
 * (xa_layernorm_residual_forward), a SINGLE whose output is up + r leaves that sum to the PRE or
 * POST right after it (defers_sum), and an inference plan does not write the sums nothing reads.
 * Each float is the same operation in the same order as in the separate kernels: same bits.
 *
 * Not here: adapter construction (adapter.c), setup parsing (setup.c), files (hub/).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"

#ifdef XA_HAVE_OPENMP
#include <omp.h>
#endif

enum { OP_PRE, OP_SINGLE, OP_FUSE, OP_AVG, OP_GATHER, OP_SCATTER, OP_ROWCAT, OP_POST };

#define SLOT_NONE (-1)
#define SLOT_H 0   /* the hook's h (sub-layer output after dropout) */
#define SLOT_X 1   /* the hook's x (sub-layer input, residual) */
#define SLOT_OUT 2 /* the hook's out */
#define N_EXTERNAL 3

typedef struct ref {
    int slot;
    int64_t off; /* rows from the start of the slot */
} ref;

typedef struct op {
    int kind;
    int B, T;         /* geometry of the rows this op works on */
    int b0, t0;       /* where that geometry sits in the hook's batch (gating lengths) */
    xa_adapter *ad;   /* PRE, SINGLE, POST */
    int mod;          /* 2l + loc */
    xa_fusion_layer *fu;
    ref a, b, c, d, e; /* op-specific operands, see compile functions */
    int n;            /* FUSE / AVG children */
    int ups[XA_SETUP_MAX_CHILDREN]; /* FUSE: the SINGLE ops whose up is fused */
    ref refs[XA_SETUP_MAX_CHILDREN]; /* AVG: children's hid */
    float w[XA_SETUP_MAX_CHILDREN];
    int rows_src_T;   /* GATHER / SCATTER: T of the full geometry */
    int up_grad;      /* SINGLE: slot of dL/dup (fusion consumer), or SLOT_NONE */
    int up_only;      /* SINGLE: the output o is not needed */
    int sum_read;     /* PRE: a later op reads the sum slot c (residual_before_ln "post_add") */
    /* memory (views into the program's region) */
    size_t cache_off, stats_off, lens_off, probs_off;
    xa_bneck_cache bc;
    xa_fusion_cache fc;
    float *mean, *rstd, *mean2, *rstd2;
    int32_t *lens;
    float *probs;
} op;

typedef struct program {
    op *ops;
    int n_ops, cap_ops;
    int64_t *slot_rows; /* rows of each slot (externals: the hook's N) */
    int n_slots, cap_slots;
    int plan_slots;      /* n_slots at plan time: val and grad hold that many (+1) */
    float **val, **grad; /* per slot */
    size_t region_bytes, grad_bytes;
    size_t probs_bytes;  /* this program's fusion probabilities, never shared */
    int plain;           /* nothing runs here */
    int has_trainable;
    int B, T;
} program;

struct xa_composer {
    xa_encoder_config enc;
    xa_adapter *ad[XA_COMPOSE_MAX_ADAPTERS];
    int n_ad;
    xa_fusion_layer *fu[XA_COMPOSE_MAX_FUSIONS];
    int n_fu;
    xa_setup *setup;
    uint8_t skip[XA_BN_MAX_LAYERS];
    /* plan */
    int planned, B, T, M, train;
    int share_layers;    /* XA_COMPOSE_RECOMPUTE: every layer's programs in one region pair */
    int cur_B, cur_T;
    program *progs;      /* (2L) */
    char *mem;           /* all regions, owned */
    size_t mem_bytes;
    char *grad_mem;      /* shared gradient slots */
    size_t grad_bytes;
    float *scratch;      /* (B*T, C) x 2: aliasing and LN scratch for backward */
    char *probs_mem;     /* every program's fusion probabilities, owned */
    xa_adapter *inv;     /* the invertible adapter of setup.first(), or NULL */
    xa_inv_cache inv_fwd, inv_rev;
    char *inv_mem;
    /* mode */
    int mode_train;
    xa_rng *rng;
};

/* ---- registry ------------------------------------------------------------------------------------ */

xa_status xa_composer_init(xa_composer **out, const xa_encoder_config *enc) {
    *out = NULL;
    if (enc->L > XA_BN_MAX_LAYERS)
        return xa_error_set(XA_STATUS_UNSUPPORTED, "xa_composer_init", "at most 128 layers", NULL,
                            "%d layers", enc->L);
    xa_composer *cp = calloc(1, sizeof *cp);
    if (!cp) return xa_error_set(XA_STATUS_NOMEM, "xa_composer_init", NULL, NULL, "out of memory");
    cp->enc = *enc;
    *out = cp;
    return XA_STATUS_OK;
}

static void plan_free(xa_composer *cp) {
    if (cp->progs) {
        for (int i = 0; i < 2 * cp->enc.L; i++) {
            free(cp->progs[i].ops);
            free(cp->progs[i].slot_rows);
            free(cp->progs[i].val);
            free(cp->progs[i].grad);
        }
    }
    free(cp->progs);
    xa_aligned_free(cp->mem);
    xa_aligned_free(cp->grad_mem);
    xa_aligned_free(cp->scratch);
    xa_aligned_free(cp->inv_mem);
    xa_aligned_free(cp->probs_mem);
    cp->progs = NULL;
    cp->mem = cp->grad_mem = cp->inv_mem = cp->probs_mem = NULL;
    cp->scratch = NULL;
    cp->planned = 0;
}

void xa_composer_free(xa_composer *cp) {
    if (!cp) return;
    plan_free(cp);
    for (int i = 0; i < cp->n_fu; i++) {
        xa_fusion_layer_free(cp->fu[i]);
        free(cp->fu[i]);
    }
    for (int i = 0; i < cp->n_ad; i++) {
        xa_adapter_free(cp->ad[i]);
        free(cp->ad[i]);
    }
    xa_setup_free(cp->setup);
    free(cp);
}

const xa_encoder_config *xa_composer_encoder_config(const xa_composer *cp) { return &cp->enc; }

xa_adapter *xa_composer_adapter(const xa_composer *cp, const char *name) {
    for (int i = 0; i < cp->n_ad; i++)
        if (!strcmp(cp->ad[i]->name, name)) return cp->ad[i];
    return NULL;
}

int xa_composer_n_adapters(const xa_composer *cp) { return cp->n_ad; }
xa_adapter *xa_composer_adapter_at(const xa_composer *cp, int i) {
    return i >= 0 && i < cp->n_ad ? cp->ad[i] : NULL;
}

xa_status xa_composer_take_adapter(xa_composer *cp, xa_adapter *a) {
    xa_status st = XA_STATUS_OK;
    if (xa_composer_adapter(cp, a->name))
        st = xa_error_set(XA_STATUS_USAGE, "xa_composer_take_adapter", "a new adapter name",
                          "load it under another name (load_as)", "adapter '%s' already exists",
                          a->name);
    else if (cp->n_ad >= XA_COMPOSE_MAX_ADAPTERS)
        st = xa_error_set(XA_STATUS_USAGE, "xa_composer_take_adapter", "at most 64 adapters", NULL,
                          "too many adapters");
    else if (a->L != cp->enc.L || a->C != cp->enc.C)
        st = xa_error_set(XA_STATUS_SHAPE, "xa_composer_take_adapter", "the encoder's layers and hidden size",
                          "wrong base model?", "adapter '%s' is for L=%d C=%d, the encoder has L=%d C=%d",
                          a->name, a->L, a->C, cp->enc.L, cp->enc.C);
    if (st) {
        xa_adapter_free(a);
        free(a);
        return st;
    }
    cp->ad[cp->n_ad++] = a;
    plan_free(cp);
    return XA_STATUS_OK;
}

xa_status xa_composer_add_adapter(xa_composer *cp, const char *name, const xa_bn_config *cfg,
                                  int trainable, xa_adapter **out) {
    if (out) *out = NULL;
    if (xa_composer_adapter(cp, name))
        return xa_error_set(XA_STATUS_USAGE, "xa_composer_add_adapter", "a new adapter name", NULL,
                            "adapter '%s' already exists", name);
    xa_adapter *a = calloc(1, sizeof *a);
    if (!a) return xa_error_set(XA_STATUS_NOMEM, "xa_composer_add_adapter", NULL, NULL, "out of memory");
    xa_status st = xa_adapter_init(a, name, cfg, cp->enc.L, cp->enc.C, trainable, name);
    if (st) {
        free(a);
        return st;
    }
    st = xa_composer_take_adapter(cp, a);
    if (!st && out) *out = a;
    return st;
}

xa_status xa_composer_remove_adapter(xa_composer *cp, const char *name) {
    if (xa_setup_uses(cp->setup, name))
        return xa_error_set(XA_STATUS_USAGE, "xa_composer_remove_adapter", "an inactive adapter",
                            "activate another setup first", "adapter '%s' is in the active setup", name);
    for (int f = 0; f < cp->n_fu; f++)
        for (int k = 0; k < cp->fu[f]->n; k++)
            if (!strcmp(cp->fu[f]->adapters[k], name))
                return xa_error_set(XA_STATUS_USAGE, "xa_composer_remove_adapter", "an unfused adapter",
                                    NULL, "adapter '%s' is part of fusion '%s'", name, cp->fu[f]->name);
    for (int i = 0; i < cp->n_ad; i++) {
        if (strcmp(cp->ad[i]->name, name)) continue;
        xa_adapter_free(cp->ad[i]);
        free(cp->ad[i]);
        memmove(cp->ad + i, cp->ad + i + 1, (size_t)(cp->n_ad - i - 1) * sizeof cp->ad[0]);
        cp->n_ad--;
        plan_free(cp);
        return XA_STATUS_OK;
    }
    return xa_error_set(XA_STATUS_NOT_FOUND, "xa_composer_remove_adapter", NULL, NULL,
                        "no adapter '%s'", name);
}

xa_fusion_layer *xa_composer_fusion(const xa_composer *cp, const char *name) {
    for (int i = 0; i < cp->n_fu; i++)
        if (!strcmp(cp->fu[i]->name, name)) return cp->fu[i];
    return NULL;
}
int xa_composer_n_fusions(const xa_composer *cp) { return cp->n_fu; }
xa_fusion_layer *xa_composer_fusion_at(const xa_composer *cp, int i) {
    return i >= 0 && i < cp->n_fu ? cp->fu[i] : NULL;
}

xa_status xa_composer_take_fusion(xa_composer *cp, xa_fusion_layer *f) {
    xa_status st = XA_STATUS_OK;
    if (xa_composer_fusion(cp, f->name))
        st = xa_error_set(XA_STATUS_USAGE, "xa_composer_take_fusion", "a new fusion name", NULL,
                          "fusion '%s' already exists", f->name);
    else if (cp->n_fu >= XA_COMPOSE_MAX_FUSIONS)
        st = xa_error_set(XA_STATUS_USAGE, "xa_composer_take_fusion", "at most 16 fusions", NULL,
                          "too many fusions");
    for (int k = 0; !st && k < f->n; k++)
        if (!xa_composer_adapter(cp, f->adapters[k]))
            st = xa_error_set(XA_STATUS_NOT_FOUND, "xa_composer_take_fusion", "the fused adapters loaded first",
                              "load or add the adapters before the fusion",
                              "fusion '%s' needs adapter '%s'", f->name, f->adapters[k]);
    if (st) {
        xa_fusion_layer_free(f);
        free(f);
        return st;
    }
    cp->fu[cp->n_fu++] = f;
    plan_free(cp);
    return XA_STATUS_OK;
}

xa_status xa_composer_add_fusion(xa_composer *cp, const char *name, const char *const *adapters,
                                 int n, const xa_fusion_config *cfg, int trainable,
                                 xa_fusion_layer **out) {
    if (out) *out = NULL;
    if (n < 2 || n > XA_SETUP_MAX_CHILDREN)
        return xa_error_set(XA_STATUS_USAGE, "xa_composer_add_fusion", "2 to 16 adapters", NULL,
                            "%d adapters", n);
    const xa_adapter *list[XA_SETUP_MAX_CHILDREN];
    for (int k = 0; k < n; k++) {
        list[k] = xa_composer_adapter(cp, adapters[k]);
        if (!list[k])
            return xa_error_set(XA_STATUS_NOT_FOUND, "xa_composer_add_fusion", "an existing adapter",
                                NULL, "no adapter '%s'", adapters[k]);
    }
    xa_fusion_layer *f = calloc(1, sizeof *f);
    if (!f) return xa_error_set(XA_STATUS_NOMEM, "xa_composer_add_fusion", NULL, NULL, "out of memory");
    xa_status st = xa_fusion_layer_init(f, name, list, n, cfg, cp->enc.L, cp->enc.C,
                                        cp->enc.p_attn, trainable, "xa_composer_add_fusion");
    if (st) {
        free(f);
        return st;
    }
    st = xa_composer_take_fusion(cp, f);
    if (!st && out) *out = f;
    return st;
}

/* ---- activation --------------------------------------------------------------------------------- */

static const xa_setup *find_parallel(const xa_setup *s) {
    if (!s) return NULL;
    if (s->kind == XA_BLOCK_PARALLEL) return s;
    for (int i = 0; i < s->n; i++) {
        const xa_setup *p = find_parallel(s->child[i]);
        if (p) return p;
    }
    return NULL;
}

static xa_status check_refs(const xa_composer *cp, const xa_setup *s, const char *where, int *n_par) {
    if (s->kind == XA_BLOCK_ADAPTER) {
        if (!xa_composer_adapter(cp, s->name))
            return xa_error_set(XA_STATUS_NOT_FOUND, where, "a loaded adapter",
                                "add or load the adapter first", "setup names adapter '%s' which is not loaded",
                                s->name);
        return XA_STATUS_OK;
    }
    if (s->kind == XA_BLOCK_FUSE) {
        char name[XA_NAME_MAX * XA_SETUP_MAX_CHILDREN];
        xa_setup_fusion_name(s, name, sizeof name);
        const xa_fusion_layer *f = xa_composer_fusion(cp, name);
        if (!f)
            return xa_error_set(XA_STATUS_NOT_FOUND, where, "a loaded fusion layer",
                                "add or load the fusion first", "no fusion layer '%s'", name);
        if (f->n != s->n)
            return xa_error_set(XA_STATUS_CONFIG, where, "as many children as the fusion fuses", NULL,
                                "fusion '%s' fuses %d adapters, the block has %d children", name, f->n, s->n);
    }
    if (s->kind == XA_BLOCK_PARALLEL) {
        if (*n_par && *n_par != s->n)
            return xa_error_set(XA_STATUS_CONFIG, where, "Parallel blocks of equal width", NULL,
                                "Parallel blocks with %d and %d children", *n_par, s->n);
        *n_par = s->n;
    }
    for (int i = 0; i < s->n; i++) {
        xa_status st = check_refs(cp, s->child[i], where, n_par);
        if (st) return st;
    }
    return XA_STATUS_OK;
}

xa_status xa_composer_activate(xa_composer *cp, const xa_setup *setup, const char *where) {
    if (!where) where = "xa_composer_activate";
    xa_setup *copy = NULL;
    if (setup) {
        xa_status st = xa_setup_check(setup, where);
        if (st) return st;
        if (setup->kind == XA_BLOCK_ADAPTER) {
            copy = xa_setup_single(setup->name);
        } else if (setup->kind != XA_BLOCK_STACK) { /* a top-level block runs inside Stack(...) */
            copy = calloc(1, sizeof *copy);
            if (copy) {
                copy->kind = XA_BLOCK_STACK;
                copy->n = 1;
                copy->child[0] = xa_setup_clone(setup);
                if (!copy->child[0]) {
                    free(copy);
                    copy = NULL;
                }
            }
        } else {
            copy = xa_setup_clone(setup);
        }
        if (!copy) return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL, "out of memory");
        int n_par = 0;
        st = check_refs(cp, copy, where, &n_par);
        if (st) {
            xa_setup_free(copy);
            return st;
        }
    }
    xa_setup_free(cp->setup);
    cp->setup = copy;
    plan_free(cp);
    return XA_STATUS_OK;
}

const xa_setup *xa_composer_active(const xa_composer *cp) { return cp->setup; }

int xa_composer_replicas(const xa_composer *cp) {
    const xa_setup *p = find_parallel(cp->setup);
    return p ? p->n : 1;
}

void xa_composer_set_skip_layers(xa_composer *cp, const int *layers, int n) {
    memset(cp->skip, 0, sizeof cp->skip);
    for (int i = 0; i < n; i++)
        if (layers[i] >= 0 && layers[i] < cp->enc.L) cp->skip[layers[i]] = 1;
}

void xa_composer_skip_lowest(xa_composer *cp, int k) {
    memset(cp->skip, 0, sizeof cp->skip);
    for (int l = 0; l < k && l < cp->enc.L; l++) cp->skip[l] = 1;
}

int xa_composer_adapterdrop(xa_composer *cp, int k_max, xa_rng *rng) {
    if (k_max > cp->enc.L) k_max = cp->enc.L;
    int k = k_max > 0 ? (int)xa_rng_below(rng, (uint32_t)k_max + 1) : 0;
    xa_composer_skip_lowest(cp, k);
    return k;
}

void xa_composer_set_mode(xa_composer *cp, int train, xa_rng *rng) {
    cp->mode_train = train;
    cp->rng = rng;
}

/* ---- compiling a setup into a program ------------------------------------------------------------ */

typedef struct cstate {
    ref hid, inp, res;
    int up_op;        /* SINGLE op that produced the current up, -1 none */
    xa_adapter *last; /* last adapter applied */
    int B, T, b0, t0;
} cstate;

typedef struct cctx {
    xa_composer *cp;
    program *pg;
    int pos; /* 2l + loc */
    int ok;  /* 1; 0 out of memory; -1 batch sizes that do not fit the batch */
} cctx;

static int new_slot(cctx *c, int64_t rows) {
    program *pg = c->pg;
    if (pg->n_slots == pg->cap_slots) {
        int cap = pg->cap_slots ? 2 * pg->cap_slots : 16;
        int64_t *r = realloc(pg->slot_rows, (size_t)cap * sizeof *r);
        if (!r) {
            c->ok = 0;
            return SLOT_NONE;
        }
        pg->slot_rows = r;
        pg->cap_slots = cap;
    }
    pg->slot_rows[pg->n_slots] = rows;
    return pg->n_slots++;
}

static op *emit(cctx *c, int kind, const cstate *st) {
    program *pg = c->pg;
    if (pg->n_ops == pg->cap_ops) {
        int cap = pg->cap_ops ? 2 * pg->cap_ops : 16;
        op *o = realloc(pg->ops, (size_t)cap * sizeof *o);
        if (!o) {
            c->ok = 0;
            return NULL;
        }
        pg->ops = o;
        pg->cap_ops = cap;
    }
    op *o = &pg->ops[pg->n_ops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->B = st->B;
    o->T = st->T;
    o->b0 = st->b0;
    o->t0 = st->t0;
    o->up_grad = SLOT_NONE;
    o->a = o->b = o->c = o->d = o->e = (ref){SLOT_NONE, 0};
    return o;
}

static int here(const cctx *c, const xa_adapter *a) { return a && a->present[c->pos]; }

/* pre_forward of adapter a on the state (ADAPTERHUB.md §1.4 step 1). query (may be NULL) gets
 * the fusion query. */
static void c_pre(cctx *c, xa_adapter *a, cstate *st, const xa_fusion_config *fc, ref *query) {
    const xa_bn_config *k = &a->cfg;
    if (k->is_parallel) {
        st->hid = st->res = st->inp;
        if (query) *query = st->inp;
        return;
    }
    ref H = st->hid, z = H, r = {SLOT_NONE, 0};
    if (k->residual_before_ln != XA_BN_RESIDUAL_FALSE) r = H;
    if (k->original_ln_before) {
        int64_t rows = (int64_t)st->B * st->T;
        op *o = emit(c, OP_PRE, st);
        int s = new_slot(c, rows), zs = new_slot(c, rows);
        if (!o || s < 0 || zs < 0) return;
        o->ad = a;
        o->mod = c->pos;
        o->a = H;
        o->b = st->inp;
        o->c = (ref){s, 0};
        o->d = (ref){zs, 0};
        if (k->residual_before_ln == XA_BN_RESIDUAL_POST_ADD) {
            r = o->c;
            o->sum_read = 1;
        }
        z = o->d;
    }
    if (k->residual_before_ln == XA_BN_RESIDUAL_FALSE) r = z;
    if (query) *query = fc && fc->query_before_ln ? H : z;
    st->hid = z;
    st->res = r;
}

/* compose_single: the adapter's module on (hid, res). Returns the op index or -1 (absent). */
static int c_single(cctx *c, xa_adapter *a, cstate *st, int up_only) {
    if (!here(c, a)) return -1;
    op *o = emit(c, OP_SINGLE, st);
    if (!o) return -1;
    o->ad = a;
    o->mod = c->pos;
    o->a = st->hid;
    o->b = a->cfg.is_parallel ? (ref){SLOT_NONE, 0} : st->res;
    o->up_only = up_only;
    int idx = c->pg->n_ops - 1;
    if (!up_only) {
        int s = new_slot(c, (int64_t)st->B * st->T);
        if (s < 0) return -1;
        c->pg->ops[idx].c = (ref){s, 0};
        st->hid = (ref){s, 0};
    }
    if (a->trainable) c->pg->has_trainable = 1;
    st->up_op = idx;
    st->last = a;
    return idx;
}

static void c_block(cctx *c, const xa_setup *s, cstate *st, int lvl);

static void c_child(cctx *c, const xa_setup *child, cstate *st, int lvl) {
    if (child->kind == XA_BLOCK_ADAPTER) c_single(c, xa_composer_adapter(c->cp, child->name), st, 0);
    else c_block(c, child, st, lvl + 1);
}

static void c_stack(cctx *c, const xa_setup *s, cstate *st, int lvl) {
    for (int i = 0; i < s->n && c->ok > 0; i++) {
        const xa_setup *ch = s->child[i];
        if (ch->kind == XA_BLOCK_ADAPTER) {
            xa_adapter *a = xa_composer_adapter(c->cp, ch->name);
            if (!here(c, a)) continue;
            c_pre(c, a, st, NULL, NULL);
            c_single(c, a, st, 0);
        } else {
            c_block(c, ch, st, lvl + 1);
        }
    }
}

static void c_fuse(cctx *c, const xa_setup *s, cstate *st, int lvl) {
    char name[XA_NAME_MAX * XA_SETUP_MAX_CHILDREN];
    xa_fusion_layer *f = xa_composer_fusion(c->cp, xa_setup_fusion_name(s, name, sizeof name));
    if (!f || !f->present[c->pos]) return;
    xa_adapter *last = xa_composer_adapter(c->cp, xa_setup_last(s));
    if (!here(c, last)) return;
    ref q;
    c_pre(c, last, st, &f->cfg, &q);
    int ups[XA_SETUP_MAX_CHILDREN];
    for (int i = 0; i < s->n; i++) {
        cstate cs = *st;
        const xa_setup *ch = s->child[i];
        if (ch->kind == XA_BLOCK_ADAPTER) c_single(c, xa_composer_adapter(c->cp, ch->name), &cs, 1);
        else c_block(c, ch, &cs, lvl + 1);
        if (cs.up_op < 0 || cs.up_op == st->up_op) return; /* a child produced nothing here */
        ups[i] = cs.up_op;
    }
    op *o = emit(c, OP_FUSE, st);
    int out = new_slot(c, (int64_t)st->B * st->T);
    if (!o || out < 0) return;
    o->fu = f;
    o->mod = c->pos;
    o->a = q;
    o->b = st->res;
    o->c = (ref){out, 0};
    o->n = s->n;
    memcpy(o->ups, ups, sizeof ups);
    if (f->trainable) c->pg->has_trainable = 1;
    for (int i = 0; i < s->n; i++) {
        op *u = &c->pg->ops[ups[i]];
        if (u->up_grad == SLOT_NONE) u->up_grad = new_slot(c, (int64_t)u->B * u->T);
    }
    st->hid = (ref){out, 0};
    st->last = last;
}

/* Split: token positions per child, gathered into contiguous slots and scattered back. */
static void c_split(cctx *c, const xa_setup *s, cstate *st, int lvl) {
    xa_adapter *first = xa_composer_adapter(c->cp, xa_setup_first(s));
    if (!here(c, first)) return;
    int64_t total = 0; /* sizes are at most XA_SETUP_MAX_SIZE each (xa_setup_check) */
    for (int i = 0; i < s->n; i++) total += s->sizes[i];
    if (total != st->T) { /* the positions must be covered exactly, as torch.split requires */
        c->ok = -1;
        return;
    }
    c_pre(c, first, st, NULL, NULL);
    int out = new_slot(c, (int64_t)st->B * st->T);
    xa_adapter *last = NULL;
    int p0 = 0;
    for (int i = 0; i < s->n && c->ok > 0; i++) {
        int n = s->sizes[i];
        cstate cs = *st;
        cs.T = n;
        cs.t0 = st->t0 + p0;
        ref *src[3] = {&st->hid, &st->inp, &st->res};
        ref *dst[3] = {&cs.hid, &cs.inp, &cs.res};
        for (int k = 0; k < 3; k++) {
            if (k == 2 && st->res.slot == SLOT_NONE) continue;
            if (k == 2 && st->res.slot == st->hid.slot && st->res.off == st->hid.off) {
                cs.res = cs.hid;
                continue;
            }
            op *o = emit(c, OP_GATHER, &cs);
            int d = new_slot(c, (int64_t)st->B * n);
            if (!o || d < 0) return;
            o->a = *src[k];
            o->c = (ref){d, 0};
            o->rows_src_T = st->T;
            o->t0 = p0; /* position offset inside the parent geometry */
            o->b0 = cs.b0;
            *dst[k] = o->c;
        }
        c_child(c, s->child[i], &cs, lvl);
        if (cs.last) last = cs.last;
        op *o = emit(c, OP_SCATTER, &cs);
        if (!o) return;
        o->a = cs.hid;
        o->c = (ref){out, 0};
        o->rows_src_T = st->T;
        o->t0 = p0;
        p0 += n;
    }
    st->hid = (ref){out, 0};
    if (last) st->last = last;
}

/* BatchSplit and Parallel: row blocks per child, read in place, concatenated into a new slot. */
static void c_rows(cctx *c, const xa_setup *s, cstate *st, int lvl) {
    xa_adapter *first = xa_composer_adapter(c->cp, xa_setup_first(s));
    if (!here(c, first)) return;
    int sizes[XA_SETUP_MAX_CHILDREN];
    int64_t total = 0;
    for (int i = 0; i < s->n; i++) {
        sizes[i] = s->kind == XA_BLOCK_BATCHSPLIT ? s->sizes[i] : st->B / s->n;
        total += sizes[i];
    }
    if (total != st->B) { /* reported by xa_composer_plan, and by hook_prepare for later batches */
        c->ok = -1;
        return;
    }
    c_pre(c, first, st, NULL, NULL);
    int out = new_slot(c, (int64_t)st->B * st->T);
    xa_adapter *last = NULL;
    int b0 = 0;
    for (int i = 0; i < s->n && c->ok > 0; i++) {
        cstate cs = *st;
        int64_t off = (int64_t)b0 * st->T;
        cs.B = sizes[i];
        cs.b0 = st->b0 + b0;
        cs.hid.off += off;
        cs.inp.off += off;
        if (cs.res.slot != SLOT_NONE) cs.res.off += off;
        c_child(c, s->child[i], &cs, lvl);
        if (cs.last) last = cs.last;
        op *o = emit(c, OP_ROWCAT, &cs);
        if (!o) return;
        o->a = cs.hid;
        o->c = (ref){out, off};
        b0 += sizes[i];
    }
    st->hid = (ref){out, 0};
    if (last) st->last = last;
}

static void c_average(cctx *c, const xa_setup *s, cstate *st, int lvl) {
    xa_adapter *first = xa_composer_adapter(c->cp, xa_setup_first(s));
    if (!here(c, first)) return;
    c_pre(c, first, st, NULL, NULL);
    ref hids[XA_SETUP_MAX_CHILDREN];
    xa_adapter *last = NULL;
    for (int i = 0; i < s->n && c->ok > 0; i++) {
        cstate cs = *st;
        c_child(c, s->child[i], &cs, lvl);
        hids[i] = cs.hid;
        if (cs.last) last = cs.last;
    }
    op *o = emit(c, OP_AVG, st);
    int out = new_slot(c, (int64_t)st->B * st->T);
    if (!o || out < 0) return;
    o->n = s->n;
    for (int i = 0; i < s->n; i++) {
        o->refs[i] = hids[i];
        o->w[i] = (float)s->weights[i];
    }
    o->c = (ref){out, 0};
    st->hid = (ref){out, 0};
    if (last) st->last = last;
}

static void c_block(cctx *c, const xa_setup *s, cstate *st, int lvl) {
    switch (s->kind) {
    case XA_BLOCK_STACK: c_stack(c, s, st, lvl); break;
    case XA_BLOCK_FUSE: c_fuse(c, s, st, lvl); break;
    case XA_BLOCK_SPLIT: c_split(c, s, st, lvl); break;
    case XA_BLOCK_BATCHSPLIT:
    case XA_BLOCK_PARALLEL: c_rows(c, s, st, lvl); break;
    case XA_BLOCK_AVERAGE: c_average(c, s, st, lvl); break;
    default: c_single(c, xa_composer_adapter(c->cp, s->name), st, 0); break;
    }
}

/* Compile (layer, loc) for a B x T batch. Returns 1, 0 on allocation failure, -1 when BatchSplit
 * sizes or the Parallel width do not fit B. */
static int compile(xa_composer *cp, program *pg, int pos, int B, int T) {
    pg->n_ops = 0;
    pg->n_slots = 0;
    pg->plain = 1;
    pg->has_trainable = 0;
    pg->B = B;
    pg->T = T;
    cctx c = {cp, pg, pos, 1};
    int64_t N = (int64_t)B * T;
    for (int k = 0; k < N_EXTERNAL; k++) new_slot(&c, N);
    if (!cp->setup) return c.ok;
    cstate st = {{SLOT_H, 0}, {SLOT_X, 0}, {SLOT_X, 0}, -1, NULL, B, T, 0, 0};
    c_block(&c, cp->setup, &st, 0);
    if (c.ok <= 0) return c.ok;
    if (!st.last) { /* nothing ran here: the plain path */
        pg->n_ops = 0;
        pg->n_slots = N_EXTERNAL;
        pg->has_trainable = 0;
        return 1;
    }
    op *o = emit(&c, OP_POST, &st);
    if (!o) return 0;
    o->ad = st.last;
    o->a = st.hid;
    if (st.last->cfg.is_parallel) o->d = (ref){new_slot(&c, N), 0};     /* hid + h */
    if (st.last->cfg.original_ln_after) o->e = (ref){new_slot(&c, N), 0}; /* the LN input */
    pg->plain = 0;
    return c.ok;
}

/* ---- memory ------------------------------------------------------------------------------------- */

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

static xa_bneck_spec *op_spec(op *o) { return &o->ad->mods[o->mod].spec; }

/* Lay out the program's values and caches from offset 0 (sizes only when base is NULL). Returns
 * the region size. Gradient slot layout likewise into grad_base, fusion probabilities into
 * probs_base (their size into *probs_bytes). */
static size_t layout(xa_composer *cp, program *pg, char *base, char *grad_base, size_t *grad_bytes,
                     char *probs_base, size_t *probs_bytes, int train) {
    const int C = cp->enc.C;
    size_t off = 0, goff = 0, poff = 0;
    if (base) {
        for (int s = 0; s < N_EXTERNAL; s++) pg->val[s] = pg->grad[s] = NULL;
    }
    for (int s = N_EXTERNAL; s < pg->n_slots; s++) {
        size_t bytes = ALIGN64((size_t)pg->slot_rows[s] * C * sizeof(float));
        if (base) pg->val[s] = (float *)(base + off);
        if (grad_base) pg->grad[s] = (float *)(grad_base + goff);
        off += bytes;
        goff += bytes;
    }
    for (int i = 0; i < pg->n_ops; i++) {
        op *o = &pg->ops[i];
        int rows = o->B * o->T;
        if (o->kind == OP_SINGLE) {
            size_t cb = ALIGN64(xa_bneck_cache_bytes(op_spec(o), rows, train));
            if (base) xa_bneck_cache_bind(&o->bc, op_spec(o), base + off, rows, train);
            off += cb;
            if (base) o->lens = (int32_t *)(base + off);
            off += ALIGN64((size_t)o->B * sizeof(int32_t));
        } else if (o->kind == OP_FUSE) {
            xa_fusion *m = &o->fu->mods[o->mod];
            size_t cb = ALIGN64(xa_fusion_cache_bytes(&m->spec, rows, train));
            if (base) xa_fusion_cache_bind(&o->fc, &m->spec, base + off, rows, train);
            off += cb;
            if (probs_base) o->probs = (float *)(probs_base + poff);
            poff += ALIGN64((size_t)rows * o->n * sizeof(float)); /* (rows, n) */
        } else if (o->kind == OP_PRE || o->kind == OP_POST) {
            if (base) {
                o->mean = (float *)(base + off);
                o->rstd = o->mean + rows;
            }
            off += ALIGN64(2 * (size_t)rows * sizeof(float));
        }
    }
    if (grad_bytes) *grad_bytes = goff;
    if (probs_bytes) *probs_bytes = poff;
    return off;
}

/* A program's fusion probabilities region (NULL when no program has a Fuse). */
static char *probs_at(const xa_composer *cp, size_t off) {
    return cp->probs_mem ? cp->probs_mem + off : NULL;
}

xa_status xa_composer_plan(xa_composer *cp, int B, int T, int M, int train) {
    plan_free(cp);
    const int L = cp->enc.L, C = cp->enc.C;
    cp->share_layers = train == XA_COMPOSE_RECOMPUTE;
    train = train != 0;
    if (B <= 0 || T <= 0 || M < 0 || (int64_t)B * T > XA_MAX_BATCH_TOKENS || M > XA_MAX_BATCH_TOKENS)
        return xa_error_set(XA_STATUS_USAGE, "xa_composer_plan",
                            "B, T > 0 and M >= 0, at most 16777216 tokens a batch", NULL,
                            "B=%d T=%d M=%d", B, T, M);
    int rep = xa_composer_replicas(cp);
    if (B % rep)
        return xa_error_set(XA_STATUS_CONFIG, "xa_composer_plan", "a batch divisible by the Parallel width",
                            "the caller repeats each batch replicas() times", "B=%d with Parallel over %d",
                            B, rep);
    cp->progs = calloc((size_t)2 * L, sizeof *cp->progs);
    if (!cp->progs) goto nomem;
    size_t total = 0, gmax = 0, ptotal = 0, pair = 0;
    for (int pos = 0; pos < 2 * L; pos++) {
        program *pg = &cp->progs[pos];
        int ok = compile(cp, pg, pos, B, T);
        if (ok == 0) goto nomem;
        if (ok < 0) {
            plan_free(cp);
            return xa_error_set(XA_STATUS_CONFIG, "xa_composer_plan",
                                "BatchSplit sizes that sum to the batch, Split sizes that sum to the sequence length",
                                "plan with B equal to the sum of batch_sizes (T to the sum of splits)",
                                "the setup's sizes do not match B=%d T=%d", B, T);
        }
        size_t g = 0;
        pg->region_bytes = layout(cp, pg, NULL, NULL, &g, NULL, &pg->probs_bytes, train);
        pg->grad_bytes = g;
        ptotal += pg->probs_bytes;
        pg->plan_slots = pg->n_slots;
        pg->val = calloc((size_t)pg->n_slots + 1, sizeof *pg->val);
        pg->grad = calloc((size_t)pg->n_slots + 1, sizeof *pg->grad);
        if (!pg->val || !pg->grad) goto nomem;
        if (cp->share_layers) { /* the largest (ATTN, FFN) pair of one layer */
            pair = pos % 2 ? pair + pg->region_bytes : pg->region_bytes;
            if (pair > total) total = pair;
        } else {
            total = train ? total + pg->region_bytes : (pg->region_bytes > total ? pg->region_bytes : total);
        }
        if (g > gmax) gmax = g;
    }
    cp->mem_bytes = total;
    cp->grad_bytes = train ? gmax : 0;
    cp->mem = total ? xa_aligned_alloc(total, 64) : NULL;
    cp->grad_mem = cp->grad_bytes ? xa_aligned_alloc(cp->grad_bytes, 64) : NULL;
    cp->scratch = xa_aligned_alloc(2 * (size_t)B * T * C * sizeof(float), 64);
    cp->probs_mem = ptotal ? xa_aligned_alloc(ptotal, 64) : NULL;
    if ((total && !cp->mem) || (cp->grad_bytes && !cp->grad_mem) || !cp->scratch ||
        (ptotal && !cp->probs_mem))
        goto nomem;
    size_t off = 0, poff = 0;
    for (int pos = 0; pos < 2 * L; pos++) {
        program *pg = &cp->progs[pos];
        if (cp->share_layers && pos % 2 == 0) off = 0;
        layout(cp, pg, cp->mem + off, train ? cp->grad_mem : NULL, NULL, probs_at(cp, poff), NULL,
               train);
        if (train) off += pg->region_bytes;
        poff += pg->probs_bytes;
    }
    /* the invertible adapter of the first leaf */
    cp->inv = NULL;
    if (cp->setup) {
        xa_adapter *a = xa_composer_adapter(cp, xa_setup_first(cp->setup));
        if (a && a->has_inv) cp->inv = a;
    }
    if (cp->inv) {
        size_t fb = ALIGN64(xa_inv_cache_bytes(&cp->inv->inv.spec, B * T, train));
        size_t rb = ALIGN64(xa_inv_cache_bytes(&cp->inv->inv.spec, M > 0 ? M : 1, train));
        cp->inv_mem = xa_aligned_alloc(fb + rb, 64);
        if (!cp->inv_mem) goto nomem;
        xa_inv_cache_bind(&cp->inv_fwd, &cp->inv->inv.spec, cp->inv_mem, B * T, train);
        xa_inv_cache_bind(&cp->inv_rev, &cp->inv->inv.spec, cp->inv_mem + fb, M > 0 ? M : 1, train);
    }
    cp->B = B;
    cp->T = T;
    cp->M = M;
    cp->train = train;
    cp->cur_B = B;
    cp->cur_T = T;
    cp->planned = 1;
    return XA_STATUS_OK;
nomem:
    plan_free(cp);
    return xa_error_set(XA_STATUS_NOMEM, "xa_composer_plan", NULL, NULL,
                        "cannot allocate adapter activations for B=%d T=%d", B, T);
}

size_t xa_composer_plan_bytes(const xa_composer *cp) {
    if (!cp->planned) return 0;
    size_t probs = 0, inv = 0;
    for (int pos = 0; pos < 2 * cp->enc.L; pos++) probs += cp->progs[pos].probs_bytes;
    if (cp->inv)
        inv = ALIGN64(xa_inv_cache_bytes(&cp->inv->inv.spec, cp->B * cp->T, cp->train)) +
              ALIGN64(xa_inv_cache_bytes(&cp->inv->inv.spec, cp->M > 0 ? cp->M : 1, cp->train));
    return cp->mem_bytes + cp->grad_bytes + 2 * (size_t)cp->B * cp->T * cp->enc.C * sizeof(float) + probs + inv;
}

/* A batch of another shape: recompile into the planned memory (every slot only shrinks).
 * Returns 0, or -1 when the setup does not fit B (BatchSplit sizes, Parallel width): the programs
 * are then compiled back to the current shape, which fitted. */
static int reshape(xa_composer *cp, int B, int T) {
    XA_ASSERT(B <= cp->B && T <= cp->T);
    size_t off = 0, poff = 0;
    for (int pos = 0; pos < 2 * cp->enc.L; pos++) {
        program *pg = &cp->progs[pos];
        int ok = compile(cp, pg, pos, B, T);
        if (ok < 0 && (B != cp->cur_B || T != cp->cur_T)) {
            XA_ASSERT(reshape(cp, cp->cur_B, cp->cur_T) == 0);
            return -1;
        }
        XA_ASSERT(ok == 1);
        XA_ASSERT(pg->n_slots <= pg->plan_slots);
        if (cp->share_layers && pos % 2 == 0) off = 0;
        layout(cp, pg, cp->mem + off, cp->train ? cp->grad_mem : NULL, NULL, probs_at(cp, poff),
               NULL, cp->train);
        if (cp->train) off += pg->region_bytes;
        poff += pg->probs_bytes; /* the planned size: a smaller batch only uses less of it */
    }
    cp->cur_B = B;
    cp->cur_T = T;
    return 0;
}

/* ---- running a program ---------------------------------------------------------------------------- */

static float *val(const program *pg, ref r, const xa_hook_sublayer *s) {
    if (r.slot == SLOT_NONE) return NULL;
    float *base = r.slot == SLOT_H ? (float *)s->h : r.slot == SLOT_X ? (float *)s->x
                : r.slot == SLOT_OUT ? s->out : pg->val[r.slot];
    return base + r.off * s->C;
}

typedef struct gctx {
    float *dh, *dx;
    const float *dout;
} gctx;

static float *grd(const program *pg, ref r, const gctx *g, int C) {
    if (r.slot == SLOT_NONE) return NULL;
    float *base = r.slot == SLOT_H ? g->dh : r.slot == SLOT_X ? g->dx
                : r.slot == SLOT_OUT ? (float *)g->dout : pg->grad[r.slot];
    return base ? base + r.off * C : NULL;
}

static int same(ref a, ref b) { return a.slot == b.slot && a.off == b.off; }

/* rows [t0, t0 + n) of every sequence in a (B, Tsrc) block <-> a (B, n) block */
static void gather_pos(float *dst, const float *src, int B, int Tsrc, int t0, int n, int C, int add) {
    for (int b = 0; b < B; b++) {
        const float *sp = src + ((size_t)b * Tsrc + t0) * C;
        float *dp = dst + (size_t)b * n * C;
        if (add) xa_axpy(dp, sp, 1.0f, (size_t)n * C);
        else memcpy(dp, sp, (size_t)n * C * sizeof(float));
    }
}

static void scatter_pos(float *dst, const float *src, int B, int Tdst, int t0, int n, int C, int add) {
    for (int b = 0; b < B; b++) {
        float *dp = dst + ((size_t)b * Tdst + t0) * C;
        const float *sp = src + (size_t)b * n * C;
        if (add) xa_axpy(dp, sp, 1.0f, (size_t)n * C);
        else memcpy(dp, sp, (size_t)n * C * sizeof(float));
    }
}

/* SINGLE op i can leave o = up + r to the op after it when that op is a LayerNorm over o + x
 * (the next stacked adapter's PRE, or POST): the sum then forms inside the LayerNorm's pass
 * (xa_layernorm_residual_forward), bit for bit as the separate passes would. */
static int defers_sum(const xa_composer *cp, const program *pg, int i) {
    const op *o = &pg->ops[i];
    if (o->up_only || i + 1 >= pg->n_ops) return 0;
    const op *nx = &pg->ops[i + 1];
    if (nx->kind == OP_POST ? nx->d.slot != SLOT_NONE || nx->e.slot == SLOT_NONE : nx->kind != OP_PRE)
        return 0;
    if (!same(nx->a, o->c) || nx->B * nx->T != o->B * o->T) return 0;
    return xa_bneck_output_is_residual_sum(&o->ad->mods[o->mod], cp->mode_train);
}

/* p + r0 rows of width C, NULL staying NULL */
static float *rows_at(const float *p, int64_t r0, int C) {
    return p ? (float *)p + r0 * C : NULL;
}

/* The ops of one program over rows [r0, r0 + nr) of every op (nr > 0: a row block of a program
 * that runs_by_rows), or over each op's own rows (nr == 0, r0 == 0). With a training plan every
 * sum that backward reads is kept (PRE's c, POST's e); an inference plan keeps only what later
 * ops read, and the LayerNorms of PRE and POST run fused with the residual sums before them: one
 * pass over the rows instead of two or three. */
static void run_ops(xa_composer *cp, program *pg, const xa_hook_sublayer *s, int64_t r0, int nr) {
    const int C = s->C;
    xa_rng *rng = cp->mode_train ? cp->rng : NULL;
    float *out = rows_at(s->out, r0, C);
    const float *x = rows_at(s->x, r0, C), *h = rows_at(s->h, r0, C);
    const op *pend = NULL; /* a SINGLE whose o = up + r is left to this op */
#define V(r) rows_at(val(pg, (r), s), r0, C)
    for (int i = 0; i < pg->n_ops; i++) {
        op *o = &pg->ops[i];
        const int rows = nr ? nr : o->B * o->T;
        const size_t n = (size_t)rows * C;
        float *mean = rows_at(o->mean, r0, 1), *rstd = rows_at(o->rstd, r0, 1);
        /* the input hid of PRE / POST: a slot, or up + r of the pending SINGLE (kept in its slot
         * when a later op may read it) */
        const float *ia = pend ? rows_at(pend->bc.up, r0, C) : V(o->a);
        const float *ib = pend ? V(pend->b) : NULL;
        switch (o->kind) {
        case OP_PRE: {
            float *sum = cp->train || o->sum_read ? V(o->c) : NULL;
            if (pend)
                xa_layernorm_residual_forward(V(o->d), V(pend->c), sum, mean, rstd, ia, ib,
                                              V(o->b), s->ln_w, s->ln_b, rows, C, s->eps);
            else
                xa_layernorm_residual_forward(V(o->d), NULL, sum, mean, rstd, ia, V(o->b), NULL,
                                              s->ln_w, s->ln_b, rows, C, s->eps);
            break;
        }
        case OP_SINGLE: {
            const int defer = defers_sum(cp, pg, i);
            float *so = o->up_only || defer ? NULL : V(o->c);
            if (nr)
                xa_bneck_forward_rows(&o->ad->mods[o->mod], &o->bc, so, V(o->a), V(o->b), r0, nr);
            else
                xa_bneck_forward(&o->ad->mods[o->mod], &o->bc, so, V(o->a), V(o->b), o->lens, o->B,
                                 o->T, cp->mode_train, rng);
            if (defer) {
                XA_ASSERT(o->b.slot != SLOT_NONE);
                pend = o;
                continue;
            }
            break;
        }
        case OP_FUSE: {
            XA_ASSERT(!nr);
            const float *ups[XA_SETUP_MAX_CHILDREN];
            for (int k = 0; k < o->n; k++) ups[k] = pg->ops[o->ups[k]].bc.up;
            o->fc.row0 = (int64_t)s->row0 * o->T;
            xa_fusion_forward(&o->fu->mods[o->mod], &o->fc, V(o->c), o->probs, V(o->a), ups,
                              V(o->b), rows, cp->mode_train, rng);
            break;
        }
        case OP_AVG: {
            float *avg = V(o->c);
            memset(avg, 0, n * sizeof(float));
            for (int k = 0; k < o->n; k++) xa_axpy(avg, V(o->refs[k]), o->w[k], n);
            break;
        }
        case OP_GATHER:
            XA_ASSERT(!nr);
            gather_pos(V(o->c), V(o->a), o->B, o->rows_src_T, o->t0, o->T, C, 0);
            break;
        case OP_SCATTER:
            XA_ASSERT(!nr);
            scatter_pos(V(o->c), V(o->a), o->B, o->rows_src_T, o->t0, o->T, C, 0);
            break;
        case OP_ROWCAT: memcpy(V(o->c), V(o->a), n * sizeof(float)); break;
        case OP_POST: {
            const float *t = ia;
            if (o->d.slot != SLOT_NONE) { /* parallel: hid + h (never after a pending sum) */
                xa_residual_forward(V(o->d), t, h, n);
                t = V(o->d);
            }
            if (o->e.slot != SLOT_NONE) {
                /* nothing reads the pending SINGLE's o after POST: it is not kept */
                float *sum = cp->train ? V(o->e) : NULL;
                if (pend)
                    xa_layernorm_residual_forward(out, NULL, sum, mean, rstd, ia, ib, x, s->ln_w,
                                                  s->ln_b, rows, C, s->eps);
                else
                    xa_layernorm_residual_forward(out, NULL, sum, mean, rstd, t, x, NULL, s->ln_w,
                                                  s->ln_b, rows, C, s->eps);
            } else {
                memcpy(out, t, n * sizeof(float));
            }
            break;
        }
        }
        pend = NULL;
    }
#undef V
}

/* The row block of a program that can run as one parallel region, each thread taking whole row
 * blocks through every op (0: run the ops one after the other, each kernel splitting its own
 * work). That needs an inference forward whose ops all work row by row on the hook's N rows
 * (PRE, POST, SINGLE of a row-local module; no Split, BatchSplit, Parallel, Average or Fuse) and
 * products that xa_sgemm would split by rows at the same blocks (xa_linear_row_block): then each
 * thread makes the single-threaded products the separate calls would, and every float is the
 * same. The gain is one parallel region per site instead of one per kernel (about 10 for
 * Stack(lang, task)) and a thread that keeps its rows in its own cache from op to op. */
static int runs_by_rows(const xa_composer *cp, const program *pg, const xa_hook_sublayer *s) {
    if (cp->mode_train) return 0;
    const int64_t N = (int64_t)s->B * s->T;
    enum { MAX_PRODUCTS = 32 };
    int in[MAX_PRODUCTS], outw[MAX_PRODUCTS], n = 0;
    for (int i = 0; i < pg->n_ops; i++) {
        const op *o = &pg->ops[i];
        if ((int64_t)o->B * o->T != N) return 0;
        if (o->kind == OP_SINGLE) {
            const xa_bneck *m = &o->ad->mods[o->mod];
            if (o->up_only || !xa_bneck_rows_local(m) || n + 2 > MAX_PRODUCTS)
                return 0;
            in[n] = m->spec.C, outw[n++] = m->spec.d;  /* down */
            in[n] = m->spec.d, outw[n++] = m->spec.C;  /* up */
        } else if (o->kind != OP_PRE && o->kind != OP_POST) {
            return 0;
        }
    }
    return N <= INT32_MAX ? xa_linear_row_block((int)N, in, outw, n) : 0;
}

/* Forward of one program: row blocks in one parallel region when runs_by_rows allows it, else
 * the ops one after the other. */
static void run_forward(xa_composer *cp, program *pg, const xa_hook_sublayer *s) {
    for (int i = 0; i < pg->n_ops; i++) {
        op *o = &pg->ops[i];
        if (o->kind != OP_SINGLE) continue;
        for (int b = 0; b < o->B; b++) {
            int len = s->lens ? s->lens[o->b0 + b] - o->t0 : o->T;
            o->lens[b] = len < 1 ? 1 : len > o->T ? o->T : len;
        }
        o->bc.row0 = (int64_t)s->row0 * o->T; /* the op's (B, T) block of a global (B', T) one */
    }
    const int blk = runs_by_rows(cp, pg, s);
    int serial = 1;
#ifdef XA_HAVE_OPENMP
    if (blk) {
        const int N = s->B * s->T, n_blk = (N + blk - 1) / blk;
        XA_OMP("omp parallel num_threads(xa_threads_get())")
        {
            const int team = omp_get_num_threads();
            /* a team of one (the runtime gave no more threads) is not an active region, where
             * xa_sgemm would split a block's products itself: the ops then run as usual */
            if (team > 1) {
                for (int k = omp_get_thread_num(); k < n_blk; k += team) {
                    const int r0 = k * blk, nr = N - r0 < blk ? N - r0 : blk;
                    run_ops(cp, pg, s, r0, nr);
                }
                XA_OMP("omp single nowait")
                serial = 0;
            }
        }
    }
#else
    (void)blk;
#endif
    if (serial) run_ops(cp, pg, s, 0, 0);
}

static void run_backward(xa_composer *cp, program *pg, const xa_hook_sublayer *s, const gctx *g,
                         float *dln_w, float *dln_b) {
    const int C = s->C;
    for (int k = N_EXTERNAL; k < pg->n_slots; k++)
        memset(pg->grad[k], 0, (size_t)pg->slot_rows[k] * C * sizeof(float));
    for (int i = pg->n_ops - 1; i >= 0; i--) {
        op *o = &pg->ops[i];
        const int rows = o->B * o->T;
        const size_t n = (size_t)rows * C;
        switch (o->kind) {
        case OP_POST: {
            float *dt = o->d.slot != SLOT_NONE ? grd(pg, o->d, g, C) : grd(pg, o->a, g, C);
            if (o->e.slot != SLOT_NONE) {
                float *de = grd(pg, o->e, g, C);
                xa_layernorm_backward(de, dln_w, dln_b, g->dout, val(pg, o->e, s), s->ln_w,
                                      o->mean, o->rstd, rows, C);
                xa_axpy(dt, de, 1.0f, n);
                xa_axpy(g->dx, de, 1.0f, n);
            } else {
                xa_axpy(dt, g->dout, 1.0f, n);
            }
            if (o->d.slot != SLOT_NONE) {
                xa_axpy(grd(pg, o->a, g, C), dt, 1.0f, n);
                xa_axpy(g->dh, dt, 1.0f, n);
            }
            break;
        }
        case OP_ROWCAT: xa_axpy(grd(pg, o->a, g, C), grd(pg, o->c, g, C), 1.0f, n); break;
        case OP_SCATTER:
            gather_pos(grd(pg, o->a, g, C), grd(pg, o->c, g, C), o->B, o->rows_src_T, o->t0, o->T, C, 1);
            break;
        case OP_GATHER:
            scatter_pos(grd(pg, o->a, g, C), grd(pg, o->c, g, C), o->B, o->rows_src_T, o->t0, o->T, C, 1);
            break;
        case OP_AVG:
            for (int k = 0; k < o->n; k++)
                xa_axpy(grd(pg, o->refs[k], g, C), grd(pg, o->c, g, C), o->w[k], n);
            break;
        case OP_FUSE: {
            const float *ups[XA_SETUP_MAX_CHILDREN];
            float *dups[XA_SETUP_MAX_CHILDREN];
            for (int k = 0; k < o->n; k++) {
                op *u = &pg->ops[o->ups[k]];
                ups[k] = u->bc.up;
                dups[k] = pg->grad[u->up_grad];
            }
            float *dq = grd(pg, o->a, g, C), *dr = grd(pg, o->b, g, C);
            float *tmp = NULL;
            if (same(o->a, o->b)) { /* query and residual are one tensor: keep the sums apart */
                tmp = cp->scratch;
                memset(tmp, 0, n * sizeof(float));
                dr = tmp;
            }
            xa_fusion_backward(&o->fu->mods[o->mod], &o->fc, dq, dups, dr, grd(pg, o->c, g, C),
                               val(pg, o->a, s), ups, val(pg, o->b, s), rows);
            if (tmp) xa_axpy(dq, tmp, 1.0f, n);
            break;
        }
        case OP_SINGLE: {
            float *dz = grd(pg, o->a, g, C), *dr = grd(pg, o->b, g, C), *tmp = NULL;
            if (o->b.slot != SLOT_NONE && same(o->a, o->b)) {
                tmp = cp->scratch;
                memset(tmp, 0, n * sizeof(float));
                dr = tmp;
            }
            const float *dup = o->up_grad != SLOT_NONE ? pg->grad[o->up_grad] : NULL;
            xa_bneck_backward(&o->ad->mods[o->mod], &o->bc, dz, dr,
                              o->up_only ? NULL : grd(pg, o->c, g, C), dup, val(pg, o->a, s),
                              val(pg, o->b, s), o->lens, o->B, o->T);
            if (tmp) xa_axpy(dz, tmp, 1.0f, n);
            break;
        }
        case OP_PRE: {
            float *ds = grd(pg, o->c, g, C);
            xa_layernorm_backward(ds, dln_w, dln_b, grd(pg, o->d, g, C), val(pg, o->c, s), s->ln_w,
                                  o->mean, o->rstd, rows, C);
            xa_axpy(grd(pg, o->a, g, C), ds, 1.0f, n);
            xa_axpy(grd(pg, o->b, g, C), ds, 1.0f, n);
            break;
        }
        }
    }
}

/* ---- the hook ------------------------------------------------------------------------------------- */

/* Before a forward: a batch of another shape (a shorter last batch) recompiles the programs; a
 * setup that cannot split it is an error, not an abort. */
static xa_status hook_prepare(void *ctx, int B, int T) {
    xa_composer *cp = ctx;
    if (!cp->setup || !cp->planned || (B == cp->cur_B && T == cp->cur_T)) return XA_STATUS_OK;
    if (B > cp->B || T > cp->T)
        return xa_error_set(XA_STATUS_USAGE, "xa_composer", "a batch within the plan", NULL,
                            "batch %dx%d is larger than the planned %dx%d", B, T, cp->B, cp->T);
    if (reshape(cp, B, T) == 0) return XA_STATUS_OK;
    char text[256];
    xa_setup_format(cp->setup, text, sizeof text);
    return xa_error_set(XA_STATUS_CONFIG, "xa_composer",
                        "BatchSplit sizes that sum to the batch, Split sizes that sum to the sequence length",
                        "a shorter batch (the last one of an epoch, or a length-bucketed one) cannot "
                        "be split the same way: use a batch size and data size that the setup divides",
                        "setup %s cannot split a batch of %d x %d tokens", text, B, T);
}

static int hook_sublayer_forward(void *ctx, xa_hook_site site, int layer, const xa_hook_sublayer *s) {
    xa_composer *cp = ctx;
    if (!cp->setup || !cp->planned || cp->skip[layer]) return 0;
    /* xa_encoder_forward calls hook_prepare first; only a caller that bypasses it gets here */
    if (s->B != cp->cur_B || s->T != cp->cur_T) XA_ASSERT(reshape(cp, s->B, s->T) == 0);
    program *pg = &cp->progs[2 * layer + (site == XA_HOOK_FFN)];
    if (pg->plain) return 0;
    run_forward(cp, pg, s);
    return 1;
}

static void hook_sublayer_backward(void *ctx, xa_hook_site site, int layer,
                                   const xa_hook_sublayer *s, const float *dout, float *dh,
                                   float *dx, float *dln_w, float *dln_b) {
    xa_composer *cp = ctx;
    XA_ASSERT(cp->train);
    program *pg = &cp->progs[2 * layer + (site == XA_HOOK_FFN)];
    gctx g = {dh, dx, dout};
    run_backward(cp, pg, s, &g, dln_w, dln_b);
}

static int hook_rows_forward(void *ctx, xa_hook_site site, float *out, const float *inp, int N, int C) {
    xa_composer *cp = ctx;
    (void)C;
    if (!cp->setup || !cp->planned || !cp->inv) return 0;
    if (site == XA_HOOK_EMBED) xa_inv_forward(&cp->inv->inv, &cp->inv_fwd, out, inp, N);
    else if (site == XA_HOOK_MLM) {
        XA_ASSERT(N <= (cp->M > 0 ? cp->M : 1));
        xa_inv_inverse(&cp->inv->inv, &cp->inv_rev, out, inp, N);
    } else return 0;
    return 1;
}

static void hook_rows_backward(void *ctx, xa_hook_site site, float *dinp, const float *dout,
                               const float *inp, int N, int C) {
    xa_composer *cp = ctx;
    (void)C;
    if (site == XA_HOOK_EMBED) xa_inv_forward_backward(&cp->inv->inv, &cp->inv_fwd, dinp, dout, inp, N);
    else xa_inv_inverse_backward(&cp->inv->inv, &cp->inv_rev, dinp, dout, inp, N);
}

static int hook_lowest_trainable(void *ctx) {
    xa_composer *cp = ctx;
    const int L = cp->enc.L;
    if (!cp->setup || !cp->planned) return 2 * L;
    if (cp->inv && cp->inv->trainable) return -1;
    for (int pos = 0; pos < 2 * L; pos++)
        if (!cp->skip[pos / 2] && !cp->progs[pos].plain && cp->progs[pos].has_trainable) return pos;
    return 2 * L;
}

static int hook_shares_layers(void *ctx) { return ((const xa_composer *)ctx)->share_layers; }

void xa_composer_hook(xa_composer *cp, xa_hook *hook) {
    memset(hook, 0, sizeof *hook);
    hook->ctx = cp;
    hook->sublayer_forward = hook_sublayer_forward;
    hook->sublayer_backward = hook_sublayer_backward;
    hook->rows_forward = hook_rows_forward;
    hook->rows_backward = hook_rows_backward;
    hook->lowest_trainable = hook_lowest_trainable;
    hook->prepare = hook_prepare;
    hook->shares_layers = hook_shares_layers;
}

/* ---- gradients ------------------------------------------------------------------------------------ */

void xa_composer_zero_grad(xa_composer *cp) {
    for (int i = 0; i < cp->n_ad; i++)
        if (cp->ad[i]->grads) memset(cp->ad[i]->grads, 0, cp->ad[i]->n_params * sizeof(float));
    for (int i = 0; i < cp->n_fu; i++)
        if (cp->fu[i]->grads) memset(cp->fu[i]->grads, 0, cp->fu[i]->n_params * sizeof(float));
}

float xa_composer_fusion_regularizer(xa_composer *cp, float coef) {
    float total = 0.0f;
    for (int i = 0; i < cp->n_fu; i++) {
        xa_fusion_layer *f = cp->fu[i];
        if (!f->trainable || !f->cfg.regularization) continue;
        for (int pos = 0; pos < 2 * f->L; pos++)
            if (f->present[pos]) total += xa_fusion_regularizer(&f->mods[pos], coef);
    }
    return total;
}

const float *xa_composer_fusion_probs(const xa_composer *cp, int layer, int loc) {
    if (!cp->planned || layer < 0 || layer >= cp->enc.L) return NULL;
    const program *pg = &cp->progs[2 * layer + loc];
    for (int i = pg->n_ops - 1; i >= 0; i--)
        if (pg->ops[i].kind == OP_FUSE) return pg->ops[i].probs;
    return NULL;
}
