/* Benchmark of one training micro-step on a pythia-70m-shaped model (gpt_neox,
 * d 512, 6 layers, V 50304, T 512, batch 1, 2 threads), as `tlens train` runs
 * it: the model forward (hidden states only) and the fused lens step of all
 * streams (which makes the model's final distribution from its last hidden
 * state, a chunk at a time, in fp32), plus one optimizer step, with the lens
 * GEMMs in fp32 and in bf16. Prints:
 *   - the two lens GEMM shapes ([256,512]x[512,V] and [256,V]x[V,512]) through
 *     OpenBLAS (as this build runs it: one single-threaded call per thread) and
 *     through our fp32 and bf16 kernels, in GFLOP/s (best of several runs);
 *   - per precision: seconds per micro-step, the lens' achieved GFLOP/s, the
 *     time left outside the two big GEMMs, and the peak RSS of the step.
 *
 * Targets: < 1 s per micro-step and < 0.5 GB peak RSS. The machine may be
 * shared: every timing is the best of several runs, and the load average is
 * printed with them. OpenMP threads wait passively (OMP_WAIT_POLICY=passive,
 * set by re-executing itself when unset): spinning waiters only steal the
 * cores from the thread that has work on a loaded machine. */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lens/lens_gemm.h"
#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/optim.h"

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

static double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f && fscanf(f, "%lf", &l) != 1) l = -1;
  if (f) fclose(f);
  return l;
}

enum { L = 6, D = 512, V = 50304, T = 512, C = TL_LENS_CHUNK, STEPS = 3, GEMM_RUNS = 5 };

/* OpenBLAS on the two shapes, split over the OpenMP threads like the CPU backend. */
static void blas_logits(const float *x, const float *W, float *z) {
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int n0 = V * t / nt, n1 = V * (t + 1) / nt;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, n1 - n0, D, 1.0f, x, D, W + (size_t)n0 * D, D, 0.0f,
                z + n0, V);
  }
}

static void blas_backward(const float *dz, const float *W, float *dx) {
#pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int m0 = C * t / nt, m1 = C * (t + 1) / nt;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, D, V, 1.0f, dz + (size_t)m0 * V, V, W, D, 0.0f,
                dx + (size_t)m0 * D, D);
  }
}

/* Best GFLOP/s of the logits and backward products for kind 0 = OpenBLAS,
 * 1 = our fp32 kernels, 2 = our bf16 AVX-512 kernels, 3 = our bf16 AMX kernels. */
static void gemm_rates(int kind, const float *W, const float *x, const float *dz, float *z, float *dx,
                       uint16_t *dzb, double *gf_logits, double *gf_back) {
  const double flop = 2.0 * C * V * D;
  lens_gemm_wu g;
  void *scratch = NULL;
  if (kind) {
    int old = lens_gemm_set_max_isa(kind == 2 ? LENS_ISA_AVX512_BF16 : LENS_ISA_AMX);
    lens_gemm_pack(&g, W, V, D, kind >= 2 ? LENS_PREC_BF16 : LENS_PREC_FP32);
    lens_gemm_set_max_isa(old);
    scratch = tl_aligned_alloc(lens_gemm_scratch_bytes(&g, C));
    if (g.prec == LENS_PREC_BF16)
      for (int r = 0; r < C; r++) lens_gemm_to_bf16(dz + (size_t)r * V, V, dzb + (size_t)r * lens_gemm_bf16_row(V));
  }
  *gf_logits = *gf_back = 0;
  for (int r = 0; r < GEMM_RUNS; r++) {
    double t0 = tl_now();
    if (kind)
      lens_gemm_logits(&g, x, C, NULL, z, scratch);
    else
      blas_logits(x, W, z);
    double t1 = tl_now();
    if (kind)
      lens_gemm_backward(&g, dz, dzb, C, dx);
    else
      blas_backward(dz, W, dx);
    double t2 = tl_now();
    if (flop / (t1 - t0) / 1e9 > *gf_logits) *gf_logits = flop / (t1 - t0) / 1e9;
    if (flop / (t2 - t1) / 1e9 > *gf_back) *gf_back = flop / (t2 - t1) / 1e9;
  }
  if (kind) lens_gemm_free(&g);
  free(scratch);
}

/* The machine's fp32 multiply-add peak on `threads` threads: twelve independent
 * AVX-512 FMA chains per thread (enough to cover the FMA latency on every
 * current core), best of five runs. The upper bound for any fp32 GEMM here. */
