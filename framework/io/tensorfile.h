/* io/tensorfile: open a tensor file of either ecosystem format by its content, and pick the weights
 * file of a directory the way Hugging Face does (safetensors first, then the PyTorch .bin).
 *
 *   xa_st_file *f;
 *   char path[XA_PATH_MAX];
 *   if (!xa_tensorfile_pick(path, sizeof path, dir, "adapter.safetensors", "pytorch_adapter.bin"))
 *       st = xa_tensorfile_open(&f, path);      // then xa_st_find / xa_st_read_f32 as usual
 */
#ifndef XA_IO_TENSORFILE_H
#define XA_IO_TENSORFILE_H

#include <stddef.h>

#include "core/core.h"
#include "io/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Open `path` as safetensors (xa_st_open) or, when its first bytes are a zip archive or a pickle,
 * as a torch.save file (xa_torch_open); the result is the same read-only xa_st_file. Errors are
 * those of the reader chosen. */
xa_status xa_tensorfile_open(xa_st_file **out, const char *path);

/* path = DIR/st_name when that file exists, else DIR/bin_name when that exists (bin_name may be
 * NULL). NOT_FOUND naming both files otherwise, with `hint` (may be NULL); USAGE when the path does
 * not fit in cap bytes. */
xa_status xa_tensorfile_pick(char *path, size_t cap, const char *dir, const char *st_name,
                             const char *bin_name, const char *hint);

#ifdef __cplusplus
}
#endif
#endif /* XA_IO_TENSORFILE_H */
