/* The hook a device backend fills to carry tlens' float-buffer collectives.
 *
 * dist.c dispatches tl_dist_allreduce_avg, tl_dist_reduce_scatter,
 * tl_dist_allgather, the nonblocking average and the FSDP gathers to these
 * functions when tl_dist.backend != TL_DIST_MPI. The buffers are then device
 * pointers. The NCCL implementation (src/backend/cuda) provides
 * tl_nccl_dist_ops(); its init uses d->comm (MPI) to share the NCCL unique id.
 * Each function returns 0 / -1 after tl_fail, like the rest of tlens. */
#ifndef TLENS_DIST_OPS_H
#define TLENS_DIST_OPS_H

#include "tlens/dist.h"

typedef struct tl_dist_ops {
  const char *name;
  int (*init)(tl_dist *d, void **state);
  void (*finalize)(void *state);
  int (*allreduce_avg)(void *state, float *buf, size_t n);
  int (*reduce_scatter)(void *state, const float *in, float *shard, size_t n, bool average);
  int (*allgather)(void *state, const float *shard, float *out, size_t n);
  /* nonblocking average: start returns an opaque request that test/wait complete */
  int (*iallreduce_avg)(void *state, float *buf, size_t n, void **req);
  int (*test)(void *state, void *req, bool *done);
  int (*wait)(void *state, void *req);
  /* FSDP: gather the shards (tl_shard_range layout) of `numel` elements into out */
  int (*iallgatherv)(void *state, const void *shard, void *out, size_t numel, size_t elem_size, void **req);
} tl_dist_ops;

/* In the CUDA module (libtlens_cuda.so, see tlens/cuda_module.h). */
const tl_dist_ops *tl_nccl_dist_ops(void);

#endif
