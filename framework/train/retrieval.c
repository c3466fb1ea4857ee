/* train/retrieval: cross-lingual retrieval of held-out translations, the probe of whether a base
 * has a shared multilingual space before any task is involved (XTREME's BUCC / Tatoeba practice,
 * Hu et al. 2020; Libovický et al. 2020 for the centring).
 *
 * A retrieval file is TSV with a header, "en<TAB>text": aligned paragraphs of test-split documents
 * (recipes/data/prepare.py writes retrieval/<lang>.tsv). Each side is embedded as the mean of a
 * layer's hidden states over its real tokens (<s> ... </s>), each language's embeddings are
 * centred (their own mean subtracted: it removes the language-specific offset that otherwise
 * dominates cosine similarity), and each English paragraph retrieves its nearest target
 * paragraph by cosine (and the other way round). Accuracy@1 counts exact translations; chance is
 * 1/n. The English side may run under one adapter and the target side under another (the MAD-X
 * language adapters), or both on the bare base.
 * Not here: margin-based scoring (Artetxe & Schwenk 2019), mining from unaligned pools.
 */
#include "train/train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "hub/hub.h"
#include "tokenizer/tok.h"
#include "train/evalcache.h"

typedef struct side_set {
    int32_t *pool;    /* every text's ids */
    int64_t *off;     /* (n) */
    int32_t *len;     /* (n) */
    int64_t n;
} side_set;

static void side_free(side_set *s) {
    free(s->pool);
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* Read both columns of a retrieval file into two id sets (each text <s> ... </s>, at most T). */
static xa_status read_pairs(side_set *sides, const xa_tok *tok, const char *path, int T) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL,
                            "check data.retrieval (prepare.sh writes retrieval/<lang>.tsv)",
                            "cannot open retrieval pairs: %s", strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0, pool_cap[2] = {0, 0}, pool_n[2] = {0, 0};
    int64_t n_cap = 0, lineno = 0;
    ssize_t len;
    xa_status st = XA_STATUS_OK;
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || (lineno == 1 && !strncmp(line, "en\t", 3))) continue;
        char *tab = memchr(line, '\t', (size_t)len);
        if (!tab || tab == line || tab + 1 == line + len || memchr(tab + 1, '\t', (size_t)(line + len - tab - 1))) {
            st = xa_error_set(XA_STATUS_CONFIG, path, "EN<TAB>TEXT with two non-empty fields", NULL,
                              "line %lld: malformed pair", (long long)lineno);
            break;
        }
        if (sides[0].n == n_cap) {
            n_cap = n_cap ? 2 * n_cap : 1024;
            for (int s = 0; s < 2 && !st; s++) {
                int64_t *o = realloc(sides[s].off, (size_t)n_cap * sizeof *o);
                if (o) sides[s].off = o;
                int32_t *l = realloc(sides[s].len, (size_t)n_cap * sizeof *l);
                if (l) sides[s].len = l;
                if (!o || !l) st = xa_error_set(XA_STATUS_NOMEM, "xa_eval_retrieval", NULL, NULL, "out of memory");
            }
            if (st) break;
        }
        const char *txt[2] = {line, tab + 1};
        size_t tl[2] = {(size_t)(tab - line), (size_t)(line + len - tab - 1)};
        for (int s = 0; s < 2 && !st; s++) {
            int32_t *ids = NULL;
            size_t k = 0;
            st = xa_tok_encode(tok, txt[s], tl[s], 1, &ids, &k);
            if (st) {
                xa_error_prefix("%s:%lld", path, (long long)lineno);
                break;
            }
            if (k > (size_t)T) {
                ids[T - 1] = ids[k - 1];
                k = (size_t)T;
            }
            if (pool_n[s] + k > pool_cap[s]) {
                size_t nc = pool_cap[s] ? pool_cap[s] : 1 << 16;
                while (nc < pool_n[s] + k) nc *= 2;
                int32_t *p = realloc(sides[s].pool, nc * sizeof *p);
                if (!p) {
                    free(ids);
                    st = xa_error_set(XA_STATUS_NOMEM, "xa_eval_retrieval", NULL, NULL, "out of memory");
                    break;
                }
                sides[s].pool = p;
                pool_cap[s] = nc;
            }
            memcpy(sides[s].pool + pool_n[s], ids, k * sizeof *ids);
            sides[s].off[sides[s].n] = (int64_t)pool_n[s];
            sides[s].len[sides[s].n] = (int32_t)k;
            pool_n[s] += k;
            free(ids);
        }
        if (st) break;
        sides[0].n++;
        sides[1].n++;
    }
    free(line);
    fclose(f);
    if (!st && sides[0].n < 2)
        st = xa_error_set(XA_STATUS_CONFIG, path, "at least 2 pairs", NULL, "%lld pairs", (long long)sides[0].n);
    return st;
}

