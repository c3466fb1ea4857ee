/* tokenizer/wordpiece: BERT's WordPiece tokenizer (vocab.txt), in C over utf8proc.
 *
 * Gives the ids of Hugging Face transformers' BertTokenizer (the slow one, 4.3x/4.4x) for a
 * vocab.txt with its do_lower_case / strip_accents / tokenize_chinese_chars settings, and, with
 * `fast` set, those of a tokenizer.json that holds a BertNormalizer + BertPreTokenizer + WordPiece
 * model (BertTokenizerFast). The steps, for one text:
 *  1. special strings (opts.specials, e.g. "[CLS]") found in the raw bytes, leftmost-longest and
 *     case-sensitive, become their ids; the text between them goes on;
 *  2. slow with lowercase: every character is lowercased on its own (no Final_Sigma; U+0130 becomes
 *     "i" + U+0307), as PreTrainedTokenizer.tokenize does before BertTokenizer sees the text;
 *  3. clean text: U+0000, U+FFFD and every category C* character except \t \n \r are dropped; \t
 *     \n \r and Zs become a space. A space goes around every CJK ideograph (BERT's 8 ranges);
 *  4. slow: NFC; then split on whitespace (space, U+2028, U+2029);
 *  5. per word, slow: lowercase, then strip accents (NFD, drop Mn) when lowercase and strip_accents
 *     != 0, or when strip_accents == 1; fast: strip accents first, then lowercase;
 *  6. every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, category P*) is a word;
 *  7. WordPiece per word: more than max_input_chars characters is the unk piece; otherwise greedy
 *     longest match first from the left with continuation pieces prefixed by `prefix` ("##"); a
 *     word whose rest cannot be matched is one unk piece.
 * Invalid UTF-8 bytes are dropped (Python decoding with errors="replace" gives U+FFFD, which step 3
 * drops). Unicode data is utf8proc's (2.8: Unicode 15.0); tests/data/wordpiece/unicode.tsv checks
 * every code point of Unicode 14.0 against Python's unicodedata.
 *
 * vocab.txt is read as transformers' load_vocab reads it: line k (from 0) is piece k, only "\n" is
 * stripped; a piece listed twice maps to its last line. Refused with file:line and what was expected:
 * an empty file, invalid UTF-8, a NUL byte, a "\r" line end, no unk piece, more than 2^24 lines.
 *
 * Not here: training, decoding ids back to text, BasicTokenizer's never_split lists beyond the
 * specials, do_basic_tokenize = false, added tokens that are matched after normalisation.
 *
 * Threads: after load, the const functions may be called from several threads at once.
 */
#ifndef XA_TOKENIZER_WORDPIECE_H
#define XA_TOKENIZER_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tokenizer/spm.h" /* xa_spm_span */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xa_wordpiece xa_wordpiece;

/* Settings; start from xa_wordpiece_opts_default(). Strings are copied by the loaders. */
typedef struct xa_wordpiece_opts {
    int lowercase;       /* do_lower_case; default 1 (BertTokenizer's default) */
    int strip_accents;   /* -1 (default): as lowercase (HF None); 0: never; 1: always */
    int chinese_chars;   /* tokenize_chinese_chars; default 1 */
    int fast;            /* 0 (default): BertTokenizer (NFC, lowercase then strip); 1: the
                            tokenizers library's BertNormalizer (no NFC, strip then lowercase) */
    int max_input_chars; /* max_input_chars_per_word; default 100 */
    const char *unk;     /* unk_token; default "[UNK]" (must be in the vocabulary) */
    const char *prefix;  /* continuing_subword_prefix; default "##" */
    const char *const *specials; /* strings kept whole (step 1); default NULL: the BERT five,
                                    "[PAD]" "[UNK]" "[CLS]" "[SEP]" "[MASK]"; those not in the
                                    vocabulary are skipped */
    size_t n_specials;
} xa_wordpiece_opts;

xa_wordpiece_opts xa_wordpiece_opts_default(void);

/* Read vocab.txt. opts NULL: the defaults. On success *out is a new tokenizer (xa_wordpiece_free).
 * Errors (*out NULL): USAGE (NULL argument, bad opts), NOT_FOUND / IO (cannot open or read the
 * file), FORMAT ("path:LINE" with what was expected, see above), NOMEM. */
xa_status xa_wordpiece_load(xa_wordpiece **out, const char *path, const xa_wordpiece_opts *opts);

/* Build from pieces[0..n) (piece i has id i; NULL entries are holes that never match: ids a
 * tokenizer.json does not use). `name` labels error messages. Errors as xa_wordpiece_load. */
xa_status xa_wordpiece_from_pieces(xa_wordpiece **out, const char *const *pieces, size_t n,
                                   const xa_wordpiece_opts *opts, const char *name);

void xa_wordpiece_free(xa_wordpiece *wp);

/* Number of ids (lines of vocab.txt). wp not NULL. */
int32_t xa_wordpiece_vocab_size(const xa_wordpiece *wp);
/* Id of a piece ("##ing", "[CLS]"), -1 when absent or NULL. */
int32_t xa_wordpiece_piece_to_id(const xa_wordpiece *wp, const char *piece);
/* Piece of an id, owned by wp; NULL when out of range or a hole. */
const char *xa_wordpiece_id_to_piece(const xa_wordpiece *wp, int32_t id);
/* The unk id. */
int32_t xa_wordpiece_unk_id(const xa_wordpiece *wp);
/* The settings in use (strings owned by wp). */
xa_wordpiece_opts xa_wordpiece_get_opts(const xa_wordpiece *wp);

/* Encode text[0..len) (UTF-8; text may be NULL when len is 0) without [CLS]/[SEP]. On success *ids
 * is a malloc'ed array of *n ids (never NULL) and, when spans is not NULL, *spans the malloc'ed
 * byte range of the input that each id comes from (ordered; a piece of a word changed by NFC
 * covers the characters it came from, or the whole word when they cannot be told apart).
 * Errors (outputs NULL / 0): USAGE (NULL argument, len >= 2^31), NOMEM. */
xa_status xa_wordpiece_encode(const xa_wordpiece *wp, const char *text, size_t len, int32_t **ids,
                              xa_spm_span **spans, size_t *n);

/* Steps 1-6 only: the words that WordPiece would see, joined by single spaces, as a malloc'ed
 * NUL-terminated string (specials included as they are). Errors as xa_wordpiece_encode. */
xa_status xa_wordpiece_basic(const xa_wordpiece *wp, const char *text, size_t len, char **out);

#ifdef __cplusplus
}
#endif
#endif /* XA_TOKENIZER_WORDPIECE_H */
