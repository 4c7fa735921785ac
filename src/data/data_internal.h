/* Internal pieces of the data module shared between its .c files (and its tests). */
#ifndef TLENS_DATA_INTERNAL_H
#define TLENS_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tlens/data.h"

/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or -1 when valid. */
int64_t tl_utf8_invalid_at(const char *s, size_t n);

/* Receives the kept chunks of one batch, in corpus order: ids[n_chunks * seq_len]. */
typedef int (*tl_chunk_sink)(void *ctx, const int32_t *ids, int64_t n_chunks, int64_t seq_len);

typedef struct {
  int64_t n_chunks;
  uint64_t total_tokens, total_bytes;
  int64_t n_docs;
} tl_chunk_stats;

/* Reads the corpus, chunks it batch by batch (batches encoded in parallel with OpenMP,
 * emitted in order) and hands every batch's kept chunks to sink. seq_len is the
 * effective chunk length (>= 2). Error if no chunk at all is produced. */
int tl_chunk_stream(const char *path, const char *column, const tl_tokenizer *tok, int64_t seq_len,
                    tl_chunk_sink sink, void *ctx, tl_chunk_stats *stats);
/* The same over several files read one after the other as if they were one
 * concatenated file; with shuffle, over their documents in a seeded random order
 * (--dataset_shuffle: every document is read into memory first, then permuted by
 * Fisher-Yates driven by SplitMix64 from seed, then batched and chunked as above). */
int tl_chunk_stream_files(const char *const *paths, int npaths, const char *column, const tl_tokenizer *tok,
                          int64_t seq_len, bool shuffle, uint64_t seed, tl_chunk_sink sink, void *ctx,
                          tl_chunk_stats *stats);

/* Chunks one already joined batch text (reference rules, see chunk.c): *ids holds the
 * kept chunks (malloc'd, NULL when none), *n_kept their count, *tokens the reference
 * token count of the batch (all chunks, the dropped last one included). */
int tl_chunk_joined(const tl_tokenizer *tok, const char *text, size_t len, int64_t seq_len,
                    int32_t **ids, int64_t *n_kept, uint64_t *tokens);

/* The separator the reference joins documents with: the EOS token's text. */
const char *tl_data_eos_text(const tl_tokenizer *tok);

#endif
