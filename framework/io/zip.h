/* io/zip: a read-only index of the stored (uncompressed) entries of a zip archive held in memory,
 * enough for the archives torch.save writes (PyTorch's "zip" serialization, torch >= 1.6).
 *
 * The archive is validated through its central directory: end-of-central-directory record (and
 * the ZIP64 records when present), every central header, every local header (signature, method
 * and name must agree with the central one), and the bounds of every entry's data. Compressed or
 * encrypted entries and multi-disk archives are refused with UNSUPPORTED naming the entry.
 * CRC-32 is checked on demand (xa_zip_check_crc), once per entry.
 */
#ifndef XA_IO_ZIP_H
#define XA_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xa_zip_entry {
    const char *name;          /* NUL-terminated copy of the entry name (owned by the xa_zip) */
    const unsigned char *data; /* (size) bytes inside the caller's buffer */
    uint64_t size;             /* uncompressed = stored size */
    uint64_t offset;           /* byte offset of data in the archive */
    uint32_t crc32;            /* from the central directory */
    int crc_checked;           /* set by xa_zip_check_crc */
} xa_zip_entry;

typedef struct xa_zip xa_zip; /* opaque: the entries and a sorted name index */

/* Index the archive buf[0..n), which must outlive the xa_zip. `path` names the archive in
 * errors. Errors: FORMAT (a malformed archive: no end record, bad signatures, entries out of
 * bounds or overlapping the central directory, names that differ between the local and the
 * central header, duplicate names, NUL in a name); UNSUPPORTED (compressed, encrypted, multi-disk);
 * NOMEM. */
xa_status xa_zip_open(xa_zip **out, const void *buf, size_t n, const char *path);
/* Free the index (not the buffer). Accepts NULL. */
void xa_zip_free(xa_zip *z);

/* Entries in central-directory order: i in [0, xa_zip_count). */
size_t xa_zip_count(const xa_zip *z);
const xa_zip_entry *xa_zip_at(const xa_zip *z, size_t i);
/* Exact name look-up (binary search); NULL if absent. */
const xa_zip_entry *xa_zip_find(const xa_zip *z, const char *name);

/* Check the entry's data against its CRC-32 (once; later calls return the first result).
 * FORMAT naming the archive and the entry on a mismatch. */
xa_status xa_zip_check_crc(xa_zip *z, const xa_zip_entry *e);

/* CRC-32 (ISO-HDLC, the zip/zlib polynomial 0xEDB88320, reflected), updatable: start with 0. */
uint32_t xa_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* XA_IO_ZIP_H */
