// fastiou._C: batched helpers of `fastiou check` (fastiou/diagnostics/audit.py), a shard of
// annotations at a time: check_polygons_unpack, check_annotations, check_numbers, check_polygon_masks, check_rle_masks,
// check_pair_ious.
//
// They are not backend ops (not in fastiou/_backends/interface.py): the audit calls them only
// while the compiled backend is the host backend, and does the same work with the declared ops
// (rle_from_polygons, rle_merge, rle_area, rle_to_bbox, rle_iou) otherwise. Masks are the
// kernels' of csrc/cpu/rle.cpp (through fastiou/ops.h); IoUs are rleIou's arithmetic on the
// exact common pixel count, so both are the ones those ops give, bit for bit.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstring>
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
  std::vector<double> xy;
  for (py::ssize_t i = 0; i < n; ++i) {
    PyObject* s = PyList_GET_ITEM(segs.ptr(), i);
    np_[i] = -1;
    if (!PyList_CheckExact(s)) continue;
    const py::ssize_t k = PyList_GET_SIZE(s);
    const size_t lens0 = lens.size(), xy0 = xy.size();  // (taken back if it is not plain)
    bool ok = true;
    for (py::ssize_t j = 0; ok && j < k; ++j) {
      PyObject* p = PyList_GET_ITEM(s, j);
      if (!PyList_CheckExact(p) || PyList_GET_SIZE(p) % 2) {
        ok = false;
        break;
      }
      const py::ssize_t m = PyList_GET_SIZE(p);
      lens.push_back(m);
      for (py::ssize_t q = 0; q < m; ++q) {
        PyObject* v = PyList_GET_ITEM(p, q);
        if (PyFloat_CheckExact(v)) {
          xy.push_back(PyFloat_AS_DOUBLE(v));
          continue;
        }
        const double d = PyLong_CheckExact(v) ? PyLong_AsDouble(v) : -1.0;
        if (!PyLong_CheckExact(v) || (d == -1.0 && PyErr_Occurred())) {
          PyErr_Clear();  // (an int beyond a double)
          ok = false;
          break;
        }
        xy.push_back(d);
      }
    }
    if (!ok) {
      lens.resize(lens0);
      xy.resize(xy0);
      continue;
    }
    np_[i] = k;
  }
  py::array_t<double> pxy(static_cast<py::ssize_t>(xy.size()));
  py::array_t<int64_t> plens(static_cast<py::ssize_t>(lens.size()));
  if (!xy.empty()) std::memcpy(pxy.mutable_data(), xy.data(), xy.size() * sizeof(double));
  if (!lens.empty()) std::memcpy(plens.mutable_data(), lens.data(), lens.size() * sizeof(int64_t));
  return py::make_tuple(pxy, plens, nparts);
}

