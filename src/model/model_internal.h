/* Internals shared by the model module's files: the family table, weight
 * layouts and the tl_model struct. */
#ifndef TLENS_MODEL_INTERNAL_H
#define TLENS_MODEL_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "tlens/backend.h"
#include "tlens/core.h"
#include "tlens/model.h"

#define TL_NONE ((size_t)-1)

/* Where each weight sits in a layer blob (offsets in floats; TL_NONE = absent). */
typedef struct {
#define TL_LAYER_OFF_(name) size_t name;
  TL_LAYER_TENSORS(TL_LAYER_OFF_)
#undef TL_LAYER_OFF_
  size_t numel;
} tl_layer_layout;

/* Where each global weight sits in the global blob. */
typedef struct {
  size_t embed;                    /* [V, embed_dim] */
  size_t pos;                      /* [max_pos + pos_offset, d] learned positions */
  size_t embed_norm_w, embed_norm_b; /* [d] bloom's LayerNorm after the embedding */
  size_t proj_in, proj_out;        /* OPT: [d, embed_dim] and [embed_dim, d] */
  size_t final_w, final_b;         /* [d]; for norms without weights: ones and zeros (not in the file) */
  size_t lm_w, lm_b;               /* [V, embed_dim], [V] */
  size_t numel;
} tl_global_layout;

/* What a tensor of the checkpoint is, independent of its name in a family. */
typedef enum {
  R_EMBED, R_POS, R_EMBED_NORM_W, R_EMBED_NORM_B, R_PROJ_IN, R_PROJ_OUT, /* global */
  R_FINAL_W, R_FINAL_B, R_LM_W, R_LM_B,
  R_LN1_W, R_LN1_B, R_LN2_W, R_LN2_B,
  R_QKV_W, R_QKV_B, R_Q_W, R_Q_B, R_K_W, R_K_B, R_V_W, R_V_B, R_O_W, R_O_B,
  R_GATE_UP_W, R_GATE_W, R_GATE_B, R_UP_W, R_UP_B, R_DOWN_W, R_DOWN_B,
} tl_role;

/* How a checkpoint tensor becomes our layout. */
typedef enum {
  XF_COPY,        /* same layout */
  XF_TRANSPOSE,   /* GPT-2 Conv1D: file [in, out] -> [out, in] */
  XF_GROUPED_QKV, /* fused QKV whose rows are grouped per key/value head: [group][G q heads, k, v][hd]
                     (G = heads per group) -> [q heads | k heads | v heads]. With one head per group
                     it is GPT-NeoX's and BLOOM's [head][q, k, v]; Falcon uses both forms */
  XF_ROPE_PAIRS,  /* GPT-J q or k projection: in each head, the rotary rows 2i, 2i+1 move to i,
                     i + rot_dim/2, so that rotate-half RoPE rotates the pairs GPT-J rotates */
} tl_xform;

/* One row of a family's name table. */
typedef struct {
  const char *name; /* global name, or the suffix after the layer prefix */
  tl_role role;
  tl_xform xf;
} tl_name_entry;

/* One tensor the checkpoint must contain, resolved for a given config. */
typedef struct {
  char name[192];
  tl_role role;
  tl_xform xf;
  int layer; /* -1 = global */
  int ndim;
  int64_t shape[2]; /* as stored in the file */
  size_t off;       /* destination offset (floats) in the layer or global blob */
} tl_tspec;

/* ---- config.json: one table of fields per family (config.c reads and writes by it) ----
 * Each row states a field once: its JSON name, its type, where its value goes,
 * whether it may be absent and what it then means, the values accepted, and what
 * synth writes for it. Missing or ill-typed fields are one-line errors; a
 * family's finish function then checks what spans several fields and fills in
 * what follows from them. */

/* What config.json is read into: the model config, plus the fields that only
 * decide other parts of it. */
