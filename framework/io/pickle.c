/* io/pickle: the restricted unpickler of pickle.h.
 *
 * Follows the pickle virtual machine of CPython's Lib/pickle.py (_Unpickler) and the opcode
 * definitions of Lib/pickletools.py: a value stack, a mark stack (a MARK starts a new stack
 * segment: pops never cross it), and a memo indexed by integers. Only the binary opcodes that
 * build plain data are implemented; GLOBAL / STACK_GLOBAL resolve to a fixed vocabulary (names,
 * never imports), REDUCE runs one of three known constructors on checked arguments, BINPERSID
 * turns torch's persistent id tuple into a storage reference. torch.save writes protocol 2
 * (torch/serialization.py, DEFAULT_PROTOCOL); protocol 3/4 framing and MEMOIZE are accepted for
 * files written with pickle_protocol=4.
 *
 * Does not: import, call, or instantiate anything; read text-protocol opcodes (INT, STRING, GET,
 * ...), bytes objects, sets, INST/OBJ/NEWOBJ, extension registries or out-of-band buffers: each
 * is refused naming the opcode and its byte offset.
 */
#include "io/pickle.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 1024 /* values per pool chunk */

/* ---- the vocabulary of globals ----------------------------------------------------------------- */

enum { G_ODICT, G_REBUILD_V2, G_REBUILD_PARAM, G_STORAGE0 };

static const struct {
    const char *module, *name;
    xa_dtype dtype; /* storages only */
} g_vocab[] = {
    {"collections", "OrderedDict", XA_DTYPE_COUNT},
    {"torch._utils", "_rebuild_tensor_v2", XA_DTYPE_COUNT},
    {"torch._utils", "_rebuild_parameter", XA_DTYPE_COUNT},
    {"torch", "DoubleStorage", XA_DTYPE_F64},
    {"torch", "FloatStorage", XA_DTYPE_F32},
    {"torch", "HalfStorage", XA_DTYPE_F16},
    {"torch", "BFloat16Storage", XA_DTYPE_BF16},
    {"torch", "LongStorage", XA_DTYPE_I64},
    {"torch", "IntStorage", XA_DTYPE_I32},
    {"torch", "ShortStorage", XA_DTYPE_I16},
    {"torch", "CharStorage", XA_DTYPE_I8},
    {"torch", "ByteStorage", XA_DTYPE_U8},
    {"torch", "BoolStorage", XA_DTYPE_BOOL},
};
#define N_VOCAB (int)(sizeof g_vocab / sizeof *g_vocab)

static const char *const g_vocab_text =
    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter "
    "or a torch.<Dtype>Storage";
static const char *const g_hint =
    "xadapt reads what torch.save(model.state_dict()) writes and nothing else: a pickle is a "
    "program, so anything outside that is refused, never run";

static const char *op_name(unsigned op) {
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return NULL;
    }
}

const char *xa_pv_kind_name(xa_pv_kind k) {
    static const char *const names[] = {"None", "bool",   "int",    "float",   "str",   "tuple",
                                        "list", "dict",   "global", "storage", "tensor"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* ---- the machine ---------------------------------------------------------------------------------- */

struct xa_pickle {
    char where[XA_ERROR_FIELD];
    const unsigned char *b;
    size_t n, pos, op_pos; /* op_pos: offset of the opcode being run, for messages */
    xa_pv **chunks;        /* pool: chunks of CHUNK values */
    size_t n_chunks, used; /* used: values taken from the last chunk */
    size_t n_values;
    xa_pv none_v, true_v, false_v; /* shared immutable values */
    xa_pv **stack;
    size_t sp, stack_cap;
    size_t *marks; /* stack heights at each MARK */
    size_t n_marks, marks_cap;
    xa_pv **memo;
    size_t memo_cap, memo_len;
    xa_pv **storages;
    size_t n_storages, storages_cap;
    xa_pv *root;
};

static xa_status perr(xa_pickle *p, xa_status st, const char *expected, const char *hint,
                      const char *fmt, ...) XA_PRINTF(5, 6);
static xa_status perr(xa_pickle *p, xa_status st, const char *expected, const char *hint,
                      const char *fmt, ...) {
    char where[XA_ERROR_FIELD], msg[XA_ERROR_FIELD];
    snprintf(where, sizeof where, "%.400s at byte %zu", p->where, p->op_pos);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return xa_error_set(st, where, expected, hint, "%s", msg);
}

static xa_status nomem(xa_pickle *p) {
    return perr(p, XA_STATUS_NOMEM, NULL, NULL, "out of memory");
}

/* Grow *arr (elements of size sz) to hold at least need elements. */
static int grow(void *arr, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / sz) return 0;
        nc *= 2;
    }
    void *na = realloc(*(void **)arr, nc * sz);
    if (!na) return 0;
    *(void **)arr = na;
    *cap = nc;
    return 1;
}

