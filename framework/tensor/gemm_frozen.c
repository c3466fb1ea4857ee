/* tensor/gemm_frozen: bf16 packs of frozen weights, made once instead of at every product.
 *
 * In bf16 precision every product rounds and packs its op(B) into the kernel's panels
 * (gemm_bf16.c's layout, which the AMX kernel, gemm_amx.c, shares). For a weight that does not
 * change for a whole phase that work is the same at every step, and with xa_sgemm's M split every
 * thread repeats it. So the owner of a frozen weight W (rows, cols) registers it here
 * (xa_gemm_frozen_add; the encoder and the MLM head do it through xa_encoder_set_packed /
 * xa_mlm_head_set_packed), and xa_sgemm, when its B operand is W's whole matrix, reads the pack of
 * that orientation instead of packing:
 *
 *   out  = inp W^T   (trans_b = 1: op(B) = W^T, K = cols, N = rows)   forward, every path
 *   dinp = dout W    (trans_b = 0: op(B) = W,   K = rows, N = cols)   backward through W
 *
 * Each orientation is packed on its first use (inference never makes the second one); a pack costs
 * about half the fp32 weight (2 bytes an element), both together about the weight's size. The
 * pack holds exactly the bits either bf16 kernel (AVX512-BF16 or AMX, whichever runs the product)
 * would pack at that product, so results are bit-identical with the packs on or off (test_tensor,
 * test_train).
 *
 * Staleness is excluded by who may register, not detected after the fact: only frozen weights, by
 * their owner, from when their values are final until the phase ends or the memory is freed
 * (xa_encoder_free, xa_encoder_set_trainable(enc, 1) and xa_mlm_head_* drop them); the trainer
 * asserts that no optimizer group overlaps a registered weight. Trainable weights are never
 * packed ahead: each is used by one forward and one input-gradient product per step, so a pack
 * refreshed after each optimizer step would do the same packing the products do now (and an
 * adapter's pack is 1/N of its product's work, N = B T rows). XA_BF16_PACKS_CHECK=1 re-packs the
 * source at every use and compares (a debug check: a mismatch is logged, counted and repaired);
 * XA_BF16_PACKS=off turns the packs off, XA_BF16_PACKS=forward keeps only the W^T packs (half the
 * memory; the backward products pack W each time) (xa_gemm_frozen_set_enabled for tests).
 *
 * Threads: add / remove / set_enabled run between products (the owner's thread); lookups run in
 * any thread, the first use of an orientation packs under a mutex. In fp32 nothing here runs:
 * xa_sgemm looks packs up only in bf16 precision, and leaving bf16 frees them.
 */
#include "tensor/tensor.h"
#include "tensor/gemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct frozen_weight {
    const float *w;               /* (rows, cols) row-major, ld = cols; caller-owned */
    int rows, cols;
    char name[64];
    _Atomic(uint32_t *) pack[2];  /* [0]: op(B) = W^T (trans_b 1), [1]: op(B) = W (trans_b 0) */
} frozen_weight;

static frozen_weight *g_w;        /* (g_cap) */
static int g_n, g_cap;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_enabled = -1;        /* 0 off, 1 both orientations, 2 W^T only; -1: from XA_BF16_PACKS */
static int g_check = -1;          /* -1: from XA_BF16_PACKS_CHECK on first use */
static size_t g_bytes;            /* held by packs */
static size_t g_stale;            /* mismatches found by the check */
static size_t g_made;             /* packs made so far */

static int enabled(void) {
    if (g_enabled < 0) {
        const char *e = getenv("XA_BF16_PACKS");
        g_enabled = e && (!strcmp(e, "0") || !strcmp(e, "off")) ? 0 : e && !strcmp(e, "forward") ? 2 : 1;
    }
    return g_enabled;
}

static int checking(void) {
    if (g_check < 0) {
        const char *e = getenv("XA_BF16_PACKS_CHECK");
        g_check = e && *e && strcmp(e, "0") != 0;
    }
    return g_check;
}

/* K, N of orientation o of weight f */
static void dims(const frozen_weight *f, int o, int *K, int *N) {
    *K = o == 0 ? f->cols : f->rows;
    *N = o == 0 ? f->rows : f->cols;
}

static size_t pack_words(const frozen_weight *f, int o) {
    int K, N;
    dims(f, o, &K, &N);
    return xa_gemm_bf16_pack_b_size(K, N);
}

/* Pack orientation o of f into dst, over the threads (serially inside a parallel region). */
static void pack_into(uint32_t *dst, const frozen_weight *f, int o) {
    int K, N;
    dims(f, o, &K, &N);
    const int n = xa_gemm_bf16_pack_b_chunks(K, N);
    XA_OMP("omp parallel for num_threads(xa_threads_get()) schedule(dynamic) if(n > 1)")
    for (int c = 0; c < n; c++) xa_gemm_bf16_pack_b(dst, o == 0, f->w, f->cols, K, N, c);
}

/* Free orientation o's pack of f, if made. */
static void drop_pack(frozen_weight *f, int o) {
    uint32_t *p = atomic_exchange(&f->pack[o], NULL);
    if (p) {
        g_bytes -= pack_words(f, o) * sizeof(uint32_t);
        xa_aligned_free(p);
    }
}

static void drop(frozen_weight *f) {
    drop_pack(f, 0);
    drop_pack(f, 1);
}

