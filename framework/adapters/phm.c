/* adapters/phm: the parameterised hypercomplex multiplication (PHM) layer of Compacter
 * (Karimi Mahabadi et al. 2021; AdapterHub PHMLayer, ADAPTERHUB.md §1.9): the (in, out) matrix
 *
 *     H = sum_{i<n} kron(C_i, W_i),    H[a*P + p, b*Q + q] = sum_i C[i][a][b] * W[i][p][q]
 *
 * with P = in/n, Q = out/n, the rule C (n, n, n) and W_i (P, Q), or W_i = W_left[i] (P, r) ·
 * W_right[i] (r, Q) when factorised. The layer itself (y = x H + b) is a plain product that
 * bneck.c runs with xa_sgemm on the H built here; this file only builds H and takes it apart
 * again in backward:
 *
 *     dW_i[p][q]    = sum_{a,b} C[i][a][b] * dH[a*P + p, b*Q + q]
 *     dC[i][a][b]   = sum_{p,q} W_i[p][q] * dH[a*P + p, b*Q + q]
 *     dW_left[i]   += dW_i · W_right[i]^T,    dW_right[i] += W_left[i]^T · dW_i
 *
 * Both directions cost O(n * in * out), small next to the (N, in) x (in, out) product they
 * feed. Not here: the factorised rule (factorized_phm_rule; compose multiplies it out), shared W.
 */
#include "adapters/adapters.h"

#include <string.h>

/* W_i (P, Q): a view of w, or W_left[i] · W_right[i] written into scratch. */
static const float *phm_slice(float *scratch, const float *w, const float *wl, const float *wr,
                              int i, int P, int Q, int r) {
    if (!wl) return w + (size_t)i * P * Q;
    xa_sgemm(0, 0, P, Q, r, 1.0f, wl + (size_t)i * P * r, r, wr + (size_t)i * r * Q, Q, 0.0f,
             scratch, Q);
    return scratch;
}

void xa_phm_build(float *H, float *scratch, const float *rule, const float *w, const float *wl,
                  const float *wr, const xa_phm_spec *s, int in, int out) {
    const int n = s->n, r = s->rank;
    XA_ASSERT(n >= 1 && in % n == 0 && out % n == 0);
    XA_ASSERT(wl ? (wr && scratch) : w != NULL);
    const int P = in / n, Q = out / n;
    for (int i = 0; i < n; i++) {
        const float *Wi = phm_slice(scratch, w, wl, wr, i, P, Q, r); /* (P, Q) */
        const float *Ci = rule + (size_t)i * n * n;                  /* (n, n) */
        /* Hot loop: row a*P + p of H gets C_i[a][b] * W_i[p, :] in each of its n column blocks;
         * the first summand overwrites, the others accumulate. */
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)in * out > 65536)")
        for (int row = 0; row < in; row++) {
            const int a = row / P, p = row % P;
            const float *wrow = Wi + (size_t)p * Q;
            float *hrow = H + (size_t)row * out;
            for (int b = 0; b < n; b++) {
                const float c = Ci[a * n + b];
                float *dst = hrow + (size_t)b * Q;
                if (i == 0) {
                    for (int q = 0; q < Q; q++)
                        dst[q] = c * wrow[q];
                } else {
                    for (int q = 0; q < Q; q++)
                        dst[q] += c * wrow[q];
                }
            }
        }
    }
}

void xa_phm_build_backward(float *drule, float *dw, float *dwl, float *dwr, float *scratch,
                           const float *dH, const float *rule, const float *w, const float *wl,
                           const float *wr, const xa_phm_spec *s, int in, int out) {
    const int n = s->n, r = s->rank;
    XA_ASSERT(n >= 1 && in % n == 0 && out % n == 0);
    const int P = in / n, Q = out / n;
    const size_t PQ = (size_t)P * Q;
    const int fact = wl != NULL;
    XA_ASSERT(fact ? (wr && scratch) : w != NULL);
    const int want_w = fact ? (dwl || dwr) : dw != NULL;
    if (!drule && !want_w) return;
    for (int i = 0; i < n; i++) {
        const float *Ci = rule + (size_t)i * n * n;
        if (drule) {
            /* dC_i[a][b] = <W_i, block (a, b) of dH>: one block per (a, b), no shared writes. */
            const float *Wi = phm_slice(scratch, w, wl, wr, i, P, Q, r);
            float *dCi = drule + (size_t)i * n * n;
            XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)in * out > 65536)")
            for (int ab = 0; ab < n * n; ab++) {
                const int a = ab / n, b = ab % n;
                double acc = 0.0;
                for (int p = 0; p < P; p++) {
                    const float *hrow = dH + (size_t)(a * P + p) * out + (size_t)b * Q;
                    const float *wrow = Wi + (size_t)p * Q;
                    float part = 0.0f;
                    for (int q = 0; q < Q; q++)
                        part += hrow[q] * wrow[q];
                    acc += part;
                }
                dCi[ab] += (float)acc;
            }
        }
        if (!want_w) continue;
        /* dW_i: straight into dw when W is a parameter, else into scratch for the two factors. */
        float *dWi = fact ? scratch + PQ : dw + (size_t)i * PQ;
        if (fact) memset(dWi, 0, PQ * sizeof(float));
        XA_OMP("omp parallel for num_threads(xa_threads_get()) if((size_t)in * out > 65536)")
        for (int p = 0; p < P; p++) {
            float *drow = dWi + (size_t)p * Q;
            for (int a = 0; a < n; a++) {
                const float *hrow = dH + (size_t)(a * P + p) * out;
                for (int b = 0; b < n; b++) {
                    const float c = Ci[a * n + b];
                    const float *h = hrow + (size_t)b * Q;
                    for (int q = 0; q < Q; q++)
                        drow[q] += c * h[q];
                }
            }
        }
        if (fact) {
            const float *wli = wl + (size_t)i * P * r, *wri = wr + (size_t)i * r * Q;
            if (dwl)
                xa_sgemm(0, 1, P, r, Q, 1.0f, dWi, Q, wri, Q, 1.0f, dwl + (size_t)i * P * r, r);
            if (dwr)
                xa_sgemm(1, 0, r, Q, P, 1.0f, wli, r, dWi, Q, 1.0f, dwr + (size_t)i * r * Q, Q);
        }
    }
}

void xa_phm_build_ref(float *H, const float *rule, const float *w, const float *wl, const float *wr,
                      const xa_phm_spec *s, int in, int out) {
    const int n = s->n, r = s->rank, P = in / n, Q = out / n;
    for (int a = 0; a < n; a++) {
        for (int p = 0; p < P; p++) {
            for (int b = 0; b < n; b++) {
                for (int q = 0; q < Q; q++) {
                    double acc = 0.0;
                    for (int i = 0; i < n; i++) {
                        double wi;
                        if (wl) {
                            wi = 0.0;
                            for (int k = 0; k < r; k++)
                                wi += (double)wl[((size_t)i * P + p) * r + k] *
                                      wr[((size_t)i * r + k) * Q + q];
                        } else {
                            wi = w[((size_t)i * P + p) * Q + q];
                        }
                        acc += (double)rule[((size_t)i * n + a) * n + b] * wi;
                    }
                    H[(size_t)(a * P + p) * out + (size_t)b * Q + q] = (float)acc;
                }
            }
        }
    }
}
