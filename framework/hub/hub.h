/* hub: AdapterHub directories in and out (ADAPTERHUB.md §1.10), so that an adapter, a fusion layer
 * or a head saved by AdapterHub loads here, and one saved here loads there.
 *
 *  - adapter:  DIR/adapter_config.json + DIR/adapter.safetensors
 *  - fusion:   DIR/adapter_fusion_config.json + DIR/model_adapter_fusion.safetensors
 *  - head:     DIR/head_config.json + DIR/model_head.safetensors
 *  - setup:    adapter_setup.json ({"adapter_setup": <composition dict>, "head_setup", "version"})
 * Tensors are written with the model prefix ("roberta." for XLM-R / RoBERTa, "bert." for BERT),
 * as AdapterHub's *AdapterModel classes name them; readers accept names with or without it and the
 * adapter-transformers v1 names (layer_text_lang_adapters, invertible_lang_adapters, ...).
 * Weights are read from the safetensors file, or, when a directory has only the PyTorch form,
 * from pytorch_adapter.bin / pytorch_model_adapter_fusion.bin / pytorch_model_head.bin (torch.save
 * zip or legacy files, read without Python: io/torchbin.h). Saving writes safetensors.
 *
 * Every file is written atomically (io/file.h): a failed save leaves each file as it was. The
 * pair of files of one directory is not one transaction: the weights are written first, then the
 * config.
 * Errors name the file (and the tensor or key): NOT_FOUND for a missing file or tensor, FORMAT for
 * a malformed file, SHAPE for a tensor of the wrong shape, CONFIG for a config that does not fit
 * the encoder (hidden size, model type: "wrong base model?") or an unknown tensor, UNSUPPORTED for
 * what xadapt does not implement.
 */
#ifndef XA_HUB_H
#define XA_HUB_H

#include <stddef.h>

#include "compose/compose.h"
#include "core/core.h"
#include "heads/heads.h"
#include "io/hfjson.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "XLMRobertaAdapterModel" / "BertAdapterModel", "xlm-roberta" / "bert", "roberta." / "bert.". */
const char *xa_hub_model_class(xa_arch arch);
const char *xa_hub_model_type(xa_arch arch);
const char *xa_hub_prefix(xa_arch arch);

/* The fingerprint of a base's weights: FNV-1a over its architecture and up to 2^16 weights at a
 * fixed stride (never 0). Adapters, fusions and heads saved on an encoder config whose
 * `fingerprint` is set record it ("xadapt_base_fingerprint"); loading them on a config with
 * another fingerprint logs a warning (hint: wrong base model?). */
uint64_t xa_hub_base_fingerprint(const xa_encoder *enc);
/* The warning of a load: fp is the file's recorded fingerprint ("" = unknown). Returns 1 when it
 * warned. */
int xa_hub_check_fingerprint(const char *path, const char *fp, const xa_encoder_config *enc);

/* Save adapter a into dir (created if needed). enc gives the architecture (prefix, model_type,
 * model_class); model_name (e.g. "xlm-roberta-base") may be NULL. */
xa_status xa_hub_save_adapter(const char *dir, const xa_adapter *a, const xa_encoder_config *enc,
                              const char *model_name);

/* Load the adapter in dir into the composer. Its name is load_as, else the config's "name", else
 * the directory's base name. Checks hidden_size and model_type against the composer's encoder,
 * every expected tensor's presence and shape, and rejects tensors that belong to no expected name.
 * leave_out[0..n_leave_out) (may be NULL) drops those layers after loading (merged into the
 * config's leave_out, AdapterHub PR #172). Legacy fix (§1.10): a config with an invertible adapter
 * whose file holds no invertible tensors loads without it (logged). trainable allocates gradients.
 * On success the composer owns the adapter and *out (may be NULL) points to it. */
xa_status xa_hub_load_adapter(xa_composer *cp, const char *dir, const char *load_as,
                              const int *leave_out, int n_leave_out, int trainable,
                              xa_adapter **out);

/* Save a fusion layer into dir (created if needed). */
xa_status xa_hub_save_fusion(const char *dir, const xa_fusion_layer *f,
                             const xa_encoder_config *enc, const char *model_name);
/* Load a fusion layer; its adapters (the "a,b,c" name, or the file's adapter_names) must already be
 * in the composer (NOT_FOUND with a hint otherwise). On success the composer owns it. */
