/* Lens config.json and lens folders.
 * References: the fixture config.json files written by tuned-lens (json.dump of the
 * config dataclass): parsed fields, and our serialisation must reproduce the file
 * byte for byte; Python's json.dumps escaping of a non-ASCII name (literal below);
 * the fixture lenses for folder loading. Bad fields and mismatches give one-line
 * errors; an unembed hash mismatch only warns, as in the reference. */
#include <string.h>
#include <unistd.h>

#include "tl_test.h"
#include "tlens/export.h"

static const char *fx;

static int one_line_error(const char *must_contain) {
  const char *e = tl_errmsg();
  int ok = e[0] && !strchr(e, '\n') && (!must_contain || strstr(e, must_contain));
  if (!ok) fprintf(stderr, "error message: '%s' (expected to contain '%s')\n", e, must_contain ? must_contain : "");
  return ok;
}

static void bad_config(const char *json, const char *msg) {
  tl_lens_config c;
  tl_clear_error();
  int rc = tl_lens_config_parse(json, strlen(json), "bad.json", &c);
  CHECKF(rc == -1, "accepted %s", json);
  CHECK(one_line_error(msg) && strstr(tl_errmsg(), "bad.json"));
  if (rc == 0) tl_lens_config_free(&c);
}

static void check_configs(void) {
  char path[4096];
  const char *models[3] = {"gpt2", "gpt_neox", "llama"};
  for (int m = 0; m < 3; m++) {
    snprintf(path, sizeof path, "%s/golden/%s/lens/config.json", fx, models[m]);
    tl_lens_config c;
    CHECK(tl_lens_config_read(path, &c) == 0);
    CHECK(c.base_model_name_or_path && !strcmp(c.base_model_name_or_path, "") && c.d_model == 64 && c.num_hidden_layers == 3);
    CHECK(c.bias && c.base_model_revision == NULL && c.unembed_hash && strlen(c.unembed_hash) == 64);
    /* our writer reproduces the reference's file exactly */
    char *text, *mine = tl_lens_config_json(&c);
    size_t len;
    CHECK(tl_read_file(path, &text, &len) == 0);
    CHECKF(!strcmp(mine, text), "%s:\n%s\nours:\n%s", models[m], text, mine);
    free(text);
    free(mine);
    tl_lens_config_free(&c);
  }
  /* legacy misspelled key: ignored (warning), hash stays null */
  snprintf(path, sizeof path, "%s/golden/llama/lens_fp16/config.json", fx);
  tl_lens_config c;
  CHECK(tl_lens_config_read(path, &c) == 0);
  CHECK(c.unembed_hash == NULL && c.d_model == 64);
  tl_lens_config_free(&c);

  /* escaping as json.dumps: non-ASCII as \u, astral planes as surrogate pairs */
  tl_lens_config e = {.base_model_name_or_path = "\xd0\xbc\xd0\xbe/\xc3\xbc\xf0\x9f\x98\x80\"\\\n\t\x01", .d_model = 7,
                      .num_hidden_layers = 2, .bias = true, .base_model_revision = "main"};
  char *j = tl_lens_config_json(&e);
  const char *want = "{\"base_model_name_or_path\": \"\\u043c\\u043e/\\u00fc\\ud83d\\ude00\\\"\\\\\\n\\t\\u0001\", \"d_model\": 7, "
                     "\"num_hidden_layers\": 2, \"bias\": true, \"base_model_revision\": \"main\", \"unembed_hash\": null, "
                     "\"lens_type\": \"linear_tuned_lens\"}";
  CHECKF(!strcmp(j, want), "got %s", j);
  /* and it reads back to the same fields */
  tl_lens_config r;
  CHECK(tl_lens_config_parse(j, strlen(j), "rt", &r) == 0);
  CHECK(!strcmp(r.base_model_name_or_path, e.base_model_name_or_path) && !strcmp(r.base_model_revision, "main") &&
        r.unembed_hash == NULL && r.d_model == 7 && r.num_hidden_layers == 2);
  tl_lens_config_free(&r);
  free(j);

  /* defaults for missing optional keys */
  CHECK(tl_lens_config_parse("{\"base_model_name_or_path\": \"x\", \"d_model\": 8, \"num_hidden_layers\": 2}", 71, "min", &r) == 0);
  CHECK(r.bias && !r.unembed_hash && !r.base_model_revision);
  tl_lens_config_free(&r);

#define BASE "\"base_model_name_or_path\": \"x\", "
  bad_config("{" BASE "\"d_model\": 8, ", "invalid JSON");
  bad_config("[1, 2]", "expected a JSON object");
  bad_config("{" BASE "\"d_model\": \"8\", \"num_hidden_layers\": 2}", "\"d_model\" must be an integer");
  bad_config("{" BASE "\"d_model\": 8.5, \"num_hidden_layers\": 2}", "\"d_model\" must be an integer");
  bad_config("{" BASE "\"d_model\": 0, \"num_hidden_layers\": 2}", "\"d_model\" must be an integer");
  bad_config("{" BASE "\"d_model\": 8, \"num_hidden_layers\": -1}", "\"num_hidden_layers\" must be an integer");
  bad_config("{" BASE "\"d_model\": 8}", "missing \"num_hidden_layers\"");
  bad_config("{\"d_model\": 8, \"num_hidden_layers\": 2}", "missing \"base_model_name_or_path\"");
  bad_config("{" BASE "\"d_model\": 8, \"num_hidden_layers\": 2, \"bias\": false}", "only lenses with translator biases");
  bad_config("{" BASE "\"d_model\": 8, \"num_hidden_layers\": 2, \"bias\": 1}", "\"bias\" must be true or false");
  bad_config("{" BASE "\"d_model\": 8, \"num_hidden_layers\": 2, \"lens_type\": \"other\"}", "\"lens_type\" must be");
  bad_config("{" BASE "\"d_model\": 8, \"num_hidden_layers\": 2, \"unembed_hash\": 5}", "\"unembed_hash\" must be a string or null");
  bad_config("{" BASE "\"d_model\": 8, \"num_hidden_layers\": 2, \"base_model_revision\": []}", "\"base_model_revision\" must be");
  bad_config("{\"base_model_name_or_path\": null, \"d_model\": 8, \"num_hidden_layers\": 2}", "must be a string");
  bad_config("{" BASE "\"d_model\": 8, \"d_model\": 8, \"num_hidden_layers\": 2}", "appears twice");
  tl_clear_error();
  CHECK(tl_lens_config_read("/nonexistent/config.json", &r) == -1 && one_line_error("/nonexistent/config.json"));
}

