/* tlens ckpt: training checkpoints as HDF5 files.
 *
 * One file per checkpoint, <dir>/step_<8 digits>.h5, holding a list of named
 * items: float32, float64 and uint64 arrays of any shape (row-major), and strings.
 * Names are paths such as "lens/0/weight" (groups are created on the way) and
 * show up as such in h5dump. The module does not decide what a run saves; the
 * training loop is expected to use names like
 *   lens/<i>/weight [d,d], lens/<i>/bias [d]        translator parameters
 *   optim/<i>/momentum_buffer | exp_avg | exp_avg_sq | max_exp_avg_sq, optim/step
 *   schedule/step, data/epoch, data/position, rng/state (u64s)
 *   run/config (the full config as JSON), model/config_hash, model/unembed_hash
 * Every file also carries root attributes written by this module:
 *   magic = "tlens-checkpoint", format_version = 1, step, world_size (writer's),
 *   complete = 1 (set last, just before the file is closed)
 * and every dataset an attribute crc32 = CRC-32 (zip polynomial) of its
 * little-endian bytes (a string's bytes without the NUL).
 *
 * Writing is collective over a tl_dist: all ranks call the same sequence of
 * tl_ckpt_* writer functions with the same names and shapes. Replicated items are
 * taken from rank 0 (other ranks may pass NULL). Sharded items (ZeRO-1 optimizer
 * state, parameters split over ranks) are written by every rank into its own
 * contiguous range of the flattened array with parallel HDF5 (MPI-IO, collective
 * writes), so the file always holds the whole, unsharded array; a run with another
 * world size reads back whatever ranges it needs (elastic resume).
 *
 * Crash safety: the file is written as <name>.tmp, closed, fsync'ed, renamed to
 * its final name and the directory fsync'ed. Readers only consider final names,
 * and require complete = 1 and matching checksums. After a successful commit the
 * older checkpoints beyond the newest `keep` are deleted.
 *
 * Reading needs no communicator: any rank opens the file on its own (read-only). */
#ifndef TLENS_CKPT_H
#define TLENS_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "tlens/dist.h"

#define TL_CKPT_MAGIC "tlens-checkpoint"
#define TL_CKPT_FORMAT_VERSION 1
#define TL_CKPT_KEEP_DEFAULT 2
#define TL_CKPT_MAX_DIMS 8

typedef enum { TL_CKPT_F32 = 0, TL_CKPT_F64 = 1, TL_CKPT_U64 = 2, TL_CKPT_STR = 3 } tl_ckpt_type;

/* "<dir>/step_<8 digits>.h5" (more digits past 99,999,999), malloc'd. */
char *tl_ckpt_path(const char *dir, uint64_t step);

/* ---- writing (collective) ---- */
typedef struct tl_ckpt_writer tl_ckpt_writer;
/* Creates dir if needed and starts <dir>/step_<step>.h5.tmp. */
int tl_ckpt_begin(tl_ckpt_writer **w, tl_dist *d, const char *dir, uint64_t step);
/* Replicated items: rank 0's data is written. ndim 0 is a scalar. */
int tl_ckpt_add_f32(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape, const float *data);
int tl_ckpt_add_f64(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape, const double *data);
int tl_ckpt_add_u64(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape, const uint64_t *data);
int tl_ckpt_add_str(tl_ckpt_writer *w, const char *name, const char *s);
/* Sharded item of the given full shape: this rank holds elements
 * [offset, offset + count) of the flattened array in `local`. The ranks' ranges
 * must tile the whole array exactly (empty ranges allowed); tl_shard_range gives
 * such a partition. */
int tl_ckpt_add_f32_sharded(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape,
                            uint64_t offset, uint64_t count, const float *local);
/* Marks the file complete, closes, fsyncs and renames it into place, then keeps
 * it and the newest keep-1 older checkpoints that pass full validation, deleting
 * every other older step_*.h5 and stale *.tmp (keep 0 = delete nothing). Files
 * of later steps are left alone.
 * Frees w in all cases. *path (may be NULL) receives the final path, malloc'd.
 * After any failed add, commit fails and removes the temporary file. */
int tl_ckpt_commit(tl_ckpt_writer *w, int keep, char **path);
/* Abandons the checkpoint: closes and removes the temporary file; frees w. */
void tl_ckpt_abort(tl_ckpt_writer *w);

/* ---- reading (per rank, no communication) ---- */
typedef struct tl_ckpt_reader tl_ckpt_reader;
typedef struct {
  tl_ckpt_type type;
  int ndim;
  uint64_t shape[TL_CKPT_MAX_DIMS];
  uint64_t numel; /* for strings: the length in bytes */
} tl_ckpt_info;

/* Opens and validates a checkpoint: magic, format version, complete flag, and
 * with verify every dataset's checksum (reads the whole file once). */
int tl_ckpt_open(tl_ckpt_reader **r, const char *path, bool verify);
void tl_ckpt_close(tl_ckpt_reader *r);
uint64_t tl_ckpt_step(const tl_ckpt_reader *r);
uint64_t tl_ckpt_world_size(const tl_ckpt_reader *r);
const char *tl_ckpt_file(const tl_ckpt_reader *r);
bool tl_ckpt_has(tl_ckpt_reader *r, const char *name);
int tl_ckpt_info_of(tl_ckpt_reader *r, const char *name, tl_ckpt_info *info);
/* Reads elements [offset, offset + count) of the flattened array into out. The
 * item must have the function's type. */
int tl_ckpt_read_f32(tl_ckpt_reader *r, const char *name, uint64_t offset, uint64_t count, float *out);
int tl_ckpt_read_f64(tl_ckpt_reader *r, const char *name, uint64_t offset, uint64_t count, double *out);
int tl_ckpt_read_u64(tl_ckpt_reader *r, const char *name, uint64_t offset, uint64_t count, uint64_t *out);
int tl_ckpt_read_str(tl_ckpt_reader *r, const char *name, char **out); /* malloc'd */

/* Finds the newest valid checkpoint in dir: files named step_<digits>.h5 (never
 * *.tmp), newest step first, each fully validated (tl_ckpt_open with verify); an
 * invalid one is skipped with a warning naming it and the reason. Returns 1 with
 * *path (malloc'd) and *step set, 0 when there is none (or no dir), -1 on error.
 * With d, rank 0 does the scan and every rank gets its answer; d may be NULL. */
int tl_ckpt_find_latest(tl_dist *d, const char *dir, char **path, uint64_t *step);

/* Compatibility of a checkpoint with the current run. ident: string items that
 * must equal the given values (e.g. {"model/config_hash", hash}); keys: config
 * keys whose JSON values must be equal in the checkpoint's config (the JSON string
 * item config_item) and in current_config_json. A key is looked up as a literal
 * top-level key first, then as a dotted path into nested objects; a key missing
 * on both sides matches. A mismatch is an error naming the item or key and both
 * values, unless force, where it is a warning. */
typedef struct {
  const char *item;
  const char *value;
} tl_ckpt_expect;
int tl_ckpt_check_compat(tl_ckpt_reader *r, const tl_ckpt_expect *ident, int nident, const char *config_item,
                         const char *current_config_json, const char *const *keys, int nkeys, bool force);

/* CRC-32 of the concatenation A||B from crc(A), crc(B) and len(B), so ranks can
 * checksum their own slices of one array. */
uint32_t tl_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif
