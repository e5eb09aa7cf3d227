"""Where the CUDA kernel sources are and which template instances each one holds.

Read by the CuPy backend (which compiles them with NVRTC at run time) and by the tests (which
compile them with NVRTC even on machines without a GPU); imports nothing from CUDA.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent

#: Flags that change results: the same as nvcc's for fastiou._C_cuda (setup.py).
NVRTC_OPTIONS = ("-std=c++17", "--fmad=false")

#: Every kernel instance each source file holds, compiled together on first use.
INSTANCES = {
    "box_iou.cuh": [f"fastiou::box_{k}_kernel<{t}, {m}>" for k in ("pairwise", "aligned")
                    for t in ("float", "double") for m in range(5)],
    "box_elementwise.cuh": [f"fastiou::box_{k}_kernel<{t}>" for k in ("area", "convert")
                            for t in ("float", "double")],
    "masks_to_boxes.cuh": ["fastiou::masks_to_boxes_kernel"],
    "nms.cuh": ["fastiou::nms_class_keys_kernel", "fastiou::nms_class_blocks_kernel",
                "fastiou::nms_reduce_kernel", "fastiou::nms_compact_kernel"]
               + [f"fastiou::{k}<{t}>" for k in ("rank_keys_kernel", "nms_gather_kernel")
                  for t in ("float", "double")]
               + [f"fastiou::nms_mask_kernel<{t}, {w}>" for t in ("float", "double") for w in (1, 8)],
    "soft_nms.cuh": [f"fastiou::soft_nms_kernel<{t}>" for t in ("float", "double")],
    "matrix_nms.cuh": [f"fastiou::matrix_nms_{k}_kernel<{t}>" for k in ("comp", "decay")
                       for t in ("float", "double")],
    "mask_pack.cuh": ["fastiou::pack_masks_kernel", "fastiou::unpack_masks_kernel", "fastiou::packed_stats_kernel"],
    "mask_iou.cuh": ["fastiou::mask_iou_kernel", "fastiou::mask_iou_finalize_kernel"],
    "mask_nms.cuh": ["fastiou::mask_nms_bitmask_kernel", "fastiou::mask_rank_labels_kernel",
                     "fastiou::mask_matrix_comp_kernel", "fastiou::mask_matrix_decay_kernel"],
    "resolve_overlaps.cuh": ["fastiou::resolve_overlaps_kernel"],
    "anchors.cuh": [f"fastiou::anchor_grid_kernel<{t}>" for t in ("float", "double")],
    "box_iou_max.cuh": [f"fastiou::{k}<{t}>" for k in ("iou_max_rows_kernel", "iou_lowq_kernel")
                        for t in ("float", "double")],
    "multiclass_nms.cuh": ["fastiou::mc_sort_kernel"]
                          + [f"fastiou::mc_{k}_kernel<{t}>" for k in ("candidates", "nms", "select")
                             for t in ("float", "double")],
}


def source_dirs() -> tuple[Path, Path]:
    """(include dir, kernels dir): fastiou/_csrc in an installed package, csrc/ in a checkout."""
    for base in (_PKG / "_csrc", _PKG.parent / "csrc"):
        if (base / "kernels").is_dir() and (base / "include" / "fastiou").is_dir():
            return base / "include", base / "kernels"
    raise RuntimeError("fastiou kernel sources not found (neither fastiou/_csrc nor csrc/)")


def options() -> tuple[str, ...]:
    inc, ker = source_dirs()
    return NVRTC_OPTIONS + (f"-I{inc}", f"-I{ker}")
