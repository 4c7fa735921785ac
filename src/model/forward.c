/* The forward pass, shared by every family: embeddings, L blocks (pre-norm,
 * serial or parallel residual), final norm, unembedding. Every array operation
 * goes through the backend (m->be); this file only sequences them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "tlens/rowmath.h"

/* ALiBi slopes of BLOOM's build_alibi_tensor: for the largest power of two
 * n <= heads, head h < n gets 2^(-8(h+1)/n); the remaining heads take every other
 * slope of the next power of two: 2^(-4(2j+1)/n). */
static void alibi_slopes(float *out, int heads) {
  int n = 1;
  while (2 * n <= heads) n *= 2;
  for (int h = 0; h < n; h++) out[h] = (float)pow(2.0, -8.0 * (h + 1) / n);
  for (int j = 0; n + j < heads; j++) out[n + j] = (float)pow(2.0, -4.0 * (2 * j + 1) / n);
}

void tl_rope_frequencies(const tl_model_config *c, int T, float *inv, float *pos_div) {
  const int half = c->rot_dim / 2, dim = c->rot_dim;
  float theta = c->rope_theta;
  *pos_div = c->rope_scaling == TL_ROPE_LINEAR ? c->rope_factor : 1.0f;
  if (c->rope_scaling == TL_ROPE_DYNAMIC && T > c->max_pos) { /* NTK: the base grows past the trained length */
    const float f = c->rope_factor;
    theta *= powf(f * (float)T / (float)c->max_pos - (f - 1.0f), (float)dim / (float)(dim - 2));
  }
  for (int i = 0; i < half; i++) inv[i] = tl_rope_inv_freq(theta, i, dim);
  if (c->rope_scaling != TL_ROPE_LLAMA3) return;
  /* Llama 3.1: wavelengths beyond original / low_freq_factor are stretched by factor,
   * those below original / high_freq_factor kept, and the band between blended */
  const float f = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor,
              orig = (float)c->rope_original_max_pos, two_pi = 6.283185307179586f;
  for (int i = 0; i < half; i++) {
    const float wavelen = two_pi / inv[i];
    if (wavelen > orig / lo) {
      inv[i] /= f;
    } else if (!(wavelen < orig / hi)) {
      const float smooth = (orig / wavelen - lo) / (hi - lo);
      inv[i] = (1.0f - smooth) * inv[i] / f + smooth * inv[i];
    }
  }
}

/* Grows the scratch buffers to hold `rows` token positions. */
static int ensure_scratch(tl_model *m, int rows) {
  if (rows <= m->cap_rows) return 0;
  const tl_model_config *c = &m->cfg;
  const tl_backend *be = m->be;
  float **bufs[] = {&m->x, &m->hn, &m->hn2, &m->qkv, &m->att, &m->mlp_h, &m->mlp_g, &m->emb, &m->alibi_slopes};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    if (*bufs[i]) be->free(*bufs[i]);
    *bufs[i] = NULL;
  }
  if (m->ids_dev) be->free(m->ids_dev);
  free(m->stage);
  m->cap_rows = 0;
  size_t n = (size_t)rows, d = c->d_model, qkv = (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim,
         att = (size_t)c->n_heads * c->head_dim, chunk = n < TL_MODEL_MLP_CHUNK ? n : TL_MODEL_MLP_CHUNK;
  m->x = be->alloc(n * d * sizeof(float));
  m->hn = be->alloc(n * d * sizeof(float));
  m->hn2 = be->alloc(n * d * sizeof(float));
  m->qkv = be->alloc(n * qkv * sizeof(float));
  m->att = be->alloc(n * att * sizeof(float));
  m->mlp_h = be->alloc(chunk * (c->gated_mlp ? 2 : 1) * c->d_ff * sizeof(float));
  m->mlp_g = c->gated_mlp ? be->alloc(chunk * c->d_ff * sizeof(float)) : NULL;
  m->emb = c->embed_dim != c->d_model ? be->alloc(n * c->embed_dim * sizeof(float)) : NULL;
  m->ids_dev = be->alloc(n * sizeof(int32_t));
  /* host staging for hidden states (and embedding rows) when the backend is not the host */
  m->stage = be->device == TL_DEVICE_CPU
                 ? NULL
                 : tl_malloc(n * (c->embed_dim > c->d_model ? c->embed_dim : c->d_model) * sizeof(float));
  if (c->alibi) {
    float *host = tl_malloc((size_t)c->n_heads * sizeof(float));
    alibi_slopes(host, c->n_heads);
    m->alibi_slopes = be->alloc((size_t)c->n_heads * sizeof(float));
    int rc = be->to_device(m->alibi_slopes, host, (size_t)c->n_heads * sizeof(float));
    free(host);
    TL_TRY(rc);
  }
  m->cap_rows = rows;
  return 0;
}

