/* Fuzz YAML recipes (config/config.c) with `extends` and --set overrides. The input is up to three
 * parts separated by a line "#%%": the recipe (recipe.yaml), the file it may extend (base.yaml, in
 * the same directory), and --set overrides, one "a.b=value" a line. A loaded recipe is written
 * back (xa_recipe_write) and must load again. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz.h"

#define SEP "\n#%%\n"

static xa_recipe r, back; /* large: keep them off the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *parts[3] = {text, "", ""};
    for (int i = 1; i < 3; i++) {
        char *cut = strstr(parts[i - 1], SEP);
        if (!cut) break;
        *cut = '\0';
        parts[i] = cut + strlen(SEP);
    }
    /* Parts cut at NUL bytes too: write what the string holds. */
    xa_fuzz_file("base.yaml", (const uint8_t *)parts[1], strlen(parts[1]));
    const char *path = xa_fuzz_file("recipe.yaml", (const uint8_t *)parts[0], strlen(parts[0]));
    const char *sets[8];
    int n_sets = 0;
    for (char *line = parts[2]; *line && n_sets < 8;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        sets[n_sets++] = line;
        if (!nl) break;
        line = nl + 1;
    }
    xa_status st = xa_recipe_load(&r, path, sets, n_sets);
    xa_fuzz_check_error(st);
    if (!st) {
        char out[1024];
        snprintf(out, sizeof out, "%s/resolved.yaml", xa_fuzz_dir());
        st = xa_recipe_write(&r, out);
        xa_fuzz_check_error(st);
        /* The resolved recipe must read back (it names every key with its value). */
        if (!st && xa_recipe_load(&back, out, NULL, 0) != XA_STATUS_OK) abort();
    }
    free(text);
    return 0;
}
