"""The public surface around the ops: imports, backends, devices, argument checking."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import fastiou
from conftest import any_gpu_library, library_unavailable

HEAVY = ("torch", "torchvision", "cupy", "numba")
HOST_BACKENDS = ("cpp", "numba")
GPU_BACKENDS = ("cuda", "cupy")

A = np.array([[0, 0, 2, 2], [10, 10, 20, 20]], dtype=np.float32)
B = np.array([[0, 0, 2, 1], [0, 0, 1, 1], [12, 12, 20, 20]], dtype=np.float32)
A_B_IOU = np.array([[0.5, 0.25, 0.0], [0.0, 0.0, 0.64]], dtype=np.float32)


def run_python(code: str, **env_overrides) -> str:
    """Run ``code`` in a fresh interpreter (FASTIOU_BACKEND cleared); return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "FASTIOU_BACKEND"}
    env.update(env_overrides)
    # Run outside the source tree: from the repository root, "-c" would import the source
    # folder fastiou/ (without its built extension) instead of the installed package.
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


LOADED = """
import sys, json
def loaded():
    return sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'cupy', 'numba'})
"""


def unavailable_backends() -> dict[str, str]:
    return {k: v["reason"] for k, v in fastiou.backends().items() if not v["available"]}


def gpu_array(lib: str, a: np.ndarray):
    if lib == "torch":
        import torch

        return torch.from_numpy(np.array(a, copy=True)).cuda()
    import cupy

    return cupy.asarray(a)


def host_array(lib: str, a: np.ndarray):
    """A host array of the library that also makes ``lib`` GPU arrays."""
    if lib == "torch":
        import torch

        return torch.from_numpy(np.array(a, copy=True))
    return np.array(a, copy=True)


def first_available_host_backend() -> str:
    for name in HOST_BACKENDS:
        if fastiou.backends()[name]["available"]:
            return name
    pytest.skip("no host backend available")


def need_gpu() -> str:
    lib = any_gpu_library()
    if lib is None:
        pytest.skip("no CUDA device seen by torch or cupy")
    return lib


# --------------------------------------------------------------------------- imports
def test_import_loads_no_array_library_or_numba():
    out = run_python(LOADED + "import fastiou\nprint(json.dumps(loaded()))")
    assert json.loads(out) == [], "import fastiou imported " + out


def test_host_calls_on_numpy_load_no_array_library():
    """numpy in, default backend: torch/cupy are detected without importing them, numba not needed."""
    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("cpp backend unavailable: the default host backend would be numba")
    out = run_python(LOADED + """
import numpy as np, fastiou
b = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], np.float32)
r = fastiou.box_iou(b, b)
fastiou.generalized_box_iou(b, b); fastiou.box_area(b); fastiou.box_convert(b, 'xyxy', 'cxcywh')
fastiou.masks_to_boxes(np.ones((1, 3, 3), np.uint8)); fastiou.box_iou_aligned(b, b, mode='ciou')
assert isinstance(r, np.ndarray) and r[0, 0] == 1.0
print(json.dumps(loaded()))
""")
    assert json.loads(out) == []


def test_public_names():
    for name in ("box_area", "box_convert", "box_iou", "generalized_box_iou", "distance_box_iou",
                 "complete_box_iou", "box_ioa", "box_iou_aligned", "masks_to_boxes", "backends",
                 "use_backend", "InputError"):
        assert hasattr(fastiou, name), name
        assert name in fastiou.__all__, name


@pytest.mark.parametrize("name, params", [
    ("box_area", [("boxes", None), ("fmt", "xyxy")]),
    ("box_convert", [("boxes", None), ("in_fmt", None), ("out_fmt", None)]),
    ("box_iou", [("boxes1", None), ("boxes2", None), ("fmt", "xyxy")]),
    ("generalized_box_iou", [("boxes1", None), ("boxes2", None)]),
    ("distance_box_iou", [("boxes1", None), ("boxes2", None), ("eps", 1e-7)]),
    ("complete_box_iou", [("boxes1", None), ("boxes2", None), ("eps", 1e-7)]),
    ("box_ioa", [("boxes1", None), ("boxes2", None)]),
    ("box_iou_aligned", [("boxes1", None), ("boxes2", None), ("mode", "iou")]),
    ("masks_to_boxes", [("masks", None)]),
])
def test_signatures_follow_torchvision(name, params):
    sig = inspect.signature(getattr(fastiou, name))
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert [p.name for p in positional][:len(params)] == [n for n, _ in params]
    for pname, default in params:
        if default is not None:
            assert sig.parameters[pname].default == default, f"{name}({pname}=...) default"
    if "boxes2" in sig.parameters and name != "box_iou_aligned":
        out = sig.parameters.get("out")
        assert out is not None and out.kind == out.KEYWORD_ONLY and out.default is None


