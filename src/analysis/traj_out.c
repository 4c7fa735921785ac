/* Trajectory outputs: trajectory.json, one SVG heatmap per statistic, and the
 * terminal table. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/plot.h"

static cJSON *str_array(char **s, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
  return a;
}

static cJSON *view_json(const tl_traj_view *v) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", v->name);
  cJSON_AddStringToObject(o, "units", v->units);
  cJSON_AddItemToObject(o, "min", v->has_min ? cJSON_CreateNumber(v->min) : cJSON_CreateNull());
  cJSON_AddItemToObject(o, "max", v->has_max ? cJSON_CreateNumber(v->max) : cJSON_CreateNull());
  cJSON_AddBoolToObject(o, "includes_output", v->includes_output);
  cJSON_AddItemToObject(o, "layer_labels", str_array(v->layer_labels, v->rows));
  cJSON_AddItemToObject(o, "sequence_labels", v->seq_labels ? str_array(v->seq_labels, v->cols) : cJSON_CreateNull());
  cJSON *st = cJSON_AddArrayToObject(o, "stats");
  for (int r = 0; r < v->rows; r++) {
    cJSON *row = cJSON_CreateArray();
    for (int c = 0; c < v->cols; c++) cJSON_AddItemToArray(row, cJSON_CreateNumber(v->stats[(size_t)r * v->cols + c]));
    cJSON_AddItemToArray(st, row);
  }
  if (v->labels) {
    cJSON *lab = cJSON_AddArrayToObject(o, "label_strings");
    for (int r = 0; r < v->rows; r++) cJSON_AddItemToArray(lab, str_array(v->labels + (size_t)r * v->cols, v->cols));
  } else {
    cJSON_AddNullToObject(o, "label_strings");
  }
  if (v->hover) {
    cJSON *hov = cJSON_AddArrayToObject(o, "hover_over_entries");
    for (int r = 0; r < v->rows; r++) {
      cJSON *row = cJSON_CreateArray();
      for (int c = 0; c < v->cols; c++) {
        cJSON *cell = cJSON_CreateArray();
        char **h = v->hover + ((size_t)r * v->cols + c) * v->hk * v->hw;
        for (int j = 0; j < v->hk; j++) cJSON_AddItemToArray(cell, str_array(h + (size_t)j * v->hw, v->hw));
        cJSON_AddItemToArray(row, cell);
      }
      cJSON_AddItemToArray(hov, row);
    }
  } else {
    cJSON_AddNullToObject(o, "hover_over_entries");
  }
  return o;
}

char *tl_traj_sets_json(const tl_traj_set *sets, int nsets) {
  cJSON *root = cJSON_CreateObject();
  for (int i = 0; i < nsets; i++) {
    cJSON *t = cJSON_AddObjectToObject(root, sets[i].lens_type);
    for (int k = 0; k < sets[i].n; k++) cJSON_AddItemToObject(t, sets[i].views[k].key, view_json(&sets[i].views[k]));
  }
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return text;
}

int tl_traj_write_json(const char *path, const tl_traj_set *sets, int nsets) {
  char *text = tl_traj_sets_json(sets, nsets);
  size_t n = strlen(text);
  text = tl_realloc(text, n + 2);
  text[n] = '\n';
  int rc = tl_write_file_atomic(path, text, n + 1);
  free(text);
  return rc;
}

/* ---- SVG ---- */

/* ColorBrewer RdBu reversed (plotly's "rdbu_r"): low values blue, high red */
static const unsigned char rdbu_r[11][3] = {{5, 48, 97},    {33, 102, 172}, {67, 147, 195},  {146, 197, 222},
                                            {209, 229, 240}, {247, 247, 247}, {253, 219, 199}, {244, 165, 130},
                                            {214, 96, 77},  {178, 24, 43},  {103, 0, 31}};

/* the colour of fraction f in [0, 1] of the scale, linearly between the stops */
static void colour(double f, int rgb[3]) {
  if (!(f >= 0)) f = 0;
  if (f > 1) f = 1;
  double x = f * 10;
  int i = (int)x;
  if (i >= 10) i = 9;
  double w = x - i;
  for (int c = 0; c < 3; c++) rgb[c] = (int)lround(rdbu_r[i][c] * (1 - w) + rdbu_r[i + 1][c] * w);
}

/* the scale of a view: its min/max where set, else the data's finite extremes */
static void scale_of(const tl_traj_view *v, double *lo, double *hi) {
  double a = INFINITY, b = -INFINITY;
  for (size_t i = 0; i < (size_t)v->rows * v->cols; i++)
    if (isfinite(v->stats[i])) a = fmin(a, v->stats[i]), b = fmax(b, v->stats[i]);
  if (!isfinite(a)) a = 0, b = 1;
  *lo = v->has_min ? v->min : a;
  *hi = v->has_max ? v->max : b;
  if (!(*hi > *lo)) *hi = *lo + 1;
}

