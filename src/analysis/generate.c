/* tlens generate: decoding through the lens at one layer (tlens/generate.h). */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/generate.h"

/* the last position's hidden state of one stream, caught during the forward */
typedef struct {
  int layer, d, last; /* last: the index of the final stream (L) */
  float *h;           /* [B,d] */
} catch_last;

static int catch_fn(void *ctx, int index, const float *h, int B, int T, int d) {
  catch_last *c = ctx;
  if (index != c->layer) return 0;
  for (int b = 0; b < B; b++) memcpy(c->h + (size_t)b * d, h + ((size_t)b * T + T - 1) * d, (size_t)d * sizeof(float));
  return index < c->last; /* the later layers are not needed: stop the forward here (1) */
}

/* splitmix64: the sampler's random numbers, uniform in [0, 1) */
static double uniform(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

/* the next token of one row of logits: argmax (the first of equal maxima), or a
 * draw from softmax(logits / temp) */
static int32_t next_token(const float *z, int V, const tl_generate_opts *o, uint64_t *rng) {
  int best = 0;
  for (int v = 1; v < V; v++)
    if (z[v] > z[best]) best = v;
  if (o->greedy) return best;
  double s = 0;
  for (int v = 0; v < V; v++) s += exp(((double)z[v] - z[best]) / o->temp);
  double u = uniform(rng) * s, acc = 0;
  for (int v = 0; v < V; v++) {
    acc += exp(((double)z[v] - z[best]) / o->temp);
    if (u < acc) return v;
  }
  return best;
}

int tl_generate(tl_model *m, const tl_unembed *u, tl_lens_ws *ws, const tl_lens *lens, const tl_generate_opts *o,
                const int32_t *prompt, int B, int T0, int32_t **out, int *T) {
  const tl_model_config *mc = tl_model_cfg(m);
  const int L = mc->n_layers, d = u->d_model, V = u->vocab;
  if (o->layer < 0 || o->layer > L) return tl_fail("--layer %d: the model has streams 0..%d and its output %d", o->layer, L - 1, L);
  if (B < 1 || T0 < 1) return tl_fail("generate: an empty prompt");
  if (o->max_new_tokens < 0) return tl_fail("--max_new_tokens %d: must be at least 0", o->max_new_tokens);
  if (!o->greedy && !(o->temp > 0)) return tl_fail("--temp %g: must be positive", o->temp);
  if (lens && (lens->n_layers != L || lens->d_model != d))
    return tl_fail("generate: the lens has %d translators of d_model %d, the model %d layers of d_model %d",
                   lens->n_layers, lens->d_model, L, d);
  const int cap = T0 + o->max_new_tokens;
  /* what the model runs on: the sequence so far, or (reference_cache) every step's
   * input one after the other */
  const int64_t ccap = o->reference_cache ? (int64_t)o->max_new_tokens * T0 +
                                                (int64_t)o->max_new_tokens * (o->max_new_tokens - 1) / 2 + 1
                                          : cap;
  if (ccap > (1 << 24)) return tl_fail("generate: --reference_cache with %d new tokens runs %lld tokens at once", o->max_new_tokens, (long long)ccap);
  int32_t *ids = tl_malloc((size_t)B * cap * sizeof(int32_t)), *cur = tl_malloc((size_t)B * ccap * sizeof(int32_t));
  for (int b = 0; b < B; b++) memcpy(ids + (size_t)b * cap, prompt + (size_t)b * T0, (size_t)T0 * sizeof(int32_t));
  catch_last c = {o->layer, d, L, tl_malloc((size_t)B * d * sizeof(float))};
  float *z = tl_malloc((size_t)B * V * sizeof(float));
  unsigned char *done = tl_calloc((size_t)B, 1);
  uint64_t rng = o->seed;
  int n = T0, rc = 0;
  int64_t len = 0; /* tokens per row of cur */
  while (n < cap) {
    if (o->reference_cache) {
      /* rows grow from [B][len] to [B][len + n]: move them, last first, then append */
      for (int b = B - 1; b > 0; b--)
        memmove(cur + (size_t)b * (len + n), cur + (size_t)b * len, (size_t)len * sizeof(int32_t));
      for (int b = 0; b < B; b++) memcpy(cur + (size_t)b * (len + n) + len, ids + (size_t)b * cap, (size_t)n * sizeof(int32_t));
      len += n;
    } else {
      for (int b = 0; b < B; b++) memcpy(cur + (size_t)b * n, ids + (size_t)b * cap, (size_t)n * sizeof(int32_t));
      len = n;
    }
    rc = tl_model_forward_cb(m, cur, B, (int)len, catch_fn, &c, NULL);
    if (rc < 0) break;
    rc = 0;
    if (o->layer == L) { /* the model's own output: W_U h + b_U on its normalised last state */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, V, d, 1.0f, c.h, d, u->W_U, d, 0.0f, z, V);
      for (int b = 0; u->b_U && b < B; b++)
        for (int v = 0; v < V; v++) z[(size_t)b * V + v] += u->b_U[v];
    } else {
      rc = tl_lens_logits(lens, u, o->layer, c.h, B, z, ws);
      if (rc) break;
    }
    int all = 1;
    for (int b = 0; b < B; b++) {
      int32_t t = next_token(z + (size_t)b * V, V, o, &rng);
      if (o->eos >= 0 && (done[b] || t == o->eos)) done[b] = 1, t = o->eos;
      ids[(size_t)b * cap + n] = t;
      all &= done[b];
    }
    n++;
    if (o->eos >= 0 && all) break;
  }
  if (rc == 0) {
    *out = tl_malloc((size_t)B * n * sizeof(int32_t));
    for (int b = 0; b < B; b++) memcpy(*out + (size_t)b * n, ids + (size_t)b * cap, (size_t)n * sizeof(int32_t));
    *T = n;
  }
  free(ids), free(cur), free(c.h), free(z), free(done);
  return rc;
}

