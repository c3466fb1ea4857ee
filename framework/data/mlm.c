/* data/mlm: masked-language-model corpora (see data.h): HF run_mlm.py's group_texts packing and
 * DataCollatorForLanguageModeling's 80/10/10 masking, deterministic and resumable; optionally
 * whole-word masking (DataCollatorForWholeWordMask with the tokenizer's word starts: "▁" pieces for
 * SentencePiece, pieces without "##" for WordPiece, as HF's collator; see mask_whole_word).
 * Not here (yet): line-by-line padding mode, sharding by rank. */
#include "data/data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XA_IGNORE (-100)

static xa_status grow(int32_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return XA_STATUS_OK;
    size_t n = *cap ? *cap : 1 << 16;
    while (n < need) n *= 2;
    int32_t *p = realloc(*buf, n * sizeof *p);
    if (!p) return xa_error_set(XA_STATUS_NOMEM, "xa_mlm_data_load", NULL, NULL, "out of memory");
    *buf = p;
    *cap = n;
    return XA_STATUS_OK;
}

xa_status xa_mlm_data_load(xa_mlm_data *d, const xa_tok *tok, const char *path, int T, uint64_t seed,
                           int64_t max_docs) {
    memset(d, 0, sizeof *d);
    if (T < 2) return xa_error_set(XA_STATUS_USAGE, "xa_mlm_data_load", "T >= 2", NULL, "T is %d", T);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL,
                            "check the corpus path", "cannot open corpus: %s", strerror(errno));
    }
    int32_t *all = NULL;
    size_t n_all = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    xa_status st = XA_STATUS_OK;
    int64_t lineno = 0;
    while ((len = getline(&line, &line_cap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        int32_t *ids = NULL;
        size_t n = 0;
        st = xa_tok_encode(tok, line, (size_t)len, 1, &ids, &n);
        if (st) {
            xa_error_prefix("%s:%lld", path, (long long)lineno);
            break;
        }
        st = grow(&all, &cap, n_all + n);
        if (!st) memcpy(all + n_all, ids, n * sizeof *ids);
        free(ids);
        if (st) break;
        n_all += n;
        d->n_docs++;
        if (max_docs > 0 && d->n_docs >= max_docs) break;
    }
    free(line);
    if (!st && ferror(f)) st = xa_error_set(XA_STATUS_IO, path, NULL, NULL, "read error: %s", strerror(errno));
    fclose(f);
    if (st) {
        free(all);
        return st;
    }
    d->T = T;
    d->n_tokens = (int64_t)n_all;
    d->n_blocks = (int64_t)(n_all / (size_t)T);
    if (d->n_blocks == 0) {
        free(all);
        return xa_error_set(XA_STATUS_USAGE, path, "at least one block of T tokens",
                            "use more text or a shorter sequence length",
                            "the corpus has %zu tokens in %lld lines, fewer than T = %d", n_all,
                            (long long)d->n_docs, T);
    }
    d->blocks = all; /* the tail past n_blocks * T is simply not used */
    d->order = malloc((size_t)d->n_blocks * sizeof *d->order);
    if (!d->order) {
        xa_mlm_data_free(d);
        return xa_error_set(XA_STATUS_NOMEM, "xa_mlm_data_load", NULL, NULL, "out of memory");
    }
    xa_tok_special sp = xa_tok_special_ids(tok);
    d->seed = seed;
    d->vocab = xa_tok_vocab_size(tok);
    d->mask_id = sp.mask;
    d->bos = sp.cls;
    d->eos = sp.sep;
    d->pad = sp.pad;
    d->unk = sp.unk;
    d->mask_prob = 0.15f;
    xa_mlm_data_seek(d, 0, 0);
    return XA_STATUS_OK;
}

void xa_mlm_data_free(xa_mlm_data *d) {
    if (!d) return;
    free(d->blocks);
    free(d->order);
    free(d->word_start);
    memset(d, 0, sizeof *d);
}

void xa_mlm_data_seek(xa_mlm_data *d, int64_t epoch, int64_t pos) {
    XA_ASSERT(pos >= 0 && pos <= d->n_blocks);
    for (int64_t i = 0; i < d->n_blocks; i++) d->order[i] = (uint32_t)i;
    xa_rng rng;
    xa_rng_seed(&rng, d->seed, 0x5eed0000u + (uint64_t)epoch);
    xa_rng_shuffle_u32(&rng, d->order, (size_t)d->n_blocks);
    d->epoch = epoch;
    d->pos = pos;
}

xa_status xa_mlm_batch_init(xa_mlm_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    if (B < 1 || T < 1 || (int64_t)B * T > XA_MAX_BATCH_TOKENS) /* callers then use B * T as int */
        return xa_error_set(XA_STATUS_USAGE, "xa_mlm_batch_init", "1 to 16777216 tokens a batch",
                            "lower the batch size or the sequence length", "batch %d x %d", B, T);
    size_t N = (size_t)B * (size_t)T;
    b->B = B;
    b->T = T;
    b->ids = malloc(N * sizeof(int32_t));
    b->labels = malloc(N * sizeof(int32_t));
    b->lens = malloc((size_t)B * sizeof(int32_t));
    b->rows = malloc(N * sizeof(int32_t));
    b->targets = malloc(N * sizeof(int32_t));
    if (!b->ids || !b->labels || !b->lens || !b->rows || !b->targets) {
        xa_mlm_batch_free(b);
        return xa_error_set(XA_STATUS_NOMEM, "xa_mlm_batch_init", NULL, NULL, "out of memory");
    }
    for (int i = 0; i < B; i++) b->lens[i] = T;
    return XA_STATUS_OK;
}

void xa_mlm_batch_free(xa_mlm_batch *b) {
    if (!b) return;
    free(b->ids);
    free(b->labels);
    free(b->lens);
    free(b->rows);
    free(b->targets);
    memset(b, 0, sizeof *b);
}

/* The 80/10/10 rule at a selected position t: <mask> (80%), a random id (10%), unchanged (10%). */
static void mask_one(const xa_mlm_data *d, int32_t *ids, int t, xa_rng *rng) {
    float r = xa_rng_uniform(rng);
    if (r < 0.8f) {
        ids[t] = d->mask_id;
    } else if (r < 0.9f) {
        ids[t] = (int32_t)xa_rng_below(rng, (uint32_t)d->vocab);
    }
}

xa_status xa_mlm_data_set_whole_word(xa_mlm_data *d, const xa_tok *tok) {
    free(d->word_start);
    d->word_start = NULL;
    if (!tok) return XA_STATUS_OK;
    if (xa_tok_vocab_size(tok) != d->vocab) {
        return xa_error_set(XA_STATUS_USAGE, "xa_mlm_data_set_whole_word", "the corpus' tokenizer",
                            "pass the tokenizer the corpus was loaded with",
                            "tokenizer has %d ids, the corpus %d", (int)xa_tok_vocab_size(tok),
                            (int)d->vocab);
    }
    uint8_t *ws = malloc((size_t)d->vocab);
    if (!ws) {
        return xa_error_set(XA_STATUS_NOMEM, "xa_mlm_data_set_whole_word", NULL, NULL,
                            "out of memory");
    }
    /* SentencePiece: pieces starting with U+2581 "▁"; WordPiece: pieces without "##" */
    for (int32_t id = 0; id < d->vocab; id++)
        ws[id] = (uint8_t)xa_tok_is_word_start(tok, id);
    d->word_start = ws;
    return XA_STATUS_OK;
}

/* Whole-word masking (HF DataCollatorForWholeWordMask, with SentencePiece word starts instead of
 * BERT's "##" continuations): a word is a piece starting with "▁" plus the pieces that follow it
 * up to the next such piece or special token (a piece right after a special or at t = 0 also
 * starts one). Unlike HF, which masks exactly round(0.15 * n_tokens) pieces' worth of words, each
 * word is selected independently with probability mask_prob, so the rate is exact in expectation
 * and a block's masking does not depend on its neighbours. Every piece of a selected word then
 * gets the 80/10/10 rule on its own. One pass over the block, so the rng draws (a selection draw at
 * each word start, then the 80/10/10 draws of its pieces) are deterministic. */
static int mask_whole_word(const xa_mlm_data *d, int32_t *ids, int32_t *labels, int T,
                           xa_rng *rng) {
    int m = 0, in_word = 0, selected = 0;
    for (int t = 0; t < T; t++) {
        int32_t id = ids[t];
        labels[t] = XA_IGNORE;
        if (id == d->bos || id == d->eos || id == d->pad) { /* special tokens never masked */
            in_word = 0;
            continue;
        }
        int starts = id < 0 || id >= d->vocab || d->word_start[id];
        if (starts || !in_word) {
            in_word = 1;
            selected = xa_rng_uniform(rng) < d->mask_prob;
        }
        if (!selected) continue;
        labels[t] = id;
        m++;
        mask_one(d, ids, t, rng);
    }
    return m;
}

int xa_mlm_mask(const xa_mlm_data *d, int32_t *ids, int32_t *labels, int T, xa_rng *rng) {
    if (d->word_start) return mask_whole_word(d, ids, labels, T, rng);
    int m = 0;
    for (int t = 0; t < T; t++) {
        int32_t id = ids[t];
        labels[t] = XA_IGNORE;
        if (id == d->bos || id == d->eos || id == d->pad) continue; /* special tokens never masked */
        if (xa_rng_uniform(rng) >= d->mask_prob) continue;
        labels[t] = id;
        m++;
        mask_one(d, ids, t, rng);
    }
    return m;
}

void xa_mlm_data_next(xa_mlm_data *d, xa_mlm_batch *b) {
    const int T = b->T;
    XA_ASSERT(T == d->T);
    b->m = 0;
    for (int r = 0; r < b->B; r++) {
        if (d->pos >= d->n_blocks) xa_mlm_data_seek(d, d->epoch + 1, 0);
        uint32_t blk = d->order[d->pos++];
        int32_t *ids = b->ids + (size_t)r * T, *labels = b->labels + (size_t)r * T;
        memcpy(ids, d->blocks + (size_t)blk * T, (size_t)T * sizeof(int32_t));
        xa_rng rng;
        xa_rng_seed(&rng, d->seed ^ ((uint64_t)d->epoch << 40), 0x3a5c0000u + blk);
        xa_mlm_mask(d, ids, labels, T, &rng);
        for (int t = 0; t < T; t++) {
            if (labels[t] == XA_IGNORE) continue;
            b->rows[b->m] = r * T + t;
            b->targets[b->m++] = labels[t];
        }
    }
}