/* The check: re-pack the source and compare; a mismatch is logged, counted and repaired. Locked. */
static void verify(frozen_weight *f, int o, uint32_t *p) {
    size_t words = pack_words(f, o);
    uint32_t *fresh = xa_aligned_alloc(words * sizeof(uint32_t), 64);
    if (!fresh) return;
    pack_into(fresh, f, o);
    if (memcmp(fresh, p, words * sizeof(uint32_t)) != 0) {
        g_stale++;
        XA_LOG_ERROR("xa_gemm_frozen: the bf16 pack of '%s' (%d x %d, %s) no longer matches its fp32 "
                     "source: the weight was written while registered as frozen (hint: its owner must "
                     "drop it before writing, see xa_gemm_frozen_add)",
                     f->name, f->rows, f->cols, o == 0 ? "W^T" : "W");
        memcpy(p, fresh, words * sizeof(uint32_t));
    }
    xa_aligned_free(fresh);
}

const uint32_t *xa_gemm_frozen_find(const float *B, int trans_b, int K, int N, int ldb) {
    if (g_n == 0 || !enabled()) return NULL;
    for (int i = 0; i < g_n; i++) {
        frozen_weight *f = &g_w[i];
        if (f->w != B) continue;
        const int o = trans_b ? 0 : 1;
        if (o == 1 && g_enabled == 2) return NULL; /* forward packs only */
        int k, n;
        dims(f, o, &k, &n);
        if (ldb != f->cols || K != k || N != n) return NULL; /* a part of W: packed per product */
        uint32_t *p = atomic_load_explicit(&f->pack[o], memory_order_acquire);
        if (p && !checking()) return p;
        pthread_mutex_lock(&g_lock);
        p = atomic_load_explicit(&f->pack[o], memory_order_acquire);
        if (p) {
            verify(f, o, p);
        } else {
            size_t bytes = pack_words(f, o) * sizeof(uint32_t);
            p = xa_aligned_alloc(bytes, 64);
            if (p) {
                pack_into(p, f, o);
                g_bytes += bytes;
                g_made++;
                atomic_store_explicit(&f->pack[o], p, memory_order_release);
            } else {
                XA_LOG_WARN("xa_gemm_frozen: no memory for the bf16 pack of '%s' (%zu bytes): packed at "
                            "each product instead", f->name, bytes);
            }
        }
        pthread_mutex_unlock(&g_lock);
        return p;
    }
    return NULL;
}

xa_status xa_gemm_frozen_add(const float *w, int rows, int cols, const char *name) {
    XA_ASSERT(w && rows > 0 && cols > 0);
    XA_ASSERT(!xa_gemm_frozen_overlaps(w, (size_t)rows * cols * sizeof(float)) &&
              "a frozen weight registered twice or overlapping another");
    if (g_n == g_cap) {
        int cap = g_cap ? 2 * g_cap : 64;
        frozen_weight *nw = realloc(g_w, (size_t)cap * sizeof *nw);
        if (!nw) return xa_error_set(XA_STATUS_NOMEM, "xa_gemm_frozen_add", NULL, NULL, "out of memory");
        g_w = nw;
        g_cap = cap;
    }
    frozen_weight *f = &g_w[g_n];
    memset(f, 0, sizeof *f);
    f->w = w;
    f->rows = rows;
    f->cols = cols;
    snprintf(f->name, sizeof f->name, "%s", name ? name : "?");
    atomic_init(&f->pack[0], NULL);
    atomic_init(&f->pack[1], NULL);
    g_n++;
    return XA_STATUS_OK;
}

void xa_gemm_frozen_remove(const float *w) {
    for (int i = 0; i < g_n; i++) {
        if (g_w[i].w != w) continue;
        drop(&g_w[i]);
        g_w[i] = g_w[g_n - 1];
        g_n--;
        return;
    }
}

void xa_gemm_frozen_drop_packs(void) {
    for (int i = 0; i < g_n; i++) drop(&g_w[i]);
}

int xa_gemm_frozen_overlaps(const void *p, size_t bytes) {
    const char *b = p, *e = (const char *)p + bytes;
    for (int i = 0; i < g_n; i++) {
        const char *wb = (const char *)g_w[i].w, *we = (const char *)(g_w[i].w + (size_t)g_w[i].rows * g_w[i].cols);
        if (b < we && wb < e) return 1;
    }
    return 0;
}

size_t xa_gemm_frozen_verify(void) {
    size_t before = g_stale;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_n; i++) {
        for (int o = 0; o < 2; o++) {
            uint32_t *p = atomic_load(&g_w[i].pack[o]);
            if (p) verify(&g_w[i], o, p);
        }
    }
    pthread_mutex_unlock(&g_lock);
    return g_stale - before;
}

size_t xa_gemm_frozen_stale(void) { return g_stale; }

size_t xa_gemm_frozen_bytes(void) { return g_bytes; }

size_t xa_gemm_frozen_made(void) { return g_made; }

int xa_gemm_frozen_count(void) { return g_n; }

void xa_gemm_frozen_set_enabled(int on) {
    if (on < 0) {
        g_enabled = -1;
        g_check = -1;
    } else {
        g_enabled = on == 2 ? 2 : on != 0;
    }
    if (!enabled()) xa_gemm_frozen_drop_packs();
    for (int i = 0; i < g_n && enabled() == 2; i++) drop_pack(&g_w[i], 1); /* forward only: the W packs go */
}

int xa_gemm_frozen_enabled(void) { return enabled(); }

void xa_gemm_frozen_set_check(int on) { g_check = on < 0 ? -1 : on != 0; }
