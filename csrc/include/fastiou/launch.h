// Launch geometry of the GPU kernels: block sizes, tiles, split rules, workspace layouts.
//
// One definition, read by the kernels (csrc/kernels/*.cuh), by their CUDA launchers
// (csrc/cuda/*.cu) and, through fastiou._C (launch_geometry, mc_layout, mask_iou_splits,
// pairwise_threads; always built, even without CUDA), by the CuPy backend, which launches the
// same kernels itself: a block size or a workspace offset typed twice is an out-of-bounds
// access waiting to happen. Plain C++: g++, nvcc and NVRTC compile it (the host-only rules are
// hidden from NVRTC).
#pragma once

#include "fastiou/common.h"

namespace fastiou {

// box_iou.cuh
constexpr int kPairwiseRows = 16;  // rows of boxes1 per tile
constexpr int kElementwiseThreads = 256;  // box_aligned, box_area, box_convert
// masks_to_boxes.cuh
constexpr int kMasksThreads = 256;
// nms.cuh, rank_keys.cuh
constexpr int kNmsTile = 64;               // boxes per mask word, rows and columns of a tile
constexpr int kNmsReduceThreads = 1024;    // the reduce block: warp 0 resolves, the rest propagate
constexpr int kNmsCompactThreads = 1024;
constexpr int kNmsCompactItems = 4;        // flags per thread per round of the compaction
constexpr int kNmsSweepWords = 8;          // thresholds per mask-kernel instance of nms_sweep
constexpr int kNmsElementwiseThreads = 256;
constexpr int kRankKeysThreads = 256;
constexpr unsigned long long kReduceSharedLimit = 40 * 1024;  // nms_reduce's removed[] in shared memory up to this
// soft_nms.cuh, matrix_nms.cuh
constexpr int kSoftNmsThreads = 1024;
constexpr int kMatrixNmsThreads = 256;
// multiclass_nms.cuh
constexpr int kMcThreads = 256;         // candidates / sort / nms blocks
constexpr int kMcSelectThreads = 1024;  // one block per image
constexpr int kMcElemBytes = 16;        // sizeof(McElem): a (key, tie) pair of 64-bit words
constexpr long long kMcWorkspaceBudget = 256LL << 20;  // images per group: as many as fit, at least one
// mask_pack.cuh, mask_iou.cuh, mask_nms.cuh, resolve_overlaps.cuh
constexpr int kMaskPackThreads = 256;   // pack / unpack: 8 warps, a warp per row
constexpr int kMaskStatsThreads = 256;  // packed_stats: a block per mask
constexpr int kMaskPackBatch = 8;
constexpr int kMaskIouTile = 32;        // masks per side of a tile
constexpr int kMaskIouItems = 64;       // (row, word) items per staged chunk
constexpr int kMaskIouThreads = 256;    // 16 x 16 threads, 2 x 2 pairs each
constexpr int kMaskIouFinalizeThreads = 256;
constexpr int kMaskMatrixThreads = 256;
constexpr int kMaskLabelThreads = 256;
constexpr int kResolveThreads = 256;
// anchors.cuh, box_iou_max.cuh
constexpr int kAnchorGridThreads = 256;  // a thread per output box
constexpr int kIouMaxThreads = 256;      // threads per block = rows per block = columns per tile

#if !defined(__CUDACC_RTC__)
// Threads of a box_pairwise block: narrow outputs get narrow blocks so few threads idle.
inline int pairwise_threads(index_t m) { return m >= 256 ? 256 : (m >= 128 ? 128 : (m >= 64 ? 64 : 32)); }

// Split-K factor of mask_iou_kernel (the result does not depend on it): enough blocks for one
// wave (the kernel fits 3 blocks per SM on sm_80 / sm_90: about 80 registers a thread, 35 KB of
// shared memory a block), never a slice without work.
inline index_t mask_iou_splits(index_t n, index_t m, index_t h, index_t ww, int sms) {
  const index_t tiles = ((n + kMaskIouTile - 1) / kMaskIouTile) * ((m + kMaskIouTile - 1) / kMaskIouTile);
  const index_t target = 3 * static_cast<index_t>(sms > 0 ? sms : 1);
  if (tiles <= 0 || 2 * tiles > target) return 1;
  index_t splits = target / tiles;
  const index_t max_chunks = (h * ww + kMaskIouItems - 1) / kMaskIouItems;
  if (splits > max_chunks) splits = max_chunks;
  if (splits > 65535) splits = 65535;
  return splits < 1 ? 1 : splits;
}

// Byte offsets in the multiclass_nms workspace of a group of g images (256-byte aligned).
struct McLayout {
  unsigned long long cand, tmp, m, kc, removed, lists_a, lists_b, lens_a, lens_b, total;
};

inline McLayout mc_layout(index_t g, index_t n, index_t c, index_t k) {
  McLayout l{};
  unsigned long long off = 0;
  auto add = [&off](unsigned long long bytes) {
    const unsigned long long at = off;
    off += (bytes + 255) & ~255ULL;
    return at;
  };
  const unsigned long long segs = static_cast<unsigned long long>(g) * c;
  const unsigned long long words = static_cast<unsigned long long>((n + 63) / 64);
  l.cand = add(segs * n * kMcElemBytes);
  l.tmp = add(segs * n * kMcElemBytes);
  l.m = add(segs * 8);
  l.kc = add(segs * 8);
  l.removed = add(segs * words * 8);
  l.lists_a = add(segs * k * kMcElemBytes);
  l.lists_b = add(segs * k * kMcElemBytes);
  l.lens_a = add(segs * 8);
  l.lens_b = add(segs * 8);
  l.total = off;
  return l;
}
#endif

}  // namespace fastiou
