/* The chart module (tlens/plot.h): escaping, text boxes and their overlap check,
 * colours, tick thinning on a 48-layer axis, legend wrapping, and the eval chart's
 * older entry point (tl_svg_layers) writing a page without overlapping texts, and
 * the training chart from logs written here (a resumed run's repeated steps, a
 * torn last line, 5000 steps of 48 layers), and the layer-transfer heatmap of two
 * lenses of 48 layers (heatmap48.svg, with its matrix in the layout of
 * aggregate_metrics.json beside it for check_heatmap.py).
 * The pages themselves are checked again from outside by check_svg.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/eval.h"
#include "tlens/plot.h"

static char *buf_str(tl_buf *b) {
  tl_buf_append(b, "", 1);
  return (char *)b->data;
}

static void test_escape(void) {
  struct {
    const char *in, *out;
  } cases[] = {
      {"a<b>&\"c'", "a&lt;b&gt;&amp;&quot;c&apos;"},
      {"KL(model || lens)", "KL(model || lens)"},
      {"tab\there\x01\x1f!", "tab\there!"}, /* control characters are not XML */
      {"caf\xc3\xa9", "caf\xc3\xa9"},        /* UTF-8 passes */
      {"", ""},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    tl_buf b = {0};
    tl_plot_escape(&b, cases[k].in);
    CHECKF(!strcmp(buf_str(&b), cases[k].out), "escape case %zu: '%s'", k, (char *)b.data);
    tl_buf_free(&b);
  }
}

static void test_boxes(void) {
  /* width: TL_PLOT_EM per character, a UTF-8 sequence counting once */
  CHECK(fabs(tl_plot_text_width("layer", 10) - 5 * TL_PLOT_EM * 10) < 1e-12);
  CHECK(fabs(tl_plot_text_width("caf\xc3\xa9", 10) - 4 * TL_PLOT_EM * 10) < 1e-12);
  tl_plot_box s = tl_plot_text_box(100, 50, 10, TL_PLOT_START, "abcd");
  tl_plot_box m = tl_plot_text_box(100, 50, 10, TL_PLOT_MIDDLE, "abcd");
  tl_plot_box e = tl_plot_text_box(100, 50, 10, TL_PLOT_END, "abcd");
  double w = 4 * TL_PLOT_EM * 10;
  CHECK(s.x0 == 100 && fabs(s.x1 - (100 + w)) < 1e-9);
  CHECK(fabs(m.x0 - (100 - w / 2)) < 1e-9 && fabs(m.x1 - (100 + w / 2)) < 1e-9);
  CHECK(fabs(e.x0 - (100 - w)) < 1e-9 && e.x1 == 100);
  CHECK(s.y0 < 50 && s.y1 > 50);

  tl_plot p;
  tl_plot_begin(&p, 800, 200, NULL);
  int i = -1, j = -1;
  tl_plot_text(&p, 10, 50, 12, TL_PLOT_START, "tick", NULL, false, "first");
  tl_plot_text(&p, 10, 80, 12, TL_PLOT_START, "tick", NULL, false, "below");
  CHECK(tl_plot_overlap(&p, &i, &j) == 0);
  /* touching boxes do not overlap; one pixel into the other does */
  tl_plot_box b0 = p.boxes[0];
  CHECK(tl_plot_free_at(&p, (tl_plot_box){b0.x1, b0.y0, b0.x1 + 10, b0.y1}, 0));
  CHECK(!tl_plot_free_at(&p, (tl_plot_box){b0.x1 - 1, b0.y0, b0.x1 + 10, b0.y1}, 0));
  CHECK(!tl_plot_free_at(&p, (tl_plot_box){b0.x1 + 1, b0.y0, b0.x1 + 10, b0.y1}, 2));
  tl_plot_text(&p, 30, 52, 12, TL_PLOT_START, "tick", NULL, false, "clash");
  CHECK(tl_plot_overlap(&p, &i, &j) == 1 && i == 0 && j == 2);
  tl_plot_free(&p);

  /* a long title gets smaller and then shorter, and stays on the page */
  char title[400];
  memset(title, 'x', sizeof title - 1);
  title[sizeof title - 1] = 0;
  tl_plot_begin(&p, 800, 100, title);
  CHECK(p.nboxes == 1 && p.boxes[0].x0 >= 0 && p.boxes[0].x1 <= 800);
  CHECK(strstr(buf_str(&p.svg), "...</text>") != NULL);
  tl_plot_free(&p);
}

