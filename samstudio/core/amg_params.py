"""Parameters of automatic mask generation, their checks and the named presets.

Names and defaults follow Meta's `SamAutomaticMaskGenerator` (so its users find their
way), plus the paper's whole-image filter (`max_mask_area_fraction`) and the adaptive
grid of SAM Studio.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


class AmgParamsError(ValueError):
    """A parameter of automatic mask generation is out of range; the message names it."""


@dataclass(frozen=True)
class AmgParams:
    """How masks are proposed, filtered and de-duplicated (paper §B).

    points_per_side: the whole-image grid is points_per_side x points_per_side prompts.
    points_per_batch: prompts per decoder call (memory grows with it, speed saturates).
    pred_iou_thresh: keep masks whose predicted IoU is > this (0 disables the filter).
    stability_score_thresh: keep masks whose stability score is >= this (0 disables).
    stability_score_offset: logit offset of the stability score (+/- around the threshold).
    box_nms_thresh: box IoU above which a lower-ranked mask of the same crop is dropped.
    crop_n_layers: extra layers of zoomed-in crops; layer i has 2**i x 2**i crops.
    crop_nms_thresh: box IoU for de-duplicating across crops (more zoomed-in crops win).
    crop_overlap_ratio: overlap of neighbouring first-layer crops, as a fraction of the
        image's short side (later layers overlap proportionally less).
    crop_n_points_downscale_factor: layer i uses points_per_side / factor**i points per side.
    min_mask_region_area: fill holes and remove islands smaller than this many pixels,
        then de-duplicate again (0 disables).
    max_mask_area_fraction: drop masks covering at least this fraction of the image
        (paper §B: 0.95); None keeps them (what Meta's generator does).
    adaptive: prompt a coarse subset of the grid first, then only the points of the full
        grid near a point that kept (or nearly kept) a mask and not settled by the finest
        masks of their neighbours (see `samstudio.core.amg_adaptive`).
    adaptive_points_per_side: the coarse grid of adaptive mode (default: half the grid).
    mask_threshold: logit above which a pixel belongs to a mask (SAM: 0.0).
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    max_mask_area_fraction: float | None = 0.95
    adaptive: bool = False
    adaptive_points_per_side: int | None = None
    mask_threshold: float = 0.0

    def __post_init__(self) -> None:
        _check_int(self, "points_per_side", 1, 1024)
        _check_int(self, "points_per_batch", 1, 65536)
        _check_fraction(self, "pred_iou_thresh")
        _check_fraction(self, "stability_score_thresh")
        _check_number(self, "stability_score_offset", 0.0, 100.0, low_open=True)
        _check_fraction(self, "box_nms_thresh")
        _check_int(self, "crop_n_layers", 0, 4)
        _check_fraction(self, "crop_nms_thresh")
        _check_number(self, "crop_overlap_ratio", 0.0, 1.0, high_open=True)
        _check_int(self, "crop_n_points_downscale_factor", 1, 16)
        _check_int(self, "min_mask_region_area", 0, 10**9)
        if self.max_mask_area_fraction is not None:
            _check_number(self, "max_mask_area_fraction", 0.0, 1.0, low_open=True)
        if not isinstance(self.adaptive, bool):
            raise AmgParamsError(f"adaptive must be True or False, got {self.adaptive!r}")
        if self.adaptive_points_per_side is not None:
            _check_int(self, "adaptive_points_per_side", 1, self.points_per_side)
        _check_number(self, "mask_threshold", -100.0, 100.0)
        for layer in range(self.crop_n_layers + 1):
            if self.layer_points_per_side(layer) < 1:
                raise AmgParamsError(
                    f"crop layer {layer} would get no points: points_per_side "
                    f"{self.points_per_side} / crop_n_points_downscale_factor "
                    f"{self.crop_n_points_downscale_factor}**{layer} < 1"
                )

    def layer_points_per_side(self, layer: int) -> int:
        """Points per side of the grid used in each crop of `layer`."""
        return int(self.points_per_side / (self.crop_n_points_downscale_factor**layer))

    def coarse_points_per_side(self, layer: int) -> int:
        """Points per side of adaptive mode's first grid in each crop of `layer`."""
        full = self.layer_points_per_side(layer)
        coarse = self.adaptive_points_per_side or max(1, self.points_per_side // 2)
        scale = coarse / self.points_per_side
        return max(1, min(full, round(full * scale)))

    @classmethod
    def paper(cls, **overrides: Any) -> AmgParams:
        """The SA-1B settings of the paper (§B): a 32x32 grid, 2x2 and 4x4 crops with
        16x16 and 8x8 grids, islands and holes under 100 pixels cleaned."""
        base = cls(crop_n_layers=2, crop_n_points_downscale_factor=2, min_mask_region_area=100)
        return replace(base, **overrides)

    @classmethod
    def fast(cls, **overrides: Any) -> AmgParams:
        """Whole image only, adaptive 16x16 then 32x32 grid: a quick first pass."""
        return replace(cls(adaptive=True, adaptive_points_per_side=16), **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (for saving with results)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AmgParams:
        """Inverse of `to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AmgParamsError(f"unknown automatic mask generation parameters: {unknown}")
        return cls(**data)


def _check_int(params: AmgParams, name: str, low: int, high: int) -> None:
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmgParamsError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise AmgParamsError(f"{name} must be between {low} and {high}, got {value}")


def _check_number(
    params: AmgParams,
    name: str,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AmgParamsError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise AmgParamsError(f"{name} must be in {lo}{low}, {high}{hi}, got {value}")


def _check_fraction(params: AmgParams, name: str) -> None:
    _check_number(params, name, 0.0, 1.0)
