/* Ablations of attention and MLP sub-layers (see tlens/trajectory.h): a sub-layer
 * hook on the model replaces the chosen outputs before they join the residual. */
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/trajectory.h"

static const char *kind_names[2] = {"attn", "mlp"};

int tl_ablation_kind_parse(const char *name, tl_ablation_kind *k) {
  static const char *names[] = {"zero", "mean", "swap"};
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, names[i])) {
      *k = (tl_ablation_kind)i;
      return 0;
    }
  return tl_fail("--ablation '%s': expected zero, mean or swap", name);
}

void tl_ablation_free(tl_ablation *a) {
  free(a->site);
  memset(a, 0, sizeof *a);
}

/* a layer number of an --ablate item: digits only, in [0, L) */
static int parse_layer(const char *s, size_t n, int L, const char *item, int *out) {
  if (n == 0 || n > 9) return tl_fail("--ablate '%s': expected a layer number or a range a-b", item);
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return tl_fail("--ablate '%s': '%.*s' is not a layer number", item, (int)n, s);
    v = v * 10 + (s[i] - '0');
  }
  if (v >= L) return tl_fail("--ablate '%s': layer %ld is out of range [0, %d)", item, v, L);
  *out = (int)v;
  return 0;
}

/* one item kind:a or kind:a-b */
static int parse_item(const char *item, int L, unsigned char *site) {
  const char *colon = strchr(item, ':');
  if (!colon) return tl_fail("--ablate '%s': expected attn:LAYERS or mlp:LAYERS", item);
  int kind = -1;
  for (int k = 0; k < 2; k++)
    if ((size_t)(colon - item) == strlen(kind_names[k]) && !strncmp(item, kind_names[k], (size_t)(colon - item)))
      kind = k;
  if (kind < 0)
    return tl_fail("--ablate '%s': unknown sub-layer '%.*s' (expected attn or mlp)", item, (int)(colon - item), item);
  const char *r = colon + 1, *dash = strchr(r, '-');
  int lo = 0, hi = 0;
  TL_TRY(parse_layer(r, dash ? (size_t)(dash - r) : strlen(r), L, item, &lo));
  hi = lo;
  if (dash) {
    TL_TRY(parse_layer(dash + 1, strlen(dash + 1), L, item, &hi));
    if (hi < lo) return tl_fail("--ablate '%s': the range %d-%d is empty", item, lo, hi);
  }
  for (int l = lo; l <= hi; l++) site[2 * l + kind] = 1;
  return 0;
}

int tl_ablation_parse(const char *spec, int L, tl_ablation *a) {
  memset(a, 0, sizeof *a);
  if (L < 1) return tl_fail("--ablate: the model has no layers");
  a->L = L;
  a->site = tl_calloc((size_t)2 * L, 1);
  char *copy = tl_strdup(spec);
  int rc = 0, items = 0;
  /* strtok would skip empty items silently: "attn:1,,mlp:2" is refused instead */
  for (char *s = copy, *e; rc == 0; s = e + 1) {
    e = strchr(s, ',');
    if (e) *e = 0;
    if (!*s) rc = tl_fail("--ablate '%s': empty item", spec);
    else rc = parse_item(s, L, a->site), items++;
    if (!e) break;
  }
  free(copy);
  for (int i = 0; rc == 0 && i < 2 * L; i++) a->n += a->site[i];
  if (rc) tl_ablation_free(a);
  return rc;
}

/* ---- sub-layer streams (tl_residual) ---- */
static const char *resid_keys[TL_NRESID] = {"resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"};

const char *tl_residual_key(tl_residual r) { return r >= 0 && r < TL_NRESID ? resid_keys[r] : NULL; }

int tl_residual_parse(const char *key, tl_residual *r) {
  for (int i = 0; i < TL_NRESID; i++)
    if (!strcmp(key, resid_keys[i])) {
      *r = (tl_residual)i;
      return 0;
    }
  return tl_fail("--residual '%s': expected resid_pre, resid_mid, resid_post, attn_out or mlp_out", key);
}

int tl_residual_check(const tl_model_config *c, tl_residual r) {
  if (r != TL_RESID_MID) return 0;
  if (c->parallel_residual)
    return tl_fail("--residual resid_mid: this model's blocks are parallel (attention and MLP both read resid_pre "
                   "and join it together), so there is no stream between them; use resid_pre, resid_post, "
                   "attn_out or mlp_out");
  if (c->post_norm)
    return tl_fail("--residual resid_mid: this model normalises the stream after attention inside the block "
                   "(post-norm), where no hook sees it; use resid_pre, resid_post, attn_out or mlp_out");
  return 0;
}

/* The hook's state: which sites to ablate, the swap source's outputs, and the
 * component being recorded. The ablation acts first, so a recorded sub-layer
 * output is what joins the stream. */
typedef struct {
  const tl_ablation *a; /* NULL: ablate nothing */
  float **rec;          /* [2L] one [B*T*d] output per ablated site (swap) */
  int recording;        /* 1: store the outputs in rec, 0: replace them */
  tl_residual comp;
  int L, post_norm;
  float *hidden; /* [L+1][B*T*d] the result; NULL while recording the swap source */
  float *pre;    /* [B*T*d] the stream entering the current block (resid_mid, resid_post) */
  float *mid;    /* [B*T*d] that stream after attention joined it (resid_post) */
} hook_state;

