/* cmp_lens A B [tol]: loads two lens folders (config.json + params.pt) with the
 * export module and prints the largest difference of their parameters, relative
 * where |a| > 1 (absolute below). Exit 0 when it is <= tol (default 0: bitwise equal
 * values), 1 otherwise, 2 on a load error.
 * B may also be FILE.safetensors:PREFIX, whose tensors PREFIX<i>.weight and
 * PREFIX<i>.bias are the reference (the PyTorch training-step goldens). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/safetensors.h"
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cmp_lens A B [tol]\n");
    return 2;
  }
  double tol = argc > 3 ? atof(argv[3]) : 0;
  tl_lens_config ca, cb;
  float *pa = NULL, *pb = NULL;
  if (tl_lens_dir_load(argv[1], NULL, &ca, &pa, NULL) != 0) {
    fprintf(stderr, "cmp_lens: %s\n", tl_errmsg());
    return 2;
  }
  const char *colon = strstr(argv[2], ".safetensors:");
  if (colon) { /* the reference comes from a goldens file */
    char *path = strndup(argv[2], (size_t)(colon - argv[2]) + 12);
    const char *prefix = colon + 13;
    tl_safetensors st;
    if (tl_st_open(&st, path) != 0) {
      fprintf(stderr, "cmp_lens: %s\n", tl_errmsg());
      return 2;
    }
    free(path);
    int d = ca.d_model, L = ca.num_hidden_layers;
    long per = (long)d * d + d;
    pb = malloc((size_t)L * per * sizeof(float));
    for (int i = 0; i < L; i++) {
      char nw[256], nb[256];
      int64_t ws[2] = {d, d}, bs[1] = {d};
      float *w = NULL, *b = NULL;
      snprintf(nw, sizeof nw, "%s%d.weight", prefix, i);
      snprintf(nb, sizeof nb, "%s%d.bias", prefix, i);
      if (tl_st_get_f32(&st, nw, 2, ws, &w) != 0 || tl_st_get_f32(&st, nb, 1, bs, &b) != 0) {
        fprintf(stderr, "cmp_lens: %s\n", tl_errmsg());
        return 2;
      }
      memcpy(pb + i * per, w, (size_t)d * d * sizeof(float));
      memcpy(pb + i * per + (long)d * d, b, (size_t)d * sizeof(float));
      free(w);
      free(b);
    }
    tl_st_close(&st);
    cb = ca;
    cb.base_model_name_or_path = cb.base_model_revision = cb.unembed_hash = NULL;
  } else if (tl_lens_dir_load(argv[2], NULL, &cb, &pb, NULL) != 0) {
    fprintf(stderr, "cmp_lens: %s\n", tl_errmsg());
    return 2;
  }
  if (ca.d_model != cb.d_model || ca.num_hidden_layers != cb.num_hidden_layers) {
    fprintf(stderr, "cmp_lens: shapes differ\n");
    return 1;
  }
  long n = (long)ca.num_hidden_layers * ((long)ca.d_model * ca.d_model + ca.d_model);
  double worst = 0, maxabs = 0;
  for (long i = 0; i < n; i++) {
    double a = pa[i], b = pb[i], d = fabs(a - b);
    if (fabs(a) > 1) d /= fabs(a);
    if (d != d) d = INFINITY;
    if (d > worst) worst = d;
    if (fabs(a) > maxabs) maxabs = fabs(a);
  }
  printf("max difference %.3g over %ld parameters (largest |value| %.3g)\n", worst, n, maxabs);
  free(pa);
  free(pb);
  tl_lens_config_free(&ca);
  tl_lens_config_free(&cb);
  return worst <= tol ? 0 : 1;
}
