// What the launchers of the mask ops share (csrc/cuda/mask_*.cu, resolve_overlaps.cu): size
// checks of the packed layout, stream-ordered temporaries and the score ranking (a stable cub
// radix sort of nms_math.h's score keys, as csrc/cuda/nms.cu ranks boxes).
#pragma once

#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <stdexcept>
#include <string>

#include "../kernels/mask_rank.cuh"
#include "cuda_common.h"

namespace fastiou {
namespace mask_detail {

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the caller's next call is not blamed
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
  }
}

// The kernels index a mask's h * ww words and its pixel columns x < ww * 64 in 32-bit ints.
inline void check_packed(index_t h, index_t ww, const char* what) {
  if (h < 0 || ww < 0 || h > INT_MAX || ww > (static_cast<index_t>(INT_MAX) - 64) / 64 || h * ww > INT_MAX)
    throw std::invalid_argument(std::string(what) + ": masks too large for the GPU kernels (H * ceil(W/64) must be < 2^31"
                                " and W < 2^31 - 64), got H=" + std::to_string(h) + ", words per row " +
                                std::to_string(ww));
}

// One stream-ordered device allocation (cudaMallocAsync), freed stream-ordered at scope exit:
// kernels enqueued before the free on the same stream may still use it.
class DeviceTemp {
 public:
  DeviceTemp(size_t bytes, cudaStream_t stream, const char* what) : stream_(stream) {
    if (bytes == 0) return;
    const cudaError_t err = cudaMallocAsync(&ptr_, bytes, stream);
    if (err != cudaSuccess) {
      ptr_ = nullptr;
      cudaGetLastError();
      throw std::runtime_error(std::string(what) + ": cannot allocate " + std::to_string(bytes) +
                               " bytes of GPU memory for temporaries (" + cudaGetErrorString(err) + ")");
    }
  }
  ~DeviceTemp() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  DeviceTemp(const DeviceTemp&) = delete;
  DeviceTemp& operator=(const DeviceTemp&) = delete;
  template <typename U>
  U* at(size_t off) const { return reinterpret_cast<U*>(static_cast<char*>(ptr_) + off); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Offsets of the pieces of one allocation, each aligned to 256 bytes.
struct Layout {
  size_t total = 0;
  size_t add(size_t bytes) {
    const size_t off = total;
    total += (bytes + 255) & ~static_cast<size_t>(255);
    return off;
  }
};

// order[p] = the mask ranked p (nms_math.h: decreasing score as float64, ties by index, NaN
// last). n <= INT_MAX (cub's item count; the caller checks).
template <typename T>
void rank_by_score(const T* scores, index_t n, index_t* order, cudaStream_t stream, const char* what) {
  const int ni = static_cast<int>(n);
  size_t cub_bytes = 0;
  check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, cub_bytes, static_cast<const unsigned long long*>(nullptr),
                                             static_cast<unsigned long long*>(nullptr),
                                             static_cast<const index_t*>(nullptr), static_cast<index_t*>(nullptr),
                                             ni, 0, 64, stream),
             what);
  Layout lay;
  const size_t n8 = static_cast<size_t>(n) * 8;
  const size_t keys_in = lay.add(n8), keys_out = lay.add(n8), idx = lay.add(n8), cub = lay.add(cub_bytes);
  DeviceTemp tmp(lay.total, stream, what);
  mask_rank_keys_kernel<T><<<grid_for(n, kMaskRankThreads), kMaskRankThreads, 0, stream>>>(
      scores, tmp.at<unsigned long long>(keys_in), tmp.at<index_t>(idx), n);
  check_launch(what);
  size_t bytes = cub_bytes;
  check_cuda(cub::DeviceRadixSort::SortPairs(tmp.at<void>(cub), bytes, tmp.at<unsigned long long>(keys_in),
                                             tmp.at<unsigned long long>(keys_out), tmp.at<index_t>(idx), order, ni,
                                             0, 64, stream),
             what);
}

}  // namespace mask_detail
}  // namespace fastiou
