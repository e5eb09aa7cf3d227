"""``check``: reads a dataset, runs the audit on one of three engines, returns a ``CheckResult``."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from . import coco as _coco
from . import parallel
from .audit import Params, _no_gc


@dataclass
class CheckResult:
    """What ``check`` found.

    Attributes:
        source (str): the file checked (``"<dict>"`` for a dict).
        params (Params): the thresholds.
        n_images, n_annotations, n_categories (int): the records read.
        findings (list[Finding]): record-level findings first (ids, keys), then each image's
            findings in image order (within an image: per annotation, then pairs). The same list,
            finding for finding, whatever the engine.
        engine (str): "serial", "processes (N)" or "dask (ADDRESS)".
        seconds (float): wall time.
    """

    source: str
    params: Params
    n_images: int
    n_annotations: int
    n_categories: int
    findings: list
    engine: str = "serial"
    seconds: float = 0.0
    annotations_per_category: dict = field(default_factory=dict)

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    def to_dict(self) -> dict:
        from .report import to_json_dict
        return to_json_dict(self)


def check(coco, iou: float = 0.5, box_iou: float = 0.7, workers=None, dask=None, *,
          duplicate_iou: float = 0.95, bbox_min_iou: float = 0.5, area_tolerance: float = 0.2,
          area_min_pixels: float = 10.0, min_area: int = 10, outside_tolerance: float = 1.0,
          shard_size=None, progress=None, source=None) -> CheckResult:
    """Audits a COCO instances dataset for the annotation faults that make instance masks overlap.

    Args:
        coco (str, os.PathLike or dict): a COCO instances JSON file, or the loaded dict. Read,
            never written.
        iou (float): mask IoU above which a pair is reported (same class: ``mask_overlap``,
            different classes: ``cross_class_overlap``), and the intersection over an instance's
            area above which a same-class crowd region covering it is reported (``crowd_overlap``).
        box_iou (float): box IoU (of the bbox fields) above which a same-class pair whose masks do
            not overlap is reported (``box_overlap``).
        workers (int or None): local processes; None: all cores; 1: in this process.
        dask (str, distributed.Client or None): run on a dask.distributed cluster: the scheduler's
            address or a connected Client (overrides ``workers``). The images go out in shards; no
            worker receives the whole file.
        duplicate_iou (float): mask IoU from which a same-class pair is a ``duplicate``.
        bbox_min_iou (float): IoU of a mask's box with its bbox field under which it is a
            ``bbox_mismatch``.
        area_tolerance (float), area_min_pixels (float): an ``area_mismatch`` differs from the mask
            area by more than this fraction of it and by more than this many pixels.
        min_area (int): masks with fewer pixels are ``tiny_mask``.
        outside_tolerance (float): polygon points further outside the image are ``outside_image``.
        shard_size (int or None): images per unit of work (None: chosen from the engine).
        progress (callable or None): ``progress(done_images, total_images)`` after each shard.
        source (str or None): the name to report for a dict (default ``"<dict>"``).

    Returns:
        CheckResult: the findings (see ``fastiou.diagnostics.KINDS``) and counts; ``.to_dict()``
        gives the JSON document that ``fastiou check --json`` writes.

    Raises:
        fastiou.diagnostics.UnusableInput: a missing or unreadable file, invalid JSON, not a JSON
            object. Every other fault of the input is a finding (severity ``"error"``), and the
            check goes on with the rest.
    """
    t0 = time.perf_counter()
    p = Params(float(iou), float(box_iou), float(duplicate_iou), float(bbox_min_iou),
               float(area_tolerance), float(area_min_pixels), int(min_area), float(outside_tolerance))
    data, name = _coco.load(coco)
    with _no_gc():  # (one collection at the end, not one per shard)
        idx = _coco.index(data)
        findings, engine = parallel.run(idx, p, workers=workers, dask=dask, shard_size=shard_size,
                                        progress=progress)
    per_cat = Counter(idx.anns.category)
    return CheckResult(source or name, p, len(idx.images), idx.n_annotations, len(idx.categories),
                       idx.findings + findings, engine, time.perf_counter() - t0, dict(per_cat))
