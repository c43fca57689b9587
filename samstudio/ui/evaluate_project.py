"""Inspect ▸ Evaluate the model on this project's masks…: the SAM paper's point-prompt
evaluation (§D.1, `samstudio.core.point_eval`) of the loaded model, with the project's
accepted masks as the ground truth (proposals not accepted yet are left out).

- `list_ground_truth` reads the accepted masks' RLEs from the project (at most N masks,
  drawn with a fixed seed when there are more, kept in project order so that each
  image is encoded once).
- `EvaluationRun` runs `point_eval.iter_evaluate` on the inference worker's thread (the
  one thread that owns the model: no second copy of it), one worker task per mask, so
  the annotator's own encodes and decodes slip in between. Images are read as the
  annotator reads them (`image_io.load_rgb`). Progress, the result and the end come
  back as Qt signals (queued to the main thread); `cancel()` is polled before every
  encoder pass and every mask.
- `EvaluateProjectDialog`: the settings (numbers of points, first click, at most N
  masks), Start, a progress bar with Cancel, then the report table and "Save report…"
  (JSON, written atomically).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.point_eval import DEFAULT_POINTS, EvalProgress, EvalReport, iter_evaluate
from samstudio.inference.types import Segmenter
from samstudio.ui.image_io import ImageReadError, load_rgb
from samstudio.ui.inference_worker import InferenceWorker
from samstudio.ui.report_widgets import message_label, report_buttons, table_view

PROPOSAL = "proposal"  # an automatic mask not accepted yet (document.records.SOURCES)
SAMPLE_SEED = 0  # which masks are drawn when the project has more than "at most N"
CLICK_SEED = 0  # of the random first clicks, as `samstudio evaluate --seed`
DEFAULT_MAX_MASKS = 200
FIRST_CLICKS = {"centre of the mask": "center", "random point of the mask": "random"}
ERROR_STYLE = "color: #b00020;"

NO_MASKS = (
    "This project has no accepted masks yet: they are the ground truth of the evaluation. "
    "Accept some masks (or auto-segment proposals) first."
)
NO_MODEL = "No model loaded: choose one in the Model menu."
NO_PROJECT = "Open a folder of images or a project first."
MODEL_CHANGED = "Another model was chosen during the evaluation: start it again."


@dataclass(frozen=True)
class GroundTruthImage:
    """The masks of one image to evaluate: the image's file and the masks' RLEs."""

    image_id: int
    path: Path
    rles: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class GroundTruth:
    """The accepted masks to evaluate, in project order. `accepted`: accepted (non-empty)
    masks of the project; `proposals` and `unreadable`: masks and images left out."""

    images: tuple[GroundTruthImage, ...]
    accepted: int
    proposals: int = 0
    unreadable: int = 0

    @property
    def n_masks(self) -> int:
        return sum(len(im.rles) for im in self.images)

    def notes(self) -> list[str]:
        out = []
        if self.n_masks < self.accepted:
            out.append(
                f"{self.n_masks} of the project's {self.accepted} accepted masks, drawn at "
                f"random (seed {SAMPLE_SEED})."
            )
        if self.proposals:
            out.append(f"{self.proposals} proposal(s) not accepted yet are left out.")
        if self.unreadable:
            out.append(f"{self.unreadable} image(s) that cannot be read are left out.")
        return out


def list_ground_truth(
    project: Any, max_masks: int, cancelled: Callable[[], bool] = lambda: False
) -> GroundTruth | None:
    """The accepted, non-empty masks of `project` (a `core.document.Project`), at most
    `max_masks` of them drawn with `SAMPLE_SEED`. None when `cancelled()` while reading."""
    found: list[tuple[int, Path, dict[str, Any]]] = []
    proposals = unreadable = 0
    for record in project.images():
        if cancelled():
            return None
        if getattr(record, "error", None) or record.width <= 0 or record.height <= 0:
            unreadable += 1
            continue
        path = Path(project.root) / record.path
        for ann in project.annotations(record.id):
            if ann.source == PROPOSAL:
                proposals += 1
            elif ann.area > 0:
                found.append((record.id, path, ann.rle))
    chosen: list[int] | range = range(len(found))
    if len(found) > max_masks:
        rng = np.random.default_rng(SAMPLE_SEED)
        chosen = sorted(int(i) for i in rng.choice(len(found), max_masks, replace=False))
    images: list[GroundTruthImage] = []
    for i in chosen:
        image_id, path, rle = found[i]
        if images and images[-1].image_id == image_id:
            images[-1] = GroundTruthImage(image_id, path, (*images[-1].rles, rle))
        else:
            images.append(GroundTruthImage(image_id, path, (rle,)))
    return GroundTruth(tuple(images), len(found), proposals, unreadable)


@dataclass(frozen=True)
class EvaluationSettings:
    """What the dialog asks: numbers of points, first click ("center" or "random")."""

    points: tuple[int, ...] = DEFAULT_POINTS
    first: str = "center"
    max_masks: int = DEFAULT_MAX_MASKS


@dataclass(frozen=True)
class EvaluationResult:
    """A finished evaluation: the core's report, the model and what was evaluated."""

    report: EvalReport
    model_id: str
    backend: str
    project: str
    truth: GroundTruth
    settings: EvaluationSettings

    def table(self) -> str:
        head = f"model: {self.model_id} ({self.backend})\nproject: {self.project}\n\n"
        return head + self.report.table()

    def to_json(self) -> dict[str, Any]:
        data = self.report.to_json()
        data["model"] = self.model_id
        data["backend"] = self.backend
        data["seed"] = CLICK_SEED
        data["dataset"] = {
            "project": self.project,
            "ground_truth": "accepted masks (proposals left out)",
            "accepted_masks": self.truth.accepted,
            "max_masks": self.settings.max_masks,
            "sample_seed": SAMPLE_SEED,
            "proposals_left_out": self.truth.proposals,
            "unreadable_images_left_out": self.truth.unreadable,
        }
        return data


