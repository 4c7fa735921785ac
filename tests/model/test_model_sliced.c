/* tl_model_load_sliced (the FSDP loader): for 2, 3 and 5 slices of the fixture
 * models, every rank's slice of every layer equals that range of the layer blob a
 * whole load gives (itself checked against HF in model_golden_*), the slices tile
 * the blob exactly, no full layer blob is kept, the global weights (and with them
 * the logits through the unembedding) are the same, and bad slice numbers fail. */
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/model.h"

static void check_model(const char *dir) {
  tl_model *full = NULL;
  if (tl_model_load(&full, dir) != 0) {
    CHECKF(0, "%s: %s", dir, tl_errmsg());
    return;
  }
  const int L = tl_model_cfg(full)->n_layers;
  const size_t numel = tl_model_layer_numel(full);
  tl_unembed uf, us;
  tl_model_unembed(full, &uf);
  const int parts[] = {2, 3, 5};
  for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
    for (int l = 0; l < L; l++) {
      size_t covered = 0;
      for (int idx = 0; idx < parts[k]; idx++) {
        tl_model *m = NULL;
        if (tl_model_load_sliced(&m, dir, parts[k], idx) != 0) {
          CHECKF(0, "%s slice %d/%d: %s", dir, idx, parts[k], tl_errmsg());
          continue;
        }
        size_t off = 0, cnt = 0;
        float *s = tl_model_take_layer_slice(m, l, &off, &cnt);
        CHECKF(s != NULL && off == covered, "%s layer %d slice %d/%d: off %zu, expected %zu", dir, l, idx, parts[k],
               off, covered);
        if (s) CHECKF(memcmp(s, tl_model_layer_blob(full, l) + off, cnt * sizeof(float)) == 0,
                      "%s layer %d slice %d/%d differs from the whole load", dir, l, idx, parts[k]);
        CHECK(tl_model_layer_blob(m, l) == NULL);
        CHECK(tl_model_take_layer_slice(m, l, &off, &cnt) == NULL); /* taken once */
        tl_model_unembed(m, &us);
        CHECK(memcmp(us.W_U, uf.W_U, (size_t)uf.vocab * uf.d_model * sizeof(float)) == 0);
        covered += cnt;
        free(s);
        tl_model_free(m);
      }
      CHECKF(covered == numel, "%s layer %d: %d slices cover %zu of %zu", dir, l, parts[k], covered, numel);
    }
  }
  tl_model_free(full);
}

int main(void) {
  const char *fx = tl_test_fixtures();
  const char *models[] = {"golden/gpt_neox/model", "golden/llama/model", "golden/gpt2/model"};
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
    char *dir = tl_sprintf("%s/%s", fx, models[i]);
    check_model(dir);
    free(dir);
  }
  tl_model *m = NULL;
  char *dir = tl_sprintf("%s/%s", fx, models[0]);
  CHECK(tl_model_load_sliced(&m, dir, 0, 0) != 0 && m == NULL && strstr(tl_errmsg(), "slice"));
  /* a sliced model cannot run without a hook that gathers its layers: an error, not a crash */
  if (tl_model_load_sliced(&m, dir, 2, 0) == 0) {
    int32_t ids[4] = {1, 2, 3, 4};
    float *logits = malloc((size_t)4 * tl_model_cfg(m)->vocab * sizeof(float));
    CHECK(tl_model_forward(m, ids, 1, 4, NULL, logits) != 0 && strstr(tl_errmsg(), "no hook"));
    free(logits);
    tl_model_free(m);
    m = NULL;
  }
  CHECK(tl_model_load_sliced(&m, dir, 2, 2) != 0 && m == NULL);
  CHECK(tl_model_load_sliced(&m, dir, 2, -1) != 0 && m == NULL);
  free(dir);
  return tl_test_finish("test_model_sliced");
}
