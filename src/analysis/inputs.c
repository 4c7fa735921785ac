/* What the analysis commands read: the model with its tokenizer (or a list of token
 * strings) and lens, and token ids from text, files and token lists. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/export.h"
#include "tlens/safetensors.h"

/* config.json's eos_token_id (a number or a list: the first), or -1 */
static int config_eos(const char *model_dir) {
  char *path = tl_path_join(model_dir, "config.json"), *text = NULL;
  size_t len = 0;
  int eos = -1;
  if (tl_read_file(path, &text, &len) == 0) {
    cJSON *j = cJSON_ParseWithLength(text, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    if (cJSON_IsArray(e)) e = cJSON_GetArrayItem(e, 0);
    if (cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < 2147483647.0) eos = (int)e->valuedouble;
    cJSON_Delete(j);
  }
  tl_clear_error();
  free(text);
  free(path);
  return eos;
}

/* The tokenizer (given, or beside the model in dir), the token strings (a list
 * given, else the tokenizer's) and the EOS id. */
static int open_vocab(tl_analysis_env *e, const tl_analysis_opts *o, const char *dir) {
  char *tpath = o->tokenizer ? tl_strdup(o->tokenizer) : tl_path_join(dir, "tokenizer.json");
  int rc = 0;
  if (o->tokenizer || tl_file_exists(tpath)) rc = tl_tokenizer_load(&e->tok, tpath);
  free(tpath);
  TL_TRY(rc);
  if (o->vocab) {
    TL_TRY(tl_traj_vocab_load(o->vocab, &e->voc));
    e->has_voc = true;
  } else if (e->tok) {
    TL_TRY(tl_traj_vocab_from_tokenizer(e->tok, e->u.vocab, &e->voc));
    e->has_voc = true;
  }
  if (o->eos_id >= 0) e->eos = (int)o->eos_id;
  else if (e->tok && tl_tokenizer_eos_id(e->tok) >= 0) e->eos = tl_tokenizer_eos_id(e->tok);
  else e->eos = config_eos(dir);
  if (e->eos >= e->u.vocab) return tl_fail("--eos_id %d is outside the vocabulary [0, %d)", e->eos, e->u.vocab);
  return 0;
}

int tl_analysis_open(tl_analysis_env *e, const tl_analysis_opts *o) {
  memset(e, 0, sizeof *e);
  e->eos = -1;
  if (!o->model || !*o->model) return tl_fail("--model.name: a model folder or hub id is required");
  tl_backend_cpu_set_threads((int)o->threads);
  char *dir = NULL; /* the folder: the hub id's snapshot, or o->model itself */
  TL_TRY(tl_model_resolve(o->model, o->revision, &dir));
  if (tl_model_load(&e->m, dir) != 0) {
    free(dir);
    return -1;
  }
  e->mc = *tl_model_cfg(e->m);
  int rc = tl_model_unembed(e->m, &e->u);
  if (rc == 0) rc = tl_unembed_hash(e->u.W_U, e->u.vocab, e->u.d_model, e->hash);
  if (rc == 0) rc = open_vocab(e, o, dir);
  free(dir);
  TL_TRY(rc);
  if (o->lens) {
    tl_lens_expect ex = {e->mc.d_model, e->mc.n_layers, e->hash};
    tl_lens_config lc;
    float *params = NULL;
    TL_TRY(tl_lens_dir_load(o->lens, &ex, &lc, &params, NULL)); /* a hash mismatch only warns */
    rc = tl_lens_init(&e->lens, e->mc.n_layers, e->mc.d_model);
    if (rc == 0) memcpy(e->lens.params, params, (size_t)e->lens.n_params * sizeof(float));
    free(params);
    tl_lens_config_free(&lc);
    TL_TRY(rc);
    e->has_lens = true;
  }
  return tl_lens_prepare(&e->u, TL_LENS_GEMM_FP32, &e->ws);
}

void tl_analysis_close(tl_analysis_env *e) {
  tl_lens_ws_free(e->ws); /* before the model: it points into W_U */
  if (e->has_lens) tl_lens_free(&e->lens);
  if (e->has_voc) tl_traj_vocab_free(&e->voc);
  tl_tokenizer_free(e->tok);
  tl_model_free(e->m);
  memset(e, 0, sizeof *e);
}

int tl_analysis_encode(const tl_analysis_env *e, const char *what, const char *text, bool special, int32_t **ids,
                       int *T) {
  if (!e->tok) return tl_fail("%s: text needs a tokenizer (none in the model folder; give --tokenizer)", what);
  size_t n = 0;
  if (tl_tokenizer_encode(e->tok, text, strlen(text), special, ids, &n)) return tl_fail_context("%s", what);
  if (n == 0) {
    free(*ids);
    *ids = NULL;
    return tl_fail("%s: the text encodes to no tokens", what);
  }
  *T = (int)n;
  return 0;
}

/* a JSON list of ids, or a list of such lists (equal lengths), into ids [B,T] */
static int ids_from_json(const char *what, const cJSON *j, int32_t **ids, int *B, int *T) {
  if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) == 0)
    return tl_fail("%s: expected a JSON list of token ids (or a list of such lists)", what);
  const int nested = cJSON_IsArray(cJSON_GetArrayItem(j, 0));
  const int rows = nested ? cJSON_GetArraySize(j) : 1;
  const int cols = nested ? cJSON_GetArraySize(cJSON_GetArrayItem(j, 0)) : cJSON_GetArraySize(j);
  if (cols == 0) return tl_fail("%s: an empty list of token ids", what);
  int32_t *out = tl_malloc((size_t)rows * cols * sizeof(int32_t));
  for (int r = 0; r < rows; r++) {
    const cJSON *row = nested ? cJSON_GetArrayItem(j, r) : j;
    if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != cols) {
      free(out);
      return tl_fail("%s: row %d has %d ids, row 0 has %d (sequences must have equal lengths)", what, r,
                     cJSON_IsArray(row) ? cJSON_GetArraySize(row) : -1, cols);
    }
    int c = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, row) {
      const double d = cJSON_IsNumber(x) ? x->valuedouble : -1;
      if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int32_t)d) {
        free(out);
        return tl_fail("%s: element %d of row %d: expected a non-negative integer token id", what, c, r);
      }
      out[(size_t)r * cols + c++] = (int32_t)d;
    }
  }
  *ids = out, *B = rows, *T = cols;
  return 0;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

