// Packing dense masks into bits (mask_pack), back (mask_unpack), and the stats of packed masks
// (packed_stats), on the CPU; layout in fastiou/mask_math.h.
//
// mask_pack reads every byte once and writes an eighth of that: it runs at memory bandwidth.
// Each 64-pixel word is built from 64 bytes: with AVX2 (chosen at run time), two 32-byte
// compares with zero and two movemasks; otherwise eight 8-byte loads, each folded to 8 flag
// bits with a carry trick and a multiply. The tight box and the area come from the words as
// they are written: a row is in the box when the OR of its words is non-zero, the columns from
// the OR of every row's words, the area from their popcounts. Parallel over pieces of rows
// (OpenMP; a mask's pieces are joined after).
#include <algorithm>
#include <cstring>
#include <vector>

#include "mask_common.h"
#include "fastiou/ops.h"

#if FASTIOU_MASK_X86
#include <immintrin.h>
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mask_pack.cpp assumes a little-endian CPU (byte i of a 64-bit load is its bits 8i..8i+7)"
#endif

namespace fastiou {
namespace {

using namespace mask_detail;

// Bit i (i < 8) set when byte i of v is non-zero.
FASTIOU_HD uint64_t byte_flags(uint64_t v) {
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
  uint64_t t = ((v & low7) + low7) | v;   // bit 7 of each byte: the byte is non-zero
  t = (t >> 7) & 0x0101010101010101ull;   // one bit at 8i
  return (t * 0x0102040810204080ull) >> 56;  // bit 8i -> bit 56 + i (no carries reach them)
}

// The word of the 64 bytes at p (all inside the row).
FASTIOU_HD uint64_t word_portable(const uint8_t* p) {
  uint64_t word = 0;
  for (int q = 0; q < 8; ++q) {
    uint64_t v;
    std::memcpy(&v, p + 8 * q, 8);
    word |= byte_flags(v) << (8 * q);
  }
  return word;
}

// The word of the last, partial group: bytes p[0..k), k < 64.
FASTIOU_HD uint64_t word_tail(const uint8_t* p, index_t k) {
  uint64_t word = 0;
  for (index_t b = 0; b < k; ++b) word |= static_cast<uint64_t>(p[b] != 0) << b;
  return word;
}

// out[k] = the words of the first `full` 64-byte groups of a row, with AVX2: per group two
// 32-byte compares with zero and two movemasks. Not inlined into a plain function (the
// intrinsics need the avx2 target); pack_one_avx2 may inline it.
#if FASTIOU_MASK_X86
FASTIOU_TARGET_AVX2 void row_words_avx2(const uint8_t* row, uint64_t* out, index_t full) {
  const __m256i z = _mm256_setzero_si256();
  for (index_t k = 0; k < full; ++k) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 64 * k));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 64 * k + 32));
    const uint32_t za = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, z)));
    const uint32_t zb = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, z)));
    out[k] = ~(static_cast<uint64_t>(za) | (static_cast<uint64_t>(zb) << 32));
  }
}
// Whether the first `full` 64-byte groups of a row are all zero (large objects leave most rows
// of their masks empty: such a row costs its loads and ORs, not its compares and stats).
FASTIOU_TARGET_AVX2 bool row_zero_avx2(const uint8_t* row, index_t full) {
  __m256i acc = _mm256_setzero_si256();
  for (index_t k = 0; k < full; ++k) {
    acc = _mm256_or_si256(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 64 * k)));
    acc = _mm256_or_si256(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 64 * k + 32)));
  }
  return _mm256_testz_si256(acc, acc) != 0;
}
#else
bool row_zero_avx2(const uint8_t*, index_t) { return false; }
void row_words_avx2(const uint8_t* row, uint64_t* out, index_t full) {
  for (index_t k = 0; k < full; ++k) out[k] = word_portable(row + 64 * k);
}
#endif

