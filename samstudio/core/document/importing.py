"""Import annotation files into a project.

Import reads any file the formats layer reads (COCO, COCO results, SA-1B, labelme,
SA-V) and adds its masks as `source="imported"` annotations (crowd regions keep
`iscrowd`), in one transaction, one undo step per image:

- images are matched by relative path, then by a unique base name, then (when the
  importer found the file under `images_dir`) by content hash;
- categories are merged by name: an existing category of the same name is reused,
  others are created, in the file's order, also those no annotation of the file uses
  (its label set), unless the file has images and matched none of them;
- conflicts are reported, never silently dropped: images not in the project, masks
  whose size differs from the project's image, box-only annotations (no mask),
  categories whose supercategory differs from the project's;
- an annotation identical to one the image already has (the same mask and category,
  e.g. the same file imported twice) is skipped and counted, not added again;
- from a COCO file (instances or results) the file's own ids of the matched images,
  the categories and the added annotations, with their extra keys (`attributes` ...),
  and the file's `info` and `licenses` are remembered, so that an export writes them
  back (external_ids.py; the newest import wins for the items it touches). A results
  list's annotation ids are not remembered: they are made up (by the reader when the
  list has none, by pycocotools' loadRes anyway) and would clash with the ground
  truth's.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from pycocotools import mask as mask_utils

from samstudio.core.document import external_ids, history
from samstudio.core.document.project import Project
from samstudio.core.document.rows import opt_float

if TYPE_CHECKING:
    from samstudio.core.formats.records import Dataset, ImportReport


@dataclass
class ImportSummary:
    """What an import did: counts, and every conflict as a sentence naming file and ids."""

    format: str
    annotations_added: int = 0
    annotations_skipped: int = 0  # identical to one the image already had
    images_matched: int = 0
    categories_added: list[str] = field(default_factory=list)
    categories_merged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    format_issues: list[str] = field(default_factory=list)


@dataclass
class _FileIds:
    """What a COCO import remembers besides its annotations' ids (external_ids.py):
    (project image id, the file's id, extra keys) of each matched image, the file's
    (id, extra keys) of each category by name, and its top-level keys (info ...)."""

    images: list[tuple[int, int, dict[str, Any]]]
    categories: dict[str, tuple[int, dict[str, Any]]]
    document: dict[str, Any]


def import_file(
    project: Project, file: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None
) -> ImportSummary:
    """Import an annotation file (or folder) into the project; see the module docstring.

    Raises `formats.records.FormatError` when the file cannot be read at all.
    """
    from samstudio.core.formats.detect import import_annotations

    dataset, report, kind = import_annotations(file, images_dir=images_dir)
    summary = ImportSummary(format=kind, format_issues=[str(i) for i in report.issues])
    _import_dataset(project, dataset, report, str(file), summary)
    return summary


def _import_dataset(
    project: Project, ds: Dataset, report: ImportReport, source: str, summary: ImportSummary
) -> None:
    """Add `ds` to the project (`summary.format`: the format it was read from)."""
    coco = summary.format in external_ids.COCO_FORMATS
    targets = _match_images(project, ds, source, summary)
    frames = {img.id: (img.height, img.width) for img in project.images()}
    existing = {c.name: c for c in project.categories()}
    names = {c.id: c for c in ds.categories}
    for cat in ds.categories:
        have = existing.get(cat.name)
        if have is not None and have.supercategory != cat.supercategory:
            summary.conflicts.append(
                f"{source}: category {cat.name!r} has supercategory {cat.supercategory!r} there "
                f"but {have.supercategory!r} in the project; kept the project's"
            )
    groups: dict[int, list[tuple[Any, ...]]] = {}
    dropped: dict[str, list[int]] = {}  # what the project cannot keep -> annotation ids
    for ann in ds.annotations:
        where = f"{source}: annotation {ann.id}"
        target = targets.get(ann.image_id)
        if target is None:
            continue  # reported once per image by _match_images
        if ann.segmentation is None:
            summary.conflicts.append(f"{where}: has only a box, no mask; not imported")
            continue
        size = tuple(int(v) for v in ann.segmentation["size"])
        if size != frames[target]:
            summary.conflicts.append(
                f"{where}: mask size {size} differs from the project's image {frames[target]}; not imported"
            )
            continue
        known = names.get(ann.category_id) if ann.category_id is not None else None
        _note_dropped(ann, dropped, keeps_extra=coco)
        prompts = {"point_coords": ann.point_coords} if ann.point_coords else None
        groups.setdefault(target, []).append(
            (
                ann.segmentation,
                known.name if known else None,
                ann.predicted_iou,
                ann.stability_score,
                prompts,
                bool(ann.iscrowd),
                ann.id,
                external_ids.kept_fields(ann.extra) if coco else {},
            )
        )
    labels = _label_set(ds, {item[1] for items in groups.values() for item in items}, targets)
    groups = _without_duplicates(project, groups, summary)
    file_ids = None
    if coco:
        images = {rec.id: rec for rec in ds.images}
        file_ids = _FileIds(
            [(t, i, external_ids.kept_fields(images[i].extra)) for i, t in targets.items()],
            {c.name: (c.id, external_ids.kept_fields(c.extra)) for c in labels},
            ds.info,
        )
    _write_imports(project, groups, summary, existing, labels, file_ids)
    for what, ids in dropped.items():
        shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
        summary.conflicts.append(
            f"{source}: {len(ids)} annotation(s) (ids {shown}) {what}: a project does not "
            "keep it; imported without it"
        )


def _without_duplicates(
    project: Project, groups: dict[int, list[tuple[Any, ...]]], summary: ImportSummary
) -> dict[int, list[tuple[Any, ...]]]:
    """`groups` without the annotations identical to one their image already has: the
    same mask (compared by its RLE, and pixel by pixel where two encodings of one mask
    could differ) and the same category (by name; none matches none). Each existing
    annotation matches one imported annotation at most. Skipped ones are counted in
    `summary.annotations_skipped`."""
    names: dict[int | None, str] = {c.id: c.name for c in project.categories()}
    out: dict[int, list[tuple[Any, ...]]] = {}
    for image_id, items in groups.items():
        have: dict[tuple[Any, ...], list[bytes]] = {}
        for ann in project.annotations(image_id):
            have.setdefault(_mask_key(ann.rle, names.get(ann.category_id)), []).append(
                _counts(ann.rle)
            )
        kept = []
        for item in items:
            same = have.get(_mask_key(item[0], item[1]), [])
            match = _same_mask(item[0], same) if same else None
            if match is None:
                kept.append(item)
                continue
            same.pop(match)
            summary.annotations_skipped += 1
        if kept:
            out[image_id] = kept
    return out


def _counts(rle: dict[str, Any]) -> bytes:
    counts = rle["counts"]
    return counts.encode("ascii") if isinstance(counts, str) else bytes(counts)


def _mask_key(rle: dict[str, Any], category: str | None) -> tuple[Any, ...]:
    """What two identical annotations share, cheap to compute from the RLE: category,
    size, box and area."""
    coco = {"size": [int(v) for v in rle["size"]], "counts": _counts(rle)}
    box = tuple(int(v) for v in mask_utils.toBbox(coco))
    return (category, tuple(coco["size"]), box, int(mask_utils.area(coco)))


def _same_mask(rle: dict[str, Any], candidates: list[bytes]) -> int | None:
    """The index in `candidates` (RLE counts of masks of the same size, box and area) of
    one with the same pixels as `rle`, or None."""
    counts = _counts(rle)
    if counts in candidates:
        return candidates.index(counts)
    size = [int(v) for v in rle["size"]]
    mask = mask_utils.decode({"size": size, "counts": counts})
    for i, other in enumerate(candidates):
        if (mask_utils.decode({"size": size, "counts": other}) == mask).all():
            return i
    return None


# labelme's reserved labels (labelme2coco writes "_background_" as a category)
_NOT_LABELS = frozenset({"_background_", "__ignore__"})


def _label_set(ds: Dataset, used: set[str | None], targets: dict[int, int]) -> list[Any]:
    """The categories an import creates or merges, in the file's order, each name once:
    those its imported annotations use, and (found by review: they were lost) those the
    file declares and no annotation of it uses, its label set to annotate with - unless
    the file has images and matched none of them (the wrong file). Not categories used
    only by annotations that are not imported (among them those the reader made up for
    an unknown category_id), nor unused ones with a blank or reserved name."""
    referenced = {a.category_id for a in ds.annotations}
    spare = bool(targets) or not ds.images
    out: list[Any] = []
    names: set[str] = set()
    for cat in ds.categories:
        unused = cat.id not in referenced and cat.name.strip() and cat.name not in _NOT_LABELS
        if cat.name in names or not (cat.name in used or (spare and unused)):
            continue
        names.add(cat.name)
        out.append(cat)
    return out


def _note_dropped(ann: Any, dropped: dict[str, list[int]], keeps_extra: bool) -> None:
    """Record which of the annotation's fields a project cannot keep (found by review:
    they were dropped silently). iscrowd is kept (schema version 4), and the extra keys
    of a COCO file's annotations (`keeps_extra`, schema version 6: external_ids.py)."""
    if ann.score is not None:
        dropped.setdefault("with a detection score", []).append(ann.id)
    if ann.crop_box is not None:
        dropped.setdefault("with a crop_box", []).append(ann.id)
    if keeps_extra:
        return
    lost = (k for k in ann.extra if k not in _KEPT_ELSEWHERE)
    for key in sorted(k for k in lost if not k.startswith(external_ids.OWN_PREFIXES)):
        dropped.setdefault(f"with the field {key!r}", []).append(ann.id)


