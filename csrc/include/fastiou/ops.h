// Entry points of the compiled backends: raw pointers and sizes only, no framework types.
//
// The caller (csrc/bindings_*.cpp) has checked shapes, dtypes and contiguity; every pointer
// is to a C-contiguous buffer of the sizes given. CUDA entry points enqueue on `stream`
// (a cudaStream_t) on the current device and do not synchronise.
#pragma once

#include <cstdint>

#include "fastiou/common.h"

namespace fastiou {

// out[b, i, j] = measure(boxes1[b, i], boxes2[b, j]); boxes (batch, n, 4) and (batch, m, 4).
template <typename T>
void box_pairwise_cpu(const T* boxes1, const T* boxes2, T* out, index_t batch, index_t n,
                      index_t m, int mode, int fmt, T eps);
// out[i] = measure(boxes1[i], boxes2[i]).
template <typename T>
void box_aligned_cpu(const T* boxes1, const T* boxes2, T* out, index_t n, int mode, int fmt, T eps);
template <typename T>
void box_area_cpu(const T* boxes, T* out, index_t n, int fmt);
template <typename T>
void box_convert_cpu(const T* boxes, T* out, index_t n, int in_fmt, int out_fmt);
// masks (n, h, w) of 0/1 bytes -> boxes (n, 4) xyxy, inclusive max, zeros for an empty mask.
void masks_to_boxes_cpu(const uint8_t* masks, float* out, index_t n, index_t h, index_t w);

// Which instruction set the CPU loops dispatch to on this machine ("avx512f", "avx2", "baseline").
const char* cpu_isa();

template <typename T>
void box_pairwise_cuda(const T* boxes1, const T* boxes2, T* out, index_t batch, index_t n,
                       index_t m, int mode, int fmt, T eps, void* stream);
template <typename T>
void box_aligned_cuda(const T* boxes1, const T* boxes2, T* out, index_t n, int mode, int fmt,
                      T eps, void* stream);
template <typename T>
void box_area_cuda(const T* boxes, T* out, index_t n, int fmt, void* stream);
template <typename T>
void box_convert_cuda(const T* boxes, T* out, index_t n, int in_fmt, int out_fmt, void* stream);
void masks_to_boxes_cuda(const uint8_t* masks, float* out, index_t n, index_t h, index_t w,
                         void* stream);

}  // namespace fastiou
