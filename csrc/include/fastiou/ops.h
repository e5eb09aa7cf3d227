// Entry points of the compiled backends: raw pointers and sizes only, no framework types.
//
// The caller (csrc/bindings_*.cpp) has checked shapes, dtypes and contiguity; every pointer
// is to a C-contiguous buffer of the sizes given. CUDA entry points enqueue on `stream`
// (a cudaStream_t) on the current device and do not synchronise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// Suppression (csrc/cpu/nms.cpp, soft_nms.cpp, matrix_nms.cpp, multiclass_nms.cpp); ranking
// and tests as in fastiou/nms_math.h.
// Greedy hard NMS: keep[:K] = the kept boxes' positions, in ranking order; returns K. With
// `classes` (may be null), boxes of different classes never suppress each other.
template <typename T>
index_t nms_cpu(const T* boxes, const double* scores, const int64_t* classes, index_t n,
                double iou_threshold, int64_t* keep);
// nms at each of nt thresholds from one sort and one overlap pass: keep (nt, n), row k holds
// counts[k] kept positions.
template <typename T>
void nms_sweep_cpu(const T* boxes, const double* scores, const int64_t* classes, index_t n,
                   const double* thresholds, index_t nt, int64_t* keep, index_t* counts);
// mmcv soft_nms: keep[:K] in processing order, new_scores[:K] their decayed scores; returns K.
template <typename T>
index_t soft_nms_cpu(const T* boxes, const T* scores, index_t n, double iou_threshold,
                     double sigma, double min_score, int method, int64_t* keep, T* new_scores);
// Matrix NMS (mmdet mask_matrix_nms on box IoU): out[i] = decayed score of box i.
template <typename T>
void matrix_nms_cpu(const T* boxes, const T* scores, const int64_t* labels, index_t n,
                    int kernel, double sigma, T* out);
// Batched per-class NMS: boxes (batch, n, cb, 4) with cb = 1 or c, C-contiguous; scores
// (batch, n, c) at element strides (sb, sn, sc), each > 0 (any layout: a transposed class-major
// head is read in place); outputs (batch, k, ...) padded with 0 / -1 past num[b].
template <typename T>
void multiclass_nms_cpu(const T* boxes, const T* scores, index_t batch, index_t n, index_t c,
                        index_t sb, index_t sn, index_t sc, index_t cb, double iou_threshold,
                        double score_threshold, index_t max_per_class, index_t k, int64_t* num,
                        T* out_boxes, T* out_scores, int64_t* out_classes,
                        int64_t* out_indices);

// Bit-packed binary masks (csrc/cpu/mask_pack.cpp, mask_iou.cpp, mask_nms.cpp,
// resolve_overlaps.cpp; layout, boxes, areas and the IoU rule in fastiou/mask_math.h). `bits`
// are (n, h, ww) 64-bit words with ww = mask_words(w); boxes (n, 4) int32, exclusive max;
// areas (n,) int64. The stats passed in must be those of the bits (pack / packed_stats write
// them); boxes must lie inside [0, 64 * ww] x [0, h] (the bindings check it).
// masks (n, h, w) bytes, non-zero = foreground -> bits (padding bits 0), tight boxes, areas.
void mask_pack_cpu(const uint8_t* masks, uint64_t* bits, int32_t* boxes, int64_t* areas,
                   index_t n, index_t h, index_t w);
// bits -> out (n, h, w) bytes 0 / 1.
void mask_unpack_cpu(const uint64_t* bits, uint8_t* out, index_t n, index_t h, index_t w);
// Tight boxes and areas of packed masks.
void packed_stats_cpu(const uint64_t* bits, int32_t* boxes, int64_t* areas, index_t n,
                      index_t h, index_t ww);
// out[i, j] = mask IoU of mask i of bits1 (n masks) and mask j of bits2 (m masks), float32.
void mask_iou_cpu(const uint64_t* bits1, const int32_t* boxes1, const int64_t* areas1, index_t n,
                  const uint64_t* bits2, const int32_t* boxes2, const int64_t* areas2, index_t m,
                  index_t h, index_t ww, float* out);
// Greedy NMS on mask IoU (nms_math.h ranking, mask_suppresses test): keep[:K] in ranking
// order; returns K.
index_t mask_nms_cpu(const uint64_t* bits, const int32_t* boxes, const int64_t* areas,
                     const double* scores, index_t n, index_t h, index_t ww, double iou_threshold,
                     int64_t* keep);
// Matrix NMS on mask IoU (float32, the rule of matrix_nms_cpu): decayed scores, input order.
void mask_matrix_nms_cpu(const uint64_t* bits, const int32_t* boxes, const int64_t* areas,
                         const float* scores, const int64_t* labels, index_t n, index_t h,
                         index_t ww, int kernel, double sigma, float* out);
// Each set pixel kept only in the best-ranked mask (nms_math.h ranking) that has it.
void resolve_overlaps_cpu(const uint64_t* bits, const double* scores, index_t n, index_t h,
                          index_t ww, uint64_t* out);
