// Launchers of pack_masks, unpack_masks and packed_stats (kernels: csrc/kernels/mask_pack.cuh).
#include "../kernels/mask_pack.cuh"
#include "fastiou/ops.h"
#include "mask_common.h"

namespace fastiou {

void packed_stats_cuda(const unsigned long long* bits, int* boxes, long long* areas, index_t n, index_t h,
                       index_t ww, void* stream) {
  if (n <= 0) return;
  mask_detail::check_packed(h, ww, "packed_stats");
  packed_stats_kernel<<<grid_for(n, 1), kMaskStatsThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      bits, boxes, areas, n, static_cast<int>(h), static_cast<int>(ww));
  check_launch("packed_stats");
}

void pack_masks_cuda(const uint8_t* masks, unsigned long long* bits, int* boxes, long long* areas, index_t n,
                     index_t h, index_t w, void* stream) {
  if (n <= 0) return;
  if (w < 0 || w > INT_MAX) throw std::invalid_argument("pack_masks: W must be < 2^31");
  const index_t ww = mask_words(w);
  mask_detail::check_packed(h, ww, "pack_masks");
  const index_t rows = n * h;
  if (rows > 0 && ww > 0) {
    pack_masks_kernel<<<grid_for(rows * 32, kMaskPackThreads), kMaskPackThreads, 0,
                        static_cast<cudaStream_t>(stream)>>>(masks, bits, rows, static_cast<int>(w),
                                                             static_cast<int>(ww));
    check_launch("pack_masks");
  }
  packed_stats_cuda(bits, boxes, areas, n, h, ww, stream);
}

void unpack_masks_cuda(const unsigned long long* bits, uint8_t* out, index_t n, index_t h, index_t w,
                       void* stream) {
  if (n <= 0) return;
  if (w < 0 || w > INT_MAX) throw std::invalid_argument("unpack_masks: W must be < 2^31");
  const index_t ww = mask_words(w);
  mask_detail::check_packed(h, ww, "unpack_masks");
  const index_t rows = n * h;
  if (rows <= 0 || w == 0) return;
  unpack_masks_kernel<<<grid_for(rows * 32, kMaskPackThreads), kMaskPackThreads, 0,
                        static_cast<cudaStream_t>(stream)>>>(bits, out, rows, static_cast<int>(w),
                                                             static_cast<int>(ww));
  check_launch("unpack_masks");
}

}  // namespace fastiou
