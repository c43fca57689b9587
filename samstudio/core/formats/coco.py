"""COCO instances and COCO results: import, export, and checks against the image files.

Import (``read_coco`` for a parsed document, ``import_coco`` for a file) accepts
polygons (one or several rings), uncompressed and compressed RLE, ``iscrowd``, box-only
annotations (empty ``segmentation``), non-contiguous category ids, ``file_name`` with
sub-folders and unknown extra keys (kept in ``extra``). A JSON *list* is read as COCO
results (annotations with ``score``), matched to a ground-truth dataset when one is given.

Export (``coco_document`` / ``export_coco``) writes ``segmentation`` as compressed RLE or
as polygons (holes kept by zero-width cuts, IoU >= 0.98 with the mask; crowd regions and
empty masks stay RLE), ``area`` and ``bbox`` computed from the mask (for polygons: from the
mask the written polygons rasterise to, so the file agrees with itself), ``iscrowd``, and SAM's per-mask fields under the SA-1B
names (``predicted_iou``, ``stability_score``, ``point_coords``, ``crop_box``), which other
COCO readers ignore. Files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pycocotools import mask as mask_utils

from samstudio.core.atomic import atomic_write_json
from samstudio.core.formats.records import (
    Annotation,
    Category,
    Dataset,
    FormatError,
    ImageRecord,
    ImportReport,
)
from samstudio.core.formats.validate import (
    SAM_KEYS,
    AnnotationContext,
    check_mask,
    finite_number,
    int_id,
    load_json,
    read_sam_fields,
    read_segmentation,
)
from samstudio.core.images import MAX_PIXELS
from samstudio.core.masks import RLE, decode_rle_window, rle_area_bbox
from samstudio.core.polygons import mask_to_polygons

SegmentationStyle = Literal["rle", "polygon"]

MAX_SIDE = 100_000
"""Largest width or height accepted in an image record (and width * height <= MAX_PIXELS,
the limit on images, so a tiny file cannot claim a mask of 1e10 pixels)."""

_IMAGE_KEYS = ("id", "file_name", "width", "height")
_CATEGORY_KEYS = ("id", "name", "supercategory")
_ANNOTATION_KEYS = (
    "id",
    "image_id",
    "category_id",
    "segmentation",
    "area",
    "bbox",
    "iscrowd",
    "score",
    *SAM_KEYS,
)


def import_coco(
    path: str | os.PathLike[str], ground_truth: Dataset | None = None
) -> tuple[Dataset, ImportReport]:
    """Read a COCO instances file (a JSON object) or a COCO results file (a JSON list)."""
    doc = load_json(path)
    if isinstance(doc, list):
        return read_coco_results(doc, str(path), ground_truth)
    return read_coco(doc, str(path))


def read_coco(doc: Any, source: str) -> tuple[Dataset, ImportReport]:
    """Parse a COCO instances document. ``source`` names the file in messages."""
    if not isinstance(doc, dict) or not ("images" in doc or "annotations" in doc):
        raise FormatError(
            source, "not a COCO instances file (a JSON object with 'images' and 'annotations')"
        )
    report = ImportReport()
    ds = Dataset(
        info={k: v for k, v in doc.items() if k not in ("images", "categories", "annotations")}
    )
    for im in _records(doc, "images", source, report):
        _read_image(im, ds, report, source)
    for cat in _records(doc, "categories", source, report):
        _read_category(cat, ds, report, source)
    images = {im.id: im for im in ds.images}
    seen: set[int] = set()
    for raw in _records(doc, "annotations", source, report):
        ann = _read_annotation(raw, images, ds, report, source, seen)
        if ann is not None:
            ds.annotations.append(ann)
    return ds, report


def read_coco_results(
    doc: Any, source: str, ground_truth: Dataset | None = None
) -> tuple[Dataset, ImportReport]:
    """Parse COCO results (a list of annotations with ``score``).

    With ``ground_truth``, image sizes and categories come from it; without, each image's
    size is taken from its first RLE (polygon results then cannot be read) and categories
    are named after their ids.
    """
    if not isinstance(doc, list):
        raise FormatError(source, "COCO results are a JSON list of annotations")
    report = ImportReport()
    ds = Dataset()
    if ground_truth is not None:
        ds.images = [
            ImageRecord(i.id, i.file_name, i.width, i.height, dict(i.extra))
            for i in ground_truth.images
        ]
        ds.categories = [
            Category(c.id, c.name, c.supercategory, dict(c.extra)) for c in ground_truth.categories
        ]
    images = {im.id: im for im in ds.images}
    seen: set[int] = set()
    for n, raw in enumerate(doc):
        if not isinstance(raw, dict):
            report.error(
                "bad_annotation", source, f"result #{n} is a {type(raw).__name__}, not an object"
            )
            continue
        raw = dict(raw)
        if raw.get("id") is None:
            raw["id"] = n + 1
        image_id = int_id(raw.get("image_id"))
        if ground_truth is None and image_id is not None and image_id not in images:
            seg = raw.get("segmentation")
            size = seg.get("size") if isinstance(seg, dict) else None
            h, w = size if isinstance(size, list) and len(size) == 2 else (None, None)
            if _valid_side(h) and _valid_side(w) and _too_many_pixels(w, h):
                report.error(
                    "bad_image",
                    source,
                    f"RLE size {w}x{h} (width x height) is {_megapixels(w, h)}, more than the "
                    f"{MAX_PIXELS / 1e6:.0f} megapixels an image may have; not imported",
                    raw.get("id"),
                    image_id,
                )
            elif _valid_side(h) and _valid_side(w):
                images[image_id] = ImageRecord(image_id, f"{image_id}", int(w), int(h))  # type: ignore[arg-type]
                ds.images.append(images[image_id])
        if "score" not in raw:
            report.warn("no_score", source, "result has no score", raw.get("id"), image_id)
        ann = _read_annotation(raw, images, ds, report, source, seen)
        if ann is not None:
            ds.annotations.append(ann)
    return ds, report


def _records(
    doc: dict[str, Any], key: str, source: str, report: ImportReport
) -> list[dict[str, Any]]:
    """The objects of list ``key``; an item that is not an object is an error, and skipped."""
    value = doc.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise FormatError(source, f"'{key}' is a {type(value).__name__}, not a list")
    out = []
    for n, item in enumerate(value):
        if isinstance(item, dict):
            out.append(item)
        else:
            code = {"images": "bad_image", "categories": "bad_category"}.get(key, "bad_annotation")
            report.error(
                code,
                source,
                f"'{key}' item #{n} is a {type(item).__name__}, not an object; skipped",
            )
    return out


def _valid_side(v: Any) -> bool:
    i = int_id(v)
    return i is not None and 0 < i <= MAX_SIDE


def _too_many_pixels(w: Any, h: Any) -> bool:
    """Sides already checked by ``_valid_side``: more pixels than an image may have?"""
    return (int_id(w) or 0) * (int_id(h) or 0) > MAX_PIXELS


def _megapixels(w: Any, h: Any) -> str:
    return f"{(int_id(w) or 0) * (int_id(h) or 0) / 1e6:,.0f} megapixels"


def _read_image(raw: dict[str, Any], ds: Dataset, report: ImportReport, source: str) -> None:
    image_id = int_id(raw.get("id"))
    if image_id is None:
        report.error(
            "bad_image", source, f"image id {raw.get('id')!r} is not an integer; image not imported"
        )
        return
    if any(im.id == image_id for im in ds.images):
        report.error(
            "duplicate_id",
            source,
            "duplicate image id; the later image is not imported",
            image_id=image_id,
        )
        return
    w, h = raw.get("width"), raw.get("height")
    if not (_valid_side(w) and _valid_side(h)):
        report.error(
            "bad_image",
            source,
            f"width {w!r} / height {h!r} are not whole numbers in 1..{MAX_SIDE}; image not imported",
            image_id=image_id,
        )
        return
    if _too_many_pixels(w, h):
        report.error(
            "bad_image",
            source,
            f"size {int_id(w)}x{int_id(h)} (width x height) is {_megapixels(w, h)}, more than "
            f"the {MAX_PIXELS / 1e6:.0f} megapixels an image may have; image not imported",
            image_id=image_id,
        )
        return
    name = raw.get("file_name")
    if not isinstance(name, str) or not name:
        report.warn(
            "bad_image",
            source,
            f"file_name {name!r} is not a string; using '{image_id}'",
            image_id=image_id,
        )
        name = str(image_id)
    extra = {k: v for k, v in raw.items() if k not in _IMAGE_KEYS}
    ds.images.append(ImageRecord(image_id, name, int(w), int(h), extra))  # type: ignore[arg-type]


def _read_category(raw: dict[str, Any], ds: Dataset, report: ImportReport, source: str) -> None:
    cat_id = int_id(raw.get("id"))
    name = raw.get("name")
    if cat_id is None:
        report.error(
            "bad_category", source, f"category id {raw.get('id')!r} is not an integer; not imported"
        )
        return
    if not isinstance(name, str):
        report.warn(
            "bad_category", source, f"category {cat_id} has no string name; named '{cat_id}'"
        )
        name = str(cat_id)
    known = next((c for c in ds.categories if c.id == cat_id), None)
    if known is not None:
        report.warn(
            "duplicate_id",
            source,
            f"duplicate category id {cat_id} ('{name}'); annotations use the first one ('{known.name}')",
        )
        return
    sup = raw.get("supercategory")
    extra = {k: v for k, v in raw.items() if k not in _CATEGORY_KEYS}
    ds.categories.append(Category(cat_id, name, sup if isinstance(sup, str) else "", extra))


def _read_annotation(
    raw: dict[str, Any],
    images: dict[int, ImageRecord],
    ds: Dataset,
    report: ImportReport,
    source: str,
    seen: set[int],
) -> Annotation | None:
    ann_id = int_id(raw.get("id"))
    image_id = int_id(raw.get("image_id"))
    ctx = AnnotationContext(report, source, raw.get("id"), raw.get("image_id"))
    if image_id is None or image_id not in images:
        ctx.error(
            "unknown_image",
            f"image_id {raw.get('image_id')!r} is not an image of this file; not imported",
        )
        return None
    image = images[image_id]
    if ann_id is None or ann_id in seen:
        new_id = max(seen, default=0) + 1
        while new_id in seen:
            new_id += 1
        what = "duplicate" if ann_id is not None else f"not an integer ({raw.get('id')!r})"
        ctx.warn(
            "duplicate_id" if ann_id is not None else "bad_id",
            f"annotation id is {what}; renumbered {new_id}",
        )
        ann_id = new_id
    seen.add(ann_id)
    segm = read_segmentation(raw.get("segmentation"), image.height, image.width, ctx)
    if segm is None:
        return None
    box = check_mask(segm, raw.get("area"), raw.get("bbox"), ctx, image.height, image.width)
    if box is None:
        return None
    category_id = _category(raw.get("category_id"), ds, ctx)
    iscrowd = raw.get("iscrowd", 0)
    if iscrowd not in (0, 1, True, False):
        ctx.warn("bad_field", f"iscrowd {iscrowd!r} is not 0 or 1; using 0")
        iscrowd = 0
    score = None
    if raw.get("score") is not None:
        score = finite_number(raw["score"])
        if score is None:
            ctx.warn("bad_field", f"score {raw['score']!r} is not a finite number; dropped")
    extra = {k: v for k, v in raw.items() if k not in _ANNOTATION_KEYS}
    return Annotation(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        segmentation=segm.rle,
        bbox=box,
        iscrowd=bool(iscrowd),
        score=score,
        extra=extra,
        **read_sam_fields(raw, ctx),
    )


def _category(value: Any, ds: Dataset, ctx: AnnotationContext) -> int | None:
    if value is None:
        ctx.warn("unknown_category", "annotation has no category_id")
        return None
    cat_id = int_id(value)
    if cat_id is None:
        ctx.warn(
            "unknown_category", f"category_id {value!r} is not an integer; left without a category"
        )
        return None
    if not any(c.id == cat_id for c in ds.categories):
        ctx.warn(
            "unknown_category",
            f"category_id {cat_id} is not in 'categories'; added as 'category {cat_id}'",
        )
        ds.categories.append(Category(cat_id, f"category {cat_id}"))
    return cat_id


# ------------------------------------------------------------------------------ export


DEFAULT_CATEGORY = Category(1, "object")
"""The category of annotations without one (SA-1B and AMG masks have none) when the
dataset has no categories; otherwise see ``default_category``."""


def default_category(categories: list[Category]) -> Category:
    """The category exported for annotations without a usable one: the category literally
    named "object" when there is one, else a new "object" with an id no category uses
    (max + 1), so such annotations never silently join a real category such as id 1."""
    named = next((c for c in categories if c.name == DEFAULT_CATEGORY.name), None)
    if named is not None:
        return named
    return Category(max((c.id for c in categories), default=0) + 1, DEFAULT_CATEGORY.name)


def coco_document(dataset: Dataset, segmentation: SegmentationStyle = "rle") -> dict[str, Any]:
    """A COCO instances document for ``dataset`` (see module docstring)."""
    if segmentation not in ("rle", "polygon"):
        raise ValueError(f"segmentation is 'rle' or 'polygon', got {segmentation!r}")
    categories = list(dataset.categories)
    fallback = default_category(categories)
    if any(a.category_id is None for a in dataset.annotations) and fallback not in categories:
        categories.append(fallback)
    info = {
        k: v for k, v in dataset.info.items() if k not in ("images", "categories", "annotations")
    }
    return {
        **info,
        "images": [
            {
                **im.extra,
                "id": im.id,
                "file_name": im.file_name,
                "width": im.width,
                "height": im.height,
            }
            for im in dataset.images
        ],
        "categories": [
            {**c.extra, "id": c.id, "name": c.name, "supercategory": c.supercategory}
            for c in categories
        ],
        "annotations": [annotation_json(a, segmentation, fallback.id) for a in dataset.annotations],
    }


def annotation_json(
    ann: Annotation,
    segmentation: SegmentationStyle = "rle",
    no_category_id: int = DEFAULT_CATEGORY.id,
) -> dict[str, Any]:
    """One COCO annotation object, with area and bbox computed from the mask.

    ``no_category_id`` is written for an annotation without a category: pass
    ``default_category(categories).id`` so it cannot collide with a real category.
    """
    out: dict[str, Any] = {**ann.extra, "id": ann.id, "image_id": ann.image_id}
    out["category_id"] = ann.category_id if ann.category_id is not None else no_category_id
    if ann.segmentation is None:
        out["segmentation"] = []
        out["bbox"] = list(ann.bbox or [0.0, 0.0, 0.0, 0.0])
        out["area"] = float(out["bbox"][2] * out["bbox"][3])
    else:
        rle = ann.segmentation
        rings = _polygons_of(rle) if segmentation == "polygon" and not ann.iscrowd else []
        if rings:
            # area and box of what readers will rasterise, so the file agrees with itself
            out["segmentation"] = rings
            h, w = rle["size"]
            drawn = mask_utils.merge(mask_utils.frPyObjects(rings, h, w))
            out["area"] = int(mask_utils.area(drawn))
            out["bbox"] = [float(v) for v in mask_utils.toBbox(drawn)]
        else:
            # Crowd regions stay RLE, as in COCO itself; so do empty masks, which as an
            # empty polygon list would read as "no mask" (and break pycocotools' annToMask).
            out["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"]}
            out["area"], out["bbox"] = rle_area_bbox(rle)
    out["iscrowd"] = int(ann.iscrowd)
    if ann.score is not None:
        out["score"] = ann.score
    for key in SAM_KEYS:
        value = getattr(ann, key)
        if value is not None:
            out[key] = value
    return out


def _polygons_of(rle: RLE) -> list[list[float]]:
    """COCO rings of an RLE mask, traced in the mask's box only (a small mask on a large
    image costs little) and shifted to image coordinates."""
    window, x0, y0 = decode_rle_window(rle)
    if window.size == 0:
        return []
    return [
        [round(v + (x0 if k % 2 == 0 else y0), 2) for k, v in enumerate(ring)]
        for ring in mask_to_polygons(window)
    ]


def export_coco(
    dataset: Dataset, path: str | os.PathLike[str], segmentation: SegmentationStyle = "rle"
) -> Path:
    """Write a COCO instances file atomically; returns its path."""
    return atomic_write_json(path, coco_document(dataset, segmentation))


def coco_results_document(
    dataset: Dataset, segmentation: SegmentationStyle = "rle"
) -> list[dict[str, Any]]:
    """COCO results: a list of annotations, each with a ``score`` (1.0 when none is known)."""
    out = []
    fallback = default_category(list(dataset.categories)).id
    for ann in dataset.annotations:
        if ann.segmentation is None:
            continue
        item = annotation_json(ann, segmentation, fallback)
        item.setdefault("score", 1.0)
        out.append(item)
    return out


def export_coco_results(
    dataset: Dataset, path: str | os.PathLike[str], segmentation: SegmentationStyle = "rle"
) -> Path:
    """Write COCO results atomically (box-only annotations have no mask and are left out)."""
    return atomic_write_json(path, coco_results_document(dataset, segmentation))
