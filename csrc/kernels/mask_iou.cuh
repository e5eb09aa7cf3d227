// CUDA kernels of mask_iou (one source for nvcc and NVRTC, see box_iou.cuh): the pairwise IoU of
// bit-packed masks (layout and rule: fastiou/mask_math.h) as a tiled binary GEMM,
// inter[i][j] = sum over the words of the pair's window of popcount(bits1[i] & bits2[j]).
//
// A block takes a tile of kMaskIouTile x kMaskIouTile pairs (i, j). The words that can matter to
// some pair of the tile lie in the rectangle `win` = (union of the i boxes) n (union of the j
// boxes), in rows and 64-bit word columns; the tile walks that rectangle's (row, word) items in
// chunks of kMaskIouItems, staging each chunk of every mask of the tile in shared memory, where
// a mask's words outside its own box are staged as 0 (so a pair only counts the words inside
// both boxes: its mask_window). Tiles whose rectangle is empty read nothing. Each thread holds
// 2 x 2 pairs in registers (16 x 16 threads); a warp skips a chunk where its masks' staged
// words are all 0 (flags set while staging).
// Split-K: when there are fewer tiles than the GPU has room for, blockIdx.y splits a tile's
// chunks into gridDim.y slices whose partial counts meet in `counts` (64-bit atomicAdd), and
// mask_iou_finalize_kernel turns the counts into IoUs; with one slice the tile writes the IoUs
// itself (counts == nullptr). Integer counts: the result does not depend on the split.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/mask_math.h"

