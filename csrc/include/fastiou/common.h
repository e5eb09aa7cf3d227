// Portability layer shared by g++, nvcc and NVRTC: no standard headers under NVRTC.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FASTIOU_HD __host__ __device__ __forceinline__
#define FASTIOU_DEVICE_CODE 1
#else
#define FASTIOU_HD inline __attribute__((always_inline))
#endif

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstdint>
#endif

namespace fastiou {

typedef long long index_t;  // every N*M product is formed in 64 bits

// Box layouts, shared by the kernels and the Python layer (fastiou/_dispatch.py).
enum BoxFormat : int { FMT_XYXY = 0, FMT_XYWH = 1, FMT_CXCYWH = 2 };

// Pairwise measures (fastiou/_dispatch.py keeps the same numbers).
enum IouMode : int { MODE_IOU = 0, MODE_GIOU = 1, MODE_DIOU = 2, MODE_CIOU = 3, MODE_IOA = 4 };

}  // namespace fastiou
