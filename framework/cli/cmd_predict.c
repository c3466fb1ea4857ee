/* xadapt predict: lines on stdin, one JSON line per input on stdout, through a stack of adapters
 * over one loaded base model (many adapters served on one base with --per-line-stack).
 *
 *   xadapt predict --model OUT --stack lang:de,task:topic        (an xadapt recipe output dir)
 *   xadapt predict --base BASE --adapter DIR... --head DIR --setup "Stack(de, topic)"
 *   xadapt predict --base BASE --setup-dir DIR   (AdapterHub's save_adapter_setup layout, or an
 *                                                  xadapt final/ directory)
 *   ... --per-line-stack     each line is "STACK<TAB>TEXT", STACK as for --stack (or setup text)
 *   ... --hidden-states F    also write every input's final hidden states to a safetensors file
 *   ... --ids                each line is token ids, printed: the head's raw scores (any head type;
 *                            to compare with another implementation on the same ids)
 *
 * Classification lines are texts; tagging lines are whitespace-separated words (each word gets a
 * tag, from its first piece); multiple-choice and question-answering lines are JSON objects, read
 * as data/ reads a line of such a task file (labels and answers optional) and answered with the
 * windows and postprocessing eval scores with (data/qa.c, eval/squad.c). Adapters are loaded on
 * first use and stay loaded. */
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "compose/compose.h"
#include "config/config.h"
#include "data/data.h"
#include "eval/eval.h"
#include "heads/heads.h"
#include "hub/hub.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "pipeline/pipeline.h"
#include "tensor/tensor.h"
#include "tokenizer/tok.h"

#define MAX_ADAPTERS 32
#define MAX_LINE (1 << 20)
#define PREDICT_IDS_ROWS 16 /* --ids: the most rows (multiple-choice choices) of one line */

typedef struct predictor {
    xa_tok *tok;             /* SentencePiece (XLM-R) or WordPiece (BERT), from the base */
    xa_encoder enc;
    xa_composer *cp;
    xa_head head;
    xa_head_file_config hc;
    int have_head;
    int pair;           /* classification lines "TEXT<TAB>TEXT_PAIR" are sentence pairs */
    int ids;            /* --ids: lines are token ids, output the head's raw scores */
    char head_dir[XA_PATH_MAX];
    xa_encoder_acts acts;
    int T;
    const char *model_dir;   /* --model: the recipe output */
    xa_recipe *recipe;
    /* multiple-choice and QA lines: JSON objects read as data/ reads a task file */
    const xa_task_fields *fields; /* the recipe's data.task.fields, or NULL: the defaults */
    int doc_stride;               /* QA windows (0: data/qa.c's default) */
    xa_qa_post post;              /* QA postprocessing (eval/squad.c), as eval scores */
    int64_t lineno;               /* the stdin line being read (messages) */
    /* hidden states */
    float *hs;               /* (total tokens, C) */
    size_t hs_n, hs_cap;
    float *pooled;           /* (n inputs, C) */
    int64_t *offsets;        /* (n inputs + 1) */
    size_t n_inputs, in_cap;
} predictor;

static void print_help(void) {
    printf("usage: xadapt predict (--model DIR --stack SPEC | --base DIR --adapter DIR... --head DIR --setup TEXT\n"
           "                       | --base DIR [--adapter DIR...] --setup-dir DIR)\n"
           "                      [--per-line-stack] [--hidden-states FILE] [OPTIONS] < lines\n"
           "\n"
           "Read one input per line on stdin and print one JSON line per input on stdout:\n"
           "classification {\"label\", \"probs\"}, tagging {\"tokens\", \"tags\", \"probs\"} (lines are\n"
           "whitespace-separated words). With --pair (the default for a --model recipe of type\n"
           "pair_classification) a line TEXT<TAB>TEXT_PAIR is one sentence pair.\n"
           "Multiple choice: a line is a JSON object as in a COPA / XCOPA file, {\"premise\", \"choice1\",\n"
           "\"choice2\"[, \"question\": \"cause\" | \"effect\"]} (with --model, the recipe's data.task.fields),\n"
           "the label optional; output {\"choice\": INDEX, \"probs\": [one per choice]}.\n"
           "Question answering: a line is {\"question\", \"context\"[, \"id\"]} (answers optional); the\n"
           "context is cut into windows as eval cuts it and the answer is HF run_qa's postprocessing:\n"
           "{\"id\", \"answer\": TEXT, \"start\": CHARACTER OFFSET, \"score\": START + END LOGIT,\n"
           "\"windows\": N}; \"answer\": \"\" with \"start\": null is SQuAD 2.0's null answer (score: the\n"
           "null score), \"empty\" with \"start\": null HF's placeholder when no span counts.\n"
           "\n"
           "options:\n"
           "  -m, --model DIR        an xadapt recipe output directory (its resolved-TASK.yaml names the base)\n"
           "  -s, --stack SPEC       lang:CODE,task:NAME (with --model): Stack(CODE, NAME), the language\n"
           "                         adapter from DIR/lang/CODE, the task adapter and head from\n"
           "                         DIR/task/NAME/seedK/final; fusion:NAME uses the fusion run\n"
           "  -b, --base DIR         a Hugging Face base model directory (instead of --model); its\n"
           "                         tokenizer: sentencepiece.bpe.model, vocab.txt (BERT) or tokenizer.json\n"
           "  -a, --adapter DIR      an AdapterHub adapter directory to load (repeatable)\n"
           "      --head DIR         the prediction head's directory\n"
           "      --setup TEXT       the setup, e.g. \"Stack(de, topic)\"\n"
           "      --setup-dir DIR    a setup directory: DIR/adapter_setup.json with DIR/<name>/ per\n"
           "                         adapter and the head in DIR/<head>/ (AdapterHub's save_adapter_setup,\n"
           "                         and every xadapt final/); adapters given with --adapter are kept\n"
           "      --seed N           with --model: which seed's task adapter (default: the first)\n"
           "      --per-line-stack   each line is SPEC<TAB>TEXT (SPEC as --stack, or setup text)\n"
           "      --hidden-states F  write the final hidden states of every input (hidden, offsets,\n"
           "                         pooled <s> vectors) to the safetensors file F\n"
           "      --ids              each line is the token ids of one input, specials included\n"
           "                         (\"0 581 2\"; multiple choice: the choices' rows joined by \" | \"),\n"
           "                         token types 0; prints {\"logits\": [[...], ...]}, the head's raw\n"
           "                         scores: classification 1 row of K, tagging and question answering\n"
           "                         one row per token (K labels; start, end), multiple choice 1 row\n"
           "                         of one score per choice\n"
           "  -t, --seq-len N        tokens per input (longer inputs are cut, </s> kept). Default: with\n"
           "                         --model, the seq_len of the recipe's eval phase (128 without one),\n"
           "                         so predict sees what eval scored; with --head or --setup-dir, the\n"
           "                         seq_len in the provenance of the run that trained it; else 256.\n"
           "                         --max-len is the old name\n"
           "      --precision P      fp32 (default) or bf16 matrix products (AVX512-BF16)\n"
           "question answering (defaults: with --model the recipe's data.task keys, else HF's):\n"
           "      --doc-stride N     tokens shared by consecutive windows (default min(128, seq_len / 3))\n"
           "      --max-answer-length N  the longest answer in tokens (default 30)\n"
           "      --n-best-size N    start / end candidates per window (default 20)\n"
           "      --version-2-with-negative  SQuAD 2.0: answer \"\" when the null score beats the best\n"
           "                         span by more than the threshold\n"
           "      --null-score-diff-threshold X  that threshold (default 0.0; needs SQuAD 2.0)\n"
           "  -j, --threads N        threads (default: all cores)\n"
           "  -h, --help             show this help\n");
}

