// Launchers of nms / batched_nms and nms_sweep, and the ranking stage that matrix_nms.cu shares
// (kernels: csrc/kernels/nms.cuh; the pipeline is described at the top of nms.cuh).
//
// Temporaries come from one stream-ordered allocation (cudaMallocAsync / cudaFreeAsync on the
// caller's stream); the sorts are cub::DeviceRadixSort::SortPairs, which is stable. nms and
// nms_sweep end with the one host synchronisation they are allowed: copying the kept counts.
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <string>
#include <vector>

#include "../kernels/nms.cuh"
#include "fastiou/launch.h"
#include "fastiou/ops.h"
#include "nms_common.h"

namespace fastiou {
namespace nms_launch {


void check_nms_size(index_t n, const char* what) {
  // cub's item count and the mask grid (column blocks in gridDim.y) bound n; the mask itself
  // (n^2 / 8 bytes) runs out of memory long before.
  const index_t cb = (n + kNmsTile - 1) / kNmsTile;
  if (n > INT_MAX || cb > 65535)
    throw std::invalid_argument(std::string(what) + ": at most " + std::to_string(65535 * kNmsTile) +
                                " boxes on the GPU, got " + std::to_string(n));
}

template <typename T>
RankLayout plan_rank(Layout& lay, index_t n, bool classes, bool src, cudaStream_t stream) {
  RankLayout r{};
  const index_t cb = (n + kNmsTile - 1) / kNmsTile;
  const size_t n8 = static_cast<size_t>(n) * 8;
  r.keys_in = lay.add(n8);
  r.keys_out = lay.add(n8);
  r.idx = lay.add(n8);
  r.order = lay.add(n8);
  r.sboxes = lay.add(static_cast<size_t>(n) * 4 * sizeof(T));
  r.src = src ? lay.add(n8) : 0;
  size_t a = 0, b = 0;
  check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, a, static_cast<const unsigned long long*>(nullptr),
                                             static_cast<unsigned long long*>(nullptr),
                                             static_cast<const index_t*>(nullptr), static_cast<index_t*>(nullptr),
                                             static_cast<int>(n), 0, 64, stream),
             "nms: cub sort size");
  if (classes) {
    r.ckeys = lay.add(n8);
    r.pos = lay.add(n8);
    r.cls = lay.add(n8);
    r.rank = lay.add(n8);
    r.col_end = lay.add(static_cast<size_t>(cb) * 4);
    check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, b, static_cast<const long long*>(nullptr),
                                               static_cast<long long*>(nullptr),
                                               static_cast<const index_t*>(nullptr), static_cast<index_t*>(nullptr),
                                               static_cast<int>(n), 0, 64, stream),
               "nms: cub sort size");
  }
  r.cub_bytes = a > b ? a : b;
  r.cub = lay.add(r.cub_bytes);
  return r;
}

template <typename T, typename S>
Ranked<T> run_rank(const StreamBlock& blk, const RankLayout& r, const T* boxes, const S* scores,
                   const long long* classes, index_t n, bool want_src, cudaStream_t stream) {
  Ranked<T> out;
  const int ni = static_cast<int>(n);
  unsigned long long* keys_in = blk.at<unsigned long long>(r.keys_in);
  unsigned long long* keys_out = blk.at<unsigned long long>(r.keys_out);
  index_t* idx = blk.at<index_t>(r.idx);
  out.order = blk.at<index_t>(r.order);
  out.sboxes = blk.at<T>(r.sboxes);
  out.src = want_src ? blk.at<index_t>(r.src) : nullptr;
  void* cub_tmp = blk.at<void>(r.cub);
  const unsigned grid = grid_for(n, kNmsElementwiseThreads);
  rank_keys_kernel<S><<<grid, kNmsElementwiseThreads, 0, stream>>>(scores, keys_in, idx, n);
  check_launch("nms: score keys");
  size_t bytes = r.cub_bytes;
  check_cuda(cub::DeviceRadixSort::SortPairs(cub_tmp, bytes, keys_in, keys_out, idx, out.order, ni, 0, 64, stream),
             "nms: sort by score");
  if (classes != nullptr) {
    long long* ckeys = blk.at<long long>(r.ckeys);
    index_t* pos = blk.at<index_t>(r.pos);
    out.cls = blk.at<long long>(r.cls);
    out.rank = blk.at<index_t>(r.rank);
    out.col_end = blk.at<int>(r.col_end);
    nms_class_keys_kernel<<<grid, kNmsElementwiseThreads, 0, stream>>>(classes, out.order, ckeys, pos, n);
    check_launch("nms: class keys");
    bytes = r.cub_bytes;
    check_cuda(cub::DeviceRadixSort::SortPairs(cub_tmp, bytes, ckeys, out.cls, pos, out.rank, ni, 0, 64, stream),
               "nms: sort by class");
    const index_t cb = (n + kNmsTile - 1) / kNmsTile;
    nms_class_blocks_kernel<<<grid_for(cb, kNmsElementwiseThreads), kNmsElementwiseThreads, 0, stream>>>(
        out.cls, n, out.col_end, cb);
    check_launch("nms: class blocks");
  }
  nms_gather_kernel<T><<<grid, kNmsElementwiseThreads, 0, stream>>>(boxes, out.order, out.rank, out.sboxes,
                                                                     out.src, n);
  check_launch("nms: gather");
  return out;
}

