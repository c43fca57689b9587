"""Tools as a user drives them: box, brush, eraser, brush size, pan, zoom, delete, undo."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from ui.conftest import new_window, open_folder
from ui.helpers import click_image, drag_image, key, view_point


def accept_one(qtbot, win, x: float = 150, y: float = 120) -> int:  # noqa: ANN001
    click_image(qtbot, win, x, y)
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == 3, timeout=15000)
    key(qtbot, win, Qt.Key.Key_Return)
    anns = win.project.annotations(win.annotator.image_id)
    return anns[-1].id


def test_box_drag_gives_one_mask_of_the_box(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    key(qtbot, window, Qt.Key.Key_B)
    assert window.canvas.tool.name == "box"
    drag_image(qtbot, window, [(40, 30), (90, 60), (140, 100)])
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 1, timeout=15000)
    box = fake.decoded[-1].box
    assert box is not None and abs(box[0] - 40) <= 1 and abs(box[3] - 100) <= 1
    mask = window.candidates_panel.chosen_candidate.mask
    x0, y0, x1, y1 = box.astype(int)
    assert mask[y0:y1, x0:x1].all() and mask.sum() == (x1 - x0) * (y1 - y0)
    # A point added after the box is combined with it.
    key(qtbot, window, Qt.Key.Key_V)
    click_image(qtbot, window, 200, 150)
    qtbot.waitUntil(lambda: len(fake.decoded) >= 2 and fake.decoded[-1].count == 2, timeout=15000)
    assert fake.decoded[-1].box is not None and len(fake.decoded[-1].points) == 1


def test_brush_stroke_is_one_undo_step(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ann_id = accept_one(qtbot, window)
    project = window.project
    before = project.mask(ann_id)
    window.instances_panel.select(ann_id)
    assert window.annotator.selected == ann_id
    key(qtbot, window, Qt.Key.Key_R)
    window.annotator.set_brush_radius(4)
    # A stroke from far outside the instance into it, through several mouse moves.
    drag_image(qtbot, window, [(20, 20), (40, 30), (60, 40), (80, 50)])
    after = project.mask(ann_id)
    added = after & ~before
    assert added.any() and not (before & ~after).any()
    ys, xs = np.nonzero(added)
    assert xs.min() >= 20 - 5 and xs.max() <= 80 + 5 and ys.min() >= 20 - 5 and ys.max() <= 50 + 5
    assert after[30, 40] and after[40, 60]  # the path itself is painted
    # One stroke, one undo step: Ctrl+Z restores the mask exactly, Ctrl+Shift+Z repaints it.
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(project.mask(ann_id), before)
    key(
        qtbot,
        window,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    np.testing.assert_array_equal(project.mask(ann_id), after)
    # Undo twice: the stroke, then the accepted mask itself.
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert project.annotations(window.annotator.image_id) == []
    assert window.instances_panel.row_ids() == []


def test_eraser_removes_pixels(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ann_id = accept_one(qtbot, window, 150, 120)
    window.instances_panel.select(ann_id)
    key(qtbot, window, Qt.Key.Key_E)
    window.annotator.set_brush_radius(2)
    before = window.project.mask(ann_id)
    drag_image(qtbot, window, [(150, 110), (150, 130)])
    after = window.project.mask(ann_id)
    assert not (after & ~before).any() and (before & ~after).any()
    assert not after[120, 150]


def test_erasing_a_whole_instance_deletes_it_in_one_undo_step(
    qtbot, window, image_folder, tmp_path
) -> None:  # noqa: ANN001
    from pycocotools.coco import COCO

    from samstudio.ui.exchange_menu import run_export

    open_folder(qtbot, window, image_folder)
    keep = accept_one(qtbot, window, 250, 180)
    small = accept_one(qtbot, window, 150, 120)  # a 24 x 24 square (the fake's best)
    before = window.project.mask(small)
    click_image(qtbot, window, 150, 120, modifiers=Qt.KeyboardModifier.ControlModifier)
    assert window.annotator.selected == small
    key(qtbot, window, Qt.Key.Key_E)
    window.annotator.set_brush_radius(10)
    drag_image(qtbot, window, [(138, 110), (162, 110), (162, 130), (138, 130)])
    # nothing of it is left: no empty instance stays in the list or the project
    ids = [a.id for a in window.project.annotations(window.annotator.image_id)]
    assert ids == [keep] and window.instances_panel.row_ids() == [keep]
    assert window.annotator.selected is None
    out = run_export(window, "coco-rle", tmp_path / "coco.json")
    assert out is not None and [a["area"] > 0 for a in COCO(str(out)).anns.values()] == [True]
    # one Ctrl+Z brings the whole mask back
    assert window.undo_action.text() == "Undo Erase mask"
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(window.project.mask(small), before)
    assert sorted(window.instances_panel.row_ids()) == sorted([keep, small])


def test_brush_size_keys_and_cursor(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    key(qtbot, window, Qt.Key.Key_R)
    window.annotator.set_brush_radius(10)
    key(qtbot, window, Qt.Key.Key_BracketRight)
    assert window.annotator.brush_radius > 10
    bigger = window.annotator.brush_radius
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert window.annotator.brush_radius < bigger
    assert window.settings.brush_size == window.annotator.brush_radius
    # The size cursor is a circle of the brush's size in image pixels, under the mouse.
    qtbot.mouseMove(window.canvas.viewport(), view_point(window, 100, 100))
    rect = window.canvas.brush_cursor_rect()
    assert rect is not None and abs(rect.width() - 2 * window.annotator.brush_radius) < 1e-6
    assert abs(rect.center().x() - 100) <= 1.5


def test_brush_on_candidate_before_accepting(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 3, timeout=15000)
    before = window.annotator.chosen_candidate.mask.copy()
    key(qtbot, window, Qt.Key.Key_R)
    window.annotator.set_brush_radius(3)
    drag_image(qtbot, window, [(30, 30), (50, 30)])
    edited = window.annotator.chosen_candidate.mask
    assert (edited & ~before).any() and edited[30, 40]
    key(qtbot, window, Qt.Key.Key_Return)
    (ann,) = window.project.annotations(window.annotator.image_id)
    np.testing.assert_array_equal(window.project.mask(ann.id), edited)


def test_delete_and_category_change(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ann_id = accept_one(qtbot, window)
    window.add_category("cell")
    cell = next(c.id for c in window.project.categories() if c.name == "cell")
    window.instances_panel.select(ann_id)
    key(qtbot, window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.project.annotation(ann_id).category_id == cell
    window.instances_panel.select(ann_id)
    window.instances_panel.list.setFocus()
    qtbot.keyClick(window.instances_panel.list, Qt.Key.Key_Delete)
    assert window.project.annotations(window.annotator.image_id) == []
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [a.id for a in window.project.annotations(window.annotator.image_id)] == [ann_id]


def test_zoom_to_cursor_pan_fit_and_actual_size(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    canvas = window.canvas
    anchor = view_point(window, 200, 150)
    zoom = canvas.zoom
    canvas.zoom_by(4.0, QPointF(anchor))  # enough for the image to exceed the view both ways
    assert abs(canvas.zoom - 4 * zoom) < 1e-6
    under = canvas.mapToScene(anchor)
    assert abs(under.x() - 200) <= 1 and abs(under.y() - 150) <= 1  # the point stayed put
    before = canvas.mapToScene(canvas.viewport().rect().center())
    key(qtbot, window, Qt.Key.Key_H)
    drag_image(qtbot, window, [(200, 150), (180, 140)])
    after = canvas.mapToScene(canvas.viewport().rect().center())
    assert after.x() > before.x() and after.y() > before.y()
    canvas.actual_size()
    assert canvas.zoom == 1.0
    key(qtbot, window, Qt.Key.Key_F)
    w, h = canvas.image_size
    vp = canvas.viewport().rect()
    assert abs(canvas.zoom - min(vp.width() / w, vp.height() / h)) < 0.05


def test_wheel_zooms_towards_the_cursor(qtbot, window, image_folder) -> None:  # noqa: ANN001
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    open_folder(qtbot, window, image_folder)
    canvas = window.canvas
    canvas.zoom_by(3.0)  # the image now exceeds the view both ways
    anchor = view_point(window, 120, 90)
    before = canvas.zoom
    pos = QPointF(anchor)
    event = QWheelEvent(
        pos,
        QPointF(canvas.viewport().mapToGlobal(anchor)),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), event)
    assert abs(canvas.zoom - before * 1.2) < 1e-6
    under = canvas.mapToScene(anchor)
    assert abs(under.x() - 120) <= 1 and abs(under.y() - 90) <= 1


def panel_source(win, ann_id: int) -> str:  # noqa: ANN001
    """The source the instances panel shows for `ann_id` ("#7 cat · edited · 1,234 px")."""
    panel = win.instances_panel.list
    for i in range(panel.count()):
        item = panel.item(i)
        if int(item.data(Qt.ItemDataRole.UserRole)) == ann_id:
            return item.text().split(" · ")[1]
    raise AssertionError(f"instance {ann_id} is not in the panel")


def test_strokes_mark_the_source_edited_in_the_same_undo_step(
    qtbot, window, image_folder, settings, fake
) -> None:  # noqa: ANN001
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    open_folder(qtbot, window, image_folder)
    project, image_id = window.project, window.annotator.image_id
    manual = accept_one(qtbot, window, 150, 120)  # an accepted candidate is "manual"
    # An automatic mask elsewhere on the image (as auto-segment leaves an accepted one).
    auto_mask = np.zeros_like(project.mask(manual))
    auto_mask[20:60, 20:60] = True
    auto = project.add_annotation(image_id, auto_mask, None, "auto").id
    window.annotator.refresh_instances()
    assert panel_source(window, manual) == "manual" and panel_source(window, auto) == "auto"

    # Brush on the manual instance, selected with Ctrl+click as a user does.
    click_image(qtbot, window, 150, 120, modifiers=ctrl)
    assert window.annotator.selected == manual
    key(qtbot, window, Qt.Key.Key_R)
    window.annotator.set_brush_radius(4)
    before = project.mask(manual)
    drag_image(qtbot, window, [(100, 120), (130, 120), (150, 120)])
    painted = project.mask(manual)
    assert (painted & ~before).any()
    assert project.annotation(manual).source == "edited"
    assert panel_source(window, manual) == "edited"
    # One Ctrl+Z takes back both the pixels and the source; redo brings back both.
    key(qtbot, window, Qt.Key.Key_Z, ctrl)
    np.testing.assert_array_equal(project.mask(manual), before)
    assert project.annotation(manual).source == "manual"
    assert panel_source(window, manual) == "manual"
    key(qtbot, window, Qt.Key.Key_Z, ctrl | shift)
    np.testing.assert_array_equal(project.mask(manual), painted)
    assert panel_source(window, manual) == "edited"

    # The eraser on the auto instance, likewise; Ctrl+click selects with the eraser
    # in hand too (no pixel changes, no undo step).
    key(qtbot, window, Qt.Key.Key_E)
    click_image(qtbot, window, 40, 40, modifiers=ctrl)
    assert window.annotator.selected == auto
    np.testing.assert_array_equal(project.mask(auto), auto_mask)
    np.testing.assert_array_equal(project.mask(manual), painted)
    window.annotator.set_brush_radius(3)
    drag_image(qtbot, window, [(40, 10), (40, 70)])
    erased = project.mask(auto)
    assert not erased[20:60, 38:43].any() and erased[20:60, 20:30].all()
    assert panel_source(window, auto) == "edited"
    key(qtbot, window, Qt.Key.Key_Z, ctrl)
    np.testing.assert_array_equal(project.mask(auto), auto_mask)
    assert panel_source(window, auto) == "auto" and panel_source(window, manual) == "edited"
    key(qtbot, window, Qt.Key.Key_Z, ctrl | shift)
    window.shutdown()

    # The store keeps it: reopened, both are "edited" and undo still restores both.
    again = new_window(qtbot, settings, fake)
    try:
        open_folder(qtbot, again, image_folder)
        assert again.annotator.image_id == image_id
        assert panel_source(again, manual) == "edited" and panel_source(again, auto) == "edited"
        np.testing.assert_array_equal(again.project.mask(auto), erased)
        key(qtbot, again, Qt.Key.Key_Z, ctrl)  # the eraser stroke
        np.testing.assert_array_equal(again.project.mask(auto), auto_mask)
        assert panel_source(again, auto) == "auto"
        key(qtbot, again, Qt.Key.Key_Z, ctrl)  # the brush stroke
        np.testing.assert_array_equal(again.project.mask(manual), before)
        assert panel_source(again, manual) == "manual"
        key(qtbot, again, Qt.Key.Key_Z, ctrl | shift)
        np.testing.assert_array_equal(again.project.mask(manual), painted)
        assert panel_source(again, manual) == "edited"
    finally:
        again.shutdown()
