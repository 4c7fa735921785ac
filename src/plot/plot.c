/* The SVG page, its texts and their boxes, colours (see tlens/plot.h). */
#include "tlens/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tl_plot_escape(tl_buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '<') tl_buf_printf(b, "&lt;");
    else if (c == '>') tl_buf_printf(b, "&gt;");
    else if (c == '&') tl_buf_printf(b, "&amp;");
    else if (c == '"') tl_buf_printf(b, "&quot;");
    else if (c == '\'') tl_buf_printf(b, "&apos;");
    else if (c < 0x20 && c != '\t' && c != '\n') continue; /* not a character of XML 1.0 */
    else tl_buf_append(b, s, 1);
  }
}

/* UTF-8 characters: every byte that does not continue a sequence */
static int utf8_chars(const char *s) {
  int n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

double tl_plot_text_width(const char *s, double size) { return TL_PLOT_EM * size * utf8_chars(s); }

tl_plot_box tl_plot_text_box(double x, double y, double size, tl_plot_anchor anchor, const char *s) {
  double w = tl_plot_text_width(s, size);
  double x0 = anchor == TL_PLOT_START ? x : anchor == TL_PLOT_MIDDLE ? x - w / 2 : x - w;
  /* ascenders reach about 0.8 of the size above the baseline, descenders 0.25 below */
  return (tl_plot_box){x0, y - 0.8 * size, x0 + w, y + 0.25 * size};
}

static bool boxes_meet(tl_plot_box a, tl_plot_box b) {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

bool tl_plot_free_at(const tl_plot *p, tl_plot_box b, double pad) {
  b.x0 -= pad;
  b.y0 -= pad;
  b.x1 += pad;
  b.y1 += pad;
  for (int i = 0; i < p->nboxes; i++)
    if (boxes_meet(b, p->boxes[i])) return false;
  return true;
}

int tl_plot_overlap(const tl_plot *p, int *i, int *j) {
  for (int a = 0; a < p->nboxes; a++)
    for (int b = a + 1; b < p->nboxes; b++)
      if (boxes_meet(p->boxes[a], p->boxes[b])) {
        *i = a;
        *j = b;
        return 1;
      }
  return 0;
}

void tl_plot_text(tl_plot *p, double x, double y, double size, tl_plot_anchor anchor, const char *cls,
                  const char *fill, bool halo, const char *s) {
  static const char *anchors[] = {"start", "middle", "end"};
  tl_buf_printf(&p->svg, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%g\"", x, y, size);
  if (anchor != TL_PLOT_START) tl_buf_printf(&p->svg, " text-anchor=\"%s\"", anchors[anchor]);
  if (cls) tl_buf_printf(&p->svg, " class=\"%s\"", cls);
  if (fill) tl_buf_printf(&p->svg, " fill=\"%s\"", fill);
  if (halo) tl_buf_printf(&p->svg, " stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"");
  tl_buf_printf(&p->svg, ">");
  tl_plot_escape(&p->svg, s);
  tl_buf_printf(&p->svg, "</text>\n");
  if (p->nboxes == p->capboxes) {
    p->capboxes = p->capboxes ? 2 * p->capboxes : 64;
    p->boxes = tl_realloc(p->boxes, (size_t)p->capboxes * sizeof *p->boxes);
  }
  p->boxes[p->nboxes++] = tl_plot_text_box(x, y, size, anchor, s);
}

void tl_plot_begin(tl_plot *p, double width, double height, const char *title) {
  memset(p, 0, sizeof *p);
  p->width = width;
  p->height = height;
  tl_buf_printf(&p->svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  tl_buf_printf(&p->svg,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
                "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\">\n",
                width, height, width, height);
  tl_buf_printf(&p->svg, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  if (!title) return;
  /* a long title (model and corpus paths) first gets smaller, then shorter */
  double size = 16, room = width - 20;
  while (size > 12 && tl_plot_text_width(title, size) > room) size -= 1;
  char *t = tl_strdup(title);
  int keep = (int)(room / (TL_PLOT_EM * size)); /* characters that fit */
  if (utf8_chars(t) > keep && keep > 3) {
    /* cut at a character boundary, leaving room for "..." */
    int chars = 0;
    size_t k = 0;
    for (; t[k]; k++)
      if (((unsigned char)t[k] & 0xC0) != 0x80 && ++chars > keep - 3) break;
    strcpy(t + k, "...");
  }
  tl_plot_text(p, width / 2, 24, size, TL_PLOT_MIDDLE, "title", NULL, false, t);
  free(t);
}

int tl_plot_write(tl_plot *p, const char *path) {
  tl_buf_printf(&p->svg, "</svg>\n");
  return tl_write_file_atomic(path, p->svg.data, p->svg.len);
}

void tl_plot_free(tl_plot *p) {
  tl_buf_free(&p->svg);
  free(p->boxes);
  memset(p, 0, sizeof *p);
}

/* ---- colours ---- */
const char *tl_plot_color(int i) {
  /* Tableau's ten without its red, which marks the logit lens; then grey */
  static const char *c[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                            "#e377c2", "#17becf", "#bcbd22", "#393b79", "#7f7f7f"};
  return c[(i % 10 + 10) % 10];
}

void tl_plot_ramp(double t, char out[8]) {
  /* viridis at t = 0, 0.25, 0.5, 0.75, 1, interpolated linearly in sRGB */
  static const unsigned char anchor[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  double f = t * 4;
  int k = f >= 4 ? 3 : (int)f;
  f -= k;
  int rgb[3];
  for (int c = 0; c < 3; c++) rgb[c] = (int)lround(anchor[k][c] + (anchor[k + 1][c] - anchor[k][c]) * f);
  snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}
