// fastiou._C: the suppression kernels (nms, nms_sweep, soft_nms, matrix_nms, multiclass_nms).
//
// Same contract as csrc/bindings_cpu.cpp: validated, C-contiguous numpy arrays (multiclass_nms's
// scores: any positive strides) and preallocated outputs come in; every shape, stride, dtype
// and code a kernel would index out of bounds with is checked again here (ValueError), then
// the GIL is released around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bindings_common.h"
#include "fastiou/ops.h"

namespace py = pybind11;
using fastiou::index_t;
using fastiou::bind::checked;

namespace {

// The kernels index boxes with 32-bit positions internally.
void check_count(index_t n, const char* what) {
  if (n >= std::numeric_limits<int32_t>::max())
    throw py::value_error(std::string(what) + ": at most 2**31 - 2 boxes, got " +
                          std::to_string(n));
}

bool is_f64(const py::array& boxes) {
  if (fastiou::bind::is_dtype<double>(boxes)) return true;
  if (fastiou::bind::is_dtype<float>(boxes)) return false;
  throw py::value_error("boxes: expected dtype float32 or float64, got " +
                        std::string(py::str(boxes.dtype())));
}

const int64_t* classes_ptr(const py::object& classes, index_t n) {
  if (classes.is_none()) return nullptr;
  if (!py::isinstance<py::array>(classes))
    throw py::value_error("classes: expected an int64 numpy array or None");
  return checked<int64_t>(classes.cast<py::array>(), "classes", {n}, false);
}

// As checked(), for an input read through its strides (a transposed view needs no copy):
// returns the data pointer and writes the element strides to `strides`. A stride must be a
// positive multiple of the item size (a flipped or broadcast view is refused: the caller
// copies those), and the farthest element must lie at an offset that int64 holds. A
// dimension of extent 1 only ever reads index 0: its stride is set to 1, whatever it was.
template <typename T>
const T* strided(const py::array& a, const char* name, std::vector<py::ssize_t> shape,
                 index_t* strides) {
  fastiou::bind::check_dtype_shape<T>(a, name, shape);
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + ": expected an aligned array");
  const py::ssize_t item = static_cast<py::ssize_t>(sizeof(T));
  bool empty = false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) empty = empty || a.shape(d) == 0;
  int64_t extent = 0;  // offset of the farthest element, in elements
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    strides[d] = 1;
    if (empty || a.shape(d) <= 1) continue;
    const py::ssize_t st = a.strides(d);
    if (st <= 0 || st % item != 0)
      throw py::value_error(std::string(name) + ": expected positive strides that are multiples "
                            "of the item size, got " + std::to_string(st) + " bytes on axis " +
                            std::to_string(d));
    strides[d] = st / item;
    int64_t span;
    if (__builtin_mul_overflow(static_cast<int64_t>(a.shape(d) - 1), strides[d], &span) ||
        __builtin_add_overflow(extent, span, &extent))
      throw py::value_error(std::string(name) + ": strides and shape reach past 2**63 elements");
  }
  // A view made with as_strided may claim more than its memory: where the owning array can be
  // found (through ndarray bases and as_strided's wrapper), its buffer must hold every element.
  if (!empty) {
    py::object o = a.attr("base");
    while (!o.is_none() && !(py::isinstance<py::array>(o) && o.cast<py::array>().owndata()))
      o = py::hasattr(o, "base") ? py::object(o.attr("base")) : py::none();
    if (!o.is_none()) {
      const py::array owner = o.cast<py::array>();
      const char* lo = static_cast<const char*>(owner.data());
      const char* p = static_cast<const char*>(a.data());
      const py::ssize_t off = p - lo;
      if (off < 0 || off > owner.nbytes() || extent >= (owner.nbytes() - off) / item)
        throw py::value_error(std::string(name) +
                              ": strides and shape reach past the array's memory");
    }
  }
  return static_cast<const T*>(a.data());
}

template <typename T>
index_t nms_t(const py::array& boxes, const py::array& scores, const py::object& classes,
              double thr, const py::array& keep) {
  const T* pb = checked<T>(boxes, "boxes", {-1, 4}, false);
  const index_t n = boxes.shape(0);
  check_count(n, "boxes");
  const double* ps = checked<double>(scores, "scores", {n}, false);
  const int64_t* pc = classes_ptr(classes, n);
  int64_t* pk = checked<int64_t>(keep, "keep", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("nms", n, " boxes"); };
  return fastiou::bind::released_named(what, [&] {
    return fastiou::nms_cpu<T>(pb, ps, pc, n, thr, pk);
  });
}

