/* The weight files of a model folder (see weights.h): safetensors or torch.save()
 * zips, single or sharded through an index.json weight_map. */
#include "model/weights.h"

#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/named.h"

void tl_weights_close(tl_weights *w) {
  for (int i = 0; i < w->nfiles; i++) {
    tl_wfile *f = &w->files[i];
    if (f->is_pt) {
      free(f->pt_views); /* the names belong to f->pt */
      tl_pt_close(&f->pt);
    } else {
      tl_st_close(&f->st);
    }
    free(f->used);
    free(f->path);
  }
  free(w->files);
  cJSON_Delete(w->index);
  free(w->index_path);
  memset(w, 0, sizeof *w);
}

/* A torch file's tensors as the loader sees a safetensors file's: views of the
 * same bytes in the same mapping. */
static void pt_views(tl_wfile *f) {
  const tl_pt_file *pt = &f->pt;
  f->pt_views = tl_calloc((size_t)pt->n + 1, sizeof *f->pt_views);
  for (int i = 0; i < pt->n; i++) {
    const tl_pt_tensor *t = &pt->t[i];
    tl_st_tensor *v = &f->pt_views[i];
    v->name = t->name;
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof v->shape);
    v->nbytes = (size_t)t->numel * tl_dtype_size(t->dtype);
    v->data = t->bytes;
  }
  f->tensors = f->pt_views;
  f->n = pt->n;
  f->base = pt->map.data;
}

static int open_file(tl_weights *w, const char *path, int is_pt) {
  w->files = tl_realloc(w->files, (size_t)(w->nfiles + 1) * sizeof *w->files);
  tl_wfile *f = &w->files[w->nfiles];
  memset(f, 0, sizeof *f);
  if (is_pt) {
    if (tl_pt_open_flags(&f->pt, path, TL_PT_CHECKPOINT)) return -1;
    f->is_pt = 1;
    pt_views(f);
  } else {
    if (tl_st_open(&f->st, path)) return -1;
    f->tensors = f->st.tensors;
    f->n = f->st.n;
    f->base = f->st.map.data;
  }
  f->path = tl_strdup(path);
  f->used = tl_calloc((size_t)f->n + 1, 1);
  for (int i = 0; i < f->n; i++) w->bytes += (int64_t)f->tensors[i].nbytes;
  w->nfiles++;
  return 0;
}

/* index.json: {"weight_map": {tensor: shard file}}; each distinct shard is opened once. */
static int open_index(tl_weights *w, const char *dir, const char *index, int is_pt) {
  char *text = NULL;
  size_t len = 0;
  if (tl_read_file(index, &text, &len)) return -1;
  w->index = cJSON_ParseWithLength(text, len);
  free(text);
  w->index_path = tl_strdup(index);
  w->weight_map = w->index ? cJSON_GetObjectItemCaseSensitive(w->index, "weight_map") : NULL;
  if (!w->weight_map || !cJSON_IsObject(w->weight_map))
    return tl_fail("%s: not valid JSON with a 'weight_map' object", index);
  const cJSON *e;
  cJSON_ArrayForEach(e, w->weight_map) {
    if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') || strstr(e->valuestring, ".."))
      return tl_fail("%s: weight_map entry '%s' must name a shard file in the same folder", index, e->string);
    char *sp = tl_path_join(dir, e->valuestring);
    int seen = 0;
    for (int i = 0; i < w->nfiles && !seen; i++) seen = !strcmp(w->files[i].path, sp);
    int bad = !seen && open_file(w, sp, is_pt);
    free(sp);
    if (bad) return -1;
  }
  if (w->nfiles == 0) return tl_fail("%s: weight_map is empty", index);
  return 0;
}

int tl_weights_open(tl_weights *w, const char *dir) {
  memset(w, 0, sizeof *w);
  /* transformers' order: safetensors first, then torch files */
  static const struct {
    const char *name;
    int index, is_pt;
  } forms[] = {
      {"model.safetensors", 0, 0},
      {"model.safetensors.index.json", 1, 0},
      {"pytorch_model.bin", 0, 1},
      {"pytorch_model.bin.index.json", 1, 1},
  };
  for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
    char *path = tl_path_join(dir, forms[k].name);
    int rc = 1;
    if (tl_file_exists(path))
      rc = forms[k].index ? open_index(w, dir, path, forms[k].is_pt) : open_file(w, path, forms[k].is_pt);
    free(path);
    if (rc == 1) continue;
    if (rc) tl_weights_close(w);
    return rc;
  }
  return tl_fail("%s: no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                 "pytorch_model.bin.index.json found", dir);
}

/* The file the weight_map names for a tensor (0 for a single file), or -1. */
static int file_of(const tl_weights *w, const char *name) {
  if (!w->weight_map) return 0;
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(w->weight_map, name);
  if (!e) return -1;
  for (int s = 0; s < w->nfiles; s++)
    if (!strcmp(tl_basename(w->files[s].path), e->valuestring)) return s;
  return 0;
}

const tl_st_tensor *tl_weights_lookup(const tl_weights *w, const char *name, int *file) {
  int s = file_of(w, name);
  if (s < 0) return NULL;
  *file = s;
  return tl_named_find(w->files[s].tensors, w->files[s].n, sizeof *w->files[s].tensors, name);
}

const tl_st_tensor *tl_weights_find(const tl_weights *w, const char *name, int *file) {
  int s = file_of(w, name);
  if (s < 0) {
    tl_fail("%s: tensor '%s' is missing from weight_map", w->index_path, name);
    return NULL;
  }
  const tl_st_tensor *t = tl_named_find(w->files[s].tensors, w->files[s].n, sizeof *w->files[s].tensors, name);
  if (!t) {
    tl_fail("%s: tensor '%s' is missing", w->files[s].path, name);
    return NULL;
  }
  *file = s;
  return t;
}
