/* tests/fuzz: shared pieces of the libFuzzer harnesses (see run.sh and the README's "Fuzzing").
 * Every harness defines LLVMFuzzerTestOneInput; the same source builds two ways:
 *   - with clang -fsanitize=fuzzer,address,undefined (cmake -DXA_FUZZ=ON) as a fuzzer;
 *   - with any compiler, linked with replay.c, as a plain program that runs the harness once on
 *     every file it is given: the committed seeds and crash inputs (tests/fuzz/crashes/NAME/) are
 *     replayed that way by ctest in every build, so each crash found stays a regression test. */
#ifndef XA_FUZZ_H
#define XA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write data to this process's scratch file `name` (under $TMPDIR or /tmp, in a directory of its
 * own) and return its path (a static buffer per name slot, valid until the next call with the same
 * slot). Aborts on an I/O failure of the scratch area: that is the harness's fault, not a finding. */
const char *xa_fuzz_file(const char *name, const uint8_t *data, size_t size);
/* The scratch directory of this process (created on first use). */
const char *xa_fuzz_dir(void);
/* A committed fixture: XA_FUZZ_DATA/<rel> (XA_FUZZ_DATA is tests/data, set at compile time). */
const char *xa_fuzz_data(const char *rel);
/* Silence the library's log once (messages on stderr slow fuzzing and hide the report). */
void xa_fuzz_quiet(void);
/* Check a failing call left a message: every error path must describe itself. */
void xa_fuzz_check_error(int status);

#endif
