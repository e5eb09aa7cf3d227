// What the launchers of the mask ops share (csrc/cuda/mask_*.cu, resolve_overlaps.cu): size
// checks of the packed layout, stream-ordered temporaries and the score ranking (a stable cub
// radix sort of nms_math.h's score keys, as csrc/cuda/nms.cu ranks boxes).
#pragma once

#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <stdexcept>
#include <string>

#include "../kernels/rank_keys.cuh"
#include "cuda_common.h"

namespace fastiou {
namespace mask_detail {

// The kernels index a mask's h * ww words and its pixel columns x < ww * 64 in 32-bit ints.
inline void check_packed(index_t h, index_t ww, const char* what) {
  if (h < 0 || ww < 0 || h > INT_MAX || ww > (static_cast<index_t>(INT_MAX) - 64) / 64 || h * ww > INT_MAX)
    throw std::invalid_argument(std::string(what) + ": masks too large for the GPU kernels (H * ceil(W/64) must be < 2^31"
                                " and W < 2^31 - 64), got H=" + std::to_string(h) + ", words per row " +
                                std::to_string(ww));
}

// order[p] = the mask ranked p (nms_math.h: decreasing score as float64, ties by index, NaN
// last). n <= INT_MAX (cub's item count; the caller checks).
template <typename T>
void rank_by_score(const T* scores, index_t n, index_t* order, cudaStream_t stream, const char* what) {
  const int ni = static_cast<int>(n);
  size_t cub_bytes = 0;
  check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, cub_bytes, static_cast<const unsigned long long*>(nullptr),
                                             static_cast<unsigned long long*>(nullptr),
                                             static_cast<const index_t*>(nullptr), static_cast<index_t*>(nullptr),
                                             ni, 0, 64, stream),
             what);
  Layout lay;
  const size_t n8 = static_cast<size_t>(n) * 8;
  const size_t keys_in = lay.add(n8), keys_out = lay.add(n8), idx = lay.add(n8), cub = lay.add(cub_bytes);
  StreamBlock tmp(lay.total, stream, what);
  rank_keys_kernel<T><<<grid_for(n, kRankKeysThreads), kRankKeysThreads, 0, stream>>>(
      scores, tmp.at<unsigned long long>(keys_in), tmp.at<index_t>(idx), n);
  check_launch(what);
  size_t bytes = cub_bytes;
  check_cuda(cub::DeviceRadixSort::SortPairs(tmp.at<void>(cub), bytes, tmp.at<unsigned long long>(keys_in),
                                             tmp.at<unsigned long long>(keys_out), tmp.at<index_t>(idx), order, ni,
                                             0, 64, stream),
             what);
}

}  // namespace mask_detail
}  // namespace fastiou
