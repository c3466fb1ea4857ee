/* io/torchbin: torch.save files (zip and legacy containers) as an xa_st_file (io/torchbin.h).
 *
 * Learned from torch/serialization.py of torch 1.13 (_save, _legacy_save, _load, _legacy_load)
 * and checked on files it writes (tests/golden/gen_torchbin_fixtures.py):
 *  - zip: the archive's records share one top directory, the file's base name without extension
 *    ("pytorch_model/data.pkl") or "archive"; torch.load takes it from the first record, so does
 *    this reader. A persistent id is ('storage', torch.<Dtype>Storage, key, location, numel) and
 *    the storage's bytes are the record PREFIX/data/KEY (numel * element size bytes, native
 *    little-endian; "byteorder" says "little" or "big" in newer files).
 *  - legacy: pickle(magic 0x1950a86a20f9469cfc6c), pickle(1001), pickle(sys_info), the state
 *    dict with persistent ids ('storage', type, key, location, numel, view_metadata), pickle(list
 *    of keys), then per key in that order: int64 numel and numel * element size bytes.
 * A tensor is _rebuild_tensor_v2(storage, offset, size, stride, ...): element (i0, ..., ik) is
 * storage[offset + sum(i_d * stride_d)], all in elements.
 *
 * Does not: read the tar container of torch < 0.4 (refused with a hint), storage views of the
 * pre-1.0 legacy format, sparse or quantized tensors, or nested checkpoints ({"state_dict": ...}:
 * refused with a hint); location tags ("cpu", "cuda:0") are ignored (the bytes are the same).
 */
#include "io/torchbin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/pickle.h"
#include "io/zip.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io/torchbin assumes a little-endian host"
#endif

/* The legacy container starts with PROTO 2, LONG1 of 10 bytes holding the magic number, STOP. */
static const unsigned char g_legacy_magic[16] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                                 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0};
#define LEGACY_MAGIC_LEN 15
#define LEGACY_PROTOCOL 1001

xa_torch_format xa_torch_sniff(const void *head, size_t n) {
    const unsigned char *b = head;
    if (n >= 4 && b[0] == 'P' && b[1] == 'K' && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6))) {
        return XA_TORCH_FORMAT_ZIP;
    }
    if (n >= 4 && memcmp(b, g_legacy_magic, 4) == 0) return XA_TORCH_FORMAT_LEGACY;
    return XA_TORCH_FORMAT_NONE;
}

/* One storage record: its bytes and the dtype its persistent ids gave it. */
typedef struct tb_rec {
    const char *key;
    const unsigned char *data;
    uint64_t nbytes;
    xa_dtype dtype;
} tb_rec;

typedef struct tb_ctx {
    const char *path;
    unsigned char *map;
    size_t size;
    char pkl_where[XA_ERROR_FIELD]; /* "PATH: PREFIX/data.pkl" */
    /* zip */
    xa_zip *zip;
    char prefix[256];
    /* legacy: records sorted by key */
    tb_rec *recs;
    size_t n_recs;
    /* output */
    xa_st_tensor *t;
    size_t n_t;
    void **owned;
    size_t n_owned;
    size_t copied, copy_cap; /* bytes copied for non-contiguous views, and their limit */
} tb_ctx;

static int cmp_rec(const void *a, const void *b) {
    return strcmp(((const tb_rec *)a)->key, ((const tb_rec *)b)->key);
}

/* The bytes of the storage `s`: the zip record PREFIX/data/KEY or the legacy record. Checks the
 * record holds exactly numel elements of the storage's dtype. */