/* Every backend op returns 0 or -1 with its message recorded; BE passes a failure
 * up, so a failed kernel ends the forward with that line instead of running on. */
#define BE(call) TL_TRY(call)

/* y = norm(x) with the model's kind of norm. A norm without parameters (olmo)
 * gets w = NULL and b = NULL and uses the global ones and zeros. */
static int norm(tl_model *m, float *y, const float *x, const float *w, const float *b, int rows) {
  const tl_model_config *c = &m->cfg;
  if (!w) {
    w = m->global + m->gl.final_w;
    b = m->gl.final_b == TL_NONE ? NULL : m->global + m->gl.final_b;
  }
  if (c->norm == TL_NORM_LAYERNORM) return m->be->layernorm(y, x, w, b, rows, c->d_model, c->norm_eps);
  return m->be->rmsnorm(y, x, w, rows, c->d_model, c->norm_eps, c->norm_add_one);
}

/* y (+)= mlp(h) over rows (acc: add to y, else overwrite it), in chunks so the
 * d_ff-wide intermediate stays bounded. h may be y itself (post-norm): each chunk
 * reads its rows before writing them. */
static int mlp_out(tl_model *m, const tl_layer_weights *w, float *y, const float *h, int rows, int acc) {
  const tl_model_config *c = &m->cfg;
  const tl_backend *be = m->be;
  int d = c->d_model, ff = c->d_ff, up = c->gated_mlp ? 2 * ff : ff;
  for (int r0 = 0; r0 < rows; r0 += TL_MODEL_MLP_CHUNK) {
    int n = rows - r0 < TL_MODEL_MLP_CHUNK ? rows - r0 : TL_MODEL_MLP_CHUNK;
    BE(be->linear(m->mlp_h, h + (size_t)r0 * d, w->up_w, w->up_b, n, up, d, 0));
    const float *a = m->mlp_h;
    if (c->gated_mlp) {
      BE(be->glu(m->mlp_g, m->mlp_h, n, ff, c->act));
      a = m->mlp_g;
    } else {
      BE(be->act(m->mlp_h, (size_t)n * ff, c->act));
    }
    BE(be->linear(y + (size_t)r0 * d, a, w->down_w, w->down_b, n, d, ff, acc));
  }
  return 0;
}

/* Hands the sub-layer output in m->sub to the hook (in host memory), then adds
 * what the hook left there to the residual stream m->x. */
static int sublayer_add(tl_model *m, int layer, int kind, int B, int T) {
  const tl_backend *be = m->be;
  const int d = m->cfg.d_model;
  const size_t n = (size_t)B * T * d;
  float *h = m->sub;
  if (m->stage) {
    BE(be->to_host(m->stage, m->sub, n * sizeof(float)));
    h = m->stage;
  }
  TL_TRY(m->sublayer(m->sublayer_ctx, layer, kind, h, B, T, d));
  if (m->stage) BE(be->to_device(m->sub, m->stage, n * sizeof(float)));
  return be->add(m->x, m->x, m->sub, n);
}

/* x += o_proj(m->att) and x += mlp(h): straight into x without a hook (one GEMM
 * accumulating), through m->sub and the hook with one. */
static int attn_add(tl_model *m, const tl_layer_weights *w, int layer, int B, int T) {
  const tl_model_config *c = &m->cfg;
  const int hook = m->sublayer != NULL;
  BE(m->be->linear(hook ? m->sub : m->x, m->att, w->o_w, w->o_b, B * T, c->d_model, c->n_heads * c->head_dim, !hook));
  return hook ? sublayer_add(m, layer, TL_SUBLAYER_ATTN, B, T) : 0;
}

