/* Sub-layer streams (tl_residual_forward) on one model folder (argv[1]), against the
 * hooked resid_pre run of the same input, bit for bit where the forward's own adds
 * make them so:
 *  - every component's last row (the model's output) equals resid_pre's;
 *  - resid_post[l] == resid_pre[l+1] for l < L-1;
 *  - resid_mid[l] == resid_pre[l] + attn_out[l] (fp32) and resid_post[l] ==
 *    resid_mid[l] + mlp_out[l]; resid_mid - resid_pre approximates attn_out;
 *  - a parallel-residual or post-norm model refuses resid_mid in one line;
 *  - with attn:l and mlp:l zeroed: attn_out[l] and mlp_out[l] are zeros,
 *    resid_mid[l] == resid_post[l] == resid_pre[l] of the ablated run;
 *  - mean ablation of attn:0: attn_out[0] is one row repeated at every position. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/trajectory.h"

static int fails = 0;
#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) {                           \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                   \
      fails++;                               \
    }                                        \
  } while (0)

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static int is_sum(const float *y, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (y[i] != a[i] + b[i]) return 0;
  return 1;
}

/* the components of one run: comp[r] = [L+1][state] (NULL where refused) */
typedef struct {
  float *comp[TL_NRESID];
} run;

static void run_all(tl_model *m, const tl_ablation *a, const int32_t *ids, int B, int T, size_t all, run *out,
                    int mid_ok) {
  for (int r = 0; r < TL_NRESID; r++) {
    out->comp[r] = malloc(all * sizeof(float));
    int rc = tl_residual_forward(m, a, (tl_residual)r, ids, B, T, out->comp[r]);
    if (r == TL_RESID_MID && !mid_ok) {
      CHECK(rc != 0 && strchr(tl_errmsg(), '\n') == NULL && strstr(tl_errmsg(), "resid_mid"),
            "resid_mid should be refused in one line, got rc %d '%s'", rc, tl_errmsg());
      free(out->comp[r]);
      out->comp[r] = NULL;
      continue;
    }
    CHECK(rc == 0, "%s: %s", tl_residual_key((tl_residual)r), tl_errmsg());
  }
}

static void free_run(run *r) {
  for (int i = 0; i < TL_NRESID; i++) free(r->comp[i]);
}

