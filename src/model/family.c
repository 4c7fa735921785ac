/* The architecture families as data: config.json fields, checkpoint tensor names
 * and how each tensor maps into our layout. Adding a family means adding a
 * read_config/write_config pair and two name tables here; the loader and the
 * forward pass are shared. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

/* ---- config.json helpers: missing/ill-typed fields are one-line errors ---- */

static const cJSON *field(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Integer field in [lo, hi]; when absent: def if !required, else an error. */
static int get_int(const cJSON *j, const char *path, const char *key, int required, long def, long lo, long hi,
                   int *out) {
  const cJSON *v = field(j, key);
  if (!v) {
    if (required) return tl_fail("%s: field '%s' is missing (expected an integer)", path, key);
    *out = (int)def;
    return 0;
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
    return tl_fail("%s: field '%s' must be an integer", path, key);
  if (v->valuedouble < lo || v->valuedouble > hi)
    return tl_fail("%s: field '%s' = %.17g is out of range [%ld, %ld]", path, key, v->valuedouble, lo, hi);
  *out = (int)v->valuedouble;
  return 0;
}

static int get_float(const cJSON *j, const char *path, const char *key, double def, double lo, double hi,
                     float *out) {
  const cJSON *v = field(j, key);
  if (!v) {
    *out = (float)def;
    return 0;
  }
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
    return tl_fail("%s: field '%s' must be a number in [%g, %g]", path, key, lo, hi);
  *out = (float)v->valuedouble;
  return 0;
}

static int get_bool(const cJSON *j, const char *path, const char *key, int def, int *out) {
  const cJSON *v = field(j, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!cJSON_IsBool(v)) return tl_fail("%s: field '%s' must be true or false", path, key);
  *out = cJSON_IsTrue(v);
  return 0;
}

static int get_act(const cJSON *j, const char *path, const char *key, const char *def, tl_act *out) {
  const cJSON *v = field(j, key);
  const char *s = def;
  if (v) {
    if (!cJSON_IsString(v)) return tl_fail("%s: field '%s' must be a string", path, key);
    s = v->valuestring;
  }
  if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_fast") || !strcmp(s, "gelu_pytorch_tanh")) *out = TL_ACT_GELU_NEW;
  else if (!strcmp(s, "gelu")) *out = TL_ACT_GELU;
  else if (!strcmp(s, "silu") || !strcmp(s, "swish")) *out = TL_ACT_SILU;
  else if (!strcmp(s, "relu")) *out = TL_ACT_RELU;
  else
    return tl_fail("%s: field '%s' = '%s' is not supported (expected gelu_new, gelu_fast, gelu_pytorch_tanh, "
                   "gelu, silu or relu)", path, key, s);
  return 0;
}

static const char *act_name(tl_act a) {
  switch (a) {
  case TL_ACT_GELU_NEW: return "gelu_new";
  case TL_ACT_GELU: return "gelu";
  case TL_ACT_SILU: return "silu";
  case TL_ACT_RELU: return "relu";
  }
  return "gelu";
}

static int no_rope_scaling(const cJSON *j, const char *path) {
  if (field(j, "rope_scaling")) return tl_fail("%s: field 'rope_scaling' is not supported (expected null)", path);
  return 0;
}

#define BIG 1000000000L /* sizes above this are certainly a corrupt config */

/* ---- gpt2 ---- */

static int gpt2_read(const cJSON *j, const char *p, tl_model_config *c) {
  TL_TRY(get_int(j, p, "n_embd", 1, 0, 1, BIG, &c->d_model));
  TL_TRY(get_int(j, p, "n_layer", 1, 0, 1, 100000, &c->n_layers));
  TL_TRY(get_int(j, p, "n_head", 1, 0, 1, 100000, &c->n_heads));
  TL_TRY(get_int(j, p, "n_inner", 0, 4L * c->d_model, 1, BIG, &c->d_ff));
  TL_TRY(get_int(j, p, "vocab_size", 1, 0, 1, BIG, &c->vocab));
  TL_TRY(get_int(j, p, "n_positions", 1, 0, 1, BIG, &c->max_pos));
  TL_TRY(get_float(j, p, "layer_norm_epsilon", 1e-5, 0, 1, &c->norm_eps));
  TL_TRY(get_act(j, p, "activation_function", "gelu_new", &c->act));
  TL_TRY(get_bool(j, p, "tie_word_embeddings", 1, &c->tied));
  TL_TRY(get_bool(j, p, "scale_attn_by_inverse_layer_idx", 0, &c->scale_attn_by_layer));
  int scale = 1;
  TL_TRY(get_bool(j, p, "scale_attn_weights", 1, &scale));
  if (!scale) return tl_fail("%s: field 'scale_attn_weights' = false is not supported (expected true)", p);
  if (c->d_model % c->n_heads)
    return tl_fail("%s: n_embd %d is not divisible by n_head %d", p, c->d_model, c->n_heads);
  c->n_kv_heads = c->n_heads;
  c->head_dim = c->d_model / c->n_heads;
  c->norm = TL_NORM_LAYERNORM;
  c->learned_pos = 1;
  c->attn_bias = c->mlp_bias = 1;
  return 0;
}

static void gpt2_write(cJSON *j, const tl_model_config *c) {
  cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray((const char *[]){"GPT2LMHeadModel"}, 1));
  cJSON_AddStringToObject(j, "activation_function", "gelu_new");
  cJSON_AddNumberToObject(j, "layer_norm_epsilon", 1e-5);
  cJSON_AddNumberToObject(j, "n_embd", c->d_model);
  cJSON_AddNumberToObject(j, "n_head", c->n_heads);
  cJSON_AddNumberToObject(j, "n_inner", c->d_ff);
  cJSON_AddNumberToObject(j, "n_layer", c->n_layers);
  cJSON_AddNumberToObject(j, "n_positions", c->max_pos);
  cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
  cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied);
}

