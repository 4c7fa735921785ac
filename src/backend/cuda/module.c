/* The entry point of libtlens_cuda.so: the table the loader in
 * src/backend/cuda_module.c looks up with dlsym. */
#include "backend/cuda/cuda_backend.h"
#include "tlens/cuda_module.h"

__attribute__((visibility("default"))) const tl_cuda_module *tl_cuda_module_get(void) {
  static const tl_cuda_module m = {
      .abi = TL_CUDA_MODULE_ABI,
      .backend = tl_backend_cuda,
      .device_count = tl_cuda_device_count,
      .select_device = tl_cuda_select_device,
      .nccl_dist_ops = tl_nccl_dist_ops,
  };
  return &m;
}
