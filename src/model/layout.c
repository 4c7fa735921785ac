/* Where each weight lives: the offsets of a layer blob and of the global blob
 * for a config, and the list of tensors a checkpoint must hold (name, shape,
 * destination), made from the family's name tables. */
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

void tl_layouts(const tl_model_config *c, tl_layer_layout *ll, tl_global_layout *gl) {
  size_t d = c->d_model, qkv = (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim,
         att = (size_t)c->n_heads * c->head_dim, ff = c->d_ff, up = c->gated_mlp ? 2 * ff : ff;
  int ln = c->norm == TL_NORM_LAYERNORM, affine = c->norm_affine, two_norms = !c->shared_norm;
  size_t o = 0;
#define PUT(field, n, present) ll->field = (present) ? (o += (n), o - (n)) : TL_NONE
  PUT(ln1_w, d, affine);
  PUT(ln1_b, d, affine && ln);
  PUT(ln2_w, d, affine && two_norms);
  PUT(ln2_b, d, affine && two_norms && ln);
  PUT(qkv_w, qkv * d, 1);
  PUT(qkv_b, qkv, c->qkv_bias);
  PUT(o_w, d * att, 1);
  PUT(o_b, d, c->out_bias);
  PUT(up_w, up * d, 1);
  PUT(up_b, up, c->mlp_bias);
  PUT(down_w, d * ff, 1);
  PUT(down_b, d, c->mlp_bias);
#undef PUT
  ll->numel = o;
  o = 0;
  size_t V = c->vocab, e = c->embed_dim, proj = c->embed_dim != c->d_model;
#define PUT(field, n, present) gl->field = (present) ? (o += (n), o - (n)) : TL_NONE
  PUT(embed, V * e, 1);
  PUT(pos, (size_t)(c->max_pos + c->pos_offset) * d, c->learned_pos);
  PUT(embed_norm_w, d, c->embed_norm);
  PUT(embed_norm_b, d, c->embed_norm);
  PUT(proj_in, d * e, proj);
  PUT(proj_out, e * d, proj);
  /* a norm without weights still gets ones and zeros here: the forward pass and the
   * lens then run one LayerNorm for every family */
  PUT(final_w, d, c->final_norm || !affine);
  PUT(final_b, d, (c->final_norm || !affine) && ln);
  PUT(lm_w, V * e, !c->tied);
  PUT(lm_b, V, c->lm_bias);
#undef PUT
  gl->numel = o;
}

/* Destination offset and file shape of a role; returns 0 if the config has no such tensor. */
static int resolve(const tl_model_config *c, const tl_layer_layout *ll, const tl_global_layout *gl, tl_role r,
                   size_t *off, int *ndim, int64_t shape[2]) {
  int64_t d = c->d_model, hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, ff = c->d_ff, V = c->vocab,
          e = c->embed_dim;
  size_t base = TL_NONE, add = 0;
  int64_t rows = 0, cols = 0; /* cols 0 = 1-D */
  switch (r) {
  case R_EMBED: base = gl->embed; rows = V; cols = e; break;
  case R_POS: base = gl->pos; rows = c->max_pos + c->pos_offset; cols = d; break;
  case R_EMBED_NORM_W: base = gl->embed_norm_w; rows = d; break;
  case R_EMBED_NORM_B: base = gl->embed_norm_b; rows = d; break;
  case R_PROJ_IN: base = gl->proj_in; rows = d; cols = e; break;
  case R_PROJ_OUT: base = gl->proj_out; rows = e; cols = d; break;
  case R_FINAL_W: base = c->norm_affine ? gl->final_w : TL_NONE; rows = d; break;
  case R_FINAL_B: base = c->norm_affine ? gl->final_b : TL_NONE; rows = d; break;
  case R_LM_W: base = gl->lm_w; rows = V; cols = e; break;
  case R_LM_B: base = gl->lm_b; rows = V; break;
  case R_LN1_W: base = ll->ln1_w; rows = d; break;
  case R_LN1_B: base = ll->ln1_b; rows = d; break;
  case R_LN2_W: base = ll->ln2_w; rows = d; break;
  case R_LN2_B: base = ll->ln2_b; rows = d; break;
  case R_QKV_W: base = ll->qkv_w; rows = (H + 2 * KV) * hd; cols = d; break;
  case R_QKV_B: base = ll->qkv_b; rows = (H + 2 * KV) * hd; break;
  case R_Q_W: base = ll->qkv_w; rows = H * hd; cols = d; break;
  case R_K_W: base = ll->qkv_w; add = (size_t)(H * hd * d); rows = KV * hd; cols = d; break;
  case R_V_W: base = ll->qkv_w; add = (size_t)((H + KV) * hd * d); rows = KV * hd; cols = d; break;
  case R_Q_B: base = ll->qkv_b; rows = H * hd; break;
  case R_K_B: base = ll->qkv_b; add = (size_t)(H * hd); rows = KV * hd; break;
  case R_V_B: base = ll->qkv_b; add = (size_t)((H + KV) * hd); rows = KV * hd; break;
  case R_O_W: base = ll->o_w; rows = d; cols = H * hd; break;
  case R_O_B: base = ll->o_b; rows = d; break;
  case R_GATE_UP_W: base = c->gated_mlp ? ll->up_w : TL_NONE; rows = 2 * ff; cols = d; break;
  case R_GATE_W: base = c->gated_mlp ? ll->up_w : TL_NONE; rows = ff; cols = d; break;
  case R_GATE_B: base = c->gated_mlp ? ll->up_b : TL_NONE; rows = ff; break;
  case R_UP_W: base = ll->up_w; add = c->gated_mlp ? (size_t)(ff * d) : 0; rows = ff; cols = d; break;
  case R_UP_B: base = ll->up_b; add = c->gated_mlp ? (size_t)ff : 0; rows = ff; break;
  case R_DOWN_W: base = ll->down_w; rows = d; cols = ff; break;
  case R_DOWN_B: base = ll->down_b; rows = d; break;
  }
  if (base == TL_NONE) return 0;
  *off = base + add;
  *ndim = cols ? 2 : 1;
  shape[0] = rows;
  shape[1] = cols;
  return 1;
}

static void add_spec(tl_tspec **out, int *n, int *cap, const tl_name_entry *e, const char *name, int layer,
                     size_t off, int ndim, const int64_t shape[2]) {
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    *out = tl_realloc(*out, (size_t)*cap * sizeof **out);
  }
  tl_tspec *s = &(*out)[(*n)++];
  snprintf(s->name, sizeof s->name, "%s", name);
  s->role = e->role;
  s->xf = e->xf;
  s->layer = layer;
  s->off = off;
  s->ndim = ndim;
  s->shape[0] = shape[0];
  s->shape[1] = shape[1];
  if (e->xf == XF_TRANSPOSE && ndim == 2) { /* the file holds [in, out] */
    s->shape[0] = shape[1];
    s->shape[1] = shape[0];
  }
}