int tl_traj_write_svg(const char *path, const tl_traj_view *v, const char *title) {
  const double cw = 80, ch = 30, left = 70, top = 50, bar_w = 18;
  const double W = left + cw * v->cols + 130, H = top + ch * v->rows + 70;
  double lo, hi;
  scale_of(v, &lo, &hi);
  tl_buf b = {0};
  tl_buf_printf(&b,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                W, H, W, H);
  tl_buf_printf(&b, "<text x=\"%.1f\" y=\"24\" font-size=\"15\" text-anchor=\"middle\" font-weight=\"bold\">",
                left + cw * v->cols / 2);
  tl_plot_escape(&b, title);
  tl_buf_printf(&b, "</text>\n");
  for (int i = 0; i < v->rows; i++) {
    const double y = top + ch * (v->rows - 1 - i); /* layers go up */
    tl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">", left - 8, y + ch / 2 + 4);
    tl_plot_escape(&b, v->layer_labels[i]);
    tl_buf_printf(&b, "</text>\n");
    for (int c = 0; c < v->cols; c++) {
      const size_t cell = (size_t)i * v->cols + c;
      const double x = left + cw * c, val = v->stats[cell];
      int rgb[3];
      colour((val - lo) / (hi - lo), rgb);
      tl_buf_printf(&b, "<g><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\"/>", x, y,
                    cw, ch, rgb[0], rgb[1], rgb[2]);
      /* the hover entries as the cell's tooltip */
      tl_buf_printf(&b, "<title>");
      if (v->seq_labels) tl_plot_escape(&b, v->seq_labels[c]);
      tl_buf_printf(&b, " @ layer ");
      tl_plot_escape(&b, v->layer_labels[i]);
      tl_buf_printf(&b, ": %.5g %s", val, v->units);
      for (int j = 0; v->hover && j < v->hk; j++) {
        tl_buf_printf(&b, "\n");
        for (int e = 0; e < v->hw; e++) {
          tl_buf_printf(&b, e ? " " : "");
          tl_plot_escape(&b, v->hover[(cell * v->hk + j) * v->hw + e]);
        }
      }
      tl_buf_printf(&b, "</title>");
      if (v->labels && v->labels[cell][0]) {
        const double lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
        tl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\" text-anchor=\"middle\" "
                          "fill=\"%s\" xml:space=\"preserve\">",
                      x + cw / 2, y + ch / 2 + 4, lum < 110 ? "white" : "black");
        tl_plot_escape(&b, v->labels[cell]);
        tl_buf_printf(&b, "</text>");
      }
      tl_buf_printf(&b, "</g>\n");
    }
  }
  const double yb = top + ch * v->rows;
  for (int c = 0; v->seq_labels && c < v->cols; c++) {
    tl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" xml:space=\"preserve\">",
                  left + cw * c + cw / 2, yb + 18);
    tl_plot_escape(&b, v->seq_labels[c]);
    tl_buf_printf(&b, "</text>\n");
  }
  tl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">Input</text>\n",
                left + cw * v->cols / 2, yb + 44);
  tl_buf_printf(&b, "<text x=\"16\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">"
                    "Layer</text>\n",
                top + ch * v->rows / 2, top + ch * v->rows / 2);
  /* the colour bar: 50 steps, ticks at both ends and three between */
  const double bx = left + cw * v->cols + 24, bh = ch * v->rows;
  for (int s = 0; s < 50; s++) {
    int rgb[3];
    colour((s + 0.5) / 50, rgb);
    tl_buf_printf(&b, "<rect x=\"%.1f\" y=\"%.2f\" width=\"%.1f\" height=\"%.2f\" fill=\"rgb(%d,%d,%d)\"/>\n", bx,
                  top + bh - bh * (s + 1) / 50, bar_w, bh / 50 + 0.3, rgb[0], rgb[1], rgb[2]);
  }
  for (int t = 0; t <= 4; t++) {
    const double y = top + bh - bh * t / 4;
    tl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%.3g</text>\n", bx + bar_w + 4, y + 4,
                  lo + (hi - lo) * t / 4);
  }
  const double tx = bx + bar_w + 50, ty = top + bh / 2;
  tl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(90 %.1f %.1f)\">",
                tx, ty, tx, ty);
  tl_plot_escape(&b, v->name);
  if (v->units[0]) {
    tl_buf_printf(&b, " (");
    tl_plot_escape(&b, v->units);
    tl_buf_printf(&b, ")");
  }
  tl_buf_printf(&b, "</text>\n</svg>\n");
  int rc = tl_write_file_atomic(path, b.data, b.len);
  tl_buf_free(&b);
  return rc;
}

/* ---- the terminal table ---- */

/* prints s padded (or cut) to w characters, counting code points */
static void put_cell(FILE *f, const char *s, int w) {
  int n = 0;
  for (const char *p = s; *p; p++) {
    if (((unsigned char)*p & 0xc0) != 0x80) {
      if (n == w) break;
      n++;
    }
    fputc(*p, f);
  }
  for (; n < w; n++) fputc(' ', f);
}

void tl_traj_print_table(FILE *f, const tl_traj_view *v, const char *lens_type) {
  const int w = 9;
  fprintf(f, "%s lens: %s%s%s%s\n", lens_type, v->name, v->units[0] ? " (" : "", v->units, v->units[0] ? ")" : "");
  put_cell(f, "", 8);
  fputs("| ", f);
  for (int c = 0; c < v->cols; c++) put_cell(f, v->seq_labels ? v->seq_labels[c] : "", w);
  fputc('\n', f);
  for (int i = v->rows - 1; i >= 0; i--) { /* the output on top, as in the heatmaps */
    if (v->labels) {
      put_cell(f, v->layer_labels[i], 8);
      fputs("| ", f);
      for (int c = 0; c < v->cols; c++) put_cell(f, v->labels[(size_t)i * v->cols + c], w);
      fputc('\n', f);
    }
    put_cell(f, v->labels ? "" : v->layer_labels[i], 8);
    fputs("| ", f);
    for (int c = 0; c < v->cols; c++) {
      char num[32];
      snprintf(num, sizeof num, "%.3f", v->stats[(size_t)i * v->cols + c]);
      put_cell(f, num, w);
    }
    fputc('\n', f);
  }
}
