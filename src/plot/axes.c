/* Axes, ticks, series, reference lines, legends and colour bars (see tlens/plot.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/plot.h"

#define TICK_SIZE 11.0
#define LABEL_SIZE 12.0

/* The step of about `target` intervals over range: 1, 2, 2.5 or 5 times a power
 * of ten. */
static double nice_step(double range, double target) {
  if (!(range > 0) || !(target > 0)) return 1;
  double raw = range / target, p = pow(10, floor(log10(raw)));
  const double m[] = {1, 2, 2.5, 5, 10};
  for (int i = 0; i < 5; i++)
    if (m[i] * p >= raw * (1 - 1e-9)) return m[i] * p;
  return 10 * p;
}

/* The step after `step` in the 1, 2, 5 sequence (and 2.5 -> 5) */
static double next_step(double step) {
  double p = pow(10, floor(log10(step) + 1e-9)), m = step / p;
  return m < 1.5 ? 2 * p : m < 4.5 ? 5 * p : 10 * p;
}

/* A tick value as text: as many decimals as the step needs, %g when that is long */
static void tick_text(double v, double step, char *out, size_t cap) {
  int d = 0;
  while (d < 9) {
    double s = step * pow(10, d);
    if (fabs(s - round(s)) <= 1e-6 * s) break;
    d++;
  }
  if (fabs(v) < step * 1e-6) v = 0; /* no "-0" */
  if (d > 5 || fabs(v) >= 1e6) snprintf(out, cap, "%.3g", v);
  else snprintf(out, cap, "%.*f", d, v);
}

void tl_plot_axes_fit_y(tl_plot_axes *a, const tl_plot_series *s, int n) {
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < s[k].n; i++) {
      double y = s[k].y[i], e = s[k].err && isfinite(s[k].err[i]) ? fabs(s[k].err[i]) : 0;
      if (!isfinite(y)) continue;
      if (y - e < lo) lo = y - e;
      if (y + e > hi) hi = y + e;
    }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (lo >= 0) lo = 0; /* losses, divergences, norms: from zero */
  if (hi <= lo) hi = lo + (lo != 0 ? fabs(lo) : 1);
  double step = nice_step(hi - lo, 5);
  a->y_lo = floor(lo / step + 1e-9) * step;
  a->y_hi = ceil(hi / step - 1e-9) * step;
}

double tl_plot_px(const tl_plot_axes *a, double x) {
  return a->x + (a->x_hi > a->x_lo ? (x - a->x_lo) / (a->x_hi - a->x_lo) * a->w : a->w / 2);
}

double tl_plot_py(const tl_plot_axes *a, double y) {
  return a->y + a->h - (a->y_hi > a->y_lo ? (y - a->y_lo) / (a->y_hi - a->y_lo) * a->h : a->h / 2);
}

/* The x step whose labels stand apart: the widest label of a step plus a gap must
 * fit between two ticks. */
static double x_tick_step(const tl_plot_axes *a) {
  double range = a->x_hi - a->x_lo;
  double step = nice_step(range, a->w / 60);
  if (a->x_integer && step < 1) step = 1;
  for (int guard = 0; guard < 60; guard++) {
    double widest = 0;
    char t[32];
    for (double v = ceil(a->x_lo / step - 1e-9) * step; v <= a->x_hi + step * 1e-9; v += step) {
      tick_text(v, step, t, sizeof t);
      double w = tl_plot_text_width(t, TICK_SIZE);
      if (w > widest) widest = w;
    }
    if (step / range * a->w >= widest + 8) break;
    step = next_step(step);
  }
  return step;
}

enum { MAX_TICKS = 128 };
/* The x ticks: multiples of the step, and on a whole-number axis its last whole
 * number too (the last layer), in place of the tick before it when the two
 * labels would meet. Returns the count; *step for the labels' decimals. */
static int x_ticks(const tl_plot_axes *a, double *v, double *step) {
  *step = x_tick_step(a);
  int n = 0;
  for (double x = ceil(a->x_lo / *step - 1e-9) * *step; x <= a->x_hi + *step * 1e-9 && n < MAX_TICKS; x += *step)
    v[n++] = x;
  double end = floor(a->x_hi + 1e-9);
  if (a->x_integer && end >= a->x_lo && (n == 0 || v[n - 1] < end - 0.5)) {
    char t0[32], t1[32];
    if (n > 0) {
      tick_text(v[n - 1], *step, t0, sizeof t0);
      tick_text(end, *step, t1, sizeof t1);
      double gap = tl_plot_px(a, end) - tl_plot_px(a, v[n - 1]);
      if (gap < (tl_plot_text_width(t0, TICK_SIZE) + tl_plot_text_width(t1, TICK_SIZE)) / 2 + 8) n--;
    }
    if (n < MAX_TICKS) v[n++] = end;
  }
  return n;
}

