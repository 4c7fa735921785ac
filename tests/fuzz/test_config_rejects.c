/* --config files the parser must refuse, with one line naming the file and the key:
 * the same option set twice (by one name or by a name and its alias), and integer
 * options given numbers no long holds. Usage: test_config_rejects WORKDIR */
#include <string.h>

#include "fuzz_args.h"
#include "tl_test.h"
#include "tlens/core.h"

int main(int argc, char **argv) {
  CHECK(argc == 2 && tl_mkdirs(argv[1]) == 0);
  const struct {
    const char *json, *want;
  } cases[] = {
      {"{\"num_steps\": 1, \"num_steps\": 2}", "key 'num_steps' sets the same option as key 'num_steps'"},
      {"{\"lr_scale\": 1, \"opt.lr_scale\": 2}", "key 'opt.lr_scale' sets the same option as key 'lr_scale'"},
      {"{\"threads\": 1e30}", "key 'threads': expected an integer"},
      {"{\"seed\": 1e999}", "key 'seed': expected an integer"},
      {"{\"seed\": -1e19}", "key 'seed': expected an integer"},
  };
  char *path = tl_sprintf("%s/config.json", argv[1]);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    CHECK(tl_write_file_atomic(path, cases[k].json, strlen(cases[k].json)) == 0);
    char *a[] = {"train", "--config", path, NULL};
    tl_clear_error();
    int rc = fuzz_parse_train_msg(3, a);
    const char *e = fuzz_last_error;
    CHECKF(rc == TL_ARGS_ERROR && strstr(e, path) && strstr(e, cases[k].want) && !strchr(e, '\n'),
           "%s: rc %d, message '%s'", cases[k].json, rc, e);
  }
  /* one key per option still loads */
  const char *ok = "{\"num_steps\": 3, \"opt.lr_scale\": 2, \"_comment\": \"x\", \"seed\": 9e18}";
  CHECK(tl_write_file_atomic(path, ok, strlen(ok)) == 0);
  char *a[] = {"train", "--config", path, NULL};
  CHECKF(fuzz_parse_train_msg(3, a) == TL_ARGS_OK, "%s", fuzz_last_error);
  free(path);
  return tl_test_finish("config_rejects");
}
