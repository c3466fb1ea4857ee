/* optim: AdamW over a table of parameter groups, global-norm gradient clipping, and the
 * learning-rate schedules of HF transformers. Depends on core only.
 *
 * A parameter group is one flat float buffer (an encoder, one adapter, one head, or any contiguous
 * part of one) with its gradient buffer beside it. The optimizer keeps a table of groups; it owns
 * only the AdamW moments, which exist for trainable groups alone (frozen groups carry no gradient
 * or optimizer memory). Gradients are per group and flat, so a data-parallel run can all-reduce
 * each trainable group's `grads` in one call before xa_optim_clip_grad_norm / xa_optim_step.
 *
 * Hyper-parameters are doubles like the Python floats torch receives; they are rounded to float
 * where torch rounds them, so a step matches torch.optim.AdamW to float rounding.
 *
 * Typical step:
 *     double lr = xa_sched_lr(&sched, opt.groups[0].step);   // steps completed so far
 *     double norm = xa_optim_clip_grad_norm(&opt, 1.0);
 *     xa_optim_step(&opt, lr);
 *     xa_optim_zero_grad(&opt);
 */
#ifndef XA_OPTIM_H
#define XA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter groups and AdamW ------------------------------------------------------------- */

#define XA_PARAM_GROUP_NAME 96

typedef struct xa_param_group {
    char name[XA_PARAM_GROUP_NAME]; /* unique in the table, e.g. "adapter.en" */
    float *params;                  /* (n) caller-owned; updated in place by xa_optim_step */
    float *grads;                   /* (n) caller-owned; NULL for a frozen group */
    float *m;                       /* (n) AdamW first moment, owned; NULL for a frozen group */
    float *v;                       /* (n) AdamW second moment, owned; NULL for a frozen group */
    size_t n;                       /* number of parameters */
    double lr_scale;                /* this group's lr = schedule lr * lr_scale */
    double weight_decay;            /* decoupled weight decay (0 for biases and norms, HF style) */
    int trainable;                  /* 0: skipped by clip, step and zero_grad */
    int64_t step;                   /* AdamW steps taken by this group (torch state["step"]) */
    size_t (*no_decay)[2];          /* (n_no_decay) owned, sorted, disjoint [lo, hi) ranges of
                                       params that weight_decay skips (xa_optim_set_no_decay) */
    size_t n_no_decay;
} xa_param_group;

typedef struct xa_optim {
    xa_param_group *groups; /* (n_groups) owned table */
    size_t n_groups;
    size_t cap;
    double beta1; /* torch default 0.9 */
    double beta2; /* torch default 0.999 */
    double eps;   /* torch default 1e-8 */
} xa_optim;

/* An empty table with AdamW hyper-parameters. Errors: USAGE unless 0 <= beta1, beta2 < 1 and
 * eps >= 0. Free with xa_optim_free (also after a failed init). */
xa_status xa_optim_init(xa_optim *opt, double beta1, double beta2, double eps);
/* Free the table and all moments (not params or grads). Accepts NULL and a zeroed struct. */
void xa_optim_free(xa_optim *opt);

/* Append a group. A trainable group needs grads and gets zeroed moments (2n floats); a frozen
 * group keeps params only (grads is ignored and stored as NULL). Returns the group through *out
 * (may be NULL; valid until the next add). Errors: USAGE for an empty, too long or duplicate name,
 * NULL params with n > 0, or a trainable group without grads; NOMEM. */
xa_status xa_optim_add_group(xa_optim *opt, const char *name, float *params, float *grads, size_t n,
                             double lr_scale, double weight_decay, int trainable,
                             xa_param_group **out);
/* Exclude the parameters [ranges[i][0], ranges[i][1]) of group `name` from its weight decay, as
 * HF Trainer keeps biases and LayerNorm weights out of decay when a group is one flat buffer
 * holding several tensors: a torch param group per part, without splitting the buffer or its
 * moments. Ranges are copied, sorted and merged; replaces earlier ranges. Errors: USAGE for an
 * unknown group or a range outside [0, n) or empty; NOMEM. */
xa_status xa_optim_set_no_decay(xa_optim *opt, const char *name, const size_t (*ranges)[2], size_t n);
/* The group called `name`, or NULL. */
xa_param_group *xa_optim_find(xa_optim *opt, const char *name);
/* Total number of parameters in trainable groups. */
size_t xa_optim_n_trainable(const xa_optim *opt);

/* grads = 0 for every trainable group. */
void xa_optim_zero_grad(xa_optim *opt);
/* L2 norm of all trainable gradients together (double accumulation). */
double xa_optim_grad_norm(const xa_optim *opt);
/* torch.nn.utils.clip_grad_norm_ over the trainable groups: with the total norm g,
 * coef = max_norm / (g + 1e-6); when coef < 1 every gradient is multiplied by coef.
 * max_norm <= 0 only measures. Returns g before clipping (NaN/inf when a gradient is not finite;
 * then nothing is scaled and the caller should skip the step). */
double xa_optim_clip_grad_norm(xa_optim *opt, double max_norm);
/* One AdamW step on every trainable group, exactly as torch.optim.AdamW (amsgrad off): with the
 * group's lr_g = lr * lr_scale and t = ++step,
 *     p -= lr_g * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *     p -= lr_g / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * The decay term is skipped on the group's no-decay ranges. */
void xa_optim_step(xa_optim *opt, double lr);

/* ---- learning-rate schedules ------------------------------------------------------------------
 */

typedef enum xa_sched_kind {
    XA_SCHED_KIND_CONSTANT = 0,         /* "constant": lr_max throughout (warmup ignored, as HF) */
    XA_SCHED_KIND_CONSTANT_WITH_WARMUP, /* "constant_with_warmup" */
    XA_SCHED_KIND_LINEAR,               /* "linear": warmup, then linear decay to 0 at n_steps */
    XA_SCHED_KIND_COSINE,               /* "cosine": warmup, then half a cosine to 0 at n_steps */
} xa_sched_kind;

typedef struct xa_sched {
    xa_sched_kind kind;
    double lr_max;    /* peak learning rate */
    int64_t n_warmup; /* linear warmup from 0 over this many steps */
    int64_t n_steps;  /* total optimizer steps (end of the decay) */
    double n_cycles;  /* cosine only: 0.5 (HF default) = one half-wave down to 0 */
} xa_sched;

/* The multiplier HF's LambdaLR applies after `step` completed optimizer steps (so the first step
 * uses factor(0), which is 0 with warmup), exactly as get_constant_schedule,
 * get_constant_schedule_with_warmup, get_linear_schedule_with_warmup and
 * get_cosine_schedule_with_warmup (transformers/optimization.py). */
double xa_sched_factor(const xa_sched *s, int64_t step);
/* lr_max * xa_sched_factor(s, step). */
double xa_sched_lr(const xa_sched *s, int64_t step);
/* Parse HF's SchedulerType names above. Errors: CONFIG naming the value and the known names. */
xa_status xa_sched_parse_kind(const char *name, xa_sched_kind *out);
/* Canonical name; "?" for an invalid value. */
const char *xa_sched_kind_name(xa_sched_kind kind);

#ifdef __cplusplus
}
#endif
#endif /* XA_OPTIM_H */
