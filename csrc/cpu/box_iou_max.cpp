// Each row's best IoU and column, and torchvision's Matcher, fused: the N x M IoU matrix is
// never built (math: fastiou/anchor_math.h over box_math.h's IoU). Memory: O(N + M) plus a
// block of rows per thread.
//
// Parallelisation (OpenMP): tasks are blocks of kBlock rows of one batch item. A block loads
// its rows as structure-of-arrays and walks the columns; for each column the IoU of every row
// of the block is one vectorised loop. A column that misses the block's bounding box has IoU
// exactly +0 with every row when all boxes involved are plain (finite, positive extents; see
// plain_box), so it is skipped with that effect applied directly: the work then scales with
// the overlapping (block, column) pairs, not N x M.
//
// The low-quality rule needs each column's maximum over all rows: each thread keeps its own
// column maxima (M values), merged after the first pass; a second pass revisits only the
// blocks holding a row that can tie (label not yet its best column, best >= the smallest
// column maximum) and, per block, only the columns whose maximum such a row can reach.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_common.h"
#include "fastiou/anchor_math.h"
#include "fastiou/ops.h"

namespace fastiou {
namespace {

constexpr index_t kBlock = 256;  // rows per task
constexpr int kLanes = 16;       // accumulators of the column-maximum reduction

// A box whose IoU with a box it does not overlap is exactly +0: finite coordinates, x2 > x1,
// y2 > y1 and a finite positive area (so the union is positive and finite).
template <typename T>
bool plain_box(const BoxF<T>& b) {
  return std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2) &&
         b.x2 > b.x1 && b.y2 > b.y1 && std::isfinite(b.area) && b.area > T(0);
}

template <typename T>
struct Cols {  // one item's columns, structure-of-arrays
  std::vector<T> x1, y1, x2, y2, area;
  std::vector<uint8_t> plain;
  Cols(const T* boxes, index_t m) : x1(m), y1(m), x2(m), y2(m), area(m), plain(m) {
    for (index_t j = 0; j < m; ++j) {
      const BoxF<T> b = make_boxf(boxes + 4 * j, FMT_XYXY, MODE_IOU);
      x1[j] = b.x1; y1[j] = b.y1; x2[j] = b.x2; y2[j] = b.y2; area[j] = b.area;
      plain[j] = plain_box(b);
    }
  }
};

template <typename T>
struct Scratch {  // one thread's block of rows
  T ax1[kBlock], ay1[kBlock], ax2[kBlock], ay2[kBlock], aar[kBlock], v[kBlock], best[kBlock];
  int32_t arg[kBlock];
  uint8_t tie[kBlock];
  T bx1, by1, bx2, by2;  // the block's bounding box
  bool plain;            // every row is plain_box
};

template <typename T>
void load_block(Scratch<T>& s, const T* rows, index_t cnt) {
  s.plain = true;
  s.bx1 = s.by1 = std::numeric_limits<T>::infinity();
  s.bx2 = s.by2 = -std::numeric_limits<T>::infinity();
  for (index_t k = 0; k < cnt; ++k) {
    const BoxF<T> b = make_boxf(rows + 4 * k, FMT_XYXY, MODE_IOU);
    s.ax1[k] = b.x1; s.ay1[k] = b.y1; s.ax2[k] = b.x2; s.ay2[k] = b.y2; s.aar[k] = b.area;
    s.plain = s.plain && plain_box(b);
    s.bx1 = std::min(s.bx1, b.x1); s.by1 = std::min(s.by1, b.y1);
    s.bx2 = std::max(s.bx2, b.x2); s.by2 = std::max(s.by2, b.y2);
  }
}

// Column j misses every row of the block, so each of its IoUs is exactly +0.
template <typename T>
bool misses(const Scratch<T>& s, const Cols<T>& c, index_t j) {
  return s.plain && c.plain[j] &&
         (c.x1[j] >= s.bx2 || c.x2[j] <= s.bx1 || c.y1[j] >= s.by2 || c.y2[j] <= s.by1);
}

// Rows [0, cnt) of the block against column j: v[k] = IoU.
template <typename T>
FASTIOU_HD void column_ious(Scratch<T>& s, index_t cnt, const Cols<T>& c, index_t j) {
  const T bx1 = c.x1[j], by1 = c.y1[j], bx2 = c.x2[j], by2 = c.y2[j], bar = c.area[j];
  const T zero = T(0);
#pragma GCC ivdep
  for (index_t k = 0; k < cnt; ++k)
    s.v[k] = pair_value<T, MODE_IOU>(s.ax1[k], s.ay1[k], s.ax2[k], s.ay2[k], s.aar[k], zero, zero,
                                     zero, bx1, by1, bx2, by2, bar, zero, zero, zero, zero);
}

// The NaN-propagating maximum of `start` and v[0, cnt) (iou_colmax over them), in kLanes
// independent accumulators so it vectorises; NaN is tracked apart.
template <typename T>
FASTIOU_HD T vector_max(const T* v, index_t cnt, T start) {
  T acc[kLanes];
  uint8_t nan[kLanes];
  for (int l = 0; l < kLanes; ++l) { acc[l] = start; nan[l] = 0; }
  index_t k = 0;
  for (; k + kLanes <= cnt; k += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T x = v[k + l];
      acc[l] = x > acc[l] ? x : acc[l];
      nan[l] = nan[l] | static_cast<uint8_t>(x != x);
    }
  for (; k < cnt; ++k) {
    acc[0] = v[k] > acc[0] ? v[k] : acc[0];
    nan[0] = nan[0] | static_cast<uint8_t>(v[k] != v[k]);
  }
  T r = acc[0];
  uint8_t any_nan = nan[0];
  for (int l = 1; l < kLanes; ++l) { r = acc[l] > r ? acc[l] : r; any_nan |= nan[l]; }
  return any_nan ? std::numeric_limits<T>::quiet_NaN() : r;
}

// Pass 1 for one block: the rows' maxima over all columns (best, arg) and, when colmax is
// given, this thread's column maxima (a NaN column maximum stays NaN).
template <typename T>
FASTIOU_HD void block_pass(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c, index_t m,
                           T* colmax) {
  load_block(s, rows, cnt);
  for (index_t j = 0; j < m; ++j) {
    if (misses(s, c, j)) {  // every IoU is +0: it only starts the rows (j == 0) or a column
      if (j == 0)
        for (index_t k = 0; k < cnt; ++k) { s.best[k] = T(0); s.arg[k] = 0; }
      if (colmax != nullptr && colmax[j] < T(0)) colmax[j] = T(0);
      continue;
    }
    column_ious(s, cnt, c, j);
    if (j == 0) {
      for (index_t k = 0; k < cnt; ++k) { s.best[k] = s.v[k]; s.arg[k] = 0; }
    } else {
      const int32_t jj = static_cast<int32_t>(j);
      for (index_t k = 0; k < cnt; ++k) {
        const T v = s.v[k], b = s.best[k];
        const bool up = (v > b) | ((v != v) & (b == b));  // iou_better, branch-free
        s.best[k] = up ? v : b;
        s.arg[k] = up ? jj : s.arg[k];
      }
    }
    if (colmax != nullptr && colmax[j] == colmax[j]) colmax[j] = vector_max(s.v, cnt, colmax[j]);
  }
}

// Pass 2 for one block: tie[k] = row k's IoU with some column equals that column's maximum,
// over the columns whose maximum is <= `reach` (the largest best of the block's candidates).
template <typename T>
FASTIOU_HD void block_ties(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c, index_t m,
                           const T* colmax, T reach) {
  load_block(s, rows, cnt);
  for (index_t k = 0; k < cnt; ++k) s.tie[k] = 0;
  for (index_t j = 0; j < m; ++j) {
    const T cm = colmax[j];
    if (!(cm <= reach)) continue;  // above every candidate's best, or NaN: ties none
    if (misses(s, c, j)) {
      if (cm == T(0))
        for (index_t k = 0; k < cnt; ++k) s.tie[k] = 1;
      continue;
    }
    column_ious(s, cnt, c, j);
    for (index_t k = 0; k < cnt; ++k) s.tie[k] = s.tie[k] | static_cast<uint8_t>(s.v[k] == cm);
  }
}

#define FASTIOU_BLOCK_FNS(T, PASS, TIES)                                                       \
  FASTIOU_CLONES void PASS(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c,       \
                           index_t m, T* colmax) {                                            \
    block_pass<T>(s, rows, cnt, c, m, colmax);                                                \
  }                                                                                           \
  FASTIOU_CLONES void TIES(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c,       \
                           index_t m, const T* colmax, T reach) {                             \
    block_ties<T>(s, rows, cnt, c, m, colmax, reach);                                         \
  }
FASTIOU_BLOCK_FNS(float, block_pass_f32, block_ties_f32)
FASTIOU_BLOCK_FNS(double, block_pass_f64, block_ties_f64)
#undef FASTIOU_BLOCK_FNS
void run_pass(Scratch<float>& s, const float* r, index_t n, const Cols<float>& c, index_t m, float* cm) {
  block_pass_f32(s, r, n, c, m, cm);
}
void run_pass(Scratch<double>& s, const double* r, index_t n, const Cols<double>& c, index_t m, double* cm) {
  block_pass_f64(s, r, n, c, m, cm);
}
void run_ties(Scratch<float>& s, const float* r, index_t n, const Cols<float>& c, index_t m,
              const float* cm, float reach) {
  block_ties_f32(s, r, n, c, m, cm, reach);
}
void run_ties(Scratch<double>& s, const double* r, index_t n, const Cols<double>& c, index_t m,
              const double* cm, double reach) {
  block_ties_f64(s, r, n, c, m, cm, reach);
}

// The low-quality rule's second pass over one item (labels, best and args from pass 1).
template <typename T>
void lowq_pass(const T* rows, index_t n, const Cols<T>& c, index_t m, const std::vector<T>& colmax,
               const T* best, const int32_t* args, int64_t* labels, int nthreads) {
  T min_col = std::numeric_limits<T>::infinity();
  for (index_t j = 0; j < m; ++j)
    if (colmax[j] < min_col) min_col = colmax[j];  // a NaN maximum ties nothing
  const index_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(nthreads)
  {
    Scratch<T>* s = new Scratch<T>;
#pragma omp for schedule(dynamic, 1)
    for (index_t bi = 0; bi < blocks; ++bi) {
      const index_t i0 = bi * kBlock, cnt = std::min(kBlock, n - i0);
      bool any = false;
      T reach = -std::numeric_limits<T>::infinity();
      for (index_t k = 0; k < cnt; ++k) {
        if (!lowq_candidate<T>(labels[i0 + k], best[i0 + k], min_col)) continue;
        any = true;
        reach = std::max(reach, best[i0 + k]);
      }
      if (!any) continue;
      run_ties(*s, rows + 4 * i0, cnt, c, m, colmax.data(), reach);
      for (index_t k = 0; k < cnt; ++k)
        if (s->tie[k] && lowq_candidate<T>(labels[i0 + k], best[i0 + k], min_col))
          labels[i0 + k] = args[i0 + k];
    }
    delete s;
  }
}

// One batch item: rows (n, 4), columns (m, 4), m >= 1. Writes best_out (the rows' maxima) and
// either idx_out (box_iou_max) or labels (match_boxes).
template <typename T>
void item(const T* rows, index_t n, const T* cols, index_t m, T* best_out, int64_t* idx_out,
          int64_t* labels, double low, double high, bool lowq) {
  const Cols<T> c(cols, m);
  const bool want_col = labels != nullptr && lowq;
  const int nthreads = (n * m > kParallelMin) ? omp_get_max_threads() : 1;
  std::vector<T> colmax(want_col ? m : 0, -std::numeric_limits<T>::infinity());
  std::vector<int32_t> args(want_col ? n : 0);  // rows' best columns, for the second pass
  const index_t blocks = (n + kBlock - 1) / kBlock;
  const T tlow = static_cast<T>(low), thigh = static_cast<T>(high);
#pragma omp parallel num_threads(nthreads)
  {
    Scratch<T>* s = new Scratch<T>;
    std::vector<T> mine(want_col ? m : 0, -std::numeric_limits<T>::infinity());
#pragma omp for schedule(dynamic, 1)
    for (index_t bi = 0; bi < blocks; ++bi) {
      const index_t i0 = bi * kBlock, cnt = std::min(kBlock, n - i0);
      run_pass(*s, rows + 4 * i0, cnt, c, m, want_col ? mine.data() : nullptr);
      for (index_t k = 0; k < cnt; ++k) {
        best_out[i0 + k] = s->best[k];
        if (labels == nullptr) {
          idx_out[i0 + k] = s->arg[k];
          continue;
        }
        labels[i0 + k] = match_label<T>(s->best[k], s->arg[k], tlow, thigh);
        if (want_col) args[i0 + k] = s->arg[k];
      }
    }
    if (want_col) {
#pragma omp critical(fastiou_colmax)
      for (index_t j = 0; j < m; ++j) colmax[j] = iou_colmax(colmax[j], mine[j]);
    }
    delete s;
  }
  if (want_col) lowq_pass(rows, n, c, m, colmax, best_out, args.data(), labels, nthreads);
}

}  // namespace

