/* Tests of framework/io/torchbin, io/pickle, io/zip and io/tensorfile: PyTorch .bin files written
 * by torch 1.13 (tests/data/torchbin/, made by tests/golden/gen_torchbin_fixtures.py) against the
 * values torch wrote (state.golden.safetensors), in the zip, protocol-4 and legacy containers;
 * hostile and malformed files (code-running pickles, nested checkpoints, compression, views past
 * their storage, huge shapes, every truncation, every flipped byte); the pickle machine on
 * hand-made programs; a ZIP64 archive made by hand; the safetensors-first pick; and a base, an
 * adapter and a head that load from .bin to the same weights as from safetensors. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compose/compose.h"
#include "core/core.h"
#include "heads/heads.h"
#include "hub/hub.h"
#include "io/file.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/tensorfile.h"
#include "io/torchbin.h"
#include "io/zip.h"
#include "model/model.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static const char *tb(const char *name) {
    static char buf[4][1024];
    static int slot;
    char *p = buf[slot++ & 3];
    snprintf(p, sizeof buf[0], "torchbin/%s", name);
    return xt_data_path(p);
}

/* Open must fail with st, the error naming the file and `needle`. */
static void expect_error(const char *path, xa_status st, const char *needle) {
    xa_st_file *f = (xa_st_file *)1;
    xa_error_clear();
    xa_status got = xa_tensorfile_open(&f, path);
    if (got != st) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "%s: expected %s, got %s: %s\n", path, xa_status_name(st), xa_status_name(got), buf);
    }
    assert_int_equal(got, st);
    assert_null(f);
    const char *base = strrchr(path, '/');
    xt_assert_error_mentions(base ? base + 1 : path);
    if (needle) xt_assert_error_mentions(needle);
}

/* Compare every tensor of a torch file with the golden file written from torch's tensors. */
static void check_against_golden(const char *file) {
    xa_st_file *g = xt_open_golden("torchbin/state.golden.safetensors");
    assert_non_null(g);
    xa_st_file *f = NULL;
    xa_status st = xa_tensorfile_open(&f, tb(file));
    if (st) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
    assert_int_equal(st, XA_STATUS_OK);
    size_t k = 0;
    for (size_t i = 0; i < xa_st_count(g); i++) {
        const xa_st_tensor *want = xa_st_at(g, i);
        if (strstr(want->name, ".f32")) continue;
        const xa_st_tensor *got = xa_st_at(f, k++);
        assert_non_null(got);
        if (strcmp(got->name, want->name) != 0) {
            fprintf(stderr, "%s: tensor %zu is '%s', torch wrote '%s' there\n", file, k - 1, got->name,
                    want->name);
            fail();
        }
        assert_ptr_equal(xa_st_find(f, want->name), got);
        assert_int_equal(got->dtype, want->dtype);
        assert_int_equal(got->n_dims, want->n_dims);
        for (int d = 0; d < want->n_dims; d++) assert_int_equal(got->shape[d], want->shape[d]);
        assert_int_equal(got->n_elems, want->n_elems);
        assert_int_equal(got->nbytes, want->nbytes);
        if (want->nbytes && memcmp(got->data, want->data, want->nbytes) != 0) {
            fprintf(stderr, "%s: tensor '%s' differs from torch's values\n", file, want->name);
            fail();
        }
        char f32name[256];
        snprintf(f32name, sizeof f32name, "%s.f32", want->name);
        const xa_st_tensor *ref = xa_st_find(g, f32name);
        if (ref && want->dtype == XA_DTYPE_F64) { /* listed and kept, but not converted */
            assert_int_equal(xa_st_read_f32(f, want->name, NULL, 0, xt_fzeros(8)), XA_STATUS_SHAPE);
        } else if (ref) { /* the F32 conversion equals torch's .float(), bit for bit */
            float *a = xt_fzeros((size_t)ref->n_elems + 1), *b = xt_fzeros((size_t)ref->n_elems + 1);
            assert_int_equal(xa_st_read_f32(f, want->name, want->shape, want->n_dims, a), XA_STATUS_OK);
            assert_int_equal(xa_st_tensor_to_f32(ref, b), XA_STATUS_OK);
            assert_memory_equal(a, b, (size_t)ref->n_elems * sizeof(float));
        }
    }
    assert_int_equal(xa_st_count(f), k);
    assert_int_equal(xa_st_metadata_count(f), 0);
    xa_st_close(f);
    xa_st_close(g);
}

