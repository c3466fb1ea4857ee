// tokenizer/spm.cpp: the C API of tokenizer/spm.h over SentencePiece 0.1.97 (C++17).
//
// Implements loading (file or memory), encoding with optional byte spans, decoding, piece/id
// lookup in the native or XLM-R id convention, and training through SentencePieceTrainer. Every
// extern "C" function catches all C++ exceptions and maps them, and every util::Status failure, to
// an xa_status plus an error record that names the file or buffer.
//
// Deliberately not here: sampling / n-best encodings, pair inputs, "word"/"char" models, custom
// normalisation rules; reading .vocab files (the .model file is self-contained).
//
// References: SentencePiece (Kudo & Richardson 2018), sentencepiece_processor.h and
// sentencepiece_trainer.h of 0.1.97; the XLM-R convention follows Hugging Face transformers'
// XLMRobertaTokenizer (fairseq_offset = 1, fairseq_tokens_to_ids, mask = len(sp_model) + 1).

#include "tokenizer/spm.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <unordered_map>
#include <vector>

// SentencePiece's log threshold (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL). Exported by
// libsentencepiece.so.0 (0.1.97) but not declared in its public header; the public alternative,
// the trainer flag --minloglevel, sets the same global and cannot restore it afterwards.
namespace sentencepiece {
namespace logging {
int GetMinLogLevel();
void SetMinLogLevel(int v);
} // namespace logging
} // namespace sentencepiece

namespace spm = sentencepiece;

struct xa_spm {
    spm::SentencePieceProcessor sp;
    std::string name; // file name or the caller's label, for messages
    xa_spm_ids ids = XA_SPM_IDS_NATIVE;
    int32_t n_pieces = 0;       // SentencePiece's piece count
    xa_spm_special native = {}; // specials in native ids (-1 absent)
};

namespace {

// XLM-R's fixed specials (fairseq dictionary order).
constexpr int32_t kXlmrBos = 0, kXlmrPad = 1, kXlmrEos = 2, kXlmrUnk = 3;
const char *const kXlmrNames[4] = {"<s>", "<pad>", "</s>", "<unk>"};
const char *const kMaskName = "<mask>";

// One status for every exception that reaches an extern "C" function.
xa_status error_from_exception(const char *fn, const char *where) {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return xa_error_set(XA_STATUS_NOMEM, where, nullptr, nullptr, "%s: out of memory", fn);
    } catch (const std::exception &e) {
        return xa_error_set(XA_STATUS_RUNTIME, where, nullptr, nullptr, "%s: sentencepiece: %s", fn,
                            e.what());
    } catch (...) {
        return xa_error_set(XA_STATUS_RUNTIME, where, nullptr, nullptr, "%s: unknown C++ exception",
                            fn);
    }
}

// Id of a piece only if the model really holds it (PieceToId answers unk for unknown pieces).
int32_t find_piece(const spm::SentencePieceProcessor &sp, const char *piece) {
    int id = sp.PieceToId(piece);
    if (id < 0 || id >= sp.GetPieceSize()) return -1;
    return sp.IdToPiece(id) == piece ? id : -1;
}

xa_spm_special native_specials(const spm::SentencePieceProcessor &sp) {
    const int n = sp.GetPieceSize();
    auto valid = [n](int id) { return id >= 0 && id < n ? id : -1; };
    xa_spm_special s;
    s.bos = valid(sp.bos_id());
    s.eos = valid(sp.eos_id());
    s.unk = valid(sp.unk_id());
    s.pad = valid(sp.pad_id());
    if (s.pad < 0) s.pad = find_piece(sp, "<pad>");
    s.mask = find_piece(sp, kMaskName);
    return s;
}

// SentencePiece id of a piece produced by encoding -> id in the active convention.
inline int32_t to_active(const xa_spm *t, int spm_id) {
    if (t->ids == XA_SPM_IDS_NATIVE) return spm_id;
    return spm_id == t->native.unk ? kXlmrUnk : spm_id + 1;
}

