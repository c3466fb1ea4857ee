/* xadapt retrieval: the cross-lingual retrieval probe of train/retrieval.c from the command line,
 * on a base alone or with a language adapter on each side (MAD-X's lang:en / lang:tgt). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/file.h"
#include "train/train.h"

static void print_help(void) {
    printf("usage: xadapt retrieval --base DIR --pairs FILE.tsv [OPTIONS]\n"
           "\n"
           "Embed both sides of held-out aligned paragraphs (TSV \"en<TAB>text\", header line\n"
           "\"en<TAB>...\"; prepare.sh writes retrieval/<lang>.tsv) by the mean of each layer's hidden\n"
           "states, centre each language, and print accuracy@1 of finding the translation by cosine\n"
           "nearest neighbour, per layer and direction. Chance is 1/n.\n"
           "\n"
           "options:\n"
           "  -b, --base DIR          Hugging Face base model directory (required)\n"
           "  -p, --pairs FILE        retrieval pairs (required)\n"
           "  -t, --tokenizer FILE    SentencePiece model (default: DIR/sentencepiece.bpe.model)\n"
           "      --src-adapter DIR   AdapterHub adapter for the English side (e.g. lang/en)\n"
           "      --tgt-adapter DIR   AdapterHub adapter for the other side (e.g. lang/de)\n"
           "      --batch N           batch size (default 32)\n"
           "      --seq-len N         pieces per paragraph at most (default 128)\n"
           "      --json              one JSON object instead of the table\n"
           "      --threads N         threads (default: all cores)\n"
           "  -h, --help              show this help\n");
}

int cli_cmd_retrieval(int argc, char **argv) {
    enum { O_SRC = 256, O_TGT, O_BATCH, O_SEQ, O_JSON, O_THREADS };
    static const struct option opts[] = {
        {"base", required_argument, NULL, 'b'},     {"pairs", required_argument, NULL, 'p'},
        {"tokenizer", required_argument, NULL, 't'}, {"src-adapter", required_argument, NULL, O_SRC},
        {"tgt-adapter", required_argument, NULL, O_TGT}, {"batch", required_argument, NULL, O_BATCH},
        {"seq-len", required_argument, NULL, O_SEQ}, {"json", no_argument, NULL, O_JSON},
        {"threads", required_argument, NULL, O_THREADS}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *base = NULL, *pairs = NULL, *tok = NULL, *src = NULL, *tgt = NULL;
    long B = 32, T = 128, threads = 0;
    int json = 0;
    opterr = 0;
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, ":b:p:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'p': pairs = optarg; break;
        case 't': tok = optarg; break;
        case O_SRC: src = optarg; break;
        case O_TGT: tgt = optarg; break;
        case O_JSON: json = 1; break;
        case O_BATCH:
        case O_SEQ:
        case O_THREADS: {
            long v = strtol(optarg, &end, 10);
            if (*end || v < (c == O_THREADS ? 0 : 1) || v > (1 << 20))
                return cli_usage_error("retrieval", "%s needs a positive integer, got '%s'", argv[optind - 1], optarg);
            if (c == O_BATCH) B = v;
            else if (c == O_SEQ) T = v;
            else threads = v;
            break;
        }
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error("retrieval", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("retrieval", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!base || !pairs) return cli_usage_error("retrieval", "--base and --pairs are required");
    if (optind < argc) return cli_usage_error("retrieval", "unexpected argument '%s'", argv[optind]);
    char tokp[XA_PATH_MAX];
    if (!tok) {
        if (xa_path_join(tokp, sizeof tokp, base, "sentencepiece.bpe.model")) return cli_fail();
        tok = tokp;
    }
    xa_threads_set((int)threads);
    xa_retrieval_metrics m;
    if (xa_eval_retrieval(base, tok, src, tgt, pairs, (int)B, (int)T, &m)) return cli_fail();
    if (json) {
        printf("{\"n\": %lld, \"accuracy\": %.6f, \"en2x\": [", (long long)m.n, m.accuracy);
        for (int l = 0; l < m.n_layers; l++) printf("%s%.4f", l ? ", " : "", m.en2x[l]);
        printf("], \"x2en\": [");
        for (int l = 0; l < m.n_layers; l++) printf("%s%.4f", l ? ", " : "", m.x2en[l]);
        printf("]}\n");
        return CLI_EXIT_OK;
    }
    printf("%s: %lld pairs, chance %.2f%%\n", pairs, (long long)m.n, 100.0 / (double)m.n);
    printf("| layer | en -> x | x -> en |\n|---|---:|---:|\n");
    for (int l = 0; l < m.n_layers; l++)
        printf("| %s%d | %.1f | %.1f |\n", l == 0 ? "emb " : "", l, 100 * m.en2x[l], 100 * m.x2en[l]);
    printf("accuracy@1 (last layer, both directions): %.1f%%\n", 100 * m.accuracy);
    return CLI_EXIT_OK;
}
