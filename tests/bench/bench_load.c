/* Loads one model folder and prints how long that took and the process's peak
 * resident memory, for tests/bench/bench_load.sh (one process per case, so that
 * each peak is its own).
 *
 * usage: bench_load DIR [auto|float32|bfloat16|float16]
 * prints: load_s=<seconds> peak_rss_mb=<MB> held=<dtype> params=<count> */
#include <stdio.h>
#include <sys/resource.h>

#include "tlens/core.h"
#include "tlens/model.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [auto|float32|bfloat16|float16]\n", argv[0]);
    return 2;
  }
  int hold = TL_F32;
  if (argc > 2 && tl_model_parse_precision(argv[2], &hold)) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return 2;
  }
  tl_model_hold_precision(hold);
  tl_model *m = NULL;
  double t0 = tl_now();
  if (tl_model_load(&m, argv[1])) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return 1;
  }
  double t = tl_now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("load_s=%.3f peak_rss_mb=%.1f held=%s params=%lld\n", t, (double)ru.ru_maxrss / 1024.0,
         tl_dtype_name(tl_model_held_dtype(m)), (long long)tl_model_cfg(m)->n_params);
  tl_model_free(m);
  return 0;
}
