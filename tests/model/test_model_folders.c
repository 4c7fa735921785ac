/* Model folders as they come from the hub rather than as our fixtures are: each
 * is made here from a fixture, and must load and match that fixture's HF goldens
 * (hidden states and logits within 1e-4), or fail with one line naming the field
 * or tensor at fault.
 *  - a tied model whose matrix is stored only as lm_head.weight (save_pretrained
 *    keeps one of a tied pair); the same folder untied is an error naming the
 *    missing input embedding, as is one whose tie_word_embeddings is absent
 *    (Llama's default: untied);
 *  - checkpoints saved from the base model class, without its prefix
 *    ("decoder.layers.0..." for OPT's "model.decoder.layers.0...", GPT-2's "h.0...");
 *  - config.json with CRLF line endings, torch_dtype "auto" or absent, head_dim
 *    given, tie_word_embeddings absent (the family's default), model_type absent
 *    but architectures naming the class;
 *  - rope_scaling: the frequencies of linear, dynamic (NTK) and llama3 scaling
 *    against the published formulas in double; configs whose scaling leaves these
 *    20 positions unchanged give the goldens, a real one does not; unknown types
 *    and missing members are one-line errors. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

static const char *work;

/* How a copy differs from its source. */
typedef struct {
  const char *rename_from, *rename_to; /* one tensor renamed */
  const char *strip_prefix;            /* removed from every tensor name that has it */
  const char *drop_key;                /* config.json keys removed (up to two) */
  const char *drop_key2;
  const char *set_key;                 /* config.json key set to set_json */
  const char *set_json;
  int crlf; /* config.json written with CRLF line endings */
} edit;

/* Copies fixture folder src (config.json + model.safetensors) to work/name with e applied. */
static char *make_folder(const char *src, const char *name, const edit *e) {
  char *dir = tl_sprintf("%s/%s", work, name), *in = tl_sprintf("%s/model.safetensors", src);
  char *out = tl_sprintf("%s/model.safetensors", dir), *cin = tl_sprintf("%s/config.json", src);
  char *cout = tl_sprintf("%s/config.json", dir), *text = NULL;
  size_t len = 0;
  CHECK(tl_mkdirs(dir) == 0);
  tl_safetensors st;
  CHECKF(tl_st_open(&st, in) == 0, "%s", tl_errmsg());
  tl_st_writer *w = tl_st_writer_new();
  for (int i = 0; i < st.n; i++) {
    const tl_st_tensor *t = &st.tensors[i];
    const char *nm = t->name;
    size_t k = e->strip_prefix ? strlen(e->strip_prefix) : 0;
    if (k && !strncmp(nm, e->strip_prefix, k)) nm += k;
    if (e->rename_from && !strcmp(nm, e->rename_from)) nm = e->rename_to;
    tl_st_writer_add(w, nm, t->dtype, t->ndim, t->shape, t->data);
  }
  CHECK(tl_st_writer_save(w, out) == 0);
  tl_st_writer_free(w);
  tl_st_close(&st);

  CHECK(tl_read_file(cin, &text, &len) == 0);
  cJSON *j = cJSON_ParseWithLength(text, len);
  CHECK(j != NULL);
  if (e->drop_key) cJSON_DeleteItemFromObjectCaseSensitive(j, e->drop_key);
  if (e->drop_key2) cJSON_DeleteItemFromObjectCaseSensitive(j, e->drop_key2);
  if (e->set_key) {
    cJSON_DeleteItemFromObjectCaseSensitive(j, e->set_key);
    cJSON_AddItemToObject(j, e->set_key, cJSON_Parse(e->set_json));
  }
  char *js = cJSON_Print(j);
  tl_buf b = {0};
  for (const char *c = js; *c; c++) tl_buf_printf(&b, "%s", *c == '\n' && e->crlf ? "\r\n" : (char[]){*c, 0});
  CHECK(tl_write_file_atomic(cout, b.data, b.len) == 0);
  tl_buf_free(&b);
  free(js);
  cJSON_Delete(j);
  free(text), free(in), free(out), free(cin), free(cout);
  return dir;
}

