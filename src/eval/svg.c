/* The per-layer chart users look at first: two panels (KL to the model's final
 * distribution, and cross-entropy to the next token) with one line per lens.
 * Plain SVG 1.1, no scripts, readable in any browser. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/eval.h"

static void xml_text(tl_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '<') tl_buf_printf(b, "&lt;");
    else if (*s == '>') tl_buf_printf(b, "&gt;");
    else if (*s == '&') tl_buf_printf(b, "&amp;");
    else if (*s == '"') tl_buf_printf(b, "&quot;");
    else tl_buf_append(b, s, 1);
  }
}

/* A "nice" axis top: 1, 2, 2.5 or 5 times a power of ten, at or above v. */
static double nice_ceil(double v) {
  if (!(v > 0)) return 1;
  double p = pow(10, floor(log10(v)));
  const double steps[] = {1, 2, 2.5, 5, 10};
  for (int i = 0; i < 5; i++)
    if (steps[i] * p >= v * (1 - 1e-12)) return steps[i] * p;
  return 10 * p;
}

static void panel(tl_buf *b, double x0, double y0, double w, double h, const char *label, int n,
                  const tl_svg_series *s, int ns, double baseline, const char *unit) {
  double top = 0;
  for (int k = 0; k < ns; k++)
    for (int i = 0; i < n; i++)
      if (isfinite(s[k].v[i]) && s[k].v[i] > top) top = s[k].v[i];
  if (isfinite(baseline) && baseline > top) top = baseline;
  top = nice_ceil(top);
  tl_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", x0, y0 - 10);
  xml_text(b, label);
  tl_buf_printf(b, " (%s)</text>\n", unit);
  /* grid and y ticks */
  for (int t = 0; t <= 5; t++) {
    double yv = top * t / 5, y = y0 + h - h * t / 5;
    tl_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, y, x0 + w, y);
    tl_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3g</text>\n", x0 - 6, y + 4, yv);
  }
  tl_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", x0, y0, w, h);
  double dx = n > 1 ? w / (n - 1) : 0;
  for (int i = 0; i < n; i++) {
    double x = n > 1 ? x0 + dx * i : x0 + w / 2;
    tl_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%d</text>\n", x, y0 + h + 16, i);
  }
  tl_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">layer</text>\n", x0 + w / 2, y0 + h + 34);
  if (isfinite(baseline)) {
    double y = y0 + h - h * baseline / top;
    tl_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n", x0, y, x0 + w, y);
  }
  for (int k = 0; k < ns; k++) {
    tl_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", s[k].color);
    for (int i = 0; i < n; i++)
      if (isfinite(s[k].v[i]))
        tl_buf_printf(b, "%.1f,%.1f ", n > 1 ? x0 + dx * i : x0 + w / 2, y0 + h - h * s[k].v[i] / top);
    tl_buf_printf(b, "\"/>\n");
    for (int i = 0; i < n; i++) {
      if (!isfinite(s[k].v[i])) continue;
      double x = n > 1 ? x0 + dx * i : x0 + w / 2, y = y0 + h - h * s[k].v[i] / top;
      tl_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", x, y, s[k].color);
      xml_text(b, s[k].name);
      tl_buf_printf(b, ", layer %d: %.4f</title></circle>\n", i, s[k].v[i]);
    }
    /* legend */
    double ly = y0 + 16 + 18 * k;
    tl_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                  x0 + w - 130, ly, x0 + w - 108, ly, s[k].color);
    tl_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", x0 + w - 102, ly + 4);
    xml_text(b, s[k].name);
    tl_buf_printf(b, "</text>\n");
  }
  if (isfinite(baseline)) {
    /* the baseline's label at the left, under its line (the lens curves lie above
     * it), over the curves with a white halo so that crossing lines do not hide it */
    double y = y0 + h - h * baseline / top, ty = y + 14 <= y0 + h - 3 ? y + 14 : y - 5;
    tl_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\" stroke=\"white\" stroke-width=\"3\" "
                  "paint-order=\"stroke\">model output %.3g</text>\n", x0 + 6, ty, baseline);
  }
}

int tl_svg_layers(const char *path, const char *title, int n, const tl_svg_series *kl, int nkl,
                  const tl_svg_series *ce, int nce, double baseline_ce, const char *unit) {
  if (n < 1) return tl_fail("%s: nothing to plot", path);
  tl_buf b = {0};
  double W = 960, H = 420;
  tl_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  tl_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                    "font-family=\"Helvetica, Arial, sans-serif\">\n", W, H, W, H);
  tl_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  tl_buf_printf(&b, "<text x=\"%.1f\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">", W / 2);
  xml_text(&b, title);
  tl_buf_printf(&b, "</text>\n");
  panel(&b, 70, 70, 370, 280, "KL(model || lens)", n, kl, nkl, NAN, unit);
  panel(&b, 560, 70, 370, 280, "cross-entropy", n, ce, nce, baseline_ce, unit);
  tl_buf_printf(&b, "</svg>\n");
  int rc = tl_write_file_atomic(path, b.data, b.len);
  tl_buf_free(&b);
  return rc;
}