def _describe_error(exc: BaseException, path: Path | None) -> str:
    """A message naming the image (once) and, for unexpected errors, the exception type."""
    text = str(exc).strip()
    if not isinstance(exc, (ImageReadError, ValueError, OSError)) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if path is not None and str(path) not in text and path.name not in text:
        text = f"{path}: {text}"
    return text


class EvaluationRun(QObject):
    """The §D.1 evaluation of the worker's model on `project`'s accepted masks.

    Signals are emitted from the worker thread and delivered on the main thread.
    progress: (images done, images, masks done, masks). succeeded: EvaluationResult.
    failed: a message (naming the image when one is at fault). finished: always last,
    True when the run was cancelled (or the worker stopped) before the end.
    """

    progress = Signal(int, int, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal(bool)

    def __init__(
        self,
        worker: InferenceWorker,
        project: Any,
        settings: EvaluationSettings,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.project = project
        self.settings = settings
        self.project_name = Path(project.root).name
        self._cancel = threading.Event()
        self._generation = worker.model_generation
        # worker thread only:
        self._truth: GroundTruth | None = None
        self._steps: Iterator[EvalProgress] | None = None
        self._image_path: Path | None = None

    def start(self) -> None:
        """Queue the first step: reading the ground truth, then one task per mask."""
        self.worker.submit_task(self._step)

    def cancel(self) -> None:
        """Stop before the next encoder pass or mask; no result is reported."""
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set() or self.worker.stopping

    def _step(self, segmenter: Segmenter) -> None:
        """Worker thread: one mask (the first call reads the ground truth)."""
        try:
            if self.cancelled():
                self.finished.emit(True)
                return
            if self.worker.model_generation != self._generation:
                self.failed.emit(MODEL_CHANGED)
                self.finished.emit(False)
                return
            if self._steps is None:
                self._image_path = None
                truth = list_ground_truth(self.project, self.settings.max_masks, self.cancelled)
                if truth is None:
                    self.finished.emit(True)
                    return
                if truth.n_masks == 0:
                    notes = " ".join(truth.notes())
                    self.failed.emit(f"{NO_MASKS} {notes}".strip())
                    self.finished.emit(False)
                    return
                self._truth = truth
                self._steps = iter_evaluate(
                    segmenter,
                    self._samples(truth),
                    self.settings.points,
                    self.settings.first,
                    seed=CLICK_SEED,
                    cancel=self.cancelled,
                )
            step = next(self._steps, None)
        except Exception as exc:  # a bad image or a model error: say which image
            self.failed.emit(_describe_error(exc, self._image_path))
            self.finished.emit(False)
            return
        if step is None:  # the generator saw the cancel
            self.finished.emit(True)
            return
        truth = self._truth
        assert truth is not None
        self.progress.emit(step.images, len(truth.images), step.masks, truth.n_masks)
        if step.report is None:
            self.worker.submit_task(self._step)
            return
        info = segmenter.info
        self.succeeded.emit(
            EvaluationResult(
                step.report, info.model_id, info.backend, self.project_name, truth, self.settings
            )
        )
        self.finished.emit(False)

    def _samples(self, truth: GroundTruth) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(image, masks) of each image, read when the evaluation reaches it."""
        from samstudio.core.masks import decode_rle

        for item in truth.images:
            self._image_path = item.path
            image = load_rgb(item.path)
            masks = np.stack([decode_rle(rle) for rle in item.rles])
            if masks.shape[1:] != image.shape[:2]:
                h, w = image.shape[:2]
                raise ValueError(
                    f"{item.path}: the image is {w}x{h} but its masks are "
                    f"{masks.shape[2]}x{masks.shape[1]} (was the file replaced?)"
                )
            yield image, masks


def parse_points(text: str) -> tuple[int, ...]:
    """ "1,2,3,5,9" -> (1, 2, 3, 5, 9); raises ValueError with a message for the user."""
    try:
        points = tuple(sorted({int(p) for p in text.replace(" ", ",").split(",") if p}))
    except ValueError:
        points = ()
    if not points or points[0] < 1 or points[-1] > 100:
        raise ValueError(
            f"Numbers of points: give whole numbers from 1 to 100 separated by commas "
            f"(e.g. 1,2,3,5,9), not {text!r}."
        )
    return points


class EvaluateProjectDialog(QDialog):
    """Settings, Start, progress with Cancel, then the report table and Save report….

    `settled(ok)` is emitted when a run ends or a message replaces it: True with a
    result shown, False otherwise (a message, an error, or Cancel).
    """

    settled = Signal(bool)

    def __init__(self, main_window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.main_window = main_window  # its `project` and `worker` (the model's thread)
        self.setWindowTitle("Evaluate the model on this project's masks")
        self.setModal(False)
        self.resize(620, 560)
        self.run: EvaluationRun | None = None
        self.current: EvaluationResult | None = None

        intro = QLabel(
            "The SAM paper's point-prompt evaluation (§D.1): each accepted mask of the project "
            "is the ground truth (proposals not accepted yet are left out). The model is "
            "clicked once inside the mask, then at the middle of its largest error, and the "
            "IoU with the mask is measured after each number of clicks."
        )
        intro.setWordWrap(True)
        self.points = QLineEdit(",".join(str(p) for p in DEFAULT_POINTS))
        self.points.setToolTip("mIoU is reported after each of these numbers of clicks")
        self.first = QComboBox()
        self.first.addItems(list(FIRST_CLICKS))
        self.first.setToolTip(
            "Where the first click goes: the point farthest from the mask's border (the "
            "paper's main setting) or a uniformly random point of the mask (seeded)."
        )
        self.max_masks = QSpinBox()
        self.max_masks.setRange(1, 1_000_000)
        self.max_masks.setValue(DEFAULT_MAX_MASKS)
        self.max_masks.setSuffix(" masks")
        self.max_masks.setToolTip(
            f"When the project has more accepted masks, this many are drawn at random "
            f"(always the same ones: seed {SAMPLE_SEED})."
        )
        form = QFormLayout()
        form.addRow("Numbers of points", self.points)
        form.addRow("First click", self.first)
        form.addRow("At most", self.max_masks)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the evaluation; no figures are shown")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.progress_label)
        row.addWidget(self.cancel_button)

        self.message = message_label()
        self.table = table_view()

        buttons, self.save_button = report_buttons(self, self.ask_save_report)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self._set_running(False)
        self.save_button.setEnabled(False)

    # ------------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.run is not None

    def settings(self) -> EvaluationSettings:
        """The settings as shown; raises ValueError with a message for the user."""
        return EvaluationSettings(
            parse_points(self.points.text()),
            FIRST_CLICKS[self.first.currentText()],
            self.max_masks.value(),
        )

    def start(self) -> EvaluationRun | None:
        """Start an evaluation with the settings shown; None (and a message) if impossible."""
        if self.run is not None:
            return None
        project = getattr(self.main_window, "project", None)
        worker: InferenceWorker = self.main_window.worker
        try:
            settings = self.settings()
        except ValueError as exc:
            self._refuse(str(exc), error=True)
            return None
        if project is None:
            self._refuse(NO_PROJECT)
            return None
        if worker.model_info is None:
            self._refuse(NO_MODEL)
            return None
        self._clear()
        run = EvaluationRun(worker, project, settings, self)
        run.progress.connect(self._progress)
        run.succeeded.connect(self._succeeded)
        run.failed.connect(self._failed)
        run.finished.connect(self._finished)
        self.run = run
        self._set_running(True)
        self.progress_label.setText("Reading the project's masks…")
        run.start()
        return run

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def _refuse(self, text: str, error: bool = False) -> None:
        self._clear()
        self._set_message(text, error)
        self.settled.emit(False)

    def _progress(self, images: int, n_images: int, masks: int, n_masks: int) -> None:
        if self.run is None or self.run.cancelled():
            return
        self.progress_bar.setRange(0, max(1, n_masks))
        self.progress_bar.setValue(masks)
        self.progress_label.setText(f"{masks}/{n_masks} masks, {images}/{n_images} images")

    def _succeeded(self, result: EvaluationResult) -> None:
        self.current = result
        self.table.setPlainText(result.table())
        self._set_message("\n".join(result.truth.notes()))
        self.save_button.setEnabled(True)

    def _failed(self, message: str) -> None:
        expected = message.startswith(NO_MASKS) or message == MODEL_CHANGED
        self._set_message(message, error=not expected)

    def _finished(self, cancelled: bool) -> None:
        run = self.run
        self.run = None
        self._set_running(False)
        if cancelled:
            self._set_message("Evaluation cancelled: no figures.")
        if run is not None:
            run.deleteLater()
        self.settled.emit(self.current is not None)

    def _clear(self) -> None:
        self.current = None
        self.save_button.setEnabled(False)
        self.table.setPlainText("")
        self._set_message("")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_label.setText("")

    def _set_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress_bar.setVisible(running)
        self.progress_label.setVisible(running)
        for widget in (self.points, self.first, self.max_masks):
            widget.setEnabled(not running)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.cancel()  # closing the dialog stops the run: no figures nobody sees
        super().closeEvent(event)

    def reject(self) -> None:
        self.cancel()
        super().reject()

    # ------------------------------------------------------------------ what tests read
    def table_text(self) -> str:
        return self.table.toPlainText()

    def message_text(self) -> str:
        return self.message.text()

    # ------------------------------------------------------------------------- saving
    def ask_save_report(self) -> None:
        if self.current is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the evaluation report", "evaluation.json", "JSON files (*.json)"
        )
        if path:
            self.save_report(Path(path))

    def save_report(self, path: Path) -> Path | None:
        """Write the shown result as JSON to `path` atomically; an error is shown in the
        dialog, naming the file. Returns the file written (None after an error)."""
        from samstudio.core.atomic import atomic_write_json

        if self.current is None:
            return None
        try:
            written = atomic_write_json(path, self.current.to_json(), indent=2)
        except OSError as exc:
            self._set_message(f"The report could not be saved as {path}: {exc}", error=True)
            return None
        self._set_message(f"Saved {written}")
        return Path(written)


class EvaluateProjectAction:
    """Inspect ▸ Evaluate the model on this project's masks… and its one dialog."""

    TEXT = "Evaluate the model on this project's masks…"

    def __init__(self, window: Any, menu: QMenu) -> None:
        self.window = window
        self.dialog: EvaluateProjectDialog | None = None
        self.action = window._action(self.TEXT, self.open_dialog, None, menu)

    def open_dialog(self) -> EvaluateProjectDialog:
        """The dialog, created the first time, shown and raised; it says at once when
        there is no project or no model."""
        if self.dialog is None:
            self.dialog = EvaluateProjectDialog(self.window, self.window)
        dialog = self.dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        if not dialog.running and dialog.current is None:
            if getattr(self.window, "project", None) is None:
                dialog._set_message(NO_PROJECT)
            elif self.window.worker.model_info is None:
                dialog._set_message(NO_MODEL)
            else:
                dialog._set_message("")
        return dialog

    def shutdown(self) -> None:
        """Stop a running evaluation (the worker drops its remaining steps)."""
        if self.dialog is not None:
            self.dialog.cancel()
