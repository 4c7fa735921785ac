/* tlens export: a training checkpoint's lens in the hub layout (config.json + params.pt). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/ckpt.h"
#include "tlens/core.h"
#include "tlens/export.h"

static const char *usage =
    "usage: tlens export --checkpoint FILE|DIR (--output DIR | --hub_layout HUB | both) [--dtype f32|f16|bf16]\n"
    "                    [--model.name NAME]\n\n"
    "Writes the lens held by a training checkpoint (an .h5 file, or the newest valid one in a\n"
    "checkpoint folder) as DIR/config.json + DIR/params.pt, the layout `TunedLens.from_model_and_pretrained`\n"
    "loads. --hub_layout HUB writes it where the hub space keeps it, HUB/lens/<model>/: a hub id\n"
    "as it is (HUB/lens/ORG/NAME/), a model folder by its last part (HUB/lens/gpt2/).";

/* The lens under each folder asked for: --output, then HUB/lens/<model>/. */
static int write_lens(const char *out, const char *hub, const tl_lens_config *lc, const float *params, tl_dtype dt,
                      const char *dtype_s, const char *from) {
  char *hub_dir = NULL;
  if (hub && !lc->base_model_name_or_path[0])
    return tl_fail("--hub_layout: the checkpoint records no model name; give it with --model.name");
  if (hub) {
    char *name = tl_lens_hub_name(lc->base_model_name_or_path), *sub = tl_sprintf("lens/%s", name);
    hub_dir = tl_path_join(hub, sub);
    free(name), free(sub);
  }
  const char *dirs[2] = {out, hub_dir};
  int rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    if (!dirs[k]) continue;
    rc = tl_mkdirs(dirs[k]);
    if (rc == 0) rc = tl_lens_dir_save(dirs[k], lc, params, dt);
    if (rc == 0)
      printf("wrote %s/config.json and %s/params.pt (%d translators, d_model %d, %s) from %s\n", dirs[k], dirs[k],
             lc->num_hidden_layers, lc->d_model, dtype_s, from);
  }
  free(hub_dir);
  return rc;
}

