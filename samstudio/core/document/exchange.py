"""Export a project through the exchange formats, and import annotation files into it.

Export builds a `formats.records.Dataset` from the project (image paths relative to the
project root as `file_name`, masks as the stored compressed RLE, SAM fields and COCO's
`iscrowd` kept; crowd regions are written as RLE even in a polygon export) and
writes it with `formats.detect.export_annotations`: COCO with RLE or polygons, or one
SA-1B JSON per image. From a damaged file opened read-only, `salvage=True` exports every
annotation that can still be read and lists what could not.

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
  e.g. the same file imported twice) is skipped and counted, not added again.

Export leaves out masks made on an earlier picture of another size (the image file was
replaced, see `image_files`), each named in the problems: they would not fit the image
the file describes. What else goes out is the `ExportScope`: by default every image and
every reviewed mask; unreviewed auto-segment proposals only when asked for (they are
not annotations yet); optionally only the images that have masks, or only those marked
done. `ExportResult` counts what was written and what the scope left out.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Literal

from pycocotools import mask as mask_utils

from samstudio.core.document import history
from samstudio.core.document.project import Project
from samstudio.core.document.records import Annotation
from samstudio.core.document.rows import opt_float

if TYPE_CHECKING:
    from samstudio.core.formats.records import Annotation as FormatAnnotation
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


PROPOSAL = "proposal"  # records.SOURCES: an auto-segment mask not reviewed yet
ImageScope = Literal["all", "annotated", "done"]


@dataclass(frozen=True)
class ExportScope:
    """What an export takes. images: "all" (every readable image, with or without
    masks), "annotated" (images with at least one exported mask) or "done" (images
    marked done); proposals: also the unreviewed auto-segment proposals."""

    images: ImageScope = "all"
    proposals: bool = False


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the files, the problems met (what the format could not
    hold, masks that do not fit their image), how many images and annotations went out,
    and what the scope left out on purpose (not problems). Unpacks as (files, problems)."""

    files: list[Path]
    problems: list[str]
    images: int = 0
    annotations: int = 0
    proposals_left_out: int = 0
    images_left_out: int = 0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.files, self.problems))

    def notes(self) -> list[str]:
        """What the scope left out, as sentences for the user."""
        out = []
        if self.proposals_left_out:
            out.append(
                f"{self.proposals_left_out} auto-segment proposal(s) not reviewed yet were "
                "left out (accept them first, or export with proposals)"
            )
        if self.images_left_out:
            out.append(f"{self.images_left_out} image(s) outside the chosen images were left out")
        return out


def project_dataset(project: Project, *, salvage: bool = False) -> tuple[Dataset, list[str]]:
    """The whole project as a formats Dataset (in memory); with `salvage`, what a damaged
    file still holds."""
    ds = _dataset_head(project)
    annotations, problems = _annotations(project, salvage)
    for ann in _fitting(ds, annotations, problems):
        ds.annotations.append(_record(ann))
    return ds, problems


def export_project(
    project: Project,
    to: str,
    out: str | os.PathLike[str],
    *,
    salvage: bool = False,
    scope: ExportScope = ExportScope(),
) -> ExportResult:
    """Write the project as `coco-rle`, `coco-polygon` (a file) or `sa1b` (a folder).

    Streams: one annotation (COCO) or one image (SA-1B) at a time goes through the
    formats layer's own serialisers (`coco.annotation_json`, `sa1b.sa1b_document`), so
    memory stays flat for a million annotations. Files are written atomically. Returns
    the files written, the problems met (what the format could not hold, and with
    `salvage` what could not be read) and the counts (`ExportResult`).
    """
    if to not in ("coco-rle", "coco-polygon", "sa1b"):
        raise ValueError(f"export format is coco-rle, coco-polygon or sa1b, not {to!r}")
    if scope.images not in ("all", "annotated", "done"):
        raise ValueError(f"images to export are all, annotated or done, not {scope.images!r}")
    head = _dataset_head(project)
    n_readable = len(head.images)
    if scope.images == "done":
        done = {img.id for img in project.images(status="done")}
        head.images = [img for img in head.images if img.id in done]
    tally = _Tally(scope, {img.id for img in head.images})
    annotations, problems = _annotations(project, salvage)
    annotations = _fitting(head, tally.chosen(annotations), problems)
    keep = tally.annotated if scope.images == "annotated" else None
    if to == "sa1b":
        files, problems = _export_sa1b(head, tally.counted(annotations), Path(out), problems, keep)
    else:
        files = [_export_coco(head, tally.counted(annotations), Path(out), to, problems, keep)]
    images = len(head.images) if keep is None else len(keep)
    return ExportResult(
        files,
        problems,
        images=images,
        annotations=tally.written,
        proposals_left_out=tally.proposals,
        images_left_out=n_readable - images,
    )


