/* The comparison of evaluation runs: reading them, the table as Markdown and CSV,
 * and its chart (see tlens/compare.h). */
#include "tlens/compare.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/plot.h"

static const char *metric_key[TL_CMP_NMET] = {"kl", "ce", "entropy"};
static const char *metric_title[TL_CMP_NMET] = {"KL(model || lens)", "cross-entropy", "entropy of the lens"};

static size_t at(const tl_compare_run *r, int lens, int m, int layer) {
  return ((size_t)lens * TL_CMP_NMET + (size_t)m) * (size_t)r->layers + (size_t)layer;
}

/* v[metric]["layer_<i>"] for i < layers, all numbers; -1 names what is missing */
static int read_layers(const cJSON *lens, const char *lname, int m, int layers, double *out, const char *path) {
  const cJSON *mo = cJSON_GetObjectItemCaseSensitive(lens, metric_key[m]);
  char key[32];
  for (int i = 0; i < layers; i++) {
    snprintf(key, sizeof key, "layer_%d", i);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(mo, key);
    if (!cJSON_IsNumber(v)) return tl_fail("%s: %s.%s.%s is not a number", path, lname, metric_key[m], key);
    out[i] = v->valuedouble;
  }
  if (cJSON_GetArraySize(mo) != layers)
    return tl_fail("%s: %s.%s has %d entries, %s.kl %d layers", path, lname, metric_key[m], cJSON_GetArraySize(mo),
                   lname, layers);
  return 0;
}

static bool is_lens(const cJSON *o) {
  if (!cJSON_IsObject(o)) return false;
  for (int m = 0; m < TL_CMP_NMET; m++)
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, metric_key[m]))) return false;
  return true;
}

static double number_at(const cJSON *root, const char *a, const char *b, const char *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, a), b), c);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Standard errors of each mean from batches.jsonl (a JSON list of the aggregate's
 * shape); left NaN when the file is absent, malformed or holds one batch. */
static void read_batches(tl_compare_run *r) {
  size_t n = (size_t)r->nlens * TL_CMP_NMET * r->layers;
  for (size_t k = 0; k < n; k++) r->se[k] = NAN;
  char *path = tl_path_join(r->dir, "batches.jsonl"), *text = NULL;
  size_t len = 0;
  cJSON *list = NULL;
  if (tl_file_exists(path) && tl_read_file(path, &text, &len) == 0) list = cJSON_Parse(text);
  free(text);
  free(path);
  tl_clear_error();
  int nb = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
  double *sum = tl_calloc(n, sizeof(double)), *sq = tl_calloc(n, sizeof(double)), *v = tl_malloc((size_t)r->layers * sizeof(double));
  bool ok = nb >= 2;
  const cJSON *b;
  cJSON_ArrayForEach(b, list) {
    for (int l = 0; l < r->nlens && ok; l++)
      for (int m = 0; m < TL_CMP_NMET && ok; m++) {
        if (read_layers(cJSON_GetObjectItemCaseSensitive(b, r->lens[l]), r->lens[l], m, r->layers, v, "batches") != 0) {
          ok = false;
          break;
        }
        for (int i = 0; i < r->layers; i++) {
          double d = v[i] - r->mean[at(r, l, m, i)]; /* about the mean: no cancellation */
          sum[at(r, l, m, i)] += d;
          sq[at(r, l, m, i)] += d * d;
        }
      }
    if (!ok) break;
  }
  tl_clear_error();
  if (ok)
    for (size_t k = 0; k < n; k++) {
      double var = (sq[k] - sum[k] * sum[k] / nb) / (nb - 1);
      r->se[k] = sqrt(var > 0 ? var : 0) / sqrt((double)nb);
    }
  free(sum);
  free(sq);
  free(v);
  cJSON_Delete(list);
}

