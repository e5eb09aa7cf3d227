// COCO run-length masks on the CPU: the codec and the operations of pycocotools' maskApi.c,
// with the same results (counts strings byte for byte, IoU bit for bit).
//
// An RLE is a list of run lengths over the column-major flattening of an h x w mask,
// alternating background and foreground and starting with a (possibly empty) background run;
// the lengths sum to h * w. Parallelised with OpenMP across masks (encode, decode, area,
// boxes, polygons) or across detections (iou); merge is one serial pass.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu_common.h"
#include "mask_common.h"
#include "fastiou/ops.h"

namespace fastiou {

// ------------------------------------------------------------------------------ strings

const char* rle_error_text(int code) {
  switch (code) {
    case RLE_OK: return "ok";
    case RLE_BAD_CHAR: return "a character outside '0'..'o' (ASCII 48..111)";
    case RLE_TRUNCATED: return "the string ends inside a count (continuation bit set)";
    case RLE_TOO_LONG: return "a count longer than 7 characters";
    case RLE_NEGATIVE: return "a negative run length";
    case RLE_SUM_OVER: return "the run lengths add up to more than h * w";
    case RLE_SUM_UNDER: return "the run lengths add up to less than h * w";
    default: return "an unknown error";
  }
}

int rle_from_string(const char* s, size_t len, uint64_t hw, uint32_t* out, size_t* count) {
  size_t m = 0;
  uint64_t sum = 0;
  int64_t back1 = 0, back2 = 0;  // counts m - 1 and m - 2
  const unsigned char* u = reinterpret_cast<const unsigned char*>(s);
  size_t p = 0;
  int err = RLE_OK;
  while (p < len) {
    int c = static_cast<int>(u[p++]) - 48;
    if (static_cast<unsigned>(c) > 63u) { err = RLE_BAD_CHAR; break; }
    int64_t x = c & 0x1f;
    if (!(c & 0x20)) {  // one character (most counts): 5 bits, sign-extended
      x = (x ^ 0x10) - 0x10;
    } else {  // continuation: 5 more bits a character
      int k = 1;
      while (c & 0x20) {
        if (p >= len) { err = RLE_TRUNCATED; break; }
        if (k >= 7) { err = RLE_TOO_LONG; break; }  // 35 bits hold any delta of uint32 counts
        c = static_cast<int>(u[p++]) - 48;
        if (static_cast<unsigned>(c) > 63u) { err = RLE_BAD_CHAR; break; }
        x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
        ++k;
      }
      if (err) break;
      const int64_t top = int64_t(1) << (5 * k - 1);  // sign-extend the last group
      x = (x ^ top) - top;
    }
    x += m > 2 ? back2 : 0;  // delta against the count two back (kept in registers)
    if (static_cast<uint64_t>(x) > hw - sum) {  // negative, or past h * w
      err = x < 0 ? RLE_NEGATIVE : RLE_SUM_OVER;
      break;
    }
    sum += static_cast<uint64_t>(x);
    out[m++] = static_cast<uint32_t>(x);
    back2 = back1;
    back1 = x;
  }
  if (!err && sum != hw) err = RLE_SUM_UNDER;
  *count = err == RLE_OK ? m : 0;
  return err;
}

int rle_from_string(const char* s, size_t len, uint64_t hw, std::vector<uint32_t>* cnts) {
  cnts->resize(len);  // at most one count per character
  size_t m = 0;
  const int err = rle_from_string(s, len, hw, cnts->data(), &m);
  cnts->resize(m);
  return err;
}

namespace {

// One count, delta-coded against the count two back (i > 2), 5 bits a character.
inline void put_count(std::string* s, int64_t x) {
  bool more = true;
  while (more) {
    int c = static_cast<int>(x & 0x1f);
    x >>= 5;  // arithmetic shift: a negative delta ends at -1
    more = (c & 0x10) ? x != -1 : x != 0;
    if (more) c |= 0x20;
    s->push_back(static_cast<char>(c + 48));
  }
}

// Writes counts as they are produced (the string needs the count two back).
struct CountWriter {
  std::string* s;
  size_t i = 0;
  uint32_t back1 = 0, back2 = 0;  // counts i-1 and i-2
  explicit CountWriter(std::string* out) : s(out) { s->clear(); }
  void add(uint32_t c) {
    put_count(s, i > 2 ? int64_t(c) - int64_t(back2) : int64_t(c));
    back2 = back1;
    back1 = c;
    ++i;
  }
};

}  // namespace

void rle_to_string(const uint32_t* cnts, index_t m, std::string* out) {
  CountWriter wr(out);
  for (index_t i = 0; i < m; ++i) wr.add(cnts[i]);
}

// ------------------------------------------------------------------------------ encode

namespace {

// Transition positions (column-major index where a pixel differs from the one before it; the
// pixel before the first is background) of one mask read through element strides sh, sw: the
// general case (strided views; contiguous rows and columns have the two paths below).
// Rows are read in strips of 64 columns, one 64-bit word a row; XOR with the row above marks
// the columns that change at this row, visited with ctz.
void transitions_strips(const uint8_t* m, index_t h, index_t w, index_t sh, index_t sw,
                        std::vector<uint32_t>* pos, std::vector<uint32_t>* colbuf) {
  colbuf->resize(static_cast<size_t>(64 * h));
  uint32_t* buf = colbuf->data();
  uint32_t ncol[64];
  uint64_t carry = 0;  // value of the last pixel of the previous column
  for (index_t x0 = 0; x0 < w; x0 += 64) {
    const int s = static_cast<int>(std::min<index_t>(64, w - x0));
    std::fill(ncol, ncol + 64, 0u);
    uint64_t first = 0, prev = 0;
    for (index_t y = 0; y < h; ++y) {
      const uint8_t* row = m + y * sh + x0 * sw;
      uint64_t word = 0;
      for (int c = 0; c < s; ++c) word |= static_cast<uint64_t>(row[c * sw] != 0) << c;
      if (y == 0) {
        first = word;
      } else {
        uint64_t diff = word ^ prev;
        while (diff) {
          const int c = __builtin_ctzll(diff);
          buf[c * h + ncol[c]++] = static_cast<uint32_t>(y);
          diff &= diff - 1;
        }
      }
      prev = word;
    }
    for (int c = 0; c < s; ++c) {
      const uint64_t before = c == 0 ? carry : (prev >> (c - 1)) & 1;
      const uint32_t base = static_cast<uint32_t>((x0 + c) * h);
      if (((first >> c) & 1) != before) pos->push_back(base);
      for (uint32_t k = 0; k < ncol[c]; ++k) pos->push_back(base + buf[c * h + k]);
    }
    carry = (prev >> (s - 1)) & 1;
  }
}

// The same for column-contiguous input (Fortran order): each column is one linear scan that
// skips 16 equal bytes at a time.
void transitions_columns(const uint8_t* m, index_t h, index_t w, index_t sw,
                         std::vector<uint32_t>* pos) {
  bool cur = false;
  for (index_t x = 0; x < w; ++x) {
    const uint8_t* col = m + x * sw;
    const uint32_t base = static_cast<uint32_t>(x * h);
    index_t y = 0;
    while (y < h) {
#if defined(__SSE2__)
      const __m128i zero = _mm_setzero_si128();
      const int same = cur ? 0 : 0xffff;
      while (y + 16 <= h) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + y));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)) != same) break;
        y += 16;
      }
