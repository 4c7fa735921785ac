/* tlens dist: the communicator every rank of a run shares.
 *
 * One tl_dist per process. It works the same when the program runs alone (an MPI
 * "singleton", no launcher), under `mpirun -np N` and under `srun --mpi=pmix`.
 *
 * Collectives on float buffers go through a backend chosen per communicator:
 * TL_DIST_MPI (host buffers, always available) or TL_DIST_NCCL (device buffers,
 * only in builds with the CUDA backend; the implementation lives in
 * src/backend/cuda and plugs in through tlens/dist_ops.h). Scalars, broadcasts,
 * barriers and error agreement always use MPI on host memory.
 *
 * Every collective must be called by all ranks in the same order. Functions return
 * 0 / -1 (after tl_fail) like the rest of tlens; an MPI error is reported, not
 * fatal, so the caller can agree on it with tl_dist_agree and exit cleanly.
 *
 * Shard partition (ZeRO-1, FSDP, sharded checkpoints): n elements are split into
 * `world` balanced contiguous ranges; rank r owns
 *   [r*(n/W) + min(r, n%W), ... + n/W + (r < n%W))
 * i.e. the first n%W ranks hold one element more. Ranges may be empty (n < W).
 *
 * Determinism: tl_dist_allreduce_avg and its nonblocking form compute each
 * element's sum on exactly one rank (reduce-scatter) and copy it to the others
 * (all-gather), so every rank ends with the same bits whatever the MPI library's
 * reduction order. Replicated parameters therefore never drift apart. */
#ifndef TLENS_DIST_H
#define TLENS_DIST_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { TL_DIST_MPI = 0, TL_DIST_NCCL = 1 } tl_dist_backend;
typedef enum { TL_RED_SUM = 0, TL_RED_MAX = 1, TL_RED_MIN = 2 } tl_red_op;

/* Nonblocking averages in flight at once (each gets its own communicator, so
 * their steps never have to line up with each other across ranks). */
#define TL_DIST_MAX_INFLIGHT 4

struct tl_dist_ops;

typedef struct tl_dist {
  int rank, world;             /* in the run */
  int local_rank, local_world; /* among the ranks on this node (GPU selection) */
  tl_dist_backend backend;
  MPI_Comm comm;      /* private duplicate of MPI_COMM_WORLD, errors returned */
  MPI_Comm node_comm; /* ranks sharing this node */
  bool owns_mpi;      /* we called MPI_Init, so finalize calls MPI_Finalize */
  const struct tl_dist_ops *ops; /* non-NULL when backend != TL_DIST_MPI */
  void *backend_state;
  MPI_Comm req_comm[TL_DIST_MAX_INFLIGHT]; /* one per nonblocking average slot */
  bool req_busy[TL_DIST_MAX_INFLIGHT];     /* set at start, cleared by tl_dist_wait */
  int req_next;
  size_t max_chunk;   /* elements per MPI call in the averages (default 2^30; MPI
                         counts are ints). Lowered only by tests. */
} tl_dist;

/* Initializes MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI; OpenMP
 * workers never do) unless the program already did, and fills rank/world/local
 * rank. argc/argv may be NULL. */
int tl_dist_init(tl_dist *d, int *argc, char ***argv);
/* Frees the communicators and, when tl_dist_init started MPI, finalizes it. */
void tl_dist_finalize(tl_dist *d);
/* Selects the backend for the float-buffer collectives. TL_DIST_NCCL fails with a
 * clear message in builds without the CUDA backend. Collective. */
int tl_dist_set_backend(tl_dist *d, tl_dist_backend b);
static inline bool tl_dist_is_root(const tl_dist *d) { return d->rank == 0; }

int tl_dist_barrier(tl_dist *d);
/* Broadcasts `bytes` bytes of host memory from root (any size). */
int tl_dist_bcast(tl_dist *d, void *buf, size_t bytes, int root);
/* Broadcasts a NUL-terminated string from root: on other ranks *s is replaced by
 * a malloc'd copy (the old pointer is freed); root's *s may not be NULL. */
int tl_dist_bcast_str(tl_dist *d, char **s, int root);

/* Scalar reductions on host memory, result on every rank (loss sums, maxima). */
int tl_dist_allreduce_f64(tl_dist *d, double *v, int n, tl_red_op op);
int tl_dist_allreduce_i64(tl_dist *d, int64_t *v, int n, tl_red_op op);

/* (the shard partition, tl_shard_range, is in tlens/core.h) */

/* ---- float buffers (data-parallel gradients, ZeRO-1) ---- */
/* buf[0..n) <- (sum over ranks of buf) / world, identical bits on every rank. */
int tl_dist_allreduce_avg(tl_dist *d, float *buf, size_t n);
/* ZeRO-1 pair. n must fit an MPI int (2^31-1); split larger state per layer.
 * Each rank gives the full buffer `in` [n]; shard receives this rank's range of the
 * sum over ranks (or the average when average is true), shard[count of
 * tl_shard_range]. in and shard must not overlap. */
