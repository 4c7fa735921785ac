/* The CPU backend: sgemm from OpenBLAS (run single-threaded, one block of the
 * output per OpenMP thread), everything else as plain loops spread over OpenMP
 * threads. Memory is ordinary host memory, so to_device/to_host are
 * copies. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/backend.h"
#include "tlens/core.h"

/* ---- memory ---- */

static void *cpu_alloc(size_t bytes) { return tl_aligned_alloc(bytes ? bytes : 64); }
static void cpu_free(void *p) { free(p); }
static void cpu_copy(float *dst, const float *src, size_t n) {
  if (n && dst != src) memcpy(dst, src, n * sizeof(float));
}
static void cpu_move(void *dst, const void *src, size_t bytes) {
  if (bytes && dst != src) memcpy(dst, src, bytes);
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

static void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
  par_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_linear(float *y, const float *x, const float *W, const float *bias, int M, int N, int K,
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
}

/* ---- normalisation: statistics in double so long rows lose nothing ---- */

static void cpu_layernorm(float *y, const float *x, const float *w, const float *b, int rows, int d, float eps) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * d;
    float *yr = y + (size_t)r * d;
    double sum = 0, sq = 0;
    for (int i = 0; i < d; i++) sum += xr[i];
    double mean = sum / d;
    for (int i = 0; i < d; i++) {
      double c = xr[i] - mean;
      sq += c * c;
    }
    float rstd = (float)(1.0 / sqrt(sq / d + (double)eps));
    float m = (float)mean;
    for (int i = 0; i < d; i++) {
      float v = (xr[i] - m) * rstd * w[i];
      yr[i] = b ? v + b[i] : v;
    }
  }
}

static void cpu_rmsnorm(float *y, const float *x, const float *w, int rows, int d, float eps, int add_one) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * d;
    float *yr = y + (size_t)r * d;
    double sq = 0;
    for (int i = 0; i < d; i++) sq += (double)xr[i] * xr[i];
    float rstd = (float)(1.0 / sqrt(sq / d + (double)eps));
    for (int i = 0; i < d; i++) yr[i] = (xr[i] * rstd) * (add_one ? 1.0f + w[i] : w[i]);
  }
}

/* ---- embeddings and positions ---- */

static void cpu_embed(float *y, const float *table, const int32_t *ids, int n, int d) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) memcpy(y + (size_t)i * d, table + (size_t)ids[i] * d, (size_t)d * sizeof(float));
}

static void cpu_rope(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim, float theta) {
  int half = rot_dim / 2;
  if (half <= 0) return;
  /* cos/sin per (position, frequency), computed the way HF does in fp32:
   * inv_freq = 1 / theta^(2i/rot_dim), angle = t * inv_freq. */
  float *cs = tl_malloc((size_t)T * half * 2 * sizeof(float));
  float *inv = tl_malloc((size_t)half * sizeof(float));
  for (int i = 0; i < half; i++) inv[i] = 1.0f / powf(theta, (float)(2 * i) / (float)rot_dim);
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++)
    for (int i = 0; i < half; i++) {
      float ang = (float)t * inv[i];
      cs[((size_t)t * half + i) * 2] = cosf(ang);
      cs[((size_t)t * half + i) * 2 + 1] = sinf(ang);
    }
  int rows = B * T;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *c = cs + (size_t)(r % T) * half * 2;
    for (int h = 0; h < n_heads; h++) {
      float *v = x + (size_t)r * row_stride + (size_t)h * head_dim;
      for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half], co = c[2 * i], si = c[2 * i + 1];
        v[i] = a * co - b * si;
        v[i + half] = b * co + a * si;
      }
    }
  }
  free(inv);
  free(cs);
}

/* ---- attention ----
 * One (batch, head) pair per task. Its keys are first transposed into Kt[c][s]
 * so that both inner loops (scores over keys, and the weighted sum of values)
 * are unit-stride multiply-adds the compiler vectorises. Scratch per thread is
 * head_dim*T + T floats, so memory stays bounded for long sequences. */
