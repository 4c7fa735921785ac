/* Minimal test harness: CHECK records a failure with file:line and continues;
 * main() returns tl_test_finish(). */
#ifndef TL_TEST_H
#define TL_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tl_test_failures = 0, tl_test_checks = 0;
#define CHECK(cond) do { tl_test_checks++; if (!(cond)) { tl_test_failures++; \
  fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { tl_test_checks++; if (!(cond)) { tl_test_failures++; \
  fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
/* max |a-b| over n floats, with the tolerance rule "absolute, or relative for |ref| > 1" */
static inline double tl_test_maxerr(const float *a, const float *ref, long n) {
  double m = 0;
  for (long i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)ref[i]);
    double r = fabs((double)ref[i]);
    if (r > 1) d /= r;
    if (d != d) d = INFINITY;
    if (d > m) m = d;
  }
  return m;
}
static inline const char *tl_test_fixtures(void) {
  const char *f = getenv("FIXTURES");
  return f ? f : "../shared/fixtures";
}
static inline int tl_test_finish(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, tl_test_checks, tl_test_failures);
  return tl_test_failures ? 1 : 0;
}
#endif
