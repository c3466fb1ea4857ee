/* xadapt plot: the loss curves of a training run (eval/plot.h) from its metrics.jsonl, as the
 * trainer draws them at the end of every phase; for a run in progress, or one made by an older
 * xadapt (both row formats are read). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "eval/plot.h"
#include "io/file.h"

static void print_help(void) {
    printf("usage: xadapt plot RUN_DIR [-o FILE] [--title TEXT]\n"
           "\n"
           "Draw the loss curves of a training run as a standalone SVG: the training loss of every\n"
           "logged window (thin) and smoothed (thick), the evaluations on the same step axis (dev\n"
           "accuracy or F1 on an axis at the right, held-out or dev losses with the training loss;\n"
           "the best one ringed) and the learning rate in a panel below. RUN_DIR is a run's output\n"
           "directory (base/, lang/de/, task/TASK/seed1/, ...) holding metrics.jsonl, or a\n"
           "metrics.jsonl file itself. Rows of the older untyped format are read too; rows of one\n"
           "step written twice (an older run resumed after a kill) keep the last one.\n"
           "\n"
           "options:\n"
           "  -o, --out FILE     the SVG (default: metrics.svg beside the metrics file)\n"
           "      --title TEXT   the chart's title (default: RUN_DIR)\n"
           "  -h, --help         show this help\n"
           "\n"
           "The trainer writes the same chart as RUN_DIR/metrics.svg at the end of every phase.\n");
}

int cli_cmd_plot(int argc, char **argv) {
    enum { OPT_TITLE = 256 };
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'}, {"title", required_argument, NULL, OPT_TITLE},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *cmd = "plot", *out = NULL, *title = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case OPT_TITLE: title = optarg; break;
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error(cmd, "missing RUN_DIR (a run's directory with metrics.jsonl)");
    const char *run = argv[optind++];
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    char metrics[XA_PATH_MAX], svg[XA_PATH_MAX];
    const size_t rl = strlen(run);
    if (xa_file_is_dir(run) || rl < 6 || strcmp(run + rl - 6, ".jsonl")) { /* a run directory */
        if (xa_path_join(metrics, sizeof metrics, run, "metrics.jsonl")) return cli_fail();
    } else if (snprintf(metrics, sizeof metrics, "%s", run) >= (int)sizeof metrics) {
        return cli_usage_error(cmd, "path too long");
    }
    if (out) {
        snprintf(svg, sizeof svg, "%s", out);
    } else {
        size_t len = strlen(metrics);
        const int jl = len > 6 && !strcmp(metrics + len - 6, ".jsonl");
        if (snprintf(svg, sizeof svg, "%.*s.svg", (int)(jl ? len - 6 : len), metrics) >= (int)sizeof svg)
            return cli_usage_error(cmd, "path too long");
    }
    xa_plot_info info;
    if (xa_plot_metrics(metrics, svg, title ? title : run, &info)) return cli_fail();
    printf("%s: %lld training windows, %lld evaluations in %d series%s\n", svg, (long long)info.n_train,
           (long long)info.n_eval, info.n_metrics, info.n_skipped ? " (some lines skipped: see the warning)" : "");
    return CLI_EXIT_OK;
}