template RankLayout plan_rank<float>(Layout&, index_t, bool, bool, cudaStream_t);
template RankLayout plan_rank<double>(Layout&, index_t, bool, bool, cudaStream_t);
template Ranked<float> run_rank<float, double>(const StreamBlock&, const RankLayout&, const float*, const double*,
                                               const long long*, index_t, bool, cudaStream_t);
template Ranked<double> run_rank<double, double>(const StreamBlock&, const RankLayout&, const double*,
                                                 const double*, const long long*, index_t, bool, cudaStream_t);
template Ranked<float> run_rank<float, float>(const StreamBlock&, const RankLayout&, const float*, const float*,
                                              const long long*, index_t, bool, cudaStream_t);

}  // namespace nms_launch

using namespace nms_launch;

namespace {

void launch_reduce(const unsigned long long* mask, index_t n, index_t cb, int masks, const int* col_end,
                   const index_t* order, index_t* keep, index_t* count, const index_t* dest,
                   unsigned char* flags, unsigned long long* removed_global, cudaStream_t stream) {
  const size_t smem = removed_global != nullptr ? 0 : static_cast<size_t>(cb) * 8;
  nms_reduce_kernel<<<masks, kNmsReduceThreads, smem, stream>>>(mask, n, cb, col_end, order, keep, count, dest,
                                                                 flags, removed_global);
  check_launch("nms: reduce");
}

// The kept count, through a small pinned buffer per host thread (a pageable copy is staged and
// costs several microseconds more).
index_t copy_count(const index_t* dev, cudaStream_t stream) {
  struct Pinned {
    index_t* p = nullptr;
    Pinned() {
      if (cudaMallocHost(reinterpret_cast<void**>(&p), sizeof(index_t)) != cudaSuccess) {
        cudaGetLastError();
        p = nullptr;
      }
    }
    ~Pinned() {
      if (p != nullptr) cudaFreeHost(p);
    }
  };
  static thread_local Pinned pinned;
  index_t host = 0;
  index_t* dst = pinned.p != nullptr ? pinned.p : &host;
  check_cuda(cudaMemcpyAsync(dst, dev, sizeof(index_t), cudaMemcpyDeviceToHost, stream), "nms: copy count");
  check_cuda(cudaStreamSynchronize(stream), "nms");
  return *dst;
}

}  // namespace

template <typename T>
index_t nms_cuda(const T* boxes, const double* scores, const long long* classes, index_t n,
                 double iou_threshold, index_t* keep, void* stream_) {
  if (n <= 0) return 0;
  check_nms_size(n, "nms");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  const index_t cb = (n + kNmsTile - 1) / kNmsTile;
  const bool by_class = classes != nullptr;
  Layout lay;
  const RankLayout rl = plan_rank<T>(lay, n, by_class, false, stream);
  const size_t mask_off = lay.add(static_cast<size_t>(n) * cb * 8);
  const size_t count_off = lay.add(8);
  const size_t flags_off = by_class ? lay.add(static_cast<size_t>(n)) : 0;
  const bool global_removed = static_cast<size_t>(cb) * 8 > kReduceSharedLimit;
  const size_t removed_off = global_removed ? lay.add(static_cast<size_t>(cb) * 8) : 0;
  StreamBlock blk(lay.total, stream, "nms");

  const Ranked<T> rk = run_rank<T, double>(blk, rl, boxes, scores, classes, n, false, stream);
  unsigned long long* mask = blk.at<unsigned long long>(mask_off);
  index_t* count = blk.at<index_t>(count_off);
  nms_mask_kernel<T, 1><<<dim3(static_cast<unsigned>(cb), static_cast<unsigned>(cb)), kNmsTile, 0, stream>>>(
      rk.sboxes, rk.cls, rk.col_end, n, cb, iou_threshold, nullptr, 1, mask);
  check_launch("nms: mask");
  unsigned long long* removed = global_removed ? blk.at<unsigned long long>(removed_off) : nullptr;
  if (!by_class) {  // ranks are positions: the reduce writes the kept indices itself
    launch_reduce(mask, n, cb, 1, nullptr, rk.order, keep, count, nullptr, nullptr, removed, stream);
  } else {  // class-major positions: flags by rank, then compaction in rank order
    unsigned char* flags = blk.at<unsigned char>(flags_off);
    launch_reduce(mask, n, cb, 1, rk.col_end, nullptr, nullptr, nullptr, rk.rank, flags, removed, stream);
    nms_compact_kernel<<<1, kNmsCompactThreads, 0, stream>>>(flags, rk.order, n, keep, count);
    check_launch("nms: compact");
  }
  return copy_count(count, stream);
}