/* The default sequence length, so that predict cuts inputs where eval did: with a recipe (--model)
 * its eval phase's seq_len (the last eval phase; 128, the default eval's, without one); with a head
 * or setup directory, "seq_len: N" of the provenance of the run that trained it
 * (xadapt-provenance.txt in the directory or its two parents: OUT/task/NAME/seedK/final/head,
 * OUT/task/NAME/seedK/final); else 256. why gets the source. */
static int default_seq_len(const xa_recipe *r, const char *head, char *why, size_t n) {
    if (r) {
        int T = 0;
        for (int i = 0; i < r->n_phases; i++)
            if (r->phases[i].kind == XA_PHASE_EVAL) T = r->phases[i].seq_len;
        snprintf(why, n, T ? "phases.eval.seq_len of %.1000s" : "the default eval's, %.1000s has no eval phase", r->path);
        return T ? T : 128;
    }
    char dir[XA_PATH_MAX], path[XA_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", head ? head : "");
    for (int up = 0; head && up < 3; up++) {
        snprintf(path, sizeof path, "%s/xadapt-provenance.txt", dir);
        char *text = NULL;
        if (!xa_file_read(&text, NULL, path, 1 << 20)) {
            const char *k = strstr(text, "\nseq_len: ");
            int T = k ? atoi(k + 10) : 0;
            free(text);
            if (T >= 4) {
                snprintf(why, n, "seq_len of %.4000s", path);
                return T;
            }
        }
        xa_error_clear();
        char *slash = strrchr(dir, '/');
        if (!slash) break;
        *slash = '\0';
    }
    snprintf(why, n, "the default");
    return 256;
}

/* Load an adapter directory unless an adapter of that name is loaded. */
static xa_status ensure_adapter(predictor *p, const char *dir, const char *name) {
    if (name && xa_composer_adapter(p->cp, name)) return XA_STATUS_OK;
    return xa_hub_load_adapter(p->cp, dir, name, NULL, 0, 0, NULL);
}

static xa_status ensure_head(predictor *p, const char *dir) {
    if (p->have_head && !strcmp(p->head_dir, dir)) return XA_STATUS_OK;
    if (p->have_head) xa_head_free(&p->head);
    p->have_head = 0;
    /* rows: a multiple-choice head scores up to XA_TASK_MAX_CHOICES <s> states at once (--ids:
     * PREDICT_IDS_ROWS, one line's rows) */
    const int rows = PREDICT_IDS_ROWS > XA_TASK_MAX_CHOICES ? PREDICT_IDS_ROWS : XA_TASK_MAX_CHOICES;
    xa_status st = xa_hub_load_head(dir, &p->head, rows, p->T, 0, &p->hc);
    if (st) return st;
    if (p->head.C != p->enc.cfg.C) {
        xa_head_free(&p->head);
        return xa_error_set(XA_STATUS_SHAPE, dir, "the base model's hidden size", "wrong base model?",
                            "head for hidden size %d, base has %d", p->head.C, p->enc.cfg.C);
    }
    xa_hub_check_fingerprint(dir, p->hc.base_fingerprint, &p->enc.cfg);
    snprintf(p->head_dir, sizeof p->head_dir, "%s", dir);
    p->have_head = 1;
    return XA_STATUS_OK;
}

/* The resolved recipe of an output: resolved-<task>.yaml for the task (or fusion) the stack names,
 * else the only resolved-*.yaml, else a legacy resolved.yaml. */
static xa_status resolved_recipe(char *out, size_t n, const char *model, const char *stack) {
    const char *t = stack ? strstr(stack, "task:") : NULL;
    if (!t && stack) t = strstr(stack, "fusion:");
    if (t) {
        t = strchr(t, ':') + 1;
        char name[96];
        snprintf(name, sizeof name, "resolved-%.*s.yaml", (int)strcspn(t, ", "), t);
        xa_status st = xa_path_join(out, n, model, name);
        if (st || access(out, F_OK) == 0) return st;
    }
    char pat[XA_PATH_MAX];
    xa_status st = xa_path_join(pat, sizeof pat, model, "resolved-*.yaml");
    if (st) return st;
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc >= 1) {
        snprintf(out, n, "%s", g.gl_pathv[0]);
        globfree(&g);
        return XA_STATUS_OK;
    }
    globfree(&g);
    return xa_path_join(out, n, model, "resolved.yaml");
}

/* Resolve "lang:de,task:topic" against the recipe output: load what it names, activate the stack,
 * load the head. */
