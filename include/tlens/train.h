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
  tl_run_cfg run;          /* model, corpus, output and distribution: the flags train shares with eval */
  long tokens_per_step;    /* [2^18] */
  long num_steps;          /* [250] */
  long seed;               /* [42] */
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
  /* checkpoints and reports */
  char *checkpoint_dir;    /* [<output>/checkpoints] */
  long checkpoint_freq;    /* [50]; 0 = only on preemption */
  long checkpoint_keep;    /* [2] */
  char *hub_layout;        /* also export to <hub_layout>/lens/<model-name>/ */
  bool force;              /* resume even if the checkpoint's config differs */
  char *wandb;             /* run name: TensorBoard event files in <output>/tensorboard/<name>/ */
  char *tensorboard;       /* TensorBoard event files in this folder */
  bool zero;               /* shard the optimizer state across ranks (ZeRO-1) */
  char *lens_precision;    /* [fp32] or bf16: the precision of the lens step's two large GEMMs */
  long lens_chunk;         /* [0: TL_LENS_CHUNK] tokens per chunk of the fused lens step */
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