// COCO run-length masks (csrc/cpu/rle.cpp), as pycocotools 2.0.11's maskApi.c: counts are
// uint32 run lengths over the column-major flattening, starting with background, summing to
// h * w; strings are its compressed form. Host only.
enum RleError : int { RLE_OK = 0, RLE_BAD_CHAR, RLE_TRUNCATED, RLE_TOO_LONG, RLE_NEGATIVE,
                      RLE_SUM_OVER, RLE_SUM_UNDER };
const char* rle_error_text(int code);
// Parses a counts string of len bytes (no terminator needed) for a mask of hw pixels; returns
// RLE_OK or the first error found (never reads past s + len).
int rle_from_string(const char* s, size_t len, uint64_t hw, std::vector<uint32_t>* cnts);
// The same into out (room for len counts); *count = the number of counts (0 on an error).
int rle_from_string(const char* s, size_t len, uint64_t hw, uint32_t* out, size_t* count);
void rle_to_string(const uint32_t* cnts, index_t m, std::string* out);
// masks (n, h, w) read through element strides (sn, sh, sw) > 0, non-zero = foreground;
// out[i] = the counts string of mask i. h * w < 2**32.
void rle_encode_cpu(const uint8_t* masks, index_t n, index_t h, index_t w, index_t sn,
                    index_t sh, index_t sw, std::string* out);
// out: n masks of h * w bytes, each row-major (h, w) or, with column_major, (w, h).
void rle_decode_cpu(const uint32_t* const* cnts, const index_t* m, index_t n, index_t h,
                    index_t w, bool column_major, uint8_t* out);
void rle_area_cpu(const uint32_t* const* cnts, const index_t* m, index_t n, uint32_t* out);
// sizes (n, 2) = (h, w); out (n, 4) xywh, pycocotools' inclusive width, zeros when empty.
void rle_to_bbox_cpu(const uint32_t* const* cnts, const index_t* m, const int64_t* sizes,
                     index_t n, double* out);
// Union / intersection of all n; false (out empty) when n == 0 or the sizes differ.
bool rle_merge_cpu(const uint32_t* const* cnts, const index_t* m, const int64_t* sizes, index_t n,
                   bool intersect, std::vector<uint32_t>* out);
// out (nd, ng) = pycocotools' rleIou / bbIou (iscrowd may be null; iscrowd[g] is about gt g).
// same: gt is dt (the same arrays), so each unordered pair is walked once.
void rle_iou_cpu(const uint32_t* const* dt, const index_t* mdt, const int64_t* dt_sizes,
                 index_t nd, const uint32_t* const* gt, const index_t* mgt,
                 const int64_t* gt_sizes, index_t ng, const uint8_t* iscrowd, bool same,
                 double* out);
void rle_box_iou_cpu(const double* dt, const double* gt, index_t nd, index_t ng,
                     const uint8_t* iscrowd, double* out);
// pycocotools' rleFrPoly of k vertices xy (k, 2); out[i] from polygon i.
void rle_from_polygon_cpu(const double* xy, index_t k, index_t h, index_t w,
                          std::vector<uint32_t>* out);
void rle_from_polygons_cpu(const double* const* xy, const index_t* k, index_t n, index_t h,
                           index_t w, std::vector<uint32_t>* out);

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

// Suppression on the GPU (csrc/cuda/nms.cu, soft_nms.cu, matrix_nms.cu, multiclass_nms.cu;
// kernels csrc/kernels/nms.cuh, soft_nms.cuh, matrix_nms.cuh): the same results as the *_cpu
// functions above. Integer arrays are int64 (long long). Temporaries are stream-ordered allocations (cudaMallocAsync) on
// `stream`. nms, nms_sweep and soft_nms synchronise `stream` once, to return the counts;
// matrix_nms does not synchronise.
template <typename T>
index_t nms_cuda(const T* boxes, const double* scores, const long long* classes, index_t n,
                 double iou_threshold, index_t* keep, void* stream);
// thresholds and counts are host arrays of nthr values; keep is (nthr, n) on the device.
template <typename T>
void nms_sweep_cuda(const T* boxes, const double* scores, const long long* classes, index_t n,
                    const double* thresholds, int nthr, index_t* keep, index_t* counts, void* stream);
template <typename T>
index_t soft_nms_cuda(const T* boxes, const T* scores, index_t n, T iou_threshold, T sigma,
                      T min_score, int method, index_t* keep, T* new_scores, void* stream);
template <typename T>
void matrix_nms_cuda(const T* boxes, const T* scores, const long long* labels, index_t n, int kernel,
                     T sigma, T* out, void* stream);