int tl_model_specs(const tl_family *f, const tl_model_config *c, tl_tspec **out, int *n) {
  tl_layer_layout ll;
  tl_global_layout gl;
  tl_layouts(c, &ll, &gl);
  *out = NULL;
  *n = 0;
  int cap = 0, ndim;
  size_t off;
  int64_t shape[2];
  char name[192];
  for (const tl_name_entry *e = f->globals; e->name; e++)
    if (resolve(c, &ll, &gl, e->role, &off, &ndim, shape)) add_spec(out, n, &cap, e, e->name, -1, off, ndim, shape);
  const tl_name_entry *tables[3] = {f->layer, f->layer_qkv, f->layer_variant[c->variant ? 1 : 0]};
  for (int l = 0; l < c->n_layers; l++)
    for (int t = 0; t < 3; t++)
      for (const tl_name_entry *e = tables[t]; e && e->name; e++)
        if (resolve(c, &ll, &gl, e->role, &off, &ndim, shape)) {
          int k = snprintf(name, sizeof name, f->layer_prefix, l);
          snprintf(name + k, sizeof name - k, "%s", e->name);
          add_spec(out, n, &cap, e, name, l, off, ndim, shape);
        }
  return 0;
}

int tl_model_ignorable(const tl_family *f, const tl_model_config *c, const char *name) {
  size_t n = strlen(name);
  for (const char *const *s = f->ignored_suffixes; *s; s++) {
    size_t k = strlen(*s);
    if (n > k && !strcmp(name + n - k, *s)) return 1;
  }
  /* A tied model may still carry a copy of the output embedding; HF ignores it too. */
  const char *lm = tl_family_global_name(f, R_LM_W);
  return c->tied && lm && !strcmp(lm, name);
}
