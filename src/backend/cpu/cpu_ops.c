/* The CPU backend: sgemm from OpenBLAS (run single-threaded, one block of the
 * output per OpenMP thread), everything else as plain loops spread over OpenMP
 * threads, with the row formulas of tlens/rowmath.h (the ones the CUDA kernels
 * run). Memory is ordinary host memory, so to_device/to_host are copies. Every
 * op returns 0; rope and attention refuse head layouts they cannot do. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/cuda_module.h"
#include "tlens/fastexp.h"
#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/rowmath.h"

/* ---- memory ---- */

static void *cpu_alloc(size_t bytes) { return tl_aligned_alloc(bytes ? bytes : 64); }
static void cpu_free(void *p) { free(p); }
static int cpu_copy(float *dst, const float *src, size_t n) {
  if (n && dst != src) memcpy(dst, src, n * sizeof(float));
  return 0;
}
static int cpu_move(void *dst, const void *src, size_t bytes) {
  if (bytes && dst != src) memcpy(dst, src, bytes);
  return 0;
}

/* ---- dense algebra ---- */

/* sgemm split over the OpenMP threads, each calling a single-threaded OpenBLAS on
 * its own block of C. One thread pool (OpenMP) for every op avoids two pools
 * (OpenMP's and OpenBLAS's) spinning against each other on few cores. The larger
 * of M and N is split, in blocks that are multiples of 16. */
static void par_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
  enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if (omp_get_max_threads() == 1 || omp_in_parallel() || (double)M * N * K < 1 << 18) {
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  int split_n = N >= M;
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num(), total = split_n ? N : M;
    int per = ((total + nt - 1) / nt + 15) / 16 * 16;
    int lo = t * per, hi = lo + per < total ? lo + per : total;
    if (lo < hi) {
      if (split_n) /* columns lo..hi of op(B) and C */
        cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, alpha, A, lda, tb ? B + (size_t)lo * ldb : B + lo, ldb,
                    beta, C + lo, ldc);
      else /* rows lo..hi of op(A) and C */
        cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, alpha, ta ? A + lo : A + (size_t)lo * lda, lda, B, ldb,
                    beta, C + (size_t)lo * ldc, ldc);
    }
  }
}

static int cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
  par_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}

static int cpu_linear(float *y, const float *x, const float *W, const float *bias, int M, int N, int K,
                      int accumulate) {
  float beta = accumulate ? 1.0f : 0.0f;
  /* Without accumulation the bias can be written first and folded into sgemm's beta. */
  if (bias && !accumulate) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < M; r++) memcpy(y + (size_t)r * N, bias, (size_t)N * sizeof(float));
    beta = 1.0f;
  }
  par_sgemm(0, 1, M, N, K, 1.0f, x, K, W, K, beta, y, N);
  if (bias && accumulate) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < M; r++) {
      float *yr = y + (size_t)r * N;
      for (int j = 0; j < N; j++) yr[j] += bias[j];
    }
  }
  return 0;
}

/* ---- normalisation: one row per iteration (tlens/rowmath.h) ---- */

static int cpu_layernorm(float *y, const float *x, const float *w, const float *b, int rows, int d, float eps) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) tl_layernorm_row(y + (size_t)r * d, x + (size_t)r * d, w, b, d, eps, NULL, NULL);
  return 0;
}

static int cpu_rmsnorm(float *y, const float *x, const float *w, int rows, int d, float eps, int add_one) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) tl_rmsnorm_row(y + (size_t)r * d, x + (size_t)r * d, w, add_one, d, eps, NULL);
  return 0;
}

/* ---- embeddings and positions ---- */

static int cpu_embed(float *y, const float *table, const int32_t *ids, int n, int d) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) memcpy(y + (size_t)i * d, table + (size_t)ids[i] * d, (size_t)d * sizeof(float));
  return 0;
}