index_t nms(const py::array& boxes, const py::array& scores, const py::object& classes,
            double iou_threshold, const py::array& keep) {
  return is_f64(boxes) ? nms_t<double>(boxes, scores, classes, iou_threshold, keep)
                       : nms_t<float>(boxes, scores, classes, iou_threshold, keep);
}

template <typename T>
std::vector<index_t> nms_sweep_t(const py::array& boxes, const py::array& scores,
                                 const py::object& classes, const std::vector<double>& thr,
                                 const py::array& keep) {
  const T* pb = checked<T>(boxes, "boxes", {-1, 4}, false);
  const index_t n = boxes.shape(0);
  check_count(n, "boxes");
  const double* ps = checked<double>(scores, "scores", {n}, false);
  const int64_t* pc = classes_ptr(classes, n);
  const index_t nt = static_cast<index_t>(thr.size());
  int64_t* pk = checked<int64_t>(keep, "keep", {nt, n}, true);
  std::vector<index_t> counts(thr.size(), 0);
  {
    auto what = [&] { return fastiou::bind::oom_text("nms_sweep", n, " boxes at ", nt, " thresholds"); };
    fastiou::bind::released_named(what, [&] {
      fastiou::nms_sweep_cpu<T>(pb, ps, pc, n, thr.data(), nt, pk, counts.data());
    });
  }
  return counts;
}

std::vector<index_t> nms_sweep(const py::array& boxes, const py::array& scores,
                               const py::object& classes, const std::vector<double>& thresholds,
                               const py::array& keep) {
  return is_f64(boxes) ? nms_sweep_t<double>(boxes, scores, classes, thresholds, keep)
                       : nms_sweep_t<float>(boxes, scores, classes, thresholds, keep);
}

template <typename T>
index_t soft_nms_t(const py::array& boxes, const py::array& scores, double thr, double sigma,
                   double min_score, int method, const py::array& keep,
                   const py::array& new_scores) {
  const T* pb = checked<T>(boxes, "boxes", {-1, 4}, false);
  const index_t n = boxes.shape(0);
  check_count(n, "boxes");
  const T* ps = checked<T>(scores, "scores", {n}, false);
  int64_t* pk = checked<int64_t>(keep, "keep", {n}, true);
  T* pn = checked<T>(new_scores, "new_scores", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("soft_nms", n, " boxes"); };
  return fastiou::bind::released_named(what, [&] {
    return fastiou::soft_nms_cpu<T>(pb, ps, n, thr, sigma, min_score, method, pk, pn);
  });
}

index_t soft_nms(const py::array& boxes, const py::array& scores, double iou_threshold,
                 double sigma, double min_score, int method, const py::array& keep,
                 const py::array& new_scores) {
  if (method < 0 || method > 2)
    throw py::value_error("method: expected 0 (linear), 1 (gaussian) or 2 (hard), got " +
                          std::to_string(method));
  return is_f64(boxes)
             ? soft_nms_t<double>(boxes, scores, iou_threshold, sigma, min_score, method, keep,
                                  new_scores)
             : soft_nms_t<float>(boxes, scores, iou_threshold, sigma, min_score, method, keep,
                                 new_scores);
}

template <typename T>
void matrix_nms_t(const py::array& boxes, const py::array& scores, const py::array& labels,
                  int kernel, double sigma, const py::array& out) {
  const T* pb = checked<T>(boxes, "boxes", {-1, 4}, false);
  const index_t n = boxes.shape(0);
  check_count(n, "boxes");
  const T* ps = checked<T>(scores, "scores", {n}, false);
  const int64_t* pl = checked<int64_t>(labels, "labels", {n}, false);
  T* po = checked<T>(out, "out", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("matrix_nms", n, " boxes"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::matrix_nms_cpu<T>(pb, ps, pl, n, kernel, sigma, po);
  });
}

void matrix_nms(const py::array& boxes, const py::array& scores, const py::array& labels,
                int kernel, double sigma, const py::array& out) {
  if (kernel < 0 || kernel > 1)
    throw py::value_error("kernel: expected 0 (gaussian) or 1 (linear), got " +
                          std::to_string(kernel));
  if (is_f64(boxes))
    matrix_nms_t<double>(boxes, scores, labels, kernel, sigma, out);
  else
    matrix_nms_t<float>(boxes, scores, labels, kernel, sigma, out);
}

