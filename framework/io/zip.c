/* io/zip: the stored entries of an in-memory zip archive (PKWARE APPNOTE 6.3.x, sections 4.3
 * "general format", 4.4 "field definitions", 4.5 "extensible data fields": ZIP64 0x0001).
 *
 * What torch.save writes (PyTorch's miniz-based writer, checked on files of torch 1.13): every
 * entry stored (method 0) with general-purpose flag bit 3 (sizes and CRC in a data descriptor
 * after the data, zeros in the local header), data aligned to 64 bytes by a "FB" padding extra
 * field in the local header, a ZIP64 end record and locator always, ZIP64 extra fields in the
 * central headers when a size or offset does not fit in 32 bits. So sizes come from the central
 * directory only, and the local header is read for its name and extra lengths (where the data
 * starts) and checked for its signature, method and name.
 *
 * Does not: decompress (deflate and every other method are UNSUPPORTED), decrypt, span disks,
 * read archive comments or extra fields other than ZIP64. The buffer is only read.
 */
#include "io/zip.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

struct xa_zip {
    char *path;
    const unsigned char *buf;
    size_t n;
    size_t count;
    xa_zip_entry *e;       /* (count) central-directory order; names owned */
    xa_zip_entry **by_name; /* (count) sorted by name */
    int *crc_ok;           /* (count) result of the first CRC check: 1 ok, 0 bad */
};

static uint16_t rd16(const unsigned char *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const unsigned char *p) {
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* ---- CRC-32 ------------------------------------------------------------------------------------- */

static uint32_t g_crc[8][256];
static int g_crc_ready;

/* Slice-by-8 tables: g_crc[k][b] is the CRC of byte b followed by k zero bytes. Filling them twice
 * from two threads writes the same values, so no lock is needed for correctness. */
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        g_crc[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int k = 1; k < 8; k++) g_crc[k][i] = (g_crc[k - 1][i] >> 8) ^ g_crc[0][g_crc[k - 1][i] & 0xFFu];
    }
    g_crc_ready = 1;
}

uint32_t xa_crc32(uint32_t crc, const void *data, size_t n) {
    if (!g_crc_ready) crc_init();
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (n >= 8) { /* hot loop: 8 bytes per step */
        uint32_t lo = c ^ rd32(p), hi = rd32(p + 4);
        c = g_crc[7][lo & 0xFF] ^ g_crc[6][(lo >> 8) & 0xFF] ^ g_crc[5][(lo >> 16) & 0xFF] ^
            g_crc[4][lo >> 24] ^ g_crc[3][hi & 0xFF] ^ g_crc[2][(hi >> 8) & 0xFF] ^
            g_crc[1][(hi >> 16) & 0xFF] ^ g_crc[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ g_crc[0][(c ^ *p++) & 0xFFu];
    return ~c;
}

/* ---- the index ------------------------------------------------------------------------------------ */

void xa_zip_free(xa_zip *z) {
    if (!z) return;
    for (size_t i = 0; z->e && i < z->count; i++) free((char *)z->e[i].name);
    free(z->e);
    free(z->by_name);
    free(z->crc_ok);
    free(z->path);
    free(z);
}

static int cmp_name(const void *a, const void *b) {
    const xa_zip_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Find the end-of-central-directory record: the last "PK\5\6" whose comment ends the file
 * (searched backwards over at most 22 + 65535 bytes). Returns its offset or SIZE_MAX. */
static size_t find_eocd(const unsigned char *b, size_t n) {
    if (n < 22) return SIZE_MAX;
    size_t lo = n - 22 > 65535 ? n - 22 - 65535 : 0;
    for (size_t i = n - 22 + 1; i-- > lo;) {
        if (rd32(b + i) == SIG_EOCD && i + 22 + rd16(b + i + 20) == n) return i;
    }
    return SIZE_MAX;
}

/* The ZIP64 extra field (0x0001) of a central header: replace each 32-bit field that is all
 * ones, in the APPNOTE order (size, compressed size, local header offset). */
static xa_status zip64_extra(const xa_zip *z, const char *name, const unsigned char *x, size_t xlen,
                             uint64_t *usize, uint64_t *csize, uint64_t *lho) {
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = rd16(x + i), len = rd16(x + i + 2);
        if (i + 4 + len > xlen) break;
        if (id == 0x0001) {
            const unsigned char *p = x + i + 4;
            size_t left = len;
            uint64_t *fields[3] = {usize, csize, lho};
            for (int k = 0; k < 3; k++) {
                if (*fields[k] != 0xFFFFFFFFu) continue;
                if (left < 8) {
                    return xa_error_set(XA_STATUS_FORMAT, z->path, "a ZIP64 extra field with 8 bytes per all-ones field",
                                        "truncated or corrupt archive?",
                                        "entry '%s': ZIP64 extra field too short (%u bytes)", name, len);
                }
                *fields[k] = rd64(p);
                p += 8;
                left -= 8;
            }
            return XA_STATUS_OK;
        }
        i += 4 + (size_t)len;
    }
    if (*usize == 0xFFFFFFFFu || *csize == 0xFFFFFFFFu || *lho == 0xFFFFFFFFu) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a ZIP64 extra field for 0xFFFFFFFF sizes",
                            "truncated or corrupt archive?", "entry '%s' has no ZIP64 extra field", name);
    }
    return XA_STATUS_OK;
}

