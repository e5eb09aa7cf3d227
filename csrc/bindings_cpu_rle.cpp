// fastiou._C: COCO run-length masks (rle_encode, rle_decode, rle_area, rle_to_bbox, rle_merge,
// rle_iou, rle_box_iou, rle_from_polygons, rle_from_counts; rle_unpack and rle_iou_args turn
// RLE dicts into those arguments).
//
// Counts strings come in as lists of bytes with an int64 (N, 2) array of sizes (h, w); every
// string is parsed and checked (characters, continuation, runs summing to h * w) before a
// kernel sees it, and a bad one is a ValueError naming `name`[i]. The GIL is released around
// the parsing and the kernels; the bytes objects stay referenced by the caller's list.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bindings_common.h"
#include "fastiou/ops.h"

namespace py = pybind11;
using fastiou::index_t;
using fastiou::bind::checked;

namespace {

constexpr uint64_t kMaxPixels = uint64_t(1) << 32;  // counts are uint32, as in pycocotools

bool size_ok(int64_t h, int64_t w) {
  return h >= 0 && w >= 0 && (h == 0 || static_cast<uint64_t>(w) < kMaxPixels / static_cast<uint64_t>(h) + 1) &&
         static_cast<uint64_t>(h) * static_cast<uint64_t>(w) < kMaxPixels;
}

void check_size(int64_t h, int64_t w, const std::string& what) {
  if (h < 0 || w < 0)
    throw py::value_error(what + ": expected a non-negative size [h, w], got [" +
                          std::to_string(h) + ", " + std::to_string(w) + "]");
  if (!size_ok(h, w))
    throw py::value_error(what + ": h * w must stay below 2**32 (uint32 run lengths), got [" +
                          std::to_string(h) + ", " + std::to_string(w) + "]");
}

const int64_t* sizes_ptr(const py::array& sizes, index_t n, const std::string& name) {
  const int64_t* p = checked<int64_t>(sizes, (name + " sizes").c_str(), {n, 2}, false);
  for (index_t i = 0; i < n; ++i)
    if (!size_ok(p[2 * i], p[2 * i + 1]))  // the message only for the one that fails
      check_size(p[2 * i], p[2 * i + 1], name + "[" + std::to_string(i) + "]['size']");
  return p;
}

// The strings of a list of counts (bytes objects, which stay referenced by the caller's list).
struct Strings {
  std::vector<const char*> s;
  std::vector<size_t> start;  // string i's counts at start[i] of the parse buffer
  index_t bad = -1;           // the first item that is not bytes

  size_t chars() const { return start.back(); }

  // Records the strings; with the GIL held.
  void gather(const py::list& counts, size_t base = 0) {
    const index_t n = static_cast<index_t>(counts.size());
    s.resize(static_cast<size_t>(n));
    start.resize(static_cast<size_t>(n) + 1);
    start[0] = base;
    bad = -1;
    for (index_t i = 0; i < n; ++i) {
      PyObject* o = PyList_GET_ITEM(counts.ptr(), static_cast<py::ssize_t>(i));
      if (!PyBytes_Check(o)) {
        bad = i;
        start[n] = start[i];  // chars(): the strings before it
        return;
      }
      s[i] = PyBytes_AS_STRING(o);
      start[i + 1] = start[i] + static_cast<size_t>(PyBytes_GET_SIZE(o));
    }
  }

  [[noreturn]] void throw_bad(const py::list& counts, const std::string& name) const {
    PyObject* o = PyList_GET_ITEM(counts.ptr(), static_cast<py::ssize_t>(bad));
    throw py::value_error(name + "[" + std::to_string(bad) + "]['counts']: expected bytes, got " +
                          std::string(Py_TYPE(o)->tp_name));
  }

