/* Row math shared by the CPU backend, the lens and the CUDA kernels: the scalar
 * formulas of the activations, the norms and the softmax family, written once as
 * small static inline functions that compile for the host and, under nvcc, for the
 * device as well (TL_HD). The CPU tests against the PyTorch goldens therefore run
 * the very formulas the GPU kernels run.
 *
 * Strided row loops. A function that walks a row takes (i0, step) and visits
 * i = i0, i0 + step, ... < n. A CPU thread passes (0, 1) and gets the whole row; a
 * CUDA block passes (threadIdx.x, blockDim.x), each thread getting its share, and
 * adds the threads' partial sums between the passes (block_reduce in cuda_ops.cu).
 * The tl_*_row functions below are the whole-row forms for one thread.
 *
 * Row statistics (the sums behind means, variances and softmax denominators) are
 * accumulated in double on both sides: long rows lose nothing, and host and device
 * differ only in the order of their additions. */
#ifndef TLENS_ROWMATH_H
#define TLENS_ROWMATH_H

#include <math.h>

#include "tlens/backend.h" /* tl_act */

#ifdef __CUDACC__
#define TL_HD __host__ __device__
#else
#define TL_HD
#endif

/* ---- activations (tl_act) ---- */

/* gelu_new: the tanh approximation (gelu_new, gelu_fast, gelu_pytorch_tanh) */
static inline TL_HD float tl_gelu_new(float x) {
  const float k = 0.7978845608028654f; /* sqrt(2/pi) */
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}
/* gelu: exact, with erf */
static inline TL_HD float tl_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }
/* silu (swish): x * sigmoid(x) */
static inline TL_HD float tl_silu(float x) { return x / (1.0f + expf(-x)); }
static inline TL_HD float tl_relu(float x) { return x > 0.0f ? x : 0.0f; }

static inline TL_HD float tl_act_apply(float x, tl_act kind) {
  switch (kind) {
  case TL_ACT_GELU_NEW: return tl_gelu_new(x);
  case TL_ACT_GELU: return tl_gelu(x);
  case TL_ACT_SILU: return tl_silu(x);
  case TL_ACT_RELU: return tl_relu(x);
  }
  return x;
}

/* ---- row sums ---- */

/* sum of x[i] */
static inline TL_HD double tl_row_sum(const float *x, int i0, int n, int step) {
  double s = 0;
  for (int i = i0; i < n; i += step) s += x[i];
  return s;
}

/* sum of (x[i] - c)^2 (c = 0: the sum of squares) */
static inline TL_HD double tl_row_sqdev(const float *x, double c, int i0, int n, int step) {
  double s = 0;
  for (int i = i0; i < n; i += step) {
    const double v = x[i] - c;
    s += v * v;
  }
  return s;
}

/* largest x[i] (-inf for none) */
static inline TL_HD float tl_row_max(const float *x, int i0, int n, int step) {
  float mx = -INFINITY;
  for (int i = i0; i < n; i += step) mx = x[i] > mx ? x[i] : mx;
  return mx;
}

/* ---- norms ----
 * LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b, biased variance, two passes
 * over the row (the mean, then the squared deviations from it) rather than one of
 * sum and sum of squares, which cancels badly when |mean| >> std.
 * RMSNorm: y = x / sqrt(mean(x^2) + eps) * g. */

/* 1 / sqrt(sq / d + eps): the reciprocal std (or rms) of a row of d from its sum of squares */
static inline TL_HD float tl_norm_rstd(double sq, int d, float eps) {
  return (float)(1.0 / sqrt(sq / d + (double)eps));
}

/* y[i] = (x[i] - mean) * rstd * w[i] (+ b[i] when b is non-NULL); y may be x */
static inline TL_HD void tl_layernorm_apply(float *y, const float *x, float mean, float rstd, const float *w,
                                            const float *b, int i0, int n, int step) {
  for (int i = i0; i < n; i += step) {
    const float v = (x[i] - mean) * rstd * w[i];
    y[i] = b ? v + b[i] : v;
  }
}

/* y[i] = x[i] * rstd * g[i], g = 1 + w (add_one, Gemma-style) or w; y may be x */
static inline TL_HD void tl_rmsnorm_apply(float *y, const float *x, float rstd, const float *w, int add_one, int i0,
                                          int n, int step) {
  for (int i = i0; i < n; i += step) y[i] = (x[i] * rstd) * (add_one ? 1.0f + w[i] : w[i]);
}

/* One row of d; *mean and *rstd (may be NULL) keep what the backward pass needs. */
static inline TL_HD void tl_layernorm_row(float *y, const float *x, const float *w, const float *b, int d, float eps,
                                          float *mean, float *rstd) {
  const double m = tl_row_sum(x, 0, d, 1) / d;
  const float rs = tl_norm_rstd(tl_row_sqdev(x, m, 0, d, 1), d, eps);
  tl_layernorm_apply(y, x, (float)m, rs, w, b, 0, d, 1);
  if (mean) *mean = (float)m;
  if (rstd) *rstd = rs;
}

static inline TL_HD void tl_rmsnorm_row(float *y, const float *x, const float *w, int add_one, int d, float eps,
                                        float *rstd) {
  const float rs = tl_norm_rstd(tl_row_sqdev(x, 0.0, 0, d, 1), d, eps);
  tl_rmsnorm_apply(y, x, rs, w, add_one, 0, d, 1);
  if (rstd) *rstd = rs;
}

