/* TensorBoard event files: TFRecords of hand-encoded Event protobufs (see
 * tlens/tfevents.h). */
#include "tlens/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlens/core.h"

/* ---- CRC-32C, a byte at a time from a table built on first use ---- */
uint32_t tl_crc32c(uint32_t crc, const void *data, size_t n) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t tl_tfrecord_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- protobuf wire format: the few field kinds an Event needs ---- */
enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

static void put_varint(tl_buf *b, uint64_t v) {
  unsigned char c[10];
  int n = 0;
  do {
    c[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) c[n] |= 0x80;
    n++;
  } while (v);
  tl_buf_append(b, c, (size_t)n);
}

static void put_key(tl_buf *b, int field, int wire) { put_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void put_le(tl_buf *b, uint64_t v, int bytes) {
  unsigned char c[8];
  for (int i = 0; i < bytes; i++) c[i] = (unsigned char)(v >> (8 * i));
  tl_buf_append(b, c, (size_t)bytes);
}

static void put_bytes(tl_buf *b, int field, const void *data, size_t n) {
  put_key(b, field, WIRE_BYTES);
  put_varint(b, n);
  tl_buf_append(b, data, n);
}

static void put_double(tl_buf *b, int field, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  put_key(b, field, WIRE_FIXED64);
  put_le(b, u, 8);
}

/* Event header: wall_time = 1, step = 2 (int64 as a two's-complement varint;
 * left out when 0, as proto3 writers do, so the encoding is the canonical one) */
static void put_event_head(tl_buf *b, double wall_time, int64_t step) {
  put_double(b, 1, wall_time);
  if (step == 0) return;
  put_key(b, 2, WIRE_VARINT);
  put_varint(b, (uint64_t)step);
}

/* ---- records ---- */
static int write_record(tl_tfevents *w, const tl_buf *data) {
  tl_buf r = {0};
  put_le(&r, data->len, 8);
  put_le(&r, tl_tfrecord_mask(tl_crc32c(0, r.data, 8)), 4);
  tl_buf_append(&r, data->data, data->len);
  put_le(&r, tl_tfrecord_mask(tl_crc32c(0, data->data, data->len)), 4);
  size_t put = fwrite(r.data, 1, r.len, w->f);
  int rc = put == r.len ? 0 : tl_fail("%s: write failed: %s", w->path, strerror(errno));
  tl_buf_free(&r);
  return rc;
}

int tl_tfevents_scalar(tl_tfevents *w, double wall_time, int64_t step, const char *tag, double value) {
  tl_buf v = {0}, s = {0}, e = {0};
  put_bytes(&v, 1, tag, strlen(tag)); /* Value.tag */
  float f = (float)value;
  uint32_t u;
  memcpy(&u, &f, 4);
  put_key(&v, 2, WIRE_FIXED32); /* Value.simple_value */
  put_le(&v, u, 4);
  put_bytes(&s, 1, v.data, v.len); /* Summary.value */
  put_event_head(&e, wall_time, step);
  put_bytes(&e, 5, s.data, s.len); /* Event.summary */
  int rc = write_record(w, &e);
  tl_buf_free(&v);
  tl_buf_free(&s);
  tl_buf_free(&e);
  return rc;
}

static double wall_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int tl_tfevents_open(tl_tfevents *w, const char *dir) {
  memset(w, 0, sizeof *w);
  TL_TRY(tl_mkdirs(dir));
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
  host[sizeof host - 1] = 0;
  for (char *h = host; *h; h++)
    if (*h == '/') *h = '_';
  double now = wall_now();
  /* a second run in the same second on this host gets the pid, then a count */
  int fd = -1;
  for (int k = 0; k < 100 && fd < 0; k++) {
    char *name = k == 0 ? tl_sprintf("events.out.tfevents.%010lld.%s", (long long)now, host)
                 : k == 1 ? tl_sprintf("events.out.tfevents.%010lld.%s.%ld", (long long)now, host, (long)getpid())
                          : tl_sprintf("events.out.tfevents.%010lld.%s.%ld.%d", (long long)now, host, (long)getpid(), k);
    free(w->path);
    w->path = tl_path_join(dir, name);
    free(name);
    fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int rc = tl_fail("%s: cannot create: %s", w->path, strerror(errno));
    free(w->path);
    w->path = NULL;
    return rc;
  }
  w->f = fdopen(fd, "wb");
  if (!w->f) {
    close(fd);
    free(w->path);
    w->path = NULL;
    return tl_fail("%s: cannot open", dir);
  }
  tl_buf e = {0};
  put_event_head(&e, now, 0);
  put_bytes(&e, 3, "brain.Event:2", 13); /* Event.file_version */
  int rc = write_record(w, &e);
  tl_buf_free(&e);
  if (rc != 0) tl_tfevents_close(w);
  return rc;
}

int tl_tfevents_reopen(tl_tfevents *w, const char *path) {
  memset(w, 0, sizeof *w);
  w->f = fopen(path, "ab");
  if (!w->f) return tl_fail("%s: cannot open to append: %s", path, strerror(errno));
  w->path = tl_strdup(path);
  return 0;
}

int tl_tfevents_close(tl_tfevents *w) {
  int rc = 0;
  if (w->f) {
    bool bad = ferror(w->f) != 0;
    if (fclose(w->f) != 0 || bad) rc = tl_fail("%s: write failed: %s", w->path ? w->path : "events", strerror(errno));
  }
  free(w->path);
  memset(w, 0, sizeof *w);
  return rc;
}

char *tl_tfevents_dir(const char *output, const char *tensorboard, const char *wandb) {
  if (tensorboard) return tl_strdup(tensorboard);
  if (!wandb) return NULL;
  char *base = tl_path_join(output, "tensorboard");
  /* the run name as one folder: no '/', and never "." or ".." */
  char *name = !strcmp(wandb, ".") || !strcmp(wandb, "..") || !*wandb ? tl_sprintf("_%s", wandb) : tl_strdup(wandb);
  for (char *c = name; *c; c++)
    if (*c == '/') *c = '_';
  char *dir = tl_path_join(base, name);
  free(base);
  free(name);
  return dir;
}

/* The reference's stream names: the embeddings "input", then block i's output "<i>.ffn" */
static void stream_name(int i, char *out, size_t cap) {
  if (i == 0) snprintf(out, cap, "input");
  else snprintf(out, cap, "%d.ffn", i - 1);
}

static int train_scalars(tl_tfevents *w, const tl_tfevents_train *s) {
  double t = wall_now(), mean = 0;
  bool bpb = isfinite(s->nats_to_bpb);
  char tag[64], name[32];
  for (int i = 0; i < s->layers; i++) mean += s->loss_nats[i] / s->layers;
  for (int unit = 0; unit < (bpb ? 2 : 1); unit++) {
    /* unit 0: loss/ (bits when known), unit 1: loss_nats/ beside bits */
    double scale = unit == 0 && bpb ? s->nats_to_bpb : 1;
    const char *group = unit == 0 ? "loss" : "loss_nats";
    for (int i = 0; i < s->layers; i++) {
      stream_name(i, name, sizeof name);
      snprintf(tag, sizeof tag, "%s/%s", group, name);
      TL_TRY(tl_tfevents_scalar(w, t, s->step, tag, s->loss_nats[i] * scale));
    }
    snprintf(tag, sizeof tag, "%s/mean", group);
    TL_TRY(tl_tfevents_scalar(w, t, s->step, tag, mean * scale));
  }
  TL_TRY(tl_tfevents_scalar(w, t, s->step, "lr", s->lr));
  TL_TRY(tl_tfevents_scalar(w, t, s->step, "grad_norm", s->grad_norm));
  TL_TRY(tl_tfevents_scalar(w, t, s->step, "tokens_per_s", s->tokens_per_s));
  return tl_tfevents_scalar(w, t, s->step, "step_s", s->step_s);
}

void tl_tfevents_train_step(const char *dir, const tl_tfevents_train *s) {
  /* The file of this process's run: made at its first step and appended to at
   * each step after, opened only while a step is written (a run holds no
   * descriptor and a crash loses at most the step being written). */
  static char *run_dir, *run_file;
  static bool failed;
  if (!run_dir || strcmp(run_dir, dir) != 0) {
    free(run_dir);
    free(run_file);
    run_dir = tl_strdup(dir);
    run_file = NULL;
    failed = false;
  }
  if (failed) return;
  tl_tfevents w;
  int rc = run_file ? tl_tfevents_reopen(&w, run_file) : tl_tfevents_open(&w, dir);
  if (rc == 0 && !run_file) run_file = tl_strdup(w.path);
  if (rc == 0) rc = train_scalars(&w, s);
  if (w.f && tl_tfevents_close(&w) != 0) rc = -1;
  if (rc != 0) {
    tl_warn("TensorBoard events in %s: %s; continuing without them", dir, tl_errmsg());
    tl_clear_error();
    failed = true;
  }
}
