/* CPU backend ops against direct double-precision formulas: causal GQA attention
 * (with and without a sliding window or ALiBi slopes, T not a multiple of the block size), rotary
 * embeddings (full and partial, with given frequencies), layernorm, rmsnorm, activations, scale,
 * sgemm splits.
 * Every op returns 0; head layouts the ops cannot do are refused with a message. */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/backend.h"
#include "tlens/core.h"

static float frand(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

/* slopes: NULL, or ALiBi slopes per head (score of query i, key j += slope * (j - i)) */
static void check_attention(const tl_backend *be, int B, int T, int H, int KV, int hd, int window,
                            const float *slopes) {
  unsigned seed = 1234u + T + window;
  int rs = (H + 2 * KV) * hd;
  float *qkv = malloc(sizeof(float) * B * T * rs), *out = malloc(sizeof(float) * B * T * H * hd);
  for (long i = 0; i < (long)B * T * rs; i++) qkv[i] = 2.0f * frand(&seed);
  float scale = 1.0f / sqrtf((float)hd);
  if (slopes) CHECK(be->attention_alibi(out, qkv, B, T, H, KV, hd, scale, window, slopes) == 0);
  else CHECK(be->attention(out, qkv, B, T, H, KV, hd, scale, window) == 0);
  double maxerr = 0;
  double *p = malloc(sizeof(double) * T);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        int kvh = h / (H / KV);
        const float *q = qkv + ((size_t)b * T + i) * rs + h * hd;
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= i; j++) {
          p[j] = -1e300;
          if (window > 0 && i - j >= window) continue;
          const float *k = qkv + ((size_t)b * T + j) * rs + (H + kvh) * hd;
          double s = 0;
          for (int c = 0; c < hd; c++) s += (double)q[c] * k[c];
          p[j] = s * scale + (slopes ? (double)slopes[h] * (j - i) : 0.0);
          mx = p[j] > mx ? p[j] : mx;
        }
        for (int j = 0; j <= i; j++) sum += (p[j] = p[j] > -1e299 ? exp(p[j] - mx) : 0);
        for (int c = 0; c < hd; c++) {
          double o = 0;
          for (int j = 0; j <= i; j++) o += p[j] / sum * qkv[((size_t)b * T + j) * rs + (H + KV + kvh) * hd + c];
          double e = fabs(o - out[((size_t)b * T + i) * H * hd + h * hd + c]);
          maxerr = e > maxerr ? e : maxerr;
        }
      }
  CHECKF(maxerr < 1e-5, "attention B%d T%d H%d KV%d hd%d window %d alibi %d: max error %.3g", B, T, H, KV, hd,
         window, slopes != NULL, maxerr);
  free(p), free(qkv), free(out);
}

