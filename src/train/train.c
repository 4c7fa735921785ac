/* The training loop (see include/tlens/train.h for the shape of one step). */
#include "tlens/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/data.h"
#include "tlens/dist.h"
#include "tlens/export.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/optim.h"
#include "tlens/plot.h"
#include "tlens/tfevents.h"
#include "tlens/tokenizer.h"
#include "train/train_internal.h"

void tl_train_cfg_default(tl_train_cfg *c) {
  memset(c, 0, sizeof *c);
  tl_run_cfg_default(&c->run);
  c->tokens_per_step = 1L << 18;
  c->num_steps = 250;
  c->seed = 42;
  c->loss = tl_strdup("kl");
  c->optimizer = tl_strdup("sgd");
  c->lens_precision = tl_strdup("fp32");
  c->lr_scale = 1.0;
  c->momentum = 0.9;
  c->weight_decay = 1e-3;
  c->warmup_steps = -1;
  c->checkpoint_freq = 50;
  c->checkpoint_keep = 2;
}

void tl_train_cfg_free(tl_train_cfg *c) {
  tl_run_cfg_free(&c->run);
  char **strs[] = {&c->loss, &c->lens_init, &c->optimizer, &c->checkpoint_dir, &c->hub_layout, &c->lens_precision,
                   &c->wandb, &c->tensorboard};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
}

/* ---- configuration checks (identical on every rank, so no agreement is needed) ---- */
int tl_train_cfg_check(const tl_train_cfg *c) {
  TL_TRY(tl_run_cfg_check(&c->run));
  if (strcmp(c->loss, "kl") && strcmp(c->loss, "ce")) return tl_fail("--loss: expected kl or ce, got '%s'", c->loss);
  if (strcmp(c->optimizer, "sgd") && strcmp(c->optimizer, "adam"))
    return tl_fail("--optimizer: expected sgd or adam, got '%s'", c->optimizer);
  if (strcmp(c->lens_precision, "fp32") && strcmp(c->lens_precision, "bf16"))
    return tl_fail("--lens_precision: expected fp32 or bf16, got '%s'", c->lens_precision);
  if (c->tokens_per_step < 1) return tl_fail("--tokens_per_step: expected at least 1");
  if (c->num_steps < 1) return tl_fail("--num_steps: expected at least 1");
  if (c->checkpoint_freq < 0) return tl_fail("--checkpoint_freq: expected >= 0");
  if (c->checkpoint_keep < 1) return tl_fail("--checkpoint_keep: expected >= 1");
  if (c->warmup_steps >= c->num_steps) return tl_fail("--warmup_steps: must be below --num_steps (%ld)", c->num_steps);
  return 0;
}

/* Batch arithmetic of the reference trainer: samples per step = tokens_per_step / T
 * exactly; gradient accumulation steps = ceil(samples / (batch * world)), with a
 * warning giving the real tokens per step when that rounds. */
static int plan_batches(tl_trainer *r) {
  const tl_train_cfg *c = r->c;
  if (c->tokens_per_step % r->T != 0)
    return tl_fail("--tokens_per_step %ld is not a multiple of the sequence length %lld", c->tokens_per_step,
                   (long long)r->T);
  int64_t S = c->tokens_per_step / r->T;
  int64_t per_micro = c->run.per_gpu_batch_size * (int64_t)r->run->dist.world;
  r->B = c->run.per_gpu_batch_size;
  r->acc = (S + per_micro - 1) / per_micro;
  r->G = r->acc * per_micro;
  if (r->G != S)
    tl_warn("%lld samples per step is not a multiple of per_gpu_batch_size x world size (%lld): using %lld "
            "gradient accumulation steps, so the real tokens per step is %lld",
            (long long)S, (long long)per_micro, (long long)r->acc, (long long)(r->G * r->T));
  return tl_data_check_enough(tl_data_len(r->run->data), c->num_steps, r->G, c->run.data);
}

