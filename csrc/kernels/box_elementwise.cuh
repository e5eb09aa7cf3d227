// CUDA kernels of box_area and box_convert (one source for nvcc and NVRTC, see box_iou.cuh).
#pragma once

#include "fastiou/box_math.h"

namespace fastiou {

// Parallelisation: one thread per box, grid-stride.
template <typename T>
__global__ void box_area_kernel(const T* __restrict__ boxes, T* __restrict__ out, index_t n,
                                int fmt) {
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < n;
       i += (index_t)gridDim.x * blockDim.x)
    out[i] = box_area(boxes + i * 4, fmt);
}

// Parallelisation: one thread per box, grid-stride.
template <typename T>
__global__ void box_convert_kernel(const T* __restrict__ boxes, T* __restrict__ out, index_t n,
                                   int in_fmt, int out_fmt) {
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < n;
       i += (index_t)gridDim.x * blockDim.x)
    convert_box(boxes + i * 4, out + i * 4, in_fmt, out_fmt);
}

}  // namespace fastiou
