// Anchors and IoU matching, defined once for every backend.
//
// Compiled unchanged by g++ (fastiou._C), nvcc (fastiou._C_cuda) and NVRTC (the CuPy backend);
// fastiou/_backends/numba_anchors.py and numba_box_iou_max.py mirror it operation for operation.
//
// Anchor grid (torchvision AnchorGenerator.grid_anchors, detectron2 DefaultAnchorGenerator,
// mmdet AnchorGenerator.single_level_grid_priors): output row (y * W + x) * A + a of a level is
//   center_x = offset * stride_w + x * stride_w   (in double: exact for the integer strides and
//   center_y = offset * stride_h + y * stride_h    the 0 / 0.5 offsets the frameworks use)
//   box      = T(center) + cell[a]               one rounding to T, as the frameworks' add of a
//                                                float32 shift and a float32 cell anchor does
//
// Matching (torch.max over the IoU rows, torchvision's Matcher): IoU is box_math.h's
// pair_value<T, MODE_IOU>, the value box_iou returns, bit for bit. A row's best is its first
// maximum; a NaN beats every number and the first NaN wins (torch.max's rule). Labels:
//   best < low -> -1, low <= best < high -> -2, else the best column; thresholds rounded to T
//   (torch compares a float32 tensor with a Python float in float32). The low-quality rule
//   restores a row's best column when the row holds some column's maximum (IoU == the
//   column's max over all rows; a NaN column max ties nothing).
#pragma once

#include "fastiou/box_math.h"

namespace fastiou {

// Matcher labels (torchvision Matcher.BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS).
enum MatchLabel : int { MATCH_BELOW_LOW = -1, MATCH_BETWEEN = -2 };

FASTIOU_HD double anchor_center(double offset, double stride, index_t x) {
  return offset * stride + static_cast<double>(x) * stride;
}

// True when v replaces `best` as a row's maximum scanned in column order (torch.max: first
// maximum; NaN above every number, the first NaN kept).
template <typename T>
FASTIOU_HD bool iou_better(T v, T best) {
  return v > best || (v != v && best == best);
}

// torch.maximum for the column maxima: NaN-propagating.
template <typename T>
FASTIOU_HD T iou_colmax(T a, T v) {
  return (v > a || v != v) ? v : a;
}

// The Matcher's label from a row's best value and column, before the low-quality rule.
template <typename T>
FASTIOU_HD long long match_label(T best, long long arg, T low, T high) {
  if (best < low) return MATCH_BELOW_LOW;
  if (best < high) return MATCH_BETWEEN;  // best >= low here (NaN fails both and keeps arg)
  return arg;
}

// Whether the low-quality rule can touch a row: its label is not already its best column
// (label < 0), and its best reaches the smallest column maximum (a tie needs IoU == colmax <=
// best). A NaN best always keeps its column, so never reaches here.
template <typename T>
FASTIOU_HD bool lowq_candidate(long long label, T best, T min_colmax) {
  return label < 0 && !(best < min_colmax);
}

}  // namespace fastiou
