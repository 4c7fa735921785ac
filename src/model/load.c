/* Loading a Hugging Face model folder: config.json, then the weights from
 * safetensors or pytorch_model.bin files, single or sharded (weights.c),
 * validated tensor by tensor (missing, unexpected, dtype, shape) and converted
 * to fp32 in our layout (see model.h), one layer at a time: each layer is then
 * kept whole, as this rank's slice (FSDP), or held in bf16/fp16
 * (tl_model_hold_precision), never two copies of the model at once. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "model/weights.h"
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
static const tl_st_tensor *find_spec_tensor(const tl_model *m, const tl_weights *w, const tl_tspec *s, int *file) {
  const char *prefix = m->fam->base_prefix, *lm = tl_family_global_name(m->fam, R_LM_W);
  const size_t k = prefix ? strlen(prefix) : 0;
  const tl_st_tensor *t = tl_weights_lookup(w, s->name, file);
  if (!t && k && !strncmp(s->name, prefix, k)) t = tl_weights_lookup(w, s->name + k, file);
  if (!t && s->role == R_EMBED && m->cfg.tied && lm) t = tl_weights_lookup(w, lm, file);
  return t ? t : tl_weights_find(w, s->name, file);
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

/* ---- the precision layers are held in ---- */

static int hold_setting = TL_F32;
void tl_model_hold_precision(int dtype) { hold_setting = dtype; }

/* --progress false turns the loading bar off too (plain lines stay, in logs) */
static bool bar_setting = true;
void tl_model_progress_bar(bool bar) { bar_setting = bar; }

int tl_model_parse_precision(const char *name, int *dtype) {
  static const struct {
    const char *name;
    int dtype;
  } names[] = {{"auto", TL_MODEL_HOLD_AUTO}, {"float32", TL_F32}, {"bfloat16", TL_BF16}, {"float16", TL_F16}};
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i].name)) {
      *dtype = names[i].dtype;
      return 0;
    }
  return tl_fail("--precision: expected auto, bfloat16, float16 or float32, got '%s'", name ? name : "(none)");
}

/* What a setting means for a checkpoint stored as `stored`: auto holds the
 * checkpoint's own dtype (fp32 for anything but bf16 and fp16). */
static tl_dtype held_dtype_for(int setting, tl_dtype stored) {
  if (setting == TL_MODEL_HOLD_AUTO) return stored == TL_BF16 || stored == TL_F16 ? stored : TL_F32;
  return setting == TL_BF16 || setting == TL_F16 ? (tl_dtype)setting : TL_F32;
}

/* v[0..n) rounded to dt's values (to nearest even) and kept in fp32: what the
 * weights of a model held in dt are, wherever they stay fp32. */
static void round_to(float *v, size_t n, tl_dtype dt) {
  if (dt == TL_F32) return;
  enum { BLOCK = 1 << 14 };
#pragma omp parallel for schedule(static) if (n > 4 * BLOCK)
  for (size_t at = 0; at < n; at += BLOCK) {
    uint16_t h[BLOCK];
    size_t k = n - at < BLOCK ? n - at : BLOCK;
    tl_from_f32(h, dt, v + at, k);
    tl_to_f32(v + at, h, dt, k);
  }
}

/* Layers held in bf16 or fp16: one 16-bit blob per layer, and one fp32 blob that
 * each layer is widened into just before it runs. The widening is the model's
 * layer hook (tl_layer_hook), the same door an FSDP runner gathers layers
 * through; the forward pass does not change. */
typedef struct {
  tl_dtype dtype;
  size_t numel;
  int n_layers;
  uint16_t **layers;
  float *wide;
} held_layers;

static int held_fetch(void *ctx, tl_model *m, int layer, const float **blob) {
  const held_layers *h = ctx;
  enum { BLOCK = 1 << 16 };
  (void)m;
#pragma omp parallel for schedule(static) if (h->numel > 4 * BLOCK)
  for (size_t at = 0; at < h->numel; at += BLOCK)
    tl_to_f32(h->wide + at, h->layers[layer] + at, h->dtype, h->numel - at < BLOCK ? h->numel - at : BLOCK);
  *blob = h->wide;
  return 0;
}

static void held_free(held_layers *h) {
  if (!h) return;
  for (int l = 0; l < h->n_layers; l++) free(h->layers[l]);
  free(h->layers);
  free(h->wide);
  free(h);
}

