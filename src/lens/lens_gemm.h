/* The two large products of the lens step with the frozen unembedding W_U [V,d]
 * (internal to src/lens):
 *
 *   logits:   z[M,V]  = x[M,d] W_U^T (+ b_U)      (M = rows of a chunk, K = d)
 *   backward: dx[M,d] = dz[M,V] W_U               (K = V)
 *
 * W_U is frozen, so it is repacked ONCE into the layout the kernels stream
 * (lens_gemm_pack) and the packed copy lives as long as the caller wants.
 * Kernels are chosen at run time from what the CPU supports:
 *   - AVX-512F: fp32 register-blocked kernels (6 rows x 64 columns per tile);
 *   - AVX-512 BF16 (opt-in): bf16 inputs with fp32 accumulation (vdpbf16ps);
 *   - AMX-BF16 (the bf16 path, where the CPU and kernel allow it): the same
 *     products on the tile unit, several times the vdpbf16ps rate;
 *   - otherwise: cblas_sgemm on the unpacked W_U.
 * The functions are compiled for AVX-512 through target attributes, so the
 * build flags of the project stay as they are. */
#ifndef TLENS_LENS_GEMM_H
#define TLENS_LENS_GEMM_H

#include <stddef.h>
#include <stdint.h>

enum { LENS_ISA_BLAS = 0, LENS_ISA_AVX512 = 1, LENS_ISA_AVX512_BF16 = 2, LENS_ISA_AMX = 3 };
enum { LENS_PREC_FP32 = 0, LENS_PREC_BF16 = 1 }; /* same values as TL_LENS_GEMM_* */

/* What this CPU supports (detected once). */
int lens_gemm_cpu_isa(void);
/* Caps the kernels used from now on at isa (<= the CPU's); for tests and the
 * benchmark, to run the slower paths on a fast CPU. Returns the previous cap. */
int lens_gemm_set_max_isa(int isa);

typedef struct {
  int V, d;
  int prec;         /* precision the kernels run at (bf16 only where supported) */
  int isa;          /* kernels it was packed for */
  const float *W_U; /* [V,d], not owned: the fallback and the fp32 backward read it */
  float *p1;        /* fp32 logits panels [ceil(V/64)][d][64], zero-padded */
  uint16_t *p1b;    /* bf16 logits panels [ceil(V/64)][ceil(d/2)][64][2] */
  uint16_t *p2b;    /* bf16 backward panels [ceil(d/64)][ceil(V/2)][64][2] */
} lens_gemm_wu;

/* The kernels w runs on: "openblas", "avx512-fp32", "avx512-bf16" or "amx-bf16". */
const char *lens_gemm_kernels(const lens_gemm_wu *w);

/* Packs W_U for precision prec (LENS_PREC_*). A bf16 request on a CPU without
 * AVX-512 BF16 falls back to fp32 with one warning per process. */
void lens_gemm_pack(lens_gemm_wu *w, const float *W_U, int V, int d, int prec);
void lens_gemm_free(lens_gemm_wu *w);
/* Bytes of scratch lens_gemm_logits needs for M rows (0 for fp32). */
size_t lens_gemm_scratch_bytes(const lens_gemm_wu *w, int M);
/* Row length of the bf16 copy of dz: V rounded up to even (pairs). */
static inline int lens_gemm_bf16_row(int n) { return n + (n & 1); }

/* z[M,V] = x[M,d] W_U^T + bias (bias [V] or NULL). scratch: lens_gemm_scratch_bytes. */
void lens_gemm_logits(const lens_gemm_wu *w, const float *x, int M, const float *bias, float *z, void *scratch);
/* dx[M,d] = dz[M,V] W_U. fp32 reads dz; bf16 reads dzb instead: rows of
 * lens_gemm_bf16_row(V) filled by lens_gemm_to_bf16 (the caller converts each
 * row while it is still in cache). */
void lens_gemm_backward(const lens_gemm_wu *w, const float *dz, const uint16_t *dzb, int M, float *dx);
/* dst[0..n2) = bf16(src[0..n)), round to nearest even, n2 = lens_gemm_bf16_row(n),
 * the pad zero. Only on CPUs with AVX-512 BF16 (a bf16-packed lens_gemm_wu). */
void lens_gemm_to_bf16(const float *src, int n, uint16_t *dst);

/* C[M,N] = op(A)[M,K] op(B)[K,N] + beta C (row-major) through OpenBLAS, the N
 * columns split over the OpenMP threads, each call single-threaded: for the
 * small translator products of the step. */
void lens_sgemm_cols(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

#endif