static xa_pv *new_value(xa_pickle *p, xa_pv_kind kind) {
    if (p->n_values >= XA_PICKLE_MAX_VALUES) {
        perr(p, XA_STATUS_UNSUPPORTED, "at most 4194304 objects", g_hint,
             "the pickle builds more than %d objects", XA_PICKLE_MAX_VALUES);
        return NULL;
    }
    if (!p->n_chunks || p->used == CHUNK) {
        xa_pv **nc = realloc(p->chunks, (p->n_chunks + 1) * sizeof *nc);
        if (!nc) {
            nomem(p);
            return NULL;
        }
        p->chunks = nc;
        if (!(p->chunks[p->n_chunks] = calloc(CHUNK, sizeof(xa_pv)))) {
            nomem(p);
            return NULL;
        }
        p->n_chunks++;
        p->used = 0;
    }
    xa_pv *v = &p->chunks[p->n_chunks - 1][p->used++];
    p->n_values++;
    v->kind = kind;
    return v;
}

void xa_pickle_free(xa_pickle *p) {
    if (!p) return;
    for (size_t c = 0; c < p->n_chunks; c++) {
        size_t used = c + 1 == p->n_chunks ? p->used : CHUNK;
        for (size_t i = 0; i < used; i++) {
            xa_pv *v = &p->chunks[c][i];
            if (v->kind == XA_PV_STR) free(v->u.str.s);
            if (v->kind == XA_PV_TUPLE || v->kind == XA_PV_LIST || v->kind == XA_PV_DICT) {
                free(v->u.seq.items);
            }
        }
        free(p->chunks[c]);
    }
    free(p->chunks);
    free(p->stack);
    free(p->marks);
    free(p->memo);
    free(p->storages);
    free(p);
}

const xa_pv *xa_pickle_root(const xa_pickle *p) {
    return p->root;
}
size_t xa_pickle_storage_count(const xa_pickle *p) {
    return p->n_storages;
}
const xa_pv *xa_pickle_storage_at(const xa_pickle *p, size_t i) {
    return i < p->n_storages ? p->storages[i] : NULL;
}

static size_t seg_base(const xa_pickle *p) {
    return p->n_marks ? p->marks[p->n_marks - 1] : 0;
}

static xa_status push(xa_pickle *p, xa_pv *v) {
    if (!v) return xa_error_last()->status;
    if (!grow(&p->stack, &p->stack_cap, p->sp + 1, sizeof *p->stack)) return nomem(p);
    p->stack[p->sp++] = v;
    return XA_STATUS_OK;
}

static xa_status pop(xa_pickle *p, xa_pv **out, unsigned op) {
    *out = NULL;
    if (p->sp <= seg_base(p)) {
        return perr(p, XA_STATUS_FORMAT, "a value on the stack", "corrupt or truncated pickle?",
                    "%s finds the stack empty", op_name(op));
    }
    *out = p->stack[--p->sp];
    return XA_STATUS_OK;
}

static xa_status top(xa_pickle *p, xa_pv **out, unsigned op) {
    *out = NULL;
    if (p->sp <= seg_base(p)) {
        return perr(p, XA_STATUS_FORMAT, "a value on the stack", "corrupt or truncated pickle?",
                    "%s finds the stack empty", op_name(op));
    }
    *out = p->stack[p->sp - 1];
    return XA_STATUS_OK;
}

/* Pop the values above the last mark, and the mark: *items points into the stack (valid until
 * the next push), *n their count. */
static xa_status pop_mark(xa_pickle *p, xa_pv ***items, size_t *n, unsigned op) {
    *items = NULL;
    *n = 0;
    if (!p->n_marks) {
        return perr(p, XA_STATUS_FORMAT, "a MARK before it", "corrupt pickle?", "%s without a MARK",
                    op_name(op));
    }
    size_t base = p->marks[--p->n_marks];
    *items = p->stack ? p->stack + base : NULL; /* a MARK on a still empty (NULL) stack */
    *n = p->sp - base;
    p->sp = base;
    return XA_STATUS_OK;
}

