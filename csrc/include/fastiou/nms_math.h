// The rules of the suppression family, defined once for the CPU loops and the CUDA kernels.
//
// Ranking: boxes are visited by decreasing score; equal scores keep input order (a stable
// sort, as torchvision's); a NaN score ranks below every other score, -inf included (unlike
// torchvision's CPU sort, which puts NaN first so that a broken box suppresses real ones).
// Scores are ranked as float64 (exact for every input float type).
//
// Suppression test (torchvision's CPU kernel): the IoU is computed in the boxes' compute type
// T exactly as box_iou computes it (box_math.h, MODE_IOU), then compared as a double with the
// threshold: `double(iou) > threshold`, strictly. A NaN IoU (zero-area pairs, NaN coordinates)
// never suppresses.
#pragma once

#include "fastiou/box_math.h"

namespace fastiou {

// Sort key of a score: ascending order of keys is the ranking above (decreasing score, NaN
// last). Pair it with the box index in a stable sort.
FASTIOU_HD unsigned long long score_key(double s) {
  if (s != s) return ~0ull;  // NaN: after everything, -inf included
  unsigned long long u;
#if defined(__CUDA_ARCH__)
  u = static_cast<unsigned long long>(__double_as_longlong(s));
#else
  __builtin_memcpy(&u, &s, sizeof(u));
#endif
  if (s == 0.0) u = 0;  // -0.0 ranks with +0.0 (they compare equal)
  // Order-preserving map of IEEE doubles to unsigned integers, then reversed for "decreasing".
  const unsigned long long ordered = (u >> 63) ? ~u : (u | 0x8000000000000000ull);
  return ~ordered;  // ordered > 0 for every non-NaN double, so ~0ull stays NaN's
}

template <typename T>
FASTIOU_HD bool suppresses(const BoxF<T>& a, const BoxF<T>& b, double threshold) {
  return static_cast<double>(pair_value<T, MODE_IOU>(a, b, T(0))) > threshold;
}

// Soft-NMS methods (mmcv's soft_nms; its "naive" is our "hard").
enum SoftMethod : int { SOFT_LINEAR = 0, SOFT_GAUSSIAN = 1, SOFT_HARD = 2 };

// exp(x), with exp(+-0) = 1 returned without the call (bit-identical: every libm's exp(0) is
// exactly 1). The decays below evaluate exp(-c * iou^2), whose argument is 0 for every pair
// that does not overlap, so most pairs skip the libm call.
template <typename T>
FASTIOU_HD T exp_or_one(T x) { return x == T(0) ? T(1) : exp_t(x); }

// The factor a score is multiplied by when the picked box overlaps it by `iou` (mmcv's
// softnms_cpu, ops/csrc/pytorch/cpu/nms.cpp): linear: 1 - iou when iou >= threshold;
// gaussian: exp(-iou^2 / sigma), at every IoU; hard (mmcv "naive"): 0 when iou >= threshold.
// The test is `>=` as in mmcv (unlike hard NMS's strict `>`), in T as mmcv's float.
template <typename T>
FASTIOU_HD T soft_weight(T iou, int method, T threshold, T sigma) {
  if (method == SOFT_GAUSSIAN) return exp_or_one(-(iou * iou) / sigma);
  if (method == SOFT_LINEAR) return iou >= threshold ? T(1) - iou : T(1);
  return iou >= threshold ? T(0) : T(1);
}

// Matrix NMS kernels (SOLOv2, mmdet mask_matrix_nms).
enum MatrixKernel : int { MATRIX_GAUSSIAN = 0, MATRIX_LINEAR = 1 };

// matrix_decay(iou, comp) = matrix_term(iou) / matrix_term(comp): the kernel applied to the
// pair's IoU over the kernel applied to the compensation (mmdet: exp(-sigma * iou^2) /
// exp(-sigma * comp^2), or (1 - iou) / (1 - comp)). Split so that a loop can compute a box's
// compensation term once; the quotient is the same bits either way.
template <typename T>
FASTIOU_HD T matrix_term(T x, int kernel, T sigma) {
  return kernel == MATRIX_GAUSSIAN ? exp_or_one(-sigma * (x * x)) : T(1) - x;
}

// Decay of a box by a higher-ranked box i of its label that overlaps it by `iou`, where
// `comp` is i's own largest IoU with a box ranked above it (its "compensation").
template <typename T>
FASTIOU_HD T matrix_decay(T iou, T comp, int kernel, T sigma) {
  return matrix_term(iou, kernel, sigma) / matrix_term(comp, kernel, sigma);
}

// The float32 threshold t with, for every float x: (double)x > threshold <=> x > t, i.e. the
// double threshold rounded down to float (NaN stays NaN: nothing passes). It lets float32
// loops apply the suppression test of `suppresses` in float32 lanes.
FASTIOU_HD float threshold_below_f32(double threshold) {
  float t = static_cast<float>(threshold);
  if (static_cast<double>(t) > threshold) {  // rounded up: step to the next float below
    unsigned int u;
#if defined(__CUDA_ARCH__)
    u = __float_as_uint(t);
#else
    __builtin_memcpy(&u, &t, sizeof(u));
#endif
    if (t > 0.0f) u -= 1u;                 // positive (+inf included): one ulp down
    else if (t == 0.0f) u = 0x80000001u;   // +0 or -0: the smallest negative subnormal
    else u += 1u;                          // negative: one ulp away from zero
#if defined(__CUDA_ARCH__)
    t = __uint_as_float(u);
#else
    __builtin_memcpy(&t, &u, sizeof(t));
#endif
  }
  return t;
}

// The suppression threshold in the compute type T: `iou > nms_threshold<T>(t)` in T decides
// exactly as `double(iou) > t` (threshold_below_f32 for float, the value itself for double).
template <typename T>
FASTIOU_HD T nms_threshold(double t);
template <>
FASTIOU_HD float nms_threshold<float>(double t) { return threshold_below_f32(t); }
template <>
FASTIOU_HD double nms_threshold<double>(double t) { return t; }

}  // namespace fastiou
