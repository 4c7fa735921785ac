/* Prediction trajectories: the statistics and top-k tokens of every (row, position)
 * cell, computed a chunk of positions at a time (see tlens/trajectory.h). */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/core.h"
#include "tlens/trajectory.h"

static const char *stat_keys[TL_TRAJ_NSTATS] = {"entropy", "forward_kl", "cross_entropy", "max_probability", "rank",
                                                "log_prob_diff", "kl", "js", "tv"};

const char *tl_traj_stat_key(tl_traj_stat s) { return s >= 0 && s < TL_TRAJ_NSTATS ? stat_keys[s] : NULL; }

int tl_traj_stat_is_comparison(tl_traj_stat s) { return s == TL_TRAJ_KL || s == TL_TRAJ_JS || s == TL_TRAJ_TV; }

int tl_traj_stat_parse(const char *key, tl_traj_stat *s) {
  for (int i = 0; i < TL_TRAJ_NSTATS; i++)
    if (!strcmp(key, stat_keys[i])) {
      *s = (tl_traj_stat)i;
      return 0;
    }
  char known[256] = "";
  for (int i = 0; i < TL_TRAJ_NSTATS; i++) {
    strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
    strncat(known, stat_keys[i], sizeof known - strlen(known) - 1);
  }
  return tl_fail("unknown statistic '%s' (expected one of: %s)", key, known);
}

void tl_traj_free(tl_traj *t) {
  for (int s = 0; s < TL_TRAJ_NSTATS; s++) free(t->stat[s]);
  free(t->top_ids);
  free(t->top_p);
  free(t->dtop_ids);
  free(t->dtop_v);
  memset(t, 0, sizeof *t);
}

#define HAS(bits, s) (((bits) >> (s)) & 1u)

/* lse[r] = log sum exp z[r, :] (in double) for the n rows of z[n,V]. A masked
 * token's logit -FLT_MAX adds nothing. Every statistic then uses lp = z - lse in
 * double: log_prob_diff, for one, is then exactly a difference of logits. */
static void row_lse(const float *z, int n, int V, double *lse) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; r++) {
    const float *x = z + (size_t)r * V;
    float mx = x[0];
    for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - mx);
    lse[r] = mx + log(s);
  }
}

/* The rows of one input the chunk works on. */
typedef struct {
  const float *hidden; /* [L+1][B][T][d] */
  const int32_t *ids;  /* [B][T] */
  const unsigned char *mask; /* [V] tokens masked in the lens rows, or NULL */
} side;

typedef struct {
  const tl_traj_input *in;
  const tl_unembed *u;
  tl_lens_ws *ws;
  const tl_lens *lens;
  int L, d, V, B, T, R, P, k;
  float *h; /* [C,d] gathered rows */
} job;

/* logits of row r (r == L: the model's output) at positions pos[0..n) of sequence b
 * into z[n,V], and their log-sum-exps into lse[n] */
