// CUDA kernels of matrix_nms (one source for nvcc and NVRTC, see box_iou.cuh).
//
// The rule (SOLOv2 / mmdet mask_matrix_nms, nms_math.h's matrix_term / matrix_decay): for the
// box ranked j (decreasing score, stable, NaN last),
//   out_j = score_j * min(1, min over boxes i of its label ranked before j of
//                           matrix_term(iou_ij) / matrix_term(comp_i))
//   comp_i = max(0, max over boxes k of its label ranked before i of iou_ki)
// (iou_ij with the higher-ranked box first). As csrc/cpu/matrix_nms.cpp (torch.max / torch.min's
// rule): a NaN IoU makes comp NaN, a NaN quotient makes the decay NaN, and a zero decay is +0;
// so the result does not depend on the order of the folds.
// The launchers rank the boxes, then order them class-major (label, then rank) with
// nms.cuh's kernels, so a box's same-label predecessors are the positions [start, q) of its
// label's segment; two passes, no N^2 memory.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/nms_math.h"

namespace fastiou {


// max / min that propagate NaN: NaN as soon as either side is NaN, in any order of folding.
template <typename T>
FASTIOU_HD T matrix_max_fold(T acc, T x) { return acc != acc ? acc : ((x != x || x > acc) ? x : acc); }
template <typename T>
FASTIOU_HD T matrix_min_fold(T acc, T x) { return acc != acc ? acc : ((x != x || x < acc) ? x : acc); }

// First position of the segment of label lab[q] (lab sorted ascending).
__device__ __forceinline__ index_t matrix_segment_start(const long long* __restrict__ lab, index_t q) {
  const long long c = lab[q];
  index_t lo = 0, hi = q;
  while (lo < hi) {
    const index_t mid = lo + (hi - lo) / 2;
    if (lab[mid] < c) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

template <typename T>
__device__ __forceinline__ BoxF<T> matrix_box(const T* __restrict__ sboxes, index_t q) {
  return make_boxf(sboxes + q * 4, FMT_XYXY, MODE_IOU);
}

// comp[q] for every class-major position q.
// Parallelisation: one warp per position (grid-stride over warps); the lanes split the
// position's predecessors and combine with shuffles.
template <typename T>
__global__ void matrix_nms_comp_kernel(const T* __restrict__ sboxes, const long long* __restrict__ lab,
                                       index_t n, T* __restrict__ comp) {
  const int lane = threadIdx.x & 31;
  const index_t warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
  for (index_t q = (blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x) >> 5; q < n; q += warps) {
    const index_t start = matrix_segment_start(lab, q);
    const BoxF<T> b = matrix_box(sboxes, q);
    T m = T(0);
    for (index_t i = start + lane; i < q; i += 32)
      m = matrix_max_fold(m, pair_value<T, MODE_IOU>(matrix_box(sboxes, i), b, T(0)));
    for (int off = 16; off > 0; off >>= 1) m = matrix_max_fold(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (lane == 0) comp[q] = m;
  }
}

// out[src[q]] = scores[src[q]] * decay(q) for every class-major position q.
// Parallelisation: as matrix_nms_comp_kernel.
template <typename T>
__global__ void matrix_nms_decay_kernel(const T* __restrict__ sboxes, const long long* __restrict__ lab,
                                        index_t n, const T* __restrict__ comp, const T* __restrict__ scores,
                                        const index_t* __restrict__ src, int kernel, T sigma,
                                        T* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const index_t warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
  for (index_t q = (blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x) >> 5; q < n; q += warps) {
    const index_t start = matrix_segment_start(lab, q);
    const BoxF<T> b = matrix_box(sboxes, q);
    T d = T(1);
    for (index_t i = start + lane; i < q; i += 32) {
      const T iou = pair_value<T, MODE_IOU>(matrix_box(sboxes, i), b, T(0));
      d = matrix_min_fold(d, matrix_decay(iou, comp[i], kernel, sigma));
    }
    for (int off = 16; off > 0; off >>= 1) d = matrix_min_fold(d, __shfl_xor_sync(0xffffffffu, d, off));
    if (lane == 0) {
      const index_t s = src[q];
      out[s] = scores[s] * (d == T(0) ? T(0) : d);  // -0 and +0: one result
    }
  }
}

}  // namespace fastiou
