"""Inspect ▸ Evaluate the model on this project's masks…: the dialog of the SAM paper's
point-prompt evaluation (§D.1) of the loaded model, with the project's accepted masks as
the ground truth (proposals not accepted yet are left out).

`EvaluateProjectDialog`: the settings (numbers of points, first click, at most N
masks), Start, a progress bar with Cancel, then the report table and "Save report…"
(JSON, written atomically). The run itself is `evaluate_run.EvaluationRun` (on the
inference worker's thread, the ground truth read by `evaluate_reading`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
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

from samstudio.core.point_eval import DEFAULT_POINTS
from samstudio.ui.evaluate_reading import SAMPLE_SEED
from samstudio.ui.evaluate_run import (
    DEFAULT_MAX_MASKS,
    MODEL_CHANGED,
    NO_MASKS,
    EvaluationResult,
    EvaluationRun,
    EvaluationSettings,
)
from samstudio.ui.inference_worker import InferenceWorker
from samstudio.ui.report_widgets import message_label, report_buttons, table_view

FIRST_CLICKS = {"centre of the mask": "center", "random point of the mask": "random"}
ERROR_STYLE = "color: #b00020;"

NO_MODEL = "No model loaded: choose one in the Model menu."
NO_PROJECT = "Open a folder of images or a project first."


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
        self._set_message("\n".join(result.notes()))
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