/* The held layers of m, or NULL (its hook is something else, or none). */
static held_layers *held_of(const tl_model *m) { return m->has_hook && m->hook.fetch == held_fetch ? m->hook.ctx : NULL; }

tl_dtype tl_model_held_dtype(const tl_model *m) {
  const held_layers *h = held_of(m);
  return h ? h->dtype : TL_F32;
}

/* ---- reading the weights ---- */

/* What the first pass found for each spec. */
typedef struct {
  tl_tspec *specs;
  int n;
  const tl_st_tensor **t;
  int *file;
  tl_dtype hold;       /* the dtype the weights are held in */
  tl_progress prog;    /* over the tensors' bytes, in MB */
  int64_t total, done; /* bytes */
} load_plan;

static void plan_free(load_plan *p) {
  free(p->specs);
  free(p->t);
  free(p->file);
}

/* One tensor read: the progress line moves on. */
static void advance(load_plan *p, const tl_st_tensor *t) {
  p->done += (int64_t)t->nbytes;
  /* whole MB, the last step only once everything is read: one 100% line */
  const int64_t units = p->done == p->total ? p->prog.total : p->done / 1000000;
  tl_progress_update(&p->prog, units, (double)p->done / 1e6);
}

/* The first pass: every spec's tensor found and checked (dtype, shape), every
 * file tensor accounted for, and the global weights converted. With a held
 * dtype other than fp32 the global weights (embeddings, final norm,
 * unembedding) keep fp32 storage, for the lens reads them, but take that
 * dtype's values. An untied embedding is left in its file (see
 * tl_model.embed_fd), which is opened for it, unless its values must first be
 * rounded to the held dtype. */
static int load_globals(tl_model *m, tl_weights *w, load_plan *p) {
  TL_TRY(tl_model_specs(m->fam, &m->cfg, &p->specs, &p->n));
  p->t = tl_calloc((size_t)p->n + 1, sizeof *p->t);
  p->file = tl_calloc((size_t)p->n + 1, sizeof *p->file);
  int64_t nparams = 0;
  for (int i = 0; i < p->n; i++) {
    const tl_tspec *s = &p->specs[i];
    int sh;
    const tl_st_tensor *t = find_spec_tensor(m, w, s, &sh);
    if (!t) return -1;
    const char *file = w->files[sh].path;
    if (t->dtype != TL_F32 && t->dtype != TL_F16 && t->dtype != TL_BF16)
      return tl_fail("%s: tensor '%s' has dtype %s (expected F32, F16 or BF16)", file, s->name, tl_dtype_name(t->dtype));
    if (t->ndim != s->ndim || t->shape[0] != s->shape[0] || (s->ndim == 2 && t->shape[1] != s->shape[1])) {
      char got[96], want[96];
      return tl_fail("%s: tensor '%s' has shape %s (expected %s from config.json)", file, s->name,
                     tl_shape_str(t->ndim, t->shape, got, sizeof got), tl_shape_str(s->ndim, s->shape, want, sizeof want));
    }
    if (i == 0) {
      m->cfg.dtype = t->dtype;
      p->hold = held_dtype_for(hold_setting, t->dtype);
    }
    w->files[sh].used[t - w->files[sh].tensors] = 1;
    p->t[i] = t;
    p->file[i] = sh;
    p->total += (int64_t)t->nbytes;
    nparams += tl_numel(t->ndim, t->shape);
  }
  for (int k = 0; k < w->nfiles; k++)
    for (int i = 0; i < w->files[k].n; i++) {
      const char *name = w->files[k].tensors[i].name;
      if (w->files[k].used[i] || tl_model_ignorable(m->fam, &m->cfg, name)) continue;
      return tl_fail("%s: unexpected tensor '%s' (not part of a %s model with %d layers as config.json describes)",
                     w->files[k].path, name, m->cfg.model_type, m->cfg.n_layers);
    }
  m->cfg.n_params = nparams;
  /* a big folder shows its loading (rank 0): a bar on a terminal, lines in a log */
  const bool show = tl_log_rank() == 0 && (w->nfiles > 1 || w->bytes >= ((int64_t)1 << 30));
  tl_progress_begin(&p->prog, "loading weights", (p->total + 999999) / 1000000, "MB", show, bar_setting);
  for (int i = 0; i < p->n; i++) {
    const tl_tspec *s = &p->specs[i];
    const tl_st_tensor *t = p->t[i];
    const tl_wfile *f = &w->files[p->file[i]];
    if (s->layer >= 0) continue;
    if (s->role == R_EMBED && !m->cfg.tied && s->xf == XF_COPY && (p->hold == TL_F32 || p->hold == t->dtype)) {
      TL_TRY(check_finite_raw(f->path, t));
      tl_mmap_release(t->data, t->nbytes);
      m->embed_fd = tl_open_regular(f->path, NULL);
      if (m->embed_fd < 0) return -1;
      m->embed_off = (const unsigned char *)t->data - f->base;
      m->embed_dtype = t->dtype;
      m->embed_path = tl_strdup(f->path);
    } else {
      float *dst = m->global + s->off;
      TL_TRY(convert(s, t, f->path, dst, &m->cfg));
      round_to(dst, (size_t)tl_numel(t->ndim, t->shape), p->hold);
    }
    advance(p, t);
  }
  return 0;
}

