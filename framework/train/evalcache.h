/* train/evalcache: what the cells of one eval phase share (private to train/; the public face is
 * xa_eval_cache in train.h). The recipe's base and tokenizer are loaded on first use and lent to
 * every eval call given the cache (read only: an eval never writes the encoder); the base's MLM head
 * likewise; each test file's tokenized examples and each held-out text's blocks are kept under the
 * key of how they were read, so a file is tokenized once per phase however many setups and seeds
 * score it. */
#ifndef XA_TRAIN_EVALCACHE_H
#define XA_TRAIN_EVALCACHE_H

#include "train/train.h"

#include "data/data.h"
#include "model/model.h"
#include "tokenizer/tok.h"

/* The tokenizer (SentencePiece with XLM-R ids, or WordPiece) and the frozen base, checked against
 * each other; the encoder's fingerprint is set (what adapters saved on it record). On error both
 * are freed. */
xa_status xa_eval_base_open(xa_tok **tok, xa_encoder *enc, const char *base_dir, const char *tokenizer);

/* The cached base when (base_dir, tokenizer) are the cache's (loaded now on first use): *tok and
 * *enc are borrowed (never freed or written by the caller); 0 with both NULL when c is NULL or the
 * pair differs (the caller loads its own). A load error is returned as the status. */
xa_status xa_eval_cache_base(xa_eval_cache *c, const char *base_dir, const char *tokenizer, xa_tok **tok,
                             const xa_encoder **enc, int *hit);

/* The base's MLM head, planned for at least M rows (loaded from base_dir on first use, re-planned
 * when a call needs more rows); borrowed. Requires a hit of xa_eval_cache_base. */
xa_status xa_eval_cache_mlm_head(xa_eval_cache *c, int M, xa_mlm_head **head);

/* The test file read as (in, max_len, *labels): a cached copy when one was read the same way (same
 * file, kind, field names, label list, length and the labels asked for), else read with tok and
 * kept. *labels is updated as xa_task_data_load_input updates it. The data stays the cache's, at the
 * same address until xa_eval_cache_free. */
xa_status xa_eval_cache_task_data(xa_eval_cache *c, const xa_tok *tok, const char *path, const xa_task_input *in,
                                  int max_len, xa_labels *labels, const xa_task_data **out);

/* The held-out text's blocks of T with masks of seed, rewound to their first block (as a fresh
 * load is); the cache's, at the same address until xa_eval_cache_free. */
xa_status xa_eval_cache_mlm_data(xa_eval_cache *c, const xa_tok *tok, const char *path, int T, uint64_t seed,
                                 xa_mlm_data **out);

#endif
