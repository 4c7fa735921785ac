/* dist: collectives checked against hand-computed values. Runs alone (singleton)
 * and under mpirun with 2 and 4 ranks; every rank checks, and the exit status is
 * agreed so one failing rank fails the test. */
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/dist.h"

static tl_dist D;

/* A deterministic value any rank can compute for any (rank, i): a reference that
 * does not depend on the code under test. */
static float val(int rank, size_t i) {
  uint32_t h = (uint32_t)(rank * 2654435761u) ^ (uint32_t)(i * 40503u + 17u);
  h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
  return ((float)(h % 20001u) - 10000.0f) / 997.0f;
}

/* Are the bytes the same on every rank? Compare each rank's crc to rank 0's. */
static int same_bits_everywhere(const float *x, size_t n) {
  uint32_t c = tl_crc32(0, x, n * sizeof(float));
  uint32_t c0 = c;
  MPI_Bcast(&c0, 1, MPI_UINT32_T, 0, D.comm);
  int ok = c == c0, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, D.comm);
  return all;
}

static void test_shard_range(void) {
  size_t off, cnt;
  /* 10 over 4: 3,3,2,2 */
  size_t want10[4][2] = {{0, 3}, {3, 3}, {6, 2}, {8, 2}};
  for (int r = 0; r < 4; r++) {
    tl_shard_range(10, 4, r, &off, &cnt);
    CHECKF(off == want10[r][0] && cnt == want10[r][1], "10/4 rank %d: %zu+%zu", r, off, cnt);
  }
  /* 2 over 4: 1,1,0,0 */
  size_t want2[4][2] = {{0, 1}, {1, 1}, {2, 0}, {2, 0}};
  for (int r = 0; r < 4; r++) {
    tl_shard_range(2, 4, r, &off, &cnt);
    CHECKF(off == want2[r][0] && cnt == want2[r][1], "2/4 rank %d: %zu+%zu", r, off, cnt);
  }
  tl_shard_range(5, 1, 0, &off, &cnt);
  CHECK(off == 0 && cnt == 5);
}

static void test_allreduce_avg(size_t chunk) {
  int W = D.world;
  D.max_chunk = chunk;
  /* Exact case: rank r holds (r+1)*(i+1); the mean over ranks is (i+1)*(W+1)/2,
   * exactly representable for these sizes. */
  size_t n = 1001;
  float *x = tl_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)((D.rank + 1) * (i + 1));
  CHECK(tl_dist_allreduce_avg(&D, x, n) == 0);
  int bad = 0;
  for (size_t i = 0; i < n; i++) bad += x[i] != (float)((double)(i + 1) * (W + 1) / 2.0);
  CHECKF(bad == 0, "exact average: %d wrong elements (chunk %zu)", bad, chunk);
  /* Pseudo-random values against a double-precision mean. */
  for (size_t i = 0; i < n; i++) x[i] = val(D.rank, i);
  CHECK(tl_dist_allreduce_avg(&D, x, n) == 0);
  double maxerr = 0;
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (int r = 0; r < W; r++) s += val(r, i);
    double e = fabs(x[i] - s / W);
    if (e > maxerr) maxerr = e;
  }
  CHECKF(maxerr < 1e-5, "random average max error %g", maxerr);
  CHECK(same_bits_everywhere(x, n));
  /* Empty buffer is fine. */
  CHECK(tl_dist_allreduce_avg(&D, x, 0) == 0);
  free(x);
  D.max_chunk = 0;
}

