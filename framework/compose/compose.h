/* compose: named adapters, fusion layers and the composition engine that implements the encoder's
 * hook (DESIGN.md §3, ADAPTERHUB.md §1.4, §1.6, §1.8).
 *
 *  - xa_setup: a composition tree (Stack, Fuse, Split, BatchSplit, Parallel, Average over adapter
 *    names), parsed from text such as "Stack(lang_de, task)" and checked against AdapterHub's
 *    allowed nestings;
 *  - xa_adapter: one named AdapterHub bottleneck adapter (an xa_bn_config) over all layers: one
 *    parameter group (every per-layer module, the invertible adapter, the shared PHM rule);
 *  - xa_fusion_layer: one named AdapterFusion over n adapters, one parameter group;
 *  - xa_composer: the registry of adapters and fusions, the active setup, AdapterDrop's skipped
 *    layers and the activations, planned once for (B, T); it fills an xa_hook.
 *
 * Semantics follow the reference library's code (ADAPTERHUB.md §1.6): a bottleneck "state" holds
 * (hidden, input x, residual, up, last). Stack runs each adapter child's pre_forward on the current
 * hidden (so LN_o(prev + x) is re-applied before every stacked Pfeiffer adapter, quirk Q8);
 * Fuse runs the LAST child's pre_forward and fuses the children's scaled up-projections; Split,
 * BatchSplit, Parallel and Average run the FIRST adapter's pre_forward, then their children; the
 * sub-layer output is the last applied adapter's post_forward. A bare adapter name is Stack(name).
 *
 * Deliberate differences, documented in docs/ADAPTERS.md:
 *  - Average computes sum_i w_i h_i with weights that sum to 1 (AdapterHub divides that again by
 *    the number of children, quirk Q2, shrinking the residual stream);
 *  - Parallel replicates the batch at the input (the caller runs the encoder on replicas() copies
 *    of the batch) instead of at the first layer that meets the block: identical outputs without
 *    dropout; the layers below the block run on the larger batch;
 *  - gating averages over the real tokens only (adapters.h).
 */
#ifndef XA_COMPOSE_H
#define XA_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "adapters/adapters.h"
#include "core/core.h"
#include "io/hfjson.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XA_NAME_MAX 64             /* adapter and fusion names, NUL included */
#define XA_SETUP_MAX_CHILDREN 16
#define XA_SETUP_MAX_DEPTH 8           /* nesting levels of blocks (text and adapter_setup.json) */
#define XA_SETUP_MAX_SIZE (1 << 20)    /* largest Split / BatchSplit size */
#define XA_COMPOSE_MAX_ADAPTERS 64
#define XA_COMPOSE_MAX_FUSIONS 16

/* ---- composition trees (setup.c) -------------------------------------------------------------- */

typedef enum xa_block {
    XA_BLOCK_ADAPTER = 0, /* a leaf: one adapter by name */
    XA_BLOCK_STACK,
    XA_BLOCK_FUSE,
    XA_BLOCK_SPLIT,       /* sizes: token positions per child (sum = sequence length) */
    XA_BLOCK_BATCHSPLIT,  /* sizes: sequences per child (sum = batch size) */
    XA_BLOCK_PARALLEL,
    XA_BLOCK_AVERAGE,     /* weights (normalised to sum 1) */
} xa_block;

typedef struct xa_setup {
    xa_block kind;
    char name[XA_NAME_MAX];             /* leaf: the adapter; Fuse: the fusion name ("" = children
                                           joined by ",", as AdapterHub names fusions) */
    int n;                              /* children */
    struct xa_setup *child[XA_SETUP_MAX_CHILDREN];
    int sizes[XA_SETUP_MAX_CHILDREN];   /* Split / BatchSplit */
    double weights[XA_SETUP_MAX_CHILDREN]; /* Average, normalised; default 1/n */
} xa_setup;

