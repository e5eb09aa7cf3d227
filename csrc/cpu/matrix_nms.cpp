// Matrix NMS (SOLOv2, mmdet mask_matrix_nms) on the CPU.
//
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
  RegionErrors err;
#pragma omp parallel if (par)
  {
    std::vector<T> buf;
    err.run([&] { buf.resize(static_cast<size_t>(n)); });
#pragma omp for schedule(dynamic, 16)
    for (index_t p = 0; p < n; ++p)
      if (!err.failed()) cterm[p] = comp_term(c, gstart[p], p - gstart[p], kernel, sg, buf.data());
#pragma omp for schedule(dynamic, 16)
    for (index_t p = 0; p < n; ++p) {
      if (err.failed()) continue;
      const T d = decay(c, gstart[p], p - gstart[p], cterm.data(), kernel, sg, buf.data());
      const index_t i = order[part.perm[p]];
      out[i] = scores[i] * d;
    }
  }
  err.rethrow([&] {
    return "matrix_nms: out of memory for a row of " + bytes_text(double(sizeof(T)) * n) +
           " a thread (" + std::to_string(n) + " boxes)";
  });
}

template void matrix_nms_cpu<float>(const float*, const float*, const int64_t*, index_t, int,
                                    double, float*);
template void matrix_nms_cpu<double>(const double*, const double*, const int64_t*, index_t, int,
                                     double, double*);

}  // namespace fastiou
