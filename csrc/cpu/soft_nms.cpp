// Soft-NMS (mmcv.ops.soft_nms) on the CPU.
//
// soft_nms is serial (each pick depends on the decays before it): the boxes still in play are
// kept compacted, in input order, as structure-of-arrays; each pick is one vectorised pass
// that decays every box still in play, then one pass that drops those under min_score and
// finds the next pick. O(N x K) pair evaluations, no N x N memory.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_common.h"
#include "fastiou/ops.h"
#include "nms_common.h"

namespace fastiou {

using namespace nms_detail;

namespace {

// sc[e] *= soft_weight(iou(picked, e)) for e in [0, m); `tmp` holds m values of scratch.
template <typename T>
FASTIOU_HD void soft_decay_impl(const T* __restrict__ x1, const T* __restrict__ y1,
                                const T* __restrict__ x2, const T* __restrict__ y2,
                                const T* __restrict__ ar, T* __restrict__ sc, T* __restrict__ tmp,
                                index_t m, const T* p, int method, T thr, T sigma) {
  const T px1 = p[0], py1 = p[1], px2 = p[2], py2 = p[3], par = p[4];
  if (method == SOFT_LINEAR) {
    for (index_t e = 0; e < m; ++e) {
      const T iou = iou_pair(px1, py1, px2, py2, par, x1[e], y1[e], x2[e], y2[e], ar[e]);
      sc[e] = sc[e] * soft_weight(iou, SOFT_LINEAR, thr, sigma);
    }
  } else if (method == SOFT_HARD) {
    for (index_t e = 0; e < m; ++e) {
      const T iou = iou_pair(px1, py1, px2, py2, par, x1[e], y1[e], x2[e], y2[e], ar[e]);
      sc[e] = sc[e] * soft_weight(iou, SOFT_HARD, thr, sigma);
    }
  } else {
    // The exponent in vector lanes; libm's exp only where it is not 0 (soft_weight's
    // exp_or_one: a box that does not overlap the pick keeps its score, as x * 1 would).
    for (index_t e = 0; e < m; ++e) {
      const T iou = iou_pair(px1, py1, px2, py2, par, x1[e], y1[e], x2[e], y2[e], ar[e]);
      tmp[e] = -(iou * iou) / sigma;
    }
    for (index_t e = 0; e < m; ++e)
      if (tmp[e] != T(0)) sc[e] = sc[e] * exp_t(tmp[e]);
  }
}

FASTIOU_CLONES void soft_decay_f32(const float* x1, const float* y1, const float* x2,
                                   const float* y2, const float* ar, float* sc, float* tmp,
                                   index_t m, const float* p, int method, float thr, float sigma) {
  soft_decay_impl<float>(x1, y1, x2, y2, ar, sc, tmp, m, p, method, thr, sigma);
}
FASTIOU_CLONES void soft_decay_f64(const double* x1, const double* y1, const double* x2,
                                   const double* y2, const double* ar, double* sc, double* tmp,
                                   index_t m, const double* p, int method, double thr,
                                   double sigma) {
  soft_decay_impl<double>(x1, y1, x2, y2, ar, sc, tmp, m, p, method, thr, sigma);
}
inline void soft_decay(const float* x1, const float* y1, const float* x2, const float* y2,
                       const float* ar, float* sc, float* tmp, index_t m, const float* p,
                       int method, float thr, float sigma) {
  soft_decay_f32(x1, y1, x2, y2, ar, sc, tmp, m, p, method, thr, sigma);
}
inline void soft_decay(const double* x1, const double* y1, const double* x2, const double* y2,
                       const double* ar, double* sc, double* tmp, index_t m, const double* p,
                       int method, double thr, double sigma) {
  soft_decay_f64(x1, y1, x2, y2, ar, sc, tmp, m, p, method, thr, sigma);
}

// The ranking of nms_math.h on current scores: higher first, NaN after every number.
template <typename T>
inline bool ranks_before(T a, T b) {
  return a > b || (b != b && a == a);
}


}  // namespace

template <typename T>
index_t soft_nms_cpu(const T* boxes, const T* scores, index_t n, double iou_threshold,
                     double sigma, double min_score, int method, int64_t* keep, T* new_scores) {
  if (n <= 0) return 0;
  // mmcv's kernel takes float parameters and computes in float: the parameters in T.
  const T thr = static_cast<T>(iou_threshold), sg = static_cast<T>(sigma);
  const T ms = static_cast<T>(min_score);
  BoxCols<T> c;
  c.resize(n);
  std::vector<T> sc(scores, scores + n), tmp(static_cast<size_t>(n));
  std::vector<index_t> idx(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    c.set(i, boxes + 4 * i);
    idx[i] = i;
  }
  index_t m = n, best = 0;
  for (index_t e = 1; e < m; ++e)
    if (ranks_before(sc[e], sc[best])) best = e;
  index_t k = 0;
  while (m > 0) {
    // Pick the best box still in play (ties: the lowest input index, the first in play).
    const index_t p = best;
    keep[k] = idx[p];
    new_scores[k] = sc[p];
    ++k;
    const T pick[5] = {c.x1[p], c.y1[p], c.x2[p], c.y2[p], c.area[p]};
    soft_decay(c.x1, c.y1, c.x2, c.y2, c.area, sc.data(), tmp.data(), m, pick, method, thr, sg);
    // Drop the pick and the boxes now under min_score (strictly, as mmcv: NaN stays in play),
    // keep the rest in input order, and find the next pick.
    index_t w = 0;
    best = -1;
    for (index_t e = 0; e < m; ++e) {
      if (e == p || sc[e] < ms) continue;
      if (w != e) {
        c.x1[w] = c.x1[e]; c.y1[w] = c.y1[e]; c.x2[w] = c.x2[e]; c.y2[w] = c.y2[e];
        c.area[w] = c.area[e]; sc[w] = sc[e]; idx[w] = idx[e];
      }
      if (best < 0 || ranks_before(sc[w], sc[best])) best = w;
      ++w;
    }
    m = w;
  }
  return k;
}

template index_t soft_nms_cpu<float>(const float*, const float*, index_t, double, double, double,
                                     int, int64_t*, float*);
template index_t soft_nms_cpu<double>(const double*, const double*, index_t, double, double,
                                      double, int, int64_t*, double*);

}  // namespace fastiou
