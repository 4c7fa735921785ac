/* The tuned lens: translators, the frozen unembedding, and the fused chunked
 * training step (forward + loss + backward per chunk of tokens) and evaluation.
 *
 * Cost model (why it is written this way). Per stream and token the two
 * products with W_U [V,d] dominate: the lens logits (V*d MACs) and the gradient
 * back through W_U (V*d MACs); the translator and its gradient add 2*d*d. On a
 * pythia-70m shape (d 512, V 50304, T 512) that is 2 * 2*T*V*d = 52.7 GFLOP per
 * stream, so the step is GEMM-bound and everything else must stay out of the
 * way: the two products with W_U run in our own AVX-512 kernels (lens_gemm.c) on
 * [chunk, *] blocks, with W_U packed once for them (tl_lens_prepare), and the
 * softmax/loss passes touch each logits row (200 KB, L2-resident) three times
 * with a vectorisable exp.
 *
 * The kernels and the per-row loops are OpenMP loops; the small translator
 * GEMMs ([chunk,d] x [d,d]) go to OpenBLAS, split by columns over the threads. */
#include "tlens/lens.h"

#include "tlens/fastexp.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lens/lens_gemm.h"
#include "tlens/core.h"
#include "tlens/rowmath.h"

/* ---- parameters ---- */

int tl_lens_init(tl_lens *lens, int n_layers, int d_model) {
  memset(lens, 0, sizeof *lens);
  if (n_layers < 1 || n_layers > 100000)
    return tl_fail("lens: num_hidden_layers must be in [1, 100000], got %d", n_layers);
  if (d_model < 1 || d_model > 1000000) return tl_fail("lens: d_model must be in [1, 1000000], got %d", d_model);
  lens->n_layers = n_layers;
  lens->d_model = d_model;
  lens->n_params = (int64_t)n_layers * ((int64_t)d_model * d_model + d_model);
  lens->params = tl_calloc((size_t)lens->n_params, sizeof(float));
  return 0;
}

void tl_lens_free(tl_lens *lens) {
  free(lens->params);
  memset(lens, 0, sizeof *lens);
}

int64_t tl_lens_weight_off(const tl_lens *lens, int i) {
  int64_t d = lens->d_model;
  return (int64_t)i * (d * d + d);
}

int64_t tl_lens_bias_off(const tl_lens *lens, int i) {
  int64_t d = lens->d_model;
  return tl_lens_weight_off(lens, i) + d * d;
}

int tl_lens_n_segments(const tl_lens *lens) { return lens->n_layers; }

void tl_lens_segment(const tl_lens *lens, int k, int64_t *begin, int64_t *end) {
  *begin = lens->bias_only ? tl_lens_bias_off(lens, k) : tl_lens_weight_off(lens, k);
  *end = tl_lens_bias_off(lens, k) + lens->d_model;
}

void tl_lens_optim_step(tl_lens *lens, tl_optim *o, const float *grad, double lr) {
  for (int k = 0; k < tl_lens_n_segments(lens); k++) {
    int64_t a, b;
    tl_lens_segment(lens, k, &a, &b);
    if (a < o->off) a = o->off;
    if (b > o->off + o->n) b = o->off + o->n;
    if (a < b) tl_optim_update(o, lr, lens->params + a, grad + a, a - o->off, b - a);
  }
  tl_optim_finish_step(o);
}

int tl_lens_check(const tl_lens *lens, const tl_unembed *u) {
  if (!u || u->d_model < 1 || u->vocab < 1 || !u->W_U || !u->norm_w)
    return tl_fail("lens: the model's unembedding is incomplete (final norm / output embedding missing)");
  if (u->norm == TL_NORM_LAYERNORM && !u->norm_b) return tl_fail("lens: LayerNorm final norm without a bias");
  if (!(u->eps >= 0) || !isfinite(u->eps))
    return tl_fail("lens: final norm eps must be finite and >= 0, got %g", u->eps);
  if (lens && lens->d_model != u->d_model)
    return tl_fail("lens: d_model %d does not match the model's hidden size %d", lens->d_model, u->d_model);
  return 0;
}

tl_lens_cfg tl_lens_cfg_default(void) {
  tl_lens_cfg c = {.loss = TL_LOSS_KL, .token_shift = TL_SHIFT_DEFAULT, .chunk = 0,
                   .gemm_precision = TL_LENS_GEMM_FP32, .ws = NULL, .final_hidden = NULL,
                   .stream_done = NULL, .stream_done_ctx = NULL};
  return c;
}

int tl_lens_shift(const tl_lens_cfg *cfg) {
  if (cfg->token_shift != TL_SHIFT_DEFAULT) return cfg->token_shift;
  return cfg->loss == TL_LOSS_CE ? 1 : 0;
}


/* ---- the per-row passes over the vocabulary ----
 * These loops touch every (token, vocab) pair of every stream, a few exps each,
 * so they are kernels of their own rather than the rowmath.h row loops: omp simd
 * loops around the vectorisable tl_exp_nonpos (libm's expf is not), float sums
 * over blocks of 512 added in double. What they compute per entry and how the
 * sums become KL, entropy, cross-entropy and gradients are the rowmath.h
 * formulas (tl_kl_grad, tl_kl_from_sums, ...). Each is written once, as an
 * always-inline body, and compiled twice by ROW_PASSES: for the build's
 * baseline (AVX2 and FMA in release builds, -march=x86-64-v3) and, through a
 * target attribute, for AVX-512 with 16-float vectors; row_passes() picks one
 * at run time. */
#define ROW_BODY static inline __attribute__((always_inline))
#define ROW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")))

ROW_BODY float max_body(const float *z, int n) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int v = 0; v < n; v++) mx = z[v] > mx ? z[v] : mx;
  return mx;
}

