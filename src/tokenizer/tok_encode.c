/* Encoding: added-token splitting, normalization, the GPT-2 pre-tokenizer split
 * and BPE, in the order Hugging Face tokenizers applies them:
 *   1. split the text on added tokens that match the raw text (normalized=false);
 *   2. normalize each remaining piece, then split it on the other added tokens;
 *   3. pre-tokenize (ByteLevel: the GPT-2 split pattern) into words;
 *   4. BPE each word (merges applied lowest rank first, leftmost on ties);
 *   5. with add_special, wrap the ids with the post-processor's tokens. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

/* ---- per-thread state: a word -> ids cache and scratch buffers ---- */
typedef struct {
  uint64_t hash;
  uint32_t key_off, ids_off;
  uint16_t key_len, nids; /* key_len 0 = empty slot */
} cache_slot;

struct tok_cache {
  uint64_t serial;
  cache_slot *slots;
  size_t nslots, n;
  tl_buf keys;
  int32_t *ids; size_t nids, capids;
  /* scratch */
  tl_buf norm[2], prefixed; /* normalizer output, the text with a prefix space */
  int32_t *sym, *nid, *prev, *next; uint32_t *rank; size_t capsym;
  struct heap_item { uint32_t rank, pos; int32_t id; } *heap; size_t capheap;
};

enum { CACHE_SLOTS = 1 << 16, CACHE_MAX_WORD = 64 };

static void cache_clear(tok_cache *c) {
  memset(c->slots, 0, c->nslots * sizeof(cache_slot));
  c->n = 0;
  c->keys.len = 0;
  c->nids = 0;
}

void tok_caches_free(tl_tokenizer *t) {
  for (int i = 0; i < t->ncaches; i++) {
    tok_cache *c = t->caches[i];
    free(c->slots);
    tl_buf_free(&c->keys);
    free(c->ids);
    tl_buf_free(&c->norm[0]);
    tl_buf_free(&c->norm[1]);
    tl_buf_free(&c->prefixed);
    free(c->sym); free(c->nid); free(c->prev); free(c->next); free(c->rank);
    free(c->heap);
    free(c);
  }
  free(t->caches);
  t->caches = NULL;
  t->ncaches = t->capcaches = 0;
}

/* The calling thread's cache for this tokenizer, created on first use. The
 * tokenizer keeps a list of all caches so that tl_tokenizer_free releases them. */
static tok_cache *thread_cache(const tl_tokenizer *tc) {
  tl_tokenizer *t = (tl_tokenizer *)tc; /* only the mutex-guarded registry is written */
  tok_cache *c = pthread_getspecific(t->cache_key);
  if (c && c->serial == t->serial) return c;
  c = tl_calloc(1, sizeof *c);
  c->serial = t->serial;
  c->nslots = CACHE_SLOTS;
  c->slots = tl_calloc(c->nslots, sizeof(cache_slot));
  pthread_mutex_lock(&t->cache_lock);
  if (t->ncaches == t->capcaches) {
    t->capcaches = t->capcaches ? t->capcaches * 2 : 8;
    t->caches = tl_realloc(t->caches, (size_t)t->capcaches * sizeof(tok_cache *));
  }
  t->caches[t->ncaches++] = c;
  pthread_mutex_unlock(&t->cache_lock);
  pthread_setspecific(t->cache_key, c);
  return c;
}

/* Equality of two short byte strings of length n, inlined (a memcmp call costs
 * more than the comparison for typical 2-10 byte words). */
static inline int bytes_equal(const unsigned char *a, const unsigned char *b, size_t n) {
  while (n >= 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) return 0;
    a += 8; b += 8; n -= 8;
  }
  for (size_t k = 0; k < n; k++)
    if (a[k] != b[k]) return 0;
  return 1;
}

static const cache_slot *cache_get(const tok_cache *c, const unsigned char *w, size_t len, uint64_t h) {
  size_t mask = c->nslots - 1, i = (size_t)h & mask;
  for (;;) {
    const cache_slot *s = &c->slots[i];
    if (s->key_len == 0) return NULL;
    if (s->hash == h && s->key_len == len && bytes_equal(c->keys.data + s->key_off, w, len)) return s;
    i = (i + 1) & mask;
  }
}

/* Remembers word w -> ids[0..n). A word may encode to no ids at all (every
 * character dropped): its slot then records nids 0 and no ids are copied. */
