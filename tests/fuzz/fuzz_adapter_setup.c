/* Fuzz adapter_setup.json (hub/hub.c): read, then format the setup it gives and parse that text
 * (names in the JSON file may hold characters the text grammar does not take: no round-trip
 * property, only no crash and an error message on failure). */
#include <stdlib.h>
#include <string.h>

#include "compose/compose.h"
#include "fuzz.h"
#include "hub/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    const char *path = xa_fuzz_file("adapter_setup.json", data, size);
    xa_setup *s = NULL;
    char head[128];
    xa_status st = xa_hub_load_setup(path, &s, head, sizeof head);
    xa_fuzz_check_error(st);
    if (st || !s) return 0;
    int n = xa_setup_format(s, NULL, 0);
    char *text = malloc((size_t)n + 1);
    if (text) {
        xa_setup_format(s, text, (size_t)n + 1);
        xa_setup *back = NULL;
        xa_fuzz_check_error(xa_setup_parse(&back, text, "format"));
        xa_setup_free(back);
        free(text);
    }
    xa_setup_free(s);
    return 0;
}