// Writes a mask's tight box from its row extent [y0, y1) and the OR of its rows' words.
FASTIOU_HD void finish_box(const uint64_t* col, index_t ww, index_t y0, index_t y1, int32_t* box) {
  if (y0 < 0) {
    box[0] = box[1] = box[2] = box[3] = 0;
    return;
  }
  index_t k0 = 0, k1 = ww - 1;
  while (col[k0] == 0) ++k0;
  while (col[k1] == 0) --k1;
  box[0] = static_cast<int32_t>(64 * k0 + __builtin_ctzll(col[k0]));
  box[1] = static_cast<int32_t>(y0);
  box[2] = static_cast<int32_t>(64 * k1 + 64 - __builtin_clzll(col[k1]));
  box[3] = static_cast<int32_t>(y1);
}

// The running box and area of one mask, fed row by row with its words (pack_one, stats_one):
// the OR of every row's words (`col`, ww words of scratch) for the columns, the first and last
// non-empty rows, the popcount.
struct MaskStats {
  uint64_t* col;
  index_t ww, y0 = -1, y1 = -1;
  long long cnt = 0;
  uint64_t any = 0;  // OR of the current row's words

  MaskStats(uint64_t* scratch, index_t words) : col(scratch), ww(words) {
    std::fill(col, col + ww, uint64_t(0));
  }
  FASTIOU_HD void add(index_t k, uint64_t word) {
    any |= word;
    col[k] |= word;
    cnt += popcount64(word);
  }
  FASTIOU_HD void end_row(index_t y) {
    if (any) {
      if (y0 < 0) y0 = y;
      y1 = y + 1;
    }
    any = 0;
  }
  void finish(int32_t* box, int64_t* area) const {
    finish_box(col, ww, y0, y1, box);
    *area = cnt;
  }
};

// What a piece of a mask (rows [r0, r1), packed on its own: pack_rows_part) contributes to its
// box and area; the OR of its rows' words is kept beside it (ww words a piece).
struct PartStats {
  index_t y0, y1;
  long long cnt;
};

// Packs rows [r0, r1) of a mask (the mask's first row at m, its first word at bits) and writes
// their stats to *part and col (ww words).
template <bool Avx2>
FASTIOU_HD void pack_part(const uint8_t* __restrict__ m, uint64_t* __restrict__ bits, index_t r0,
                          index_t r1, index_t w, PartStats* part, uint64_t* __restrict__ col) {
  const index_t ww = mask_words(w), full = w >> 6;
  MaskStats st(col, ww);
  for (index_t y = r0; y < r1; ++y) {
    const uint8_t* row = m + y * w;
    uint64_t* out = bits + y * ww;
    if (Avx2 && row_zero_avx2(row, full)) {  // then only the tail can hold pixels
      std::fill(out, out + full, uint64_t(0));
      if (full < ww) {
        const uint64_t word = word_tail(row + 64 * full, w - 64 * full);
        out[full] = word;
        st.add(full, word);
      }
      st.end_row(y);
      continue;
    }
    if (Avx2) row_words_avx2(row, out, full);  // then read back from L1
    for (index_t k = 0; k < full; ++k) {
      const uint64_t word = Avx2 ? out[k] : word_portable(row + 64 * k);
      if (!Avx2) out[k] = word;
      st.add(k, word);
    }
    if (full < ww) {
      const uint64_t word = word_tail(row + 64 * full, w - 64 * full);
      out[full] = word;
      st.add(full, word);
    }
    st.end_row(y);
  }
  *part = PartStats{st.y0, st.y1, st.cnt};
}

FASTIOU_TARGET_AVX2 void pack_part_avx2(const uint8_t* m, uint64_t* bits, index_t r0, index_t r1,
                                        index_t w, PartStats* part, uint64_t* col) {
  pack_part<true>(m, bits, r0, r1, w, part, col);
}
void pack_part_base(const uint8_t* m, uint64_t* bits, index_t r0, index_t r1, index_t w,
                    PartStats* part, uint64_t* col) {
  pack_part<false>(m, bits, r0, r1, w, part, col);
}