# Per-annotation copies of the mask size that some tools write (pycococreator): the
# mask keeps them. Keys with a prefix such as labelme_ / samstudio_ are the readers'
# own bookkeeping, not the user's data.
_KEPT_ELSEWHERE = frozenset({"height", "width"})


def _match_images(
    project: Project, ds: Dataset, source: str, summary: ImportSummary
) -> dict[int, int]:
    """Dataset image id -> project image id."""
    images = project.images()
    by_path = {img.path: img.id for img in images}
    by_name: dict[str, list[int]] = {}
    for img in images:
        by_name.setdefault(PurePosixPath(img.path).name, []).append(img.id)
    by_hash = {img.content_hash: img.id for img in images if img.content_hash}
    out: dict[int, int] = {}
    for rec in ds.images:
        name = rec.file_name.replace("\\", "/")
        target = by_path.get(name)
        if target is None and len(by_name.get(PurePosixPath(name).name, [])) == 1:
            target = by_name[PurePosixPath(name).name][0]
        if target is None and rec.path:
            from samstudio.core.images import ImageLoadError, content_hash

            try:
                target = by_hash.get(content_hash(rec.path))
            except ImageLoadError:
                target = None
        if target is None:
            n = len(ds.annotations_of(rec.id))
            summary.conflicts.append(
                f"{source}: image {rec.id} ({rec.file_name}) is not in the project; its {n} annotation(s) not imported"
            )
            continue
        out[rec.id] = target
    summary.images_matched = len(set(out.values()))
    return out


