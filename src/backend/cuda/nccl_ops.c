/* NCCL carries tlens' float-buffer collectives when tl_dist uses TL_DIST_NCCL
 * (the tl_dist_ops hook of tlens/dist_ops.h). Buffers are device memory.
 *
 * Streams: the model's kernels run on the legacy default stream; every
 * collective runs on one private non-blocking stream so it can overlap with
 * compute. Before a collective the private stream waits on an event recorded on
 * the default stream, so it sees every kernel issued so far. Blocking
 * collectives then synchronise their stream; nonblocking ones record a `done`
 * event that test/wait query. All collectives of a communicator go through the
 * same stream, which keeps them in the same order on every rank as NCCL needs.
 *
 * Unequal shards (the tl_shard_range partition gives the first n%W ranks one
 * element more) do not fit ncclReduceScatter / ncclAllGather, which want equal
 * counts. Instead each rank's range is one ncclReduce / ncclBroadcast rooted at
 * its owner, all issued inside one ncclGroupStart/End so NCCL runs them as a
 * single fused operation. */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "backend/cuda/cuda_backend.h"
#include "tlens/dist_ops.h"
#include "tlens/core.h"
#include "tlens/dist.h"

/* ---- error checks: these ops return -1 after tl_fail, naming file:line (cudaTry:
 * cuda_backend.h) ---- */

static int nccl_try_(ncclResult_t res, const char *what, const char *file, int line) {
  if (res == ncclSuccess) return 0;
  return tl_fail("%s:%d: NCCL error %s in %s", file, line, ncclGetErrorString(res), what);
}
#define ncclTry(call) do { if (nccl_try_((call), #call, __FILE__, __LINE__) != 0) return -1; } while (0)

typedef struct {
  ncclComm_t comm;
  cudaStream_t stream; /* all collectives, in issue order */
  cudaEvent_t ready;   /* recorded on the default stream before each collective */
  int rank, world;
} nccl_state;

/* A nonblocking collective in flight. Released by whichever of test (when it
 * reports done) or wait completes it. */
typedef struct {
  cudaEvent_t done;
} nccl_req;

/* Makes the collective stream wait for all work issued so far on the default stream. */
static int after_compute(nccl_state *s) {
  cudaTry(cudaEventRecord(s->ready, cudaStreamLegacy));
  cudaTry(cudaStreamWaitEvent(s->stream, s->ready, 0));
  return 0;
}

/* ---- setup ---- */

static void nccl_finalize(void *state) {
  nccl_state *s = state;
  if (!s) return;
  if (s->stream) cudaStreamSynchronize(s->stream);
  if (s->comm) ncclCommDestroy(s->comm);
  if (s->ready) cudaEventDestroy(s->ready);
  if (s->stream) cudaStreamDestroy(s->stream);
  free(s);
}

/* Local part of init: device, stream, event; rank 0 also makes the unique id. */
static int init_local(tl_dist *d, nccl_state *s, ncclUniqueId *id) {
  TL_TRY(tl_cuda_select_device(d->local_rank));
  cudaTry(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
  cudaTry(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming));
  if (d->rank == 0) ncclTry(ncclGetUniqueId(id));
  return 0;
}

static int nccl_init(tl_dist *d, void **state) {
  *state = NULL;
  nccl_state *s = tl_calloc(1, sizeof *s);
  s->rank = d->rank;
  s->world = d->world;
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  /* Agree before every step that waits for the other ranks, so a rank without a
   * GPU makes all ranks fail with its message instead of leaving them blocked. */
  int rc = init_local(d, s, &id);
  if (tl_dist_agree(d, rc) != 0) goto fail;
  if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, d->comm) != MPI_SUCCESS) {
    tl_fail("nccl: broadcasting the NCCL unique id over MPI failed");
    goto fail;
  }
  ncclResult_t res = ncclCommInitRank(&s->comm, d->world, id, d->rank);
  rc = nccl_try_(res, "ncclCommInitRank", __FILE__, __LINE__);
  if (rc != 0) s->comm = NULL;
  if (tl_dist_agree(d, rc) != 0) goto fail;
  *state = s;
  return 0;
fail:
  nccl_finalize(s);
  return -1;
}

/* ---- blocking collectives ---- */

/* buf <- sum over ranks / world. NCCL's algorithms (ring, tree) finish each
 * element's sum on one rank and copy it to the others, so every rank gets the
 * same bits, as tl_dist_allreduce_avg promises. */
static int enqueue_allreduce_avg(nccl_state *s, float *buf, size_t n) {
  TL_TRY(after_compute(s));
  ncclTry(ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, s->comm, s->stream));
  return tl_cuda_div(buf, n, (float)s->world, s->stream);
}

static int nccl_allreduce_avg(void *state, float *buf, size_t n) {
  nccl_state *s = state;
  if (n == 0) return 0;
  TL_TRY(enqueue_allreduce_avg(s, buf, n));
  cudaTry(cudaStreamSynchronize(s->stream));
  return 0;
}

