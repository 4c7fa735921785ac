/* The lens on every model family against the PyTorch goldens of
 * fixtures/golden/<family>/lens.safetensors: lens logits, kl and ce per stream,
 * the gradients of sum_i kl_i, and three SGD (Nesterov) steps with global-norm
 * clipping and a linear decay schedule, all computed by tuned-lens's math from the
 * same lens/ folder, over the reference hidden states and logits of
 * forward.safetensors, through the unembedding tl_model_unembed builds for the
 * family (its final norm and output embedding). Within 1e-5. The lens folder is
 * read with the public loader, whose unembed hash check must find the model's
 * output embedding the one the lens was made for.
 * usage: test_family_lens <family> */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/optim.h"
#include "tlens/safetensors.h"

#define TOL 1e-5

typedef struct {
  const char *family;
  tl_model *model;
  tl_unembed u;
  int L, B, T, d, V;
  float *hidden; /* [L][B][T][d]: hidden_states.0 .. L-1 */
  float *final;  /* [B][T][d]: hidden_states.L (after the final norm) */
  float *logits; /* [B][T][V] */
  int32_t *ids;  /* [B][T] */
  tl_safetensors gold; /* lens.safetensors */
  tl_lens lens;        /* lens/ */
} golden;

/* A golden tensor of lens.safetensors with numel floats (malloc'd), or exit. */
static float *get(const golden *g, const char *name, int64_t numel) {
  float *out = NULL;
  const tl_st_tensor *t = tl_st_find(&g->gold, name);
  int64_t shape[TL_MAX_DIMS];
  if (t) memcpy(shape, t->shape, sizeof shape);
  if (!t || tl_numel(t->ndim, t->shape) != numel || tl_st_get_f32(&g->gold, name, t->ndim, shape, &out)) {
    fprintf(stderr, "%s: golden tensor %s missing or of the wrong size\n", g->family, name);
    exit(2);
  }
  return out;
}

/* Compares one golden (scalar or tensor) and says how far it is. */
static void expect(const golden *g, const char *name, const float *got, int64_t numel, double *worst) {
  float *ref = get(g, name, numel);
  double e = tl_test_maxerr(got, ref, (long)numel);
  CHECKF(e < TOL, "%s %s: max error %.3g", g->family, name, e);
  if (e > *worst) *worst = e;
  free(ref);
}

static int open_golden(golden *g, const char *family) {
  memset(g, 0, sizeof *g);
  g->family = family;
  char *dir = tl_sprintf("%s/golden/%s", tl_test_fixtures(), family);
  char *mdir = tl_sprintf("%s/model", dir), *fwd = tl_sprintf("%s/forward.safetensors", dir);
  char *lpath = tl_sprintf("%s/lens.safetensors", dir), *ldir = tl_sprintf("%s/lens", dir);
  int rc = -1;
  tl_safetensors fw = {0};
  int64_t *ids64 = NULL;
  if (tl_model_load(&g->model, mdir) || tl_model_unembed(g->model, &g->u) || tl_st_open(&fw, fwd)) goto done;
  const tl_model_config *c = tl_model_cfg(g->model);
  g->L = c->n_layers, g->d = c->d_model, g->V = c->vocab;
  const tl_st_tensor *it = tl_st_find(&fw, "input_ids");
  if (!it || it->ndim != 2) {
    tl_fail("%s: no input_ids [B, T]", fwd);
    goto done;
  }
  g->B = (int)it->shape[0], g->T = (int)it->shape[1];
  if (tl_st_get_i64(&fw, "input_ids", 2, it->shape, &ids64)) goto done;
  const size_t BT = (size_t)g->B * g->T;
  g->ids = malloc(BT * sizeof(int32_t));
  for (size_t k = 0; k < BT; k++) g->ids[k] = (int32_t)ids64[k];
  int64_t hs[3] = {g->B, g->T, g->d}, ls[3] = {g->B, g->T, g->V};
  g->hidden = malloc((size_t)g->L * BT * g->d * sizeof(float));
  for (int i = 0; i <= g->L; i++) {
    char name[64];
    float *h;
    snprintf(name, sizeof name, "hidden_states.%d", i);
    if (tl_st_get_f32(&fw, name, 3, hs, &h)) goto done;
    if (i == g->L) g->final = h;
    else memcpy(g->hidden + (size_t)i * BT * g->d, h, BT * g->d * sizeof(float)), free(h);
  }
  if (tl_st_get_f32(&fw, "logits", 3, ls, &g->logits) || tl_st_open(&g->gold, lpath)) goto done;

  /* the lens folder, checked against the model: sizes, and the unembed hash */
  char hash[65];
  if (tl_unembed_hash(g->u.W_U, g->V, g->d, hash)) goto done;
  tl_lens_expect ex = {g->d, g->L, hash};
  tl_lens_config lc;
  float *params = NULL;
  int mismatch = 0;
  if (tl_lens_dir_load(ldir, &ex, &lc, &params, &mismatch)) goto done;
  CHECKF(!mismatch, "%s: the lens's unembed_hash differs from the model's output embedding (%s)", family, hash);
  tl_lens_config_free(&lc);
  if (tl_lens_init(&g->lens, g->L, g->d)) {
    free(params);
    goto done;
  }
  memcpy(g->lens.params, params, (size_t)g->lens.n_params * sizeof(float));
  free(params);
  rc = 0;
done:
  tl_st_close(&fw); /* safe on a zeroed or half-opened file */
  free(ids64), free(dir), free(mdir), free(fwd), free(lpath), free(ldir);
  return rc;
}

