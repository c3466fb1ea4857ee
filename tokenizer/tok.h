/* tokenizer/tok: one tokenizer interface over SentencePiece (XLM-R) and WordPiece (BERT, mBERT).
 *
 * xa_tok_load picks the tokenizer of a base model directory the way its files say:
 *   1. sentencepiece.bpe.model             SentencePiece in the XLM-R id convention (spm.h)
 *   2. vocab.txt                           WordPiece as transformers' BertTokenizer, with
 *                                          do_lower_case / strip_accents / tokenize_chinese_chars
 *                                          and the special tokens of tokenizer_config.json beside it
 *                                          (absent: do_lower_case true, HF's default)
 *   3. tokenizer.json                      a WordPiece model with BertNormalizer + BertPreTokenizer
 *                                          (BertTokenizerFast); other models (Unigram, BPE), other
 *                                          normalisers or pre-tokenisers are refused by name
 *   4. exactly one *.model                 SentencePiece, XLM-R ids
 * A file path is taken by its name: *.json a tokenizer.json, *.txt a vocab.txt, anything else a
 * SentencePiece model.
 *
 * Inputs with specials (xa_tok_encode_input), as the Hugging Face tokenizers build them:
 *   BERT   single [CLS] A [SEP]            pair [CLS] A [SEP] B [SEP]     types 0.. then 1 for B [SEP]
 *   XLM-R  single <s> A </s>               pair <s> A </s></s> B </s>     types all 0
 * truncated to max_len with HF's "longest_first": one token at a time from A while A is longer
 * than B, else from B (a single text keeps max_len minus its specials).
 *
 * Threads: after load, the const functions may be called from several threads at once.
 */
#ifndef XA_TOKENIZER_TOK_H
#define XA_TOKENIZER_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tokenizer/spm.h"
#include "tokenizer/wordpiece.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xa_tok xa_tok;

typedef enum xa_tok_kind {
    XA_TOK_KIND_SENTENCEPIECE = 0,
    XA_TOK_KIND_WORDPIECE,
} xa_tok_kind;

/* Load the tokenizer of a directory or a file (see above). On success *out is new (xa_tok_free).
 * Errors (*out NULL): USAGE (NULL), NOT_FOUND (a directory without a tokenizer: the message lists
 * what was looked for; a missing file), IO, FORMAT (a malformed file: file:line for vocab.txt, the
 * JSON key for tokenizer.json / tokenizer_config.json), UNSUPPORTED (a tokenizer.json of another
 * model type or pipeline, naming both; a SentencePiece model that the XLM-R ids cannot represent),
 * NOMEM. */
xa_status xa_tok_load(xa_tok **out, const char *path);

/* Wrap a SentencePiece model (switched to XLM-R ids); *out owns spm from then on, also on error
 * (then spm is freed). Errors as xa_spm_set_ids, NOMEM. */
xa_status xa_tok_from_spm(xa_tok **out, xa_spm *spm, const char *name);

void xa_tok_free(xa_tok *tok);

/* All of these take a non-NULL tok. */
xa_tok_kind xa_tok_get_kind(const xa_tok *tok);
/* The file the tokenizer came from. */
const char *xa_tok_path(const xa_tok *tok);
int32_t xa_tok_vocab_size(const xa_tok *tok);

/* Special ids (-1 when absent). cls/sep are <s>/</s> for XLM-R. */
typedef struct xa_tok_special {
    int32_t cls, sep, pad, unk, mask;
} xa_tok_special;
xa_tok_special xa_tok_special_ids(const xa_tok *tok);

/* Encode one text; add_special wraps it as cls A sep. Same contract as xa_spm_encode (ids
 * malloc'ed, never NULL on success). */
xa_status xa_tok_encode(const xa_tok *tok, const char *text, size_t len, int add_special,
                        int32_t **ids, size_t *n);
/* As xa_tok_encode plus the byte span of every id (specials: empty spans at 0 and len). */
xa_status xa_tok_encode_offsets(const xa_tok *tok, const char *text, size_t len, int add_special,
                                int32_t **ids, xa_spm_span **spans, size_t *n);

/* A model input. */
typedef struct xa_tok_input {
    int32_t *ids;       /* (n) owned */
    int32_t *types;     /* (n) owned: token_type_ids */
    size_t n;
    size_t n_truncated; /* tokens removed by truncation */
} xa_tok_input;

/* Encode text a (and text b when b is not NULL) with the specials of the model's family,
 * truncated to max_len tokens (max_len 0: no limit). Errors: USAGE (NULL, max_len smaller than the
 * specials: 2 single, 3 BERT pair, 4 XLM-R pair), as xa_tok_encode otherwise. On error *in is empty. */
xa_status xa_tok_encode_input(const xa_tok *tok, const char *a, size_t na, const char *b, size_t nb,
                              int max_len, xa_tok_input *in);
void xa_tok_input_free(xa_tok_input *in);

/* Id of a piece; the unk id when unknown or NULL. */
int32_t xa_tok_piece_to_id(const xa_tok *tok, const char *piece);
/* Piece of an id (owned by tok), NULL if out of range. */
const char *xa_tok_id_to_piece(const xa_tok *tok, int32_t id);
/* 1 when the id's piece begins a word: SentencePiece "▁..." pieces, WordPiece pieces without the
 * continuation prefix; 0 for continuations and specials. For whole-word masking. */
int xa_tok_is_word_start(const xa_tok *tok, int32_t id);

/* The SentencePiece model (NULL for WordPiece) and the WordPiece tokenizer (NULL for
 * SentencePiece), owned by tok. */
xa_spm *xa_tok_spm(const xa_tok *tok);
const xa_wordpiece *xa_tok_wordpiece(const xa_tok *tok);

#ifdef __cplusplus
}
#endif
#endif /* XA_TOKENIZER_TOK_H */
