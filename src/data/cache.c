/* Token cache: the chunks of a corpus, tokenized once, stored in one file that later runs
 * (and every MPI rank) memory-map read-only.
 *
 * File layout (all integers little-endian):
 *   offset  size  field
 *        0     8  magic "TLTOKCH\0"
 *        8     4  format version (TL_CACHE_VERSION)
 *       12     4  bytes per token id: 2 (uint16, vocab <= 65536) or 4 (uint32)
 *       16     4  vocab size
 *       20     4  flags: bit 0 = nats_to_bpb unknown
 *       24     8  chunk length T
 *       32     8  number of chunks N
 *       40     8  nats_to_bpb (IEEE double)
 *       48     8  total tokens (reference count)
 *       56     8  total UTF-8 bytes
 *       64    32  key: sha256 over the source sha256, tokenizer hash and settings
 *       96    32  sha256 of the source file bytes
 *      128     8  payload bytes (N * T * id size)
 *      136     4  crc32 of the payload
 *      252     4  crc32 of header bytes [0, 252)
 *      256        payload: N rows of T ids
 * The key decides whether a cache is current; the checksums whether it is intact.
 * A cache is written to a temporary file, fsync'd and renamed into place, so a crash or
 * an error never leaves a half-written cache under the final name. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data_internal.h"
#include "tlens/core.h"
#include "tlens/data.h"
#include "tlens/safetensors.h"

#define TL_CACHE_VERSION 1u
#define HDR_SIZE 256
#define HDR_CRC_AT 252
static const char MAGIC[8] = {'T', 'L', 'T', 'O', 'K', 'C', 'H', '\0'};

typedef struct {
  uint32_t version, id_size, vocab, flags;
  uint64_t seq_len, n_chunks;
  double nats_to_bpb;
  uint64_t total_tokens, total_bytes;
  unsigned char key[32], source_sha[32];
  uint64_t payload_bytes;
  uint32_t payload_crc;
} header;

struct tl_dataset {
  char *path;
  tl_mmap map;
  header h;
  const unsigned char *payload;
};

/* ---- little-endian field access ---- */
static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static void header_encode(const header *h, unsigned char out[HDR_SIZE]) {
  memset(out, 0, HDR_SIZE);
  memcpy(out, MAGIC, 8);
  put32(out + 8, h->version);
  put32(out + 12, h->id_size);
  put32(out + 16, h->vocab);
  put32(out + 20, h->flags);
  put64(out + 24, h->seq_len);
  put64(out + 32, h->n_chunks);
  uint64_t bits;
  memcpy(&bits, &h->nats_to_bpb, 8);
  put64(out + 40, bits);
  put64(out + 48, h->total_tokens);
  put64(out + 56, h->total_bytes);
  memcpy(out + 64, h->key, 32);
  memcpy(out + 96, h->source_sha, 32);
  put64(out + 128, h->payload_bytes);
  put32(out + 136, h->payload_crc);
  put32(out + HDR_CRC_AT, tl_crc32(0, out, HDR_CRC_AT));
}