/* dx = d LayerNorm(x) / dx applied to dy, one row, with the effective gain g and
 * the row's mean and rstd from the forward pass. xhat = (x - mean) rstd, y = xhat g + b:
 *   dx = rstd (g dy - mean(g dy) - xhat mean(g dy xhat)) */
static inline TL_HD void tl_layernorm_row_backward(float *dx, const float *x, const float *dy, const float *g,
                                                   float mean, float rstd, int d) {
  double s1 = 0, s2 = 0;
  for (int i = 0; i < d; i++) {
    const float a = g[i] * dy[i], xh = (x[i] - mean) * rstd;
    s1 += a;
    s2 += (double)a * xh;
  }
  const float m1 = (float)(s1 / d), m2 = (float)(s2 / d);
  for (int i = 0; i < d; i++) {
    const float xh = (x[i] - mean) * rstd;
    dx[i] = rstd * (g[i] * dy[i] - m1 - xh * m2);
  }
}

/* The same for RMSNorm: y = g x rstd, rstd = (mean(x^2) + eps)^-1/2:
 *   dx = rstd g dy - x rstd^3 mean(g dy x) */
static inline TL_HD void tl_rmsnorm_row_backward(float *dx, const float *x, const float *dy, const float *g,
                                                 float rstd, int d) {
  double s = 0;
  for (int i = 0; i < d; i++) s += (double)g[i] * dy[i] * x[i];
  const float c = (float)(s / d) * rstd * rstd * rstd;
  for (int i = 0; i < d; i++) dx[i] = rstd * g[i] * dy[i] - x[i] * c;
}

/* ---- rotary position embedding (rotate-half form) ---- */

/* inv_freq[i] = 1 / theta^(2i / rot_dim), in fp32 as HF computes it; both
 * backends make these on the host, so their angles t * inv_freq agree bit for bit */
static inline TL_HD float tl_rope_inv_freq(float theta, int i, int rot_dim) {
  return 1.0f / powf(theta, (float)(2 * i) / (float)rot_dim);
}

/* rotates the pair (x[k], x[k + half]) by the angle with cosine co and sine si */
static inline TL_HD void tl_rope_rotate(float *x, int k, int half, float co, float si) {
  const float a = x[k], b = x[k + half];
  x[k] = a * co - b * si;
  x[k + half] = b * co + a * si;
}

/* ---- softmax, log-sum-exp, KL, cross-entropy ----
 * A row of logits z with mx = max z, e = exp(z - mx) and s = sum e has
 *   q = e / s,   log q = z - mx - log s,   logsumexp z = mx + log s.
 * Against a target distribution p (with sum p log p and sum p known):
 *   KL(p || q) = sum p log p - sum p (z - mx) + log(s) sum p
 *   H(q)       = log s - sum e (z - mx) / s
 *   -log q_y   = mx + log s - z_y
 * and the gradients of g times each with respect to z:
 *   KL: g (q - p);   cross-entropy: g q, minus g at the label y.
 * The finishers below take the sums; the per-entry terms are the tl_*_grad ones. */

/* x[i] = exp(x[i] - mx) in place; returns the sum of the exps */
static inline TL_HD double tl_row_exp_shift(float *x, float mx, int i0, int n, int step) {
  double s = 0;
  for (int i = i0; i < n; i += step) {
    x[i] = expf(x[i] - mx);
    s += x[i];
  }
  return s;
}

/* x[i] *= c (with c = 1 / s: the exps of tl_row_exp_shift become q) */
static inline TL_HD void tl_row_scale(float *x, float c, int i0, int n, int step) {
  for (int i = i0; i < n; i += step) x[i] *= c;
}

/* A row softmax in place, one thread. */
static inline TL_HD void tl_softmax_row(float *x, int n) {
  const float mx = tl_row_max(x, 0, n, 1);
  const double s = tl_row_exp_shift(x, mx, 0, n, 1);
  tl_row_scale(x, (float)(1.0 / s), 0, n, 1);
}

/* logsumexp of a row from mx and s */
static inline TL_HD float tl_lse(float mx, float s) { return mx + logf(s); }

/* KL(p || q) from sum p log p, dot = sum p (z - mx), log s and sum p */
static inline TL_HD double tl_kl_from_sums(double plogp, double dot, double log_s, double psum) {
  return plogp - dot + log_s * psum;
}

/* H(q) from log s, ez = sum e (z - mx) and s */
static inline TL_HD double tl_entropy_from_sums(double log_s, double ez, double s) { return log_s - ez / s; }

/* -log q_y from mx, log s and the label's logit z_y */
static inline TL_HD double tl_ce_from_sums(float mx, double log_s, float zy) {
  return (double)mx + log_s - (double)zy;
}

/* d (g KL(p || q)) / dz at one entry: g (e inv_s - p) */
static inline TL_HD float tl_kl_grad(float e, float inv_s, float p, float g) { return g * (e * inv_s - p); }

/* d (g CE) / dz at an entry other than the label: e (g inv_s) (the label's entry is
 * that minus g) */
static inline TL_HD float tl_ce_grad(float e, float g_inv_s) { return e * g_inv_s; }

#endif
