/* The architecture families as data: config.json fields, checkpoint tensor names
 * and how each tensor maps into our layout. Adding a family means adding its
 * table of config.json fields (read by the loader, written by synth) and its
 * tensor name tables here; the loader and the forward pass are shared. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

/* ---- config.json: one table of fields per family ----
 * Each row states a field once: its JSON name, its type, where its value goes,
 * whether it may be absent and what it then means, the values accepted, and what
 * synth writes for it. read_fields reads a config.json by the table (missing or
 * ill-typed fields are one-line errors), write_fields writes synth's by the same
 * table; a family's finish function then checks what spans several fields and
 * fills in what follows from them. */

/* What config.json is read into: the model config, plus the fields that only
 * decide other parts of it. */
typedef struct {
  tl_model_config cfg;
  float rotary_pct;       /* gpt_neox: the share of each head's dims that is rotated */
  int scale_attn_weights; /* gpt2: attention scores scaled by 1/sqrt(head_dim) (must be true) */
} cfg_values;

#define CFG(member) offsetof(cfg_values, cfg.member)
#define EXTRA(member) offsetof(cfg_values, member)

typedef enum {
  V_INT,   /* int, integral and in [lo, hi] */
  V_FLOAT, /* float, in [lo, hi] */
  V_BOOL,  /* int 0/1 */
  V_ACT,   /* tl_act, from an activation name (default: a tl_act) */
  V_NULL,  /* no value: the field is not supported unless null or absent */
} value_type;

typedef enum {
  REQUIRED, /* absent is an error (only sizes, which are V_INT) */
  OPTIONAL, /* absent means def */
  DERIVED,  /* absent leaves 0: the finish function works it out from other fields */
  ALIAS,    /* another name of the row above, read only when that one is absent */
} presence;

typedef enum {
  W_NO,      /* synth leaves it out */
  W_VALUE,   /* synth writes the config's value (the sizes it was asked for) */
  W_DEFAULT, /* synth writes def */
  W_SYNTH,   /* synth writes the row's synth value */
} write_rule;

typedef struct {
  const char *key;
  value_type type;
  size_t off; /* CFG(...) or EXTRA(...); unused for V_NULL */
  presence need;
  double def;
  double lo, hi;
  write_rule write;
  double synth;
} cfg_field;

typedef struct {
  const char *architecture; /* "architectures" in a written config.json */
  const cfg_field *fields;  /* ends with a NULL key */
  /* Checks across fields, derived fields, and what the family fixes. */
  int (*finish)(cfg_values *v, const char *path);
} cfg_schema;

#define BIG 1000000000L /* sizes above this are certainly a corrupt config */
#define MANY 100000     /* layers or heads */

/* Activation names as HF spells them; the first of each activation is the one written. */
static const struct {
  const char *name;
  tl_act act;
} act_names[] = {
    {"gelu_new", TL_ACT_GELU_NEW}, {"gelu_fast", TL_ACT_GELU_NEW}, {"gelu_pytorch_tanh", TL_ACT_GELU_NEW},
    {"gelu", TL_ACT_GELU},         {"silu", TL_ACT_SILU},          {"swish", TL_ACT_SILU},
    {"relu", TL_ACT_RELU},
};
#define NACTS (int)(sizeof(act_names) / sizeof(act_names[0]))

static const char *act_name(tl_act a) {
  for (int i = 0; i < NACTS; i++)
    if (act_names[i].act == a) return act_names[i].name;
  return "gelu";
}

static const cJSON *field(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Stores the value of field f, present in the file as x. */
static int read_value(const cfg_field *f, const cJSON *x, const char *path, void *dst) {
  switch (f->type) {
  case V_INT:
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
      return tl_fail("%s: field '%s' must be an integer", path, f->key);
    if (x->valuedouble < f->lo || x->valuedouble > f->hi)
      return tl_fail("%s: field '%s' = %.17g is out of range [%ld, %ld]", path, f->key, x->valuedouble, (long)f->lo,
                     (long)f->hi);
    *(int *)dst = (int)x->valuedouble;
    return 0;
  case V_FLOAT:
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= f->lo && x->valuedouble <= f->hi))
      return tl_fail("%s: field '%s' must be a number in [%g, %g]", path, f->key, f->lo, f->hi);
    *(float *)dst = (float)x->valuedouble;
    return 0;
  case V_BOOL:
    if (!cJSON_IsBool(x)) return tl_fail("%s: field '%s' must be true or false", path, f->key);
    *(int *)dst = cJSON_IsTrue(x);
    return 0;
  case V_ACT:
    if (!cJSON_IsString(x)) return tl_fail("%s: field '%s' must be a string", path, f->key);
    for (int i = 0; i < NACTS; i++)
      if (!strcmp(x->valuestring, act_names[i].name)) {
        *(tl_act *)dst = act_names[i].act;
        return 0;
      }
    return tl_fail("%s: field '%s' = '%s' is not supported (expected gelu_new, gelu_fast, gelu_pytorch_tanh, "
                   "gelu, silu or relu)", path, f->key, x->valuestring);
  case V_NULL:
    return tl_fail("%s: field '%s' is not supported (expected null)", path, f->key);
  }
  return 0;
}

