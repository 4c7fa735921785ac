/* Internals shared by the model module's files: the family table, weight
 * layouts and the tl_model struct. */
#ifndef TLENS_MODEL_INTERNAL_H
#define TLENS_MODEL_INTERNAL_H

#include <cjson/cJSON.h>

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
  size_t embed, pos, final_w, final_b, lm_w, lm_b;
  size_t numel;
} tl_global_layout;

/* What a tensor of the checkpoint is, independent of its name in a family. */
typedef enum {
  R_EMBED, R_POS, R_FINAL_W, R_FINAL_B, R_LM_W, R_LM_B, /* global */
  R_LN1_W, R_LN1_B, R_LN2_W, R_LN2_B,
  R_QKV_W, R_QKV_B, R_Q_W, R_Q_B, R_K_W, R_K_B, R_V_W, R_V_B, R_O_W, R_O_B,
  R_GATE_W, R_GATE_B, R_UP_W, R_UP_B, R_DOWN_W, R_DOWN_B,
} tl_role;

/* How a checkpoint tensor becomes our layout. */
typedef enum {
  XF_COPY,      /* same layout */
  XF_TRANSPOSE, /* GPT-2 Conv1D: file [in, out] -> [out, in] */
  XF_NEOX_QKV,  /* GPT-NeoX fused QKV rows [head][q,k,v][hd] -> [q,k,v][head][hd] */
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

typedef struct tl_family {
  const char *model_type;
  /* Reads the family's config.json fields (sizes, eps, options) into c. */
  int (*read_config)(const cJSON *j, const char *path, tl_model_config *c);
  /* Writes a config.json for synth. */
  void (*write_config)(cJSON *j, const tl_model_config *c);
  const char *layer_prefix; /* printf format with %d */
  const tl_name_entry *globals;
  const tl_name_entry *layer;
  /* checkpoint entries that are buffers, not weights (e.g. attention masks): ignored */
  const char *const *ignored_suffixes;
} tl_family;

const tl_family *tl_family_find(const char *model_type);
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

struct tl_model {
  tl_model_config cfg;
  const tl_family *fam;
  const tl_backend *be;
  char *dir;
  tl_layer_layout ll;
  tl_global_layout gl;
  float *global;  /* global blob (embeddings, final norm, unembedding) */
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
  /* scratch, sized for cap_rows token positions, reused across calls */
  int cap_rows;
  float *x, *hn, *hn2, *qkv, *att, *mlp_h, *mlp_g, *stage;
  int32_t *ids_dev;
};

#endif
