"""COCO *results* that pycocotools scores: ``COCO(gt).loadRes(results)`` then ``COCOeval``.

A results file is a JSON list of ``{"image_id", "category_id", "segmentation", "score"}``
(plus SAM's ``predicted_iou`` and ``stability_score``, which pycocotools ignores). Its
image ids must be ids of the ground-truth ("reference") instances file, so
``results_document`` maps each image of the dataset to the reference image with the same
file name (see ``match_images``). Masks are written as compressed RLE with neither
``bbox`` nor ``area``: ``loadRes`` then measures both on the mask (a ``bbox`` key would make
it take the box's area, which puts masks in the wrong small / medium / large range).
``score`` is the annotation's score, else SAM's predicted IoU (what SAM's automatic mask
generator ranks by), else 1.0 with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from samstudio.core.atomic import atomic_write_json
from samstudio.core.formats.coco import default_category, read_coco
from samstudio.core.formats.records import Category, Dataset, FormatError, ImportReport
from samstudio.core.formats.validate import load_json


def read_reference(path: str | os.PathLike[str]) -> Dataset:
    """The ground-truth COCO instances file whose image ids results are to use;
    ``FormatError`` naming the file when it is not one (a results list, no images)."""
    doc = load_json(path)
    if isinstance(doc, list):
        raise FormatError(
            str(path),
            "this is a COCO results file; the reference must be the COCO instances file "
            "(ground truth) whose image ids the results are to use",
        )
    dataset, _ = read_coco(doc, str(path))
    if not dataset.images:
        raise FormatError(str(path), "the reference lists no images")
    return dataset


def _parts(name: str) -> tuple[str, ...]:
    """Path components of a file name, '/' or '\\' separated, without '.' and the root."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return tuple(p for p in parts if p not in ("/", "."))


