// What the CUDA launchers share: error checks, grid sizing and stream-ordered temporaries.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "fastiou/common.h"

namespace fastiou {

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the caller's next call is not blamed
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
  }
}

inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": CUDA launch failed: " + cudaGetErrorString(err));
}

// Blocks for `work` items at `per_block` each, capped: kernels stride over the rest.
inline unsigned grid_for(index_t work, index_t per_block) {
  const index_t blocks = (work + per_block - 1) / per_block;
  const index_t cap = index_t(1) << 20;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Offsets of the pieces of one allocation, each aligned to 256 bytes.
struct Layout {
  size_t total = 0;
  size_t add(size_t bytes) {
    const size_t off = total;
    total += (bytes + 255) & ~static_cast<size_t>(255);
    return off;
  }
};

// One stream-ordered device allocation (cudaMallocAsync), freed stream-ordered (cudaFreeAsync)
// when it goes out of scope: kernels enqueued before the free on the same stream may use it.
class StreamBlock {
 public:
  StreamBlock(size_t bytes, cudaStream_t stream, const char* what) : stream_(stream) {
    if (bytes == 0) return;
    const cudaError_t err = cudaMallocAsync(&ptr_, bytes, stream);
    if (err != cudaSuccess) {
      ptr_ = nullptr;
      cudaGetLastError();
      throw std::runtime_error(std::string(what) + ": cannot allocate " + std::to_string(bytes) +
                               " bytes of GPU memory for temporaries (" + cudaGetErrorString(err) + ")");
    }
  }
  ~StreamBlock() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  StreamBlock(const StreamBlock&) = delete;
  StreamBlock& operator=(const StreamBlock&) = delete;
  template <typename U>
  U* at(size_t off) const { return reinterpret_cast<U*>(static_cast<char*>(ptr_) + off); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace fastiou
