/* Encoding with each token's span of the input (HF tokenizers' `offsets`, in
 * bytes of the UTF-8 text). The same pipeline as tok_encode.c, walked again with
 * positions: added tokens split on the raw text, the normalizer with alignments
 * (tok_normalize_aligned), added tokens on the normalized text, the ByteLevel
 * split, and BPE carrying each symbol's span. It is for showing tokens, not for
 * corpora: BPE here rescans the pairs at each merge (lowest rank, then leftmost,
 * the order of the fast path), and the ids are checked against
 * tl_tokenizer_encode's before the spans are returned.
 *
 * Spans follow HF: a token covers the original characters its bytes came from (a
 * byte-fallback token <0xNN> or a byte-level token holding part of a character
 * covers the whole character; the "▁" a normalizer prepends or puts for a space
 * covers that character or space); special tokens of the post-processor are
 * [0, 0). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

typedef struct {
  int32_t *ids;
  tl_token_span *spans;
  char **text; /* an added token's text as split (NULL: the vocabulary's string) */
  size_t n, cap;
} spanned;

static void push(spanned *o, int32_t id, size_t start, size_t end) {
  if (o->n == o->cap) {
    o->cap = o->cap ? 2 * o->cap : 64;
    o->ids = tl_realloc(o->ids, o->cap * sizeof(int32_t));
    o->spans = tl_realloc(o->spans, o->cap * sizeof(tl_token_span));
    o->text = tl_realloc(o->text, o->cap * sizeof(char *));
  }
  o->ids[o->n] = id;
  o->text[o->n] = NULL;
  o->spans[o->n++] = (tl_token_span){start, end};
}

/* Where the bytes [i, j) of a normalized piece come from in the original text:
 * the union of their spans, shifted by the piece's place in the text. */
typedef struct {
  const size_t *from; /* tok_normalize_aligned's, or NULL: the piece is the text itself */
  size_t base;        /* the piece's offset in the original text */
} origin;

static tl_token_span span_of(const origin *g, size_t i, size_t j) {
  if (!g->from) return (tl_token_span){g->base + i, g->base + j};
  size_t lo = g->from[2 * i], hi = g->from[2 * i + 1];
  for (size_t k = i; k < j; k++) {
    if (g->from[2 * k] < lo) lo = g->from[2 * k];
    if (g->from[2 * k + 1] > hi) hi = g->from[2 * k + 1];
  }
  return (tl_token_span){g->base + lo, g->base + hi};
}

/* BPE of one word w = bytes [at, at + len) of the normalized piece (`prefix`: the
 * word starts with the ByteLevel prefix space, which stands for the piece's
 * first character). Symbols carry their spans in piece bytes. */
typedef struct {
  int32_t id;
  size_t lo, hi;
} sym;

static void bpe_spans(const tl_tokenizer *t, const unsigned char *w, size_t len, size_t at, const origin *g,
                      spanned *o) {
  if (len == 0) return;
  sym *s = tl_malloc((len + 1) * sizeof *s);
  size_t m = 0;
  int32_t whole = t->ignore_merges ? tok_strmap_get(&t->vocab, w, len) : -1;
  if (whole >= 0) {
    s[m++] = (sym){whole, at, at + len};
  } else {
    int last_unk = 0;
    for (size_t i = 0; i < len;) { /* as initial_symbols in tok_encode.c */
      int clen = 1;
      int32_t id;
      if (t->byte_level) {
        id = t->byte_id[w[i]];
      } else {
        tl_utf8_decode(w + i, len - i, &clen);
        id = tok_strmap_get(&t->vocab, w + i, (size_t)clen);
      }
      size_t lo = at + i, hi = at + i + (size_t)clen;
      if (id < 0 && t->byte_fallback) {
        int ok = 1;
        for (int k = 0; k < clen; k++) ok &= t->byte_token[w[i + k]] >= 0;
        if (ok) {
          for (int k = 0; k < clen; k++) s[m++] = (sym){t->byte_token[w[i + k]], lo, hi};
          last_unk = 0;
          i += (size_t)clen;
          continue;
        }
      }
      if (id >= 0) {
        s[m++] = (sym){id, lo, hi};
        last_unk = 0;
      } else if (t->unk_id >= 0) {
        if (t->fuse_unk && last_unk) s[m - 1].hi = hi;
        else s[m++] = (sym){t->unk_id, lo, hi};
        last_unk = 1;
      }
      i += (size_t)clen;
    }
    for (;;) { /* the lowest-ranked pair, leftmost on ties, until none merges */
      uint32_t best = UINT32_MAX;
      size_t bi = 0;
      int32_t bid = -1;
      for (size_t i = 0; i + 1 < m; i++) {
        const tok_merge *mg = tok_merge_get(t, s[i].id, s[i + 1].id);
        if (mg && mg->rank < best) {
          best = mg->rank;
          bi = i;
          bid = mg->id;
        }
      }
      if (bid < 0) break;
      s[bi] = (sym){bid, s[bi].lo, s[bi + 1].hi};
      memmove(s + bi + 1, s + bi + 2, (m - bi - 2) * sizeof *s);
      m--;
    }
  }
  for (size_t k = 0; k < m; k++) {
    tl_token_span sp = span_of(g, s[k].lo, s[k].hi);
    push(o, s[k].id, sp.start, sp.end);
  }
  free(s);
}