static int row_logits(job *j, const side *s, int r, int b, const int *pos, int n, float *z, double *lse) {
  const int d = j->d, V = j->V;
  const float *hs = s->hidden + ((size_t)r * j->B + b) * (size_t)j->T * d;
  for (int i = 0; i < n; i++) memcpy(j->h + (size_t)i * d, hs + (size_t)pos[i] * d, (size_t)d * sizeof(float));
  if (r == j->L) {
    /* the model's own logits: W_U h + b_U on its last hidden state (already normalised) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, d, 1.0f, j->h, d, j->u->W_U, d, 0.0f, z, V);
    if (j->u->b_U)
      for (int i = 0; i < n; i++)
        for (int v = 0; v < V; v++) z[(size_t)i * V + v] += j->u->b_U[v];
  } else {
    TL_TRY(tl_lens_logits(j->lens, j->u, r, j->h, n, z, j->ws));
    if (s->mask)
      for (int i = 0; i < n; i++)
        for (int v = 0; v < V; v++)
          if (s->mask[v]) z[(size_t)i * V + v] = -FLT_MAX;
  }
  row_lse(z, n, V, lse);
  return 0;
}

/* a row of logits with its log-sum-exp */
typedef struct {
  const float *z;
  double lse;
} dist;

/* 1 + the place of tgt when the row is sorted by decreasing log-probability, as
 * np.argsort(-lp) places it (ties in its order; they only arise with masked tokens
 * or equal rows of W_U, so the sort runs only then). */
static double target_rank(const float *lp, int V, int tgt, float *neg, int32_t *idx) {
  const float t = lp[tgt];
  int64_t gt = 0, eq = 0;
  for (int v = 0; v < V; v++) gt += lp[v] > t, eq += lp[v] == t;
  if (eq <= 1) return (double)(gt + 1);
  for (int v = 0; v < V; v++) neg[v] = -lp[v];
  tl_np_argsort(neg, idx, V);
  for (int v = 0; v < V; v++)
    if (idx[v] == tgt) return (double)(v + 1);
  return (double)(gt + 1);
}

/* per-thread scratch */
typedef struct {
  float *lp, *p, *po, *a; /* [V] each: fp32 log-probabilities and probabilities, as the reference holds them */
  int32_t *idx;           /* [V] */
} scratch;

/* One cell: row r, kept position jp (absolute position t), sequence b; x is the
 * row's distribution, F the model's output at the same position, xo the other
 * input's row (or z NULL). */
static void cell(job *j, tl_traj *o, int r, int jp, int t, int b, dist x, dist F, dist xo, scratch *w) {
  const tl_traj_input *in = j->in;
  const int V = j->V, k = j->k;
  const unsigned st = in->stats;
  const size_t c = (size_t)r * j->P + jp;
  float *lp = w->lp, *p = w->p, *po = w->po;
  const int fkl = HAS(st, TL_TRAJ_FORWARD_KL), cmp = xo.z != NULL;
  double h = 0, kl_f = 0, kl = 0, rkl = 0, mx = -INFINITY;
  float tv = 0;
  for (int v = 0; v < V; v++) {
    const double l = (double)x.z[v] - x.lse, e = exp(l);
    lp[v] = (float)l;
    p[v] = (float)e;
    h -= e * l;
    mx = l > mx ? l : mx;
    if (fkl) {
      const double lf = (double)F.z[v] - F.lse;
      kl_f += exp(lf) * (lf - l);
    }
    if (cmp) {
      const double lo = (double)xo.z[v] - xo.lse, eo = exp(lo);
      po[v] = (float)eo;
      kl += e * (l - lo);
      rkl += eo * (lo - l);
      const float a = fabsf(p[v] - po[v]);
      tv = a > tv ? a : tv;
    }
  }
  const size_t bt = (size_t)b * j->T + t;
  if (HAS(st, TL_TRAJ_ENTROPY)) o->stat[TL_TRAJ_ENTROPY][c] += h;
  if (fkl) o->stat[TL_TRAJ_FORWARD_KL][c] += kl_f;
  if (HAS(st, TL_TRAJ_MAX_PROBABILITY)) o->stat[TL_TRAJ_MAX_PROBABILITY][c] += exp(mx);
  if (HAS(st, TL_TRAJ_CROSS_ENTROPY)) o->stat[TL_TRAJ_CROSS_ENTROPY][c] += x.lse - (double)x.z[in->targets[bt]];
  /* the rank orders the fp32 log-probabilities, as the reference sorts them */
  if (HAS(st, TL_TRAJ_RANK)) o->stat[TL_TRAJ_RANK][c] += target_rank(lp, V, in->targets[bt], w->a, w->idx);
  if (HAS(st, TL_TRAJ_LOG_PROB_DIFF))
    o->stat[TL_TRAJ_LOG_PROB_DIFF][c] += (double)x.z[in->targets[bt]] - (double)x.z[in->anti_targets[bt]];
  if (HAS(st, TL_TRAJ_KL)) o->stat[TL_TRAJ_KL][c] += kl;
  if (HAS(st, TL_TRAJ_JS)) o->stat[TL_TRAJ_JS][c] += 0.5 * kl + 0.5 * rkl;
  if (HAS(st, TL_TRAJ_TV)) o->stat[TL_TRAJ_TV][c] += tv;
  /* the labels: top-k by log-probability; against the other input, top-k by the
   * size of the change p_other - p_self (in fp32, like the reference's ties) */
  const size_t kk = (c * j->B + b) * (size_t)k;
  int32_t top[TL_TRAJ_TOPK_MAX];
  tl_np_topk(lp, V, k, w->idx, top);
  for (int i = 0; i < k; i++) {
    o->top_ids[kk + i] = top[i];
    o->top_p[kk + i] = p[top[i]];
  }
  if (cmp) {
    float *a = w->a;
    for (int v = 0; v < V; v++) a[v] = fabsf(po[v] - p[v]);
    tl_np_topk(a, V, k, w->idx, top);
    for (int i = 0; i < k; i++) {
      o->dtop_ids[kk + i] = top[i];
      o->dtop_v[kk + i] = po[top[i]] - p[top[i]];
    }
  }
}

static int check_input(const tl_traj_input *in, const tl_unembed *u, const tl_lens *lens, int L) {
  const int V = u->vocab, T = in->T;
  const unsigned st = in->stats;
  if (in->B < 1 || T < 1) return tl_fail("trajectory: empty input (%d x %d tokens)", in->B, T);
  if (!in->ids) return tl_fail("trajectory: no input ids");
  if (in->npos < 1 || !in->pos) return tl_fail("trajectory: no positions selected");
  for (int i = 0; i < in->npos; i++)
    if (in->pos[i] < 0 || in->pos[i] >= T) return tl_fail("trajectory: position %d outside the %d tokens", in->pos[i], T);
  if (in->topk < 1 || in->topk > TL_TRAJ_TOPK_MAX)
    return tl_fail("trajectory: topk %d is out of range [1, %d]", in->topk, TL_TRAJ_TOPK_MAX);
  if (in->max_entries < 1) return tl_fail("trajectory: max_entries must be at least 1");
  if (st >> TL_TRAJ_NSTATS) return tl_fail("trajectory: unknown statistic bits 0x%x", st);
  if (lens && (lens->d_model != u->d_model || lens->n_layers != L))
    return tl_fail("trajectory: the lens has %d translators of d_model %d, the model %d layers of d_model %d",
                   lens->n_layers, lens->d_model, L, u->d_model);
  const int need_t = HAS(st, TL_TRAJ_CROSS_ENTROPY) || HAS(st, TL_TRAJ_RANK) || HAS(st, TL_TRAJ_LOG_PROB_DIFF);
  if (need_t && !in->targets) return tl_fail("trajectory: cross_entropy, rank and log_prob_diff need targets");
  if (HAS(st, TL_TRAJ_LOG_PROB_DIFF) && !in->anti_targets) return tl_fail("trajectory: log_prob_diff needs anti-targets");
  const int cmp = HAS(st, TL_TRAJ_KL) || HAS(st, TL_TRAJ_JS) || HAS(st, TL_TRAJ_TV);
  if (cmp && !in->other_ids) return tl_fail("trajectory: kl, js and tv need another input to compare with");
  const int32_t *lists[4] = {in->ids, in->targets, in->anti_targets, in->other_ids};
  const char *names[4] = {"input id", "target", "anti-target", "other input id"};
  for (int l = 0; l < 4; l++)
    for (int64_t i = 0; lists[l] && i < (int64_t)in->B * T; i++)
      if (lists[l][i] < 0 || lists[l][i] >= V)
        return tl_fail("trajectory: %s %d (sequence %lld, position %lld) is outside the vocabulary [0, %d)", names[l],
                       lists[l][i], (long long)(i / T), (long long)(i % T), V);
  return 0;
}

/* hidden [L+1][B][T][d] of ids: the plain forward for the lens's own streams of a
 * clean run; the hooked one for an ablation or a sub-layer stream, the other input
 * then running through the same hooked arithmetic without the ablation */
static int streams(tl_model *m, const tl_traj_input *in, const tl_ablation *a, const int32_t *ids, float *hid) {
  if (!in->ablation && in->residual == TL_RESID_PRE) return tl_model_forward(m, ids, in->B, in->T, hid, NULL);
  return tl_residual_forward(m, a, in->residual, ids, in->B, in->T, hid);
}

static unsigned char *input_mask(const int32_t *ids, int64_t n, int V) {
  unsigned char *m = tl_calloc((size_t)V, 1);
  for (int64_t i = 0; i < n; i++) m[ids[i]] = 1;
  return m;
}

int tl_traj_compute(tl_model *m, const tl_unembed *u, tl_lens_ws *ws, const tl_lens *lens, const tl_traj_input *in,
                    tl_traj *o) {
  memset(o, 0, sizeof *o);
  const tl_model_config *mc = tl_model_cfg(m);
  const int L = mc->n_layers;
  TL_TRY(check_input(in, u, lens, L));
  job j = {.in = in, .u = u, .ws = ws, .lens = lens, .L = L, .d = u->d_model, .V = u->vocab, .B = in->B, .T = in->T,
           .R = L + 1, .P = in->npos, .k = in->topk < u->vocab ? in->topk : u->vocab};
  const int V = j.V, R = j.R, P = j.P, B = j.B, k = j.k;
  const int C = in->chunk > 0 ? in->chunk : TL_LENS_CHUNK;
  const int cmp = in->other_ids != NULL;
  const size_t cells = (size_t)R * P;
  o->R = R, o->P = P, o->B = B, o->k = k, o->V = V;
  o->Bh = B < in->max_entries ? B : in->max_entries;
  for (int s = 0; s < TL_TRAJ_NSTATS; s++)
    if (HAS(in->stats, s)) o->stat[s] = tl_calloc(cells, sizeof(double));
  o->top_ids = tl_malloc(cells * B * k * sizeof(int32_t));
  o->top_p = tl_malloc(cells * B * k * sizeof(float));
  if (cmp) {
    o->dtop_ids = tl_malloc(cells * B * k * sizeof(int32_t));
    o->dtop_v = tl_malloc(cells * B * k * sizeof(float));
  }

  /* the hidden states of both inputs, as eval holds them */
  const size_t hn = (size_t)(L + 1) * B * in->T * j.d;
  float *hid = tl_aligned_alloc(hn * sizeof(float)), *hid_o = cmp ? tl_aligned_alloc(hn * sizeof(float)) : NULL;
  int rc = streams(m, in, in->ablation, in->ids, hid);
  if (rc == 0 && cmp) rc = streams(m, in, NULL, in->other_ids, hid_o);
  side self = {hid, in->ids, in->mask_input ? input_mask(in->ids, (int64_t)B * in->T, V) : NULL};
  side other = {hid_o, in->other_ids, cmp && in->mask_input ? input_mask(in->other_ids, (int64_t)B * in->T, V) : NULL};

  /* logits of the chunk: the model's output and the current row, of both inputs */
  const size_t cv = (size_t)C * V;
  float *zF = tl_aligned_alloc(cv * sizeof(float)), *z = tl_aligned_alloc(cv * sizeof(float));
  float *zFo = cmp ? tl_aligned_alloc(cv * sizeof(float)) : NULL, *zo = cmp ? tl_aligned_alloc(cv * sizeof(float)) : NULL;
  double *lse = tl_malloc((size_t)4 * C * sizeof(double)), *lseF = lse + C, *lseo = lse + 2 * C, *lseFo = lse + 3 * C;
  j.h = tl_aligned_alloc((size_t)C * j.d * sizeof(float));
  const int nth = omp_get_max_threads();
  scratch *ws_t = tl_calloc((size_t)nth, sizeof *ws_t);
  for (int t = 0; t < nth; t++) {
    ws_t[t].lp = tl_malloc((size_t)V * sizeof(float));
    ws_t[t].p = tl_malloc((size_t)V * sizeof(float));
    ws_t[t].po = tl_malloc((size_t)V * sizeof(float));
    ws_t[t].a = tl_malloc((size_t)V * sizeof(float));
    ws_t[t].idx = tl_malloc((size_t)V * sizeof(int32_t));
  }

  for (int b = 0; b < B && rc == 0; b++) {
    for (int c0 = 0; c0 < P && rc == 0; c0 += C) {
      const int n = P - c0 < C ? P - c0 : C;
      const int *pos = in->pos + c0;
      rc = row_logits(&j, &self, L, b, pos, n, zF, lseF);
      if (rc == 0 && cmp) rc = row_logits(&j, &other, L, b, pos, n, zFo, lseFo);
      for (int r = 0; r < R && rc == 0; r++) {
        const float *cz = zF, *czo = zFo;
        const double *cl = lseF, *clo = lseFo;
        if (r < L) {
          rc = row_logits(&j, &self, r, b, pos, n, z, lse);
          cz = z, cl = lse;
          if (rc == 0 && cmp) rc = row_logits(&j, &other, r, b, pos, n, zo, lseo);
          czo = zo, clo = lseo;
          if (rc) break;
        }
        for (int i = 0; i < n; i++) { /* the log-probabilities, when asked for */
          const size_t off = (((size_t)b * R + r) * P + c0 + i) * V;
          for (int v = 0; in->log_probs && v < V; v++)
            in->log_probs[off + v] = (float)((double)cz[(size_t)i * V + v] - cl[i]);
          for (int v = 0; in->other_log_probs && cmp && v < V; v++)
            in->other_log_probs[off + v] = (float)((double)czo[(size_t)i * V + v] - clo[i]);
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < n; i++) {
          dist x = {cz + (size_t)i * V, cl[i]}, F = {zF + (size_t)i * V, lseF[i]};
          dist xo = {cmp ? czo + (size_t)i * V : NULL, cmp ? clo[i] : 0};
          cell(&j, o, r, c0 + i, pos[i], b, x, F, xo, &ws_t[omp_get_thread_num()]);
        }
      }
    }
  }
  for (int s = 0; s < TL_TRAJ_NSTATS && rc == 0; s++)
    if (o->stat[s])
      for (size_t c = 0; c < cells; c++) o->stat[s][c] /= B;
  o->min_top_p = INFINITY;
  for (size_t c = 0; c < cells * B && rc == 0; c++) o->min_top_p = fminf(o->min_top_p, o->top_p[c * k]);

  for (int t = 0; t < nth; t++) free(ws_t[t].lp), free(ws_t[t].p), free(ws_t[t].po), free(ws_t[t].a), free(ws_t[t].idx);
  free(ws_t);
  free(j.h), free(zF), free(z), free(zFo), free(zo), free(lse);
  free(hid), free(hid_o);
  free((void *)self.mask), free((void *)other.mask);
  if (rc != 0) tl_traj_free(o);
  return rc;
}