static xa_status use_stack_spec(predictor *p, const char *spec, int64_t seed) {
    const xa_recipe *r = p->recipe;
    char lang[64] = "", task[64] = "", fusion[64] = "";
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        char *colon = strchr(tok, ':');
        if (!colon) return xa_error_set(XA_STATUS_USAGE, spec, "ROLE:NAME items (lang:CODE, task:NAME, fusion:NAME)", NULL,
                                        "'%s' has no role", tok);
        *colon = 0;
        const char *v = colon + 1;
        if (!strcmp(tok, "lang")) snprintf(lang, sizeof lang, "%s", v);
        else if (!strcmp(tok, "task")) snprintf(task, sizeof task, "%s", v);
        else if (!strcmp(tok, "fusion")) snprintf(fusion, sizeof fusion, "%s", v);
        else return xa_error_set(XA_STATUS_USAGE, spec, "lang, task or fusion", NULL, "unknown role '%s'", tok);
    }
    if (!task[0] && fusion[0]) snprintf(task, sizeof task, "%s", fusion);
    if (!task[0]) return xa_error_set(XA_STATUS_USAGE, spec, "a task:NAME item", NULL, "no task adapter named");
    uint64_t s = seed >= 0 ? (uint64_t)seed : r->seeds[0];
    char run[XA_PATH_MAX], tdir[XA_PATH_MAX], hdir[XA_PATH_MAX], ldir[XA_PATH_MAX], tmp[XA_PATH_MAX], setup[2048];
    snprintf(tmp, sizeof tmp, "seed%" PRIu64, s);
    /* OUT/{task|fusion}/NAME/seedK/final and OUT/task/NAME/seedK/final/adapter */
    int nr = snprintf(run, sizeof run, "%s/%s/%s/%s/final", p->model_dir, fusion[0] ? "fusion" : "task", task, tmp);
    int nh = snprintf(hdir, sizeof hdir, "%s/head", run);
    int nt = snprintf(tdir, sizeof tdir, "%s/task/%s/%s/final/adapter", p->model_dir, task, tmp);
    xa_status st = XA_STATUS_OK;
    if (nr >= (int)sizeof run || nh >= (int)sizeof hdir || nt >= (int)sizeof tdir)
        return xa_error_set(XA_STATUS_USAGE, p->model_dir, NULL, NULL, "path too long");
    if (access(tdir, F_OK) != 0)
        return xa_error_set(XA_STATUS_NOT_FOUND, tdir, "a trained task adapter",
                            "train it first: xadapt train RECIPE --phase task", "no task adapter '%s'", task);
    if ((st = ensure_adapter(p, tdir, task))) return st;
    if (fusion[0]) {
        int len = snprintf(setup, sizeof setup, "Stack(Fuse(");
        const char *langs[XA_CFG_MAX_LANGS + 1];
        int n = 0;
        langs[n++] = r->source;
        for (int i = 0; i < r->n_targets; i++) langs[n++] = r->targets[i];
        for (int i = 0; i < n && !st; i++) {
            if (snprintf(ldir, sizeof ldir, "%s/lang/%s", p->model_dir, langs[i]) >= (int)sizeof ldir)
                st = xa_error_set(XA_STATUS_USAGE, p->model_dir, NULL, NULL, "path too long");
            if (!st) st = ensure_adapter(p, ldir, langs[i]);
            len += snprintf(setup + len, sizeof setup - (size_t)len, "%s%s", i ? ", " : "", langs[i]);
        }
        snprintf(setup + len, sizeof setup - (size_t)len, "), %s)", task);
        char fdir[XA_PATH_MAX];
        if (!st) st = xa_path_join(fdir, sizeof fdir, run, "fusion");
        char fname[2048];
        int fl = 0;
        for (int i = 0; i < n; i++) fl += snprintf(fname + fl, sizeof fname - (size_t)fl, "%s%s", i ? "," : "", langs[i]);
        if (!st && !xa_composer_fusion(p->cp, fname)) st = xa_hub_load_fusion(p->cp, fdir, 0, NULL);
    } else if (lang[0]) {
        if (snprintf(ldir, sizeof ldir, "%s/lang/%s", p->model_dir, lang) >= (int)sizeof ldir)
            st = xa_error_set(XA_STATUS_USAGE, p->model_dir, NULL, NULL, "path too long");
        if (!st && access(ldir, F_OK) != 0)
            st = xa_error_set(XA_STATUS_NOT_FOUND, ldir, "a trained language adapter", NULL, "no language adapter '%s'", lang);
        if (!st) st = ensure_adapter(p, ldir, lang);
        snprintf(setup, sizeof setup, "Stack(%s, %s)", lang, task);
    } else {
        snprintf(setup, sizeof setup, "Stack(%s)", task);
    }
    if (st) return st;
    xa_setup *su = NULL;
    st = xa_setup_parse(&su, setup, spec);
    if (!st) st = xa_composer_activate(p->cp, su, spec);
    xa_setup_free(su);
    if (!st) st = xa_composer_plan(p->cp, 1, p->T, 0, 0);
    if (!st) st = ensure_head(p, hdir);
    return st;
}

/* --setup-dir: the directory's adapters (those not loaded yet), its head unless --head names one,
 * and its setup. */
static xa_status use_setup_dir(predictor *p, const char *dir, const char *head) {
    xa_setup *su = NULL;
    char hdir[XA_PATH_MAX];
    xa_status st = xa_hub_load_setup_dir(p->cp, dir, &su, hdir, sizeof hdir);
    if (!st && !su)
        st = xa_error_set(XA_STATUS_CONFIG, dir, "an adapter setup", NULL,
                          "adapter_setup.json has a null adapter_setup (a full fine-tuning output has no adapters to stack)");
    if (!st && !head && !hdir[0])
        st = xa_error_set(XA_STATUS_NOT_FOUND, dir, "a head directory (head_config.json) named by head_setup, or head/",
                          "give --head DIR", "no prediction head in the setup directory");
    if (!st) st = ensure_head(p, head ? head : hdir);
    if (!st) st = xa_composer_activate(p->cp, su, dir);
    xa_setup_free(su);
    if (!st) st = xa_composer_plan(p->cp, 1, p->T, 0, 0);
    return st;
}

static xa_status use_setup_text(predictor *p, const char *text) {
    xa_setup *su = NULL;
    xa_status st = xa_setup_parse(&su, text, "--setup");
    if (!st) st = xa_composer_activate(p->cp, su, "--setup");
    xa_setup_free(su);
    if (!st) st = xa_composer_plan(p->cp, 1, p->T, 0, 0);
    return st;
}

/* A JSON string; bytes that are not valid UTF-8 (input text copied into "tokens") become U+FFFD,
 * so every output line stays valid JSON. */
