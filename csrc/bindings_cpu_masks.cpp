// fastiou._C: the packed binary-mask kernels (mask_pack, mask_unpack, packed_stats, mask_iou,
// mask_nms, mask_matrix_nms, resolve_overlaps); layout in fastiou/mask_math.h.
//
// Same contract as csrc/bindings_cpu.cpp: validated, C-contiguous numpy arrays and preallocated
// outputs come in; every shape, dtype and box a kernel would index out of bounds with is
// checked again here (ValueError), then the GIL is released around the kernel. `bits` arrays
// may be uint64 or int64 (torch stores them as int64): the same 64-bit words.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bindings_common.h"
#include "fastiou/mask_math.h"
#include "fastiou/ops.h"

namespace py = pybind11;
using fastiou::index_t;
using fastiou::bind::checked;

namespace {

// The words of a bits array: dtype uint64 or int64, C-contiguous, of the shape given.
uint64_t* bits_ptr(const py::array& a, const char* name, std::vector<py::ssize_t> shape,
                   bool writable) {
  if (fastiou::bind::is_dtype<int64_t>(a))
    return reinterpret_cast<uint64_t*>(checked<int64_t>(a, name, shape, writable));
  if (!fastiou::bind::is_dtype<uint64_t>(a))
    throw py::value_error(std::string(name) + ": expected dtype uint64 or int64, got " +
                          std::string(py::str(a.dtype())));
  return checked<uint64_t>(a, name, shape, writable);
}

// Heights and widths are int32 in the boxes.
void check_plane(index_t h, index_t ww, const char* name) {
  if (h > std::numeric_limits<int32_t>::max() || ww > std::numeric_limits<int32_t>::max() / 64)
    throw py::value_error(std::string(name) + ": masks of at most 2**31 - 1 rows and 2**31 - 64 "
                          "columns");
}

// Boxes the window arithmetic can index with: 0 <= x0, y0 and x1 <= 64 * ww, y1 <= h.
const int32_t* boxes_ptr(const py::array& a, const char* name, index_t n, index_t h, index_t ww) {
  const int32_t* p = checked<int32_t>(a, name, {n, 4}, false);
  for (index_t i = 0; i < n; ++i) {
    const int32_t* b = p + 4 * i;
    if (b[0] < 0 || b[1] < 0 || b[2] > 64 * ww || b[3] > h)
      throw py::value_error(std::string(name) + ": box " + std::to_string(i) + " (" +
                            std::to_string(b[0]) + ", " + std::to_string(b[1]) + ", " +
                            std::to_string(b[2]) + ", " + std::to_string(b[3]) +
                            ") lies outside the masks");
  }
  return p;
}

void mask_pack(const py::array& masks, const py::array& bits, const py::array& boxes,
               const py::array& areas) {
  const uint8_t* pm = checked<uint8_t>(masks, "masks", {-1, -1, -1}, false);
  const index_t n = masks.shape(0), h = masks.shape(1), w = masks.shape(2);
  const index_t ww = fastiou::mask_words(w);
  check_plane(h, ww, "masks");
  uint64_t* pb = bits_ptr(bits, "bits", {n, h, ww}, true);
  int32_t* px = checked<int32_t>(boxes, "boxes", {n, 4}, true);
  int64_t* pa = checked<int64_t>(areas, "areas", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("pack_masks", n, " masks of ", h, " x ", w); };
  fastiou::bind::released_named(what, [&] {
    fastiou::mask_pack_cpu(pm, pb, px, pa, n, h, w);
  });
}

void mask_unpack(const py::array& bits, const py::array& out) {
  uint8_t* po = checked<uint8_t>(out, "out", {-1, -1, -1}, true);
  const index_t n = out.shape(0), h = out.shape(1), w = out.shape(2);
  const uint64_t* pb = bits_ptr(bits, "bits", {n, h, fastiou::mask_words(w)}, false);
  auto what = [&] { return fastiou::bind::oom_text("unpack", n, " masks of ", h, " x ", w); };
  fastiou::bind::released_named(what, [&] {
    fastiou::mask_unpack_cpu(pb, po, n, h, w);
  });
}

void packed_stats(const py::array& bits, const py::array& boxes, const py::array& areas) {
  const uint64_t* pb = bits_ptr(bits, "bits", {-1, -1, -1}, false);
  const index_t n = bits.shape(0), h = bits.shape(1), ww = bits.shape(2);
  check_plane(h, ww, "bits");
  int32_t* px = checked<int32_t>(boxes, "boxes", {n, 4}, true);
  int64_t* pa = checked<int64_t>(areas, "areas", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("packed_stats", n, " masks of ", h, " rows"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::packed_stats_cpu(pb, px, pa, n, h, ww);
  });
}

void mask_iou(const py::array& bits1, const py::array& boxes1, const py::array& areas1,
              const py::array& bits2, const py::array& boxes2, const py::array& areas2,
              const py::array& out) {
  const uint64_t* p1 = bits_ptr(bits1, "bits1", {-1, -1, -1}, false);
  const index_t n = bits1.shape(0), h = bits1.shape(1), ww = bits1.shape(2);
  check_plane(h, ww, "bits1");
  const uint64_t* p2 = bits_ptr(bits2, "bits2", {-1, h, ww}, false);
  const index_t m = bits2.shape(0);
  const int32_t* x1 = boxes_ptr(boxes1, "boxes1", n, h, ww);
  const int32_t* x2 = boxes_ptr(boxes2, "boxes2", m, h, ww);
  const int64_t* a1 = checked<int64_t>(areas1, "areas1", {n}, false);
  const int64_t* a2 = checked<int64_t>(areas2, "areas2", {m}, false);
  float* po = checked<float>(out, "out", {n, m}, true);
  auto what = [&] { return fastiou::bind::oom_text("mask_iou", n, " x ", m, " masks of ", h, " rows"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::mask_iou_cpu(p1, x1, a1, n, p2, x2, a2, m, h, ww, po);
  });
}

index_t mask_nms(const py::array& bits, const py::array& boxes, const py::array& areas,
                 const py::array& scores, double iou_threshold, const py::array& keep) {
  const uint64_t* pb = bits_ptr(bits, "bits", {-1, -1, -1}, false);
  const index_t n = bits.shape(0), h = bits.shape(1), ww = bits.shape(2);
  check_plane(h, ww, "bits");
  const int32_t* px = boxes_ptr(boxes, "boxes", n, h, ww);
  const int64_t* pa = checked<int64_t>(areas, "areas", {n}, false);
  const double* ps = checked<double>(scores, "scores", {n}, false);
  int64_t* pk = checked<int64_t>(keep, "keep", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("mask_nms", n, " masks of ", h, " rows"); };
  return fastiou::bind::released_named(what, [&] {
    return fastiou::mask_nms_cpu(pb, px, pa, ps, n, h, ww, iou_threshold, pk);
  });
}

void mask_matrix_nms(const py::array& bits, const py::array& boxes, const py::array& areas,
                     const py::array& scores, const py::array& labels, int kernel, double sigma,
                     const py::array& out) {
  if (kernel < 0 || kernel > 1)
    throw py::value_error("kernel: expected 0 (gaussian) or 1 (linear), got " +
                          std::to_string(kernel));
  const uint64_t* pb = bits_ptr(bits, "bits", {-1, -1, -1}, false);
  const index_t n = bits.shape(0), h = bits.shape(1), ww = bits.shape(2);
  check_plane(h, ww, "bits");
  const int32_t* px = boxes_ptr(boxes, "boxes", n, h, ww);
  const int64_t* pa = checked<int64_t>(areas, "areas", {n}, false);
  const float* ps = checked<float>(scores, "scores", {n}, false);
  const int64_t* pl = checked<int64_t>(labels, "labels", {n}, false);
  float* po = checked<float>(out, "out", {n}, true);
  auto what = [&] { return fastiou::bind::oom_text("mask_matrix_nms", n, " masks of ", h, " rows"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::mask_matrix_nms_cpu(pb, px, pa, ps, pl, n, h, ww, kernel, sigma, po);
  });
}

void resolve_overlaps(const py::array& bits, const py::array& scores, const py::array& out_bits) {
  const uint64_t* pb = bits_ptr(bits, "bits", {-1, -1, -1}, false);
  const index_t n = bits.shape(0), h = bits.shape(1), ww = bits.shape(2);
  const double* ps = checked<double>(scores, "scores", {n}, false);
  uint64_t* po = bits_ptr(out_bits, "out_bits", {n, h, ww}, true);
  auto what = [&] { return fastiou::bind::oom_text("resolve_overlaps", n, " masks of ", h, " rows"); };
  fastiou::bind::released_named(what, [&] {
    fastiou::resolve_overlaps_cpu(pb, ps, n, h, ww, po);
  });
}

}  // namespace

