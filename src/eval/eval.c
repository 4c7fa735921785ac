/* tlens eval: per-layer metrics of the logit lens and a tuned lens (see tlens/eval.h). */
#include "tlens/eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlens/core.h"
#include "tlens/data.h"
#include "tlens/dist.h"
#include "tlens/export.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/plot.h"
#include "tlens/run.h"

void tl_eval_cfg_default(tl_eval_cfg *c) {
  memset(c, 0, sizeof *c);
  tl_run_cfg_default(&c->run);
  c->logit = true;
  c->seed = 42;
  c->token_shift = 1;
}

void tl_eval_cfg_free(tl_eval_cfg *c) {
  tl_run_cfg_free(&c->run);
  free(c->lens);
  c->lens = NULL;
}

enum { M_CE = 0, M_ENT = 1, M_KL = 2, NMET = 3 };
static const char *met_names[NMET] = {"ce", "entropy", "kl"};

/* The -l arguments: "DIR" or "NAME=DIR" (NAME without '/', and DIR not itself an
 * existing path holding '='), one per line of the option's value. With one lens
 * its name is "tuned", the reference's key; with several, NAME or the folder's
 * base name, which must differ from each other and from the file's other keys. */
typedef struct {
  int n;
  char **name, **dir;
} lens_specs;

static void lens_specs_free(lens_specs *ls) {
  for (int k = 0; k < ls->n; k++) {
    free(ls->name[k]);
    free(ls->dir[k]);
  }
  free(ls->name);
  free(ls->dir);
  memset(ls, 0, sizeof *ls);
}

static char *dup_n(const char *s, size_t n) {
  char *r = tl_malloc(n + 1);
  memcpy(r, s, n);
  r[n] = 0;
  return r;
}

static int lens_specs_parse(const char *list, lens_specs *ls) {
  memset(ls, 0, sizeof *ls);
  if (!list) return 0;
  int cap = 1;
  for (const char *q = list; *q; q++) cap += *q == '\n';
  ls->name = tl_calloc((size_t)cap, sizeof(char *));
  ls->dir = tl_calloc((size_t)cap, sizeof(char *));
  for (const char *q = list; *q;) {
    const char *end = strchr(q, '\n');
    size_t len = end ? (size_t)(end - q) : strlen(q);
    char *spec = dup_n(q, len);
    q += len + (end != NULL);
    const char *eq = strchr(spec, '=');
    bool named = eq && eq > spec && !memchr(spec, '/', (size_t)(eq - spec)) && access(spec, F_OK) != 0;
    int k = ls->n++;
    ls->dir[k] = tl_strdup(named ? eq + 1 : spec);
    ls->name[k] = named ? dup_n(spec, (size_t)(eq - spec)) : tl_strdup(tl_basename(spec));
    free(spec);
    if (!*ls->dir[k]) return tl_fail("--lens_name '%s': expected DIR or NAME=DIR", ls->name[k]);
  }
  if (ls->n == 1) {
    free(ls->name[0]);
    ls->name[0] = tl_strdup("tuned");
    return 0;
  }
  for (int k = 0; k < ls->n; k++) {
    const char *nm = ls->name[k];
    if (!*nm || !strcmp(nm, "logit") || !strcmp(nm, "baseline") || !strcmp(nm, "units"))
      return tl_fail("--lens_name %s: the name '%s' is taken by the output's other keys: name it with -l NAME=%s", ls->dir[k],
                     nm, ls->dir[k]);
    for (int m = 0; m < k; m++)
      if (!strcmp(ls->name[m], nm))
        return tl_fail("--lens_name: %s and %s are both named '%s': name them with -l NAME=DIR", ls->dir[m], ls->dir[k],
                       nm);
  }
  return 0;
}

