// CUDA kernels of multiclass_nms (one source for nvcc and NVRTC, see box_iou.cuh).
//
// The rule (TensorRT EfficientNMS shape; csrc/cpu/multiclass_nms.cpp's multiclass_nms_cpu): per image b
// and class j, the candidates n with score[b, n, j] > score_threshold (compared in T), ranked by
// decreasing score (nms_math.h's score_key; ties: lower n first); greedy NMS with nms's test,
// stopping at max_per_class kept (< 0: no cap); then the image's k best kept (n, j) by
// decreasing score, ties by the flat index n * C + j; outputs padded with 0 / -1 past num[b].
//
// Fixed-size everything, no host synchronisation, no allocation: the launchers hand in one
// workspace (mc_layout in csrc/include/fastiou/launch.h) for a group of G images, blockIdx.y (or
// blockIdx.x for the last kernel) is the image within the group. Per group:
//   1. mc_candidates_kernel  (class, image) blocks: the candidates in n order, as (key, n)
//   2. mc_sort_kernel        (class, image) blocks: bottom-up merge sort of the candidates
//   3. mc_nms_kernel         (class, image) blocks: greedy NMS over them, 64 at a time
//   4. mc_select_kernel      image blocks: a merge tree of the classes' kept lists, each cut
//                            at k, and the outputs
// An element is (key, tie): key = score_key(score), tie = n (steps 1-3) or n * C + j (step 4);
// ties are unique, so the elements are totally ordered and every merge is a rank computation:
// an element's place = its place in its own run + the number of smaller elements in the other.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/nms_math.h"
#include "nms_tile.cuh"