/* ---- torch's files against torch's values ------------------------------------------------------ */

static void test_zip_golden(void **state) {
    (void)state;
    check_against_golden("state.bin");
}

static void test_protocol4_golden(void **state) {
    (void)state;
    check_against_golden("state_p4.bin");
}

static void test_legacy_golden(void **state) {
    (void)state;
    check_against_golden("state_legacy.bin");
}

/* Contiguous views point into the mapping at their storage offset (shared bytes, no copy);
 * strided views are copies. */
static void test_shared_storage(void **state) {
    (void)state;
    const char *files[] = {"state.bin", "state_legacy.bin"};
    for (int i = 0; i < 2; i++) {
        xa_st_file *f = NULL;
        assert_int_equal(xa_tensorfile_open(&f, tb(files[i])), XA_STATUS_OK);
        const xa_st_tensor *base = xa_st_find(f, "base"), *off = xa_st_find(f, "offset_view");
        const xa_st_tensor *tr = xa_st_find(f, "transposed"), *col = xa_st_find(f, "column");
        assert_non_null(base);
        assert_non_null(off);
        assert_ptr_equal((const char *)off->data, (const char *)base->data + 6 * sizeof(float));
        assert_int_equal(off->offset, base->offset + 6 * sizeof(float));
        assert_int_equal(tr->offset, 0); /* copied */
        assert_int_equal(col->offset, 0);
        assert_true(tr->data != base->data);
        xa_st_close(f);
    }
}

static void test_sniff(void **state) {
    (void)state;
    assert_int_equal(xa_torch_sniff("PK\3\4", 4), XA_TORCH_FORMAT_ZIP);
    assert_int_equal(xa_torch_sniff("PK\5\6", 4), XA_TORCH_FORMAT_ZIP);
    assert_int_equal(xa_torch_sniff("\x80\x02\x8a\x0a", 4), XA_TORCH_FORMAT_LEGACY);
    assert_int_equal(xa_torch_sniff("\x80\x02\x00\x00", 4), XA_TORCH_FORMAT_NONE); /* a 640-byte safetensors header */
    assert_int_equal(xa_torch_sniff("PK", 2), XA_TORCH_FORMAT_NONE);
    /* safetensors files still go to the safetensors reader */
    xa_st_file *f = NULL;
    assert_int_equal(xa_tensorfile_open(&f, tb("state.golden.safetensors")), XA_STATUS_OK);
    xa_st_close(f);
}

/* ---- hostile and malformed files --------------------------------------------------------------- */

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_hostile_files(void **state) {
    (void)state;
    remove("/tmp/xadapt-pwned");
    remove("/tmp/xadapt-pwned-eval");
    expect_error(tb("evil_system.bin"), XA_STATUS_UNSUPPORTED, "GLOBAL 'posix.system' is not allowed");
    expect_error(tb("evil_legacy.bin"), XA_STATUS_UNSUPPORTED, "posix.system");
    expect_error(tb("evil_eval_p4.bin"), XA_STATUS_UNSUPPORTED, "STACK_GLOBAL 'builtins.eval'");
    assert_false(exists("/tmp/xadapt-pwned"));
    assert_false(exists("/tmp/xadapt-pwned-eval"));
    expect_error(tb("nested.bin"), XA_STATUS_FORMAT, "'state_dict' holds a dict");
    expect_error(tb("int_key.bin"), XA_STATUS_FORMAT, "key 0");
    expect_error(tb("compressed.bin"), XA_STATUS_UNSUPPORTED, "compressed (method 8, deflate)");
    expect_error(tb("bad_view.bin"), XA_STATUS_FORMAT, "reaches element 13 of storage '0'");
    expect_error(tb("bad_numel.bin"), XA_STATUS_FORMAT, "13 elements of F32 need 52");
    expect_error(tb("huge_shape.bin"), XA_STATUS_FORMAT, "overflows");
}