/* The folder loads and its forward pass matches the goldens in fwd. */
static void expect_goldens(const char *dir, const char *fwd, const char *what) {
  tl_model *m;
  if (tl_model_load(&m, dir)) {
    CHECKF(0, "%s: %s", what, tl_errmsg());
    return;
  }
  const tl_model_config *c = tl_model_cfg(m);
  tl_safetensors ref;
  CHECK(tl_st_open(&ref, fwd) == 0);
  const tl_st_tensor *it = tl_st_find(&ref, "input_ids");
  int B = (int)it->shape[0], T = (int)it->shape[1], L = c->n_layers, d = c->d_model, V = c->vocab;
  int64_t *ids64;
  CHECK(tl_st_get_i64(&ref, "input_ids", 2, it->shape, &ids64) == 0);
  int32_t *ids = malloc(sizeof(int32_t) * B * T);
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i];
  size_t n = (size_t)B * T * d;
  float *hidden = malloc(sizeof(float) * n * (L + 1)), *logits = malloc(sizeof(float) * B * T * V);
  CHECKF(tl_model_forward(m, ids, B, T, hidden, logits) == 0, "%s: %s", what, tl_errmsg());
  double worst = 0;
  for (int i = 0; i <= L + 1; i++) {
    char name[64];
    if (i <= L) snprintf(name, sizeof name, "hidden_states.%d", i);
    else snprintf(name, sizeof name, "logits");
    int64_t shape[3] = {B, T, i <= L ? d : V};
    float *r;
    CHECK(tl_st_get_f32(&ref, name, 3, shape, &r) == 0);
    double e = tl_test_maxerr(i <= L ? hidden + (size_t)i * n : logits, r, (long)(B * T * shape[2]));
    worst = e > worst ? e : worst;
    free(r);
  }
  CHECKF(worst < 1e-4, "%s: max error %.3g against the goldens", what, worst);
  fprintf(stderr, "%s: matches the goldens (max error %.3g)\n", what, worst);
  tl_st_close(&ref);
  tl_model_free(m);
  free(ids), free(ids64), free(hidden), free(logits);
}

/* The folder fails to load with one line containing want. */
static void expect_error(const char *dir, const char *want, const char *what) {
  tl_model *m = NULL;
  int rc = tl_model_load(&m, dir);
  const char *msg = rc ? tl_errmsg() : "(loaded)";
  CHECKF(rc != 0 && strstr(msg, want) && !strchr(msg, '\n'), "%s: got '%s', want one line with '%s'", what, msg,
         want);
  if (rc) fprintf(stderr, "%s: %s\n", what, msg);
  tl_model_free(m);
}

/* The forward's hidden states differ from the goldens somewhere (the setting is not ignored). */
static void expect_different(const char *dir, const char *fwd, const char *what) {
  tl_model *m;
  if (tl_model_load(&m, dir)) {
    CHECKF(0, "%s: %s", what, tl_errmsg());
    return;
  }
  tl_safetensors ref;
  CHECK(tl_st_open(&ref, fwd) == 0);
  const tl_st_tensor *it = tl_st_find(&ref, "input_ids");
  int B = (int)it->shape[0], T = (int)it->shape[1], V = tl_model_cfg(m)->vocab;
  int64_t *ids64, shape[3] = {B, T, V};
  float *want, *logits = malloc(sizeof(float) * B * T * V);
  int32_t *ids = malloc(sizeof(int32_t) * B * T);
  CHECK(tl_st_get_i64(&ref, "input_ids", 2, it->shape, &ids64) == 0);
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i];
  CHECK(tl_st_get_f32(&ref, "logits", 3, shape, &want) == 0);
  CHECK(tl_model_forward(m, ids, B, T, NULL, logits) == 0);
  double e = tl_test_maxerr(logits, want, (long)B * T * V);
  CHECKF(e > 1e-3, "%s: logits equal the unscaled goldens (max difference %.3g)", what, e);
  fprintf(stderr, "%s: logits move by %.3g from the unscaled goldens\n", what, e);
  tl_st_close(&ref);
  tl_model_free(m);
  free(ids), free(ids64), free(want), free(logits);
}

