/* Fuzz the tokenizer files of a base (tokenizer/tok.c): the input is read as a tokenizer.json and
 * as a vocab.txt; whatever loads encodes a short multilingual text. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tokenizer/tok.h"

static void use(const char *path) {
    xa_tok *t = NULL;
    int st = xa_tok_load(&t, path);
    xa_fuzz_check_error(st);
    if (st) return;
    static const char text[] = "Hello, [MASK] W\xc3\xb6rld! \xe4\xb8\xad\xe6\x96\x87 caf\x65\xcc\x81";
    xa_tok_input in;
    st = xa_tok_encode_input(t, text, strlen(text), "b", 1, 8, &in);
    xa_fuzz_check_error(st);
    for (size_t i = 0; !st && i < in.n; i++)
        if (in.ids[i] < -1 || in.ids[i] >= xa_tok_vocab_size(t)) abort();
    xa_tok_input_free(&in);
    xa_tok_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xa_fuzz_quiet();
    use(xa_fuzz_file("tokenizer.json", data, size));
    use(xa_fuzz_file("vocab.txt", data, size));
    return 0;
}
