/* Every op of the CUDA backend against the CPU backend on random inputs; every
 * op returns 0, and the sizes beyond the table's max_head_dim / max_rot_dim are
 * refused with a message. Shapes are chosen off the kernels' natural sizes (rows
 * not a multiple of the block, head_dim not a multiple of 32, padded leading
 * dimensions) so that tail handling is exercised. Exits 77 (skipped) without a
 * CUDA device. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "tl_test.h"
#include "tlens/backend.h"
#include "tlens/core.h"

static const tl_backend *cpu, *gpu;

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(float lo, float hi) { /* xorshift64*, uniform in [lo, hi) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545f4914f6cdd1dull;
  return lo + (hi - lo) * (float)((r >> 40) * (1.0 / 16777216.0));
}
static float *rand_vec(size_t n, float lo, float hi) {
  float *v = tl_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = frand(lo, hi);
  return v;
}
static float *dup(const float *h, size_t n) {
  float *c = tl_malloc(n * sizeof(float));
  memcpy(c, h, n * sizeof(float));
  return c;
}
static void *up(const void *h, size_t bytes) {
  void *d = gpu->alloc(bytes);
  CHECK(gpu->to_device(d, h, bytes) == 0);
  return d;
}
static float *down(const float *d, size_t n) {
  float *h = tl_malloc(n * sizeof(float));
  CHECKF(gpu->to_host(h, d, n * sizeof(float)) == 0, "to_host: %s", tl_errmsg());
  return h;
}
/* An op of both backends returned 0. */
#define BOTH_OK(cpu_call, gpu_call) CHECKF((cpu_call) == 0 && (gpu_call) == 0, "%s: %s", #gpu_call, tl_errmsg())
/* Copies the device result back and compares it with the CPU result. */
static void expect_close(const char *what, const float *dev, const float *ref, size_t n, double tol) {
  float *h = down(dev, n);
  double e = tl_test_maxerr(h, ref, (long)n);
  CHECKF(e <= tol, "%s: max error %.3g > %.3g", what, e, tol);
  free(h);
}

/* ---- ops ---- */

static void test_memory(void) {
  size_t n = 1001;
  float *a = rand_vec(n, -1, 1);
  float *d = up(a, n * sizeof(float)), *d2 = gpu->alloc(n * sizeof(float));
  CHECK(gpu->copy(d2, d, n) == 0);
  float *h = down(d2, n);
  CHECK(memcmp(h, a, n * sizeof(float)) == 0);
  void *z = gpu->alloc(0); /* zero bytes still yields a pointer that can be freed */
  CHECK(z != NULL);
  gpu->free(z);
  free(h);
  gpu->free(d);
  gpu->free(d2);
  free(a);
}

static void test_gemm(void) {
  const int M = 37, N = 53, K = 29;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      /* stored shapes: op(A) is MxK, op(B) is KxN; padded leading dimensions */
      int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
      int lda = ac + 3, ldb = bc + 5, ldc = N + 2;
      float *A = rand_vec((size_t)ar * lda, -1, 1), *B = rand_vec((size_t)br * ldb, -1, 1);
      float *C = rand_vec((size_t)M * ldc, -1, 1);
      float *dA = up(A, (size_t)ar * lda * 4), *dB = up(B, (size_t)br * ldb * 4), *dC = up(C, (size_t)M * ldc * 4);
      BOTH_OK(cpu->gemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, C, ldc),
              gpu->gemm(ta, tb, M, N, K, 0.7f, dA, lda, dB, ldb, 0.3f, dC, ldc));
      char what[64];
      snprintf(what, sizeof what, "gemm ta=%d tb=%d", ta, tb);
      expect_close(what, dC, C, (size_t)M * ldc, 1e-5);
      gpu->free(dA), gpu->free(dB), gpu->free(dC);
      free(A), free(B), free(C);
    }
}