typedef struct {
  const tl_eval_cfg *c;
  tl_run *run;    /* ranks, model, unembedding, tokenizer, dataset (tlens/run.h) */
  tl_lens_ws *ws; /* run->u prepared once for the fp32 lens GEMMs */
  double nats_to_bpb; /* run's, or 1 (metrics in nats per token) when unknown */
  bool in_bpb;        /* the metrics are in bits per byte (the ratio is known) */
  lens_specs specs; /* the -l lenses: names (the files' keys) and folders */
  tl_lens *lenses;  /* [specs.n], loaded */
  int nloaded;
  int ntypes;          /* lenses evaluated: the logit lens and/or the -l ones */
  const char **types;  /* [ntypes] their keys in the files: "logit", "tuned" or the -l names */
  const tl_lens **lens_of; /* [ntypes]; NULL: the logit lens */
  int L, B, T, V;
  int64_t nbatches;
  /* per batch: [type][metric][layer], baseline ce/entropy, transfer [type][2][j][i] */
  double *batch_vals; /* nbatches * per_batch */
  size_t per_batch;
  float *prob_sum; /* logit stats: [type][L][V] + final [V] */
  double prob_count;
} tl_eval;

static size_t idx_metric(const tl_eval *e, int type, int m, int layer) {
  return ((size_t)type * NMET + (size_t)m) * (size_t)e->L + (size_t)layer;
}
static size_t idx_baseline(const tl_eval *e, int m) { return (size_t)e->ntypes * NMET * e->L + (size_t)m; }
static size_t idx_transfer(const tl_eval *e, int type, int m, int j, int i) {
  return (size_t)e->ntypes * NMET * e->L + 2 + (((size_t)type * 2 + (size_t)m) * e->L + (size_t)j) * e->L + (size_t)i;
}

/* One batch: every stream of every lens type with tl_lens_eval_all, which makes
 * the model's distribution from its last hidden state a chunk at a time (no
 * [B,T,V] logits); the baseline comes with the first type. Layer transfer
 * compares translator j on stream i with the lens's own prediction at stream
 * i, held whole in scratch [B,T,V]. */
static int eval_batch(tl_eval *e, const int32_t *ids, float *hidden, float *scratch, double *out) {
  const tl_eval_cfg *c = e->c;
  int L = e->L, B = e->B, T = e->T, d = e->run->mc.d_model, V = e->V;
  int shift = (int)c->token_shift;
  TL_TRY(tl_model_forward(e->run->model, ids, B, T, hidden, NULL));
  size_t stride = (size_t)B * T * d;
  tl_lens_eval_out *o = tl_malloc((size_t)L * sizeof *o), f;
  float *fps = e->prob_sum ? e->prob_sum + (size_t)e->ntypes * L * V : NULL;
  int rc = 0;
  for (int t = 0; t < e->ntypes && !rc; t++) {
    const tl_lens *lens = e->lens_of[t];
    float *ps = e->prob_sum ? e->prob_sum + (size_t)t * L * V : NULL;
    rc = tl_lens_eval_all(lens, L, &e->run->u, hidden, ids, B, T, shift, 0, o, t == 0 ? &f : NULL, ps,
                          t == 0 ? fps : NULL, e->ws);
    for (int i = 0; i < L && !rc; i++) {
      out[idx_metric(e, t, M_CE, i)] = o[i].ce_sum / (double)o[i].n_ce;
      out[idx_metric(e, t, M_ENT, i)] = o[i].entropy_sum / (double)o[i].n_all;
      out[idx_metric(e, t, M_KL, i)] = o[i].kl_sum / (double)o[i].n_all;
      if (c->layer_transfer) {
        const float *h = hidden + (size_t)i * stride;
        rc = tl_lens_logits(lens, &e->run->u, i, h, B * T, scratch, e->ws);
        for (int j = 0; j < L && !rc; j++) {
          tl_lens_eval_out tr;
          rc = tl_lens_eval(lens, j, &e->run->u, h, scratch, ids, B, T, shift, 0, &tr, NULL, e->ws);
          out[idx_transfer(e, t, 0, j, i)] = tr.ce_sum / (double)tr.n_ce;
          out[idx_transfer(e, t, 1, j, i)] = tr.kl_sum / (double)tr.n_all;
        }
      }
    }
  }
  free(o);
  TL_TRY(rc);
  out[idx_baseline(e, M_CE)] = f.ce_sum / (double)f.n_ce;
  out[idx_baseline(e, M_ENT)] = f.entropy_sum / (double)f.n_all;
  e->prob_count += (double)B * T;
  return 0;
}