xa_spm_special active_specials(const xa_spm *t) {
    if (t->ids == XA_SPM_IDS_NATIVE) return t->native;
    xa_spm_special s;
    s.bos = kXlmrBos;
    s.pad = kXlmrPad;
    s.eos = kXlmrEos;
    s.unk = kXlmrUnk;
    s.mask = t->n_pieces + 1;
    return s;
}

int32_t active_vocab(const xa_spm *t) {
    return t->ids == XA_SPM_IDS_XLMR ? t->n_pieces + 2 : t->n_pieces;
}

xa_status load_bytes(xa_spm **out, const char *fn, const char *data, size_t n, const char *name) {
    if (n == 0) {
        return xa_error_set(XA_STATUS_FORMAT, name, "a SentencePiece .model file", nullptr,
                            "%s: empty model (0 bytes)", fn);
    }
    try {
        std::unique_ptr<xa_spm> t(new xa_spm); // a half-built tokenizer is freed on every return
        t->name = name;
        spm::util::Status s = t->sp.LoadFromSerializedProto(std::string_view(data, n));
        if (!s.ok()) {
            return xa_error_set(
                XA_STATUS_FORMAT, name, "a serialized SentencePiece ModelProto (a .model file)",
                "the file may be truncated, or not a SentencePiece model (a .vocab file?)",
                "%s: not a valid SentencePiece model (%zu bytes): %s", fn, n, s.ToString().c_str());
        }
        t->n_pieces = t->sp.GetPieceSize();
        if (t->n_pieces <= 0) {
            return xa_error_set(XA_STATUS_FORMAT, name, "at least one piece", nullptr,
                                "%s: the model has no pieces", fn);
        }
        t->native = native_specials(t->sp);
        XA_LOG_DEBUG("%s: %s: %d pieces (unk %d, bos %d, eos %d, pad %d)", fn, name, t->n_pieces,
                     t->native.unk, t->native.bos, t->native.eos, t->native.pad);
        *out = t.release();
        return XA_STATUS_OK;
    } catch (...) {
        return error_from_exception(fn, name);
    }
}

} // namespace

// ---- loading ------------------------------------------------------------------------------------

extern "C" xa_status xa_spm_load(xa_spm **out, const char *path) {
    static const char *fn = "xa_spm_load";
    if (out) *out = nullptr;
    if (!out || !path) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr, "%s: NULL %s", fn,
                            out ? "path" : "out");
    }
    FILE *f = std::fopen(path, "rb");
    if (!f) {
        int e = errno;
        return xa_error_set(XA_STATUS_IO, path, nullptr,
                            e == ENOENT ? "check the path to the tokenizer .model file" : nullptr,
                            "%s: cannot open: %s", fn, std::strerror(e));
    }
    xa_status st = XA_STATUS_OK;
    try {
        std::string bytes;
        char buf[1 << 16];
        size_t got;
        while ((got = std::fread(buf, 1, sizeof buf, f)) > 0)
            bytes.append(buf, got);
        if (std::ferror(f)) {
            int e = errno;
            st = xa_error_set(XA_STATUS_IO, path, nullptr, nullptr, "%s: cannot read: %s", fn,
                              std::strerror(e));
        } else {
            st = load_bytes(out, fn, bytes.data(), bytes.size(), path);
        }
    } catch (...) {
        st = error_from_exception(fn, path);
    }
    std::fclose(f);
    return st;
}

extern "C" xa_status xa_spm_load_from_memory(xa_spm **out, const void *data, size_t n,
                                             const char *name) {
    static const char *fn = "xa_spm_load_from_memory";
    if (!name) name = "<memory>";
    if (out) *out = nullptr;
    if (!out || (!data && n)) {
        return xa_error_set(XA_STATUS_USAGE, name, nullptr, nullptr, "%s: NULL %s", fn,
                            out ? "data" : "out");
    }
    return load_bytes(out, fn, static_cast<const char *>(data), n, name);
}

extern "C" void xa_spm_free(xa_spm *spm_) {
    delete spm_; // the destructor of SentencePieceProcessor does not throw
}

// ---- conventions and lookups --------------------------------------------------------------------

