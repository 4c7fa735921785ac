/* Sharded weights: model.safetensors.index.json. A folder on tmpfs holds the golden
 * gpt2 model's config.json and its weights split into two shards; the input is the
 * index, and the folder is loaded with tl_model_load, as every command loads a model.
 * The index decides which shard each tensor is looked up in, so it is the part that
 * comes from outside here (the shards themselves are fuzzed by fuzz_safetensors).
 * `--write-seed DIR` (replay build) writes the folder's valid index into DIR. */
static int write_seed(const char *out_dir) __attribute__((unused));
#define FUZZ_SEED_WRITER write_seed
#include "fuzz.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

#include <cjson/cJSON.h>

#ifndef TLENS_FIXTURES
#define TLENS_FIXTURES ""
#endif

static const char *SHARD[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};

/* Splits the golden model into dir's two shards; returns the valid index (malloc'd). */
static char *make_shards(const char *dir) {
  char *src = tl_sprintf("%s/golden/gpt2/model/model.safetensors", TLENS_FIXTURES);
  tl_safetensors st;
  if (tl_st_open(&st, src) != 0) {
    fprintf(stderr, "fuzz_st_index: %s\n", tl_errmsg());
    abort();
  }
  tl_st_writer *w[2] = {tl_st_writer_new(), tl_st_writer_new()};
  cJSON *root = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(root, "weight_map");
  cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
  size_t total = 0;
  for (int i = 0; i < st.n; i++) {
    const tl_st_tensor *t = &st.tensors[i];
    int s = i >= st.n / 2;
    tl_st_writer_add(w[s], t->name, t->dtype, t->ndim, t->shape, t->data);
    cJSON_AddStringToObject(map, t->name, SHARD[s]);
    total += t->nbytes;
  }
  cJSON_AddNumberToObject(meta, "total_size", (double)total);
  for (int s = 0; s < 2; s++) {
    char *p = tl_sprintf("%s/%s", dir, SHARD[s]);
    fuzz_remember(p);
    if (tl_st_writer_save(w[s], p) != 0) abort();
    tl_st_writer_free(w[s]);
    free(p);
  }
  char *cfg_src = tl_sprintf("%s/golden/gpt2/model/config.json", TLENS_FIXTURES), *text;
  size_t len;
  if (tl_read_file(cfg_src, &text, &len) != 0) abort();
  char *cfg = tl_sprintf("%s/config.json", dir);
  fuzz_remember(cfg);
  if (tl_write_file_atomic(cfg, text, len) != 0) abort();
  free(cfg);
  free(text);
  free(cfg_src);
  char *index = cJSON_Print(root);
  cJSON_Delete(root);
  tl_st_close(&st);
  free(src);
  return index;
}

static char *model_dir;

static int write_seed(const char *out_dir) {
  char *dir = fuzz_shm_path("model");
  mkdir(dir, 0700);
  char *index = make_shards(dir);
  tl_mkdirs(out_dir);
  char *p = tl_sprintf("%s/index.json", out_dir);
  int rc = tl_write_file_atomic(p, index, strlen(index));
  free(p);
  free(index);
  free(dir);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  if (!model_dir) {
    model_dir = fuzz_shm_path("model");
    mkdir(model_dir, 0700);
    free(make_shards(model_dir));
  }
  char *index = tl_sprintf("%s/model.safetensors.index.json", model_dir);
  fuzz_remember(index);
  if (tl_write_file_atomic(index, data, size) != 0) abort();
  tl_model *m;
  if (tl_model_load(&m, model_dir) == 0) tl_model_free(m);
  free(index);
  return 0;
}
