/* adapters/invertible: the invertible embedding adapters of MAD-X (ADAPTERHUB.md §1.5), forward
 * and inverse, each with its backward.
 *
 * e = [e1 ; e2] is split on the channel axis (c1 = C/2, c2 = C - c1). Each block holds two
 * subnetworks X(k) = Linear(hid -> out) . act . Linear(k -> hid):
 *
 *   NICE (AdapterHub NICECouplingBlock), A = F: c2 -> c1, B = G: c1 -> c2
 *       forward  o1 = e1 + F(e2);            o2 = e2 + G(o1)
 *       inverse  e2 = o2 - G(o1);            e1 = o1 - F(e2)
 *   GLOW (xadapt's definition, adapters.h), A = s1: c1 -> 2*c2, B = s2: c2 -> 2*c1,
 *       soft clamp E(s) = exp(l(s)), l(s) = c * 0.636 * atan(s / c), c = 5,
 *       l'(s) = 0.636 / (1 + (s / c)^2)
 *       forward  [s2a, t2] = s2(e2); o1 = E(s2a) e1 + t2;  [s1a, t1] = s1(o1); o2 = E(s1a) e2 + t1
 *       inverse  [s1a, t1] = s1(o1); e2 = (o2 - t1) / E(s1a); [s2a, t2] = s2(e2); e1 = (o1 - t2) /
 * E(s2a)
 *
 * Hidden sizes follow AdapterHub's int(k // rf) with Python's float floor division, at least 1.
 *
 * Cache: one direction's cache keeps contiguous copies of the two input halves (x1, x2), the two
 * computed halves (y1, y2), and each subnet's pre-activation, activation and output; a training
 * cache adds backward scratch. Everything is carved from the caller's memory, so forward and
 * backward never allocate. The halves are copied out of the (N, C) rows so that every product is
 * one contiguous xa_linear_* call over all N rows.
 *
 * Not here: AdapterHub's GLOW code (it does not run, quirk Q1), any log-determinant (an encoder
 * adapter never needs the likelihood).
 */
#include "adapters/adapters.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef XA_HAVE_OPENMP
#include <omp.h>
#endif

/* ---- sizes ----------------------------------------------------------------------------------- */

#define INV_CLAMP      5.0f
#define INV_ATAN_SCALE 0.636f
/* The largest subnet hidden size spec_check accepts (keeps every count far from overflow). */
#define INV_MAX_HIDDEN (1 << 24)

/* Python's float a // b for b > 0 (float_floor_div: fmod-based, then rounded to the nearest
 * integer when the quotient is within 0.5 of it), so 1 // 0.1 is 9 as in Python. */
static double py_floordiv(double a, double b) {
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && ((b < 0.0) != (mod < 0.0))) div -= 1.0;
    if (div == 0.0) return 0.0;
    double fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
}

static int inv_hidden(int k, double rf) {
    double h = py_floordiv((double)k, rf);
    if (h < 1.0) return 1;
    if (h > (double)INV_MAX_HIDDEN) return INV_MAX_HIDDEN;
    return (int)h;
}

xa_status xa_inv_spec_check(const xa_inv_spec *s, const char *where) {
    if (s->kind != XA_INV_NICE && s->kind != XA_INV_GLOW) {
        return xa_error_set(XA_STATUS_USAGE, where, "inv_adapter \"nice\" or \"glow\"", NULL,
                            "xa_inv_spec_check: unknown block kind %d", (int)s->kind);
    }
    if (s->C < 2) {
        return xa_error_set(XA_STATUS_USAGE, where, "an embedding size C >= 2", NULL,
                            "xa_inv_spec_check: C is %d", s->C);
    }
    if (!(s->rf > 0.0) || !isfinite(s->rf) || (double)s->C / s->rf > (double)INV_MAX_HIDDEN) {
        return xa_error_set(XA_STATUS_USAGE, where, "inv_adapter_reduction_factor > 0 (finite)",
                            "hint: MAD-X uses 2", "xa_inv_spec_check: rf is %g (C %d)", s->rf,
                            s->C);
    }
    if ((int)s->act < 0 || s->act >= XA_ACT_COUNT) {
        return xa_error_set(XA_STATUS_USAGE, where, "a known non_linearity", NULL,
                            "xa_inv_spec_check: activation %d", (int)s->act);
    }
    return XA_STATUS_OK;
}

