// Launchers of mask_nms and mask_matrix_nms (kernels: csrc/kernels/mask_nms.cuh; the pipeline
// is described at its top). Temporaries are stream-ordered allocations on the caller's stream;
// mask_nms synchronises once, to return the kept count (through nms.cu's reduce).
#include "../kernels/mask_nms.cuh"
#include "fastiou/ops.h"
#include "mask_common.h"

namespace fastiou {
namespace {

// cub's item count, the bitmask grid (column blocks in gridDim.y) and the n x n IoU matrix.
index_t check_mask_nms_size(index_t n, const char* what) {
  const index_t cb = (n + kMaskNmsTile - 1) / kMaskNmsTile;
  if (n > INT_MAX || cb > 65535)
    throw std::invalid_argument(std::string(what) + ": at most " + std::to_string(65535 * kMaskNmsTile) +
                                " masks on the GPU, got " + std::to_string(n));
  return cb;
}

}  // namespace

index_t mask_nms_cuda(const unsigned long long* bits, const int* boxes, const long long* areas,
                      const double* scores, index_t n, index_t h, index_t ww, double iou_threshold,
                      index_t* keep, void* stream_) {
  if (n <= 0) return 0;
  const index_t cb = check_mask_nms_size(n, "mask_nms");
  mask_detail::check_packed(h, ww, "mask_nms");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  Layout lay;
  const size_t order_off = lay.add(static_cast<size_t>(n) * 8);
  const size_t iou_off = lay.add(static_cast<size_t>(n) * static_cast<size_t>(n) * 4);
  const size_t mask_off = lay.add(static_cast<size_t>(n) * static_cast<size_t>(cb) * 8);
  StreamBlock tmp(lay.total, stream, "mask_nms");
  index_t* order = tmp.at<index_t>(order_off);
  float* iou = tmp.at<float>(iou_off);
  unsigned long long* mask = tmp.at<unsigned long long>(mask_off);
  mask_detail::rank_by_score<double>(scores, n, order, stream, "mask_nms: ranking");
  mask_iou_cuda(bits, boxes, areas, n, bits, boxes, areas, n, h, ww, iou, stream);
  mask_nms_bitmask_kernel<<<dim3(static_cast<unsigned>(cb), static_cast<unsigned>(cb)), kMaskNmsTile, 0, stream>>>(
      iou, order, n, cb, iou_threshold, mask);
  check_launch("mask_nms: bitmask");
  return nms_bitmask_reduce_cuda(mask, n, order, keep, stream);
}

void mask_matrix_nms_cuda(const unsigned long long* bits, const int* boxes, const long long* areas,
                          const float* scores, const long long* labels, index_t n, index_t h, index_t ww, int kernel,
                          float sigma, float* out, void* stream_) {
  if (n <= 0) return;
  check_mask_nms_size(n, "mask_matrix_nms");
  mask_detail::check_packed(h, ww, "mask_matrix_nms");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  Layout lay;
  const size_t order_off = lay.add(static_cast<size_t>(n) * 8);
  const size_t slab_off = lay.add(static_cast<size_t>(n) * 8);
  const size_t comp_off = lay.add(static_cast<size_t>(n) * 4);
  const size_t iou_off = lay.add(static_cast<size_t>(n) * static_cast<size_t>(n) * 4);
  StreamBlock tmp(lay.total, stream, "mask_matrix_nms");
  index_t* order = tmp.at<index_t>(order_off);
  long long* slab = tmp.at<long long>(slab_off);
  float* comp = tmp.at<float>(comp_off);
  float* iou = tmp.at<float>(iou_off);
  mask_detail::rank_by_score<float>(scores, n, order, stream, "mask_matrix_nms: ranking");
  mask_rank_labels_kernel<<<grid_for(n, kMaskLabelThreads), kMaskLabelThreads, 0, stream>>>(labels, order, slab, n);
  check_launch("mask_matrix_nms: labels");
  mask_iou_cuda(bits, boxes, areas, n, bits, boxes, areas, n, h, ww, iou, stream);
  const unsigned grid = grid_for(n * 32, kMaskMatrixThreads);  // a warp per mask
  mask_matrix_comp_kernel<<<grid, kMaskMatrixThreads, 0, stream>>>(iou, order, slab, n, comp);
  check_launch("mask_matrix_nms: compensation");
  mask_matrix_decay_kernel<<<grid, kMaskMatrixThreads, 0, stream>>>(iou, order, slab, n, comp, scores, kernel, sigma,
                                                                    out);
  check_launch("mask_matrix_nms: decay");
}

}  // namespace fastiou
