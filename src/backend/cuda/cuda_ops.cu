/* The CUDA backend: sgemm from cuBLAS, every other op a small kernel of our own
 * built from the row formulas of tlens/rowmath.h (the ones the CPU backend runs).
 *
 * All work goes to the legacy default stream (stream 0) of the current device,
 * so consecutive ops are ordered without explicit synchronisation and host
 * code only waits when it reads results back (to_host, argmax).
 *
 * The kernels favour being obviously correct over being the fastest possible:
 * row reductions use one block per row, each thread taking a strided share of
 * the row and the block adding the shares with warp shuffles; attention is one
 * warp per query with an online softmax. Row statistics are accumulated in
 * double, as on the CPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "tlens/core.h"
}
#include "backend/cuda/cuda_backend.h"
#include "tlens/rowmath.h"

/* ---- errors: an op that fails records one line with tl_fail and returns -1 ---- */

extern "C" int tl_cuda_try_(cudaError_t err, const char *what, const char *file, int line) {
  if (err == cudaSuccess) return 0;
  return tl_fail("%s:%d: CUDA error %s (%s) in %s", file, line, cudaGetErrorName(err), cudaGetErrorString(err), what);
}

static int cublas_try_(cublasStatus_t st, const char *what, const char *file, int line) {
  if (st == CUBLAS_STATUS_SUCCESS) return 0;
  return tl_fail("%s:%d: cuBLAS error %s (%s) in %s", file, line, cublasGetStatusName(st), cublasGetStatusString(st),
                 what);
}
#define cublasTry(call) do { if (cublas_try_((call), #call, __FILE__, __LINE__) != 0) return -1; } while (0)
/* A launch reports bad configurations only through cudaGetLastError. */
#define launchTry() cudaTry(cudaGetLastError())

/* ---- launch geometry ---- */

enum { ELEM_THREADS = 256, ROW_THREADS = 256 };

/* Blocks for a grid-stride loop over n elements: enough to fill any GPU,
 * capped so huge n simply loops. */
static unsigned elem_blocks(size_t n) {
  size_t b = (n + ELEM_THREADS - 1) / ELEM_THREADS;
  if (b > (1u << 20)) b = 1u << 20;
  return b ? (unsigned)b : 1u;
}

/* ---- reductions ---- */

template <typename T, bool IS_MAX>
__device__ __forceinline__ T warp_reduce(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = IS_MAX ? (w > v ? w : v) : v + w;
  }
  return v;
}

/* Sum (or max) over the block, returned to every thread. blockDim.x must be a
 * multiple of 32. The trailing barrier lets the caller reduce again at once
 * without racing on the shared scratch. */
template <typename T, bool IS_MAX>
__device__ T block_reduce(T v) {
  __shared__ T part[32];
  __shared__ T result;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce<T, IS_MAX>(v);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < nwarps ? part[lane] : (IS_MAX ? (T)-INFINITY : (T)0);
    w = warp_reduce<T, IS_MAX>(w);
    if (lane == 0) result = w;
  }
  __syncthreads();
  T r = result;
  __syncthreads();
  return r;
}
__device__ __forceinline__ double block_sum(double v) { return block_reduce<double, false>(v); }
__device__ __forceinline__ float block_max(float v) { return block_reduce<float, true>(v); }

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes) {
  void *p = NULL;
  /* A zero-byte request still gets a distinct pointer, like the CPU backend. */
  cudaError_t err = cudaMalloc(&p, bytes ? bytes : 256);
  if (err != cudaSuccess) {
    /* By design (tlens/backend.h): alloc never returns NULL and running out of
     * device memory ends the process, as tl_malloc does on the host. */
    fprintf(stderr, "cuda: cannot allocate %zu bytes of device memory: %s\n", bytes, cudaGetErrorString(err));
    abort();
  }
  return p;
}
/* free cannot report a failure (it returns nothing): it says so on stderr. */
static void cuda_free(void *p) {
  cudaError_t err = p ? cudaFree(p) : cudaSuccess;
  if (err != cudaSuccess) fprintf(stderr, "cuda: cudaFree failed: %s\n", cudaGetErrorString(err));
}
static int cuda_to_device(void *dst, const void *host_src, size_t bytes) {
  if (bytes) cudaTry(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
  return 0;
}
static int cuda_to_host(void *host_dst, const void *src, size_t bytes) {
  if (bytes) cudaTry(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
  return 0;
}
static int cuda_copy(float *dst, const float *src, size_t n) {
  if (n && dst != src) cudaTry(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, 0));
  return 0;
}

/* ---- dense algebra ---- */

static cublasHandle_t g_cublas;
static int g_device = -1; /* the device g_cublas belongs to; -1 before init */

/* cuBLAS is column-major. A row-major matrix is the column-major view of its
 * transpose, so C = op(A) op(B) (row-major) is computed as
 * C^T = op(B)^T op(A)^T (column-major): swap the operands and M with N. */
static int cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return 0;
  cublasTry(cublasSgemm(g_cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                        &alpha, B, ldb, A, lda, &beta, C, ldc));
  return 0;
}

