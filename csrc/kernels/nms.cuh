// CUDA kernels of nms, batched_nms and nms_sweep (one source for nvcc and NVRTC, see box_iou.cuh).
//
// The rules (ranking, the suppression test) are csrc/include/fastiou/nms_math.h, shared with
// the CPU loops; the launchers (csrc/cuda/nms.cu, fastiou/_backends/cupy_gpu.py) run:
//   1. rank_keys_kernel       keys[i] = score_key(scores[i]) (rank_keys.cuh); a stable sort of (key, i) gives
//                             order[p], the box ranked p.
//   2. (classes) nms_class_keys_kernel, then a stable sort of (class of order[p], p) gives
//                             rank[q]: position q of the class-major sequence (class, then
//                             rank) holds the box ranked rank[q]; its sorted keys are cls[q].
//                             nms_class_blocks_kernel: col_end[b], the last 64-box block that
//                             holds a box of the class of block b's last box.
//   3. nms_gather_kernel      sboxes[q] = boxes[order[rank ? rank[q] : q]]
//   4. nms_mask_kernel        the 64x64-tile suppression bitmask, upper triangle only (and with
//                             classes, only the tiles whose class ranges meet).
//   5. nms_reduce_kernel      greedy NMS over the mask: one block, N/64 dependent steps.
//   6. (classes or sweep) nms_compact_kernel: kept flags by rank -> kept indices.
// Memory: the mask is N * ceil(N/64) 64-bit words per threshold (N^2/8 bytes), as in
// torchvision's CUDA nms.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/nms_math.h"
#include "nms_tile.cuh"
#include "rank_keys.cuh"