static void test_linear(void) {
  const int M = 19, N = 70, K = 45;
  float *x = rand_vec((size_t)M * K, -1, 1), *W = rand_vec((size_t)N * K, -1, 1), *bias = rand_vec(N, -1, 1);
  float *dx = up(x, (size_t)M * K * 4), *dW = up(W, (size_t)N * K * 4), *db = up(bias, N * 4);
  for (int with_bias = 0; with_bias < 2; with_bias++)
    for (int acc = 0; acc < 2; acc++) {
      float *y = rand_vec((size_t)M * N, -1, 1);
      float *dy = up(y, (size_t)M * N * 4);
      BOTH_OK(cpu->linear(y, x, W, with_bias ? bias : NULL, M, N, K, acc),
              gpu->linear(dy, dx, dW, with_bias ? db : NULL, M, N, K, acc));
      char what[64];
      snprintf(what, sizeof what, "linear bias=%d accumulate=%d", with_bias, acc);
      expect_close(what, dy, y, (size_t)M * N, 1e-5);
      gpu->free(dy);
      free(y);
    }
  gpu->free(dx), gpu->free(dW), gpu->free(db);
  free(x), free(W), free(bias);
}

static void test_norms(void) {
  const int rows = 7, d = 300;
  /* An offset mean makes a one-pass variance visibly wrong. */
  float *x = rand_vec((size_t)rows * d, 49, 51), *w = rand_vec(d, 0.5f, 1.5f), *b = rand_vec(d, -1, 1);
  float *dx = up(x, (size_t)rows * d * 4), *dw = up(w, d * 4), *db = up(b, d * 4);
  float *y = tl_malloc((size_t)rows * d * 4), *dy = gpu->alloc((size_t)rows * d * 4);
  for (int with_b = 0; with_b < 2; with_b++) {
    BOTH_OK(cpu->layernorm(y, x, w, with_b ? b : NULL, rows, d, 1e-5f),
            gpu->layernorm(dy, dx, dw, with_b ? db : NULL, rows, d, 1e-5f));
    expect_close(with_b ? "layernorm" : "layernorm (no bias)", dy, y, (size_t)rows * d, 2e-4);
  }
  for (int add_one = 0; add_one < 2; add_one++) {
    BOTH_OK(cpu->rmsnorm(y, x, w, rows, d, 1e-6f, add_one), gpu->rmsnorm(dy, dx, dw, rows, d, 1e-6f, add_one));
    expect_close(add_one ? "rmsnorm (1 + w)" : "rmsnorm", dy, y, (size_t)rows * d, 1e-5);
  }
  /* in place, as the model may call it */
  BOTH_OK(cpu->layernorm(y, x, w, b, rows, d, 1e-5f), gpu->layernorm(dx, dx, dw, db, rows, d, 1e-5f));
  expect_close("layernorm in place", dx, y, (size_t)rows * d, 2e-4);
  gpu->free(dx), gpu->free(dw), gpu->free(db), gpu->free(dy);
  free(x), free(w), free(b), free(y);
}

static void test_embed(void) {
  const int vocab = 50, d = 33, n = 20;
  float *table = rand_vec((size_t)vocab * d, -1, 1);
  int32_t ids[20];
  for (int i = 0; i < n; i++) ids[i] = (int32_t)frand(0, vocab);
  ids[0] = vocab - 1;
  float *y = tl_malloc((size_t)n * d * 4);
  float *dt = up(table, (size_t)vocab * d * 4), *dy = gpu->alloc((size_t)n * d * 4);
  int32_t *dids = up(ids, sizeof ids);
  BOTH_OK(cpu->embed(y, table, ids, n, d), gpu->embed(dy, dt, dids, n, d));
  expect_close("embed", dy, y, (size_t)n * d, 0);
  gpu->free(dt), gpu->free(dy), gpu->free(dids);
  free(table), free(y);
}

