/* data/pairs: aligned sentence pairs for the base model's cross-lingual objectives (data.h).
 *
 * A pair file is TSV with a header, "lang<TAB>en<TAB>text" (recipes/data/prepare.py writes
 * pairs.tsv from train-split documents only). Each side is encoded as <s> pieces </s> with the
 * XLM-R ids and truncated to max_side tokens (</s> kept), so that a pair always fits whole in one
 * sequence of 2 * max_side tokens.
 *
 * Two uses:
 *  - Translation language modelling (TLM, Conneau & Lample 2019, §3.3): one sequence
 *    "<s> A </s></s> B </s>" (XLM-R's pair format), both orders, masked like MLM, so a masked
 *    piece can be predicted from its translation. XLM also resets the positions of B and adds
 *    language embeddings; XLM-R has neither, and neither do we.
 *  - Sentence alignment: the two sides as separate rows of one batch, for the in-batch
 *    contrastive loss (tensor/contrastive.c).
 *
 * Sampling is stateless: the pairs of step s are drawn from a generator seeded by (seed, stream,
 * s), so a resumed run sees exactly the pairs of an uninterrupted one without any saved position.
 * A language is drawn with probability q_l ~ n_l^alpha (XLM-R's exponential smoothing, alpha 0.3),
 * then a pair uniformly within it; within one batch a pair whose English side repeats one already
 * drawn is redrawn (it would be a false negative for the contrastive loss). The aligned language
 * adapters (train/madx.c) draw from one language only (xa_pair_align_batch_lang), uniformly.
 */
#include "data/data.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static xa_status grow_pool(xa_pair_data *d, size_t need) {
    if (need <= d->pool_cap) return XA_STATUS_OK;
    size_t n = d->pool_cap ? d->pool_cap : 1 << 16;
    while (n < need) n *= 2;
    int32_t *p = realloc(d->pool, n * sizeof *p);
    if (!p) return xa_error_set(XA_STATUS_NOMEM, "xa_pair_data_load", NULL, NULL, "out of memory");
    d->pool = p;
    d->pool_cap = n;
    return XA_STATUS_OK;
}

static uint64_t hash_ids(const int32_t *ids, int n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the id bytes */
    for (int i = 0; i < n; i++) {
        uint32_t x = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) {
            h ^= (x >> (8 * k)) & 0xffu;
            h *= 1099511628211ULL;
        }
    }
    return h;
}

/* Encode one side into the pool; *off / *len get its place. */
static xa_status add_side(xa_pair_data *d, const xa_tok *tok, const char *text, size_t n,
                          int64_t *off, int32_t *len) {
    int32_t *ids = NULL;
    size_t k = 0;
    xa_status st = xa_tok_encode(tok, text, n, 1, &ids, &k);
    if (st) return st;
    if (k > (size_t)d->max_side) { /* keep <s> and the first pieces, end with </s> */
        ids[d->max_side - 1] = ids[k - 1];
        k = (size_t)d->max_side;
    }
    st = grow_pool(d, d->pool_n + k);
    if (!st) {
        memcpy(d->pool + d->pool_n, ids, k * sizeof *ids);
        *off = (int64_t)d->pool_n;
        *len = (int32_t)k;
        d->pool_n += k;
    }
    free(ids);
    return st;
}

static int lang_index(xa_pair_data *d, const char *code, size_t n) {
    for (int i = 0; i < d->n_langs; i++)
        if (strlen(d->langs[i]) == n && !memcmp(d->langs[i], code, n)) return i;
    if (d->n_langs == XA_PAIR_MAX_LANGS || n == 0 || n >= sizeof d->langs[0]) return -1;
    memcpy(d->langs[d->n_langs], code, n);
    d->langs[d->n_langs][n] = '\0';
    return d->n_langs++;
}

static xa_status add_pair(xa_pair_data *d, const xa_tok *tok, char *line, size_t len,
                          const char *path, int64_t lineno) {
    char *t1 = memchr(line, '\t', len);
    char *t2 = t1 ? memchr(t1 + 1, '\t', len - (size_t)(t1 + 1 - line)) : NULL;
    if (!t1 || !t2 || t2 == t1 + 1 || t2 + 1 == line + len) {
        return xa_error_set(XA_STATUS_CONFIG, path, "LANG<TAB>EN<TAB>TEXT with non-empty fields",
                            "pairs.tsv comes from recipes/data/prepare.sh",
                            "line %lld: malformed pair", (long long)lineno);
    }
    int li = lang_index(d, line, (size_t)(t1 - line));
    if (li < 0) {
        return xa_error_set(XA_STATUS_CONFIG, path, "a language code of 1-15 characters",
                            NULL, "line %lld: bad language code or more than %d languages",
                            (long long)lineno, XA_PAIR_MAX_LANGS);
    }
    if (d->n == d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 4096;
        xa_pair *p = realloc(d->pairs, (size_t)cap * sizeof *p);
        if (!p) return xa_error_set(XA_STATUS_NOMEM, "xa_pair_data_load", NULL, NULL, "out of memory");
        d->pairs = p;
        d->cap = cap;
    }
    xa_pair *p = &d->pairs[d->n];
    p->lang = li;
    xa_status st = add_side(d, tok, t1 + 1, (size_t)(t2 - t1 - 1), &p->off[0], &p->len[0]);
    if (!st) st = add_side(d, tok, t2 + 1, (size_t)(line + len - t2 - 1), &p->off[1], &p->len[1]);
    if (st) {
        xa_error_prefix("%s:%lld", path, (long long)lineno);
        return st;
    }
    p->key = hash_ids(d->pool + p->off[0], p->len[0]);
    d->n++;
    return XA_STATUS_OK;
}