static xa_status seq_append(xa_pickle *p, xa_pv *seq, xa_pv *v) {
    if (!grow(&seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof *seq->u.seq.items)) {
        return nomem(p);
    }
    seq->u.seq.items[seq->u.seq.n++] = v;
    return XA_STATUS_OK;
}

static xa_pv *new_seq(xa_pickle *p, xa_pv_kind kind, xa_pv **items, size_t n) {
    xa_pv *v = new_value(p, kind);
    if (!v) return NULL;
    if (n) {
        if (!(v->u.seq.items = malloc(n * sizeof *items))) {
            nomem(p);
            return NULL;
        }
        memcpy(v->u.seq.items, items, n * sizeof *items);
        v->u.seq.n = v->u.seq.cap = n;
    }
    return v;
}

static int need(const xa_pickle *p, size_t k) {
    return p->n - p->pos >= k;
}

static xa_status truncated(xa_pickle *p, unsigned op, size_t k) {
    return perr(p, XA_STATUS_FORMAT, "the opcode's argument", "truncated file?",
                "%s needs %zu more bytes; %zu are left", op_name(op), k, p->n - p->pos);
}

static uint64_t le(const unsigned char *b, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static xa_pv *new_int(xa_pickle *p, int64_t x) {
    xa_pv *v = new_value(p, XA_PV_INT);
    if (v) v->u.i = x;
    return v;
}

static xa_status op_string(xa_pickle *p, unsigned op, size_t lenbytes) {
    if (!need(p, lenbytes)) return truncated(p, op, lenbytes);
    uint64_t len = le(p->b + p->pos, (int)lenbytes);
    if (op == 'T' && len > 0x7FFFFFFFu) {
        return perr(p, XA_STATUS_FORMAT, "a non-negative length", "corrupt pickle?",
                    "BINSTRING has a negative length");
    }
    p->pos += lenbytes;
    if (len > p->n - p->pos) return truncated(p, op, (size_t)len);
    xa_pv *v = new_value(p, XA_PV_STR);
    if (!v) return xa_error_last()->status;
    if (!(v->u.str.s = malloc((size_t)len + 1))) return nomem(p);
    memcpy(v->u.str.s, p->b + p->pos, (size_t)len);
    v->u.str.s[len] = '\0';
    v->u.str.n = (size_t)len;
    p->pos += (size_t)len;
    return push(p, v);
}

/* A global by name: an index into the vocabulary, or UNSUPPORTED naming it. */
static xa_status resolve_global(xa_pickle *p, const char *mod, size_t nmod, const char *name,
                                size_t nname, unsigned op) {
    for (int g = 0; g < N_VOCAB; g++) {
        if (strlen(g_vocab[g].module) == nmod && memcmp(g_vocab[g].module, mod, nmod) == 0 &&
            strlen(g_vocab[g].name) == nname && memcmp(g_vocab[g].name, name, nname) == 0) {
            xa_pv *v = new_value(p, XA_PV_GLOBAL);
            if (!v) return xa_error_last()->status;
            v->u.global = g;
            return push(p, v);
        }
    }
    return perr(p, XA_STATUS_UNSUPPORTED, g_vocab_text, g_hint, "%s '%.*s.%.*s' is not allowed",
                op_name(op), (int)(nmod > 200 ? 200 : nmod), mod, (int)(nname > 200 ? 200 : nname),
                name);
}

static xa_status op_global(xa_pickle *p) {
    /* "module\nname\n" */
    const char *s = (const char *)p->b + p->pos;
    size_t left = p->n - p->pos;
    const char *nl1 = memchr(s, '\n', left);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', left - (size_t)(nl1 + 1 - s)) : NULL;
    if (!nl2) return truncated(p, 'c', left + 1);
    p->pos += (size_t)(nl2 + 1 - s);
    return resolve_global(p, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1), 'c');
}

