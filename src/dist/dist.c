/* The communicator: MPI setup, collectives on host buffers, error agreement and
 * the FSDP layer gather. See include/tlens/dist.h for the contracts. */
#include "tlens/dist.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/cuda_module.h"
#include "tlens/dist_ops.h"
#include "tlens/core.h"

/* Turns an MPI return code into a tlens error naming the call. */
static int mpi_check(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return 0;
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error code %d", rc);
  return tl_fail("dist: %s failed: %s", what, s);
}
/* ---- collective timeout (--nccl_timeout) ----
 * A blocking MPI call cannot be interrupted, so a watchdog thread ends the process
 * when one has run longer than the timeout: a rank that died or hangs must not
 * keep the others waiting for ever. The deadline is set on entry and cleared on
 * return of every blocking call below (watch_begin / watch_end). */
static _Atomic long long watch_deadline_ms = 0; /* 0: nothing in flight */
static const char *_Atomic watch_what = NULL;
static double watch_timeout_s = 0;
static int watch_rank = 0;
static pthread_t watch_thread;
static bool watch_started = false;

static long long now_ms(void) { return (long long)(tl_now() * 1000.0); }

static void *watchdog(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long long dl = atomic_load(&watch_deadline_ms);
    if (dl > 0 && now_ms() > dl) {
      const char *what = atomic_load(&watch_what);
      fprintf(stderr,
              "tlens%s%.0d%s: error: %s did not complete within %g s (--nccl_timeout): another rank has died or "
              "stopped; exiting\n",
              watch_rank ? "[" : "", watch_rank, watch_rank ? "]" : "", what ? what : "a collective", watch_timeout_s);
      fflush(stderr);
      _exit(1);
    }
  }
  return NULL;
}

static void watch_begin(const char *what) {
  if (watch_timeout_s <= 0) return;
  atomic_store(&watch_what, what);
  atomic_store(&watch_deadline_ms, now_ms() + (long long)(watch_timeout_s * 1000.0));
}
static int watch_end(int rc) {
  if (watch_timeout_s > 0) atomic_store(&watch_deadline_ms, 0);
  return rc;
}

int tl_dist_set_timeout(tl_dist *d, double seconds) {
  if (!(seconds > 0) || seconds > 1e9) return tl_fail("collective timeout %g s: expected 0 < s <= 1e9", seconds);
  watch_timeout_s = seconds;
  watch_rank = d->rank;
  if (d->world > 1 && !watch_started) {
    if (pthread_create(&watch_thread, NULL, watchdog, NULL) != 0) return tl_fail("cannot start the collective watchdog");
    pthread_detach(watch_thread);
    watch_started = true;
  }
  return 0;
}

/* A blocking MPI call under the watchdog, its return code checked. */
#define MPI_CALL(call, what) (watch_begin(what), watch_end(mpi_check((call), what)))
#define MPI_TRY(call) do { if (MPI_CALL(call, #call) != 0) return -1; } while (0)

/* Elements per MPI call in the chunked average; MPI counts are ints. */
#define TL_DIST_MAX_CHUNK ((size_t)1 << 30)