extern "C" xa_status xa_spm_set_ids(xa_spm *t, xa_spm_ids convention) {
    static const char *fn = "xa_spm_set_ids";
    if (!t) return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr, "%s: NULL spm", fn);
    if (convention != XA_SPM_IDS_NATIVE && convention != XA_SPM_IDS_XLMR) {
        return xa_error_set(XA_STATUS_USAGE, t->name.c_str(),
                            "XA_SPM_IDS_NATIVE or XA_SPM_IDS_XLMR", nullptr,
                            "%s: unknown id convention %d", fn, (int)convention);
    }
    if (convention == XA_SPM_IDS_XLMR) {
        try {
            // SentencePiece ids 0-2 land on <pad>, </s>, <unk>: they must never be produced by
            // encoding, i.e. be the unknown piece or control/unused pieces.
            for (int id = 0; id < 3 && id < t->n_pieces; id++) {
                if (!(t->sp.IsUnknown(id) || t->sp.IsControl(id) || t->sp.IsUnused(id))) {
                    return xa_error_set(
                        XA_STATUS_UNSUPPORTED, t->name.c_str(),
                        "SentencePiece ids 0-2 to be <unk>/control pieces (as in XLM-R's model)",
                        "train the model with <unk>=0, <s>=1, </s>=2 (xa_spm_train does)",
                        "%s: cannot use the XLM-R id convention: SentencePiece id %d is the normal "
                        "piece '%s', which would collide with XLM-R id %d",
                        fn, id, t->sp.IdToPiece(id).c_str(), id + 1);
                }
            }
        } catch (...) {
            return error_from_exception(fn, t->name.c_str());
        }
    }
    t->ids = convention;
    return XA_STATUS_OK;
}

extern "C" xa_spm_ids xa_spm_get_ids(const xa_spm *t) {
    XA_ASSERT(t);
    return t->ids;
}

extern "C" int32_t xa_spm_vocab_size(const xa_spm *t) {
    XA_ASSERT(t);
    return active_vocab(t);
}

extern "C" xa_spm_special xa_spm_special_ids(const xa_spm *t) {
    XA_ASSERT(t);
    return active_specials(t);
}

extern "C" int32_t xa_spm_piece_to_id(const xa_spm *t, const char *piece) {
    XA_ASSERT(t);
    const xa_spm_special s = active_specials(t);
    if (!piece) return s.unk;
    if (t->ids == XA_SPM_IDS_XLMR) {
        for (int32_t i = 0; i < 4; i++) {
            if (std::strcmp(piece, kXlmrNames[i]) == 0) return i;
        }
        if (std::strcmp(piece, kMaskName) == 0) return s.mask;
    }
    try {
        return to_active(t, t->sp.PieceToId(piece));
    } catch (...) {
        return s.unk; // PieceToId does not throw; this only keeps exceptions out of C
    }
}

extern "C" const char *xa_spm_id_to_piece(const xa_spm *t, int32_t id) {
    XA_ASSERT(t);
    if (id < 0 || id >= active_vocab(t)) return nullptr;
    int spm_id = id;
    if (t->ids == XA_SPM_IDS_XLMR) {
        if (id < 4) return kXlmrNames[id];
        if (id == t->n_pieces + 1) return kMaskName;
        spm_id = id - 1;
    }
    try {
        return t->sp.IdToPiece(spm_id).c_str(); // owned by the model proto inside t
    } catch (...) {
        return nullptr;
    }
}

// ---- encode / decode ----------------------------------------------------------------------------

