// Hard NMS on the CPU: nms (class-aware when classes are given), nms_sweep, and the greedy pass
// that multiclass_nms (multiclass_nms.cpp) runs per class (GreedyPass, nms_common.h).
//
// One stable sort of nms_math.h's score keys ranks the boxes (rank_keys: a radix sort on the
// key bits that differ); the ranked boxes are gathered into columns with their areas; a greedy
// pass then visits them in rank order and tests a candidate only against the kept boxes that
// can overlap it. A uniform grid over the boxes' extent (cells of the median box width and
// height) lists the kept boxes of each cell, in blocks of SIMD lanes; a candidate reads the
// cells of the band around its centre that a suppressor must reach (Grid::query: its centre
// cell alone at thresholds >= 0.5, its whole extent at 0), early exit on the first suppressor.
// A box that covers more than kBigCells cells goes to one "big" list that every candidate
// reads (and a big candidate reads every kept box). Class-aware NMS runs one greedy pass per
// class, the classes in parallel (OpenMP, largest first), then merges by global rank.
// nms_sweep runs one pass for up to 64 thresholds (sweep_group_impl). No N x N memory.
//
// Why the pruning is exact (threshold >= 0): a pair suppresses only if iou > threshold >= 0,
// so inter > 0, so min(x2) > max(x1) and min(y2) > max(y1): both boxes have x2 > x1, y2 > y1,
// and their extents overlap with positive length, hence share a cell (the cell of a coordinate
// is a monotone function of it). A box whose area is not finite gives IoU 0 or NaN with every
// box (its union is inf, or inf - inf), and a box without x2 > x1 and y2 > y1 (zero width,
// inverted, NaN) gives an intersection of 0 or NaN: such boxes neither suppress nor are
// suppressed, so they are kept without a test. Below 0, every pair with a non-NaN IoU
// suppresses (zero-area and inverted boxes included): that case, and small groups, take the
// unpruned pass, which tests every kept box.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "cpu_common.h"
#include "fastiou/ops.h"
#include "nms_common.h"

