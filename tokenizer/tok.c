/* tokenizer/tok: the tokenizer of a base model, SentencePiece or WordPiece, behind one interface
 * (see tok.h for how it is chosen and how inputs are built).
 *
 * Reads tokenizer_config.json (do_lower_case, strip_accents, tokenize_chinese_chars and the
 * *_token strings, plain or as AddedToken objects) and tokenizer.json (model, normalizer,
 * pre_tokenizer, post_processor, added_tokens) with jansson.
 *
 * Not done: a Unigram or BPE tokenizer.json (SentencePiece-Unigram needs the .model beside it:
 * reproducing SentencePiece's Viterbi and normalisation from the JSON alone is not attempted),
 * normalizer Sequences, special_tokens_map.json, added tokens matched after normalisation.
 */
#include "tokenizer/tok.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOK_PATH_MAX 4096

struct xa_tok {
    xa_tok_kind kind;
    xa_spm *spm;
    xa_wordpiece *wp;
    xa_tok_special sp;
    int32_t vocab;
    uint8_t *word_start; /* (vocab) */
    char path[TOK_PATH_MAX];
};

static xa_status nomem(const char *where) {
    return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL, "out of memory");
}

void xa_tok_free(xa_tok *tok) {
    if (!tok) return;
    xa_spm_free(tok->spm);
    xa_wordpiece_free(tok->wp);
    free(tok->word_start);
    free(tok);
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}
static int is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Fill vocab, specials and word starts once the model is set. */
static xa_status finish(xa_tok *t) {
    if (t->kind == XA_TOK_KIND_SENTENCEPIECE) {
        xa_spm_special s = xa_spm_special_ids(t->spm);
        t->sp = (xa_tok_special){s.bos, s.eos, s.pad, s.unk, s.mask};
        t->vocab = xa_spm_vocab_size(t->spm);
    } else {
        const xa_wordpiece *wp = t->wp;
        t->vocab = xa_wordpiece_vocab_size(wp);
        t->sp.unk = xa_wordpiece_unk_id(wp);
    }
    t->word_start = calloc((size_t)t->vocab, 1);
    if (!t->word_start) return nomem(t->path);
    for (int32_t id = 0; id < t->vocab; id++) {
        if (id == t->sp.cls || id == t->sp.sep || id == t->sp.pad || id == t->sp.unk || id == t->sp.mask) continue;
        const char *p = xa_tok_id_to_piece(t, id);
        if (!p) continue;
        if (t->kind == XA_TOK_KIND_SENTENCEPIECE) {
            t->word_start[id] = strncmp(p, "\xE2\x96\x81", 3) == 0;
        } else {
            const char *pre = xa_wordpiece_get_opts(t->wp).prefix;
            t->word_start[id] = strncmp(p, pre, strlen(pre)) != 0;
        }
    }
    return XA_STATUS_OK;
}

xa_status xa_tok_from_spm(xa_tok **out, xa_spm *spm, const char *name) {
    if (!out || !spm) {
        xa_spm_free(spm);
        return xa_error_set(XA_STATUS_USAGE, "xa_tok_from_spm", "a SentencePiece model", NULL, "NULL argument");
    }
    *out = NULL;
    xa_status st = xa_spm_get_ids(spm) == XA_SPM_IDS_XLMR ? XA_STATUS_OK : xa_spm_set_ids(spm, XA_SPM_IDS_XLMR);
    if (st) {
        xa_error_prefix("%s", name ? name : "<memory>");
        xa_spm_free(spm);
        return st;
    }
    xa_tok *t = calloc(1, sizeof *t);
    if (!t) {
        xa_spm_free(spm);
        return nomem("xa_tok_from_spm");
    }
    t->kind = XA_TOK_KIND_SENTENCEPIECE;
    t->spm = spm;
    snprintf(t->path, sizeof t->path, "%s", name ? name : "<memory>");
    if ((st = finish(t))) {
        xa_tok_free(t);
        return st;
    }
    *out = t;
    return XA_STATUS_OK;
}

static xa_status load_spm(xa_tok **out, const char *path) {
    xa_spm *spm = NULL;
    xa_status st = xa_spm_load(&spm, path);
    return st ? st : xa_tok_from_spm(out, spm, path);
}

/* ---- JSON helpers ------------------------------------------------------------------------------ */

