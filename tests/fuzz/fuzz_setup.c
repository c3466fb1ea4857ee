/* Fuzz setup strings (--setup, eval setups: compose/setup.c): parse, check, format, re-parse. */
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    xa_setup *s = NULL;
    xa_status st = xa_setup_parse(&s, text, "--setup");
    xa_fuzz_check_error(st);
    free(text);
    if (st) return 0;
    int n = xa_setup_format(s, NULL, 0);
    char *out = malloc((size_t)n + 1);
    if (out) {
        xa_setup_format(s, out, (size_t)n + 1);
        xa_setup *back = NULL;
        if (xa_setup_parse(&back, out, "format") != XA_STATUS_OK) abort();
        int m = xa_setup_format(back, NULL, 0);
        if (m != n) abort(); /* formatting is canonical */
        xa_setup_free(back);
        free(out);
    }
    (void)xa_setup_first(s);
    (void)xa_setup_last(s);
    xa_setup_free(s);
    return 0;
}