namespace fastiou {


struct McElem {
  unsigned long long key, tie;
};
static_assert(sizeof(McElem) == kMcElemBytes, "launch.h's kMcElemBytes is the size of McElem");

__device__ __forceinline__ bool mc_less(const McElem& a, const McElem& b) {
  return a.key < b.key || (a.key == b.key && a.tie < b.tie);
}

// How many of the sorted v[0, len) are smaller than e.
__device__ __forceinline__ index_t mc_count_less(const McElem* __restrict__ v, index_t len, const McElem& e) {
  index_t lo = 0, hi = len;
  while (lo < hi) {
    const index_t mid = lo + (hi - lo) / 2;
    if (mc_less(v[mid], e)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Exclusive position of this thread's flag among the block's flags (in thread order) and, in
// *total, the block's count. s_warp holds 33 ints. Every thread of the block must call it.
__device__ __forceinline__ int mc_block_rank(bool f, int* s_warp, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const unsigned bal = __ballot_sync(0xffffffffu, f);
  if (lane == 0) s_warp[warp] = __popc(bal);
  __syncthreads();
  if (warp == 0) {
    const int v = lane < warps ? s_warp[lane] : 0;
    int incl = v;
    for (int off = 1; off < 32; off <<= 1) {
      const int u = __shfl_up_sync(0xffffffffu, incl, off);
      if (lane >= off) incl += u;
    }
    if (lane < warps) s_warp[lane] = incl - v;
    if (lane == 31) s_warp[32] = incl;
  }
  __syncthreads();
  const int r = s_warp[warp] + __popc(bal & ((1u << lane) - 1));
  *total = s_warp[32];
  __syncthreads();  // s_warp is reused by the next call
  return r;
}

// Step 1. cand[seg * n + i] = (score_key(s), n) of the i-th candidate in n order; m[seg] = count.
// Parallelisation: one block per (class j = blockIdx.x, image g = blockIdx.y), rounds of
// blockDim boxes compacted in order.
template <typename T>
__global__ void __launch_bounds__(kMcThreads)
mc_candidates_kernel(const T* __restrict__ scores, index_t b0, index_t n, index_t c, T score_threshold,
                     McElem* __restrict__ cand, index_t* __restrict__ m) {
  __shared__ int s_warp[33];
  const index_t j = blockIdx.x, g = blockIdx.y, seg = g * c + j;
  const T* s = scores + (b0 + g) * n * c + j;
  McElem* out = cand + seg * n;
  index_t running = 0;
  for (index_t base = 0; base < n; base += blockDim.x) {
    const index_t i = base + threadIdx.x;
    const T v = i < n ? s[i * c] : T(0);
    const bool f = i < n && v > score_threshold;
    int total;
    const int r = mc_block_rank(f, s_warp, &total);
    if (f) {
      McElem e;
      e.key = score_key(static_cast<double>(v));
      e.tie = static_cast<unsigned long long>(i);
      out[running + r] = e;
    }
    running += total;
  }
  if (threadIdx.x == 0) m[seg] = running;
}

// Step 2. Sorts cand[seg * n, + m[seg]) ascending (decreasing score, then n), using tmp as the
// other buffer; the result ends in cand.
// Parallelisation: one block per (class, image); each of the log2(m) levels merges runs of
// width w pairwise, every element placing itself by a binary search in the sibling run.
__global__ void __launch_bounds__(kMcThreads)
mc_sort_kernel(McElem* __restrict__ cand, McElem* __restrict__ tmp, index_t n, index_t c,
               const index_t* __restrict__ m) {
  const index_t seg = blockIdx.y * c + blockIdx.x;
  const index_t len = m[seg];
  McElem* src = cand + seg * n;
  McElem* dst = tmp + seg * n;
  for (index_t w = 1; w < len; w <<= 1) {
    for (index_t i = threadIdx.x; i < len; i += blockDim.x) {
      const index_t s0 = (i / (2 * w)) * (2 * w);
      const index_t mid = s0 + w < len ? s0 + w : len;
      const index_t end = s0 + 2 * w < len ? s0 + 2 * w : len;
      const McElem e = src[i];
      const index_t pos = i < mid ? (i - s0) + mc_count_less(src + mid, end - mid, e)
                                  : (i - mid) + mc_count_less(src + s0, mid - s0, e);
      dst[s0 + pos] = e;
    }
    __syncthreads();
    McElem* t = src;
    src = dst;
    dst = t;
  }
  if (src != cand + seg * n) {
    McElem* home = cand + seg * n;
    for (index_t i = threadIdx.x; i < len; i += blockDim.x) home[i] = src[i];
  }
}

template <typename T>
__device__ __forceinline__ const T* mc_box(const T* __restrict__ boxes, index_t b, index_t n, index_t cb,
                                           index_t j, unsigned long long box_n) {
  return boxes + ((b * n + static_cast<index_t>(box_n)) * cb + (cb == 1 ? 0 : j)) * 4;
}

// Step 3. Greedy NMS over the sorted candidates of (class j, image g), at most `cap` kept
// (cap < 0: no cap): kept[seg * n + r] = the r-th kept element, kc[seg] = how many.
// `removed` holds ceil(n / 64) words per segment.
// Parallelisation: one block per (class, image) walks the candidates 64 at a time: warp 0
// resolves the 64 (nms_resolve_tile over their pairwise tests, computed by the warp), then the
// whole block tests every later candidate still in play against the tile's kept boxes and marks
// the suppressed ones. ceil(m / 64) dependent steps; O(m * kept) box pairs.
template <typename T>
__global__ void __launch_bounds__(kMcThreads)
mc_nms_kernel(const T* __restrict__ boxes, index_t b0, index_t n, index_t c, index_t cb, double iou_threshold,
              index_t cap, const McElem* __restrict__ cand, const index_t* __restrict__ m,
              unsigned long long* __restrict__ removed, McElem* __restrict__ kept_out, index_t* __restrict__ kc) {
  __shared__ T s_x1[64], s_y1[64], s_x2[64], s_y2[64], s_area[64];
  __shared__ unsigned long long s_kept;
  const index_t j = blockIdx.x, g = blockIdx.y, seg = g * c + j, b = b0 + g;
  const index_t len = m[seg];
  const McElem* cs = cand + seg * n;
  McElem* out = kept_out + seg * n;
  const index_t words = (n + 63) / 64;
  unsigned long long* rem = removed + seg * words;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (index_t w = tid; w < words; w += blockDim.x) rem[w] = 0;
  const index_t limit = cap < 0 ? len : (cap < len ? cap : len);
  const T thr = nms_threshold<T>(iou_threshold);
  index_t kept_total = 0;
  __syncthreads();
  for (index_t base = 0; base < len && kept_total < limit; base += 64) {
    const int cnt = len - base < 64 ? static_cast<int>(len - base) : 64;
    if (tid < cnt) {
      const BoxF<T> bx = make_boxf(mc_box(boxes, b, n, cb, j, cs[base + tid].tie), FMT_XYXY, MODE_IOU);
      s_x1[tid] = bx.x1; s_y1[tid] = bx.y1; s_x2[tid] = bx.x2; s_y2[tid] = bx.y2; s_area[tid] = bx.area;
    }
    __syncthreads();
    if (warp == 0) {
      unsigned long long in[2] = {0, 0};
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = lane + 32 * h;
        if (r < cnt) {
          BoxF<T> q;
          q.x1 = s_x1[r]; q.y1 = s_y1[r]; q.x2 = s_x2[r]; q.y2 = s_y2[r]; q.area = s_area[r];
          q.cx = q.cy = q.ratio = T(0);
          for (int jj = 0; jj < r; ++jj) {
            BoxF<T> a;
            a.x1 = s_x1[jj]; a.y1 = s_y1[jj]; a.x2 = s_x2[jj]; a.y2 = s_y2[jj]; a.area = s_area[jj];
            a.cx = a.cy = a.ratio = T(0);
            if (pair_value<T, MODE_IOU>(a, q, T(0)) > thr) in[h] |= 1ull << jj;
          }
        }
      }
      const unsigned long long valid = cnt == 64 ? ~0ull : ((1ull << cnt) - 1);
      unsigned long long kept = nms_resolve_tile(~rem[base / 64] & valid, in[0], in[1], lane);
      const index_t room = limit - kept_total;
      if (__popcll(kept) > room) {  // the cap: only the first `room` kept rows count
        unsigned long long x = kept, keep = 0;
        for (index_t t = 0; t < room; ++t) {
          const unsigned long long low = x & (~x + 1);
          keep |= low;
          x ^= low;
        }
        kept = keep;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = lane + 32 * h;
        if ((kept >> r) & 1) out[kept_total + __popcll(kept & ((1ull << r) - 1))] = cs[base + r];
      }
      if (lane == 0) s_kept = kept;
    }
    __syncthreads();
    const unsigned long long kept = s_kept;
    kept_total += __popcll(kept);
    if (kept != 0 && kept_total < limit) {
      for (index_t q = base + 64 + tid; q < len; q += blockDim.x) {
        if ((rem[q / 64] >> (q % 64)) & 1) continue;
        const BoxF<T> bq = make_boxf(mc_box(boxes, b, n, cb, j, cs[q].tie), FMT_XYXY, MODE_IOU);
        bool sup = false;
        for (unsigned long long x = kept; x != 0 && !sup; x &= x - 1) {
          const int r = __ffsll(static_cast<long long>(x)) - 1;
          BoxF<T> a;
          a.x1 = s_x1[r]; a.y1 = s_y1[r]; a.x2 = s_x2[r]; a.y2 = s_y2[r]; a.area = s_area[r];
          a.cx = a.cy = a.ratio = T(0);
          sup = pair_value<T, MODE_IOU>(a, bq, T(0)) > thr;
        }
        if (sup) atomicOr(&rem[q / 64], 1ull << (q % 64));
      }
    }
    __syncthreads();  // rem and the shared tile are read / rewritten by the next step
  }
  if (tid == 0) kc[seg] = kept_total;
}

// Step 4. For image g: the k best of the classes' kept lists, and every output row.
// lists / lens: two buffers each of c lists of capacity k (and their lengths) per image.
// Parallelisation: one block per image: level by level, lists 2p and 2p+1 merge into list p
// (each element placed by a binary search in its partner), cut at k; ceil(log2 c) levels.
template <typename T>
__global__ void __launch_bounds__(kMcSelectThreads)
mc_select_kernel(const T* __restrict__ boxes, const T* __restrict__ scores, index_t b0, index_t n, index_t c,
                 index_t cb, index_t k, const McElem* __restrict__ kept, const index_t* __restrict__ kc,
                 McElem* __restrict__ lists_a, McElem* __restrict__ lists_b, index_t* __restrict__ lens_a,
                 index_t* __restrict__ lens_b, index_t* __restrict__ num, T* __restrict__ out_boxes,
                 T* __restrict__ out_scores, index_t* __restrict__ out_classes, index_t* __restrict__ out_indices) {
  const index_t g = blockIdx.x, b = b0 + g;
  McElem* src = lists_a + g * c * k;
  McElem* dst = lists_b + g * c * k;
  index_t* lsrc = lens_a + g * c;
  index_t* ldst = lens_b + g * c;
  for (index_t q = threadIdx.x; q < c * k; q += blockDim.x) {
    const index_t j = q / k, r = q % k, seg = g * c + j;
    if (r < kc[seg]) {
      McElem e = kept[seg * n + r];
      e.tie = e.tie * static_cast<unsigned long long>(c) + static_cast<unsigned long long>(j);
      src[q] = e;
    }
  }
  for (index_t j = threadIdx.x; j < c; j += blockDim.x) {
    const index_t v = kc[g * c + j];
    lsrc[j] = v < k ? v : k;
  }
  __syncthreads();
  for (index_t lists = c; lists > 1;) {
    const index_t pairs = (lists + 1) / 2;
    for (index_t q = threadIdx.x; q < lists * k; q += blockDim.x) {
      const index_t l = q / k, r = q % k;
      if (r >= lsrc[l]) continue;
      const McElem e = src[q];
      const index_t partner = l ^ 1;
      const index_t pos = partner < lists ? r + mc_count_less(src + partner * k, lsrc[partner], e) : r;
      if (pos < k) dst[(l / 2) * k + pos] = e;
    }
    for (index_t p = threadIdx.x; p < pairs; p += blockDim.x) {
      const index_t total = lsrc[2 * p] + (2 * p + 1 < lists ? lsrc[2 * p + 1] : 0);
      ldst[p] = total < k ? total : k;
    }
    __syncthreads();
    McElem* t = src; src = dst; dst = t;
    index_t* u = lsrc; lsrc = ldst; ldst = u;
    lists = pairs;
  }
  const index_t found = lsrc[0];
  if (threadIdx.x == 0) num[b] = found;
  for (index_t r = threadIdx.x; r < k; r += blockDim.x) {
    T* ob = out_boxes + (b * k + r) * 4;
    if (r < found) {
      const McElem e = src[r];
      const index_t i = static_cast<index_t>(e.tie / static_cast<unsigned long long>(c));
      const index_t j = static_cast<index_t>(e.tie % static_cast<unsigned long long>(c));
      const T* bx = mc_box(boxes, b, n, cb, j, static_cast<unsigned long long>(i));
      ob[0] = bx[0]; ob[1] = bx[1]; ob[2] = bx[2]; ob[3] = bx[3];
      out_scores[b * k + r] = scores[(b * n + i) * c + j];
      out_classes[b * k + r] = j;
      out_indices[b * k + r] = i;
    } else {
      ob[0] = ob[1] = ob[2] = ob[3] = T(0);
      out_scores[b * k + r] = T(0);
      out_classes[b * k + r] = -1;
      out_indices[b * k + r] = -1;
    }
  }
}

}  // namespace fastiou
