// Launchers of the pairwise and aligned box measures (kernels: csrc/kernels/box_iou.cuh).
#include "../kernels/box_iou.cuh"
#include "cuda_common.h"
#include "fastiou/ops.h"

namespace fastiou {
namespace {

template <typename T, int Mode>
void launch_pairwise(const T* b1, const T* b2, T* out, index_t batch, index_t n, index_t m,
                     int fmt, T eps, cudaStream_t stream) {
  const int threads = pairwise_threads(m);
  const index_t tiles = batch * ((n + kPairwiseRows - 1) / kPairwiseRows) * ((m + threads - 1) / threads);
  box_pairwise_kernel<T, Mode><<<grid_for(tiles, 1), threads, 0, stream>>>(b1, b2, out, batch, n, m, fmt, eps);
  check_launch("box_pairwise");
}

template <typename T, int Mode>
void launch_aligned(const T* b1, const T* b2, T* out, index_t n, int fmt, T eps, cudaStream_t stream) {
  box_aligned_kernel<T, Mode><<<grid_for(n, kElementwiseThreads), kElementwiseThreads, 0, stream>>>(b1, b2, out, n, fmt, eps);
  check_launch("box_aligned");
}

}  // namespace

template <typename T>
void box_pairwise_cuda(const T* b1, const T* b2, T* out, index_t batch, index_t n, index_t m,
                       int mode, int fmt, T eps, void* stream) {
  if (batch <= 0 || n <= 0 || m <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (mode) {
    case MODE_IOU: launch_pairwise<T, MODE_IOU>(b1, b2, out, batch, n, m, fmt, eps, s); break;
    case MODE_GIOU: launch_pairwise<T, MODE_GIOU>(b1, b2, out, batch, n, m, fmt, eps, s); break;
    case MODE_DIOU: launch_pairwise<T, MODE_DIOU>(b1, b2, out, batch, n, m, fmt, eps, s); break;
    case MODE_CIOU: launch_pairwise<T, MODE_CIOU>(b1, b2, out, batch, n, m, fmt, eps, s); break;
    default: launch_pairwise<T, MODE_IOA>(b1, b2, out, batch, n, m, fmt, eps, s); break;
  }
}

template <typename T>
void box_aligned_cuda(const T* b1, const T* b2, T* out, index_t n, int mode, int fmt, T eps,
                      void* stream) {
  if (n <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (mode) {
    case MODE_IOU: launch_aligned<T, MODE_IOU>(b1, b2, out, n, fmt, eps, s); break;
    case MODE_GIOU: launch_aligned<T, MODE_GIOU>(b1, b2, out, n, fmt, eps, s); break;
    case MODE_DIOU: launch_aligned<T, MODE_DIOU>(b1, b2, out, n, fmt, eps, s); break;
    case MODE_CIOU: launch_aligned<T, MODE_CIOU>(b1, b2, out, n, fmt, eps, s); break;
    default: launch_aligned<T, MODE_IOA>(b1, b2, out, n, fmt, eps, s); break;
  }
}

template void box_pairwise_cuda<float>(const float*, const float*, float*, index_t, index_t, index_t, int, int, float, void*);
template void box_pairwise_cuda<double>(const double*, const double*, double*, index_t, index_t, index_t, int, int, double, void*);
template void box_aligned_cuda<float>(const float*, const float*, float*, index_t, int, int, float, void*);
template void box_aligned_cuda<double>(const double*, const double*, double*, index_t, int, int, double, void*);

}  // namespace fastiou
