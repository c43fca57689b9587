"""Figures of a §D.1 point evaluation: mIoU, the 1-click oracle, NoC, per-mask rows.

NoC@85 / NoC@90 are the interactive-segmentation figures that RITM and micro-sam report:
the mean over masks of the number of clicks after which the IoU first reaches 0.85 /
0.90; a mask that never reaches it within the clicks made counts as the cap (the largest
number of points evaluated, 9 by default) and is counted in ``noc_failed`` (RITM's NoF).

The per-mask rows (``write_per_mask``) let two models be compared mask by mask with a
paired test: one row per evaluated mask, in a fixed order, keyed by image and
annotation id. No Qt, no torch.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samstudio.core.atomic import atomic_write_text

NOC_THRESHOLDS = (0.85, 0.90)

LEFT_OUT_REASONS: dict[str, str] = {
    "crowd": "crowd (iscrowd 1)",
    "box_only": "box only (no mask)",
    "unknown_image": "image_id not an image of the file",
    "not_imported": "unreadable (see the errors above)",
    "image_missing": "image file missing or unreadable",
    "too_small": "smaller than --min-area",
    "empty": "empty mask",
}
"""Why an annotation was not evaluated: key (in the JSON report) and words (table)."""

PER_MASK_SUFFIXES = (".csv", ".jsonl", ".ndjson")


@dataclass
class MaskResult:
    """IoU after 1..n points for one mask; oracle_iou_1: best of the 3 candidates
    after the first point. image / annotation_id / area name the mask in per-mask rows
    (image file name, the annotation's id, its area in pixels)."""

    ious: list[float]
    oracle_iou_1: float
    image: str = ""
    annotation_id: int | str | None = None
    area: int = 0


def clicks_to_reach(ious: Sequence[float], threshold: float, cap: int) -> int:
    """Clicks after which IoU first reaches `threshold` (1-based), else `cap`."""
    for n, value in enumerate(ious[:cap], start=1):
        if value >= threshold:
            return n
    return cap


def _pct(threshold: float) -> str:
    return str(int(round(threshold * 100)))


@dataclass
class EvalReport:
    """Figures of one evaluation run (what `samstudio evaluate` prints and saves).

    noc / noc_failed: keyed by threshold (0.85, 0.90), clicks capped at max(points).
    left_out: annotations not evaluated, by reason (keys of LEFT_OUT_REASONS).
    results: one MaskResult per evaluated mask, in evaluation order.
    """

    points: tuple[int, ...]
    first: str
    miou: dict[int, float] = field(default_factory=dict)
    oracle_miou_1: float = 0.0
    n_masks: int = 0
    n_images: int = 0
    mask_input: bool = True
    noc: dict[float, float] = field(default_factory=dict)
    noc_failed: dict[float, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)
    results: list[MaskResult] = field(default_factory=list)

    @property
    def max_clicks(self) -> int:
        """The NoC cap: the largest number of points evaluated."""
        return max(self.points)

    def to_json(self) -> dict[str, Any]:
        return {
            "miou": {str(k): round(v, 4) for k, v in self.miou.items()},
            "oracle_miou_1": round(self.oracle_miou_1, 4),
            "counts": {"masks": self.n_masks, "images": self.n_images},
            "noc": {_pct(t): round(v, 4) for t, v in self.noc.items()},
            "noc_failed": {_pct(t): n for t, n in self.noc_failed.items()},
            "noc_max_clicks": self.max_clicks,
            "left_out": {k: self.left_out.get(k, 0) for k in LEFT_OUT_REASONS},
            "first": self.first,
            "points": list(self.points),
            "mask_input": self.mask_input,
            "protocol": "SAM paper D.1",
        }

    def table(self) -> str:
        lines = [f"{'points':>8} {'mIoU':>8}"]
        lines += [f"{n:>8d} {self.miou[n]:>8.4f}" for n in self.points]
        lines.append(f"{'oracle@1':>8} {self.oracle_miou_1:>8.4f}")
        for t, v in self.noc.items():
            lines.append(
                f"{'NoC@' + _pct(t):>8} {v:>8.2f}  (clicks to IoU {t:.2f}, capped at "
                f"{self.max_clicks}; {self.noc_failed.get(t, 0)} mask(s) never reached it)"
            )
        lines.append(f"masks: {self.n_masks}  images: {self.n_images}  first point: {self.first}")
        if any(self.left_out.values()):
            total = sum(self.left_out.values())
            lines.append(f"left out: {total} annotation(s): {left_out_words(self.left_out)}")
        return "\n".join(lines)


def left_out_words(left_out: dict[str, int]) -> str:
    """'2 crowd (iscrowd 1), 1 empty mask': the non-zero counts, in LEFT_OUT_REASONS order."""
    order = [*LEFT_OUT_REASONS, *(k for k in left_out if k not in LEFT_OUT_REASONS)]
    return ", ".join(
        f"{left_out[k]} {LEFT_OUT_REASONS.get(k, k)}" for k in order if left_out.get(k)
    )


def build_report(
    results: list[MaskResult],
    pts: tuple[int, ...],
    first: str,
    mask_input: bool,
    n_images: int,
    left_out: dict[str, int] | None = None,
) -> EvalReport:
    """The figures of `results` (ious of each reaching at least max(pts) clicks)."""
    report = EvalReport(points=pts, first=first, mask_input=mask_input)
    report.n_images = n_images
    report.n_masks = len(results)
    report.results = list(results)
    report.left_out = dict(left_out or {})
    cap = pts[-1]
    nan = float("nan")
    if results:
        report.miou = {n: float(np.mean([r.ious[n - 1] for r in results])) for n in pts}
        report.oracle_miou_1 = float(np.mean([r.oracle_iou_1 for r in results]))
    else:
        report.miou = {n: nan for n in pts}
        report.oracle_miou_1 = nan
    for t in NOC_THRESHOLDS:
        clicks = [clicks_to_reach(r.ious, t, cap) for r in results]
        report.noc[t] = float(np.mean(clicks)) if clicks else nan
        report.noc_failed[t] = sum(1 for r in results if max(r.ious[:cap]) < t)
    return report


def per_mask_rows(report: EvalReport) -> list[dict[str, Any]]:
    """One dict per evaluated mask: image, annotation_id, area, iou_1..iou_K (K the NoC
    cap), oracle_iou_1, noc_85, noc_90; floats unrounded."""
    cap = report.max_clicks
    rows = []
    for r in report.results:
        row: dict[str, Any] = {"image": r.image, "annotation_id": r.annotation_id, "area": r.area}
        row.update({f"iou_{n}": r.ious[n - 1] for n in range(1, cap + 1)})
        row["oracle_iou_1"] = r.oracle_iou_1
        row.update({f"noc_{_pct(t)}": clicks_to_reach(r.ious, t, cap) for t in NOC_THRESHOLDS})
        rows.append(row)
    return rows


def check_per_mask_path(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot take the per-mask rows (suffix, folder), or None when it can."""
    p = Path(path)
    if p.suffix.lower() not in PER_MASK_SUFFIXES:
        return f"{p}: the per-mask file must end in .csv or .jsonl (JSON lines)"
    if not p.parent.is_dir():
        return f"{p}: the folder {p.parent} does not exist"
    return None


def write_per_mask(report: EvalReport, path: str | os.PathLike[str]) -> Path:
    """Write the per-mask rows atomically: CSV for .csv, JSON lines otherwise."""
    rows = per_mask_rows(report)
    if Path(path).suffix.lower() == ".csv":
        buf = io.StringIO()
        columns = list(rows[0]) if rows else ["image", "annotation_id", "area"]
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return atomic_write_text(path, text)
