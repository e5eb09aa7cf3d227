// Each row's best IoU and column, and torchvision's Matcher, fused: the N x M IoU matrix is
// never built (math: fastiou/anchor_math.h over box_math.h's IoU). Memory: O(N + M) plus a
// block of rows per thread.
//
// Parallelisation (OpenMP): tasks are blocks of kBlock rows of one batch item. A block loads
// its rows as structure-of-arrays and walks the columns; for each column the IoU of every row
// of the block is one vectorised loop. The low-quality rule needs each column's maximum over
// all rows: each thread keeps its own column maxima (M values), merged after the pass; then a
// second pass revisits only the rows that can hold a tie (label not yet their best column,
// best >= the smallest column maximum) and scans their row again.
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

template <typename T>
struct Cols {  // one item's columns, structure-of-arrays
  std::vector<T> x1, y1, x2, y2, area;
  Cols(const T* boxes, index_t m) : x1(m), y1(m), x2(m), y2(m), area(m) {
    for (index_t j = 0; j < m; ++j) {
      const BoxF<T> b = make_boxf(boxes + 4 * j, FMT_XYXY, MODE_IOU);
      x1[j] = b.x1; y1[j] = b.y1; x2[j] = b.x2; y2[j] = b.y2; area[j] = b.area;
    }
  }
};

template <typename T>
struct Scratch {  // one thread's block of rows
  T ax1[kBlock], ay1[kBlock], ax2[kBlock], ay2[kBlock], aar[kBlock], v[kBlock], best[kBlock];
  int32_t arg[kBlock];
};

// Rows [0, cnt) of the scratch against column j: v[k] = IoU.
template <typename T>
FASTIOU_HD void column_ious(Scratch<T>& s, index_t cnt, const Cols<T>& c, index_t j) {
  const T bx1 = c.x1[j], by1 = c.y1[j], bx2 = c.x2[j], by2 = c.y2[j], bar = c.area[j];
  const T zero = T(0);
#pragma GCC ivdep
  for (index_t k = 0; k < cnt; ++k)
    s.v[k] = pair_value<T, MODE_IOU>(s.ax1[k], s.ay1[k], s.ax2[k], s.ay2[k], s.aar[k], zero, zero,
                                     zero, bx1, by1, bx2, by2, bar, zero, zero, zero, zero);
}

// The block's row maxima over all columns and, when colmax is given, this thread's column maxima.
template <typename T>
FASTIOU_HD void block_pass(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c, index_t m,
                           T* colmax) {
  for (index_t k = 0; k < cnt; ++k) {
    const BoxF<T> b = make_boxf(rows + 4 * k, FMT_XYXY, MODE_IOU);
    s.ax1[k] = b.x1; s.ay1[k] = b.y1; s.ax2[k] = b.x2; s.ay2[k] = b.y2; s.aar[k] = b.area;
  }
  for (index_t j = 0; j < m; ++j) {
    column_ious(s, cnt, c, j);
    if (j == 0) {
      for (index_t k = 0; k < cnt; ++k) { s.best[k] = s.v[k]; s.arg[k] = 0; }
    } else {
      const int32_t jj = static_cast<int32_t>(j);
      for (index_t k = 0; k < cnt; ++k) {
        const bool up = iou_better(s.v[k], s.best[k]);
        s.best[k] = up ? s.v[k] : s.best[k];
        s.arg[k] = up ? jj : s.arg[k];
      }
    }
    if (colmax != nullptr) {
      T acc[kLanes];
      for (int l = 0; l < kLanes; ++l) acc[l] = colmax[j];
      index_t k = 0;
      for (; k + kLanes <= cnt; k += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] = iou_colmax(acc[l], s.v[k + l]);
      for (; k < cnt; ++k) acc[0] = iou_colmax(acc[0], s.v[k]);
      T r = acc[0];
      for (int l = 1; l < kLanes; ++l) r = iou_colmax(r, acc[l]);
      colmax[j] = r;
    }
  }
}

