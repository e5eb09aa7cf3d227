"""Robustness (issue 14): every case runs in a subprocess with a time limit (and, where it
matters, a memory limit), and must end in a result or a clear Python exception, never a signal,
a hang or an abort.

- fork safety: fork / Pool / forkserver / spawn / DataLoader workers after the parent ran a
  parallel kernel, with more than one thread set in the child, with and without torch;
- set_num_threads: bounded, integers only;
- memory exhaustion under RLIMIT_AS: MemoryError naming the size, never SIGABRT;
- bounded work from small inputs, exact integer boxes, clear errors on bad arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from conftest import require

import fastiou

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastiou.__file__)))

PRELUDE = """
import os, sys, resource
import numpy as np
import fastiou

def boxes(n, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 500, (n, 2))
    wh = rng.uniform(1, 80, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)

def limit_memory(mb):
    resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
"""


def run_case(body: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs PRELUDE + body in a fresh interpreter; fails on a signal, a hang or a non-zero exit."""
    code = PRELUDE + textwrap.dedent(body) + "\nprint('CASE-OK', flush=True)\n"
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "2")
    if env:
        e.update(env)
    # A file, not -c: spawn and forkserver children import the parent's __main__.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "case.py")
        with open(path, "w") as f:
            f.write(code)
        try:
            r = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=timeout,
                               env=e, cwd=ROOT)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"case hung (killed after {timeout} s):\n{exc.stdout}\n{exc.stderr}")
    if r.returncode < 0:
        pytest.fail(f"case killed by signal {-r.returncode}:\n{r.stdout}\n{r.stderr[-4000:]}")
    assert r.returncode == 0 and "CASE-OK" in r.stdout, f"exit {r.returncode}:\n{r.stdout}\n{r.stderr[-4000:]}"
    return r


def _has(mod: str) -> bool:
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


# --------------------------------------------------------------------------- fork safety

# The parent runs a parallel kernel on 2 threads first: that is what breaks a forked child's
# first parallel region under libgomp.
FORK_PARENT = """
fastiou.set_num_threads(2)
b = boxes(2000)
ref = fastiou.box_iou(b, b)
pk = fastiou.pack_masks(np.random.default_rng(1).random((16, 256, 256)) > 0.5)

def work(threads):
    if threads:
        fastiou.set_num_threads(threads)
    out = fastiou.box_iou(b, b)
    assert np.array_equal(out, ref)
    fastiou.pack_masks(np.random.default_rng(1).random((16, 256, 256)) > 0.5)
    return fastiou.get_num_threads()
"""


def _torch_first(flag: bool) -> str:
    if not flag:
        return "assert 'torch' not in sys.modules\n"
    return "import torch\ntorch.set_num_threads(2)\n_ = torch.randn(512, 512) @ torch.randn(512, 512)\n"