namespace fastiou {
namespace nms_detail {

// ------------------------------------------------------------------------------ ranking

namespace {

// One LSD pass per `d`-bit digit of bits [shift, shift + d * passes) of `a`'s elements, where
// key(x) = x (packed key << 32 | index) or the parallel payload `ia` is carried along.
template <bool Packed>
void radix_passes(std::vector<uint64_t>& a, std::vector<uint32_t>& ia, index_t n, int shift,
                  int d, int passes) {
  const uint32_t buckets = 1u << d, mask = buckets - 1;
  std::vector<uint32_t> hist(static_cast<size_t>(passes) * buckets, 0);
  for (index_t i = 0; i < n; ++i) {
    const uint64_t k = a[i];
    for (int p = 0; p < passes; ++p) ++hist[p * buckets + ((k >> (shift + p * d)) & mask)];
  }
  std::vector<uint64_t> b(static_cast<size_t>(n));
  std::vector<uint32_t> ib(Packed ? 0 : static_cast<size_t>(n));
  for (int p = 0; p < passes; ++p) {
    uint32_t* h = hist.data() + p * buckets;
    const int sh = shift + p * d;
    if (h[(a[0] >> sh) & mask] == static_cast<uint32_t>(n)) continue;  // a digit all share
    uint32_t acc = 0;
    for (uint32_t k = 0; k < buckets; ++k) {
      const uint32_t c = h[k];
      h[k] = acc;
      acc += c;
    }
    for (index_t i = 0; i < n; ++i) {
      const uint64_t k = a[i];
      const uint32_t at = h[(k >> sh) & mask]++;
      b[at] = k;
      if (!Packed) ib[at] = ia[i];
    }
    a.swap(b);
    if (!Packed) ia.swap(ib);
  }
}

// Sorts the distinct words a[0..m) whose bits [lo, hi) are the only ones above `lo` that differ:
// MSD buckets of up to 11 bits, about one per word (counts in L1), in place through `tmp`,
// down to runs of 32 words, which insertion sort finishes. Scattering is stable, so words that
// agree on every bit above `lo` stay in increasing order (their low bits hold the index).
void msd_sort(uint64_t* a, uint64_t* tmp, uint32_t m, int lo, int hi) {
  if (m <= 32 || hi <= lo) {
    for (uint32_t x = 1; x < m; ++x) {
      const uint64_t w = a[x];
      uint32_t y = x;
      for (; y > 0 && a[y - 1] > w; --y) a[y] = a[y - 1];
      a[y] = w;
    }
    return;
  }
  const int fit = 31 - __builtin_clz(m);  // about one bucket per word, at most 2^11
  const int d = std::min(hi - lo, std::min(11, std::max(4, fit)));
  const int sh = hi - d;
  const uint32_t mask = (1u << d) - 1;
  uint32_t cnt[(1 << 11) + 1];
  std::fill(cnt, cnt + mask + 2, 0u);
  for (uint32_t i = 0; i < m; ++i) ++cnt[((a[i] >> sh) & mask) + 1];
  for (uint32_t k = 0; k <= mask; ++k) cnt[k + 1] += cnt[k];
  uint32_t at[1 << 11];
  std::copy(cnt, cnt + mask + 1, at);
  for (uint32_t i = 0; i < m; ++i) tmp[at[(a[i] >> sh) & mask]++] = a[i];
  std::copy(tmp, tmp + m, a);
  for (uint32_t k = 0; k <= mask; ++k)
    if (cnt[k + 1] - cnt[k] > 1) msd_sort(a + cnt[k], tmp + cnt[k], cnt[k + 1] - cnt[k], lo, sh);
}

}  // namespace

void rank_keys(const uint64_t* keys, index_t n, index_t* order) {
  if (n <= 0) return;
  if (n < 64 || n > std::numeric_limits<int32_t>::max()) {
    std::iota(order, order + n, index_t(0));
    std::stable_sort(order, order + n, [keys](index_t a, index_t b) { return keys[a] < keys[b]; });
    return;
  }
  // Only the bits that differ between keys are sorted on (float32 scores widened to double
  // leave the low 29 bits of every key alike, and scores in [0, 1) share the top ones).
  const uint64_t k0 = keys[0];
  uint64_t diff = 0;
  for (index_t i = 0; i < n; ++i) diff |= keys[i] ^ k0;
  if (diff == 0) {
    std::iota(order, order + n, index_t(0));
    return;
  }
  const int lo = __builtin_ctzll(diff), bits = 64 - __builtin_clzll(diff) - lo;
  const int d = n >= 8192 ? 11 : 8;
  const int passes = (bits + d - 1) / d;
  std::vector<uint64_t> a(static_cast<size_t>(n));
  std::vector<uint32_t> ia;
  if (bits <= 32) {
    // The varying bits above the index in one word: words are distinct, and their order is
    // the stable order of the keys.
    for (index_t i = 0; i < n; ++i)
      a[i] = (((keys[i] >> lo) & 0xffffffffull) << 32) | static_cast<uint64_t>(i);
    std::vector<uint64_t> tmp(static_cast<size_t>(n));
    msd_sort(a.data(), tmp.data(), static_cast<uint32_t>(n), 32, 32 + bits);
    for (index_t i = 0; i < n; ++i) order[i] = static_cast<index_t>(a[i] & 0xffffffffull);
    return;
  }
  ia.resize(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    a[i] = keys[i] >> lo;
    ia[i] = static_cast<uint32_t>(i);
  }
  radix_passes<false>(a, ia, n, 0, d, passes);
  for (index_t i = 0; i < n; ++i) order[i] = ia[i];
}

Partition partition_by_label(const int64_t* labels, const index_t* order, index_t n) {
  Partition part;
  part.perm.resize(static_cast<size_t>(n));
  part.start.push_back(0);
  if (n <= 0) return part;
  int64_t lo = labels[0], hi = labels[0];
  for (index_t i = 1; i < n; ++i) {
    lo = std::min(lo, labels[i]);
    hi = std::max(hi, labels[i]);
  }
  // Dense ids: the label minus the smallest when the labels span a small range, else the
  // rank among the distinct labels.
  std::vector<index_t> dense(static_cast<size_t>(n));
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  index_t ids;
  if (span < static_cast<uint64_t>(std::max<index_t>(4 * n, 1024))) {
    for (index_t i = 0; i < n; ++i)
      dense[i] = static_cast<index_t>(static_cast<uint64_t>(labels[i]) - static_cast<uint64_t>(lo));
    ids = static_cast<index_t>(span) + 1;
  } else {
    std::vector<int64_t> u(labels, labels + n);
    std::sort(u.begin(), u.end());
    u.erase(std::unique(u.begin(), u.end()), u.end());
    for (index_t i = 0; i < n; ++i)
      dense[i] = std::lower_bound(u.begin(), u.end(), labels[i]) - u.begin();
    ids = static_cast<index_t>(u.size());
  }
  std::vector<index_t> pos(static_cast<size_t>(ids), 0);
  for (index_t i = 0; i < n; ++i) ++pos[dense[i]];
  index_t acc = 0;
  for (index_t g = 0; g < ids; ++g) {
    const index_t c = pos[g];
    pos[g] = acc;
    if (c) {
      acc += c;
      part.start.push_back(acc);
    }
  }
  for (index_t r = 0; r < n; ++r) part.perm[pos[dense[order[r]]]++] = r;
  return part;
}

namespace {

// ------------------------------------------------------------------------------ greedy

constexpr index_t kGridMin = 64;  // below this many boxes, the unpruned pass is as fast
constexpr int kBigCells = 36;     // a box covering more cells goes to the big list
constexpr double kCellScale = 1.0;  // cell size / median box size

enum : uint8_t { BOX_FREE = 0, BOX_CELLS = 1, BOX_BIG = 2 };

// Kept boxes are listed in blocks of one SIMD register's lanes: x1[L] y1[L] x2[L] y2[L]
// area[L], the unused lanes NaN (a NaN area gives IoU NaN, which never suppresses). A list of
// any length is then tested in whole vector iterations, with no remainder loop.
template <typename T>
struct Lanes {
  static constexpr int L = 32 / sizeof(T);  // 8 floats, 4 doubles
  static constexpr int W = 5 * L;           // values per block
};

// Whether any box of the block (the kept, higher-ranked side a) has IoU > t with box b.
template <typename T>
FASTIOU_HD bool block_hits(const T* __restrict__ blk, T bx1, T by1, T bx2, T by2, T bar, T t) {
  constexpr int L = Lanes<T>::L;
  const T z = T(0);
  int hit = 0;
  for (int l = 0; l < L; ++l) {
    const T iou = pair_value<T, MODE_IOU>(blk[l], blk[L + l], blk[2 * L + l], blk[3 * L + l],
                                          blk[4 * L + l], z, z, z, bx1, by1, bx2, by2, bar, z,
                                          z, z, z);
    hit |= iou > t;
  }
  return hit != 0;
}

// Writes box i of v into lane l of a block (a new block's other lanes become NaN).
template <typename T, typename V>
FASTIOU_HD void put_lane(T* blk, int l, const V& v, index_t i) {
  constexpr int L = Lanes<T>::L;
  if (l == 0) std::fill(blk, blk + Lanes<T>::W, std::numeric_limits<T>::quiet_NaN());
  blk[l] = v.x1[i]; blk[L + l] = v.y1[i]; blk[2 * L + l] = v.x2[i]; blk[3 * L + l] = v.y2[i];
  blk[4 * L + l] = v.area[i];
}

// A list of boxes in consecutive blocks (the kept boxes of the unpruned pass, the big list).
// Storage is reused across calls and never zero-filled: only written blocks are read.
template <typename T>
struct BlockList {
  std::unique_ptr<T[]> data;
  index_t capacity = 0;  // blocks
  void reserve(index_t blocks) {
    if (blocks <= capacity) return;
    capacity = std::max(blocks, 2 * capacity);
    data.reset(new T[static_cast<size_t>(capacity) * Lanes<T>::W]);
  }
  template <typename V>
  FASTIOU_HD void put(index_t at, const V& v, index_t i) {
    constexpr int L = Lanes<T>::L;
    put_lane(data.get() + (at / L) * Lanes<T>::W, static_cast<int>(at % L), v, i);
  }
  // Whether any of the first m entries has IoU > t with box i of v.
  template <typename V>
  FASTIOU_HD bool any_over(index_t m, const V& v, index_t i, T t) const {
    constexpr int L = Lanes<T>::L;
    const T bx1 = v.x1[i], by1 = v.y1[i], bx2 = v.x2[i], by2 = v.y2[i], bar = v.area[i];
    const T* p = data.get();
    for (index_t b = 0; b < (m + L - 1) / L; ++b, p += Lanes<T>::W)
      if (block_hits(p, bx1, by1, bx2, by2, bar, t)) return true;
    return false;
  }
};

// The kept boxes of each grid cell: per cell a chain of blocks from one pool, allocated as boxes
// are kept, so memory follows the kept boxes, not the candidates.
template <typename T>
struct CellLists {
  std::vector<T> pool;
  std::vector<index_t> next;              // per block: the next block of its cell, or -1
  std::vector<index_t> head, tail, fill;  // per cell: first and last block, entries