static const tl_name_entry gpt2_globals[] = {
    {"transformer.wte.weight", R_EMBED, XF_COPY},     {"transformer.wpe.weight", R_POS, XF_COPY},
    {"transformer.ln_f.weight", R_FINAL_W, XF_COPY},  {"transformer.ln_f.bias", R_FINAL_B, XF_COPY},
    {"lm_head.weight", R_LM_W, XF_COPY},              {NULL, 0, 0}};
static const tl_name_entry gpt2_layer[] = {
    {"ln_1.weight", R_LN1_W, XF_COPY},
    {"ln_1.bias", R_LN1_B, XF_COPY},
    {"attn.c_attn.weight", R_QKV_W, XF_TRANSPOSE},
    {"attn.c_attn.bias", R_QKV_B, XF_COPY},
    {"attn.c_proj.weight", R_O_W, XF_TRANSPOSE},
    {"attn.c_proj.bias", R_O_B, XF_COPY},
    {"ln_2.weight", R_LN2_W, XF_COPY},
    {"ln_2.bias", R_LN2_B, XF_COPY},
    {"mlp.c_fc.weight", R_UP_W, XF_TRANSPOSE},
    {"mlp.c_fc.bias", R_UP_B, XF_COPY},
    {"mlp.c_proj.weight", R_DOWN_W, XF_TRANSPOSE},
    {"mlp.c_proj.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const gpt2_ignored[] = {".attn.bias", ".attn.masked_bias", NULL};

/* ---- gpt_neox ---- */

static int neox_read(const cJSON *j, const char *p, tl_model_config *c) {
  TL_TRY(get_int(j, p, "hidden_size", 1, 0, 1, BIG, &c->d_model));
  TL_TRY(get_int(j, p, "num_hidden_layers", 1, 0, 1, 100000, &c->n_layers));
  TL_TRY(get_int(j, p, "num_attention_heads", 1, 0, 1, 100000, &c->n_heads));
  TL_TRY(get_int(j, p, "intermediate_size", 1, 0, 1, BIG, &c->d_ff));
  TL_TRY(get_int(j, p, "vocab_size", 1, 0, 1, BIG, &c->vocab));
  TL_TRY(get_int(j, p, "max_position_embeddings", 1, 0, 1, BIG, &c->max_pos));
  TL_TRY(get_float(j, p, "layer_norm_eps", 1e-5, 0, 1, &c->norm_eps));
  TL_TRY(get_act(j, p, "hidden_act", "gelu", &c->act));
  float pct = 0.25f;
  TL_TRY(get_float(j, p, "rotary_pct", 0.25, 0, 1, &pct));
  float base = 10000.0f;
  TL_TRY(get_float(j, p, "rotary_emb_base", 10000.0, 1e-6, 1e30, &base));
  if (!field(j, "rotary_emb_base")) TL_TRY(get_float(j, p, "rope_theta", 10000.0, 1e-6, 1e30, &base));
  TL_TRY(no_rope_scaling(j, p));
  TL_TRY(get_bool(j, p, "use_parallel_residual", 1, &c->parallel_residual));
  TL_TRY(get_bool(j, p, "tie_word_embeddings", 0, &c->tied));
  TL_TRY(get_bool(j, p, "attention_bias", 1, &c->attn_bias));
  if (c->d_model % c->n_heads)
    return tl_fail("%s: hidden_size %d is not divisible by num_attention_heads %d", p, c->d_model, c->n_heads);
  c->n_kv_heads = c->n_heads;
  c->head_dim = c->d_model / c->n_heads;
  /* HF: rotary_ndims = int(head_size * rotary_pct) */
  c->rot_dim = (int)((float)c->head_dim * pct);
  c->rope_theta = base;
  c->norm = TL_NORM_LAYERNORM;
  c->mlp_bias = 1;
  return 0;
}

static void neox_write(cJSON *j, const tl_model_config *c) {
  cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray((const char *[]){"GPTNeoXForCausalLM"}, 1));
  cJSON_AddStringToObject(j, "hidden_act", "gelu");
  cJSON_AddNumberToObject(j, "hidden_size", c->d_model);
  cJSON_AddNumberToObject(j, "intermediate_size", c->d_ff);
  cJSON_AddNumberToObject(j, "layer_norm_eps", 1e-5);
  cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_pos);
  cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
  cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
  cJSON_AddNumberToObject(j, "rotary_emb_base", 10000);
  cJSON_AddNumberToObject(j, "rotary_pct", 0.25);
  cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied);
  cJSON_AddBoolToObject(j, "use_parallel_residual", 1);
  cJSON_AddBoolToObject(j, "attention_bias", 1);
  cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
}