/* {type: {metric: {layer_i: v}, [layer_transfer]}, baseline: {...}} from one value vector */
static cJSON *metrics_json(const tl_eval *e, const double *v, double scale) {
  cJSON *root = cJSON_CreateObject();
  char key[32], key2[32];
  for (int t = 0; t < e->ntypes; t++) {
    cJSON *ty = cJSON_AddObjectToObject(root, e->types[t]);
    for (int m = 0; m < NMET; m++) {
      cJSON *mm = cJSON_AddObjectToObject(ty, met_names[m]);
      for (int i = 0; i < e->L; i++) {
        snprintf(key, sizeof key, "layer_%d", i);
        cJSON_AddNumberToObject(mm, key, v[idx_metric(e, t, m, i)] * scale);
      }
    }
    if (e->c->layer_transfer) {
      cJSON *lt = cJSON_AddObjectToObject(ty, "layer_transfer");
      for (int m = 0; m < 2; m++) {
        cJSON *mm = cJSON_AddObjectToObject(lt, m == 0 ? "ce" : "kl");
        for (int j = 0; j < e->L; j++) {
          snprintf(key, sizeof key, "layer_%d", j);
          cJSON *tj = cJSON_AddObjectToObject(mm, key);
          for (int i = 0; i < e->L; i++) {
            snprintf(key2, sizeof key2, "layer_%d", i);
            cJSON_AddNumberToObject(tj, key2, v[idx_transfer(e, t, m, j, i)] * scale);
          }
        }
      }
    }
  }
  cJSON *b = cJSON_AddObjectToObject(root, "baseline");
  cJSON_AddNumberToObject(cJSON_AddObjectToObject(b, "ce"), "final", v[idx_baseline(e, M_CE)] * scale);
  cJSON_AddNumberToObject(cJSON_AddObjectToObject(b, "entropy"), "final", v[idx_baseline(e, M_ENT)] * scale);
  /* what the numbers are in: bits per UTF-8 byte of text, or nats per token where
   * the bytes are unknown (pre-tokenized data without a nats_to_bpb ratio) */
  cJSON_AddStringToObject(root, "units", e->in_bpb ? "bits_per_byte" : "nats_per_token");
  return root;
}

static int write_json(const char *dir, const char *name, cJSON *j) {
  char *text = cJSON_PrintUnformatted(j);
  char *path = tl_path_join(dir, name);
  size_t n = strlen(text);
  text = tl_realloc(text, n + 2);
  text[n] = '\n';
  text[n + 1] = 0;
  int rc = tl_write_file_atomic(path, text, n + 1);
  free(path);
  free(text);
  return rc;
}

/* layer_transfer.svg: the KL matrix of every tuned lens (the logit lens's is 0
 * throughout, so it is drawn only when it is the only lens), row i the
 * translator of layer i, column j the hidden state of layer j: the file's
 * ["layer_transfer"]["kl"]["layer_<i>"]["layer_<j>"]. */
