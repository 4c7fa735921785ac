/* tlens invert: hidden states whose unembedding matches target logits
 * (tlens/invert.h). The objective and its gradient are computed in double except
 * the two products with W_U (fp32 GEMMs); the optimisers work in double.
 * TLENS_INVERT_TRACE=1 prints every evaluation's loss (tests compare it with
 * torch.optim.LBFGS's). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/invert.h"
#include "tlens/safetensors.h"

typedef struct {
  const tl_unembed *u;
  const tl_invert_opts *o;
  int n, d, V;
  double *p, *logp;   /* [n,V] the targets (p weighted) */
  double *psum;       /* [n] sum of p per row */
  float *y, *z, *dz;  /* [n,d], [n,V], [n,V] */
  float *dyf;         /* [n,d] */
  double *rstd, *dy;  /* [n], [n,d] */
  double *gain;       /* [d] */
  int nfev;
  double kl;          /* of the last evaluation */
  int trace;          /* TLENS_INVERT_TRACE set: every evaluation's loss on stderr */
} objective;

/* y = norm(h) row by row (LayerNorm or RMSNorm with the model's gain and bias) */
static void norm_rows(objective *f, const double *h) {
  const tl_unembed *u = f->u;
  const int d = f->d;
  for (int r = 0; r < f->n; r++) {
    const double *x = h + (size_t)r * d;
    double mu = 0, var = 0;
    if (u->norm == TL_NORM_LAYERNORM) {
      for (int j = 0; j < d; j++) mu += x[j];
      mu /= d;
    }
    for (int j = 0; j < d; j++) var += (x[j] - mu) * (x[j] - mu);
    f->rstd[r] = 1.0 / sqrt(var / d + u->eps);
    for (int j = 0; j < d; j++) {
      double v = (x[j] - mu) * f->rstd[r] * f->gain[j];
      if (u->norm_b) v += u->norm_b[j];
      f->y[(size_t)r * d + j] = (float)v;
    }
  }
}

/* dh = the gradient through the norm of dy (in f->dy), for rows of h */
static void norm_backward(objective *f, const double *h, double *dh) {
  const int d = f->d;
  const int ln = f->u->norm == TL_NORM_LAYERNORM;
  for (int r = 0; r < f->n; r++) {
    const double *x = h + (size_t)r * d, *dy = f->dy + (size_t)r * d;
    double mu = 0, mean_g = 0, mean_gx = 0;
    if (ln) {
      for (int j = 0; j < d; j++) mu += x[j];
      mu /= d;
    }
    for (int j = 0; j < d; j++) {
      const double g = dy[j] * f->gain[j], xh = (x[j] - mu) * f->rstd[r];
      mean_g += g, mean_gx += g * xh;
    }
    mean_g /= d, mean_gx /= d;
    for (int j = 0; j < d; j++) {
      const double g = dy[j] * f->gain[j], xh = (x[j] - mu) * f->rstd[r];
      dh[(size_t)r * d + j] = f->rstd[r] * (g - (ln ? mean_g : 0) - xh * mean_gx);
    }
  }
}

/* the loss at h and its gradient g */
static double evaluate(objective *f, const double *h, double *g) {
  const tl_unembed *u = f->u;
  const int n = f->n, d = f->d, V = f->V;
  f->nfev++;
  norm_rows(f, h);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, d, 1.0f, f->y, d, u->W_U, d, 0.0f, f->z, V);
  double kl = 0, prior = 0;
  for (int r = 0; r < n; r++) {
    float *z = f->z + (size_t)r * V, *dz = f->dz + (size_t)r * V;
    const double *p = f->p + (size_t)r * V, *lp = f->logp + (size_t)r * V;
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) {
      if (u->b_U) z[v] += u->b_U[v];
      mx = z[v] > mx ? z[v] : mx;
    }
    for (int v = 0; v < V; v++) s += exp(z[v] - mx);
    const double lse = mx + log(s);
    for (int v = 0; v < V; v++) {
      const double lq = z[v] - lse;
      if (p[v] > 0) kl += p[v] * (lp[v] - lq) / n; /* 0 log 0 = 0 */
      dz[v] = (float)((f->psum[r] * exp(lq) - p[v]) / n);
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, V, 1.0f, f->dz, V, u->W_U, d, 0.0f, f->dyf, d);
  for (size_t i = 0; i < (size_t)n * d; i++) f->dy[i] = f->dyf[i];
  if (f->o->prior_weight != 0) { /* -log N(y; 0, I), mean over rows */
    const double w = f->o->prior_weight;
    for (int r = 0; r < n; r++)
      for (int j = 0; j < d; j++) {
        const double y = f->y[(size_t)r * d + j];
        prior += (0.5 * y * y) / n;
        f->dy[(size_t)r * d + j] += w * y / n;
      }
    prior += 0.5 * d * log(2 * M_PI);
    prior *= w;
  }
  norm_backward(f, h, g);
  f->kl = kl;
  if (f->trace) fprintf(stderr, "eval %d %.9g\n", f->nfev, kl + prior);
  return kl + prior;
}

