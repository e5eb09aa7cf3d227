// fastiou._C's view of the GPU launch geometry (csrc/include/fastiou/launch.h), for the CuPy
// backend, which launches the kernels of csrc/kernels itself: it takes every block size, split
// rule and workspace offset from here instead of typing them again. Built on every machine.
#include <pybind11/pybind11.h>

#include "fastiou/launch.h"

namespace py = pybind11;
using fastiou::index_t;

namespace {

py::dict launch_geometry() {
  py::dict d;
#define FASTIOU_PUT(name) d[#name] = py::int_(fastiou::name)
  FASTIOU_PUT(kPairwiseRows);
  FASTIOU_PUT(kElementwiseThreads);
  FASTIOU_PUT(kMasksThreads);
  FASTIOU_PUT(kNmsTile);
  FASTIOU_PUT(kNmsReduceThreads);
  FASTIOU_PUT(kNmsCompactThreads);
  FASTIOU_PUT(kNmsCompactItems);
  FASTIOU_PUT(kNmsSweepWords);
  FASTIOU_PUT(kNmsElementwiseThreads);
  FASTIOU_PUT(kRankKeysThreads);
  FASTIOU_PUT(kReduceSharedLimit);
  FASTIOU_PUT(kSoftNmsThreads);
  FASTIOU_PUT(kMatrixNmsThreads);
  FASTIOU_PUT(kMcThreads);
  FASTIOU_PUT(kMcSelectThreads);
  FASTIOU_PUT(kMcElemBytes);
  FASTIOU_PUT(kMcWorkspaceBudget);
  FASTIOU_PUT(kMaskPackThreads);
  FASTIOU_PUT(kMaskStatsThreads);
  FASTIOU_PUT(kMaskPackBatch);
  FASTIOU_PUT(kMaskIouTile);
  FASTIOU_PUT(kMaskIouItems);
  FASTIOU_PUT(kMaskIouThreads);
  FASTIOU_PUT(kMaskIouFinalizeThreads);
  FASTIOU_PUT(kMaskMatrixThreads);
  FASTIOU_PUT(kMaskLabelThreads);
  FASTIOU_PUT(kResolveThreads);
  FASTIOU_PUT(kAnchorGridThreads);
  FASTIOU_PUT(kIouMaxThreads);
#undef FASTIOU_PUT
  return d;
}

py::dict mc_layout(index_t g, index_t n, index_t c, index_t k) {
  const fastiou::McLayout l = fastiou::mc_layout(g, n, c, k);
  py::dict d;
  d["cand"] = l.cand;
  d["tmp"] = l.tmp;
  d["m"] = l.m;
  d["kc"] = l.kc;
  d["removed"] = l.removed;
  d["lists_a"] = l.lists_a;
  d["lists_b"] = l.lists_b;
  d["lens_a"] = l.lens_a;
  d["lens_b"] = l.lens_b;
  d["total"] = l.total;
  return d;
}

}  // namespace

void register_launch(py::module_& m) {
  m.def("launch_geometry", &launch_geometry, "The GPU kernels' launch constants (fastiou/launch.h).");
  m.def("mc_layout", &mc_layout, py::arg("g"), py::arg("n"), py::arg("c"), py::arg("k"),
        "Byte offsets of multiclass_nms's workspace for a group of g images.");
  m.def("mask_iou_splits", &fastiou::mask_iou_splits, py::arg("n"), py::arg("m"), py::arg("h"),
        py::arg("ww"), py::arg("sms"), "Split-K factor of mask_iou_kernel.");
  m.def("pairwise_threads", &fastiou::pairwise_threads, py::arg("m"),
        "Threads of a box_pairwise block for m columns.");
}