xa_status xa_pair_data_load(xa_pair_data *d, const xa_tok *tok, const char *path, int max_side,
                            double alpha, uint64_t seed) {
    memset(d, 0, sizeof *d);
    if (max_side < 3) {
        return xa_error_set(XA_STATUS_USAGE, "xa_pair_data_load", "max_side >= 3", NULL,
                            "max_side is %d", max_side);
    }
    d->max_side = max_side;
    d->seed = seed;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL,
                            "check data.pairs in the recipe (prepare.sh writes pairs.tsv)",
                            "cannot open pair corpus: %s", strerror(errno));
    }
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    xa_status st = XA_STATUS_OK;
    while ((len = getline(&line, &line_cap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if (lineno == 1 && !strncmp(line, "lang\t", 5)) continue; /* header */
        if ((st = add_pair(d, tok, line, (size_t)len, path, lineno))) break;
    }
    free(line);
    if (!st && ferror(f)) st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "read error: %s", strerror(errno));
    fclose(f);
    if (!st && d->n == 0) {
        st = xa_error_set(XA_STATUS_CONFIG, path, "at least one pair", NULL, "the pair corpus is empty");
    }
    if (!st && d->n > INT32_MAX) {
        st = xa_error_set(XA_STATUS_CONFIG, path, "at most 2^31-1 pairs", NULL, "too many pairs");
    }
    /* Pairs grouped by language, and the sampling distribution q_l ~ n_l^alpha. */
    if (!st) {
        d->by_lang = malloc((size_t)d->n * sizeof *d->by_lang);
        if (!d->by_lang) st = xa_error_set(XA_STATUS_NOMEM, "xa_pair_data_load", NULL, NULL, "out of memory");
    }
    if (st) {
        xa_pair_data_free(d);
        return st;
    }
    int64_t count[XA_PAIR_MAX_LANGS] = {0};
    for (int64_t i = 0; i < d->n; i++) count[d->pairs[i].lang]++;
    int64_t at = 0;
    double total = 0.0;
    for (int l = 0; l < d->n_langs; l++) {
        d->lang_start[l] = at;
        d->lang_count[l] = count[l];
        at += count[l];
        total += pow((double)count[l], alpha);
    }
    int64_t fill[XA_PAIR_MAX_LANGS];
    memcpy(fill, d->lang_start, sizeof fill);
    for (int64_t i = 0; i < d->n; i++) d->by_lang[fill[d->pairs[i].lang]++] = (int32_t)i;
    double cum = 0.0;
    for (int l = 0; l < d->n_langs; l++) {
        d->lang_prob[l] = pow((double)count[l], alpha) / total;
        cum += d->lang_prob[l];
        d->lang_cum[l] = cum;
    }
    d->lang_cum[d->n_langs - 1] = 1.0;
    return XA_STATUS_OK;
}

void xa_pair_data_free(xa_pair_data *d) {
    if (!d) return;
    free(d->pool);
    free(d->pairs);
    free(d->by_lang);
    memset(d, 0, sizeof *d);
}

/* The n pairs of (step, stream), from language `lang` only when lang >= 0 (then no language is
 * drawn, and the rare fallback scans that language's pairs). */
static void sample_pairs(const xa_pair_data *d, int64_t step, uint64_t stream, int lang, int n, int32_t *idx,
                         uint8_t *swap) {
    xa_rng rng;
    xa_rng_seed(&rng, d->seed ^ ((uint64_t)step * 0x9E3779B97F4A7C15ULL), 0x9a150000u + stream);
    const int64_t base = lang >= 0 ? d->lang_start[lang] : 0, span = lang >= 0 ? d->lang_count[lang] : d->n;
    for (int k = 0; k < n; k++) {
        int32_t pick = 0;
        int64_t at = 0; /* pick's place in the scanned range */
        int dup = 1;
        for (int tries = 0; tries < 16 && dup; tries++) { /* redraw a repeated English side */
            int l = lang;
            if (lang < 0) {
                double r = (double)xa_rng_uniform(&rng);
                l = 0;
                while (l < d->n_langs - 1 && r >= d->lang_cum[l]) l++;
            }
            uint32_t cnt = (uint32_t)d->lang_count[l];
            const int64_t j = (int64_t)xa_rng_below(&rng, cnt);
            pick = d->by_lang[d->lang_start[l] + j];
            at = lang >= 0 ? j : pick;
            dup = 0;
            for (int q = 0; q < k && !dup; q++) dup = d->pairs[idx[q]].key == d->pairs[pick].key;
        }
        /* Rare (tiny corpora): the first pair after the last draw whose English side is new, if any. */
        for (int64_t s = 1; dup && s < span; s++) {
            const int64_t c = (at + s) % span;
            int32_t cand = lang >= 0 ? d->by_lang[base + c] : (int32_t)c;
            dup = 0;
            for (int q = 0; q < k && !dup; q++) dup = d->pairs[idx[q]].key == d->pairs[cand].key;
            if (!dup) pick = cand;
        }
        idx[k] = pick;
        if (swap) swap[k] = (uint8_t)(xa_rng_u32(&rng) & 1u);
    }
}

