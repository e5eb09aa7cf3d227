// Launcher of resolve_overlaps (kernel: csrc/kernels/resolve_overlaps.cuh).
#include "../kernels/resolve_overlaps.cuh"
#include "fastiou/ops.h"
#include "mask_common.h"

namespace fastiou {

void resolve_overlaps_cuda(const unsigned long long* bits, const double* scores, unsigned long long* out, index_t n,
                           index_t h, index_t ww, void* stream_) {
  if (n <= 0) return;
  if (n > INT_MAX) throw std::invalid_argument("resolve_overlaps: at most 2^31 - 1 masks on the GPU");
  mask_detail::check_packed(h, ww, "resolve_overlaps");
  const index_t hw = h * ww;
  if (hw == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  StreamBlock tmp(static_cast<size_t>(n) * 8, stream, "resolve_overlaps");
  index_t* order = tmp.at<index_t>(0);
  mask_detail::rank_by_score<double>(scores, n, order, stream, "resolve_overlaps: ranking");
  resolve_overlaps_kernel<<<grid_for(hw, kResolveThreads), kResolveThreads, 0, stream>>>(bits, order, n, hw, out);
  check_launch("resolve_overlaps");
}

}  // namespace fastiou
