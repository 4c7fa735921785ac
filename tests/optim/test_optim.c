/* Optimizers, schedule and clipping against hand-worked values (PyTorch's update
 * rules written out step by step in the comments), plus sharding and error paths. */
#include <string.h>

#include <omp.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/lens.h"
#include "tlens/optim.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) > 1 ? fabs(b) : 1); }

static void test_sgd(void) {
  /* lr_scale 1, momentum 0.9 -> lr = 1 * (1 - 0.9) = 0.1; weight decay 0.01.
   * p = [1, -2], grad g = [0.5, 0.25] on both steps.
   * step 1: d = g + 0.01 p = [0.51, 0.23]; buf = d (first step copies);
   *         d + 0.9 buf = [0.969, 0.437]; p -= 0.1 * that -> [0.9031, -2.0437]
   * step 2: d = [0.5 + 0.009031, 0.25 - 0.020437] = [0.509031, 0.229563]
   *         buf = 0.9 [0.51, 0.23] + d = [0.968031, 0.436563]
   *         d + 0.9 buf = [1.3802589, 0.6224697]; p -> [0.76507411, -2.10594697] */
  tl_opt_cfg c = tl_opt_cfg_default();
  c.weight_decay = 0.01;
  tl_optim o;
  CHECK(tl_optim_init(&o, &c, 0, 2) == 0);
  CHECK(near(o.lr, 0.1, 1e-15));
  float p[2] = {1, -2}, g[2] = {0.5f, 0.25f};
  tl_optim_update(&o, o.lr, p, g, 0, 2);
  tl_optim_finish_step(&o);
  CHECKF(near(p[0], 0.9031, 1e-6) && near(p[1], -2.0437, 1e-6), "sgd step 1: %.8f %.8f", p[0], p[1]);
  CHECK(near(o.m[0], 0.51, 1e-6) && near(o.m[1], 0.23, 1e-6));
  tl_optim_update(&o, o.lr, p, g, 0, 2);
  tl_optim_finish_step(&o);
  CHECKF(near(p[0], 0.76507411, 1e-6) && near(p[1], -2.10594697, 1e-6), "sgd step 2: %.8f %.8f", p[0], p[1]);
  CHECK(near(o.m[0], 0.968031, 1e-6) && near(o.m[1], 0.436563, 1e-6));
  CHECK(o.step == 2);
  CHECK(g[0] == 0.5f && g[1] == 0.25f); /* the gradient is not modified */
  tl_optim_free(&o);
}

static void test_adam(void) {
  /* Adam, amsgrad, lr = 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
   * p = [1, -2]; step 1 g = [0.5, -1]:
   *   m = 0.1 g = [0.05, -0.1], v = 0.001 g^2 = [0.00025, 0.001], vmax = v
   *   bias corrections 0.1 and 0.001: m/0.1 = g, sqrt(vmax/0.001) = |g|
   *   p -= 1e-3 g / (|g| + 1e-8) -> [0.999, -1.999]
   * step 2 g = [0.01, 0.01] (small, so v shrinks and amsgrad keeps the old max):
   *   m = 0.9 m + 0.1 g = [0.046, -0.089]
   *   v = 0.999 v + 0.001 g^2 = [0.00024985, 0.0009991] < vmax = [0.00025, 0.001]
   *   bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
   *   p -= (1e-3 / 0.19) m / (sqrt(vmax) / sqrt(bc2) + 1e-8)
   *     = [0.999 - 6.84606e-4, -1.999 + 6.62282e-4] = [0.99831539, -1.99833772] */
  tl_opt_cfg c = {TL_OPT_ADAM, 1.0, 0.9, 0.0};
  tl_optim o;
  CHECK(tl_optim_init(&o, &c, 0, 2) == 0);
  CHECK(near(o.lr, 1e-3, 1e-15));
  float p[2] = {1, -2}, g1[2] = {0.5f, -1.0f}, g2[2] = {0.01f, 0.01f};
  tl_optim_update(&o, o.lr, p, g1, 0, 2);
  tl_optim_finish_step(&o);
  CHECKF(near(p[0], 0.999, 1e-7) && near(p[1], -1.999, 1e-7), "adam step 1: %.8f %.8f", p[0], p[1]);
  tl_optim_update(&o, o.lr, p, g2, 0, 2);
  tl_optim_finish_step(&o);
  CHECKF(near(p[0], 0.99831539, 1e-7) && near(p[1], -1.99833772, 1e-7), "adam step 2: %.8f %.8f", p[0], p[1]);
  CHECK(near(o.m[0], 0.046, 1e-6) && near(o.m[1], -0.089, 1e-6));
  CHECK(near(o.v[0], 0.00024985, 1e-9) && near(o.v[1], 0.0009991, 1e-9));
  CHECK(near(o.vmax[0], 0.00025, 1e-9) && near(o.vmax[1], 0.001, 1e-9)); /* amsgrad max kept */
  tl_optim_free(&o);

  /* Weight decay enters the gradient (PyTorch Adam, not AdamW): with g = 0 and
   * wd 0.1, the first step sees g' = 0.1 p = [0.1, -0.2] and moves p by
   * 1e-3 sign(g') -> [0.999, -1.999]; AdamW would give [0.9999, -1.9998]. */
  c.weight_decay = 0.1;
  CHECK(tl_optim_init(&o, &c, 0, 2) == 0);
  float q[2] = {1, -2}, z[2] = {0, 0};
  tl_optim_update(&o, o.lr, q, z, 0, 2);
  tl_optim_finish_step(&o);
  CHECKF(near(q[0], 0.999, 1e-7) && near(q[1], -1.999, 1e-7), "adam wd: %.8f %.8f", q[0], q[1]);
  tl_optim_free(&o);
}