static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static double max_abs(const double *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
  return m;
}

/* the minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), kept within [lo, hi] */
static double cubic_min(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2), d2sq = d1 * d1 - g1 * g2;
  if (d2sq < 0) return (lo + hi) / 2;
  const double d2 = sqrt(d2sq);
  double m = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                      : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
  return m < lo ? lo : m > hi ? hi : m;
}

/* one point of the line search: value, gradient and slope at x + t d */
typedef struct {
  double t, f, gtd;
  double *g;
} point;

static void probe(objective *f, const double *x, const double *dir, size_t N, double *xt, point *pt) {
  for (size_t i = 0; i < N; i++) xt[i] = x[i] + pt->t * dir[i];
  pt->f = evaluate(f, xt, pt->g);
  pt->gtd = dot(pt->g, dir, N);
}

static void copy_point(point *dst, const point *src, size_t N) {
  dst->t = src->t, dst->f = src->f, dst->gtd = src->gtd;
  memcpy(dst->g, src->g, N * sizeof(double));
}

/* A step length t along dir satisfying the strong Wolfe conditions (c1 = 1e-4,
 * c2 = 0.9; at most 25 evaluations): bracketing with cubic extrapolation, then
 * zooming with cubic interpolation (Nocedal & Wright, algorithms 3.5 and 3.6).
 * in: the start (t = 0) and the first trial t; out: the accepted point. */
static void line_search(objective *f, const double *x, const double *dir, size_t N, const point *at0, double t,
                        point *best, double *xt, point br[2], point *cur) {
  const double c1 = 1e-4, c2 = 0.9, tol_change = 1e-9;
  const int max_ls = 25;
  const double dnorm = max_abs(dir, N);
  point *prev = best; /* used as scratch until the end */
  copy_point(prev, at0, N);
  prev->t = 0;
  cur->t = t;
  probe(f, x, dir, N, xt, cur);
  int ls = 1, done = 0, nbr = 0;
  while (ls < max_ls) {
    if (cur->f > at0->f + c1 * cur->t * at0->gtd || (ls > 1 && cur->f >= prev->f)) {
      copy_point(&br[0], prev, N), copy_point(&br[1], cur, N), nbr = 2;
      break;
    }
    if (fabs(cur->gtd) <= -c2 * at0->gtd) {
      copy_point(&br[0], cur, N), nbr = 1, done = 1;
      break;
    }
    if (cur->gtd >= 0) {
      copy_point(&br[0], prev, N), copy_point(&br[1], cur, N), nbr = 2;
      break;
    }
    const double lo = cur->t + 0.01 * (cur->t - prev->t), hi = cur->t * 10;
    const double next = cubic_min(prev->t, prev->f, prev->gtd, cur->t, cur->f, cur->gtd, lo, hi);
    copy_point(prev, cur, N);
    cur->t = next;
    probe(f, x, dir, N, xt, cur);
    ls++;
  }
  if (nbr == 0) { /* out of evaluations: between the start and the last trial */
    copy_point(&br[0], at0, N), br[0].t = 0;
    copy_point(&br[1], cur, N), nbr = 2;
  }
  int low = br[0].f <= br[nbr - 1].f ? 0 : 1, insufficient = 0;
  while (!done && nbr == 2 && ls < max_ls) {
    if (fabs(br[1].t - br[0].t) * dnorm < tol_change) break;
    const double bmin = fmin(br[0].t, br[1].t), bmax = fmax(br[0].t, br[1].t);
    double tt = cubic_min(br[0].t, br[0].f, br[0].gtd, br[1].t, br[1].f, br[1].gtd, bmin, bmax);
    /* too close to an end: move in, unless the last step already made progress */
    const double eps = 0.1 * (bmax - bmin);
    if (fmin(bmax - tt, tt - bmin) < eps) {
      if (insufficient || tt >= bmax || tt <= bmin) {
        tt = fabs(tt - bmax) < fabs(tt - bmin) ? bmax - eps : bmin + eps;
        insufficient = 0;
      } else {
        insufficient = 1;
      }
    } else {
      insufficient = 0;
    }
    cur->t = tt;
    probe(f, x, dir, N, xt, cur);
    ls++;
    const int high = 1 - low;
    if (cur->f > at0->f + c1 * tt * at0->gtd || cur->f >= br[low].f) {
      copy_point(&br[high], cur, N);
      low = br[0].f <= br[1].f ? 0 : 1;
    } else {
      if (fabs(cur->gtd) <= -c2 * at0->gtd) done = 1;
      else if (cur->gtd * (br[high].t - br[low].t) >= 0) copy_point(&br[high], &br[low], N);
      copy_point(&br[low], cur, N);
    }
  }
  copy_point(best, &br[nbr == 1 ? 0 : low], N);
}

