/* Training/evaluation data: corpus reading, reference-exact chunking, a token
 * cache on disk, and a deterministic sharded sampler.
 *
 * Flow (one process):   tl_data_prepare(...) -> cache path;  tl_data_open(path) -> tl_dataset
 * Flow (MPI, N ranks):  rank 0: tl_data_prepare; barrier; every rank: tl_data_cache_path + tl_data_open.
 * tl_data_cache_path reads nothing but its arguments, so every rank can compute it
 * without touching the corpus; tl_data_open is read-only and cheap (mmap + header check).
 *
 * Chunking reproduces tuned-lens 0.2.0 `chunk_and_tokenize` (see src/data/chunk.c for the
 * exact rules): documents in batches of 2048, each batch joined as EOS+doc1+EOS+doc2+...,
 * tokenized, cut into chunks of T = min(model_max_length, max_seq_len) tokens, the batch's
 * last chunk dropped; tokenizers whose post-processor adds BOS get BOS + (T-1) text tokens
 * per chunk. nats_to_bpb = (total_tokens / total_utf8_bytes) / ln 2. */
#ifndef TLENS_DATA_H
#define TLENS_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlens/tokenizer.h"

/* ---- corpus reading -------------------------------------------------------- */

/* Streams documents from a .jsonl or .jsonl.zst file (zstd decompressed on the fly,
 * never to disk). Each non-blank line must be a JSON object whose `column` member is a
 * string of valid UTF-8. Errors name the file and the 1-based line number. */
typedef struct tl_corpus tl_corpus;
int tl_corpus_open(tl_corpus **out, const char *path, const char *column);
/* Next document: *text points into the reader (valid until the next call), *len its
 * byte length; *line its line number. Returns 1 when a document was read, 0 at the end
 * (error if the file held no document at all), -1 on error. */
int tl_corpus_next(tl_corpus *c, const char **text, size_t *len, int64_t *line);
void tl_corpus_close(tl_corpus *c);

/* ---- chunking (in memory) ---------------------------------------------------- */

#define TL_DATA_BATCH_DOCS 2048 /* the reference's datasets.map batch size */

typedef struct {
  int32_t *ids;          /* [n_chunks * seq_len], malloc'd */
  int64_t n_chunks;
  int64_t seq_len;       /* min(model_max_length, max_seq_len) */
  uint64_t total_tokens; /* reference count: tokens of ALL chunks, dropped last ones included */
  uint64_t total_bytes;  /* UTF-8 bytes of every joined batch text, EOS strings included */
  double nats_to_bpb;
} tl_chunks;

/* Chunks a whole .jsonl/.jsonl.zst corpus in memory (tests, small evals). */
int tl_chunk_corpus(const char *path, const char *column, const tl_tokenizer *tok,
                    int64_t max_seq_len, tl_chunks *out);
void tl_chunks_free(tl_chunks *c);

/* ---- token cache -------------------------------------------------------------- */

typedef struct {
  const char *text_column; /* ["text"] */
  bool shuffle_docs;       /* [false] documents in a seeded random order before chunking */
  const char *const *more_sources; /* [NULL] further .jsonl[.zst] files read after source, */
  int n_more;                      /* as if all were one concatenated file */
  uint64_t shuffle_seed;   /* [42] */
  int64_t max_seq_len;     /* [2048] */
  const char *cache_dir;   /* required: where cache files live (created if missing) */
} tl_data_opts;
void tl_data_opts_default(tl_data_opts *o);

/* The chunk length actually used: min(tokenizer model_max_length, max_seq_len). */
int64_t tl_data_seq_len(const tl_tokenizer *tok, int64_t max_seq_len);

/* Cache file path for (source, tokenizer, options): "<cache_dir>/<basename>.<16 hex>.tltok",
 * the hex being a hash of the absolute source path, tokenizer hash and settings.
 * Reads no file. malloc'd. tok may be NULL for pre-tokenized .safetensors sources. */