static void test_iallreduce(size_t chunk) {
  int W = D.world;
  D.max_chunk = chunk;
  size_t na = 777, nb = 5;
  float *a = tl_malloc(na * sizeof(float)), *b = tl_malloc(nb * sizeof(float));
  for (size_t i = 0; i < na; i++) a[i] = val(D.rank, i);
  for (size_t i = 0; i < nb; i++) b[i] = (float)(D.rank * 4 + i);
  tl_dist_req ra, rb;
  CHECK(tl_dist_iallreduce_avg(&D, a, na, &ra) == 0);
  CHECK(tl_dist_iallreduce_avg(&D, b, nb, &rb) == 0); /* two in flight at once */
  bool done = false;
  for (int k = 0; k < 3; k++) CHECK(tl_dist_test(&ra, &done) == 0);
  CHECK(tl_dist_wait(&rb) == 0);
  CHECK(tl_dist_wait(&ra) == 0);
  CHECK(tl_dist_test(&ra, &done) == 0 && done);
  double maxerr = 0;
  for (size_t i = 0; i < na; i++) {
    double s = 0;
    for (int r = 0; r < W; r++) s += val(r, i);
    double e = fabs(a[i] - s / W);
    if (e > maxerr) maxerr = e;
  }
  CHECKF(maxerr < 1e-5, "nonblocking average max error %g", maxerr);
  CHECK(same_bits_everywhere(a, na));
  /* mean over r of (4r + i) = 2(W-1) + i */
  for (size_t i = 0; i < nb; i++) CHECKF(b[i] == (float)(2 * (W - 1) + i), "b[%zu]=%g", i, b[i]);
  /* At most TL_DIST_MAX_INFLIGHT at once; waited in another order than started. */
  if (W > 1) {
    tl_dist_req rq[TL_DIST_MAX_INFLIGHT + 1];
    float v[TL_DIST_MAX_INFLIGHT + 1][3];
    for (int k = 0; k <= TL_DIST_MAX_INFLIGHT; k++)
      for (int i = 0; i < 3; i++) v[k][i] = (float)(D.rank * 2 + k + i);
    for (int k = 0; k < TL_DIST_MAX_INFLIGHT; k++) CHECK(tl_dist_iallreduce_avg(&D, v[k], 3, &rq[k]) == 0);
    CHECK(tl_dist_iallreduce_avg(&D, v[TL_DIST_MAX_INFLIGHT], 3, &rq[TL_DIST_MAX_INFLIGHT]) == -1);
    for (int k = TL_DIST_MAX_INFLIGHT - 1; k >= 0; k--) CHECK(tl_dist_wait(&rq[k]) == 0);
    /* mean over r of (2r + k + i) = (W-1) + k + i */
    for (int k = 0; k < TL_DIST_MAX_INFLIGHT; k++)
      for (int i = 0; i < 3; i++) CHECK(v[k][i] == (float)(W - 1 + k + i));
  }
  free(a);
  free(b);
  D.max_chunk = 0;
}

static void test_reduce_scatter_allgather(void) {
  int W = D.world;
  size_t n = 103, off, cnt;
  tl_shard_range(n, W, D.rank, &off, &cnt);
  float *in = tl_malloc(n * sizeof(float)), *shard = tl_malloc((cnt + 1) * sizeof(float));
  float *full = tl_malloc(n * sizeof(float));
  /* rank r holds r + i/2; the sum over ranks is W*i/2 + W(W-1)/2 */
  for (size_t i = 0; i < n; i++) in[i] = (float)D.rank + 0.5f * (float)i;
  CHECK(tl_dist_reduce_scatter(&D, in, shard, n, false) == 0);
  int bad = 0;
  for (size_t k = 0; k < cnt; k++) {
    size_t i = off + k;
    bad += shard[k] != (float)(W * 0.5 * i + W * (W - 1) / 2.0);
  }
  CHECKF(bad == 0, "reduce-scatter sum: %d wrong", bad);
  CHECK(tl_dist_allgather(&D, shard, full, n) == 0);
  bad = 0;
  for (size_t i = 0; i < n; i++) bad += full[i] != (float)(W * 0.5 * i + W * (W - 1) / 2.0);
  CHECKF(bad == 0, "all-gather of sums: %d wrong", bad);
  /* Average variant, then all-gather from a shard that already sits inside out:
   * the round trip equals the blocking average bit for bit. */
  for (size_t i = 0; i < n; i++) in[i] = val(D.rank, i);
  CHECK(tl_dist_reduce_scatter(&D, in, full + off, n, true) == 0);
  CHECK(tl_dist_allgather(&D, full + off, full, n) == 0);
  CHECK(tl_dist_allreduce_avg(&D, in, n) == 0);
  CHECK(memcmp(full, in, n * sizeof(float)) == 0);
  free(in);
  free(shard);
  free(full);
}