/* log(sum(exp(row))) of a row of n, in two passes (max, then sum). */
ROW_BODY float lse_body(const float *z, int n) {
  const float mx = max_body(z, n);
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int v = 0; v < n; v++) s += tl_exp_nonpos(z[v] - mx);
  return tl_lse(mx, s);
}

/* The model's distribution from its logits zm with logsumexp lm: p = exp(zm - lm)
 * into p (may be zm); returns sum p log p and, in *psum, sum p. */
ROW_BODY double target_body(const float *zm, int n, float lm, float *p, double *psum) {
  double nh = 0, ps = 0;
#pragma omp simd reduction(+ : nh, ps)
  for (int v = 0; v < n; v++) {
    const float lp = zm[v] - lm, pv = tl_exp_nonpos(lp);
    p[v] = pv;
    nh += (double)(pv * lp);
    ps += (double)pv;
  }
  *psum = ps;
  return nh;
}

/* Training row: z = exp(z - mx) in place; returns sum z and, in *dot, sum p (z - mx)
 * before the exp (p NULL: not computed). */
ROW_BODY float exp_dot_body(float *z, const float *p, int n, float mx, double *dot) {
  float s = 0.0f;
  double dt = 0;
  if (p) {
    /* the dot product in float over blocks of 512, the blocks added in double
     * (a simd loop with both float and double sums does not vectorise) */
    for (int v0 = 0; v0 < n; v0 += 512) {
      const int v1 = v0 + 512 < n ? v0 + 512 : n;
      float db = 0.0f;
#pragma omp simd reduction(+ : s, db)
      for (int v = v0; v < v1; v++) {
        const float x = z[v] - mx, e = tl_exp_nonpos(x);
        db += p[v] * x;
        s += e;
        z[v] = e;
      }
      dt += (double)db;
    }
  } else {
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < n; v++) {
      const float e = tl_exp_nonpos(z[v] - mx);
      s += e;
      z[v] = e;
    }
  }
  *dot = dt;
  return s;
}

/* Evaluation row: the same, and *ez = sum exp(z - mx) (z - mx) for the entropy
 * (*dot = 0 without p). */
ROW_BODY float exp_stats_body(float *z, const float *p, int n, float mx, double *dot, double *ez) {
  float s = 0.0f;
  double dt = 0, et = 0;
  for (int v0 = 0; v0 < n; v0 += 512) {
    const int v1 = v0 + 512 < n ? v0 + 512 : n;
    float db = 0.0f, eb = 0.0f;
    if (p) {
#pragma omp simd reduction(+ : s, db, eb)
      for (int v = v0; v < v1; v++) {
        const float x = z[v] - mx, e = tl_exp_nonpos(x);
        db += p[v] * x;
        eb += e * x;
        s += e;
        z[v] = e;
      }
    } else {
#pragma omp simd reduction(+ : s, eb)
      for (int v = v0; v < v1; v++) {
        const float x = z[v] - mx, e = tl_exp_nonpos(x);
        eb += e * x;
        s += e;
        z[v] = e;
      }
    }
    dt += (double)db, et += (double)eb;
  }
  *dot = dt, *ez = et;
  return s;
}

/* z = the gradient of g KL(p || q) in place (z holds e = exp(z - mx), inv_s = 1 / sum e);
 * p NULL: of g CE, but for the label's entry (the caller subtracts g there). */
ROW_BODY void grad_body(float *z, const float *p, int n, float inv_s, float g) {
  if (p) {
#pragma omp simd
    for (int v = 0; v < n; v++) z[v] = tl_kl_grad(z[v], inv_s, p[v], g);
  } else {
    const float gs = g * inv_s;
#pragma omp simd
    for (int v = 0; v < n; v++) z[v] = tl_ce_grad(z[v], gs);
  }
}

/* bf16 of x rounded to nearest even, as vcvtne2ps2bf16 does (NaN stays a quiet NaN). */
ROW_BODY uint16_t bf16_rne(float x) {
  union {
    float f;
    uint32_t u;
  } b = {x};
  const uint32_t r = (b.u + 0x7FFFu + ((b.u >> 16) & 1u)) >> 16;
  return (b.u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)((b.u >> 16) | 0x40u) : (uint16_t)r;
}

/* The same gradient as grad_body, written only as bf16 (the bf16 backward
 * reads nothing else, so the fp32 row is never written back to memory). */
ROW_BODY void grad_bf16_body(const float *z, const float *p, int n, float inv_s, float g, uint16_t *dst) {
  if (p) {
#pragma omp simd
    for (int v = 0; v < n; v++) dst[v] = bf16_rne(tl_kl_grad(z[v], inv_s, p[v], g));
  } else {
    const float gs = g * inv_s;
#pragma omp simd
    for (int v = 0; v < n; v++) dst[v] = bf16_rne(tl_ce_grad(z[v], gs));
  }
  if (n & 1) dst[n] = 0; /* rows are padded to pairs */
}

/* The passes of one instruction set. */
typedef struct {
  float (*max)(const float *z, int n);
  float (*lse)(const float *z, int n);
  double (*target)(const float *zm, int n, float lm, float *p, double *psum);
  float (*exp_dot)(float *z, const float *p, int n, float mx, double *dot);
  float (*exp_stats)(float *z, const float *p, int n, float mx, double *dot, double *ez);
  void (*grad)(float *z, const float *p, int n, float inv_s, float g);
  void (*grad_bf16)(const float *z, const float *p, int n, float inv_s, float g, uint16_t *dst);
} row_pass_set;

/* Compiles every body for one instruction set (attr: its target attribute, or
 * nothing for the baseline) into the table row_passes_<isa>. */
