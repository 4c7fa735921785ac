/* Throughput of the CUDA backend's heavy ops on shapes of a 7B-class layer
 * (d 4096, 32 heads of 128, T 2048): fp32 sgemm, the causal attention kernel,
 * layernorm and softmax over a 50k vocabulary. Prints GFLOP/s or GB/s per op.
 * Without a CUDA device it says so and exits 0, so `make bench` still runs. */
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_backend.h"
#include "tlens/backend.h"
#include "tlens/core.h"

static const tl_backend *gpu;

/* A benchmark has no use for a failed op: it prints the message and stops. */
static void ok(int rc) {
  if (rc != 0) {
    fprintf(stderr, "bench_cuda_ops: %s\n", tl_errmsg());
    exit(1);
  }
}

static float *filled(size_t n, float v) {
  float *h = tl_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = v * (float)((i * 2654435761u) % 1000) / 1000.0f;
  float *d = gpu->alloc(n * sizeof(float));
  ok(gpu->to_device(d, h, n * sizeof(float)));
  free(h);
  return d;
}

/* Seconds per call of the last `reps` calls after one warm-up call; the
 * device is drained before reading the clock. */
#define TIME_IT(secs, reps, call)                                                                                      \
  do {                                                                                                                 \
    ok(call);                                                                                                          \
    ok(tl_cuda_try_(cudaDeviceSynchronize(), "cudaDeviceSynchronize", __FILE__, __LINE__));                            \
    double t0_ = tl_now();                                                                                             \
    for (int r_ = 0; r_ < (reps); r_++) ok(call);                                                                      \
    ok(tl_cuda_try_(cudaDeviceSynchronize(), "cudaDeviceSynchronize", __FILE__, __LINE__));                            \
    secs = (tl_now() - t0_) / (reps);                                                                                  \
  } while (0)

int main(void) {
  if (tl_cuda_device_count() == 0) {
    printf("bench_cuda_ops: no CUDA device available, nothing to measure\n");
    return 0;
  }
  if (!(gpu = tl_backend_cuda())) {
    fprintf(stderr, "bench_cuda_ops: %s\n", tl_errmsg());
    return 1;
  }
  struct cudaDeviceProp prop;
  ok(tl_cuda_try_(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties", __FILE__, __LINE__));
  printf("device: %s\n", prop.name);
  double s;

  const int M = 4096, N = 4096, K = 4096;
  float *A = filled((size_t)M * K, 1), *B = filled((size_t)K * N, 1), *C = filled((size_t)M * N, 0);
  TIME_IT(s, 10, gpu->gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N));
  printf("sgemm %dx%dx%d: %.2f ms, %.0f GFLOP/s\n", M, N, K, s * 1e3, 2.0 * M * N * K / s / 1e9);

  const int Bt = 1, T = 2048, H = 32, hd = 128;
  float *qkv = filled((size_t)Bt * T * 3 * H * hd, 1), *out = filled((size_t)Bt * T * H * hd, 0);
  TIME_IT(s, 5, gpu->attention(out, qkv, Bt, T, H, H, hd, 0.088f, 0));
  /* causal: about half of the T*T score matrix, 2 flops each for QK^T and PV */
  double att_flops = 4.0 * Bt * H * hd * (double)T * (T + 1) / 2;
  printf("attention B=%d T=%d H=%d hd=%d: %.2f ms, %.0f GFLOP/s\n", Bt, T, H, hd, s * 1e3, att_flops / s / 1e9);

  const int rows = 2048, d = 4096;
  float *w = filled(d, 1), *b = filled(d, 1);
  TIME_IT(s, 20, gpu->layernorm(C, A, w, b, rows, d, 1e-5f));
  printf("layernorm %dx%d: %.3f ms, %.0f GB/s\n", rows, d, s * 1e3, 3.0 * rows * d * 4 / s / 1e9);

  const int srows = 512, V = 50304;
  float *logits = filled((size_t)srows * V, 8);
  TIME_IT(s, 20, gpu->softmax(logits, srows, V));
  printf("softmax %dx%d: %.3f ms, %.0f GB/s\n", srows, V, s * 1e3, 4.0 * srows * V * 4 / s / 1e9);

  gpu->free(A), gpu->free(B), gpu->free(C), gpu->free(qkv), gpu->free(out);
  gpu->free(w), gpu->free(b), gpu->free(logits);
  return 0;
}