static void test_fsdp(void) {
  int W = D.world;
  enum { L = 5 };
  size_t numel[L] = {7, 1, 13, 0, 6}; /* uneven, one smaller than W, one empty */
  float *shard[L];
  uint16_t *shard16[L];
  for (int l = 0; l < L; l++) {
    size_t off, cnt;
    tl_shard_range(numel[l], W, D.rank, &off, &cnt);
    shard[l] = tl_malloc((cnt + 1) * sizeof(float));
    shard16[l] = tl_malloc((cnt + 1) * sizeof(uint16_t));
    for (size_t k = 0; k < cnt; k++) {
      shard[l][k] = (float)(l * 1000 + off + k) + 0.25f;
      shard16[l][k] = (uint16_t)(l * 100 + off + k);
    }
  }
  tl_fsdp *f = NULL;
  CHECK(tl_fsdp_create(&f, &D, L, numel, sizeof(float), (const void *const *)shard) == 0);
  /* forward order with prefetch of the next layer, then backward order */
  for (int pass = 0; pass < 2 && f; pass++) {
    int first = pass == 0 ? 0 : L - 1, step = pass == 0 ? 1 : -1;
    CHECK(tl_fsdp_prefetch(f, first) == 0);
    for (int l = first; l >= 0 && l < L; l += step) {
      const void *p = NULL;
      CHECK(tl_fsdp_wait(f, l, &p) == 0 && p);
      if (l + step >= 0 && l + step < L) CHECK(tl_fsdp_prefetch(f, l + step) == 0);
      const float *full = p;
      int bad = 0;
      for (size_t i = 0; p && i < numel[l]; i++) bad += full[i] != (float)(l * 1000 + i) + 0.25f;
      CHECKF(bad == 0, "fsdp pass %d layer %d: %d wrong", pass, l, bad);
    }
  }
  /* Same buffer reused while in flight is refused; out of range too. */
  CHECK(tl_fsdp_prefetch(f, 2) == 0);
  CHECK(tl_fsdp_prefetch(f, 4) == -1);
  CHECK(strstr(tl_errmsg(), "still in flight") != NULL);
  CHECK(tl_fsdp_prefetch(f, L) == -1);
  const void *p0;
  CHECK(tl_fsdp_wait(f, 2, &p0) == 0 && ((const float *)p0)[12] == 2012.25f);
  CHECK(tl_fsdp_wait(f, 0, &p0) == 0 && ((const float *)p0)[6] == 6.25f);
  tl_fsdp_free(f);
  /* 2-byte elements (f16/bf16 weights), waiting without prefetch */
  CHECK(tl_fsdp_create(&f, &D, L, numel, 2, (const void *const *)shard16) == 0);
  for (int l = 0; l < L && f; l++) {
    const void *p = NULL;
    CHECK(tl_fsdp_wait(f, l, &p) == 0);
    const uint16_t *full = p;
    int bad = 0;
    for (size_t i = 0; i < numel[l]; i++) bad += full[i] != (uint16_t)(l * 100 + i);
    CHECKF(bad == 0, "fsdp u16 layer %d: %d wrong", l, bad);
  }
  tl_fsdp_free(f);
  for (int l = 0; l < L; l++) {
    free(shard[l]);
    free(shard16[l]);
  }
}

static void test_agree(void) {
  int W = D.world;
  tl_clear_error();
  CHECK(tl_dist_agree(&D, 0) == 0);
  CHECK(tl_dist_all_ok(&D, true));
  /* the last rank fails on "bad input": every rank gets -1 and the reason */
  int rc = 0;
  if (D.rank == W - 1) rc = tl_fail("data.bin: bad input at byte 12");
  CHECK(tl_dist_agree(&D, rc) == -1);
  char want[128];
  snprintf(want, sizeof want, "rank %d: data.bin: bad input at byte 12", W - 1);
  if (D.rank != W - 1) CHECKF(strcmp(tl_errmsg(), want) == 0, "got '%s'", tl_errmsg());
  else CHECK(strcmp(tl_errmsg(), "data.bin: bad input at byte 12") == 0);
  /* several fail: the lowest failing rank's message wins */
  tl_clear_error();
  rc = 0;
  if (D.rank >= W / 2) rc = tl_fail("failure on rank %d", D.rank);
  CHECK(!tl_dist_all_ok(&D, rc == 0));
  if (rc == 0) {
    snprintf(want, sizeof want, "rank %d: failure on rank %d", W / 2, W / 2);
    CHECKF(strcmp(tl_errmsg(), want) == 0, "got '%s'", tl_errmsg());
  }
  tl_clear_error();
}

