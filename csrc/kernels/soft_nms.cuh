// CUDA kernel of soft_nms (one source for nvcc and NVRTC, see box_iou.cuh).
//
// The rule (mmcv's softnms_cpu, as csrc/cpu/soft_nms.cpp runs it; the weights are
// nms_math.h's soft_weight): repeatedly pick, among the boxes still in play, the one with the
// highest current score (ranked by nms_math.h's score_key, NaN last; equal scores: the lowest
// input index), report it with its current score, and multiply the current score of every other
// box in play by soft_weight(iou(picked, box)); a box whose new score is below min_score
// (compared in T) leaves play. The picks are the result, in pick order.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/nms_math.h"

namespace fastiou {


// Block-wide minimum of (key, idx), lexicographic; every thread gets the winning idx.
// s_key / s_idx hold one entry per warp; s_pick the result.
__device__ __forceinline__ index_t soft_nms_block_argmin(unsigned long long key, index_t idx, index_t none,
                                                        unsigned long long* s_key, index_t* s_idx,
                                                        index_t* s_pick) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long ok = __shfl_down_sync(0xffffffffu, key, off);
    const index_t oi = __shfl_down_sync(0xffffffffu, idx, off);
    if (ok < key || (ok == key && oi < idx)) { key = ok; idx = oi; }
  }
  if (lane == 0) { s_key[warp] = key; s_idx[warp] = idx; }
  __syncthreads();
  if (warp == 0) {
    key = lane < warps ? s_key[lane] : ~0ull;
    idx = lane < warps ? s_idx[lane] : none;
    for (int off = 16; off > 0; off >>= 1) {
      const unsigned long long ok = __shfl_down_sync(0xffffffffu, key, off);
      const index_t oi = __shfl_down_sync(0xffffffffu, idx, off);
      if (ok < key || (ok == key && oi < idx)) { key = ok; idx = oi; }
    }
    if (lane == 0) *s_pick = idx;
  }
  __syncthreads();
  return *s_pick;
}

// Parallelisation: one block does the whole (inherently sequential) loop: each step is one
// parallel pass over the boxes in play (decay, drop, and each thread's best candidate for the
// next pick) and one block-wide argmin. Thread `tid` always owns boxes tid, tid + blockDim, ...
// so `cur` (current scores) and `alive` need no synchronisation beyond the argmin's.
// n steps at most; meant for n up to a few thousand.
template <typename T>
__global__ void __launch_bounds__(kSoftNmsThreads)
soft_nms_kernel(const T* __restrict__ boxes, const T* __restrict__ scores, index_t n, T threshold,
                T sigma, T min_score, int method, T* __restrict__ cur, unsigned char* __restrict__ alive,
                index_t* __restrict__ keep, T* __restrict__ new_scores, index_t* __restrict__ count) {
  __shared__ unsigned long long s_key[32];
  __shared__ index_t s_idx[32];
  __shared__ index_t s_pick;
  const index_t none = n;  // idx sentinel: after every box, NaN-scored ones included
  unsigned long long bk = ~0ull;
  index_t bi = none;
  for (index_t j = threadIdx.x; j < n; j += blockDim.x) {
    const T s = scores[j];
    cur[j] = s;
    alive[j] = 1;
    const unsigned long long k = score_key(static_cast<double>(s));
    if (k < bk || bi == none) { bk = k; bi = j; }  // j increases: the first of equal keys stays
  }
  index_t picked = 0;
  index_t p = soft_nms_block_argmin(bk, bi, none, s_key, s_idx, &s_pick);
  while (p != none) {
    const BoxF<T> a = make_boxf(boxes + p * 4, FMT_XYXY, MODE_IOU);
    bk = ~0ull;
    bi = none;
    for (index_t j = threadIdx.x; j < n; j += blockDim.x) {
      if (!alive[j]) continue;
      if (j == p) {
        keep[picked] = p;
        new_scores[picked] = cur[j];
        alive[j] = 0;
        continue;
      }
      const BoxF<T> b = make_boxf(boxes + j * 4, FMT_XYXY, MODE_IOU);
      const T s = cur[j] * soft_weight(pair_value<T, MODE_IOU>(a, b, T(0)), method, threshold, sigma);
      if (s < min_score) {
        alive[j] = 0;
      } else {
        cur[j] = s;
        const unsigned long long k = score_key(static_cast<double>(s));
        if (k < bk || bi == none) { bk = k; bi = j; }
      }
    }
    ++picked;
    p = soft_nms_block_argmin(bk, bi, none, s_key, s_idx, &s_pick);
  }
  if (threadIdx.x == 0) *count = picked;
}

}  // namespace fastiou