/* Embed every text of s: mean of each layer's hidden states (L + 1 layers, the embedding output
 * first) into emb (L + 1, n, C). */
static xa_status embed(float *emb, const side_set *s, const xa_encoder *enc, xa_encoder_acts *acts,
                       const xa_hook *hook, int B, int32_t *ids, int32_t *lens) {
    const xa_encoder_config *c = &enc->cfg;
    for (int64_t i0 = 0; i0 < s->n; i0 += B) {
        int nb = (int)(s->n - i0 < B ? s->n - i0 : B), Tb = 0;
        for (int r = 0; r < nb; r++)
            if (s->len[i0 + r] > Tb) Tb = s->len[i0 + r];
        for (int r = 0; r < nb; r++) {
            int32_t *row = ids + (size_t)r * Tb;
            memcpy(row, s->pool + s->off[i0 + r], (size_t)s->len[i0 + r] * sizeof *row);
            for (int t = s->len[i0 + r]; t < Tb; t++) row[t] = c->pad_id;
            lens[r] = s->len[i0 + r];
        }
        xa_batch b = {ids, NULL, lens, nb, Tb};
        xa_status st = xa_encoder_forward(enc, acts, &b, hook, 0, NULL);
        if (st) return st;
        for (int l = -1; l < c->L; l++) {
            float *dst = emb + ((size_t)(l + 1) * s->n + (size_t)i0) * c->C;
            xa_mean_pool_forward(dst, xa_encoder_hidden(enc, acts, l), lens, nb, Tb, c->C);
        }
    }
    return XA_STATUS_OK;
}

/* Centre the rows of x (n, C) and scale them to unit length. */
static void centre_normalise(float *x, int64_t n, int C) {
    double *mean = calloc((size_t)C, sizeof *mean);
    if (!mean) return;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < C; c++) mean[c] += x[(size_t)i * C + c];
    for (int c = 0; c < C; c++) mean[c] /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        float *r = x + (size_t)i * C;
        double s = 0;
        for (int c = 0; c < C; c++) {
            r[c] = (float)(r[c] - mean[c]);
            s += (double)r[c] * r[c];
        }
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int c = 0; c < C; c++) r[c] *= inv;
    }
    free(mean);
}

/* Accuracy@1 of a (n, C) retrieving b (n, C) and back, by cosine; both already normalised. The
 * scores are computed a block of ROWS rows of a at a time (one product each), so memory stays
 * (ROWS, n) for any n; each block gives its rows' argmax and updates every column's best row. */
#define ROWS 256
static void accuracy(const float *a, const float *b, int64_t n, int C, double *a2b, double *b2a) {
    int64_t hit_ab = 0, hit_ba = 0;
    float *sim = malloc((size_t)ROWS * n * sizeof *sim);      /* (ROWS, n) */
    int64_t *best_col = malloc((size_t)n * sizeof *best_col); /* (n) the a-row closest to b_j */
    float *best_val = malloc((size_t)n * sizeof *best_val);   /* (n) */
    if (!sim || !best_col || !best_val) {
        *a2b = *b2a = NAN;
        goto done;
    }
    for (int64_t j = 0; j < n; j++) {
        best_val[j] = -INFINITY;
        best_col[j] = -1;
    }
    for (int64_t i0 = 0; i0 < n; i0 += ROWS) {
        int m = (int)(n - i0 < ROWS ? n - i0 : ROWS);
        xa_sgemm(0, 1, m, (int)n, C, 1.0f, a + (size_t)i0 * C, C, b, C, 0.0f, sim, (int)n);
        for (int r = 0; r < m; r++) {
            const float *row = sim + (size_t)r * n;
            int64_t arg = 0;
            for (int64_t j = 0; j < n; j++) {
                if (row[j] > row[arg]) arg = j;
                if (row[j] > best_val[j]) {
                    best_val[j] = row[j];
                    best_col[j] = i0 + r;
                }
            }
            hit_ab += arg == i0 + r;
        }
    }
    for (int64_t j = 0; j < n; j++) hit_ba += best_col[j] == j;
    *a2b = (double)hit_ab / (double)n;
    *b2a = (double)hit_ba / (double)n;
done:
    free(sim);
    free(best_col);
    free(best_val);
}
#undef ROWS

/* Activate a single adapter (or none) and plan the composer for (B, T). */
static xa_status use_adapter(xa_composer *cp, xa_adapter *ad, int B, int T, xa_hook *hook, const xa_hook **h) {
    *h = NULL;
    if (!ad) return XA_STATUS_OK;
    xa_setup *setup = xa_setup_single(ad->name);
    if (!setup) return xa_error_set(XA_STATUS_NOMEM, "xa_eval_retrieval", NULL, NULL, "out of memory");
    xa_status st = xa_composer_activate(cp, setup, ad->name);
    xa_setup_free(setup);
    if (!st) st = xa_composer_plan(cp, B, T, 0, 0);
    if (st) return st;
    xa_composer_hook(cp, hook);
    xa_composer_set_mode(cp, 0, NULL);
    *h = hook;
    return XA_STATUS_OK;
}