static xa_status json_open(json_t **root, const char *path) {
    json_error_t e;
    *root = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (*root && json_is_object(*root)) return XA_STATUS_OK;
    if (*root) {
        json_decref(*root);
        *root = NULL;
        return xa_error_set(XA_STATUS_FORMAT, path, "a JSON object", NULL, "the top level is not an object");
    }
    if (!is_file(path)) {
        return xa_error_set(errno == ENOENT ? XA_STATUS_NOT_FOUND : XA_STATUS_IO, path, NULL, NULL, "cannot read: %s",
                            e.text);
    }
    char where[XA_ERROR_FIELD];
    snprintf(where, sizeof where, "%s:%d:%d", path, e.line, e.column);
    return xa_error_set(XA_STATUS_FORMAT, where, "valid JSON", NULL, "%s", e.text);
}

/* A token setting: a string or an AddedToken object {"content": ...}; NULL when absent or null. */
static const char *token_string(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content"))) {
        return json_string_value(json_object_get(v, "content"));
    }
    return NULL;
}

static xa_status bad_key(const char *path, const char *key, const char *expected) {
    return xa_error_set(XA_STATUS_FORMAT, path, expected, NULL, "key \"%s\" has the wrong type", key);
}

/* A boolean key: absent or null keeps *v; true/false sets it. null_value >= -1 is stored for null. */
static xa_status get_bool(json_t *o, const char *path, const char *key, int *v, int null_value) {
    json_t *x = json_object_get(o, key);
    if (!x) return XA_STATUS_OK;
    if (json_is_null(x)) {
        if (null_value != -2) *v = null_value;
        return XA_STATUS_OK;
    }
    if (!json_is_boolean(x)) return bad_key(path, key, "true, false or null");
    *v = json_is_true(x);
    return XA_STATUS_OK;
}

/* ---- vocab.txt ----------------------------------------------------------------------------------- */

static void dir_of(char *dir, size_t n, const char *path) {
    snprintf(dir, n, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, n, ".");
}

static xa_status load_vocab_txt(xa_tok **out, const char *path) {
    char dir[TOK_PATH_MAX], cfg[TOK_PATH_MAX + 32];
    dir_of(dir, sizeof dir, path);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    xa_wordpiece_opts o = xa_wordpiece_opts_default();
    const char *names[5] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};
    static const char *const keys[5] = {"cls_token", "sep_token", "pad_token", "unk_token", "mask_token"};
    char held[5][256];
    json_t *root = NULL;
    xa_status st = XA_STATUS_OK;
    if (is_file(cfg)) {
        if ((st = json_open(&root, cfg))) return st;
        if (!st) st = get_bool(root, cfg, "do_lower_case", &o.lowercase, -2);
        if (!st) st = get_bool(root, cfg, "strip_accents", &o.strip_accents, -1);
        if (!st) st = get_bool(root, cfg, "tokenize_chinese_chars", &o.chinese_chars, -2);
        for (int i = 0; i < 5 && !st; i++) {
            json_t *v = json_object_get(root, keys[i]);
            const char *s = token_string(v);
            if (v && !json_is_null(v) && !s) st = bad_key(cfg, keys[i], "a string or {\"content\": string}");
            if (s) {
                snprintf(held[i], sizeof held[i], "%s", s);
                names[i] = held[i];
            }
        }
        json_decref(root);
        if (st) return st;
    }
    o.unk = names[3];
    o.specials = names;
    o.n_specials = 5;
    xa_wordpiece *wp = NULL;
    if ((st = xa_wordpiece_load(&wp, path, &o))) return st;
    xa_tok *t = calloc(1, sizeof *t);
    if (!t) {
        xa_wordpiece_free(wp);
        return nomem(path);
    }
    t->kind = XA_TOK_KIND_WORDPIECE;
    t->wp = wp;
    snprintf(t->path, sizeof t->path, "%s", path);
    t->sp.cls = xa_wordpiece_piece_to_id(wp, names[0]);
    t->sp.sep = xa_wordpiece_piece_to_id(wp, names[1]);
    t->sp.pad = xa_wordpiece_piece_to_id(wp, names[2]);
    t->sp.mask = xa_wordpiece_piece_to_id(wp, names[4]);
    if (t->sp.cls < 0 || t->sp.sep < 0) {
        xa_tok_free(t);
        return xa_error_set(XA_STATUS_FORMAT, path, "the pieces [CLS] and [SEP] (or the cls_token / sep_token of tokenizer_config.json)",
                            NULL, "no '%s' or no '%s' line", names[0], names[1]);
    }
    if ((st = finish(t))) {
        xa_tok_free(t);
        return st;
    }
    *out = t;
    return XA_STATUS_OK;
}

