"""Inspect ▸ Evaluate the model on this project's masks…: the §D.1 point evaluation of the
loaded model (a FakeSegmenter; the shipped demo model for the embedding cache), run on the
window's inference worker, with the project's accepted masks as the ground truth."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from samstudio.core import point_eval
from samstudio.inference.cache import image_content_hash
from samstudio.ui.evaluate_project import (
    MODEL_CHANGED,
    NO_MASKS,
    NO_MODEL,
    NO_PROJECT,
    EvaluateProjectDialog,
)
from samstudio.ui.image_io import load_rgb
from ui.conftest import open_folder
from ui.fakes import FakeSegmenter
from ui.helpers import click_image

H, W = 240, 320  # conftest.make_scene's images
TIMEOUT = 30000
DEFAULTS = point_eval.DEFAULT_POINTS


def rectangle(x: int, y: int, w: int, h: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y : y + h, x : x + w] = True
    return mask


def disc(cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


def add_masks(window, extra: int = 0) -> list[int]:  # noqa: ANN001
    """Accepted masks: three on the first image, one on the second (plus `extra` small
    rectangles there); one proposal on the third. Returns the image ids in order."""
    project = window.project
    ids = [r.id for r in project.images()]
    cat = window.annotator.category_id
    project.add_annotation(ids[0], rectangle(40, 40, 60, 50), cat)
    project.add_annotation(ids[0], disc(200, 120, 25), cat, "auto")
    project.add_annotation(ids[0], rectangle(150, 10, 150, 30), cat, "edited")
    project.add_annotation(ids[1], rectangle(0, 100, 90, 140), cat)
    for i in range(extra):
        project.add_annotation(
            ids[1], rectangle(100 + 20 * (i % 10), 10 + 20 * (i // 10), 15, 12), cat
        )
    project.add_annotations(ids[2], [rectangle(50, 50, 30, 30)], cat, "proposal")
    return ids


def ground_truth(window) -> list[tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """(image, accepted masks) of each image that has some, in project order."""
    project = window.project
    samples = []
    for record in project.images():
        masks = [project.mask(a.id) for a in project.annotations(record.id)]
        masks = [m for m, a in zip(masks, project.annotations(record.id)) if a.source != "proposal"]
        if masks:
            samples.append((load_rgb(project.image_path(record.id)), np.stack(masks)))
    return samples


def expected_report(window, points, first: str) -> point_eval.EvalReport:  # noqa: ANN001
    """The core's figures for the project's accepted masks, in project order."""
    return point_eval.evaluate(FakeSegmenter(), ground_truth(window), points, first, seed=0)


def run_to_end(qtbot, dialog: EvaluateProjectDialog, ok: bool = True) -> None:  # noqa: ANN001
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [ok]
    assert not dialog.running


def test_menu_entry_opens_the_dialog(window) -> None:  # noqa: ANN001
    menus = {a.text(): a.menu() for a in window.menuBar().actions() if a.menu()}
    texts = [a.text() for a in menus["&Inspect"].actions()]
    assert "Evaluate the model on this project's masks…" in texts
    window.inspect_menu.evaluate.action.trigger()
    dialog = window.inspect_menu.evaluate.dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    assert dialog.message_text() == NO_PROJECT  # no project open yet
    assert dialog.points.text() == "1,2,3,5,9" and dialog.max_masks.value() == 200


def test_figures_equal_the_core_evaluation(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window)
    dialog = window.inspect_menu.evaluate.open_dialog()
    assert dialog.message_text() == ""
    run_to_end(qtbot, dialog)
    result = dialog.current
    assert result is not None
    expected = expected_report(window, (1, 2, 3, 5, 9), "center")
    assert result.report.to_json() == expected.to_json()
    assert (result.report.n_masks, result.report.n_images) == (4, 2)  # the proposal is out
    assert expected.table() in dialog.table_text()
    assert "model: fake (fake)" in dialog.table_text()
    assert "1 proposal(s) not accepted yet are left out" in dialog.message_text()
    assert dialog.save_button.isEnabled()

    # Other settings: random first clicks, fewer points.
    dialog.points.setText("3, 1")
    dialog.first.setCurrentIndex(1)
    run_to_end(qtbot, dialog)
    assert dialog.current is not None
    expected = expected_report(window, (1, 3), "random")
    assert dialog.current.report.to_json() == expected.to_json()


def test_at_most_n_masks_are_drawn_with_a_fixed_seed(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window, extra=6)  # 10 accepted masks
    dialog = window.inspect_menu.evaluate.open_dialog()
    dialog.max_masks.setValue(5)
    run_to_end(qtbot, dialog)
    first = dialog.current
    assert first is not None and first.report.n_masks == 5
    assert "5 of the project's 10 accepted masks" in dialog.message_text()
    run_to_end(qtbot, dialog)  # the same masks again: the same figures
    assert dialog.current is not None
    assert dialog.current.report.to_json() == first.report.to_json()


def test_progress_advances_to_the_end(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window, extra=4)  # 8 masks on 2 images
    fake.decode_seconds = 0.005
    dialog = window.inspect_menu.evaluate.open_dialog()
    seen: list[tuple[int, int, int, int]] = []
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        run = dialog.start()
        assert run is not None and dialog.running
        assert dialog.progress_bar.isVisible() and dialog.cancel_button.isEnabled()
        run.progress.connect(lambda *args: seen.append(args))
    assert blocker.args == [True]
    masks_done = [s[2] for s in seen]
    assert masks_done == list(range(1, 9)) + [8]  # one step per mask, then the report
    assert {s[3] for s in seen} == {8} and {s[1] for s in seen} == {2}
    assert [s[0] for s in seen][-1] == 2
    assert not dialog.progress_bar.isVisible()


def test_cancel_stops_without_a_result_and_frees_the_worker(
    qtbot, window, image_folder, fake
) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window, extra=6)  # 10 masks x up to 9 decodes
    fake.decode_seconds = 0.03
    dialog = window.inspect_menu.evaluate.open_dialog()
    before = len(fake.decoded)
    run = dialog.start()
    assert run is not None
    qtbot.waitUntil(lambda: dialog.progress_bar.value() >= 1, timeout=TIMEOUT)
    assert "masks" in dialog.progress_label.text()
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [False]
    assert dialog.current is None and dialog.table_text() == ""
    assert not dialog.save_button.isEnabled() and dialog.start_button.isEnabled()
    assert "cancelled" in dialog.message_text()
    done = len(fake.decoded)
    assert done - before < 10 * 9  # it stopped early
    # The worker is free: nothing more of the evaluation runs, and a click still decodes.
    qtbot.waitUntil(lambda: window.worker.busy_with == "", timeout=TIMEOUT)
    qtbot.wait(100)
    assert len(fake.decoded) == done and not window.worker._tasks
    fake.decode_seconds = 0.0
    with qtbot.waitSignal(window.worker.prediction_ready, timeout=TIMEOUT):
        click_image(qtbot, window, 160, 120)
    assert len(fake.decoded) == done + 1
    # And a new run works after the cancel.
    run_to_end(qtbot, dialog)
    assert dialog.current is not None and dialog.current.report.n_masks == 10


def test_closing_the_dialog_cancels_the_run(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window, extra=6)
    fake.decode_seconds = 0.03
    dialog = window.inspect_menu.evaluate.open_dialog()
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        dialog.start()
        qtbot.waitUntil(lambda: len(fake.decoded) > 0, timeout=TIMEOUT)
        dialog.close()
    assert blocker.args == [False] and dialog.current is None


def test_choosing_another_model_stops_the_run(qtbot, window, image_folder, fake) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window, extra=6)
    fake.decode_seconds = 0.03
    dialog = window.inspect_menu.evaluate.open_dialog()
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        dialog.start()
        qtbot.waitUntil(lambda: len(fake.decoded) > 0, timeout=TIMEOUT)
        window.load_model(lambda: FakeSegmenter(model_id="other"), "other")
    assert blocker.args == [False] and dialog.current is None
    assert dialog.message_text() == MODEL_CHANGED


def test_no_accepted_masks_gives_a_message(qtbot, window, image_folder) -> None:  # noqa: ANN001
    dialog = window.inspect_menu.evaluate.open_dialog()
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        dialog.start()  # no project
    assert blocker.args == [False] and dialog.message_text() == NO_PROJECT

    open_folder(qtbot, window, image_folder)
    ids = [r.id for r in window.project.images()]
    window.project.add_annotations(
        ids[0], [rectangle(5, 5, 20, 20)], window.annotator.category_id, "proposal"
    )
    run_to_end(qtbot, dialog, ok=False)
    assert dialog.message_text().startswith(NO_MASKS)
    assert "1 proposal(s) not accepted yet" in dialog.message_text()
    assert dialog.current is None and not dialog.save_button.isEnabled()


def test_no_model_gives_a_message(qtbot, settings, dialogs, image_folder) -> None:  # noqa: ANN001
    from samstudio.ui.main_window import MainWindow

    win = MainWindow(settings=settings, disk_cache=None)
    qtbot.addWidget(win)
    try:
        assert win.open_path(image_folder)
        ids = [r.id for r in win.project.images()]
        win.project.add_annotation(ids[0], rectangle(5, 5, 20, 20), None)
        dialog = win.inspect_menu.evaluate.open_dialog()
        assert dialog.message_text() == NO_MODEL
        with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
            assert dialog.start() is None
        assert blocker.args == [False] and dialog.message_text() == NO_MODEL
    finally:
        win.shutdown()


def test_bad_points_are_refused(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window)
    dialog = window.inspect_menu.evaluate.open_dialog()
    dialog.points.setText("1, two")
    assert dialog.start() is None
    assert "1,2,3,5,9" in dialog.message_text() and not dialog.running


def test_an_unreadable_image_is_named(qtbot, window, image_folder) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    ids = add_masks(window)
    path = Path(window.project.image_path(ids[1]))
    path.write_bytes(b"not an image any more")
    dialog = window.inspect_menu.evaluate.open_dialog()
    run_to_end(qtbot, dialog, ok=False)
    assert path.name in dialog.message_text()
    assert "b00020" in dialog.message.styleSheet()  # shown as an error
    assert dialog.current is None


def test_save_report_writes_json(qtbot, window, image_folder, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    open_folder(qtbot, window, image_folder)
    add_masks(window)
    dialog = window.inspect_menu.evaluate.open_dialog()
    run_to_end(qtbot, dialog)
    target = tmp_path / "out" / "evaluation.json"
    target.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), ""))
    )
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    data = json.loads(target.read_text())
    assert data["model"] == "fake" and data["protocol"] == "SAM paper D.1"
    assert data["counts"] == {"masks": 4, "images": 2}
    assert data["miou"] == dialog.current.report.to_json()["miou"]
    assert data["dataset"]["proposals_left_out"] == 1
    assert data["dataset"]["accepted_masks"] == 4
    assert str(target) in dialog.message_text()
    assert [p.name for p in target.parent.iterdir()] == ["evaluation.json"]  # no temp left
    # An unwritable place: the message names it, nothing raises.
    bad = tmp_path / "missing" / "r.json"
    assert dialog.save_report(bad) is None
    assert str(bad) in dialog.message_text()


def test_images_and_masks_are_read_off_the_model_thread(
    qtbot, window, image_folder, monkeypatch
) -> None:  # noqa: ANN001
    import samstudio.ui.evaluate_reading as reading

    open_folder(qtbot, window, image_folder)
    add_masks(window, extra=6)
    readers: list[str] = []

    def on_thread(function):  # noqa: ANN001,ANN202
        def call(*args):  # noqa: ANN002,ANN202
            readers.append(threading.current_thread().name)
            return function(*args)

        return call

    for name in ("load_rgb", "decode_rle", "list_ground_truth"):
        monkeypatch.setattr(reading, name, on_thread(getattr(reading, name)))
    dialog = window.inspect_menu.evaluate.open_dialog()
    run_to_end(qtbot, dialog)
    assert dialog.current is not None and dialog.current.report.n_masks == 10
    assert len(readers) == 1 + 2 + 10  # the listing, 2 images, 10 masks
    assert set(readers) == {"samstudio-evaluation-reader"}
    qtbot.waitUntil(
        lambda: not [t for t in threading.enumerate() if t.name == "samstudio-evaluation-reader"],
        timeout=TIMEOUT,
    )


class CountingSegmenter:
    """A model that records the pixel hash of every image it encodes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.encoded: list[str] = []
        self._lock = threading.Lock()

    @property
    def info(self) -> Any:
        return self.inner.info

    def encode(self, image: np.ndarray) -> Any:
        with self._lock:
            self.encoded.append(image_content_hash(image))
        return self.inner.encode(image)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_embeddings_come_from_the_annotator_cache_and_go_back_to_it(
    qtbot, settings, dialogs, image_folder, tmp_path
) -> None:  # noqa: ANN001
    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import open_model
    from samstudio.ui.inference_worker import DiskEmbeddingStore
    from samstudio.ui.main_window import MainWindow

    try:
        model = CountingSegmenter(open_model(None))  # the shipped demo model
    except ModelLoadError as exc:
        pytest.skip(f"the shipped demo model is not in this checkout: {exc}")
    store = DiskEmbeddingStore(root=tmp_path / "embeddings")
    win = MainWindow(settings=settings, disk_cache=store)
    qtbot.addWidget(win)
    win.annotator.prefetch_depth = 0  # only the image the user opens is encoded ahead
    win.show()
    try:
        with qtbot.waitSignal(win.worker.model_loaded, timeout=60000):
            win.load_model(lambda: model, "demo")
        open_folder(qtbot, win, image_folder)
        ids = add_masks(win)  # 3 masks on the first image, 1 on the second
        win.project.add_annotation(ids[3], disc(160, 120, 40), win.annotator.category_id)
        pixels = [image_content_hash(load_rgb(win.project.image_path(i))) for i in ids]
        assert model.encoded == [pixels[0]]  # the annotator's image

        dialog = win.inspect_menu.evaluate.open_dialog()
        run_to_end(qtbot, dialog)
        first = dialog.current
        assert first is not None and (first.report.n_masks, first.report.n_images) == (5, 3)
        # The first image's embedding is the annotator's; the others are encoded once.
        assert model.encoded == [pixels[0], pixels[1], pixels[3]]
        assert "Image embeddings: 1 of 3 from the cache." in dialog.message_text()

        run_to_end(qtbot, dialog)  # again: every embedding from the cache, the same figures
        second = dialog.current
        assert second is not None and second is not first
        assert model.encoded == [pixels[0], pixels[1], pixels[3]]  # no encoder pass at all
        assert "Image embeddings: 3 of 3 from the cache." in dialog.message_text()
        assert second.report.miou == first.report.miou
        assert second.report.oracle_miou_1 == first.report.oracle_miou_1
        assert second.report.to_json() == first.report.to_json()
        assert second.table() == first.table()

        # They are the core's figures on the embeddings as the disk cache keeps them.
        expected = point_eval.evaluate(
            model.inner,
            ground_truth(win),
            seed=0,
            encode=lambda image: store.as_stored(model.inner.encode(image)),
        )
        assert first.report.to_json() == expected.to_json()
        assert first.report.miou == expected.miou

        # The annotator opens an evaluated image from the disk cache: no encoder pass.
        with qtbot.waitSignal(win.worker.embedding_ready, timeout=60000) as ready:
            win.annotator.open_image(ids[1])
        assert ready.args[0] == ids[1] and ready.args[2] is True
        assert len(model.encoded) == 3
    finally:
        win.shutdown()


