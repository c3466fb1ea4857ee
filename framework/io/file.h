/* io/file: whole-file reads with a size cap, and atomic writes (temporary file in the same
 * directory, flushed, fsync'ed and renamed over the target).
 *
 * Guarantee of the atomic writers: when they return an error, the target path is exactly what it
 * was before the call (absent, or the old file), and the temporary file PATH.tmp.PID is removed.
 * Every error goes through xa_error_set() and names the path and the errno text.
 */
#ifndef XA_IO_FILE_H
#define XA_IO_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read the whole file at `path` into a malloc'ed buffer that the caller frees with free().
 * The buffer holds *out_size bytes plus a terminating NUL (so text can be used as a C string).
 * max_bytes: files larger than this are rejected (XA_STATUS_FORMAT); 0 means no cap.
 * Returns XA_STATUS_IO if the file cannot be opened or read (NOT_FOUND if it does not exist),
 * XA_STATUS_NOMEM on allocation failure. On failure *out_data is NULL and *out_size 0.
 * out_size may be NULL. */
xa_status xa_file_read(char **out_data, size_t *out_size, const char *path, size_t max_bytes);

/* Write data[0..n) to `path` atomically (see the guarantee above). data may be NULL when n == 0. */
xa_status xa_file_write_atomic(const char *path, const void *data, size_t n);

/* Copy the file src to dst atomically (read whole, then xa_file_write_atomic). Errors: those of
 * xa_file_read (naming src) and xa_file_write_atomic (naming dst). */
xa_status xa_file_copy(const char *dst, const char *src);

/* Streaming atomic writer, for files too big to build in memory:
 *     xa_file_writer *w;
 *     if ((st = xa_file_writer_open(&w, path))) return st;
 *     ... xa_file_writer_write(w, buf, n) or fprintf(xa_file_writer_stream(w), ...) ...
 *     return xa_file_writer_commit(w);     // or xa_file_writer_abort(w) to give up
 * The writer is opaque and owned by the caller until commit or abort, which both free it. */
typedef struct xa_file_writer xa_file_writer;

/* Create PATH.tmp.PID (truncating a stale one) and return a writer on it. */
xa_status xa_file_writer_open(xa_file_writer **out, const char *path);

/* The temporary file's stream, for fprintf/fwrite. Errors on it are caught at commit (ferror). */
FILE *xa_file_writer_stream(xa_file_writer *w);

/* Append n bytes. On a short write the error is recorded, returned, and commit will fail too. */
xa_status xa_file_writer_write(xa_file_writer *w, const void *data, size_t n);

/* The target path the writer will replace (owned by the writer). */
const char *xa_file_writer_path(const xa_file_writer *w);

/* fflush + fsync + close the temporary file, rename it over the target, and fsync the directory
 * (best effort). Frees w in every case; on failure the temporary file is removed and the target
 * is untouched. */
xa_status xa_file_writer_commit(xa_file_writer *w);

/* Close and remove the temporary file, free w. The target is untouched. Accepts NULL. */
void xa_file_writer_abort(xa_file_writer *w);

/* Paths and directories. */
#define XA_PATH_MAX 4096

/* buf = dir + "/" + name; USAGE naming dir when it does not fit in cap bytes. */
xa_status xa_path_join(char *buf, size_t cap, const char *dir, const char *name);
/* Create a directory and its missing parents (mkdir -p); IO naming the part that fails. */
xa_status xa_file_mkdirs(const char *dir);
/* 1 if path exists and is a directory. */
int xa_file_is_dir(const char *path);
/* Remove path and, for a directory, everything under it (files, subdirectories, left-over
 * PATH.tmp.PID temporaries; symbolic links are removed, not followed). A missing path is OK.
 * IO naming the entry that cannot be removed. */
xa_status xa_file_remove_tree(const char *path);
/* The cheap identity of a file: "size=N mtime=S.NNNNNNNNN" into buf (NOT_FOUND / IO naming the
 * path when it cannot be stat'ed). Changes whenever the file is rewritten. */
xa_status xa_file_stat_id(const char *path, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* XA_IO_FILE_H */