  // Parses every string into buf (room for one count per character from start[0]); returns the
  // first malformed one (and its error in *code), or -1. Without the GIL.
  index_t parse(const int64_t* sizes, uint32_t* buf, const uint32_t** ptr, index_t* m, int* code) const {
    const index_t n = static_cast<index_t>(s.size());
    auto one = [&](index_t i) {
      const uint64_t hw = static_cast<uint64_t>(sizes[2 * i]) * static_cast<uint64_t>(sizes[2 * i + 1]);
      uint32_t* out = buf + start[i];
      size_t k = 0;
      const int err = fastiou::rle_from_string(s[i], start[i + 1] - start[i], hw, out, &k);
      ptr[i] = out;
      m[i] = static_cast<index_t>(k);
      return err;
    };
    if (n > 64 && chars() - start[0] > (size_t(1) << 18)) {  // threads only for enough text
      std::vector<int> err(static_cast<size_t>(n), 0);
#pragma omp parallel for schedule(dynamic, 16)
      for (index_t i = 0; i < n; ++i) err[i] = one(i);
      for (index_t i = 0; i < n; ++i)
        if (err[i]) {
          *code = err[i];
          return i;
        }
      return -1;
    }
    for (index_t i = 0; i < n; ++i) {
      const int err = one(i);
      if (err) {
        *code = err;
        return i;
      }
    }
    return -1;
  }
};

[[noreturn]] void throw_malformed(const std::string& name, index_t i, const int64_t* sizes, int code) {
  throw py::value_error(name + "[" + std::to_string(i) + "]['counts']: malformed counts for size [" +
                        std::to_string(sizes[2 * i]) + ", " + std::to_string(sizes[2 * i + 1]) +
                        "]: " + fastiou::rle_error_text(code));
}

std::string parse_oom_text(size_t n, size_t chars) {
  return fastiou::bind::oom_text("rle", std::to_string(n) + " counts strings (" + std::to_string(chars) +
                                 " characters: " + fastiou::bytes_text(4.0 * chars) + " of counts)");
}

// Parsed counts of a list of strings, all in one buffer (one allocation, not one per mask).
struct Parsed {
  std::unique_ptr<uint32_t[]> arena;  // room for one count per character
  std::vector<const uint32_t*> ptr;
  std::vector<index_t> m;
};

Parsed parse_all(const py::list& counts, const int64_t* sizes, const std::string& name) {
  const index_t n = static_cast<index_t>(counts.size());
  Strings st;
  st.gather(counts);
  if (st.bad >= 0) st.throw_bad(counts, name);
  const size_t chars = st.chars();
  Parsed p;
  fastiou::oom_named([&] { return parse_oom_text(static_cast<size_t>(n), chars); }, [&] {
    p.arena.reset(new uint32_t[chars + 1]);  // uninitialised: each parse writes what it returns
    p.ptr.resize(static_cast<size_t>(n));
    p.m.resize(static_cast<size_t>(n));
  });
  int code = 0;
  auto what = [&] { return fastiou::bind::oom_text("rle", n, " counts strings (", chars, " characters)"); };
  const index_t bad = fastiou::bind::released_named(what, [&] {
    return st.parse(sizes, p.arena.get(), p.ptr.data(), p.m.data(), &code);
  });
  if (bad >= 0) throw_malformed(name, bad, sizes, code);
  return p;
}

py::list to_bytes_list(const std::vector<std::string>& strs) {
  py::list out(strs.size());
  for (size_t i = 0; i < strs.size(); ++i) out[i] = py::bytes(strs[i]);
  return out;
}

py::list rle_encode(const py::array& masks) {
  if (!fastiou::bind::is_dtype<uint8_t>(masks))
    throw py::value_error("masks: expected dtype uint8, got " + std::string(py::str(masks.dtype())));
  if (masks.ndim() != 3)
    throw py::value_error("masks: expected shape (N, H, W), got " + fastiou::bind::shape_str(masks));
  const index_t n = masks.shape(0), h = masks.shape(1), w = masks.shape(2);
  check_size(h, w, "masks");
  index_t st[3];
  for (int d = 0; d < 3; ++d) {
    st[d] = masks.shape(d) <= 1 ? 1 : masks.strides(d);
    if (st[d] <= 0 && n * h * w > 0)
      throw py::value_error("masks: expected positive strides, got " + std::to_string(st[d]) +
                            " bytes on axis " + std::to_string(d));
  }
  std::vector<std::string> out(static_cast<size_t>(n));
  {
    const uint8_t* p = static_cast<const uint8_t*>(masks.data());
    auto what = [&] { return fastiou::bind::oom_text("rle.encode", n, " masks of ", h, " x ", w); };
    fastiou::bind::released_named(what, [&] {
      fastiou::rle_encode_cpu(p, n, h, w, st[0], st[1], st[2], out.data());
    });
  }
  return to_bytes_list(out);
}

void rle_decode(const py::list& counts, int64_t h, int64_t w, const py::array& out,
                bool column_major, const std::string& name) {
  check_size(h, w, name);
  const index_t n = static_cast<index_t>(counts.size());
  uint8_t* po = checked<uint8_t>(out, "out", {n, column_major ? w : h, column_major ? h : w}, true);
  std::vector<int64_t> sizes(static_cast<size_t>(2 * n));
  for (index_t i = 0; i < n; ++i) {
    sizes[2 * i] = h;
    sizes[2 * i + 1] = w;
  }
  Parsed p = parse_all(counts, sizes.data(), name);
  auto what = [&] { return fastiou::bind::oom_text("rle.decode", n, " masks of ", h, " x ", w); };
  fastiou::bind::released_named(what, [&] {
    fastiou::rle_decode_cpu(p.ptr.data(), p.m.data(), n, h, w, column_major, po);
  });
}

void rle_area(const py::list& counts, const py::array& sizes, const py::array& out,
              const std::string& name) {
  const index_t n = static_cast<index_t>(counts.size());
  const int64_t* ps = sizes_ptr(sizes, n, name);
  uint32_t* po = checked<uint32_t>(out, "out", {n}, true);
  Parsed p = parse_all(counts, ps, name);
  fastiou::rle_area_cpu(p.ptr.data(), p.m.data(), n, po);
}

void rle_to_bbox(const py::list& counts, const py::array& sizes, const py::array& out,
                 const std::string& name) {
  const index_t n = static_cast<index_t>(counts.size());
  const int64_t* ps = sizes_ptr(sizes, n, name);
  double* po = checked<double>(out, "out", {n, 4}, true);
  Parsed p = parse_all(counts, ps, name);
  fastiou::rle_to_bbox_cpu(p.ptr.data(), p.m.data(), ps, n, po);
}

// The merged counts string, or None when the list is empty or the sizes differ.
py::object rle_merge(const py::list& counts, const py::array& sizes, bool intersect,
                     const std::string& name) {
  const index_t n = static_cast<index_t>(counts.size());
  const int64_t* ps = sizes_ptr(sizes, n, name);
  Parsed p = parse_all(counts, ps, name);
  std::vector<uint32_t> merged;
  std::string s;
  bool ok;
  {
    auto what = [&] { return fastiou::bind::oom_text("rle.merge", n, " masks"); };
    fastiou::bind::released_named(what, [&] {
      ok = fastiou::rle_merge_cpu(p.ptr.data(), p.m.data(), ps, n, intersect, &merged);
      if (ok) fastiou::rle_to_string(merged.data(), static_cast<index_t>(merged.size()), &s);
    });
  }
  if (!ok) return py::none();
  return py::bytes(s);
}

const uint8_t* crowd_ptr(const py::object& iscrowd, index_t ng) {
  if (iscrowd.is_none()) return nullptr;
  if (!py::isinstance<py::array>(iscrowd))
    throw py::value_error("iscrowd: expected a uint8 numpy array or None");
  return checked<uint8_t>(iscrowd.cast<py::array>(), "iscrowd", {ng}, false);
}

// What rle_iou keeps between calls on a thread (a call per image is a few microseconds: its
// allocations were a good part of them); dropped after a call that made it large.
struct IouScratch {
  Strings d, g;
  std::vector<uint32_t> counts;  // both sides' parsed counts (room for one a character)
  std::vector<const uint32_t*> ptr;
  std::vector<index_t> m;
};

void rle_iou(const py::list& dt, const py::array& dt_sizes, const py::list& gt,
             const py::array& gt_sizes, const py::object& iscrowd, const py::array& out) {
  const index_t nd = static_cast<index_t>(dt.size()), ng = static_cast<index_t>(gt.size());
  const int64_t* pds = sizes_ptr(dt_sizes, nd, "dt");
  const int64_t* pgs = sizes_ptr(gt_sizes, ng, "gt");
  const uint8_t* pc = crowd_ptr(iscrowd, ng);
  double* po = checked<double>(out, "out", {nd, ng}, true);
  // The same list and sizes for both (IoU of detections among themselves): parsed once.
  const bool same = dt.ptr() == gt.ptr() && dt_sizes.ptr() == gt_sizes.ptr();
  // This thread's scratch, through a reference: released() runs the kernel on another thread
  // in a forked child, where the name would be that thread's own (empty) scratch.
  static thread_local IouScratch sc_tl;
  IouScratch& sc = sc_tl;
  struct Trim {
    IouScratch* sc;
    ~Trim() {
      if (sc->counts.capacity() > (size_t(4) << 20)) *sc = IouScratch();
    }
  } trim_after{&sc_tl};
  sc.d.gather(dt);
  if (sc.d.bad >= 0) sc.d.throw_bad(dt, "dt");
  if (!same) sc.g.gather(gt, sc.d.chars());  // a bad item is reported after dt's counts are checked
  const size_t chars = same ? sc.d.chars() : sc.g.chars();
  const size_t n = static_cast<size_t>(same ? nd : nd + ng);
  fastiou::oom_named([&] { return parse_oom_text(n, chars); }, [&] {
    if (sc.counts.size() < chars + 1) sc.counts.resize(chars + 1);
    sc.ptr.resize(n);
    sc.m.resize(n);
  });
  // Parsing and the pairs in one release of the GIL; the first malformed string (dt's, then
  // gt's) stops it.
  int code = 0;
  int bad_side = 0;  // 1: dt, 2: gt's type, 3: gt's counts
  index_t bad = -1;
  auto what = [&] { return fastiou::bind::oom_text("rle.iou", nd, " x ", ng, " masks"); };
  fastiou::bind::released_named(what, [&] {
    bad = sc.d.parse(pds, sc.counts.data(), sc.ptr.data(), sc.m.data(), &code);
    if (bad >= 0) {
      bad_side = 1;
      return;
    }
    if (!same) {
      if (sc.g.bad >= 0) {
        bad_side = 2;
        return;
      }
      bad = sc.g.parse(pgs, sc.counts.data(), sc.ptr.data() + nd, sc.m.data() + nd, &code);
      if (bad >= 0) {
        bad_side = 3;
        return;
      }
    }
    const size_t go = same ? 0 : static_cast<size_t>(nd);
    fastiou::rle_iou_cpu(sc.ptr.data(), sc.m.data(), pds, nd, sc.ptr.data() + go, sc.m.data() + go,
                         pgs, ng, pc, same, po);
  });
  if (bad_side == 1) throw_malformed("dt", bad, pds, code);
  if (bad_side == 2) sc.g.throw_bad(gt, "gt");
  if (bad_side == 3) throw_malformed("gt", bad, pgs, code);
}

void rle_box_iou(const py::array& dt, const py::array& gt, const py::object& iscrowd,
                 const py::array& out) {
  const double* pd = checked<double>(dt, "dt", {-1, 4}, false);
  const double* pg = checked<double>(gt, "gt", {-1, 4}, false);
  const index_t nd = dt.shape(0), ng = gt.shape(0);
  const uint8_t* pc = crowd_ptr(iscrowd, ng);
  double* po = checked<double>(out, "out", {nd, ng}, true);
  auto what = [&] { return fastiou::bind::oom_text("rle.iou", nd, " x ", ng, " boxes"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::rle_box_iou_cpu(pd, pg, nd, ng, pc, po);
  });
}

py::list strings_of(std::vector<std::vector<uint32_t>>& cnts) {
  std::vector<std::string> s(cnts.size());
  {
    auto what = [&] { return fastiou::bind::oom_text("rle", cnts.size(), " counts strings"); };
    fastiou::bind::released_named(what, [&] {
      for (size_t i = 0; i < cnts.size(); ++i)
        fastiou::rle_to_string(cnts[i].data(), static_cast<index_t>(cnts[i].size()), &s[i]);
    });
  }
  return to_bytes_list(s);
}

// Vertices scaled by 5 must stay well inside int (pycocotools casts them to int).
constexpr double kMaxCoord = 1 << 27;

py::list rle_from_polygons(const py::list& polygons, int64_t h, int64_t w, const std::string& name) {
  check_size(h, w, name);
  const index_t n = static_cast<index_t>(polygons.size());
  std::vector<const double*> xy(static_cast<size_t>(n));
  std::vector<index_t> k(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    const std::string what = name + "[" + std::to_string(i) + "]";
    py::handle o = polygons[static_cast<size_t>(i)];
    if (!py::isinstance<py::array>(o)) throw py::value_error(what + ": expected a float64 numpy array");
    const py::array a = py::reinterpret_borrow<py::array>(o);
    const double* p = checked<double>(a, what.c_str(), {-1}, false);
    if (a.shape(0) % 2)
      throw py::value_error(what + ": expected an even number of coordinates (x0, y0, x1, y1, ...), got " +
                            std::to_string(a.shape(0)));
    for (py::ssize_t j = 0; j < a.shape(0); ++j)
      if (!(std::abs(p[j]) < kMaxCoord))
        throw py::value_error(what + ": coordinates must be finite and below 2**27 in magnitude, got " +
                              std::to_string(p[j]));
    xy[i] = p;
    k[i] = a.shape(0) / 2;
  }
  std::vector<std::vector<uint32_t>> cnts(static_cast<size_t>(n));
  {
    auto what = [&] {
      return fastiou::bind::oom_text("rle.from_segmentation", n, " polygons at ", h, " x ", w);
    };
    fastiou::bind::released_named(what, [&] {
      fastiou::rle_from_polygons_cpu(xy.data(), k.data(), n, h, w, cnts.data());
    });
  }
  return strings_of(cnts);
}

py::list rle_from_counts(const py::list& counts, const py::array& sizes, const std::string& name) {
  const index_t n = static_cast<index_t>(counts.size());
  const int64_t* ps = sizes_ptr(sizes, n, name);
  std::vector<std::vector<uint32_t>> cnts(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    const std::string what = name + "[" + std::to_string(i) + "]['counts']";
    py::handle o = counts[static_cast<size_t>(i)];
    if (!py::isinstance<py::array>(o)) throw py::value_error(what + ": expected a uint32 numpy array");
    const py::array a = py::reinterpret_borrow<py::array>(o);
    const uint32_t* p = checked<uint32_t>(a, what.c_str(), {-1}, false);
    uint64_t sum = 0;
    for (py::ssize_t j = 0; j < a.shape(0); ++j) sum += p[j];
    const uint64_t hw = static_cast<uint64_t>(ps[2 * i]) * static_cast<uint64_t>(ps[2 * i + 1]);
    if (sum != hw)
      throw py::value_error(what + ": the run lengths add up to " + std::to_string(sum) +
                            ", expected h * w = " + std::to_string(hw));
    cnts[i].assign(p, p + a.shape(0));
  }
  return strings_of(cnts);
}

// The counts (as bytes, into the new list counts) and sizes of a list of RLE dicts; false when
// an item is not the plain form (a dict whose 'size' is a list or tuple of two ints and whose
// 'counts' is bytes or an ASCII str).
bool unpack_into(const py::list& rles, const py::list& counts, int64_t* ps) {
  // Interned keys, made once: PyDict_GetItemString would build a str a lookup.
  static PyObject* const kSize = PyUnicode_InternFromString("size");
  static PyObject* const kCounts = PyUnicode_InternFromString("counts");
  if (!kSize || !kCounts) throw py::error_already_set();
  const size_t n = rles.size();
  for (size_t i = 0; i < n; ++i) {
    PyObject* r = PyList_GET_ITEM(rles.ptr(), static_cast<py::ssize_t>(i));
    if (!PyDict_Check(r)) return false;
    PyObject* size = PyDict_GetItem(r, kSize);  // borrowed
    PyObject* c = PyDict_GetItem(r, kCounts);
    if (!size || !c || !(PyList_Check(size) || PyTuple_Check(size)) || PySequence_Fast_GET_SIZE(size) != 2)
      return false;
    for (int k = 0; k < 2; ++k) {
      PyObject* v = PySequence_Fast_GET_ITEM(size, k);
      if (!PyLong_CheckExact(v)) return false;
      int overflow = 0;
      const long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
      if (overflow) return false;
      ps[2 * i + k] = x;
    }
    PyObject* item;
    if (PyBytes_CheckExact(c)) {
      Py_INCREF(c);
      item = c;
    } else if (PyUnicode_CheckExact(c) && PyUnicode_IS_ASCII(c)) {
      item = PyUnicode_AsASCIIString(c);
      if (!item) throw py::error_already_set();
    } else {
      return false;
    }
    PyList_SET_ITEM(counts.ptr(), static_cast<py::ssize_t>(i), item);  // steals item
  }
  return true;
}

// (counts as bytes, int64 sizes (N, 2)) of a list of RLE dicts, or None when an item is not
// the plain form: fastiou/rle.py then checks every item itself and names the bad one.
py::object rle_unpack(const py::list& rles) {
  const size_t n = rles.size();
  py::list counts(n);  // every item is set by unpack_into, or the list is dropped
  py::array_t<int64_t> sizes({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(2)});
  if (!unpack_into(rles, counts, sizes.mutable_data())) return py::none();
  return py::make_tuple(counts, sizes);
}

// rle_iou's arguments for rle.iou(dt, gt, iscrowd) in one call (a call per image): (dt counts,
// dt sizes, gt counts, gt sizes, iscrowd uint8 (G,) or None, out float64 (D, G)), the gt ones
// the dt ones when gt is dt. None unless both lists are non-empty and plain (rle_unpack) and
// iscrowd is None or a list of G bools, ints or floats (non-zero is crowd): rle.py then takes
// the general path, which names what is wrong.
py::object rle_iou_args(const py::list& dt, const py::list& gt, const py::object& iscrowd) {
  const size_t nd = dt.size(), ng = gt.size();
  if (nd == 0 || ng == 0) return py::none();
  py::object crowd = py::none();
  if (!iscrowd.is_none()) {
    if (!PyList_CheckExact(iscrowd.ptr()) || static_cast<size_t>(PyList_GET_SIZE(iscrowd.ptr())) != ng)
      return py::none();
    py::array_t<uint8_t> flags(static_cast<py::ssize_t>(ng));
    uint8_t* pf = flags.mutable_data();
    for (size_t i = 0; i < ng; ++i) {
      PyObject* v = PyList_GET_ITEM(iscrowd.ptr(), static_cast<py::ssize_t>(i));
      if (!(PyBool_Check(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v))) return py::none();
      const int t = PyObject_IsTrue(v);  // as bool(v): NaN is crowd
      if (t < 0) throw py::error_already_set();
      pf[i] = static_cast<uint8_t>(t);
    }
    crowd = std::move(flags);
  }
  py::list dc(nd);
  py::array_t<int64_t> ds({static_cast<py::ssize_t>(nd), static_cast<py::ssize_t>(2)});
  if (!unpack_into(dt, dc, ds.mutable_data())) return py::none();
  py::object gc = dc, gs = ds;
  if (gt.ptr() != dt.ptr()) {
    py::list c(ng);
    py::array_t<int64_t> s({static_cast<py::ssize_t>(ng), static_cast<py::ssize_t>(2)});
    if (!unpack_into(gt, c, s.mutable_data())) return py::none();
    gc = std::move(c);
    gs = std::move(s);
  }
  py::array_t<double> out({static_cast<py::ssize_t>(nd), static_cast<py::ssize_t>(ng)});
  return py::make_tuple(dc, ds, gc, gs, crowd, out);
}

}  // namespace

