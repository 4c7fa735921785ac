/* tlens synth: write a random-weight Hugging Face model folder of any shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/model.h"

static const char *USAGE =
    "usage: tlens synth --arch gpt2|gpt_neox|llama --layers N --hidden D --heads H --vocab V --output DIR\n"
    "                   [--kv_heads K] [--intermediate F] [--seq S] [--seed N] [--dtype f32|f16|bf16] [--tie]\n"
    "Writes DIR/config.json and DIR/model.safetensors with random weights (gpt2 is always tied).";

int tl_cmd_synth(int argc, char **argv) {
  char *arch = NULL, *output = NULL, *dtype = NULL;
  long layers = 0, hidden = 0, heads = 0, vocab = 0, kv = 0, inter = 0, seq = 2048, seed = 0;
  bool tie = false;
  tl_opt opts[] = {
      {"arch", 0, TL_OPT_STR, &arch, "architecture: gpt2, gpt_neox or llama", 0, 0, 0},
      {"layers", 0, TL_OPT_INT, &layers, "number of blocks", 1, 100000, 0},
      {"hidden", 0, TL_OPT_INT, &hidden, "model width d", 1, 1 << 20, 0},
      {"heads", 0, TL_OPT_INT, &heads, "attention heads", 1, 1 << 16, 0},
      {"vocab", 0, TL_OPT_INT, &vocab, "vocabulary size", 1, 1 << 24, 0},
      {"kv_heads", 0, TL_OPT_INT, &kv, "key/value heads (llama; 0 = heads)", 0, 1 << 16, 0},
      {"intermediate", 0, TL_OPT_INT, &inter, "MLP width (0 = family default)", 0, 1 << 22, 0},
      {"seq", 0, TL_OPT_INT, &seq, "max_position_embeddings", 1, 1 << 24, 0},
      {"seed", 0, TL_OPT_INT, &seed, "random seed", 0, 9.0e15, 0},
      {"dtype", 0, TL_OPT_STR, &dtype, "storage dtype: f32, f16 or bf16 [f32]", 0, 0, 0},
      {"tie", 0, TL_OPT_BOOL, &tie, "tie the output embedding to the input embedding", 0, 0, 0},
      {"output", 'o', TL_OPT_STR, &output, "folder to write", 0, 0, 0},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("synth", opts, nopts, argc, argv, USAGE, false, NULL, NULL);
  if (status >= 0) return status;
  status = TL_EXIT_USAGE;
  if (!arch || !output || !layers || !hidden || !heads || !vocab) {
    tl_fail("--arch, --layers, --hidden, --heads, --vocab and --output are required (see --help)");
    goto fail;
  }
  tl_synth_opts o = {.arch = arch, .layers = (int)layers, .hidden = (int)hidden, .heads = (int)heads,
                     .kv_heads = (int)kv, .intermediate = (int)inter, .vocab = (int)vocab, .seq = (int)seq,
                     .seed = (uint64_t)seed, .dtype = TL_F32, .tie = tie};
  if (dtype) {
    if (!strcmp(dtype, "f32")) o.dtype = TL_F32;
    else if (!strcmp(dtype, "f16")) o.dtype = TL_F16;
    else if (!strcmp(dtype, "bf16")) o.dtype = TL_BF16;
    else {
      tl_fail("--dtype: '%s' is not one of f32, f16, bf16", dtype);
      goto fail;
    }
  }
  status = TL_EXIT_ERROR;
  if (tl_model_synth(&o, output)) goto fail;
  printf("wrote %s (config.json, model.safetensors)\n", output);
  tl_args_free(opts, nopts);
  return 0;
fail:
  tl_cli_report("synth", status);
  tl_args_free(opts, nopts);
  return status;
}
