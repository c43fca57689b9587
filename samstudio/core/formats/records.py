"""Plain records that every exchange format reads into and writes from.

A ``Dataset`` holds images, categories and annotations with integer ids, as COCO does.
Masks are stored as compressed COCO RLE (``{"size": [H, W], "counts": str}``) in the
displayed image frame, so a dataset of thousands of masks stays small; ``Annotation.mask``
decodes one on demand. Nothing here imports Qt or touches files.

Importers never raise for a problem inside a document: they return the dataset together
with an ``ImportReport`` whose ``Issue``s name the file, the image and the annotation id.
An *error* means the item was not imported; a *warning* means it was imported with the
stated correction (for example a recomputed area). Only a file that cannot be used at
all (not JSON, not the expected layout) raises ``FormatError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from samstudio.core.masks import RLE, decode_rle, encode_rle, mask_to_box, rle_area, rle_bbox

Severity = Literal["error", "warning"]


class FormatError(Exception):
    """A whole file cannot be read as the expected format; names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read {self.path}: {reason}")


@dataclass(frozen=True)
class Issue:
    """One problem found while importing.

    ``code`` is a stable identifier (``area_mismatch``, ``size_transposed`` ...) for
    programs; ``message`` is the sentence shown to the user.
    """

    severity: Severity
    code: str
    file: str
    message: str
    annotation_id: int | str | None = None
    image_id: int | str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.image_id is not None:
            where += f", image {self.image_id}"
        if self.annotation_id is not None:
            where += f", annotation {self.annotation_id}"
        return f"{self.severity}: {where}: {self.message}"


def _ident(value: Any) -> int | str | None:
    """Ids as found in the file, made printable and hashable (a list id becomes its repr)."""
    if (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int) and not isinstance(value, bool))
    ):
        return value
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class ImportReport:
    """Everything an import noticed, in the order found."""

    issues: list[Issue] = field(default_factory=list)

    def error(
        self, code: str, file: str, message: str, annotation_id: Any = None, image_id: Any = None
    ) -> None:
        self.issues.append(
            Issue("error", code, str(file), message, _ident(annotation_id), _ident(image_id))
        )

    def warn(
        self, code: str, file: str, message: str, annotation_id: Any = None, image_id: Any = None
    ) -> None:
        self.issues.append(
            Issue("warning", code, str(file), message, _ident(annotation_id), _ident(image_id))
        )

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def extend(self, other: ImportReport) -> None:
        self.issues.extend(other.issues)

    def summary(self) -> str:
        return f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues) or "no issues"


@dataclass
class ImageRecord:
    """One image: ``file_name`` relative to the dataset's image folder (may hold sub-folders).

    ``height`` and ``width`` are in the displayed frame (EXIF orientation applied).
    ``image_bytes`` holds an image embedded in the annotation file (labelme ``imageData``).
    ``path`` is where the image file was found on disk, when an importer looked for it
    (never exported).
    """

    id: int
    file_name: str
    width: int
    height: int
    extra: dict[str, Any] = field(default_factory=dict)
    image_bytes: bytes | None = None
    path: str | None = None


@dataclass
class Category:
    id: int
    name: str
    supercategory: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Annotation:
    """One instance mask.

    ``segmentation`` is a compressed RLE at the image's (height, width), or ``None`` for a
    box-only annotation (then ``bbox`` is the stored box). ``bbox`` is XYWH in pixel-edge
    coordinates. SAM's per-mask fields: ``predicted_iou`` (the model's IoU estimate),
    ``stability_score``, ``point_coords`` ([[x, y], ...] prompt points in image pixels),
    ``crop_box`` (XYWH of the AMG crop). ``score`` is the COCO-results confidence.
    ``extra`` keeps unknown keys of the source annotation so they survive a round trip.
    """

    id: int
    image_id: int
    category_id: int | None
    segmentation: RLE | None
    bbox: list[float] | None = None
    iscrowd: bool = False
    score: float | None = None
    predicted_iou: float | None = None
    stability_score: float | None = None
    point_coords: list[list[float]] | None = None
    crop_box: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mask(
        cls, id: int, image_id: int, category_id: int | None, mask: np.ndarray, **fields: Any
    ) -> Annotation:
        """Build from an (H, W) bool mask; bbox is computed from it."""
        return cls(
            id=id,
            image_id=image_id,
            category_id=category_id,
            segmentation=encode_rle(mask),
            bbox=[float(v) for v in mask_to_box(mask, "xywh")],
            **fields,
        )

    @property
    def mask(self) -> np.ndarray | None:
        """(H, W) bool, or None for a box-only annotation."""
        return None if self.segmentation is None else decode_rle(self.segmentation)

    @property
    def area(self) -> int:
        """Foreground pixels of the mask (box area for a box-only annotation)."""
        if self.segmentation is None:
            return int(round(self.bbox[2] * self.bbox[3])) if self.bbox else 0
        return rle_area(self.segmentation)

    def computed_bbox(self) -> list[float]:
        """XYWH from the mask (the stored box for a box-only annotation)."""
        if self.segmentation is None:
            return list(self.bbox or [0.0, 0.0, 0.0, 0.0])
        return rle_bbox(self.segmentation)


@dataclass
class Dataset:
    """Images, categories and annotations, as in a COCO instances file."""

    images: list[ImageRecord] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def image(self, image_id: int) -> ImageRecord:
        for im in self.images:
            if im.id == image_id:
                return im
        raise KeyError(f"no image with id {image_id}")

    def annotations_of(self, image_id: int) -> list[Annotation]:
        return [a for a in self.annotations if a.image_id == image_id]

    def category_by_name(self, name: str) -> Category | None:
        return next((c for c in self.categories if c.name == name), None)

    def next_annotation_id(self) -> int:
        return max((a.id for a in self.annotations), default=0) + 1