  void reset(index_t cells, index_t expect_blocks) {
    pool.clear();
    next.clear();
    pool.reserve(static_cast<size_t>(expect_blocks) * Lanes<T>::W);
    next.reserve(static_cast<size_t>(expect_blocks));
    head.assign(static_cast<size_t>(cells), -1);
    tail.assign(static_cast<size_t>(cells), -1);
    fill.assign(static_cast<size_t>(cells), 0);
  }
  template <typename V>
  FASTIOU_HD void put(index_t c, const V& v, index_t i) {
    constexpr int L = Lanes<T>::L;
    const int l = static_cast<int>(fill[c]++ % L);
    if (l == 0) {
      const index_t b = static_cast<index_t>(next.size());
      next.push_back(-1);
      pool.resize(pool.size() + Lanes<T>::W);
      if (tail[c] < 0) head[c] = b; else next[tail[c]] = b;
      tail[c] = b;
    }
    put_lane(pool.data() + tail[c] * Lanes<T>::W, l, v, i);
  }
  template <typename V>
  FASTIOU_HD bool any_over(index_t c, const V& v, index_t i, T t) const {
    const T bx1 = v.x1[i], by1 = v.y1[i], bx2 = v.x2[i], by2 = v.y2[i], bar = v.area[i];
    for (index_t b = head[c]; b >= 0; b = next[b])
      if (block_hits(pool.data() + b * Lanes<T>::W, bx1, by1, bx2, by2, bar, t)) return true;
    return false;
  }
};

// Smallest area for which the centre narrowing (Grid::query) is used: above it, every quantity
// of a suppressing pair's IoU is a normal number, so each rounding is relative.
template <typename T>
constexpr double kNormalArea = sizeof(T) == 4 ? 0x1p-100 : 0x1p-1000;

// The uniform grid over a group's eligible boxes (x2 > x1, y2 > y1, finite area).
template <typename T>
struct Grid {
  int gx = 1, gy = 1;
  double ox = 0, oy = 0, fx = 0, fy = 0;  // cell of x: floor((x - ox) * fx), clamped
  std::vector<uint8_t> kind;
  std::vector<int32_t> cx0, cx1, cy0, cy1;  // cells covered, inclusive
  index_t regs = 0;                         // cells covered, summed over the gridded boxes

  // Monotone in v (a NaN, from an overflowing v - o with f = 0, gives cell 0); branch-free.
  static FASTIOU_HD int cell(double v, double o, double f, int g) {
    double c = (v - o) * f;
    c = c > 0 ? c : 0.0;
    const double top = g - 1;
    c = c < top ? c : top;
    return static_cast<int>(c);
  }