/* Every prefix of a torch file is refused with a message (no crash, nothing half-open). */
static void test_truncated(void **state) {
    (void)state;
    const char *files[] = {"state.bin", "state_legacy.bin", "state_p4.bin"};
    for (int i = 0; i < 3; i++) {
        size_t n;
        char *bytes = xt_read_file(tb(files[i]), &n);
        assert_non_null(bytes);
        const char *path = xt_tmp_path("cut.bin");
        for (size_t len = 0; len < n; len += 1 + len / 64) {
            xt_write_file(path, bytes, len);
            xa_st_file *f = (xa_st_file *)1;
            xa_error_clear();
            xa_status st = xa_tensorfile_open(&f, path);
            if (st == XA_STATUS_OK) {
                fprintf(stderr, "%s cut to %zu of %zu bytes opened\n", files[i], len, n);
                fail();
            }
            assert_null(f);
            assert_true(xa_error_last()->what[0] != '\0');
        }
        free(bytes);
    }
}

/* Every single flipped byte gives either the file (a byte the format does not check) or an error
 * with a message; a flipped storage byte is a CRC error. */
static void test_flipped_bytes(void **state) {
    (void)state;
    size_t n;
    char *bytes = xt_read_file(tb("state.bin"), &n);
    assert_non_null(bytes);
    const char *path = xt_tmp_path("flip.bin");
    int crc = 0;
    for (size_t i = 0; i < n; i++) {
        bytes[i] ^= 0x5A;
        xt_write_file(path, bytes, n);
        bytes[i] ^= 0x5A;
        xa_st_file *f = NULL;
        xa_error_clear();
        xa_status st = xa_tensorfile_open(&f, path);
        if (st) {
            assert_null(f);
            assert_true(xa_error_last()->what[0] != '\0');
            crc += strstr(xa_error_last()->what, "CRC-32") != NULL;
        }
        xa_st_close(f);
    }
    assert_true(crc > 100); /* the data.pkl and every storage record are covered */
    free(bytes);
}

/* Bad offsets in the directory: the central directory offset and an entry's local header. */
static void test_bad_offsets(void **state) {
    (void)state;
    size_t n;
    unsigned char *b = (unsigned char *)xt_read_file(tb("state.bin"), &n);
    assert_non_null(b);
    size_t eocd = n - 22; /* torch writes no comment */
    assert_memory_equal(b + eocd, "PK\5\6", 4);
    const char *path = xt_tmp_path("offsets.bin");
    /* the ZIP64 end record's central directory offset (torch always writes ZIP64 records) */
    size_t loc = eocd - 20;
    assert_memory_equal(b + loc, "PK\6\7", 4);
    uint64_t e64;
    memcpy(&e64, b + loc + 8, 8);
    uint64_t cd_off;
    memcpy(&cd_off, b + e64 + 48, 8);
    uint64_t bad = (uint64_t)n * 4;
    memcpy(b + e64 + 48, &bad, 8);
    xt_write_file(path, b, n);
    expect_error(path, XA_STATUS_FORMAT, "central directory");
    memcpy(b + e64 + 48, &cd_off, 8);
    /* the first central header's local header offset points at another entry's data */
    uint32_t lho = 100;
    memcpy(b + cd_off + 42, &lho, 4);
    xt_write_file(path, b, n);
    expect_error(path, XA_STATUS_FORMAT, "local header");
    /* a locator pointing past the file */
    memcpy(b + cd_off + 42, &(uint32_t){0}, 4);
    memcpy(b + loc + 8, &bad, 8);
    xt_write_file(path, b, n);
    expect_error(path, XA_STATUS_FORMAT, "ZIP64");
    free(b);
}

/* ---- the pickle machine on hand-made programs ---------------------------------------------------- */

static xa_status run_pickle(const char *prog, size_t n, xa_pickle **out) {
    xa_pickle *p = NULL;
    xa_error_clear();
    xa_status st = xa_pickle_load(&p, prog, n, NULL, "hand.pkl");
    if (out) {
        *out = p;
    } else {
        xa_pickle_free(p);
    }
    return st;
}

#define PK(s) s, sizeof(s) - 1

