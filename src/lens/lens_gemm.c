/* The lens GEMMs with the frozen unembedding (see lens_gemm.h).
 *
 * Both products are written as one kind of tile: C[mr, 64] (+)= A[mr, K] B[K, 64]
 * with A read in place (row-major, one scalar per row and k broadcast to a
 * vector) and B a packed panel whose 64 values per k are contiguous. Six rows by
 * four 16-float vectors give 24 accumulators in registers; per k the tile loads
 * 4 vectors of B and 6 scalars of A for 24 fused multiply-adds, so it runs on
 * the FMA units rather than on loads.
 *
 *   logits   (K = d):  A = normalised rows x[M,d]; B = W_U^T, packed once into
 *                      panels [V/64][d][64]. Threads take groups of panels (V).
 *   backward (K = V):  A = dz[M,V]; B = W_U itself, rows v, 64 columns of d at a
 *                      time. W_U's rows are 2 KB apart at d = 512, which would map
 *                      a block of them onto a few cache sets, so each thread
 *                      copies KB2 rows into a contiguous panel buffer first (read
 *                      W_U once per call, reused by every row tile). Threads
 *                      take slices of K (the vocabulary), each summed into its
 *                      own [M,d] partial, added up in a fixed order at the end:
 *                      each thread reads only its part of dz and W_U.
 *
 * Work is handed out on demand (dynamic schedules), since on a shared machine
 * one core may run slower than the other.
 *
 * Cache blocking (per core: 48 KB L1, 1 MB L2 on the machine this was tuned on):
 * the logits loop keeps a KB1 x 64 block of B (32 KB) in L1 while every row
 * tile of the chunk passes over it, and the [M, 64] block of z in L2 across
 * the K blocks. The backward pass keeps its KB2 x 64 panel (32 KB) in L1.
 *
 * bf16: vdpbf16ps multiplies PAIRS of bf16 along K and accumulates in fp32, so
 * the packed panels interleave two consecutive k per column ([k/2][64][2]) and
 * the A side is converted to bf16 rows once per call, its pair broadcast as one
 * 32-bit value. Same tiles, half the K steps, each doing twice the work. */
#include "lens/lens_gemm.h"

#include <cblas.h>
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlens/core.h"
#include "tlens/tensor.h"

#define NR 64   /* columns per tile and panel */
#define MR 6    /* rows per tile */
#define KB1 128 /* K block of the logits product (fp32: 128 x 64 x 4 B = 32 KB of B) */
#define KB2 128 /* K block of the backward product (the same) */

#define PANELS 4  /* logits panels per work item */
#define SLICES 8  /* work items of the backward product (see lens_gemm_backward) */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))

/* ---- CPU features ---- */

static int cpu_isa = -1, max_isa = LENS_ISA_AMX;

/* AMX: the CPU has the tile unit with bf16 (CPUID.7.0:EDX bits 24 and 22) and the
 * kernel lets this process use the tile data state, which Linux hands out only
 * on request (arch_prctl ARCH_REQ_XCOMP_PERM, since 5.16; the permission holds
 * for every thread of the process). */
static int amx_usable(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22))) return 0;
  return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
}

int lens_gemm_cpu_isa(void) {
  if (cpu_isa < 0) {
    __builtin_cpu_init();
    int f = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl");
    int b = f && __builtin_cpu_supports("avx512bf16");
    cpu_isa = b && amx_usable() ? LENS_ISA_AMX : b ? LENS_ISA_AVX512_BF16 : f ? LENS_ISA_AVX512 : LENS_ISA_BLAS;
  }
  return cpu_isa;
}

int lens_gemm_set_max_isa(int isa) {
  int old = max_isa;
  max_isa = isa;
  return old;
}

