// Pairwise and aligned box measures on the CPU.
//
// Parallelised over blocks of rows (OpenMP); within a block, each row is a straight loop over
// the columns' structure-of-arrays features, which the compiler vectorises (16 float lanes on
// AVX-512). One pass, no N x M temporaries: the output is the only large memory touched.
#include <algorithm>
#include <memory>

#include "cpu_common.h"
#include "fastiou/box_math.h"
#include "fastiou/ops.h"

namespace fastiou {
namespace {

template <typename T>
struct BoxSoA {
  std::unique_ptr<T[]> buf;
  T *x1, *y1, *x2, *y2, *area, *cx, *cy, *ratio;

  BoxSoA(const T* boxes, index_t n, int fmt, int mode) : buf(new T[8 * (n > 0 ? n : 1)]) {
    T* p = buf.get();
    T** cols[8] = {&x1, &y1, &x2, &y2, &area, &cx, &cy, &ratio};
    for (int k = 0; k < 8; ++k) *cols[k] = p + k * n;
#pragma omp parallel for schedule(dynamic, 4096) if (n > kParallelMin)
    for (index_t i = 0; i < n; ++i) {
      const BoxF<T> b = make_boxf(boxes + 4 * i, fmt, mode);
      x1[i] = b.x1; y1[i] = b.y1; x2[i] = b.x2; y2[i] = b.y2;
      area[i] = b.area; cx[i] = b.cx; cy[i] = b.cy; ratio[i] = b.ratio;
    }
  }
};

// Rows [i0, i1) x columns [j0, j1) of one batch item; `a` and `b` point at that item's boxes.
template <typename T, int Mode>
FASTIOU_HD void pairwise_block(const BoxSoA<T>& a, index_t aoff, const BoxSoA<T>& b, index_t boff,
                               index_t i0, index_t i1, index_t j0, index_t j1, T* out, index_t m,
                               T eps) {
  const T* __restrict__ bx1 = b.x1 + boff;
  const T* __restrict__ by1 = b.y1 + boff;
  const T* __restrict__ bx2 = b.x2 + boff;
  const T* __restrict__ by2 = b.y2 + boff;
  const T* __restrict__ bar = b.area + boff;
  const T* __restrict__ bcx = b.cx + boff;
  const T* __restrict__ bcy = b.cy + boff;
  const T* __restrict__ brt = b.ratio + boff;
  for (index_t i = i0; i < i1; ++i) {
    const index_t ia = aoff + i;
    const T ax1 = a.x1[ia], ay1 = a.y1[ia], ax2 = a.x2[ia], ay2 = a.y2[ia];
    const T aar = a.area[ia], acx = a.cx[ia], acy = a.cy[ia], art = a.ratio[ia];
    T* __restrict__ row = out + i * m;
#pragma GCC ivdep
    for (index_t j = j0; j < j1; ++j) {
      row[j] = pair_value<T, Mode>(ax1, ay1, ax2, ay2, aar, acx, acy, art, bx1[j], by1[j], bx2[j],
                                   by2[j], bar[j], bcx[j], bcy[j], brt[j], eps);
    }
  }
}

template <typename T>
using BlockFn = void (*)(const BoxSoA<T>&, index_t, const BoxSoA<T>&, index_t, index_t, index_t,
                         index_t, index_t, T*, index_t, T);

// GCC's partial redundancy elimination turns clamp0(x) * clamp0(x) (DIoU, CIoU) into a
// conditional multiply that AVX2 cannot vectorise; without it the loop vectorises everywhere.
#if defined(__GNUC__) && !defined(__clang__)
#define FASTIOU_VECTORISABLE __attribute__((optimize("no-tree-pre")))
#else
#define FASTIOU_VECTORISABLE
#endif

#define FASTIOU_BLOCK(T, MODE, NAME)                                                          \
  FASTIOU_CLONES FASTIOU_VECTORISABLE void NAME(const BoxSoA<T>& a, index_t aoff, const BoxSoA<T>& b, index_t boff, \
                           index_t i0, index_t i1, index_t j0, index_t j1, T* out, index_t m, \
                           T eps) {                                                           \
    pairwise_block<T, MODE>(a, aoff, b, boff, i0, i1, j0, j1, out, m, eps);                   \
  }
FASTIOU_BLOCK(float, MODE_IOU, block_iou_f32)
FASTIOU_BLOCK(float, MODE_GIOU, block_giou_f32)
FASTIOU_BLOCK(float, MODE_DIOU, block_diou_f32)
FASTIOU_BLOCK(float, MODE_CIOU, block_ciou_f32)
FASTIOU_BLOCK(float, MODE_IOA, block_ioa_f32)
FASTIOU_BLOCK(double, MODE_IOU, block_iou_f64)
FASTIOU_BLOCK(double, MODE_GIOU, block_giou_f64)
FASTIOU_BLOCK(double, MODE_DIOU, block_diou_f64)
FASTIOU_BLOCK(double, MODE_CIOU, block_ciou_f64)
FASTIOU_BLOCK(double, MODE_IOA, block_ioa_f64)
#undef FASTIOU_BLOCK

template <typename T>
BlockFn<T> select_block(int mode);
template <>
BlockFn<float> select_block<float>(int mode) {
  static const BlockFn<float> fns[] = {block_iou_f32, block_giou_f32, block_diou_f32,
                                       block_ciou_f32, block_ioa_f32};
  return fns[mode];
}
template <>
BlockFn<double> select_block<double>(int mode) {
  static const BlockFn<double> fns[] = {block_iou_f64, block_giou_f64, block_diou_f64,
                                        block_ciou_f64, block_ioa_f64};
  return fns[mode];
}

}  // namespace

template <typename T>
void box_pairwise_cpu(const T* boxes1, const T* boxes2, T* out, index_t batch, index_t n,
                      index_t m, int mode, int fmt, T eps) {
  if (batch <= 0 || n <= 0 || m <= 0) return;
  const BoxSoA<T> a(boxes1, batch * n, fmt, mode);
  const BoxSoA<T> b(boxes2, batch * m, fmt, mode);
  const BlockFn<T> fn = select_block<T>(mode);
  // A task is kRows rows by all columns, the columns walked in tiles that stay in L1/L2.
  // Tasks are handed out dynamically: on a shared machine a thread that loses its core for a
  // while then delays the call by one small task, not by half of the work.
  constexpr index_t kRows = 8, kCols = 2048;
  const index_t row_blocks = (n + kRows - 1) / kRows;
  const index_t tasks = batch * row_blocks;
#pragma omp parallel for schedule(dynamic, 1) if (batch * n * m > kParallelMin)
  for (index_t t = 0; t < tasks; ++t) {
    const index_t bi = t / row_blocks;
    const index_t i0 = (t % row_blocks) * kRows;
    const index_t i1 = std::min(n, i0 + kRows);
    T* o = out + bi * n * m;
    for (index_t j0 = 0; j0 < m; j0 += kCols) {
      fn(a, bi * n, b, bi * m, i0, i1, j0, std::min(m, j0 + kCols), o, m, eps);
    }
  }
}

template <typename T>
void box_aligned_cpu(const T* boxes1, const T* boxes2, T* out, index_t n, int mode, int fmt,
                     T eps) {
#pragma omp parallel for schedule(dynamic, 2048) if (n > kParallelMin)
  for (index_t i = 0; i < n; ++i) {
    const BoxF<T> a = make_boxf(boxes1 + 4 * i, fmt, mode);
    const BoxF<T> b = make_boxf(boxes2 + 4 * i, fmt, mode);
    switch (mode) {
      case MODE_IOU: out[i] = pair_value<T, MODE_IOU>(a, b, eps); break;
      case MODE_GIOU: out[i] = pair_value<T, MODE_GIOU>(a, b, eps); break;
      case MODE_DIOU: out[i] = pair_value<T, MODE_DIOU>(a, b, eps); break;
      case MODE_CIOU: out[i] = pair_value<T, MODE_CIOU>(a, b, eps); break;
      default: out[i] = pair_value<T, MODE_IOA>(a, b, eps); break;
    }
  }
}

template void box_pairwise_cpu<float>(const float*, const float*, float*, index_t, index_t,
                                      index_t, int, int, float);
template void box_pairwise_cpu<double>(const double*, const double*, double*, index_t, index_t,
                                       index_t, int, int, double);
template void box_aligned_cpu<float>(const float*, const float*, float*, index_t, int, int, float);
template void box_aligned_cpu<double>(const double*, const double*, double*, index_t, int, int,
                                      double);

const char* cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return "avx2";
  return "x86-64 baseline";
#else
  return "portable (no runtime dispatch on this platform)";
#endif
}

}  // namespace fastiou
