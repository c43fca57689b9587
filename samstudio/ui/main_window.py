"""The annotator window: image list, canvas, candidates, instances, categories.

The window only wires widgets to the `Annotator` (state and store operations) and the
`InferenceWorker` (the thread that owns the model). Its parts are mixed in from
`window_actions` (menus, shortcuts, tool bar), `window_project` (opening and closing
projects, moving between images), `window_refresh` (the panels repainted from the
project) and `window_status` (the status bar). Menus for models and for import/export
live in `model_menu.py` and `exchange_menu.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMessageBox, QWidget

from samstudio.ui import category_actions
from samstudio.ui.annotator import Annotator
from samstudio.ui.candidates_panel import CandidatesPanel
from samstudio.ui.canvas import Canvas
from samstudio.ui.categories import CategoriesPanel
from samstudio.ui.image_checks import ImageChecks
from samstudio.ui.image_list import ImageListPanel
from samstudio.ui.inference_worker import DiskEmbeddingStore, EmbeddingStore, InferenceWorker
from samstudio.ui.instances_panel import InstancesPanel
from samstudio.ui.project_access import record_id
from samstudio.ui.project_session import restore_layout, save_layout
from samstudio.ui.settings import Settings
from samstudio.ui.tools import ALL_TOOLS, Tool
from samstudio.ui.window_actions import WindowActions
from samstudio.ui.window_project import ProjectHandling
from samstudio.ui.window_refresh import PanelRefresh
from samstudio.ui.window_status import StatusBarWidgets

PANEL_DELAY_MS = 12  # the candidates panel follows the canvas by this much


class MainWindow(QMainWindow, WindowActions, ProjectHandling, PanelRefresh, StatusBarWidgets):
    """SAM Studio's main window. `worker` and `disk_cache` may be injected by tests."""

    def __init__(
        self,
        worker: InferenceWorker | None = None,
        settings: Settings | None = None,
        disk_cache: EmbeddingStore | None | bool = True,
        load_default_model: bool = False,
    ) -> None:
        super().__init__()
        self.setWindowTitle("SAM Studio")
        self.resize(1400, 860)
        self.settings = settings or Settings()
        if worker is None:
            cache: EmbeddingStore | None
            if disk_cache is True:
                cache = _disk_cache(self.settings.cache_size_mb)
            else:
                cache = disk_cache or None
            worker = InferenceWorker(disk_cache=cache)
        self.worker = worker
        if not self.worker.isRunning():
            self.worker.start()
        self.project: Any = None
        self.project_path: Path | None = None

        self.canvas = Canvas()
        self.setCentralWidget(self.canvas)
        self.annotator = Annotator(self.canvas, self.worker, self)
        self.annotator.prefetch_depth = self.settings.prefetch_depth
        self.annotator.set_brush_radius(self.settings.brush_size)
        self.image_checks = ImageChecks(self)  # files missing or replaced on disk

        self.images_panel = ImageListPanel()
        self.candidates_panel = CandidatesPanel()
        self.instances_panel = InstancesPanel()
        self.categories_panel = CategoriesPanel()
        images = self._dock("Images", self.images_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        cands = self._dock(
            "Candidates", self.candidates_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        insts = self._dock("Instances", self.instances_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        cats = self._dock(
            "Categories", self.categories_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        # Fixed widths so the panels do not jump when candidates come and go.
        images.setMinimumWidth(290)
        for dock in (cands, insts, cats):
            dock.setMinimumWidth(430)
        self.candidates_panel.setMinimumHeight(3 * 150 + 60)
        self.resizeDocks([cands, insts, cats], [520, 220, 150], Qt.Orientation.Vertical)

        self.tools: dict[str, Tool] = {cls.name: cls(self.annotator) for cls in ALL_TOOLS}
        self._build_status_bar()
        self._build_actions()
        self._connect()
        self.set_tool("point")
        restore_layout(self)
        self._refresh_all()
        if load_default_model:
            QTimer.singleShot(0, self.load_startup_model)

    # ------------------------------------------------------------------------- building
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a = self.annotator
        a.candidates_changed.connect(self._show_candidates)
        # A new answer: let the canvas paint its overlay first, the panel right after
        # (or at once when a key or the mouse acts on the panel before that).
        a.candidates_arrived.connect(
            lambda: self.candidates_panel.follow_soon(self._show_candidates, PANEL_DELAY_MS)
        )
        a.instances_changed.connect(self._refresh_instances)
        a.error.connect(self.show_error)
        a.undo_changed.connect(self._update_undo_actions)
        self.candidates_panel.chosen_changed.connect(a.choose)
        self.candidates_panel.hovered.connect(a.look_at)
        self.instances_panel.selected.connect(a.select_instance)
        self.instances_panel.visibility_changed.connect(a.set_instance_visible)
        self.instances_panel.delete_requested.connect(self.delete_selected)
        self.categories_panel.current_changed.connect(self._category_chosen)
        self.categories_panel.add_requested.connect(self.add_category)
        self.categories_panel.rename_requested.connect(self._rename_category)
        self.categories_panel.recolor_requested.connect(self._recolor_category)
        self.categories_panel.delete_requested.connect(self._delete_category)
        self.images_panel.image_chosen.connect(self.open_image)
        self.canvas.space_tapped.connect(self.accept)
        self._connect_status_bar()
        # The canvas wants Space (pan / accept) and Tab (next candidate) for itself.
        self.canvas.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.canvas and event.type() == QEvent.Type.ShortcutOverride:
            if event.key() == Qt.Key.Key_Space:  # type: ignore[attr-defined]
                event.accept()
                return True
        return super().eventFilter(obj, event)

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802,A002
        return False  # Tab picks the next candidate instead of moving the focus

    # ----------------------------------------------------------------------- annotation
    def set_tool(self, name: str) -> None:
        tool = self.tools[name]
        self.canvas.set_tool(tool)
        self.tool_actions[name].setChecked(True)
        self._update_brush_label()

    def accept(self) -> None:
        # a new prediction the panel has not shown yet: show it, with the candidate that
        # is accepted marked, before accepting (Enter accepts what is shown as chosen)
        self.candidates_panel.catch_up()
        if self.annotator.accept() is not None:
            self._refresh_image_rows()

    def clear_prompts(self) -> None:
        """Esc: the prompts and candidates of the mask being made; with none, the
        selection (so nothing is selected after a second Esc)."""
        a = self.annotator
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()
        a.cancel_stroke()
        if a.points or a.box is not None or a.candidates or a.selected is None:
            a.clear_prompts()
        else:
            a.select_instance(None)

    def change_brush(self, factor: float) -> None:
        r = self.annotator.brush_radius
        new = max(r + 1, round(r * factor)) if factor > 1 else min(r - 1, round(r * factor))
        self.annotator.set_brush_radius(new)
        self.settings.brush_size = self.annotator.brush_radius
        self._update_brush_label()

    def choose_category_index(self, index: int) -> None:
        rows = self.categories_panel.rows
        if 0 <= index < len(rows):
            self._category_chosen(rows[index].category_id)

    def _category_chosen(self, category_id: int) -> None:
        self.annotator.set_current_category(category_id)
        self._refresh_categories()

    def add_category(self, name: str) -> None:
        if self.project is None:
            return
        try:
            new = self.project.add_category(name)
        except Exception as exc:
            self.show_error("Could not add the category", f"{name}: {exc}")
            return
        self.annotator.category_id = record_id(new)
        self._refresh_categories()

    def _rename_category(self, category_id: int, name: str) -> None:
        """Rename; onto another category's name, offer to merge (`category_actions`)."""
        category_actions.rename_category(self, category_id, name)

    def _delete_category(self, category_id: int) -> None:
        category_actions.delete_category(self, category_id)

    def _recolor_category(self, category_id: int, color: str) -> None:
        try:
            self.project.recolor_category(category_id, color)
        except Exception as exc:
            self.show_error("Could not change the colour", str(exc))
        self._refresh_categories()
        self.annotator.refresh_instances()

    # --------------------------------------------------------------------------- models
    def load_model(self, factory: Any, label: str) -> None:
        self.worker.load_model(factory, label)

    def load_default_model(self) -> None:
        self.model_menu.load_default()

    def load_startup_model(self) -> None:
        """The model used last time (Settings), else the shipped default."""
        last = self.settings.last_model
        self.model_menu.load(last or None, last or "the default model")

    def edit_preferences(self) -> None:
        from samstudio.ui.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.settings, self)
        if dialog.exec():
            dialog.save()
            self.apply_settings()

    def apply_settings(self) -> None:
        self.annotator.prefetch_depth = self.settings.prefetch_depth
        self.annotator.set_brush_radius(self.settings.brush_size)
        self._update_brush_label()

    # ---------------------------------------------------------------------------- misc
    def show_error(self, title: str, text: str) -> None:
        QMessageBox.critical(self, title, text)

    def rate_study(self) -> None:
        """Study → Rate a study…: a study folder, the participant, their rating window."""
        from samstudio.ui.study.launch import choose_and_open_study

        choose_and_open_study(self)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        save_layout(self)
        self.shutdown(wait_ms=3000)  # app.main leaves without waiting for a long encode
        super().closeEvent(event)

    def shutdown(self, wait_ms: int = 120000) -> None:
        """Close the store and stop the worker thread (waiting up to `wait_ms`)."""
        self.annotator.shutdown()
        self.inspect_menu.shutdown()
        self.new_study.shutdown()
        if self.worker.isRunning():
            self.worker.stop(wait_ms)
        if self.project is not None:
            try:
                self.project.close()
            except Exception:
                pass
            self.project = None


def _disk_cache(size_mb: int) -> EmbeddingStore | None:
    try:
        return DiskEmbeddingStore(max_bytes=size_mb << 20)
    except Exception:  # no cache module or an unusable cache folder: memory only
        return None


def app_instance() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return app