/* L-BFGS as torch.optim.LBFGS runs it (history 100, tolerance_grad 1e-7,
 * tolerance_change tol, max_iter iterations and 5/4 of that in evaluations per
 * step), repeated as the reference's outer loop repeats optimizer steps. */
static void lbfgs(objective *f, double *x, size_t N, double *g, double *loss) {
  const tl_invert_opts *o = f->o;
  const int hist = 100, max_iter = o->max_iter, max_eval = max_iter * 5 / 4;
  const double tol_grad = 1e-7, tol_change = o->tol, lr = o->step_size;
  double *S = tl_malloc((size_t)hist * N * sizeof(double)), *Y = tl_malloc((size_t)hist * N * sizeof(double));
  double *ro = tl_malloc((size_t)hist * sizeof(double)), *al = tl_malloc((size_t)hist * sizeof(double));
  double *dir = tl_calloc(N, sizeof(double)), *gprev = tl_malloc(N * sizeof(double)), *xt = tl_malloc(N * sizeof(double));
  point p0 = {.g = tl_malloc(N * sizeof(double))}, best = {.g = tl_malloc(N * sizeof(double))};
  point cur = {.g = tl_malloc(N * sizeof(double))}, br[2] = {{.g = tl_malloc(N * sizeof(double))}, {.g = tl_malloc(N * sizeof(double))}};
  int nh = 0, head = 0, total_iter = 0;
  double t = lr, H = 1;
  while (f->nfev < o->max_iter) {
    /* one optimizer step: it starts by evaluating the objective where it stands */
    *loss = evaluate(f, x, g);
    int evals = 1, iter = 0;
    if (max_abs(g, N) <= tol_grad) break;
    while (iter < max_iter) {
      iter++, total_iter++;
      if (total_iter == 1) {
        for (size_t i = 0; i < N; i++) dir[i] = -g[i];
        H = 1;
      } else {
        /* the curvature pair of the last step, then the two-loop recursion */
        double *s = S + (size_t)head * N, *y = Y + (size_t)head * N;
        for (size_t i = 0; i < N; i++) y[i] = g[i] - gprev[i], s[i] = dir[i] * t;
        const double ys = dot(y, s, N);
        if (ys > 1e-10) {
          ro[head] = 1 / ys;
          H = ys / dot(y, y, N);
          head = (head + 1) % hist;
          nh = nh < hist ? nh + 1 : hist;
        }
        for (size_t i = 0; i < N; i++) dir[i] = -g[i];
        for (int k = 0; k < nh; k++) { /* newest first */
          const int j = (head - 1 - k + hist) % hist;
          al[j] = dot(S + (size_t)j * N, dir, N) * ro[j];
          for (size_t i = 0; i < N; i++) dir[i] -= al[j] * Y[(size_t)j * N + i];
        }
        for (size_t i = 0; i < N; i++) dir[i] *= H;
        for (int k = nh - 1; k >= 0; k--) { /* oldest first */
          const int j = (head - 1 - k + hist) % hist;
          const double be = dot(Y + (size_t)j * N, dir, N) * ro[j];
          for (size_t i = 0; i < N; i++) dir[i] += S[(size_t)j * N + i] * (al[j] - be);
        }
      }
      memcpy(gprev, g, N * sizeof(double));
      const double prev_loss = *loss;
      if (total_iter == 1) {
        double l1 = 0;
        for (size_t i = 0; i < N; i++) l1 += fabs(g[i]);
        t = fmin(1.0, 1.0 / l1) * lr;
      } else {
        t = lr;
      }
      const double gtd = dot(g, dir, N);
      if (gtd > -tol_change) {
        /* no descent left along the quasi-Newton direction: torch stops here for good
         * (every later step repeats it); we drop the history and restart from the
         * steepest descent, which keeps improving within the same evaluations */
        nh = 0, head = 0, H = 1;
        break;
      }
      p0.t = 0, p0.f = *loss, p0.gtd = gtd;
      memcpy(p0.g, g, N * sizeof(double));
      const int before = f->nfev;
      line_search(f, x, dir, N, &p0, t, &best, xt, br, &cur);
      evals += f->nfev - before;
      t = best.t;
      for (size_t i = 0; i < N; i++) x[i] += t * dir[i];
      *loss = best.f;
      memcpy(g, best.g, N * sizeof(double));
      if (iter == max_iter || evals >= max_eval || max_abs(g, N) <= tol_grad) break;
      if (max_abs(dir, N) * fabs(t) <= tol_change || fabs(*loss - prev_loss) < tol_change) break;
    }
    if (sqrt(dot(g, g, N)) < o->tol || *loss < o->tol) break;
  }
  free(S), free(Y), free(ro), free(al), free(dir), free(gprev), free(xt);
  free(p0.g), free(best.g), free(cur.g), free(br[0].g), free(br[1].g);
}

