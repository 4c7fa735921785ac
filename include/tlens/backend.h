/* Compute backends: the handful of fp32 ops a transformer forward pass needs,
 * behind one table of function pointers.
 *
 * Model code never loops over activation arrays itself; it asks a backend to do
 * it, and only ever holds pointers returned by be->alloc, which it passes back to
 * the ops. There are two backends with the same table: the CPU one (OpenBLAS
 * sgemm + OpenMP loops, always built in) and the CUDA one (cuBLAS + our kernels),
 * which lives in a module opened at run time (libtlens_cuda.so, see
 * tlens/cuda_module.h): tl_backend_get(TL_DEVICE_CUDA) loads it. The scalar
 * formulas both use are in tlens/rowmath.h.
 *
 * Conventions shared by every op:
 *  - all arrays are fp32, row-major, and live in the backend's memory
 *    (be->alloc / be->to_device / be->to_host move data in and out);
 *  - "rows" is the number of token positions (B*T), "d" a feature width;
 *  - a projection weight W is stored [out, in] like torch.nn.Linear, so
 *    linear() computes y = x @ W^T + bias;
 *  - every op except alloc and free returns 0, or -1 after tl_fail (tlens/core.h)
 *    with one line saying what failed: a size the backend cannot do (beyond
 *    max_head_dim / max_rot_dim, inconsistent head counts), or an error the device
 *    reported (CUDA, cuBLAS). The CUDA ops are asynchronous: an error of a kernel
 *    that already started may only be reported by a later op. Running out of
 *    memory in alloc is not an error but the end of the process (it aborts with
 *    the size asked for), as tl_malloc does on the host. */
#ifndef TLENS_BACKEND_H
#define TLENS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TL_DEVICE_CPU = 0, TL_DEVICE_CUDA = 1 } tl_device;

/* Elementwise activations, named as in Hugging Face configs. */
typedef enum {
  TL_ACT_GELU_NEW = 0, /* tanh approximation: gelu_new, gelu_fast, gelu_pytorch_tanh */
  TL_ACT_GELU,         /* exact, with erf */
  TL_ACT_SILU,         /* x * sigmoid(x), a.k.a. swish */
  TL_ACT_RELU,
} tl_act;

typedef struct tl_backend {
  const char *name;
  tl_device device;
  /* Shapes the ops support (0 = any). A model whose config exceeds them is
   * refused when it is given this backend, naming the config field; the ops
   * themselves refuse (tl_fail, -1) when called beyond them. */
  int max_head_dim; /* attention: head_dim */
  int max_rot_dim;  /* rope: rotary dimensions per head */

  /* ---- memory ---- */
  void *(*alloc)(size_t bytes); /* never NULL: aborts when the memory is exhausted */
  void (*free)(void *p);
  int (*to_device)(void *dst, const void *host_src, size_t bytes);
  int (*to_host)(void *host_dst, const void *src, size_t bytes);
  int (*copy)(float *dst, const float *src, size_t n); /* device to device, n floats */

  /* ---- dense algebra ---- */
  /* General row-major sgemm: C[M,N] = alpha * op(A) @ op(B) + beta * C. */
  int (*gemm)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
  /* y[M,N] = x[M,K] @ W[N,K]^T (+ bias[N] if non-NULL) (+ y when accumulate). */
  int (*linear)(float *y, const float *x, const float *W, const float *bias, int M, int N, int K,
                int accumulate);

  /* ---- normalisation ---- */
  /* y = (x - mean) / sqrt(var + eps) * w + b over each row of d (biased variance). */
  int (*layernorm)(float *y, const float *x, const float *w, const float *b, int rows, int d, float eps);
  /* y = x / sqrt(mean(x^2) + eps) * (add_one ? 1 + w : w). */
  int (*rmsnorm)(float *y, const float *x, const float *w, int rows, int d, float eps, int add_one);

  /* ---- embeddings and positions ---- */
  /* y[i,:] = table[ids[i],:] for i < n; ids already validated. */
  int (*embed)(float *y, const float *table, const int32_t *ids, int n, int d);
  /* Rotary position embedding, rotate-half form (HF Llama / GPT-NeoX), in place.
   * x has B*T rows of row_stride floats; heads [0, n_heads) of head_dim floats start
   * at x[row*row_stride + h*head_dim]. The first rot_dim (even) dims of each head are
   * rotated at position t = row % T with inv_freq[i] = theta^(-2i/rot_dim); the rest
   * pass through (partial rotary, GPT-NeoX rotary_pct). rot_dim <= head_dim. */
  int (*rope)(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim, float theta);
  /* The same with given frequencies (scaled RoPE): pair i of position t turns by the
   * angle ((float)t / pos_div) * inv_freq[i]. inv_freq: rot_dim/2 floats in HOST memory
   * (the one exception to the rule above: they travel as kernel arguments). rope() is
   * this with inv_freq[i] = theta^(-2i/rot_dim) and pos_div 1. */
  int (*rope_freqs)(float *x, int B, int T, int row_stride, int n_heads, int head_dim, int rot_dim,
                    const float *inv_freq, float pos_div);

  /* ---- attention ---- */
  /* Causal multi-head attention with grouped K/V heads (GQA; n_heads % n_kv_heads == 0).
   * qkv: B*T rows of (n_heads + 2*n_kv_heads)*head_dim floats: [q heads | k heads | v heads].
   * out: B*T rows of n_heads*head_dim. Query t sees keys t-window < s <= t (window 0 = all).
   * Scores are scaled by `scale` and softmaxed in fp32. */
  int (*attention)(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                   float scale, int window);
  /* The same with ALiBi (BLOOM): the score of query t and key s gains slopes[h] * (s - t),
   * slopes being n_heads floats in the backend's memory. (HF adds slopes[h] * s; the two
   * differ by a constant per query row, which the softmax removes.) */
  int (*attention_alibi)(float *out, const float *qkv, int B, int T, int n_heads, int n_kv_heads, int head_dim,
                         float scale, int window, const float *slopes);

  /* ---- elementwise ---- */
  int (*act)(float *x, size_t n, tl_act kind);
  /* Gated MLP (SwiGLU): gate_up has rows of 2*d_ff floats [gate | up];
   * out[r, i] = act(gate[r, i]) * up[r, i]. out may not alias gate_up. */
  int (*glu)(float *out, const float *gate_up, int rows, int d_ff, tl_act kind);
  int (*add)(float *y, const float *a, const float *b, size_t n); /* y = a + b (may alias) */
  int (*scale)(float *x, size_t n, float s);                      /* x *= s, in place */
  int (*softmax)(float *x, int rows, int n);                      /* in place, per row */
  /* Index of the largest of each row (first on ties): out[r] = argmax x[r, :]. */
  int (*argmax)(int32_t *out_host, const float *x, int rows, int n);
} tl_backend;

/* The CPU backend (always available). Its ops parallelise with OpenMP only: it sets
 * OpenBLAS to one thread (process-wide) and splits each sgemm over the OpenMP threads
 * itself, so two thread pools never compete for the cores. Code outside the model
 * that wants a threaded sgemm should call be->gemm rather than cblas_sgemm. */
const tl_backend *tl_backend_cpu(void);
/* Threads used by the CPU backend (OMP_NUM_THREADS by default); n <= 0 leaves the default. */
void tl_backend_cpu_set_threads(int n);
/* Backend for a device, or NULL (with tl_fail) if this build has none for it (CUDA:
 * the module is missing or cannot load, or no GPU is usable). */
const tl_backend *tl_backend_get(tl_device dev);

#endif
