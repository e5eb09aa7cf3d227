// box_area and box_convert on the CPU: one pass over the boxes, parallel over boxes.
#include "cpu_common.h"
#include "fastiou/box_math.h"
#include "fastiou/ops.h"

namespace fastiou {

template <typename T>
void box_area_cpu(const T* boxes, T* out, index_t n, int fmt) {
#pragma omp parallel for schedule(dynamic, 4096) if (n > 8 * kParallelMin)
  for (index_t i = 0; i < n; ++i) out[i] = box_area(boxes + 4 * i, fmt);
}

template <typename T>
void box_convert_cpu(const T* boxes, T* out, index_t n, int in_fmt, int out_fmt) {
#pragma omp parallel for schedule(dynamic, 4096) if (n > 8 * kParallelMin)
  for (index_t i = 0; i < n; ++i) convert_box(boxes + 4 * i, out + 4 * i, in_fmt, out_fmt);
}

template void box_area_cpu<float>(const float*, float*, index_t, int);
template void box_area_cpu<double>(const double*, double*, index_t, int);
template void box_convert_cpu<float>(const float*, float*, index_t, int, int);
template void box_convert_cpu<double>(const double*, double*, index_t, int, int);

}  // namespace fastiou
