"""The five views of a rating job (paper §G), drawn without Qt."""

from __future__ import annotations

import numpy as np
import pytest

from samstudio.core.study.views import (
    BACKGROUND_PURPLE,
    MASK_YELLOW,
    PROMPT_BLUE,
    VIEW_KEYS,
    render_views,
    zoom_region,
    zoom_scale,
)

H, W = 300, 400


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A grey image with a green 30x40 rectangle at rows 100..129, columns 200..239,
    and the mask of that rectangle."""
    image = np.full((H, W, 3), 128, np.uint8)
    image[100:130, 200:240] = (0, 200, 0)
    mask = np.zeros((H, W), bool)
    mask[100:130, 200:240] = True
    return image, mask


def test_shapes_and_keys() -> None:
    image, mask = scene()
    views = render_views(image, mask, point=(220, 115))
    assert tuple(views) == VIEW_KEYS
    for key in ("image", "overlay", "mask"):
        assert views[key].shape == (H, W, 3) and views[key].dtype == np.uint8
    x0, y0, x1, y1 = zoom_region(mask, (220, 115), None)
    s = zoom_scale((y1 - y0, x1 - x0))
    assert s > 1  # a small object is enlarged for display
    for key in ("zoom_image", "zoom_overlay"):
        assert views[key].shape == ((y1 - y0) * s, (x1 - x0) * s, 3)
        assert views[key].dtype == np.uint8
    assert not np.shares_memory(views["image"], image)
    assert (image[100:130, 200:240] == (0, 200, 0)).all()  # the input is not drawn on


def test_overlay_is_red_on_the_mask_only() -> None:
    image, mask = scene()
    views = render_views(image, mask, box=(195, 95, 244, 134))
    overlay = views["overlay"].astype(int)
    inner = overlay[105:125, 205:235]  # inside the mask, away from outline and box
    # half red over the green object: red up from 0 to ~127, green halved
    assert (inner[..., 0] >= 120).all() and (inner[..., 1] <= 105).all()
    assert (inner[..., 2] <= 5).all()
    outside = overlay[10:60, 10:60]
    assert (outside == 128).all()  # untouched away from mask and prompt
    assert (views["image"][105:125, 205:235] == (0, 200, 0)).all()  # no mask in view 1
    # the outline: the mask's border pixels are solid red
    assert tuple(views["overlay"][115, 200]) == (255, 0, 0)


def test_mask_view_is_yellow_on_purple() -> None:
    image, mask = scene()
    views = render_views(image, mask, point=(220, 115))
    view = views["mask"]
    assert tuple(view[105, 205]) == MASK_YELLOW
    assert tuple(view[20, 20]) == BACKGROUND_PURPLE
    assert (view[~mask][:1000] == BACKGROUND_PURPLE).all()


def test_blue_point_with_white_rim_in_every_view() -> None:
    image, mask = scene()
    point = (150.0, 60.0)  # outside the object, on the grey background
    views = render_views(image, mask, point=point)
    for key in ("image", "overlay", "mask"):
        assert tuple(views[key][60, 150]) == PROMPT_BLUE, key
    # a white rim around the blue dot
    row = views["image"][60, 130:150]
    assert (row >= 240).all(axis=1).any()
    # in the zoomed views, the dot sits where the point maps to
    x0, y0, x1, y1 = zoom_region(mask, point, None)
    s = zoom_scale((y1 - y0, x1 - x0))
    zx, zy = int((point[0] - x0) * s + (s - 1) / 2), int((point[1] - y0) * s + (s - 1) / 2)
    for key in ("zoom_image", "zoom_overlay"):
        assert tuple(views[key][zy, zx]) == PROMPT_BLUE, key


def test_box_is_blue_and_white() -> None:
    image, mask = scene()
    views = render_views(image, mask, box=(190, 90, 250, 140))
    edge = views["image"][90, 200:240]  # along the top side
    assert (edge == PROMPT_BLUE).all(axis=1).any()
    near = views["image"][86:95, 220]  # across it: white around the blue line
    assert (near == 255).all(axis=1).any()
    assert tuple(views["image"][115, 220]) == (0, 200, 0)  # the inside is not filled


def test_zoom_contains_the_object_and_the_prompt() -> None:
    image, mask = scene()
    point = (150.0, 60.0)
    x0, y0, x1, y1 = zoom_region(mask, point, None, margin=0.5)
    assert x0 <= 150 and y0 <= 60 and x1 > 239 and y1 > 129
    assert (x0, y0) != (0, 0) or (x1, y1) != (W, H)  # a crop, not the whole image
    views = render_views(image, mask, point=point)
    s = zoom_scale((y1 - y0, x1 - x0))
    zoom = views["zoom_image"]
    green = (zoom == (0, 200, 0)).all(axis=2).sum()
    assert green == 30 * 40 * s * s  # every pixel of the object, enlarged s x s
    redder = views["zoom_overlay"][..., 0].astype(int) - zoom[..., 0]
    assert (redder > 100).sum() >= 0.9 * green  # the mask is red in the zoomed overlay
    assert (redder > 100).sum() <= 1.1 * green  # and only the mask


def test_zoom_margin_grows_the_crop() -> None:
    _, mask = scene()
    tight = zoom_region(mask, None, None, margin=0.0)
    wide = zoom_region(mask, None, None, margin=1.0)
    assert tight == (200, 99, 240, 131)  # 40 x 30, grown to the smallest crop (32)
    assert wide[0] < tight[0] and wide[2] > tight[2]


def test_empty_mask_is_centred_on_the_prompt() -> None:
    image, _ = scene()
    empty = np.zeros((H, W), bool)
    views = render_views(image, empty, point=(50, 250))
    assert all(v.size and v.dtype == np.uint8 for v in views.values())
    assert (views["overlay"] == views["image"]).all()  # nothing red drawn
    assert tuple(views["mask"][10, 10]) == BACKGROUND_PURPLE
    x0, y0, x1, y1 = zoom_region(empty, (50, 250), None)
    assert x0 <= 50 < x1 and y0 <= 250 < y1
    assert x1 - x0 < W and y1 - y0 < H
    assert abs((x0 + x1) / 2 - 50.5) <= 1 and abs((y0 + y1) / 2 - 250.5) <= 1
    # empty mask and no prompt: the whole image
    assert zoom_region(empty, None, None) == (0, 0, W, H)
    assert render_views(image, empty)["zoom_image"].shape[:2] == (H, W)


def test_prompt_at_the_corner_keeps_the_crop_inside() -> None:
    image, mask = scene()
    x0, y0, x1, y1 = zoom_region(mask, (0, 0), None)
    assert (x0, y0) == (0, 0) and x1 <= W and y1 <= H
    views = render_views(image, mask, point=(W - 1, H - 1))
    assert tuple(views["image"][H - 1, W - 1]) == PROMPT_BLUE


def test_bad_shapes_are_refused() -> None:
    image, mask = scene()
    with pytest.raises(ValueError, match="mask"):
        render_views(image, mask[:-1])
    with pytest.raises(ValueError, match="uint8"):
        render_views(image.astype(np.float32), mask)


def test_a_tight_box_is_drawn_on_the_mask_edges_in_the_zoom() -> None:
    # a box is pixel-edge XYXY (x1, y1 one past the last pixel, `mask_to_box`): the
    # enlarged zoom must show its lines on the object's outer edges, the same on every
    # side, not half a source pixel to the right and down
    image, mask = scene()
    box = (200.0, 100.0, 240.0, 130.0)  # mask_to_box of the rectangle
    x0, y0, x1, y1 = zoom_region(mask, None, box)
    s = zoom_scale((y1 - y0, x1 - x0))
    assert s >= 4
    zoom = render_views(image, mask, box=box)["zoom_image"]
    row = (zoom[(115 - y0) * s] == PROMPT_BLUE).all(axis=1)  # across the middle
    blue = np.flatnonzero(row)
    mid = (240 - x0) * s // 2 + (200 - x0) * s // 2
    left, right = blue[blue < mid], blue[blue >= mid]
    # the line centres sit on the edges: left of column 200, right of column 239
    assert abs(left.mean() - ((200 - x0) * s - 0.5)) <= 1.0
    assert abs(right.mean() - ((240 - x0) * s - 0.5)) <= 1.0