void tl_plot_axes_draw(tl_plot *p, const tl_plot_axes *a) {
  tl_buf *b = &p->svg;
  char t[32];
  /* y: grid lines and labels at a nice step, fewer when the area is short */
  double ystep = nice_step(a->y_hi - a->y_lo, a->h >= 150 ? 5 : 3);
  if (a->y_integer && ystep < 1) ystep = 1;
  for (double v = ceil(a->y_lo / ystep - 1e-9) * ystep; v <= a->y_hi + ystep * 1e-9; v += ystep) {
    double y = tl_plot_py(a, v);
    if (!a->no_grid)
      tl_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", a->x, y, a->x + a->w, y);
    tick_text(v, ystep, t, sizeof t);
    tl_plot_text(p, a->x - 6, y + 4, TICK_SIZE, TL_PLOT_END, "tick", NULL, false, t);
  }
  double xv[MAX_TICKS], xstep;
  int nx = x_ticks(a, xv, &xstep);
  for (int k = 0; k < nx; k++) {
    double x = tl_plot_px(a, xv[k]);
    tl_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x, a->y + a->h, x,
                  a->y + a->h + 4);
    tick_text(xv[k], xstep, t, sizeof t);
    tl_plot_text(p, x, a->y + a->h + 16, TICK_SIZE, TL_PLOT_MIDDLE, "tick", NULL, false, t);
  }
  tl_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
                a->x, a->y, a->w, a->h);
  if (a->x_label) tl_plot_text(p, a->x + a->w / 2, a->y + a->h + 33, LABEL_SIZE, TL_PLOT_MIDDLE, "xlabel", NULL, false, a->x_label);
  if (a->y_label) tl_plot_text(p, a->x, a->y - 8, LABEL_SIZE + 1, TL_PLOT_START, "ylabel", NULL, false, a->y_label);
}

static double point_x(const tl_plot_axes *a, const tl_plot_series *s, int i) {
  return tl_plot_px(a, s->x ? s->x[i] : (double)i) + s->dx;
}

static bool has_err(const tl_plot_series *s, int i) {
  return s->err && isfinite(s->err[i]) && s->err[i] > 0 && isfinite(s->y[i]);
}

void tl_plot_series_draw(tl_plot *p, const tl_plot_axes *a, const tl_plot_series *s) {
  tl_buf *b = &p->svg;
  const char *col = s->color ? s->color : "#000";
  if (s->band && s->err) {
    /* one closed shape per run of points that all have an error */
    for (int i = 0; i < s->n;) {
      if (!has_err(s, i)) {
        i++;
        continue;
      }
      int j = i;
      while (j < s->n && has_err(s, j)) j++;
      tl_buf_printf(b, "<path fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" d=\"", col);
      for (int k = i; k < j; k++)
        tl_buf_printf(b, "%s%.1f %.1f ", k == i ? "M" : "L", point_x(a, s, k), tl_plot_py(a, s->y[k] + s->err[k]));
      for (int k = j - 1; k >= i; k--)
        tl_buf_printf(b, "L%.1f %.1f ", point_x(a, s, k), tl_plot_py(a, s->y[k] - s->err[k]));
      tl_buf_printf(b, "Z\"/>\n");
      i = j;
    }
  }
  /* the line, broken where a value is missing */
  tl_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-linejoin=\"round\"", col,
                s->stroke > 0 ? s->stroke : 2);
  if (s->dash) tl_buf_printf(b, " stroke-dasharray=\"%s\"", s->dash);
  tl_buf_printf(b, " d=\"");
  bool pen = false;
  for (int i = 0; i < s->n; i++) {
    if (!isfinite(s->y[i]) || (s->x && !isfinite(s->x[i]))) {
      pen = false;
      continue;
    }
    tl_buf_printf(b, "%s%.1f %.1f ", pen ? "L" : "M", point_x(a, s, i), tl_plot_py(a, s->y[i]));
    pen = true;
  }
  tl_buf_printf(b, "\"/>\n");
  if (s->bars && s->err) {
    tl_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\" d=\"", col);
    for (int i = 0; i < s->n; i++) {
      if (!has_err(s, i)) continue;
      double x = point_x(a, s, i), y0 = tl_plot_py(a, s->y[i] - s->err[i]), y1 = tl_plot_py(a, s->y[i] + s->err[i]);
      tl_buf_printf(b, "M%.1f %.1fV%.1fM%.1f %.1fh6M%.1f %.1fh6 ", x, y0, y1, x - 3, y0, x - 3, y1);
    }
    tl_buf_printf(b, "\"/>\n");
  }
  if (s->markers)
    for (int i = 0; i < s->n; i++) {
      if (!isfinite(s->y[i])) continue;
      tl_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", point_x(a, s, i),
                    tl_plot_py(a, s->y[i]), col);
      if (s->name) tl_plot_escape(b, s->name);
      tl_buf_printf(b, ", %s %g: %.4g", s->x ? (a->x_label ? a->x_label : "x") : "layer", s->x ? s->x[i] : (double)i,
                    s->y[i]);
      if (has_err(s, i)) tl_buf_printf(b, " &#177; %.3g", s->err[i]);
      tl_buf_printf(b, "</title></circle>\n");
    }
}

