"""Where automatic mask generation prompts: point grids and zoomed-in crops (paper §B).

Coordinates: points are XY pixels; crop boxes are XYXY pixel bounds in the original
(displayed) image frame, `x1`/`y1` exclusive. A layer-`i` crop is one of
`2**i x 2**i` overlapping windows; layer 0 is the whole image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropBox:
    """One window of the image that is encoded and prompted on its own.

    x0, y0, x1, y1: XYXY pixel bounds in the original frame (x1, y1 exclusive).
    layer: 0 for the whole image, i for a window of the 2**i x 2**i layer.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    layer: int

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1 - self.x0, self.y1 - self.y0)

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return self.width * self.height


def point_grid(points_per_side: int) -> np.ndarray:
    """(n*n, 2) float64 XY of a regular grid in [0, 1]^2, cell centres, row by row.

    Point k is at ((k % n + 0.5) / n, (k // n + 0.5) / n): the same grid as the paper's
    32x32 prompts (and Meta's `build_point_grid`).
    """
    if points_per_side < 1:
        raise ValueError(f"a point grid needs at least 1 point per side, got {points_per_side}")
    n = points_per_side
    centres = (np.arange(n, dtype=np.float64) + 0.5) / n
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def layer_points_per_side(points_per_side: int, layer: int, downscale_factor: int) -> int:
    """Grid size used in crop layer `layer`: points_per_side / downscale_factor**layer,
    rounded down (the paper: 32, then 16 and 8 per crop with factor 2)."""
    return int(points_per_side / (downscale_factor**layer))


def crop_boxes(image_size: tuple[int, int], n_layers: int, overlap_ratio: float) -> list[CropBox]:
    """The whole image, then for each layer i = 1..n_layers its 2**i x 2**i windows.

    image_size: (H, W). Windows of layer i overlap by `overlap_ratio * short_side * 2 / 2**i`
    pixels (the overlap shrinks as crops get smaller), are equal in size, and are listed
    column by column (x outer, y inner), as in Meta's generator, so that ties in the
    cross-crop NMS resolve the same way. On small or thin images the last windows of
    a deep layer can start at or past the image's edge; those empty windows are left
    out (Meta's generator keeps them and then fails to encode them). There are none
    when both sides are at least n * (n - 1) pixels, n = 2**n_layers (56 for 3 layers),
    so for ordinary images the list is Meta's.
    """
    height, width = image_size
    boxes = [CropBox(0, 0, width, height, 0)]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + height) / per_side)
        xs = [int((crop_w - overlap) * i) for i in range(per_side)]
        ys = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in xs:
            for y0 in ys:
                x1, y1 = min(x0 + crop_w, width), min(y0 + crop_h, height)
                if x1 > x0 and y1 > y0:
                    boxes.append(CropBox(x0, y0, x1, y1, layer))
    return boxes


def crop_points(crop: CropBox, grid: np.ndarray) -> np.ndarray:
    """(N, 2) float32 XY prompts in the crop's own pixel frame for a unit `grid`."""
    scale = np.array([crop.width, crop.height], dtype=np.float64)
    return (grid * scale).astype(np.float32)
