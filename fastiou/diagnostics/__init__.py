"""``fastiou.diagnostics``: audits of COCO datasets (the library under ``fastiou check``).

``check(coco, iou=0.5, box_iou=0.7, workers=None, dask=None, ...)`` reads a COCO instances file
(or dict) and returns a ``CheckResult`` whose ``findings`` are the annotation faults that make
instance masks overlap (see ``KINDS`` for every kind, its metric and severity).

JSON (``CheckResult.to_dict()``, written by ``fastiou check --json FILE``), schema
``"fastiou.check/1"``::

    {
      "schema": "fastiou.check/1",
      "source": str,                 # the file checked ("<dict>" for a dict)
      "engine": str,                 # "serial", "processes (N)" or "dask (ADDRESS)"
      "seconds": float,
      "parameters": {"iou": float, "box_iou": float, "duplicate_iou": float,
                     "bbox_min_iou": float, "area_tolerance": float, "area_min_pixels": float,
                     "min_area": int, "outside_tolerance": float},
      "counts": {"images": int, "annotations": int, "categories": int,
                 "findings": int, "errors": int, "warnings": int},
      "kinds": {KIND: {"severity": "error"|"warning", "metric": str|null,
                       "worst": "high"|"low", "description": str}},   # every kind, found or not
      "summary": {
        "by_kind": {KIND: {"count": int, "worst_value": float|null,
                           "worst": int|null}},     # index into "findings" of the worst one
        "by_category": {NAME: {"annotations": int, "findings": int,
                               "by_kind": {KIND: int}}}
      },
      "findings": [{
        "kind": KIND, "severity": "error"|"warning",
        "image_id": int|str|null,
        "annotation_ids": [id, ...],       # 0, 1 or 2; pairs in input order, crowd_overlap:
                                           # (instance, crowd region)
        "category_ids": [id|null, ...], "categories": [str, ...],   # one per annotation id
        "metric": str|null, "value": float|null,
        "message": str,
        "details": {...}                   # e.g. mask_iou, box_iou, ioa, area_field, mask_area
      }, ...]
    }

A finding's category counts once per category it names (a cross-class pair counts for both).
"""

from .api import CheckResult, check
from .audit import Params, check_image
from .coco import UnusableInput
from .findings import KINDS, Finding

__all__ = ["check", "check_image", "CheckResult", "Params", "Finding", "KINDS", "UnusableInput"]
