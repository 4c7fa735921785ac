/* The architecture families as data: for each, its config.json fields (read by
 * the loader, written by synth; config.c), a small function that checks them and
 * fills in what the family fixes, and its checkpoint tensor names with how each
 * maps into our layout. The loader and the forward pass are shared: adding a
 * family means adding these tables here. Defaults are transformers 4.40.2's. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

#define BIG TL_CFG_BIG
#define MANY TL_CFG_MANY

/* ---- checks shared by the finish functions ---- */

/* head_dim = d_model / heads, which must divide (the fields named as in the file) */
static int split_heads(tl_model_config *c, const char *p, const char *d_key, const char *h_key) {
  if (c->d_model % c->n_heads)
    return tl_fail("%s: %s %d is not divisible by %s %d", p, d_key, c->d_model, h_key, c->n_heads);
  c->head_dim = c->d_model / c->n_heads;
  return 0;
}

/* key/value heads: absent means one per query head; they must divide the query heads */
static int group_heads(tl_model_config *c, const char *p, const char *h_key, const char *kv_key) {
  if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
  if (c->n_heads % c->n_kv_heads)
    return tl_fail("%s: %s %d is not a multiple of %s %d", p, h_key, c->n_heads, kv_key, c->n_kv_heads);
  return 0;
}

/* A flag the forward pass does not implement: one line naming the field. */
static int unsupported(int set, const char *p, const char *key, const char *value) {
  return set ? tl_fail("%s: field '%s' = %s is not supported", p, key, value) : 0;
}

/* int(head_dim * factor) in double, as Python computes the partial rotary width */
static int partial_rotary(const tl_model_config *c, double factor) { return (int)((double)c->head_dim * factor); }

/* The Llama layout: RMSNorm, SwiGLU, rotary over whole heads, grouped K/V heads,
 * head_dim given or hidden_size / heads. Gemma, Qwen2, Phi-3 and OLMo start from it. */
static int llama_like(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->head_dim == 0) TL_TRY(split_heads(c, p, "hidden_size", "num_attention_heads"));
  TL_TRY(group_heads(c, p, "num_attention_heads", "num_key_value_heads"));
  if (c->head_dim % 2) return tl_fail("%s: head_dim %d must be even for rotary embeddings", p, c->head_dim);
  c->rot_dim = c->head_dim;
  c->norm = TL_NORM_RMSNORM;
  c->gated_mlp = 1;
  c->qkv_bias = c->out_bias = v->attention_bias;
  return 0;
}

/* Rows that most configs name alike (same names, ranges and synth rules). */
#define ROWS_SIZES                                                           \
  {"hidden_size", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},      \
  {"num_hidden_layers", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0}, \
  {"num_attention_heads", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0}
/* absent: one key/value head per query head */
#define ROW_KV_HEADS {"num_key_value_heads", V_INT, CFG(n_kv_heads), DERIVED, 0, 1, MANY, W_VALUE, 0}
#define ROWS_MLP_VOCAB_POSITIONS                                               \
  {"intermediate_size", V_INT, CFG(d_ff), REQUIRED, 0, 1, BIG, W_VALUE, 0},     \
  {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},           \
  {"max_position_embeddings", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0}
/* rope_scaling: linear, dynamic or llama3 (others, such as su or yarn, are refused) */
#define ROWS_ROPE                                                                    \
  {"rope_theta", V_FLOAT, CFG(rope_theta), OPTIONAL, 10000.0, 1e-6, 1e30, W_DEFAULT, 0}, \
  {"rope_scaling", V_ROPE_SCALING, 0, OPTIONAL, 0, 0, 0, W_DEFAULT, 0}

/* ---- gpt2 ---- */

static const cfg_field gpt2_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"n_embd", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_layer", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_head", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_inner", V_INT, CFG(d_ff), DERIVED, 0, 1, BIG, W_VALUE, 0}, /* absent: 4 * n_embd */
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_positions", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"layer_norm_epsilon", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"activation_function", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU_NEW, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {"scale_attn_by_inverse_layer_idx", V_BOOL, CFG(scale_attn_by_layer), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"scale_attn_weights", V_BOOL, EXTRA(scale_attn_weights), OPTIONAL, 1, 0, 0, W_NO, 0},
    {NULL}};

static int gpt2_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->d_ff == 0) c->d_ff = (int)(4L * c->d_model);
  if (!v->scale_attn_weights)
    return tl_fail("%s: field 'scale_attn_weights' = false is not supported (expected true)", p);
  TL_TRY(split_heads(c, p, "n_embd", "n_head"));
  c->n_kv_heads = c->n_heads;
  c->norm = TL_NORM_LAYERNORM;
  c->learned_pos = 1;
  c->qkv_bias = c->out_bias = c->mlp_bias = 1;
  return 0;
}

static const cfg_schema gpt2_schema = {"GPT2LMHeadModel", gpt2_fields, gpt2_finish};