// A mask's box and area from its pieces' stats (parts pieces; their column ORs in col, stride
// words apart).
void join_parts(const PartStats* part, uint64_t* col, index_t parts, index_t ww, index_t stride,
                int32_t* box, int64_t* area) {
  index_t y0 = -1, y1 = -1;
  long long cnt = 0;
  for (index_t p = 0; p < parts; ++p) {
    cnt += part[p].cnt;
    if (part[p].y0 < 0) continue;
    if (y0 < 0) y0 = part[p].y0;
    y1 = part[p].y1;
    if (p > 0)
      for (index_t k = 0; k < ww; ++k) col[k] |= col[p * stride + k];
  }
  finish_box(col, ww, y0, y1, box);
  *area = cnt;
}

// Box and area of one packed mask.
FASTIOU_HD void stats_one(const uint64_t* __restrict__ bits, index_t h, index_t ww, int32_t* box,
                          int64_t* area, uint64_t* __restrict__ col) {
  MaskStats st(col, ww);
  for (index_t y = 0; y < h; ++y) {
    const uint64_t* row = bits + y * ww;
    for (index_t k = 0; k < ww; ++k) st.add(k, row[k]);
    st.end_row(y);
  }
  st.finish(box, area);
}

FASTIOU_TARGET_POPCNT void stats_one_popcnt(const uint64_t* bits, index_t h, index_t ww,
                                            int32_t* box, int64_t* area, uint64_t* col) {
  stats_one(bits, h, ww, box, area, col);
}
void stats_one_base(const uint64_t* bits, index_t h, index_t ww, int32_t* box, int64_t* area,
                    uint64_t* col) {
  stats_one(bits, h, ww, box, area, col);
}

// Packs `rows` rows (row stride sh bytes, w pixels, unit column stride) into rows * ww words.
template <bool Avx2>
FASTIOU_HD void pack_rows_impl(const uint8_t* __restrict__ m, index_t rows, index_t w, index_t sh,
                               uint64_t* __restrict__ out) {
  const index_t ww = mask_words(w), full = w >> 6;
  for (index_t y = 0; y < rows; ++y, out += ww) {
    const uint8_t* row = m + y * sh;
    if (Avx2 && row_zero_avx2(row, full)) {
      std::fill(out, out + full, uint64_t(0));
    } else if (Avx2) {
      row_words_avx2(row, out, full);
    } else {
      for (index_t k = 0; k < full; ++k) out[k] = word_portable(row + 64 * k);
    }
    if (full < ww) out[full] = word_tail(row + 64 * full, w - 64 * full);
  }
}

FASTIOU_TARGET_AVX2 void pack_rows_avx2(const uint8_t* m, index_t rows, index_t w, index_t sh,
                                        uint64_t* out) {
  pack_rows_impl<true>(m, rows, w, sh, out);
}
void pack_rows_base(const uint8_t* m, index_t rows, index_t w, index_t sh, uint64_t* out) {
  pack_rows_impl<false>(m, rows, w, sh, out);
}

// Masks of zero height or width: empty boxes, no pixels.
void no_pixels(int32_t* boxes, int64_t* areas, index_t n) {
  std::fill(boxes, boxes + 4 * n, 0);
  std::fill(areas, areas + n, int64_t(0));
}

}  // namespace

namespace mask_detail {
void pack_rows(const uint8_t* m, index_t rows, index_t w, index_t sh, uint64_t* out) {
  static const auto fn = cpu_has_avx2() ? pack_rows_avx2 : pack_rows_base;
  fn(m, rows, w, sh, out);
}
}  // namespace mask_detail

// A mask is packed in pieces of rows, in parallel: pieces of kPieceBytes of input or more (a
// smaller mask is one piece), at most 64 a mask, so that one large mask is shared by the threads
// too and a thread that loses its core holds up a small piece only.
constexpr index_t kPieceBytes = 1 << 18;
// No threads below this many input bytes (measured: benchmarks/thread_thresholds.py).
constexpr index_t kParallelPack = 1 << 20;

