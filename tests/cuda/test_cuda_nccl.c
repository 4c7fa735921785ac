/* The NCCL collectives behind tl_dist, run under `mpirun -np 2` with one GPU per
 * rank, checked against values worked out by hand from what each rank
 * contributes. Exits 77 (skipped) unless there are 2 ranks and 2 GPUs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "tlens/dist_ops.h"
#include "tl_test.h"
#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/dist.h"

static tl_dist D;
static const tl_backend *gpu;

static float *to_gpu(const float *h, size_t n) {
  float *d = gpu->alloc(n * sizeof(float));
  gpu->to_device(d, h, n * sizeof(float));
  return d;
}

/* Rank r contributes v_r[i] = r*1000 + i/2, so the average over 2 ranks is
 * 500 + i/2 exactly (all values are small multiples of 1/2). */
static float contrib(int rank, size_t i) { return (float)rank * 1000.0f + 0.5f * (float)i; }

static void test_allreduce(size_t n, int nonblocking) {
  float *h = tl_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = contrib(D.rank, i);
  float *d = to_gpu(h, n);
  if (nonblocking) {
    tl_dist_req r;
    CHECK(tl_dist_iallreduce_avg(&D, d, n, &r) == 0);
    bool done = false;
    CHECK(tl_dist_test(&r, &done) == 0);
    if (!done) CHECK(tl_dist_wait(&r) == 0);
  } else {
    CHECK(tl_dist_allreduce_avg(&D, d, n) == 0);
  }
  gpu->to_host(h, d, n * sizeof(float));
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += h[i] != 500.0f + 0.5f * (float)i;
  CHECKF(bad == 0, "%s allreduce of %zu: %zu wrong elements", nonblocking ? "nonblocking" : "blocking", n, bad);
  gpu->free(d);
  free(h);
}

/* n = 7 splits 4 + 3: the uneven ranges the grouped reduce/broadcast handle. */
static void test_reduce_scatter_allgather(void) {
  const size_t n = 7;
  float h[7], full[7];
  for (size_t i = 0; i < n; i++) h[i] = contrib(D.rank, i);
  size_t off, cnt;
  tl_shard_range(n, D.world, D.rank, &off, &cnt);
  float *din = to_gpu(h, n), *dshard = gpu->alloc(4 * sizeof(float)), *dout = gpu->alloc(n * sizeof(float));
  for (int avg = 0; avg < 2; avg++) {
    CHECK(tl_dist_reduce_scatter(&D, din, dshard, n, avg) == 0);
    float got[4];
    gpu->to_host(got, dshard, cnt * sizeof(float));
    for (size_t k = 0; k < cnt; k++) {
      float sum = 1000.0f + (float)(off + k); /* (0 + 1000) + 2 * i/2 */
      CHECKF(got[k] == (avg ? sum / 2 : sum), "reduce_scatter avg=%d element %zu: %g", avg, off + k, got[k]);
    }
  }
  /* Gather the averaged shards back: every rank gets 500 + i/2. */
  CHECK(tl_dist_allgather(&D, dshard, dout, n) == 0);
  gpu->to_host(full, dout, n * sizeof(float));
  for (size_t i = 0; i < n; i++) CHECKF(full[i] == 500.0f + 0.5f * (float)i, "allgather element %zu: %g", i, full[i]);
  gpu->free(din), gpu->free(dshard), gpu->free(dout);
}

/* The FSDP gather on 2-byte elements, through the backend hook directly:
 * rank r's shard holds the values 100*r + k, gathered into positions off_r + k. */
static void test_fsdp_gather(void) {
  const size_t numel = 11;
  size_t off, cnt;
  tl_shard_range(numel, D.world, D.rank, &off, &cnt);
  uint16_t shard[6], full[11];
  for (size_t k = 0; k < cnt; k++) shard[k] = (uint16_t)(100 * D.rank + k);
  void *dshard = gpu->alloc(sizeof shard), *dfull = gpu->alloc(sizeof full);
  gpu->to_device(dshard, shard, cnt * sizeof(uint16_t));
  void *req = NULL;
  const tl_dist_ops *ops = D.ops;
  CHECK(ops->iallgatherv(D.backend_state, dshard, dfull, numel, sizeof(uint16_t), &req) == 0);
  CHECK(ops->wait(D.backend_state, req) == 0);
  gpu->to_host(full, dfull, sizeof full);
  for (int r = 0; r < D.world; r++) {
    size_t o, c;
    tl_shard_range(numel, D.world, r, &o, &c);
    for (size_t k = 0; k < c; k++)
      CHECKF(full[o + k] == 100 * r + k, "gather element %zu: %u, want %zu", o + k, full[o + k], 100 * r + k);
  }
  gpu->free(dshard), gpu->free(dfull);
}

int main(int argc, char **argv) {
  if (tl_dist_init(&D, &argc, &argv) != 0) {
    fprintf(stderr, "test_cuda_nccl: %s\n", tl_errmsg());
    return 1;
  }
  /* Every rank sees the same node, so all take the same branch. */
  int ndev = tl_cuda_device_count();
  if (D.world != 2 || ndev < 2) {
    if (D.rank == 0)
      printf("test_cuda_nccl: needs 2 ranks and 2 CUDA devices (have %d ranks, %d devices), skipping\n", D.world,
             ndev);
    tl_dist_finalize(&D);
    return 77;
  }
  if (tl_dist_set_backend(&D, TL_DIST_NCCL) != 0 || !(gpu = tl_backend_cuda())) {
    fprintf(stderr, "test_cuda_nccl: rank %d: %s\n", D.rank, tl_errmsg());
    tl_dist_finalize(&D);
    return 1;
  }
  test_allreduce(1, 0);
  test_allreduce(100003, 0);
  test_allreduce(4096, 1);
  test_reduce_scatter_allgather();
  test_fsdp_gather();
  int rc = tl_test_finish("test_cuda_nccl");
  tl_dist_finalize(&D);
  return rc;
}
