/* xadapt pretrain: MLM pretraining of a small encoder from scratch (all parameters train),
 * resumable, with a progress line and metrics as JSON lines. The result is a Hugging Face model
 * directory (config.json, model.safetensors, sentencepiece.bpe.model). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/dist.h"
#include "io/file.h"
#include "io/hfjson.h"
#include "tensor/tensor.h"
#include "train/train.h"

static void print_help(void) {
    printf("usage: xadapt pretrain --corpus FILE --tokenizer FILE --out DIR [OPTIONS]\n"
           "\n"
           "Pretrain an XLM-R style encoder with masked language modelling, all parameters trained.\n"
           "Writes DIR/config.json, DIR/model.safetensors (loadable by XLMRobertaForMaskedLM),\n"
           "DIR/sentencepiece.bpe.model, DIR/metrics.jsonl, and a checkpoint in DIR/checkpoint/.\n"
           "\n"
           "options:\n"
           "  -c, --corpus FILE      plain text, one document per line (required)\n"
           "  -k, --tokenizer FILE   SentencePiece model (required; XLM-R ids are used)\n"
           "  -o, --out DIR          output directory (required)\n"
           "  -m, --model NAME       tiny (default), small, base, or a config.json path\n"
           "  -n, --steps N          optimizer steps (default 1000)\n"
           "  -b, --batch N          sequences per step (default 8)\n"
           "  -t, --seq N            tokens per sequence (default 128)\n"
           "      --lr F             peak learning rate (default 5e-4)\n"
           "      --warmup N         warmup steps (default 6%% of the steps)\n"
           "      --weight-decay F   AdamW weight decay (default 0.01)\n"
           "      --clip F           gradient-norm clip, 0 = off (default 1.0)\n"
           "  -s, --seed N           seed of init, data order, masking and dropout (default 42)\n"
           "      --ckpt-every N     steps between checkpoints (default 200)\n"
           "  -r, --resume           continue from DIR/checkpoint (an error when there is none)\n"
           "  -f, --force            replace what DIR holds (a finished model, a checkpoint, metrics)\n"
           "      --log-every N      steps per metrics line (default 10, fewer for short runs)\n"
           "      --max-docs N       read at most N corpus lines (default: all)\n"
           "      --pairs FILE       aligned pairs \"lang<TAB>en<TAB>text\" for --tlm / --align\n"
           "      --tlm F            share of steps on TLM batches <s> A </s></s> B </s> (default 0)\n"
           "      --align W          weight of the in-batch contrastive alignment loss (default 0)\n"
           "      --align-pairs N    pairs per alignment batch (default: batch / 2)\n"
           "      --align-temp F     its temperature (default 0.05)\n"
           "      --pair-alpha A     language sampling exponent over the pairs (default 0.3)\n"
           "      --lr-scheduler S   linear (default), cosine, constant or constant_with_warmup\n"
           "      --heldout FILE     held-out text: its MLM loss every --eval-every steps (an \"eval\"\n"
           "                         row of metrics.jsonl, on its first 8 batches)\n"
           "      --eval-every N     steps between those evaluations (default 0: none)\n"
           "      --precision P      fp32 (default) or bf16 matrix products (bf16 operands, fp32\n"
           "                         accumulation, AVX512-BF16; the checkpoint identity records it)\n"
           "      --gradient-checkpointing\n"
           "                         recompute each layer's activations in backward (HF's name): less\n"
           "                         memory, one more forward a step, the same weights bit for bit\n"
           "  -j, --threads N        threads (default: all cores)\n"
           "  -q, --quiet            no progress line, only warnings and errors\n"
           "  -h, --help             show this help\n"
           "\n"
           "DIR also receives train.log (the run's log, appended across resumes) and metrics.svg\n"
           "(the loss curves, redrawn by 'xadapt plot DIR').\n");
}

enum { OPT_LR = 256, OPT_WARMUP, OPT_WD, OPT_CLIP, OPT_CKPT, OPT_MAXDOCS, OPT_PAIRS, OPT_TLM, OPT_ALIGN,
       OPT_ALIGN_PAIRS, OPT_ALIGN_TEMP, OPT_PAIR_ALPHA, OPT_LOG, OPT_SCHED, OPT_HELDOUT, OPT_EVAL,
       OPT_PRECISION, OPT_GC };

/* DIR/NAME exists. */
static int has(const char *dir, const char *name) {
    char p[XA_PATH_MAX];
    return !xa_path_join(p, sizeof p, dir, name) && access(p, F_OK) == 0;
}

