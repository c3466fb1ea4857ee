/* eval/text: the text escapes and number formats that every eval renderer shares (private to
 * eval/: table.c and report.c). Markdown cells, CSV fields (RFC 4180), XML character data, values
 * x 100, UTF-8 widths and a UTF-8-safe bounded copy. */
#ifndef XA_EVAL_TEXT_H
#define XA_EVAL_TEXT_H

#include <stdio.h>
#include <string.h>

#include "eval/svg.h"

/* Copy src into dst[cap], truncated at a UTF-8 character boundary so that a cut name stays valid
 * UTF-8 (jansson rejects invalid strings, browsers show replacement glyphs). */
static inline void copy_name(char *dst, size_t cap, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--; /* src[n] continues a char */
    }
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* x * 100 with one decimal, never "-0.0". */
static inline void fmt_pct(char *buf, size_t cap, double x) {
    snprintf(buf, cap, "%.1f", 100.0 * x);
    if (strcmp(buf, "-0.0") == 0) snprintf(buf, cap, "0.0");
}

/* A name in a Markdown cell or heading: "|" would split the cell, a line break the row. */
static inline void md_text(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') {
            fputs("\\|", out);
        } else if (*s == '\n' || *s == '\r') {
            fputc(' ', out);
        } else {
            fputc(*s, out);
        }
    }
}

/* One field, quoted (RFC 4180) when it holds a comma, a quote or a line break. */
static inline void csv_field(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* XML character data (the five entities, XML 1.0's forbidden C0 controls dropped) and the
 * characters of a UTF-8 string: the shared SVG helpers (eval/svg.h), under the short names. */
#define xml_text xa_svg_text
#define utf8_len xa_svg_utf8_len

#endif