int tl_invert(const tl_unembed *u, const float *logits, const float *weight, int n, const tl_invert_opts *o,
              float *preimage, tl_invert_out *out) {
  if (n < 1) return tl_fail("invert: no target rows");
  if (o->max_iter < 1) return tl_fail("invert: max_iter must be at least 1");
  if (!(o->tol >= 0) || !(o->step_size > 0)) return tl_fail("invert: tol must be >= 0 and step_size > 0");
  const int d = u->d_model, V = u->vocab;
  const size_t N = (size_t)n * d;
  objective f = {.u = u, .o = o, .n = n, .d = d, .V = V, .trace = getenv("TLENS_INVERT_TRACE") != NULL};
  f.p = tl_malloc((size_t)n * V * sizeof(double));
  f.logp = tl_malloc((size_t)n * V * sizeof(double));
  f.psum = tl_calloc((size_t)n, sizeof(double));
  int rc = 0;
  for (int r = 0; r < n && rc == 0; r++) {
    const float *z = logits + (size_t)r * V;
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    if (!isfinite(mx)) rc = tl_fail("invert: target row %d has no finite logit", r);
    for (int v = 0; v < V && rc == 0; v++) s += exp(z[v] - mx);
    for (int v = 0; v < V && rc == 0; v++) {
      const size_t i = (size_t)r * V + v;
      f.logp[i] = z[v] - mx - log(s);
      f.p[i] = exp(f.logp[i]) * (weight ? weight[i] : 1.0);
      f.psum[r] += f.p[i];
    }
  }
  if (rc == 0) {
    f.y = tl_malloc(N * sizeof(float)), f.dyf = tl_malloc(N * sizeof(float));
    f.z = tl_malloc((size_t)n * V * sizeof(float)), f.dz = tl_malloc((size_t)n * V * sizeof(float));
    f.rstd = tl_malloc((size_t)n * sizeof(double)), f.dy = tl_malloc(N * sizeof(double));
    f.gain = tl_malloc((size_t)d * sizeof(double));
    for (int j = 0; j < d; j++) f.gain[j] = u->norm_w[j] + (u->norm_add_one ? 1.0 : 0.0);
    double *h = tl_calloc(N, sizeof(double)), *g = tl_malloc(N * sizeof(double)), loss = 0;
    if (o->sgd) {
      loss = evaluate(&f, h, g);
      while (f.nfev < o->max_iter && !(sqrt(dot(g, g, N)) < o->tol || loss < o->tol)) {
        for (size_t i = 0; i < N; i++) h[i] -= o->step_size * g[i];
        loss = evaluate(&f, h, g);
      }
    } else {
      lbfgs(&f, h, N, g, &loss);
    }
    /* the reported values belong to the returned point */
    const int nfev = f.nfev;
    loss = evaluate(&f, h, g);
    out->kl = f.kl, out->loss = loss, out->grad_norm = sqrt(dot(g, g, N)), out->nfev = nfev;
    memcpy(preimage, f.y, N * sizeof(float));
    free(h), free(g);
  }
  free(f.p), free(f.logp), free(f.psum), free(f.y), free(f.dyf), free(f.z), free(f.dz), free(f.rstd), free(f.dy),
      free(f.gain);
  return rc;
}

/* ---- the command ---- */

void tl_invert_cfg_default(tl_invert_cfg *c) {
  memset(c, 0, sizeof *c);
  c->max_iter = 1000;
  c->tol = 1e-3;
  c->step_size = 1.0;
}

