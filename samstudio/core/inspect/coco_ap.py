"""COCO mask AP of scored masks against a reference, by pycocotools' own ``COCOeval``
(``iouType="segm"``): AP averaged over IoU 0.50:0.05:0.95, AP50 and AP75, all object
sizes, at most ``MAX_DETS`` masks per image (COCO's limit; the highest-scoring ones).

Reference crowd regions go to COCOeval as ``iscrowd`` annotations, so a mask over one is
neither a hit nor a false positive. Categories are matched by name; with
``by_category=False`` COCOeval's ``useCats`` is off and any mask may match any object.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from samstudio.core.masks import RLE, rle_area

MAX_DETS = 100


@dataclass(frozen=True)
class APImage:
    """One image for ``mask_ap``: its size, the reference masks ``(RLE, category, crowd)``
    and the scored masks ``(RLE, category, score)``; RLEs are compressed, of size
    ``[height, width]``."""

    height: int
    width: int
    reference: Sequence[tuple[RLE, str | None, bool]]
    scored: Sequence[tuple[RLE, str | None, float]]


@dataclass(frozen=True)
class MaskAP:
    """COCOeval's first three summary figures (``stats[0:3]``)."""

    ap: float
    ap50: float
    ap75: float
    by_category: bool
    max_dets: int = MAX_DETS

    def describe(self) -> str:
        how = "per category" if self.by_category else "categories ignored"
        return (
            f"AP {self.ap:.3f}, AP50 {self.ap50:.3f}, AP75 {self.ap75:.3f} "
            f"(pycocotools COCOeval segm, {how}, at most {self.max_dets} masks per image)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "AP": self.ap,
            "AP50": self.ap50,
            "AP75": self.ap75,
            "per_category": self.by_category,
            "max_masks_per_image": self.max_dets,
            "computed_by": "pycocotools COCOeval, iouType segm",
        }


def mask_ap(images: Sequence[APImage], by_category: bool) -> MaskAP | None:
    """COCO mask AP of the scored masks of ``images`` against their reference masks;
    ``None`` when the reference has no object (only crowd regions, or nothing)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not any(not crowd for im in images for _, _, crowd in im.reference):
        return None
    if not any(im.scored for im in images):
        return MaskAP(0.0, 0.0, 0.0, by_category)
    labels = sorted(
        {_label(c) for im in images for _, c, _ in im.reference}
        | {_label(c) for im in images for _, c, _ in im.scored}
    )
    cat_ids = {label: k + 1 for k, label in enumerate(labels)}
    reference: list[dict[str, Any]] = []
    scored: list[dict[str, Any]] = []
    for image_id, im in enumerate(images, start=1):
        for rle, category, crowd in im.reference:
            reference.append(
                {
                    "id": len(reference) + 1,
                    "image_id": image_id,
                    "category_id": cat_ids[_label(category)],
                    "segmentation": dict(rle),
                    "area": float(rle_area(rle)),
                    "iscrowd": int(crowd),
                }
            )
        for rle, category, score in im.scored:
            scored.append(
                {
                    "image_id": image_id,
                    "category_id": cat_ids[_label(category)],
                    "segmentation": dict(rle),
                    "score": float(score),
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = {
            "images": [
                {"id": k, "height": im.height, "width": im.width}
                for k, im in enumerate(images, start=1)
            ],
            "categories": [{"id": i, "name": label} for label, i in cat_ids.items()],
            "annotations": reference,
        }
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(scored), iouType="segm")
        evaluation.params.useCats = int(by_category)
        evaluation.params.maxDets = [1, 10, MAX_DETS]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ap, ap50, ap75 = (max(0.0, float(v)) for v in evaluation.stats[:3])
    return MaskAP(ap, ap50, ap75, by_category)


def _label(category: str | None) -> str:
    return "" if category is None else category