def _common_tail(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """How many trailing components two paths share."""
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def match_images(
    names: dict[int, str], reference: Dataset, source: str
) -> tuple[dict[int, int], ImportReport]:
    """Map image ids to the ids of ``reference`` images with the same file name.

    ``names``: each image's path (relative, as a ``file_name``, or absolute). An image
    matches the reference image whose path ends the same way over the most components:
    the same file name at least ("/data/x/a.jpg" matches "val2017/a.jpg"), and
    "/data/b/a.jpg" matches "b/a.jpg" rather than "c/a.jpg". An image with no match, or with
    several equally good ones, or whose match another image already took, is an error in
    the report (``source`` names the reference file) and left out of the mapping."""
    by_base: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for im in reference.images:
        parts = _parts(im.file_name)
        if parts:
            by_base.setdefault(parts[-1], []).append((parts, im.id))
    report = ImportReport()
    mapping: dict[int, int] = {}
    taken: dict[int, int] = {}
    for image_id, name in names.items():
        ours = _parts(name)
        scored = [
            (_common_tail(ours, parts), ref_id)
            for parts, ref_id in (by_base.get(ours[-1], []) if ours else [])
        ]
        best = max((score for score, _ in scored), default=0)
        chosen = [ref_id for score, ref_id in scored if score == best]
        if not chosen:
            report.error(
                "unknown_image", source, f"no image named like {name!r}", image_id=image_id
            )
        elif len(chosen) > 1:
            report.error(
                "ambiguous_image",
                source,
                f"{name!r} matches images {sorted(chosen)} equally well; left out",
                image_id=image_id,
            )
        elif chosen[0] in taken:
            report.error(
                "duplicate_id",
                source,
                f"{name!r} matches image {chosen[0]}, already matched by "
                f"{names[taken[chosen[0]]]!r}; left out",
                image_id=image_id,
            )
        else:
            taken[chosen[0]] = image_id
            mapping[image_id] = chosen[0]
    return mapping, report


def agnostic_category(reference: Dataset) -> Category:
    """The category written for masks without one (SAM's automatic masks): the reference's
    only category, else its category named "object", else a new "object" category (then
    evaluate class-agnostic: ``COCOeval.params.useCats = 0``)."""
    if len(reference.categories) == 1:
        return reference.categories[0]
    return default_category(list(reference.categories))


def results_document(
    dataset: Dataset,
    reference: Dataset | None = None,
    names: dict[int, str] | None = None,
    reference_name: str = "reference",
) -> tuple[list[dict[str, Any]], ImportReport]:
    """COCO results of ``dataset``'s masks (box-only annotations have none and are left out).

    With ``reference`` (a ground-truth instances dataset), image ids are the reference's,
    matched by file name (``names``: image id -> path, default the records' ``path`` or
    ``file_name``); images without a match are reported as errors and left out, and
    categories are matched by name (masks without a category get ``agnostic_category``).
    Without it, the dataset's own ids and categories are kept: the results then score
    against the dataset's own instances file. ``reference_name`` names the reference
    file in the report."""
    report = ImportReport()
    ref = reference if reference is not None else dataset
    mapping = {im.id: im.id for im in dataset.images}
    if reference is not None:
        paths = names or {im.id: im.path or im.file_name for im in dataset.images}
        mapping, report = match_images(paths, reference, reference_name)
        _drop_other_sizes(dataset, reference, mapping, report, reference_name)
    if reference is None:  # as coco_document writes the instances file
        fallback = default_category(list(dataset.categories)).id
    else:
        fallback = agnostic_category(reference).id
    ref_ids = {c.name: c.id for c in ref.categories}
    strangers: set[str] = set()
    own_names = {c.id: c.name for c in dataset.categories}
    out: list[dict[str, Any]] = []
    unscored = 0
    for ann in dataset.annotations:
        if ann.segmentation is None or ann.image_id not in mapping:
            continue
        if ann.category_id is None:
            category = fallback
        elif reference is None:
            category = ann.category_id
        else:
            name = own_names.get(ann.category_id, f"category {ann.category_id}")
            category = ref_ids.get(name, fallback)
            if name not in ref_ids:
                strangers.add(name)
        score = ann.score if ann.score is not None else ann.predicted_iou
        if score is None:
            unscored += 1
            score = 1.0
        item: dict[str, Any] = {
            "image_id": mapping[ann.image_id],
            "category_id": category,
            "segmentation": {
                "size": list(ann.segmentation["size"]),
                "counts": ann.segmentation["counts"],
            },
            "score": float(score),
        }
        for key in ("predicted_iou", "stability_score"):
            value = getattr(ann, key)
            if value is not None:
                item[key] = value
        out.append(item)
    if strangers:
        report.warn(
            "unknown_category",
            reference_name,
            f"categories {sorted(strangers)} are not in the reference; their masks are "
            f"written with category {fallback}",
        )
    if unscored:
        report.warn(
            "no_score",
            "results",
            f"{unscored} mask(s) have neither a score nor a predicted IoU; written with score "
            "1.0 (COCOeval ranks them arbitrarily)",
        )
    return out, report


def _drop_other_sizes(
    dataset: Dataset,
    reference: Dataset,
    mapping: dict[int, int],
    report: ImportReport,
    reference_name: str,
) -> None:
    """Unmap (with an error) images whose size differs from their reference image's:
    COCOeval cannot compare masks of two sizes."""
    sizes = {im.id: (im.width, im.height) for im in reference.images}
    for im in dataset.images:
        ref_id = mapping.get(im.id)
        if ref_id is not None and sizes[ref_id] != (im.width, im.height):
            w, h = sizes[ref_id]
            report.error(
                "size_mismatch",
                reference_name,
                f"{im.file_name!r} is {im.width}x{im.height} (width x height) but its "
                f"reference image {ref_id} is {w}x{h}; left out",
                image_id=im.id,
            )
            del mapping[im.id]


def export_results(
    dataset: Dataset,
    path: str | os.PathLike[str],
    reference: Dataset | None = None,
    names: dict[int, str] | None = None,
    reference_name: str = "reference",
) -> tuple[Path | None, ImportReport]:
    """Write ``results_document`` atomically; returns the path and its report. No mask
    to write is an error in the report and nothing is written (``loadRes`` fails on an
    empty list)."""
    doc, report = results_document(dataset, reference, names, reference_name)
    if not doc:
        report.error(
            "no_results",
            str(path),
            "no mask to write (pycocotools cannot load an empty results list); not written",
        )
        return None, report
    return atomic_write_json(path, doc), report
