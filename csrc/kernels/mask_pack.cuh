// CUDA kernels of pack_masks, unpack_masks and packed_stats (one source for nvcc and NVRTC,
// see box_iou.cuh). The packed layout and the box / area conventions: fastiou/mask_math.h.
#pragma once

#include "fastiou/launch.h"
#include "fastiou/mask_math.h"

namespace fastiou {


// bits[r] = row r of masks (non-zero byte = foreground) packed into ww words, padding bits 0.
// Parallelisation: one warp per row (grid-stride over the rows = masks * h). For word k the 32
// lanes read bytes k*64 + lane and k*64 + 32 + lane (two coalesced 32-byte reads) and two
// __ballot_sync build its low and high halves. The warp loads kMaskPackBatch words' bytes before
// any ballot (16 loads in flight, not 2), then lanes 0..kMaskPackBatch-1 store the batch's words
// (one coalesced store).

__global__ void pack_masks_kernel(const unsigned char* __restrict__ masks, unsigned long long* __restrict__ bits,
                                  index_t rows, int w, int ww) {
  const int lane = threadIdx.x & 31;
  const index_t warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
  for (index_t r = (blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const unsigned char* __restrict__ row = masks + r * w;
    unsigned long long* __restrict__ out = bits + r * ww;
    for (int k0 = 0; k0 < ww; k0 += kMaskPackBatch) {  // warp-uniform
      bool lo[kMaskPackBatch], hi[kMaskPackBatch];
#pragma unroll
      for (int u = 0; u < kMaskPackBatch; ++u) {
        const index_t x0 = static_cast<index_t>(k0 + u) * 64 + lane, x1 = x0 + 32;
        lo[u] = x0 < w && row[x0] != 0;
        hi[u] = x1 < w && row[x1] != 0;
      }
      unsigned long long mine = 0;  // lane u keeps word k0 + u
#pragma unroll
      for (int u = 0; u < kMaskPackBatch; ++u) {
        const unsigned l = __ballot_sync(0xffffffffu, lo[u]);
        const unsigned h = __ballot_sync(0xffffffffu, hi[u]);
        if (lane == u) mine = static_cast<unsigned long long>(l) | (static_cast<unsigned long long>(h) << 32);
      }
      if (lane < kMaskPackBatch && k0 + lane < ww) out[k0 + lane] = mine;
    }
  }
}

// out[r][x] = bit x of packed row r (0 or 1), for x < w.
// Parallelisation: one warp per row (grid-stride); lane l writes bytes l, l + 32, ... (coalesced),
// the 32 lanes of a step reading the same word.
__global__ void unpack_masks_kernel(const unsigned long long* __restrict__ bits, unsigned char* __restrict__ out,
                                    index_t rows, int w, int ww) {
  const int lane = threadIdx.x & 31;
  const index_t warps = (static_cast<index_t>(gridDim.x) * blockDim.x) >> 5;
  for (index_t r = (blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const unsigned long long* row = bits + r * ww;
    unsigned char* o = out + r * w;
    for (int x = lane; x < w; x += 32)
      o[x] = static_cast<unsigned char>((row[x >> 6] >> (x & 63)) & 1ull);
  }
}

// Tight box (x0, y0, x1, y1; exclusive max; zeros when empty) and area of each packed mask.
// Parallelisation: one block per mask (grid-stride over masks); the threads take the mask's
// h * ww words in turn (coalesced), fold popcounts and extremes in registers, then the block
// reduces: the area with warp shuffles and a 64-bit shared atomic, the extremes with shared
// atomicMin as masks_to_boxes_kernel. h * ww < 2^31 and ww * 64 <= 2^31 - 65 (the caller checks).
__global__ void packed_stats_kernel(const unsigned long long* __restrict__ bits, int* __restrict__ boxes,
                                    long long* __restrict__ areas, index_t n, int h, int ww) {
  __shared__ int ext[4];  // xmin, ymin, -xmax, -ymax (inclusive maxima)
  __shared__ unsigned long long s_area;
  const int lane = threadIdx.x & 31;
  const int hw = h * ww;
  for (index_t k = blockIdx.x; k < n; k += gridDim.x) {
    if (threadIdx.x < 4) ext[threadIdx.x] = 0x7fffffff;
    if (threadIdx.x == 0) s_area = 0;
    __syncthreads();
    const unsigned long long* m = bits + k * static_cast<index_t>(hw);
    int xmin = 0x7fffffff, ymin = 0x7fffffff, nxmax = 0x7fffffff, nymax = 0x7fffffff;
    unsigned long long cnt = 0;
#pragma unroll 4
    for (int i = threadIdx.x; i < hw; i += blockDim.x) {
      const unsigned long long v = m[i];
      if (v != 0) {
        const int y = i / ww, x = (i - y * ww) * 64;
        cnt += static_cast<unsigned long long>(popcount64(v));
        const int lo = x + __ffsll(static_cast<long long>(v)) - 1;
        const int hi = x + 63 - __clzll(static_cast<long long>(v));
        xmin = lo < xmin ? lo : xmin;
        nxmax = -hi < nxmax ? -hi : nxmax;
        ymin = y < ymin ? y : ymin;
        nymax = -y < nymax ? -y : nymax;
      }
    }
    for (int off = 16; off > 0; off >>= 1) cnt += __shfl_xor_sync(0xffffffffu, cnt, off);
    if (lane == 0 && cnt != 0) atomicAdd(&s_area, cnt);
    if (xmin != 0x7fffffff) {
      atomicMin(&ext[0], xmin);
      atomicMin(&ext[1], ymin);
      atomicMin(&ext[2], nxmax);
      atomicMin(&ext[3], nymax);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int* b = boxes + 4 * k;
      if (ext[0] == 0x7fffffff) {
        b[0] = b[1] = b[2] = b[3] = 0;
      } else {
        b[0] = ext[0]; b[1] = ext[1]; b[2] = 1 - ext[2]; b[3] = 1 - ext[3];
      }
      areas[k] = static_cast<long long>(s_area);
    }
    __syncthreads();  // ext and s_area are reset for the next mask only after thread 0 has read them
  }
}

}  // namespace fastiou