/* shared by gpt_neo and gptj (positions only where learned, the bias only for gptj) */
static const tl_name_entry gpt2_globals[] = {
    {"transformer.wte.weight", R_EMBED, XF_COPY},     {"transformer.wpe.weight", R_POS, XF_COPY},
    {"transformer.ln_f.weight", R_FINAL_W, XF_COPY},  {"transformer.ln_f.bias", R_FINAL_B, XF_COPY},
    {"lm_head.weight", R_LM_W, XF_COPY},              {"lm_head.bias", R_LM_B, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry gpt2_layer[] = {
    {"ln_1.weight", R_LN1_W, XF_COPY},
    {"ln_1.bias", R_LN1_B, XF_COPY},
    {"attn.c_attn.weight", R_QKV_W, XF_TRANSPOSE},
    {"attn.c_attn.bias", R_QKV_B, XF_COPY},
    {"attn.c_proj.weight", R_O_W, XF_TRANSPOSE},
    {"attn.c_proj.bias", R_O_B, XF_COPY},
    {"ln_2.weight", R_LN2_W, XF_COPY},
    {"ln_2.bias", R_LN2_B, XF_COPY},
    {"mlp.c_fc.weight", R_UP_W, XF_TRANSPOSE},
    {"mlp.c_fc.bias", R_UP_B, XF_COPY},
    {"mlp.c_proj.weight", R_DOWN_W, XF_TRANSPOSE},
    {"mlp.c_proj.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const gpt2_ignored[] = {".attn.bias", ".attn.masked_bias", NULL};

/* ---- gpt_neox ---- */

static const cfg_field neox_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES,
    ROWS_MLP_VOCAB_POSITIONS,
    {"layer_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU, 0, 0, W_DEFAULT, 0},
    {"rotary_pct", V_DOUBLE, EXTRA(rotary_pct), OPTIONAL, 0.25, 0, 1, W_DEFAULT, 0},
    {"rotary_emb_base", V_FLOAT, CFG(rope_theta), OPTIONAL, 10000.0, 1e-6, 1e30, W_DEFAULT, 0},
    {"rope_theta", V_FLOAT, CFG(rope_theta), ALIAS, 0, 1e-6, 1e30, W_NO, 0}, /* newer configs' name */
    {"rope_scaling", V_ROPE_SCALING, 0, OPTIONAL, 0, 0, 0, W_NO, 0},
    {"use_parallel_residual", V_BOOL, CFG(parallel_residual), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {"attention_bias", V_BOOL, EXTRA(attention_bias), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    {NULL}};

static int neox_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(split_heads(c, p, "hidden_size", "num_attention_heads"));
  c->n_kv_heads = c->n_heads;
  c->rot_dim = partial_rotary(c, v->rotary_pct); /* HF: rotary_ndims = int(head_size * rotary_pct) */
  c->norm = TL_NORM_LAYERNORM;
  c->qkv_bias = c->out_bias = v->attention_bias;
  c->mlp_bias = 1;
  return 0;
}

static const cfg_schema neox_schema = {"GPTNeoXForCausalLM", neox_fields, neox_finish};

static const tl_name_entry neox_globals[] = {
    {"gpt_neox.embed_in.weight", R_EMBED, XF_COPY},
    {"gpt_neox.final_layer_norm.weight", R_FINAL_W, XF_COPY},
    {"gpt_neox.final_layer_norm.bias", R_FINAL_B, XF_COPY},
    {"embed_out.weight", R_LM_W, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry neox_layer[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"input_layernorm.bias", R_LN1_B, XF_COPY},
    {"post_attention_layernorm.weight", R_LN2_W, XF_COPY},
    {"post_attention_layernorm.bias", R_LN2_B, XF_COPY},
    {"attention.query_key_value.weight", R_QKV_W, XF_GROUPED_QKV},
    {"attention.query_key_value.bias", R_QKV_B, XF_GROUPED_QKV},
    {"attention.dense.weight", R_O_W, XF_COPY},
    {"attention.dense.bias", R_O_B, XF_COPY},
    {"mlp.dense_h_to_4h.weight", R_UP_W, XF_COPY},
    {"mlp.dense_h_to_4h.bias", R_UP_B, XF_COPY},
    {"mlp.dense_4h_to_h.weight", R_DOWN_W, XF_COPY},
    {"mlp.dense_4h_to_h.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const neox_ignored[] = {".attention.bias", ".attention.masked_bias",
                                           ".attention.rotary_emb.inv_freq", NULL};

/* ---- llama / mistral ---- */

static const cfg_field llama_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES,
    {"num_key_value_heads", V_INT, CFG(n_kv_heads), DERIVED, 0, 1, MANY, W_VALUE, 0}, /* absent: the heads */
    {"head_dim", V_INT, CFG(head_dim), DERIVED, 0, 2, BIG, W_NO, 0}, /* absent: hidden_size / heads */
    ROWS_MLP_VOCAB_POSITIONS,
    /* HF's LlamaConfig default is 1e-6; synth writes Llama 2's 1e-5 */
    {"rms_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-6, 0, 1, W_SYNTH, 1e-5},
    ROWS_ROPE,
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_SILU, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {"attention_bias", V_BOOL, EXTRA(attention_bias), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"mlp_bias", V_BOOL, CFG(mlp_bias), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"sliding_window", V_INT, CFG(window), OPTIONAL, 0, 0, BIG, W_NO, 0}, /* 0: none */
    {NULL}};

static const cfg_schema llama_schema = {"LlamaForCausalLM", llama_fields, llama_like};
static const cfg_schema mistral_schema = {"MistralForCausalLM", llama_fields, llama_like};

/* Separate q, k and v projections named as Llama names them (OPT and phi too). */
static const tl_name_entry self_attn_qkv[] = {
    {"self_attn.q_proj.weight", R_Q_W, XF_COPY}, {"self_attn.q_proj.bias", R_Q_B, XF_COPY},
    {"self_attn.k_proj.weight", R_K_W, XF_COPY}, {"self_attn.k_proj.bias", R_K_B, XF_COPY},
    {"self_attn.v_proj.weight", R_V_W, XF_COPY}, {"self_attn.v_proj.bias", R_V_B, XF_COPY},
    {NULL, 0, 0}};

/* Llama's names, shared by mistral, gemma, qwen2, phi3 (globals), stablelm and olmo:
 * each config has only some of these tensors (norm biases only under LayerNorm, no
 * norms at all for olmo, biases as the config says), and only those are required. */
static const tl_name_entry llama_globals[] = {
    {"model.embed_tokens.weight", R_EMBED, XF_COPY},
    {"model.norm.weight", R_FINAL_W, XF_COPY},
    {"model.norm.bias", R_FINAL_B, XF_COPY},
    {"lm_head.weight", R_LM_W, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry llama_layer[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"input_layernorm.bias", R_LN1_B, XF_COPY},
    {"post_attention_layernorm.weight", R_LN2_W, XF_COPY},
    {"post_attention_layernorm.bias", R_LN2_B, XF_COPY},
    {"self_attn.o_proj.weight", R_O_W, XF_COPY},
    {"self_attn.o_proj.bias", R_O_B, XF_COPY},
    {"mlp.gate_proj.weight", R_GATE_W, XF_COPY},
    {"mlp.gate_proj.bias", R_GATE_B, XF_COPY},
    {"mlp.up_proj.weight", R_UP_W, XF_COPY},
    {"mlp.up_proj.bias", R_UP_B, XF_COPY},
    {"mlp.down_proj.weight", R_DOWN_W, XF_COPY},
    {"mlp.down_proj.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const llama_ignored[] = {".self_attn.rotary_emb.inv_freq", NULL};

/* ---- gpt_neo: GPT-2's block with separate q/k/v, unscaled scores, local attention on some layers ---- */

static const cfg_field neo_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"hidden_size", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"num_layers", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"num_heads", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"intermediate_size", V_INT, CFG(d_ff), DERIVED, 0, 1, BIG, W_VALUE, 0}, /* absent: 4 * hidden_size */
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"max_position_embeddings", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"layer_norm_epsilon", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"activation_function", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU_NEW, 0, 0, W_DEFAULT, 0},
    {"window_size", V_INT, CFG(window), OPTIONAL, 256, 1, BIG, W_DEFAULT, 0},
    /* the layers' kinds; HF recomputes attention_layers from it (that field is not read) */
    {"attention_types", V_ATTN_TYPES, 0, OPTIONAL, 0, 0, 0, W_SYNTH, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {NULL}};

static int neo_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->d_ff == 0) c->d_ff = (int)(4L * c->d_model);
  TL_TRY(split_heads(c, p, "hidden_size", "num_heads"));
  if (v->n_attn_types < 0) tl_cfg_alternate_local(c);
  else if (v->n_attn_types != c->n_layers)
    return tl_fail("%s: field 'attention_types' describes %d layers but num_layers is %d", p, v->n_attn_types,
                   c->n_layers);
  c->n_kv_heads = c->n_heads;
  c->norm = TL_NORM_LAYERNORM;
  c->learned_pos = 1;
  c->attn_scale = 1.0f; /* GPT-Neo does not scale its attention scores */
  c->window_per_layer = 1;
  c->out_bias = c->mlp_bias = 1;
  return 0;
}

static const cfg_schema neo_schema = {"GPTNeoForCausalLM", neo_fields, neo_finish};

static const tl_name_entry neo_layer[] = {
    {"ln_1.weight", R_LN1_W, XF_COPY},
    {"ln_1.bias", R_LN1_B, XF_COPY},
    {"attn.attention.q_proj.weight", R_Q_W, XF_COPY},
    {"attn.attention.k_proj.weight", R_K_W, XF_COPY},
    {"attn.attention.v_proj.weight", R_V_W, XF_COPY},
    {"attn.attention.out_proj.weight", R_O_W, XF_COPY},
    {"attn.attention.out_proj.bias", R_O_B, XF_COPY},
    {"ln_2.weight", R_LN2_W, XF_COPY},
    {"ln_2.bias", R_LN2_B, XF_COPY},
    {"mlp.c_fc.weight", R_UP_W, XF_COPY},
    {"mlp.c_fc.bias", R_UP_B, XF_COPY},
    {"mlp.c_proj.weight", R_DOWN_W, XF_COPY},
    {"mlp.c_proj.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const neo_ignored[] = {".attn.attention.bias", ".attn.attention.masked_bias", NULL};

/* ---- gptj: parallel block with one norm, interleaved rotary on rotary_dim dims, lm_head bias ---- */

static const cfg_field gptj_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"n_embd", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_layer", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_head", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_inner", V_INT, CFG(d_ff), DERIVED, 0, 1, BIG, W_VALUE, 0}, /* absent: 4 * n_embd */
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_positions", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"rotary_dim", V_INT, CFG(rot_dim), OPTIONAL, 64, 0, BIG, W_VALUE, 0},
    {"layer_norm_epsilon", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"activation_function", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU_NEW, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {NULL}};

static int gptj_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  if (c->d_ff == 0) c->d_ff = (int)(4L * c->d_model);
  TL_TRY(split_heads(c, p, "n_embd", "n_head"));
  c->n_kv_heads = c->n_heads;
  c->rope_interleaved = 1;
  c->norm = TL_NORM_LAYERNORM;
  c->parallel_residual = c->shared_norm = 1;
  c->mlp_bias = c->lm_bias = 1;
  return 0;
}

static const cfg_schema gptj_schema = {"GPTJForCausalLM", gptj_fields, gptj_finish};

static const tl_name_entry gptj_layer[] = {
    {"ln_1.weight", R_LN1_W, XF_COPY},
    {"ln_1.bias", R_LN1_B, XF_COPY},
    {"attn.q_proj.weight", R_Q_W, XF_ROPE_PAIRS},
    {"attn.k_proj.weight", R_K_W, XF_ROPE_PAIRS},
    {"attn.v_proj.weight", R_V_W, XF_COPY},
    {"attn.out_proj.weight", R_O_W, XF_COPY},
    {"mlp.fc_in.weight", R_UP_W, XF_COPY},
    {"mlp.fc_in.bias", R_UP_B, XF_COPY},
    {"mlp.fc_out.weight", R_DOWN_W, XF_COPY},
    {"mlp.fc_out.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const gptj_ignored[] = {".attn.bias", ".attn.masked_bias", NULL};

/* ---- opt: learned positions at offset 2, pre- or post-norm, ReLU, optional projections ---- */

static const cfg_field opt_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES,
    {"ffn_dim", V_INT, CFG(d_ff), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"max_position_embeddings", V_INT, CFG(max_pos), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"word_embed_proj_dim", V_INT, CFG(embed_dim), DERIVED, 0, 1, BIG, W_NO, 0}, /* absent: hidden_size */
    {"do_layer_norm_before", V_BOOL, EXTRA(layer_norm_before), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    {"_remove_final_layer_norm", V_BOOL, EXTRA(remove_final_norm), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"layer_norm_elementwise_affine", V_BOOL, EXTRA(norm_affine), OPTIONAL, 1, 0, 0, W_NO, 0},
    {"enable_bias", V_BOOL, EXTRA(enable_bias), OPTIONAL, 1, 0, 0, W_NO, 0},
    {"activation_function", V_ACT, CFG(act), OPTIONAL, TL_ACT_RELU, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {NULL}};

static int opt_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(split_heads(c, p, "hidden_size", "num_attention_heads"));
  c->n_kv_heads = c->n_heads;
  c->norm = TL_NORM_LAYERNORM;
  c->norm_eps = 1e-5f; /* nn.LayerNorm's default: OPT's config has no eps */
  c->norm_affine = v->norm_affine;
  c->learned_pos = 1;
  c->pos_offset = 2; /* OPTLearnedPositionalEmbedding: row t + 2 */
  c->post_norm = !v->layer_norm_before;
  c->final_norm = v->layer_norm_before && !v->remove_final_norm;
  c->qkv_bias = c->out_bias = c->mlp_bias = v->enable_bias;
  return 0;
}

static const cfg_schema opt_schema = {"OPTForCausalLM", opt_fields, opt_finish};

static const tl_name_entry opt_globals[] = {
    {"model.decoder.embed_tokens.weight", R_EMBED, XF_COPY},
    {"model.decoder.embed_positions.weight", R_POS, XF_COPY},
    {"model.decoder.project_in.weight", R_PROJ_IN, XF_COPY},
    {"model.decoder.project_out.weight", R_PROJ_OUT, XF_COPY},
    {"model.decoder.final_layer_norm.weight", R_FINAL_W, XF_COPY},
    {"model.decoder.final_layer_norm.bias", R_FINAL_B, XF_COPY},
    {"lm_head.weight", R_LM_W, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry opt_layer[] = {
    {"self_attn_layer_norm.weight", R_LN1_W, XF_COPY},
    {"self_attn_layer_norm.bias", R_LN1_B, XF_COPY},
    {"self_attn.out_proj.weight", R_O_W, XF_COPY},
    {"self_attn.out_proj.bias", R_O_B, XF_COPY},
    {"final_layer_norm.weight", R_LN2_W, XF_COPY},
    {"final_layer_norm.bias", R_LN2_B, XF_COPY},
    {"fc1.weight", R_UP_W, XF_COPY},
    {"fc1.bias", R_UP_B, XF_COPY},
    {"fc2.weight", R_DOWN_W, XF_COPY},
    {"fc2.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const char *const no_ignored[] = {NULL};

/* ---- bloom: ALiBi, a LayerNorm on the embeddings, fused QKV per head ---- */

static const cfg_field bloom_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"hidden_size", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_embed", V_INT, CFG(d_model), ALIAS, 0, 1, BIG, W_NO, 0}, /* older configs' name */
    {"n_layer", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"n_head", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"layer_norm_epsilon", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"apply_residual_connection_post_layernorm", V_BOOL, EXTRA(residual_post_ln), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {NULL}};

static int bloom_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(unsupported(v->residual_post_ln, p, "apply_residual_connection_post_layernorm", "true"));
  TL_TRY(split_heads(c, p, "hidden_size", "n_head"));
  c->n_kv_heads = c->n_heads;
  c->d_ff = (int)(4L * c->d_model);
  c->act = TL_ACT_GELU_NEW; /* BloomGelu: the tanh approximation */
  c->norm = TL_NORM_LAYERNORM;
  c->embed_norm = 1;
  c->alibi = 1;
  c->qkv_bias = c->out_bias = c->mlp_bias = 1;
  return 0;
}

static const cfg_schema bloom_schema = {"BloomForCausalLM", bloom_fields, bloom_finish};

/* shared by falcon (which has no embedding norm) */
static const tl_name_entry bloom_globals[] = {
    {"transformer.word_embeddings.weight", R_EMBED, XF_COPY},
    {"transformer.word_embeddings_layernorm.weight", R_EMBED_NORM_W, XF_COPY},
    {"transformer.word_embeddings_layernorm.bias", R_EMBED_NORM_B, XF_COPY},
    {"transformer.ln_f.weight", R_FINAL_W, XF_COPY},
    {"transformer.ln_f.bias", R_FINAL_B, XF_COPY},
    {"lm_head.weight", R_LM_W, XF_COPY},
    {NULL, 0, 0}};
/* shared by falcon: the layer names beside the norms, then the norms: BLOOM's are
 * the old Falcon decoder's */
static const tl_name_entry bloom_layer[] = {
    /* [group][queries, k, v]: BLOOM has one head per group; Falcon's multi-query one group */
    {"self_attention.query_key_value.weight", R_QKV_W, XF_GROUPED_QKV},
    {"self_attention.query_key_value.bias", R_QKV_B, XF_GROUPED_QKV},
    {"self_attention.dense.weight", R_O_W, XF_COPY},
    {"self_attention.dense.bias", R_O_B, XF_COPY},
    {"mlp.dense_h_to_4h.weight", R_UP_W, XF_COPY},
    {"mlp.dense_h_to_4h.bias", R_UP_B, XF_COPY},
    {"mlp.dense_4h_to_h.weight", R_DOWN_W, XF_COPY},
    {"mlp.dense_4h_to_h.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};
static const tl_name_entry bloom_norms[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"input_layernorm.bias", R_LN1_B, XF_COPY},
    {"post_attention_layernorm.weight", R_LN2_W, XF_COPY}, /* not in Falcon's parallel blocks */
    {"post_attention_layernorm.bias", R_LN2_B, XF_COPY},
    {NULL, 0, 0}};

/* ---- gemma: Llama with RMSNorm (1 + w), embeddings scaled by sqrt(d), GeGLU, explicit head_dim ---- */

static const cfg_field gemma_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES,
    {"num_key_value_heads", V_INT, CFG(n_kv_heads), OPTIONAL, 16, 1, MANY, W_VALUE, 0},
    {"head_dim", V_INT, CFG(head_dim), OPTIONAL, 256, 2, BIG, W_VALUE, 0},
    ROWS_MLP_VOCAB_POSITIONS,
    {"rms_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-6, 0, 1, W_DEFAULT, 0},
    ROWS_ROPE,
    /* transformers 4.40.2 ignores hidden_act: hidden_activation, or else the tanh GELU */
    {"hidden_activation", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU_NEW, 0, 0, W_DEFAULT, 0},
    {"attention_bias", V_BOOL, EXTRA(attention_bias), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {NULL}};

static int gemma_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(llama_like(v, p));
  c->norm_add_one = 1;
  c->embed_scale = (float)sqrt((double)c->d_model); /* HF: hidden_size ** 0.5 in the embeddings' dtype */
  return 0;
}

static const cfg_schema gemma_schema = {"GemmaForCausalLM", gemma_fields, gemma_finish};

/* ---- qwen2: Llama with q/k/v biases ---- */

static const cfg_field qwen2_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES, ROW_KV_HEADS, ROWS_MLP_VOCAB_POSITIONS,
    {"rms_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-6, 0, 1, W_DEFAULT, 0},
    ROWS_ROPE,
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_SILU, 0, 0, W_DEFAULT, 0},
    /* sliding_window only counts when this is true */
    {"use_sliding_window", V_BOOL, EXTRA(use_sliding_window), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {NULL}};

static int qwen2_finish(cfg_values *v, const char *p) {
  TL_TRY(unsupported(v->use_sliding_window, p, "use_sliding_window", "true"));
  TL_TRY(llama_like(v, p));
  v->cfg.qkv_bias = 1;
  return 0;
}

static const cfg_schema qwen2_schema = {"Qwen2ForCausalLM", qwen2_fields, qwen2_finish};

/* ---- phi3: Llama with fused qkv_proj and gate_up_proj ---- */

static const cfg_field phi3_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES, ROW_KV_HEADS, ROWS_MLP_VOCAB_POSITIONS,
    {"rms_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    ROWS_ROPE, /* su / longrope: not supported */
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_SILU, 0, 0, W_DEFAULT, 0},
    {"attention_bias", V_BOOL, EXTRA(attention_bias), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"sliding_window", V_INT, CFG(window), OPTIONAL, 0, 0, BIG, W_NO, 0}, /* as mistral's; 0: none */
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {NULL}};

static const cfg_schema phi3_schema = {"Phi3ForCausalLM", phi3_fields, llama_like};

static const tl_name_entry phi3_layer[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"post_attention_layernorm.weight", R_LN2_W, XF_COPY},
    {"self_attn.qkv_proj.weight", R_QKV_W, XF_COPY}, /* rows [q; k; v]: our layout */
    {"self_attn.qkv_proj.bias", R_QKV_B, XF_COPY},
    {"self_attn.o_proj.weight", R_O_W, XF_COPY},
    {"self_attn.o_proj.bias", R_O_B, XF_COPY},
    {"mlp.gate_up_proj.weight", R_GATE_UP_W, XF_COPY}, /* rows [gate; up]: our layout */
    {"mlp.down_proj.weight", R_DOWN_W, XF_COPY},
    {NULL, 0, 0}};

/* ---- phi: parallel block with one LayerNorm, partial rotary, biases everywhere ---- */

static const cfg_field phi_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES, ROW_KV_HEADS, ROWS_MLP_VOCAB_POSITIONS,
    {"layer_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU_NEW, 0, 0, W_DEFAULT, 0},
    {"partial_rotary_factor", V_DOUBLE, EXTRA(rotary_pct), OPTIONAL, 0.5, 0, 1, W_DEFAULT, 0},
    ROWS_ROPE,
    {"qk_layernorm", V_BOOL, EXTRA(qk_layernorm), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {NULL}};

/* What phi and stablelm share: LayerNorm, rotary on partial_rotary_factor of each
 * head, grouped K/V heads, and no per-head norms of q and k. */
static int partial_rotary_layernorm(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(unsupported(v->qk_layernorm, p, "qk_layernorm", "true"));
  TL_TRY(split_heads(c, p, "hidden_size", "num_attention_heads"));
  TL_TRY(group_heads(c, p, "num_attention_heads", "num_key_value_heads"));
  c->rot_dim = partial_rotary(c, v->rotary_pct);
  c->norm = TL_NORM_LAYERNORM;
  return 0;
}

static int phi_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(partial_rotary_layernorm(v, p));
  c->parallel_residual = c->shared_norm = 1;
  c->qkv_bias = c->out_bias = c->mlp_bias = c->lm_bias = 1;
  return 0;
}

static const cfg_schema phi_schema = {"PhiForCausalLM", phi_fields, phi_finish};

static const tl_name_entry phi_globals[] = {
    {"model.embed_tokens.weight", R_EMBED, XF_COPY},  {"model.final_layernorm.weight", R_FINAL_W, XF_COPY},
    {"model.final_layernorm.bias", R_FINAL_B, XF_COPY}, {"lm_head.weight", R_LM_W, XF_COPY},
    {"lm_head.bias", R_LM_B, XF_COPY},                {NULL, 0, 0}};
static const tl_name_entry phi_layer[] = {
    {"input_layernorm.weight", R_LN1_W, XF_COPY},
    {"input_layernorm.bias", R_LN1_B, XF_COPY},
    {"self_attn.dense.weight", R_O_W, XF_COPY},
    {"self_attn.dense.bias", R_O_B, XF_COPY},
    {"mlp.fc1.weight", R_UP_W, XF_COPY},
    {"mlp.fc1.bias", R_UP_B, XF_COPY},
    {"mlp.fc2.weight", R_DOWN_W, XF_COPY},
    {"mlp.fc2.bias", R_DOWN_B, XF_COPY},
    {NULL, 0, 0}};

/* ---- stablelm: Llama's names with LayerNorm, partial rotary, optional q/k/v biases ---- */

static const cfg_field stablelm_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES, ROW_KV_HEADS, ROWS_MLP_VOCAB_POSITIONS,
    {"layer_norm_eps", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_SILU, 0, 0, W_DEFAULT, 0},
    {"partial_rotary_factor", V_DOUBLE, EXTRA(rotary_pct), OPTIONAL, 0.25, 0, 1, W_DEFAULT, 0},
    ROWS_ROPE,
    {"use_qkv_bias", V_BOOL, CFG(qkv_bias), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"qk_layernorm", V_BOOL, EXTRA(qk_layernorm), OPTIONAL, 0, 0, 0, W_NO, 0},
    {"use_parallel_residual", V_BOOL, CFG(parallel_residual), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {NULL}};

static int stablelm_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(partial_rotary_layernorm(v, p));
  c->gated_mlp = 1;
  c->shared_norm = c->parallel_residual; /* the parallel block reuses input_layernorm */
  return 0;
}

static const cfg_schema stablelm_schema = {"StableLmForCausalLM", stablelm_fields, stablelm_finish};

/* ---- falcon: the old decoder (multi-query, one norm, parallel) and the new (grouped K/V, two norms) ---- */

static const cfg_field falcon_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    {"hidden_size", V_INT, CFG(d_model), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"n_embed", V_INT, CFG(d_model), ALIAS, 0, 1, BIG, W_NO, 0}, /* older configs' name */
    {"num_hidden_layers", V_INT, CFG(n_layers), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"num_attention_heads", V_INT, CFG(n_heads), REQUIRED, 0, 1, MANY, W_VALUE, 0},
    {"num_kv_heads", V_INT, CFG(n_kv_heads), DERIVED, 0, 1, MANY, W_VALUE, 0}, /* new decoder; absent: the heads */
    {"ffn_hidden_size", V_INT, CFG(d_ff), DERIVED, 0, 1, BIG, W_VALUE, 0},     /* absent: 4 * hidden_size */
    {"vocab_size", V_INT, CFG(vocab), REQUIRED, 0, 1, BIG, W_VALUE, 0},
    {"max_position_embeddings", V_INT, CFG(max_pos), OPTIONAL, 2048, 1, BIG, W_VALUE, 0},
    {"layer_norm_epsilon", V_FLOAT, CFG(norm_eps), OPTIONAL, 1e-5, 0, 1, W_DEFAULT, 0},
    {"activation", V_ACT, CFG(act), OPTIONAL, TL_ACT_GELU, 0, 0, W_DEFAULT, 0},
    ROWS_ROPE,
    {"alibi", V_BOOL, EXTRA(falcon_alibi), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"bias", V_BOOL, EXTRA(falcon_bias), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"multi_query", V_BOOL, EXTRA(multi_query), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    /* synth writes the new decoder: the one that takes --kv_heads */
    {"new_decoder_architecture", V_BOOL, EXTRA(new_decoder), OPTIONAL, 0, 0, 0, W_SYNTH, 1},
    {"parallel_attn", V_BOOL, EXTRA(parallel_attn), OPTIONAL, 1, 0, 0, W_DEFAULT, 0},
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 1, 0, 0, W_VALUE, 0},
    {NULL}};

static int falcon_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(unsupported(v->falcon_alibi, p, "alibi", "true"));
  TL_TRY(split_heads(c, p, "hidden_size", "num_attention_heads"));
  if (c->d_ff == 0) c->d_ff = (int)(4L * c->d_model);
  if (v->new_decoder) { /* ln_attn and ln_mlp, attention and MLP in parallel */
    c->variant = 1;
    c->parallel_residual = 1;
  } else { /* input_layernorm (and post_attention_layernorm when serial) */
    c->n_kv_heads = v->multi_query ? 1 : c->n_heads;
    c->parallel_residual = c->shared_norm = v->parallel_attn;
  }
  TL_TRY(group_heads(c, p, "num_attention_heads", "num_kv_heads"));
  c->rot_dim = c->head_dim;
  c->norm = TL_NORM_LAYERNORM;
  c->qkv_bias = c->out_bias = c->mlp_bias = v->falcon_bias;
  return 0;
}

static const cfg_schema falcon_schema = {"FalconForCausalLM", falcon_fields, falcon_finish};

/* the new decoder's norms (the old one has BLOOM's) */
static const tl_name_entry falcon_new_norms[] = {
    {"ln_attn.weight", R_LN1_W, XF_COPY},
    {"ln_attn.bias", R_LN1_B, XF_COPY},
    {"ln_mlp.weight", R_LN2_W, XF_COPY},
    {"ln_mlp.bias", R_LN2_B, XF_COPY},
    {NULL, 0, 0}};

/* ---- olmo: Llama with LayerNorms that have no parameters ---- */

static const cfg_field olmo_fields[] = {
    /* key, type, destination, presence, default, range [lo, hi], what synth writes (W_SYNTH: the value) */
    ROWS_SIZES, ROW_KV_HEADS, ROWS_MLP_VOCAB_POSITIONS,
    ROWS_ROPE,
    {"hidden_act", V_ACT, CFG(act), OPTIONAL, TL_ACT_SILU, 0, 0, W_DEFAULT, 0},
    {"attention_bias", V_BOOL, EXTRA(attention_bias), OPTIONAL, 0, 0, 0, W_DEFAULT, 0},
    {"clip_qkv", V_NULL, 0, OPTIONAL, 0, 0, 0, W_NO, 0}, /* clamping q, k, v: not supported */
    {"tie_word_embeddings", V_BOOL, CFG(tied), OPTIONAL, 0, 0, 0, W_VALUE, 0},
    {NULL}};

static int olmo_finish(cfg_values *v, const char *p) {
  tl_model_config *c = &v->cfg;
  TL_TRY(llama_like(v, p));
  c->norm = TL_NORM_LAYERNORM;
  c->norm_affine = 0;
  c->norm_eps = 1e-5f; /* OlmoLayerNorm's fixed eps */
  return 0;
}

static const cfg_schema olmo_schema = {"OlmoForCausalLM", olmo_fields, olmo_finish};

/* ---- the table ---- */

static const tl_family families[] = {
    /* model_type, config.json fields, base-model prefix, layer prefix,
     *   global names, layer names, separate q/k/v names, names of variant 0 / 1, ignored */
    {"gpt2", &gpt2_schema, "transformer.", "transformer.h.%d.",
     gpt2_globals, gpt2_layer, NULL, {NULL, NULL}, gpt2_ignored},
    {"gpt_neox", &neox_schema, "gpt_neox.", "gpt_neox.layers.%d.",
     neox_globals, neox_layer, NULL, {NULL, NULL}, neox_ignored},
    {"llama", &llama_schema, "model.", "model.layers.%d.",
     llama_globals, llama_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
    {"mistral", &mistral_schema, "model.", "model.layers.%d.",
     llama_globals, llama_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
    {"gpt_neo", &neo_schema, "transformer.", "transformer.h.%d.",
     gpt2_globals, neo_layer, NULL, {NULL, NULL}, neo_ignored},
    {"gptj", &gptj_schema, "transformer.", "transformer.h.%d.",
     gpt2_globals, gptj_layer, NULL, {NULL, NULL}, gptj_ignored},
    {"opt", &opt_schema, "model.", "model.decoder.layers.%d.",
     opt_globals, opt_layer, self_attn_qkv, {NULL, NULL}, no_ignored},
    {"bloom", &bloom_schema, "transformer.", "transformer.h.%d.",
     bloom_globals, bloom_layer, NULL, {bloom_norms, NULL}, no_ignored},
    {"gemma", &gemma_schema, "model.", "model.layers.%d.",
     llama_globals, llama_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
    {"qwen2", &qwen2_schema, "model.", "model.layers.%d.",
     llama_globals, llama_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
    {"phi3", &phi3_schema, "model.", "model.layers.%d.",
     llama_globals, phi3_layer, NULL, {NULL, NULL}, llama_ignored},
    {"phi", &phi_schema, "model.", "model.layers.%d.",
     phi_globals, phi_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
    {"stablelm", &stablelm_schema, "model.", "model.layers.%d.",
     llama_globals, llama_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
    {"falcon", &falcon_schema, "transformer.", "transformer.h.%d.",
     bloom_globals, bloom_layer, NULL, {bloom_norms, falcon_new_norms}, no_ignored},
    {"olmo", &olmo_schema, "model.", "model.layers.%d.",
     llama_globals, llama_layer, self_attn_qkv, {NULL, NULL}, llama_ignored},
};
#define NFAMILIES (int)(sizeof(families) / sizeof(families[0]))

const char *tl_model_supported_types(void) {
  static char list[512];
  if (!list[0]) {
    size_t at = 0;
    for (int i = 0; i < NFAMILIES; i++)
      at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", families[i].model_type);
  }
  return list;
}

const tl_family *tl_family_find(const char *model_type) {
  for (int i = 0; i < NFAMILIES; i++)
    if (!strcmp(families[i].model_type, model_type)) return &families[i];
  return NULL;
}

const char *tl_family_global_name(const tl_family *f, tl_role role) {
  for (const tl_name_entry *e = f->globals; e->name; e++)
    if (e->role == role) return e->name;
  return NULL;
}

const tl_family *tl_family_find_architecture(const char *architecture) {
  for (int i = 0; i < NFAMILIES; i++)
    if (!strcmp(families[i].schema->architecture, architecture)) return &families[i];
  return NULL;
}
