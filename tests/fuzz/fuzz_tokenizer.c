/* tokenizer.json: loaded by tl_tokenizer_load (from a tmpfs file, alone in its folder,
 * so no tokenizer_config.json is found), then a short text with ASCII, multi-byte
 * UTF-8, digits, spaces and the usual special-token spellings is encoded with and
 * without special tokens and the ids decoded back, as chunking and `tlens tokenize` do. */
#include "fuzz.h"
#include "tlens/tokenizer.h"

/* (UTF-8 spelled out: u-umlaut n i-diaeresis c o-umlaut d e-acute, U+2581, an emoji) */
static const char TEXT[] = "Hello world, the quick brown fox. \xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 "
                           "\xe2\x96\x81 \xf0\x9f\x98\x80 12345  \t\n <|endoftext|></s><s> <unk> don't";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  char *path = fuzz_write_shm("tokenizer.json", data, size);
  tl_tokenizer *t;
  if (tl_tokenizer_load(&t, path) == 0) {
    int32_t V = tl_tokenizer_vocab_size(t);
    for (int special = 0; special < 2; special++) {
      int32_t *ids = NULL;
      size_t n = 0;
      if (tl_tokenizer_encode(t, TEXT, sizeof TEXT - 1, special, &ids, &n) == 0) {
        for (size_t i = 0; i < n; i++)
          if (ids[i] < 0 || ids[i] >= V) abort(); /* an id the model's embedding cannot hold */
        char *back = NULL;
        if (tl_tokenizer_decode(t, ids, n, &back) == 0) free(back);
      }
      free(ids);
    }
    (void)tl_tokenizer_id_to_token(t, 0);
    tl_tokenizer_free(t);
  }
  free(path);
  return 0;
}