#define ROW_PASSES(isa, attr)                                                                                  \
  attr static float max_##isa(const float *z, int n) { return max_body(z, n); }                                \
  attr static float lse_##isa(const float *z, int n) { return lse_body(z, n); }                                \
  attr static double target_##isa(const float *zm, int n, float lm, float *p, double *psum) {                  \
    return target_body(zm, n, lm, p, psum);                                                                    \
  }                                                                                                            \
  attr static float exp_dot_##isa(float *z, const float *p, int n, float mx, double *dot) {                    \
    return exp_dot_body(z, p, n, mx, dot);                                                                     \
  }                                                                                                            \
  attr static float exp_stats_##isa(float *z, const float *p, int n, float mx, double *dot, double *ez) {      \
    return exp_stats_body(z, p, n, mx, dot, ez);                                                               \
  }                                                                                                            \
  attr static void grad_##isa(float *z, const float *p, int n, float inv_s, float g) {                         \
    grad_body(z, p, n, inv_s, g);                                                                              \
  }                                                                                                            \
  attr static void grad_bf16_##isa(const float *z, const float *p, int n, float inv_s, float g, uint16_t *d) { \
    grad_bf16_body(z, p, n, inv_s, g, d);                                                                      \
  }                                                                                                            \
  static const row_pass_set row_passes_##isa = {max_##isa, lse_##isa, target_##isa, exp_dot_##isa,             \
                                                exp_stats_##isa, grad_##isa, grad_bf16_##isa};

ROW_PASSES(avx2, )
ROW_PASSES(avx512, ROW_AVX512)

static const row_pass_set *row_passes(void) {
  return lens_gemm_cpu_isa() >= LENS_ISA_AVX512 ? &row_passes_avx512 : &row_passes_avx2;
}

/* ---- the prepared unembedding ---- */

struct tl_lens_ws {
  lens_gemm_wu g;
  tl_lens_gemm_precision requested;
  const float *W_U; /* what it was packed from, and its shape and content */
  int V, d;
  uint64_t fingerprint;
  void *work; /* the chunk buffers of the last call (a `work`, below), kept: a fresh
                 [chunk, V] buffer on every call costs page faults on every step */
};

static void work_release(void *w);

/* A content fingerprint of W_U, so a cached packing is never used for another
 * model that happens to sit at the same address. Mixes every word with its
 * index; one pass over the matrix (a few ms at 100 MB, next to a step of ~1 s). */
static uint64_t fingerprint(const float *a, int64_t n) {
  uint64_t s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
  for (int64_t i = 0; i < n; i++) {
    uint32_t x;
    memcpy(&x, a + i, sizeof x);
    uint32_t h = (x ^ (uint32_t)i) * 0x9E3779B1u;
    s += h ^ (h >> 15);
  }
  return s ^ (uint64_t)n << 40;
}

int tl_lens_prepare(const tl_unembed *u, tl_lens_gemm_precision prec, tl_lens_ws **out) {
  *out = NULL;
  TL_TRY(tl_lens_check(NULL, u));
  if (prec != TL_LENS_GEMM_FP32 && prec != TL_LENS_GEMM_BF16)
    return tl_fail("lens: unknown GEMM precision %d (expected fp32 or bf16)", (int)prec);
  tl_lens_ws *ws = tl_calloc(1, sizeof *ws);
  ws->requested = prec;
  ws->W_U = u->W_U, ws->V = u->vocab, ws->d = u->d_model;
  ws->fingerprint = fingerprint(u->W_U, (int64_t)u->vocab * u->d_model);
  lens_gemm_pack(&ws->g, u->W_U, u->vocab, u->d_model, prec == TL_LENS_GEMM_BF16 ? LENS_PREC_BF16 : LENS_PREC_FP32);
  *out = ws;
  return 0;
}

void tl_lens_ws_free(tl_lens_ws *ws) {
  if (!ws) return;
  work_release(ws->work);
  lens_gemm_free(&ws->g);
  free(ws);
}

tl_lens_gemm_precision tl_lens_ws_precision(const tl_lens_ws *ws) {
  return ws->g.prec == LENS_PREC_BF16 ? TL_LENS_GEMM_BF16 : TL_LENS_GEMM_FP32;
}

const char *tl_lens_ws_kernels(const tl_lens_ws *ws) { return lens_gemm_kernels(&ws->g); }

/* Without a prepared ws, calls share a process-wide one per precision, built on
 * first use and rebuilt when the unembedding changes. The lock is held for the
 * whole call, so concurrent callers cannot free it under each other. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static tl_lens_ws *cache[2];

void tl_lens_cache_free(void) {
  pthread_mutex_lock(&cache_lock);
  for (int k = 0; k < 2; k++) tl_lens_ws_free(cache[k]), cache[k] = NULL;
  pthread_mutex_unlock(&cache_lock);
}

/* The ws a call runs with: the caller's (checked against u) or the cached one
 * (then *locked = 1 and ws_release must follow). */
static int ws_acquire(const tl_unembed *u, tl_lens_ws *given, tl_lens_gemm_precision prec, tl_lens_ws **ws,
                      int *locked) {
  *ws = NULL, *locked = 0;
  if (prec != TL_LENS_GEMM_FP32 && prec != TL_LENS_GEMM_BF16)
    return tl_fail("lens: unknown GEMM precision %d (expected fp32 or bf16)", (int)prec);
  if (given) {
    if (given->W_U != u->W_U || given->V != u->vocab || given->d != u->d_model)
      return tl_fail("lens: the prepared unembedding belongs to a different model (%d x %d)", given->V, given->d);
    if (given->requested != prec)
      return tl_fail("lens: the prepared unembedding is for %s GEMMs, the step asks for %s",
                     given->requested == TL_LENS_GEMM_BF16 ? "bf16" : "fp32",
                     prec == TL_LENS_GEMM_BF16 ? "bf16" : "fp32");
    *ws = given;
    return 0;
  }
  pthread_mutex_lock(&cache_lock);
  tl_lens_ws *c = cache[prec];
  if (!c || c->W_U != u->W_U || c->V != u->vocab || c->d != u->d_model ||
      c->fingerprint != fingerprint(u->W_U, (int64_t)u->vocab * u->d_model)) {
    tl_lens_ws_free(c), cache[prec] = NULL;
    if (tl_lens_prepare(u, prec, &cache[prec])) {
      pthread_mutex_unlock(&cache_lock);
      return -1;
    }
  }
  *ws = cache[prec], *locked = 1;
  return 0;
}

