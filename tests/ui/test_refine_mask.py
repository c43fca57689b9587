"""Refining a saved mask with clicks, as an annotator does it: Ctrl+click the mask,
Ctrl+E, click to correct, Enter to save (one undo step "Refine mask", same id and
category, the source "edited" as after a brush stroke), Esc or another image to cancel
(nothing saved, nothing in the history), Ctrl+Z through the refine's clicks.

The FakeSegmenter's masks are known (tests/ui/fakes.py): one point gives three squares
of half sizes 12, 30 and 60 px around it (the smallest preselected), several points the
union of 30 px squares (minus 12 px squares around exclude points), a box the box."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.fakes import square
from ui.helpers import click_image, key
from ui.test_proposal_review import rect_record

CTRL = Qt.KeyboardModifier.ControlModifier
SHAPE = (240, 320)  # (H, W) of conftest's scenes


def wait_candidates(qtbot, win, n: int) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == n, timeout=15000)


def message(win) -> str:  # noqa: ANN001
    return win.statusBar().currentMessage()


def overlay_shown(win, ann_id: int) -> bool:  # noqa: ANN001
    item = win.canvas._instances.get(ann_id)
    assert item is not None, f"mask #{ann_id} has no overlay on the canvas"
    return item.isVisible()


def record(win, ann_id: int):  # noqa: ANN001,ANN201
    return win.project.annotation(ann_id)


def accept_middle_square(qtbot, win, x: float, y: float) -> int:  # noqa: ANN001
    """Click (x, y), pick candidate 2 (the 30 px square), Enter: the new instance's id."""
    click_image(qtbot, win, x, y)
    wait_candidates(qtbot, win, 3)
    key(qtbot, win, Qt.Key.Key_2)
    key(qtbot, win, Qt.Key.Key_Return)
    return win.project.annotations(win.annotator.image_id)[-1].id


def start_refine(qtbot, win, x: float, y: float, n_candidates: int) -> None:  # noqa: ANN001
    click_image(qtbot, win, x, y, modifiers=CTRL)  # select it as a user does
    key(qtbot, win, Qt.Key.Key_E, CTRL)
    wait_candidates(qtbot, win, n_candidates)


