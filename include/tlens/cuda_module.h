/* The CUDA backend as a run-time module.
 *
 * The CUDA backend and the NCCL collectives live in their own shared library,
 * libtlens_cuda.so, built beside the tlens executable when the CUDA toolkit is
 * found, and opened with dlopen the first time a CUDA device or NCCL is asked
 * for. The tlens executable itself never links CUDA: it starts on machines
 * without the CUDA libraries (a CPU node of the same cluster, a laptop), and a
 * CPU run does not pay for them (mapping cuBLAS, cuBLASLt and NCCL costs ~150 MB
 * of resident memory at start-up). The module resolves the few tlens functions
 * it calls (tl_fail, tl_calloc_, tl_dist_agree, tl_shard_range) from the
 * executable, which exports its symbols for it.
 *
 * Where the module is looked for, first match wins:
 *   $TLENS_CUDA_MODULE (a path; set it to "none" to refuse the GPU path),
 *   <directory of the executable>/libtlens_cuda.so,
 *   <directory of the executable>/../lib/libtlens_cuda.so. */
#ifndef TLENS_CUDA_MODULE_H
#define TLENS_CUDA_MODULE_H

#include "tlens/dist_ops.h"
#include "tlens/backend.h"

#define TL_CUDA_MODULE_ABI 1 /* raised whenever this table changes */

typedef struct {
  int abi; /* TL_CUDA_MODULE_ABI of the module's build */
  const tl_backend *(*backend)(void); /* NULL + tl_fail without a usable GPU */
  int (*device_count)(void);          /* 0 without a driver or GPU; never fails */
  int (*select_device)(int local_rank);
  const tl_dist_ops *(*nccl_dist_ops)(void);
} tl_cuda_module;

/* The one symbol the module exports for the loader. */
#define TL_CUDA_MODULE_ENTRY "tl_cuda_module_get"
typedef const tl_cuda_module *(*tl_cuda_module_get_fn)(void);

/* Opens the module (once per process). NULL after tl_fail naming the paths tried
 * and why each failed (missing file, missing CUDA libraries, ABI mismatch). */
const tl_cuda_module *tl_cuda_module_load(void);

#endif
