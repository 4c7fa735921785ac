/* Training a tuned lens: the loop that ties the modules together.
 *
 * One step, on every rank:
 *   sampler -> this rank's share of the step's global batch (data)
 *   for each micro-batch of per_gpu_batch_size samples:
 *       model forward (frozen; FSDP gathers each layer's shards first)   (model, dist)
 *       fused lens forward/backward of every stream, grads accumulated   (lens)
 *   all-reduce (average) of the translator gradients                    (dist)
 *   global grad-norm clip to 1.0, SGD/Adam step, linear schedule        (optim)
 *   metrics line; every checkpoint_freq steps an HDF5 checkpoint        (ckpt)
 * and at the end the lens in the hub layout (export).
 *
 * Exit statuses of `tlens train`: 0 finished (the lens is exported), 1 error,
 * 2 bad usage, TL_EXIT_PREEMPTED (3) checkpointed after SIGUSR1/SIGTERM, not finished. */
#ifndef TLENS_TRAIN_H
#define TLENS_TRAIN_H

#include <stdbool.h>

typedef struct {
  /* what to train on */
  char *model;       /* model folder, as given (recorded as base_model_name_or_path) */
  char *data;        /* .jsonl / .jsonl.zst / pre-tokenized .safetensors */
  char *text_column; /* ["text"] */
  char *tokenizer;   /* tokenizer.json; default <model>/tokenizer.json */
  char *revision;    /* recorded as base_model_revision (null when unset) */
  long max_seq_len;  /* [2048] */
  long per_gpu_batch_size; /* [1] */
  long tokens_per_step;    /* [2^18] */
  long num_steps;          /* [250] */
  long seed;               /* [42] */
  bool shuffle;            /* [true] --dataloader_shuffle / --nodataloader_shuffle */
  /* the lens and its loss */
  char *loss;              /* ["kl"] or "ce" */
  long token_shift;        /* [unset: kl 0, ce 1] */
  bool token_shift_set;
  bool bias_only;
  char *lens_init;         /* --lens_name_or_path: start from this lens folder */
  /* optimizer */
  char *optimizer;         /* ["sgd"] or "adam" */
  double lr_scale, momentum, weight_decay;
  long warmup_steps;       /* [-1: 0 for sgd, min(1000, num_steps/5) for adam] */
  /* output, checkpoints */
  char *output;            /* required */
  char *checkpoint_dir;    /* [<output>/checkpoints] */
  long checkpoint_freq;    /* [50]; 0 = only on preemption */
  long checkpoint_keep;    /* [2] */
  char *cache_dir;         /* token cache [<output>/cache] */
  char *hub_layout;        /* also export to <hub_layout>/lens/<model-name>/ */
  bool force;              /* resume even if the checkpoint's config differs */
  /* distribution */
  bool fsdp;               /* shard the frozen model's layers across ranks */
  bool zero;               /* shard the optimizer state across ranks (ZeRO-1) */
  long threads;            /* [0: OMP_NUM_THREADS or all cores / ranks per node] */
  char *lens_precision;    /* [fp32] or bf16: the precision of the lens step's two large GEMMs */
  long lens_chunk;         /* [0: TL_LENS_CHUNK] tokens per chunk of the fused lens step */
  bool progress;           /* [true] progress line on a terminal */
  long stop_after;         /* [0] testing aid: behave as if preempted after this many steps */
} tl_train_cfg;

void tl_train_cfg_default(tl_train_cfg *c);
void tl_train_cfg_free(tl_train_cfg *c);
/* Runs the training (collective over all MPI ranks). Returns the process exit status. */
int tl_train_run(const tl_train_cfg *c, int argc, char **argv);

#endif

/* ---- shared by train and eval ---- */
#include "tlens/data.h"
#include "tlens/dist.h"
#include "tlens/tokenizer.h"

/* Threads per rank: requested > 0 wins, then OMP_NUM_THREADS, else the node's cores
 * divided among the ranks on it (oversubscribed cores thrash). */
void tl_choose_threads(long requested, const tl_dist *d);
/* Loads <tokenizer_path or model/tokenizer.json>; for pre-tokenized .safetensors data
 * a missing tokenizer is fine (*tok = NULL). Collective (errors agreed). */
int tl_open_tokenizer(tl_dist *d, const char *model, const char *tokenizer_path, const char *data,
                      tl_tokenizer **tok);
/* Rank 0 tokenizes the corpus into the token cache once (reused when valid), the other
 * ranks wait and map the same file. Collective (errors agreed). */
int tl_open_dataset(tl_dist *d, const char *data, const tl_tokenizer *tok, const char *text_column,
                    long max_seq_len, const char *cache_dir, tl_dataset **out);
