/* Storage dtypes and conversions. Compute is always fp32; F16/BF16 are converted
 * on load or on use. */
#ifndef TLENS_TENSOR_H
#define TLENS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  TL_F32 = 0, TL_F16, TL_BF16, TL_F64,
  TL_I8, TL_U8, TL_I16, TL_U16, TL_I32, TL_U32, TL_I64, TL_U64, TL_BOOL,
  TL_DTYPE_COUNT
} tl_dtype;

#define TL_MAX_DIMS 8

size_t tl_dtype_size(tl_dtype t);
const char *tl_dtype_name(tl_dtype t);                /* safetensors spelling: "F32", "BF16", ... */
int tl_dtype_from_name(const char *name, tl_dtype *out); /* -1 (no message) if unknown */
int tl_dtype_is_float(tl_dtype t);
int tl_dtype_is_int(tl_dtype t);

float tl_f16_to_f32(uint16_t h);
uint16_t tl_f32_to_f16(float f);   /* round to nearest even */
float tl_bf16_to_f32(uint16_t h);
uint16_t tl_f32_to_bf16(float f);  /* round to nearest even, NaN preserved */

/* dst[i] = (float)src[i] for any float dtype (F32/F16/BF16/F64); src may have any
 * alignment (file data: safetensors offsets and torch storages need not be aligned). */
void tl_to_f32(float *dst, const void *src, tl_dtype t, size_t n);
/* dst[i] = (int64)src[i] for any integer dtype; src may have any alignment. */
void tl_to_i64(int64_t *dst, const void *src, tl_dtype t, size_t n);
/* from f32 into F32/F16/BF16 storage */
void tl_from_f32(void *dst, tl_dtype t, const float *src, size_t n);

int64_t tl_numel(int ndim, const int64_t *shape);
/* "[3, 20, 64]" into buf */
const char *tl_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);

#endif