static int run_export(const char *ckpt, const char *out, const char *hub, const char *dtype_s, const char *name) {
  tl_dtype dt;
  if (!strcmp(dtype_s, "f32")) dt = TL_F32;
  else if (!strcmp(dtype_s, "f16")) dt = TL_F16;
  else if (!strcmp(dtype_s, "bf16")) dt = TL_BF16;
  else return tl_fail("--dtype: expected f32, f16 or bf16, got '%s'", dtype_s);
  char *path = NULL;
  if (tl_is_dir(ckpt)) {
    uint64_t step = 0;
    int found = tl_ckpt_find_latest(NULL, ckpt, &path, &step);
    if (found < 0) return -1;
    if (found == 0) return tl_fail("%s: no valid checkpoint (step_*.h5) in this folder", ckpt);
  } else {
    path = tl_strdup(ckpt);
  }
  tl_ckpt_reader *r = NULL;
  int rc = tl_ckpt_open(&r, path, true);
  free(path);
  TL_TRY(rc);
  tl_ckpt_info wi;
  char *config = NULL, *hash = NULL;
  float *params = NULL;
  tl_lens_config lc = {0};
  rc = tl_ckpt_info_of(r, "lens/0/weight", &wi);
  if (rc == 0 && (wi.ndim != 2 || wi.shape[0] != wi.shape[1] || wi.shape[0] == 0))
    rc = tl_fail("%s: lens/0/weight is not a square matrix", tl_ckpt_file(r));
  int d = rc == 0 && wi.shape[0] <= (1u << 20) ? (int)wi.shape[0] : 0, L = 0;
  if (rc == 0 && d == 0) rc = tl_fail("%s: lens/0/weight is %llu wide, not a d_model", tl_ckpt_file(r),
                                      (unsigned long long)wi.shape[0]);
  /* The number of translators comes from the flat optimizer state (one entry per
   * lens parameter), not from counting lens/<i> until one is missing: a checkpoint
   * that lost a translator must not export a shorter lens. */
  if (rc == 0) {
    static const char *states[] = {"optim/momentum_buffer", "optim/exp_avg"};
    tl_ckpt_info si;
    const char *state = tl_ckpt_has(r, states[0]) ? states[0] : tl_ckpt_has(r, states[1]) ? states[1] : NULL;
    uint64_t per = (uint64_t)d * d + (uint64_t)d;
    if (!state) rc = tl_fail("%s: no optimizer state (optim/momentum_buffer or optim/exp_avg)", tl_ckpt_file(r));
    else if ((rc = tl_ckpt_info_of(r, state, &si)) == 0 && (si.numel % per != 0 || si.numel / per > 4096))
      rc = tl_fail("%s: %s holds %llu values, not a whole number of translators of d_model %d", tl_ckpt_file(r),
                   state, (unsigned long long)si.numel, d);
    if (rc == 0) L = (int)(si.numel / per);
    if (rc == 0 && L < 1) rc = tl_fail("%s: %s is empty", tl_ckpt_file(r), state);
    char nm[64];
    snprintf(nm, sizeof nm, "lens/%d/weight", L);
    if (rc == 0 && tl_ckpt_has(r, nm))
      rc = tl_fail("%s: %s exists but %s holds only %d translators", tl_ckpt_file(r), nm, state, L);
  }
  if (rc == 0) {
    size_t per = (size_t)d * d + (size_t)d;
    params = tl_malloc((size_t)L * per * sizeof(float));
    for (int i = 0; i < L && rc == 0; i++) {
      char nm[64];
      snprintf(nm, sizeof nm, "lens/%d/weight", i);
      rc = tl_ckpt_read_f32(r, nm, 0, (uint64_t)d * d, params + i * per);
      snprintf(nm, sizeof nm, "lens/%d/bias", i);
      if (rc == 0) rc = tl_ckpt_read_f32(r, nm, 0, (uint64_t)d, params + i * per + (size_t)d * d);
    }
    for (size_t k = 0; rc == 0 && k < (size_t)L * per; k++)
      if (!isfinite(params[k]))
        rc = tl_fail("%s: translator %zu holds a non-finite value (%g); no lens exported", tl_ckpt_file(r), k / per,
                     (double)params[k]);
  }
  if (rc == 0) rc = tl_ckpt_read_str(r, "run/config", &config);
  if (rc == 0) rc = tl_ckpt_read_str(r, "model/unembed_hash", &hash);
  cJSON *j = rc == 0 ? cJSON_Parse(config) : NULL;
  if (rc == 0 && !cJSON_IsObject(j)) rc = tl_fail("%s: run/config is not a JSON object", tl_ckpt_file(r));
  if (rc == 0) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model.name");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(j, "model.revision");
    lc.base_model_name_or_path = name ? (char *)name : cJSON_IsString(m) ? m->valuestring : "";
    lc.base_model_revision = cJSON_IsString(rev) ? rev->valuestring : NULL;
    lc.d_model = d;
    lc.num_hidden_layers = L;
    lc.bias = true;
    lc.unembed_hash = hash;
    rc = write_lens(out, hub, &lc, params, dt, dtype_s, tl_ckpt_file(r));
  }
  cJSON_Delete(j);
  free(config);
  free(hash);
  free(params);
  tl_ckpt_close(r);
  return rc;
}

int tl_cmd_export(int argc, char **argv) {
  char *ckpt = NULL, *out = NULL, *dtype = tl_strdup("f32"), *name = NULL, *hub = NULL;
  tl_opt opts[] = {
      {"checkpoint", 0, TL_OPT_STR, &ckpt, "checkpoint file (step_*.h5) or folder (newest valid one)", 0, 0, false},
      {"output|o", 'o', TL_OPT_STR, &out, "output folder, e.g. lens/<model-name>/", 0, 0, false},
      {"dtype", 0, TL_OPT_STR, &dtype, "storage dtype of params.pt: f32, f16 or bf16", 0, 0, false},
      {"model.name|model", 0, TL_OPT_STR, &name, "base_model_name_or_path to record [the run's --model.name]", 0, 0, false},
      {"hub_layout", 0, TL_OPT_STR, &hub, "also write the lens to HUB/lens/<model>/ (ORG/NAME for a hub id)", 0, 0, false},
  };
  int n = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("export", opts, n, argc, argv, usage, false, NULL, NULL);
  if (status >= 0) return status;
  if (!ckpt || (!out && !hub)) {
    tl_fail("--checkpoint and --output (or --hub_layout) are required (see --help)");
    status = tl_cli_report("export", TL_EXIT_USAGE);
  } else {
    status = run_export(ckpt, out, hub, dtype, name) != 0 ? tl_cli_error("export") : TL_EXIT_OK;
  }
  tl_args_free(opts, n);
  return status;
}
