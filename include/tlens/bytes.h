/* Little-endian integers as file formats store them (safetensors, zip, pickle),
 * loaded from and stored to any address: byte by byte, so neither alignment nor
 * the host's byte order matters (compilers turn these into single moves). */
#ifndef TLENS_BYTES_H
#define TLENS_BYTES_H

#include <stdint.h>

static inline uint16_t tl_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t tl_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t tl_le64(const unsigned char *p) { return (uint64_t)tl_le32(p) | (uint64_t)tl_le32(p + 4) << 32; }

static inline void tl_put_le16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static inline void tl_put_le32(unsigned char *p, uint32_t v) {
  tl_put_le16(p, (uint16_t)v);
  tl_put_le16(p + 2, (uint16_t)(v >> 16));
}
static inline void tl_put_le64(unsigned char *p, uint64_t v) {
  tl_put_le32(p, (uint32_t)v);
  tl_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif
