"""Numba CPU backend: COCO run-length masks, with the same results as fastiou._C (csrc/cpu/rle.cpp).

The same functions, arguments, checks and error messages as the ``rle_*`` functions of
fastiou._C; counts strings equal byte for byte and IoU bit for bit. The algorithms are the
plain ones of pycocotools' maskApi.c (a column-major scan to encode, the two-list run walk for
IoU and merge) where the C++ code uses faster equivalents (row strips, interval lists);
they compute the same integers, so the results are the same. Every kernel is serial.

Integer arithmetic that pycocotools does in ``uint32`` (the box of a mask whose foreground runs
are all empty wraps its width) is done here in int64 and masked to 32 bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_common import _FLAGS

_MAX_PIXELS = 1 << 32
_MAX_COORD = float(1 << 27)
_U32 = 0xFFFFFFFF

# csrc/include/fastiou/ops.h's RleError, and rle_error_text's words.
_ERRORS = {
    1: "a character outside '0'..'o' (ASCII 48..111)",
    2: "the string ends inside a count (continuation bit set)",
    3: "a count longer than 7 characters",
    4: "a negative run length",
    5: "the run lengths add up to more than h * w",
    6: "the run lengths add up to less than h * w",
}


# ------------------------------------------------------------------------------ checks

def _array(a, name, dtype, shape, writable=False):
    """As fastiou._C's checked(): dtype, shape (-1: any), C-contiguity, writability."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if a.ndim != len(shape) or any(s >= 0 and n != s for n, s in zip(a.shape, shape)):
        want = "(" + ", ".join("*" if s < 0 else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name}: not writable")
    return a


def _check_size(h, w, what):
    h, w = int(h), int(w)
    if h < 0 or w < 0:
        raise ValueError(f"{what}: expected a non-negative size [h, w], got [{h}, {w}]")
    if h * w >= _MAX_PIXELS:
        raise ValueError(f"{what}: h * w must stay below 2**32 (uint32 run lengths), got [{h}, {w}]")


def _sizes(sizes, n, name):
    _array(sizes, f"{name} sizes", np.int64, (n, 2))
    for i in range(n):
        _check_size(sizes[i, 0], sizes[i, 1], f"{name}[{i}]['size']")
    return sizes


# ------------------------------------------------------------------------------ strings

@njit(**_FLAGS)
def _parse(s, hw):
    """(counts uint32, error code) of one counts string (uint8 array), as rle_from_string."""
    n = s.shape[0]
    cnts = np.empty(n, np.uint32)
    m = 0
    total = 0
    p = 0
    while p < n:
        x = 0
        k = 0
        c = 0
        more = True
        while more:
            if p >= n:
                return cnts[:0], 2
            if k >= 7:
                return cnts[:0], 3
            c = np.int64(s[p]) - 48
            if c < 0 or c > 63:
                return cnts[:0], 1
            x |= (c & 0x1f) << (5 * k)
            more = (c & 0x20) != 0
            p += 1
            k += 1
        if c & 0x10:
            x -= np.int64(1) << (5 * k)
        if m > 2:
            x += np.int64(cnts[m - 2])
        if x < 0:
            return cnts[:0], 4
        if x > hw - total:
            return cnts[:0], 5
        total += x
        cnts[m] = x
        m += 1
    if total != hw:
        return cnts[:0], 6
    return cnts[:m], 0


@njit(**_FLAGS)
def _to_string(cnts, m):
    """pycocotools' rleToString of cnts[:m], as a uint8 array."""
    out = np.empty(7 * m + 1, np.uint8)
    p = 0
    for i in range(m):
        x = np.int64(cnts[i])
        if i > 2:
            x -= np.int64(cnts[i - 2])
        more = True
        while more:
            c = x & 0x1f
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out[p] = c + 48
            p += 1
    return out[:p]


def _bytes(cnts):
    return _to_string(cnts, len(cnts)).tobytes()


