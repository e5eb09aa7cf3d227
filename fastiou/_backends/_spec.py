"""The vocabulary of the backend interface table (fastiou/_backends/interface.py).

An ``Op`` lists its arguments in call order: ``Array`` (shape written as space-separated dims:
an int is fixed, a name is bound at its first use and must agree afterwards, ``*`` is any;
dtypes as ``"float32|float64"`` or ``"=other"`` for the dtype of another argument) and
``Scalar`` (a Python value of the given type). ``Op.validate`` checks one call's arguments,
which arrive as numpy arrays or as fastiou._arrays.Arg records (any library and device),
and raises ``ValueError`` naming the op and the argument: a backend may index whatever the
checked shapes allow, so this is what keeps a GPU kernel inside its buffers.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

ALL_BACKENDS = ("cpp", "numba", "cuda", "cupy")


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class Array:
    """An array argument: ``dims`` as "N 4", ``dtypes`` as "float32|float64" or "=boxes"."""

    __slots__ = ("name", "dims", "dtypes", "same_as", "out", "optional", "strided")

    def __init__(self, name: str, dims: str, dtypes: str, *, out: bool = False,
                 optional: bool = False, strided: bool = False):
        self.name = name
        self.dims = tuple(int(d) if d.isdigit() else d for d in dims.split())
        self.same_as = dtypes[1:] if dtypes.startswith("=") else None
        self.dtypes = None if self.same_as else frozenset(dtypes.split("|"))
        self.out = out              # written by the backend (allocated by the caller)
        self.optional = optional    # None allowed
        self.strided = strided      # read through its strides: need not be C-contiguous

    def __repr__(self):
        dt = f"={self.same_as}" if self.same_as else "|".join(sorted(self.dtypes))
        return f"Array({self.name!r}, {' '.join(map(str, self.dims))!r}, {dt!r})"


class Scalar:
    """A plain Python argument of type ``kind`` (int, float, bool, str, list, object)."""

    __slots__ = ("name", "kind")

    def __init__(self, name: str, kind: type):
        self.name, self.kind = name, kind

    def __repr__(self):
        return f"Scalar({self.name!r}, {self.kind.__name__})"


_DT: dict = {}  # numpy dtype -> name (dtype.name costs microseconds)
_KINDS = {float: (int, float), int: (int,), bool: (bool, int), str: (str,), list: (list, tuple),
          object: (object,)}


class Op:
    """One backend operation: its arguments in order, what it returns, who implements it.

    Args:
        name: the function name every backend module uses.
        *args: ``Array`` and ``Scalar`` declarations, in call order.
        returns: None, "count" (an int), "counts" (a list of ints) or "object".
        backends: the backends that implement it (the others fall through to the next one).
        where: extra conditions, as (predicate(known) -> bool, message) pairs; ``known`` maps
            the bound dims and the scalar arguments' names to their values.
    """

    def __init__(self, name: str, *args, returns: Optional[str] = None,
                 backends: tuple = ALL_BACKENDS,
                 where: tuple[tuple[Callable[[dict], bool], str], ...] = ()):
        self.name = name
        self.args = args
        self.params = tuple(a.name for a in args)
        self.returns = returns
        self.backends = tuple(backends)
        self.where = where
        self.arrays = tuple((i, a) for i, a in enumerate(args) if isinstance(a, Array))
        self.scalars = tuple((i, a) for i, a in enumerate(args) if isinstance(a, Scalar))
        self._ok = _compile(self)

    def __repr__(self):
        return f"Op({self.name!r}, {', '.join(map(repr, self.args))})"

    def _fail(self, arg: str, msg: str):
        raise ValueError(f"{self.name}: {arg}: {msg}")

    def check(self, values) -> None:
        """Checks one call's arguments (in declaration order): the generated fast test, and on
        failure ``validate`` for the message."""
        if not self._ok(values):
            self.validate(values)
            raise AssertionError(f"{self.name}: the fast and the full check disagree")  # pragma: no cover

    def validate(self, values) -> dict:
        """Checks one call's arguments (in declaration order); returns the bound dims."""
        if len(values) != len(self.args):
            raise TypeError(f"{self.name}: expected {len(self.args)} arguments "
                            f"({', '.join(self.params)}), got {len(values)}")
        dims: dict = {}
        dtypes: dict = {}
        for i, spec in self.arrays:
            v = values[i]
            if v is None:
                if not spec.optional:
                    self._fail(spec.name, "expected an array, got None")
                continue
            if isinstance(v, np.ndarray):
                shape, dt = v.shape, _DT.get(v.dtype) or _DT.setdefault(v.dtype, v.dtype.name)
            else:  # an Arg: shape and dtype name read once
                shape, dt = v.shape, v.dtype
            want = dtypes[spec.same_as] if spec.same_as else spec.dtypes
            if spec.same_as:
                if dt != want:
                    self._fail(spec.name, f"expected dtype {want} (as {spec.same_as}), got {dt}")
            elif dt not in want:
                self._fail(spec.name, f"expected dtype {'|'.join(sorted(want))}, got {dt}")
            dtypes[spec.name] = dt
            if len(shape) != len(spec.dims):
                self._fail(spec.name, f"expected shape {_fmt(spec.dims)}, got {_fmt(shape)}")
            for d, s in zip(spec.dims, shape):
                if d == "*":
                    continue
                bound = d if isinstance(d, int) else dims.setdefault(d, s)
                if s != bound:
                    self._fail(spec.name, f"expected shape {_fmt(spec.dims)} with {d} = {bound}, "
                                          f"got {_fmt(shape)}")
            if not spec.strided and not (v.flags.c_contiguous if isinstance(v, np.ndarray)
                                         else v.lib.is_contiguous(v.x)):
                self._fail(spec.name, "expected a C-contiguous array")
        for i, spec in self.scalars:
            if not isinstance(values[i], _KINDS[spec.kind]):
                self._fail(spec.name, f"expected {spec.kind.__name__}, got {type(values[i]).__name__}")
        if self.where:
            known = dict(dims, **{spec.name: values[i] for i, spec in self.scalars})
            for pred, msg in self.where:
                if not pred(known):
                    self._fail("shapes", f"{msg} (dims {dims})")
        return dims


