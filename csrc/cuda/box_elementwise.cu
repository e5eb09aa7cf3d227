// Launchers of box_area and box_convert (kernels: csrc/kernels/box_elementwise.cuh).
#include "../kernels/box_elementwise.cuh"
#include "cuda_common.h"
#include "fastiou/launch.h"
#include "fastiou/ops.h"

namespace fastiou {

template <typename T>
void box_area_cuda(const T* boxes, T* out, index_t n, int fmt, void* stream) {
  if (n <= 0) return;
  box_area_kernel<T><<<grid_for(n, kElementwiseThreads), kElementwiseThreads, 0, static_cast<cudaStream_t>(stream)>>>(boxes, out, n, fmt);
  check_launch("box_area");
}

template <typename T>
void box_convert_cuda(const T* boxes, T* out, index_t n, int in_fmt, int out_fmt, void* stream) {
  if (n <= 0) return;
  box_convert_kernel<T><<<grid_for(n, kElementwiseThreads), kElementwiseThreads, 0, static_cast<cudaStream_t>(stream)>>>(boxes, out, n, in_fmt, out_fmt);
  check_launch("box_convert");
}

template void box_area_cuda<float>(const float*, float*, index_t, int, void*);
template void box_area_cuda<double>(const double*, double*, index_t, int, void*);
template void box_convert_cuda<float>(const float*, float*, index_t, int, int, void*);
template void box_convert_cuda<double>(const double*, double*, index_t, int, int, void*);

}  // namespace fastiou