/* The two subnets of a block: in, hidden and out widths. */
typedef struct inv_dims {
    int c1, c2, h1, h2;
    int a_in, a_hid, a_out; /* NICE F / GLOW s1 */
    int b_in, b_hid, b_out; /* NICE G / GLOW s2 */
} inv_dims;

static inv_dims inv_dims_of(const xa_inv_spec *s) {
    inv_dims d;
    d.c1 = s->C / 2;
    d.c2 = s->C - d.c1;
    d.h1 = inv_hidden(d.c1, s->rf);
    d.h2 = inv_hidden(d.c2, s->rf);
    if (s->kind == XA_INV_NICE) {
        d.a_in = d.c2, d.a_hid = d.h2, d.a_out = d.c1;
        d.b_in = d.c1, d.b_hid = d.h1, d.b_out = d.c2;
    } else {
        d.a_in = d.c1, d.a_hid = d.h1, d.a_out = 2 * d.c2;
        d.b_in = d.c2, d.b_hid = d.h2, d.b_out = 2 * d.c1;
    }
    return d;
}

size_t xa_inv_sizes(const xa_inv_spec *s, size_t numel[XA_INV_N_TENSORS]) {
    inv_dims d = inv_dims_of(s);
    numel[XA_INV_A0_W] = (size_t)d.a_hid * d.a_in;
    numel[XA_INV_A0_B] = (size_t)d.a_hid;
    numel[XA_INV_A2_W] = (size_t)d.a_out * d.a_hid;
    numel[XA_INV_A2_B] = (size_t)d.a_out;
    numel[XA_INV_B0_W] = (size_t)d.b_hid * d.b_in;
    numel[XA_INV_B0_B] = (size_t)d.b_hid;
    numel[XA_INV_B2_W] = (size_t)d.b_out * d.b_hid;
    numel[XA_INV_B2_B] = (size_t)d.b_out;
    size_t total = 0;
    for (int i = 0; i < XA_INV_N_TENSORS; i++)
        total += numel[i];
    return total;
}

void xa_inv_bind(xa_inv *m, const xa_inv_spec *s, float *params, float *grads) {
    memset(m, 0, sizeof *m);
    m->spec = *s;
    inv_dims d = inv_dims_of(s);
    m->c1 = d.c1;
    m->c2 = d.c2;
    m->h1 = d.h1;
    m->h2 = d.h2;
    xa_inv_sizes(s, m->numel);
    xa_params_carve(params, m->numel, XA_INV_N_TENSORS, m->t);
    xa_params_carve(grads, m->numel, XA_INV_N_TENSORS, m->g);
}

void xa_inv_init_weights(xa_inv *m, xa_rng *rng) {
    for (int i = 0; i < XA_INV_N_TENSORS; i++) {
        if (!m->t[i]) continue;
        int is_weight =
            i == XA_INV_A0_W || i == XA_INV_A2_W || i == XA_INV_B0_W || i == XA_INV_B2_W;
        if (is_weight) {
            xa_rng_fill_normal(rng, m->t[i], m->numel[i], 0.0f, 0.02f);
        } else {
            memset(m->t[i], 0, m->numel[i] * sizeof(float));
        }
    }
}

const char *xa_inv_tensor_name(const xa_inv *m, int i) {
    static const char *const nice[XA_INV_N_TENSORS] = {"F.0.weight", "F.0.bias",   "F.2.weight",
                                                       "F.2.bias",   "G.0.weight", "G.0.bias",
                                                       "G.2.weight", "G.2.bias"};
    static const char *const glow[XA_INV_N_TENSORS] = {"s1.0.weight", "s1.0.bias",   "s1.2.weight",
                                                       "s1.2.bias",   "s2.0.weight", "s2.0.bias",
                                                       "s2.2.weight", "s2.2.bias"};
    if (i < 0 || i >= XA_INV_N_TENSORS) return NULL;
    return m->spec.kind == XA_INV_NICE ? nice[i] : glow[i];
}

