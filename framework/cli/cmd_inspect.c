/* xadapt inspect: list what a tensor file holds (names, dtypes, shapes, metadata, parameter
 * count): safetensors, or a PyTorch .bin (io/tensorfile.h). Reads only the header and the index
 * (for a .bin: the pickle, and the CRC of each storage); tensor data stays unread in the mapping. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "io/safetensors.h"
#include "io/tensorfile.h"

static void print_help(void) {
    printf("usage: xadapt inspect [OPTIONS] FILE\n"
           "\n"
           "List the tensors of a safetensors file or a PyTorch .bin (torch.save of a state dict):\n"
           "name, dtype, shape and element count, in file order, then the __metadata__ entries and\n"
           "the total parameter count.\n"
           "\n"
           "options:\n"
           "  -f, --filter TEXT   only tensors whose name contains TEXT\n"
           "  -h, --help          show this help\n");
}

static void format_shape(const xa_st_tensor *t, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf + len, n - len, "[");
    for (int d = 0; d < t->n_dims && len < n; d++) {
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    }
    if (len < n) snprintf(buf + len, n - len, "]");
}

int cli_cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {
        {"filter", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *filter = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': filter = optarg; break;
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error("inspect", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("inspect", "missing FILE");
    if (optind + 1 < argc) return cli_usage_error("inspect", "one file at a time, got '%s' too", argv[optind + 1]);
    const char *path = argv[optind];

    xa_st_file *f = NULL;
    if (xa_tensorfile_open(&f, path) != XA_STATUS_OK) return cli_fail();

    size_t n = xa_st_count(f), name_w = 4, shown = 0;
    for (size_t i = 0; i < n; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        size_t w = strlen(t->name);
        if ((!filter || strstr(t->name, filter)) && w > name_w) name_w = w;
    }
    printf("%s: %zu tensors\n\n", path, n);
    printf("%-*s  %-5s  %-20s  %12s\n", (int)name_w, "name", "dtype", "shape", "elements");
    int64_t total = 0, shown_elems = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        total += t->n_elems;
        bytes += t->nbytes;
        if (filter && !strstr(t->name, filter)) continue;
        char shape[128];
        format_shape(t, shape, sizeof shape);
        printf("%-*s  %-5s  %-20s  %12lld\n", (int)name_w, t->name, xa_dtype_name(t->dtype), shape,
               (long long)t->n_elems);
        shown++;
        shown_elems += t->n_elems;
    }
    size_t n_meta = xa_st_metadata_count(f);
    if (n_meta) {
        printf("\nmetadata:\n");
        for (size_t i = 0; i < n_meta; i++) {
            printf("  %s: %s\n", xa_st_metadata_key(f, i), xa_st_metadata_value(f, i));
        }
    }
    if (filter) printf("\nshown: %zu tensors, %lld parameters\n", shown, (long long)shown_elems);
    printf("\ntotal: %zu tensors, %lld parameters, %.2f MiB of data\n", n, (long long)total,
           (double)bytes / 1048576.0);
    xa_st_close(f);
    return CLI_EXIT_OK;
}