static void test_rope(void) {
  const int B = 2, T = 17, H = 3, hd = 16, stride = (3 + 2 * 1) * 16 + 4;
  for (int rot = 8; rot <= hd; rot += 8) { /* partial then full rotary */
    float *x = rand_vec((size_t)B * T * stride, -1, 1);
    float *dx = up(x, (size_t)B * T * stride * 4);
    BOTH_OK(cpu->rope(x, B, T, stride, H, hd, rot, 10000.0f), gpu->rope(dx, B, T, stride, H, hd, rot, 10000.0f));
    expect_close(rot < hd ? "rope (partial)" : "rope", dx, x, (size_t)B * T * stride, 1e-5);
    /* given frequencies (host memory) and a position divisor: scaled RoPE */
    float inv[8];
    for (int i = 0; i < rot / 2; i++) inv[i] = 0.9f / (float)(1 + 3 * i);
    BOTH_OK(cpu->rope_freqs(x, B, T, stride, H, hd, rot, inv, 2.5f),
            gpu->rope_freqs(dx, B, T, stride, H, hd, rot, inv, 2.5f));
    expect_close("rope_freqs", dx, x, (size_t)B * T * stride, 1e-5);
    gpu->free(dx);
    free(x);
  }
}

static void test_attention(void) {
  struct {
    int B, T, H, KV, hd, window;
  } cases[] = {{2, 23, 4, 2, 40, 0}, {1, 31, 4, 4, 64, 5}, {2, 9, 2, 1, 128, 0}, {1, 70, 6, 2, 16, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int B = cases[c].B, T = cases[c].T, H = cases[c].H, KV = cases[c].KV, hd = cases[c].hd, win = cases[c].window;
    size_t nq = (size_t)B * T * (H + 2 * KV) * hd, no = (size_t)B * T * H * hd;
    float *qkv = rand_vec(nq, -2, 2), *out = tl_malloc(no * 4);
    float *dqkv = up(qkv, nq * 4), *dout = gpu->alloc(no * 4);
    float scale = 1.0f / sqrtf((float)hd);
    BOTH_OK(cpu->attention(out, qkv, B, T, H, KV, hd, scale, win),
            gpu->attention(dout, dqkv, B, T, H, KV, hd, scale, win));
    char what[96];
    snprintf(what, sizeof what, "attention B=%d T=%d H=%d KV=%d hd=%d window=%d", B, T, H, KV, hd, win);
    expect_close(what, dout, out, no, 2e-5);
    /* the same with ALiBi slopes (in device memory, as the model passes them) */
    float slopes[8];
    for (int h = 0; h < H; h++) slopes[h] = powf(2.0f, -8.0f * (h + 1) / H);
    float *dslopes = up(slopes, (size_t)H * 4);
    BOTH_OK(cpu->attention_alibi(out, qkv, B, T, H, KV, hd, scale, win, slopes),
            gpu->attention_alibi(dout, dqkv, B, T, H, KV, hd, scale, win, dslopes));
    snprintf(what, sizeof what, "attention_alibi B=%d T=%d H=%d KV=%d hd=%d window=%d", B, T, H, KV, hd, win);
    expect_close(what, dout, out, no, 2e-5);
    gpu->free(dslopes);
    gpu->free(dqkv), gpu->free(dout);
    free(qkv), free(out);
  }
}

static void test_elementwise(void) {
  const size_t n = 1000;
  const int rows = 5, d_ff = 77;
  static const char *names[] = {"gelu_new", "gelu", "silu", "relu"};
  for (int k = TL_ACT_GELU_NEW; k <= TL_ACT_RELU; k++) {
    float *x = rand_vec(n, -6, 6), *dx = up(x, n * 4);
    BOTH_OK(cpu->act(x, n, (tl_act)k), gpu->act(dx, n, (tl_act)k));
    char what[64];
    snprintf(what, sizeof what, "act %s", names[k]);
    expect_close(what, dx, x, n, 3e-6);
    float *gu = rand_vec((size_t)rows * 2 * d_ff, -4, 4), *o = tl_malloc((size_t)rows * d_ff * 4);
    float *dgu = up(gu, (size_t)rows * 2 * d_ff * 4), *dout = gpu->alloc((size_t)rows * d_ff * 4);
    BOTH_OK(cpu->glu(o, gu, rows, d_ff, (tl_act)k), gpu->glu(dout, dgu, rows, d_ff, (tl_act)k));
    snprintf(what, sizeof what, "glu %s", names[k]);
    expect_close(what, dout, o, (size_t)rows * d_ff, 3e-6);
    gpu->free(dx), gpu->free(dgu), gpu->free(dout);
    free(x), free(gu), free(o);
  }
  float *a = rand_vec(n, -1, 1), *b = rand_vec(n, -1, 1);
  float *da = up(a, n * 4), *db = up(b, n * 4);
  BOTH_OK(cpu->add(a, a, b, n), gpu->add(da, da, db, n)); /* aliased output, as the residual stream uses it */
  expect_close("add", da, a, n, 0);
  BOTH_OK(cpu->scale(a, n, 45.254834f), gpu->scale(da, n, 45.254834f)); /* gemma's sqrt(2048) */
  expect_close("scale", da, a, n, 0);
  gpu->free(da), gpu->free(db);
  free(a), free(b);
}

static void test_softmax_argmax(void) {
  const int rows = 6, n = 1000;
  float *x = rand_vec((size_t)rows * n, -8, 8);
  /* Ties: row 1 has its maximum twice (first must win), row 2 is constant. */
  x[1 * n + 10] = 20.0f, x[1 * n + 500] = 20.0f;
  for (int i = 0; i < n; i++) x[2 * n + i] = 3.0f;
  x[3 * n + n - 1] = 30.0f; /* maximum in the last column */
  float *dx = up(x, (size_t)rows * n * 4);
  int32_t want[6], got[6];
  BOTH_OK(cpu->argmax(want, x, rows, n), gpu->argmax(got, dx, rows, n));
  for (int r = 0; r < rows; r++) CHECKF(got[r] == want[r], "argmax row %d: %d, CPU says %d", r, got[r], want[r]);
  CHECK(got[1] == 10 && got[2] == 0 && got[3] == n - 1);
  float *y = dup(x, (size_t)rows * n);
  BOTH_OK(cpu->softmax(y, rows, n), gpu->softmax(dx, rows, n));
  expect_close("softmax", dx, y, (size_t)rows * n, 1e-6);
  gpu->free(dx);
  free(x), free(y);
}

/* ---- limits: the table states them, the ops refuse beyond them ---- */

static void test_limits(void) {
  CHECK(gpu->max_head_dim == 256 && gpu->max_rot_dim == 512);
  const int hd = gpu->max_head_dim + 1, B = 1, T = 2, H = 1;
  size_t nq = (size_t)B * T * 3 * H * hd;
  float *dqkv = gpu->alloc(nq * 4), *dout = gpu->alloc((size_t)B * T * H * hd * 4);
  CHECK(gpu->attention(dout, dqkv, B, T, H, H, hd, 1.0f, 0) == -1 && strstr(tl_errmsg(), "head_dim 257"));
  const int rot = gpu->max_rot_dim + 2;
  float *dx = gpu->alloc((size_t)B * T * rot * 4);
  CHECK(gpu->rope(dx, B, T, rot, 1, rot, rot, 10000.0f) == -1 && strstr(tl_errmsg(), "514"));
  CHECK(gpu->rope(dx, B, T, 8, 1, 8, 10, 10000.0f) == -1 && strstr(tl_errmsg(), "head_dim"));
  CHECK(gpu->attention(dout, dqkv, B, T, 3, 2, 16, 1.0f, 0) == -1 && strstr(tl_errmsg(), "key/value heads"));
  gpu->free(dqkv), gpu->free(dout), gpu->free(dx);
}

int main(void) {
  if (tl_cuda_device_count() == 0) {
    printf("test_cuda_ops: no CUDA device available, skipping\n");
    return 77;
  }
  cpu = tl_backend_cpu();
  gpu = tl_backend_cuda();
  if (!gpu) {
    fprintf(stderr, "test_cuda_ops: %s\n", tl_errmsg());
    return 1;
  }
  CHECK(gpu->device == TL_DEVICE_CUDA);
  test_memory();
  test_gemm();
  test_linear();
  test_norms();
  test_embed();
  test_rope();
  test_attention();
  test_elementwise();
  test_softmax_argmax();
  test_limits();
  return tl_test_finish("test_cuda_ops");
}
