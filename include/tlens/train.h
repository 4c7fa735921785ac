/* Training a tuned lens: the loop that ties the modules together.
 *
 * One step, on every rank:
 *   sampler -> this rank's share of the step's global batch (data)
 *   for each micro-batch of per_gpu_batch_size samples:
 *       model forward (frozen; FSDP gathers each layer's shards first)   (model, dist)
 *       fused lens forward/backward of every stream, grads accumulated   (lens)
 *   all-reduce (average) of the translator gradients                    (dist)
 *   global grad-norm clip (TL_TRAIN_CLIP_NORM), SGD/Adam step, schedule (optim)
 *   metrics line; every checkpoint_freq steps an HDF5 checkpoint        (ckpt)
 * and at the end the lens in the hub layout (export). What a run opens before its
 * first step (ranks, model, tokenizer, token cache) comes from tlens/run.h. */
#ifndef TLENS_TRAIN_H
#define TLENS_TRAIN_H

#include <stdbool.h>

#include "tlens/run.h"

/* The reference clips the global gradient norm to 1 (torch clip_grad_norm_). */
#define TL_TRAIN_CLIP_NORM 1.0

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
  bool allow_nonfinite;    /* load model weights holding NaN/Inf */
  /* the reference's flags that have no effect of their own here (documented in --help) */
  char *precision;         /* [auto] weights' dtype: on the CPU compute is fp32 whatever it says */
  char *tokenizer_type;    /* AutoTokenizer class name: tokenizer.json is read whatever it says */
  bool slow_tokenizer;
  char *split, *data_revision; /* for hub datasets; a corpus file has no splits or revisions */
  bool dataset_shuffle;    /* shuffle documents before chunking */
  long dataset_shuffle_seed; /* [42] */
  bool cpu_offload;        /* with --device cuda; nothing to offload on the CPU */
  long nccl_timeout;       /* [1200] s: a collective that takes longer ends the run with an error */
  char *wandb;             /* run name: TensorBoard event files in <output>/tensorboard/<name>/ */
  char *tensorboard;       /* TensorBoard event files in this folder */
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
/* The settings alone, before anything is opened: required fields, names, ranges. */
int tl_train_cfg_check(const tl_train_cfg *c);

/* How a run that returned 0 ended. */
typedef enum {
  TL_TRAIN_DONE = 0,    /* all steps taken, the lens exported */
  TL_TRAIN_STOPPED = 1, /* stopped on a signal (or --stop_after) after writing a checkpoint */
} tl_train_end;
/* Runs the training on the ranks of `run` (tl_run_init done; collective). Returns 0
 * (*end says how it ended) or -1 with the message recorded (tl_errmsg), the same
 * on every rank. */
int tl_train_run(const tl_train_cfg *c, tl_run *run, tl_train_end *end);

#endif
