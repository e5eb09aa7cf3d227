"""The backend interface table (fastiou/_backends/interface.py) against every backend module,
and the package's import graph. CPU-only: GPU modules are read as source (they import cupy or
fastiou._C_cuda, which a CPU machine may lack)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import fastiou
from fastiou import _dispatch
from fastiou._arrays import Arg, _Numpy
from fastiou._backends.interface import BY_NAME, OPS

PKG = Path(fastiou.__file__).resolve().parent
BACKEND_FILES = {"cuda": PKG / "_backends" / "cuda_gpu.py", "cupy": PKG / "_backends" / "cupy_gpu.py"}


def _cpp_params(fn) -> list[str]:
    """Parameter names from a pybind11 function's signature line (its py::arg names)."""
    sig = fn.__doc__.splitlines()[0]
    inside = sig[sig.index("(") + 1: sig.rindex(")")]
    return [p.split(":")[0].strip() for p in re.split(r",\s*(?![^\[]*\])", inside) if p.strip()]


def _source_functions(path: Path) -> dict[str, list[str]]:
    """Public module-level functions of a source file and their positional parameter names."""
    tree = ast.parse(path.read_text())
    return {n.name: [a.arg for a in n.args.args] for n in tree.body
            if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}


def _source_kwonly(path: Path) -> dict[str, list[str]]:
    tree = ast.parse(path.read_text())
    return {n.name: [a.arg for a in n.args.kwonlyargs] for n in tree.body
            if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}


def _declared(backend: str) -> dict[str, list[str]]:
    return {op.name: list(op.params) for op in OPS if backend in op.backends}


def test_cpp_offers_exactly_the_table():
    from fastiou import _C
    ops = {name for name in dir(_C) if name in BY_NAME}
    assert ops == set(_declared("cpp")), "fastiou._C and the table disagree"
    for name, params in _declared("cpp").items():
        assert _cpp_params(getattr(_C, name)) == params, name


def test_numba_offers_exactly_the_table():
    pytest.importorskip("numba")
    from fastiou._backends import numba_cpu
    public = {n for n in dir(numba_cpu) if not n.startswith("_") and inspect.isfunction(getattr(numba_cpu, n))
              and getattr(numba_cpu, n).__module__.startswith("fastiou._backends")}
    assert public == set(_declared("numba"))
    for name, params in _declared("numba").items():
        assert list(inspect.signature(getattr(numba_cpu, name)).parameters) == params, name


@pytest.mark.parametrize("backend", ["cuda", "cupy"])
def test_gpu_adapters_offer_exactly_the_table(backend):
    funcs = _source_functions(BACKEND_FILES[backend])
    kw = _source_kwonly(BACKEND_FILES[backend])
    assert set(funcs) == set(_declared(backend)), f"{backend} adapter and the table disagree"
    for name, params in _declared(backend).items():
        assert funcs[name] == params, name
        assert kw[name] == ["stream"], f"{name}: GPU functions take the stream as keyword"


def test_every_op_names_its_backends():
    for op in OPS:
        assert op.backends and set(op.backends) <= set(_dispatch.BACKENDS), op.name
        assert len(set(op.params)) == len(op.params), op.name
    info = fastiou.backends()
    for name in _dispatch.BACKENDS:
        assert info[name]["lacks"] == sorted(op.name for op in OPS if name not in op.backends)


# ---- validation: what the table refuses never reaches a backend

def _a(name, x):
    return Arg(name, _Numpy, x)


def test_validation_catches_shape_dtype_and_layout():
    b = np.zeros((1, 3, 4), np.float32)
    ok = (_a("boxes1", b), _a("boxes2", np.zeros((1, 5, 4), np.float32)),
          _a("out", np.zeros((1, 3, 5), np.float32)), 0, 0, 0.0)
    assert BY_NAME["box_pairwise"].validate(ok) == {"B": 1, "N": 3, "M": 5}
    bad = [
        ((ok[0], ok[1], _a("out", np.zeros((1, 3, 4), np.float32))) + ok[3:], "out: expected shape"),
        ((ok[0], _a("boxes2", np.zeros((1, 5, 4), np.float64))) + ok[2:], "as boxes1"),
        ((_a("boxes1", np.zeros((1, 3, 4), np.float16)),) + ok[1:], "float32|float64"),
        ((_a("boxes1", np.zeros((1, 3, 5), np.float32)),) + ok[1:], "boxes1: expected shape"),
        ((ok[0], ok[1], _a("out", np.zeros((1, 5, 3), np.float32).transpose(0, 2, 1))) + ok[3:],
         "C-contiguous"),
        (ok[:3] + ("0", 0, 0.0), "mode: expected int"),
        (ok[:5] + (None,), "eps: expected float"),
    ]
    for args, msg in bad:
        with pytest.raises(ValueError, match=re.escape(msg)):
            BY_NAME["box_pairwise"].validate(args)
    with pytest.raises(TypeError, match="expected 6 arguments"):
        BY_NAME["box_pairwise"].validate(ok[:5])


