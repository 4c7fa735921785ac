/* The normalizer of tokenizer.json (NFC, Prepend, Replace steps in order), used by
 * the encoder on every piece of text and by the loader on added tokens that are
 * matched in normalized form. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

const unsigned char *tok_normalize(const tl_tokenizer *t, tl_buf scratch[2], const unsigned char *s, size_t n,
                                   size_t *out_n) {
  int cur = 0; /* each step reads the previous result and writes the other buffer */
  for (int k = 0; k < t->nnorm; k++) {
    const tok_step *st = &t->norm[k];
    if (n == 0) break;
    if (st->type == NORM_NFC && tl_nfc_quick_yes(s, n)) continue;
    tl_buf *o = &scratch[cur];
    o->len = 0;
    if (st->type == NORM_NFC) {
      tl_nfc_append(o, s, n);
    } else if (st->type == NORM_PREPEND) {
      tl_buf_append(o, st->a, strlen(st->a));
      tl_buf_append(o, s, n);
    } else { /* NORM_REPLACE */
      size_t plen = strlen(st->a), clen = strlen(st->b), i = 0, run = 0;
      while (i + plen <= n) {
        if (s[i] == (unsigned char)st->a[0] && memcmp(s + i, st->a, plen) == 0) {
          tl_buf_append(o, s + run, i - run);
          tl_buf_append(o, st->b, clen);
          i += plen;
          run = i;
        } else {
          i++;
        }
      }
      tl_buf_append(o, s + run, n - run);
    }
    tl_buf_reserve(o, 1);
    s = o->data;
    n = o->len;
    cur ^= 1;
  }
  *out_n = n;
  return s;
}

char *tok_normalize_copy(const tl_tokenizer *t, const char *s, size_t n, size_t *out_n) {
  tl_buf scratch[2] = {{0}, {0}};
  const unsigned char *r = tok_normalize(t, scratch, (const unsigned char *)s, n, out_n);
  char *copy = tl_malloc(*out_n + 1);
  memcpy(copy, r, *out_n);
  copy[*out_n] = 0;
  tl_buf_free(&scratch[0]);
  tl_buf_free(&scratch[1]);
  return copy;
}

/* ---- the same with alignments, for token offsets ----
 * Each step maps every output byte to a span of the original text, as HF's
 * NormalizedString does: a byte that passes unchanged keeps its span, the text a
 * step inserts or rewrites takes the span of what it stands for (Prepend: the
 * first character's, as HF aligns a prepended string; Replace: the matched
 * text's). NFC works on runs that start at an ASCII byte (an ASCII character never
 * composes with what precedes it, so the runs normalize independently); a run
 * already in NFC keeps its bytes' spans, in a run it changes the characters out
 * take the spans of the characters in, in order. */
typedef struct {
  tl_buf text;
  size_t *from; /* [2 * text.len] */
  size_t cap;
} aligned;

static void al_push(aligned *o, const unsigned char *b, size_t n, size_t lo, size_t hi) {
  if (o->text.len + n > o->cap) {
    o->cap = (o->text.len + n) * 2 + 16;
    o->from = tl_realloc(o->from, 2 * o->cap * sizeof(size_t));
  }
  for (size_t k = 0; k < n; k++) {
    o->from[2 * (o->text.len + k)] = lo;
    o->from[2 * (o->text.len + k) + 1] = hi;
  }
  tl_buf_append(&o->text, b, n);
}

/* bytes [i, j) of `in` with their own spans */
static void al_copy(aligned *o, const aligned *in, size_t i, size_t j) {
  for (size_t k = i; k < j; k++) al_push(o, in->text.data + k, 1, in->from[2 * k], in->from[2 * k + 1]);
}

static size_t span_lo(const aligned *in, size_t i, size_t j) {
  size_t lo = in->from[2 * i];
  for (size_t k = i; k < j; k++) lo = in->from[2 * k] < lo ? in->from[2 * k] : lo;
  return lo;
}
static size_t span_hi(const aligned *in, size_t i, size_t j) {
  size_t hi = in->from[2 * i + 1];
  for (size_t k = i; k < j; k++) hi = in->from[2 * k + 1] > hi ? in->from[2 * k + 1] : hi;
  return hi;
}

static void step_aligned(const tok_step *st, const aligned *in, aligned *o) {
  const unsigned char *s = in->text.data;
  size_t n = in->text.len;
  if (st->type == NORM_NFC) {
    tl_buf scratch = {0};
    for (size_t i = 0; i < n;) {
      size_t j = i + 1;
      while (j < n && s[j] >= 0x80) j++;
      if (tl_nfc_quick_yes(s + i, j - i)) {
        al_copy(o, in, i, j);
      } else {
        /* the k-th character out takes the k-th character in's span (a composed
         * character its first part's, as HF aligns e + U+0301 -> U+00E9 to the
         * e); characters beyond the input's count take the last one's */
        scratch.len = 0;
        tl_nfc_append(&scratch, s + i, j - i);
        size_t in_at = i, in_end = i;
        for (size_t k = 0; k < scratch.len;) {
          int olen = 1, ilen = 1;
          tl_utf8_decode(scratch.data + k, scratch.len - k, &olen);
          if (in_end < j) {
            in_at = in_end;
            tl_utf8_decode(s + in_at, j - in_at, &ilen);
            in_end = in_at + (size_t)ilen;
          }
          al_push(o, scratch.data + k, (size_t)olen, span_lo(in, in_at, in_end), span_hi(in, in_at, in_end));
          k += (size_t)olen;
        }
      }
      i = j;
    }
    tl_buf_free(&scratch);
  } else if (st->type == NORM_PREPEND) {
    int clen = 1;
    tl_utf8_decode(s, n, &clen);
    al_push(o, (const unsigned char *)st->a, strlen(st->a), span_lo(in, 0, (size_t)clen), span_hi(in, 0, (size_t)clen));
    al_copy(o, in, 0, n);
  } else { /* NORM_REPLACE */
    size_t plen = strlen(st->a), clen = strlen(st->b), i = 0, run = 0;
    while (i + plen <= n) {
      if (plen > 0 && memcmp(s + i, st->a, plen) == 0) {
        al_copy(o, in, run, i);
        al_push(o, (const unsigned char *)st->b, clen, span_lo(in, i, i + plen), span_hi(in, i, i + plen));
        i += plen;
        run = i;
      } else {
        i++;
      }
    }
    al_copy(o, in, run, n);
  }
}

void tok_normalize_aligned(const tl_tokenizer *t, const unsigned char *s, size_t n, tl_buf *out, size_t **from) {
  aligned cur = {0}, next = {0};
  for (size_t i = 0; i < n;) { /* every byte of a character: the character's span */
    int clen = 1;
    tl_utf8_decode(s + i, n - i, &clen);
    al_push(&cur, s + i, (size_t)clen, i, i + (size_t)clen);
    i += (size_t)clen;
  }
  for (int k = 0; k < t->nnorm && cur.text.len > 0; k++) {
    next.text.len = 0;
    step_aligned(&t->norm[k], &cur, &next);
    aligned tmp = cur;
    cur = next;
    next = tmp;
  }
  tl_buf_free(&next.text);
  free(next.from);
  *out = cur.text;
  *from = cur.from;
}