/* ---- the command ---- */

void tl_generate_cfg_default(tl_generate_cfg *c) {
  memset(c, 0, sizeof *c);
  c->max_new_tokens = 100;
  c->temp = 1.0;
  c->eos_id = -1;
}

void tl_generate_cfg_free(tl_generate_cfg *c) {
  char **s[] = {&c->model, &c->revision, &c->tokenizer, &c->lens, &c->layer, &c->text, &c->input_ids, &c->prompts, &c->output};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    free(*s[i]);
    *s[i] = NULL;
  }
}

static int parse_layer(const char *s, int L, int *layer) {
  long v = 0;
  if (!s) return tl_fail("--layer: which layer to decode from is required (0..%d, or output)", L - 1);
  if (!strcmp(s, "output")) v = L;
  else if (tl_parse_long(s, &v)) return tl_fail("--layer '%s': expected a layer index or 'output'", s);
  if (v < 0) v += L + 1; /* -1 = the output, as Python indexes the hidden states */
  if (v < 0 || v > L) return tl_fail("--layer %s: the model has streams 0..%d and its output (%d)", s, L - 1, L);
  *layer = (int)v;
  return 0;
}

/* {"layer": K, "lens": "tuned"|"logit", "sequences": [{"ids": [...], "text": "..."}]} */
static int write_result(const tl_generate_cfg *c, const tl_analysis_env *e, int layer, const char *lens_type,
                        const int32_t *ids, int B, int T) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddNumberToObject(root, "layer", layer);
  cJSON_AddStringToObject(root, "lens", layer == e->mc.n_layers ? "model" : lens_type);
  cJSON *seqs = cJSON_AddArrayToObject(root, "sequences");
  int rc = 0;
  for (int b = 0; b < B && rc == 0; b++) {
    cJSON *s = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(s, "ids");
    for (int t = 0; t < T; t++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[(size_t)b * T + t]));
    if (e->tok) {
      char *text = NULL;
      rc = tl_tokenizer_decode(e->tok, ids + (size_t)b * T, (size_t)T, &text);
      if (rc == 0) cJSON_AddStringToObject(s, "text", text);
      free(text);
    }
    cJSON_AddItemToArray(seqs, s);
  }
  char *text = rc == 0 ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!text) return -1;
  if (c->output) {
    size_t n = strlen(text);
    text = tl_realloc(text, n + 2);
    text[n] = '\n';
    rc = tl_write_file_atomic(c->output, text, n + 1);
  } else {
    printf("%s\n", text);
    if (fflush(stdout) != 0) rc = tl_fail("stdout: write error");
  }
  free(text);
  return rc;
}

static int generate_body(const tl_generate_cfg *c, tl_analysis_env *e, int32_t **prompt, int32_t **out) {
  if (c->max_new_tokens < 0) return tl_fail("--max_new_tokens %ld: must be at least 0", c->max_new_tokens);
  if (!c->greedy && !(c->temp > 0)) return tl_fail("--temp %g: must be positive (or give --greedy)", c->temp);
  if (c->lens && c->logit) return tl_fail("give -l LENS or --logit, not both");
  tl_analysis_opts ao = {c->model, c->revision, c->tokenizer, NULL, c->lens, c->threads, c->eos_id};
  TL_TRY(tl_analysis_open(e, &ao));
  int layer = 0;
  TL_TRY(parse_layer(c->layer, e->mc.n_layers, &layer));
  if (!e->has_lens && !c->logit && layer < e->mc.n_layers)
    return tl_fail("decoding from a stream needs a lens: give -l LENS, or --logit for the logit lens");
  int B = 1, T0 = 0;
  int given = (c->text != NULL) + (c->input_ids != NULL) + (c->prompts != NULL);
  if (given != 1) return tl_fail("give exactly one of --text, --input_ids or --prompts");
  if (c->text) TL_TRY(tl_analysis_encode(e, "--text", c->text, !c->no_special, prompt, &T0));
  else if (c->input_ids) TL_TRY(tl_analysis_read_ids(c->input_ids, prompt, &B, &T0));
  else TL_TRY(tl_analysis_read_prompts(e, c->prompts, !c->no_special, prompt, &B, &T0));
  tl_generate_opts o = {.layer = layer, .max_new_tokens = (int)c->max_new_tokens, .temp = c->temp,
                        .greedy = c->greedy, .seed = (uint64_t)c->seed, .eos = e->eos,
                        .reference_cache = c->reference_cache};
  int T = 0;
  TL_TRY(tl_generate(e->m, &e->u, e->ws, e->has_lens ? &e->lens : NULL, &o, *prompt, B, T0, out, &T));
  return write_result(c, e, layer, e->has_lens ? "tuned" : "logit", *out, B, T);
}

int tl_generate_run(const tl_generate_cfg *c) {
  tl_analysis_env e;
  int32_t *prompt = NULL, *out = NULL;
  memset(&e, 0, sizeof e);
  int rc = generate_body(c, &e, &prompt, &out);
  free(prompt);
  free(out);
  tl_analysis_close(&e);
  return rc;
}