int tl_dist_init(tl_dist *d, int *argc, char ***argv) {
  memset(d, 0, sizeof *d);
  d->comm = MPI_COMM_NULL;
  d->node_comm = MPI_COMM_NULL;
  for (int k = 0; k < TL_DIST_MAX_INFLIGHT; k++) d->req_comm[k] = MPI_COMM_NULL;
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (finalized) return tl_fail("dist: MPI was already finalized in this process");
  if (!inited) {
    int provided = 0;
    /* FUNNELED: OpenMP threads compute, only the main thread talks to MPI. */
    MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    d->owns_mpi = true;
    if (provided < MPI_THREAD_FUNNELED)
      tl_warn("dist: MPI provides thread level %d, below MPI_THREAD_FUNNELED", provided);
  }
  /* A private communicator keeps our traffic apart from any other library's, and
   * lets us ask for error codes instead of MPI aborting the job. */
  MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm));
  MPI_TRY(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN));
  MPI_TRY(MPI_Comm_rank(d->comm, &d->rank));
  MPI_TRY(MPI_Comm_size(d->comm, &d->world));
  MPI_TRY(MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &d->node_comm));
  MPI_TRY(MPI_Comm_rank(d->node_comm, &d->local_rank));
  MPI_TRY(MPI_Comm_size(d->node_comm, &d->local_world));
  for (int k = 0; k < TL_DIST_MAX_INFLIGHT; k++) {
    MPI_TRY(MPI_Comm_dup(d->comm, &d->req_comm[k]));
    MPI_TRY(MPI_Comm_set_errhandler(d->req_comm[k], MPI_ERRORS_RETURN));
  }
  d->backend = TL_DIST_MPI;
  d->max_chunk = TL_DIST_MAX_CHUNK;
  tl_log_set_rank(d->rank);
  return 0;
}

void tl_dist_finalize(tl_dist *d) {
  if (d->ops && d->ops->finalize) d->ops->finalize(d->backend_state);
  d->ops = NULL;
  d->backend_state = NULL;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) {
    for (int k = 0; k < TL_DIST_MAX_INFLIGHT; k++)
      if (d->req_comm[k] != MPI_COMM_NULL) MPI_Comm_free(&d->req_comm[k]);
    if (d->node_comm != MPI_COMM_NULL) MPI_Comm_free(&d->node_comm);
    if (d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
    if (d->owns_mpi) MPI_Finalize();
  }
  d->owns_mpi = false;
}

int tl_dist_set_backend(tl_dist *d, tl_dist_backend b) {
  if (b == d->backend) return 0;
  if (b == TL_DIST_MPI) {
    if (d->ops && d->ops->finalize) d->ops->finalize(d->backend_state);
    d->ops = NULL;
    d->backend_state = NULL;
    d->backend = TL_DIST_MPI;
    return 0;
  }
  if (b != TL_DIST_NCCL) return tl_fail("dist: unknown backend %d", (int)b);
  const tl_cuda_module *cm = tl_cuda_module_load(); /* NCCL lives in the CUDA module */
  if (!cm) return -1;
  const tl_dist_ops *ops = cm->nccl_dist_ops();
  void *state = NULL;
  if (ops->init(d, &state) != 0) return -1;
  d->ops = ops;
  d->backend_state = state;
  d->backend = b;
  return 0;
}

int tl_dist_barrier(tl_dist *d) {
  MPI_TRY(MPI_Barrier(d->comm));
  return 0;
}

int tl_dist_bcast(tl_dist *d, void *buf, size_t bytes, int root) {
  if (root < 0 || root >= d->world) return tl_fail("dist: broadcast root %d is not a rank (world %d)", root, d->world);
  char *p = buf;
  for (size_t done = 0; done < bytes;) {
    size_t n = bytes - done < ((size_t)1 << 30) ? bytes - done : ((size_t)1 << 30);
    MPI_TRY(MPI_Bcast(p + done, (int)n, MPI_BYTE, root, d->comm));
    done += n;
  }
  return 0;
}

int tl_dist_bcast_str(tl_dist *d, char **s, int root) {
  uint64_t len = 0;
  if (d->rank == root) len = strlen(*s);
  TL_TRY(tl_dist_bcast(d, &len, sizeof len, root));
  if (d->rank != root) {
    free(*s);
    *s = tl_malloc(len + 1);
    (*s)[len] = 0;
  }
  return tl_dist_bcast(d, *s, len, root);
}

static MPI_Op mpi_op(tl_red_op op) {
  return op == TL_RED_MAX ? MPI_MAX : op == TL_RED_MIN ? MPI_MIN : MPI_SUM;
}

int tl_dist_allreduce_f64(tl_dist *d, double *v, int n, tl_red_op op) {
  MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, mpi_op(op), d->comm));
  return 0;
}