int tl_analysis_read_ids(const char *path, int32_t **ids, int *B, int *T) {
  if (ends_with(path, ".safetensors")) {
    tl_safetensors st;
    TL_TRY(tl_st_open(&st, path));
    const tl_st_tensor *t = tl_st_find(&st, "input_ids");
    int rc = 0;
    if (!t) rc = tl_fail("%s: tensor 'input_ids' is missing", path);
    else if (!tl_dtype_is_int(t->dtype)) rc = tl_fail("%s: tensor 'input_ids' has dtype %s (expected integers)", path, tl_dtype_name(t->dtype));
    else if ((t->ndim != 1 && t->ndim != 2) || tl_numel(t->ndim, t->shape) < 1 || tl_numel(t->ndim, t->shape) > (1 << 28))
      rc = tl_fail("%s: tensor 'input_ids' must be [T] or [B, T] with B, T > 0", path);
    if (rc == 0) {
      const int64_t n = tl_numel(t->ndim, t->shape);
      int64_t *v = tl_malloc((size_t)n * sizeof(int64_t));
      tl_to_i64(v, t->data, t->dtype, (size_t)n);
      *B = t->ndim == 2 ? (int)t->shape[0] : 1;
      *T = (int)t->shape[t->ndim - 1];
      *ids = tl_malloc((size_t)n * sizeof(int32_t));
      for (int64_t i = 0; i < n && rc == 0; i++) {
        if (v[i] < 0 || v[i] > INT32_MAX) rc = tl_fail("%s: input_ids element %lld = %lld is not a token id", path, (long long)i, (long long)v[i]);
        (*ids)[i] = (int32_t)v[i];
      }
      free(v);
      if (rc) free(*ids), *ids = NULL;
    }
    tl_st_close(&st);
    return rc;
  }
  char *text = NULL;
  size_t len = 0;
  TL_TRY(tl_read_file(path, &text, &len));
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  int rc = ids_from_json(path, j, ids, B, T);
  cJSON_Delete(j);
  return rc;
}

