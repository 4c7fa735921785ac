/* Opening and closing what a command needs to run a model (see tlens/run.h). */
#include "tlens/run.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/model.h"

void tl_run_cfg_default(tl_run_cfg *c) {
  memset(c, 0, sizeof *c);
  c->precision = tl_strdup("auto");
  c->split = tl_strdup("validation");
  c->text_column = tl_strdup("text");
  c->max_seq_len = 2048;
  c->dataset_shuffle_seed = 42;
  c->nccl_timeout = 1200;
  c->per_gpu_batch_size = 1;
  c->shuffle = true;
  c->progress = true;
}

void tl_run_cfg_free(tl_run_cfg *c) {
  char **strs[] = {&c->model, &c->revision, &c->tokenizer, &c->precision, &c->tokenizer_type, &c->data, &c->split,
                   &c->text_column, &c->data_revision, &c->output, &c->cache_dir};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
}

int tl_run_cfg_check(const tl_run_cfg *c) {
  if (!c->model || !*c->model) return tl_fail("--model.name: a model folder is required");
  if (!c->data || !*c->data) return tl_fail("--data.name: a corpus (.jsonl, .jsonl.zst or .safetensors) is required");
  if (!c->output || !*c->output) return tl_fail("--output: an output folder is required");
  if (c->max_seq_len < 2) return tl_fail("--max_seq_len: expected at least 2, got %ld", c->max_seq_len);
  if (c->per_gpu_batch_size < 1) return tl_fail("--per_gpu_batch_size: expected at least 1");
  if (c->nccl_timeout < 1) return tl_fail("--nccl_timeout: expected at least 1 second");
  return tl_run_check_precision(c->precision);
}

tl_run_opts tl_run_opts_of(const tl_run_cfg *c) {
  return (tl_run_opts){.model = c->model, .revision = c->revision, .tokenizer = c->tokenizer, .data = c->data, .split = c->split,
                       .text_column = c->text_column, .max_seq_len = c->max_seq_len, .output = c->output,
                       .cache_dir = c->cache_dir, .threads = c->threads, .fsdp_slices = c->fsdp,
                       .allow_nonfinite = c->allow_nonfinite, .precision = c->precision,
                       .dataset_shuffle = c->dataset_shuffle, .dataset_shuffle_seed = (uint64_t)c->dataset_shuffle_seed,
                       .collective_timeout = c->nccl_timeout, .cpu_offload = c->cpu_offload,
                       .progress_bar = c->progress};
}

int tl_run_init(tl_run *r, int *argc, char ***argv) {
  memset(r, 0, sizeof *r);
  r->lock_fd = -1;
  TL_TRY(tl_dist_init(&r->dist, argc, argv));
  tl_log_set_rank(r->dist.rank);
  return 0;
}

/* The launcher variables that say how many processes were meant. */
static int env_count(const char *name, long *out) {
  const char *v = getenv(name);
  *out = -1;
  if (!v || !*v) return 0;
  char *end = NULL;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || x < 0) return tl_fail("%s='%s': expected a non-negative integer", name, v);
  *out = x;
  return 0;
}

int tl_run_check_launch(const tl_run *r) {
  if (r->dist.world > 1) return 0;
  long world = -1, rank = -1, local = -1, tasks = -1;
  TL_TRY(env_count("WORLD_SIZE", &world));
  TL_TRY(env_count("RANK", &rank));
  TL_TRY(env_count("LOCAL_RANK", &local));
  TL_TRY(env_count("SLURM_NTASKS", &tasks));
  if (world > 1 || rank > 0 || local > 0)
    return tl_fail("WORLD_SIZE=%ld RANK=%ld (a torchrun-style launch) but MPI started a single rank: every process "
                   "would train alone into the same folder; launch with `mpirun -np N tlens ...` or "
                   "`srun --mpi=pmix tlens ...`", world, rank);
  if (tasks > 1)
    return tl_fail("SLURM_NTASKS=%ld but MPI started a single rank: launch with `srun --mpi=pmix tlens ...` "
                   "(or `mpirun -np %ld tlens ...`) inside the job", tasks, tasks);
  return 0;
}

