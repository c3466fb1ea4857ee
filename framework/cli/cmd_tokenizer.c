/* xadapt tokenizer train|encode|decode: SentencePiece models from the command line.
 *
 *   xadapt tokenizer train  --input corpus.txt --vocab 8000 --out tok     -> tok.model, tok.vocab
 *   echo "Hallo Welt" | xadapt tokenizer encode --model tok.model --xlmr  -> 0 1234 567 2
 *   echo "0 1234 567 2" | xadapt tokenizer decode --model tok.model --xlmr -> Hallo Welt
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/file.h"
#include "tokenizer/spm.h"
#include "tokenizer/tok.h"

#define MAX_INPUTS 256
#define MAX_SYMBOLS 256

static void print_help(void) {
    printf("usage: xadapt tokenizer train  --input FILE [--input FILE ...] --vocab N --out PREFIX [OPTIONS]\n"
           "       xadapt tokenizer encode --model FILE [--xlmr] [--no-special] [--pieces] [TEXT ...]\n"
           "       xadapt tokenizer decode --model FILE [--xlmr] [IDS ...]\n"
           "\n"
           "SentencePiece tokenizers. encode and decode read one item per line from stdin when no\n"
           "argument is given and write one line per item. --xlmr uses the XLM-R id convention:\n"
           "<s>=0 <pad>=1 </s>=2 <unk>=3, every other piece = SentencePiece id + 1, <mask> last.\n"
           "\n"
           "Run 'xadapt tokenizer SUBCOMMAND --help' for the options of each.\n");
}

static void print_train_help(void) {
    printf("usage: xadapt tokenizer train --input FILE [--input FILE ...] --vocab N --out PREFIX [OPTIONS]\n"
           "\n"
           "Train a SentencePiece model on plain text (one sentence or paragraph per line) and\n"
           "write PREFIX.model and PREFIX.vocab.\n"
           "\n"
           "options:\n"
           "  -i, --input FILE        training text (repeatable)\n"
           "  -v, --vocab N           vocabulary size (required)\n"
           "  -o, --out PREFIX        output prefix (required)\n"
           "  -t, --type TYPE         unigram (default) or bpe\n"
           "  -c, --coverage F        character coverage in [0.98, 1], default 0.9995\n"
           "  -b, --byte-fallback     unknown characters become <0xXX> byte pieces (no <unk>)\n"
           "  -u, --user-symbol S     a piece that is never split (repeatable)\n"
           "  -n, --sentences N       sample N (> 100) input sentences (default 0: all)\n"
           "  -s, --seed N            random seed (default 42; SentencePiece 0.1.97 samples with a fixed seed)\n"
           "  -j, --threads N         training threads (default 1: deterministic)\n"
           "      --verbose           show SentencePiece's own training log\n"
           "  -h, --help              show this help\n");
}

static void print_codec_help(const char *sub) {
    if (!strcmp(sub, "encode")) {
        printf("usage: xadapt tokenizer encode --model FILE [OPTIONS] [TEXT ...]\n"
               "\n"
               "Encode each TEXT (or each line of stdin) and print its ids separated by spaces.\n"
               "\n"
               "options:\n"
               "  -m, --model FILE   SentencePiece model (required); a base model directory, a vocab.txt\n"
               "                     or a tokenizer.json: that base's tokenizer as xadapt picks it\n"
               "                     (WordPiece [CLS] ... [SEP], or SentencePiece with XLM-R ids)\n"
               "  -x, --xlmr         XLM-R id convention (<s>=0 <pad>=1 </s>=2 <unk>=3, +1, <mask> last)\n"
               "      --no-special   do not add <s> ... </s> ([CLS] ... [SEP])\n"
               "  -p, --pieces       print pieces instead of ids\n"
               "  -h, --help         show this help\n");
    } else {
        printf("usage: xadapt tokenizer decode --model FILE [OPTIONS] [IDS ...]\n"
               "\n"
               "Decode ids (one sequence per argument or per line of stdin, separated by spaces or\n"
               "commas) and print the text. Special tokens are skipped.\n"
               "\n"
               "options:\n"
               "  -m, --model FILE   SentencePiece model (required)\n"
               "  -x, --xlmr         XLM-R id convention\n"
               "  -h, --help         show this help\n");
    }
}

static int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'i'},    {"vocab", required_argument, NULL, 'v'},
        {"out", required_argument, NULL, 'o'},      {"type", required_argument, NULL, 't'},
        {"coverage", required_argument, NULL, 'c'}, {"user-symbol", required_argument, NULL, 'u'},
        {"sentences", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 'j'},  {"verbose", no_argument, NULL, 'V'},
        {"byte-fallback", no_argument, NULL, 'b'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "tokenizer train";
    const char *inputs[MAX_INPUTS];
    const char *symbols[MAX_SYMBOLS];
    size_t n_inputs = 0, n_symbols = 0;
    xa_spm_train_opts o = xa_spm_train_opts_default();
    int64_t iv = 0;
    double fv = 0;
    int have_vocab = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":i:v:o:t:c:u:n:s:j:bh", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (n_inputs == MAX_INPUTS) return cli_usage_error(cmd, "at most %d --input files", MAX_INPUTS);
            inputs[n_inputs++] = optarg;
            break;
        case 'v':
            if (!cli_parse_i64(cmd, "--vocab", optarg, 1, 10000000, &iv)) return CLI_EXIT_USAGE;
            o.vocab_size = (int32_t)iv;
            have_vocab = 1;
            break;
        case 'o': o.model_prefix = optarg; break;
        case 't':
            if (strcmp(optarg, "unigram") && strcmp(optarg, "bpe")) {
                return cli_usage_error(cmd, "--type expects 'unigram' or 'bpe', got '%s'", optarg);
            }
            o.model_type = optarg;
            break;
        case 'c':
            if (!cli_parse_f64(cmd, "--coverage", optarg, 0.98, 1.0, &fv)) return CLI_EXIT_USAGE;
            o.character_coverage = fv;
            break;
        case 'b': o.byte_fallback = 1; break;
        case 'u':
            if (n_symbols == MAX_SYMBOLS) return cli_usage_error(cmd, "at most %d --user-symbol", MAX_SYMBOLS);
            symbols[n_symbols++] = optarg;
            break;
        case 'n':
            if (!cli_parse_i64(cmd, "--sentences", optarg, 0, INT64_MAX, &iv)) return CLI_EXIT_USAGE;
            if (iv > 0 && iv <= 100) return cli_usage_error(cmd, "--sentences expects 0 (all) or more than 100, got %lld", (long long)iv);
            o.input_sentence_size = iv;
            break;
        case 's':
            if (!cli_parse_i64(cmd, "--seed", optarg, 0, UINT32_MAX, &iv)) return CLI_EXIT_USAGE;
            o.seed = (uint32_t)iv;
            break;
        case 'j':
            if (!cli_parse_i64(cmd, "--threads", optarg, 1, 1024, &iv)) return CLI_EXIT_USAGE;
            o.num_threads = (int)iv;
            break;
        case 'V': o.verbose = 1; break;
        case 'h': print_train_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!n_inputs) return cli_usage_error(cmd, "missing --input FILE");
    if (!have_vocab) return cli_usage_error(cmd, "missing --vocab N");
    if (!o.model_prefix) return cli_usage_error(cmd, "missing --out PREFIX");
    /* Accept "--out tok.model" as the prefix "tok". */
    char prefix[4096];
    size_t plen = strlen(o.model_prefix);
    if (plen >= sizeof prefix) return cli_usage_error(cmd, "--out path too long");
    memcpy(prefix, o.model_prefix, plen + 1);
    if (plen > 6 && !strcmp(prefix + plen - 6, ".model")) prefix[plen - 6] = '\0';
    o.model_prefix = prefix;
    o.inputs = inputs;
    o.n_inputs = n_inputs;
    o.user_symbols = symbols;
    o.n_user_symbols = n_symbols;

    fprintf(stderr, "training a %s model with %d pieces on %zu file%s ...\n", o.model_type,
            (int)o.vocab_size, n_inputs, n_inputs == 1 ? "" : "s");
    double t0 = xa_time_now();
    if (xa_spm_train(&o) != XA_STATUS_OK) return cli_fail();
    xa_spm *spm = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s.model", o.model_prefix);
    if (xa_spm_load(&spm, path) != XA_STATUS_OK) return cli_fail();
    char dur[32];
    printf("wrote %s (%d pieces) and %s.vocab in %s\n", path, (int)xa_spm_vocab_size(spm),
           o.model_prefix, xa_format_duration(xa_time_now() - t0, dur, sizeof dur));
    xa_spm_free(spm);
    return CLI_EXIT_OK;
}

