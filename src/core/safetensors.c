/* safetensors reader and writer.
 *
 * The reader maps the file and trusts nothing: the 8-byte header length must fit in the
 * file, the header must be a JSON object, every tensor entry must have a known dtype, a
 * non-negative shape, and data_offsets [begin, end] inside the data region whose length is
 * exactly numel * dtype size; entries may not overlap. */
#include "tlens/safetensors.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/bytes.h"
#include "tlens/named.h"

#define ST_MAX_HEADER (100u << 20) /* the format's own limit is 100 MB */

static int cmp_offset(const void *a, const void *b) {
  const tl_st_tensor *x = a, *y = b;
  uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
  return px < py ? -1 : px > py;
}

static int parse_entry(tl_safetensors *st, const cJSON *e, const unsigned char *base, size_t data_len,
                       tl_st_tensor *t) {
  const char *path = st->path;
  const char *name = e->string;
  if (!cJSON_IsObject(e)) return tl_fail("%s: tensor '%s': header entry is not an object", path, name);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dt) || tl_dtype_from_name(dt->valuestring, &t->dtype) != 0)
    return tl_fail("%s: tensor '%s': unknown or missing dtype", path, name);
  if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > TL_MAX_DIMS)
    return tl_fail("%s: tensor '%s': shape must be an array of at most %d integers", path, name, TL_MAX_DIMS);
  t->ndim = cJSON_GetArraySize(sh);
  int64_t numel = 1;
  for (int i = 0; i < t->ndim; i++) {
    const cJSON *d = cJSON_GetArrayItem(sh, i);
    if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9.0e15 ||
        d->valuedouble != (double)(int64_t)d->valuedouble)
      return tl_fail("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, i);
    t->shape[i] = (int64_t)d->valuedouble;
    if (t->shape[i] != 0 && numel > INT64_MAX / 16 / t->shape[i])
      return tl_fail("%s: tensor '%s': shape too large", path, name);
    numel *= t->shape[i];
  }
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
    return tl_fail("%s: tensor '%s': data_offsets must be [begin, end]", path, name);
  double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
  if (!cJSON_IsNumber(cJSON_GetArrayItem(off, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(off, 1)) || b < 0 ||
      en < b || en > (double)data_len || b != (double)(uint64_t)b || en != (double)(uint64_t)en)
    return tl_fail("%s: tensor '%s': data_offsets [%.0f, %.0f] out of range (data is %zu bytes)", path, name, b,
                   en, data_len);
  size_t begin = (size_t)b, end = (size_t)en;
  t->nbytes = end - begin;
  if ((uint64_t)numel * tl_dtype_size(t->dtype) != t->nbytes)
    return tl_fail("%s: tensor '%s': %zu data bytes but shape and dtype %s need %llu", path, name, t->nbytes,
                   tl_dtype_name(t->dtype), (unsigned long long)numel * tl_dtype_size(t->dtype));
  t->data = base + begin;
  t->name = tl_strdup(name);
  return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The first name that occurs twice in names[0..n) (sorted in place), or NULL. JSON
 * parsers disagree on which of two equal keys wins, so a header that has any is
 * refused rather than read one way here and another way elsewhere. */
static const char *find_duplicate(const char **names, int n) {
  qsort(names, (size_t)n, sizeof *names, cmp_name);
  for (int i = 1; i < n; i++)
    if (!strcmp(names[i - 1], names[i])) return names[i];
  return NULL;
}

/* __metadata__: str -> str (the format allows nothing else; other values are ignored). */
static int parse_meta(tl_safetensors *st, const cJSON *e) {
  if (!cJSON_IsObject(e)) return tl_fail("%s: __metadata__ is not an object", st->path);
  if (st->meta_keys) return tl_fail("%s: __metadata__ appears twice in the header", st->path);
  int m = cJSON_GetArraySize(e);
  st->meta_keys = tl_calloc((size_t)m + 1, sizeof(char *));
  st->meta_vals = tl_calloc((size_t)m + 1, sizeof(char *));
  for (const cJSON *kv = e->child; kv; kv = kv->next) {
    if (!cJSON_IsString(kv)) continue;
    st->meta_keys[st->nmeta] = tl_strdup(kv->string);
    st->meta_vals[st->nmeta] = tl_strdup(kv->valuestring);
    st->nmeta++;
  }
  const char **keys = tl_malloc(((size_t)st->nmeta + 1) * sizeof *keys);
  memcpy(keys, st->meta_keys, (size_t)st->nmeta * sizeof *keys);
  const char *dup = find_duplicate(keys, st->nmeta);
  int rc = dup ? tl_fail("%s: __metadata__ key '%s' appears twice", st->path, dup) : 0;
  free(keys);
  return rc;
}

/* Every entry of the header: the metadata, then one tensor per other key, whose
 * data must lie in [base, base + data_len) without overlapping another's. */
static int parse_header(tl_safetensors *st, const cJSON *root, const unsigned char *base, size_t data_len) {
  st->tensors = tl_calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *st->tensors);
  for (const cJSON *e = root->child; e; e = e->next) {
    if (!e->string) continue;
    if (!strcmp(e->string, "__metadata__")) TL_TRY(parse_meta(st, e));
    else {
      TL_TRY(parse_entry(st, e, base, data_len, &st->tensors[st->n]));
      st->n++;
    }
  }
  const char **names = tl_malloc(((size_t)st->n + 1) * sizeof *names);
  for (int i = 0; i < st->n; i++) names[i] = st->tensors[i].name;
  const char *dup = find_duplicate(names, st->n);
  int rc = dup ? tl_fail("%s: tensor '%s' appears twice in the header", st->path, dup) : 0;
  free(names);
  if (rc) return rc;
  qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_offset);
  for (int i = 1; i < st->n; i++) {
    const tl_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
    if ((const unsigned char *)a->data + a->nbytes > (const unsigned char *)b->data)
      return tl_fail("%s: tensors '%s' and '%s' overlap", st->path, a->name, b->name);
  }
  return 0;
}

