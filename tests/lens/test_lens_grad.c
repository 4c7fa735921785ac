/* The fused lens step on tiny random problems against a naive double-precision
 * reference written out here (translator, final norm, unembedding,
 * log-softmax, loss): losses, finite-difference gradients, token shifts, chunk
 * sizes, loss scaling, bias_only, evaluation metrics, and input validation. */
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/lens.h"

enum { L = 2, B = 2, T = 5, D = 6, V = 11, SEG = D * D + D, NP = L * SEG }; /* SEG: one translator's parameters */

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

/* A random unembedding, hidden states, model logits and ids, and a random lens
 * whose parameters are also kept in double (P) for the reference. */
typedef struct {
  tl_unembed u;
  float nw[D], nb[D], WU[V * D], bU[V];
  float hidden[L * B * T * D], logits[B * T * V];
  int32_t ids[B * T];
  tl_lens lens;
  double P[NP];
} problem;

static void make_problem(problem *p, tl_norm_kind norm, int with_bU, int add_one) {
  for (int i = 0; i < D; i++) p->nw[i] = 1 + 0.3f * frand(), p->nb[i] = 0.2f * frand();
  for (int i = 0; i < V * D; i++) p->WU[i] = frand();
  for (int i = 0; i < V; i++) p->bU[i] = 0.5f * frand();
  for (int i = 0; i < L * B * T * D; i++) p->hidden[i] = 2 * frand();
  for (int i = 0; i < B * T * V; i++) p->logits[i] = 3 * frand();
  for (int i = 0; i < B * T; i++) p->ids[i] = (int32_t)((frand() + 1) * 0.5f * V) % V;
  tl_unembed u = {D, V, norm, 1e-5f, add_one, p->nw, norm == TL_NORM_LAYERNORM ? p->nb : NULL, p->WU,
                  with_bU ? p->bU : NULL};
  p->u = u;
  CHECK(tl_lens_init(&p->lens, L, D) == 0);
  for (int64_t k = 0; k < NP; k++) p->lens.params[k] = 0.3f * frand(), p->P[k] = p->lens.params[k];
}

static void free_problem(problem *p) { tl_lens_free(&p->lens); }

/* ---- the naive reference, in double ---- */

/* log-probabilities of the lens (translator params P, or the logit lens if P is
 * NULL) at flat position pos of stream i */
static void naive_logprobs(const problem *p, const double *P, int i, int pos, double *lq) {
  const float *h = p->hidden + ((size_t)i * B * T + pos) * D;
  double t[D], y[D];
  for (int o = 0; o < D; o++) {
    t[o] = h[o];
    if (P) {
      const double *W = P + (size_t)i * SEG, *b = W + D * D;
      t[o] += b[o];
      for (int k = 0; k < D; k++) t[o] += W[o * D + k] * h[k];
    }
  }
  double mean = 0, var = 0, ms = 0;
  for (int o = 0; o < D; o++) mean += t[o] / D, ms += t[o] * t[o] / D;
  for (int o = 0; o < D; o++) var += (t[o] - mean) * (t[o] - mean) / D;
  for (int o = 0; o < D; o++) {
    double g = p->nw[o] + (p->u.norm_add_one ? 1 : 0);
    if (p->u.norm == TL_NORM_LAYERNORM)
      y[o] = (t[o] - mean) / sqrt(var + p->u.eps) * g + p->nb[o];
    else
      y[o] = t[o] / sqrt(ms + p->u.eps) * g;
  }
  double mx = -1e300;
  for (int v = 0; v < V; v++) {
    lq[v] = p->u.b_U ? p->bU[v] : 0;
    for (int k = 0; k < D; k++) lq[v] += p->WU[v * D + k] * y[k];
    if (lq[v] > mx) mx = lq[v];
  }
  double s = 0;
  for (int v = 0; v < V; v++) s += exp(lq[v] - mx);
  for (int v = 0; v < V; v++) lq[v] -= mx + log(s);
}

static void model_logprobs(const problem *p, int pos, double *lp) {
  double mx = -1e300, s = 0;
  for (int v = 0; v < V; v++) mx = fmax(mx, p->logits[pos * V + v]);
  for (int v = 0; v < V; v++) s += exp(p->logits[pos * V + v] - mx);
  for (int v = 0; v < V; v++) lp[v] = p->logits[pos * V + v] - mx - log(s);
}

