/* Lens artifacts in the hub layout (what tuned-lens saves and loads):
 *
 *   <dir>/config.json   the lens config (tl_lens_config)
 *   <dir>/params.pt     torch.save() of the translators' state dict: an OrderedDict
 *                       "0.weight" [d,d], "0.bias" [d], "1.weight", ... in PyTorch's
 *                       zip format (pickle + raw little-endian storages)
 *
 * plus the reference's unembed_hash, the fingerprint of a model's unembedding matrix
 * stored in config.json.
 *
 * Layers of this module, bottom up: a zip reader/writer (stored entries only, zip64,
 * 64-byte aligned data like torch writes), a params.pt reader (a restricted pickle
 * machine that accepts only what torch.save emits for a state dict of tensors and never
 * executes anything) and writer, config.json, and whole lens folders. */
#ifndef TLENS_EXPORT_H
#define TLENS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlens/core.h"
#include "tlens/tensor.h"

/* ---- zip (read) ----------------------------------------------------------------
 * Parses the central directory of an in-memory archive (usually an mmap) and checks
 * every entry: stored (not compressed), not encrypted, local header consistent with
 * the central one, data inside the file. CRCs are checked by tl_zip_check_crc. */
typedef struct {
  char *name;
  uint64_t header_offset; /* local file header */
  uint64_t data_offset;   /* first data byte */
  uint64_t size;
  uint32_t crc;
} tl_zip_entry;

typedef struct {
  const unsigned char *data;
  uint64_t size;
  int n;
  tl_zip_entry *e;
  int zip64; /* the archive has a zip64 end record */
} tl_zip;

int tl_zip_parse(tl_zip *z, const void *data, uint64_t size, const char *label);
void tl_zip_free(tl_zip *z);
const tl_zip_entry *tl_zip_find(const tl_zip *z, const char *name); /* NULL if absent */
int tl_zip_check_crc(const tl_zip *z, const tl_zip_entry *e, const char *label);

/* ---- zip (write) ---------------------------------------------------------------
 * Streams entries to a file (written as <path>.tmp.<pid>, fsync'd and renamed over
 * path by tl_zipw_finish) or into memory. Every entry's data starts on a 64-byte
 * boundary (padding in the local header's extra field, as torch does). zip64
 * records are written where a size or offset needs them, or everywhere with
 * TL_ZIPW_FORCE_ZIP64 (to exercise that path on small files). */
typedef struct tl_zipw tl_zipw;
enum { TL_ZIPW_FORCE_ZIP64 = 1 };
tl_zipw *tl_zipw_open(const char *path, int flags); /* NULL on error */
tl_zipw *tl_zipw_open_mem(int flags);
/* One entry of exactly `size` bytes: begin, any number of data calls, end. */
int tl_zipw_begin(tl_zipw *w, const char *name, uint64_t size);
int tl_zipw_data(tl_zipw *w, const void *data, size_t n);
int tl_zipw_end(tl_zipw *w);
int tl_zipw_add(tl_zipw *w, const char *name, const void *data, size_t n);
/* Writes the central directory; for files fsyncs and renames into place. For memory
 * writers *mem / *mem_len receive the archive (malloc'd; pass NULL for files).
 * Frees w in every case; on error the temporary file is removed. */
int tl_zipw_finish(tl_zipw *w, unsigned char **mem, size_t *mem_len);
void tl_zipw_abort(tl_zipw *w); /* frees w, removes the temporary file */

/* ---- params.pt (read) ----------------------------------------------------------
 * Opens a torch.save() state dict of tensors: validates the zip, runs data.pkl
 * through a pickle machine that knows only OrderedDict, _rebuild_tensor_v2,
 * _rebuild_parameter and the Float/Half/BFloat16/Double storage classes (anything
 * else is an error, nothing is ever imported or called), and resolves each tensor to
 * its bytes. Tensors must be contiguous (any storage offset). */
typedef struct {
  char *name;
  tl_dtype dtype; /* storage dtype: TL_F32, TL_F16, TL_BF16 or TL_F64 (checkpoints: also integer, bool) */
  int ndim;
  int64_t shape[TL_MAX_DIMS];
  int64_t numel;
  const unsigned char *bytes; /* first element, little-endian, maybe unaligned */
} tl_pt_tensor;

typedef struct {
  char *label; /* file name for messages */
  tl_mmap map;
  tl_zip zip;
  int n; /* tensors in state-dict order */
  tl_pt_tensor *t;
} tl_pt_file;

int tl_pt_open(tl_pt_file *f, const char *path);
/* Same from memory; data must outlive f. */
int tl_pt_open_mem(tl_pt_file *f, const void *data, size_t size, const char *label);
/* TL_PT_CHECKPOINT: a model's torch.save() state dict (pytorch_model.bin or one of
 * its shards), read by the same machine. It also accepts the integer and bool
 * storage classes (Long, Int, Short, Char, Byte, Bool) that a model's buffers use
 * (attention masks, position ids): such tensors are listed with their dtype, for
 * the caller to ignore or refuse; tl_pt_to_f32 is only for float dtypes. A file
 * in the legacy format (torch < 1.6: pickles, not a zip) is refused naming it.
 * Opened from a file, the pages its CRC checks read are released again. */
enum { TL_PT_CHECKPOINT = 1 };
int tl_pt_open_flags(tl_pt_file *f, const char *path, int flags);
int tl_pt_open_mem_flags(tl_pt_file *f, const void *data, size_t size, const char *label, int flags);
void tl_pt_close(tl_pt_file *f);
const tl_pt_tensor *tl_pt_find(const tl_pt_file *f, const char *name);
/* dst[numel] = the tensor converted to fp32 */
void tl_pt_to_f32(const tl_pt_tensor *t, float *dst);