static int init_lens_and_optim(tl_trainer *r) {
  const tl_train_cfg *c = r->c;
  TL_TRY(tl_lens_init(&r->lens, r->run->mc.n_layers, r->run->mc.d_model));
  r->lens.bias_only = c->bias_only;
  TL_TRY(tl_lens_check(&r->lens, &r->run->u));
  if (c->lens_init) {
    tl_lens_expect e = {r->run->mc.d_model, r->run->mc.n_layers, r->run->unembed_hash};
    tl_lens_config lc;
    float *params = NULL;
    int mismatch = 0;
    TL_TRY(tl_lens_dir_load(c->lens_init, &e, &lc, &params, &mismatch));
    memcpy(r->lens.params, params, (size_t)r->lens.n_params * sizeof(float));
    free(params);
    tl_lens_config_free(&lc);
    tl_info("starting from the lens in %s", c->lens_init);
  }
  r->lcfg = tl_lens_cfg_default();
  r->lcfg.loss = strcmp(c->loss, "ce") ? TL_LOSS_KL : TL_LOSS_CE;
  if (c->token_shift_set) {
    if (labs(c->token_shift) >= r->T) return tl_fail("--token_shift %ld: must be smaller than the sequence length", c->token_shift);
    r->lcfg.token_shift = (int)c->token_shift;
  }
  if (c->lens_chunk > 0) r->lcfg.chunk = (int)c->lens_chunk;
  /* W_U packed once for the whole run (and the chunk buffers kept) */
  r->lcfg.gemm_precision = strcmp(c->lens_precision, "bf16") ? TL_LENS_GEMM_FP32 : TL_LENS_GEMM_BF16;
  TL_TRY(tl_lens_prepare(&r->run->u, r->lcfg.gemm_precision, &r->lcfg.ws));
  if (r->lcfg.gemm_precision == TL_LENS_GEMM_BF16 && tl_lens_ws_precision(r->lcfg.ws) != TL_LENS_GEMM_BF16)
    r->lcfg.gemm_precision = TL_LENS_GEMM_FP32; /* no AVX-512 BF16 here: warned once, runs in fp32 */
  if (tl_dist_is_root(&r->run->dist)) tl_info("lens GEMMs: %s kernels", tl_lens_ws_kernels(r->lcfg.ws));

  r->ocfg = tl_opt_cfg_default();
  r->ocfg.kind = strcmp(c->optimizer, "adam") ? TL_OPT_SGD : TL_OPT_ADAM;
  r->ocfg.lr_scale = c->lr_scale;
  r->ocfg.momentum = c->momentum;
  r->ocfg.weight_decay = c->weight_decay;
  size_t off = 0, cnt = (size_t)r->lens.n_params;
  if (c->zero && r->run->dist.world > 1) tl_shard_range((size_t)r->lens.n_params, r->run->dist.world, r->run->dist.rank, &off, &cnt);
  TL_TRY(tl_optim_init(&r->opt, &r->ocfg, (int64_t)off, (int64_t)cnt));
  r->warmup = c->warmup_steps >= 0 ? c->warmup_steps : tl_default_warmup(r->ocfg.kind, c->num_steps);
  if (r->warmup >= c->num_steps) r->warmup = c->num_steps - 1;
  r->grad = tl_aligned_alloc((size_t)r->lens.n_params * sizeof(float));
  if (c->zero && r->run->dist.world > 1) r->zero_grad = tl_aligned_alloc((cnt ? cnt : 1) * sizeof(float));
  return tl_sampler_init(&r->sampler, tl_data_len(r->run->data), (uint64_t)c->seed, c->run.shuffle);
}

/* ---- one optimizer step ---- */

/* Averaging of stream gradients over the ranks as the lens step completes them:
 * up to TL_DIST_MAX_INFLIGHT non-blocking all-reduces in flight. */
typedef struct {
  tl_trainer *r;
  tl_dist_req reqs[TL_DIST_MAX_INFLIGHT];
  int inflight, first;
} overlap_ctx;

static int overlap_stream_done(void *ctx, int i) {
  overlap_ctx *ov = ctx;
  tl_trainer *r = ov->r;
  const int64_t per = (int64_t)r->run->mc.d_model * r->run->mc.d_model + r->run->mc.d_model;
  if (ov->inflight == TL_DIST_MAX_INFLIGHT) {
    TL_TRY(tl_dist_wait(&ov->reqs[ov->first % TL_DIST_MAX_INFLIGHT]));
    ov->first++;
    ov->inflight--;
  }
  TL_TRY(tl_dist_iallreduce_avg(&r->run->dist, r->grad + i * per, (size_t)per,
                                &ov->reqs[(ov->first + ov->inflight) % TL_DIST_MAX_INFLIGHT]));
  ov->inflight++;
  for (int q = 0; q < ov->inflight; q++) TL_TRY(tl_dist_test(&ov->reqs[(ov->first + q) % TL_DIST_MAX_INFLIGHT], NULL));
  return 0;
}