static void json_string(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c >= 0x80 ? xa_utf8_char(s + i, n - i) : 1;
        if (k == 0) {
            fputs("\\ufffd", out);
            continue;
        }
        if (k > 1) {
            fwrite(s + i, 1, k, out);
            i += k - 1;
            continue;
        }
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void softmax(float *p, const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += p[i] = expf(x[i] - mx);
    for (int i = 0; i < n; i++) p[i] = (float)(p[i] / s);
}

static xa_status keep_hidden(predictor *p, const float *h, int len) {
    const size_t C = (size_t)p->enc.cfg.C;
    if (p->hs_n + (size_t)len > p->hs_cap) {
        size_t cap = (p->hs_cap + (size_t)len) * 2;
        float *n = realloc(p->hs, cap * C * sizeof(float));
        if (!n) return xa_error_set(XA_STATUS_NOMEM, "--hidden-states", NULL, NULL, "out of memory");
        p->hs = n;
        p->hs_cap = cap;
    }
    if (p->n_inputs + 2 > p->in_cap) {
        size_t cap = (p->in_cap + 2) * 2;
        float *pn = realloc(p->pooled, cap * C * sizeof(float));
        int64_t *on = realloc(p->offsets, (cap + 1) * sizeof(int64_t));
        if (pn) p->pooled = pn;
        if (on) p->offsets = on;
        if (!pn || !on) return xa_error_set(XA_STATUS_NOMEM, "--hidden-states", NULL, NULL, "out of memory");
        p->in_cap = cap;
    }
    memcpy(p->hs + p->hs_n * C, h, (size_t)len * C * sizeof(float));
    memcpy(p->pooled + p->n_inputs * C, h, C * sizeof(float));
    if (!p->n_inputs) p->offsets[0] = 0;
    p->hs_n += (size_t)len;
    p->n_inputs++;
    p->offsets[p->n_inputs] = (int64_t)p->hs_n;
    return XA_STATUS_OK;
}

/* Encoder forward of one row of ids (types NULL or all 0: none); the last hidden state (len, C). */
static const float *forward_row(predictor *p, const int32_t *ids, const int32_t *types, int len, xa_status *st) {
    int has_types = 0;
    for (int t = 0; types && t < len; t++) has_types |= types[t] != 0;
    int32_t lens[1] = {len};
    xa_batch b = {(int32_t *)ids, has_types ? (int32_t *)types : NULL, lens, 1, len};
    xa_hook hook;
    xa_composer_hook(p->cp, &hook);
    *st = xa_encoder_forward(&p->enc, &p->acts, &b, &hook, 0, NULL);
    return *st ? NULL : xa_encoder_hidden(&p->enc, &p->acts, p->enc.cfg.L - 1);
}

static xa_status check_finite(const float *x, size_t n, size_t per) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) /* nan or inf would print as invalid JSON */
            return xa_error_set(XA_STATUS_RUNTIME, "predict", "finite scores",
                                "check the adapters, fusion and head files (damaged or diverged weights?)",
                                "the model gives a non-finite score at position %zu", i / per);
    return XA_STATUS_OK;
}

/* A JSON line as data/ reads a line of a task file of the head's kind (multiple choice: COPA's
 * {premise, choice1, choice2[, question]} or the recipe's fields; QA: {question, context[, id]}),
 * labels and answers optional. */
static xa_status read_record(predictor *p, xa_task_data *d, const char *text, size_t n, xa_task_kind kind) {
    xa_task_input in = {kind, XA_TASK_FORMAT_JSONL, p->fields, NULL, 0, 0, p->doc_stride};
    in.bert_pairs = p->enc.cfg.arch == XA_ARCH_BERT && p->enc.cfg.TV >= 2;
    xa_labels labels;
    memset(&labels, 0, sizeof labels);
    char name[48]; /* messages read "stdin line N:1: ..." */
    snprintf(name, sizeof name, "stdin line %lld", (long long)p->lineno);
    return xa_task_data_load_text(d, p->tok, name, text, n, &in, p->T, &labels, 1);
}

/* Multiple choice: every choice is one encoder row (the pair premise + prompt, choice, cut as
 * eval cuts it); the head scores their <s> states and the softmax runs over the choices. */
static xa_status predict_choice(predictor *p, const char *text, size_t n, int keep, FILE *out) {
    xa_task_data d;
    xa_status st = read_record(p, &d, text, n, XA_TASK_KIND_CHOICE);
    if (st) return st;
    const int K = p->head.K, C = p->enc.cfg.C;
    const xa_task_example *ex = &d.ex[0];
    float *pooled = NULL, logits[XA_TASK_MAX_CHOICES], prob[XA_TASK_MAX_CHOICES];
    if (d.n_choices != K) {
        st = xa_error_set(XA_STATUS_USAGE, "stdin", "as many choices as the head scores", "wrong head for this data?",
                          "line %lld has %d choices, the head %d", (long long)p->lineno, d.n_choices, K);
        goto done;
    }
    pooled = malloc((size_t)K * C * sizeof *pooled); /* (K, 1, C) the <s> state of each choice */
    if (!pooled) {
        st = xa_error_set(XA_STATUS_NOMEM, "predict", NULL, NULL, "out of memory");
        goto done;
    }
    for (int c = 0; c < K && !st; c++) {
        const size_t at = (size_t)c * ex->len;
        const float *h = forward_row(p, ex->ids + at, ex->types + at, ex->choice_len[c], &st);
        if (!st) memcpy(pooled + (size_t)c * C, h, (size_t)C * sizeof *pooled);
        if (!st && keep) st = keep_hidden(p, h, ex->choice_len[c]);
    }
    if (st) goto done;
    xa_head_forward(&p->head, pooled, NULL, K, 1, logits, 0, NULL);
    if ((st = check_finite(logits, (size_t)K, 1))) goto done;
    softmax(prob, logits, K);
    int best = 0;
    for (int k = 1; k < K; k++)
        if (prob[k] > prob[best]) best = k;
    fprintf(out, "{\"choice\": %d, \"probs\": [", best);
    for (int k = 0; k < K; k++) fprintf(out, "%s%.4f", k ? ", " : "", prob[k]);
    fputs("]}\n", out);
done:
    free(pooled);
    xa_task_data_free(&d);
    return st;
}

/* Question answering: the context cut into windows with the doc stride, start / end logits per
 * window, and the answer of HF's postprocessing (eval/squad.c, the rules eval scores with). */