static void cache_put(tok_cache *c, const unsigned char *w, size_t len, uint64_t h, const int32_t *ids, size_t n) {
  if (n > UINT16_MAX) return;
  if ((c->n + 1) * 2 > c->nslots) cache_clear(c); /* full: start over rather than probe long chains */
  size_t mask = c->nslots - 1, i = (size_t)h & mask;
  while (c->slots[i].key_len) i = (i + 1) & mask;
  if (c->nids + n > c->capids) {
    c->capids = (c->nids + n) * 2;
    c->ids = tl_realloc(c->ids, c->capids * sizeof(int32_t));
  }
  cache_slot *s = &c->slots[i];
  s->hash = h;
  s->key_off = (uint32_t)c->keys.len;
  s->key_len = (uint16_t)len;
  s->ids_off = (uint32_t)c->nids;
  s->nids = (uint16_t)n;
  tl_buf_append(&c->keys, w, len);
  if (n > 0) memcpy(c->ids + c->nids, ids, n * sizeof(int32_t));
  c->nids += n;
  c->n++;
}

/* ---- growable id output ---- */
typedef struct { int32_t *v; size_t n, cap; } idvec;
static inline void ids_reserve(idvec *o, size_t extra) {
  if (o->n + extra > o->cap) {
    o->cap = (o->n + extra) * 2 + 16;
    o->v = tl_realloc(o->v, o->cap * sizeof(int32_t));
  }
}
static inline void ids_push(idvec *o, int32_t id) { ids_reserve(o, 1); o->v[o->n++] = id; }

/* ---- BPE ---- */
static void sym_reserve(tok_cache *c, size_t n) {
  if (n <= c->capsym) return;
  c->capsym = n * 2;
  c->sym = tl_realloc(c->sym, c->capsym * sizeof(int32_t));
  c->nid = tl_realloc(c->nid, c->capsym * sizeof(int32_t));
  c->prev = tl_realloc(c->prev, c->capsym * sizeof(int32_t));
  c->next = tl_realloc(c->next, c->capsym * sizeof(int32_t));
  c->rank = tl_realloc(c->rank, c->capsym * sizeof(uint32_t));
}

/* Short words: rescan the pairs for the lowest rank each step (cheap for a
 * handful of symbols, and the same order as the heap: lowest rank, then leftmost). */
static size_t merge_short(const tl_tokenizer *t, tok_cache *c, size_t m) {
  int32_t *sym = c->sym, *nid = c->nid;
  uint32_t *rank = c->rank;
  for (size_t i = 0; i + 1 < m; i++) {
    const tok_merge *mg = tok_merge_get(t, sym[i], sym[i + 1]);
    rank[i] = mg ? mg->rank : UINT32_MAX;
    nid[i] = mg ? mg->id : -1;
  }
  while (m > 1) {
    uint32_t best = UINT32_MAX;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < m; i++)
      if (rank[i] < best) { best = rank[i]; bi = i; }
    if (best == UINT32_MAX) break;
    sym[bi] = nid[bi];
    size_t tail = m - (bi + 2);
    memmove(sym + bi + 1, sym + bi + 2, tail * sizeof(int32_t));
    memmove(rank + bi + 1, rank + bi + 2, (tail > 0 ? tail - 1 : 0) * sizeof(uint32_t));
    memmove(nid + bi + 1, nid + bi + 2, (tail > 0 ? tail - 1 : 0) * sizeof(int32_t));
    m--;
    for (size_t k = bi > 0 ? bi - 1 : 0; k <= bi && k + 1 < m; k++) {
      const tok_merge *mg = tok_merge_get(t, sym[k], sym[k + 1]);
      rank[k] = mg ? mg->rank : UINT32_MAX;
      nid[k] = mg ? mg->id : -1;
    }
  }
  return m;
}

