/* ckpt on one rank: round trip, checksums, damaged / incomplete files, rotation,
 * name and shard validation, compatibility checks.
 * Usage: test_ckpt WORKDIR            (the tests)
 *        test_ckpt --sample DIR       (writes one sample checkpoint, for h5dump) */
#include <fcntl.h>
#include <hdf5.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tl_test.h"
#include "tlens/ckpt.h"
#include "tlens/core.h"

static tl_dist D;

static void rm_dir_files(const char *dir) {
  char *cmd = tl_sprintf("rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  free(cmd);
}

/* A small checkpoint with one item of every kind. */
static float W0[12] = {0.5f, 1.5f, -2.25f, 3e-8f, 1e30f, -0.0f, 7, 8, 9, 10, 11, 12};
static float B0[3] = {0.125f, -1, 2};
static double SCHED[2] = {0.1, 1e-300};
static uint64_t RNG[4] = {1, UINT64_MAX, 0x0123456789abcdefull, 0};
static const char *CONFIG = "{\"model.name\": \"gpt2\", \"max_seq_len\": 128, \"optim\": {\"lr\": 1.0}}";

static int write_sample(const char *dir, uint64_t step, int keep) {
  tl_ckpt_writer *w;
  TL_TRY(tl_ckpt_begin(&w, &D, dir, step));
  uint64_t sw[2] = {3, 4}, sb[1] = {3}, s2[1] = {2}, s4[1] = {4}, s0[1] = {0}, sh[2] = {5, 7};
  float sharded[35];
  for (int i = 0; i < 35; i++) sharded[i] = (float)i * 0.25f - 3;
  float lossf = 2.5f;
  int rc = tl_ckpt_add_f32(w, "lens/0/weight", 2, sw, W0);
  if (!rc) rc = tl_ckpt_add_f32(w, "lens/0/bias", 1, sb, B0);
  if (!rc) rc = tl_ckpt_add_f32(w, "train/loss", 0, NULL, &lossf);
  if (!rc) rc = tl_ckpt_add_f64(w, "schedule/state", 1, s2, SCHED);
  if (!rc) rc = tl_ckpt_add_u64(w, "rng/state", 1, s4, RNG);
  if (!rc) rc = tl_ckpt_add_f32(w, "lens/empty", 1, s0, NULL);
  if (!rc) rc = tl_ckpt_add_f32_sharded(w, "optim/exp_avg", 2, sh, 0, 35, sharded);
  if (!rc) rc = tl_ckpt_add_str(w, "run/config", CONFIG);
  if (!rc) rc = tl_ckpt_add_str(w, "model/config_hash", "123456789");
  if (!rc) rc = tl_ckpt_add_str(w, "model/note", "");
  if (rc) {
    tl_ckpt_abort(w);
    return -1;
  }
  return tl_ckpt_commit(w, keep, NULL);
}

static void test_crc_combine(void) {
  unsigned char buf[300];
  for (int i = 0; i < 300; i++) buf[i] = (unsigned char)(i * 37 + 11);
  int splits[] = {0, 1, 4, 150, 299, 300};
  for (int k = 0; k < 6; k++) {
    int s = splits[k];
    uint32_t a = tl_crc32(0, buf, s), b = tl_crc32(0, buf + s, 300 - s);
    CHECKF(tl_crc32_combine(a, b, 300 - s) == tl_crc32(0, buf, 300), "split %d", s);
  }
}

/* The crc32 attribute of a dataset, read with plain HDF5 calls. */
static uint32_t stored_crc(const char *path, const char *item) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, item, H5P_DEFAULT);
  hid_t a = H5Aopen(ds, "crc32", H5P_DEFAULT);
  uint32_t v = 0;
  H5Aread(a, H5T_NATIVE_UINT32, &v);
  H5Aclose(a);
  H5Dclose(ds);
  H5Fclose(f);
  return v;
}

