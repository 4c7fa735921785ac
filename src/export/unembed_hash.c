/* unembed_hash: the reference's fingerprint of an unembedding matrix,
 *   sha256(numpy.array_str(W_U.astype(float32), precision=1)).
 *
 * Reproducing it means reproducing numpy 1.24's printing of a 2-D float32 array
 * byte for byte. The pieces, in the order numpy applies them:
 *
 *  1. Summarisation: when size > 1000, every axis longer than 6 keeps only its first
 *     3 and last 3 entries and prints "..." in between. Only the kept elements take
 *     part in anything below (so a huge value hidden in the middle changes nothing).
 *  2. Mode: over the kept finite non-zero |x|, scientific notation is used when
 *     max >= 1e8, min < 1e-4, or max/min > 1000 (the ratio computed in float32).
 *  3. Digits: Dragon4 in "unique" mode (the shortest string that reads back as the
 *     same float32) cut off after `precision` digits, rounding the exact binary
 *     value (ties to the even digit). Positional mode cuts after 1 fractional digit,
 *     scientific after 1 digit past the leading one.
 *  4. Layout: every element is padded to a common width: pad_left = longest integer
 *     part (sign included), pad_right = longest fraction (positional), or for
 *     scientific every fraction zero-extended to the longest one. Rows are wrapped
 *     at 75 columns with a two-space continuation indent; rows are joined by "\n ".
 *
 * Everything works on the exact value of each float, so it does not depend on
 * the C library's printf. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/export.h"

/* ---- a small fixed-size big integer, enough for float32 -----------------------
 * The largest quantity is about 2^151 * 10^50 < 2^320, i.e. 10 32-bit blocks; 24
 * leaves ample room. Little-endian blocks, len = number of used blocks. */
#define BIG_BLOCKS 24
typedef struct {
  int len;
  uint32_t b[BIG_BLOCKS];
} big;

static void big_set(big *x, uint64_t v) {
  x->len = 0;
  while (v) {
    x->b[x->len++] = (uint32_t)v;
    v >>= 32;
  }
}
static void big_trim(big *x) {
  while (x->len > 0 && x->b[x->len - 1] == 0) x->len--;
}
static void big_mul_small(big *x, uint32_t m) {
  uint64_t carry = 0;
  for (int i = 0; i < x->len; i++) {
    uint64_t p = (uint64_t)x->b[i] * m + carry;
    x->b[i] = (uint32_t)p;
    carry = p >> 32;
  }
  if (carry) x->b[x->len++] = (uint32_t)carry;
}
static void big_shl(big *x, int bits) {
  if (x->len == 0 || bits == 0) return;
  int words = bits / 32, r = bits % 32;
  big y = {0};
  y.len = x->len + words + 1;
  memset(y.b, 0, sizeof y.b);
  for (int i = 0; i < x->len; i++) {
    uint64_t v = (uint64_t)x->b[i] << r;
    y.b[i + words] |= (uint32_t)v;
    y.b[i + words + 1] |= (uint32_t)(v >> 32);
  }
  big_trim(&y);
  *x = y;
}
static void big_pow2(big *x, int e) {
  big_set(x, 1);
  big_shl(x, e);
}
static void big_mul_pow10(big *x, int e) {
  for (; e >= 9; e -= 9) big_mul_small(x, 1000000000u);
  static const uint32_t p10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
  if (e > 0) big_mul_small(x, p10[e]);
}
static int big_cmp(const big *a, const big *c) {
  if (a->len != c->len) return a->len < c->len ? -1 : 1;
  for (int i = a->len - 1; i >= 0; i--)
    if (a->b[i] != c->b[i]) return a->b[i] < c->b[i] ? -1 : 1;
  return 0;
}
static void big_add(big *r, const big *a, const big *c) {
  int n = a->len > c->len ? a->len : c->len;
  uint64_t carry = 0;
  for (int i = 0; i < n; i++) {
    uint64_t s = carry + (i < a->len ? a->b[i] : 0) + (i < c->len ? c->b[i] : 0);
    r->b[i] = (uint32_t)s;
    carry = s >> 32;
  }
  r->len = n;
  if (carry) r->b[r->len++] = (uint32_t)carry;
}
static void big_sub(big *a, const big *c) { /* a -= c, requires a >= c */
  int64_t borrow = 0;
  for (int i = 0; i < a->len; i++) {
    int64_t d = (int64_t)a->b[i] - (i < c->len ? c->b[i] : 0) - borrow;
    borrow = d < 0;
    a->b[i] = (uint32_t)(d + (borrow ? ((int64_t)1 << 32) : 0));
  }
  big_trim(a);
}
/* digit = floor(value / scale) (known to be < 10), value -= digit * scale */
static int big_digit(big *value, const big *scale) {
  int d = 0;
  while (big_cmp(value, scale) >= 0) {
    big_sub(value, scale);
    d++;
  }
  return d;
}

