/* Training curves from metrics.jsonl (see tl_plot_train in tlens/plot.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/plot.h"

typedef struct {
  int L;          /* layers, from the first line that parses */
  bool bpb;       /* losses in bits per byte (loss_bpb), else nats per token */
  int n, cap;     /* steps kept */
  double *step, *lr, *gnorm, *loss; /* loss: [cap][L] */
} train_log;

static bool number_array(const cJSON *a, int L, double *out) {
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != L) return false;
  int i = 0;
  const cJSON *v;
  cJSON_ArrayForEach(v, a) {
    if (!cJSON_IsNumber(v)) return false;
    out[i++] = v->valuedouble;
  }
  return true;
}

/* One line of the log. A step at or before the last one kept (a run resumed from
 * an older checkpoint repeats the steps since) replaces everything from it on, as
 * the rerun's numbers are the ones that led to the lens. */
static void add_line(train_log *g, const char *line) {
  cJSON *j = cJSON_Parse(line);
  if (!j) return;
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step"), *lr = cJSON_GetObjectItemCaseSensitive(j, "lr");
  const cJSON *gn = cJSON_GetObjectItemCaseSensitive(j, "grad_norm");
  const cJSON *bpb = cJSON_GetObjectItemCaseSensitive(j, "loss_bpb");
  const cJSON *nats = cJSON_GetObjectItemCaseSensitive(j, "loss_nats");
  if (!cJSON_IsNumber(st) || !cJSON_IsNumber(lr) || !cJSON_IsNumber(gn)) goto done;
  if (g->L == 0) {
    g->bpb = cJSON_IsArray(bpb);
    g->L = cJSON_GetArraySize(g->bpb ? bpb : nats);
    if (g->L < 1) goto done;
  }
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 256;
    g->step = tl_realloc(g->step, (size_t)g->cap * sizeof(double));
    g->lr = tl_realloc(g->lr, (size_t)g->cap * sizeof(double));
    g->gnorm = tl_realloc(g->gnorm, (size_t)g->cap * sizeof(double));
    g->loss = tl_realloc(g->loss, (size_t)g->cap * g->L * sizeof(double));
  }
  if (!number_array(g->bpb ? bpb : nats, g->L, g->loss + (size_t)g->n * g->L)) goto done;
  double s = st->valuedouble;
  int keep = g->n;
  while (keep > 0 && g->step[keep - 1] >= s) keep--;
  if (keep < g->n) memmove(g->loss + (size_t)keep * g->L, g->loss + (size_t)g->n * g->L, (size_t)g->L * sizeof(double));
  g->n = keep;
  g->step[g->n] = s;
  g->lr[g->n] = lr->valuedouble;
  g->gnorm[g->n] = gn->valuedouble;
  g->n++;
done:
  cJSON_Delete(j);
}

static void log_free(train_log *g) {
  free(g->step);
  free(g->lr);
  free(g->gnorm);
  free(g->loss);
}

/* At most `most` points of a curve: the mean of each run of consecutive steps,
 * so a long run's page stays small and its lines smooth. Column `col` of a
 * row-major [n][stride] table. Returns the count written to x, y. */
static int bucket(const double *step, const double *v, int stride, int col, int n, int most, double *x, double *y) {
  int per = (n + most - 1) / most, m = 0;
  if (per < 1) per = 1;
  for (int i = 0; i < n; i += per) {
    int e = i + per < n ? i + per : n;
    double sx = 0, sy = 0;
    for (int k = i; k < e; k++) {
      sx += step[k];
      sy += v[(size_t)k * stride + col];
    }
    x[m] = sx / (e - i);
    y[m] = sy / (e - i);
    m++;
  }
  return m;
}