static int header_decode(const char *path, const unsigned char *in, size_t file_size, header *h) {
  if (file_size < HDR_SIZE) return tl_fail("%s: truncated token cache (%zu bytes, header needs %d)", path, file_size, HDR_SIZE);
  if (memcmp(in, MAGIC, 8) != 0) return tl_fail("%s: not a tlens token cache (bad magic)", path);
  if (get32(in + HDR_CRC_AT) != tl_crc32(0, in, HDR_CRC_AT)) return tl_fail("%s: token cache header checksum mismatch", path);
  h->version = get32(in + 8);
  if (h->version != TL_CACHE_VERSION)
    return tl_fail("%s: token cache format version %u, expected %u", path, h->version, TL_CACHE_VERSION);
  h->id_size = get32(in + 12);
  h->vocab = get32(in + 16);
  h->flags = get32(in + 20);
  h->seq_len = get64(in + 24);
  h->n_chunks = get64(in + 32);
  uint64_t bits = get64(in + 40);
  memcpy(&h->nats_to_bpb, &bits, 8);
  h->total_tokens = get64(in + 48);
  h->total_bytes = get64(in + 56);
  memcpy(h->key, in + 64, 32);
  memcpy(h->source_sha, in + 96, 32);
  h->payload_bytes = get64(in + 128);
  h->payload_crc = get32(in + 136);
  if (h->id_size != 2 && h->id_size != 4) return tl_fail("%s: token id size %u, expected 2 or 4", path, h->id_size);
  if (h->seq_len < 1 || h->seq_len > (1u << 30) || h->n_chunks > (UINT64_MAX / 4) / h->seq_len)
    return tl_fail("%s: implausible shape [%llu, %llu]", path, (unsigned long long)h->n_chunks,
                   (unsigned long long)h->seq_len);
  if (h->payload_bytes != h->n_chunks * h->seq_len * h->id_size)
    return tl_fail("%s: payload size %llu does not match [%llu, %llu] x %u bytes", path,
                   (unsigned long long)h->payload_bytes, (unsigned long long)h->n_chunks,
                   (unsigned long long)h->seq_len, h->id_size);
  if (file_size != HDR_SIZE + h->payload_bytes)
    return tl_fail("%s: file is %zu bytes, header says %llu (truncated or extended)", path, file_size,
                   (unsigned long long)(HDR_SIZE + h->payload_bytes));
  return 0;
}

/* ---- reading ---- */

int tl_data_open(tl_dataset **out, const char *path, int verify_payload) {
  *out = NULL;
  tl_dataset *d = tl_calloc(1, sizeof *d);
  if (tl_mmap_open(&d->map, path) != 0) {
    free(d);
    return -1;
  }
  d->path = tl_strdup(path);
  if (header_decode(path, d->map.data, d->map.size, &d->h) != 0) {
    tl_data_close(d);
    return -1;
  }
  d->payload = (const unsigned char *)d->map.data + HDR_SIZE;
  if (verify_payload && tl_crc32(0, d->payload, d->h.payload_bytes) != d->h.payload_crc) {
    tl_fail("%s: token cache payload checksum mismatch (corrupt)", path);
    tl_data_close(d);
    return -1;
  }
  *out = d;
  return 0;
}

void tl_data_source_hash(const tl_dataset *d, char out[65]) { tl_hex(d->h.source_sha, 32, out); }

void tl_data_close(tl_dataset *d) {
  if (!d) return;
  tl_mmap_close(&d->map);
  free(d->path);
  free(d);
}

int64_t tl_data_len(const tl_dataset *d) { return (int64_t)d->h.n_chunks; }
int64_t tl_data_seq_len_of(const tl_dataset *d) { return (int64_t)d->h.seq_len; }
int32_t tl_data_vocab_size(const tl_dataset *d) { return (int32_t)d->h.vocab; }
double tl_data_nats_to_bpb(const tl_dataset *d) { return (d->h.flags & 1) ? NAN : d->h.nats_to_bpb; }

int tl_data_gather(const tl_dataset *d, const int64_t *idx, int64_t n, int32_t *out) {
  int64_t T = (int64_t)d->h.seq_len;
  for (int64_t k = 0; k < n; k++) {
    if (idx[k] < 0 || (uint64_t)idx[k] >= d->h.n_chunks)
      return tl_fail("%s: chunk index %lld out of range [0, %llu)", d->path, (long long)idx[k],
                     (unsigned long long)d->h.n_chunks);
    const unsigned char *row = d->payload + (size_t)idx[k] * (size_t)T * d->h.id_size;
    int32_t *dst = out + k * T;
    if (d->h.id_size == 2) {
      for (int64_t t = 0; t < T; t++) dst[t] = (int32_t)(row[2 * t] | (row[2 * t + 1] << 8));
    } else {
      for (int64_t t = 0; t < T; t++) dst[t] = (int32_t)get32(row + 4 * t);
    }
  }
  return 0;
}

