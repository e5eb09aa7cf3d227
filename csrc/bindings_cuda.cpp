// fastiou._C_cuda: the CUDA kernels, called with device pointers.
//
// The Python layer (fastiou/_backends/cuda_gpu.py) allocates every buffer in the caller's
// library (torch or cupy) on the caller's device, checks shapes and dtypes, and passes raw
// pointers, sizes and the caller's current stream: this module never sees a torch or cupy
// type and never synchronises. Launches are asynchronous; errors surface as RuntimeError.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

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
  m.def("device_count", &device_count);
  m.def("build_info", &build_info);
}
