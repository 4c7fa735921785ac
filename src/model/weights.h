/* The weight files of a model folder, whatever their format: one list of
 * tensors per file, each a name, a dtype, a shape and its bytes in the file's
 * mapping, whether the file is a safetensors file or a torch.save() zip
 * (pytorch_model.bin, read by the restricted unpickler of tlens/export.h).
 *
 * The folder's files, in the order transformers prefers them:
 *   model.safetensors, model.safetensors.index.json + shards,
 *   pytorch_model.bin, pytorch_model.bin.index.json + shards. */
#ifndef TLENS_MODEL_WEIGHTS_H
#define TLENS_MODEL_WEIGHTS_H

#include <cjson/cJSON.h>

#include "tlens/export.h"
#include "tlens/safetensors.h"

typedef struct {
  char *path;
  int n;
  const tl_st_tensor *tensors; /* the file's tensors (for a torch file: views whose names it owns) */
  const unsigned char *base;   /* the file's mapping: tensor data - base is the offset in the file */
  char *used;                  /* per tensor: consumed by a spec */
  /* one of: */
  tl_safetensors st;
  tl_pt_file pt;
  tl_st_tensor *pt_views;
  int is_pt;
} tl_wfile;

typedef struct {
  int nfiles;
  tl_wfile *files;
  /* index.json weight_map (NULL for a single file) */
  cJSON *index;
  const cJSON *weight_map;
  char *index_path;
  int64_t bytes; /* the tensors' bytes over all files */
} tl_weights;

/* Opens the weight files of dir (the first of the forms above that exists). */
int tl_weights_open(tl_weights *w, const char *dir);
void tl_weights_close(tl_weights *w);
/* The tensor `name` and the file holding it, or NULL (nothing recorded). */
const tl_st_tensor *tl_weights_lookup(const tl_weights *w, const char *name, int *file);
/* The same, but a missing tensor is an error naming the index or the file. */
const tl_st_tensor *tl_weights_find(const tl_weights *w, const char *name, int *file);

#endif