int tl_run_check_precision(const char *p) {
  if (!p || !strcmp(p, "auto") || !strcmp(p, "bfloat16") || !strcmp(p, "float16") || !strcmp(p, "float32")) return 0;
  if (!strcmp(p, "int8"))
    return tl_fail("--precision int8: 8-bit weights need bitsandbytes on a GPU, which tlens does not use; choose "
                   "auto, bfloat16, float16 or float32");
  return tl_fail("--precision: expected auto, bfloat16, float16 or float32, got '%s'", p);
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
  char *path = o->tokenizer ? tl_strdup(o->tokenizer) : tl_path_join(r->model_dir, "tokenizer.json");
  int rc = 0;
  bool pretokenized = o->data && ends_with(o->data, ".safetensors");
  if (!pretokenized || o->tokenizer || tl_file_exists(path)) rc = tl_tokenizer_load(&r->tok, path);
  free(path);
  return tl_dist_agree(&r->dist, rc);
}

static bool is_corpus_name(const char *s) {
  return ends_with(s, ".jsonl") || ends_with(s, ".jsonl.zst") || ends_with(s, ".safetensors");
}

/* Appends the matches of a glob pattern (sorted by glob); returns how many. */
static int add_glob(const char *pattern, bool corpora_only, char ***files, int *n, int *cap) {
  glob_t g;
  int found = 0;
  if (glob(pattern, 0, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) {
      if (corpora_only && !is_corpus_name(g.gl_pathv[i])) continue;
      if (*n == *cap) *files = tl_realloc(*files, (size_t)(*cap = *cap ? 2 * *cap : 8) * sizeof **files);
      (*files)[(*n)++] = tl_strdup(g.gl_pathv[i]);
      found++;
    }
  }
  globfree(&g);
  return found;
}

int tl_run_corpus_files(const char *data, const char *split, char ***files, int *n) {
  *files = NULL;
  *n = 0;
  int cap = 0;
  const char *p = data;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char *e = tl_malloc(len + 1);
    memcpy(e, p, len);
    e[len] = 0;
    int found = 0;
    if (!*e) {
      found = -1; /* blank entry: skipped */
    } else if (strpbrk(e, "*?[")) {
      found = add_glob(e, false, files, n, &cap);
    } else if (tl_is_dir(e)) {
      const char *s = split && *split ? split : "validation";
      static const char *shapes[] = {"%s/%s-*.jsonl", "%s/%s-*.jsonl.zst", "%s/%s/*.jsonl", "%s/%s/*.jsonl.zst",
                                     "%s/data/%s-*.jsonl", "%s/data/%s-*.jsonl.zst"};
      for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        char *pat = tl_sprintf(shapes[k], e, s);
        found += add_glob(pat, true, files, n, &cap);
        free(pat);
      }
      if (found == 0) {
        char *pat = tl_sprintf("%s/*.jsonl", e), *pz = tl_sprintf("%s/*.jsonl.zst", e);
        found = add_glob(pat, true, files, n, &cap) + add_glob(pz, true, files, n, &cap);
        free(pat);
        free(pz);
      }
    } else {
      if (*n == cap) *files = tl_realloc(*files, (size_t)(cap = cap ? 2 * cap : 8) * sizeof **files);
      (*files)[(*n)++] = tl_strdup(e);
      found = 1;
    }
    if (found == 0) {
      int rc = tl_fail("--data.name %s: no corpus file there (a folder needs %s-*.jsonl[.zst], %s/*.jsonl[.zst], "
                       "data/%s-*.jsonl[.zst] or *.jsonl[.zst] files)", e, split ? split : "validation",
                       split ? split : "validation", split ? split : "validation");
      free(e);
      tl_run_corpus_files_free(*files, *n);
      *files = NULL, *n = 0;
      return rc;
    }
    free(e);
    p = nl ? nl + 1 : p + len;
  }
  if (*n == 0) return tl_fail("--data.name: no corpus given");
  return 0;
}

void tl_run_corpus_files_free(char **files, int n) {
  for (int i = 0; i < n; i++) free(files[i]);
  free(files);
}

/* Rank 0 tokenizes the corpus into the token cache once (reused while valid);
 * the other ranks wait for it, then every rank maps the same file. */
