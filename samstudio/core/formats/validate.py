"""Checks shared by the importers: segmentations, stored area and box, SAM fields, ids.

Every check reports through an ``AnnotationContext`` (file, image id, annotation id),
so each message names where the problem is. Rules:

- A segmentation that cannot be decoded (malformed RLE, no usable polygon ring, an RLE
  whose size is not the image's, including width and height swapped) is an *error*: the
  annotation is not imported.
- Polygon vertices outside the image are a *warning*: the mask is clipped to the image.
  So is a box-only annotation's box sticking out of the image; a box that does not
  overlap the image at all is an *error*.
- An empty mask is a *warning*: the annotation is kept.
- A stored ``area`` or ``bbox`` is never trusted: both are recomputed from the mask, and a
  disagreement is a *warning* (area: more than 0.5 pixel for RLE, more than
  max(1, 5 %) for polygons, whose stored area is often the geometric polygon area; box:
  any side more than 1 pixel off the mask's box, and for polygons also off the polygon's
  own extents, which COCO uses).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from samstudio.core.formats.records import FormatError, ImportReport
from samstudio.core.masks import RLE, RLEError, compress_rle

POLYGON_AREA_TOLERANCE = 0.05
BBOX_TOLERANCE = 1.0


def load_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; ``FormatError`` naming the file for anything unreadable."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise FormatError(str(path), exc.strerror or str(exc)) from exc
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise FormatError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise FormatError(
            str(path), f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise FormatError(str(path), "JSON nested too deeply") from None
    except ValueError:  # an integer literal past sys.get_int_max_str_digits()
        raise FormatError(
            str(path),
            f"not usable JSON: a number too long (more than {sys.get_int_max_str_digits()} digits)",
        ) from None


@dataclass
class AnnotationContext:
    """Where we are, for messages: the file, the image id and the annotation id."""

    report: ImportReport
    file: str
    annotation_id: Any = None
    image_id: Any = None

    def warn(self, code: str, message: str) -> None:
        self.report.warn(code, self.file, message, self.annotation_id, self.image_id)

    def error(self, code: str, message: str) -> None:
        self.report.error(code, self.file, message, self.annotation_id, self.image_id)


def finite_number(value: Any) -> float | None:
    """A finite int/float (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:  # an int beyond float range (10**400) is not finite either
        return None
    return f if math.isfinite(f) else None


def int_id(value: Any) -> int | None:
    """An integer id (ints, and floats/str holding an integer), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # more digits than int() converts
            return None
    return None


_INT_TEXT = re.compile(r"-?[0-9]+")
"""An integer id written as text: ASCII digits only ('--1', '²', '١' are not ids)."""


def number_list(value: Any, length: int | None = None) -> list[float] | None:
    if not isinstance(value, (list, tuple)):
        return None
    out = [finite_number(v) for v in value]
    if any(v is None for v in out) or (length is not None and len(out) != length):
        return None
    return [float(v) for v in out if v is not None]


class Segmentation:
    """The result of reading one ``segmentation`` value.

    ``area`` and ``bbox`` (XYWH, pixel edges) are measured once, when the RLE has just been
    validated or rasterised, so ``check_mask`` does not validate it a second time.
    """

    def __init__(
        self,
        rle: RLE | None,
        kind: str,
        polygon_bbox: list[float] | None = None,
        coco: dict[str, Any] | None = None,
    ) -> None:
        self.rle = rle  # None: box only
        self.kind = kind  # "polygon", "rle", "rle_uncompressed", "none"
        self.polygon_bbox = polygon_bbox
        # coco: the same mask in pycocotools' form (counts bytes), known to be valid
        self.area = 0 if coco is None else int(mask_utils.area(coco))
        self.bbox = [0.0] * 4 if coco is None else [float(v) for v in mask_utils.toBbox(coco)]


def read_segmentation(
    seg: Any, height: int, width: int, ctx: AnnotationContext
) -> Segmentation | None:
    """Decode a COCO/SA-1B ``segmentation`` for an image of (height, width).

    Returns None after reporting an error (the annotation must be skipped).
    """
    if seg is None or (isinstance(seg, list) and len(seg) == 0):
        return Segmentation(None, "none")
    if isinstance(seg, dict):
        return _read_rle(seg, height, width, ctx)
    if isinstance(seg, list):
        return _read_polygons(seg, height, width, ctx)
    ctx.error("bad_segmentation", f"segmentation is a {type(seg).__name__}, not polygons or an RLE")
    return None


def _read_rle(
    seg: dict[str, Any], height: int, width: int, ctx: AnnotationContext
) -> Segmentation | None:
    try:
        rle = compress_rle(seg)
    except RLEError as exc:
        ctx.error("bad_segmentation", f"RLE is malformed: {exc}")
        return None
    h, w = rle["size"]
    if [h, w] != [height, width]:
        if [h, w] == [width, height]:
            ctx.error(
                "size_transposed",
                f"RLE size [{h}, {w}] is the image's size with height and width swapped "
                f"(the image is {height} high and {width} wide); the mask was probably written "
                "in another frame, so it is not imported",
            )
        else:
            ctx.error(
                "size_mismatch",
                f"RLE size [{h}, {w}] does not match the image ({height} high, {width} wide); "
                "not imported",
            )
        return None
    kind = "rle_uncompressed" if isinstance(seg.get("counts"), list) else "rle"
    coco = {"size": [h, w], "counts": rle["counts"].encode("ascii")}
    return Segmentation(rle, kind, coco=coco)


def _read_polygons(
    seg: list[Any], height: int, width: int, ctx: AnnotationContext
) -> Segmentation | None:
    rings: list[list[float]] = []
    bad = 0
    for ring in seg:
        values = number_list(ring)
        if values is None or len(values) < 6 or len(values) % 2:
            bad += 1
            continue
        rings.append(values)
    if bad:
        ctx.warn(
            "bad_polygon", f"{bad} polygon ring(s) ignored: not an even list of >= 6 finite numbers"
        )
    if not rings:
        ctx.error("bad_segmentation", "no usable polygon ring; not imported")
        return None
    xs = [v for r in rings for v in r[0::2]]
    ys = [v for r in rings for v in r[1::2]]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if height <= 0 or width <= 0:
        ctx.error("size_mismatch", f"image size {width}x{height} has no pixels")
        return None
    far = 2 * (height + width)
    if min(x0, y0) < -far or max(x1, y1) > far:
        ctx.error(
            "polygon_outside",
            f"polygon coordinates lie far outside the {width}x{height} image (x {x0:g}..{x1:g}, "
            f"y {y0:g}..{y1:g}); not imported",
        )
        return None
    work = polygon_work(rings)
    budget = polygon_budget(height, width, sum(len(r) // 2 for r in rings))
    if work > budget:
        ctx.error(
            "polygon_too_complex",
            f"polygon edges span {work:,.0f} pixels in all ({sum(len(r) // 2 for r in rings)} "
            f"vertices), more than the {budget:,.0f} a polygon on a {width}x{height} image may "
            "span; rasterising it would take too much memory, so it is not imported",
        )
        return None
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        ctx.warn(
            "polygon_outside",
            f"polygon extends outside the {width}x{height} image (x {x0:g}..{x1:g}, "
            f"y {y0:g}..{y1:g}); the mask is clipped to the image",
        )
    coco = mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
    rle = {"size": [height, width], "counts": coco["counts"].decode("ascii")}
    cx0, cy0 = max(0.0, x0), max(0.0, y0)
    cx1, cy1 = min(float(width), x1), min(float(height), y1)
    box = [cx0, cy0, max(0.0, cx1 - cx0), max(0.0, cy1 - cy0)]
    return Segmentation(rle, "polygon", box, coco=coco)


POLYGON_WORK_FLOOR = 5_000_000
"""Edge span (pixels) any polygon may have; pycocotools' rasteriser needs about 40 bytes
per pixel of span (5x upsampled edge walk), so this is ~200 MB at most."""


def polygon_work(rings: list[list[float]]) -> float:
    """What pycocotools' ``frPyObjects`` walks for these rings: the sum over edges (the
    closing one included) of max(|dx|, |dy|). Its memory and time grow with this, not with
    the image size, so a small file of far zig-zags could take gigabytes."""
    total = 0.0
    for ring in rings:
        pts = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        steps = np.abs(np.diff(pts, axis=0, append=pts[:1]))
        total += float(steps.max(axis=1).sum())
    return total


def polygon_budget(height: int, width: int, vertices: int) -> float:
    """The most ``polygon_work`` a polygon may take: generous for any real outline (50
    crossings of the image plus 10 pixels per vertex), and never less than
    ``POLYGON_WORK_FLOOR``."""
    return float(max(POLYGON_WORK_FLOOR, 50 * (height + width) + 10 * vertices))


def check_mask(
    segm: Segmentation,
    stored_area: Any,
    stored_bbox: Any,
    ctx: AnnotationContext,
    height: int,
    width: int,
) -> list[float] | None:
    """Report an empty mask and stored area/box disagreements; return the box to keep.

    For a box-only annotation the stored box is validated against the (height, width)
    image and returned: a box not overlapping the image is an error (None is returned), one
    sticking out is clipped to the image with a ``bbox_outside`` warning, as polygons are.
    """
    if segm.rle is None:
        box = number_list(stored_bbox, 4)
        if box is None or box[2] < 0 or box[3] < 0:
            ctx.error(
                "bad_segmentation",
                f"no segmentation and no usable bbox ({stored_bbox!r}); not imported",
            )
            return None
        return _box_in_image(box, height, width, ctx)
    area, box = segm.area, segm.bbox  # measured when the RLE was read and validated
    if area == 0:
        ctx.warn("empty_mask", "mask is empty (0 pixels); kept")
    if stored_area is not None:
        a = finite_number(stored_area)
        if a is None:
            ctx.warn("area_mismatch", f"stored area {stored_area!r} is not a number; using {area}")
        else:
            slack = max(1.0, POLYGON_AREA_TOLERANCE * area) if segm.kind == "polygon" else 0.5
            if abs(a - area) > slack:
                ctx.warn(
                    "area_mismatch",
                    f"stored area {a:.10g} disagrees with the mask's {area} pixels; using {area}",
                )
    if stored_bbox is not None:
        sb = number_list(stored_bbox, 4)
        # A polygon's box may be its rasterised mask's box or the polygon's own extents.
        refs = [box] + ([segm.polygon_bbox] if segm.polygon_bbox is not None else [])
        if sb is None:
            ctx.warn("bbox_mismatch", f"stored bbox {stored_bbox!r} is not 4 numbers; using {box}")
        elif area > 0 and all(
            max(abs(p - q) for p, q in zip(sb, ref)) > BBOX_TOLERANCE for ref in refs
        ):
            ctx.warn(
                "bbox_mismatch",
                f"stored bbox {sb} disagrees with the mask's {box}; using the mask's",
            )
        elif area == 0 and any(v != 0 for v in sb[2:]):
            ctx.warn("bbox_mismatch", f"stored bbox {sb} for an empty mask; using {box}")
    return box


def _box_in_image(
    box: list[float], height: int, width: int, ctx: AnnotationContext
) -> list[float] | None:
    """A box-only annotation's XYWH box, clipped to the image; None (an error) when it does
    not overlap the image."""
    x, y, w, h = box

    def overlaps(lo: float, size: float, side: int) -> bool:
        # a zero-size side (a line or point box) must lie on the image, edges included
        return 0 <= lo <= side if size == 0 else lo < side and lo + size > 0

    shown = "[" + ", ".join(f"{v:g}" for v in box) + "]"
    if not (overlaps(x, w, width) and overlaps(y, h, height)):
        ctx.error(
            "bbox_outside",
            f"box-only annotation's bbox {shown} lies entirely outside the {width}x{height} "
            "image; not imported",
        )
        return None
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    clipped = [x0, y0, x1 - x0, y1 - y0]
    if clipped != box:
        ctx.warn(
            "bbox_outside",
            f"box-only annotation's bbox {shown} extends outside the {width}x{height} image; "
            f"clipped to [{', '.join(f'{v:g}' for v in clipped)}]",
        )
    ctx.warn("bbox_only", "has no mask (empty segmentation); imported as a box only")
    return clipped


def read_sam_fields(raw: dict[str, Any], ctx: AnnotationContext) -> dict[str, Any]:
    """predicted_iou, stability_score, point_coords, crop_box (each dropped with a warning if bad)."""
    out: dict[str, Any] = {}
    for key in ("predicted_iou", "stability_score"):
        if key in raw and raw[key] is not None:
            v = finite_number(raw[key])
            if v is None:
                ctx.warn("bad_field", f"{key} {raw[key]!r} is not a finite number; dropped")
            else:
                out[key] = v
    if raw.get("point_coords") is not None:
        pts = raw["point_coords"]
        coords = [number_list(p, 2) for p in pts] if isinstance(pts, list) else None
        if coords is None or any(c is None for c in coords):
            ctx.warn("bad_field", "point_coords is not a list of [x, y] numbers; dropped")
        else:
            out["point_coords"] = [c for c in coords if c is not None]
    if raw.get("crop_box") is not None:
        box = number_list(raw["crop_box"], 4)
        if box is None:
            ctx.warn("bad_field", f"crop_box {raw['crop_box']!r} is not 4 numbers; dropped")
        else:
            out["crop_box"] = box
    return out


SAM_KEYS = ("predicted_iou", "stability_score", "point_coords", "crop_box")
