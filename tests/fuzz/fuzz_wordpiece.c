/* Fuzz the WordPiece tokenizer (tokenizer/wordpiece.c) on arbitrary bytes: encode in the
 * BertTokenizer and tokenizer.json modes, lowercased and cased, and check that every id is in the
 * vocabulary and every span lies inside the text, in order; then the basic tokenizer alone. */
#include <stdlib.h>

#include "fuzz.h"
#include "tokenizer/wordpiece.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static xa_wordpiece *wp[4];
    xa_fuzz_quiet();
    for (int m = 0; m < 4 && !wp[m]; m++) {
        xa_wordpiece_opts o = xa_wordpiece_opts_default();
        o.lowercase = m & 1;
        o.fast = m >> 1;
        if (xa_wordpiece_load(&wp[m], xa_fuzz_data("wordpiece/vocab.txt"), &o) != 0) abort();
    }
    const xa_wordpiece *w = wp[size ? data[0] & 3 : 0];
    int32_t *ids = NULL;
    xa_spm_span *sp = NULL;
    size_t n = 0;
    int st = xa_wordpiece_encode(w, (const char *)data, size, &ids, &sp, &n);
    xa_fuzz_check_error(st);
    for (size_t i = 0; !st && i < n; i++) {
        if (ids[i] < 0 || ids[i] >= xa_wordpiece_vocab_size(w)) abort();
        if (sp[i].begin > sp[i].end || sp[i].end > size || (i && sp[i].begin < sp[i - 1].begin)) abort();
    }
    free(ids);
    free(sp);
    char *basic = NULL;
    xa_fuzz_check_error(xa_wordpiece_basic(w, (const char *)data, size, &basic));
    free(basic);
    return 0;
}
