/* The lens GEMM kernels (src/lens/lens_gemm.c) against a plain double-precision
 * reference written out here, on shapes that are not multiples of the kernels'
 * blocking (6 rows, 64 columns, K blocks of 128): the logits product
 * z = x W_U^T + b and the backward product dx = dz W_U, for the OpenBLAS
 * fallback, the fp32 AVX-512 kernels and the bf16 kernels. Errors are measured
 * against the sum of |terms| of each dot product (the scale its rounding error
 * lives on): fp32 within 1e-5, bf16 within 1e-2 (inputs rounded to 8-bit
 * mantissas). Then the whole training step with bf16 GEMMs against the fp32
 * step, results independent of the thread count (bitwise), the lazy cache
 * following a W_U changed in place, and the errors of the prepared-unembedding API.
 * Without AVX-512 (or AVX-512 BF16) on this CPU the parts that need it are
 * skipped and the test returns 77 (ctest: skipped). */
#include <omp.h>
#include <string.h>

#include "lens/lens_gemm.h"
#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/lens.h"
#include "tlens/tensor.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

static float *rand_array(size_t n, float scale) {
  float *a = tl_aligned_alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) a[i] = scale * frand();
  return a;
}

#define GUARD 16 /* floats after each output that must stay untouched */
#define CANARY 12345.0f

static double worst[3]; /* largest scaled error seen per kernel kind (blas, fp32, bf16) */

/* max over outputs of |got - ref| / sum|terms| */
static double scaled_err(double got, double ref, double absum) { return fabs(got - ref) / (absum > 0 ? absum : 1); }

/* One shape (M rows, vocabulary V, width d) with kernels at isa cap and precision prec. */
static void check_shape(int isa, int prec, int M, int V, int d, int with_bias, double tol) {
  const char *name = prec == LENS_PREC_BF16 ? "bf16" : isa == LENS_ISA_BLAS ? "blas" : "fp32";
  float *W = rand_array((size_t)V * d, 1.0f), *x = rand_array((size_t)M * d, 1.0f);
  float *dz = rand_array((size_t)M * V, 1.0f), *bias = with_bias ? rand_array(V, 0.5f) : NULL;
  float *z = tl_aligned_alloc(((size_t)M * V + GUARD) * sizeof(float));
  float *dx = tl_aligned_alloc(((size_t)M * d + GUARD) * sizeof(float));
  for (int i = 0; i < GUARD; i++) z[(size_t)M * V + i] = CANARY, dx[(size_t)M * d + i] = CANARY;

  int old = lens_gemm_set_max_isa(isa);
  lens_gemm_wu g;
  lens_gemm_pack(&g, W, V, d, prec);
  lens_gemm_set_max_isa(old);
  CHECKF(g.isa == isa && g.prec == prec, "%s: packed for isa %d prec %d", name, g.isa, g.prec);
  void *scratch = tl_aligned_alloc(lens_gemm_scratch_bytes(&g, M));
  uint16_t *dzb = NULL;
  if (prec == LENS_PREC_BF16) {
    dzb = tl_aligned_alloc((size_t)M * lens_gemm_bf16_row(V) * sizeof(uint16_t));
    for (int r = 0; r < M; r++) lens_gemm_to_bf16(dz + (size_t)r * V, V, dzb + (size_t)r * lens_gemm_bf16_row(V));
  }
  lens_gemm_logits(&g, x, M, bias, z, scratch);
  lens_gemm_backward(&g, dz, dzb, M, dx);

  double e1 = 0, e2 = 0;
  for (int m = 0; m < M; m++)
    for (int v = 0; v < V; v++) {
      double r = bias ? bias[v] : 0, a = fabs(r);
      for (int k = 0; k < d; k++) {
        double t = (double)x[(size_t)m * d + k] * W[(size_t)v * d + k];
        r += t, a += fabs(t);
      }
      double e = scaled_err(z[(size_t)m * V + v], r, a);
      if (!(e <= e1)) e1 = e; /* NaN propagates */
    }
  for (int m = 0; m < M; m++)
    for (int n = 0; n < d; n++) {
      double r = 0, a = 0;
      for (int v = 0; v < V; v++) {
        double t = (double)dz[(size_t)m * V + v] * W[(size_t)v * d + n];
        r += t, a += fabs(t);
      }
      double e = scaled_err(dx[(size_t)m * d + n], r, a);
      if (!(e <= e2)) e2 = e;
    }
  int kind = prec == LENS_PREC_BF16 ? 2 : isa == LENS_ISA_BLAS ? 0 : 1;
  worst[kind] = fmax(worst[kind], fmax(e1, e2));
  CHECKF(e1 <= tol, "%s logits M=%d V=%d d=%d bias=%d: scaled error %g > %g", name, M, V, d, with_bias, e1, tol);
  CHECKF(e2 <= tol, "%s backward M=%d V=%d d=%d: scaled error %g > %g", name, M, V, d, e2, tol);
  int guard_ok = 1;
  for (int i = 0; i < GUARD; i++) guard_ok &= z[(size_t)M * V + i] == CANARY && dx[(size_t)M * d + i] == CANARY;
  CHECKF(guard_ok, "%s M=%d V=%d d=%d: wrote past the output", name, M, V, d);
  lens_gemm_free(&g);
  free(W), free(x), free(dz), free(bias), free(z), free(dx), free(scratch), free(dzb);
}

