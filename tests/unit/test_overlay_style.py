"""How saved masks are drawn: fill opacity / outlines only, and their stacking order
(`samstudio.ui.overlays`, no Qt)."""

from __future__ import annotations

import numpy as np

from samstudio.ui.overlays import OverlayStyle, render_mask, stacking_order, with_fill_alpha


def test_fill_alpha_follows_opacity_and_outlines_only() -> None:
    assert OverlayStyle(opacity=0).fill_alpha(False) == 0
    assert OverlayStyle(opacity=100).fill_alpha(False) == 255
    assert OverlayStyle(opacity=100).fill_alpha(True) == 255
    half = OverlayStyle(opacity=50)
    assert half.fill_alpha(False) == 128 and half.fill_alpha(True) > 128  # selected stands out
    assert OverlayStyle(opacity=170).fill_alpha(False) == 255  # out of range: clipped
    assert OverlayStyle(opacity=80, outlines_only=True).fill_alpha(True) == 0


def test_restyled_picture_shares_the_class_map_and_keeps_the_outline() -> None:
    mask = np.zeros((40, 50), bool)
    mask[10:30, 5:25] = True
    picture = render_mask(mask, (200, 30, 60), fill_alpha=90)
    picture.qimage = object()  # a QImage made in the old style
    outline = with_fill_alpha(picture, 0)
    assert outline.classes is picture.classes  # nothing decoded or drawn again
    assert outline.qimage is None  # made again in the new style
    assert outline.fill == (200, 30, 60, 0) and outline.edge == picture.edge
    rgba = outline.rgba
    assert rgba[10, 10, 3] == 0  # inside: no fill
    assert rgba[1, 1, 3] == 255  # the mask's first row and column: its outline


def test_stacking_order_is_store_order_with_the_selected_on_top() -> None:
    assert stacking_order([3, 5, 9], None) == [3, 5, 9]  # bottom to top: newest on top
    assert stacking_order([3, 5, 9], 3) == [5, 9, 3]
    assert stacking_order([3, 5, 9], 7) == [3, 5, 9]  # a selection not on this image
