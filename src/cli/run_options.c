/* The reference's Model, Data and Distributed option groups
 * (tuned_lens/scripts/ingredients.py), shared by every command that runs a model
 * over a corpus, so train and eval accept the same flags with the same meaning.
 * Group prefixes are accepted too (--model.precision, --data.split, --dist.fsdp),
 * as are the reference's spellings of names that conflict between groups
 * (--model.name / --data.name, --model.revision / --data.revision). */
#include <stddef.h>
#include <strings.h>

#include "cli/commands.h"
#include "tlens/core.h"

#define ADD(...)                                  \
  do {                                            \
    if (n < cap) out[n++] = (tl_opt){__VA_ARGS__}; \
  } while (0)

int tl_cli_run_options(tl_opt *out, int cap, tl_run_cfg *c, char **log_level) {
  int n = 0;
  /* Model */
  ADD("model.name|model", 0, TL_OPT_STR, &c->model, "model folder (config.json, *.safetensors, tokenizer.json)", 0, 0, false);
  ADD("model.revision|revision", 0, TL_OPT_STR, &c->revision, "model revision, recorded in the lens config", 0, 0, false);
  ADD("tokenizer|model.tokenizer", 0, TL_OPT_STR, &c->tokenizer, "tokenizer.json [<model>/tokenizer.json]", 0, 0, false);
  ADD("precision|model.precision", 0, TL_OPT_STR, &c->precision,
      "auto|bfloat16|float16|float32 (int8 is refused: it needs bitsandbytes on a GPU); on the CPU the frozen "
      "model computes in fp32 whatever the precision",
      0, 0, false);
  ADD("slow_tokenizer|model.slow_tokenizer", 0, TL_OPT_BOOL, &c->slow_tokenizer,
      "accepted for the reference's command lines: tokenizer.json has one implementation here", 0, 0, false);
  ADD("tokenizer_type|model.tokenizer_type", 0, TL_OPT_STR, &c->tokenizer_type,
      "accepted for the reference's command lines: tokenizer.json is read whatever the class name", 0, 0, false);
  /* Data */
  ADD("data.name|data", 0, TL_OPT_STRS, &c->data,
      "corpus: .jsonl, .jsonl.zst or pre-tokenized .safetensors; several files, globs or folders (the files of "
      "--split in it) are read in order as one",
      0, 0, false);
  ADD("split|data.split", 0, TL_OPT_STR, &c->split,
      "with a folder in --data.name: read SPLIT-*.jsonl[.zst], SPLIT/*.jsonl[.zst] or data/SPLIT-* (a file has no split)",
      0, 0, false);
  ADD("text_column|data.text_column", 0, TL_OPT_STR, &c->text_column, "JSON field holding the text", 0, 0, false);
  ADD("data.revision", 0, TL_OPT_STR, &c->data_revision, "hub dataset revision (a corpus file has none)", 0, 0, false);
  ADD("max_seq_len|data.max_seq_len", 0, TL_OPT_INT, &c->max_seq_len, "tokens per sample (capped by model_max_length)",
      2, 1 << 24, false);
  ADD("dataset_shuffle|data.dataset_shuffle", 0, TL_OPT_BOOL, &c->dataset_shuffle,
      "shuffle the documents before chunking (seeded; the order differs from HF datasets' shuffle)", 0, 0, false);
  ADD("dataset_shuffle_seed|data.dataset_shuffle_seed", 0, TL_OPT_INT, &c->dataset_shuffle_seed,
      "seed of --dataset_shuffle", 0, 9.2e18, false);
  /* Distributed */
  ADD("fsdp|dist.fsdp", 0, TL_OPT_BOOL, &c->fsdp, "shard the frozen model's layers across ranks", 0, 0, false);
  ADD("cpu_offload|dist.cpu_offload", 0, TL_OPT_BOOL, &c->cpu_offload,
      "keep the frozen layers in host memory (GPU runs; the CPU path holds them there anyway)", 0, 0, false);
  ADD("nccl_timeout|dist.nccl_timeout", 0, TL_OPT_INT, &c->nccl_timeout,
      "seconds a collective may take before the run stops with an error (MPI and NCCL)", 1, 1e9, false);
  ADD("per_gpu_batch_size|dist.per_gpu_batch_size", 0, TL_OPT_INT, &c->per_gpu_batch_size,
      "samples per rank per (micro-)batch", 1, 1 << 20, false);
  ADD("dataloader_shuffle|dist.dataloader_shuffle", 0, TL_OPT_BOOL, &c->shuffle,
      "shuffle the samples (--nodataloader_shuffle: in order)", 0, 0, false);
  /* ours */
  ADD("cache_dir", 0, TL_OPT_STR, &c->cache_dir, "token cache folder [<output>/cache]", 0, 0, false);
  ADD("threads", 0, TL_OPT_INT, &c->threads, "threads per rank [0: OMP_NUM_THREADS, else cores / ranks per node]", 0,
      4096, false);
  ADD("allow_nonfinite", 0, TL_OPT_BOOL, &c->allow_nonfinite, "load model weights holding NaN or Inf (refused by default)",
      0, 0, false);
  ADD("progress", 0, TL_OPT_BOOL, &c->progress, "progress bar on a terminal (plain lines otherwise)", 0, 0, false);
  ADD("log_level", 0, TL_OPT_STR, log_level, "debug, info, warning or error (any case)", 0, 0, false);
  return n;
}

int tl_cli_apply_log_level(const char *level) {
  if (!level) return 0;
  static const struct {
    const char *name;
    int level;
  } levels[] = {{"debug", TL_LOG_DEBUG}, {"info", TL_LOG_INFO}, {"warning", TL_LOG_WARN}, {"warn", TL_LOG_WARN},
                {"error", TL_LOG_ERROR}};
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    if (!strcasecmp(level, levels[i].name)) {
      tl_log_set_level(levels[i].level);
      return 0;
    }
  return tl_fail("--log_level: expected debug, info, warning or error, got '%s'", level);
}
