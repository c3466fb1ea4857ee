/* tokenizer/spm: a C API over SentencePiece 0.1.97 (libsentencepiece, libsentencepiece_train).
 *
 * Loads a SentencePiece model (from a file or from memory), encodes UTF-8 text to ids (optionally
 * with byte spans), decodes ids, maps pieces to ids and back, and trains unigram or BPE models.
 * No C++ exception crosses this API: every failure is an xa_status plus the thread's error record
 * (core.h), which names the file or buffer and the problem.
 *
 * Two id conventions for a loaded model (xa_spm_set_ids):
 *  - XA_SPM_IDS_NATIVE (default): SentencePiece's own ids. Specials are the model's bos/eos/unk;
 *    pad is the model's pad id (or a "<pad>" piece); mask is a "<mask>" piece; -1 when absent.
 *  - XA_SPM_IDS_XLMR: the fairseq / Hugging Face XLMRobertaTokenizer convention:
 *    <s>=0, <pad>=1, </s>=2, <unk>=3, every other piece = SentencePiece id + 1, SentencePiece's
 *    unknown -> 3, <mask> = SentencePiece size + 1 (the last id), vocabulary = size + 2.
 *    It needs SentencePiece ids 0-2 to be unknown/control/unused pieces (they are hidden behind
 *    <pad>, </s>, <unk>): true for XLM-R's sentencepiece.bpe.model and for every model that
 *    xa_spm_train writes (<unk>=0, <s>=1, </s>=2, no pad).
 *
 * Threads: after load and xa_spm_set_ids, the const functions may be called from several threads
 * at once on the same xa_spm (SentencePiece's encode/decode are const and thread-safe).
 *
 * Training determinism (measured with sentencepiece 0.1.97 on tests/data/spm/corpus.txt, unigram
 * and BPE, 1/2/4 threads, with and without sentence sampling, 6 runs each in 3 processes; checked
 * by test_spm_train_deterministic): the same inputs and options give byte-identical .model and
 * .vocab files. The output path is not recorded in the model (xa_spm_train lets SentencePiece
 * return the serialized model and writes the files itself), so the bytes do not depend on
 * model_prefix.
 *  - num_threads: a unigram model depends on it (the EM step sums per-thread partial counts over a
 *    fixed interleaved split, so the float sums change with the thread count but not from run to
 *    run); BPE pieces do not (the .model still records num_threads in its trainer_spec). Keep
 *    num_threads fixed (default 1) to reproduce a model.
 *  - seed: passed to sentencepiece::SetRandomGeneratorSeed (process-wide, stays set), but in 0.1.97
 *    it changes nothing in unigram/BPE training: sampling input_sentence_size sentences uses
 *    SentencePiece's fixed internal seed (12345678), so the sample depends only on the inputs.
 *  - .vocab: "piece<TAB>score" lines formatted exactly as SentencePiece's trainer writes them.
 *
 * Not done here: sampling (subword regularisation), n-best, pair encodings (<s> A </s></s> B </s>),
 * the "word" and "char" model types, custom normalisation rules.
 *
 * References: Kudo & Richardson 2018 (SentencePiece), Kudo 2018 (unigram LM), Sennrich et al. 2016
 * (BPE); fairseq/transformers XLMRobertaTokenizer for the XLM-R id convention.
 */
#ifndef XA_TOKENIZER_SPM_H
#define XA_TOKENIZER_SPM_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded SentencePiece model plus its active id convention. Opaque. */
typedef struct xa_spm xa_spm;

/* Load a .model file. On success *out is a new tokenizer (free with xa_spm_free) in the native
 * convention. Errors (*out set to NULL): XA_STATUS_USAGE (NULL argument), XA_STATUS_IO (cannot
 * open or read `path`), XA_STATUS_FORMAT (empty file or not a SentencePiece model),
 * XA_STATUS_NOMEM. The message names `path`. */
xa_status xa_spm_load(xa_spm **out, const char *path);

/* Load a serialized model (the bytes of a .model file) from data[0..n). The bytes are copied, the
 * caller keeps `data`. `name` (may be NULL: "<memory>") labels error messages. Errors as
 * xa_spm_load, without XA_STATUS_IO. */
xa_status xa_spm_load_from_memory(xa_spm **out, const void *data, size_t n, const char *name);

/* Free a tokenizer; accepts NULL. Invalidates the strings returned by xa_spm_id_to_piece. */
void xa_spm_free(xa_spm *spm);

/* The SentencePiece version this library was built against ("0.1.97"). */
const char *xa_spm_library_version(void);

/* Id conventions (see the top of this file). */
typedef enum xa_spm_ids {
    XA_SPM_IDS_NATIVE = 0,
    XA_SPM_IDS_XLMR = 1,
} xa_spm_ids;

/* Select the id convention used by every function below. Returns XA_STATUS_OK, XA_STATUS_USAGE
 * (NULL spm or unknown convention) or XA_STATUS_UNSUPPORTED (XLM-R asked for a model whose
 * SentencePiece ids 0-2 include a normal piece, which the convention cannot represent); on error
 * the convention is unchanged. Not thread-safe with concurrent use of `spm`. */
xa_status xa_spm_set_ids(xa_spm *spm, xa_spm_ids convention);

/* The active convention. spm must not be NULL. */
xa_spm_ids xa_spm_get_ids(const xa_spm *spm);

/* Number of ids in the active convention: SentencePiece's piece count (native) or count + 2
 * (XLM-R). spm must not be NULL. */
int32_t xa_spm_vocab_size(const xa_spm *spm);

