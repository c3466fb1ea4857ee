/* xadapt bench: tokens/s, achieved GFLOP/s and peak memory of training and inference steps, per
 * model size, mode and batch size, each row's GFLOP/s also as a fraction of the register-only peak
 * of the arithmetic path its products used (tensor/peak.c; `--peak` prints only those peaks). Each
 * row runs in a child process, so the peak resident memory reported is that row's own; the parent
 * process never runs a kernel, so OpenMP's thread pool is never forked. tests/bench/compare.py
 * runs the PyTorch reference beside it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tensor/tensor.h"
#include "train/train.h"

static void print_help(void) {
    printf("usage: xadapt bench [OPTIONS]\n"
           "\n"
           "Measure steady-state training and inference throughput on synthetic batches.\n"
           "Modes: mlm-full (MLM pretraining, all parameters train), mlm-frozen (base frozen, the\n"
           "MLM head's transform trains), cls-frozen (base frozen, a classification head trains),\n"
           "infer (forward only). Adapter modes (MAD-X, base and MLM head frozen): lang-adapter\n"
           "(MLM, a seq_bn_inv language adapter with reduction factor 2 trains), task-adapter\n"
           "(classification on Stack(lang, task): a seq_bn rf 16 task adapter and the head train),\n"
           "infer-stack (forward of Stack(lang, task) and the head). Every row runs in its own\n"
           "process; peak memory is its max RSS.\n"
           "\n"
           "options:\n"
           "  -m, --models LIST     tiny,small,base,xlmr-base (default tiny,small; xlmr-base: XLM-R\n"
           "                        base, L12 d768 with its 250002-piece vocabulary)\n"
           "  -M, --modes LIST      modes to run (default mlm-full,mlm-frozen,cls-frozen,infer)\n"
           "  -b, --batch LIST      batch sizes (default 8,32)\n"
           "  -t, --seq N           sequence length (default 128)\n"
           "  -n, --steps N         timed steps per row, at least (default 5)\n"
           "      --min-seconds F   time each row for at least F seconds (default 2)\n"
           "  -j, --threads N       threads (default: all cores)\n"
           "  -p, --precision LIST  fp32,bf16: products in fp32 and/or bf16 with fp32 accumulation\n"
           "                        (AVX512-BF16; each row runs in both, back to back; default fp32)\n"
           "      --gradient-checkpointing\n"
           "                        training rows recompute each layer's forward in backward,\n"
           "                        keeping only the layer inputs (less memory, one more forward)\n"
           "      --json            one JSON object per row instead of the table\n"
           "      --peak            only measure the register-only peaks (fp32 FMA, AVX512-BF16\n"
           "                        VDPBF16PS, AMX TDPBF16PS) on 1 thread and on all threads (-j),\n"
           "                        and say why a path this CPU lacks is skipped\n"
           "  -h, --help            show this help\n");
}

/* Split a comma list in place into at most cap items. */
static int split_list(char *s, char **items, int cap) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < cap; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

/* Run fn(ctx, out) in a child process and copy its `size`-byte result back through a pipe. Every
 * row runs this way, so each reports its own peak RSS, and the parent never runs a kernel: OpenMP's
 * thread pool never exists in a process that forks (libgomp is not fork-safe once it does). */
typedef int (*child_fn)(void *ctx, void *out);

static xa_status run_in_child(child_fn fn, void *ctx, void *out, size_t size, const char *what) {
    int fd[2];
    if (pipe(fd) != 0) return xa_error_set(XA_STATUS_RUNTIME, "xadapt bench", NULL, NULL, "pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return xa_error_set(XA_STATUS_RUNTIME, "xadapt bench", NULL, NULL, "fork failed");
    if (pid == 0) {
        close(fd[0]);
        int ok = fn(ctx, out);
        xa_gemm_trace_report(stderr); /* XA_GEMM_TRACE: _exit runs no atexit handler */
        _exit(ok && write(fd[1], out, size) == (ssize_t)size ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], out, size);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)size || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return xa_error_set(XA_STATUS_RUNTIME, "xadapt bench", NULL, "is there enough memory for this row?",
                            "%s failed", what);
    }
    return XA_STATUS_OK;
}