#endif
      for (; y < h && (col[y] != 0) == cur; ++y) {
      }
      if (y < h) {
        pos->push_back(base + static_cast<uint32_t>(y));
        cur = !cur;
      }
    }
  }
}

// 64 x 64 bit matrix transpose in place: on entry bit c of a[r] is element (r, c), on return
// bit r of a[c] is. Six rounds, each swapping the off-diagonal halves of every block.
inline void transpose64(uint64_t* a) {
  uint64_t m = 0x00000000ffffffffull;
  for (int j = 32; j != 0; j >>= 1, m ^= m << j) {
    for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
      const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
      a[k] ^= t << j;
      a[k | j] ^= t;
    }
  }
}

// Row-major input with contiguous rows (the usual (N, H, W) array), in one pass at memory
// speed: each band of 64 rows is packed to bits (pack_rows: AVX2 compares when the CPU has
// them) and its 64 x 64 blocks are transposed to column words; a block that is all background
// or all foreground (most of them) is not transposed, and a strip of 64 columns made only of
// such blocks of one value is not walked at all. The other strips' column words are walked in
// order: the pixels that differ from the one before them are word ^ (word << 1 | carry),
// visited with ctz, and become counts at once. Scratch: 64 rows of words, the column words of
// the mixed strips (at most h * w / 8 bytes) and a state per strip.
enum : uint8_t { kStripZero = 0, kStripOne = 1, kStripMixed = 2, kStripNew = 3 };

// Counts from the positions where a pixel differs from the one before it, in order.
struct ChangeWriter {
  CountWriter wr;
  uint64_t done = 0;  // the last change
  explicit ChangeWriter(std::string* out) : wr(out) {}
  __attribute__((noinline)) void bits(uint64_t d, uint64_t base) {  // a change at base + each set bit
    do {
      const uint64_t pos = base + static_cast<uint64_t>(__builtin_ctzll(d));
      wr.add(static_cast<uint32_t>(pos - done));
      done = pos;
      d &= d - 1;
    } while (d);
  }
};

// Walks one column of nb words (the last one holding last_rows rows) after a pixel of value
// prev; returns the column's last pixel.
inline uint64_t walk_column(const uint64_t* __restrict__ col, index_t nb, int last_rows,
                            uint64_t prev, uint64_t base, ChangeWriter* out) {
  for (index_t b = 0; b + 1 < nb; ++b) {
    const uint64_t word = col[b];
    const uint64_t d = word ^ ((word << 1) | prev);
    prev = word >> 63;
    if (d) out->bits(d, base + 64 * static_cast<uint64_t>(b));
  }
  const uint64_t word = col[nb - 1];
  const uint64_t valid = last_rows == 64 ? ~uint64_t(0) : (uint64_t(1) << last_rows) - 1;
  const uint64_t d = (word ^ ((word << 1) | prev)) & valid;
  if (d) out->bits(d, base + 64 * static_cast<uint64_t>(nb - 1));
  return (word >> (last_rows - 1)) & 1;
}

void encode_packed(const uint8_t* m, index_t h, index_t w, index_t sh, std::vector<uint64_t>* bandv,
                   std::vector<uint64_t>* colv, std::vector<uint8_t>* statev, std::string* out) {
  const index_t ww = mask_words(w), nb = (h + 63) >> 6;
  bandv->resize(static_cast<size_t>(66 * ww));
  colv->resize(static_cast<size_t>(64 * ww * nb));
  statev->assign(static_cast<size_t>(ww), kStripNew);
  uint64_t* band = bandv->data();
  uint64_t* any = band + 64 * ww;  // per word column of the band: OR and AND of its rows
  uint64_t* all = any + ww;
  uint64_t* cw = colv->data();  // cw[x * nb + b]: rows 64b..64b+63 of column x, bit r = row 64b + r
  uint8_t* state = statev->data();
  uint64_t blk[64];
  const uint64_t last_word = w % 64 ? (uint64_t(1) << (w % 64)) - 1 : ~uint64_t(0);
  for (index_t b = 0; b < nb; ++b) {
    const index_t rows = std::min<index_t>(64, h - 64 * b);
    mask_detail::pack_rows(m + 64 * b * sh, rows, w, sh, band);
    std::fill(any, any + ww, uint64_t(0));
    std::fill(all, all + ww, ~uint64_t(0));
    for (index_t r = 0; r < rows; ++r) {
      const uint64_t* row = band + r * ww;
      for (index_t k = 0; k < ww; ++k) {
        any[k] |= row[k];
        all[k] &= row[k];
      }
    }
    for (index_t k = 0; k < ww; ++k) {
      const uint64_t valid = k + 1 < ww ? ~uint64_t(0) : last_word;
      const uint8_t kind = any[k] == 0 ? kStripZero : all[k] == valid ? kStripOne : kStripMixed;
      uint8_t& st = state[k];
      if (kind != kStripMixed && (st == kStripNew || st == kind)) {
        st = kind;  // one value so far: its words are written only if the strip turns mixed
        continue;
      }
      uint64_t* dst = cw + 64 * k * nb + b;
      if (st != kStripMixed) {  // turns mixed at this band: write the uniform bands above it
        const uint64_t fill = st == kStripOne ? ~uint64_t(0) : 0;
        for (index_t c = 0; c < 64; ++c)
          for (index_t bb = 0; bb < b; ++bb) dst[c * nb + bb - b] = fill;
        st = kStripMixed;
      }
      if (kind != kStripMixed) {
        const uint64_t fill = kind == kStripOne ? ~uint64_t(0) : 0;
        for (index_t c = 0; c < 64; ++c) dst[c * nb] = fill;
        continue;
      }
      for (index_t r = 0; r < rows; ++r) blk[r] = band[r * ww + k];
      std::fill(blk + rows, blk + 64, uint64_t(0));
      transpose64(blk);
      for (index_t c = 0; c < 64; ++c) dst[c * nb] = blk[c];
    }
  }
  ChangeWriter wr(out);
  const int last_rows = static_cast<int>(h - 64 * (nb - 1));
  uint64_t prev = 0;  // the pixel before the next one
  for (index_t k = 0; k < ww; ++k) {
    if (state[k] != kStripMixed) {  // one value throughout: at most a change at its first pixel
      const uint64_t v = state[k] == kStripOne;
      if (v != prev) wr.bits(1, static_cast<uint64_t>(64 * k * h));
      prev = v;
      continue;
    }
    const index_t x1 = std::min<index_t>(w, 64 * k + 64);
    for (index_t x = 64 * k; x < x1; ++x)
      prev = walk_column(cw + x * nb, nb, last_rows, prev, static_cast<uint64_t>(x * h), &wr);
  }
  wr.wr.add(static_cast<uint32_t>(static_cast<uint64_t>(h * w) - wr.done));
}

void runs_from_transitions(const std::vector<uint32_t>& pos, uint64_t hw, std::string* out) {
  CountWriter wr(out);
  uint32_t prev = 0;
  for (uint32_t t : pos) {
    wr.add(t - prev);
    prev = t;
  }
  wr.add(static_cast<uint32_t>(hw - prev));
}

}  // namespace

