"""Export a project through the exchange formats (import: importing.py).

Export builds a `formats.records.Dataset` from the project (image paths relative to the
project root as `file_name`, masks as the stored compressed RLE, SAM fields and COCO's
`iscrowd` kept; crowd regions are written as RLE even in a polygon export) and
writes it with `formats.detect.export_annotations`: COCO with RLE or polygons, or one
SA-1B JSON per image. From a damaged file opened read-only, `salvage=True` exports every
annotation that can still be read and lists what could not.

Import (importing.py, re-exported here as `import_file` and `ImportSummary`) reads any
file the formats layer reads into the project.

Export leaves out masks made on an earlier picture of another size (the image file was
replaced, see `image_files`), each named in the problems: they would not fit the image
the file describes. What else goes out is the `ExportScope`: by default every image and
every reviewed mask; unreviewed auto-segment proposals only when asked for (they are
not annotations yet); optionally only the images that have masks, or only those marked
done. `ExportResult` counts what was written and what the scope left out.

Ids: what was imported from a COCO file goes out with that file's image, category and
annotation ids, its extra keys (`attributes` ...), `info` and `licenses`, when that is
safe; `ExportResult.notes` says which kinds were numbered otherwise (external_ids.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from samstudio.core.document.external_ids import ExportIds, document_head
from samstudio.core.document.importing import ImportSummary, import_file
from samstudio.core.document.project import Project
from samstudio.core.document.records import Annotation
from samstudio.core.store import ProjectError

if TYPE_CHECKING:
    from samstudio.core.formats.records import Annotation as FormatAnnotation
    from samstudio.core.formats.records import Dataset

__all__ = ["ExportResult", "ExportScope", "ImportSummary", "export_project", "import_file"]

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
    renumbered: list[str] = field(default_factory=list)  # ids not the imported files'

    def __iter__(self) -> Iterator[Any]:
        return iter((self.files, self.problems))

    def notes(self) -> list[str]:
        """What the scope left out, and which ids were not the imported files' (and
        why), as sentences for the user."""
        out = []
        if self.proposals_left_out:
            out.append(
                f"{self.proposals_left_out} auto-segment proposal(s) not reviewed yet were "
                "left out (accept them first, or export with proposals)"
            )
        if self.images_left_out:
            out.append(f"{self.images_left_out} image(s) outside the chosen images were left out")
        return out + self.renumbered


def project_dataset(project: Project, *, salvage: bool = False) -> tuple[Dataset, list[str]]:
    """The whole project as a formats Dataset (in memory, with the project's own ids);
    with `salvage`, what a damaged file still holds."""
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
    ids = _plan_ids(project, head, scope, problems)
    annotations = _fitting(head, tally.chosen(annotations), problems)
    keep = tally.annotated if scope.images == "annotated" else None
    stream = tally.counted(annotations)
    if to == "sa1b":
        files, problems = _export_sa1b(head, stream, Path(out), problems, keep, ids)
    else:
        files = [_export_coco(head, stream, Path(out), to, problems, keep, ids)]
    images = len(head.images) if keep is None else len(keep)
    return ExportResult(
        files,
        problems,
        images=images,
        annotations=tally.written,
        proposals_left_out=tally.proposals,
        images_left_out=n_readable - images,
        renumbered=ids.notes(),
    )


def _plan_ids(
    project: Project, head: Dataset, scope: ExportScope, problems: list[str]
) -> ExportIds:
    """Which ids go out (external_ids.py); the project's own when those remembered from
    imported files cannot be read (a damaged file exported for salvage)."""
    try:
        return ExportIds.plan(
            project.store,
            (img.id for img in head.images),
            (c.id for c in head.categories),
            scope.proposals,
        )
    except ProjectError as exc:
        problems.append(
            f"the ids remembered from imported files cannot be read ({exc.reason}); "
            "the project's own ids were written"
        )
        return ExportIds.own()


def _outward(head: Dataset, ids: ExportIds) -> Dataset:
    """`head` with the ids and remembered extra keys that go out (external_ids.py)."""
    from samstudio.core.formats import records as fr

    out = fr.Dataset(info=head.info)
    out.images = [
        fr.ImageRecord(
            ids.images.id(img.id),
            img.file_name,
            img.width,
            img.height,
            {**ids.images.fields(img.id), **img.extra},
        )
        for img in head.images
    ]
    out.categories = [
        fr.Category(
            ids.categories.id(c.id),
            c.name,
            c.supercategory,
            {**ids.categories.fields(c.id), **c.extra},
        )
        for c in head.categories
    ]
    return out


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

    ds = fr.Dataset(info=document_head(project.store, f"SAM Studio project {project.path.name}"))
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


def _record(ann: Annotation, ids: ExportIds | None = None) -> FormatAnnotation:
    """The formats record of an annotation; with `ids`, with the ids and remembered
    extra keys that go out (call once per annotation: fresh ids are handed out here)."""
    from samstudio.core.formats import records as fr

    extra: dict[str, Any] = {}
    image_id, category_id, ann_id = ann.image_id, ann.category_id, ann.id
    if ids is not None:
        ids.annotations.for_image(ann.image_id)
        extra = ids.annotations.fields(ann.id)
        ann_id = ids.annotations.id(ann.id)
        image_id = ids.images.id(ann.image_id)
        if category_id is not None:
            category_id = ids.categories.id(category_id)
    return fr.Annotation(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        segmentation=ann.rle,
        bbox=[float(v) for v in ann.bbox],
        predicted_iou=ann.predicted_iou,
        stability_score=ann.stability_score,
        point_coords=_points(ann),
        iscrowd=ann.iscrowd,
        extra={**extra, "samstudio_source": ann.source},
    )


def _export_coco(
    head: Dataset,
    annotations: Iterable[Annotation],
    out: Path,
    to: str,
    problems: list[str],
    keep: set[int] | None,
    ids: ExportIds,
) -> Path:
    """One COCO file; `keep`: only these image ids (known once the annotations, written
    first, have streamed through), else every image of `head`. `head` and the
    annotations have the project's ids, the file those of `ids`."""
    from samstudio.core.atomic import atomic_write
    from samstudio.core.formats.coco import annotation_json, coco_document, default_category

    style: Literal["rle", "polygon"] = "rle" if to == "coco-rle" else "polygon"
    known = {img.id for img in head.images}
    outward = _outward(head, ids)
    doc = coco_document(outward, style)
    doc.pop("annotations")
    # annotations without a category get "object": an existing one of that name, or a new
    # id that no real category has (category 1 may be "person")
    fallback = default_category(list(outward.categories))
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
            record = _record(ann, ids)
            item = json.dumps(annotation_json(record, style, fallback.id), ensure_ascii=False)
            fh.write((("," if n else "") + item).encode("utf-8"))
            n += 1
        if keep is not None:
            kept = {ids.images.id(i) for i in keep}
            doc["images"] = [img for img in doc["images"] if img["id"] in kept]
        rest = json.dumps(doc, ensure_ascii=False)
        fh.write(b"], " + rest[1:].encode("utf-8"))

    return atomic_write(out, write)


def _export_sa1b(
    head: Dataset,
    annotations: Iterable[Annotation],
    folder: Path,
    problems: list[str],
    keep: set[int] | None,
    ids: ExportIds,
) -> tuple[list[Path], list[str]]:
    """One SA-1B file per image of `head` (`keep`: only these image ids; the files
    have the ids of `ids`)."""
    from samstudio.core.atomic import atomic_write_json
    from samstudio.core.formats import records as fr
    from samstudio.core.formats.sa1b import sa1b_document, sa1b_stem

    folder.mkdir(parents=True, exist_ok=True)
    by_image: dict[int, list[FormatAnnotation]] = {img.id: [] for img in head.images}
    for ann in annotations:
        if ann.image_id in by_image:
            by_image[ann.image_id].append(_record(ann, ids))
        else:
            problems.append(f"annotation {ann.id}: its image {ann.image_id} is missing")
    report = fr.ImportReport()
    stems: set[str] = set()
    written = []
    outward = _outward(head, ids)
    for local, image in zip(head.images, outward.images, strict=True):
        if keep is not None and local.id not in keep:
            continue
        stem = sa1b_stem(image.file_name, image.id, stems)
        one = fr.Dataset(
            images=[image], categories=outward.categories, annotations=by_image.pop(local.id)
        )
        written.append(
            atomic_write_json(folder / f"{stem}.json", sa1b_document(one, image, report))
        )
    return written, problems + [str(issue) for issue in report.issues]


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