static const tl_name_entry neox_globals[] = {
    {"gpt_neox.embed_in.weight", R_EMBED, XF_COPY},
    {"gpt_neox.final_layer_norm.weight", R_FINAL_W, XF_COPY},
    {"gpt_neox.final_layer_norm.bias", R_FINAL_B, XF_COPY},
    {"embed_out.weight", R_LM_W, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry neox_layer[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"input_layernorm.bias", R_LN1_B, XF_COPY},
    {"post_attention_layernorm.weight", R_LN2_W, XF_COPY},
    {"post_attention_layernorm.bias", R_LN2_B, XF_COPY},
    {"attention.query_key_value.weight", R_QKV_W, XF_NEOX_QKV},
    {"attention.query_key_value.bias", R_QKV_B, XF_NEOX_QKV},
    {"attention.dense.weight", R_O_W, XF_COPY},
    {"attention.dense.bias", R_O_B, XF_COPY},
    {"mlp.dense_h_to_4h.weight", R_UP_W, XF_COPY},
    {"mlp.dense_h_to_4h.bias", R_UP_B, XF_COPY},
    {"mlp.dense_4h_to_h.weight", R_DOWN_W, XF_COPY},
    {"mlp.dense_4h_to_h.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const neox_ignored[] = {".attention.bias", ".attention.masked_bias",
                                           ".attention.rotary_emb.inv_freq", NULL};

/* ---- llama / mistral ---- */

static int llama_read(const cJSON *j, const char *p, tl_model_config *c) {
  TL_TRY(get_int(j, p, "hidden_size", 1, 0, 1, BIG, &c->d_model));
  TL_TRY(get_int(j, p, "num_hidden_layers", 1, 0, 1, 100000, &c->n_layers));
  TL_TRY(get_int(j, p, "num_attention_heads", 1, 0, 1, 100000, &c->n_heads));
  TL_TRY(get_int(j, p, "num_key_value_heads", 0, c->n_heads, 1, 100000, &c->n_kv_heads));
  if (!field(j, "head_dim") && c->d_model % c->n_heads)
    return tl_fail("%s: hidden_size %d is not divisible by num_attention_heads %d", p, c->d_model, c->n_heads);
  TL_TRY(get_int(j, p, "head_dim", 0, c->d_model / c->n_heads, 2, BIG, &c->head_dim));
  TL_TRY(get_int(j, p, "intermediate_size", 1, 0, 1, BIG, &c->d_ff));
  TL_TRY(get_int(j, p, "vocab_size", 1, 0, 1, BIG, &c->vocab));
  TL_TRY(get_int(j, p, "max_position_embeddings", 1, 0, 1, BIG, &c->max_pos));
  TL_TRY(get_float(j, p, "rms_norm_eps", 1e-6, 0, 1, &c->norm_eps));
  TL_TRY(get_float(j, p, "rope_theta", 10000.0, 1e-6, 1e30, &c->rope_theta));
  TL_TRY(no_rope_scaling(j, p));
  TL_TRY(get_act(j, p, "hidden_act", "silu", &c->act));
  TL_TRY(get_bool(j, p, "tie_word_embeddings", 0, &c->tied));
  TL_TRY(get_bool(j, p, "attention_bias", 0, &c->attn_bias));
  TL_TRY(get_bool(j, p, "mlp_bias", 0, &c->mlp_bias));
  TL_TRY(get_int(j, p, "sliding_window", 0, 0, 0, BIG, &c->window));
  if (c->n_heads % c->n_kv_heads)
    return tl_fail("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", p, c->n_heads,
                   c->n_kv_heads);
  if (c->head_dim % 2) return tl_fail("%s: head_dim %d must be even for rotary embeddings", p, c->head_dim);
  c->rot_dim = c->head_dim;
  c->norm = TL_NORM_RMSNORM;
  c->gated_mlp = 1;
  return 0;
}

static void llama_write(cJSON *j, const tl_model_config *c) {
  cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray((const char *[]){"LlamaForCausalLM"}, 1));
  cJSON_AddStringToObject(j, "hidden_act", "silu");
  cJSON_AddNumberToObject(j, "hidden_size", c->d_model);
  cJSON_AddNumberToObject(j, "intermediate_size", c->d_ff);
  cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_pos);
  cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
  cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
  cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
  cJSON_AddNumberToObject(j, "rms_norm_eps", 1e-5);
  cJSON_AddItemToObject(j, "rope_scaling", cJSON_CreateNull());
  cJSON_AddNumberToObject(j, "rope_theta", 10000.0);
  cJSON_AddBoolToObject(j, "attention_bias", 0);
  cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied);
  cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
}