static void ws_release(int locked) {
  if (locked) pthread_mutex_unlock(&cache_lock);
}

/* ---- the frozen unembedding, per chunk ---- */

/* y = norm(x) for n rows; keeps the statistics the backward pass needs
 * (LayerNorm: mean and 1/std; RMSNorm: 1/rms). */
static void norm_forward(const tl_unembed *u, const float *gain, const float *x, int n, float *y, float *mu,
                         float *rstd) {
  const int d = u->d_model;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; r++) {
    const float *xr = x + (size_t)r * d;
    float *yr = y + (size_t)r * d;
    if (u->norm == TL_NORM_LAYERNORM) {
      tl_layernorm_row(yr, xr, gain, u->norm_b, d, u->eps, &mu[r], &rstd[r]);
    } else {
      mu[r] = 0;
      tl_rmsnorm_row(yr, xr, gain, 0, d, u->eps, &rstd[r]);
    }
  }
}

/* dx = d norm(x) / dx applied to dy, for n rows (x and stats from norm_forward). */
static void norm_backward(const tl_unembed *u, const float *gain, const float *x, const float *mu, const float *rstd,
                          const float *dy, int n, float *dx) {
  const int d = u->d_model;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; r++) {
    const size_t o = (size_t)r * d;
    if (u->norm == TL_NORM_LAYERNORM)
      tl_layernorm_row_backward(dx + o, x + o, dy + o, gain, mu[r], rstd[r], d);
    else
      tl_rmsnorm_row_backward(dx + o, x + o, dy + o, gain, rstd[r], d);
  }
}

/* The norm's effective gain (Gemma-style norms scale by 1 + w). */
static float *make_gain(const tl_unembed *u) {
  float *g = tl_malloc((size_t)u->d_model * sizeof(float));
  for (int i = 0; i < u->d_model; i++) g[i] = u->norm_w[i] + (u->norm_add_one ? 1.0f : 0.0f);
  return g;
}

/* t[n,d] = h + h W^T + b (translator i), or h for a NULL lens. */
static void translate(const tl_lens *lens, int i, const float *h, int n, float *t) {
  const int d = lens ? lens->d_model : 0;
  if (!lens) return;
  const float *W = lens->params + tl_lens_weight_off(lens, i), *b = lens->params + tl_lens_bias_off(lens, i);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; r++)
    for (int j = 0; j < d; j++) t[(size_t)r * d + j] = h[(size_t)r * d + j] + b[j];
  lens_sgemm_cols(0, 1, n, d, d, h, d, W, d, 1.0f, t, d);
}

void tl_lens_transform(const tl_lens *lens, int i, const float *h, int n, float *out) {
  translate(lens, i, h, n, out);
}

/* ---- shared setup of the chunked passes ---- */

typedef struct {
  int C, d, V;      /* C: the rows the buffers hold (a call's chunk may be fewer) */
  float *h;         /* [C,d] gathered stream rows */
  float *t;         /* [C,d] translated rows */
  float *y;         /* [C,d] normalised rows; reused for dL/dy */
  float *dt;        /* [C,d] dL/dt */
  float *mu, *rstd; /* [C] */
  float *z;         /* [C,V] logits, then dL/dlogits in place */
  float *p;         /* [C,V] the model's distribution at the chunk's rows (kl
                       training, evaluation; allocated on first use) */
  double *tgt;      /* [2C] per row of p: sum p log p, sum p */
  uint16_t *zb;     /* [C, V rounded up to even] bf16 dL/dlogits (bf16 GEMMs) */
  void *scratch;    /* for lens_gemm_logits */
  float *gain;      /* [d] */
  int *pos;         /* [C] flat (b*T + t) position of each prediction row */
  int *label;       /* [C] the id each row predicts (ids[pos + shift]); -1: none */
  double *rowv;     /* [3C] per-row values, summed in row order afterwards: an
                       OpenMP reduction adds the threads' partials in the order
                       they finish, so its last bits would vary from run to run */
  const lens_gemm_wu *g;
} work;

/* The buffers every chunked pass needs: positions, labels, per-row values. */
static void work_rows(work *w, int C) {
  w->C = C;
  w->pos = tl_malloc((size_t)C * sizeof(int));
  w->label = tl_malloc((size_t)C * sizeof(int));
  w->rowv = tl_malloc((size_t)3 * C * sizeof(double));
}

/* The model-distribution buffers (p, tgt) of w, if it has none yet. p is read row
 * by row, so it takes no huge pages (they cost ~45 MB of peak RSS on the
 * pythia-70m shape). */
static void work_targets(work *w) {
  if (w->p) return;
  w->p = tl_malloc((size_t)w->C * w->V * sizeof(float));
  w->tgt = tl_malloc((size_t)2 * w->C * sizeof(double));
}

static void work_init(work *w, const tl_unembed *u, int C, const tl_lens_ws *ws) {
  memset(w, 0, sizeof *w);
  w->g = &ws->g;
  if (ws->g.prec == LENS_PREC_BF16) {
    w->zb = tl_aligned_alloc((size_t)C * lens_gemm_bf16_row(u->vocab) * sizeof(uint16_t));
    w->scratch = tl_aligned_alloc(lens_gemm_scratch_bytes(&ws->g, C));
  }
  work_rows(w, C);
  w->d = u->d_model;
  w->V = u->vocab;
  size_t cd = (size_t)C * w->d * sizeof(float);
  w->h = tl_aligned_alloc(cd);
  w->t = tl_aligned_alloc(cd);
  w->y = tl_aligned_alloc(cd);
  w->dt = tl_aligned_alloc(cd);
  w->mu = tl_malloc((size_t)C * sizeof(float));
  w->rstd = tl_malloc((size_t)C * sizeof(float));
  w->z = tl_aligned_alloc((size_t)C * w->V * sizeof(float));
  w->gain = make_gain(u);
}

