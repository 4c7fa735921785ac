/* The lens against the PyTorch goldens of fixtures/golden/{gpt2,gpt_neox,llama}:
 * lens logits, kl and ce per stream, the gradients of sum_i kl_i, and three SGD
 * (Nesterov) steps with global-norm clipping and a linear decay schedule, all
 * computed by tuned-lens 0.2.0 / PyTorch from the same lens/params.pt. */
#include "lens_golden.h"

#define TOL 1e-5

/* Mean ce and kl of an evaluation of stream i against the goldens ce.<i>, kl.<i>. */
static void expect_metrics(golden *g, const char *fam, const char *path, int i, const tl_lens_eval_out *o) {
  const float v[2] = {(float)(o->ce_sum / o->n_ce), (float)(o->kl_sum / o->n_all)};
  const char *key[2] = {"ce", "kl"};
  for (int k = 0; k < 2; k++) {
    char name[64];
    snprintf(name, sizeof name, "%s.%d", key[k], i);
    float *ref = lg_get(g, name, 1);
    CHECKF(tl_test_maxerr(&v[k], ref, 1) < TOL, "%s %s %s: %.8f vs %.8f", fam, path, name, v[k], ref[0]);
    free(ref);
  }
}

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
    CHECK(tl_lens_eval(&g.lens, i, &g.u, g.hidden + (size_t)i * BT * d, g.logits, g.ids, B, T, 1, 5, &ev, NULL,
                       NULL) == 0);
    CHECK(ev.n_all == (int64_t)BT && ev.n_ce == (int64_t)B * (T - 1));
    free(ref);
    expect_metrics(&g, fam, "eval", i, &ev);
  }

  /* every stream at once from the hidden states alone (tl_lens_eval_all, what
   * `tlens eval` runs): ce and kl against the goldens; entropy, probability
   * sums and the baseline against the per-stream path on the model's logits */
  {
    float *hid = malloc((L + 1) * BT * d * sizeof(float));
    memcpy(hid, g.hidden, L * BT * d * sizeof(float));
    memcpy(hid + L * BT * d, g.final, BT * d * sizeof(float));
    tl_lens_eval_out all[8], fo, one, fo1;
    float *ps = calloc((size_t)(L + 1) * V, sizeof(float)), *ps1 = calloc((size_t)(L + 1) * V, sizeof(float));
    CHECK(L <= 8);
    for (int logit = 0; logit < 2; logit++) {
      const tl_lens *use = logit ? NULL : &g.lens;
      memset(ps, 0, (size_t)(L + 1) * V * sizeof(float)), memset(ps1, 0, (size_t)(L + 1) * V * sizeof(float));
      CHECK(tl_lens_eval_all(use, L, &g.u, hid, g.ids, B, T, 1, 4, all, &fo, ps, ps + (size_t)L * V, NULL) == 0);
      for (int i = 0; i < L; i++) {
        CHECK(all[i].n_all == (int64_t)BT && all[i].n_ce == (int64_t)B * (T - 1));
        if (!logit) expect_metrics(&g, fam, "eval_all", i, &all[i]);
        CHECK(tl_lens_eval(use, i, &g.u, g.hidden + (size_t)i * BT * d, g.logits, g.ids, B, T, 1, 0, &one,
                           ps1 + (size_t)i * V, NULL) == 0);
        float a[3] = {(float)(all[i].ce_sum / BT), (float)(all[i].kl_sum / BT), (float)(all[i].entropy_sum / BT)};
        float b[3] = {(float)(one.ce_sum / BT), (float)(one.kl_sum / BT), (float)(one.entropy_sum / BT)};
        CHECKF(tl_test_maxerr(a, b, 3) < TOL, "%s eval_all stream %d (%s lens) differs from tl_lens_eval", fam, i,
               logit ? "logit" : "tuned");
      }
      CHECK(tl_lens_eval_final(g.logits, V, g.ids, B, T, 1, &fo1, ps1 + (size_t)L * V) == 0);
      float a[2] = {(float)(fo.ce_sum / BT), (float)(fo.entropy_sum / BT)};
      float b[2] = {(float)(fo1.ce_sum / BT), (float)(fo1.entropy_sum / BT)};
      CHECK(fo.n_ce == fo1.n_ce && fo.n_all == fo1.n_all && tl_test_maxerr(a, b, 2) < TOL);
      CHECKF(tl_test_maxerr(ps, ps1, (long)(L + 1) * V) < TOL, "%s eval_all probability sums", fam);
    }
    /* a lens whose layer count differs from the streams' is refused */
    CHECK(tl_lens_eval_all(&g.lens, L + 1, &g.u, hid, g.ids, B, T, 1, 0, all, NULL, NULL, NULL, NULL) == -1 &&
          strstr(tl_errmsg(), "translators"));
    free(hid), free(ps), free(ps1);
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