/* ---- tokenizer.json ------------------------------------------------------------------------------ */

static const char *type_of(json_t *o) {
    json_t *t = json_is_object(o) ? json_object_get(o, "type") : NULL;
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* The id of a special named in a post-processor item: {"SpecialToken": {"id": NAME}}. */
static const char *template_special(json_t *item) {
    json_t *s = json_object_get(item, "SpecialToken");
    json_t *id = s ? json_object_get(s, "id") : NULL;
    return json_is_string(id) ? json_string_value(id) : NULL;
}

static xa_status load_tokenizer_json(xa_tok **out, const char *path) {
    json_t *root = NULL;
    xa_status st = json_open(&root, path);
    if (st) return st;
    char **pieces = NULL;
    size_t n = 0;
    const char *specials[64];
    size_t n_specials = 0;
    char cls[256] = "[CLS]", sep[256] = "[SEP]";
    xa_wordpiece_opts o = xa_wordpiece_opts_default();
    o.fast = 1;
    json_t *model = json_object_get(root, "model");
    const char *mt = type_of(model);
    if (!mt) {
        st = xa_error_set(XA_STATUS_FORMAT, path, "a \"model\" object with a \"type\"", "is this a Hugging Face tokenizer.json?",
                          "no model type");
        goto done;
    }
    if (strcmp(mt, "WordPiece") != 0) {
        st = xa_error_set(XA_STATUS_UNSUPPORTED, path, "a WordPiece model (or a sentencepiece.bpe.model / vocab.txt beside it)",
                          strcmp(mt, "Unigram") == 0
                              ? "a SentencePiece-Unigram tokenizer.json (XLM-R) is read through its .model file: put "
                                "sentencepiece.bpe.model in the directory"
                              : NULL,
                          "model.type \"%s\" is not supported", mt);
        goto done;
    }
    json_t *norm = json_object_get(root, "normalizer"), *pre = json_object_get(root, "pre_tokenizer");
    const char *nt = type_of(norm), *pt = type_of(pre);
    if (!nt || strcmp(nt, "BertNormalizer") != 0 || !pt || strcmp(pt, "BertPreTokenizer") != 0) {
        st = xa_error_set(XA_STATUS_UNSUPPORTED, path, "normalizer BertNormalizer and pre_tokenizer BertPreTokenizer",
                          NULL, "normalizer %s, pre_tokenizer %s", nt ? nt : "null", pt ? pt : "null");
        goto done;
    }
    int clean = 1;
    if (!st) st = get_bool(norm, path, "clean_text", &clean, -2);
    if (!st) st = get_bool(norm, path, "lowercase", &o.lowercase, -2);
    if (!st) st = get_bool(norm, path, "strip_accents", &o.strip_accents, -1);
    if (!st) st = get_bool(norm, path, "handle_chinese_chars", &o.chinese_chars, -2);
    if (!st && !clean) st = xa_error_set(XA_STATUS_UNSUPPORTED, path, "normalizer.clean_text true", NULL, "clean_text false");
    if (st) goto done;
    json_t *unk = json_object_get(model, "unk_token"), *prefix = json_object_get(model, "continuing_subword_prefix"),
           *maxc = json_object_get(model, "max_input_chars_per_word"), *vocab = json_object_get(model, "vocab");
    if (unk && !json_is_string(unk)) st = bad_key(path, "model.unk_token", "a string");
    if (!st && prefix && !json_is_string(prefix)) st = bad_key(path, "model.continuing_subword_prefix", "a string");
    if (!st && maxc && (!json_is_integer(maxc) || json_integer_value(maxc) < 1 || json_integer_value(maxc) > (1 << 30)))
        st = bad_key(path, "model.max_input_chars_per_word", "an integer in [1, 2^30]");
    if (!st && !json_is_object(vocab)) st = bad_key(path, "model.vocab", "an object {piece: id}");
    if (st) goto done;
    if (unk) o.unk = json_string_value(unk);
    if (prefix) o.prefix = json_string_value(prefix);
    if (maxc) o.max_input_chars = (int)json_integer_value(maxc);
    /* ids: the vocabulary's and the added tokens'; every id must be in [0, 2^24) */
    json_int_t top = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24)) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "model.vocab ids in [0, 2^24)", NULL, "piece \"%.60s\" has id %s", k,
                              json_is_integer(v) ? "out of range" : "that is not an integer");
            goto done;
        }
        if (json_integer_value(v) > top) top = json_integer_value(v);
    }
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) {
        st = bad_key(path, "added_tokens", "an array");
        goto done;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id"), *c = json_object_get(v, "content");
        if (!json_is_integer(id) || !json_is_string(c) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 24)) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "added_tokens items {\"id\": 0..2^24, \"content\": string}", NULL,
                              "added_tokens[%zu] is malformed", i);
            goto done;
        }
        if (json_integer_value(id) > top) top = json_integer_value(id);
        if (n_specials < 64) specials[n_specials++] = json_string_value(c);
    }
    if (top < 0) {
        st = xa_error_set(XA_STATUS_FORMAT, path, "a non-empty model.vocab", NULL, "no pieces");
        goto done;
    }
    n = (size_t)top + 1;
    pieces = calloc(n, sizeof *pieces);
    if (!pieces) {
        st = nomem(path);
        goto done;
    }
    json_object_foreach(vocab, k, v) {
        size_t id = (size_t)json_integer_value(v);
        if (pieces[id]) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "one piece per id in model.vocab", NULL,
                              "id %zu is used by \"%.60s\" and \"%.60s\"", id, pieces[id], k);
            goto done;
        }
        pieces[id] = (char *)k;
    }
    json_array_foreach(added, i, v) {
        size_t id = (size_t)json_integer_value(json_object_get(v, "id"));
        const char *c = json_string_value(json_object_get(v, "content"));
        if (pieces[id] && strcmp(pieces[id], c) != 0) {
            st = xa_error_set(XA_STATUS_FORMAT, path, "added_tokens that agree with model.vocab", NULL,
                              "id %zu is \"%.60s\" in the vocabulary and \"%.60s\" in added_tokens", id, pieces[id], c);
            goto done;
        }
        pieces[id] = (char *)c;
    }
    /* [CLS] / [SEP] from the post-processor */
    json_t *post = json_object_get(root, "post_processor");
    const char *ppt = type_of(post);
    if (ppt && strcmp(ppt, "BertProcessing") == 0) {
        json_t *c = json_object_get(post, "cls"), *s = json_object_get(post, "sep");
        if (json_is_array(c) && json_is_string(json_array_get(c, 0))) snprintf(cls, sizeof cls, "%s", json_string_value(json_array_get(c, 0)));
        if (json_is_array(s) && json_is_string(json_array_get(s, 0))) snprintf(sep, sizeof sep, "%s", json_string_value(json_array_get(s, 0)));
    } else if (ppt && strcmp(ppt, "TemplateProcessing") == 0) {
        json_t *single = json_object_get(post, "single");
        size_t m = json_is_array(single) ? json_array_size(single) : 0;
        const char *first = m ? template_special(json_array_get(single, 0)) : NULL;
        const char *last = m ? template_special(json_array_get(single, m - 1)) : NULL;
        if (first) snprintf(cls, sizeof cls, "%s", first);
        if (last) snprintf(sep, sizeof sep, "%s", last);
    }
    o.specials = specials;
    o.n_specials = n_specials;
    xa_wordpiece *wp = NULL;
    st = xa_wordpiece_from_pieces(&wp, (const char *const *)pieces, n, &o, path);
    if (st) goto done;
    xa_tok *t = calloc(1, sizeof *t);
    if (!t) {
        xa_wordpiece_free(wp);
        st = nomem(path);
        goto done;
    }
    t->kind = XA_TOK_KIND_WORDPIECE;
    t->wp = wp;
    snprintf(t->path, sizeof t->path, "%s", path);
    t->sp.cls = xa_wordpiece_piece_to_id(wp, cls);
    t->sp.sep = xa_wordpiece_piece_to_id(wp, sep);
    t->sp.pad = xa_wordpiece_piece_to_id(wp, "[PAD]");
    t->sp.mask = xa_wordpiece_piece_to_id(wp, "[MASK]");
    json_t *pad = json_object_get(root, "padding");
    if (json_is_object(pad) && json_is_integer(json_object_get(pad, "pad_id")))
        t->sp.pad = (int32_t)json_integer_value(json_object_get(pad, "pad_id"));
    if (t->sp.cls < 0 || t->sp.sep < 0) {
        xa_tok_free(t);
        st = xa_error_set(XA_STATUS_FORMAT, path, "the post-processor's cls and sep pieces in the vocabulary", NULL,
                          "no piece '%s' or '%s'", cls, sep);
        goto done;
    }
    if ((st = finish(t))) {
        xa_tok_free(t);
        goto done;
    }
    *out = t;