def test_keyword_calls():
    r = fastiou.box_iou(boxes1=A, boxes2=B, fmt="xyxy")
    np.testing.assert_array_equal(r, A_B_IOU)
    assert fastiou.box_area(boxes=A, fmt="xyxy").tolist() == [4, 100]
    assert fastiou.box_convert(boxes=A, in_fmt="xyxy", out_fmt="xywh")[1].tolist() == [10, 10, 10, 10]


# --------------------------------------------------------------------------- errors
def test_input_error_is_value_error_and_runtime_error():
    assert issubclass(fastiou.InputError, ValueError)
    assert issubclass(fastiou.InputError, RuntimeError)
    bad = np.zeros((5, 3), np.float32)
    for caught in (ValueError, RuntimeError, fastiou.InputError):
        with pytest.raises(caught):
            fastiou.box_iou(bad, B)


@pytest.mark.parametrize("call", [
    lambda x: fastiou.box_iou(x, B),
    lambda x: fastiou.box_iou(A, x),
    lambda x: fastiou.generalized_box_iou(x, B),
    lambda x: fastiou.distance_box_iou(A, x),
    lambda x: fastiou.complete_box_iou(x, B),
    lambda x: fastiou.box_ioa(A, x),
    lambda x: fastiou.box_iou_aligned(x, A),
    lambda x: fastiou.box_area(x),
    lambda x: fastiou.box_convert(x, "xyxy", "xywh"),
    lambda x: fastiou.masks_to_boxes(x),
], ids=["box_iou-1", "box_iou-2", "giou", "diou", "ciou", "ioa", "aligned", "area", "convert", "masks"])
@pytest.mark.parametrize("value", ["boxes", b"boxes", {"boxes": [0, 0, 1, 1]}, None, object()],
                         ids=["str", "bytes", "dict", "None", "object"])
def test_wrong_type_is_type_error(call, value):
    with pytest.raises(TypeError):
        call(value)


def test_non_numeric_dtype_is_input_error():
    text = np.array([["a", "b", "c", "d"]])
    with pytest.raises(fastiou.InputError, match="boxes1"):
        fastiou.box_iou(text, B)
    with pytest.raises(fastiou.InputError, match="boxes2"):
        fastiou.box_iou(A, text)
    with pytest.raises(fastiou.InputError, match="boxes"):
        fastiou.box_area(text)
    with pytest.raises(fastiou.InputError, match="masks"):
        fastiou.masks_to_boxes(np.array([[["x"]]]))


@pytest.mark.parametrize("call, argname, received", [
    (lambda: fastiou.box_iou(np.zeros((5, 3)), B), "boxes1", (5, 3)),
    (lambda: fastiou.box_iou(A, np.zeros((6, 5))), "boxes2", (6, 5)),
    (lambda: fastiou.generalized_box_iou(np.zeros((7,)), B), "boxes1", (7,)),
    (lambda: fastiou.box_ioa(A, np.zeros((2, 3, 2))), "boxes2", (2, 3, 2)),
    (lambda: fastiou.box_area(np.zeros((9, 2))), "boxes", (9, 2)),
    (lambda: fastiou.box_convert(np.zeros((4, 5)), "xyxy", "xywh"), "boxes", (4, 5)),
    (lambda: fastiou.masks_to_boxes(np.zeros((6, 7), np.uint8)), "masks", (6, 7)),
], ids=["iou-boxes1", "iou-boxes2", "giou-rank1", "ioa-boxes2", "area", "convert", "masks"])
def test_shape_error_messages(call, argname, received):
    with pytest.raises(fastiou.InputError) as ei:
        call()
    msg = str(ei.value)
    assert argname in msg, f"message does not name {argname!r}: {msg}"
    nums = r",?\s*".join(str(d) for d in received)
    assert re.search(r"[(\[]" + nums, msg), f"message does not show the received shape {received}: {msg}"
    expected = r"4" if argname != "masks" else r"H,\s*W|3"
    assert re.search(expected, msg.replace(str(received), "")), f"message does not show the expected shape: {msg}"