__global__ void add_bias_kernel(float *y, const float *bias, size_t rows, int N) {
  size_t total = rows * (size_t)N;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
    y[i] += bias[i % N];
}

static int cuda_linear(float *y, const float *x, const float *W, const float *bias, int M, int N, int K,
                       int accumulate) {
  if (M <= 0 || N <= 0) return 0;
  TL_TRY(cuda_gemm(0, 1, M, N, K, 1.0f, x, K, W, K, accumulate ? 1.0f : 0.0f, y, N));
  if (bias) {
    add_bias_kernel<<<elem_blocks((size_t)M * N), ELEM_THREADS>>>(y, bias, (size_t)M, N);
    launchTry();
  }
  return 0;
}

/* ---- normalisation: one block per row (tlens/rowmath.h) ---- */

__global__ void layernorm_kernel(float *y, const float *x, const float *w, const float *b, int d, float eps) {
  const float *xr = x + (size_t)blockIdx.x * d;
  float *yr = y + (size_t)blockIdx.x * d;
  const int i0 = threadIdx.x, step = blockDim.x;
  const double mean = block_sum(tl_row_sum(xr, i0, d, step)) / d;
  const float rstd = tl_norm_rstd(block_sum(tl_row_sqdev(xr, mean, i0, d, step)), d, eps);
  tl_layernorm_apply(yr, xr, (float)mean, rstd, w, b, i0, d, step);
}

static int cuda_layernorm(float *y, const float *x, const float *w, const float *b, int rows, int d, float eps) {
  if (rows <= 0) return 0;
  layernorm_kernel<<<rows, ROW_THREADS>>>(y, x, w, b, d, eps);
  launchTry();
  return 0;
}

__global__ void rmsnorm_kernel(float *y, const float *x, const float *w, int d, float eps, int add_one) {
  const float *xr = x + (size_t)blockIdx.x * d;
  float *yr = y + (size_t)blockIdx.x * d;
  const int i0 = threadIdx.x, step = blockDim.x;
  const float rstd = tl_norm_rstd(block_sum(tl_row_sqdev(xr, 0.0, i0, d, step)), d, eps);
  tl_rmsnorm_apply(yr, xr, rstd, w, add_one, i0, d, step);
}

static int cuda_rmsnorm(float *y, const float *x, const float *w, int rows, int d, float eps, int add_one) {
  if (rows <= 0) return 0;
  rmsnorm_kernel<<<rows, ROW_THREADS>>>(y, x, w, d, eps, add_one);
  launchTry();
  return 0;
}

/* ---- embeddings and positions ---- */