namespace fastiou {


// ckeys[p] = classes[order[p]], pos[p] = p: the input of the second (class) sort.
// Parallelisation: one thread per rank, grid-stride.
__global__ void nms_class_keys_kernel(const long long* __restrict__ classes, const index_t* __restrict__ order,
                                      long long* __restrict__ ckeys, index_t* __restrict__ pos, index_t n) {
  for (index_t p = blockIdx.x * (index_t)blockDim.x + threadIdx.x; p < n;
       p += (index_t)gridDim.x * blockDim.x) {
    ckeys[p] = classes[order[p]];
    pos[p] = p;
  }
}

// sboxes[q] = boxes[order[rank[q]]] (rank == nullptr: the identity), and src[q] = that box's
// input index when src is given.
// Parallelisation: one thread per box, grid-stride.
template <typename T>
__global__ void nms_gather_kernel(const T* __restrict__ boxes, const index_t* __restrict__ order,
                                  const index_t* __restrict__ rank, T* __restrict__ sboxes,
                                  index_t* __restrict__ src, index_t n) {
  for (index_t q = blockIdx.x * (index_t)blockDim.x + threadIdx.x; q < n;
       q += (index_t)gridDim.x * blockDim.x) {
    const index_t i = order[rank != nullptr ? rank[q] : q];
    const T* b = boxes + i * 4;
    T* o = sboxes + q * 4;
    o[0] = b[0]; o[1] = b[1]; o[2] = b[2]; o[3] = b[3];
    if (src != nullptr) src[q] = i;
  }
}

// col_end[b] = the block of the last position whose class equals that of block b's last box
// (cls sorted ascending): the tiles (b, c) with c > col_end[b] pair no two boxes of one class.
// Parallelisation: one thread per block of 64 boxes, a binary search each.
__global__ void nms_class_blocks_kernel(const long long* __restrict__ cls, index_t n,
                                        int* __restrict__ col_end, index_t blocks) {
  for (index_t b = blockIdx.x * (index_t)blockDim.x + threadIdx.x; b < blocks;
       b += (index_t)gridDim.x * blockDim.x) {
    const index_t last = (b + 1) * kNmsTile - 1 < n ? (b + 1) * kNmsTile - 1 : n - 1;
    const long long c = cls[last];
    index_t lo = last + 1, hi = n;  // first position after `last` with a larger class
    while (lo < hi) {
      const index_t mid = lo + (hi - lo) / 2;
      if (cls[mid] <= c) lo = mid + 1;
      else hi = mid;
    }
    col_end[b] = static_cast<int>((lo - 1) / kNmsTile);
  }
}

// word[k] |= bit j for the boxes j < jend of the tile (in shared memory) that are of class ci
// and pass threshold k against box a: pair (box j, a) when Diag (box j ranks above a), else
// (a, box j).
template <typename T, int Words, bool Diag>
__device__ __forceinline__ void nms_tile_words(const BoxF<T>& a, int jend, long long ci, const T* s_x1,
                                               const T* s_y1, const T* s_x2, const T* s_y2, const T* s_area,
                                               const long long* s_cls, const T* thr, unsigned long long* word) {
#pragma unroll 4
  for (int j = 0; j < jend; ++j) {
    BoxF<T> b;
    b.x1 = s_x1[j]; b.y1 = s_y1[j]; b.x2 = s_x2[j]; b.y2 = s_y2[j]; b.area = s_area[j];
    b.cx = b.cy = b.ratio = T(0);
    const T iou = Diag ? pair_value<T, MODE_IOU>(b, a, T(0)) : pair_value<T, MODE_IOU>(a, b, T(0));
    const bool same = s_cls[j] == ci;
#pragma unroll
    for (int k = 0; k < Words; ++k)
      if (same && iou > thr[k]) word[k] |= 1ull << j;
  }
}

// The suppression bitmask. Word (row i, column block c), for c > i's block: bit j set when box
// i suppresses box c*64+j (both of one class when `cls` is given). On the diagonal tile the word
// holds the other direction: bit j < (i mod 64) set when box j of the tile suppresses box i
// (what the reduce's tile resolution needs). Tiles below the diagonal are never written; with
// classes (col_end given) neither are the tiles past col_end[row], except the one right of the
// diagonal, which the reduce always reads (its words are 0 there).
// `Words` thresholds per launch (nms: 1, `threshold`; nms_sweep: up to kNmsSweepWords, the first
// `nthr` of `thresholds`, a device array); mask t of the launch starts at mask + t * n * cb.
// Parallelisation: one 64-thread block per tile (blockIdx.x = column block, blockIdx.y = row
// block); each thread owns one row box and tests it against the tile's 64 column boxes, read
// from shared memory.
template <typename T, int Words>
__global__ void nms_mask_kernel(const T* __restrict__ sboxes, const long long* __restrict__ cls,
                                const int* __restrict__ col_end, index_t n, index_t cb,
                                double threshold, const double* __restrict__ thresholds, int nthr,
                                unsigned long long* __restrict__ mask) {
  const index_t row = blockIdx.y, col = blockIdx.x;
  if (col < row) return;
  if (col_end != nullptr && col > col_end[row] && col != row + 1) return;
  __shared__ T s_x1[kNmsTile], s_y1[kNmsTile], s_x2[kNmsTile], s_y2[kNmsTile], s_area[kNmsTile];
  __shared__ long long s_cls[kNmsTile];
  const int t = threadIdx.x;
  const index_t c0 = col * kNmsTile;
  const int ncol = n - c0 < kNmsTile ? static_cast<int>(n - c0) : kNmsTile;
  if (t < ncol) {
    const BoxF<T> b = make_boxf(sboxes + (c0 + t) * 4, FMT_XYXY, MODE_IOU);
    s_x1[t] = b.x1; s_y1[t] = b.y1; s_x2[t] = b.x2; s_y2[t] = b.y2; s_area[t] = b.area;
    s_cls[t] = cls != nullptr ? cls[c0 + t] : 0;
  }
  __syncthreads();
  const index_t i = row * kNmsTile + t;
  if (i >= n) return;
  const BoxF<T> a = make_boxf(sboxes + i * 4, FMT_XYXY, MODE_IOU);
  const long long ci = cls != nullptr ? cls[i] : 0;
  T thr[Words];
  unsigned long long word[Words];
#pragma unroll
  for (int k = 0; k < Words; ++k) {
    thr[k] = nms_threshold<T>(thresholds == nullptr ? threshold : (k < nthr ? thresholds[k] : 0.0));
    word[k] = 0;
  }
  // The higher-ranked box is the first argument, as in the CPU loops: on the diagonal tile the
  // boxes j < t of the tile (ranked above i), elsewhere i against every box of the tile.
  if (row == col)
    nms_tile_words<T, Words, true>(a, t, ci, s_x1, s_y1, s_x2, s_y2, s_area, s_cls, thr, word);
  else
    nms_tile_words<T, Words, false>(a, ncol, ci, s_x1, s_y1, s_x2, s_y2, s_area, s_cls, thr, word);
#pragma unroll
  for (int k = 0; k < Words; ++k)
    if (k < nthr) mask[(static_cast<index_t>(k) * n + i) * cb + col] = word[k];
}

// What the resolving warp reads for tile step b, loaded two steps ahead.
struct NmsStepWords {
  unsigned long long in0, in1;    // diagonal words of rows b*64 + lane, + 32
  unsigned long long nxt0, nxt1;  // words of rows (b-1)*64 + lane, + 32 in column block b
  index_t out0, out1;             // where rows b*64 + lane, + 32 are reported
};

__device__ __forceinline__ NmsStepWords nms_load_step(const unsigned long long* __restrict__ mask, index_t n,
                                                      index_t cb, index_t b, int lane,
                                                      const index_t* __restrict__ out_map) {
  NmsStepWords w;
  w.in0 = w.in1 = w.nxt0 = w.nxt1 = 0;
  w.out0 = w.out1 = 0;
  if (b >= cb) return w;
  const index_t r0 = b * kNmsTile + lane, r1 = r0 + 32;
  if (r0 < n) { w.in0 = mask[r0 * cb + b]; w.out0 = out_map != nullptr ? out_map[r0] : r0; }
  if (r1 < n) { w.in1 = mask[r1 * cb + b]; w.out1 = out_map != nullptr ? out_map[r1] : r1; }
  if (b > 0) {  // the tile (b-1, b) is always written (nms_mask_kernel)
    const index_t p0 = r0 - kNmsTile, p1 = r1 - kNmsTile;
    if (p0 < n) w.nxt0 = mask[p0 * cb + b];
    if (p1 < n) w.nxt1 = mask[p1 * cb + b];
  }
  return w;
}

// OR of the words in column block c of the kept rows list[part], list[part + g], ... (< nk)
// of `rows` (a row block's 64 mask rows). The loads go out 8 at a time with no condition (all in
// flight together; an index past the list reads its last entry again and is not used): every
// word read was written, as the caller only asks for columns whose tiles the mask kernel wrote.
__device__ __forceinline__ unsigned long long nms_or_rows(const unsigned long long* __restrict__ rows, index_t cb,
                                                          index_t c, const unsigned char* list, int nk, int part,
                                                          int g) {
  unsigned long long acc = 0;
  for (int i0 = part; i0 < nk; i0 += 8 * g) {
    unsigned long long v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int idx = i0 + u * g;
      v[u] = rows[static_cast<index_t>(list[idx < nk ? idx : nk - 1]) * cb + c];
    }
#pragma unroll
    for (int u = 0; u < 8; ++u)
      if (i0 + u * g < nk) acc |= v[u];
  }
  return acc;
}

