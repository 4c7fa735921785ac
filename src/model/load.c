/* Loading a Hugging Face model folder: config.json, then the weights from
 * model.safetensors or model.safetensors.index.json + shards, validated tensor
 * by tensor (missing, unexpected, dtype, shape) and converted to fp32 in our
 * layout (see model.h). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "tlens/safetensors.h"

int tl_model_read_config(const char *dir, tl_model_config *cfg) {
  char *path = tl_path_join(dir, "config.json"), *text = NULL;
  size_t len = 0;
  const tl_family *f;
  int rc = -1;
  if (!tl_file_exists(path)) {
    tl_fail("%s: missing (a Hugging Face model folder needs config.json)", path);
    goto done;
  }
  if (tl_read_file(path, &text, &len)) goto done;
  rc = tl_model_parse_config(text, len, path, cfg, &f);
done:
  free(text);
  free(path);
  return rc;
}

/* ---- the set of checkpoint files ---- */

typedef struct {
  int nshards;
  tl_safetensors *shards;
  char **used; /* per shard, per tensor: consumed by a spec */
  /* index.json weight_map (NULL for a single file) */
  cJSON *index;
  const cJSON *weight_map;
  char *index_path;
} weights;

static void weights_close(weights *w) {
  for (int i = 0; i < w->nshards; i++) {
    tl_st_close(&w->shards[i]);
    free(w->used[i]);
  }
  free(w->shards);
  free(w->used);
  cJSON_Delete(w->index);
  free(w->index_path);
  memset(w, 0, sizeof *w);
}

static int open_shard(weights *w, const char *path) {
  w->shards = tl_realloc(w->shards, (size_t)(w->nshards + 1) * sizeof *w->shards);
  w->used = tl_realloc(w->used, (size_t)(w->nshards + 1) * sizeof *w->used);
  memset(&w->shards[w->nshards], 0, sizeof *w->shards);
  if (tl_st_open(&w->shards[w->nshards], path)) return -1;
  w->used[w->nshards] = tl_calloc((size_t)w->shards[w->nshards].n + 1, 1);
  w->nshards++;
  return 0;
}

static int weights_open(weights *w, const char *dir) {
  memset(w, 0, sizeof *w);
  char *single = tl_path_join(dir, "model.safetensors");
  char *index = tl_path_join(dir, "model.safetensors.index.json");
  int rc = -1;
  if (tl_file_exists(single)) {
    rc = open_shard(w, single);
    goto done;
  }
  if (!tl_file_exists(index)) {
    char *bin = tl_path_join(dir, "pytorch_model.bin"), *binidx = tl_path_join(dir, "pytorch_model.bin.index.json");
    if (tl_file_exists(bin) || tl_file_exists(binidx))
      tl_fail("%s: only pytorch_model.bin weights found; convert them to safetensors first (e.g. load with "
              "transformers and save_pretrained(dir, safe_serialization=True))", dir);
    else
      tl_fail("%s: no model.safetensors or model.safetensors.index.json found", dir);
    free(bin);
    free(binidx);
    goto done;
  }
  char *text = NULL;
  size_t len = 0;
  if (tl_read_file(index, &text, &len)) goto done;
  w->index = cJSON_ParseWithLength(text, len);
  free(text);
  w->index_path = tl_strdup(index);
  w->weight_map = w->index ? cJSON_GetObjectItemCaseSensitive(w->index, "weight_map") : NULL;
  if (!w->weight_map || !cJSON_IsObject(w->weight_map)) {
    tl_fail("%s: not valid JSON with a 'weight_map' object", index);
    goto done;
  }
  /* open each distinct shard once */
  const cJSON *e;
  cJSON_ArrayForEach(e, w->weight_map) {
    if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') || strstr(e->valuestring, "..")) {
      tl_fail("%s: weight_map entry '%s' must name a shard file in the same folder", index, e->string);
      goto done;
    }
    char *sp = tl_path_join(dir, e->valuestring);
    int seen = 0;
    for (int i = 0; i < w->nshards && !seen; i++) seen = !strcmp(w->shards[i].path, sp);
    int bad = !seen && open_shard(w, sp);
    free(sp);
    if (bad) goto done;
  }
  if (w->nshards == 0) {
    tl_fail("%s: weight_map is empty", index);
    goto done;
  }
  rc = 0;
