/* Checkpoints of a training run: what a resumed run needs to continue bit for bit.
 *
 * Items (HDF5 paths; see include/tlens/ckpt.h for the file format):
 *   lens/<i>/weight [d,d], lens/<i>/bias [d]         translators
 *   optim/<state> [n_params]                         flat optimizer state, state-dict layout
 *                                                    (momentum_buffer | exp_avg, exp_avg_sq,
 *                                                    max_exp_avg_sq); sharded under --zero
 *   optim/step, schedule/step                        optimizer steps taken, scheduler position
 *   data/epoch, data/position, data/samples_per_step the sampler cursor and batch size
 *   rng/seed                                         the shuffle seed (the only randomness)
 *   run/config                                       the run's settings as JSON
 *   model/config_hash, model/unembed_hash            which model the lens belongs to */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/ckpt.h"
#include "tlens/core.h"
#include "train/train_internal.h"

static const char *state_names_sgd[] = {"optim/momentum_buffer"};
static const char *state_names_adam[] = {"optim/exp_avg", "optim/exp_avg_sq", "optim/max_exp_avg_sq"};

static const char **state_names(const tl_optim *o) {
  return o->kind == TL_OPT_ADAM ? state_names_adam : state_names_sgd;
}

static float *state_array(tl_optim *o, int k) { return k == 0 ? o->m : k == 1 ? o->v : o->vmax; }

/* The settings that define the run, by their command-line names. */
static char *config_json(const tl_trainer *r) {
  const tl_train_cfg *c = r->c;
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "model.name", c->run.model);
  cJSON_AddStringToObject(j, "data.name", c->run.data);
  cJSON_AddStringToObject(j, "text_column", c->run.text_column);
  /* what the data and its tokens are, whatever the files are called */
  char hex[65];
  tl_data_source_hash(r->run->data, hex);
  cJSON_AddStringToObject(j, "data.source_sha256", hex);
  cJSON_AddStringToObject(j, "tokenizer.hash", r->run->tok ? tl_tokenizer_hash(r->run->tok) : "none");
  cJSON_AddBoolToObject(j, "dataset_shuffle", c->run.dataset_shuffle);
  if (c->run.dataset_shuffle) cJSON_AddNumberToObject(j, "dataset_shuffle_seed", (double)c->run.dataset_shuffle_seed);
  cJSON_AddNumberToObject(j, "max_seq_len", (double)c->run.max_seq_len);
  cJSON_AddNumberToObject(j, "per_gpu_batch_size", (double)c->run.per_gpu_batch_size);
  cJSON_AddNumberToObject(j, "tokens_per_step", (double)c->tokens_per_step);
  cJSON_AddNumberToObject(j, "num_steps", (double)c->num_steps);
  cJSON_AddNumberToObject(j, "seed", (double)c->seed);
  cJSON_AddBoolToObject(j, "dataloader_shuffle", c->run.shuffle);
  cJSON_AddStringToObject(j, "loss", c->loss);
  cJSON_AddNumberToObject(j, "token_shift", (double)tl_lens_shift(&r->lcfg));
  cJSON_AddBoolToObject(j, "bias_only", c->bias_only);
  cJSON_AddStringToObject(j, "optimizer", c->optimizer);
  cJSON_AddStringToObject(j, "lens_precision", tl_lens_ws_precision(r->lcfg.ws) == TL_LENS_GEMM_BF16 ? "bf16" : "fp32");
  cJSON_AddNumberToObject(j, "lr_scale", c->lr_scale);
  cJSON_AddNumberToObject(j, "momentum", c->momentum);
  cJSON_AddNumberToObject(j, "weight_decay", c->weight_decay);
  cJSON_AddNumberToObject(j, "warmup_steps", (double)r->warmup);
  cJSON_AddBoolToObject(j, "fsdp", c->run.fsdp);
  cJSON_AddBoolToObject(j, "zero", c->zero);
  cJSON_AddNumberToObject(j, "world_size", r->run->dist.world);
  if (c->lens_init) cJSON_AddStringToObject(j, "lens_name_or_path", c->lens_init);
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s;
}

