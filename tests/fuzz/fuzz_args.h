/* The option table of the command-line fuzz targets: train's flags (every option type,
 * aliases, short names, ranges as train declares them), parsed by tl_args_parse with
 * --config allowed, as `tlens train` parses. */
#ifndef TLENS_FUZZ_ARGS_H
#define TLENS_FUZZ_ARGS_H

#include <stdio.h>

#include "cli/args.h"
#include "tlens/core.h"

typedef struct {
  char *model, *tokenizer, *precision, *data, *split, *text_column, *output, *lens_init, *loss, *optimizer,
      *checkpoint_dir, *log_level;
  long max_seq_len, seed, num_steps, tokens_per_step, token_shift, checkpoint_freq, warmup_steps, per_gpu_batch_size,
      threads, lens_chunk;
  double weight_decay, lr_scale, momentum;
  bool fsdp, shuffle, dataset_shuffle, bias_only, zero, force, allow_nonfinite;
} fuzz_train_flags;

/* The last parse's error message (tests read it after tl_clear_error ran). */
static char fuzz_last_error[1024];

static inline int fuzz_parse_train_msg(int argc, char **argv) {
  fuzz_train_flags f = {0};
  f.max_seq_len = 2048;
  f.shuffle = true;
  tl_opt opts[] = {
      {"model.name|model", 0, TL_OPT_STR, &f.model, "model folder", 0, 0, false},
      {"tokenizer|model.tokenizer", 0, TL_OPT_STR, &f.tokenizer, "tokenizer.json", 0, 0, false},
      {"precision|model.precision", 0, TL_OPT_STR, &f.precision, "precision", 0, 0, false},
      {"data.name|data", 0, TL_OPT_STRS, &f.data, "corpus files", 0, 0, false},
      {"split|data.split", 0, TL_OPT_STR, &f.split, "split", 0, 0, false},
      {"text_column|data.text_column", 0, TL_OPT_STR, &f.text_column, "JSON field", 0, 0, false},
      {"max_seq_len|data.max_seq_len", 0, TL_OPT_INT, &f.max_seq_len, "tokens per sample", 2, 1 << 24, false},
      {"dataset_shuffle|data.dataset_shuffle", 0, TL_OPT_BOOL, &f.dataset_shuffle, "shuffle documents", 0, 0, false},
      {"fsdp|dist.fsdp", 0, TL_OPT_BOOL, &f.fsdp, "shard layers", 0, 0, false},
      {"per_gpu_batch_size|dist.per_gpu_batch_size", 0, TL_OPT_INT, &f.per_gpu_batch_size, "samples", 1, 1 << 20, false},
      {"dataloader_shuffle|dist.dataloader_shuffle", 0, TL_OPT_BOOL, &f.shuffle, "shuffle samples", 0, 0, false},
      {"threads", 0, TL_OPT_INT, &f.threads, "threads", 0, 4096, false},
      {"allow_nonfinite", 0, TL_OPT_BOOL, &f.allow_nonfinite, "NaN weights", 0, 0, false},
      {"log_level", 0, TL_OPT_STR, &f.log_level, "log level", 0, 0, false},
      {"output|o", 'o', TL_OPT_STR, &f.output, "output folder", 0, 0, false},
      {"seed", 0, TL_OPT_INT, &f.seed, "seed", 0, 9.2e18, false},
      {"lens_name_or_path", 'l', TL_OPT_STR, &f.lens_init, "lens", 0, 0, false},
      {"bias_only", 0, TL_OPT_BOOL, &f.bias_only, "biases only", 0, 0, false},
      {"num_steps", 0, TL_OPT_INT, &f.num_steps, "steps", 1, 1e12, false},
      {"tokens_per_step", 0, TL_OPT_INT, &f.tokens_per_step, "tokens", 1, 1e15, false},
      {"token_shift", 0, TL_OPT_INT, &f.token_shift, "shift", -1e6, 1e6, false},
      {"checkpoint_freq", 0, TL_OPT_INT, &f.checkpoint_freq, "every N steps", 0, 1e12, false},
      {"checkpoint_dir", 0, TL_OPT_STR, &f.checkpoint_dir, "folder", 0, 0, false},
      {"loss", 0, TL_OPT_STR, &f.loss, "kl or ce", 0, 0, false},
      {"weight_decay|opt.weight_decay", 0, TL_OPT_FLOAT, &f.weight_decay, "decay", 0, 0, false},
      {"lr_scale|opt.lr_scale", 0, TL_OPT_FLOAT, &f.lr_scale, "lr", 0, 0, false},
      {"momentum|opt.momentum", 0, TL_OPT_FLOAT, &f.momentum, "momentum", 0, 1, false},
      {"zero|opt.zero", 0, TL_OPT_BOOL, &f.zero, "ZeRO-1", 0, 0, false},
      {"optimizer|opt.optimizer", 0, TL_OPT_STR, &f.optimizer, "sgd or adam", 0, 0, false},
      {"warmup_steps|opt.warmup_steps", 0, TL_OPT_INT, &f.warmup_steps, "warmup", -1, 1e12, false},
      {"force", 0, TL_OPT_BOOL, &f.force, "force", 0, 0, false},
      {"lens_chunk", 0, TL_OPT_INT, &f.lens_chunk, "chunk", 0, 1 << 20, false},
  };
  int n = (int)(sizeof opts / sizeof opts[0]);
  int rc = tl_args_parse(opts, n, argc, argv, "usage: tlens train [flags]", true, NULL, NULL);
  snprintf(fuzz_last_error, sizeof fuzz_last_error, "%s", tl_errmsg());
  tl_args_free(opts, n);
  tl_clear_error();
  return rc;
}

static inline int fuzz_parse_train(int argc, char **argv) { return fuzz_parse_train_msg(argc, argv); }

#endif