static void test_colors(void) {
  char c[8];
  tl_plot_ramp(0, c);
  CHECK(!strcmp(c, "#440154"));
  tl_plot_ramp(1, c);
  CHECK(!strcmp(c, "#fde725"));
  tl_plot_ramp(-3, c);
  CHECK(!strcmp(c, "#440154"));
  tl_plot_ramp(NAN, c);
  CHECK(!strcmp(c, "#440154"));
  /* the ramp gets lighter from one end to the other (the sum of its channels) */
  int last = -1, ordered = 1;
  for (int k = 0; k <= 20; k++) {
    unsigned r, g, b;
    tl_plot_ramp(k / 20.0, c);
    sscanf(c, "#%02x%02x%02x", &r, &g, &b);
    int sum = (int)(r + g + b);
    if (sum < last) ordered = 0;
    last = sum;
  }
  CHECK(ordered);
  /* ten distinct categorical colours, none of them the logit lens's red */
  for (int a = 0; a < 10; a++) {
    CHECK(strcmp(tl_plot_color(a), TL_PLOT_LOGIT_COLOR) != 0);
    for (int b = a + 1; b < 10; b++) CHECK(strcmp(tl_plot_color(a), tl_plot_color(b)) != 0);
  }
  CHECK(tl_plot_color(10) == tl_plot_color(0) && tl_plot_color(-1) == tl_plot_color(9));
}

/* An axis over 48 layers (and over 10^5 steps) keeps its labels apart and on the
 * page, and labels the ends of the range. */
static void test_axes(void) {
  struct {
    double lo, hi;
    bool integer;
    double w;
    int labels; /* at least: ticks and the x label */
  } cases[] = {{-0.5, 47.5, true, 704, 5}, {-0.5, 95.5, true, 300, 4}, {1, 100000, true, 704, 4},
               {-0.03, 1.03, false, 704, 5}, {0, 1e-4, false, 704, 4}, {-0.5, 0.5, true, 704, 2}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    tl_plot p;
    tl_plot_begin(&p, 800, 400, NULL);
    tl_plot_axes a = {.x = 72, .y = 60, .w = cases[k].w, .h = 190, .x_lo = cases[k].lo, .x_hi = cases[k].hi,
                      .y_lo = 0, .y_hi = 0.0005, .x_integer = cases[k].integer, .x_label = "layer",
                      .y_label = "KL (bits/byte)"};
    tl_plot_axes_draw(&p, &a);
    int i, j;
    CHECKF(tl_plot_overlap(&p, &i, &j) == 0, "axis case %zu: texts %d and %d overlap", k, i, j);
    int xticks = 0;
    for (int t = 0; t < p.nboxes; t++) {
      CHECK(p.boxes[t].x0 >= 0 && p.boxes[t].x1 <= 800);
      if (p.boxes[t].y0 > a.y + a.h) xticks++;
    }
    CHECKF(xticks >= cases[k].labels, "axis case %zu: %d x labels", k, xticks);
    /* a layer axis labels its last layer */
    if (cases[k].integer) {
      char last[32];
      snprintf(last, sizeof last, ">%.0f</text>", floor(cases[k].hi));
      CHECKF(strstr(buf_str(&p.svg), last) != NULL, "axis case %zu: no label %s", k, last);
    }
    tl_plot_free(&p);
  }
  /* the y range holds every value with its error, from zero for positive data */
  double y[3] = {1, 2.2, 3}, err[3] = {0.5, 0.5, 0.8};
  tl_plot_series s = {.n = 3, .y = y, .err = err};
  tl_plot_axes a = {0};
  tl_plot_axes_fit_y(&a, &s, 1);
  CHECK(a.y_lo == 0 && a.y_hi >= 3.8 && a.y_hi <= 5);
  double neg[2] = {-2, 3};
  s = (tl_plot_series){.n = 2, .y = neg};
  tl_plot_axes_fit_y(&a, &s, 1);
  CHECK(a.y_lo <= -2 && a.y_hi >= 3);
  double flat[2] = {NAN, NAN};
  s = (tl_plot_series){.n = 2, .y = flat};
  tl_plot_axes_fit_y(&a, &s, 1);
  CHECK(a.y_hi > a.y_lo);
}

