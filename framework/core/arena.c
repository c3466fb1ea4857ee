/* core/arena: one aligned, zeroed buffer carved into views by a sizes table (llm.c's
 * malloc_and_point), and the parameter-buffer helpers built on the same idea. Large buffers are advised to use transparent huge pages: touching a fresh 4 KiB
 * page costs 12-27 us in the project's VMs against 0.3 us with huge pages (DESIGN.md §6).
 * Not a bump allocator: the plan is fixed at init and nothing is allocated afterwards. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XA_HUGE_PAGE ((size_t)2 << 20)

static size_t round_up(size_t x, size_t align) { return (x + align - 1) & ~(align - 1); }

size_t xa_arena_plan(const size_t *sizes, size_t n, size_t align, size_t *offsets) {
    XA_ASSERT(align >= 16 && (align & (align - 1)) == 0);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] > SIZE_MAX - align) return SIZE_MAX;
        size_t sz = round_up(sizes[i], align);
        if (offsets) offsets[i] = total;
        if (!xa_size_add(total, sz, &total)) return SIZE_MAX;
    }
    return total;
}

void *xa_aligned_alloc(size_t size, size_t align) {
    if (size == 0) size = align;
    /* Huge-page alignment lets the kernel back the buffer with 2 MiB pages. */
    if (size >= XA_HUGE_PAGE) align = XA_HUGE_PAGE;
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (size >= XA_HUGE_PAGE) madvise(p, size, MADV_HUGEPAGE);
#endif
    memset(p, 0, size);
    return p;
}

void xa_aligned_free(void *p) { free(p); }

xa_status xa_arena_init(xa_arena *arena, const size_t *sizes, size_t n, size_t align, void **views) {
    memset(arena, 0, sizeof *arena);
    if (align < 16 || (align & (align - 1)) != 0) {
        return xa_error_set(XA_STATUS_USAGE, "xa_arena_init", "a power of two >= 16", NULL,
                            "bad alignment %zu", align);
    }
    size_t *offsets = n ? malloc(n * sizeof *offsets) : NULL;
    if (n && !offsets) return xa_error_set(XA_STATUS_NOMEM, "xa_arena_init", NULL, NULL, "out of memory");
    size_t total = xa_arena_plan(sizes, n, align, offsets);
    if (total == SIZE_MAX) {
        free(offsets);
        return xa_error_set(XA_STATUS_NOMEM, "xa_arena_init", NULL, NULL,
                            "arena of %zu views overflows size_t", n);
    }
    void *base = xa_aligned_alloc(total, align);
    if (!base) {
        free(offsets);
        return xa_error_set(XA_STATUS_NOMEM, "xa_arena_init", NULL,
                            "reduce the batch size or the sequence length",
                            "cannot allocate %zu bytes (%.1f MiB)", total, (double)total / 1048576.0);
    }
    if (views) {
        for (size_t i = 0; i < n; i++) views[i] = (char *)base + offsets[i];
    }
    free(offsets);
    arena->base = base;
    arena->size = total;
    arena->align = align;
    return XA_STATUS_OK;
}

void xa_arena_free(xa_arena *arena) {
    if (!arena) return;
    xa_aligned_free(arena->base);
    arena->base = NULL;
    arena->size = 0;
}

void xa_params_carve(float *base, const size_t *numel, int n, float **views) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        views[i] = base && numel[i] ? base + off : NULL;
        off += numel[i];
    }
}

xa_status xa_params_set_trainable(float **grads, size_t total, const size_t *numel, int n,
                                  float **gviews, int trainable, const char *who) {
    if (!trainable) {
        xa_aligned_free(*grads);
        *grads = NULL;
    } else if (!*grads) {
        *grads = xa_aligned_alloc(total * sizeof(float), XA_ARENA_ALIGN);
        if (!*grads) {
            return xa_error_set(XA_STATUS_NOMEM, who, NULL, NULL,
                                "cannot allocate gradients for %zu parameters", total);
        }
    }
    xa_params_carve(*grads, numel, n, gviews);
    return XA_STATUS_OK;
}
