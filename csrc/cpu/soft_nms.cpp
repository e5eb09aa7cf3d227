// Soft-NMS (mmcv.ops.soft_nms) and Matrix NMS (SOLOv2, mmdet mask_matrix_nms) on the CPU.
//
// soft_nms is serial (each pick depends on the decays before it): the boxes still in play are
// kept compacted, in input order, as structure-of-arrays; each pick is one vectorised pass
// that decays every box still in play, then one pass that drops those under min_score and
// finds the next pick. O(N x K) pair evaluations, no N x N memory.
// matrix_nms ranks once, partitions by label, then is parallel over boxes (OpenMP): pass 1
// finds each box's compensation (its largest IoU with a higher-ranked box of its label), pass 2
// its decay. O(sum over labels of n_l^2) pair evaluations, O(N) memory.
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

template <typename T>
FASTIOU_HD T iou_pair(T ax1, T ay1, T ax2, T ay2, T aar, T bx1, T by1, T bx2, T by2, T bar) {
  const T z = T(0);
  return pair_value<T, MODE_IOU>(ax1, ay1, ax2, ay2, aar, z, z, z, bx1, by1, bx2, by2, bar, z, z,
                                 z, z);
}

// ------------------------------------------------------------------------------ soft-NMS

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

// ------------------------------------------------------------------------------ Matrix NMS

// IoU of box p with each of the m boxes before it in its group (the a side: higher-ranked).
template <typename T>
FASTIOU_HD void iou_row(const T* __restrict__ x1, const T* __restrict__ y1,
                        const T* __restrict__ x2, const T* __restrict__ y2,
                        const T* __restrict__ ar, index_t m, index_t p, T* __restrict__ out) {
  const T bx1 = x1[p], by1 = y1[p], bx2 = x2[p], by2 = y2[p], bar = ar[p];
  for (index_t q = 0; q < m; ++q)
    out[q] = iou_pair(x1[q], y1[q], x2[q], y2[q], ar[q], bx1, by1, bx2, by2, bar);
}

// Largest of v[0..m) and 0, NaN if any is NaN (torch.max's rule); the same value in any order
// of evaluation up to the sign of a zero result, which no kernel distinguishes (x^2, 1 - x).
template <typename T>
FASTIOU_HD T max0_nan(const T* __restrict__ v, index_t m) {
  constexpr int L = 16;
  T acc[L];
  int nan[L];
  for (int l = 0; l < L; ++l) { acc[l] = T(0); nan[l] = 0; }
  index_t q = 0;
  for (; q + L <= m; q += L)
    for (int l = 0; l < L; ++l) {
      const T x = v[q + l];
      acc[l] = x > acc[l] ? x : acc[l];
      nan[l] |= x != x;
    }
  T r = T(0);
  int any = 0;
  for (int l = 0; l < L; ++l) { r = acc[l] > r ? acc[l] : r; any |= nan[l]; }
  for (; q < m; ++q) { r = v[q] > r ? v[q] : r; any |= v[q] != v[q]; }
  return any ? std::numeric_limits<T>::quiet_NaN() : r;
}

// min(1, min over q of matrix_term(iou[q]) / cterm[q]), NaN if any quotient is NaN (torch.min's
// rule); a zero result is +0 whatever the order of evaluation.
template <typename T>
FASTIOU_HD T decay_min(const T* __restrict__ iou, const T* __restrict__ cterm, index_t m,
                       int kernel, T sigma) {
  constexpr int L = 16;
  T acc[L];
  int nan[L];
  for (int l = 0; l < L; ++l) { acc[l] = T(1); nan[l] = 0; }
  index_t q = 0;
  if (kernel == MATRIX_LINEAR) {
    for (; q + L <= m; q += L)
      for (int l = 0; l < L; ++l) {
        const T x = matrix_term(iou[q + l], MATRIX_LINEAR, sigma) / cterm[q + l];
        acc[l] = x < acc[l] ? x : acc[l];
        nan[l] |= x != x;
      }
  }
  T r = T(1);
  int any = 0;
  for (int l = 0; l < L; ++l) { r = acc[l] < r ? acc[l] : r; any |= nan[l]; }
  for (; q < m; ++q) {
    const T x = matrix_term(iou[q], kernel, sigma) / cterm[q];
    r = x < r ? x : r;
    any |= x != x;
  }
  if (any) return std::numeric_limits<T>::quiet_NaN();
  return r == T(0) ? T(0) : r;
}