static xa_status op_stack_global(xa_pickle *p) {
    xa_pv *name, *mod;
    xa_status st;
    if ((st = pop(p, &name, 0x93)) || (st = pop(p, &mod, 0x93))) return st;
    if (name->kind != XA_PV_STR || mod->kind != XA_PV_STR) {
        return perr(p, XA_STATUS_FORMAT, "two strings (module, name)", "corrupt pickle?",
                    "STACK_GLOBAL gets a %s and a %s", xa_pv_kind_name(mod->kind),
                    xa_pv_kind_name(name->kind));
    }
    return resolve_global(p, mod->u.str.s, mod->u.str.n, name->u.str.s, name->u.str.n, 0x93);
}

/* A tuple of non-negative ints into out[0..n), n <= XA_PICKLE_MAX_DIMS. */
static int int_tuple(const xa_pv *t, int64_t *out, int *n) {
    if (t->kind != XA_PV_TUPLE || t->u.seq.n > XA_PICKLE_MAX_DIMS) return 0;
    for (size_t i = 0; i < t->u.seq.n; i++) {
        const xa_pv *v = t->u.seq.items[i];
        if (v->kind != XA_PV_INT || v->u.i < 0) return 0;
        out[i] = v->u.i;
    }
    *n = (int)t->u.seq.n;
    return 1;
}

static xa_status bad_args(xa_pickle *p, const char *fn, const char *expected, const char *what) {
    return perr(p, XA_STATUS_FORMAT, expected, "not a file written by torch.save?",
                "REDUCE of %s: %s", fn, what);
}

static xa_status rebuild_tensor(xa_pickle *p, xa_pv **a, size_t n) {
    static const char *fn = "torch._utils._rebuild_tensor_v2";
    static const char *want =
        "(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]) with size and "
        "stride tuples of at most 8 non-negative ints";
    if (n != 6 && n != 7) {
        char what[64];
        snprintf(what, sizeof what, "%zu arguments", n);
        return bad_args(p, fn, want, what);
    }
    xa_pv *v = new_value(p, XA_PV_TENSOR);
    if (!v) return xa_error_last()->status;
    xa_pv_tensor *t = &v->u.tensor;
    int nd_stride = -1;
    if (a[0]->kind != XA_PV_STORAGE) return bad_args(p, fn, want, "argument 0 is not a storage");
    if (a[1]->kind != XA_PV_INT || a[1]->u.i < 0) {
        return bad_args(p, fn, want, "the storage offset is not a non-negative int");
    }
    if (!int_tuple(a[2], t->shape, &t->n_dims)) {
        return bad_args(p, fn, want, "the size is not a tuple of at most 8 non-negative ints");
    }
    if (!int_tuple(a[3], t->stride, &nd_stride) || nd_stride != t->n_dims) {
        return bad_args(p, fn, want, "the stride is not a tuple of non-negative ints as long as the size");
    }
    if (a[4]->kind != XA_PV_BOOL) return bad_args(p, fn, want, "requires_grad is not a bool");
    if (a[5]->kind != XA_PV_DICT || (n == 7 && a[6]->kind != XA_PV_DICT)) {
        return bad_args(p, fn, want, "backward_hooks / metadata are not dicts");
    }
    t->storage = a[0];
    t->offset = a[1]->u.i;
    return push(p, v);
}

static xa_status op_reduce(xa_pickle *p) {
    xa_pv *args, *fn;
    xa_status st;
    if ((st = pop(p, &args, 'R')) || (st = pop(p, &fn, 'R'))) return st;
    if (fn->kind != XA_PV_GLOBAL) {
        return perr(p, XA_STATUS_UNSUPPORTED, g_vocab_text, g_hint, "REDUCE calls a %s",
                    xa_pv_kind_name(fn->kind));
    }
    const char *name = g_vocab[fn->u.global].name;
    if (args->kind != XA_PV_TUPLE) {
        return perr(p, XA_STATUS_FORMAT, "a tuple of arguments", "corrupt pickle?",
                    "REDUCE of %s gets a %s as its arguments", name, xa_pv_kind_name(args->kind));
    }
    xa_pv **a = args->u.seq.items;
    size_t n = args->u.seq.n;
    switch (fn->u.global) {
    case G_ODICT:
        if (n != 0) return bad_args(p, "collections.OrderedDict", "no arguments", "called with arguments");
        return push(p, new_value(p, XA_PV_DICT));
    case G_REBUILD_V2: return rebuild_tensor(p, a, n);
    case G_REBUILD_PARAM:
        if (n != 3 || a[0]->kind != XA_PV_TENSOR || a[1]->kind != XA_PV_BOOL || a[2]->kind != XA_PV_DICT) {
            return bad_args(p, "torch._utils._rebuild_parameter", "(tensor, requires_grad, backward_hooks)",
                            "other arguments");
        }
        return push(p, a[0]);
    default:
        return perr(p, XA_STATUS_UNSUPPORTED, "a storage type only inside a persistent id", g_hint,
                    "REDUCE calls torch.%s", name);
    }
}