def test_a_click_refines_the_saved_mask_in_one_undo_step(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ann = accept_middle_square(qtbot, window, 150, 120)
    saved = window.project.mask(ann)
    category = record(window, ann).category_id
    name = next(c.name for c in window.project.categories() if c.id == category)

    start_refine(qtbot, window, 150, 120, 3)
    a = window.annotator
    assert message(window) == (
        f"Refining mask #{ann} ({name}): click to correct, Enter to save, Esc to cancel"
    )
    # the stored click is back, decoded; the candidate like the saved mask is chosen
    # (the 30 px square, not the preselected best one), the saved overlay hidden
    assert a.points == [tuple(p) for p in record(window, ann).prompts["points"]]
    assert window.canvas.prompt_item_count() == 1
    assert window.candidates_panel.chosen == 1
    np.testing.assert_array_equal(a.chosen_candidate.mask, saved)
    assert window.canvas.has_candidate_overlay() and not overlay_shown(window, ann)
    first_answer = len(fake.decoded)

    click_image(qtbot, window, 200, 150)  # a correction: two points, one mask
    wait_candidates(qtbot, window, 1)
    # the chosen candidate's logits went back to the model (fake: 10 * call + index)
    assert fake.decoded[-1].mask_input[0, 0] == 10.0 * first_answer + 1
    x, y = a.points[0]
    expected = square(SHAPE, x, y, 30) | square(SHAPE, 200, 150, 30)
    np.testing.assert_array_equal(a.chosen_candidate.mask, expected)
    assert window.project.annotations(a.image_id)[-1].id == ann  # nothing saved yet
    np.testing.assert_array_equal(window.project.mask(ann), saved)

    old_prompts = record(window, ann).prompts
    a_points_before_save = list(a.points)
    key(qtbot, window, Qt.Key.Key_Return)
    anns = window.project.annotations(a.image_id)
    assert [r.id for r in anns] == [ann]  # replaced, not added
    np.testing.assert_array_equal(window.project.mask(ann), expected)
    # the refine's prompts are saved with it
    assert [tuple(p) for p in record(window, ann).prompts["points"]] == a_points_before_save
    assert record(window, ann).source == "edited" and record(window, ann).category_id == category
    assert a.refining is None and a.points == [] and a.candidates == []
    assert a.selected == ann and overlay_shown(window, ann)
    assert window.undo_action.text() == "Undo Refine mask"

    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # one step: the mask, the source, the prompts
    np.testing.assert_array_equal(window.project.mask(ann), saved)
    assert record(window, ann).source == "manual"
    assert record(window, ann).prompts == old_prompts
    assert window.undo_action.text() == "Undo Accept mask"
    key(qtbot, window, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(window.project.mask(ann), expected)

    # refined again, it starts from the refined prompts saved with it, not from the
    # first single click
    start_refine(qtbot, window, 200, 150, 1)
    assert len(a.points) == 2 and window.canvas.prompt_item_count() == 2
    np.testing.assert_array_equal(a.chosen_candidate.mask, expected)
    key(qtbot, window, Qt.Key.Key_Escape)
    np.testing.assert_array_equal(window.project.mask(ann), expected)


def test_esc_and_undo_cancel_a_refine_leaving_no_trace(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ann = accept_middle_square(qtbot, window, 150, 120)
    saved = window.project.mask(ann)
    a = window.annotator

    start_refine(qtbot, window, 150, 120, 3)
    click_image(qtbot, window, 60, 60)
    wait_candidates(qtbot, window, 1)
    key(qtbot, window, Qt.Key.Key_Escape)
    assert a.refining is None and a.points == [] and not window.canvas.has_candidate_overlay()
    assert message(window) == f"Refining mask #{ann} cancelled: the mask is unchanged."
    assert a.selected == ann and overlay_shown(window, ann)
    assert [r.id for r in window.project.annotations(a.image_id)] == [ann]
    np.testing.assert_array_equal(window.project.mask(ann), saved)
    assert record(window, ann).source == "manual"
    assert window.undo_action.text() == "Undo Accept mask"

    # Ctrl+Z steps back through the refine's clicks, then cancels it, then reaches
    # the saved changes
    key(qtbot, window, Qt.Key.Key_E, CTRL)
    wait_candidates(qtbot, window, 3)
    click_image(qtbot, window, 200, 150)
    wait_candidates(qtbot, window, 1)
    assert window.undo_action.text() == "Undo Add point"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert len(a.points) == 1 and len(window.candidates_panel.candidates) == 3
    np.testing.assert_array_equal(a.chosen_candidate.mask, saved)
    assert window.undo_action.text() == f"Undo Refine mask #{ann}"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert a.refining is None and a.points == [] and overlay_shown(window, ann)
    np.testing.assert_array_equal(window.project.mask(ann), saved)
    assert window.undo_action.text() == "Undo Accept mask"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert window.project.annotations(a.image_id) == []


def test_a_mask_without_prompts_refines_from_its_bounding_box(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    a = window.annotator
    rect = np.zeros(SHAPE, bool)
    rect[40:100, 30:110] = True  # as an import leaves it: no prompts
    ann = window.project.add_annotation(a.image_id, rect, None, "imported").id
    a.refresh_instances()

    start_refine(qtbot, window, 70, 70, 1)
    assert "from its bounding box (it has no stored prompts)" in message(window)
    assert message(window).startswith(f"Refining mask #{ann} (no category)")
    np.testing.assert_array_equal(fake.decoded[-1].box, [30, 40, 110, 100])
    assert a.points == [] and window.canvas.prompt_item_count() >= 1  # the box is drawn
    np.testing.assert_array_equal(a.chosen_candidate.mask, rect)

    click_image(qtbot, window, 70, 70, button=Qt.MouseButton.RightButton)  # exclude a hole
    qtbot.waitUntil(lambda: not a.chosen_candidate.mask[70, 70], timeout=15000)
    expected = rect & ~square(SHAPE, *a.points[0], 12)  # where the click landed
    np.testing.assert_array_equal(a.chosen_candidate.mask, expected)
    key(qtbot, window, Qt.Key.Key_Return)
    np.testing.assert_array_equal(window.project.mask(ann), expected)
    assert record(window, ann).source == "edited" and record(window, ann).category_id is None
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    np.testing.assert_array_equal(window.project.mask(ann), rect)
    assert record(window, ann).source == "imported"


@pytest.mark.parametrize(
    ("prompts", "problem"),
    [
        (None, "it has no stored prompts"),
        ({"points": [], "labels": [], "box": None}, "it has no stored prompts"),
        ({"points": [[10, 10]], "labels": [1, 0]}, "labels do not match its points"),
        ({"points": [[10, 10]], "labels": [2]}, "labels do not match its points"),
        ({"points": [[400, 10]], "labels": [1]}, "a stored point lies outside the image"),
        ({"points": [[10, "x"]], "labels": [1]}, "not points and a box"),
        ({"box": [10, 10, float("nan"), 40]}, "not finite"),
        ({"box": [50, 10, 20, 40]}, "its stored box is empty"),
    ],
)
def test_unusable_stored_prompts_fall_back_to_the_bounding_box(prompts, problem) -> None:  # noqa: ANN001
    from samstudio.ui.annotator_refine import refine_start

    start = refine_start(prompts, (30, 40, 80, 60), SHAPE)
    assert problem in start.note
    assert len(start.points) == 0 and start.box.tolist() == [30, 40, 110, 100]


def test_usable_stored_prompts_are_taken_as_they_are() -> None:
    from samstudio.ui.annotator_refine import refine_start

    stored = {"points": [[10.25, 20.5], [30, 40]], "labels": [1, 0], "box": [5, 6, 70, 80]}
    start = refine_start(dict(stored, crop_box=[0, 0, 320, 240]), (0, 0, 1, 1), SHAPE)
    assert start.note is None and start.points.tolist() == stored["points"]
    assert start.labels.tolist() == [1, 0] and start.box.tolist() == [5, 6, 70, 80]


def test_leaving_the_image_cancels_the_refine_never_a_duplicate(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    a = window.annotator
    first = a.image_id
    ann = accept_middle_square(qtbot, window, 150, 120)
    saved = window.project.mask(ann)
    start_refine(qtbot, window, 150, 120, 3)
    click_image(qtbot, window, 200, 150)
    wait_candidates(qtbot, window, 1)

    with qtbot.waitSignal(a.image_opened, timeout=15000):
        key(qtbot, window, Qt.Key.Key_N)
    assert a.refining is None
    with qtbot.waitSignal(a.image_opened, timeout=15000):
        key(qtbot, window, Qt.Key.Key_P)
    assert a.image_id == first
    # no unfinished mask comes back: Enter adds nothing
    assert a.points == [] and a.box is None and a.candidates == []
    key(qtbot, window, Qt.Key.Key_Return)
    assert [r.id for r in window.project.annotations(first)] == [ann]
    np.testing.assert_array_equal(window.project.mask(ann), saved)
    assert overlay_shown(window, ann)
    assert window.undo_action.text() == "Undo Accept mask"


def test_a_proposal_is_refined_and_then_accepted(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    a = window.annotator
    auto = window.autosegment_menu.auto
    with qtbot.waitSignal(auto.proposals_added, timeout=5000):  # as an auto-segment run
        auto.add_proposals(a.image_id, [rect_record(100, 50, 25, 25, 0.95, 0.99)])
    (prop,) = [r.id for r in window.project.annotations(a.image_id)]

    key(qtbot, window, Qt.Key.Key_J)  # the review cursor selects it
    assert a.selected == prop
    key(qtbot, window, Qt.Key.Key_E, CTRL)
    wait_candidates(qtbot, window, 3)
    assert message(window).startswith(f"Refining mask #{prop} ")
    np.testing.assert_array_equal(a.points, [(112.5, 62.5)])  # its stored grid point
    click_image(qtbot, window, 160, 62)
    wait_candidates(qtbot, window, 1)
    expected = square(SHAPE, 112.5, 62.5, 30) | square(SHAPE, *a.points[1], 30)
    key(qtbot, window, Qt.Key.Key_Return)
    np.testing.assert_array_equal(window.project.mask(prop), expected)
    assert record(window, prop).source == "proposal"  # still to be reviewed
    assert a.selected == prop

    key(qtbot, window, Qt.Key.Key_Return, CTRL)  # accept the proposal under the cursor
    assert record(window, prop).source == "auto"
    np.testing.assert_array_equal(window.project.mask(prop), expected)