static int effective_isa(void) {
  int c = lens_gemm_cpu_isa();
  return c < max_isa ? c : max_isa;
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* ---- packing W_U (once) ---- */

void lens_gemm_pack(lens_gemm_wu *w, const float *W_U, int V, int d, int prec) {
  memset(w, 0, sizeof *w);
  w->V = V, w->d = d, w->W_U = W_U;
  w->isa = effective_isa();
  w->prec = prec;
  if (prec == LENS_PREC_BF16 && w->isa < LENS_ISA_AVX512_BF16) {
    static int warned = 0;
    if (!warned)
      tl_warn("lens: bf16 GEMMs need a CPU with AVX-512 BF16; running them in fp32 instead"), warned = 1;
    w->prec = LENS_PREC_FP32;
  }
  if (w->isa == LENS_ISA_BLAS) return; /* cblas_sgemm on W_U itself */
  const int np = ceil_div(V, NR);
  if (w->prec == LENS_PREC_FP32) {
    /* p1[j][k][c] = W_U[j*64 + c][k] */
    w->p1 = tl_aligned_alloc((size_t)np * d * NR * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int j = 0; j < np; j++)
      for (int k = 0; k < d; k++)
        for (int c = 0; c < NR; c++) {
          int v = j * NR + c;
          w->p1[((size_t)j * d + k) * NR + c] = v < V ? W_U[(size_t)v * d + k] : 0.0f;
        }
    return;
  }
  /* p1b[j][k2][c][e] = W_U[j*64 + c][2*k2 + e] */
  const int d2 = ceil_div(d, 2), V2 = ceil_div(V, 2), npd = ceil_div(d, NR);
  w->p1b = tl_aligned_alloc((size_t)np * d2 * NR * 2 * sizeof(uint16_t));
#pragma omp parallel for schedule(static)
  for (int j = 0; j < np; j++)
    for (int k2 = 0; k2 < d2; k2++)
      for (int c = 0; c < NR; c++)
        for (int e = 0; e < 2; e++) {
          int v = j * NR + c, k = 2 * k2 + e;
          w->p1b[(((size_t)j * d2 + k2) * NR + c) * 2 + e] =
              v < V && k < d ? tl_f32_to_bf16(W_U[(size_t)v * d + k]) : 0;
        }
  /* p2b[j][v2][c][e] = W_U[2*v2 + e][j*64 + c] */
  w->p2b = tl_aligned_alloc((size_t)npd * V2 * NR * 2 * sizeof(uint16_t));
#pragma omp parallel for schedule(static)
  for (int v2 = 0; v2 < V2; v2++)
    for (int j = 0; j < npd; j++)
      for (int c = 0; c < NR; c++)
        for (int e = 0; e < 2; e++) {
          int v = 2 * v2 + e, n = j * NR + c;
          w->p2b[(((size_t)j * V2 + v2) * NR + c) * 2 + e] =
              v < V && n < d ? tl_f32_to_bf16(W_U[(size_t)v * d + n]) : 0;
        }
}

void lens_gemm_free(lens_gemm_wu *w) {
  free(w->p1), free(w->p1b), free(w->p2b);
  memset(w, 0, sizeof *w);
}

size_t lens_gemm_scratch_bytes(const lens_gemm_wu *w, int M) {
  if (w->prec != LENS_PREC_BF16) return 0;
  return (size_t)M * lens_gemm_bf16_row(w->d) * sizeof(uint16_t);
}

/* ---- fallback: cblas_sgemm, one block per OpenMP thread ---- */

/* OpenBLAS runs single-threaded inside our parallel regions: two thread pools
 * on the same cores would only contend. */
static void blas_single_thread(void) {
  static int done = 0;
  if (!done) openblas_set_num_threads(1), done = 1;
}

static void blas_logits(const lens_gemm_wu *w, const float *x, int M, const float *bias, float *z) {
  const int V = w->V, d = w->d;
  blas_single_thread();
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int n0 = (int)((int64_t)V * t / nt), n1 = (int)((int64_t)V * (t + 1) / nt);
    if (n0 < n1) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n1 - n0, d, 1.0f, x, d, w->W_U + (size_t)n0 * d, d,
                  0.0f, z + n0, V);
      if (bias)
        for (int r = 0; r < M; r++)
          for (int v = n0; v < n1; v++) z[(size_t)r * V + v] += bias[v];
    }
  }
}

void lens_sgemm_cols(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
  const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  blas_single_thread();
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int per = (ceil_div(N, nt) + 15) / 16 * 16; /* whole vectors per thread */
    int n0 = t * per, n1 = n0 + per < N ? n0 + per : N;
    if (n0 < n1)
      cblas_sgemm(CblasRowMajor, ta, tb, M, n1 - n0, K, 1.0f, A, lda, trans_b ? B + (size_t)n0 * ldb : B + n0, ldb,
                  beta, C + n0, ldc);
  }
}

