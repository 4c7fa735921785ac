/* PyTorch-compatible SGD (Nesterov) and Adam (amsgrad) on flat fp32 arrays,
 * the HF linear warmup/decay schedule, and global-norm gradient clipping.
 *
 * Arithmetic follows PyTorch's CPU kernels: tensors are fp32 and scalar
 * coefficients (lr, momentum, weight decay) are rounded to fp32 when they meet a
 * tensor, while Adam's bias corrections are computed in double like PyTorch's
 * Python code does. */
#include "tlens/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"

tl_opt_cfg tl_opt_cfg_default(void) {
  tl_opt_cfg c = {TL_OPT_SGD, 1.0, 0.9, 1e-3};
  return c;
}

int tl_optim_n_state(tl_opt_kind kind) { return kind == TL_OPT_ADAM ? 3 : 1; }

int tl_optim_init(tl_optim *o, const tl_opt_cfg *cfg, int64_t off, int64_t n) {
  memset(o, 0, sizeof *o);
  if (cfg->kind != TL_OPT_SGD && cfg->kind != TL_OPT_ADAM)
    return tl_fail("optimizer: unknown kind %d (expected sgd or adam)", (int)cfg->kind);
  if (!isfinite(cfg->lr_scale) || cfg->lr_scale <= 0)
    return tl_fail("optimizer: lr_scale must be a finite number > 0, got %g", cfg->lr_scale);
  if (!isfinite(cfg->momentum) || cfg->momentum < 0 || cfg->momentum >= 1)
    return tl_fail("optimizer: momentum must be in [0, 1), got %g", cfg->momentum);
  if (!isfinite(cfg->weight_decay) || cfg->weight_decay < 0)
    return tl_fail("optimizer: weight_decay must be a finite number >= 0, got %g", cfg->weight_decay);
  if (off < 0 || n < 0) return tl_fail("optimizer: bad shard [%lld, +%lld)", (long long)off, (long long)n);
  o->kind = cfg->kind;
  o->momentum = cfg->momentum;
  o->weight_decay = cfg->weight_decay;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  /* PyTorch's SGD effectively multiplies the step by 1/(1-momentum); the reference
   * undoes that so that lr_scale 1 is a sensible default. */
  o->lr = cfg->kind == TL_OPT_SGD ? cfg->lr_scale * (1.0 - cfg->momentum) : cfg->lr_scale * 1e-3;
  o->off = off;
  o->n = n;
  size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
  o->m = tl_calloc(1, bytes);
  if (cfg->kind == TL_OPT_ADAM) {
    o->v = tl_calloc(1, bytes);
    o->vmax = tl_calloc(1, bytes);
  }
  return 0;
}

void tl_optim_free(tl_optim *o) {
  free(o->m);
  free(o->v);
  free(o->vmax);
  memset(o, 0, sizeof *o);
}

static void sgd_update(tl_optim *o, double lr, float *p, const float *g, float *buf, int64_t n) {
  const float wd = (float)o->weight_decay, mom = (float)o->momentum, neg_lr = (float)-lr;
  const int first = o->step == 0; /* PyTorch: the buffer starts as a copy of the first d_p */
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    float d = g[i] + wd * p[i];
    float b = first ? d : mom * buf[i] + d;
    buf[i] = b;
    d = d + mom * b; /* Nesterov */
    p[i] = p[i] + neg_lr * d;
  }
}

static void adam_update(tl_optim *o, double lr, float *p, const float *g, float *m, float *v, float *vmax,
                        int64_t n) {
  const double t = (double)(o->step + 1);
  const double bc1 = 1.0 - pow(o->momentum, t), bc2 = 1.0 - pow(o->beta2, t);
  const float wd = (float)o->weight_decay;
  const float b1 = (float)o->momentum, one_b1 = (float)(1.0 - o->momentum);
  const float b2 = (float)o->beta2, one_b2 = (float)(1.0 - o->beta2);
  const float bc2_sqrt = (float)sqrt(bc2), eps = (float)o->eps;
  const float neg_step = (float)(-lr / bc1);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    float d = g[i] + wd * p[i];
    m[i] = m[i] * b1 + one_b1 * d;
    v[i] = v[i] * b2 + one_b2 * d * d;
    if (v[i] > vmax[i]) vmax[i] = v[i];
    float denom = sqrtf(vmax[i]) / bc2_sqrt + eps;
    p[i] = p[i] + neg_step * (m[i] / denom);
  }
}

void tl_optim_update(tl_optim *o, double lr, float *param, const float *grad, int64_t s, int64_t n) {
  if (n <= 0) return;
  if (o->kind == TL_OPT_SGD)
    sgd_update(o, lr, param, grad, o->m + s, n);
  else
    adam_update(o, lr, param, grad, o->m + s, o->v + s, o->vmax + s, n);
}

void tl_optim_finish_step(tl_optim *o) { o->step++; }

double tl_lr_lambda(int64_t step, int64_t warmup, int64_t num_training_steps) {
  if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
  int64_t span = num_training_steps - warmup;
  double f = (double)(num_training_steps - step) / (double)(span > 1 ? span : 1);
  return f > 0 ? f : 0.0;
}

int64_t tl_default_warmup(tl_opt_kind kind, int64_t num_steps) {
  if (kind != TL_OPT_ADAM) return 0;
  int64_t w = num_steps / 5;
  return w < 1000 ? w : 1000;
}

/* Sums fixed blocks in parallel, then the blocks in order: the result is the same
 * bits whatever the thread count or timing (an OpenMP reduction adds the threads'
 * partials in the order they finish), so the clipping, and with it a resumed
 * run, is reproducible exactly. */
double tl_sumsq(const float *g, int64_t n) {
  enum { MAXB = 1024 };
  int64_t per = 16384; /* elements per block, grown so that there are at most MAXB */
  while ((n + per - 1) / per > MAXB) per *= 2;
  const int64_t nb = (n + per - 1) / per;
  double part[MAXB];
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < nb; b++) {
    const int64_t lo = b * per, hi = lo + per < n ? lo + per : n;
    double s = 0;
    for (int64_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
    part[b] = s;
  }
  double s = 0;
  for (int64_t b = 0; b < nb; b++) s += part[b];
  return s;
}

float tl_clip_coef(double total_norm, double max_norm) {
  float c = (float)max_norm / ((float)total_norm + 1e-6f);
  return c < 1.0f ? c : 1.0f;
}

void tl_scale(float *g, int64_t n, float c) {
  if (c == 1.0f) return;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) g[i] *= c;
}
