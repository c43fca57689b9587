"""Study ▸ New study…: what `samstudio study create` does, in a dialog.

The researcher chooses a new (or empty) folder, the models to compare, the ground truth
(COCO datasets, or generated scenes to try it out) and how masks are sampled, prompted
and rated. Create builds the study on a worker thread (`create_job.StudyBuildRunner`)
with a progress bar and Cancel; a cancelled or failed build leaves no study behind, and
an error names the file at fault. When the study is built the dialog says where it is
and offers "Rate it now" (the participant's rating window) and Close.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from samstudio.core.study.model import Study, StudyError
from samstudio.ui.report_widgets import message_label
from samstudio.ui.study.create_form import StudyForm
from samstudio.ui.study.create_job import StudyBuildRunner

ERROR_STYLE = "color: #b00020;"


class NewStudyDialog(QDialog):
    """The settings of a new study, Create, progress with Cancel, then Rate it now.

    `default_model`: the model listed first (the annotator's model file or folder); None
    lists the shipped demo model. `settled(ok)`: a build ended, True when a study was
    made (False: an error, Cancel, or a refused setting)."""

    settled = Signal(bool)

    def __init__(self, parent: QWidget | None = None, default_model: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New rating study")
        self.setModal(False)
        self.study: Study | None = None
        self.rating_window: QWidget | None = None
        self.runner = StudyBuildRunner(self)
        self.runner.progress.connect(self._progress)
        self.runner.succeeded.connect(self._succeeded)
        self.runner.failed.connect(self._failed)
        self.runner.finished.connect(self._finished)
        self._close_when_stopped = False
        self._building = False  # from Create until the runner's `finished` arrives

        intro = QLabel(
            "Build a blinded mask-rating study (SAM paper §7.1): masks of a dataset are "
            "sampled, each model is prompted with the mask's centre point or its box, and "
            "participants rate every mask from 1 to 10 without knowing where it came from."
        )
        intro.setWordWrap(True)
        self.form = StudyForm(self, default_model)

        self.progress_bar = QProgressBar()
        self.progress_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop building; nothing of the study is kept")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.cancel_button)
        self.message = message_label()

        self.create_button = QPushButton("Create")
        self.create_button.setToolTip("Build the study in the chosen folder")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.create_study)
        self.rate_button = QPushButton("Rate it now")
        self.rate_button.setToolTip("Open the rating window for this study (asks who rates)")
        self.rate_button.clicked.connect(self.rate_now)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.create_button, self.rate_button, self.close_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.form)
        layout.addLayout(progress_row)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.rate_button.setVisible(False)
        self._set_running(False)
        self.resize(max(760, self.sizeHint().width()), self.sizeHint().height())

    # ------------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self._building

    def create_study(self) -> bool:
        """Start building with the settings shown; False (and a message) if refused."""
        if self.running:
            return False
        try:
            plan = self.form.plan()
        except ValueError as exc:  # StudyError included
            self._set_message(str(exc), error=True)
            self.settled.emit(False)
            return False
        self.study = None
        self.rate_button.setVisible(False)
        self._set_message("")
        self._set_running(True)
        self._progress("Starting…", 0, 0)
        self.runner.start(plan)
        return True

    def cancel(self) -> None:
        if self.running:
            self.runner.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def _progress(self, text: str, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)  # 0, 0: busy
        self.progress_bar.setValue(done)
        self.progress_label.setText(text)

    def _succeeded(self, study: Study) -> None:
        self.study = study
        folder = study.folder
        self._set_message(
            f"The study is ready in {folder}\n{len(study.items)} masks drawn, "
            f"{len(study.conditions)} conditions, {len(study.jobs)} ratings to make per "
            "participant. Rate it now, or copy the folder to the participants' computers "
            "(Study ▸ Rate a study…)."
        )
        self.rate_button.setVisible(True)

    def _failed(self, text: str) -> None:
        self._set_message(f"The study could not be created, nothing was kept:\n{text}", True)

    def _finished(self, cancelled: bool) -> None:
        self._set_running(False)
        if cancelled:
            self._set_message("Cancelled: no study was made, the folder is as it was.")
        self.settled.emit(self.study is not None)
        if self._close_when_stopped:
            self.close()

    def rate_now(self) -> QWidget | None:
        """Ask who rates and open their rating window, as Study ▸ Rate a study… does."""
        from samstudio.ui.study.rating_window import RatingWindow, shown_title
        from samstudio.ui.study.start_dialog import ask_participant

        if self.study is None:
            return None
        participant = ask_participant(shown_title(self.study), self)
        if not participant:
            return None
        try:
            window = RatingWindow(self.study, participant, self.parentWidget())
        except StudyError as exc:
            self._set_message(f"Cannot start rating as {participant!r}: {exc}", error=True)
            return None
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()
        self.rating_window = window
        self.close()
        return window

    def _set_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _set_running(self, running: bool) -> None:
        self._building = running
        self.form.set_editable(not running)
        self.create_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.cancel_button.setVisible(running)
        self.progress_bar.setVisible(running)
        self.progress_label.setVisible(running)

    # ------------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.running:  # stop first: the worker removes what it wrote, then we close
            self._close_when_stopped = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:
        if self.running:
            self.close()
            return
        super().reject()

    def shutdown(self) -> None:
        """The app is closing: cancel a build and wait for it to clean up."""
        self.runner.shutdown()


class NewStudyAction:
    """Study ▸ New study… and its one dialog (see `NewStudyDialog`)."""

    TEXT = "New study…"

    def __init__(self, window: Any, menu: QMenu) -> None:
        self.window = window
        self.dialog: NewStudyDialog | None = None
        self.action = window._action(self.TEXT, self.open_dialog, None, menu)

    def open_dialog(self) -> NewStudyDialog:
        """The dialog, created the first time (listing the annotator's model), shown."""
        if self.dialog is None:
            self.dialog = NewStudyDialog(self.window, _loaded_model(self.window))
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.shutdown()


def _loaded_model(window: Any) -> Path | None:
    """The checkpoint or ONNX folder of the annotator's model, or None (the shipped demo
    model) when there is none, it is the demo model, or it is not a model on disk."""
    from samstudio.inference.catalog import default_model_path
    from samstudio.inference.errors import ModelLoadError
    from samstudio.inference.loader import CHECKPOINT_SUFFIXES, ONNX_MANIFEST

    info = getattr(getattr(window, "worker", None), "model_info", None)
    source = Path(info.source) if info is not None and info.source else None
    if source is None or not (
        (source.is_file() and source.suffix.lower() in CHECKPOINT_SUFFIXES)
        or (source / ONNX_MANIFEST).is_file()
    ):
        return None

    try:
        if source.resolve() == default_model_path().resolve():
            return None
    except (ModelLoadError, OSError):  # no shipped model: the file is listed as it is
        pass
    return source