static void work_free(work *w) {
  free(w->h), free(w->t), free(w->y), free(w->dt), free(w->mu), free(w->rstd), free(w->z), free(w->gain),
      free(w->pos), free(w->label), free(w->zb), free(w->scratch), free(w->rowv), free(w->p), free(w->tgt);
}

static void work_release(void *w) {
  if (w) work_free(w), free(w);
}

/* The buffers of ws for chunks of up to C rows (reused when large enough);
 * targets: also the model's distribution per chunk (work_targets). */
static work work_get(tl_lens_ws *ws, const tl_unembed *u, int C, int targets) {
  work *w = ws->work;
  if (w && w->C >= C) {
    free(w->gain);
    w->gain = make_gain(u); /* the norm may differ between calls; W_U may not */
  } else {
    work_release(w);
    w = tl_malloc(sizeof *w);
    work_init(w, u, C, ws);
    ws->work = w;
  }
  if (targets) work_targets(w);
  return *w;
}

/* Rows per chunk for N rows and a requested chunk size (0: TL_LENS_CHUNK). */
static int chunk_rows(int64_t N, int chunk) {
  const int want = chunk ? chunk : TL_LENS_CHUNK;
  return (int)(N < want ? N : want);
}

/* w->z[n,V] = the logits of translator i (lens NULL: the logit lens) on the
 * gathered rows w->h, keeping what the backward pass needs (w->t, w->y and the
 * norm's statistics). */
static void chunk_logits(const tl_lens *lens, int i, const tl_unembed *u, work *w, int n) {
  if (lens)
    translate(lens, i, w->h, n, w->t);
  else
    memcpy(w->t, w->h, (size_t)n * w->d * sizeof(float));
  norm_forward(u, w->gain, w->t, n, w->y, w->mu, w->rstd);
  lens_gemm_logits(w->g, w->y, n, u->b_U, w->z, w->scratch);
}

/* Prediction rows are positions t in [p0, p1) of every sequence, flattened
 * b-major; their labels sit at t + shift. */
static void shift_range(int T, int shift, int *p0, int *p1) {
  *p0 = shift < 0 ? -shift : 0;
  *p1 = shift > 0 ? T - shift : T;
}

/* Fills w->pos and w->h for prediction rows [k0, k0+n) of the flattened list. */
static void gather_rows(work *w, const float *h, int T, int p0, int p1, int64_t k0, int n) {
  const int per = p1 - p0, d = w->d;
  for (int r = 0; r < n; r++) {
    int64_t k = k0 + r;
    int b = (int)(k / per), t = p0 + (int)(k % per);
    w->pos[r] = b * T + t;
    memcpy(w->h + (size_t)r * d, h + ((size_t)b * T + t) * d, (size_t)d * sizeof(float));
  }
}

/* w->label of the n rows at w->pos: ids[pos + shift] where that position lies in
 * the same sequence of T, else (and without ids) -1. */
static void set_labels(work *w, int n, const int32_t *ids, int T, int shift) {
  for (int r = 0; r < n; r++) {
    const int t = w->pos[r] % T;
    w->label[r] = ids && t + shift >= 0 && t + shift < T ? ids[w->pos[r] + shift] : -1;
  }
}

static int check_inputs(const tl_unembed *u, const float *model_logits, const int32_t *ids, int B, int T,
                        int shift, int need_logits, int need_ids) {
  if (B < 1 || T < 1) return tl_fail("lens: batch must have B >= 1 and T >= 1, got B=%d T=%d", B, T);
  if (shift <= -T || shift >= T)
    return tl_fail("lens: token_shift %d leaves no position in a sequence of %d tokens", shift, T);
  if (need_logits && !model_logits) return tl_fail("lens: the kl loss needs the model's logits");
  if (need_ids && !ids) return tl_fail("lens: the ce loss needs the input ids");
  if (ids)
    for (int64_t k = 0; k < (int64_t)B * T; k++)
      if (ids[k] < 0 || ids[k] >= u->vocab)
        return tl_fail("lens: input id %d at position %lld is outside the vocabulary [0, %d)", (int)ids[k],
                       (long long)k, u->vocab);
  return 0;
}

int tl_lens_logits(const tl_lens *lens, const tl_unembed *u, int i, const float *h, int n, float *logits,
                   tl_lens_ws *given) {
  tl_lens_ws *ws;
  int locked;
  if (n < 1) return 0;
  /* a mismatched ws, or an incomplete unembedding: logits would be left unwritten */
  TL_TRY(ws_acquire(u, given, TL_LENS_GEMM_FP32, &ws, &locked));
  /* the rows of the chunked passes, a chunk at a time, each written in place */
  const int C = chunk_rows(n, 0);
  work w = work_get(ws, u, C, 0);
  for (int k0 = 0; k0 < n; k0 += C) {
    const int m = n - k0 < C ? n - k0 : C;
    gather_rows(&w, h, n, 0, n, k0, m);
    w.z = logits + (size_t)k0 * u->vocab; /* this call's copy of the work only */
    chunk_logits(lens, i, u, &w, m);
  }
  ws_release(locked);
  return 0;
}

/* ---- the model's distribution ---- */

/* The model's distribution p at the n rows of a chunk, made once and shared by
 * every stream. Row r's logits are src + (pos[r] + shift) * V, or (src NULL)
 * row r of w->p, replaced in place. Writes p = softmax into w->p, and per row
 * w->tgt[r] = sum p log p and w->tgt[C + r] = sum p (what the KL of a lens row
 * against it needs). ent, ce (may be NULL): per row, the distribution's own
 * entropy -sum p log p and -log p(label) (0 without a label): the baseline. */
