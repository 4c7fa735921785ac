/* State of one training run, shared by the loop (train.c) and its checkpoints
 * (train_ckpt.c). */
#ifndef TLENS_TRAIN_INTERNAL_H
#define TLENS_TRAIN_INTERNAL_H

#include <stdio.h>

#include "tlens/data.h"
#include "tlens/dist.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/optim.h"
#include "tlens/run.h"
#include "tlens/train.h"

typedef struct {
  const tl_train_cfg *c;
  tl_run *run; /* ranks, model, unembedding, tokenizer, dataset (tlens/run.h) */
  tl_sampler sampler;
  int64_t T;   /* tokens per sample */
  int64_t B;   /* samples per rank per micro-batch */
  int64_t acc; /* micro-batches per step */
  int64_t G;   /* samples per step, all ranks */
  tl_lens lens;
  tl_lens_cfg lcfg;
  tl_opt_cfg ocfg;
  tl_optim opt; /* state for [opt.off, opt.off + opt.n): everything, or this rank's ZeRO shard */
  int64_t warmup;
  int64_t step;  /* optimizer steps completed */
  int64_t step0; /* step this process started from */
  float *grad;   /* flat gradient [n_params] */
  float *zero_grad; /* ZeRO: this rank's share of the averaged gradient */
  /* micro-batch buffers */
  int64_t *idx;
  int32_t *ids;
  float *hidden, *losses;
  double *loss_acc;
  /* FSDP */
  tl_layer_hook hook;
  /* output */
  char *ckpt_dir;
  FILE *metrics;
  int tty;
  double t_start;
  double t_line; /* when the last plain progress line was written */
  char *forced_from; /* --force: the checkpoint resumed whatever its settings (logged) */
} tl_trainer;

/* Writes a checkpoint of the current state (collective). */
int tl_train_checkpoint(tl_trainer *r);
/* Restores the newest valid checkpoint in r->ckpt_dir, if any (collective). */
int tl_train_resume(tl_trainer *r);

#endif