typedef struct row_job {
    xa_bench_mode mode;
    const xa_encoder_config *cfg;
    int B, T, steps;
    double min_s;
} row_job;

static int row_child(void *ctx, void *out) {
    const row_job *j = ctx;
    xa_bench_result *r = out;
    if (xa_bench_run(j->mode, j->cfg, j->B, j->T, 2, j->steps, j->min_s, 1234, r) != XA_STATUS_OK) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "xadapt bench: %s\n", buf);
        return 0;
    }
    r->peak_rss = xa_peak_rss_bytes();
    return 1;
}

static int peak_child(void *ctx, void *out) {
    *(double *)out = xa_bench_sgemm_peak(*(const double *)ctx);
    return 1;
}

static xa_status run_row(xa_bench_mode mode, const xa_encoder_config *cfg, int B, int T, int steps,
                         double min_s, xa_bench_result *r) {
    row_job j = {mode, cfg, B, T, steps, min_s};
    char what[96];
    snprintf(what, sizeof what, "the %s row (batch %d)", xa_bench_mode_name(mode), B);
    return run_in_child(row_child, &j, r, sizeof *r, what);
}

static xa_status run_peak(double min_s, double *peak) {
    return run_in_child(peak_child, &min_s, peak, sizeof *peak, "the sgemm peak run");
}

/* Register-only peaks of every path at 1 and at `threads` threads (0 where skipped). */
typedef struct peak_set {
    int threads[2];
    double seconds;
    double gflops[XA_PEAK_N_PATHS][2];
} peak_set;

static int reg_peak_child(void *ctx, void *out) {
    peak_set *p = out;
    *p = *(const peak_set *)ctx;
    for (int q = 0; q < XA_PEAK_N_PATHS; q++) {
        for (int t = 0; t < 2; t++) {
            p->gflops[q][t] = t == 1 && p->threads[1] == p->threads[0]
                                  ? p->gflops[q][0]
                                  : xa_peak_gflops((xa_peak_path)q, p->threads[t], p->seconds);
        }
    }
    return 1;
}

static xa_status run_reg_peaks(int threads, double seconds, peak_set *out) {
    peak_set in = {{1, threads}, seconds, {{0}}};
    return run_in_child(reg_peak_child, &in, out, sizeof *out, "the register-only peak run");
}

/* The peak of `path` at `threads` threads from the set (0 when not measured). */
static double peak_of(const peak_set *ps, xa_peak_path path, int threads) {
    if (threads == ps->threads[1]) return ps->gflops[path][1];
    return threads == ps->threads[0] ? ps->gflops[path][0] : 0.0;
}

static void print_reg_peaks(FILE *out, const peak_set *ps, int json) {
    for (int q = 0; q < XA_PEAK_N_PATHS; q++) {
        const char *why = xa_peak_unavailable((xa_peak_path)q);
        const char *name = xa_peak_path_name((xa_peak_path)q), *insn = xa_peak_path_instruction((xa_peak_path)q);
        if (json) {
            if (why) {
                fprintf(out, "{\"impl\": \"xadapt\", \"peak\": \"%s\", \"instruction\": \"%s\", \"skipped\": \"%s\"}\n", name,
                        insn, why);
                continue;
            }
            for (int t = 0; t < 2; t++) {
                if (t == 1 && ps->threads[1] == ps->threads[0]) break;
                fprintf(out, "{\"impl\": \"xadapt\", \"peak\": \"%s\", \"instruction\": \"%s\", \"threads\": %d, \"gflops\": %.2f}\n",
                        name, insn, ps->threads[t], ps->gflops[q][t]);
            }
        } else if (why) {
            fprintf(out, "register-only peak %s (%s): skipped: %s\n", name, insn, why);
        } else if (ps->threads[1] == ps->threads[0]) {
            fprintf(out, "register-only peak %s (%s): %.1f GFLOP/s with 1 thread\n", name, insn, ps->gflops[q][0]);
        } else {
            fprintf(out, "register-only peak %s (%s): %.1f GFLOP/s with 1 thread, %.1f with %d threads\n", name, insn,
                    ps->gflops[q][0], ps->gflops[q][1], ps->threads[1]);
        }
    }
}

