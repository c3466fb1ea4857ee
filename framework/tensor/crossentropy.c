/* tensor/crossentropy: fused log-softmax + negative log-likelihood over rows of logits, the loss of
 * the MLM and classification heads (torch.nn.functional.cross_entropy, reduction "mean",
 * ignore_index).
 *
 * Per counted row n with target t and m = max_j x_j:
 *     loss_n = log sum_j exp(x_j - m) + m - x_t
 *     dx_j   = (softmax(x)_j - [j == t]) / count        (gradient of the mean)
 * The sum of exponentials and the loss sum are accumulated in double (V reaches 250k for XLM-R).
 * Class weights (xa_cross_entropy_weighted): loss_n and dx scaled by w[t_n], the mean taken over
 * sum_n w[t_n] (torch's weighted mean), for task heads.
 * Not here: label smoothing, reduction "sum" (scale the mean by the count).
 */
#include "tensor/tensor.h"
#include "tensor/fastmath.h"

#include <math.h>
#include <string.h>

static int count_rows(const int32_t *targets, int N, int V, int ignore_index) {
    int count = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] == ignore_index) continue;
        XA_ASSERT(targets[n] >= 0 && targets[n] < V);
        count++;
    }
    return count;
}

float xa_cross_entropy_fused(float *dlogits, int *n_counted, const float *logits,
                             const int32_t *targets, int N, int V, int ignore_index) {
    int count = count_rows(targets, N, V, ignore_index);
    if (n_counted) *n_counted = count;
    const float inv_count = count > 0 ? 1.0f / (float)count : 0.0f;
    double loss_sum = 0.0;
    /* one row per iteration (rows are long: V reaches 250k) */
    XA_OMP("omp parallel for num_threads(xa_threads_get()) if(N > 1) reduction(+:loss_sum)")
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        if (t == ignore_index) {
            if (dx) memset(dx, 0, sizeof(float) * (size_t)V);
            continue;
        }
        float mx = x[0];
        XA_OMP("omp simd reduction(max:mx)")
        for (int j = 1; j < V; j++)
            mx = x[j] > mx ? x[j] : mx;
        const float xt = x[t]; /* read before dx (which may alias x) is written */
        /* exp(x - max) once per element: kept in dx when the gradient is wanted. Float partial
         * sums over chunks (vectorisable), the row total in double. */
        double sum = 0.0;
        for (int j0 = 0; j0 < V; j0 += 4096) {
            int j1 = j0 + 4096 < V ? j0 + 4096 : V;
            float part = 0.0f;
            if (dx) {
                XA_OMP("omp simd reduction(+:part)")
                for (int j = j0; j < j1; j++) {
                    float e = xa_fast_expf(x[j] - mx);
                    dx[j] = e;
                    part += e;
                }
            } else {
                XA_OMP("omp simd reduction(+:part)")
                for (int j = j0; j < j1; j++)
                    part += xa_fast_expf(x[j] - mx);
            }
            sum += part;
        }
        loss_sum += log(sum) + (double)mx - (double)xt;
        if (dx) {
            const float scale = (float)(1.0 / sum) * inv_count;
            XA_OMP("omp simd")
            for (int j = 0; j < V; j++)
                dx[j] *= scale;
            dx[t] -= inv_count;
        }
    }
    return count > 0 ? (float)(loss_sum / count) : 0.0f;
}

float xa_cross_entropy_fused_ref(float *dlogits, int *n_counted, const float *logits,
                                 const int32_t *targets, int N, int V, int ignore_index) {
    int count = count_rows(targets, N, V, ignore_index);
    if (n_counted) *n_counted = count;
    double loss_sum = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        int t = targets[n];
        if (t == ignore_index) {
            if (dlogits) memset(dlogits + (size_t)n * V, 0, sizeof(float) * (size_t)V);
            continue;
        }
        double mx = x[0], sum = 0.0;
        for (int j = 1; j < V; j++)
            mx = x[j] > mx ? x[j] : mx;
        for (int j = 0; j < V; j++)
            sum += exp(x[j] - mx);
        double xt = x[t];
        loss_sum += log(sum) + mx - xt;
        for (int j = 0; dlogits && j < V; j++) {
            double g = exp(x[j] - mx) / sum - (j == t ? 1.0 : 0.0);
            dlogits[(size_t)n * V + j] = (float)(g / count);
        }
    }
    return count > 0 ? (float)(loss_sum / count) : 0.0f;
}

/* Class weights (tensor.h): PyTorch's weighted "mean" divides by the sum of the counted rows'
 * weights, not by their count, so a batch of rare-class rows is not worth more than the weights
 * say; with every weight 1 it is the plain mean. */
float xa_cross_entropy_weighted(float *dlogits, double *weight_sum, const float *logits,
                                const int32_t *targets, const float *weights, int N, int V,
                                int ignore_index) {
    XA_ASSERT(weights != NULL);
    double wsum = 0.0;
    for (int j = 0; j < V; j++) XA_ASSERT(isfinite(weights[j]) && weights[j] >= 0.0f);
    for (int n = 0; n < N; n++) {
        if (targets[n] == ignore_index) continue;
        XA_ASSERT(targets[n] >= 0 && targets[n] < V);
        wsum += weights[targets[n]];
    }
    if (weight_sum) *weight_sum = wsum;
    const double inv = wsum > 0.0 ? 1.0 / wsum : 0.0;
    double loss_sum = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits ? dlogits + (size_t)n * V : NULL;
        const int t = targets[n];
        if (t == ignore_index) {
            if (dx) memset(dx, 0, sizeof(float) * (size_t)V);
            continue;
        }
        double mx = x[0], sum = 0.0;
        for (int j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
        for (int j = 0; j < V; j++) sum += exp((double)x[j] - mx);
        const double wt = weights[t], xt = x[t]; /* read before dx (which may alias x) is written */
        loss_sum += wt * (log(sum) + mx - xt);
        if (!dx) continue;
        for (int j = 0; j < V; j++) {
            double g = exp((double)x[j] - mx) / sum - (j == t ? 1.0 : 0.0);
            dx[j] = (float)(wt * g * inv);
        }
    }
    return (float)(loss_sum * inv);
}