#define FASTIOU_BLOCK_PASS(T, NAME)                                                            \
  FASTIOU_CLONES void NAME(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c,       \
                           index_t m, T* colmax) {                                            \
    block_pass<T>(s, rows, cnt, c, m, colmax);                                                \
  }
FASTIOU_BLOCK_PASS(float, block_pass_f32)
FASTIOU_BLOCK_PASS(double, block_pass_f64)
#undef FASTIOU_BLOCK_PASS
void run_block(Scratch<float>& s, const float* r, index_t n, const Cols<float>& c, index_t m, float* cm) {
  block_pass_f32(s, r, n, c, m, cm);
}
void run_block(Scratch<double>& s, const double* r, index_t n, const Cols<double>& c, index_t m, double* cm) {
  block_pass_f64(s, r, n, c, m, cm);
}

// Second pass of the low-quality rule for one row: its best column if the row holds some
// column's maximum, else -1.
template <typename T>
int64_t lowq_row(const T* row, const Cols<T>& c, index_t m, const T* colmax) {
  const BoxF<T> a = make_boxf(row, FMT_XYXY, MODE_IOU);
  const T zero = T(0);
  T best = T(0);
  int64_t arg = -1;
  bool tie = false;
  for (index_t j = 0; j < m; ++j) {
    const T v = pair_value<T, MODE_IOU>(a.x1, a.y1, a.x2, a.y2, a.area, zero, zero, zero, c.x1[j],
                                        c.y1[j], c.x2[j], c.y2[j], c.area[j], zero, zero, zero, zero);
    if (arg < 0 || iou_better(v, best)) { best = v; arg = j; }
    tie = tie || v == colmax[j];
  }
  return tie ? arg : -1;
}

// One batch item: rows (n, 4), columns (m, 4), m >= 1. Writes values/indices (box_iou_max) or
// labels (match_boxes; `best` is then an n-sized scratch for the rows' maxima).
template <typename T>
void item(const T* rows, index_t n, const T* cols, index_t m, T* best_out, int64_t* idx_out,
          int64_t* labels, double low, double high, bool lowq) {
  const Cols<T> c(cols, m);
  const bool want_col = labels != nullptr && lowq;
  const int nthreads = (n * m > kParallelMin) ? omp_get_max_threads() : 1;
  std::vector<T> colmax(want_col ? m : 0, -std::numeric_limits<T>::infinity());
  const index_t blocks = (n + kBlock - 1) / kBlock;
  const T tlow = static_cast<T>(low), thigh = static_cast<T>(high);
#pragma omp parallel num_threads(nthreads)
  {
    Scratch<T>* s = new Scratch<T>;
    std::vector<T> mine(want_col ? m : 0, -std::numeric_limits<T>::infinity());
#pragma omp for schedule(dynamic, 1)
    for (index_t bi = 0; bi < blocks; ++bi) {
      const index_t i0 = bi * kBlock, cnt = std::min(kBlock, n - i0);
      run_block(*s, rows + 4 * i0, cnt, c, m, want_col ? mine.data() : nullptr);
      for (index_t k = 0; k < cnt; ++k) {
        best_out[i0 + k] = s->best[k];
        if (labels != nullptr)
          labels[i0 + k] = match_label<T>(s->best[k], s->arg[k], tlow, thigh);
        else
          idx_out[i0 + k] = s->arg[k];
      }
    }
    if (want_col) {
#pragma omp critical(fastiou_colmax)
      for (index_t j = 0; j < m; ++j) colmax[j] = iou_colmax(colmax[j], mine[j]);
    }
    delete s;
  }
  if (!want_col) return;
  T min_col = std::numeric_limits<T>::infinity();
  for (index_t j = 0; j < m; ++j)
    if (colmax[j] < min_col) min_col = colmax[j];  // a NaN maximum ties nothing
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nthreads)
  for (index_t i = 0; i < n; ++i) {
    if (!lowq_candidate<T>(labels[i], best_out[i], min_col)) continue;
    const int64_t arg = lowq_row(rows + 4 * i, c, m, colmax.data());
    if (arg >= 0) labels[i] = arg;
  }
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
