"""Rows of the project file as records, and the checks edits share."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from samstudio.core.document.records import IMAGE_STATUSES, SOURCES, Annotation
from samstudio.core.masks import RLE, compress_rle
from samstudio.core.store import CorruptProjectError, ProjectError

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
ANNOTATION_COLUMNS = (
    "id, image_id, category_id, height, width, counts, bbox_x, bbox_y, bbox_w, bbox_h, area, "
    "source, predicted_iou, stability_score, prompts, author, created, modified, iscrowd"
)


class EditError(ProjectError):
    """An edit that cannot be made: unknown id, wrong mask shape, bad value."""


class DamagedRowError(ValueError):
    """A row whose cells cannot be what the schema says (the message names the row)."""


def annotation_from_row(row: Sequence[Any]) -> Annotation:
    """An `Annotation` from a row of ANNOTATION_COLUMNS; DamagedRowError when a cell is
    damaged (counts not ASCII bytes, prompts not JSON, a number that is not one)."""
    try:
        return _annotation(row)
    except (ValueError, TypeError, RecursionError) as exc:
        raise DamagedRowError(f"annotation {row[0]} is damaged ({exc})") from exc


def damaged_row(path: Path, exc: DamagedRowError) -> CorruptProjectError:
    """The error a user sees for a damaged row of the project file at `path`."""
    return CorruptProjectError(
        path,
        f"{exc}; the project file is damaged: open it read-only and export what can be read",
    )


def _annotation(row: Sequence[Any]) -> Annotation:
    (
        aid,
        image_id,
        category_id,
        height,
        width,
        counts,
        bx,
        by,
        bw,
        bh,
        area,
        source,
        iou,
        stab,
        prompts,
        author,
        created,
        modified,
        iscrowd,
    ) = row
    if not isinstance(counts, bytes):
        raise ValueError(f"its mask is {type(counts).__name__}, not RLE bytes")
    if not all(isinstance(v, int) for v in (height, width, bx, by, bw, bh, area)):
        raise ValueError("its size, bbox or area is not a whole number")
    if iscrowd not in (0, 1):
        raise ValueError(f"its iscrowd is {iscrowd!r}, not 0 or 1")
    return Annotation(
        id=aid,
        image_id=image_id,
        category_id=category_id,
        rle={"size": [height, width], "counts": counts.decode("ascii")},
        bbox=(bx, by, bw, bh),
        area=area,
        source=source,
        predicted_iou=iou,
        stability_score=stab,
        prompts=None if prompts is None else json.loads(prompts),
        author=author,
        created=created,
        modified=modified,
        iscrowd=bool(iscrowd),
    )


def opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def check_status(path: Path, status: str) -> None:
    if status not in IMAGE_STATUSES:
        raise EditError(path, f"image status must be one of {IMAGE_STATUSES}, not {status!r}")


def check_source(path: Path, source: str) -> None:
    if source not in SOURCES:
        raise EditError(path, f"annotation source must be one of {SOURCES}, not {source!r}")


def check_color(path: Path, color: str) -> None:
    if not isinstance(color, str) or not COLOR.match(color):
        raise EditError(path, f"a colour is '#rrggbb', not {color!r}")


def prompts_json(path: Path, prompts: dict[str, Any] | None) -> str | None:
    """The prompts dict as JSON; numpy arrays and scalars become lists and numbers."""
    if prompts is None:
        return None

    def plain(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON-able")

    try:
        return json.dumps(prompts, default=plain)
    except (TypeError, ValueError) as exc:
        raise EditError(path, f"the prompts cannot be stored as JSON ({exc})") from exc


@dataclass(frozen=True)
class EncodedMask:
    """A mask in the form the store keeps it, for `add_annotations` to take as it is.

    counts: COCO compressed RLE counts (ASCII bytes) of a (height, width) mask,
    column-major; bbox: XYWH with integer edges (pycocotools' `toBbox`); area: pixels.
    Make one with `from_rle` (it validates the RLE once, in any thread): the store then
    adds it without decoding the mask, so adding hundreds of generated masks costs
    database rows, not full-size pixel passes.
    """

    height: int
    width: int
    counts: bytes
    bbox: tuple[int, int, int, int]
    area: int

    @classmethod
    def from_rle(cls, rle: RLE) -> EncodedMask:
        """Any valid COCO RLE -> EncodedMask; raises `RLEError` when it is malformed."""
        compressed = compress_rle(rle)
        h, w = compressed["size"]
        coco = {"size": [h, w], "counts": compressed["counts"].encode("ascii")}
        x, y, bw, bh = (int(v) for v in mask_utils.toBbox(coco))
        return cls(h, w, coco["counts"], (x, y, bw, bh), int(mask_utils.area(coco)))
