"""Mask pictures for the canvas and the candidates panel, in numpy (no Qt).

Everything here runs in any thread: the inference worker renders candidate overlays
and previews so that the UI thread only wraps finished buffers in QImages. A picture
is a per-pixel class map (0 outside, 1 fill, 2 outline) plus a two-colour palette:
the canvas shows it as an indexed QImage, so no RGBA array is ever built in Python.
Masks are (H, W) bool in the image frame; boxes are XYXY pixel indices, end-exclusive.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np


@dataclass(eq=False)
class MaskPicture:
    """A picture of a mask, cropped to the mask's box (plus one pixel).

    classes: (h, w) uint8, C-contiguous: 0 outside, 1 fill, 2 outline.
    fill / edge: RGBA 0-255 colours of classes 1 and 2. origin: (x0, y0) of the crop
    in image pixels. An empty mask gives a 0x0 picture at (0, 0). `qimage` may hold
    the finished QImage, made by whichever thread rendered the picture.
    """

    classes: np.ndarray
    origin: tuple[int, int]
    fill: tuple[int, int, int, int] = (30, 144, 255, 110)
    edge: tuple[int, int, int, int] = (30, 144, 255, 255)
    qimage: Any = None
    scale: int = 1  # image pixels per picture pixel (2+ for a quick draft of a big mask)

    @property
    def is_empty(self) -> bool:
        return self.classes.size == 0

    @property
    def rgba(self) -> np.ndarray:
        """(h, w, 4) uint8 straight-alpha RGBA (for tests and screenshots)."""
        table = np.zeros((3, 4), np.uint8)
        table[1], table[2] = self.fill, self.edge
        return np.take(table, self.classes, axis=0)


DEFAULT_OPACITY = 35  # percent: the fill of a saved mask that is not selected
SELECTED_EXTRA_ALPHA = 60  # the selected mask's fill is this much more opaque


@dataclass(frozen=True)
class OverlayStyle:
    """How saved masks are drawn (View menu): the fill's opacity in percent (0-100;
    outlines stay opaque) and whether only the outlines are drawn."""

    opacity: int = DEFAULT_OPACITY
    outlines_only: bool = False

    def fill_alpha(self, selected: bool) -> int:
        """Alpha 0-255 of the fill: 0 with outlines only, more for the selected mask."""
        if self.outlines_only:
            return 0
        alpha = round(255 * max(0, min(100, self.opacity)) / 100)
        return min(255, alpha + SELECTED_EXTRA_ALPHA) if selected else alpha


def with_fill_alpha(picture: MaskPicture, alpha: int) -> MaskPicture:
    """The same picture (class map shared, not copied) with another fill alpha; its
    QImage is made again from the class map, no mask is decoded."""
    return replace(picture, fill=(*picture.fill[:3], int(alpha)), qimage=None)


def stacking_order(annotation_ids: Sequence[int], selected: int | None) -> list[int]:
    """The drawing order of saved masks, bottom to top: as the store lists them (the
    newest on top), the selected one above all. Ctrl+click picks in the same order."""
    order = [i for i in annotation_ids if i != selected]
    if selected is not None and selected in annotation_ids:
        order.append(selected)
    return order


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """XYXY end-exclusive box of the True pixels of an (H, W) bool mask, or None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """(h, w) bool: the mask's pixels within `width` of a pixel outside it (4-neighbourhood)."""
    return _edge_u8(np.ascontiguousarray(mask).view(np.uint8), width) > 0