namespace {

xa_status encode_impl(const char *fn, const xa_spm *t, const char *text, size_t len,
                      int add_special, int32_t **ids, xa_spm_span **spans, size_t *n_ids) {
    if (ids) *ids = nullptr;
    if (spans) *spans = nullptr;
    if (n_ids) *n_ids = 0;
    if (!t || !ids || !n_ids || (!text && len)) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr,
                            "%s: NULL argument (spm %p, text %p with len %zu, ids %p, n_ids %p)",
                            fn, (const void *)t, (const void *)text, len, (void *)ids,
                            (void *)n_ids);
    }
    if (len >= (size_t)INT32_MAX) {
        return xa_error_set(XA_STATUS_USAGE, t->name.c_str(), "fewer than 2^31 bytes", nullptr,
                            "%s: text of %zu bytes is too long", fn, len);
    }
    const std::string_view in(text ? text : "", len);
    const xa_spm_special s = active_specials(t);
    const bool with_bos = add_special && s.bos >= 0, with_eos = add_special && s.eos >= 0;
    int32_t *out_ids = nullptr;
    xa_spm_span *out_spans = nullptr;
    try {
        std::vector<int> raw;
        std::vector<xa_spm_span> raw_spans;
        spm::util::Status st;
        if (spans) {
            spm::ImmutableSentencePieceText spt;
            st = t->sp.Encode(in, spt.mutable_proto());
            if (st.ok()) {
                const size_t np = spt.pieces_size();
                raw.reserve(np);
                raw_spans.reserve(np);
                for (size_t i = 0; i < np; i++) {
                    const auto p = spt.pieces((int)i);
                    raw.push_back((int)p.id());
                    raw_spans.push_back(xa_spm_span{p.begin(), p.end()});
                }
            }
        } else {
            st = t->sp.Encode(in, &raw);
        }
        if (!st.ok()) {
            return xa_error_set(XA_STATUS_RUNTIME, t->name.c_str(), nullptr, nullptr,
                                "%s: sentencepiece failed on %zu bytes of text: %s", fn, len,
                                st.ToString().c_str());
        }
        const size_t n = raw.size() + (with_bos ? 1 : 0) + (with_eos ? 1 : 0);
        out_ids = static_cast<int32_t *>(std::malloc((n ? n : 1) * sizeof *out_ids));
        if (spans)
            out_spans = static_cast<xa_spm_span *>(std::malloc((n ? n : 1) * sizeof *out_spans));
        if (!out_ids || (spans && !out_spans)) {
            std::free(out_ids);
            std::free(out_spans);
            return xa_error_set(XA_STATUS_NOMEM, t->name.c_str(), nullptr, nullptr,
                                "%s: out of memory for %zu ids", fn, n);
        }
        size_t k = 0;
        if (with_bos) {
            if (out_spans) out_spans[k] = xa_spm_span{0, 0};
            out_ids[k++] = s.bos;
        }
        for (size_t i = 0; i < raw.size(); i++) {
            if (out_spans) out_spans[k] = raw_spans[i];
            out_ids[k++] = to_active(t, raw[i]);
        }
        if (with_eos) {
            if (out_spans) out_spans[k] = xa_spm_span{len, len};
            out_ids[k++] = s.eos;
        }
        *ids = out_ids;
        if (spans) *spans = out_spans;
        *n_ids = n;
        return XA_STATUS_OK;
    } catch (...) {
        std::free(out_ids);
        std::free(out_spans);
        return error_from_exception(fn, t->name.c_str());
    }
}

} // namespace

extern "C" xa_status xa_spm_encode(const xa_spm *t, const char *text, size_t len, int add_special,
                                   int32_t **ids, size_t *n_ids) {
    return encode_impl("xa_spm_encode", t, text, len, add_special, ids, nullptr, n_ids);
}

extern "C" xa_status xa_spm_encode_offsets(const xa_spm *t, const char *text, size_t len,
                                           int add_special, int32_t **ids, xa_spm_span **spans,
                                           size_t *n_ids) {
    if (!spans) {
        if (ids) *ids = nullptr;
        if (n_ids) *n_ids = 0;
        return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr,
                            "xa_spm_encode_offsets: NULL spans");
    }
    return encode_impl("xa_spm_encode_offsets", t, text, len, add_special, ids, spans, n_ids);
}