/* Stores what an absent field f means. */
static void read_default(const cfg_field *f, void *dst) {
  switch (f->type) {
  case V_INT: *(int *)dst = f->need == DERIVED ? 0 : (int)f->def; break;
  case V_FLOAT: *(float *)dst = (float)f->def; break;
  case V_BOOL: *(int *)dst = f->def != 0; break;
  case V_ACT: *(tl_act *)dst = (tl_act)f->def; break;
  case V_NULL: break;
  }
}

static int read_fields(const cfg_schema *s, const cJSON *j, const char *path, tl_model_config *c) {
  cfg_values v = {.cfg = *c};
  int rc = 0, above_present = 0;
  for (const cfg_field *f = s->fields; f->key && rc == 0; f++) {
    const cJSON *x = field(j, f->key);
    void *dst = (char *)&v + f->off;
    if (f->need == ALIAS) {
      if (x && !above_present) rc = read_value(f, x, path, dst);
      continue;
    }
    above_present = x != NULL;
    if (x) rc = read_value(f, x, path, dst);
    else if (f->need == REQUIRED) rc = tl_fail("%s: field '%s' is missing (expected an integer)", path, f->key);
    else read_default(f, dst);
  }
  if (rc == 0) rc = s->finish(&v, path);
  *c = v.cfg;
  return rc;
}

/* The value field f was read into, as a double (V_NULL has none). */
static double stored_value(const cfg_field *f, const cfg_values *v) {
  const void *src = (const char *)v + f->off;
  switch (f->type) {
  case V_INT: case V_BOOL: return *(const int *)src;
  case V_FLOAT: return *(const float *)src;
  case V_ACT: return *(const tl_act *)src;
  case V_NULL: break;
  }
  return 0;
}

static void write_fields(const cfg_schema *s, cJSON *j, const tl_model_config *c) {
  cfg_values v = {.cfg = *c};
  cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray(&s->architecture, 1));
  for (const cfg_field *f = s->fields; f->key; f++) {
    if (f->write == W_NO) continue;
    double x = f->write == W_DEFAULT ? f->def : f->write == W_SYNTH ? f->synth : stored_value(f, &v);
    switch (f->type) {
    case V_INT: case V_FLOAT: cJSON_AddNumberToObject(j, f->key, x); break;
    case V_BOOL: cJSON_AddBoolToObject(j, f->key, x != 0); break;
    case V_ACT: cJSON_AddStringToObject(j, f->key, act_name((tl_act)x)); break;
    case V_NULL: cJSON_AddNullToObject(j, f->key); break;
    }
  }
}

/* ---- gpt2 ---- */

static const cfg_field gpt2_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"n_embd", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_layer", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_head", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_inner", V_INT, CFG(d_ff), DERIVED, 0, 1, BIG, W_VALUE, 0}, /* absent: 4 * n_embd */
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_positions", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"layer_norm_epsilon", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"activation_function", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU_NEW, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {"scale_attn_by_inverse_layer_idx", V_BOOL, CFG(scale_attn_by_layer), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"scale_attn_weights", V_BOOL, EXTRA(scale_attn_weights), OPTIONAL, 1, 0, 0, W_NO, 0},
    {NULL}};

static int gpt2_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->d_ff == 0) c->d_ff = (int)(4L * c->d_model);
  if (!v->scale_attn_weights)
    return tl_fail("%s: field 'scale_attn_weights' = false is not supported (expected true)", p);
  if (c->d_model % c->n_heads)
    return tl_fail("%s: n_embd %d is not divisible by n_head %d", p, c->d_model, c->n_heads);
  c->n_kv_heads = c->n_heads;
  c->head_dim = c->d_model / c->n_heads;
  c->norm = TL_NORM_LAYERNORM;
  c->learned_pos = 1;
  c->attn_bias = c->mlp_bias = 1;
  return 0;
}