int tl_train_checkpoint(tl_trainer *r) {
  tl_ckpt_writer *w = NULL;
  TL_TRY(tl_ckpt_begin(&w, &r->run->dist, r->ckpt_dir, (uint64_t)r->step));
  int rc = 0, L = r->lens.n_layers, d = r->lens.d_model;
  for (int i = 0; i < L && rc == 0; i++) {
    char name[64];
    uint64_t ws[2] = {(uint64_t)d, (uint64_t)d}, bs[1] = {(uint64_t)d};
    snprintf(name, sizeof name, "lens/%d/weight", i);
    rc = tl_ckpt_add_f32(w, name, 2, ws, r->lens.params + tl_lens_weight_off(&r->lens, i));
    snprintf(name, sizeof name, "lens/%d/bias", i);
    if (rc == 0) rc = tl_ckpt_add_f32(w, name, 1, bs, r->lens.params + tl_lens_bias_off(&r->lens, i));
  }
  /* TLENS_FAULT=ckpt_kill:S: rank 0 dies half-way through writing the checkpoint of
   * step S, as a node lost mid-write (the chaos test) */
  if (rc == 0 && r->run->dist.rank == 0 && tl_fault("ckpt_kill", (long)r->step)) raise(SIGKILL);
  uint64_t n = (uint64_t)r->lens.n_params;
  for (int k = 0; k < tl_optim_n_state(r->opt.kind) && rc == 0; k++) {
    if (r->zero_grad) /* ZeRO: every rank writes its own slice of the flat state */
      rc = tl_ckpt_add_f32_sharded(w, state_names(&r->opt)[k], 1, &n, (uint64_t)r->opt.off, (uint64_t)r->opt.n,
                                   state_array(&r->opt, k));
    else
      rc = tl_ckpt_add_f32(w, state_names(&r->opt)[k], 1, &n, state_array(&r->opt, k));
  }
  tl_cursor cur = tl_sampler_cursor(&r->sampler);
  struct {
    const char *name;
    uint64_t v;
  } scalars[] = {
      {"optim/step", (uint64_t)r->opt.step}, {"schedule/step", (uint64_t)r->step},
      {"data/epoch", (uint64_t)cur.epoch},   {"data/position", (uint64_t)cur.pos},
      {"data/samples_per_step", (uint64_t)r->G}, {"rng/seed", (uint64_t)r->c->seed},
  };
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0] && rc == 0; i++)
    rc = tl_ckpt_add_u64(w, scalars[i].name, 0, NULL, &scalars[i].v);
  char *cfg = config_json(r);
  if (rc == 0) rc = tl_ckpt_add_str(w, "run/config", cfg);
  free(cfg);
  if (rc == 0) rc = tl_ckpt_add_str(w, "model/config_hash", r->run->mc.config_hash);
  if (rc == 0) rc = tl_ckpt_add_str(w, "model/unembed_hash", r->run->unembed_hash);
  char *path = NULL;
  rc = tl_ckpt_commit(w, (int)r->c->checkpoint_keep, &path); /* fails (and cleans up) after a failed add */
  if (rc == 0) tl_info("checkpoint %s", path);
  free(path);
  return rc;
}

/* The first non-finite value of an array read from the checkpoint, named. */
static int check_finite(tl_ckpt_reader *rd, const char *what, const float *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return tl_fail("%s: %s holds a non-finite value (%g at element %zu); the checkpoint cannot be resumed",
                     tl_ckpt_file(rd), what, (double)v[i], i);
  return 0;
}

static int read_u64(tl_ckpt_reader *rd, const char *name, uint64_t *v) {
  return tl_ckpt_read_u64(rd, name, 0, 1, v);
}