done:
  free(single);
  free(index);
  return rc;
}

/* Finds a tensor by name and the shard holding it, or NULL (nothing recorded). */
static const tl_st_tensor *weights_lookup(const weights *w, const char *name, int *shard) {
  int s = 0;
  if (w->weight_map) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(w->weight_map, name);
    if (!e) return NULL;
    for (s = 0; s < w->nshards; s++)
      if (!strcmp(tl_basename(w->shards[s].path), e->valuestring)) break;
    if (s == w->nshards) s = 0;
  }
  *shard = s;
  return tl_st_find(&w->shards[s], name);
}

/* Finds a tensor by name and the shard holding it. Errors name the file. */
static const tl_st_tensor *weights_find(weights *w, const char *name, int *shard) {
  int s = 0;
  if (w->weight_map) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(w->weight_map, name);
    if (!e) {
      tl_fail("%s: tensor '%s' is missing from weight_map", w->index_path, name);
      return NULL;
    }
    for (s = 0; s < w->nshards; s++)
      if (!strcmp(tl_basename(w->shards[s].path), e->valuestring)) break;
    if (s == w->nshards) s = 0;
  }
  const tl_st_tensor *t = tl_st_find(&w->shards[s], name);
  if (!t) {
    tl_fail("%s: tensor '%s' is missing", w->shards[s].path, name);
    return NULL;
  }
  *shard = s;
  return t;
}

/* XF_GROUPED_QKV: the file's rows are [group g][G queries, key, value][hd] with
 * G = n_heads / n_kv_heads; query i of group g is head g*G + i, whose key and value
 * are group g's: exactly our grouped-query layout once the rows are regrouped. */
static void ungroup_qkv(float *dst, const float *src, const tl_model_config *c, int64_t width) {
  const int64_t H = c->n_heads, KV = c->n_kv_heads, G = H / KV, hd = c->head_dim;
  const size_t row = (size_t)(hd * width) * sizeof(float);
  for (int64_t g = 0; g < KV; g++) {
    const float *grp = src + (g * (G + 2)) * hd * width;
    for (int64_t i = 0; i < G; i++) memcpy(dst + ((g * G + i) * hd) * width, grp + (i * hd) * width, row);
    memcpy(dst + ((H + g) * hd) * width, grp + (G * hd) * width, row);
    memcpy(dst + ((H + KV + g) * hd) * width, grp + ((G + 1) * hd) * width, row);
  }
}

/* XF_ROPE_PAIRS: in each head of a q or k projection, rotary rows 2i and 2i+1 become
 * rows i and i + rot_dim/2; the rows past rot_dim stay. Queries and keys are
 * permuted alike, so their dot products are unchanged, and rotate-half RoPE on the
 * result rotates exactly the pairs GPT-J rotates, with the same frequencies. */
static void rope_pairs(float *dst, const float *src, const tl_model_config *c, int64_t rows, int64_t width) {
  const int64_t hd = c->head_dim, half = c->rot_dim / 2;
  const size_t row = (size_t)width * sizeof(float);
  for (int64_t h = 0; h < rows / hd; h++) {
    const float *s = src + h * hd * width;
    float *d = dst + h * hd * width;
    for (int64_t i = 0; i < half; i++) {
      memcpy(d + i * width, s + (2 * i) * width, row);
      memcpy(d + (half + i) * width, s + (2 * i + 1) * width, row);
    }
    memcpy(d + 2 * half * width, s + 2 * half * width, (size_t)(hd - 2 * half) * row);
  }
}

/* The checkpoint tensor of a spec. Real folders name tensors in two ways the
 * family tables do not: a checkpoint saved from the base model class lacks the
 * base model's prefix ("h.0.ln_1.weight" for "transformer.h.0.ln_1.weight"), and
 * save_pretrained keeps only one of a tied pair, which one varying (the input
 * embedding may be stored only as lm_head.weight). transformers accepts both, and
 * so does this. When none is found the error names the spec's own name. */