static void test_round_trip(const char *work) {
  char *dir = tl_path_join(work, "rt");
  rm_dir_files(dir);
  CHECK(write_sample(dir, 5, 2) == 0);
  char *path = tl_ckpt_path(dir, 5);
  CHECK(strcmp(tl_basename(path), "step_00000005.h5") == 0);
  tl_ckpt_reader *r = NULL;
  CHECKF(tl_ckpt_open(&r, path, true) == 0, "%s", tl_errmsg());
  if (!r) return;
  CHECK(tl_ckpt_step(r) == 5 && tl_ckpt_world_size(r) == 1);
  float w[12], b[3], l, sh[35];
  double sc[2];
  uint64_t rng[4];
  CHECK(tl_ckpt_read_f32(r, "lens/0/weight", 0, 12, w) == 0 && memcmp(w, W0, sizeof w) == 0);
  CHECK(tl_ckpt_read_f32(r, "lens/0/bias", 0, 3, b) == 0 && memcmp(b, B0, sizeof b) == 0);
  CHECK(tl_ckpt_read_f32(r, "train/loss", 0, 1, &l) == 0 && l == 2.5f);
  CHECK(tl_ckpt_read_f64(r, "schedule/state", 0, 2, sc) == 0 && memcmp(sc, SCHED, sizeof sc) == 0);
  CHECK(tl_ckpt_read_u64(r, "rng/state", 0, 4, rng) == 0 && memcmp(rng, RNG, sizeof rng) == 0);
  CHECK(tl_ckpt_read_f32(r, "optim/exp_avg", 0, 35, sh) == 0);
  int bad = 0;
  for (int i = 0; i < 35; i++) bad += sh[i] != (float)i * 0.25f - 3;
  CHECK(bad == 0);
  /* a flat range across rows of the [5,7] array: elements 6..25 */
  float part[20];
  CHECK(tl_ckpt_read_f32(r, "optim/exp_avg", 6, 20, part) == 0);
  bad = 0;
  for (int i = 0; i < 20; i++) bad += part[i] != (float)(i + 6) * 0.25f - 3;
  CHECK(bad == 0);
  char *s = NULL;
  CHECK(tl_ckpt_read_str(r, "run/config", &s) == 0 && s && strcmp(s, CONFIG) == 0);
  free(s);
  CHECK(tl_ckpt_read_str(r, "model/note", &s) == 0 && s && s[0] == 0);
  free(s);
  tl_ckpt_info info;
  CHECK(tl_ckpt_info_of(r, "lens/0/weight", &info) == 0 && info.type == TL_CKPT_F32 && info.ndim == 2 &&
        info.shape[0] == 3 && info.shape[1] == 4 && info.numel == 12);
  CHECK(tl_ckpt_info_of(r, "lens/empty", &info) == 0 && info.numel == 0 && info.ndim == 1);
  CHECK(tl_ckpt_info_of(r, "train/loss", &info) == 0 && info.ndim == 0 && info.numel == 1);
  CHECK(tl_ckpt_has(r, "rng/state") && !tl_ckpt_has(r, "rng/nope") && !tl_ckpt_has(r, "zzz/a/b"));
  /* wrong type, missing item, out of range */
  CHECK(tl_ckpt_read_u64(r, "lens/0/bias", 0, 1, rng) == -1 && strstr(tl_errmsg(), "is f32, expected u64"));
  CHECK(tl_ckpt_read_f32(r, "lens/1/bias", 0, 1, b) == -1 && strstr(tl_errmsg(), "no item 'lens/1/bias'"));
  CHECK(tl_ckpt_read_f32(r, "lens/0/bias", 2, 2, b) == -1 && strstr(tl_errmsg(), "cannot read 2+2"));
  tl_ckpt_close(r);
  /* stored checksums against the CRC-32 check value of "123456789" and the
   * crc of the raw little-endian floats */
  CHECK(stored_crc(path, "model/config_hash") == 0xcbf43926u);
  CHECK(stored_crc(path, "lens/0/weight") == tl_crc32(0, W0, sizeof W0));
  free(path);
  free(dir);
}

static void test_rotation(const char *work) {
  char *dir = tl_path_join(work, "rot");
  rm_dir_files(dir);
  for (uint64_t s = 1; s <= 5; s++) CHECK(write_sample(dir, s * 100, 2) == 0);
  for (uint64_t s = 1; s <= 5; s++) {
    char *p = tl_ckpt_path(dir, s * 100);
    CHECKF(tl_file_exists(p) == (s >= 4), "step %d exists=%d", (int)(s * 100), tl_file_exists(p));
    free(p);
  }
  CHECK(write_sample(dir, 600, 0) == 0); /* keep 0: nothing deleted */
  char *p = tl_ckpt_path(dir, 400);
  CHECK(tl_file_exists(p));
  free(p);
  CHECK(write_sample(dir, 700, 1) == 0); /* keep 1: only the new one */
  for (uint64_t s = 4; s <= 6; s++) {
    p = tl_ckpt_path(dir, s * 100);
    CHECK(!tl_file_exists(p));
    free(p);
  }
  free(dir);
}

