/* Writes params.pt files for tests/test_export_torch.sh to load with PyTorch:
 *   <dir>/{f32,f16,bf16,f32_zip64}.pt  a 3-layer d=7 lens in each storage format
 *   <dir>/values.f32                   the fp32 values written, all tensors in order
 * and a lens folder <dir>/lens/ (config.json + params.pt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/export.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: export_torch_writer DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  enum { L = 3, D = 7, PER = D * D + D };
  static float w[L * PER];
  uint32_t s = 7;
  for (int i = 0; i < L * PER; i++) {
    s = s * 1664525u + 1013904223u;
    w[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.2f;
  }
  w[0] = -0.0f;
  w[1] = 1e-40f;   /* subnormal */
  w[2] = 65519.0f; /* rounds to the largest fp16 */
  w[3] = 1.00390625f; /* a bf16 tie: rounds to even */
  tl_pt_entry e[2 * L];
  char names[2 * L][16];
  for (int i = 0; i < L; i++) {
    snprintf(names[2 * i], 16, "%d.weight", i);
    snprintf(names[2 * i + 1], 16, "%d.bias", i);
    e[2 * i] = (tl_pt_entry){names[2 * i], 2, {D, D}, w + i * PER};
    e[2 * i + 1] = (tl_pt_entry){names[2 * i + 1], 1, {D}, w + i * PER + D * D};
  }
  char path[4096];
  const char *files[4] = {"f32", "f16", "bf16", "f32_zip64"};
  tl_dtype dts[4] = {TL_F32, TL_F16, TL_BF16, TL_F32};
  for (int k = 0; k < 4; k++) {
    snprintf(path, sizeof path, "%s/%s.pt", dir, files[k]);
    if (tl_pt_save(path, e, 2 * L, dts[k], k == 3 ? TL_ZIPW_FORCE_ZIP64 : 0)) {
      fprintf(stderr, "%s\n", tl_errmsg());
      return 1;
    }
  }
  snprintf(path, sizeof path, "%s/values.f32", dir);
  if (tl_write_file_atomic(path, w, sizeof w)) return 1;
  tl_lens_config c = {.base_model_name_or_path = "tiny/model", .d_model = D, .num_hidden_layers = L, .bias = true,
                      .unembed_hash = "0123abcd"};
  snprintf(path, sizeof path, "%s/lens", dir);
  if (tl_lens_dir_save(path, &c, w, TL_F32)) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return 1;
  }
  return 0;
}