int xa_inv_tensor_shape(const xa_inv *m, int i, int64_t shape[2]) {
    inv_dims d = inv_dims_of(&m->spec);
    switch (i) {
    case XA_INV_A0_W: shape[0] = d.a_hid, shape[1] = d.a_in; return 2;
    case XA_INV_A0_B: shape[0] = d.a_hid; return 1;
    case XA_INV_A2_W: shape[0] = d.a_out, shape[1] = d.a_hid; return 2;
    case XA_INV_A2_B: shape[0] = d.a_out; return 1;
    case XA_INV_B0_W: shape[0] = d.b_hid, shape[1] = d.b_in; return 2;
    case XA_INV_B0_B: shape[0] = d.b_hid; return 1;
    case XA_INV_B2_W: shape[0] = d.b_out, shape[1] = d.b_hid; return 2;
    case XA_INV_B2_B: shape[0] = d.b_out; return 1;
    default: return 0;
    }
}

/* ---- cache ----------------------------------------------------------------------------------- */

typedef struct inv_views {
    float *x1, *x2;               /* (N, c1), (N, c2) copies of the input halves */
    float *y1, *y2;               /* (N, c1), (N, c2) the computed halves */
    float *pre_a, *act_a, *out_a; /* (N, a_hid), (N, a_hid), (N, a_out) */
    float *pre_b, *act_b, *out_b; /* (N, b_hid), (N, b_hid), (N, b_out) */
    /* training only (backward scratch): */
    float *d1, *d2;     /* (N, c1), (N, c2) gradients of the two halves */
    float *dsub;        /* (N, max(a_out, b_out)) gradient of a subnet output */
    float *dact, *dpre; /* (N, max(a_hid, b_hid)) */
} inv_views;

/* Carve the views from base (64-byte aligned) or, with base NULL, only count; returns floats. */
static size_t inv_plan(const xa_inv_spec *s, int N, int train, float *base, inv_views *v) {
    inv_dims d = inv_dims_of(s);
    size_t n = (size_t)N, off = 0;
    int hmax = d.a_hid > d.b_hid ? d.a_hid : d.b_hid;
    int omax = d.a_out > d.b_out ? d.a_out : d.b_out;
    float **views[] = {&v->x1,    &v->x2,    &v->y1,    &v->y2,    &v->pre_a,
                       &v->act_a, &v->out_a, &v->pre_b, &v->act_b, &v->out_b,
                       &v->d1,    &v->d2,    &v->dsub,  &v->dact,  &v->dpre};
    size_t widths[] = {(size_t)d.c1,    (size_t)d.c2,    (size_t)d.c1,    (size_t)d.c2,
                       (size_t)d.a_hid, (size_t)d.a_hid, (size_t)d.a_out, (size_t)d.b_hid,
                       (size_t)d.b_hid, (size_t)d.b_out, (size_t)d.c1,    (size_t)d.c2,
                       (size_t)omax,    (size_t)hmax,    (size_t)hmax};
    int n_views = (int)(sizeof widths / sizeof widths[0]);
    int n_fwd = 10; /* the first 10 views are the forward state */
    for (int i = 0; i < n_views; i++) {
        float *p = NULL;
        if (i < n_fwd || train) {
            p = base ? base + off : NULL;
            off += (n * widths[i] + 15) & ~(size_t)15; /* 16 floats = 64 bytes */
        }
        *views[i] = p;
    }
    return off;
}

size_t xa_inv_cache_bytes(const xa_inv_spec *s, int N, int train) {
    inv_views v;
    /* + 64: the caller's memory is aligned up to 64 bytes inside bind. */
    return inv_plan(s, N, train, NULL, &v) * sizeof(float) + XA_ARENA_ALIGN;
}

void xa_inv_cache_bind(xa_inv_cache *c, const xa_inv_spec *s, void *mem, int N, int train) {
    XA_ASSERT(mem != NULL && N >= 1);
    inv_views v;
    uintptr_t a = ((uintptr_t)mem + XA_ARENA_ALIGN - 1) & ~(uintptr_t)(XA_ARENA_ALIGN - 1);
    c->N = N;
    c->train = train != 0;
    c->buf = (float *)a;
    c->n_buf = inv_plan(s, N, c->train, NULL, &v);
}

static inv_views inv_views_of(const xa_inv *m, const xa_inv_cache *c) {
    inv_views v;
    inv_plan(&m->spec, c->N, c->train, c->buf, &v);
    return v;
}