static const tl_st_tensor *find_spec_tensor(const tl_model *m, weights *w, const tl_tspec *s, int *shard) {
  const char *prefix = m->fam->base_prefix, *lm = tl_family_global_name(m->fam, R_LM_W);
  const size_t k = prefix ? strlen(prefix) : 0;
  const tl_st_tensor *t = weights_lookup(w, s->name, shard);
  if (!t && k && !strncmp(s->name, prefix, k)) t = weights_lookup(w, s->name + k, shard);
  if (!t && s->role == R_EMBED && m->cfg.tied && lm) t = weights_lookup(w, lm, shard);
  return t ? t : weights_find(w, s->name, shard);
}

/* Converts one checkpoint tensor into dst according to the spec's transform. */
static void convert_tensor(const tl_tspec *s, const tl_st_tensor *t, float *dst, const tl_model_config *c) {
  size_t n = (size_t)tl_numel(t->ndim, t->shape);
  if (s->xf == XF_COPY || (s->xf == XF_TRANSPOSE && s->ndim == 1)) {
    tl_to_f32(dst, t->data, t->dtype, n);
    return;
  }
  float *tmp = tl_malloc(n * sizeof(float));
  tl_to_f32(tmp, t->data, t->dtype, n);
  int64_t width = s->ndim == 2 ? s->shape[1] : 1;
  switch (s->xf) {
  case XF_TRANSPOSE: { /* file [rows=in][cols=out] -> dst [out][in] */
    int64_t in = s->shape[0], out = s->shape[1];
    for (int64_t i = 0; i < in; i++)
      for (int64_t o = 0; o < out; o++) dst[o * in + i] = tmp[i * out + o];
    break;
  }
  case XF_GROUPED_QKV: ungroup_qkv(dst, tmp, c, width); break;
  case XF_ROPE_PAIRS: rope_pairs(dst, tmp, c, s->shape[0], width); break;
  case XF_COPY: break;
  }
  free(tmp);
}

static bool allow_nonfinite = false;
void tl_model_allow_nonfinite(bool allow) { allow_nonfinite = allow; }

/* NaN or Inf in a weight would only show up as a lens of NaN after hours of
 * training: it is refused at load, naming the tensor (unless allowed). */
static int check_finite(const char *file, const char *name, const float *v, size_t n) {
  if (allow_nonfinite) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return tl_fail("%s: tensor '%s' holds a non-finite value (%g at element %zu); pass --allow_nonfinite to load "
                     "it anyway", file, name, (double)v[i], i);
  return 0;
}

/* The same for a tensor left in its file (converted a block at a time). */
static int check_finite_raw(const char *file, const tl_st_tensor *t) {
  if (allow_nonfinite) return 0;
  enum { BLOCK = 1 << 16 };
  size_t n = (size_t)tl_numel(t->ndim, t->shape), es = tl_dtype_size(t->dtype);
  float *buf = tl_malloc(BLOCK * sizeof(float));
  int rc = 0;
  for (size_t at = 0; at < n && rc == 0; at += BLOCK) {
    size_t k = n - at < BLOCK ? n - at : BLOCK;
    tl_to_f32(buf, (const char *)t->data + at * es, t->dtype, k);
    for (size_t i = 0; i < k && rc == 0; i++)
      if (!isfinite(buf[i]))
        rc = tl_fail("%s: tensor '%s' holds a non-finite value (%g at element %zu); pass --allow_nonfinite to load "
                     "it anyway", file, t->name, (double)buf[i], at + i);
  }
  free(buf);
  return rc;
}

/* Converts and checks, then drops the file pages it read from the process: the
 * mapping of a large model would otherwise stay resident beside its fp32 copy. */
static int convert(const tl_tspec *s, const tl_st_tensor *t, const char *file, float *dst, const tl_model_config *c) {
  convert_tensor(s, t, dst, c);
  int rc = check_finite(file, s->name, dst, (size_t)tl_numel(t->ndim, t->shape));
  tl_mmap_release(t->data, t->nbytes);
  return rc;
}

/* Loads every tensor into the blobs; an untied embedding is left in its file
 * (see tl_model.embed_fd), which is opened for it. With m->slices, the layer
 * tensors are only checked here and converted by load_slices. */
