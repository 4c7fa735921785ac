/* unembed_hash against the reference: the twelve hard cases of
 * golden/unembed_hash_cases.safetensors (expected hashes in its __metadata__, made by
 * tuned-lens with numpy 1.24.2) and the hash stored in each fixture lens config.json
 * for its model's unembedding. A few array_str texts are checked literally against
 * numpy's output so a failure shows where the formatting goes wrong. */
#include <string.h>

#include "tl_test.h"
#include "tlens/export.h"
#include "tlens/safetensors.h"

static void check_text(const float *a, int64_t r, int64_t c, const char *want) {
  char *got = tl_array_str_f32(a, r, c, 1);
  CHECKF(!strcmp(got, want), "array_str:\n%s\nexpected:\n%s", got, want);
  free(got);
}

int main(void) {
  const char *fx = tl_test_fixtures();
  char path[4096];

  /* the twelve reference cases */
  snprintf(path, sizeof path, "%s/golden/unembed_hash_cases.safetensors", fx);
  tl_safetensors st;
  CHECK(tl_st_open(&st, path) == 0);
  CHECK(st.n == 12);
  for (int i = 0; i < st.n; i++) {
    const tl_st_tensor *t = &st.tensors[i];
    const char *want = tl_st_meta(&st, t->name);
    CHECKF(want != NULL, "no expected hash for %s", t->name);
    CHECK(t->ndim == 2 && t->dtype == TL_F32);
    float *a = NULL;
    CHECK(tl_st_get_f32(&st, t->name, 2, t->shape, &a) == 0);
    char h[65];
    CHECK(tl_unembed_hash(a, t->shape[0], t->shape[1], h) == 0);
    CHECKF(want && !strcmp(h, want), "case %s: hash %s, expected %s", t->name, h, want ? want : "?");
    free(a);
  }
  tl_st_close(&st);

  /* each fixture model's W_U against its lens config */
  const char *models[3] = {"gpt2", "gpt_neox", "llama"};
  const char *wu[3] = {"transformer.wte.weight", "embed_out.weight", "lm_head.weight"};
  for (int m = 0; m < 3; m++) {
    snprintf(path, sizeof path, "%s/golden/%s/lens/config.json", fx, models[m]);
    tl_lens_config c;
    CHECK(tl_lens_config_read(path, &c) == 0);
    snprintf(path, sizeof path, "%s/golden/%s/model/model.safetensors", fx, models[m]);
    CHECK(tl_st_open(&st, path) == 0);
    int64_t shape[2] = {512, 64};
    float *w = NULL;
    CHECK(tl_st_get_f32(&st, wu[m], 2, shape, &w) == 0);
    char h[65];
    CHECK(w && tl_unembed_hash(w, 512, 64, h) == 0);
    CHECKF(c.unembed_hash && !strcmp(h, c.unembed_hash), "%s: hash %s, expected %s", models[m], h,
           c.unembed_hash ? c.unembed_hash : "null");
    free(w);
    tl_st_close(&st);
    tl_lens_config_free(&c);
  }

  /* literal numpy 1.24 outputs (np.array_str(np.array(..., np.float32), precision=1)) */
  float a1[6] = {0.25f, 0.75f, 0.35f, -0.04f, -0.0f, 1.0f};
  check_text(a1, 1, 6, "[[ 0.2  0.8  0.3 -0.  -0.   1. ]]");
  float a2[4] = {1e-4f, 1.0f, 2.0f, 3.0f}; /* min < 1e-4 in double: scientific */
  check_text(a2, 2, 2, "[[1.e-04 1.e+00]\n [2.e+00 3.e+00]]");
  float a3[4] = {0.001f, 1.01f, 2.0f, 3.0f}; /* max/min > 1000: scientific */
  check_text(a3, 2, 2, "[[1.e-03 1.e+00]\n [2.e+00 3.e+00]]");
  float a4[4] = {1e-5f, 1e10f, 0.0f, -0.0f};
  check_text(a4, 2, 2, "[[ 1.e-05  1.e+10]\n [ 0.e+00 -0.e+00]]");
  float a5[7] = {0.25f, 0.75f, 0.35f, -0.04f, -0.0f, NAN, -INFINITY};
  check_text(a5, 1, 7, "[[ 0.2  0.8  0.3 -0.  -0.   nan -inf]]");
  float a6[2] = {33993912.0f, 1.4e-45f}; /* integer digits printed exactly; subnormal */
  check_text(a6, 1, 2, "[[3.4e+07 1.4e-45]]");
  float a7[3] = {33993912.0f, 65536.5f, -40000.0f};
  check_text(a7, 1, 3, "[[33993912.     65536.5   -40000. ]]");
  /* 15 elements of width 4 wrap after 14 at column 75 with a 2-space indent */
  float a8[15];
  for (int i = 0; i < 15; i++) a8[i] = (float)i * 0.5f - 3.0f;
  check_text(a8, 1, 15,
             "[[-3.  -2.5 -2.  -1.5 -1.  -0.5  0.   0.5  1.   1.5  2.   2.5  3.   3.5\n   4. ]]");
  return tl_test_finish("export_hash");
}
