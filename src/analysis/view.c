/* One statistic of a trajectory as the reference's TrajectoryStatistic presents
 * it: names and units, the [rows, positions] values (delta, stride, clip applied),
 * layer and sequence labels, and the cell labels and hover entries as strings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"

static const char *stat_names[TL_TRAJ_NSTATS] = {"Entropy", "Forward KL", "Cross Entropy", "Max Probability", "Rank",
                                                 "Log Prob Difference", "KL(Self | Other)", "JS(Self | Other)",
                                                 "TV(Self | Other)"};
static const char *stat_units[TL_TRAJ_NSTATS] = {"nats", "nats", "nats", "probs", "", "nats", "nats", "nats", "probs"};

void tl_traj_view_free(tl_traj_view *v) {
  size_t cells = (size_t)v->rows * v->cols;
  for (int r = 0; v->layer_labels && r < v->rows; r++) free(v->layer_labels[r]);
  for (int c = 0; v->seq_labels && c < v->cols; c++) free(v->seq_labels[c]);
  for (size_t c = 0; v->labels && c < cells; c++) free(v->labels[c]);
  for (size_t c = 0; v->hover && c < cells * v->hk * v->hw; c++) free(v->hover[c]);
  free(v->layer_labels), free(v->seq_labels), free(v->stats), free(v->labels), free(v->hover);
  memset(v, 0, sizeof *v);
}

/* labels[i] for i < n are the batch members' strings of one cell: the common one,
 * or "*" where they differ (the reference compares the formatted strings) */
static char *consolidate(char **s, int n) {
  for (int i = 1; i < n; i++)
    if (strcmp(s[i], s[0])) return tl_strdup("*");
  return tl_strdup(s[0]);
}