@pytest.mark.parametrize("with_torch", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("threads", [None, 1, 2])
def test_fork_process(with_torch, threads):
    if with_torch and not _has("torch"):
        pytest.skip("torch not installed")
    run_case(_torch_first(with_torch) + FORK_PARENT + f"""
import multiprocessing as mp
ctx = mp.get_context("fork")
q = ctx.Queue()
def child():
    n = work({threads!r})
    q.put(n)
p = ctx.Process(target=child)
p.start()
p.join(90)
assert p.exitcode == 0, p.exitcode
n = q.get(timeout=5)
# A forked child runs on one thread until it sets its own count.
assert n == ({threads!r} or 1), n
# The parent is untouched.
assert fastiou.get_num_threads() == 2
assert np.array_equal(fastiou.box_iou(b, b), ref)
""")


@pytest.mark.parametrize("with_torch", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_pool(method, with_torch):
    if with_torch and not _has("torch"):
        pytest.skip("torch not installed")
    run_case(_torch_first(with_torch) + FORK_PARENT + f"""
import multiprocessing as mp

def task(i):
    return work(2 if i % 2 else None)

if __name__ == "__main__":
    with mp.get_context({method!r}).Pool(2) as pool:
        got = pool.map(task, range(6))
    assert all(g >= 1 for g in got), got
    if {method!r} == "fork":
        assert sorted(set(got)) == [1, 2], got
""", timeout=240)


def test_fork_twice_and_threads_in_child():
    """A grandchild, and a Python thread of the child, with 2 threads."""
    run_case(FORK_PARENT + """
import threading
pid = os.fork()
if pid == 0:
    try:
        work(2)
        t = threading.Thread(target=work, args=(2,))
        t.start(); t.join()
        pid2 = os.fork()
        if pid2 == 0:
            try:
                work(None); work(2)
            finally:
                os._exit(0)
        _, st = os.waitpid(pid2, 0)
        os._exit(0 if st == 0 else 3)
    except BaseException:
        import traceback; traceback.print_exc()
        os._exit(2)
_, st = os.waitpid(pid, 0)
assert st == 0, st
""")


def test_fork_child_errors_cross_the_helper():
    """Exceptions raised by a kernel run on the child's helper thread reach the caller."""
    run_case(FORK_PARENT + """
pid = os.fork()
if pid == 0:
    code = 1
    try:
        fastiou.set_num_threads(2)
        try:
            fastiou.multiclass_nms(np.zeros((1, 4, 1, 4), np.float32), np.zeros((1, 4, 3), np.float32),
                                   0.5, max_per_class=-5)
        except ValueError:
            code = 0
        work(None)
    finally:
        os._exit(code)
_, st = os.waitpid(pid, 0)
assert st == 0, st
""")


@pytest.mark.parametrize("early_fastiou", [False, True], ids=["fastiou-in-worker", "fastiou-in-parent"])
def test_dataloader_workers(early_fastiou):
    if not _has("torch"):
        pytest.skip("torch not installed")
    run_case(_torch_first(True) + ("" if not early_fastiou else FORK_PARENT) + """
import torch
from torch.utils.data import DataLoader, Dataset

class D(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        fastiou.set_num_threads(2)
        bb = boxes(1500, seed=i)
        iou = fastiou.box_iou(bb, bb)
        keep = fastiou.nms(bb, np.random.default_rng(i).random(1500).astype(np.float32), 0.5)
        return torch.tensor([float(iou.sum()), float(len(keep)), float(fastiou.get_num_threads())])

if __name__ == "__main__":
    got = torch.stack(list(DataLoader(D(), batch_size=None, num_workers=2)))
    for i in range(8):
        bb = boxes(1500, seed=i)
        assert abs(got[i, 0].item() - float(fastiou.box_iou(bb, bb).sum())) < 1e-3 * got[i, 0].item()
    assert (got[:, 2] == 2).all()
""", timeout=240)


# --------------------------------------------------------------------------- set_num_threads

# --------------------------------------------------------------------------- load-aware teams

LOAD_CASE = """
import subprocess, time
from fastiou import _C
cpus = sorted(os.sched_getaffinity(0))
fastiou.set_num_threads(len(cpus))
b = boxes(1500)
ref = fastiou.box_iou(b, b)

def calls(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        assert np.array_equal(fastiou.box_iou(b, b), ref)
        assert fastiou.get_num_threads() == len(cpus)  # the user's setting, whatever the team
        time.sleep(0.01)

busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
try:
    os.sched_setaffinity(busy.pid, {cpus[-1]})
    calls(0.8)
    free = _C.free_cores()
    assert 1 <= free <= len(cpus) - 1, free   # the busy core is left to its process
    assert _C.call_team() == free
finally:
    busy.kill()
    busy.wait()
_C.set_load_aware(False)
assert not _C.load_aware() and _C.free_cores() == 0
calls(0.2)
assert _C.free_cores() == 0                   # no readings while off
assert _C.call_team() == len(cpus)
_C.set_load_aware(True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="load readings are Linux-only, and need two CPUs to leave one")
def test_teams_leave_a_busy_core_to_its_process():
    """With another process spinning on one core, kernel calls run on the other cores only
    (a team of two threads with one beside a busy process took 1.5-12x the 1-thread time)."""
    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("fastiou._C is not built")
    run_case(LOAD_CASE, timeout=60)


def test_load_aware_teams_can_be_turned_off():
    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("fastiou._C is not built")
    run_case("""
from fastiou import _C
assert not _C.load_aware()
fastiou.box_iou(boxes(500), boxes(500))
assert _C.free_cores() == 0
""", env={"FASTIOU_LOAD_AWARE_THREADS": "0"})


def test_set_num_threads_bounds_and_types():
    run_case("""
from fastiou import _C
cap = _C.max_num_threads()
assert cap == 4 * os.cpu_count(), (cap, os.cpu_count())
before = fastiou.get_num_threads()
for bad in (0, -1, cap + 1, 100000, 2 ** 40, 2 ** 70):
    try:
        fastiou.set_num_threads(bad)
    except ValueError as e:
        assert "num_threads" in str(e) and str(cap) in str(e), e
    else:
        raise AssertionError(bad)
for bad in ("x", None, 2.0, True, [2], np.float64(2)):
    try:
        fastiou.set_num_threads(bad)
    except TypeError as e:
        assert "num_threads" in str(e), e
    else:
        raise AssertionError(bad)
assert fastiou.get_num_threads() == before
fastiou.set_num_threads(np.int64(cap))
assert fastiou.get_num_threads() == cap
b = boxes(3000)
fastiou.box_iou(b, b)
fastiou.set_num_threads(1)
assert fastiou.get_num_threads() == 1
""")


# --------------------------------------------------------------------------- memory exhaustion

# Each op runs under a ladder of address-space limits just above what the process holds; every
# run must return or raise MemoryError whose message names a size (a digit), never abort.
# The OpenMP pool is started before the first limit (a thread that cannot be created is a
# fatal libgomp error, not an allocation failure).
MEMORY_LADDER = """
import re
fastiou.set_num_threads(2)
b0 = boxes(5000); fastiou.box_iou(b0, b0)

def vm_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

soft, hard = resource.getrlimit(resource.RLIMIT_AS)
outcomes = []

def ladder(name, fn, extras_mb=(8, 16, 48, 96, 160, 256, 400, 640, 1024)):
    for extra in extras_mb:
        lim = vm_bytes() + int(extra * (1 << 20))
        resource.setrlimit(resource.RLIMIT_AS, (lim, hard))
        try:
            fn()
            outcomes.append((name, extra, "ok"))
        except MemoryError as e:
            msg = str(e)
            assert re.search(r"[0-9]", msg), (name, extra, msg)
            outcomes.append((name, extra, "MemoryError: " + msg[:100]))
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert any(o[0] == name and o[2] == "ok" for o in outcomes), [o for o in outcomes if o[0] == name]
"""


def _memory_case(body: str, must_fail: bool = True):
    r = run_case(MEMORY_LADDER + textwrap.dedent(body) + "\nprint(*outcomes, sep='\\n')\n", timeout=300)
    if must_fail:
        assert "MemoryError" in r.stdout, r.stdout  # the ladder reached the allocation failure


def test_memory_rle():
    _memory_case("""
from fastiou import rle
checker = (np.indices((3000, 3000)).sum(0) % 2).astype(np.uint8)[None].repeat(2, 0)
ladder("rle.encode", lambda: rle.encode(checker))
enc = rle.encode(checker)
ladder("rle.decode", lambda: rle.decode(enc))
poly = [[10.0, 10.0, 2900.0, 40.0, 2950.0, 2990.0, 15.0, 2700.0]] * 40
ladder("rle.from_segmentation", lambda: rle.from_segmentation(poly, 3000, 3000))
""")


def test_memory_nms():
    _memory_case("""
n = 400000
bb = boxes(n)
sc = np.random.default_rng(2).random(n).astype(np.float32)
lab = np.random.default_rng(3).integers(0, 5000, n)
ladder("batched_nms", lambda: fastiou.batched_nms(bb, sc, lab, 0.5))
ladder("nms_sweep", lambda: fastiou.nms_sweep(bb, sc, [0.3, 0.5, 0.7], idxs=lab))
ladder("matrix_nms", lambda: fastiou.matrix_nms(bb, sc, np.arange(n) % 50000))
ladder("soft_nms", lambda: fastiou.soft_nms(bb[:3000], sc[:3000], min_score=0.5))
mb = np.random.default_rng(4).uniform(0, 500, (4, 20000, 4)).astype(np.float32)
mb[..., 2:] += mb[..., :2]
ms = np.random.default_rng(5).random((4, 20000, 80)).astype(np.float32)
ladder("multiclass_nms", lambda: fastiou.multiclass_nms(mb, ms, 0.5, 0.05, 100, 1000))
""")


def test_memory_masks():
    _memory_case("""
m = np.random.default_rng(6).random((12, 1024, 1024)) > 0.5
# The mask ops allocate little beyond their outputs; margins of a few MB only (below that,
# glibc itself may abort when a thread's first use of a library's thread-local data finds no
# memory: "cannot allocate memory for thread-local data", outside fastiou).
small = (4, 8, 16, 32)
ladder("pack_masks", lambda: fastiou.pack_masks(m), small)
pk = fastiou.pack_masks(m)
ladder("resolve_overlaps", lambda: fastiou.resolve_overlaps(pk, np.arange(12.0)), small)
ladder("mask_iou", lambda: fastiou.mask_iou(pk, pk), small)
""", must_fail=False)


# --------------------------------------------------------------------------- bounded work

@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_polygons_outside_the_image_match_pycocotools(backend):
    """Byte-identical to pycocotools for random polygons partly (or wholly) outside the image,
    including long thin ones; the walk skips what lies outside, it does not change the result."""
    M = require("pycocotools.mask")
    if backend == "numba":
        require("numba")
    from fastiou import rle
    with fastiou.use_backend(backend):
        _polygons_vs_pycocotools(M, rle)


def _polygons_vs_pycocotools(M, rle):
    rng = np.random.default_rng(14)
    for trial in range(400):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        k = int(rng.integers(3, 9))
        scale = [1, 3, 20, 400][trial % 4]
        xy = rng.uniform(-scale * w, (scale + 1) * w, (k, 2))
        xy[:, 1] = rng.uniform(-scale * h, (scale + 1) * h, k)
        if trial % 5 == 0:
            xy = np.round(xy)  # vertices on pixel centres and on the window's edges
        if trial % 7 == 0:
            xy[:, 0] = rng.choice([-1.0, 0.0, 0.4, float(w) - 1, float(w), w + 0.6], k)
        poly = [xy.ravel().tolist()]
        ref = M.frPyObjects(poly, h, w)[0]
        got = rle.from_segmentation(poly, h, w)
        assert got == ref, (trial, h, w, poly)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_huge_polygon_is_fast(backend):
    if backend == "numba":
        require("numba")
    run_case(f"""
import time
from fastiou import rle
small = [[1.0, 1, 300, 2, 310, 400, 5, 390]]
with fastiou.use_backend({backend!r}):
    rle.from_segmentation(small, 480, 640)  # compiled (numba) before the clock starts
    t0 = time.perf_counter()
    r = rle.from_segmentation([[-1.3e8, -1.3e8, 1.3e8, -1.2e8, 1.3e8, 1.3e8, 10.0, 1.25e8]], 480, 640)
    r2 = rle.from_segmentation([[5.0, -1.3e8, 5.5, 1.3e8, 400.0, 1.3e8]], 480, 640)
    dt = time.perf_counter() - t0
assert dt < 2.0, dt
assert rle.area(r) > 0 and rle.area(r2) > 0
""", timeout=300)



# --------------------------------------------------------------------------- silently wrong

@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "uint8"])
def test_integer_boxes_match_torchvision(lib, dtype):
    """box_area / box_convert of integer boxes: torchvision's integer arithmetic, wrap-around
    included, with coordinates near 2**53 and 2**62 (float64 would lose the low bits)."""
    torch = require("torch")
    tv = require("torchvision.ops")
    rng = np.random.default_rng(8)
    info = np.iinfo(dtype)
    parts = [rng.integers(max(info.min, -1000), min(info.max, 1000), (64, 4))]
    if dtype == "int64":
        for base in (2 ** 53, 2 ** 62, -(2 ** 62)):
            parts.append(base + rng.integers(-5, 6, (32, 4)))
        parts.append(np.array([[0, 0, 2 ** 53 + 1, 1], [0, 0, 2 ** 62, 2 ** 62], [-(2 ** 62), 0, 2 ** 62, 3]]))
    else:
        parts.append(rng.integers(info.min, info.max, (64, 4), endpoint=True))
    b = np.concatenate(parts).astype(dtype)
    tb = torch.from_numpy(b)
    arg = b if lib == "numpy" else tb
    to_np = (lambda v: v) if lib == "numpy" else (lambda v: v.numpy())
    want = tv.box_area(tb).numpy()
    got = to_np(fastiou.box_area(arg))
    assert got.dtype == want.dtype and np.array_equal(got, want)
    up = tb if dtype in ("int32", "int64") else tb.to(torch.int32)  # torchvision's _upcast
    for fmt in ("xywh", "cxcywh"):  # w * h in the same integer arithmetic
        got = to_np(fastiou.box_area(arg, fmt=fmt))
        assert np.array_equal(got, (up[:, 2] * up[:, 3]).numpy())
    for i in ("xyxy", "xywh", "cxcywh"):
        for o in ("xyxy", "xywh", "cxcywh"):
            want = tv.box_convert(tb, i, o).numpy()
            got = to_np(fastiou.box_convert(arg, i, o))
            assert got.dtype == want.dtype, (i, o, got.dtype, want.dtype)
            np.testing.assert_array_equal(got, want, err_msg=f"{i} -> {o}")


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_batched_nms_nan_idxs_one_rule(lib):
    """NaN float class ids: every NaN its own class, on numpy and torch alike, as torchvision
    (its coordinate-offset path, used below 4000 boxes on the CPU)."""
    torch = require("torch")
    tv = require("torchvision.ops")
    rng = np.random.default_rng(9)
    for trial in range(30):
        n = int(rng.integers(2, 60))
        xy = rng.uniform(0, 50, (n, 2))
        b = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1).astype(np.float32)
        s = rng.random(n).astype(np.float32)
        idxs = rng.integers(0, 3, n).astype(np.float64)
        idxs[rng.random(n) < 0.4] = np.nan
        want = tv.batched_nms(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(idxs), 0.3).numpy()
        args = (b, s, idxs) if lib == "numpy" else tuple(torch.from_numpy(v) for v in (b, s, idxs))
        got = np.asarray(fastiou.batched_nms(*args, 0.3))
        np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}")


def test_numba_cache_not_in_the_package(tmp_path):
    """Numba's cache goes to the user's cache directory, never next to fastiou's sources."""
    require("numba")
    run_case(f"""
import glob, time
pkg = os.path.join(os.path.dirname(fastiou.__file__), "_backends")
before = {{p: os.path.getmtime(p) for p in glob.glob(os.path.join(pkg, "**", "*.nb*"), recursive=True)}}
t0 = time.time()
with fastiou.use_backend("numba"):
    b = boxes(50)
    fastiou.box_iou(b, b)
    fastiou.nms(b, np.arange(50.0, dtype=np.float32), 0.5)
after = {{p: os.path.getmtime(p) for p in glob.glob(os.path.join(pkg, "**", "*.nb*"), recursive=True)}}
new = [p for p, m in after.items() if before.get(p) != m]
assert not new, new
cached = glob.glob(os.path.join({str(tmp_path)!r}, "**", "*.nbi"), recursive=True)
assert cached, "nothing cached in the user's cache directory"
""", env={"XDG_CACHE_HOME": str(tmp_path), "NUMBA_CACHE_DIR": ""}, timeout=300)


# --------------------------------------------------------------------------- clear errors

def test_clear_errors():
    torch = require("torch")
    from fastiou.compat import pycocotools_mask as cm
    b = np.array([[0, 0, 10, 10], [1, 1, 5, 5]], np.float32)
    tb = torch.from_numpy(b)
    with pytest.raises(TypeError, match="boxes1: expected a dense"):
        fastiou.box_iou(tb.to_sparse(), tb)
    with pytest.raises(TypeError, match="boxes2: expected a dense"):
        fastiou.generalized_box_iou(tb, tb.to_sparse())
    for eps in ("x", None, [1e-7], True):
        with pytest.raises(TypeError, match="eps: expected a real number"):
            fastiou.distance_box_iou(b, b, eps=eps)
        with pytest.raises(TypeError, match="eps: expected a real number"):
            fastiou.box_iou_aligned(b, b, mode="ciou", eps=eps)
    for mode in (["iou"], None, 3, "IOU"):
        with pytest.raises(ValueError, match="mode: expected one of"):
            fastiou.box_iou_aligned(b, b, mode=mode)
    with pytest.raises(ValueError, match=r"pyobj\[1\]: a list whose first item is a box"):
        cm.frPyObjects([[0, 0, 5, 5], [1, 1, 3, 3, 5, 5, 2, 7]], 10, 10)
    with pytest.raises(ValueError, match=r"pyobj: an ndarray must hold xywh boxes, shape \(N, 4\), got \(2, 5\)"):
        cm.frPyObjects(np.zeros((2, 5)), 10, 10)
    for h in ("10", None, True):
        with pytest.raises(TypeError, match="h: expected a non-negative integer"):
            cm.frPyObjects([[1.0, 1, 3, 3, 5, 5, 2, 7]], h, 10)
    o = np.zeros((2, 2), np.float32)
    o.flags.writeable = False
    for backend in ("cpp", "numba"):
        with fastiou.use_backend(backend), pytest.raises(ValueError, match="out: not writable"):
            fastiou.box_iou(b, b, out=o)


def test_frpyobjects_float_size_as_pycocotools():
    M = require("pycocotools.mask")
    from fastiou.compat import pycocotools_mask as cm
    poly = [[1.0, 1, 3, 3, 5, 5, 2, 7], [0.5, 0.5, 9, 1, 4, 8.5]]
    for h, w in ((10.0, 10.5), (10, 10), (np.float32(12.9), 7.2), (np.int64(9), 11.0)):
        assert cm.frPyObjects(poly, h, w) == M.frPyObjects(poly, h, w)


def test_decode_needs_no_second_buffer():
    """rle.decode's peak is its output (plus a strip of 32 columns), not twice the output: it
    succeeds with 40 MB to spare over a 144 MB output (the former decode needed 288 MB)."""
    run_case("""
from fastiou import rle
h = w = 12000
m = np.zeros((h, w), np.uint8)
m[1000:9000, 2000:7000] = 1
m[::97, ::53] ^= 1
enc = rle.encode(m)
del m
def vm_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
lim = vm_bytes() + h * w + (40 << 20)
resource.setrlimit(resource.RLIMIT_AS, (lim, resource.getrlimit(resource.RLIMIT_AS)[1]))
out = rle.decode(enc)
assert out.shape == (h, w) and int(out.sum()) == int(rle.area(enc))
""")