static void close_golden(golden *g) {
  tl_model_free(g->model);
  free(g->hidden), free(g->final), free(g->logits), free(g->ids);
  tl_st_close(&g->gold);
  tl_lens_free(&g->lens);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <family>\n", argv[0]);
    return 2;
  }
  golden g;
  if (open_golden(&g, argv[1])) {
    fprintf(stderr, "%s: %s\n", argv[1], tl_errmsg());
    return 1;
  }
  const int L = g.L, B = g.B, T = g.T, d = g.d, V = g.V;
  const size_t BT = (size_t)B * T;
  char name[64];
  double worst = 0;
  CHECKF(tl_lens_check(&g.lens, &g.u) == 0, "%s", tl_errmsg());

  /* lens logits of every stream */
  float *logits = malloc(BT * V * sizeof(float));
  for (int i = 0; i < L; i++) {
    CHECKF(tl_lens_logits(&g.lens, &g.u, i, g.hidden + (size_t)i * BT * d, (int)BT, logits, NULL) == 0, "%s",
           tl_errmsg());
    snprintf(name, sizeof name, "lens_logits.%d", i);
    expect(&g, name, logits, (int64_t)BT * V, &worst);
  }

  /* kl and its gradient, the model's distribution from its logits and from its
   * final hidden state; several chunks, the last one partial */
  tl_lens_cfg cfg = tl_lens_cfg_default();
  cfg.chunk = 7;
  float *grad = malloc((size_t)g.lens.n_params * sizeof(float)), *losses = malloc(L * sizeof(float));
  for (int from_hidden = 0; from_hidden < 2; from_hidden++) {
    cfg.final_hidden = from_hidden ? g.final : NULL;
    memset(grad, 0, (size_t)g.lens.n_params * sizeof(float));
    CHECKF(tl_lens_train_micro(&g.lens, &g.u, &cfg, g.hidden, from_hidden ? NULL : g.logits, NULL, B, T, 1.0f, grad,
                               losses) == 0, "%s", tl_errmsg());
    for (int i = 0; i < L; i++) {
      snprintf(name, sizeof name, "kl.%d", i);
      expect(&g, name, &losses[i], 1, &worst);
      snprintf(name, sizeof name, "grad.%d.weight", i);
      expect(&g, name, grad + tl_lens_weight_off(&g.lens, i), (int64_t)d * d, &worst);
      snprintf(name, sizeof name, "grad.%d.bias", i);
      expect(&g, name, grad + tl_lens_bias_off(&g.lens, i), d, &worst);
    }
  }

  /* ce through the training step, and ce and kl through the evaluation */
  cfg.final_hidden = NULL;
  cfg.loss = TL_LOSS_CE;
  cfg.token_shift = TL_SHIFT_DEFAULT;
  memset(grad, 0, (size_t)g.lens.n_params * sizeof(float));
  CHECKF(tl_lens_train_micro(&g.lens, &g.u, &cfg, g.hidden, NULL, g.ids, B, T, 1.0f, grad, losses) == 0, "%s",
         tl_errmsg());
  for (int i = 0; i < L; i++) {
    snprintf(name, sizeof name, "ce.%d", i);
    expect(&g, name, &losses[i], 1, &worst);
    tl_lens_eval_out ev;
    CHECK(tl_lens_eval(&g.lens, i, &g.u, g.hidden + (size_t)i * BT * d, g.logits, g.ids, B, T, 1, 5, &ev, NULL,
                       NULL) == 0);
    float v[2] = {(float)(ev.ce_sum / ev.n_ce), (float)(ev.kl_sum / ev.n_all)};
    expect(&g, name, &v[0], 1, &worst);
    snprintf(name, sizeof name, "kl.%d", i);
    expect(&g, name, &v[1], 1, &worst);
  }

  /* three optimizer steps; step k trains on sequence k alone */
  tl_opt_cfg oc = tl_opt_cfg_default();
  tl_optim opt;
  CHECK(tl_optim_init(&opt, &oc, 0, g.lens.n_params) == 0);
  float *hk = malloc((size_t)L * T * d * sizeof(float));
  cfg = tl_lens_cfg_default();
  for (int k = 0; k < 3 && k < B; k++) {
    for (int i = 0; i < L; i++)
      memcpy(hk + (size_t)i * T * d, g.hidden + ((size_t)i * BT + (size_t)k * T) * d, (size_t)T * d * sizeof(float));
    memset(grad, 0, (size_t)g.lens.n_params * sizeof(float));
    CHECK(tl_lens_train_micro(&g.lens, &g.u, &cfg, hk, g.logits + (size_t)k * T * V, NULL, 1, T, 1.0f, grad,
                              NULL) == 0);
    float norm = (float)sqrt(tl_sumsq(grad, g.lens.n_params));
    snprintf(name, sizeof name, "step%d.grad_norm", k);
    expect(&g, name, &norm, 1, &worst);
    tl_scale(grad, g.lens.n_params, tl_clip_coef(norm, 1.0));
    tl_lens_optim_step(&g.lens, &opt, grad, opt.lr * tl_lr_lambda(k, 0, 3));
    for (int i = 0; i < L; i++) {
      snprintf(name, sizeof name, "step%d.%d.weight", k, i);
      expect(&g, name, g.lens.params + tl_lens_weight_off(&g.lens, i), (int64_t)d * d, &worst);
      snprintf(name, sizeof name, "step%d.%d.bias", k, i);
      expect(&g, name, g.lens.params + tl_lens_bias_off(&g.lens, i), d, &worst);
    }
  }
  fprintf(stderr, "%s: lens goldens max error %.3g\n", g.family, worst);
  tl_optim_free(&opt);
  free(hk), free(grad), free(losses), free(logits);
  close_golden(&g);
  return tl_test_finish("test_family_lens");
}
