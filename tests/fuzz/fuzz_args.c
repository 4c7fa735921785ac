/* The command line: the input is split into arguments on NUL bytes (argv[0] "train"
 * first) and parsed with train's option table by tl_args_parse. A "--config" argument
 * names a file, which may well not exist: that is one more rejected input. */
#include "fuzz.h"
#include "fuzz_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  if (size > 1 << 16) return 0;
  char *buf = malloc(size + 1);
  memcpy(buf, data, size);
  buf[size] = 0;
  int argc = 1;
  for (size_t i = 0; i < size; i++) argc += buf[i] == 0;
  char **argv = malloc((size_t)(argc + 2) * sizeof *argv);
  argv[0] = "train";
  int k = 1;
  for (size_t i = 0; i < size; i += strlen(buf + i) + 1) argv[k++] = buf + i;
  argv[k] = NULL;
  fuzz_parse_train(k, argv);
  free(argv);
  free(buf);
  return 0;
}