void register_rle(py::module_& m) {
  m.def("rle_encode", &rle_encode, py::arg("masks"),
        "uint8 masks (N, H, W), any positive strides, non-zero = foreground -> [counts bytes].");
  m.def("rle_decode", &rle_decode, py::arg("counts"), py::arg("h"), py::arg("w"), py::arg("out"),
        py::arg("column_major"), py::arg("name"),
        "Writes the masks to out: uint8 (N, H, W), or (N, W, H) with column_major.");
  m.def("rle_area", &rle_area, py::arg("counts"), py::arg("sizes"), py::arg("out"), py::arg("name"),
        "Foreground pixels of each mask into out uint32 (N,).");
  m.def("rle_to_bbox", &rle_to_bbox, py::arg("counts"), py::arg("sizes"), py::arg("out"),
        py::arg("name"), "xywh boxes (pycocotools' toBbox) into out float64 (N, 4).");
  m.def("rle_merge", &rle_merge, py::arg("counts"), py::arg("sizes"), py::arg("intersect"),
        py::arg("name"), "Union / intersection counts bytes, or None (empty list, sizes differ).");
  m.def("rle_iou", &rle_iou, py::arg("dt"), py::arg("dt_sizes"), py::arg("gt"),
        py::arg("gt_sizes"), py::arg("iscrowd"), py::arg("out"),
        "pycocotools' rleIou into out float64 (D, G).");
  m.def("rle_box_iou", &rle_box_iou, py::arg("dt"), py::arg("gt"), py::arg("iscrowd"),
        py::arg("out"), "pycocotools' bbIou of xywh boxes into out float64 (D, G).");
  m.def("rle_from_polygons", &rle_from_polygons, py::arg("polygons"), py::arg("h"), py::arg("w"),
        py::arg("name"), "pycocotools' rleFrPoly of each float64 (2K,) polygon -> [counts bytes].");
  m.def("rle_unpack", &rle_unpack, py::arg("rles"),
        "(counts bytes list, int64 sizes (N, 2)) of plain RLE dicts, or None (then check in Python).");
  m.def("rle_iou_args", &rle_iou_args, py::arg("dt"), py::arg("gt"), py::arg("iscrowd"),
        "rle_iou's arguments (counts and sizes of both, uint8 iscrowd, out) of plain RLE dict lists "
        "and a list of flags or None, or None (then the general path in Python).");
  m.def("rle_from_counts", &rle_from_counts, py::arg("counts"), py::arg("sizes"), py::arg("name"),
        "Compresses uint32 run lengths (each summing to h * w) -> [counts bytes].");
}