done:
    free(pieces);
    json_decref(root);
    return st;
}

/* ---- choosing ------------------------------------------------------------------------------------ */

xa_status xa_tok_load(xa_tok **out, const char *path) {
    if (!out || !path) return xa_error_set(XA_STATUS_USAGE, "xa_tok_load", "a path", NULL, "NULL argument");
    *out = NULL;
    char p[TOK_PATH_MAX + 64];
    if (!is_dir(path)) {
        if (ends_with(path, ".json")) return load_tokenizer_json(out, path);
        if (ends_with(path, ".txt")) return load_vocab_txt(out, path);
        return load_spm(out, path);
    }
    snprintf(p, sizeof p, "%s/sentencepiece.bpe.model", path);
    if (is_file(p)) return load_spm(out, p);
    snprintf(p, sizeof p, "%s/vocab.txt", path);
    if (is_file(p)) return load_vocab_txt(out, p);
    snprintf(p, sizeof p, "%s/tokenizer.json", path);
    if (is_file(p)) return load_tokenizer_json(out, p);
    DIR *d = opendir(path);
    if (!d) return xa_error_set(XA_STATUS_IO, path, NULL, NULL, "cannot list the directory: %s", strerror(errno));
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".model")) continue;
        if (found++) {
            closedir(d);
            return xa_error_set(XA_STATUS_USAGE, path, "one tokenizer model", "name the tokenizer file instead of the directory",
                                "more than one *.model file");
        }
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (found) return load_spm(out, p);
    return xa_error_set(XA_STATUS_NOT_FOUND, path,
                        "sentencepiece.bpe.model, vocab.txt, tokenizer.json or a *.model file", "is this a base model directory?",
                        "no tokenizer in the directory");
}