def test_cancel_while_the_next_image_is_being_read(
    qtbot, window, image_folder, monkeypatch, fake
) -> None:  # noqa: ANN001
    import samstudio.ui.evaluate_reading as reading

    open_folder(qtbot, window, image_folder)
    add_masks(window)
    reading_started = threading.Event()
    real_prepare = reading.prepare_image

    def slow_prepare(item, cancelled):  # noqa: ANN001,ANN202
        reading_started.set()
        threading.Event().wait(0.5)  # a big image on a slow disk
        return real_prepare(item, cancelled)

    monkeypatch.setattr(reading, "prepare_image", slow_prepare)
    dialog = window.inspect_menu.evaluate.open_dialog()
    decoded = len(fake.decoded)
    with qtbot.waitSignal(dialog.settled, timeout=TIMEOUT) as blocker:
        run = dialog.start()
        assert run is not None
        qtbot.waitUntil(reading_started.is_set, timeout=TIMEOUT)
        dialog.cancel()  # the run ends when the reader stops; no mask was evaluated
    assert blocker.args == [False] and "cancelled" in dialog.message_text()
    assert len(fake.decoded) == decoded
    qtbot.waitUntil(lambda: window.worker.busy_with == "", timeout=TIMEOUT)
    assert not window.worker._tasks


