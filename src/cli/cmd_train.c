/* tlens train: flags of the reference CLI (python -m tuned_lens train) plus ours. */
#include <stdlib.h>

#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/train.h"

static const char *usage =
    "usage: tlens train --model.name DIR --data.name FILE --output DIR [options]\n"
    "       mpirun -np N tlens train ...   |   srun --mpi=pmix tlens train ...\n\n"
    "Trains a tuned lens (one affine translator per layer) for a Hugging Face model folder on a\n"
    "corpus (.jsonl, .jsonl.zst, or a .safetensors holding input_ids [N, max_seq_len]). Ranks split\n"
    "each step's samples (DDP) and average the translator gradients; --fsdp also shards the frozen\n"
    "model's layers. Checkpoints go to <output>/checkpoints; a run started again with the same\n"
    "output resumes from the newest valid one. On SIGUSR1/SIGTERM the run finishes the current\n"
    "step, checkpoints and exits with status 3. When done, <output> holds the lens in the hub\n"
    "layout (config.json + params.pt) and metrics.jsonl the per-step losses.\n\n"
    "Adam's warmup defaults to min(1000, num_steps/5), the reference's documented intent (its code\n"
    "actually gives Adam no warmup); pass --warmup_steps 0 to match that.\n"
    "Exit status: 0 done, 1 error, 2 bad usage, 3 checkpointed and stopped on a signal.";

static int train_body(void *cfg, tl_run *run, int *status) {
  tl_train_end end;
  TL_TRY(tl_train_run(cfg, run, &end));
  *status = end == TL_TRAIN_STOPPED ? TL_EXIT_PREEMPTED : TL_EXIT_OK;
  return 0;
}

int tl_cmd_train(int argc, char **argv) {
  tl_train_cfg c;
  tl_train_cfg_default(&c);
  long token_shift = 0;
  char *log_level = NULL;
  tl_opt opts[80];
  int nopts = tl_cli_run_options(opts, 80, &c.run, &log_level);
  const tl_opt own[] = {
      /* Train */
      {"output|o", 'o', TL_OPT_STR, &c.run.output, "output folder (lens, metrics, checkpoints, token cache)", 0, 0, false},
      {"seed", 0, TL_OPT_INT, &c.seed, "shuffle seed", 0, 9.2e18, false},
      {"lens_name_or_path", 'l', TL_OPT_STR, &c.lens_init, "start from this lens folder (fine-tuning)", 0, 0, false},
      {"bias_only", 0, TL_OPT_BOOL, &c.bias_only, "train only the translators' biases", 0, 0, false},
      {"num_steps", 0, TL_OPT_INT, &c.num_steps, "optimizer steps", 1, 1e12, false},
      {"tokens_per_step", 0, TL_OPT_INT, &c.tokens_per_step, "tokens per optimizer step, all ranks", 1, 1e15, false},
      {"wandb", 0, TL_OPT_STR, &c.wandb, "run name: every per-step scalar as TensorBoard events in <output>/tensorboard/NAME/ "
       "(what `wandb sync --sync-tensorboard` uploads; nothing is sent from here)", 0, 0, false},
      {"tensorboard", 0, TL_OPT_STR, &c.tensorboard, "write the TensorBoard events to this folder instead", 0, 0, false},
      {"token_shift", 0, TL_OPT_INT, &token_shift, "label shift [kl: 0, ce: 1]", -1e6, 1e6, false},
      {"checkpoint_freq", 0, TL_OPT_INT, &c.checkpoint_freq, "checkpoint every N steps (0: only on signals and at the end)", 0, 1e12, false},
      {"checkpoint_dir", 0, TL_OPT_STR, &c.checkpoint_dir, "checkpoint folder [<output>/checkpoints]", 0, 0, false},
      {"loss", 0, TL_OPT_STR, &c.loss, "kl (KL(model || lens)) or ce (next-token cross-entropy)", 0, 0, false},
      /* Optimizer */
      {"weight_decay|opt.weight_decay", 0, TL_OPT_FLOAT, &c.weight_decay, "weight decay (pulls translators toward identity)", 0, 0, false},
      {"lr_scale|opt.lr_scale", 0, TL_OPT_FLOAT, &c.lr_scale, "sgd lr = lr_scale*(1-momentum); adam lr = lr_scale*1e-3", 0, 0, false},
      {"momentum|opt.momentum", 0, TL_OPT_FLOAT, &c.momentum, "sgd momentum / adam beta1", 0, 0, false},
      {"zero|opt.zero", 0, TL_OPT_BOOL, &c.zero, "shard the optimizer state across ranks (ZeRO-1)", 0, 0, false},
      {"optimizer|opt.optimizer", 0, TL_OPT_STR, &c.optimizer, "sgd (Nesterov) or adam (amsgrad)", 0, 0, false},
      {"warmup_steps|opt.warmup_steps", 0, TL_OPT_INT, &c.warmup_steps, "linear warmup steps [-1: sgd 0, adam min(1000, num_steps/5)]", -1, 1e12, false},
      /* ours */
      {"checkpoint_keep", 0, TL_OPT_INT, &c.checkpoint_keep, "checkpoints kept", 1, 1e6, false},
      {"hub_layout", 0, TL_OPT_STR, &c.hub_layout, "also write the lens to DIR/lens/<model-name>/", 0, 0, false},
      {"force", 0, TL_OPT_BOOL, &c.force, "resume even from a checkpoint whose settings differ", 0, 0, false},
      {"lens_precision", 0, TL_OPT_STR, &c.lens_precision, "fp32, or bf16 for the lens step's W_U products (AVX-512 BF16 CPUs; ~1.5x faster)", 0, 0, false},
      {"lens_chunk", 0, TL_OPT_INT, &c.lens_chunk, "tokens per chunk of the fused lens step [0: built-in]", 0, 1 << 20, false},
      {"stop_after", 0, TL_OPT_INT, &c.stop_after, "checkpoint and exit 3 after N steps, as on a signal (testing)", 0, 1e12, false},
  };
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) opts[nopts++] = own[i];
  int status = tl_cli_parse("train", opts, nopts, argc, argv, usage, true, NULL, NULL);
  if (status < 0) {
    for (int i = 0; i < nopts; i++)
      if (opts[i].dst == &token_shift && opts[i].set) {
        c.token_shift = token_shift;
        c.token_shift_set = true;
      }
    if (tl_cli_apply_log_level(log_level) != 0 || tl_train_cfg_check(&c) != 0) status = tl_cli_report("train", TL_EXIT_USAGE);
    else status = tl_cli_run_ranks("train", argc, argv, train_body, &c);
  }
  free(log_level);
  tl_train_cfg_free(&c);
  return status;
}
