// CUDA kernel of resolve_overlaps (one source for nvcc and NVRTC, see box_iou.cuh). The
// launchers rank the masks first (rank_keys.cuh's keys and a stable sort: order[p], the mask
// ranked p).
#pragma once

#include "fastiou/launch.h"
#include "fastiou/mask_math.h"

namespace fastiou {


// For each word position (row, word) of the masks (hw = h * ww positions), visiting the masks
// in rank order: out[k] = bits[k] & ~claimed; claimed |= bits[k]. So each set pixel stays in the
// best-ranked mask that has it. out must not overlap bits except exactly (out == bits works:
// each word is read before it is written, by the same thread).
// Parallelisation: one thread per word position, grid-stride (consecutive threads read and
// write consecutive words of each mask: coalesced); the n masks in sequence per thread.
__global__ void resolve_overlaps_kernel(const unsigned long long* bits, const index_t* __restrict__ order,
                                        index_t n, index_t hw, unsigned long long* out) {
  for (index_t pos = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; pos < hw;
       pos += static_cast<index_t>(gridDim.x) * blockDim.x) {
    unsigned long long claimed = 0;
    for (index_t k = 0; k < n; ++k) {
      const index_t at = order[k] * hw + pos;
      const unsigned long long v = bits[at];
      out[at] = v & ~claimed;
      claimed |= v;
    }
  }
}

}  // namespace fastiou
