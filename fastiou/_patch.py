"""``patch_torchvision`` / ``unpatch_torchvision``: fastiou inside torchvision's own modules.

The patch replaces, in every loaded ``torchvision`` module, each attribute that *is* one of
torchvision's original box functions (``torchvision.ops``, ``torchvision.ops.boxes``, and the
modules that imported them by name, such as ``torchvision.ops.poolers`` and
``torchvision.transforms.v2._geometry``; the detection models call them through
``torchvision.ops.boxes``) with fastiou's function of the same name
(``fastiou.compat.torchvision``). It is reference-counted: nested patches and a plain
``patch_torchvision()`` call each need their own undo, and the last undo restores exactly the
objects that were there before, including in modules imported while the patch was on.
"""

from __future__ import annotations

import sys
import threading

_lock = threading.RLock()
_depth = 0
_saved: list = []  # (module, attribute name, original object), in patch order


def _torchvision_modules() -> list:
    return [m for name, m in list(sys.modules.items())
            if m is not None and (name == "torchvision" or name.startswith("torchvision."))]


def _apply() -> None:
    from .compat import torchvision as compat
    by_id = {id(orig): (orig, ours) for ours, orig in compat.REPLACEMENTS.values()}
    for mod in _torchvision_modules():
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for attr, value in list(d.items()):
            hit = by_id.get(id(value))
            if hit is not None and value is hit[0]:
                _saved.append((mod, attr, value))
                setattr(mod, attr, hit[1])


def _restore() -> None:
    from .compat import torchvision as compat
    for mod, attr, orig in reversed(_saved):
        setattr(mod, attr, orig)
    _saved.clear()
    # Modules imported while the patch was on copied fastiou's functions by name: put
    # torchvision's back there too.
    ours = {id(fn): (fn, orig) for fn, orig in compat.REPLACEMENTS.values()}
    for mod in _torchvision_modules():
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for attr, value in list(d.items()):
            hit = ours.get(id(value))
            if hit is not None and value is hit[0]:
                setattr(mod, attr, hit[1])


def is_patched() -> bool:
    """Whether torchvision currently runs on fastiou."""
    return _depth > 0


class TorchvisionPatch:
    """One level of the patch, already applied; ``with`` it, or undo it with ``unpatch_torchvision``."""

    def __init__(self) -> None:
        global _depth
        with _lock:
            if _depth == 0:
                try:
                    _apply()
                except BaseException:
                    _restore()
                    raise
            _depth += 1
        self._active = True

    def __enter__(self) -> "TorchvisionPatch":
        return self

    def __exit__(self, *exc) -> bool:
        self.undo()
        return False

    def undo(self) -> None:
        """Undoes this level (once; later calls do nothing)."""
        with _lock:
            if not self._active:
                return
            self._active = False
            if self in _plain:
                _plain.remove(self)
            _release()


def _release() -> None:
    global _depth
    with _lock:
        if _depth == 0:
            return
        _depth -= 1
        if _depth == 0:
            _restore()


_plain: list = []  # levels taken by plain patch_torchvision() calls, undone last-in first-out


def patch_torchvision() -> TorchvisionPatch:
    """Runs torchvision's box functions on fastiou (see ``fastiou.patch_torchvision``)."""
    p = TorchvisionPatch()
    with _lock:
        _plain.append(p)
    return p


def unpatch_torchvision() -> bool:
    """Undoes the most recent ``patch_torchvision()`` still on; False when there was none."""
    with _lock:
        while _plain:
            p = _plain.pop()
            if p._active:
                p.undo()
                return True
    return False