static xa_status storage_bytes(tb_ctx *c, const xa_pv_storage *s, const char *tensor,
                               const unsigned char **data) {
    char where[XA_ERROR_FIELD];
    snprintf(where, sizeof where, "%s: tensor '%.200s'", c->path, tensor);
    size_t esz = xa_dtype_size(s->dtype), want;
    if (s->numel < 0 || !xa_size_mul((size_t)s->numel, esz, &want)) {
        return xa_error_set(XA_STATUS_FORMAT, where, "a storage size that fits in 64 bits", NULL,
                            "storage '%.100s' of %" PRId64 " elements overflows", s->key, s->numel);
    }
    if (s->has_view) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, where, "view_metadata None", 
                            "load it with torch and save it again with a recent torch",
                            "storage '%.100s' is a storage view of the pre-1.0 format", s->key);
    }
    uint64_t have;
    const char *rec;
    char name[600];
    if (c->zip) {
        snprintf(name, sizeof name, "%s/data/%.300s", c->prefix, s->key);
        rec = name;
        const xa_zip_entry *e = xa_zip_find(c->zip, name);
        if (!e) {
            return xa_error_set(XA_STATUS_FORMAT, where, "a record for every storage",
                                "truncated or incomplete archive?", "storage record '%s' is missing",
                                name);
        }
        xa_status st = xa_zip_check_crc(c->zip, e);
        if (st) return st;
        *data = e->data;
        have = e->size;
    } else {
        tb_rec key = {.key = s->key};
        tb_rec *r = bsearch(&key, c->recs, c->n_recs, sizeof *c->recs, cmp_rec);
        rec = s->key;
        if (!r) {
            return xa_error_set(XA_STATUS_FORMAT, where, "a record for every storage", "corrupt file?",
                                "storage key '%.100s' is not in the file's storage list", s->key);
        }
        *data = r->data;
        have = r->nbytes;
    }
    if (have != want) {
        return xa_error_set(XA_STATUS_FORMAT, where, "a storage record of numel x element size bytes",
                            "truncated or corrupt file?",
                            "storage '%.300s' holds %" PRIu64 " bytes; %" PRId64 " elements of %s need %zu",
                            rec, have, s->numel, xa_dtype_name(s->dtype), want);
    }
    return XA_STATUS_OK;
}

/* Copy a strided view into dst in row-major order (an odometer over the indices). */
static void gather(unsigned char *dst, const unsigned char *src, const xa_pv_tensor *t, size_t esz,
                   size_t n_elems) {
    int64_t idx[XA_PICKLE_MAX_DIMS] = {0};
    int64_t off = t->offset;
    for (size_t i = 0; i < n_elems; i++) { /* hot loop: one element per step */
        memcpy(dst + i * esz, src + (size_t)off * esz, esz);
        for (int d = t->n_dims - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) {
                off += t->stride[d];
                break;
            }
            off -= (idx[d] - 1) * t->stride[d];
            idx[d] = 0;
        }
    }
}