int tl_dist_allreduce_i64(tl_dist *d, int64_t *v, int n, tl_red_op op) {
  MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, mpi_op(op), d->comm));
  return 0;
}

/* counts/displs of the balanced partition of n elements, as MPI ints. */
static int fill_partition(const tl_dist *d, size_t n, int *counts, int *displs, const char *what) {
  if (n > INT_MAX) return tl_fail("dist: %s of %zu elements exceeds MPI's int count; split the buffer", what, n);
  for (int r = 0; r < d->world; r++) {
    size_t off, cnt;
    tl_shard_range(n, d->world, r, &off, &cnt);
    counts[r] = (int)cnt;
    displs[r] = (int)off;
  }
  return 0;
}

/* Each chunk: reduce-scatter in place (this rank's summed range lands at the start
 * of the chunk), average it, move it to its own offset, all-gather in place. Every
 * element is summed once, on its owner, so all ranks receive identical bits. */
int tl_dist_allreduce_avg(tl_dist *d, float *buf, size_t n) {
  if (d->ops) return d->ops->allreduce_avg(d->backend_state, buf, n);
  if (d->world == 1) return 0;
  int *counts = tl_malloc(sizeof(int) * d->world), *displs = tl_malloc(sizeof(int) * d->world);
  int rc = 0;
  size_t chunk = d->max_chunk ? d->max_chunk : TL_DIST_MAX_CHUNK;
  for (size_t start = 0; start < n && rc == 0; start += chunk) {
    size_t cn = n - start < chunk ? n - start : chunk;
    float *c = buf + start;
    if ((rc = fill_partition(d, cn, counts, displs, "average")) != 0) break;
    int me = d->rank;
    rc = MPI_CALL(MPI_Reduce_scatter(MPI_IN_PLACE, c, counts, MPI_FLOAT, MPI_SUM, d->comm), "MPI_Reduce_scatter");
    if (rc) break;
    float w = (float)d->world;
    for (int i = 0; i < counts[me]; i++) c[i] /= w;
    if (displs[me] != 0) memmove(c + displs[me], c, sizeof(float) * counts[me]);
    rc = MPI_CALL(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, c, counts, displs, MPI_FLOAT, d->comm),
                   "MPI_Allgatherv");
  }
  free(counts);
  free(displs);
  return rc;
}

int tl_dist_reduce_scatter(tl_dist *d, const float *in, float *shard, size_t n, bool average) {
  if (d->ops) return d->ops->reduce_scatter(d->backend_state, in, shard, n, average);
  int *counts = tl_malloc(sizeof(int) * d->world), *displs = tl_malloc(sizeof(int) * d->world);
  int rc = fill_partition(d, n, counts, displs, "reduce-scatter");
  if (rc == 0)
    rc = MPI_CALL(MPI_Reduce_scatter(in, shard, counts, MPI_FLOAT, MPI_SUM, d->comm), "MPI_Reduce_scatter");
  if (rc == 0 && average) {
    float w = (float)d->world;
    for (int i = 0; i < counts[d->rank]; i++) shard[i] /= w;
  }
  free(counts);
  free(displs);
  return rc;
}

int tl_dist_allgather(tl_dist *d, const float *shard, float *out, size_t n) {
  if (d->ops) return d->ops->allgather(d->backend_state, shard, out, n);
  int *counts = tl_malloc(sizeof(int) * d->world), *displs = tl_malloc(sizeof(int) * d->world);
  int rc = fill_partition(d, n, counts, displs, "all-gather");
  if (rc == 0) {
    /* The caller may hand us its shard already in place inside out. */
    float *mine = out + displs[d->rank];
    if (shard != mine && counts[d->rank] > 0) memcpy(mine, shard, sizeof(float) * counts[d->rank]);
    rc = MPI_CALL(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, counts, displs, MPI_FLOAT, d->comm),
                   "MPI_Allgatherv");
  }
  free(counts);
  free(displs);
  return rc;
}