void rle_encode_cpu(const uint8_t* masks, index_t n, index_t h, index_t w, index_t sn,
                    index_t sh, index_t sw, std::string* out) {
  RegionErrors err;
#pragma omp parallel if (n > 1 && n * h * w > (1 << 20))
  {
    std::vector<uint32_t> pos, colbuf;
    std::vector<uint64_t> band, cols;
    std::vector<uint8_t> strips;
#pragma omp for schedule(dynamic, 1)
    for (index_t i = 0; i < n; ++i)
      err.run([&] {
        pos.clear();
        const uint8_t* m = masks + i * sn;
        if (h > 0 && w > 0 && sw == 1) {
          encode_packed(m, h, w, sh, &band, &cols, &strips, out + i);
          return;
        }
        if (h > 0 && w > 0) {
          if (sh == 1 && sw != 1)
            transitions_columns(m, h, w, sw, &pos);
          else
            transitions_strips(m, h, w, sh, sw, &pos, &colbuf);
        }
        runs_from_transitions(pos, static_cast<uint64_t>(h * w), out + i);
      });
  }
  err.rethrow([&] {
    return "rle.encode: out of memory for the runs of " + std::to_string(n) + " masks of " +
           std::to_string(h) + " x " + std::to_string(w) + " (up to " +
           bytes_text(9.0 * static_cast<double>(h) * static_cast<double>(w)) +
           " a mask: a count and its text per pixel)";
  });
}

// ------------------------------------------------------------------------------ decode

namespace {

// Column-major runs, read in order: put(dst, len) writes the next len pixels.
struct RunReader {
  const uint32_t* c;
  index_t m, j = 0;
  uint64_t left = 0;  // pixels left in run j - 1
  uint8_t v = 1;      // value of run j - 1 (run 0 is background)
  void put(uint8_t* dst, uint64_t len) {
    while (len > 0) {
      if (left == 0) {
        if (j >= m) return;  // the runs sum to h * w (checked by the parser)
        left = c[j++];
        v = !v;
        continue;
      }
      const uint64_t k = left < len ? left : len;
      std::memset(dst, v, k);
      dst += k;
      len -= k;
      left -= k;
    }
  }
};

// Row-major output, the mirror of encode_packed: the runs set bit ranges in column words (each
// column nb words, bit r of word b = row 64b + r), each 64 x 64 block of them is transposed to
// row words (all-background and all-foreground blocks are not), and the row words are expanded
// to bytes 8 at a time through a table. Scratch: the column words (h * w / 8 bytes a thread).
struct ExpandTable {
  uint64_t v[256];  // byte i -> 8 bytes, byte k = bit k of i
  ExpandTable() {
    for (int i = 0; i < 256; ++i) {
      uint64_t x = 0;
      for (int k = 0; k < 8; ++k) x |= static_cast<uint64_t>((i >> k) & 1) << (8 * k);
      v[i] = x;
    }
  }
};
const ExpandTable kExpand;

// The n <= 64 bytes of a row from its word.
inline void expand_word(uint64_t word, uint8_t* dst, index_t n) {
  if (n == 64 && (word == 0 || word == ~uint64_t(0))) {
    std::memset(dst, word ? 1 : 0, 64);
    return;
  }
  index_t x = 0;
  for (; x + 8 <= n; x += 8, word >>= 8) {
    const uint64_t bytes = kExpand.v[word & 0xff];
    std::memcpy(dst + x, &bytes, 8);
  }
  for (; x < n; ++x, word >>= 1) dst[x] = static_cast<uint8_t>(word & 1);
}

// Sets bits [a, b) of words.
inline void set_bits(uint64_t* words, uint64_t a, uint64_t b) {
  const uint64_t wa = a >> 6, wb = (b - 1) >> 6;
  const uint64_t ma = ~uint64_t(0) << (a & 63), mb = ~uint64_t(0) >> (63 - ((b - 1) & 63));
  if (wa == wb) {
    words[wa] |= ma & mb;
    return;
  }
  words[wa] |= ma;
  for (uint64_t k = wa + 1; k < wb; ++k) words[k] = ~uint64_t(0);
  words[wb] |= mb;
}

void decode_rows(const uint32_t* c, index_t m, index_t h, index_t w, std::vector<uint64_t>* colv,
                 uint8_t* out) {
  const index_t ww = mask_words(w), nb = (h + 63) >> 6;
  const uint64_t per = static_cast<uint64_t>(64 * nb);  // bits a column
  colv->assign(static_cast<size_t>(64 * ww * nb), 0);
  uint64_t* cw = colv->data();
  uint64_t x = 0, y = 0;  // the pixel after the runs so far
  const uint64_t uh = static_cast<uint64_t>(h);
  for (index_t j = 0; j < m; ++j) {
    uint64_t len = c[j];
    if (!(j & 1)) {  // background: move on
      y += len;
      if (y >= uh) {
        x += y / uh;
        y %= uh;
      }
      continue;
    }
    while (len > 0) {  // foreground, a column at a time
      const uint64_t take = std::min(len, uh - y);
      set_bits(cw, x * per + y, x * per + y + take);
      len -= take;
      y += take;
      if (y == uh) {
        y = 0;
        ++x;
      }
    }
  }
  uint64_t blk[64];
  for (index_t b = 0; b < nb; ++b) {
    const index_t rows = std::min<index_t>(64, h - 64 * b);
    for (index_t k = 0; k < ww; ++k) {
      const index_t x0 = 64 * k, cols = std::min<index_t>(64, w - x0);
      uint64_t any = 0, all = ~uint64_t(0);
      for (index_t cc = 0; cc < 64; ++cc) {
        blk[cc] = cc < cols ? cw[(x0 + cc) * nb + b] : 0;
        any |= blk[cc];
        all &= blk[cc];
      }
      uint8_t* dst = out + 64 * b * w + x0;
      if (any == 0 || (all == ~uint64_t(0) && cols == 64)) {
        for (index_t r = 0; r < rows; ++r) std::memset(dst + r * w, any ? 1 : 0, static_cast<size_t>(cols));
        continue;
      }
      transpose64(blk);
      for (index_t r = 0; r < rows; ++r) expand_word(blk[r], dst + r * w, cols);
    }
  }
}

}  // namespace

// Row-major output is decoded through column words (decode_rows); column-major output is the
// runs written as they come.
void rle_decode_cpu(const uint32_t* const* cnts, const index_t* m, index_t n, index_t h,
                    index_t w, bool column_major, uint8_t* out) {
  const index_t hw = h * w;
  RegionErrors err;
#pragma omp parallel if (n > 1 && n * hw > (1 << 20))
  {
    std::vector<uint64_t> cols;
#pragma omp for schedule(dynamic, 1)
    for (index_t i = 0; i < n; ++i) {
      if (err.failed()) continue;
      if (column_major || h <= 0 || w <= 0) {
        RunReader rd{cnts[i], m[i]};
        rd.put(out + i * hw, static_cast<uint64_t>(hw));
        continue;
      }
      err.run([&] { decode_rows(cnts[i], m[i], h, w, &cols, out + i * hw); });
    }
  }
  err.rethrow([&] {
    return "rle.decode: out of memory for " + bytes_text(static_cast<double>(h) * static_cast<double>(w) / 8) +
           " of column words a thread";
  });
}

