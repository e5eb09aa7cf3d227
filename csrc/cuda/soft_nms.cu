// Launcher of soft_nms (kernel: csrc/kernels/soft_nms.cuh).
#include <string>

#include "../kernels/soft_nms.cuh"
#include "cuda_common.h"
#include "fastiou/ops.h"

namespace fastiou {

template <typename T>
index_t soft_nms_cuda(const T* boxes, const T* scores, index_t n, T iou_threshold, T sigma, T min_score,
                      int method, index_t* keep, T* new_scores, void* stream_) {
  if (n <= 0) return 0;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  // Temporaries: current scores (T), in-play flags, the count; one stream-ordered allocation.
  const size_t cur_bytes = (static_cast<size_t>(n) * sizeof(T) + 255) & ~static_cast<size_t>(255);
  const size_t alive_bytes = (static_cast<size_t>(n) + 255) & ~static_cast<size_t>(255);
  void* block = nullptr;
  cudaError_t err = cudaMallocAsync(&block, cur_bytes + alive_bytes + 8, stream);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("soft_nms: cannot allocate GPU temporaries (") + cudaGetErrorString(err) + ")");
  }
  char* base = static_cast<char*>(block);
  T* cur = reinterpret_cast<T*>(base);
  unsigned char* alive = reinterpret_cast<unsigned char*>(base + cur_bytes);
  index_t* count = reinterpret_cast<index_t*>(base + cur_bytes + alive_bytes);
  soft_nms_kernel<T><<<1, kSoftNmsThreads, 0, stream>>>(boxes, scores, n, iou_threshold, sigma, min_score, method,
                                                         cur, alive, keep, new_scores, count);
  err = cudaGetLastError();
  index_t k = 0;
  if (err == cudaSuccess) err = cudaMemcpyAsync(&k, count, sizeof(k), cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  cudaFreeAsync(block, stream);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("soft_nms: ") + cudaGetErrorString(err));
  }
  return k;
}

template index_t soft_nms_cuda<float>(const float*, const float*, index_t, float, float, float, int, index_t*,
                                      float*, void*);
template index_t soft_nms_cuda<double>(const double*, const double*, index_t, double, double, double, int,
                                       index_t*, double*, void*);

}  // namespace fastiou
