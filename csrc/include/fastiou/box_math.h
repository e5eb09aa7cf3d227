// The geometry of axis-aligned boxes, defined once for every backend.
//
// Compiled unchanged by g++ (fastiou._C), nvcc (fastiou._C_cuda) and NVRTC (the CuPy
// backend); fastiou/_backends/numba_cpu.py mirrors it operation for operation.
//
// Contract (torchvision 0.29.1, ops/boxes.py): the same operations in the same order as
// torchvision, so that float32 results agree bit for bit (FMA contraction is switched off
// in every build: -ffp-contract=off, nvcc/NVRTC --fmad=false):
//   area  = (x2 - x1) * (y2 - y1)            xyxy; w * h for xywh / cxcywh (no clamping)
//   inter = clamp0(min(x2) - max(x1)) * clamp0(min(y2) - max(y1))
//   iou   = inter / (area1 + area2 - inter)  no eps: two zero-area boxes give 0/0 = NaN
//   giou  = iou - (areaC - union) / areaC    C = the enclosing box
//   diou  = iou - rho^2 / (diag(C)^2 + eps)
//   ciou  = diou - alpha * v,  v = 4/pi^2 (atan(w1/h1) - atan(w2/h2))^2,
//           alpha = v / (1 - iou + v + eps)
//   ioa   = inter / area1                    (mmcv "iof"; pycocotools' crowd rule)
// NaN in, NaN out, as with torch.minimum/maximum/clamp (see MinMax for how).
#pragma once

#include "fastiou/common.h"