static int open_dataset(tl_run *r, const tl_run_opts *o, char **files, int nfiles) {
  tl_dist *d = &r->dist;
  tl_data_opts dopts;
  tl_data_opts_default(&dopts);
  if (o->text_column) dopts.text_column = o->text_column;
  dopts.shuffle_docs = o->dataset_shuffle;
  dopts.more_sources = (const char *const *)files + 1;
  dopts.n_more = nfiles - 1;
  const char *first = files[0];
  dopts.shuffle_seed = o->dataset_shuffle_seed;
  dopts.max_seq_len = o->max_seq_len;
  char *cache_dir = o->cache_dir ? tl_strdup(o->cache_dir) : tl_path_join(o->output, "cache");
  dopts.cache_dir = cache_dir;
  char *cache_path = NULL;
  int rc = 0;
  if (tl_dist_is_root(d)) {
    int built = 0;
    rc = tl_data_prepare(first, r->tok, &dopts, &cache_path, &built);
    if (rc == 0 && built) tl_info("tokenized %s into %s", first, cache_path);
  }
  rc = tl_dist_agree(d, rc);
  if (rc == 0) {
    if (!cache_path) cache_path = tl_data_cache_path(first, r->tok, &dopts);
    rc = tl_data_open(&r->data, cache_path, 0);
  }
  free(cache_path);
  free(cache_dir);
  TL_TRY(tl_dist_agree(d, rc));
  /* identical on every rank: no agreement needed */
  if (tl_data_vocab_size(r->data) > r->mc.vocab)
    return tl_fail("%s: token ids reach %d but the model's vocabulary has %d entries", first,
                   tl_data_vocab_size(r->data), r->mc.vocab);
  r->T = tl_data_seq_len_of(r->data);
  r->nats_to_bpb = tl_data_nats_to_bpb(r->data);
  return 0;
}

/* ---- FSDP: each rank keeps 1/W of every layer blob; the hook gathers it back ---- */
static int fsdp_fetch(void *ctx, tl_model *m, int layer, const float **blob) {
  tl_run *r = ctx;
  const void *full = NULL;
  TL_TRY(tl_fsdp_wait(r->fsdp, layer, &full));
  *blob = full;
  /* start the next layer's gather now so it overlaps this layer's compute */
  if (layer + 1 < r->mc.n_layers) TL_TRY(tl_fsdp_prefetch(r->fsdp, layer + 1));
  return 0;
}

/* The gathered buffer is reused by the gather two layers on: nothing to give back. */
static int fsdp_release(void *ctx, tl_model *m, int layer, const float *blob) { return 0; }

/* The model was loaded sliced (tl_model_load_sliced): rank r holds slice r of
 * every layer, taken over here; tl_fsdp gathers them back layer by layer, the
 * next layer's gather overlapping this layer's compute. */
static int setup_fsdp(tl_run *r) {
  int L = r->mc.n_layers;
  size_t numel = tl_model_layer_numel(r->model), off = 0, cnt = 0;
  size_t *sizes = tl_malloc((size_t)L * sizeof *sizes);
  r->fsdp_slices = tl_calloc((size_t)L, sizeof(float *));
  for (int l = 0; l < L; l++) {
    sizes[l] = numel;
    r->fsdp_slices[l] = tl_model_take_layer_slice(r->model, l, &off, &cnt);
    if (!r->fsdp_slices[l]) {
      free(sizes);
      return tl_fail("internal: the model was not loaded in slices");
    }
  }
  int rc = tl_fsdp_create(&r->fsdp, &r->dist, L, sizes, sizeof(float), (const void *const *)r->fsdp_slices);
  free(sizes);
  if (rc != 0) return -1;
  r->hook.fetch = fsdp_fetch;
  r->hook.release = fsdp_release;
  r->hook.ctx = r;
  tl_model_set_layer_hook(r->model, &r->hook);
  tl_info("fsdp: each rank keeps %zu of %zu floats per layer (%d layers)", cnt, numel, L);
  return 0;
}


/* What --precision made of the model: the dtype its weights are held in, and
 * that compute is fp32 on the CPU whatever they are held in. */
static void report_precision(const tl_run *r, const tl_run_opts *o) {
  if (!tl_dist_is_root(&r->dist)) return;
  const tl_dtype held = tl_model_held_dtype(r->model);
  const double mb = (double)tl_model_layer_numel(r->model) * r->mc.n_layers * tl_dtype_size(held) / 1e6;
  const char *p = o->precision ? o->precision : "auto";
  if (held != TL_F32)
    tl_info("--precision %s: the frozen layers are held in %s (%.1f MB), each widened to fp32 just before it runs; "
            "embeddings and unembedding keep fp32 storage with %s values; the CPU computes in fp32", p,
            tl_dtype_name(held), mb, tl_dtype_name(held));
  else if (r->mc.dtype != TL_F32 || (strcmp(p, "auto") && strcmp(p, "float32")))
    tl_info("--precision %s: the frozen model is held in fp32%s and the CPU computes in fp32", p,
            o->fsdp_slices && r->dist.world > 1 ? " (--fsdp keeps its layer slices in fp32, with the chosen dtype's values)" : "");
}

/* One run per output folder: an exclusive flock on <output>/.tlens.lock, held for
 * the life of the process (the kernel drops it when the process dies, so kill -9
 * leaves no stale lock). The file names the holder for the next one's message. */
