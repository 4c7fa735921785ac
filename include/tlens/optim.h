/* Optimizers, learning-rate schedule and gradient clipping for the lens, with
 * PyTorch semantics (torch.optim.SGD / torch.optim.Adam, HF
 * get_linear_schedule_with_warmup, torch.nn.utils.clip_grad_norm_).
 *
 * Everything works on FLAT fp32 arrays: all trainable parameters live in one
 * contiguous array (the lens lays its translators out that way), gradients in a
 * second array of the same length, and the optimizer state in arrays of the
 * same length again. The state may cover only a contiguous shard [off, off+n)
 * of the flat space (ZeRO-1: each rank steps its own shard, then the shards are
 * all-gathered), because every update is elementwise.
 *
 * One optimizer step is:
 *     lr = base_lr * tl_lr_lambda(sched_step, warmup, num_steps - warmup)
 *     for each trainable segment [a, b) inside the state's range:
 *         tl_optim_update(opt, lr, param + a, grad + a, a - opt->off, b - a)
 *     tl_optim_finish_step(opt)
 * Segments let frozen parameters (bias_only lenses) be skipped: PyTorch never
 * hands a parameter without a gradient to the optimizer, so such a parameter
 * gets no weight decay and no state update at all. */
#ifndef TLENS_OPTIM_H
#define TLENS_OPTIM_H

#include <stdint.h>

typedef enum { TL_OPT_SGD = 0, TL_OPT_ADAM = 1 } tl_opt_kind;

typedef struct {
  tl_opt_kind kind;
  double lr_scale;     /* [1.0] SGD lr = lr_scale * (1 - momentum); Adam lr = lr_scale * 1e-3 */
  double momentum;     /* [0.9] SGD momentum (Nesterov), or Adam beta1 */
  double weight_decay; /* [1e-3] added to the gradient as wd * param (PyTorch SGD and Adam) */
} tl_opt_cfg;

/* Defaults of the reference trainer: sgd, lr_scale 1, momentum 0.9, weight decay 1e-3. */
tl_opt_cfg tl_opt_cfg_default(void);

typedef struct {
  tl_opt_kind kind;
  double lr;           /* base learning rate (before the schedule) */
  double momentum;     /* SGD momentum or Adam beta1 */
  double beta2;        /* Adam: 0.999 */
  double eps;          /* Adam: 1e-8 */
  double weight_decay;
  int64_t off, n;      /* the state covers flat elements [off, off + n) */
  int64_t step;        /* optimizer steps completed (PyTorch's state["step"]) */
  /* State arrays of n floats (what a checkpoint must save, together with step):
   * SGD: m = momentum_buffer (undefined until the first step, which copies the grad);
   * Adam: m = exp_avg, v = exp_avg_sq, vmax = max_exp_avg_sq (amsgrad). Unused ones are NULL. */
  float *m, *v, *vmax;
} tl_optim;

/* Validates cfg (lr_scale > 0, 0 <= momentum < 1, weight_decay >= 0, all finite) and
 * allocates zeroed state for the shard [off, off + n). */
int tl_optim_init(tl_optim *o, const tl_opt_cfg *cfg, int64_t off, int64_t n);
void tl_optim_free(tl_optim *o);
/* Number of state arrays the kind holds (SGD 1, Adam 3): what a checkpoint saves. */
int tl_optim_n_state(tl_opt_kind kind);

/* Applies this step's update to n consecutive parameters whose state starts at
 * state index s (0 <= s, s + n <= o->n), with learning rate lr. Uses step number
 * o->step + 1 (PyTorch increments before updating). Exactly PyTorch's order:
 *   SGD:  g += wd*p; buf = (first step) ? g : momentum*buf + g; p -= lr*(g + momentum*buf)
 *   Adam: g += wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; vmax = max(vmax, v);
 *         p -= lr/(1-b1^t) * m / (sqrt(vmax)/sqrt(1-b2^t) + eps)
 * The gradient array is not modified. */
void tl_optim_update(tl_optim *o, double lr, float *param, const float *grad, int64_t s, int64_t n);
/* Ends the step (o->step++). */
void tl_optim_finish_step(tl_optim *o);

/* HF get_linear_schedule_with_warmup's multiplier for scheduler step `step`
 * (0 for the first optimizer step):
 *   step < warmup: step / max(1, warmup)
 *   else: max(0, (num_training_steps - step) / max(1, num_training_steps - warmup)).
 * The reference trainer passes num_training_steps = num_steps - warmup. */
double tl_lr_lambda(int64_t step, int64_t warmup, int64_t num_training_steps);
/* Default warmup: 0 for SGD; min(1000, num_steps / 5) for Adam (the documented intent). */
int64_t tl_default_warmup(tl_opt_kind kind, int64_t num_steps);

/* Sum of squares of g[0..n) in double (add the shards' sums for a global norm). */
double tl_sumsq(const float *g, int64_t n);
/* clip_grad_norm_: given the total norm, the factor the gradients are multiplied by:
 * min(1, max_norm / (total_norm + 1e-6)), computed in fp32 like PyTorch. */
float tl_clip_coef(double total_norm, double max_norm);
/* g[i] *= c */
void tl_scale(float *g, int64_t n, float c);

#endif
