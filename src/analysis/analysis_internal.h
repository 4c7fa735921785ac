/* Shared internals of the analysis module (trajectories, lens generation). */
#ifndef TLENS_ANALYSIS_INTERNAL_H
#define TLENS_ANALYSIS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/tokenizer.h"
#include "tlens/trajectory.h" /* TL_TRAJ_TOPK_MAX */

/* ---- numpy-compatible selection (npsort.c) ---- */
/* idx[0..n) = np.argpartition(v, kth): indices 0..n-1 permuted by numpy 1.24's
 * introselect so that v[idx[kth]] is the kth smallest. */
void tl_np_argpartition(const float *v, int32_t *idx, int64_t n, int64_t kth);
/* idx[0..n) = np.argsort(v) (default kind). */
void tl_np_argsort(const float *v, int32_t *idx, int64_t n);
/* out[0..k) = the indices of the k largest v, largest first, exactly as the reference's
 * argpartition(v, -k)[-k:] reordered by argsort(-v[those]). scratch: n ints.
 * Returns k (capped at n; k <= TL_TRAJ_TOPK_MAX). */
int tl_np_topk(const float *v, int64_t n, int k, int32_t *scratch, int32_t *out);

/* ---- token strings (tokfmt.c) ---- */
typedef struct {
  int n;      /* ids 0..n-1 */
  char **tok; /* [n] the token's string as the tokenizer spells it, or NULL */
  int size;   /* the tokenizer's vocabulary size (the rank statistic's max) */
} tl_traj_vocab;

int tl_traj_vocab_from_tokenizer(const tl_tokenizer *tok, int V, tl_traj_vocab *voc);
/* a JSON list of strings (or null), index = id */
int tl_traj_vocab_load(const char *path, tl_traj_vocab *voc);
void tl_traj_vocab_free(tl_traj_vocab *voc);
const char *tl_traj_vocab_get(const tl_traj_vocab *voc, int32_t id); /* NULL: none */

#define TL_TOKFMT_MAX_LEN 7
/* The reference's TokenFormatter: longer than 7 characters -> the first 6 and "…";
 * then "Ċ" -> "\n" (backslash, n) and "Ġ" -> "_"; with sp_space also SentencePiece's
 * "▁" -> "_". NULL (no such token) -> "<unk>". malloc'd. */
char *tl_tokfmt(const char *tok, bool sp_space);
char *tl_traj_token_label(const tl_traj_vocab *voc, int32_t id, bool sp_space);

/* ---- the model, its token strings and lens, and inputs (inputs.c) ---- */
typedef struct {
  const char *model, *revision;                 /* a folder, or a hub id at revision (NULL: main) */
  const char *tokenizer, *vocab, *lens;         /* lens NULL: none */
  long threads;
  long eos_id; /* -1: the tokenizer's, else config.json's */
} tl_analysis_opts;

typedef struct {
  tl_model *m;
  tl_model_config mc;
  tl_unembed u;
  char hash[65];       /* the model's unembed hash */
  tl_tokenizer *tok;   /* NULL when there is none */
  tl_traj_vocab voc;   /* token strings (has_voc) */
  bool has_voc;
  tl_lens lens;        /* the tuned lens (has_lens) */
  bool has_lens;
  tl_lens_ws *ws;      /* W_U prepared for the lens GEMMs */
  int eos;             /* -1: unknown */
} tl_analysis_env;

int tl_analysis_open(tl_analysis_env *e, const tl_analysis_opts *o);
void tl_analysis_close(tl_analysis_env *e);
/* text -> ids [T] (what names the source in errors) */
int tl_analysis_encode(const tl_analysis_env *e, const char *what, const char *text, bool special, int32_t **ids,
                       int *T);
/* input_ids [T] or [B,T] from a .safetensors file, or a JSON list (of lists) */
int tl_analysis_read_ids(const char *path, int32_t **ids, int *B, int *T);
/* one prompt per line (a JSON string, {"text": ...}, {"input_ids": [...]} or a list of
 * ids), all of the same length, into ids [B,T] */
int tl_analysis_read_prompts(const tl_analysis_env *e, const char *path, bool special, int32_t **ids, int *B, int *T);
/* "1,2,t5" or a JSON list of ids and token strings -> ids[n] */
int tl_analysis_parse_tokens(const tl_analysis_env *e, const char *what, const char *spec, int32_t **ids, int *n);

/* ---- one statistic as text and numbers, ready to write (view.c) ---- */
typedef struct {
  bool show_ranks;     /* rank: label cells with the target's rank */
  bool delta;          /* log_prob_diff: the change from the previous row */
  int stride;          /* keep every stride-th row, and the last [1] */
  bool clip;           /* clip the values to [clip_min, clip_max] */
  double clip_min, clip_max;
  double min_prob;     /* labels only when every cell's top-1 probability exceeds it */
  bool sp_space;       /* TokenFormatter: also "▁" -> "_" */
} tl_traj_view_opts;

typedef struct {
  const char *key;       /* "entropy", ... */
  const char *name;      /* "Entropy", ... */
  const char *units;     /* "nats", "probs", "" */
  bool has_min, has_max; /* min/max of the colour scale */
  double min, max;
  bool includes_output;
  int rows, cols;
  char **layer_labels; /* [rows] "0", "1", ..., "output" */
  char **seq_labels;   /* [cols] input tokens ("*" where the batch differs), or NULL */
  double *stats;       /* [rows][cols] */
  char **labels;       /* [rows][cols], or NULL */
  int hk, hw;          /* hover entries: hk rows (top-k) of hw strings (token, value per batch member) */
  char **hover;        /* [rows][cols][hk][hw], or NULL */
} tl_traj_view;

/* voc NULL: no labels (as the reference without a tokenizer). ids [B,T] and the
 * kept positions give the sequence labels. */
int tl_traj_view_make(const tl_traj *t, tl_traj_stat s, const tl_traj_view_opts *o, const tl_traj_vocab *voc,
                      const int32_t *ids, int T, const int *pos, tl_traj_view *v);
void tl_traj_view_free(tl_traj_view *v);

/* ---- outputs (traj_out.c) ---- */
typedef struct {
  const char *lens_type; /* "tuned" or "logit" */
  int n;
  tl_traj_view *views;
} tl_traj_set;

/* the text of trajectory.json: {lens_type: {key: view}} (malloc'd) */
char *tl_traj_sets_json(const tl_traj_set *sets, int nsets);
int tl_traj_write_json(const char *path, const tl_traj_set *sets, int nsets);
/* trajectory.html: every view as a heatmap, a selector, the hover entries; one file
 * with its data, CSS and script inline, that loads nothing (traj_html.c) */
int tl_traj_write_html(const char *path, const tl_traj_set *sets, int nsets, const char *title);
/* one heatmap: layers up, positions across, cell text = label, RdBu reversed */
int tl_traj_write_svg(const char *path, const tl_traj_view *v, const char *title);
/* the terminal table of one view */
void tl_traj_print_table(FILE *f, const tl_traj_view *v, const char *lens_type);

#endif
