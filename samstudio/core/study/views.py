"""The five views of one rating job (paper §G), drawn as RGB arrays (no Qt).

Top row: ``"image"`` (the image without the mask, the prompt drawn), ``"overlay"`` (the
mask in red over the image), ``"mask"`` (the mask alone, yellow on purple). Bottom row:
``"zoom_image"`` and ``"zoom_overlay"``, the same two close up around the object.
Every view carries the prompt: a blue dot with a white rim for a point, a blue line
edged in white for a box.

Frames: points (x, y) are in the image's pixel frame, pixel centres at whole numbers
(pixel (row r, column c) is centred on x=c, y=r); boxes (x0, y0, x1, y1) are pixel-edge
XYXY (x1, y1 one past the last column and row, `samstudio.core.masks.mask_to_box`), as
the study builder and `samstudio.core.study.external` write them. Drawing converts a box
to the centre frame (each side half a pixel left / up), so its lines lie on pixel edges.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

VIEW_KEYS = ("image", "overlay", "mask", "zoom_image", "zoom_overlay")

PROMPT_BLUE = (30, 80, 255)
RIM_WHITE = (255, 255, 255)
MASK_RED = (255, 0, 0)
MASK_YELLOW = (253, 231, 37)  # the two ends of viridis, as the paper's figures use
BACKGROUND_PURPLE = (68, 1, 84)
OVERLAY_ALPHA = 0.5
ZOOM_DISPLAY_SIDE = 512  # a zoomed crop smaller than this is enlarged (nearest neighbour)
MIN_ZOOM_SIDE = 32  # pixels of the image, the smallest crop the zoom shows

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def render_views(
    image: np.ndarray,
    mask: np.ndarray,
    point: Point | None = None,
    box: Box | None = None,
    zoom_margin: float = 0.5,
) -> dict[str, np.ndarray]:
    """The five views of `mask` on `image` with its prompt.

    image: (H, W, 3) uint8 RGB; mask: (H, W) bool (any dtype, nonzero = inside);
    point (x, y) in the image's pixel frame (centres), box (x0, y0, x1, y1) pixel-edge XYXY.
    zoom_margin: the zoomed crop is the box around mask and prompt, grown on every side
    by this fraction of its longer side (see `zoom_region`).

    Returns {key: (h, w, 3) uint8 RGB} for the keys of `VIEW_KEYS`: the top-row views
    are (H, W, 3) in the image's frame; the zoomed ones are the crop `zoom_region(...)`
    enlarged by `zoom_scale(...)` (a whole factor, nearest neighbour, so pixels stay
    square and visible). An empty mask gives valid views centred on the prompt.
    Raises ValueError when the shapes do not fit.
    """
    rgb, inside = _check(image, mask)
    h, w = inside.shape
    overlay = _overlay(rgb, inside)
    mask_only = np.empty_like(rgb)
    mask_only[...] = BACKGROUND_PURPLE
    mask_only[inside] = MASK_YELLOW

    x0, y0, x1, y1 = zoom_region(inside, point, box, zoom_margin)
    scale = zoom_scale((y1 - y0, x1 - x0))
    crop_rgb = _enlarge(rgb[y0:y1, x0:x1], scale)
    crop_mask = _enlarge(inside[y0:y1, x0:x1], scale)
    zoom_overlay = _overlay(crop_rgb, crop_mask)

    def to_crop(p: Point) -> Point:
        # pixel c of the crop covers enlarged pixels c*s .. c*s+s-1, centred on c*s+(s-1)/2
        return ((p[0] - x0) * scale + (scale - 1) / 2, (p[1] - y0) * scale + (scale - 1) / 2)

    crop_point = to_crop(point) if point is not None else None
    crop_box = None
    if box is not None:
        box = (box[0] - 0.5, box[1] - 0.5, box[2] - 0.5, box[3] - 0.5)  # edges -> centres
        a, b = to_crop((box[0], box[1])), to_crop((box[2], box[3]))
        crop_box = (a[0], a[1], b[0], b[1])

    views = {
        "image": rgb.copy(),
        "overlay": overlay,
        "mask": mask_only,
        "zoom_image": crop_rgb.copy(),
        "zoom_overlay": zoom_overlay,
    }
    for key, view in views.items():
        zoomed = key.startswith("zoom")
        draw_prompt(view, crop_point if zoomed else point, crop_box if zoomed else box, max(h, w))
    return views


def zoom_region(
    mask: np.ndarray, point: Point | None, box: Box | None, margin: float = 0.5
) -> tuple[int, int, int, int]:
    """The crop of the zoomed views, (x0, y0, x1, y1) in pixels, x1/y1 exclusive.

    The smallest box holding the mask's pixels, the point and the box, grown on every
    side by `margin` times its longer side, at least `MIN_ZOOM_SIDE` pixels (or the
    image) wide and high, clipped to the (H, W) image. With neither a mask nor a
    prompt, the whole image."""
    h, w = mask.shape[:2]
    xs: list[float] = []
    ys: list[float] = []
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size:
        cols = np.flatnonzero(mask.any(axis=0))
        xs += [float(cols[0]), float(cols[-1])]
        ys += [float(rows[0]), float(rows[-1])]
    if point is not None:
        xs.append(float(point[0]))
        ys.append(float(point[1]))
    if box is not None:
        xs += [float(box[0]), float(box[2])]
        ys += [float(box[1]), float(box[3])]
    if not xs:
        return 0, 0, w, h
    # as pixel edges: the pixel centred on c spans c-0.5 .. c+0.5
    left, right = min(xs) - 0.5, max(xs) + 0.5
    top, bottom = min(ys) - 0.5, max(ys) + 0.5
    grow = max(0.0, margin) * max(right - left, bottom - top)
    left, right, top, bottom = left - grow, right + grow, top - grow, bottom + grow
    (x0, x1), (y0, y1) = _span(left, right, w), _span(top, bottom, h)
    return x0, y0, x1, y1


def zoom_scale(crop_size: tuple[int, int], display_side: int = ZOOM_DISPLAY_SIDE) -> int:
    """The whole factor a crop of (h, w) pixels is enlarged by: its longer side up to
    about `display_side`, never shrunk (1 for crops already that large)."""
    longest = max(1, int(crop_size[0]), int(crop_size[1]))
    return max(1, display_side // longest)


def draw_prompt(
    view: np.ndarray, point: Point | None, box: Box | None, reference_side: int
) -> None:
    """Draw the prompt into `view` ((h, w, 3) uint8 RGB, in place): a blue dot with a
    white rim at `point`, a blue line edged in white along `box` (both in the view's
    pixel frame). Sizes follow `reference_side` (the full image's longer side), so the
    prompt looks the same in every view of one job."""
    radius = max(4.0, 0.01 * reference_side)
    rim = max(2.0, radius * 0.4)
    line = max(2, round(0.003 * reference_side))
    edge = max(1, round(line * 0.6))
    if box is not None:
        p0 = _fixed((box[0], box[1]))
        p1 = _fixed((box[2], box[3]))
        # crisp lines (no antialiasing): the box's own pixels stay pure blue and white
        cv2.rectangle(view, p0, p1, RIM_WHITE, line + 2 * edge, cv2.LINE_8, _SHIFT)
        cv2.rectangle(view, p0, p1, PROMPT_BLUE, line, cv2.LINE_8, _SHIFT)
    if point is not None:
        centre = _fixed(point)
        cv2.circle(view, centre, _fixed_len(radius + rim), RIM_WHITE, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(view, centre, _fixed_len(radius), PROMPT_BLUE, -1, cv2.LINE_AA, _SHIFT)


# --------------------------------------------------------------------------- internals

_SHIFT = 4  # OpenCV's fixed-point bits: coordinates to 1/16 pixel


def _fixed(p: Point) -> tuple[int, int]:
    return round(p[0] * (1 << _SHIFT)), round(p[1] * (1 << _SHIFT))


def _fixed_len(v: float) -> int:
    return max(1, round(v * (1 << _SHIFT)))


def _check(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"the image must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    inside = np.asarray(mask).astype(bool, copy=False)
    if inside.shape != rgb.shape[:2]:
        raise ValueError(f"the mask is {inside.shape}, its image {rgb.shape[:2]}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("the image is empty")
    return np.ascontiguousarray(rgb), inside


def _overlay(rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Red at OVERLAY_ALPHA over the mask, its outline in solid red."""
    out = rgb.copy()
    if not inside.any():
        return out
    red = np.array(MASK_RED, dtype=np.float32)
    out[inside] = (rgb[inside] * (1 - OVERLAY_ALPHA) + red * OVERLAY_ALPHA).astype(np.uint8)
    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(0.002 * max(inside.shape)))
    cv2.drawContours(out, contours, -1, MASK_RED, thickness)
    return out


def _enlarge(pixels: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return np.ascontiguousarray(pixels)
    return np.ascontiguousarray(np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1))


def _span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Whole pixels lo..hi (exclusive end), at least MIN_ZOOM_SIDE long, inside 0..size."""
    a, b = math.floor(lo + 0.5), math.ceil(hi + 0.5)
    want = min(size, max(MIN_ZOOM_SIDE, b - a))
    if b - a < want:
        grow = want - (b - a)
        a -= grow // 2
        b += grow - grow // 2
    if a < 0:
        a, b = 0, b - a
    if b > size:
        a, b = max(0, a - (b - size)), size
    return a, b
