// What the CPU suppression kernels share (csrc/cpu/nms.cpp, multiclass_nms.cpp, soft_nms.cpp,
// matrix_nms.cpp): the ranking sort, the partition of ranked boxes by label, the gather of
// ranked boxes into structure-of-arrays, the pair IoU, and nms.cpp's greedy pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu_common.h"
#include "fastiou/nms_math.h"

namespace fastiou {
namespace nms_detail {

// order[r] = the position of the r-th smallest key, ties by position (a stable sort): an LSD
// radix sort, one 8-bit digit a pass, that skips the digits all keys share.
void rank_keys(const uint64_t* keys, index_t n, index_t* order);

// order[r] = the box ranked r under nms_math.h's rule (decreasing score, NaN last, stable).
template <typename S>
void rank_scores(const S* scores, index_t n, index_t* order) {
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) keys[i] = score_key(static_cast<double>(scores[i]));
  rank_keys(keys.data(), n, order);
}

// Ranked boxes regrouped by label: perm[p] is a rank, the positions [start[g], start[g + 1])
// hold label group g's ranks in increasing order (a stable counting sort on dense label ids).
struct Partition {
  std::vector<index_t> perm;
  std::vector<index_t> start;
  index_t groups() const { return static_cast<index_t>(start.size()) - 1; }
};
Partition partition_by_label(const int64_t* labels, const index_t* order, index_t n);

// Boxes as five columns (x1, y1, x2, y2, area), the area as box_math.h computes it.
template <typename T>
struct BoxCols {
  std::vector<T> buf;
  T *x1 = nullptr, *y1 = nullptr, *x2 = nullptr, *y2 = nullptr, *area = nullptr;

  void resize(index_t n) {
    buf.resize(5 * static_cast<size_t>(n > 0 ? n : 1));
    T* p = buf.data();
    x1 = p; y1 = p + n; x2 = p + 2 * n; y2 = p + 3 * n; area = p + 4 * n;
  }
  void set(index_t i, const T* b) {
    x1[i] = b[0]; y1[i] = b[1]; x2[i] = b[2]; y2[i] = b[3];
    area[i] = (b[2] - b[0]) * (b[3] - b[1]);
  }
};

// The message of an allocation failure in a suppression kernel.
inline std::string nms_oom_text(const char* op, index_t n, index_t groups) {
  return std::string(op) + ": out of memory for the workspace of " + std::to_string(n) +
         " boxes in " + std::to_string(groups) + " groups (about " +
         bytes_text(64.0 * static_cast<double>(n)) + ")";
}

// Below this many boxes (candidates) a parallel suppression costs more than it saves.
constexpr index_t kParallelNms = 2048;

// IoU of boxes a and b given their areas (box_math.h's pair_value).
template <typename T>
FASTIOU_HD T iou_pair(T ax1, T ay1, T ax2, T ay2, T aar, T bx1, T by1, T bx2, T by2, T bar) {
  const T z = T(0);
  return pair_value<T, MODE_IOU>(ax1, ay1, ax2, ay2, aar, z, z, z, bx1, by1, bx2, by2, bar, z, z,
                                 z, z);
}

// A group's boxes, in rank order.
template <typename T>
struct BoxView {
  const T *x1, *y1, *x2, *y2, *area;
  index_t n;
};

template <typename T>
BoxView<T> view(const BoxCols<T>& c, index_t start, index_t n) {
  return {c.x1 + start, c.y1 + start, c.x2 + start, c.y2 + start, c.area + start, n};
}

// nms.cpp's greedy NMS pass over one group's ranked boxes, with a workspace reused across runs
// (one per thread): run sets keep[i] = 1 for the kept boxes, at most `cap` of them (cap < 0: no
// limit), and returns the number kept.
template <typename T>
class GreedyPass {
 public:
  GreedyPass();
  ~GreedyPass();
  GreedyPass(const GreedyPass&) = delete;
  GreedyPass& operator=(const GreedyPass&) = delete;
  index_t run(const BoxView<T>& v, double threshold, index_t cap, uint8_t* keep);

 private:
  struct Ws;
  std::unique_ptr<Ws> ws_;
};

}  // namespace nms_detail
}  // namespace fastiou