/* Maps the file and reads its header into st (on failure st keeps what was read). */
static int st_read(tl_safetensors *st, const char *path) {
  TL_TRY(tl_mmap_open(&st->map, path));
  const unsigned char *p = st->map.data;
  if (st->map.size < 8)
    return tl_fail("%s: truncated safetensors file (%zu bytes, need at least 8)", path, st->map.size);
  uint64_t hlen = tl_le64(p);
  if (hlen > st->map.size - 8 || hlen > ST_MAX_HEADER)
    return tl_fail("%s: header length %llu runs past the end of the file (%zu bytes)", path,
                   (unsigned long long)hlen, st->map.size);
  cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
  int rc = cJSON_IsObject(root) ? parse_header(st, root, p + 8 + hlen, st->map.size - 8 - (size_t)hlen)
                                : tl_fail("%s: header is not a JSON object", path);
  cJSON_Delete(root);
  return rc;
}

int tl_st_open(tl_safetensors *st, const char *path) {
  memset(st, 0, sizeof *st);
  st->path = tl_strdup(path);
  if (st_read(st, path) == 0) return 0;
  tl_st_close(st);
  return -1;
}

_Static_assert(offsetof(tl_st_tensor, name) == 0, "tl_named_* need the name first");

void tl_st_close(tl_safetensors *st) {
  tl_named_free(st->tensors, st->n, sizeof *st->tensors); /* a failed entry has no name yet */
  for (int i = 0; i < st->nmeta; i++) {
    free(st->meta_keys[i]);
    free(st->meta_vals[i]);
  }
  free(st->meta_keys);
  free(st->meta_vals);
  tl_mmap_close(&st->map);
  free(st->path);
  memset(st, 0, sizeof *st);
}

const tl_st_tensor *tl_st_find(const tl_safetensors *st, const char *name) {
  return tl_named_find(st->tensors, st->n, sizeof *st->tensors, name);
}

const char *tl_st_meta(const tl_safetensors *st, const char *key) {
  for (int i = 0; i < st->nmeta; i++)
    if (!strcmp(st->meta_keys[i], key)) return st->meta_vals[i];
  return NULL;
}

static int check_shape(const tl_safetensors *st, const tl_st_tensor *t, int ndim, const int64_t *shape) {
  if (ndim < 0) return 0;
  int ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = 0;
  if (ok) return 0;
  char got[128], want[128];
  int64_t w[TL_MAX_DIMS];
  for (int i = 0; i < ndim && i < TL_MAX_DIMS; i++) w[i] = shape[i];
  return tl_fail("%s: tensor '%s' has shape %s, expected %s", st->path, t->name,
                 tl_shape_str(t->ndim, t->shape, got, sizeof got), tl_shape_str(ndim, w, want, sizeof want));
}

