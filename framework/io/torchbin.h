/* io/torchbin: PyTorch .bin / .pt files (torch.save of a state dict) read without Python, as the
 * same read-only xa_st_file the safetensors reader gives (io/safetensors.h).
 *
 * Two containers:
 *  - zip (torch >= 1.6, the default): PREFIX/data.pkl (the pickled state dict), PREFIX/data/KEY
 *    (the raw little-endian bytes of each storage), PREFIX/version, optionally PREFIX/byteorder;
 *    every entry stored (io/zip.h), CRC-32 checked.
 *  - legacy (torch.save(..., _use_new_zipfile_serialization=False)): five pickles in a row (magic
 *    number, protocol 1001, system info, the state dict, the storage keys), then each storage as
 *    an int64 element count and its bytes.
 * The state dict is run by the restricted unpickler of io/pickle.h: it must be a dict (or
 * OrderedDict) of str -> tensor; nothing in the file is executed.
 *
 * Tensors keep the dict's order and their dtype (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL).
 * A contiguous tensor points into the read-only mapping (at its storage offset; shared storages
 * share bytes); a non-contiguous view (a transpose, a stride-0 expand) is copied in row-major
 * order into a buffer the file owns, at most 4x the file size (+1 MiB) in all; its `offset` is 0.
 */
#ifndef XA_IO_TORCHBIN_H
#define XA_IO_TORCHBIN_H

#include <stddef.h>

#include "core/core.h"
#include "io/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xa_torch_format {
    XA_TORCH_FORMAT_NONE,   /* not a torch file */
    XA_TORCH_FORMAT_ZIP,    /* "PK\3\4" / "PK\5\6" */
    XA_TORCH_FORMAT_LEGACY, /* PROTO 2, LONG1 of 10 bytes: the magic number pickle */
} xa_torch_format;

/* Which torch container the first n bytes of a file start with (n >= 4 to tell; fewer gives
 * NONE). */
xa_torch_format xa_torch_sniff(const void *head, size_t n);

/* Map and read the torch file at `path`. On success *out owns the mapping; close it with
 * xa_st_close. Errors name the file and the record (PREFIX/data.pkl at byte N, the tensor or the
 * storage key): NOT_FOUND / IO when it cannot be opened; FORMAT for a malformed archive or pickle,
 * a value that is not a tensor, a tensor outside its storage, a storage record of the wrong size,
 * a CRC mismatch; UNSUPPORTED for a compressed archive, a big-endian file, an opcode or global
 * outside what torch.save writes (io/pickle.h), more than 8 dimensions, copies over the limit. */
xa_status xa_torch_open(xa_st_file **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* XA_IO_TORCHBIN_H */