/* ---- using --------------------------------------------------------------------------------------- */

xa_tok_kind xa_tok_get_kind(const xa_tok *tok) { return tok->kind; }
const char *xa_tok_path(const xa_tok *tok) { return tok->path; }
int32_t xa_tok_vocab_size(const xa_tok *tok) { return tok->vocab; }
xa_tok_special xa_tok_special_ids(const xa_tok *tok) { return tok->sp; }
xa_spm *xa_tok_spm(const xa_tok *tok) { return tok->spm; }
const xa_wordpiece *xa_tok_wordpiece(const xa_tok *tok) { return tok->wp; }

int32_t xa_tok_piece_to_id(const xa_tok *tok, const char *piece) {
    if (tok->spm) return xa_spm_piece_to_id(tok->spm, piece);
    int32_t id = xa_wordpiece_piece_to_id(tok->wp, piece);
    return id < 0 ? tok->sp.unk : id;
}

const char *xa_tok_id_to_piece(const xa_tok *tok, int32_t id) {
    return tok->spm ? xa_spm_id_to_piece(tok->spm, id) : xa_wordpiece_id_to_piece(tok->wp, id);
}

int xa_tok_is_word_start(const xa_tok *tok, int32_t id) {
    return id >= 0 && id < tok->vocab && tok->word_start[id];
}

