/* ckpt_tamper FILE ITEM u64 VALUE | FILE ITEM f32 INDEX VALUE | FILE ITEM delete
 * Rewrites one item of a tlens checkpoint the way a crafted or bit-rotted file
 * would arrive: the value changed and its crc32 attribute recomputed, so the file
 * still passes the checksum test and only the reader's range checks can catch it.
 * Exit 0 when done, 1 on any failure. */
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"

static int fix_crc(hid_t ds, const void *bytes, size_t n) {
  uint64_t crc = tl_crc32(0, bytes, n);
  hid_t a = H5Aopen(ds, "crc32", H5P_DEFAULT);
  int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_UINT64, &crc) >= 0 ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: ckpt_tamper FILE ITEM u64 VALUE | FILE ITEM f32 INDEX VALUE | FILE ITEM delete\n");
    return 1;
  }
  hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return fprintf(stderr, "ckpt_tamper: cannot open %s\n", argv[1]), 1;
  int rc = 1;
  if (!strcmp(argv[3], "delete")) {
    rc = H5Ldelete(f, argv[2], H5P_DEFAULT) >= 0 ? 0 : 1;
  } else {
    hid_t ds = H5Dopen2(f, argv[2], H5P_DEFAULT);
    if (ds < 0) return fprintf(stderr, "ckpt_tamper: no item %s\n", argv[2]), 1;
    hid_t sp = H5Dget_space(ds);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (!strcmp(argv[3], "u64") && argc == 5 && n == 1) {
      uint64_t v = strtoull(argv[4], NULL, 0);
      if (H5Dwrite(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0) rc = fix_crc(ds, &v, 8) ? 1 : 0;
    } else if (!strcmp(argv[3], "f32") && argc == 6) {
      float *v = malloc(n * sizeof(float));
      size_t i = strtoull(argv[4], NULL, 0);
      if (i < n && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
        v[i] = strtof(argv[5], NULL);
        if (H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0)
          rc = fix_crc(ds, v, n * sizeof(float)) ? 1 : 0;
      }
      free(v);
    }
    H5Dclose(ds);
  }
  H5Fclose(f);
  if (rc) fprintf(stderr, "ckpt_tamper: could not change %s in %s\n", argv[2], argv[1]);
  return rc;
}