/* the ablation of one site */
static void ablate(hook_state *h, int layer, int kind, float *out, size_t rows, int d) {
  const size_t n = rows * d;
  float **rec = h->rec ? &h->rec[2 * layer + kind] : NULL;
  switch (h->a->how) {
  case TL_ABLATE_ZERO:
    memset(out, 0, n * sizeof(float));
    break;
  case TL_ABLATE_MEAN: {
    /* per feature, the mean over every position, summed in double */
    double *mean = tl_calloc((size_t)d, sizeof(double));
    for (size_t r = 0; r < rows; r++)
      for (int j = 0; j < d; j++) mean[j] += out[r * d + j];
    for (int j = 0; j < d; j++) mean[j] /= (double)rows;
    for (size_t r = 0; r < rows; r++)
      for (int j = 0; j < d; j++) out[r * d + j] = (float)mean[j];
    free(mean);
    break;
  }
  case TL_ABLATE_SWAP:
    if (h->recording) {
      *rec = tl_malloc(n * sizeof(float));
      memcpy(*rec, out, n * sizeof(float));
    } else {
      memcpy(out, *rec, n * sizeof(float));
    }
    break;
  }
}

/* y = a + b in fp32, the sum the forward's residual add makes */
static void add_f32(float *y, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static int sublayer_hook(void *ctx, int layer, int kind, float *out, int B, int T, int d) {
  hook_state *h = ctx;
  const size_t n = (size_t)B * T * d;
  if (h->a && h->a->site[2 * layer + kind]) ablate(h, layer, kind, out, (size_t)B * T, d);
  if (!h->hidden) return 0;
  float *row = h->hidden + (size_t)layer * n;
  const int attn = kind == TL_SUBLAYER_ATTN;
  switch (h->comp) {
  case TL_ATTN_OUT:
    if (attn) memcpy(row, out, n * sizeof(float));
    break;
  case TL_MLP_OUT:
    if (!attn) memcpy(row, out, n * sizeof(float));
    break;
  case TL_RESID_MID:
    if (attn) add_f32(row, h->pre, out, n);
    break;
  case TL_RESID_POST: /* post-norm blocks: taken from the streams instead (stream_hook) */
    if (h->post_norm) break;
    if (attn) add_f32(h->mid, h->pre, out, n);
    else add_f32(row, h->mid, out, n);
    break;
  default:
    break;
  }
  return 0;
}

/* the streams between blocks: index l enters block l (l < L), index L is the output */
static int stream_hook(void *ctx, int index, const float *x, int B, int T, int d) {
  hook_state *h = ctx;
  const size_t n = (size_t)B * T * d;
  if (index == h->L || h->comp == TL_RESID_PRE) {
    memcpy(h->hidden + (size_t)index * n, x, n * sizeof(float));
    /* a post-norm model has no final norm: its output is the last block's */
    if (index == h->L && h->comp == TL_RESID_POST && h->post_norm)
      memcpy(h->hidden + (size_t)(index - 1) * n, x, n * sizeof(float));
    return 0;
  }
  if (h->comp == TL_RESID_POST && h->post_norm) {
    if (index > 0) memcpy(h->hidden + (size_t)(index - 1) * n, x, n * sizeof(float));
  } else if (h->pre) {
    memcpy(h->pre, x, n * sizeof(float));
  }
  return 0;
}

int tl_residual_forward(tl_model *m, const tl_ablation *a, tl_residual r, const int32_t *ids, int B, int T,
                        float *hidden) {
  const tl_model_config *c = tl_model_cfg(m);
  const int L = c->n_layers;
  if (a && a->L != L) return tl_fail("ablation: made for %d layers, the model has %d", a->L, L);
  if (!tl_residual_key(r)) return tl_fail("residual component %d is unknown", (int)r);
  TL_TRY(tl_residual_check(c, r));
  if (r == TL_RESID_POST && c->post_norm && c->final_norm)
    return tl_fail("--residual resid_post: a post-norm model with a final norm hides its last block's output");
  if (B <= 0 || T <= 0 || (int64_t)B * T > (1 << 30))
    return tl_fail("model forward: batch %d x %d tokens is not a positive size", B, T);
  hook_state h = {.a = a, .comp = r, .L = L, .post_norm = c->post_norm};
  const size_t n = (size_t)B * T * c->d_model;
  int rc = 0;
  tl_model_set_sublayer_hook(m, sublayer_hook, &h);
  if (a && a->how == TL_ABLATE_SWAP) {
    if (!a->swap_ids) rc = tl_fail("swap ablation: no swap input given (--swap_text or --swap_input_ids)");
    else if (a->swap_B != B || a->swap_T != T)
      rc = tl_fail("swap ablation: the swap input has %d x %d tokens, the input %d x %d", a->swap_B, a->swap_T, B, T);
    h.rec = tl_calloc((size_t)2 * L, sizeof *h.rec);
    h.recording = 1;
    if (rc == 0) rc = tl_model_forward(m, a->swap_ids, B, T, NULL, NULL);
    h.recording = 0;
  }
  if (r == TL_RESID_MID || (r == TL_RESID_POST && !c->post_norm)) h.pre = tl_malloc(n * sizeof(float));
  if (r == TL_RESID_POST && !c->post_norm) h.mid = tl_malloc(n * sizeof(float));
  h.hidden = hidden;
  if (rc == 0) rc = tl_model_forward_cb(m, ids, B, T, hidden ? stream_hook : NULL, &h, NULL);
  tl_model_set_sublayer_hook(m, NULL, NULL);
  if (h.rec)
    for (int i = 0; i < 2 * L; i++) free(h.rec[i]);
  free(h.rec), free(h.pre), free(h.mid);
  return rc;
}

int tl_ablation_forward(tl_model *m, const tl_ablation *a, const int32_t *ids, int B, int T, float *hidden) {
  return tl_residual_forward(m, a, TL_RESID_PRE, ids, B, T, hidden);
}