static xa_status predict_qa(predictor *p, const char *text, size_t n, int keep, FILE *out) {
    xa_task_data d;
    xa_status st = read_record(p, &d, text, n, XA_TASK_KIND_QA);
    if (st) return st;
    if (d.n_qa != 1) { /* a SQuAD document {"data": [...]} on one line holds many */
        xa_task_data_free(&d);
        return xa_error_set(XA_STATUS_USAGE, "stdin", "one question per line {\"question\", \"context\"[, \"id\"]}",
                            "answer a SQuAD JSON file with xadapt eval, or write it as JSON lines",
                            "line %lld holds %d questions", (long long)p->lineno, d.n_qa);
    }
    const xa_qa_example *q = &d.qa[0];
    size_t total = 0;
    for (int f = 0; f < q->n_features; f++) total += 2 * (size_t)d.ex[q->first_feature + f].len;
    float *lg = malloc((total ? total : 1) * sizeof *lg);                                 /* (sum len, 2) */
    xa_qa_window *w = malloc((size_t)(q->n_features ? q->n_features : 1) * sizeof *w); /* (n_features) */
    if (!lg || !w) st = xa_error_set(XA_STATUS_NOMEM, "predict", NULL, NULL, "out of memory");
    size_t at = 0;
    for (int f = 0; !st && f < q->n_features; f++) {
        const xa_task_example *e = &d.ex[q->first_feature + f];
        const float *h = forward_row(p, e->ids, e->types, e->len, &st);
        if (st) break;
        if (keep && (st = keep_hidden(p, h, e->len))) break;
        const int32_t lens[1] = {e->len};
        xa_head_forward_qa(&p->head, h, NULL, lens, 1, e->len, lg + at, 0, NULL);
        if ((st = check_finite(lg + at, 2 * (size_t)e->len, 2))) break;
        w[f] = (xa_qa_window){lg + at, e->offsets, e->len};
        at += 2 * (size_t)e->len;
    }
    if (!st) {
        int32_t b = 0, en = 0;
        double score = 0;
        const xa_qa_answer a = xa_qa_postprocess(w, q->n_features, &p->post, &b, &en, &score);
        fputs("{\"id\": ", out);
        json_string(out, q->id, strlen(q->id));
        fputs(", \"answer\": ", out);
        if (a == XA_QA_ANSWER_SPAN) {
            json_string(out, q->context + b, (size_t)(en - b));
            fprintf(out, ", \"start\": %" PRId64, xa_qa_byte_to_char(q->context, (size_t)b));
        } else { /* HF's texts: "" for SQuAD 2.0's null answer, "empty" when no span counts */
            fputs(a == XA_QA_ANSWER_NULL ? "\"\"" : "\"empty\"", out);
            fputs(", \"start\": null", out);
        }
        fprintf(out, ", \"score\": %.4f, \"windows\": %d}\n", score, q->n_features);
    }
    free(lg);
    free(w);
    xa_task_data_free(&d);
    return st;
}

/* Parse one --ids row: whitespace-separated decimal ids in [0, V), at most T of them. */
static xa_status parse_id_row(int32_t *ids, int *len, const char *s, size_t n, int V, int T, int64_t lineno) {
    *len = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i >= n) break;
        size_t j = i;
        int64_t v = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9' && v < INT32_MAX) v = v * 10 + (s[j++] - '0');
        if (j == i || (j < n && s[j] != ' ' && s[j] != '\t'))
            return xa_error_set(XA_STATUS_USAGE, "stdin", "token ids: decimal integers separated by spaces",
                                "--ids reads ids, not text", "line %lld: '%.*s' is not a token id", (long long)lineno,
                                (int)strcspn(s + i, " \t") > 40 ? 40 : (int)strcspn(s + i, " \t"), s + i);
        if (v >= V)
            return xa_error_set(XA_STATUS_USAGE, "stdin", "ids below the base's vocab_size", "wrong base model?",
                                "line %lld: id %lld, vocab_size is %d", (long long)lineno, (long long)v, V);
        if (*len >= T)
            return xa_error_set(XA_STATUS_USAGE, "stdin", "at most seq_len ids per row (--ids cuts nothing)",
                                "raise --seq-len", "line %lld: a row of more than %d ids", (long long)lineno, T);
        ids[(*len)++] = (int32_t)v;
        i = j;
    }
    if (*len == 0)
        return xa_error_set(XA_STATUS_USAGE, "stdin", "at least one token id per row", NULL, "line %lld: an empty row",
                            (long long)lineno);
    return XA_STATUS_OK;
}

/* --ids: one input's token ids (multiple choice: its choices' rows joined by " | "), printed as the
 * head's raw scores {"logits": [[...], ...]}: classification 1 row of K, tagging and question
 * answering one row per token, multiple choice 1 row of one score per choice. The plan is for
 * batch 1, so rows run through the encoder one at a time; their last hidden states are gathered
 * into (R, Tmax, C), zero past each row's length (the heads that take several rows read only the
 * <s> row). */
static xa_status predict_ids(predictor *p, const char *text, size_t n, int64_t lineno, int keep, FILE *out) {
    const int V = p->enc.cfg.V, C = p->enc.cfg.C, K = p->head.K, T = p->T;
    const int mc = p->head.kind == XA_HEAD_MULTIPLE_CHOICE, per_token = p->head.kind == XA_HEAD_TAGGING ||
                                                                        p->head.kind == XA_HEAD_QUESTION_ANSWERING;
    int32_t *ids = malloc((size_t)PREDICT_IDS_ROWS * T * sizeof *ids), lens[PREDICT_IDS_ROWS];
    float *hid = NULL, *logits = NULL;
    const int want_rows = mc ? K : 1;
    xa_status st = ids ? XA_STATUS_OK : xa_error_set(XA_STATUS_NOMEM, "predict", NULL, NULL, "out of memory");
    if (!st && want_rows > PREDICT_IDS_ROWS)
        st = xa_error_set(XA_STATUS_UNSUPPORTED, "predict --ids", "a multiple-choice head of at most 16 choices", NULL,
                          "the head has %d choices", K);
    int R = 0, Tmax = 0;
    for (size_t i = 0; !st && i <= n; R++) {
        const char *bar = memchr(text + i, '|', n - i);
        size_t e = bar ? (size_t)(bar - text) : n;
        if (R >= want_rows)
            st = xa_error_set(XA_STATUS_USAGE, "stdin", mc ? "one row per choice, joined by \" | \"" : "one row of ids",
                              mc ? NULL : "rows joined by '|' are for a multiple-choice head",
                              "line %lld: more than %d row(s)", (long long)lineno, want_rows);
        if (!st) st = parse_id_row(ids + (size_t)R * T, &lens[R], text + i, e - i, V, T, lineno);
        if (!st && lens[R] > Tmax) Tmax = lens[R];
        i = e + 1;
    }
    if (!st && R != want_rows)
        st = xa_error_set(XA_STATUS_USAGE, "stdin", "one row per choice, joined by \" | \"", NULL,
                          "line %lld: %d row(s), the head has %d choices", (long long)lineno, R, K);
    if (!st) {
        hid = calloc((size_t)R * Tmax * C, sizeof *hid);
        logits = malloc((size_t)R * Tmax * K * sizeof *logits);
        if (!hid || !logits) st = xa_error_set(XA_STATUS_NOMEM, "predict", NULL, NULL, "out of memory");
    }
    xa_hook hook;
    xa_composer_hook(p->cp, &hook);
    for (int r = 0; r < R && !st; r++) {
        xa_batch b = {ids + (size_t)r * T, NULL, &lens[r], 1, lens[r]};
        st = xa_encoder_forward(&p->enc, &p->acts, &b, &hook, 0, NULL);
        const float *h = st ? NULL : xa_encoder_hidden(&p->enc, &p->acts, p->enc.cfg.L - 1);
        if (h) memcpy(hid + (size_t)r * Tmax * C, h, (size_t)lens[r] * C * sizeof *hid);
        if (h && keep) st = keep_hidden(p, h, lens[r]);
    }
    if (!st) {
        if (p->head.kind == XA_HEAD_QUESTION_ANSWERING) xa_head_forward_qa(&p->head, hid, NULL, lens, R, Tmax, logits, 0, NULL);
        else xa_head_forward(&p->head, hid, NULL, R, Tmax, logits, 0, NULL);
        const int rows = per_token ? lens[0] : 1, width = K;
        fputs("{\"logits\": [", out);
        for (int r = 0; r < rows; r++) {
            fputs(r ? ", [" : "[", out);
            for (int k = 0; k < width; k++) fprintf(out, "%s%.9g", k ? ", " : "", (double)logits[(size_t)r * width + k]);
            fputc(']', out);
        }
        fputs("]}\n", out);
    }
    free(ids);
    free(hid);
    free(logits);
    return st;
}

