/* Charts as plain SVG 1.1 (no scripts, no fonts to embed), shared by every picture
 * tlens draws: the per-layer evaluation chart, the training curves and the
 * comparison of runs.
 *
 * A drawing (tl_plot) is the SVG text being built plus the box of every text it
 * holds. A text's box is estimated from its font size and its length (TL_PLOT_EM
 * of the size per character, wider than Helvetica, Arial or Liberation Sans set
 * it), so the layout can keep labels apart without measuring fonts: tick labels
 * are thinned until they fit, the legend wraps into rows. tl_plot_overlap finds
 * two boxes that intersect, for the tests.
 *
 * Coordinates are pixels of a page 800 wide (TL_PLOT_WIDTH), y downwards; every
 * element is positioned absolutely (no transforms), so a reader of the file sees
 * where each text lies. Texts carry a class naming their role: "title",
 * "xlabel", "ylabel", "tick", "legend", "note". */
#ifndef TLENS_PLOT_H
#define TLENS_PLOT_H

#include <stdbool.h>

#include "tlens/core.h"

#define TL_PLOT_WIDTH 800.0
#define TL_PLOT_EM 0.6 /* estimated advance of one character, in font sizes */

typedef struct {
  double x0, y0, x1, y1;
} tl_plot_box;

typedef enum { TL_PLOT_START, TL_PLOT_MIDDLE, TL_PLOT_END } tl_plot_anchor;

typedef struct {
  tl_buf svg;
  double width, height;
  tl_plot_box *boxes; /* every text written, in order */
  int nboxes, capboxes;
  bool ramp_defined; /* the colour ramp's gradient is in the page (one per page) */
} tl_plot;

/* ---- the document ---- */
/* Starts a page: white background and, when title is not NULL, the title centred
 * on top (shrunk, then shortened with "...", until it fits the width). */
void tl_plot_begin(tl_plot *p, double width, double height, const char *title);
/* Closes the page and writes it to path atomically. The drawing stays to be freed. */
int tl_plot_write(tl_plot *p, const char *path);
void tl_plot_free(tl_plot *p);

/* ---- text ---- */
/* s with & < > " ' written as XML entities, and bytes that XML 1.0 does not allow
 * (control characters but tab and newline) dropped. */
void tl_plot_escape(tl_buf *b, const char *s);
/* Width of s at font size `size` (TL_PLOT_EM per UTF-8 character). */
double tl_plot_text_width(const char *s, double size);
tl_plot_box tl_plot_text_box(double x, double y, double size, tl_plot_anchor anchor, const char *s);
/* Writes one <text> at baseline (x, y) and records its box. cls: the role (class
 * attribute); fill: NULL for black; halo: a white outline so the text stays
 * readable over lines. */
void tl_plot_text(tl_plot *p, double x, double y, double size, tl_plot_anchor anchor, const char *cls,
                  const char *fill, bool halo, const char *s);
/* Whether box b, grown by pad on each side, misses every text written so far. */
bool tl_plot_free_at(const tl_plot *p, tl_plot_box b, double pad);
/* The first pair of recorded text boxes that intersect (*i < *j): 1, else 0. */
int tl_plot_overlap(const tl_plot *p, int *i, int *j);

/* ---- colours ---- */
/* A categorical colour (10, repeating), for lines that must be told apart. */
const char *tl_plot_color(int i);
/* The logit lens's colour in every chart. */
#define TL_PLOT_LOGIT_COLOR "#d62728"
/* A sequential ramp from dark blue (t = 0) through teal to yellow (t = 1),
 * perceptually ordered (viridis' anchors), as "#rrggbb" into out. */
void tl_plot_ramp(double t, char out[8]);

/* ---- axes and series ---- */
typedef struct {
  double x, y, w, h;              /* the plotting area on the page */
  double x_lo, x_hi, y_lo, y_hi;  /* the data range shown */
  bool x_integer;                 /* ticks on whole numbers only (layers, steps) */
  bool y_integer;                 /* the same for y (the rows of a heatmap) */
  bool no_grid;                   /* no grid lines (a heatmap fills the area) */
  const char *x_label, *y_label;  /* with units: "layer", "KL(model || lens) (bits/byte)" */
} tl_plot_axes;

typedef struct {
  const char *name;  /* legend; NULL: not in the legend */
  const char *color; /* CSS colour */
  int n;
  const double *x;   /* [n]; NULL: 0, 1, ..., n-1 */
  const double *y;   /* [n]; a non-finite value leaves a gap */
  const double *err; /* NULL, or [n] half-widths drawn as error bars and/or a band */
  const char *dash;  /* NULL: solid; else a stroke-dasharray such as "6 3" */
  double stroke;     /* line width; 0: 2 */
  bool markers;      /* a dot at each point, with a hover title */
  bool bars;         /* error bars with caps */
  bool band;         /* a shaded band between y - err and y + err */
  double dx;         /* horizontal offset in pixels, to set series side by side */
} tl_plot_series;

