/* tlens generate: decode through the lens at one layer (the reference's
 * TunedLens.generate). */
#include <stdio.h>

#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/generate.h"

static const char *usage =
    "usage: tlens generate --model.name DIR|ID (-l LENS | --logit) --layer K (--text S | --input_ids FILE | --prompts FILE)\n"
    "                      [--max_new_tokens 100] [--temp 1.0] [--greedy] [--seed S] [--output FILE]\n\n"
    "Generates text where every next token comes from the lens at layer K (its translator on\n"
    "stream K, then the model's final norm and unembedding) at the last position: sampled at\n"
    "temperature --temp, or the argmax with --greedy. --layer output (or L, or -1) decodes from the\n"
    "model's own output. A sequence that emitted EOS keeps emitting EOS; generation stops when all\n"
    "have, or after --max_new_tokens. Each step runs the model over the whole sequence so far.\n"
    "--reference_cache reproduces tuned-lens 0.2.0's TunedLens.generate token for token: at every\n"
    "step it hands the model the whole sequence together with the cache of the previous steps,\n"
    "so the prefix is seen again and again (positions keep counting); without the flag each step\n"
    "sees the sequence once, as plain decoding does.\n"
    "Prints (or writes to --output) {\"layer\": K, \"lens\": ..., \"sequences\": [{\"ids\": [...],\n"
    "\"text\": ...}]}, the ids including the prompt.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.";

int tl_cmd_generate(int argc, char **argv) {
  tl_generate_cfg c;
  tl_generate_cfg_default(&c);
  tl_opt opts[] = {
      {"model.name|model", 0, TL_OPT_STR, &c.model, "model folder, or a hub id in the Hugging Face cache", 0, 0, false},
      {"model.revision|revision", 0, TL_OPT_STR, &c.revision, "with a hub id: branch, tag or commit [main]", 0, 0, false},
      {"tokenizer", 0, TL_OPT_STR, &c.tokenizer, "tokenizer.json [<model>/tokenizer.json]", 0, 0, false},
      {"lens_name|lens", 'l', TL_OPT_STR, &c.lens, "tuned lens folder (config.json + params.pt)", 0, 0, false},
      {"logit", 0, TL_OPT_BOOL, &c.logit, "decode through the logit lens instead", 0, 0, false},
      {"layer", 0, TL_OPT_STR, &c.layer, "the stream to decode from: 0..L-1, or output", 0, 0, false},
      {"text", 0, TL_OPT_STR, &c.text, "the prompt", 0, 0, false},
      {"input_ids", 0, TL_OPT_STR, &c.input_ids, "prompt ids: .safetensors (input_ids [T] or [B,T]) or a JSON list", 0, 0, false},
      {"prompts", 0, TL_OPT_STR, &c.prompts, "a batch: one prompt per line (.jsonl), all of equal length", 0, 0, false},
      {"no_special", 0, TL_OPT_BOOL, &c.no_special, "encode text without the post-processor's tokens (e.g. BOS)", 0, 0, false},
      {"max_new_tokens", 0, TL_OPT_INT, &c.max_new_tokens, "tokens to generate at most", 0, 1 << 20, false},
      {"temp", 0, TL_OPT_FLOAT, &c.temp, "sampling temperature", 0, 0, false},
      {"greedy", 0, TL_OPT_BOOL, &c.greedy, "argmax decoding (no sampling)", 0, 0, false},
      {"reference_cache", 0, TL_OPT_BOOL, &c.reference_cache, "decode exactly as the reference (which re-feeds the sequence on top of its cache)", 0, 0, false},
      {"seed", 0, TL_OPT_INT, &c.seed, "sampler seed", 0, 9.2e18, false},
      {"eos_id", 0, TL_OPT_INT, &c.eos_id, "EOS id [-1: the tokenizer's, else config.json's]", -1, 2147483647.0, false},
      {"output|o", 'o', TL_OPT_STR, &c.output, "JSON file to write [stdout]", 0, 0, false},
      {"threads", 0, TL_OPT_INT, &c.threads, "CPU threads (0 = OMP_NUM_THREADS or all cores)", 0, 4096, false},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("generate", opts, nopts, argc, argv, usage, true, NULL, NULL);
  if (status < 0) status = tl_generate_run(&c) == 0 ? TL_EXIT_OK : tl_cli_error("generate");
  tl_generate_cfg_free(&c);
  return status;
}