/* Byte offset of a contiguous dataset's data in the file. */
static long data_offset(const char *path, const char *item) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, item, H5P_DEFAULT);
  haddr_t a = H5Dget_offset(ds);
  H5Dclose(ds);
  H5Fclose(f);
  return a == HADDR_UNDEF ? -1 : (long)a;
}

static void flip_byte(const char *path, long off) {
  int fd = open(path, O_RDWR);
  unsigned char c = 0;
  CHECK(fd >= 0 && pread(fd, &c, 1, off) == 1);
  c ^= 0x10;
  CHECK(pwrite(fd, &c, 1, off) == 1);
  close(fd);
}

static void set_complete(const char *path, uint64_t v) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t a = H5Aopen(f, "complete", H5P_DEFAULT);
  CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_UINT64, &v) >= 0);
  H5Aclose(a);
  H5Fclose(f);
}

static void expect_latest(const char *dir, uint64_t want, int line) {
  char *path = NULL;
  uint64_t step = 0;
  int rc = tl_ckpt_find_latest(NULL, dir, &path, &step);
  if (!(rc == 1 && step == want)) {
    fprintf(stderr, "line %d: find_latest rc %d step %d, expected %d (%s)\n", line, rc, (int)step, (int)want,
            tl_errmsg());
    tl_test_failures++;
  }
  tl_test_checks++;
  free(path);
}

static void test_damaged(const char *work) {
  char *dir = tl_path_join(work, "dmg");
  rm_dir_files(dir);
  char *path = NULL;
  uint64_t step = 99;
  CHECK(tl_ckpt_find_latest(NULL, dir, &path, &step) == 0 && !path); /* no dir yet */
  CHECK(write_sample(dir, 10, 0) == 0);
  CHECK(write_sample(dir, 20, 0) == 0);
  expect_latest(dir, 20, __LINE__);
  char *p20 = tl_ckpt_path(dir, 20);

  /* truncated newest: the previous one is used */
  struct stat st;
  CHECK(stat(p20, &st) == 0);
  CHECK(truncate(p20, st.st_size / 2) == 0);
  tl_ckpt_reader *r = NULL;
  CHECK(tl_ckpt_open(&r, p20, true) == -1 && !r);
  expect_latest(dir, 10, __LINE__);

  /* one flipped byte inside a dataset: the header still reads, the checksum fails */
  CHECK(write_sample(dir, 20, 0) == 0);
  long off = data_offset(p20, "optim/exp_avg");
  CHECK(off > 0);
  flip_byte(p20, off + 37);
  CHECK(tl_ckpt_open(&r, p20, false) == 0);
  tl_ckpt_close(r);
  CHECK(tl_ckpt_open(&r, p20, true) == -1 && strstr(tl_errmsg(), "item 'optim/exp_avg' is corrupt"));
  expect_latest(dir, 10, __LINE__);

  /* incomplete: complete flag 0, a leftover .tmp, garbage and odd names */
  CHECK(write_sample(dir, 30, 0) == 0);
  char *p30 = tl_ckpt_path(dir, 30);
  set_complete(p30, 0);
  CHECK(tl_ckpt_open(&r, p30, false) == -1 && strstr(tl_errmsg(), "incomplete"));
  CHECK(write_sample(dir, 40, 0) == 0);
  char *p40 = tl_ckpt_path(dir, 40), *t40 = tl_sprintf("%s.tmp", p40);
  CHECK(rename(p40, t40) == 0);
  char *p50 = tl_ckpt_path(dir, 50);
  CHECK(tl_write_file_atomic(p50, "not hdf5", 8) == 0);
  char *odd = tl_path_join(dir, "step_99x.h5");
  CHECK(tl_write_file_atomic(odd, "x", 1) == 0);
  expect_latest(dir, 10, __LINE__);

  /* a good newer checkpoint wins again; rotation removes the older damaged files
   * and the stale .tmp, but keeps the newest complete ones */
  CHECK(write_sample(dir, 60, 2) == 0);
  expect_latest(dir, 60, __LINE__);
  CHECK(!tl_file_exists(p30) && !tl_file_exists(t40) && !tl_file_exists(p50) && !tl_file_exists(p20));
  char *p10 = tl_ckpt_path(dir, 10);
  CHECK(tl_file_exists(p10));
  free(p10);
  free(p20);
  free(p30);
  free(p40);
  free(t40);
  free(p50);
  free(odd);
  free(dir);
}

