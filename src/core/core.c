/* Errors, allocation, logging, files, buffers, time and number parsing. */
#include "tlens/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors: one message per thread (OpenMP workers may fail independently) ---- */
static _Thread_local char err_buf[1024];

int tl_failv(const char *fmt, va_list ap) {
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  /* the message must stay one line */
  for (char *p = err_buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  return -1;
}

int tl_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tl_failv(fmt, ap);
  va_end(ap);
  return -1;
}

int tl_fail_context(const char *fmt, ...) {
  char ctx[512], old[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx, sizeof ctx, fmt, ap);
  va_end(ap);
  memcpy(old, err_buf, sizeof old);
  return tl_fail("%s: %s", ctx, old);
}

const char *tl_errmsg(void) { return err_buf; }
void tl_clear_error(void) { err_buf[0] = 0; }

/* ---- allocation ---- */
static void oom(size_t n, const char *file, int line) {
  fprintf(stderr, "tlens: fatal: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
  abort();
}

void *tl_malloc_(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n, file, line);
  return p;
}

void *tl_calloc_(size_t n, size_t size, const char *file, int line) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size, file, line);
  return p;
}

void *tl_realloc_(void *p, size_t n, const char *file, int line) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n, file, line);
  return q;
}

char *tl_strdup_(const char *s, const char *file, int line) {
  size_t n = strlen(s) + 1;
  char *p = tl_malloc_(n, file, line);
  memcpy(p, s, n);
  return p;
}

/* Buffers of 8 MB and more (packed W_U, logits chunks, hidden states) are
 * aligned to 2 MB and marked for transparent huge pages, which most kernels
 * grant only on request (THP "madvise" mode). The lens GEMMs read rows of
 * [chunk, V] matrices 200 KB apart: with 4 KB pages nearly every row of a tile
 * is a TLB miss. Measured on the pythia-70m-shaped micro-step: fp32 2.50 ->
 * 2.11 s, bf16 1.21 -> 1.00 s. Advice only: where refused, nothing changes. */
void *tl_aligned_alloc_(size_t n, const char *file, int line) {
  void *p = NULL;
  const size_t huge = (size_t)2 << 20;
  if (n >= 4 * huge) {
    if (posix_memalign(&p, huge, n) != 0) oom(n, file, line);
    madvise(p, n / huge * huge, MADV_HUGEPAGE);
    return p;
  }
  if (posix_memalign(&p, 64, n ? n : 64) != 0) oom(n, file, line);
  return p;
}

char *tl_sprintf(const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = tl_malloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return s;
}

/* ---- logging ---- */
static int log_level = TL_LOG_INFO;
static int log_rank = 0;

void tl_log_set_level(int level) { log_level = level; }
int tl_log_level(void) { return log_level; }
void tl_log_set_rank(int rank) { log_rank = rank; }
int tl_log_rank(void) { return log_rank; }

static void vlog(int level, const char *tag, const char *fmt, va_list ap) {
  if (level > log_level) return;
  /* warnings from every rank matter; chatter only from rank 0 */
  if (level >= TL_LOG_INFO && log_rank != 0 && !getenv("TL_LOG_ALL_RANKS")) return;
  char line[2048];
  vsnprintf(line, sizeof line, fmt, ap);
  if (log_rank != 0)
    fprintf(stderr, "tlens[%d]: %s%s\n", log_rank, tag, line);
  else
    fprintf(stderr, "tlens: %s%s\n", tag, line);
}

void tl_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(TL_LOG_WARN, "warning: ", fmt, ap);
  va_end(ap);
}

void tl_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(TL_LOG_INFO, "", fmt, ap);
  va_end(ap);
}

void tl_debug(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(TL_LOG_DEBUG, "debug: ", fmt, ap);
  va_end(ap);
}

/* ---- files ---- */
int tl_open_regular(const char *path, off_t *size) {
  /* O_NONBLOCK: opening a named pipe for reading would otherwise wait for a writer */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return tl_fail("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return tl_fail("%s: not a regular file", path);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    close(fd);
    return tl_fail("%s: cannot open: %s", path, strerror(errno));
  }
  if (size) *size = st.st_size;
  return fd;
}

int tl_check_regular(const char *path) {
  int fd = tl_open_regular(path, NULL);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

FILE *tl_fopen_regular(const char *path, off_t *size) {
  int fd = tl_open_regular(path, size);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    tl_fail("%s: cannot open: %s", path, strerror(errno));
    close(fd);
  }
  return f;
}

