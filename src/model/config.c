/* config.json by a family's table of fields (model_internal.h): read_fields reads
 * a config by the table, write_fields writes synth's by the same table, so what
 * synth writes is what the loader reads. tl_model_parse_config finds the family
 * from model_type and fills in what every family shares. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

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

static void set_local(tl_model_config *c, int layer) {
  c->local_layers[layer / 8] |= (unsigned char)(1u << (layer % 8));
}

/* gpt_neo's attention_types: a list of [kinds, repeat] pairs, where kinds is a list
 * of "global" / "local"; the layers are the kinds repeated, in order (HF's
 * expand_attention_types_params). */
static int read_attn_types(const cJSON *x, const char *path, const char *key, cfg_values *v) {
  const char *want = "a list of [[\"global\" or \"local\", ...], repeat] pairs";
  memset(v->cfg.local_layers, 0, sizeof v->cfg.local_layers);
  int n = 0;
  if (!cJSON_IsArray(x)) return tl_fail("%s: field '%s' must be %s", path, key, want);
  const cJSON *pair;
  cJSON_ArrayForEach(pair, x) {
    const cJSON *kinds = cJSON_GetArrayItem(pair, 0), *rep = cJSON_GetArrayItem(pair, 1);
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsArray(kinds) || !cJSON_IsNumber(rep) ||
        rep->valuedouble != floor(rep->valuedouble) || rep->valuedouble < 0 || rep->valuedouble > TL_CFG_MANY)
      return tl_fail("%s: field '%s' must be %s", path, key, want);
    for (int r = 0; r < (int)rep->valuedouble; r++) {
      const cJSON *k;
      cJSON_ArrayForEach(k, kinds) {
        int local = cJSON_IsString(k) && !strcmp(k->valuestring, "local");
        if (!local && !(cJSON_IsString(k) && !strcmp(k->valuestring, "global")))
          return tl_fail("%s: field '%s' names an attention type other than \"global\" or \"local\"", path, key);
        if (n >= TL_MODEL_MAX_LOCAL_LAYERS)
          return tl_fail("%s: field '%s' describes more than the %d layers supported", path, key,
                         TL_MODEL_MAX_LOCAL_LAYERS);
        if (local) set_local(&v->cfg, n);
        n++;
      }
    }
  }
  v->n_attn_types = n;
  return 0;
}

/* A number member of a rope_scaling object, at least lo. */
static int rope_number(const cJSON *x, const char *path, const char *member, double lo, float *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, member);
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo) || v->valuedouble > 1e30)
    return tl_fail("%s: field 'rope_scaling' needs '%s', a number of at least %g", path, member, lo);
  *out = (float)v->valuedouble;
  return 0;
}

/* rope_scaling as transformers reads it: "type" (4.40) or "rope_type" (later) names
 * the kind; "default" means none. */
static int read_rope_scaling(const cJSON *x, const char *path, tl_model_config *c) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "rope_type");
  if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(x, "type");
  if (!cJSON_IsObject(x) || !cJSON_IsString(t))
    return tl_fail("%s: field 'rope_scaling' must be null or an object with a \"type\"", path);
  const char *k = t->valuestring;
  if (!strcmp(k, "default")) return 0;
  if (strcmp(k, "linear") && strcmp(k, "dynamic") && strcmp(k, "llama3"))
    return tl_fail("%s: rope_scaling type '%s' is not supported (expected linear, dynamic or llama3)", path, k);
  TL_TRY(rope_number(x, path, "factor", 1, &c->rope_factor)); /* transformers: a factor below 1 is refused */
  c->rope_scaling = !strcmp(k, "linear") ? TL_ROPE_LINEAR : !strcmp(k, "dynamic") ? TL_ROPE_DYNAMIC : TL_ROPE_LLAMA3;
  if (c->rope_scaling != TL_ROPE_LLAMA3) return 0;
  float orig = 0;
  TL_TRY(rope_number(x, path, "low_freq_factor", 1e-6, &c->rope_low_freq_factor));
  TL_TRY(rope_number(x, path, "high_freq_factor", 1e-6, &c->rope_high_freq_factor));
  TL_TRY(rope_number(x, path, "original_max_position_embeddings", 1, &orig));
  if (c->rope_high_freq_factor <= c->rope_low_freq_factor)
    return tl_fail("%s: rope_scaling's high_freq_factor must exceed its low_freq_factor", path);
  c->rope_original_max_pos = (int)orig;
  return 0;
}