/* Turn the pickled tensor `pv` named `name` into out. */
static xa_status make_tensor(tb_ctx *c, const char *name, const xa_pv_tensor *pt, xa_st_tensor *out) {
    char where[XA_ERROR_FIELD];
    snprintf(where, sizeof where, "%s: tensor '%.200s'", c->path, name);
    const xa_pv_storage *s = &pt->storage->u.storage;
    const unsigned char *base = NULL;
    xa_status st = storage_bytes(c, s, name, &base);
    if (st) return st;
    size_t esz = xa_dtype_size(s->dtype);
    out->dtype = s->dtype;
    out->n_dims = pt->n_dims;
    size_t n_elems = 1;
    int contiguous = 1;
    uint64_t expect = 1, last = (uint64_t)pt->offset; /* last: the highest element index used */
    for (int d = pt->n_dims - 1; d >= 0; d--) {
        out->shape[d] = pt->shape[d];
        if (!xa_size_mul(n_elems, (size_t)pt->shape[d], &n_elems) || n_elems > (size_t)INT64_MAX) {
            return xa_error_set(XA_STATUS_FORMAT, where, "a shape whose size fits in 64 bits", NULL,
                                "the shape's element count overflows");
        }
        if (pt->shape[d] != 1 && (uint64_t)pt->stride[d] != expect) contiguous = 0;
        expect *= (uint64_t)pt->shape[d]; /* <= n_elems: no overflow */
    }
    out->n_elems = (int64_t)n_elems;
    if (!xa_size_mul(n_elems, esz, &out->nbytes)) {
        return xa_error_set(XA_STATUS_FORMAT, where, "a byte size that fits in 64 bits", NULL,
                            "%zu elements of %s overflow", n_elems, xa_dtype_name(s->dtype));
    }
    if (n_elems) {
        for (int d = 0; d < pt->n_dims; d++) {
            uint64_t span = (uint64_t)(pt->shape[d] - 1), step;
            if (pt->stride[d] && span > (UINT64_MAX - last) / (uint64_t)pt->stride[d]) {
                last = UINT64_MAX;
                break;
            }
            step = span * (uint64_t)pt->stride[d];
            last += step;
        }
        if (last >= (uint64_t)s->numel) {
            char got[64];
            if (last == UINT64_MAX) {
                snprintf(got, sizeof got, "past 2^64");
            } else {
                snprintf(got, sizeof got, "%" PRIu64, last);
            }
            return xa_error_set(XA_STATUS_FORMAT, where, "a view inside its storage",
                                "corrupt file? (offset, size and stride do not fit the storage)",
                                "the view reaches element %s of storage '%.100s', which has %" PRId64
                                " elements",
                                got, s->key, s->numel);
        }
    }
    if (contiguous || !n_elems) {
        out->data = base + (n_elems ? (size_t)pt->offset * esz : 0);
        out->offset = (size_t)((const unsigned char *)out->data - c->map);
        return XA_STATUS_OK;
    }
    if (out->nbytes > c->copy_cap - c->copied) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, where,
                            "non-contiguous views of at most 4x the file size in all",
                            "save contiguous tensors: {k: v.contiguous() for k, v in sd.items()}",
                            "copying this strided view (%zu bytes) would pass %zu bytes of copies",
                            out->nbytes, c->copy_cap);
    }
    unsigned char *buf = malloc(out->nbytes);
    void **no = buf ? realloc(c->owned, (c->n_owned + 1) * sizeof *no) : NULL;
    if (!no) {
        free(buf);
        return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL, "cannot copy %zu bytes", out->nbytes);
    }
    c->owned = no;
    c->owned[c->n_owned++] = buf;
    c->copied += out->nbytes;
    gather(buf, base, pt, esz, n_elems);
    out->data = buf;
    out->offset = 0;
    return XA_STATUS_OK;
}

/* The state dict (the pickle's root) into c->t. */
static xa_status collect(tb_ctx *c, const xa_pv *root) {
    if (root->kind != XA_PV_DICT) {
        return xa_error_set(XA_STATUS_FORMAT, c->pkl_where, "a dict of tensors (a state dict)",
                            "save model.state_dict(), not the model or a list",
                            "the pickle holds a %s", xa_pv_kind_name(root->kind));
    }
    size_t n = root->u.seq.n / 2;
    c->t = calloc(n ? n : 1, sizeof *c->t);
    if (!c->t) return xa_error_set(XA_STATUS_NOMEM, c->path, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const xa_pv *k = root->u.seq.items[2 * i], *v = root->u.seq.items[2 * i + 1];
        if (k->kind != XA_PV_STR || strlen(k->u.str.s) != k->u.str.n) {
            return xa_error_set(XA_STATUS_FORMAT, c->pkl_where, "str keys (tensor names)", NULL,
                                "key %zu of the state dict is of type %s", i,
                                k->kind == XA_PV_STR ? "str with a NUL byte" : xa_pv_kind_name(k->kind));
        }
        if (v->kind != XA_PV_TENSOR) {
            return xa_error_set(XA_STATUS_FORMAT, c->pkl_where, "a tensor for every key",
                                v->kind == XA_PV_DICT
                                    ? "a training checkpoint? save its model state dict on its own: "
                                      "torch.save(ckpt['state_dict'], 'pytorch_model.bin')"
                                    : "save model.state_dict() only",
                                "key '%.200s' holds a %s, not a tensor", k->u.str.s,
                                xa_pv_kind_name(v->kind));
        }
        xa_st_tensor *t = &c->t[c->n_t];
        if (!(t->name = strdup(k->u.str.s))) {
            return xa_error_set(XA_STATUS_NOMEM, c->path, NULL, NULL, "out of memory");
        }
        c->n_t++;
        xa_status st = make_tensor(c, t->name, &v->u.tensor, t);
        if (st) return st;
    }
    return XA_STATUS_OK;
}