def _parse_all(counts, sizes, name):
    """[uint32 counts] of a list of bytes, each checked against its size."""
    out = []
    for i, c in enumerate(counts):
        if not isinstance(c, bytes):
            raise ValueError(f"{name}[{i}]['counts']: expected bytes, got {type(c).__name__}")
        h, w = int(sizes[i, 0]), int(sizes[i, 1])
        cnts, err = _parse(np.frombuffer(c, np.uint8), np.int64(h * w))
        if err:
            raise ValueError(f"{name}[{i}]['counts']: malformed counts for size [{h}, {w}]: "
                             f"{_ERRORS[err]}")
        out.append(cnts)
    return out


def _flat(cnts_list):
    """One uint32 array and int64 offsets (n + 1,) of a list of counts."""
    offs = np.zeros(len(cnts_list) + 1, np.int64)
    for i, c in enumerate(cnts_list):
        offs[i + 1] = offs[i] + len(c)
    flat = np.concatenate(cnts_list).astype(np.uint32) if cnts_list else np.zeros(0, np.uint32)
    return flat, offs


# ------------------------------------------------------------------------------ encode, decode

@njit(**_FLAGS)
def _encode_one(m):
    """Counts of one (h, w) mask (any strides; non-zero = foreground), column-major runs."""
    h, w = m.shape
    cnts = np.empty(h * w + 1, np.uint32)
    k = 0
    prev = False
    c = 0
    for x in range(w):
        for y in range(h):
            v = m[y, x] != 0
            if v != prev:
                cnts[k] = c
                k += 1
                c = 0
                prev = v
            c += 1
    cnts[k] = c
    k += 1
    return _to_string(cnts, k)


def rle_encode(masks):
    if not isinstance(masks, np.ndarray):
        raise ValueError(f"masks: expected a numpy array, got {type(masks).__name__}")
    if masks.dtype != np.uint8:
        raise ValueError(f"masks: expected dtype uint8, got {masks.dtype}")
    if masks.ndim != 3:
        raise ValueError(f"masks: expected shape (N, H, W), got {masks.shape}")
    n, h, w = masks.shape
    _check_size(h, w, "masks")
    if masks.size and any(s <= 0 for s, e in zip(masks.strides, masks.shape) if e > 1):
        raise ValueError(f"masks: expected positive strides, got {masks.strides}")
    return [_encode_one(masks[i]).tobytes() for i in range(n)]


@njit(**_FLAGS)
def _decode_one(cnts, h, w, column_major, out):
    """Writes one mask to out (h * w bytes): row-major (h, w) or column-major."""
    pos = 0
    v = np.uint8(0)
    for j in range(cnts.shape[0]):
        for _ in range(cnts[j]):
            if column_major:
                out[pos] = v
            else:
                x = pos // h
                y = pos - x * h
                out[y * w + x] = v
            pos += 1
        v = np.uint8(1) - v


def rle_decode(counts, h, w, out, column_major, name):
    _check_size(h, w, name)
    n = len(counts)
    _array(out, "out", np.uint8, (n, w, h) if column_major else (n, h, w), True)
    sizes = np.empty((n, 2), np.int64)
    sizes[:, 0], sizes[:, 1] = h, w
    parsed = _parse_all(counts, sizes, name)
    flat = out.reshape(n, -1)
    for i in range(n):
        _decode_one(parsed[i], h, w, bool(column_major), flat[i])


# ------------------------------------------------------------------------------ area, boxes

@njit(**_FLAGS)
def _area(cnts):
    a = 0
    for j in range(1, cnts.shape[0], 2):
        a += np.int64(cnts[j])
    return a


def rle_area(counts, sizes, out, name):
    n = len(counts)
    _sizes(sizes, n, name)
    _array(out, "out", np.uint32, (n,), True)
    for i, c in enumerate(_parse_all(counts, sizes, name)):
        out[i] = _area(c)


