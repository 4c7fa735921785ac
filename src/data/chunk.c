/* Chunking that reproduces tuned-lens 0.2.0 `chunk_and_tokenize` token for token.
 *
 * The reference maps a function over the dataset in batches of 2048 documents (HF
 * datasets, batched, one process). For each batch it builds
 *     joined = EOS + doc_1 + EOS + doc_2 + ... + EOS + doc_k      (sep.join([""] + docs))
 * and calls tokenizer(joined, max_length=T, truncation=True, return_overflowing_tokens=True)
 * with T = min(model_max_length, max_seq_len); add_special_tokens is left at True.
 *
 *  - Byte-level BPE tokenizers (GPT-2, GPT-NeoX) add no special token, so the chunks are
 *    the consecutive T-token slices of encode(joined); the last one is usually partial.
 *  - Tokenizers whose post-processor adds BOS (Llama family): the fast tokenizer truncates
 *    the encoding to T - 1 tokens (T minus the tokens the post-processor will add), puts
 *    the rest into `overflowing` pieces of T - 1 tokens each, and applies the
 *    post-processor to the first encoding AND to every overflowing piece. So every chunk
 *    is BOS followed by T - 1 text tokens; the first one reads BOS, EOS, doc_1, ...
 *    (The reference only flattens `overflowing_tokens`, a key slow tokenizers return;
 *    fast tokenizers return the chunks directly as a list of lists.)
 *
 * Then, per batch: total_tokens = sum of the lengths of ALL chunks (the partial last one
 * and, for BOS tokenizers, one BOS per chunk included); total_bytes = UTF-8 length of
 * `joined` (the EOS strings included); the last chunk is dropped whatever its length.
 * nats_to_bpb = (sum of total_tokens / sum of total_bytes) / ln 2 over all batches.
 *
 * The reference raises an error when a batch keeps no chunk. We only fail when the
 * whole corpus keeps none; a short final batch is dropped with a warning (its tokens and
 * bytes still count in the ratio, which describes the text).
 *
 * Parallelism: batches are independent by definition, so several batches are encoded at
 * once (OpenMP) and emitted in corpus order. Encoding a whole batch as one string (rather
 * than document by document) keeps the result identical to the reference for any
 * tokenizer, whatever its normalizer or added-token rules do at document boundaries. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "tlens/core.h"
#include "tlens/data.h"

const char *tl_data_eos_text(const tl_tokenizer *tok) {
  const char *e = tl_tokenizer_eos_text(tok);
  return e ? e : "<|endoftext|>"; /* the reference's fallback separator */
}

int64_t tl_data_seq_len(const tl_tokenizer *tok, int64_t max_seq_len) {
  int64_t m = tok ? tl_tokenizer_model_max_length(tok) : INT64_MAX;
  return m < max_seq_len ? m : max_seq_len;
}

int tl_chunk_joined(const tl_tokenizer *tok, const char *text, size_t len, int64_t T,
                    int32_t **ids_out, int64_t *n_kept, uint64_t *tokens) {
  *ids_out = NULL;
  *n_kept = 0;
  *tokens = 0;
  if (T < 2) return tl_fail("chunk length %lld: expected at least 2 tokens", (long long)T);
  int32_t *ids;
  size_t n;
  TL_TRY(tl_tokenizer_encode(tok, text, len, 0, &ids, &n));
  int bos = tl_tokenizer_adds_bos(tok);
  int32_t bos_id = tl_tokenizer_bos_id(tok);
  if (bos && bos_id < 0) {
    free(ids);
    return tl_fail("tokenizer adds BOS but has no BOS token id");
  }
  int64_t step = bos ? T - 1 : T; /* text tokens per chunk */
  int64_t total = (int64_t)((n + (size_t)step - 1) / (size_t)step);
  if (total == 0) total = bos ? 1 : 0; /* an empty encoding still yields [BOS] */
  *tokens = (uint64_t)n + (bos ? (uint64_t)total : 0);
  int64_t kept = total > 0 ? total - 1 : 0; /* every kept chunk is full: only the last can be partial */
  if (kept > 0) {
    int32_t *out = tl_malloc((size_t)(kept * T) * sizeof *out);
    for (int64_t c = 0; c < kept; c++) {
      int32_t *dst = out + c * T;
      if (bos) *dst++ = bos_id;
      memcpy(dst, ids + c * step, (size_t)step * sizeof *dst);
    }
    *ids_out = out;
  }
  *n_kept = kept;
  free(ids);
  return 0;
}

