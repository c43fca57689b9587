"""Clicks stay fast while Auto-segment ▸ All images runs: the model thread runs the run
one step (one decoder batch or encoder pass) per task, and the annotator's decodes and
the current image's encode go before its next step. Checked by the order of events on
the model thread, not by timing thresholds; the proposals are those of a run without
any click."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from samstudio.inference.types import BatchPrediction, ImageEmbedding, Prediction, Prompts
from ui.conftest import open_folder
from ui.helpers import click_image, key
from ui.test_autosegment import GRID, GridSegmenter, run_dialog

BATCH_SECONDS = 0.03  # per decoder batch: 16 batches per image, 4 images


class LoggedSegmenter(GridSegmenter):
    """A slow GridSegmenter that logs, in the model thread, each decoder batch of the
    run and each decode of the annotator's prompts, in the order they end.

    `hold`: "first batch", or "second image" (its first batch): that batch waits
    (`entered` set) until the test opens `gate` (at most 30 s)."""

    def __init__(self) -> None:
        super().__init__(batch_seconds=BATCH_SECONDS)
        self.log: list[tuple[str, object]] = []
        self.log_lock = threading.Lock()
        self.hold: str | None = None
        self.entered = threading.Event()
        self.gate = threading.Event()
        self._first_features: np.ndarray | None = None

    def note(self, event: str, detail: object = None) -> None:
        with self.log_lock:
            self.log.append((event, detail))

    def events(self) -> list[str]:
        with self.log_lock:
            return [e for e, _ in self.log]

    def decode_points_batch(
        self, embedding: ImageEmbedding, points: np.ndarray, multimask: bool = True
    ) -> BatchPrediction:
        first = self._first_features is None
        if first:
            self._first_features = embedding.features
        other_image = not np.array_equal(embedding.features, self._first_features)
        if not self.entered.is_set() and (
            (self.hold == "first batch" and first) or (self.hold == "second image" and other_image)
        ):
            self.entered.set()
            self.gate.wait(30)
        out = super().decode_points_batch(embedding, points, multimask)
        self.note("batch")
        return out

    def decode(
        self, embedding: ImageEmbedding, prompts: Prompts, multimask: bool = True
    ) -> Prediction:
        out = super().decode(embedding, prompts, multimask)
        self.note("decode")
        return out


@pytest.fixture
def fake() -> LoggedSegmenter:  # replaces conftest's fake: the window loads this one
    return LoggedSegmenter()


def between(events: list[str], first: str, last: str) -> list[str]:
    """The events after the first `first` and before the first `last` that follows it."""
    start = events.index(first)
    end = events.index(last, start)
    return events[start + 1 : end]


def proposal_rows(win, image_id: int) -> list[tuple]:  # noqa: ANN001
    """What a proposal is, in the store's order: mask, box, area, scores, prompts."""
    return [
        (a.rle["counts"], tuple(a.bbox), a.area, a.predicted_iou, a.stability_score, a.prompts)
        for a in sorted(win.project.annotations(image_id), key=lambda a: a.id)
        if a.source == "proposal"
    ]


