/* The lens against the PyTorch goldens of fixtures/golden/{gpt2,gpt_neox,llama}:
 * lens logits, kl and ce per stream, the gradients of sum_i kl_i, and three SGD
 * (Nesterov) steps with global-norm clipping and a linear decay schedule, all
 * computed by tuned-lens 0.2.0 / PyTorch from the same lens/params.pt. */
#include "lens_golden.h"

#define TOL 1e-5

static void check_family(const char *fam) {
  golden g;
  if (golden_open(&g, fam)) {
    CHECKF(0, "%s: cannot open golden: %s", fam, tl_errmsg());
    return;
  }
  const int L = g.L, B = g.B, T = g.T, d = g.d, V = g.V;
  const size_t BT = (size_t)B * T;
  char name[64];
  CHECK(tl_lens_check(&g.lens, &g.u) == 0);

  /* lens logits of every stream, with two chunk sizes */
  float *logits = malloc(BT * V * sizeof(float));
  for (int i = 0; i < L; i++) {
    snprintf(name, sizeof name, "lens_logits.%d", i);
    float *ref = lg_get(&g, name, (int64_t)BT * V);
    tl_lens_logits(&g.lens, &g.u, i, g.hidden + (size_t)i * BT * d, (int)BT, logits, NULL);
    double e = tl_test_maxerr(logits, ref, (long)(BT * V));
    CHECKF(e < TOL, "%s %s: max err %g", fam, name, e);
    free(ref);
  }

  /* kl (and its gradient) and ce, through the training step */
  tl_lens_cfg cfg = tl_lens_cfg_default();
  cfg.chunk = 7; /* several chunks, the last one partial */
  float *grad = calloc((size_t)g.lens.n_params, sizeof(float)), *losses = malloc(L * sizeof(float));
  /* the model's distribution from its logits, then from its last hidden state
   * (HF's hidden_states[L], after the final norm: what training uses) */
  for (int from_hidden = 0; from_hidden < 2; from_hidden++) {
    const char *via = from_hidden ? " (from hidden_states.L)" : "";
    cfg.final_hidden = from_hidden ? g.final : NULL;
    memset(grad, 0, (size_t)g.lens.n_params * sizeof(float));
    CHECK(tl_lens_train_micro(&g.lens, &g.u, &cfg, g.hidden, from_hidden ? NULL : g.logits, NULL, B, T, 1.0f, grad,
                              losses) == 0);
    for (int i = 0; i < L; i++) {
      snprintf(name, sizeof name, "kl.%d", i);
      float *ref = lg_get(&g, name, 1);
      CHECKF(tl_test_maxerr(&losses[i], ref, 1) < TOL, "%s %s%s: %.8f vs %.8f", fam, name, via, losses[i], ref[0]);
      free(ref);
      snprintf(name, sizeof name, "grad.%d.weight", i);
      ref = lg_get(&g, name, (int64_t)d * d);
      double e = tl_test_maxerr(grad + tl_lens_weight_off(&g.lens, i), ref, (long)d * d);
      CHECKF(e < TOL, "%s %s: max err %g", fam, name, e);
      free(ref);
      snprintf(name, sizeof name, "grad.%d.bias", i);
      ref = lg_get(&g, name, d);
      e = tl_test_maxerr(grad + tl_lens_bias_off(&g.lens, i), ref, d);
      CHECKF(e < TOL, "%s %s%s: max err %g", fam, name, via, e);
      free(ref);
    }
  }
  /* both sources at once is a caller's error */
  CHECK(tl_lens_train_micro(&g.lens, &g.u, &cfg, g.hidden, g.logits, NULL, B, T, 1.0f, grad, losses) == -1 &&
        strstr(tl_errmsg(), "not both"));
  cfg.final_hidden = NULL;
  cfg.loss = TL_LOSS_CE;
  cfg.token_shift = TL_SHIFT_DEFAULT;
  memset(grad, 0, (size_t)g.lens.n_params * sizeof(float));
  CHECK(tl_lens_train_micro(&g.lens, &g.u, &cfg, g.hidden, NULL, g.ids, B, T, 1.0f, grad, losses) == 0);
  for (int i = 0; i < L; i++) {
    snprintf(name, sizeof name, "ce.%d", i);
    float *ref = lg_get(&g, name, 1);
    CHECKF(tl_test_maxerr(&losses[i], ref, 1) < TOL, "%s %s: %.8f vs %.8f", fam, name, losses[i], ref[0]);
    /* the evaluation path gives the same numbers */
    tl_lens_eval_out ev;
    CHECK(tl_lens_eval(&g.lens, i, &g.u, g.hidden + (size_t)i * BT * d, g.logits, g.ids, B, T, 1, 5, &ev, NULL, NULL) == 0);
    CHECK(ev.n_all == (int64_t)BT && ev.n_ce == (int64_t)B * (T - 1));
    float ce = (float)(ev.ce_sum / ev.n_ce), kl = (float)(ev.kl_sum / ev.n_all);
    CHECKF(tl_test_maxerr(&ce, ref, 1) < TOL, "%s eval ce.%d: %.8f vs %.8f", fam, i, ce, ref[0]);
    free(ref);
    snprintf(name, sizeof name, "kl.%d", i);
    ref = lg_get(&g, name, 1);
    CHECKF(tl_test_maxerr(&kl, ref, 1) < TOL, "%s eval kl.%d: %.8f vs %.8f", fam, i, kl, ref[0]);
    free(ref);
  }

  /* three optimizer steps; step k trains on sequence k alone */
  tl_opt_cfg oc = tl_opt_cfg_default();
  tl_optim opt;
  CHECK(tl_optim_init(&opt, &oc, 0, g.lens.n_params) == 0);
  float *hk = malloc((size_t)L * T * d * sizeof(float));
  cfg = tl_lens_cfg_default();
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < L; i++)
      memcpy(hk + (size_t)i * T * d, g.hidden + ((size_t)i * BT + (size_t)k * T) * d, (size_t)T * d * sizeof(float));
    memset(grad, 0, (size_t)g.lens.n_params * sizeof(float));
    CHECK(tl_lens_train_micro(&g.lens, &g.u, &cfg, hk, g.logits + (size_t)k * T * V, NULL, 1, T, 1.0f, grad,
                              NULL) == 0);
    float norm = (float)sqrt(tl_sumsq(grad, g.lens.n_params));
    snprintf(name, sizeof name, "step%d.grad_norm", k);
    float *ref = lg_get(&g, name, 1);
    CHECKF(tl_test_maxerr(&norm, ref, 1) < TOL, "%s %s: %.8f vs %.8f", fam, name, norm, ref[0]);
    free(ref);
    tl_scale(grad, g.lens.n_params, tl_clip_coef(norm, 1.0));
    tl_lens_optim_step(&g.lens, &opt, grad, opt.lr * tl_lr_lambda(k, 0, 3));
    for (int i = 0; i < L; i++) {
      snprintf(name, sizeof name, "step%d.%d.weight", k, i);
      ref = lg_get(&g, name, (int64_t)d * d);
      double e = tl_test_maxerr(g.lens.params + tl_lens_weight_off(&g.lens, i), ref, (long)d * d);
      CHECKF(e < TOL, "%s %s: max err %g", fam, name, e);
      free(ref);
      snprintf(name, sizeof name, "step%d.%d.bias", k, i);
      ref = lg_get(&g, name, d);
      e = tl_test_maxerr(g.lens.params + tl_lens_bias_off(&g.lens, i), ref, d);
      CHECKF(e < TOL, "%s %s: max err %g", fam, name, e);
      free(ref);
    }
  }
  tl_optim_free(&opt);
  free(hk), free(grad), free(losses), free(logits);
  golden_close(&g);
}

int main(void) {
  check_family("gpt2");
  check_family("gpt_neox");
  check_family("llama");
  return tl_test_finish("test_lens_golden");
}
