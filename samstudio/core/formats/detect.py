"""One entry point for every annotation format: detect, import, export.

``import_annotations(path)`` reads a COCO instances file, COCO results (a JSON list), an
SA-1B file or folder, a labelme file or folder, or an SA-V masklet file, telling them apart
by their content, not their names. ``export_annotations`` writes COCO (RLE or polygons)
or SA-1B. Both are what ``samstudio convert`` and the project store call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from samstudio.core.formats.coco import export_coco, read_coco, read_coco_results
from samstudio.core.formats.image_files import attach_images
from samstudio.core.formats.labelme import categories_from_labels, read_labelme
from samstudio.core.formats.records import Dataset, FormatError, ImportReport
from samstudio.core.formats.sa1b import export_sa1b, read_sa1b
from samstudio.core.formats.sav import read_sav
from samstudio.core.formats.validate import load_json

FormatName = Literal["coco", "coco-results", "sa1b", "labelme", "sav"]
ExportTarget = Literal["coco-rle", "coco-polygon", "sa1b"]
EXPORT_TARGETS: tuple[str, ...] = ("coco-rle", "coco-polygon", "sa1b")


def detect_format(doc: Any, source: str) -> FormatName:
    """Which format a parsed JSON document is in; ``FormatError`` when none fits."""
    if isinstance(doc, list):
        return "coco-results"
    if isinstance(doc, dict):
        if isinstance(doc.get("shapes"), list):
            return "labelme"
        if isinstance(doc.get("image"), dict):
            return "sa1b"
        if "masklet" in doc:
            return "sav"
        if "images" in doc or "annotations" in doc:
            return "coco"
    raise FormatError(
        source,
        "not a COCO, COCO results, SA-1B, labelme or SA-V annotation file",
    )


def import_annotations(
    path: str | os.PathLike[str],
    images_dir: str | os.PathLike[str] | None = None,
    labels: Sequence[str] | None = None,
    ground_truth: Dataset | None = None,
) -> tuple[Dataset, ImportReport, FormatName]:
    """Read annotations from a file or a folder of per-image JSON files.

    ``images_dir``: where image files are (checked against the records, see
    ``image_files.attach_images``; labelme also looks there for missing images).
    ``labels``: labelme category list. ``ground_truth``: for COCO results.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.glob("*.json") if f.is_file())
        if not files:
            raise FormatError(str(p), _why_no_json(p))
        docs = [(f, load_json(f)) for f in files]
        by_kind: dict[str, list[str]] = {}
        for f, d in docs:
            by_kind.setdefault(detect_format(d, str(f)), []).append(f.name)
        if len(by_kind) != 1 or next(iter(by_kind)) not in ("sa1b", "labelme"):
            found = "; ".join(f"{k}: {_some(names)}" for k, names in sorted(by_kind.items()))
            raise FormatError(
                str(p), f"a folder must hold only SA-1B or only labelme files, found {found}"
            )
    else:
        docs = [(p, load_json(p))]
    kind = detect_format(docs[0][1], str(docs[0][0]))
    ds = Dataset()
    report = ImportReport()
    for f, doc in docs:
        if kind == "coco":
            ds, report = read_coco(doc, str(f))
        elif kind == "coco-results":
            ds, report = read_coco_results(doc, str(f), ground_truth)
        elif kind == "sa1b":
            read_sa1b(doc, str(f), ds, report)
        elif kind == "labelme":
            if labels is not None and not ds.categories:
                ds.categories = categories_from_labels(labels)
            read_labelme(doc, f, ds, report, images_dir, fixed_labels=labels is not None)
        else:
            ds, report = read_sav(doc, str(f))
    if images_dir is not None and kind != "labelme":
        attach_images(ds, images_dir, report, str(p))
    return ds, report, kind


def _some(names: Sequence[str], shown: int = 3) -> str:
    """'a, b, c, … (7 in all)': the first few of `names`."""
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head}, … ({len(names)} in all)"


def _why_no_json(folder: Path) -> str:
    """Why a folder gives no annotations: it is empty, or what it holds instead."""
    try:
        names = sorted(e.name for e in folder.iterdir())
    except OSError as exc:
        return exc.strerror or str(exc)
    if not names:
        return "the folder is empty"
    return f"the folder holds no annotation files (*.json), only {_some(names)}"


def export_annotations(
    dataset: Dataset, to: ExportTarget, out: str | os.PathLike[str]
) -> tuple[list[Path], ImportReport]:
    """Write ``dataset`` as ``coco-rle`` / ``coco-polygon`` (one file) or ``sa1b`` (a folder).

    Returns the written files and a report of what the target format could not hold.
    """
    if to == "coco-rle":
        return [export_coco(dataset, out, "rle")], ImportReport()
    if to == "coco-polygon":
        return [export_coco(dataset, out, "polygon")], ImportReport()
    if to == "sa1b":
        return export_sa1b(dataset, out)
    raise ValueError(f"export target is one of {EXPORT_TARGETS}, got {to!r}")