/* ---- nonblocking average: the same two steps per chunk, as a small state machine
 * that tl_dist_test advances: phase 1 = reduce-scatter in flight, phase 2 =
 * all-gather in flight. Ranks reach each next step at different moments, and MPI
 * requires collectives on one communicator to start in the same order on every
 * rank, so each request runs on a communicator of its own: slots are taken in
 * call order and released in tl_dist_wait, both the same on every rank. ---- */
static int ireq_start_chunk(tl_dist_req *r) {
  tl_dist *d = r->d;
  size_t chunk = d->max_chunk ? d->max_chunk : TL_DIST_MAX_CHUNK;
  r->chunk_n = r->n - r->chunk_start < chunk ? r->n - r->chunk_start : chunk;
  TL_TRY(fill_partition(d, r->chunk_n, r->counts, r->displs, "average"));
  MPI_TRY(MPI_Ireduce_scatter(MPI_IN_PLACE, r->buf + r->chunk_start, r->counts, MPI_FLOAT, MPI_SUM,
                              d->req_comm[r->slot], &r->req));
  r->phase = 1;
  return 0;
}

static void ireq_release(tl_dist_req *r) {
  free(r->counts);
  free(r->displs);
  r->counts = r->displs = NULL;
  r->phase = 0;
}

int tl_dist_iallreduce_avg(tl_dist *d, float *buf, size_t n, tl_dist_req *r) {
  memset(r, 0, sizeof *r);
  r->d = d;
  r->buf = buf;
  r->n = n;
  r->req = MPI_REQUEST_NULL;
  r->slot = -1;
  if (d->ops) {
    r->phase = 1;
    return d->ops->iallreduce_avg(d->backend_state, buf, n, &r->backend_req);
  }
  if (d->world == 1 || n == 0) return 0; /* nothing to exchange: already done */
  int slot = d->req_next;
  if (d->req_busy[slot])
    return tl_fail("dist: more than %d nonblocking averages started without tl_dist_wait", TL_DIST_MAX_INFLIGHT);
  d->req_busy[slot] = true;
  d->req_next = (slot + 1) % TL_DIST_MAX_INFLIGHT;
  r->slot = slot;
  r->counts = tl_malloc(sizeof(int) * d->world);
  r->displs = tl_malloc(sizeof(int) * d->world);
  if (ireq_start_chunk(r) != 0) {
    ireq_release(r);
    d->req_busy[slot] = false;
    r->slot = -1;
    return -1;
  }
  return 0;
}

/* One step of the state machine once the current MPI request has completed. */
static int ireq_advance(tl_dist_req *r) {
  tl_dist *d = r->d;
  float *c = r->buf + r->chunk_start;
  int me = d->rank;
  if (r->phase == 1) {
    float w = (float)d->world;
    for (int i = 0; i < r->counts[me]; i++) c[i] /= w;
    if (r->displs[me] != 0) memmove(c + r->displs[me], c, sizeof(float) * r->counts[me]);
    MPI_TRY(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, c, r->counts, r->displs, MPI_FLOAT,
                            d->req_comm[r->slot], &r->req));
    r->phase = 2;
    return 0;
  }
  r->chunk_start += r->chunk_n;
  if (r->chunk_start >= r->n) {
    ireq_release(r);
    return 0;
  }
  return ireq_start_chunk(r);
}

int tl_dist_test(tl_dist_req *r, bool *done) {
  if (r->d && r->d->ops && r->phase) {
    bool fin = false;
    if (r->d->ops->test(r->d->backend_state, r->backend_req, &fin) != 0) return -1;
    if (fin) r->phase = 0;
    if (done) *done = fin;
    return 0;
  }
  while (r->phase) {
    int flag = 0;
    if (mpi_check(MPI_Test(&r->req, &flag, MPI_STATUS_IGNORE), "MPI_Test") != 0) {
      ireq_release(r);
      return -1;
    }
    if (!flag) break;
    if (ireq_advance(r) != 0) {
      ireq_release(r);
      return -1;
    }
  }
  if (done) *done = r->phase == 0;
  return 0;
}