typedef struct {
  tl_buf text;
  int64_t first_line, last_line, ndocs;
  int32_t *ids;
  int64_t n_kept;
  uint64_t tokens;
  char *err;
} batch;

/* Where documents come from: the corpus file in its order, or all of them held in
 * memory in a permuted order. */
typedef struct {
  tl_corpus *c;
  /* the files, read one after the other as if concatenated */
  const char *const *paths;
  const char *column;
  int npaths, cur;
  /* shuffled: documents [off[i], off[i] + len[i]) of text, visited as perm[0..n) */
  tl_buf text;
  size_t *off, *len;
  int64_t *line, *perm, n, next;
} doc_source;

/* The next document of the files in order, moving to the next file at an end. */
static int next_in_files(doc_source *s, const char **t, size_t *n, int64_t *line) {
  for (;;) {
    int r = tl_corpus_next(s->c, t, n, line);
    if (r != 0 || s->cur + 1 >= s->npaths) return r;
    tl_corpus_close(s->c);
    s->c = NULL;
    TL_TRY(tl_corpus_open(&s->c, s->paths[++s->cur], s->column));
  }
}

static int next_doc(doc_source *s, const char **t, size_t *n, int64_t *line) {
  if (!s->perm) return next_in_files(s, t, n, line);
  if (s->next >= s->n) return 0;
  int64_t k = s->perm[s->next++];
  *t = (const char *)s->text.data + s->off[k];
  *n = s->len[k];
  *line = s->line[k];
  return 1;
}

/* Reads up to TL_DATA_BATCH_DOCS documents into b. Returns 1 if any, 0 at the end, -1. */
static int read_batch(doc_source *c, const char *sep, batch *b) {
  size_t seplen = strlen(sep);
  b->text.len = 0;
  b->ndocs = 0;
  while (b->ndocs < TL_DATA_BATCH_DOCS) {
    const char *t;
    size_t n;
    int64_t line;
    int r = next_doc(c, &t, &n, &line);
    if (r < 0) return -1;
    if (r == 0) break;
    if (b->ndocs == 0) b->first_line = line;
    b->last_line = line;
    tl_buf_append(&b->text, sep, seplen);
    tl_buf_append(&b->text, t, n);
    b->ndocs++;
  }
  return b->ndocs > 0;
}

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Reads every document into s and draws the permutation. */
static int load_shuffled(doc_source *s, uint64_t seed) {
  size_t cap = 0;
  for (;;) {
    const char *t;
    size_t n;
    int64_t line;
    int r = next_in_files(s, &t, &n, &line);
    if (r < 0) return -1;
    if (r == 0) break;
    if ((size_t)s->n == cap) {
      cap = cap ? 2 * cap : 1024;
      s->off = tl_realloc(s->off, cap * sizeof *s->off);
      s->len = tl_realloc(s->len, cap * sizeof *s->len);
      s->line = tl_realloc(s->line, cap * sizeof *s->line);
    }
    s->off[s->n] = s->text.len;
    s->len[s->n] = n;
    s->line[s->n] = line;
    tl_buf_append(&s->text, t, n);
    s->n++;
  }
  s->perm = tl_malloc((size_t)(s->n ? s->n : 1) * sizeof *s->perm);
  for (int64_t i = 0; i < s->n; i++) s->perm[i] = i;
  uint64_t x = seed;
  for (int64_t i = s->n - 1; i > 0; i--) { /* unbiased: rejection of the short last range */
    uint64_t range = (uint64_t)i + 1, limit = UINT64_MAX - UINT64_MAX % range, v;
    do v = splitmix64(&x);
    while (v >= limit);
    int64_t j = (int64_t)(v % range), t = s->perm[i];
    s->perm[i] = s->perm[j];
    s->perm[j] = t;
  }
  return 0;
}