// Pass 1 for box p: its compensation term; pass 2: its decay. `buf` holds p values.
template <typename T>
FASTIOU_HD T comp_term_impl(const BoxCols<T>& c, index_t s, index_t p, int kernel, T sigma,
                            T* buf) {
  iou_row(c.x1 + s, c.y1 + s, c.x2 + s, c.y2 + s, c.area + s, p, p, buf);
  return matrix_term(p ? max0_nan(buf, p) : T(0), kernel, sigma);
}
template <typename T>
FASTIOU_HD T decay_impl(const BoxCols<T>& c, index_t s, index_t p, const T* cterm, int kernel,
                        T sigma, T* buf) {
  iou_row(c.x1 + s, c.y1 + s, c.x2 + s, c.y2 + s, c.area + s, p, p, buf);
  return decay_min(buf, cterm + s, p, kernel, sigma);
}

FASTIOU_CLONES float comp_term_f32(const BoxCols<float>& c, index_t s, index_t p, int kernel,
                                   float sigma, float* buf) {
  return comp_term_impl<float>(c, s, p, kernel, sigma, buf);
}
FASTIOU_CLONES double comp_term_f64(const BoxCols<double>& c, index_t s, index_t p, int kernel,
                                    double sigma, double* buf) {
  return comp_term_impl<double>(c, s, p, kernel, sigma, buf);
}
FASTIOU_CLONES float decay_f32(const BoxCols<float>& c, index_t s, index_t p, const float* cterm,
                               int kernel, float sigma, float* buf) {
  return decay_impl<float>(c, s, p, cterm, kernel, sigma, buf);
}
FASTIOU_CLONES double decay_f64(const BoxCols<double>& c, index_t s, index_t p,
                                const double* cterm, int kernel, double sigma, double* buf) {
  return decay_impl<double>(c, s, p, cterm, kernel, sigma, buf);
}
inline float comp_term(const BoxCols<float>& c, index_t s, index_t p, int k, float sg, float* b) {
  return comp_term_f32(c, s, p, k, sg, b);
}
inline double comp_term(const BoxCols<double>& c, index_t s, index_t p, int k, double sg,
                        double* b) {
  return comp_term_f64(c, s, p, k, sg, b);
}
inline float decay(const BoxCols<float>& c, index_t s, index_t p, const float* ct, int k,
                   float sg, float* b) {
  return decay_f32(c, s, p, ct, k, sg, b);
}
inline double decay(const BoxCols<double>& c, index_t s, index_t p, const double* ct, int k,
                    double sg, double* b) {
  return decay_f64(c, s, p, ct, k, sg, b);
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

template <typename T>
void matrix_nms_cpu(const T* boxes, const T* scores, const int64_t* labels, index_t n,
                    int kernel, double sigma, T* out) {
  if (n <= 0) return;
  const T sg = static_cast<T>(sigma);
  std::vector<index_t> order(static_cast<size_t>(n));
  rank_scores(scores, n, order.data());
  const Partition part = partition_by_label(labels, order.data(), n);
  BoxCols<T> c;
  c.resize(n);
  std::vector<index_t> gstart(static_cast<size_t>(n));  // start of each position's group
  for (index_t g = 0; g < part.groups(); ++g)
    for (index_t p = part.start[g]; p < part.start[g + 1]; ++p) {
      gstart[p] = part.start[g];
      c.set(p, boxes + 4 * order[part.perm[p]]);
    }
  std::vector<T> cterm(static_cast<size_t>(n));
  const bool par = n >= 256;
  // Work grows with the position in the group: small dynamic chunks keep the threads even.
#pragma omp parallel if (par)
  {
    std::vector<T> buf(static_cast<size_t>(n));
#pragma omp for schedule(dynamic, 16)
    for (index_t p = 0; p < n; ++p)
      cterm[p] = comp_term(c, gstart[p], p - gstart[p], kernel, sg, buf.data());
#pragma omp for schedule(dynamic, 16)
    for (index_t p = 0; p < n; ++p) {
      const T d = decay(c, gstart[p], p - gstart[p], cterm.data(), kernel, sg, buf.data());
      const index_t i = order[part.perm[p]];
      out[i] = scores[i] * d;
    }
  }
}

template index_t soft_nms_cpu<float>(const float*, const float*, index_t, double, double, double,
                                     int, int64_t*, float*);
template index_t soft_nms_cpu<double>(const double*, const double*, index_t, double, double,
                                      double, int, int64_t*, double*);
template void matrix_nms_cpu<float>(const float*, const float*, const int64_t*, index_t, int,
                                    double, float*);
template void matrix_nms_cpu<double>(const double*, const double*, const int64_t*, index_t, int,
                                     double, double*);

}  // namespace fastiou
