/* Hub ids resolved from a Hugging Face cache built here by hand as the hub client
 * builds it: blobs/<sha256> holding the files (the stories260k fixture),
 * snapshots/<commit>/<file> symbolic links to ../../blobs/<sha256>, and refs/<name>
 * files holding a commit (main, a tag, refs/pr/1). Checked: the revision by branch,
 * tag, full commit and unique commit prefix; an ambiguous prefix, an unknown
 * revision and an id not cached are one-line errors naming what was searched and
 * the huggingface-cli command; the cache is found through HF_HUB_CACHE, HF_HOME
 * and HOME in that order; a local folder is returned as it is; the resolved
 * snapshot loads and gives the fixture's logits. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

#define COMMIT_A "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
#define COMMIT_A2 "a1ffffffffffffffffffffffffffffffffffffff" /* shares the prefix "a1" with A */
#define COMMIT_B "b0c4d1e2f3a4b5c6d7e8f90123456789abcdef01"
#define ID "tl-test/stories260k"

static void write_text(const char *path, const char *text) {
  CHECKF(tl_write_file_atomic(path, text, strlen(text)) == 0, "%s", tl_errmsg());
}

/* <root>/models--tl-test--stories260k with the three snapshots and the refs. */
static void make_cache(const char *root, const char *fixture) {
  const char *files[] = {"config.json", "model.safetensors"};
  const char *commits[] = {COMMIT_A, COMMIT_A2, COMMIT_B};
  char *repo = tl_sprintf("%s/models--tl-test--stories260k", root);
  char *blobs = tl_sprintf("%s/blobs", repo), *refs = tl_sprintf("%s/refs/pr", repo);
  CHECK(tl_mkdirs(blobs) == 0 && tl_mkdirs(refs) == 0);
  for (int f = 0; f < 2; f++) {
    char *src = tl_sprintf("%s/%s", fixture, files[f]), *data = NULL, hash[65];
    size_t len = 0;
    CHECK(tl_read_file(src, &data, &len) == 0);
    tl_sha256_hex(data, len, hash);
    char *blob = tl_sprintf("%s/%s", blobs, hash), *target = tl_sprintf("../../blobs/%s", hash);
    CHECK(tl_write_file_atomic(blob, data, len) == 0);
    for (int c = 0; c < 3; c++) {
      char *snap = tl_sprintf("%s/snapshots/%s", repo, commits[c]), *link = tl_sprintf("%s/%s", snap, files[f]);
      CHECK(tl_mkdirs(snap) == 0);
      unlink(link);
      CHECKF(symlink(target, link) == 0, "symlink %s", link);
      free(snap), free(link);
    }
    free(src), free(data), free(blob), free(target);
  }
  char *p = tl_sprintf("%s/refs/main", repo);
  write_text(p, COMMIT_A); /* as the hub client writes it: no newline */
  free(p);
  p = tl_sprintf("%s/refs/v1.0", repo);
  write_text(p, COMMIT_B "\n");
  free(p);
  p = tl_sprintf("%s/refs/pr/1", repo);
  write_text(p, COMMIT_B);
  free(p);
  free(repo), free(blobs), free(refs);
}

/* resolve(name, revision) gives <root>/models--tl-test--stories260k/snapshots/<commit>. */
static void expect_snapshot(const char *root, const char *revision, const char *commit) {
  char *dir = NULL, *want = tl_sprintf("%s/models--tl-test--stories260k/snapshots/%s", root, commit);
  int rc = tl_model_resolve(ID, revision, &dir);
  CHECKF(rc == 0 && dir && !strcmp(dir, want), "revision %s: got %s (%s), want %s", revision ? revision : "(none)",
         dir ? dir : "nothing", rc ? tl_errmsg() : "ok", want);
  free(dir), free(want);
}

/* resolve fails with one line containing each of want[0..n). */
static void expect_error(const char *name, const char *revision, const char *const *want, int n) {
  char *dir = NULL;
  int rc = tl_model_resolve(name, revision, &dir);
  const char *msg = rc ? tl_errmsg() : "(resolved)";
  int ok = rc != 0 && dir == NULL && !strchr(msg, '\n');
  for (int i = 0; i < n; i++) ok = ok && strstr(msg, want[i]);
  CHECKF(ok, "%s @ %s: got '%s'", name, revision ? revision : "(none)", msg);
  if (rc) fprintf(stderr, "%s @ %s: %s\n", name, revision ? revision : "(none)", msg);
  free(dir);
}