/* Parse a setup. Grammar (spaces ignored, names [A-Za-z0-9_.:-]+):
 *     setup  := block | name | name ("," name)*     (a name or a list at the top = Stack(...))
 *     block  := Kind "(" item ("," item)* ("," kwarg)* ")"
 *     Kind   := Stack | Fuse | Split | BatchSplit | Parallel | Average   (case-insensitive)
 *     kwarg  := splits=[ints] | batch_sizes=[ints] | weights=[numbers] | name=NAME (Fuse)
 * Blocks nest at most XA_SETUP_MAX_DEPTH levels; sizes are integers in [1, XA_SETUP_MAX_SIZE];
 * weights are finite numbers >= 0 with a positive finite sum.
 * The result is checked with xa_setup_check. Errors: CONFIG naming `where`, the column and what
 * was expected. *out is NULL on failure; free with xa_setup_free. */
xa_status xa_setup_parse(xa_setup **out, const char *text, const char *where);
/* The name rule of every adapter, fusion and head name xadapt loads, saves or composes (each
 * names a directory of a setup: DIR/<name>/): 1 to 63 characters of [A-Za-z0-9_.:-], neither "."
 * nor "..". With list != 0 (fusion names), comma-separated names that each follow the rule
 * (AdapterHub names a fusion "a,b"; the whole list may be longer than 63). 0 when `name` follows it; else CONFIG naming `where`, `what`
 * ("adapter name", ...) and the rule. */
xa_status xa_name_check(const char *name, int list, const char *what, const char *where);
/* A single-leaf Stack(name) / a deep copy; NULL on NOMEM (error set). */
xa_setup *xa_setup_single(const char *name);
xa_setup *xa_setup_clone(const xa_setup *s);
void xa_setup_free(xa_setup *s);
/* Canonical text ("Stack(en, task)", kwargs included); returns the length it needs (snprintf). */
int xa_setup_format(const xa_setup *s, char *buf, size_t n);
/* AdapterHub's ALLOWED_NESTINGS and depth rules (§1.6), child counts (Split/BatchSplit/Parallel/
 * Average/Fuse need >= 2 children... Stack >= 1), sizes in [1, XA_SETUP_MAX_SIZE], weights finite
 * and >= 0 with a positive sum, adapter and explicit fusion names by xa_name_check.
 * CONFIG naming `where`, the block and what is allowed. */
xa_status xa_setup_check(const xa_setup *s, const char *where);
/* The leftmost / rightmost adapter name (AdapterHub first() / last()). */
const char *xa_setup_first(const xa_setup *s);
const char *xa_setup_last(const xa_setup *s);
/* 1 if the tree names adapter `name` anywhere. */
int xa_setup_uses(const xa_setup *s, const char *name);
/* The fusion name of a Fuse block: its explicit name, else its children's last() names joined by
 * ","; written into buf (XA_NAME_MAX * XA_SETUP_MAX_CHILDREN is always enough). */
const char *xa_setup_fusion_name(const xa_setup *s, char *buf, size_t n);

/* ---- adapters (adapter.c) ------------------------------------------------------------------------ */

/* Module index of layer l's location: attention (mh_adapter) 2l, FFN (output_adapter) 2l + 1. */
#define XA_LOC_ATTN 0
#define XA_LOC_FFN 1

typedef struct xa_adapter {
    char name[XA_NAME_MAX];
    xa_bn_config cfg;          /* the AdapterHub config (leave_out included) */
    int L, C;
    float *params;             /* owned: one group, every module + inv + PHM rule */
    float *grads;              /* owned, same layout; NULL when frozen */
    size_t n_params;
    xa_bneck *mods;            /* (2L) module of (layer, location) at 2l + loc */
    uint8_t *present;          /* (2L) 1 where a module exists (flag set, layer not left out) */
    int has_inv;
    xa_inv inv;                /* the invertible adapter (inv_adapter nice / glow) */
    float *phm_rule;           /* (n, n, n) shared_parameters.{name}.phm_rule, or NULL */
    float *phm_rule_grad;      /* NULL when frozen or learn_phm is false */
    int phm_n;
    int trainable;
} xa_adapter;

/* Build an adapter for an encoder of L layers, hidden size C from an AdapterHub config (validated
 * here). Weights are zero until xa_adapter_init_weights or a load. UNSUPPORTED for what xadapt
 * does not implement (cross_adapter, stochastic_depth > 0, a non-shared or factorised PHM rule,
 * shared_W_phm), CONFIG for sizes that do not fit (PHM divisibility), naming `where`. */
