/* tlens hidden: run a model on input_ids and write every hidden state and the
 * logits, named as HF output_hidden_states would give them. The ids come from a
 * safetensors file, from the JSON `tlens tokenize` prints (with or without
 * --tokens), or from text tokenized here. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"
#include "tlens/tokenizer.h"

static const char *USAGE =
    "usage: tlens hidden --model DIR (--input IN.safetensors | --input_ids IDS.json | --text S) --output OUT.safetensors\n"
    "Reads the integer tensor input_ids [B,T] (I32 or I64) from IN, or the ids of IDS.json (what\n"
    "`tlens tokenize` prints: a list of ids, a list of equally long lists, or an object whose \"ids\"\n"
    "is one, as `tokenize --tokens` writes it), or tokenizes S with the model's tokenizer.json\n"
    "(--tokenizer FILE to give another; --no_special as in tokenize), and writes\n"
    "hidden_states.<i> (i = 0..L, fp32 [B,T,d]; the last after the final norm) and logits [B,T,V].";

/* The ids of a tokenize output: [1, 2], [[1, 2], [3, 4]] or {"ids": either}, into
 * int64 [B*T] with *B and *T. */
static int read_json_ids(const char *path, int64_t **ids, int *B, int *T) {
  char *data = NULL;
  size_t len = 0;
  TL_TRY(tl_read_file(path, &data, &len));
  cJSON *root = cJSON_ParseWithLength(data, len);
  free(data);
  const cJSON *j = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "ids") : root;
  int rows = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 0;
  bool nested = rows > 0 && cJSON_IsArray(cJSON_GetArrayItem(j, 0));
  int cols = nested ? cJSON_GetArraySize(cJSON_GetArrayItem(j, 0)) : rows;
  if (!nested) rows = 1;
  if (!cJSON_IsArray(j) || cols < 1 || (int64_t)rows * cols > (1 << 30)) {
    cJSON_Delete(root);
    return tl_fail("%s: expected token ids: a non-empty JSON list, a list of lists, or an object with \"ids\" "
                   "(what tlens tokenize prints)", path);
  }
  *ids = tl_malloc((size_t)rows * cols * sizeof(int64_t));
  for (int r = 0; r < rows; r++) {
    const cJSON *row = nested ? cJSON_GetArrayItem(j, r) : j;
    if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != cols) {
      cJSON_Delete(root);
      free(*ids);
      *ids = NULL;
      return tl_fail("%s: row %d: expected a list of %d ids like row 0", path, r, cols);
    }
    for (int c = 0; c < cols; c++) {
      const cJSON *e = cJSON_GetArrayItem(row, c);
      double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
      if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int64_t)d) {
        cJSON_Delete(root);
        free(*ids);
        *ids = NULL;
        return tl_fail("%s: ids[%d][%d]: expected a non-negative integer token id", path, r, c);
      }
      (*ids)[(size_t)r * cols + c] = (int64_t)d;
    }
  }
  cJSON_Delete(root);
  *B = rows;
  *T = cols;
  return 0;
}

/* --input: the tensor input_ids [B, T] (I32 or I64) of a safetensors file. */
static int read_st_ids(tl_safetensors *in, int *in_open, const char *input, int64_t **ids, int *B, int *T) {
  TL_TRY(tl_st_open(in, input));
  *in_open = 1;
  const tl_st_tensor *t = tl_st_find(in, "input_ids");
  if (!t) return tl_fail("%s: tensor 'input_ids' is missing", input);
  if (t->dtype != TL_I32 && t->dtype != TL_I64)
    return tl_fail("%s: tensor 'input_ids' has dtype %s (expected I32 or I64)", input, tl_dtype_name(t->dtype));
  if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0 || t->shape[0] * t->shape[1] > (1 << 30)) {
    char buf[96];
    return tl_fail("%s: tensor 'input_ids' has shape %s (expected [B, T] with B, T > 0)", input,
                   tl_shape_str(t->ndim, t->shape, buf, sizeof buf));
  }
  *B = (int)t->shape[0];
  *T = (int)t->shape[1];
  *ids = tl_malloc(sizeof(int64_t) * *B * *T);
  tl_to_i64(*ids, t->data, t->dtype, (size_t)*B * *T);
  return 0;
}

/* --text: the ids of S with the tokenizer of the model folder (or --tokenizer). */
static int text_ids(const char *model, const char *revision, const char *tok_path, const char *text, bool special,
                    int64_t **ids, int *B, int *T) {
  char *dir = NULL, *path = NULL;
  if (!tok_path) {
    TL_TRY(tl_model_resolve(model, revision, &dir));
    path = tl_path_join(dir, "tokenizer.json");
    free(dir);
  }
  tl_tokenizer *tok = NULL;
  int32_t *v = NULL;
  size_t n = 0;
  int rc = tl_tokenizer_load(&tok, tok_path ? tok_path : path);
  if (!rc) rc = tl_tokenizer_encode(tok, text, strlen(text), special, &v, &n);
  if (!rc && (n == 0 || n > (1u << 30))) rc = tl_fail("--text: %zu tokens (expected at least one)", n);
  if (!rc) {
    *ids = tl_malloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) (*ids)[i] = v[i];
    *B = 1;
    *T = (int)n;
  }
  free(v);
  free(path);
  tl_tokenizer_free(tok);
  return rc;
}

