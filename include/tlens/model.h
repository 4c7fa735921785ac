/* Hugging Face causal LMs (gpt2, gpt_neox, llama, mistral, gpt_neo, gptj, opt, bloom,
 * gemma, qwen2, phi3, phi, stablelm, falcon, olmo): config, weights (safetensors,
 * single or sharded), and the frozen forward pass.
 * Architectures are data (a family table) plus small per-family functions.
 *
 * Weights are fp32 in memory whatever the storage dtype (F32/F16/BF16 on disk),
 * unless the layers are held in bf16 or fp16 (tl_model_hold_precision), and
 * except an untied input embedding: it stays in the weights file (kept open) and
 * the rows of each forward pass's tokens are read and converted when needed.
 * Layouts are normalised on load so the forward pass has one shape for every
 * family: projections are [out, in] (GPT-2's Conv1D [in, out] is transposed),
 * attention uses one fused QKV projection whose output rows are
 * [q heads | k heads | v heads] (the per-head or per-group interleaving of
 * GPT-NeoX, BLOOM and Falcon is undone; separate q/k/v are concatenated), and a
 * gated MLP stores [gate; up]. GPT-J's interleaved rotary pairs are turned into
 * the rotate-half order by permuting the rows of its q and k projections (the
 * scores q.k do not change when both are permuted alike).
 *
 * Per-layer weights and sharding. Each block's weights live in ONE contiguous
 * fp32 array of tl_model_layer_numel() floats (the layer "blob"; offsets are the
 * same for every layer). The forward pass reads a block's weights only through
 * tl_model_layer_weights(m, layer, ...), which asks the layer hook (if one is set)
 * for the blob first. A sharded (FSDP-style) runner therefore keeps 1/N of each blob
 * per rank, and sets a hook whose fetch all-gathers the full blob into a buffer
 * right before the block runs and whose release frees/reuses it afterwards; the
 * forward code does not change. Embeddings, the final norm and the unembedding
 * are global (not part of any blob).
 *
 * Activation memory is bounded: scratch buffers are allocated once per model for
 * the largest B*T seen and reused; the MLP runs in row chunks so its d_ff-wide
 * intermediate never exceeds TL_MODEL_MLP_CHUNK rows; attention needs only
 * O(head_dim * T) scratch per thread. Hidden states can be streamed to a
 * callback one at a time (tl_model_forward_cb) instead of stored all at once. */
#ifndef TLENS_MODEL_H
#define TLENS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlens/backend.h"
#include "tlens/tensor.h"
#include "tlens/unembed.h"

#define TL_MODEL_MLP_CHUNK 1024

/* config.json rope_scaling: how the rotary frequencies change (transformers' names). */
typedef enum {
  TL_ROPE_DEFAULT = 0, /* none */
  TL_ROPE_LINEAR,      /* positions divided by factor */
  TL_ROPE_DYNAMIC,     /* NTK: beyond max_position_embeddings the base grows with the length */
  TL_ROPE_LLAMA3,      /* Llama 3.1: low frequencies divided by factor, a smooth band between */
} tl_rope_scaling;

/* gpt_neo marks each layer global or local; configs with more layers than this are refused. */
#define TL_MODEL_MAX_LOCAL_LAYERS 1024