static int nccl_reduce_scatter(void *state, const float *in, float *shard, size_t n, bool average) {
  nccl_state *s = state;
  size_t my_off, my_cnt;
  tl_shard_range(n, s->world, s->rank, &my_off, &my_cnt);
  TL_TRY(after_compute(s));
  ncclTry(ncclGroupStart());
  for (int r = 0; r < s->world; r++) {
    size_t off, cnt;
    tl_shard_range(n, s->world, r, &off, &cnt);
    if (cnt == 0) continue; /* every rank skips the same empty ranges */
    /* recvbuff is only written on the root, which is the only rank where it is
     * this range's destination. */
    ncclResult_t res = ncclReduce(in + off, shard, cnt, ncclFloat32, ncclSum, r, s->comm, s->stream);
    if (res != ncclSuccess) {
      ncclGroupEnd();
      return nccl_try_(res, "ncclReduce", __FILE__, __LINE__);
    }
  }
  ncclTry(ncclGroupEnd());
  if (average) TL_TRY(tl_cuda_div(shard, my_cnt, (float)s->world, s->stream));
  cudaTry(cudaStreamSynchronize(s->stream));
  return 0;
}

/* out[offset of r ..] <- rank r's shard for every r, as one group of
 * broadcasts. Works on bytes so the FSDP gather can move f16/bf16 too. When
 * the shard already sits at its place in out, the root's broadcast is in place. */
static int enqueue_allgather_bytes(nccl_state *s, const void *shard, void *out, size_t numel, size_t elem_size) {
  TL_TRY(after_compute(s));
  ncclTry(ncclGroupStart());
  for (int r = 0; r < s->world; r++) {
    size_t off, cnt;
    tl_shard_range(numel, s->world, r, &off, &cnt);
    if (cnt == 0) continue;
    char *dst = (char *)out + off * elem_size;
    ncclResult_t res = ncclBroadcast(r == s->rank ? shard : dst, dst, cnt * elem_size, ncclInt8, r, s->comm,
                                     s->stream);
    if (res != ncclSuccess) {
      ncclGroupEnd();
      return nccl_try_(res, "ncclBroadcast", __FILE__, __LINE__);
    }
  }
  ncclTry(ncclGroupEnd());
  return 0;
}

static int nccl_allgather(void *state, const float *shard, float *out, size_t n) {
  nccl_state *s = state;
  TL_TRY(enqueue_allgather_bytes(s, shard, out, n, sizeof(float)));
  cudaTry(cudaStreamSynchronize(s->stream));
  return 0;
}

/* ---- nonblocking collectives ---- */

/* Marks the end of what was just enqueued; *req stays NULL on failure. */
static int finish_enqueue(nccl_state *s, void **req) {
  nccl_req *q = tl_calloc(1, sizeof *q);
  cudaError_t err = cudaEventCreateWithFlags(&q->done, cudaEventDisableTiming);
  if (err == cudaSuccess) err = cudaEventRecord(q->done, s->stream);
  if (err != cudaSuccess) {
    if (q->done) cudaEventDestroy(q->done);
    free(q);
    return tl_cuda_try_(err, "creating the completion event", __FILE__, __LINE__);
  }
  *req = q;
  return 0;
}

static void release_req(nccl_req *q) {
  cudaEventDestroy(q->done);
  free(q);
}

static int nccl_iallreduce_avg(void *state, float *buf, size_t n, void **req) {
  nccl_state *s = state;
  *req = NULL; /* NULL is a request that is already complete */
  if (n == 0) return 0;
  TL_TRY(enqueue_allreduce_avg(s, buf, n));
  return finish_enqueue(s, req);
}

static int nccl_iallgatherv(void *state, const void *shard, void *out, size_t numel, size_t elem_size, void **req) {
  nccl_state *s = state;
  *req = NULL;
  if (numel == 0) return 0;
  TL_TRY(enqueue_allgather_bytes(s, shard, out, numel, elem_size));
  return finish_enqueue(s, req);
}

/* When the request completes, test releases it: the caller then must not wait on it. */
static int nccl_test(void *state, void *req, bool *done) {
  nccl_req *q = req;
  if (!q) {
    *done = true;
    return 0;
  }
  cudaError_t err = cudaEventQuery(q->done);
  if (err == cudaErrorNotReady) {
    *done = false;
    return 0;
  }
  release_req(q);
  *done = true;
  return tl_cuda_try_(err, "cudaEventQuery", __FILE__, __LINE__);
}

/* Blocks the host until the collective finished; later default-stream work
 * may then read the buffer. */
static int nccl_wait(void *state, void *req) {
  nccl_req *q = req;
  if (!q) return 0;
  cudaError_t err = cudaEventSynchronize(q->done);
  release_req(q);
  return tl_cuda_try_(err, "cudaEventSynchronize", __FILE__, __LINE__);
}

static const tl_dist_ops nccl_ops = {
    .name = "nccl",
    .init = nccl_init,
    .finalize = nccl_finalize,
    .allreduce_avg = nccl_allreduce_avg,
    .reduce_scatter = nccl_reduce_scatter,
    .allgather = nccl_allgather,
    .iallreduce_avg = nccl_iallreduce_avg,
    .test = nccl_test,
    .wait = nccl_wait,
    .iallgatherv = nccl_iallgatherv,
};

const tl_dist_ops *tl_nccl_dist_ops(void) { return &nccl_ops; }
