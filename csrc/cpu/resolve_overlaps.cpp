// resolve_overlaps on packed masks (CPU): each set pixel stays only in the best-ranked mask
// that has it (fastiou/nms_math.h ranking: highest score, ties lowest index, NaN last).
// Visiting masks in rank order, out[k] = bits[k] & ~claimed; claimed |= bits[k]. Rows are
// independent: parallel over rows (OpenMP), each with its own `claimed` row of ww words.
#include <algorithm>
#include <vector>

#include "fastiou/ops.h"
#include "mask_common.h"
#include "nms_common.h"

namespace fastiou {

void resolve_overlaps_cpu(const uint64_t* bits, const double* scores, index_t n, index_t h,
                          index_t ww, uint64_t* out) {
  if (n <= 0 || h <= 0 || ww <= 0) return;
  std::vector<index_t> order(static_cast<size_t>(n));
  nms_detail::rank_scores(scores, n, order.data());
  const index_t plane = h * ww;
  RegionErrors err;
#pragma omp parallel if (h > 1 && n * plane > kParallelMin / 8)
  {
    std::vector<uint64_t> claimed;
    err.run([&] { claimed.resize(static_cast<size_t>(ww)); });
#pragma omp for schedule(dynamic, 4)
    for (index_t y = 0; y < h; ++y) {
      if (err.failed()) continue;
      std::fill(claimed.begin(), claimed.end(), uint64_t(0));
      for (index_t r = 0; r < n; ++r) {
        const index_t k = order[r];
        const uint64_t* src = bits + k * plane + y * ww;
        uint64_t* dst = out + k * plane + y * ww;
        for (index_t w = 0; w < ww; ++w) {
          const uint64_t v = src[w];
          dst[w] = v & ~claimed[w];
          claimed[w] |= v;
        }
      }
    }
  }
  err.rethrow([&] { return "resolve_overlaps: out of memory for a row of " + bytes_text(8.0 * ww) + " a thread"; });
}

}  // namespace fastiou
