/* The GPT-2 byte alphabet of the ByteLevel pre-tokenizer and decoder: printable
 * Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in byte order,
 * so every byte is a visible character. The loader keys a byte-level vocabulary
 * by the bytes its tokens stand for; the decoder maps tokens back to bytes. */
#include <pthread.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static void bytelevel_tables(uint32_t byte_to_cp[256]) {
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_to_cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
  }
}

static int16_t cp_to_byte[324]; /* inverse of the byte alphabet; -1 outside it */
static pthread_once_t cp_to_byte_once = PTHREAD_ONCE_INIT;
static void init_cp_to_byte(void) {
  uint32_t b2c[256];
  bytelevel_tables(b2c);
  for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
  for (int b = 0; b < 256; b++) cp_to_byte[b2c[b]] = (int16_t)b;
}

int tok_bytelevel_decode(const char *s, size_t n, tl_buf *out) {
  pthread_once(&cp_to_byte_once, init_cp_to_byte);
  size_t start = out->len;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    int len;
    uint32_t cp = tl_utf8_decode(u + i, n - i, &len);
    if (cp >= 324 || cp_to_byte[cp] < 0) { out->len = start; return 0; }
    unsigned char b = (unsigned char)cp_to_byte[cp];
    tl_buf_append(out, &b, 1);
    i += (size_t)len;
  }
  return 1;
}