static void check_dirs(const char *tmp) {
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/golden/llama/lens", fx);
  snprintf(path, sizeof path, "%s/params.pt", dir);
  tl_pt_file ref;
  CHECK(tl_pt_open(&ref, path) == 0);
  int64_t d = 64, per = d * d + d;
  float *want = malloc(sizeof(float) * (size_t)(3 * per));
  for (int i = 0; i < 3; i++) {
    tl_pt_to_f32(tl_pt_find(&ref, i == 0 ? "0.weight" : i == 1 ? "1.weight" : "2.weight"), want + i * per);
    tl_pt_to_f32(tl_pt_find(&ref, i == 0 ? "0.bias" : i == 1 ? "1.bias" : "2.bias"), want + i * per + d * d);
  }
  tl_pt_close(&ref);
  tl_lens_config c, c2;
  CHECK(tl_lens_config_read("/dev/null", &c) == -1); /* empty: invalid JSON */
  snprintf(path, sizeof path, "%s/config.json", dir);
  CHECK(tl_lens_config_read(path, &c) == 0);

  /* matching model */
  float *p = NULL;
  int mism = -1;
  tl_lens_expect ex = {64, 3, c.unembed_hash};
  CHECK(tl_lens_dir_load(dir, &ex, &c2, &p, &mism) == 0);
  CHECK(mism == 0 && p && !memcmp(p, want, sizeof(float) * (size_t)(3 * per)));
  free(p);
  tl_lens_config_free(&c2);
  /* another model's unembedding: loads, with a warning */
  ex.unembed_hash = "0000000000000000000000000000000000000000000000000000000000000000";
  CHECK(tl_lens_dir_load(dir, &ex, &c2, &p, &mism) == 0 && mism == 1);
  free(p);
  tl_lens_config_free(&c2);
  /* wrong sizes: errors */
  tl_lens_expect ex_d = {128, 3, NULL}, ex_l = {64, 4, NULL};
  tl_clear_error();
  CHECK(tl_lens_dir_load(dir, &ex_d, &c2, &p, NULL) == -1 && p == NULL && one_line_error("does not match the model's hidden size 128"));
  CHECK(tl_lens_dir_load(dir, &ex_l, &c2, &p, NULL) == -1 && one_line_error("lens has 3 layers but the model has 4"));
  /* the fp16 folder (legacy config) loads as the rounded lens */
  snprintf(path, sizeof path, "%s/golden/llama/lens_fp16", fx);
  CHECK(tl_lens_dir_load(path, NULL, &c2, &p, &mism) == 0 && mism == 0);
  long bad = 0;
  for (int64_t k = 0; p && k < 3 * per; k++)
    if (p[k] != tl_f16_to_f32(tl_f32_to_f16(want[k]))) bad++;
  CHECK(p && bad == 0);
  free(p);
  tl_lens_config_free(&c2);

  /* save, then load: bit-exact (fp32) and rounded (bf16) */
  snprintf(path, sizeof path, "%s/out/lens", tmp);
  CHECK(tl_lens_dir_save(path, &c, want, TL_F32) == 0);
  CHECK(tl_lens_dir_load(path, &(tl_lens_expect){64, 3, c.unembed_hash}, &c2, &p, &mism) == 0 && mism == 0);
  CHECK(p && !memcmp(p, want, sizeof(float) * (size_t)(3 * per)));
  CHECK(c2.unembed_hash && !strcmp(c2.unembed_hash, c.unembed_hash));
  free(p);
  tl_lens_config_free(&c2);
  CHECK(tl_lens_dir_save(path, &c, want, TL_BF16) == 0);
  CHECK(tl_lens_dir_load(path, NULL, &c2, &p, NULL) == 0);
  bad = 0;
  for (int64_t k = 0; p && k < 3 * per; k++)
    if (p[k] != tl_bf16_to_f32(tl_f32_to_bf16(want[k]))) bad++;
  CHECK(p && bad == 0);
  free(p);
  tl_lens_config_free(&c2);

  /* a folder whose params.pt does not fit its config */
  tl_lens_config small = c;
  small.num_hidden_layers = 2;
  CHECK(tl_lens_dir_save(path, &small, want, TL_F32) == 0);
  char cj[4300];
  snprintf(cj, sizeof cj, "%s/config.json", path);
  CHECK(tl_lens_config_write(cj, &c) == 0); /* says 3 layers */
  tl_clear_error();
  CHECK(tl_lens_dir_load(path, NULL, &c2, &p, NULL) == -1 && one_line_error("4 tensors, expected 6"));
  small.num_hidden_layers = 3;
  small.d_model = 8; /* params of d=8, config d=64 */
  CHECK(tl_lens_dir_save(path, &small, want, TL_F32) == 0);
  CHECK(tl_lens_config_write(cj, &c) == 0);
  CHECK(tl_lens_dir_load(path, NULL, &c2, &p, NULL) == -1 && one_line_error("has shape [8, 8], expected [64, 64]"));
  /* invalid configs are not written */
  small.d_model = 0;
  CHECK(tl_lens_config_write(cj, &small) == -1 && one_line_error("d_model 0 out of range"));
  tl_lens_config_free(&c);
  free(want);
}

int main(void) {
  fx = tl_test_fixtures();
  char tmp[] = "/tmp/tlens_export_cfg_XXXXXX";
  CHECK(mkdtemp(tmp) != NULL);
  check_configs();
  check_dirs(tmp);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
  return tl_test_finish("export_config");
}