def test_mismatched_lengths_message():
    with pytest.raises(fastiou.InputError) as ei:
        fastiou.box_iou_aligned(np.zeros((5, 4)), np.zeros((3, 4)))
    msg = str(ei.value)
    assert "5" in msg and "3" in msg, msg
    with pytest.raises(fastiou.InputError) as ei:
        fastiou.box_iou(np.zeros((2, 5, 4)), np.zeros((3, 7, 4)))
    assert "2" in str(ei.value) and "3" in str(ei.value), str(ei.value)


# --------------------------------------------------------------------------- inputs
def test_python_lists():
    r = fastiou.box_iou([[0, 0, 2, 2]], [[0, 0, 2, 1]])
    assert isinstance(r, np.ndarray) and r.dtype == np.float32 and r.tolist() == [[0.5]]
    r = fastiou.box_iou([[0.0, 0.0, 2.0, 2.0]], [[0.0, 0.0, 2.0, 1.0]])
    assert isinstance(r, np.ndarray) and r.dtype == np.float64 and r.tolist() == [[0.5]]
    assert fastiou.box_area([[0, 0, 2, 3]]).tolist() == [6]
    c = fastiou.box_convert([[1, 2, 3, 4]], "xywh", "xyxy")
    assert isinstance(c, np.ndarray) and c.tolist() == [[1, 2, 4, 6]]
    m = fastiou.masks_to_boxes([[[0, 1, 0], [0, 1, 1]]])
    assert isinstance(m, np.ndarray) and m.dtype == np.float32 and m.tolist() == [[1, 0, 2, 1]]
    assert fastiou.box_iou_aligned([[0, 0, 2, 2]], [[0, 0, 2, 1]]).tolist() == [0.5]


def test_buffer_protocol_input():
    r = fastiou.box_iou(memoryview(np.ascontiguousarray(A)), memoryview(np.ascontiguousarray(B)))
    assert isinstance(r, np.ndarray)
    np.testing.assert_array_equal(r, A_B_IOU)


class DLPackOnly:
    """An array that offers nothing but the DLPack protocol."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_dlpack_only_input():
    r = fastiou.box_iou(DLPackOnly(A), DLPackOnly(B))
    np.testing.assert_array_equal(np.asarray(r), A_B_IOU)
    np.testing.assert_array_equal(np.asarray(fastiou.box_area(DLPackOnly(A))), [4, 100])


def test_mixed_host_libraries_follow_the_first_argument():
    if library_unavailable("torch", "cpu"):
        pytest.skip("torch not installed")
    import torch

    tb = torch.from_numpy(B.copy())
    r = fastiou.box_iou(A, tb)
    assert isinstance(r, np.ndarray)
    np.testing.assert_array_equal(r, A_B_IOU)
    r = fastiou.box_iou(torch.from_numpy(A.copy()), B)
    assert isinstance(r, torch.Tensor) and r.device.type == "cpu"
    np.testing.assert_array_equal(r.numpy(), A_B_IOU)


def test_torch_tensor_requiring_grad_is_read():
    if library_unavailable("torch", "cpu"):
        pytest.skip("torch not installed")
    import torch

    a = torch.from_numpy(A.copy()).requires_grad_(True)
    r = fastiou.box_iou(a, torch.from_numpy(B.copy()))
    np.testing.assert_array_equal(r.detach().numpy(), A_B_IOU)


# --------------------------------------------------------------------------- backends()
def test_backends_report():
    info = fastiou.backends()
    assert set(info) >= {"cpp", "numba", "cuda", "cupy"}
    for name, entry in info.items():
        assert set(entry) >= {"available", "device", "reason"}, name
        assert isinstance(entry["available"], bool), name
        assert isinstance(entry["reason"], str), name
        assert (entry["reason"] == "") == entry["available"], f"{name}: reason {entry['reason']!r}"
    assert {n: info[n]["device"] for n in ("cpp", "numba", "cuda", "cupy")} == \
        {"cpp": "cpu", "numba": "cpu", "cuda": "cuda", "cupy": "cuda"}
    json.dumps(info)   # plain data


def test_compiled_backend_is_available():
    assert fastiou.backends()["cpp"]["available"], fastiou.backends()["cpp"]["reason"]


def test_numba_availability_matches_its_installation():
    installed = importlib.util.find_spec("numba") is not None
    entry = fastiou.backends()["numba"]
    assert entry["available"] == installed, entry
    if not installed:
        assert "numba" in entry["reason"]


def test_gpu_backends_unavailable_without_a_gpu():
    if any_gpu_library() is not None:
        pytest.skip("a GPU is present")
    for name in GPU_BACKENDS:
        entry = fastiou.backends()[name]
        assert not entry["available"] and entry["reason"], (name, entry)


# --------------------------------------------------------------------------- forcing a backend
def test_use_backend_forces_numba():
    if not fastiou.backends()["numba"]["available"]:
        pytest.skip("numba backend unavailable: " + fastiou.backends()["numba"]["reason"])
    out = run_python(LOADED + """