int tl_compare_load(tl_compare_run *r, const char *arg) {
  memset(r, 0, sizeof *r);
  r->base_ce = r->base_entropy = NAN;
  const char *eq = strchr(arg, '=');
  if (!tl_is_dir(arg) && eq && eq > arg) {
    r->label = tl_sprintf("%.*s", (int)(eq - arg), arg);
    r->dir = tl_strdup(eq + 1);
  } else {
    r->dir = tl_strdup(arg);
    size_t n = strlen(r->dir);
    while (n > 1 && r->dir[n - 1] == '/') r->dir[--n] = 0; /* "runs/a/" is named "a" */
    r->label = tl_strdup(tl_basename(r->dir));
  }
  char *path = tl_path_join(r->dir, "aggregate_metrics.json"), *text = NULL;
  size_t len = 0;
  cJSON *root = NULL;
  int rc = 0;
  if (!tl_is_dir(r->dir)) rc = tl_fail("%s: not a folder (an output folder of tlens eval)", r->dir);
  else if (tl_read_file(path, &text, &len) != 0) rc = -1;
  else if (!(root = cJSON_Parse(text))) rc = tl_fail("%s: not valid JSON", path);
  else if (!cJSON_IsObject(root)) rc = tl_fail("%s: not a JSON object", path);
  free(text);
  const cJSON *o;
  if (rc == 0) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "units");
    if (cJSON_IsString(u)) r->units = tl_strdup(u->valuestring);
    cJSON_ArrayForEach(o, root) if (is_lens(o)) r->nlens++;
    if (r->nlens == 0) rc = tl_fail("%s: no lens (an object with kl, ce and entropy per layer)", path);
  }
  if (rc == 0) {
    r->lens = tl_calloc((size_t)r->nlens, sizeof *r->lens);
    int l = 0;
    cJSON_ArrayForEach(o, root) if (is_lens(o)) r->lens[l++] = tl_strdup(o->string);
    r->layers = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, r->lens[0]), "kl"));
    if (r->layers < 1) rc = tl_fail("%s: %s.kl holds no layer", path, r->lens[0]);
  }
  if (rc == 0) {
    r->mean = tl_malloc((size_t)r->nlens * TL_CMP_NMET * r->layers * sizeof(double));
    r->se = tl_malloc((size_t)r->nlens * TL_CMP_NMET * r->layers * sizeof(double));
    for (int l = 0; l < r->nlens && rc == 0; l++)
      for (int m = 0; m < TL_CMP_NMET && rc == 0; m++)
        rc = read_layers(cJSON_GetObjectItemCaseSensitive(root, r->lens[l]), r->lens[l], m, r->layers,
                         r->mean + at(r, l, m, 0), path);
  }
  if (rc == 0) {
    r->base_ce = number_at(root, "baseline", "ce", "final");
    r->base_entropy = number_at(root, "baseline", "entropy", "final");
    read_batches(r);
  }
  cJSON_Delete(root);
  free(path);
  if (rc != 0) tl_compare_run_free(r);
  return rc;
}

void tl_compare_run_free(tl_compare_run *r) {
  for (int l = 0; l < r->nlens && r->lens; l++) free(r->lens[l]);
  free(r->lens);
  free(r->label);
  free(r->dir);
  free(r->units);
  free(r->mean);
  free(r->se);
  memset(r, 0, sizeof *r);
}

int tl_compare_layer(int layers, int k, int K) {
  if (K <= 0) return 0;
  int i = (int)lround((double)k * layers / K);
  return i < layers ? i : layers - 1;
}

/* ---- the table's shape, shared by Markdown, CSV and chart ---- */
typedef struct {
  int K;         /* columns */
  bool same;     /* every run has K layers: columns are layers */
  const char *units; /* the stated unit, or NULL */
} shape;

static int table_shape(const tl_compare_run *runs, int n, shape *s) {
  if (n < 1) return tl_fail("no run to compare");
  s->K = runs[0].layers;
  s->same = true;
  s->units = NULL;
  for (int r = 0; r < n; r++) {
    if (runs[r].layers != s->K) s->same = false;
    if (runs[r].layers < s->K) s->K = runs[r].layers;
    if (!runs[r].units) continue;
    if (s->units && strcmp(s->units, runs[r].units) != 0)
      return tl_fail("%s is in %s but %s in %s: evaluate them on data of the same kind", runs[r].label, runs[r].units,
                     runs[0].label, s->units);
    s->units = runs[r].units;
  }
  return 0;
}

static const char *unit_short(const char *units) {
  if (!units) return "units not stated";
  if (!strcmp(units, "bits_per_byte")) return "bits/byte";
  if (!strcmp(units, "nats_per_token")) return "nats/token";
  return units;
}

static double row_mean(const tl_compare_run *r, int l, int m) {
  double s = 0;
  for (int i = 0; i < r->layers; i++) s += r->mean[at(r, l, m, i)];
  return s / r->layers;
}

static void md_cell(tl_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '|') tl_buf_printf(b, "\\|");
    else if (*s != '\n') tl_buf_append(b, s, 1);
  }
}

/* a number cell: fmt of v, or `missing` for a value the run does not have */
static void number_cell(tl_buf *b, const char *fmt, double v, const char *missing) {
  if (isfinite(v)) tl_buf_printf(b, fmt, v);
  else tl_buf_printf(b, "%s", missing);
}

static void md_number(tl_buf *b, double v) { number_cell(b, " %.4g |", v, " - |"); }