int tl_st_get_f32(const tl_safetensors *st, const char *name, int ndim, const int64_t *shape, float **out) {
  *out = NULL;
  const tl_st_tensor *t = tl_st_find(st, name);
  if (!t) return tl_fail("%s: tensor '%s' is missing", st->path, name);
  if (!tl_dtype_is_float(t->dtype))
    return tl_fail("%s: tensor '%s' has dtype %s, expected a float dtype", st->path, name, tl_dtype_name(t->dtype));
  TL_TRY(check_shape(st, t, ndim, shape));
  size_t n = (size_t)tl_numel(t->ndim, t->shape);
  *out = tl_malloc(n * sizeof(float));
  tl_to_f32(*out, t->data, t->dtype, n);
  return 0;
}

int tl_st_get_i64(const tl_safetensors *st, const char *name, int ndim, const int64_t *shape, int64_t **out) {
  *out = NULL;
  const tl_st_tensor *t = tl_st_find(st, name);
  if (!t) return tl_fail("%s: tensor '%s' is missing", st->path, name);
  if (!tl_dtype_is_int(t->dtype))
    return tl_fail("%s: tensor '%s' has dtype %s, expected an integer dtype", st->path, name,
                   tl_dtype_name(t->dtype));
  TL_TRY(check_shape(st, t, ndim, shape));
  size_t n = (size_t)tl_numel(t->ndim, t->shape);
  *out = tl_malloc(n * sizeof(int64_t));
  tl_to_i64(*out, t->data, t->dtype, n);
  return 0;
}

/* ---- writer ---- */
typedef struct {
  char *name;
  tl_dtype dtype;
  int ndim;
  int64_t shape[TL_MAX_DIMS];
  size_t nbytes;
  void *data;
} w_entry;

struct tl_st_writer {
  int n, cap;
  w_entry *e;
  cJSON *meta;
};

tl_st_writer *tl_st_writer_new(void) {
  tl_st_writer *w = tl_calloc(1, sizeof *w);
  w->meta = cJSON_CreateObject();
  return w;
}

void tl_st_writer_add(tl_st_writer *w, const char *name, tl_dtype dtype, int ndim, const int64_t *shape,
                      const void *data) {
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 16;
    w->e = tl_realloc(w->e, (size_t)w->cap * sizeof *w->e);
  }
  w_entry *e = &w->e[w->n++];
  e->name = tl_strdup(name);
  e->dtype = dtype;
  e->ndim = ndim;
  for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
  e->nbytes = (size_t)tl_numel(ndim, shape) * tl_dtype_size(dtype);
  e->data = tl_malloc(e->nbytes);
  if (e->nbytes) memcpy(e->data, data, e->nbytes);
}

void tl_st_writer_meta(tl_st_writer *w, const char *key, const char *value) {
  cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
  cJSON_AddStringToObject(w->meta, key, value);
}

int tl_st_writer_save(tl_st_writer *w, const char *path) {
  cJSON *root = cJSON_CreateObject();
  if (cJSON_GetArraySize(w->meta) > 0) cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->meta, 1));
  size_t off = 0;
  for (int i = 0; i < w->n; i++) {
    w_entry *e = &w->e[i];
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "dtype", tl_dtype_name(e->dtype));
    cJSON *sh = cJSON_AddArrayToObject(t, "shape");
    for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
    cJSON *o = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + e->nbytes)));
    off += e->nbytes;
    cJSON_AddItemToObject(root, e->name, t);
  }
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  size_t hlen = strlen(json);
  size_t padded = (hlen + 7) & ~(size_t)7; /* keep the data 8-byte aligned, padding with spaces */
  tl_buf b = {0};
  unsigned char len8[8];
  tl_put_le64(len8, padded);
  tl_buf_append(&b, len8, 8);
  tl_buf_append(&b, json, hlen);
  for (size_t i = hlen; i < padded; i++) tl_buf_append(&b, " ", 1);
  free(json);
  for (int i = 0; i < w->n; i++) tl_buf_append(&b, w->e[i].data, w->e[i].nbytes);
  int rc = tl_write_file_atomic(path, b.data, b.len);
  tl_buf_free(&b);
  return rc;
}

void tl_st_writer_free(tl_st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) {
    free(w->e[i].name);
    free(w->e[i].data);
  }
  free(w->e);
  cJSON_Delete(w->meta);
  free(w);
}
