/* --config FILE: the input is the JSON file, given to train's option parser as
 * `train --config FILE` (tl_args_parse reads it from disk, so it goes through tmpfs),
 * then once more with a few command-line flags that override it. */
#include "fuzz.h"
#include "fuzz_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  char *path = fuzz_write_shm("config.json", data, size);
  char *a1[] = {"train", "--config", path, NULL};
  fuzz_parse_train(3, a1);
  char *a2[] = {"train", "--num_steps", "5", "--config", path, "--data.name", "a.jsonl", "b.jsonl", "-o", "out", NULL};
  fuzz_parse_train(10, a2);
  free(path);
  return 0;
}