/* Stores the value of field f, present in the file as x. */
static int read_value(const cfg_field *f, const cJSON *x, const char *path, cfg_values *v) {
  void *dst = (char *)v + f->off;
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
  case V_DOUBLE:
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= f->lo && x->valuedouble <= f->hi))
      return tl_fail("%s: field '%s' must be a number in [%g, %g]", path, f->key, f->lo, f->hi);
    *(double *)dst = x->valuedouble;
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
  case V_ROPE_SCALING:
    return read_rope_scaling(x, path, &v->cfg);
  case V_ATTN_TYPES:
    return read_attn_types(x, path, f->key, v);
  }
  return 0;
}

/* Stores what an absent field f means. */
static void read_default(const cfg_field *f, cfg_values *v) {
  void *dst = (char *)v + f->off;
  switch (f->type) {
  case V_INT: *(int *)dst = f->need == DERIVED ? 0 : (int)f->def; break;
  case V_FLOAT: *(float *)dst = (float)f->def; break;
  case V_DOUBLE: *(double *)dst = f->def; break;
  case V_BOOL: *(int *)dst = f->def != 0; break;
  case V_ACT: *(tl_act *)dst = (tl_act)f->def; break;
  case V_NULL: case V_ROPE_SCALING: break; /* none */
  case V_ATTN_TYPES: v->n_attn_types = -1; break; /* the finish function picks the pattern */
  }
}

/* Whether a row below f (an ALIAS of it) is present. */
static int alias_present(const cfg_field *f, const cJSON *j) {
  for (const cfg_field *a = f + 1; a->key && a->need == ALIAS; a++)
    if (field(j, a->key)) return 1;
  return 0;
}

static int read_fields(const cfg_schema *s, const cJSON *j, const char *path, tl_model_config *c) {
  cfg_values v = {.cfg = *c};
  int rc = 0, above_present = 0;
  for (const cfg_field *f = s->fields; f->key && rc == 0; f++) {
    const cJSON *x = field(j, f->key);
    if (f->need == ALIAS) {
      if (x && !above_present) {
        rc = read_value(f, x, path, &v);
        above_present = 1; /* the first alias present wins */
      }
      continue;
    }
    above_present = x != NULL;
    if (x) rc = read_value(f, x, path, &v);
    else if (f->need == REQUIRED && !alias_present(f, j))
      rc = tl_fail("%s: field '%s' is missing (expected an integer)", path, f->key);
    else read_default(f, &v);
  }
  if (rc == 0) rc = s->finish(&v, path);
  *c = v.cfg;
  return rc;
}

/* The value field f was read into, as a double (V_NULL, V_ROPE_SCALING and V_ATTN_TYPES have none). */
static double stored_value(const cfg_field *f, const cfg_values *v) {
  const void *src = (const char *)v + f->off;
  switch (f->type) {
  case V_INT: case V_BOOL: return *(const int *)src;
  case V_FLOAT: return *(const float *)src;
  case V_DOUBLE: return *(const double *)src;
  case V_ACT: return *(const tl_act *)src;
  case V_NULL: case V_ROPE_SCALING: case V_ATTN_TYPES: break;
  }
  return 0;
}

/* GPT-Neo's own pattern: [["global", "local"], L/2], then one global layer if L is odd. */
static cJSON *alternating_attn_types(int layers) {
  cJSON *all = cJSON_CreateArray();
  const char *both[2] = {"global", "local"};
  if (layers / 2) {
    cJSON *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, cJSON_CreateStringArray(both, 2));
    cJSON_AddItemToArray(pair, cJSON_CreateNumber(layers / 2));
    cJSON_AddItemToArray(all, pair);
  }
  if (layers % 2) {
    cJSON *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, cJSON_CreateStringArray(both, 1));
    cJSON_AddItemToArray(pair, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(all, pair);
  }
  return all;
}