static void target_rows(work *w, int n, const float *src, int shift, double *ent, double *ce) {
  const int V = w->V, C = w->C;
  const row_pass_set *rp = row_passes();
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; r++) {
    float *p = w->p + (size_t)r * V;
    const float *zm = src ? src + (size_t)(w->pos[r] + shift) * V : p;
    const float lse = rp->lse(zm, V);
    if (ce) ce[r] = w->label[r] >= 0 ? (double)lse - zm[w->label[r]] : 0.0; /* before p overwrites zm */
    w->tgt[r] = rp->target(zm, V, lse, p, &w->tgt[C + r]);
    if (ent) ent[r] = -w->tgt[r];
  }
}

/* ---- training ---- */

/* The loop runs chunk by chunk over the positions and, inside, over the
 * streams: the final distribution p at a chunk's labels is made once (one exp
 * per vocabulary entry, target_rows) and serves every stream, with its per-row
 * sums sum p log p and sum p. Each lens row then needs one exp per entry:
 *   mx = max z;  e = exp(z - mx), s = sum e, dot = sum p (z - mx)
 *   KL(p || q) = sum p log p - dot + log(s) sum p     (tl_kl_from_sums)
 *   dL/dz = g (e / s - p)       (ce: g e / s, minus g at the label)
 * instead of three (the log-softmax of both rows and of the lens row each
 * time). The sums over the row are accumulated in double: KL is a small
 * difference of two sums of order of the entropy. A stream's gradient still
 * adds its chunks in position order, so the result does not depend on the
 * loop order. */
int tl_lens_train_check(const tl_lens *lens, const tl_unembed *u, const tl_lens_cfg *cfg,
                        const float *model_logits, const int32_t *ids, int B, int T, float scale) {
  TL_TRY(tl_lens_check(lens, u));
  if (!lens) return tl_fail("lens: training needs a tuned lens");
  if (cfg->loss != TL_LOSS_KL && cfg->loss != TL_LOSS_CE)
    return tl_fail("lens: unknown loss %d (expected kl or ce)", (int)cfg->loss);
  const int shift = tl_lens_shift(cfg), kl = cfg->loss == TL_LOSS_KL;
  const float *fin = kl ? cfg->final_hidden : NULL;
  if (fin && model_logits)
    return tl_fail("lens: give the model's logits or its final hidden states, not both");
  TL_TRY(check_inputs(u, model_logits, ids, B, T, shift, kl && !fin, !kl));
  if (cfg->chunk < 0) return tl_fail("lens: chunk must be >= 0, got %d", cfg->chunk);
  if (!isfinite(scale)) return tl_fail("lens: loss scale must be finite");
  if (cfg->gemm_precision != TL_LENS_GEMM_FP32 && cfg->gemm_precision != TL_LENS_GEMM_BF16)
    return tl_fail("lens: unknown GEMM precision %d (expected fp32 or bf16)", (int)cfg->gemm_precision);
  if (cfg->ws && (cfg->ws->W_U != u->W_U || cfg->ws->V != u->vocab || cfg->ws->d != u->d_model ||
                  cfg->ws->requested != cfg->gemm_precision))
    return ws_acquire(u, cfg->ws, cfg->gemm_precision, &(tl_lens_ws *){NULL}, &(int){0}); /* its message */
  return 0;
}