int cli_cmd_bench(int argc, char **argv) {
    enum { OPT_MIN = 256, OPT_JSON, OPT_PEAK, OPT_GC };
    static const struct option opts[] = {
        {"models", required_argument, NULL, 'm'}, {"modes", required_argument, NULL, 'M'},
        {"batch", required_argument, NULL, 'b'},  {"seq", required_argument, NULL, 't'},
        {"steps", required_argument, NULL, 'n'},  {"min-seconds", required_argument, NULL, OPT_MIN},
        {"threads", required_argument, NULL, 'j'}, {"json", no_argument, NULL, OPT_JSON},
        {"precision", required_argument, NULL, 'p'}, {"peak", no_argument, NULL, OPT_PEAK},
        {"gradient-checkpointing", no_argument, NULL, OPT_GC},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *cmd = "bench";
    char models_buf[256] = "tiny,small", modes_buf[256] = "mlm-full,mlm-frozen,cls-frozen,infer", batch_buf[256] = "8,32", prec_buf[64] = "fp32";
    int64_t T = 128, steps = 5, threads = 0;
    double min_s = 2.0;
    int json = 0, peak_only = 0, gc = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":m:M:b:t:n:j:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': snprintf(models_buf, sizeof models_buf, "%s", optarg); break;
        case 'M': snprintf(modes_buf, sizeof modes_buf, "%s", optarg); break;
        case 'b': snprintf(batch_buf, sizeof batch_buf, "%s", optarg); break;
        case 'p': snprintf(prec_buf, sizeof prec_buf, "%s", optarg); break;
        case 't':
            if (!cli_parse_i64(cmd, "--seq", optarg, 2, 512, &T)) return CLI_EXIT_USAGE;
            break;
        case 'n':
            if (!cli_parse_i64(cmd, "--steps", optarg, 1, 100000, &steps)) return CLI_EXIT_USAGE;
            break;
        case OPT_MIN:
            if (!cli_parse_f64(cmd, "--min-seconds", optarg, 0.0, 3600.0, &min_s)) return CLI_EXIT_USAGE;
            break;
        case 'j':
            if (!cli_parse_i64(cmd, "--threads", optarg, 1, 1024, &threads)) return CLI_EXIT_USAGE;
            break;
        case OPT_JSON: json = 1; break;
        case OPT_PEAK: peak_only = 1; break;
        case OPT_GC: gc = 1; break;
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    char *models[8], *modes[8], *batches[8];
    int n_models = split_list(models_buf, models, 8), n_modes = split_list(modes_buf, modes, 8);
    int n_batches = split_list(batch_buf, batches, 8);
    char *precs[2];
    int n_precs = split_list(prec_buf, precs, 2);
    xa_precision prec_ids[2];
    for (int i = 0; i < n_precs; i++) {
        if (xa_precision_parse(precs[i], "--precision", &prec_ids[i]) != XA_STATUS_OK) {
            cli_fail();
            return CLI_EXIT_USAGE;
        }
    }
    xa_encoder_config cfgs[8];
    xa_bench_mode mode_ids[8];
    int bs[8];
    for (int i = 0; i < n_models; i++) {
        if (xa_encoder_preset(&cfgs[i], models[i]) != XA_STATUS_OK) {
            cli_fail();
            return CLI_EXIT_USAGE; /* a bad --models value is a usage error */
        }
    }
    for (int i = 0; i < n_modes; i++) {
        if (xa_bench_mode_parse(modes[i], &mode_ids[i]) != XA_STATUS_OK) return cli_fail();
    }
    for (int i = 0; i < n_batches; i++) {
        int64_t v = 0;
        if (!cli_parse_i64(cmd, "--batch", batches[i], 1, 4096, &v)) return CLI_EXIT_USAGE;
        bs[i] = (int)v;
    }
    xa_threads_set((int)threads);
    xa_bench_set_gradient_checkpointing(gc);
    FILE *out = stdout;
    /* register-only peaks: about 0.3 s a path and thread count (short when rows are, as in tests) */
    peak_set ps;
    memset(&ps, 0, sizeof ps);
    const double peak_s = min_s > 0.0 ? 0.3 : 0.02;
    if (peak_only) {
        if (run_reg_peaks(xa_threads_get(), peak_s, &ps) != XA_STATUS_OK) return cli_fail();
        if (json) {
            fprintf(out, "{\"impl\": \"xadapt\", \"cpu\": \"%s\", \"blas\": \"%s\"}\n", xa_cpu_info(), xa_blas_info());
        } else {
            fprintf(out, "CPU: %s\n", xa_cpu_info());
        }
        print_reg_peaks(out, &ps, json);
        return CLI_EXIT_OK;
    }
    if (!json) {
        if (run_reg_peaks(xa_threads_get(), peak_s, &ps) != XA_STATUS_OK) return cli_fail();
        fprintf(out, "CPU: %s\n", xa_cpu_info());
        print_reg_peaks(out, &ps, 0);
        fprintf(out, "BLAS: %s\n", xa_blas_info());
        for (int q = 0; q < n_precs; q++) {
            double peak = 0.0;
            xa_gemm_set_precision(prec_ids[q]);
            if (run_peak(min_s > 1.0 ? min_s : 1.0, &peak) != XA_STATUS_OK) return cli_fail();
            fprintf(out, "%s peak (4096x768 . 768x3072, best of %.0f s): %.1f GFLOP/s with %d thread%s, %s\n",
                    precs[q], min_s > 1.0 ? min_s : 1.0, peak, xa_threads_get(), xa_threads_get() == 1 ? "" : "s",
                    xa_gemm_engine());
        }
        xa_gemm_set_precision(XA_PRECISION_FP32);
        fprintf(out, "threads: %d, T = %d, >= %lld timed steps and >= %.1f s per row\n\n", xa_threads_get(),
                (int)T, (long long)steps, min_s);
        if (gc) fprintf(out, "gradient checkpointing: on (training rows recompute each layer's forward in backward)\n\n");
        fprintf(out, "| model | mode | B | precision | path | tokens/s | GFLOP/s | of peak | step ms | peak MB |\n");
        fprintf(out, "|---|---|---:|---|---|---:|---:|---:|---:|---:|\n");
        fflush(out);
    }
    for (int i = 0; i < n_models; i++) {
        for (int j = 0; j < n_modes; j++) {
            for (int k = 0; k < n_batches * n_precs; k++) {
                xa_bench_result r;
                const int kb = k / n_precs, kq = k % n_precs; /* the precisions of a row back to back */
                xa_gemm_set_precision(prec_ids[kq]);
                if (run_row(mode_ids[j], &cfgs[i], bs[kb], (int)T, (int)steps, min_s, &r) != XA_STATUS_OK) return cli_fail();
                double mb = (double)r.peak_rss / 1048576.0;
                const xa_peak_path path = xa_gemm_peak_path();
                const double pk = peak_of(&ps, path, xa_threads_get());
                if (json) {
                    fprintf(out, "{\"impl\": \"xadapt\", \"model\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"seq\": %d, "
                            "\"threads\": %d, \"precision\": \"%s\", \"engine\": \"%s\", \"path\": \"%s\", \"tokens_per_s\": %.1f, \"gflops\": %.2f, \"step_ms\": %.2f, \"peak_mb\": %.1f, \"steps\": %d, \"gradient_checkpointing\": %s}\n",
                            models[i], modes[j], bs[kb], (int)T, xa_threads_get(), precs[kq], xa_gemm_engine(), xa_peak_path_name(path), r.tokens_per_s, r.gflops, r.step_ms, mb, r.steps,
                            gc ? "true" : "false");
                } else {
                    char frac[32] = "-";
                    if (pk > 0.0) snprintf(frac, sizeof frac, "%.0f%%", 100.0 * r.gflops / pk);
                    fprintf(out, "| %s | %s | %d | %s | %s | %.0f | %.1f | %s | %.1f | %.0f |\n", models[i], modes[j], bs[kb],
                            xa_gemm_precision() == prec_ids[kq] ? precs[kq] : "fp32 (no bf16 kernel)",
                            xa_peak_path_name(path), r.tokens_per_s, r.gflops, frac, r.step_ms, mb);
                }
                fflush(out);
            }
        }
    }
    return CLI_EXIT_OK;
}