namespace fastiou {

template <typename T>
FASTIOU_HD T max_nan(T a, T b) { return (a > b || a != a) ? a : b; }

template <typename T>
FASTIOU_HD T min_nan(T a, T b) { return (a < b || a != a) ? a : b; }

// clamp(min=0) that keeps NaN, as torch.clamp does.
template <typename T>
FASTIOU_HD T clamp0(T a) { return a < T(0) ? T(0) : a; }

// Plain min/max (one instruction each). Wherever a NaN coordinate already makes the result NaN
// through the areas (every measure but IoA), they give the same results as the NaN-propagating
// forms, at a third of the cost.
template <typename T>
FASTIOU_HD T max_fast(T a, T b) { return a > b ? a : b; }
template <typename T>
FASTIOU_HD T min_fast(T a, T b) { return a < b ? a : b; }

// The min/max a measure needs: NaN-propagating only for IoA, whose result does not pass
// through the second box's area.
template <int Mode>
struct MinMax {
  template <typename T>
  static FASTIOU_HD T max(T a, T b) { return Mode == MODE_IOA ? max_nan(a, b) : max_fast(a, b); }
  template <typename T>
  static FASTIOU_HD T min(T a, T b) { return Mode == MODE_IOA ? min_nan(a, b) : min_fast(a, b); }
};

// The float overloads call the float functions by name on every compiler (g++'s global
// namespace has no float overload of atan / exp, and a silent trip through double would
// make CPU and GPU results differ).
FASTIOU_HD float atan_t(float x) { return atanf(x); }
FASTIOU_HD double atan_t(double x) { return atan(x); }
FASTIOU_HD float exp_t(float x) { return expf(x); }
FASTIOU_HD double exp_t(double x) { return exp(x); }

// A box in xyxy with what the pairwise measures need of it, computed once per box.
template <typename T>
struct BoxF {
  T x1, y1, x2, y2;
  T area;
  T cx, cy;   // centres (DIoU, CIoU)
  T ratio;    // atan(w / h) (CIoU)
};

// Reads one box in `fmt` and returns it as xyxy, computed as torchvision's _box_inter_union does.
template <typename T>
FASTIOU_HD void load_xyxy(const T* p, int fmt, T& x1, T& y1, T& x2, T& y2) {
  if (fmt == FMT_XYXY) {
    x1 = p[0]; y1 = p[1]; x2 = p[2]; y2 = p[3];
  } else if (fmt == FMT_XYWH) {
    x1 = p[0]; y1 = p[1]; x2 = p[0] + p[2]; y2 = p[1] + p[3];
  } else {  // cxcywh: c -/+ wh / 2
    const T hw = p[2] / T(2), hh = p[3] / T(2);
    x1 = p[0] - hw; y1 = p[1] - hh; x2 = p[0] + hw; y2 = p[1] + hh;
  }
}

// torchvision.ops.box_area: (x2-x1)*(y2-y1) for xyxy, w*h for the formats that carry w, h.
template <typename T>
FASTIOU_HD T box_area(const T* p, int fmt) {
  return fmt == FMT_XYXY ? (p[2] - p[0]) * (p[3] - p[1]) : p[2] * p[3];
}

template <typename T>
FASTIOU_HD BoxF<T> make_boxf(const T* p, int fmt, int mode) {
  BoxF<T> b;
  load_xyxy(p, fmt, b.x1, b.y1, b.x2, b.y2);
  b.area = box_area(p, fmt);
  // torchvision's min/max carry a NaN coordinate into the IoU; with the plain min/max (MinMax)
  // it must reach the result through the area. For xyxy it does; w * h (xywh, cxcywh) does not
  // see a NaN x or y, nor x + w = inf + -inf, so such a box gets a NaN area here.
  if (b.x1 != b.x1 || b.y1 != b.y1 || b.x2 != b.x2 || b.y2 != b.y2)
    b.area = b.x1 != b.x1 ? b.x1 : (b.y1 != b.y1 ? b.y1 : (b.x2 != b.x2 ? b.x2 : b.y2));
  b.cx = (b.x1 + b.x2) / T(2);
  b.cy = (b.y1 + b.y2) / T(2);
  b.ratio = mode == MODE_CIOU ? atan_t((b.x2 - b.x1) / (b.y2 - b.y1)) : T(0);
  return b;
}

// One pair's measure; Mode is a compile-time constant so each instance is branch-free.
template <typename T, int Mode>
FASTIOU_HD T pair_value(T ax1, T ay1, T ax2, T ay2, T aarea, T acx, T acy, T aratio,
                        T bx1, T by1, T bx2, T by2, T barea, T bcx, T bcy, T bratio, T eps) {
  typedef MinMax<Mode> MM;
  const T w = clamp0(MM::min(ax2, bx2) - MM::max(ax1, bx1));
  const T h = clamp0(MM::min(ay2, by2) - MM::max(ay1, by1));
  const T inter = w * h;
  if (Mode == MODE_IOA) return inter / aarea;
  const T uni = aarea + barea - inter;
  const T iou = inter / uni;
  if (Mode == MODE_IOU) return iou;
  const T cw = clamp0(MM::max(ax2, bx2) - MM::min(ax1, bx1));
  const T ch = clamp0(MM::max(ay2, by2) - MM::min(ay1, by1));
  if (Mode == MODE_GIOU) {
    const T areac = cw * ch;
    return iou - (areac - uni) / areac;
  }
  const T diag = cw * cw + ch * ch + eps;
  const T dx = acx - bcx, dy = acy - bcy;
  const T diou = iou - (dx * dx + dy * dy) / diag;
  if (Mode == MODE_DIOU) return diou;
  const T dr = aratio - bratio;
  const T v = T(0.40528473456935108578) * (dr * dr);  // 4 / pi^2, rounded to T as torch does
  const T alpha = v / (T(1) - iou + v + eps);
  return diou - alpha * v;
}

template <typename T, int Mode>
FASTIOU_HD T pair_value(const BoxF<T>& a, const BoxF<T>& b, T eps) {
  return pair_value<T, Mode>(a.x1, a.y1, a.x2, a.y2, a.area, a.cx, a.cy, a.ratio,
                             b.x1, b.y1, b.x2, b.y2, b.area, b.cx, b.cy, b.ratio, eps);
}

// torchvision.ops.box_convert, through xyxy as torchvision does; `out` may not alias `p`.
template <typename T>
FASTIOU_HD void convert_box(const T* p, T* out, int in_fmt, int out_fmt) {
  T x1, y1, x2, y2;
  if (in_fmt == FMT_XYWH) {
    x1 = p[0]; y1 = p[1]; x2 = p[0] + p[2]; y2 = p[1] + p[3];
  } else if (in_fmt == FMT_CXCYWH) {  // cx - 0.5 * w, as _box_cxcywh_to_xyxy
    x1 = p[0] - T(0.5) * p[2]; y1 = p[1] - T(0.5) * p[3];
    x2 = p[0] + T(0.5) * p[2]; y2 = p[1] + T(0.5) * p[3];
  } else {
    x1 = p[0]; y1 = p[1]; x2 = p[2]; y2 = p[3];
  }
  if (out_fmt == FMT_XYWH) {
    out[0] = x1; out[1] = y1; out[2] = x2 - x1; out[3] = y2 - y1;
  } else if (out_fmt == FMT_CXCYWH) {
    out[0] = (x1 + x2) / T(2); out[1] = (y1 + y2) / T(2); out[2] = x2 - x1; out[3] = y2 - y1;
  } else {
    out[0] = x1; out[1] = y1; out[2] = x2; out[3] = y2;
  }
}

}  // namespace fastiou
