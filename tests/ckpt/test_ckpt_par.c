/* ckpt with several ranks: sharded arrays written collectively by N ranks, read
 * back bit-exact by M ranks (elastic resume).
 * Usage: test_ckpt_par write DIR   (run with 2 ranks)
 *        test_ckpt_par read DIR    (run with any number of ranks) */
#include <string.h>

#include "tl_test.h"
#include "tlens/ckpt.h"
#include "tlens/core.h"

static tl_dist D;

/* The reference values: any rank can compute element i of item k. */
static float val(int k, uint64_t i) {
  uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(k * 40503u + 7u);
  h ^= h >> 15; h *= 0x2c1b3c6du; h ^= h >> 12;
  float v = ((float)(h % 100003u) - 50000.0f) / 313.0f;
  return (h & 1) ? v : -v * 1e-20f; /* include tiny values and both signs */
}

enum { N_FLAT = 103, ROWS = 9, COLS = 11, N_UNEVEN = 20 };

static void write_run(const char *dir) {
  tl_ckpt_writer *w = NULL;
  CHECK(tl_ckpt_begin(&w, &D, dir, 1234) == 0);
  if (!w) return;
  /* 1: flat ZeRO-1 shard, balanced partition */
  size_t off, cnt;
  tl_shard_range(N_FLAT, D.world, D.rank, &off, &cnt);
  float *a = tl_malloc((cnt + 1) * sizeof(float));
  for (size_t i = 0; i < cnt; i++) a[i] = val(1, off + i);
  uint64_t s1[1] = {N_FLAT};
  CHECK(tl_ckpt_add_f32_sharded(w, "optim/exp_avg", 1, s1, off, cnt, a) == 0);
  free(a);
  /* 2: a [9, 11] matrix whose rank ranges cut through rows */
  tl_shard_range(ROWS * COLS, D.world, D.rank, &off, &cnt);
  float *m = tl_malloc((cnt + 1) * sizeof(float));
  for (size_t i = 0; i < cnt; i++) m[i] = val(2, off + i);
  uint64_t s2[2] = {ROWS, COLS};
  CHECK(tl_ckpt_add_f32_sharded(w, "lens/0/weight", 2, s2, off, cnt, m) == 0);
  free(m);
  /* 3: uneven ownership: the last rank holds everything, the others nothing */
  float u[N_UNEVEN];
  for (int i = 0; i < N_UNEVEN; i++) u[i] = val(3, i);
  uint64_t s3[1] = {N_UNEVEN};
  bool last = D.rank == D.world - 1;
  CHECK(tl_ckpt_add_f32_sharded(w, "optim/max_exp_avg_sq", 1, s3, last ? 0 : N_UNEVEN, last ? N_UNEVEN : 0,
                                last ? u : NULL) == 0);
  /* replicated items: only rank 0's data counts */
  uint64_t cursor[2] = {3, 4096 + (uint64_t)D.rank}; /* other ranks' values must be ignored */
  uint64_t s4[1] = {2};
  CHECK(tl_ckpt_add_u64(w, "data/cursor", 1, s4, cursor) == 0);
  CHECK(tl_ckpt_add_str(w, "run/config", D.rank == 0 ? "{\"world\": 2}" : NULL) == 0);
  char *path = NULL;
  CHECK(tl_ckpt_commit(w, 2, &path) == 0 && path && strstr(path, "step_00001234.h5"));
  free(path);

  /* overlapping ranges are refused on every rank, and nothing is left behind */
  CHECK(tl_ckpt_begin(&w, &D, dir, 1300) == 0);
  float z[4] = {0};
  int rc = tl_ckpt_add_f32_sharded(w, "bad", 1, s4, 0, 2, z); /* every rank claims [0,2) */
  CHECK(D.world == 1 ? rc == 0 : (rc == -1 && strstr(tl_errmsg(), "overlap")));
  if (D.world > 1) CHECK(tl_ckpt_commit(w, 2, NULL) == -1);
  else tl_ckpt_abort(w);
  char *p = tl_ckpt_path(dir, 1300);
  CHECK(!tl_file_exists(p));
  free(p);
}

static int check_range(tl_ckpt_reader *r, const char *item, int k, uint64_t n) {
  size_t off, cnt;
  tl_shard_range(n, D.world, D.rank, &off, &cnt);
  float *x = tl_malloc((cnt + 1) * sizeof(float)), *ref = tl_malloc((cnt + 1) * sizeof(float));
  int rc = tl_ckpt_read_f32(r, item, off, cnt, x);
  for (size_t i = 0; i < cnt; i++) ref[i] = val(k, off + i);
  int same = rc == 0 && memcmp(x, ref, cnt * sizeof(float)) == 0;
  free(x);
  free(ref);
  return same;
}

static void read_run(const char *dir) {
  char *path = NULL;
  uint64_t step = 0;
  CHECK(tl_ckpt_find_latest(&D, dir, &path, &step) == 1 && step == 1234);
  if (!path) return;
  tl_ckpt_reader *r = NULL;
  CHECKF(tl_ckpt_open(&r, path, D.rank == 0) == 0, "%s", tl_errmsg());
  free(path);
  if (!r) return;
  CHECK(tl_ckpt_world_size(r) == 2);
  /* this world's shards of each array */
  CHECK(check_range(r, "optim/exp_avg", 1, N_FLAT));
  CHECK(check_range(r, "lens/0/weight", 2, ROWS * COLS));
  CHECK(check_range(r, "optim/max_exp_avg_sq", 3, N_UNEVEN));
  /* the whole matrix, on every rank */
  float m[ROWS * COLS];
  CHECK(tl_ckpt_read_f32(r, "lens/0/weight", 0, ROWS * COLS, m) == 0);
  int bad = 0;
  for (int i = 0; i < ROWS * COLS; i++) bad += memcmp(&m[i], &(float){val(2, i)}, 4) != 0;
  CHECK(bad == 0);
  uint64_t cursor[2];
  CHECK(tl_ckpt_read_u64(r, "data/cursor", 0, 2, cursor) == 0 && cursor[0] == 3 && cursor[1] == 4096);
  char *s = NULL;
  CHECK(tl_ckpt_read_str(r, "run/config", &s) == 0 && s && strcmp(s, "{\"world\": 2}") == 0);
  free(s);
  tl_ckpt_close(r);
}

int main(int argc, char **argv) {
  if (tl_dist_init(&D, &argc, &argv) != 0) return fprintf(stderr, "%s\n", tl_errmsg()), 1;
  if (argc != 3) return fprintf(stderr, "usage: test_ckpt_par write|read DIR\n"), 2;
  if (strcmp(argv[1], "write") == 0) {
    if (D.rank == 0) {
      char *cmd = tl_sprintf("rm -rf '%s'", argv[2]);
      CHECK(system(cmd) == 0);
      free(cmd);
    }
    tl_dist_barrier(&D);
    write_run(argv[2]);
  } else {
    read_run(argv[2]);
  }
  char name[64];
  snprintf(name, sizeof name, "test_ckpt_par %s rank %d/%d", argv[1], D.rank, D.world);
  int rc = tl_test_finish(name), any = 0;
  MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, D.comm);
  tl_dist_finalize(&D);
  return any;
}
