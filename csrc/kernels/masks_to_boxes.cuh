// CUDA kernel of masks_to_boxes (one source for nvcc and NVRTC, see box_iou.cuh).
#pragma once

#include "fastiou/launch.h"
#include "fastiou/common.h"

namespace fastiou {


// Parallelisation: one block per mask (grid-stride over masks); its warps take rows in turn and
// the lanes of a warp read consecutive bytes of a row (coalesced); the block reduces its
// extremes in shared memory. h and w are below 2^31 (checked by the caller).
__global__ void masks_to_boxes_kernel(const unsigned char* __restrict__ masks,
                                      float* __restrict__ out, index_t n, int h, int w) {
  __shared__ int ext[4];  // xmin, ymin, -xmax, -ymax: all four reduced with atomicMin
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (index_t k = blockIdx.x; k < n; k += gridDim.x) {
    if (threadIdx.x < 4) ext[threadIdx.x] = 0x7fffffff;
    __syncthreads();
    const unsigned char* m = masks + k * (index_t)h * w;
    int xmin = 0x7fffffff, ymin = 0x7fffffff, nxmax = 0x7fffffff, nymax = 0x7fffffff;
    for (int y = warp; y < h; y += warps) {
      const unsigned char* row = m + (index_t)y * w;
      for (int x = lane; x < w; x += 32) {
        if (row[x]) {
          xmin = x < xmin ? x : xmin;
          nxmax = -x < nxmax ? -x : nxmax;
          ymin = y < ymin ? y : ymin;
          nymax = -y < nymax ? -y : nymax;
        }
      }
    }
    atomicMin(&ext[0], xmin);
    atomicMin(&ext[1], ymin);
    atomicMin(&ext[2], nxmax);
    atomicMin(&ext[3], nymax);
    __syncthreads();
    if (threadIdx.x == 0) {
      float* o = out + 4 * k;
      if (ext[0] == 0x7fffffff) {
        o[0] = o[1] = o[2] = o[3] = 0.0f;
      } else {
        o[0] = float(ext[0]); o[1] = float(ext[1]); o[2] = float(-ext[2]); o[3] = float(-ext[3]);
      }
    }
    __syncthreads();  // ext is reset for the next mask only after thread 0 has read it
  }
}

}  // namespace fastiou