static int mlp_add(tl_model *m, const tl_layer_weights *w, int layer, const float *h, int B, int T) {
  const int hook = m->sublayer != NULL;
  BE(mlp_out(m, w, hook ? m->sub : m->x, h, B * T, !hook));
  return hook ? sublayer_add(m, layer, TL_SUBLAYER_MLP, B, T) : 0;
}

/* m->att = the attention of layer `layer` over the normalised rows h. */
static int attention(tl_model *m, const tl_layer_weights *w, int layer, const float *h, int B, int T) {
  const tl_model_config *c = &m->cfg;
  const tl_backend *be = m->be;
  int rows = B * T, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, qkv = (H + 2 * KV) * hd;
  float scale = c->attn_scale;
  if (c->scale_attn_by_layer) scale /= (float)(layer + 1);
  int window = tl_layer_window(c, layer);
  BE(be->linear(m->qkv, h, w->qkv_w, w->qkv_b, rows, qkv, c->d_model, 0));
  /* q and k heads are adjacent at the start of each qkv row: rotate both at once
   * (GPT-J's interleaved pairs were put in this order at load) */
  if (c->rot_dim && c->rope_scaling == TL_ROPE_DEFAULT)
    BE(be->rope(m->qkv, B, T, qkv, H + KV, hd, c->rot_dim, c->rope_theta));
  else if (c->rot_dim)
    BE(be->rope_freqs(m->qkv, B, T, qkv, H + KV, hd, c->rot_dim, m->rope_inv, m->rope_pos_div));
  if (c->alibi) return be->attention_alibi(m->att, m->qkv, B, T, H, KV, hd, scale, window, m->alibi_slopes);
  return be->attention(m->att, m->qkv, B, T, H, KV, hd, scale, window);
}

/* One transformer block on the residual stream m->x, in place. */
static int block(tl_model *m, const tl_layer_weights *w, int layer, int B, int T) {
  const tl_model_config *c = &m->cfg;
  int rows = B * T;

  if (c->post_norm) {
    /* x = ln1(x + attn(x)); x = ln2(x + mlp(x)) */
    BE(attention(m, w, layer, m->x, B, T));
    BE(attn_add(m, w, layer, B, T));
    BE(norm(m, m->x, m->x, w->ln1_w, w->ln1_b, rows));
    BE(mlp_add(m, w, layer, m->x, B, T));
    return norm(m, m->x, m->x, w->ln2_w, w->ln2_b, rows);
  }
  BE(norm(m, m->hn, m->x, w->ln1_w, w->ln1_b, rows));
  BE(attention(m, w, layer, m->hn, B, T));
  if (c->parallel_residual) {
    /* x = x + attn(ln1(x)) + mlp(ln2(x)): both norms see the block's input
     * (one norm for both when shared), so the MLP's input is ready before the
     * attention output is added */
    const float *h2 = m->hn;
    if (!c->shared_norm) {
      BE(norm(m, m->hn2, m->x, w->ln2_w, w->ln2_b, rows));
      h2 = m->hn2;
    }
    BE(attn_add(m, w, layer, B, T));
    return mlp_add(m, w, layer, h2, B, T);
  }
  BE(attn_add(m, w, layer, B, T));
  BE(norm(m, m->hn, m->x, w->ln2_w, w->ln2_b, rows));
  return mlp_add(m, w, layer, m->hn, B, T);
}

/* Hands hidden state `index` (device array) to the callback, in host memory. */
static int emit(tl_model *m, tl_hidden_fn fn, void *ctx, int index, const float *h, int B, int T) {
  if (!fn) return 0;
  size_t n = (size_t)B * T * m->cfg.d_model;
  if (m->stage) {
    BE(m->be->to_host(m->stage, h, n * sizeof(float)));
    h = m->stage;
  }
  return fn(ctx, index, h, B, T, m->cfg.d_model);
}

/* dst (backend memory, rows of embed_dim) = the embedding rows of ids, read from
 * the weights file and converted from its dtype (see tl_model.embed_fd). */