/* ids live in device memory like every other array. */
__global__ void embed_kernel(float *y, const float *table, const int32_t *ids, int n, int d) {
  size_t total = (size_t)n * d;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    size_t row = i / d, col = i % d;
    y[i] = table[(size_t)ids[row] * d + col];
  }
}

static int cuda_embed(float *y, const float *table, const int32_t *ids, int n, int d) {
  if (n <= 0 || d <= 0) return 0;
  embed_kernel<<<elem_blocks((size_t)n * d), ELEM_THREADS>>>(y, table, ids, n, d);
  launchTry();
  return 0;
}

/* The inverse frequencies travel as a kernel argument: computed on the host
 * with the CPU backend's tl_rope_inv_freq (HF, too, builds them on the CPU),
 * the angles are bit-identical; only cos/sin round differently. */
enum { ROPE_MAX_HALF = 256 }; /* rot_dim <= 512: the table's max_rot_dim */
struct rope_freqs {
  float inv[ROPE_MAX_HALF];
};

__global__ void rope_kernel(float *x, size_t rows, int T, int row_stride, int n_heads, int head_dim, int half,
                            rope_freqs f, float pos_div) {
  size_t total = rows * n_heads * half;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int k = (int)(i % half);
    size_t rh = i / half;
    int h = (int)(rh % n_heads);
    size_t r = rh / n_heads;
    float ang = ((float)(int)(r % T) / pos_div) * f.inv[k];
    tl_rope_rotate(x + r * row_stride + (size_t)h * head_dim, k, half, cosf(ang), sinf(ang));
  }
}

/* inv: rot_dim/2 host floats, copied into the kernel's argument */
static int cuda_rope_freqs(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim,
                           const float *inv, float pos_div) {
  if (rot_dim < 0 || rot_dim % 2 || rot_dim > head_dim)
    return tl_fail("cuda rope: rot_dim %d must be even and at most head_dim %d", rot_dim, head_dim);
  if (rot_dim > 2 * ROPE_MAX_HALF)
    return tl_fail("cuda rope: rotary dimension %d exceeds the supported %d", rot_dim, 2 * ROPE_MAX_HALF);
  int half = rot_dim / 2;
  if (half == 0 || B <= 0 || T <= 0 || n_heads <= 0) return 0;
  rope_freqs f;
  for (int i = 0; i < half; i++) f.inv[i] = inv[i];
  size_t rows = (size_t)B * T;
  rope_kernel<<<elem_blocks(rows * n_heads * half), ELEM_THREADS>>>(x, rows, T, row_stride, n_heads, head_dim, half,
                                                                    f, pos_div);
  launchTry();
  return 0;
}

static int cuda_rope(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim, float theta) {
  if (rot_dim < 0 || rot_dim % 2 || rot_dim > head_dim)
    return tl_fail("cuda rope: rot_dim %d must be even and at most head_dim %d", rot_dim, head_dim);
  if (rot_dim > 2 * ROPE_MAX_HALF)
    return tl_fail("cuda rope: rotary dimension %d exceeds the supported %d", rot_dim, 2 * ROPE_MAX_HALF);
  float inv[ROPE_MAX_HALF];
  for (int i = 0; i < rot_dim / 2; i++) inv[i] = tl_rope_inv_freq(theta, i, rot_dim);
  return cuda_rope_freqs(x, B, T, row_stride, n_heads, head_dim, rot_dim, inv, 1.0f);
}

/* ---- attention ----
 * One warp per (batch, head, query). Lane l owns dims l, l+32, ... of the head,
 * so every load of a q/k/v row is coalesced. Keys are visited once in order with
 * an online softmax: a running max m, running denominator l and an unnormalised
 * output accumulator rescaled by exp(m_old - m_new) whenever the max grows, so
 * no score array is ever stored and any sequence length works. A kernel of its
 * own (as the CPU backend's attention is), not the rowmath.h softmax. */