xa_status xa_adapter_init(xa_adapter *a, const char *name, const xa_bn_config *cfg, int L, int C,
                          int trainable, const char *where);
void xa_adapter_free(xa_adapter *a);
xa_status xa_adapter_set_trainable(xa_adapter *a, int trainable);
/* AdapterHub's init (§1.1, §1.5, §1.9); init_weights_seed, when set, reseeds per module. */
void xa_adapter_init_weights(xa_adapter *a, xa_rng *rng);
/* Remove the modules of these layers (load-time leave_out, merged into cfg.leave_out). */
void xa_adapter_leave_out(xa_adapter *a, const int *layers, int n);
/* The module spec of (layer, loc) from the config (d from the per-layer reduction factor). */
xa_status xa_adapter_spec(const xa_bn_config *cfg, int layer, int C, xa_bneck_spec *out,
                          const char *where);

/* ---- fusion layers (adapter.c) ------------------------------------------------------------------ */

typedef struct xa_fusion_layer {
    char name[XA_NAME_MAX * XA_SETUP_MAX_CHILDREN]; /* "a,b,c" or an explicit name */
    char adapters[XA_SETUP_MAX_CHILDREN][XA_NAME_MAX];
    int n;
    xa_fusion_config cfg;
    int L, C;
    float *params, *grads;     /* owned; grads NULL when frozen */
    size_t n_params;
    xa_fusion *mods;           /* (2L) */
    uint8_t *present;          /* (2L) where every fused adapter has a module */
    int trainable;
} xa_fusion_layer;

/* Build a fusion layer over the n adapters (2 .. XA_SETUP_MAX_CHILDREN) for an encoder of L layers,
 * hidden size C: one xa_fusion at every (layer, loc) where every adapter has a module. name NULL or
 * "" = the adapter names joined by ",". Dropout: cfg->dropout_prob, or model_attn_dropout when it is
 * null (< 0). Weights are zero until xa_fusion_layer_init_weights or a load. CONFIG (naming
 * `where`) when the adapters differ in mh_adapter / output_adapter or in hidden size, UNSUPPORTED
 * for temperature annealing or value_before_softmax false. On failure f is zeroed. */
xa_status xa_fusion_layer_init(xa_fusion_layer *f, const char *name, const xa_adapter *const *adapters,
                               int n, const xa_fusion_config *cfg, int L, int C,
                               float model_attn_dropout, int trainable, const char *where);
/* Free the buffers (not f itself); accepts NULL. */
void xa_fusion_layer_free(xa_fusion_layer *f);

/* ---- the composer (compose.c) -------------------------------------------------------------------- */

typedef struct xa_composer xa_composer; /* opaque */

/* A composer for an encoder of this architecture (L, C, eps, dropout used by fusion). */
xa_status xa_composer_init(xa_composer **out, const xa_encoder_config *enc);
void xa_composer_free(xa_composer *cp);
const xa_encoder_config *xa_composer_encoder_config(const xa_composer *cp);

/* Add a new adapter (zero weights; trainable allocates gradients). USAGE for a duplicate name.
 * The composer owns it; *out (may be NULL) stays valid until it is removed. */
xa_status xa_composer_add_adapter(xa_composer *cp, const char *name, const xa_bn_config *cfg,
                                  int trainable, xa_adapter **out);
/* Take ownership of an adapter built elsewhere (hub loading); on failure it is freed. */
xa_status xa_composer_take_adapter(xa_composer *cp, xa_adapter *a);
xa_adapter *xa_composer_adapter(const xa_composer *cp, const char *name);
int xa_composer_n_adapters(const xa_composer *cp);
xa_adapter *xa_composer_adapter_at(const xa_composer *cp, int i);
/* Remove and free an adapter; USAGE if the active setup or a fusion uses it. */
xa_status xa_composer_remove_adapter(xa_composer *cp, const char *name);

/* Add a fusion layer over n existing adapters (name NULL = joined names). The adapters must share
 * their location flags (mh_adapter, output_adapter). */