static void test_legend(void) {
  /* twelve long names wrap into rows within the width */
  tl_plot_series s[12];
  char names[12][40];
  for (int k = 0; k < 12; k++) {
    snprintf(names[k], sizeof names[k], "model-%d / tuned lens", k);
    s[k] = (tl_plot_series){.name = names[k], .color = tl_plot_color(k)};
  }
  tl_plot p;
  tl_plot_begin(&p, 800, 400, NULL);
  double h = tl_plot_legend(&p, 72, 40, 704, s, 12);
  CHECK(h >= 3 * 18);
  int i, j;
  CHECK(tl_plot_overlap(&p, &i, &j) == 0);
  for (int t = 0; t < p.nboxes; t++) CHECK(p.boxes[t].x1 <= 72 + 704 && p.boxes[t].y1 <= 40 + h + 4);
  tl_plot_free(&p);
  /* a colour bar over 48 layers */
  tl_plot_begin(&p, 800, 400, NULL);
  tl_plot_colorbar(&p, 72, 40, 704, "layer", 0, 47);
  CHECK(tl_plot_overlap(&p, &i, &j) == 0);
  CHECK(strstr(buf_str(&p.svg), ">47</text>") != NULL && strstr((char *)p.svg.data, ">0</text>") != NULL);
  tl_plot_free(&p);
}

/* tl_svg_layers: 48 layers, two lenses, the baseline marked */
static void test_svg_layers(const char *dir) {
  enum { L = 48 };
  double kl[2][L], ce[2][L];
  for (int i = 0; i < L; i++) {
    kl[0][i] = 5.0 * exp(-i / 10.0);
    kl[1][i] = 1.0 * exp(-i / 12.0);
    ce[0][i] = 4 + kl[0][i];
    ce[1][i] = 4 + kl[1][i];
  }
  tl_svg_series k[2] = {{"logit lens", TL_PLOT_LOGIT_COLOR, kl[0]}, {"tuned lens", "#1f77b4", kl[1]}};
  tl_svg_series c[2] = {{"logit lens", TL_PLOT_LOGIT_COLOR, ce[0]}, {"tuned lens", "#1f77b4", ce[1]}};
  char *path = tl_path_join(dir, "layers48.svg");
  CHECK(tl_svg_layers(path, "synthetic <48 layers> & \"quotes\"", L, k, 2, c, 2, 4.0, "bits/byte") == 0);
  char *text = NULL;
  size_t n = 0;
  CHECK(tl_read_file(path, &text, &n) == 0);
  if (text) {
    CHECK(strstr(text, "tuned lens") && strstr(text, "logit lens"));
    CHECK(strstr(text, "KL(model || lens) (bits/byte)") && strstr(text, "cross-entropy (bits/byte)"));
    CHECK(strstr(text, "model output 4") != NULL);
    CHECK(strstr(text, "synthetic &lt;48 layers&gt; &amp; &quot;quotes&quot;") != NULL);
  }
  free(text);
  CHECK(tl_svg_layers(path, "none", 0, k, 2, c, 2, 4.0, "bits/byte") == -1);
  free(path);
}

/* Two 48 x 48 matrices as tlens eval --layer_transfer holds them: 0 on the
 * diagonal (a lens against itself, with a rounding error below zero), growing
 * with the distance between the layers, one lens worse than the other. */
static int count(const char *text, const char *what);
static void test_heatmap(const char *dir) {
  enum { L = 48, NM = 2 };
  static double v[NM][L * L];
  const char *names[NM] = {"trained", "other"};
  tl_buf json = {0};
  tl_buf_printf(&json, "{");
  for (int k = 0; k < NM; k++) {
    tl_buf_printf(&json, "\"%s\": {\"layer_transfer\": {\"kl\": {", names[k]);
    for (int i = 0; i < L; i++) {
      tl_buf_printf(&json, "%s\"layer_%d\": {", i ? ", " : "", i);
      for (int j = 0; j < L; j++) {
        v[k][i * L + j] = i == j ? -1e-9 : (k + 1) * 0.05 * fabs((double)(i - j)) / (1 + 0.01 * j);
        tl_buf_printf(&json, "%s\"layer_%d\": %.17g", j ? ", " : "", j, v[k][i * L + j]);
      }
      tl_buf_printf(&json, "}");
    }
    tl_buf_printf(&json, "}}}, ");
  }
  tl_buf_printf(&json, "\"units\": \"bits_per_byte\"}\n");
  char *jpath = tl_path_join(dir, "heatmap48.json");
  CHECK(tl_write_file_atomic(jpath, json.data, json.len) == 0);
  tl_plot_matrix m[NM] = {{names[0], v[0]}, {names[1], v[1]}};
  tl_plot_heatmap h = {.title = "layer transfer: synthetic, 48 layers", .n = L, .row_label = "lens of layer i",
                       .col_label = "hidden state of layer j", .row_name = "lens layer",
                       .col_name = "hidden state layer", .value_label = "KL(own lens || lens of layer i) (bits/byte)",
                       .m = m, .nm = NM, .note = "synthetic matrices"};
  char *path = tl_path_join(dir, "heatmap48.svg");
  CHECK(tl_plot_heatmap_write(path, &h) == 0);
  char *text = NULL;
  size_t n = 0;
  CHECK(tl_read_file(path, &text, &n) == 0);
  if (text) {
    CHECKF(count(text, "<rect class=\"cell\"") == NM * L * L, "%d cells", count(text, "<rect class=\"cell\""));
    CHECK(strstr(text, "<title>other, lens layer 47, hidden state layer 0: 4.7</title>") != NULL);
    CHECK(strstr(text, "<title>trained, lens layer 3, hidden state layer 3: -1e-09</title>") != NULL);
    CHECK(count(text, "<linearGradient") == 1);
  }
  free(text);
  h.nm = 0;
  CHECK(tl_plot_heatmap_write(path, &h) == -1);
  tl_buf_free(&json);
  free(jpath);
  free(path);
}

