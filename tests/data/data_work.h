/* Helpers for the data tests: a scratch directory and small file writers. */
#ifndef DATA_WORK_H
#define DATA_WORK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"

/* "<TESTBIN>/work/<name>" (or /tmp/tlens-work-<name>), created empty-ish. */
static inline char *work_dir(const char *name) {
  const char *bin = getenv("TESTBIN");
  char *d = bin ? tl_sprintf("%s/work/%s", bin, name) : tl_sprintf("/tmp/tlens-work-%s", name);
  char *cmd = tl_sprintf("rm -rf '%s'", d);
  if (system(cmd) != 0) fprintf(stderr, "cannot clean %s\n", d);
  free(cmd);
  if (tl_mkdirs(d) != 0) fprintf(stderr, "%s\n", tl_errmsg());
  return d;
}

static inline char *write_file(const char *dir, const char *name, const void *data, size_t n) {
  char *p = tl_path_join(dir, name);
  FILE *f = fopen(p, "wb");
  if (f) {
    fwrite(data, 1, n, f);
    fclose(f);
  }
  return p;
}

static inline int one_line(const char *s) { return s && s[0] && !strchr(s, '\n'); }

#endif