// The columns of a list of well-formed COCO annotation records, in one pass: each an exact
// dict whose 'id', 'image_id' and 'category_id' are exact ints (int64), image_id a key of
// `images` (id -> position) and category_id of `categories` (id -> name), with a
// 'segmentation' and an 'iscrowd' (when present) of 0 or 1 (int or bool). Returns (image
// positions int64, ids int64, ids, category ids, names, iscrowd int8, segmentations, bboxes,
// areas) (the last three lists: the values, None where missing), or None when a record is not
// so (the caller then reads each one and names the faults); ids are not checked for repeats.
py::object check_annotations(const py::list& anns, const py::dict& images, const py::dict& categories) {
  static PyObject* const kId = PyUnicode_InternFromString("id");
  static PyObject* const kImage = PyUnicode_InternFromString("image_id");
  static PyObject* const kCat = PyUnicode_InternFromString("category_id");
  static PyObject* const kSeg = PyUnicode_InternFromString("segmentation");
  static PyObject* const kCrowd = PyUnicode_InternFromString("iscrowd");
  static PyObject* const kBox = PyUnicode_InternFromString("bbox");
  static PyObject* const kArea = PyUnicode_InternFromString("area");
  if (!kId || !kImage || !kCat || !kSeg || !kCrowd || !kBox || !kArea) throw py::error_already_set();
  const py::ssize_t n = PyList_GET_SIZE(anns.ptr());
  py::array_t<int64_t> img(n), idv(n);
  py::array_t<int8_t> crowd(n);
  int64_t* pimg = img.mutable_data();
  int64_t* pid = idv.mutable_data();
  int8_t* pcr = crowd.mutable_data();
  py::list ids(n), cids(n), names(n), segs(n), boxes(n), areas(n);
  auto set = [](py::list& l, py::ssize_t i, PyObject* v) {  // v borrowed (None when null)
    if (!v) v = Py_None;
    Py_INCREF(v);
    PyList_SET_ITEM(l.ptr(), i, v);
  };
  auto as_int64 = [](PyObject* v, int64_t* out) {
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return false;
    }
    *out = x;
    return true;
  };
  for (py::ssize_t i = 0; i < n; ++i) {
    PyObject* a = PyList_GET_ITEM(anns.ptr(), i);
    if (!PyDict_CheckExact(a)) return py::none();
    PyObject* id = PyDict_GetItem(a, kId);
    PyObject* iid = PyDict_GetItem(a, kImage);
    PyObject* cid = PyDict_GetItem(a, kCat);
    PyObject* seg = PyDict_GetItem(a, kSeg);
    if (!id || !iid || !cid || !seg || !PyLong_CheckExact(id) || !PyLong_CheckExact(iid) ||
        !PyLong_CheckExact(cid) || !as_int64(id, pid + i))
      return py::none();
    PyObject* pos = PyDict_GetItem(images.ptr(), iid);
    PyObject* name = PyDict_GetItem(categories.ptr(), cid);
    if (!pos || !name || !PyLong_CheckExact(pos) || !as_int64(pos, pimg + i)) return py::none();
    PyObject* c = PyDict_GetItem(a, kCrowd);
    if (!c) {
      pcr[i] = 0;
    } else if (c == Py_True || c == Py_False) {
      pcr[i] = c == Py_True;
    } else {
      int64_t x;
      if (!PyLong_CheckExact(c) || !as_int64(c, &x) || (x != 0 && x != 1)) return py::none();
      pcr[i] = static_cast<int8_t>(x);
    }
    set(ids, i, id);
    set(cids, i, cid);
    set(names, i, name);
    set(segs, i, seg);
    set(boxes, i, PyDict_GetItem(a, kBox));
    set(areas, i, PyDict_GetItem(a, kArea));
  }
  return py::make_tuple(img, idv, ids, cids, names, crowd, segs, boxes, areas);
}