static int embed_from_file(tl_model *m, float *dst_dev, const int32_t *ids, int rows) {
  const size_t d = (size_t)m->cfg.embed_dim, row_bytes = d * tl_dtype_size(m->embed_dtype);
  float *dst = m->be->device == TL_DEVICE_CPU ? dst_dev : m->stage;
  int bad = -1;
#pragma omp parallel if (rows > 64)
  {
    char *buf = tl_malloc(row_bytes);
#pragma omp for schedule(static)
    for (int r = 0; r < rows; r++) {
      off_t at = (off_t)(m->embed_off + (int64_t)ids[r] * (int64_t)row_bytes);
      if (pread(m->embed_fd, buf, row_bytes, at) != (ssize_t)row_bytes) {
#pragma omp critical
        bad = r;
        continue;
      }
      tl_to_f32(dst + (size_t)r * d, buf, m->embed_dtype, d);
    }
    free(buf);
  }
  if (bad >= 0)
    return tl_fail("%s: cannot read the embedding row of token %d (was the file changed after loading?)",
                   m->embed_path, ids[bad]);
  if (dst != dst_dev) BE(m->be->to_device(dst_dev, dst, (size_t)rows * d * sizeof(float)));
  return 0;
}

/* m->x = hidden state 0: token embeddings (projected to d_model, scaled), plus
 * learned positions, then the embedding norm, as each family has them. */
static int embed(tl_model *m, const int32_t *ids, int B, int T) {
  const tl_model_config *c = &m->cfg;
  const tl_backend *be = m->be;
  const float *g = m->global;
  int rows = B * T, d = c->d_model;
  float *e = m->emb ? m->emb : m->x; /* embed_dim wide */
  if (m->embed_fd >= 0) TL_TRY(embed_from_file(m, e, ids, rows));
  else BE(be->embed(e, g + m->gl.embed, m->ids_dev, rows, c->embed_dim));
  if (m->emb) BE(be->linear(m->x, m->emb, g + m->gl.proj_in, NULL, rows, d, c->embed_dim, 0));
  if (c->embed_scale) BE(be->scale(m->x, (size_t)rows * d, c->embed_scale));
  if (c->learned_pos)
    for (int b = 0; b < B; b++) {
      float *xb = m->x + (size_t)b * T * d;
      BE(be->add(xb, xb, g + m->gl.pos + (size_t)c->pos_offset * d, (size_t)T * d)); /* positions 0..T-1 */
    }
  if (c->embed_norm)
    BE(be->layernorm(m->x, m->x, g + m->gl.embed_norm_w, g + m->gl.embed_norm_b, rows, d, c->norm_eps));
  return 0;
}

