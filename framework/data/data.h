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
#include "tokenizer/tok.h"

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
    uint8_t *word_start; /* (vocab) owned; whole-word masking: 1 for ids whose piece starts with
                            "▁"; NULL = per-token masking (xa_mlm_data_set_whole_word) */
} xa_mlm_data;

/* Read and encode `path` (UTF-8 text, one document per line; empty lines skipped) with tok (each
 * line as cls X sep: <s> X </s> for XLM-R, [CLS] X [SEP] for BERT), and cut it into blocks of T
 * tokens. max_docs > 0 stops after that many lines.
 * Errors: IO naming the file; USAGE when the text gives no complete block (with the token count
 * and a hint to lower T). */
xa_status xa_mlm_data_load(xa_mlm_data *d, const xa_tok *tok, const char *path, int T, uint64_t seed,
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


/* ---- whole-word masking (data/mlm.c) -----------------------------------------------------------
 * With whole-word masking a word (a piece starting with U+2581 "▁" and the pieces that follow it
 * up to the next such piece or special token) is selected with probability mask_prob and then
 * every piece of it is masked with the 80/10/10 rule (HF DataCollatorForWholeWordMask). */

/* Turn whole-word masking on (word starts from tok's pieces, xa_tok_is_word_start: "▁" pieces, or
 * WordPiece pieces without "##") or off (tok NULL); xa_mlm_mask and
 * xa_mlm_data_next then use it. Each word is selected independently with probability mask_prob
 * (HF picks a fixed count per sequence instead); specials are never masked; deterministic like
 * token masking. tok must be the corpus' tokenizer. Errors: USAGE
 * (vocabulary size differs from the corpus'), NOMEM. */
xa_status xa_mlm_data_set_whole_word(xa_mlm_data *d, const xa_tok *tok);

/* ---- labelled task data (data/task.c) ----------------------------------------------------------
 * Sentence classification: TSV lines "LABEL<TAB>TEXT" (a first line "label<TAB>text" is a header
 * and skipped) or JSON lines {"text": "...", "label": "..."} (other keys ignored).
 * Sentence-pair classification: TSV lines "LABEL<TAB>TEXT<TAB>TEXT_PAIR" (header
 * "label<TAB>text<TAB>text_pair" skipped) or JSON lines {"text", "text_pair", "label"}; encoded as
 * HF encodes a pair: XLM-R "<s> A </s></s> B </s>" (token types all 0), BERT "[CLS] A [SEP] B
 * [SEP]" (here <s> A </s> B </s> in the XLM-R id convention, token types 0 up to the first </s>,
 * 1 after it); truncated "longest_first" (one token at a time from the longer side, the second
 * side when they are equal), specials kept.
 * Multiple choice (COPA / XCOPA JSON lines {"premise", "choice1", "choice2", "question", "label"}):
 * every choice is the pair (premise + question prompt, choice), the label the index of the right
 * choice (an integer or its decimal text); the label names are "0" .. "N-1". The question
 * "cause" / "effect" becomes jiant's COPA prompt ("What was the cause?" / "What happened as a
 * result?"), any other question is used as written, no question key adds nothing.
 * Token tagging with BIO labels: CoNLL (one "WORD<TAB>TAG" or "WORD TAG" per line, sentences
 * separated by blank lines, "-DOCSTART-" lines skipped) or JSON lines {"tokens": [...],
 * "tags": [...]} ("ner_tags" when there is no "tags" key, as HF datasets export it). Each word is
 * encoded on its own (SentencePiece with a leading space, as XLM-R's tokenizer with
 * is_split_into_words); its tag goes on its first piece, XA_IGNORE_INDEX on the other pieces and
 * on <s> and </s> (HF run_ner's label_all_tokens=False).
 * Integer labels and tags (HF datasets' ClassLabel ids) are named through a label list: the
 * caller's (the recipe's data.task.labels), else a labels.json beside the file (a JSON array of
 * names, or {"names": [...]}); without a list, integer classification labels are named by their
 * decimal text and integer tags are an error. A list fixes the label set to it, in its order
 * (tagging: "O" first, then BIO tags).
 * Every example is <s> pieces </s>, truncated to max_len tokens (</s> kept). Malformed lines
 * (missing tab, empty text, bad JSON, a tag that is not O / B-X / I-X, tokens and tags of different
 * lengths, an unknown label when the label set is fixed, a label that is not UTF-8) are CONFIG errors
 * naming file:line. */

typedef enum xa_task_kind {
    XA_TASK_KIND_CLASSIFICATION = 0,
    XA_TASK_KIND_TAGGING,
    XA_TASK_KIND_PAIR,   /* sentence-pair classification */
    XA_TASK_KIND_CHOICE, /* multiple choice */
    XA_TASK_KIND_QA,     /* extractive question answering (data/qa.c) */
} xa_task_kind;
typedef enum xa_task_format {
    XA_TASK_FORMAT_AUTO = 0, /* from the extension: .jsonl / .json -> JSONL; .conll / .bio -> CoNLL;
                                .tsv / .txt -> TSV (classification, pairs) or CoNLL (tagging) */
    XA_TASK_FORMAT_TSV,
    XA_TASK_FORMAT_JSONL,
    XA_TASK_FORMAT_CONLL,
} xa_task_format;

#define XA_MAX_LABELS 256
#define XA_TASK_MAX_CHOICES 16
typedef struct xa_labels {
    int n;
    char names[XA_MAX_LABELS][64]; /* id -> name; tagging: "O" first, then B-/I- pairs by type */
} xa_labels;

/* Index of a label name, or -1. */
int xa_labels_find(const xa_labels *l, const char *name);

/* JSON keys of a task file's fields; NULL (or "") keeps the default named in brackets. */
typedef struct xa_task_fields {
    const char *text;      /* [text] classification and pairs: the (first) text */
    const char *text_pair; /* [text_pair] pairs: the second text */
    const char *label;     /* [label] classification, pairs, multiple choice */
    const char *tokens;    /* [tokens] tagging */
    const char *tags;      /* [tags, else ner_tags] tagging */
    const char *premise;   /* [premise] multiple choice: the context */
    const char *question;  /* [question] multiple choice: optional prompt ("cause" / "effect") */
    const char *const *choices; /* [choice1, choice2] multiple choice: the choices' keys */
    int n_choices;              /* 0: the default; at most XA_TASK_MAX_CHOICES */
} xa_task_fields;

/* What a task file holds and how to read it. */
typedef struct xa_task_input {
    xa_task_kind kind;
    xa_task_format format;
    const xa_task_fields *fields;    /* NULL: every default */
    const char *const *label_names;  /* names of integer labels (id -> name), or NULL: labels.json
                                        beside the file if there is one */
    int n_label_names;
    int bert_pairs;                  /* pairs as BERT encodes them (one separator, token types) */
    int doc_stride;                  /* question answering: tokens shared by consecutive windows
                                        of a long context; 0: the default, min(128, max_len / 3) */
} xa_task_input;

/* Read a label list file (labels.json: an array of names, or an object with "names"): into l.
 * Errors: NOT_FOUND / IO, FORMAT naming the file (not such JSON, a name that is not a string of
 * 1..63 bytes, a name twice, more than XA_MAX_LABELS). */
xa_status xa_task_labels_read(xa_labels *l, const char *path);

typedef struct xa_task_example {
    int32_t *ids;      /* (len) token ids, <s> ... </s> (view into the data's pool);
                          multiple choice: (n_choices, len), each choice padded with pad */
    int32_t *tags;     /* (len) tagging: label ids on first pieces, XA_IGNORE_INDEX elsewhere */
    int32_t *word;     /* (len) tagging: word index of each first piece, -1 elsewhere */
    int32_t *types;    /* pairs, multiple choice: token types, laid out as ids; NULL otherwise */
    int32_t *choice_len; /* (n_choices) multiple choice: each choice's length; NULL otherwise */
    int len;           /* tokens; multiple choice: the longest choice */
    int n_choices;     /* multiple choice: rows of ids; 1 otherwise */
    int n_words;       /* tagging: words in the sentence (words cut by truncation included) */
    int32_t label;     /* classification, pairs; multiple choice: the right choice; QA: = start */
    int64_t line;      /* 1-based line in the file (the first line of a CoNLL sentence; SQuAD
                          JSON: the question's 1-based index in the file) */
    /* question answering: this example is one feature (window) of a question */
    int32_t *offsets;  /* (len, 2) byte span [begin, end) of each token in the question's context,
                          -1 -1 for the question's tokens and the specials */
    int32_t qa_index;  /* the question (index into xa_task_data.qa) */
    int32_t start, end; /* training target: the answer's first and last token, both 0 (<s>) when
                           the answer is not wholly inside this window or there is none */
} xa_task_example;

/* One question of a QA file with its context and gold answers (the unit EM / F1 score). */
typedef struct xa_qa_example {
    char *id;                /* owned; "" when the file gives none */
    char *question;          /* owned, as written */
    char *context;           /* owned, NUL-terminated, context_len bytes */
    size_t context_len;
    int n_answers;           /* 0: unanswerable (SQuAD 2.0 is_impossible, or no answers) */
    char **answers;          /* (n_answers) owned texts */
    int32_t *answer_start;   /* (n_answers) byte offsets into context (checked on load) */
    int is_impossible;
    int first_feature, n_features; /* its windows: ex[first_feature .. + n_features) */
    int64_t line;            /* as xa_task_example.line */
} xa_qa_example;

typedef struct xa_task_data {
    xa_task_kind kind;
    int n;                 /* examples */
    int n_choices;         /* multiple choice: choices of every example; 1 otherwise */
    xa_task_example *ex;   /* (n) owned */
    int32_t *pool;         /* owned storage of ids / tags / word */
    size_t pool_n, pool_cap;
    xa_labels labels;      /* the label set used */
    int64_t n_truncated;   /* examples cut to max_len (QA: questions split into windows) */
    char path[1024];
    xa_qa_example *qa;     /* (n_qa) owned: question answering's questions; NULL otherwise */
    int n_qa;
    int doc_stride;        /* QA: the stride used */
} xa_task_data;

/* Read a task file. labels: when labels->n > 0 the set is fixed (a label outside it is an error);
 * when 0 it is collected from the file (classification: sorted by name; tagging: "O", then for
 * each entity type in sorted order "B-T", "I-T"; a label list, see above: the list) and written
 * back to *labels (untouched on error). CoNLL lines with
 * more columns take the first as the word and the last as the tag. Examples use the specials of
 * tok (<s> X </s> for XLM-R, [CLS] X [SEP] for BERT; a word of a tagging file is encoded on its
 * own, as HF's is_split_into_words); tok NULL is the check mode (every text one <unk> piece: formats and labels are
 * checked without a tokenizer). On error *d is empty. Errors: NOT_FOUND / IO (cannot open or read, naming the file);
 * CONFIG (a malformed line, naming "path:LINE"; a file without examples; an extension AUTO does
 * not know; CoNLL for classification or TSV for tagging; more than XA_MAX_LABELS labels or a label
 * of 64 bytes or more); USAGE (NULL argument, max_len < 2, or < 6 for pairs); NOMEM. */
xa_status xa_task_data_load(xa_task_data *d, const xa_tok *tok, const char *path, xa_task_kind kind,
                            xa_task_format fmt, int max_len, xa_labels *labels);
/* xa_task_data_load with the kind, format, field names and label list of `in`. */
xa_status xa_task_data_load_input(xa_task_data *d, const xa_tok *tok, const char *path,
                                  const xa_task_input *in, int max_len, xa_labels *labels);
/* xa_task_data_load_input on text[0..n) (not a file; name, e.g. "stdin", stands for the path in
 * messages and decides an AUTO format by its extension: pass in->format for a name without one).
 * unlabelled (the input of prediction): a multiple-choice line without its label key gets label 0
 * and a question without "answers" none; everything else is checked as in a file. */
xa_status xa_task_data_load_text(xa_task_data *d, const xa_tok *tok, const char *name, const char *text, size_t n,
                                 const xa_task_input *in, int max_len, xa_labels *labels, int unlabelled);
void xa_task_data_free(xa_task_data *d);

/* ---- extractive question answering (data/qa.c) -------------------------------------------------
 * Input: the SQuAD JSON layout ({"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
 * "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}, one JSON document)
 * or the flat Hugging Face datasets export (JSON lines {"id", "context", "question", "answers":
 * {"text": [...], "answer_start": [...]}}; an answers list of {"text", "answer_start"} objects is
 * read too). A .json file holding one object with "data" is SQuAD, anything else JSON lines.
 * answer_start counts characters (code points), as in Python; every answer must be found at its
 * offset (the first mismatch is a CONFIG error naming the file, the place and both texts).
 * Encoding is HF run_qa.py's prepare_train_features / prepare_validation_features: the question
 * (leading whitespace stripped) first, then the context, truncation "only_second" with a stride:
 * XLM-R "<s> Q </s></s> C </s>" (BERT "<s> Q </s> C </s>", types 1 from C on); the context
 * tokens are cut into windows of W = max_len - |Q| - specials tokens, consecutive windows sharing
 * doc_stride tokens (the tokenizers library's overflow rule: starts 0, W - s, 2 (W - s), ...,
 * the last window ends at the context's end). Deviations, where HF would stop with an error: a
 * question longer than (max_len - specials) / 2 tokens is cut to that, and a stride >= W is
 * lowered to W - 1. Each window is one xa_task_example (a "feature") with its token offsets into
 * the context (SentencePiece's byte spans, leading and trailing whitespace trimmed), its question
 * index, and as training target the first answer's first and last token, or 0 (<s>) for both
 * when the answer is not wholly inside the window or the question has none (HF's CLS rule; the
 * walk to the answer's tokens stays inside the window's context, where HF's can run into </s>).
 * tok NULL is the check mode (question and context one piece each). */

/* Load a QA file into d (kind XA_TASK_KIND_QA; d->labels = {"start", "end"}); in->doc_stride as
 * documented on xa_task_input. Errors: NOT_FOUND / IO; CONFIG naming "path:LINE" (JSON lines) or
 * "path: data[i].paragraphs[j].qas[k]..." (SQuAD) with what was expected (missing or mistyped
 * keys, empty question or context, an answer not at its answer_start, no questions); USAGE
 * (max_len < 8, a negative stride); NOMEM. xa_task_data_load_input calls this for the QA kind. */
xa_status xa_qa_data_load(xa_task_data *d, const xa_tok *tok, const char *path, const xa_task_input *in, int max_len);

/* xa_qa_data_load on text[0..n) named name (xa_task_data_load_text; unlabelled as there). */
xa_status xa_qa_data_load_text(xa_task_data *d, const xa_tok *tok, const char *name, const char *text, size_t n,
                               const xa_task_input *in, int max_len, int unlabelled);
/* Free d's questions (xa_task_data_free calls it). */
void xa_qa_data_free_questions(xa_task_data *d);

/* Byte offset of code point `chars` in s[0..n), or -1 when s is shorter. */
int64_t xa_qa_char_to_byte(const char *s, size_t n, int64_t chars);
/* Code points in s[0..n) (the character offset of byte n). */
int64_t xa_qa_byte_to_char(const char *s, size_t n);

/* A padded batch of examples. */
typedef struct xa_task_batch {
    int B, T;          /* rows (sequences: examples x choices), and the longest row's length */
    int n_ex;          /* examples (= B, or B / n_choices for multiple choice) */
    int n_choices;     /* rows per example */
    int cap_B, cap_T;
    int32_t *ids;      /* (cap_B, cap_T) as (B, T): pads hold pad_id */
    int32_t *types;    /* (cap_B, cap_T) as (B, T): token types (0 unless BERT pairs) */
    int32_t *lens;     /* (cap_B) */
    int32_t *labels;   /* classification, multiple choice (n_ex); tagging (cap_B, cap_T) as
                          (B, T), pads ignored; QA (n_ex, 2): start, end of each row */
    int32_t *index;    /* (cap_B) example indices, n_ex of them */
    int has_types;     /* some type is not 0 */
} xa_task_batch;

/* Buffers for batches of up to max_B rows of up to max_T tokens (batch_size and max_len;
 * multiple choice: batch_size x n_choices rows).
 * Errors: USAGE (max_B or max_T < 1), NOMEM. */
xa_status xa_task_batch_init(xa_task_batch *b, int max_B, int max_T);
void xa_task_batch_free(xa_task_batch *b);

/* Length-bucketed batches over a task data set. With shuffle, each epoch e draws a permutation
 * from (seed, e), cuts it into chunks of 50 batches, sorts each chunk by length, cuts batches and
 * shuffles the batch order: batches hold sequences of similar length and the same seed gives the
 * same batches. Without shuffle (evaluation), examples are taken sorted by length. */
typedef struct xa_task_batcher {
    const xa_task_data *data;
    int batch_size, shuffle;
    uint64_t seed;
    int32_t pad_id;
    int64_t epoch, pos;     /* current epoch and next batch within it */
    int64_t n_batches;      /* per epoch */
    int32_t *order;         /* (n) example order of the current epoch, owned */
    int64_t *starts;        /* (n_batches + 1) batch boundaries into order, owned */
} xa_task_batcher;

/* bt borrows d (keep it alive); it starts at (epoch 0, pos 0). n_batches = ceil(n / batch_size):
 * the last batch of an epoch may be smaller; batch_size counts examples (multiple choice: each is
 * n_choices rows). Errors: USAGE (no examples, batch_size < 1), NOMEM. */
xa_status xa_task_batcher_init(xa_task_batcher *bt, const xa_task_data *d, int batch_size,
                               int shuffle, uint64_t seed, int32_t pad_id);
void xa_task_batcher_free(xa_task_batcher *bt);
/* Move to (epoch, pos) (recomputing that epoch's order). */
void xa_task_batcher_seek(xa_task_batcher *bt, int64_t epoch, int64_t pos);
/* Fill the next batch; returns 1, or 0 at the end of the epoch (b->B = 0; bt is then at
 * (epoch + 1, 0) and the next call starts the following epoch). b must hold batch_size rows and
 * the longest example (asserted). */
int xa_task_batcher_next(xa_task_batcher *bt, xa_task_batch *b);

/* ---- aligned pairs (data/pairs.c) ----------------------------------------------------------------
 * TSV "lang<TAB>en<TAB>text" (header "lang..." skipped): aligned paragraphs for translation
 * language modelling and sentence alignment of the base. Sampling is a function of (seed, step),
 * with languages drawn by q_l ~ n_l^alpha; see pairs.c. */

#define XA_PAIR_MAX_LANGS 64
#define XA_PAIR_MAX_BATCH 1024
#define XA_IGNORE_INDEX_DATA (-100) /* == XA_IGNORE_INDEX of tensor.h */

typedef struct xa_pair {
    int64_t off[2];  /* sides' offsets into the pool: 0 = English, 1 = the other language */
    int32_t len[2];  /* tokens of each side, <s> ... </s>, at most max_side */
    int32_t lang;    /* index into langs */
    uint64_t key;    /* hash of the English side's ids (repeats are redrawn within a batch) */
} xa_pair;

typedef struct xa_pair_data {
    int32_t *pool;                          /* owned: every side's ids */
    size_t pool_n, pool_cap;
    xa_pair *pairs;                         /* (n) owned */
    int64_t n, cap;
    int32_t *by_lang;                       /* (n) owned: pair indices grouped by language */
    int n_langs;
    char langs[XA_PAIR_MAX_LANGS][16];
    int64_t lang_start[XA_PAIR_MAX_LANGS], lang_count[XA_PAIR_MAX_LANGS];
    double lang_prob[XA_PAIR_MAX_LANGS];    /* q_l ~ n_l^alpha */
    double lang_cum[XA_PAIR_MAX_LANGS];
    int max_side;
    uint64_t seed;
} xa_pair_data;

/* Read a pair file; every side is truncated to max_side (>= 3) tokens. Errors: NOT_FOUND / IO
 * (naming the file), CONFIG (a malformed line as path:LINE, an empty file, more than
 * XA_PAIR_MAX_LANGS languages), USAGE, NOMEM. */
xa_status xa_pair_data_load(xa_pair_data *d, const xa_tok *tok, const char *path, int max_side,
                            double alpha, uint64_t seed);
void xa_pair_data_free(xa_pair_data *d);
/* The n pairs of (step, stream): idx (n) pair indices, swap (n, may be NULL) the order bits. */
void xa_pair_data_sample(const xa_pair_data *d, int64_t step, uint64_t stream, int n, int32_t *idx,
                         uint8_t *swap);
/* A TLM batch of b->B rows "<s> A </s></s> B </s>" (random order per row), right-padded, masked
 * with `mask`'s settings (its specials, vocabulary, probability, whole-word flag); rows, targets
 * and m as xa_mlm_data_next, laid out with the returned row length T (<= b->T, which must be at
 * least 2 * max_side). */
int xa_pair_tlm_batch(const xa_pair_data *d, const xa_mlm_data *mask, int64_t step,
                      xa_mlm_batch *b);
/* An alignment batch: rows [0, n) the English sides and [n, 2n) the other sides of n pairs,
 * right-padded with pad; ids (2n, T) with the returned T (<= max_T), lens (2n). */
int xa_pair_align_batch(const xa_pair_data *d, int64_t step, int n, int32_t *ids, int32_t *lens,
                        int32_t pad, int max_T);
/* The index of language `code` in d->langs, or -1. */
int xa_pair_data_lang(const xa_pair_data *d, const char *code);
/* An alignment batch of n pairs of language `lang` only (an index with pairs; drawn uniformly
 * within it, a function of (seed, step) too, another stream than xa_pair_align_batch's): layout
 * as xa_pair_align_batch. */
int xa_pair_align_batch_lang(const xa_pair_data *d, int lang, int64_t step, int n, int32_t *ids, int32_t *lens,
                             int32_t pad, int max_T);

#ifdef __cplusplus
}
#endif
#endif /* XA_DATA_H */
