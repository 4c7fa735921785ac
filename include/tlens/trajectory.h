/* Prediction trajectories: what a lens predicts at every layer and position of a
 * text, the reference's tuned_lens.plotting.PredictionTrajectory.
 *
 * A trajectory has R = L + 1 rows: the lens at streams 0..L-1 and the model's own
 * output. Each statistic is an [R, positions] table, the mean over the batch when
 * several prompts are given, with the reference's definitions (p = this row's
 * distribution, lp = its log-probabilities, F = the model's output row, o = the
 * other trajectory at the same row):
 *
 *   entropy          -sum p lp                        "Entropy"             nats
 *   forward_kl       sum p_F (lp_F - lp)              "Forward KL"          nats
 *   cross_entropy    -lp[target]                      "Cross Entropy"       nats
 *   max_probability  exp(max lp)                      "Max Probability"     probs
 *   rank             1 + place of target, by lp       "Rank"                (min 1, max vocab)
 *   log_prob_diff    lp[target] - lp[anti_target]     "Log Prob Difference" nats
 *                    (delta: row r+1 minus row r, R-1 rows, "Δ Log Prob Difference")
 *   kl               sum p (lp - lp_o)                "KL(Self | Other)"    nats (min 0)
 *   js               0.5 sum p (lp - lp_o) + 0.5 sum p_o (lp_o - lp)
 *                                                     "JS(Self | Other)"    nats (min 0)
 *   tv               max |p - p_o|                    "TV(Self | Other)"    probs (min 0, max 1)
 *
 * "js" and "tv" are what the reference computes under those names: the symmetrised
 * KL divergence (not the Jensen-Shannon divergence) and the largest change of one
 * token's probability (not half the L1 distance).
 *
 * Memory: the hidden states of the inputs ([L+1, B, T, d], as eval holds them) and
 * a few [chunk, V] buffers; the [R, T, V] log-probabilities the reference keeps are
 * never formed (unless the caller asks for them). Cell labels come with the
 * numbers: each cell's top-k tokens by probability (and, against another input, by
 * the size of the probability change), picked exactly as numpy does, ties included. */
#ifndef TLENS_TRAJECTORY_H
#define TLENS_TRAJECTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/unembed.h"

typedef enum {
  TL_TRAJ_ENTROPY = 0,
  TL_TRAJ_FORWARD_KL,
  TL_TRAJ_CROSS_ENTROPY,
  TL_TRAJ_MAX_PROBABILITY,
  TL_TRAJ_RANK,
  TL_TRAJ_LOG_PROB_DIFF,
  TL_TRAJ_KL,
  TL_TRAJ_JS,
  TL_TRAJ_TV,
  TL_TRAJ_NSTATS
} tl_traj_stat;

/* "entropy", "forward_kl", ... (the names above); NULL out of range */
const char *tl_traj_stat_key(tl_traj_stat s);
/* The statistic of a key, or -1 with a message listing the known ones. */
int tl_traj_stat_parse(const char *key, tl_traj_stat *s);
/* 1 for kl, js and tv (they need another input) */
int tl_traj_stat_is_comparison(tl_traj_stat s);

/* Ablations (the TransformerLens tutorial's): the output of chosen attention and
 * MLP sub-layers is replaced before it joins the residual stream (through the
 * model's sub-layer hook, so in every family alike):
 *   zero  by zeros;
 *   mean  by its mean over every position of the input (all its sequences), taken
 *         in the ablated run itself;
 *   swap  by the same sub-layer's output on another input at the same positions
 *         (recorded by a forward of that input first; same shape as the input). */
typedef enum { TL_ABLATE_ZERO = 0, TL_ABLATE_MEAN, TL_ABLATE_SWAP } tl_ablation_kind;

typedef struct {
  int L;               /* the model's layers */
  unsigned char *site; /* [L][2]: 1 where layer l's attention ([l][0]) or MLP ([l][1]) is ablated */
  int n;               /* sites ablated */
  tl_ablation_kind how;
  const int32_t *swap_ids; /* swap: the source [swap_B, swap_T] */
  int swap_B, swap_T;
} tl_ablation;

/* "attn:9,mlp:3-5" (layers counted from 0, ranges inclusive) for a model of L
 * layers; every mistake is one line naming the item. */
int tl_ablation_parse(const char *spec, int L, tl_ablation *a);
/* "zero", "mean" or "swap" */
int tl_ablation_kind_parse(const char *name, tl_ablation_kind *k);
void tl_ablation_free(tl_ablation *a);
/* hidden [L+1][B][T][d] (as tl_model_forward) of ids with the ablation applied. a NULL:
 * the clean run, through the same hooked arithmetic, so that an ablation that changes
 * nothing (swap with the input itself) gives the same bits. */
int tl_ablation_forward(tl_model *m, const tl_ablation *a, const int32_t *ids, int B, int T, float *hidden);

/* The stream a trajectory looks at (the reference's residual_component, named as
 * TransformerLens's hooks): row l of the trajectory is the lens at layer l applied to
 *   resid_pre   the stream entering block l (the lens's own streams, the default);
 *   resid_mid   resid_pre + attn_out: the stream between attention and MLP. Only a
 *               sequential pre-norm block has one: in a parallel-residual block both
 *               sub-layers read resid_pre and join it together (TransformerLens has no
 *               hook_resid_mid there either), and a post-norm block normalises it
 *               inside the block where no hook sees it; both are refused;
 *   resid_post  the stream leaving block l (= resid_pre of l+1; for the last block its
 *               raw output, before the final norm);
 *   attn_out    the attention output (after o_proj) as it joins the stream;
 *   mlp_out     the MLP output (after down_proj) as it joins the stream.
 * Under an ablation the sub-layer outputs are the ablated ones, i.e. what joined the
 * stream. Every component but resid_pre comes from the model's sub-layer hook. */