static const int shapes[][4] = {
    /* M, V, d, bias */
    {1, 1, 1, 0},     {7, 7, 7, 1},     {1, 513, 7, 1},   {7, 65, 1, 0},   {6, 64, 64, 0},
    {13, 130, 3, 1},  {7, 200, 513, 1}, {255, 1000, 65, 1}, {256, 3001, 130, 0}, {5, 2049, 129, 1},
    /* d % 64 == 0 with 32 rows or more: the AMX blocks, with ragged rows, panels and pairs */
    {32, 64, 64, 1},  {70, 1000, 128, 1}, {96, 4099, 192, 0}, {33, 130, 64, 0}, {64, 4096, 256, 1},
};

static void check_kernels(int isa, int prec, double tol) {
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    check_shape(isa, prec, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], tol);
}

/* The conversion used for dz: round to nearest even like tl_f32_to_bf16, odd
 * lengths padded with a zero, nothing written past the padded row. */
static void check_to_bf16(void) {
  for (int n = 1; n < 80; n += 7) {
    float *src = rand_array(n, 3.0f);
    uint16_t dst[96];
    for (int i = 0; i < 96; i++) dst[i] = 0xABCD;
    lens_gemm_to_bf16(src, n, dst);
    int ok = 1, n2 = lens_gemm_bf16_row(n);
    for (int i = 0; i < n; i++) ok &= dst[i] == tl_f32_to_bf16(src[i]);
    if (n2 > n) ok &= dst[n] == 0;
    for (int i = n2; i < 96; i++) ok &= dst[i] == 0xABCD;
    CHECKF(ok, "to_bf16 n=%d", n);
    free(src);
  }
}

/* ---- the training step with bf16 GEMMs against fp32 ---- */

enum { L = 2, B = 2, T = 23, D = 70, V = 301 };

typedef struct {
  tl_unembed u;
  float *nw, *nb, *WU, *bU, *hidden, *logits;
  int32_t ids[B * T];
  tl_lens lens;
} problem;

static void make_problem(problem *p) {
  p->nw = rand_array(D, 0.3f), p->nb = rand_array(D, 0.2f), p->WU = rand_array((size_t)V * D, 1.0f);
  p->bU = rand_array(V, 0.5f), p->hidden = rand_array((size_t)L * B * T * D, 2.0f);
  p->logits = rand_array((size_t)B * T * V, 3.0f);
  for (int i = 0; i < D; i++) p->nw[i] += 1;
  for (int i = 0; i < B * T; i++) p->ids[i] = (int32_t)((frand() + 1) * 0.5f * V) % V;
  tl_unembed u = {D, V, TL_NORM_LAYERNORM, 1e-5f, 0, p->nw, p->nb, p->WU, p->bU};
  p->u = u;
  tl_lens_init(&p->lens, L, D);
  for (int64_t k = 0; k < p->lens.n_params; k++) p->lens.params[k] = 0.05f * frand();
}