/* the identities every run satisfies */
static void check_identities(const run *x, int L, size_t state, int post_norm, const char *what) {
  float *pre = x->comp[TL_RESID_PRE], *post = x->comp[TL_RESID_POST];
  float *attn = x->comp[TL_ATTN_OUT], *mlp = x->comp[TL_MLP_OUT], *mid = x->comp[TL_RESID_MID];
  for (int r = 0; r < TL_NRESID; r++)
    if (x->comp[r])
      CHECK(same_bits(x->comp[r] + (size_t)L * state, pre + (size_t)L * state, state),
            "%s %s: the output row differs from resid_pre's", what, tl_residual_key((tl_residual)r));
  for (int l = 0; l + 1 < L; l++)
    CHECK(same_bits(post + (size_t)l * state, pre + (size_t)(l + 1) * state, state),
          "%s: resid_post[%d] != resid_pre[%d]", what, l, l + 1);
  if (post_norm) return;
  for (int l = 0; l < L; l++) {
    const size_t o = (size_t)l * state;
    if (mid) {
      CHECK(is_sum(mid + o, pre + o, attn + o, state), "%s: resid_mid[%d] != resid_pre + attn_out", what, l);
      CHECK(is_sum(post + o, mid + o, mlp + o, state), "%s: resid_post[%d] != resid_mid + mlp_out", what, l);
      double worst = 0;
      for (size_t i = 0; i < state; i++) {
        const double e = fabs(((double)mid[o + i] - pre[o + i]) - attn[o + i]) / (1.0 + fabs((double)pre[o + i]));
        worst = e > worst ? e : worst;
      }
      CHECK(worst < 1e-6, "%s: resid_mid[%d] - resid_pre differs from attn_out by %g", what, l, worst);
    } else {
      /* parallel: the forward adds attention, then the MLP */
      for (size_t i = 0; i < state; i++)
        if (post[o + i] != (pre[o + i] + attn[o + i]) + mlp[o + i]) {
          CHECK(0, "%s: resid_post[%d] != resid_pre + attn_out + mlp_out at %zu", what, l, i);
          break;
        }
    }
  }
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
  const int L = c->n_layers, d = c->d_model, B = 2, T = 5;
  const size_t state = (size_t)B * T * d, all = (size_t)(L + 1) * state;
  const int mid_ok = !c->parallel_residual && !c->post_norm;
  int32_t ids[10];
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((3 + 17 * i) % c->vocab);

  /* resid_pre is the hooked clean forward (tl_ablation_forward) */
  float *hooked = malloc(all * sizeof(float));
  CHECK(tl_ablation_forward(m, NULL, ids, B, T, hooked) == 0, "hooked forward: %s", tl_errmsg());
  run clean;
  run_all(m, NULL, ids, B, T, all, &clean, mid_ok);
  CHECK(same_bits(clean.comp[TL_RESID_PRE], hooked, all), "resid_pre differs from tl_ablation_forward");
  check_identities(&clean, L, state, c->post_norm, "clean");
  CHECK(tl_residual_check(c, TL_RESID_MID) == (mid_ok ? 0 : -1), "tl_residual_check(resid_mid) disagrees");

  /* zeroing both sub-layers of layer l */
  const int l = L > 1 ? 1 : 0;
  char spec[64];
  snprintf(spec, sizeof spec, "attn:%d,mlp:%d", l, l);
  tl_ablation a;
  CHECK(tl_ablation_parse(spec, L, &a) == 0, "parse %s: %s", spec, tl_errmsg());
  a.how = TL_ABLATE_ZERO;
  run zero;
  run_all(m, &a, ids, B, T, all, &zero, mid_ok);
  check_identities(&zero, L, state, c->post_norm, "zero-ablated");
  const size_t o = (size_t)l * state;
  for (size_t i = 0; i < state; i++)
    if (zero.comp[TL_ATTN_OUT][o + i] != 0.0f || zero.comp[TL_MLP_OUT][o + i] != 0.0f) {
      CHECK(0, "zeroed layer %d: attn_out or mlp_out is not zero at %zu", l, i);
      break;
    }
  if (!c->post_norm) {
    CHECK(same_bits(zero.comp[TL_RESID_POST] + o, zero.comp[TL_RESID_PRE] + o, state),
          "zeroed layer %d: resid_post != resid_pre", l);
    if (zero.comp[TL_RESID_MID])
      CHECK(same_bits(zero.comp[TL_RESID_MID] + o, zero.comp[TL_RESID_PRE] + o, state),
            "zeroed layer %d: resid_mid != resid_pre", l);
  }
  /* the layers before the ablated one are untouched */
  for (int r = 0; r < TL_NRESID; r++)
    if (clean.comp[r] && zero.comp[r])
      CHECK(same_bits(zero.comp[r], clean.comp[r], (size_t)(r == TL_RESID_POST ? l : l + (r == TL_RESID_PRE)) * state),
            "%s: a layer before the ablated one changed", tl_residual_key((tl_residual)r));
  tl_ablation_free(&a);

  /* mean ablation of attn:0: every position sees the same attention output */
  CHECK(tl_ablation_parse("attn:0", L, &a) == 0, "parse attn:0: %s", tl_errmsg());
  a.how = TL_ABLATE_MEAN;
  float *mean = malloc(all * sizeof(float));
  CHECK(tl_residual_forward(m, &a, TL_ATTN_OUT, ids, B, T, mean) == 0, "mean attn_out: %s", tl_errmsg());
  for (int r = 1; r < B * T; r++)
    if (!same_bits(mean + (size_t)r * d, mean, (size_t)d)) {
      CHECK(0, "mean-ablated attn_out[0] differs between positions 0 and %d", r);
      break;
    }
  tl_ablation_free(&a);

  /* names */
  tl_residual r;
  CHECK(tl_residual_parse("resid_mid", &r) == 0 && r == TL_RESID_MID, "parse resid_mid");
  CHECK(tl_residual_parse("resid", &r) != 0 && strstr(tl_errmsg(), "'resid'"), "an unknown component is accepted");
  CHECK(tl_residual_forward(m, NULL, (tl_residual)TL_NRESID, ids, B, T, mean) != 0, "component %d accepted", TL_NRESID);

  free(mean), free(hooked);
  free_run(&clean), free_run(&zero);
  const char *shape = c->post_norm ? ", post-norm" : c->parallel_residual ? ", parallel" : "";
  tl_model_free(m); /* c points into m */
  if (fails) {
    fprintf(stderr, "%s: %d failures\n", argv[1], fails);
    return 1;
  }
  printf("%s: sub-layer streams ok (%s%s)\n", argv[1], mid_ok ? "with resid_mid" : "resid_mid refused",
         shape);
  return 0;
}