def test_validation_of_optional_strided_and_conditions():
    n = 4
    base = (_a("boxes", np.zeros((n, 4), np.float32)), _a("scores", np.zeros(n)), None, 0.5,
            _a("keep", np.zeros(n, np.int64)))
    BY_NAME["nms"].validate(base)
    with pytest.raises(ValueError, match="classes: expected shape"):
        BY_NAME["nms"].validate(base[:2] + (_a("classes", np.zeros(n + 1, np.int64)),) + base[3:])
    with pytest.raises(ValueError, match="keep: expected an array, got None"):
        BY_NAME["nms"].validate(base[:4] + (None,))
    # multiclass: transposed scores are read in place, boxes' class dim must be 1 or C
    bsz, c, k = 2, 3, 5
    scores = np.zeros((bsz, c, n), np.float32).transpose(0, 2, 1)
    outs = (_a("num", np.zeros(bsz, np.int64)), _a("out_boxes", np.zeros((bsz, k, 4), np.float32)),
            _a("out_scores", np.zeros((bsz, k), np.float32)), _a("out_classes", np.zeros((bsz, k), np.int64)),
            _a("out_indices", np.zeros((bsz, k), np.int64)))
    for cb, good in ((1, True), (c, True), (2, False)):
        args = (_a("boxes", np.zeros((bsz, n, cb, 4), np.float32)), _a("scores", scores), 0.5, 0.0, -1) + outs
        if good:
            BY_NAME["multiclass_nms"].validate(args)
        else:
            with pytest.raises(ValueError, match="K must be 1 or C"):
                BY_NAME["multiclass_nms"].validate(args)
    # packed words per row must be ceil(W / 64)
    with pytest.raises(ValueError, match=re.escape("WW must be ceil(W / 64)")):
        BY_NAME["unpack_masks"].validate((_a("bits", np.zeros((1, 2, 1), np.uint64)),
                                          _a("out", np.zeros((1, 2, 65), np.uint8))))


def test_host_only_ops_run_on_the_host_under_a_forced_gpu_backend(monkeypatch):
    """COCO RLE is declared for cpp and numba only: forcing cuda/cupy does not stop it."""
    rles = fastiou.rle.encode(np.ones((2, 3, 4), bool))
    for forced in ("cuda", "cupy"):
        monkeypatch.setenv("FASTIOU_BACKEND", forced)
        assert fastiou.rle.area(rles).tolist() == [12, 12]
    monkeypatch.setenv("FASTIOU_BACKEND", "cpp")
    assert _dispatch.select("cpu", "rle_area")[0] == "cpp"


def test_a_backend_without_the_op_falls_through(monkeypatch):
    """A table entry without a backend makes select() skip it, with the reason."""
    from fastiou._backends import _spec
    op = _spec.Op("only_numba", backends=("numba",))
    monkeypatch.setitem(BY_NAME, "only_numba", op)
    if fastiou.backends()["numba"]["available"]:
        assert _dispatch.select("cpu", "only_numba")[0] == "numba"
    with fastiou.use_backend("cpp"), pytest.raises(RuntimeError, match="does not implement only_numba"):
        _dispatch.select("cpu", "only_numba")


# ---- the import graph of the package

def _imports(path: Path) -> set[str]:
    """fastiou modules that a module imports (at any depth of the file, lazily included)."""
    mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    if mod.endswith(".__init__"):
        mod = mod[: -len(".__init__")]
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("fastiou"):
                continue
            for alias in node.names:  # `from . import x` may name a module
                sub = f"{target}.{alias.name}"
                out.add(sub if _module_path(sub) else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("fastiou")}
    return {m for m in out if _module_path(m) and m != mod}


