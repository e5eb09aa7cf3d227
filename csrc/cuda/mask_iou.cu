// Launcher of mask_iou (kernels: csrc/kernels/mask_iou.cuh).
#include "../kernels/mask_iou.cuh"
#include "fastiou/ops.h"
#include "mask_common.h"

namespace fastiou {

void mask_iou_cuda(const unsigned long long* bits1, const int* boxes1, const long long* areas1, index_t n,
                   const unsigned long long* bits2, const int* boxes2, const long long* areas2, index_t m,
                   index_t h, index_t ww, float* out, void* stream_) {
  if (n <= 0 || m <= 0) return;
  mask_detail::check_packed(h, ww, "mask_iou");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  int dev = 0, sms = 0;
  check_cuda(cudaGetDevice(&dev), "mask_iou");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "mask_iou");
  const index_t tiles = ((n + kMaskIouTile - 1) / kMaskIouTile) * ((m + kMaskIouTile - 1) / kMaskIouTile);
  const index_t splits = mask_iou_splits(n, m, h, ww, sms);
  const dim3 grid(grid_for(tiles, 1), static_cast<unsigned>(splits));
  if (splits == 1) {  // each tile writes its IoUs
    mask_iou_kernel<<<grid, kMaskIouThreads, 0, stream>>>(bits1, boxes1, areas1, n, bits2, boxes2, areas2, m,
                                                         static_cast<int>(h), static_cast<int>(ww), nullptr, out);
    check_launch("mask_iou");
    return;
  }
  // Few tiles (small n * m): split each tile's words over gridDim.y blocks, counts meet in a
  // zeroed n * m buffer (at most 1.5 * SMs tiles, so a few MB).
  const size_t pairs = static_cast<size_t>(n) * static_cast<size_t>(m);
  StreamBlock tmp(pairs * 8, stream, "mask_iou");
  unsigned long long* counts = tmp.at<unsigned long long>(0);
  check_cuda(cudaMemsetAsync(counts, 0, pairs * 8, stream), "mask_iou");
  mask_iou_kernel<<<grid, kMaskIouThreads, 0, stream>>>(bits1, boxes1, areas1, n, bits2, boxes2, areas2, m,
                                                       static_cast<int>(h), static_cast<int>(ww), counts, nullptr);
  check_launch("mask_iou");
  mask_iou_finalize_kernel<<<grid_for(n * m, kMaskIouFinalizeThreads), kMaskIouFinalizeThreads, 0, stream>>>(
      counts, boxes1, areas1, n, boxes2, areas2, m, out);
  check_launch("mask_iou: finalize");
}

}  // namespace fastiou