/* tl_rope_frequencies against the formulas of transformers, in double. */
static void check_frequencies(void) {
  tl_model_config c;
  memset(&c, 0, sizeof c);
  c.rot_dim = 128, c.rope_theta = 500000.0f, c.max_pos = 4096;
  float inv[64], div;
  double base[64];
  for (int i = 0; i < 64; i++) base[i] = 1.0 / pow(500000.0, 2.0 * i / 128);
  double e = 0;
  /* linear: positions divided by the factor */
  c.rope_scaling = TL_ROPE_LINEAR, c.rope_factor = 4.0f;
  tl_rope_frequencies(&c, 100, inv, &div);
  for (int i = 0; i < 64; i++) e = fmax(e, fabs(inv[i] - base[i]) / base[i]);
  CHECKF(div == 4.0f && e < 1e-5, "linear: divisor %g, frequencies off by %.3g", div, e);
  /* dynamic NTK: unchanged up to max_position_embeddings, then
   * base * (factor * T / max - (factor - 1)) ^ (dim / (dim - 2)) */
  c.rope_scaling = TL_ROPE_DYNAMIC, c.rope_factor = 2.0f, e = 0;
  tl_rope_frequencies(&c, 4096, inv, &div);
  for (int i = 0; i < 64; i++) e = fmax(e, fabs(inv[i] - base[i]) / base[i]);
  CHECKF(div == 1.0f && e < 1e-5, "dynamic within the trained length: off by %.3g", e);
  double theta = 500000.0 * pow(2.0 * 6000 / 4096 - 1.0, 128.0 / 126.0);
  tl_rope_frequencies(&c, 6000, inv, &div);
  e = 0;
  for (int i = 0; i < 64; i++) e = fmax(e, fabs(inv[i] - 1.0 / pow(theta, 2.0 * i / 128)) * pow(theta, 2.0 * i / 128));
  CHECKF(e < 1e-4, "dynamic beyond it: off by %.3g", e);
  /* llama3 (Llama 3.1's setting): long wavelengths / factor, short kept, a blend between */
  c.rope_scaling = TL_ROPE_LLAMA3, c.rope_factor = 8.0f, c.rope_low_freq_factor = 1.0f;
  c.rope_high_freq_factor = 4.0f, c.rope_original_max_pos = 8192, e = 0;
  tl_rope_frequencies(&c, 100, inv, &div);
  int kept = 0, scaled = 0, blended = 0;
  for (int i = 0; i < 64; i++) {
    double wl = 2 * M_PI / base[i], want = base[i];
    if (wl > 8192.0 / 1.0) want = base[i] / 8, scaled++;
    else if (wl >= 8192.0 / 4.0) {
      double s = (8192.0 / wl - 1.0) / (4.0 - 1.0);
      want = (1 - s) * base[i] / 8 + s * base[i], blended++;
    } else kept++;
    e = fmax(e, fabs(inv[i] - want) / want);
  }
  CHECKF(div == 1.0f && e < 1e-4 && kept && scaled && blended, "llama3: off by %.3g (%d kept, %d blended, %d scaled)",
         e, kept, blended, scaled);
  fprintf(stderr, "rope_scaling frequencies: linear, dynamic and llama3 agree with the formulas\n");
}

