"""Plain records a project hands out: images, categories, annotations.

They are snapshots (frozen dataclasses): changing the project does not change a
record already handed out; read it again after an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMAGE_STATUSES = ("new", "in_progress", "done")
SOURCES = ("manual", "auto", "imported", "edited", "proposal")


@dataclass(frozen=True)
class ImageRecord:
    """One image of the project.

    `path` is relative to the project root, with '/' separators. `width` and `height` are
    the displayed frame (EXIF orientation applied); both are 0 when the file could not
    be read, and `error` then says why.
    """

    id: int
    path: str
    width: int
    height: int
    content_hash: str
    status: str
    note: str
    error: str | None


@dataclass(frozen=True)
class Category:
    """An annotation category; `color` is '#rrggbb'."""

    id: int
    name: str
    color: str
    supercategory: str


@dataclass(frozen=True)
class Annotation:
    """One mask on one image.

    `rle` is COCO compressed RLE of the full (height, width) mask in the displayed frame:
    {"size": [H, W], "counts": str}. `bbox` is (x, y, w, h) in pixels (XYWH, integer
    edges), `area` the number of mask pixels. `created` and `modified` are Unix times.
    `source` is one of SOURCES; `prompts` is the JSON-able dict of the prompts that
    produced the mask (or None). `iscrowd` marks a COCO crowd region (one mask over a
    group of objects), kept from an import and written back on export.
    """

    id: int
    image_id: int
    category_id: int | None
    rle: dict[str, Any]
    bbox: tuple[int, int, int, int]
    area: int
    source: str
    predicted_iou: float | None
    stability_score: float | None
    prompts: dict[str, Any] | None
    author: str
    created: float
    modified: float
    iscrowd: bool = False
