/* eval/svg: the SVG pieces shared by the eval module's charts (svg.h).
 * Colours follow Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2008) for the
 * first seven series and Paul Tol's "muted" scheme for the next nine; no palette keeps 16 colours
 * apart for every reader. Does not: measure text (charts estimate widths from character counts). */
#include "eval/svg.h"

#include <math.h>

const char *const xa_svg_palette[XA_SVG_N_COLORS] = {
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#CC6677",
    "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
};

void xa_svg_text(FILE *out, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if (ch >= 0x20 || ch == '\t' || ch == '\n') fputc(ch, out);
        }
    }
}

int xa_svg_utf8_len(const char *s) {
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void xa_svg_begin(FILE *out, double width, double height, const char *title) {
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n",
            ceil(width), ceil(height), ceil(width), ceil(height));
    fputs("<title>", out);
    xa_svg_text(out, title);
    fputs("</title>\n", out);
    fputs("<rect class=\"background\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", out);
    fprintf(out, "<text class=\"title\" x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" "
                 "font-weight=\"bold\">", width / 2.0);
    xa_svg_text(out, title);
    fputs("</text>\n", out);
}
