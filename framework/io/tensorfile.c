/* io/tensorfile: format dispatch by content (io/tensorfile.h).
 *
 * A safetensors file starts with its u64 little-endian header length N <= 100,000,000. The torch
 * prefixes xa_torch_sniff looks for read as such an N: "\x80\x02\x8a\x0a" (legacy) is 177 MB
 * and "PK\5\6" 101 MB, both over the limit; only "PK\3\4" (67,324,752) is a legal length, and a
 * 67 MB JSON header is not a file anyone writes. So the first four bytes decide, and anything else
 * goes to the safetensors reader, whose errors say "not a safetensors file?".
 */
#include "io/tensorfile.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/file.h"
#include "io/torchbin.h"

xa_status xa_tensorfile_open(xa_st_file **out, const char *path) {
    unsigned char head[16];
    size_t n = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        n = fread(head, 1, sizeof head, fp);
        fclose(fp);
    }
    if (xa_torch_sniff(head, n) != XA_TORCH_FORMAT_NONE) return xa_torch_open(out, path);
    return xa_st_open(out, path);
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

xa_status xa_tensorfile_pick(char *path, size_t cap, const char *dir, const char *st_name,
                             const char *bin_name, const char *hint) {
    xa_status st = xa_path_join(path, cap, dir, st_name);
    if (st || exists(path)) return st;
    if (bin_name) {
        char bin[XA_PATH_MAX];
        if (!xa_path_join(bin, sizeof bin, dir, bin_name) && exists(bin)) {
            snprintf(path, cap, "%s", bin);
            return XA_STATUS_OK;
        }
        xa_error_clear();
        return xa_error_set(XA_STATUS_NOT_FOUND, path, NULL, hint, "missing file: neither %s nor %s in %s",
                            st_name, bin_name, dir);
    }
    return xa_error_set(XA_STATUS_NOT_FOUND, path, NULL, hint, "missing file %s", st_name);
}
