// Bit-packed binary masks: the layout and the IoU rule shared by the CPU loops, the CUDA
// kernels (nvcc and NVRTC) and the Python layer (fastiou/masks.py).
//
// Layout. A mask of H x W pixels is H rows of mask_words(W) 64-bit words; pixel (y, x) is bit
// (x & 63) of word (x >> 6) of row y. Bits past W are 0. N masks are (N, H, mask_words(W))
// words, C-contiguous. Each mask carries
//   box  (x0, y0, x1, y1), int32, exclusive maximum: every foreground pixel has x0 <= x < x1
//        and y0 <= y < y1, and the box is tight; an empty mask has (0, 0, 0, 0);
//   area the number of foreground pixels, int64.
//
// IoU of two masks: inter / (area1 + area2 - inter), divided in double and rounded once to
// float32. For areas below 2^24 this equals the float32 division of the exact counts (53 >=
// 2 * 24 + 2 bits, so the double rounding is innocuous), which is what a float32 matmul IoU
// gives when it is exact, and the float64 reference rounded to float32. An empty union gives 0.
// Only the words inside the intersection of the two boxes can hold common pixels.
#pragma once

#include "fastiou/common.h"

namespace fastiou {

FASTIOU_HD index_t mask_words(index_t w) { return (w + 63) >> 6; }

FASTIOU_HD int popcount64(unsigned long long x) {
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#else
  return __builtin_popcountll(x);
#endif
}

FASTIOU_HD float mask_iou_value(long long inter, long long area1, long long area2) {
  const long long uni = area1 + area2 - inter;
  return uni > 0 ? static_cast<float>(static_cast<double>(inter) / static_cast<double>(uni)) : 0.0f;
}

// The rows [y0, y1) and words [w0, w1) where two masks with boxes a and b (x0, y0, x1, y1,
// exclusive) can both have pixels; empty() when their boxes do not intersect.
struct MaskWindow {
  int y0, y1, w0, w1;
  FASTIOU_HD bool empty() const { return y0 >= y1 || w0 >= w1; }
};

FASTIOU_HD MaskWindow mask_window(const int* a, const int* b) {
  const int x0 = a[0] > b[0] ? a[0] : b[0];
  const int x1 = a[2] < b[2] ? a[2] : b[2];
  MaskWindow win;
  win.y0 = a[1] > b[1] ? a[1] : b[1];
  win.y1 = a[3] < b[3] ? a[3] : b[3];
  if (x1 <= x0) {
    win.w0 = win.w1 = 0;
  } else {
    win.w0 = x0 >> 6;
    win.w1 = (x1 + 63) >> 6;
  }
  return win;
}

// mask_nms's suppression test: the float32 IoU above, compared as a double with the threshold,
// strictly (the rule nms uses for boxes, fastiou/nms_math.h).
FASTIOU_HD bool mask_suppresses(long long inter, long long area1, long long area2, double threshold) {
  return static_cast<double>(mask_iou_value(inter, area1, area2)) > threshold;
}

}  // namespace fastiou