static void test_writer_errors(const char *work) {
  char *dir = tl_path_join(work, "err");
  rm_dir_files(dir);
  tl_ckpt_writer *w;
  uint64_t s3[1] = {3}, s4[1] = {4};
  float x[4] = {1, 2, 3, 4};
  const char *bad_names[] = {"/abs", "a//b", "trail/", "has space", ""};
  CHECK(tl_ckpt_begin(&w, &D, dir, 7) == 0);
  for (int i = 0; i < 5; i++) CHECK(tl_ckpt_add_f32(w, bad_names[i], 1, s3, x) == -1);
  tl_ckpt_abort(w);
  CHECK(tl_ckpt_begin(&w, &D, dir, 7) == 0);
  CHECK(tl_ckpt_add_f32(w, "a/x", 1, s3, x) == 0);
  CHECK(tl_ckpt_add_f32(w, "a/x", 1, s3, x) == -1 && strstr(tl_errmsg(), "duplicate"));
  CHECK(tl_ckpt_add_f32(w, "a/y", 1, s3, x) == -1 && strstr(tl_errmsg(), "earlier item failed"));
  CHECK(tl_ckpt_commit(w, 2, NULL) == -1);
  char *p7 = tl_ckpt_path(dir, 7), *t7 = tl_sprintf("%s.tmp", p7);
  CHECK(!tl_file_exists(p7) && !tl_file_exists(t7));
  /* a shard range that leaves element 0 uncovered, and one past the end */
  CHECK(tl_ckpt_begin(&w, &D, dir, 8) == 0);
  CHECK(tl_ckpt_add_f32_sharded(w, "s", 1, s4, 1, 3, x) == -1 && strstr(tl_errmsg(), "no rank holds element 0"));
  tl_ckpt_abort(w);
  CHECK(tl_ckpt_begin(&w, &D, dir, 8) == 0);
  CHECK(tl_ckpt_add_f32_sharded(w, "s", 1, s4, 2, 3, x) == -1 && strstr(tl_errmsg(), "exceeds 4 elements"));
  tl_ckpt_abort(w);
  CHECK(!tl_file_exists(p7));
  free(p7);
  free(t7);
  free(dir);
}

static void test_compat(const char *work) {
  char *dir = tl_path_join(work, "compat");
  rm_dir_files(dir);
  CHECK(write_sample(dir, 1, 2) == 0);
  char *path = tl_ckpt_path(dir, 1);
  tl_ckpt_reader *r = NULL;
  CHECK(tl_ckpt_open(&r, path, true) == 0);
  if (!r) return;
  tl_ckpt_expect ok[1] = {{"model/config_hash", "123456789"}}, wrong[1] = {{"model/config_hash", "abc"}};
  tl_ckpt_expect missing[1] = {{"model/unembed_hash", "x"}};
  const char *keys[3] = {"model.name", "max_seq_len", "optim.lr"};
  const char *same = "{\"model.name\": \"gpt2\", \"max_seq_len\": 128, \"optim\": {\"lr\": 1.0}, \"other\": 5}";
  const char *diff = "{\"model.name\": \"gpt2\", \"max_seq_len\": 256, \"optim\": {\"lr\": 1.0}}";
  const char *difflr = "{\"model.name\": \"gpt2\", \"max_seq_len\": 128, \"optim\": {\"lr\": 0.5}}";
  CHECK(tl_ckpt_check_compat(r, ok, 1, "run/config", same, keys, 3, false) == 0);
  CHECK(tl_ckpt_check_compat(r, wrong, 1, "run/config", same, keys, 3, false) == -1 &&
        strstr(tl_errmsg(), "model/config_hash is '123456789' in the checkpoint but 'abc' in this run"));
  CHECK(tl_ckpt_check_compat(r, wrong, 1, "run/config", same, keys, 3, true) == 0);
  CHECK(tl_ckpt_check_compat(r, missing, 1, "run/config", same, keys, 0, false) == -1 &&
        strstr(tl_errmsg(), "is missing"));
  CHECK(tl_ckpt_check_compat(r, ok, 1, "run/config", diff, keys, 3, false) == -1 &&
        strstr(tl_errmsg(), "config max_seq_len is 128 in the checkpoint but 256 in this run"));
  CHECK(tl_ckpt_check_compat(r, ok, 1, "run/config", difflr, keys, 3, false) == -1 &&
        strstr(tl_errmsg(), "config optim.lr is 1 in the checkpoint but 0.5"));
  CHECK(tl_ckpt_check_compat(r, NULL, 0, "run/config", diff, keys, 3, true) == 0);
  CHECK(tl_ckpt_check_compat(r, NULL, 0, "run/config", "not json", keys, 3, false) == -1);
  tl_ckpt_close(r);
  free(path);
  free(dir);
}

