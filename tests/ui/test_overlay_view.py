"""What is drawn on top is what Ctrl+click picks; View ▸ Hide all masks (M), Outlines
only (O) and Mask opacity; the hide ticks kept per image. Checked on the canvas as a
user sees it: grabbed pixels, item stacking and visibility."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ui.conftest import new_window, open_folder
from ui.helpers import click_image, drag_image, key, view_point

CTRL = Qt.KeyboardModifier.ControlModifier
A_CENTRE, B_CENTRE = (100, 100), (140, 120)  # 60 px squares (the fake's 2nd candidate)
OVERLAP, A_ONLY, B_ONLY = (120, 110), (80, 80), (160, 140)


def accept_square(qtbot, win, x: float, y: float) -> int:  # noqa: ANN001
    """Click, choose candidate 2 (a 60 x 60 square around the click), accept."""
    click_image(qtbot, win, x, y)
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, win, Qt.Key.Key_2)
    key(qtbot, win, Qt.Key.Key_Return)
    return int(win.project.annotations(win.annotator.image_id)[-1].id)


def shown_rgb(win, x: float, y: float) -> np.ndarray:  # noqa: ANN001
    """The colour on screen at image pixel (x, y)."""
    color = win.canvas.viewport().grab().toImage().pixelColor(view_point(win, x, y))
    return np.array([color.red(), color.green(), color.blue()])


def mask_rgb(win, annotation_id: int) -> np.ndarray:  # noqa: ANN001
    """The colour the instance is drawn in (its category's, shaded per instance)."""
    from samstudio.ui.overlays import instance_color
    from samstudio.ui.project_access import hex_to_rgb

    rec = next(a for a in win.project.annotations(win.annotator.image_id) if a.id == annotation_id)
    cat = next(c for c in win.project.categories() if c.id == rec.category_id)
    return np.array(instance_color(hex_to_rgb(cat.color), annotation_id))


def view_action(win, text: str):  # noqa: ANN001,ANN201
    """The View menu's action whose text starts with `text` (submenus searched too)."""
    menus = [a.menu() for a in win.menuBar().actions() if a.text() == "&View"]
    while menus:
        menu = menus.pop()
        for act in menu.actions():
            if act.menu() is not None:
                menus.append(act.menu())
            elif act.text().startswith(text):
                return act
    raise AssertionError(f"no View menu action {text!r}")


def two_overlapping(qtbot, win, folder) -> tuple[int, int]:  # noqa: ANN001
    """Open `folder`, masks opaque (View ▸ Mask opacity ▸ 100 %), A then B over it."""
    open_folder(qtbot, win, folder)
    view_action(win, "100 %").trigger()
    return accept_square(qtbot, win, *A_CENTRE), accept_square(qtbot, win, *B_CENTRE)


def test_ctrl_click_picks_the_mask_drawn_on_top_after_brushing_the_older(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    a, b = two_overlapping(qtbot, window, image_folder)
    canvas = window.canvas
    assert canvas.drawn_instances() == [b, a]  # the newest on top
    # brush the older mask A: it is redrawn (last), selected and on top while selected
    click_image(qtbot, window, *A_ONLY, modifiers=CTRL)
    assert window.annotator.selected == a
    key(qtbot, window, Qt.Key.Key_R)
    window.annotator.set_brush_radius(4)
    drag_image(qtbot, window, [(62, 100), (64, 100)])
    assert window.project.mask(a)[100, 64]  # A grew
    assert canvas.drawn_instances() == [a, b]
    np.testing.assert_allclose(shown_rgb(window, *OVERLAP), mask_rgb(window, a), atol=3)
    # Ctrl+click again on the selected one (drawn on top): the one under it, and round
    click_image(qtbot, window, *OVERLAP, modifiers=CTRL)
    assert window.annotator.selected == b
    assert window.statusBar().currentMessage().startswith("Mask 2 of 2 here")
    click_image(qtbot, window, *OVERLAP, modifiers=CTRL)
    assert window.annotator.selected == a
    click_image(qtbot, window, *A_ONLY, modifiers=CTRL)  # only A there: A stays
    assert window.annotator.selected == a
    # let it go: B, the newer, is drawn on top again, and Ctrl+click there picks B
    key(qtbot, window, Qt.Key.Key_Escape)
    assert window.annotator.selected is None
    assert canvas.drawn_instances() == [b, a]
    assert canvas._instances[b].zValue() > canvas._instances[a].zValue()
    np.testing.assert_allclose(shown_rgb(window, *OVERLAP), mask_rgb(window, b), atol=3)
    assert np.abs(mask_rgb(window, a) - mask_rgb(window, b)).max() > 10  # told apart
    click_image(qtbot, window, *OVERLAP, modifiers=CTRL)
    assert window.annotator.selected == b
    # a mask hidden in the Instances panel is not drawn, so not picked: A is found below
    window.instances_panel.list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert b in window.annotator.hidden
    click_image(qtbot, window, *OVERLAP, modifiers=CTRL)
    assert window.annotator.selected == a


def test_hide_all_masks_key_keeps_the_mask_being_made(qtbot, window, image_folder) -> None:  # noqa: ANN001
    a, b = two_overlapping(qtbot, window, image_folder)
    background = shown_rgb(window, 250, 60)  # no mask there
    key(qtbot, window, Qt.Key.Key_M)
    hide = view_action(window, "Hide all masks")
    assert hide.isChecked() and "M" in hide.shortcut().toString()
    assert not window.canvas._instances[a].isVisible()
    assert not window.canvas._instances[b].isVisible()
    assert window.canvas.drawn_instances() == []
    assert "hidden" in window.statusBar().currentMessage()
    # the picture underneath shows: no mask colour at B
    assert np.abs(shown_rgb(window, *B_ONLY) - mask_rgb(window, b)).max() > 20
    # nothing drawn, nothing picked; the status bar says why
    click_image(qtbot, window, *B_ONLY, modifiers=CTRL)
    assert window.annotator.selected is None
    assert "hidden" in window.statusBar().currentMessage()
    # the mask being made shows, over the hidden masks, in its own colour
    click_image(qtbot, window, 250, 60)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    assert window.canvas._candidate is not None and window.canvas._candidate.isVisible()
    assert np.abs(shown_rgb(window, 250, 60) - background).max() > 20
    # M again: every mask is back, ticks kept
    key(qtbot, window, Qt.Key.Key_M)
    assert not hide.isChecked()
    assert window.canvas.drawn_instances() == [b, a]


def test_outlines_only_and_opacity_redraw_without_decoding_and_are_kept(
    qtbot, window, image_folder, settings, fake, monkeypatch
) -> None:  # noqa: ANN001
    import samstudio.core.masks as masks

    a, b = two_overlapping(qtbot, window, image_folder)
    inside = (150, 140)  # B's inside, away from its outline
    np.testing.assert_allclose(shown_rgb(window, *inside), mask_rgb(window, b), atol=3)
    decoded: list[object] = []
    real = masks.decode_rle
    monkeypatch.setattr(masks, "decode_rle", lambda rle: decoded.append(rle) or real(rle))
    key(qtbot, window, Qt.Key.Key_O)
    assert view_action(window, "Outlines only").isChecked()
    # the fill is gone, the outline stays
    assert np.abs(shown_rgb(window, *inside) - mask_rgb(window, b)).max() > 20
    edge = int(np.flatnonzero(window.project.mask(b)[140]).max())  # B's right edge
    np.testing.assert_allclose(shown_rgb(window, edge + 0.5, 140.5), mask_rgb(window, b), atol=3)
    key(qtbot, window, Qt.Key.Key_O)
    view_action(window, "35 %").trigger()
    half = shown_rgb(window, *inside)
    assert np.abs(half - mask_rgb(window, b)).max() > 10  # see-through now
    assert window.overlay_menu.opacity_menu.title() == "Mask opacity (35 %)"
    assert decoded == []  # re-coloured, not decoded again
    assert settings.mask_opacity == 35 and not settings.outlines_only
    key(qtbot, window, Qt.Key.Key_O)
    # kept for the next start
    again = new_window(qtbot, settings, fake)
    try:
        assert view_action(again, "Outlines only").isChecked()
        assert view_action(again, "35 %").isChecked()
        assert again.annotator.overlay_style.outlines_only
    finally:
        again.shutdown()


def test_hidden_ticks_are_kept_per_image(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    a = accept_square(qtbot, window, *A_CENTRE)
    window.instances_panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    first = window.annotator.image_id
    with qtbot.waitSignal(window.annotator.image_opened, timeout=15000):
        key(qtbot, window, Qt.Key.Key_N)
    assert window.annotator.hidden == set()  # another image, its own ticks
    with qtbot.waitSignal(window.annotator.image_opened, timeout=15000):
        key(qtbot, window, Qt.Key.Key_P)
    assert window.annotator.image_id == first
    qtbot.waitUntil(lambda: a in window.canvas.instance_ids(), timeout=15000)
    assert window.instances_panel.list.item(0).checkState() == Qt.CheckState.Unchecked
    assert not window.canvas._instances[a].isVisible()
    assert window.canvas.drawn_instances() == []


def test_the_mask_being_made_is_edged_unlike_any_saved_mask(qtbot, window, image_folder) -> None:  # noqa: ANN001
    """Found by review: the candidate was drawn like a saved mask of its category (fill
    in the category colour, a thin white edge like the selected one's)."""
    from samstudio.ui.mask_candidates import CANDIDATE_EDGE

    a, _ = two_overlapping(qtbot, window, image_folder)
    click_image(qtbot, window, *A_ONLY, modifiers=CTRL)  # a selected saved mask: white edge
    click_image(qtbot, window, 250, 200)  # and a new mask being made
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    edge = window.annotator.chosen_candidate.picture.edge[:3]
    assert tuple(edge) == CANDIDATE_EDGE
    saved = {tuple(pic.edge[:3]) for _key, pic in window.annotator._pictures.values()}
    saved |= {(255, 255, 255)}  # the selected one's
    assert tuple(edge) not in saved
