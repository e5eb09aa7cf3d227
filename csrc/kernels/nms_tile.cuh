// Device helpers of the tile-based greedy NMS, shared by nms.cuh and multiclass_nms.cuh
// (device functions only, so any number of translation units may include it).
#pragma once

#include "fastiou/nms_math.h"

namespace fastiou {

// OR of a 64-bit value over the 32 lanes of a full warp.
__device__ __forceinline__ unsigned long long nms_warp_or(unsigned long long v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned lo = __reduce_or_sync(0xffffffffu, static_cast<unsigned>(v));
  const unsigned hi = __reduce_or_sync(0xffffffffu, static_cast<unsigned>(v >> 32));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#else
  for (int off = 16; off > 0; off >>= 1) v |= __shfl_xor_sync(0xffffffffu, v, off);
  return v;
#endif
}

// Greedy NMS inside one 64-box tile, by one full warp: lane l owns rows l and l + 32.
// cand: the rows still candidates (not suppressed by a kept box of an earlier tile);
// in0/in1: the diagonal-tile words of the lane's rows (bit j: row j, ranked above, suppresses
// it). Returns the kept rows: a row is kept when it is a candidate and no kept row above it
// suppresses it. Each round decides every row whose suppressors are all decided (or one of
// which is kept); the lowest undecided row is always decidable, so at most 64 rounds, and
// usually 2-4 (the chains of mutual overlaps are short).
__device__ __forceinline__ unsigned long long nms_resolve_tile(unsigned long long cand, unsigned long long in0,
                                                               unsigned long long in1, int lane) {
  const unsigned long long sup0 = in0 & ((1ull << lane) - 1) & cand;
  const unsigned long long sup1 = in1 & ((1ull << (lane + 32)) - 1) & cand;
  const bool c0 = (cand >> lane) & 1, c1 = (cand >> (lane + 32)) & 1;
  unsigned long long decided = ~cand, kept = 0;
  while (decided != ~0ull) {  // warp-uniform
    const bool u0 = c0 && !((decided >> lane) & 1);
    const bool u1 = c1 && !((decided >> (lane + 32)) & 1);
    const bool x0 = u0 && (sup0 & kept) != 0;  // a kept row above suppresses it
    const bool x1 = u1 && (sup1 & kept) != 0;
    const bool k0 = u0 && !x0 && (sup0 & ~decided) == 0;  // every suppressor decided, none kept
    const bool k1 = u1 && !x1 && (sup1 & ~decided) == 0;
    const unsigned long long nk = static_cast<unsigned long long>(__ballot_sync(0xffffffffu, k0)) |
                                  (static_cast<unsigned long long>(__ballot_sync(0xffffffffu, k1)) << 32);
    const unsigned long long nd = static_cast<unsigned long long>(__ballot_sync(0xffffffffu, k0 || x0)) |
                                  (static_cast<unsigned long long>(__ballot_sync(0xffffffffu, k1 || x1)) << 32);
    kept |= nk;
    decided |= nd;
  }
  return kept;
}

}  // namespace fastiou
