/* A run: what every command that runs a model opens before its own work, and
 * closes after it. `tlens train`, `tlens eval` (and the commands that look through
 * a lens) stand side by side on this module:
 *
 *   tl_run_init      MPI ranks (tl_dist), the rank's log prefix
 *   tl_run_open      threads per rank; the model folder (whole, or one slice of
 *                    every layer per rank for FSDP, gathered back layer by layer
 *                    through the model's layer hook), its unembedding and that
 *                    unembedding's hash; the tokenizer; the output folder (made
 *                    and locked by rank 0: one run per folder); the
 *                    corpus through the token cache (rank 0 tokenizes once, every
 *                    rank maps the same file); the checks that tie them together
 *   tl_run_close     everything above, in reverse
 *
 * Every step is collective: a failure on any rank is agreed (tl_dist_agree), so
 * every rank returns -1 with the same message and none waits in a collective
 * the others have left. */
#ifndef TLENS_RUN_H
#define TLENS_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "tlens/data.h"
#include "tlens/dist.h"
#include "tlens/model.h"
#include "tlens/tokenizer.h"
#include "tlens/unembed.h"

typedef struct {
  const char *model;       /* model folder, or a hub id found in the HF cache (required) */
  const char *revision;    /* with a hub id: branch, tag or commit [main] */
  const char *tokenizer;   /* tokenizer.json [<model>/tokenizer.json] */
  const char *data;        /* corpus: .jsonl, .jsonl.zst or pre-tokenized .safetensors; NULL: none.
                            * Several entries separated by newlines (--data.name A B ...), each a
                            * file, a glob or a folder (tl_run_corpus_files), read in order as
                            * one concatenated corpus */
  const char *split;       /* with a folder: the files of this split (S-*, S/..., data/S-*) */
  const char *text_column; /* JSON field of the text ["text"] */
  long max_seq_len;        /* tokens per sample (capped by the tokenizer's model_max_length) */
  const char *output;      /* output folder, made by rank 0; NULL: none */
  const char *cache_dir;   /* token cache folder [<output>/cache] */
  long threads;            /* threads per rank [0: OMP_NUM_THREADS, else cores / ranks per node] */
  bool fsdp_slices;        /* with several ranks, each keeps only its slice of every layer */
  bool allow_nonfinite;    /* load weights holding NaN/Inf (refused by default) */
  const char *precision;   /* the reference's --precision (tl_run_check_precision); NULL = auto */
  bool dataset_shuffle;    /* shuffle documents before chunking, with dataset_shuffle_seed */
  uint64_t dataset_shuffle_seed;
  long collective_timeout; /* --nccl_timeout seconds; 0 = none */
  bool cpu_offload;
  bool progress_bar;       /* a terminal may get bars (--progress); plain lines in a log either way */
} tl_run_opts;

typedef struct {
  tl_dist dist;
  tl_model *model;
  tl_model_config mc;
  tl_unembed u;            /* final norm + W_U, owned by model */
  char unembed_hash[65];   /* the lens config's unembed_hash of this model */
  tl_tokenizer *tok;       /* NULL for pre-tokenized data without a tokenizer */
  tl_dataset *data;        /* NULL without opts.data */
  int64_t T;               /* tokens per sample of data */
  double nats_to_bpb;      /* of data; NaN when unknown (pre-tokenized without metadata) */
  int lock_fd;             /* rank 0: the output folder's lock (-1: none) */
  char *model_dir;         /* the folder opts.model resolved to */
  /* FSDP (opts.fsdp_slices on several ranks): this rank's slice of every layer and
   * the gather that the model's layer hook runs before each block */
  tl_fsdp *fsdp;
  float **fsdp_slices;
  tl_layer_hook hook;
} tl_run;

/* The settings of a run as the reference's Model, Data and Distributed option groups
 * and ours beside them: what train and eval share (their configs embed it). */
typedef struct {
  /* Model */
  char *model;             /* model folder, as given (recorded as base_model_name_or_path) */
  char *revision;          /* recorded as base_model_revision (null when unset) */
  char *tokenizer;         /* tokenizer.json [<model>/tokenizer.json] */
  char *precision;         /* [auto]: on the CPU the frozen model computes in fp32 whatever it says */
  char *tokenizer_type;    /* accepted: tokenizer.json is read whatever the class name */
  bool slow_tokenizer;     /* accepted: one tokenizer implementation */
  /* Data */
  char *data;              /* corpus entries, newline-separated (see tl_run_opts.data) */
  char *split;             /* ["validation"] the split of a folder in data */
  char *text_column;       /* ["text"] */
  char *data_revision;     /* for hub datasets; a corpus file has none */
  long max_seq_len;        /* [2048] */
  bool dataset_shuffle;    /* shuffle documents before chunking */
  long dataset_shuffle_seed; /* [42] */
  /* Distributed */
  bool fsdp;               /* shard the frozen model's layers across ranks */
  bool cpu_offload;        /* for GPU runs; the CPU path keeps every layer in host memory */
  long nccl_timeout;       /* [1200] s a collective may wait before the run stops */
  long per_gpu_batch_size; /* [1] samples per rank per (micro-)batch */
  bool shuffle;            /* [true] --dataloader_shuffle */
  /* ours */
  char *output;            /* required */
  char *cache_dir;         /* token cache [<output>/cache] */
  long threads;            /* [0: OMP_NUM_THREADS or all cores / ranks per node] */
  bool progress;           /* [true] a bar on a terminal */
  bool allow_nonfinite;    /* load model weights holding NaN/Inf */
} tl_run_cfg;
void tl_run_cfg_default(tl_run_cfg *c);
void tl_run_cfg_free(tl_run_cfg *c);
/* The required fields and the values no run can take, before anything is opened. */
int tl_run_cfg_check(const tl_run_cfg *c);
/* What tl_run_open needs from it (pointers into c). */
tl_run_opts tl_run_opts_of(const tl_run_cfg *c);

/* Starts MPI (one rank without a launcher) and tags this rank's log lines. */
int tl_run_init(tl_run *r, int *argc, char ***argv);
/* A single rank where the environment says more processes were meant (torchrun's
 * WORLD_SIZE / RANK / LOCAL_RANK, or Slurm's SLURM_NTASKS > 1 without srun): -1 with
 * a message saying how to launch. N copies of a one-rank run would otherwise each
 * train alone into the same output folder. */
int tl_run_check_launch(const tl_run *r);
/* Opens everything opts names (collective). */
int tl_run_open(tl_run *r, const tl_run_opts *opts);
/* Frees what tl_run_open opened and shuts MPI down. Safe after any failure. */
void tl_run_close(tl_run *r);

/* The corpus files `data` names (see tl_run_opts.data), in order: globs expanded and
 * sorted, a folder replaced by the .jsonl/.jsonl.zst files of `split` in it
 * (S-*.jsonl[.zst], S/ *.jsonl[.zst], data/S-*.jsonl[.zst]) or, where it has no such
 * files, by all of its .jsonl/.jsonl.zst files. Error when an entry names nothing. */
int tl_run_corpus_files(const char *data, const char *split, char ***files, int *n);
void tl_run_corpus_files_free(char **files, int n);

/* --precision: auto, bfloat16, float16 or float32 (-1 otherwise, naming the flag). */
int tl_run_check_precision(const char *precision);

/* Threads per rank: requested > 0 wins, then OMP_NUM_THREADS, else the node's cores
 * divided among the ranks on it (oversubscribed cores thrash). */
void tl_run_choose_threads(long requested, const tl_dist *d);

#endif
