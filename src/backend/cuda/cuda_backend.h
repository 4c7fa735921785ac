/* The CUDA backend: the tl_backend table (include/tlens/backend.h) on one GPU,
 * plus the few device helpers the NCCL collectives and the lens step need.
 *
 * Only compiled in builds with the CUDA toolkit (TLENS_HAVE_CUDA). Everything
 * runs on the legacy default stream of the current device, so ops are ordered
 * among themselves without any synchronisation; only to_host (and argmax,
 * which returns host memory) waits for the GPU. The NCCL collectives run on a
 * stream of their own and order themselves after the default stream with
 * events (see nccl_ops.c).
 *
 * Errors inside an op (a failed launch, cuBLAS refusing its arguments) are
 * programming or hardware errors the void ops cannot report: they print
 * file:line and abort. */
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
 * device; later calls return the same table. Limits: attention supports
 * head_dim <= 256. */
const tl_backend *tl_backend_cuda(void);

/* Number of CUDA devices, 0 when there is no driver or no GPU (never fails). */
int tl_cuda_device_count(void);

/* Makes device `local_rank % count` current for this process. Fails when no GPU
 * exists, or when the backend was already initialised on another device (its
 * cuBLAS handle and buffers belong to that device). */
int tl_cuda_select_device(int local_rank);

/* x[i] /= w for i < n, on `stream` (the averaging step of the collectives). */
void tl_cuda_div(float *x, size_t n, float w, cudaStream_t stream);

/* ---- lens-step row reductions (device memory, default stream) ----
 * logits are rows of n floats. */
/* out[r, :] = log_softmax(x[r, :]); out may alias x. */
void tl_cuda_log_softmax(float *out, const float *x, int rows, int n);
/* kl[r] = sum_i p_i (log p_i - log q_i) with p = softmax(p_logits[r]), q = softmax(q_logits[r]),
 * and, when grad is non-NULL, grad[r, :] = q - p (d KL / d q_logits). */
void tl_cuda_kl_rows(float *kl, float *grad, const float *p_logits, const float *q_logits, int rows, int n);

/* Fatal checks used by the void ops: print file:line and the CUDA message, abort. */
void tl_cuda_check_(cudaError_t err, const char *what, const char *file, int line);
#define cudaCheck(call) tl_cuda_check_((call), #call, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