int main(void) {
  const tl_backend *be = tl_backend_cpu();
  tl_backend_cpu_set_threads(2);
  check_attention(be, 2, 150, 4, 2, 16, 0, NULL);
  check_attention(be, 1, 130, 6, 3, 8, 40, NULL);
  check_attention(be, 3, 5, 2, 1, 4, 0, NULL);
  /* ALiBi (BLOOM's slopes for 6 heads), also with GQA and a window */
  const float slopes[6] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
  check_attention(be, 2, 150, 6, 6, 16, 0, slopes);
  check_attention(be, 1, 70, 6, 2, 8, 20, slopes);

  /* rope: full (llama) and partial (neox, 4 of 16 dims), on a q|k row of 3 heads */
  unsigned seed = 7;
  for (int rot = 16; rot >= 4; rot -= 12) {
    int B = 2, T = 9, nh = 3, hd = 16, rs = nh * hd + 5;
    float theta = 10000.0f;
    float *x = malloc(sizeof(float) * B * T * rs), *x0 = malloc(sizeof(float) * B * T * rs);
    for (int i = 0; i < B * T * rs; i++) x0[i] = x[i] = frand(&seed);
    CHECK(be->rope(x, B, T, rs, nh, hd, rot, theta) == 0);
    double err = 0;
    for (int r = 0; r < B * T; r++) {
      int t = r % T;
      for (int c = 0; c < rs; c++) {
        double want = x0[r * rs + c];
        int h = c / hd, i = c % hd, half = rot / 2;
        if (h < nh && i < rot) {
          int f = i % half;
          double ang = t * pow(theta, -2.0 * f / rot);
          double a = x0[r * rs + h * hd + f], bb = x0[r * rs + h * hd + f + half];
          want = i < half ? a * cos(ang) - bb * sin(ang) : bb * cos(ang) + a * sin(ang);
        }
        double e = fabs(want - x[r * rs + c]);
        err = e > err ? e : err;
      }
    }
    CHECKF(err < 1e-5, "rope rot %d: max error %.3g", rot, err);
    free(x), free(x0);
  }

  /* rope_freqs: given frequencies and a position divisor (scaled RoPE) against the
   * formula; with theta's frequencies and divisor 1 it is rope() to the bit */
  {
    int B = 2, T = 11, nh = 2, hd = 12, rot = 8, rs = nh * hd + 3, half = rot / 2;
    float inv[4] = {1.0f, 0.3f, 0.05f, 0.001f}, pos_div = 2.5f;
    float *x = malloc(sizeof(float) * B * T * rs), *x0 = malloc(sizeof(float) * B * T * rs),
          *x1 = malloc(sizeof(float) * B * T * rs);
    for (int i = 0; i < B * T * rs; i++) x0[i] = x[i] = x1[i] = frand(&seed);
    CHECK(be->rope_freqs(x, B, T, rs, nh, hd, rot, inv, pos_div) == 0);
    double err = 0;
    for (int r = 0; r < B * T; r++)
      for (int h = 0; h < nh; h++)
        for (int i = 0; i < rot; i++) {
          int f = i % half;
          double ang = (r % T) / (double)pos_div * inv[f];
          double a = x0[r * rs + h * hd + f], bb = x0[r * rs + h * hd + f + half];
          double want = i < half ? a * cos(ang) - bb * sin(ang) : bb * cos(ang) + a * sin(ang);
          double e = fabs(want - x[r * rs + h * hd + i]);
          err = e > err ? e : err;
        }
    CHECKF(err < 1e-5, "rope_freqs: max error %.3g", err);
    float th[4];
    for (int i = 0; i < half; i++) th[i] = 1.0f / powf(500000.0f, (float)(2 * i) / (float)rot);
    memcpy(x, x0, sizeof(float) * B * T * rs);
    CHECK(be->rope(x, B, T, rs, nh, hd, rot, 500000.0f) == 0);
    CHECK(be->rope_freqs(x1, B, T, rs, nh, hd, rot, th, 1.0f) == 0);
    CHECK(memcmp(x, x1, sizeof(float) * B * T * rs) == 0);
    free(x), free(x0), free(x1);
  }

  /* norms */
  int rows = 5, d = 37;
  float *x = malloc(sizeof(float) * rows * d), *y = malloc(sizeof(float) * rows * d), w[37], bias[37];
  for (int i = 0; i < rows * d; i++) x[i] = 3.0f * frand(&seed) + 1.0f;
  for (int i = 0; i < d; i++) w[i] = frand(&seed), bias[i] = frand(&seed);
  CHECK(be->layernorm(y, x, w, bias, rows, d, 1e-5f) == 0);
  double eln = 0, erms = 0;
  for (int r = 0; r < rows; r++) {
    double m = 0, v = 0;
    for (int i = 0; i < d; i++) m += x[r * d + i] / (double)d;
    for (int i = 0; i < d; i++) v += (x[r * d + i] - m) * (x[r * d + i] - m) / d;
    for (int i = 0; i < d; i++) {
      double e = fabs((x[r * d + i] - m) / sqrt(v + 1e-5) * w[i] + bias[i] - y[r * d + i]);
      eln = e > eln ? e : eln;
    }
  }
  CHECK(be->rmsnorm(y, x, w, rows, d, 1e-6f, 1) == 0);
  for (int r = 0; r < rows; r++) {
    double ms = 0;
    for (int i = 0; i < d; i++) ms += (double)x[r * d + i] * x[r * d + i] / d;
    for (int i = 0; i < d; i++) {
      double e = fabs(x[r * d + i] / sqrt(ms + 1e-6) * (1.0 + w[i]) - y[r * d + i]);
      erms = e > erms ? e : erms;
    }
  }
  CHECKF(eln < 1e-5 && erms < 1e-5, "layernorm %.3g rmsnorm %.3g", eln, erms);

  /* activations at hand-checked points: gelu(1) = 0.841345, gelu_new(1) = 0.841192, silu(1) = 0.731059 */
  float a[4] = {1, 1, 1, -2};
  CHECK(be->act(a, 1, TL_ACT_GELU) == 0 && be->act(a + 1, 1, TL_ACT_GELU_NEW) == 0 &&
        be->act(a + 2, 1, TL_ACT_SILU) == 0 && be->act(a + 3, 1, TL_ACT_RELU) == 0);
  CHECKF(fabsf(a[0] - 0.8413447f) < 1e-6f && fabsf(a[1] - 0.8411920f) < 1e-6f && fabsf(a[2] - 0.7310586f) < 1e-6f &&
             a[3] == 0.0f, "act %g %g %g %g", a[0], a[1], a[2], a[3]);

  /* scale in place */
  float sc[3] = {1.5f, -2.0f, 0.0f};
  CHECK(be->scale(sc, 3, 8.0f) == 0 && sc[0] == 12.0f && sc[1] == -16.0f && sc[2] == 0.0f);

  /* sgemm split over threads, both orientations, against a direct sum */
  for (int shape = 0; shape < 2; shape++) {
    int M = shape ? 300 : 33, N = shape ? 40 : 517, K = 70;
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K), *C = malloc(sizeof(float) * M * N),
          *bb = malloc(sizeof(float) * N);
    for (int i = 0; i < M * K; i++) A[i] = frand(&seed);
    for (int i = 0; i < N * K; i++) W[i] = frand(&seed);
    for (int i = 0; i < N; i++) bb[i] = frand(&seed);
    for (int i = 0; i < M * N; i++) C[i] = 1.0f;
    CHECK(be->linear(C, A, W, bb, M, N, K, 1) == 0); /* C = 1 + A W^T + b */
    double e = 0;
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double s = 1.0 + bb[j];
        for (int k = 0; k < K; k++) s += (double)A[i * K + k] * W[j * K + k];
        e = fabs(s - C[i * N + j]) > e ? fabs(s - C[i * N + j]) : e;
      }
    CHECKF(e < 1e-4, "linear %dx%dx%d: max error %.3g", M, N, K, e);
    free(A), free(W), free(C), free(bb);
  }
  free(x), free(y);

  /* no shape limits; layouts it cannot do are refused */
  CHECK(be->max_head_dim == 0 && be->max_rot_dim == 0);
  float q[3 * 8 * 2] = {0}, o[8 * 2];
  CHECK(be->attention(o, q, 1, 2, 3, 2, 8, 1.0f, 0) == -1 && strstr(tl_errmsg(), "key/value heads"));
  CHECK(be->attention_alibi(o, q, 1, 2, 1, 1, 8, 1.0f, 0, NULL) == -1 && strstr(tl_errmsg(), "slopes"));
  CHECK(be->rope(q, 1, 2, 8, 1, 8, 10, 10000.0f) == -1 && strstr(tl_errmsg(), "head_dim 8"));
  CHECK(be->rope(q, 1, 2, 8, 1, 8, 3, 10000.0f) == -1 && strstr(tl_errmsg(), "even"));
  return tl_test_finish("test_model_backend");
}