/* ---- Dragon4 for one float32 ---------------------------------------------------
 * Writes the decimal digits of |f| into digits[] (no sign, no point) and returns how
 * many; *exp10 is the power of ten of the first digit. Digits are the shortest that
 * identify the float ("unique"), but never more than cut_max and never fewer than
 * cut_min (-1: no limit). `fraction`: the limits count digits after the decimal
 * point (positional); otherwise they count all digits (scientific). */
static int dragon4_f32(float f, int cut_max, int cut_min, int fraction, char *digits, int *exp10) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  uint32_t fexp = (bits >> 23) & 0xff, fman = bits & 0x7fffff;
  uint32_t mant;
  int e, mant_bit, unequal;
  if (fexp != 0) {
    mant = (1u << 23) | fman;
    e = (int)fexp - 127 - 23;
    mant_bit = 23;
    /* at a power of two the gap below is half the gap above */
    unequal = fexp != 1 && fman == 0;
  } else {
    mant = fman;
    e = 1 - 127 - 23;
    mant_bit = 31 - __builtin_clz(mant ? mant : 1);
    unequal = 0;
  }
  if (mant == 0) {
    digits[0] = '0';
    *exp10 = 0;
    return 1;
  }
  int is_even = (mant & 1) == 0;

  /* value = sv / scale, margins = mlo / scale and mhi / scale (half the gaps to the
   * neighbouring floats), all scaled by 2^k so they are integers: k = 1, or 2 when
   * the lower gap is half the upper one (mhi = 2 mlo, below). */
  big sv, scale, mlo, mhi;
  int k = unequal ? 2 : 1;
  big_set(&sv, mant);
  if (e > 0) {
    big_shl(&sv, e + k);
    big_set(&scale, 1u << k);
    big_pow2(&mlo, e);
  } else {
    big_shl(&sv, k);
    big_pow2(&scale, -e + k);
    big_set(&mlo, 1);
  }

  /* Estimate of floor(log10(v)) + 1, correct or one too small (numpy's constant
   * 0.69, which makes the estimate land low more often). */
  int dexp = (int)ceil((double)(mant_bit + e) * 0.30102999566398119521373889472449 - 0.69);
  /* with a fractional cutoff, never start below the last digit to print */
  if (fraction && cut_max >= 0 && dexp <= -cut_max) dexp = -cut_max + 1;
  if (dexp > 0) {
    big_mul_pow10(&scale, dexp);
  } else if (dexp < 0) {
    big_mul_pow10(&sv, -dexp);
    big_mul_pow10(&mlo, -dexp);
  }
  if (big_cmp(&sv, &scale) >= 0) {
    dexp++;
  } else {
    big_mul_small(&sv, 10);
    big_mul_small(&mlo, 10);
  }
  mhi = mlo;
  if (unequal) big_shl(&mhi, 1);

  /* exponents of the last digit allowed (cutoff) and of the last digit required */
  int cutoff = dexp - 64; /* far below anything a float32 needs */
  if (cut_max >= 0) {
    int want = fraction ? -cut_max : dexp - cut_max;
    if (want > cutoff) cutoff = want;
  }
  int min_exp = dexp;
  if (cut_min >= 0) {
    int want = fraction ? -cut_min : dexp - cut_min;
    if (want < min_exp) min_exp = want;
  }
  *exp10 = dexp - 1;

  int n = 0, digit = 0, low = 0, high = 0;
  for (;;) {
    dexp--;
    digit = big_digit(&sv, &scale);
    big hi_end;
    big_add(&hi_end, &sv, &mhi);
    int c = big_cmp(&sv, &mlo);
    low = is_even ? c <= 0 : c < 0;
    c = big_cmp(&hi_end, &scale);
    high = is_even ? c >= 0 : c > 0;
    if (((low || high) && dexp <= min_exp) || dexp == cutoff) break;
    digits[n++] = (char)('0' + digit);
    big_mul_small(&sv, 10);
    big_mul_small(&mlo, 10);
    mhi = mlo;
    if (unequal) big_shl(&mhi, 1);
  }

  /* Round the last digit: toward the side whose margin we reached, otherwise to
   * nearest by comparing the remainder with one half, ties to the even digit. */
  int round_down = low;
  if (low == high) {
    big_shl(&sv, 1);
    int c = big_cmp(&sv, &scale);
    round_down = c < 0;
    if (c == 0) round_down = (digit & 1) == 0;
  }
  if (round_down) {
    digits[n++] = (char)('0' + digit);
  } else if (digit < 9) {
    digits[n++] = (char)('0' + digit + 1);
  } else {
    /* carry through the trailing nines */
    for (;;) {
      if (n == 0) {
        digits[n++] = '1';
        (*exp10)++;
        break;
      }
      n--;
      if (digits[n] != '9') {
        digits[n]++;
        n++;
        break;
      }
    }
  }
  return n;
}