// ------------------------------------------------------------------------------ area, boxes

void rle_area_cpu(const uint32_t* const* cnts, const index_t* m, index_t n, uint32_t* out) {
  for (index_t i = 0; i < n; ++i) {
    uint32_t a = 0;
    for (index_t j = 1; j < m[i]; j += 2) a += cnts[i][j];
    out[i] = a;
  }
}

namespace {

// Division by a fixed h (a 32-bit division costs ~25 cycles): the quotient from a double
// reciprocal, corrected to be exact.
struct DivH {
  uint64_t h;
  double inv;
  explicit DivH(uint32_t hh) : h(hh), inv(hh ? 1.0 / hh : 0.0) {}
  void divmod(uint32_t v, uint32_t* q, uint32_t* r) const {
    uint64_t x = static_cast<uint64_t>(static_cast<int64_t>(static_cast<double>(v) * inv));
    if (x * h > v) --x;
    else if ((x + 1) * h <= v) ++x;
    *q = static_cast<uint32_t>(x);
    *r = static_cast<uint32_t>(v - x * h);
  }
};

}  // namespace

namespace {

// One walk over the runs of a mask: its box as pycocotools 2.0.11's rleToBbox computes it (in its
// uint32 arithmetic: a mask whose foreground runs are all empty wraps the width, as it does), its area
// and its foreground pieces, each given to put(x, y0, y1): rows [y0, y1) of column x, in order of
// position (a run that crosses columns is one piece a column; only the box's columns have any).
template <typename Put>
void scan_mask(const uint32_t* c, index_t m, uint32_t h, uint32_t w, double* o, uint32_t* area,
               Put&& put) {
  uint32_t a = 0;
  const index_t me = (m / 2) * 2;
  if (me == 0) {
    o[0] = o[1] = o[2] = o[3] = 0.0;
    *area = 0;
    return;
  }
  const DivH div(h);
  uint32_t xs = w, ys = h, xe = 0, ye = 0;
  uint64_t x = 0, y = 0;  // the position before run j; y < h
  auto advance = [&](uint64_t* px, uint64_t* py, uint64_t len) {
    uint64_t yy = *py + len;
    if (yy >= h) {
      yy -= h;
      ++*px;
      if (yy >= h) {
        uint32_t q, r;
        div.divmod(static_cast<uint32_t>(yy), &q, &r);
        *px += q;
        yy = r;
      }
    }
    *py = yy;
  };
  for (index_t j = 0; j < me; j += 2) {  // (background, foreground) pairs
    advance(&x, &y, c[j]);  // an empty run moves nothing
    const uint64_t len = c[j + 1];
    if (len == 0) continue;  // pycocotools skips empty fg runs
    a += static_cast<uint32_t>(len);
    xs = std::min<uint32_t>(xs, static_cast<uint32_t>(x));
    if (y + len <= h) {  // within one column
      put(x, y, y + len);
      xe = std::max<uint32_t>(xe, static_cast<uint32_t>(x));
      ys = std::min<uint32_t>(ys, static_cast<uint32_t>(y));
      ye = std::max<uint32_t>(ye, static_cast<uint32_t>(y + len - 1));
      y += len;
      if (y == h) {
        y = 0;
        ++x;
      }
      continue;
    }
    // Across columns: the box spans every row (x < x1).
    uint64_t x1 = x, y1 = y;  // the run's last pixel
    advance(&x1, &y1, len - 1);
    xe = std::max<uint32_t>(xe, static_cast<uint32_t>(x1));
    ys = 0;
    ye = h - 1;
    for (uint64_t left = len; left > 0;) {  // one piece a column
      const uint64_t take = std::min<uint64_t>(left, h - y);
      put(x, y, y + take);
      left -= take;
      y += take;
      if (y == h) {
        y = 0;
        ++x;
      }
    }
  }
  o[0] = xs;
  o[2] = static_cast<uint32_t>(xe - xs + 1);
  o[1] = ys;
  o[3] = static_cast<uint32_t>(ye - ys + 1);
  *area = a;
}

}  // namespace

void rle_to_bbox_cpu(const uint32_t* const* cnts, const index_t* m, const int64_t* sizes,
                     index_t n, double* out) {
  for (index_t i = 0; i < n; ++i) {
    uint32_t area;
    scan_mask(cnts[i], m[i], static_cast<uint32_t>(sizes[2 * i]),
              static_cast<uint32_t>(sizes[2 * i + 1]), out + 4 * i, &area,
              [](uint64_t, uint64_t, uint64_t) {});
  }
}

// ------------------------------------------------------------------------------ merge

namespace {

// Union (or intersection) of a and b, in pycocotools' rleMerge walk: the chunk boundaries and
// the counts it writes (including a leading empty run) are the same.
void merge_two(const std::vector<uint32_t>& a, const uint32_t* b, index_t mb, bool intersect,
               std::vector<uint32_t>* out) {
  out->clear();
  const index_t ma = static_cast<index_t>(a.size());
  uint32_t ca = ma ? a[0] : 0, cb = mb ? b[0] : 0, cc = 0;
  bool v = false, va = false, vb = false;
  index_t ia = 1, ib = 1;
  uint32_t ct = 1;
  while (ct > 0) {
    const uint32_t c = std::min(ca, cb);
    cc += c;
    ct = 0;
    ca -= c;
    if (!ca && ia < ma) {
      ca = a[ia++];
      va = !va;
    }
    ct += ca;
    cb -= c;
    if (!cb && ib < mb) {
      cb = b[ib++];
      vb = !vb;
    }
    ct += cb;
    const bool vp = v;
    v = intersect ? (va && vb) : (va || vb);
    if (v != vp || ct == 0) {
      out->push_back(cc);
      cc = 0;
    }
  }
}


// Runs without the empty ones inside (each joins its two neighbours), as rleFrPoly writes them.
std::vector<uint32_t> without_empty_runs(const uint32_t* c, index_t m) {
  std::vector<uint32_t> out;
  if (m == 0) return out;
  out.push_back(c[0]);
  for (index_t j = 1; j < m; ++j) {
    if (c[j] > 0) out.push_back(c[j]);
    else if (++j < m) out.back() += c[j];
  }
  return out;
}

}  // namespace

bool rle_merge_cpu(const uint32_t* const* cnts, const index_t* m, const int64_t* sizes, index_t n,
                   bool intersect, std::vector<uint32_t>* out) {
  out->clear();
  if (n == 0) return false;
  const uint64_t hw = static_cast<uint64_t>(sizes[0]) * static_cast<uint64_t>(sizes[1]);
  out->assign(cnts[0], cnts[0] + m[0]);
  std::vector<uint32_t> acc;
  for (index_t i = 1; i < n; ++i) {
    if (sizes[2 * i] != sizes[0] || sizes[2 * i + 1] != sizes[1]) {
      out->clear();
      return false;
    }
    acc.swap(*out);
    merge_two(acc, cnts[i], m[i], intersect, out);
    uint64_t total = 0;
    for (uint32_t c : *out) total += c;
    if (total != hw) {
      // pycocotools' walk stops early when both masks reach an empty run at once (possible only
      // with empty runs inside, which no pycocotools encoder writes) and returns counts short of
      // h * w; the same walk over the runs without them is complete.
      const std::vector<uint32_t> a = without_empty_runs(acc.data(), static_cast<index_t>(acc.size()));
      const std::vector<uint32_t> b = without_empty_runs(cnts[i], m[i]);
      merge_two(a, b.data(), static_cast<index_t>(b.size()), intersect, out);
    }
  }
  return true;
}