void xa_pair_data_sample(const xa_pair_data *d, int64_t step, uint64_t stream, int n, int32_t *idx,
                         uint8_t *swap) {
    sample_pairs(d, step, stream, -1, n, idx, swap);
}

int xa_pair_data_lang(const xa_pair_data *d, const char *code) {
    for (int i = 0; i < d->n_langs; i++)
        if (!strcmp(d->langs[i], code)) return i;
    return -1;
}

int xa_pair_tlm_batch(const xa_pair_data *d, const xa_mlm_data *mask, int64_t step,
                      xa_mlm_batch *b) {
    int32_t idx[XA_PAIR_MAX_BATCH];
    uint8_t swap[XA_PAIR_MAX_BATCH];
    const int B = b->B;
    XA_ASSERT(B <= XA_PAIR_MAX_BATCH && 2 * d->max_side <= b->T);
    xa_pair_data_sample(d, step, 1, B, idx, swap);
    int T = 0;
    for (int r = 0; r < B; r++) {
        const xa_pair *p = &d->pairs[idx[r]];
        int len = p->len[0] + p->len[1];
        if (len > T) T = len;
    }
    b->m = 0;
    for (int r = 0; r < B; r++) {
        const xa_pair *p = &d->pairs[idx[r]];
        int a = swap[r], c = !swap[r];
        int32_t *ids = b->ids + (size_t)r * T, *labels = b->labels + (size_t)r * T;
        memcpy(ids, d->pool + p->off[a], (size_t)p->len[a] * sizeof *ids);
        memcpy(ids + p->len[a], d->pool + p->off[c], (size_t)p->len[c] * sizeof *ids);
        ids[p->len[a]] = mask->eos; /* <s> A </s></s> B </s> */
        int len = p->len[0] + p->len[1];
        for (int t = len; t < T; t++) ids[t] = mask->pad;
        b->lens[r] = len;
        xa_rng rng;
        xa_rng_seed(&rng, d->seed ^ ((uint64_t)step << 20), 0x71a00000u + (uint64_t)r);
        xa_mlm_mask(mask, ids, labels, len, &rng);
        for (int t = len; t < T; t++) labels[t] = XA_IGNORE_INDEX_DATA;
        for (int t = 0; t < len; t++) {
            if (labels[t] == XA_IGNORE_INDEX_DATA) continue;
            b->rows[b->m] = r * T + t;
            b->targets[b->m++] = labels[t];
        }
    }
    return T;
}

/* Stream 2 samples over every language (pretraining), stream 3 within one (language adapters). */
static int align_batch(const xa_pair_data *d, int lang, int64_t step, int n, int32_t *ids, int32_t *lens,
                       int32_t pad, int max_T) {
    int32_t idx[XA_PAIR_MAX_BATCH];
    XA_ASSERT(n <= XA_PAIR_MAX_BATCH && d->max_side <= max_T);
    XA_ASSERT(lang < d->n_langs && (lang < 0 || d->lang_count[lang] > 0));
    sample_pairs(d, step, lang < 0 ? 2 : 3, lang, n, idx, NULL);
    int T = 0;
    for (int k = 0; k < n; k++)
        for (int s = 0; s < 2; s++)
            if (d->pairs[idx[k]].len[s] > T) T = d->pairs[idx[k]].len[s];
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < n; k++) {
            const xa_pair *p = &d->pairs[idx[k]];
            int r = s * n + k;
            int32_t *row = ids + (size_t)r * T;
            memcpy(row, d->pool + p->off[s], (size_t)p->len[s] * sizeof *row);
            for (int t = p->len[s]; t < T; t++) row[t] = pad;
            lens[r] = p->len[s];
        }
    }
    return T;
}

int xa_pair_align_batch(const xa_pair_data *d, int64_t step, int n, int32_t *ids, int32_t *lens,
                        int32_t pad, int max_T) {
    return align_batch(d, -1, step, n, ids, lens, pad, max_T);
}

int xa_pair_align_batch_lang(const xa_pair_data *d, int lang, int64_t step, int n, int32_t *ids, int32_t *lens,
                             int32_t pad, int max_T) {
    XA_ASSERT(lang >= 0);
    return align_batch(d, lang, step, n, ids, lens, pad, max_T);
}
