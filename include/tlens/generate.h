/* Generation through a lens: the reference's TunedLens.generate. Each next token
 * comes from the lens at one layer (its translator on that stream, then the
 * unembedding) at the last position, by sampling at a temperature or by argmax;
 * once a sequence has emitted EOS it keeps emitting EOS, and generation stops
 * when every sequence has. The layer may also be the model's own output (L). */
#ifndef TLENS_GENERATE_H
#define TLENS_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/unembed.h"

typedef struct {
  int layer;          /* 0..L-1: the lens at that stream; L: the model's output */
  int max_new_tokens; /* [100] */
  double temp;        /* sampling temperature [1.0] */
  bool greedy;        /* argmax instead of sampling */
  uint64_t seed;      /* of the sampler */
  int eos;            /* -1: none (never stops early) */
  bool reference_cache; /* reproduce tuned-lens 0.2.0 exactly: its generate passes the whole
                           sequence AND the cache of the previous steps to the model at every
                           step, so each step's input is appended after all earlier ones; the
                           same as one causal pass over every step's input, one after another */
} tl_generate_opts;

/* prompt [B,T0]; *out receives [B, *T] ids (malloc'd): the prompt and the new tokens.
 * lens NULL: the logit lens. ws: an fp32 tl_lens_prepare of u, or NULL. Each step
 * runs the model over the whole sequence so far (no cache). */
int tl_generate(tl_model *m, const tl_unembed *u, tl_lens_ws *ws, const tl_lens *lens, const tl_generate_opts *o,
                const int32_t *prompt, int B, int T0, int32_t **out, int *T);

/* ---- the command (tlens generate) ---- */
typedef struct {
  char *model, *tokenizer, *lens;
  char *revision; /* of a hub id model (NULL: main) */
  bool logit;
  char *layer; /* an index, or "output" */
  char *text, *input_ids, *prompts;
  bool no_special;
  long max_new_tokens, seed, eos_id, threads;
  double temp;
  bool greedy, reference_cache;
  char *output; /* JSON file; NULL: stdout */
} tl_generate_cfg;

void tl_generate_cfg_default(tl_generate_cfg *c);
void tl_generate_cfg_free(tl_generate_cfg *c);
int tl_generate_run(const tl_generate_cfg *c);

#endif