// ------------------------------------------------------------------------------ iou

namespace {

// pycocotools' bbIou for one pair.
inline double box_pair_iou(const double* d, const double* g, bool crowd) {
  const double da = d[2] * d[3], ga = g[2] * g[3];
  const double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
  if (w <= 0) return 0.0;
  const double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
  if (h <= 0) return 0.0;
  const double i = w * h, u = crowd ? da : da + ga - i;
  return i / u;
}

// Pixels in both: the foreground intervals [start, end) of the two masks, merged from the
// first interval that ends after `from` (the start of the columns both boxes cover).
uint64_t intersection(const uint32_t* a, index_t na, const uint32_t* b, index_t nb, uint32_t from,
                      uint32_t to) {
  // a, b: interleaved (start, end) pairs, sorted.
  auto first_after = [from](const uint32_t* iv, index_t n) {
    index_t lo = 0, hi = n;  // first interval with end > from
    while (lo < hi) {
      const index_t mid = (lo + hi) / 2;
      if (iv[2 * mid + 1] > from) hi = mid; else lo = mid + 1;
    }
    return lo;
  };
  index_t i = first_after(a, na), j = first_after(b, nb);
  uint64_t inter = 0;
  // Branch-free merge step: the interval that ends first advances (both on a tie).
  while (i < na && j < nb) {
    const uint32_t sa = a[2 * i], ea = a[2 * i + 1], sb = b[2 * j], eb = b[2 * j + 1];
    const uint32_t s = sa > sb ? sa : sb;
    if (s >= to) break;
    const uint32_t e = ea < eb ? ea : eb;
    inter += e > s ? e - s : 0;
    i += ea <= eb;
    j += eb <= ea;
  }
  return inter;
}

// Foreground intervals [start, end) of one mask's non-empty foreground runs, written at out
// (room for m / 2 pairs); returns how many. Branch-free: an empty run's pair is written and
// then overwritten by the next one.
inline size_t intervals_of(const uint32_t* c, index_t m, uint32_t* out) {
  uint32_t pos = 0;
  size_t k = 0;
  for (index_t j = 1; j < m; j += 2) {
    pos += c[j - 1];
    const uint32_t len = c[j];
    out[2 * k] = pos;
    out[2 * k + 1] = pos + len;
    k += len != 0;
    pos += len;
  }
  return k;
}

// Column tables are made for masks up to this wide (scan's scratch rows hold w pieces), below
// 2**31 rows (int32 rows) and with at most kSlots pieces in any column.
constexpr uint64_t kTableMaxW = uint64_t(1) << 20;
constexpr int kSlots = 4;

// Pixels in both of two column tables over the same n columns.
FASTIOU_CLONES uint32_t column_overlap(const int32_t* sa, const int32_t* ea, const int32_t* sb,
                                       const int32_t* eb, index_t n) {
  uint32_t acc = 0;
  for (index_t k = 0; k < n; ++k) {
    const int32_t d = std::min(ea[k], eb[k]) - std::max(sa[k], sb[k]);
    acc += static_cast<uint32_t>(d > 0 ? d : 0);
  }
  return acc;
}

// What the pair walks need of one side's masks: box, area, and a column table or (for the
// masks that have a partner without a table) the intervals. A column table of a mask whose
// columns hold up to k foreground pieces (k <= kSlots; most instance masks have one or two) is
// k slots over its box's columns: slot j holds each column's piece j, rows [s, e), or s = e = 0
// where the column has fewer pieces. A column's pieces are disjoint, so the common pixels of two
// masks are the sum of the overlaps of every slot of one with every slot of the other.
// One per thread, kept between calls (a call per image is a few microseconds of work:
// allocations were a good part of it), and dropped after a call that made it large.
struct Side {
  std::vector<double> box;       // (n, 4) xywh, pycocotools' rleToBbox
  std::vector<uint32_t> area;
  std::vector<uint8_t> slots;    // slots of mask k's table (0: none): slot j's s at
  std::vector<size_t> off;       // tab[off[k] + 2 j ncol], its e ncol after (ncol: box width)
  std::vector<int32_t> tab;
  std::vector<uint8_t> need_iv;  // intervals needed (a partner without a table)
  std::vector<size_t> ivoff;     // intervals of mask k: iv[2 ivoff[k] .. 2 ivoff[k + 1])
  std::vector<uint32_t> iv;
  // scan's scratch: the pieces of one mask, slot j of column x at s[j * ws + x]; all zero
  // between masks and between calls
  std::vector<int32_t> s, e;
  size_t ws = 0;
  bool clean = true;  // the scratch is all zero

  void scan(const uint32_t* const* c, const index_t* m, const int64_t* sizes, index_t n) {
    box.resize(static_cast<size_t>(4 * n));
    area.resize(static_cast<size_t>(n));
    slots.assign(static_cast<size_t>(n), 0);
    off.resize(static_cast<size_t>(n));
    need_iv.assign(static_cast<size_t>(n), 0);
    tab.clear();
    // A kept table of k slots has at most 2 m + 64 k columns in all (two entries each).
    size_t runs = 0;
    for (index_t k = 0; k < n; ++k) runs += static_cast<size_t>(m[k]);
    tab.reserve(2 * (2 * runs + 64 * kSlots * static_cast<size_t>(n)));
    uint64_t wmax = 0;
    for (index_t k = 0; k < n; ++k)
      if (static_cast<uint64_t>(sizes[2 * k + 1]) <= kTableMaxW)
        wmax = std::max<uint64_t>(wmax, static_cast<uint64_t>(sizes[2 * k + 1]));
    if (!clean) {  // a call that failed inside a mask
      std::fill(s.begin(), s.end(), 0);
      std::fill(e.begin(), e.end(), 0);
      clean = true;
    }
    if (ws < wmax) {
      s.assign(kSlots * wmax, 0);
      e.assign(kSlots * wmax, 0);
      ws = wmax;
    }
    for (index_t k = 0; k < n; ++k) {
      const uint64_t h = static_cast<uint64_t>(sizes[2 * k]), w = static_cast<uint64_t>(sizes[2 * k + 1]);
      double* o = box.data() + 4 * k;
      if (!(w <= kTableMaxW && h < (uint64_t(1) << 31))) {
        scan_mask(c[k], m[k], static_cast<uint32_t>(h), static_cast<uint32_t>(w), o, &area[k],
                  [](uint64_t, uint64_t, uint64_t) {});
        continue;
      }
      // Pieces come in order of position, so a column's come one after the other: the slot is
      // one more than the last piece's when that was in the same column.
      int used = 0;  // slots used (more than kSlots: too many pieces in a column)
      int slot = 0;
      uint64_t lastx = ~uint64_t(0);
      int32_t* __restrict__ ps = s.data();
      int32_t* __restrict__ pe = e.data();
      const size_t stride = ws;
      clean = false;
      scan_mask(c[k], m[k], static_cast<uint32_t>(h), static_cast<uint32_t>(w), o, &area[k],
                [&](uint64_t x, uint64_t y0, uint64_t y1) {
                  slot = x == lastx ? slot + 1 : 0;
                  lastx = x;
                  used = std::max(used, slot + 1);
                  if (slot < kSlots) {
                    ps[slot * stride + x] = static_cast<int32_t>(y0);
                    pe[slot * stride + x] = static_cast<int32_t>(y1);
                  }
                });
      if (area[k] != 0) {  // else nothing was written (an empty mask shares nothing)
        const size_t x0 = static_cast<size_t>(o[0]), ncol = static_cast<size_t>(o[2]);
        const int kept = std::min(used, kSlots);
        // A table much longer than the runs cannot pay (the interval walk is short then): none,
        // which also bounds the tables' memory by the counts.
        if (used <= kSlots && static_cast<size_t>(used) * ncol <= 2 * static_cast<size_t>(m[k]) + 64 * used) {
          slots[k] = static_cast<uint8_t>(used);
          off[k] = tab.size();
          for (int j = 0; j < used; ++j) {
            tab.insert(tab.end(), s.begin() + j * stride + x0, s.begin() + j * stride + x0 + ncol);
            tab.insert(tab.end(), e.begin() + j * stride + x0, e.begin() + j * stride + x0 + ncol);
          }
        }
        for (int j = 0; j < kept; ++j) {
          std::fill(s.begin() + j * stride + x0, s.begin() + j * stride + x0 + ncol, 0);
          std::fill(e.begin() + j * stride + x0, e.begin() + j * stride + x0 + ncol, 0);
        }
      }
      clean = true;
    }
  }