char *tl_data_cache_path(const char *source, const tl_tokenizer *tok, const tl_data_opts *o);

/* Makes sure a valid cache exists for source and returns its path (malloc'd).
 * source: .jsonl, .jsonl.zst, or .safetensors holding an integer `input_ids` [N, T]
 * (T must equal the chunk length; tok may then be NULL, else ids are checked < vocab;
 * nats_to_bpb comes from its __metadata__.nats_to_bpb, or is NaN when absent).
 * An existing cache is reused when its key (sha256 of the source bytes, tokenizer hash,
 * chunk length, text column, format version) matches and its payload checksum verifies;
 * otherwise (stale, truncated, corrupt) it is rebuilt with a message. The file is written
 * atomically (temp + fsync + rename). *built = 1 when this call tokenized (may be NULL). */
int tl_data_prepare(const char *source, const tl_tokenizer *tok, const tl_data_opts *o,
                    char **cache_path, int *built);

/* A read-only, memory-mapped token cache. */
typedef struct tl_dataset tl_dataset;
/* Checks the header (magic, version, header checksum, sizes); verify_payload = 1 also
 * checks the payload checksum (reads the whole file). */
int tl_data_open(tl_dataset **out, const char *cache_path, int verify_payload);
void tl_data_close(tl_dataset *d);
int64_t tl_data_len(const tl_dataset *d);      /* number of chunks */
int64_t tl_data_seq_len_of(const tl_dataset *d);
int32_t tl_data_vocab_size(const tl_dataset *d);
double tl_data_nats_to_bpb(const tl_dataset *d); /* NaN when unknown (pre-tokenized without metadata) */
/* SHA-256 (hex) of the source bytes the cache was made from (of every file's hash, in
 * order, for several files). out: 65 bytes. */
void tl_data_source_hash(const tl_dataset *d, char out[65]);
/* Copies chunks idx[0..n) into out[n * seq_len] as int32. Error if an index is out of range. */
int tl_data_gather(const tl_dataset *d, const int64_t *idx, int64_t n, int32_t *out);

/* ---- sampler ------------------------------------------------------------------ */

/* Sample order: epoch e is a permutation of 0..n-1 made by Fisher-Yates driven by
 * splitmix64 seeded with (seed + e); without shuffle it is the identity. Global batches
 * of G consecutive positions are drawn from the current epoch; a batch never straddles two
 * epochs (the < G leftover samples of an epoch are skipped). Rank r of W takes positions
 * [r*G/W, (r+1)*G/W) of each global batch, so the global batch is the same for any W. */
typedef struct {
  int64_t epoch, pos; /* next global batch starts at position pos of epoch `epoch` */
} tl_cursor;

typedef struct {
  int64_t n;
  uint64_t seed;
  int shuffle;
  tl_cursor cur;
  int64_t *perm;      /* permutation of the current epoch (NULL without shuffle) */
  int64_t perm_epoch; /* epoch perm was built for */
} tl_sampler;

int tl_sampler_init(tl_sampler *s, int64_t n, uint64_t seed, int shuffle);
void tl_sampler_free(tl_sampler *s);
/* Rank's share of the next global batch of G samples: chunk indices into idx (capacity
 * >= ceil(G/W)), their count into *count; advances the cursor by one global batch. */
int tl_sampler_next(tl_sampler *s, int64_t G, int rank, int world, int64_t *idx, int64_t *count);
tl_cursor tl_sampler_cursor(const tl_sampler *s);
int tl_sampler_restore(tl_sampler *s, tl_cursor c); /* error if out of range */

/* Error (one line) unless n_chunks >= num_steps * samples_per_step: training never wraps. */
int tl_data_check_enough(int64_t n_chunks, int64_t num_steps, int64_t samples_per_step,
                         const char *what);

/* splitmix64 step, exposed for tests: advances *state and returns the next output. */
uint64_t tl_splitmix64(uint64_t *state);

#endif