int tl_analysis_read_prompts(const tl_analysis_env *e, const char *path, bool special, int32_t **ids, int *B, int *T) {
  char *text = NULL;
  size_t len = 0;
  TL_TRY(tl_read_file(path, &text, &len));
  int32_t *all = NULL;
  int rows = 0, cols = 0, line = 0, rc = 0;
  char *save = NULL;
  for (char *s = strtok_r(text, "\n", &save); s && rc == 0; s = strtok_r(NULL, "\n", &save)) {
    line++;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) continue;
    char what[64];
    snprintf(what, sizeof what, "%.40s line %d", tl_basename(path), line);
    cJSON *j = cJSON_Parse(s);
    const cJSON *x = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "text") : j;
    const cJSON *xi = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "input_ids") : NULL;
    int32_t *one = NULL;
    int b = 1, t = 0;
    if (cJSON_IsString(x)) rc = tl_analysis_encode(e, what, x->valuestring, special, &one, &t);
    else if (cJSON_IsArray(xi ? xi : x)) rc = ids_from_json(what, xi ? xi : x, &one, &b, &t);
    else rc = tl_fail("%s: expected a JSON string, {\"text\": ...}, {\"input_ids\": [...]} or a list of ids", what);
    cJSON_Delete(j);
    if (rc == 0 && b != 1) rc = tl_fail("%s: one prompt per line", what);
    if (rc == 0 && rows > 0 && t != cols)
      rc = tl_fail("%s: the prompt has %d tokens, the first has %d (a batch needs prompts of equal length)", what, t, cols);
    if (rc == 0) {
      cols = t;
      all = tl_realloc(all, (size_t)(rows + 1) * cols * sizeof(int32_t));
      memcpy(all + (size_t)rows * cols, one, (size_t)cols * sizeof(int32_t));
      rows++;
    }
    free(one);
  }
  free(text);
  if (rc == 0 && rows == 0) rc = tl_fail("%s: no prompts", path);
  if (rc) {
    free(all);
    return -1;
  }
  *ids = all, *B = rows, *T = cols;
  return 0;
}

/* one token given as a string: the vocabulary entry spelt so, else a text that
 * encodes to exactly one token */
static int token_of(const tl_analysis_env *e, const char *what, const char *s, int32_t *id) {
  for (int i = 0; e->has_voc && i < e->voc.n; i++)
    if (e->voc.tok[i] && !strcmp(e->voc.tok[i], s)) {
      *id = i;
      return 0;
    }
  if (!e->tok) return tl_fail("%s: '%s' is not a token of the vocabulary", what, s);
  int32_t *ids = NULL;
  size_t n = 0;
  if (tl_tokenizer_encode(e->tok, s, strlen(s), 0, &ids, &n)) return tl_fail_context("%s", what);
  *id = n == 1 ? ids[0] : -1;
  free(ids);
  if (n != 1) return tl_fail("%s: '%s' is not one token (it encodes to %zu tokens)", what, s, n);
  return 0;
}

int tl_analysis_parse_tokens(const tl_analysis_env *e, const char *what, const char *spec, int32_t **ids, int *n) {
  tl_buf b = {0};
  int count = 0, rc = 0;
  int32_t id;
  if (spec[0] == '[') { /* a JSON list of ids and token strings */
    cJSON *j = cJSON_Parse(spec);
    if (!cJSON_IsArray(j)) rc = tl_fail("%s: not a JSON list", what);
    const cJSON *x;
    cJSON_ArrayForEach(x, j) {
      if (rc) break;
      if (cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble == (double)(int32_t)x->valuedouble) id = (int32_t)x->valuedouble;
      else if (cJSON_IsString(x)) rc = token_of(e, what, x->valuestring, &id);
      else rc = tl_fail("%s: element %d: expected a token id or a token string", what, count);
      if (rc == 0) tl_buf_append(&b, &id, sizeof id), count++;
    }
    cJSON_Delete(j);
  } else { /* comma-separated ids and token strings */
    char *copy = tl_strdup(spec), *save = NULL;
    for (char *s = strtok_r(copy, ",", &save); s && rc == 0; s = strtok_r(NULL, ",", &save)) {
      long v;
      if (tl_parse_long(s, &v) == 0 && v >= 0 && v <= INT32_MAX) id = (int32_t)v;
      else rc = token_of(e, what, s, &id);
      if (rc == 0) tl_buf_append(&b, &id, sizeof id), count++;
    }
    free(copy);
  }
  if (rc == 0 && count == 0) rc = tl_fail("%s: no tokens given", what);
  for (int i = 0; rc == 0 && i < count; i++)
    if (((int32_t *)b.data)[i] >= e->u.vocab)
      rc = tl_fail("%s: token id %d is outside the vocabulary [0, %d)", what, ((int32_t *)b.data)[i], e->u.vocab);
  if (rc) {
    tl_buf_free(&b);
    return -1;
  }
  *ids = (int32_t *)b.data, *n = count;
  return 0;
}