def test_a_click_and_the_next_image_do_not_wait_for_auto_segment(
    qtbot, window, image_folder, monkeypatch, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    worker, menu = window.worker, window.autosegment_menu
    # What the user does, logged in the model thread's order: the click's request is
    # posted (logged once it is), the image the user moves to is encoded.
    request_decode, open_image = worker.request_decode, worker.open_image

    def logged_request(*args, **kwargs):  # noqa: ANN002,ANN003,ANN202
        number = request_decode(*args, **kwargs)
        fake.note("click")
        return number

    def logged_open(image_id, path):  # noqa: ANN001,ANN202
        open_image(image_id, path)
        fake.note("open", image_id)

    monkeypatch.setattr(worker, "request_decode", logged_request)
    monkeypatch.setattr(worker, "open_image", logged_open)
    worker.embedding_ready.connect(
        lambda image_id, *_: fake.note("ready", image_id), Qt.ConnectionType.DirectConnection
    )
    shown: list[str] = []  # on the UI thread, in order
    window.annotator.candidates_arrived.connect(lambda: shown.append("candidates"))
    menu.auto.running_changed.connect(lambda running: running or shown.append("finished"))

    run_dialog(monkeypatch, batch=1)  # one point per batch: 16 batches per image
    menu.all_action.trigger()
    assert menu.auto.running
    qtbot.waitUntil(lambda: fake.events().count("batch") >= 3, timeout=20000)
    click_image(qtbot, window, 160, 120)
    qtbot.waitUntil(lambda: len(window.annotator.candidates) == 3, timeout=20000)
    assert menu.auto.running, "the click's candidates came only after auto-segment ended"
    shown_first = window.annotator.image_id
    key(qtbot, window, Qt.Key.Key_N)  # the next image, while auto-segment goes on
    qtbot.waitUntil(lambda: window.annotator.image_id != shown_first, timeout=20000)
    qtbot.waitUntil(lambda: not menu.auto.running, timeout=60000)
    assert not menu.auto.last_cancelled

    events = fake.events()
    # The click was decoded after at most the one batch in flight when it was posted,
    # and the run went on after it.
    assert between(events, "click", "decode").count("batch") <= 1, events
    assert events[events.index("decode") :].count("batch") > 0
    # The next image was encoded (its embedding ready) after at most one more step.
    assert "open" in events and "ready" in events[events.index("open") :]
    assert between(events, "open", "ready").count("batch") <= 1, events
    assert shown.index("candidates") < shown.index("finished")

    # The proposals are those of the same run without any click (run again: each image
    # then has both, the earlier first).
    images = [r.id for r in window.project.images()]
    with_click = {i: proposal_rows(window, i) for i in images}
    assert all(len(rows) == GRID * GRID for rows in with_click.values())
    menu.all_action.trigger()
    qtbot.waitUntil(lambda: not menu.auto.running, timeout=60000)
    for image_id in images:
        rows = proposal_rows(window, image_id)
        assert rows[GRID * GRID :] == with_click[image_id], image_id


def test_cancel_during_the_run_of_all_images_adds_nothing_more(
    qtbot, window, image_folder, monkeypatch, fake
) -> None:  # noqa: ANN001
    """Cancel while the second image's first batch runs: that batch ends, no other
    starts; the first image keeps its proposals, no other image gets any."""
    open_folder(qtbot, window, image_folder)
    menu = window.autosegment_menu
    images = [r.id for r in window.project.images()]
    fake.hold = "second image"
    run_dialog(monkeypatch, batch=1)
    menu.all_action.trigger()
    run = menu.auto.run
    cancel = run.cancel

    def logged_cancel() -> None:
        cancel()
        fake.note("cancel")

    monkeypatch.setattr(run, "cancel", logged_cancel)
    qtbot.waitUntil(fake.entered.is_set, timeout=20000)
    qtbot.waitUntil(lambda: len(proposal_rows(window, images[0])) == GRID * GRID, timeout=20000)
    assert 0 < menu.progress.bar.value() < menu.progress.bar.maximum()
    qtbot.mouseClick(menu.progress.cancel_button, Qt.MouseButton.LeftButton)
    fake.gate.set()
    qtbot.waitUntil(lambda: not menu.auto.running, timeout=20000)
    assert menu.auto.last_cancelled and not menu.progress.isVisible()
    events = fake.events()
    assert events[events.index("cancel") :].count("batch") == 1  # the one in flight
    assert all(proposal_rows(window, i) == [] for i in images[1:])
    assert len(proposal_rows(window, images[0])) == GRID * GRID


def test_a_model_loaded_during_an_image_segments_it_again(
    qtbot, window, image_folder, monkeypatch, fake
) -> None:  # noqa: ANN001
    """Another model chosen while a batch runs: it is loaded before the next step, and
    the image starts again on it (an image's proposals come from one model)."""
    open_folder(qtbot, window, image_folder)
    menu = window.autosegment_menu
    fake.hold = "first batch"
    run_dialog(monkeypatch, preset="default", batch=1)  # the full 4x4 grid: 16 batches
    menu.current_action.trigger()
    qtbot.waitUntil(fake.entered.is_set, timeout=20000)
    other = GridSegmenter()
    other._info = replace(other.info, model_id="other")
    window.load_model(lambda: other, "other")
    with qtbot.waitSignal(window.worker.model_loaded, timeout=20000):
        fake.gate.set()
    qtbot.waitUntil(lambda: not menu.auto.running, timeout=20000)
    assert not menu.auto.last_cancelled
    assert fake.events().count("batch") == 1 and other.batches == GRID * GRID
    assert len(proposal_rows(window, window.annotator.image_id)) == GRID * GRID


def test_opening_another_project_stops_the_run_and_adds_nothing_there(
    qtbot, window, image_folder, tmp_path, monkeypatch, fake
) -> None:  # noqa: ANN001
    """Found by review: a run kept going after File ▸ Open of another folder, and its
    proposals for image 1 went to image 1 of the new project."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(image_folder, other, ignore=shutil.ignore_patterns("*.samstudio*"))
    open_folder(qtbot, window, image_folder)
    menu = window.autosegment_menu
    fake.hold = "first batch"
    run_dialog(monkeypatch, batch=1)
    menu.all_action.trigger()
    qtbot.waitUntil(fake.entered.is_set, timeout=20000)
    with qtbot.waitSignal(window.annotator.image_opened, timeout=20000):
        assert window.open_path(other)  # while the run's batch is still in flight
    fake.gate.set()
    qtbot.waitUntil(lambda: not menu.auto.running, timeout=20000)
    assert menu.auto.last_cancelled
    assert Path(window.project.root) == other.resolve()
    assert all(
        a.source != "proposal"
        for r in window.project.images()
        for a in window.project.annotations(r.id)
    )
