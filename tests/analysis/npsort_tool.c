/* Reads cases from stdin, one per line: "k n v0 v1 ... v(n-1)", and prints for each
 * three lines: np.argpartition(v, n-k), np.argsort(v), and the top-k indices, as
 * the analysis module computes them (for comparison with numpy itself). */
#include <stdio.h>
#include <stdlib.h>

#include "analysis/analysis_internal.h"

static void put(const int32_t *a, long n) {
  for (long i = 0; i < n; i++) printf(i ? " %d" : "%d", a[i]);
  printf("\n");
}

int main(void) {
  long k, n;
  while (scanf("%ld %ld", &k, &n) == 2) {
    float *v = malloc((size_t)n * sizeof *v + 1);
    int32_t *idx = malloc((size_t)n * sizeof *idx + 1), top[TL_TRAJ_TOPK_MAX];
    for (long i = 0; i < n; i++)
      if (scanf("%f", &v[i]) != 1) return 2;
    tl_np_argpartition(v, idx, n, n - k);
    put(idx, n);
    tl_np_argsort(v, idx, n);
    put(idx, n);
    int m = tl_np_topk(v, n, (int)k, idx, top);
    put(top, m);
    free(v);
    free(idx);
  }
  return 0;
}
