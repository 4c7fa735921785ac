/* A lens' params.pt (a torch.save zip holding a pickle and raw storages), through
 * tl_pt_open_mem, the in-memory form of the reader tl_lens_dir_load uses; every
 * accepted tensor is converted to fp32 in full. */
#include "fuzz.h"
#include "tlens/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  tl_pt_file f;
  if (tl_pt_open_mem(&f, data, size, "params.pt") == 0) {
    for (int i = 0; i < f.n; i++) {
      if (tl_pt_find(&f, f.t[i].name) == NULL) abort();
      float *v = malloc((size_t)(f.t[i].numel ? f.t[i].numel : 1) * sizeof *v);
      tl_pt_to_f32(&f.t[i], v);
      free(v);
    }
    tl_pt_close(&f);
  }
  return 0;
}