/* One formatted number, split the way numpy splits it for padding:
 * ip = sign + integer part, fp = fraction digits (no point), ep = exponent ("-05"). */
typedef struct {
  char ip[48], fp[48], ep[8];
} numtext;

/* numpy.format_float_positional(x, precision, unique=True, fractional=True,
 * trim='.', min_digits) with min_digits -1 for None */
static void fmt_positional(float x, int precision, int min_digits, numtext *t) {
  char d[80];
  int e, n = dragon4_f32(x, precision, min_digits, 1, d, &e);
  char *ip = t->ip, *fp = t->fp;
  if (signbit(x)) *ip++ = '-';
  if (e >= 0) {
    int whole = e + 1;
    for (int i = 0; i < whole; i++) *ip++ = i < n ? d[i] : '0';
    for (int i = whole; i < n; i++) *fp++ = d[i];
  } else {
    *ip++ = '0';
    for (int i = 0; i < -(e + 1); i++) *fp++ = '0';
    for (int i = 0; i < n; i++) *fp++ = d[i];
  }
  *ip = 0;
  *fp = 0;
  /* trim='.': drop trailing zeros of the fraction, keep the point */
  size_t fl = strlen(t->fp);
  while (fl > 0 && t->fp[fl - 1] == '0') t->fp[--fl] = 0;
  t->ep[0] = 0;
}

/* numpy.format_float_scientific(x, precision, unique=True, trim, min_digits):
 * keep_zeros = 0 is trim='.' (trailing zeros dropped), 1 is trim='k' (the fraction
 * zero-extended to min_digits). */
static void fmt_scientific(float x, int precision, int min_digits, int keep_zeros, numtext *t) {
  char d[80];
  int e, n = dragon4_f32(x, precision < 0 ? -1 : precision + 1, min_digits < 0 ? -1 : min_digits + 1, 0, d, &e);
  char *ip = t->ip;
  if (signbit(x)) *ip++ = '-';
  *ip++ = d[0];
  *ip = 0;
  memcpy(t->fp, d + 1, (size_t)(n - 1));
  size_t fl = (size_t)(n - 1);
  if (keep_zeros) {
    while ((int)fl < min_digits) t->fp[fl++] = '0';
  } else {
    while (fl > 0 && t->fp[fl - 1] == '0') fl--;
  }
  t->fp[fl] = 0;
  int ae = e < 0 ? -e : e;
  snprintf(t->ep, sizeof t->ep, "%c%02d", e < 0 ? '-' : '+', ae % 1000);
}