typedef struct {
  char model_type[32]; /* config.json's model_type (tl_model_supported_types) */
  int n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_pos;
  float norm_eps;
  tl_dtype dtype; /* storage dtype of the weights on disk */
  int64_t n_params;
  char config_hash[65]; /* sha256 of config.json bytes */
  /* architecture details read from config.json (with HF's defaults) */
  tl_norm_kind norm;  /* every norm of the model: LayerNorm or RMSNorm */
  int norm_add_one;   /* gemma: RMSNorm gains are 1 + weight */
  int norm_affine;    /* norms have weights (and LayerNorm biases); 0: olmo's bare LayerNorm */
  int final_norm;     /* a norm before the unembedding (0: OPT with do_layer_norm_before false) */
  tl_act act;         /* MLP activation */
  int gated_mlp;      /* down(act(gate(x)) * up(x)) */
  int learned_pos;    /* learned absolute positions (then T <= max_pos) */
  int pos_offset;     /* position t reads row t + pos_offset of that table (OPT: 2) */
  int embed_dim;      /* token embedding width (OPT word_embed_proj_dim; d_model for the others) */
  float embed_scale;  /* embeddings are multiplied by this (gemma: sqrt(d_model)); 0 = not scaled */
  int embed_norm;     /* bloom: a LayerNorm right after the embedding */
  int rot_dim;        /* rotary dims per head (0 = no RoPE) */
  int rope_interleaved; /* gptj: rotary pairs (2i, 2i+1) instead of (i, i + rot_dim/2) */
  float rope_theta;   /* rotary base */
  tl_rope_scaling rope_scaling;
  float rope_factor;  /* rope_scaling factor (linear, dynamic, llama3) */
  float rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
  int rope_original_max_pos; /* llama3 original_max_position_embeddings */
  int alibi;          /* bloom: ALiBi position biases instead of positions */
  float attn_scale;   /* attention scores are scaled by this (1/sqrt(head_dim); gpt_neo: 1) */
  int parallel_residual; /* x + attn(ln1(x)) + mlp(ln2(x)) */
  int shared_norm;    /* parallel block with one norm: ln2 = ln1 (gptj, phi, falcon, stablelm) */
  int post_norm;      /* OPT do_layer_norm_before false: x = ln1(x + attn(x)); x = ln2(x + mlp(x)) */
  int tied;           /* output embedding = input embedding */
  int qkv_bias, out_bias, mlp_bias, lm_bias;
  int window;         /* sliding-window attention (mistral, gpt_neo local layers); 0 = none */
  int window_per_layer; /* the window applies only to the layers marked in local_layers (gpt_neo) */
  unsigned char local_layers[TL_MODEL_MAX_LOCAL_LAYERS / 8]; /* bit l: layer l is local */
  int scale_attn_by_layer; /* gpt2 scale_attn_by_inverse_layer_idx */
  int variant;        /* which of the family's tensor name sets applies (falcon: 1 = new decoder) */
} tl_model_config;

typedef struct tl_model tl_model;

/* The tensors of one block, in blob order (fp32, layouts as described above):
 *   ln1_w, ln1_b     [d] norm before attention
 *   ln2_w, ln2_b     [d] norm before the MLP
 *   qkv_w, qkv_b     [(H + 2*KV)*hd, d], [(H + 2*KV)*hd]
 *   o_w, o_b         [d, H*hd], [d]
 *   up_w, up_b       [d_ff, d] or gated [2*d_ff, d] (gate rows first)
 *   down_w, down_b   [d, d_ff], [d]
 * X-macro: X(name) once per tensor, so the pointer struct below and the model's
 * offset table list them once. */
#define TL_LAYER_TENSORS(X) \
  X(ln1_w) X(ln1_b) X(ln2_w) X(ln2_b) X(qkv_w) X(qkv_b) X(o_w) X(o_b) X(up_w) X(up_b) X(down_w) X(down_b)

/* Pointers to one block's weights. Absent tensors (a bias the config does not have,
 * LayerNorm bias under RMSNorm) are NULL. */
typedef struct {
#define TL_LAYER_PTR_(name) const float *name;
  TL_LAYER_TENSORS(TL_LAYER_PTR_)
#undef TL_LAYER_PTR_
} tl_layer_weights;

/* Layer hook: fetch sets *blob to the full blob of `layer` (tl_model_layer_numel
 * floats) to use for this forward step; release is called once the block has run
 * (not after a failed fetch). Both return 0, or -1 after tl_fail: the forward then
 * stops and returns -1 with that message (a failed FSDP all-gather is an error
 * line, never a NULL blob handed to the layer code). */
typedef struct {
  int (*fetch)(void *ctx, tl_model *m, int layer, const float **blob);
  int (*release)(void *ctx, tl_model *m, int layer, const float *blob);
  void *ctx;
} tl_layer_hook;