/* No silent overwrite (as HF's --overwrite_output_dir): a fresh run over a directory that holds a
 * model, a checkpoint or metrics needs --force, and --resume needs a checkpoint. */
static int check_out_dir(const char *cmd, const xa_pretrain_opts *o, int force) {
    const int ckpt = has(o->out_dir, "checkpoint") || has(o->out_dir, "checkpoint.old");
    if (o->resume && !ckpt && !force)
        return cli_usage_error(cmd, "--resume: %s holds no checkpoint to resume from (hint: drop --resume to "
                                    "start a fresh run)", o->out_dir);
    if (o->resume || force) return CLI_EXIT_OK;
    const char *what = has(o->out_dir, "model.safetensors") ? "a finished model"
                     : ckpt                                 ? "a checkpoint"
                     : has(o->out_dir, "metrics.jsonl")     ? "metrics.jsonl"
                                                            : NULL;
    if (what)
        return cli_usage_error(cmd, "%s already holds %s (hint: --resume to continue the run, --force to "
                                    "replace it, or another --out)", o->out_dir, what);
    return CLI_EXIT_OK;
}

int cli_cmd_pretrain(int argc, char **argv) {
    static const struct option opts[] = {
        {"corpus", required_argument, NULL, 'c'},   {"tokenizer", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'o'},      {"model", required_argument, NULL, 'm'},
        {"steps", required_argument, NULL, 'n'},    {"batch", required_argument, NULL, 'b'},
        {"seq", required_argument, NULL, 't'},      {"lr", required_argument, NULL, OPT_LR},
        {"warmup", required_argument, NULL, OPT_WARMUP}, {"weight-decay", required_argument, NULL, OPT_WD},
        {"clip", required_argument, NULL, OPT_CLIP}, {"seed", required_argument, NULL, 's'},
        {"ckpt-every", required_argument, NULL, OPT_CKPT}, {"resume", no_argument, NULL, 'r'},
        {"max-docs", required_argument, NULL, OPT_MAXDOCS}, {"threads", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},          {"log-every", required_argument, NULL, OPT_LOG},
        {"pairs", required_argument, NULL, OPT_PAIRS}, {"tlm", required_argument, NULL, OPT_TLM},
        {"align", required_argument, NULL, OPT_ALIGN}, {"align-pairs", required_argument, NULL, OPT_ALIGN_PAIRS},
        {"align-temp", required_argument, NULL, OPT_ALIGN_TEMP}, {"pair-alpha", required_argument, NULL, OPT_PAIR_ALPHA},
        {"lr-scheduler", required_argument, NULL, OPT_SCHED}, {"heldout", required_argument, NULL, OPT_HELDOUT},
        {"eval-every", required_argument, NULL, OPT_EVAL}, {"quiet", no_argument, NULL, 'q'},
        {"precision", required_argument, NULL, OPT_PRECISION}, {"gradient-checkpointing", no_argument, NULL, OPT_GC},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *cmd = "pretrain", *model = "tiny", *heldout = NULL, *heldout_name = "heldout";
    xa_pretrain_opts o = xa_pretrain_opts_default();
    int64_t iv = 0, threads = 0;
    int force = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":c:k:o:m:n:b:t:s:rfj:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.corpus = optarg; break;
        case 'k': o.tokenizer = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 'm': model = optarg; break;
        case 'n':
            if (!cli_parse_i64(cmd, "--steps", optarg, 1, INT64_MAX / 2, &o.steps)) return CLI_EXIT_USAGE;
            break;
        case 'b':
            if (!cli_parse_i64(cmd, "--batch", optarg, 1, 4096, &iv)) return CLI_EXIT_USAGE;
            o.B = (int)iv;
            break;
        case 't':
            if (!cli_parse_i64(cmd, "--seq", optarg, 8, 8192, &iv)) return CLI_EXIT_USAGE;
            o.T = (int)iv;
            break;
        case OPT_LR:
            if (!cli_parse_f64(cmd, "--lr", optarg, 0.0, 10.0, &o.lr)) return CLI_EXIT_USAGE;
            break;
        case OPT_WARMUP:
            if (!cli_parse_i64(cmd, "--warmup", optarg, 0, INT64_MAX / 2, &o.warmup)) return CLI_EXIT_USAGE;
            break;
        case OPT_WD:
            if (!cli_parse_f64(cmd, "--weight-decay", optarg, 0.0, 1.0, &o.weight_decay)) return CLI_EXIT_USAGE;
            break;
        case OPT_CLIP:
            if (!cli_parse_f64(cmd, "--clip", optarg, 0.0, 1e6, &o.clip)) return CLI_EXIT_USAGE;
            break;
        case 's':
            if (!cli_parse_i64(cmd, "--seed", optarg, 0, INT64_MAX, &iv)) return CLI_EXIT_USAGE;
            o.seed = (uint64_t)iv;
            break;
        case OPT_CKPT:
            if (!cli_parse_i64(cmd, "--ckpt-every", optarg, 0, INT64_MAX / 2, &o.ckpt_every)) return CLI_EXIT_USAGE;
            break;
        case 'r': o.resume = 1; break;
        case 'f': force = 1; break;
        case OPT_LOG:
            if (!cli_parse_i64(cmd, "--log-every", optarg, 1, INT64_MAX / 2, &o.log_every)) return CLI_EXIT_USAGE;
            break;
        case OPT_MAXDOCS:
            if (!cli_parse_i64(cmd, "--max-docs", optarg, 0, INT64_MAX, &o.max_docs)) return CLI_EXIT_USAGE;
            break;
        case 'j':
            if (!cli_parse_i64(cmd, "--threads", optarg, 1, 1024, &threads)) return CLI_EXIT_USAGE;
            break;
        case OPT_PAIRS: o.pairs = optarg; break;
        case OPT_TLM:
            if (!cli_parse_f64(cmd, "--tlm", optarg, 0.0, 1.0, &o.tlm_ratio)) return CLI_EXIT_USAGE;
            break;
        case OPT_ALIGN:
            if (!cli_parse_f64(cmd, "--align", optarg, 0.0, 1e6, &o.align_weight)) return CLI_EXIT_USAGE;
            break;
        case OPT_ALIGN_PAIRS:
            if (!cli_parse_i64(cmd, "--align-pairs", optarg, 2, 512, &iv)) return CLI_EXIT_USAGE;
            o.align_pairs = (int)iv;
            break;
        case OPT_ALIGN_TEMP:
            if (!cli_parse_f64(cmd, "--align-temp", optarg, 1e-4, 100.0, &o.align_temp)) return CLI_EXIT_USAGE;
            break;
        case OPT_PAIR_ALPHA:
            if (!cli_parse_f64(cmd, "--pair-alpha", optarg, 0.0, 1.0, &o.pair_alpha)) return CLI_EXIT_USAGE;
            break;
        case OPT_SCHED:
            if (xa_sched_parse_kind(optarg, &o.k.sched))
                return cli_usage_error(cmd, "--lr-scheduler: unknown schedule '%s' (linear, cosine, constant, "
                                            "constant_with_warmup)", optarg);
            break;
        case OPT_PRECISION:
            if (!cli_parse_precision(cmd, optarg, &o.k.precision)) return CLI_EXIT_USAGE;
            break;
        case OPT_GC: o.k.gradient_checkpointing = 1; break;
        case OPT_HELDOUT: heldout = optarg; break;
        case OPT_EVAL:
            if (!cli_parse_i64(cmd, "--eval-every", optarg, 0, INT64_MAX / 2, &o.eval_every)) return CLI_EXIT_USAGE;
            break;
        case 'q': cli_set_quiet(); break;
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((heldout != NULL) != (o.eval_every > 0)) return cli_usage_error(cmd, "--heldout and --eval-every go together");
    if (heldout) {
        o.n_heldout = 1;
        o.heldout = &heldout;
        o.heldout_names = &heldout_name;
    }
    if (!o.corpus) return cli_usage_error(cmd, "missing --corpus FILE");
    if (!o.tokenizer) return cli_usage_error(cmd, "missing --tokenizer FILE");
    if (!o.out_dir) return cli_usage_error(cmd, "missing --out DIR");
    if ((o.tlm_ratio > 0 || o.align_weight > 0) && !o.pairs)
        return cli_usage_error(cmd, "--tlm and --align need --pairs FILE");
    int rc = check_out_dir(cmd, &o, force);
    if (rc) return rc;
    if (xa_dist_barrier(cmd)) return cli_fail(); /* every rank checked OUT before rank 0 writes in it */
    xa_status st;
    if (strchr(model, '/') || strstr(model, ".json")) {
        xa_hf_config hf;
        st = xa_hf_config_read(&hf, model);
        if (!st) st = xa_encoder_config_from_hf(&o.model, &hf, model);
    } else if ((st = xa_encoder_preset(&o.model, model)) != XA_STATUS_OK) {
        cli_fail();
        return CLI_EXIT_USAGE; /* a bad --model name is a usage error */
    }
    if (st) return cli_fail();
    xa_threads_set((int)threads);
    o.progress = stderr;
    if (!xa_progress_quiet())
        fprintf(stderr, "pretraining %s (L%d d%d h%d ff%d) on %s: %lld steps of %d x %d tokens, %d threads\n",
                model, o.model.L, o.model.C, o.model.NH, o.model.FF, o.corpus, (long long)o.steps, o.B, o.T,
                xa_threads_get());
    if (force && !o.resume) { /* a fresh run: the old checkpoint must not be resumed by a later --resume */
        char p[XA_PATH_MAX];
        static const char *const old[] = {"checkpoint", "checkpoint.old", "checkpoint.tmp"};
        for (size_t i = 0; i < sizeof old / sizeof *old; i++)
            if (xa_path_join(p, sizeof p, o.out_dir, old[i]) || xa_file_remove_tree(p)) return cli_fail();
    }
    xa_pretrain_result r;
    if (xa_pretrain(&o, &r) != XA_STATUS_OK) return cli_fail();
    char dur[32];
    if (r.tokens_per_s == 0.0) {
        printf("pretrain: the checkpoint in %s is already at step %lld of %lld; nothing to do\n", o.out_dir,
               (long long)r.steps_done, (long long)o.steps);
        return CLI_EXIT_OK;
    }
    printf("pretrain: step %lld, MLM loss %.4f -> %.4f, %.0f tokens/s, %s\n", (long long)r.steps_done,
           r.first_loss, r.last_loss, r.tokens_per_s, xa_format_duration(r.seconds, dur, sizeof dur));
    if (o.align_weight > 0)
        printf("pretrain: alignment loss %.4f, in-batch retrieval accuracy %.3f (last window)\n", r.last_align_loss,
               r.last_align_acc);
    if (r.steps_done >= o.steps) printf("model saved to %s\n", o.out_dir);
    return CLI_EXIT_OK;
}
