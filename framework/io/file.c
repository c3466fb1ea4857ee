/* io/file: whole-file reads with a size cap, and atomic file replacement.
 *
 * Implements: xa_file_read (open + fstat + read loop, NUL-terminated copy) and the atomic writers
 * (xa_file_write_atomic and the streaming xa_file_writer). The atomic protocol is the usual POSIX
 * one: write PATH.tmp.PID in the target's directory (same file system, so rename(2) is atomic),
 * fflush, fsync, close, rename over PATH, then fsync the directory so the rename itself is durable.
 * A crash at any point leaves either the old file or the new one at PATH, never a mix.
 *
 * Does not: lock against concurrent writers of the same path from one process (they would share
 * the temporary name), keep the old file's permissions (the new file gets 0666 & ~umask), or
 * handle Windows.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct xa_file_writer {
    FILE *fp;     /* the temporary file, open for writing; NULL once closed */
    char *path;   /* the target (owned) */
    char *tmp;    /* PATH.tmp.PID (owned) */
    int err;      /* errno of the first failed write, 0 if none */
};

/* ---- reading --------------------------------------------------------------------------------- */

xa_status xa_file_read(char **out_data, size_t *out_size, const char *path, size_t max_bytes) {
    xa_status st = XA_STATUS_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = -1;

    *out_data = NULL;
    if (out_size) *out_size = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return xa_error_set(e == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL,
                            "cannot open for reading: %s", strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = xa_error_set(XA_STATUS_IO, path, "a regular file", NULL, "is a directory");
        goto fail;
    }
    /* Regular files: start with their size; pipes and /proc files grow the buffer as needed. */
    cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096;
    if (max_bytes && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > (uint64_t)max_bytes) {
        st = xa_error_set(XA_STATUS_FORMAT, path, NULL, NULL,
                          "file is %lld bytes, over the limit of %zu bytes",
                          (long long)sb.st_size, max_bytes);
        goto fail;
    }
    buf = malloc(cap);
    if (!buf) {
        st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate %zu bytes", cap);
        goto fail;
    }
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap;
            if (!xa_size_mul(cap, 2, &ncap)) {
                st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "file too large");
                goto fail;
            }
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate %zu bytes",
                                  ncap);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0) {
            if (errno == EINTR) continue;
            st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "read failed: %s", strerror(errno));
            goto fail;
        }
        if (got == 0) break;
        len += (size_t)got;
        if (max_bytes && len > max_bytes) {
            st = xa_error_set(XA_STATUS_FORMAT, path, NULL, NULL,
                              "file is over the limit of %zu bytes", max_bytes);
            goto fail;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out_data = buf;
    if (out_size) *out_size = len;
    return XA_STATUS_OK;

fail:
    free(buf);
    if (fd >= 0) close(fd);
    return st;
}

/* ---- atomic writing ---------------------------------------------------------------------------- */

/* fsync the directory holding `path`, so that a completed rename survives a crash. Best effort:
 * some file systems refuse fsync on directories, and the rename has happened either way. */
static void fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static void writer_free(xa_file_writer *w) {
    if (!w) return;
    free(w->path);
    free(w->tmp);
    free(w);
}

xa_status xa_file_writer_open(xa_file_writer **out, const char *path) {
    xa_status st = XA_STATUS_OK;
    xa_file_writer *w = NULL;
    int fd = -1;

    *out = NULL;
    if (!path || !path[0]) {
        return xa_error_set(XA_STATUS_USAGE, "xa_file_writer_open", "a non-empty path", NULL,
                            "empty path");
    }
    w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 32;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
        st = xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "cannot allocate a file writer");
        goto fail;
    }
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = xa_error_set(XA_STATUS_IO, w->tmp, NULL,
                          errno == ENOENT ? "does the directory exist?" : NULL,
                          "cannot create temporary file for '%s': %s", path, strerror(errno));
        goto fail;
    }
    w->fp = fdopen(fd, "wb");
    if (!w->fp) {
        st = xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "fdopen failed: %s", strerror(errno));
        close(fd);
        unlink(w->tmp);
        goto fail;
    }
    *out = w;
    return XA_STATUS_OK;

fail:
    writer_free(w);
    return st;
}

FILE *xa_file_writer_stream(xa_file_writer *w) {
    XA_ASSERT(w && w->fp);
    return w->fp;
}

const char *xa_file_writer_path(const xa_file_writer *w) {
    XA_ASSERT(w);
    return w->path;
}

