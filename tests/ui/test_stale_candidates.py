"""Keys and results that race a new prediction or a model switch (found by review).

1. The candidates panel follows the canvas a moment after a new prediction (the canvas
   paints first). A key (1/2/3, Tab, Enter) handled in between must act on the new set,
   and the panel must show that set, with the chosen card marked, when the key acts.
   The tests press the key inside a slot of `candidates_arrived` connected after the
   window's own, i.e. after the window has deferred the panel and before it repaints:
   deterministic, whatever the delay and the machine's speed.
2. A decode running when the user switches the model finishes with the old model; its
   result must be dropped, and the new model must answer the current prompts. A
   `GatedSegmenter` holds the decode in flight while the test switches the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PySide6.QtCore import Qt

from samstudio.ui.inference_worker import MaskCandidate
from ui.conftest import open_folder
from ui.fakes import HALF_SIZES, BrokenSegmenterFactory, GatedSegmenter, square
from ui.helpers import click_image, key


def selected_card(panel) -> MaskCandidate | None:  # noqa: ANN001
    """The candidate on the card marked selected on screen (None when no card is)."""
    marked = [c for c in panel.cards if c.isVisible() and c.property("selected")]
    assert len(marked) <= 1
    return marked[0].candidate if marked else None


def on_next_arrival(annotator, action: Callable[[], None]) -> list[bool]:  # noqa: ANN001
    """Run `action` once, in the slot of the next `candidates_arrived` (after the window's
    own slot, which defers the panel). Returns a list that gets True once it ran."""
    ran: list[bool] = []

    def slot() -> None:
        if not ran:
            ran.append(True)
            action()

    annotator.candidates_arrived.connect(slot)
    return ran


def wait_panel(qtbot, win, n: int) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == n, timeout=15000)


# --------------------------------------------------------------- 1. keys before the panel
@pytest.mark.parametrize(
    ("pressed", "picked"),
    [(Qt.Key.Key_2, 1), (Qt.Key.Key_3, 2), (Qt.Key.Key_Tab, 1)],
    ids=["key 2", "key 3", "Tab"],
)
def test_a_key_pressed_before_the_panel_follows_picks_from_the_new_candidates(
    qtbot, window, image_folder, pressed, picked
) -> None:  # noqa: ANN001
    """The first click's answer: the panel was empty; key 2 (or Tab) comes right after the
    answer reached the canvas, before the panel showed it."""
    win, a = window, window.annotator
    open_folder(qtbot, win, image_folder)
    seen: dict[str, object] = {}

    def press() -> None:
        key(qtbot, win, pressed)
        seen["chosen"] = a.chosen
        seen["card"] = selected_card(win.candidates_panel)
        seen["cards"] = list(win.candidates_panel.candidates)

    ran = on_next_arrival(a, press)
    click_image(qtbot, win, 150, 120)
    qtbot.waitUntil(lambda: bool(ran), timeout=15000)
    assert seen["chosen"] == picked, "the key was lost: the panel still held the previous set"
    assert seen["cards"] == a.candidates  # the panel shows the set the key acted on
    assert seen["card"] is a.chosen_candidate  # with the picked card marked
    ((x, y),) = a.points
    h, w = a.image_rgb.shape[:2]
    key(qtbot, win, Qt.Key.Key_Return)
    (ann,) = win.project.annotations(a.image_id)
    np.testing.assert_array_equal(
        win.project.mask(ann.id), square((h, w), x, y, HALF_SIZES[picked])
    )  # the candidate the key picked


def test_enter_before_the_panel_follows_accepts_the_mask_shown_as_selected(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    win, a = window, window.annotator
    open_folder(qtbot, win, image_folder)
    click_image(qtbot, win, 150, 120)
    wait_panel(qtbot, win, 3)
    key(qtbot, win, Qt.Key.Key_3)  # the largest of the three
    assert selected_card(win.candidates_panel) is a.chosen_candidate
    shown_at_accept: list[MaskCandidate | None] = []
    real_accept = a.accept

    def accept_spy() -> int | None:
        shown_at_accept.append(selected_card(win.candidates_panel))
        return real_accept()

    a.accept = accept_spy  # type: ignore[method-assign]
    ran = on_next_arrival(a, lambda: key(qtbot, win, Qt.Key.Key_Return))
    click_image(qtbot, win, 60, 60, button=Qt.MouseButton.RightButton)  # one refined mask
    qtbot.waitUntil(lambda: bool(ran), timeout=15000)
    (ann,) = win.project.annotations(a.image_id)
    (card,) = shown_at_accept
    assert card is not None, "Enter acted while no card was shown as selected"
    np.testing.assert_array_equal(win.project.mask(ann.id), card.mask)
    assert ann.predicted_iou == np.float32(card.predicted_iou)


# ------------------------------------------------------------------ 2. a model switch
def test_a_decode_running_when_the_model_changes_is_dropped_and_the_new_model_answers(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    win, a = window, window.annotator
    old = GatedSegmenter("old", held=True)
    new = GatedSegmenter("new", held=False)
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: old, "old")
        open_folder(qtbot, win, image_folder)
        arrived: list[object] = []
        a.candidates_arrived.connect(lambda: arrived.append(a.candidate_set.prediction))
        click_image(qtbot, win, 150, 120)
        qtbot.waitUntil(old.entered.is_set, timeout=15000)  # the old model is decoding
        win.load_model(lambda: new, "new")  # the user picks another model
        old.gate.set()  # ... and the old model's decode finishes after that
        qtbot.waitUntil(lambda: bool(new.predictions) and bool(arrived), timeout=15000)
        qtbot.waitUntil(lambda: arrived[-1] in new.predictions, timeout=15000)
        assert old.predictions, "the old model's decode did not finish"
        from_old = [p for p in arrived if p in old.predictions]
        assert from_old == [], "the old model's masks were shown after the switch"
        assert a.candidate_set.prediction in new.predictions
        qtbot.waitUntil(lambda: win.candidates_panel.candidates == a.candidates, timeout=5000)
        np.testing.assert_array_equal(  # the next prompt is steered by the new model
            a.previous_logits, a.candidate_set.prediction.low_res_logits[0]
        )
    finally:
        old.gate.set()


def test_the_old_models_masks_cannot_be_accepted_once_the_new_model_is_loaded(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    win, a = window, window.annotator
    new = GatedSegmenter("new", held=True)
    try:
        open_folder(qtbot, win, image_folder)
        click_image(qtbot, win, 150, 120)
        wait_panel(qtbot, win, 3)  # the first model's answer
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: new, "new")
        qtbot.waitUntil(new.entered.is_set, timeout=15000)  # the new model is on it
        assert a.chosen_candidate is None and win.candidates_panel.candidates == []
        assert win.canvas.prompt_item_count() == 1  # the prompt stays for the new model
        key(qtbot, win, Qt.Key.Key_Return)
        assert win.project.annotations(a.image_id) == []  # nothing of the old model saved
        new.gate.set()
        wait_panel(qtbot, win, 3)
        assert a.candidate_set.prediction in new.predictions
        key(qtbot, win, Qt.Key.Key_Return)
        assert len(win.project.annotations(a.image_id)) == 1
    finally:
        new.gate.set()


def test_when_the_new_model_fails_to_load_the_old_model_answers_the_prompts(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    """A guard for the fix above: the dropped result must not leave the prompts unanswered
    when the model the user switched to cannot be loaded (the old one stays)."""
    win, a = window, window.annotator
    old = GatedSegmenter("old", held=True)
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: old, "old")
        open_folder(qtbot, win, image_folder)
        click_image(qtbot, win, 150, 120)
        qtbot.waitUntil(old.entered.is_set, timeout=15000)
        with qtbot.waitSignal(win.worker.model_failed, timeout=15000):
            win.load_model(BrokenSegmenterFactory(), "broken.pth")
            old.gate.set()
        wait_panel(qtbot, win, 3)
        assert a.candidate_set.prediction in old.predictions
        assert a.candidate_set.request == a._latest_request
        assert [t for t, _ in dialogs] == ["The model could not be loaded"]
    finally:
        old.gate.set()


def test_enter_before_the_next_answer_saves_the_prompts_the_mask_came_from(
    qtbot, window, image_folder
) -> None:  # noqa: ANN001
    """Enter pressed after a second click but before its answer saves the mask on screen
    (the first click's); the prompts saved with it are that mask's, not the new click."""
    win, a = window, window.annotator
    model = GatedSegmenter("gated", held=False)
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=15000):
            win.load_model(lambda: model, "gated")
        open_folder(qtbot, win, image_folder)
        click_image(qtbot, win, 150, 120)
        wait_panel(qtbot, win, 3)
        shown = a.chosen_candidate
        assert shown is not None
        model.gate.clear()
        model.entered.clear()
        click_image(qtbot, win, 60, 40, button=Qt.MouseButton.RightButton)
        qtbot.waitUntil(model.entered.is_set, timeout=15000)  # its answer is on the way
        assert len(a.points) == 2
        key(qtbot, win, Qt.Key.Key_Return)
        (saved,) = win.project.annotations(a.image_id)
        np.testing.assert_array_equal(win.project.mask(saved.id), shown.mask)
        assert len(saved.prompts["points"]) == 1
        assert saved.prompts["labels"] == [1]
        (x, y) = saved.prompts["points"][0]
        assert abs(x - 150) <= 1 and abs(y - 120) <= 1
    finally:
        model.gate.set()


def test_a_failed_switch_during_completion_leaves_the_candidates_finished(
    qtbot, window, image_folder, dialogs
) -> None:  # noqa: ANN001
    """Found by review: the user picks a model that fails to load while the worker is
    finishing the other candidates (previews, full-size masks); the old model stays, and
    its candidates must still be finished, not left as drafts until the next click."""
    win, a = window, window.annotator
    open_folder(qtbot, win, image_folder)
    ran = on_next_arrival(a, lambda: win.load_model(BrokenSegmenterFactory(), "broken.pth"))
    with qtbot.waitSignal(win.worker.model_failed, timeout=15000):
        click_image(qtbot, win, 150, 120)
    assert ran
    qtbot.waitUntil(
        lambda: (
            len(a.candidates) == 3
            and all(c.complete and c.preview is not None for c in a.candidates)
        ),
        timeout=15000,
    )
    qtbot.waitUntil(lambda: win.candidates_panel.candidates == a.candidates, timeout=5000)
    assert a.candidate_set.model_generation == win.worker.model_generation