/* Fits the y range to the series (their error bars included), from 0 when every
 * value is >= 0, to "nice" ends. */
void tl_plot_axes_fit_y(tl_plot_axes *a, const tl_plot_series *s, int n);
/* A value's position on the page. */
double tl_plot_px(const tl_plot_axes *a, double x);
double tl_plot_py(const tl_plot_axes *a, double y);
/* Frame, grid, ticks and their labels (as many as fit apart), x label under the
 * ticks, y label above the area's top-left corner. */
void tl_plot_axes_draw(tl_plot *p, const tl_plot_axes *a);
void tl_plot_series_draw(tl_plot *p, const tl_plot_axes *a, const tl_plot_series *s);
/* A dashed horizontal reference line across the area with its label, placed
 * under the line at the left, else above it, else at the right: where it is free. */
void tl_plot_hline(tl_plot *p, const tl_plot_axes *a, double y, const char *label);
/* The named series as legend entries (a line sample and the name) from (x, y),
 * wrapped into rows within width w. Returns the height used. */
double tl_plot_legend(tl_plot *p, double x, double y, double w, const tl_plot_series *s, int n);
/* A horizontal colour bar of tl_plot_ramp from lo to hi with whole-number ticks
 * and a label on its left, e.g. for one line per layer. Returns the height used. */
double tl_plot_colorbar(tl_plot *p, double x, double y, double w, const char *label, int lo, int hi);
/* The same bar for values from lo to hi (ticks at nice values), e.g. the key of a
 * heatmap; label names the unit. Returns the height used. */
double tl_plot_colorbar_values(tl_plot *p, double x, double y, double w, const char *label, double lo, double hi);

/* ---- charts ---- */
/* Per-layer metrics of several lenses (or runs): one panel per metric stacked on
 * an 800 px page, the same x axis, one legend above them all. */
enum { TL_PLOT_MAX_PANELS = 4 };
typedef struct {
  const char *name, *color, *dash; /* legend, colour (NULL: tl_plot_color of its index), dash */
  int n;
  const double *x;                        /* [n]; NULL: layers 0..n-1 */
  const double *y[TL_PLOT_MAX_PANELS];    /* [n] per panel; NULL: not in that panel */
  const double *err[TL_PLOT_MAX_PANELS];  /* [n] or NULL: +- half-widths */
} tl_plot_curve;
typedef struct {
  const char *title;
  const char *x_label; /* "layer" or "relative depth (layer / layers)" */
  bool x_layers;       /* x is a layer index: whole-number ticks */
  bool bars;           /* error bars (discrete layers); otherwise bands */
  int npanels;
  const char *panel[TL_PLOT_MAX_PANELS];        /* y labels, with units */
  double baseline[TL_PLOT_MAX_PANELS];          /* reference line, NaN: none */
  const char *baseline_label[TL_PLOT_MAX_PANELS];
  const tl_plot_curve *curves;
  int ncurves;
  const char *note; /* a line under the chart (e.g. what the bars are), or NULL */
} tl_plot_panels;
int tl_plot_panels_write(const char *path, const tl_plot_panels *c);

/* Square matrices as heatmaps (tlens eval --layer_transfer), stacked on one page
 * with one colour bar (tl_plot_ramp from the smallest value, or 0 when none is
 * negative, to a nice number above the largest) shared by all. Row i of a matrix
 * is drawn at height i of the y axis (row 0 at the bottom), column j at x = j;
 * each cell is a <rect class="cell"> whose <title> reads
 * "<row_name> i, <col_name> j: v" (v with 6 significant digits), for hover and
 * for readers of the file. A cell that is not finite is grey. */
typedef struct {
  const char *name; /* shown in the y label of its panel ("tuned lens: ..."), or NULL */
  const double *v;  /* [n * n], row-major: v[i * n + j] */
} tl_plot_matrix;
typedef struct {
  const char *title;
  int n;                              /* rows = columns */
  const char *row_label, *col_label;  /* axis labels, e.g. "lens of layer i", "hidden state of layer j" */
  const char *row_name, *col_name;    /* in the cells' titles: "lens layer", "hidden state layer" */
  const char *value_label;            /* the colour bar's label, with the unit */
  const tl_plot_matrix *m;
  int nm;
  const char *note; /* a line under the chart, or NULL */
} tl_plot_heatmap;
int tl_plot_heatmap_write(const char *path, const tl_plot_heatmap *h);

/* Training curves from a run's metrics.jsonl (one JSON object per step: step, lr,
 * grad_norm, loss_nats [L], and loss_bpb [L] when bytes are known): the loss of
 * every layer per step (a colour ramp over layers), the learning rate and the
 * gradient norm. Lines that do not parse are skipped (a run being written). */
int tl_plot_train(const char *metrics_path, const char *svg_path);
/* What training calls after each checkpoint and at the end: <output>/train.svg
 * from <output>/metrics.jsonl. A failure is a warning: a picture never stops a run. */
void tl_plot_train_update(const char *output);

#endif
