"""SA-1B per-image JSON: one file per image, masks as compressed RLE.

Layout (as released with Segment Anything)::

    {"image": {"image_id", "width", "height", "file_name"},
     "annotations": [{"id", "segmentation": {"size": [H, W], "counts": str}, "bbox",
                      "area", "predicted_iou", "stability_score", "crop_box",
                      "point_coords"}]}

SA-1B has no categories: imported annotations have ``category_id`` None, unless the file
was written by us (optional ``category_id``, ``category_name``, ``iscrowd`` and ``score``
keys, ignored by others). Export writes one
``<image file stem>.json`` per image into a folder (atomically), with ``area`` and
``bbox`` computed from the mask; box-only annotations cannot be expressed and are listed
in the returned report as warnings.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

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
from samstudio.core.masks import rle_area_bbox

MAX_SIDE = 100_000
_KNOWN = (
    "id",
    "segmentation",
    "bbox",
    "area",
    "category_id",
    "category_name",
    "iscrowd",
    "score",
    *SAM_KEYS,
)


def import_sa1b(path: str | os.PathLike[str]) -> tuple[Dataset, ImportReport]:
    """Read one SA-1B JSON file, or every ``*.json`` in a folder (sorted by name)."""
    p = Path(path)
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise FormatError(str(p), "folder holds no .json files")
    ds = Dataset()
    report = ImportReport()
    for f in files:
        read_sa1b(load_json(f), str(f), ds, report)
    return ds, report


def read_sa1b(
    doc: Any, source: str, into: Dataset | None = None, report: ImportReport | None = None
) -> tuple[Dataset, ImportReport]:
    """Add one parsed SA-1B document to ``into`` (a new dataset when None).

    Annotation ids are unique per file in SA-1B; when several files are read into one
    dataset, ids that collide are renumbered with a warning.
    """
    ds = into if into is not None else Dataset()
    rep = report if report is not None else ImportReport()
    if not isinstance(doc, dict) or not isinstance(doc.get("image"), dict):
        raise FormatError(source, "not an SA-1B file (a JSON object with an 'image' object)")
    anns = doc.get("annotations", [])
    if not isinstance(anns, list):
        raise FormatError(source, f"'annotations' is a {type(anns).__name__}, not a list")
    raw_image = doc["image"]
    image_id = int_id(raw_image.get("image_id", raw_image.get("id")))
    w, h = int_id(raw_image.get("width")), int_id(raw_image.get("height"))
    if image_id is None:
        image_id = max((im.id for im in ds.images), default=0) + 1
        rep.warn(
            "bad_id",
            source,
            f"image_id {raw_image.get('image_id')!r} is not an integer; using {image_id}",
        )
    if any(im.id == image_id for im in ds.images):
        new_id = max(im.id for im in ds.images) + 1
        rep.warn(
            "duplicate_id",
            source,
            f"image id {image_id} already read from another file; using {new_id}",
        )
        image_id = new_id
    if w is None or h is None or not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        rep.error(
            "bad_image",
            source,
            f"width {raw_image.get('width')!r} / height {raw_image.get('height')!r} are not "
            f"whole numbers in 1..{MAX_SIDE}; no annotation of this file is imported",
            image_id=image_id,
        )
        return ds, rep
    if w * h > MAX_PIXELS:
        rep.error(
            "bad_image",
            source,
            f"size {w}x{h} (width x height) is {w * h / 1e6:,.0f} megapixels, more than the "
            f"{MAX_PIXELS / 1e6:.0f} megapixels an image may have; no annotation of this file "
            "is imported",
            image_id=image_id,
        )
        return ds, rep
    name = raw_image.get("file_name")
    if not isinstance(name, str) or not name:
        name = PurePath(source).with_suffix(".jpg").name
        rep.warn("bad_image", source, f"no file_name; assuming '{name}'", image_id=image_id)
    extra = {
        k: v
        for k, v in raw_image.items()
        if k not in ("image_id", "id", "width", "height", "file_name")
    }
    ds.images.append(ImageRecord(image_id, name, w, h, extra))
    used = {a.id for a in ds.annotations}
    for n, raw in enumerate(anns):
        ctx = AnnotationContext(rep, source, None, image_id)
        if not isinstance(raw, dict):
            ctx.annotation_id = f"#{n}"
            ctx.error("bad_annotation", f"annotation is a {type(raw).__name__}, not an object")
            continue
        ctx.annotation_id = raw.get("id", f"#{n}")
        segm = read_segmentation(raw.get("segmentation"), h, w, ctx)
        if segm is None:
            continue
        if segm.rle is None:
            ctx.error("bad_segmentation", "SA-1B annotation without a mask; not imported")
            continue
        box = check_mask(segm, raw.get("area"), raw.get("bbox"), ctx, h, w)
        if box is None:
            continue
        ann_id = int_id(raw.get("id"))
        if ann_id is None or ann_id in used:
            new_id = max(used, default=0) + 1
            what = "already used" if ann_id is not None else f"not an integer ({raw.get('id')!r})"
            ctx.warn(
                "duplicate_id" if ann_id is not None else "bad_id",
                f"annotation id {what}; renumbered {new_id}",
            )
            ann_id = new_id
        used.add(ann_id)
        ds.annotations.append(
            Annotation(
                id=ann_id,
                image_id=image_id,
                category_id=_category(raw, ds),
                segmentation=segm.rle,
                bbox=box,
                extra={k: v for k, v in raw.items() if k not in _KNOWN},
                iscrowd=raw.get("iscrowd") in (1, True),
                score=_score(raw, ctx),
                **read_sam_fields(raw, ctx),
            )
        )
    return ds, rep


def _score(raw: dict[str, Any], ctx: AnnotationContext) -> float | None:
    """Our optional ``score`` extension (a COCO result's confidence, kept on a round trip)."""
    if raw.get("score") is None:
        return None
    value = finite_number(raw["score"])
    if value is None:
        ctx.warn("bad_field", f"score {raw['score']!r} is not a finite number; dropped")
    return value


def _category(raw: dict[str, Any], ds: Dataset) -> int | None:
    """Our optional ``category_id``/``category_name`` extension (SA-1B itself has none)."""
    cat_id = int_id(raw.get("category_id"))
    if cat_id is None:
        return None
    if not any(c.id == cat_id for c in ds.categories):
        name = raw.get("category_name")
        ds.categories.append(
            Category(cat_id, name if isinstance(name, str) else f"category {cat_id}")
        )
    return cat_id


def sa1b_document(
    dataset: Dataset, image: ImageRecord, report: ImportReport | None = None
) -> dict[str, Any]:
    """The SA-1B document of one image of ``dataset``."""
    anns = []
    for a in dataset.annotations_of(image.id):
        if a.segmentation is None:
            if report is not None:
                report.warn(
                    "bbox_only",
                    image.file_name,
                    "box-only annotation has no mask; not in SA-1B output",
                    a.id,
                    image.id,
                )
            continue
        item: dict[str, Any] = {
            **a.extra,
            "id": a.id,
            "segmentation": {
                "size": list(a.segmentation["size"]),
                "counts": a.segmentation["counts"],
            },
        }
        item["area"], item["bbox"] = rle_area_bbox(a.segmentation)
        for key in SAM_KEYS:
            value = getattr(a, key)
            if value is not None:
                item[key] = value
        # Not SA-1B (other readers ignore them): our round trip of COCO's fields.
        if a.iscrowd:
            item["iscrowd"] = 1
        if a.score is not None:
            item["score"] = a.score
        if a.category_id is not None:
            item["category_id"] = a.category_id
            cat = next((c for c in dataset.categories if c.id == a.category_id), None)
            if cat is not None:
                item["category_name"] = cat.name
        anns.append(item)
    return {
        "image": {
            **image.extra,
            "image_id": image.id,
            "width": image.width,
            "height": image.height,
            "file_name": image.file_name,
        },
        "annotations": anns,
    }


def sa1b_stem(file_name: str, image_id: int, used: set[str]) -> str:
    """The file stem of one image's SA-1B JSON: the image file's stem; when an earlier
    image took it, ``<stem>_<image id>``, then ``<stem>_<image id>_<n>`` until unused.
    `used` holds the stems taken so far, case-folded (so that a case-insensitive file
    system does not merge two files either) and gets this one."""
    stem = PurePath(file_name.replace("\\", "/")).stem or str(image_id)
    candidates = [stem, f"{stem}_{image_id}"]
    n = 2
    while candidates[-1].casefold() in used:
        candidates.append(f"{stem}_{image_id}_{n}")
        n += 1
    chosen = next(c for c in candidates if c.casefold() not in used)
    used.add(chosen.casefold())
    return chosen


def export_sa1b(
    dataset: Dataset, folder: str | os.PathLike[str]
) -> tuple[list[Path], ImportReport]:
    """Write ``<stem>.json`` per image into ``folder`` (created if needed).

    Returns the written paths and a report of what SA-1B could not hold. Two images with
    the same file stem get ``<stem>_<image id>.json`` (see `sa1b_stem`).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    report = ImportReport()
    stems: set[str] = set()
    written = []
    for image in dataset.images:
        stem = sa1b_stem(image.file_name, image.id, stems)
        written.append(
            atomic_write_json(out / f"{stem}.json", sa1b_document(dataset, image, report))
        )
    return written, report