// What the block shares between steps (double-buffered by step parity).
struct NmsReduceShared {
  unsigned long long kept[2];          // kept rows of the step's block
  int nk[2];                           // how many
  unsigned char rows[2][kNmsTile];     // which, in order
};

// One step b of nms_reduce_kernel (see there). kprev / kept_total live in warp 0's registers.
__device__ __forceinline__ void nms_reduce_step(index_t b, const NmsStepWords& w,
                                                const unsigned long long* __restrict__ mask, index_t n,
                                                index_t cb, const int* __restrict__ col_end,
                                                index_t* __restrict__ keep, unsigned char* __restrict__ flags,
                                                unsigned long long* removed, NmsReduceShared& sh,
                                                unsigned long long& kprev, index_t& kept_total) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (warp == 0) {
    const unsigned long long own = ((kprev >> lane) & 1 ? w.nxt0 : 0ull) |
                                   ((kprev >> (lane + 32)) & 1 ? w.nxt1 : 0ull);
    const unsigned long long rem = removed[b] | nms_warp_or(own);
    const unsigned long long kept = nms_resolve_tile(~rem, w.in0, w.in1, lane);
    const index_t r0 = b * kNmsTile + lane, r1 = r0 + 32;
    const bool k0 = (kept >> lane) & 1, k1 = (kept >> (lane + 32)) & 1;
    const int below0 = __popcll(kept & ((1ull << lane) - 1));
    const int below1 = __popcll(kept & ((1ull << (lane + 32)) - 1));
    if (keep != nullptr) {
      if (k0) keep[kept_total + below0] = w.out0;
      if (k1) keep[kept_total + below1] = w.out1;
    } else {
      if (r0 < n) flags[w.out0] = k0 ? 1 : 0;
      if (r1 < n) flags[w.out1] = k1 ? 1 : 0;
    }
    const int slot = static_cast<int>(b & 1);
    if (k0) sh.rows[slot][below0] = static_cast<unsigned char>(lane);
    if (k1) sh.rows[slot][below1] = static_cast<unsigned char>(lane + 32);
    if (lane == 0) {
      sh.kept[slot] = kept;
      sh.nk[slot] = __popcll(kept);
    }
    kept_total += __popcll(kept);
    kprev = kept;
  } else if (b > 0) {
    const int slot = static_cast<int>((b - 1) & 1);
    const int nk = sh.nk[slot];
    const index_t first = b + 1;
    const index_t last = col_end != nullptr ? static_cast<index_t>(col_end[b - 1]) : cb - 1;
    if (nk > 0 && last >= first) {
      const index_t ncols = last - first + 1;
      const int workers = blockDim.x - 32, wk = tid - 32;
      const unsigned long long* rows = mask + (b - 1) * kNmsTile * cb;
      if (ncols >= workers) {  // a column per thread, every kept row
        for (index_t c = first + wk; c <= last; c += workers) {
          const unsigned long long acc = nms_or_rows(rows, cb, c, sh.rows[slot], nk, 0, 1);
          if (acc != 0) atomicOr(&removed[c], acc);
        }
      } else {  // g threads per column, each a strided share of the kept rows
        const int g = workers / static_cast<int>(ncols);
        const int part = wk / static_cast<int>(ncols);
        if (part < g) {
          const index_t c = first + wk % static_cast<int>(ncols);
          const unsigned long long acc = nms_or_rows(rows, cb, c, sh.rows[slot], nk, part, g);
          if (acc != 0) atomicOr(&removed[c], acc);
        }
      }
    }
  }
}