  // Pixels in both of mask d's table and g's over the box columns [x0, x1) (both cover them).
  static uint64_t tables_common(const Side& a, index_t d, const Side& b, index_t g, uint64_t x0,
                                uint64_t x1) {
    const double* bd = a.box.data() + 4 * d;
    const double* bg = b.box.data() + 4 * g;
    const size_t nd_col = static_cast<size_t>(bd[2]), ng_col = static_cast<size_t>(bg[2]);
    const int32_t* td = a.tab.data() + a.off[d] + (x0 - static_cast<uint64_t>(bd[0]));
    const int32_t* tg = b.tab.data() + b.off[g] + (x0 - static_cast<uint64_t>(bg[0]));
    const index_t n = static_cast<index_t>(x1 - x0);
    uint64_t acc = 0;
    for (int i = 0; i < a.slots[d]; ++i)
      for (int j = 0; j < b.slots[g]; ++j)
        acc += column_overlap(td + 2 * i * nd_col, td + (2 * i + 1) * nd_col, tg + 2 * j * ng_col,
                              tg + (2 * j + 1) * ng_col, n);
    return acc;
  }

  // The intervals of the masks that need them, written in place (room for m / 2 each).
  void intervals(const uint32_t* const* c, const index_t* m, index_t n) {
    ivoff.resize(static_cast<size_t>(n) + 1);
    size_t room = 0;
    for (index_t k = 0; k < n; ++k)
      if (need_iv[k]) room += static_cast<size_t>(m[k] / 2);
    if (iv.size() < 2 * room) iv.resize(2 * room);
    size_t at = 0;
    ivoff[0] = 0;
    for (index_t k = 0; k < n; ++k) {
      if (need_iv[k]) at += intervals_of(c[k], m[k], iv.data() + 2 * at);
      ivoff[k + 1] = at;
    }
  }

  size_t bytes() const {
    return box.capacity() * sizeof(double) + area.capacity() * 4 + slots.capacity() +
           off.capacity() * sizeof(size_t) + tab.capacity() * 4 + need_iv.capacity() +
           ivoff.capacity() * sizeof(size_t) + iv.capacity() * 4 +
           (s.capacity() + e.capacity()) * 4;
  }
};

// Scratch kept by a thread up to this size; a call that needed more frees it afterwards.
constexpr size_t kKeepBytes = size_t(16) << 20;

void trim(Side* side) {
  if (side->bytes() > kKeepBytes) *side = Side();
}

}  // namespace

void rle_box_iou_cpu(const double* dt, const double* gt, index_t nd, index_t ng,
                     const uint8_t* iscrowd, double* out) {
#pragma omp parallel for schedule(dynamic, 8) if (nd * ng > (1 << 18))
  for (index_t d = 0; d < nd; ++d)
    for (index_t g = 0; g < ng; ++g)
      out[d * ng + g] = box_pair_iou(dt + 4 * d, gt + 4 * g, iscrowd && iscrowd[g]);
}