/* Each hidden state goes straight into the writer (which copies it). */
static int add_hidden(void *ctx, int index, const float *h, int B, int T, int d) {
  char name[48];
  snprintf(name, sizeof name, "hidden_states.%d", index);
  int64_t shape[3] = {B, T, d};
  tl_st_writer_add(ctx, name, TL_F32, 3, shape, h);
  return 0;
}

int tl_cmd_hidden(int argc, char **argv) {
  char *model = NULL, *input = NULL, *output = NULL, *input_ids = NULL, *text = NULL, *tokenizer = NULL;
  long threads = 0;
  bool allow_nonfinite = false, no_special = false;
  char *revision = NULL, *precision = NULL;
  tl_opt opts[] = {
      {"model", 'm', TL_OPT_STR, &model, "Hugging Face model folder (config.json + safetensors), or a hub id in the HF cache", 0, 0, 0},
      {"revision|model.revision", 0, TL_OPT_STR, &revision, "with a hub id: branch, tag or commit [main]", 0, 0, 0},
      {"input", 'i', TL_OPT_STR, &input, "safetensors file holding input_ids [B,T]", 0, 0, 0},
      {"input_ids", 0, TL_OPT_STR, &input_ids, "JSON ids as tlens tokenize prints them (also with --tokens)", 0, 0, 0},
      {"text", 0, TL_OPT_STR, &text, "text to tokenize with the model's tokenizer.json", 0, 0, 0},
      {"tokenizer", 0, TL_OPT_STR, &tokenizer, "with --text: this tokenizer.json instead", 0, 0, 0},
      {"no_special", 0, TL_OPT_BOOL, &no_special, "with --text: no post-processor tokens (e.g. BOS)", 0, 0, 0},
      {"output", 'o', TL_OPT_STR, &output, "safetensors file to write", 0, 0, 0},
      {"threads", 0, TL_OPT_INT, &threads, "CPU threads (0 = OMP_NUM_THREADS or all cores)", 0, 4096, 0},
      {"allow_nonfinite", 0, TL_OPT_BOOL, &allow_nonfinite, "load weights holding NaN or Inf", 0, 0, 0},
      {"precision", 0, TL_OPT_STR, &precision,
       "dtype the layers are held in: auto (the checkpoint's), float32, bfloat16, float16; compute is fp32 [auto]", 0, 0, 0},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("hidden", opts, nopts, argc, argv, USAGE, false, NULL, NULL);
  if (status >= 0) return status;
  status = TL_EXIT_ERROR;
  tl_model *m = NULL;
  tl_safetensors in = {0};
  int in_open = 0;
  int64_t *ids64 = NULL;
  int32_t *ids = NULL;
  float *logits = NULL;
  tl_st_writer *w = NULL;
  int given = (input != NULL) + (input_ids != NULL) + (text != NULL);
  if (!model || !output || given != 1 || ((tokenizer || no_special) && !text)) {
    tl_fail(!model || !output ? "--model, --output and one of --input, --input_ids, --text are required (see --help)"
            : given != 1          ? "give exactly one of --input, --input_ids or --text (see --help)"
                                  : "--tokenizer and --no_special go with --text");
    status = tl_cli_report("hidden", TL_EXIT_USAGE);
    goto done;
  }
  int held = TL_MODEL_HOLD_AUTO;
  if (precision && tl_model_parse_precision(precision, &held)) {
    status = tl_cli_report("hidden", TL_EXIT_USAGE);
    goto done;
  }
  tl_model_hold_precision(held);
  tl_backend_cpu_set_threads((int)threads);
  tl_model_allow_nonfinite(allow_nonfinite);
  int B = 0, T = 0;
  const char *src = input ? input : input_ids ? input_ids : "--text";
  if (input_ids || text) {
    if (input_ids ? read_json_ids(input_ids, &ids64, &B, &T)
                  : text_ids(model, revision, tokenizer, text, !no_special, &ids64, &B, &T))
      goto fail;
  } else if (read_st_ids(&in, &in_open, input, &ids64, &B, &T)) {
    goto fail;
  }
  if (tl_model_load_named(&m, model, revision)) goto fail;
  const tl_model_config *c = tl_model_cfg(m);
  ids = tl_malloc(sizeof(int32_t) * B * T);
  for (int i = 0; i < B * T; i++) {
    if (ids64[i] < 0 || ids64[i] >= c->vocab) {
      tl_fail("%s: input_ids[%d][%d] = %lld is out of range [0, %d) for %s", src, i / T, i % T,
              (long long)ids64[i], c->vocab, model);
      goto fail;
    }
    ids[i] = (int32_t)ids64[i];
  }
  logits = tl_malloc(sizeof(float) * B * T * (size_t)c->vocab);
  w = tl_st_writer_new();
  if (tl_model_forward_cb(m, ids, B, T, add_hidden, w, logits)) goto fail;
  int64_t lshape[3] = {B, T, c->vocab};
  tl_st_writer_add(w, "logits", TL_F32, 3, lshape, logits);
  tl_st_writer_meta(w, "model_type", c->model_type);
  tl_st_writer_meta(w, "config_sha256", c->config_hash);
  if (tl_st_writer_save(w, output)) goto fail;
  status = TL_EXIT_OK;
  goto done;
fail:
  status = tl_cli_error("hidden");
done:
  if (w) tl_st_writer_free(w);
  if (in_open) tl_st_close(&in);
  tl_model_free(m);
  free(ids64);
  free(ids);
  free(logits);
  tl_args_free(opts, nopts);
  return status;
}