void tl_plot_hline(tl_plot *p, const tl_plot_axes *a, double y, const char *label) {
  if (!isfinite(y) || y < a->y_lo || y > a->y_hi) return;
  double py = tl_plot_py(a, y);
  tl_buf_printf(&p->svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\n",
                a->x, py, a->x + a->w, py);
  if (!label) return;
  /* under the line at the left, above it, then the same at the right */
  const double size = TICK_SIZE;
  struct {
    double x, y;
    tl_plot_anchor an;
  } at[4] = {{a->x + 6, py + 14, TL_PLOT_START},
             {a->x + 6, py - 5, TL_PLOT_START},
             {a->x + a->w - 6, py + 14, TL_PLOT_END},
             {a->x + a->w - 6, py - 5, TL_PLOT_END}};
  int pick = -1;
  for (int k = 0; k < 4 && pick < 0; k++) {
    tl_plot_box bx = tl_plot_text_box(at[k].x, at[k].y, size, at[k].an, label);
    if (bx.y0 >= a->y + 1 && bx.y1 <= a->y + a->h - 1 && tl_plot_free_at(p, bx, 2)) pick = k;
  }
  if (pick < 0) pick = py + 14 <= a->y + a->h - 3 ? 0 : 1;
  tl_plot_text(p, at[pick].x, at[pick].y, size, at[pick].an, "note", "#444", true, label);
}

double tl_plot_legend(tl_plot *p, double x, double y, double w, const tl_plot_series *s, int n) {
  const double row = 18, sample = 24;
  double cx = x, cy = y + 12;
  int rows = 0;
  for (int k = 0; k < n; k++) {
    if (!s[k].name) continue;
    double need = sample + 6 + tl_plot_text_width(s[k].name, LABEL_SIZE);
    if (rows == 0) {
      rows = 1;
    } else if (cx + need > x + w) { /* the next row */
      cx = x;
      cy += row;
      rows++;
    }
    tl_buf_printf(&p->svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"", cx,
                  cy - 4, cx + sample, cy - 4, s[k].color ? s[k].color : "#000");
    if (s[k].dash) tl_buf_printf(&p->svg, " stroke-dasharray=\"%s\"", s[k].dash);
    tl_buf_printf(&p->svg, "/>\n");
    tl_plot_text(p, cx + sample + 6, cy, LABEL_SIZE, TL_PLOT_START, "legend", NULL, false, s[k].name);
    cx += need + 18;
  }
  return rows * row;
}

/* The bar itself: the ramp over [x_lo, x_hi] of an axis with its ticks under it,
 * the label on its left. */
static double colorbar(tl_plot *p, double x, double y, double w, const char *label, double lo, double hi,
                       bool integer) {
  tl_buf *b = &p->svg;
  double lw = tl_plot_text_width(label, LABEL_SIZE) + 10, bx = x + lw, bw = w - lw;
  tl_plot_text(p, x, y + 10, LABEL_SIZE, TL_PLOT_START, "legend", NULL, false, label);
  if (!p->ramp_defined) { /* one gradient per page, however many bars use it */
    tl_buf_printf(b, "<defs><linearGradient id=\"ramp\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">");
    for (int k = 0; k <= 10; k++) {
      char c[8];
      tl_plot_ramp(k / 10.0, c);
      tl_buf_printf(b, "<stop offset=\"%.1f\" stop-color=\"%s\"/>", k / 10.0, c);
    }
    tl_buf_printf(b, "</linearGradient></defs>\n");
    p->ramp_defined = true;
  }
  tl_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"12\" fill=\"url(#ramp)\" stroke=\"#444\"/>\n", bx,
                y, bw);
  tl_plot_axes ax = {.x = bx, .y = y, .w = bw, .h = 12, .x_lo = lo, .x_hi = hi, .x_integer = integer};
  double v[MAX_TICKS], step;
  int nt = x_ticks(&ax, v, &step);
  char t[32];
  for (int k = 0; k < nt; k++) {
    double px = tl_plot_px(&ax, v[k]);
    tl_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", px, y + 12, px, y + 16);
    tick_text(v[k], step, t, sizeof t);
    tl_plot_text(p, px, y + 28, TICK_SIZE, TL_PLOT_MIDDLE, "tick", NULL, false, t);
  }
  return 32;
}

double tl_plot_colorbar(tl_plot *p, double x, double y, double w, const char *label, int lo, int hi) {
  /* ticks at the layers' centres: layer k fills [k - 0.5, k + 0.5] of the bar */
  return colorbar(p, x, y, w, label, lo - 0.5, hi + 0.5, true);
}

double tl_plot_colorbar_values(tl_plot *p, double x, double y, double w, const char *label, double lo, double hi) {
  return colorbar(p, x, y, w, label, lo, hi, false);
}
