// Launcher of the anchor grid (kernel: csrc/kernels/anchors.cuh).
#include "../kernels/anchors.cuh"
#include "cuda_common.h"
#include "fastiou/ops.h"

namespace fastiou {

template <typename T>
void anchor_grid_cuda(const T* cells, const long long* levels, const double* strides, index_t nlev,
                      double offset, T* out, index_t total, void* stream) {
  if (total <= 0 || nlev <= 0) return;
  anchor_grid_kernel<T><<<grid_for(total, kAnchorGridThreads), kAnchorGridThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      cells, levels, strides, nlev, offset, out, total);
  check_launch("anchor_grid");
}

template void anchor_grid_cuda<float>(const float*, const long long*, const double*, index_t, double, float*, index_t, void*);
template void anchor_grid_cuda<double>(const double*, const long long*, const double*, index_t, double, double*, index_t, void*);

}  // namespace fastiou