/* The second pass, one layer at a time: converted straight into its blob when
 * the model keeps fp32 layers whole; otherwise into one fp32 scratch blob, from
 * which this rank's slice is kept (FSDP; values rounded to the held dtype) or
 * the layer's 16-bit copy is made. */
static int load_layers(tl_model *m, tl_weights *w, load_plan *p) {
  const size_t numel = m->ll.numel;
  const bool scratch = m->slices || p->hold != TL_F32;
  held_layers *h = NULL;
  float *full = NULL;
  if (scratch) full = tl_aligned_alloc(numel * sizeof(float));
  if (!m->slices && p->hold != TL_F32) {
    h = tl_calloc(1, sizeof *h);
    h->dtype = p->hold;
    h->numel = numel;
    h->n_layers = m->cfg.n_layers;
    h->layers = tl_calloc((size_t)h->n_layers, sizeof *h->layers);
    h->wide = full; /* the scratch blob is the one the forward widens into */
  }
  int rc = 0;
  for (int l = 0; l < m->cfg.n_layers && rc == 0; l++) {
    float *dst = scratch ? full : m->layers[l];
    if (scratch) memset(full, 0, numel * sizeof(float));
    for (int i = 0; i < p->n && rc == 0; i++) {
      if (p->specs[i].layer != l) continue;
      rc = convert(&p->specs[i], p->t[i], w->files[p->file[i]].path, dst + p->specs[i].off, &m->cfg);
      if (rc == 0) advance(p, p->t[i]);
    }
    if (rc) break;
    if (m->slices) {
      round_to(full + m->slice_off, m->slice_cnt, p->hold);
      memcpy(m->slices[l], full + m->slice_off, m->slice_cnt * sizeof(float));
    } else if (h) {
      h->layers[l] = tl_malloc((numel ? numel : 1) * sizeof(uint16_t));
      tl_from_f32(h->layers[l], h->dtype, full, numel);
    }
  }
  if (h) {
    tl_layer_hook hook = {.fetch = held_fetch, .ctx = h};
    m->hook = hook;
    m->has_hook = 1;
  } else {
    free(full);
  }
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
  tl_weights w = {0};
  load_plan plan = {0};
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
  if (tl_weights_open(&w, dir)) goto done;
  m->global = tl_aligned_alloc(m->gl.numel * sizeof(float));
  m->layers = tl_calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
  if (load_globals(m, &w, &plan)) goto done;
  if (parts > 1) {
    tl_shard_range(m->ll.numel, parts, index, &m->slice_off, &m->slice_cnt);
    m->slices = tl_calloc((size_t)m->cfg.n_layers, sizeof *m->slices);
    for (int l = 0; l < m->cfg.n_layers; l++) m->slices[l] = tl_aligned_alloc((m->slice_cnt ? m->slice_cnt : 1) * sizeof(float));
  } else if (plan.hold == TL_F32) {
    for (int l = 0; l < m->cfg.n_layers; l++) m->layers[l] = tl_aligned_alloc(m->ll.numel * sizeof(float));
  }
  if (load_layers(m, &w, &plan)) goto done;
  derive_globals(m);
  m->rope_inv = tl_malloc((size_t)(m->cfg.rot_dim / 2 + 1) * sizeof(float));
  rc = 0;
done:
  if (rc) tl_progress_abort(&plan.prog);
  plan_free(&plan);
  tl_weights_close(&w);
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
  held_free(held_of(m));
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
  held_free(held_of(m)); /* a new hook supplies the layers from now on */
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