__attribute__((target("avx512f"))) static double fma_peak(int threads) {
  double best = 0;
  for (int run = 0; run < 5; run++) {
    const long iters = 4000000;
    float sink = 0;
    double t0 = tl_now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      /* different starting values, or the compiler merges the identical chains */
      const float s0 = (float)(omp_get_thread_num() + 1);
      __m512 a0 = _mm512_set1_ps(s0), a1 = _mm512_set1_ps(s0 + 1), a2 = _mm512_set1_ps(s0 + 2),
             a3 = _mm512_set1_ps(s0 + 3), a4 = _mm512_set1_ps(s0 + 4), a5 = _mm512_set1_ps(s0 + 5),
             a6 = _mm512_set1_ps(s0 + 6), a7 = _mm512_set1_ps(s0 + 7), a8 = _mm512_set1_ps(s0 + 8),
             a9 = _mm512_set1_ps(s0 + 9), a10 = _mm512_set1_ps(s0 + 10), a11 = _mm512_set1_ps(s0 + 11);
      const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
      for (long i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c), a1 = _mm512_fmadd_ps(a1, m, c), a2 = _mm512_fmadd_ps(a2, m, c);
        a3 = _mm512_fmadd_ps(a3, m, c), a4 = _mm512_fmadd_ps(a4, m, c), a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c), a7 = _mm512_fmadd_ps(a7, m, c), a8 = _mm512_fmadd_ps(a8, m, c);
        a9 = _mm512_fmadd_ps(a9, m, c), a10 = _mm512_fmadd_ps(a10, m, c), a11 = _mm512_fmadd_ps(a11, m, c);
      }
      __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                               _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
      t = _mm512_add_ps(t, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
      sink += _mm512_reduce_add_ps(t);
    }
    double dt = tl_now() - t0;
    double gf = 2.0 * 16 * 12 * (double)iters * threads / dt / 1e9;
    if (gf > best && sink != 0) best = gf;
  }
  return best;
}

typedef struct {
  double step, fwd, lens, opt, hwm;
  float losses[L];
  const char *kernels;
} step_times;

static int run_steps(tl_model *m, const tl_unembed *u, tl_lens_gemm_precision prec, const int32_t *ids,
                     float *hidden, step_times *st) {
  tl_lens lens;
  tl_lens_init(&lens, L, D);
  for (int64_t k = 0; k < lens.n_params; k++) lens.params[k] = 0.01f * (float)((k * 2654435761u) % 2001 - 1000) / 1000;
  float *grad = calloc((size_t)lens.n_params, sizeof(float));
  tl_opt_cfg oc = tl_opt_cfg_default();
  tl_optim opt;
  tl_optim_init(&opt, &oc, 0, lens.n_params);
  tl_lens_cfg cfg = tl_lens_cfg_default();
  cfg.gemm_precision = prec;
  cfg.final_hidden = hidden + (size_t)L * T * D;
  reset_hwm();
  if (tl_lens_prepare(u, prec, &cfg.ws)) return -1; /* once per run, as training does */
  memset(st, 0, sizeof *st);
  st->step = st->fwd = st->lens = st->opt = 1e30;
  for (int s = 0; s <= STEPS; s++) { /* step 0 warms up; then the best of STEPS */
    double t0 = tl_now();
    if (tl_model_forward(m, ids, 1, T, hidden, NULL)) return -1;
    double t1 = tl_now();
    memset(grad, 0, (size_t)lens.n_params * sizeof(float));
    if (tl_lens_train_micro(&lens, u, &cfg, hidden, NULL, ids, 1, T, 1.0f, grad, st->losses)) return -1;
    double t2 = tl_now();
    double norm = sqrt(tl_sumsq(grad, lens.n_params));
    tl_scale(grad, lens.n_params, tl_clip_coef(norm, 1.0));
    tl_lens_optim_step(&lens, &opt, grad, opt.lr);
    double t3 = tl_now();
    if (s > 0) {
      if (t1 - t0 < st->fwd) st->fwd = t1 - t0;
      if (t2 - t1 < st->lens) st->lens = t2 - t1;
      if (t3 - t2 < st->opt) st->opt = t3 - t2;
      if (t2 - t0 < st->step) st->step = t2 - t0;
    }
  }
  st->hwm = hwm_mb();
  st->kernels = tl_lens_ws_kernels(cfg.ws); /* a string constant */
  tl_lens_ws_free(cfg.ws);
  free(grad);
  tl_optim_free(&opt);
  tl_lens_free(&lens);
  return 0;
}

