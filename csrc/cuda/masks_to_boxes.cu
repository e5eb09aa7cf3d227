// Launcher of masks_to_boxes (kernel: csrc/kernels/masks_to_boxes.cuh).
#include "../kernels/masks_to_boxes.cuh"
#include "cuda_common.h"
#include "fastiou/ops.h"

namespace fastiou {

void masks_to_boxes_cuda(const uint8_t* masks, float* out, index_t n, index_t h, index_t w,
                         void* stream) {
  if (n <= 0) return;
  if (h > 0x7fffffff || w > 0x7fffffff) throw std::invalid_argument("masks: H and W must be < 2^31");
  masks_to_boxes_kernel<<<grid_for(n, 1), kMasksThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      masks, out, n, static_cast<int>(h), static_cast<int>(w));
  check_launch("masks_to_boxes");
}

}  // namespace fastiou