/* ---- keys and paths ---- */

void tl_data_opts_default(tl_data_opts *o) {
  o->text_column = "text";
  o->max_seq_len = 2048;
  o->shuffle_docs = false;
  o->more_sources = NULL;
  o->n_more = 0;
  o->shuffle_seed = 42;
  o->cache_dir = NULL;
}

static int is_safetensors(const char *path) {
  size_t n = strlen(path);
  return n >= 12 && strcmp(path + n - 12, ".safetensors") == 0;
}

static int64_t effective_T(const char *source, const tl_tokenizer *tok, const tl_data_opts *o) {
  return is_safetensors(source) && !tok ? o->max_seq_len : tl_data_seq_len(tok, o->max_seq_len);
}

/* Everything except the source bytes that decides the cache contents. */
static char *settings_string(const char *source, const tl_tokenizer *tok, const tl_data_opts *o) {
  char *s = tl_sprintf("tlens token cache v%u\nkind=%s\ntokenizer=%s\nseq_len=%lld\ntext_column=%s\nbatch_docs=%d\n",
                       TL_CACHE_VERSION, is_safetensors(source) ? "safetensors" : "jsonl",
                       tok ? tl_tokenizer_hash(tok) : "none", (long long)effective_T(source, tok, o),
                       o->text_column ? o->text_column : "text", TL_DATA_BATCH_DOCS);
  /* settings a single unshuffled file never had leave its key as it always was */
  if (o->shuffle_docs && !is_safetensors(source)) {
    char *t = tl_sprintf("%sshuffle_docs_seed=%llu\n", s, (unsigned long long)o->shuffle_seed);
    free(s);
    s = t;
  }
  for (int i = 0; i < o->n_more; i++) {
    char *abs = realpath(o->more_sources[i], NULL);
    char *t = tl_sprintf("%sthen=%s\n", s, abs ? abs : o->more_sources[i]);
    free(abs);
    free(s);
    s = t;
  }
  return s;
}

char *tl_data_cache_path(const char *source, const tl_tokenizer *tok, const tl_data_opts *o) {
  char *abs = realpath(source, NULL);
  char *set = settings_string(source, tok, o);
  tl_sha256 s;
  tl_sha256_init(&s);
  tl_sha256_update(&s, abs ? abs : source, strlen(abs ? abs : source));
  tl_sha256_update(&s, "\n", 1);
  tl_sha256_update(&s, set, strlen(set));
  unsigned char dig[32];
  tl_sha256_final(&s, dig);
  char hex[65];
  tl_hex(dig, 8, hex);
  char *name = o->n_more ? tl_sprintf("%s+%d.%s.tltok", tl_basename(source), o->n_more, hex)
                         : tl_sprintf("%s.%s.tltok", tl_basename(source), hex);
  char *path = tl_path_join(o->cache_dir, name);
  free(name);
  free(set);
  free(abs);
  return path;
}

static int sha256_file(const char *path, unsigned char out[32]) {
  FILE *f = tl_fopen_regular(path, NULL);
  if (!f) return -1;
  tl_sha256 s;
  tl_sha256_init(&s);
  size_t cap = 1u << 20, n;
  unsigned char *buf = tl_malloc(cap);
  while ((n = fread(buf, 1, cap, f)) > 0) tl_sha256_update(&s, buf, n);
  int err = ferror(f);
  fclose(f);
  free(buf);
  if (err) return tl_fail("%s: read error", path);
  tl_sha256_final(&s, out);
  return 0;
}

/* ---- writing ---- */

typedef struct {
  const char *tmp;    /* temporary file name (for messages) */
  int fd;
  header h;
  unsigned char *conv; /* conversion buffer */
  size_t conv_cap;
  double t_start, t_report; /* progress: a line every PROGRESS_S seconds of a long build */
} writer;

