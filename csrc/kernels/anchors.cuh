// CUDA kernel of the anchor grid: every level in one launch (math: fastiou/anchor_math.h).
//
// One source for nvcc (csrc/cuda/anchors.cu) and NVRTC (the CuPy backend).
#pragma once

#include "fastiou/anchor_math.h"
#include "fastiou/launch.h"

namespace fastiou {

// Parallelisation: one thread per output box, grid-stride over all levels' boxes; a thread
// finds its level by scanning the few level starts. levels (nlev, 5): H, W, A, first cell row,
// first output row; strides (nlev, 2): stride_h, stride_w. Consecutive threads write
// consecutive boxes.
template <typename T>
__global__ void anchor_grid_kernel(const T* __restrict__ cells, const long long* __restrict__ levels,
                                   const double* __restrict__ strides, index_t nlev, double offset,
                                   T* __restrict__ out, index_t total) {
  for (index_t r = blockIdx.x * (index_t)blockDim.x + threadIdx.x; r < total;
       r += (index_t)gridDim.x * blockDim.x) {
    index_t l = 0;
    while (l + 1 < nlev && levels[(l + 1) * 5 + 4] <= r) ++l;
    const long long* lv = levels + l * 5;
    const index_t local = r - lv[4], a = lv[2], w = lv[1];
    const index_t k = local % a, cell = local / a;
    const index_t x = cell % w, y = cell / w;
    const T cx = static_cast<T>(anchor_center(offset, strides[l * 2 + 1], x));
    const T cy = static_cast<T>(anchor_center(offset, strides[l * 2 + 0], y));
    const T* c = cells + (lv[3] + k) * 4;
    T* o = out + r * 4;
    o[0] = cx + c[0];
    o[1] = cy + c[1];
    o[2] = cx + c[2];
    o[3] = cy + c[3];
  }
}

}  // namespace fastiou
