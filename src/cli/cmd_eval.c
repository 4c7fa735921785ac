/* tlens eval: flags of the reference CLI (python -m tuned_lens eval) plus ours. */
#include <stdio.h>

#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/eval.h"

static const char *usage =
    "usage: tlens eval --model.name DIR --data.name FILE --output DIR [-l LENS_DIR] [options]\n\n"
    "Evaluates the logit lens and (with -l) a tuned lens at every layer: cross-entropy to the\n"
    "shifted input ids, entropy, and KL(model || lens), in bits per byte. Writes\n"
    "aggregate_metrics.json, batches.jsonl, metrics.svg (and logit_stats.json with\n"
    "--record_logit_stats) to the output folder, and prints a per-layer table. Runs on\n"
    "1..N MPI ranks like train.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.";

static int eval_body(void *cfg, tl_run *run, int *status) { return tl_eval_run(cfg, run); }

int tl_cmd_eval(int argc, char **argv) {
  tl_eval_cfg c;
  tl_eval_cfg_default(&c);
  tl_opt opts[] = {
      {"model.name|model", 0, TL_OPT_STR, &c.model, "model folder", 0, 0, false},
      {"data.name|data", 0, TL_OPT_STR, &c.data, "corpus: .jsonl, .jsonl.zst or pre-tokenized .safetensors", 0, 0, false},
      {"data.text_column|text_column", 0, TL_OPT_STR, &c.text_column, "JSON field holding the text", 0, 0, false},
      {"tokenizer", 0, TL_OPT_STR, &c.tokenizer, "tokenizer.json [<model>/tokenizer.json]", 0, 0, false},
      {"lens_name|lens", 'l', TL_OPT_STR, &c.lens, "tuned lens folder (config.json + params.pt)", 0, 0, false},
      {"logit", 0, TL_OPT_BOOL, &c.logit, "evaluate the logit lens (--nologit: only the tuned lens)", 0, 0, false},
      {"output|o", 'o', TL_OPT_STR, &c.output, "output folder", 0, 0, false},
      {"seed", 0, TL_OPT_INT, &c.seed, "sample order seed", 0, 9.2e18, false},
      {"dataloader_shuffle", 0, TL_OPT_BOOL, &c.shuffle, "shuffle the samples", 0, 0, false},
      {"tokens", 0, TL_OPT_INT, &c.tokens, "evaluate on this many tokens [0: all]", 0, 1e15, false},
      {"token_shift", 0, TL_OPT_INT, &c.token_shift, "label shift for ce (1 = next token)", -1e6, 1e6, false},
      {"per_gpu_batch_size", 0, TL_OPT_INT, &c.per_gpu_batch_size, "samples per rank per batch", 1, 1 << 20, false},
      {"max_seq_len", 0, TL_OPT_INT, &c.max_seq_len, "tokens per sample", 2, 1 << 24, false},
      {"layer_transfer", 0, TL_OPT_BOOL, &c.layer_transfer, "also every translator on every stream", 0, 0, false},
      {"record_logit_stats", 0, TL_OPT_BOOL, &c.record_logit_stats, "write each layer's mean probability vector", 0, 0, false},
      {"cache_dir", 0, TL_OPT_STR, &c.cache_dir, "token cache folder [<output>/cache]", 0, 0, false},
      {"threads", 0, TL_OPT_INT, &c.threads, "threads per rank", 0, 4096, false},
      {"progress", 0, TL_OPT_BOOL, &c.progress, "progress line on a terminal", 0, 0, false},
      {"allow_nonfinite", 0, TL_OPT_BOOL, &c.allow_nonfinite, "load model weights holding NaN or Inf (refused by default)", 0, 0, false},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("eval", opts, nopts, argc, argv, usage, true, NULL, NULL);
  if (status < 0)
    status = tl_eval_cfg_check(&c) != 0 ? tl_cli_report("eval", TL_EXIT_USAGE)
                                        : tl_cli_run_ranks("eval", argc, argv, eval_body, &c);
  tl_eval_cfg_free(&c);
  return status;
}
