/* train/evalcache: the eval cache of one eval phase (train.h xa_eval_cache, train/evalcache.h).
 * The base and tokenizer of the cache are loaded on the first call that needs them and lent read
 * only to every eval call with the same base directory and tokenizer path; a call for another base
 * (a fully fine-tuned encoder) loads its own, as without a cache. Test files and held-out texts
 * are kept under an exact key of how they were read (a string of every piece, compared whole: no
 * hash can make two readings share an entry), so a result computed with the cache has the bits
 * of one computed without it.
 * Does not: notice a file rewritten during the phase (a phase reads its inputs once), bound the
 * number of files kept (a phase reads each language's test file, a few MB of ids at most: the
 * caller frees the cache at the end of the phase), or share anything between threads. */
#include "train/evalcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "io/file.h"

/* One kept reading: a task file (task, labels) or a held-out text (text), under its key. */
typedef struct entry {
    char *key;              /* owned: how the file was read (task_key, text_key) */
    xa_labels labels;       /* task: the labels the load gave back */
    xa_task_data task;
    xa_mlm_data text;
} entry;

struct xa_eval_cache {
    char base_dir[XA_PATH_MAX], tokenizer[XA_PATH_MAX];
    int loaded;             /* tok and enc hold the base */
    xa_tok *tok;
    xa_encoder enc;
    int mlm_loaded;         /* mlm holds the base's MLM head, planned for mlm.M rows */
    xa_mlm_head mlm;
    entry **kept;           /* (n_kept): task files and held-out texts (distinct key prefixes); one
                             * allocation each, so what a call lent stays put while others are added */
    int n_kept, cap_kept;
    xa_eval_cache_stats stats;
};

xa_status xa_eval_base_open(xa_tok **tok, xa_encoder *enc, const char *base_dir, const char *tokenizer) {
    xa_status st = xa_tok_load(tok, tokenizer);
    if (!st) st = xa_encoder_load(enc, NULL, base_dir, 0);
    if (!st) enc->cfg.fingerprint = xa_hub_base_fingerprint(enc); /* recorded by what is saved on it */
    /* a frozen base from here on: its matrices packed once in bf16 (a fully fine-tuning task phase
     * makes it trainable, which drops them) */
    if (!st) st = xa_encoder_set_packed(enc, 1);
    if (!st && xa_tok_vocab_size(*tok) != enc->cfg.V)
        st = xa_error_set(XA_STATUS_CONFIG, tokenizer, "the base model's vocabulary size",
                          "wrong tokenizer for this base?", "tokenizer has %d pieces, %s has vocab_size %d",
                          xa_tok_vocab_size(*tok), base_dir, enc->cfg.V);
    return st;
}

xa_status xa_eval_cache_init(xa_eval_cache **out, const char *base_dir, const char *tokenizer) {
    *out = NULL;
    if (!base_dir || !tokenizer || !base_dir[0] || !tokenizer[0])
        return xa_error_set(XA_STATUS_USAGE, "xa_eval_cache_init", "a base directory and a tokenizer", NULL,
                            "NULL or empty argument");
    if (strlen(base_dir) >= XA_PATH_MAX || strlen(tokenizer) >= XA_PATH_MAX)
        return xa_error_set(XA_STATUS_USAGE, "xa_eval_cache_init", "paths shorter than 4096 bytes", NULL,
                            "path too long");
    xa_eval_cache *c = calloc(1, sizeof *c);
    if (!c) return xa_error_set(XA_STATUS_NOMEM, "xa_eval_cache_init", NULL, NULL, "out of memory");
    snprintf(c->base_dir, sizeof c->base_dir, "%s", base_dir);
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s", tokenizer);
    *out = c;
    return XA_STATUS_OK;
}

void xa_eval_cache_free(xa_eval_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_kept; i++) { /* an entry's unused half is zeroed: freeing it is a no-op */
        free(c->kept[i]->key);
        xa_task_data_free(&c->kept[i]->task);
        xa_mlm_data_free(&c->kept[i]->text);
        free(c->kept[i]);
    }
    free(c->kept);
    if (c->mlm_loaded) xa_mlm_head_free(&c->mlm);
    if (c->loaded) {
        xa_encoder_free(&c->enc);
        xa_tok_free(c->tok);
    }
    free(c);
}

xa_eval_cache_stats xa_eval_cache_stats_of(const xa_eval_cache *c) {
    xa_eval_cache_stats s = {0, 0, 0, 0};
    return c ? c->stats : s;
}

xa_status xa_eval_cache_base(xa_eval_cache *c, const char *base_dir, const char *tokenizer, xa_tok **tok,
                             const xa_encoder **enc, int *hit) {
    *tok = NULL;
    *enc = NULL;
    *hit = 0;
    if (!c || strcmp(base_dir, c->base_dir) != 0 || strcmp(tokenizer, c->tokenizer) != 0) return XA_STATUS_OK;
    if (!c->loaded) {
        memset(&c->enc, 0, sizeof c->enc);
        xa_status st = xa_eval_base_open(&c->tok, &c->enc, base_dir, tokenizer);
        if (st) { /* a half-loaded base is freed; the next call tries again (and fails the same way) */
            xa_encoder_free(&c->enc);
            xa_tok_free(c->tok);
            c->tok = NULL;
            return st;
        }
        c->loaded = 1;
        c->stats.base_loads++;
    }
    c->stats.base_lends++;
    *tok = c->tok;
    *enc = &c->enc;
    *hit = 1;
    return XA_STATUS_OK;
}