/* After the gradients are averaged and the losses summed over ranks (so every rank
 * sees the same numbers and takes the same branch): a non-finite loss or gradient
 * norm names the step and the first stream it shows in. TLENS_FAULT=nan_grad:S
 * poisons the gradient of step S (1-based) to test this path. */
static int check_finite_step(tl_trainer *r, double norm) {
  int L = r->run->mc.n_layers;
  long step = (long)r->step + 1;
  for (int i = 0; i < L; i++)
    if (!isfinite(r->loss_acc[i]))
      return tl_fail("step %ld: the loss of stream %d is not finite (%g); stopped before the update, the last "
                     "checkpoint is kept", step, i, r->loss_acc[i]);
  if (tl_fault("nan_grad", step)) norm = NAN;
  if (isfinite(norm)) return 0;
  const int64_t per = (int64_t)r->run->mc.d_model * r->run->mc.d_model + r->run->mc.d_model;
  int stream = -1;
  for (int64_t k = r->opt.off; k < r->opt.off + r->opt.n && stream < 0; k++)
    if (!isfinite(r->grad[k])) stream = (int)(k / per);
  if (stream >= 0)
    return tl_fail("step %ld: the gradient of stream %d is not finite; stopped before the update, the last "
                   "checkpoint is kept", step, stream);
  return tl_fail("step %ld: the gradient norm is not finite (%g); stopped before the update, the last checkpoint "
                 "is kept", step, norm);
}

static int train_step(tl_trainer *r, double *loss_out, double *gnorm_out, double *lr_out) {
  const tl_train_cfg *c = r->c;
  tl_dist *d = &r->run->dist;
  int L = r->run->mc.n_layers, B = (int)r->B, T = (int)r->T;
  int64_t count = 0;
  TL_TRY(tl_sampler_next(&r->sampler, r->G, d->rank, d->world, r->idx, &count));
  if (count != r->acc * r->B) return tl_fail("internal: sampler gave %lld samples, expected %lld", (long long)count, (long long)(r->acc * r->B));
  memset(r->grad, 0, (size_t)r->lens.n_params * sizeof(float));
  for (int i = 0; i < L; i++) r->loss_acc[i] = 0;
  /* With several ranks (and no ZeRO), the last micro-batch starts averaging each
   * stream's gradients over the ranks as soon as the lens step has finished that
   * stream (during its last chunk), while the later streams compute. */
  bool overlap = d->world > 1 && !r->zero_grad;
  overlap_ctx ov = {.r = r};
  for (int64_t k = 0; k < r->acc; k++) {
    float scale = (float)(1.0 / (double)r->acc);
    int last = k == r->acc - 1;
    int rc = tl_data_gather(r->run->data, r->idx + k * r->B, r->B, r->ids);
    if (rc == 0) rc = tl_model_forward(r->run->model, r->ids, B, T, r->hidden, NULL);
    /* every rank must know that all will reach the collectives started from stream_done */
    if (rc == 0 && overlap && last) rc = tl_lens_train_check(&r->lens, &r->run->u, &r->lcfg, NULL, r->ids, B, T, scale);
    TL_TRY(tl_dist_agree(d, rc));
    tl_lens_cfg lc = r->lcfg;
    if (overlap && last) lc.stream_done = overlap_stream_done, lc.stream_done_ctx = &ov;
    rc = tl_lens_train_micro(&r->lens, &r->run->u, &lc, r->hidden, NULL, r->ids, B, T, scale, r->grad, r->losses);
    if (overlap && last) {
      TL_TRY(rc); /* only a failed collective; the inputs were agreed on above */
      while (ov.inflight > 0) {
        TL_TRY(tl_dist_wait(&ov.reqs[ov.first % TL_DIST_MAX_INFLIGHT]));
        ov.first++;
        ov.inflight--;
      }
    } else {
      TL_TRY(tl_dist_agree(d, rc));
    }
    for (int i = 0; i < L; i++) r->loss_acc[i] += r->losses[i] / (double)r->acc;
  }
  /* average the gradients over ranks (done above when overlapped), then clip by the global norm */
  int64_t n = r->lens.n_params;
  double sumsq;
  if (r->zero_grad) {
    TL_TRY(tl_dist_reduce_scatter(d, r->grad, r->zero_grad, (size_t)n, true));
    memcpy(r->grad + r->opt.off, r->zero_grad, (size_t)r->opt.n * sizeof(float));
    sumsq = tl_sumsq(r->grad + r->opt.off, r->opt.n);
    TL_TRY(tl_dist_allreduce_f64(d, &sumsq, 1, TL_RED_SUM));
  } else {
    if (d->world > 1 && !overlap) TL_TRY(tl_dist_allreduce_avg(d, r->grad, (size_t)n));
    sumsq = tl_sumsq(r->grad, n);
  }
  double norm = sqrt(sumsq);
  /* the losses are known everywhere before the update, so a non-finite step stops
   * with the lens and the last checkpoint as they were */
  TL_TRY(tl_dist_allreduce_f64(d, r->loss_acc, L, TL_RED_SUM));
  TL_TRY(check_finite_step(r, norm));
  float coef = tl_clip_coef(norm, TL_TRAIN_CLIP_NORM);
  if (coef != 1.0f) tl_scale(r->grad + r->opt.off, r->opt.n, coef);
  double lr = r->opt.lr * tl_lr_lambda(r->step, r->warmup, c->num_steps - r->warmup);
  tl_lens_optim_step(&r->lens, &r->opt, r->grad, lr);
  if (r->zero_grad) TL_TRY(tl_dist_allgather(d, r->lens.params + r->opt.off, r->lens.params, (size_t)n));
  double mean = 0;
  for (int i = 0; i < L; i++) {
    r->loss_acc[i] /= d->world;
    mean += r->loss_acc[i] / L;
  }
  r->step++;
  *loss_out = mean;
  *gnorm_out = norm;
  *lr_out = lr;
  return 0;
}