int tl_lens_train_micro(const tl_lens *lens, const tl_unembed *u, const tl_lens_cfg *cfg, const float *hidden,
                        const float *model_logits, const int32_t *ids, int B, int T, float scale, float *grad,
                        float *losses) {
  TL_TRY(tl_lens_train_check(lens, u, cfg, model_logits, ids, B, T, scale));
  const int shift = tl_lens_shift(cfg), kl = cfg->loss == TL_LOSS_KL;
  const float *fin = kl ? cfg->final_hidden : NULL;
  tl_lens_ws *ws;
  int locked;
  TL_TRY(ws_acquire(u, cfg->ws, cfg->gemm_precision, &ws, &locked));

  const int d = u->d_model, V = u->vocab, L = lens->n_layers;
  int p0, p1;
  shift_range(T, shift, &p0, &p1);
  const int64_t N = (int64_t)B * (p1 - p0);
  const int C = chunk_rows(N, cfg->chunk);
  /* d(scale * mean loss)/dz = scale/N * (q - p) for kl, (q - onehot) for ce */
  const float gscale = (float)((double)scale / (double)N);

  const int V2 = lens_gemm_bf16_row(V);
  work w = work_get(ws, u, C, kl);
  const row_pass_set *rp = row_passes();
  /* the final logits from final_hidden: fp32 always (the targets are not
   * rounded to bf16), on the packed fp32 kernels where this ws has them */
  lens_gemm_wu blas = {.V = V, .d = d, .prec = LENS_PREC_FP32, .isa = LENS_ISA_BLAS, .W_U = u->W_U};
  const lens_gemm_wu *gfin = ws->g.prec == LENS_PREC_FP32 ? &ws->g : &blas;
  double *loss_sum = tl_calloc((size_t)L, sizeof(double));
  int rc = 0;

  for (int64_t k0 = 0; k0 < N; k0 += C) {
    const int n = (int)(N - k0 < C ? N - k0 : C);
    gather_rows(&w, hidden, T, p0, p1, k0, n); /* w.pos; w.h is refilled per stream */
    set_labels(&w, n, kl ? NULL : ids, T, shift);
    if (fin) { /* logits at the label positions into w.p, then p in place */
      for (int r = 0; r < n; r++)
        memcpy(w.t + (size_t)r * d, fin + (size_t)(w.pos[r] + shift) * d, (size_t)d * sizeof(float));
      lens_gemm_logits(gfin, w.t, n, u->b_U, w.p, NULL);
      target_rows(&w, n, NULL, 0, NULL, NULL);
    } else if (kl) {
      target_rows(&w, n, model_logits, shift, NULL, NULL);
    }
    for (int i = 0; i < L; i++) {
      const float *h = hidden + (size_t)i * B * T * d;
      float *gW = grad + tl_lens_weight_off(lens, i), *gb = grad + tl_lens_bias_off(lens, i);
      if (i > 0) gather_rows(&w, h, T, p0, p1, k0, n);
      chunk_logits(lens, i, u, &w, n);

      /* loss and dL/dz, one row at a time (the row stays in L2) */
#pragma omp parallel for schedule(static)
      for (int r = 0; r < n; r++) {
        float *z = w.z + (size_t)r * V;
        const float *p = kl ? w.p + (size_t)r * V : NULL;
        const int y = w.label[r]; /* ce: the label's id */
        const float zy = kl ? 0.0f : z[y];
        const float mx = rp->max(z, V);
        double dot;
        const float s = rp->exp_dot(z, p, V, mx, &dot);
        const double log_s = log((double)s);
        w.rowv[r] = kl ? tl_kl_from_sums(w.tgt[r], dot, log_s, w.tgt[w.C + r]) : tl_ce_from_sums(mx, log_s, zy);
        const float inv_s = 1.0f / s;
        if (w.zb) {
          uint16_t *zb = w.zb + (size_t)r * V2;
          rp->grad_bf16(z, p, V, inv_s, gscale, zb);
          if (!kl) zb[y] = bf16_rne(tl_ce_grad(z[y], gscale * inv_s) - gscale);
        } else {
          rp->grad(z, p, V, inv_s, gscale);
          if (!kl) z[y] -= gscale;
        }
      }
      for (int r = 0; r < n; r++) loss_sum[i] += w.rowv[r];

      /* dL/dy = dz W_U, back through the norm, then dW += dt^T h, db += sum dt */
      lens_gemm_backward(w.g, w.z, w.zb, n, w.y);
      norm_backward(u, w.gain, w.t, w.mu, w.rstd, w.y, n, w.dt);
      if (!lens->bias_only)
        lens_sgemm_cols(1, 0, d, d, n, w.dt, d, w.h, d, 1.0f, gW, d);
#pragma omp parallel for schedule(static)
      for (int j = 0; j < d; j++) {
        float s = 0.0f;
        for (int r = 0; r < n; r++) s += w.dt[(size_t)r * d + j];
        gb[j] += s;
      }
      if (k0 + n == N && cfg->stream_done && cfg->stream_done(cfg->stream_done_ctx, i)) {
        rc = -1; /* the callback recorded its message */
        break;
      }
    }
    if (rc) break;
  }
  if (losses && !rc)
    for (int i = 0; i < L; i++) losses[i] = (float)(loss_sum[i] / (double)N);
  free(loss_sum);
  ws_release(locked);
  return rc;
}

/* ---- evaluation ----
 * One formulation for every evaluation entry point, so the per-layer numbers of
 * tl_lens_eval_all and the layer-transfer matrix of tl_lens_eval (whose
 * diagonal repeats them) come from the same code: the model's distribution and
 * the baseline from target_rows, each lens row from eval_rows, with one exp per
 * entry (the algebra of training):
 *   KL(p || q) = sum p log p - sum p (z - mx) + log(s) sum p
 *   H(q)       = log s - sum e (z - mx) / s
 *   -log q_y   = mx + log s - z_y */

/* The checks and buffers shared by the lens evaluations: the unembedding
 * prepared for fp32 (*locked: see ws_acquire) and chunk buffers (targets: with
 * the model-distribution buffers). */
static int eval_begin(const tl_lens *lens, const tl_unembed *u, const float *model_logits, const int32_t *ids, int B,
                      int T, int token_shift, int chunk, tl_lens_ws *given, int targets, tl_lens_ws **ws,
                      int *locked, work *w, int *C) {
  TL_TRY(tl_lens_check(lens, u));
  TL_TRY(check_inputs(u, model_logits, ids, B, T, token_shift, 0, 0));
  if (chunk < 0) return tl_fail("lens: chunk must be >= 0, got %d", chunk);
  TL_TRY(ws_acquire(u, given, TL_LENS_GEMM_FP32, ws, locked));
  *C = chunk_rows((int64_t)B * T, chunk);
  *w = work_get(*ws, u, *C, targets);
  return 0;
}

/* prob_sum[v] += sum over the n rows of z (threads split the vocabulary, so no
 * two write the same entry; each entry adds its rows in order). */
static void add_prob_rows(const float *z, int n, int V, float *prob_sum) {
#pragma omp parallel for schedule(static)
  for (int v0 = 0; v0 < V; v0 += 1024) {
    int v1 = v0 + 1024 < V ? v0 + 1024 : V;
    for (int r = 0; r < n; r++)
      for (int v = v0; v < v1; v++) prob_sum[v] += z[(size_t)r * V + v];
  }
}

/* Adds the per-row values of n rows (kl NULL: none) to *o, in row order. */
static void add_rows(tl_lens_eval_out *o, const double *kl, const double *ent, const double *ce, const int *label,
                     int n) {
  for (int r = 0; r < n; r++) {
    if (kl) o->kl_sum += kl[r];
    o->entropy_sum += ent[r], o->ce_sum += ce[r];
    o->n_ce += label[r] >= 0;
  }
  o->n_all += n;
}

/* The metrics of the lens logits w->z of n rows, added to *out: kl against the
 * model's distribution in w->p (with_p; else none), entropy, and ce at the rows
 * with a label. prob_sum (may be NULL): z becomes q and is added to it. */