xa_status xa_eval_retrieval(const char *base_dir, const char *tokenizer, const char *src_adapter,
                            const char *tgt_adapter, const char *path, int B, int T,
                            xa_retrieval_metrics *out) {
    return xa_eval_retrieval_cached(NULL, base_dir, tokenizer, src_adapter, tgt_adapter, path, B, T, out);
}

xa_status xa_eval_retrieval_cached(xa_eval_cache *cache, const char *base_dir, const char *tokenizer,
                                   const char *src_adapter, const char *tgt_adapter, const char *path, int B,
                                   int T, xa_retrieval_metrics *out) {
    xa_tok *tok = NULL, *own_tok = NULL;
    xa_encoder own;
    const xa_encoder *enc = &own;
    int hit = 0;
    xa_encoder_acts acts;
    xa_composer *cp = NULL;
    side_set sides[2];
    float *emb[2] = {NULL, NULL};
    int32_t *ids = NULL, *lens = NULL;
    memset(&own, 0, sizeof own);
    memset(&acts, 0, sizeof acts);
    memset(sides, 0, sizeof sides);
    memset(out, 0, sizeof *out);
    if (B < 1 || T < 4)
        return xa_error_set(XA_STATUS_USAGE, "xa_eval_retrieval", "B >= 1, T >= 4", NULL, "B %d, T %d", B, T);
    /* the eval cache's base when it is this one; else a base of this call's own */
    xa_status st = xa_eval_cache_base(cache, base_dir, tokenizer, &tok, &enc, &hit);
    if (!st && !hit) {
        enc = &own;
        st = xa_eval_base_open(&own_tok, &own, base_dir, tokenizer);
        tok = own_tok;
    }
    if (st) goto done;
    const xa_encoder_config *c = &enc->cfg;
    if (c->arch == XA_ARCH_XLMR && T > c->P - c->pad_id - 1) T = c->P - c->pad_id - 1;
    if ((st = read_pairs(sides, tok, path, T))) goto done;
    const int64_t n = sides[0].n;
    const int NL = c->L + 1;
    for (int s = 0; s < 2; s++) {
        emb[s] = malloc((size_t)NL * n * c->C * sizeof(float));
        if (!emb[s]) {
            st = xa_error_set(XA_STATUS_NOMEM, "xa_eval_retrieval", NULL, NULL, "out of memory");
            goto done;
        }
    }
    ids = malloc((size_t)B * T * sizeof *ids);
    lens = malloc((size_t)B * sizeof *lens);
    if (!ids || !lens) {
        st = xa_error_set(XA_STATUS_NOMEM, "xa_eval_retrieval", NULL, NULL, "out of memory");
        goto done;
    }
    if ((st = xa_encoder_acts_init(&acts, c, B, T, 0))) goto done;
    if ((st = xa_composer_init(&cp, c))) goto done;
    xa_adapter *ad[2] = {NULL, NULL};
    const char *dirs[2] = {src_adapter, tgt_adapter};
    for (int s = 0; s < 2; s++)
        if (dirs[s] && (st = xa_hub_load_adapter(cp, dirs[s], NULL, NULL, 0, 0, &ad[s]))) goto done;
    for (int s = 0; s < 2; s++) {
        xa_hook hook;
        const xa_hook *h;
        if ((st = use_adapter(cp, ad[s], B, T, &hook, &h))) goto done;
        if ((st = embed(emb[s], &sides[s], enc, &acts, h, B, ids, lens))) goto done;
    }
    out->n = n;
    out->n_layers = NL < XA_RETRIEVAL_MAX_LAYERS ? NL : XA_RETRIEVAL_MAX_LAYERS;
    for (int l = 0; l < out->n_layers; l++) {
        float *a = emb[0] + (size_t)l * n * c->C, *b = emb[1] + (size_t)l * n * c->C;
        centre_normalise(a, n, c->C);
        centre_normalise(b, n, c->C);
        accuracy(a, b, n, c->C, &out->en2x[l], &out->x2en[l]);
    }
    int last = out->n_layers - 1;
    out->accuracy = 0.5 * (out->en2x[last] + out->x2en[last]);
done:
    free(ids);
    free(lens);
    free(emb[0]);
    free(emb[1]);
    side_free(&sides[0]);
    side_free(&sides[1]);
    xa_composer_free(cp);
    xa_encoder_acts_free(&acts);
    xa_encoder_free(&own);
    xa_tok_free(own_tok);
    return st;
}
