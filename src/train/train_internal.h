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
#include "tlens/tokenizer.h"
#include "tlens/train.h"

typedef struct {
  const tl_train_cfg *c;
  tl_dist dist;
  tl_model *model;
  tl_model_config mc;
  tl_unembed u;
  char unembed_hash[65];
  tl_tokenizer *tok;
  tl_dataset *data;
  double nats_to_bpb;
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
  float *shard;  /* ZeRO: this rank's reduced gradient shard */
  /* micro-batch buffers */
  int64_t *idx;
  int32_t *ids;
  float *hidden, *losses;
  double *loss_acc;
  /* FSDP */
  tl_fsdp *fsdp;
  float **fsdp_shards;
  tl_layer_hook hook;
  /* output */
  char *ckpt_dir;
  FILE *metrics;
  int tty;
  double t_start;
} tl_run;

/* Writes a checkpoint of the current state (collective). */
int tl_train_checkpoint(tl_run *r);
/* Restores the newest valid checkpoint in r->ckpt_dir, if any (collective). */
int tl_train_resume(tl_run *r);

#endif