// Greedy NMS over the mask, one block per mask (blockIdx.x = threshold of nms_sweep).
// Parallelisation: the block walks the ceil(n/64) column blocks in order, one __syncthreads per
// step. `removed[c]` (shared memory, or `removed_global` when it does not fit) collects the rows
// of block c suppressed by kept rows of earlier blocks. At step b:
//   warp 0 finishes removed[b] with the kept rows of block b-1 itself (their words in column
//     b, loaded two steps ahead), resolves block b's 64 rows in registers with warp ballots
//     (nms_resolve_tile), reports them and publishes the kept rows;
//   the other warps OR the kept rows of block b-1 into removed[c] for the later columns
//     c = b+1 .. col_end[b-1], in parallel (coalesced along c, 64-bit shared atomics).
// So the dependent chain is N/64 steps, not one per kept box. The loop runs two steps per
// iteration so that each of the two register sets of warp 0's loads is refilled in place.
// Reports: `keep` given: keep[k++] = order[row] for each kept row in order, `count` = k; else
// flags[dest ? dest[row] : row] = kept (0/1) for every row.
__global__ void __launch_bounds__(kNmsReduceThreads)
nms_reduce_kernel(const unsigned long long* __restrict__ mask, index_t n, index_t cb,
                  const int* __restrict__ col_end, const index_t* __restrict__ order,
                  index_t* __restrict__ keep, index_t* __restrict__ count,
                  const index_t* __restrict__ dest, unsigned char* __restrict__ flags,
                  unsigned long long* __restrict__ removed_global) {
  extern __shared__ unsigned long long s_removed[];
  __shared__ NmsReduceShared sh;
  const index_t t = blockIdx.x;  // which mask (threshold)
  mask += t * n * cb;
  if (keep != nullptr) keep += t * n;
  if (count != nullptr) count += t;
  if (flags != nullptr) flags += t * n;
  unsigned long long* removed = removed_global != nullptr ? removed_global + t * cb : s_removed;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int tail = static_cast<int>(n % kNmsTile);
  for (index_t c = tid; c < cb; c += blockDim.x)  // rows past n are never candidates
    removed[c] = (c == cb - 1 && tail != 0) ? (~0ull << tail) : 0ull;
  if (tid < 2) {
    sh.kept[tid] = 0;
    sh.nk[tid] = 0;
  }
  __syncthreads();

  const index_t* out_map = keep != nullptr ? order : dest;
  NmsStepWords wa, wb;  // warp 0: the loads of steps b and b + 1
  if (warp == 0) {
    wa = nms_load_step(mask, n, cb, 0, lane, out_map);
    wb = nms_load_step(mask, n, cb, 1, lane, out_map);
  }
  unsigned long long kprev = 0;  // warp 0: kept rows of block b-1
  index_t kept_total = 0;        // warp 0: kept so far
  for (index_t b = 0; b < cb; b += 2) {
    nms_reduce_step(b, wa, mask, n, cb, col_end, keep, flags, removed, sh, kprev, kept_total);
    if (warp == 0) wa = nms_load_step(mask, n, cb, b + 2, lane, out_map);
    __syncthreads();
    if (b + 1 < cb) {  // block-uniform
      nms_reduce_step(b + 1, wb, mask, n, cb, col_end, keep, flags, removed, sh, kprev, kept_total);
      if (warp == 0) wb = nms_load_step(mask, n, cb, b + 3, lane, out_map);
      __syncthreads();
    }
  }
  if (tid == 0 && count != nullptr) *count = kept_total;
}

