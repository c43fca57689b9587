"""Agreement of two annotation sets of the same images, as the paper's "Mask quality" study
(§5: automatic masks against their professionally corrected versions, "94% of pairs have
greater than 90% IoU").

Images are paired by file name (the whole relative name, else the base name, else the name
without extension, each only where it is unique in both sets); a pair whose sizes differ is
reported and not compared. In each image, masks are paired one to one so that the summed
IoU is largest (``scipy.optimize.linear_sum_assignment`` on the IoU matrix, computed by
pycocotools on the RLEs without decoding them); pairs with IoU 0 stay unmatched. Set ``b``
is the reference (ground truth) for precision and recall.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from samstudio.core.inspect.mask_stats import ImageMasks, Source, load_images
from samstudio.core.masks import RLE, compress_rle, rle_area, rle_iou

THRESHOLDS: tuple[float, ...] = (0.5, 0.75, 0.9)


@dataclass(frozen=True)
class MatchedPair:
    """Mask ``id_a`` of set a and ``id_b`` of set b in image ``image`` (a's file name)."""

    image: str
    id_a: int
    id_b: int
    iou: float


@dataclass(frozen=True)
class ImageComparison:
    """One image present in both sets: mask counts, pairs and the masks left unmatched."""

    file_name_a: str
    file_name_b: str
    n_a: int
    n_b: int
    ious: tuple[float, ...]
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else 0.0


@dataclass
class SetComparison:
    """The result of ``compare_sets``; counts cover the images present in both sets."""

    name_a: str
    name_b: str
    pairs: list[MatchedPair]
    images: list[ImageComparison]
    only_in_a: list[str]
    only_in_b: list[str]
    size_mismatch: list[str]
    skipped_a: int = 0  # empty masks and box-only annotations
    skipped_b: int = 0
    thresholds: tuple[float, ...] = THRESHOLDS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ious(self) -> np.ndarray:
        """(len(pairs),) float64 IoU of each matched pair."""
        return np.array([p.iou for p in self.pairs], dtype=np.float64)

    @property
    def n_a(self) -> int:
        return sum(im.n_a for im in self.images)

    @property
    def n_b(self) -> int:
        return sum(im.n_b for im in self.images)

    @property
    def unmatched_a(self) -> int:
        return sum(len(im.unmatched_a) for im in self.images)

    @property
    def unmatched_b(self) -> int:
        return sum(len(im.unmatched_b) for im in self.images)

    def share_at(self, threshold: float) -> float:
        """Share of matched pairs with IoU >= ``threshold`` (0 without pairs)."""
        ious = self.ious
        return float(np.count_nonzero(ious >= threshold) / ious.size) if ious.size else 0.0

    def precision_recall(self, threshold: float) -> tuple[float, float]:
        """(precision, recall) counting a pair with IoU >= ``threshold`` as a true positive:
        over the masks of a and of b (the reference). 0 where a set has no masks."""
        hits = int(np.count_nonzero(self.ious >= threshold))
        return (hits / self.n_a if self.n_a else 0.0, hits / self.n_b if self.n_b else 0.0)

    def to_json(self) -> dict[str, Any]:
        ious = self.ious
        return {
            "a": self.name_a,
            "b": self.name_b,
            "images_compared": len(self.images),
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
            "size_mismatch": self.size_mismatch,
            "masks_a": self.n_a,
            "masks_b": self.n_b,
            "skipped_a": self.skipped_a,
            "skipped_b": self.skipped_b,
            "matched_pairs": len(self.pairs),
            "unmatched_a": self.unmatched_a,
            "unmatched_b": self.unmatched_b,
            "iou": {
                "mean": float(ious.mean()) if ious.size else 0.0,
                "median": float(np.median(ious)) if ious.size else 0.0,
                "share_at_least": {str(t): self.share_at(t) for t in self.thresholds},
            },
            "precision_recall": {
                str(t): dict(zip(("precision", "recall"), self.precision_recall(t)))
                for t in self.thresholds
            },
            "images": [
                {
                    "file_name_a": im.file_name_a,
                    "file_name_b": im.file_name_b,
                    "masks_a": im.n_a,
                    "masks_b": im.n_b,
                    "matched": len(im.ious),
                    "mean_iou": im.mean_iou,
                    "unmatched_a": list(im.unmatched_a),
                    "unmatched_b": list(im.unmatched_b),
                }
                for im in self.images
            ],
            "pairs": [
                {"image": p.image, "id_a": p.id_a, "id_b": p.id_b, "iou": p.iou} for p in self.pairs
            ],
        }

    def table(self) -> str:
        """A plain-text summary for a terminal."""
        ious = self.ious
        lines = [
            f"a: {self.name_a}",
            f"b: {self.name_b} (reference)",
            f"  images compared   {len(self.images)} (only in a: {len(self.only_in_a)}, "
            f"only in b: {len(self.only_in_b)}, size differs: {len(self.size_mismatch)})",
            f"  masks             a {self.n_a}, b {self.n_b} "
            f"(skipped empty/box-only: a {self.skipped_a}, b {self.skipped_b})",
            f"  matched pairs     {len(self.pairs)} (unmatched: a {self.unmatched_a}, "
            f"b {self.unmatched_b})",
        ]
        if ious.size:
            lines.append(
                f"  pair IoU          mean {ious.mean():.3f}, median {np.median(ious):.3f}"
            )
        for t in self.thresholds:
            p, r = self.precision_recall(t)
            lines.append(
                f"  IoU >= {t:<4g}       {100 * self.share_at(t):5.1f}% of pairs; "
                f"precision {p:.3f}, recall {r:.3f}"
            )
        for label, names in (("only in a", self.only_in_a), ("only in b", self.only_in_b)):
            if names:
                shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
                lines.append(f"  {label:<17} {shown}")
        return "\n".join(lines)


def match_masks(
    a: Sequence[RLE], b: Sequence[RLE]
) -> tuple[list[tuple[int, int, float]], list[int], list[int]]:
    """One-to-one pairing of masks ``a`` and ``b`` of one image maximising the summed IoU.

    Returns ([(i, j, iou)], unmatched positions in a, unmatched positions in b); pairs with
    IoU 0 are left unmatched. All RLEs must have the same size.
    """
    iou = rle_iou(a, b)
    pairs: list[tuple[int, int, float]] = []
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        pairs = [(int(i), int(j), float(iou[i, j])) for i, j in zip(rows, cols) if iou[i, j] > 0]
    used_a = {i for i, _, _ in pairs}
    used_b = {j for _, j, _ in pairs}
    return (
        pairs,
        [i for i in range(len(a)) if i not in used_a],
        [j for j in range(len(b)) if j not in used_b],
    )


def _names(images: list[ImageMasks], label: str) -> dict[str, ImageMasks]:
    out: dict[str, ImageMasks] = {}
    for im in images:
        if im.file_name in out:
            raise ValueError(f"{label}: file name {im.file_name} appears more than once")
        out[im.file_name] = im
    return out


def _pair_images(
    a: dict[str, ImageMasks], b: dict[str, ImageMasks]
) -> list[tuple[ImageMasks, ImageMasks]]:
    """Pair by the whole name, then base name, then name without extension (unique keys)."""

    def base(n: str) -> str:
        return posixpath.basename(n.replace("\\", "/"))

    keys = (lambda n: n, base, lambda n: posixpath.splitext(base(n))[0])
    left, right = dict(a), dict(b)
    pairs: list[tuple[ImageMasks, ImageMasks]] = []
    for key in keys:
        ka: dict[str, list[str]] = {}
        kb: dict[str, list[str]] = {}
        for n in left:
            ka.setdefault(key(n), []).append(n)
        for n in right:
            kb.setdefault(key(n), []).append(n)
        for k, names in ka.items():
            if len(names) == 1 and len(kb.get(k, ())) == 1:
                pairs.append((left.pop(names[0]), right.pop(kb[k][0])))
    return pairs


def _usable(im: ImageMasks, label: str) -> tuple[list[RLE], list[int], int]:
    """Compressed non-empty RLEs of an image, their ids, and the number skipped."""
    rles: list[RLE] = []
    ids: list[int] = []
    skipped = im.box_only
    for mask_id, rle in zip(im.mask_ids(), im.masks):
        where = f"{label}: image {im.file_name}, annotation {mask_id}"
        try:
            coco = compress_rle(rle)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if coco["size"] != [im.height, im.width]:
            raise ValueError(
                f"{where}: mask size {coco['size']} is not the image's [height, width] "
                f"[{im.height}, {im.width}]"
            )
        if rle_area(coco) == 0:
            skipped += 1
            continue
        rles.append(coco)
        ids.append(mask_id)
    return rles, ids, skipped


def compare_sets(
    a: Source,
    b: Source,
    images_dir: str | os.PathLike[str] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
    names: tuple[str, str] | None = None,
) -> SetComparison:
    """Compare annotation set ``a`` against the reference ``b`` (each a ``Dataset``, a path
    read by ``formats.detect.import_annotations``, or ``ImageMasks``).

    ``names`` label the two sets in reports (default: their paths). Raises ``ValueError``
    naming the file for unreadable input, a file name repeated within
    one set, or a mask whose size is not its image's.
    """
    images_a, name_a, _ = load_images(a, images_dir)
    images_b, name_b, _ = load_images(b, images_dir)
    if names is not None:
        name_a, name_b = names
    by_a, by_b = _names(images_a, name_a), _names(images_b, name_b)
    paired = _pair_images(by_a, by_b)
    seen_a = {ia.file_name for ia, _ in paired}
    seen_b = {ib.file_name for _, ib in paired}
    result = SetComparison(
        name_a,
        name_b,
        pairs=[],
        images=[],
        only_in_a=[n for n in by_a if n not in seen_a],
        only_in_b=[n for n in by_b if n not in seen_b],
        size_mismatch=[],
        thresholds=tuple(float(t) for t in thresholds),
    )
    for ia, ib in paired:
        if (ia.height, ia.width) != (ib.height, ib.width):
            result.size_mismatch.append(
                f"{ia.file_name} ({ia.width}x{ia.height}) vs {ib.file_name} "
                f"({ib.width}x{ib.height})"
            )
            continue
        rles_a, ids_a, skip_a = _usable(ia, name_a)
        rles_b, ids_b, skip_b = _usable(ib, name_b)
        result.skipped_a += skip_a
        result.skipped_b += skip_b
        matches, free_a, free_b = match_masks(rles_a, rles_b)
        result.pairs.extend(MatchedPair(ia.file_name, ids_a[i], ids_b[j], v) for i, j, v in matches)
        result.images.append(
            ImageComparison(
                ia.file_name,
                ib.file_name,
                len(rles_a),
                len(rles_b),
                tuple(v for _, _, v in matches),
                tuple(ids_a[i] for i in free_a),
                tuple(ids_b[j] for j in free_b),
            )
        )
    return result