static int write_transfer_chart(const tl_eval *e, const double *agg) {
  int L = e->L, nm = 0;
  tl_plot_matrix *m = tl_calloc((size_t)e->ntypes, sizeof *m);
  double *v = tl_malloc((size_t)e->ntypes * L * L * sizeof(double));
  for (int t = 0; t < e->ntypes; t++) {
    if (!e->lens_of[t] && e->ntypes > 1) continue;
    double *mv = v + (size_t)nm * L * L;
    for (int i = 0; i < L; i++)
      for (int j = 0; j < L; j++) mv[(size_t)i * L + j] = agg[idx_transfer(e, t, 1, i, j)] * e->nats_to_bpb;
    m[nm++] = (tl_plot_matrix){.name = e->ntypes > 2 ? e->types[t] : NULL, .v = mv};
  }
  const char *unit = e->in_bpb ? "bits/byte" : "nats/token";
  char *path = tl_path_join(e->c->run.output, "layer_transfer.svg");
  char *title = tl_sprintf("layer transfer: %s on %s", tl_basename(e->c->run.model), tl_basename(e->c->run.data));
  char *key = tl_sprintf("KL(own lens || lens of layer i) (%s)", unit);
  char *note = tl_sprintf("cell (i, j): KL from layer j's own lens to lens i on layer j's hidden state; %lld batches",
                          (long long)e->nbatches);
  tl_plot_heatmap h = {.title = title, .n = L, .row_label = "lens of layer i", .col_label = "hidden state of layer j",
                       .row_name = "lens layer", .col_name = "hidden state layer", .value_label = key, .m = m, .nm = nm,
                       .note = note};
  int rc = tl_plot_heatmap_write(path, &h);
  char *texts[] = {path, title, key, note};
  for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) free(texts[k]);
  free(v);
  free(m);
  return rc;
}

