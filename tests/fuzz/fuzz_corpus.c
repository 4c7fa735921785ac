/* Text corpora: .jsonl, or .jsonl.zst when the input starts with the zstd frame magic,
 * read to the end with tl_corpus_open / tl_corpus_next as chunking reads them
 * (column "text"). Every document handed out must be valid UTF-8. */
#include "fuzz.h"
#include "data/data_internal.h"
#include "tlens/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
  int zst = size >= 4 && !memcmp(data, zstd_magic, 4);
  char *path = fuzz_write_shm(zst ? "corpus.jsonl.zst" : "corpus.jsonl", data, size);
  tl_corpus *c;
  if (tl_corpus_open(&c, path, "text") == 0) {
    const char *text;
    size_t len;
    int64_t line;
    while (tl_corpus_next(c, &text, &len, &line) == 1)
      if (tl_utf8_invalid_at(text, len) >= 0) abort();
    tl_corpus_close(c);
  }
  free(path);
  return 0;
}