class _Tally:
    """The scope's filter on the annotation stream, and its counts."""

    def __init__(self, scope: ExportScope, image_ids: set[int]) -> None:
        self.scope = scope
        self.image_ids = image_ids
        self.proposals = 0
        self.written = 0
        self.annotated: set[int] = set()

    def chosen(self, annotations: Iterable[Annotation]) -> Iterator[Annotation]:
        """Proposals (unless asked for) and annotations of images outside the scope
        are left out, not reported as problems."""
        for ann in annotations:
            if ann.source == PROPOSAL and not self.scope.proposals:
                self.proposals += 1
            elif ann.image_id in self.image_ids:
                yield ann

    def counted(self, annotations: Iterable[Annotation]) -> Iterator[Annotation]:
        for ann in annotations:
            self.written += 1
            self.annotated.add(ann.image_id)
            yield ann


def _dataset_head(project: Project) -> Dataset:
    from samstudio.core.formats import records as fr

    ds = fr.Dataset(info={"info": {"description": f"SAM Studio project {project.path.name}"}})
    ds.images = [
        fr.ImageRecord(img.id, img.path, img.width, img.height)
        for img in project.images()
        if img.width > 0 and img.height > 0
    ]
    ds.categories = [
        fr.Category(c.id, c.name, c.supercategory, extra={"color": c.color})
        for c in project.categories()
    ]
    return ds


def _fitting(
    head: Dataset, annotations: Iterable[Annotation], problems: list[str]
) -> Iterator[Annotation]:
    """The annotations whose image is in `head` and whose mask has that image's size;
    each other one is named in `problems` (streamed, as `annotations` comes)."""
    frames = {img.id: img for img in head.images}
    for ann in annotations:
        image = frames.get(ann.image_id)
        if image is None:
            problems.append(f"annotation {ann.id}: its image {ann.image_id} is missing")
            continue
        size = tuple(int(v) for v in ann.rle.get("size", ()))
        if size != (image.height, image.width):
            problems.append(
                f"annotation {ann.id} of {image.file_name}: its mask was made on an earlier "
                f"{_wxh(size)} picture and the file is now {image.width} x {image.height}; "
                "not exported (put the old file back, or delete the mask in the window)"
            )
            continue
        yield ann


def _wxh(size: tuple[int, ...]) -> str:
    return f"{size[1]} x {size[0]}" if len(size) == 2 else str(size)


def _annotations(project: Project, salvage: bool) -> tuple[Iterable[Annotation], list[str]]:
    if salvage:
        return project.salvage_annotations()
    return project.iter_annotations(), []


def _record(ann: Annotation) -> FormatAnnotation:
    from samstudio.core.formats import records as fr

    return fr.Annotation(
        id=ann.id,
        image_id=ann.image_id,
        category_id=ann.category_id,
        segmentation=ann.rle,
        bbox=[float(v) for v in ann.bbox],
        predicted_iou=ann.predicted_iou,
        stability_score=ann.stability_score,
        point_coords=_points(ann),
        iscrowd=ann.iscrowd,
        extra={"samstudio_source": ann.source},
    )


def _export_coco(
    head: Dataset,
    annotations: Iterable[Annotation],
    out: Path,
    to: str,
    problems: list[str],
    keep: set[int] | None = None,
) -> Path:
    """One COCO file; `keep`: only these image ids (known once the annotations, written
    first, have streamed through), else every image of `head`."""
    from samstudio.core.atomic import atomic_write
    from samstudio.core.formats.coco import annotation_json, coco_document, default_category

    style: Literal["rle", "polygon"] = "rle" if to == "coco-rle" else "polygon"
    known = {img.id for img in head.images}
    doc = coco_document(head, style)
    doc.pop("annotations")
    # annotations without a category get "object": an existing one of that name, or a new
    # id that no real category has (category 1 may be "person")
    fallback = default_category(list(head.categories))
    has_default = any(c["id"] == fallback.id for c in doc["categories"])

    def write(fh: IO[bytes]) -> None:
        nonlocal has_default
        n = 0
        fh.write(b'{"annotations": [')
        for ann in annotations:
            if ann.image_id not in known:
                problems.append(f"annotation {ann.id}: its image {ann.image_id} is missing")
                continue
            if ann.category_id is None and not has_default:
                doc["categories"].append(
                    {"id": fallback.id, "name": fallback.name, "supercategory": ""}
                )
                has_default = True
            item = json.dumps(annotation_json(_record(ann), style, fallback.id), ensure_ascii=False)
            fh.write((("," if n else "") + item).encode("utf-8"))
            n += 1
        if keep is not None:
            doc["images"] = [img for img in doc["images"] if img["id"] in keep]
        rest = json.dumps(doc, ensure_ascii=False)
        fh.write(b"], " + rest[1:].encode("utf-8"))

    return atomic_write(out, write)


