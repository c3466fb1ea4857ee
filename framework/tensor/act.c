/* tensor/act: elementwise activation functions and their derivatives, with the names HF
 * transformers (ACT2FN) and AdapterHub (`non_linearity`) use.
 *
 *   gelu       0.5 x (1 + erf(x/sqrt2))                 f' = Phi(x) + x phi(x)
 *   gelu_new   0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3)
 *              f' = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3*0.044715 x^2)
 *   silu       x s(x)                                   f' = s (1 + x (1 - s))
 *   quick_gelu x s(1.702 x)                             f' = s + 1.702 x s (1 - s)
 *   tanh, sigmoid, relu (f'(0) = 0 as torch), leakyrelu (slope 0.01, f'(0) = 0.01 as torch)
 *
 * The fast kernels evaluate in float with libm (erff, tanhf, expf) and run in parallel; the
 * reference twins evaluate the same formulas in double. Not here: activations with parameters
 * other than leakyrelu's fixed slope (prelu, relu6), or the AdapterHub legacy "gelu" rename.
 */
#include "tensor/tensor.h"
#include "tensor/fastmath.h"

#include <math.h>
#include <strings.h>

#define GELU_TANH_C  0.7978845608028654 /* sqrt(2/pi) */
#define INV_SQRT2    0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define LEAKY_SLOPE  0.01
#define QUICK_GELU_C 1.702

static const struct {
    const char *name;
    xa_act act;
} k_names[] = {
    {"linear", XA_ACT_LINEAR},
    {"relu", XA_ACT_RELU},
    {"gelu", XA_ACT_GELU},
    {"gelu_new", XA_ACT_GELU_NEW},
    {"silu", XA_ACT_SILU},
    {"tanh", XA_ACT_TANH},
    {"sigmoid", XA_ACT_SIGMOID},
    {"leakyrelu", XA_ACT_LEAKYRELU},
    {"quick_gelu", XA_ACT_QUICK_GELU},
    /* aliases after the canonical names, so xa_act_name finds the canonical one first */
    {"swish", XA_ACT_SILU},
    {"gelu_pytorch_tanh", XA_ACT_GELU_NEW},
    {"identity", XA_ACT_LINEAR},
};
#define N_NAMES (sizeof k_names / sizeof k_names[0])

xa_status xa_act_parse(const char *name, xa_act *out) {
    for (size_t i = 0; name && i < N_NAMES; i++) {
        if (strcasecmp(name, k_names[i].name) == 0) {
            *out = k_names[i].act;
            return XA_STATUS_OK;
        }
    }
    return xa_error_set(
        XA_STATUS_CONFIG, NULL,
        "one of linear, relu, gelu, gelu_new, gelu_pytorch_tanh, silu, swish, tanh, "
        "sigmoid, leakyrelu, quick_gelu",
        "names follow HF transformers' ACT2FN and AdapterHub's non_linearity",
        "xa_act_parse: unknown activation '%s'", name ? name : "(null)");
}

const char *xa_act_name(xa_act act) {
    for (size_t i = 0; i < N_NAMES; i++) {
        if (k_names[i].act == act) return k_names[i].name;
    }
    return "?";
}

/* ---- float versions (fast path) ---- */

static inline float sigmoidf_(float x) {
    return 1.0f / (1.0f + expf(-x));
}

