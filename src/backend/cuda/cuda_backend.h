/* The CUDA backend: the tl_backend table (include/tlens/backend.h) on one GPU,
 * plus the device helpers the NCCL collectives need.
 *
 * Only compiled in builds with the CUDA toolkit (TLENS_HAVE_CUDA). Everything
 * runs on the legacy default stream of the current device, so ops are ordered
 * among themselves without any synchronisation; only to_host (and argmax,
 * which returns host memory) waits for the GPU. The NCCL collectives run on a
 * stream of their own and order themselves after the default stream with
 * events (see nccl_ops.c).
 *
 * Errors: every op returns 0, or -1 after tl_fail naming file:line and the
 * CUDA or cuBLAS message (a failed launch, cuBLAS refusing its arguments, a
 * size beyond the table's max_head_dim / max_rot_dim). The work is
 * asynchronous, so a kernel that fails while running is reported by a later op
 * that waits or launches. Only running out of device memory in alloc aborts
 * (see tlens/backend.h). */
#ifndef TLENS_CUDA_BACKEND_H
#define TLENS_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "tlens/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA backend on the current device, or NULL after tl_fail when no usable
 * GPU is present. The first call creates the cuBLAS handle on the current
 * device; later calls return the same table. Its max_head_dim and max_rot_dim
 * state the limits of the attention and rope kernels. */
const tl_backend *tl_backend_cuda(void);

/* Number of CUDA devices, 0 when there is no driver or no GPU (never fails). */
int tl_cuda_device_count(void);

/* Makes device `local_rank % count` current for this process. Fails when no GPU
 * exists, or when the backend was already initialised on another device (its
 * cuBLAS handle and buffers belong to that device). */
int tl_cuda_select_device(int local_rank);

/* x[i] /= w for i < n, on `stream` (the averaging step of the collectives).
 * 0, or -1 after tl_fail when the launch fails. */
int tl_cuda_div(float *x, size_t n, float w, cudaStream_t stream);

/* 0 when err is cudaSuccess; otherwise -1 after tl_fail("<file>:<line>: CUDA
 * error <name> (<text>) in <what>"). cudaTry returns -1 from the calling
 * function on an error. */
int tl_cuda_try_(cudaError_t err, const char *what, const char *file, int line);
#define cudaTry(call) do { if (tl_cuda_try_((call), #call, __FILE__, __LINE__) != 0) return -1; } while (0)

#ifdef __cplusplus
}
#endif

#endif
