/* Hugging Face tokenizer.json: byte-level BPE (GPT-2, GPT-NeoX) and
 * SentencePiece-style BPE with byte fallback (Llama family), giving the same ids
 * and text as the Hugging Face tokenizers library (added tokens split first,
 * normalizer, pre-tokenizer, BPE by merge rank, post-processor; decoder chain). */
#ifndef TLENS_TOKENIZER_H
#define TLENS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_tokenizer tl_tokenizer;

/* Loads tokenizer.json (and, when present beside it, tokenizer_config.json for
 * model_max_length). Errors are one line naming the file and the field. */
int tl_tokenizer_load(tl_tokenizer **out, const char *tokenizer_json_path);
void tl_tokenizer_free(tl_tokenizer *t);

/* Encodes UTF-8 text. add_special: apply the post-processor (e.g. BOS for Llama).
 * *ids is malloc'd (caller frees). Thread-safe for concurrent calls on one tokenizer. */
int tl_tokenizer_encode(const tl_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t **ids, size_t *n);
/* The same ids with each token's span of the text: bytes [start, end) of the
 * UTF-8 input it came from (HF tokenizers' `offsets`, in bytes: a token holding
 * part of a character, such as a byte-fallback <0xNN>, spans the whole
 * character; the post-processor's special tokens span [0, 0)), and, when tokens
 * is not NULL, each token's string (HF's `tokens`: the vocabulary's spelling; for
 * an added token the text it split off, whitespace taken by lstrip/rstrip
 * included). For showing tokens: slower than tl_tokenizer_encode. *ids, *spans
 * and *tokens are malloc'd (tokens: free with tl_tokenizer_tokens_free). */
typedef struct {
  size_t start, end;
} tl_token_span;
int tl_tokenizer_encode_offsets(const tl_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                                tl_token_span **spans, char ***tokens, size_t *n);
void tl_tokenizer_tokens_free(char **tokens, size_t n);
/* Decodes ids (skipping nothing) into a malloc'd NUL-terminated UTF-8 string. */
int tl_tokenizer_decode(const tl_tokenizer *t, const int32_t *ids, size_t n, char **text);

int32_t tl_tokenizer_vocab_size(const tl_tokenizer *t); /* max id + 1, added tokens included */
int32_t tl_tokenizer_eos_id(const tl_tokenizer *t);     /* -1 if none */
int32_t tl_tokenizer_bos_id(const tl_tokenizer *t);     /* -1 if none */
const char *tl_tokenizer_eos_text(const tl_tokenizer *t); /* e.g. "<|endoftext|>", "</s>"; NULL if none */
/* 1 when the post-processor adds BOS (Llama family): chunking then makes BOS + T-1 tokens. */
int tl_tokenizer_adds_bos(const tl_tokenizer *t);
/* model_max_length from tokenizer_config.json, or INT64_MAX when absent/unlimited. */
int64_t tl_tokenizer_model_max_length(const tl_tokenizer *t);
/* sha256 hex of the tokenizer.json bytes (for cache keys). */
const char *tl_tokenizer_hash(const tl_tokenizer *t);
/* The token's string as tokenizer.json spells it (e.g. "\u0120the" for GPT-2's
 * " the"; added tokens as matched in text), or NULL when id is not a token. */
const char *tl_tokenizer_id_to_token(const tl_tokenizer *t, int32_t id);

#endif