static const tl_name_entry llama_globals[] = {
    {"model.embed_tokens.weight", R_EMBED, XF_COPY},
    {"model.norm.weight", R_FINAL_W, XF_COPY},
    {"lm_head.weight", R_LM_W, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry llama_layer[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"post_attention_layernorm.weight", R_LN2_W, XF_COPY},
    {"self_attn.q_proj.weight", R_Q_W, XF_COPY},
    {"self_attn.q_proj.bias", R_Q_B, XF_COPY},
    {"self_attn.k_proj.weight", R_K_W, XF_COPY},
    {"self_attn.k_proj.bias", R_K_B, XF_COPY},
    {"self_attn.v_proj.weight", R_V_W, XF_COPY},
    {"self_attn.v_proj.bias", R_V_B, XF_COPY},
    {"self_attn.o_proj.weight", R_O_W, XF_COPY},
    {"self_attn.o_proj.bias", R_O_B, XF_COPY},
    {"mlp.gate_proj.weight", R_GATE_W, XF_COPY},
    {"mlp.gate_proj.bias", R_GATE_B, XF_COPY},
    {"mlp.up_proj.weight", R_UP_W, XF_COPY},
    {"mlp.up_proj.bias", R_UP_B, XF_COPY},
    {"mlp.down_proj.weight", R_DOWN_W, XF_COPY},
    {"mlp.down_proj.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const llama_ignored[] = {".self_attn.rotary_emb.inv_freq", NULL};

static const tl_family families[] = {
    {"gpt2", gpt2_read, gpt2_write, "transformer.h.%d.", gpt2_globals, gpt2_layer, gpt2_ignored},
    {"gpt_neox", neox_read, neox_write, "gpt_neox.layers.%d.", neox_globals, neox_layer, neox_ignored},
    {"llama", llama_read, llama_write, "model.layers.%d.", llama_globals, llama_layer, llama_ignored},
    {"mistral", llama_read, llama_write, "model.layers.%d.", llama_globals, llama_layer, llama_ignored},
};
#define NFAMILIES (int)(sizeof(families) / sizeof(families[0]))

const char *tl_model_supported_types(void) { return "gpt2, gpt_neox, llama, mistral"; }

const tl_family *tl_family_find(const char *model_type) {
  for (int i = 0; i < NFAMILIES; i++)
    if (!strcmp(families[i].model_type, model_type)) return &families[i];
  return NULL;
}

int tl_model_parse_config(const char *text, size_t len, const char *path, tl_model_config *cfg,
                          const tl_family **fam) {
  memset(cfg, 0, sizeof *cfg);
  cJSON *j = cJSON_ParseWithLength(text, len);
  if (!j || !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return tl_fail("%s: not a valid JSON object", path);
  }
  int rc = -1;
  const cJSON *mt = field(j, "model_type");
  if (!mt || !cJSON_IsString(mt)) {
    tl_fail("%s: field 'model_type' is missing or not a string (supported: %s)", path, tl_model_supported_types());
    goto done;
  }
  const tl_family *f = tl_family_find(mt->valuestring);
  if (!f) {
    tl_fail("%s: model_type '%s' is not supported (supported: %s)", path, mt->valuestring,
            tl_model_supported_types());
    goto done;
  }
  snprintf(cfg->model_type, sizeof cfg->model_type, "%s", f->model_type);
  cfg->rope_theta = 10000.0f;
  if (f->read_config(j, path, cfg)) goto done;
  if (cfg->rot_dim % 2 || cfg->rot_dim > cfg->head_dim) {
    tl_fail("%s: rotary dimension %d must be even and at most head_dim %d", path, cfg->rot_dim, cfg->head_dim);
    goto done;
  }
  tl_sha256_hex(text, len, cfg->config_hash);
  *fam = f;
  rc = 0;
done:
  cJSON_Delete(j);
  return rc;
}

/* JSON config for synth (caller frees). */
char *tl_model_config_json(const tl_family *f, const tl_model_config *c) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "model_type", f->model_type);
  f->write_config(j, c);
  cJSON_AddStringToObject(j, "torch_dtype", c->dtype == TL_F16 ? "float16" : c->dtype == TL_BF16 ? "bfloat16" : "float32");
  (void)act_name;
  char *s = cJSON_Print(j);
  cJSON_Delete(j);
  return s;
}

/* ---- layouts and tensor specs ---- */

void tl_layouts(const tl_model_config *c, tl_layer_layout *ll, tl_global_layout *gl) {
  size_t d = c->d_model, qkv = (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim,
         att = (size_t)c->n_heads * c->head_dim, ff = c->d_ff, up = c->gated_mlp ? 2 * ff : ff;
  int ln = c->norm == TL_NORM_LAYERNORM;
  size_t o = 0;
#define PUT(field, n, present) ll->field = (present) ? (o += (n), o - (n)) : TL_NONE
  PUT(ln1_w, d, 1);
  PUT(ln1_b, d, ln);
  PUT(ln2_w, d, 1);
  PUT(ln2_b, d, ln);
  PUT(qkv_w, qkv * d, 1);
  PUT(qkv_b, qkv, c->attn_bias);
  PUT(o_w, d * att, 1);
  PUT(o_b, d, c->attn_bias);
  PUT(up_w, up * d, 1);
  PUT(up_b, up, c->mlp_bias);
  PUT(down_w, d * ff, 1);
  PUT(down_b, d, c->mlp_bias);
#undef PUT
  ll->numel = o;
  o = 0;
  size_t V = c->vocab;
#define PUT(field, n, present) gl->field = (present) ? (o += (n), o - (n)) : TL_NONE
  PUT(embed, V * d, 1);
  PUT(pos, (size_t)c->max_pos * d, c->learned_pos);
  PUT(final_w, d, 1);
  PUT(final_b, d, ln);
  PUT(lm_w, V * d, !c->tied);
  PUT(lm_b, V, 0);
#undef PUT
  gl->numel = o;
}

/* Destination offset and file shape of a role; returns 0 if the config has no such tensor. */
static int resolve(const tl_model_config *c, const tl_layer_layout *ll, const tl_global_layout *gl, tl_role r,
                   size_t *off, int *ndim, int64_t shape[2]) {
  int64_t d = c->d_model, hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, ff = c->d_ff, V = c->vocab;
  size_t base = TL_NONE, add = 0;
  int64_t rows = 0, cols = 0; /* cols 0 = 1-D */
  switch (r) {
  case R_EMBED: base = gl->embed; rows = V; cols = d; break;
  case R_POS: base = gl->pos; rows = c->max_pos; cols = d; break;
  case R_FINAL_W: base = gl->final_w; rows = d; break;
  case R_FINAL_B: base = gl->final_b; rows = d; break;
  case R_LM_W: base = gl->lm_w; rows = V; cols = d; break;
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
  for (int l = 0; l < c->n_layers; l++)
    for (const tl_name_entry *e = f->layer; e->name; e++)
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
  if (c->tied)
    for (const tl_name_entry *e = f->globals; e->name; e++)
      if (e->role == R_LM_W && !strcmp(e->name, name)) return 1;
  return 0;
}