typedef struct {
  tl_model_config cfg;
  double rotary_pct;      /* gpt_neox rotary_pct, phi/stablelm partial_rotary_factor */
  int scale_attn_weights; /* gpt2: attention scores scaled by 1/sqrt(head_dim) (must be true) */
  int attention_bias;     /* bias on q, k, v and the output projection */
  int layer_norm_before, remove_final_norm, norm_affine, enable_bias; /* opt */
  int residual_post_ln;   /* bloom apply_residual_connection_post_layernorm (must be false) */
  int qk_layernorm;       /* phi, stablelm (must be false) */
  int use_sliding_window; /* qwen2 (must be false) */
  int multi_query, new_decoder, parallel_attn, falcon_alibi, falcon_bias; /* falcon */
  int n_attn_types;       /* gpt_neo: layers that attention_types describes */
} cfg_values;

#define CFG(member) offsetof(cfg_values, cfg.member)
#define EXTRA(member) offsetof(cfg_values, member)

typedef enum {
  V_INT,        /* int, integral and in [lo, hi] */
  V_FLOAT,      /* float, in [lo, hi] */
  V_DOUBLE,     /* double, in [lo, hi] (a factor whose product must round as Python's does) */
  V_BOOL,       /* int 0/1 */
  V_ACT,        /* tl_act, from an activation name (default: a tl_act) */
  V_NULL,       /* no value: the field is not supported unless null or absent */
  V_ROPE_SCALING, /* rope_scaling: null, or {"type" or "rope_type": linear | dynamic | llama3 | default,
                     "factor", and for llama3 low_freq_factor, high_freq_factor and
                     original_max_position_embeddings} -> cfg.rope_* */
  V_ATTN_TYPES, /* gpt_neo attention_types [[["global", "local"], n], ...] -> cfg.local_layers;
                   absent: alternating global, local; synth writes that */
} value_type;

typedef enum {
  REQUIRED, /* absent is an error (only sizes, which are V_INT) */
  OPTIONAL, /* absent means def */
  DERIVED,  /* absent leaves 0: the finish function works it out from other fields */
  ALIAS,    /* another name of the row above, read only when that one is absent (a required
               row is then satisfied by either name) */
} presence;

typedef enum {
  W_NO,      /* synth leaves it out */
  W_VALUE,   /* synth writes the config's value (the sizes it was asked for) */
  W_DEFAULT, /* synth writes def */
  W_SYNTH,   /* synth writes the row's synth value */
} write_rule;

typedef struct {
  const char *key;
  value_type type;
  size_t off; /* CFG(...) or EXTRA(...); unused for V_NULL */
  presence need;
  double def;
  double lo, hi;
  write_rule write;
  double synth;
} cfg_field;

typedef struct cfg_schema {
  const char *architecture; /* "architectures" in a written config.json */
  const cfg_field *fields;  /* ends with a NULL key */
  /* Checks across fields, derived fields, and what the family fixes. */
  int (*finish)(cfg_values *v, const char *path);
} cfg_schema;

/* Marks every odd layer local (GPT-Neo's pattern: global, local, global, ...). */
void tl_cfg_alternate_local(tl_model_config *c);

#define TL_CFG_BIG 1000000000L /* sizes above this are certainly a corrupt config */
#define TL_CFG_MANY 100000     /* layers or heads */

typedef struct tl_family {
  const char *model_type;
  const cfg_schema *schema; /* config.json: read by the loader, written by synth */
  /* Checkpoints saved from the base model class lack this prefix on the base
   * model's tensors (OPT's "decoder.layers.0..." for "model.decoder.layers.0...");
   * transformers accepts both, and so does the loader. */
  const char *base_prefix;
  const char *layer_prefix; /* printf format with %d */
  const tl_name_entry *globals;
  const tl_name_entry *layer;
  /* the separate q/k/v names when the family uses Llama's (self_attn_qkv), or NULL */
  const tl_name_entry *layer_qkv;
  /* more layer names, by cfg.variant (0 or 1): bloom's norms as [0]; falcon's old
   * decoder norms (bloom's) and its new decoder's; NULL where a family has none */
  const tl_name_entry *layer_variant[2];
  /* checkpoint entries that are buffers, not weights (e.g. attention masks): ignored */
  const char *const *ignored_suffixes;
} tl_family;