/* ---- progress and metrics (rank 0) ---- */
static void report_step(tl_trainer *r, double loss, double gnorm, double lr, double step_s) {
  if (!tl_dist_is_root(&r->run->dist)) return;
  const tl_train_cfg *c = r->c;
  int L = r->run->mc.n_layers;
  double tok_s = (double)(r->G * r->T) / (step_s > 0 ? step_s : 1e-9);
  int bpb = isfinite(r->run->nats_to_bpb);
  if (r->metrics) {
    fprintf(r->metrics, "{\"step\": %lld, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens_per_s\": %.1f, \"step_s\": %.4f",
            (long long)r->step, lr, gnorm, tok_s, step_s);
    fprintf(r->metrics, ", \"loss_nats\": [");
    for (int i = 0; i < L; i++) fprintf(r->metrics, "%s%.9g", i ? ", " : "", r->loss_acc[i]);
    fprintf(r->metrics, "]");
    if (bpb) {
      fprintf(r->metrics, ", \"loss_bpb\": [");
      for (int i = 0; i < L; i++) fprintf(r->metrics, "%s%.9g", i ? ", " : "", r->loss_acc[i] * r->run->nats_to_bpb);
      fprintf(r->metrics, "]");
    }
    fprintf(r->metrics, "}\n");
    fflush(r->metrics);
  }
  if (c->tensorboard || c->wandb) {
    char *dir = tl_tfevents_dir(c->run.output, c->tensorboard, c->wandb);
    tl_tfevents_train s = {.step = r->step, .layers = L, .loss_nats = r->loss_acc, .nats_to_bpb = r->run->nats_to_bpb,
                           .lr = lr, .grad_norm = gnorm, .tokens_per_s = tok_s, .step_s = step_s};
    tl_tfevents_train_step(dir, &s);
    free(dir);
  }
  double elapsed = tl_now() - r->t_start;
  int64_t done = r->step - r->step0;
  double eta = done > 0 ? elapsed / (double)done * (double)(c->num_steps - r->step) : -1;
  char eta_s[32];
  tl_fmt_duration(eta, eta_s, sizeof eta_s);
  double shown = bpb ? loss * r->run->nats_to_bpb : loss;
  const char *unit = bpb ? "bits/byte" : "nats/token";
  if (r->tty) {
    fprintf(stderr, "\rstep %lld/%ld | %.0f tok/s | ETA %s | loss %.4f %s | lr %.3g   ", (long long)r->step,
            c->num_steps, tok_s, eta_s, shown, unit, lr);
    if (r->step == c->num_steps) fputc('\n', stderr);
  } else {
    long every = c->num_steps / 20 > 0 ? c->num_steps / 20 : 1;
    /* a log file gets a line at every 5% and at least every 30 s */
    if (r->step % every == 0 || r->step == c->num_steps || r->step == r->step0 + 1 || tl_now() - r->t_line >= 30) {
      r->t_line = tl_now();
      tl_info("step %lld/%ld | %.0f tok/s | ETA %s | loss %.4f %s | grad norm %.3g | lr %.3g", (long long)r->step,
              c->num_steps, tok_s, eta_s, shown, unit, gnorm, lr);
    }
  }
}

