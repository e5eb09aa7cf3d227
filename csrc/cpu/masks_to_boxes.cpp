// masks_to_boxes on the CPU: parallel over masks; each row is scanned from the left up to its
// first set byte and from the right down to the widest column found so far, eight bytes a step,
// so a mask costs about the bytes outside its box, not H * W comparisons.
#include <algorithm>
#include <cstring>

#include "cpu_common.h"
#include "fastiou/ops.h"

namespace fastiou {
namespace {

// First index in [lo, hi) whose byte is non-zero, or hi.
inline index_t first_set(const uint8_t* p, index_t lo, index_t hi) {
  for (; lo < hi && (lo & 7); ++lo)
    if (p[lo]) return lo;
  for (; lo + 8 <= hi; lo += 8) {
    uint64_t w;
    std::memcpy(&w, p + lo, 8);
    if (w) return lo + (__builtin_ctzll(w) >> 3);  // little-endian: lowest byte first
  }
  for (; lo < hi; ++lo)
    if (p[lo]) return lo;
  return hi;
}

// Last index in [lo, hi) whose byte is non-zero, or lo - 1.
inline index_t last_set(const uint8_t* p, index_t lo, index_t hi) {
  for (; hi > lo && (hi & 7); --hi)
    if (p[hi - 1]) return hi - 1;
  for (; hi - 8 >= lo; hi -= 8) {
    uint64_t w;
    std::memcpy(&w, p + hi - 8, 8);
    if (w) return hi - 1 - (__builtin_clzll(w) >> 3);
  }
  for (; hi > lo; --hi)
    if (p[hi - 1]) return hi - 1;
  return lo - 1;
}

}  // namespace

void masks_to_boxes_cpu(const uint8_t* masks, float* out, index_t n, index_t h, index_t w) {
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && n * h * w > kParallelMin)
  for (index_t k = 0; k < n; ++k) {
    const uint8_t* m = masks + k * h * w;
    index_t xmin = w, xmax = -1, ymin = -1, ymax = -1;
    for (index_t y = 0; y < h; ++y) {
      const uint8_t* row = m + y * w;
      const index_t f = first_set(row, 0, w);
      if (f == w) continue;
      if (ymin < 0) ymin = y;
      ymax = y;
      xmin = std::min(xmin, f);
      const index_t l = last_set(row, std::max(f, xmax + 1), w);
      if (l > xmax) xmax = l;
    }
    float* o = out + 4 * k;
    if (ymin < 0) {
      o[0] = o[1] = o[2] = o[3] = 0.0f;
    } else {
      o[0] = float(xmin); o[1] = float(ymin); o[2] = float(xmax); o[3] = float(ymax);
    }
  }
}

}  // namespace fastiou
