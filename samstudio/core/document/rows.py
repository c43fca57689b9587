"""Rows of the project file as records, and the checks edits share."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from samstudio.core.document.records import IMAGE_STATUSES, SOURCES, Annotation
from samstudio.core.store import ProjectError

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
ANNOTATION_COLUMNS = (
    "id, image_id, category_id, height, width, counts, bbox_x, bbox_y, bbox_w, bbox_h, area, "
    "source, predicted_iou, stability_score, prompts, author, created, modified"
)


class EditError(ProjectError):
    """An edit that cannot be made: unknown id, wrong mask shape, bad value."""


def annotation_from_row(row: Sequence[Any]) -> Annotation:
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
    ) = row
    return Annotation(
        id=aid,
        image_id=image_id,
        category_id=category_id,
        rle={"size": [height, width], "counts": bytes(counts).decode("ascii")},
        bbox=(bx, by, bw, bh),
        area=area,
        source=source,
        predicted_iou=iou,
        stability_score=stab,
        prompts=None if prompts is None else json.loads(prompts),
        author=author,
        created=created,
        modified=modified,
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