/* ---- building blocks ------------------------------------------------------------------------- */

/* One subnet Linear(in -> hid) . act . Linear(hid -> out) with its gradient views (NULL: frozen).
 */
typedef struct inv_subnet {
    int in, hid, out;
    const float *w0, *b0, *w2, *b2; /* (hid, in), (hid), (out, hid), (out) */
    float *gw0, *gb0, *gw2, *gb2;
} inv_subnet;

static inv_subnet inv_subnet_of(const xa_inv *m, int b) {
    inv_dims d = inv_dims_of(&m->spec);
    int k = b ? XA_INV_B0_W : XA_INV_A0_W;
    inv_subnet s = {b ? d.b_in : d.a_in,
                    b ? d.b_hid : d.a_hid,
                    b ? d.b_out : d.a_out,
                    m->t[k],
                    m->t[k + 1],
                    m->t[k + 2],
                    m->t[k + 3],
                    m->g[k],
                    m->g[k + 1],
                    m->g[k + 2],
                    m->g[k + 3]};
    return s;
}

static void subnet_forward(float *out, float *pre, float *act_out, const float *in,
                           const inv_subnet *s, xa_act act, int N) {
    xa_linear_forward(pre, in, s->w0, s->b0, N, s->in, s->hid);
    xa_act_forward(act_out, pre, (size_t)N * s->hid, act);
    xa_linear_forward(out, act_out, s->w2, s->b2, N, s->hid, s->out);
}

/* din += d/din (din may be NULL); adds into the subnet's gradients when not frozen. */
static void subnet_backward(float *din, float *dact, float *dpre, const float *dout,
                            const float *in, const float *pre, const float *act_out,
                            const inv_subnet *s, xa_act act, int N) {
    size_t nh = (size_t)N * s->hid;
    memset(dact, 0, nh * sizeof(float));
    xa_linear_backward(dact, s->gw2, s->gb2, dout, act_out, s->w2, N, s->hid, s->out);
    memset(dpre, 0, nh * sizeof(float));
    xa_act_backward(dpre, dact, pre, nh, act);
    if (din || s->gw0 || s->gb0)
        xa_linear_backward(din, s->gw0, s->gb0, dpre, in, s->w0, N, s->in, s->hid);
}

/* x (N, c1 + c2) -> a (N, c1), b (N, c2) */
static void split_halves(float *a, float *b, const float *x, int N, int c1, int c2) {
    size_t C = (size_t)c1 + c2;
    for (int n = 0; n < N; n++) {
        memcpy(a + (size_t)n * c1, x + n * C, (size_t)c1 * sizeof(float));
        memcpy(b + (size_t)n * c2, x + n * C + c1, (size_t)c2 * sizeof(float));
    }
}

/* out (N, C) = [a, b] */
static void join_halves(float *out, const float *a, const float *b, int N, int c1, int c2) {
    size_t C = (size_t)c1 + c2;
    for (int n = 0; n < N; n++) {
        memcpy(out + n * C, a + (size_t)n * c1, (size_t)c1 * sizeof(float));
        memcpy(out + n * C + c1, b + (size_t)n * c2, (size_t)c2 * sizeof(float));
    }
}

/* out (N, C) += [a, b] */
static void join_halves_add(float *out, const float *a, const float *b, int N, int c1, int c2) {
    size_t C = (size_t)c1 + c2;
    for (int n = 0; n < N; n++) {
        xa_axpy(out + n * C, a + (size_t)n * c1, 1.0f, (size_t)c1);
        xa_axpy(out + n * C + c1, b + (size_t)n * c2, 1.0f, (size_t)c2);
    }
}

/* The soft clamp's log-scale l(s) = c * 0.636 * atan(s / c) and its derivative. */
static inline float glow_log_scale(float s) {
    return INV_CLAMP * INV_ATAN_SCALE * atanf(s / INV_CLAMP);
}
static inline float glow_log_scale_grad(float s) {
    float u = s / INV_CLAMP;
    return INV_ATAN_SCALE / (1.0f + u * u);
}

