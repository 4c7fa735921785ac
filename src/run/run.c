/* Opening and closing what a command needs to run a model (see tlens/run.h). */
#include "tlens/run.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/export.h"

int tl_run_init(tl_run *r, int *argc, char ***argv) {
  memset(r, 0, sizeof *r);
  TL_TRY(tl_dist_init(&r->dist, argc, argv));
  tl_log_set_rank(r->dist.rank);
  return 0;
}

void tl_run_choose_threads(long requested, const tl_dist *d) {
  int n = 0;
  if (requested > 0) n = (int)requested;
  else if (!getenv("OMP_NUM_THREADS")) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    n = (int)(cores / (d->local_world > 0 ? d->local_world : 1));
    if (n < 1) n = 1;
  }
  if (n > 0) {
    omp_set_num_threads(n);
    tl_backend_cpu_set_threads(n);
  }
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

/* <tokenizer or model/tokenizer.json>; pre-tokenized .safetensors data needs none
 * when the model folder has none (r->tok stays NULL). */
static int open_tokenizer(tl_run *r, const tl_run_opts *o) {
  char *path = o->tokenizer ? tl_strdup(o->tokenizer) : tl_path_join(o->model, "tokenizer.json");
  int rc = 0;
  bool pretokenized = o->data && ends_with(o->data, ".safetensors");
  if (!pretokenized || o->tokenizer || tl_file_exists(path)) rc = tl_tokenizer_load(&r->tok, path);
  free(path);
  return tl_dist_agree(&r->dist, rc);
}

/* Rank 0 tokenizes the corpus into the token cache once (reused while valid);
 * the other ranks wait for it, then every rank maps the same file. */
static int open_dataset(tl_run *r, const tl_run_opts *o) {
  tl_dist *d = &r->dist;
  tl_data_opts dopts;
  tl_data_opts_default(&dopts);
  if (o->text_column) dopts.text_column = o->text_column;
  dopts.max_seq_len = o->max_seq_len;
  char *cache_dir = o->cache_dir ? tl_strdup(o->cache_dir) : tl_path_join(o->output, "cache");
  dopts.cache_dir = cache_dir;
  char *cache_path = NULL;
  int rc = 0;
  if (tl_dist_is_root(d)) {
    int built = 0;
    rc = tl_data_prepare(o->data, r->tok, &dopts, &cache_path, &built);
    if (rc == 0 && built) tl_info("tokenized %s into %s", o->data, cache_path);
  }
  rc = tl_dist_agree(d, rc);
  if (rc == 0) {
    if (!cache_path) cache_path = tl_data_cache_path(o->data, r->tok, &dopts);
    rc = tl_data_open(&r->data, cache_path, 0);
  }
  free(cache_path);
  free(cache_dir);
  TL_TRY(tl_dist_agree(d, rc));
  /* identical on every rank: no agreement needed */
  if (tl_data_vocab_size(r->data) > r->mc.vocab)
    return tl_fail("%s: token ids reach %d but the model's vocabulary has %d entries", o->data,
                   tl_data_vocab_size(r->data), r->mc.vocab);
  r->T = tl_data_seq_len_of(r->data);
  r->nats_to_bpb = tl_data_nats_to_bpb(r->data);
  return 0;
}

int tl_run_open(tl_run *r, const tl_run_opts *o) {
  tl_dist *d = &r->dist;
  if (!o->model || !*o->model) return tl_fail("--model.name: a model folder is required");
  if (o->data && !o->output && !o->cache_dir) return tl_fail("internal: a corpus needs an output or cache folder");
  tl_run_choose_threads(o->threads, d);
  int rc = o->fsdp_slices && d->world > 1 ? tl_model_load_sliced(&r->model, o->model, d->world, d->rank)
                                          : tl_model_load(&r->model, o->model);
  TL_TRY(tl_dist_agree(d, rc));
  r->mc = *tl_model_cfg(r->model);
  TL_TRY(tl_model_unembed(r->model, &r->u));
  TL_TRY(tl_unembed_hash(r->u.W_U, r->u.vocab, r->u.d_model, r->unembed_hash));
  r->nats_to_bpb = NAN;
  if (!o->data) return 0;
  TL_TRY(open_tokenizer(r, o));
  if (o->output) TL_TRY(tl_dist_agree(d, tl_dist_is_root(d) ? tl_mkdirs(o->output) : 0));
  return open_dataset(r, o);
}

void tl_run_close(tl_run *r) {
  if (r->data) tl_data_close(r->data);
  if (r->tok) tl_tokenizer_free(r->tok);
  if (r->model) tl_model_free(r->model);
  r->data = NULL, r->tok = NULL, r->model = NULL;
  tl_dist_finalize(&r->dist);
}
