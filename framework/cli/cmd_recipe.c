/* xadapt train / run / eval: the recipe workflow (DESIGN.md §5).
 *   xadapt train RECIPE --phase pretrain|lang|task|fusion|finetune [--lang CODE] [--seed N] [--force]
 *   xadapt run RECIPE [--force PHASE] [--dry-run]   every phase in order
 *   xadapt eval RECIPE      the zero-shot transfer table for every target language and setup
 * Each command parses its arguments, loads the recipe and hands it to pipeline/: validate all of
 * it, build the plan, then (xa_pipeline_run) refuse stale outputs, write resolved-<task>.yaml,
 * train what the plan says and evaluate; --dry-run prints the plan instead. The output layout
 * is described in pipeline/run.c. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "pipeline/pipeline.h"
#include "tensor/tensor.h"


#define MAX_SETS 64

typedef struct recipe_args {
    const char *recipe;
    const char *sets[MAX_SETS];
    int n_sets;
    const char *phase;
    const char *lang;
    int64_t seed;
    int has_seed;
    int resume;
    int64_t threads;
    int force;
    const char *precision;
} recipe_args;

/* ---- the commands -------------------------------------------------------------------------------- */

static void print_help(const char *cmd) {
    if (!strcmp(cmd, "train")) {
        printf("usage: xadapt train RECIPE --phase PHASE [OPTIONS]\n\n"
               "Run one phase of a recipe: pretrain (the base), lang (one language adapter per\n"
               "language, MLM, base frozen), task (the task adapter on Stack(lang:src, task) with\n"
               "its head), fusion (Fuse over the language adapters under the task adapter),\n"
               "finetune (the full fine-tuning reference: the whole encoder and a head, no adapters).\n"
               "Outputs made from the same settings are skipped, outputs made from other settings\n"
               "are an error (exit 2) unless --force; interrupted runs continue from their checkpoint.\n\n");
    } else if (!strcmp(cmd, "run")) {
        printf("usage: xadapt run RECIPE [OPTIONS]\n\n"
               "Run every phase of the recipe in order (pretrain, lang, task, fusion, finetune, eval),\n"
               "skipping outputs made from the same settings and continuing interrupted ones.\n"
               "The whole recipe (every data file) is checked before anything trains.\n\n");
    } else {
        printf("usage: xadapt eval RECIPE [OPTIONS]\n\n"
               "Evaluate zero-shot transfer: for the source and every target language, each setup\n"
               "of the recipe's eval phase (task_only, src_stack, madx, madx2, fusion, in_language,\n"
               "full_ft), mean and spread over the recipe's seeds. Prints a Markdown table and writes\n"
               "OUTPUT/eval/TASK/results.{md,json,csv,svg} and raw.jsonl (replaced only by a complete set),\n"
               "and the per-class report beside them: per_class.{md,json,csv,jsonl} (precision, recall,\n"
               "F1, support per class or entity type, per language and setup) and for classification\n"
               "the confusion matrices, confusion.csv and confusion_SETUP.svg.\n\n");
    }
    printf("options:\n");
    if (!strcmp(cmd, "train")) {
        printf("  -p, --phase NAME     pretrain, lang, task, fusion or finetune (required)\n"
               "  -l, --lang CODE      lang phase: only this language\n"
               "      --seed N         task/fusion/finetune: only this seed of the recipe's seeds\n"
               "  -f, --force          retrain the phase's outputs from scratch\n");
    }
    if (!strcmp(cmd, "run"))
        printf("  -f, --force PHASE    retrain PHASE and the phases built on it from scratch (finetune:\n"
               "                       only itself; pretrain forces it too)\n");
    if (strcmp(cmd, "eval"))
        printf("  -n, --dry-run        print the plan (trained / skipped / evaluated) and exit\n");
    printf("      --set KEY=VALUE  override a recipe key (repeatable), e.g. --set phases.task.lr=3e-4\n"
           "  -j, --threads N      threads (default: the recipe's, else all cores)\n"
           "      --precision P    fp32 or bf16 matrix products (bf16 operands, fp32 accumulation) for\n"
           "                       every phase, over the recipe's precision keys; bf16 needs AVX512-BF16\n"
           "                       (else fp32, with a warning); recorded in each output's provenance\n"
           "  -q, --quiet          no progress lines, only warnings and errors (the results still print)\n"
           "  -h, --help           show this help\n");
    if (strcmp(cmd, "eval"))
        printf("\nEvery training run writes, beside its outputs: metrics.jsonl (typed rows: \"train\" per\n"
               "logged window, \"eval\" per evaluation), train.log and metrics.svg (its loss curves;\n"
               "'xadapt plot DIR' redraws them).\n");
}

