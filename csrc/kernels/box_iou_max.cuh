// CUDA kernels of box_iou_max and match_boxes: row maxima and torchvision's Matcher without the
// N x M matrix (math: fastiou/anchor_math.h over box_math.h's IoU).
//
// One source for nvcc (csrc/cuda/box_iou_max.cu) and NVRTC (the CuPy backend).
#pragma once

#include "fastiou/anchor_math.h"
#include "fastiou/launch.h"

namespace fastiou {

// Column maxima are kept as ordered 64-bit keys (key(a) < key(b) <=> a < b; every NaN made the
// largest key), so atomicMax takes the NaN-propagating maximum; 0 is below every key.
__device__ __forceinline__ unsigned long long iou_key(float v) {
  unsigned int u = v != v ? 0x7fc00000u : __float_as_uint(v);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (unsigned long long)u + 1ull;
}
__device__ __forceinline__ unsigned long long iou_key(double v) {
  unsigned long long u = v != v ? 0x7ff8000000000000ull : (unsigned long long)__double_as_longlong(v);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
__device__ __forceinline__ void iou_unkey(unsigned long long k, float* v) {
  unsigned int u = (unsigned int)(k - 1ull);
  u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
  *v = __uint_as_float(u);
}
__device__ __forceinline__ void iou_unkey(unsigned long long k, double* v) {
  const unsigned long long u = (k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k;
  *v = __longlong_as_double((long long)u);
}

// Pass 1. Parallelisation: grid (row blocks, batch); a thread owns one row (its box in
// registers) and walks the item's columns in tiles staged in shared memory. Writes the row's
// best value and first best column (box_iou_max: values / indices; match_boxes: best and the
// label before the low-quality rule). With colmax (match_boxes with the low-quality rule) each
// warp reduces every column's maximum over its rows and one lane does an atomicMax.
template <typename T>
__global__ void iou_max_rows_kernel(const T* __restrict__ rows, index_t batch1,
                                    const T* __restrict__ cols, const long long* __restrict__ counts,
                                    index_t n, index_t m, T* __restrict__ best,
                                    long long* __restrict__ out, unsigned long long* __restrict__ colmax,
                                    int labels, T low, T high) {
  __shared__ T sx1[kIouMaxThreads], sy1[kIouMaxThreads], sx2[kIouMaxThreads], sy2[kIouMaxThreads],
      sar[kIouMaxThreads];
  const index_t b = blockIdx.y;
  const index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x;
  const bool live = i < n;
  const index_t mc = counts[b];
  const T* rb = rows + (batch1 == 1 ? 0 : b * n * 4);
  const T* cb = cols + b * m * 4;
  BoxF<T> a = make_boxf(rb + (live ? i : 0) * 4, FMT_XYXY, MODE_IOU);
  T bv = T(0);
  long long arg = -1;
  const T zero = T(0);
  for (index_t j0 = 0; j0 < mc; j0 += kIouMaxThreads) {
    const int cnt = (mc - j0) < kIouMaxThreads ? int(mc - j0) : kIouMaxThreads;
    __syncthreads();
    if (threadIdx.x < cnt) {
      const BoxF<T> c = make_boxf(cb + (j0 + threadIdx.x) * 4, FMT_XYXY, MODE_IOU);
      sx1[threadIdx.x] = c.x1; sy1[threadIdx.x] = c.y1; sx2[threadIdx.x] = c.x2;
      sy2[threadIdx.x] = c.y2; sar[threadIdx.x] = c.area;
    }
    __syncthreads();
    for (int t = 0; t < cnt; ++t) {
      const T v = pair_value<T, MODE_IOU>(a.x1, a.y1, a.x2, a.y2, a.area, zero, zero, zero, sx1[t],
                                          sy1[t], sx2[t], sy2[t], sar[t], zero, zero, zero, zero);
      if (arg < 0 || iou_better(v, bv)) { bv = v; arg = j0 + t; }
      if (colmax != nullptr) {
        unsigned long long key = live ? iou_key(v) : 0ull;
        for (int off = 16; off > 0; off >>= 1) {
          const unsigned long long o = __shfl_xor_sync(0xffffffffu, key, off);
          key = o > key ? o : key;
        }
        if ((threadIdx.x & 31) == 0 && key != 0ull) atomicMax(colmax + b * m + j0 + t, key);
      }
    }
  }
  if (!live) return;
  const index_t o = b * n + i;
  if (!labels) {
    best[o] = arg < 0 ? T(0) : bv;
    out[o] = arg;
  } else {
    best[o] = bv;
    out[o] = arg < 0 ? (long long)MATCH_BELOW_LOW : match_label<T>(bv, arg, low, high);
  }
}

// Pass 2 of the low-quality rule. Parallelisation: as pass 1; a row whose label is negative
// scans the columns again and takes back its best column if some IoU equals that column's
// maximum.
template <typename T>
__global__ void iou_lowq_kernel(const T* __restrict__ rows, index_t batch1,
                                const T* __restrict__ cols, const long long* __restrict__ counts,
                                index_t n, index_t m, const unsigned long long* __restrict__ colmax,
                                long long* __restrict__ labels) {
  __shared__ T sx1[kIouMaxThreads], sy1[kIouMaxThreads], sx2[kIouMaxThreads], sy2[kIouMaxThreads],
      sar[kIouMaxThreads], scm[kIouMaxThreads];
  const index_t b = blockIdx.y;
  const index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x;
  const index_t mc = counts[b];
  const bool want = i < n && labels[b * n + i] < 0;
  if (__syncthreads_or(want) == 0) return;  // the whole block is done
  const T* rb = rows + (batch1 == 1 ? 0 : b * n * 4);
  const T* cb = cols + b * m * 4;
  const BoxF<T> a = make_boxf(rb + (i < n ? i : 0) * 4, FMT_XYXY, MODE_IOU);
  const T zero = T(0);
  T bv = T(0);
  long long arg = -1;
  bool tie = false;
  for (index_t j0 = 0; j0 < mc; j0 += kIouMaxThreads) {
    const int cnt = (mc - j0) < kIouMaxThreads ? int(mc - j0) : kIouMaxThreads;
    __syncthreads();
    if (threadIdx.x < cnt) {
      const BoxF<T> c = make_boxf(cb + (j0 + threadIdx.x) * 4, FMT_XYXY, MODE_IOU);
      sx1[threadIdx.x] = c.x1; sy1[threadIdx.x] = c.y1; sx2[threadIdx.x] = c.x2;
      sy2[threadIdx.x] = c.y2; sar[threadIdx.x] = c.area;
      T cm;
      iou_unkey(colmax[b * m + j0 + threadIdx.x], &cm);
      scm[threadIdx.x] = cm;
    }
    __syncthreads();
    if (!want) continue;
    for (int t = 0; t < cnt; ++t) {
      const T v = pair_value<T, MODE_IOU>(a.x1, a.y1, a.x2, a.y2, a.area, zero, zero, zero, sx1[t],
                                          sy1[t], sx2[t], sy2[t], sar[t], zero, zero, zero, zero);
      if (arg < 0 || iou_better(v, bv)) { bv = v; arg = j0 + t; }
      tie = tie || v == scm[t];
    }
  }
  if (want && tie) labels[b * n + i] = arg;
}

}  // namespace fastiou
