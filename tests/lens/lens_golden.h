/* Loading of the architecture goldens (fixtures/golden/<family>/) for the lens tests:
 * the model's unembedding (through tl_model_load), the reference forward pass
 * (hidden states, logits, ids) and the reference lens/params.pt.
 *
 * params.pt is read here with a minimal reader for the one layout torch.save
 * wrote these files in: an uncompressed zip whose entries <archive>/data/<k> hold
 * the storages of "0.weight", "0.bias", "1.weight", ... in state-dict order
 * (storage k = key k; checked against the expected byte sizes). */
#ifndef LENS_GOLDEN_H
#define LENS_GOLDEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/lens.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

typedef struct {
  tl_model *model;
  tl_unembed u;
  int L, B, T, d, V;
  float *hidden;  /* [L][B][T][d]: hidden_states.0 .. L-1 */
  float *final;   /* [B][T][d]: hidden_states.L (after the final norm) */
  float *logits;  /* [B][T][V] */
  int32_t *ids;   /* [B][T] */
  tl_safetensors gold; /* lens.safetensors */
  tl_lens lens;   /* lens/params.pt */
} golden;

static uint32_t lg_u32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t lg_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Copies entry "<archive>/data/<k>" of the stored zip into dst (n bytes exactly). */
static int lg_zip_entry(const unsigned char *z, size_t len, int k, void *dst, size_t n) {
  char suffix[32];
  snprintf(suffix, sizeof suffix, "/data/%d", k);
  if (len < 22) return -1;
  size_t e = len - 22;
  while (e > 0 && lg_u32(z + e) != 0x06054b50) e--;
  if (lg_u32(z + e) != 0x06054b50) return -1;
  size_t cd = lg_u32(z + e + 16), cnt = lg_u16(z + e + 10);
  for (size_t i = 0; i < cnt && cd + 46 <= len; i++) {
    size_t nl = lg_u16(z + cd + 28), xl = lg_u16(z + cd + 30), cl = lg_u16(z + cd + 32);
    size_t csize = lg_u32(z + cd + 20), off = lg_u32(z + cd + 42);
    const char *name = (const char *)z + cd + 46;
    size_t sl = strlen(suffix);
    if (nl > sl && memcmp(name + nl - sl, suffix, sl) == 0) {
      if (lg_u16(z + cd + 10) != 0 || csize != n || off + 30 > len) return -1; /* stored, right size */
      size_t data = off + 30 + lg_u16(z + off + 26) + lg_u16(z + off + 28);
      if (data + n > len) return -1;
      memcpy(dst, z + data, n);
      return 0;
    }
    cd += 46 + nl + xl + cl;
  }
  return -1;
}

static int lg_load_params(tl_lens *lens, const char *path) {
  tl_mmap m;
  if (tl_mmap_open(&m, path)) return -1;
  int rc = 0;
  const int d = lens->d_model;
  for (int i = 0; i < lens->n_layers && !rc; i++) {
    rc |= lg_zip_entry(m.data, m.size, 2 * i, lens->params + tl_lens_weight_off(lens, i),
                       (size_t)d * d * sizeof(float));
    rc |= lg_zip_entry(m.data, m.size, 2 * i + 1, lens->params + tl_lens_bias_off(lens, i),
                       (size_t)d * sizeof(float));
  }
  tl_mmap_close(&m);
  return rc;
}

/* A golden scalar / tensor from lens.safetensors (malloc'd fp32). */
static float *lg_get(const golden *g, const char *name, int64_t numel) {
  const tl_st_tensor *t = tl_st_find(&g->gold, name);
  if (!t || t->dtype != TL_F32 || (int64_t)(t->nbytes / 4) != numel) {
    fprintf(stderr, "golden tensor %s missing or of the wrong size\n", name);
    exit(2);
  }
  float *out = malloc(t->nbytes);
  memcpy(out, t->data, t->nbytes);
  return out;
}

static int golden_open(golden *g, const char *family) {
  memset(g, 0, sizeof *g);
  char dir[1024], path[1100];
  snprintf(dir, sizeof dir, "%s/golden/%s", tl_test_fixtures(), family);
  snprintf(path, sizeof path, "%s/model", dir);
  if (tl_model_load(&g->model, path) || tl_model_unembed(g->model, &g->u)) {
    fprintf(stderr, "%s: %s\n", path, tl_errmsg());
    return -1;
  }
  const tl_model_config *c = tl_model_cfg(g->model);
  g->L = c->n_layers;
  g->d = c->d_model;
  g->V = c->vocab;
  tl_safetensors fw;
  snprintf(path, sizeof path, "%s/forward.safetensors", dir);
  if (tl_st_open(&fw, path)) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return -1;
  }
  int64_t *ids64 = NULL;
  int64_t any2[2] = {-1, -1};
  if (tl_st_get_i64(&fw, "input_ids", 2, any2, &ids64)) return -1;
  g->B = (int)tl_st_find(&fw, "input_ids")->shape[0];
  g->T = (int)tl_st_find(&fw, "input_ids")->shape[1];
  const size_t BT = (size_t)g->B * g->T;
  g->ids = malloc(BT * sizeof(int32_t));
  for (size_t k = 0; k < BT; k++) g->ids[k] = (int32_t)ids64[k];
  free(ids64);
  int64_t hs[3] = {g->B, g->T, g->d}, ls[3] = {g->B, g->T, g->V};
  g->hidden = malloc((size_t)g->L * BT * g->d * sizeof(float));
  for (int i = 0; i < g->L; i++) {
    char name[64];
    float *h;
    snprintf(name, sizeof name, "hidden_states.%d", i);
    if (tl_st_get_f32(&fw, name, 3, hs, &h)) return -1;
    memcpy(g->hidden + (size_t)i * BT * g->d, h, BT * g->d * sizeof(float));
    free(h);
  }
  {
    char name[64];
    snprintf(name, sizeof name, "hidden_states.%d", g->L);
    if (tl_st_get_f32(&fw, name, 3, hs, &g->final)) return -1;
  }
  if (tl_st_get_f32(&fw, "logits", 3, ls, &g->logits)) return -1;
  tl_st_close(&fw);
  snprintf(path, sizeof path, "%s/lens.safetensors", dir);
  if (tl_st_open(&g->gold, path)) return -1;
  if (tl_lens_init(&g->lens, g->L, g->d)) return -1;
  snprintf(path, sizeof path, "%s/lens/params.pt", dir);
  if (lg_load_params(&g->lens, path)) {
    fprintf(stderr, "%s: could not read the translator storages\n", path);
    return -1;
  }
  return 0;
}

static void golden_close(golden *g) {
  tl_model_free(g->model);
  free(g->hidden), free(g->final), free(g->logits), free(g->ids);
  tl_st_close(&g->gold);
  tl_lens_free(&g->lens);
}

#endif
