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
