// multiclass_nms on the CPU (the TensorRT EfficientNMS contract): per image, the candidates
// above the score threshold bucketed by class, one greedy pass per (image, class) with the
// per-class cap (nms.cpp's, through GreedyPass), then the top k of the kept per image.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu_common.h"
#include "fastiou/ops.h"
#include "nms_common.h"

namespace fastiou {
namespace {

using namespace nms_detail;

constexpr index_t kParallelScan = 1 << 18;  // scores: a parallel scan below this costs more

// ------------------------------------------------------------------------------ candidate scan

// Positions i < len with row[i] > st, in increasing order, written to out (room for len);
// returns their count. Nearly every score of a detector head is below the threshold, so each
// block is first tested with a branch-free compare (vectorised); only blocks with a hit are
// compacted (branch-free too: the slot is written always, kept only when the test passes).
template <typename T>
inline index_t scan_row_impl(const T* row, index_t len, T st, int32_t* out) {
  constexpr index_t kBlock = 64;
  index_t m = 0, i = 0;
  for (; i + kBlock <= len; i += kBlock) {
    const T* p = row + i;
    int hit = 0;
    for (index_t q = 0; q < kBlock; ++q) hit |= p[q] > st;
    if (!hit) continue;
    for (index_t q = 0; q < kBlock; ++q) {
      out[m] = static_cast<int32_t>(i + q);
      m += p[q] > st;
    }
  }
  for (; i < len; ++i) {
    out[m] = static_cast<int32_t>(i);
    m += row[i] > st;
  }
  return m;
}
FASTIOU_CLONES index_t scan_row_f32(const float* row, index_t len, float st, int32_t* out) {
  return scan_row_impl<float>(row, len, st, out);
}
FASTIOU_CLONES index_t scan_row_f64(const double* row, index_t len, double st, int32_t* out) {
  return scan_row_impl<double>(row, len, st, out);
}

inline index_t scan_row_contiguous(const float* row, index_t len, float st, int32_t* out) {
  return scan_row_f32(row, len, st, out);
}
inline index_t scan_row_contiguous(const double* row, index_t len, double st, int32_t* out) {
  return scan_row_f64(row, len, st, out);
}

// The same for a row whose elements lie `stride` apart (stride 1: the vectorised scan).
template <typename T>
index_t scan_row(const T* row, index_t len, index_t stride, T st, int32_t* out) {
  if (stride == 1) return scan_row_contiguous(row, len, st, out);
  index_t m = 0;
  for (index_t i = 0; i < len; ++i) {
    out[m] = static_cast<int32_t>(i);
    m += row[i * stride] > st;
  }
  return m;
}
}  // namespace

using namespace nms_detail;

template <typename T>
void multiclass_nms_cpu(const T* boxes, const T* scores, index_t batch, index_t n, index_t c,
                        index_t sb, index_t sn, index_t sc, index_t cb, double iou_threshold,
                        double score_threshold, index_t max_per_class, index_t k, int64_t* num,
                        T* out_boxes, T* out_scores, int64_t* out_classes,
                        int64_t* out_indices) {
  if (batch <= 0) return;
  const T st = static_cast<T>(score_threshold);  // compared in T, as torch and numpy compare
  auto score = [scores, sb, sn, sc](index_t b, index_t i, index_t j) {
    return scores[b * sb + i * sn + j * sc];
  };
  // The scan reads every score once, along the axis with the smaller stride: a class-major
  // head (YOLO's (B, C, N) output, transposed) a class row at a time, contiguous and
  // vectorised, with no transposing copy; an anchor-major one an anchor's classes at a time.
  const bool by_class = sn < sc || (sn == sc && n >= c);
  // The scan is memory-bound and even: worth a second thread only on many images' scores.
  const bool par_scan = batch > 1 && batch * n * c >= kParallelScan;
  // Per image, the candidates (score > score_threshold, strictly) bucketed by class, each
  // bucket in increasing n; later overwritten by the class's kept n, in rank order.
  std::vector<std::vector<int32_t>> cand(static_cast<size_t>(batch));
  std::vector<std::vector<index_t>> offs(static_cast<size_t>(batch));
  std::vector<std::vector<index_t>> kept(static_cast<size_t>(batch));
  RegionErrors err;
  auto oom = [&] {
    return "multiclass_nms: out of memory for the candidates of " + std::to_string(batch) +
           " images x " + std::to_string(n) + " boxes x " + std::to_string(c) + " classes (up to " +
           bytes_text(4.0 * static_cast<double>(batch) * n * c) + ")";
  };
#pragma omp parallel if (par_scan)
  {
    std::vector<int32_t> hits;
    std::vector<int32_t> hit_n, hit_c;  // anchor-major scan: the candidates in (n, class) order
    err.run([&] { hits.resize(static_cast<size_t>(std::max(n, c))); });
#pragma omp for schedule(dynamic, 1)
    for (index_t b = 0; b < batch; ++b) err.run([&] {
      const T* s = scores + b * sb;
      std::vector<index_t>& off = offs[b];
      std::vector<int32_t>& cn = cand[b];
      off.assign(static_cast<size_t>(c + 1), 0);
      cn.clear();
      if (by_class) {
        for (index_t j = 0; j < c; ++j) {
          const index_t m = scan_row(s + j * sc, n, sn, st, hits.data());
          cn.insert(cn.end(), hits.data(), hits.data() + m);
          off[j + 1] = static_cast<index_t>(cn.size());
        }
      } else {
        hit_n.clear();
        hit_c.clear();
        for (index_t i = 0; i < n; ++i) {
          const index_t m = scan_row(s + i * sn, c, sc, st, hits.data());
          for (index_t r = 0; r < m; ++r) {
            hit_n.push_back(static_cast<int32_t>(i));
            hit_c.push_back(hits[r]);
            ++off[hits[r] + 1];
          }
        }
        // A stable counting sort by class: each bucket stays in increasing n.
        for (index_t j = 0; j < c; ++j) off[j + 1] += off[j];
        cn.resize(static_cast<size_t>(off[c]));
        std::vector<index_t> pos(off.begin(), off.end() - 1);
        for (size_t q = 0; q < hit_n.size(); ++q) cn[pos[hit_c[q]]++] = hit_n[q];
      }
      kept[b].assign(static_cast<size_t>(c), 0);
    });
  }
  err.rethrow(oom);
  // Per (image, class): rank (score desc, n asc), greedy with the per-class cap.
  std::vector<index_t> tasks;
  index_t total = 0;  // candidates over the batch: the work of the greedy passes
  for (index_t b = 0; b < batch; ++b) {
    total += offs[b][c];
    for (index_t j = 0; j < c; ++j)
      if (offs[b][j + 1] > offs[b][j]) tasks.push_back(b * c + j);
  }
  std::stable_sort(tasks.begin(), tasks.end(), [&offs, c](index_t a, index_t b) {
    const index_t na = offs[a / c][a % c + 1] - offs[a / c][a % c];
    return na > offs[b / c][b % c + 1] - offs[b / c][b % c];
  });
  const index_t ntask = static_cast<index_t>(tasks.size());
  // Threads pay off on the candidates' work, not on the scores scanned: a few hundred
  // candidates run faster on one thread than a parallel region costs.
  const bool par_nms = total >= kParallelNms && ntask > 1;
#pragma omp parallel if (par_nms)
  {
    GreedyPass<T> pass;
    BoxCols<T> cols;
    std::vector<uint64_t> keys;
    std::vector<index_t> order;
    std::vector<int32_t> ranked;
    std::vector<uint8_t> flag;
#pragma omp for schedule(dynamic, 1)
    for (index_t q = 0; q < ntask; ++q) err.run([&] {
      const index_t b = tasks[q] / c, j = tasks[q] % c;
      int32_t* cn = cand[b].data() + offs[b][j];
      const index_t m = offs[b][j + 1] - offs[b][j];
      keys.resize(static_cast<size_t>(m));
      order.resize(static_cast<size_t>(m));
      ranked.resize(static_cast<size_t>(m));
      flag.resize(static_cast<size_t>(m));
      for (index_t i = 0; i < m; ++i) keys[i] = score_key(static_cast<double>(score(b, cn[i], j)));
      rank_keys(keys.data(), m, order.data());
      cols.resize(m);
      const index_t col = cb == 1 ? 0 : j;
      for (index_t r = 0; r < m; ++r) {
        ranked[r] = cn[order[r]];
        cols.set(r, boxes + ((b * n + ranked[r]) * cb + col) * 4);
      }
      pass.run(view(cols, 0, m), iou_threshold, max_per_class, flag.data());
      index_t kc = 0;
      for (index_t r = 0; r < m; ++r)
        if (flag[r]) cn[kc++] = ranked[r];
      kept[b][j] = kc;
    });
  }
  err.rethrow(oom);
  // Per image: the top k of the kept by (score desc, n asc, class asc), in that order.
  struct Det {
    T score;
    index_t nc;  // n * c + class: (n, class) order
  };
  const bool par_top = batch > 1 && total >= kParallelNms;
#pragma omp parallel for schedule(dynamic, 1) if (par_top)
  for (index_t b = 0; b < batch; ++b) err.run([&] {
    std::vector<Det> all;
    for (index_t j = 0; j < c; ++j)
      for (index_t r = 0; r < kept[b][j]; ++r) {
        const index_t i = cand[b][offs[b][j] + r];
        all.push_back({score(b, i, j), i * c + j});
      }
    const index_t cnt = std::min<index_t>(k, static_cast<index_t>(all.size()));
    std::partial_sort(all.begin(), all.begin() + cnt, all.end(), [](const Det& x, const Det& y) {
      return x.score > y.score || (x.score == y.score && x.nc < y.nc);
    });
    num[b] = cnt;
    for (index_t r = 0; r < k; ++r) {
      T* ob = out_boxes + (b * k + r) * 4;
      if (r < cnt) {
        const index_t i = all[r].nc / c, j = all[r].nc % c;
        const T* src = boxes + ((b * n + i) * cb + (cb == 1 ? 0 : j)) * 4;
        ob[0] = src[0]; ob[1] = src[1]; ob[2] = src[2]; ob[3] = src[3];
        out_scores[b * k + r] = all[r].score;
        out_classes[b * k + r] = j;
        out_indices[b * k + r] = i;
      } else {
        ob[0] = ob[1] = ob[2] = ob[3] = T(0);
        out_scores[b * k + r] = T(0);
        out_classes[b * k + r] = -1;
        out_indices[b * k + r] = -1;
      }
    }
  });
  err.rethrow(oom);
}

template void multiclass_nms_cpu<float>(const float*, const float*, index_t, index_t, index_t,
                                        index_t, index_t, index_t, index_t, double, double,
                                        index_t, index_t, int64_t*, float*, float*, int64_t*,
                                        int64_t*);
template void multiclass_nms_cpu<double>(const double*, const double*, index_t, index_t, index_t,
                                         index_t, index_t, index_t, index_t, double, double,
                                         index_t, index_t, int64_t*, double*, double*, int64_t*,
                                         int64_t*);

}  // namespace fastiou
