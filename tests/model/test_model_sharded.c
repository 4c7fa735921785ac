/* Sharded checkpoints: the golden llama model split into two safetensors shards
 * plus model.safetensors.index.json loads and still matches the HF goldens;
 * an index naming a missing shard or lacking a tensor is a one-line error. */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

/* A stand-in for a sharded runner: the model's own layer blobs are dropped and
 * every block's weights come from this store through the layer hook. */
typedef struct {
  float **store;
  float *buf;
  size_t numel;
  int fetched, released, outstanding;
  int fail_at; /* the layer whose fetch fails, -1 for none */
} fake_gather;
static int hook_fetch(void *ctx, tl_model *m, int layer, const float **blob) {
  fake_gather *g = ctx;
  if (layer == g->fail_at) return tl_fail("gather of layer %d failed", layer);
  memcpy(g->buf, g->store[layer], g->numel * sizeof(float)); /* "all-gather" into a reused buffer */
  g->fetched++;
  g->outstanding++;
  *blob = g->buf;
  return 0;
}
static int hook_release(void *ctx, tl_model *m, int layer, const float *blob) {
  fake_gather *g = ctx;
  g->released += blob == g->buf;
  g->outstanding--;
  memset(g->buf, 0xff, g->numel * sizeof(float)); /* NaNs: any later use would show */
  return 0;
}

static int failing_attention(float *out, const float *qkv, int B, int T, int H, int KV, int hd, float scale,
                             int window) {
  return tl_fail("attention kernel failed (test)");
}