int tl_train_resume(tl_trainer *r) {
  char *path = NULL;
  uint64_t step = 0;
  int found = tl_ckpt_find_latest(&r->run->dist, r->ckpt_dir, &path, &step);
  if (found <= 0) return found;
  tl_ckpt_reader *rd = NULL;
  if (tl_ckpt_open(&rd, path, false) != 0) {
    free(path);
    return -1;
  }
  free(path);
  /* the same model, and the settings that shape the trajectory */
  tl_ckpt_expect ident[] = {{"model/config_hash", r->run->mc.config_hash}, {"model/unembed_hash", r->run->unembed_hash}};
  static const char *keys[] = {"max_seq_len", "tokens_per_step", "num_steps", "seed", "dataloader_shuffle",
                               "loss", "token_shift", "bias_only", "optimizer", "lr_scale", "momentum",
                               "weight_decay", "warmup_steps", "text_column", "lens_precision",
                               "data.source_sha256", "tokenizer.hash", "dataset_shuffle", "dataset_shuffle_seed"};
  char *cfg = config_json(r);
  int rc = tl_ckpt_check_compat(rd, ident, 2, "run/config", cfg, keys, (int)(sizeof keys / sizeof keys[0]),
                                r->c->force);
  free(cfg);
  uint64_t G = 0, ostep = 0, sstep = 0, epoch = 0, pos = 0;
  if (rc == 0) rc = read_u64(rd, "data/samples_per_step", &G);
  if (rc == 0 && G != (uint64_t)r->G && !r->c->force)
    rc = tl_fail("%s: the checkpoint took %llu samples per step, this run takes %lld (batch size x ranks "
                 "differs and tokens_per_step is not a multiple of it); use --force to continue anyway",
                 tl_ckpt_file(rd), (unsigned long long)G, (long long)r->G);
  if (rc == 0) rc = read_u64(rd, "optim/step", &ostep);
  if (rc == 0) rc = read_u64(rd, "schedule/step", &sstep);
  if (rc == 0) rc = read_u64(rd, "data/epoch", &epoch);
  if (rc == 0) rc = read_u64(rd, "data/position", &pos);
  int L = r->lens.n_layers, d = r->lens.d_model;
  for (int i = 0; i < L && rc == 0; i++) {
    char name[64];
    snprintf(name, sizeof name, "lens/%d/weight", i);
    rc = tl_ckpt_read_f32(rd, name, 0, (uint64_t)d * d, r->lens.params + tl_lens_weight_off(&r->lens, i));
    snprintf(name, sizeof name, "lens/%d/bias", i);
    if (rc == 0) rc = tl_ckpt_read_f32(rd, name, 0, (uint64_t)d, r->lens.params + tl_lens_bias_off(&r->lens, i));
  }
  for (int k = 0; k < tl_optim_n_state(r->opt.kind) && rc == 0; k++)
    rc = tl_ckpt_read_f32(rd, state_names(&r->opt)[k], (uint64_t)r->opt.off, (uint64_t)r->opt.n,
                          state_array(&r->opt, k));
  /* every number read back is checked against the others and this run's settings
   * (a CRC only proves the file is as written, not that it was written by us) */
  if (rc == 0 && sstep > (uint64_t)r->c->num_steps)
    rc = tl_fail("%s: schedule/step %llu is beyond this run's --num_steps %ld", tl_ckpt_file(rd),
                 (unsigned long long)sstep, r->c->num_steps);
  if (rc == 0 && sstep != tl_ckpt_step(rd))
    rc = tl_fail("%s: schedule/step %llu differs from the file's step %llu", tl_ckpt_file(rd),
                 (unsigned long long)sstep, (unsigned long long)tl_ckpt_step(rd));
  if (rc == 0 && ostep != sstep)
    rc = tl_fail("%s: optim/step %llu differs from schedule/step %llu", tl_ckpt_file(rd), (unsigned long long)ostep,
                 (unsigned long long)sstep);
  if (rc == 0 && (epoch > (uint64_t)INT32_MAX || pos > (uint64_t)INT64_MAX))
    rc = tl_fail("%s: data/epoch %llu, data/position %llu: out of range", tl_ckpt_file(rd),
                 (unsigned long long)epoch, (unsigned long long)pos);
  /* a lens or optimizer state holding NaN/Inf would train on to a lens of NaN */
  if (rc == 0) rc = check_finite(rd, "lens", r->lens.params, (size_t)r->lens.n_params);
  for (int k = 0; k < tl_optim_n_state(r->opt.kind) && rc == 0; k++)
    rc = check_finite(rd, state_names(&r->opt)[k], state_array(&r->opt, k), (size_t)r->opt.n);
  if (rc == 0) {
    r->opt.step = (int64_t)ostep;
    r->step = (int64_t)sstep;
    tl_cursor cur = {(int64_t)epoch, (int64_t)pos};
    rc = tl_sampler_restore(&r->sampler, cur);
  }
  if (rc == 0 && r->c->force) r->forced_from = tl_strdup(tl_ckpt_file(rd));
  if (rc == 0)
    tl_info("resuming from %s at step %lld (written by %llu ranks, now %d)", tl_ckpt_file(rd), (long long)r->step,
            (unsigned long long)tl_ckpt_world_size(rd), r->run->dist.world);
  tl_ckpt_close(rd);
  return rc;
}