/* A model named as the reference names it: a local folder (returned as it is), or
 * a hub id ORG/NAME (or NAME) found offline in the Hugging Face cache as
 * huggingface_hub finds it: HF_HUB_CACHE, else HF_HOME/hub, else
 * ~/.cache/huggingface/hub; models--ORG--NAME/refs/<revision> names the commit
 * whose snapshots/<commit>/ is the folder. revision (NULL = "main"): a branch, a
 * tag, a commit or a unique prefix of a cached commit. *dir: malloc'd. Not
 * cached: -1 after one line naming the folder searched and the
 * `huggingface-cli download` command that would fetch it; a snapshot file that
 * links to a blob missing from the cache (a download cut short): -1 naming it. */
int tl_model_resolve(const char *name, const char *revision, char **dir);
/* tl_model_resolve then tl_model_load. */
int tl_model_load_named(tl_model **out, const char *name, const char *revision);

/* Loads config.json and the weights from dir: model.safetensors,
 * model.safetensors.index.json + shards, pytorch_model.bin or
 * pytorch_model.bin.index.json + shards, the first of these that exists (as
 * transformers prefers them). pytorch_model.bin files are read by the restricted
 * unpickler of params.pt (tlens/export.h): a pickle naming any global but the
 * tensor rebuild functions, the storage classes and OrderedDict is refused, naming
 * the file and the global. Every validation failure is one line naming the file
 * and tensor. A folder of several weight files or of 1 GB or more shows its
 * loading (rank 0; tl_progress: a bar on a terminal, plain lines otherwise). */
int tl_model_load(tl_model **out, const char *dir);
/* The same, keeping only slice `index` of `parts` (tl_shard_range) of every layer
 * blob, for FSDP: each layer is converted whole into one scratch blob, its slice
 * kept, the rest dropped, so loading peaks at the global weights + the slices +
 * one layer instead of the whole model. The layer blobs are then NULL; take the
 * slices with tl_model_take_layer_slice and set a hook that gathers them. */
int tl_model_load_sliced(tl_model **out, const char *dir, int parts, int index);
void tl_model_free(tl_model *m);
/* Loading refuses a weight holding NaN or Inf (naming the tensor) unless allowed
 * (--allow_nonfinite); process-wide, default false. */
void tl_model_allow_nonfinite(bool allow);
const tl_model_config *tl_model_cfg(const tl_model *m);

/* The dtype the frozen weights are held in, for every later load (process-wide,
 * like the reference's --precision): TL_F32 (the default), TL_BF16, TL_F16, or
 * TL_MODEL_HOLD_AUTO for the checkpoint's own dtype (bf16 or fp16 checkpoints held
 * as they are, anything else in fp32). Compute stays fp32: a layer held in 16 bits
 * is widened into one fp32 blob just before it runs (the model's layer hook, so
 * tl_model_layer_blob is NULL and tl_model_set_layer_hook replaces the held
 * layers), which halves the memory of the layers. The global weights (embeddings,
 * final norm, unembedding, which the lens reads as fp32) and the slices of a
 * sliced load keep fp32 storage but take the held dtype's values (rounded to
 * nearest even), so the model computes the same whichever way it is held. */
#define TL_MODEL_HOLD_AUTO (-1)
void tl_model_hold_precision(int dtype);
/* "auto", "float32", "bfloat16", "float16" -> *dtype as above; else -1, naming --precision. */
int tl_model_parse_precision(const char *name, int *dtype);
/* The dtype m's layers are held in (TL_F32 unless a 16-bit one was chosen). */
tl_dtype tl_model_held_dtype(const tl_model *m);
/* Whether loading a big folder may draw a bar on a terminal [true]; in a log it prints
 * plain lines either way. */
void tl_model_progress_bar(bool bar);
/* Reads and validates only config.json (no weights); fills everything but dtype/n_params. */
int tl_model_read_config(const char *dir, tl_model_config *cfg);
/* "gpt2, gpt_neox, llama, ...": the model_types the loader knows, in table order */
const char *tl_model_supported_types(void);

/* The final norm + output embedding, for the lens (pointers stay owned by m). */
int tl_model_unembed(tl_model *m, tl_unembed *out);

