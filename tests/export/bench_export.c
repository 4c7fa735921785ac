/* Lens artifact throughput: writing and reading params.pt (fp32 and fp16) for a
 * 16-layer d=1024 lens (67 MB of fp32), and unembed_hash of a GPT-2-sized W_U. */
#include <string.h>
#include <unistd.h>

#include "tl_test.h"
#include "tlens/export.h"

int main(void) {
  int L = 16;
  int64_t d = 1024, per = d * d + d;
  size_t n = (size_t)(L * per);
  float *p = malloc(n * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) * 1e-4f - 0.05f;
  char dir[] = "/tmp/tlens_bench_export_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  tl_lens_config c = {.base_model_name_or_path = "bench", .d_model = (int)d, .num_hidden_layers = L, .bias = true};
  double mb = (double)n * 4 / 1e6;
  tl_dtype dts[2] = {TL_F32, TL_F16};
  for (int k = 0; k < 2; k++) {
    double t0 = tl_now();
    if (tl_lens_dir_save(dir, &c, p, dts[k])) { fprintf(stderr, "%s\n", tl_errmsg()); return 1; }
    double t1 = tl_now();
    tl_lens_config c2;
    float *q;
    if (tl_lens_dir_load(dir, NULL, &c2, &q, NULL)) { fprintf(stderr, "%s\n", tl_errmsg()); return 1; }
    double t2 = tl_now();
    printf("params.pt %s: save %.0f MB/s (%.2f s), load %.0f MB/s (%.2f s) [fp32 MB: %.0f]\n", tl_dtype_name(dts[k]),
           mb / (t1 - t0), t1 - t0, mb / (t2 - t1), t2 - t1, mb);
    free(q);
    tl_lens_config_free(&c2);
  }
  int64_t V = 50257, D = 768;
  float *w = malloc((size_t)(V * D) * sizeof *w);
  for (int64_t i = 0; i < V * D; i++) w[i] = (float)((i * 2654435761u) % 2001) * 1e-4f - 0.1f;
  char h[65];
  double t0 = tl_now();
  for (int r = 0; r < 100; r++) tl_unembed_hash(w, V, D, h);
  printf("unembed_hash [%lld, %lld]: %.1f us per call\n", (long long)V, (long long)D, (tl_now() - t0) / 100 * 1e6);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) return 1;
  free(w);
  free(p);
  return 0;
}
