"""The Inspect menu and its non-modal "Dataset statistics" dialog: the researchers' views
of the Segment Anything paper's §5 on the open project.

- Inspect ▸ Mask statistics of this project…: masks per image, relative size, concavity
  and object centres of the project's accepted masks (`core.inspect.dataset_mask_stats`),
  as a table and the two figures (Fig. 6 and Fig. 5 of the paper).
- Inspect ▸ Compare with an annotation file… / folder…: the project's accepted masks
  paired one to one by IoU with those of a COCO / SA-1B / labelme file, or of a folder of
  per-image SA-1B or labelme files such as `samstudio auto-segment` writes
  (`core.inspect.compare_sets`, as `samstudio inspect compare`; the file or folder is the
  reference), as a table and the IoU histogram of the pairs.
- Inspect ▸ Evaluate the model on this project's masks…: its own dialog, run on the
  model's thread (`evaluate_project.py`).

The work runs on `inspect_jobs.InspectRunner`'s thread; the dialog only shows a busy
indicator and then the result, or the error naming the file or folder (and the file at
fault in a folder). "Save report…" writes the JSON and the PNG figures into a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from samstudio.ui.evaluate_project import EvaluateProjectAction
from samstudio.ui.inspect_jobs import (
    InspectResult,
    InspectRunner,
    Job,
    comparison_job,
    mask_stats_job,
    save_report,
    source_label,
)
from samstudio.ui.report_widgets import message_label, report_buttons, table_view

ANNOTATION_FILTER = "Annotation files (*.json);;All files (*)"
ERROR_STYLE = "color: #b00020;"


class FigureView(QScrollArea):
    """A figure (PNG) shown at most as wide as the view, never wider than drawn."""

    def __init__(self, pixmap: QPixmap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmap = pixmap
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        width = max(1, self.viewport().width() - 4)
        shown = self.pixmap
        if shown.width() > width:
            shown = shown.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
        self.label.setPixmap(shown)


class InspectDialog(QDialog):
    """The "Dataset statistics" dialog: one view at a time, computed off the UI thread.

    `settled(ok)` is emitted when the busy indicator goes away: True with a result shown,
    False with an error or a message instead.
    """

    settled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Dataset statistics")
        self.setModal(False)
        self.resize(1000, 720)
        self.current: InspectResult | None = None
        self._ticket = 0
        self.runner = InspectRunner(self)
        self.runner.done.connect(self._done)
        self.runner.failed.connect(self._failed)

        self.heading = QLabel("")
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # busy, no percentage
        self.busy_bar.setTextVisible(False)
        self.busy_label = QLabel("Computing…")
        busy = QHBoxLayout()
        busy.addWidget(self.busy_label)
        busy.addWidget(self.busy_bar, 1)
        self.message = message_label()
        self.table = table_view()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Table")

        buttons, self.save_button = report_buttons(self, self.ask_save_report)

        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(busy)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)
        self._set_busy(False)
        self.save_button.setEnabled(False)

    # ------------------------------------------------------------------------- starting
    def show_mask_stats(self, project: Any) -> None:
        """Compute and show the mask statistics of `project`'s accepted masks."""
        if project is None:
            self._show_message("Mask statistics", "Open a folder of images or a project first.")
            return
        self._start(
            "Mask statistics of this project", lambda cancelled: mask_stats_job(project, cancelled)
        )

    def show_comparison(self, project: Any, source: Path) -> None:
        """Compare `project`'s accepted masks with the annotation file or folder `source`."""
        if project is None:
            self._show_message("Comparison", "Open a folder of images or a project first.")
            return
        self._start(
            f"This project compared with {source_label(source)}",
            lambda cancelled: comparison_job(project, source, cancelled),
        )

    def _start(self, heading: str, job: Job) -> None:
        self._clear(heading)
        self._set_busy(True)
        self._ticket = self.runner.run(job)

    # -------------------------------------------------------------------------- showing
    def _done(self, ticket: int, result: InspectResult) -> None:
        if ticket != self._ticket:
            return
        self._set_busy(False)
        self.current = result
        self.heading.setText(result.heading)
        self._set_message("\n".join(result.notes))
        self.table.setPlainText(result.table)
        for figure in result.figures:
            pixmap = QPixmap()
            pixmap.loadFromData(figure.png, "PNG")
            self.tabs.addTab(FigureView(pixmap), figure.title)
        self.save_button.setEnabled(not result.empty)
        self.settled.emit(not result.empty)

    def _failed(self, ticket: int, message: str) -> None:
        if ticket != self._ticket:
            return
        self._set_busy(False)
        self._set_message(message, error=True)
        self.settled.emit(False)

    def _clear(self, heading: str) -> None:
        self.current = None
        self.save_button.setEnabled(False)
        self.heading.setText(heading)
        self._set_message("")
        self.table.setPlainText("")
        while self.tabs.count() > 1:
            view = self.tabs.widget(1)
            self.tabs.removeTab(1)
            if view is not None:
                view.deleteLater()

    def _show_message(self, heading: str, text: str) -> None:
        self.runner.cancel()
        self._ticket = 0
        self._clear(heading)
        self._set_busy(False)
        self._set_message(text)
        self.settled.emit(False)

    def _set_message(self, text: str, error: bool = False) -> None:
        """Notes, a message or (red) an error above the table; hidden when empty."""
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _set_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)

    # ------------------------------------------------------------------ what tests read
    @property
    def busy(self) -> bool:
        return self.busy_bar.isVisibleTo(self)

    def table_text(self) -> str:
        return self.table.toPlainText()

    def message_text(self) -> str:
        return self.message.text()

    def figures(self) -> list[QPixmap]:
        """The figures shown, as drawn (not scaled to the view)."""
        views = (self.tabs.widget(i) for i in range(1, self.tabs.count()))
        return [v.pixmap for v in views if isinstance(v, FigureView)]

    # ------------------------------------------------------------------------- saving
    def ask_save_report(self) -> None:
        if self.current is None or self.current.empty:
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the report into a folder")
        if folder:
            self.save_report(Path(folder))

    def save_report(self, folder: Path) -> list[Path]:
        """Write the shown result's JSON and figures into `folder`; an error is shown in
        the dialog, naming the folder. Returns the files written (none after an error)."""
        if self.current is None or self.current.empty:
            return []
        try:
            written = save_report(self.current, folder)
        except OSError as exc:
            self._set_message(f"The report could not be saved in {folder}: {exc}", error=True)
            return []
        names = ", ".join(p.name for p in written)
        self._set_message(f"Saved {names} in {folder}")
        return written

    def shutdown(self) -> None:
        """Stop the worker thread (waits for a running computation to end)."""
        self.runner.shutdown()