static void test_schedule_and_clip(void) {
  /* 3 steps, no warmup: 1, 2/3, 1/3 */
  CHECK(near(tl_lr_lambda(0, 0, 3), 1, 1e-15));
  CHECK(near(tl_lr_lambda(1, 0, 3), 2.0 / 3, 1e-15));
  CHECK(near(tl_lr_lambda(2, 0, 3), 1.0 / 3, 1e-15));
  /* num_steps 10, warmup 2, called with num_training_steps = 10 - 2 = 8:
   * 0, 0.5, then (8 - s) / 6: 1 at s = 2, 0.5 at s = 5, 0 from s = 8 on */
  CHECK(tl_lr_lambda(0, 2, 8) == 0);
  CHECK(near(tl_lr_lambda(1, 2, 8), 0.5, 1e-15));
  CHECK(near(tl_lr_lambda(2, 2, 8), 1, 1e-15));
  CHECK(near(tl_lr_lambda(5, 2, 8), 0.5, 1e-15));
  CHECK(tl_lr_lambda(8, 2, 8) == 0 && tl_lr_lambda(9, 2, 8) == 0);
  CHECK(tl_default_warmup(TL_OPT_SGD, 250) == 0);
  CHECK(tl_default_warmup(TL_OPT_ADAM, 250) == 50);
  CHECK(tl_default_warmup(TL_OPT_ADAM, 100000) == 1000);

  /* clip to 1: [3, 4] has norm 5 -> scaled by 1 / (5 + 1e-6); [0.3, 0.4] is left alone */
  float g[2] = {3, 4};
  double n = sqrt(tl_sumsq(g, 2));
  CHECK(near(n, 5, 1e-12));
  tl_scale(g, 2, tl_clip_coef(n, 1.0));
  CHECKF(near(g[0], 0.6 / (1 + 2e-7), 1e-7) && near(g[1], 0.8 / (1 + 2e-7), 1e-7), "%g %g", g[0], g[1]);
  float h[2] = {0.3f, 0.4f};
  CHECK(tl_clip_coef(sqrt(tl_sumsq(h, 2)), 1.0) == 1.0f);
}

/* Stepping two shards [0, 4) and [4, 10) gives exactly the same as one full step. */
static void test_shards(void) {
  tl_opt_cfg kinds[2] = {{TL_OPT_SGD, 1, 0.9, 1e-3}, {TL_OPT_ADAM, 1, 0.9, 1e-3}};
  for (int k = 0; k < 2; k++) {
    float a[10], b[10], g[10];
    for (int i = 0; i < 10; i++) a[i] = b[i] = 0.1f * i - 0.3f, g[i] = 0.05f * (i % 3) - 0.04f;
    tl_optim full, s0, s1;
    CHECK(tl_optim_init(&full, &kinds[k], 0, 10) == 0);
    CHECK(tl_optim_init(&s0, &kinds[k], 0, 4) == 0);
    CHECK(tl_optim_init(&s1, &kinds[k], 4, 6) == 0);
    for (int step = 0; step < 3; step++) {
      tl_optim_update(&full, full.lr, a, g, 0, 10);
      tl_optim_finish_step(&full);
      tl_optim_update(&s0, s0.lr, b, g, 0, 4);
      tl_optim_finish_step(&s0);
      tl_optim_update(&s1, s1.lr, b + 4, g + 4, 0, 6);
      tl_optim_finish_step(&s1);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(full.m + 4, s1.m, 6 * sizeof(float)) == 0);
    tl_optim_free(&full), tl_optim_free(&s0), tl_optim_free(&s1);
  }
}