/* A normalized piece between added tokens: the ByteLevel split (with its prefix
 * space), else the piece as one word. */
static void words(const tl_tokenizer *t, const unsigned char *p, size_t n, size_t at, const origin *g, spanned *o) {
  if (n == 0) return;
  if (!t->pre_bytelevel) {
    bpe_spans(t, p + at, n, at, g, o);
    return;
  }
  const unsigned char *s = p + at;
  const origin *wg = g; /* the words' positions: s[i] is byte off + i of wg */
  size_t off = at;
  unsigned char *prefixed = NULL;
  size_t *pfrom = NULL;
  origin pg = {NULL, g->base};
  if (t->pre_add_prefix_space && s[0] != ' ') {
    /* a copy with the space in front, standing for the first character (as HF's
     * prepend aligns it), and its own alignment */
    prefixed = tl_malloc(n + 1);
    prefixed[0] = ' ';
    memcpy(prefixed + 1, s, n);
    pfrom = tl_malloc(2 * (n + 1) * sizeof(size_t));
    int clen = 1;
    tl_utf8_decode(s, n, &clen);
    tl_token_span first = span_of(g, at, at + (size_t)clen);
    pfrom[0] = first.start - g->base;
    pfrom[1] = first.end - g->base;
    for (size_t k = 0; k < n; k++) {
      tl_token_span b = span_of(g, at + k, at + k + 1);
      pfrom[2 * (k + 1)] = b.start - g->base;
      pfrom[2 * (k + 1) + 1] = b.end - g->base;
    }
    pg.from = pfrom;
    wg = &pg;
    off = 0;
    s = prefixed;
    n++;
  }
  if (!t->pre_use_regex) {
    bpe_spans(t, s, n, off, wg, o);
  } else {
    for (size_t i = 0; i < n;) {
      size_t e = tok_gpt2_match(s, n, i);
      bpe_spans(t, s + i, e - i, off + i, wg, o);
      i = e;
    }
  }
  free(prefixed);
  free(pfrom);
}

/* Splits s[0..n) (the text itself, or a normalized piece: g) on the tokens of tr;
 * the text between them goes to words(), or when `normalize` first through the
 * normalizer and the second split. */
static void split(const tl_tokenizer *t, const tok_trie *tr, const unsigned char *s, size_t n, const origin *g,
                  int normalize, spanned *o);

static void piece(const tl_tokenizer *t, const unsigned char *s, size_t i, size_t j, const origin *g, int normalize,
                  spanned *o) {
  if (j <= i) return;
  if (!normalize) {
    words(t, s, j - i, i, g, o);
    return;
  }
  tl_buf norm = {0};
  size_t *from = NULL;
  tok_normalize_aligned(t, s + i, j - i, &norm, &from);
  origin ng = {from, g->base + i};
  split(t, &t->trie_norm, norm.data, norm.len, &ng, 0, o);
  tl_buf_free(&norm);
  free(from);
}