static void blas_backward(const lens_gemm_wu *w, const float *dz, int M, float *dx) {
  const int V = w->V, d = w->d;
  blas_single_thread();
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int m0 = M * t / nt, m1 = M * (t + 1) / nt;
    if (m0 < m1)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, d, V, 1.0f, dz + (size_t)m0 * V, V, w->W_U, d,
                  0.0f, dx + (size_t)m0 * d, d);
  }
}

/* ---- AVX-512 tiles ---- */

/* Lane masks of the four 16-float vectors of a tile with nn <= 64 valid columns. */
static void col_masks(int nn, __mmask16 m[4]) {
  for (int j = 0; j < 4; j++) {
    int k = nn - 16 * j;
    m[j] = k >= 16 ? 0xFFFF : k <= 0 ? 0 : (__mmask16)((1u << k) - 1);
  }
}

/* The accumulators of a tile: bias (masked to the valid columns) or zero. */
static inline __attribute__((always_inline)) AVX512 void tile_begin(__m512 acc[MR][4], const int mr,
                                                                     const __mmask16 *m, const float *bias) {
#pragma GCC unroll 6
  for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
      acc[i][j] = bias ? _mm512_maskz_loadu_ps(m[j], bias + 16 * j) : _mm512_setzero_ps();
}

/* C[mr, 64] = acc (+ C when add_c), the masked columns neither read nor written. */
static inline __attribute__((always_inline)) AVX512 void tile_end(__m512 acc[MR][4], const int mr, float *c, int ldc,
                                                                   const __mmask16 *m, int add_c) {
#pragma GCC unroll 6
  for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      float *cij = c + (size_t)i * ldc + 16 * j;
      _mm512_mask_storeu_ps(cij, m[j], add_c ? _mm512_add_ps(acc[i][j], _mm512_maskz_loadu_ps(m[j], cij)) : acc[i][j]);
    }
}

/* C[mr, 64] = (add_c ? C : 0) + (bias or 0) + A[mr, K] B[K, 64]; A row-major (lda),
 * B packed [K][64] and 64-byte aligned; masked columns are neither read nor written. */
static inline __attribute__((always_inline)) AVX512 void tile_f32(const int mr, int K, const float *a, int lda,
                                                                   const float *b, float *c, int ldc,
                                                                   const __mmask16 *m, int add_c,
                                                                   const float *bias) {
  __m512 acc[MR][4];
  tile_begin(acc, mr, m, bias);
  for (int k = 0; k < K; k++) {
    const float *bk = b + (size_t)k * NR;
    __m512 b0 = _mm512_load_ps(bk), b1 = _mm512_load_ps(bk + 16), b2 = _mm512_load_ps(bk + 32),
           b3 = _mm512_load_ps(bk + 48);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
      __m512 ai = _mm512_set1_ps(a[(size_t)i * lda + k]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(ai, b2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(ai, b3, acc[i][3]);
    }
  }
  tile_end(acc, mr, c, ldc, m, add_c);
}

/* The same with bf16 inputs: K2 pairs; A rows of bf16 (lda even, in elements),
 * B packed [K2][64][2]. */
static inline __attribute__((always_inline)) AVX512 void tile_bf16(const int mr, int K2, const uint16_t *a, int lda,
                                                                    const uint16_t *b, float *c, int ldc,
                                                                    const __mmask16 *m, int add_c,
                                                                    const float *bias) {
  __m512 acc[MR][4];
  tile_begin(acc, mr, m, bias);
  for (int k = 0; k < K2; k++) {
    const uint16_t *bk = b + (size_t)k * NR * 2;
    __m512bh b0 = (__m512bh)_mm512_load_si512(bk), b1 = (__m512bh)_mm512_load_si512(bk + 32),
             b2 = (__m512bh)_mm512_load_si512(bk + 64), b3 = (__m512bh)_mm512_load_si512(bk + 96);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
      int32_t pair;
      memcpy(&pair, a + (size_t)i * lda + 2 * k, sizeof pair);
      __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], ai, b2);
      acc[i][3] = _mm512_dpbf16_ps(acc[i][3], ai, b3);
    }
  }
  tile_end(acc, mr, c, ldc, m, add_c);
}