int tl_plot_train(const char *metrics_path, const char *svg_path) {
  char *text = NULL;
  size_t len = 0;
  TL_TRY(tl_read_file(metrics_path, &text, &len));
  train_log g = {0};
  for (char *line = text, *nl; line && *line; line = nl) {
    nl = strchr(line, '\n');
    if (nl) *nl++ = 0;
    add_line(&g, line);
  }
  free(text);
  if (g.n == 0) {
    log_free(&g);
    return tl_fail("%s: no step to plot", metrics_path);
  }
  const double W = TL_PLOT_WIDTH, left = 72, right = 24, pw = W - left - right;
  const int most = 700; /* about one point per pixel of the area */
  int L = g.L, n = g.n;
  const char *unit = g.bpb ? "bits/byte" : "nats/token";

  /* the folder the log lies in names the run */
  char *dir = tl_strdup(metrics_path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  char *title = tl_sprintf("training of %s: %d layers, steps %.0f to %.0f", slash ? tl_basename(dir) : ".", L,
                           g.step[0], g.step[n - 1]);
  free(dir);

  double loss_h = 250, small_h = 110, block_pad = 30 + 46;
  double top = 40, y_loss = top + 32 + 8 + 30, y_lr = y_loss + loss_h + block_pad, y_gn = y_lr + small_h + block_pad;
  double H = y_gn + small_h + 46 + 6;
  tl_plot p;
  tl_plot_begin(&p, W, H, title);
  free(title);
  /* legend: the colour bar of the layers, and the mean's line beside it */
  tl_plot_series mean_key = {.name = "mean over layers", .color = "#000", .dash = "6 3"};
  double key_w = 24 + 6 + tl_plot_text_width(mean_key.name, 12) + 10;
  tl_plot_colorbar(&p, left, top, pw - key_w - 20, "layer", 0, L - 1);
  tl_plot_legend(&p, left + pw - key_w, top - 2, key_w, &mean_key, 1);

  double x_lo = g.step[0], x_hi = g.step[n - 1];
  if (x_hi <= x_lo) x_lo -= 0.5, x_hi += 0.5;
  double *x = tl_malloc((size_t)most * sizeof(double)), *y = tl_malloc((size_t)most * L * sizeof(double));
  double *mean = tl_malloc((size_t)n * sizeof(double));
  for (int s = 0; s < n; s++) {
    double sum = 0;
    for (int i = 0; i < L; i++) sum += g.loss[(size_t)s * L + i];
    mean[s] = sum / L;
  }
  /* loss: one line per layer on the ramp, first layer at the back */
  char *loss_label = tl_sprintf("training loss per layer (%s)", unit);
  tl_plot_axes a = {.x = left, .y = y_loss, .w = pw, .h = loss_h, .x_lo = x_lo, .x_hi = x_hi, .x_integer = true,
                    .x_label = "step", .y_label = loss_label};
  tl_plot_series *ser = tl_calloc((size_t)L + 1, sizeof *ser);
  char (*colors)[8] = tl_malloc((size_t)L * sizeof *colors);
  int m = 0;
  for (int i = 0; i < L; i++) {
    m = bucket(g.step, g.loss, L, i, n, most, x, y + (size_t)i * most);
    tl_plot_ramp(L > 1 ? (double)i / (L - 1) : 0, colors[i]);
    ser[i] = (tl_plot_series){.color = colors[i], .n = m, .x = x, .y = y + (size_t)i * most, .stroke = 1.3};
  }
  tl_plot_axes_fit_y(&a, ser, L);
  tl_plot_axes_draw(&p, &a);
  for (int i = 0; i < L; i++) tl_plot_series_draw(&p, &a, &ser[i]);
  double *my = tl_malloc((size_t)most * sizeof(double));
  m = bucket(g.step, mean, 1, 0, n, most, x, my);
  tl_plot_series ms = {.color = "#000", .n = m, .x = x, .y = my, .stroke = 2.5, .dash = "6 3"};
  tl_plot_series_draw(&p, &a, &ms);
  free(loss_label);

  /* learning rate and gradient norm */
  const char *labels[2] = {"learning rate", "gradient norm (L2, before clipping to 1)"};
  const double *vals[2] = {g.lr, g.gnorm}, ys[2] = {y_lr, y_gn};
  const char *cols[2] = {"#1f77b4", "#ff7f0e"};
  for (int k = 0; k < 2; k++) {
    tl_plot_axes b = {.x = left, .y = ys[k], .w = pw, .h = small_h, .x_lo = x_lo, .x_hi = x_hi, .x_integer = true,
                      .x_label = "step", .y_label = labels[k]};
    m = bucket(g.step, vals[k], 1, 0, n, most, x, my);
    tl_plot_series s = {.color = cols[k], .n = m, .x = x, .y = my, .markers = n <= 60};
    tl_plot_axes_fit_y(&b, &s, 1);
    tl_plot_axes_draw(&p, &b);
    tl_plot_series_draw(&p, &b, &s);
  }
  int rc = tl_plot_write(&p, svg_path);
  tl_plot_free(&p);
  free(my);
  free(colors);
  free(ser);
  free(mean);
  free(x);
  free(y);
  log_free(&g);
  return rc;
}

void tl_plot_train_update(const char *output) {
  char *metrics = tl_path_join(output, "metrics.jsonl"), *svg = tl_path_join(output, "train.svg");
  if (tl_plot_train(metrics, svg) != 0) {
    tl_warn("%s not drawn: %s", svg, tl_errmsg());
    tl_clear_error();
  }
  free(metrics);
  free(svg);
}