def _write_imports(
    project: Project,
    groups: dict[int, list[tuple[Any, ...]]],
    summary: ImportSummary,
    existing: dict[str, Any],
    labels: list[Any],
    file_ids: _FileIds | None = None,
) -> None:
    """Write the categories (`labels`) and annotations (`groups`: project image id ->
    items) of an import, and with `file_ids` what a COCO file's ids were."""
    from samstudio.core.document.project import PALETTE

    if not groups and not labels and not (file_ids and file_ids.images):
        return
    now = time.time()
    added: list[tuple[int, int, dict[str, Any]]] = []  # (annotation id, file's id, fields)
    with project.store.transaction("importing annotations") as conn:
        cat_ids = {name: c.id for name, c in existing.items()}
        n_cats = conn.execute("SELECT count(*) FROM categories").fetchone()[0]
        for cat in labels:  # in the file's order, so colours follow it
            if cat.name in cat_ids:
                summary.categories_merged.append(cat.name)
                continue
            cur = conn.execute(
                "INSERT INTO categories (name, color, supercategory) VALUES (?, ?, ?)",
                (cat.name, PALETTE[n_cats % len(PALETTE)], cat.supercategory),
            )
            n_cats += 1
            cat_ids[cat.name] = int(cur.lastrowid or 0)
            summary.categories_added.append(cat.name)
        for image_id, items in groups.items():
            op = history.Operation(f"Import {len(items)} annotation{'s' if len(items) > 1 else ''}")
            for rle, cat_name, iou, stab, prompts, iscrowd, file_id, fields in items:
                counts = (
                    rle["counts"].encode("ascii")
                    if isinstance(rle["counts"], str)
                    else bytes(rle["counts"])
                )
                coco = {"size": list(rle["size"]), "counts": counts}
                x, y, w, h = (int(v) for v in mask_utils.toBbox(coco))
                cur = conn.execute(
                    "INSERT INTO annotations (image_id, category_id, height, width, counts, bbox_x, "
                    "bbox_y, bbox_w, bbox_h, area, source, predicted_iou, stability_score, prompts, "
                    "author, created, modified, iscrowd) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'imported', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id,
                        cat_ids.get(cat_name) if cat_name else None,
                        int(rle["size"][0]),
                        int(rle["size"][1]),
                        counts,
                        x,
                        y,
                        w,
                        h,
                        int(mask_utils.area(coco)),
                        opt_float(iou),
                        opt_float(stab),
                        None if prompts is None else json.dumps(prompts),
                        project.author,
                        now,
                        now,
                        int(iscrowd),
                    ),
                )
                op.alive(int(cur.lastrowid or 0), True)
                added.append((int(cur.lastrowid or 0), file_id, fields))
            conn.execute(
                "UPDATE images SET status = 'in_progress' WHERE id = ? AND status = 'new'",
                (image_id,),
            )
            history.record(conn, image_id, op)
            summary.annotations_added += len(items)
        if file_ids is not None:
            if summary.format != "coco-results":  # a results list's ids are made up
                external_ids.remember(conn, "annotation", added)  # (pycocotools' too)
            external_ids.remember(conn, "image", file_ids.images)
            external_ids.remember(
                conn,
                "category",
                [(cat_ids[n], *v) for n, v in file_ids.categories.items() if n in cat_ids],
            )
            external_ids.remember_document(conn, file_ids.document)
