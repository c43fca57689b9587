"""A mask being made when the user goes to another image (N / P, a click in the image
list) is kept for the session and is back, with its undo steps, when they return."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ui.conftest import make_scene, open_folder, replace_picture
from ui.fakes import FakeSegmenter
from ui.helpers import click_image, drag_image, key

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = CTRL | Qt.KeyboardModifier.ShiftModifier


def wait_candidates(qtbot, win, n: int) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == n, timeout=15000)


def go(qtbot, win, k: Qt.Key) -> None:  # noqa: ANN001
    with qtbot.waitSignals(
        [win.annotator.image_opened, win.annotator.embedding_ready], timeout=20000
    ):
        key(qtbot, win, k)


def click_in_list(qtbot, win, image_id: int) -> None:  # noqa: ANN001
    """Click the image's row in the image list, and wait until it is on screen."""
    tree = win.images_panel.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if int(item.data(0, Qt.ItemDataRole.UserRole)) == image_id:
            with qtbot.waitSignals(
                [win.annotator.image_opened, win.annotator.embedding_ready], timeout=20000
            ):
                qtbot.mouseClick(
                    tree.viewport(),
                    Qt.MouseButton.LeftButton,
                    pos=tree.visualItemRect(item).center(),
                )
            return
    raise AssertionError(f"image {image_id} is not listed")


def test_an_unfinished_mask_is_kept_when_leaving_and_back_on_return(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    first = window.annotator.image_id
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window, 3)
    key(qtbot, window, Qt.Key.Key_2)
    one_click = window.annotator.chosen_candidate.mask.copy()
    click_image(qtbot, window, 200, 150)
    wait_candidates(qtbot, window, 1)
    two_clicks = window.annotator.chosen_candidate.mask.copy()
    decoded = len(fake.decoded)

    go(qtbot, window, Qt.Key.Key_N)
    assert window.statusBar().currentMessage() == (
        "Unfinished mask kept for scene_0.png; come back to finish it, Esc to drop"
    )
    # the next image starts clean: nothing of the other image's mask shows or undoes
    a = window.annotator
    assert a.points == [] and window.candidates_panel.candidates == []
    assert window.canvas.prompt_item_count() == 0 and not window.canvas.has_candidate_overlay()
    assert not window.undo_action.isEnabled()

    go(qtbot, window, Qt.Key.Key_P)
    assert a.image_id == first
    assert "Unfinished mask restored" in window.statusBar().currentMessage()
    assert len(a.points) == 2 and window.canvas.prompt_item_count() == 2
    assert len(window.candidates_panel.candidates) == 1 and window.canvas.has_candidate_overlay()
    np.testing.assert_array_equal(a.chosen_candidate.mask, two_clicks)
    assert len(fake.decoded) == decoded  # same model, same picture: the answer as it was

    # its undo steps came back with it
    assert window.undo_action.text() == "Undo Add point"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert len(a.points) == 1 and len(window.candidates_panel.candidates) == 3
    assert a.chosen == 1 and window.candidates_panel.chosen == 1
    np.testing.assert_array_equal(a.chosen_candidate.mask, one_click)
    key(qtbot, window, Qt.Key.Key_Z, CTRL_SHIFT)
    np.testing.assert_array_equal(a.chosen_candidate.mask, two_clicks)
    key(qtbot, window, Qt.Key.Key_Return)
    (saved,) = window.project.annotations(first)
    np.testing.assert_array_equal(window.project.mask(saved.id), two_clicks)

    # accepted: nothing is kept for it any more
    go(qtbot, window, Qt.Key.Key_N)
    assert "Unfinished mask kept" not in window.statusBar().currentMessage()
    go(qtbot, window, Qt.Key.Key_P)
    assert a.points == [] and window.candidates_panel.candidates == []


def test_esc_drops_it_and_the_image_list_keeps_it_too(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ids = [r.id for r in window.project.images()]
    key(qtbot, window, Qt.Key.Key_B)
    drag_image(qtbot, window, [(40, 30), (90, 60), (140, 100)])
    wait_candidates(qtbot, window, 1)
    click_in_list(qtbot, window, ids[2])
    assert "Unfinished mask kept for scene_0.png" in window.statusBar().currentMessage()
    click_in_list(qtbot, window, ids[0])
    a = window.annotator
    assert a.box is not None and len(window.candidates_panel.candidates) == 1
    key(qtbot, window, Qt.Key.Key_Escape)  # dropped for good
    assert a.box is None and window.candidates_panel.candidates == []
    click_in_list(qtbot, window, ids[1])
    assert "Unfinished mask kept" not in window.statusBar().currentMessage()
    click_in_list(qtbot, window, ids[0])
    assert a.box is None and window.candidates_panel.candidates == []
    assert window.canvas.prompt_item_count() == 0


def test_another_model_answers_the_kept_prompts_again(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window, 3)
    go(qtbot, window, Qt.Key.Key_N)
    other = FakeSegmenter(model_id="other")
    with qtbot.waitSignal(window.worker.model_loaded, timeout=15000):
        window.load_model(lambda: other, "other")
    qtbot.waitUntil(lambda: window.annotator.embedding_is_ready, timeout=15000)
    go(qtbot, window, Qt.Key.Key_P)
    wait_candidates(qtbot, window, 3)
    (prompts,) = other.decoded
    assert prompts.count == 1 and prompts.mask_input is None
    assert window.annotator.candidate_set.model_generation == window.worker.model_generation


def test_a_picture_changed_meanwhile_gets_its_prompts_answered_again(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window, 3)
    go(qtbot, window, Qt.Key.Key_N)
    replace_picture(image_folder / "scene_0.png", make_scene(50))  # retouched, same size
    decoded = len(fake.decoded)
    go(qtbot, window, Qt.Key.Key_P)
    wait_candidates(qtbot, window, 3)
    assert len(fake.decoded) == decoded + 1  # not the old picture's answer
    assert len(window.annotator.points) == 1

    # another size: the points mean nothing on the new picture, the kept mask goes
    go(qtbot, window, Qt.Key.Key_N)
    replace_picture(image_folder / "scene_0.png", make_scene(51, size=(300, 400)))
    go(qtbot, window, Qt.Key.Key_P)
    assert window.annotator.points == [] and window.candidates_panel.candidates == []