/* numpy's FloatingFormat after fillFormat() over the printed elements */
typedef struct {
  int exp_format, precision; /* precision: fixed fraction width in scientific mode */
  int pad_left, pad_right;
} floatfmt;

static void fill_format(const float *v, int64_t n, int precision, floatfmt *ff) {
  memset(ff, 0, sizeof *ff);
  float maxv = 0, minv = INFINITY;
  int64_t nfinite = 0, nnz = 0;
  int neginf = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(v[i])) {
      if (isinf(v[i]) && v[i] < 0) neginf = 1;
      continue;
    }
    nfinite++;
    if (v[i] != 0) {
      float a = fabsf(v[i]);
      nnz++;
      if (a > maxv) maxv = a;
      if (a < minv) minv = a;
    }
  }
  if (nnz) {
    volatile float ratio = maxv / minv; /* float32 division, inf on overflow */
    /* the thresholds are compared in double precision, as numpy does for a
     * float32 scalar against a Python float */
    if ((double)maxv >= 1e8 || (double)minv < 0.0001 || (double)ratio > 1000.0) ff->exp_format = 1;
  }
  if (nfinite == 0) {
    ff->pad_left = ff->pad_right = 0;
  } else if (ff->exp_format) {
    int maxi = 0, maxf = 0, maxe = 0;
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(v[i])) continue;
      numtext t;
      fmt_scientific(v[i], precision, -1, 0, &t);
      int li = (int)strlen(t.ip), lf = (int)strlen(t.fp), le = (int)strlen(t.ep);
      if (li > maxi) maxi = li;
      if (lf > maxf) maxf = lf;
      if (le > maxe) maxe = le;
    }
    ff->precision = maxf;
    ff->pad_left = maxi;
    ff->pad_right = (maxe - 1) + 2 + maxf; /* exp_size + 2 + precision */
  } else {
    int maxi = 0, maxf = 0;
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(v[i])) continue;
      numtext t;
      fmt_positional(v[i], precision, -1, &t);
      int li = (int)strlen(t.ip), lf = (int)strlen(t.fp);
      if (li > maxi) maxi = li;
      if (lf > maxf) maxf = lf;
    }
    ff->pad_left = maxi;
    ff->pad_right = maxf;
  }
  if (nfinite != n) { /* room for "nan" / "-inf" */
    int offset = ff->pad_right + 1;
    if (3 - offset > ff->pad_left) ff->pad_left = 3 - offset;
    if (3 + neginf - offset > ff->pad_left) ff->pad_left = 3 + neginf - offset;
  }
}

/* one element, padded to the common width */
static void format_elem(float x, int precision, const floatfmt *ff, tl_buf *out) {
  if (!isfinite(x)) {
    const char *s = isnan(x) ? "nan" : x < 0 ? "-inf" : "inf";
    int w = ff->pad_left + ff->pad_right + 1 - (int)strlen(s);
    for (int i = 0; i < w; i++) tl_buf_append(out, " ", 1);
    tl_buf_append(out, s, strlen(s));
    return;
  }
  numtext t;
  if (ff->exp_format) {
    /* the fraction width found by fill_format is now both the cutoff and the
     * minimum (trim='k') */
    fmt_scientific(x, ff->precision, ff->precision, 1, &t);
  } else {
    fmt_positional(x, precision, 0, &t);
  }
  for (int i = (int)strlen(t.ip); i < ff->pad_left; i++) tl_buf_append(out, " ", 1);
  tl_buf_append(out, t.ip, strlen(t.ip));
  tl_buf_append(out, ".", 1);
  tl_buf_append(out, t.fp, strlen(t.fp));
  if (!ff->exp_format) {
    for (int i = (int)strlen(t.fp); i < ff->pad_right; i++) tl_buf_append(out, " ", 1);
  } else {
    tl_buf_append(out, "e", 1);
    tl_buf_append(out, t.ep, strlen(t.ep));
  }
}

/* numpy's _extendLine: start a new line (with the continuation indent) when the
 * word does not fit, unless the line holds nothing but the indent. */