static int write_outputs(tl_eval *e) {
  const tl_eval_cfg *c = e->c;
  double scale = e->nats_to_bpb;
  size_t P = e->per_batch;
  double *agg = tl_calloc(P, sizeof(double));
  for (int64_t b = 0; b < e->nbatches; b++)
    for (size_t k = 0; k < P; k++) agg[k] += e->batch_vals[(size_t)b * P + k] / (double)e->nbatches;
  cJSON *a = metrics_json(e, agg, scale);
  int rc = write_json(c->run.output, "aggregate_metrics.json", a);
  cJSON_Delete(a);
  cJSON *list = cJSON_CreateArray();
  for (int64_t b = 0; b < e->nbatches && rc == 0; b++)
    cJSON_AddItemToArray(list, metrics_json(e, e->batch_vals + (size_t)b * P, scale));
  if (rc == 0) rc = write_json(c->run.output, "batches.jsonl", list);
  cJSON_Delete(list);
  if (rc == 0 && e->prob_sum) {
    cJSON *ls = cJSON_CreateObject();
    char key[32];
    double inv = 1.0 / e->prob_count;
    for (int t = 0; t <= e->ntypes; t++) {
      const char *tname = t < e->ntypes ? e->types[t] : "baseline";
      cJSON *st = cJSON_AddObjectToObject(cJSON_AddObjectToObject(ls, tname), "logit_stats");
      int nl = t < e->ntypes ? e->L : 1;
      for (int i = 0; i < nl; i++) {
        if (t < e->ntypes) snprintf(key, sizeof key, "layer_%d", i);
        else snprintf(key, sizeof key, "final");
        const float *p = e->prob_sum + ((size_t)t * e->L + (size_t)i) * e->V;
        cJSON *arr = cJSON_AddArrayToObject(st, key);
        for (int v = 0; v < e->V; v++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)p[v] * inv));
      }
    }
    rc = write_json(c->run.output, "logit_stats.json", ls);
    cJSON_Delete(ls);
  }
  if (rc == 0) {
    /* the chart: KL, cross-entropy and entropy per layer of every lens, each the
     * mean over batches with +- 2 standard errors of that mean (the batches' sample
     * standard deviation / sqrt(batches)), and the model's own CE and entropy */
    static const int panel_metric[3] = {M_KL, M_CE, M_ENT};
    int L = e->L, nb = (int)e->nbatches;
    double *mean = tl_malloc((size_t)e->ntypes * 3 * L * sizeof(double));
    double *err = tl_malloc((size_t)e->ntypes * 3 * L * sizeof(double));
    tl_plot_curve *curves = tl_calloc((size_t)e->ntypes, sizeof *curves);
    for (int t = 0, tuned = 0; t < e->ntypes; t++) {
      int logit = e->lens_of[t] == NULL;
      curves[t] = (tl_plot_curve){.name = logit ? "logit lens" : !strcmp(e->types[t], "tuned") ? "tuned lens" : e->types[t],
                                  .color = logit ? TL_PLOT_LOGIT_COLOR : tl_plot_color(tuned++), .n = L};
      for (int m = 0; m < 3; m++) {
        double *mu = mean + ((size_t)t * 3 + m) * L, *er = err + ((size_t)t * 3 + m) * L;
        for (int i = 0; i < L; i++) {
          size_t k = idx_metric(e, t, panel_metric[m], i);
          double ss = 0;
          for (int b = 0; b < nb; b++) {
            double dv = e->batch_vals[(size_t)b * P + k] - agg[k];
            ss += dv * dv;
          }
          mu[i] = agg[k] * scale;
          er[i] = nb > 1 ? 2 * sqrt(ss / (nb - 1) / nb) * scale : NAN;
        }
        curves[t].y[m] = mu;
        curves[t].err[m] = er;
      }
    }
    const char *unit = isfinite(e->nats_to_bpb) && e->nats_to_bpb != 1.0 ? "bits/byte" : "nats/token";
    char *path = tl_path_join(c->run.output, "metrics.svg");
    char *title = tl_sprintf("%s on %s", tl_basename(c->run.model), tl_basename(c->run.data));
    char *kl = tl_sprintf("KL(model || lens) (%s)", unit), *ce = tl_sprintf("cross-entropy (%s)", unit);
    char *ent = tl_sprintf("entropy of the lens (%s)", unit);
    char *note = tl_sprintf(nb > 1 ? "points: means over %d batches; bars: \u00b1 2 standard errors" : "points: one batch (%d)", nb);
    tl_plot_panels chart = {.title = title, .x_label = "layer", .x_layers = true, .bars = true, .npanels = 3,
                            .panel = {kl, ce, ent},
                            .baseline = {NAN, agg[idx_baseline(e, M_CE)] * scale, agg[idx_baseline(e, M_ENT)] * scale},
                            .baseline_label = {NULL, "model output", "model output"},
                            .curves = curves, .ncurves = e->ntypes, .note = note};
    rc = tl_plot_panels_write(path, &chart);
    char *texts[] = {path, title, kl, ce, ent, note};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) free(texts[k]);
    free(curves);
    free(mean);
    free(err);
  }
  if (rc == 0 && c->layer_transfer) rc = write_transfer_chart(e, agg);
  /* a rerun into the same folder without the option leaves no picture or statistics
   * of the earlier run beside the new numbers */
  const char *stale[2] = {c->layer_transfer ? NULL : "layer_transfer.svg", e->prob_sum ? NULL : "logit_stats.json"};
  for (int k = 0; k < 2 && rc == 0; k++) {
    if (!stale[k]) continue;
    char *path = tl_path_join(c->run.output, stale[k]);
    if (unlink(path) != 0 && errno != ENOENT) rc = tl_fail("%s: cannot remove the earlier run's file: %s", path, strerror(errno));
    free(path);
  }
  /* a summary table on stdout */
  if (rc == 0) {
    printf("%-8s", "layer");
    for (int t = 0; t < e->ntypes; t++) printf("  %8s.kl %8s.ce", e->types[t], e->types[t]);
    printf("\n");
    for (int i = 0; i < e->L; i++) {
      printf("%-8d", i);
      for (int t = 0; t < e->ntypes; t++)
        printf("  %11.4f %11.4f", agg[idx_metric(e, t, M_KL, i)] * scale, agg[idx_metric(e, t, M_CE, i)] * scale);
      printf("\n");
    }
    printf("final ce %.4f, entropy %.4f (%s); results in %s\n", agg[idx_baseline(e, M_CE)] * scale,
           agg[idx_baseline(e, M_ENT)] * scale, e->in_bpb ? "bits/byte" : "nats/token",
           c->run.output);
  }
  free(agg);
  return rc;
}

int tl_eval_cfg_check(const tl_eval_cfg *c) {
  TL_TRY(tl_run_cfg_check(&c->run));
  if (!c->logit && !c->lens) return tl_fail("nothing to evaluate: --nologit without --lens_name");
  lens_specs ls;
  int rc = lens_specs_parse(c->lens, &ls);
  lens_specs_free(&ls);
  return rc;
}