template <typename T>
void box_iou_max_cpu(const T* boxes1, index_t batch1, const T* boxes2, const int64_t* counts,
                     index_t batch, index_t n, index_t m, T* values, int64_t* indices) {
  for (index_t b = 0; b < batch; ++b) {
    const index_t mc = counts[b];
    T* val = values + b * n;
    int64_t* idx = indices + b * n;
    if (mc <= 0) {
      std::fill(val, val + n, T(0));
      std::fill(idx, idx + n, int64_t(-1));
      continue;
    }
    item<T>(boxes1 + (batch1 == 1 ? 0 : b * n * 4), n, boxes2 + b * m * 4, mc, val, idx, nullptr,
            0.0, 0.0, false);
  }
}

template <typename T>
void match_boxes_cpu(const T* anchors, index_t batch1, const T* gt, const int64_t* counts,
                     index_t batch, index_t n, index_t m, double high, double low, bool lowq,
                     int64_t* matches) {
  std::vector<T> best(n);
  for (index_t b = 0; b < batch; ++b) {
    const index_t mc = counts[b];
    int64_t* lab = matches + b * n;
    if (mc <= 0) {
      std::fill(lab, lab + n, int64_t(MATCH_BELOW_LOW));
      continue;
    }
    item<T>(anchors + (batch1 == 1 ? 0 : b * n * 4), n, gt + b * m * 4, mc, best.data(), nullptr,
            lab, low, high, lowq);
  }
}

template void box_iou_max_cpu<float>(const float*, index_t, const float*, const int64_t*, index_t,
                                     index_t, index_t, float*, int64_t*);
template void box_iou_max_cpu<double>(const double*, index_t, const double*, const int64_t*,
                                      index_t, index_t, index_t, double*, int64_t*);
template void match_boxes_cpu<float>(const float*, index_t, const float*, const int64_t*, index_t,
                                     index_t, index_t, double, double, bool, int64_t*);
template void match_boxes_cpu<double>(const double*, index_t, const double*, const int64_t*,
                                      index_t, index_t, index_t, double, double, bool, int64_t*);

}  // namespace fastiou