/* One instance of a tile per row count, so the tiles keep their accumulators in
 * registers: calls tile(R, ...) with R = mr (1..MR) a compile-time constant. */
#define TILE_ROWS(tile, mr, ...)                \
  switch (mr) {                                 \
  case 6: tile(6, __VA_ARGS__); break;          \
  case 5: tile(5, __VA_ARGS__); break;          \
  case 4: tile(4, __VA_ARGS__); break;          \
  case 3: tile(3, __VA_ARGS__); break;          \
  case 2: tile(2, __VA_ARGS__); break;          \
  default: tile(1, __VA_ARGS__); break;         \
  }

AVX512 static void tile_f32_any(int mr, int K, const float *a, int lda, const float *b, float *c, int ldc,
                                const __mmask16 *m, int add_c, const float *bias) {
  TILE_ROWS(tile_f32, mr, K, a, lda, b, c, ldc, m, add_c, bias)
}

AVX512 static void tile_bf16_any(int mr, int K2, const uint16_t *a, int lda, const uint16_t *b, float *c, int ldc,
                                 const __mmask16 *m, int add_c, const float *bias) {
  TILE_ROWS(tile_bf16, mr, K2, a, lda, b, c, ldc, m, add_c, bias)
}

/* dst[0..n2) = bf16(src[0..n)) rounded to nearest even, n2 = n rounded up to
 * even, the pad zero. */
AVX512 static void row_to_bf16(const float *src, int n, uint16_t *dst) {
  const int n2 = n + (n & 1);
  for (int i = 0; i < n2; i += 32) {
    int k0 = n - i, k1 = n - i - 16;
    __mmask16 m0 = k0 >= 16 ? 0xFFFF : k0 <= 0 ? 0 : (__mmask16)((1u << k0) - 1);
    __mmask16 m1 = k1 >= 16 ? 0xFFFF : k1 <= 0 ? 0 : (__mmask16)((1u << k1) - 1);
    __m512 lo = _mm512_maskz_loadu_ps(m0, src + i), hi = _mm512_maskz_loadu_ps(m1, src + i + 16);
    __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    int ks = n2 - i;
    __mmask32 ms = ks >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << ks) - 1);
    _mm512_mask_storeu_epi16(dst + i, ms, v);
  }
}

/* ---- AVX-512 products, per thread ---- */

/* z[rows m_first..M, panels j0..j1) of the logits, at w's precision: x is the
 * normalised rows (fp32) or their bf16 copy (rows of 2*ceil(d/2)). */
AVX512 static void logits_range(const lens_gemm_wu *w, const void *x, int m_first, int M, const float *bias, float *z,
                                int j0, int j1) {
  const int V = w->V, bf = w->prec == LENS_PREC_BF16;
  const int K = bf ? ceil_div(w->d, 2) : w->d; /* steps along d: pairs of it for bf16 */
  const int lda = bf ? 2 * K : w->d;
  for (int j = j0; j < j1; j++) {
    const int n0 = j * NR;
    __mmask16 m[4];
    col_masks(V - n0 < NR ? V - n0 : NR, m);
    for (int k0 = 0; k0 < K; k0 += KB1) { /* bf16: KB1 pairs, the same 32 KB of B as fp32 */
      const int kb = K - k0 < KB1 ? K - k0 : KB1;
      const float *bk = k0 == 0 && bias ? bias + n0 : NULL;
      for (int m0 = m_first; m0 < M; m0 += MR) {
        const int mr = M - m0 < MR ? M - m0 : MR;
        float *c = z + (size_t)m0 * V + n0;
        if (bf)
          tile_bf16_any(mr, kb, (const uint16_t *)x + (size_t)m0 * lda + 2 * k0, lda,
                        w->p1b + ((size_t)j * K + k0) * NR * 2, c, V, m, k0 > 0, bk);
        else
          tile_f32_any(mr, kb, (const float *)x + (size_t)m0 * lda + k0, lda, w->p1 + ((size_t)j * K + k0) * NR, c,
                       V, m, k0 > 0, bk);
      }
    }
  }
}

/* C[rows m_first..M, d] += dz[:, k0..k0+kb) W_U[k0..k0+kb, :], kb <= KB2: a block
 * along the vocabulary (pairs of it for bf16, from dzb rows of 2*ceil(V/2)). fp32
 * first copies the block of W_U into buf (KB2 * ceil(d/64) * 64 floats) as panels
 * [j][k][64]; bf16 reads the packed p2b. */
