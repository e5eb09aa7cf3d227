// Pairwise mask IoU on packed masks (CPU): out[i, j] = mask_iou_value(popcount(a_i & b_j), ...)
// counting only the words inside mask_window(box_i, box_j) (fastiou/mask_math.h), so a pair
// costs the rows x words where both boxes overlap, nothing when they do not.
//
// The (n, m) pairs are cut into tiles of kTileI x kTileJ masks, run in parallel (OpenMP,
// dynamic: tiles differ in cost with their windows); within a tile a row of masks i meets the
// same kTileJ masks j, whose windows stay in cache. The popcount loop is compiled with the
// popcnt instruction when the CPU has it (mask_common.h).
#include <algorithm>

#include "fastiou/ops.h"
#include "mask_common.h"

namespace fastiou {
namespace {

using namespace mask_detail;

constexpr index_t kTileI = 4, kTileJ = 16;

struct IouArgs {
  const uint64_t *bits1, *bits2;
  const int32_t *boxes1, *boxes2;
  const int64_t *areas1, *areas2;
  index_t n, m, h, ww;
  float* out;
};

FASTIOU_HD void iou_tile(const IouArgs& a, index_t i0, index_t i1, index_t j0, index_t j1) {
  const index_t plane = a.h * a.ww;
  for (index_t i = i0; i < i1; ++i) {
    const uint64_t* bi = a.bits1 + i * plane;
    const int* boxi = a.boxes1 + 4 * i;
    const long long ai = a.areas1[i];
    for (index_t j = j0; j < j1; ++j) {
      const MaskWindow win = mask_window(boxi, a.boxes2 + 4 * j);
      const long long inter = window_inter_impl(bi, a.bits2 + j * plane, a.ww, win);
      a.out[i * a.m + j] = mask_iou_value(inter, ai, a.areas2[j]);
    }
  }
}

FASTIOU_TARGET_POPCNT void iou_tile_popcnt(const IouArgs& a, index_t i0, index_t i1, index_t j0,
                                           index_t j1) {
  iou_tile(a, i0, i1, j0, j1);
}
void iou_tile_base(const IouArgs& a, index_t i0, index_t i1, index_t j0, index_t j1) {
  iou_tile(a, i0, i1, j0, j1);
}

}  // namespace

void mask_iou_cpu(const uint64_t* bits1, const int32_t* boxes1, const int64_t* areas1, index_t n,
                  const uint64_t* bits2, const int32_t* boxes2, const int64_t* areas2, index_t m,
                  index_t h, index_t ww, float* out) {
  if (n <= 0 || m <= 0) return;
  const IouArgs a{bits1, bits2, boxes1, boxes2, areas1, areas2, n, m, h, ww, out};
  auto fn = cpu_has_popcnt() ? iou_tile_popcnt : iou_tile_base;
  const index_t ti = (n + kTileI - 1) / kTileI, tj = (m + kTileJ - 1) / kTileJ;
  const index_t tiles = ti * tj;
  // A pair costs up to h * ww words: parallel once there is more than a little work.
  const bool par = tiles > 1 && n * m * std::max<index_t>(h * ww, 1) > kParallelMin;
#pragma omp parallel for schedule(dynamic, 1) if (par)
  for (index_t t = 0; t < tiles; ++t) {
    const index_t i0 = (t / tj) * kTileI, j0 = (t % tj) * kTileJ;
    fn(a, i0, std::min(i0 + kTileI, n), j0, std::min(j0 + kTileJ, m));
  }
}

}  // namespace fastiou