def _edge_u8(mask_u8: np.ndarray, width: int) -> np.ndarray:
    """(h, w) uint8 0/1 mask -> uint8 0/1 of its border pixels (all in OpenCV)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(
        mask_u8, kernel, iterations=max(1, width), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    return cv2.subtract(mask_u8, eroded)


def render_mask(
    mask: np.ndarray,
    color: tuple[int, int, int],
    fill_alpha: int = 110,
    outline_color: tuple[int, int, int] | None = None,
    outline_width: int = 1,
    box: tuple[int, int, int, int] | None = None,
    step: int = 1,
) -> MaskPicture:
    """A translucent fill with an opaque outline, cropped to the mask's box.

    step: draw every `step`-th pixel (a draft of a big mask, shown scaled up by `step`).

    mask: (H, W) bool, image frame. color / outline_color: RGB 0-255 (outline defaults
    to the fill colour). box: a precomputed `mask_box(mask)` to save a pass.
    Costs a few ms for a 1000x600 object (an erosion and an addition in OpenCV).
    """
    box = mask_box(mask) if box is None else box
    fill = (*color, fill_alpha)
    edge = (*(outline_color or color), 255)
    if box is None:
        return MaskPicture(np.zeros((0, 0), np.uint8), (0, 0), fill, edge)
    x0, y0, x1, y1 = box
    pad = 1
    h, w = mask.shape
    x0p, y0p, x1p, y1p = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    step = max(1, int(step))
    crop = np.ascontiguousarray(mask[y0p:y1p:step, x0p:x1p:step]).view(np.uint8)
    classes = crop.copy() if outline_width <= 0 else cv2.add(crop, _edge_u8(crop, outline_width))
    return MaskPicture(np.ascontiguousarray(classes), (x0p, y0p), fill, edge, scale=step)


def preview(
    image: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int] = (168, 120),
    color: tuple[int, int, int] = (30, 144, 255),
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """A small picture of the image around the mask, with the mask tinted and outlined.

    image: (H, W, 3) uint8 RGB; mask: (H, W) bool. size: (width, height) of the result.
    Returns (height, width, 3) uint8 RGB, the crop letterboxed to keep its aspect ratio.
    Everything after the crop is done at thumbnail size, so it costs about a millisecond.
    """
    out_w, out_h = size
    box = mask_box(mask) if box is None else box
    h, w = mask.shape
    if box is None:
        x0, y0, x1, y1 = 0, 0, w, h
    else:
        x0, y0, x1, y1 = box
        # Show some context around the object: a quarter of its size on each side.
        mx, my = max(8, (x1 - x0) // 4), max(8, (y1 - y0) // 4)
        x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    scale = min(out_w / (x1 - x0), out_h / (y1 - y0))
    step = max(1, int(0.5 / scale))  # subsample big crops before the area-average
    crop = image[y0:y1:step, x0:x1:step]
    mcrop = np.ascontiguousarray(mask[y0:y1:step, x0:x1:step]).view(np.uint8)
    tw, th = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    small = cv2.resize(np.ascontiguousarray(crop), (tw, th), interpolation=interp).astype(
        np.float32
    )
    msmall = cv2.resize(mcrop, (tw, th), interpolation=cv2.INTER_NEAREST) > 0
    tint = np.asarray(color, np.float32)
    inside = msmall[..., None]
    # Dim the background so the object stands out; tint the object a little.
    small = np.where(inside, crop_blend(small, tint), small * 0.55)
    small[outline(msmall)] = tint
    canvas = np.full((out_h, out_w, 3), 24, np.float32)
    oy, ox = (out_h - th) // 2, (out_w - tw) // 2
    canvas[oy : oy + th, ox : ox + tw] = small
    return np.ascontiguousarray(np.clip(canvas, 0, 255).astype(np.uint8))


def crop_blend(pixels: np.ndarray, tint: np.ndarray, amount: float = 0.35) -> np.ndarray:
    """(..., 3) float pixels blended toward an RGB tint by `amount`."""
    return pixels * (1.0 - amount) + tint * amount


def small_mask(
    low_res_logits: np.ndarray,
    input_size: tuple[int, int],
    image_size: int,
    out_hw: tuple[int, int],
    threshold: float = 0.0,
) -> np.ndarray:
    """A candidate's mask at a reduced size straight from its low-res logits.

    low_res_logits: (s, s) float32 in the padded model-input frame (s = 256 for SAM).
    input_size: (h, w) of the resized image inside the padded square of `image_size`.
    out_hw: (h, w) wanted. Returns (h, w) bool; for previews, not for saving.
    """
    s = low_res_logits.shape[0] / float(image_size)
    vh = max(1, int(np.ceil(input_size[0] * s)))
    vw = max(1, int(np.ceil(input_size[1] * s)))
    valid = np.ascontiguousarray(low_res_logits[:vh, :vw], dtype=np.float32)
    return cv2.resize(valid, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR) > threshold


@functools.lru_cache(maxsize=65536)  # asked for every row of every refresh
def instance_color(rgb: tuple[int, int, int], annotation_id: int) -> tuple[int, int, int]:
    """The category colour, lighter or darker per instance so neighbours stay apart."""
    import colorsys

    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    step = (annotation_id * 0.618033988749895) % 1.0  # golden-ratio spread
    v = min(1.0, max(0.35, v * (0.7 + 0.45 * step)))
    h = (h + (step - 0.5) * 0.06) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)