static int chunk_stream(const char *const *paths, int npaths, const char *column, const tl_tokenizer *tok, int64_t T,
                        bool shuffle, uint64_t seed, tl_chunk_sink sink, void *ctx, tl_chunk_stats *stats) {
  memset(stats, 0, sizeof *stats);
  const char *path = paths[0];
  if (T < 2) return tl_fail("%s: chunk length %lld: expected at least 2 tokens", path, (long long)T);
  doc_source src = {.paths = paths, .npaths = npaths, .column = column};
  TL_TRY(tl_corpus_open(&src.c, path, column));
  doc_source *c = &src;
  if (shuffle && load_shuffled(&src, seed) != 0) {
    tl_corpus_close(src.c);
    free(src.off), free(src.len), free(src.line), free(src.perm), tl_buf_free(&src.text);
    return -1;
  }
  const char *sep = tl_data_eos_text(tok);
  int group = 2 * omp_get_max_threads(); /* batches encoded together */
  batch *bs = tl_calloc((size_t)group, sizeof *bs);
  int rc = 0, done = 0;
  while (!done && rc == 0) {
    int nb = 0;
    while (nb < group) {
      int r = read_batch(c, sep, &bs[nb]);
      if (r < 0) { rc = -1; break; }
      if (r == 0) { done = 1; break; }
      nb++;
    }
    if (rc != 0) break;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < nb; i++) {
      batch *b = &bs[i];
      if (tl_chunk_joined(tok, (const char *)b->text.data, b->text.len, T, &b->ids, &b->n_kept, &b->tokens) != 0)
        b->err = tl_sprintf("%s: lines %lld..%lld: %s", path, (long long)b->first_line,
                            (long long)b->last_line, tl_errmsg()); /* the message is thread-local */
    }
    for (int i = 0; i < nb; i++) {
      batch *b = &bs[i];
      if (rc == 0 && b->err) rc = tl_fail("%s", b->err);
      if (rc == 0) {
        stats->total_tokens += b->tokens;
        stats->total_bytes += b->text.len;
        stats->n_docs += b->ndocs;
        if (b->n_kept == 0)
          tl_warn("%s: the batch of documents on lines %lld..%lld makes at most one partial chunk of %lld "
                  "tokens, which is dropped; it keeps no chunk", path, (long long)b->first_line,
                  (long long)b->last_line, (long long)T);
        else if (sink(ctx, b->ids, b->n_kept, T) != 0)
          rc = -1;
        stats->n_chunks += b->n_kept;
      }
      free(b->err);
      b->err = NULL;
      free(b->ids);
      b->ids = NULL;
    }
  }
  for (int i = 0; i < group; i++) tl_buf_free(&bs[i].text);
  free(bs);
  if (src.c) tl_corpus_close(src.c);
  free(src.off), free(src.len), free(src.line), free(src.perm), tl_buf_free(&src.text);
  if (rc == 0 && stats->n_chunks == 0)
    rc = tl_fail("%s: not enough text for one chunk of %lld tokens (each batch of %d documents drops its "
                 "last, partial chunk)", path, (long long)T, TL_DATA_BATCH_DOCS);
  return rc;
}

int tl_chunk_stream(const char *path, const char *column, const tl_tokenizer *tok, int64_t T, tl_chunk_sink sink,
                    void *ctx, tl_chunk_stats *stats) {
  return chunk_stream(&path, 1, column, tok, T, false, 0, sink, ctx, stats);
}

int tl_chunk_stream_files(const char *const *paths, int npaths, const char *column, const tl_tokenizer *tok,
                          int64_t T, bool shuffle, uint64_t seed, tl_chunk_sink sink, void *ctx,
                          tl_chunk_stats *stats) {
  if (npaths < 1) return tl_fail("data: no corpus file");
  return chunk_stream(paths, npaths, column, tok, T, shuffle, seed, sink, ctx, stats);
}

static int mem_sink(void *ctx, const int32_t *ids, int64_t n, int64_t T) {
  tl_buf *b = ctx;
  tl_buf_append(b, ids, (size_t)(n * T) * sizeof *ids);
  return 0;
}

int tl_chunk_corpus(const char *path, const char *column, const tl_tokenizer *tok, int64_t max_seq_len,
                    tl_chunks *out) {
  memset(out, 0, sizeof *out);
  int64_t T = tl_data_seq_len(tok, max_seq_len);
  tl_buf b = {0};
  tl_chunk_stats st;
  if (tl_chunk_stream(path, column, tok, T, mem_sink, &b, &st) != 0) {
    tl_buf_free(&b);
    return -1;
  }
  out->ids = (int32_t *)b.data;
  out->n_chunks = st.n_chunks;
  out->seq_len = T;
  out->total_tokens = st.total_tokens;
  out->total_bytes = st.total_bytes;
  out->nats_to_bpb = ((double)st.total_tokens / (double)st.total_bytes) / log(2.0);
  return 0;
}

void tl_chunks_free(tl_chunks *c) {
  free(c->ids);
  memset(c, 0, sizeof *c);
}
