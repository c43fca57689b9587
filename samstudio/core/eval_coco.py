"""Ground truth for the §D.1 point evaluation from a COCO instances file.

The file is read by the importer `samstudio convert` uses (``formats.detect``), so
evaluation sees the same masks and reports the same problems, each naming the file, the
image and the annotation: an annotation that cannot be read is left out with an error,
a file that cannot be used at all raises ``FormatError``, and an image whose COCO size
is its stored frame while EXIF rotates it has its masks turned into the displayed frame
(warning ``reoriented``). Annotations that are not evaluated are counted by reason
(``point_eval_report.LEFT_OUT_REASONS``). No Qt, no torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samstudio.core.formats.detect import import_annotations
from samstudio.core.formats.image_files import attach_images
from samstudio.core.formats.records import Annotation, FormatError, ImageRecord, ImportReport
from samstudio.core.images import ImageLoadError, load_image
from samstudio.core.masks import decode_rle
from samstudio.core.point_eval import EvalSample

_OTHER_FORMATS = {
    "coco-results": "COCO results (a list of predictions)",
    "sa1b": "SA-1B",
    "labelme": "labelme",
    "sav": "SA-V",
}


@dataclass
class CocoEvalSet:
    """The evaluable masks of a COCO file, image by image (sorted by image id).

    Iterating yields one `EvalSample` per image (masks decoded on demand, in the
    displayed frame; name: the record's file_name; mask_ids: annotation ids). An image
    that fails to decode then is left out with a warning added to `issues`.
    left_out: annotations not evaluated, by reason; `issues`: everything the import
    found (print them as `samstudio convert` does).
    """

    source: str
    images: list[tuple[ImageRecord, list[Annotation]]]
    issues: ImportReport
    left_out: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_masks(self) -> int:
        """Masks that will be evaluated (unless their image fails to decode)."""
        return sum(len(anns) for _, anns in self.images)

    def __iter__(self) -> Iterator[EvalSample]:
        for record, anns in self.images:
            assert record.path is not None  # images without a file were left out
            try:
                image = load_image(record.path)
            except ImageLoadError as exc:
                self._leave_out(record, anns, str(exc))
                continue
            if image.shape[:2] != (record.height, record.width):
                h, w = image.shape[:2]
                self._leave_out(
                    record,
                    anns,
                    f"{record.path} decodes to {w}x{h}, not {record.width}x{record.height}",
                )
                continue
            masks = np.stack([decode_rle(a.segmentation) for a in anns if a.segmentation])
            yield EvalSample(image, masks, record.file_name, tuple(a.id for a in anns))

    def _leave_out(self, record: ImageRecord, anns: list[Annotation], why: str) -> None:
        self.issues.warn(
            "image_unreadable",
            self.source,
            f"{why}; its {len(anns)} annotation(s) are left out",
            image_id=record.id,
        )
        self.left_out["image_missing"] = self.left_out.get("image_missing", 0) + len(anns)


def open_coco_eval(
    annotations: str | os.PathLike[str], images_dir: str | os.PathLike[str], min_area: int = 1
) -> CocoEvalSet:
    """Read `annotations` (COCO instances) and check it against the images in
    `images_dir`; masks of fewer than `min_area` pixels are left out.

    Raises FormatError naming the file when it cannot be read, is another format (COCO
    results, SA-1B, labelme, SA-V), or `images_dir` is not a folder.
    """
    source = str(annotations)
    if not Path(images_dir).is_dir():
        raise FormatError(str(images_dir), "not a folder (--images must name the image folder)")
    if Path(annotations).is_dir():
        raise FormatError(source, "a folder; evaluate needs one COCO instances file")
    dataset, issues, kind = import_annotations(annotations)
    if kind != "coco":
        raise FormatError(
            source,
            f"this is a {_OTHER_FORMATS.get(kind, kind)} file, not COCO instances (ground "
            "truth: a JSON object with 'images' and 'annotations'); evaluate compares the "
            "model's masks with ground truth",
        )
    imported = len(dataset.annotations)
    attach_images(dataset, images_dir, issues, source)
    left: dict[str, int] = {}

    def count(reason: str, n: int = 1) -> None:
        if n:
            left[reason] = left.get(reason, 0) + n

    for issue in issues.errors:
        if issue.code == "unknown_image":
            count("unknown_image")
        elif issue.annotation_id is not None or issue.code == "bad_annotation":
            count("not_imported")
    count("not_imported", imported - len(dataset.annotations))  # image size mismatch

    by_image: dict[int, list[Annotation]] = {}
    for ann in dataset.annotations:
        by_image.setdefault(ann.image_id, []).append(ann)
    images = []
    for record in sorted(dataset.images, key=lambda im: im.id):
        kept = []
        for ann in by_image.get(record.id, []):
            if ann.iscrowd:
                count("crowd")
            elif ann.segmentation is None:
                count("box_only")
            elif record.path is None:
                count("image_missing")
            elif ann.area == 0:
                count("empty")
            elif ann.area < min_area:
                count("too_small")
            else:
                kept.append(ann)
        if kept:
            images.append((record, kept))
    return CocoEvalSet(source, images, issues, left)