/* Forward pass over ids [B,T] (row-major). hidden (may be NULL) receives
 * L+1 states laid out [L+1][B][T][d] exactly like HF output_hidden_states
 * (index 0 = embeddings, index L = after the final norm; for an OPT whose
 * word_embed_proj_dim differs, index L is taken before project_out, which is
 * folded into the unembedding, so every state has d_model floats); logits (may be NULL)
 * receives [B][T][V]. Ids out of [0, vocab) and T beyond learned positions are errors. */
int tl_model_forward(tl_model *m, const int32_t *ids, int B, int T, float *hidden, float *logits);

/* Same, streaming: fn (may be NULL) is called for index = 0..L with that hidden
 * state [B][T][d] (host memory, valid only during the call); a non-zero return
 * aborts the forward and is returned. */
typedef int (*tl_hidden_fn)(void *ctx, int index, const float *h, int B, int T, int d);
int tl_model_forward_cb(tl_model *m, const int32_t *ids, int B, int T, tl_hidden_fn fn, void *ctx, float *logits);

/* Sub-layer hook: called in every block with the output of its attention (after
 * o_proj) and of its MLP (after down_proj), [B*T][d] in host memory, before that
 * output joins the residual stream; the hook may rewrite it (ablations). In a
 * parallel-residual block both outputs pass through the hook before either is
 * added. A non-zero return aborts the forward and is returned. Without a hook the
 * forward accumulates both straight into the residual (a different summation, so
 * a pass-through hook need not reproduce the unhooked forward bit for bit; it does
 * reproduce itself). */
#define TL_SUBLAYER_ATTN 0
#define TL_SUBLAYER_MLP 1
typedef int (*tl_sublayer_fn)(void *ctx, int layer, int kind, float *out, int B, int T, int d);
void tl_model_set_sublayer_hook(tl_model *m, tl_sublayer_fn fn, void *ctx); /* fn NULL = none */

/* Greedy decoding: appends n_new argmax tokens to prompt[0..n_prompt) in out
 * (n_prompt + n_new ids). Recomputes the full prefix each step (no KV cache). */
int tl_model_greedy(tl_model *m, const int32_t *prompt, int n_prompt, int n_new, int32_t *out);

/* ---- per-layer weights (see the top of this file) ---- */
size_t tl_model_layer_numel(const tl_model *m);
float *tl_model_layer_blob(tl_model *m, int layer); /* this process's full copy, or NULL if dropped */
/* Replaces the blob of a layer (takes ownership of a tl_aligned_alloc'd array, or NULL to
 * drop it: then a hook must supply it). The previous blob is freed. */
void tl_model_set_layer_blob(tl_model *m, int layer, float *blob);
/* After tl_model_load_sliced: the slice of a layer (ownership passes to the caller;
 * free() it) and its range in the blob. NULL when there is none (or taken). */
float *tl_model_take_layer_slice(tl_model *m, int layer, size_t *off, size_t *cnt);
void tl_model_set_layer_hook(tl_model *m, const tl_layer_hook *hook); /* NULL = none */
/* Resolves the weights of `layer` (through the hook when set) into *w and sets *blob
 * to the blob used, to be given back with tl_model_layer_release. 0 or -1. */
int tl_model_layer_weights(tl_model *m, int layer, tl_layer_weights *w, const float **blob);
int tl_model_layer_release(tl_model *m, int layer, const float *blob);

/* Uses a different backend for compute (default: CPU). Refused (-1, naming the
 * config field) when the model's shapes exceed what the backend's ops support. */
int tl_model_set_backend(tl_model *m, const tl_backend *be);

/* ---- synthetic models ---- */
typedef struct {
  const char *arch; /* a model_type of tl_model_supported_types() */
  int layers, hidden, heads, kv_heads, intermediate, vocab, seq;
  uint64_t seed;
  tl_dtype dtype; /* F32, F16 or BF16 */
  int tie;        /* tie_word_embeddings (gpt2 is always tied) */
} tl_synth_opts;
/* Writes dir/config.json + dir/model.safetensors with random weights of that shape
 * (kv_heads/intermediate 0 = the family default). */
int tl_model_synth(const tl_synth_opts *o, const char *dir);

#endif