void register_masks(py::module_& m) {
  m.def("pack_masks", &mask_pack, py::arg("masks"), py::arg("bits"), py::arg("boxes"),
        py::arg("areas"), "uint8 masks (N,H,W), non-zero = foreground -> bits, tight boxes, areas.");
  m.def("unpack_masks", &mask_unpack, py::arg("bits"), py::arg("out"),
        "bits (N,H,WW) -> out uint8 (N,H,W) of 0 / 1.");
  m.def("packed_stats", &packed_stats, py::arg("bits"), py::arg("boxes"), py::arg("areas"),
        "Tight boxes (exclusive max) and areas of packed masks.");
  m.def("mask_iou", &mask_iou, py::arg("bits1"), py::arg("boxes1"), py::arg("areas1"),
        py::arg("bits2"), py::arg("boxes2"), py::arg("areas2"), py::arg("out"),
        "Pairwise IoU of packed masks, float32 (N, M).");
  m.def("mask_nms", &mask_nms, py::arg("bits"), py::arg("boxes"), py::arg("areas"),
        py::arg("scores"), py::arg("iou_threshold"), py::arg("keep"),
        "Greedy NMS on mask IoU; keep[:K] in ranking order; returns K.");
  m.def("mask_matrix_nms", &mask_matrix_nms, py::arg("bits"), py::arg("boxes"), py::arg("areas"),
        py::arg("scores"), py::arg("labels"), py::arg("kernel"), py::arg("sigma"), py::arg("out"),
        "Matrix NMS on mask IoU: decayed float32 scores in input order.");
  m.def("resolve_overlaps", &resolve_overlaps, py::arg("bits"), py::arg("scores"),
        py::arg("out_bits"), "Each set pixel kept only in the best-ranked mask that has it.");
}
