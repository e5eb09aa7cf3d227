// Suppression on packed masks (CPU): greedy mask NMS and Matrix NMS (SOLOv2), with the rules of
// the box versions (fastiou/nms_math.h: ranking by score_key, strict `>` of the float32 IoU
// against the double threshold; matrix_decay) on the mask IoU of fastiou/mask_math.h.
//
// mask_nms computes IoUs lazily: a candidate is tested against the kept masks in rank order
// and stops at its first suppressor; a pair whose boxes do not meet costs no popcount. O(N)
// memory. mask_matrix_nms ranks once, partitions by label, and computes each mask's row of
// IoUs with the higher-ranked masks of its label (pass 1: its compensation, pass 2: its
// decay), parallel over masks (OpenMP). No N x N memory in either.
#include <algorithm>
#include <limits>
#include <vector>

#include "fastiou/ops.h"
#include "mask_common.h"
#include "nms_common.h"

namespace fastiou {
namespace {

using namespace mask_detail;
using namespace nms_detail;

FASTIOU_TARGET_POPCNT long long inter_popcnt(const uint64_t* a, const uint64_t* b, index_t ww,
                                             MaskWindow win) {
  return window_inter_impl(a, b, ww, win);
}
long long inter_base(const uint64_t* a, const uint64_t* b, index_t ww, MaskWindow win) {
  return window_inter_impl(a, b, ww, win);
}

struct Packed {
  const uint64_t* bits;
  const int32_t* boxes;
  const int64_t* areas;
  index_t plane, ww;
  long long (*inter)(const uint64_t*, const uint64_t*, index_t, MaskWindow);

  float iou(index_t i, index_t j) const {
    const MaskWindow win = mask_window(boxes + 4 * i, boxes + 4 * j);
    const long long c = win.empty() ? 0 : inter(bits + i * plane, bits + j * plane, ww, win);
    return mask_iou_value(c, areas[i], areas[j]);
  }
};

Packed make_packed(const uint64_t* bits, const int32_t* boxes, const int64_t* areas, index_t h,
                   index_t ww) {
  return Packed{bits, boxes, areas, h * ww, ww, cpu_has_popcnt() ? inter_popcnt : inter_base};
}

}  // namespace

index_t mask_nms_cpu(const uint64_t* bits, const int32_t* boxes, const int64_t* areas,
                     const double* scores, index_t n, index_t h, index_t ww, double iou_threshold,
                     int64_t* keep) {
  if (n <= 0) return 0;
  const Packed pk = make_packed(bits, boxes, areas, h, ww);
  std::vector<index_t> order(static_cast<size_t>(n));
  rank_scores(scores, n, order.data());
  index_t k = 0;
  for (index_t r = 0; r < n; ++r) {
    const index_t c = order[r];
    bool dropped = false;
    for (index_t q = 0; q < k && !dropped; ++q)
      dropped = static_cast<double>(pk.iou(keep[q], c)) > iou_threshold;
    if (!dropped) keep[k++] = c;
  }
  return k;
}

void mask_matrix_nms_cpu(const uint64_t* bits, const int32_t* boxes, const int64_t* areas,
                         const float* scores, const int64_t* labels, index_t n, index_t h,
                         index_t ww, int kernel, double sigma, float* out) {
  if (n <= 0) return;
  const float sg = static_cast<float>(sigma);
  const Packed pk = make_packed(bits, boxes, areas, h, ww);
  std::vector<index_t> order(static_cast<size_t>(n));
  rank_scores(scores, n, order.data());
  const Partition part = partition_by_label(labels, order.data(), n);
  std::vector<index_t> mask(static_cast<size_t>(n)), gstart(static_cast<size_t>(n));
  for (index_t g = 0; g < part.groups(); ++g)
    for (index_t p = part.start[g]; p < part.start[g + 1]; ++p) {
      gstart[p] = part.start[g];
      mask[p] = order[part.perm[p]];  // partition position -> input index
    }
  std::vector<float> cterm(static_cast<size_t>(n));
  const bool par = n >= 16;
#pragma omp parallel if (par)
  {
    // Pass 1: compensation term of each mask, from its largest IoU with a higher-ranked mask
    // of its label (0 if none; mask IoUs are never NaN).
#pragma omp for schedule(dynamic, 4)
    for (index_t p = 0; p < n; ++p) {
      float comp = 0.0f;
      for (index_t q = gstart[p]; q < p; ++q) {
        const float v = pk.iou(mask[q], mask[p]);
        comp = v > comp ? v : comp;
      }
      cterm[p] = matrix_term(comp, kernel, sg);
    }
    // Pass 2: min(1, min over higher-ranked masks q of its label of term(iou) / cterm[q]),
    // NaN if any quotient is NaN (0 / 0 with the linear kernel), a zero result +0.
#pragma omp for schedule(dynamic, 4)
    for (index_t p = 0; p < n; ++p) {
      float d = 1.0f;
      bool nan = false;
      for (index_t q = gstart[p]; q < p; ++q) {
        const float x = matrix_term(pk.iou(mask[q], mask[p]), kernel, sg) / cterm[q];
        nan |= x != x;
        d = x < d ? x : d;
      }
      if (nan) d = std::numeric_limits<float>::quiet_NaN();
      else if (d == 0.0f) d = 0.0f;
      const index_t i = mask[p];
      out[i] = scores[i] * d;
    }
  }
}

}  // namespace fastiou
