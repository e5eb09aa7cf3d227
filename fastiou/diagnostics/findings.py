"""What ``fastiou check`` reports: the finding kinds and the ``Finding`` record.

Every finding belongs to one image (``image_id``; None for a record that names no usable image)
and to zero, one or two annotations (``annotation_ids``, in the order the kind describes, with their
``category_ids`` and category names). ``value`` is the measured number the kind is about (see
``KINDS``: its metric and whether high or low values are the bad ones); ``details`` holds the
other numbers measured on the same record.

Severity: ``"error"`` is a bad record (the input breaks the COCO format or points at nothing:
``--strict`` turns any of them into a non-zero exit code); ``"warning"`` is a well-formed
annotation that looks wrong (overlaps, disagreements, tiny masks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Kind(NamedTuple):
    severity: str      # "error" (a bad record) or "warning"
    metric: str | None  # what ``value`` measures
    worst: str         # "high" or "low": which end of ``value`` is the worst
    description: str


KINDS: dict[str, Kind] = {
    # pairs of annotations of one image
    "duplicate": Kind("warning", "mask_iou", "high",
                      "same-class pair with near-identical masks (mask IoU >= duplicate_iou): one "
                      "object annotated twice"),
    "mask_overlap": Kind("warning", "mask_iou", "high",
                         "same-class pair whose masks overlap (mask IoU > iou)"),
    "box_overlap": Kind("warning", "box_iou", "high",
                        "same-class pair whose boxes overlap (box IoU > box_iou) while their masks "
                        "do not (mask IoU <= iou)"),
    "cross_class_overlap": Kind("warning", "mask_iou", "high",
                                "pair of different classes on the same pixels (mask IoU > iou): "
                                "one object labelled twice"),
    "crowd_overlap": Kind("warning", "ioa", "high",
                          "crowd region covering a non-crowd instance of its class (intersection "
                          "over the instance's area > iou); annotation_ids = (instance, crowd)"),
    # one annotation
    "bbox_mismatch": Kind("warning", "box_iou", "low",
                          "mask that disagrees with its own bbox field (IoU of the mask's box and "
                          "the bbox field < bbox_min_iou)"),
    "area_mismatch": Kind("warning", "relative_difference", "high",
                          "area field differs from the mask's area (|area - mask area| / mask area "
                          "> area_tolerance, and by more than area_min_pixels)"),
    "empty_mask": Kind("warning", "area", "low", "mask with no pixel"),
    "tiny_mask": Kind("warning", "area", "low", "mask of fewer than min_area pixels"),
    "outside_image": Kind("warning", "pixels", "high",
                          "polygon coordinates outside the image (by more than outside_tolerance "
                          "pixels); value: the largest distance outside"),
    "degenerate_polygon": Kind("error", "points", "low",
                               "polygon with fewer than 3 points, an odd number of coordinates, "
                               "non-numbers or zero area; value: its number of points"),
    "rle_size_mismatch": Kind("error", None, "high",
                              "RLE whose size differs from its image's [height, width]"),
    "bad_segmentation": Kind("error", None, "high",
                             "segmentation that cannot be read (malformed RLE counts, wrong types)"),
    # records and ids
    "bad_record": Kind("error", None, "high",
                       "record with missing or ill-typed keys (an image without width/height, an "
                       "annotation without segmentation, a bbox that is not 4 numbers)"),
    "duplicate_id": Kind("error", None, "high", "image or annotation id used twice"),
    "unknown_image": Kind("error", None, "high", "annotation whose image_id is not in images"),
    "unknown_category": Kind("error", None, "high",
                             "annotation whose category_id is not in categories"),
    "no_annotations": Kind("warning", None, "high", "image without any annotation"),
}


@dataclass
class Finding:
    """One finding (see the module docstring and ``KINDS``).

    Attributes:
        kind (str): a key of ``KINDS``.
        image_id: the image's id (None where the record names no image).
        annotation_ids (list): the annotations concerned (0, 1 or 2).
        category_ids (list): their category ids (None where an annotation has none).
        categories (list[str]): their category names (``"?"`` for an unknown id).
        value (float or None): the measured value (``KINDS[kind].metric``).
        message (str): one line for a person.
        details (dict): further measured numbers (``mask_iou``, ``box_iou``, ``area`` ...).
    """

    kind: str
    image_id: object
    annotation_ids: list
    category_ids: list
    categories: list
    value: float | None
    message: str
    details: dict = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return KINDS[self.kind].severity

    @property
    def metric(self) -> str | None:
        return KINDS[self.kind].metric

    def to_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "image_id": self.image_id,
                "annotation_ids": list(self.annotation_ids), "category_ids": list(self.category_ids),
                "categories": list(self.categories), "metric": self.metric, "value": self.value,
                "message": self.message, "details": dict(self.details)}

    def where(self) -> str:
        """"image 12, annotations 3 and 4" (what the messages are about)."""
        parts = [f"image {self.image_id}" if self.image_id is not None else "no image"]
        if self.annotation_ids:
            ids = [str(a) for a in self.annotation_ids]
            parts.append(("annotation " if len(ids) == 1 else "annotations ") + " and ".join(ids))
        return ", ".join(parts)

    def badness(self) -> float:
        """A number that grows with how bad the value is (for 'worst' rankings)."""
        if self.value is None:
            return 0.0
        return float(self.value) if KINDS[self.kind].worst == "high" else -float(self.value)
