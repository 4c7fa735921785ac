/* A lens' params.pt (a torch.save zip holding a pickle and raw storages), through
 * tl_pt_open_mem, the in-memory form of the reader tl_lens_dir_load uses; every
 * accepted tensor is converted to fp32 in full. Then the same bytes as a model
 * checkpoint (pytorch_model.bin: TL_PT_CHECKPOINT, which also takes integer and
 * bool storages): float tensors converted, the others' bytes read in full. */
#include "fuzz.h"
#include "tlens/export.h"

static void convert_all(const tl_pt_file *f) {
  for (int i = 0; i < f->n; i++) {
    const tl_pt_tensor *t = &f->t[i];
    if (tl_pt_find(f, t->name) == NULL) abort();
    if (tl_dtype_is_float(t->dtype)) {
      float *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
      tl_pt_to_f32(t, v);
      free(v);
    } else {
      volatile unsigned char sum = 0;
      for (size_t k = 0; k < (size_t)t->numel * tl_dtype_size(t->dtype); k++) sum ^= t->bytes[k];
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  tl_pt_file f;
  if (tl_pt_open_mem(&f, data, size, "params.pt") == 0) {
    for (int i = 0; i < f.n; i++)
      if (!tl_dtype_is_float(f.t[i].dtype)) abort(); /* params.pt never takes integer storages */
    convert_all(&f);
    tl_pt_close(&f);
  }
  if (tl_pt_open_mem_flags(&f, data, size, "pytorch_model.bin", TL_PT_CHECKPOINT) == 0) {
    convert_all(&f);
    tl_pt_close(&f);
  }
  return 0;
}