static double naive_loss(const problem *p, const double *P, int i, tl_loss_kind kind, int shift) {
  double sum = 0;
  int n = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      if (t + shift < 0 || t + shift >= T) continue;
      double lq[V], lp[V];
      naive_logprobs(p, P, i, b * T + t, lq);
      if (kind == TL_LOSS_KL) {
        model_logprobs(p, b * T + t + shift, lp);
        for (int v = 0; v < V; v++) sum += exp(lp[v]) * (lp[v] - lq[v]);
      } else {
        sum -= lq[p->ids[b * T + t + shift]];
      }
      n++;
    }
  return sum / n;
}

/* d(scale * loss_i) / dP[k] by central differences of the double-precision loss. */
static double fd_grad(problem *p, int i, int64_t k, tl_loss_kind kind, int shift, double scale) {
  const double eps = 1e-5, keep = p->P[k];
  p->P[k] = keep + eps;
  const double up = naive_loss(p, p->P, i, kind, shift);
  p->P[k] = keep - eps;
  const double dn = naive_loss(p, p->P, i, kind, shift);
  p->P[k] = keep;
  return scale * (up - dn) / (2 * eps);
}

/* The configurations of check_grad: the final norm, b_U, a 1 + w gain, the loss
 * and the token shift. */
typedef struct {
  tl_norm_kind norm;
  int with_bU, add_one;
  tl_loss_kind loss;
  int shift;
} grad_case;

static const grad_case grad_cases[] = {
    {TL_NORM_LAYERNORM, 0, 0, TL_LOSS_KL, TL_SHIFT_DEFAULT}, {TL_NORM_LAYERNORM, 1, 0, TL_LOSS_KL, 2},
    {TL_NORM_RMSNORM, 0, 0, TL_LOSS_KL, -1},                 {TL_NORM_RMSNORM, 1, 1, TL_LOSS_CE, TL_SHIFT_DEFAULT},
    {TL_NORM_LAYERNORM, 0, 0, TL_LOSS_CE, 0},
};

/* Loss and gradient of every stream against the reference (finite differences of
 * the double-precision loss), for one configuration. */
static void check_grad(const grad_case *c) {
  problem p;
  make_problem(&p, c->norm, c->with_bU, c->add_one);
  tl_lens_cfg cfg = {.loss = c->loss, .token_shift = c->shift, .chunk = 3};
  float grad[NP] = {0}, losses[L];
  const float scale = 0.5f;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, p.ids, B, T, scale, grad, losses) == 0);
  const int sh = tl_lens_shift(&cfg);
  double worst = 0;
  for (int i = 0; i < L; i++) {
    double ref = naive_loss(&p, p.P, i, c->loss, sh);
    CHECKF(fabs(losses[i] - ref) < 1e-5 * fmax(1, fabs(ref)), "norm %d loss %d shift %d stream %d: %.8f vs %.8f",
           c->norm, c->loss, sh, i, losses[i], ref);
    for (int64_t k = (int64_t)i * SEG; k < (int64_t)(i + 1) * SEG; k++) {
      const double fd = fd_grad(&p, i, k, c->loss, sh, scale);
      double e = fabs(grad[k] - fd) / fmax(1, fabs(fd));
      if (e > worst) worst = e;
    }
  }
  CHECKF(worst < 2e-5, "norm %d bU %d add_one %d loss %d shift %d: gradient vs finite differences: %g", c->norm,
         c->with_bU, c->add_one, c->loss, sh, worst);
  free_problem(&p);
}

typedef struct {
  const float *grad;
  const tl_lens *lens;
  float snap[NP]; /* stream i's part copied when it is reported done */
  int order[L + 1], calls, fail_at;
} done_log;

static int log_done(void *ctx, int i) {
  done_log *dl = ctx;
  if (dl->calls <= L) dl->order[dl->calls] = i;
  dl->calls++;
  if (i < 0 || i >= L) return tl_fail("stream %d out of range", i);
  const int64_t a = tl_lens_weight_off(dl->lens, i), n = SEG;
  memcpy(dl->snap + a, dl->grad + a, (size_t)n * sizeof(float));
  if (dl->fail_at && i == dl->fail_at) return tl_fail("callback refused stream %d", i);
  return 0;
}