// float64 (N, width) ((N,) for width 0) of a list of JSON values: each a list of `width` exact
// floats or ints (width 0: one exact float or int; not bool); None when one is not (the caller
// then reads the values one by one and names the bad ones).
py::object check_numbers(const py::list& values, int64_t width) {
  const py::ssize_t n = PyList_GET_SIZE(values.ptr());
  if (width < 0) throw py::value_error("width: expected >= 0");
  const py::ssize_t wd = width ? static_cast<py::ssize_t>(width) : 1;
  py::array_t<double> out = width ? py::array_t<double>({n, wd}) : py::array_t<double>(n);
  double* po = out.mutable_data();
  auto number = [](PyObject* v, double* d) {
    if (PyFloat_CheckExact(v)) {
      *d = PyFloat_AS_DOUBLE(v);
      return true;
    }
    if (!PyLong_CheckExact(v)) return false;
    *d = PyLong_AsDouble(v);
    if (*d == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
    return true;
  };
  for (py::ssize_t i = 0; i < n; ++i) {
    PyObject* v = PyList_GET_ITEM(values.ptr(), i);
    if (!width) {
      if (!number(v, po + i)) return py::none();
      continue;
    }
    if (!PyList_CheckExact(v) || PyList_GET_SIZE(v) != wd) return py::none();
    for (py::ssize_t j = 0; j < wd; ++j)
      if (!number(PyList_GET_ITEM(v, j), po + i * wd + j)) return py::none();
  }
  return std::move(out);
}

// Counts of many masks in one buffer: mask i's runs are cnts[offs[i]:offs[i + 1]].
py::tuple counts_arrays(const std::vector<std::vector<uint32_t>>& masks) {
  const size_t m = masks.size();
  py::array_t<int64_t> offs(static_cast<py::ssize_t>(m + 1));
  int64_t* po = offs.mutable_data();
  po[0] = 0;
  for (size_t i = 0; i < m; ++i) po[i + 1] = po[i] + static_cast<int64_t>(masks[i].size());
  py::array_t<uint32_t> cnts(static_cast<py::ssize_t>(po[m]));
  uint32_t* pc = cnts.mutable_data();
  {
    py::gil_scoped_release release;
    for (size_t i = 0; i < m; ++i)
      if (!masks[i].empty()) std::memcpy(pc + po[i], masks[i].data(), masks[i].size() * sizeof(uint32_t));
  }
  return py::make_tuple(cnts, offs);
}

// The masks of m annotations, each the union of its polygon parts as pycocotools' annToRLE
// makes it (frPyObjects, then merge; no part: the empty mask), as (counts uint32, offsets
// int64 (M + 1,)), with the area and the box of each into areas (uint32 (M,)) and boxes
// (float64 (M, 4), toBbox's xywh). Part j has points[j] vertices at xy[start[j] ...] and
// belongs to mask owner[j] (non-decreasing); mask i is sizes[i] = (h, w).
py::tuple check_polygon_masks(const py::array& xy, const py::array& start, const py::array& points,
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
  std::vector<std::vector<uint32_t>> out(static_cast<size_t>(m));
  auto what = [&] { return fastiou::bind::oom_text("check", m, " polygon masks (", np_, " parts)"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::RegionErrors err;
#pragma omp parallel for schedule(dynamic, 8) if (m > 32)
    for (index_t i = 0; i < m; ++i) {
      err.run([&] {
        const index_t h = psz[2 * i], w = psz[2 * i + 1];
        const index_t b = first[i], e = first[i + 1];
        std::vector<uint32_t>& mask = out[i];
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
      });
    }
    err.rethrow([&] { return what(); });
  });
  return counts_arrays(out);
}

// (counts uint32, offsets int64 (N + 1,), areas uint32 (N,), boxes float64 (N, 4)) of counts
// strings (bytes) of masks of sizes (N, 2): each parsed once and checked (ValueError naming
// the first bad one), its area and toBbox box from the runs.
py::tuple check_rle_masks(const py::list& counts, const py::array& sizes) {
  const index_t n = static_cast<index_t>(PyList_GET_SIZE(counts.ptr()));
  const int64_t* psz = checked<int64_t>(sizes, "sizes", {n, 2}, false);
  std::vector<const char*> str(static_cast<size_t>(n));
  std::vector<size_t> len(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    PyObject* o = PyList_GET_ITEM(counts.ptr(), i);
    if (!PyBytes_Check(o)) throw py::value_error("counts[" + std::to_string(i) + "]: expected bytes");
    const int64_t h = psz[2 * i], w = psz[2 * i + 1];
    if (h < 0 || w < 0 || static_cast<uint64_t>(h) * static_cast<uint64_t>(w) >= kMaxPixels)
      throw py::value_error("sizes[" + std::to_string(i) + "]: expected h, w >= 0 with h * w < 2**32");
    str[i] = PyBytes_AS_STRING(o);
    len[i] = static_cast<size_t>(PyBytes_GET_SIZE(o));
  }
  std::vector<std::vector<uint32_t>> out(static_cast<size_t>(n));
  py::array_t<uint32_t> areas(n);
  py::array_t<double> boxes({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(4)});
  uint32_t* pa = areas.mutable_data();
  double* pb = boxes.mutable_data();
  std::vector<int> err(static_cast<size_t>(n), 0);
  auto what = [&] { return fastiou::bind::oom_text("check", n, " RLE masks"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::RegionErrors re;
#pragma omp parallel for schedule(dynamic, 16) if (n > 64)
    for (index_t i = 0; i < n; ++i) {
      re.run([&] {
        const uint64_t hw = static_cast<uint64_t>(psz[2 * i]) * static_cast<uint64_t>(psz[2 * i + 1]);
        err[i] = fastiou::rle_from_string(str[i], len[i], hw, &out[i]);
        if (err[i]) return;
        const uint32_t* mp = out[i].data();
        const index_t mm = static_cast<index_t>(out[i].size());
        fastiou::rle_area_cpu(&mp, &mm, 1, pa + i);
        fastiou::rle_to_bbox_cpu(&mp, &mm, psz + 2 * i, 1, pb + 4 * i);
      });
    }
    re.rethrow([&] { return what(); });
  });
  for (index_t i = 0; i < n; ++i)
    if (err[i])
      throw py::value_error("counts[" + std::to_string(i) + "]: malformed counts: " + fastiou::rle_error_text(err[i]));
  py::tuple c = counts_arrays(out);
  return py::make_tuple(c[0], c[1], areas, boxes);
}

// Mask IoU of pairs (i[p], j[p]) of the masks cnts[offs[k]:offs[k + 1]] (areas (M,), boxes
// (M, 4) their toBbox boxes), as pycocotools' rleIou gives it: 0 where the boxes do not
// overlap, else the common pixels over the union (crowd[p]: over the area of mask i[p]), in
// rleIou's arithmetic. Into out float64 (P,).
void check_pair_ious(const py::array& cnts, const py::array& offs, const py::array& areas,
                     const py::array& boxes, const py::array& pi, const py::array& pj,
                     const py::array& crowd, const py::array& out) {
  const uint32_t* pc = checked<uint32_t>(cnts, "cnts", {-1}, false);
  const int64_t* pof = checked<int64_t>(offs, "offs", {-1}, false);
  const index_t m = offs.shape(0) - 1;
  if (m < 0 || pof[0] != 0 || pof[m] != cnts.shape(0)) throw py::value_error("offs: expected 0, ..., len(cnts)");
  for (index_t k = 0; k < m; ++k)
    if (pof[k + 1] < pof[k]) throw py::value_error("offs: expected non-decreasing");
  const uint32_t* pa = checked<uint32_t>(areas, "areas", {m}, false);
  const double* pb = checked<double>(boxes, "boxes", {m, 4}, false);
  const int64_t* ii = checked<int64_t>(pi, "i", {-1}, false);
  const index_t np_ = pi.shape(0);
  const int64_t* jj = checked<int64_t>(pj, "j", {np_}, false);
  const uint8_t* pcr = checked<uint8_t>(crowd, "crowd", {np_}, false);
  double* po = checked<double>(out, "out", {np_}, true);
  for (index_t p = 0; p < np_; ++p)
    if (ii[p] < 0 || ii[p] >= m || jj[p] < 0 || jj[p] >= m)
      throw py::value_error("i, j: expected mask indices in [0, " + std::to_string(m) + ")");
  auto what = [&] { return fastiou::bind::oom_text("check", np_, " mask pairs of ", m, " masks"); };
  fastiou::bind::released_named(what, [&] {
    // the masks in a pair whose boxes overlap: their foreground intervals [start, end)
    std::vector<uint8_t> need(static_cast<size_t>(m), 0);
    std::vector<uint8_t> hit(static_cast<size_t>(np_), 0);
    for (index_t p = 0; p < np_; ++p) {
      const double* d = pb + 4 * ii[p];
      const double* g = pb + 4 * jj[p];
      const double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
      const double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
      if (w > 0 && h > 0) hit[p] = need[ii[p]] = need[jj[p]] = 1;
    }
    std::vector<size_t> ivo(static_cast<size_t>(m) + 1, 0);
    for (index_t k = 0; k < m; ++k)
      ivo[k + 1] = ivo[k] + (need[k] ? static_cast<size_t>(pof[k + 1] - pof[k]) / 2 : 0);
    std::vector<uint32_t> iv(2 * ivo[m]);
    std::vector<size_t> ivn(static_cast<size_t>(m), 0);  // intervals of mask k (non-empty ones)
    for (index_t k = 0; k < m; ++k) {
      if (!need[k]) continue;
      uint32_t* o = iv.data() + 2 * ivo[k];
      size_t q = 0;
      uint32_t pos = 0;
      for (int64_t r = pof[k]; r < pof[k + 1]; ++r) {
        const uint32_t len = pc[r];
        if (((r - pof[k]) & 1) && len) {
          o[2 * q] = pos;
          o[2 * q + 1] = pos + len;
          ++q;
        }
        pos += len;
      }
      ivn[k] = q;
    }
#pragma omp parallel for schedule(dynamic, 256) if (np_ > 4096)
    for (index_t p = 0; p < np_; ++p) {
      if (!hit[p]) {
        po[p] = 0.0;
        continue;
      }
      const index_t d = ii[p], g = jj[p];
      const uint32_t* a = iv.data() + 2 * ivo[d];
      const uint32_t* b = iv.data() + 2 * ivo[g];
      const size_t na = ivn[d], nb = ivn[g];
      uint64_t inter = 0;
      if (na && nb) {
        // from the first interval of each that ends after the later of the two first starts
        const uint32_t from = std::max(a[0], b[0]);
        auto first_after = [from](const uint32_t* v, size_t n) {
          size_t lo = 0, hi = n;
          while (lo < hi) {
            const size_t mid = (lo + hi) / 2;
            if (v[2 * mid + 1] > from) hi = mid; else lo = mid + 1;
          }
          return lo;
        };
        size_t x = first_after(a, na), y = first_after(b, nb);
        while (x < na && y < nb) {
          const uint32_t sa = a[2 * x], ea = a[2 * x + 1], sb = b[2 * y], eb = b[2 * y + 1];
          const uint32_t s = sa > sb ? sa : sb, e = ea < eb ? ea : eb;
          inter += e > s ? e - s : 0;
          x += ea <= eb;
          y += eb <= ea;
        }
      }
      // rleIou's arithmetic: i / u in double from uint32; u = 1 when nothing is shared
      const uint32_t ad = pa[d], ag = pa[g];
      const uint64_t u = inter == 0 ? 1 : pcr[p] ? ad : uint64_t(ad) + ag - inter;
      po[p] = static_cast<double>(static_cast<uint32_t>(inter)) / static_cast<double>(static_cast<uint32_t>(u));
    }
  });
}

}  // namespace