/* Read the end records: entry count, central directory offset and size. */
static xa_status read_end(const xa_zip *z, uint64_t *count, uint64_t *cd_off, uint64_t *cd_size) {
    const unsigned char *b = z->buf;
    size_t eocd = find_eocd(b, z->n);
    if (eocd == SIZE_MAX) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a zip end-of-central-directory record",
                            "truncated file? (a torch.save zip ends with it)",
                            "no end-of-central-directory record in %zu bytes", z->n);
    }
    uint16_t disk = rd16(b + eocd + 4), cd_disk = rd16(b + eocd + 6);
    uint64_t n_here = rd16(b + eocd + 8);
    *count = rd16(b + eocd + 10);
    *cd_size = rd32(b + eocd + 12);
    *cd_off = rd32(b + eocd + 16);
    if (eocd >= 20 && rd32(b + eocd - 20) == SIG_LOC64) {
        uint64_t off = rd64(b + eocd - 20 + 8);
        if (off > z->n || z->n - off < 56 || off > eocd - 20 || rd32(b + off) != SIG_EOCD64) {
            return xa_error_set(XA_STATUS_FORMAT, z->path, "a ZIP64 end record where its locator points",
                                "truncated or corrupt archive?",
                                "ZIP64 locator points to byte %" PRIu64 ", which holds no ZIP64 end record", off);
        }
        const unsigned char *r = b + off;
        disk = rd32(r + 16) ? 1 : 0;
        cd_disk = rd32(r + 20) ? 1 : 0;
        n_here = rd64(r + 24);
        *count = rd64(r + 32);
        *cd_size = rd64(r + 40);
        *cd_off = rd64(r + 48);
    }
    if (disk != 0 || cd_disk != 0 || n_here != *count) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, z->path, "a single-file archive", NULL,
                            "multi-disk zip archives are not supported");
    }
    if (*cd_off > z->n || *cd_size > z->n - *cd_off || *cd_off + *cd_size > eocd) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a central directory inside the file",
                            "truncated file?",
                            "central directory [%" PRIu64 ", +%" PRIu64 ") is out of bounds (file: %zu bytes)",
                            *cd_off, *cd_size, z->n);
    }
    if (*count > *cd_size / 46) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "at least 46 bytes of central directory per entry",
                            "corrupt archive?",
                            "%" PRIu64 " entries do not fit in a central directory of %" PRIu64 " bytes",
                            *count, *cd_size);
    }
    return XA_STATUS_OK;
}

