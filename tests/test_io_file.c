/* Tests of framework/io/file: capped whole-file reads and the atomic writers (the target is
 * replaced whole or left untouched, and the temporary file never stays behind). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "io/file.h"

static int path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static const char *tmp_name_of(const char *path) {
    static char buf[4200];
    if (snprintf(buf, sizeof buf, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof buf) {
        fail_msg("path too long");
    }
    return buf;
}

static void assert_file_is(const char *path, const char *content) {
    size_t n = 0;
    char *got = xt_read_file(path, &n);
    assert_non_null(got);
    assert_int_equal(n, strlen(content));
    assert_memory_equal(got, content, n);
    free(got);
}

/* Each test gets its own target path, created fresh with "old content". */
static int setup_target(void **state) {
    static int counter;
    static char path[4096];
    if (snprintf(path, sizeof path, "%s/target-%d.txt", xt_tmp_dir(), counter++) >=
        (int)sizeof path) {
        return -1;
    }
    xt_write_file(path, "old content", 11);
    *state = path;
    return 0;
}

static void test_file_read_whole_file(void **state) {
    const char *path = *state;
    char *data = NULL;
    size_t n = 0;
    assert_int_equal(xa_file_read(&data, &n, path, 0), XA_STATUS_OK);
    assert_int_equal(n, 11);
    assert_string_equal(data, "old content"); /* NUL-terminated */
    free(data);
    /* out_size may be NULL; an empty file gives an empty string. */
    const char *empty = xt_tmp_path("empty.txt");
    xt_write_file(empty, "", 0);
    assert_int_equal(xa_file_read(&data, NULL, empty, 0), XA_STATUS_OK);
    assert_string_equal(data, "");
    free(data);
}

static void test_file_read_missing(void **state) {
    (void)state;
    char *data = (char *)1;
    size_t n = 7;
    const char *path = xt_tmp_path("does-not-exist.json");
    assert_int_equal(xa_file_read(&data, &n, path, 0), XA_STATUS_NOT_FOUND);
    assert_null(data);
    assert_int_equal(n, 0);
    xt_assert_error_mentions("does-not-exist.json");
    xt_assert_error_mentions("No such file");
}

static void test_file_read_size_cap(void **state) {
    const char *path = *state;
    char *data = NULL;
    assert_int_equal(xa_file_read(&data, NULL, path, 10), XA_STATUS_FORMAT);
    assert_null(data);
    xt_assert_error_mentions("limit of 10 bytes");
    assert_int_equal(xa_file_read(&data, NULL, path, 11), XA_STATUS_OK);
    free(data);
}

static void test_file_read_directory(void **state) {
    (void)state;
    char *data = NULL;
    assert_int_equal(xa_file_read(&data, NULL, xt_tmp_dir(), 0), XA_STATUS_IO);
    xt_assert_error_mentions("directory");
}

static void test_file_write_atomic_replaces(void **state) {
    const char *path = *state;
    assert_int_equal(xa_file_write_atomic(path, "new", 3), XA_STATUS_OK);
    assert_file_is(path, "new");
    assert_false(path_exists(tmp_name_of(path)));
    /* A fresh path is created; an empty write makes an empty file. */
    const char *fresh = xt_tmp_path("fresh.bin");
    assert_int_equal(xa_file_write_atomic(fresh, NULL, 0), XA_STATUS_OK);
    assert_file_is(fresh, "");
}

static void test_file_write_missing_directory(void **state) {
    (void)state;
    const char *path = xt_tmp_path("no-such-dir/out.json");
    assert_int_equal(xa_file_write_atomic(path, "x", 1), XA_STATUS_IO);
    xt_assert_error_mentions("no-such-dir/out.json");
    xt_assert_error_mentions("No such file or directory");
    assert_false(path_exists(path));
}

static void test_file_writer_streams_and_commits(void **state) {
    const char *path = *state;
    xa_file_writer *w = NULL;
    assert_int_equal(xa_file_writer_open(&w, path), XA_STATUS_OK);
    assert_string_equal(xa_file_writer_path(w), path);
    /* While the writer is open the target still holds the old content. */
    assert_true(path_exists(tmp_name_of(path)));
    assert_file_is(path, "old content");
    assert_int_equal(xa_file_writer_write(w, "line 1\n", 7), XA_STATUS_OK);
    fprintf(xa_file_writer_stream(w), "line %d\n", 2);
    assert_int_equal(xa_file_writer_commit(w), XA_STATUS_OK);
    assert_file_is(path, "line 1\nline 2\n");
    assert_false(path_exists(tmp_name_of(path)));
}

