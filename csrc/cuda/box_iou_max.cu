// Launchers of box_iou_max and match_boxes (kernels: csrc/kernels/box_iou_max.cuh).
#include "../kernels/box_iou_max.cuh"
#include "cuda_common.h"
#include "fastiou/ops.h"

namespace fastiou {
namespace {

dim3 iou_max_grid(index_t n, index_t batch) {
  if (batch > 65535) throw std::runtime_error("box_iou_max: at most 65535 items per call on the GPU");
  return dim3(static_cast<unsigned>((n + kIouMaxThreads - 1) / kIouMaxThreads), static_cast<unsigned>(batch));
}

}  // namespace

template <typename T>
void box_iou_max_cuda(const T* boxes1, index_t batch1, const T* boxes2, const long long* counts,
                      index_t batch, index_t n, index_t m, T* values, long long* indices,
                      void* stream) {
  if (batch <= 0 || n <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  iou_max_rows_kernel<T><<<iou_max_grid(n, batch), kIouMaxThreads, 0, s>>>(
      boxes1, batch1, boxes2, counts, n, m, values, indices, nullptr, 0, T(0), T(0));
  check_launch("box_iou_max");
}

template <typename T>
void match_boxes_cuda(const T* anchors, index_t batch1, const T* gt, const long long* counts,
                      index_t batch, index_t n, index_t m, double high, double low, bool lowq,
                      long long* matches, void* stream) {
  if (batch <= 0 || n <= 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  Layout lay;
  const size_t off_best = lay.add(sizeof(T) * batch * n);
  const size_t off_col = lay.add(lowq ? sizeof(unsigned long long) * batch * (m > 0 ? m : 1) : 0);
  StreamBlock work(lay.total, s, "match_boxes");
  unsigned long long* colmax = lowq ? work.at<unsigned long long>(off_col) : nullptr;
  if (lowq) check_cuda(cudaMemsetAsync(colmax, 0, sizeof(unsigned long long) * batch * (m > 0 ? m : 1), s), "match_boxes");
  iou_max_rows_kernel<T><<<iou_max_grid(n, batch), kIouMaxThreads, 0, s>>>(
      anchors, batch1, gt, counts, n, m, work.at<T>(off_best), matches, colmax, 1,
      static_cast<T>(low), static_cast<T>(high));
  check_launch("match_boxes");
  if (!lowq) return;
  iou_lowq_kernel<T><<<iou_max_grid(n, batch), kIouMaxThreads, 0, s>>>(anchors, batch1, gt, counts, n, m,
                                                                        colmax, matches);
  check_launch("match_boxes");
}

template void box_iou_max_cuda<float>(const float*, index_t, const float*, const long long*, index_t, index_t, index_t, float*, long long*, void*);
template void box_iou_max_cuda<double>(const double*, index_t, const double*, const long long*, index_t, index_t, index_t, double*, long long*, void*);
template void match_boxes_cuda<float>(const float*, index_t, const float*, const long long*, index_t, index_t, index_t, double, double, bool, long long*, void*);
template void match_boxes_cuda<double>(const double*, index_t, const double*, const long long*, index_t, index_t, index_t, double, double, bool, long long*, void*);

}  // namespace fastiou