static void test_scalars_bcast(void) {
  int W = D.world;
  double v[2] = {D.rank + 1.0, D.rank + 1.0};
  CHECK(tl_dist_allreduce_f64(&D, v, 1, TL_RED_SUM) == 0 && v[0] == W * (W + 1) / 2.0);
  CHECK(tl_dist_allreduce_f64(&D, v + 1, 1, TL_RED_MAX) == 0 && v[1] == W);
  int64_t m = 10 - D.rank;
  CHECK(tl_dist_allreduce_i64(&D, &m, 1, TL_RED_MIN) == 0 && m == 10 - (W - 1));
  char *s = tl_strdup(D.rank == 0 ? "{\"config\": 1}" : "x");
  CHECK(tl_dist_bcast_str(&D, &s, 0) == 0 && strcmp(s, "{\"config\": 1}") == 0);
  free(s);
  uint64_t big[3] = {0, 0, 0};
  if (D.rank == W - 1) big[0] = 1, big[1] = UINT64_MAX, big[2] = 42;
  CHECK(tl_dist_bcast(&D, big, sizeof big, W - 1) == 0 && big[1] == UINT64_MAX && big[2] == 42);
  CHECK(tl_dist_bcast(&D, big, 8, W) == -1); /* no such root */
  CHECK(tl_dist_barrier(&D) == 0);
}

static void test_preempt(void) {
  CHECK(tl_preempt_install() == 0);
  tl_preempt_clear();
  bool stop = true;
  CHECK(tl_dist_preempt_agree(&D, &stop) == 0 && !stop);
  /* only the last rank is signalled; all ranks must agree to stop */
  if (D.rank == D.world - 1) raise(SIGUSR1);
  CHECK(tl_preempt_requested() == (D.rank == D.world - 1));
  CHECK(tl_dist_preempt_agree(&D, &stop) == 0 && stop);
  if (D.rank == D.world - 1) CHECK(tl_preempt_signal() == SIGUSR1);
  tl_preempt_clear();
  raise(SIGTERM); /* handled: the process goes on */
  CHECK(tl_preempt_requested() && tl_preempt_signal() == SIGTERM);
  raise(SIGUSR1); /* the first signal is the one remembered */
  CHECK(tl_preempt_signal() == SIGTERM);
  tl_preempt_clear();
  CHECK(!tl_preempt_requested());
}

int main(int argc, char **argv) {
  if (tl_dist_init(&D, &argc, &argv) != 0) {
    fprintf(stderr, "init: %s\n", tl_errmsg());
    return 1;
  }
  int expect_world = argc > 1 ? atoi(argv[1]) : 0;
  if (expect_world) CHECKF(D.world == expect_world, "world %d, expected %d", D.world, expect_world);
  CHECK(D.rank >= 0 && D.rank < D.world);
  CHECK(D.local_rank >= 0 && D.local_rank < D.local_world && D.local_world <= D.world);
  test_shard_range();
  test_allreduce_avg(0);
  test_allreduce_avg(3); /* many chunks, some shorter than the world */
  test_iallreduce(0);
  test_iallreduce(64);
  test_reduce_scatter_allgather();
  test_fsdp();
  test_agree();
  test_scalars_bcast();
  test_preempt();
  CHECK(tl_dist_set_backend(&D, TL_DIST_MPI) == 0);
#ifndef TLENS_HAVE_CUDA
  CHECK(tl_dist_set_backend(&D, TL_DIST_NCCL) == -1 && strstr(tl_errmsg(), "CUDA"));
#endif
  char name[64];
  snprintf(name, sizeof name, "test_dist rank %d/%d", D.rank, D.world);
  int rc = tl_test_finish(name);
  int any = 0;
  MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, D.comm);
  tl_dist_finalize(&D);
  return any;
}