/* Adds to a valid checkpoint a dataset that declares `dims` but stores no data
 * (chunked, never written), with a crc32 attribute, as a crafted file would. */
static void add_hollow_dataset(const char *path, const char *name, int nd, const hsize_t *dims) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0);
  hsize_t chunk[2] = {64, 64};
  hid_t sp = H5Screate_simple(nd, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(pl, nd, chunk);
  H5Pset_alloc_time(pl, H5D_ALLOC_TIME_INCR);
  hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
  CHECKF(ds >= 0, "cannot create the crafted dataset %s", name);
  hsize_t one = 1;
  hid_t asp = H5Screate_simple(1, &one, NULL);
  hid_t a = H5Acreate2(ds, "crc32", H5T_STD_U64LE, H5S_SCALAR, H5P_DEFAULT, H5P_DEFAULT);
  uint64_t zero = 0;
  H5Awrite(a, H5T_NATIVE_UINT64, &zero);
  H5Aclose(a), H5Sclose(asp), H5Dclose(ds), H5Pclose(pl), H5Sclose(sp), H5Fclose(f);
}

/* Declared shapes are not trusted: a dataset that claims 2^40 elements with none
 * stored is refused at once (not CRC-checked for ever), one whose shape product
 * wraps around 2^64 is refused, and neither is readable. */
static void test_declared_sizes(const char *work) {
  char *dir = tl_path_join(work, "hollow");
  rm_dir_files(dir);
  CHECK(write_sample(dir, 3, 2) == 0);
  char *path = tl_ckpt_path(dir, 3);
  hsize_t big[1] = {(hsize_t)1 << 40};
  add_hollow_dataset(path, "lens/huge", 1, big);
  tl_ckpt_reader *r = NULL;
  double t0 = tl_now();
  CHECK(tl_ckpt_open(&r, path, true) == -1);
  CHECKF(strstr(tl_errmsg(), "lens/huge") && strstr(tl_errmsg(), "declares 1099511627776 elements"), "%s", tl_errmsg());
  CHECKF(tl_now() - t0 < 5, "refusing a hollow dataset took %.1f s", tl_now() - t0);
  CHECK(tl_ckpt_open(&r, path, false) == 0);
  tl_ckpt_info info;
  CHECK(tl_ckpt_info_of(r, "lens/huge", &info) == -1 && strstr(tl_errmsg(), "stores 0 bytes"));
  float x;
  CHECK(tl_ckpt_read_f32(r, "lens/huge", 0, 1, &x) == -1);
  CHECK(tl_ckpt_read_f32(r, "lens/0/bias", 0, 1, &x) == 0); /* the rest stays readable */
  tl_ckpt_close(r);
  CHECK(write_sample(dir, 4, 2) == 0);
  free(path);
  path = tl_ckpt_path(dir, 4);
  hsize_t wrap[2] = {((hsize_t)1 << 57) + 64, ((hsize_t)1 << 57) + 64}; /* product = 4096 mod 2^64 */
  add_hollow_dataset(path, "lens/wrap", 2, wrap);
  CHECK(tl_ckpt_open(&r, path, false) == 0);
  CHECK(tl_ckpt_info_of(r, "lens/wrap", &info) == -1 && strstr(tl_errmsg(), "overflows"));
  tl_ckpt_close(r);
  CHECK(tl_ckpt_open(&r, path, true) == -1 && strstr(tl_errmsg(), "lens/wrap"));
  free(path);
  free(dir);
}