static xa_status read_zip(tb_ctx *c, xa_pickle **pk) {
    xa_status st = xa_zip_open(&c->zip, c->map, c->size, c->path);
    if (st) return st;
    const xa_zip_entry *first = xa_zip_at(c->zip, 0);
    const char *slash = first ? strchr(first->name, '/') : NULL;
    if (!slash || (size_t)(slash - first->name) >= sizeof c->prefix) {
        return xa_error_set(XA_STATUS_FORMAT, c->path, "records under one directory (NAME/data.pkl)",
                            "a zip archive, but not one written by torch.save",
                            "the first record is '%.200s'", first ? first->name : "(none)");
    }
    snprintf(c->prefix, sizeof c->prefix, "%.*s", (int)(slash - first->name), first->name);
    char name[512];
    snprintf(name, sizeof name, "%s/byteorder", c->prefix);
    const xa_zip_entry *bo = xa_zip_find(c->zip, name);
    if (bo && !(bo->size == 6 && memcmp(bo->data, "little", 6) == 0)) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, c->path, "byteorder \"little\"",
                            "load and save it again with torch on a little-endian machine",
                            "the file was written big-endian (%s: '%.*s')", name,
                            (int)(bo->size < 16 ? bo->size : 16), (const char *)bo->data);
    }
    snprintf(name, sizeof name, "%s/data.pkl", c->prefix);
    const xa_zip_entry *pkl = xa_zip_find(c->zip, name);
    if (!pkl) {
        return xa_error_set(XA_STATUS_FORMAT, c->path, "a record PREFIX/data.pkl",
                            "a zip archive, but not one written by torch.save",
                            "no record '%s'", name);
    }
    if ((st = xa_zip_check_crc(c->zip, pkl))) return st;
    snprintf(c->pkl_where, sizeof c->pkl_where, "%.300s: %.200s", c->path, name);
    return xa_pickle_load(pk, pkl->data, (size_t)pkl->size, NULL, c->pkl_where);
}

/* One of the small legacy pickles before the state dict. */
static xa_status legacy_small(tb_ctx *c, size_t *pos, const char *what, xa_pickle **pk) {
    char where[XA_ERROR_FIELD];
    snprintf(where, sizeof where, "%.300s: legacy %s pickle", c->path, what);
    size_t used;
    xa_status st = xa_pickle_load(pk, c->map + *pos, c->size - *pos, &used, where);
    if (!st) *pos += used;
    return st;
}

static int cmp_storage_key(const void *a, const void *b) {
    const xa_pv *const *x = a, *const *y = b;
    return strcmp((*x)->u.storage.key, (*y)->u.storage.key);
}