enum { ATT_MAX_DPL = 8, ATT_WARPS = 4 }; /* dims per lane (head_dim <= 256: max_head_dim), warps per block */

/* slopes: NULL, or ALiBi's per-head slopes in device memory (score += slopes[h] * (j - t)). */
__global__ void attention_kernel(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads,
                                 int head_dim, float scale, int window, const float *slopes) {
  int lane = threadIdx.x & 31;
  size_t q_index = (size_t)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5); /* over (b, h, t) */
  if (q_index >= (size_t)B * n_heads * T) return;                      /* whole warp exits together */
  int t = (int)(q_index % T);
  int h = (int)((q_index / T) % n_heads);
  int b = (int)(q_index / ((size_t)T * n_heads));
  int kvh = h / (n_heads / n_kv_heads);
  const size_t rs = (size_t)(n_heads + 2 * n_kv_heads) * head_dim;
  const float *base = qkv + (size_t)b * T * rs;
  const size_t ko = (size_t)(n_heads + kvh) * head_dim, vo = (size_t)(n_heads + n_kv_heads + kvh) * head_dim;

  float q[ATT_MAX_DPL], acc[ATT_MAX_DPL];
  const float *qr = base + (size_t)t * rs + (size_t)h * head_dim;
#pragma unroll
  for (int k = 0; k < ATT_MAX_DPL; k++) {
    int c = lane + 32 * k;
    q[k] = c < head_dim ? qr[c] * scale : 0.0f;
    acc[k] = 0.0f;
  }
  const float slope = slopes ? slopes[h] : 0.0f;
  float m = -INFINITY, l = 0.0f;
  int j0 = (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0;
  for (int j = j0; j <= t; j++) {
    const float *kr = base + (size_t)j * rs + ko;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < ATT_MAX_DPL; k++) {
      int c = lane + 32 * k;
      if (c < head_dim) s += q[k] * kr[c];
    }
    s = warp_reduce<float, false>(s);
    if (slopes) s += slope * (float)(j - t);
    float m_new = fmaxf(m, s);
    float corr = expf(m - m_new); /* 0 on the first key (m = -inf) */
    float p = expf(s - m_new);
    l = l * corr + p;
    const float *vr = base + (size_t)j * rs + vo;
#pragma unroll
    for (int k = 0; k < ATT_MAX_DPL; k++) {
      int c = lane + 32 * k;
      if (c < head_dim) acc[k] = acc[k] * corr + p * vr[c];
    }
    m = m_new;
  }
  float inv = 1.0f / l;
  float *o = out + ((size_t)b * T + t) * ((size_t)n_heads * head_dim) + (size_t)h * head_dim;
#pragma unroll
  for (int k = 0; k < ATT_MAX_DPL; k++) {
    int c = lane + 32 * k;
    if (c < head_dim) o[c] = acc[k] * inv;
  }
}

static int attention_launch(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                            float scale, int window, const float *slopes) {
  if (n_kv_heads < 1 || n_heads % n_kv_heads)
    return tl_fail("cuda attention: %d query heads cannot share %d key/value heads", n_heads, n_kv_heads);
  if (head_dim > 32 * ATT_MAX_DPL)
    return tl_fail("cuda attention: head_dim %d exceeds the supported %d", head_dim, 32 * ATT_MAX_DPL);
  if (B <= 0 || T <= 0 || n_heads <= 0) return 0;
  size_t queries = (size_t)B * n_heads * T;
  size_t blocks = (queries + ATT_WARPS - 1) / ATT_WARPS;
  attention_kernel<<<(unsigned)blocks, 32 * ATT_WARPS>>>(out, qkv, B, T, n_heads, n_kv_heads, head_dim, scale,
                                                         window, slopes);
  launchTry();
  return 0;
}

static int cuda_attention(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                          float scale, int window) {
  return attention_launch(out, qkv, B, T, n_heads, n_kv_heads, head_dim, scale, window, NULL);
}