void mask_pack_cpu(const uint8_t* masks, uint64_t* bits, int32_t* boxes, int64_t* areas,
                   index_t n, index_t h, index_t w) {
  if (n <= 0) return;
  const index_t ww = mask_words(w);
  if (h <= 0 || w <= 0) {
    no_pixels(boxes, areas, n);
    return;
  }
  const index_t want = std::max<index_t>((kPieceBytes + w - 1) / w, (h + 63) / 64);
  const index_t per = (h + want - 1) / want;  // pieces a mask
  const index_t rows = (h + per - 1) / per;   // rows a piece
  const index_t pieces = n * per;
  // Each piece's column OR in whole cache lines of its own (every row ORs into it: two threads
  // writing one line would pass it back and forth for every word).
  const index_t stride = (ww + 7) & ~index_t(7);
  std::vector<PartStats> part;
  std::vector<uint64_t> colv;
  oom_named([&] { return "pack_masks: out of memory for the stats of " + std::to_string(pieces) + " pieces"; },
            [&] {
              part.resize(static_cast<size_t>(pieces));
              colv.resize(static_cast<size_t>(pieces * stride + 8));
            });
  uint64_t* col = colv.data() + ((8 - (reinterpret_cast<uintptr_t>(colv.data()) / 8) % 8) % 8);
  auto fn = cpu_has_avx2() ? pack_part_avx2 : pack_part_base;
#pragma omp parallel for schedule(dynamic, 1) if (pieces > 1 && n * h * w > kParallelPack)
  for (index_t p = 0; p < pieces; ++p) {
    const index_t k = p / per, r0 = (p % per) * rows;
    fn(masks + k * h * w, bits + k * h * ww, r0, std::min(h, r0 + rows), w, part.data() + p,
       col + p * stride);
  }
  for (index_t k = 0; k < n; ++k)
    join_parts(part.data() + k * per, col + k * per * stride, per, ww, stride, boxes + 4 * k, areas + k);
}

void mask_unpack_cpu(const uint64_t* bits, uint8_t* out, index_t n, index_t h, index_t w) {
  const index_t ww = mask_words(w), rows = n * h;
#pragma omp parallel for schedule(dynamic, 16) if (rows > 1 && rows * w > kParallelMin)
  for (index_t r = 0; r < rows; ++r) {
    const uint64_t* src = bits + r * ww;
    uint8_t* dst = out + r * w;
    for (index_t k = 0; k < ww; ++k) {
      const uint64_t word = src[k];
      const index_t x0 = 64 * k, m = std::min<index_t>(64, w - x0);
      for (index_t b = 0; b < m; ++b) dst[x0 + b] = static_cast<uint8_t>((word >> b) & 1u);
    }
  }
}

void packed_stats_cpu(const uint64_t* bits, int32_t* boxes, int64_t* areas, index_t n, index_t h,
                      index_t ww) {
  if (n <= 0) return;
  if (h <= 0 || ww <= 0) {
    no_pixels(boxes, areas, n);
    return;
  }
  auto fn = cpu_has_popcnt() ? stats_one_popcnt : stats_one_base;
  RegionErrors err;
#pragma omp parallel if (n > 1 && n * h * ww * 64 > kParallelMin)
  {
    std::vector<uint64_t> col;
    err.run([&] { col.resize(static_cast<size_t>(ww)); });
#pragma omp for schedule(dynamic, 1)
    for (index_t k = 0; k < n; ++k)
      if (!err.failed()) fn(bits + k * h * ww, h, ww, boxes + 4 * k, areas + k, col.data());
  }
  err.rethrow([&] { return "packed_stats: out of memory for a row of " + bytes_text(8.0 * ww) + " a thread"; });
}

}  // namespace fastiou