static xa_status read_legacy(tb_ctx *c, xa_pickle **pk) {
    xa_pickle *q = NULL;
    const xa_pv **by_key = NULL;
    size_t n_st = 0;
    xa_status st;
    if (c->size < LEGACY_MAGIC_LEN || memcmp(c->map, g_legacy_magic, LEGACY_MAGIC_LEN) != 0) {
        return xa_error_set(XA_STATUS_FORMAT, c->path, "the torch magic number 0x1950a86a20f9469cfc6c first",
                            "a pickle, but not one written by torch.save; or a truncated file",
                            "the file starts with a pickle that is not torch's magic number");
    }
    size_t pos = LEGACY_MAGIC_LEN;
    if ((st = legacy_small(c, &pos, "protocol", &q))) return st;
    const xa_pv *v = xa_pickle_root(q);
    int ok = v->kind == XA_PV_INT && v->u.i == LEGACY_PROTOCOL;
    xa_pickle_free(q);
    q = NULL;
    if (!ok) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, c->path, "legacy protocol 1001", NULL,
                            "the legacy protocol version is not 1001");
    }
    if ((st = legacy_small(c, &pos, "sys_info", &q))) return st;
    v = xa_pickle_root(q);
    for (size_t i = 0; v->kind == XA_PV_DICT && i + 1 < v->u.seq.n; i += 2) {
        const xa_pv *k = v->u.seq.items[i], *x = v->u.seq.items[i + 1];
        if (k->kind == XA_PV_STR && strcmp(k->u.str.s, "little_endian") == 0 &&
            x->kind == XA_PV_BOOL && !x->u.i) {
            xa_pickle_free(q);
            return xa_error_set(XA_STATUS_UNSUPPORTED, c->path, "little_endian True",
                                "load and save it again with torch on a little-endian machine",
                                "the file was written big-endian");
        }
    }
    xa_pickle_free(q);
    q = NULL;
    snprintf(c->pkl_where, sizeof c->pkl_where, "%.300s: legacy state-dict pickle", c->path);
    size_t used;
    if ((st = xa_pickle_load(pk, c->map + pos, c->size - pos, &used, c->pkl_where))) return st;
    pos += used;
    if ((st = legacy_small(c, &pos, "storage keys", &q))) return st;
    v = xa_pickle_root(q);
    if (v->kind != XA_PV_LIST) {
        st = xa_error_set(XA_STATUS_FORMAT, c->path, "a list of storage keys after the state dict",
                          "corrupt file?", "the storage key pickle holds a %s", xa_pv_kind_name(v->kind));
        goto done;
    }
    c->n_recs = v->u.seq.n;
    n_st = xa_pickle_storage_count(*pk);
    by_key = malloc((n_st ? n_st : 1) * sizeof *by_key);
    if (by_key) {
        for (size_t j = 0; j < n_st; j++) by_key[j] = xa_pickle_storage_at(*pk, j);
        qsort(by_key, n_st, sizeof *by_key, cmp_storage_key);
    }
    if (!by_key || !(c->recs = calloc(c->n_recs ? c->n_recs : 1, sizeof *c->recs))) {
        st = xa_error_set(XA_STATUS_NOMEM, c->path, NULL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c->n_recs; i++) {
        const xa_pv *k = v->u.seq.items[i];
        tb_rec *r = &c->recs[i];
        if (k->kind != XA_PV_STR) {
            st = xa_error_set(XA_STATUS_FORMAT, c->path, "str storage keys", "corrupt file?",
                              "storage key %zu is a %s", i, xa_pv_kind_name(k->kind));
            goto done;
        }
        /* the dtype comes from the state dict's persistent ids with this key */
        const xa_pv *kp = &(xa_pv){.kind = XA_PV_STORAGE, .u.storage.key = k->u.str.s};
        const xa_pv **hit = bsearch(&kp, by_key, n_st, sizeof *by_key, cmp_storage_key);
        const xa_pv *s = hit ? *hit : NULL;
        if (!s) {
            st = xa_error_set(XA_STATUS_FORMAT, c->path, "storage keys used by the state dict",
                              "corrupt file?", "storage key '%.100s' is used by no tensor", k->u.str.s);
            goto done;
        }
        size_t esz = xa_dtype_size(s->u.storage.dtype), nb;
        if (c->size - pos < 8) {
            st = xa_error_set(XA_STATUS_FORMAT, c->path, "an int64 element count per storage",
                              "truncated file?", "the file ends before storage '%.100s'", k->u.str.s);
            goto done;
        }
        uint64_t numel;
        memcpy(&numel, c->map + pos, 8);
        pos += 8;
        if (numel > SIZE_MAX || !xa_size_mul((size_t)numel, esz, &nb) || nb > c->size - pos) {
            st = xa_error_set(XA_STATUS_FORMAT, c->path, "storage bytes inside the file", "truncated file?",
                              "storage '%.100s' of %" PRIu64 " elements at byte %zu runs past the end "
                              "(%zu bytes)",
                              k->u.str.s, numel, pos - 8, c->size);
            goto done;
        }
        r->key = s->u.storage.key; /* owned by *pk, which outlives the records */
        r->data = c->map + pos;
        r->nbytes = nb;
        r->dtype = s->u.storage.dtype;
        pos += nb;
    }
    qsort(c->recs, c->n_recs, sizeof *c->recs, cmp_rec);
    for (size_t i = 1; i < c->n_recs; i++) {
        if (strcmp(c->recs[i].key, c->recs[i - 1].key) == 0) {
            st = xa_error_set(XA_STATUS_FORMAT, c->path, "unique storage keys", "corrupt file?",
                              "storage key '%.100s' appears twice", c->recs[i].key);
            goto done;
        }
    }
done:
    free(by_key);
    xa_pickle_free(q);
    return st;
}

