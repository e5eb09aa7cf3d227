// fastiou._C: the CPU kernels for numpy arrays.
//
// The Python layer (fastiou/_dispatch.py) hands over validated, C-contiguous arrays and a
// preallocated output; this layer checks again what a kernel would index out of bounds with,
// so a bad call raises ValueError instead of reading past a buffer, then releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bindings_common.h"
#include "fastiou/ops.h"

#ifndef FASTIOU_BUILD_FLAGS
#define FASTIOU_BUILD_FLAGS "unknown"
#endif
#ifndef FASTIOU_CUDA_STATUS
#define FASTIOU_CUDA_STATUS "unknown"
#endif

namespace py = pybind11;
using fastiou::index_t;
using fastiou::bind::checked;

namespace {

void check_codes(int mode, int fmt, int fmt2 = 0) {
  if (mode < 0 || mode > 4) throw py::value_error("mode: expected 0..4");
  if (fmt < 0 || fmt > 2 || fmt2 < 0 || fmt2 > 2) throw py::value_error("fmt: expected 0..2");
}

template <typename T>
void box_pairwise_t(const py::array& b1, const py::array& b2, const py::array& out, int mode,
                    int fmt, double eps) {
  const T* p1 = checked<T>(b1, "boxes1", {-1, -1, 4}, false);
  const index_t batch = b1.shape(0), n = b1.shape(1);
  const T* p2 = checked<T>(b2, "boxes2", {batch, -1, 4}, false);
  const index_t m = b2.shape(1);
  T* po = checked<T>(out, "out", {batch, n, m}, true);
  fastiou::bind::released([&] {
    fastiou::box_pairwise_cpu<T>(p1, p2, po, batch, n, m, mode, fmt, static_cast<T>(eps));
  });
}

void box_pairwise(const py::array& b1, const py::array& b2, const py::array& out, int mode,
                  int fmt, double eps) {
  check_codes(mode, fmt);
  if (fastiou::bind::is_dtype<double>(b1))
    box_pairwise_t<double>(b1, b2, out, mode, fmt, eps);
  else
    box_pairwise_t<float>(b1, b2, out, mode, fmt, eps);
}

template <typename T>
void box_aligned_t(const py::array& b1, const py::array& b2, const py::array& out, int mode,
                   int fmt, double eps) {
  const T* p1 = checked<T>(b1, "boxes1", {-1, 4}, false);
  const index_t n = b1.shape(0);
  const T* p2 = checked<T>(b2, "boxes2", {n, 4}, false);
  T* po = checked<T>(out, "out", {n}, true);
  fastiou::bind::released([&] {
    fastiou::box_aligned_cpu<T>(p1, p2, po, n, mode, fmt, static_cast<T>(eps));
  });
}

void box_aligned(const py::array& b1, const py::array& b2, const py::array& out, int mode,
                 int fmt, double eps) {
  check_codes(mode, fmt);
  if (fastiou::bind::is_dtype<double>(b1))
    box_aligned_t<double>(b1, b2, out, mode, fmt, eps);
  else
    box_aligned_t<float>(b1, b2, out, mode, fmt, eps);
}

template <typename T>
void box_area_t(const py::array& b, const py::array& out, int fmt) {
  const T* p = checked<T>(b, "boxes", {-1, 4}, false);
  const index_t n = b.shape(0);
  T* po = checked<T>(out, "out", {n}, true);
  fastiou::bind::released([&] {
    fastiou::box_area_cpu<T>(p, po, n, fmt);
  });
}

void box_area(const py::array& b, const py::array& out, int fmt) {
  check_codes(0, fmt);
  if (fastiou::bind::is_dtype<double>(b))
    box_area_t<double>(b, out, fmt);
  else
    box_area_t<float>(b, out, fmt);
}

template <typename T>
void box_convert_t(const py::array& b, const py::array& out, int in_fmt, int out_fmt) {
  const T* p = checked<T>(b, "boxes", {-1, 4}, false);
  const index_t n = b.shape(0);
  T* po = checked<T>(out, "out", {n, 4}, true);
  if (static_cast<const void*>(p) == static_cast<const void*>(po))
    throw py::value_error("out: must not alias boxes");
  fastiou::bind::released([&] {
    fastiou::box_convert_cpu<T>(p, po, n, in_fmt, out_fmt);
  });
}

void box_convert(const py::array& b, const py::array& out, int in_fmt, int out_fmt) {
  check_codes(0, in_fmt, out_fmt);
  if (fastiou::bind::is_dtype<double>(b))
    box_convert_t<double>(b, out, in_fmt, out_fmt);
  else
    box_convert_t<float>(b, out, in_fmt, out_fmt);
}

void masks_to_boxes(const py::array& masks, const py::array& out) {
  const uint8_t* pm = checked<uint8_t>(masks, "masks", {-1, -1, -1}, false);
  const index_t n = masks.shape(0), h = masks.shape(1), w = masks.shape(2);
  float* po = checked<float>(out, "out", {n, 4}, true);
  fastiou::bind::released([&] {
    fastiou::masks_to_boxes_cpu(pm, po, n, h, w);
  });
}

py::dict build_info() {
  py::dict d;
  d["compiler"] = py::str(
#if defined(__clang__)
      "clang " __clang_version__
#elif defined(__GNUC__)
      "gcc " __VERSION__
#else
      "unknown"
#endif
  );
  d["flags"] = py::str(FASTIOU_BUILD_FLAGS);
  d["isa"] = py::str(fastiou::cpu_isa());
  d["cuda"] = py::str(FASTIOU_CUDA_STATUS);
#ifdef _OPENMP
  d["openmp"] = py::int_(_OPENMP);
  d["max_threads"] = py::int_(omp_get_max_threads());
#else
  d["openmp"] = py::none();
  d["max_threads"] = py::int_(1);
#endif
  return d;
}

}  // namespace

void register_nms(py::module_& m);    // csrc/bindings_cpu_nms.cpp
void register_masks(py::module_& m);  // csrc/bindings_cpu_masks.cpp
void register_rle(py::module_& m);    // csrc/bindings_cpu_rle.cpp
void register_threads(py::module_& m);  // csrc/bindings_cpu_threads.cpp
void register_launch(py::module_& m); // csrc/bindings_cpu_launch.cpp
void register_anchors(py::module_& m);  // csrc/bindings_cpu_anchors.cpp
void register_check(py::module_& m);    // csrc/bindings_cpu_check.cpp

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastiou CPU kernels (numpy arrays in, preallocated numpy outputs)";
  m.def("box_pairwise", &box_pairwise, py::arg("boxes1"), py::arg("boxes2"), py::arg("out"),
        py::arg("mode"), py::arg("fmt"), py::arg("eps"));
  m.def("box_aligned", &box_aligned, py::arg("boxes1"), py::arg("boxes2"), py::arg("out"),
        py::arg("mode"), py::arg("fmt"), py::arg("eps"));
  m.def("box_area", &box_area, py::arg("boxes"), py::arg("out"), py::arg("fmt"));
  m.def("box_convert", &box_convert, py::arg("boxes"), py::arg("out"), py::arg("in_fmt"),
        py::arg("out_fmt"));
  m.def("masks_to_boxes", &masks_to_boxes, py::arg("masks"), py::arg("out"));
  m.def("build_info", &build_info);
  register_threads(m);
  register_nms(m);
  register_masks(m);
  register_rle(m);
  register_launch(m);
  register_anchors(m);
  register_check(m);
}
