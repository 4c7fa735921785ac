/* Decoding: ids -> token strings -> the decoder chain of tokenizer.json.
 * Each decoder step maps a list of strings to a list of strings, like Hugging
 * Face's decode_chain; the final list is concatenated. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

typedef struct { char *s; size_t n; } str;
typedef struct { str *v; size_t n, cap; } strlist;

static void list_push(strlist *l, const void *s, size_t n) {
  if (l->n == l->cap) { l->cap = l->cap ? l->cap * 2 : 64; l->v = tl_realloc(l->v, l->cap * sizeof(str)); }
  char *copy = tl_malloc(n + 1);
  memcpy(copy, s, n);
  copy[n] = 0;
  l->v[l->n++] = (str){copy, n};
}
static void list_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].s);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* "<0xNN>" -> NN, or -1 */
static int byte_token(const str *t) {
  if (t->n != 6 || memcmp(t->s, "<0x", 3) || t->s[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; i++) {
    char ch = t->s[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
          : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

static void replace_all(tl_buf *o, const str *t, const char *pat, const char *with) {
  size_t plen = strlen(pat), wlen = strlen(with), i = 0, run = 0;
  while (i + plen <= t->n) {
    if (memcmp(t->s + i, pat, plen) == 0) {
      tl_buf_append(o, t->s + run, i - run);
      tl_buf_append(o, with, wlen);
      i += plen;
      run = i;
    } else {
      i++;
    }
  }
  tl_buf_append(o, t->s + run, t->n - run);
}

static void apply_step(const tok_step *st, strlist *in, strlist *out) {
  tl_buf b = {0};
  if (st->type == DEC_BYTELEVEL) {
    /* each token's characters map back to bytes (tokens with characters outside
     * the byte alphabet, like added tokens, keep their own UTF-8); the joined
     * bytes are read as UTF-8 with invalid sequences replaced */
    tl_buf raw = {0};
    for (size_t i = 0; i < in->n; i++)
      if (!tok_bytelevel_decode(in->v[i].s, in->v[i].n, &raw)) tl_buf_append(&raw, in->v[i].s, in->v[i].n);
    tl_utf8_lossy_append(&b, raw.data ? raw.data : (const unsigned char *)"", raw.len);
    list_push(out, b.data ? (char *)b.data : "", b.len);
    tl_buf_free(&raw);
  } else if (st->type == DEC_REPLACE || st->type == DEC_METASPACE) {
    for (size_t i = 0; i < in->n; i++) {
      b.len = 0;
      replace_all(&b, &in->v[i], st->a, st->type == DEC_REPLACE ? st->b : " ");
      size_t skip = st->type == DEC_METASPACE && st->flag && i == 0 && b.len > 0 && b.data[0] == ' ';
      list_push(out, b.data ? (char *)b.data + skip : "", b.len - skip);
    }
  } else if (st->type == DEC_BYTEFALLBACK) {
    /* runs of <0xNN> tokens become their bytes when those are valid UTF-8, else one U+FFFD per byte */
    tl_buf bytes = {0};
    for (size_t i = 0; i <= in->n; i++) {
      int v = i < in->n ? byte_token(&in->v[i]) : -1;
      if (v >= 0) { unsigned char ch = (unsigned char)v; tl_buf_append(&bytes, &ch, 1); continue; }
      if (bytes.len) {
        if (tl_utf8_valid(bytes.data, bytes.len)) list_push(out, bytes.data, bytes.len);
        else for (size_t k = 0; k < bytes.len; k++) list_push(out, "\xEF\xBF\xBD", 3);
        bytes.len = 0;
      }
      if (i < in->n) list_push(out, in->v[i].s, in->v[i].n);
    }
    tl_buf_free(&bytes);
  } else if (st->type == DEC_FUSE) {
    for (size_t i = 0; i < in->n; i++) tl_buf_append(&b, in->v[i].s, in->v[i].n);
    list_push(out, b.data ? (char *)b.data : "", b.len);
  } else { /* DEC_STRIP: cut up to start/stop copies of one character at each end of every token */
    size_t clen = strlen(st->a);
    for (size_t i = 0; i < in->n; i++) {
      const char *s = in->v[i].s;
      size_t lo = 0, hi = in->v[i].n;
      for (int k = 0; k < st->start && hi - lo >= clen && memcmp(s + lo, st->a, clen) == 0; k++) lo += clen;
      for (int k = 0; k < st->stop && hi - lo >= clen && memcmp(s + hi - clen, st->a, clen) == 0; k++) hi -= clen;
      list_push(out, s + lo, hi - lo);
    }
  }
  tl_buf_free(&b);
}

int tl_tokenizer_decode(const tl_tokenizer *t, const int32_t *ids, size_t n, char **text) {
  *text = NULL;
  strlist a = {0}, b = {0};
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->vocab_size || !t->id_token[ids[i]]) {
      list_free(&a);
      return tl_fail("%s: decode: id %ld at position %zu is not a token (vocab size %d)", t->path, (long)ids[i], i,
                     t->vocab_size);
    }
    list_push(&a, t->id_token[ids[i]], t->id_token_len[ids[i]]);
  }
  tl_buf out = {0};
  if (!t->has_decoder) { /* no decoder: tokens joined with spaces */
    for (size_t i = 0; i < a.n; i++) {
      if (i) tl_buf_append(&out, " ", 1);
      tl_buf_append(&out, a.v[i].s, a.v[i].n);
    }
  } else {
    for (int k = 0; k < t->ndec; k++) {
      apply_step(&t->dec[k], &a, &b);
      list_free(&a);
      a = b;
      memset(&b, 0, sizeof b);
    }
    for (size_t i = 0; i < a.n; i++) tl_buf_append(&out, a.v[i].s, a.v[i].n);
  }
  list_free(&a);
  tl_buf_append(&out, "", 1); /* NUL */
  *text = (char *)out.data;
  return 0;
}
