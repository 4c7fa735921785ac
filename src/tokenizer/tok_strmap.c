/* The byte-string hash and the string -> id map of tok_internal.h, used by the
 * loader (vocabulary, added tokens) and by the encoder (lookups, word cache). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

uint64_t tok_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    s += 8; n -= 8;
  }
  uint64_t w = 0;
  for (size_t k = 0; k < n; k++) w |= (uint64_t)s[k] << (8 * k); /* cheaper than a variable-length memcpy */
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  return h;
}

void tok_strmap_init(tok_strmap *m, size_t expected) {
  memset(m, 0, sizeof *m);
  m->nslots = 16;
  while (m->nslots < expected * 2) m->nslots *= 2;
  m->slots = tl_malloc(m->nslots * sizeof(int32_t));
  memset(m->slots, 0xFF, m->nslots * sizeof(int32_t));
}

void tok_strmap_free(tok_strmap *m) {
  free(m->entries);
  free(m->slots);
  tl_buf_free(&m->arena);
  memset(m, 0, sizeof *m);
}

/* The slot holding key, or the empty slot where it would go (linear probing). */
static size_t strmap_find(const tok_strmap *m, const void *key, size_t len) {
  size_t mask = m->nslots - 1, i = (size_t)tok_hash_bytes(key, len) & mask;
  for (;;) {
    int32_t e = m->slots[i];
    if (e < 0) return i;
    const tok_entry *en = &m->entries[e];
    if (en->len == len && memcmp(m->arena.data + en->off, key, len) == 0) return i;
    i = (i + 1) & mask;
  }
}

int tok_strmap_put(tok_strmap *m, const void *key, size_t len, int32_t id) {
  if ((m->n + 1) * 2 > m->nslots) { /* grow and rehash */
    size_t ns = m->nslots * 2;
    free(m->slots);
    m->nslots = ns;
    m->slots = tl_malloc(ns * sizeof(int32_t));
    memset(m->slots, 0xFF, ns * sizeof(int32_t));
    for (size_t e = 0; e < m->n; e++) {
      size_t i = strmap_find(m, m->arena.data + m->entries[e].off, m->entries[e].len);
      m->slots[i] = (int32_t)e;
    }
  }
  size_t i = strmap_find(m, key, len);
  if (m->slots[i] >= 0) { m->entries[m->slots[i]].id = id; return 1; }
  if (m->n == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 1024;
    m->entries = tl_realloc(m->entries, m->cap * sizeof(tok_entry));
  }
  tok_entry *en = &m->entries[m->n];
  en->off = (uint32_t)m->arena.len;
  en->len = (uint32_t)len;
  en->id = id;
  tl_buf_append(&m->arena, key, len);
  m->slots[i] = (int32_t)m->n++;
  return 0;
}

int32_t tok_strmap_get(const tok_strmap *m, const void *key, size_t len) {
  int32_t e = m->slots[strmap_find(m, key, len)];
  return e < 0 ? -1 : m->entries[e].id;
}