/* The plan, as --dry-run prints it. */
static void print_plan(const xa_plan *pl, xa_phase_kind only) {
    const xa_recipe *r = pl->r;
    printf("plan for %s (output %s):\n", r->path, r->output);
    for (int i = 0; i < pl->n; i++) {
        const xa_artefact *a = &pl->a[i];
        const char *what = !a->selected && a->state != XA_ART_STALE ? "(not this command)" : xa_art_state_name(a->state);
        printf("  %-8s %-28s %s%s%s\n", what, a->label, a->dir, a->state == XA_ART_STALE ? ": " : "",
               a->state == XA_ART_STALE ? a->why : "");
    }
    for (int i = 0; i < r->n_phases; i++) {
        const xa_cfg_phase *p = &r->phases[i];
        if (p->kind != XA_PHASE_EVAL || (only != XA_PHASE_N && only != XA_PHASE_EVAL)) continue;
        printf("  evaluate %s on %d language%s x %d seed%s:", r->task_name, 1 + r->n_targets, r->n_targets ? "s" : "",
               r->n_seeds, r->n_seeds > 1 ? "s" : "");
        for (int s = 0; s < p->n_setups; s++) printf(" %s", p->setups[s]);
        printf("\n");
    }
}

static int run_recipe_cmd(const char *cmd, int argc, char **argv) {
    enum { OPT_SET = 256, OPT_SEED, OPT_PRECISION };
    const int is_run = !strcmp(cmd, "run");
    static const struct option opts_train[] = {
        {"phase", required_argument, NULL, 'p'}, {"lang", required_argument, NULL, 'l'},
        {"set", required_argument, NULL, OPT_SET}, {"seed", required_argument, NULL, OPT_SEED},
        {"force", no_argument, NULL, 'f'},       {"resume", no_argument, NULL, 'r'},
        {"dry-run", no_argument, NULL, 'n'},     {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {NULL, 0, NULL, 0},
    };
    static const struct option opts_run[] = {
        {"phase", required_argument, NULL, 'p'}, {"lang", required_argument, NULL, 'l'},
        {"set", required_argument, NULL, OPT_SET}, {"seed", required_argument, NULL, OPT_SEED},
        {"force", required_argument, NULL, 'f'}, {"resume", no_argument, NULL, 'r'},
        {"dry-run", no_argument, NULL, 'n'},     {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {NULL, 0, NULL, 0},
    };
    recipe_args a;
    memset(&a, 0, sizeof a);
    const char *force_phase = NULL;
    int dry_run = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, is_run ? ":p:l:f:rnj:qh" : ":p:l:frnj:qh", is_run ? opts_run : opts_train,
                            NULL)) != -1) {
        switch (c) {
        case 'p': a.phase = optarg; break;
        case 'l': a.lang = optarg; break;
        case OPT_SET:
            if (a.n_sets >= MAX_SETS) return cli_usage_error(cmd, "too many --set options");
            a.sets[a.n_sets++] = optarg;
            break;
        case OPT_SEED:
            if (!cli_parse_i64(cmd, "--seed", optarg, 0, INT64_MAX, &a.seed)) return CLI_EXIT_USAGE;
            a.has_seed = 1;
            break;
        case 'f':
            a.force = 1;
            force_phase = is_run ? optarg : NULL;
            break;
        case OPT_PRECISION: {
            xa_precision pr;
            if (!cli_parse_precision(cmd, optarg, &pr)) return CLI_EXIT_USAGE;
            a.precision = optarg;
            break;
        }
        case 'r': a.resume = 1; break; /* resuming is the default; accepted for clarity */
        case 'n': dry_run = 1; break;
        case 'j':
            if (!cli_parse_i64(cmd, "--threads", optarg, 1, 1024, &a.threads)) return CLI_EXIT_USAGE;
            break;
        case 'q': cli_set_quiet(); break;
        case 'h': print_help(cmd); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error(cmd, "missing RECIPE (a YAML file)");
    a.recipe = argv[optind++];
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    xa_phase_kind only = XA_PHASE_N;
    if (!strcmp(cmd, "train")) {
        if (!a.phase) return cli_usage_error(cmd, "missing --phase (pretrain, lang, task, fusion or finetune)");
        if (xa_phase_kind_parse(a.phase, &only) || only == XA_PHASE_EVAL)
            return cli_usage_error(cmd, "unknown phase '%s' (pretrain, lang, task, fusion or finetune)", a.phase);
    } else if (a.phase || a.lang || a.has_seed) {
        return cli_usage_error(cmd, "--phase, --lang and --seed belong to 'xadapt train'");
    }
    if (!strcmp(cmd, "eval")) only = XA_PHASE_EVAL;
    xa_plan_opts po = xa_plan_opts_default();
    po.only = only;
    po.lang = a.lang;
    po.has_seed = a.has_seed;
    po.seed = (uint64_t)a.seed;
    if (force_phase) {
        xa_phase_kind fk;
        if (xa_phase_kind_parse(force_phase, &fk) || fk == XA_PHASE_EVAL)
            return cli_usage_error(cmd, "--force: unknown phase '%s' (pretrain, lang, task, fusion or finetune)",
                                   force_phase);
        po.force = fk;
    } else if (a.force) {
        po.force = only; /* train --force: the phase it trains */
    }

    static xa_recipe r; /* large: keep it off the stack */
    if (xa_recipe_load(&r, a.recipe, a.sets, a.n_sets)) return cli_fail();
    xa_threads_set(a.threads ? (int)a.threads : r.threads);
    if (a.precision) /* every phase, over the recipe's keys */
        for (int i = 0; i < r.n_phases; i++) snprintf(r.phases[i].precision, sizeof r.phases[i].precision, "%s", a.precision);
    for (int i = 0; i < r.n_phases && !a.precision; i++) { /* the recipe's keys (--precision warned) */
        const xa_cfg_phase *p = &r.phases[i];
        if (!strcmp(p->precision, "bf16") && xa_pipeline_precision(p) != XA_PRECISION_BF16) {
            XA_LOG_WARN("%s phase: precision bf16 asked, but this CPU has no bf16 kernel (AVX512-BF16): fp32 products",
                        xa_phase_kind_name(p->kind));
            break;
        }
    }
    if (only != XA_PHASE_N && only != XA_PHASE_EVAL && xa_recipe_phase(&r, only) < 0) {
        fprintf(stderr, "xadapt %s: the recipe %s has no %s phase\n", cmd, a.recipe, a.phase);
        return CLI_EXIT_USAGE;
    }
    /* plan -> validate -> run: nothing is written before the whole recipe checks out */
    static xa_plan pl;
    xa_status st = xa_pipeline_validate(&r);
    if (!st) st = xa_plan_build(&pl, &r, &po);
    if (st) return cli_fail();
    if (dry_run) {
        print_plan(&pl, only);
        st = xa_plan_check(&pl);
        xa_plan_free(&pl);
        return st ? cli_fail() : CLI_EXIT_OK;
    }
    double t0 = xa_time_now();
    st = xa_pipeline_run(&pl, &po, stdout);
    xa_plan_free(&pl);
    if (st) return cli_fail();
    char dur[32];
    if (!xa_progress_quiet())
        fprintf(stderr, "%s: done in %s\n", cmd, xa_format_duration(xa_time_now() - t0, dur, sizeof dur));
    return CLI_EXIT_OK;
}

int cli_cmd_train(int argc, char **argv) { return run_recipe_cmd("train", argc, argv); }
int cli_cmd_run(int argc, char **argv) { return run_recipe_cmd("run", argc, argv); }
int cli_cmd_eval(int argc, char **argv) { return run_recipe_cmd("eval", argc, argv); }
