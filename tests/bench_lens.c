/* Benchmark of one training micro-step on a pythia-70m-shaped model (gpt_neox,
 * d 512, 6 layers, V 50304, T 512, batch 1, fp32, 2 threads): the model forward
 * (hidden states + logits) and the fused lens forward/backward of all streams,
 * plus one optimizer step. Prints seconds per micro-step, peak RSS, and the lens
 * GEMM throughput against an sgemm peak measured in the same run.
 *
 * Targets: < 1 s per micro-step and < 0.5 GB peak RSS. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/optim.h"

static double peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

/* Peak RSS since the last reset_hwm() (Linux VmHWM), in MB; -1 if unavailable. */
static double hwm_mb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = atof(line + 6);
  if (f) fclose(f);
  return kb < 0 ? -1 : kb / 1024.0;
}

static void reset_hwm(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) fputs("5", f), fclose(f);
}

int main(int argc, char **argv) {
  const int threads = 2, L = 6, d = 512, V = 50304, T = 512, steps = 3;
  tl_backend_cpu_set_threads(threads);
  char dir[256];
  snprintf(dir, sizeof dir, "%s/tlens_bench_lens_%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  tl_synth_opts so = {"gpt_neox", L, d, 8, 0, 2048, V, 2048, 1234, TL_F32, 0};
  tl_model *m = NULL;
  if (tl_model_synth(&so, dir) || tl_model_load(&m, dir)) {
    fprintf(stderr, "bench_lens: %s\n", tl_errmsg());
    return 1;
  }
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_lens: could not remove %s\n", dir);
  tl_unembed u;
  tl_model_unembed(m, &u);
  double rss_load = peak_rss_mb();
  reset_hwm();

  int32_t *ids = malloc(T * sizeof(int32_t));
  for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919u + 13) % V);
  float *hidden = tl_aligned_alloc((size_t)(L + 1) * T * d * sizeof(float));
  float *logits = tl_aligned_alloc((size_t)T * V * sizeof(float));
  tl_lens lens;
  tl_lens_init(&lens, L, d);
  for (int64_t k = 0; k < lens.n_params; k++) lens.params[k] = 0.01f * (float)((k * 2654435761u) % 2001 - 1000) / 1000;
  float *grad = calloc((size_t)lens.n_params, sizeof(float));
  tl_opt_cfg oc = tl_opt_cfg_default();
  tl_optim opt;
  tl_optim_init(&opt, &oc, 0, lens.n_params);
  tl_lens_cfg cfg = tl_lens_cfg_default();
  float losses[6];

  double t_fwd = 0, t_lens = 0, t_opt = 0;
  for (int s = 0; s <= steps; s++) { /* step 0 warms up */
    double t0 = tl_now();
    if (tl_model_forward(m, ids, 1, T, hidden, logits)) {
      fprintf(stderr, "bench_lens: %s\n", tl_errmsg());
      return 1;
    }
    double t1 = tl_now();
    memset(grad, 0, (size_t)lens.n_params * sizeof(float));
    if (tl_lens_train_micro(&lens, &u, &cfg, hidden, logits, ids, 1, T, 1.0f, grad, losses)) {
      fprintf(stderr, "bench_lens: %s\n", tl_errmsg());
      return 1;
    }
    double t2 = tl_now();
    double norm = sqrt(tl_sumsq(grad, lens.n_params));
    tl_scale(grad, lens.n_params, tl_clip_coef(norm, 1.0));
    tl_lens_optim_step(&lens, &opt, grad, opt.lr);
    double t3 = tl_now();
    if (s > 0) t_fwd += t1 - t0, t_lens += t2 - t1, t_opt += t3 - t2;
  }
  t_fwd /= steps, t_lens /= steps, t_opt /= steps;
  double hwm = hwm_mb(), rss = peak_rss_mb();

  /* sgemm peak on the lens' own big shape: [chunk, d] x [d, V] */
  const int C = TL_LENS_CHUNK;
  float *z = tl_aligned_alloc((size_t)C * V * sizeof(float));
  double best = 0;
  for (int r = 0; r < 4; r++) {
    double t0 = tl_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, V, d, 1.0f, hidden, d, u.W_U, d, 0.0f, z, V);
    double gf = 2.0 * C * V * d / (tl_now() - t0) / 1e9;
    if (gf > best) best = gf;
  }
  const double lens_gflop = L * (2.0 * 2 * T * (double)V * d + 2.0 * 2 * T * (double)d * d) / 1e9;
  printf("bench_lens: pythia-70m shape (gpt_neox, d %d, %d layers, V %d), T %d, batch 1, fp32, %d threads, chunk %d\n",
         d, L, V, T, threads, C);
  printf("  micro-step: %.3f s  (model forward %.3f s + lens fwd/bwd %.3f s); optimizer step %.4f s\n",
         t_fwd + t_lens, t_fwd, t_lens, t_opt);
  printf("  lens: %.1f GFLOP per micro-step -> %.1f GFLOP/s; sgemm peak [%d,%d]x[%d,%d] %.1f GFLOP/s (%.0f%%)\n",
         lens_gflop, lens_gflop / t_lens, C, d, d, V, best, 100 * lens_gflop / t_lens / best);
  printf("  lens floor at that peak: %.3f s\n", lens_gflop / best);
  /* clear_refs resets both VmHWM and getrusage's maxrss, so the load peak was taken before */
  printf("  peak RSS: %.0f MB while training (getrusage %.0f MB since the reset); %.0f MB while loading the model\n",
         hwm, rss, rss_load);
  printf("  losses (stream 0..5):");
  for (int i = 0; i < L; i++) printf(" %.3f", losses[i]);
  printf("\n");
  free(z), free(hidden), free(logits), free(grad), free(ids);
  tl_optim_free(&opt);
  tl_lens_free(&lens);
  tl_model_free(m);
  (void)argc, (void)argv;
  return 0;
}
