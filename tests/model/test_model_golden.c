/* Golden forward test: the model's hidden states and logits match those written
 * by HF transformers (fixtures golden/<arch>/forward.safetensors, or the real
 * stories260k model) within 1e-4, both in-process and through `tlens hidden`.
 * usage: test_model_golden <model dir> <forward.safetensors> */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

/* Compares every hidden_states.<i> and logits of `got` with `ref`. */
static void compare_file(const tl_safetensors *ref, const tl_safetensors *got, int L, const char *what) {
  for (int i = 0; i <= L + 1; i++) {
    char name[64];
    if (i <= L) snprintf(name, sizeof name, "hidden_states.%d", i);
    else snprintf(name, sizeof name, "logits");
    const tl_st_tensor *r = tl_st_find(ref, name);
    CHECKF(r != NULL, "reference lacks %s", name);
    if (!r) continue;
    float *a = NULL, *b = NULL;
    int ok = tl_st_get_f32(got, name, r->ndim, r->shape, &a) == 0;
    CHECKF(ok, "%s: %s: %s", what, name, tl_errmsg());
    if (ok && tl_st_get_f32(ref, name, r->ndim, r->shape, &b) == 0) {
      double err = tl_test_maxerr(a, b, tl_numel(r->ndim, r->shape));
      CHECKF(err < 1e-4, "%s: %s max error %.3g", what, name, err);
      fprintf(stderr, "%s: %-16s max error %.3g\n", what, name, err);
    }
    free(a);
    free(b);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <model dir> <forward.safetensors>\n", argv[0]);
    return 2;
  }
  const char *fx = tl_test_fixtures();
  char *dir = tl_path_join(fx, argv[1]), *fwd = tl_path_join(fx, argv[2]);
  tl_model *m;
  if (tl_model_load(&m, dir)) {
    fprintf(stderr, "load failed: %s\n", tl_errmsg());
    return 1;
  }
  const tl_model_config *c = tl_model_cfg(m);
  tl_safetensors ref;
  CHECK(tl_st_open(&ref, fwd) == 0);
  const tl_st_tensor *ids_t = tl_st_find(&ref, "input_ids");
  CHECK(ids_t && ids_t->ndim == 2);
  int B = (int)ids_t->shape[0], T = (int)ids_t->shape[1], L = c->n_layers, d = c->d_model, V = c->vocab;
  int64_t *ids64;
  CHECK(tl_st_get_i64(&ref, "input_ids", 2, ids_t->shape, &ids64) == 0);
  int32_t *ids = malloc(sizeof(int32_t) * B * T);
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i];

  /* in-process forward */
  size_t n = (size_t)B * T * d;
  float *hidden = malloc(sizeof(float) * n * (L + 1)), *logits = malloc(sizeof(float) * B * T * V);
  CHECKF(tl_model_forward(m, ids, B, T, hidden, logits) == 0, "%s", tl_errmsg());
  for (int i = 0; i <= L; i++) {
    char name[64];
    snprintf(name, sizeof name, "hidden_states.%d", i);
    float *r;
    int64_t shape[3] = {B, T, d};
    CHECK(tl_st_get_f32(&ref, name, 3, shape, &r) == 0);
    double err = tl_test_maxerr(hidden + i * n, r, (long)n);
    CHECKF(err < 1e-4, "%s max error %.3g", name, err);
    free(r);
  }
  float *rl;
  int64_t lshape[3] = {B, T, V};
  CHECK(tl_st_get_f32(&ref, "logits", 3, lshape, &rl) == 0);
  double lerr = tl_test_maxerr(logits, rl, (long)B * T * V);
  CHECKF(lerr < 1e-4, "logits max error %.3g", lerr);
  fprintf(stderr, "in-process: logits max error %.3g\n", lerr);

  /* a second call reuses the scratch buffers and must give the same result */
  float *logits2 = malloc(sizeof(float) * B * T * V);
  CHECK(tl_model_forward(m, ids, B, T, NULL, logits2) == 0);
  CHECK(memcmp(logits, logits2, sizeof(float) * B * T * V) == 0);

  /* the same through the command line */
  const char *tlens = getenv("TLENS"), *bin = getenv("TESTBIN");
  if (tlens && bin) {
    /* WORK is this test's own folder (every golden model folder is named "model") */
    const char *wenv = getenv("WORK");
    char *work = wenv ? tl_strdup(wenv) : tl_sprintf("%s/work/model_golden", bin);
    tl_mkdirs(work);
    char *out = tl_sprintf("%s/hidden.safetensors", work);
    char *cmd = tl_sprintf("'%s' hidden --model '%s' --input '%s' --output '%s'", tlens, dir, fwd, out);
    CHECKF(system(cmd) == 0, "%s", cmd);
    tl_safetensors got;
    if (tl_st_open(&got, out) == 0) {
      compare_file(&ref, &got, L, "tlens hidden");
      tl_st_close(&got);
    } else {
      CHECKF(0, "%s", tl_errmsg());
    }
    free(cmd);
    free(out);
    free(work);
  }
  tl_st_close(&ref);
  tl_model_free(m);
  free(ids);
  free(ids64);
  free(hidden);
  free(logits);
  free(logits2);
  free(rl);
  free(dir);
  free(fwd);
  return tl_test_finish("test_model_golden");
}
