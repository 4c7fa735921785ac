/* synth -> info -> hidden round trip through the command line, for each family,
 * storage dtype and tying. Checked independently of the model code:
 *  - `info` reports the parameter count given by the closed-form formula per family;
 *  - hidden_states.0 equals the embedding rows of the ids (+ learned positions for
 *    gpt2), read straight from model.safetensors;
 *  - logits equal hidden_states.L @ W_U^T with W_U read from the file (the input
 *    embedding when tied), computed here with plain loops;
 *  - every output has the HF shape. */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/safetensors.h"

typedef struct {
  const char *arch, *dtype;
  int L, d, H, KV, ff, V, tie;
} synth_case;

static long long expected_params(const synth_case *c, int P) {
  long long d = c->d, L = c->L, V = c->V, H = c->H, KV = c->KV ? c->KV : c->H, hd = c->d / c->H, ff = c->ff;
  if (!strcmp(c->arch, "gpt2"))
    return V * d + P * d + 2 * d + L * (4 * d + 3 * d * d + 3 * d + d * d + d + d * ff + ff + ff * d + d);
  if (!strcmp(c->arch, "gpt_neox"))
    return V * d + 2 * d + (c->tie ? 0 : V * d) + L * (4 * d + 3 * d * d + 3 * d + d * d + d + d * ff + ff + ff * d + d);
  return V * d + d + (c->tie ? 0 : V * d) + L * (2 * d + d * H * hd + 2 * d * KV * hd + H * hd * d + 3 * d * ff);
}