/* y = E(s) * x + t per row; st (N, 2k) = [s, t]; y, x (N, k). */
static void glow_affine(float *y, const float *x, const float *st, int N, int k) {
    for (int n = 0; n < N; n++) {
        const float *s = st + (size_t)n * 2 * k, *t = s + k;
        const float *xr = x + (size_t)n * k;
        float *yr = y + (size_t)n * k;
        for (int j = 0; j < k; j++)
            yr[j] = expf(glow_log_scale(s[j])) * xr[j] + t[j];
    }
}

/* x = (y - t) / E(s) per row: the inverse of glow_affine. */
static void glow_affine_inv(float *x, const float *y, const float *st, int N, int k) {
    for (int n = 0; n < N; n++) {
        const float *s = st + (size_t)n * 2 * k, *t = s + k;
        const float *yr = y + (size_t)n * k;
        float *xr = x + (size_t)n * k;
        for (int j = 0; j < k; j++)
            xr[j] = (yr[j] - t[j]) / expf(glow_log_scale(s[j]));
    }
}

/* Backward of y = E(s) x + t for dy (N, k), overwritten with dx = dy E(s);
 * dst (N, 2k) = [dy x E(s) l'(s), dy]. */
static void glow_affine_backward(float *dy, float *dst, const float *x, const float *st, int N,
                                 int k) {
    for (int n = 0; n < N; n++) {
        const float *s = st + (size_t)n * 2 * k;
        const float *xr = x + (size_t)n * k;
        float *d = dy + (size_t)n * k, *ds = dst + (size_t)n * 2 * k, *dt = ds + k;
        for (int j = 0; j < k; j++) {
            float e = expf(glow_log_scale(s[j]));
            ds[j] = d[j] * xr[j] * e * glow_log_scale_grad(s[j]);
            dt[j] = d[j];
            d[j] *= e;
        }
    }
}

/* Backward of x = (y - t) / E(s) for dx (N, k), overwritten with dy = dx / E(s);
 * dst (N, 2k) = [-dx x l'(s), -dx / E(s)] (x is the computed output). */
static void glow_affine_inv_backward(float *dx, float *dst, const float *x, const float *st, int N,
                                     int k) {
    for (int n = 0; n < N; n++) {
        const float *s = st + (size_t)n * 2 * k;
        const float *xr = x + (size_t)n * k;
        float *d = dx + (size_t)n * k, *ds = dst + (size_t)n * 2 * k, *dt = ds + k;
        for (int j = 0; j < k; j++) {
            float inv_e = 1.0f / expf(glow_log_scale(s[j]));
            ds[j] = -d[j] * xr[j] * glow_log_scale_grad(s[j]);
            dt[j] = -d[j] * inv_e;
            d[j] *= inv_e;
        }
    }
}

/* ---- forward, inverse and their backward ------------------------------------------------------
 */

/* The forward over N rows with the views v (row 0 of the rows to compute). */
static void inv_forward_rows(const xa_inv *m, const inv_views *vp, float *out, const float *inp,
                             int N) {
    const int c1 = m->c1, c2 = m->c2;
    const xa_act act = m->spec.act;
    const inv_views v = *vp;
    inv_subnet A = inv_subnet_of(m, 0), B = inv_subnet_of(m, 1);
    split_halves(v.x1, v.x2, inp, N, c1, c2);
    if (m->spec.kind == XA_INV_NICE) {
        /* o1 = e1 + F(e2);  o2 = e2 + G(o1) */
        subnet_forward(v.out_a, v.pre_a, v.act_a, v.x2, &A, act, N);
        xa_residual_forward(v.y1, v.x1, v.out_a, (size_t)N * c1);
        subnet_forward(v.out_b, v.pre_b, v.act_b, v.y1, &B, act, N);
        xa_residual_forward(v.y2, v.x2, v.out_b, (size_t)N * c2);
    } else {
        /* [s2a, t2] = s2(e2); o1 = E(s2a) e1 + t2;  [s1a, t1] = s1(o1); o2 = E(s1a) e2 + t1 */
        subnet_forward(v.out_b, v.pre_b, v.act_b, v.x2, &B, act, N);
        glow_affine(v.y1, v.x1, v.out_b, N, c1);
        subnet_forward(v.out_a, v.pre_a, v.act_a, v.y1, &A, act, N);
        glow_affine(v.y2, v.x2, v.out_a, N, c2);
    }
    join_halves(out, v.y1, v.y2, N, c1, c2);
}