static void cpu_attention(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                          float scale, int window) {
  const int hd = head_dim;
  const size_t rs = (size_t)(n_heads + 2 * n_kv_heads) * hd; /* qkv row stride */
  const size_t os = (size_t)n_heads * hd;                    /* out row stride */
  const int group = n_heads / n_kv_heads;
#pragma omp parallel
  {
    float *Kt = tl_malloc((size_t)hd * T * sizeof(float));
    float *s = tl_malloc((size_t)T * sizeof(float));
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * n_heads; bh++) {
      int b = bh / n_heads, h = bh % n_heads, kvh = h / group;
      const float *base = qkv + (size_t)b * T * rs;
      const size_t qo = (size_t)h * hd, ko = (size_t)(n_heads + kvh) * hd,
                   vo = (size_t)(n_heads + n_kv_heads + kvh) * hd;
      for (int t = 0; t < T; t++)
        for (int c = 0; c < hd; c++) Kt[(size_t)c * T + t] = base[(size_t)t * rs + ko + c];
      for (int t = 0; t < T; t++) {
        int j0 = (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0;
        int n = t + 1 - j0;
        float *sj = s + j0;
        const float *q = base + (size_t)t * rs + qo;
        for (int j = 0; j < n; j++) sj[j] = 0.0f;
        for (int c = 0; c < hd; c++) {
          float qc = q[c] * scale;
          const float *kc = Kt + (size_t)c * T + j0;
          for (int j = 0; j < n; j++) sj[j] += qc * kc[j];
        }
        float mx = sj[0];
        for (int j = 1; j < n; j++) mx = sj[j] > mx ? sj[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
          sj[j] = expf(sj[j] - mx);
          sum += sj[j];
        }
        float inv = 1.0f / sum;
        float *o = out + ((size_t)b * T + t) * os + qo;
        for (int c = 0; c < hd; c++) o[c] = 0.0f;
        for (int j = 0; j < n; j++) {
          float p = sj[j] * inv;
          const float *v = base + (size_t)(j0 + j) * rs + vo;
          for (int c = 0; c < hd; c++) o[c] += p * v[c];
        }
      }
    }
    free(s);
    free(Kt);
  }
}

/* ---- elementwise ---- */

static inline float act1(float x, tl_act kind) {
  switch (kind) {
  case TL_ACT_GELU_NEW: {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
  }
  case TL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
  case TL_ACT_SILU: return x / (1.0f + expf(-x));
  case TL_ACT_RELU: return x > 0 ? x : 0.0f;
  }
  return x;
}

static void cpu_act(float *x, size_t n, tl_act kind) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) x[i] = act1(x[i], kind);
}

static void cpu_glu(float *out, const float *gate_up, int rows, int d_ff, tl_act kind) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *g = gate_up + (size_t)r * 2 * d_ff, *u = g + d_ff;
    float *o = out + (size_t)r * d_ff;
    for (int i = 0; i < d_ff; i++) o[i] = act1(g[i], kind) * u[i];
  }
}

static void cpu_add(float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void cpu_softmax(float *x, int rows, int n) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    float *xr = x + (size_t)r * n;
    float mx = xr[0];
    for (int i = 1; i < n; i++) mx = xr[i] > mx ? xr[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) {
      xr[i] = expf(xr[i] - mx);
      sum += xr[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) xr[i] *= inv;
  }
}

static void cpu_argmax(int32_t *out, const float *x, int rows, int n) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * n;
    int best = 0;
    for (int i = 1; i < n; i++)
      if (xr[i] > xr[best]) best = i;
    out[r] = best;
  }
}

static const tl_backend cpu_backend = {
    .name = "cpu",
    .device = TL_DEVICE_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_move,
    .to_host = cpu_move,
    .copy = cpu_copy,
    .gemm = cpu_gemm,
    .linear = cpu_linear,
    .layernorm = cpu_layernorm,
    .rmsnorm = cpu_rmsnorm,
    .embed = cpu_embed,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .act = cpu_act,
    .glu = cpu_glu,
    .add = cpu_add,
    .softmax = cpu_softmax,
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
  tl_fail("backend: this build has no CUDA backend (rebuild with the CUDA toolkit and -DTLENS_CUDA=ON)");
  return NULL;
}