const tl_family *tl_family_find(const char *model_type);
/* The family whose class config.json's "architectures" names (LlamaForCausalLM...), or NULL. */
const tl_family *tl_family_find_architecture(const char *architecture);
void tl_layouts(const tl_model_config *c, tl_layer_layout *ll, tl_global_layout *gl);
/* All tensors the checkpoint must hold for this config (malloc'd array). */
int tl_model_specs(const tl_family *f, const tl_model_config *c, tl_tspec **out, int *n);
/* Whether a checkpoint tensor that is not a weight of this config may be ignored. */
int tl_model_ignorable(const tl_family *f, const tl_model_config *c, const char *name);
/* Parses config.json text (path for messages) into cfg and returns its family. */
int tl_model_parse_config(const char *text, size_t len, const char *path, tl_model_config *cfg,
                          const tl_family **fam);

/* config.json text for a synthetic model of this family (malloc'd). */
char *tl_model_config_json(const tl_family *f, const tl_model_config *c);
/* The name the family gives a global tensor of this role, or NULL. */
const char *tl_family_global_name(const tl_family *f, tl_role role);

/* The rotary frequencies of a forward over T positions (rot_dim/2 floats, fp32 as
 * transformers computes them) and the divisor of the positions, under the
 * config's rope_scaling. */
void tl_rope_frequencies(const tl_model_config *c, int T, float *inv_freq, float *pos_div);

/* Whether layer l attends through the sliding window (0: no window). */
static inline int tl_layer_window(const tl_model_config *c, int l) {
  if (!c->window) return 0;
  if (!c->window_per_layer) return c->window;
  return (c->local_layers[l / 8] >> (l % 8)) & 1 ? c->window : 0;
}

struct tl_model {
  tl_model_config cfg;
  const tl_family *fam;
  const tl_backend *be;
  char *dir;
  tl_layer_layout ll;
  tl_global_layout gl;
  float *global;  /* global blob (embeddings, final norm, unembedding) */
  /* OPT with project_out: the output embedding times project_out, [V, d], made
   * at load so that the unembedding is one matrix (NULL for every other model) */
  float *w_unembed;
  float *alibi_slopes; /* bloom: per-head slopes, in the backend's memory (with the scratch) */
  float *rope_inv;     /* scaled RoPE: this forward's frequencies (host, rot_dim/2) */
  float rope_pos_div;
  /* An untied input embedding stays in its weights file, in the file's dtype:
   * a forward pass reads (pread) and converts only the rows of its tokens, so
   * the table (V x d, ~100 MB at pythia sizes) never takes process memory. A
   * mapping would not do: its touched pages stay resident, and transparent huge
   * pages fault in megabytes per row. embed_fd -1: the rows are in global. */
  int embed_fd;
  int64_t embed_off; /* byte offset of the table in the file */
  tl_dtype embed_dtype;
  char *embed_path;
  float **layers; /* [n_layers] layer blobs */
  float **slices; /* [n_layers] after tl_model_load_sliced: elements [slice_off, +slice_cnt) */
  size_t slice_off, slice_cnt;
  tl_layer_hook hook;
  int has_hook;
  /* sub-layer hook (tl_model_set_sublayer_hook); sub: this forward's [rows, d]
   * output buffer while one is set, allocated and freed by the forward itself */
  tl_sublayer_fn sublayer;
  void *sublayer_ctx;
  float *sub;
  /* scratch, sized for cap_rows token positions, reused across calls */
  int cap_rows;
  float *x, *hn, *hn2, *qkv, *att, *mlp_h, *mlp_g, *stage;
  float *emb; /* embedding rows before project_in (only when embed_dim != d_model) */
  int32_t *ids_dev;
};

#endif