/* length in code points (Python's len) */
static int cp_len(const char *s) {
  int n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

/* "12.34%" or "Δ-0.75%": the value times 100 in fp32, printed with two decimals,
 * then cut to w code points: the reference stores these strings in the numpy array
 * of the top-k token strings, whose width is the longest token string's, so
 * "Δ-12.26%" becomes "Δ-12.26" beside 7-character tokens */
static char *percent(float x, bool delta, int w) {
  const float pct = x * 100.0f;
  char *s = tl_sprintf("%s%.2f%%", delta ? "\xce\x94" : "", (double)pct);
  int n = 0;
  for (char *p = s; *p; p++)
    if (((unsigned char)*p & 0xc0) != 0x80 && n++ == w) {
      *p = 0;
      break;
    }
  return s;
}

int tl_traj_view_make(const tl_traj *t, tl_traj_stat s, const tl_traj_view_opts *o, const tl_traj_vocab *voc,
                      const int32_t *ids, int T, const int *pos, tl_traj_view *v) {
  memset(v, 0, sizeof *v);
  if (!t->stat[s]) return tl_fail("trajectory: statistic %s was not computed", tl_traj_stat_key(s));
  const int R = t->R, P = t->P, B = t->B, k = t->k;
  const bool delta = s == TL_TRAJ_LOG_PROB_DIFF && o->delta;
  const bool cmp = tl_traj_stat_is_comparison(s);
  const int stride = o->stride > 0 ? o->stride : 1;
  v->key = tl_traj_stat_key(s);
  v->name = delta ? "\xce\x94 Log Prob Difference" : stat_names[s];
  v->units = stat_units[s];
  v->includes_output = !delta;
  if (s == TL_TRAJ_RANK) {
    v->has_min = true, v->min = 1;
    if (voc) v->has_max = true, v->max = voc->size;
  } else if (cmp) {
    v->has_min = true, v->min = 0;
    if (s == TL_TRAJ_TV) v->has_max = true, v->max = 1;
  }
  if (o->clip) v->has_min = v->has_max = true, v->min = o->clip_min, v->max = o->clip_max;

  /* rows before the stride: R, or R-1 differences */
  const int rows0 = delta ? R - 1 : R;
  int *keep = tl_malloc((size_t)rows0 * sizeof(int)), nkeep = 0;
  for (int r = 0; r < rows0 - 1; r += stride) keep[nkeep++] = r;
  keep[nkeep++] = rows0 - 1;
  v->rows = nkeep, v->cols = P;
  v->layer_labels = tl_malloc((size_t)nkeep * sizeof(char *));
  v->stats = tl_malloc((size_t)nkeep * P * sizeof(double));
  for (int i = 0; i < nkeep; i++) {
    const int r = keep[i];
    v->layer_labels[i] = v->includes_output && r == rows0 - 1 ? tl_strdup("output") : tl_sprintf("%d", r);
    for (int c = 0; c < P; c++) {
      const double *st = t->stat[s];
      double x = delta ? st[(size_t)(r + 1) * P + c] - st[(size_t)r * P + c] : st[(size_t)r * P + c];
      if (o->clip) x = x < o->clip_min ? o->clip_min : x > o->clip_max ? o->clip_max : x;
      v->stats[(size_t)i * P + c] = x;
    }
  }

  char **tmp = tl_malloc((size_t)B * sizeof(char *) + 1);
  if (voc) {
    v->seq_labels = tl_malloc((size_t)P * sizeof(char *));
    for (int c = 0; c < P; c++) {
      for (int b = 0; b < B; b++) tmp[b] = tl_traj_token_label(voc, ids[(size_t)b * T + pos[c]], o->sp_space);
      v->seq_labels[c] = consolidate(tmp, B);
      for (int b = 0; b < B; b++) free(tmp[b]);
    }
  }
  /* cell labels and hover entries: not for log_prob_diff (as the reference) */
  if (voc && s != TL_TRAJ_LOG_PROB_DIFF) {
    const int32_t *tid = cmp ? t->dtop_ids : t->top_ids;
    const float *tv = cmp ? t->dtop_v : t->top_p;
    const int Bh = t->Bh;
    /* top-1 labels are blanked everywhere unless every cell's top-1 probability is
     * above min_prob (the reference tests them all at once); comparisons have none */
    const bool blank = !cmp && !(t->min_top_p > o->min_prob);
    /* the width of the reference's array of top-k strings: its longest token string
     * over every row, position, batch member and rank */
    int width = 0;
    for (size_t e = 0; e < (size_t)R * P * B * k; e++) {
      char *f = tl_traj_token_label(voc, tid[e], o->sp_space);
      const int n = cp_len(f);
      width = n > width ? n : width;
      free(f);
    }
    v->labels = tl_malloc((size_t)nkeep * P * sizeof(char *));
    v->hk = k, v->hw = 2 * Bh;
    v->hover = tl_malloc((size_t)nkeep * P * k * v->hw * sizeof(char *));
    for (int i = 0; i < nkeep; i++) {
      const int r = keep[i];
      for (int c = 0; c < P; c++) {
        const size_t cell = (size_t)r * P + c, out = (size_t)i * P + c;
        for (int b = 0; b < B; b++) tmp[b] = tl_traj_token_label(voc, tid[(cell * B + b) * k], o->sp_space);
        if (s == TL_TRAJ_RANK && o->show_ranks)
          v->labels[out] = tl_sprintf("%lld", (long long)t->stat[s][cell]); /* "%d" of the mean rank */
        else
          v->labels[out] = blank ? tl_strdup("") : consolidate(tmp, B);
        for (int b = 0; b < B; b++) free(tmp[b]);
        char **h = v->hover + out * k * v->hw;
        for (int j = 0; j < k; j++)
          for (int b = 0; b < Bh; b++) {
            const size_t e = (cell * B + b) * k + j;
            h[j * v->hw + 2 * b] = tl_traj_token_label(voc, tid[e], o->sp_space);
            h[j * v->hw + 2 * b + 1] = percent(tv[e], cmp, width);
          }
      }
    }
  }
  free(tmp);
  free(keep);
  return 0;
}
