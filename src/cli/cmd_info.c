/* tlens info: describe a Hugging Face model folder (loads and validates it). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/model.h"

static const char *USAGE = "usage: tlens info --model DIR | --devices\n"
                           "Loads and validates the model, then prints its architecture, sizes and memory;\n"
                           "with --devices, what this machine and build can compute on.";

/* The compute devices: the CPU (threads) and whether the CUDA module loads and finds a GPU. */
static void print_devices(void) {
  printf("cpu:            %d threads (OpenMP)\n", omp_get_max_threads());
  const tl_backend *gpu = tl_backend_get(TL_DEVICE_CUDA);
  if (gpu) printf("cuda:           available (%s)\n", gpu->name);
  else printf("cuda:           unavailable: %s\n", tl_errmsg());
}

static const char *act_str(tl_act a) {
  switch (a) {
  case TL_ACT_GELU_NEW: return "gelu_new (tanh)";
  case TL_ACT_GELU: return "gelu (erf)";
  case TL_ACT_SILU: return "silu";
  case TL_ACT_RELU: return "relu";
  }
  return "?";
}

int tl_cmd_info(int argc, char **argv) {
  char *model = NULL;
  bool devices = false, allow_nonfinite = false;
  char *revision = NULL, *precision = NULL;
  tl_opt opts[] = {{"model", 'm', TL_OPT_STR, &model, "Hugging Face model folder, or a hub id in the HF cache", 0, 0, 0},
                   {"revision|model.revision", 0, TL_OPT_STR, &revision, "with a hub id: branch, tag or commit [main]", 0, 0, 0},
                   {"devices", 0, TL_OPT_BOOL, &devices, "list the compute devices instead", 0, 0, 0},
                   {"allow_nonfinite", 0, TL_OPT_BOOL, &allow_nonfinite, "load weights holding NaN or Inf", 0, 0, 0},
                   {"precision", 0, TL_OPT_STR, &precision,
                    "dtype the layers are held in: auto (the checkpoint's), float32, bfloat16, float16 [auto]", 0, 0, 0}};
  const int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("info", opts, nopts, argc, argv, USAGE, false, NULL, NULL);
  if (status >= 0) return status;
  if (devices && !model) {
    print_devices();
    return TL_EXIT_OK;
  }
  tl_model *m = NULL;
  int held = TL_MODEL_HOLD_AUTO;
  if (!model || devices) {
    tl_fail(devices ? "--devices takes no --model" : "--model is required (see --help)");
    status = tl_cli_report("info", TL_EXIT_USAGE);
  } else if (precision && tl_model_parse_precision(precision, &held)) {
    status = tl_cli_report("info", TL_EXIT_USAGE);
  } else if (tl_model_hold_precision(held), tl_model_allow_nonfinite(allow_nonfinite), tl_model_load_named(&m, model, revision)) {
    status = tl_cli_error("info");
  }
  if (!m) {
    tl_args_free(opts, nopts);
    return status;
  }
  const tl_model_config *c = tl_model_cfg(m);
  double fp32_mb = (double)c->n_params * 4 / (1 << 20);
  double disk_mb = (double)c->n_params * tl_dtype_size(c->dtype) / (1 << 20);
  printf("model:          %s\n", model);
  printf("model_type:     %s\n", c->model_type);
  printf("layers:         %d\n", c->n_layers);
  printf("d_model:        %d\n", c->d_model);
  printf("heads:          %d (kv heads %d, head_dim %d)\n", c->n_heads, c->n_kv_heads, c->head_dim);
  printf("d_ff:           %d%s\n", c->d_ff, c->gated_mlp ? " (gated)" : "");
  printf("vocab:          %d\n", c->vocab);
  printf("max_positions:  %d\n", c->max_pos);
  printf("norm:           %s (eps %g)\n", c->norm == TL_NORM_RMSNORM ? "rmsnorm" : "layernorm", c->norm_eps);
  printf("activation:     %s\n", act_str(c->act));
  if (c->rot_dim)
    printf("positions:      rotary (%d of %d dims, theta %g)\n", c->rot_dim, c->head_dim, c->rope_theta);
  else
    printf("positions:      learned\n");
  printf("residual:       %s\n", c->parallel_residual ? "parallel" : "serial");
  printf("tied_embedding: %s\n", c->tied ? "yes" : "no");
  printf("dtype:          %s\n", tl_dtype_name(c->dtype));
  printf("parameters:     %lld\n", (long long)c->n_params);
  printf("memory:         %.1f MiB on disk, %.1f MiB as fp32\n", disk_mb, fp32_mb);
  printf("held_as:        %s (compute in fp32)\n", tl_dtype_name(tl_model_held_dtype(m)));
  printf("config_sha256:  %s\n", c->config_hash);
  tl_model_free(m);
  tl_args_free(opts, nopts);
  return 0;
}