/* Special ids in the active convention; -1 when the model has none. XLM-R: {0, 2, 1, 3, size+1}. */
typedef struct xa_spm_special {
    int32_t bos; /* <s>: prepended by add_special */
    int32_t eos; /* </s>: appended by add_special */
    int32_t pad;
    int32_t unk;
    int32_t mask;
} xa_spm_special;

/* spm must not be NULL. */
xa_spm_special xa_spm_special_ids(const xa_spm *spm);

/* Encode text[0..len) (UTF-8, not necessarily NUL-terminated; text may be NULL when len is 0).
 * add_special != 0 wraps the ids as bos X eos (XLM-R: <s> X </s>; native: the model's bos/eos,
 * each only if the model defines it). On success *ids is a malloc'ed array of *n_ids ids (never
 * NULL, even for 0 ids) that the caller free()s. Errors (*ids NULL, *n_ids 0): XA_STATUS_USAGE
 * (NULL argument, len >= 2^31), XA_STATUS_NOMEM, XA_STATUS_RUNTIME (SentencePiece failed). */
xa_status xa_spm_encode(const xa_spm *spm, const char *text, size_t len, int add_special,
                        int32_t **ids, size_t *n_ids);

/* The byte span [begin, end) of one id in the encoded text. */
typedef struct xa_spm_span {
    size_t begin;
    size_t end;
} xa_spm_span;

/* As xa_spm_encode, plus (*spans)[i] = the bytes of text that id i covers, as SentencePiece
 * reports them: spans are ordered and do not overlap; a piece made of the word-boundary marker
 * alone may be empty; a piece "▁word" after a space covers the space. Specials get empty spans
 * ([0,0) for bos, [len,len) for eos). *spans is malloc'ed (never NULL on success), the caller
 * free()s it. On error both outputs are NULL and *n_ids is 0. */
xa_status xa_spm_encode_offsets(const xa_spm *spm, const char *text, size_t len, int add_special,
                                int32_t **ids, xa_spm_span **spans, size_t *n_ids);

/* Decode ids[0..n) (ids may be NULL when n is 0) to UTF-8. bos, eos, pad and mask ids are skipped;
 * unk renders as SentencePiece's " ⁇ ". On success *text is a malloc'ed NUL-terminated string the
 * caller free()s. Errors (*text NULL): XA_STATUS_USAGE (NULL argument, an id outside
 * [0, vocab_size): the message gives the id and its position), XA_STATUS_NOMEM, XA_STATUS_RUNTIME.
 */
xa_status xa_spm_decode(const xa_spm *spm, const int32_t *ids, size_t n, char **text);

/* Id of a piece in the active convention ("▁Hello", "<s>", ...); the unk id if the piece is
 * unknown or NULL. XLM-R also knows "<s>", "<pad>", "</s>", "<unk>", "<mask>". spm not NULL. */
int32_t xa_spm_piece_to_id(const xa_spm *spm, const char *piece);

/* Piece of an id in the active convention, NUL-terminated; NULL if id is out of range. The string
 * is owned by spm and valid until xa_spm_free. spm not NULL. */
const char *xa_spm_id_to_piece(const xa_spm *spm, int32_t id);

/* ---- training ------------------------------------------------------------------------------- */

/* Options of xa_spm_train. Start from xa_spm_train_opts_default() and set what you need. The
 * strings and arrays are borrowed for the duration of the call. */
typedef struct xa_spm_train_opts {
    const char *const *inputs; /* text files, one sentence a line; paths must not hold ',' */
    size_t n_inputs;           /* >= 1 */
    const char *model_prefix;  /* writes PREFIX.model, PREFIX.vocab (each replaced atomically) */
    const char *model_type;    /* "unigram" (default) or "bpe" */
    int32_t vocab_size;        /* final piece count including <unk>, <s>, </s>; default 8000 */
    double character_coverage; /* in [0.98, 1]; default 0.9995 (1.0 for small alphabets) */
    const char *const *user_symbols; /* pieces always kept whole (e.g. "<mask>"); may be NULL */
    size_t n_user_symbols;
    int64_t input_sentence_size; /* sample this many sentences (> 100); 0 = all (default) */
    int shuffle;                 /* shuffle before sampling; default 1 */
    uint32_t seed;               /* SentencePiece's random seed; default 42; not UINT32_MAX
                                    (no effect on unigram/BPE in 0.1.97, see above) */
    int32_t num_threads;         /* 1..128; default 1 (see determinism above) */
    int32_t max_sentence_length; /* bytes, 10..2^30; longer lines are skipped; default 4192 */
    int byte_fallback;           /* 1: unknown characters become <0xXX> byte pieces; default 0 */
    int split_digits;            /* 1: every digit is its own piece; default 0 */
    int verbose;                 /* 0 (default): silence SentencePiece's log lines except
                                    errors; 1: keep its progress log on stderr */
} xa_spm_train_opts;

/* The defaults listed above; inputs and model_prefix are NULL and must be set. */
xa_spm_train_opts xa_spm_train_opts_default(void);

/* Train a model with SentencePieceTrainer and write PREFIX.model and PREFIX.vocab (written under a
 * temporary name and renamed, so a failure never leaves a half-written model). Returns
 * XA_STATUS_OK; XA_STATUS_USAGE for bad options (no inputs, a missing or unreadable input file:
 * the message names it, unknown model type, vocab_size too small for the meta pieces and user
 * symbols, or too small/large for the corpus as SentencePiece reports it, coverage out of range,
 * ...); XA_STATUS_IO when the outputs cannot be written; XA_STATUS_RUNTIME when SentencePiece
 * fails otherwise; XA_STATUS_NOMEM. */
xa_status xa_spm_train(const xa_spm_train_opts *opts);

#ifdef __cplusplus
}
#endif
#endif /* XA_TOKENIZER_SPM_H */