static int lock_output(tl_run *r, const char *output) {
  char *path = tl_path_join(output, ".tlens.lock");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int rc = tl_fail("%s: cannot create the lock file: %s", path, strerror(errno));
    free(path);
    return rc;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char holder[256] = "";
    ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = 0;
    holder[strcspn(holder, "\n")] = 0;
    close(fd);
    int rc = err == EWOULDBLOCK
                 ? tl_fail("%s: the output folder is in use by another tlens run (%s); wait for it or choose "
                           "another --output", output, holder[0] ? holder : "holder unknown")
                 : tl_fail("%s: cannot lock: %s", path, strerror(err));
    free(path);
    return rc;
  }
  char host[128] = "?";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = 0;
  char line[256];
  int len = snprintf(line, sizeof line, "host %s, pid %ld\n", host, (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len)
    tl_warn("%s: cannot record the lock holder: %s", path, strerror(errno));
  free(path);
  r->lock_fd = fd;
  return 0;
}

int tl_run_open(tl_run *r, const tl_run_opts *o) {
  tl_dist *d = &r->dist;
  if (!o->model || !*o->model) return tl_fail("--model.name: a model folder is required");
  if (o->data && !o->output && !o->cache_dir) return tl_fail("internal: a corpus needs an output or cache folder");
  TL_TRY(tl_run_check_precision(o->precision));
  tl_run_choose_threads(o->threads, d);
  tl_model_allow_nonfinite(o->allow_nonfinite);
  if (o->collective_timeout > 0) TL_TRY(tl_dist_set_timeout(d, (double)o->collective_timeout));
  if (tl_dist_is_root(d) && o->cpu_offload)
    tl_info("--cpu_offload: the CPU backend keeps every layer in host memory already");
  int hold;
  TL_TRY(tl_model_parse_precision(o->precision ? o->precision : "auto", &hold));
  tl_model_hold_precision(hold);
  tl_model_progress_bar(o->progress_bar);
  /* a hub id is looked up in the Hugging Face cache; the id stays what the lens records */
  char *dir = NULL;
  TL_TRY(tl_dist_agree(d, tl_model_resolve(o->model, o->revision, &dir)));
  int rc = o->fsdp_slices && d->world > 1 ? tl_model_load_sliced(&r->model, dir, d->world, d->rank)
                                          : tl_model_load(&r->model, dir);
  r->model_dir = dir;
  TL_TRY(tl_dist_agree(d, rc));
  r->mc = *tl_model_cfg(r->model);
  report_precision(r, o);
  if (o->fsdp_slices && d->world > 1) TL_TRY(tl_dist_agree(d, setup_fsdp(r)));
  else if (o->fsdp_slices) tl_info("fsdp: a single rank holds the whole model");
  TL_TRY(tl_model_unembed(r->model, &r->u));
  TL_TRY(tl_unembed_hash(r->u.W_U, r->u.vocab, r->u.d_model, r->unembed_hash));
  r->nats_to_bpb = NAN;
  if (!o->data) return 0;
  TL_TRY(open_tokenizer(r, o));
  if (o->output) {
    rc = 0;
    if (tl_dist_is_root(d)) {
      rc = tl_mkdirs(o->output);
      if (rc == 0) rc = lock_output(r, o->output);
    }
    TL_TRY(tl_dist_agree(d, rc));
  }
  char **files = NULL;
  int nfiles = 0;
  /* every rank expands the names itself (the same folder on a shared file system) */
  TL_TRY(tl_dist_agree(d, tl_run_corpus_files(o->data, o->split, &files, &nfiles)));
  if (nfiles > 1 && tl_dist_is_root(d)) tl_info("corpus: %d files, read in order as one", nfiles);
  rc = open_dataset(r, o, files, nfiles);
  tl_run_corpus_files_free(files, nfiles);
  return rc;
}

void tl_run_close(tl_run *r) {
  if (r->fsdp) tl_fsdp_free(r->fsdp);
  if (r->fsdp_slices)
    for (int l = 0; l < r->mc.n_layers; l++) free(r->fsdp_slices[l]);
  free(r->fsdp_slices);
  r->fsdp = NULL, r->fsdp_slices = NULL;
  if (r->data) tl_data_close(r->data);
  if (r->tok) tl_tokenizer_free(r->tok);
  if (r->model) tl_model_free(r->model);
  r->data = NULL, r->tok = NULL, r->model = NULL;
  free(r->model_dir);
  r->model_dir = NULL;
  if (r->lock_fd >= 0) close(r->lock_fd);
  r->lock_fd = -1;
  tl_dist_finalize(&r->dist);
}