static int load_weights(tl_model *m, weights *w) {
  tl_tspec *specs;
  int ns;
  TL_TRY(tl_model_specs(m->fam, &m->cfg, &specs, &ns));
  int rc = -1;
  int64_t nparams = 0;
  for (int i = 0; i < ns; i++) {
    const tl_tspec *s = &specs[i];
    int sh;
    const tl_st_tensor *t = find_spec_tensor(m, w, s, &sh);
    if (!t) goto done;
    const char *file = w->shards[sh].path;
    if (t->dtype != TL_F32 && t->dtype != TL_F16 && t->dtype != TL_BF16) {
      tl_fail("%s: tensor '%s' has dtype %s (expected F32, F16 or BF16)", file, s->name, tl_dtype_name(t->dtype));
      goto done;
    }
    if (t->ndim != s->ndim || t->shape[0] != s->shape[0] || (s->ndim == 2 && t->shape[1] != s->shape[1])) {
      char got[96], want[96];
      tl_fail("%s: tensor '%s' has shape %s (expected %s from config.json)", file, s->name,
              tl_shape_str(t->ndim, t->shape, got, sizeof got), tl_shape_str(s->ndim, s->shape, want, sizeof want));
      goto done;
    }
    if (i == 0) m->cfg.dtype = t->dtype;
    w->used[sh][t - w->shards[sh].tensors] = 1;
    float *blob = s->layer < 0 ? m->global : m->layers[s->layer];
    if (s->role == R_EMBED && !m->cfg.tied && s->xf == XF_COPY) {
      if (check_finite_raw(file, t) != 0) goto done;
      tl_mmap_release(t->data, t->nbytes);
      m->embed_fd = tl_open_regular(file, NULL);
      if (m->embed_fd < 0) goto done;
      m->embed_off = (const char *)t->data - (const char *)w->shards[sh].map.data;
      m->embed_dtype = t->dtype;
      m->embed_path = tl_strdup(file);
    } else if (s->layer < 0 || !m->slices) {
      if (convert(s, t, file, blob + s->off, &m->cfg) != 0) goto done;
    }
    nparams += tl_numel(t->ndim, t->shape);
  }
  for (int k = 0; k < w->nshards; k++)
    for (int i = 0; i < w->shards[k].n; i++) {
      const char *name = w->shards[k].tensors[i].name;
      if (w->used[k][i] || tl_model_ignorable(m->fam, &m->cfg, name)) continue;
      tl_fail("%s: unexpected tensor '%s' (not part of a %s model with %d layers as config.json describes)",
              w->shards[k].path, name, m->cfg.model_type, m->cfg.n_layers);
      goto done;
    }
  m->cfg.n_params = nparams;
  rc = 0;
done:
  free(specs);
  return rc;
}

/* What the loader makes from the weights: the ones and zeros of norms without
 * parameters (olmo), and OPT's project_out folded into the output embedding. */
static void derive_globals(tl_model *m) {
  const tl_model_config *c = &m->cfg;
  const size_t d = c->d_model;
  if (!c->norm_affine) {
    for (size_t i = 0; i < d; i++) m->global[m->gl.final_w + i] = 1.0f;
    if (m->gl.final_b != TL_NONE) memset(m->global + m->gl.final_b, 0, d * sizeof(float));
  }
  if (m->gl.proj_out != TL_NONE) { /* W_U [V, d] = lm_head [V, e] @ project_out [e, d] */
    const float *lm = m->global + (c->tied ? m->gl.embed : m->gl.lm_w);
    m->w_unembed = tl_aligned_alloc((size_t)c->vocab * d * sizeof(float));
    tl_backend_cpu()->gemm(0, 0, c->vocab, (int)d, c->embed_dim, 1.0f, lm, c->embed_dim,
                           m->global + m->gl.proj_out, (int)d, 0.0f, m->w_unembed, (int)d);
  }
}

/* Sliced loading: each layer whole into one scratch blob, then its slice kept.
 * Runs after load_weights has checked every tensor. */