#define PROGRESS_S 10.0

static int write_all(int fd, const void *data, size_t n, const char *path) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return tl_fail("%s: write failed: %s", path, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int writer_sink(void *ctx, const int32_t *ids, int64_t n, int64_t T) {
  writer *w = ctx;
  size_t count = (size_t)(n * T), bytes = count * w->h.id_size;
  if (bytes > w->conv_cap) {
    w->conv_cap = bytes;
    w->conv = tl_realloc(w->conv, bytes);
  }
  for (size_t i = 0; i < count; i++) {
    if (ids[i] < 0 || (uint32_t)ids[i] >= w->h.vocab)
      return tl_fail("token id %d out of range [0, %u)", ids[i], w->h.vocab);
    if (w->h.id_size == 2) {
      w->conv[2 * i] = (unsigned char)ids[i];
      w->conv[2 * i + 1] = (unsigned char)(ids[i] >> 8);
    } else {
      put32(w->conv + 4 * i, (uint32_t)ids[i]);
    }
  }
  w->h.payload_crc = tl_crc32(w->h.payload_crc, w->conv, bytes);
  w->h.payload_bytes += bytes;
  w->h.n_chunks += (uint64_t)n;
  double now = tl_now();
  if (now - w->t_report >= PROGRESS_S) {
    w->t_report = now;
    tl_info("tokenizing: %llu chunks (%.1fM tokens) so far, %.0f s", (unsigned long long)w->h.n_chunks,
            (double)(w->h.n_chunks * (uint64_t)T) / 1e6, now - w->t_start);
  }
  return write_all(w->fd, w->conv, bytes, w->tmp);
}

/* Pre-tokenized source: integer input_ids [N, T]. */
static int pretok_build(const char *source, const tl_tokenizer *tok, int64_t T, writer *w) {
  tl_safetensors st;
  TL_TRY(tl_st_open(&st, source));
  int rc = -1;
  int64_t *row = NULL;
  const tl_st_tensor *t = tl_st_find(&st, "input_ids");
  if (!t) { tl_fail("%s: no tensor 'input_ids'", source); goto done; }
  if (!tl_dtype_is_int(t->dtype)) { tl_fail("%s: input_ids has dtype %s, expected an integer dtype", source, tl_dtype_name(t->dtype)); goto done; }
  if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] != T) {
    char sb[96];
    tl_fail("%s: input_ids has shape %s, expected [N >= 1, %lld] (N samples of max_seq_len tokens)", source,
            tl_shape_str(t->ndim, t->shape, sb, sizeof sb), (long long)T);
    goto done;
  }
  int64_t N = t->shape[0];
  size_t es = tl_dtype_size(t->dtype);
  row = tl_malloc((size_t)T * sizeof *row);
  /* vocab: the tokenizer's, else the largest id + 1 (one pass to find it) */
  int64_t vocab = tok ? tl_tokenizer_vocab_size(tok) : 0;
  for (int64_t i = 0; i < N && !tok; i++) {
    tl_to_i64(row, (const char *)t->data + (size_t)(i * T) * es, t->dtype, (size_t)T);
    for (int64_t k = 0; k < T; k++)
      if (row[k] + 1 > vocab) vocab = row[k] + 1;
  }
  if (vocab > ((int64_t)1 << 32)) vocab = (int64_t)1 << 32; /* ids above fail below */
  w->h.vocab = (uint32_t)(vocab > UINT32_MAX ? UINT32_MAX : vocab);
  w->h.id_size = vocab <= 65536 ? 2 : 4;
  int32_t *ids = tl_malloc((size_t)T * sizeof *ids);
  for (int64_t i = 0; i < N; i++) {
    tl_to_i64(row, (const char *)t->data + (size_t)(i * T) * es, t->dtype, (size_t)T);
    for (int64_t k = 0; k < T; k++) {
      if (row[k] < 0 || row[k] >= vocab || row[k] > INT32_MAX) {
        tl_fail("%s: input_ids[%lld, %lld] = %lld is outside the vocabulary [0, %lld)", source, (long long)i,
                (long long)k, (long long)row[k], (long long)vocab);
        free(ids);
        goto done;
      }
      ids[k] = (int32_t)row[k];
    }
    if (writer_sink(w, ids, 1, T) != 0) { free(ids); goto done; }
  }
  free(ids);
  w->h.total_tokens = (uint64_t)(N * T);
  const char *m = tl_st_meta(&st, "nats_to_bpb");
  double v;
  if (m && tl_parse_double(m, &v) == 0 && v > 0) {
    w->h.nats_to_bpb = v;
  } else {
    if (m) tl_warn("%s: __metadata__.nats_to_bpb '%s' is not a positive number; ignored", source, m);
    w->h.flags |= 1;
    w->h.nats_to_bpb = NAN;
  }
  rc = 0;