import numpy as np, fastiou
b = np.array([[0, 0, 2, 2]], np.float32); c = np.array([[0, 0, 2, 1]], np.float32)
assert 'numba' not in loaded()
with fastiou.use_backend('numba'):
    r = fastiou.box_iou(b, c)
assert r.tolist() == [[0.5]], r
print(json.dumps(loaded()))
""")
    assert "numba" in json.loads(out), "use_backend('numba') did not run numba"


def test_env_var_is_read_at_call_time():
    if not fastiou.backends()["numba"]["available"]:
        pytest.skip("numba backend unavailable: " + fastiou.backends()["numba"]["reason"])
    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("cpp unavailable: numba is the default, forcing it is not observable")
    out = run_python(LOADED + """
import os, numpy as np, fastiou
b = np.array([[0, 0, 2, 2]], np.float32); c = np.array([[0, 0, 2, 1]], np.float32)
fastiou.box_iou(b, c)
before = loaded()
os.environ['FASTIOU_BACKEND'] = 'numba'        # set after import and after a first call
r = fastiou.box_iou(b, c)
assert r.tolist() == [[0.5]], r
print(json.dumps([before, loaded()]))
""")
    before, after = json.loads(out)
    assert "numba" not in before and "numba" in after


def test_env_var_forces_numba_in_process(monkeypatch):
    if not fastiou.backends()["numba"]["available"]:
        pytest.skip("numba backend unavailable")
    monkeypatch.setenv("FASTIOU_BACKEND", "numba")
    np.testing.assert_array_equal(fastiou.box_iou(A, B), A_B_IOU)


def arrays_for(name: str):
    """Arrays on the device ``name`` runs on, or a skip (a GPU backend needs GPU arrays:
    on host arrays it is a ValueError, whether or not it is available)."""
    entry = fastiou.backends()[name]
    if entry["available"]:
        pytest.skip(f"{name} is available here")
    if entry["device"] == "cpu":
        return A, B
    gpu = any_gpu_library()
    if gpu is None:
        pytest.skip(f"{name} is unavailable, but there are no GPU arrays to force it on")
    return gpu_array(gpu, A), gpu_array(gpu, B)


@pytest.mark.parametrize("name", ["cpp", "numba", "cuda", "cupy"])
def test_forcing_an_unavailable_backend_raises_its_reason(name):
    args = arrays_for(name)
    reason = fastiou.backends()[name]["reason"]
    with pytest.raises(RuntimeError) as ei:
        with fastiou.use_backend(name):
            fastiou.box_iou(*args)
    assert reason in str(ei.value), f"{ei.value!r} does not carry the reason {reason!r}"


@pytest.mark.parametrize("name", ["cpp", "numba", "cuda", "cupy"])
def test_env_var_naming_an_unavailable_backend_raises_its_reason(name, monkeypatch):
    args = arrays_for(name)
    reason = fastiou.backends()[name]["reason"]
    monkeypatch.setenv("FASTIOU_BACKEND", name)
    with pytest.raises(RuntimeError) as ei:
        fastiou.box_iou(*args)
    assert reason in str(ei.value)


def test_missing_numba_is_reported_and_refused():
    """numba made unimportable: backends() says why, forcing it raises RuntimeError with that
    reason (as use_backend and as FASTIOU_BACKEND), and the default host backend still works."""
    if not fastiou.backends()["cpp"]["available"]:
        pytest.skip("cpp unavailable: nothing would run without numba")
    out = run_python("""