static const cfg_schema gpt2_schema = {"GPT2LMHeadModel", gpt2_fields, gpt2_finish};
static int gpt2_read(const cJSON *j, const char *p, tl_model_config *c) { return read_fields(&gpt2_schema, j, p, c); }
static void gpt2_write(cJSON *j, const tl_model_config *c) { write_fields(&gpt2_schema, j, c); }

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

static const cfg_field neox_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"hidden_size", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"num_hidden_layers", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"num_attention_heads", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"intermediate_size", V_INT, CFG(d_ff), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"max_position_embeddings", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"layer_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU, 0, 0, W_DEFAULT, 0},
    {"rotary_pct", V_FLOAT, EXTRA(rotary_pct), OPTIONAL, 0.25, 0, 1, W_DEFAULT, 0},
    {"rotary_emb_base", V_FLOAT, CFG(rope_theta), OPTIONAL, 10000.0, 1e-6, 1e30, W_DEFAULT, 0},
    {"rope_theta", V_FLOAT, CFG(rope_theta), ALIAS, 0, 1e-6, 1e30, W_NO, 0}, /* newer configs' name */
    {"rope_scaling", V_NULL, 0, OPTIONAL, 0, 0, 0, W_NO, 0},
    {"use_parallel_residual", V_BOOL, CFG(parallel_residual), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {"attention_bias", V_BOOL, CFG(attn_bias), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    {NULL}};

static int neox_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->d_model % c->n_heads)
    return tl_fail("%s: hidden_size %d is not divisible by num_attention_heads %d", p, c->d_model, c->n_heads);
  c->n_kv_heads = c->n_heads;
  c->head_dim = c->d_model / c->n_heads;
  /* HF: rotary_ndims = int(head_size * rotary_pct) */
  c->rot_dim = (int)((float)c->head_dim * v->rotary_pct);
  c->norm = TL_NORM_LAYERNORM;
  c->mlp_bias = 1;
  return 0;
}

static const cfg_schema neox_schema = {"GPTNeoXForCausalLM", neox_fields, neox_finish};
static int neox_read(const cJSON *j, const char *p, tl_model_config *c) { return read_fields(&neox_schema, j, p, c); }
static void neox_write(cJSON *j, const tl_model_config *c) { write_fields(&neox_schema, j, c); }

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

static const cfg_field llama_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"hidden_size", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"num_hidden_layers", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"num_attention_heads", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"num_key_value_heads", V_INT, CFG(n_kv_heads), DERIVED, 0, 1, MANY, W_VALUE, 0}, /* absent: the heads */
    {"head_dim", V_INT, CFG(head_dim), DERIVED, 0, 2, BIG, W_NO, 0}, /* absent: hidden_size / heads */
    {"intermediate_size", V_INT, CFG(d_ff), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"max_position_embeddings", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    /* HF's LlamaConfig default is 1e-6; synth writes Llama 2's 1e-5 */
    {"rms_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-6, 0, 1, W_SYNTH, 1e-5},
    {"rope_theta", V_FLOAT, CFG(rope_theta), OPTIONAL, 10000.0, 1e-6, 1e30, W_DEFAULT, 0},
    {"rope_scaling", V_NULL, 0, OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_SILU, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {"attention_bias", V_BOOL, CFG(attn_bias), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"mlp_bias", V_BOOL, CFG(mlp_bias), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"sliding_window", V_INT, CFG(window), OPTIONAL, 0, 0, BIG, W_NO, 0}, /* 0: none */
    {NULL}};

static int llama_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
  if (c->head_dim == 0) {
    if (c->d_model % c->n_heads)
      return tl_fail("%s: hidden_size %d is not divisible by num_attention_heads %d", p, c->d_model, c->n_heads);
    c->head_dim = c->d_model / c->n_heads;
  }
  if (c->n_heads % c->n_kv_heads)
    return tl_fail("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", p, c->n_heads,
                   c->n_kv_heads);
  if (c->head_dim % 2) return tl_fail("%s: head_dim %d must be even for rotary embeddings", p, c->head_dim);
  c->rot_dim = c->head_dim;
  c->norm = TL_NORM_RMSNORM;
  c->gated_mlp = 1;
  return 0;
}

static const cfg_schema llama_schema = {"LlamaForCausalLM", llama_fields, llama_finish};
static int llama_read(const cJSON *j, const char *p, tl_model_config *c) { return read_fields(&llama_schema, j, p, c); }
static void llama_write(cJSON *j, const tl_model_config *c) { write_fields(&llama_schema, j, c); }

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
