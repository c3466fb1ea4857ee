/* xadapt: the command-line entry point. Dispatches to the subcommands; prints help and version.
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/dist.h"
#include "io/hfjson.h"
#include "tensor/tensor.h"
#include "tokenizer/spm.h"

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

static int cmd_version(int argc, char **argv);

static const cli_command g_commands[] = {
    {"tokenizer", cli_cmd_tokenizer, "train a SentencePiece model, encode and decode text"},
    {"run", cli_cmd_run, "run every phase of a recipe in order (resumable)"},
    {"train", cli_cmd_train, "run one phase of a recipe: pretrain, lang, task or fusion"},
    {"eval", cli_cmd_eval, "zero-shot transfer table of a recipe (Markdown, JSON, CSV, SVG)"},
    {"predict", cli_cmd_predict, "label lines from stdin with a stack of adapters (JSON lines out)"},
    {"pretrain", cli_cmd_pretrain, "pretrain a small encoder from scratch with masked language modelling"},
    {"retrieval", cli_cmd_retrieval, "cross-lingual retrieval probe: find the translations of held-out paragraphs"},
    {"plot", cli_cmd_plot, "draw the loss curves of a training run (SVG) from its metrics.jsonl"},
    {"bench", cli_cmd_bench, "measure training and inference throughput (tokens/s, GFLOP/s, memory)"},
    {"inspect", cli_cmd_inspect, "list the tensors, dtypes, shapes and metadata of a safetensors or PyTorch .bin file"},
    {"convert", cli_cmd_convert, "write the safetensors form of a PyTorch .bin (or of a directory's .bin files)"},
    {"version", cmd_version, "print the versions of xadapt and its libraries"},
};
#define N_COMMANDS (sizeof g_commands / sizeof g_commands[0])

static void print_help(FILE *out) {
    fprintf(out,
            "xadapt %s: MAD-X style multilingual adapter stacking on frozen Transformer encoders\n"
            "\n"
            "usage: xadapt COMMAND [OPTIONS] [ARGS]\n"
            "       xadapt COMMAND --help\n"
            "\n"
            "commands:\n",
            XA_VERSION_STRING);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-11s %s\n", g_commands[i].name, g_commands[i].summary);
    }
    fprintf(out, "\n"
                 "exit codes: 0 success, 1 runtime failure, 2 usage or configuration error\n"
                 "environment: XA_LOG_LEVEL=debug|info|warn|error|silent\n");
}

static int cmd_version(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: xadapt version\n\nPrint the version of xadapt.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    printf("xadapt %s\n", XA_VERSION_STRING);
    printf("  BLAS: %s\n", xa_blas_info());
    printf("  SentencePiece %s, jansson %s\n", xa_spm_library_version(), xa_io_json_library_version());
#ifdef __VERSION__
    printf("  built with %s%s\n", __VERSION__,
#ifdef XA_HAVE_OPENMP
           ", OpenMP"
#else
           ", no OpenMP"
#endif
    );
#endif
    return CLI_EXIT_OK;
}

/* libgomp reads its wait policy when it loads, before main: waiting threads spin for ~300k
 * iterations by default, which on a shared or oversubscribed machine (another job on the cores)
 * makes every barrier cost a time slice. Measured here with one other busy process on the 2 cores
 * (tiny mlm-full, B32 T64): default 2.5k tok/s, GOMP_SPINCOUNT=10000 4.1k, OMP_WAIT_POLICY=passive
 * 10.4k. Unless the user chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), the CLI re-executes itself
 * once with OMP_WAIT_POLICY=passive, as the PyTorch side of the benchmark is run. */
static void tame_openmp_spin(char **argv) {
#ifdef XA_HAVE_OPENMP
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv); /* on failure: carry on with the default policy */
#else
    (void)argv;
#endif
}

/* The log sink of a data-parallel command: warnings and errors name their rank ("[xadapt] rank 1:
 * warning: ..."), since every rank may report its own; info and debug lines come from rank 0
 * alone, whatever the level (XA_LOG_LEVEL, -q) says, and read as in one process. */
static void log_ranked(xa_log_level level, const char *msg, void *user) {
    const int rank = *(const int *)user;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    const char *name = level <= XA_LOG_LEVEL_ERROR ? names[level] : "?";
    if (level >= XA_LOG_LEVEL_WARN) fprintf(stderr, "[xadapt] rank %d: %s: %s\n", rank, name, msg);
    else if (rank == 0) fprintf(stderr, "[xadapt] %s: %s\n", name, msg);
}

/* A command under mpirun: MPI starts after the re-execution above; ranks other than 0 print
 * nothing on stdout, draw no progress line and log warnings and errors only, naming their rank
 * (rank 0 speaks for the run; every rank reports its own failure). A failed command on one of
 * several ranks aborts them all (the others would wait in the next allreduce), with its exit
 * status. */
static int run_command(int (*run)(int, char **), int argc, char **argv) {
    static int g_rank;
    if (xa_dist_init(&argc, &argv)) {
        fprintf(stderr, "xadapt: %s\n", xa_error_last()->what);
        return CLI_EXIT_RUNTIME;
    }
    const int rank = xa_dist_rank(), size = xa_dist_size();
    xa_threads_set_sharers(xa_dist_local_size()); /* default threads: the cores / the local ranks */
    g_rank = rank;
    if (size > 1) xa_log_set_callback(log_ranked, &g_rank);
    if (rank > 0) {
        if (!freopen("/dev/null", "w", stdout)) fprintf(stderr, "xadapt: rank %d: cannot silence stdout\n", rank);
        xa_progress_set_quiet(1);
        if (xa_log_get_level() < XA_LOG_LEVEL_WARN) xa_log_set_level(XA_LOG_LEVEL_WARN);
    }
    const int rc = run(argc - 1, argv + 1);
    if (rc != CLI_EXIT_OK && size > 1) {
        fprintf(stderr, "xadapt: rank %d of %d failed (exit %d); stopping every rank\n", rank, size, rc);
        fflush(stderr);
        xa_dist_abort(rc);
    }
    xa_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    tame_openmp_spin(argv);
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (cli_is_help(name)) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(name, "--version")) return cmd_version(1, argv + 1);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(name, g_commands[i].name)) return run_command(g_commands[i].run, argc, argv);
    }
    fprintf(stderr, "xadapt: unknown command '%s'\nTry 'xadapt --help'.\n", name);
    return CLI_EXIT_USAGE;
}