int tl_dist_wait(tl_dist_req *r) {
  if (r->d && r->d->ops && r->phase) {
    r->phase = 0;
    return r->d->ops->wait(r->d->backend_state, r->backend_req);
  }
  int rc = 0;
  while (r->phase && rc == 0) {
    rc = MPI_CALL(MPI_Wait(&r->req, MPI_STATUS_IGNORE), "MPI_Wait");
    if (rc == 0) rc = ireq_advance(r);
  }
  ireq_release(r);
  if (r->slot >= 0) r->d->req_busy[r->slot] = false;
  r->slot = -1;
  return rc;
}

/* ---- error agreement ---- */
int tl_dist_agree(tl_dist *d, int local_rc) {
  int mine = local_rc == 0 ? INT_MAX : d->rank, first = INT_MAX;
  if (MPI_CALL(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, d->comm), "MPI_Allreduce") != 0) return -1;
  if (first == INT_MAX) return 0;
  char msg[1024];
  memset(msg, 0, sizeof msg);
  if (d->rank == first) snprintf(msg, sizeof msg, "%s", tl_errmsg());
  if (MPI_CALL(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, d->comm), "MPI_Bcast") != 0) return -1;
  msg[sizeof msg - 1] = 0;
  if (local_rc == 0) tl_fail("rank %d: %s", first, msg);
  return -1;
}

bool tl_dist_all_ok(tl_dist *d, bool local_ok) {
  if (!local_ok && tl_errmsg()[0] == 0) tl_fail("rank %d reported a failure", d->rank);
  return tl_dist_agree(d, local_ok ? 0 : -1) == 0;
}

int tl_dist_preempt_agree(tl_dist *d, bool *stop) {
  int64_t f = tl_preempt_requested() ? 1 : 0;
  TL_TRY(tl_dist_allreduce_i64(d, &f, 1, TL_RED_MAX));
  *stop = f != 0;
  return 0;
}

/* ---- FSDP ---- */
enum { SLOT_EMPTY = 0, SLOT_IN_FLIGHT = 1, SLOT_READY = 2 };

struct tl_fsdp {
  tl_dist *d;
  int nlayers;
  size_t *numel, elem_size;
  const void **shards;
  MPI_Datatype elem; /* elem_size bytes, so counts are in elements */
  void *buf[2];      /* double buffer, each as large as the largest layer */
  int slot_layer[2], slot_state[2];
  MPI_Request req[2];
  void *backend_req[2];
  int *counts[2], *displs[2]; /* must stay valid while a gather is in flight */
};

int tl_fsdp_create(tl_fsdp **out, tl_dist *d, int nlayers, const size_t *numel, size_t elem_size,
                   const void *const *shards) {
  *out = NULL;
  if (nlayers <= 0) return tl_fail("fsdp: need at least one layer, got %d", nlayers);
  if (elem_size == 0 || elem_size > 16) return tl_fail("fsdp: element size %zu is not 1..16 bytes", elem_size);
  size_t maxn = 0;
  for (int l = 0; l < nlayers; l++) {
    if (numel[l] > INT_MAX)
      return tl_fail("fsdp: layer %d has %zu elements, above MPI's int count", l, numel[l]);
    if (numel[l] > maxn) maxn = numel[l];
  }
  tl_fsdp *f = tl_calloc(1, sizeof *f);
  f->d = d;
  f->nlayers = nlayers;
  f->elem_size = elem_size;
  f->numel = tl_malloc(sizeof(size_t) * nlayers);
  memcpy(f->numel, numel, sizeof(size_t) * nlayers);
  f->shards = tl_malloc(sizeof(void *) * nlayers);
  memcpy(f->shards, shards, sizeof(void *) * nlayers);
  f->elem = MPI_DATATYPE_NULL;
  if (!d->ops) {
    if (mpi_check(MPI_Type_contiguous((int)elem_size, MPI_BYTE, &f->elem), "MPI_Type_contiguous") != 0 ||
        mpi_check(MPI_Type_commit(&f->elem), "MPI_Type_commit") != 0) {
      tl_fsdp_free(f);
      return -1;
    }
  }
  for (int s = 0; s < 2; s++) {
    f->buf[s] = tl_aligned_alloc(maxn * elem_size > 0 ? maxn * elem_size : 64);
    f->slot_layer[s] = -1;
    f->req[s] = MPI_REQUEST_NULL;
    f->counts[s] = tl_malloc(sizeof(int) * d->world);
    f->displs[s] = tl_malloc(sizeof(int) * d->world);
  }
  *out = f;
  return 0;
}