static int export_lens(tl_trainer *r) {
  const tl_train_cfg *c = r->c;
  tl_lens_config lc = {0};
  lc.base_model_name_or_path = c->run.model;
  lc.d_model = r->run->mc.d_model;
  lc.num_hidden_layers = r->run->mc.n_layers;
  lc.bias = true;
  lc.base_model_revision = c->run.revision;
  lc.unembed_hash = r->run->unembed_hash;
  /* the reference saves the lens in the unembedding's dtype */
  tl_dtype dt = r->run->mc.dtype == TL_F16 || r->run->mc.dtype == TL_BF16 ? r->run->mc.dtype : TL_F32;
  for (int64_t k = 0; k < r->lens.n_params; k++)
    if (!isfinite(r->lens.params[k]))
      return tl_fail("the trained lens holds a non-finite value (parameter %lld); not exported", (long long)k);
  TL_TRY(tl_lens_dir_save(c->run.output, &lc, r->lens.params, dt));
  tl_info("lens written to %s (config.json + params.pt)", c->run.output);
  if (c->hub_layout) {
    char *name = tl_lens_hub_name(c->run.model); /* the rule tlens export uses */
    char *sub = tl_sprintf("lens/%s", name);
    char *dir = tl_path_join(c->hub_layout, sub);
    int rc = tl_mkdirs(dir);
    if (rc == 0) rc = tl_lens_dir_save(dir, &lc, r->lens.params, dt);
    if (rc == 0) tl_info("lens written to %s", dir);
    free(name);
    free(sub);
    free(dir);
    TL_TRY(rc);
  }
  return 0;
}

static void trainer_free(tl_trainer *r) {
  if (r->metrics) fclose(r->metrics);
  free(r->grad);
  tl_lens_ws_free(r->lcfg.ws);
  r->lcfg.ws = NULL;
  free(r->zero_grad);
  free(r->idx);
  free(r->ids);
  free(r->hidden);
  free(r->losses);
  free(r->loss_acc);
  free(r->ckpt_dir);
  free(r->forced_from);
  tl_sampler_free(&r->sampler);
  tl_optim_free(&r->opt);
  tl_lens_free(&r->lens);
}