namespace fastiou {


// The IoU of a pair from its intersection count: 0 when its window is empty (mask_math.h).
FASTIOU_HD float mask_pair_iou(const int* a, const int* b, long long inter, long long area1, long long area2) {
  return mask_window(a, b).empty() ? 0.0f : mask_iou_value(inter, area1, area2);
}

// One past the last word holding a pixel x < x1 (x1 > 0), without overflowing near 2^31.
FASTIOU_HD int mask_word_end(int x1) { return (x1 >> 6) + ((x1 & 63) != 0 ? 1 : 0); }

// out[i][j] (n x m) from bits1 (n, h, ww), bits2 (m, h, ww) and their boxes and areas.
// h * ww < 2^31 (checked by the caller); boxes are read as given and clamped to the mask, so a
// wrong box gives a wrong count but never an out-of-bounds read.
// Long (114 lines) on purpose: the tile staging, the double-buffered chunk loop and the
// write-out share registers and shared-memory buffers; split, they would go through memory.
__global__ void __launch_bounds__(kMaskIouThreads)
mask_iou_kernel(const unsigned long long* __restrict__ bits1, const int* __restrict__ boxes1,
                const long long* __restrict__ areas1, index_t n, const unsigned long long* __restrict__ bits2,
                const int* __restrict__ boxes2, const long long* __restrict__ areas2, index_t m, int h, int ww,
                unsigned long long* __restrict__ counts, float* __restrict__ out) {
  // Rows padded to kMaskIouItems + 1 words: the 16 rows a warp reads at one item fall in
  // distinct banks.
  __shared__ unsigned long long s_a[kMaskIouTile][kMaskIouItems + 1];
  __shared__ unsigned long long s_b[kMaskIouTile][kMaskIouItems + 1];
  __shared__ int s_box[2 * kMaskIouTile][4];  // each mask's own rows [y0, y1) and words [w0, w1)
  __shared__ int s_bound[8];                  // side i then side j: min y0, -max y1, min x0, -max x1
  __shared__ int s_nz[2][2 * kMaskIouTile];   // by chunk parity: a mask's staged chunk is not all 0
  const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
  const int item = t & (kMaskIouItems - 1), slot0 = t / kMaskIouItems;  // staging: item, first mask slot
  const int slot_step = kMaskIouThreads / kMaskIouItems;
  const index_t hw = static_cast<index_t>(h) * ww;
  const index_t tiles_j = (m + kMaskIouTile - 1) / kMaskIouTile;
  const index_t tiles = ((n + kMaskIouTile - 1) / kMaskIouTile) * tiles_j;
  for (index_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const index_t i0 = (tile / tiles_j) * kMaskIouTile, j0 = (tile % tiles_j) * kMaskIouTile;
    if (t < 8) s_bound[t] = 0x7fffffff;
    __syncthreads();
    if (t < 2 * kMaskIouTile) {
      const bool second = t >= kMaskIouTile;
      const index_t idx = (second ? j0 : i0) + (t & (kMaskIouTile - 1));
      int y0 = 0, y1 = 0, w0 = 0, w1 = 0;
      if (idx < (second ? m : n)) {
        const int* b = (second ? boxes2 : boxes1) + idx * 4;
        const int bx0 = b[0] > 0 ? b[0] : 0, bx1 = b[2];
        if (bx1 > bx0 && b[3] > b[1]) {  // a non-empty box (an empty mask's is (0, 0, 0, 0))
          y0 = b[1]; y1 = b[3]; w0 = bx0 >> 6; w1 = mask_word_end(bx1);
          int* bound = s_bound + (second ? 4 : 0);
          atomicMin(&bound[0], y0);
          atomicMin(&bound[1], -y1);
          atomicMin(&bound[2], bx0);
          atomicMin(&bound[3], -bx1);
        }
      }
      s_box[t][0] = y0; s_box[t][1] = y1; s_box[t][2] = w0; s_box[t][3] = w1;
    }
    if (t < 4 * kMaskIouTile) s_nz[t / (2 * kMaskIouTile)][t % (2 * kMaskIouTile)] = 0;
    __syncthreads();
    // The tile's rectangle, clamped to the mask (block-uniform: every thread reads the same).
    int ry0 = s_bound[0] > s_bound[4] ? s_bound[0] : s_bound[4];
    int ry1 = -(s_bound[1] > s_bound[5] ? s_bound[1] : s_bound[5]);
    const int rx0 = s_bound[2] > s_bound[6] ? s_bound[2] : s_bound[6];
    const int rx1 = -(s_bound[3] > s_bound[7] ? s_bound[3] : s_bound[7]);
    ry0 = ry0 > 0 ? ry0 : 0;
    ry1 = ry1 < h ? ry1 : h;
    int rw0 = 0, rw1 = 0;
    if (rx1 > rx0) {  // rx0 >= 0 here (each box's x0 was clamped to 0)
      rw0 = rx0 >> 6;
      rw1 = mask_word_end(rx1);
      rw1 = rw1 < ww ? rw1 : ww;
    }
    const int wd = rw1 - rw0;
    const index_t total = (ry1 > ry0 && wd > 0) ? static_cast<index_t>(ry1 - ry0) * wd : 0;
    const index_t chunks = (total + kMaskIouItems - 1) / kMaskIouItems;
    const index_t c_begin = chunks * blockIdx.y / gridDim.y, c_end = chunks * (blockIdx.y + 1) / gridDim.y;

    unsigned long long acc00 = 0, acc01 = 0, acc10 = 0, acc11 = 0;
    for (index_t c = c_begin; c < c_end; ++c) {  // block-uniform bounds
      const int buf = static_cast<int>(c & 1);
      const index_t g = c * kMaskIouItems + item;
      const bool live = g < total;
      const int y = live ? ry0 + static_cast<int>(g / wd) : 0;
      const int x = live ? rw0 + static_cast<int>(g % wd) : 0;
      const index_t off = static_cast<index_t>(y) * ww + x;  // inside the mask when live
#pragma unroll 4
      for (int s = slot0; s < 2 * kMaskIouTile; s += slot_step) {
        const int* sb = s_box[s];
        unsigned long long v = 0;
        if (live && y >= sb[0] && y < sb[1] && x >= sb[2] && x < sb[3]) {
          v = s < kMaskIouTile ? bits1[(i0 + s) * hw + off] : bits2[(j0 + s - kMaskIouTile) * hw + off];
        }
        if (s < kMaskIouTile) s_a[s][item] = v;
        else s_b[s - kMaskIouTile][item] = v;
        if (v != 0) s_nz[buf][s] = 1;
      }
      __syncthreads();
      // The other parity's flags were last read in the previous chunk (before its closing
      // barrier) and are next written in the following one (after this chunk's closing barrier).
      if (t < 2 * kMaskIouTile) s_nz[buf ^ 1][t] = 0;
      // A warp skips the chunk when none of its lanes' pairs can count a bit (all of its four
      // i rows, or all of a lane's j rows, staged as zeros): warp-uniform, no barrier inside.
      const int* nz = s_nz[buf];
      const bool need = (nz[ty] | nz[ty + 16]) != 0 && (nz[kMaskIouTile + tx] | nz[kMaskIouTile + tx + 16]) != 0;
      if (__any_sync(0xffffffffu, need)) {
        unsigned c00 = 0, c01 = 0, c10 = 0, c11 = 0;  // at most 64 * 64 each
#pragma unroll 8
        for (int k = 0; k < kMaskIouItems; ++k) {
          const unsigned long long a0 = s_a[ty][k], a1 = s_a[ty + 16][k];
          const unsigned long long b0 = s_b[tx][k], b1 = s_b[tx + 16][k];
          c00 += popcount64(a0 & b0);
          c01 += popcount64(a0 & b1);
          c10 += popcount64(a1 & b0);
          c11 += popcount64(a1 & b1);
        }
        acc00 += c00; acc01 += c01; acc10 += c10; acc11 += c11;
      }
      __syncthreads();  // the chunk is restaged only after every thread has read it
    }
    const unsigned long long acc[4] = {acc00, acc01, acc10, acc11};
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const index_t i = i0 + ty + 16 * (p >> 1), j = j0 + tx + 16 * (p & 1);
      if (i < n && j < m) {
        if (counts != nullptr) {
          if (acc[p] != 0) atomicAdd(&counts[i * m + j], acc[p]);
        } else {
          out[i * m + j] = mask_pair_iou(boxes1 + i * 4, boxes2 + j * 4, static_cast<long long>(acc[p]), areas1[i],
                                         areas2[j]);
        }
      }
    }
    __syncthreads();  // s_bound and s_box are rewritten for the next tile
  }
}

// out[i][j] from the split-K counts of mask_iou_kernel.
// Parallelisation: one thread per pair, grid-stride.
__global__ void mask_iou_finalize_kernel(const unsigned long long* __restrict__ counts, const int* __restrict__ boxes1,
                                         const long long* __restrict__ areas1, index_t n,
                                         const int* __restrict__ boxes2, const long long* __restrict__ areas2,
                                         index_t m, float* __restrict__ out) {
  const index_t total = n * m;
  for (index_t p = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; p < total;
       p += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t i = p / m, j = p - i * m;
    out[p] = mask_pair_iou(boxes1 + i * 4, boxes2 + j * 4, static_cast<long long>(counts[p]), areas1[i], areas2[j]);
  }
}

}  // namespace fastiou
