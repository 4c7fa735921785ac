/* cmp_lens A B [tol]: loads two lens folders (config.json + params.pt) with the
 * export module and prints the largest difference of their parameters, relative
 * where |a| > 1 (absolute below). Exit 0 when it is <= tol (default 0: bitwise equal
 * values), 1 otherwise, 2 on a load error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tlens/core.h"
#include "tlens/export.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cmp_lens A B [tol]\n");
    return 2;
  }
  double tol = argc > 3 ? atof(argv[3]) : 0;
  tl_lens_config ca, cb;
  float *pa = NULL, *pb = NULL;
  if (tl_lens_dir_load(argv[1], NULL, &ca, &pa, NULL) != 0 || tl_lens_dir_load(argv[2], NULL, &cb, &pb, NULL) != 0) {
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