void rle_iou_cpu(const uint32_t* const* dt, const index_t* mdt, const int64_t* dt_sizes,
                 index_t nd, const uint32_t* const* gt, const index_t* mgt,
                 const int64_t* gt_sizes, index_t ng, const uint8_t* iscrowd, bool same,
                 double* out) {
  // This thread's scratch, through references: a lambda run by another thread (the OpenMP
  // regions below) must see these objects, not its own thread's.
  static thread_local Side ds_tl, gs_tl;
  static thread_local std::vector<uint8_t> kind_tl;
  Side& ds = ds_tl;
  Side& gs = same ? ds_tl : gs_tl;
  std::vector<uint8_t>& kind = kind_tl;
  struct Trim {  // also after an exception
    Side *a, *b;
    std::vector<uint8_t>* k;
    ~Trim() {
      trim(a);
      trim(b);
      if (k->capacity() > kKeepBytes) std::vector<uint8_t>().swap(*k);
    }
  } trim_after{&ds_tl, &gs_tl, &kind_tl};
  ds.scan(dt, mdt, dt_sizes, nd);
  if (!same) gs.scan(gt, mgt, gt_sizes, ng);
  // Each pair: 0 when the boxes do not overlap (bbIou is 0; when they do it is positive for
  // either crowd flag, and the mask IoU replaces it), -1 when the sizes differ, else 1 (the
  // pixels are needed). Only the upper triangle when dt is gt.
  kind.assign(static_cast<size_t>(nd * ng), 0);
  size_t pairs = 0;
  for (index_t d = 0; d < nd; ++d) {
    const double* bd = ds.box.data() + 4 * d;
    for (index_t g = same ? d + 1 : 0; g < ng; ++g) {
      if (!(box_pair_iou(bd, gs.box.data() + 4 * g, false) > 0)) continue;
      const bool eq = dt_sizes[2 * d] == gt_sizes[2 * g] && dt_sizes[2 * d + 1] == gt_sizes[2 * g + 1];
      kind[d * ng + g] = eq ? 1 : 2;
      if (eq) {
        ++pairs;
        if ((!ds.slots[d] || !gs.slots[g]) && ds.area[d] && gs.area[g])
          ds.need_iv[d] = gs.need_iv[g] = 1;
      }
    }
  }
  ds.intervals(dt, mdt, nd);
  if (!same) gs.intervals(gt, mgt, ng);
  // Common pixels of d and g (boxes overlapping, same size): only the columns both boxes
  // cover can hold any.
  auto common = [&](index_t d, index_t g) -> uint64_t {
    if (ds.area[d] == 0 || gs.area[g] == 0) return 0;
    const double* bd = ds.box.data() + 4 * d;
    const double* bg = gs.box.data() + 4 * g;
    const uint64_t x0 = static_cast<uint64_t>(std::max(bd[0], bg[0]));
    const uint64_t x1 = static_cast<uint64_t>(std::min(bd[0] + bd[2], bg[0] + bg[2]));
    if (ds.slots[d] && gs.slots[g]) return Side::tables_common(ds, d, gs, g, x0, x1);
    const uint64_t h = static_cast<uint64_t>(dt_sizes[2 * d]);
    const uint32_t from = static_cast<uint32_t>(std::min<uint64_t>(x0 * h, UINT32_MAX));
    const uint32_t to = static_cast<uint32_t>(std::min<uint64_t>(x1 * h, UINT32_MAX));
    return intersection(ds.iv.data() + 2 * ds.ivoff[d], index_t(ds.ivoff[d + 1] - ds.ivoff[d]),
                        gs.iv.data() + 2 * gs.ivoff[g], index_t(gs.ivoff[g + 1] - gs.ivoff[g]),
                        from, to);
  };
  // pycocotools: i / u in double from uint32 counts; u = 1 when nothing is shared, the
  // detection's area for a crowd ground truth.
  auto ratio = [](uint64_t i, uint32_t ad, uint32_t ag, bool crowd) {
    const uint64_t u = i == 0 ? 1 : crowd ? ad : uint64_t(ad) + ag - i;
    return static_cast<double>(static_cast<uint32_t>(i)) / static_cast<double>(static_cast<uint32_t>(u));
  };
  const std::vector<uint32_t>& da = ds.area;
  const std::vector<uint32_t>& gar = gs.area;
  // dt is gt: the overlap test and the common pixels are symmetric, so each unordered pair is
  // walked once and both entries written (each with its own crowd flag).
  auto row_same = [&](index_t d) {
    // a mask with itself: its area (boxes of non-empty masks overlap themselves)
    out[d * ng + d] = box_pair_iou(ds.box.data() + 4 * d, ds.box.data() + 4 * d, false) > 0
                          ? ratio(da[d], da[d], da[d], iscrowd && iscrowd[d])
                          : 0.0;
    for (index_t g = d + 1; g < ng; ++g) {
      double o = 0.0, t = 0.0;
      const uint8_t k = kind[d * ng + g];
      if (k == 2) {
        o = t = -1.0;
      } else if (k == 1) {
        const uint64_t i = common(d, g);
        o = ratio(i, da[d], gar[g], iscrowd && iscrowd[g]);
        t = ratio(i, da[g], gar[d], iscrowd && iscrowd[d]);
      }
      out[d * ng + g] = o;
      out[g * ng + d] = t;
    }
  };
  auto row = [&](index_t d) {
    for (index_t g = 0; g < ng; ++g) {
      const uint8_t k = kind[d * ng + g];
      out[d * ng + g] = k == 0 ? 0.0
                        : k == 2 ? -1.0
                                 : ratio(common(d, g), da[d], gar[g], iscrowd && iscrowd[g]);
    }
  };
  // Threads only for enough work: a parallel region costs microseconds, far more when the
  // cores are busy, and one image's pairs are a few hundred short column loops. (No region at
  // all otherwise: even one that its if clause keeps to this thread costs a team set-up.)
  if (nd > 1 && pairs > 4096) {
    if (same) {
#pragma omp parallel for schedule(dynamic, 1)
      for (index_t d = 0; d < nd; ++d) row_same(d);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
      for (index_t d = 0; d < nd; ++d) row(d);
    }
  } else if (same) {
    for (index_t d = 0; d < nd; ++d) row_same(d);
  } else {
    for (index_t d = 0; d < nd; ++d) row(d);
  }
}

// ------------------------------------------------------------------------------ polygons

// Sorts the boundary points a = column * h + row of a polygon, but the last one (h * w, which
// no other exceeds): a counting sort into about as many buckets as points, by (a - min) >> s
// (no division), then each bucket's few points in place (a comparison sort for a crowded
// one); linear where a comparison sort of the thousands of points of a large polygon was most
// of its rasterisation time. The scratch buffers are the calling thread's own.
static void sort_boundary_points(std::vector<uint32_t>* pts) {
  std::vector<uint32_t>& a = *pts;
  const size_t n = a.empty() ? 0 : a.size() - 1;
  if (n < 64) {
    std::sort(a.begin(), a.begin() + n);
    return;
  }
  uint32_t lo = a[0], hi = a[0];
  for (size_t i = 1; i < n; ++i) {
    lo = std::min(lo, a[i]);
    hi = std::max(hi, a[i]);
  }
  int shift = 0;
  while (((hi - lo) >> shift) >= n) ++shift;
  const size_t nb = static_cast<size_t>((hi - lo) >> shift) + 1;  // at most n buckets
  thread_local std::vector<uint32_t> end, out;
  end.assign(nb + 1, 0);
  out.resize(n);
  for (size_t i = 0; i < n; ++i) ++end[((a[i] - lo) >> shift) + 1];
  for (size_t c = 1; c <= nb; ++c) end[c] += end[c - 1];
  // end[c] is bucket c's start; placing its points moves it to its end (the next one's start)
  for (size_t i = 0; i < n; ++i) out[end[(a[i] - lo) >> shift]++] = a[i];
  uint32_t from = 0;
  for (size_t c = 0; c < nb; ++c) {  // each bucket: [from, end[c])
    if (end[c] - from > 32) {
      std::sort(out.begin() + from, out.begin() + end[c]);
    } else {
      for (uint32_t i = from + 1; i < end[c]; ++i) {
        const uint32_t v = out[i];
        uint32_t j = i;
        for (; j > from && out[j - 1] > v; --j) out[j] = out[j - 1];
        out[j] = v;
      }
    }
    from = end[c];
  }
  std::copy(out.begin(), out.end(), a.begin());
}