xa_status xa_eval_cache_mlm_head(xa_eval_cache *c, int M, xa_mlm_head **head) {
    XA_ASSERT(c && c->loaded);
    *head = NULL;
    if (c->mlm_loaded && c->mlm.M >= M) {
        *head = &c->mlm;
        return XA_STATUS_OK;
    }
    if (c->mlm_loaded) xa_mlm_head_free(&c->mlm);
    c->mlm_loaded = 0;
    const xa_encoder_config *ec = &c->enc.cfg;
    xa_status st = xa_mlm_head_init(&c->mlm, ec->C, ec->V, ec->eps, M, 0);
    if (!st) st = xa_mlm_head_load(&c->mlm, ec->arch, c->base_dir);
    if (!st) st = xa_mlm_head_set_packed(&c->mlm, 1);
    if (st) {
        xa_mlm_head_free(&c->mlm);
        return st;
    }
    c->mlm_loaded = 1;
    *head = &c->mlm;
    return XA_STATUS_OK;
}

/* ---- keys ------------------------------------------------------------------------------------------ */

/* One piece of a key: its length, then its bytes (so no piece can run into the next). */
static void key_str(FILE *f, const char *s) {
    if (!s) {
        fputs("-1:", f);
        return;
    }
    fprintf(f, "%zu:%s", strlen(s), s);
}

/* Finish a key written to an open_memstream; NULL on error. */
static char *key_close(FILE *f, char **buf) {
    const int bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

static char *task_key(const char *path, const xa_task_input *in, int max_len, const xa_labels *labels) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("task|", f);
    key_str(f, path);
    fprintf(f, "|%d|%d|%d|%d|%d|", (int)in->kind, (int)in->format, in->bert_pairs, in->doc_stride, max_len);
    const xa_task_fields *fl = in->fields;
    if (fl) {
        const char *const s[] = {fl->text, fl->text_pair, fl->label, fl->tokens, fl->tags, fl->premise, fl->question};
        for (size_t i = 0; i < sizeof s / sizeof *s; i++) key_str(f, s[i]);
        fprintf(f, "|%d|", fl->n_choices);
        for (int i = 0; fl->choices && i < fl->n_choices; i++) key_str(f, fl->choices[i]);
    } else {
        fputs("nofields|", f);
    }
    fprintf(f, "|%d|", in->n_label_names);
    for (int i = 0; in->label_names && i < in->n_label_names; i++) key_str(f, in->label_names[i]);
    fprintf(f, "|%d|", labels->n);
    for (int i = 0; i < labels->n; i++) key_str(f, labels->names[i]);
    return key_close(f, &buf);
}

static char *text_key(const char *path, int T, uint64_t seed) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("text|", f);
    key_str(f, path);
    fprintf(f, "|%d|%llu", T, (unsigned long long)seed);
    return key_close(f, &buf);
}

/* The entry kept under `key` (*hit = 1; key freed), else a new zeroed one that owns key (*hit = 0):
 * the caller loads into it and keeps it with keep(), or frees it with drop(). NULL when key is
 * NULL or out of memory (key freed). */
static entry *lookup(xa_eval_cache *c, char *key, int *hit) {
    *hit = 0;
    if (!key) return NULL;
    for (int i = 0; i < c->n_kept; i++) {
        if (strcmp(c->kept[i]->key, key) != 0) continue;
        free(key);
        *hit = 1;
        c->stats.data_reuses++;
        return c->kept[i];
    }
    if (c->n_kept == c->cap_kept) {
        const int nc = c->cap_kept ? 2 * c->cap_kept : 8;
        entry **g = realloc(c->kept, (size_t)nc * sizeof *g);
        if (!g) {
            free(key);
            return NULL;
        }
        c->kept = g;
        c->cap_kept = nc;
    }
    entry *e = calloc(1, sizeof *e);
    if (!e) {
        free(key);
        return NULL;
    }
    e->key = key;
    return e;
}

static void keep(xa_eval_cache *c, entry *e) { /* lookup() made room for it */
    c->kept[c->n_kept++] = e;
    c->stats.data_loads++;
}

static void drop(entry *e) { /* the load failed and freed what it had made */
    free(e->key);
    free(e);
}

xa_status xa_eval_cache_task_data(xa_eval_cache *c, const xa_tok *tok, const char *path, const xa_task_input *in,
                                  int max_len, xa_labels *labels, const xa_task_data **out) {
    *out = NULL;
    int hit;
    entry *e = lookup(c, task_key(path, in, max_len, labels), &hit);
    if (!e) return xa_error_set(XA_STATUS_NOMEM, "xa_eval_cache_task_data", NULL, NULL, "out of memory");
    if (!hit) {
        xa_status st = xa_task_data_load_input(&e->task, tok, path, in, max_len, labels);
        if (st) {
            drop(e);
            return st;
        }
        e->labels = *labels;
        keep(c, e);
    }
    *labels = e->labels;
    *out = &e->task;
    return XA_STATUS_OK;
}

xa_status xa_eval_cache_mlm_data(xa_eval_cache *c, const xa_tok *tok, const char *path, int T, uint64_t seed,
                                 xa_mlm_data **out) {
    *out = NULL;
    int hit;
    entry *e = lookup(c, text_key(path, T, seed), &hit);
    if (!e) return xa_error_set(XA_STATUS_NOMEM, "xa_eval_cache_mlm_data", NULL, NULL, "out of memory");
    if (hit) {
        xa_mlm_data_seek(&e->text, 0, 0); /* where a fresh load starts */
    } else {
        xa_status st = xa_mlm_data_load(&e->text, tok, path, T, seed, 0);
        if (st) {
            drop(e);
            return st;
        }
        keep(c, e);
    }
    *out = &e->text;
    return XA_STATUS_OK;
}
