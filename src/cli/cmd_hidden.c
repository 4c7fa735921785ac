/* tlens hidden: run a model on input_ids and write every hidden state and the
 * logits, named as HF output_hidden_states would give them. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

static const char *USAGE =
    "usage: tlens hidden --model DIR --input IN.safetensors --output OUT.safetensors\n"
    "Reads the integer tensor input_ids [B,T] (I32 or I64) from IN and writes\n"
    "hidden_states.<i> (i = 0..L, fp32 [B,T,d]; the last after the final norm) and logits [B,T,V].";

/* Each hidden state goes straight into the writer (which copies it). */
static int add_hidden(void *ctx, int index, const float *h, int B, int T, int d) {
  char name[48];
  snprintf(name, sizeof name, "hidden_states.%d", index);
  int64_t shape[3] = {B, T, d};
  tl_st_writer_add(ctx, name, TL_F32, 3, shape, h);
  return 0;
}

int tl_cmd_hidden(int argc, char **argv) {
  char *model = NULL, *input = NULL, *output = NULL;
  long threads = 0;
  bool allow_nonfinite = false;
  char *revision = NULL;
  tl_opt opts[] = {
      {"model", 'm', TL_OPT_STR, &model, "Hugging Face model folder (config.json + safetensors), or a hub id in the HF cache", 0, 0, 0},
      {"revision|model.revision", 0, TL_OPT_STR, &revision, "with a hub id: branch, tag or commit [main]", 0, 0, 0},
      {"input", 'i', TL_OPT_STR, &input, "safetensors file holding input_ids [B,T]", 0, 0, 0},
      {"output", 'o', TL_OPT_STR, &output, "safetensors file to write", 0, 0, 0},
      {"threads", 0, TL_OPT_INT, &threads, "CPU threads (0 = OMP_NUM_THREADS or all cores)", 0, 4096, 0},
      {"allow_nonfinite", 0, TL_OPT_BOOL, &allow_nonfinite, "load weights holding NaN or Inf", 0, 0, 0},
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
  if (!model || !input || !output) {
    tl_fail("--model, --input and --output are required (see --help)");
    status = tl_cli_report("hidden", TL_EXIT_USAGE);
    goto done;
  }
  tl_backend_cpu_set_threads((int)threads);
  tl_model_allow_nonfinite(allow_nonfinite);
  if (tl_st_open(&in, input)) goto fail;
  in_open = 1;
  const tl_st_tensor *t = tl_st_find(&in, "input_ids");
  if (!t) {
    tl_fail("%s: tensor 'input_ids' is missing", input);
    goto fail;
  }
  if (t->dtype != TL_I32 && t->dtype != TL_I64) {
    tl_fail("%s: tensor 'input_ids' has dtype %s (expected I32 or I64)", input, tl_dtype_name(t->dtype));
    goto fail;
  }
  if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0 || t->shape[0] * t->shape[1] > (1 << 30)) {
    char buf[96];
    tl_fail("%s: tensor 'input_ids' has shape %s (expected [B, T] with B, T > 0)", input,
            tl_shape_str(t->ndim, t->shape, buf, sizeof buf));
    goto fail;
  }
  int B = (int)t->shape[0], T = (int)t->shape[1];
  if (tl_model_load_named(&m, model, revision)) goto fail;
  const tl_model_config *c = tl_model_cfg(m);
  ids64 = tl_malloc(sizeof(int64_t) * B * T);
  ids = tl_malloc(sizeof(int32_t) * B * T);
  tl_to_i64(ids64, t->data, t->dtype, (size_t)B * T);
  for (int i = 0; i < B * T; i++) {
    if (ids64[i] < 0 || ids64[i] >= c->vocab) {
      tl_fail("%s: input_ids[%d][%d] = %lld is out of range [0, %d) for %s", input, i / T, i % T,
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