xa_status xa_torch_open(xa_st_file **out, const char *path) {
    tb_ctx c = {.path = path};
    xa_pickle *pk = NULL;
    xa_status st = XA_STATUS_OK;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return xa_error_set(e == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL,
                            "cannot open: %s", strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return xa_error_set(XA_STATUS_IO, path, "a regular file", NULL, "cannot stat or not a file");
    }
    if (sb.st_size < 4) {
        close(fd);
        return xa_error_set(XA_STATUS_FORMAT, path, "a torch.save file (zip or pickle)",
                            "truncated file?", "file is %lld bytes long", (long long)sb.st_size);
    }
    c.size = (size_t)sb.st_size;
    void *m = mmap(NULL, c.size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "mmap of %zu bytes failed: %s", c.size,
                            strerror(errno));
    }
    c.map = m;
    c.copy_cap = c.size > (SIZE_MAX - (1u << 20)) / 4 ? SIZE_MAX : 4 * c.size + (1u << 20);
    switch (xa_torch_sniff(c.map, c.size)) {
    case XA_TORCH_FORMAT_ZIP: st = read_zip(&c, &pk); break;
    case XA_TORCH_FORMAT_LEGACY: st = read_legacy(&c, &pk); break;
    default:
        st = xa_error_set(XA_STATUS_FORMAT, path, "a torch.save file: a zip archive or a pickle",
                          memcmp(c.map, "\x1f\x8b", 2) == 0 || (c.size > 262 && memcmp(c.map + 257, "ustar", 5) == 0)
                              ? "a tar file of torch < 0.4? load and save it again with a recent torch"
                              : "not a PyTorch file?",
                          "the file starts with bytes %02x %02x %02x %02x", c.map[0], c.map[1],
                          c.map[2], c.map[3]);
    }
    if (!st) st = collect(&c, xa_pickle_root(pk));
    xa_pickle_free(pk);
    xa_zip_free(c.zip);
    free(c.recs);
    if (st) {
        munmap(c.map, c.size);
        for (size_t i = 0; i < c.n_t; i++) free((char *)c.t[i].name);
        free(c.t);
        for (size_t i = 0; i < c.n_owned; i++) free(c.owned[i]);
        free(c.owned);
        return st;
    }
    return xa_st_wrap(out, path, c.map, c.size, c.t, c.n_t, c.owned, c.n_owned);
}