  // Classifies the boxes and sizes the cells (`scale` times the median box width and height,
  // estimated on at most 1024 boxes). Returns the number of eligible boxes.
  FASTIOU_HD index_t build(const BoxView<T>& v, double scale, std::vector<double>& tmp) {
    const index_t n = v.n;
    kind.assign(static_cast<size_t>(n), BOX_FREE);
    double minx = HUGE_VAL, miny = HUGE_VAL, maxx = -HUGE_VAL, maxy = -HUGE_VAL;
    index_t ne = 0;
    for (index_t i = 0; i < n; ++i) {
      if (v.x2[i] > v.x1[i] && v.y2[i] > v.y1[i] && std::isfinite(v.area[i])) {
        kind[i] = BOX_CELLS;
        ++ne;
        minx = std::min(minx, static_cast<double>(v.x1[i]));
        miny = std::min(miny, static_cast<double>(v.y1[i]));
        maxx = std::max(maxx, static_cast<double>(v.x2[i]));
        maxy = std::max(maxy, static_cast<double>(v.y2[i]));
      }
    }
    if (ne == 0) return 0;
    const index_t step = std::max<index_t>(1, n / 1024);
    tmp.clear();
    tmp.reserve(2 * static_cast<size_t>(std::min<index_t>(n, 2048)));
    for (int axis = 0; axis < 2; ++axis) {
      const T* lo = axis ? v.y1 : v.x1;
      const T* hi = axis ? v.y2 : v.x2;
      for (index_t i = 0; i < n; i += step)
        if (kind[i]) tmp.push_back(static_cast<double>(hi[i]) - static_cast<double>(lo[i]));
      if (tmp.size() == 0 || (axis && tmp.size() % 2)) {  // no sample landed on a kept box
        tmp.clear();
        for (index_t i = 0; i < n; ++i)
          if (kind[i]) tmp.push_back(static_cast<double>(hi[i]) - static_cast<double>(lo[i]));
      }
    }
    const size_t h = tmp.size() / 2;
    std::nth_element(tmp.begin(), tmp.begin() + h / 2, tmp.begin() + h);
    std::nth_element(tmp.begin() + h, tmp.begin() + h + h / 2, tmp.end());
    const double mw = tmp[h / 2] * scale, mh = tmp[h + h / 2] * scale;
    const double ex = maxx - minx, ey = maxy - miny;
    const double cap = static_cast<double>(std::max<index_t>(16, 2 * ne));
    double nx = std::min(std::max(std::ceil(ex / mw), 1.0), cap);
    double ny = std::min(std::max(std::ceil(ey / mh), 1.0), cap);
    if (!(nx == nx)) nx = 1;
    if (!(ny == ny)) ny = 1;
    if (nx * ny > cap) {
      const double f = std::sqrt(nx * ny / cap);
      nx = std::max(1.0, std::floor(nx / f));
      ny = std::max(1.0, std::floor(ny / f));
    }
    gx = static_cast<int>(nx);
    gy = static_cast<int>(ny);
    ox = minx; oy = miny;
    fx = gx / ex; fy = gy / ey;  // 0 when the extent overflows: one column, still exact
    cx0.resize(static_cast<size_t>(n)); cx1.resize(static_cast<size_t>(n));
    cy0.resize(static_cast<size_t>(n)); cy1.resize(static_cast<size_t>(n));
    for (index_t i = 0; i < n; ++i) {  // every box, in vector lanes; only eligible ones are read
      cx0[i] = cell(v.x1[i], ox, fx, gx); cx1[i] = cell(v.x2[i], ox, fx, gx);
      cy0[i] = cell(v.y1[i], oy, fy, gy); cy1[i] = cell(v.y2[i], oy, fy, gy);
    }
    regs = 0;
    for (index_t i = 0; i < n; ++i) {
      if (!kind[i]) continue;
      const int a = cx0[i], c = cx1[i], b = cy0[i], d = cy1[i];
      const index_t r = static_cast<index_t>(c - a + 1) * (d - b + 1);
      if (r > kBigCells) {
        kind[i] = BOX_BIG;
        continue;
      }
      regs += r;
    }
    return ne;
  }

  // The half-width, as a fraction of a box's width (height), of the band around its centre
  // that every box suppressing it at `threshold` reaches (see query).
  static double band(double threshold) {
    const double eps = sizeof(T) == 4 ? 0x1p-24 : 0x1p-53;
    const double tau = threshold * (1.0 - 16.0 * eps) - 0x1p-40;
    return std::min(0.5, std::max(0.0, 0.5 - tau));
  }