xa_status xa_hub_load_fusion(xa_composer *cp, const char *dir, int trainable,
                             xa_fusion_layer **out);

/* Save head h as flex head `name` with labels[0..n_labels) (labels may be NULL, n_labels 0; else
 * n_labels == h->K) into dir (created if needed). h->p_drop is stored as dropout_prob. */
xa_status xa_hub_save_head(const char *dir, const xa_head *h, const char *name,
                           const char *const *labels, int n_labels, const xa_encoder_config *enc,
                           const char *model_name);
/* Initialise *head (caller-owned, freed with xa_head_free) from dir with the file's num_labels and
 * hidden size, for at most max_batch sequences of max_T tokens, and read its weights. Dropout is
 * the file's dropout_prob, else 0.1 (AdapterHub falls back to the model's hidden dropout: the
 * caller may set head->p_drop). cfg_out (may be NULL) receives the config (labels, name). The
 * caller compares head->C with its encoder. On failure *head is zeroed. */
xa_status xa_hub_load_head(const char *dir, xa_head *head, int max_batch, int max_T, int trainable,
                           xa_head_file_config *cfg_out);

/* adapter_setup.json: s may be NULL (no active setup, written as null); head may be NULL. */
xa_status xa_hub_save_setup(const char *path, const xa_setup *s, const char *head);
/* Read adapter_setup.json into *out (NULL when the file's setup is null; free with xa_setup_free),
 * checked with xa_setup_check. head (may be NULL) receives head_setup ("" when null) in n_head
 * bytes. */
xa_status xa_hub_load_setup(const char *path, xa_setup **out, char *head, size_t n_head);

/* ---- setup directories: AdapterHub's save_adapter_setup / load_adapter_setup layout ----------
 *   DIR/adapter_setup.json        the setup and head_setup (xa_hub_save_setup)
 *   DIR/<adapter name>/           every adapter the setup names (its leaves)
 *   DIR/<fusion name>/            every Fuse block ("a,b,c", AdapterHub's fusion name)
 *   DIR/<head name>/              the head (head_setup); shares the directory of an adapter of the
 *                                 same name, as AdapterHub's save_adapter(..., with_head) does
 * xadapt's final/ directories hold this layout beside their adapter/, head/, fusion/ (which every
 * xadapt reader keeps using); names equal to those four are refused (CONFIG). */

/* Write s (may be NULL: head only) with every adapter and fusion it names from cp, and head h
 * (may be NULL) as head_name with labels[0..n_labels), into dir (created if needed). NOT_FOUND
 * when the setup names something cp lacks. */
xa_status xa_hub_save_setup_dir(const char *dir, const xa_composer *cp, const xa_setup *s,
                                const xa_head *h, const char *head_name,
                                const char *const *labels, int n_labels,
                                const xa_encoder_config *enc, const char *model_name);
/* Read dir/adapter_setup.json into *setup_out (NULL for a null setup; free with xa_setup_free) and
 * load, frozen, every adapter and fusion it names that cp does not hold yet: from dir/<name>/ (a
 * directory written by AdapterHub's save_adapter_setup or by xadapt), else from xadapt's older
 * final/ layout (dir/adapter/ holding the adapter of that name, dir/fusion/). head_dir (may be
 * NULL) receives the head's directory: dir/<head_setup>/ when it holds head_config.json, else
 * dir/head/, else "". NOT_FOUND names an adapter with no directory (the hint: load it first). */
xa_status xa_hub_load_setup_dir(xa_composer *cp, const char *dir, xa_setup **setup_out,
                                char *head_dir, size_t n_head_dir);

/* The tensors of an adapter, a fusion layer or a head one by one, under the AdapterHub names they
 * are saved with (without the model prefix), as views into the object's parameter buffer (data)
 * of numel floats; names that alias another tensor are not visited. For code that treats tensors
 * differently by name (HF's weight-decay exclusion of biases and norms). Stops at fn's error. */
typedef xa_status (*xa_hub_tensor_fn)(void *ctx, const char *name, const float *data, size_t numel);
xa_status xa_hub_visit_adapter(const xa_adapter *a, xa_hub_tensor_fn fn, void *ctx);
xa_status xa_hub_visit_fusion(const xa_fusion_layer *f, xa_hub_tensor_fn fn, void *ctx);
xa_status xa_hub_visit_head(const xa_head *h, const char *name, xa_hub_tensor_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* XA_HUB_H */
