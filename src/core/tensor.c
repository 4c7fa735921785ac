/* dtypes and conversions between storage formats and fp32 compute. */
#include "tlens/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  size_t size;
} dtypes[TL_DTYPE_COUNT] = {
    [TL_F32] = {"F32", 4}, [TL_F16] = {"F16", 2}, [TL_BF16] = {"BF16", 2}, [TL_F64] = {"F64", 8},
    [TL_I8] = {"I8", 1},   [TL_U8] = {"U8", 1},   [TL_I16] = {"I16", 2},   [TL_U16] = {"U16", 2},
    [TL_I32] = {"I32", 4}, [TL_U32] = {"U32", 4}, [TL_I64] = {"I64", 8},   [TL_U64] = {"U64", 8},
    [TL_BOOL] = {"BOOL", 1},
};

size_t tl_dtype_size(tl_dtype t) { return (unsigned)t < TL_DTYPE_COUNT ? dtypes[t].size : 0; }
const char *tl_dtype_name(tl_dtype t) { return (unsigned)t < TL_DTYPE_COUNT ? dtypes[t].name : "?"; }

int tl_dtype_from_name(const char *name, tl_dtype *out) {
  for (int i = 0; i < TL_DTYPE_COUNT; i++)
    if (!strcmp(name, dtypes[i].name)) {
      *out = (tl_dtype)i;
      return 0;
    }
  return -1;
}

int tl_dtype_is_float(tl_dtype t) { return t == TL_F32 || t == TL_F16 || t == TL_BF16 || t == TL_F64; }
int tl_dtype_is_int(tl_dtype t) { return t >= TL_I8 && t <= TL_U64; }

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

float tl_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) { /* zero or subnormal: value = man * 2^-24 exactly */
    float v = (float)man * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t tl_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (a >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: inf */
  if (a < 0x38800000u) {                      /* below the smallest normal: subnormal */
    float v = bits_f32(a) * 16777216.0f;      /* exact: scale by 2^24 */
    return sign | (uint16_t)lrintf(v);        /* round-half-even (default mode) */
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1); /* round to nearest even on the 13 dropped bits */
  return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

float tl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t tl_f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

/* Sources may sit at any address: a safetensors data offset need only be a
 * multiple of 1, a torch storage may start anywhere in its zip entry. So each
 * element v of src is loaded through memcpy (compilers turn it into a plain
 * unaligned-safe load, in host byte order like the F32 copy), then dst[i] = expr;
 * EACH ends its switch case. */
#define EACH(ctype, expr)                        \
  for (size_t i = 0; i < n; i++) {               \
    ctype v;                                     \
    memcpy(&v, s + i * sizeof v, sizeof v);      \
    dst[i] = (expr);                             \
  }                                              \
  break

void tl_to_f32(float *dst, const void *src, tl_dtype t, size_t n) {
  const unsigned char *s = src;
  switch (t) {
  case TL_F32: memcpy(dst, src, n * 4); break;
  case TL_F16: EACH(uint16_t, tl_f16_to_f32(v));
  case TL_BF16: EACH(uint16_t, tl_bf16_to_f32(v));
  case TL_F64: EACH(double, (float)v);
  default: memset(dst, 0, n * 4); break;
  }
}

/* Integers widened to int64 (U64 above INT64_MAX wraps). */
void tl_to_i64(int64_t *dst, const void *src, tl_dtype t, size_t n) {
  const unsigned char *s = src;
  switch (t) {
  case TL_I8: EACH(int8_t, v);
  case TL_U8: case TL_BOOL: EACH(uint8_t, v);
  case TL_I16: EACH(int16_t, v);
  case TL_U16: EACH(uint16_t, v);
  case TL_I32: EACH(int32_t, v);
  case TL_U32: EACH(uint32_t, v);
  case TL_I64: EACH(int64_t, v);
  case TL_U64: EACH(uint64_t, (int64_t)v);
  default: memset(dst, 0, n * sizeof *dst); break;
  }
}
#undef EACH

void tl_from_f32(void *dst, tl_dtype t, const float *src, size_t n) {
  switch (t) {
  case TL_F32: memcpy(dst, src, n * 4); break;
  case TL_F16: for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = tl_f32_to_f16(src[i]); break;
  case TL_BF16: for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = tl_f32_to_bf16(src[i]); break;
  case TL_F64: for (size_t i = 0; i < n; i++) ((double *)dst)[i] = src[i]; break;
  default: break;
  }
}

int64_t tl_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

const char *tl_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t pos = 0;
  pos += (size_t)snprintf(buf + pos, cap - pos, "[");
  for (int i = 0; i < ndim && pos < cap; i++)
    pos += (size_t)snprintf(buf + pos, cap - pos, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (pos < cap) snprintf(buf + pos, cap - pos, "]");
  return buf;
}