AVX512 static void backward_block(const lens_gemm_wu *w, const float *dz, const uint16_t *dzb, int m_first, int M,
                                  float *C, int k0, int kb, float *buf) {
  const int V = w->V, d = w->d, npd = ceil_div(d, NR), bf = w->prec == LENS_PREC_BF16, V2 = ceil_div(V, 2);
  if (!bf) /* buf[j][k][c] = W_U[k0 + k][j*64 + c] */
    for (int j = 0; j < npd; j++) {
      const int nn = d - j * NR < NR ? d - j * NR : NR;
      for (int k = 0; k < kb; k++) {
        float *dst = buf + ((size_t)j * kb + k) * NR;
        memcpy(dst, w->W_U + (size_t)(k0 + k) * d + j * NR, (size_t)nn * sizeof(float));
        if (nn < NR) memset(dst + nn, 0, (size_t)(NR - nn) * sizeof(float));
      }
    }
  for (int j = 0; j < npd; j++) {
    __mmask16 m[4];
    col_masks(d - j * NR < NR ? d - j * NR : NR, m);
    for (int m0 = m_first; m0 < M; m0 += MR) {
      const int mr = M - m0 < MR ? M - m0 : MR;
      float *c = C + (size_t)m0 * d + j * NR;
      if (bf)
        tile_bf16_any(mr, kb, dzb + (size_t)m0 * 2 * V2 + 2 * k0, 2 * V2, w->p2b + ((size_t)j * V2 + k0) * NR * 2, c,
                      d, m, 1, NULL);
      else
        tile_f32_any(mr, kb, dz + (size_t)m0 * V + k0, V, buf + (size_t)j * kb * NR, c, d, m, 1, NULL);
    }
  }
}

void lens_gemm_to_bf16(const float *src, int n, uint16_t *dst) { row_to_bf16(src, n, dst); }

AVX512 static void rows_to_bf16(const float *src, int M, int n, uint16_t *dst) {
  const int n2 = n + (n & 1);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < M; r++) row_to_bf16(src + (size_t)r * n, n, dst + (size_t)r * n2);
}

/* ---- AMX (bf16 tiles) ----
 *
 * TDPBF16PS multiplies a 16 x 32 bf16 tile A (16 rows, 16 pairs along K) by a
 * 16 x 16-pair tile B whose rows are pairs of K and whose 16 columns hold their
 * two values side by side, accumulating a 16 x 16 fp32 tile C: exactly the
 * layout of the bf16 panels (64 columns x 2 values per pair of K, 256 bytes per
 * row), so a B tile is 16 of their rows read with a 256-byte stride. Blocks of
 * 32 rows x 32 columns use all eight tiles: C0..C3, A0..A1, B0..B1. Rows past
 * the last multiple of 32, and pairs of K past the last multiple of 16, go to
 * the AVX-512 bf16 tiles, which add into the same outputs. Needs d % 64 == 0
 * (whole panels and whole 16-pair steps along d); otherwise the AVX-512 kernels
 * run. Tiles are accumulated in fp32 like vdpbf16ps (AMX treats denormal inputs
 * as zero: a difference far below bf16's own rounding). */

typedef struct __attribute__((aligned(64))) {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_config;

/* Eight 16 x 64-byte tiles. A static table, not a local: ldtilecfg faults on a
 * configuration the compiler has placed in the red zone below the stack pointer. */
static const amx_config amx_tiles = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

AMX static void amx_begin(void) { _tile_loadconfig(&amx_tiles); }

static int amx_fits(const lens_gemm_wu *w) {
  return w->prec == LENS_PREC_BF16 && w->isa >= LENS_ISA_AMX && w->d % 64 == 0;
}

const char *lens_gemm_kernels(const lens_gemm_wu *w) {
  if (w->isa == LENS_ISA_BLAS) return "openblas";
  if (w->prec != LENS_PREC_BF16) return "avx512-fp32";
  return amx_fits(w) ? "amx-bf16" : "avx512-bf16";
}

/* One 32 x 32 block: C (ldc floats) (+)= A[32, 2*k2n bf16] B; a rows lda elements
 * apart, b a B panel column offset (rows 256 bytes apart). init: 0 zero, 1 load
 * C, 2 broadcast bias (c_init) to every row. */
#define AMX_BLOCK(a, lda, b, k2n, c, ldc, init, c_init)                                                          \
  do {                                                                                                         \
    if ((init) == 1) {                                                                                         \
      _tile_loadd(0, (c), (ldc) * 4);                                                                          \
      _tile_loadd(1, (c) + 16, (ldc) * 4);                                                                     \
      _tile_loadd(2, (c) + (size_t)16 * (ldc), (ldc) * 4);                                                     \
      _tile_loadd(3, (c) + (size_t)16 * (ldc) + 16, (ldc) * 4);                                                \
    } else if ((init) == 2) {                                                                                  \
      _tile_loadd(0, (c_init), 0);                                                                             \
      _tile_loadd(1, (c_init) + 16, 0);                                                                        \
      _tile_loadd(2, (c_init), 0);                                                                             \
      _tile_loadd(3, (c_init) + 16, 0);                                                                        \
    } else {                                                                                                   \
      _tile_zero(0);                                                                                           \
      _tile_zero(1);                                                                                           \
      _tile_zero(2);                                                                                           \
      _tile_zero(3);                                                                                           \
    }                                                                                                          \
    for (int k2 = 0; k2 < (k2n); k2 += 16) {                                                                   \
      _tile_loadd(4, (a) + 2 * k2, (lda) * 2);                                                                 \
      _tile_loadd(5, (a) + (size_t)16 * (lda) + 2 * k2, (lda) * 2);                                            \
      _tile_loadd(6, (b) + (size_t)k2 * NR * 2, NR * 4);                                                       \
      _tile_loadd(7, (b) + (size_t)k2 * NR * 2 + 32, NR * 4);                                                  \
      _tile_dpbf16ps(0, 4, 6);                                                                                 \
      _tile_dpbf16ps(1, 4, 7);                                                                                 \
      _tile_dpbf16ps(2, 5, 6);                                                                                 \
      _tile_dpbf16ps(3, 5, 7);                                                                                 \
    }                                                                                                          \
    _tile_stored(0, (c), (ldc) * 4);                                                                           \
    _tile_stored(1, (c) + 16, (ldc) * 4);                                                                      \
    _tile_stored(2, (c) + (size_t)16 * (ldc), (ldc) * 4);                                                      \
    _tile_stored(3, (c) + (size_t)16 * (ldc) + 16, (ldc) * 4);                                                 \
  } while (0)

/* Logits panels j0..j1 with AMX; a panel reaching past V, and rows past the
 * last multiple of 32, through the AVX-512 tiles. */
AMX static void logits_amx_range(const lens_gemm_wu *w, const uint16_t *xb, int M, const float *bias, float *z, int j0,
                                 int j1) {
  const int V = w->V, d2 = w->d / 2, lda = d2 * 2, M32 = M / 32 * 32;
  amx_begin();
  for (int j = j0; j < j1; j++) {
    const int n0 = j * NR;
    const uint16_t *bp = w->p1b + (size_t)j * d2 * NR * 2;
    if (n0 + NR > V) { /* the ragged last panel */
      logits_range(w, xb, 0, M, bias, z, j, j + 1);
      continue;
    }
    for (int m0 = 0; m0 < M32; m0 += 32)
      for (int h = 0; h < NR; h += 32) {
        float *c = z + (size_t)m0 * V + n0 + h;
        const uint16_t *a = xb + (size_t)m0 * lda, *b = bp + (size_t)h * 2;
        if (bias) AMX_BLOCK(a, lda, b, d2, c, V, 2, bias + n0 + h);
        else AMX_BLOCK(a, lda, b, d2, c, V, 0, bias);
      }
    if (M32 < M) logits_range(w, xb, M32, M, bias, z, j, j + 1);
  }
  _tile_release();
}

/* C[M,d] += dz[:, pairs pb..pb+kb) W_U[...] with AMX (see backward_block): the
 * 32 x 32 blocks, then through backward_block the rows past the last block (every
 * pair) and the pairs past the last 16-pair step (the block rows). */
AMX static void backward_amx_block(const lens_gemm_wu *w, const uint16_t *dzb, int M, float *C, int pb, int kb) {
  const int d = w->d, V2 = ceil_div(w->V, 2), lda = 2 * V2, npd = d / NR, M32 = M / 32 * 32, kb16 = kb / 16 * 16;
  amx_begin();
  for (int j = 0; j < npd; j++) {
    const uint16_t *bp = w->p2b + ((size_t)j * V2 + pb) * NR * 2;
    for (int m0 = 0; m0 < M32 && kb16 > 0; m0 += 32)
      for (int h = 0; h < NR; h += 32) {
        float *c = C + (size_t)m0 * d + j * NR + h;
        const uint16_t *a = dzb + (size_t)m0 * lda + 2 * pb, *b = bp + (size_t)h * 2;
        AMX_BLOCK(a, lda, b, kb16, c, d, 1, c);
      }
  }
  _tile_release();
  if (M32 < M) backward_block(w, NULL, dzb, M32, M, C, pb, kb, NULL);
  if (kb16 < kb) backward_block(w, NULL, dzb, 0, M32, C, pb + kb16, kb - kb16, NULL);
}

/* ---- entry points ---- */

void lens_gemm_logits(const lens_gemm_wu *w, const float *x, int M, const float *bias, float *z, void *scratch) {
  if (M <= 0) return;
  if (w->isa == LENS_ISA_BLAS) {
    blas_logits(w, x, M, bias, z);
    return;
  }
  const int np = ceil_div(w->V, NR);
  if (w->prec == LENS_PREC_BF16) rows_to_bf16(x, M, w->d, scratch);
  /* groups of PANELS panels handed out on demand: on a shared machine one
   * thread may run slower than the other */
#pragma omp parallel for schedule(dynamic, 1)
  for (int j = 0; j < np; j += PANELS) {
    int j1 = j + PANELS < np ? j + PANELS : np;
    if (amx_fits(w))
      logits_amx_range(w, scratch, M, bias, z, j, j1);
    else
      logits_range(w, w->prec == LENS_PREC_BF16 ? scratch : (const void *)x, 0, M, bias, z, j, j1);
  }
}

void lens_gemm_backward(const lens_gemm_wu *w, const float *dz, const uint16_t *dzb, int M, float *dx) {
  if (M <= 0) return;
  if (w->isa == LENS_ISA_BLAS) {
    blas_backward(w, dz, M, dx);
    return;
  }
  const int d = w->d, bf = w->prec == LENS_PREC_BF16;
  const int K = bf ? ceil_div(w->V, 2) : w->V; /* in pairs for bf16 */
  /* K is cut into a fixed number of slices, each summed in order into its own
   * [M,d] partial (slice 0 into dx), and the partials are added in slice order:
   * the result does not depend on which thread took which slice, nor on the
   * number of threads (training runs are reproducible bit for bit), while the
   * slices are still handed out on demand (one core may run slower on a
   * shared machine). */
  const int nblocks = ceil_div(K, KB2), nslices = nblocks < SLICES ? nblocks : SLICES;
  const int64_t n = (int64_t)M * d;
  float *part = nslices > 1 ? tl_aligned_alloc((size_t)(nslices - 1) * n * sizeof(float)) : NULL;
#pragma omp parallel
  {
    float *buf = bf ? NULL : tl_aligned_alloc((size_t)KB2 * ceil_div(d, NR) * NR * sizeof(float));
#pragma omp for schedule(dynamic, 1)
    for (int sl = 0; sl < nslices; sl++) {
      float *C = sl == 0 ? dx : part + (size_t)(sl - 1) * n;
      memset(C, 0, (size_t)n * sizeof(float));
      const int b0 = (int)((int64_t)nblocks * sl / nslices), b1 = (int)((int64_t)nblocks * (sl + 1) / nslices);
      for (int b = b0; b < b1; b++) {
        const int k0 = b * KB2, kb = K - k0 < KB2 ? K - k0 : KB2;
        if (amx_fits(w))
          backward_amx_block(w, dzb, M, C, k0, kb);
        else
          backward_block(w, dz, dzb, 0, M, C, k0, kb, buf);
      }
    }
    free(buf);
  }
  if (nslices > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float s = dx[i];
      for (int sl = 1; sl < nslices; sl++) s += part[(size_t)(sl - 1) * n + i];
      dx[i] = s;
    }
  }
  free(part);
}