/* The forward views moved to row r0. */
static inv_views inv_views_at(const xa_inv *m, const inv_views *v, int64_t r0) {
    inv_dims d = inv_dims_of(&m->spec);
    inv_views w = {0};
    w.x1 = v->x1 + r0 * d.c1;
    w.x2 = v->x2 + r0 * d.c2;
    w.y1 = v->y1 + r0 * d.c1;
    w.y2 = v->y2 + r0 * d.c2;
    w.pre_a = v->pre_a + r0 * d.a_hid;
    w.act_a = v->act_a + r0 * d.a_hid;
    w.out_a = v->out_a + r0 * d.a_out;
    w.pre_b = v->pre_b + r0 * d.b_hid;
    w.act_b = v->act_b + r0 * d.b_hid;
    w.out_b = v->out_b + r0 * d.b_out;
    return w;
}

/* Every step of the forward is row-local, so when its four products split by rows
 * (xa_linear_row_block) the rows run in blocks in one parallel region, each thread taking its
 * blocks through every step with the single-threaded products the separate calls would make:
 * the same floats, one parallel region instead of one per kernel. */
void xa_inv_forward(const xa_inv *m, xa_inv_cache *c, float *out, const float *inp, int N) {
    XA_ASSERT(N >= 1 && N <= c->N && out != inp);
    inv_views v = inv_views_of(m, c);
    inv_dims d = inv_dims_of(&m->spec);
    const int in[4] = {d.a_in, d.a_hid, d.b_in, d.b_hid};
    const int outw[4] = {d.a_hid, d.a_out, d.b_hid, d.b_out};
    const int blk = xa_linear_row_block(N, in, outw, 4);
    int serial = 1;
#ifdef XA_HAVE_OPENMP
    if (blk) {
        const int C = m->spec.C, n_blk = (N + blk - 1) / blk;
        XA_OMP("omp parallel num_threads(xa_threads_get())")
        {
            const int team = omp_get_num_threads();
            /* a team of one is no active region (xa_sgemm would split the products itself) */
            if (team > 1) {
                for (int k = omp_get_thread_num(); k < n_blk; k += team) {
                    const int r0 = k * blk, nr = N - r0 < blk ? N - r0 : blk;
                    inv_views w = inv_views_at(m, &v, r0);
                    inv_forward_rows(m, &w, out + (size_t)r0 * C, inp + (size_t)r0 * C, nr);
                }
                XA_OMP("omp single nowait")
                serial = 0;
            }
        }
    }
#else
    (void)blk;
#endif
    if (serial) inv_forward_rows(m, &v, out, inp, N);
}

void xa_inv_forward_backward(const xa_inv *m, xa_inv_cache *c, float *dinp, const float *dout,
                             const float *inp, int N) {
    (void)inp; /* the cache holds the split copy */
    XA_ASSERT(c->train && N >= 1 && N <= c->N);
    const int c1 = m->c1, c2 = m->c2;
    const xa_act act = m->spec.act;
    inv_views v = inv_views_of(m, c);
    inv_subnet A = inv_subnet_of(m, 0), B = inv_subnet_of(m, 1);
    split_halves(v.d1, v.d2, dout, N, c1, c2); /* d1 = dL/do1, d2 = dL/do2 */
    if (m->spec.kind == XA_INV_NICE) {
        /* o2 = e2 + G(o1): de2 = do2, do1 += G'(do2) */
        subnet_backward(v.d1, v.dact, v.dpre, v.d2, v.y1, v.pre_b, v.act_b, &B, act, N);
        /* o1 = e1 + F(e2): de1 = do1, de2 += F'(do1) */
        subnet_backward(v.d2, v.dact, v.dpre, v.d1, v.x2, v.pre_a, v.act_a, &A, act, N);
    } else {
        /* o2 = E(s1a) e2 + t1 with [s1a, t1] = s1(o1) */
        glow_affine_backward(v.d2, v.dsub, v.x2, v.out_a, N, c2);
        subnet_backward(v.d1, v.dact, v.dpre, v.dsub, v.y1, v.pre_a, v.act_a, &A, act, N);
        /* o1 = E(s2a) e1 + t2 with [s2a, t2] = s2(e2) */
        glow_affine_backward(v.d1, v.dsub, v.x1, v.out_b, N, c1);
        subnet_backward(v.d2, v.dact, v.dpre, v.dsub, v.x2, v.pre_b, v.act_b, &B, act, N);
    }
    if (dinp) join_halves_add(dinp, v.d1, v.d2, N, c1, c2);
}

