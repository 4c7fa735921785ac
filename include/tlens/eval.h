/* Evaluating lenses (tlens eval): per-layer cross-entropy, entropy and
 * KL(model || lens) of the logit lens and a tuned lens, in bits per byte, with the
 * reference's output files:
 *   aggregate_metrics.json  {"logit"|"tuned": {"ce"|"entropy"|"kl": {"layer_<i>": v},
 *                            ["layer_transfer": {"ce"|"kl": {"layer_<j>": {"layer_<i>": v}}}]},
 *                            "baseline": {"ce"|"entropy": {"final": v}}}
 *                           v = mean over batches x nats_to_bpb
 *   batches.jsonl           one JSON list of the per-batch dicts (the reference writes the
 *                           whole list with a single json.dump)
 *   logit_stats.json        with record_logit_stats: the mean probability vector of each
 *                           layer over all tokens
 *   metrics.svg             per-layer KL, CE and entropy of every lens, baseline marked
 *   layer_transfer.svg      with layer_transfer: the kl matrix of every tuned lens as a
 *                           heatmap (row i translator, column j stream)
 * In layer_transfer, ["layer_transfer"][m]["layer_<j>"]["layer_<i>"] is translator j
 * applied to stream i; its kl is KL(lens at stream i || translator j at stream i)
 * (the reference's eval_loop.py: ["layer_transfer"][m][trans_name][layer_name]).
 * Several lenses: `lens` lists them one per line, each "DIR" or "NAME=DIR". One
 * lens is the key "tuned" (the reference's layout); with several, each lens is a
 * key of its own, NAME or the folder's base name, beside "logit" and "baseline".  */
#ifndef TLENS_EVAL_H
#define TLENS_EVAL_H

#include <stdbool.h>

#include "tlens/run.h"

typedef struct {
  tl_run_cfg run;          /* model, corpus, output and distribution: the flags eval shares with train */
  char *lens;              /* -l: the tuned lens folders, one per line ("DIR" or "NAME=DIR") */
  bool logit;              /* [true] evaluate the logit lens */
  long seed;               /* [42] order of the samples */
  long tokens;             /* [0 = all] evaluate on this many tokens (error if fewer) */
  long token_shift;        /* [1] */
  bool layer_transfer, record_logit_stats;
} tl_eval_cfg;

void tl_eval_cfg_default(tl_eval_cfg *c);
void tl_eval_cfg_free(tl_eval_cfg *c);
/* The settings alone, before anything is opened. */
int tl_eval_cfg_check(const tl_eval_cfg *c);
/* Evaluates on the ranks of `run` (tl_run_init done; collective). Returns 0, or -1
 * with the message recorded (tl_errmsg), the same on every rank. */
int tl_eval_run(const tl_eval_cfg *c, tl_run *run);

/* The chart alone: per-layer series (NaN = absent) into an SVG file (atomic). */
typedef struct {
  const char *name;  /* legend, e.g. "logit lens" */
  const char *color; /* CSS color */
  const double *v;   /* [n] */
} tl_svg_series;
int tl_svg_layers(const char *path, const char *title, int n, const tl_svg_series *kl, int nkl,
                  const tl_svg_series *ce, int nce, double baseline_ce, const char *unit);

#endif