static int train_body(tl_trainer *r, tl_train_end *end) {
  const tl_train_cfg *c = r->c;
  tl_dist *d = &r->run->dist;
  TL_TRY(tl_train_cfg_check(c));
  /* with --fsdp on several ranks, each loads only its slice of every layer */
  tl_run_opts o = tl_run_opts_of(&c->run);
  TL_TRY(tl_run_open(r->run, &o));
  r->T = r->run->T;
  TL_TRY(tl_dist_agree(d, plan_batches(r)));
  TL_TRY(tl_dist_agree(d, init_lens_and_optim(r)));
  r->ckpt_dir = c->checkpoint_dir ? tl_strdup(c->checkpoint_dir) : tl_path_join(c->run.output, "checkpoints");
  TL_TRY(tl_dist_agree(d, tl_train_resume(r)));

  int L = r->run->mc.n_layers, B = (int)r->B, T = (int)r->T;
  r->idx = tl_malloc((size_t)(r->acc * r->B) * sizeof(int64_t));
  r->ids = tl_malloc((size_t)B * T * sizeof(int32_t));
  r->hidden = tl_aligned_alloc((size_t)(L + 1) * B * T * r->run->mc.d_model * sizeof(float));
  /* The model's final distribution is made by the lens step from the last
   * hidden state, a chunk of positions at a time: no [B,T,V] logits tensor
   * (at T 2048 and V 50k that alone would be 400 MB per sample). */
  r->lcfg.final_hidden = r->hidden + (size_t)L * B * T * r->run->mc.d_model;
  r->losses = tl_calloc((size_t)L, sizeof(float));
  r->loss_acc = tl_calloc((size_t)L, sizeof(double));
  if (tl_dist_is_root(d)) {
    char *mpath = tl_path_join(c->run.output, "metrics.jsonl");
    r->metrics = fopen(mpath, "a");
    if (!r->metrics) tl_warn("%s: cannot open the metrics log; continuing without it", mpath);
    if (r->metrics && r->forced_from)
      fprintf(r->metrics, "{\"event\": \"resume_forced\", \"step\": %lld, \"checkpoint\": \"%s\"}\n",
              (long long)r->step, r->forced_from);
    free(mpath);
    r->tty = c->run.progress && isatty(2);
    tl_info("training %s lens on %s: %d streams, d_model %d, %lld samples of %lld tokens per step "
            "(%lld per rank per micro-batch x %lld accumulation steps x %d ranks), %ld steps, from step %lld",
            c->loss, c->run.model, L, r->run->mc.d_model, (long long)r->G, (long long)r->T, (long long)r->B,
            (long long)r->acc, d->world, c->num_steps, (long long)r->step);
  }
  TL_TRY(tl_preempt_install());
  r->t_start = tl_now();
  r->step0 = r->step;
  /* the step the newest checkpoint holds (resumed from, or written since): a stop
   * there writes no second copy. After --force the old one holds other settings. */
  int64_t saved = c->force || r->step == 0 ? -1 : r->step;
  while (r->step < c->num_steps) {
    bool stop = false;
    TL_TRY(tl_dist_preempt_agree(d, &stop));
    if (!stop && c->stop_after > 0 && r->step - r->step0 >= c->stop_after) stop = true;
    if (stop) {
      if (r->tty) fputc('\n', stderr);
      if (saved != r->step) TL_TRY(tl_dist_agree(d, tl_train_checkpoint(r)));
      if (tl_dist_is_root(d)) tl_plot_train_update(c->run.output);
      tl_info("stopped at step %lld of %ld on request (signal %d): checkpoint written; run again to resume",
              (long long)r->step, c->num_steps, tl_preempt_signal());
      *end = TL_TRAIN_STOPPED;
      return 0;
    }
    /* TLENS_FAULT=stall:S: the last rank stops responding before step S (tests the
     * collective timeout of the others) */
    if (d->rank == d->world - 1 && d->world > 1 && tl_fault("stall", (long)r->step + 1)) sleep(3600);
    double t0 = tl_now(), loss = 0, gnorm = 0, lr = 0;
    TL_TRY(train_step(r, &loss, &gnorm, &lr));
    report_step(r, loss, gnorm, lr, tl_now() - t0);
    if (c->checkpoint_freq > 0 && r->step % c->checkpoint_freq == 0 && r->step < c->num_steps) {
      TL_TRY(tl_dist_agree(d, tl_train_checkpoint(r)));
      saved = r->step;
      if (tl_dist_is_root(d)) tl_plot_train_update(c->run.output);
    }
  }
  /* a final checkpoint marks the run finished, so a rerun only re-exports */
  TL_TRY(tl_dist_agree(d, tl_train_checkpoint(r)));
  if (tl_dist_is_root(d)) tl_plot_train_update(c->run.output);
  int rc = tl_dist_is_root(d) ? export_lens(r) : 0;
  TL_TRY(tl_dist_agree(d, rc));
  *end = TL_TRAIN_DONE;
  return 0;
}

int tl_train_run(const tl_train_cfg *c, tl_run *run, tl_train_end *end) {
  tl_trainer r;
  memset(&r, 0, sizeof r);
  r.c = c;
  r.run = run;
  *end = TL_TRAIN_DONE;
  int rc = train_body(&r, end);
  if (rc != 0 && r.tty) fputc('\n', stderr); /* end the progress line before the error */
  trainer_free(&r);
  return rc;
}