static int cuda_attention_alibi(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads,
                                int head_dim, float scale, int window, const float *slopes) {
  if (!slopes) return tl_fail("cuda attention_alibi: no slopes given");
  return attention_launch(out, qkv, B, T, n_heads, n_kv_heads, head_dim, scale, window, slopes);
}

/* ---- elementwise ---- */

__global__ void act_kernel(float *x, size_t n, tl_act kind) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    x[i] = tl_act_apply(x[i], kind);
}

static int cuda_act(float *x, size_t n, tl_act kind) {
  if (!n) return 0;
  act_kernel<<<elem_blocks(n), ELEM_THREADS>>>(x, n, kind);
  launchTry();
  return 0;
}

__global__ void glu_kernel(float *out, const float *gate_up, size_t rows, int d_ff, tl_act kind) {
  size_t total = rows * d_ff;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    size_t r = i / d_ff, c = i % d_ff;
    const float *g = gate_up + r * 2 * d_ff;
    out[i] = tl_act_apply(g[c], kind) * g[d_ff + c];
  }
}

static int cuda_glu(float *out, const float *gate_up, int rows, int d_ff, tl_act kind) {
  if (rows <= 0 || d_ff <= 0) return 0;
  glu_kernel<<<elem_blocks((size_t)rows * d_ff), ELEM_THREADS>>>(out, gate_up, (size_t)rows, d_ff, kind);
  launchTry();
  return 0;
}

__global__ void add_kernel(float *y, const float *a, const float *b, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] = a[i] + b[i];
}

static int cuda_add(float *y, const float *a, const float *b, size_t n) {
  if (!n) return 0;
  add_kernel<<<elem_blocks(n), ELEM_THREADS>>>(y, a, b, n);
  launchTry();
  return 0;
}

__global__ void scale_kernel(float *x, size_t n, float s) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    x[i] *= s;
}

static int cuda_scale(float *x, size_t n, float s) {
  if (!n) return 0;
  scale_kernel<<<elem_blocks(n), ELEM_THREADS>>>(x, n, s);
  launchTry();
  return 0;
}

__global__ void div_kernel(float *x, size_t n, float w) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    x[i] /= w;
}

extern "C" int tl_cuda_div(float *x, size_t n, float w, cudaStream_t stream) {
  if (!n) return 0;
  div_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(x, n, w);
  launchTry();
  return 0;
}

/* ---- softmax: one block per row (tlens/rowmath.h) ---- */

__global__ void softmax_kernel(float *x, int n) {
  float *xr = x + (size_t)blockIdx.x * n;
  const int i0 = threadIdx.x, step = blockDim.x;
  const float mx = block_max(tl_row_max(xr, i0, n, step));
  const double s = block_sum(tl_row_exp_shift(xr, mx, i0, n, step));
  tl_row_scale(xr, (float)(1.0 / s), i0, n, step);
}

static int cuda_softmax(float *x, int rows, int n) {
  if (rows <= 0 || n <= 0) return 0;
  softmax_kernel<<<rows, ROW_THREADS>>>(x, n);
  launchTry();
  return 0;
}

/* ---- argmax ---- */

/* Keeps the larger value, and on equal values the lower index, so the result
 * is the first maximum whatever order the threads meet in. */
__device__ __forceinline__ void argmax_merge(float *bv, int *bi, float v, int i) {
  if (v > *bv || (v == *bv && i < *bi)) {
    *bv = v;
    *bi = i;
  }
}

__global__ void argmax_kernel(int32_t *out, const float *x, int n) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const float *xr = x + (size_t)blockIdx.x * n;
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < n; i += blockDim.x) argmax_merge(&bv, &bi, xr[i], i);
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    argmax_merge(&bv, &bi, ov, oi);
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = bv;
    si[warp] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) argmax_merge(&bv, &bi, sv[w], si[w]);
    /* A row of NaNs (or all -inf with no strict winner) falls back to index 0. */
    out[blockIdx.x] = bi < n ? bi : 0;
  }
}