static void test_file_writer_abort_keeps_target(void **state) {
    const char *path = *state;
    xa_file_writer *w = NULL;
    assert_int_equal(xa_file_writer_open(&w, path), XA_STATUS_OK);
    assert_int_equal(xa_file_writer_write(w, "half-written", 12), XA_STATUS_OK);
    xa_file_writer_abort(w);
    assert_file_is(path, "old content");
    assert_false(path_exists(tmp_name_of(path)));
    xa_file_writer_abort(NULL); /* accepted */
}

/* A rename that fails (the target is a non-empty directory) must remove the temporary file and
 * leave the target as it was. Running as root rules out read-only directories for this test. */
static void test_file_writer_failed_rename_cleans_up(void **state) {
    (void)state;
    char dir[4200], inside[4300];
    if (snprintf(dir, sizeof dir, "%s/a-directory", xt_tmp_dir()) >= (int)sizeof dir ||
        snprintf(inside, sizeof inside, "%s/keep.txt", dir) >= (int)sizeof inside) {
        fail_msg("path too long");
    }
    mkdir(dir, 0777);
    xt_write_file(inside, "kept", 4);
    assert_int_equal(xa_file_write_atomic(dir, "data", 4), XA_STATUS_IO);
    xt_assert_error_mentions("a-directory");
    xt_assert_error_mentions("rename");
    assert_false(path_exists(tmp_name_of(dir)));
    assert_file_is(inside, "kept");
}

static void test_file_paths_and_mkdirs(void **state) {
    (void)state;
    char path[XA_PATH_MAX];
    assert_int_equal(xa_path_join(path, sizeof path, "a/b", "c.json"), XA_STATUS_OK);
    assert_string_equal(path, "a/b/c.json");
    char small[8];
    assert_int_equal(xa_path_join(small, sizeof small, "dir", "long-name"), XA_STATUS_USAGE);
    xt_assert_error_mentions("long-name");

    char deep[XA_PATH_MAX];
    snprintf(deep, sizeof deep, "%s/x/y/z", xt_tmp_dir());
    assert_false(xa_file_is_dir(deep));
    assert_int_equal(xa_file_mkdirs(deep), XA_STATUS_OK);
    assert_true(xa_file_is_dir(deep));
    assert_int_equal(xa_file_mkdirs(deep), XA_STATUS_OK); /* existing: fine */
    /* A regular file in the way is an error naming it. */
    char file[XA_PATH_MAX], below[XA_PATH_MAX + 8];
    snprintf(file, sizeof file, "%s/plain", xt_tmp_dir());
    xt_write_file(file, "x", 1);
    assert_int_not_equal(xa_file_mkdirs(file), XA_STATUS_OK);
    xt_assert_error_mentions("plain");
    snprintf(below, sizeof below, "%s/sub", file);
    assert_int_equal(xa_file_mkdirs(below), XA_STATUS_IO);
    xt_assert_error_mentions("plain");
    assert_int_equal(xa_file_mkdirs(""), XA_STATUS_USAGE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_file_read_whole_file, setup_target),
        cmocka_unit_test(test_file_read_missing),
        cmocka_unit_test_setup(test_file_read_size_cap, setup_target),
        cmocka_unit_test(test_file_read_directory),
        cmocka_unit_test_setup(test_file_write_atomic_replaces, setup_target),
        cmocka_unit_test(test_file_write_missing_directory),
        cmocka_unit_test_setup(test_file_writer_streams_and_commits, setup_target),
        cmocka_unit_test_setup(test_file_writer_abort_keeps_target, setup_target),
        cmocka_unit_test(test_file_writer_failed_rename_cleans_up),
        cmocka_unit_test(test_file_paths_and_mkdirs),
    };
    return cmocka_run_group_tests_name("io_file", tests, NULL, NULL);
}
