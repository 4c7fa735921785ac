/* tlens eval: flags of the reference CLI (python -m tuned_lens eval) plus ours. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/eval.h"

static const char *usage =
    "usage: tlens eval --model.name DIR --data.name FILE --output DIR [-l LENS_DIR]... [options]\n\n"
    "Evaluates the logit lens and (with -l) tuned lenses at every layer: cross-entropy to the\n"
    "shifted input ids, entropy, and KL(model || lens), in bits per byte. Writes\n"
    "aggregate_metrics.json, batches.jsonl, metrics.svg (and logit_stats.json with\n"
    "--record_logit_stats, layer_transfer.svg with --layer_transfer) to the output folder,\n"
    "and prints a per-layer table. One -l lens is the files' key \"tuned\"; with several\n"
    "(-l A -l B, or -l NAME=DIR to name one) each lens is a key of its own, its name or\n"
    "its folder's base name. Runs on 1..N MPI ranks like train.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.";

static int eval_body(void *cfg, tl_run *run, int *status) { return tl_eval_run(cfg, run); }

int tl_cmd_eval(int argc, char **argv) {
  tl_eval_cfg c;
  tl_eval_cfg_default(&c);
  char *log_level = NULL;
  tl_opt opts[64];
  int nopts = tl_cli_run_options(opts, 64, &c.run, &log_level);
  const tl_opt own[] = {
      {"output|o", 'o', TL_OPT_STR, &c.run.output, "output folder", 0, 0, false},
      {"lens_name|lens", 'l', TL_OPT_LIST, &c.lens,
       "tuned lens folder (config.json + params.pt), or NAME=DIR; repeat -l (or list folders) to evaluate several", 0, 0,
       false},
      {"logit", 0, TL_OPT_BOOL, &c.logit, "evaluate the logit lens (--nologit: only the tuned lens)", 0, 0, false},
      {"seed", 0, TL_OPT_INT, &c.seed, "sample order seed", 0, 9.2e18, false},
      {"tokens", 0, TL_OPT_INT, &c.tokens, "evaluate on this many tokens [0: all]", 0, 1e15, false},
      {"token_shift", 0, TL_OPT_INT, &c.token_shift, "label shift for ce (1 = next token)", -1e6, 1e6, false},
      {"layer_transfer", 0, TL_OPT_BOOL, &c.layer_transfer, "also every translator on every stream", 0, 0, false},
      {"record_logit_stats", 0, TL_OPT_BOOL, &c.record_logit_stats, "write each layer's mean probability vector", 0, 0, false},
  };
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) opts[nopts++] = own[i];
  int status = tl_cli_parse("eval", opts, nopts, argc, argv, usage, true, NULL, NULL);
  if (status < 0) {
    if (tl_cli_apply_log_level(log_level) != 0 || tl_eval_cfg_check(&c) != 0) status = tl_cli_report("eval", TL_EXIT_USAGE);
    else status = tl_cli_run_ranks("eval", argc, argv, eval_body, &c);
  }
  free(log_level);
  tl_eval_cfg_free(&c);
  return status;
}