/* bias_only: the weights are never touched (no decay either); biases are. */
static void test_bias_only(void) {
  tl_lens lens;
  CHECK(tl_lens_init(&lens, 2, 3) == 0);
  lens.bias_only = 1;
  for (int64_t i = 0; i < lens.n_params; i++) lens.params[i] = 1.0f;
  float grad[24];
  for (int i = 0; i < 24; i++) grad[i] = 0.5f;
  tl_opt_cfg c = tl_opt_cfg_default();
  tl_optim o;
  CHECK(tl_optim_init(&o, &c, 0, lens.n_params) == 0);
  tl_lens_optim_step(&lens, &o, grad, o.lr);
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 9; j++) CHECK(lens.params[tl_lens_weight_off(&lens, i) + j] == 1.0f);
    /* bias: d = 0.5 + 0.001; p -= 0.1 (d + 0.9 d) = 1 - 0.1 * 1.9 * 0.501 */
    for (int j = 0; j < 3; j++) CHECK(near(lens.params[tl_lens_bias_off(&lens, i) + j], 1 - 0.19 * 0.501, 1e-6));
  }
  CHECK(o.step == 1);
  tl_optim_free(&o);
  tl_lens_free(&lens);
}

static void test_errors(void) {
  tl_optim o;
  tl_opt_cfg c = tl_opt_cfg_default();
  c.momentum = 1.0;
  CHECK(tl_optim_init(&o, &c, 0, 4) == -1 && strstr(tl_errmsg(), "momentum"));
  c = tl_opt_cfg_default();
  c.lr_scale = 0;
  CHECK(tl_optim_init(&o, &c, 0, 4) == -1 && strstr(tl_errmsg(), "lr_scale"));
  c = tl_opt_cfg_default();
  c.weight_decay = NAN;
  CHECK(tl_optim_init(&o, &c, 0, 4) == -1 && strstr(tl_errmsg(), "weight_decay"));
  c = tl_opt_cfg_default();
  c.kind = (tl_opt_kind)7;
  CHECK(tl_optim_init(&o, &c, 0, 4) == -1 && strstr(tl_errmsg(), "kind"));
  tl_lens l;
  CHECK(tl_lens_init(&l, 0, 8) == -1 && strstr(tl_errmsg(), "num_hidden_layers"));
  CHECK(tl_lens_init(&l, 2, 0) == -1 && strstr(tl_errmsg(), "d_model"));
}

/* The global grad norm against a plain double sum, and the same bits with 1, 2 and 3
 * threads (clipping with it must not depend on thread count or timing, so a resumed
 * run is exact). Sizes around the block boundaries and far past the block cap. */
static void test_sumsq_threads(void) {
  const int64_t sizes[] = {1, 65537, 16384 * 7 + 3, 40000000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    int64_t n = sizes[k];
    float *g = tl_malloc((size_t)n * sizeof(float));
    uint32_t x = 12345;
    double ref = 0;
    for (int64_t i = 0; i < n; i++) {
      x = x * 1664525u + 1013904223u;
      g[i] = (float)((int32_t)x) * 0x1p-31f;
      ref += (double)g[i] * g[i];
    }
    const int nt = omp_get_max_threads();
    double got[3];
    for (int t = 0; t < 3; t++) {
      omp_set_num_threads(t + 1);
      got[t] = tl_sumsq(g, n);
    }
    omp_set_num_threads(nt);
    CHECKF(fabs(got[0] - ref) <= 1e-9 * ref, "sumsq n=%lld: %.17g vs %.17g", (long long)n, got[0], ref);
    CHECKF(got[0] == got[1] && got[1] == got[2], "sumsq n=%lld depends on the thread count", (long long)n);
    free(g);
  }
}

int main(void) {
  test_sumsq_threads();
  test_sgd();
  test_adam();
  test_schedule_and_clip();
  test_shards();
  test_bias_only();
  test_errors();
  return tl_test_finish("test_optim");
}