done:
  free(row);
  tl_st_close(&st);
  return rc;
}

/* A short formatted string in a static buffer (one use per call site). */
static const char *fmt_static(const char *fmt, double v) {
  static char buf[64];
  snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

static int build(const char *source, const tl_tokenizer *tok, const tl_data_opts *o, int64_t T,
                 const unsigned char key[32], const unsigned char src_sha[32], const char *path) {
  char *tmp = tl_sprintf("%s.tmp.%ld", path, (long)getpid());
  writer w = {0};
  w.tmp = tmp;
  w.t_start = w.t_report = tl_now();
  w.h.version = TL_CACHE_VERSION;
  w.h.seq_len = (uint64_t)T;
  memcpy(w.h.key, key, 32);
  memcpy(w.h.source_sha, src_sha, 32);
  w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd < 0) {
    tl_fail("%s: cannot create: %s", tmp, strerror(errno));
    free(tmp);
    return -1;
  }
  unsigned char hdr[HDR_SIZE] = {0};
  int rc = write_all(w.fd, hdr, HDR_SIZE, tmp); /* placeholder, rewritten at the end */
  if (rc == 0 && is_safetensors(source)) {
    rc = pretok_build(source, tok, T, &w);
  } else if (rc == 0) {
    if (!tok) {
      rc = tl_fail("%s: a tokenizer is needed to tokenize a text corpus", source);
    } else {
      int64_t v = tl_tokenizer_vocab_size(tok);
      w.h.vocab = (uint32_t)v;
      w.h.id_size = v <= 65536 ? 2 : 4;
      tl_chunk_stats st;
      const char **paths = tl_malloc((size_t)(1 + o->n_more) * sizeof *paths);
      paths[0] = source;
      for (int i = 0; i < o->n_more; i++) paths[1 + i] = o->more_sources[i];
      rc = tl_chunk_stream_files(paths, 1 + o->n_more, o->text_column, tok, T, o->shuffle_docs, o->shuffle_seed,
                                 writer_sink, &w, &st);
      free(paths);
      if (rc == 0) {
        w.h.total_tokens = st.total_tokens;
        w.h.total_bytes = st.total_bytes;
        w.h.nats_to_bpb = ((double)st.total_tokens / (double)st.total_bytes) / log(2.0);
      }
    }
  }
  if (rc == 0) {
    header_encode(&w.h, hdr);
    if (pwrite(w.fd, hdr, HDR_SIZE, 0) != HDR_SIZE) rc = tl_fail("%s: write failed: %s", tmp, strerror(errno));
  }
  if (rc == 0 && fsync(w.fd) != 0) rc = tl_fail("%s: fsync failed: %s", tmp, strerror(errno));
  if (close(w.fd) != 0 && rc == 0) rc = tl_fail("%s: close failed: %s", tmp, strerror(errno));
  if (rc == 0 && rename(tmp, path) != 0) rc = tl_fail("%s: rename failed: %s", path, strerror(errno));
  if (rc == 0) rc = tl_fsync_dir_of(path);
  if (rc != 0) unlink(tmp); /* never leave a partial cache behind */
  else
    tl_info("token cache %s: %llu chunks of %lld tokens, %s (%.1f s)", path, (unsigned long long)w.h.n_chunks,
            (long long)T, isfinite(w.h.nats_to_bpb) ? fmt_static("nats_to_bpb %.6f", w.h.nats_to_bpb)
                                                 : "nats_to_bpb unknown (no byte counts: metrics in nats per token)",
            tl_now() - w.t_start);
  free(w.conv);
  free(tmp);
  return rc;
}