template <typename T>
void multiclass_nms_t(const py::array& boxes, const py::array& scores, double thr, double sthr,
                      index_t max_per_class, const py::array& num, const py::array& out_boxes,
                      const py::array& out_scores, const py::array& out_classes,
                      const py::array& out_indices) {
  const T* pb = checked<T>(boxes, "boxes", {-1, -1, -1, 4}, false);
  const index_t b = boxes.shape(0), n = boxes.shape(1), cb = boxes.shape(2);
  check_count(n, "boxes");
  index_t ss[3];
  const T* ps = strided<T>(scores, "scores", {b, n, -1}, ss);
  const index_t c = scores.shape(2);
  if (cb != 1 && cb != c)
    throw py::value_error("boxes: expected shape (B, N, 1, 4) or (B, N, C, 4) with C = " +
                          std::to_string(c) + ", got " + fastiou::bind::shape_str(boxes));
  if (c >= std::numeric_limits<int32_t>::max() / (n > 0 ? n : 1))
    throw py::value_error("scores: N * C must stay below 2**31");
  int64_t* pn = checked<int64_t>(num, "num", {b}, true);
  T* pos = checked<T>(out_scores, "out_scores", {b, -1}, true);
  const index_t k = out_scores.shape(1);
  T* pob = checked<T>(out_boxes, "out_boxes", {b, k, 4}, true);
  int64_t* poc = checked<int64_t>(out_classes, "out_classes", {b, k}, true);
  int64_t* poi = checked<int64_t>(out_indices, "out_indices", {b, k}, true);
  auto what = [&] {
    return fastiou::bind::oom_text("multiclass_nms", b, " images x ", n, " boxes x ", c, " classes");
  };
  fastiou::bind::released_named(what, [&] {
    fastiou::multiclass_nms_cpu<T>(pb, ps, b, n, c, ss[0], ss[1], ss[2], cb, thr, sthr,
                                   max_per_class, k, pn, pob, pos, poc, poi);
  });
}

void multiclass_nms(const py::array& boxes, const py::array& scores, double iou_threshold,
                    double score_threshold, index_t max_per_class, const py::array& num,
                    const py::array& out_boxes, const py::array& out_scores,
                    const py::array& out_classes, const py::array& out_indices) {
  if (max_per_class < -1)
    throw py::value_error("max_per_class: expected -1 (no limit) or a count >= 0, got " +
                          std::to_string(max_per_class));
  if (is_f64(boxes))
    multiclass_nms_t<double>(boxes, scores, iou_threshold, score_threshold, max_per_class, num,
                             out_boxes, out_scores, out_classes, out_indices);
  else
    multiclass_nms_t<float>(boxes, scores, iou_threshold, score_threshold, max_per_class, num,
                            out_boxes, out_scores, out_classes, out_indices);
}

}  // namespace

void register_nms(py::module_& m) {
  m.def("nms", &nms, py::arg("boxes"), py::arg("scores"), py::arg("classes"),
        py::arg("iou_threshold"), py::arg("keep"),
        "Greedy NMS; writes kept positions to keep[:K] in ranking order and returns K.");
  m.def("nms_sweep", &nms_sweep, py::arg("boxes"), py::arg("scores"), py::arg("classes"),
        py::arg("thresholds"), py::arg("keep"),
        "NMS at every threshold: keep[t, :K_t]; returns [K_t].");
  m.def("soft_nms", &soft_nms, py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"),
        py::arg("sigma"), py::arg("min_score"), py::arg("method"), py::arg("keep"),
        py::arg("new_scores"),
        "mmcv soft-NMS; keep[:K], new_scores[:K] in processing order; returns K.");
  m.def("matrix_nms", &matrix_nms, py::arg("boxes"), py::arg("scores"), py::arg("labels"),
        py::arg("kernel"), py::arg("sigma"), py::arg("out"),
        "Matrix NMS decayed scores, in input order.");
  m.def("multiclass_nms", &multiclass_nms, py::arg("boxes"), py::arg("scores"),
        py::arg("iou_threshold"), py::arg("score_threshold"), py::arg("max_per_class"),
        py::arg("num"), py::arg("out_boxes"), py::arg("out_scores"), py::arg("out_classes"),
        py::arg("out_indices"), "Batched per-class NMS with per-class cap and top-K.");
}
