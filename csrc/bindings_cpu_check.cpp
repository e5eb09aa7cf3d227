// fastiou._C: batched helpers of `fastiou check` (fastiou/diagnostics/audit.py), a shard of
// annotations at a time: check_polygons_unpack, check_polygon_masks, check_iou_groups.
//
// They are not backend ops (not in fastiou/_backends/interface.py): the audit calls them only
// while the compiled backend is the host backend, and does the same work with the declared ops
// (rle_from_polygons, rle_merge, rle_area, rle_to_bbox, rle_iou) otherwise. They run the
// kernels of csrc/cpu/rle.cpp (through fastiou/ops.h), so the masks and IoUs are the ones those
// ops give, bit for bit.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings_common.h"
#include "fastiou/ops.h"

namespace py = pybind11;
using fastiou::index_t;
using fastiou::bind::checked;

namespace {

constexpr uint64_t kMaxPixels = uint64_t(1) << 32;  // counts are uint32, as in pycocotools
constexpr double kMaxCoord = 1 << 27;                 // the rasteriser's limit (rle_from_polygons)

bool size_ok(int64_t h, int64_t w) {
  return h > 0 && w > 0 && static_cast<uint64_t>(h) * static_cast<uint64_t>(w) < kMaxPixels;
}

// (coordinates float64 (C,), coordinates per part int64 (P,), parts per segmentation int64 (N,))
// of a list of segmentations. A plain polygon segmentation (a list of lists, each an even
// number of exact floats or ints) adds its parts, in order; any other item (an RLE dict, None, a
// list with an odd, nested or non-number part, an int too large for a double) has -1 parts and
// adds nothing: the caller reads it itself.
py::tuple check_polygons_unpack(const py::list& segs) {
  const py::ssize_t n = PyList_GET_SIZE(segs.ptr());
  py::array_t<int64_t> nparts(n);
  int64_t* np_ = nparts.mutable_data();
  std::vector<int64_t> lens;
  size_t total = 0;
  for (py::ssize_t i = 0; i < n; ++i) {
    PyObject* s = PyList_GET_ITEM(segs.ptr(), i);
    np_[i] = -1;
    if (!PyList_CheckExact(s)) continue;
    const py::ssize_t k = PyList_GET_SIZE(s);
    bool ok = true;
    size_t sum = 0;
    for (py::ssize_t j = 0; ok && j < k; ++j) {
      PyObject* p = PyList_GET_ITEM(s, j);
      if (!PyList_CheckExact(p) || PyList_GET_SIZE(p) % 2) {
        ok = false;
        break;
      }
      const py::ssize_t m = PyList_GET_SIZE(p);
      for (py::ssize_t q = 0; q < m; ++q) {
        PyObject* v = PyList_GET_ITEM(p, q);
        if (PyFloat_CheckExact(v)) continue;
        if (!PyLong_CheckExact(v) || (PyLong_AsDouble(v) == -1.0 && PyErr_Occurred())) {
          PyErr_Clear();  // (an int beyond a double)
          ok = false;
          break;
        }
      }
      sum += static_cast<size_t>(m);
    }
    if (!ok) continue;
    np_[i] = k;
    for (py::ssize_t j = 0; j < k; ++j) lens.push_back(PyList_GET_SIZE(PyList_GET_ITEM(s, j)));
    total += sum;
  }
  py::array_t<double> xy(static_cast<py::ssize_t>(total));
  py::array_t<int64_t> plens(static_cast<py::ssize_t>(lens.size()));
  double* px = xy.mutable_data();
  int64_t* pl = plens.mutable_data();
  for (size_t j = 0; j < lens.size(); ++j) pl[j] = lens[j];
  size_t at = 0;
  for (py::ssize_t i = 0; i < n; ++i) {
    if (np_[i] < 0) continue;
    PyObject* s = PyList_GET_ITEM(segs.ptr(), i);
    const py::ssize_t k = PyList_GET_SIZE(s);
    for (py::ssize_t j = 0; j < k; ++j) {
      PyObject* p = PyList_GET_ITEM(s, j);
      const py::ssize_t m = PyList_GET_SIZE(p);
      for (py::ssize_t q = 0; q < m; ++q) {
        PyObject* v = PyList_GET_ITEM(p, q);
        px[at++] = PyFloat_CheckExact(v) ? PyFloat_AS_DOUBLE(v) : PyLong_AsDouble(v);
      }
    }
  }
  return py::make_tuple(xy, plens, nparts);
}

// The counts strings of m masks, each the union of its polygon parts as pycocotools' annToRLE
// makes it (frPyObjects, then merge; no part: the empty mask), with the area and the box of
// each into areas (uint32 (M,)) and boxes (float64 (M, 4), toBbox's xywh). Part j has
// points[j] vertices at xy[start[j] ...] and belongs to mask owner[j] (non-decreasing); mask i
// is sizes[i] = (h, w).
py::list check_polygon_masks(const py::array& xy, const py::array& start, const py::array& points,
                             const py::array& owner, const py::array& sizes, const py::array& areas,
                             const py::array& boxes) {
  const double* pxy = checked<double>(xy, "xy", {-1}, false);
  const index_t c = xy.shape(0);
  const int64_t* ps = checked<int64_t>(start, "start", {-1}, false);
  const index_t np_ = start.shape(0);
  const int64_t* pk = checked<int64_t>(points, "points", {np_}, false);
  const int64_t* po = checked<int64_t>(owner, "owner", {np_}, false);
  const int64_t* psz = checked<int64_t>(sizes, "sizes", {-1, 2}, false);
  const index_t m = sizes.shape(0);
  uint32_t* pa = checked<uint32_t>(areas, "areas", {m}, true);
  double* pb = checked<double>(boxes, "boxes", {m, 4}, true);
  for (index_t i = 0; i < m; ++i)
    if (!size_ok(psz[2 * i], psz[2 * i + 1]))
      throw py::value_error("sizes[" + std::to_string(i) + "]: expected h, w > 0 with h * w < 2**32");
  std::vector<index_t> first(static_cast<size_t>(m) + 1, 0);  // mask i's parts: [first[i], first[i + 1])
  for (index_t j = 0; j < np_; ++j) {
    if (po[j] < 0 || po[j] >= m || (j && po[j] < po[j - 1]))
      throw py::value_error("owner: expected non-decreasing mask indices in [0, " + std::to_string(m) + ")");
    if (ps[j] < 0 || pk[j] < 0 || ps[j] + 2 * pk[j] > c)
      throw py::value_error("start, points: part " + std::to_string(j) + " is outside xy");
    for (int64_t q = ps[j]; q < ps[j] + 2 * pk[j]; ++q)
      if (!(std::abs(pxy[q]) < kMaxCoord))
        throw py::value_error("xy: coordinates must be finite and below 2**27 in magnitude");
    ++first[static_cast<size_t>(po[j]) + 1];
  }
  for (index_t i = 0; i < m; ++i) first[i + 1] += first[i];
  std::vector<std::string> out(static_cast<size_t>(m));
  auto what = [&] { return fastiou::bind::oom_text("check", m, " polygon masks (", np_, " parts)"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::RegionErrors err;
#pragma omp parallel for schedule(dynamic, 8) if (m > 32)
    for (index_t i = 0; i < m; ++i) {
      err.run([&] {
        const index_t h = psz[2 * i], w = psz[2 * i + 1];
        const index_t b = first[i], e = first[i + 1];
        std::vector<uint32_t> mask;
        if (e == b) {
          mask.assign(1, static_cast<uint32_t>(h * w));
        } else if (e - b == 1) {
          fastiou::rle_from_polygon_cpu(pxy + ps[b], pk[b], h, w, &mask);
        } else {
          std::vector<std::vector<uint32_t>> parts(static_cast<size_t>(e - b));
          std::vector<const uint32_t*> ptr(parts.size());
          std::vector<index_t> len(parts.size());
          std::vector<int64_t> sz(2 * parts.size());
          for (index_t j = b; j < e; ++j) {
            auto& r = parts[j - b];
            fastiou::rle_from_polygon_cpu(pxy + ps[j], pk[j], h, w, &r);
            ptr[j - b] = r.data();
            len[j - b] = static_cast<index_t>(r.size());
            sz[2 * (j - b)] = h;
            sz[2 * (j - b) + 1] = w;
          }
          fastiou::rle_merge_cpu(ptr.data(), len.data(), sz.data(), e - b, false, &mask);
        }
        const uint32_t* mp = mask.data();
        const index_t mm = static_cast<index_t>(mask.size());
        fastiou::rle_area_cpu(&mp, &mm, 1, pa + i);
        fastiou::rle_to_bbox_cpu(&mp, &mm, psz + 2 * i, 1, pb + 4 * i);
        fastiou::rle_to_string(mp, mm, &out[i]);
      });
    }
    err.rethrow([&] { return what(); });
  });
  py::list res(static_cast<size_t>(m));
  for (index_t i = 0; i < m; ++i)
    PyList_SET_ITEM(res.ptr(), i, py::bytes(out[i]).release().ptr());
  return res;
}

// The mask IoU of every pair within each group: groups are the ranges [bounds[g], bounds[g+1])
// of the counts strings (bytes; sizes (N, 2)); for each group, its pairs (i < j) in row-major
// order (numpy's triu_indices(n, 1)), as rle_iou gives them. float64 (sum n_g (n_g - 1) / 2,).
py::array_t<double> check_iou_groups(const py::list& counts, const py::array& sizes,
                                     const py::array& bounds) {
  const index_t n = static_cast<index_t>(PyList_GET_SIZE(counts.ptr()));
  const int64_t* psz = checked<int64_t>(sizes, "sizes", {n, 2}, false);
  const int64_t* pg = checked<int64_t>(bounds, "bounds", {-1}, false);
  const index_t ng = bounds.shape(0) - 1;
  if (ng < 0 || pg[0] != 0 || pg[ng] != n) throw py::value_error("bounds: expected 0, ..., len(counts)");
  std::vector<size_t> at(static_cast<size_t>(ng) + 1, 0);  // group g's pairs at out + at[g]
  for (index_t g = 0; g < ng; ++g) {
    if (pg[g + 1] < pg[g]) throw py::value_error("bounds: expected non-decreasing");
    const size_t k = static_cast<size_t>(pg[g + 1] - pg[g]);
    at[g + 1] = at[g] + k * (k ? k - 1 : 0) / 2;
  }
  std::vector<const char*> s(static_cast<size_t>(n));
  std::vector<size_t> len(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    PyObject* o = PyList_GET_ITEM(counts.ptr(), i);
    if (!PyBytes_Check(o)) throw py::value_error("counts[" + std::to_string(i) + "]: expected bytes");
    if (!size_ok(psz[2 * i], psz[2 * i + 1]))
      throw py::value_error("sizes[" + std::to_string(i) + "]: expected h, w > 0 with h * w < 2**32");
    s[i] = PyBytes_AS_STRING(o);
    len[i] = static_cast<size_t>(PyBytes_GET_SIZE(o));
  }
  py::array_t<double> out(static_cast<py::ssize_t>(at[ng]));
  double* pout = out.mutable_data();
  std::vector<int> bad(static_cast<size_t>(ng), -1);
  auto what = [&] { return fastiou::bind::oom_text("check", n, " masks in ", ng, " groups"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::RegionErrors err;
#pragma omp parallel for schedule(dynamic, 4) if (ng > 8)
    for (index_t g = 0; g < ng; ++g) {
      err.run([&] {
        const index_t b = pg[g], k = pg[g + 1] - pg[g];
        if (k < 2) return;
        std::vector<std::vector<uint32_t>> cnts(static_cast<size_t>(k));
        std::vector<const uint32_t*> ptr(static_cast<size_t>(k));
        std::vector<index_t> m(static_cast<size_t>(k));
        for (index_t i = 0; i < k; ++i) {
          const uint64_t hw = static_cast<uint64_t>(psz[2 * (b + i)]) * static_cast<uint64_t>(psz[2 * (b + i) + 1]);
          if (fastiou::rle_from_string(s[b + i], len[b + i], hw, &cnts[i])) {
            bad[g] = static_cast<int>(b + i);
            return;
          }
          ptr[i] = cnts[i].data();
          m[i] = static_cast<index_t>(cnts[i].size());
        }
        std::vector<double> iou(static_cast<size_t>(k * k));
        fastiou::rle_iou_cpu(ptr.data(), m.data(), psz + 2 * b, k, ptr.data(), m.data(), psz + 2 * b, k,
                             nullptr, true, iou.data());
        double* o = pout + at[g];
        for (index_t i = 0; i < k; ++i)
          for (index_t j = i + 1; j < k; ++j) *o++ = iou[i * k + j];
      });
    }
    err.rethrow([&] { return what(); });
  });
  for (index_t g = 0; g < ng; ++g)
    if (bad[g] >= 0) throw py::value_error("counts[" + std::to_string(bad[g]) + "]: malformed counts");
  return out;
}

}  // namespace

void register_check(py::module_& m) {
  m.def("check_polygons_unpack", &check_polygons_unpack, py::arg("segs"),
        "(xy float64, coordinates per part int64, parts per segmentation int64 (-1: not a plain "
        "polygon list)) of a list of segmentations.");
  m.def("check_polygon_masks", &check_polygon_masks, py::arg("xy"), py::arg("start"), py::arg("points"),
        py::arg("owner"), py::arg("sizes"), py::arg("areas"), py::arg("boxes"),
        "Counts bytes of each mask (the union of its polygon parts), its area and box into areas, boxes.");
  m.def("check_iou_groups", &check_iou_groups, py::arg("counts"), py::arg("sizes"), py::arg("bounds"),
        "Mask IoU of the pairs (i < j, row-major) within each group of counts strings, as one float64 array.");
}