// multiclass_nms_cpu's contract on the device, with no host synchronisation and no allocation:
// `workspace` (device memory, workspace_bytes long) holds at least one image's temporaries
// (multiclass_nms_workspace_bytes(1, n, c, k)); batches run through it a group at a time.
size_t multiclass_nms_workspace_bytes(index_t images, index_t n, index_t c, index_t k);
template <typename T>
void multiclass_nms_cuda(const T* boxes, const T* scores, index_t batch, index_t n, index_t c,
                         index_t cb, double iou_threshold, double score_threshold,
                         index_t max_per_class, index_t k, index_t* num, T* out_boxes, T* out_scores,
                         index_t* out_classes, index_t* out_indices, void* workspace,
                         size_t workspace_bytes, void* stream);


// Bit-packed binary masks on the GPU (csrc/cuda/mask_*.cu, resolve_overlaps.cu; layout and IoU
// rule: fastiou/mask_math.h): the same results as the CPU loops. bits are (n, h, ww) 64-bit
// words with ww = mask_words(w); boxes int32 (n, 4) x0, y0, x1, y1 (exclusive max); areas int64.
// h * ww < 2^31 and w < 2^31 - 64 (std::invalid_argument otherwise). Temporaries are
// stream-ordered allocations on `stream`; only mask_nms synchronises (to return its count).
void pack_masks_cuda(const uint8_t* masks, unsigned long long* bits, int* boxes, long long* areas, index_t n,
                     index_t h, index_t w, void* stream);
void unpack_masks_cuda(const unsigned long long* bits, uint8_t* out, index_t n, index_t h, index_t w,
                       void* stream);
void packed_stats_cuda(const unsigned long long* bits, int* boxes, long long* areas, index_t n, index_t h,
                       index_t ww, void* stream);
// out (n, m) float32.
void mask_iou_cuda(const unsigned long long* bits1, const int* boxes1, const long long* areas1, index_t n,
                   const unsigned long long* bits2, const int* boxes2, const long long* areas2, index_t m,
                   index_t h, index_t ww, float* out, void* stream);
// keep[:K] = the kept masks' indices in ranking order; returns K.
index_t mask_nms_cuda(const unsigned long long* bits, const int* boxes, const long long* areas,
                      const double* scores, index_t n, index_t h, index_t ww, double iou_threshold,
                      index_t* keep, void* stream);
void mask_matrix_nms_cuda(const unsigned long long* bits, const int* boxes, const long long* areas,
                          const float* scores, const long long* labels, index_t n, index_t h, index_t ww, int kernel,
                          float sigma, float* out, void* stream);
// out (n, h, ww): each set bit kept only in the best-ranked mask that has it.
void resolve_overlaps_cuda(const unsigned long long* bits, const double* scores, unsigned long long* out, index_t n,
                           index_t h, index_t ww, void* stream);
// nms's greedy pass (csrc/cuda/nms.cu) over a suppression bitmask of n ranked items in the
// layout of nms_mask_kernel (csrc/kernels/nms.cuh, no classes): keep[:K] = order[p] of the kept
// ranks p; returns K (one synchronisation of `stream`).
index_t nms_bitmask_reduce_cuda(const unsigned long long* mask, index_t n, const index_t* order, index_t* keep,
                                void* stream);

// Anchors and matching (csrc/cpu/anchors.cpp, box_iou_max.cpp; csrc/cuda/anchors.cu,
// box_iou_max.cu; math in fastiou/anchor_math.h). levels (nlev, 5) int64: H, W, A, first row of
// the level's cell anchors in `cells` (rows of 4), first output row; strides (nlev, 2): stride_h,
// stride_w; out (sum H*W*A, 4).
template <typename T>
void anchor_grid_cpu(const T* cells, const int64_t* levels, const double* strides, index_t nlev,
                     double offset, T* out);
template <typename T>
void anchor_grid_cuda(const T* cells, const long long* levels, const double* strides, index_t nlev,
                      double offset, T* out, index_t total, void* stream);
// Row maxima of IoU(boxes1[b], boxes2[b, :counts[b]]) without the matrix: boxes1 (batch1, n, 4)
// with batch1 = 1 (shared by every item) or batch; boxes2 (batch, m, 4); values / indices
// (batch, n); an item with no columns gives 0 / -1.
template <typename T>
void box_iou_max_cpu(const T* boxes1, index_t batch1, const T* boxes2, const int64_t* counts,
                     index_t batch, index_t n, index_t m, T* values, int64_t* indices);
template <typename T>
void box_iou_max_cuda(const T* boxes1, index_t batch1, const T* boxes2, const long long* counts,
                      index_t batch, index_t n, index_t m, T* values, long long* indices,
                      void* stream);
// torchvision's Matcher on IoU(anchors[b], gt[b, :counts[b]]) without the matrix: matches
// (batch, n) int64; an item with no gt gives all -1.
template <typename T>
void match_boxes_cpu(const T* anchors, index_t batch1, const T* gt, const int64_t* counts,
                     index_t batch, index_t n, index_t m, double high, double low, bool lowq,
                     int64_t* matches);
template <typename T>
void match_boxes_cuda(const T* anchors, index_t batch1, const T* gt, const long long* counts,
                      index_t batch, index_t n, index_t m, double high, double low, bool lowq,
                      long long* matches, void* stream);

}  // namespace fastiou