static void free_problem(problem *p) {
  free(p->nw), free(p->nb), free(p->WU), free(p->bU), free(p->hidden), free(p->logits);
  tl_lens_free(&p->lens);
}

/* ||a - b|| / ||b|| */
static double rel_l2(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
  return sqrt(num / (den > 0 ? den : 1));
}

static void check_step(problem *p, tl_loss_kind loss, int bf16_ok) {
  const int64_t np = p->lens.n_params;
  float *g32 = calloc(np, sizeof(float)), *g16 = calloc(np, sizeof(float)), *gblas = calloc(np, sizeof(float));
  float l32[L], l16[L], lblas[L];
  tl_lens_cfg cfg = tl_lens_cfg_default();
  cfg.loss = loss;
  cfg.chunk = 17; /* several chunks, the last one partial */
  const float *ml = loss == TL_LOSS_KL ? p->logits : NULL;
  const int32_t *ids = loss == TL_LOSS_CE ? p->ids : NULL;
  CHECK(tl_lens_train_micro(&p->lens, &p->u, &cfg, p->hidden, ml, ids, B, T, 0.5f, g32, l32) == 0);

  /* bf16 through an explicit prepared unembedding */
  cfg.gemm_precision = TL_LENS_GEMM_BF16;
  CHECK(tl_lens_prepare(&p->u, TL_LENS_GEMM_BF16, &cfg.ws) == 0);
  CHECK(tl_lens_ws_precision(cfg.ws) == (bf16_ok ? TL_LENS_GEMM_BF16 : TL_LENS_GEMM_FP32));
  CHECK(strcmp(tl_lens_ws_kernels(cfg.ws), bf16_ok ? "avx512-bf16" : "avx512-fp32") == 0);
  CHECK(tl_lens_train_micro(&p->lens, &p->u, &cfg, p->hidden, ml, ids, B, T, 0.5f, g16, l16) == 0);
  for (int i = 0; i < L; i++)
    CHECKF(fabs(l16[i] - l32[i]) <= 1e-2 * fabs(l32[i]) + 1e-4, "loss %d stream %d: bf16 %.6f vs fp32 %.6f",
           (int)loss, i, l16[i], l32[i]);
  double e = rel_l2(g16, g32, np);
  CHECKF(e <= 2e-2, "loss %d: bf16 gradient off by %g (relative L2) from fp32", (int)loss, e);
  CHECKF(e > 0 || !bf16_ok, "loss %d: bf16 gradient identical to fp32: bf16 kernels not used?", (int)loss);
  tl_lens_ws_free(cfg.ws);
  cfg.ws = NULL;

  /* bf16 prepared lazily gives the same numbers as the explicit one */
  float *g16b = calloc(np, sizeof(float));
  float l16b[L];
  CHECK(tl_lens_train_micro(&p->lens, &p->u, &cfg, p->hidden, ml, ids, B, T, 0.5f, g16b, l16b) == 0);
  CHECK(memcmp(g16b, g16, np * sizeof(float)) == 0 && memcmp(l16b, l16, sizeof l16) == 0);
  free(g16b);

  /* the OpenBLAS fallback agrees with the fp32 kernels */
  cfg.gemm_precision = TL_LENS_GEMM_FP32;
  int old = lens_gemm_set_max_isa(LENS_ISA_BLAS);
  CHECK(tl_lens_prepare(&p->u, TL_LENS_GEMM_FP32, &cfg.ws) == 0);
  lens_gemm_set_max_isa(old);
  CHECK(strcmp(tl_lens_ws_kernels(cfg.ws), "openblas") == 0);
  CHECK(tl_lens_train_micro(&p->lens, &p->u, &cfg, p->hidden, ml, ids, B, T, 0.5f, gblas, lblas) == 0);
  tl_lens_ws_free(cfg.ws);
  CHECKF(tl_test_maxerr(gblas, g32, (long)np) < 1e-5, "loss %d: openblas vs avx512 gradient", (int)loss);
  CHECKF(tl_test_maxerr(lblas, l32, L) < 1e-5, "loss %d: openblas vs avx512 losses", (int)loss);
  free(g32), free(g16), free(gblas);
}