/* Parse central header at *pos into e; check its local header. */
static xa_status read_entry(xa_zip *z, size_t *pos, size_t cd_end, uint64_t cd_off, xa_zip_entry *e) {
    const unsigned char *b = z->buf;
    size_t p = *pos;
    if (cd_end - p < 46 || rd32(b + p) != SIG_CENTRAL) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a central directory header (PK\\1\\2)",
                            "corrupt archive?", "no central header at byte %zu", p);
    }
    uint16_t flags = rd16(b + p + 8), method = rd16(b + p + 10);
    uint32_t crc = rd32(b + p + 16);
    uint64_t csize = rd32(b + p + 20), usize = rd32(b + p + 24);
    size_t nlen = rd16(b + p + 28), xlen = rd16(b + p + 30), clen = rd16(b + p + 32);
    uint16_t disk = rd16(b + p + 34);
    uint64_t lho = rd32(b + p + 42);
    if (cd_end - p - 46 < nlen + xlen + clen) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a central header inside the central directory",
                            "corrupt archive?", "central header at byte %zu runs past the directory", p);
    }
    const unsigned char *nm = b + p + 46;
    if (memchr(nm, 0, nlen)) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "entry names without NUL bytes", NULL,
                            "central header at byte %zu: the name holds a NUL byte", p);
    }
    char *name = malloc(nlen + 1);
    if (!name) return xa_error_set(XA_STATUS_NOMEM, z->path, NULL, NULL, "out of memory");
    memcpy(name, nm, nlen);
    name[nlen] = '\0';
    e->name = name;
    xa_status st = zip64_extra(z, name, nm + nlen, xlen, &usize, &csize, &lho);
    if (st) return st;
    if (flags & 0x0041u) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, z->path, "unencrypted entries", NULL,
                            "entry '%s' is encrypted", name);
    }
    if (method != 0) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, z->path, "stored (uncompressed) entries, as torch.save writes",
                            "was the archive re-zipped with compression? save it again with torch.save",
                            "entry '%s' is compressed (method %u%s)", name, method,
                            method == 8 ? ", deflate" : "");
    }
    if (csize != usize) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "equal stored and original sizes for a stored entry",
                            "corrupt archive?",
                            "entry '%s': stored size %" PRIu64 " but original size %" PRIu64, name,
                            csize, usize);
    }
    if (disk != 0 && disk != 0xFFFFu) {
        return xa_error_set(XA_STATUS_UNSUPPORTED, z->path, "a single-file archive", NULL,
                            "entry '%s' is on disk %u", name, disk);
    }
    /* the local header */
    if (lho > cd_off || cd_off - lho < 30 || rd32(b + lho) != SIG_LOCAL) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a local header (PK\\3\\4) before the central directory",
                            "truncated or corrupt archive?",
                            "entry '%s': no local header at byte %" PRIu64, name, lho);
    }
    const unsigned char *l = b + lho;
    size_t lnlen = rd16(l + 26), lxlen = rd16(l + 28);
    uint64_t data = lho + 30 + lnlen + lxlen;
    if (rd16(l + 8) != method || lnlen != nlen || data > cd_off || memcmp(l + 30, nm, nlen) != 0) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "a local header that agrees with the central one",
                            "corrupt archive?",
                            "entry '%s': the local header at byte %" PRIu64 " names another entry or method",
                            name, lho);
    }
    if (usize > cd_off - data) {
        return xa_error_set(XA_STATUS_FORMAT, z->path, "entry data before the central directory",
                            "truncated file?",
                            "entry '%s': %" PRIu64 " bytes at byte %" PRIu64
                            " run past the central directory at %" PRIu64,
                            name, usize, data, cd_off);
    }
    e->data = b + data;
    e->size = usize;
    e->offset = data;
    e->crc32 = crc;
    *pos = p + 46 + nlen + xlen + clen;
    return XA_STATUS_OK;
}

xa_status xa_zip_open(xa_zip **out, const void *buf, size_t n, const char *path) {
    *out = NULL;
    xa_zip *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(path ? path : "(zip)"))) {
        free(z);
        return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
    }
    z->buf = buf;
    z->n = n;
    uint64_t count = 0, cd_off = 0, cd_size = 0;
    xa_status st = read_end(z, &count, &cd_off, &cd_size);
    if (st) goto fail;
    z->e = calloc(count ? (size_t)count : 1, sizeof *z->e);
    z->by_name = calloc(count ? (size_t)count : 1, sizeof *z->by_name);
    z->crc_ok = calloc(count ? (size_t)count : 1, sizeof *z->crc_ok);
    if (!z->e || !z->by_name || !z->crc_ok) {
        st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot index %" PRIu64 " entries", count);
        goto fail;
    }
    size_t pos = (size_t)cd_off, cd_end = (size_t)(cd_off + cd_size);
    for (uint64_t i = 0; i < count; i++) {
        z->count++;
        if ((st = read_entry(z, &pos, cd_end, cd_off, &z->e[i]))) goto fail;
    }
    for (size_t i = 0; i < z->count; i++) z->by_name[i] = &z->e[i];
    qsort(z->by_name, z->count, sizeof *z->by_name, cmp_name);
    for (size_t i = 1; i < z->count; i++) {
        if (strcmp(z->by_name[i]->name, z->by_name[i - 1]->name) == 0) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "unique entry names", "corrupt archive?",
                              "entry '%s' appears twice", z->by_name[i]->name);
            goto fail;
        }
    }
    *out = z;
    return XA_STATUS_OK;
fail:
    xa_zip_free(z);
    return st;
}

size_t xa_zip_count(const xa_zip *z) {
    return z->count;
}

const xa_zip_entry *xa_zip_at(const xa_zip *z, size_t i) {
    return i < z->count ? &z->e[i] : NULL;
}

const xa_zip_entry *xa_zip_find(const xa_zip *z, const char *name) {
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, z->by_name[mid]->name);
        if (c == 0) return z->by_name[mid];
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

xa_status xa_zip_check_crc(xa_zip *z, const xa_zip_entry *e) {
    size_t i = (size_t)(e - z->e);
    XA_ASSERT(i < z->count);
    xa_zip_entry *m = &z->e[i];
    if (!m->crc_checked) {
        m->crc_checked = 1;
        z->crc_ok[i] = xa_crc32(0, m->data, (size_t)m->size) == m->crc32;
    }
    if (z->crc_ok[i]) return XA_STATUS_OK;
    return xa_error_set(XA_STATUS_FORMAT, z->path, "entry data that matches its CRC-32",
                        "the file is corrupt or was truncated and patched; download it again",
                        "entry '%s' (%" PRIu64 " bytes at byte %" PRIu64 ") fails its CRC-32 check",
                        m->name, m->size, m->offset);
}