static int forward(tl_model *m, const int32_t *ids, int B, int T, tl_hidden_fn fn, void *ctx, float *logits) {
  const tl_model_config *c = &m->cfg;
  const tl_backend *be = m->be;
  if (B <= 0 || T <= 0 || (int64_t)B * T > (1 << 30))
    return tl_fail("model forward: batch %d x %d tokens is not a positive size", B, T);
  if (c->learned_pos && T > c->max_pos)
    return tl_fail("model forward: sequence length %d exceeds the model's %d positions (n_positions)", T,
                   c->max_pos);
  for (int i = 0; i < B * T; i++)
    if (ids[i] < 0 || ids[i] >= c->vocab)
      return tl_fail("input_ids[%d][%d] = %d is out of range [0, %d) for this model's vocabulary", i / T, i % T,
                     ids[i], c->vocab);
  int rows = B * T, d = c->d_model, L = c->n_layers;
  if (!(m->has_hook && m->hook.fetch))
    for (int l = 0; l < L; l++)
      if (!m->layers[l])
        return tl_fail("model forward: layer %d has no weights here (dropped or loaded as a slice) and no hook "
                       "gathers them", l);
  TL_TRY(ensure_scratch(m, rows));
  if (c->rot_dim && c->rope_scaling != TL_ROPE_DEFAULT) tl_rope_frequencies(c, T, m->rope_inv, &m->rope_pos_div);
  BE(be->to_device(m->ids_dev, ids, (size_t)rows * sizeof(int32_t)));
  TL_TRY(embed(m, ids, B, T));
  int rc = emit(m, fn, ctx, 0, m->x, B, T);
  for (int l = 0; l < L && !rc; l++) {
    tl_layer_weights w;
    const float *blob = NULL;
    TL_TRY(tl_model_layer_weights(m, l, &w, &blob));
    rc = block(m, &w, l, B, T);
    int rel = tl_model_layer_release(m, l, blob);
    if (rc == 0) rc = rel;
    /* the last block's raw output is not returned: HF returns it after the final norm */
    if (rc == 0 && l < L - 1) rc = emit(m, fn, ctx, l + 1, m->x, B, T);
  }
  if (rc) return rc;
  const float *g = m->global, *out = m->x;
  if (c->final_norm) {
    BE(norm(m, m->hn, m->x, g + m->gl.final_w, m->gl.final_b == TL_NONE ? NULL : g + m->gl.final_b, rows));
    out = m->hn;
  }
  TL_TRY(emit(m, fn, ctx, L, out, B, T));
  if (logits) {
    const float *W_U = m->w_unembed ? m->w_unembed : g + (c->tied ? m->gl.embed : m->gl.lm_w);
    const float *b_U = m->gl.lm_b == TL_NONE ? NULL : g + m->gl.lm_b;
    if (be->device == TL_DEVICE_CPU) {
      BE(be->linear(logits, out, W_U, b_U, rows, c->vocab, d, 0));
    } else {
      float *dev = be->alloc((size_t)rows * c->vocab * sizeof(float));
      int rc2 = be->linear(dev, out, W_U, b_U, rows, c->vocab, d, 0);
      if (rc2 == 0) rc2 = be->to_host(logits, dev, (size_t)rows * c->vocab * sizeof(float));
      be->free(dev);
      TL_TRY(rc2);
    }
  }
  return 0;
}

void tl_model_set_sublayer_hook(tl_model *m, tl_sublayer_fn fn, void *ctx) {
  m->sublayer = fn;
  m->sublayer_ctx = fn ? ctx : NULL;
}

int tl_model_forward_cb(tl_model *m, const int32_t *ids, int B, int T, tl_hidden_fn fn, void *ctx, float *logits) {
  if (!m->sublayer) return forward(m, ids, B, T, fn, ctx, logits);
  /* the sub-layer outputs need their own [rows, d] buffer, for this forward only
   * (after the size checks, which forward() makes before anything is allocated) */
  if (B <= 0 || T <= 0 || (int64_t)B * T > (1 << 30)) return forward(m, ids, B, T, fn, ctx, logits);
  m->sub = m->be->alloc((size_t)B * T * m->cfg.d_model * sizeof(float));
  int rc = forward(m, ids, B, T, fn, ctx, logits);
  m->be->free(m->sub);
  m->sub = NULL;
  return rc;
}

static int store_hidden(void *ctx, int index, const float *h, int B, int T, int d) {
  float *all = ctx;
  size_t n = (size_t)B * T * d;
  memcpy(all + (size_t)index * n, h, n * sizeof(float));
  return 0;
}

int tl_model_forward(tl_model *m, const int32_t *ids, int B, int T, float *hidden, float *logits) {
  return tl_model_forward_cb(m, ids, B, T, hidden ? store_hidden : NULL, hidden, logits);
}

int tl_model_greedy(tl_model *m, const int32_t *prompt, int n_prompt, int n_new, int32_t *out) {
  int V = m->cfg.vocab, total = n_prompt + n_new;
  if (n_prompt <= 0 || n_new < 0) return tl_fail("greedy: need a non-empty prompt and n_new >= 0");
  memcpy(out, prompt, (size_t)n_prompt * sizeof(int32_t));
  float *logits = tl_malloc((size_t)total * V * sizeof(float));
  int rc = 0;
  for (int n = n_prompt; n < total && !rc; n++) {
    rc = tl_model_forward(m, out, 1, n, NULL, logits);
    if (rc) break;
    const float *last = logits + (size_t)(n - 1) * V;
    int best = 0;
    for (int v = 1; v < V; v++)
      if (last[v] > last[best]) best = v;
    out[n] = best;
  }
  free(logits);
  return rc;
}
