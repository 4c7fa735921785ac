/* tlens core: errors, allocation, logging, files, hashing, timing.
 *
 * Error convention used by every module: a function that can fail returns int,
 * 0 on success and -1 on failure, after recording ONE line of text with tl_fail()
 * that names the file/field and what was expected. Callers either propagate (-1)
 * or, at the top (the CLI), print "tlens: error: <message>" and exit non-zero.
 * Out-of-memory is not recoverable: the tl_malloc family aborts with file:line. */
#ifndef TLENS_CORE_H
#define TLENS_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>

#define TL_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- errors ---- */
int tl_fail(const char *fmt, ...) TL_PRINTF(1, 2); /* records the message; returns -1 */
int tl_failv(const char *fmt, va_list ap);
/* prefix the recorded message with "<context>: " (e.g. a file name); returns -1 */
int tl_fail_context(const char *fmt, ...) TL_PRINTF(1, 2);
const char *tl_errmsg(void); /* the last recorded message ("" if none) */
void tl_clear_error(void);
#define TL_TRY(expr) do { if ((expr) != 0) return -1; } while (0)

/* ---- allocation: never returns NULL ---- */
void *tl_malloc_(size_t n, const char *file, int line);
void *tl_calloc_(size_t n, size_t size, const char *file, int line);
void *tl_realloc_(void *p, size_t n, const char *file, int line);
char *tl_strdup_(const char *s, const char *file, int line);
void *tl_aligned_alloc_(size_t n, const char *file, int line); /* 64-byte aligned; free with free() */
#define tl_malloc(n) tl_malloc_((n), __FILE__, __LINE__)
#define tl_calloc(n, s) tl_calloc_((n), (s), __FILE__, __LINE__)
#define tl_realloc(p, n) tl_realloc_((p), (n), __FILE__, __LINE__)
#define tl_strdup(s) tl_strdup_((s), __FILE__, __LINE__)
#define tl_aligned_alloc(n) tl_aligned_alloc_((n), __FILE__, __LINE__)
char *tl_sprintf(const char *fmt, ...) TL_PRINTF(1, 2); /* malloc'd */

/* ---- logging (stderr). Only rank 0 prints info unless TL_LOG_ALL_RANKS is set. ---- */
enum { TL_LOG_ERROR = 0, TL_LOG_WARN = 1, TL_LOG_INFO = 2, TL_LOG_DEBUG = 3 };
void tl_log_set_level(int level);
int tl_log_level(void);
void tl_log_set_rank(int rank);
int tl_log_rank(void); /* the rank set above (0 by default) */
void tl_warn(const char *fmt, ...) TL_PRINTF(1, 2);
void tl_info(const char *fmt, ...) TL_PRINTF(1, 2);
void tl_debug(const char *fmt, ...) TL_PRINTF(1, 2);

/* ---- fault injection, for tests of error paths that cannot be provoked from outside ----
 * TLENS_FAULT="site:n[,site:n...]" makes tl_fault(site, n) true at those points (n: the
 * layer, step, ... the site counts; "*" for every n). Sites: nan_grad (the gradient of
 * training step n, 1-based, is not finite), stall (the last rank of a multi-rank
 * training stops responding before step n), ckpt_kill (rank 0 is killed half-way
 * through writing the checkpoint of step n), fsdp_gather (the all-gather
 * of layer n fails on every rank). Unset, it costs one getenv per process; a malformed
 * value is a warning and injects nothing. */
bool tl_fault(const char *site, long n);

/* ---- progress of long work (rank 0) ----
 * On a terminal a bar with rate and ETA, rewritten in place; otherwise (a Slurm
 * log, a pipe) one plain info line at every 10% and at least every 30 s. */