/* The lazily prepared W_U follows a change of W_U made in place. */
static void check_cache(problem *p) {
  const int n = 3;
  float *a = malloc((size_t)n * V * sizeof(float)), *b = malloc((size_t)n * V * sizeof(float));
  tl_lens_logits(NULL, &p->u, 0, p->hidden, n, a, NULL);
  for (size_t k = 0; k < (size_t)V * D; k++) p->WU[k] *= -1;
  tl_lens_logits(NULL, &p->u, 0, p->hidden, n, b, NULL);
  for (size_t k = 0; k < (size_t)V * D; k++) p->WU[k] *= -1;
  /* logits = W_U y + b_U: flipping W_U flips the first part only */
  double e = 0;
  for (int r = 0; r < n; r++)
    for (int v = 0; v < V; v++) {
      double want = 2.0 * p->bU[v] - a[(size_t)r * V + v];
      double d = fabs(b[(size_t)r * V + v] - want);
      if (!(d <= e)) e = d;
    }
  CHECKF(e < 1e-4, "logits after W_U changed in place: off by %g", e);
  free(a), free(b);
}

static void check_api_errors(problem *p) {
  tl_lens_ws *ws = NULL;
  CHECK(tl_lens_prepare(&p->u, (tl_lens_gemm_precision)7, &ws) != 0 && ws == NULL);
  CHECK(strstr(tl_errmsg(), "precision") != NULL);
  CHECK(tl_lens_prepare(&p->u, TL_LENS_GEMM_FP32, &ws) == 0);
  float *grad = calloc(p->lens.n_params, sizeof(float));
  tl_lens_cfg cfg = tl_lens_cfg_default();
  cfg.ws = ws;
  cfg.gemm_precision = TL_LENS_GEMM_BF16; /* ws is for fp32 */
  CHECK(tl_lens_train_micro(&p->lens, &p->u, &cfg, p->hidden, p->logits, NULL, B, T, 1.0f, grad, NULL) != 0);
  CHECK(strstr(tl_errmsg(), "prepared unembedding") != NULL);
  cfg.gemm_precision = TL_LENS_GEMM_FP32;
  tl_unembed other = p->u;
  other.W_U = p->logits; /* another matrix */
  CHECK(tl_lens_train_micro(&p->lens, &other, &cfg, p->hidden, p->logits, NULL, B, T, 1.0f, grad, NULL) != 0);
  CHECK(strstr(tl_errmsg(), "different model") != NULL);
  cfg.gemm_precision = (tl_lens_gemm_precision)-1;
  cfg.ws = NULL;
  CHECK(tl_lens_train_micro(&p->lens, &p->u, &cfg, p->hidden, p->logits, NULL, B, T, 1.0f, grad, NULL) != 0);
  tl_lens_ws_free(ws);
  free(grad);
}

/* Bitwise the same results with 1 and 2 threads (training runs resume exactly);
 * d 128 takes the AMX blocks where the CPU has them. */