int main(int argc, char **argv) {
  if (!getenv("OMP_WAIT_POLICY")) { /* must be set before the OpenMP runtime starts */
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "bench_lens: could not re-execute itself; running with spinning OpenMP threads\n");
  }
  const int threads = 2;
  tl_backend_cpu_set_threads(threads);
  char dir[256];
  snprintf(dir, sizeof dir, "%s/tlens_bench_lens_%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  tl_synth_opts so = {"gpt_neox", L, D, 8, 0, 2048, V, 2048, 1234, TL_F32, 0};
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

  int32_t *ids = malloc(T * sizeof(int32_t));
  for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919u + 13) % V);
  float *hidden = tl_aligned_alloc((size_t)(L + 1) * T * D * sizeof(float));

  const char *isa[] = {"none (OpenBLAS fallback)", "AVX-512F", "AVX-512F + AVX-512 BF16",
                       "AVX-512F + AVX-512 BF16 + AMX-BF16"};
  printf("bench_lens: pythia-70m shape (gpt_neox, d %d, %d layers, V %d), T %d, batch 1, %d threads, chunk %d\n", D,
         L, V, T, threads, C);
  printf("  CPU: %s; OPENBLAS_CORETYPE=%s; OMP_WAIT_POLICY=%s; load average %.2f\n", isa[lens_gemm_cpu_isa()],
         getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)", getenv("OMP_WAIT_POLICY"),
         loadavg());

  /* the two GEMM shapes alone */
  {
    float *x = tl_aligned_alloc((size_t)C * D * sizeof(float)), *dx = tl_aligned_alloc((size_t)C * D * sizeof(float));
    float *z = tl_aligned_alloc((size_t)C * V * sizeof(float)), *dz = tl_aligned_alloc((size_t)C * V * sizeof(float));
    uint16_t *dzb = tl_aligned_alloc((size_t)C * lens_gemm_bf16_row(V) * sizeof(uint16_t));
    for (size_t k = 0; k < (size_t)C * D; k++) x[k] = (float)((k * 40503u) % 2001) / 1000 - 1;
    for (size_t k = 0; k < (size_t)C * V; k++) dz[k] = ((float)((k * 69069u) % 2001) / 1000 - 1) * 1e-5f;
    const char *names[] = {"OpenBLAS sgemm", "fp32 AVX-512 kernels", "bf16 AVX-512 kernels", "bf16 AMX kernels"};
    for (int kind = 0; kind < 4; kind++) {
      if (kind == 1 && lens_gemm_cpu_isa() < LENS_ISA_AVX512) break;
      if (kind == 2 && lens_gemm_cpu_isa() < LENS_ISA_AVX512_BF16) break;
      if (kind == 3 && lens_gemm_cpu_isa() < LENS_ISA_AMX) break;
      double a, b;
      gemm_rates(kind, u.W_U, x, dz, z, dx, dzb, &a, &b);
      printf("  %-22s logits [%d,%d]x[%d,%d] %6.1f GFLOP/s   backward [%d,%d]x[%d,%d] %6.1f GFLOP/s\n", names[kind],
             C, D, D, V, a, C, V, V, D, b);
    }
    free(x), free(dx), free(z), free(dz), free(dzb);
  }

  const double peak = lens_gemm_cpu_isa() >= LENS_ISA_AVX512 ? fma_peak(threads) : 0;
  if (peak > 0) printf("  AVX-512 fp32 FMA peak (2 threads, measured now): %.1f GFLOP/s\n", peak);

  /* full micro-steps */
  /* per stream: logits and their gradient through W_U, the translator and its
   * gradient; once: the model's final logits */
  const double lens_gflop = (L * (2.0 * 2 * T * (double)V * D + 2.0 * 2 * T * (double)D * D) + 2.0 * T * V * D) / 1e9;
  printf("  micro-step (best of %d), lens %.1f GFLOP:\n", STEPS, lens_gflop);
  for (int p = 0; p < 2; p++) {
    tl_lens_gemm_precision prec = p ? TL_LENS_GEMM_BF16 : TL_LENS_GEMM_FP32;
    if (p && lens_gemm_cpu_isa() < LENS_ISA_AVX512_BF16) {
      printf("    bf16: skipped (no AVX-512 BF16 on this CPU)\n");
      break;
    }
    step_times st;
    if (run_steps(m, &u, prec, ids, hidden, &st)) {
      fprintf(stderr, "bench_lens: %s\n", tl_errmsg());
      return 1;
    }
    printf("    %s (%s): %.3f s  (model forward %.3f s + lens fwd/bwd %.3f s = %.1f GFLOP/s); optimizer %.4f s; "
           "peak RSS %.0f MB; load %.2f\n",
           p ? "bf16" : "fp32", st.kernels, st.step, st.fwd, st.lens, lens_gflop / st.lens, st.opt, st.hwm, loadavg());
    if (!p && peak > 0)
      printf("      the lens' %.1f GFLOP at the FMA peak alone take %.3f s: %.0f%% of the peak reached\n", lens_gflop,
             lens_gflop / peak, 100.0 * lens_gflop / st.lens / peak);
    printf("      losses (stream 0..5):");
    for (int i = 0; i < L; i++) printf(" %.4f", st.losses[i]);
    printf("\n");
  }
  free(hidden), free(ids);
  tl_model_free(m);
  (void)argc;
  return 0;
}