/* Chunk sizes 1, 7 and "all" agree up to rounding; bias_only leaves weight grads alone. */
static void check_chunks(void) {
  problem p;
  make_problem(&p, TL_NORM_LAYERNORM, 1, 0);
  const int chunks[3] = {1, 7, 0};
  float g[3][NP], loss[3][L];
  for (int c = 0; c < 3; c++) {
    tl_lens_cfg cfg = {.loss = TL_LOSS_KL, .token_shift = TL_SHIFT_DEFAULT, .chunk = chunks[c]};
    memset(g[c], 0, sizeof g[c]);
    CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, NULL, B, T, 1.0f, g[c], loss[c]) == 0);
  }
  for (int c = 1; c < 3; c++) {
    CHECK(tl_test_maxerr(g[c], g[0], NP) < 1e-6);
    CHECK(tl_test_maxerr(loss[c], loss[0], L) < 1e-6);
  }
  /* stream_done: once per stream, in order, each time with that stream's final
   * gradient (a snapshot taken in the callback equals the result); a failing
   * callback stops the step with its message */
  {
    done_log dl = {.lens = &p.lens};
    float gd[NP];
    memset(gd, 0, sizeof gd);
    dl.grad = gd;
    tl_lens_cfg cd = {.loss = TL_LOSS_KL, .token_shift = TL_SHIFT_DEFAULT, .chunk = 7,
                      .stream_done = log_done, .stream_done_ctx = &dl};
    CHECK(tl_lens_train_micro(&p.lens, &p.u, &cd, p.hidden, p.logits, NULL, B, T, 1.0f, gd, NULL) == 0);
    CHECK(dl.calls == L);
    for (int i = 0; i < L; i++) CHECK(dl.order[i] == i);
    CHECK(memcmp(dl.snap, gd, sizeof gd) == 0 && memcmp(gd, g[1], sizeof gd) == 0);
    dl.calls = 0, dl.fail_at = 1;
    CHECK(tl_lens_train_micro(&p.lens, &p.u, &cd, p.hidden, p.logits, NULL, B, T, 1.0f, gd, NULL) == -1 &&
          strstr(tl_errmsg(), "callback refused stream 1") && dl.calls == 2);
  }
  /* accumulation: a second call adds the same gradient again */
  tl_lens_cfg cfg = {.loss = TL_LOSS_KL, .token_shift = TL_SHIFT_DEFAULT};
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, NULL, B, T, 1.0f, g[2], NULL) == 0);
  for (int k = 0; k < NP; k++) CHECK(fabsf(g[2][k] - 2 * g[0][k]) <= 1e-6f * fmaxf(1, fabsf(g[0][k])));
  /* bias_only */
  p.lens.bias_only = 1;
  float gb[NP] = {0};
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, NULL, B, T, 1.0f, gb, NULL) == 0);
  for (int i = 0; i < L; i++) {
    for (int k = 0; k < D * D; k++) CHECK(gb[tl_lens_weight_off(&p.lens, i) + k] == 0.0f);
    CHECK(tl_test_maxerr(gb + tl_lens_bias_off(&p.lens, i), g[0] + tl_lens_bias_off(&p.lens, i), D) < 1e-6);
  }
  int64_t a, b;
  tl_lens_segment(&p.lens, 1, &a, &b);
  CHECK(a == tl_lens_bias_off(&p.lens, 1) && b == a + D);
  free_problem(&p);
}