typedef enum { TL_RESID_PRE = 0, TL_RESID_MID, TL_RESID_POST, TL_ATTN_OUT, TL_MLP_OUT, TL_NRESID } tl_residual;

/* "resid_pre", ...; NULL out of range */
const char *tl_residual_key(tl_residual r);
/* the component of a key, or -1 with one line listing the known ones */
int tl_residual_parse(const char *key, tl_residual *r);
/* -1 with one line when this model's blocks have no such stream (resid_mid above) */
int tl_residual_check(const tl_model_config *c, tl_residual r);
/* hidden [L+1][B][T][d]: rows 0..L-1 the component of each layer, row L the model's
 * output (after the final norm, as tl_model_forward), of ids with the ablation a
 * (NULL: none) applied, all from one hooked forward. The components of one input
 * agree bit for bit: resid_post[l] == resid_pre[l+1], resid_mid[l] == resid_pre[l] +
 * attn_out[l] and resid_post[l] == resid_mid[l] + mlp_out[l] in fp32, as the
 * forward adds them. With TL_RESID_PRE this is tl_ablation_forward. */
int tl_residual_forward(tl_model *m, const tl_ablation *a, tl_residual r, const int32_t *ids, int B, int T,
                        float *hidden);

/* The inputs of one trajectory. */
typedef struct {
  int B, T;
  const int32_t *ids;          /* [B,T] */
  const int32_t *targets;      /* [B,T]; needed by cross_entropy, rank, log_prob_diff */
  const int32_t *anti_targets; /* [B,T]; needed by log_prob_diff */
  const int32_t *other_ids;    /* [B,T]: the input compared with (kl, js, tv) */
  int npos;                    /* positions kept (a slice), in order */
  const int *pos;
  bool mask_input;  /* lens rows: the input's token ids get logit -FLT_MAX (as the reference) */
  int topk;         /* tokens per cell in the hover entries (1..TL_TRAJ_TOPK_MAX) */
  int max_entries;  /* batch members kept for the hover entries (the reference: 3) */
  int chunk;        /* positions per chunk; 0 = TL_LENS_CHUNK */
  unsigned stats;   /* bit (1u << s) for each statistic to compute */
  float *log_probs; /* optional [B][R][npos][V]: receives every row's log-probabilities */
  float *other_log_probs; /* optional, the same for other_ids */
  const tl_ablation *ablation; /* the run of ids is ablated (NULL: none); other_ids then run
                                  clean through the same hooked forward (tl_ablation_forward) */
  tl_residual residual;        /* the stream of rows 0..L-1, of both inputs (default resid_pre) */
} tl_traj_input;

#define TL_TRAJ_TOPK_MAX 100

/* A computed trajectory (numbers and token ids; tl_traj_view turns it into text). */
typedef struct {
  int R, P, B, Bh, k, V; /* rows, positions, batch, batch members in the hover, top-k, vocabulary */
  double *stat[TL_TRAJ_NSTATS]; /* [R][P], mean over the batch; NULL when not computed */
  int32_t *top_ids;  /* [R][P][B][k] tokens by probability, largest first */
  float *top_p;      /* [R][P][B][k] their probabilities */
  int32_t *dtop_ids; /* [R][P][B][k] tokens by |change of probability| (with other_ids) */
  float *dtop_v;     /* [R][P][B][k] the changes: p_other - p_self */
  float min_top_p;   /* the smallest top-1 probability of any cell */
} tl_traj;

/* Runs the model on the inputs and computes the statistics in in->stats for the
 * lens (NULL: the logit lens). ws: an fp32 tl_lens_prepare of u, or NULL. */
int tl_traj_compute(tl_model *m, const tl_unembed *u, tl_lens_ws *ws, const tl_lens *lens, const tl_traj_input *in,
                    tl_traj *out);
void tl_traj_free(tl_traj *t);

/* ---- the command (tlens trajectory) ---- */
typedef struct {
  char *model, *tokenizer, *vocab;  /* model folder or hub id; tokenizer.json; or a JSON list of token strings */
  char *revision;                   /* of a hub id (NULL: main) */
  char *lens;                       /* tuned lens folder */
  bool logit;                       /* also (or only) the logit lens */
  char *text, *input_ids, *prompts; /* the input (one of) */
  char *other_text, *other_input_ids, *other_prompts;
  bool no_special;                  /* encode text without BOS etc. */
  char *targets, *anti_targets;     /* lists of ids or token strings */
  long eos_id;                      /* -1: the tokenizer's, else config.json's eos_token_id */
  char *stats;                      /* comma-separated keys; NULL: all the inputs allow */
  bool show_ranks, delta, mask_input, sp_space;
  char *slice, *clip;               /* "a:b[:c]", "min:max" */
  long stride, topk, max_entries, chunk, threads;
  double min_prob, min_prob_delta;
  char *output;                     /* folder for trajectory.json and the SVG heatmaps */
  char *save_log_probs;             /* safetensors file */
  char *title;
  char *ablate, *ablation;          /* "attn:9,mlp:3-5"; "zero" (default), "mean" or "swap" */
  char *swap_text, *swap_input_ids; /* the swap source */
  char *compare;                    /* "clean": kl/js/tv of the ablated run against the clean one */
  char *residual;                   /* "resid_pre" (NULL: the same), "resid_mid", ... (tl_residual) */
} tl_traj_cfg;

void tl_traj_cfg_default(tl_traj_cfg *c);
void tl_traj_cfg_free(tl_traj_cfg *c);
/* Everything: model, lens(es), inputs, trajectories, outputs (or the table on stdout). */
int tl_trajectory_run(const tl_traj_cfg *c);

#endif