typedef struct {
  char what[64], unit[16];
  int64_t total;
  bool enabled, tty;
  double t0, last;
  int last_decile;
} tl_progress;
/* enabled: this rank reports (rank 0); bar: a terminal may get the bar (--progress). */
void tl_progress_begin(tl_progress *p, const char *what, int64_t total, const char *unit, bool enabled, bool bar);
/* done of total finished; units: how many `unit`s so far (for the rate). */
void tl_progress_update(tl_progress *p, int64_t done, double units);
/* "1h02m", "3m07s"; "?" for a negative or absurd duration. */
void tl_fmt_duration(double seconds, char *buf, size_t cap);
/* Ends a bar line early (before an error message). */
void tl_progress_abort(tl_progress *p);

/* ---- files ----
 * Every file read from outside is opened through tl_open_regular: a named pipe,
 * a device (/dev/zero) or a folder is "not a regular file", never a hang. */
/* A read-only descriptor of a regular file (*size its size, may be NULL), or -1. */
int tl_open_regular(const char *path, off_t *size);
/* The same as a stdio stream ("rb"), or NULL. */
FILE *tl_fopen_regular(const char *path, off_t *size);
/* 0 when path opens as a regular file, else -1 with the message (for readers that
 * open files themselves, such as HDF5). */
int tl_check_regular(const char *path);
/* Reads a whole file; *data is NUL-terminated (not counted in *len). */
int tl_read_file(const char *path, char **data, size_t *len);
typedef struct {
  void *data;
  size_t size;
} tl_mmap;
int tl_mmap_open(tl_mmap *m, const char *path); /* read-only mapping; empty file ok */
void tl_mmap_close(tl_mmap *m);
/* Drops this process's pages of [p, p + n) inside a read-only mapping (whole pages
 * only; the data stays readable and is faulted back in from the file if touched
 * again): a file read once no longer counts in the resident set. */
void tl_mmap_release(const void *p, size_t n);
/* Writes data to path atomically: <path>.tmp.<pid>, fsync, rename, fsync dir. */
int tl_write_file_atomic(const char *path, const void *data, size_t len);
int tl_fsync_dir_of(const char *path);
int tl_mkdirs(const char *path); /* mkdir -p */
bool tl_file_exists(const char *path);
bool tl_is_dir(const char *path);
char *tl_path_join(const char *a, const char *b); /* malloc'd */
const char *tl_basename(const char *path);

/* ---- growable byte buffer ---- */
typedef struct {
  unsigned char *data;
  size_t len, cap;
} tl_buf;
void tl_buf_reserve(tl_buf *b, size_t extra);
void tl_buf_append(tl_buf *b, const void *data, size_t n);
void tl_buf_printf(tl_buf *b, const char *fmt, ...) TL_PRINTF(2, 3);
void tl_buf_free(tl_buf *b);

/* ---- sha256 ---- */
typedef struct {
  uint32_t h[8];
  uint64_t nbytes;
  unsigned char block[64];
  size_t blen;
} tl_sha256;
void tl_sha256_init(tl_sha256 *s);
void tl_sha256_update(tl_sha256 *s, const void *data, size_t n);
void tl_sha256_final(tl_sha256 *s, unsigned char out[32]);
void tl_sha256_hex(const void *data, size_t n, char out[65]);
void tl_hex(const unsigned char *bytes, size_t n, char *out); /* out: 2n+1 chars */

/* crc32 (zip, IEEE polynomial) */
uint32_t tl_crc32(uint32_t crc, const void *data, size_t n);

/* ---- time, env ---- */
double tl_now(void); /* monotonic seconds */
/* Parses an integer environment variable; returns def when unset. Error if malformed. */
int tl_env_int(const char *name, long def, long lo, long hi, long *out);

/* ---- shard partition ----
 * Rank r of `world` owns [*offset, *offset + *count) of n elements: n/world each,
 * the first n%world ranks one more. Used for FSDP layer slices, ZeRO shards and
 * sharded checkpoint datasets alike. */
void tl_shard_range(size_t n, int world, int rank, size_t *offset, size_t *count);

/* ---- strict number parsing for flags/config ---- */
int tl_parse_long(const char *s, long *out);     /* whole string must be an integer */
int tl_parse_double(const char *s, double *out); /* whole string must be a finite number */

#endif
