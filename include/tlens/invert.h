/* Inverting the unembedding: the reference's Unembed.invert. For target logits z
 * (rows of V), find hidden states h minimising
 *
 *   loss(h) = mean over rows of sum_v p_v (log p_v - log q_v(h))        (the KL)
 *             + prior_weight * mean over rows of -log N(norm(h); 0, I)  (optional)
 *
 * where p = softmax(z) (times per-token weights when given) and
 * q(h) = softmax(W_U norm(h) + b_U), the model's final norm and unembedding. The
 * start is h = 0, as the reference's code does (its docstring's least-squares
 * start is not what it runs). Optimisers: L-BFGS with a strong Wolfe line search
 * (the reference's default: torch.optim.LBFGS, history 100, lr = step_size,
 * tolerance_change = tol), or plain gradient descent (SGD at step_size). The
 * outer loop is the reference's: optimiser steps until max_iter function
 * evaluations, a gradient norm below tol, or a loss below tol. One difference:
 * where torch's L-BFGS stops for good (no descent left along its direction:
 * every later step repeats that and spends one evaluation), ours drops its
 * history and goes on from the steepest descent. The preimage returned is
 * norm(h*), the state after the final norm; kl, loss and the gradient norm are
 * those of that point (the reference reports its last evaluation's, which may be
 * a rejected line-search trial). */
#ifndef TLENS_INVERT_H
#define TLENS_INVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "tlens/unembed.h"

typedef struct {
  bool sgd;            /* plain gradient descent instead of L-BFGS */
  int max_iter;        /* function evaluations [1000] */
  double tol;          /* [1e-3] */
  double step_size;    /* [1.0] */
  double prior_weight; /* of a standard normal prior on norm(h) [0] */
} tl_invert_opts;

typedef struct {
  double kl, loss, grad_norm;
  int nfev;
} tl_invert_out;

/* logits [n,V] (and weight [n,V] or NULL) -> preimage [n,d] = norm(h*). */
int tl_invert(const tl_unembed *u, const float *logits, const float *weight, int n, const tl_invert_opts *o,
              float *preimage, tl_invert_out *out);

/* ---- the command (tlens invert) ---- */
typedef struct {
  char *model, *logits, *logits_name, *weight, *output;
  char *revision; /* of a hub id model (NULL: main) */
  bool sgd;
  long max_iter, threads;
  double tol, step_size, prior_weight;
} tl_invert_cfg;

void tl_invert_cfg_default(tl_invert_cfg *c);
void tl_invert_cfg_free(tl_invert_cfg *c);
int tl_invert_run(const tl_invert_cfg *c);

#endif