xa_status xa_file_writer_write(xa_file_writer *w, const void *data, size_t n) {
    XA_ASSERT(w && w->fp);
    if (w->err) {
        return xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "write failed earlier: %s",
                            strerror(w->err));
    }
    if (n == 0) return XA_STATUS_OK;
    errno = 0;
    if (fwrite(data, 1, n, w->fp) != n) {
        w->err = errno ? errno : EIO;
        return xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "write of %zu bytes failed: %s", n,
                            strerror(w->err));
    }
    return XA_STATUS_OK;
}

void xa_file_writer_abort(xa_file_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    unlink(w->tmp);
    writer_free(w);
}

xa_status xa_file_writer_commit(xa_file_writer *w) {
    xa_status st = XA_STATUS_OK;
    FILE *fp = NULL;
    XA_ASSERT(w && w->fp);
    if (w->err) {
        st = xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "write failed: %s", strerror(w->err));
        goto fail;
    }
    if (fflush(w->fp) != 0 || ferror(w->fp)) {
        st = xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "write failed: %s",
                          strerror(errno ? errno : EIO));
        goto fail;
    }
    if (fsync(fileno(w->fp)) != 0) {
        st = xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "fsync failed: %s", strerror(errno));
        goto fail;
    }
    fp = w->fp;
    w->fp = NULL;
    if (fclose(fp) != 0) {
        st = xa_error_set(XA_STATUS_IO, w->tmp, NULL, NULL, "close failed: %s", strerror(errno));
        goto fail;
    }
    if (rename(w->tmp, w->path) != 0) {
        st = xa_error_set(XA_STATUS_IO, w->path, NULL, NULL, "cannot rename '%s' over it: %s",
                          w->tmp, strerror(errno));
        goto fail;
    }
    fsync_parent_dir(w->path);
    writer_free(w);
    return XA_STATUS_OK;

fail:
    xa_file_writer_abort(w);
    return st;
}

xa_status xa_file_write_atomic(const char *path, const void *data, size_t n) {
    xa_file_writer *w = NULL;
    xa_status st = xa_file_writer_open(&w, path);
    if (st) return st;
    if ((st = xa_file_writer_write(w, data, n))) {
        xa_file_writer_abort(w);
        return st;
    }
    return xa_file_writer_commit(w);
}

xa_status xa_file_copy(const char *dst, const char *src) {
    char *data = NULL;
    size_t n = 0;
    xa_status st = xa_file_read(&data, &n, src, 0);
    if (!st) st = xa_file_write_atomic(dst, data, n);
    free(data);
    return st;
}

/* ---- paths and directories ---- */

xa_status xa_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        return xa_error_set(XA_STATUS_USAGE, dir, "a path shorter than XA_PATH_MAX", NULL,
                            "path to '%s' is too long", name);
    }
    return XA_STATUS_OK;
}

xa_status xa_file_mkdirs(const char *dir) {
    char tmp[XA_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) {
        return xa_error_set(XA_STATUS_USAGE, "xa_file_mkdirs", "a non-empty path shorter than XA_PATH_MAX",
                            NULL, "bad directory path '%s'", dir);
    }
    memcpy(tmp, dir, n + 1);
    for (char *s = tmp + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot create directory: %s", strerror(errno));
        }
        if (c == '\0') break;
        *s = c;
    }
    if (!xa_file_is_dir(dir)) {
        return xa_error_set(XA_STATUS_IO, dir, "a directory", NULL, "exists but is not a directory");
    }
    return XA_STATUS_OK;
}

int xa_file_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* nftw callback of xa_file_remove_tree: children first (FTW_DEPTH), links not followed. */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT) {
        xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot remove: %s", strerror(errno));
        return 1;
    }
    return 0;
}

xa_status xa_file_remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT) return XA_STATUS_OK;
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot stat: %s", strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot remove: %s", strerror(errno));
        return XA_STATUS_OK;
    }
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc > 0) return XA_STATUS_IO; /* the callback set the message */
    if (rc < 0)
        return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot remove the directory tree: %s",
                            strerror(errno));
    return XA_STATUS_OK;
}

xa_status xa_file_stat_id(const char *path, char *buf, size_t n) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL,
                            "cannot stat: %s", strerror(errno));
    snprintf(buf, n, "size=%" PRId64 " mtime=%" PRId64 ".%09ld", (int64_t)sb.st_size,
             (int64_t)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
    return XA_STATUS_OK;
}
