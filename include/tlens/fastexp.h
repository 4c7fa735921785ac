#ifndef TLENS_FASTEXP_H
#define TLENS_FASTEXP_H

#include <stdint.h>

/* exp(x) for x <= 0, for the softmax passes of the lens step and the CPU
 * backend's attention; written so that loops calling it vectorise.
 * Cephes' expf: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial,
 * 2^n through the exponent bits; about 1e-7 relative error. Called with x <= 0
 * (log-probabilities, or logits minus their max). Inputs below -87.33 are clamped
 * there (result 1.2e-38 instead of something smaller: nothing at fp32 precision).
 * The clamp compares the float's bit pattern as an integer (for negative floats,
 * a larger magnitude is a larger signed integer): a float comparison would keep
 * GCC from vectorising the loops under the default -ftrapping-math, and these
 * loops run over every (token, vocab) pair of every stream. */
static inline float tl_exp_nonpos(float x) {
  union {
    float f;
    int32_t i;
  } b = {x}, lo = {-87.33f}, s;
  b.i = (b.i < 0 && b.i > lo.i) ? lo.i : b.i;
  const float xc = b.f;
  /* round to nearest by the 1.5*2^23 trick (exact for |v| < 2^22): the sum's low
   * mantissa bits hold n as an integer, so no float-to-int conversion is needed */
  union {
    float f;
    int32_t i;
  } t = {xc * 1.44269504088896341f + 12582912.0f};
  const float n = t.f - 12582912.0f;
  const uint32_t ni = (uint32_t)t.i - 0x4B400000u; /* the bits of 12582912.0f */
  const float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  /* 2^n by the exponent bits. n >= -126 after the clamp; a NaN input gives a
   * meaningless n here and NaN from y, so the shift is done unsigned (defined for
   * every n) and the NaN still reaches the result. */
  s.i = (int32_t)((ni + 127u) << 23);
  return y * s.f;
}

#endif
