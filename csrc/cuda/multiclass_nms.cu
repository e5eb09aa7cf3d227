// Launcher of multiclass_nms (kernels: csrc/kernels/multiclass_nms.cuh).
//
// No host synchronisation and, given a workspace, no allocation: the whole call is a fixed
// sequence of launches on `stream` (CUDA-graph capturable). The workspace holds one group of
// images (multiclass_nms_workspace_bytes); larger batches run group after group through it.
#include <string>

#include "../kernels/multiclass_nms.cuh"
#include "cuda_common.h"
#include "fastiou/ops.h"

namespace fastiou {

size_t multiclass_nms_workspace_bytes(index_t images, index_t n, index_t c, index_t k) {
  return mc_layout(images, n, c, k).total;
}

template <typename T>
void multiclass_nms_cuda(const T* boxes, const T* scores, index_t batch, index_t n, index_t c, index_t cb,
                         double iou_threshold, double score_threshold, index_t max_per_class, index_t k,
                         index_t* num, T* out_boxes, T* out_scores, index_t* out_classes, index_t* out_indices,
                         void* workspace, size_t workspace_bytes, void* stream_) {
  if (batch <= 0 || k <= 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  if (n < 0 || c <= 0) throw std::invalid_argument("multiclass_nms: needs at least one class");
  if (c > 0x7fffffff) throw std::invalid_argument("multiclass_nms: at most 2^31 - 1 classes");
  const size_t one = multiclass_nms_workspace_bytes(1, n, c, k);
  void* owned = nullptr;  // no workspace given: one image's worth, stream-ordered (still capturable)
  if (workspace == nullptr) {
    const cudaError_t err = cudaMallocAsync(&owned, one, stream);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("multiclass_nms: cannot allocate " + std::to_string(one) +
                               " bytes of GPU workspace (" + cudaGetErrorString(err) + ")");
    }
    workspace = owned;
    workspace_bytes = one;
  }
  struct Free {
    void* p;
    cudaStream_t s;
    ~Free() { if (p != nullptr) cudaFreeAsync(p, s); }
  } free_owned{owned, stream};
  index_t group = static_cast<index_t>(workspace_bytes / one);
  if (group < 1)
    throw std::invalid_argument("multiclass_nms: the workspace holds " + std::to_string(workspace_bytes) +
                                " bytes, one image needs " + std::to_string(one));
  if (group > batch) group = batch;
  if (group > 65535) group = 65535;
  const T st = static_cast<T>(score_threshold);  // compared in T, as the CPU loop does
  char* ws = static_cast<char*>(workspace);
  for (index_t b0 = 0; b0 < batch; b0 += group) {
    const index_t g = batch - b0 < group ? batch - b0 : group;
    const McLayout l = mc_layout(g, n, c, k);
    McElem* cand = reinterpret_cast<McElem*>(ws + l.cand);
    McElem* tmp = reinterpret_cast<McElem*>(ws + l.tmp);
    index_t* m = reinterpret_cast<index_t*>(ws + l.m);
    index_t* kc = reinterpret_cast<index_t*>(ws + l.kc);
    const dim3 grid(static_cast<unsigned>(c), static_cast<unsigned>(g));
    mc_candidates_kernel<T><<<grid, kMcThreads, 0, stream>>>(scores, b0, n, c, st, cand, m);
    check_launch("multiclass_nms: candidates");
    mc_sort_kernel<<<grid, kMcThreads, 0, stream>>>(cand, tmp, n, c, m);
    check_launch("multiclass_nms: sort");
    mc_nms_kernel<T><<<grid, kMcThreads, 0, stream>>>(boxes, b0, n, c, cb, iou_threshold, max_per_class, cand, m,
                                                       reinterpret_cast<unsigned long long*>(ws + l.removed), tmp, kc);
    check_launch("multiclass_nms: nms");
    mc_select_kernel<T><<<static_cast<unsigned>(g), kMcSelectThreads, 0, stream>>>(
        boxes, scores, b0, n, c, cb, k, tmp, kc, reinterpret_cast<McElem*>(ws + l.lists_a),
        reinterpret_cast<McElem*>(ws + l.lists_b), reinterpret_cast<index_t*>(ws + l.lens_a),
        reinterpret_cast<index_t*>(ws + l.lens_b), num, out_boxes, out_scores, out_classes, out_indices);
    check_launch("multiclass_nms: select");
  }
}

template void multiclass_nms_cuda<float>(const float*, const float*, index_t, index_t, index_t, index_t, double,
                                         double, index_t, index_t, index_t*, float*, float*, index_t*, index_t*,
                                         void*, size_t, void*);
template void multiclass_nms_cuda<double>(const double*, const double*, index_t, index_t, index_t, index_t, double,
                                          double, index_t, index_t, index_t*, double*, double*, index_t*, index_t*,
                                          void*, size_t, void*);

}  // namespace fastiou
