// What the CUDA launchers share: error checks and grid sizing.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "fastiou/common.h"

namespace fastiou {

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

}  // namespace fastiou
