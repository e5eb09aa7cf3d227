// fastiou._C: anchors and matching (anchor_grid, box_iou_max, match_boxes).
//
// Same contract as csrc/bindings_cpu.cpp: validated, C-contiguous numpy arrays and
// preallocated outputs come in; every shape, dtype and size a kernel would index out of
// bounds with is checked again here (ValueError), then the GIL is released around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>

#include "bindings_common.h"
#include "fastiou/ops.h"

namespace py = pybind11;
using fastiou::index_t;
using fastiou::bind::checked;

namespace {

bool is_f64(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<double>())) return true;
  if (a.dtype().is(py::dtype::of<float>())) return false;
  throw py::value_error(std::string(name) + ": expected dtype float32 or float64, got " +
                        std::string(py::str(a.dtype())));
}

template <typename T>
void anchor_grid_t(const py::array& cells, const py::array& levels, const py::array& strides,
                   double offset, const py::array& out) {
  const T* pc = checked<T>(cells, "cells", {-1, 4}, false);
  const index_t ncell = cells.shape(0);
  const int64_t* pl = checked<int64_t>(levels, "levels", {-1, 5}, false);
  const index_t nlev = levels.shape(0);
  const double* ps = checked<double>(strides, "strides", {nlev, 2}, false);
  index_t total = 0;
  for (index_t l = 0; l < nlev; ++l) {
    const int64_t* lv = pl + l * 5;
    if (lv[0] < 0 || lv[1] < 0 || lv[2] < 0 || lv[3] < 0 || lv[3] + lv[2] > ncell || lv[4] != total)
      throw py::value_error("levels: row " + std::to_string(l) + " does not fit cells or the output");
    total += lv[0] * lv[1] * lv[2];
  }
  T* po = checked<T>(out, "out", {total, 4}, true);
  py::gil_scoped_release release;
  fastiou::anchor_grid_cpu<T>(pc, pl, ps, nlev, offset, po);
}

void anchor_grid(const py::array& cells, const py::array& levels, const py::array& strides,
                 double offset, const py::array& out) {
  if (is_f64(cells, "cells"))
    anchor_grid_t<double>(cells, levels, strides, offset, out);
  else
    anchor_grid_t<float>(cells, levels, strides, offset, out);
}

// Shared checks of box_iou_max and match_boxes: (batch1, batch, n, m, counts pointer).
template <typename T>
const int64_t* check_pair(const py::array& rows, const char* rname, const py::array& cols,
                          const char* cname, const py::array& counts, index_t* batch1,
                          index_t* batch, index_t* n, index_t* m, const T** pr, const T** pcol) {
  *pr = checked<T>(rows, rname, {-1, -1, 4}, false);
  *pcol = checked<T>(cols, cname, {-1, -1, 4}, false);
  *batch1 = rows.shape(0);
  *batch = cols.shape(0);
  *n = rows.shape(1);
  *m = cols.shape(1);
  if (*batch1 != 1 && *batch1 != *batch)
    throw py::value_error(std::string(rname) + ": expected 1 or " + std::to_string(*batch) +
                          " items, got " + std::to_string(*batch1));
  if (*m >= std::numeric_limits<int32_t>::max())
    throw py::value_error(std::string(cname) + ": at most 2**31 - 2 boxes per item");
  const int64_t* pc = checked<int64_t>(counts, "counts", {*batch}, false);
  for (index_t b = 0; b < *batch; ++b)
    if (pc[b] < 0 || pc[b] > *m)
      throw py::value_error("counts: item " + std::to_string(b) + " has " + std::to_string(pc[b]) +
                            " boxes, expected 0.." + std::to_string(*m));
  return pc;
}

template <typename T>
void box_iou_max_t(const py::array& b1, const py::array& b2, const py::array& counts,
                   const py::array& values, const py::array& indices) {
  index_t batch1, batch, n, m;
  const T *p1, *p2;
  const int64_t* pc = check_pair<T>(b1, "boxes1", b2, "boxes2", counts, &batch1, &batch, &n, &m, &p1, &p2);
  T* pv = checked<T>(values, "values", {batch, n}, true);
  int64_t* pi = checked<int64_t>(indices, "indices", {batch, n}, true);
  py::gil_scoped_release release;
  fastiou::box_iou_max_cpu<T>(p1, batch1, p2, pc, batch, n, m, pv, pi);
}

void box_iou_max(const py::array& b1, const py::array& b2, const py::array& counts,
                 const py::array& values, const py::array& indices) {
  if (is_f64(b1, "boxes1"))
    box_iou_max_t<double>(b1, b2, counts, values, indices);
  else
    box_iou_max_t<float>(b1, b2, counts, values, indices);
}

template <typename T>
void match_boxes_t(const py::array& anchors, const py::array& gt, const py::array& counts,
                   double high, double low, bool lowq, const py::array& matches) {
  index_t batch1, batch, n, m;
  const T *pa, *pg;
  const int64_t* pc = check_pair<T>(anchors, "anchors", gt, "gt", counts, &batch1, &batch, &n, &m, &pa, &pg);
  int64_t* pm = checked<int64_t>(matches, "matches", {batch, n}, true);
  py::gil_scoped_release release;
  fastiou::match_boxes_cpu<T>(pa, batch1, pg, pc, batch, n, m, high, low, lowq, pm);
}

void match_boxes(const py::array& anchors, const py::array& gt, const py::array& counts,
                 double high, double low, bool lowq, const py::array& matches) {
  if (is_f64(anchors, "anchors"))
    match_boxes_t<double>(anchors, gt, counts, high, low, lowq, matches);
  else
    match_boxes_t<float>(anchors, gt, counts, high, low, lowq, matches);
}

}  // namespace

void register_anchors(py::module_& m) {
  m.def("anchor_grid", &anchor_grid, py::arg("cells"), py::arg("levels"), py::arg("strides"),
        py::arg("offset"), py::arg("out"));
  m.def("box_iou_max", &box_iou_max, py::arg("boxes1"), py::arg("boxes2"), py::arg("counts"),
        py::arg("values"), py::arg("indices"));
  m.def("match_boxes", &match_boxes, py::arg("anchors"), py::arg("gt"), py::arg("counts"),
        py::arg("high"), py::arg("low"), py::arg("allow_low_quality_matches"), py::arg("matches"));
}