/* One input: encode, forward, print. */
static xa_status predict_line(predictor *p, const char *text, size_t n, int keep, FILE *out) {
    const int tagging = p->head.kind == XA_HEAD_TAGGING;
    if (p->head.kind == XA_HEAD_MULTIPLE_CHOICE) return predict_choice(p, text, n, keep, out);
    if (p->head.kind == XA_HEAD_QUESTION_ANSWERING) return predict_qa(p, text, n, keep, out);
    const xa_tok_special sp = xa_tok_special_ids(p->tok);
    int32_t ids[4096], word[4096];
    int len = 0;
    const char *words[2048];
    size_t wlen[2048];
    int n_words = 0;
    xa_status st = XA_STATUS_OK;
    const char *tab = p->pair && !tagging ? memchr(text, '\t', n) : NULL;
    int32_t types[4096] = {0};
    int has_types = 0;
    if (tab) { /* a sentence pair as data/task.c encodes it: XLM-R <s> A </s></s> B </s>, BERT
                  [CLS] A [SEP] B [SEP] with token types 0 then 1; longest_first (tokenizer/tok.h) */
        xa_tok_input in;
        st = xa_tok_encode_input(p->tok, text, (size_t)(tab - text), tab + 1, n - (size_t)(tab + 1 - text),
                                 p->T < 4096 ? p->T : 4096, &in);
        if (st) return st;
        len = (int)in.n;
        memcpy(ids, in.ids, in.n * sizeof *ids);
        memcpy(types, in.types, in.n * sizeof *types);
        has_types = xa_tok_get_kind(p->tok) == XA_TOK_KIND_WORDPIECE && p->enc.cfg.TV >= 2;
        xa_tok_input_free(&in);
    } else if (!tagging) {
        int32_t *enc = NULL;
        size_t ne = 0;
        st = xa_tok_encode(p->tok, text, n, 1, &enc, &ne);
        if (st) return st;
        len = (int)(ne < (size_t)p->T ? ne : (size_t)p->T);
        memcpy(ids, enc, (size_t)len * sizeof(int32_t));
        if ((size_t)len < ne) ids[len - 1] = sp.sep;
        free(enc);
    } else {
        ids[len] = sp.cls;
        word[len++] = -1;
        size_t i = 0;
        while (i < n && n_words < 2048) {
            while (i < n && (text[i] == ' ' || text[i] == '\t')) i++;
            if (i >= n) break;
            size_t j = i;
            while (j < n && text[j] != ' ' && text[j] != '\t') j++;
            words[n_words] = text + i;
            wlen[n_words] = j - i;
            int32_t *enc = NULL;
            size_t ne = 0;
            st = xa_tok_encode(p->tok, text + i, j - i, 0, &enc, &ne);
            if (st) return st;
            if (ne == 0 && len < p->T - 1) { /* a word without pieces is <unk>, as in data/task.c */
                ids[len] = sp.unk;
                word[len++] = n_words;
            }
            for (size_t k = 0; k < ne && len < p->T - 1; k++) {
                ids[len] = enc[k];
                word[len++] = k == 0 ? n_words : -1;
            }
            free(enc);
            n_words++;
            i = j;
        }
        ids[len] = sp.sep;
        word[len++] = -1;
    }
    int32_t lens[1] = {len};
    xa_batch b = {ids, has_types ? types : NULL, lens, 1, len};
    xa_hook hook;
    xa_composer_hook(p->cp, &hook);
    st = xa_encoder_forward(&p->enc, &p->acts, &b, &hook, 0, NULL);
    if (st) return st;
    const float *h = xa_encoder_hidden(&p->enc, &p->acts, p->enc.cfg.L - 1);
    if (keep && (st = keep_hidden(p, h, len))) return st;
    const int K = p->head.K;
    float *logits = malloc((size_t)len * K * sizeof(float)), *prob = malloc((size_t)K * sizeof(float));
    if (!logits || !prob) {
        free(logits);
        free(prob);
        return xa_error_set(XA_STATUS_NOMEM, "predict", NULL, NULL, "out of memory");
    }
    xa_head_forward(&p->head, h, NULL, 1, len, logits, 0, NULL);
    /* a classification head writes one row of K scores, a tagging head one per piece */
    const size_t n_scores = tagging ? (size_t)len * K : (size_t)K;
    for (size_t i = 0; i < n_scores; i++) {
        if (isfinite(logits[i])) continue;
        free(logits);
        free(prob);
        /* nan or inf would print as invalid JSON probabilities */
        return xa_error_set(XA_STATUS_RUNTIME, "predict", "finite scores",
                            "check the adapters, fusion and head files (damaged or diverged weights?)",
                            "the model gives a non-finite score at position %zu", i / (size_t)K);
    }
    fputc('{', out);
    if (!tagging) {
        softmax(prob, logits, K);
        int best = 0;
        for (int k = 1; k < K; k++)
            if (prob[k] > prob[best]) best = k;
        fputs("\"label\": ", out);
        json_string(out, p->hc.labels[best], strlen(p->hc.labels[best]));
        fputs(", \"probs\": {", out);
        for (int k = 0; k < K; k++) {
            if (k) fputs(", ", out);
            json_string(out, p->hc.labels[k], strlen(p->hc.labels[k]));
            fprintf(out, ": %.4f", prob[k]);
        }
        fputc('}', out);
    } else {
        int tags[2048];
        float conf[2048];
        for (int w = 0; w < n_words; w++) tags[w] = 0, conf[w] = 1.0f; /* words cut by max-len: "O" */
        for (int t = 0; t < len; t++) {
            if (word[t] < 0) continue;
            softmax(prob, logits + (size_t)t * K, K);
            int best = 0;
            for (int k = 1; k < K; k++)
                if (prob[k] > prob[best]) best = k;
            tags[word[t]] = best;
            conf[word[t]] = prob[best];
        }
        fputs("\"tokens\": [", out);
        for (int w = 0; w < n_words; w++) {
            if (w) fputs(", ", out);
            json_string(out, words[w], wlen[w]);
        }
        fputs("], \"tags\": [", out);
        for (int w = 0; w < n_words; w++) {
            if (w) fputs(", ", out);
            json_string(out, p->hc.labels[tags[w]], strlen(p->hc.labels[tags[w]]));
        }
        fputs("], \"probs\": [", out);
        for (int w = 0; w < n_words; w++) fprintf(out, "%s%.4f", w ? ", " : "", conf[w]);
        fputc(']', out);
    }
    fputs("}\n", out);
    free(logits);
    free(prob);
    return XA_STATUS_OK;
}

