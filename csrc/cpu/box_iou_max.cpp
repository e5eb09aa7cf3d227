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
#include <cstring>
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

// Loads a block's rows as structure-of-arrays, with their bounding box and plainness
// (plain_box of every row, written branch-free: x - x is 0 only for a finite x).
template <typename T>
FASTIOU_HD void load_block(Scratch<T>& s, const T* rows, index_t cnt) {
  T bx1 = std::numeric_limits<T>::infinity(), by1 = bx1;
  T bx2 = -std::numeric_limits<T>::infinity(), by2 = bx2;
  int bad = 0;
  for (index_t k = 0; k < cnt; ++k) {
    const T x1 = rows[4 * k], y1 = rows[4 * k + 1], x2 = rows[4 * k + 2], y2 = rows[4 * k + 3];
    const T area = (x2 - x1) * (y2 - y1);
    s.ax1[k] = x1; s.ay1[k] = y1; s.ax2[k] = x2; s.ay2[k] = y2; s.aar[k] = area;
    const T fin = (x1 - x1) + (y1 - y1) + (x2 - x2) + (y2 - y2) + (area - area);
    bad |= static_cast<int>(!(fin == T(0))) | static_cast<int>(!(x2 > x1)) |
           static_cast<int>(!(y2 > y1)) | static_cast<int>(!(area > T(0)));
    bx1 = x1 < bx1 ? x1 : bx1; by1 = y1 < by1 ? y1 : by1;
    bx2 = x2 > bx2 ? x2 : bx2; by2 = y2 > by2 ? y2 : by2;
  }
  s.bx1 = bx1; s.by1 = by1; s.bx2 = bx2; s.by2 = by2;
  s.plain = bad == 0;
  if (!s.plain) {  // a NaN coordinate reaches the area as make_boxf does it (box_math.h)
    for (index_t k = 0; k < cnt; ++k) s.aar[k] = make_boxf(rows + 4 * k, FMT_XYXY, MODE_IOU).area;
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

// The maximum of v[0, cnt) when every value is finite and >= +0 (the IoUs of plain boxes):
// then the bit patterns order as the values do, and an integer maximum vectorises where a
// float compare-select reduction does not (without -ffast-math).
template <typename T> struct BitsOf;
template <> struct BitsOf<float> { typedef int32_t type; };
template <> struct BitsOf<double> { typedef int64_t type; };

template <typename T>
FASTIOU_HD T plain_max(const T* v, index_t cnt) {
  typedef typename BitsOf<T>::type I;
  I acc = 0;  // +0.0
  for (index_t k = 0; k < cnt; ++k) {
    I b;
    std::memcpy(&b, v + k, sizeof(I));
    acc = b > acc ? b : acc;
  }
  T r;
  std::memcpy(&r, &acc, sizeof(T));
  return r;
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
    if (colmax != nullptr && colmax[j] == colmax[j]) {
      if (s.plain && c.plain[j]) {
        const T r = plain_max(s.v, cnt);
        colmax[j] = r > colmax[j] ? r : colmax[j];
      } else {
        colmax[j] = vector_max(s.v, cnt, colmax[j]);
      }
    }
  }
}

// A block's bounding box and plainness, kept from pass 1 so pass 2 loads only the blocks a
// column can tie in.
template <typename T>
struct BlockBox {
  T x1, y1, x2, y2;
  bool plain;
};

// Pass 2 for one block: tie[k] = row k's IoU with some column equals that column's maximum,
// over the columns whose maximum is <= `reach` (the largest best of the block's candidates).
// A plain column outside the block's box has IoU +0 with every row: it ties them all when its
// maximum is 0, and the rows need not be loaded for it.
template <typename T>
FASTIOU_HD void block_ties(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c, index_t m,
                           const T* colmax, T reach, const BlockBox<T>& bb) {
  for (index_t k = 0; k < cnt; ++k) s.tie[k] = 0;
  bool loaded = false, all = false;
  for (index_t j = 0; j < m; ++j) {
    const T cm = colmax[j];
    if (!(cm <= reach)) continue;  // above every candidate's best, or NaN: ties none
    if (bb.plain && c.plain[j] &&
        (c.x1[j] >= bb.x2 || c.x2[j] <= bb.x1 || c.y1[j] >= bb.y2 || c.y2[j] <= bb.y1)) {
      all = all || cm == T(0);
      continue;
    }
    if (!loaded) {
      load_block(s, rows, cnt);
      loaded = true;
    }
    column_ious(s, cnt, c, j);
    for (index_t k = 0; k < cnt; ++k) s.tie[k] = s.tie[k] | static_cast<uint8_t>(s.v[k] == cm);
  }
  if (all)
    for (index_t k = 0; k < cnt; ++k) s.tie[k] = 1;
}

#define FASTIOU_BLOCK_FNS(T, PASS, TIES)                                                       \
  FASTIOU_CLONES void PASS(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c,       \
                           index_t m, T* colmax) {                                            \
    block_pass<T>(s, rows, cnt, c, m, colmax);                                                \
  }                                                                                           \
  FASTIOU_CLONES void TIES(Scratch<T>& s, const T* rows, index_t cnt, const Cols<T>& c,       \
                           index_t m, const T* colmax, T reach, const BlockBox<T>& bb) {      \
    block_ties<T>(s, rows, cnt, c, m, colmax, reach, bb);                                     \
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
              const float* cm, float reach, const BlockBox<float>& bb) {
  block_ties_f32(s, r, n, c, m, cm, reach, bb);
}
void run_ties(Scratch<double>& s, const double* r, index_t n, const Cols<double>& c, index_t m,
              const double* cm, double reach, const BlockBox<double>& bb) {
  block_ties_f64(s, r, n, c, m, cm, reach, bb);
}

// A label (-1, -2 or a column) and the row's best column in one int64: column in the high
// word, label in the low word (sign-extended back by packed_label).
inline int64_t pack_label(int64_t label, int64_t arg) {
  return static_cast<int64_t>((static_cast<uint64_t>(arg) << 32) | static_cast<uint32_t>(label));
}
inline int64_t packed_label(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }
inline int64_t packed_arg(int64_t v) { return static_cast<int64_t>(static_cast<uint64_t>(v) >> 32); }

// The low-quality rule's second pass over one item (packed labels and best from pass 1).
template <typename T>
void lowq_pass(const T* rows, index_t n, const Cols<T>& c, index_t m, const std::vector<T>& colmax,
               const T* best, const BlockBox<T>* boxes, int64_t* labels, int nthreads) {
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
        if (!lowq_candidate<T>(packed_label(labels[i0 + k]), best[i0 + k], min_col)) continue;
        any = true;
        reach = std::max(reach, best[i0 + k]);
      }
      if (!any) continue;
      run_ties(*s, rows + 4 * i0, cnt, c, m, colmax.data(), reach, boxes[bi]);
      for (index_t k = 0; k < cnt; ++k)
        if (s->tie[k] && lowq_candidate<T>(packed_label(labels[i0 + k]), best[i0 + k], min_col)) {
          const int64_t arg = packed_arg(labels[i0 + k]);
          labels[i0 + k] = pack_label(arg, arg);
        }
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
  const index_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<BlockBox<T>> boxes(want_col ? blocks : 0);
  const T tlow = static_cast<T>(low), thigh = static_cast<T>(high);
#pragma omp parallel num_threads(nthreads)
  {
    Scratch<T>* s = new Scratch<T>;
    std::vector<T> mine(want_col ? m : 0, -std::numeric_limits<T>::infinity());
#pragma omp for schedule(dynamic, 1)
    for (index_t bi = 0; bi < blocks; ++bi) {
      const index_t i0 = bi * kBlock, cnt = std::min(kBlock, n - i0);
      run_pass(*s, rows + 4 * i0, cnt, c, m, want_col ? mine.data() : nullptr);
      if (want_col) boxes[bi] = BlockBox<T>{s->bx1, s->by1, s->bx2, s->by2, s->plain};
      for (index_t k = 0; k < cnt; ++k) {
        best_out[i0 + k] = s->best[k];
        if (labels == nullptr) {
          idx_out[i0 + k] = s->arg[k];
          continue;
        }
        const int64_t label = match_label<T>(s->best[k], s->arg[k], tlow, thigh);
        // With the low-quality rule the row's best column rides in the label's high word until
        // the second pass has used it (no n-sized buffer of its own).
        labels[i0 + k] = want_col ? pack_label(label, s->arg[k]) : label;
      }
    }
    if (want_col) {
#pragma omp critical(fastiou_colmax)
      for (index_t j = 0; j < m; ++j) colmax[j] = iou_colmax(colmax[j], mine[j]);
    }
    delete s;
  }
  if (!want_col) return;
  lowq_pass(rows, n, c, m, colmax, best_out, boxes.data(), labels, nthreads);
#pragma omp parallel for schedule(dynamic, 1 << 14) num_threads(nthreads) if (n > (1 << 16))
  for (index_t i = 0; i < n; ++i) labels[i] = packed_label(labels[i]);
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
  // The rows' maxima for the second pass: kept per calling thread, so repeated calls (one per
  // training image) reuse it instead of page-faulting a fresh one.
  static thread_local std::vector<T> best;
  if (best.size() < static_cast<size_t>(n)) best.resize(n);
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