/* Strip a trailing newline (and CR) in place. */
static void chomp(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static int encode_one(const xa_spm *spm, const char *text, int add_special, int pieces) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (xa_spm_encode(spm, text, strlen(text), add_special, &ids, &n) != XA_STATUS_OK) return 0;
    for (size_t i = 0; i < n; i++) {
        if (pieces) {
            const char *p = xa_spm_id_to_piece(spm, ids[i]);
            printf("%s%s", i ? " " : "", p ? p : "?");
        } else {
            printf("%s%d", i ? " " : "", (int)ids[i]);
        }
    }
    putchar('\n');
    free(ids);
    return 1;
}

/* encode_one through tok/tok.h (a base directory, vocab.txt or tokenizer.json). */
static int encode_tok_one(const xa_tok *tok, const char *text, int add_special, int pieces) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (xa_tok_encode(tok, text, strlen(text), add_special, &ids, &n) != XA_STATUS_OK) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces ? xa_tok_id_to_piece(tok, ids[i]) : NULL;
        if (pieces) printf("%s%s", i ? " " : "", p ? p : "?");
        else printf("%s%d", i ? " " : "", (int)ids[i]);
    }
    putchar('\n');
    free(ids);
    return 1;
}

static int wants_tok(const char *model) {
    size_t n = strlen(model);
    return xa_file_is_dir(model) || (n > 4 && (!strcmp(model + n - 4, ".txt") || (n > 5 && !strcmp(model + n - 5, ".json"))));
}