static int eval_body(tl_eval *e) {
  const tl_eval_cfg *c = e->c;
  tl_dist *d = &e->run->dist;
  TL_TRY(tl_eval_cfg_check(c));
  tl_run_opts o = tl_run_opts_of(&c->run);
  TL_TRY(tl_run_open(e->run, &o));
  TL_TRY(tl_lens_prepare(&e->run->u, TL_LENS_GEMM_FP32, &e->ws));
  e->L = e->run->mc.n_layers;
  e->V = e->run->mc.vocab;
  TL_TRY(lens_specs_parse(c->lens, &e->specs));
  e->lenses = tl_calloc((size_t)e->specs.n + 1, sizeof *e->lenses);
  e->types = tl_calloc((size_t)e->specs.n + 1, sizeof *e->types);
  e->lens_of = tl_calloc((size_t)e->specs.n + 1, sizeof *e->lens_of);
  if (c->logit) {
    e->types[e->ntypes] = "logit";
    e->lens_of[e->ntypes++] = NULL;
  }
  for (int k = 0; k < e->specs.n; k++) {
    tl_lens_expect ex = {e->run->mc.d_model, e->run->mc.n_layers, e->run->unembed_hash};
    tl_lens_config lc;
    float *params = NULL;
    int rc = tl_lens_dir_load(e->specs.dir[k], &ex, &lc, &params, NULL);
    if (rc == 0) {
      rc = tl_lens_init(&e->lenses[k], e->L, e->run->mc.d_model);
      if (rc == 0) {
        e->nloaded++;
        memcpy(e->lenses[k].params, params, (size_t)e->lenses[k].n_params * sizeof(float));
      }
      free(params);
      tl_lens_config_free(&lc);
    }
    TL_TRY(tl_dist_agree(d, rc));
    e->types[e->ntypes] = e->specs.name[k];
    e->lens_of[e->ntypes++] = &e->lenses[k];
  }
  e->T = (int)e->run->T;
  e->B = (int)c->run.per_gpu_batch_size;
  if (labs(c->token_shift) >= e->T) return tl_fail("--token_shift %ld: must be smaller than the sequence length %d", c->token_shift, e->T);
  e->nats_to_bpb = e->run->nats_to_bpb;
  e->in_bpb = isfinite(e->nats_to_bpb);
  if (!e->in_bpb) {
    tl_warn("%s: no nats_to_bpb ratio (pre-tokenized data without metadata): metrics are in nats per token", c->run.data);
    e->nats_to_bpb = 1.0;
  }
  /* batches: each global batch is world x per_gpu_batch_size samples, as the reference */
  int64_t G = (int64_t)e->B * d->world, n = tl_data_len(e->run->data);
  int64_t per_batch_tokens = G * e->T;
  if (c->tokens > 0) {
    if (c->tokens > n * e->T)
      return tl_fail("--tokens %ld: %s holds only %lld tokens in %lld samples of %d", c->tokens, c->run.data,
                     (long long)(n * e->T), (long long)n, e->T);
    e->nbatches = c->tokens / per_batch_tokens;
    if (e->nbatches < 1)
      return tl_fail("--tokens %ld: fewer than one batch of %lld tokens", c->tokens, (long long)per_batch_tokens);
  } else {
    e->nbatches = n / G;
    if (e->nbatches < 1) return tl_fail("%s: %lld samples, fewer than one batch of %lld", c->run.data, (long long)n, (long long)G);
  }
  e->per_batch = (size_t)e->ntypes * NMET * e->L + 2 + (c->layer_transfer ? (size_t)e->ntypes * 2 * e->L * e->L : 0);
  e->batch_vals = tl_calloc((size_t)e->nbatches * e->per_batch, sizeof(double));
  if (c->record_logit_stats) e->prob_sum = tl_calloc(((size_t)e->ntypes * e->L + 1) * e->V, sizeof(float));

  tl_sampler s;
  TL_TRY(tl_sampler_init(&s, n, (uint64_t)c->seed, c->run.shuffle));
  int64_t *idx = tl_malloc((size_t)e->B * sizeof(int64_t));
  int32_t *ids = tl_malloc((size_t)e->B * e->T * sizeof(int32_t));
  float *hidden = tl_aligned_alloc((size_t)(e->L + 1) * e->B * e->T * e->run->mc.d_model * sizeof(float));
  float *scratch = c->layer_transfer ? tl_aligned_alloc((size_t)e->B * e->T * e->V * sizeof(float)) : NULL;
  if (tl_dist_is_root(d)) {
    tl_buf what = {0};
    for (int t = 0; t < e->ntypes; t++)
      tl_buf_printf(&what, "%s%s", t == 0 ? "" : t + 1 < e->ntypes ? ", " : " and ",
                    !e->lens_of[t] ? "the logit lens" : e->specs.n == 1 ? "the tuned lens" : e->types[t]);
    tl_buf_append(&what, "", 1);
    tl_info("evaluating %s on %lld batches of %lld x %d tokens", (const char *)what.data, (long long)e->nbatches,
            (long long)G, e->T);
    tl_buf_free(&what);
  }
  tl_progress prog;
  tl_progress_begin(&prog, "eval batch", e->nbatches, "tok", tl_dist_is_root(d), c->run.progress);
  int rc = 0;
  for (int64_t b = 0; b < e->nbatches && rc == 0; b++) {
    int64_t count = 0;
    rc = tl_sampler_next(&s, G, d->rank, d->world, idx, &count);
    if (rc == 0) rc = tl_data_gather(e->run->data, idx, count, ids);
    double *out = e->batch_vals + (size_t)b * e->per_batch;
    if (rc == 0) rc = eval_batch(e, ids, hidden, scratch, out);
    rc = tl_dist_agree(d, rc);
    /* the batch's value is the mean over ranks, as the reference all-reduces */
    if (rc == 0 && d->world > 1) {
      rc = tl_dist_allreduce_f64(d, out, (int)e->per_batch, TL_RED_SUM);
      for (size_t k = 0; k < e->per_batch; k++) out[k] /= d->world;
    }
    if (rc == 0) tl_progress_update(&prog, b + 1, (double)((b + 1) * per_batch_tokens));
  }
  if (rc != 0) tl_progress_abort(&prog);
  if (rc == 0 && e->prob_sum && d->world > 1) {
    /* the marginal probabilities are summed over every rank's tokens */
    size_t np = ((size_t)e->ntypes * e->L + 1) * e->V;
    double *tmp = tl_malloc(np * sizeof(double));
    for (size_t k = 0; k < np; k++) tmp[k] = e->prob_sum[k];
    for (size_t k = 0; k < np && rc == 0; k += 1 << 20)
      rc = tl_dist_allreduce_f64(d, tmp + k, (int)(np - k < (1u << 20) ? np - k : 1u << 20), TL_RED_SUM);
    for (size_t k = 0; k < np; k++) e->prob_sum[k] = (float)tmp[k];
    free(tmp);
    e->prob_count *= d->world;
  }
  free(idx);
  free(ids);
  free(hidden);
  free(scratch);
  tl_sampler_free(&s);
  TL_TRY(rc);
  rc = tl_dist_is_root(d) ? write_outputs(e) : 0;
  return tl_dist_agree(d, rc);
}

int tl_eval_run(const tl_eval_cfg *c, tl_run *run) {
  tl_eval e;
  memset(&e, 0, sizeof e);
  e.c = c;
  e.run = run;
  int rc = eval_body(&e);
  free(e.batch_vals);
  free(e.prob_sum);
  for (int k = 0; k < e.nloaded; k++) tl_lens_free(&e.lenses[k]);
  free(e.lenses);
  free(e.types);
  free(e.lens_of);
  lens_specs_free(&e.specs);
  tl_lens_ws_free(e.ws); /* before the model goes: it points into its W_U */
  return rc;
}