static void run_case(const synth_case *c, const char *tlens, const char *work) {
  const int P = 64, B = 2, T = 7;
  char *dir = tl_sprintf("%s/%s_%s%s", work, c->arch, c->dtype, c->tie ? "_tied" : "");
  char kv[32] = "";
  if (c->KV) snprintf(kv, sizeof kv, "--kv_heads %d", c->KV);
  char *cmd = tl_sprintf("'%s' synth --arch %s --layers %d --hidden %d --heads %d --vocab %d --intermediate %d "
                         "--seq %d --seed 7 --dtype %s %s %s --output '%s' > /dev/null",
                         tlens, c->arch, c->L, c->d, c->H, c->V, c->ff, P, c->dtype, c->tie ? "--tie" : "",
                         kv, dir);
  CHECKF(system(cmd) == 0, "%s", cmd);
  free(cmd);

  /* info: the parameter count */
  char *info = tl_sprintf("%s/info.txt", dir);
  cmd = tl_sprintf("'%s' info --model '%s' > '%s'", tlens, dir, info);
  CHECKF(system(cmd) == 0, "%s", cmd);
  char *text = NULL;
  size_t len;
  long long got = -1;
  if (tl_read_file(info, &text, &len) == 0) {
    const char *p = strstr(text, "parameters:");
    if (p) got = atoll(p + strlen("parameters:"));
  }
  CHECKF(got == expected_params(c, P), "%s: info says %lld parameters, formula %lld", dir, got,
         expected_params(c, P));
  free(text);
  free(cmd);

  /* hidden on I32 ids */
  int32_t ids[B * T];
  for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 5) % c->V;
  tl_st_writer *w = tl_st_writer_new();
  int64_t ishape[2] = {B, T};
  tl_st_writer_add(w, "input_ids", TL_I32, 2, ishape, ids);
  char *in = tl_sprintf("%s/in.safetensors", dir), *out = tl_sprintf("%s/out.safetensors", dir);
  CHECK(tl_st_writer_save(w, in) == 0);
  tl_st_writer_free(w);
  cmd = tl_sprintf("'%s' hidden --model '%s' --input '%s' --output '%s'", tlens, dir, in, out);
  CHECKF(system(cmd) == 0, "%s", cmd);
  free(cmd);

  tl_safetensors ms, os;
  char *mpath = tl_sprintf("%s/model.safetensors", dir);
  if (tl_st_open(&ms, mpath) || tl_st_open(&os, out)) {
    CHECKF(0, "%s", tl_errmsg());
    return;
  }
  int gpt2 = !strcmp(c->arch, "gpt2"), neox = !strcmp(c->arch, "gpt_neox");
  const char *emb = gpt2 ? "transformer.wte.weight" : neox ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight";
  const char *head = c->tie || gpt2 ? emb : neox ? "embed_out.weight" : "lm_head.weight";
  int64_t eshape[2] = {c->V, c->d}, pshape[2] = {P, c->d}, hshape[3] = {B, T, c->d}, lshape[3] = {B, T, c->V};
  float *E = NULL, *W = NULL, *pos = NULL, *h0 = NULL, *hL = NULL, *logits = NULL;
  CHECK(tl_st_get_f32(&ms, emb, 2, eshape, &E) == 0);
  CHECK(tl_st_get_f32(&ms, head, 2, eshape, &W) == 0);
  if (gpt2) CHECK(tl_st_get_f32(&ms, "transformer.wpe.weight", 2, pshape, &pos) == 0);
  char name[32];
  snprintf(name, sizeof name, "hidden_states.%d", c->L);
  CHECK(tl_st_get_f32(&os, "hidden_states.0", 3, hshape, &h0) == 0);
  CHECK(tl_st_get_f32(&os, name, 3, hshape, &hL) == 0);
  CHECK(tl_st_get_f32(&os, "logits", 3, lshape, &logits) == 0);
  for (int i = 1; i < c->L; i++) {
    snprintf(name, sizeof name, "hidden_states.%d", i);
    const tl_st_tensor *t = tl_st_find(&os, name);
    CHECKF(t && t->ndim == 3 && t->shape[2] == c->d, "%s: %s", dir, name);
  }
  snprintf(name, sizeof name, "hidden_states.%d", c->L + 1);
  CHECKF(tl_st_find(&os, name) == NULL, "%s: too many hidden states", dir);
  if (E && W && h0 && hL && logits && (!gpt2 || pos)) {
    double e0 = 0, el = 0;
    for (int r = 0; r < B * T; r++)
      for (int k = 0; k < c->d; k++) {
        double want = E[(size_t)ids[r] * c->d + k] + (gpt2 ? pos[(size_t)(r % T) * c->d + k] : 0.0);
        double diff = fabs(h0[(size_t)r * c->d + k] - want);
        e0 = diff > e0 ? diff : e0;
      }
    for (int r = 0; r < B * T; r++)
      for (int v = 0; v < c->V; v++) {
        double s = 0;
        for (int k = 0; k < c->d; k++) s += (double)hL[(size_t)r * c->d + k] * W[(size_t)v * c->d + k];
        double diff = fabs(logits[(size_t)r * c->V + v] - s);
        el = diff > el ? diff : el;
      }
    CHECKF(e0 < 1e-6, "%s: hidden_states.0 differs from the embeddings by %.3g", dir, e0);
    CHECKF(el < 1e-4, "%s: logits differ from hidden_states.L @ W_U^T by %.3g", dir, el);
    fprintf(stderr, "%s: embed err %.2g, unembed err %.2g, %lld params\n", dir, e0, el, got);
  }
  free(E), free(W), free(pos), free(h0), free(hL), free(logits);
  tl_st_close(&ms);
  tl_st_close(&os);
  free(mpath), free(in), free(out), free(info), free(dir);
}

int main(void) {
  const char *tlens = getenv("TLENS"), *bin = getenv("TESTBIN");
  if (!tlens || !bin) {
    fprintf(stderr, "TLENS and TESTBIN must be set (run through ctest)\n");
    return 1;
  }
  char *work = tl_sprintf("%s/work/model_synth", bin);
  tl_mkdirs(work);
  const synth_case cases[] = {
      {"gpt2", "f32", 2, 32, 4, 0, 128, 100, 0},
      {"gpt_neox", "f16", 2, 64, 4, 0, 96, 128, 0},
      {"gpt_neox", "bf16", 1, 32, 2, 0, 64, 50, 1},
      {"llama", "bf16", 2, 32, 4, 2, 48, 96, 1},
      {"llama", "f32", 3, 48, 6, 3, 40, 77, 0},
      {"llama", "bf16", 1, 32, 4, 2, 48, 96, 0}, /* untied: embedding rows read from the mapped file */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], tlens, work);
  free(work);
  return tl_test_finish("test_model_synth");
}