int cli_cmd_predict(int argc, char **argv) {
    enum { OPT_HEAD = 256, OPT_SETUP, OPT_SEED, OPT_PER_LINE, OPT_HIDDEN, OPT_SETUP_DIR, OPT_PRECISION, OPT_PAIR,
           OPT_STRIDE, OPT_MAX_ANSWER, OPT_N_BEST, OPT_V2, OPT_NULL_THR, OPT_IDS };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"stack", required_argument, NULL, 's'},
        {"base", required_argument, NULL, 'b'},   {"adapter", required_argument, NULL, 'a'},
        {"head", required_argument, NULL, OPT_HEAD}, {"setup", required_argument, NULL, OPT_SETUP},
        {"setup-dir", required_argument, NULL, OPT_SETUP_DIR},
        {"seed", required_argument, NULL, OPT_SEED}, {"per-line-stack", no_argument, NULL, OPT_PER_LINE},
        {"hidden-states", required_argument, NULL, OPT_HIDDEN}, {"seq-len", required_argument, NULL, 't'},
        {"max-len", required_argument, NULL, 't'}, {"pair", no_argument, NULL, OPT_PAIR},
        {"ids", no_argument, NULL, OPT_IDS},
        {"threads", required_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"doc-stride", required_argument, NULL, OPT_STRIDE},
        {"max-answer-length", required_argument, NULL, OPT_MAX_ANSWER},
        {"n-best-size", required_argument, NULL, OPT_N_BEST},
        {"version-2-with-negative", no_argument, NULL, OPT_V2},
        {"null-score-diff-threshold", required_argument, NULL, OPT_NULL_THR},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "predict", *model = NULL, *stack = NULL, *base = NULL, *head = NULL, *setup = NULL,
               *hidden = NULL, *setup_dir = NULL;
    const char *adapters[MAX_ADAPTERS];
    int n_adapters = 0, per_line = 0, pair = 0, ids = 0;
    int64_t seed = -1, max_len = 0, threads = 0; /* max_len 0: the default of default_seq_len */
    int64_t doc_stride = -1, max_answer = -1, n_best = -1; /* -1: the recipe's (with --model) or HF's */
    int v2 = 0;
    double null_thr = NAN;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":m:s:b:a:t:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': stack = optarg; break;
        case 'b': base = optarg; break;
        case 'a':
            if (n_adapters >= MAX_ADAPTERS) return cli_usage_error(cmd, "too many --adapter options");
            adapters[n_adapters++] = optarg;
            break;
        case OPT_HEAD: head = optarg; break;
        case OPT_SETUP: setup = optarg; break;
        case OPT_SETUP_DIR: setup_dir = optarg; break;
        case OPT_SEED:
            if (!cli_parse_i64(cmd, "--seed", optarg, 0, INT64_MAX, &seed)) return CLI_EXIT_USAGE;
            break;
        case OPT_PER_LINE: per_line = 1; break;
        case OPT_HIDDEN: hidden = optarg; break;
        case OPT_PAIR: pair = 1; break;
        case OPT_STRIDE:
            if (!cli_parse_i64(cmd, "--doc-stride", optarg, 1, 4096, &doc_stride)) return CLI_EXIT_USAGE;
            break;
        case OPT_MAX_ANSWER:
            if (!cli_parse_i64(cmd, "--max-answer-length", optarg, 1, 4096, &max_answer)) return CLI_EXIT_USAGE;
            break;
        case OPT_N_BEST:
            if (!cli_parse_i64(cmd, "--n-best-size", optarg, 1, 1000, &n_best)) return CLI_EXIT_USAGE;
            break;
        case OPT_V2: v2 = 1; break;
        case OPT_NULL_THR:
            if (!cli_parse_f64(cmd, "--null-score-diff-threshold", optarg, -1e6, 1e6, &null_thr)) return CLI_EXIT_USAGE;
            break;
        case OPT_IDS: ids = 1; break;
        case OPT_PRECISION: {
            xa_precision pr;
            if (!cli_parse_precision(cmd, optarg, &pr)) return CLI_EXIT_USAGE;
            xa_gemm_set_precision(pr);
            break;
        }
        case 't':
            if (!cli_parse_i64(cmd, "--seq-len", optarg, 4, 4096, &max_len)) return CLI_EXIT_USAGE;
            break;
        case 'j':
            if (!cli_parse_i64(cmd, "--threads", optarg, 1, 1024, &threads)) return CLI_EXIT_USAGE;
            break;
        case 'h': print_help(); return CLI_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model == !base) return cli_usage_error(cmd, "give either --model DIR or --base DIR");
    if (model && !stack && !per_line) return cli_usage_error(cmd, "--model needs --stack SPEC (or --per-line-stack)");
    if (setup_dir && (!base || setup || per_line))
        return cli_usage_error(cmd, "--setup-dir goes with --base, without --setup or --per-line-stack");
    if (base && !setup_dir && (!head || (!setup && !per_line)))
        return cli_usage_error(cmd, "--base needs --head DIR and --setup TEXT (or --setup-dir DIR, or --per-line-stack)");
    xa_threads_set((int)threads);

    static predictor p;
    static xa_recipe recipe;
    static xa_recipe_input ri; /* with --model: how the recipe reads its task files */
    memset(&p, 0, sizeof p);
    p.post = (xa_qa_post){20, 30, 0, 0.0}; /* HF run_qa's defaults */
    p.ids = ids;
    xa_status st = XA_STATUS_OK;
    char tok[XA_PATH_MAX];
    const char *base_dir = base;
    if (model) {
        char rp[XA_PATH_MAX];
        st = resolved_recipe(rp, sizeof rp, model, stack);
        if (!st) st = xa_recipe_load(&recipe, rp, NULL, 0);
        if (st) return cli_fail();
        p.pair = pair || recipe.task_type == XA_TASK_PAIR_CLASSIFICATION; /* known once the recipe is read */
        p.recipe = &recipe;
        p.model_dir = model;
        xa_recipe_input_init(&ri, &recipe);
        p.fields = &ri.fields;
        p.doc_stride = ri.doc_stride;
        p.post = (xa_qa_post){ri.n_best_size, ri.max_answer_length, ri.version_2_with_negative,
                              ri.null_score_diff_threshold};
        base_dir = recipe.base;
        snprintf(tok, sizeof tok, "%s", recipe.tokenizer);
    } else {
        snprintf(tok, sizeof tok, "%s", base); /* the base directory's tokenizer, chosen by xa_tok_load */
    }
    p.pair = pair || (model && recipe.task_type == XA_TASK_PAIR_CLASSIFICATION); /* after the recipe is read */
    if (doc_stride > 0) p.doc_stride = (int)doc_stride;
    if (max_answer > 0) p.post.max_answer_length = (int)max_answer;
    if (n_best > 0) p.post.n_best_size = (int)n_best;
    if (v2) p.post.version_2_with_negative = 1;
    if (!isnan(null_thr)) {
        if (!p.post.version_2_with_negative)
            return cli_usage_error(cmd, "--null-score-diff-threshold goes with --version-2-with-negative "
                                        "(or a recipe with data.task.version_2_with_negative: true)");
        p.post.null_score_diff_threshold = null_thr;
    }
    char why[XA_PATH_MAX + 96];
    p.T = max_len > 0 ? (int)max_len : default_seq_len(model ? &recipe : NULL, head ? head : setup_dir, why, sizeof why);
    if (max_len > 0) snprintf(why, sizeof why, "--seq-len");
    st = xa_tok_load(&p.tok, tok);
    if (!st) st = xa_encoder_load(&p.enc, NULL, base_dir, 0);
    if (!st && xa_tok_vocab_size(p.tok) != p.enc.cfg.V)
        st = xa_error_set(XA_STATUS_CONFIG, xa_tok_path(p.tok), "the base model's vocabulary size",
                          "wrong tokenizer for this base?", "tokenizer has %d pieces, %s has vocab_size %d",
                          xa_tok_vocab_size(p.tok), base_dir, p.enc.cfg.V);
    if (!st) p.enc.cfg.fingerprint = xa_hub_base_fingerprint(&p.enc); /* adapters on another base warn */
    if (!st) st = xa_encoder_set_packed(&p.enc, 1); /* inference: the base is frozen */
    if (!st) {
        const xa_encoder_config *ec = &p.enc.cfg;
        int lim = ec->arch == XA_ARCH_XLMR ? ec->P - ec->pad_id - 1 : ec->P;
        if (p.T > lim) p.T = lim;
        XA_LOG_INFO("predict: seq_len %d (%s)%s", p.T, why, p.T == lim ? ", the base's position limit" : "");
    }
    if (!st) st = xa_composer_init(&p.cp, &p.enc.cfg);
    if (!st) st = xa_encoder_acts_init(&p.acts, &p.enc.cfg, 1, p.T, 0);
    for (int i = 0; i < n_adapters && !st; i++) st = ensure_adapter(&p, adapters[i], NULL);
    if (!st && setup_dir) st = use_setup_dir(&p, setup_dir, head);
    if (!st && head && !setup_dir) st = ensure_head(&p, head);
    if (!st && stack && model) st = use_stack_spec(&p, stack, seed);
    if (!st && setup) st = use_setup_text(&p, setup);
    if (st) goto fail;

    char *line = malloc(MAX_LINE);
    if (!line) {
        st = xa_error_set(XA_STATUS_NOMEM, cmd, NULL, NULL, "out of memory");
        goto fail;
    }
    int64_t lineno = 0;
    while (fgets(line, MAX_LINE, stdin)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        char *text = line;
        if (per_line) {
            char *tab = strchr(line, '\t');
            if (!tab) {
                st = xa_error_set(XA_STATUS_USAGE, "stdin", "STACK<TAB>TEXT lines with --per-line-stack", NULL,
                                  "line %lld has no tab", (long long)lineno);
                break;
            }
            *tab = 0;
            text = tab + 1;
            n = strlen(text);
            if (model && strchr(line, ':') && !strchr(line, '(')) st = use_stack_spec(&p, line, seed);
            else st = use_setup_text(&p, line);
            if (!st && !p.have_head) st = xa_error_set(XA_STATUS_USAGE, "stdin", "--head DIR or a task:NAME item", NULL,
                                                        "line %lld: no prediction head", (long long)lineno);
            if (st) {
                xa_error_prefix("stdin line %lld", (long long)lineno);
                break;
            }
        }
        p.lineno = lineno;
        if (p.ids) {
            st = predict_ids(&p, text, n, lineno, hidden != NULL, stdout); /* its messages name the line */
        } else if ((st = predict_line(&p, text, n, hidden != NULL, stdout))) {
            const int json = p.head.kind == XA_HEAD_MULTIPLE_CHOICE || p.head.kind == XA_HEAD_QUESTION_ANSWERING;
            if (!json) xa_error_prefix("stdin line %lld", (long long)lineno); /* JSON records name it themselves */
        }
        if (st) break;
        fflush(stdout);
    }
    free(line);
    if (!st && hidden) {
        const int64_t C = p.enc.cfg.C;
        xa_st_entry e[3] = {
            {"hidden", XA_DTYPE_F32, 2, {(int64_t)p.hs_n, C}, p.hs ? p.hs : (const float *)"", NULL},
            {"offsets", XA_DTYPE_I64, 1, {(int64_t)p.n_inputs + 1}, NULL, p.offsets},
            {"pooled", XA_DTYPE_F32, 2, {(int64_t)p.n_inputs, C}, p.pooled ? p.pooled : (const float *)"", NULL},
        };
        int64_t zero = 0;
        if (!p.n_inputs) e[1].raw = &zero;
        xa_st_kv meta[] = {{"format", "hidden: (total tokens, C) rows of every input in order; "
                                      "offsets: input i is rows offsets[i]..offsets[i+1]; pooled: the <s> rows"}};
        st = xa_st_write(hidden, e, 3, meta, 1);
    }
fail:
    free(p.hs);
    free(p.pooled);
    free(p.offsets);
    if (p.have_head) xa_head_free(&p.head);
    xa_encoder_acts_free(&p.acts);
    xa_composer_free(p.cp);
    xa_encoder_free(&p.enc);
    xa_tok_free(p.tok);
    if (st) return cli_fail();
    return CLI_EXIT_OK;
}