static int load_slices(tl_model *m, weights *w) {
  tl_tspec *specs;
  int ns;
  TL_TRY(tl_model_specs(m->fam, &m->cfg, &specs, &ns));
  float *full = tl_aligned_alloc(m->ll.numel * sizeof(float));
  for (int l = 0; l < m->cfg.n_layers; l++) {
    memset(full, 0, m->ll.numel * sizeof(float));
    for (int i = 0; i < ns; i++) {
      if (specs[i].layer != l) continue;
      int sh;
      const tl_st_tensor *t = find_spec_tensor(m, w, &specs[i], &sh); /* found and checked before */
      if (convert(&specs[i], t, w->shards[sh].path, full + specs[i].off, &m->cfg) != 0) {
        free(full);
        free(specs);
        return -1;
      }
    }
    memcpy(m->slices[l], full + m->slice_off, m->slice_cnt * sizeof(float));
  }
  free(full);
  free(specs);
  return 0;
}

int tl_model_load_named(tl_model **out, const char *name, const char *revision) {
  *out = NULL;
  char *dir = NULL;
  TL_TRY(tl_model_resolve(name, revision, &dir));
  int rc = tl_model_load(out, dir);
  free(dir);
  return rc;
}

int tl_model_load(tl_model **out, const char *dir) { return tl_model_load_sliced(out, dir, 1, 0); }

int tl_model_load_sliced(tl_model **out, const char *dir, int parts, int index) {
  *out = NULL;
  if (parts < 1 || index < 0 || index >= parts)
    return tl_fail("model: slice %d of %d is not a valid slice", index, parts);
  tl_model *m = tl_calloc(1, sizeof *m);
  m->dir = tl_strdup(dir);
  m->embed_fd = -1;
  m->be = tl_backend_cpu();
  char *path = tl_path_join(dir, "config.json"), *text = NULL;
  size_t len = 0;
  weights w = {0};
  int rc = -1;
  if (!tl_is_dir(dir)) {
    tl_fail("%s: not a directory (expected a Hugging Face model folder)", dir);
    goto done;
  }
  if (!tl_file_exists(path)) {
    tl_fail("%s: missing (a Hugging Face model folder needs config.json)", path);
    goto done;
  }
  if (tl_read_file(path, &text, &len)) goto done;
  if (tl_model_parse_config(text, len, path, &m->cfg, &m->fam)) goto done;
  tl_layouts(&m->cfg, &m->ll, &m->gl);
  if (weights_open(&w, dir)) goto done;
  m->global = tl_aligned_alloc(m->gl.numel * sizeof(float));
  m->layers = tl_calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
  if (parts > 1) {
    tl_shard_range(m->ll.numel, parts, index, &m->slice_off, &m->slice_cnt);
    m->slices = tl_calloc((size_t)m->cfg.n_layers, sizeof *m->slices);
    for (int l = 0; l < m->cfg.n_layers; l++) m->slices[l] = tl_aligned_alloc((m->slice_cnt ? m->slice_cnt : 1) * sizeof(float));
  } else {
    for (int l = 0; l < m->cfg.n_layers; l++) m->layers[l] = tl_aligned_alloc(m->ll.numel * sizeof(float));
  }
  if (load_weights(m, &w)) goto done;
  if (m->slices && load_slices(m, &w)) goto done;
  derive_globals(m);
  m->rope_inv = tl_malloc((size_t)(m->cfg.rot_dim / 2 + 1) * sizeof(float));
  rc = 0;
done:
  weights_close(&w);
  free(text);
  free(path);
  if (rc) tl_model_free(m);
  else *out = m;
  return rc;
}

static void free_scratch(tl_model *m) {
  float **bufs[] = {&m->x, &m->hn, &m->hn2, &m->qkv, &m->att, &m->mlp_h, &m->mlp_g, &m->emb, &m->alibi_slopes};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    if (*bufs[i]) m->be->free(*bufs[i]);
    *bufs[i] = NULL;
  }
  if (m->ids_dev) m->be->free(m->ids_dev);
  m->ids_dev = NULL;
  free(m->stage);
  m->stage = NULL;
  m->cap_rows = 0;
}