static void write_index(const char *dir, const tl_safetensors *st, int drop) {
  tl_buf b = {0};
  tl_buf_printf(&b, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
  int first = 1;
  for (int i = 0; i < st->n; i++) {
    if (i == drop) continue;
    tl_buf_printf(&b, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", first ? "" : ", ", st->tensors[i].name,
                  i % 2 + 1);
    first = 0;
  }
  tl_buf_printf(&b, "}}");
  char *p = tl_path_join(dir, "model.safetensors.index.json");
  CHECK(tl_write_file_atomic(p, b.data, b.len) == 0);
  free(p);
  tl_buf_free(&b);
}

int main(void) {
  const char *fx = tl_test_fixtures(), *bin = getenv("TESTBIN");
  char *src = tl_path_join(fx, "golden/llama/model"), *fwd = tl_path_join(fx, "golden/llama/forward.safetensors");
  char *dir = tl_sprintf("%s/work/model_sharded", bin ? bin : ".");
  tl_mkdirs(dir);
  char *srcst = tl_path_join(src, "model.safetensors"), *srccfg = tl_path_join(src, "config.json");
  tl_safetensors st;
  CHECK(tl_st_open(&st, srcst) == 0);
  /* tensors alternate between the two shards */
  for (int s = 0; s < 2; s++) {
    tl_st_writer *w = tl_st_writer_new();
    for (int i = s; i < st.n; i += 2)
      tl_st_writer_add(w, st.tensors[i].name, st.tensors[i].dtype, st.tensors[i].ndim, st.tensors[i].shape,
                       st.tensors[i].data);
    char *p = tl_sprintf("%s/model-0000%d-of-00002.safetensors", dir, s + 1);
    CHECK(tl_st_writer_save(w, p) == 0);
    tl_st_writer_free(w);
    free(p);
  }
  char *cfg, *dstcfg = tl_path_join(dir, "config.json");
  size_t len;
  CHECK(tl_read_file(srccfg, &cfg, &len) == 0);
  CHECK(tl_write_file_atomic(dstcfg, cfg, len) == 0);
  write_index(dir, &st, -1);

  tl_model *m;
  CHECKF(tl_model_load(&m, dir) == 0, "%s", tl_errmsg());
  tl_safetensors ref;
  CHECK(tl_st_open(&ref, fwd) == 0);
  const tl_st_tensor *it = tl_st_find(&ref, "input_ids");
  int B = (int)it->shape[0], T = (int)it->shape[1], V = tl_model_cfg(m)->vocab;
  int64_t *ids64;
  CHECK(tl_st_get_i64(&ref, "input_ids", 2, it->shape, &ids64) == 0);
  int32_t *ids = malloc(sizeof(int32_t) * B * T);
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i];
  float *logits = malloc(sizeof(float) * B * T * V), *rl;
  int64_t ls[3] = {B, T, V};
  CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == 0);
  CHECK(tl_st_get_f32(&ref, "logits", 3, ls, &rl) == 0);
  double err = tl_test_maxerr(logits, rl, (long)B * T * V);
  CHECKF(err < 1e-4, "sharded logits max error %.3g", err);

  /* a backend op that fails ends the forward with its message (no crash, no
   * half-made logits used), and the model works again on a healthy backend */
  {
    tl_backend broken = *tl_backend_cpu();
    broken.attention = failing_attention;
    CHECK(tl_model_set_backend(m, &broken) == 0);
    CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == -1);
    CHECKF(strstr(tl_errmsg(), "attention kernel failed") != NULL, "%s", tl_errmsg());
    /* shapes beyond what a backend's kernels support are refused when it is set */
    tl_backend narrow = *tl_backend_cpu();
    narrow.name = "narrow";
    narrow.max_head_dim = tl_model_cfg(m)->head_dim - 1;
    CHECK(tl_model_set_backend(m, &narrow) == -1);
    CHECKF(strstr(tl_errmsg(), "head_dim") && strstr(tl_errmsg(), "narrow backend"), "%s", tl_errmsg());
    narrow.max_head_dim = 0;
    narrow.max_rot_dim = tl_model_cfg(m)->rot_dim > 0 ? tl_model_cfg(m)->rot_dim - 1 : 0;
    if (tl_model_cfg(m)->rot_dim > 1) CHECK(tl_model_set_backend(m, &narrow) == -1 && strstr(tl_errmsg(), "rotary"));
    CHECK(tl_model_set_backend(m, tl_backend_cpu()) == 0);
    CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == 0);
    CHECK(tl_test_maxerr(logits, rl, (long)B * T * V) < 1e-4);
  }

  /* the same forward with every layer's weights supplied by a hook */
  int L = tl_model_cfg(m)->n_layers;
  fake_gather g = {.numel = tl_model_layer_numel(m), .store = malloc(sizeof(float *) * L), .fail_at = -1};
  g.buf = malloc(g.numel * sizeof(float));
  for (int l = 0; l < L; l++) {
    g.store[l] = malloc(g.numel * sizeof(float));
    memcpy(g.store[l], tl_model_layer_blob(m, l), g.numel * sizeof(float));
    tl_model_set_layer_blob(m, l, NULL);
  }
  tl_layer_hook hook = {hook_fetch, hook_release, &g};
  tl_model_set_layer_hook(m, &hook);
  memset(logits, 0, sizeof(float) * B * T * V);
  CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == 0);
  double herr = tl_test_maxerr(logits, rl, (long)B * T * V);
  CHECKF(herr < 1e-4, "hooked logits max error %.3g", herr);
  CHECKF(g.fetched == L && g.released == L && g.outstanding == 0, "fetched %d released %d", g.fetched, g.released);
  /* a fetch that fails stops the forward with its message; nothing is released twice */
  g.fetched = g.released = 0;
  g.fail_at = L - 1;
  CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == -1);
  CHECKF(strstr(tl_errmsg(), "gather of layer") != NULL, "%s", tl_errmsg());
  CHECKF(g.fetched == L - 1 && g.released == L - 1 && g.outstanding == 0, "after a failed fetch: fetched %d released %d",
         g.fetched, g.released);
  for (int l = 0; l < L; l++) free(g.store[l]);
  free(g.store), free(g.buf);
  tl_model_free(m);

  /* an index that does not list one tensor */
  write_index(dir, &st, 3);
  CHECK(tl_model_load(&m, dir) != 0);
  CHECKF(strstr(tl_errmsg(), "model.safetensors.index.json") && strstr(tl_errmsg(), st.tensors[3].name),
         "%s", tl_errmsg());
  /* a missing shard file */
  write_index(dir, &st, -1);
  char *shard2 = tl_sprintf("%s/model-00002-of-00002.safetensors", dir);
  CHECK(remove(shard2) == 0);
  CHECK(tl_model_load(&m, dir) != 0);
  CHECKF(strstr(tl_errmsg(), "model-00002-of-00002.safetensors") != NULL, "%s", tl_errmsg());
  fprintf(stderr, "sharded logits max error %.3g; missing shard: %s\n", err, tl_errmsg());

  tl_st_close(&st);
  tl_st_close(&ref);
  free(ids), free(ids64), free(logits), free(rl), free(cfg), free(dstcfg), free(shard2);
  free(src), free(fwd), free(dir), free(srcst), free(srccfg);
  return tl_test_finish("test_model_sharded");
}