/* Parse "1 2 3" or "1,2,3" into ids; returns 0 and prints a usage error on a bad token. */
static int parse_ids(const char *cmd, char *line, int32_t vocab, int32_t **ids, size_t *n) {
    size_t cap = 16, len = 0;
    int32_t *out = malloc(cap * sizeof *out);
    if (!out) return 0;
    for (char *tok = strtok(line, " ,\t"); tok; tok = strtok(NULL, " ,\t")) {
        int64_t v = 0;
        if (!cli_parse_i64(cmd, "an id", tok, 0, vocab - 1, &v)) {
            free(out);
            return 0;
        }
        if (len == cap) {
            int32_t *grown = realloc(out, 2 * cap * sizeof *out);
            if (!grown) {
                free(out);
                return 0;
            }
            out = grown;
            cap *= 2;
        }
        out[len++] = (int32_t)v;
    }
    *ids = out;
    *n = len;
    return 1;
}

static int decode_one(const xa_spm *spm, const char *cmd, char *line) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (!parse_ids(cmd, line, xa_spm_vocab_size(spm), &ids, &n)) return -1;
    char *text = NULL;
    xa_status st = xa_spm_decode(spm, ids, n, &text);
    free(ids);
    if (st != XA_STATUS_OK) return 0;
    printf("%s\n", text);
    free(text);
    return 1;
}

static int cmd_codec(int argc, char **argv, int encode) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"xlmr", no_argument, NULL, 'x'},
        {"no-special", no_argument, NULL, 'N'},  {"pieces", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *cmd = encode ? "tokenizer encode" : "tokenizer decode";
    const char *model = NULL;
    int xlmr = 0, special = 1, pieces = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, encode ? ":m:xph" : ":m:xh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'x': xlmr = 1; break;
        case 'N':
            if (!encode) return cli_usage_error(cmd, "unknown option '--no-special'");
            special = 0;
            break;
        case 'p':
            if (!encode) return cli_usage_error(cmd, "unknown option '--pieces'");
            pieces = 1;
            break;
        case 'h': print_codec_help(encode ? "encode" : "decode"); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!model) return cli_usage_error(cmd, "missing --model FILE");
    if (encode && wants_tok(model)) {
        xa_tok *tok = NULL;
        if (xa_tok_load(&tok, model) != XA_STATUS_OK) return cli_fail();
        int rc = CLI_EXIT_OK;
        char *line = NULL;
        size_t cap = 0;
        for (int i = optind; i < argc && rc == CLI_EXIT_OK; i++)
            if (!encode_tok_one(tok, argv[i], special, pieces)) rc = cli_fail();
        while (optind >= argc && rc == CLI_EXIT_OK && getline(&line, &cap, stdin) != -1) {
            chomp(line);
            if (!encode_tok_one(tok, line, special, pieces)) rc = cli_fail();
        }
        free(line);
        xa_tok_free(tok);
        return rc;
    }
    xa_spm *spm = NULL;
    if (xa_spm_load(&spm, model) != XA_STATUS_OK) return cli_fail();
    if (xlmr && xa_spm_set_ids(spm, XA_SPM_IDS_XLMR) != XA_STATUS_OK) {
        xa_spm_free(spm);
        return cli_fail();
    }

    int rc = CLI_EXIT_OK;
    if (optind < argc) {
        for (int i = optind; i < argc && rc == CLI_EXIT_OK; i++) {
            int ok = encode ? encode_one(spm, argv[i], special, pieces) : decode_one(spm, cmd, argv[i]);
            if (ok <= 0) rc = ok < 0 ? CLI_EXIT_USAGE : cli_fail();
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        while (rc == CLI_EXIT_OK && getline(&line, &cap, stdin) != -1) {
            chomp(line);
            int ok = encode ? encode_one(spm, line, special, pieces) : decode_one(spm, cmd, line);
            if (ok <= 0) rc = ok < 0 ? CLI_EXIT_USAGE : cli_fail();
        }
        free(line);
    }
    xa_spm_free(spm);
    return rc;
}

int cli_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) {
        print_help();
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (cli_is_help(sub)) {
        print_help();
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(sub, "encode")) return cmd_codec(argc - 1, argv + 1, 1);
    if (!strcmp(sub, "decode")) return cmd_codec(argc - 1, argv + 1, 0);
    return cli_usage_error("tokenizer", "unknown subcommand '%s' (expected train, encode or decode)", sub);
}
