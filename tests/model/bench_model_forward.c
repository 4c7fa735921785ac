/* Forward-pass benchmark: a pythia-70m-shaped synthetic gpt_neox (d 512, 6 layers,
 * 8 heads, d_ff 2048, V 50304), batch 1 x T 512, 2 threads, hidden states and
 * logits produced. Prints seconds per forward, tokens/s, and this machine's
 * measured sgemm peak for comparison (PyTorch takes 1.8-2.1 s per forward here). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/model.h"

static double sgemm_peak(int n, int reps, const tl_backend *be) {
  float *a = tl_aligned_alloc(sizeof(float) * n * n), *b = tl_aligned_alloc(sizeof(float) * n * n),
        *c = tl_aligned_alloc(sizeof(float) * n * n);
  for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
  double best = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = tl_now();
    be->gemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double g = 2.0 * n * n * n / (tl_now() - t0) / 1e9;
    best = g > best ? g : best;
  }
  free(a), free(b), free(c);
  return best;
}

/* A backend that forwards to the CPU one and accumulates the time of each op kind,
 * to show where a forward pass spends its time. */
static const tl_backend *cpu;
static double t_linear, t_attn, t_norm, t_act, t_other;
static int w_linear(float *y, const float *x, const float *W, const float *b, int M, int N, int K, int acc) {
  double t0 = tl_now();
  int rc = cpu->linear(y, x, W, b, M, N, K, acc);
  t_linear += tl_now() - t0;
  return rc;
}
static int w_attention(float *out, const float *qkv, int B, int T, int H, int KV, int hd, float scale, int win) {
  double t0 = tl_now();
  int rc = cpu->attention(out, qkv, B, T, H, KV, hd, scale, win);
  t_attn += tl_now() - t0;
  return rc;
}
static int w_layernorm(float *y, const float *x, const float *w, const float *b, int rows, int d, float eps) {
  double t0 = tl_now();
  int rc = cpu->layernorm(y, x, w, b, rows, d, eps);
  t_norm += tl_now() - t0;
  return rc;
}
static int w_act(float *x, size_t n, tl_act kind) {
  double t0 = tl_now();
  int rc = cpu->act(x, n, kind);
  t_act += tl_now() - t0;
  return rc;
}
static int w_rope(float *x, int B, int T, int rs, int nh, int hd, int rot, float theta) {
  double t0 = tl_now();
  int rc = cpu->rope(x, B, T, rs, nh, hd, rot, theta);
  t_other += tl_now() - t0;
  return rc;
}

static int count_hidden(void *ctx, int index, const float *h, int B, int T, int d) {
  (void)h, (void)B, (void)T, (void)d;
  ++*(int *)ctx;
  (void)index;
  return 0;
}

int main(void) {
  const int threads = 2, T = 512, reps = 5;
  tl_backend_cpu_set_threads(threads);
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char *dir = tl_sprintf("%s/tlens_bench_forward_%d", tmp, (int)getpid());
  tl_synth_opts o = {.arch = "gpt_neox", .layers = 6, .hidden = 512, .heads = 8, .intermediate = 2048,
                     .vocab = 50304, .seq = 2048, .seed = 1, .dtype = TL_F16};
  tl_model *m = NULL;
  if (tl_model_synth(&o, dir) || tl_model_load(&m, dir)) {
    fprintf(stderr, "bench: %s\n", tl_errmsg());
    return 1;
  }
  const tl_model_config *c = tl_model_cfg(m);
  int32_t *ids = malloc(sizeof(int32_t) * T);
  for (int i = 0; i < T; i++) ids[i] = (i * 7919) % c->vocab;
  float *logits = malloc(sizeof(float) * (size_t)T * c->vocab);
  int nh = 0;
  tl_model_forward_cb(m, ids, 1, T, count_hidden, &nh, logits); /* warm-up: scratch, thread pools */
  double best = 1e30, sum = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = tl_now();
    if (tl_model_forward_cb(m, ids, 1, T, count_hidden, &nh, logits)) {
      fprintf(stderr, "bench: %s\n", tl_errmsg());
      return 1;
    }
    double dt = tl_now() - t0;
    best = dt < best ? dt : best;
    sum += dt;
  }
  /* matmul FLOPs: 4 projections of d x d, 2 MLP of d x 4d per layer, unembedding, causal attention */
  double d = c->d_model, L = c->n_layers, V = c->vocab;
  double flops = 2.0 * T * (L * (4 * d * d + 2 * d * c->d_ff) + V * d) + L * 2.0 * T * T * d;
  /* the same forward once more with each op kind timed */
  tl_backend timed = *tl_backend_cpu();
  cpu = tl_backend_cpu();
  timed.linear = w_linear, timed.attention = w_attention, timed.layernorm = w_layernorm, timed.act = w_act;
  timed.rope = w_rope;
  tl_model_set_backend(m, &timed);
  double t0 = tl_now();
  tl_model_forward_cb(m, ids, 1, T, count_hidden, &nh, logits);
  double tt = tl_now() - t0;
  double peak = sgemm_peak(2048, 8, &timed);
  printf("model forward (pythia-70m shape: gpt_neox d %d, %d layers, %d heads, V %d), batch 1 x T %d, %d threads:\n",
         c->d_model, c->n_layers, c->n_heads, c->vocab, T, threads);
  printf("  %.3f s per forward (best of %d; mean %.3f s), %.0f tokens/s, %.1f GFLOP/s (%.1f GFLOP per forward)\n",
         best, reps, sum / reps, T / best, flops / best / 1e9, flops / 1e9);
  printf("  one timed forward %.3f s: linear (sgemm) %.3f, attention %.3f, norms %.3f, activation %.3f, rope %.3f, "
         "rest %.3f\n", tt, t_linear, t_attn, t_norm, t_act, t_other, tt - t_linear - t_attn - t_norm - t_act - t_other);
  printf("  sgemm peak on this machine (2048^3, %d threads): %.1f GFLOP/s\n", threads, peak);
  printf("  target: well under 0.6 s per forward (PyTorch: 1.8-2.1 s)\n");
  tl_model_free(m);
  char *f1 = tl_path_join(dir, "model.safetensors"), *f2 = tl_path_join(dir, "config.json");
  unlink(f1), unlink(f2), rmdir(dir);
  free(f1), free(f2), free(dir), free(ids), free(logits);
  return 0;
}