static int cpu_rope_freqs(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim,
                          const float *inv, float pos_div) {
  if (rot_dim < 0 || rot_dim % 2 || rot_dim > head_dim)
    return tl_fail("cpu rope: rot_dim %d must be even and at most head_dim %d", rot_dim, head_dim);
  int half = rot_dim / 2;
  if (half == 0) return 0;
  /* cos/sin per (position, frequency), computed the way HF does in fp32:
   * angle = (t / pos_div) * inv_freq (t / 1 is t exactly). */
  float *cs = tl_malloc((size_t)T * half * 2 * sizeof(float));
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++)
    for (int i = 0; i < half; i++) {
      float ang = ((float)t / pos_div) * inv[i];
      cs[((size_t)t * half + i) * 2] = cosf(ang);
      cs[((size_t)t * half + i) * 2 + 1] = sinf(ang);
    }
  int rows = B * T;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *c = cs + (size_t)(r % T) * half * 2;
    for (int h = 0; h < n_heads; h++) {
      float *v = x + (size_t)r * row_stride + (size_t)h * head_dim;
      for (int i = 0; i < half; i++) tl_rope_rotate(v, i, half, c[2 * i], c[2 * i + 1]);
    }
  }
  free(cs);
  return 0;
}

static int cpu_rope(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim, float theta) {
  if (rot_dim < 0 || rot_dim % 2 || rot_dim > head_dim)
    return tl_fail("cpu rope: rot_dim %d must be even and at most head_dim %d", rot_dim, head_dim);
  /* inv_freq = 1 / theta^(2i/rot_dim), as HF computes it in fp32 */
  float *inv = tl_malloc((size_t)(rot_dim / 2 + 1) * sizeof(float));
  for (int i = 0; i < rot_dim / 2; i++) inv[i] = tl_rope_inv_freq(theta, i, rot_dim);
  int rc = cpu_rope_freqs(x, B, T, row_stride, n_heads, head_dim, rot_dim, inv, 1.0f);
  free(inv);
  return rc;
}

/* ---- attention ----
 * Tasks are (batch, head, block of ATT_BLOCK queries). For a block of queries
 * [i0, i1) only keys [k0, i1) can be visible (k0 > 0 with a sliding window), so
 * the scores are one small sgemm S = Q K^T (alpha = scale), then a masked softmax
 * per row, then O = P V, another sgemm. Scratch per thread is ATT_BLOCK x T
 * floats: memory stays bounded for long sequences. This is a kernel of its own, not
 * the rowmath.h softmax: its exps run through the vectorised tl_exp_nonpos, and
 * the CUDA backend's attention (one warp per query, an online softmax) is shaped
 * by the GPU just as much. */
#define ATT_BLOCK 64
/* slopes: NULL, or ALiBi's per-head slopes (the score of query i and key j gains
 * slopes[h] * (j - i), added to the block of scores before its softmax). */
static int attention_impl(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                          float scale, int window, const float *slopes) {
  if (n_kv_heads < 1 || n_heads % n_kv_heads)
    return tl_fail("cpu attention: %d query heads cannot share %d key/value heads", n_heads, n_kv_heads);
  const int hd = head_dim, rs = (n_heads + 2 * n_kv_heads) * hd, os = n_heads * hd;
  const int group = n_heads / n_kv_heads, nblk = (T + ATT_BLOCK - 1) / ATT_BLOCK;
  const int ntask = B * n_heads * nblk;
#pragma omp parallel
  {
    float *S = tl_malloc((size_t)ATT_BLOCK * T * sizeof(float));
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < ntask; task++) {
      /* largest blocks first: later query blocks see more keys */
      int blk = nblk - 1 - task % nblk, bh = task / nblk;
      int b = bh / n_heads, h = bh % n_heads, kvh = h / group;
      int i0 = blk * ATT_BLOCK, i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, nq = i1 - i0;
      int k0 = (window > 0 && i0 - window + 1 > 0) ? i0 - window + 1 : 0, nk = i1 - k0;
      const float *base = qkv + (size_t)b * T * rs;
      const float *Q = base + (size_t)i0 * rs + (size_t)h * hd;
      const float *K = base + (size_t)k0 * rs + (size_t)(n_heads + kvh) * hd;
      const float *V = base + (size_t)k0 * rs + (size_t)(n_heads + n_kv_heads + kvh) * hd;
      float *O = out + ((size_t)b * T + i0) * os + (size_t)h * hd;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, Q, rs, K, rs, 0.0f, S, nk);
      for (int r = 0; r < nq; r++) {
        int i = i0 + r;                                                     /* query position */
        int lo = (window > 0 && i - window + 1 > k0) ? i - window + 1 - k0 : 0; /* first visible key */
        int hi = i - k0;                                                    /* last visible key */
        float *sr = S + (size_t)r * nk;
        if (slopes)
          for (int j = lo; j <= hi; j++) sr[j] += slopes[h] * (float)(k0 + j - i);
        float mx = sr[lo];
#pragma omp simd reduction(max : mx)
        for (int j = lo + 1; j <= hi; j++) mx = sr[j] > mx ? sr[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = lo; j <= hi; j++) {
          sr[j] = tl_exp_nonpos(sr[j] - mx); /* vectorised (libm's expf is not) */
          sum += sr[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < lo; j++) sr[j] = 0.0f;
        for (int j = lo; j <= hi; j++) sr[j] *= inv;
        for (int j = hi + 1; j < nk; j++) sr[j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, S, nk, V, rs, 0.0f, O, os);
    }
    free(S);
  }
  return 0;
}

