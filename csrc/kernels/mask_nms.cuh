// CUDA kernels of mask_nms and mask_matrix_nms (one source for nvcc and NVRTC, see
// box_iou.cuh). The launchers (csrc/cuda/mask_nms.cu, fastiou/_backends/cupy_gpu.py) run:
//   1. rank_keys_kernel (rank_keys.cuh) and a stable sort: order[p], the mask ranked p.
//   2. mask_iou (mask_iou.cuh, launched on its own): the n x n IoU matrix of the masks, in input order. The
//      matrix is symmetric bit for bit (mask_iou_value(inter, a1, a2) only uses a1 + a2).
//   mask_nms:
//   3. mask_nms_bitmask_kernel: the suppression bitmask of the ranked masks in the layout of
//      nms_mask_kernel (nms.cuh), with mask_suppresses' test (float IoU > threshold as double).
//   4. nms_reduce_kernel (nms.cuh): the greedy pass, keep[k] = order[p] of the kept ranks.
//   mask_matrix_nms (the rule of matrix_nms.cuh, from the IoU matrix instead of boxes):
//   3. mask_rank_labels_kernel: the labels by rank.
//   4. mask_matrix_comp_kernel, mask_matrix_decay_kernel: a warp per rank p folds over the
//      ranks i < p of its label (no class-major reordering needed: the IoUs are precomputed).
// Only template kernels are shared with other .cuh files (matrix_nms.cuh's device helpers): a .cu file may include several of them.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/mask_math.h"
#include "matrix_nms.cuh"

namespace fastiou {

constexpr int kMaskNmsTile = 64;          // kNmsTile: masks per bitmask word

// Word (rank row i, column block c) of the suppression bitmask, for c >= i's block (nms.cuh's
// nms_mask_kernel layout): off the diagonal, bit j set when the mask ranked i suppresses the
// one ranked c*64+j; on the diagonal, bit j < (i mod 64) set when the mask ranked c*64+j
// suppresses the one ranked i. iou is the n x n matrix in input order.
// Parallelisation: one 64-thread block per tile (blockIdx.x = column block, blockIdx.y = row
// block), a thread per row; the tile's column masks' input indices are staged in shared memory.
__global__ void mask_nms_bitmask_kernel(const float* __restrict__ iou, const index_t* __restrict__ order, index_t n,
                                        index_t cb, double threshold, unsigned long long* __restrict__ mask) {
  const index_t row = blockIdx.y, col = blockIdx.x;
  if (col < row) return;  // block-uniform
  __shared__ index_t s_ord[kMaskNmsTile];
  const int t = threadIdx.x;
  const index_t c0 = col * kMaskNmsTile;
  const int ncol = n - c0 < kMaskNmsTile ? static_cast<int>(n - c0) : kMaskNmsTile;
  if (t < ncol) s_ord[t] = order[c0 + t];
  __syncthreads();
  const index_t i = row * kMaskNmsTile + t;
  if (i >= n) return;
  const float* r = iou + order[i] * n;
  const int jend = row == col ? t : ncol;
  unsigned long long word = 0;
  for (int j = 0; j < jend; ++j)
    if (static_cast<double>(r[s_ord[j]]) > threshold) word |= 1ull << j;  // mask_suppresses' test
  mask[i * cb + col] = word;
}

// slab[p] = labels[order[p]].
// Parallelisation: one thread per rank, grid-stride.
__global__ void mask_rank_labels_kernel(const long long* __restrict__ labels, const index_t* __restrict__ order,
                                        long long* __restrict__ slab, index_t n) {
  for (index_t p = blockIdx.x * (index_t)blockDim.x + threadIdx.x; p < n; p += (index_t)gridDim.x * blockDim.x)
    slab[p] = labels[order[p]];
}

// comp[p] = max(0, max over ranks i < p with slab[i] == slab[p] of IoU(order[i], order[p])),
// folded with matrix_max_fold (NaN-propagating, so any fold order gives the same value).
// Parallelisation: one warp per rank (grid-stride over warps); the lanes split the ranks
// before it and combine with shuffles.
__global__ void mask_matrix_comp_kernel(const float* __restrict__ iou, const index_t* __restrict__ order,
                                        const long long* __restrict__ slab, index_t n, float* __restrict__ comp) {
  const int lane = threadIdx.x & 31;
  const index_t warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
  for (index_t p = (blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x) >> 5; p < n; p += warps) {
    const float* r = iou + order[p] * n;
    const long long lp = slab[p];
    float mx = 0.0f;
    for (index_t i = lane; i < p; i += 32)
      if (slab[i] == lp) mx = matrix_max_fold(mx, r[order[i]]);
    for (int off = 16; off > 0; off >>= 1) mx = matrix_max_fold(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (lane == 0) comp[p] = mx;
  }
}

// out[order[p]] = scores[order[p]] * min(1, min over ranks i < p of its label of
// matrix_decay(IoU(order[i], order[p]), comp[i])), as matrix_nms_decay_kernel.
// Parallelisation: as mask_matrix_comp_kernel.
__global__ void mask_matrix_decay_kernel(const float* __restrict__ iou, const index_t* __restrict__ order,
                                         const long long* __restrict__ slab, index_t n, const float* __restrict__ comp,
                                         const float* __restrict__ scores, int kernel, float sigma,
                                         float* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const index_t warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
  for (index_t p = (blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x) >> 5; p < n; p += warps) {
    const float* r = iou + order[p] * n;
    const long long lp = slab[p];
    float d = 1.0f;
    for (index_t i = lane; i < p; i += 32)
      if (slab[i] == lp) d = matrix_min_fold(d, matrix_decay(r[order[i]], comp[i], kernel, sigma));
    for (int off = 16; off > 0; off >>= 1) d = matrix_min_fold(d, __shfl_xor_sync(0xffffffffu, d, off));
    if (lane == 0) {
      const index_t s = order[p];
      out[s] = scores[s] * (d == 0.0f ? 0.0f : d);  // -0 and +0: one result
    }
  }
}

}  // namespace fastiou