  // The cells box i must read to meet every kept box a with IoU(a, i) > t >= 0, given rho =
  // band(t). Why: with the areas normal, the rounded IoU exceeds t only if the intersection's
  // width W satisfies W > tau * w_i (inter <= W * h_i and union >= area_i, each up to a few
  // rounding errors, folded into tau), and an interval of length W inside box i's x-extent
  // lies within (1/2 - tau) * w_i of its centre: a's x-extent meets the band [c - r, c + r],
  // r = rho * w_i, inside i's extent; the same in y. At t >= 1/2 the band is i's centre, one
  // cell. The band is widened by a relative 1e-12 against its own rounding.
  FASTIOU_HD void query(const BoxView<T>& v, index_t i, double rho, int& qx0, int& qx1,
                        int& qy0, int& qy1) const {
    qx0 = cx0[i]; qx1 = cx1[i]; qy0 = cy0[i]; qy1 = cy1[i];
    if (rho >= 0.5 || !(static_cast<double>(v.area[i]) >= kNormalArea<T>)) return;
    const double x1 = v.x1[i], x2 = v.x2[i], y1 = v.y1[i], y2 = v.y2[i];
    const double rx = rho * (x2 - x1) + 1e-12 * (std::fabs(x1) + std::fabs(x2));
    const double ry = rho * (y2 - y1) + 1e-12 * (std::fabs(y1) + std::fabs(y2));
    const double cx = 0.5 * x1 + 0.5 * x2, cy = 0.5 * y1 + 0.5 * y2;
    qx0 = std::max(qx0, cell(cx - rx, ox, fx, gx));
    qx1 = std::min(qx1, cell(cx + rx, ox, fx, gx));
    qy0 = std::max(qy0, cell(cy - ry, oy, fy, gy));
    qy1 = std::min(qy1, cell(cy + ry, oy, fy, gy));
  }
};

template <typename T>
struct GreedyWs {
  Grid<T> grid;
  BlockList<T> kept, big;
  CellLists<T> cells;
  std::vector<double> tmp;
};

// Greedy NMS over one group's ranked boxes: keep[i] = 1 for the kept ones, at most `cap` of
// them (cap < 0: no limit; the pass stops at the cap). Returns the number kept.
template <typename T>
FASTIOU_HD index_t greedy_impl(const BoxView<T>& v, double threshold, index_t cap, uint8_t* keep,
                               GreedyWs<T>& ws) {
  constexpr int L = Lanes<T>::L;
  const index_t n = v.n;
  std::fill(keep, keep + n, uint8_t(0));
  const index_t limit = cap < 0 ? n : std::min(cap, n);
  if (limit == 0) return 0;
  if (threshold != threshold) {  // a NaN threshold suppresses nothing
    std::fill(keep, keep + limit, uint8_t(1));
    return limit;
  }
  const T t = nms_threshold<T>(threshold);
  index_t kept = 0;
  if (!(threshold >= 0) || n < kGridMin) {
    ws.kept.reserve((n + L - 1) / L);
    for (index_t i = 0; i < n; ++i) {
      if (ws.kept.any_over(kept, v, i, t)) continue;
      ws.kept.put(kept, v, i);
      keep[i] = 1;
      if (++kept == limit) break;
    }
    return kept;
  }
  Grid<T>& g = ws.grid;
  const index_t ne = g.build(v, kCellScale, ws.tmp);
  if (ne == 0) {
    std::fill(keep, keep + limit, uint8_t(1));
    return limit;
  }
  const double rho = Grid<T>::band(threshold);
  const index_t gx = g.gx;
  ws.cells.reset(gx * g.gy, g.regs / L + gx * g.gy);  // an upper bound, reserved untouched
  ws.kept.reserve((ne + L - 1) / L);
  ws.big.reserve((ne + L - 1) / L);
  index_t mk = 0, mb = 0;
  for (index_t i = 0; i < n; ++i) {
    const uint8_t kd = g.kind[i];
    if (kd != BOX_FREE) {
      bool sup = false;
      if (kd == BOX_BIG) {
        sup = ws.kept.any_over(mk, v, i, t);
      } else {
        int qx0, qx1, qy0, qy1;
        g.query(v, i, rho, qx0, qx1, qy0, qy1);
        for (int y = qy0; y <= qy1 && !sup; ++y)
          for (int x = qx0; x <= qx1; ++x)
            if (ws.cells.any_over(static_cast<index_t>(y) * gx + x, v, i, t)) {
              sup = true;
              break;
            }
        if (!sup && mb) sup = ws.big.any_over(mb, v, i, t);
      }
      if (sup) continue;
      ws.kept.put(mk++, v, i);
      if (kd == BOX_BIG) {
        ws.big.put(mb++, v, i);
      } else {
        for (int y = g.cy0[i]; y <= g.cy1[i]; ++y)
          for (int x = g.cx0[i]; x <= g.cx1[i]; ++x)
            ws.cells.put(static_cast<index_t>(y) * gx + x, v, i);
      }
    }
    keep[i] = 1;
    if (++kept == limit) break;
  }
  return kept;
}

// The greedy pass is serial: compiled once per ISA (never contains an OpenMP region).
FASTIOU_CLONES index_t greedy_f32(const BoxView<float>& v, double threshold, index_t cap,
                                  uint8_t* keep, GreedyWs<float>& ws) {
  return greedy_impl<float>(v, threshold, cap, keep, ws);
}
FASTIOU_CLONES index_t greedy_f64(const BoxView<double>& v, double threshold, index_t cap,
                                  uint8_t* keep, GreedyWs<double>& ws) {
  return greedy_impl<double>(v, threshold, cap, keep, ws);
}
inline index_t greedy(const BoxView<float>& v, double t, index_t cap, uint8_t* keep,
                      GreedyWs<float>& ws) {
  return greedy_f32(v, t, cap, keep, ws);
}
inline index_t greedy(const BoxView<double>& v, double t, index_t cap, uint8_t* keep,
                      GreedyWs<double>& ws) {
  return greedy_f64(v, t, cap, keep, ws);
}

// Groups by decreasing size: the largest start first under a dynamic schedule.
std::vector<index_t> groups_by_size(const Partition& part) {
  const index_t ng = part.groups();
  std::vector<index_t> g(static_cast<size_t>(ng));
  std::iota(g.begin(), g.end(), index_t(0));
  std::stable_sort(g.begin(), g.end(), [&part](index_t a, index_t b) {
    return part.start[a + 1] - part.start[a] > part.start[b + 1] - part.start[b];
  });
  return g;
}

// The ranked boxes, in partition order when there are classes: cols[p] = box order[perm[p]].
template <typename T>
void gather(const T* boxes, const index_t* order, const Partition* part, index_t n,
            BoxCols<T>& cols) {
  cols.resize(n);
  for (index_t p = 0; p < n; ++p) {
    const index_t r = part ? part->perm[p] : p;
    cols.set(p, boxes + 4 * order[r]);
  }
}

index_t emit(const uint8_t* flag_rank, const index_t* order, index_t n, int64_t* keep) {
  index_t k = 0;
  for (index_t r = 0; r < n; ++r)
    if (flag_rank[r]) keep[k++] = order[r];
  return k;
}

// ------------------------------------------------------------------------------ sweep

// Greedy NMS at up to 64 thresholds >= 0 in one pass. Each box carries the set of thresholds at
// which it is kept (bit k: the k-th smallest); a candidate is tested once against every box kept
// at any of them, in the cells of the smallest threshold's band, and one IoU decides it for every
// threshold: the pair suppresses at the thresholds below the IoU at which the other box is kept.
// The scan stops once the candidate is suppressed at every threshold.
template <typename T>
struct SweepWs {
  Grid<T> grid;
  BlockList<T> kept, big;
  CellLists<T> cells;
  std::vector<uint64_t> kmask, bmask, cmask;  // per entry of kept, big, cells: its kept set
  std::vector<double> tmp;
};

// sup |= for each entry of the block, its kept set & the thresholds below its IoU with box i
// (only the thresholds not yet in sup are looked at; sup must not be all of them).
template <typename T>
FASTIOU_HD uint64_t block_sup(const T* __restrict__ blk, const uint64_t* __restrict__ mk,
                              const BoxView<T>& v, index_t i, const T* t, int nt, uint64_t sup) {
  constexpr int L = Lanes<T>::L;
  const T z = T(0);
  const T bx1 = v.x1[i], by1 = v.y1[i], bx2 = v.x2[i], by2 = v.y2[i], bar = v.area[i];
  const T tu = t[__builtin_ctzll(~sup)];  // the smallest threshold not yet suppressed
  T io[L];
  int hit = 0;
  for (int l = 0; l < L; ++l) {
    io[l] = pair_value<T, MODE_IOU>(blk[l], blk[L + l], blk[2 * L + l], blk[3 * L + l],
                                    blk[4 * L + l], z, z, z, bx1, by1, bx2, by2, bar, z, z, z, z);
    hit |= io[l] > tu;
  }
  if (!hit) return sup;
  for (int l = 0; l < L; ++l) {
    if (!(io[l] > tu)) continue;
    const uint64_t fresh = mk[l] & ~sup;
    if (!fresh) continue;
    int k = __builtin_ctzll(fresh);
    if (!(io[l] > t[k])) continue;
    while (k + 1 < nt && io[l] > t[k + 1]) ++k;
    sup |= fresh & (k == 63 ? ~0ull : (2ull << k) - 1);  // thresholds 0..k lie below the IoU
  }
  return sup;
}

// The same over the first m entries of a block list and their kept sets.
template <typename T>
FASTIOU_HD uint64_t list_sup(const BlockList<T>& bl, const std::vector<uint64_t>& bm, index_t m,
                             const BoxView<T>& v, index_t i, const T* t, int nt, uint64_t sup,
                             uint64_t all) {
  constexpr int L = Lanes<T>::L;
  for (index_t b = 0; b < (m + L - 1) / L && sup != all; ++b)
    sup = block_sup(bl.data.get() + b * Lanes<T>::W, bm.data() + b * L, v, i, t, nt, sup);
  return sup;
}

template <typename T>
FASTIOU_HD uint64_t cell_sup(const CellLists<T>& cl, const std::vector<uint64_t>& cm, index_t c,
                             const BoxView<T>& v, index_t i, const T* t, int nt, uint64_t sup,
                             uint64_t all) {
  constexpr int L = Lanes<T>::L;
  for (index_t b = cl.head[c]; b >= 0 && sup != all; b = cl.next[b])
    sup = block_sup(cl.pool.data() + b * Lanes<T>::W, cm.data() + b * L, v, i, t, nt, sup);
  return sup;
}

// `t`: the m thresholds in T, increasing; `rho[k]`: Grid::band of the k-th, as a double.
template <typename T>
FASTIOU_HD void sweep_group_impl(const BoxView<T>& v, const T* t, const double* rho, int nt,
                                 uint64_t* mask, SweepWs<T>& ws) {
  constexpr int L = Lanes<T>::L;
  const index_t n = v.n;
  const uint64_t all = nt == 64 ? ~0ull : (1ull << nt) - 1;
  ws.kept.reserve((n + L - 1) / L);
  ws.kmask.resize(static_cast<size_t>(((n + L - 1) / L) * L));
  index_t mk = 0;
  if (n < kGridMin) {  // unpruned: ineligible boxes give IoU 0 or NaN, which passes no t >= 0
    for (index_t i = 0; i < n; ++i) {
      uint64_t sup = 0;
      sup = list_sup(ws.kept, ws.kmask, mk, v, i, t, nt, sup, all);
      mask[i] = all & ~sup;
      if (mask[i]) {
        ws.kept.put(mk, v, i);
        ws.kmask[mk++] = mask[i];
      }
    }
    return;
  }
  Grid<T>& g = ws.grid;
  if (g.build(v, kCellScale, ws.tmp) == 0) {
    std::fill(mask, mask + n, all);
    return;
  }
  const index_t gx = g.gx, ncell = gx * g.gy;
  ws.cells.reset(ncell, g.regs / L + ncell);
  ws.cmask.clear();
  ws.big.reserve((n + L - 1) / L);
  ws.bmask.resize(static_cast<size_t>(((n + L - 1) / L) * L));
  index_t mb = 0;
  for (index_t i = 0; i < n; ++i) {
    const uint8_t kd = g.kind[i];
    if (kd == BOX_FREE) {
      mask[i] = all;
      continue;
    }
    uint64_t sup = 0;
    if (kd == BOX_BIG) {
      sup = list_sup(ws.kept, ws.kmask, mk, v, i, t, nt, sup, all);
    } else {
      // The cell of the box's centre first (every band contains it), then the other cells of
      // the band of the smallest threshold still unsuppressed (bands shrink as t grows).
      int qx0, qx1, qy0, qy1;
      g.query(v, i, rho[0], qx0, qx1, qy0, qy1);
      const double cxd = 0.5 * static_cast<double>(v.x1[i]) + 0.5 * static_cast<double>(v.x2[i]);
      const double cyd = 0.5 * static_cast<double>(v.y1[i]) + 0.5 * static_cast<double>(v.y2[i]);
      const int ccx = std::min(std::max(Grid<T>::cell(cxd, g.ox, g.fx, g.gx), qx0), qx1);
      const int ccy = std::min(std::max(Grid<T>::cell(cyd, g.oy, g.fy, g.gy), qy0), qy1);
      const index_t cc = static_cast<index_t>(ccy) * gx + ccx;
      sup = cell_sup(ws.cells, ws.cmask, cc, v, i, t, nt, sup, all);
      if (sup != all && sup != 0)
        g.query(v, i, rho[__builtin_ctzll(~sup)], qx0, qx1, qy0, qy1);
      for (int y = qy0; y <= qy1 && sup != all; ++y)
        for (int x = qx0; x <= qx1 && sup != all; ++x)
          if (x != ccx || y != ccy)
            sup = cell_sup(ws.cells, ws.cmask, static_cast<index_t>(y) * gx + x, v, i, t, nt, sup,
                           all);
      sup = list_sup(ws.big, ws.bmask, mb, v, i, t, nt, sup, all);
    }
    mask[i] = all & ~sup;
    if (!mask[i]) continue;
    ws.kept.put(mk, v, i);
    ws.kmask[mk++] = mask[i];
    if (kd == BOX_BIG) {
      ws.big.put(mb, v, i);
      ws.bmask[mb++] = mask[i];
    } else {
      for (int y = g.cy0[i]; y <= g.cy1[i]; ++y)
        for (int x = g.cx0[i]; x <= g.cx1[i]; ++x) {
          const index_t c = static_cast<index_t>(y) * gx + x;
          const index_t at = ws.cells.fill[c];
          ws.cells.put(c, v, i);
          if (at % L == 0) ws.cmask.resize(ws.cmask.size() + L, 0);  // the block just opened
          ws.cmask[ws.cells.tail[c] * L + at % L] = mask[i];
        }
    }
  }
}

FASTIOU_CLONES void sweep_group_f32(const BoxView<float>& v, const float* t, const double* rho,
                                    int nt, uint64_t* mask, SweepWs<float>& ws) {
  sweep_group_impl<float>(v, t, rho, nt, mask, ws);
}
FASTIOU_CLONES void sweep_group_f64(const BoxView<double>& v, const double* t, const double* rho,
                                    int nt, uint64_t* mask, SweepWs<double>& ws) {
  sweep_group_impl<double>(v, t, rho, nt, mask, ws);
}
inline void sweep_group(const BoxView<float>& v, const float* t, const double* rho, int nt,
                        uint64_t* mask, SweepWs<float>& ws) {
  sweep_group_f32(v, t, rho, nt, mask, ws);
}
inline void sweep_group(const BoxView<double>& v, const double* t, const double* rho, int nt,
                        uint64_t* mask, SweepWs<double>& ws) {
  sweep_group_f64(v, t, rho, nt, mask, ws);
}

}  // namespace

template <typename T>
struct GreedyPass<T>::Ws {
  GreedyWs<T> ws;
};
template <typename T>
GreedyPass<T>::GreedyPass() = default;
template <typename T>
GreedyPass<T>::~GreedyPass() = default;
template <typename T>
index_t GreedyPass<T>::run(const BoxView<T>& v, double threshold, index_t cap, uint8_t* keep) {
  if (!ws_) ws_.reset(new Ws);  // here, not in the constructor: a thread's allocations may throw
  return greedy(v, threshold, cap, keep, ws_->ws);
}
template class GreedyPass<float>;
template class GreedyPass<double>;

}  // namespace nms_detail

using namespace nms_detail;

template <typename T>
index_t nms_cpu(const T* boxes, const double* scores, const int64_t* classes, index_t n,
                double iou_threshold, int64_t* keep) {
  if (n <= 0) return 0;
  std::vector<index_t> order(static_cast<size_t>(n));
  rank_scores(scores, n, order.data());
  std::vector<uint8_t> flag(static_cast<size_t>(n));
  BoxCols<T> cols;
  if (classes == nullptr) {
    gather(boxes, order.data(), nullptr, n, cols);
    GreedyWs<T> ws;
    greedy(view(cols, 0, n), iou_threshold, -1, flag.data(), ws);
    return emit(flag.data(), order.data(), n, keep);
  }
  const Partition part = partition_by_label(classes, order.data(), n);
  gather(boxes, order.data(), &part, n, cols);
  std::vector<uint8_t> fp(static_cast<size_t>(n));
  const std::vector<index_t> gs = groups_by_size(part);
  const index_t ng = part.groups();
  // Classes in parallel, largest first; each thread reuses one workspace.
  RegionErrors err;
#pragma omp parallel if (n >= kParallelNms && ng > 1)
  {
    GreedyWs<T> ws;
#pragma omp for schedule(dynamic, 1)
    for (index_t k = 0; k < ng; ++k)
      err.run([&] {
        const index_t g = gs[k], s = part.start[g];
        greedy(view(cols, s, part.start[g + 1] - s), iou_threshold, -1, fp.data() + s, ws);
      });
  }
  err.rethrow([&] { return nms_oom_text("batched_nms", n, ng); });
  for (index_t p = 0; p < n; ++p) flag[part.perm[p]] = fp[p];
  return emit(flag.data(), order.data(), n, keep);
}

template <typename T>
void nms_sweep_cpu(const T* boxes, const double* scores, const int64_t* classes, index_t n,
                   const double* thresholds, index_t nt, int64_t* keep, index_t* counts) {
  if (nt <= 0) return;
  if (n <= 0) {
    std::fill(counts, counts + nt, index_t(0));
    return;
  }
  std::vector<index_t> order(static_cast<size_t>(n));
  rank_scores(scores, n, order.data());
  Partition part;
  if (classes != nullptr) {
    part = partition_by_label(classes, order.data(), n);
  } else {
    part.perm.resize(static_cast<size_t>(n));
    std::iota(part.perm.begin(), part.perm.end(), index_t(0));
    part.start = {0, n};
  }
  BoxCols<T> cols;
  gather(boxes, order.data(), &part, n, cols);
  const index_t ng = part.groups();
  const std::vector<index_t> gs = groups_by_size(part);
  const bool par = n >= kParallelNms && ng > 1;
  std::vector<uint8_t> fp(static_cast<size_t>(nt * n));  // kept flags, per threshold, by position

  // Thresholds >= 0, in increasing order, 64 at a time: one multi-threshold pass per group.
  std::vector<index_t> pos;
  for (index_t k = 0; k < nt; ++k)
    if (thresholds[k] >= 0) pos.push_back(k);
  std::stable_sort(pos.begin(), pos.end(),
                   [thresholds](index_t a, index_t b) { return thresholds[a] < thresholds[b]; });
  for (size_t c0 = 0; c0 < pos.size(); c0 += 64) {
    const int m = static_cast<int>(std::min<size_t>(64, pos.size() - c0));
    std::vector<T> tt(static_cast<size_t>(m));
    std::vector<double> rho(static_cast<size_t>(m));
    for (int k = 0; k < m; ++k) {
      tt[k] = nms_threshold<T>(thresholds[pos[c0 + k]]);
      rho[k] = Grid<T>::band(thresholds[pos[c0 + k]]);
    }
    std::vector<uint64_t> mask(static_cast<size_t>(n));
    RegionErrors err;
#pragma omp parallel if (par)
    {
      SweepWs<T> ws;
#pragma omp for schedule(dynamic, 1)
      for (index_t q = 0; q < ng; ++q)
        err.run([&] {
          const index_t g = gs[q], s = part.start[g];
          sweep_group(view(cols, s, part.start[g + 1] - s), tt.data(), rho.data(), m,
                      mask.data() + s, ws);
        });
    }
    err.rethrow([&] { return nms_oom_text("nms_sweep", n, ng); });
    for (int k = 0; k < m; ++k) {
      uint8_t* f = fp.data() + pos[c0 + k] * n;
      for (index_t p = 0; p < n; ++p) f[p] = (mask[p] >> k) & 1;
    }
  }
  // Thresholds below 0 (the unpruned pass; the first box usually suppresses the rest) and NaN.
  for (index_t k = 0; k < nt; ++k) {
    if (thresholds[k] >= 0) continue;
    uint8_t* f = fp.data() + k * n;
    RegionErrors err;
#pragma omp parallel if (par)
    {
      GreedyWs<T> ws;
#pragma omp for schedule(dynamic, 1)
      for (index_t q = 0; q < ng; ++q)
        err.run([&] {
          const index_t g = gs[q], s = part.start[g];
          greedy(view(cols, s, part.start[g + 1] - s), thresholds[k], -1, f + s, ws);
        });
    }
    err.rethrow([&] { return nms_oom_text("nms_sweep", n, ng); });
  }
  std::vector<uint8_t> flag(static_cast<size_t>(n));
  for (index_t k = 0; k < nt; ++k) {
    const uint8_t* f = fp.data() + k * n;
    for (index_t p = 0; p < n; ++p) flag[part.perm[p]] = f[p];
    counts[k] = emit(flag.data(), order.data(), n, keep + k * n);
  }
}

template index_t nms_cpu<float>(const float*, const double*, const int64_t*, index_t, double,
                                int64_t*);
template index_t nms_cpu<double>(const double*, const double*, const int64_t*, index_t, double,
                                 int64_t*);
template void nms_sweep_cpu<float>(const float*, const double*, const int64_t*, index_t,
                                   const double*, index_t, int64_t*, index_t*);
template void nms_sweep_cpu<double>(const double*, const double*, const int64_t*, index_t,
                                    const double*, index_t, int64_t*, index_t*);

}  // namespace fastiou