static xa_status op_persid(xa_pickle *p) {
    xa_pv *pid;
    xa_status st;
    if ((st = pop(p, &pid, 'Q'))) return st;
    static const char *want = "('storage', torch.<Dtype>Storage, key, location, numel[, None])";
    xa_pv **a = pid->kind == XA_PV_TUPLE ? pid->u.seq.items : NULL;
    size_t n = a ? pid->u.seq.n : 0;
    if (!a || (n != 5 && n != 6) || a[0]->kind != XA_PV_STR || strcmp(a[0]->u.str.s, "storage") != 0) {
        return perr(p, XA_STATUS_UNSUPPORTED, want, g_hint,
                    "persistent id is not a torch storage (a %s of %zu items)",
                    xa_pv_kind_name(pid->kind), n);
    }
    if (a[1]->kind != XA_PV_GLOBAL || a[1]->u.global < G_STORAGE0) {
        return perr(p, XA_STATUS_UNSUPPORTED, want, g_hint,
                    "persistent id: the storage type is a %s, not a torch.<Dtype>Storage",
                    a[1]->kind == XA_PV_GLOBAL ? g_vocab[a[1]->u.global].name : xa_pv_kind_name(a[1]->kind));
    }
    if (a[2]->kind != XA_PV_STR || a[3]->kind != XA_PV_STR || a[4]->kind != XA_PV_INT || a[4]->u.i < 0 ||
        strlen(a[2]->u.str.s) != a[2]->u.str.n) {
        return perr(p, XA_STATUS_FORMAT, want, "not a file written by torch.save?",
                    "persistent id: key, location or numel has the wrong type");
    }
    xa_pv *v = new_value(p, XA_PV_STORAGE);
    if (!v) return xa_error_last()->status;
    v->u.storage.dtype = g_vocab[a[1]->u.global].dtype;
    v->u.storage.key = a[2]->u.str.s;
    v->u.storage.numel = a[4]->u.i;
    v->u.storage.has_view = n == 6 && a[5]->kind != XA_PV_NONE;
    if (!grow(&p->storages, &p->storages_cap, p->n_storages + 1, sizeof *p->storages)) return nomem(p);
    p->storages[p->n_storages++] = v;
    return push(p, v);
}

static xa_status memo_put(xa_pickle *p, uint64_t idx, unsigned op) {
    xa_pv *v;
    xa_status st = top(p, &v, op);
    if (st) return st;
    if (idx >= XA_PICKLE_MAX_MEMO) {
        return perr(p, XA_STATUS_UNSUPPORTED, "memo indices below 4194304", g_hint,
                    "%s to memo index %" PRIu64, op_name(op), idx);
    }
    size_t old = p->memo_cap;
    if (!grow(&p->memo, &p->memo_cap, (size_t)idx + 1, sizeof *p->memo)) return nomem(p);
    if (p->memo_cap > old) memset(p->memo + old, 0, (p->memo_cap - old) * sizeof *p->memo);
    if (!p->memo[idx]) p->memo_len++;
    p->memo[idx] = v;
    return XA_STATUS_OK;
}

static xa_status memo_get(xa_pickle *p, uint64_t idx, unsigned op) {
    if (idx >= p->memo_cap || !p->memo[idx]) {
        return perr(p, XA_STATUS_FORMAT, "a memo index set by an earlier PUT", "corrupt pickle?",
                    "%s of memo index %" PRIu64 ", which is not set", op_name(op), idx);
    }
    return push(p, p->memo[idx]);
}

/* SETITEMS / APPENDS / SETITEM / APPEND into the container below the popped items. */
static xa_status fill(xa_pickle *p, unsigned op, xa_pv **items, size_t n) {
    int dict = op == 'u' || op == 's';
    xa_pv *c;
    xa_status st = top(p, &c, op);
    if (st) return st;
    if (c->kind != (dict ? XA_PV_DICT : XA_PV_LIST)) {
        return perr(p, XA_STATUS_UNSUPPORTED, dict ? "a dict to set items in" : "a list to append to",
                    g_hint, "%s on a %s", op_name(op), xa_pv_kind_name(c->kind));
    }
    if (dict && n % 2) {
        return perr(p, XA_STATUS_FORMAT, "key, value pairs", "corrupt pickle?",
                    "SETITEMS with an odd number (%zu) of values", n);
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = seq_append(p, c, items[i]))) return st;
    }
    return XA_STATUS_OK;
}