void tl_invert_cfg_free(tl_invert_cfg *c) {
  char **s[] = {&c->model, &c->revision, &c->logits, &c->logits_name, &c->weight, &c->output};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    free(*s[i]);
    *s[i] = NULL;
  }
}

/* a float tensor [..., V] of a safetensors file: the named one, else the only one */
static int read_rows(const char *path, const char *name, const char *fallback, int V, float **out, int *n,
                     int *ndim, int64_t *shape) {
  tl_safetensors st;
  TL_TRY(tl_st_open(&st, path));
  const tl_st_tensor *t = tl_st_find(&st, name ? name : fallback);
  if (!t && !name && st.n == 1) t = &st.tensors[0];
  int rc = 0;
  if (!t) rc = tl_fail("%s: no tensor '%s'%s", path, name ? name : fallback, name ? "" : " (give its name)");
  else if (!tl_dtype_is_float(t->dtype)) rc = tl_fail("%s: tensor '%s' is not floating point", path, t->name);
  else if (t->ndim < 1 || t->shape[t->ndim - 1] != V || tl_numel(t->ndim, t->shape) < V)
    rc = tl_fail("%s: tensor '%s' must be [..., %d] (the model's vocabulary)", path, t->name, V);
  if (rc == 0) {
    const int64_t numel = tl_numel(t->ndim, t->shape);
    *out = tl_malloc((size_t)numel * sizeof(float));
    tl_to_f32(*out, t->data, t->dtype, (size_t)numel);
    *n = (int)(numel / V);
    if (ndim) {
      *ndim = t->ndim;
      memcpy(shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
    }
  }
  tl_st_close(&st);
  return rc;
}

int tl_invert_run(const tl_invert_cfg *c) {
  if (!c->model) return tl_fail("--model.name: a model folder is required");
  if (!c->logits) return tl_fail("--logits: a safetensors file of target logits is required");
  tl_analysis_env e;
  tl_analysis_opts ao = {.model = c->model, .revision = c->revision, .threads = c->threads, .eos_id = -1};
  int rc = tl_analysis_open(&e, &ao);
  float *logits = NULL, *weight = NULL, *pre = NULL;
  int n = 0, nw = 0, ndim = 0;
  int64_t shape[TL_MAX_DIMS];
  if (rc == 0) rc = read_rows(c->logits, c->logits_name, "target_logits", e.u.vocab, &logits, &n, &ndim, shape);
  if (rc == 0 && c->weight) {
    rc = read_rows(c->weight, NULL, "weight", e.u.vocab, &weight, &nw, NULL, NULL);
    if (rc == 0 && nw != n) rc = tl_fail("%s: %d weight rows for %d target rows", c->weight, nw, n);
  }
  tl_invert_out res;
  if (rc == 0) {
    tl_invert_opts o = {.sgd = c->sgd, .max_iter = (int)c->max_iter, .tol = c->tol, .step_size = c->step_size,
                        .prior_weight = c->prior_weight};
    pre = tl_malloc((size_t)n * e.u.d_model * sizeof(float));
    rc = tl_invert(&e.u, logits, weight, n, &o, pre, &res);
  }
  if (rc == 0 && c->output) {
    tl_st_writer *w = tl_st_writer_new();
    shape[ndim - 1] = e.u.d_model;
    tl_st_writer_add(w, "preimage", TL_F32, ndim, shape, pre);
    const int64_t one = 1;
    const float kl = (float)res.kl, loss = (float)res.loss, gn = (float)res.grad_norm;
    tl_st_writer_add(w, "kl", TL_F32, 1, &one, &kl);
    tl_st_writer_add(w, "loss", TL_F32, 1, &one, &loss);
    tl_st_writer_add(w, "grad_norm", TL_F32, 1, &one, &gn);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", res.nfev);
    tl_st_writer_meta(w, "nfev", buf);
    tl_st_writer_meta(w, "optimizer", c->sgd ? "sgd" : "lbfgs");
    rc = tl_st_writer_save(w, c->output);
    tl_st_writer_free(w);
  }
  if (rc == 0) {
    printf("kl %.6g  loss %.6g  grad_norm %.6g  nfev %d  (%d rows)\n", res.kl, res.loss, res.grad_norm, res.nfev, n);
    if (fflush(stdout) != 0) rc = tl_fail("stdout: write error");
  }
  free(logits), free(weight), free(pre);
  tl_analysis_close(&e);
  return rc;
}
