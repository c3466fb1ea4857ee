/* eval/svg: the pieces of hand-written SVG that the eval module's charts share (private to eval/):
 * the transfer table's bar chart (table.c) and the loss curves (plot.c). */
#ifndef XA_EVAL_SVG_H
#define XA_EVAL_SVG_H

#include <stdio.h>

#define XA_SVG_N_COLORS 16

/* Okabe & Ito's colour-blind-safe palette without black (kept for axes), then Paul Tol's "muted"
 * scheme: series colours in order. */
extern const char *const xa_svg_palette[XA_SVG_N_COLORS];

/* Text as XML character data or attribute value: the five entities escaped, the C0 controls that
 * XML 1.0 forbids dropped. */
void xa_svg_text(FILE *out, const char *s);
/* Characters (not bytes) of a UTF-8 string, for width estimates. */
int xa_svg_utf8_len(const char *s);
/* The opening of a standalone SVG 1.1 document of width x height px: the <svg> element (sans-serif,
 * 12 px), its <title>, a white background and the title text centred at the top in 16 px bold. */
void xa_svg_begin(FILE *out, double width, double height, const char *title);

#endif
