/* Pre-tokenized corpora: a .safetensors file holding integer input_ids [N, T], turned
 * into a token cache by tl_data_prepare exactly as `--data.name x.safetensors` does
 * (T = --max_seq_len 128, the fixture's), then the cache is opened with its payload
 * checked and every chunk gathered, as training reads it. Done twice: without a
 * tokenizer (the vocabulary is the largest id + 1) and, when the fixtures are at
 * hand, with the stories260k tokenizer (ids must be below its vocabulary). The cache
 * is removed after each input so tmpfs does not fill up. */
#include "fuzz.h"
#include "tlens/data.h"

#ifndef TLENS_FIXTURES
#define TLENS_FIXTURES ""
#endif

static void one(const char *source, const tl_tokenizer *tok, const char *cache_dir) {
  tl_data_opts o;
  tl_data_opts_default(&o);
  o.cache_dir = cache_dir;
  o.max_seq_len = 128;
  char *cache = NULL;
  int built = 0;
  if (tl_data_prepare(source, tok, &o, &cache, &built) == 0) {
    tl_dataset *d;
    if (tl_data_open(&d, cache, 1) == 0) {
      int64_t n = tl_data_len(d), T = tl_data_seq_len_of(d), V = tl_data_vocab_size(d);
      if (T != 128 || (tok && V > tl_tokenizer_vocab_size(tok))) abort();
      int32_t *ids = malloc((size_t)T * sizeof *ids);
      for (int64_t i = 0; i < n; i++) {
        if (tl_data_gather(d, &i, 1, ids) != 0) abort();
        for (int64_t k = 0; k < T; k++)
          if (ids[k] < 0 || ids[k] >= V) abort();
      }
      free(ids);
      tl_data_close(d);
    }
    unlink(cache);
  }
  free(cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  static tl_tokenizer *tok;
  static int tried;
  if (!tried) {
    tried = 1;
    char *tp = tl_sprintf("%s/tokenizers/stories260k/tokenizer.json", TLENS_FIXTURES);
    if (TLENS_FIXTURES[0] && tl_tokenizer_load(&tok, tp) != 0) tok = NULL;
    free(tp);
  }
  char *source = fuzz_write_shm("corpus.safetensors", data, size);
  char *cache_dir = fuzz_shm_path("cache");
  one(source, NULL, cache_dir);
  if (tok) one(source, tok, cache_dir);
  rmdir(cache_dir);
  free(cache_dir);
  free(source);
  return 0;
}
