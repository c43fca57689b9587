"""Ctrl+Z while a mask is being made takes back the last click, box or brush stroke on
the candidate, never a saved mask: a misplaced click followed by Ctrl+Z, a new click and
Enter must leave every mask accepted before it in the project."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.helpers import click_image, drag_image, key

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = CTRL | Qt.KeyboardModifier.ShiftModifier


def masks_of(win) -> list[np.ndarray]:  # noqa: ANN001
    return [win.project.mask(a.id) for a in win.project.annotations(win.annotator.image_id)]


def wait_candidates(qtbot, win, n: int) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == n, timeout=15000)


def test_undo_after_a_misplaced_click_keeps_the_saved_masks(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window, 3)
    key(qtbot, window, Qt.Key.Key_Return)
    (first,) = masks_of(window)

    click_image(qtbot, window, 60, 60)  # the wrong object
    wait_candidates(qtbot, window, 3)
    assert window.undo_action.text() == "Undo Add point"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert window.annotator.points == [] and window.candidates_panel.candidates == []
    assert not window.canvas.has_candidate_overlay() and window.canvas.prompt_item_count() == 0
    assert len(masks_of(window)) == 1  # the saved mask is untouched

    click_image(qtbot, window, 250, 180)  # the right one, accepted
    wait_candidates(qtbot, window, 3)
    key(qtbot, window, Qt.Key.Key_Return)
    saved = masks_of(window)
    assert len(saved) == 2 and np.array_equal(saved[0], first)
    # with no prompts on screen, Ctrl+Z reaches the saved masks again
    assert window.undo_action.text() == "Undo Accept mask"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert len(masks_of(window)) == 1


def test_undo_and_redo_step_through_clicks_restoring_the_chosen_candidate(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window, 3)
    key(qtbot, window, Qt.Key.Key_2)  # the middle-sized square
    one_click = window.annotator.chosen_candidate.mask.copy()
    click_image(qtbot, window, 200, 150)  # a second point: one refined mask
    wait_candidates(qtbot, window, 1)
    two_clicks = window.annotator.chosen_candidate.mask.copy()
    decoded = len(fake.decoded)

    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    a = window.annotator
    assert len(a.points) == 1 and len(window.candidates_panel.candidates) == 3
    assert a.chosen == 1 and window.candidates_panel.chosen == 1
    np.testing.assert_array_equal(a.chosen_candidate.mask, one_click)
    assert window.canvas.prompt_item_count() == 1 and window.canvas.has_candidate_overlay()
    assert len(fake.decoded) == decoded  # the answer on screen before, not a new decode
    assert window.redo_action.isEnabled() and window.redo_action.text() == "Redo Add point"

    key(qtbot, window, Qt.Key.Key_Z, CTRL_SHIFT)  # the second point again
    assert len(a.points) == 2 and len(window.candidates_panel.candidates) == 1
    np.testing.assert_array_equal(a.chosen_candidate.mask, two_clicks)
    key(qtbot, window, Qt.Key.Key_Return)
    (saved,) = masks_of(window)
    np.testing.assert_array_equal(saved, two_clicks)
    assert not window.redo_action.isEnabled()


def test_a_brush_stroke_on_the_candidate_and_a_box_are_steps_too(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    key(qtbot, window, Qt.Key.Key_B)
    drag_image(qtbot, window, [(40, 30), (90, 60), (140, 100)])
    wait_candidates(qtbot, window, 1)
    boxed = window.annotator.chosen_candidate.mask.copy()
    key(qtbot, window, Qt.Key.Key_R)
    window.annotator.set_brush_radius(3)
    drag_image(qtbot, window, [(200, 30), (220, 30)])
    assert window.annotator.chosen_candidate.mask[30, 210]
    assert window.undo_action.text() == "Undo Brush stroke on the mask"

    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # the stroke
    np.testing.assert_array_equal(window.annotator.chosen_candidate.mask, boxed)
    np.testing.assert_array_equal(window.candidates_panel.chosen_candidate.mask, boxed)
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # the box
    assert window.annotator.box is None and window.annotator.candidates == []
    assert not window.undo_action.isEnabled()  # nothing saved on this image yet
    key(qtbot, window, Qt.Key.Key_Z, CTRL_SHIFT)
    np.testing.assert_array_equal(window.annotator.chosen_candidate.mask, boxed)
    # Esc forgets the steps: the next Ctrl+Z has nothing of the mask to take back
    key(qtbot, window, Qt.Key.Key_Escape)
    assert not window.undo_action.isEnabled() and not window.redo_action.isEnabled()
    assert masks_of(window) == []


def test_after_switching_models_undo_asks_the_new_model(qtbot, window, image_folder) -> None:  # noqa: ANN001
    from ui.fakes import FakeSegmenter

    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window, 3)
    click_image(qtbot, window, 200, 150)
    wait_candidates(qtbot, window, 1)
    other = FakeSegmenter(model_id="other")
    with qtbot.waitSignal(window.worker.model_loaded, timeout=15000):
        window.load_model(lambda: other, "other")
    qtbot.waitUntil(lambda: len(window.candidates_panel.candidates) == 1, timeout=15000)
    asked = len(other.decoded)

    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # the second point, answered by the new model
    wait_candidates(qtbot, window, 3)
    assert len(other.decoded) == asked + 1
    (prompts,) = other.decoded[asked:]
    assert prompts.count == 1 and prompts.mask_input is None  # no logits of the old model
    cs = window.annotator.candidate_set
    assert cs.model_generation == window.worker.model_generation