int tl_dist_reduce_scatter(tl_dist *d, const float *in, float *shard, size_t n, bool average);
/* Each rank gives its range (tl_shard_range) in shard; out [n] receives all of them
 * concatenated. shard may point inside out at this rank's offset. */
int tl_dist_allgather(tl_dist *d, const float *shard, float *out, size_t n);

/* Nonblocking average: start, keep computing (call tl_dist_test now and then so
 * MPI can move the data along: Open MPI has no progress thread), then ALWAYS
 * tl_dist_wait, which also frees the slot (at most TL_DIST_MAX_INFLIGHT started
 * and not yet waited on). buf must not be touched in between. Identical bits on every rank, like the blocking
 * form (the two may round differently from each other). The request is
 * caller-owned memory; several may be in flight. */
typedef struct {
  tl_dist *d;
  float *buf;
  size_t n, chunk_start, chunk_n; /* the buffer is reduced in chunks of < 2^31 */
  int phase;                      /* 0 idle, 1 reduce-scatter, 2 all-gather */
  int slot;                       /* index into d->req_comm, -1 if none */
  MPI_Request req;
  int *counts, *displs;           /* per rank, for the current chunk */
  void *backend_req;              /* NCCL backend */
} tl_dist_req;
int tl_dist_iallreduce_avg(tl_dist *d, float *buf, size_t n, tl_dist_req *r);
/* Moves a pending request along; *done (may be NULL) tells whether it finished. */
int tl_dist_test(tl_dist_req *r, bool *done);
int tl_dist_wait(tl_dist_req *r);

/* ---- collective timeout ----
 * After tl_dist_set_timeout, a blocking collective of this rank that has not
 * returned within `seconds` (another rank died or hangs) ends the process with one
 * error line and status 1, from a watchdog thread: MPI offers no way to abandon a
 * call in progress, and a job must not wait for ever. Process-wide. */
int tl_dist_set_timeout(tl_dist *d, double seconds);

/* ---- error agreement ----
 * Every rank passes its local status (0 ok, -1 failed with a recorded tl_fail
 * message). Returns 0 when all ranks succeeded, else -1 on EVERY rank; ranks that
 * did not fail themselves get the lowest failing rank's message, prefixed
 * "rank R: ", so all ranks can print the real reason and exit instead of one rank
 * exiting while the others hang in the next collective. */
int tl_dist_agree(tl_dist *d, int local_rc);
/* Boolean form: returns true when local_ok is true on all ranks. */
bool tl_dist_all_ok(tl_dist *d, bool local_ok);

/* ---- FSDP: gather a sharded layer's weights before use ----
 * Layer l has numel[l] elements of elem_size bytes (4 for f32, 2 for f16/bf16);
 * this rank keeps only its tl_shard_range slice, shards[l]. tl_fsdp_prefetch(l)
 * starts gathering the full layer into one of two reusable buffers
 * (slot l % 2); tl_fsdp_wait(l) completes it and returns the full layer. The
 * pointer stays valid until a prefetch of layer l+2 or l-2 (the same slot), so the
 * usual loop is:
 *     tl_fsdp_prefetch(f, 0);
 *     for l: p = tl_fsdp_wait(f, l); if (l+1 < L) tl_fsdp_prefetch(f, l+1); use(p);
 * Waiting on a layer that was not prefetched gathers it synchronously. */
typedef struct tl_fsdp tl_fsdp;
int tl_fsdp_create(tl_fsdp **f, tl_dist *d, int nlayers, const size_t *numel, size_t elem_size,
                   const void *const *shards);
int tl_fsdp_prefetch(tl_fsdp *f, int layer);
int tl_fsdp_wait(tl_fsdp *f, int layer, const void **full);
void tl_fsdp_free(tl_fsdp *f);

/* ---- preemption (SIGUSR1 / SIGTERM, and a first Ctrl-C) ----
 * tl_preempt_install sets handlers that only raise an atomic flag. The training
 * loop checks it at step boundaries with tl_dist_preempt_agree (all ranks take the
 * max of their flags, so all stop at the same step), writes a checkpoint and
 * `tlens train` exits with status 3 (TL_EXIT_PREEMPTED, src/cli/commands.h), which
 * job scripts read as "checkpointed, not finished: requeue me". Under Slurm use `--requeue --signal=B:USR1@N` (or `USR1@N` for
 * srun-launched ranks). SIGINT stops the same way; a second SIGINT quits at once. */
int tl_preempt_install(void);
bool tl_preempt_requested(void);
int tl_preempt_signal(void);     /* the first signal received, 0 if none */
void tl_preempt_clear(void);
/* Collective: *stop = any rank has the flag set. */
int tl_dist_preempt_agree(tl_dist *d, bool *stop);

#endif
