"""Dataset mask properties, as the Segment Anything paper's §5 "Mask properties" reports.

For every non-empty mask: the image-relative mask size ``sqrt(mask area / image area)``,
the concavity ``1 - mask area / convex hull area`` and the centroid as a fraction of the
image size; for every image, the number of masks. Concavity is compared across datasets on
a stratified sample (equal numbers of masks from each relative-size bin), because shape
complexity grows with size (``concavity_sample``).

Geometry is in the displayed image frame with pixel-edge coordinates (see
``samstudio.core.masks``): pixel (row y, column x) covers the unit square
``[x, x + 1) x [y, y + 1)``. So a mask's area is its pixel count, its convex hull is the
hull of its pixels' squares (a filled rectangle has concavity exactly 0) and a centroid is
the mean of pixel centres ``(x + 0.5, y + 0.5)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from samstudio.core.inspect.sources import ImageMasks as ImageMasks  # re-exported
from samstudio.core.inspect.sources import Source, load_set, problem_lines
from samstudio.core.inspect.sources import load_images as load_images  # re-exported
from samstudio.core.masks import decode_rle_window

# Fig. 6 (left) of the paper: masks per image, (label, lowest, highest) inclusive
MASKS_PER_IMAGE_BINS: tuple[tuple[str, int, float], ...] = (
    ("1", 1, 1),
    ("2-10", 2, 10),
    ("11-50", 11, 50),
    ("51-100", 51, 100),
    ("101-200", 101, 200),
    (">200", 201, math.inf),
)
RELATIVE_SIZE_EDGES = np.linspace(0.0, 1.0, 21)  # Fig. 6 (middle), bins of 0.05
CONCAVITY_EDGES = np.linspace(0.0, 1.0, 21)  # Fig. 6 (right), bins of 0.05
# relative-size strata for the concavity sample: roughly logarithmic, because small masks
# are far more common than large ones
STRATA_EDGES: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4, 1.0)
CENTRE_GRID = 20
_CORNERS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)


def mask_concavity(mask: np.ndarray) -> float:
    """``1 - area / hull area`` of an (h, w) bool mask, all its parts together.

    The hull is OpenCV's convex hull of the corners of the pixels on the outer contours of
    every part (holes do not change a hull). A filled rectangle gives 0; the value is in
    [0, 1). An empty mask raises ``ValueError``.
    """
    m = np.asarray(mask, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {m.shape}")
    area = int(np.count_nonzero(m))
    if area == 0:
        raise ValueError("an empty mask has no concavity")
    # a zero border: contours of parts touching the edge are traced like any other
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32)
    corners = (points[:, None, :] + _CORNERS[None, :, :]).reshape(-1, 1, 2)
    hull_area = float(cv2.contourArea(cv2.convexHull(corners)))
    return max(0.0, 1.0 - area / hull_area)


@dataclass
class MaskStats:
    """Mask properties of one dataset. Per-mask arrays have one entry per non-empty mask,
    in the order read; ``centres`` is (N, 2) float64 (x / W, y / H) in [0, 1]."""

    name: str
    n_images: int
    masks_per_image: np.ndarray  # (n_images,) int64, non-empty masks of each image
    relative_size: np.ndarray  # (N,) float64, sqrt(area / (H * W))
    concavity: np.ndarray  # (N,) float64
    centres: np.ndarray  # (N, 2) float64
    empty_masks: int = 0
    box_only: int = 0
    import_errors: int = 0
    import_problems: tuple[str, ...] = ()  # str(Issue) of each, errors first
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_masks(self) -> int:
        return int(self.relative_size.size)

    @property
    def mean_masks_per_image(self) -> float:
        return float(self.masks_per_image.mean()) if self.n_images else 0.0

    @property
    def median_masks_per_image(self) -> float:
        return float(np.median(self.masks_per_image)) if self.n_images else 0.0

    @property
    def images_without_masks(self) -> int:
        return int(np.count_nonzero(self.masks_per_image == 0))

    def masks_per_image_histogram(self) -> list[tuple[str, int]]:
        """Images per bin of Fig. 6 (left); images with no mask are in no bin."""
        counts = self.masks_per_image
        return [
            (label, int(np.count_nonzero((counts >= lo) & (counts <= hi))))
            for label, lo, hi in MASKS_PER_IMAGE_BINS
        ]

    def relative_size_histogram(self) -> np.ndarray:
        """Masks per ``RELATIVE_SIZE_EDGES`` bin: (20,) int64."""
        return np.histogram(self.relative_size, bins=RELATIVE_SIZE_EDGES)[0]

    def centre_histogram(self, grid: int = CENTRE_GRID) -> np.ndarray:
        """(grid, grid) float64 share of mask centres per cell (row = y, column = x), summing
        to 1 (all zeros without masks)."""
        hist = np.histogram2d(
            self.centres[:, 1], self.centres[:, 0], bins=grid, range=[[0, 1], [0, 1]]
        )[0]
        total = hist.sum()
        return hist / total if total else hist

    def to_json(self, seed: int = 0, per_bin: int | None = None) -> dict[str, Any]:
        """Summary and histograms (no per-mask values), with the concavity histogram of the
        stratified sample ``concavity_sample(self, per_bin, seed)``."""
        sample = concavity_sample(self, per_bin=per_bin, seed=seed)
        return {
            "name": self.name,
            "images": self.n_images,
            "masks": self.n_masks,
            "empty_masks_skipped": self.empty_masks,
            "box_only_skipped": self.box_only,
            "import_errors": self.import_errors,
            "import_problems": list(self.import_problems),
            "masks_per_image": {
                "mean": self.mean_masks_per_image,
                "median": self.median_masks_per_image,
                "images_without_masks": self.images_without_masks,
                "histogram": dict(self.masks_per_image_histogram()),
            },
            "relative_size": {
                "mean": _mean(self.relative_size),
                "median": _median(self.relative_size),
                "edges": RELATIVE_SIZE_EDGES.tolist(),
                "histogram": self.relative_size_histogram().tolist(),
            },
            "concavity": {
                "mean_all": _mean(self.concavity),
                "seed": seed,
                "strata_edges": list(STRATA_EDGES),
                "per_bin": sample.per_bin,
                "sampled": int(sample.values.size),
                "mean_sampled": _mean(sample.values),
                "edges": CONCAVITY_EDGES.tolist(),
                "histogram": np.histogram(sample.values, bins=CONCAVITY_EDGES)[0].tolist(),
            },
            "centres": {"grid": CENTRE_GRID, "histogram": self.centre_histogram().tolist()},
        }

    def table(self, seed: int = 0) -> str:
        """A plain-text summary for a terminal; without masks, says so (and why, when the
        importer refused annotations) instead of showing means of nothing."""
        rows = [("images", f"{self.n_images}")]
        if self.n_masks == 0:
            rows.append(("masks", "none: no masks to describe"))
        else:
            rows.append(("masks", f"{self.n_masks}"))
        rows.append(("skipped", f"{self.empty_masks} empty, {self.box_only} box-only"))
        if self.n_masks:
            rows += self._figure_rows(seed)
        if self.import_errors:
            rows.append(("import errors", f"{self.import_errors} annotation(s) not read"))
        width = max(len(k) for k, _ in rows)
        lines = [self.name] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"    {line}" for line in problem_lines(self.import_problems)]
        return "\n".join(lines)

    def _figure_rows(self, seed: int) -> list[tuple[str, str]]:
        sample = concavity_sample(self, seed=seed)
        mpi = ", ".join(f"{k}: {v}" for k, v in self.masks_per_image_histogram())
        return [
            (
                "masks per image",
                f"mean {self.mean_masks_per_image:.2f}, median {self.median_masks_per_image:g}"
                f", none: {self.images_without_masks}",
            ),
            ("  images by count", mpi),
            (
                "relative size",
                f"mean {_mean(self.relative_size):.3f}, median {_median(self.relative_size):.3f}",
            ),
            (
                "concavity",
                f"mean {_mean(self.concavity):.3f} (all), {_mean(sample.values):.3f} "
                f"(stratified: {sample.per_bin} x {len(sample.strata)} size bins, seed {seed})",
            ),
        ]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else 0.0


def dataset_mask_stats(
    source: Source, images_dir: str | os.PathLike[str] | None = None, name: str | None = None
) -> MaskStats:
    """Mask properties of ``source`` (see ``sources.load_set``): masks per image, relative size,
    concavity and centre of every non-empty mask. Empty masks and box-only annotations are
    skipped and counted. Each mask is decoded only over its box.

    Raises ``ValueError`` naming the file (and image and annotation) for input that cannot
    be read, or an RLE whose size is not the image's.
    """
    loaded = load_set(source, images_dir)
    images, label = loaded.images, loaded.name
    per_image = np.zeros(len(images), dtype=np.int64)
    sizes: list[float] = []
    concavity: list[float] = []
    centres: list[tuple[float, float]] = []
    empty = box_only = 0
    for i, im in enumerate(images):
        box_only += im.box_only
        if im.height <= 0 or im.width <= 0:
            if im.masks:
                raise ValueError(f"{label}: image {im.file_name} has size {im.width}x{im.height}")
            continue
        image_area = float(im.height) * float(im.width)
        for mask_id, rle in zip(im.mask_ids(), im.masks):
            where = f"{label}: image {im.file_name}, annotation {mask_id}"
            try:
                window, x0, y0 = decode_rle_window(rle)  # validates the RLE
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if list(rle["size"]) != [im.height, im.width]:
                raise ValueError(
                    f"{where}: mask size {list(rle['size'])} is not the image's "
                    f"[height, width] [{im.height}, {im.width}]"
                )
            area = int(np.count_nonzero(window))
            if area == 0:
                empty += 1
                continue
            per_image[i] += 1
            sizes.append(math.sqrt(area / image_area))
            concavity.append(mask_concavity(window))
            cols = window.sum(axis=0, dtype=np.int64)
            rows = window.sum(axis=1, dtype=np.int64)
            cx = x0 + float(cols @ np.arange(cols.size)) / area + 0.5
            cy = y0 + float(rows @ np.arange(rows.size)) / area + 0.5
            centres.append((cx / im.width, cy / im.height))
    return MaskStats(
        name=name or label,
        n_images=len(images),
        masks_per_image=per_image,
        relative_size=np.asarray(sizes, dtype=np.float64),
        concavity=np.asarray(concavity, dtype=np.float64),
        centres=np.asarray(centres, dtype=np.float64).reshape(-1, 2),
        empty_masks=empty,
        box_only=box_only,
        import_errors=len(loaded.errors),
        import_problems=(*loaded.errors, *loaded.warnings),
    )


@dataclass(frozen=True)
class ConcavitySample:
    """A stratified sample of mask concavities.

    ``indices``: positions in the ``MaskStats`` per-mask arrays; ``values``: their
    concavities; ``strata``: the (low, high) relative-size bins sampled, each contributing
    ``per_bin`` masks.
    """

    indices: np.ndarray
    values: np.ndarray
    per_bin: int
    strata: tuple[tuple[float, float], ...]


def size_strata(relative_size: np.ndarray, edges: Sequence[float] = STRATA_EDGES) -> np.ndarray:
    """The stratum of each relative size: (N,) int64 index into the bins of ``edges``
    (``[lo, hi)``, the last bin closed), or -1 outside them."""
    e = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(e, relative_size, side="right") - 1
    idx[relative_size == e[-1]] = e.size - 2
    idx[(relative_size < e[0]) | (relative_size > e[-1])] = -1
    return idx.astype(np.int64)


def concavity_sample(
    stats: MaskStats,
    per_bin: int | None = None,
    seed: int = 0,
    edges: Sequence[float] = STRATA_EDGES,
) -> ConcavitySample:
    """The paper's stratified sample: the same number of masks drawn (without replacement,
    with ``numpy.random.default_rng(seed)``) from every relative-size bin that holds any.

    ``per_bin`` defaults to, and is capped at, the count of the smallest non-empty bin, so
    every sampled bin contributes exactly ``per_bin`` masks.
    """
    if per_bin is not None and per_bin < 1:
        raise ValueError(f"per_bin is at least 1, got {per_bin}")
    strata = size_strata(stats.relative_size, edges)
    members = [np.flatnonzero(strata == k) for k in range(len(edges) - 1)]
    used = [k for k, m in enumerate(members) if m.size]
    if not used:
        empty = np.zeros(0, dtype=np.int64)
        return ConcavitySample(empty, np.zeros(0), 0, ())
    smallest = min(members[k].size for k in used)
    n = smallest if per_bin is None else min(per_bin, smallest)
    rng = np.random.default_rng(seed)
    picked = np.concatenate([np.sort(rng.choice(members[k], size=n, replace=False)) for k in used])
    bins = tuple((float(edges[k]), float(edges[k + 1])) for k in used)
    return ConcavitySample(picked, stats.concavity[picked], int(n), bins)