xa_status xa_composer_add_fusion(xa_composer *cp, const char *name, const char *const *adapters,
                                 int n, const xa_fusion_config *cfg, int trainable,
                                 xa_fusion_layer **out);
xa_status xa_composer_take_fusion(xa_composer *cp, xa_fusion_layer *f);
xa_fusion_layer *xa_composer_fusion(const xa_composer *cp, const char *name);
int xa_composer_n_fusions(const xa_composer *cp);
xa_fusion_layer *xa_composer_fusion_at(const xa_composer *cp, int i);
void xa_fusion_layer_init_weights(xa_fusion_layer *f, xa_rng *rng);
xa_status xa_fusion_layer_set_trainable(xa_fusion_layer *f, int trainable);

/* Activate a setup (copied; NULL = plain encoder). Every leaf must name a registered adapter and
 * every Fuse an existing fusion; errors name `where`. Invalidates the plan. */
xa_status xa_composer_activate(xa_composer *cp, const xa_setup *setup, const char *where);
const xa_setup *xa_composer_active(const xa_composer *cp);
/* Copies of the batch the caller must run (Parallel at the top of the setup: its child count;
 * else 1). Row block i of the replicated batch belongs to child i. */
int xa_composer_replicas(const xa_composer *cp);

/* AdapterDrop: layers whose adapter sites take the plain path (skip_layers). */
void xa_composer_set_skip_layers(xa_composer *cp, const int *layers, int n);
/* Skip layers 0 .. k-1 (k = 0 clears). */
void xa_composer_skip_lowest(xa_composer *cp, int k);
/* Robust AdapterDrop training (Rücklé et al. 2021, ADAPTERHUB.md §1.8): draw k uniformly from
 * {0, ..., k_max} and skip layers 0 .. k-1 for this step (one u32 draw from rng). Call before each
 * training forward, and xa_composer_skip_lowest(cp, 0) before evaluation. Returns k. */
int xa_composer_adapterdrop(xa_composer *cp, int k_max, xa_rng *rng);

/* Plan activations for batches of at most B rows (after replication) of T tokens and M masked
 * rows at the MLM site; train keeps what backward needs at every layer (1), or, with
 * XA_COMPOSE_RECOMPUTE (2, for an encoder whose activations are XA_ACTS_RECOMPUTE), what backward
 * needs for ONE layer: every layer's two sub-layer programs share one region, which the encoder's
 * recomputed forward of a layer refills before that layer's backward. Call after activate. */
xa_status xa_composer_plan(xa_composer *cp, int B, int T, int M, int train);
#define XA_COMPOSE_RECOMPUTE 2 /* a mismatch with the encoder's mode (RECOMPUTE here, TRAIN there)
                                  gives wrong gradients: the phases derive both from one knob */
/* Bytes the current plan holds: the programs' regions, the shared gradient slots, the backward
 * scratch, the fusion probabilities and the invertible adapter's caches (0 when not planned). */
size_t xa_composer_plan_bytes(const xa_composer *cp);
/* Dropout mode for the next forward: train != 0 draws adapter and fusion dropout from rng. */
void xa_composer_set_mode(xa_composer *cp, int train, xa_rng *rng);
/* Fill hook with the composer's callbacks (ctx = cp). */
void xa_composer_hook(xa_composer *cp, xa_hook *hook);

/* Zero the gradients of every trainable adapter and fusion. */
void xa_composer_zero_grad(xa_composer *cp);
/* The dynamic fusion regulariser coef * sum over trainable fusion value matrices ||I - V||^2
 * (adds its gradient); 0 when none has one. */
float xa_composer_fusion_regularizer(xa_composer *cp, float coef);
/* Fusion attention probabilities of the last forward at (layer, loc), (N, n) rows (N = B*T of that
 * forward, n = the fusion's children; the last Fuse when a program has several), or NULL where no
 * Fuse runs. Every (layer, loc) keeps its own values, in training and inference plans alike; owned
 * by cp, valid until the next forward, plan or activate. */
const float *xa_composer_fusion_probs(const xa_composer *cp, int layer, int loc);

#ifdef __cplusplus
}
#endif
#endif /* XA_COMPOSE_H */
