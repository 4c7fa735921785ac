/* synth -> info -> hidden round trip through the command line, for each family,
 * storage dtype and tying. Checked independently of the model code:
 *  - `info` reports the parameter count given by the closed-form formula (gpt2,
 *    gpt_neox, llama), or the total size of the tensors in model.safetensors;
 *  - hidden_states.0 equals the embedding rows of the ids read straight from
 *    model.safetensors, as the family makes them: + learned positions (gpt2,
 *    gpt_neo; opt's from row 2), x sqrt(d) (gemma), LayerNorm'd (bloom);
 *  - logits equal hidden_states.L @ W_U^T (+ b_U) with W_U read from the file (the
 *    input embedding when tied), computed here with plain loops;
 *  - every output has the HF shape. */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/safetensors.h"

typedef struct {
  const char *arch, *dtype;
  int L, d, H, KV, ff, V, tie; /* ff 0: the family's own width (no --intermediate) */
} synth_case;

/* Where each family keeps what hidden_states.0 and the logits are made of. */
typedef struct {
  const char *arch, *embed, *head, *head_bias, *pos;
  int pos_offset, scaled;
  const char *embed_norm; /* prefix of a LayerNorm's .weight/.bias applied to the embeddings */
} family_names;

static const family_names names[] = {
    {"gpt2", "transformer.wte.weight", "lm_head.weight", NULL, "transformer.wpe.weight", 0, 0, NULL},
    {"gpt_neox", "gpt_neox.embed_in.weight", "embed_out.weight", NULL, NULL, 0, 0, NULL},
    {"llama", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
    {"mistral", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
    {"gpt_neo", "transformer.wte.weight", "lm_head.weight", NULL, "transformer.wpe.weight", 0, 0, NULL},
    {"gptj", "transformer.wte.weight", "lm_head.weight", "lm_head.bias", NULL, 0, 0, NULL},
    {"opt", "model.decoder.embed_tokens.weight", "lm_head.weight", NULL, "model.decoder.embed_positions.weight", 2,
     0, NULL},
    {"bloom", "transformer.word_embeddings.weight", "lm_head.weight", NULL, NULL, 0, 0,
     "transformer.word_embeddings_layernorm"},
    {"gemma", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 1, NULL},
    {"qwen2", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
    {"phi3", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
    {"phi", "model.embed_tokens.weight", "lm_head.weight", "lm_head.bias", NULL, 0, 0, NULL},
    {"stablelm", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
    {"falcon", "transformer.word_embeddings.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
    {"olmo", "model.embed_tokens.weight", "lm_head.weight", NULL, NULL, 0, 0, NULL},
};

static const family_names *names_of(const char *arch) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(names[i].arch, arch)) return &names[i];
  return NULL;
}

/* The sum of the tensor sizes in a safetensors file. */
static long long file_params(const tl_safetensors *st) {
  long long n = 0;
  for (int i = 0; i < st->n; i++) n += tl_numel(st->tensors[i].ndim, st->tensors[i].shape);
  return n;
}

static long long expected_params(const synth_case *c, int P) {
  long long d = c->d, L = c->L, V = c->V, H = c->H, KV = c->KV ? c->KV : c->H, hd = c->d / c->H, ff = c->ff;
  if (!strcmp(c->arch, "gpt2"))
    return V * d + P * d + 2 * d + L * (4 * d + 3 * d * d + 3 * d + d * d + d + d * ff + ff + ff * d + d);
  if (!strcmp(c->arch, "gpt_neox"))
    return V * d + 2 * d + (c->tie ? 0 : V * d) + L * (4 * d + 3 * d * d + 3 * d + d * d + d + d * ff + ff + ff * d + d);
  if (!strcmp(c->arch, "llama"))
    return V * d + d + (c->tie ? 0 : V * d) + L * (2 * d + d * H * hd + 2 * d * KV * hd + H * hd * d + 3 * d * ff);
  return -1; /* the others: counted from the file */
}

static void run_case(const synth_case *c, const char *tlens, const char *work) {
  const int P = 64, B = 2, T = 7;
  char *dir = tl_sprintf("%s/%s_%s%s", work, c->arch, c->dtype, c->tie ? "_tied" : "");
  char kv[32] = "", ff[32] = "";
  if (c->KV) snprintf(kv, sizeof kv, "--kv_heads %d", c->KV);
  if (c->ff) snprintf(ff, sizeof ff, "--intermediate %d", c->ff);
  char *cmd = tl_sprintf("'%s' synth --arch %s --layers %d --hidden %d --heads %d --vocab %d %s "
                         "--seq %d --seed 7 --dtype %s %s %s --output '%s' > /dev/null",
                         tlens, c->arch, c->L, c->d, c->H, c->V, ff, P, c->dtype, c->tie ? "--tie" : "",
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
  long long want_params = expected_params(c, P);
  if (want_params < 0) want_params = file_params(&ms);
  CHECKF(got == want_params, "%s: info says %lld parameters, expected %lld", dir, got, want_params);
  const family_names *fn = names_of(c->arch);
  CHECKF(fn != NULL, "no names for %s", c->arch);
  if (!fn) return;
  int gpt2 = !strcmp(c->arch, "gpt2");
  const char *emb = fn->embed, *head = c->tie || gpt2 ? emb : fn->head;
  int64_t eshape[2] = {c->V, c->d}, pshape[2] = {P + fn->pos_offset, c->d}, hshape[3] = {B, T, c->d},
          lshape[3] = {B, T, c->V}, vshape[1] = {c->V}, dshape[1] = {c->d};
  float *E = NULL, *W = NULL, *bU = NULL, *pos = NULL, *lnw = NULL, *lnb = NULL, *h0 = NULL, *hL = NULL,
        *logits = NULL;
  CHECK(tl_st_get_f32(&ms, emb, 2, eshape, &E) == 0);
  CHECK(tl_st_get_f32(&ms, head, 2, eshape, &W) == 0);
  if (fn->head_bias) CHECK(tl_st_get_f32(&ms, fn->head_bias, 1, vshape, &bU) == 0);
  if (fn->pos) CHECK(tl_st_get_f32(&ms, fn->pos, 2, pshape, &pos) == 0);
  if (fn->embed_norm) {
    char nw[128], nb[128];
    snprintf(nw, sizeof nw, "%s.weight", fn->embed_norm);
    snprintf(nb, sizeof nb, "%s.bias", fn->embed_norm);
    CHECK(tl_st_get_f32(&ms, nw, 1, dshape, &lnw) == 0 && tl_st_get_f32(&ms, nb, 1, dshape, &lnb) == 0);
  }
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
  if (E && W && h0 && hL && logits && (!fn->pos || pos) && (!fn->head_bias || bU) && (!fn->embed_norm || lnb)) {
    double e0 = 0, el = 0, *row = malloc(sizeof(double) * c->d);
    for (int r = 0; r < B * T; r++) {
      double mean = 0, var = 0;
      for (int k = 0; k < c->d; k++) {
        row[k] = E[(size_t)ids[r] * c->d + k] * (fn->scaled ? sqrt((double)c->d) : 1.0);
        if (pos) row[k] += pos[(size_t)(r % T + fn->pos_offset) * c->d + k];
        mean += row[k] / c->d;
      }
      for (int k = 0; k < c->d; k++) var += (row[k] - mean) * (row[k] - mean) / c->d;
      for (int k = 0; k < c->d; k++) {
        double want = lnw ? (row[k] - mean) / sqrt(var + 1e-5) * lnw[k] + lnb[k] : row[k];
        double diff = fabs(h0[(size_t)r * c->d + k] - want) / (fabs(want) > 1 ? fabs(want) : 1);
        e0 = diff > e0 ? diff : e0;
      }
    }
    free(row);
    for (int r = 0; r < B * T; r++)
      for (int v = 0; v < c->V; v++) {
        double s = bU ? bU[v] : 0;
        for (int k = 0; k < c->d; k++) s += (double)hL[(size_t)r * c->d + k] * W[(size_t)v * c->d + k];
        double diff = fabs(logits[(size_t)r * c->V + v] - s);
        el = diff > el ? diff : el;
      }
    CHECKF(e0 < 1e-6, "%s: hidden_states.0 differs from the embeddings by %.3g", dir, e0);
    CHECKF(el < 1e-4, "%s: logits differ from hidden_states.L @ W_U^T by %.3g", dir, el);
    fprintf(stderr, "%s: embed err %.2g, unembed err %.2g, %lld params\n", dir, e0, el, got);
  }
  free(E), free(W), free(bU), free(pos), free(lnw), free(lnb), free(h0), free(hL), free(logits);
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
      {"mistral", "f32", 2, 32, 4, 2, 0, 64, 0},
      {"gpt_neo", "f32", 3, 32, 4, 0, 64, 100, 1},
      {"gptj", "f16", 2, 32, 4, 0, 0, 70, 0},
      {"opt", "f32", 2, 32, 2, 0, 80, 90, 1},
      {"bloom", "bf16", 2, 32, 4, 0, 0, 60, 1},
      {"gemma", "f32", 2, 32, 2, 1, 48, 64, 1},
      {"qwen2", "f32", 2, 48, 6, 2, 0, 80, 0},
      {"phi3", "bf16", 2, 32, 4, 4, 40, 50, 0},
      {"phi", "f32", 2, 32, 4, 2, 96, 66, 0},
      {"stablelm", "f16", 2, 32, 2, 0, 40, 72, 1},
      {"falcon", "f32", 2, 32, 4, 2, 0, 64, 1},
      {"olmo", "f32", 2, 32, 4, 0, 48, 88, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], tlens, work);
  free(work);
  return tl_test_finish("test_model_synth");
}