/* Run one opcode. Sets *stop at STOP. */
static xa_status step(xa_pickle *p, int *stop) {
    xa_status st = XA_STATUS_OK;
    p->op_pos = p->pos;
    if (p->pos >= p->n) {
        return perr(p, XA_STATUS_FORMAT, "a STOP opcode at the end", "truncated file?",
                    "the pickle ends without STOP");
    }
    unsigned op = p->b[p->pos++];
    xa_pv *v, *k, **items;
    size_t n;
    switch (op) {
    case 0x80: /* PROTO */
        if (!need(p, 1)) return truncated(p, op, 1);
        if (p->b[p->pos] < 2 || p->b[p->pos] > 5) {
            return perr(p, XA_STATUS_UNSUPPORTED, "pickle protocol 2 to 5", g_hint,
                        "pickle protocol %u", p->b[p->pos]);
        }
        p->pos++;
        return XA_STATUS_OK;
    case 0x95: /* FRAME: a length prefix of the next opcodes; nothing to do */
        if (!need(p, 8)) return truncated(p, op, 8);
        if (le(p->b + p->pos, 8) > p->n - p->pos - 8) return truncated(p, op, (size_t)le(p->b + p->pos, 8));
        p->pos += 8;
        return XA_STATUS_OK;
    case '.':
        if ((st = pop(p, &p->root, op))) return st;
        *stop = 1;
        return XA_STATUS_OK;
    case '(':
        if (p->n_marks >= XA_PICKLE_MAX_DEPTH) {
            return perr(p, XA_STATUS_UNSUPPORTED, "at most 256 nested MARKs", g_hint,
                        "the pickle nests deeper than %d levels", XA_PICKLE_MAX_DEPTH);
        }
        if (!grow(&p->marks, &p->marks_cap, p->n_marks + 1, sizeof *p->marks)) return nomem(p);
        p->marks[p->n_marks++] = p->sp;
        return XA_STATUS_OK;
    case '0': return pop(p, &v, op);
    case '1': return pop_mark(p, &items, &n, op);
    case '2':
        if ((st = top(p, &v, op))) return st;
        return push(p, v);
    case 'N': return push(p, &p->none_v);
    case 0x88: return push(p, &p->true_v);
    case 0x89: return push(p, &p->false_v);
    case 'J':
        if (!need(p, 4)) return truncated(p, op, 4);
        v = new_int(p, (int32_t)(uint32_t)le(p->b + p->pos, 4));
        p->pos += 4;
        return push(p, v);
    case 'K':
        if (!need(p, 1)) return truncated(p, op, 1);
        return push(p, new_int(p, p->b[p->pos++]));
    case 'M':
        if (!need(p, 2)) return truncated(p, op, 2);
        v = new_int(p, (int64_t)le(p->b + p->pos, 2));
        p->pos += 2;
        return push(p, v);
    case 0x8a: { /* LONG1: n bytes, two's complement, little-endian */
        if (!need(p, 1)) return truncated(p, op, 1);
        size_t len = p->b[p->pos++];
        if (!need(p, len)) return truncated(p, op, len);
        if (len > 8) {
            return perr(p, XA_STATUS_UNSUPPORTED, "integers of at most 64 bits", g_hint,
                        "LONG1 integer of %zu bytes", len);
        }
        uint64_t u = len ? le(p->b + p->pos, (int)len) : 0;
        if (len && len < 8 && (p->b[p->pos + len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
        p->pos += len;
        int64_t x;
        memcpy(&x, &u, sizeof x);
        return push(p, new_int(p, x));
    }
    case 'G': { /* BINFLOAT: big-endian double */
        if (!need(p, 8)) return truncated(p, op, 8);
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | p->b[p->pos + (size_t)i];
        p->pos += 8;
        v = new_value(p, XA_PV_FLOAT);
        if (v) memcpy(&v->u.f, &u, sizeof u);
        return push(p, v);
    }
    case 'X': return op_string(p, op, 4);
    case 0x8c: return op_string(p, op, 1);
    case 0x8d: return op_string(p, op, 8);
    case 'U': return op_string(p, op, 1);
    case 'T': return op_string(p, op, 4);
    case ')': return push(p, new_seq(p, XA_PV_TUPLE, NULL, 0));
    case ']': return push(p, new_seq(p, XA_PV_LIST, NULL, 0));
    case '}': return push(p, new_seq(p, XA_PV_DICT, NULL, 0));
    case 't':
    case 'l':
    case 'd':
        if ((st = pop_mark(p, &items, &n, op))) return st;
        if (op == 'd' && n % 2) {
            return perr(p, XA_STATUS_FORMAT, "key, value pairs", "corrupt pickle?",
                        "DICT with an odd number (%zu) of values", n);
        }
        return push(p, new_seq(p, op == 't' ? XA_PV_TUPLE : op == 'l' ? XA_PV_LIST : XA_PV_DICT,
                               items, n));
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t m = op - 0x84u;
        if (p->sp - seg_base(p) < m) {
            return perr(p, XA_STATUS_FORMAT, "values on the stack", "corrupt pickle?",
                        "%s finds %zu values", op_name(op), p->sp - seg_base(p));
        }
        p->sp -= m;
        return push(p, new_seq(p, XA_PV_TUPLE, p->stack + p->sp, m));
    }
    case 'a':
    case 's':
        if ((st = pop(p, &v, op))) return st;
        if (op == 's') {
            if ((st = pop(p, &k, op))) return st;
            xa_pv *kv[2] = {k, v};
            return fill(p, op, kv, 2);
        }
        return fill(p, op, &v, 1);
    case 'e':
    case 'u':
        if ((st = pop_mark(p, &items, &n, op))) return st;
        return fill(p, op, items, n);
    case 'q':
        if (!need(p, 1)) return truncated(p, op, 1);
        return memo_put(p, p->b[p->pos++], op);
    case 'r':
        if (!need(p, 4)) return truncated(p, op, 4);
        p->pos += 4;
        return memo_put(p, le(p->b + p->pos - 4, 4), op);
    case 0x94: return memo_put(p, p->memo_len, op);
    case 'h':
        if (!need(p, 1)) return truncated(p, op, 1);
        return memo_get(p, p->b[p->pos++], op);
    case 'j':
        if (!need(p, 4)) return truncated(p, op, 4);
        p->pos += 4;
        return memo_get(p, le(p->b + p->pos - 4, 4), op);
    case 'c': return op_global(p);
    case 0x93: return op_stack_global(p);
    case 'R': return op_reduce(p);
    case 'Q': return op_persid(p);
    case 'b': /* BUILD: only a state dict's instance dict (its _metadata) on a dict */
        if ((st = pop(p, &v, op)) || (st = top(p, &k, op))) return st;
        if (k->kind != XA_PV_DICT) {
            return perr(p, XA_STATUS_UNSUPPORTED, "BUILD on a dict (a state dict's _metadata)", g_hint,
                        "BUILD on a %s", xa_pv_kind_name(k->kind));
        }
        return XA_STATUS_OK;
    default: {
        const char *name = op_name(op);
        return perr(p, XA_STATUS_UNSUPPORTED, "the opcodes torch.save writes (protocol 2)", g_hint,
                    "opcode 0x%02x (%s) is not allowed", op, name ? name : "not a pickle opcode");
    }
    }
}

xa_status xa_pickle_load(xa_pickle **out, const void *data, size_t n, size_t *consumed,
                         const char *where) {
    *out = NULL;
    xa_pickle *p = calloc(1, sizeof *p);
    if (!p) return xa_error_set(XA_STATUS_NOMEM, where, NULL, NULL, "out of memory");
    snprintf(p->where, sizeof p->where, "%s", where ? where : "pickle");
    p->b = data;
    p->n = n;
    p->none_v.kind = XA_PV_NONE;
    p->true_v.kind = XA_PV_BOOL;
    p->true_v.u.i = 1;
    p->false_v.kind = XA_PV_BOOL;
    int stop = 0;
    xa_status st = XA_STATUS_OK;
    while (!stop && !(st = step(p, &stop))) {
    }
    if (st) {
        xa_pickle_free(p);
        return st;
    }
    if (consumed) *consumed = p->pos;
    *out = p;
    return XA_STATUS_OK;
}