xa_status xa_tok_encode_offsets(const xa_tok *tok, const char *text, size_t len, int add_special,
                                int32_t **ids, xa_spm_span **spans, size_t *n) {
    if (!tok) return xa_error_set(XA_STATUS_USAGE, "xa_tok_encode", "a tokenizer", NULL, "NULL argument");
    if (tok->spm) {
        return spans ? xa_spm_encode_offsets(tok->spm, text, len, add_special, ids, spans, n)
                     : xa_spm_encode(tok->spm, text, len, add_special, ids, n);
    }
    int32_t *raw = NULL;
    xa_spm_span *rs = NULL;
    size_t k = 0;
    xa_status st = xa_wordpiece_encode(tok->wp, text, len, &raw, spans ? &rs : NULL, &k);
    if (st || !add_special) {
        *ids = raw;
        if (spans) *spans = rs;
        *n = k;
        return st;
    }
    int32_t *w = malloc((k + 2) * sizeof *w);
    xa_spm_span *ws = spans ? malloc((k + 2) * sizeof *ws) : NULL;
    if (!w || (spans && !ws)) {
        free(w);
        free(ws);
        free(raw);
        free(rs);
        *ids = NULL;
        if (spans) *spans = NULL;
        *n = 0;
        return nomem("xa_tok_encode");
    }
    w[0] = tok->sp.cls;
    memcpy(w + 1, raw, k * sizeof *w);
    w[k + 1] = tok->sp.sep;
    if (ws) {
        ws[0] = (xa_spm_span){0, 0};
        memcpy(ws + 1, rs, k * sizeof *ws);
        ws[k + 1] = (xa_spm_span){len, len};
    }
    free(raw);
    free(rs);
    *ids = w;
    if (spans) *spans = ws;
    *n = k + 2;
    return XA_STATUS_OK;
}

xa_status xa_tok_encode(const xa_tok *tok, const char *text, size_t len, int add_special, int32_t **ids,
                        size_t *n) {
    return xa_tok_encode_offsets(tok, text, len, add_special, ids, NULL, n);
}

void xa_tok_input_free(xa_tok_input *in) {
    if (!in) return;
    free(in->ids);
    free(in->types);
    memset(in, 0, sizeof *in);
}

xa_status xa_tok_encode_input(const xa_tok *tok, const char *a, size_t na, const char *b, size_t nb,
                              int max_len, xa_tok_input *in) {
    if (!in) return xa_error_set(XA_STATUS_USAGE, "xa_tok_encode_input", "an output", NULL, "NULL argument");
    memset(in, 0, sizeof *in);
    if (!tok || (!a && na)) return xa_error_set(XA_STATUS_USAGE, "xa_tok_encode_input", "a tokenizer and text", NULL, "NULL argument");
    const int bert = tok->kind == XA_TOK_KIND_WORDPIECE, pair = b != NULL;
    const size_t n_sp = pair ? (bert ? 3 : 4) : 2;
    if (max_len < 0 || (max_len > 0 && (size_t)max_len < n_sp)) {
        return xa_error_set(XA_STATUS_USAGE, "xa_tok_encode_input", pair ? "max_len >= the pair's specials" : "max_len >= 2",
                            NULL, "max_len %d for %zu special tokens", max_len, n_sp);
    }
    int32_t *ia = NULL, *ib = NULL;
    size_t ka = 0, kb = 0;
    xa_status st = xa_tok_encode(tok, a, na, 0, &ia, &ka);
    if (!st && pair) st = xa_tok_encode(tok, b, nb, 0, &ib, &kb);
    if (st) {
        free(ia);
        free(ib);
        return st;
    }
    size_t la = ka, lb = kb;
    if (max_len > 0 && la + lb + n_sp > (size_t)max_len) { /* longest_first, one token at a time */
        size_t excess = la + lb + n_sp - (size_t)max_len;
        in->n_truncated = excess;
        if (!pair) {
            la -= excess;
        } else {
            for (; excess > 0; excess--) { /* HF: ids[:-1] if len(ids) > len(pair_ids) else pair_ids[:-1] */
                if (la > lb) la--;
                else lb--;
            }
        }
    }
    size_t n = la + lb + (pair ? n_sp : 2);
    in->ids = malloc(n * sizeof *in->ids);
    in->types = calloc(n, sizeof *in->types);
    if (!in->ids || !in->types) {
        free(ia);
        free(ib);
        xa_tok_input_free(in);
        return nomem("xa_tok_encode_input");
    }
    size_t k = 0;
    in->ids[k++] = tok->sp.cls;
    memcpy(in->ids + k, ia, la * sizeof *ia);
    k += la;
    in->ids[k++] = tok->sp.sep;
    if (pair) {
        size_t tb = k;
        if (!bert) in->ids[k++] = tok->sp.sep;
        memcpy(in->ids + k, ib, lb * sizeof *ib);
        k += lb;
        in->ids[k++] = tok->sp.sep;
        if (bert)
            for (size_t i = tb; i < k; i++)
                in->types[i] = 1;
    }
    in->n = k;
    free(ia);
    free(ib);
    return XA_STATUS_OK;
}
