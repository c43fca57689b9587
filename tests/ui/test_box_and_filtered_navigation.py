"""Boxes dragged beside the image and Next/Previous under a status filter (found by
review; each test failed before)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.helpers import click_image, drag_image, key


def test_a_box_dragged_beside_the_image_is_no_box_and_raises_nothing(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    key(qtbot, window, Qt.Key.Key_B)
    n = len(fake.decoded)
    with qtbot.capture_exceptions() as raised:
        drag_image(qtbot, window, [(-60, 30), (-30, 60), (-10, 100)])  # left of the image
        drag_image(qtbot, window, [(-40, 30), (0.2, 100)])  # 0.2 px of it on the image
    qtbot.wait(200)
    assert raised == [] and window.annotator.box is None and len(fake.decoded) == n
    # an ordinary box and click still work
    drag_image(qtbot, window, [(40, 30), (120, 100)])
    qtbot.waitUntil(lambda: len(fake.decoded) > n, timeout=10000)
    box = window.annotator.box
    assert box is not None and box[2] - box[0] > 70 and box[3] - box[1] > 60
    key(qtbot, window, Qt.Key.Key_V)
    with qtbot.capture_exceptions() as later:
        click_image(qtbot, window, 150, 120)
    assert later == []


def test_next_under_the_new_filter_goes_on_after_the_image_that_left_it(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ids = [r.id for r in window.project.images()]
    assert len(ids) >= 4
    panel = window.images_panel
    panel.filter.setCurrentIndex(1)  # "New"
    with qtbot.waitSignals(
        [window.annotator.image_opened, window.annotator.embedding_ready], timeout=20000
    ):
        window.open_image(ids[2])
    assert window.annotator.image_id == ids[2]
    with qtbot.waitSignal(window.annotator.candidates_arrived, timeout=15000):
        window.annotator.add_point(150, 120, True)
    key(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(window.project.annotations(ids[2])), timeout=5000)
    assert ids[2] not in panel.visible_ids()  # it is "in progress" now
    key(qtbot, window, Qt.Key.Key_N)
    assert window.annotator.image_id == ids[3]
    key(qtbot, window, Qt.Key.Key_P)
    assert window.annotator.image_id == ids[1]


def test_ctrl_click_just_left_of_the_image_selects_nothing(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    import numpy as np

    open_folder(qtbot, window, image_folder)
    image_id = window.annotator.image_id
    h, w = window.annotator.image_rgb.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[:, :20] = True  # touches column 0
    ann = window.project.add_annotation(image_id, mask, window.annotator.category_id)
    window.annotator.refresh_instances()
    window.annotator.select_at(-0.5, 10)  # half a pixel left of the image
    assert window.annotator.selected is None
    window.annotator.select_at(0.5, 10)
    assert window.annotator.selected == ann.id