def _module_path(mod: str):
    p = PKG.parent.joinpath(*mod.split("."))
    for cand in (p.with_suffix(".py"), p / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in PKG.rglob("*.py"):
        if "_csrc" in path.parts:
            continue
        mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[mod] = _imports(path)
    return graph


def test_no_import_cycles():
    """Imports point one way: public ops -> argument helpers -> _dispatch -> _arrays/_backends.
    A package's __init__ may import its own submodules (that is how it exports them); no
    other cycle is allowed, lazy imports inside functions included."""
    graph = _graph()

    def deps(m):
        return {d for d in graph[m] if not (m in ("fastiou",) or d.startswith(m + "."))
                and d != "fastiou"}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in deps(m):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_low_modules_do_not_import_public_ops():
    graph = _graph()
    public = {"fastiou.boxes", "fastiou.nms", "fastiou.masks", "fastiou.rle"}
    for low in ("fastiou._arrays", "fastiou._dispatch", "fastiou._errors", "fastiou._args",
                "fastiou._packed"):
        if low in graph:
            assert not (graph[low] & public), f"{low} imports {graph[low] & public}"
    for mod, deps in graph.items():
        if mod.startswith("fastiou.compat."):
            private = {d for d in deps if d.rsplit(".", 1)[-1].startswith("_")}
            assert not private, f"{mod} uses private modules {private}"


# ---- launch geometry: one definition (csrc/include/fastiou/launch.h) for CUDA and CuPy

def test_cupy_adapter_types_no_launch_constant():
    """cupy_gpu.py takes block sizes, split rules and workspace layouts from fastiou._C
    (launch.h): no module-level number of its own, and every name it reads exists."""
    from fastiou import _C
    tree = ast.parse(BACKEND_FILES["cupy"].read_text())
    allowed = {"_INT_MAX"}  # a limit of int32 indexing, not a launch parameter
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.BinOp)):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            value = node.value
            if isinstance(value, ast.Constant) and not isinstance(value.value, (int, float)):
                continue
            assert names <= allowed, f"cupy_gpu.py types a launch number: {names}"
    geometry = _C.launch_geometry()
    used = {n.slice.value for n in ast.walk(tree) if isinstance(n, ast.Subscript)
            and isinstance(n.value, ast.Name) and n.value.id == "_G" and isinstance(n.slice, ast.Constant)}
    assert used and used <= set(geometry), used - set(geometry)
    calls = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id == "_C"}
    assert calls <= set(dir(_C)), calls - set(dir(_C))


def test_launch_rules_on_the_cpu():
    from fastiou import _C
    g = _C.launch_geometry()
    assert g["kNmsTile"] == 64 and g["kMcElemBytes"] == 16
    assert [_C.pairwise_threads(m) for m in (1, 64, 128, 255, 256, 10**6)] == [32, 64, 128, 128, 256, 256]
    lay = _C.mc_layout(3, 100, 80, 300)
    offsets = [lay[k] for k in ("cand", "tmp", "m", "kc", "removed", "lists_a", "lists_b", "lens_a",
                                "lens_b", "total")]
    assert offsets == sorted(offsets) and all(o % 256 == 0 for o in offsets)
    assert lay["tmp"] - lay["cand"] >= 3 * 80 * 100 * 16  # a (key, tie) pair per candidate
    # one wave of blocks for few tiles, never more splits than chunks of work
    assert _C.mask_iou_splits(100, 100, 1024, 16, 132) >= 1
    assert _C.mask_iou_splits(1, 1, 1, 1, 132) == 1


def test_cuda_module_compiled_the_same_layout():
    """Where fastiou._C_cuda was built (nvcc found at install; no GPU needed to import it),
    its workspace size is the one the CuPy backend allocates."""
    try:
        from fastiou import _C_cuda
    except ImportError as e:
        pytest.skip(f"fastiou._C_cuda not built here: {e}")
    from fastiou import _C
    for g, n, c, k in [(1, 1, 1, 1), (2, 100, 80, 300), (7, 8400, 80, 300), (1, 0, 3, 5)]:
        assert _C_cuda.multiclass_nms_workspace(n, c, k, g) == _C.mc_layout(g, n, c, k)["total"]
