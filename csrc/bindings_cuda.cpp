// fastiou._C_cuda: the CUDA kernels, called with device pointers.
//
// The Python layer (fastiou/_backends/cuda_gpu.py) allocates every buffer in the caller's
// library (torch or cupy) on the caller's device, checks shapes and dtypes, and passes raw
// pointers, sizes and the caller's current stream: this module never sees a torch or cupy
// type and never synchronises. Launches are asynchronous; errors surface as RuntimeError.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastiou/ops.h"

namespace py = pybind11;
using fastiou::index_t;

namespace {

// Makes `device` current for the launch and restores the caller's device afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&prev_) != cudaSuccess) prev_ = -1;
    if (prev_ != device && cudaSetDevice(device) != cudaSuccess)
      throw std::runtime_error("cannot make CUDA device " + std::to_string(device) + " current");
  }
  ~DeviceGuard() {
    int now = -1;
    if (prev_ >= 0 && cudaGetDevice(&now) == cudaSuccess && now != prev_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = -1;
};

template <typename T>
T* ptr(std::uintptr_t p) { return reinterpret_cast<T*>(p); }
void* stream_of(std::uintptr_t s) { return reinterpret_cast<void*>(s); }

bool is_f64(const std::string& dtype) {
  if (dtype == "float64") return true;
  if (dtype == "float32") return false;
  throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
}

void check_sizes(std::initializer_list<index_t> sizes) {
  for (index_t s : sizes)
    if (s < 0) throw py::value_error("sizes must be non-negative");
}

void check_codes(int mode, int fmt, int fmt2 = 0) {
  if (mode < 0 || mode > 4) throw py::value_error("mode: expected 0..4");
  if (fmt < 0 || fmt > 2 || fmt2 < 0 || fmt2 > 2) throw py::value_error("fmt: expected 0..2");
}

void box_pairwise(const std::string& dtype, std::uintptr_t b1, std::uintptr_t b2,
                  std::uintptr_t out, index_t batch, index_t n, index_t m, int mode, int fmt,
                  double eps, std::uintptr_t stream, int device) {
  check_sizes({batch, n, m});
  check_codes(mode, fmt);
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::box_pairwise_cuda<double>(ptr<const double>(b1), ptr<const double>(b2), ptr<double>(out),
                                       batch, n, m, mode, fmt, eps, stream_of(stream));
  else
    fastiou::box_pairwise_cuda<float>(ptr<const float>(b1), ptr<const float>(b2), ptr<float>(out),
                                      batch, n, m, mode, fmt, static_cast<float>(eps), stream_of(stream));
}

void box_aligned(const std::string& dtype, std::uintptr_t b1, std::uintptr_t b2,
                 std::uintptr_t out, index_t n, int mode, int fmt, double eps,
                 std::uintptr_t stream, int device) {
  check_sizes({n});
  check_codes(mode, fmt);
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::box_aligned_cuda<double>(ptr<const double>(b1), ptr<const double>(b2), ptr<double>(out),
                                      n, mode, fmt, eps, stream_of(stream));
  else
    fastiou::box_aligned_cuda<float>(ptr<const float>(b1), ptr<const float>(b2), ptr<float>(out), n,
                                     mode, fmt, static_cast<float>(eps), stream_of(stream));
}

void box_area(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t out, index_t n,
              int fmt, std::uintptr_t stream, int device) {
  check_sizes({n});
  check_codes(0, fmt);
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::box_area_cuda<double>(ptr<const double>(boxes), ptr<double>(out), n, fmt, stream_of(stream));
  else
    fastiou::box_area_cuda<float>(ptr<const float>(boxes), ptr<float>(out), n, fmt, stream_of(stream));
}

void box_convert(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t out, index_t n,
                 int in_fmt, int out_fmt, std::uintptr_t stream, int device) {
  check_sizes({n});
  check_codes(0, in_fmt, out_fmt);
  if (boxes == out && n > 0) throw py::value_error("out: must not alias boxes");
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::box_convert_cuda<double>(ptr<const double>(boxes), ptr<double>(out), n, in_fmt, out_fmt,
                                      stream_of(stream));
  else
    fastiou::box_convert_cuda<float>(ptr<const float>(boxes), ptr<float>(out), n, in_fmt, out_fmt,
                                     stream_of(stream));
}

void masks_to_boxes(std::uintptr_t masks, std::uintptr_t out, index_t n, index_t h, index_t w,
                    std::uintptr_t stream, int device) {
  check_sizes({n, h, w});
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::masks_to_boxes_cuda(ptr<const uint8_t>(masks), ptr<float>(out), n, h, w, stream_of(stream));
}

// Suppression. Integer arrays (classes, labels, keep) are int64; `classes` may be 0 (none).
index_t nms(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t scores, std::uintptr_t classes,
            index_t n, double iou_threshold, std::uintptr_t keep, std::uintptr_t stream, int device) {
  check_sizes({n});
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  const long long* cls = ptr<const long long>(classes);
  if (f64)
    return fastiou::nms_cuda<double>(ptr<const double>(boxes), ptr<const double>(scores), cls, n, iou_threshold,
                                     ptr<index_t>(keep), stream_of(stream));
  return fastiou::nms_cuda<float>(ptr<const float>(boxes), ptr<const double>(scores), cls, n, iou_threshold,
                                  ptr<index_t>(keep), stream_of(stream));
}

std::vector<index_t> nms_sweep(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t scores,
                               std::uintptr_t classes, index_t n, const std::vector<double>& thresholds,
                               std::uintptr_t keep, std::uintptr_t stream, int device) {
  check_sizes({n});
  const bool f64 = is_f64(dtype);
  if (thresholds.size() > 1u << 20) throw py::value_error("thresholds: at most 2^20 values");
  const int nthr = static_cast<int>(thresholds.size());
  std::vector<index_t> counts(thresholds.size(), 0);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  const long long* cls = ptr<const long long>(classes);
  if (f64)
    fastiou::nms_sweep_cuda<double>(ptr<const double>(boxes), ptr<const double>(scores), cls, n, thresholds.data(),
                                    nthr, ptr<index_t>(keep), counts.data(), stream_of(stream));
  else
    fastiou::nms_sweep_cuda<float>(ptr<const float>(boxes), ptr<const double>(scores), cls, n, thresholds.data(),
                                   nthr, ptr<index_t>(keep), counts.data(), stream_of(stream));
  return counts;
}

index_t soft_nms(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t scores, index_t n,
                 double iou_threshold, double sigma, double min_score, int method, std::uintptr_t keep,
                 std::uintptr_t new_scores, std::uintptr_t stream, int device) {
  check_sizes({n});
  if (method < 0 || method > 2) throw py::value_error("method: expected 0 (linear), 1 (gaussian) or 2 (hard)");
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  // The parameters in the compute type, as the CPU loop (and mmcv's float kernel) use them.
  if (f64)
    return fastiou::soft_nms_cuda<double>(ptr<const double>(boxes), ptr<const double>(scores), n, iou_threshold,
                                          sigma, min_score, method, ptr<index_t>(keep), ptr<double>(new_scores),
                                          stream_of(stream));
  return fastiou::soft_nms_cuda<float>(ptr<const float>(boxes), ptr<const float>(scores), n,
                                       static_cast<float>(iou_threshold), static_cast<float>(sigma),
                                       static_cast<float>(min_score), method, ptr<index_t>(keep),
                                       ptr<float>(new_scores), stream_of(stream));
}

void matrix_nms(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t scores, std::uintptr_t labels,
                index_t n, int kernel, double sigma, std::uintptr_t out, std::uintptr_t stream, int device) {
  check_sizes({n});
  if (kernel < 0 || kernel > 1) throw py::value_error("kernel: expected 0 (gaussian) or 1 (linear)");
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::matrix_nms_cuda<double>(ptr<const double>(boxes), ptr<const double>(scores),
                                     ptr<const long long>(labels), n, kernel, sigma, ptr<double>(out),
                                     stream_of(stream));
  else
    fastiou::matrix_nms_cuda<float>(ptr<const float>(boxes), ptr<const float>(scores), ptr<const long long>(labels),
                                    n, kernel, static_cast<float>(sigma), ptr<float>(out), stream_of(stream));
}

std::size_t multiclass_nms_workspace(index_t n, index_t c, index_t k, index_t images) {
  check_sizes({n, c, k, images});
  return fastiou::multiclass_nms_workspace_bytes(images, n, c, k);
}

// workspace: device memory of workspace_bytes (0: the call allocates one image's worth).
void multiclass_nms(const std::string& dtype, std::uintptr_t boxes, std::uintptr_t scores, index_t batch,
                    index_t n, index_t c, index_t cb, double iou_threshold, double score_threshold,
                    index_t max_per_class, index_t k, std::uintptr_t num, std::uintptr_t out_boxes,
                    std::uintptr_t out_scores, std::uintptr_t out_classes, std::uintptr_t out_indices,
                    std::uintptr_t workspace, std::size_t workspace_bytes, std::uintptr_t stream, int device) {
  check_sizes({batch, n, c, k});
  if (cb != 1 && cb != c) throw py::value_error("boxes: expected 1 or C boxes per (image, box)");
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  void* ws = reinterpret_cast<void*>(workspace);
  if (f64)
    fastiou::multiclass_nms_cuda<double>(ptr<const double>(boxes), ptr<const double>(scores), batch, n, c, cb,
                                         iou_threshold, score_threshold, max_per_class, k, ptr<index_t>(num),
                                         ptr<double>(out_boxes), ptr<double>(out_scores), ptr<index_t>(out_classes),
                                         ptr<index_t>(out_indices), ws, workspace_bytes, stream_of(stream));
  else
    fastiou::multiclass_nms_cuda<float>(ptr<const float>(boxes), ptr<const float>(scores), batch, n, c, cb,
                                        iou_threshold, score_threshold, max_per_class, k, ptr<index_t>(num),
                                        ptr<float>(out_boxes), ptr<float>(out_scores), ptr<index_t>(out_classes),
                                        ptr<index_t>(out_indices), ws, workspace_bytes, stream_of(stream));
}

// Bit-packed masks (fastiou/mask_math.h). bits are raw 64-bit words (uint64 or int64 arrays,
// the same bytes); boxes int32 (n, 4); areas, labels and keep int64. cuda_gpu.py checks the
// shapes and dtypes; the sizes are checked here again before anything is indexed.
using u64 = unsigned long long;

void check_words(index_t w, index_t ww) {
  if (w >= 0 && ww != (w + 63) / 64)
    throw py::value_error("bits: expected ceil(W/64) = " + std::to_string((w + 63) / 64) + " words per row, got " +
                          std::to_string(ww));
}

void pack_masks(std::uintptr_t masks, std::uintptr_t bits, std::uintptr_t boxes, std::uintptr_t areas, index_t n,
                index_t h, index_t w, index_t ww, std::uintptr_t stream, int device) {
  check_sizes({n, h, w, ww});
  check_words(w, ww);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::pack_masks_cuda(ptr<const uint8_t>(masks), ptr<u64>(bits), ptr<int>(boxes), ptr<long long>(areas), n, h, w,
                           stream_of(stream));
}

void unpack_masks(std::uintptr_t bits, std::uintptr_t out, index_t n, index_t h, index_t w, index_t ww,
                  std::uintptr_t stream, int device) {
  check_sizes({n, h, w, ww});
  check_words(w, ww);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::unpack_masks_cuda(ptr<const u64>(bits), ptr<uint8_t>(out), n, h, w, stream_of(stream));
}

void packed_stats(std::uintptr_t bits, std::uintptr_t boxes, std::uintptr_t areas, index_t n, index_t h, index_t ww,
                  std::uintptr_t stream, int device) {
  check_sizes({n, h, ww});
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::packed_stats_cuda(ptr<const u64>(bits), ptr<int>(boxes), ptr<long long>(areas), n, h, ww,
                             stream_of(stream));
}

void mask_iou(std::uintptr_t bits1, std::uintptr_t boxes1, std::uintptr_t areas1, index_t n, std::uintptr_t bits2,
              std::uintptr_t boxes2, std::uintptr_t areas2, index_t m, index_t h, index_t ww, std::uintptr_t out,
              std::uintptr_t stream, int device) {
  check_sizes({n, m, h, ww});
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::mask_iou_cuda(ptr<const u64>(bits1), ptr<const int>(boxes1), ptr<const long long>(areas1), n,
                         ptr<const u64>(bits2), ptr<const int>(boxes2), ptr<const long long>(areas2), m, h, ww,
                         ptr<float>(out), stream_of(stream));
}

index_t mask_nms(std::uintptr_t bits, std::uintptr_t boxes, std::uintptr_t areas, std::uintptr_t scores, index_t n,
                 index_t h, index_t ww, double iou_threshold, std::uintptr_t keep, std::uintptr_t stream,
                 int device) {
  check_sizes({n, h, ww});
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  return fastiou::mask_nms_cuda(ptr<const u64>(bits), ptr<const int>(boxes), ptr<const long long>(areas),
                                ptr<const double>(scores), n, h, ww, iou_threshold, ptr<index_t>(keep),
                                stream_of(stream));
}

void mask_matrix_nms(std::uintptr_t bits, std::uintptr_t boxes, std::uintptr_t areas, std::uintptr_t scores,
                     std::uintptr_t labels, index_t n, index_t h, index_t ww, int kernel, double sigma,
                     std::uintptr_t out, std::uintptr_t stream, int device) {
  check_sizes({n, h, ww});
  if (kernel < 0 || kernel > 1) throw py::value_error("kernel: expected 0 (gaussian) or 1 (linear)");
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::mask_matrix_nms_cuda(ptr<const u64>(bits), ptr<const int>(boxes), ptr<const long long>(areas),
                                ptr<const float>(scores), ptr<const long long>(labels), n, h, ww, kernel,
                                static_cast<float>(sigma), ptr<float>(out), stream_of(stream));
}

void resolve_overlaps(std::uintptr_t bits, std::uintptr_t scores, std::uintptr_t out_bits, index_t n, index_t h,
                      index_t ww, std::uintptr_t stream, int device) {
  check_sizes({n, h, ww});
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  fastiou::resolve_overlaps_cuda(ptr<const u64>(bits), ptr<const double>(scores), ptr<u64>(out_bits), n, h, ww,
                                 stream_of(stream));
}

// Anchors and matching (csrc/cuda/anchors.cu, box_iou_max.cu).
void anchor_grid(const std::string& dtype, std::uintptr_t cells, std::uintptr_t levels,
                 std::uintptr_t strides, index_t nlev, double offset, std::uintptr_t out,
                 index_t total, std::uintptr_t stream, int device) {
  check_sizes({nlev, total});
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::anchor_grid_cuda<double>(ptr<const double>(cells), ptr<const long long>(levels),
                                      ptr<const double>(strides), nlev, offset, ptr<double>(out), total,
                                      stream_of(stream));
  else
    fastiou::anchor_grid_cuda<float>(ptr<const float>(cells), ptr<const long long>(levels),
                                     ptr<const double>(strides), nlev, offset, ptr<float>(out), total,
                                     stream_of(stream));
}

void box_iou_max(const std::string& dtype, std::uintptr_t b1, index_t batch1, std::uintptr_t b2,
                 std::uintptr_t counts, index_t batch, index_t n, index_t m, std::uintptr_t values,
                 std::uintptr_t indices, std::uintptr_t stream, int device) {
  check_sizes({batch1, batch, n, m});
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::box_iou_max_cuda<double>(ptr<const double>(b1), batch1, ptr<const double>(b2),
                                      ptr<const long long>(counts), batch, n, m, ptr<double>(values),
                                      ptr<long long>(indices), stream_of(stream));
  else
    fastiou::box_iou_max_cuda<float>(ptr<const float>(b1), batch1, ptr<const float>(b2),
                                     ptr<const long long>(counts), batch, n, m, ptr<float>(values),
                                     ptr<long long>(indices), stream_of(stream));
}

void match_boxes(const std::string& dtype, std::uintptr_t anchors, index_t batch1, std::uintptr_t gt,
                 std::uintptr_t counts, index_t batch, index_t n, index_t m, double high, double low,
                 bool lowq, std::uintptr_t matches, std::uintptr_t stream, int device) {
  check_sizes({batch1, batch, n, m});
  const bool f64 = is_f64(dtype);
  py::gil_scoped_release release;
  DeviceGuard guard(device);
  if (f64)
    fastiou::match_boxes_cuda<double>(ptr<const double>(anchors), batch1, ptr<const double>(gt),
                                      ptr<const long long>(counts), batch, n, m, high, low, lowq,
                                      ptr<long long>(matches), stream_of(stream));
  else
    fastiou::match_boxes_cuda<float>(ptr<const float>(anchors), batch1, ptr<const float>(gt),
                                     ptr<const long long>(counts), batch, n, m, high, low, lowq,
                                     ptr<long long>(matches), stream_of(stream));
}

int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" state
    throw std::runtime_error(std::string("no usable CUDA device: ") + cudaGetErrorString(err));
  }
  return n;
}

