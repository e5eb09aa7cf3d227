// The ranking keys of the suppression family (nms, matrix_nms, mask_nms, mask_matrix_nms,
// resolve_overlaps): one source for nvcc and NVRTC, a template kernel only, so that several .cu
// files may include it.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/nms_math.h"

namespace fastiou {


// keys[i] = score_key(scores[i]) (scores as float64), idx[i] = i: a stable ascending sort of
// (keys, idx) gives the ranking of nms_math.h (decreasing score, ties by index, NaN last).
// Parallelisation: one thread per item, grid-stride.
template <typename T>
__global__ void rank_keys_kernel(const T* __restrict__ scores, unsigned long long* __restrict__ keys,
                                 index_t* __restrict__ idx, index_t n) {
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < n; i += (index_t)gridDim.x * blockDim.x) {
    keys[i] = score_key(static_cast<double>(scores[i]));
    idx[i] = i;
  }
}

}  // namespace fastiou