/* A checkpoint of 8 items of 256 kB */
static int write_big(const char *dir, uint64_t step) {
  enum { N = 65536 };
  float *v = tl_malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) v[i] = (float)i;
  tl_ckpt_writer *w;
  int rc = tl_ckpt_begin(&w, &D, dir, step);
  uint64_t shape[1] = {N};
  for (int k = 0; k < 8 && rc == 0; k++) {
    char name[32];
    snprintf(name, sizeof name, "big/%d", k);
    rc = tl_ckpt_add_f32(w, name, 1, shape, v);
  }
  free(v);
  return rc == 0 ? tl_ckpt_commit(w, 0, NULL) : (tl_ckpt_abort(w), -1);
}

/* Progress of a write that takes long, forced here by a threshold of 0 s: on a
 * file (not a terminal) plain lines naming the checkpoint, the last at 100%
 * after the commit; the second write of a folder takes the first's size as its
 * total (percentages at 10% steps); with the default threshold a quick write says
 * nothing. */
static void test_progress(const char *work) {
  char *dir = tl_path_join(work, "progress"), *log = tl_path_join(work, "progress.log");
  rm_dir_files(dir);
  fflush(stderr);
  int saved = dup(2);
  FILE *f = fopen(log, "w+");
  CHECK(f != NULL && saved >= 0);
  if (!f || saved < 0) return;
  dup2(fileno(f), 2);
  tl_log_set_level(TL_LOG_INFO);
  setenv("TLENS_CKPT_PROGRESS_AFTER", "0", 1);
  CHECK(write_big(dir, 1) == 0);
  CHECK(write_big(dir, 2) == 0);
  unsetenv("TLENS_CKPT_PROGRESS_AFTER");
  CHECK(write_big(dir, 3) == 0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  tl_log_set_level(TL_LOG_ERROR);
  fclose(f);
  char *text = NULL;
  size_t n = 0;
  CHECK(tl_read_file(log, &text, &n) == 0);
  if (text) {
    CHECKF(strstr(text, "writing checkpoint step_00000001.h5 ") != NULL, "%s", text);
    CHECKF(strstr(text, "writing checkpoint step_00000002.h5 ") != NULL, "%s", text);
    CHECKF(strstr(text, "step_00000003") == NULL, "a quick write reported progress: %s", text);
    /* each write ends on one line at 100% with its rate, after the commit */
    int done = 0;
    for (const char *q = text; (q = strstr(q, "(100%) | ")); q++) done++;
    CHECKF(done == 2, "%d lines at 100%%: %s", done, text);
    /* the first write knows no total: its first line says how much so far */
    CHECKF(strstr(text, "writing checkpoint step_00000001.h5 262 kB so far | ") != NULL, "%s", text);
    /* the second takes the first's size (a little more than its 2097 kB of data) */
    const char *second = strstr(text, "writing checkpoint step_00000002.h5 ");
    long a = -1, b = -1;
    int pct = -1;
    if (second) sscanf(second, "writing checkpoint step_00000002.h5 %ld/%ld (%d%%)", &a, &b, &pct);
    CHECKF(a == 262 && b >= 2097 && b < 2200 && pct == (int)(100 * a / b), "second write's first line: %ld/%ld (%d%%)", a, b, pct);
  }
  free(text);
  free(dir);
  free(log);
}

int main(int argc, char **argv) {
  if (tl_dist_init(&D, &argc, &argv) != 0) return fprintf(stderr, "%s\n", tl_errmsg()), 1;
  if (argc == 3 && strcmp(argv[1], "--sample") == 0) {
    int rc = write_sample(argv[2], 42, 2);
    if (rc) fprintf(stderr, "%s\n", tl_errmsg());
    tl_dist_finalize(&D);
    return rc ? 1 : 0;
  }
  if (argc != 2) return fprintf(stderr, "usage: test_ckpt WORKDIR | --sample DIR\n"), 2;
  tl_log_set_level(TL_LOG_ERROR); /* the skipped-file warnings are expected here */
  test_crc_combine();
  test_round_trip(argv[1]);
  test_rotation(argv[1]);
  test_damaged(argv[1]);
  test_writer_errors(argv[1]);
  test_compat(argv[1]);
  test_declared_sizes(argv[1]);
  test_progress(argv[1]);
  tl_dist_finalize(&D);
  return tl_test_finish("test_ckpt");
}