@njit(**_FLAGS)
def _bbox(cnts, h, w, o):
    """pycocotools 2.0.11's rleToBbox for one mask, in its uint32 arithmetic."""
    m = (cnts.shape[0] // 2) * 2
    if m == 0:
        o[0] = o[1] = o[2] = o[3] = 0.0
        return
    xs = w
    ys = h
    xe = 0
    ye = 0
    cc = 0
    for j in range(m):
        start = cc
        cc += np.int64(cnts[j])
        if j % 2 == 0 or cnts[j] == 0:
            continue
        x0 = start // h
        y0 = start % h
        x1 = (cc - 1) // h
        y1 = (cc - 1) % h
        xs = min(xs, x0)
        xe = max(xe, x1)
        if x0 < x1:
            ys = 0
            ye = h - 1
        else:
            ys = min(ys, y0)
            ye = max(ye, y1)
    o[0] = xs
    o[2] = (xe - xs + 1) & 0xFFFFFFFF
    o[1] = ys
    o[3] = (ye - ys + 1) & 0xFFFFFFFF


def rle_to_bbox(counts, sizes, out, name):
    n = len(counts)
    _sizes(sizes, n, name)
    _array(out, "out", np.float64, (n, 4), True)
    for i, c in enumerate(_parse_all(counts, sizes, name)):
        _bbox(c, np.int64(sizes[i, 0]), np.int64(sizes[i, 1]), out[i])


# ------------------------------------------------------------------------------ merge

@njit(**_FLAGS)
def _merge_two(a, b, intersect):
    """pycocotools' rleMerge walk for two masks: the counts it writes."""
    ma = a.shape[0]
    mb = b.shape[0]
    out = np.empty(ma + mb + 1, np.uint32)
    m = 0
    ca = np.int64(a[0]) if ma else 0
    cb = np.int64(b[0]) if mb else 0
    cc = 0
    v = False
    va = False
    vb = False
    ia = 1
    ib = 1
    ct = 1
    while ct > 0:
        c = min(ca, cb)
        cc += c
        ct = 0
        ca -= c
        if ca == 0 and ia < ma:
            ca = np.int64(a[ia])
            ia += 1
            va = not va
        ct += ca
        cb -= c
        if cb == 0 and ib < mb:
            cb = np.int64(b[ib])
            ib += 1
            vb = not vb
        ct += cb
        vp = v
        v = (va and vb) if intersect else (va or vb)
        if v != vp or ct == 0:
            out[m] = cc
            m += 1
            cc = 0
    return out[:m]


@njit(**_FLAGS)
def _without_empty_runs(c):
    """Runs without the empty ones inside (each joins its two neighbours)."""
    m = c.shape[0]
    out = np.empty(m, np.uint32)
    if m == 0:
        return out
    k = 0
    out[k] = c[0]
    k += 1
    j = 1
    while j < m:
        if c[j] > 0:
            out[k] = c[j]
            k += 1
            j += 1
        else:
            j += 1
            if j < m:
                out[k - 1] += c[j]
                j += 1
    return out[:k]


def rle_merge(counts, sizes, intersect, name):
    n = len(counts)
    _sizes(sizes, n, name)
    parsed = _parse_all(counts, sizes, name)
    if n == 0:
        return None
    hw = int(sizes[0, 0]) * int(sizes[0, 1])
    acc = parsed[0]
    for i in range(1, n):
        if sizes[i, 0] != sizes[0, 0] or sizes[i, 1] != sizes[0, 1]:
            return None
        merged = _merge_two(acc, parsed[i], bool(intersect))
        if int(merged.sum(dtype=np.uint64)) != hw:
            # pycocotools' walk stopped early (empty runs inside both): walk without them
            merged = _merge_two(_without_empty_runs(acc), _without_empty_runs(parsed[i]),
                                bool(intersect))
        acc = merged
    return _bytes(acc)


# ------------------------------------------------------------------------------ iou

@njit(**_FLAGS)
def _fmin(a, b):
    # C's fmin: a NaN argument gives the other one.
    if a != a:
        return b
    if b != b:
        return a
    return a if a < b else b


@njit(**_FLAGS)
def _fmax(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a > b else b


@njit(**_FLAGS)
def _box_pair(d, g, crowd):
    """pycocotools' bbIou for one pair (same operations, same order)."""
    da = d[2] * d[3]
    ga = g[2] * g[3]
    w = _fmin(d[2] + d[0], g[2] + g[0]) - _fmax(d[0], g[0])
    if w <= 0:
        return 0.0
    h = _fmin(d[3] + d[1], g[3] + g[1]) - _fmax(d[1], g[1])
    if h <= 0:
        return 0.0
    i = w * h
    u = da if crowd else da + ga - i
    return i / u


@njit(**_FLAGS)
def _box_iou_kernel(dt, gt, iscrowd, out):
    for d in range(dt.shape[0]):
        for g in range(gt.shape[0]):
            out[d, g] = _box_pair(dt[d], gt[g], iscrowd[g] != 0)


@njit(**_FLAGS)
def _rle_iou_kernel(dflat, doffs, dsz, gflat, goffs, gsz, iscrowd, out):
    nd = doffs.shape[0] - 1
    ng = goffs.shape[0] - 1
    db = np.empty((nd, 4))
    gb = np.empty((ng, 4))
    for d in range(nd):
        _bbox(dflat[doffs[d]:doffs[d + 1]], dsz[d, 0], dsz[d, 1], db[d])
    for g in range(ng):
        _bbox(gflat[goffs[g]:goffs[g + 1]], gsz[g, 0], gsz[g, 1], gb[g])
    for d in range(nd):
        for g in range(ng):
            crowd = iscrowd[g] != 0
            o = _box_pair(db[d], gb[g], crowd)
            if o > 0:
                if dsz[d, 0] != gsz[g, 0] or dsz[d, 1] != gsz[g, 1]:
                    o = -1.0
                else:
                    # pycocotools' rleIou walk over both run lists, except that runs of
                    # length 0 are all stepped over (pycocotools stops when both lists
                    # reach one at once, undercounting; see fastiou/rle.py).
                    a = dflat[doffs[d]:doffs[d + 1]]
                    b = gflat[goffs[g]:goffs[g + 1]]
                    ka = a.shape[0]
                    kb = b.shape[0]
                    ca = np.int64(a[0])
                    cb = np.int64(b[0])
                    va = False
                    vb = False
                    ia = 1
                    ib = 1
                    inter = 0
                    uni = 0
                    ct = 1
                    while ct > 0:
                        c = min(ca, cb)
                        if va or vb:
                            uni += c
                            if va and vb:
                                inter += c
                        ct = 0
                        ca -= c
                        while ca == 0 and ia < ka:
                            ca = np.int64(a[ia])
                            ia += 1
                            va = not va
                        ct += ca
                        cb -= c
                        while cb == 0 and ib < kb:
                            cb = np.int64(b[ib])
                            ib += 1
                            vb = not vb
                        ct += cb
                    if inter == 0:
                        uni = 1
                    elif crowd:
                        uni = 0
                        for j in range(1, ka, 2):
                            uni += np.int64(a[j])
                    o = np.float64(inter) / np.float64(uni)
            out[d, g] = o


def _crowd(iscrowd, ng):
    if iscrowd is None:
        return np.zeros(ng, np.uint8)
    if not isinstance(iscrowd, np.ndarray):
        raise ValueError("iscrowd: expected a uint8 numpy array or None")
    return _array(iscrowd, "iscrowd", np.uint8, (ng,))


def rle_iou(dt, dt_sizes, gt, gt_sizes, iscrowd, out):
    nd, ng = len(dt), len(gt)
    _sizes(dt_sizes, nd, "dt")
    _sizes(gt_sizes, ng, "gt")
    crowd = _crowd(iscrowd, ng)
    _array(out, "out", np.float64, (nd, ng), True)
    dflat, doffs = _flat(_parse_all(dt, dt_sizes, "dt"))
    gflat, goffs = _flat(_parse_all(gt, gt_sizes, "gt"))
    if nd and ng:
        _rle_iou_kernel(dflat, doffs, dt_sizes, gflat, goffs, gt_sizes, crowd, out)


def rle_box_iou(dt, gt, iscrowd, out):
    _array(dt, "dt", np.float64, (-1, 4))
    _array(gt, "gt", np.float64, (-1, 4))
    crowd = _crowd(iscrowd, gt.shape[0])
    _array(out, "out", np.float64, (dt.shape[0], gt.shape[0]), True)
    if out.size:
        _box_iou_kernel(dt, gt, crowd, out)


# ------------------------------------------------------------------------------ polygons

@njit(**_FLAGS)
def _boundary_point(u, v, pu, pv, h, w, a, na):
    """pycocotools rleFrPoly's test of one step of the walk; appends to a, returns the count."""
    if u != pu:
        xd = np.float64(u if u < pu else u - 1)
        xd = (xd + .5) / 5.0 - .5
        if not (np.floor(xd) != xd or xd < 0 or xd > np.float64(w - 1)):
            yd = np.float64(v if v < pv else pv)
            yd = (yd + .5) / 5.0 - .5
            if yd < 0:
                yd = 0.0
            elif yd > np.float64(h):
                yd = np.float64(h)
            yd = np.ceil(yd)
            a[na] = (np.int64(xd) * h + np.int64(yd)) & 0xFFFFFFFF
            na += 1
    return na


@njit(**_FLAGS)
def _uv(d, flip, last, xmajor, xs, ys, s):
    """Step d of pycocotools' walk along an edge, as it computes it (rle.cpp's uv)."""
    t = last - d if flip else d
    if xmajor:
        return t + xs, np.int64(ys + s * t + .5)
    return np.int64(xs + s * t + .5), t + ys


@njit(**_FLAGS)
def _walk_edge(last, flip, xmajor, xs, ys, s, h, w, a, na, have, pu, pv):
    """rle.cpp's walk_edge: the steps of one edge that can give a boundary point (the first,
    and those whose u lies in the image's window), each after its predecessor's state; the
    steps outside the window are skipped by bisection (u is monotone in d). Returns
    (na, have, pu, pv) after the edge."""
    ulo = 2
    uhi = 5 * w - 2
    u, v = _uv(0, flip, last, xmajor, xs, ys, s)
    if have:
        na = _boundary_point(u, v, pu, pv, h, w, a, na)
    have = True
    pu = u
    pv = v
    if last == 0:
        return na, have, pu, pv
    ul, vl = _uv(last, flip, last, xmajor, xs, ys, s)
    up = ul >= u
    lo = 1
    hi = last + 1
    while lo < hi:  # first step not before the window
        mid = lo + (hi - lo) // 2
        um = _uv(mid, flip, last, xmajor, xs, ys, s)[0]
        if (um < ulo) if up else (um > uhi):
            lo = mid + 1
        else:
            hi = mid
    da = lo
    hi = last + 1
    while lo < hi:  # first step past the window
        mid = lo + (hi - lo) // 2
        um = _uv(mid, flip, last, xmajor, xs, ys, s)[0]
        if not ((um > uhi) if up else (um < ulo)):
            lo = mid + 1
        else:
            hi = mid
    db = lo - 1
    if da <= db:
        pu, pv = _uv(da - 1, flip, last, xmajor, xs, ys, s)
        changes = abs(_uv(db, flip, last, xmajor, xs, ys, s)[0] - _uv(da, flip, last, xmajor, xs, ys, s)[0]) + 1
        if db - da < 4 * changes + 64:
            for d in range(da, db + 1):
                uc, vc = _uv(d, flip, last, xmajor, xs, ys, s)
                na = _boundary_point(uc, vc, pu, pv, h, w, a, na)
                pu = uc
                pv = vc
        else:
            d = da
            while d <= db:
                uc, vc = _uv(d, flip, last, xmajor, xs, ys, s)
                na = _boundary_point(uc, vc, pu, pv, h, w, a, na)
                step = 1
                lo2 = d
                while lo2 + step <= db and _uv(lo2 + step, flip, last, xmajor, xs, ys, s)[0] == uc:
                    lo2 += step
                    step *= 2
                hi2 = min(lo2 + step, db + 1)
                while hi2 - lo2 > 1:
                    mid = lo2 + (hi2 - lo2) // 2
                    if _uv(mid, flip, last, xmajor, xs, ys, s)[0] == uc:
                        lo2 = mid
                    else:
                        hi2 = mid
                d = hi2
                if d <= db:
                    pu, pv = _uv(d - 1, flip, last, xmajor, xs, ys, s)
    return na, True, ul, vl


@njit(**_FLAGS)
def _polygon(xy, h, w):
    """pycocotools' rleFrPoly of the vertices xy (2K,), as counts."""
    if h == 0 or w == 0:
        return np.zeros(1, np.uint32)
    k = xy.shape[0] // 2
    x = np.empty(k + 1, np.int64)
    y = np.empty(k + 1, np.int64)
    for j in range(k):
        x[j] = np.int64(5.0 * xy[2 * j] + .5)
        y[j] = np.int64(5.0 * xy[2 * j + 1] + .5)
    if k > 0:
        x[k] = x[0]
        y[k] = y[0]
    total = 1
    for j in range(k):  # points an edge can give: at most its steps, and a window's worth
        total += min(max(abs(x[j] - x[j + 1]), abs(y[j] - y[j + 1])) + 1, 5 * w + 8)
    a = np.empty(total, np.int64)
    na = 0
    have = False
    pu = 0
    pv = 0
    for j in range(k):
        xs = x[j]
        xe = x[j + 1]
        ys = y[j]
        ye = y[j + 1]
        dx = abs(xe - xs)
        dy = abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe = xe, xs
            ys, ye = ye, ys
        if dx >= dy:
            s = np.float64(ye - ys) / np.float64(dx) if dx else 0.0  # as rle.cpp
        else:
            s = np.float64(xe - xs) / np.float64(dy)
        na, have, pu, pv = _walk_edge(max(dx, dy), flip, dx >= dy, xs, ys, s, h, w, a, na, have, pu, pv)
    a[na] = h * w
    na += 1
    srt = np.sort(a[:na])
    diffs = np.empty(na, np.int64)
    p = 0
    for j in range(na):
        diffs[j] = srt[j] - p
        p = srt[j]
    return _without_empty_runs(diffs.astype(np.uint32))


def rle_from_polygons(polygons, h, w, name):
    _check_size(h, w, name)
    out = []
    for i, p in enumerate(polygons):
        what = f"{name}[{i}]"
        if not isinstance(p, np.ndarray):
            raise ValueError(f"{what}: expected a float64 numpy array")
        _array(p, what, np.float64, (-1,))
        if p.shape[0] % 2:
            raise ValueError(f"{what}: expected an even number of coordinates (x0, y0, x1, y1, ...), "
                             f"got {p.shape[0]}")
        bad = ~(np.abs(p) < _MAX_COORD)
        if bad.any():
            raise ValueError(f"{what}: coordinates must be finite and below 2**27 in magnitude, got "
                             f"{p[np.argmax(bad)]:f}")
        out.append(_bytes(_polygon(p, np.int64(h), np.int64(w))))
    return out


def rle_from_counts(counts, sizes, name):
    n = len(counts)
    _sizes(sizes, n, name)
    out = []
    for i, c in enumerate(counts):
        what = f"{name}[{i}]['counts']"
        if not isinstance(c, np.ndarray):
            raise ValueError(f"{what}: expected a uint32 numpy array")
        _array(c, what, np.uint32, (-1,))
        total = int(c.sum(dtype=np.uint64))
        hw = int(sizes[i, 0]) * int(sizes[i, 1])
        if total != hw:
            raise ValueError(f"{what}: the run lengths add up to {total}, expected h * w = {hw}")
        out.append(_bytes(c))
    return out