def _contiguous(a) -> bool:
    return a.flags.c_contiguous if isinstance(a, np.ndarray) else a.lib.is_contiguous(a.x)


def _dtype_name(dt) -> str:
    return dt if isinstance(dt, str) else (_DT.get(dt) or _DT.setdefault(dt, dt.name))


def _compile(op: Op):
    """A function values -> bool doing ``op.validate``'s checks without building messages:
    straight-line code generated once per op (a call per kernel launch must cost little)."""
    lines = [f"def ok(v):", f"    if len(v) != {len(op.args)}: return False"]
    # (numpy arrays, the usual case, without a function call: the dtype's name from _DT, the
    # contiguity from flags; Args and the first sight of a dtype through the helpers)
    env = {"_contiguous": _contiguous, "_dtype_name": _dtype_name, "_DT": _DT, "_nd": np.ndarray}
    bound: set = set()
    for i, spec in op.arrays:
        lines += [f"    a = v[{i}]"]
        if spec.optional:
            lines += ["    if a is not None:"]
            ind = "        "
        else:
            lines += ["    if a is None: return False"]
            ind = "    "
        lines += [f"{ind}sh = a.shape", f"{ind}dt_{i} = _DT.get(a.dtype) or _dtype_name(a.dtype)",
                  f"{ind}if len(sh) != {len(spec.dims)}: return False"]
        for k, d in enumerate(spec.dims):
            if d == "*":
                continue
            if isinstance(d, int):
                lines.append(f"{ind}if sh[{k}] != {d}: return False")
            elif d in bound:
                lines.append(f"{ind}if sh[{k}] != d_{d}: return False")
            elif spec.optional:
                raise ValueError(f"{op.name}: optional {spec.name} may use only dims bound before it")
            else:
                lines.append(f"{ind}d_{d} = sh[{k}]")
                bound.add(d)
        if spec.same_as:
            j = next(j for j, a in op.arrays if a.name == spec.same_as)
            lines.append(f"{ind}if dt_{i} != dt_{j}: return False")
        else:
            env[f"S{i}"] = spec.dtypes
            lines.append(f"{ind}if dt_{i} not in S{i}: return False")
        if not spec.strided:
            lines.append(f"{ind}if not (a.flags.c_contiguous if type(a) is _nd else _contiguous(a)): return False")
    for i, spec in op.scalars:
        env[f"K{i}"] = _KINDS[spec.kind]
        lines.append(f"    if not isinstance(v[{i}], K{i}): return False")
    if op.where:
        env["_where"] = op.where
        known = ", ".join([f"{d!r}: d_{d}" for d in sorted(bound)] +
                          [f"{spec.name!r}: v[{i}]" for i, spec in op.scalars])
        lines += [f"    known = {{{known}}}", "    for pred, _ in _where:",
                  "        if not pred(known): return False"]
    lines.append("    return True")
    exec("\n".join(lines), env)  # noqa: S102  (code generated from the table above)
    return env["ok"]
