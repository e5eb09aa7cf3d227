// Launcher of matrix_nms (kernels: csrc/kernels/matrix_nms.cuh): the boxes ranked and ordered
// class-major by nms.cu's ranking stage (nms_common.h), then two passes, a warp per box.
#include "../kernels/matrix_nms.cuh"
#include "fastiou/ops.h"
#include "nms_common.h"

namespace fastiou {

using namespace nms_launch;

template <typename T>
void matrix_nms_cuda(const T* boxes, const T* scores, const long long* labels, index_t n, int kernel, T sigma,
                     T* out, void* stream_) {
  if (n <= 0) return;
  check_nms_size(n, "matrix_nms");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  Layout lay;
  const RankLayout rl = plan_rank<T>(lay, n, true, true, stream);
  const size_t comp_off = lay.add(static_cast<size_t>(n) * sizeof(T));
  StreamBlock blk(lay.total, stream, "matrix_nms");
  const Ranked<T> rk = run_rank<T, T>(blk, rl, boxes, scores, labels, n, true, stream);
  T* comp = blk.at<T>(comp_off);
  const unsigned grid = grid_for(n * 32, kMatrixNmsThreads);  // a warp per box
  matrix_nms_comp_kernel<T><<<grid, kMatrixNmsThreads, 0, stream>>>(rk.sboxes, rk.cls, n, comp);
  check_launch("matrix_nms: compensation");
  matrix_nms_decay_kernel<T><<<grid, kMatrixNmsThreads, 0, stream>>>(rk.sboxes, rk.cls, n, comp, scores, rk.src,
                                                                      kernel, sigma, out);
  check_launch("matrix_nms: decay");
}

template void matrix_nms_cuda<float>(const float*, const float*, const long long*, index_t, int, float, float*,
                                     void*);
template void matrix_nms_cuda<double>(const double*, const double*, const long long*, index_t, int, double,
                                      double*, void*);

}  // namespace fastiou
