// What the CUDA suppression launchers share (csrc/cuda/nms.cu, matrix_nms.cu): the size check
// and the ranking stage (run_rank, defined in nms.cu with nms.cuh's kernels: a .cu file includes
// the non-template kernels of one .cuh only).
#pragma once

#include "cuda_common.h"

namespace fastiou {
namespace nms_launch {

// Throws std::invalid_argument when n boxes exceed what the kernels index (nms.cu).
void check_nms_size(index_t n, const char* what);

// Ranked (and, with classes, class-major) boxes: what the mask and reduce kernels read.
template <typename T>
struct Ranked {
  index_t* order = nullptr;       // order[p]: the box ranked p
  index_t* rank = nullptr;        // classes: rank[q] of class-major position q, else null
  long long* cls = nullptr;       // classes: class of position q (sorted), else null
  int* col_end = nullptr;         // classes: see nms_class_blocks_kernel, else null
  T* sboxes = nullptr;            // boxes by position q
  index_t* src = nullptr;         // input index of position q (when asked for)
};

// The workspace of the ranking stage, laid out in `lay`.
struct RankLayout {
  size_t keys_in, keys_out, idx, order, ckeys, pos, cls, rank, col_end, sboxes, src, cub;
  size_t cub_bytes = 0;
};

// Lays out the ranking stage's workspace (its cub temporaries sized for n items).
template <typename T>
RankLayout plan_rank(Layout& lay, index_t n, bool classes, bool src, cudaStream_t stream);

// Sorts by score (stable; nms_math.h's keys of `scores`, S = double for nms, T for matrix_nms),
// then, with classes, stably by class; gathers the boxes (and their input indices if want_src).
template <typename T, typename S>
Ranked<T> run_rank(const StreamBlock& blk, const RankLayout& r, const T* boxes, const S* scores,
                   const long long* classes, index_t n, bool want_src, cudaStream_t stream);

}  // namespace nms_launch
}  // namespace fastiou
