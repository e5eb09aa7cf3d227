// CUDA kernels of the pairwise and aligned box measures.
//
// One source for two compilers: nvcc builds it into fastiou._C_cuda (csrc/cuda/box_iou.cu) and
// the CuPy backend compiles it at run time with NVRTC (fastiou/_backends/cupy_gpu.py), so both
// GPU backends run the same code. The math is csrc/include/fastiou/box_math.h, shared with
// the CPU loops.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/box_math.h"

namespace fastiou {


// Parallelisation: a block owns a tile of kPairwiseRows rows x blockDim.x columns. Each thread
// owns one column (its box of boxes2 in registers) and walks the tile's rows, whose features sit
// in shared memory and are read as warp-wide broadcasts; consecutive threads write consecutive
// outputs, so stores coalesce. Blocks stride over the tiles (columns fastest), so any batch, N
// and M fit a 1-D grid; all offsets are 64-bit.
template <typename T, int Mode>
__global__ void box_pairwise_kernel(const T* __restrict__ boxes1, const T* __restrict__ boxes2,
                                    T* __restrict__ out, index_t batch, index_t n, index_t m,
                                    int fmt, T eps) {
  __shared__ T rows[8][kPairwiseRows];
  const index_t col_tiles = (m + blockDim.x - 1) / blockDim.x;
  const index_t row_tiles = (n + kPairwiseRows - 1) / kPairwiseRows;
  const index_t tiles = batch * row_tiles * col_tiles;
  for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const index_t ct = t % col_tiles;
    const index_t rest = t / col_tiles;
    const index_t i0 = (rest % row_tiles) * kPairwiseRows;
    const index_t bi = rest / row_tiles;
    const int count = (n - i0) < kPairwiseRows ? int(n - i0) : kPairwiseRows;
    __syncthreads();  // the previous tile's rows are no longer read
    if (threadIdx.x < count) {
      const BoxF<T> a = make_boxf(boxes1 + (bi * n + i0 + threadIdx.x) * 4, fmt, Mode);
      rows[0][threadIdx.x] = a.x1; rows[1][threadIdx.x] = a.y1;
      rows[2][threadIdx.x] = a.x2; rows[3][threadIdx.x] = a.y2;
      rows[4][threadIdx.x] = a.area; rows[5][threadIdx.x] = a.cx;
      rows[6][threadIdx.x] = a.cy; rows[7][threadIdx.x] = a.ratio;
    }
    __syncthreads();
    const index_t j = ct * blockDim.x + threadIdx.x;
    if (j < m) {
      const BoxF<T> b = make_boxf(boxes2 + (bi * m + j) * 4, fmt, Mode);
      T* o = out + (bi * n + i0) * m + j;
      for (int r = 0; r < count; ++r) {
        o[r * m] = pair_value<T, Mode>(rows[0][r], rows[1][r], rows[2][r], rows[3][r], rows[4][r],
                                       rows[5][r], rows[6][r], rows[7][r], b.x1, b.y1, b.x2, b.y2,
                                       b.area, b.cx, b.cy, b.ratio, eps);
      }
    }
  }
}

// Parallelisation: one thread per pair, grid-stride.
template <typename T, int Mode>
__global__ void box_aligned_kernel(const T* __restrict__ boxes1, const T* __restrict__ boxes2,
                                   T* __restrict__ out, index_t n, int fmt, T eps) {
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < n;
       i += (index_t)gridDim.x * blockDim.x) {
    const BoxF<T> a = make_boxf(boxes1 + i * 4, fmt, Mode);
    const BoxF<T> b = make_boxf(boxes2 + i * 4, fmt, Mode);
    out[i] = pair_value<T, Mode>(a, b, eps);
  }
}

}  // namespace fastiou