static void split(const tl_tokenizer *t, const tok_trie *tr, const unsigned char *s, size_t n, const origin *g,
                  int normalize, spanned *o) {
  size_t done = 0, at = 0, start, stop;
  int k;
  while (tr->ntokens > 0 && (k = tok_next_added(t, tr, s, n, &at, done, &start, &stop)) >= 0) {
    piece(t, s, done, start, g, normalize, o);
    tl_token_span sp = span_of(g, start, stop);
    push(o, t->added[k].id, sp.start, sp.end);
    /* HF's token string of an added token is what it split off: the whitespace
     * lstrip and rstrip took included, in normalized form when matched there */
    char *tx = tl_malloc(stop - start + 1);
    memcpy(tx, s + start, stop - start);
    tx[stop - start] = 0;
    o->text[o->n - 1] = tx;
    done = stop;
  }
  piece(t, s, done, n, g, normalize, o);
}

/* HF's ByteLevel post-processor with trim_offsets (GPT-NeoX, RoBERTa): the
 * leading and trailing spaces of each token ("\u0120", U+0120, or white space,
 * counted in characters as the library does) are taken off its span, but for the
 * one space a prefix space added in front of the first token. */
static int is_space_char(uint32_t cp) {
  return cp == 0x120 || (tl_uprop(cp) & 3) == TL_UC_SPACE;
}

static void trim_offsets(const tl_tokenizer *t, spanned *o, size_t from) {
  for (size_t i = from; i < o->n; i++) {
    const char *ts = tl_tokenizer_id_to_token(t, o->ids[i]);
    if (!ts) continue;
    size_t n = strlen(ts), lead = 0, trail = 0;
    int leading = 1;
    for (size_t k = 0; k < n;) {
      int clen = 1;
      uint32_t cp = tl_utf8_decode((const unsigned char *)ts + k, n - k, &clen);
      int sp = is_space_char(cp);
      if (leading && sp) lead++;
      else leading = 0;
      trail = sp ? trail + 1 : 0;
      k += (size_t)clen;
    }
    tl_token_span *s = &o->spans[i];
    if (lead > 0) {
      int first = i == from || s->start == 0;
      if (first && t->post_prefix_space && lead == 1) lead = 0;
      s->start = s->start + lead < s->end ? s->start + lead : s->end;
    }
    if (trail > 0 && s->end >= trail) s->end = s->end - trail > s->start ? s->end - trail : s->start;
  }
}

void tl_tokenizer_tokens_free(char **tokens, size_t n) {
  if (!tokens) return;
  for (size_t i = 0; i < n; i++) free(tokens[i]);
  free(tokens);
}

int tl_tokenizer_encode_offsets(const tl_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                                tl_token_span **spans, char ***tokens, size_t *n) {
  *ids = NULL;
  *spans = NULL;
  if (tokens) *tokens = NULL;
  *n = 0;
  int32_t *want = NULL;
  size_t nwant = 0;
  TL_TRY(tl_tokenizer_encode(t, text, len, add_special, &want, &nwant)); /* also checks the UTF-8 */
  tok_encode_init();
  spanned o = {0};
  if (add_special)
    for (int i = 0; i < t->npost_prefix; i++) push(&o, t->post_prefix[i], 0, 0);
  origin g = {NULL, 0};
  size_t first = o.n;
  split(t, &t->trie_raw, (const unsigned char *)text, len, &g, 1, &o);
  if (t->post_trim_offsets) trim_offsets(t, &o, first);
  if (add_special)
    for (int i = 0; i < t->npost_suffix; i++) push(&o, t->post_suffix[i], 0, 0);
  int same = o.n == nwant && (nwant == 0 || memcmp(o.ids, want, nwant * sizeof(int32_t)) == 0);
  free(want);
  for (size_t i = 0; i < o.n && same; i++) /* every other token: the vocabulary's string */
    if (!o.text[i]) o.text[i] = tl_strdup(tl_tokenizer_id_to_token(t, o.ids[i]) ? tl_tokenizer_id_to_token(t, o.ids[i]) : "");
  if (!same || !tokens) {
    tl_tokenizer_tokens_free(o.text, o.n);
    o.text = NULL;
  }
  if (!same) {
    free(o.ids);
    free(o.spans);
    return tl_fail("tokenizer %s: the offsets pass gave other ids than the encoder (a bug: please report the text)",
                   t->path);
  }
  *ids = o.ids;
  *spans = o.spans;
  if (tokens) *tokens = o.text;
  *n = o.n;
  return 0;
}