def test_each_model_thread_task_is_one_click_and_cancel_works_between_clicks(
    qtbot, window, image_folder, monkeypatch, fake
) -> None:  # noqa: ANN001
    """A click of the annotator waits for one of the evaluation's clicks at most: each
    task the evaluation runs on the model thread makes at most one decoder call."""
    open_folder(qtbot, window, image_folder)
    add_masks(window)
    worker = window.worker
    per_task: list[int] = []
    real_run_task = worker._run_task
    cancel_after: list[int] = []  # a total of decoder calls after which to cancel
    dialog = window.inspect_menu.evaluate.open_dialog()

    def counted(seg, task) -> None:  # noqa: ANN001
        before = len(fake.decoded)
        real_run_task(seg, task)
        per_task.append(len(fake.decoded) - before)
        if cancel_after and len(fake.decoded) == cancel_after[0] and dialog.run is not None:
            dialog.run.cancel()  # from the model thread, between two clicks of a mask

    monkeypatch.setattr(worker, "_run_task", counted)
    decoded = len(fake.decoded)
    run_to_end(qtbot, dialog)
    assert dialog.current is not None
    assert dialog.current.report.to_json() == expected_report(window, DEFAULTS, "center").to_json()
    assert max(per_task) == 1 and sum(per_task) == len(fake.decoded) - decoded
    assert sum(per_task) > 2 * dialog.current.report.n_masks  # several clicks per mask

    per_task.clear()
    decoded = len(fake.decoded)
    cancel_after.append(decoded + 2)  # after the first mask's second click
    run_to_end(qtbot, dialog, ok=False)
    assert "cancelled" in dialog.message_text() and dialog.current is None
    qtbot.waitUntil(lambda: worker.busy_with == "", timeout=TIMEOUT)
    assert len(fake.decoded) == decoded + 2 and not worker._tasks