void tl_model_free(tl_model *m) {
  if (!m) return;
  free_scratch(m);
  if (m->layers)
    for (int l = 0; l < m->cfg.n_layers; l++) free(m->layers[l]);
  free(m->layers);
  if (m->slices)
    for (int l = 0; l < m->cfg.n_layers; l++) free(m->slices[l]);
  free(m->slices);
  free(m->global);
  free(m->w_unembed);
  free(m->rope_inv);
  if (m->embed_fd >= 0) close(m->embed_fd);
  free(m->embed_path);
  free(m->dir);
  free(m);
}

const tl_model_config *tl_model_cfg(const tl_model *m) { return &m->cfg; }

/* A shape limit of the backend's kernels is a config error, found before any work. */
static int check_backend_limits(const tl_model *m, const tl_backend *be) {
  const tl_model_config *c = &m->cfg;
  if (be->max_head_dim > 0 && c->head_dim > be->max_head_dim)
    return tl_fail("%s/config.json: head_dim %d (hidden size / attention heads) exceeds the %d the %s backend's "
                   "attention supports", m->dir, c->head_dim, be->max_head_dim, be->name);
  if (be->max_rot_dim > 0 && c->rot_dim > be->max_rot_dim)
    return tl_fail("%s/config.json: %d rotary dimensions per head (head_dim x rotary_pct) exceed the %d the %s "
                   "backend supports", m->dir, c->rot_dim, be->max_rot_dim, be->name);
  return 0;
}

int tl_model_set_backend(tl_model *m, const tl_backend *be) {
  TL_TRY(check_backend_limits(m, be));
  free_scratch(m);
  m->be = be;
  return 0;
}

int tl_model_unembed(tl_model *m, tl_unembed *u) {
  const tl_model_config *c = &m->cfg;
  memset(u, 0, sizeof *u);
  if (!c->final_norm)
    return tl_fail("%s/config.json: this %s model has no final norm (do_layer_norm_before false); the lens needs "
                   "one before the unembedding", m->dir, c->model_type);
  u->d_model = c->d_model;
  u->vocab = c->vocab;
  u->norm = c->norm;
  u->eps = c->norm_eps;
  u->norm_add_one = c->norm_add_one;
  u->norm_w = m->global + m->gl.final_w;
  u->norm_b = m->gl.final_b == TL_NONE ? NULL : m->global + m->gl.final_b;
  u->W_U = m->w_unembed ? m->w_unembed : m->global + (c->tied ? m->gl.embed : m->gl.lm_w);
  u->b_U = m->gl.lm_b == TL_NONE ? NULL : m->global + m->gl.lm_b;
  return 0;
}

/* ---- per-layer weight access ---- */

size_t tl_model_layer_numel(const tl_model *m) { return m->ll.numel; }
float *tl_model_layer_blob(tl_model *m, int layer) { return m->layers[layer]; }

float *tl_model_take_layer_slice(tl_model *m, int layer, size_t *off, size_t *cnt) {
  if (!m->slices || layer < 0 || layer >= m->cfg.n_layers) return NULL;
  float *s = m->slices[layer];
  m->slices[layer] = NULL;
  *off = m->slice_off, *cnt = m->slice_cnt;
  return s;
}

void tl_model_set_layer_blob(tl_model *m, int layer, float *blob) {
  free(m->layers[layer]);
  m->layers[layer] = blob;
}

void tl_model_set_layer_hook(tl_model *m, const tl_layer_hook *hook) {
  m->has_hook = hook != NULL;
  if (hook) m->hook = *hook;
}

int tl_model_layer_weights(tl_model *m, int layer, tl_layer_weights *w, const float **blob) {
  const float *b = m->layers[layer];
  *blob = NULL;
  if (m->has_hook && m->hook.fetch) TL_TRY(m->hook.fetch(m->hook.ctx, m, layer, &b));
  if (!b) return tl_fail("model forward: layer %d has no weights (the layer hook gave none)", layer);
  const tl_layer_layout *L = &m->ll;
#define AT(name) w->name = L->name == TL_NONE ? NULL : b + L->name;
  TL_LAYER_TENSORS(AT)
#undef AT
  *blob = b;
  return 0;
}

int tl_model_layer_release(tl_model *m, int layer, const float *blob) {
  if (m->has_hook && m->hook.release) return m->hook.release(m->hook.ctx, m, layer, blob);
  return 0;
}
