/* safetensors: read (mmap, fully validated) and write.
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
 * then the raw little-endian data; offsets are relative to the end of the header. */
#ifndef TLENS_SAFETENSORS_H
#define TLENS_SAFETENSORS_H

#include "tlens/core.h"
#include "tlens/tensor.h"

typedef struct {
  char *name;
  tl_dtype dtype;
  int ndim;
  int64_t shape[TL_MAX_DIMS];
  size_t nbytes;
  const void *data; /* points into the mapping */
} tl_st_tensor;

typedef struct {
  char *path;
  tl_mmap map;
  int n;
  tl_st_tensor *tensors; /* sorted by data offset */
  int nmeta;
  char **meta_keys, **meta_vals;
} tl_safetensors;

/* Validates: header length vs file size, JSON, dtypes, shapes, offsets in range,
 * sizes = numel*dtype size, no overlaps, no gaps. Errors name the file and tensor. */
int tl_st_open(tl_safetensors *st, const char *path);
void tl_st_close(tl_safetensors *st);
const tl_st_tensor *tl_st_find(const tl_safetensors *st, const char *name); /* NULL if absent */
const char *tl_st_meta(const tl_safetensors *st, const char *key);        /* NULL if absent */
/* Looks up `name`, checks rank/shape (shape entries < 0 are wildcards), converts to a fresh
 * malloc'd fp32 array. Errors: "<file>: tensor '<name>' missing / has shape .. expected ..". */
int tl_st_get_f32(const tl_safetensors *st, const char *name, int ndim, const int64_t *shape, float **out);
/* Same for integer tensors into int64. */
int tl_st_get_i64(const tl_safetensors *st, const char *name, int ndim, const int64_t *shape, int64_t **out);

typedef struct tl_st_writer tl_st_writer;
tl_st_writer *tl_st_writer_new(void);
/* data is copied */
void tl_st_writer_add(tl_st_writer *w, const char *name, tl_dtype dtype, int ndim, const int64_t *shape, const void *data);
void tl_st_writer_meta(tl_st_writer *w, const char *key, const char *value);
int tl_st_writer_save(tl_st_writer *w, const char *path); /* atomic */
void tl_st_writer_free(tl_st_writer *w);

#endif