extern "C" xa_status xa_spm_decode(const xa_spm *t, const int32_t *ids, size_t n, char **text) {
    static const char *fn = "xa_spm_decode";
    if (text) *text = nullptr;
    if (!t || !text || (!ids && n)) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr,
                            "%s: NULL argument (spm %p, ids %p with n %zu, text %p)", fn,
                            (const void *)t, (const void *)ids, n, (void *)text);
    }
    const xa_spm_special s = active_specials(t);
    const int32_t vocab = active_vocab(t);
    try {
        std::vector<int> raw;
        raw.reserve(n);
        for (size_t i = 0; i < n; i++) {
            const int32_t id = ids[i];
            if (id < 0 || id >= vocab) {
                return xa_error_set(XA_STATUS_USAGE, t->name.c_str(), nullptr, nullptr,
                                    "%s: id %d at position %zu is outside the vocabulary [0, %d)",
                                    fn, id, i, vocab);
            }
            if (id == s.bos || id == s.eos || id == s.pad || id == s.mask) continue;
            if (t->ids == XA_SPM_IDS_XLMR) {
                raw.push_back(id == kXlmrUnk ? t->native.unk : id - 1);
            } else {
                raw.push_back(id);
            }
        }
        std::string out;
        spm::util::Status st = t->sp.Decode(raw, &out);
        if (!st.ok()) {
            return xa_error_set(XA_STATUS_RUNTIME, t->name.c_str(), nullptr, nullptr,
                                "%s: sentencepiece failed on %zu ids: %s", fn, n,
                                st.ToString().c_str());
        }
        char *buf = static_cast<char *>(std::malloc(out.size() + 1));
        if (!buf) {
            return xa_error_set(XA_STATUS_NOMEM, t->name.c_str(), nullptr, nullptr,
                                "%s: out of memory for %zu bytes", fn, out.size() + 1);
        }
        std::memcpy(buf, out.data(), out.size());
        buf[out.size()] = '\0';
        *text = buf;
        return XA_STATUS_OK;
    } catch (...) {
        return error_from_exception(fn, t->name.c_str());
    }
}

// ---- training -----------------------------------------------------------------------------------

extern "C" xa_spm_train_opts xa_spm_train_opts_default(void) {
    xa_spm_train_opts o;
    std::memset(&o, 0, sizeof o);
    o.model_type = "unigram";
    o.vocab_size = 8000;
    o.character_coverage = 0.9995;
    o.input_sentence_size = 0;
    o.shuffle = 1;
    o.seed = 42;
    o.num_threads = 1;
    o.max_sentence_length = 4192;
    return o;
}

namespace {

// The trainer flags take comma-separated lists.
std::string join_commas(const char *const *v, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; i++) {
        if (i) s += ',';
        s += v[i];
    }
    return s;
}