void rle_from_polygon_cpu(const double* xy, index_t k, index_t h, index_t w,
                          std::vector<uint32_t>* out) {
  out->clear();
  if (h == 0 || w == 0) {
    out->push_back(0);
    return;
  }
  // pycocotools' rleFrPoly: vertices scaled by 5 and rounded, every edge walked one step per
  // unit of its longer axis, and each step across a pixel column (at 5 x + 2 in the scaled
  // grid) becomes a boundary point, whose row is the ceil of the downscaled y.
  const double scale = 5;
  thread_local std::vector<int> x, y;  // (the calling thread's own scratch)
  x.resize(static_cast<size_t>(k + 1));
  y.resize(static_cast<size_t>(k + 1));
  for (index_t j = 0; j < k; ++j) x[j] = static_cast<int>(scale * xy[2 * j] + .5);
  for (index_t j = 0; j < k; ++j) y[j] = static_cast<int>(scale * xy[2 * j + 1] + .5);
  if (k > 0) {
    x[k] = x[0];
    y[k] = y[0];
  }
  // The boundary points go straight into out, room made for about as many as the walk finds
  // (a fifth of each edge's x extent, at most the image's columns, and one an edge).
  std::vector<uint32_t>& a = *out;
  {
    uint64_t est = 2;
    for (index_t j = 0; j < k; ++j)
      est += std::min<uint64_t>(static_cast<uint64_t>(std::abs(static_cast<int64_t>(x[j + 1]) - x[j])) / 5 + 2,
                                static_cast<uint64_t>(w) + 2);
    a.reserve(static_cast<size_t>(std::min<uint64_t>(est, uint64_t(1) << 24)));
  }
  bool have_prev = false;
  int pu = 0, pv = 0;
  const double wmax = static_cast<double>(w - 1);
  // The row of a boundary point whose lower scaled y is v: ceil of the downscaled y, in [0, h].
  // pycocotools: yd = (v + .5) / 5 - .5 clamped to [0, h], then ceil. That is (v - 2) / 5
  // exactly: where it is an integer m, v + .5, its fifth m + .5 and m are all exact doubles, and
  // elsewhere it is 0.2 or more from an integer, far beyond the two roundings. So the row is
  // ceil((v - 2) / 5) = floor((v + 2) / 5) clamped to [0, h], in integer arithmetic (no double
  // division and no std::ceil, a long instruction sequence without SSE4.1).
  auto row_of = [&](int v) -> int64_t {
    const int64_t t = static_cast<int64_t>(v) + 2;
    if (t < 0) return 0;
    const int64_t r = t / 5;
    return r > h ? h : r;
  };
  auto point = [&](int u, int v) {
    if (have_prev && u != pu) {
      double xd = static_cast<double>(u < pu ? u : u - 1);
      xd = (xd + .5) / scale - .5;
      if (!(std::floor(xd) != xd || xd < 0 || xd > wmax)) {
        const int64_t xi = static_cast<int>(xd);
        a.push_back(static_cast<uint32_t>(xi * h + row_of(v < pv ? v : pv)));
      }
    }
    have_prev = true;
    pu = u;
    pv = v;
  };
  for (index_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    // A zero-length edge (dx = dy = 0) makes pycocotools divide 0 by 0 and cast the NaN to int;
    // that point's v is never read (its u equals both neighbours'), so take s = 0 instead.
    const double s = dx >= dy ? (dx ? static_cast<double>(ye - ys) / dx : 0.0)
                              : static_cast<double>(xe - xs) / dy;
    if (dx >= dy) {
      // Along an x-major edge u moves by one every step, so the steps form the pairs
      // (c, c + 1) for every c in [xs, xe), in either direction, each with v(u) =
      // (int)(ys + s (u - xs) + .5). A pair is a boundary point only where c = 5 q + 2 is a
      // pixel column q of the image: visit those c alone (a fifth of the steps, and none off the
      // image), then continue from the edge's last point. Points are sorted afterwards, so the
      // order they are found in does not matter; the step into the edge's first point goes
      // through point() as before.
      const int t0 = flip ? dx : 0, t1 = flip ? 0 : dx;
      point(t0 + xs, static_cast<int>(ys + s * t0 + .5));
      int64_t c = static_cast<int64_t>(xs) + ((2 - static_cast<int64_t>(xs)) % 5 + 5) % 5;
      if (c < 2) c = 2;  // column 0
      const int64_t c_end = std::min<int64_t>(static_cast<int64_t>(xe) - 1, 5 * (static_cast<int64_t>(w) - 1) + 2);
      if (c <= c_end) {  // (c_end - c) / 5 + 1 points, written in place
        const size_t at = a.size();
        a.resize(at + static_cast<size_t>((c_end - c) / 5 + 1));
        uint32_t* o = a.data() + at;
        for (; c <= c_end; c += 5) {
          const int va = static_cast<int>(ys + s * static_cast<int>(c - xs) + .5);
          const int vb = static_cast<int>(ys + s * static_cast<int>(c + 1 - xs) + .5);
          *o++ = static_cast<uint32_t>(((c - 2) / 5) * h + row_of(va < vb ? va : vb));
        }
      }
      have_prev = true;
      pu = t1 + xs;
      pv = static_cast<int>(ys + s * t1 + .5);
    } else {
      // Along a y-major edge u(t) = (int)(xs + s t + .5) moves by at most one a step (|s| < 1),
      // and only a step where it crosses between c and c + 1 (c = 5 q + 2, a pixel column)
      // can be a boundary point: find each such step t directly (an estimate, corrected by
      // evaluating u exactly as the walk does) instead of walking all dy + 1 steps. The pair is
      // (t - 1, t) whatever the walk's direction, so its lower v is t - 1 + ys.
      const int t0 = flip ? dy : 0, t1 = flip ? 0 : dy;
      point(static_cast<int>(xs + s * t0 + .5), t0 + ys);
      auto u_at = [&](int t) { return static_cast<int>(xs + s * t + .5); };
      const int u_begin = u_at(0), u_end = u_at(dy);
      if (u_end != u_begin) {
        const bool up = u_end > u_begin;
        const int64_t lo = up ? u_begin : u_end, hi = (up ? u_end : u_begin) - 1;  // c in [lo, hi]
        int64_t c = lo + ((2 - lo) % 5 + 5) % 5;
        if (c < 2) c = 2;
        const int64_t c_end = std::min<int64_t>(hi, 5 * (static_cast<int64_t>(w) - 1) + 2);
        for (; c <= c_end; c += 5) {
          // the first t with u(t) past the crossing: >= c + 1 going up, <= c going down
          // ceil(q) clamped to [1, dy] (NaN: 1), in integer arithmetic (see row_of)
          const double q = (static_cast<double>(c) + .5 - xs) / s;
          int t;
          if (!(q > 0)) {
            t = 1;
          } else if (q >= dy) {
            t = dy;
          } else {
            t = static_cast<int>(q);
            if (static_cast<double>(t) < q) ++t;
          }
          if (up) {
            while (t > 1 && u_at(t - 1) >= c + 1) --t;
            while (t <= dy && u_at(t) < c + 1) ++t;
          } else {
            while (t > 1 && u_at(t - 1) <= c) --t;
            while (t <= dy && u_at(t) > c) ++t;
          }
          if (t > dy) continue;
          a.push_back(static_cast<uint32_t>(((c - 2) / 5) * h + row_of(t - 1 + ys)));
        }
      }
      have_prev = true;
      pu = u_at(t1);
      pv = t1 + ys;
    }
  }
  a.push_back(static_cast<uint32_t>(h * w));
  sort_boundary_points(&a);
  uint32_t p = 0;
  for (uint32_t& t : a) {
    const uint32_t cur = t;
    t -= p;
    p = cur;
  }
  // without_empty_runs, in place (each empty run joins its two neighbours)
  const size_t m = a.size();
  size_t o = 1;
  for (size_t j = 1; j < m; ++j) {
    if (a[j] > 0) a[o++] = a[j];
    else if (++j < m) a[o - 1] += a[j];
  }
  a.resize(std::min(o, m));
}

void rle_from_polygons_cpu(const double* const* xy, const index_t* k, index_t n, index_t h,
                           index_t w, std::vector<uint32_t>* out) {
  RegionErrors err;
#pragma omp parallel for schedule(dynamic, 1) if (n > 16)
  for (index_t i = 0; i < n; ++i) err.run([&] { rle_from_polygon_cpu(xy[i], k[i], h, w, out + i); });
  err.rethrow([&] {
    return "rle.from_segmentation: out of memory rasterising " + std::to_string(n) + " polygons at " +
           std::to_string(h) + " x " + std::to_string(w);
  });
}

}  // namespace fastiou