int main(void) {
  const char *w = getenv("WORK");
  char *work = tl_strdup(w ? w : "work_model_resolve");
  char *fixture = tl_sprintf("%s/models/stories260k", tl_test_fixtures());
  char *hub = tl_sprintf("%s/hub", work), *hf_home = tl_sprintf("%s/hf_home", work);
  char *home = tl_sprintf("%s/home", work), *home_hub = tl_sprintf("%s/.cache/huggingface/hub", home);
  char *hf_home_hub = tl_sprintf("%s/hub", hf_home);
  make_cache(hub, fixture);
  make_cache(hf_home_hub, fixture);
  make_cache(home_hub, fixture);
  unsetenv("HUGGINGFACE_HUB_CACHE"), unsetenv("XDG_CACHE_HOME");

  /* revisions, through HF_HUB_CACHE */
  setenv("HF_HUB_CACHE", hub, 1);
  setenv("HF_HOME", hf_home, 1);
  expect_snapshot(hub, NULL, COMMIT_A);
  expect_snapshot(hub, "main", COMMIT_A);
  expect_snapshot(hub, "v1.0", COMMIT_B); /* a tag (its ref ends in a newline) */
  expect_snapshot(hub, "pr/1", COMMIT_B);
  expect_snapshot(hub, COMMIT_B, COMMIT_B);
  expect_snapshot(hub, "b0c4d1", COMMIT_B); /* a commit prefix */
  expect_snapshot(hub, "a1b2", COMMIT_A);
  const char *ambiguous[] = {"revision 'a1' is the prefix of 2 cached commits"};
  expect_error(ID, "a1", ambiguous, 1);
  const char *unknown[] = {"revision 'nope' is not in the Hugging Face cache", "models--tl-test--stories260k",
                           "huggingface-cli download tl-test/stories260k --revision nope"};
  expect_error(ID, "nope", unknown, 3);
  const char *missing[] = {"model 'tl-test/absent' is not a local folder and not in the Hugging Face cache",
                           "models--tl-test--absent", "HF_HUB_CACHE", "huggingface-cli download tl-test/absent"};
  expect_error("tl-test/absent", NULL, missing, 4);
  const char *escape[] = {"revision '../x' is not a branch, tag or commit"};
  expect_error(ID, "../x", escape, 1);
  const char *not_dir[] = {"not a directory"};
  expect_error("no/such/folder", NULL, not_dir, 1);

  /* the snapshot is a model folder (its files are links into blobs/) */
  char *dir = NULL;
  CHECK(tl_model_resolve(ID, "v1.0", &dir) == 0);
  tl_model *m = NULL;
  CHECKF(dir && tl_model_load(&m, dir) == 0, "%s", tl_errmsg());
  if (m) {
    char *fwd = tl_sprintf("%s/forward.safetensors", fixture);
    tl_safetensors ref;
    CHECK(tl_st_open(&ref, fwd) == 0);
    const tl_st_tensor *it = tl_st_find(&ref, "input_ids");
    int B = (int)it->shape[0], T = (int)it->shape[1], V = tl_model_cfg(m)->vocab;
    int64_t *ids64, lshape[3] = {B, T, V};
    float *want, *logits = malloc(sizeof(float) * B * T * V);
    int32_t *ids = malloc(sizeof(int32_t) * B * T);
    CHECK(tl_st_get_i64(&ref, "input_ids", 2, it->shape, &ids64) == 0);
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i];
    CHECK(tl_st_get_f32(&ref, "logits", 3, lshape, &want) == 0);
    CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == 0);
    double e = tl_test_maxerr(logits, want, (long)B * T * V);
    CHECKF(e < 1e-4, "logits through the cache: max error %.3g", e);
    fprintf(stderr, "resolved %s: logits max error %.3g\n", dir, e);
    tl_st_close(&ref);
    tl_model_free(m);
    free(fwd), free(ids64), free(want), free(logits), free(ids);
  }
  free(dir);

  /* a local folder is itself */
  CHECK(tl_model_resolve(fixture, NULL, &dir) == 0 && !strcmp(dir, fixture));
  free(dir);

  /* which cache: HF_HOME/hub without HF_HUB_CACHE, then ~/.cache/huggingface/hub */
  unsetenv("HF_HUB_CACHE");
  expect_snapshot(hf_home_hub, NULL, COMMIT_A);
  unsetenv("HF_HOME");
  setenv("HOME", home, 1);
  expect_snapshot(home_hub, "v1.0", COMMIT_B);

  free(work), free(fixture), free(hub), free(hf_home), free(home), free(home_hub), free(hf_home_hub);
  return tl_test_finish("test_model_resolve");
}
