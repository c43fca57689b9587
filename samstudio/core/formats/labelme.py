"""labelme JSON import: area shapes become instance masks.

- ``polygon``, ``rectangle``, ``circle`` (centre and a point on the rim) and ``mask``
  (a base64 PNG pasted at the first point, labelme >= 5.5) become masks, rasterised with
  Pillow's ImageDraw the way labelme itself renders them (so they match labelme's own
  label PNGs). Shapes sharing a label and a non-null ``group_id`` form one instance.
- ``point``, ``line``, ``linestrip`` and ``points`` enclose no area: skipped with a warning.
- The image: ``imagePath`` relative to the JSON; when it names a missing file or the JSON
  itself, an image with the JSON's own name beside it (or in ``images_dir``) is used, with
  a warning; embedded ``imageData`` is used when no file is found (kept in
  ``ImageRecord.image_bytes``). Sizes come from the image when it is readable, else from
  ``imageHeight``/``imageWidth``; a disagreement between the two is an error.
- Shapes labelled ``__ignore__`` are skipped with a warning (labelme's convention).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from samstudio.core.formats.records import (
    Annotation,
    Category,
    Dataset,
    FormatError,
    ImageRecord,
    ImportReport,
)
from samstudio.core.formats.validate import AnnotationContext, int_id, load_json, number_list
from samstudio.core.images import (
    MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    ImageLoadError,
    image_size,
    image_size_bytes,
)

AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
NON_AREA_SHAPES = ("point", "points", "line", "linestrip")
IGNORE_LABEL = "__ignore__"


def import_labelme(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    images_dir: str | os.PathLike[str] | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[Dataset, ImportReport]:
    """Read labelme JSON files (a file, a folder of ``*.json``, or a list of files).

    ``labels`` fixes the categories and their order, as labelme's ``labels.txt`` does:
    ``__ignore__`` is skipped, ids count from 0 when the first remaining label is
    ``_background_`` and from 1 otherwise; a shape with a label outside the list is an
    error. Without ``labels``, categories are made in order of first appearance, from 1.
    """
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    else:
        files = [Path(f) for f in paths]
    ds = Dataset()
    report = ImportReport()
    fixed = labels is not None
    if labels is not None:
        ds.categories = categories_from_labels(labels)
    for f in files:
        read_labelme(load_json(f), f, ds, report, images_dir, fixed)
    return ds, report


def categories_from_labels(labels: Sequence[str]) -> list[Category]:
    """Categories for a labelme ``labels.txt`` list (see ``import_labelme``)."""
    names = [n for n in labels if n != IGNORE_LABEL]
    start = 0 if names and names[0] == "_background_" else 1
    return [Category(start + i, n) for i, n in enumerate(names)]


def read_labelme(
    doc: Any,
    json_path: str | os.PathLike[str],
    into: Dataset | None = None,
    report: ImportReport | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    fixed_labels: bool = False,
) -> tuple[Dataset, ImportReport]:
    """Add one parsed labelme document (read from ``json_path``) to ``into``."""
    ds = into if into is not None else Dataset()
    rep = report if report is not None else ImportReport()
    source = str(json_path)
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise FormatError(source, "not a labelme file (a JSON object with a 'shapes' list)")
    image = _read_image(doc, Path(json_path), ds, rep, images_dir)
    if image is None:
        return ds, rep
    ds.images.append(image)
    instances: dict[Any, tuple[str, np.ndarray, list[int]]] = {}
    for n, shape in enumerate(doc["shapes"]):
        ctx = AnnotationContext(rep, source, f"shape #{n}", image.id)
        if not isinstance(shape, dict):
            ctx.error("bad_shape", f"shape is a {type(shape).__name__}, not an object; skipped")
            continue
        label = shape.get("label")
        if not isinstance(label, str) or not label:
            ctx.error("bad_shape", f"label {label!r} is not a string; skipped")
            continue
        ctx.annotation_id = f"shape #{n} ({label})"
        if label == IGNORE_LABEL:
            ctx.warn("skipped_shape", f"label {IGNORE_LABEL} marks a region to ignore; skipped")
            continue
        mask = _shape_mask(shape, image.height, image.width, ctx)
        if mask is None:
            continue
        group = shape.get("group_id")
        if group is not None and not isinstance(group, (int, str)):
            ctx.warn("bad_field", f"group_id {group!r} is not a number; grouped by its text")
            group = repr(group)
        key: Any = (label, group) if group is not None else ("__shape__", n)
        if key in instances:
            instances[key][1][:] |= mask
            instances[key][2].append(n)
        else:
            instances[key] = (label, mask, [n])
    for label, mask, shape_ids in instances.values():
        ctx = AnnotationContext(rep, source, f"shape #{shape_ids[0]} ({label})", image.id)
        category = ds.category_by_name(label)
        if category is None:
            if fixed_labels:
                ctx.error(
                    "unknown_category", f"label '{label}' is not in the given labels; not imported"
                )
                continue
            category = Category(max((c.id for c in ds.categories), default=0) + 1, label)
            ds.categories.append(category)
        if not mask.any():
            ctx.warn("empty_mask", "shape covers no pixel of the image; kept as an empty mask")
        ann = Annotation.from_mask(ds.next_annotation_id(), image.id, category.id, mask)
        ann.extra = {"labelme_shapes": shape_ids}
        ds.annotations.append(ann)
    return ds, rep


def _read_image(
    doc: dict[str, Any],
    json_path: Path,
    ds: Dataset,
    rep: ImportReport,
    images_dir: str | os.PathLike[str] | None,
) -> ImageRecord | None:
    source = str(json_path)
    image_id = max((im.id for im in ds.images), default=0) + 1
    declared = doc.get("imagePath")
    found = _find_image(declared, json_path, images_dir)
    if found is not None and (not isinstance(declared, str) or Path(declared).name != found.name):
        rep.warn(
            "image_path_resolved",
            source,
            f"imagePath {declared!r} does not name an image file that exists; using {found}",
            image_id=image_id,
        )
    size: tuple[int, int] | None = None
    data: bytes | None = None
    raw_data = doc.get("imageData")
    if raw_data is not None:
        try:
            data = base64.b64decode(str(raw_data), validate=False)
            size = image_size_bytes(data, f"{source} (imageData)")
        except (binascii.Error, ValueError, ImageLoadError) as exc:
            rep.warn(
                "bad_image_data",
                source,
                f"embedded imageData is not a readable image ({exc}); ignored",
                image_id=image_id,
            )
            data = None
    if found is not None:
        try:
            file_size = image_size(found)
        except ImageLoadError as exc:
            rep.warn("image_unreadable", source, str(exc), image_id=image_id)
        else:
            if size is not None and size != file_size:
                rep.warn(
                    "image_data_mismatch",
                    source,
                    f"embedded imageData is {size[1]}x{size[0]} but {found} is {file_size[1]}x{file_size[0]}; using the file",
                    image_id=image_id,
                )
            size = file_size
    h_decl, w_decl = int_id(doc.get("imageHeight")), int_id(doc.get("imageWidth"))
    if size is None:
        if found is None and data is None:
            rep.warn(
                "image_missing",
                source,
                f"image {declared!r} not found and no imageData; using the JSON's size",
                image_id=image_id,
            )
        if (
            h_decl is None
            or w_decl is None
            or h_decl <= 0
            or w_decl <= 0
            or h_decl * w_decl > MAX_PIXELS
        ):
            rep.error(
                "bad_image",
                source,
                f"no readable image and no usable imageHeight/imageWidth ({h_decl!r}, {w_decl!r}); nothing imported",
                image_id=image_id,
            )
            return None
        size = (h_decl, w_decl)
    elif h_decl is not None and w_decl is not None and (h_decl, w_decl) != size:
        swapped = (w_decl, h_decl) == size
        rep.error(
            "size_transposed" if swapped else "size_mismatch",
            source,
            f"imageHeight/imageWidth {h_decl}x{w_decl} {'are swapped against' if swapped else 'disagree with'} "
            f"the image ({size[0]} high, {size[1]} wide); shapes would not line up, nothing imported",
            image_id=image_id,
        )
        return None
    if size[0] * size[1] > MAX_PIXELS:
        rep.error(
            "bad_image",
            source,
            f"image {size[1]}x{size[0]} is larger than supported",
            image_id=image_id,
        )
        return None
    if found is not None:
        name = found.name
    elif isinstance(declared, str) and Path(declared).suffix.lower() in SUPPORTED_SUFFIXES:
        name = declared.replace("\\", "/")
    else:
        name = json_path.stem + _suffix_of(data)
    extra = {k: v for k, v in doc.items() if k in ("version", "flags") and v}
    return ImageRecord(
        image_id,
        name,
        size[1],
        size[0],
        extra,
        image_bytes=data if found is None else None,
        path=str(found) if found is not None else None,
    )


def _find_image(
    declared: Any, json_path: Path, images_dir: str | os.PathLike[str] | None
) -> Path | None:
    folders = [json_path.parent] + ([Path(images_dir)] if images_dir is not None else [])
    names: list[str] = []
    if isinstance(declared, str) and declared:
        declared = declared.replace("\\", "/")
        names.append(declared)
        names.append(Path(declared).name)
    names += [json_path.stem + s for s in SUPPORTED_SUFFIXES]
    names += [json_path.stem + s.upper() for s in SUPPORTED_SUFFIXES]
    for folder in folders:
        for name in names:
            candidate = folder / name
            if candidate.suffix.lower() in SUPPORTED_SUFFIXES and candidate.is_file():
                return candidate
    return None


def _suffix_of(data: bytes | None) -> str:
    if data is None:
        return ".png"
    try:
        with Image.open(io.BytesIO(data)) as im:
            return {
                "JPEG": ".jpg",
                "PNG": ".png",
                "BMP": ".bmp",
                "TIFF": ".tif",
                "GIF": ".gif",
                "WEBP": ".webp",
            }.get(im.format or "", ".png")
    except Exception:
        return ".png"


def _shape_mask(
    shape: dict[str, Any], height: int, width: int, ctx: AnnotationContext
) -> np.ndarray | None:
    kind = shape.get("shape_type") or "polygon"
    if kind in NON_AREA_SHAPES:
        ctx.warn("skipped_shape", f"a {kind} encloses no area; skipped")
        return None
    if kind not in AREA_SHAPES:
        ctx.warn("skipped_shape", f"unknown shape_type {kind!r}; skipped")
        return None
    raw_points = shape.get("points")
    points = [number_list(p, 2) for p in raw_points] if isinstance(raw_points, list) else None
    if points is None or any(p is None for p in points):
        ctx.error("bad_shape", "points are not a list of [x, y] numbers; skipped")
        return None
    pts = [(float(p[0]), float(p[1])) for p in points if p is not None]
    need = 3 if kind == "polygon" else 2
    if len(pts) < need or (kind != "polygon" and len(pts) != 2):
        ctx.error(
            "bad_shape",
            f"a {kind} needs {'at least 3' if kind == 'polygon' else 'exactly 2'} points, got {len(pts)}; skipped",
        )
        return None
    far = 2 * (height + width)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if min(xs + ys) < -far or max(xs + ys) > far:
        ctx.error("polygon_outside", "points lie far outside the image; skipped")
        return None
    if kind != "circle" and (min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height):
        ctx.warn("polygon_outside", f"{kind} extends outside the {width}x{height} image; clipped")
    if kind == "mask":
        return _paste_mask(shape.get("mask"), pts, height, width, ctx)
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon":
        draw.polygon(pts, fill=1, outline=1)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = pts
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=1, outline=1)
    else:  # circle: centre, then a point on the rim
        (cx, cy), (px, py) = pts
        r = math.hypot(px - cx, py - cy)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1, outline=1)
    return np.asarray(canvas, dtype=bool).copy()


def _paste_mask(
    encoded: Any, pts: list[tuple[float, float]], height: int, width: int, ctx: AnnotationContext
) -> np.ndarray | None:
    if not isinstance(encoded, str):
        ctx.error("bad_shape", "mask shape has no base64 'mask' PNG; skipped")
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ValueError("mask image too large")
            patch = np.asarray(im.convert("L")) > 0
    except Exception as exc:
        ctx.error("bad_shape", f"mask PNG cannot be decoded ({exc}); skipped")
        return None
    x0, y0 = int(pts[0][0]), int(pts[0][1])
    expect = (int(pts[1][1]) - y0 + 1, int(pts[1][0]) - x0 + 1)
    if patch.shape != expect:
        ctx.warn(
            "size_mismatch",
            f"mask PNG is {patch.shape[1]}x{patch.shape[0]}, its points span {expect[1]}x{expect[0]}; pasted at its own size",
        )
    out = np.zeros((height, width), dtype=bool)
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(height, y0 + patch.shape[0]), min(width, x0 + patch.shape[1])
    if ye > ys and xe > xs:
        out[ys:ye, xs:xe] = patch[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


__all__ = ["categories_from_labels", "import_labelme", "read_labelme"]