def _export_sa1b(
    head: Dataset,
    annotations: Iterable[Annotation],
    folder: Path,
    problems: list[str],
    keep: set[int] | None = None,
) -> tuple[list[Path], list[str]]:
    """One SA-1B file per image of `head` (`keep`: only these image ids)."""
    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.formats import records as fr
    from samstudio.core.formats.sa1b import sa1b_document, sa1b_stem

    folder.mkdir(parents=True, exist_ok=True)
    by_image: dict[int, list[FormatAnnotation]] = {img.id: [] for img in head.images}
    for ann in annotations:
        if ann.image_id in by_image:
            by_image[ann.image_id].append(_record(ann))
        else:
            problems.append(f"annotation {ann.id}: its image {ann.image_id} is missing")
    report = fr.ImportReport()
    stems: set[str] = set()
    written = []
    for image in head.images:
        if keep is not None and image.id not in keep:
            continue
        stem = sa1b_stem(image.file_name, image.id, stems)
        one = fr.Dataset(
            images=[image], categories=head.categories, annotations=by_image.pop(image.id)
        )
        written.append(
            atomic_write_json(folder / f"{stem}.json", sa1b_document(one, image, report))
        )
    return written, problems + [str(issue) for issue in report.issues]


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
        _note_dropped(ann, dropped)
        prompts = {"point_coords": ann.point_coords} if ann.point_coords else None
        groups.setdefault(target, []).append(
            (
                ann.segmentation,
                known.name if known else None,
                ann.predicted_iou,
                ann.stability_score,
                prompts,
                bool(ann.iscrowd),
            )
        )
    labels = _label_set(ds, {item[1] for items in groups.values() for item in items}, targets)
    groups = _without_duplicates(project, groups, summary)
    _write_imports(project, groups, summary, existing, labels)
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


def _note_dropped(ann: Any, dropped: dict[str, list[int]]) -> None:
    """Record which of the annotation's fields a project cannot keep (found by review:
    they were dropped silently). iscrowd is kept (schema version 4)."""
    if ann.score is not None:
        dropped.setdefault("with a detection score", []).append(ann.id)
    if ann.crop_box is not None:
        dropped.setdefault("with a crop_box", []).append(ann.id)
    for key in sorted(k for k in ann.extra if k not in _KEPT_ELSEWHERE and not k.startswith(_OWN)):
        dropped.setdefault(f"with the field {key!r}", []).append(ann.id)


# Per-annotation copies of the mask size that some tools write (pycococreator): the
# mask keeps them. Keys with a prefix such as labelme_ / samstudio_ are the readers'
# own bookkeeping, not the user's data.
_KEPT_ELSEWHERE = frozenset({"height", "width"})
_OWN = ("labelme_", "samstudio_")


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
) -> None:
    from samstudio.core.document.project import PALETTE

    if not groups and not labels:
        return
    now = time.time()
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
            for rle, cat_name, iou, stab, prompts, iscrowd in items:
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
            conn.execute(
                "UPDATE images SET status = 'in_progress' WHERE id = ? AND status = 'new'",
                (image_id,),
            )
            history.record(conn, image_id, op)
            summary.annotations_added += len(items)


def _points(ann: Annotation) -> list[list[float]] | None:
    """Prompt points [[x, y], ...] from the prompts dict (keys point_coords or points)."""
    if not ann.prompts:
        return None
    pts = ann.prompts.get("point_coords") or ann.prompts.get("points")
    if not isinstance(pts, list):
        return None
    out = []
    for p in pts:
        if isinstance(p, (list, tuple)) and len(p) >= 2:
            out.append([float(p[0]), float(p[1])])
    return out or None
