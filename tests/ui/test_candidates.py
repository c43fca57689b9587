"""Click, three candidates, pick by key, accept: the core loop of the annotator."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import Qt

from ui.conftest import open_folder
from ui.fakes import HALF_SIZES, square
from ui.helpers import click_image, key


def wait_candidates(qtbot, win, n: int = 3) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: len(win.candidates_panel.candidates) == n, timeout=15000)


def test_click_shows_three_candidates_best_preselected(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 100, 80)
    wait_candidates(qtbot, window)
    panel = window.candidates_panel
    assert panel.chosen == 0
    assert [c.predicted_iou for c in panel.candidates] == sorted(
        (c.predicted_iou for c in panel.candidates), reverse=True
    )
    assert all(card.isVisible() for card in panel.cards)
    # The other two are completed by the worker right after: full masks and previews.
    qtbot.waitUntil(
        lambda: all(c.complete and c.preview is not None for c in panel.candidates), timeout=15000
    )
    assert all(not card.preview.pixmap().isNull() for card in panel.cards)
    assert [c.area for c in panel.candidates] == [int(c.mask.sum()) for c in panel.candidates]
    assert "0.930" in panel.cards[0].iou_bar.label + f"{panel.cards[0].iou_bar.value:.3f}"
    assert window.canvas.has_candidate_overlay()
    # The prompt is drawn as one green point.
    assert window.canvas.prompt_item_count() == 1
    # The click reached the model in image pixels (within the view's rounding).
    ((x, y),) = fake.decoded[-1].points
    assert abs(x - 100) <= 1 and abs(y - 80) <= 1 and list(fake.decoded[-1].labels) == [1]
    h, w = window.annotator.image_rgb.shape[:2]
    np.testing.assert_array_equal(panel.chosen_candidate.mask, square((h, w), x, y, HALF_SIZES[0]))


def test_keys_pick_and_accept_creates_instance(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window)
    key(qtbot, window, Qt.Key.Key_3)
    assert window.candidates_panel.chosen == 2
    key(qtbot, window, Qt.Key.Key_Tab)
    assert window.candidates_panel.chosen == 0  # wraps around
    key(qtbot, window, Qt.Key.Key_2)
    assert window.candidates_panel.chosen == 1
    chosen_mask = window.candidates_panel.chosen_candidate.mask.copy()
    key(qtbot, window, Qt.Key.Key_Return)
    project, image_id = window.project, window.annotator.image_id
    anns = project.annotations(image_id)
    assert len(anns) == 1
    np.testing.assert_array_equal(project.mask(anns[0].id), chosen_mask)
    assert anns[0].predicted_iou == np.float32(0.81)
    # Prompts and candidates are cleared; the instance is listed.
    assert window.annotator.points == [] and window.candidates_panel.candidates == []
    assert window.instances_panel.row_ids() == [anns[0].id]


def test_second_click_feeds_chosen_logits_back(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    """§A loop: the next decode gets all points and the chosen candidate's low-res logits."""
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window)
    key(qtbot, window, Qt.Key.Key_2)
    chosen_logits = window.candidates_panel.chosen_candidate.low_res_logits.copy()
    click_image(qtbot, window, 60, 60, button=Qt.MouseButton.RightButton)
    wait_candidates(qtbot, window, n=1)
    last = fake.decoded[-1]
    assert last.points.shape == (2, 2) and list(last.labels) == [1, 0]
    np.testing.assert_array_equal(last.mask_input, chosen_logits)
    assert window.canvas.prompt_item_count() == 2


def test_escape_clears_prompts(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window)
    key(qtbot, window, Qt.Key.Key_Escape)
    assert window.annotator.points == []
    assert window.annotator.previous_logits is None
    assert window.candidates_panel.candidates == []
    assert not window.canvas.has_candidate_overlay()
    assert window.canvas.prompt_item_count() == 0


def test_hovering_a_card_previews_it_on_the_canvas(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    click_image(qtbot, window, 150, 120)
    wait_candidates(qtbot, window)
    panel = window.candidates_panel
    shown = lambda: window.canvas._candidate.boundingRect().width()  # noqa: E731
    chosen_width = shown()
    panel.cards[2].hovered.emit(2)  # what entering the card does
    assert shown() > chosen_width  # the largest candidate is on the canvas
    assert panel.chosen == 0  # but not chosen
    panel.cards[2].hovered.emit(-1)
    assert shown() == chosen_width


def test_the_window_shows_the_draft_without_redrawing_it(
    qtbot, window, image_folder, monkeypatch
) -> None:  # noqa: ANN001
    """The UI thread shows the worker's draft of a big mask as it is (redrawing it at full
    resolution there would delay the first paint); the full overlay follows."""
    import samstudio.ui.mask_candidates as candidates_module
    import samstudio.ui.worker_runs as runs_module

    monkeypatch.setattr(candidates_module, "DRAFT_PIXELS", 500)  # the 120 px square is "big"
    drawn_in_ui: list[bool] = []
    real = candidates_module.complete_candidate

    def spy(*args, **kwargs):  # noqa: ANN002,ANN003,ANN202
        drawn_in_ui.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(candidates_module, "complete_candidate", spy)  # the annotator's
    monkeypatch.setattr(runs_module, "complete_candidate", spy)  # the worker's
    open_folder(qtbot, window, image_folder)
    at_arrival: list[tuple[int, float]] = []
    window.annotator.candidates_arrived.connect(
        lambda: at_arrival.append(
            (window.annotator.chosen_candidate.picture.scale, window.canvas._candidate.scale())
        )
    )
    click_image(qtbot, window, 150, 120)
    qtbot.waitUntil(lambda: bool(at_arrival), timeout=15000)
    picture_scale, item_scale = at_arrival[0]
    assert picture_scale >= 2 and item_scale == picture_scale  # the draft is on the canvas
    qtbot.waitUntil(lambda: all(c.complete for c in window.annotator.candidates), timeout=15000)
    assert window.canvas._candidate.scale() == 1  # replaced by the full-resolution overlay
    assert drawn_in_ui and not any(drawn_in_ui)  # every overlay was drawn by the worker


def test_big_masks_paint_a_draft_first_then_full_resolution() -> None:
    """The first paint of a big candidate uses a coarser overlay; completion replaces it."""
    from samstudio.ui.inference_worker import MaskCandidate, complete_candidate
    from ui.fakes import FakePrediction

    mask = np.zeros((1500, 2250), bool)
    mask[100:1400, 200:2100] = True
    pred = FakePrediction(
        low_res_logits=np.zeros((1, 256, 256), np.float32),
        iou_predictions=np.ones(1, np.float32),
        stability_scores=np.ones(1, np.float32),
        original_size=(1500, 2250),
        input_size=(683, 1024),
        image_size=1024,
        exact=mask[None],
    )
    bare = MaskCandidate(0, None, None, 1.0, 1.0, pred.low_res_logits[0], None, None, 0)
    draft = complete_candidate(bare, pred, (255, 0, 0), draft=True)
    assert draft.picture.scale >= 2 and not draft.complete
    assert draft.area == int(mask.sum())  # the mask itself is exact already
    h, w = draft.picture.classes.shape
    assert abs(h * draft.picture.scale - 1302) <= draft.picture.scale
    full = complete_candidate(draft, pred, (255, 0, 0))
    assert full.picture.scale == 1 and full.complete
    np.testing.assert_array_equal(full.picture.classes > 0, mask[99:1401, 199:2101])