import sys, os, json
sys.modules['numba'] = None            # import numba -> ImportError
import numpy as np, fastiou
b = np.array([[0, 0, 2, 2]], np.float32); c = np.array([[0, 0, 2, 1]], np.float32)
entry = fastiou.backends()['numba']
res = {'entry': entry, 'default': fastiou.box_iou(b, c).tolist()}
for how in ('use_backend', 'env'):
    try:
        if how == 'env':
            os.environ['FASTIOU_BACKEND'] = 'numba'
            fastiou.box_iou(b, c)
        else:
            with fastiou.use_backend('numba'):
                fastiou.box_iou(b, c)
        res[how] = None
    except Exception as e:
        res[how] = [type(e).__name__, isinstance(e, RuntimeError), str(e)]
    os.environ.pop('FASTIOU_BACKEND', None)
print(json.dumps(res))
""")
    res = json.loads(out)
    entry = res["entry"]
    assert entry["available"] is False and "numba" in entry["reason"].lower(), entry
    assert res["default"] == [[0.5]]
    for how in ("use_backend", "env"):
        assert res[how] is not None, f"forcing a missing numba via {how} did not raise"
        name, is_runtime, msg = res[how]
        assert is_runtime, f"{how}: {name} is not a RuntimeError: {msg}"
        assert entry["reason"] in msg, f"{how}: {msg!r} does not carry {entry['reason']!r}"


@pytest.mark.parametrize("how", ["use_backend", "env"])
def test_unknown_backend_name_is_refused(how, monkeypatch):
    with pytest.raises((ValueError, RuntimeError), match="nosuch"):
        if how == "env":
            monkeypatch.setenv("FASTIOU_BACKEND", "nosuch")
            fastiou.box_iou(A, B)
        else:
            with fastiou.use_backend("nosuch"):
                fastiou.box_iou(A, B)


def test_use_backend_is_undone_on_exit_and_on_error():
    missing = [n for n, e in fastiou.backends().items() if not e["available"] and e["device"] == "cpu"]
    missing += [n for n, e in fastiou.backends().items() if not e["available"] and e["device"] == "cuda"
                and any_gpu_library() is None]
    if not missing:
        pytest.skip("every backend is available: nothing observable to force")
    name = missing[0]
    # forced and unusable on host arrays: RuntimeError (unavailable) or ValueError (wrong device)
    with pytest.raises((RuntimeError, ValueError)):
        with fastiou.use_backend(name):
            fastiou.box_iou(A, B)
    np.testing.assert_array_equal(fastiou.box_iou(A, B), A_B_IOU)       # undone after an error
    with pytest.raises(KeyError):
        with fastiou.use_backend(name):
            raise KeyError("inside")
    np.testing.assert_array_equal(fastiou.box_iou(A, B), A_B_IOU)
    with fastiou.use_backend(first_available_host_backend()):
        with pytest.raises((RuntimeError, ValueError)):
            with fastiou.use_backend(name):
                fastiou.box_iou(A, B)
        np.testing.assert_array_equal(fastiou.box_iou(A, B), A_B_IOU)   # the outer one is back


def test_use_backend_overrides_the_env_var(monkeypatch):
    missing = [n for n, e in fastiou.backends().items() if not e["available"] and e["device"] == "cpu"]
    if any_gpu_library() is None:
        missing += [n for n, e in fastiou.backends().items() if not e["available"]]
    if not missing:
        pytest.skip("every backend is available: nothing observable to force")
    host = first_available_host_backend()
    monkeypatch.setenv("FASTIOU_BACKEND", missing[0])
    with fastiou.use_backend(host):
        np.testing.assert_array_equal(fastiou.box_iou(A, B), A_B_IOU)


# --------------------------------------------------------------------------- devices
@pytest.mark.cuda
@pytest.mark.parametrize("name", HOST_BACKENDS)
def test_host_backend_on_gpu_arrays_is_value_error(name):
    lib = need_gpu()
    if not fastiou.backends()[name]["available"]:
        pytest.skip(f"{name} unavailable")
    with pytest.raises(ValueError):
        with fastiou.use_backend(name):
            fastiou.box_iou(gpu_array(lib, A), gpu_array(lib, B))


@pytest.mark.cuda
@pytest.mark.parametrize("name", GPU_BACKENDS)
def test_gpu_backend_on_host_arrays_is_value_error(name):
    need_gpu()
    if not fastiou.backends()[name]["available"]:
        pytest.skip(f"{name} unavailable: {fastiou.backends()[name]['reason']}")
    with pytest.raises(ValueError):
        with fastiou.use_backend(name):
            fastiou.box_iou(A, B)


@pytest.mark.cuda
@pytest.mark.parametrize("lib", ["torch", "cupy"])
def test_arguments_on_different_devices_are_value_error(lib):
    why = library_unavailable(lib, "cuda")
    if why:
        pytest.skip(why)
    g, h = gpu_array(lib, A), host_array(lib, B)
    for args in ((g, h), (h, g)):
        with pytest.raises(ValueError) as ei:
            fastiou.box_iou(*args)
        msg = str(ei.value).lower()
        assert "cpu" in msg and "cuda" in msg, f"message does not name both devices: {ei.value}"
    out = gpu_array(lib, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        fastiou.box_iou(host_array(lib, A), host_array(lib, B), out=out)


@pytest.mark.cuda
def test_gpu_results_stay_on_the_gpu():
    lib = need_gpu()
    r = fastiou.box_iou(gpu_array(lib, A), gpu_array(lib, B))
    if lib == "torch":
        assert r.device.type == "cuda"
        r = r.cpu().numpy()
    else:
        import cupy

        assert isinstance(r, cupy.ndarray)
        r = cupy.asnumpy(r)
    np.testing.assert_array_equal(r, A_B_IOU)


def test_bench_registers_every_workload():
    # `fastiou bench` (the README's main job) finds the workload modules of fastiou/bench/workloads/;
    # run as `python -m fastiou.bench` too (the package's __main__).
    expected = ["iou-square", "nms-sparse", "nms-clustered", "nms-rcnn", "nms-lvis", "nms-yolo",
                "soft-nms", "mask-iou", "rle-encode", "rle-iou", "rle-codec", "mask-nms", "anchors", "iou-anchors", "check",
                "sweep", "dropin", "overhead"]
    out = run_python("from fastiou.bench import main; main(['--list'])")
    assert [line.split()[0] for line in out.splitlines() if line.strip()] == expected
    proc = subprocess.run([sys.executable, "-m", "fastiou.bench", "--list"], capture_output=True, text=True,
                          timeout=300, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines() if line.strip()] == expected


def test_arrays_from_another_process_are_accepted():
    """An array that crossed a process boundary (pickle: multiprocessing, dask, DataLoader
    workers) has an equal dtype that is another object: every op takes it as its own."""
    import pickle

    def moved(x):
        return pickle.loads(pickle.dumps(x))

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 50, (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (20, 2))], 1).astype(np.float32)
    scores = rng.random(20)
    classes = rng.integers(0, 3, 20)
    masks = rng.random((4, 16, 70)) > 0.5
    for dt in (np.float32, np.float64):
        b = boxes.astype(dt)
        np.testing.assert_array_equal(fastiou.box_iou(moved(b), moved(b)), fastiou.box_iou(b, b))
        np.testing.assert_array_equal(fastiou.box_area(moved(b)), fastiou.box_area(b))
        np.testing.assert_array_equal(fastiou.nms(moved(b), moved(scores), 0.5), fastiou.nms(b, scores, 0.5))
        np.testing.assert_array_equal(fastiou.batched_nms(moved(b), moved(scores), moved(classes), 0.5),
                                      fastiou.batched_nms(b, scores, classes, 0.5))
    np.testing.assert_array_equal(fastiou.mask_iou(moved(masks), moved(masks)), fastiou.mask_iou(masks, masks))
    assert fastiou.rle.encode(moved(masks.astype(np.uint8))) == fastiou.rle.encode(masks)


def test_byte_swapped_arrays_are_read_by_value():
    """A non-native byte order is not the kernels' dtype: the values are converted, never misread."""
    b = np.array([[0, 0, 2, 2], [0, 0, 2, 1]], dtype=">f4")
    np.testing.assert_array_equal(fastiou.box_iou(b, b), fastiou.box_iou(b.astype(np.float32), b.astype(np.float32)))
    np.testing.assert_array_equal(fastiou.nms(b, np.array([0.9, 0.8], ">f8"), 0.4), [0])
