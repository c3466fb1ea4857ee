/* tests/fuzz: scratch files and fixtures for the harnesses (fuzz.h). */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

#ifndef XA_FUZZ_DATA
#error "XA_FUZZ_DATA (tests/data) must be defined by the build"
#endif

static char dir[512];

/* At exit: remove the scratch files and the directory (the harness writes nothing else there). */
static void remove_dir(void) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

const char *xa_fuzz_dir(void) {
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/xa-fuzz-%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
        if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0) {
            fprintf(stderr, "fuzz: cannot create %s\n", dir);
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

const char *xa_fuzz_file(const char *name, const uint8_t *data, size_t size) {
    static char paths[4][768];
    static int slot;
    char *p = paths[slot++ & 3];
    snprintf(p, sizeof paths[0], "%s/%s", xa_fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", p);
        abort();
    }
    return p;
}

const char *xa_fuzz_data(const char *rel) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", XA_FUZZ_DATA, rel);
    return p;
}

void xa_fuzz_quiet(void) {
    static int done;
    if (!done) {
        xa_log_set_level(XA_LOG_LEVEL_SILENT);
        done = 1;
    }
}

void xa_fuzz_check_error(int status) {
    if (status == XA_STATUS_OK) return;
    const xa_error *e = xa_error_last();
    if (e->status == XA_STATUS_OK || !e->what[0]) {
        fprintf(stderr, "fuzz: status %d without an error message\n", status);
        abort();
    }
    xa_error_clear();
}