/* metrics.jsonl as training writes it: steps 1..n of L layers, loss_bpb when bpb */
static void write_log(const char *path, int from, int to, int L, bool bpb, const char *tail) {
  FILE *f = fopen(path, from == 1 ? "w" : "a");
  for (int s = from; s <= to; s++) {
    fprintf(f, "{\"step\": %d, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": 100.0, \"step_s\": 0.5, \"loss_nats\": [", s,
            0.1 * (s < 50 ? s / 50.0 : 1.0), 1.0 / s);
    for (int i = 0; i < L; i++) fprintf(f, "%s%.6g", i ? ", " : "", (L - i) * exp(-s / 100.0));
    fprintf(f, "]");
    if (bpb) {
      fprintf(f, ", \"loss_bpb\": [");
      for (int i = 0; i < L; i++) fprintf(f, "%s%.6g", i ? ", " : "", 0.3 * (L - i) * exp(-s / 100.0));
      fprintf(f, "]");
    }
    fprintf(f, "}\n");
  }
  if (tail) fputs(tail, f);
  fclose(f);
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
  return n;
}

static void test_train_chart(const char *dir) {
  char *log = tl_path_join(dir, "metrics.jsonl"), *svg = tl_path_join(dir, "train48.svg");
  /* 300 steps, then a rerun from step 201 (resumed from an older checkpoint)
   * to 320, then a line torn by a crash */
  write_log(log, 1, 300, 48, true, NULL);
  write_log(log, 201, 320, 48, true, "{\"step\": 321, \"lr\": 0.1, \"grad");
  CHECK(tl_plot_train(log, svg) == 0);
  char *text = NULL;
  size_t n = 0;
  CHECK(tl_read_file(svg, &text, &n) == 0);
  if (text) {
    CHECK(strstr(text, "training loss per layer (bits/byte)") && strstr(text, "learning rate"));
    CHECK(strstr(text, "steps 1 to 320") != NULL);
    CHECK(strstr(text, "mean over layers") != NULL);
    /* one line per layer: the ramp's two ends among the strokes */
    CHECK(count(text, "stroke=\"#440154\"") == 1 && count(text, "stroke=\"#fde725\"") == 1);
    CHECK(count(text, "stroke-width=\"1.3\" stroke-linejoin") == 48);
  }
  free(text);
  /* nats when bytes are unknown; 5000 steps stay a small page */
  write_log(log, 1, 5000, 48, false, NULL);
  char *big = tl_path_join(dir, "train5000.svg");
  CHECK(tl_plot_train(log, big) == 0);
  CHECK(tl_read_file(big, &text, &n) == 0);
  if (text) {
    CHECK(strstr(text, "training loss per layer (nats/token)") != NULL);
    CHECK(n < 2500000);
  }
  free(text);
  /* nothing to draw: an error, and the update only warns */
  FILE *f = fopen(log, "w");
  fputs("not json\n", f);
  fclose(f);
  CHECK(tl_plot_train(log, svg) == -1 && strstr(tl_errmsg(), "no step") != NULL);
  tl_plot_train_update(dir);
  CHECK(tl_errmsg()[0] == 0);
  char *missing = tl_path_join(dir, "absent/metrics.jsonl");
  CHECK(tl_plot_train(missing, svg) == -1);
  free(missing);
  free(big);
  free(log);
  free(svg);
}

int main(void) {
  const char *work = getenv("WORK");
  if (!work) work = ".";
  tl_mkdirs(work);
  test_escape();
  test_boxes();
  test_colors();
  test_axes();
  test_legend();
  test_svg_layers(work);
  test_train_chart(work);
  test_heatmap(work);
  return tl_test_finish("test_plot");
}