// keep[t][k] = order[p] for the ranks p whose flag is set, in increasing p; count[t] = k.
// Parallelisation: one block per threshold walks the flags in rounds of blockDim * 4; a warp
// takes 128 consecutive flags (4 ballots), the warps' totals are scanned in shared memory.
__global__ void __launch_bounds__(kNmsCompactThreads)
nms_compact_kernel(const unsigned char* __restrict__ flags, const index_t* __restrict__ order, index_t n,
                   index_t* __restrict__ keep, index_t* __restrict__ count) {
  __shared__ index_t s_off[32];
  __shared__ index_t s_total;
  const index_t t = blockIdx.x;
  flags += t * n;
  keep += t * n;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, warps = blockDim.x >> 5;
  const unsigned lt = (1u << lane) - 1;
  index_t running = 0;
  for (index_t base = 0; base < n; base += static_cast<index_t>(blockDim.x) * kNmsCompactItems) {
    const index_t wbase = base + static_cast<index_t>(warp) * 32 * kNmsCompactItems;
    unsigned bal[kNmsCompactItems];
    bool f[kNmsCompactItems];
    int total = 0;
#pragma unroll
    for (int k = 0; k < kNmsCompactItems; ++k) {
      const index_t p = wbase + k * 32 + lane;
      f[k] = p < n && flags[p] != 0;
      bal[k] = __ballot_sync(0xffffffffu, f[k]);
      total += __popc(bal[k]);
    }
    if (lane == 0) s_off[warp] = total;
    __syncthreads();
    if (warp == 0) {
      const index_t v = lane < warps ? s_off[lane] : 0;
      index_t incl = v;
      for (int off = 1; off < 32; off <<= 1) {
        const index_t u = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += u;
      }
      if (lane < warps) s_off[lane] = incl - v;
      if (lane == 31) s_total = incl;
    }
    __syncthreads();
    index_t off = running + s_off[warp];
#pragma unroll
    for (int k = 0; k < kNmsCompactItems; ++k) {
      if (f[k]) keep[off + __popc(bal[k] & lt)] = order[wbase + k * 32 + lane];
      off += __popc(bal[k]);
    }
    running += s_total;
    __syncthreads();  // s_off and s_total are rewritten next round
  }
  if (tid == 0) count[t] = running;
}

}  // namespace fastiou