static void check_deterministic_d(int prec, int d) {
  const int M = 37, V = 5000;
  float *W = rand_array((size_t)V * d, 1.0f), *x = rand_array((size_t)M * d, 1.0f);
  float *dz = rand_array((size_t)M * V, 1.0f);
  float *z[2], *dx[2];
  lens_gemm_wu g;
  lens_gemm_pack(&g, W, V, d, prec);
  void *scratch = tl_aligned_alloc(lens_gemm_scratch_bytes(&g, M));
  uint16_t *dzb = tl_aligned_alloc((size_t)M * lens_gemm_bf16_row(V) * sizeof(uint16_t));
  if (g.prec == LENS_PREC_BF16)
    for (int r = 0; r < M; r++) lens_gemm_to_bf16(dz + (size_t)r * V, V, dzb + (size_t)r * lens_gemm_bf16_row(V));
  const int nt = omp_get_max_threads();
  for (int k = 0; k < 2; k++) {
    omp_set_num_threads(k ? 1 : 2);
    z[k] = malloc((size_t)M * V * sizeof(float)), dx[k] = malloc((size_t)M * d * sizeof(float));
    lens_gemm_logits(&g, x, M, NULL, z[k], scratch);
    lens_gemm_backward(&g, dz, dzb, M, dx[k]);
  }
  omp_set_num_threads(nt);
  CHECKF(memcmp(z[0], z[1], (size_t)M * V * sizeof(float)) == 0, "prec %d: logits depend on the thread count", prec);
  CHECKF(memcmp(dx[0], dx[1], (size_t)M * d * sizeof(float)) == 0, "prec %d: backward depends on the thread count",
         prec);
  lens_gemm_free(&g);
  free(W), free(x), free(dz), free(scratch), free(dzb), free(z[0]), free(z[1]), free(dx[0]), free(dx[1]);
}

static void check_deterministic(int prec) {
  check_deterministic_d(prec, 70);
  check_deterministic_d(prec, 128);
}

/* bf16 asked for where the CPU (here: capped) has no AVX-512 BF16: fp32 kernels. */
static void check_bf16_fallback(void) {
  float W[3 * 5];
  for (int i = 0; i < 15; i++) W[i] = frand();
  int old = lens_gemm_set_max_isa(LENS_ISA_AVX512);
  lens_gemm_wu g;
  lens_gemm_pack(&g, W, 3, 5, LENS_PREC_BF16);
  lens_gemm_set_max_isa(old);
  CHECK(g.prec == LENS_PREC_FP32 && g.isa == LENS_ISA_AVX512 && g.p1 && !g.p1b && !g.p2b);
  lens_gemm_free(&g);
}

int main(void) {
  const int isa = lens_gemm_cpu_isa();
  check_kernels(LENS_ISA_BLAS, LENS_PREC_FP32, 1e-5);
  int skipped = 0;
  if (isa >= LENS_ISA_AVX512) {
    check_kernels(LENS_ISA_AVX512, LENS_PREC_FP32, 1e-5);
    check_bf16_fallback();
    check_deterministic(LENS_PREC_FP32);
  } else {
    fprintf(stderr, "test_lens_gemm: this CPU has no AVX-512: fp32 kernel checks skipped\n");
    skipped = 1;
  }
  if (isa >= LENS_ISA_AVX512_BF16) {
    check_kernels(LENS_ISA_AVX512_BF16, LENS_PREC_BF16, 1e-2);
    if (isa >= LENS_ISA_AMX) check_kernels(LENS_ISA_AMX, LENS_PREC_BF16, 1e-2);
    else fprintf(stderr, "test_lens_gemm: no AMX-BF16 usable here: AMX kernel checks skipped\n");
    check_to_bf16();
    check_deterministic(LENS_PREC_BF16);
  } else {
    fprintf(stderr, "test_lens_gemm: this CPU has no AVX-512 BF16: bf16 kernel checks skipped\n");
    skipped = 1;
  }
  if (isa >= LENS_ISA_AVX512) {
    problem p;
    make_problem(&p);
    check_step(&p, TL_LOSS_KL, isa >= LENS_ISA_AVX512_BF16);
    check_step(&p, TL_LOSS_CE, isa >= LENS_ISA_AVX512_BF16);
    check_cache(&p);
    check_api_errors(&p);
    free_problem(&p);
  }
  fprintf(stderr, "test_lens_gemm: largest scaled errors: openblas %.2e, fp32 %.2e, bf16 %.2e\n", worst[0], worst[1],
          worst[2]);
  tl_lens_cache_free();
  int rc = tl_test_finish("test_lens_gemm");
  return rc ? rc : skipped ? 77 : 0;
}