xa_status check_train_opts(const char *fn, const xa_spm_train_opts *o) {
    if (!o) return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr, "%s: NULL opts", fn);
    if (!o->inputs || o->n_inputs == 0) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "at least one input text file",
                            "pass the training text with --input", "%s: no input files", fn);
    }
    for (size_t i = 0; i < o->n_inputs; i++) {
        const char *p = o->inputs[i];
        if (!p || !*p) {
            return xa_error_set(XA_STATUS_USAGE, nullptr, "a file name", nullptr,
                                "%s: input %zu is %s", fn, i, p ? "an empty name" : "NULL");
        }
        if (std::strchr(p, ',')) {
            return xa_error_set(XA_STATUS_USAGE, p, "a path without ','",
                                "SentencePiece splits its input list at commas: rename the file",
                                "%s: input file name contains a comma", fn);
        }
        FILE *f = std::fopen(p, "rb");
        if (!f) {
            int e = errno;
            return xa_error_set(XA_STATUS_USAGE, p, "a readable text file", nullptr,
                                "%s: cannot open input file '%s': %s", fn, p, std::strerror(e));
        }
        std::fclose(f);
    }
    if (!o->model_prefix || !*o->model_prefix) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "an output path prefix", nullptr,
                            "%s: no model_prefix", fn);
    }
    const char *type = o->model_type ? o->model_type : "unigram";
    if (std::strcmp(type, "unigram") != 0 && std::strcmp(type, "bpe") != 0) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "\"unigram\" or \"bpe\"", nullptr,
                            "%s: unknown model type '%s'", fn, type);
    }
    if (!o->user_symbols && o->n_user_symbols) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr, nullptr,
                            "%s: NULL user_symbols with n_user_symbols %zu", fn, o->n_user_symbols);
    }
    for (size_t i = 0; i < o->n_user_symbols; i++) {
        const char *u = o->user_symbols[i];
        if (!u || !*u || std::strchr(u, ',')) {
            return xa_error_set(XA_STATUS_USAGE, nullptr, "a non-empty symbol without ','", nullptr,
                                "%s: user symbol %zu is '%s'", fn, i, u ? u : "(null)");
        }
    }
    // <unk>, <s>, </s>, the user symbols, and at least one learned piece.
    const int64_t min_vocab = 3 + (int64_t)o->n_user_symbols + 1;
    if (o->vocab_size < min_vocab) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, nullptr,
                            "a useful vocabulary holds thousands of pieces",
                            "%s: vocab_size %d is too small: the meta pieces and %zu user symbols "
                            "alone need %lld",
                            fn, (int)o->vocab_size, o->n_user_symbols, (long long)min_vocab);
    }
    if (!(o->character_coverage >= 0.98 && o->character_coverage <= 1.0)) {
        return xa_error_set(XA_STATUS_USAGE, nullptr,
                            "a value in [0.98, 1] (SentencePiece's range)",
                            "0.9995 for large alphabets (CJK), 1.0 for small ones",
                            "%s: character_coverage %g is out of range", fn, o->character_coverage);
    }
    if (o->input_sentence_size < 0 ||
        (o->input_sentence_size > 0 && o->input_sentence_size <= 100)) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "0 (all sentences) or more than 100",
                            "SentencePiece does not sample 100 sentences or fewer",
                            "%s: input_sentence_size %lld", fn, (long long)o->input_sentence_size);
    }
    if (o->num_threads < 1 || o->num_threads > 128) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "1..128", nullptr, "%s: num_threads %d", fn,
                            (int)o->num_threads);
    }
    if (o->max_sentence_length < 10 || o->max_sentence_length > (1 << 30)) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "10 .. 2^30 bytes", nullptr,
                            "%s: max_sentence_length %d", fn, (int)o->max_sentence_length);
    }
    if (o->seed == UINT32_MAX) {
        return xa_error_set(XA_STATUS_USAGE, nullptr, "a seed below 4294967295",
                            "SentencePiece reserves (unsigned)-1 for a random seed", "%s: seed %u",
                            fn, (unsigned)o->seed);
    }
    return XA_STATUS_OK;
}

// Serialises training: SentencePiece's seed and log level are process-wide.
std::mutex g_train_mutex;
std::atomic<unsigned> g_train_counter{0};

} // namespace

namespace {

// Write data to path through path.tmp-PID-N: flushed, synced and renamed, so a failure never
// leaves a half-written file where a good one stood.
xa_status write_file_atomic(const char *fn, const std::string &path, const std::string &data) {
    const std::string tmp = path + ".tmp-" + std::to_string((long)getpid()) + "-" +
                            std::to_string(g_train_counter.fetch_add(1));
    FILE *f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
        int e = errno;
        return xa_error_set(XA_STATUS_IO, path.c_str(), nullptr,
                            e == ENOENT ? "does the output directory exist?" : nullptr,
                            "%s: cannot write: %s", fn, std::strerror(e));
    }
    bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    ok = std::fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int e = errno;
    ok = std::fclose(f) == 0 && ok;
    if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
        e = errno;
        ok = false;
    }
    if (!ok) {
        std::remove(tmp.c_str());
        return xa_error_set(XA_STATUS_IO, path.c_str(), nullptr, nullptr,
                            "%s: cannot write %zu bytes: %s", fn, data.size(), std::strerror(e));
    }
    return XA_STATUS_OK;
}

// The .vocab text that SentencePiece's trainer writes: "piece<TAB>score" per line, the score
// printed by an ostream with default precision.
std::string vocab_text(const std::string &serialized) {
    spm::SentencePieceProcessor sp;
    spm::util::Status s = sp.LoadFromSerializedProto(serialized);
    if (!s.ok()) throw std::runtime_error("the trained model does not load: " + s.ToString());
    std::ostringstream os;
    for (int i = 0; i < sp.GetPieceSize(); i++) {
        os << sp.IdToPiece(i) << "\t" << sp.GetScore(i) << "\n";
    }
    return os.str();
}

} // namespace