/* ---- params.pt (write) ---------------------------------------------------------
 * Writes an OrderedDict of tensors, readable by torch.load(weights_only=True).
 * Values are fp32 in memory and stored as dtype (TL_F32, TL_F16 or TL_BF16, rounded
 * to nearest even). The archive folder is "params" like torch 1.x names it after
 * params.pt. Written atomically, storages streamed (no copy of the whole file). */
typedef struct {
  const char *name;
  int ndim;
  int64_t shape[TL_MAX_DIMS];
  const float *data; /* contiguous, numel(shape) values */
} tl_pt_entry;

int tl_pt_write(tl_zipw *w, const char *archive, const tl_pt_entry *t, int n, tl_dtype dtype);
int tl_pt_save(const char *path, const tl_pt_entry *t, int n, tl_dtype dtype, int zip_flags);

/* ---- config.json ---------------------------------------------------------------
 * Exactly the reference fields. Missing optional fields take the reference defaults
 * (revision/hash null, bias true, lens_type "linear_tuned_lens"); unknown keys (old
 * hub configs misspell "unemebd_hash") are ignored with a warning. */
typedef struct {
  char *base_model_name_or_path; /* required (may be "") */
  int d_model;                   /* required, >= 1 */
  int num_hidden_layers;         /* required, >= 1 */
  bool bias;                     /* must be true: translators always have a bias */
  char *base_model_revision;     /* NULL = null */
  char *unembed_hash;            /* NULL = null */
} tl_lens_config;

int tl_lens_config_parse(const char *json, size_t len, const char *label, tl_lens_config *c);
int tl_lens_config_read(const char *path, tl_lens_config *c);
char *tl_lens_config_json(const tl_lens_config *c); /* malloc'd JSON text */
int tl_lens_config_write(const char *path, const tl_lens_config *c); /* atomic */
void tl_lens_config_free(tl_lens_config *c);

/* ---- lens folders --------------------------------------------------------------
 * params: one flat fp32 array in state-dict order (tlens/lens.h): translator i's
 * weight [d,d] then bias [d] at i*(d*d+d). */
int tl_lens_dir_save(const char *dir, const tl_lens_config *c, const float *params, tl_dtype dtype);

/* What the loading model expects; 0 / NULL fields are not checked. */
typedef struct {
  int d_model;
  int num_layers;
  const char *unembed_hash; /* the model's tl_unembed_hash */
} tl_lens_expect;

/* Loads <dir>/config.json and <dir>/params.pt, checks them against each other and
 * against `expect`: a d_model or layer-count mismatch is an error; an unembed hash
 * mismatch is only a warning (as in the reference), reported in *hash_mismatch
 * (may be NULL). *params: malloc'd flat array. */
int tl_lens_dir_load(const char *dir, const tl_lens_expect *expect, tl_lens_config *c, float **params,
                     int *hash_mismatch);

/* ---- lenses by hub id ------------------------------------------------------------
 * The reference's load_lens_artifacts, offline: a lens named by id is looked up in
 * the Hugging Face cache (tlens/hub.h) in the space AlignmentResearch/tuned-lens,
 * subfolder lens/<id>/, at its main revision. TUNED_LENS_REPO_ID (an ORG/NAME) and
 * TUNED_LENS_REPO_TYPE (model, dataset or space) name another repository. */
typedef struct {
  char *repo_id, *repo_type;
  char *repo;     /* its cache folder, <cache>/<type>s--ORG--NAME */
  char *snapshot; /* the main revision's snapshot, NULL when the repository is not cached */
  char *fetch;    /* the huggingface-cli command that downloads it */
  const char *from; /* the setting the cache folder came from (HF_HUB_CACHE, HF_HOME, ...) */
} tl_lens_space;
/* Reads the two settings (a bad value: -1, one line naming the variable) and finds
 * the repository in the cache (cached but its main revision missing: -1). */
int tl_lens_space_open(tl_lens_space *s);
void tl_lens_space_free(tl_lens_space *s);
/* The lens ids present in the space's snapshot: every folder under lens/ holding
 * both config.json and params.pt, as ids relative to lens/, sorted. *ids and each
 * entry malloc'd (tl_lens_ids_free); none: *n = 0. */
int tl_lens_space_list(const tl_lens_space *s, char ***ids, int *n);
void tl_lens_ids_free(char **ids, int n);
/* The folder that name denotes (malloc'd): name itself when it holds config.json and
 * params.pt, else lens/<name>/ of the cached space when name is a hub id found
 * there, else name (an existing folder, or not an id: its loader names what is
 * missing). An id found nowhere: -1 after one line naming the local folder and the
 * cache folder searched and the huggingface-cli command that fetches it.
 * tl_lens_dir_load calls it, so every command taking -l resolves ids. */
int tl_lens_resolve(const char *name, char **dir);
/* The name under which a lens for this model goes into a hub layout's lens/
 * folder (malloc'd): a hub id as it is (ORG/NAME, or NAME), else the last part
 * of the model's folder (the space stores gpt2's lens as lens/gpt2). */
char *tl_lens_hub_name(const char *model);

/* ---- unembed_hash --------------------------------------------------------------
 * sha256 hex of numpy.array_str(W_U, precision=1) for a float32 [rows, cols]
 * matrix, byte-identical to numpy 1.24. Only the printed corner elements are read
 * when the matrix is summarised (> 1000 elements), so it is O(1) on big matrices. */
int tl_unembed_hash(const float *W_U, int64_t rows, int64_t cols, char out[65]);
/* The text itself (malloc'd), for precision 0..16. */
char *tl_array_str_f32(const float *a, int64_t rows, int64_t cols, int precision);

#endif