template <typename T>
void nms_sweep_cuda(const T* boxes, const double* scores, const long long* classes, index_t n,
                    const double* thresholds, int nthr, index_t* keep, index_t* counts, void* stream_) {
  if (nthr <= 0) return;
  if (n <= 0) {
    for (int t = 0; t < nthr; ++t) counts[t] = 0;
    return;
  }
  check_nms_size(n, "nms_sweep");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  const index_t cb = (n + kNmsTile - 1) / kNmsTile;
  const bool by_class = classes != nullptr;
  Layout lay;
  const RankLayout rl = plan_rank<T>(lay, n, by_class, false, stream);
  const size_t words = static_cast<size_t>(n) * cb;
  const size_t mask_off = lay.add(words * 8 * nthr);
  const size_t thr_off = lay.add(sizeof(double) * nthr);
  const size_t count_off = lay.add(8 * static_cast<size_t>(nthr));
  const size_t flags_off = lay.add(static_cast<size_t>(n) * nthr);
  const bool global_removed = static_cast<size_t>(cb) * 8 > kReduceSharedLimit;
  const size_t removed_off = global_removed ? lay.add(static_cast<size_t>(cb) * 8 * nthr) : 0;
  StreamBlock blk(lay.total, stream, "nms_sweep");

  double* thr_dev = blk.at<double>(thr_off);
  check_cuda(cudaMemcpyAsync(thr_dev, thresholds, sizeof(double) * nthr, cudaMemcpyHostToDevice, stream),
             "nms_sweep: copy thresholds");
  const Ranked<T> rk = run_rank<T, double>(blk, rl, boxes, scores, classes, n, false, stream);
  unsigned long long* mask = blk.at<unsigned long long>(mask_off);
  for (int t0 = 0; t0 < nthr; t0 += kNmsSweepWords) {
    const int cnt = nthr - t0 < kNmsSweepWords ? nthr - t0 : kNmsSweepWords;
    nms_mask_kernel<T, kNmsSweepWords><<<dim3(static_cast<unsigned>(cb), static_cast<unsigned>(cb)), kNmsTile, 0,
                                         stream>>>(rk.sboxes, rk.cls, rk.col_end, n, cb, 0.0, thr_dev + t0, cnt,
                                                   mask + words * t0);
    check_launch("nms_sweep: mask");
  }
  unsigned char* flags = blk.at<unsigned char>(flags_off);
  index_t* count = blk.at<index_t>(count_off);
  unsigned long long* removed = global_removed ? blk.at<unsigned long long>(removed_off) : nullptr;
  launch_reduce(mask, n, cb, nthr, rk.col_end, nullptr, nullptr, nullptr, rk.rank, flags, removed, stream);
  nms_compact_kernel<<<nthr, kNmsCompactThreads, 0, stream>>>(flags, rk.order, n, keep, count);
  check_launch("nms_sweep: compact");
  check_cuda(cudaMemcpyAsync(counts, count, sizeof(index_t) * nthr, cudaMemcpyDeviceToHost, stream),
             "nms_sweep: copy counts");
  check_cuda(cudaStreamSynchronize(stream), "nms_sweep");
}

index_t nms_bitmask_reduce_cuda(const unsigned long long* mask, index_t n, const index_t* order, index_t* keep,
                                void* stream_) {
  if (n <= 0) return 0;
  check_nms_size(n, "nms");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  const index_t cb = (n + kNmsTile - 1) / kNmsTile;
  Layout lay;
  const size_t count_off = lay.add(8);
  const bool global_removed = static_cast<size_t>(cb) * 8 > kReduceSharedLimit;
  const size_t removed_off = global_removed ? lay.add(static_cast<size_t>(cb) * 8) : 0;
  StreamBlock blk(lay.total, stream, "nms");
  index_t* count = blk.at<index_t>(count_off);
  unsigned long long* removed = global_removed ? blk.at<unsigned long long>(removed_off) : nullptr;
  launch_reduce(mask, n, cb, 1, nullptr, order, keep, count, nullptr, nullptr, removed, stream);
  return copy_count(count, stream);
}

template index_t nms_cuda<float>(const float*, const double*, const long long*, index_t, double, index_t*, void*);
template index_t nms_cuda<double>(const double*, const double*, const long long*, index_t, double, index_t*, void*);
template void nms_sweep_cuda<float>(const float*, const double*, const long long*, index_t, const double*, int,
                                    index_t*, index_t*, void*);
template void nms_sweep_cuda<double>(const double*, const double*, const long long*, index_t, const double*, int,
                                     index_t*, index_t*, void*);


}  // namespace fastiou