class InspectMenu:
    """The Inspect menu of the main window and its one "Dataset statistics" dialog."""

    def __init__(self, window: Any, menu: QMenu) -> None:
        self.window = window
        self.dialog: InspectDialog | None = None
        act = window._action
        self.stats_action = act(
            "Mask statistics of this project…", self.show_mask_stats, None, menu
        )
        self.compare_action = act("Compare with an annotation file…", self.ask_compare, None, menu)
        self.compare_folder_action = act(
            "Compare with an annotation folder…", self.ask_compare_folder, None, menu
        )
        self.compare_folder_action.setStatusTip(
            "A folder of per-image SA-1B or labelme JSON files, e.g. auto-segment's output"
        )
        self.evaluate = EvaluateProjectAction(window, menu)

    def open_dialog(self) -> InspectDialog:
        """The dialog, created the first time, shown and raised."""
        if self.dialog is None:
            self.dialog = InspectDialog(self.window)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def show_mask_stats(self) -> InspectDialog:
        dialog = self.open_dialog()
        dialog.show_mask_stats(self.window.project)
        return dialog

    def ask_compare(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Compare with an annotation file", "", ANNOTATION_FILTER
        )
        if path:
            self.compare_with(Path(path))

    def ask_compare_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.window,
            "Compare with a folder of annotation files (SA-1B or labelme, one per image)",
        )
        if folder:
            self.compare_with(Path(folder))

    def compare_with(self, source: Path) -> InspectDialog:
        """Show the comparison with an annotation file or a folder of per-image files."""
        dialog = self.open_dialog()
        dialog.show_comparison(self.window.project, source)
        return dialog

    def shutdown(self) -> None:
        self.evaluate.shutdown()
        if self.dialog is not None:
            self.dialog.shutdown()
