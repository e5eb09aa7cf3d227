// Anchor grids on the CPU: every level in one pass (math: fastiou/anchor_math.h).
//
// Parallelised over grid rows (level, y) with OpenMP; a row writes W * A consecutive boxes.
#include <vector>

#include "cpu_common.h"
#include "fastiou/anchor_math.h"
#include "fastiou/ops.h"

namespace fastiou {

template <typename T>
void anchor_grid_cpu(const T* cells, const int64_t* levels, const double* strides, index_t nlev,
                     double offset, T* out) {
  // One task per (level, grid row); rows of all levels in one list so one parallel loop covers them.
  std::vector<index_t> row_start(nlev + 1, 0);
  for (index_t l = 0; l < nlev; ++l) row_start[l + 1] = row_start[l] + levels[l * 5 + 0];
  const index_t rows = row_start[nlev];
  index_t total = 0;
  for (index_t l = 0; l < nlev; ++l) total += levels[l * 5 + 0] * levels[l * 5 + 1] * levels[l * 5 + 2];
#pragma omp parallel for schedule(dynamic, 4) if (total > kParallelMin)
  for (index_t r = 0; r < rows; ++r) {
    index_t l = 0;
    while (row_start[l + 1] <= r) ++l;
    const int64_t* lv = levels + l * 5;
    const index_t y = r - row_start[l], w = lv[1], a = lv[2];
    const T* cell = cells + lv[3] * 4;
    const T cy = static_cast<T>(anchor_center(offset, strides[l * 2 + 0], y));
    T* o = out + (lv[4] + y * w * a) * 4;
    for (index_t x = 0; x < w; ++x) {
      const T cx = static_cast<T>(anchor_center(offset, strides[l * 2 + 1], x));
      for (index_t k = 0; k < a; ++k, o += 4) {
        o[0] = cx + cell[k * 4 + 0];
        o[1] = cy + cell[k * 4 + 1];
        o[2] = cx + cell[k * 4 + 2];
        o[3] = cy + cell[k * 4 + 3];
      }
    }
  }
}

template void anchor_grid_cpu<float>(const float*, const int64_t*, const double*, index_t, double, float*);
template void anchor_grid_cpu<double>(const double*, const int64_t*, const double*, index_t, double, double*);

}  // namespace fastiou
