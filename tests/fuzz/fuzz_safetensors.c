/* safetensors files (model weights, pre-tokenized corpora, lens exports): the header
 * and the data. tl_st_open maps a path, so the input goes through a tmpfs file; every
 * tensor it accepts is then read in full as the loaders read it (floats to fp32,
 * integers to int64), which touches every byte the header claims. */
#include "fuzz.h"
#include "tlens/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  char *path = fuzz_write_shm("model.safetensors", data, size);
  tl_safetensors st;
  if (tl_st_open(&st, path) == 0) {
    for (int i = 0; i < st.n; i++) {
      const tl_st_tensor *t = &st.tensors[i];
      if (tl_st_find(&st, t->name) != t) abort(); /* names must be unique */
      if (tl_dtype_is_float(t->dtype)) {
        float *v;
        if (tl_st_get_f32(&st, t->name, -1, NULL, &v) == 0) free(v);
      } else if (tl_dtype_is_int(t->dtype)) {
        int64_t *v;
        if (tl_st_get_i64(&st, t->name, -1, NULL, &v) == 0) free(v);
      }
    }
    (void)tl_st_meta(&st, "format");
    tl_st_close(&st);
  }
  free(path);
  return 0;
}
