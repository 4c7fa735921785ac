/* The real stories260k Llama reproduces HF's greedy generation (fixture greedy.json:
 * 64 new tokens from BOS), and its config/unembedding are exposed as expected. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/model.h"

int main(void) {
  char *dir = tl_path_join(tl_test_fixtures(), "models/stories260k");
  char *gpath = tl_path_join(dir, "greedy.json"), *text;
  size_t len;
  CHECK(tl_read_file(gpath, &text, &len) == 0);
  cJSON *j = cJSON_Parse(text);
  const cJSON *g = cJSON_GetObjectItem(j, "greedy_ids"), *p = cJSON_GetObjectItem(j, "prompt_ids");
  CHECK(cJSON_IsArray(g) && cJSON_IsArray(p));
  int np = cJSON_GetArraySize(p), total = cJSON_GetArraySize(g);
  CHECK(np == 1 && total == 65);
  int32_t prompt[1] = {(int32_t)cJSON_GetArrayItem(p, 0)->valuedouble};

  tl_model *m;
  CHECKF(tl_model_load(&m, dir) == 0, "%s", tl_errmsg());
  const tl_model_config *c = tl_model_cfg(m);
  CHECK(c->n_layers == 5 && c->d_model == 64 && c->n_heads == 8 && c->n_kv_heads == 4 && c->vocab == 512);
  CHECK(c->tied && c->norm == TL_NORM_RMSNORM);
  tl_unembed u;
  CHECK(tl_model_unembed(m, &u) == 0);
  CHECK(u.vocab == 512 && u.d_model == 64 && u.norm_b == NULL && u.b_U == NULL);

  int32_t *out = malloc(sizeof(int32_t) * total);
  CHECKF(tl_model_greedy(m, prompt, np, total - np, out) == 0, "%s", tl_errmsg());
  int mismatches = 0;
  for (int i = 0; i < total; i++) {
    int want = (int)cJSON_GetArrayItem(g, i)->valuedouble;
    if (out[i] != want) {
      if (!mismatches) fprintf(stderr, "first mismatch at %d: got %d want %d\n", i, out[i], want);
      mismatches++;
    }
  }
  CHECKF(mismatches == 0, "%d of %d greedy ids differ", mismatches, total);
  tl_model_free(m);
  free(out);
  cJSON_Delete(j);
  free(text);
  free(gpath);
  free(dir);
  return tl_test_finish("test_model_greedy");
}
