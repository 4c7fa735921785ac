/* Square matrices as heatmaps sharing one colour bar (see tlens/plot.h): the
 * layer-transfer picture of tlens eval. The axes, ticks and colour bar are the
 * chart module's; this file only lays the panels out and fills the cells. */
#include <math.h>
#include <stdlib.h>

#include "tlens/plot.h"

#define LEFT 72.0
#define RIGHT 24.0
#define PANEL_TOP 30.0    /* room for the y label above the area */
#define PANEL_BOTTOM 46.0 /* ticks and the x label */
#define MAX_CELL 48.0     /* a small matrix stays a compact square */

/* The colour bar's range: from 0 (or the smallest value when one is clearly
 * negative, not just rounding below a zero diagonal) to a nice number at or
 * above the largest, as a y axis fitted to those two values. */
static void value_range(const tl_plot_heatmap *h, double *lo, double *hi) {
  size_t nn = (size_t)h->n * (size_t)h->n;
  double ext[2] = {INFINITY, -INFINITY};
  for (int k = 0; k < h->nm; k++)
    for (size_t c = 0; c < nn; c++) {
      double v = h->m[k].v[c];
      if (!isfinite(v)) continue;
      ext[0] = fmin(ext[0], v);
      ext[1] = fmax(ext[1], v);
    }
  if (ext[0] < 0 && -ext[0] <= 1e-3 * fabs(ext[1])) ext[0] = 0;
  tl_plot_series s = {.n = 2, .y = ext};
  tl_plot_axes a = {0};
  tl_plot_axes_fit_y(&a, &s, 1);
  *lo = a.y_lo;
  *hi = a.y_hi;
}

static void draw_matrix(tl_plot *p, const tl_plot_heatmap *h, const tl_plot_matrix *m, double top, double cell,
                        double lo, double hi) {
  int n = h->n;
  char *ylabel = m->name ? tl_sprintf("%s: %s", m->name, h->row_label) : tl_strdup(h->row_label);
  tl_plot_axes a = {.x = LEFT, .y = top + PANEL_TOP, .w = cell * n, .h = cell * n, .x_lo = -0.5, .x_hi = n - 0.5,
                    .y_lo = -0.5, .y_hi = n - 0.5, .x_integer = true, .y_integer = true, .no_grid = true,
                    .x_label = h->col_label, .y_label = ylabel};
  tl_buf *b = &p->svg;
  tl_buf_printf(b, "<g class=\"panel\">\n"); /* a group for readers of the file; no transform */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double v = m->v[(size_t)i * n + j];
      char col[8] = "#cccccc";
      if (isfinite(v)) tl_plot_ramp(hi > lo ? (v - lo) / (hi - lo) : 0, col); /* clamped to [0, 1] */
      /* row i spans [i - 0.5, i + 0.5] upwards from the bottom */
      tl_buf_printf(b, "<rect class=\"cell\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>",
                    tl_plot_px(&a, j - 0.5), tl_plot_py(&a, i + 0.5), cell, cell, col);
      if (m->name) {
        tl_plot_escape(b, m->name);
        tl_buf_printf(b, ", ");
      }
      tl_plot_escape(b, h->row_name);
      tl_buf_printf(b, " %d, ", i);
      tl_plot_escape(b, h->col_name);
      tl_buf_printf(b, " %d: %.6g</title></rect>\n", j, v);
    }
  tl_plot_axes_draw(p, &a); /* the frame and ticks over the cells' edges */
  tl_buf_printf(b, "</g>\n");
  free(ylabel);
}

int tl_plot_heatmap_write(const char *path, const tl_plot_heatmap *h) {
  if (h->n < 1 || h->nm < 1) return tl_fail("%s: nothing to plot", path);
  const double W = TL_PLOT_WIDTH;
  double cell = fmin((W - LEFT - RIGHT) / h->n, MAX_CELL), side = cell * h->n;
  double lo, hi;
  value_range(h, &lo, &hi);
  double top = 40, bar = 44, block = PANEL_TOP + side + PANEL_BOTTOM;
  double H = top + bar + h->nm * block + (h->note ? 26 : 6);
  tl_plot p;
  tl_plot_begin(&p, W, H, h->title);
  tl_plot_colorbar_values(&p, LEFT, top, W - LEFT - RIGHT, h->value_label, lo, hi);
  for (int k = 0; k < h->nm; k++) draw_matrix(&p, h, &h->m[k], top + bar + k * block, cell, lo, hi);
  if (h->note) tl_plot_text(&p, LEFT, H - 10, 11, TL_PLOT_START, "note", "#444", false, h->note);
  int rc = tl_plot_write(&p, path);
  tl_plot_free(&p);
  return rc;
}