int tl_compare_markdown(const tl_compare_run *runs, int n, char **out) {
  shape s;
  TL_TRY(table_shape(runs, n, &s));
  const char *u = unit_short(s.units);
  tl_buf b = {0};
  tl_buf_printf(&b, "# Lens comparison (%s)\n\n", u);
  for (int r = 0; r < n; r++) {
    tl_buf_printf(&b, "%s", r ? ", " : "Runs: ");
    md_cell(&b, runs[r].label);
    tl_buf_printf(&b, " (%d layers, ", runs[r].layers);
    md_cell(&b, runs[r].dir);
    tl_buf_printf(&b, ")");
  }
  if (s.same)
    tl_buf_printf(&b, ".\nColumns: layers (0 = the embeddings); mean: over all layers.\n");
  else
    tl_buf_printf(&b, ".\nColumns: relative depth k/%d; a run of L layers shows its layer round(k*L/%d) (0 = the "
                      "embeddings); mean: over all of its layers.\n", s.K, s.K);
  /* a table per metric: a row per layer (or depth) and the mean, a column per run and lens */
  for (int m = 0; m < TL_CMP_NMET; m++) {
    tl_buf_printf(&b, "\n## %s (%s)\n\n| %s |", metric_title[m], u, s.same ? "layer" : "depth");
    for (int r = 0; r < n; r++)
      for (int l = 0; l < runs[r].nlens; l++) {
        tl_buf_printf(&b, " ");
        md_cell(&b, runs[r].label);
        tl_buf_printf(&b, ": ");
        md_cell(&b, runs[r].lens[l]);
        tl_buf_printf(&b, " |");
      }
    tl_buf_printf(&b, "\n|---:|");
    for (int r = 0; r < n; r++)
      for (int l = 0; l < runs[r].nlens; l++) tl_buf_printf(&b, "---:|");
    for (int k = 0; k <= s.K; k++) {
      if (k == s.K) tl_buf_printf(&b, "\n| mean |");
      else if (s.same) tl_buf_printf(&b, "\n| %d |", k);
      else tl_buf_printf(&b, "\n| %.3f |", (double)k / s.K);
      for (int r = 0; r < n; r++)
        for (int l = 0; l < runs[r].nlens; l++)
          md_number(&b, k == s.K ? row_mean(&runs[r], l, m)
                                 : runs[r].mean[at(&runs[r], l, m, tl_compare_layer(runs[r].layers, k, s.K))]);
    }
    tl_buf_printf(&b, "\n");
  }
  tl_buf_printf(&b, "\n## The model's own (%s)\n\n| run | cross-entropy | entropy |\n|---|---:|---:|\n", u);
  for (int r = 0; r < n; r++) {
    tl_buf_printf(&b, "| ");
    md_cell(&b, runs[r].label);
    tl_buf_printf(&b, " |");
    md_number(&b, runs[r].base_ce);
    md_number(&b, runs[r].base_entropy);
    tl_buf_printf(&b, "\n");
  }
  tl_buf_append(&b, "", 1);
  *out = (char *)b.data;
  return 0;
}

/* a CSV field, quoted when it holds a comma, a quote or a line break */
static void csv_field(tl_buf *b, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    tl_buf_printf(b, "%s", s);
    return;
  }
  tl_buf_printf(b, "\"");
  for (; *s; s++) {
    if (*s == '"') tl_buf_printf(b, "\"");
    tl_buf_append(b, s, 1);
  }
  tl_buf_printf(b, "\"");
}

static void csv_number(tl_buf *b, double v) { number_cell(b, ",%.17g", v, ","); }

int tl_compare_csv(const tl_compare_run *runs, int n, char **out) {
  shape s;
  TL_TRY(table_shape(runs, n, &s));
  const char *units = s.units ? s.units : "";
  tl_buf b = {0};
  tl_buf_printf(&b, "run,lens,metric,units,layers");
  for (int k = 0; k < s.K; k++) {
    if (s.same) tl_buf_printf(&b, ",layer_%d", k);
    else tl_buf_printf(&b, ",depth_%.4f", (double)k / s.K);
  }
  tl_buf_printf(&b, ",mean\n");
  for (int r = 0; r < n; r++) {
    for (int l = 0; l < runs[r].nlens; l++)
      for (int m = 0; m < TL_CMP_NMET; m++) {
        csv_field(&b, runs[r].label);
        tl_buf_printf(&b, ",");
        csv_field(&b, runs[r].lens[l]);
        tl_buf_printf(&b, ",%s,%s,%d", metric_key[m], units, runs[r].layers);
        for (int k = 0; k < s.K; k++) csv_number(&b, runs[r].mean[at(&runs[r], l, m, tl_compare_layer(runs[r].layers, k, s.K))]);
        csv_number(&b, row_mean(&runs[r], l, m));
        tl_buf_printf(&b, "\n");
      }
    /* the model's own values: lens "baseline", in the mean column */
    for (int m = TL_CMP_CE; m <= TL_CMP_ENT; m++) {
      csv_field(&b, runs[r].label);
      tl_buf_printf(&b, ",baseline,%s,%s,%d", metric_key[m], units, runs[r].layers);
      for (int k = 0; k < s.K; k++) tl_buf_printf(&b, ",");
      csv_number(&b, m == TL_CMP_CE ? runs[r].base_ce : runs[r].base_entropy);
      tl_buf_printf(&b, "\n");
    }
  }
  tl_buf_append(&b, "", 1);
  *out = (char *)b.data;
  return 0;
}