static void write_fields(const cfg_schema *s, cJSON *j, const tl_model_config *c) {
  cfg_values v = {.cfg = *c};
  cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray(&s->architecture, 1));
  for (const cfg_field *f = s->fields; f->key; f++) {
    if (f->write == W_NO) continue;
    double x = f->write == W_DEFAULT ? f->def : f->write == W_SYNTH ? f->synth : stored_value(f, &v);
    switch (f->type) {
    case V_INT: case V_FLOAT: case V_DOUBLE: cJSON_AddNumberToObject(j, f->key, x); break;
    case V_BOOL: cJSON_AddBoolToObject(j, f->key, x != 0); break;
    case V_ACT: cJSON_AddStringToObject(j, f->key, act_name((tl_act)x)); break;
    case V_NULL: case V_ROPE_SCALING: cJSON_AddNullToObject(j, f->key); break;
    case V_ATTN_TYPES: cJSON_AddItemToObject(j, f->key, alternating_attn_types(c->n_layers)); break;
    }
  }
}

void tl_cfg_alternate_local(tl_model_config *c) {
  memset(c->local_layers, 0, sizeof c->local_layers);
  for (int l = 1; l < c->n_layers && l < TL_MODEL_MAX_LOCAL_LAYERS; l += 2) set_local(c, l);
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
  const cJSON *mt = field(j, "model_type"), *arch = cJSON_GetArrayItem(field(j, "architectures"), 0);
  const tl_family *f = NULL;
  if (!mt && cJSON_IsString(arch)) { /* the class transformers would build names the family */
    f = tl_family_find_architecture(arch->valuestring);
    if (!f) {
      tl_fail("%s: field 'model_type' is missing and architectures names '%s', which is not supported (supported "
              "model_types: %s)", path, arch->valuestring, tl_model_supported_types());
      goto done;
    }
  } else if (!mt || !cJSON_IsString(mt)) {
    tl_fail("%s: field 'model_type' is missing or not a string (supported: %s)", path, tl_model_supported_types());
    goto done;
  } else if (!(f = tl_family_find(mt->valuestring))) {
    tl_fail("%s: model_type '%s' is not supported (supported: %s)", path, mt->valuestring,
            tl_model_supported_types());
    goto done;
  }
  snprintf(cfg->model_type, sizeof cfg->model_type, "%s", f->model_type);
  /* what most families have; their finish functions change what differs */
  cfg->rope_theta = 10000.0f;
  cfg->norm_affine = 1;
  cfg->final_norm = 1;
  if (read_fields(f->schema, j, path, cfg)) goto done;
  if (cfg->embed_dim == 0) cfg->embed_dim = cfg->d_model;
  if (cfg->attn_scale == 0) cfg->attn_scale = 1.0f / sqrtf((float)cfg->head_dim);
  if (cfg->rot_dim % 2 || cfg->rot_dim > cfg->head_dim) {
    tl_fail("%s: rotary dimension %d must be even and at most head_dim %d", path, cfg->rot_dim, cfg->head_dim);
    goto done;
  }
  if (cfg->window_per_layer && cfg->n_layers > TL_MODEL_MAX_LOCAL_LAYERS) {
    tl_fail("%s: %d layers with local attention exceed the %d supported", path, cfg->n_layers,
            TL_MODEL_MAX_LOCAL_LAYERS);
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
  write_fields(f->schema, j, c);
  cJSON_AddStringToObject(j, "torch_dtype", c->dtype == TL_F16 ? "float16" : c->dtype == TL_BF16 ? "bfloat16" : "float32");
  char *s = cJSON_Print(j);
  cJSON_Delete(j);
  return s;
}
