// What the CPU mask loops share (csrc/cpu/mask_*.cpp, resolve_overlaps.cpp): run-time selection
// of the popcnt / AVX2 instructions, and the popcount of a pair's common pixels in a window.
//
// The baseline x86-64 ISA has no popcnt instruction: there __builtin_popcountll is a libgcc
// call (correct, about 10x slower). Each hot loop is an always-inline body compiled twice, in a
// function with __attribute__((target("popcnt"))) (the builtin becomes the instruction) and in
// a plain one, and the pointer to call is chosen once from __builtin_cpu_supports. Never
// -march=native: the wheel must run on any x86-64.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cpu_common.h"
#include "fastiou/mask_math.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(FASTIOU_NO_CLONES)
#define FASTIOU_MASK_X86 1
#define FASTIOU_TARGET_POPCNT __attribute__((target("popcnt")))
#define FASTIOU_TARGET_AVX2 __attribute__((target("avx2,popcnt")))
#else
#define FASTIOU_MASK_X86 0
#define FASTIOU_TARGET_POPCNT
#define FASTIOU_TARGET_AVX2
#endif

namespace fastiou {
namespace mask_detail {

// FASTIOU_MASK_ISA=baseline (read once, at the first call) forces the plain loops, so that the
// tests can run them on a machine that has popcnt and AVX2 (tests/test_masks.py).
inline bool forced_baseline() {
  static const bool v = [] {
    const char* e = std::getenv("FASTIOU_MASK_ISA");
    return e != nullptr && std::strcmp(e, "baseline") == 0;
  }();
  return v;
}

inline bool cpu_has_popcnt() {
#if FASTIOU_MASK_X86
  static const bool v = (__builtin_cpu_init(), __builtin_cpu_supports("popcnt") != 0) &&
                        !forced_baseline();
  return v;
#else
  return false;
#endif
}

inline bool cpu_has_avx2() {
#if FASTIOU_MASK_X86
  static const bool v = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") != 0 &&
                         __builtin_cpu_supports("popcnt") != 0) && !forced_baseline();
  return v;
#else
  return false;
#endif
}

// Packs `rows` rows of a uint8 image (row stride sh bytes, w contiguous pixels a row) into
// rows * mask_words(w) words, the layout above (csrc/cpu/mask_pack.cpp; AVX2 when the CPU has
// it). rle.encode packs its masks with it.
void pack_rows(const uint8_t* m, index_t rows, index_t w, index_t sh, uint64_t* out);

// Pixels set in both masks a and b (each h rows of ww words), counted in window `win` only.
FASTIOU_HD long long window_inter_impl(const uint64_t* __restrict__ a,
                                       const uint64_t* __restrict__ b, index_t ww,
                                       MaskWindow win) {
  if (win.empty()) return 0;
  long long acc = 0;
  const index_t w0 = win.w0, w1 = win.w1;
  for (index_t y = win.y0; y < win.y1; ++y) {
    const uint64_t* ra = a + y * ww;
    const uint64_t* rb = b + y * ww;
    for (index_t w = w0; w < w1; ++w) acc += popcount64(ra[w] & rb[w]);
  }
  return acc;
}

}  // namespace mask_detail
}  // namespace fastiou
