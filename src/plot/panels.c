/* Per-layer metrics of several lenses or runs, one panel per metric (see
 * tlens/plot.h): the chart of tlens eval and tlens compare. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/plot.h"

#define LEFT 72.0
#define RIGHT 24.0
#define PANEL_TOP 30.0 /* room for the y label above the area */
#define PANEL_H 190.0
#define PANEL_BOTTOM 46.0 /* ticks and the x label */

static const char *curve_color(const tl_plot_panels *c, int k) {
  return c->curves[k].color ? c->curves[k].color : tl_plot_color(k);
}

/* x range: whole layers with half a layer to spare, else the data's with 3% */
static void x_range(const tl_plot_panels *c, tl_plot_axes *a) {
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < c->ncurves; k++)
    for (int i = 0; i < c->curves[k].n; i++) {
      double x = c->curves[k].x ? c->curves[k].x[i] : i;
      if (!isfinite(x)) continue;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (c->x_layers) {
    a->x_lo = lo - 0.5;
    a->x_hi = hi + 0.5;
  } else {
    double pad = hi > lo ? 0.03 * (hi - lo) : 0.5;
    a->x_lo = lo - pad;
    a->x_hi = hi + pad;
  }
}

int tl_plot_panels_write(const char *path, const tl_plot_panels *c) {
  if (c->npanels < 1 || c->npanels > TL_PLOT_MAX_PANELS || c->ncurves < 1)
    return tl_fail("%s: nothing to plot", path);
  const double W = TL_PLOT_WIDTH;
  tl_plot_series *legend = tl_calloc((size_t)c->ncurves, sizeof *legend);
  for (int k = 0; k < c->ncurves; k++)
    legend[k] = (tl_plot_series){.name = c->curves[k].name, .color = curve_color(c, k), .dash = c->curves[k].dash};
  /* the legend's height first (a dry run on a scratch page), then the page */
  tl_plot scratch;
  tl_plot_begin(&scratch, W, 100, NULL);
  double lh = tl_plot_legend(&scratch, LEFT, 0, W - LEFT - RIGHT, legend, c->ncurves);
  tl_plot_free(&scratch);
  double top = 40 + lh + 8, block = PANEL_TOP + PANEL_H + PANEL_BOTTOM;
  double H = top + c->npanels * block + (c->note ? 26 : 6);
  tl_plot p;
  tl_plot_begin(&p, W, H, c->title);
  tl_plot_legend(&p, LEFT, 38, W - LEFT - RIGHT, legend, c->ncurves);

  tl_plot_series *s = tl_calloc((size_t)c->ncurves + 1, sizeof *s);
  for (int m = 0; m < c->npanels; m++) {
    tl_plot_axes a = {.x = LEFT, .y = top + m * block + PANEL_TOP, .w = W - LEFT - RIGHT, .h = PANEL_H,
                      .x_integer = c->x_layers, .x_label = c->x_label, .y_label = c->panel[m]};
    x_range(c, &a);
    int ns = 0;
    for (int k = 0; k < c->ncurves; k++) {
      const tl_plot_curve *cv = &c->curves[k];
      if (!cv->y[m]) continue;
      s[ns++] = (tl_plot_series){.name = cv->name, .color = curve_color(c, k), .n = cv->n, .x = cv->x,
                                 .y = cv->y[m], .err = cv->err[m], .dash = cv->dash, .markers = true,
                                 .bars = c->bars, .band = !c->bars};
    }
    /* error bars of series side by side, a fraction of the space between layers */
    if (c->bars && ns > 1) {
      double unit = a.w / (a.x_hi - a.x_lo), spread = fmin(0.5 * unit, 4.0 * ns);
      for (int k = 0; k < ns; k++) s[k].dx = spread * ((double)k / (ns - 1) - 0.5);
    }
    double base = c->baseline[m];
    int nfit = ns;
    if (isfinite(base)) s[nfit++] = (tl_plot_series){.n = 1, .y = &c->baseline[m]};
    tl_plot_axes_fit_y(&a, s, nfit);
    tl_buf_printf(&p.svg, "<g class=\"panel\">\n"); /* a group for readers of the file; no transform */
    tl_plot_axes_draw(&p, &a);
    for (int k = 0; k < ns; k++) tl_plot_series_draw(&p, &a, &s[k]);
    /* the reference line and its haloed label over the curves */
    if (isfinite(base)) {
      char *lab = c->baseline_label[m] ? tl_sprintf("%s %.3g", c->baseline_label[m], base) : NULL;
      tl_plot_hline(&p, &a, base, lab);
      free(lab);
    }
    tl_buf_printf(&p.svg, "</g>\n");
  }
  if (c->note) tl_plot_text(&p, LEFT, H - 10, 11, TL_PLOT_START, "note", "#444", false, c->note);
  int rc = tl_plot_write(&p, path);
  tl_plot_free(&p);
  free(s);
  free(legend);
  return rc;
}
