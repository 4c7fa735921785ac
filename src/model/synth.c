/* Synthetic models: a random-weight Hugging Face folder (config.json +
 * model.safetensors) of any shape, written from the same family tables the
 * loader reads, so what synth writes is by construction what load expects. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "tlens/safetensors.h"

/* splitmix64: small, seedable, good enough for test weights */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double uniform01(uint64_t *s) { return ((next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static float normal(uint64_t *s) {
  double u = uniform01(s), v = uniform01(s);
  return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static int check_opts(const tl_synth_opts *o, const tl_family **fam) {
  if (!o->arch || !(*fam = tl_family_find(o->arch)))
    return tl_fail("synth: --arch '%s' is not supported (expected one of %s)", o->arch ? o->arch : "",
                   tl_model_supported_types());
  if (o->layers <= 0 || o->hidden <= 0 || o->heads <= 0 || o->vocab <= 0 || o->seq <= 0)
    return tl_fail("synth: --layers, --hidden, --heads, --vocab and --seq must be positive");
  if (o->hidden % o->heads) return tl_fail("synth: --hidden %d is not divisible by --heads %d", o->hidden, o->heads);
  if (o->kv_heads < 0 || o->intermediate < 0) return tl_fail("synth: --kv_heads and --intermediate must be >= 0");
  if (o->kv_heads && o->heads % o->kv_heads)
    return tl_fail("synth: --heads %d is not a multiple of --kv_heads %d", o->heads, o->kv_heads);
  if (o->dtype != TL_F32 && o->dtype != TL_F16 && o->dtype != TL_BF16)
    return tl_fail("synth: --dtype must be f32, f16 or bf16");
  double params = (double)o->layers * 16.0 * o->hidden * o->hidden + 2.0 * o->vocab * o->hidden;
  if (params > 4e9) return tl_fail("synth: a model of about %.3g parameters is too large to synthesise", params);
  return 0;
}

/* The config.json text for c, and the config the loader reads from it. */
static int config_roundtrip(const tl_family *fam, const tl_model_config *c, const char *path, char **json,
                            tl_model_config *read, const tl_family **f2) {
  free(*json);
  *json = tl_model_config_json(fam, c);
  return tl_model_parse_config(*json, strlen(*json), path, read, f2);
}

int tl_model_synth(const tl_synth_opts *o, const char *dir) {
  const tl_family *fam;
  TL_TRY(check_opts(o, &fam));
  tl_model_config c;
  memset(&c, 0, sizeof c);
  c.d_model = o->hidden;
  c.n_layers = o->layers;
  c.n_heads = o->heads;
  c.n_kv_heads = o->kv_heads ? o->kv_heads : o->heads;
  c.head_dim = o->hidden / o->heads;
  c.rot_dim = c.head_dim / 2 / 2 * 2; /* gptj's rotary_dim: half of each head */
  c.vocab = o->vocab;
  c.max_pos = o->seq;
  c.dtype = o->dtype;
  c.d_ff = o->intermediate ? o->intermediate : 4 * o->hidden;
  c.tied = !strcmp(o->arch, "gpt2") ? 1 : o->tie;

  /* Write config.json, then read it back exactly as the loader will. */
  char *json = NULL;
  char *cfg_path = tl_path_join(dir, "config.json"), *st_path = tl_path_join(dir, "model.safetensors");
  tl_model_config rc_cfg;
  const tl_family *f2;
  tl_tspec *specs = NULL;
  int ns = 0, rc = -1;
  tl_st_writer *w = NULL;
  if (config_roundtrip(fam, &c, cfg_path, &json, &rc_cfg, &f2)) goto done;
  if (rc_cfg.gated_mlp && !o->intermediate) { /* Llama's usual ratio: 8/3, rounded up to a multiple of 16 */
    c.d_ff = (8 * o->hidden / 3 + 15) / 16 * 16;
    if (config_roundtrip(fam, &c, cfg_path, &json, &rc_cfg, &f2)) goto done;
  }
  if (rc_cfg.n_kv_heads != c.n_kv_heads) {
    tl_fail("synth: --kv_heads (grouped-query attention) is not supported by --arch %s", o->arch);
    goto done;
  }
  if (o->intermediate && rc_cfg.d_ff != o->intermediate) {
    tl_fail("synth: --arch %s has no MLP width in its config (it is %d for --hidden %d); leave out --intermediate",
            o->arch, rc_cfg.d_ff, o->hidden);
    goto done;
  }
  if (tl_mkdirs(dir)) goto done;
  if (tl_model_specs(f2, &rc_cfg, &specs, &ns)) goto done;
  w = tl_st_writer_new();
  tl_st_writer_meta(w, "format", "pt");
  uint64_t seed = o->seed;
  size_t cap = 0;
  float *buf = NULL;
  void *conv = NULL;
  for (int i = 0; i < ns; i++) {
    const tl_tspec *s = &specs[i];
    size_t n = (size_t)s->shape[0] * (s->ndim == 2 ? (size_t)s->shape[1] : 1);
    if (n > cap) {
      cap = n;
      buf = tl_realloc(buf, cap * sizeof(float));
      conv = tl_realloc(conv, cap * sizeof(float));
    }
    int is_norm_w = s->role == R_LN1_W || s->role == R_LN2_W || s->role == R_FINAL_W || s->role == R_EMBED_NORM_W;
    /* HF-like init: weights N(0, 0.02), norm gains near 1, small biases */
    for (size_t k = 0; k < n; k++) {
      float z = normal(&seed);
      buf[k] = is_norm_w ? 1.0f + 0.1f * z : s->ndim == 1 ? 0.01f * z : 0.02f * z;
    }
    tl_from_f32(conv, o->dtype, buf, n);
    tl_st_writer_add(w, s->name, o->dtype, s->ndim, s->shape, conv);
  }
  free(buf);
  free(conv);
  if (tl_st_writer_save(w, st_path)) goto done;
  if (tl_write_file_atomic(cfg_path, json, strlen(json))) goto done;
  rc = 0;
done:
  if (w) tl_st_writer_free(w);
  free(specs);
  free(json);
  free(cfg_path);
  free(st_path);
  return rc;
}