static void eval_rows(work *w, int n, int with_p, tl_lens_eval_out *out, float *prob_sum) {
  const int V = w->V, C = w->C;
  const row_pass_set *rp = row_passes();
  double *kl = w->rowv, *ent = kl + n, *ce = ent + n;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; r++) {
    float *z = w->z + (size_t)r * V;
    const int y = w->label[r];
    const float zy = y >= 0 ? z[y] : 0.0f;
    const float mx = rp->max(z, V);
    double dot, ez;
    const float s = rp->exp_stats(z, with_p ? w->p + (size_t)r * V : NULL, V, mx, &dot, &ez);
    const double log_s = log((double)s);
    kl[r] = with_p ? tl_kl_from_sums(w->tgt[r], dot, log_s, w->tgt[C + r]) : 0.0;
    ent[r] = tl_entropy_from_sums(log_s, ez, s);
    ce[r] = y >= 0 ? tl_ce_from_sums(mx, log_s, zy) : 0.0;
    if (prob_sum) tl_row_scale(z, 1.0f / s, 0, V, 1); /* q */
  }
  add_rows(out, kl, ent, ce, w->label, n);
  if (prob_sum) add_prob_rows(w->z, n, V, prob_sum);
}

int tl_lens_eval(const tl_lens *lens, int translator, const tl_unembed *u, const float *h,
                 const float *model_logits, const int32_t *ids, int B, int T, int token_shift, int chunk,
                 tl_lens_eval_out *out, float *prob_sum, tl_lens_ws *given) {
  memset(out, 0, sizeof *out);
  if (lens && (translator < 0 || translator >= lens->n_layers))
    return tl_fail("lens: translator %d out of range [0, %d)", translator, lens->n_layers);
  tl_lens_ws *ws;
  work w;
  int locked, C;
  const int with_p = model_logits != NULL;
  TL_TRY(eval_begin(lens, u, model_logits, ids, B, T, token_shift, chunk, given, with_p, &ws, &locked, &w, &C));
  const int64_t N = (int64_t)B * T;
  for (int64_t k0 = 0; k0 < N; k0 += C) {
    const int n = (int)(N - k0 < C ? N - k0 : C);
    gather_rows(&w, h, T, 0, T, k0, n);
    set_labels(&w, n, ids, T, token_shift);
    if (with_p) target_rows(&w, n, model_logits, 0, NULL, NULL);
    chunk_logits(lens, translator, u, &w, n);
    eval_rows(&w, n, with_p, out, prob_sum);
  }
  ws_release(locked);
  return 0;
}

/* Chunk by chunk over the positions, streams inside, like training: the model's
 * distribution at a chunk is made once from the last hidden state. */
int tl_lens_eval_all(const tl_lens *lens, int n_streams, const tl_unembed *u, const float *hidden,
                     const int32_t *ids, int B, int T, int token_shift, int chunk, tl_lens_eval_out *out,
                     tl_lens_eval_out *final_out, float *prob_sum, float *final_prob_sum, tl_lens_ws *given) {
  const int L = n_streams;
  if (L < 1) return tl_fail("lens: evaluation needs at least one stream, got %d", L);
  memset(out, 0, (size_t)L * sizeof *out);
  if (final_out) memset(final_out, 0, sizeof *final_out);
  if (lens && lens->n_layers != L)
    return tl_fail("lens: %d translators for %d streams", lens->n_layers, L);
  tl_lens_ws *ws;
  work w;
  int locked, C;
  TL_TRY(eval_begin(lens, u, NULL, ids, B, T, token_shift, chunk, given, 1, &ws, &locked, &w, &C));
  const int d = u->d_model, V = u->vocab;
  const int64_t N = (int64_t)B * T;
  const float *fin = hidden + (size_t)L * N * d;
  for (int64_t k0 = 0; k0 < N; k0 += C) {
    const int n = (int)(N - k0 < C ? N - k0 : C);
    /* the model's distribution, from its logits at the chunk's rows; the
     * baseline's entropy and ce (w.rowv) with it */
    gather_rows(&w, fin, T, 0, T, k0, n);
    set_labels(&w, n, ids, T, token_shift);
    lens_gemm_logits(&ws->g, w.h, n, u->b_U, w.p, NULL);
    double *ent = w.rowv + n, *ce = ent + n;
    target_rows(&w, n, NULL, 0, final_out ? ent : NULL, final_out ? ce : NULL);
    if (final_out) add_rows(final_out, NULL, ent, ce, w.label, n);
    if (final_prob_sum) add_prob_rows(w.p, n, V, final_prob_sum);

    for (int i = 0; i < L; i++) {
      gather_rows(&w, hidden + (size_t)i * N * d, T, 0, T, k0, n);
      chunk_logits(lens, i, u, &w, n);
      eval_rows(&w, n, 1, &out[i], prob_sum ? prob_sum + (size_t)i * V : NULL);
    }
  }
  ws_release(locked);
  return 0;
}

/* The baseline alone, from the model's logits: target_rows, as in tl_lens_eval_all. */
int tl_lens_eval_final(const float *model_logits, int vocab, const int32_t *ids, int B, int T, int token_shift,
                       tl_lens_eval_out *out, float *prob_sum) {
  memset(out, 0, sizeof *out);
  if (!model_logits || vocab < 1) return tl_fail("lens: baseline evaluation needs the model's logits");
  tl_unembed u = {0};
  u.vocab = vocab;
  TL_TRY(check_inputs(&u, model_logits, ids, B, T, token_shift, 1, 0));
  const int64_t N = (int64_t)B * T;
  work w = {0};
  w.V = vocab;
  work_rows(&w, chunk_rows(N, 0));
  work_targets(&w);
  for (int64_t k0 = 0; k0 < N; k0 += w.C) {
    const int n = (int)(N - k0 < w.C ? N - k0 : w.C);
    for (int r = 0; r < n; r++) w.pos[r] = (int)(k0 + r);
    set_labels(&w, n, ids, T, token_shift);
    double *ent = w.rowv + n, *ce = ent + n;
    target_rows(&w, n, model_logits, 0, ent, ce);
    add_rows(out, NULL, ent, ce, w.label, n);
    if (prob_sum) add_prob_rows(w.p, n, vocab, prob_sum);
  }
  work_free(&w);
  return 0;
}