/* Evaluation metrics (tuned and logit lens, layer transfer, baseline) against the reference. */
static void check_eval(void) {
  problem p;
  make_problem(&p, TL_NORM_RMSNORM, 0, 0);
  for (int variant = 0; variant < 3; variant++) {
    const tl_lens *use = variant == 2 ? NULL : &p.lens;
    const int stream = 1, translator = variant == 1 ? 0 : 1; /* variant 1: translator 0 on stream 1 */
    const int shift = 1;
    tl_lens_eval_out ev;
    float probs[V] = {0};
    CHECK(tl_lens_eval(use, translator, &p.u, p.hidden + (size_t)stream * B * T * D, p.logits, p.ids, B, T, shift, 4,
                       &ev, probs, NULL) == 0);
    /* reference: translator `translator` applied to stream `stream`'s states
     * (naive_logprobs reads stream i with translator i: Q re-points it) */
    double kl = 0, ent = 0, ce = 0, pr[V] = {0}, Q[NP];
    memcpy(Q, p.P, sizeof Q);
    memcpy(Q + (size_t)stream * SEG, p.P + (size_t)translator * SEG, SEG * sizeof(double));
    int nce = 0;
    for (int pos = 0; pos < B * T; pos++) {
      double lq[V], lp[V];
      naive_logprobs(&p, use ? Q : NULL, stream, pos, lq);
      model_logprobs(&p, pos, lp);
      for (int v = 0; v < V; v++) {
        kl += exp(lp[v]) * (lp[v] - lq[v]);
        ent -= exp(lq[v]) * lq[v];
        pr[v] += exp(lq[v]);
      }
      int t = pos % T;
      if (t + shift < T) ce -= lq[p.ids[pos + shift]], nce++;
    }
    CHECK(ev.n_all == B * T && ev.n_ce == nce);
    CHECKF(fabs(ev.kl_sum - kl) < 1e-4 && fabs(ev.entropy_sum - ent) < 1e-4 && fabs(ev.ce_sum - ce) < 1e-4,
           "eval variant %d: kl %g/%g ent %g/%g ce %g/%g", variant, ev.kl_sum, kl, ev.entropy_sum, ent, ev.ce_sum, ce);
    for (int v = 0; v < V; v++) CHECK(fabs(probs[v] - pr[v]) < 1e-5);
  }
  /* baseline: the model's own distribution */
  tl_lens_eval_out ev;
  CHECK(tl_lens_eval_final(p.logits, V, p.ids, B, T, 1, &ev, NULL) == 0);
  double ent = 0, ce = 0;
  for (int pos = 0; pos < B * T; pos++) {
    double lp[V];
    model_logprobs(&p, pos, lp);
    for (int v = 0; v < V; v++) ent -= exp(lp[v]) * lp[v];
    if (pos % T + 1 < T) ce -= lp[p.ids[pos + 1]];
  }
  CHECKF(fabs(ev.entropy_sum - ent) < 1e-4 && fabs(ev.ce_sum - ce) < 1e-4 && ev.kl_sum == 0, "baseline");
  /* logits for a few tokens equal the reference log-probs up to a per-row constant */
  float lg[3 * V];
  tl_lens_logits(&p.lens, &p.u, 0, p.hidden, 3, lg, NULL);
  for (int r = 0; r < 3; r++) {
    double lq[V];
    naive_logprobs(&p, p.P, 0, r, lq);
    for (int v = 1; v < V; v++) CHECK(fabs((lg[r * V + v] - lg[r * V]) - (lq[v] - lq[0])) < 1e-4);
  }
  free_problem(&p);
}

static void check_errors(void) {
  problem p;
  make_problem(&p, TL_NORM_LAYERNORM, 0, 0);
  float grad[NP] = {0};
  tl_lens_cfg cfg = {.loss = TL_LOSS_CE, .token_shift = TL_SHIFT_DEFAULT};
  p.ids[3] = V;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, p.ids, B, T, 1, grad, NULL) == -1 &&
        strstr(tl_errmsg(), "vocabulary"));
  p.ids[3] = -1;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, p.ids, B, T, 1, grad, NULL) == -1);
  p.ids[3] = 0;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, NULL, B, T, 1, grad, NULL) == -1 &&
        strstr(tl_errmsg(), "ids"));
  cfg.token_shift = T;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, p.ids, B, T, 1, grad, NULL) == -1 &&
        strstr(tl_errmsg(), "token_shift"));
  cfg = tl_lens_cfg_default();
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, NULL, p.ids, B, T, 1, grad, NULL) == -1 &&
        strstr(tl_errmsg(), "logits"));
  cfg.chunk = -2;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, NULL, B, T, 1, grad, NULL) == -1);
  cfg.chunk = 0;
  cfg.loss = (tl_loss_kind)5;
  CHECK(tl_lens_train_micro(&p.lens, &p.u, &cfg, p.hidden, p.logits, NULL, B, T, 1, grad, NULL) == -1);
  tl_unembed bad = p.u;
  bad.d_model = D + 1;
  cfg = tl_lens_cfg_default();
  CHECK(tl_lens_train_micro(&p.lens, &bad, &cfg, p.hidden, p.logits, NULL, B, T, 1, grad, NULL) == -1 &&
        strstr(tl_errmsg(), "d_model"));
  bad = p.u;
  bad.norm_b = NULL;
  CHECK(tl_lens_check(&p.lens, &bad) == -1);
  tl_lens_eval_out ev;
  CHECK(tl_lens_eval(&p.lens, L, &p.u, p.hidden, p.logits, NULL, B, T, 1, 0, &ev, NULL, NULL) == -1 &&
        strstr(tl_errmsg(), "translator"));
  for (int k = 0; k < NP; k++) CHECK(grad[k] == 0); /* failures wrote nothing */
  free_problem(&p);
}

int main(void) {
  for (size_t c = 0; c < sizeof grad_cases / sizeof grad_cases[0]; c++) check_grad(&grad_cases[c]);
  check_chunks();
  check_eval();
  check_errors();
  return tl_test_finish("test_lens_grad");
}