static void extend_line(tl_buf *s, tl_buf *line, const char *word, size_t wlen, size_t width, const char *indent) {
  size_t ilen = strlen(indent);
  if (line->len + wlen > width && line->len > ilen) {
    size_t l = line->len;
    while (l > 0 && line->data[l - 1] == ' ') l--; /* rstrip */
    tl_buf_append(s, line->data, l);
    tl_buf_append(s, "\n", 1);
    line->len = 0;
    tl_buf_append(line, indent, ilen);
  }
  tl_buf_append(line, word, wlen);
}

#define EDGE 3
#define THRESHOLD 1000
#define LINE_WIDTH 75

char *tl_array_str_f32(const float *a, int64_t rows, int64_t cols, int precision) {
  /* digit buffers are sized for float32 at these precisions */
  if (precision < 0) precision = 0;
  if (precision > 16) precision = 16;
  int summarise = rows * cols > THRESHOLD;
  int sum_r = summarise && rows > 2 * EDGE, sum_c = summarise && cols > 2 * EDGE;
  /* indices of the printed rows/columns */
  int64_t nr = sum_r ? 2 * EDGE : rows, nc = sum_c ? 2 * EDGE : cols;
  int64_t *ri = tl_malloc((size_t)nr * sizeof *ri), *ci = tl_malloc((size_t)nc * sizeof *ci);
  for (int64_t i = 0; i < nr; i++) ri[i] = sum_r && i >= EDGE ? rows - 2 * EDGE + i : i;
  for (int64_t j = 0; j < nc; j++) ci[j] = sum_c && j >= EDGE ? cols - 2 * EDGE + j : j;
  float *shown = tl_malloc((size_t)(nr * nc) * sizeof *shown);
  for (int64_t i = 0; i < nr; i++)
    for (int64_t j = 0; j < nc; j++) shown[i * nc + j] = a[ri[i] * cols + ci[j]];

  floatfmt ff;
  fill_format(shown, nr * nc, precision, &ff);

  /* Rows: the inner recursion of numpy's _formatArray with hanging indent "  "
   * and width 75 - 1 (the outer "]"), elements limited to width - 1 (the row's "]"). */
  const char *row_indent = "  ";
  const size_t elem_width = LINE_WIDTH - 1 - 1;
  tl_buf out = {0}, s = {0}, line = {0}, word = {0};
  tl_buf_append(&out, "[", 1);
  for (int64_t i = 0; i < nr; i++) {
    if (sum_r && i == EDGE) tl_buf_append(&out, " ...\n", 5);
    s.len = 0;
    line.len = 0;
    tl_buf_append(&line, row_indent, 2);
    for (int64_t j = 0; j < nc; j++) {
      if (sum_c && j == EDGE) {
        extend_line(&s, &line, "...", 3, elem_width, row_indent);
        tl_buf_append(&line, " ", 1);
      }
      word.len = 0;
      format_elem(shown[i * nc + j], precision, &ff, &word);
      extend_line(&s, &line, (const char *)word.data, word.len, elem_width, row_indent);
      if (j + 1 < nc) tl_buf_append(&line, " ", 1);
    }
    tl_buf_append(&s, line.data, line.len);
    /* the row: "[" replaces the hanging indent; rows after the first start with " " */
    if (i > 0) tl_buf_append(&out, " ", 1);
    tl_buf_append(&out, "[", 1);
    tl_buf_append(&out, s.data + 2, s.len - 2);
    tl_buf_append(&out, "]", 1);
    if (i + 1 < nr) tl_buf_append(&out, "\n", 1);
  }
  tl_buf_append(&out, "]", 1);
  tl_buf_append(&out, "", 1); /* NUL */
  tl_buf_free(&s);
  tl_buf_free(&line);
  tl_buf_free(&word);
  free(shown);
  free(ri);
  free(ci);
  return (char *)out.data;
}

int tl_unembed_hash(const float *W_U, int64_t rows, int64_t cols, char out[65]) {
  if (rows <= 0 || cols <= 0) return tl_fail("unembed_hash: matrix shape [%lld, %lld] is empty", (long long)rows, (long long)cols);
  char *text = tl_array_str_f32(W_U, rows, cols, 1);
  tl_sha256_hex(text, strlen(text), out);
  free(text);
  return 0;
}
