/* Internal state of a loaded tokenizer and the functions its files share.
 * Everything here is read-only after tl_tokenizer_load returns, except the
 * per-thread word caches (each thread owns its own; the registry that frees them
 * is mutex-guarded).
 *
 * What lives where (each arrow is a call; none runs back):
 *   tok_strmap.c     the byte-string hash and the string -> id map
 *   tok_bytelevel.c  the GPT-2 byte alphabet (ByteLevel tokens <-> bytes)
 *   tok_normalize.c  the normalizer steps                     -> unicode.c
 *   tok_encode.c     encoding and its per-thread caches       -> strmap, normalize, unicode.c
 *   tok_offsets.c    encoding with each token's span of text   -> encode, normalize, unicode.c
 *   tok_decode.c     decoding                                 -> bytelevel, unicode.c
 *   tok_load.c       tokenizer.json / tokenizer_config.json,  -> strmap, bytelevel, normalize,
 *                    and tl_tokenizer_free                       encode (tok_caches_free) */
#ifndef TLENS_TOKENIZER_INTERNAL_H
#define TLENS_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "tlens/core.h"
#include "tlens/tokenizer.h"

/* ---- string -> id hash map over an arena of bytes ---- */
typedef struct {
  uint32_t off, len; /* key bytes in arena */
  int32_t id;
} tok_entry;
typedef struct {
  tok_entry *entries;
  size_t n, cap;
  int32_t *slots; /* index into entries, -1 empty */
  size_t nslots;  /* power of two */
  tl_buf arena;
} tok_strmap;

/* ---- (id, id) -> (rank, merged id) ---- */
typedef struct {
  uint64_t key; /* (a << 32) | b; UINT64_MAX empty */
  uint32_t rank;
  int32_t id;
} tok_merge;

/* ---- normalizers / decoders: flattened sequences of simple steps ---- */
enum { NORM_NFC = 1, NORM_PREPEND, NORM_REPLACE };
enum { DEC_BYTELEVEL = 1, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };
typedef struct {
  int type;
  char *a, *b;     /* prepend text / replace pattern and content / strip content */
  int start, stop; /* Strip: how many chars to cut at each end */
  int flag;        /* Metaspace: strip the leading space of the first token */
} tok_step;

/* ---- added tokens ---- */
typedef struct {
  char *content; /* as matched in text: normalized when `normalized` and a normalizer exists */
  size_t len;
  char *name;    /* the content as written in tokenizer.json (how configs name the token) */
  int32_t id;    /* assigned as HF does: the model's id when the content is in the vocab */
  int special, lstrip, rstrip, single_word, normalized;
} tok_added;
typedef struct { /* byte trie over added-token contents */
  int32_t child, sibling, token; /* first child, next sibling, index in added[] or -1 */
  unsigned char byte;
} tok_trie_node;
typedef struct {
  tok_trie_node *nodes;
  int n, cap;
  unsigned char first[256]; /* 1 when some token starts with this byte */
  unsigned char first_bytes[4]; int nfirst; /* the distinct first bytes (listed when <= 4) */
  int ntokens;
} tok_trie;

typedef struct tok_cache tok_cache;

struct tl_tokenizer {
  char *path;
  char hash[65];
  /* model (BPE) */
  tok_strmap vocab;       /* model token (bytes; byte-level decoded when byte_level) -> id */
  tok_merge *merges;      /* open addressing */
  size_t nmerge_slots;    /* power of two */
  int byte_level;         /* words are raw bytes, one initial symbol per byte */
  int32_t byte_id[256];   /* byte-level: id of each single byte, -1 if absent */
  int32_t unk_id;         /* -1 if none */
  int fuse_unk, byte_fallback, ignore_merges;
  int32_t byte_token[256];/* byte_fallback: id of "<0xNN>", -1 if absent */
  /* pipeline */
  tok_step *norm; int nnorm;
  int pre_bytelevel, pre_add_prefix_space, pre_use_regex;
  int32_t *post_prefix; int npost_prefix;  /* ids the post-processor puts before / after */
  int32_t *post_suffix; int npost_suffix;
  int post_trim_offsets, post_prefix_space; /* ByteLevel/Roberta post-processor: trim spaces off offsets */
  tok_step *dec; int ndec; int has_decoder;
  /* tokens */
  tok_added *added; int nadded;
  tok_trie trie_raw, trie_norm; /* tokens matched before / after normalization */
  char **id_token;  size_t *id_token_len; /* id -> token string as in tokenizer.json (added ones win) */
  int32_t vocab_size;
  int32_t eos_id, bos_id;
  char *eos_text;
  int adds_bos;
  int64_t model_max_length;
  /* per-thread caches */
  pthread_key_t cache_key;
  pthread_mutex_t cache_lock;
  tok_cache **caches; int ncaches, capcaches;
  uint64_t serial;
};

/* ---- tok_strmap.c ---- */
uint64_t tok_hash_bytes(const void *p, size_t n);
void tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Inserts key -> id; returns 0, or 1 when the key was already present (id updated). */
int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t id);
int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len); /* -1 if absent */

/* The merge of the pair (a, b), or NULL; the table is filled by tok_load.c. */
static inline const tok_merge *tok_merge_get(const struct tl_tokenizer *t, int32_t a, int32_t b) {
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  size_t mask = t->nmerge_slots - 1;
  size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
  for (;;) {
    const tok_merge *m = &t->merges[i];
    if (m->key == key) return m;
    if (m->key == UINT64_MAX) return NULL;
    i = (i + 1) & mask;
  }
}

/* ---- tok_bytelevel.c ---- */
/* Maps a ByteLevel token string back to bytes (appended to out); returns 0, with
 * out unchanged, if a character is outside the byte alphabet. */
int tok_bytelevel_decode(const char *s, size_t n, tl_buf *out);

/* ---- tok_normalize.c ---- */
/* The normalizer applied to s[0..n) into out, with where each output byte comes
 * from: the bytes [from[2k], from[2k+1]) of s (the whole character, or the whole
 * text a step replaced). *from is malloc'd, 2 * out->len entries. */
void tok_normalize_aligned(const tl_tokenizer *t, const unsigned char *s, size_t n, tl_buf *out, size_t **from);
/* Applies the normalizer steps to s[0..n); returns s itself or one of the two
 * scratch buffers (reused by the next call), with the length in *out_n. */
const unsigned char *tok_normalize(const tl_tokenizer *t, tl_buf scratch[2], const unsigned char *s, size_t n,
                                   size_t *out_n);
/* The normalizer applied to s, as a malloc'd NUL-terminated copy. */
char *tok_normalize_copy(const tl_tokenizer *t, const char *s, size_t n, size_t *out_n);

/* ---- tok_encode.c ---- */
/* Frees the per-thread caches of every thread that encoded with t. */
void tok_caches_free(struct tl_tokenizer *t);
/* The class tables the matchers below read; once per process, before them. */
void tok_encode_init(void);
/* End of the GPT-2 split pattern's match that starts at s[i] (always > i). */
size_t tok_gpt2_match(const unsigned char *s, size_t n, size_t i);
/* The next added token of trie tr in s[*at..n), as HF splits on it (leftmost,
 * then longest; single_word, lstrip back to `done` at most, rstrip): its index in
 * t->added, with [*start, *stop) the span it takes; *at moves past it. -1 (and
 * *at = n) when there is none. */
int tok_next_added(const struct tl_tokenizer *t, const tok_trie *tr, const unsigned char *s, size_t n, size_t *at,
                   size_t done, size_t *start, size_t *stop);

#endif