static inline float act_f(float x, xa_act act) {
    switch (act) {
    case XA_ACT_LINEAR: return x;
    case XA_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case XA_ACT_GELU: return 0.5f * x * (1.0f + xa_fast_erff(x * (float)INV_SQRT2));
    case XA_ACT_GELU_NEW: {
        float u = (float)GELU_TANH_C * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case XA_ACT_SILU: return x * sigmoidf_(x);
    case XA_ACT_TANH: return tanhf(x);
    case XA_ACT_SIGMOID: return sigmoidf_(x);
    case XA_ACT_LEAKYRELU: return x > 0.0f ? x : (float)LEAKY_SLOPE * x;
    case XA_ACT_QUICK_GELU: return x * sigmoidf_((float)QUICK_GELU_C * x);
    case XA_ACT_COUNT: break;
    }
    XA_ASSERT(0 && "bad xa_act");
}

static inline float act_df(float x, xa_act act) {
    switch (act) {
    case XA_ACT_LINEAR: return 1.0f;
    case XA_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case XA_ACT_GELU:
        return 0.5f * (1.0f + xa_fast_erff(x * (float)INV_SQRT2)) +
               x * (float)INV_SQRT_2PI * xa_fast_expf(-0.5f * x * x);
    case XA_ACT_GELU_NEW: {
        float x2 = x * x;
        float t = tanhf((float)GELU_TANH_C * (x + 0.044715f * x2 * x));
        return 0.5f * (1.0f + t) +
               0.5f * x * (1.0f - t * t) * (float)GELU_TANH_C * (1.0f + 3.0f * 0.044715f * x2);
    }
    case XA_ACT_SILU: {
        float s = sigmoidf_(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case XA_ACT_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    case XA_ACT_SIGMOID: {
        float s = sigmoidf_(x);
        return s * (1.0f - s);
    }
    case XA_ACT_LEAKYRELU: return x > 0.0f ? 1.0f : (float)LEAKY_SLOPE;
    case XA_ACT_QUICK_GELU: {
        float s = sigmoidf_((float)QUICK_GELU_C * x);
        return s + (float)QUICK_GELU_C * x * s * (1.0f - s);
    }
    case XA_ACT_COUNT: break;
    }
    XA_ASSERT(0 && "bad xa_act");
}

/* GELU, the activation of every encoder FFN and of the MLM head: vectorizable loops with the
 * fast exp and erf (see fastmath.h). */
static void gelu_forward(float *out, const float *inp, size_t n) {
    XA_OMP("omp parallel for simd num_threads(xa_threads_get()) if(n > 16384) schedule(static)")
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + xa_fast_erff(x * (float)INV_SQRT2));
    }
}

static void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    XA_OMP("omp parallel for simd num_threads(xa_threads_get()) if(n > 16384) schedule(static)")
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + xa_fast_erff(x * (float)INV_SQRT2));
        float pdf = (float)INV_SQRT_2PI * xa_fast_expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void xa_act_forward(float *out, const float *inp, size_t n, xa_act act) {
    XA_ASSERT((unsigned)act < XA_ACT_COUNT);
    if (act == XA_ACT_GELU) {
        gelu_forward(out, inp, n);
        return;
    }
    if (act == XA_ACT_LINEAR) {
        if (out != inp) {
            for (size_t i = 0; i < n; i++)
                out[i] = inp[i];
        }
        return;
    }
    if (act == XA_ACT_RELU) { /* act_f's expression, in a loop the compiler vectorises */
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 65536) schedule(static)")
        for (size_t i = 0; i < n; i++)
            out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        return;
    }
    /* hot loop: one libm call per element */
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 16384) schedule(static)")
    for (size_t i = 0; i < n; i++)
        out[i] = act_f(inp[i], act);
}

void xa_act_backward(float *dinp, const float *dout, const float *inp, size_t n, xa_act act) {
    XA_ASSERT((unsigned)act < XA_ACT_COUNT);
    if (act == XA_ACT_GELU) {
        gelu_backward(dinp, dout, inp, n);
        return;
    }
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(n > 16384) schedule(static)")
    for (size_t i = 0; i < n; i++)
        dinp[i] += dout[i] * act_df(inp[i], act);
}

/* ---- double versions (reference twins) ---- */

static double sigmoid_d(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static double act_d(double x, xa_act act, double *df) {
    double s, t;
    switch (act) {
    case XA_ACT_LINEAR: *df = 1.0; return x;
    case XA_ACT_RELU: *df = x > 0.0 ? 1.0 : 0.0; return x > 0.0 ? x : 0.0;
    case XA_ACT_GELU:
        *df = 0.5 * (1.0 + erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
        return 0.5 * x * (1.0 + erf(x * INV_SQRT2));
    case XA_ACT_GELU_NEW:
        t = tanh(GELU_TANH_C * (x + 0.044715 * x * x * x));
        *df = 0.5 * (1.0 + t) +
              0.5 * x * (1.0 - t * t) * GELU_TANH_C * (1.0 + 3.0 * 0.044715 * x * x);
        return 0.5 * x * (1.0 + t);
    case XA_ACT_SILU:
        s = sigmoid_d(x);
        *df = s * (1.0 + x * (1.0 - s));
        return x * s;
    case XA_ACT_TANH:
        t = tanh(x);
        *df = 1.0 - t * t;
        return t;
    case XA_ACT_SIGMOID:
        s = sigmoid_d(x);
        *df = s * (1.0 - s);
        return s;
    case XA_ACT_LEAKYRELU: *df = x > 0.0 ? 1.0 : LEAKY_SLOPE; return x > 0.0 ? x : LEAKY_SLOPE * x;
    case XA_ACT_QUICK_GELU:
        s = sigmoid_d(QUICK_GELU_C * x);
        *df = s + QUICK_GELU_C * x * s * (1.0 - s);
        return x * s;
    case XA_ACT_COUNT: break;
    }
    XA_ASSERT(0 && "bad xa_act");
}

void xa_act_forward_ref(float *out, const float *inp, size_t n, xa_act act) {
    double df;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)act_d(inp[i], act, &df);
}

void xa_act_backward_ref(float *dinp, const float *dout, const float *inp, size_t n, xa_act act) {
    for (size_t i = 0; i < n; i++) {
        double df;
        act_d(inp[i], act, &df);
        dinp[i] += (float)(dout[i] * df);
    }
}