void xa_inv_inverse(const xa_inv *m, xa_inv_cache *c, float *out, const float *inp, int N) {
    XA_ASSERT(N >= 1 && N <= c->N && out != inp);
    const int c1 = m->c1, c2 = m->c2;
    const xa_act act = m->spec.act;
    inv_views v = inv_views_of(m, c);
    inv_subnet A = inv_subnet_of(m, 0), B = inv_subnet_of(m, 1);
    split_halves(v.x1, v.x2, inp, N, c1, c2); /* x1 = o1, x2 = o2 */
    if (m->spec.kind == XA_INV_NICE) {
        /* e2 = o2 - G(o1);  e1 = o1 - F(e2) */
        subnet_forward(v.out_b, v.pre_b, v.act_b, v.x1, &B, act, N);
        for (size_t i = 0; i < (size_t)N * c2; i++)
            v.y2[i] = v.x2[i] - v.out_b[i];
        subnet_forward(v.out_a, v.pre_a, v.act_a, v.y2, &A, act, N);
        for (size_t i = 0; i < (size_t)N * c1; i++)
            v.y1[i] = v.x1[i] - v.out_a[i];
    } else {
        /* [s1a, t1] = s1(o1); e2 = (o2 - t1) / E(s1a);  [s2a, t2] = s2(e2); e1 = (o1 - t2) / E(s2a)
         */
        subnet_forward(v.out_a, v.pre_a, v.act_a, v.x1, &A, act, N);
        glow_affine_inv(v.y2, v.x2, v.out_a, N, c2);
        subnet_forward(v.out_b, v.pre_b, v.act_b, v.y2, &B, act, N);
        glow_affine_inv(v.y1, v.x1, v.out_b, N, c1);
    }
    join_halves(out, v.y1, v.y2, N, c1, c2);
}

void xa_inv_inverse_backward(const xa_inv *m, xa_inv_cache *c, float *dinp, const float *dout,
                             const float *inp, int N) {
    (void)inp;
    XA_ASSERT(c->train && N >= 1 && N <= c->N);
    const int c1 = m->c1, c2 = m->c2;
    const xa_act act = m->spec.act;
    inv_views v = inv_views_of(m, c);
    inv_subnet A = inv_subnet_of(m, 0), B = inv_subnet_of(m, 1);
    split_halves(v.d1, v.d2, dout, N, c1, c2); /* d1 = dL/de1, d2 = dL/de2 */
    if (m->spec.kind == XA_INV_NICE) {
        /* e1 = o1 - F(e2): do1 = de1, de2 += F'(-de1) */
        for (size_t i = 0; i < (size_t)N * c1; i++)
            v.dsub[i] = -v.d1[i];
        subnet_backward(v.d2, v.dact, v.dpre, v.dsub, v.y2, v.pre_a, v.act_a, &A, act, N);
        /* e2 = o2 - G(o1): do2 = de2, do1 += G'(-de2) */
        for (size_t i = 0; i < (size_t)N * c2; i++)
            v.dsub[i] = -v.d2[i];
        subnet_backward(v.d1, v.dact, v.dpre, v.dsub, v.x1, v.pre_b, v.act_b, &B, act, N);
    } else {
        /* e1 = (o1 - t2) / E(s2a) with [s2a, t2] = s2(e2) */
        glow_affine_inv_backward(v.d1, v.dsub, v.y1, v.out_b, N, c1);
        subnet_backward(v.d2, v.dact, v.dpre, v.dsub, v.y2, v.pre_b, v.act_b, &B, act, N);
        /* e2 = (o2 - t1) / E(s1a) with [s1a, t1] = s1(o1) */
        glow_affine_inv_backward(v.d2, v.dsub, v.y2, v.out_a, N, c2);
        subnet_backward(v.d1, v.dact, v.dpre, v.dsub, v.x1, v.pre_a, v.act_a, &A, act, N);
    }
    if (dinp) join_halves_add(dinp, v.d1, v.d2, N, c1, c2);
}