int tl_fsdp_prefetch(tl_fsdp *f, int layer) {
  if (layer < 0 || layer >= f->nlayers) return tl_fail("fsdp: layer %d out of range 0..%d", layer, f->nlayers - 1);
  int s = layer % 2;
  if (f->slot_layer[s] == layer && f->slot_state[s] != SLOT_EMPTY) return 0; /* already there or coming */
  if (f->slot_state[s] == SLOT_IN_FLIGHT)
    return tl_fail("fsdp: prefetch of layer %d while layer %d is still in flight in the same buffer; wait on it first",
                   layer, f->slot_layer[s]);
  tl_dist *d = f->d;
  size_t n = f->numel[layer];
  if (d->ops) {
    size_t off, cnt;
    tl_shard_range(n, d->world, d->rank, &off, &cnt);
    TL_TRY(d->ops->iallgatherv(d->backend_state, f->shards[layer], f->buf[s], n, f->elem_size, &f->backend_req[s]));
  } else {
    TL_TRY(fill_partition(d, n, f->counts[s], f->displs[s], "fsdp gather"));
    MPI_TRY(MPI_Iallgatherv(f->shards[layer], f->counts[s][d->rank], f->elem, f->buf[s], f->counts[s],
                            f->displs[s], f->elem, d->comm, &f->req[s]));
  }
  f->slot_layer[s] = layer;
  f->slot_state[s] = SLOT_IN_FLIGHT;
  return 0;
}

int tl_fsdp_wait(tl_fsdp *f, int layer, const void **full) {
  *full = NULL;
  TL_TRY(tl_fsdp_prefetch(f, layer));
  int s = layer % 2;
  if (f->slot_state[s] == SLOT_IN_FLIGHT) {
    f->slot_state[s] = SLOT_EMPTY; /* on failure the buffer holds nothing usable */
    if (f->d->ops) {
      TL_TRY(f->d->ops->wait(f->d->backend_state, f->backend_req[s]));
    } else {
      MPI_TRY(MPI_Wait(&f->req[s], MPI_STATUS_IGNORE));
    }
    f->slot_state[s] = SLOT_READY;
  }
  if (tl_fault("fsdp_gather", layer)) {
    f->slot_state[s] = SLOT_EMPTY;
    return tl_fail("fsdp: the all-gather of layer %d failed (injected by TLENS_FAULT)", layer);
  }
  *full = f->buf[s];
  return 0;
}

void tl_fsdp_free(tl_fsdp *f) {
  if (!f) return;
  for (int s = 0; s < 2; s++) {
    /* A gather still in flight must finish before its buffer goes away. */
    if (f->slot_state[s] == SLOT_IN_FLIGHT) {
      if (f->d->ops) f->d->ops->wait(f->d->backend_state, f->backend_req[s]);
      else MPI_Wait(&f->req[s], MPI_STATUS_IGNORE);
    }
    free(f->buf[s]);
    free(f->counts[s]);
    free(f->displs[s]);
  }
  if (f->elem != MPI_DATATYPE_NULL) MPI_Type_free(&f->elem);
  free(f->numel);
  free(f->shards);
  free(f);
}