static inline int heap_less(const struct heap_item *a, const struct heap_item *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}
static void heap_push(tok_cache *c, size_t *n, struct heap_item it) {
  if (*n == c->capheap) {
    c->capheap = c->capheap ? c->capheap * 2 : 256;
    c->heap = tl_realloc(c->heap, c->capheap * sizeof(*c->heap));
  }
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(&it, &c->heap[p])) break;
    c->heap[i] = c->heap[p];
    i = p;
  }
  c->heap[i] = it;
}
static struct heap_item heap_pop(tok_cache *c, size_t *n) {
  struct heap_item top = c->heap[0], last = c->heap[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct heap_item *best = &last;
    if (l < *n && heap_less(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
    if (r < *n && heap_less(&c->heap[r], best)) { m = r; }
    if (m == i) break;
    c->heap[i] = c->heap[m];
    i = m;
  }
  if (*n > 0) c->heap[i] = last;
  return top;
}

/* Long words: a doubly linked list of symbols and a min-heap of candidate merges
 * keyed by (rank, position); stale candidates are skipped when popped. */
static size_t merge_long(const tl_tokenizer *t, tok_cache *c, size_t m) {
  int32_t *sym = c->sym, *prev = c->prev, *next = c->next;
  size_t nh = 0;
  for (size_t i = 0; i < m; i++) {
    prev[i] = (int32_t)i - 1;
    next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    if (i + 1 < m) {
      const tok_merge *mg = tok_merge_get(t, sym[i], sym[i + 1]);
      if (mg) heap_push(c, &nh, (struct heap_item){mg->rank, (uint32_t)i, mg->id});
    }
  }
  while (nh > 0) {
    struct heap_item it = heap_pop(c, &nh);
    int32_t p = (int32_t)it.pos;
    if (sym[p] < 0 || next[p] < 0) continue; /* merged away, or last symbol */
    int32_t q = next[p];
    const tok_merge *mg = tok_merge_get(t, sym[p], sym[q]);
    if (!mg || mg->id != it.id) continue; /* the pair changed since this was queued */
    sym[p] = it.id;
    sym[q] = -1;
    next[p] = next[q];
    if (next[q] >= 0) prev[next[q]] = p;
    if (prev[p] >= 0 && (mg = tok_merge_get(t, sym[prev[p]], sym[p])))
      heap_push(c, &nh, (struct heap_item){mg->rank, (uint32_t)prev[p], mg->id});
    if (next[p] >= 0 && (mg = tok_merge_get(t, sym[p], sym[next[p]])))
      heap_push(c, &nh, (struct heap_item){mg->rank, (uint32_t)p, mg->id});
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0 && (size_t)i < m; i = next[i]) sym[w++] = sym[i];
  return w;
}

/* Initial symbols of a word: one per byte (byte-level) or per character, with
 * byte fallback to <0xNN> tokens, then <unk> (runs fused when fuse_unk), else dropped. */
static size_t initial_symbols(const tl_tokenizer *t, tok_cache *c, const unsigned char *w, size_t len) {
  sym_reserve(c, len + 1);
  int32_t *sym = c->sym;
  size_t m = 0;
  int last_unk = 0;
  for (size_t i = 0; i < len;) {
    int clen = 1;
    int32_t id;
    if (t->byte_level) id = t->byte_id[w[i]];
    else {
      tl_utf8_decode(w + i, len - i, &clen);
      id = tok_strmap_get(&t->vocab, w + i, (size_t)clen);
    }
    if (id < 0 && t->byte_fallback) {
      int ok = 1;
      for (int k = 0; k < clen; k++) ok &= t->byte_token[w[i + k]] >= 0;
      if (ok) {
        for (int k = 0; k < clen; k++) sym[m++] = t->byte_token[w[i + k]];
        last_unk = 0;
        i += (size_t)clen;
        continue;
      }
    }
    if (id >= 0) { sym[m++] = id; last_unk = 0; }
    else if (t->unk_id >= 0) {
      if (!(t->fuse_unk && last_unk)) sym[m++] = t->unk_id;
      last_unk = 1;
    }
    i += (size_t)clen;
  }
  return m;
}

static void bpe_word(const tl_tokenizer *t, tok_cache *c, const unsigned char *w, size_t len, idvec *out) {
  if (len == 0) return;
  uint64_t h = 0;
  int cacheable = len <= CACHE_MAX_WORD;
  if (cacheable) {
    h = tok_hash_bytes(w, len);
    const cache_slot *s = cache_get(c, w, len, h);
    if (s) {
      if (s->nids > 0) {
        ids_reserve(out, s->nids);
        memcpy(out->v + out->n, c->ids + s->ids_off, s->nids * sizeof(int32_t));
        out->n += s->nids;
      }
      return;
    }
  }
  if (t->ignore_merges) {
    int32_t id = tok_strmap_get(&t->vocab, w, len);
    if (id >= 0) { ids_push(out, id); return; }
  }
  size_t m = initial_symbols(t, c, w, len);
  m = m <= 48 ? merge_short(t, c, m) : merge_long(t, c, m);
  ids_reserve(out, m);
  memcpy(out->v + out->n, c->sym, m * sizeof(int32_t));
  out->n += m;
  if (cacheable) cache_put(c, w, len, h, c->sym, m);
}

/* ---- the GPT-2 split pattern, by hand:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Alternatives are tried in order at each position, so the class of the first
 * character (after an optional single space) decides which one matches. ---- */
static unsigned char ascii_class[128];
static void init_ascii_class(void) {
  for (int b = 0; b < 128; b++) {
    int k = TL_UC_OTHER;
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) k = TL_UC_LETTER;
    else if (b >= '0' && b <= '9') k = TL_UC_NUMBER;
    else if (b == ' ' || (b >= 9 && b <= 13)) k = TL_UC_SPACE;
    ascii_class[b] = (unsigned char)k;
  }
}

static inline int class_at(const unsigned char *s, size_t n, size_t i, int *len) {
  if (s[i] < 0x80) { *len = 1; return ascii_class[s[i]]; }
  uint32_t cp = tl_utf8_decode(s + i, n - i, len);
  return tl_uprop(cp) & 3;
}

/* End of the match that starts at i (always > i). */
size_t tok_gpt2_match(const unsigned char *s, size_t n, size_t i) {
  if (s[i] == '\'' && i + 1 < n) {
    unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  size_t j = i;
  int len;
  if (s[j] == ' ' && j + 1 < n) {
    int k = class_at(s, n, j + 1, &len);
    if (k != TL_UC_SPACE) j++;
  }
  int k = class_at(s, n, j, &len);
  if (k != TL_UC_SPACE) { /* a run of letters, of numbers, or of other characters */
    j += (size_t)len;
    while (j < n && class_at(s, n, j, &len) == k) j += (size_t)len;
    return j;
  }
  /* whitespace: the run, minus its last character when a non-space follows it */
  size_t last = j, nchars = 0;
  while (j < n && class_at(s, n, j, &len) == TL_UC_SPACE) { last = j; j += (size_t)len; nchars++; }
  if (j == n || nchars == 1) return j;
  return last;
}

static void pretokenize_and_bpe(const tl_tokenizer *t, tok_cache *c, const unsigned char *s, size_t n, idvec *out) {
  if (n == 0) return;
  if (!t->pre_bytelevel) { bpe_word(t, c, s, n, out); return; }
  if (t->pre_add_prefix_space && s[0] != ' ') {
    c->prefixed.len = 0;
    tl_buf_append(&c->prefixed, " ", 1);
    tl_buf_append(&c->prefixed, s, n);
    s = c->prefixed.data;
    n = c->prefixed.len;
  }
  if (!t->pre_use_regex) { bpe_word(t, c, s, n, out); return; }
  for (size_t i = 0; i < n;) {
    size_t e = tok_gpt2_match(s, n, i);
    bpe_word(t, c, s + i, e - i, out);
    i = e;
  }
}

/* ---- added-token matching (leftmost, then longest) ---- */
static void space_run_before(const unsigned char *s, size_t n, size_t *start) {
  /* start of the trailing White_Space run of s[0..n) */
  size_t i = n;
  while (i > 0) {
    size_t k = i - 1;
    while (k > 0 && (s[k] & 0xC0) == 0x80) k--;
    int len;
    if ((tl_uprop(tl_utf8_decode(s + k, n - k, &len)) & 3) != TL_UC_SPACE) break;
    i = k;
  }
  *start = i;
}

static int word_char_before(const unsigned char *s, size_t i) {
  if (i == 0) return 0;
  size_t k = i - 1;
  while (k > 0 && (s[k] & 0xC0) == 0x80) k--;
  int len;
  uint32_t cp = tl_utf8_decode(s + k, i - k, &len);
  int cls = tl_uprop(cp) & 3;
  return cp == '_' || cls == TL_UC_LETTER || cls == TL_UC_NUMBER;
}

static int word_char_after(const unsigned char *s, size_t n, size_t i) {
  if (i >= n) return 0;
  int len;
  uint32_t cp = tl_utf8_decode(s + i, n - i, &len);
  int cls = tl_uprop(cp) & 3;
  return cp == '_' || cls == TL_UC_LETTER || cls == TL_UC_NUMBER;
}

/* Longest added token starting at s[i], or -1. */
static int trie_match(const tok_trie *tr, const unsigned char *s, size_t n, size_t i, size_t *end) {
  int node = 0, best = -1;
  for (size_t j = i; j < n; j++) {
    int ch = tr->nodes[node].child;
    while (ch >= 0 && tr->nodes[ch].byte != s[j]) ch = tr->nodes[ch].sibling;
    if (ch < 0) break;
    node = ch;
    if (tr->nodes[node].token >= 0) { best = tr->nodes[node].token; *end = j + 1; }
  }
  return best;
}

int tok_next_added(const tl_tokenizer *t, const tok_trie *tr, const unsigned char *s, size_t n, size_t *at,
                   size_t done, size_t *start, size_t *stop) {
  /* with few distinct first bytes, skip 8 bytes at a time that hold none of them */
  uint64_t bcast[4];
  int nb = tr->nfirst <= 4 ? tr->nfirst : 0;
  for (int k = 0; k < nb; k++) bcast[k] = tr->first_bytes[k] * 0x0101010101010101ull;
  for (size_t i = *at; i < n;) {
    if (nb && i + 8 <= n) {
      uint64_t w, hit = 0;
      memcpy(&w, s + i, 8);
      for (int k = 0; k < nb; k++) {
        uint64_t x = w ^ bcast[k]; /* a zero byte where s has first_bytes[k] */
        hit |= (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
      }
      if (!hit) { i += 8; continue; }
      i += (size_t)__builtin_ctzll(hit) / 8; /* the first candidate (earlier bytes cannot match) */
    }
    if (!tr->first[s[i]]) { i++; continue; }
    size_t end;
    int k = trie_match(tr, s, n, i, &end);
    if (k < 0) { i++; continue; }
    const tok_added *a = &t->added[k];
    size_t b = i, e = end;
    if (a->single_word && (word_char_before(s, b) || word_char_after(s, n, e))) { i = end; continue; }
    if (a->lstrip) { /* take the whitespace before the token, but not text already emitted */
      size_t ws;
      space_run_before(s, b, &ws);
      b = ws > done ? ws : done;
    }
    if (a->rstrip) {
      int len;
      while (e < n && (class_at(s, n, e, &len) == TL_UC_SPACE)) e += (size_t)len;
    }
    *start = b;
    *stop = *at = e;
    return k;
  }
  *at = n;
  return -1;
}

typedef void (*piece_fn)(const tl_tokenizer *t, tok_cache *c, const unsigned char *s, size_t n, idvec *out);

/* Splits s on the tokens of trie tr: matched tokens go to out as ids, the text
 * between them to fn. */
static void split_added(const tl_tokenizer *t, tok_cache *c, const tok_trie *tr, const unsigned char *s, size_t n,
                        idvec *out, piece_fn fn) {
  if (tr->ntokens == 0) { fn(t, c, s, n, out); return; }
  size_t done = 0, at = 0, start, stop; /* s[done..) not yet emitted */
  int k;
  while ((k = tok_next_added(t, tr, s, n, &at, done, &start, &stop)) >= 0) {
    if (start > done) fn(t, c, s + done, start - done, out);
    ids_push(out, t->added[k].id);
    done = stop;
  }
  if (done < n) fn(t, c, s + done, n - done, out);
}

static void normalized_piece(const tl_tokenizer *t, tok_cache *c, const unsigned char *s, size_t n, idvec *out) {
  size_t nn;
  const unsigned char *ns = tok_normalize(t, c->norm, s, n, &nn);
  /* the scratch buffers are reused by the next piece only, after this one is done */
  split_added(t, c, &t->trie_norm, ns, nn, out, pretokenize_and_bpe);
}

void tok_encode_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_ascii_class);
}

int tl_tokenizer_encode(const tl_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                        size_t *n) {
  tok_encode_init();
  *ids = NULL;
  *n = 0;
  if (!tl_utf8_valid((const unsigned char *)text, len))
    return tl_fail("tokenizer encode: the text is not valid UTF-8");
  tok_cache *c = thread_cache(t);
  idvec out = {0};
  ids_reserve(&out, len / 3 + 8);
  if (add_special)
    for (int i = 0; i < t->npost_prefix; i++) ids_push(&out, t->post_prefix[i]);
  split_added(t, c, &t->trie_raw, (const unsigned char *)text, len, &out, normalized_piece);
  if (add_special)
    for (int i = 0; i < t->npost_suffix; i++) ids_push(&out, t->post_suffix[i]);
  *ids = out.v;
  *n = out.n;
  return 0;
}