/* The lens's line style: the logit lens dashed, the others solid, dotted, ... */
static const char *lens_dash(const tl_compare_run *r, int l) {
  if (!strcmp(r->lens[l], "logit")) return "6 3";
  static const char *d[] = {NULL, "2 2", "8 2 2 2"};
  int j = 0;
  for (int k = 0; k < l; k++)
    if (strcmp(r->lens[k], "logit") != 0) j++;
  return d[j % 3];
}

static const char *lens_title(const char *name) {
  return !strcmp(name, "logit") ? "logit lens" : !strcmp(name, "tuned") ? "tuned lens" : name;
}

int tl_compare_svg(const tl_compare_run *runs, int n, const char *path) {
  shape s;
  TL_TRY(table_shape(runs, n, &s));
  int nc = 0;
  size_t vals = 0;
  for (int r = 0; r < n; r++) {
    nc += runs[r].nlens;
    vals += (size_t)runs[r].nlens * TL_CMP_NMET * runs[r].layers;
  }
  tl_plot_curve *cv = tl_calloc((size_t)nc, sizeof *cv);
  char **names = tl_calloc((size_t)nc, sizeof *names);
  double *err = tl_malloc(vals * sizeof(double)), *depth = NULL;
  size_t depths = 0, e = 0;
  for (int r = 0; r < n; r++) depths += (size_t)runs[r].layers;
  if (!s.same) depth = tl_malloc(depths * sizeof(double));
  int c = 0, tuned = 0;
  size_t d0 = 0;
  for (int r = 0; r < n; r++) {
    const tl_compare_run *run = &runs[r];
    if (depth)
      for (int i = 0; i < run->layers; i++) depth[d0 + i] = (double)i / run->layers;
    for (int l = 0; l < run->nlens; l++, c++) {
      bool logit = !strcmp(run->lens[l], "logit");
      /* one run: a colour per lens; several: a colour per run, a dash per lens */
      names[c] = n == 1 ? tl_strdup(lens_title(run->lens[l])) : tl_sprintf("%s: %s", run->label, lens_title(run->lens[l]));
      cv[c] = (tl_plot_curve){.name = names[c], .n = run->layers, .x = depth ? depth + d0 : NULL};
      if (n == 1) cv[c].color = logit ? TL_PLOT_LOGIT_COLOR : tl_plot_color(tuned++);
      else {
        cv[c].color = tl_plot_color(r);
        cv[c].dash = lens_dash(run, l);
      }
      for (int m = 0; m < TL_CMP_NMET; m++) {
        cv[c].y[m] = run->mean + at(run, l, m, 0);
        for (int i = 0; i < run->layers; i++) err[e + i] = 2 * run->se[at(run, l, m, i)];
        cv[c].err[m] = err + e;
        e += (size_t)run->layers;
      }
    }
    d0 += (size_t)run->layers;
  }
  const char *u = unit_short(s.units);
  char *panel[TL_CMP_NMET];
  for (int m = 0; m < TL_CMP_NMET; m++) panel[m] = tl_sprintf("%s (%s)", metric_title[m], u);
  tl_buf title = {0};
  tl_buf_printf(&title, "lens comparison:");
  for (int r = 0; r < n; r++) tl_buf_printf(&title, "%s %s", r ? "," : "", runs[r].label);
  tl_buf_append(&title, "", 1);
  bool one = n == 1;
  tl_plot_panels chart = {
      .title = (char *)title.data,
      .x_label = s.same ? "layer" : "relative depth (layer / layers)",
      .x_layers = s.same,
      .bars = false,
      .npanels = TL_CMP_NMET,
      .panel = {panel[0], panel[1], panel[2]},
      .baseline = {NAN, one ? runs[0].base_ce : NAN, one ? runs[0].base_entropy : NAN},
      .baseline_label = {NULL, "model output", "model output"},
      .curves = cv,
      .ncurves = nc,
      .note = "bands: \u00b1 2 standard errors of the mean over batches (where batches.jsonl is there)"};
  int rc = tl_plot_panels_write(path, &chart);
  for (int m = 0; m < TL_CMP_NMET; m++) free(panel[m]);
  for (int k = 0; k < nc; k++) free(names[k]);
  tl_buf_free(&title);
  free(names);
  free(cv);
  free(err);
  free(depth);
  return rc;
}