extern "C" xa_status xa_spm_train(const xa_spm_train_opts *o) {
    static const char *fn = "xa_spm_train";
    xa_status st = check_train_opts(fn, o);
    if (st != XA_STATUS_OK) return st;
    const char *where = o->model_prefix;
    try {
        const std::string prefix = o->model_prefix;
        const std::string model_path = prefix + ".model", vocab_path = prefix + ".vocab";
        {
            // Fail early, with the real reason, if the output directory is not writable.
            st = write_file_atomic(fn, model_path + ".probe", std::string());
            if (st != XA_STATUS_OK) return st;
            std::remove((model_path + ".probe").c_str());
        }
        char cov[64];
        std::snprintf(cov, sizeof cov, "%.9g", o->character_coverage);
        // No model_prefix: the trainer returns the serialized model (so the bytes do not depend
        // on the output path) and the files are written below, atomically.
        std::unordered_map<std::string, std::string> kw = {
            {"input", join_commas(o->inputs, o->n_inputs)},
            {"model_type", o->model_type ? o->model_type : "unigram"},
            {"vocab_size", std::to_string(o->vocab_size)},
            {"character_coverage", cov},
            {"input_sentence_size", std::to_string(o->input_sentence_size)},
            {"shuffle_input_sentence", o->shuffle ? "true" : "false"},
            {"num_threads", std::to_string(o->num_threads)},
            {"max_sentence_length", std::to_string(o->max_sentence_length)},
            {"byte_fallback", o->byte_fallback ? "true" : "false"},
            {"split_digits", o->split_digits ? "true" : "false"},
            // The layout of XLM-R's model, which xa_spm_set_ids(XA_SPM_IDS_XLMR) relies on.
            {"unk_id", "0"},
            {"bos_id", "1"},
            {"eos_id", "2"},
            {"pad_id", "-1"},
        };
        if (o->n_user_symbols) {
            kw["user_defined_symbols"] = join_commas(o->user_symbols, o->n_user_symbols);
        }

        spm::util::Status sst;
        std::string serialized;
        std::exception_ptr thrown;
        {
            std::lock_guard<std::mutex> lock(g_train_mutex);
            const int old_level = spm::logging::GetMinLogLevel();
            spm::logging::SetMinLogLevel(o->verbose ? 0 : 2);
            spm::SetRandomGeneratorSeed(o->seed);
            try {
                sst = spm::SentencePieceTrainer::Train(kw, nullptr, &serialized);
            } catch (...) {
                thrown = std::current_exception();
            }
            spm::logging::SetMinLogLevel(old_level);
        }
        if (thrown) std::rethrow_exception(thrown);
        if (!sst.ok()) {
            const std::string msg = sst.ToString();
            const bool user = msg.find("ocabulary size") != std::string::npos ||
                              sst.code() == spm::util::StatusCode::kInvalidArgument;
            return xa_error_set(
                user ? XA_STATUS_USAGE : XA_STATUS_RUNTIME, o->inputs[0], nullptr,
                user ? "vocab_size must fit the corpus: lower it for a small corpus (unigram), or "
                       "raise it / lower character_coverage when the characters alone exceed it"
                     : nullptr,
                "%s: SentencePiece training (%s, vocab %d, %zu input file%s) failed: %s", fn,
                o->model_type ? o->model_type : "unigram", (int)o->vocab_size, o->n_inputs,
                o->n_inputs == 1 ? "" : "s", msg.c_str());
        }
        const std::string vocab = vocab_text(serialized);
        st = write_file_atomic(fn, model_path, serialized);
        if (st == XA_STATUS_OK) st = write_file_atomic(fn, vocab_path, vocab);
        if (st != XA_STATUS_OK) return st;
        XA_LOG_DEBUG("%s: wrote %s (%s, vocab %d)", fn, model_path.c_str(),
                     o->model_type ? o->model_type : "unigram", (int)o->vocab_size);
        return XA_STATUS_OK;
    } catch (...) {
        return error_from_exception(fn, where);
    }
}

extern "C" const char *xa_spm_library_version(void) {
#ifdef XA_SPM_VERSION
    return XA_SPM_VERSION;
#else
    return "unknown";
#endif
}