int tl_data_prepare(const char *source, const tl_tokenizer *tok, const tl_data_opts *o, char **cache_path,
                    int *built) {
  *cache_path = NULL;
  if (built) *built = 0;
  if (!o->cache_dir || !*o->cache_dir) return tl_fail("data: no cache directory given");
  if (!o->text_column || !*o->text_column) return tl_fail("data: empty text column name");
  if (o->max_seq_len < 2 || o->max_seq_len > (1 << 30))
    return tl_fail("data: max_seq_len %lld: expected 2 .. 2^30", (long long)o->max_seq_len);
  int64_t T = effective_T(source, tok, o);
  if (T < 2) return tl_fail("data: chunk length min(model_max_length, max_seq_len) = %lld, expected >= 2", (long long)T);

  if (o->n_more && is_safetensors(source))
    return tl_fail("%s: a pre-tokenized .safetensors corpus is one file; it cannot be combined with others", source);
  for (int i = 0; i < o->n_more; i++)
    if (is_safetensors(o->more_sources[i]))
      return tl_fail("%s: a pre-tokenized .safetensors corpus cannot follow text corpora", o->more_sources[i]);
  unsigned char src_sha[32], key[32];
  TL_TRY(sha256_file(source, src_sha));
  if (o->n_more) { /* the bytes of every file, in order: the hash of their hashes */
    tl_sha256 all;
    tl_sha256_init(&all);
    tl_sha256_update(&all, src_sha, 32);
    for (int i = 0; i < o->n_more; i++) {
      unsigned char h[32];
      TL_TRY(sha256_file(o->more_sources[i], h));
      tl_sha256_update(&all, h, 32);
    }
    tl_sha256_final(&all, src_sha);
  }
  char src_hex[65];
  tl_hex(src_sha, 32, src_hex);
  char *set = settings_string(source, tok, o);
  tl_sha256 s;
  tl_sha256_init(&s);
  tl_sha256_update(&s, src_hex, 64);
  tl_sha256_update(&s, "\n", 1);
  tl_sha256_update(&s, set, strlen(set));
  tl_sha256_final(&s, key);
  free(set);

  TL_TRY(tl_mkdirs(o->cache_dir));
  char *path = tl_data_cache_path(source, tok, o);
  if (tl_file_exists(path)) {
    tl_dataset *d;
    if (tl_data_open(&d, path, 1) == 0) {
      /* the key covers the source bytes and the settings; the header fields those
       * decide must say the same (a rewritten header with a fixed CRC is not ours) */
      int same = memcmp(d->h.key, key, 32) == 0 && memcmp(d->h.source_sha, src_sha, 32) == 0 &&
                 d->h.seq_len == (uint64_t)T;
      tl_data_close(d);
      if (same) {
        tl_info("reusing token cache %s", path);
        *cache_path = path;
        return 0;
      }
      tl_warn("token cache %s is stale (source, tokenizer or settings changed); rebuilding", path);
    } else {
      tl_warn("token cache unusable: %s; rebuilding", tl_errmsg());
    }
    tl_clear_error();
  }
  if (build(source, tok, o, T, key, src_sha, path) != 0) {
    free(path);
    return -1;
  }
  if (built) *built = 1;
  *cache_path = path;
  return 0;
}
