/* data: training data for xadapt.
 *
 * MLM corpora (data/mlm.c), as Hugging Face run_mlm.py prepares them: every line of a plain-text
 * file is one document, encoded as <s> X </s> (XLM-R ids), all documents are concatenated and cut
 * into blocks of exactly T tokens (group_texts; the incomplete tail block is dropped). Masking is
 * DataCollatorForLanguageModeling's: each non-special token is selected with probability 0.15; a
 * selected token becomes <mask> (80%), a random id (10%) or stays (10%); labels are the original
 * ids at selected positions and XA_IGNORE_INDEX elsewhere.
 *
 * Determinism: the block order of epoch e is a Fisher-Yates shuffle seeded by (seed, e), and the
 * masking of a block is seeded by (seed, epoch, block index), so a run resumed from
 * (epoch, position) sees exactly the batches of an uninterrupted run.
 */
#ifndef XA_DATA_H
#define XA_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tokenizer/spm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xa_mlm_data {
    int32_t *blocks;     /* (n_blocks, T) owned token ids */
    int64_t n_blocks;
    int T;
    uint32_t *order;     /* (n_blocks) owned: the current epoch's order */
    int64_t epoch;       /* current epoch, from 0 */
    int64_t pos;         /* next index into order */
    uint64_t seed;
    int32_t vocab;       /* ids are in [0, vocab) */
    int32_t mask_id, bos, eos, pad, unk;
    float mask_prob;     /* 0.15 */
    int64_t n_docs;      /* lines read */
    int64_t n_tokens;    /* tokens before blocking */
} xa_mlm_data;

/* Read and encode `path` (UTF-8 text, one document per line; empty lines skipped) with spm in the
 * XLM-R convention, and cut it into blocks of T tokens. max_docs > 0 stops after that many lines.
 * Errors: IO naming the file; USAGE when the text gives no complete block (with the token count
 * and a hint to lower T). The tokenizer must use the XLM-R ids (it is switched if not). */
xa_status xa_mlm_data_load(xa_mlm_data *d, xa_spm *spm, const char *path, int T, uint64_t seed,
                           int64_t max_docs);
void xa_mlm_data_free(xa_mlm_data *d);
/* Move to (epoch, pos): the order of that epoch is recomputed; pos in [0, n_blocks]. */
void xa_mlm_data_seek(xa_mlm_data *d, int64_t epoch, int64_t pos);

/* One MLM batch of B rows of T tokens. */
typedef struct xa_mlm_batch {
    int B, T;
    int32_t *ids;     /* (B, T) input ids after masking */
    int32_t *labels;  /* (B, T) original ids at selected positions, XA_IGNORE_INDEX elsewhere */
    int32_t *lens;    /* (B) all T (blocks are full) */
    int32_t *rows;    /* (B*T) flat indices of the selected positions, m of them */
    int32_t *targets; /* (B*T) their labels */
    int m;
} xa_mlm_batch;

xa_status xa_mlm_batch_init(xa_mlm_batch *b, int B, int T);
void xa_mlm_batch_free(xa_mlm_batch *b);
/* Fill the next B blocks (wrapping into the next epoch) and mask them. */
void xa_mlm_data_next(xa_mlm_data *d, xa_mlm_batch *b);
/* Mask one block: ids (T) in/out, labels (T) out, with the rng; returns the count selected. */
int xa_mlm_mask(const xa_mlm_data *d, int32_t *ids, int32_t *labels, int T, xa_rng *rng);

#ifdef __cplusplus
}
#endif
#endif /* XA_DATA_H */
