/* core/utf8: strict UTF-8 checks (RFC 3629) for text that ends up in JSON or in saved configs. */
#include "core/core.h"

size_t xa_utf8_char(const char *s, size_t n) {
    if (!n) return 0;
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlong 3-byte forms */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* no overlong 4-byte forms */
        else if (c == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        return 0;                      /* a continuation byte, C0/C1 or F5..FF */
    }
    if (n < len || u[1] < lo || u[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (u[i] < 0x80 || u[i] > 0xBF) return 0;
    return len;
}

int xa_utf8_valid(const char *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        size_t k = xa_utf8_char(s + i, n - i);
        if (!k) {
            if (bad) *bad = i;
            return 0;
        }
        i += k;
    }
    return 1;
}
