"""Agreement of two annotation sets of the same images, as the paper's "Mask quality" study
(§5: automatic masks against their professionally corrected versions, "94% of pairs have
greater than 90% IoU"), and of a model's scored results against ground truth.

Images are paired by file name, or by image id when a set is a COCO results list (see
``pairing``); a pair whose sizes differ is reported and not compared. In each image, masks
are paired one to one so that the summed IoU is largest
(``scipy.optimize.linear_sum_assignment`` on the IoU matrix, computed by pycocotools on
the RLEs without decoding them); pairs with IoU 0 stay unmatched. With ``by_category``
only masks of the same category (by name) are paired. Set ``b`` is the reference (ground
truth) for precision and recall.

Crowd regions (COCO ``iscrowd``) are not objects: they are neither paired nor counted, and
a mask of ``a`` that a crowd region of ``b`` covers (intersection over the mask's own
area, COCO's crowd rule) at least as much as a threshold, without a pair at that
threshold, is no false positive there, as in COCO's evaluation. When every mask of ``a``
carries a ``score``, COCO mask AP is computed too (``coco_ap``, pycocotools' COCOeval).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from samstudio.core.inspect.coco_ap import APImage, MaskAP, mask_ap
from samstudio.core.inspect.pairing import BY_FILE_NAME, pair_images
from samstudio.core.inspect.sources import ImageMasks, LoadedSet, Source, load_set
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
    """One image present in both sets: mask counts (crowd regions left out), pairs and the
    masks left unmatched."""

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
    """The result of ``compare_sets``; counts cover the images present in both sets.

    ``pairing``: how images were paired ("file name" or "image id"), ``pairing_why`` the
    reason for pairing by id; ``crowd_a`` / ``crowd_b``: crowd regions left out;
    ``over_crowd``: (pair IoU or 0, crowd coverage) of each mask of a that a crowd region
    of b overlaps; ``mask_ap``: COCO mask AP when a's masks are scored (``ap_note`` says
    why not, when only some are); ``errors_*`` / ``warnings_*``: the importer's problems.
    """

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
    pairing: str = BY_FILE_NAME
    pairing_why: str = ""
    by_category: bool = False
    crowd_a: int = 0
    crowd_b: int = 0
    over_crowd: list[tuple[float, float]] = field(default_factory=list)
    mask_ap: MaskAP | None = None
    ap_note: str = ""
    errors_a: list[str] = field(default_factory=list)
    errors_b: list[str] = field(default_factory=list)
    warnings_a: list[str] = field(default_factory=list)
    warnings_b: list[str] = field(default_factory=list)

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

    @property
    def import_errors(self) -> int:
        """Annotations of either set that the importer refused."""
        return len(self.errors_a) + len(self.errors_b)

    def share_at(self, threshold: float) -> float:
        """Share of matched pairs with IoU >= ``threshold`` (0 without pairs)."""
        ious = self.ious
        return float(np.count_nonzero(ious >= threshold) / ious.size) if ious.size else 0.0

    def over_crowd_at(self, threshold: float) -> int:
        """Masks of a without a pair at ``threshold`` that a crowd region of b covers at
        least that much: not false positives there."""
        return sum(1 for iou, cover in self.over_crowd if iou < threshold and cover >= threshold)

    def precision_recall(self, threshold: float) -> tuple[float, float]:
        """(precision, recall) counting a pair with IoU >= ``threshold`` as a true positive:
        over the masks of a (less those over a crowd region, ``over_crowd_at``) and of b
        (the reference). 0 where a set has no masks."""
        hits = int(np.count_nonzero(self.ious >= threshold))
        counted_a = self.n_a - self.over_crowd_at(threshold)
        return (hits / counted_a if counted_a else 0.0, hits / self.n_b if self.n_b else 0.0)

    def to_json(self) -> dict[str, Any]:
        from samstudio.core.inspect.set_report import comparison_json

        return comparison_json(self)

    def table(self) -> str:
        """A plain-text summary for a terminal."""
        from samstudio.core.inspect.set_report import comparison_table

        return comparison_table(self)


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


@dataclass
class _Usable:
    """The compressed non-empty masks of one image with what is known of each, and the
    number skipped (empty or box-only)."""

    rles: list[RLE] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    crowd: list[bool] = field(default_factory=list)
    skipped: int = 0

    def objects(self) -> list[int]:
        """Positions of the masks that are objects (not crowd regions)."""
        return [k for k in range(len(self.rles)) if not self.crowd[k]]


def _usable(im: ImageMasks, label: str) -> _Usable:
    out = _Usable(skipped=im.box_only)
    for k, (mask_id, rle) in enumerate(zip(im.mask_ids(), im.masks)):
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
            out.skipped += 1
            continue
        out.rles.append(coco)
        out.ids.append(mask_id)
        out.categories.append(im.category_of(k))
        out.scores.append(im.score_of(k))
        out.crowd.append(im.is_crowd(k))
    return out


def _match_image(
    ua: _Usable, ub: _Usable, by_category: bool
) -> tuple[list[tuple[int, int, float]], list[tuple[int, float]]]:
    """Pairs (position in a, position in b, IoU) of one image's objects, within each
    category with ``by_category``; and (position in a, crowd coverage) of a's objects that
    a crowd region of b (of the same category, with ``by_category``) overlaps."""
    groups = sorted({c or "" for c in ua.categories + ub.categories}) if by_category else [None]
    pairs: list[tuple[int, int, float]] = []
    for group in groups:
        in_a = [k for k in ua.objects() if _in(ua, k, group)]
        in_b = [k for k in ub.objects() if _in(ub, k, group)]
        matches, _, _ = match_masks([ua.rles[k] for k in in_a], [ub.rles[k] for k in in_b])
        pairs += [(in_a[i], in_b[j], v) for i, j, v in matches]
    crowds = [k for k in range(len(ub.rles)) if ub.crowd[k]]
    objects_a = ua.objects()
    cover = rle_iou(
        [ua.rles[k] for k in objects_a], [ub.rles[k] for k in crowds], [True] * len(crowds)
    )
    over: list[tuple[int, float]] = []
    for row, k in enumerate(objects_a):
        same = [col for col, c in enumerate(crowds) if not by_category or _same(ua, k, ub, c)]
        best = float(cover[row, same].max()) if same else 0.0
        if best > 0:
            over.append((k, best))
    return pairs, over


def _in(u: _Usable, k: int, group: str | None) -> bool:
    return group is None or (u.categories[k] or "") == group


def _same(ua: _Usable, k: int, ub: _Usable, c: int) -> bool:
    return (ua.categories[k] or "") == (ub.categories[c] or "")


def _load_both(a: Source, b: Source, images_dir: Any) -> tuple[LoadedSet, LoadedSet]:
    """Read both sets; a COCO results list takes its images (ids, sizes) and categories
    from the other set, read first."""
    set_a = load_set(a, images_dir)
    if set_a.kind != "coco-results":
        return set_a, load_set(b, images_dir, ground_truth=set_a.dataset)
    set_b = load_set(b, images_dir)
    if set_b.kind != "coco-results" and set_b.dataset is not None:
        set_a = load_set(a, images_dir, ground_truth=set_b.dataset)
    return set_a, set_b


def compare_sets(
    a: Source,
    b: Source,
    images_dir: str | os.PathLike[str] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
    names: tuple[str, str] | None = None,
    by_category: bool = False,
) -> SetComparison:
    """Compare annotation set ``a`` against the reference ``b`` (each a ``Dataset``, a path
    read by ``formats.detect.import_annotations``, or ``ImageMasks``).

    ``names`` label the two sets in reports (default: their paths); ``by_category`` pairs
    masks only within one category. Raises ``ValueError`` naming the file for unreadable
    input, a file name or image id repeated within one set, a COCO results list compared
    with a set without image ids, or a mask whose size is not its image's.
    """
    set_a, set_b = _load_both(a, b, images_dir)
    if names is not None:
        set_a.name, set_b.name = names
    paired = pair_images(set_a, set_b)
    result = SetComparison(
        set_a.name,
        set_b.name,
        pairs=[],
        images=[],
        only_in_a=paired.only_in_a,
        only_in_b=paired.only_in_b,
        size_mismatch=[],
        thresholds=tuple(float(t) for t in thresholds),
        pairing=paired.how,
        pairing_why=paired.why,
        by_category=by_category,
        errors_a=set_a.errors,
        errors_b=set_b.errors,
        warnings_a=set_a.warnings,
        warnings_b=set_b.warnings,
    )
    ap_images: list[APImage] = []
    for ia, ib in paired.pairs:
        if (ia.height, ia.width) != (ib.height, ib.width):
            result.size_mismatch.append(
                f"{ia.file_name} ({ia.width}x{ia.height}) vs {ib.file_name} "
                f"({ib.width}x{ib.height})"
            )
            continue
        ua, ub = _usable(ia, set_a.name), _usable(ib, set_b.name)
        result.skipped_a += ua.skipped
        result.skipped_b += ub.skipped
        result.crowd_a += sum(ua.crowd)
        result.crowd_b += sum(ub.crowd)
        matches, over = _match_image(ua, ub, by_category)
        result.pairs.extend(
            MatchedPair(ia.file_name, ua.ids[i], ub.ids[j], v) for i, j, v in matches
        )
        paired_iou = {i: v for i, _, v in matches}
        result.over_crowd.extend((paired_iou.get(k, 0.0), cover) for k, cover in over)
        objects_a, objects_b = ua.objects(), ub.objects()
        used_a, used_b = {i for i, _, _ in matches}, {j for _, j, _ in matches}
        result.images.append(
            ImageComparison(
                ia.file_name,
                ib.file_name,
                len(objects_a),
                len(objects_b),
                tuple(v for _, _, v in matches),
                tuple(ua.ids[k] for k in objects_a if k not in used_a),
                tuple(ub.ids[k] for k in objects_b if k not in used_b),
            )
        )
        ap_images.append(
            APImage(
                ia.height,
                ia.width,
                [(ub.rles[k], ub.categories[k], ub.crowd[k]) for k in range(len(ub.rles))],
                [(ua.rles[k], ua.categories[k], ua.scores[k]) for k in objects_a],  # type: ignore[misc]
            )
        )
    _add_mask_ap(result, ap_images)
    return result


def _add_mask_ap(result: SetComparison, images: list[APImage]) -> None:
    """COCO mask AP when every compared mask of a has a score (a note when only some do)."""
    scores = [s for im in images for _, _, s in im.scored]
    unscored = sum(1 for s in scores if s is None)
    if not scores or unscored == len(scores):
        return
    if unscored:
        result.ap_note = (
            f"mask AP not computed: {unscored} of the {len(scores)} masks of a have no score"
        )
        return
    result.mask_ap = mask_ap(images, result.by_category)
    if result.mask_ap is None:
        result.ap_note = "mask AP not computed: the reference has no objects"