int main(void) {
  const char *fx = tl_test_fixtures();
  const char *w = getenv("WORK");
  work = w ? w : "work_model_folders";
  char *stories = tl_sprintf("%s/models/stories260k", fx), *s_fwd = tl_sprintf("%s/forward.safetensors", stories);
  char *llama = tl_sprintf("%s/golden/llama/model", fx), *l_fwd = tl_sprintf("%s/golden/llama/forward.safetensors", fx);
  char *opt = tl_sprintf("%s/golden/opt/model", fx), *o_fwd = tl_sprintf("%s/golden/opt/forward.safetensors", fx);
  char *gpt2 = tl_sprintf("%s/golden/gpt2/model", fx), *g_fwd = tl_sprintf("%s/golden/gpt2/forward.safetensors", fx);
  char *d;

  /* the tied matrix stored only as lm_head.weight */
  edit lm_only = {.rename_from = "model.embed_tokens.weight", .rename_to = "lm_head.weight"};
  expect_goldens(d = make_folder(stories, "lm_head_only", &lm_only), s_fwd, "tied, stored as lm_head.weight"), free(d);
  edit lm_untied = lm_only;
  lm_untied.set_key = "tie_word_embeddings", lm_untied.set_json = "false";
  const char *no_embed = "tensor 'model.embed_tokens.weight' is missing";
  expect_error(d = make_folder(stories, "lm_head_only_untied", &lm_untied), no_embed, "the same, untied"), free(d);
  edit lm_notie = lm_only;
  lm_notie.drop_key = "tie_word_embeddings"; /* Llama's default is untied */
  expect_error(d = make_folder(stories, "lm_head_only_no_tie", &lm_notie), no_embed,
               "the same, tie_word_embeddings absent"), free(d);

  /* checkpoints without the base model's prefix */
  edit no_prefix_opt = {.strip_prefix = "model."};
  expect_goldens(d = make_folder(opt, "opt_no_prefix", &no_prefix_opt), o_fwd, "opt without 'model.'"), free(d);
  edit no_prefix_gpt2 = {.strip_prefix = "transformer."};
  expect_goldens(d = make_folder(gpt2, "gpt2_no_prefix", &no_prefix_gpt2), g_fwd, "gpt2 without 'transformer.'"),
      free(d);

  /* config.json quirks */
  edit crlf_auto = {.crlf = 1, .set_key = "torch_dtype", .set_json = "\"auto\""};
  expect_goldens(d = make_folder(stories, "crlf_auto", &crlf_auto), s_fwd, "CRLF, torch_dtype auto"), free(d);
  edit no_type = {.drop_key = "model_type", .drop_key2 = "torch_dtype"};
  expect_goldens(d = make_folder(stories, "no_model_type", &no_type), s_fwd, "no model_type, no torch_dtype"), free(d);
  edit no_tie = {.drop_key = "tie_word_embeddings"}; /* untied golden: the default is right */
  expect_goldens(d = make_folder(llama, "llama_no_tie", &no_tie), l_fwd, "untied llama, tie_word_embeddings absent"),
      free(d);
  edit head_dim = {.set_key = "head_dim", .set_json = "16"};
  expect_goldens(d = make_folder(llama, "llama_head_dim", &head_dim), l_fwd, "llama, head_dim given"), free(d);
  edit neither = {.drop_key = "model_type", .drop_key2 = "architectures"};
  expect_error(d = make_folder(stories, "no_type_no_arch", &neither), "field 'model_type' is missing",
               "no model_type, no architectures"), free(d);
  edit bert = {.drop_key = "model_type", .set_key = "architectures", .set_json = "[\"BertForMaskedLM\"]"};
  expect_error(d = make_folder(stories, "bert_arch", &bert), "architectures names 'BertForMaskedLM'",
               "no model_type, an unknown class"), free(d);

  /* rope_scaling */
  check_frequencies();
  const struct {
    const char *json, *what;
    int same; /* 1: these 20 positions are unchanged by it */
  } ropes[] = {
      {"{\"type\": \"linear\", \"factor\": 1.0}", "rope_scaling linear, factor 1", 1},
      {"{\"type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling dynamic within max_position_embeddings", 1},
      {"{\"rope_type\": \"default\"}", "rope_scaling default", 1},
      {"{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
       "\"original_max_position_embeddings\": 100000}", "rope_scaling llama3 with only short wavelengths", 1},
      {"{\"type\": \"linear\", \"factor\": 2.0}", "rope_scaling linear, factor 2", 0},
      {"{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
       "\"original_max_position_embeddings\": 64}", "rope_scaling llama3", 0},
  };
  for (size_t i = 0; i < sizeof ropes / sizeof ropes[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "rope_%zu", i);
    edit r = {.set_key = "rope_scaling", .set_json = ropes[i].json};
    d = make_folder(llama, name, &r);
    if (ropes[i].same) expect_goldens(d, l_fwd, ropes[i].what);
    else expect_different(d, l_fwd, ropes[i].what);
    free(d);
  }
  edit yarn = {.set_key = "rope_scaling", .set_json = "{\"type\": \"yarn\", \"factor\": 4.0}"};
  expect_error(d = make_folder(llama, "rope_yarn", &yarn), "rope_scaling type 'yarn' is not supported", "yarn"),
      free(d);
  edit nofactor = {.set_key = "rope_scaling", .set_json = "{\"type\": \"linear\"}"};
  expect_error(d = make_folder(llama, "rope_no_factor", &nofactor), "needs 'factor'", "linear without a factor"),
      free(d);

  free(stories), free(s_fwd), free(llama), free(l_fwd), free(opt), free(o_fwd), free(gpt2), free(g_fwd);
  return tl_test_finish("test_model_folders");
}
