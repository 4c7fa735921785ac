/* Shared part of the fuzz targets under tests/fuzz/.
 *
 * Each target defines LLVMFuzzerTestOneInput(data, size): it hands the bytes to one
 * parser, exactly as the command that reads that kind of file would, and returns 0
 * whatever the parser decides. A parser may accept or reject the input; it must never
 * crash, hang, leak or touch memory it does not own (the sanitizers check that).
 *
 * Built two ways (tests/fuzz.cmake):
 *  - with TLENS_LIBFUZZER (clang, -fsanitize=fuzzer): libFuzzer supplies main();
 *  - otherwise (every build): the main() below replays the files and folders given on
 *    the command line through the same entry point, so every input committed under
 *    tests/fuzz/regress/ is checked by ctest with gcc too. */
#ifndef TLENS_FUZZ_H
#define TLENS_FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlens/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where a parser that only takes a path reads its input: files on tmpfs in a folder
 * of this process's own (so parallel fuzzers never share one, and a parser that looks
 * beside its file, such as the tokenizer for tokenizer_config.json, finds nothing
 * else there). The files and the folder are removed at exit. */
static char fuzz_dir[64];
static char *fuzz_made[16];
static int fuzz_nmade;
static inline void fuzz_cleanup(void) {
  for (int i = fuzz_nmade - 1; i >= 0; i--) remove(fuzz_made[i]); /* files, then folders */
}
static inline void fuzz_remember(const char *path) {
  for (int i = 0; i < fuzz_nmade; i++)
    if (!strcmp(fuzz_made[i], path)) return;
  if (fuzz_nmade < 16) fuzz_made[fuzz_nmade++] = strdup(path);
}
/* Folders left by fuzzers that ended without running atexit handlers (libFuzzer's
 * fork mode ends its children with _exit): those whose process is gone are removed. */
static inline void fuzz_remove_stale(void) {
  DIR *d = opendir("/dev/shm");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    long pid;
    char rest;
    if (sscanf(e->d_name, "tlens-fuzz-%ld%c", &pid, &rest) != 1 || pid <= 0) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char *cmd = tl_sprintf("rm -rf '/dev/shm/%s'", e->d_name);
    (void)!system(cmd);
    free(cmd);
  }
  if (d) closedir(d);
}

static inline char *fuzz_shm_path(const char *name) {
  if (!fuzz_dir[0]) {
    fuzz_remove_stale();
    snprintf(fuzz_dir, sizeof fuzz_dir, "/dev/shm/tlens-fuzz-%ld", (long)getpid());
    if (mkdir(fuzz_dir, 0700) != 0 && errno != EEXIST) {
      fprintf(stderr, "fuzz: cannot create %s\n", fuzz_dir);
      abort(); /* a harness failure, not a finding */
    }
    fuzz_remember(fuzz_dir);
    atexit(fuzz_cleanup);
  }
  char *path = tl_sprintf("%s/%s", fuzz_dir, name);
  fuzz_remember(path);
  return path;
}

/* Writes bytes to fuzz_shm_path(name); returns the path (malloc'd). */
static inline char *fuzz_write_shm(const char *name, const uint8_t *data, size_t size) {
  char *path = fuzz_shm_path(name);
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    fprintf(stderr, "fuzz: cannot write %s\n", path);
    abort();
  }
  return path;
}

/* Once per process: quiet logging (warnings about rejected inputs are expected by the
 * million) and help texts away from the terminal. */
static inline void fuzz_quiet(void) {
  static int done;
  if (done) return;
  done = 1;
  tl_log_set_level(TL_LOG_ERROR);
  if (!getenv("TLENS_FUZZ_VERBOSE")) (void)!freopen("/dev/null", "w", stdout);
}

#ifndef TLENS_LIBFUZZER
static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return 1;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  /* an exact-size copy, so the sanitizers see a read past the input as one */
  uint8_t *exact = malloc(n ? n : 1);
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder: its regular files in name order (README files excepted). */
static int replay_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "%s: cannot open folder\n", dir);
    return 1;
  }
  char **names = NULL;
  int n = 0, bad = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !strncmp(e->d_name, "README", 6)) continue;
    names = realloc(names, (size_t)(n + 1) * sizeof *names);
    names[n++] = tl_sprintf("%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      fprintf(stderr, "replay %s\n", names[i]);
      bad |= replay_file(names[i]);
      (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return bad;
}

int main(int argc, char **argv) {
  int bad = 0, count = 0;
#ifdef FUZZ_SEED_WRITER
  /* a target whose seeds are made rather than copied: `--write-seed DIR` */
  if (argc == 3 && !strcmp(argv[1], "--write-seed")) return FUZZ_SEED_WRITER(argv[2]) != 0;
#endif
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) { /* a missing regress folder just holds nothing yet */
      fprintf(stderr, "%s: not found, skipped\n", argv[i]);
      continue;
    }
    if (S_ISDIR(st.st_mode)) bad |= replay_dir(argv[i], &count);
    else {
      fprintf(stderr, "replay %s\n", argv[i]);
      bad |= replay_file(argv[i]);
      count++;
    }
  }
  fprintf(stderr, "%d inputs replayed\n", count);
  return bad;
}
#endif

#endif
