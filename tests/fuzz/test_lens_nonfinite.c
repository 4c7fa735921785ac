/* A lens folder whose params.pt holds NaN or Inf is refused on load, with one line
 * naming the file, the tensor and the element (a translator holding either turns
 * every prediction through it into NaN). Usage: test_lens_nonfinite WORKDIR */
#include <math.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/export.h"

int main(int argc, char **argv) {
  CHECK(argc == 2);
  const int L = 2, d = 4, per = d * d + d;
  float params[2 * (4 * 4 + 4)];
  for (int i = 0; i < L * per; i++) params[i] = (float)(i % 7) * 0.25f - 0.5f;
  tl_lens_config c = {.base_model_name_or_path = "m", .d_model = d, .num_hidden_layers = L, .bias = true};
  const struct {
    int at;
    float v;
    const char *tensor, *what;
  } cases[] = {
      {3, NAN, "'0.weight'", "NaN at element 3"},
      {per + d * d + 1, INFINITY, "'1.bias'", "Inf at element 1"},
      {per + 5, -INFINITY, "'1.weight'", "Inf at element 5"},
  };
  char *dir = tl_sprintf("%s/lens", argv[1]);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    float bad[sizeof params / sizeof params[0]];
    memcpy(bad, params, sizeof params);
    bad[cases[k].at] = cases[k].v;
    CHECK(tl_lens_dir_save(dir, &c, bad, TL_F32) == 0);
    tl_lens_config got;
    float *p = (float *)1;
    tl_clear_error();
    CHECK(tl_lens_dir_load(dir, NULL, &got, &p, NULL) == -1 && p == NULL);
    const char *e = tl_errmsg();
    CHECKF(strstr(e, "params.pt") && strstr(e, cases[k].tensor) && strstr(e, cases[k].what) && !strchr(e, '\n'),
           "message '%s'", e);
  }
  /* the same folder with finite weights loads */
  CHECK(tl_lens_dir_save(dir, &c, params, TL_F32) == 0);
  tl_lens_config got;
  float *p = NULL;
  CHECK(tl_lens_dir_load(dir, NULL, &got, &p, NULL) == 0 && p && !memcmp(p, params, sizeof params));
  free(p);
  tl_lens_config_free(&got);
  free(dir);
  return tl_test_finish("lens_nonfinite");
}