py::dict build_info() {
  py::dict d;
  d["cuda_runtime"] = py::int_(CUDART_VERSION);
#ifdef FASTIOU_CUDA_ARCHS
  d["archs"] = py::str(FASTIOU_CUDA_ARCHS);
#endif
  int driver = 0;
  d["driver"] = cudaDriverGetVersion(&driver) == cudaSuccess ? py::int_(driver) : py::int_(0);
  return d;
}

}  // namespace

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "fastiou CUDA kernels (device pointers, sizes and a stream)";
  m.def("box_pairwise", &box_pairwise);
  m.def("box_aligned", &box_aligned);
  m.def("box_area", &box_area);
  m.def("box_convert", &box_convert);
  m.def("masks_to_boxes", &masks_to_boxes);
  m.def("nms", &nms);
  m.def("nms_sweep", &nms_sweep);
  m.def("soft_nms", &soft_nms);
  m.def("matrix_nms", &matrix_nms);
  m.def("multiclass_nms_workspace", &multiclass_nms_workspace);
  m.def("multiclass_nms", &multiclass_nms);
  m.def("pack_masks", &pack_masks);
  m.def("unpack_masks", &unpack_masks);
  m.def("packed_stats", &packed_stats);
  m.def("mask_iou", &mask_iou);
  m.def("mask_nms", &mask_nms);
  m.def("mask_matrix_nms", &mask_matrix_nms);
  m.def("resolve_overlaps", &resolve_overlaps);
  m.def("anchor_grid", &anchor_grid);
  m.def("box_iou_max", &box_iou_max);
  m.def("match_boxes", &match_boxes);
  m.def("device_count", &device_count);
  m.def("build_info", &build_info);
}
