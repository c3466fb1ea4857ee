/* xadapt convert: write the safetensors form of a tensor file (a PyTorch .bin, or a safetensors
 * file to re-encode), or of every PyTorch weights file of a Hugging Face / AdapterHub directory.
 * The output is written atomically (io/file.h: a temporary file renamed into place), so a failed
 * or interrupted conversion never leaves a half-written file. Tensors keep their names, order and
 * (unless --dtype) their dtype; shared storages are written once per tensor. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/tensorfile.h"

/* The PyTorch weights files of the ecosystem's directories and their safetensors twins. */
static const char *const g_pairs[][2] = {
    {"pytorch_model.bin", "model.safetensors"},
    {"pytorch_adapter.bin", "adapter.safetensors"},
    {"pytorch_model_head.bin", "model_head.safetensors"},
    {"pytorch_model_adapter_fusion.bin", "model_adapter_fusion.safetensors"},
};
#define N_PAIRS (sizeof g_pairs / sizeof g_pairs[0])

static void print_help(void) {
    printf("usage: xadapt convert [OPTIONS] IN OUT\n"
           "       xadapt convert [OPTIONS] DIR\n"
           "\n"
           "Write the safetensors form of IN, a PyTorch .bin / .pt (torch.save of a state dict, zip or\n"
           "legacy format, read without Python; nothing in it is executed) or a safetensors file.\n"
           "With a directory, convert each of its PyTorch weights files to the safetensors twin\n"
           "that xadapt, transformers and AdapterHub look for first:\n");
    for (size_t i = 0; i < N_PAIRS; i++) printf("  %-34s -> %s\n", g_pairs[i][0], g_pairs[i][1]);
    printf("\n"
           "Tensors keep their names, order and dtype; the output is written atomically (a\n"
           "temporary file renamed into place) and carries the metadata {\"format\": \"pt\"}.\n"
           "\n"
           "options:\n"
           "  --dtype keep|f32|f16|bf16  store F32/F16/BF16 tensors in this dtype (default keep;\n"
           "                             other dtypes are always kept)\n"
           "  -f, --force                replace an existing output file\n"
           "  -h, --help                 show this help\n");
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int is_float(xa_dtype dt) {
    return dt == XA_DTYPE_F32 || dt == XA_DTYPE_F16 || dt == XA_DTYPE_BF16;
}

/* Convert one file; 0 on success, else the status. `to`: XA_DTYPE_COUNT keeps dtypes. */
static xa_status convert_file(const char *in, const char *out, xa_dtype to, size_t *n_out) {
    xa_st_file *f = NULL;
    xa_status st = xa_tensorfile_open(&f, in);
    if (st) return st;
    size_t n = xa_st_count(f);
    xa_st_entry *e = calloc(n ? n : 1, sizeof *e);
    float **bufs = calloc(n ? n : 1, sizeof *bufs);
    size_t n_meta = xa_st_metadata_count(f);
    xa_st_kv *meta = calloc(n_meta + 1, sizeof *meta);
    if (!e || !bufs || !meta) {
        st = xa_error_set(XA_STATUS_NOMEM, in, NULL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        e[i].name = t->name;
        e[i].n_dims = t->n_dims;
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
        e[i].dtype = t->dtype;
        e[i].raw = t->data;
        if (to != XA_DTYPE_COUNT && is_float(t->dtype) && t->dtype != to) {
            size_t bytes;
            if (!xa_size_mul((size_t)t->n_elems, sizeof(float), &bytes) ||
                !(bufs[i] = malloc(bytes ? bytes : 1))) {
                st = xa_error_set(XA_STATUS_NOMEM, in, NULL, NULL, "cannot convert tensor '%s'", t->name);
                goto done;
            }
            if ((st = xa_st_tensor_to_f32(t, bufs[i]))) goto done;
            e[i].dtype = to;
            e[i].f32 = bufs[i];
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n_meta; i++) {
        meta[m++] = (xa_st_kv){xa_st_metadata_key(f, i), xa_st_metadata_value(f, i)};
    }
    if (!xa_st_metadata_get(f, "format")) meta[m++] = (xa_st_kv){"format", "pt"};
    st = xa_st_write(out, e, n, meta, m);
    if (!st && n_out) *n_out = n;
done:
    for (size_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    free(meta);
    xa_st_close(f);
    return st;
}

int cli_cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"dtype", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    xa_dtype to = XA_DTYPE_COUNT;
    int force = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":fh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (!strcmp(optarg, "keep")) {
                to = XA_DTYPE_COUNT;
            } else if (!strcmp(optarg, "f32")) {
                to = XA_DTYPE_F32;
            } else if (!strcmp(optarg, "f16")) {
                to = XA_DTYPE_F16;
            } else if (!strcmp(optarg, "bf16")) {
                to = XA_DTYPE_BF16;
            } else {
                return cli_usage_error("convert", "--dtype is '%s'; expected keep, f32, f16 or bf16", optarg);
            }
            break;
        case 'f': force = 1; break;
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error("convert", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    int n_args = argc - optind;
    if (n_args < 1) return cli_usage_error("convert", "missing IN and OUT (or a DIR)");
    if (n_args > 2) return cli_usage_error("convert", "unexpected argument '%s'", argv[optind + 2]);
    const char *in = argv[optind];
    if (n_args == 1) {
        if (!xa_file_is_dir(in)) {
            return cli_usage_error("convert", "missing OUT (one argument must be a directory: '%s' is not)", in);
        }
        int done = 0;
        for (size_t i = 0; i < N_PAIRS; i++) {
            char src[XA_PATH_MAX], dst[XA_PATH_MAX];
            if (xa_path_join(src, sizeof src, in, g_pairs[i][0]) ||
                xa_path_join(dst, sizeof dst, in, g_pairs[i][1])) {
                return cli_fail();
            }
            if (!exists(src)) continue;
            if (exists(dst) && !force) {
                fprintf(stderr, "xadapt convert: %s exists, %s left as it is (--force replaces it)\n",
                        dst, src);
                done++;
                continue;
            }
            size_t n = 0;
            if (convert_file(src, dst, to, &n)) return cli_fail();
            printf("%s -> %s (%zu tensors)\n", src, dst, n);
            done++;
        }
        if (!done) {
            fprintf(stderr, "xadapt: error: %s: no PyTorch weights file (pytorch_model.bin, "
                            "pytorch_adapter.bin, pytorch_model_head.bin, "
                            "pytorch_model_adapter_fusion.bin)\n", in);
            return CLI_EXIT_RUNTIME;
        }
        return CLI_EXIT_OK;
    }
    const char *out = argv[optind + 1];
    if (xa_file_is_dir(out)) {
        return cli_usage_error("convert", "OUT '%s' is a directory; give the output file's path", out);
    }
    if (exists(out) && !force) {
        return cli_usage_error("convert", "OUT '%s' exists (--force replaces it)", out);
    }
    size_t n = 0;
    if (convert_file(in, out, to, &n)) return cli_fail();
    printf("%s -> %s (%zu tensors)\n", in, out, n);
    return CLI_EXIT_OK;
}
