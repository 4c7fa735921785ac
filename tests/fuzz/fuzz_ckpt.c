/* Training checkpoints (HDF5): a mutated valid checkpoint is opened by tl_ckpt_open with
 * every checksum verified, as resume and export open it; every dataset the file holds
 * is then described by tl_ckpt_info_of and read whole with the reader of its type. The
 * reader must not trust what HDF5 reports: a shape no file of this size can store is
 * an error, never an allocation or a read. HDF5 only opens paths, so the input goes
 * through a tmpfs file. */
#include <hdf5.h>

#include "fuzz.h"
#include "tlens/ckpt.h"

typedef struct {
  char **names;
  int n;
} name_list;

static herr_t collect(hid_t obj, const char *name, const H5O_info_t *oi, void *p) {
  name_list *l = p;
  if (oi->type == H5O_TYPE_DATASET && l->n < 256) {
    l->names = realloc(l->names, (size_t)(l->n + 1) * sizeof *l->names);
    l->names[l->n++] = strdup(name);
  }
  return 0;
}

static void read_item(tl_ckpt_reader *r, const char *name, size_t file_size) {
  tl_ckpt_info info;
  if (tl_ckpt_info_of(r, name, &info) != 0) return;
  size_t es = info.type == TL_CKPT_STR ? 1 : info.type == TL_CKPT_F32 ? 4 : 8;
  if (info.numel > file_size / es + 1) abort(); /* more than the file can store was accepted */
  if (info.type == TL_CKPT_STR) {
    char *s;
    if (tl_ckpt_read_str(r, name, &s) == 0) free(s);
    return;
  }
  void *buf = malloc(info.numel ? info.numel * es : 1);
  if (info.type == TL_CKPT_F32) (void)tl_ckpt_read_f32(r, name, 0, info.numel, buf);
  if (info.type == TL_CKPT_F64) (void)tl_ckpt_read_f64(r, name, 0, info.numel, buf);
  if (info.type == TL_CKPT_U64) (void)tl_ckpt_read_u64(r, name, 0, info.numel, buf);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char *path = fuzz_write_shm("step_00000005.h5", data, size);
  tl_ckpt_reader *r;
  if (tl_ckpt_open(&r, path, true) == 0) {
    (void)tl_ckpt_step(r);
    (void)tl_ckpt_world_size(r);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    name_list l = {0};
    if (f >= 0) {
      H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, collect, &l);
      H5Fclose(f);
    }
    for (int i = 0; i < l.n; i++) {
      read_item(r, l.names[i], size);
      free(l.names[i]);
    }
    free(l.names);
    /* the names resume asks for, present or not */
    static const char *const wanted[] = {"schedule/step", "data/epoch", "data/position", "rng/state", "run/config",
                                         "lens/0/weight", "lens/0/bias", "optim/step", "model/config_hash"};
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
      if (tl_ckpt_has(r, wanted[i])) read_item(r, wanted[i], size);
    tl_ckpt_close(r);
  }
  free(path);
  return 0;
}
