/* Unicode data and helpers for the tokenizer: UTF-8 decoding, the character
 * classes of the GPT-2 split pattern, and NFC normalization. */
#ifndef TLENS_TOKENIZER_UNICODE_H
#define TLENS_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "tlens/core.h"

/* ---- generated tables (unicode_tables.c) ---- */
#define TL_UPROP_BLOCK 128
extern const char tl_unicode_version[];
extern const uint16_t tl_uprop_stage1[0x110000 / TL_UPROP_BLOCK];
extern const uint8_t tl_uprop_stage2[][TL_UPROP_BLOCK];
typedef struct { uint32_t lo, hi; uint8_t ccc; } tl_ccc_range;
typedef struct { uint32_t cp; uint16_t off; uint8_t len; } tl_decomp_entry;
typedef struct { uint32_t a, b, c; } tl_compose_entry;
extern const tl_ccc_range tl_ccc_ranges[];
extern const int tl_ccc_nranges;
extern const uint32_t tl_decomp_pool[];
extern const tl_decomp_entry tl_decomp[];
extern const int tl_ndecomp;
extern const tl_compose_entry tl_compose[];
extern const int tl_ncompose;

enum { TL_UC_OTHER = 0, TL_UC_LETTER = 1, TL_UC_NUMBER = 2, TL_UC_SPACE = 3 };
#define TL_UC_NFC_FLAG 4

static inline int tl_uprop(uint32_t cp) {
  if (cp >= 0x110000) return 0;
  return tl_uprop_stage2[tl_uprop_stage1[cp / TL_UPROP_BLOCK]][cp % TL_UPROP_BLOCK];
}

/* Decodes one code point at s[0..n). Invalid UTF-8 (the tokenizer only sees valid
 * text, but be safe) decodes as the single byte's value with length 1.
 * Returns the code point and stores the byte length in *len. */
static inline uint32_t tl_utf8_decode(const unsigned char *s, size_t n, int *len) {
  unsigned c = s[0];
  if (c < 0x80) { *len = 1; return c; }
  if (c >= 0xC2 && c < 0xE0 && n >= 2 && (s[1] & 0xC0) == 0x80) {
    *len = 2; return ((c & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (c >= 0xE0 && c < 0xF0 && n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
    uint32_t cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) { *len = 3; return cp; }
  }
  if (c >= 0xF0 && c < 0xF5 && n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
      (s[3] & 0xC0) == 0x80) {
    uint32_t cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    if (cp >= 0x10000 && cp < 0x110000) { *len = 4; return cp; }
  }
  *len = 1;
  return 0xFFFD;
}

/* Appends the UTF-8 encoding of cp to out; returns the number of bytes (1..4). */
int tl_utf8_encode(uint32_t cp, unsigned char out[4]);

/* 1 when text is valid UTF-8. */
int tl_utf8_valid(const unsigned char *s, size_t n);

/* Appends String::from_utf8_lossy-style text: every maximal invalid subsequence
 * becomes one U+FFFD (the Unicode "maximal subpart" practice). */
void tl_utf8_lossy_append(tl_buf *out, const unsigned char *s, size_t n);

/* NFC of s[0..n) appended to out (s must be valid UTF-8). */
void tl_nfc_append(tl_buf *out, const unsigned char *s, size_t n);
/* 1 when NFC leaves s unchanged for certain (fast check, no allocation). */
int tl_nfc_quick_yes(const unsigned char *s, size_t n);

#endif