static int cpu_attention(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                         float scale, int window) {
  return attention_impl(out, qkv, B, T, n_heads, n_kv_heads, head_dim, scale, window, NULL);
}

static int cpu_attention_alibi(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads,
                               int head_dim, float scale, int window, const float *slopes) {
  if (!slopes) return tl_fail("cpu attention_alibi: no slopes given");
  return attention_impl(out, qkv, B, T, n_heads, n_kv_heads, head_dim, scale, window, slopes);
}

/* ---- elementwise ---- */

static int cpu_act(float *x, size_t n, tl_act kind) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) x[i] = tl_act_apply(x[i], kind);
  return 0;
}

static int cpu_glu(float *out, const float *gate_up, int rows, int d_ff, tl_act kind) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *g = gate_up + (size_t)r * 2 * d_ff, *u = g + d_ff;
    float *o = out + (size_t)r * d_ff;
    for (int i = 0; i < d_ff; i++) o[i] = tl_act_apply(g[i], kind) * u[i];
  }
  return 0;
}

static int cpu_add(float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  return 0;
}

static int cpu_scale(float *x, size_t n, float s) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) x[i] *= s;
  return 0;
}

static int cpu_softmax(float *x, int rows, int n) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) tl_softmax_row(x + (size_t)r * n, n);
  return 0;
}

static int cpu_argmax(int32_t *out, const float *x, int rows, int n) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * n;
    int best = 0;
    for (int i = 1; i < n; i++)
      if (xr[i] > xr[best]) best = i;
    out[r] = best;
  }
  return 0;
}

/* The table, grouped as in tlens/backend.h. No shape limits (0). */
static const tl_backend cpu_backend = {
    .name = "cpu", .device = TL_DEVICE_CPU, .max_head_dim = 0, .max_rot_dim = 0,
    .alloc = cpu_alloc, .free = cpu_free, .to_device = cpu_move, .to_host = cpu_move, .copy = cpu_copy,
    .gemm = cpu_gemm, .linear = cpu_linear,
    .layernorm = cpu_layernorm, .rmsnorm = cpu_rmsnorm,
    .embed = cpu_embed, .rope = cpu_rope, .rope_freqs = cpu_rope_freqs,
    .attention = cpu_attention, .attention_alibi = cpu_attention_alibi,
    .act = cpu_act, .glu = cpu_glu, .add = cpu_add, .scale = cpu_scale, .softmax = cpu_softmax,
    .argmax = cpu_argmax,
};

/* OpenBLAS itself stays single-threaded: the ops above parallelise with OpenMP. */
static void cpu_init(void) {
  static int done = 0;
  if (!done) {
    openblas_set_num_threads(1);
    done = 1;
  }
}

const tl_backend *tl_backend_cpu(void) {
  cpu_init();
  return &cpu_backend;
}

void tl_backend_cpu_set_threads(int n) {
  cpu_init();
  if (n > 0) omp_set_num_threads(n);
}

const tl_backend *tl_backend_get(tl_device dev) {
  if (dev == TL_DEVICE_CPU) return tl_backend_cpu();
  if (dev == TL_DEVICE_CUDA) { /* NULL + a recorded reason without the module or a usable GPU */
    const tl_cuda_module *cm = tl_cuda_module_load();
    return cm ? cm->backend() : NULL;
  }
  tl_fail("backend: unknown device %d", (int)dev);
  return NULL;
}
