/* tensor/gemm_trace: where the time of the matrix products goes, product shape by product shape
 * (XA_GEMM_TRACE=1 in the environment, or xa_gemm_trace_enable). Every xa_sgemm is then timed and
 * added to its shape's row (transposes, M, N, K, whether B came from a frozen weight's bf16 pack,
 * whether it ran inside a parallel region), and xa_gemm_trace_report prints the rows, the largest
 * share of time first, with each shape's GFLOP/s: the profile that says which products of a step
 * run below the kernel's speed (e.g. a 1024 x 3072 output whose C goes to memory once per K
 * block). The report is printed at exit (atexit) and by each `xadapt bench` row before its process
 * ends.
 *
 * Cost: none when off (xa_sgemm reads one int). On: two clock reads and a mutex per product. A
 * product inside a parallel region (attention's per-head products, one thread each) counts its
 * time divided by the region's threads, so that the shares add up to wall time as the split
 * products' do. Shapes past XA_GEMM_TRACE_SHAPES go to one "other shapes" row. */
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef XA_HAVE_OPENMP
#include <omp.h>
#endif

#define XA_GEMM_TRACE_SHAPES 512

typedef struct trace_row {
    int ta, tb, M, N, K, packed, nested;
    long calls;
    double seconds, flops;
} trace_row;

static int g_on; /* from XA_GEMM_TRACE at first use (read_env), or xa_gemm_trace_enable */
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static trace_row g_rows[XA_GEMM_TRACE_SHAPES + 1]; /* the last: other shapes */
static int g_n;

static void report_at_exit(void) { xa_gemm_trace_report(stderr); }

/* Once per process, whichever thread's product comes first (attention's run in parallel). */
static void read_env(void) {
    const char *e = getenv("XA_GEMM_TRACE");
    g_on = e && *e && strcmp(e, "0") != 0;
    if (g_on) atexit(report_at_exit);
}

int xa_gemm_trace_on(void) {
    pthread_once(&g_env_once, read_env);
    return g_on;
}

void xa_gemm_trace_enable(int on) {
    pthread_once(&g_env_once, read_env); /* the variable is read before, not after, this */
    pthread_mutex_lock(&g_lock);
    g_on = on != 0;
    g_n = 0;
    memset(g_rows, 0, sizeof g_rows);
    pthread_mutex_unlock(&g_lock);
}

void xa_gemm_trace_add(int trans_a, int trans_b, int M, int N, int K, int packed, double seconds) {
    int nested = 0;
#ifdef XA_HAVE_OPENMP
    if (omp_in_parallel()) {
        nested = 1;
        seconds /= omp_get_num_threads();
    }
#endif
    pthread_mutex_lock(&g_lock);
    trace_row *r = NULL;
    for (int i = 0; i < g_n && !r; i++) {
        trace_row *t = &g_rows[i];
        if (t->ta == trans_a && t->tb == trans_b && t->M == M && t->N == N && t->K == K &&
            t->packed == packed && t->nested == nested)
            r = t;
    }
    if (!r && g_n < XA_GEMM_TRACE_SHAPES) {
        r = &g_rows[g_n++];
        *r = (trace_row){trans_a, trans_b, M, N, K, packed, nested, 0, 0.0, 0.0};
    }
    if (!r) {
        r = &g_rows[XA_GEMM_TRACE_SHAPES];
        r->M = -1; /* marks the other-shapes row */
    }
    r->calls++;
    r->seconds += seconds;
    r->flops += 2.0 * M * N * K;
    pthread_mutex_unlock(&g_lock);
}

static int by_seconds(const void *a, const void *b) {
    double x = ((const trace_row *)a)->seconds, y = ((const trace_row *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

int xa_gemm_trace_report(FILE *f) {
    if (!xa_gemm_trace_on()) return 0;
    pthread_mutex_lock(&g_lock);
    trace_row rows[XA_GEMM_TRACE_SHAPES + 1];
    int n = g_n;
    memcpy(rows, g_rows, sizeof(trace_row) * (size_t)n);
    if (g_rows[XA_GEMM_TRACE_SHAPES].calls) rows[n++] = g_rows[XA_GEMM_TRACE_SHAPES];
    pthread_mutex_unlock(&g_lock);
    if (!n) return 0;
    qsort(rows, (size_t)n, sizeof rows[0], by_seconds);
    double total = 0.0, flops = 0.0;
    long calls = 0;
    for (int i = 0; i < n; i++) {
        total += rows[i].seconds;
        flops += rows[i].flops;
        calls += rows[i].calls;
    }
    fprintf(f, "\nmatrix products (XA_GEMM_TRACE; %s, %s): %ld calls, %.3f s, %.1f GFLOP/s, by shape:\n",
            xa_precision_name(xa_gemm_precision()), xa_gemm_engine(), calls, total,
            total > 0 ? flops / total * 1e-9 : 0.0);
    fprintf(f, "| share | s | calls | GFLOP/s | M | N | K | op | B | threads |\n"
               "|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const trace_row *r = &rows[i];
        double share = total > 0 ? 100.0 * r->seconds / total : 0.0;
        double gf = r->seconds > 0 ? r->flops / r->seconds * 1e-9 : 0.0;
        if (r->M < 0) {
            fprintf(f, "| %.1f%% | %.3f | %ld | %.1f | (other shapes) | | | | | |\n", share, r->seconds, r->calls, gf);
            continue;
        }
        fprintf(f, "| %.1f%% | %.3f | %ld | %.1f | %d | %d | %d | %s %s | %s | %s |\n", share, r->seconds,
                r->calls, gf, r->M, r->N, r->K, r->ta ? "A^T" : "A", r->tb ? "B^T" : "B",
                r->packed ? "bf16 pack" : "-", r->nested ? "one, in a region" : "xa_sgemm's");
    }
    fflush(f);
    return n;
}