/* Device scratch for the per-row results, grown as needed. The backend is used
 * from one host thread, like the CPU backend's OpenMP loops. */
static int32_t *g_argmax_buf;
static size_t g_argmax_cap;

static int cuda_argmax(int32_t *out_host, const float *x, int rows, int n) {
  if (rows <= 0) return 0;
  if ((size_t)rows > g_argmax_cap) {
    cuda_free(g_argmax_buf);
    g_argmax_buf = (int32_t *)cuda_alloc((size_t)rows * sizeof(int32_t));
    g_argmax_cap = (size_t)rows;
  }
  argmax_kernel<<<rows, ROW_THREADS>>>(g_argmax_buf, x, n);
  launchTry();
  return cuda_to_host(out_host, g_argmax_buf, (size_t)rows * sizeof(int32_t));
}

/* ---- the table ---- */

static tl_backend make_table(void) {
  tl_backend b = {};
  b.name = "cuda";
  b.device = TL_DEVICE_CUDA;
  b.max_head_dim = 32 * ATT_MAX_DPL;
  b.max_rot_dim = 2 * ROPE_MAX_HALF;
  b.alloc = cuda_alloc;
  b.free = cuda_free;
  b.to_device = cuda_to_device;
  b.to_host = cuda_to_host;
  b.copy = cuda_copy;
  b.gemm = cuda_gemm;
  b.linear = cuda_linear;
  b.layernorm = cuda_layernorm;
  b.rmsnorm = cuda_rmsnorm;
  b.embed = cuda_embed;
  b.rope = cuda_rope;
  b.rope_freqs = cuda_rope_freqs;
  b.attention = cuda_attention;
  b.attention_alibi = cuda_attention_alibi;
  b.act = cuda_act;
  b.glu = cuda_glu;
  b.add = cuda_add;
  b.scale = cuda_scale;
  b.softmax = cuda_softmax;
  b.argmax = cuda_argmax;
  return b;
}
static tl_backend g_table;

extern "C" int tl_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError(); /* clear the sticky "no driver" error so later calls are not confused */
    return 0;
  }
  return n;
}

extern "C" int tl_cuda_select_device(int local_rank) {
  int n = tl_cuda_device_count();
  if (n == 0) return tl_fail("cuda: no CUDA device is available");
  int dev = (local_rank < 0 ? 0 : local_rank) % n;
  if (g_device >= 0 && g_device != dev)
    return tl_fail("cuda: the backend already runs on device %d; cannot switch this process to device %d", g_device,
                   dev);
  cudaError_t err = cudaSetDevice(dev);
  if (err != cudaSuccess) return tl_fail("cuda: cannot use device %d: %s", dev, cudaGetErrorString(err));
  return 0;
}

extern "C" const tl_backend *tl_backend_cuda(void) {
  if (g_device >= 0) return &g_table;
  if (tl_cuda_device_count() == 0) {
    tl_fail("cuda: no CUDA device is available (no GPU or no driver)");
    return NULL;
  }
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) {
    tl_fail("cuda: cannot query the current device: %s", cudaGetErrorString(err));
    return NULL;
  }
  cublasStatus_t st = cublasCreate(&g_cublas);
  if (st != CUBLAS_STATUS_SUCCESS) {
    tl_fail("cuda: cannot create the cuBLAS handle: %s", cublasGetStatusString(st));
    return NULL;
  }
  /* Plain fp32 sgemm, never TF32 tensor cores: results must match the CPU
   * backend and the Python reference to fp32 accuracy. */
  if (cublas_try_(cublasSetMathMode(g_cublas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", __FILE__, __LINE__) != 0) {
    cublasDestroy(g_cublas);
    return NULL;
  }
  g_table = make_table();
  g_device = dev;
  return &g_table;
}
