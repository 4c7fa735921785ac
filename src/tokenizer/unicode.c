/* UTF-8 helpers and NFC normalization (Unicode Standard Annex #15), driven by
 * the generated tables in unicode_tables.c. */
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

int tl_utf8_encode(uint32_t cp, unsigned char out[4]) {
  if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | (cp >> 12));
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | (cp >> 18));
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the longest prefix of s[0..n) that is a valid start of one UTF-8
 * sequence (Table 3-7 of the Unicode Standard), and whether it is complete.
 * Returns the byte count of a complete character, or -k for an invalid/truncated
 * maximal subpart of k >= 1 bytes. */
static int utf8_step(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  int need;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) { need = 2; lo = 0xA0; }
  else if (c >= 0xE1 && c <= 0xEC) need = 2;
  else if (c == 0xED) { need = 2; hi = 0x9F; }
  else if (c >= 0xEE && c <= 0xEF) need = 2;
  else if (c == 0xF0) { need = 3; lo = 0x90; }
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) { need = 3; hi = 0x8F; }
  else return -1;
  for (int k = 1; k <= need; k++) {
    if ((size_t)k >= n) return -k;
    unsigned b = s[k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
  }
  return need + 1;
}

/* 1 when the 8 bytes at s are all ASCII */
static inline int ascii8(const unsigned char *s) {
  uint64_t w;
  memcpy(&w, s, 8);
  return (w & 0x8080808080808080ull) == 0;
}

int tl_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n && ascii8(s + i)) { i += 8; continue; }
    if (s[i] < 0x80) { i++; continue; }
    int k = utf8_step(s + i, n - i);
    if (k < 0) return 0;
    i += (size_t)k;
  }
  return 1;
}

void tl_utf8_lossy_append(tl_buf *out, const unsigned char *s, size_t n) {
  static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
  size_t i = 0, run = 0; /* [run, i) is valid text not yet copied */
  while (i < n) {
    if (s[i] < 0x80) { i++; continue; }
    int k = utf8_step(s + i, n - i);
    if (k > 0) { i += (size_t)k; continue; }
    tl_buf_append(out, s + run, i - run);
    tl_buf_append(out, fffd, 3);
    i += (size_t)(-k);
    run = i;
  }
  tl_buf_append(out, s + run, i - run);
}

/* ---- NFC ---- */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7,
       LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int ccc_of(uint32_t cp) {
  if (cp < 0x300) return 0;
  int lo = 0, hi = tl_ccc_nranges - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (cp < tl_ccc_ranges[mid].lo) hi = mid - 1;
    else if (cp > tl_ccc_ranges[mid].hi) lo = mid + 1;
    else return tl_ccc_ranges[mid].ccc;
  }
  return 0;
}

static const tl_decomp_entry *decomp_of(uint32_t cp) {
  int lo = 0, hi = tl_ndecomp - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (cp < tl_decomp[mid].cp) hi = mid - 1;
    else if (cp > tl_decomp[mid].cp) lo = mid + 1;
    else return &tl_decomp[mid];
  }
  return NULL;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
    return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
  if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
    return a + (b - TBASE);
  int lo = 0, hi = tl_ncompose - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    const tl_compose_entry *e = &tl_compose[mid];
    if (a < e->a || (a == e->a && b < e->b)) hi = mid - 1;
    else if (a > e->a || b > e->b) lo = mid + 1;
    else return e->c;
  }
  return 0;
}

int tl_nfc_quick_yes(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    if (i + 8 <= n && ascii8(s + i)) { i += 8; continue; }
    /* every code point below U+0300 is stable under NFC and composes with nothing before it */
    if (s[i] < 0xCC) { i += s[i] < 0x80 ? 1 : 2; continue; }
    int len;
    uint32_t cp = tl_utf8_decode(s + i, n - i, &len);
    if (tl_uprop(cp) & TL_UC_NFC_FLAG) return 0;
    i += (size_t)len;
  }
  return 1;
}

typedef struct { uint32_t *cp; size_t n, cap; } cp_vec;
static void cp_push(cp_vec *v, uint32_t c) {
  if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->cp = tl_realloc(v->cp, v->cap * sizeof(uint32_t)); }
  v->cp[v->n++] = c;
}

void tl_nfc_append(tl_buf *out, const unsigned char *s, size_t n) {
  /* 1. full canonical decomposition */
  cp_vec v = {0};
  for (size_t i = 0; i < n;) {
    int len;
    uint32_t cp = tl_utf8_decode(s + i, n - i, &len);
    i += (size_t)len;
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
      uint32_t si = cp - SBASE;
      cp_push(&v, LBASE + si / NCOUNT);
      cp_push(&v, VBASE + (si % NCOUNT) / TCOUNT);
      if (si % TCOUNT) cp_push(&v, TBASE + si % TCOUNT);
      continue;
    }
    const tl_decomp_entry *d = (tl_uprop(cp) & TL_UC_NFC_FLAG) ? decomp_of(cp) : NULL;
    if (d) for (int k = 0; k < d->len; k++) cp_push(&v, tl_decomp_pool[d->off + k]);
    else cp_push(&v, cp);
  }
  /* 2. canonical ordering: stable insertion sort of each run of non-starters by class */
  for (size_t i = 1; i < v.n; i++) {
    int ci = ccc_of(v.cp[i]);
    if (ci == 0) continue;
    size_t j = i;
    uint32_t c = v.cp[i];
    while (j > 0) {
      int cj = ccc_of(v.cp[j - 1]);
      if (cj <= ci) break;
      v.cp[j] = v.cp[j - 1];
      j--;
    }
    v.cp[j] = c;
  }
  /* 3. canonical composition */
  if (v.n > 0) {
    size_t starter = 0, w = 1;
    int last = ccc_of(v.cp[0]);
    int have_starter = last == 0;
    if (!have_starter) last = 256; /* a leading non-starter blocks everything after it */
    for (size_t i = 1; i < v.n; i++) {
      uint32_t c = v.cp[i];
      int cc = ccc_of(c);
      if (have_starter && (last < cc || last == 0)) {
        uint32_t comp = compose_pair(v.cp[starter], c);
        if (comp) { v.cp[starter] = comp; continue; }
      }
      if (cc == 0) { starter = w; have_starter = 1; }
      last = cc;
      v.cp[w++] = c;
    }
    v.n = w;
  }
  unsigned char enc[4];
  tl_buf_reserve(out, v.n * 3);
  for (size_t i = 0; i < v.n; i++) tl_buf_append(out, enc, (size_t)tl_utf8_encode(v.cp[i], enc));
  free(v.cp);
}