void register_check(py::module_& m) {
  m.def("check_polygons_unpack", &check_polygons_unpack, py::arg("segs"),
        "(xy float64, coordinates per part int64, parts per segmentation int64 (-1: not a plain "
        "polygon list)) of a list of segmentations.");
  m.def("check_polygon_masks", &check_polygon_masks, py::arg("xy"), py::arg("start"), py::arg("points"),
        py::arg("owner"), py::arg("sizes"), py::arg("areas"), py::arg("boxes"),
        "(counts uint32, offsets int64) of each mask (the union of its polygon parts); its area and "
        "box into areas, boxes.");
  m.def("check_annotations", &check_annotations, py::arg("anns"), py::arg("images"), py::arg("categories"),
        "Columns of well-formed annotation records (see check_annotations in bindings_cpu_check.cpp), or None.");
  m.def("check_numbers", &check_numbers, py::arg("values"), py::arg("width"),
        "float64 (N, width) ((N,) for width 0) of plain number lists (numbers), or None.");
  m.def("check_rle_masks", &check_rle_masks, py::arg("counts"), py::arg("sizes"),
        "(counts uint32, offsets int64, areas uint32, boxes float64 (N, 4)) of counts strings, checked.");
  m.def("check_pair_ious", &check_pair_ious, py::arg("cnts"), py::arg("offs"), py::arg("areas"),
        py::arg("boxes"), py::arg("i"), py::arg("j"), py::arg("crowd"), py::arg("out"),
        "pycocotools' rleIou of mask pairs (i, j) into out float64 (P,).");
}