static void test_pickle_refusals(void **state) {
    (void)state;
    assert_int_equal(run_pickle(PK("\x80\x02" "cos\nsystem\n" "X\x02\0\0\0ls" "\x85R."), NULL),
                     XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("GLOBAL 'os.system' is not allowed");
    xt_assert_error_mentions("hand.pkl at byte 2");
    assert_int_equal(run_pickle(PK("\x80\x02" "cbuiltins\ngetattr\n."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("builtins.getattr");
    /* a storage type called directly, a REDUCE of a non-global */
    assert_int_equal(run_pickle(PK("\x80\x02" "ctorch\nFloatStorage\n)R."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("REDUCE calls torch.FloatStorage");
    assert_int_equal(run_pickle(PK("\x80\x02)))R."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("REDUCE calls a tuple");
    /* OrderedDict with arguments; _rebuild_tensor_v2 with wrong arguments */
    assert_int_equal(run_pickle(PK("\x80\x02" "ccollections\nOrderedDict\n" "K\x01\x85R."), NULL),
                     XA_STATUS_FORMAT);
    assert_int_equal(run_pickle(PK("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n" "K\x01\x85R."), NULL),
                     XA_STATUS_FORMAT);
    xt_assert_error_mentions("1 arguments");
    /* opcodes outside the set, named */
    assert_int_equal(run_pickle(PK("\x80\x02\x81."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("NEWOBJ");
    assert_int_equal(run_pickle(PK("\x80\x02(i__main__\nX\n."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("INST");
    assert_int_equal(run_pickle(PK("\x80\x02" "C\x01x."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("SHORT_BINBYTES");
    assert_int_equal(run_pickle(PK("\x80\x09N."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("protocol 9");
    assert_int_equal(run_pickle(PK("\x80\x02\xff."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("0xff");
    /* a persistent id that is not a torch storage */
    assert_int_equal(run_pickle(PK("\x80\x02K\x01Q."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("persistent id");
    /* BUILD on something other than a dict */
    assert_int_equal(run_pickle(PK("\x80\x02]}b."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("BUILD on a list");
}

static void test_pickle_malformed(void **state) {
    (void)state;
    /* deep nesting: 300 MARKs */
    char deep[400];
    memset(deep, '(', sizeof deep);
    memcpy(deep, "\x80\x02", 2);
    assert_int_equal(run_pickle(deep, sizeof deep, NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("deeper than 256");
    /* huge lengths and indices */
    assert_int_equal(run_pickle(PK("\x80\x02X\xff\xff\xff\xff" "abc."), NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("BINUNICODE needs 4294967295 more bytes");
    assert_int_equal(run_pickle(PK("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff."), NULL), XA_STATUS_FORMAT);
    assert_int_equal(run_pickle(PK("\x80\x02Nr\xff\xff\xff\xff."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("memo index 4294967295");
    assert_int_equal(run_pickle(PK("\x80\x02h\x07."), NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("not set");
    assert_int_equal(run_pickle(PK("\x80\x02\x8a\x09\1\1\1\1\1\1\1\1\1."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("64 bits");
    /* stack discipline */
    assert_int_equal(run_pickle(PK("\x80\x02."), NULL), XA_STATUS_FORMAT);
    assert_int_equal(run_pickle(PK("\x80\x02N(s."), NULL), XA_STATUS_FORMAT); /* no popping across a MARK */
    assert_int_equal(run_pickle(PK("\x80\x02t."), NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("without a MARK");
    assert_int_equal(run_pickle(PK("\x80\x02}(K\x01u."), NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("odd number");
    assert_int_equal(run_pickle(PK("\x80\x02K\x00K\x01K\x02s."), NULL), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("SETITEM on a int");
    /* no STOP, truncated arguments */
    assert_int_equal(run_pickle(PK("\x80\x02N"), NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("without STOP");
    assert_int_equal(run_pickle(PK("\x80\x02J\1\2"), NULL), XA_STATUS_FORMAT);
    xt_assert_error_mentions("truncated");
    assert_int_equal(run_pickle(PK("\x80\x02" "ccollections\nOrdered"), NULL), XA_STATUS_FORMAT);
}

static void test_pickle_values(void **state) {
    (void)state;
    /* {'a': (1, -2, 300, -70000, 2**40, True, None, 1.5, 'xy'), 'b': [1, 1]} with memo, DUP */
    static const char prog[] = "\x80\x02}q\x00(X\x01\0\0\0a(K\x01J\xfe\xff\xff\xffM\x2c\x01"
                               "J\x90\xee\xfe\xff\x8a\x06\0\0\0\0\x00\x01\x88NG\x3f\xf8\0\0\0\0\0\0"
                               "\x8c\x02xytX\x01\0\0\0b](K\x01\x32" "eu.";
    xa_pickle *p = NULL;
    xa_status st = run_pickle(prog, sizeof prog - 1, &p);
    if (st) {
        char buf[2048];
        xa_error_format(xa_error_last(), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
    assert_int_equal(st, XA_STATUS_OK);
    const xa_pv *r = xa_pickle_root(p);
    assert_int_equal(r->kind, XA_PV_DICT);
    assert_int_equal(r->u.seq.n, 4);
    const xa_pv *t = r->u.seq.items[1];
    assert_int_equal(t->kind, XA_PV_TUPLE);
    assert_int_equal(t->u.seq.n, 9);
    int64_t want[] = {1, -2, 300, -70000, (int64_t)1 << 40};
    for (int i = 0; i < 5; i++) assert_int_equal(t->u.seq.items[i]->u.i, want[i]);
    assert_int_equal(t->u.seq.items[5]->kind, XA_PV_BOOL);
    assert_int_equal(t->u.seq.items[6]->kind, XA_PV_NONE);
    assert_true(t->u.seq.items[7]->u.f == 1.5);
    assert_string_equal(t->u.seq.items[8]->u.str.s, "xy");
    const xa_pv *l = r->u.seq.items[3];
    assert_int_equal(l->kind, XA_PV_LIST);
    assert_int_equal(l->u.seq.n, 2);
    xa_pickle_free(p);
    /* a LONG1 that is negative and wide */
    assert_int_equal(run_pickle(PK("\x80\x02\x8a\x08\0\0\0\0\0\0\0\x80."), &p), XA_STATUS_OK);
    assert_int_equal(xa_pickle_root(p)->u.i, INT64_MIN);
    xa_pickle_free(p);
}

/* ---- zip: a ZIP64 archive built by hand ---------------------------------------------------------- */

static size_t put16(unsigned char *b, size_t at, uint16_t v) {
    memcpy(b + at, &v, 2);
    return at + 2;
}
static size_t put32(unsigned char *b, size_t at, uint32_t v) {
    memcpy(b + at, &v, 4);
    return at + 4;
}
static size_t put64(unsigned char *b, size_t at, uint64_t v) {
    memcpy(b + at, &v, 8);
    return at + 8;
}

/* One stored entry "a/data/0" of 5 bytes whose central header says 0xFFFFFFFF for both sizes and
 * the local header offset, with the values in a ZIP64 extra field; ZIP64 end record + locator. */
static size_t build_zip64(unsigned char *b, uint16_t method, int crc_ok) {
    const char *name = "a/data/0", *data = "hello";
    size_t nl = strlen(name), at = 0;
    uint32_t crc = xa_crc32(0, data, 5) ^ (crc_ok ? 0u : 1u);
    at = put32(b, at, 0x04034b50);
    at = put16(b, at, 45);
    at = put16(b, at, 0);
    at = put16(b, at, method);
    at = put32(b, at, 0);
    at = put32(b, at, crc);
    at = put32(b, at, 5);
    at = put32(b, at, 5);
    at = put16(b, at, (uint16_t)nl);
    at = put16(b, at, 0);
    memcpy(b + at, name, nl);
    at += nl;
    memcpy(b + at, data, 5);
    at += 5;
    size_t cd = at;
    at = put32(b, at, 0x02014b50);
    at = put16(b, at, 45);
    at = put16(b, at, 45);
    at = put16(b, at, 0);
    at = put16(b, at, method);
    at = put32(b, at, 0);
    at = put32(b, at, crc);
    at = put32(b, at, 0xFFFFFFFFu);
    at = put32(b, at, 0xFFFFFFFFu);
    at = put16(b, at, (uint16_t)nl);
    at = put16(b, at, 28);
    at = put16(b, at, 0);
    at = put16(b, at, 0);
    at = put16(b, at, 0);
    at = put32(b, at, 0);
    at = put32(b, at, 0xFFFFFFFFu);
    memcpy(b + at, name, nl);
    at += nl;
    at = put16(b, at, 0x0001);
    at = put16(b, at, 24);
    at = put64(b, at, 5);
    at = put64(b, at, 5);
    at = put64(b, at, 0);
    size_t cd_size = at - cd, e64 = at;
    at = put32(b, at, 0x06064b50);
    at = put64(b, at, 44);
    at = put16(b, at, 45);
    at = put16(b, at, 45);
    at = put32(b, at, 0);
    at = put32(b, at, 0);
    at = put64(b, at, 1);
    at = put64(b, at, 1);
    at = put64(b, at, cd_size);
    at = put64(b, at, cd);
    at = put32(b, at, 0x07064b50);
    at = put32(b, at, 0);
    at = put64(b, at, e64);
    at = put32(b, at, 1);
    at = put32(b, at, 0x06054b50);
    at = put16(b, at, 0);
    at = put16(b, at, 0);
    at = put16(b, at, 0xFFFF);
    at = put16(b, at, 0xFFFF);
    at = put32(b, at, 0xFFFFFFFFu);
    at = put32(b, at, 0xFFFFFFFFu);
    at = put16(b, at, 0);
    return at;
}

static void test_zip64(void **state) {
    (void)state;
    unsigned char b[512];
    size_t n = build_zip64(b, 0, 1);
    xa_zip *z = NULL;
    assert_int_equal(xa_zip_open(&z, b, n, "hand.zip"), XA_STATUS_OK);
    assert_int_equal(xa_zip_count(z), 1);
    const xa_zip_entry *e = xa_zip_find(z, "a/data/0");
    assert_non_null(e);
    assert_int_equal(e->size, 5);
    assert_memory_equal(e->data, "hello", 5);
    assert_int_equal(xa_zip_check_crc(z, e), XA_STATUS_OK);
    assert_null(xa_zip_find(z, "a/data/1"));
    xa_zip_free(z);
    n = build_zip64(b, 0, 0);
    assert_int_equal(xa_zip_open(&z, b, n, "hand.zip"), XA_STATUS_OK);
    assert_int_equal(xa_zip_check_crc(z, xa_zip_at(z, 0)), XA_STATUS_FORMAT);
    xt_assert_error_mentions("CRC-32");
    xa_zip_free(z);
    n = build_zip64(b, 8, 1);
    assert_int_equal(xa_zip_open(&z, b, n, "hand.zip"), XA_STATUS_UNSUPPORTED);
    xt_assert_error_mentions("deflate");
    /* the CRC of a known string (the check value of CRC-32/ISO-HDLC) */
    assert_int_equal(xa_crc32(0, "123456789", 9), 0xCBF43926u);
}

/* ---- directories: the pick, and the same weights from .bin as from safetensors ------------------ */

static void test_pick(void **state) {
    (void)state;
    const char *dir = xt_tmp_path("pick");
    xa_file_mkdirs(dir);
    char p[XA_PATH_MAX], q[XA_PATH_MAX];
    snprintf(q, sizeof q, "%s/pytorch_adapter.bin", dir);
    xt_write_file(q, "x", 1);
    assert_int_equal(xa_tensorfile_pick(p, sizeof p, dir, "adapter.safetensors", "pytorch_adapter.bin", NULL),
                     XA_STATUS_OK);
    assert_string_equal(p, q);
    snprintf(q, sizeof q, "%s/adapter.safetensors", dir);
    xt_write_file(q, "x", 1);
    assert_int_equal(xa_tensorfile_pick(p, sizeof p, dir, "adapter.safetensors", "pytorch_adapter.bin", NULL),
                     XA_STATUS_OK);
    assert_string_equal(p, q); /* safetensors first, as Hugging Face */
    assert_int_equal(xa_tensorfile_pick(p, sizeof p, dir, "model.safetensors", "pytorch_model.bin", "a hint"),
                     XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("neither model.safetensors nor pytorch_model.bin");
    xt_assert_error_mentions("a hint");
}

static void test_base_from_bin(void **state) {
    (void)state;
    xa_encoder a, b;
    assert_int_equal(xa_encoder_load(&a, NULL, tb("tiny/base"), 0), XA_STATUS_OK);
    assert_int_equal(xa_encoder_load(&b, NULL, tb("tiny/base_bin"), 0), XA_STATUS_OK);
    assert_int_equal(a.n_params, b.n_params);
    assert_memory_equal(a.params, b.params, a.n_params * sizeof(float));
    /* the TensorFlow-era LayerNorm names (gamma / beta) of older checkpoints */
    xa_st_file *f = NULL;
    assert_int_equal(xa_st_open(&f, tb("tiny/base/model.safetensors")), XA_STATUS_OK);
    size_t n = xa_st_count(f);
    xa_st_entry *e = xt_alloc(n * sizeof *e);
    char(*names)[256] = xt_alloc(n * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const xa_st_tensor *t = xa_st_at(f, i);
        snprintf(names[i], sizeof names[i], "%s", t->name);
        size_t len = strlen(names[i]);
        if (strstr(names[i], "LayerNorm.weight")) snprintf(names[i] + len - 6, 7, "gamma");
        if (strstr(names[i], "LayerNorm.bias")) snprintf(names[i] + len - 4, 5, "beta");
        e[i] = (xa_st_entry){.name = names[i], .dtype = t->dtype, .n_dims = t->n_dims, .raw = t->data};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    }
    const char *dir = xt_tmp_path("gamma");
    char p[XA_PATH_MAX];
    xa_file_mkdirs(dir);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    assert_int_equal(xa_st_write(p, e, n, NULL, 0), XA_STATUS_OK);
    xa_st_close(f);
    size_t clen;
    char *cfg = xt_read_file(tb("tiny/base/config.json"), &clen);
    snprintf(p, sizeof p, "%s/config.json", dir);
    xt_write_file(p, cfg, clen);
    free(cfg);
    xa_encoder c;
    assert_int_equal(xa_encoder_load(&c, NULL, dir, 0), XA_STATUS_OK);
    assert_memory_equal(a.params, c.params, a.n_params * sizeof(float));
    xa_encoder_free(&c);
    /* neither file: both named */
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    remove(p);
    assert_int_equal(xa_encoder_load(&c, NULL, dir, 0), XA_STATUS_NOT_FOUND);
    xt_assert_error_mentions("pytorch_model.bin");
    xa_encoder_free(&a);
    xa_encoder_free(&b);
}

static void test_adapter_head_from_bin(void **state) {
    (void)state;
    xa_encoder enc;
    assert_int_equal(xa_encoder_load(&enc, NULL, tb("tiny/base"), 0), XA_STATUS_OK);
    xa_composer *c1 = NULL, *c2 = NULL;
    assert_int_equal(xa_composer_init(&c1, &enc.cfg), XA_STATUS_OK);
    assert_int_equal(xa_composer_init(&c2, &enc.cfg), XA_STATUS_OK);
    xa_adapter *a = NULL, *b = NULL;
    assert_int_equal(xa_hub_load_adapter(c1, tb("tiny/adapter"), NULL, NULL, 0, 0, &a), XA_STATUS_OK);
    assert_int_equal(xa_hub_load_adapter(c2, tb("tiny/adapter_bin"), NULL, NULL, 0, 0, &b), XA_STATUS_OK);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    xa_composer_free(c1);
    xa_composer_free(c2);
    xa_head h1, h2;
    assert_int_equal(xa_hub_load_head(tb("tiny/head"), &h1, 1, 8, 0, NULL), XA_STATUS_OK);
    assert_int_equal(xa_hub_load_head(tb("tiny/head_bin"), &h2, 1, 8, 0, NULL), XA_STATUS_OK);
    for (int i = 0; i < XA_HEAD_N_TENSORS; i++) {
        assert_int_equal(h1.numel[i], h2.numel[i]);
        if (h1.numel[i]) assert_memory_equal(h1.t[i], h2.t[i], h1.numel[i] * sizeof(float));
    }
    xa_head_free(&h1);
    xa_head_free(&h2);
    xa_encoder_free(&enc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_zip_golden, xt_teardown),
        cmocka_unit_test_teardown(test_protocol4_golden, xt_teardown),
        cmocka_unit_test_teardown(test_legacy_golden, xt_teardown),
        cmocka_unit_test_teardown(test_shared_storage, xt_teardown),
        cmocka_unit_test_teardown(test_sniff, xt_teardown),
        cmocka_unit_test_teardown(test_hostile_files, xt_teardown),
        cmocka_unit_test_teardown(test_truncated, xt_teardown),
        cmocka_unit_test_teardown(test_flipped_bytes, xt_teardown),
        cmocka_unit_test_teardown(test_bad_offsets, xt_teardown),
        cmocka_unit_test_teardown(test_pickle_refusals, xt_teardown),
        cmocka_unit_test_teardown(test_pickle_malformed, xt_teardown),
        cmocka_unit_test_teardown(test_pickle_values, xt_teardown),
        cmocka_unit_test_teardown(test_zip64, xt_teardown),
        cmocka_unit_test_teardown(test_pick, xt_teardown),
        cmocka_unit_test_teardown(test_base_from_bin, xt_teardown),
        cmocka_unit_test_teardown(test_adapter_head_from_bin, xt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
