/* Ablations through the sub-layer hook, on one model folder (argv[1]):
 *  - the hooked clean forward agrees with the unhooked one (it only sums differently);
 *  - zeroing layer l's attention and MLP outputs makes hidden state l+1 equal hidden
 *    state l, bit for bit, and leaves the states before it untouched;
 *  - swapping every sub-layer with the input's own activations changes nothing (bitwise);
 *  - mean ablation of a sub-layer matches clean + (mean - out), with mean and out
 *    taken from the hook's own record of the clean output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/trajectory.h"

static int fails = 0;
#define CHECK(cond, ...)                  \
  do {                                    \
    if (!(cond)) {                        \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                \
      fails++;                            \
    }                                     \
  } while (0)

/* records the output of one (layer, kind) and counts every call */
typedef struct {
  int layer, kind, calls;
  float *out; /* [B*T*d] */
} recorder;

static int record(void *ctx, int layer, int kind, float *out, int B, int T, int d) {
  recorder *r = ctx;
  r->calls++;
  if (layer == r->layer && kind == r->kind) memcpy(r->out, out, (size_t)B * T * d * sizeof(float));
  return 0;
}

static double max_rel(const float *a, const float *b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
    worst = e > worst ? e : worst;
  }
  return worst;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  tl_model *m = NULL;
  if (tl_model_load(&m, argv[1])) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return 1;
  }
  const tl_model_config *c = tl_model_cfg(m);
  const int L = c->n_layers, d = c->d_model, B = 2, T = 6;
  const size_t state = (size_t)B * T * d, all = (size_t)(L + 1) * state;
  int32_t ids[12];
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((7 + 13 * i) % c->vocab);
  float *plain = malloc(all * sizeof(float)), *clean = malloc(all * sizeof(float)), *abl = malloc(all * sizeof(float));

  /* the hooked clean forward: the same numbers up to the order of the sums */
  int rc = tl_model_forward(m, ids, B, T, plain, NULL);
  rc = rc ? rc : tl_ablation_forward(m, NULL, ids, B, T, clean);
  CHECK(rc == 0, "forward: %s", tl_errmsg());
  CHECK(max_rel(clean, plain, all) < 1e-4, "hooked forward differs from the plain one by %g", max_rel(clean, plain, all));

  /* zero: stream l+1 = stream l (the last block's output is returned after the
   * final norm, and a post-norm block normalises after each sum: both excluded) */
  for (int l = 0; l < L - 1 && !c->post_norm; l++) {
    char spec[64];
    snprintf(spec, sizeof spec, "attn:%d,mlp:%d", l, l);
    tl_ablation a;
    CHECK(tl_ablation_parse(spec, L, &a) == 0, "parse %s: %s", spec, tl_errmsg());
    a.how = TL_ABLATE_ZERO;
    CHECK(tl_ablation_forward(m, &a, ids, B, T, abl) == 0, "zero %s: %s", spec, tl_errmsg());
    CHECK(memcmp(abl + (size_t)(l + 1) * state, abl + (size_t)l * state, state * sizeof(float)) == 0,
          "zero %s: stream %d differs from stream %d", spec, l + 1, l);
    CHECK(memcmp(abl, clean, (size_t)(l + 1) * state * sizeof(float)) == 0, "zero %s: streams 0..%d changed", spec, l);
    tl_ablation_free(&a);
  }

  /* swap with the input itself, every sub-layer: the clean run, bit for bit */
  {
    char spec[64];
    snprintf(spec, sizeof spec, "attn:0-%d,mlp:0-%d", L - 1, L - 1);
    tl_ablation a;
    CHECK(tl_ablation_parse(spec, L, &a) == 0, "parse %s: %s", spec, tl_errmsg());
    CHECK(a.n == 2 * L, "%s: %d sites", spec, a.n);
    a.how = TL_ABLATE_SWAP, a.swap_ids = ids, a.swap_B = B, a.swap_T = T;
    CHECK(tl_ablation_forward(m, &a, ids, B, T, abl) == 0, "swap: %s", tl_errmsg());
    CHECK(memcmp(abl, clean, all * sizeof(float)) == 0, "swap with the input itself changed the hidden states");
    a.swap_T = T - 1;
    CHECK(tl_ablation_forward(m, &a, ids, B, T, abl) != 0, "swap with another shape accepted");
    tl_ablation_free(&a);
  }

  /* mean: the MLP output (and, in a parallel block, the attention output) joins the
   * stream last, so ablated stream l+1 = clean stream l+1 + (mean - out) */
  const int l = L >= 2 ? L - 2 : 0; /* the last block whose raw output is a hidden state */
  for (int kind = 0; kind < 2 && l < L - 1 && !c->post_norm; kind++) {
    if (kind == TL_SUBLAYER_ATTN && !c->parallel_residual) continue;
    recorder r = {l, kind, 0, malloc(state * sizeof(float))};
    tl_model_set_sublayer_hook(m, record, &r);
    CHECK(tl_model_forward(m, ids, B, T, NULL, NULL) == 0, "record: %s", tl_errmsg());
    tl_model_set_sublayer_hook(m, NULL, NULL);
    CHECK(r.calls == 2 * L, "the hook ran %d times for %d layers", r.calls, L);
    double *mean = calloc((size_t)d, sizeof(double));
    for (int i = 0; i < B * T; i++)
      for (int j = 0; j < d; j++) mean[j] += r.out[(size_t)i * d + j] / (double)(B * T);
    float *want = malloc(state * sizeof(float));
    const float *h = clean + (size_t)(l + 1) * state;
    for (int i = 0; i < B * T; i++)
      for (int j = 0; j < d; j++) {
        const size_t k = (size_t)i * d + j;
        want[k] = (float)((double)h[k] + (mean[j] - r.out[k]));
      }
    char spec[32];
    snprintf(spec, sizeof spec, "%s:%d", kind ? "mlp" : "attn", l);
    tl_ablation a;
    CHECK(tl_ablation_parse(spec, L, &a) == 0, "parse %s", spec);
    a.how = TL_ABLATE_MEAN;
    CHECK(tl_ablation_forward(m, &a, ids, B, T, abl) == 0, "mean %s: %s", spec, tl_errmsg());
    const double err = max_rel(abl + (size_t)(l + 1) * state, want, state);
    CHECK(err < 1e-5, "mean %s: stream %d off the hand computation by %g", spec, l + 1, err);
    printf("mean %s: stream %d within %.2g of clean + (mean - out)\n", spec, l + 1, err);
    tl_ablation_free(&a);
    free(mean), free(want), free(r.out);
  }

  /* bad specs: one line each */
  const char *bad[] = {"attn:99", "ffn:1", "attn:", "attn:2-1", "attn:1,,mlp:0", "mlp:a", "mlp", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tl_ablation a;
    int r2 = tl_ablation_parse(bad[i], L, &a);
    CHECK(r2 != 0 && !strchr(tl_errmsg(), '\n'), "--ablate '%s' accepted or not one line", bad[i]);
  }
  printf("%s (%s, %d layers): %s\n", argv[1], c->model_type, L, fails ? "FAILED" : "ok");
  free(plain), free(clean), free(abl);
  tl_model_free(m);
  return fails ? 1 : 0;
}