int tl_read_file(const char *path, char **data, size_t *len) {
  *data = NULL;
  if (len) *len = 0;
  off_t size = 0;
  FILE *f = tl_fopen_regular(path, &size);
  if (!f) return -1;
  size_t n = (size_t)size;
  char *buf = tl_malloc(n + 1);
  size_t got = n ? fread(buf, 1, n, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (got != n || bad) {
    free(buf);
    return tl_fail("%s: read error", path);
  }
  buf[n] = 0;
  *data = buf;
  if (len) *len = n;
  return 0;
}

int tl_mmap_open(tl_mmap *m, const char *path) {
  m->data = NULL;
  m->size = 0;
  off_t size = 0;
  int fd = tl_open_regular(path, &size);
  if (fd < 0) return -1;
  m->size = (size_t)size;
  if (m->size > 0) {
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      m->size = 0;
      return tl_fail("%s: mmap failed: %s", path, strerror(errno));
    }
    m->data = p;
  }
  close(fd); /* the mapping keeps the file alive */
  return 0;
}

void tl_mmap_close(tl_mmap *m) {
  if (m->data) munmap(m->data, m->size);
  m->data = NULL;
  m->size = 0;
}

void tl_mmap_release(const void *p, size_t n) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p;
  const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advisory: a failure changes nothing */
}

int tl_fsync_dir_of(const char *path) {
  char *copy = tl_strdup(path);
  const char *dir = dirname(copy);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort: some file systems refuse fsync on directories */
    close(fd);
  }
  free(copy);
  return 0;
}

int tl_write_file_atomic(const char *path, const void *data, size_t len) {
  char *tmp = tl_sprintf("%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    tl_fail("%s: cannot create: %s", tmp, strerror(errno));
    free(tmp);
    return -1;
  }
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      tl_fail("%s: write failed: %s", path, strerror(errno));
      close(fd);
      unlink(tmp);
      free(tmp);
      return -1;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    tl_fail("%s: fsync/close failed: %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    tl_fail("%s: rename failed: %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return tl_fsync_dir_of(path);
}

int tl_mkdirs(const char *path) {
  if (!path || !*path) return tl_fail("empty directory path");
  char *p = tl_strdup(path);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == 0) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        tl_fail("%s: cannot create directory: %s", p, strerror(errno));
        free(p);
        return -1;
      }
      *s = c;
      if (!c) break;
    }
  }
  free(p);
  if (!tl_is_dir(path)) return tl_fail("%s: exists and is not a directory", path);
  return 0;
}

bool tl_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

bool tl_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *tl_path_join(const char *a, const char *b) {
  size_t n = strlen(a);
  if (n == 0) return tl_strdup(b);
  if (a[n - 1] == '/') return tl_sprintf("%s%s", a, b);
  return tl_sprintf("%s/%s", a, b);
}

const char *tl_basename(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* ---- buffers ---- */
void tl_buf_reserve(tl_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  b->data = tl_realloc(b->data, cap);
  b->cap = cap;
}

void tl_buf_append(tl_buf *b, const void *data, size_t n) {
  tl_buf_reserve(b, n + 1);
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = 0; /* always NUL-terminated for text use */
}

void tl_buf_printf(tl_buf *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  tl_buf_reserve(b, (size_t)n + 1);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
}

void tl_buf_free(tl_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- time, env, parsing ---- */
double tl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tl_parse_long(const char *s, long *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != 0 || end == s) return -1;
  *out = v;
  return 0;
}

int tl_parse_double(const char *s, double *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (errno != 0 || *end != 0 || end == s || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

int tl_env_int(const char *name, long def, long lo, long hi, long *out) {
  const char *s = getenv(name);
  if (!s || !*s) {
    *out = def;
    return 0;
  }
  long v;
  if (tl_parse_long(s, &v) != 0 || v < lo || v > hi)
    return tl_fail("environment variable %s='%s': expected an integer in [%ld, %ld]", name, s, lo, hi);
  *out = v;
  return 0;
}

void tl_shard_range(size_t n, int world, int rank, size_t *offset, size_t *count) {
  size_t base = n / (size_t)world, rem = n % (size_t)world, r = (size_t)rank;
  *offset = r * base + (r < rem ? r : rem);
  *count = base + (r < rem ? 1 : 0);
}
