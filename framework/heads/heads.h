/* heads: the task heads on top of the encoder's last hidden state, with their loss.
 *  - sequence classification (XLM-R style, AdapterHub flex head "classification", layers 2):
 *        pooled = tanh(Dropout(h[:, 0]) W1^T + b1);  logits = Dropout(pooled) W2^T + b2
 *    (HF RobertaClassificationHead; AdapterHub modules 1 and 4: heads.NAME.1.*, heads.NAME.4.*)
 *  - token classification ("tagging", layers 1): logits = Dropout(h) W^T + b per token; the loss
 *    counts only tokens whose label is not XA_IGNORE_INDEX (the first piece of each word).
 *  - multiple choice (AdapterHub "multiple_choice", layers 2): each of the B = G*N rows (G
 *    examples of N choices, choice-major within an example) is scored as classification scores it
 *    with one output, s = Dropout(tanh(Dropout(h[:, 0]) W1^T + b1)) w2^T + b2, and the scores are
 *    viewed as logits (G, N) (AdapterHub MultipleChoiceHead: logits.view(-1, num_choices)); the
 *    loss is the cross-entropy over the N choices with the right choice's index as label.
 *  - extractive question answering (AdapterHub "question_answering", layers 1, num_labels 2):
 *    logits = Dropout(h) W^T + b per token, (B, T, 2) split into start (B, T) and end (B, T)
 *    logits (QuestionAnsweringHead); labels (B, 2) are each row's start and end token; the loss is
 *    (CE(start) + CE(end)) / 2, each a mean over the rows whose position is inside the row, the
 *    softmax over the row's own positions t < lens[b] (xa_head_forward_qa; HF pads every
 *    sequence to max_seq_length and its softmax runs over the pads too: with lens NULL, or with
 *    unpadded rows, the two agree).
 * Loss: mean cross-entropy over counted rows (torch F.cross_entropy, ignore_index -100); with
 * class weights (xa_head_set_class_weights) torch's weighted mean sum w[y] loss / sum w[y].
 * One parameter group per head; frozen heads hold no gradient memory. */
#ifndef XA_HEADS_H
#define XA_HEADS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xa_head_kind {
    XA_HEAD_CLASSIFICATION = 0, /* one label per sequence, from the first token (<s>) */
    XA_HEAD_TAGGING,            /* one label per token */
    XA_HEAD_MULTIPLE_CHOICE,    /* one score per sequence from <s>, softmax over K = N choices */
    XA_HEAD_QUESTION_ANSWERING, /* start and end logits per token (K = 2), softmax over positions */
} xa_head_kind;

enum { XA_HEAD_W1 = 0, XA_HEAD_B1, XA_HEAD_W2, XA_HEAD_B2, XA_HEAD_N_TENSORS };

typedef struct xa_head {
    xa_head_kind kind;
    int C, K;                      /* hidden size, number of labels */
    float p_drop;                  /* dropout before each dense (HF: classifier_dropout) */
    float *params, *grads;         /* owned; grads NULL when frozen */
    float *t[XA_HEAD_N_TENSORS];   /* classification: W1 (C, C), b1 (C), W2 (K, C), b2 (K);
                                      tagging: W1 (K, C), b1 (K), W2 = b2 = NULL;
                                      multiple choice: W1 (C, C), b1 (C), W2 (1, C), b2 (1);
                                      question answering: W1 (2, C), b1 (2), W2 = b2 = NULL */
    float *g[XA_HEAD_N_TENSORS];
    size_t numel[XA_HEAD_N_TENSORS];
    size_t n_params;
    /* activations for at most R rows (classification: B sequences; tagging, QA: B*T tokens) */
    xa_arena arena;
    int R, r, B, T;                /* capacity, rows, batch of the last forward */
    float *x;                      /* (R, C) head input after dropout */
    uint8_t *keep1, *keep2;        /* (R, C) dropout masks */
    float *pre;                    /* (R, C) classification: dense output before tanh */
    float *pooled;                 /* (R, C) after tanh and dropout */
    float *logits;                 /* (R, K); after forward with labels: d(loss)/d(logits);
                                      multiple choice: (R) scores = (R / K, K) logits */
    int32_t *labels;               /* (R) */
    float *d1, *d2;                /* (R, C) backward scratch */
    int train;
    int row0;                      /* dropout placement, set by the caller before a training
                                      forward: its B sequences are rows [row0, row0 + B) of a
                                      global batch (of the same T) and the masks are that batch's
                                      over them (tensor.h xa_dropout_mask_at); 0 after init */
    float *class_w;                /* (K) owned loss weight per label, or NULL: unweighted */
} xa_head;

/* kind, hidden size C, K labels (multiple choice: K choices; question answering: K = 2), dropout p, at most max_batch
 * sequences (multiple choice: rows, examples x K) of max_T tokens. */
xa_status xa_head_init(xa_head *head, xa_head_kind kind, int C, int K, float p_drop, int max_batch,
                       int max_T, int trainable);
void xa_head_free(xa_head *head);
xa_status xa_head_set_trainable(xa_head *head, int trainable);
/* HF init: weights N(0, std), biases 0. */
void xa_head_init_weights(xa_head *head, xa_rng *rng, float std);
/* AdapterHub flex-head module index of tensor i (1 or 4), and whether it is a weight. */
int xa_head_module_index(const xa_head *head, int i);

/* Weight the loss per label (w: K finite weights >= 0, not all 0, copied; NULL: unweighted, the
 * default). Errors: USAGE for a bad weight, NOMEM. */
xa_status xa_head_set_class_weights(xa_head *head, const float *w);
/* scikit-learn's "balanced" weights over labels (n) in [0, K) (XA_IGNORE_INDEX skipped):
 * w[c] = n_counted / (n_present * count[c]), n_present the labels that occur; 0 for a label that
 * never occurs (it has no row to weight). Returns n_present, or -1 when out of memory. */
int xa_class_weights_balanced(float *w, const int32_t *labels, size_t n, int K);

/* Forward on hidden (B, T, C). labels: classification (B), tagging (B, T) with XA_IGNORE_INDEX on
 * tokens that do not count, multiple choice (B / K) choice indices, or NULL (no loss).
 * logits_out: (B, K), (B, T, K) or, multiple choice, (B / K, K) (B a multiple of K), or NULL. train
 * applies dropout with rng. Returns the mean loss (0 without labels or counted rows). */
float xa_head_forward(xa_head *head, const float *hidden, const int32_t *labels, int B, int T,
                      float *logits_out, int train, xa_rng *rng);
/* Question answering (XA_HEAD_QUESTION_ANSWERING): forward on hidden (B, T, C); labels (B, 2) the
 * start and end token of each row (a position outside [0, lens[b]) is not counted, as HF ignores
 * clamped positions), or NULL (no loss); lens (B) each row's tokens (the softmax runs over them),
 * NULL: all T. logits_out (B, T, 2) or NULL. Returns (CE(start) + CE(end)) / 2 (0 without labels
 * or counted rows). xa_head_forward on a QA head is this with lens NULL. */
float xa_head_forward_qa(xa_head *head, const float *hidden, const int32_t *labels, const int32_t *lens, int B,
                         int T, float *logits_out, int train, xa_rng *rng);
/* Backward of the last forward with labels (loss scaled by `scale`): adds into the head's gradients
 * (if trainable) and into dhidden (B, T, C) (NULL: not needed). */
void xa_head_backward(xa_head *head, float *dhidden, float scale);

#ifdef __cplusplus
}
#endif
#endif /* XA_HEADS_H */
