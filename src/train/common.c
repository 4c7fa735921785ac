/* Setup steps shared by `tlens train` and `tlens eval`. */
#include <omp.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/train.h"

void tl_choose_threads(long requested, const tl_dist *d) {
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

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

int tl_open_tokenizer(tl_dist *d, const char *model, const char *tokenizer_path, const char *data,
                      tl_tokenizer **tok) {
  *tok = NULL;
  char *path = tokenizer_path ? tl_strdup(tokenizer_path) : tl_path_join(model, "tokenizer.json");
  int rc = 0;
  if (!ends_with(data, ".safetensors") || tokenizer_path || tl_file_exists(path)) rc = tl_tokenizer_load(tok, path);
  free(path);
  return tl_dist_agree(d, rc);
}

int tl_open_dataset(tl_dist *d, const char *data, const tl_tokenizer *tok, const char *text_column,
                    long max_seq_len, const char *cache_dir, tl_dataset **out) {
  *out = NULL;
  tl_data_opts o;
  tl_data_opts_default(&o);
  o.text_column = text_column;
  o.max_seq_len = max_seq_len;
  o.cache_dir = cache_dir;
  char *cache_path = NULL;
  int rc = 0;
  if (tl_dist_is_root(d)) {
    int built = 0;
    rc = tl_data_prepare(data, tok, &o, &cache_path, &built);
    if (rc == 0 && built) tl_info("tokenized %s into %s", data, cache_path);
  }
  rc = tl_dist_agree(d, rc);
  if (rc == 0) {
    if (!cache_path) cache_path = tl_data_cache_path(data, tok, &o);
    rc = tl_data_open(out, cache_path, 0);
  }
  free(cache_path);
  return tl_dist_agree(d, rc);
}
